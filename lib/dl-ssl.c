/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libssl, loaded on first use (dl-ssl.h). */
#include "dl-ssl.h"

DL_SSL_SYMS(DL_DEFINE)

static const struct dl_sym ssl_syms[] = { DL_SSL_SYMS(DL_ENTRY) { NULL, NULL } };

DL_NOTE(ssl_note, "[{\"feature\":\"kms-tls\",\"description\":\"TLS streams to a remote KMS, "
	"without HTTP\",\"priority\":\"recommended\",\"soname\":[\"libssl.so.3\"]}]");

static struct dl_library ssl_lib = {
	.soname = "libssl.so.3",
	.package = "libssl3",
	.purpose = "TLS to a KMS",
	.syms = ssl_syms,
};

int dl_ssl_load(struct kc_ctx *ctx)
{
	return dl_library_load(ctx, &ssl_lib);
}
