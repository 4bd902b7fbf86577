/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The HTTPS layer of the remote providers, on libcurl (see http.h for the contract).
 *
 * libcurl is loaded with dlopen() when the first request, URL or proxy needs it (dl-curl.h):
 * every libcurl function is called through its sym_ pointer, after http_global_init().
 *
 * One easy handle per context: curl_easy_reset() between requests clears the options but
 * keeps the handle's connection cache, so the requests of one command reuse one TLS
 * connection. Bodies never pass through a buffer libcurl allocates for us: responses are
 * appended to a kc_secret by our write callback, request bodies are sent from the caller's
 * kc_secret with CURLOPT_POSTFIELDS (no copy). libcurl does copy header strings (slist) and
 * keeps its own send buffers; we wipe the slist copies, and libcurl's whole heap is wiped on
 * free: the library initialises libcurl once, with hygiene.h's wiping functions.
 *
 * Nothing is taken from the environment (DESIGN.md, "Process hygiene"): every request sets
 * CURLOPT_PROXY (the configured proxy, or "" for none, which also stops libcurl from reading
 * https_proxy, ALL_PROXY and the like) and CURLOPT_NOPROXY (so NO_PROXY is ignored too), and
 * every TLS context gets its key log callback removed (libcurl installs one when SSLKEYLOGFILE
 * is set) and SSL_OP_CLEANSE_PLAINTEXT set.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <json-c/json.h>

#include "dl-curl.h"
#include "http.h"
#include "hygiene.h"

#define DEFAULT_CONNECT_TIMEOUT_MS 5000u
#define DEFAULT_REQUEST_TIMEOUT_MS 10000u
#define DEFAULT_MAX_ATTEMPTS 4u
/* A call's first request is sent with at least this much time, deadline or not. */
#define FIRST_ATTEMPT_MIN_MS 3000u
#define DEFAULT_MAX_RESPONSE (1024u * 1024u)
#define MAX_ATTEMPTS_LIMIT 10u
#define BACKOFF_BASE_MS 200u
#define BACKOFF_CAP_MS 5000u
#define RETRY_AFTER_MAX_S 3600L

struct http_client {
	CURL *curl;
};

/* One request as http_send() runs it, shared with the callbacks. */
struct http_call {
	struct kc_ctx *ctx;
	const struct http_request *req;
	struct curl_slist *headers;
	unsigned connect_ms, request_ms;
	struct retry retry;		/* the attempts of this request (lib/retry.c) */
	size_t max_response;
	const char *ca_file, *ca_path, *client_cert, *client_key, *proxy;
	bool local;			/* loopback or link-local host: never via a proxy */
	bool plain;			/* an http:// URL that the request's plain allows */
	char host[256];			/* host[:port], for details */
	char log_url[512];		/* URL without query, for debug logs */
	char errbuf[CURL_ERROR_SIZE];
	/* per attempt */
	struct kc_secret *body;
	bool too_large, oom;
	char www_auth[512];
	long retry_after;		/* seconds, -1 when absent */
};

/* ---------------------------------------------------------------------------------------- */
/* libcurl's global state                                                                   */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_FAILED_INIT;

static void curl_init(void)
{
	/* Had the application initialised libcurl before, this keeps its functions. */
	curl_init_result = sym_curl_global_init_mem(CURL_GLOBAL_DEFAULT, hygiene_malloc,
						    hygiene_free, hygiene_realloc, hygiene_strdup,
						    hygiene_calloc);
}

int http_global_init(struct kc_ctx *ctx)
{
	int r;

	r = dl_curl_load(ctx);
	if (r < 0)
		return r;
	pthread_once(&curl_once, curl_init);
	if (curl_init_result != CURLE_OK)
		return ctx_fail(ctx, -ENOMEM, "libcurl initialisation failed");
	return 0;
}

static void url_part(CURLU *u, CURLUPart what, char *buf, size_t size)
{
	char *s = NULL;

	if (sym_curl_url_get(u, what, &s, 0) == CURLUE_OK && s)
		snprintf(buf, size, "%s", s);
	else
		buf[0] = '\0';
	sym_curl_free(s);
}

/* ---------------------------------------------------------------------------------------- */
/* Options                                                                                  */

static int parse_uint(struct kc_ctx *ctx, const char *section, const char *key,
		      unsigned min, unsigned max, unsigned *r_val)
{
	const char *s = config_get(ctx->config, section, key);
	unsigned long v;
	char *end;

	if (!s)
		return 0;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || !isdigit((unsigned char)*s) || v < min || v > max)
		return ctx_fail(ctx, -EINVAL, "configuration [%s] %s = '%s': expected a number "
				"from %u to %u", section, key, s, min, max);
	*r_val = (unsigned)v;
	return 0;
}

/* A proxy URL: http://, https:// or socks5h:// (the proxy resolves names), a host, maybe a
 * port, nothing else; credentials do not belong in a URL. */
