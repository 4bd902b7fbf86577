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
	unsigned connect_timeout_ms;	/* default 5000 */
	unsigned request_timeout_ms;	/* per attempt, default 10000 */
	unsigned max_attempts;		/* default 4 */
	size_t max_response;		/* default 1 MiB */
};

struct http_request {
	const char *method;		/* "GET" or "POST" */
	const char *url;		/* https://... (http:// only for 127.0.0.0/8 metadata-style
					 * endpoints the caller explicitly allows) */
	bool allow_plain_http;		/* for the instance metadata endpoint only */
	/* Extra headers, "Name: value" each; the ones holding secrets are kc_secrets holding a
	 * NUL-terminated string. */
	const char *const *headers;
	const struct kc_secret *const *secret_headers;
	const struct kc_secret *body;	/* may be NULL */
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
 *  -EINVAL     bad URL or options; -ENOMEM
 */
int http_send(struct kc_ctx *ctx, const struct http_opts *opts, const struct http_request *req,
	      struct http_response *r_resp);
void http_response_clear(struct http_response *resp);

/* Map a final HTTP status to the library's errno: 401 -EKEYREJECTED, 403 -EPERM,
 * 404 -ENOENT, 429/5xx -EAGAIN, other 4xx -EBADE; 2xx 0. */
int http_status_errno(long status);

/* Free the context's client (connection cache); called by kc_free(). */
void http_client_free(struct kc_ctx *ctx);

#endif
