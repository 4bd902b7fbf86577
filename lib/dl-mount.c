/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libmount, loaded on first use (dl-mount.h). */
#include "dl-mount.h"

DL_MOUNT_SYMS(DL_DEFINE)

static const struct dl_sym mount_syms[] = { DL_MOUNT_SYMS(DL_ENTRY) { NULL, NULL } };

DL_NOTE(mount_note, "[{\"feature\":\"encrypt\",\"description\":\"whether a device encrypted "
	"in place is mounted, and where\",\"priority\":\"recommended\","
	"\"soname\":[\"libmount.so.1\"]}]");

static struct dl_library mount_lib = {
	.soname = "libmount.so.1",
	.package = "libmount1",
	.purpose = "telling whether a device encrypted in place is mounted",
	.syms = mount_syms,
};

int dl_mount_load(struct kc_ctx *ctx)
{
	return dl_library_load(ctx, &mount_lib);
}
