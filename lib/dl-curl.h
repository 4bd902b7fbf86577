/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libcurl, loaded on first use (dlopen.h), and libssl (dl-ssl.h), whose functions http.c
 * calls on the TLS contexts libcurl makes. libssl comes with libcurl (which links it), so
 * loading it here costs nothing more, and a process that makes no HTTPS request maps neither: libkekcrypt
 * itself links only libcrypto (which libcryptsetup needs anyway).
 */
#ifndef KEKCRYPT_DL_CURL_H
#define KEKCRYPT_DL_CURL_H

#include <curl/curl.h>

#include "dl-ssl.h"

#define DL_CURL_SYMS(X)                                                                      \
	X(curl_easy_cleanup)                                                                 \
	X(curl_easy_getinfo)                                                                 \
	X(curl_easy_init)                                                                    \
	X(curl_easy_perform)                                                                 \
	X(curl_easy_reset)                                                                   \
	X(curl_easy_setopt)                                                                  \
	X(curl_easy_strerror)                                                                \
	X(curl_free)                                                                         \
	X(curl_global_init_mem)                                                              \
	X(curl_slist_append)                                                                 \
	X(curl_slist_free_all)                                                               \
	X(curl_url)                                                                          \
	X(curl_url_cleanup)                                                                  \
	X(curl_url_get)                                                                      \
	X(curl_url_set)                                                                      \
	X(curl_version_info)

DL_CURL_SYMS(DL_DECLARE)

/*
 * Load libcurl.so.4 and the libssl.so.3 it uses, once. 0, or -ENOTSUP with a detail in CTX
 * (may be NULL): a library is missing, or libcurl's TLS backend is not OpenSSL 3 (our TLS
 * hardening works on OpenSSL's SSL_CTX).
 */
int dl_curl_load(struct kc_ctx *ctx);
/* Its file, for an initramfs (dl_library_boot_need()). */
int dl_curl_boot_need(struct kc_ctx *ctx, struct boot_list *list);

#endif