static int check_proxy(struct kc_ctx *ctx, const char *section, const char *proxy)
{
	char scheme[16], host[256], user[8], pass[8], path[8], query[8];
	CURLU *u;
	int r = 0;

	r = http_global_init(ctx);
	if (r < 0)
		return r;
	u = sym_curl_url();
	if (!u)
		return -ENOMEM;
	if (sym_curl_url_set(u, CURLUPART_URL, proxy, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) {
		r = -EINVAL;
		goto out;
	}
	url_part(u, CURLUPART_SCHEME, scheme, sizeof(scheme));
	url_part(u, CURLUPART_HOST, host, sizeof(host));
	url_part(u, CURLUPART_USER, user, sizeof(user));
	url_part(u, CURLUPART_PASSWORD, pass, sizeof(pass));
	url_part(u, CURLUPART_PATH, path, sizeof(path));
	url_part(u, CURLUPART_QUERY, query, sizeof(query));
	if ((strcmp(scheme, "http") && strcmp(scheme, "https") && strcmp(scheme, "socks5h")) ||
	    !host[0] || user[0] || pass[0] || (path[0] && strcmp(path, "/")) || query[0] ||
	    strpbrk(proxy, "@#"))
		r = -EINVAL;
out:
	sym_curl_url_cleanup(u);
	if (r == -EINVAL)
		/* Not echoed: a rejected value might hold a password. */
		return ctx_fail(ctx, r, "configuration [%s] proxy: expected http://, https:// or "
				"socks5h://HOST[:PORT] without credentials", section);
	return r;
}

int http_opts_from_config(struct kc_ctx *ctx, const char *section, struct http_opts *r_opts)
{
	struct http_opts o = { 0 };
	int r;

	o.ca_file = config_get(ctx->config, section, "ca-file");
	o.ca_path = config_get(ctx->config, section, "ca-path");
	o.client_cert = config_get(ctx->config, section, "client-cert");
	o.client_key = config_get(ctx->config, section, "client-key");
	o.proxy = config_get(ctx->config, section, "proxy");
	r = o.proxy && *o.proxy ? check_proxy(ctx, section, o.proxy) : 0;
	if (r >= 0)
		r = parse_uint(ctx, section, "connect-timeout-ms", 1, 600000, &o.connect_timeout_ms);
	if (r >= 0)
		r = parse_uint(ctx, section, "request-timeout-ms", 1, 3600000,
			       &o.request_timeout_ms);
	if (r >= 0)
		r = parse_uint(ctx, section, "max-attempts", 1, MAX_ATTEMPTS_LIMIT,
			       &o.max_attempts);
	if (r < 0)
		return r;
	if (!o.client_cert != !o.client_key)
		return ctx_fail(ctx, -EINVAL, "configuration [%s]: client-cert and client-key go "
				"together", section);
	/* libcurl opens these by path: check them here (the key private, the others safe from
	 * other users), so that nobody but root decides whom we trust or present. */
	if (o.client_key)
		r = trust_check_path(ctx, o.client_key, "client key", TRUST_PRIVATE);
	if (r >= 0 && o.client_cert)
		r = trust_check_path(ctx, o.client_cert, "client certificate", 0);
	if (r >= 0 && o.ca_file)
		r = trust_check_path(ctx, o.ca_file, "CA file", 0);
	if (r < 0)
		return r;
	*r_opts = o;
	return 0;
}

int http_boot_needs(struct kc_ctx *ctx, const char *section, struct boot_list *list)
{
	const char *ca_file = config_get(ctx->config, section, "ca-file");
	const char *ca_path = config_get(ctx->config, section, "ca-path");
	int r;

	r = boot_add(list, KC_BOOT_NETWORK, NULL, "a KMS reached over HTTPS ([%s])", section);
	if (r >= 0)
		r = dl_curl_boot_need(ctx, list);
	if (r >= 0 && !ca_file && !ca_path)
		r = boot_add(list, KC_BOOT_FILE, HTTP_SYSTEM_CA_BUNDLE, "the system's CA bundle "
			     "([%s] names no ca-file)", section);
	if (r >= 0)
		r = boot_add_listed(ctx, list, KC_BOOT_FILE, section, "ca-file");
	if (r >= 0)
		r = boot_add_listed(ctx, list, KC_BOOT_FILE, section, "ca-path");
	if (r >= 0)
		r = boot_add_listed(ctx, list, KC_BOOT_FILE, section, "client-cert");
	if (r >= 0)
		r = boot_add_listed(ctx, list, KC_BOOT_SECRET, section, "client-key");
	return r;
}

/* ---------------------------------------------------------------------------------------- */
/* URLs                                                                                     */

static bool host_is_local(const char *host)
{
	unsigned char a[16];
	char buf[64];
	size_t n = strlen(host);

	if (!strcasecmp(host, "localhost"))
		return true;
	if (inet_pton(AF_INET, host, a) == 1)
		return a[0] == 127 || (a[0] == 169 && a[1] == 254);
	if (n < 3 || n - 2 >= sizeof(buf) || host[0] != '[' || host[n - 1] != ']')
		return false;
	memcpy(buf, host + 1, n - 2);
	buf[n - 2] = '\0';
	if (inet_pton(AF_INET6, buf, a) != 1)
		return false;
	/* ::1, fe80::/10 */
	return (!memcmp(a, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16)) ||
	       (a[0] == 0xfe && (a[1] & 0xc0) == 0x80);
}

void http_url_host(const char *url, char *buf, size_t size)
{
	char host[256], port[16];
	CURLU *u;

	snprintf(buf, size, "?");
	/* Every use of libcurl comes after http_global_init(): a URL handle allocated by
	 * malloc() must not be freed by hygiene_free() (or the other way round). */
	if (http_global_init(NULL) < 0 || !(u = sym_curl_url()))
		return;
	if (sym_curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK) {
		url_part(u, CURLUPART_HOST, host, sizeof(host));
		url_part(u, CURLUPART_PORT, port, sizeof(port));
		snprintf(buf, size, "%s%s%s", host, port[0] ? ":" : "", port);
	}
	sym_curl_url_cleanup(u);
}

/* Check the URL (scheme, no credentials in it) and fill c->host, c->log_url, c->local. */
static int call_check_url(struct http_call *c)
{
	char scheme[16], host[200], port[16], user[8];
	CURLU *u;
	int r = 0;

	r = http_global_init(c->ctx);
	if (r < 0)
		return r;
	u = sym_curl_url();
	if (!u)
		return -ENOMEM;
	if (sym_curl_url_set(u, CURLUPART_URL, c->req->url, 0) != CURLUE_OK) {
		r = ctx_fail(c->ctx, -EINVAL, "invalid KMS URL '%s'", c->req->url);
		goto out;
	}
	url_part(u, CURLUPART_SCHEME, scheme, sizeof(scheme));
	url_part(u, CURLUPART_HOST, host, sizeof(host));
	url_part(u, CURLUPART_PORT, port, sizeof(port));
	url_part(u, CURLUPART_USER, user, sizeof(user));
	snprintf(c->host, sizeof(c->host), "%s%s%s", host, port[0] ? ":" : "", port);
	c->local = host_is_local(host);
	if (user[0]) {
		r = ctx_fail(c->ctx, -EINVAL, "KMS URL for %s must not hold credentials", c->host);
		goto out;
	}
	c->plain = !strcmp(scheme, "http");
	if (strcmp(scheme, "https") && !c->plain) {
		r = ctx_fail(c->ctx, -EINVAL, "KMS URL for %s must use https", c->host);
		goto out;
	}
	/* Refused here, before any connection: nothing of the request leaves in clear text.
	 * This is also what keeps secret_headers off plain http to a remote host: that takes
	 * HTTP_PLAIN_ANY, the caller's explicit word that its protocol needs no TLS. */
	if (c->plain && c->req->plain != HTTP_PLAIN_ANY &&
	    !(c->req->plain == HTTP_PLAIN_LOCAL && c->local)) {
		r = ctx_fail(c->ctx, -EINVAL, "KMS URL for %s must use https (plain http only %s)",
			     c->host, c->req->plain == HTTP_PLAIN_LOCAL ?
			     "to a loopback or link-local host" : "where the provider allows it");
		goto out;
	}
	sym_curl_url_set(u, CURLUPART_QUERY, NULL, 0);
	sym_curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0);
	url_part(u, CURLUPART_URL, c->log_url, sizeof(c->log_url));
out:
	sym_curl_url_cleanup(u);
	return r;
}

