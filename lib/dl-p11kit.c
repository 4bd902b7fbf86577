/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* p11-kit, loaded on first use (dl-p11kit.h). */
#include "dl-p11kit.h"

DL_P11KIT_SYMS(DL_DEFINE)

static const struct dl_sym p11kit_syms[] = { DL_P11KIT_SYMS(DL_ENTRY) { NULL, NULL } };

DL_NOTE(p11kit_note, "[{\"feature\":\"pkcs11\",\"description\":\"KEKs in a PKCS#11 token "
	"(an HSM)\",\"priority\":\"recommended\",\"soname\":[\"libp11-kit.so.0\"]}]");

static struct dl_library p11kit_lib = {
	.soname = "libp11-kit.so.0",
	.package = "libp11-kit0",
	.purpose = "PKCS#11",
	.syms = p11kit_syms,
};

int dl_p11kit_load(struct kc_ctx *ctx)
{
	return dl_library_load(ctx, &p11kit_lib);
}

int dl_p11kit_boot_need(struct kc_ctx *ctx, struct boot_list *list)
{
	return dl_library_boot_need(ctx, &p11kit_lib, list);
}
