/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The one HTTPS layer every remote provider uses (libcurl). TLS verification is always on;
 * there is no switch to turn it off. One client per context: the curl handle (and so its
 * connection) is reused across the requests of one command.
 *
 * Deadlines: each request honours ctx->deadline_ms (the operation's overall deadline) as well
 * as its own connect and per-attempt timeouts. Retries: bounded, exponential backoff with
 * jitter, on connection errors, 429 (Retry-After honoured) and 5xx; never on other 4xx.
 *
 * Secrets: request bodies that carry key material or credentials are passed as kc_secret and
 * response bodies are received into a kc_secret through our write callback (never a
 * libcurl-owned buffer of ours). URLs never hold secrets; callers must not put them there.
 * Headers that carry a bearer token are built in secret memory by the caller.
 *
 * API summary (details at each declaration):
 *   http_global_init(), http_ssl_ctx_harden()      load libcurl, its wiping heap; TLS contexts
 *   struct http_opts, http_opts_from_config()      TLS/timing/proxy options, from the config
 *   struct http_request, struct http_response      one request and its answer
 *   http_send(), http_response_clear()             send with retries; free the answer
 *   http_status_errno()                            final HTTP status -> library errno
 *   (the connection cache is the context's: ctx_slot(), freed by kc_free())
 *   http_url_host()                                "host[:port]" of a URL, for error details
 *   http_sbuf_append(), _urlencoded(), _b64()      build request bodies/headers in a kc_secret
 *   http_b64_decode_secret()                       base64 or base64url text -> kc_secret
 *   http_json_parse(), http_json_put_wipe()        response JSON with json-c, wiped when done
 *   http_json_get_string(), http_json_take_secret() read fields; key material -> kc_secret
 */
#ifndef KEKCRYPT_HTTP_H
#define KEKCRYPT_HTTP_H

#include "internal.h"

/* Per-provider TLS and timing options (from the config file). Zero means default. */
struct http_opts {
	const char *ca_file;		/* PEM bundle to trust instead of the system's */
	const char *ca_path;		/* hashed directory of CA certificates */
	const char *client_cert;	/* PEM client certificate (mTLS, Vault cert auth) */
	const char *client_key;		/* its private key (file, must be private) */
	const char *proxy;		/* http://, https:// or socks5h://HOST[:PORT]; NULL or
					 * "": none (the environment's proxies are never used);
					 * loopback and link-local hosts never go through it */
	unsigned connect_timeout_ms;	/* default 5000 */
	unsigned request_timeout_ms;	/* per attempt, default 10000 */
	unsigned max_attempts;		/* default 4 */
	size_t max_response;		/* default 1 MiB */
};

/* Whether a request may go over plain http (http://); TLS verification itself is never
 * switchable off: an https:// URL is always verified. */
enum http_plain {
	HTTP_TLS_ONLY = 0,		/* https only (the default) */
	HTTP_PLAIN_LOCAL,		/* also http:// to a loopback or link-local host
					 * (localhost, 127/8, 169.254/16, ::1, fe80::/10): an
					 * instance metadata endpoint, which never leaves the
					 * machine or its hypervisor */
	HTTP_PLAIN_ANY,			/* also http:// to any host, for a protocol that is
					 * secure without TLS (Tang's blinded exchange): the
					 * caller takes on that everything it sends, its
					 * headers, secret_headers and body included, crosses the
					 * network in clear text and that anyone on the path can
					 * answer */
};

#define HTTP_METHOD_MAX 32

struct http_request {
	const char *method;		/* any RFC 9110 method token ("GET", "POST", "PUT",
					 * "DELETE", "PATCH", "HEAD", ...) of at most
					 * HTTP_METHOD_MAX characters; a body is sent with any
					 * method but HEAD (refused with one); POST, PUT and
					 * PATCH without one send an empty body */
	const char *url;		/* https://..., or http:// as PLAIN allows; never
					 * credentials in it */
	enum http_plain plain;		/* default HTTP_TLS_ONLY. Loopback and link-local
					 * hosts are never reached through a proxy, over http
					 * or https; other hosts use the configured one, if
					 * any. secret_headers go over plain http only to a
					 * local host (HTTP_PLAIN_LOCAL) or where the caller
					 * opted in with HTTP_PLAIN_ANY */
	/* Extra headers, "Name: value" each; the ones holding secrets are kc_secrets holding a
	 * NUL-terminated string. */
	const char *const *headers;
	const struct kc_secret *const *secret_headers;
	const struct kc_secret *body;	/* may be NULL; sent from this memory, not copied */
	const char *content_type;	/* for body, e.g. "application/json" */
};

struct http_response {
	long status;			/* HTTP status of the last attempt */
	struct kc_secret *body;		/* NUL-terminated; len excludes the NUL */
	char www_authenticate[512];	/* WWW-Authenticate of a 401, if any */
	unsigned attempts;		/* how many requests were sent */
};

/*
 * Send a request (retrying as described above). Returns 0 when a response arrived, whatever
 * its status (the caller maps 4xx); negative errno when none did:
 *  -EAGAIN     connection failed / 429 / 5xx after the last attempt (detail says which)
 *  -ETIMEDOUT  the overall deadline passed
 *  -EPROTO     TLS failure (untrusted certificate, hostname mismatch, handshake)
 *  -EBADE      the response was too large or not HTTP
 *  -EINVAL     bad URL, method or options, or plain http that PLAIN does not allow (the
 *              detail names the rule; checked before any connection); -ENOMEM
 */
int http_send(struct kc_ctx *ctx, const struct http_opts *opts, const struct http_request *req,
	      struct http_response *r_resp);
void http_response_clear(struct http_response *resp);

/* Map a final HTTP status to the library's errno: 401 -EKEYREJECTED, 403 -EPERM,
 * 404 -ENOENT, 429/5xx -EAGAIN, other 4xx -EBADE; 2xx 0. */
int http_status_errno(long status);

/* Load libcurl (dl-curl.h) and initialise it once per process, with hygiene.h's wiping heap
 * functions; every use of libcurl in the library comes after it. 0, -ENOTSUP (libcurl or
 * libssl missing: the detail of CTX, which may be NULL, says which and what to install) or
 * -ENOMEM. */
int http_global_init(struct kc_ctx *ctx);

/* What every TLS context of ours gets (CURLOPT_SSL_CTX_FUNCTION, and tls.c's own): no key
 * log callback (so SSLKEYLOGFILE is ignored), SSL_OP_CLEANSE_PLAINTEXT. SSL_CTX is an OpenSSL
 * SSL_CTX. Only once libssl is loaded (http_global_init() or dl_ssl_load(): it calls libssl
 * through dl-ssl.h's pointers). */
void http_ssl_ctx_harden(void *ssl_ctx);

/* Free the context's client (connection cache); called by kc_free(). */

/* The retry policy of a transport with OPTS (NULL: defaults), http_send()'s and tls.c's
 * connect: max_attempts (default 4, at most 10), 200 ms doubling to 5 s (lib/retry.c). */
struct retry_policy http_retry_policy(const struct http_opts *opts);
/* OPTS's connect timeout and per-attempt (per-call, for tls.c) timeout, defaults applied. */
unsigned http_connect_timeout_ms(const struct http_opts *opts);
unsigned http_request_timeout_ms(const struct http_opts *opts);

/*
 * Fill R_OPTS from config section SECTION: ca-file, ca-path, client-cert, client-key, proxy,
 * connect-timeout-ms, request-timeout-ms, max-attempts (unset keys stay 0: default). The
 * strings point into the context's configuration (valid as long as CTX). client-key must be
 * a private file. Returns 0, -EINVAL (bad number or proxy URL), -EACCES/-ENOENT (client-key).
 */
int http_opts_from_config(struct kc_ctx *ctx, const char *section, struct http_opts *r_opts);
/* The keys http_opts_from_config() reads, for the config_keys of an HTTPS provider. */
#define HTTP_CONFIG_KEYS                                                                     \
	"ca-file", "ca-path", "client-cert", "client-key", "proxy", "connect-timeout-ms",    \
	"request-timeout-ms", "max-attempts"

#define HTTP_SYSTEM_CA_BUNDLE "/etc/ssl/certs/ca-certificates.crt"
/* What a boot through SECTION's HTTPS settings needs (boot.c): the network, the CA file
 * (the system bundle without one), the client certificate and its key. */
int http_boot_needs(struct kc_ctx *ctx, const char *section, struct boot_list *list);

/* "host" or "host:port" of URL into BUF (for error details; never user info or query).
 * BUF gets "?" when URL cannot be parsed. */
void http_url_host(const char *url, char *buf, size_t size);

/*
 * Secret string builder: *S is a kc_secret used as a NUL-terminated string (len excludes
 * the NUL), created when NULL and grown by copying into a bigger kc_secret (the old one is
 * wiped). For request bodies and secret headers. All return 0 or -ENOMEM/-EINVAL.
 */
int http_sbuf_append(struct kc_secret **s, const char *str, size_t len);
/* Append STR form-URL-encoded (application/x-www-form-urlencoded: unreserved kept, space
 * as %20, everything else %XX). */
int http_sbuf_append_urlencoded(struct kc_secret **s, const char *str, size_t len);
/* Append BUF as base64 (URL false: RFC 4648 §4, padded) or base64url (§5, unpadded). */
int http_sbuf_append_b64(struct kc_secret **s, const unsigned char *buf, size_t len, bool url);
/* Decode LEN chars of base64 or base64url (padding optional, no whitespace) into a new
 * secret. -EINVAL when STR is not one of them, -ENOMEM. */
int http_b64_decode_secret(const char *str, size_t len, struct kc_secret **r_secret);

/*
 * JSON responses (json-c). json-c keeps strings in its own heap memory, which STYLE.md §5.4
 * forbids for key material; our pragmatic approach: the body is parsed from secret memory,
 * the tokener's internal buffer is wiped before it is freed, fields that carry key material
 * or credentials are copied (decoded) into a kc_secret by http_json_take_secret(), which
 * wipes json-c's copy in place, and http_json_put_wipe() wipes every string of the tree
 * before releasing it. json-c may still have left short-lived copies while growing
 * buffers; that residue is what remains of the risk.
 */
struct json_object;
/* Parse BODY as one JSON object; -EBADE with a detail naming WHAT when it is not. */
int http_json_parse(struct kc_ctx *ctx, const struct kc_secret *body, const char *what,
		    struct json_object **r_obj);
/* Wipe every string in OBJ (recursively) and release it; NULL-safe. */
void http_json_put_wipe(struct json_object *obj);
void http_json_put_wipep(struct json_object **obj);
/* The string member KEY of OBJ (or of OBJ's member PARENT when not NULL), or NULL. */
const char *http_json_get_string(struct json_object *obj, const char *parent, const char *key);
/* Copy string member KEY of OBJ into a new NUL-terminated secret (decoded from base64 or
 * base64url when DECODE_B64) and wipe the JSON copy in place. -ENOENT (absent or not a
 * string), -EINVAL (not base64/base64url), -ENOMEM. */
int http_json_take_secret(struct json_object *obj, const char *key, bool decode_b64,
			  struct kc_secret **r_secret);

/* Fuzzing entry points (tests/fuzz/fuzz-kms-response.c), one per remote provider (in its
 * file): each runs every parser of that KMS's answers on RESP, as if a request had got it back
 * (RESP->body NUL-terminated, as http_send() makes it). They make no request, read no file. */
void azure_fuzz_answer(struct kc_ctx *ctx, const struct http_response *resp);
void vault_fuzz_answer(struct kc_ctx *ctx, const struct http_response *resp);

#endif
