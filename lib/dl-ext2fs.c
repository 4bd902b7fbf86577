/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libext2fs, loaded on first use (dl-ext2fs.h). */
#include "dl-ext2fs.h"

DL_EXT2FS_SYMS(DL_DEFINE)

static const struct dl_sym ext2fs_syms[] = { DL_EXT2FS_SYMS(DL_ENTRY) { NULL, NULL } };

DL_NOTE(ext2fs_note, "[{\"feature\":\"encrypt\",\"description\":\"the size of an ext2/3/4 "
	"filesystem encrypted in place\",\"priority\":\"suggested\","
	"\"soname\":[\"libext2fs.so.2\"]}]");

static struct dl_library ext2fs_lib = {
	.soname = "libext2fs.so.2",
	.package = "libext2fs2",
	.purpose = "encrypting an ext2/3/4 filesystem in place",
	.syms = ext2fs_syms,
};

int dl_ext2fs_load(struct kc_ctx *ctx)
{
	return dl_library_load(ctx, &ext2fs_lib);
}
