/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A raw TLS stream to a KMS (for protocols that are not HTTP, such as KMIP): connect, write
 * all, read exactly N or up to N bytes, close. OpenSSL's libssl, loaded with dlopen() on first
 * use (dl-ssl.h); libcrypto is linked.
 *
 * Trust, as http.h's: the server certificate is always verified, against opts->ca_file and/or
 * opts->ca_path, or else the system bundle (HTTP_SYSTEM_CA_BUNDLE; never a path from the
 * environment), and its name against HOST (a DNS name, also sent as SNI, or an IP address,
 * matched against the certificate's IP SANs and not sent). TLS 1.2 or newer. An optional
 * client certificate and key (opts->client_cert, opts->client_key) for mTLS. There is no
 * switch to turn verification off.
 *
 * Options come from the provider's config section through http_opts_from_config(): ca-file,
 * ca-path, client-cert, client-key, connect-timeout-ms, request-timeout-ms, max-attempts.
 * Proxies: none. A raw stream is never sent through a proxy, and options naming one are
 * refused (-EINVAL) rather than silently bypassed.
 *
 * Time: every call honours ctx->deadline_ms (the operation's deadline) through a
 * non-blocking socket and poll(); without a deadline, the connect step is bounded by
 * connect-timeout-ms per attempt and each read or write call by request-timeout-ms. A name
 * is looked up asynchronously, so a dead DNS server cannot hold us past the deadline either.
 * The connect step (lookup, TCP, handshake) retries what time may cure (lookup failure,
 * connection refused, unreachable, connect timeout) under the transport policy of lib/retry.c
 * (http_retry_policy(): a few attempts, 200 ms doubling to 5 s, never waiting past the
 * deadline), logging each attempt at debug level ("tls: connect HOST:PORT -> ..."). TLS
 * failures and I/O after the connection is up are not retried: the caller's protocol knows
 * whether repeating a request is safe.
 *
 * Secrets: OpenSSL wipes each record's plaintext once read (SSL_OP_CLEANSE_PLAINTEXT), no key
 * log callback is installed (SSLKEYLOGFILE is ignored), and a failed read wipes what it had
 * put into the caller's buffer, so a half-read key does not linger there.
 *
 * Errors (each with a detail naming HOST:PORT):
 *  -EAGAIN     unreachable after the last attempt (or no time left for another)
 *  -ETIMEDOUT  the deadline (or, without one, the call's own timeout) passed
 *  -EPROTO     TLS failure: untrusted certificate, host name mismatch, handshake, an alert
 *  -EBADE      the peer closed the connection early or sent garbage
 *  -EINVAL     bad arguments or options (a proxy); -ENOMEM
 *  -ENOTSUP    libssl.so.3 cannot be loaded
 * After a failure other than -EINVAL, the connection is unusable: only tls_close() remains.
 * A connection belongs to one thread at a time and lives no longer than its CTX.
 */
#ifndef KEKCRYPT_TLS_H
#define KEKCRYPT_TLS_H

#include "http.h"

struct tls_conn;

/* Connect to HOST (a name or an IP address, IPv6 with or without brackets) port PORT with
 * the TLS options OPTS (NULL: defaults) and complete the handshake. */
int tls_connect(struct kc_ctx *ctx, const struct http_opts *opts, const char *host,
		unsigned port, struct tls_conn **r_conn);
/* Send LEN bytes of BUF (a kc_secret's data is fine: nothing is copied outside OpenSSL's
 * record buffers). */
int tls_write_all(struct tls_conn *conn, const void *buf, size_t len);
/* Read exactly LEN bytes into BUF; the peer closing first is -EBADE (BUF wiped). */
int tls_read_exact(struct tls_conn *conn, void *buf, size_t len);
/* Read at least 1 and at most SIZE bytes into BUF, *R_LEN of them; 0 with *R_LEN 0 when the
 * peer closed the connection cleanly (TLS close_notify); a close without it is -EBADE (a
 * truncation an attacker could cause). */
int tls_read(struct tls_conn *conn, void *buf, size_t size, size_t *r_len);
/* Say goodbye (close_notify, if the connection is healthy and the socket takes it at once)
 * and free everything; NULL-safe. */
void tls_close(struct tls_conn *conn);
void tls_closep(struct tls_conn **conn);

#endif