/* An RFC 9110 method token (tchar: ALPHA, DIGIT and !#$%&'*+-.^_`|~): it goes onto the
 * request line as it is, so anything else (space, CR, LF) could forge the request. HEAD with
 * a body is refused: the body would not be sent. */
static int call_check_method(struct http_call *c)
{
	static const char tchar[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				    "0123456789!#$%&'*+-.^_`|~";
	const char *m = c->req->method;
	size_t n = m ? strlen(m) : 0;

	/* Not echoed: it may hold control characters. */
	if (!n || n > HTTP_METHOD_MAX || strspn(m, tchar) != n)
		return ctx_fail(c->ctx, -EINVAL, "invalid HTTP method for %s (not a token of at "
				"most %d characters)", c->host, HTTP_METHOD_MAX);
	if (!strcmp(m, "HEAD") && c->req->body)
		return ctx_fail(c->ctx, -EINVAL, "HTTP HEAD request to %s with a body", c->host);
	return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Callbacks                                                                                */

/* Append to the response body in secret memory; returning less than asked aborts. */
static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct http_call *c = userdata;
	size_t n = size * nmemb, used = c->body ? c->body->len : 0, want;
	struct kc_secret *nb;

	if (n > c->max_response || used > c->max_response - n) {
		c->too_large = true;
		return 0;
	}
	if (!c->body || used + n + 1 > c->body->size) {
		want = c->body ? c->body->size * 2 : 4096;
		if (want < used + n + 1)
			want = used + n + 1;
		if (want > c->max_response + 1)
			want = c->max_response + 1;
		nb = kc_secret_alloc(want);
		if (!nb) {
			c->oom = true;
			return 0;
		}
		if (c->body)
			memcpy(nb->data, c->body->data, used);
		kc_secret_free(c->body);
		c->body = nb;
	}
	memcpy(c->body->data + used, ptr, n);
	c->body->len = used + n;
	c->body->data[c->body->len] = '\0';
	return n;
}

/* The value of header NAME in the raw line BUF (LEN bytes), trimmed, or NULL. */
static const char *header_value(const char *buf, size_t len, const char *name, size_t *r_len)
{
	size_t nl = strlen(name);

	if (len <= nl || strncasecmp(buf, name, nl) || buf[nl] != ':')
		return NULL;
	buf += nl + 1;
	len -= nl + 1;
	while (len && (*buf == ' ' || *buf == '\t')) {
		buf++;
		len--;
	}
	while (len && isspace((unsigned char)buf[len - 1]))
		len--;
	*r_len = len;
	return buf;
}

static size_t header_cb(char *buf, size_t size, size_t nitems, void *userdata)
{
	struct http_call *c = userdata;
	size_t n = size * nitems, vlen;
	const char *v;
	char num[16];

	if (n >= 5 && !strncmp(buf, "HTTP/", 5)) {
		/* A new response (after 1xx or on a retry): forget the previous headers. */
		c->www_auth[0] = '\0';
		c->retry_after = -1;
	} else if ((v = header_value(buf, n, "WWW-Authenticate", &vlen))) {
		snprintf(c->www_auth, sizeof(c->www_auth), "%.*s", (int)vlen, v);
	} else if ((v = header_value(buf, n, "Retry-After", &vlen)) && vlen > 0 &&
		   vlen < sizeof(num)) {
		/* Delta-seconds only; an HTTP-date falls back to our backoff. */
		memcpy(num, v, vlen);
		num[vlen] = '\0';
		if (strspn(num, "0123456789") == vlen)
			c->retry_after = strtol(num, NULL, 10) > RETRY_AFTER_MAX_S ?
					 RETRY_AFTER_MAX_S : strtol(num, NULL, 10);
	}
	return n;
}

/* ---------------------------------------------------------------------------------------- */
/* Transfers                                                                                */

/* The context's connection cache: freed with the context (ctx_slot()). */
static void client_free(void *data)
{
	struct http_client *cl = data;

	sym_curl_easy_cleanup(cl->curl);
	free(cl);
}

static int client_get(struct kc_ctx *ctx, CURL **r_curl)
{
	static const char key;	/* the slot's name: its address */
	struct http_client *cl = ctx_slot(ctx, &key);
	int r;

	if (!cl) {
		r = http_global_init(ctx);
		if (r < 0)
			return r;
		cl = calloc(1, sizeof(*cl));
		if (!cl)
			return -ENOMEM;
		cl->curl = sym_curl_easy_init();
		if (!cl->curl || ctx_slot_set(ctx, &key, cl, client_free) < 0) {
			if (cl->curl)
				sym_curl_easy_cleanup(cl->curl);
			free(cl);
			return ctx_fail(ctx, -ENOMEM, "libcurl initialisation failed");
		}
	}
	*r_curl = cl->curl;
	return 0;
}

/* Wipe every header string (some hold bearer tokens) before freeing the list. NULL when
 * libcurl may not be loaded. */
static void headers_free(struct curl_slist *list)
{
	if (!list)
		return;
	for (struct curl_slist *l = list; l; l = l->next)
		secret_wipe(l->data, strlen(l->data));
	sym_curl_slist_free_all(list);
}

static bool header_ok(const char *h)
{
	return h && *h && !strpbrk(h, "\r\n") && strchr(h, ':');
}

static int headers_build(struct http_call *c)
{
	const struct http_request *req = c->req;
	struct curl_slist *l;
	char ct[128];

	/* No "Expect: 100-continue" round trip for our small bodies. */
	c->headers = sym_curl_slist_append(NULL, "Expect:");
	if (!c->headers)
		return -ENOMEM;
	if (req->body) {
		snprintf(ct, sizeof(ct), "Content-Type: %s",
			 req->content_type ?: "application/json");
		if (!header_ok(ct) || !(l = sym_curl_slist_append(c->headers, ct)))
			return -EINVAL;
		c->headers = l;
	}
	for (size_t i = 0; req->headers && req->headers[i]; i++) {
		if (!header_ok(req->headers[i]))
			return ctx_fail(c->ctx, -EINVAL, "invalid HTTP header for %s", c->host);
		if (!(l = sym_curl_slist_append(c->headers, req->headers[i])))
			return -ENOMEM;
		c->headers = l;
	}
	for (size_t i = 0; req->secret_headers && req->secret_headers[i]; i++) {
		const struct kc_secret *s = req->secret_headers[i];

		if (s->len >= s->size || s->data[s->len] != '\0' ||
		    strlen((const char *)s->data) != s->len || !header_ok((const char *)s->data))
			return ctx_fail(c->ctx, -EINVAL, "invalid secret HTTP header for %s",
					c->host);
		if (!(l = sym_curl_slist_append(c->headers, (const char *)s->data)))
			return -ENOMEM;
		c->headers = l;
	}
	return 0;
}

void http_ssl_ctx_harden(void *ssl_ctx)
{
	/* libcurl has installed its SSLKEYLOGFILE callback by the time it calls us (curl 7.88
	 * lib/vtls/openssl.c, ossl_connect_step1(): the keylog callback, then the application's
	 * CURLOPT_SSL_CTX_FUNCTION); a NULL callback logs nothing. CLEANSE_PLAINTEXT: OpenSSL 3
	 * wipes the plaintext of each record once the application has read it. */
	sym_SSL_CTX_set_keylog_callback(ssl_ctx, NULL);
	sym_SSL_CTX_set_options(ssl_ctx, SSL_OP_CLEANSE_PLAINTEXT);
}

static CURLcode ssl_ctx_cb(CURL *curl, void *ssl_ctx, void *userdata)
{
	http_ssl_ctx_harden(ssl_ctx);
	return CURLE_OK;
}

#define SETOPT(e, curl, opt, val)                                                            \
	do {                                                                                 \
		if ((e) == CURLE_OK)                                                         \
			(e) = sym_curl_easy_setopt((curl), (opt), (val));                        \
	} while (0)

/* Methods that carry a body by definition: sent with Content-Length: 0 when there is none,
 * as servers (AWS's IMDSv2 token PUT among them) expect. */
static bool method_has_body(const char *method)
{
	return !strcmp(method, "POST") || !strcmp(method, "PUT") || !strcmp(method, "PATCH");
}

/* The method and body options. libcurl knows GET, HEAD and POST; any other method is
 * CURLOPT_CUSTOMREQUEST on top of the GET or POST transfer it resembles, so that a PUT sends
 * its body the way a POST does: from the caller's secret memory (CURLOPT_POSTFIELDS does not
 * copy), never through a read callback that would stage it in a buffer of libcurl's. */
static CURLcode call_setopt_method(struct http_call *c, CURL *curl, CURLcode e)
{
	const struct http_request *req = c->req;

	if (!strcmp(req->method, "HEAD")) {
		/* No body either way: libcurl must not wait for one after the headers. */
		SETOPT(e, curl, CURLOPT_NOBODY, 1L);
	} else if (req->body || method_has_body(req->method)) {
		SETOPT(e, curl, CURLOPT_POST, 1L);
		SETOPT(e, curl, CURLOPT_POSTFIELDS,
		       req->body ? (const char *)req->body->data : "");
		SETOPT(e, curl, CURLOPT_POSTFIELDSIZE_LARGE,
		       (curl_off_t)(req->body ? req->body->len : 0));
	} else {
		SETOPT(e, curl, CURLOPT_HTTPGET, 1L);
	}
	if (strcmp(req->method, "GET") && strcmp(req->method, "HEAD") &&
	    strcmp(req->method, "POST"))
		SETOPT(e, curl, CURLOPT_CUSTOMREQUEST, req->method);
	return e;
}

/* Set every option for one attempt; TIMEOUT_MS is already clipped to the deadline. */
static CURLcode call_setopts(struct http_call *c, CURL *curl, unsigned timeout_ms)
{
	const struct http_request *req = c->req;
	const char *protos = c->plain ? "http" : "https";
	unsigned connect_ms = c->connect_ms < timeout_ms ? c->connect_ms : timeout_ms;
	CURLcode e = CURLE_OK;

	sym_curl_easy_reset(curl);	/* keeps the connection cache */
	SETOPT(e, curl, CURLOPT_URL, req->url);
	SETOPT(e, curl, CURLOPT_PROTOCOLS_STR, protos);
	SETOPT(e, curl, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	SETOPT(e, curl, CURLOPT_FOLLOWLOCATION, 0L);
	SETOPT(e, curl, CURLOPT_VERBOSE, 0L);
	SETOPT(e, curl, CURLOPT_NOSIGNAL, 1L);
	SETOPT(e, curl, CURLOPT_NOPROGRESS, 1L);
	/* Verification is always on; VERIFYHOST 2 is the "check the name" value. */
	SETOPT(e, curl, CURLOPT_SSL_VERIFYPEER, 1L);
	SETOPT(e, curl, CURLOPT_SSL_VERIFYHOST, 2L);
	if (c->ca_file) {
		SETOPT(e, curl, CURLOPT_CAINFO, c->ca_file);
		/* The configured bundle replaces the system's: no default CA directory. */
		SETOPT(e, curl, CURLOPT_CAPATH, c->ca_path);
	} else if (c->ca_path) {
		SETOPT(e, curl, CURLOPT_CAPATH, c->ca_path);
	}
	if (c->client_cert) {
		SETOPT(e, curl, CURLOPT_SSLCERT, c->client_cert);
		SETOPT(e, curl, CURLOPT_SSLCERTTYPE, "PEM");
		SETOPT(e, curl, CURLOPT_SSLKEY, c->client_key);
		SETOPT(e, curl, CURLOPT_SSLKEYTYPE, "PEM");
	}
	/* A libcurl built without OpenSSL refuses this option, and so the request. */
	SETOPT(e, curl, CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_cb);
	/* The configured proxy or none: "" stops libcurl from reading https_proxy and the
	 * like, and an explicit NOPROXY from reading NO_PROXY. */
	SETOPT(e, curl, CURLOPT_PROXY, c->proxy ? c->proxy : "");
	SETOPT(e, curl, CURLOPT_NOPROXY, c->local ? "*" : "");
	SETOPT(e, curl, CURLOPT_CONNECTTIMEOUT_MS, (long)connect_ms);
	SETOPT(e, curl, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	SETOPT(e, curl, CURLOPT_USERAGENT, "kekcrypt/" PACKAGE_VERSION);
	SETOPT(e, curl, CURLOPT_ERRORBUFFER, c->errbuf);
	SETOPT(e, curl, CURLOPT_WRITEFUNCTION, write_cb);
	SETOPT(e, curl, CURLOPT_WRITEDATA, (void *)c);
	SETOPT(e, curl, CURLOPT_HEADERFUNCTION, header_cb);
	SETOPT(e, curl, CURLOPT_HEADERDATA, (void *)c);
	SETOPT(e, curl, CURLOPT_HTTPHEADER, c->headers);
	return call_setopt_method(c, curl, e);
}

static bool curl_is_tls_error(CURLcode e)
{
	switch (e) {
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CLIENTCERT:
	case CURLE_USE_SSL_FAILED:
		return true;
	default:
		return false;
	}
}

static bool curl_is_retryable(CURLcode e)
{
	switch (e) {
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
		return true;
	default:
		return false;
	}
}

/* Outcome of one attempt. */
enum attempt_result {
	ATTEMPT_DONE,		/* a response to hand to the caller */
	ATTEMPT_RETRY,		/* worth retrying; c->errbuf says why */
	ATTEMPT_FAIL,		/* r holds the error; detail set */
};

static const char *call_errtext(struct http_call *c, CURLcode e)
{
	return c->errbuf[0] ? c->errbuf : sym_curl_easy_strerror(e);
}

/* Classify a transfer that ended in a curl error E. */
static enum attempt_result classify_error(struct http_call *c, CURLcode e, int *r)
{
	struct kc_ctx *ctx = c->ctx;

	if (c->oom) {
		*r = -ENOMEM;
		return ATTEMPT_FAIL;
	}
	if (c->too_large) {
		*r = ctx_fail(ctx, -EBADE, "KMS %s sent a response larger than %zu bytes",
			      c->host, c->max_response);
		return ATTEMPT_FAIL;
	}
	if (curl_is_tls_error(e)) {
		*r = ctx_fail(ctx, -EPROTO, "TLS failure talking to %s: %s", c->host,
			      call_errtext(c, e));
		return ATTEMPT_FAIL;
	}
	if (e == CURLE_OPERATION_TIMEDOUT && ctx->deadline_ms &&
	    util_now_ms() >= ctx->deadline_ms) {
		*r = ctx_fail(ctx, -ETIMEDOUT, "no answer from KMS %s before the deadline",
			      c->host);
		return ATTEMPT_FAIL;
	}
	if (curl_is_retryable(e))
		return ATTEMPT_RETRY;
	switch (e) {
	case CURLE_OUT_OF_MEMORY:
		*r = -ENOMEM;
		break;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		*r = ctx_fail(ctx, -EINVAL, "KMS URL for %s: %s", c->host, call_errtext(c, e));
		break;
	case CURLE_PARTIAL_FILE:
		*r = ctx_fail(ctx, -EBADE, "KMS %s sent a truncated response: %s", c->host,
			      call_errtext(c, e));
		break;
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_BAD_CONTENT_ENCODING:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		*r = ctx_fail(ctx, -EBADE, "KMS %s did not answer HTTP: %s", c->host,
			      call_errtext(c, e));
		break;
	default:
		*r = ctx_fail(ctx, -EAGAIN, "KMS %s unreachable: %s", c->host,
			      call_errtext(c, e));
		break;
	}
	return ATTEMPT_FAIL;
}

static void call_reset_attempt(struct http_call *c)
{
	kc_secret_free(c->body);
	c->body = NULL;
	c->too_large = c->oom = false;
	c->www_auth[0] = '\0';
	c->retry_after = -1;
	c->errbuf[0] = '\0';
}

/* One request/response. */
static enum attempt_result call_attempt(struct http_call *c, CURL *curl, unsigned attempt,
					long *r_status, int *r)
{
	struct kc_ctx *ctx = c->ctx;
	uint64_t start = util_now_ms(), timeout = c->request_ms;
	CURLcode e;

	if (ctx->deadline_ms) {
		uint64_t left = start < ctx->deadline_ms ? ctx->deadline_ms - start : 0;

		/* The deadline bounds the wait for a KMS that does not answer; it never keeps a
		 * call from asking once, which getting ready (libcurl and its libraries read
		 * from a cold disk of a slow machine, at boot) may have taken all of. */
		if (attempt == 1 && left < FIRST_ATTEMPT_MIN_MS)
			left = FIRST_ATTEMPT_MIN_MS;
		if (!left) {
			*r = ctx_fail(ctx, -ETIMEDOUT, "KMS %s: the deadline passed (%u attempts)",
				      c->host, attempt - 1);
			return ATTEMPT_FAIL;
		}
		if (left < timeout)
			timeout = left;
	}
	call_reset_attempt(c);
	e = call_setopts(c, curl, (unsigned)timeout);
	if (e != CURLE_OK) {
		*r = ctx_fail(ctx, e == CURLE_OUT_OF_MEMORY ? -ENOMEM : -EINVAL,
			      "libcurl refused an option for %s: %s", c->host,
			      sym_curl_easy_strerror(e));
		return ATTEMPT_FAIL;
	}
	e = sym_curl_easy_perform(curl);
	*r_status = 0;
	if (e == CURLE_OK)
		sym_curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, r_status);
	if (e == CURLE_OK)
		log_dbg(ctx, "http: %s %s -> %ld (attempt %u, %llu ms)", c->req->method,
			c->log_url, *r_status, attempt,
			(unsigned long long)(util_now_ms() - start));
	else
		log_dbg(ctx, "http: %s %s -> %s (attempt %u, %llu ms)", c->req->method,
			c->log_url, call_errtext(c, e), attempt,
			(unsigned long long)(util_now_ms() - start));
	if (e != CURLE_OK)
		return classify_error(c, e, r);
	if (*r_status == 429 || (*r_status >= 500 && *r_status <= 599)) {
		snprintf(c->errbuf, sizeof(c->errbuf), "HTTP %ld", *r_status);
		return ATTEMPT_RETRY;
	}
	return ATTEMPT_DONE;
}

/* After a retryable failure: wait as the retry policy says and return true, or set *r and
 * return false. A Retry-After of a 429 or 503 takes the backoff's place. */
static bool call_wait_retry(struct http_call *c, long status, int *r)
{
	struct kc_ctx *ctx = c->ctx;
	uint64_t delay = 0;

	switch (retry_next(&c->retry, c->retry_after >= 0 && (status == 429 || status == 503) ?
			   (uint64_t)c->retry_after * 1000 : RETRY_NO_HINT, &delay)) {
	case RETRY_AGAIN:
		log_dbg(ctx, "http: retrying %s in %llu ms", c->log_url,
			(unsigned long long)delay);
		retry_sleep(delay);
		return true;
	case RETRY_STOP_ATTEMPTS:
		if (status)
			*r = ctx_fail(ctx, -EAGAIN, "KMS %s unavailable: HTTP %ld after %u "
				      "attempts", c->host, status, c->retry.attempts);
		else
			*r = ctx_fail(ctx, -EAGAIN, "KMS %s unreachable: %s (%u attempts)", c->host,
				      c->errbuf, c->retry.attempts);
		return false;
	default:
		/* Waiting would only end at the deadline: say why we stopped now. */
		*r = ctx_fail(ctx, -EAGAIN, "KMS %s %s: %s%s; no time left for another attempt "
			      "before the deadline (%u attempts)", c->host,
			      status ? "unavailable" : "unreachable", c->errbuf,
			      c->retry_after >= 0 ? " with Retry-After" : "", c->retry.attempts);
		return false;
	}
}

struct retry_policy http_retry_policy(const struct http_opts *o)
{
	struct retry_policy policy = { .base_ms = BACKOFF_BASE_MS, .cap_ms = BACKOFF_CAP_MS };

	policy.max_attempts = o && o->max_attempts ? o->max_attempts : DEFAULT_MAX_ATTEMPTS;
	if (policy.max_attempts > MAX_ATTEMPTS_LIMIT)
		policy.max_attempts = MAX_ATTEMPTS_LIMIT;
	return policy;
}

unsigned http_connect_timeout_ms(const struct http_opts *o)
{
	return o && o->connect_timeout_ms ? o->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
}

unsigned http_request_timeout_ms(const struct http_opts *o)
{
	return o && o->request_timeout_ms ? o->request_timeout_ms : DEFAULT_REQUEST_TIMEOUT_MS;
}

static void call_init(struct http_call *c, struct kc_ctx *ctx, const struct http_opts *o,
		      const struct http_request *req)
{
	struct retry_policy policy = http_retry_policy(o);

	c->ctx = ctx;
	c->req = req;
	c->connect_ms = http_connect_timeout_ms(o);
	c->request_ms = http_request_timeout_ms(o);
	retry_init(&c->retry, &policy, ctx->deadline_ms);
	c->max_response = o && o->max_response ? o->max_response : DEFAULT_MAX_RESPONSE;
	if (o) {
		c->ca_file = o->ca_file;
		c->ca_path = o->ca_path;
		c->client_cert = o->client_cert;
		c->client_key = o->client_key;
		c->proxy = o->proxy;
	}
	c->retry_after = -1;
}

int http_send(struct kc_ctx *ctx, const struct http_opts *opts, const struct http_request *req,
	      struct http_response *r_resp)
{
	struct http_call c = { 0 };
	enum attempt_result ar = ATTEMPT_FAIL;
	unsigned attempt;
	long status = 0;
	CURL *curl = NULL;
	int r;

	if (!ctx || !req || !req->url || !r_resp)
		return -EINVAL;
	call_init(&c, ctx, opts, req);
	r = call_check_url(&c);
	if (r >= 0)
		r = call_check_method(&c);
	if (r >= 0)
		r = client_get(ctx, &curl);
	if (r >= 0)
		r = headers_build(&c);
	for (attempt = 1; r >= 0; attempt++) {
		ar = call_attempt(&c, curl, attempt, &status, &r);
		if (ar != ATTEMPT_RETRY || !call_wait_retry(&c, status, &r))
			break;
	}
	if (r >= 0 && ar == ATTEMPT_DONE && !c.body) {
		/* No body (HEAD, 204): an empty string, not kc_secret_alloc()'s 1 byte in use. */
		c.body = kc_secret_alloc(1);
		if (c.body)
			c.body->len = 0;
		else
			r = -ENOMEM;
	}
	if (r >= 0 && ar == ATTEMPT_DONE) {
		memset(r_resp, 0, sizeof(*r_resp));
		r_resp->status = status;
		r_resp->body = TAKE_PTR(c.body);
		r_resp->attempts = attempt;
		snprintf(r_resp->www_authenticate, sizeof(r_resp->www_authenticate), "%s",
			 c.www_auth);
		r = 0;
	} else if (r >= 0) {
		r = -EINVAL;	/* not reached: every other outcome sets r */
	}
	kc_secret_free(c.body);
	headers_free(c.headers);
	return r;
}

void http_response_clear(struct http_response *resp)
{
	if (!resp)
		return;
	kc_secret_free(resp->body);
	memset(resp, 0, sizeof(*resp));
}

int http_status_errno(long status)
{
	if (status >= 200 && status <= 299)
		return 0;
	switch (status) {
	case 401: return -EKEYREJECTED;
	case 403: return -EPERM;
	case 404: return -ENOENT;
	case 429: return -EAGAIN;
	}
	if (status >= 500 && status <= 599)
		return -EAGAIN;
	return -EBADE;
}

/* ---------------------------------------------------------------------------------------- */
/* Secret strings, base64                                                                   */

static int sbuf_reserve(struct kc_secret **s, size_t extra)
{
	size_t used = *s ? (*s)->len : 0, want;
	struct kc_secret *nb;

	if (extra > SIZE_MAX / 4 - used)
		return -EINVAL;
	if (*s && used + extra + 1 <= (*s)->size)
		return 0;
	want = (used + extra + 1) * 2;
	nb = kc_secret_alloc(want);
	if (!nb)
		return -ENOMEM;
	if (*s)
		memcpy(nb->data, (*s)->data, used);
	kc_secret_free(*s);
	nb->len = used;
	nb->data[used] = '\0';
	*s = nb;
	return 0;
}

int http_sbuf_append(struct kc_secret **s, const char *str, size_t len)
{
	int r = sbuf_reserve(s, len);

	if (r < 0)
		return r;
	memcpy((*s)->data + (*s)->len, str, len);
	(*s)->len += len;
	(*s)->data[(*s)->len] = '\0';
	return 0;
}

int http_sbuf_append_urlencoded(struct kc_secret **s, const char *str, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	unsigned char *p;
	int r = sbuf_reserve(s, len * 3);

	if (r < 0)
		return r;
	p = (*s)->data + (*s)->len;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)str[i];

		if (isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
			*p++ = ch;
		} else {
			*p++ = '%';
			*p++ = (unsigned char)hex[ch >> 4];
			*p++ = (unsigned char)hex[ch & 15];
		}
	}
	(*s)->len = (size_t)(p - (*s)->data);
	*p = '\0';
	return 0;
}

