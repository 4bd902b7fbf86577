/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KEKCRYPT_INITRAMFS_LIST_H
#define KEKCRYPT_INITRAMFS_LIST_H

#include <stdbool.h>
#include <stddef.h>

/*
 * The paths in the initramfs image FILE (every archive of it: the early uncompressed one and
 * the compressed main one), one per line without a leading "./" or "/", in *R_TEXT (free()),
 * *R_LEN bytes. Reads the image with libarchive, loaded with dlopen() on this first use.
 *
 * @return 0; -ENOTSUP when libarchive is not installed (the caller may use another lister),
 *         -EBADMSG for an image that is no cpio archive or a damaged one, -ENOMEM, or the
 *         error of open() or mmap().
 */
int initramfs_list(const char *file, char **r_text, size_t *r_len);

/*
 * Whether the file PATH of the initramfs image FILE (its path in the image; a leading "/" is
 * ignored) holds the same bytes as the file LOCAL on this system, in one pass over the image.
 *
 * @return 0 the same; 1 different (another size or type, or other bytes); -ENOENT when the
 *         image has no PATH (or LOCAL is missing: the error of open()); -ENOTSUP without
 *         libarchive; -EBADMSG for a damaged image; or the error of open() or mmap().
 */
int initramfs_same(const char *file, const char *path, const char *local);

#endif
