/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libssl, loaded on first use (dlopen.h): by http.c for the TLS contexts libcurl makes, and by
 * tls.c for its raw TLS streams. libkekcrypt links only libcrypto (which libcryptsetup needs
 * anyway), so a process that talks TLS to no KMS does not map libssl. libssl.so.3 links the
 * same libcrypto.so.3, so libcrypto's functions (errors, X509_VERIFY_PARAM) are called
 * directly on its objects.
 *
 * Only functions: OpenSSL's macros over SSL_CTX_ctrl()/SSL_ctrl() (SSL_CTX_set_min_proto_version,
 * SSL_set_tlsext_host_name) would name the real symbols, so callers use sym_SSL_*ctrl().
 */
#ifndef KEKCRYPT_DL_SSL_H
#define KEKCRYPT_DL_SSL_H

#include <openssl/ssl.h>

#include "dlopen.h"

#define DL_SSL_SYMS(X)                                                                       \
	X(SSL_CTX_check_private_key)                                                         \
	X(SSL_CTX_ctrl)                                                                      \
	X(SSL_CTX_free)                                                                      \
	X(SSL_CTX_load_verify_locations)                                                     \
	X(SSL_CTX_new)                                                                       \
	X(SSL_CTX_set_keylog_callback)                                                       \
	X(SSL_CTX_set_options)                                                               \
	X(SSL_CTX_set_verify)                                                                \
	X(SSL_CTX_use_PrivateKey_file)                                                       \
	X(SSL_CTX_use_certificate_chain_file)                                                \
	X(SSL_connect)                                                                       \
	X(SSL_ctrl)                                                                          \
	X(SSL_free)                                                                          \
	X(SSL_get0_param)                                                                    \
	X(SSL_get_error)                                                                     \
	X(SSL_get_verify_result)                                                             \
	X(SSL_new)                                                                           \
	X(SSL_read_ex)                                                                       \
	X(SSL_set1_host)                                                                     \
	X(SSL_set_fd)                                                                        \
	X(SSL_shutdown)                                                                      \
	X(SSL_write_ex)                                                                      \
	X(TLS_client_method)

DL_SSL_SYMS(DL_DECLARE)

/* Load libssl.so.3, once. 0, or -ENOTSUP with a detail in CTX (may be NULL) naming the
 * library and the package to install. */
int dl_ssl_load(struct kc_ctx *ctx);

#endif