int http_sbuf_append_b64(struct kc_secret **s, const unsigned char *buf, size_t len, bool url)
{
	const char *abc = url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
			      : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned char *p;
	int r;

	if (len > SIZE_MAX / 2)
		return -EINVAL;
	r = sbuf_reserve(s, (len + 2) / 3 * 4);
	if (r < 0)
		return r;
	p = (*s)->data + (*s)->len;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)buf[i] << 16;
		size_t left = len - i;

		if (left > 1)
			v |= (uint32_t)buf[i + 1] << 8;
		if (left > 2)
			v |= buf[i + 2];
		*p++ = (unsigned char)abc[(v >> 18) & 63];
		*p++ = (unsigned char)abc[(v >> 12) & 63];
		if (left > 1)
			*p++ = (unsigned char)abc[(v >> 6) & 63];
		else if (!url)
			*p++ = '=';
		if (left > 2)
			*p++ = (unsigned char)abc[v & 63];
		else if (!url)
			*p++ = '=';
	}
	(*s)->len = (size_t)(p - (*s)->data);
	*p = '\0';
	return 0;
}

/* 0-63 for a base64 or base64url character, -1 otherwise; *ALPHABET records which. */
static int b64_value(char ch, int *alphabet)
{
	int which = 0;

	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+' || ch == '/')
		which = 1;
	else if (ch == '-' || ch == '_')
		which = 2;
	else
		return -1;
	if (*alphabet && *alphabet != which)
		return -1;	/* mixed alphabets */
	*alphabet = which;
	return ch == '+' || ch == '-' ? 62 : 63;
}

