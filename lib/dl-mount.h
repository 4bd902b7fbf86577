/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libmount (where a device `encrypt` is given is mounted, and mounting its filesystem again
 * from the mapping), loaded on first use (dlopen.h). */
#ifndef KEKCRYPT_DL_MOUNT_H
#define KEKCRYPT_DL_MOUNT_H

#include <libmount.h>

#include "dlopen.h"

#define DL_MOUNT_SYMS(X)                                                                     \
	X(mnt_new_table_from_file)                                                           \
	X(mnt_unref_table)                                                                   \
	X(mnt_new_iter)                                                                      \
	X(mnt_free_iter)                                                                     \
	X(mnt_table_next_fs)                                                                 \
	X(mnt_fs_get_devno)                                                                  \
	X(mnt_fs_get_target)                                                                 \
	X(mnt_fs_get_fstype)                                                                 \
	X(mnt_fs_get_vfs_options)                                                            \
	X(mnt_fs_get_fs_options)                                                             \
	X(mnt_new_context)                                                                   \
	X(mnt_free_context)                                                                  \
	X(mnt_context_set_source)                                                            \
	X(mnt_context_set_target)                                                            \
	X(mnt_context_set_fstype)                                                            \
	X(mnt_context_set_options)                                                           \
	X(mnt_context_mount)                                                                 \
	X(mnt_context_get_excode)

DL_MOUNT_SYMS(DL_DECLARE)

/* Load libmount.so.1 once. 0, or -ENOTSUP with a detail in CTX (may be NULL). */
int dl_mount_load(struct kc_ctx *ctx);

#endif
