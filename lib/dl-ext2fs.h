/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libext2fs (the size of an ext2/3/4 filesystem for `encrypt`), loaded on first use (dlopen.h). */
#ifndef KEKCRYPT_DL_EXT2FS_H
#define KEKCRYPT_DL_EXT2FS_H

#include <ext2fs/ext2fs.h>

#include "dlopen.h"

#define DL_EXT2FS_SYMS(X)                                                                    \
	X(ext2fs_open)                                                                       \
	X(ext2fs_close_free)                                                                 \
	X(ext2fs_blocks_count)                                                               \
	X(unix_io_manager)

DL_EXT2FS_SYMS(DL_DECLARE)

/* Load libext2fs.so.2 once. 0, or -ENOTSUP with a detail in CTX (may be NULL). */
int dl_ext2fs_load(struct kc_ctx *ctx);

#endif