int http_b64_decode_secret(const char *str, size_t len, struct kc_secret **r_secret)
{
	_cleanup_(kc_secret_freep) struct kc_secret *out = NULL;
	uint32_t acc = 0;
	size_t bits = 0, n = 0, pad = 0;
	int alphabet = 0;

	while (len && str[len - 1] == '=' && pad < 2) {
		len--;
		pad++;
	}
	if (!len || len % 4 == 1 || (pad && (len + pad) % 4))
		return -EINVAL;
	out = kc_secret_alloc(len / 4 * 3 + 3);
	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++) {
		int v = b64_value(str[i], &alphabet);

		if (v < 0)
			return -EINVAL;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out->data[n++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	/* Leftover bits must be zero (canonical encoding). */
	if (acc)
		return -EINVAL;
	out->len = n;
	out->data[n] = '\0';
	*r_secret = TAKE_PTR(out);
	return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* JSON                                                                                     */

static void json_wipe(struct json_object *o)
{
	switch (json_object_get_type(o)) {
	case json_type_string:
		secret_wipe((char *)json_object_get_string(o),
			    (size_t)json_object_get_string_len(o));
		break;
	case json_type_object: {
		json_object_object_foreach(o, key, val) {
			(void)key;
			json_wipe(val);
		}
		break;
	}
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(o); i++)
			json_wipe(json_object_array_get_idx(o, i));
		break;
	default:
		break;
	}
}

void http_json_put_wipe(struct json_object *obj)
{
	if (!obj)
		return;
	json_wipe(obj);
	json_object_put(obj);
}

void http_json_put_wipep(struct json_object **obj)
{
	http_json_put_wipe(*obj);
	*obj = NULL;
}

int http_json_parse(struct kc_ctx *ctx, const struct kc_secret *body, const char *what,
		    struct json_object **r_obj)
{
	struct json_object *obj = NULL;
	enum json_tokener_error err;
	struct json_tokener *tok;
	size_t end;

	if (!body || body->len > INT32_MAX)
		return ctx_fail(ctx, -EBADE, "%s: no response body", what);
	tok = json_tokener_new();
	if (!tok)
		return -ENOMEM;
	obj = json_tokener_parse_ex(tok, (const char *)body->data, (int)body->len);
	err = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	/* The tokener assembles strings (key material too) in its own buffer. */
	if (tok->pb && tok->pb->buf)
		secret_wipe(tok->pb->buf, (size_t)tok->pb->size);
	json_tokener_free(tok);
	while (end < body->len && isspace(body->data[end]))
		end++;
	if (!obj || err != json_tokener_success || end != body->len) {
		http_json_put_wipe(obj);
		return ctx_fail(ctx, -EBADE, "%s: malformed JSON (%s)", what,
				err == json_tokener_continue ? "incomplete" :
				err != json_tokener_success ? json_tokener_error_desc(err) :
				!obj ? "empty" : "trailing data");
	}
	if (!json_object_is_type(obj, json_type_object)) {
		http_json_put_wipe(obj);
		return ctx_fail(ctx, -EBADE, "%s: the JSON is not an object", what);
	}
	*r_obj = obj;
	return 0;
}

const char *http_json_get_string(struct json_object *obj, const char *parent, const char *key)
{
	struct json_object *v;

	if (parent && (!json_object_object_get_ex(obj, parent, &obj) ||
		       !json_object_is_type(obj, json_type_object)))
		return NULL;
	if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

int http_json_take_secret(struct json_object *obj, const char *key, bool decode_b64,
			  struct kc_secret **r_secret)
{
	struct kc_secret *s = NULL;
	struct json_object *v;
	char *str;
	size_t len;
	int r = 0;

	if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
		return -ENOENT;
	/* json-c's copy is wiped in place below (its const is cast away on purpose). */
	str = (char *)json_object_get_string(v);
	len = (size_t)json_object_get_string_len(v);
	if (decode_b64) {
		r = http_b64_decode_secret(str, len, &s);
	} else {
		s = kc_secret_alloc(len + 1);
		if (s) {
			memcpy(s->data, str, len);
			s->len = len;
		} else {
			r = -ENOMEM;
		}
	}
	secret_wipe(str, len);
	if (r < 0)
		return r;
	*r_secret = s;
	return 0;
}
