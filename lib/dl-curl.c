/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libcurl, loaded on first use (dl-curl.h), with the libssl it uses (dl-ssl.c). */
#include <string.h>

#include "dl-curl.h"

DL_CURL_SYMS(DL_DEFINE)

static const struct dl_sym curl_syms[] = { DL_CURL_SYMS(DL_ENTRY) { NULL, NULL } };

DL_NOTE(curl_note, "[{\"feature\":\"kms-https\",\"description\":\"HTTPS to a remote KMS "
	"(Vault Transit, Azure Key Vault)\",\"priority\":\"recommended\","
	"\"soname\":[\"libcurl.so.4\",\"libssl.so.3\"]}]");

static struct dl_library curl_lib = {
	.soname = "libcurl.so.4",
	.package = "libcurl4",
	.purpose = "HTTPS to a KMS",
	.syms = curl_syms,
};

int dl_curl_load(struct kc_ctx *ctx)
{
	const curl_version_info_data *v;
	int r;

	r = dl_library_load(ctx, &curl_lib);
	if (r < 0)
		return r;
	/* http.c hands libcurl's SSL_CTX to libssl.so.3's functions: they must be the same
	 * OpenSSL (libcurl.so.4 then depends on libssl.so.3, and dlopen() finds that one). */
	v = sym_curl_version_info(CURLVERSION_NOW);
	if (!v || !v->ssl_version || strncmp(v->ssl_version, "OpenSSL/3.", 10))
		return ctx_fail(ctx, -ENOTSUP, "libcurl.so.4 uses TLS library '%s', not OpenSSL 3: "
				"install libcurl4 (the OpenSSL flavour)",
				v && v->ssl_version ? v->ssl_version : "none");
	return dl_ssl_load(ctx);
}

int dl_curl_boot_need(struct kc_ctx *ctx, struct boot_list *list)
{
	return dl_library_boot_need(ctx, &curl_lib, list);
}
