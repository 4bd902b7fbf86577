/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Provider "vault-transit": the KEK is a key of HashiCorp Vault's (or OpenBao's) Transit
 * secrets engine, named by
 *
 *   vault-transit+https://HOST[:PORT]/v1/MOUNT/keys/NAME
 *
 * MOUNT is the engine's mount path (one or more segments, e.g. "transit" or "kms/transit";
 * a namespace may also lead it, as Vault allows). The DEK is sent to MOUNT/encrypt/NAME and
 * what kekcrypt stores is Vault's ciphertext string "vault:vN:..." as ASCII bytes, with wrap
 * algorithm "vault-transit" and key version "N". Unwrapping posts it to MOUNT/decrypt/NAME.
 * vault_transit_rewrap() moves a wrapped key to the key's latest version through
 * MOUNT/rewrap/NAME, without the DEK leaving Vault (KEK rotation). Every wrap first reads
 * MOUNT/keys/NAME and refuses a key Vault does not have (key_must_exist()): Vault's encrypt
 * would create it. The same read tells kc_kek_check() whether deletion_allowed is set.
 *
 * Credentials come from the [vault-transit] section of the config file:
 *   auth = token | approle | cert        (default: whichever credential is configured)
 *   token-file = PATH                    a private file holding a Vault token
 *   role-id-file, secret-id-file = PATH  AppRole credentials (private files)
 *   client-cert, client-key = PATH       TLS client certificate (cert auth, or mTLS)
 *   cert-role = NAME                     the cert auth role to log in as (optional)
 *   auth-mount = PATH                    where the AppRole or cert method is mounted
 *   namespace = NS                       sent as X-Vault-Namespace (Enterprise, HCP)
 *   ca-file, ca-path, connect-timeout-ms, request-timeout-ms, max-attempts  (see http.h)
 * AppRole and cert logins happen once per context and Vault server: the client token is
 * cached in the context (ctx_slot()), in secret memory, wiped when the context is
 * freed; so is a refused login, so that a volume with several tokens on one Vault does not
 * present a rejected secret_id once per token.
 *
 * Errors: 403 -EPERM, 404 or unknown key -ENOENT, failed integrity check -EBADMSG, login
 * refused -EKEYREJECTED, no credentials -ENOANO, sealed/429/5xx/unreachable -EAGAIN (a
 * sys/health probe tells "sealed" apart), malformed answers -EBADE; see vault_refused().
 *
 * Nothing secret reaches a log or an error detail: not the token, the secret_id, the DEK,
 * nor the bodies of Vault's answers that carry them.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "internal.h"
#include "http.h"

#define SECTION "vault-transit"
#define ALG "vault-transit"
#define URI_PREFIX "vault-transit+https://"
#define DEK_MIN 16
#define DEK_MAX 128
/* A Vault token is about 100 bytes, batch tokens a few hundred: a generous cap. */
#define CRED_MAX 4096
#define NAME_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-"
#define HOST_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-"
#define B64_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
/* "vault:v" + at most 9 digits: key versions beyond that are not real. */
#define VERSION_DIGITS_MAX 9

/* For KEK rotation (`kek rotate`); to be declared in internal.h when that is wired. */
int vault_transit_rewrap(struct kc_ctx *ctx, void *state, const unsigned char *wrapped,
			 size_t wrapped_len, struct kc_wrapped *r_wrapped);

struct vault_state {
	char *base;		/* "https://HOST[:PORT]" */
	char *mount;		/* "transit", "ns1/transit"... */
	char *key;		/* the transit key's name */
	char server[300];	/* "Vault HOST", for messages about logins */
	char what[512];		/* "Vault HOST, key MOUNT/NAME", for the others */
};

enum vault_auth {
	AUTH_TOKEN,
	AUTH_APPROLE,
	AUTH_CERT,
};

/* The config of one call, read afresh each time (the context owns the strings). */
struct vault_conf {
	enum vault_auth auth;
	const char *token_file, *role_id_file, *secret_id_file, *cert_role, *auth_mount;
	const char *namespace;
	struct http_opts http;
};

/* Cached logins, one per Vault server, namespace and login method: the client token, or
 * the error of a login that Vault refused (so that it is not asked again and again). */
struct vault_login {
	struct vault_login *next;
	char *scope;
	struct kc_secret *header;	/* "X-Vault-Token: ...", or NULL */
	int error;			/* when header is NULL */
	char *detail;			/* its explanation */
};

enum vault_op {
	OP_ENCRYPT,
	OP_DECRYPT,
	OP_REWRAP,
	OP_READ,	/* GET MOUNT/keys/NAME */
	OP_LOGIN,
};

static const char *const op_names[] = { "encrypt", "decrypt", "rewrap", "read key", "login" };

/* ---------------------------------------------------------------------------------------- */
/* URI                                                                                      */

static bool span_is(const char *s, size_t len, const char *set)
{
	for (size_t i = 0; i < len; i++)
		if (!s[i] || !strchr(set, s[i]))
			return false;
	return true;
}

/* One path segment of a mount or key name: Vault's name characters, not "." or "..". */
static bool segment_ok(const char *s, size_t len)
{
	return len > 0 && len <= 128 && span_is(s, len, NAME_CHARS) &&
	       !(len == 1 && s[0] == '.') && !(len == 2 && s[0] == '.' && s[1] == '.');
}

static bool mount_ok(const char *s, size_t len)
{
	size_t start = 0;

	if (len == 0 || len > 256)
		return false;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != '/')
			continue;
		if (!segment_ok(s + start, i - start))
			return false;
		start = i + 1;
	}
	return true;
}

static bool port_ok(const char *s, size_t len)
{
	unsigned long port = 0;

	if (len == 0 || len > 5 || !span_is(s, len, "0123456789"))
		return false;
	for (size_t i = 0; i < len; i++)
		port = port * 10 + (unsigned long)(s[i] - '0');
	return port > 0 && port < 65536;
}

/* HOST[:PORT], HOST a DNS name or IPv4 address, or [IPv6][:PORT]. */
static bool authority_ok(const char *s, size_t len)
{
	size_t host_len;

	if (len > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', len);

		if (!close || close == s + 1 || !span_is(s + 1, (size_t)(close - s - 1),
							  "0123456789abcdefABCDEF:."))
			return false;
		host_len = (size_t)(close - s) + 1;
	} else {
		const char *colon = memchr(s, ':', len);

		host_len = colon ? (size_t)(colon - s) : len;
		if (host_len == 0 || host_len > 253 || !span_is(s, host_len, HOST_CHARS))
			return false;
	}
	if (host_len == len)
		return true;
	return s[host_len] == ':' && port_ok(s + host_len + 1, len - host_len - 1);
}

static int uri_invalid(struct kc_ctx *ctx, const char *uri, const char *why)
{
	return ctx_fail(ctx, -EINVAL, "KEK URI '%s': %s (expected " URI_PREFIX
			"HOST[:PORT]/v1/MOUNT/keys/NAME)", uri, why);
}

static int uri_parse(struct kc_ctx *ctx, const char *uri, struct vault_state *st)
{
	const char *auth = uri + strlen(URI_PREFIX), *path, *keys, *name;
	size_t auth_len;

	if (strncmp(uri, URI_PREFIX, strlen(URI_PREFIX)))
		return uri_invalid(ctx, uri, "not a vault-transit+https URI");
	if (strpbrk(uri, "?#@%"))
		return uri_invalid(ctx, uri, "no user info, query, fragment or escapes allowed");
	path = strchr(auth, '/');
	auth_len = path ? (size_t)(path - auth) : strlen(auth);
	if (!authority_ok(auth, auth_len))
		return uri_invalid(ctx, uri, "bad host or port");
	if (!path || strncmp(path, "/v1/", 4))
		return uri_invalid(ctx, uri, "the path must start with /v1/");
	path += 4;
	/* The last "/keys/": a mount may itself have a segment called "keys". */
	for (keys = NULL, name = strstr(path, "/keys/"); name; name = strstr(name + 1, "/keys/"))
		keys = name;
	if (!keys)
		return uri_invalid(ctx, uri, "no /keys/NAME");
	name = keys + strlen("/keys/");
	if (!mount_ok(path, (size_t)(keys - path)))
		return uri_invalid(ctx, uri, "bad mount path");
	if (!segment_ok(name, strlen(name)))
		return uri_invalid(ctx, uri, "bad key name");
	if (asprintf(&st->base, "https://%.*s", (int)auth_len, auth) < 0)
		return -ENOMEM;
	st->mount = strndup(path, (size_t)(keys - path));
	st->key = strdup(name);
	if (!st->mount || !st->key)
		return -ENOMEM;
	snprintf(st->server, sizeof(st->server), "Vault %.*s", (int)auth_len, auth);
	snprintf(st->what, sizeof(st->what), "%s, key %s/%s", st->server, st->mount, st->key);
	return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Configuration                                                                            */

static const char *conf_get(struct kc_ctx *ctx, const char *key)
{
	const char *v = config_get(ctx->config, SECTION, key);

	return v && *v ? v : NULL;
}

static int conf_auth(struct kc_ctx *ctx, const struct vault_state *st, struct vault_conf *c)
{
	const char *auth = conf_get(ctx, "auth");

	if (!auth) {
		/* No explicit method: the one whose credential is configured. */
		if (c->token_file)
			auth = "token";
		else if (c->role_id_file || c->secret_id_file)
			auth = "approle";
		else if (c->http.client_cert)
			auth = "cert";
		else
			return ctx_fail(ctx, -ENOANO, "%s: no Vault credentials configured (set auth "
					"= token, approle or cert and its files in [" SECTION "] of "
					"the config file)", st->what);
	}
	if (!strcmp(auth, "token"))
		c->auth = AUTH_TOKEN;
	else if (!strcmp(auth, "approle"))
		c->auth = AUTH_APPROLE;
	else if (!strcmp(auth, "cert"))
		c->auth = AUTH_CERT;
	else
		return ctx_fail(ctx, -EINVAL, "config [" SECTION "]: auth '%s' is not token, "
				"approle or cert", auth);
	if (c->auth == AUTH_TOKEN && !c->token_file)
		return ctx_fail(ctx, -ENOANO, "%s: auth = token needs token-file in [" SECTION
				"] of the config file", st->what);
	if (c->auth == AUTH_APPROLE && (!c->role_id_file || !c->secret_id_file))
		return ctx_fail(ctx, -ENOANO, "%s: auth = approle needs role-id-file and "
				"secret-id-file in [" SECTION "] of the config file", st->what);
	if (c->auth == AUTH_CERT && (!c->http.client_cert || !c->http.client_key))
		return ctx_fail(ctx, -ENOANO, "%s: auth = cert needs client-cert and client-key "
				"in [" SECTION "] of the config file", st->what);
	return 0;
}

static int conf_load(struct kc_ctx *ctx, const struct vault_state *st, struct vault_conf *c)
{
	int r;

	*c = (struct vault_conf){ 0 };
	r = http_opts_from_config(ctx, SECTION, &c->http);
	if (r < 0)
		return r;
	c->token_file = conf_get(ctx, "token-file");
	c->role_id_file = conf_get(ctx, "role-id-file");
	c->secret_id_file = conf_get(ctx, "secret-id-file");
	c->cert_role = conf_get(ctx, "cert-role");
	c->auth_mount = conf_get(ctx, "auth-mount");
	c->namespace = conf_get(ctx, "namespace");
	if (c->auth_mount && !mount_ok(c->auth_mount, strlen(c->auth_mount)))
		return ctx_fail(ctx, -EINVAL, "config [" SECTION "]: bad auth-mount '%s'",
				c->auth_mount);
	if (c->namespace && !mount_ok(c->namespace, strlen(c->namespace)))
		return ctx_fail(ctx, -EINVAL, "config [" SECTION "]: bad namespace '%s'",
				c->namespace);
	return conf_auth(ctx, st, c);
}

/* ---------------------------------------------------------------------------------------- */
/* Secret strings                                                                           */

/* Drop trailing whitespace (the newline editors add) from a credential file's content. */
static void secret_rstrip(struct kc_secret *s)
{
	while (s->len && s->data[s->len - 1] && strchr(" \t\r\n", s->data[s->len - 1]))
		s->data[--s->len] = 0;
}

/* Read a credential file: private, 1..CRED_MAX printable ASCII bytes without blanks (so it
 * can go into a header or a JSON string as it is). */
static int cred_read(struct kc_ctx *ctx, const struct vault_state *st, const char *path,
		     const char *what, struct kc_secret **r_cred)
{
	_cleanup_(kc_secret_freep) struct kc_secret *s = NULL;
	int r;

	r = trust_read_secret(ctx, path, what, CRED_MAX + 2, &s);
	if (r == -ENOENT)
		return ctx_fail(ctx, -ENOANO, "%s: %s '%s' does not exist", st->server, what,
				path);
	if (r < 0)
		return r == -EFBIG ? -EINVAL : r;
	secret_rstrip(s);
	if (s->len == 0 || s->len > CRED_MAX)
		return ctx_fail(ctx, -EINVAL, "%s '%s' is empty or too large", what, path);
	for (size_t i = 0; i < s->len; i++)
		if (s->data[i] <= 0x20 || s->data[i] >= 0x7f || s->data[i] == '"' ||
		    s->data[i] == '\\')
			return ctx_fail(ctx, -EINVAL, "%s '%s' holds characters no Vault "
					"credential has", what, path);
	*r_cred = TAKE_PTR(s);
	return 0;
}

static int sbuf_str(struct kc_secret **s, const char *str)
{
	return http_sbuf_append(s, str, strlen(str));
}

/* "X-Vault-Token: TOKEN" from a token already checked to be printable ASCII. */
static int token_header(const unsigned char *token, size_t len, struct kc_secret **r_hdr)
{
	_cleanup_(kc_secret_freep) struct kc_secret *h = NULL;
	int r;

	r = sbuf_str(&h, "X-Vault-Token: ");
	if (r >= 0)
		r = http_sbuf_append(&h, (const char *)token, len);
	if (r < 0)
		return r;
	*r_hdr = TAKE_PTR(h);
	return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Vault's answers                                                                          */

/* Vault's first error message, made printable and short, into BUF ("" when none). Vault's
 * messages name paths and causes, never request data. */
static void vault_error_text(const struct http_response *resp, char *buf, size_t size)
{
	json_object *obj, *errors, *e0;
	const char *s = NULL;
	size_t o = 0;

	buf[0] = '\0';
	if (!resp->body || !resp->body->len)
		return;
	obj = json_tokener_parse((const char *)resp->body->data);
	if (obj && json_object_object_get_ex(obj, "errors", &errors) &&
	    json_object_is_type(errors, json_type_array) && json_object_array_length(errors) > 0) {
		e0 = json_object_array_get_idx(errors, 0);
		if (json_object_is_type(e0, json_type_string))
			s = json_object_get_string(e0);
	}
	for (; s && *s && o + 1 < size && o < 200; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '\n' || ch == '\t' || ch == '\r') {
			if (o && buf[o - 1] != ' ')
				buf[o++] = ' ';
		} else {
			buf[o++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
		}
	}
	while (o && buf[o - 1] == ' ')
		o--;
	buf[o] = '\0';
	json_object_put(obj);
}

static bool has(const char *msg, const char *needle)
{
	return strstr(msg, needle) != NULL;
}

/* Map Vault's refusal of OP to an errno and a detail. */
static int vault_refused(struct kc_ctx *ctx, const struct vault_state *st,
			 const struct vault_conf *c, enum vault_op op,
			 const struct http_response *resp)
{
	const char *who = op == OP_LOGIN ? st->server : st->what;
	char msg[256], said[300] = "";
	long s = resp->status;

	vault_error_text(resp, msg, sizeof(msg));
	if (msg[0])
		snprintf(said, sizeof(said), ": Vault says \"%s\"", msg);
	if (op == OP_LOGIN && s >= 400 && s < 500 && s != 404 && s != 429)
		return ctx_fail(ctx, -EKEYREJECTED, "%s: %s login rejected (HTTP %ld)%s", st->server,
				c->auth == AUTH_CERT ? "cert" : "AppRole", s, said);
	if (s == 403 && c->auth == AUTH_TOKEN)
		return ctx_fail(ctx, -EPERM, "%s: %s: permission denied (token expired or lacks "
				"policy for %s/%s)", who, op_names[op], st->mount, st->key);
	if (s == 403)
		return ctx_fail(ctx, -EPERM, "%s: %s: permission denied (the %s login's policies "
				"lack %s/%s)", who, op_names[op],
				c->auth == AUTH_CERT ? "cert" : "AppRole", st->mount, st->key);
	if (op == OP_READ && s == 404)
		return ctx_fail(ctx, -ENOENT, "%s: Vault has no such key (nor, maybe, a transit "
				"engine at %s; HTTP 404)", who, st->mount);
	if (s == 404 || has(msg, "encryption key not found") || has(msg, "key not found"))
		return ctx_fail(ctx, -ENOENT, "%s: %s: not found (no such mount, key or auth "
				"method; HTTP %ld)%s", who, op_names[op], s, said);
	if (has(msg, "message authentication failed"))
		return ctx_fail(ctx, -EBADMSG, "%s: %s: the wrapped key failed its integrity "
				"check (wrong key or corrupt token?)%s", who, op_names[op], said);
	if (has(msg, "disallowed by policy"))
		return ctx_fail(ctx, -EPERM, "%s: %s: this key version was retired "
				"(min_decryption_version)%s", who, op_names[op], said);
	if (s == 400 && (has(msg, "invalid ciphertext") || has(msg, "invalid key version")))
		return ctx_fail(ctx, -EBADMSG, "%s: %s: Vault refused the wrapped key%s",
				who, op_names[op], said);
	if (s == 503 && has(msg, "sealed"))
		return ctx_fail(ctx, -EAGAIN, "%s: %s: Vault is sealed (HTTP 503)", who,
				op_names[op]);
	return ctx_fail(ctx, http_status_errno(s) ?: -EBADE, "%s: %s: HTTP %ld%s", who,
			op_names[op], s, said);
}

/* Parse a 2xx answer and find the object member SECTION_KEY ("data", "auth"). */
static int answer_parse(struct kc_ctx *ctx, const struct vault_state *st, enum vault_op op,
			const struct http_response *resp, const char *section_key,
			json_object **r_obj, json_object **r_section)
{
	json_object *obj = NULL, *sec;
	int r;

	r = http_json_parse(ctx, resp->body, "Vault's answer", &obj);
	if (r < 0) {
		ctx_detail_prefix(ctx, "%s: %s", (op == OP_LOGIN ? st->server : st->what), op_names[op]);
		return r;
	}
	if (!json_object_object_get_ex(obj, section_key, &sec) ||
	    !json_object_is_type(sec, json_type_object)) {
		http_json_put_wipe(obj);
		return ctx_fail(ctx, -EBADE, "%s: %s: Vault's answer has no '%s' object",
				(op == OP_LOGIN ? st->server : st->what), op_names[op], section_key);
	}
	*r_obj = obj;
	*r_section = sec;
	return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Requests                                                                                 */

/* Is the server's answer to sys/health {"sealed": true}? */
static bool health_says_sealed(const struct http_response *resp)
{
	json_object *obj, *sealed;
	bool yes = false;

	if (resp->status != 200 || !resp->body || !resp->body->len)
		return false;
	obj = json_tokener_parse((const char *)resp->body->data);
	if (obj && json_object_object_get_ex(obj, "sealed", &sealed) &&
	    json_object_is_type(sealed, json_type_boolean))
		yes = json_object_get_boolean(sealed);
	json_object_put(obj);
	return yes;
}

/*
 * A request failed with -EAGAIN (unreachable, or 429/5xx until the last attempt). A sealed
 * Vault answers 503 to everything; ask sys/health, which tells without a token, so that the
 * detail can say so. One short attempt; the sealed/standby codes are asked to be 200 so the
 * answer is not itself a retried 503. The original detail stays unless Vault says sealed.
 */
static int sealed_explain(struct kc_ctx *ctx, const struct vault_state *st,
			  const struct vault_conf *c)
{
	static const char query[] = "standbyok=true&perfstandbyok=true&sealedcode=200&"
				    "uninitcode=200&drsecondarycode=200";
	_cleanup_(freep) char *url = NULL;
	struct http_opts o = c->http;
	struct http_request req = { .method = "GET" };
	struct http_response resp = { 0 };
	char saved[sizeof(ctx->detail)];
	bool sealed;

	memcpy(saved, ctx->detail, sizeof(saved));
	if (asprintf(&url, "%s/v1/sys/health?%s", st->base, query) < 0)
		return -EAGAIN;
	req.url = url;
	o.max_attempts = 1;
	o.connect_timeout_ms = 1000;
	o.request_timeout_ms = 2000;
	sealed = http_send(ctx, &o, &req, &resp) >= 0 && health_says_sealed(&resp);
	http_response_clear(&resp);
	if (sealed)
		return ctx_fail(ctx, -EAGAIN, "%s: Vault is sealed (unseal it; %s)", st->what,
				saved);
	memcpy(ctx->detail, saved, sizeof(saved));
	ctx_detail_prefix(ctx, "%s", st->what);
	return -EAGAIN;
}

/* POST BODY (NULL: GET) to /v1/PATH with the namespace and, unless NULL, the token header. */
static int vault_post(struct kc_ctx *ctx, const struct vault_state *st,
		      const struct vault_conf *c, const char *path, const struct kc_secret *body,
		      const struct kc_secret *token_hdr, struct http_response *r_resp)
{
	_cleanup_(freep) char *url = NULL, *ns_hdr = NULL;
	const char *headers[3] = { "X-Vault-Request: true" };
	const struct kc_secret *secret_headers[2] = { token_hdr };
	struct http_request req = {
		.method = body ? "POST" : "GET", .headers = headers,
		.secret_headers = secret_headers, .body = body, .content_type = "application/json",
	};
	int r;

	if (asprintf(&url, "%s/v1/%s", st->base, path) < 0)
		return -ENOMEM;
	if (c->namespace) {
		if (asprintf(&ns_hdr, "X-Vault-Namespace: %s", c->namespace) < 0)
			return -ENOMEM;
		headers[1] = ns_hdr;
	}
	req.url = url;
	log_dbg(ctx, "%s: %s /v1/%s%s%s", st->what, req.method, path,
		c->namespace ? " namespace " : "", c->namespace ?: "");
	r = http_send(ctx, &c->http, &req, r_resp);
	if (r == -EAGAIN)
		r = sealed_explain(ctx, st, c);
	else if (r < 0)
		ctx_detail_prefix(ctx, "%s", st->what);
	else
		log_dbg(ctx, "%s: HTTP %ld after %u attempt(s)", st->what, r_resp->status,
			r_resp->attempts);
	return r;
}

/* ---------------------------------------------------------------------------------------- */
/* Login                                                                                    */

/* The context's logins, kept under the provider's own address (ctx_slot()). */
struct vault_logins {
	struct vault_login *head;
};

static void login_cache_free(void *data)
{
	struct vault_logins *ls = data;
	struct vault_login *l, *next;

	for (l = ls->head; l; l = next) {
		next = l->next;
		kc_secret_free(l->header);
		free(l->scope);
		free(l->detail);
		free(l);
	}
	free(ls);
}

/* Tokens are cached per server, namespace, method, its mount and credential file. */
static int login_scope(const struct vault_state *st, const struct vault_conf *c, char **r)
{
	const char *cred = c->auth == AUTH_APPROLE ? c->role_id_file : c->http.client_cert;

	return asprintf(r, "%s|%s|%d|%s|%s|%s", st->base, c->namespace ?: "", (int)c->auth,
			c->auth_mount ?: "", cred ?: "", c->cert_role ?: "") < 0 ? -ENOMEM : 0;
}

static const struct vault_login *login_cached(struct kc_ctx *ctx, const char *scope)
{
	struct vault_logins *ls = ctx_slot(ctx, &provider_vault);
	struct vault_login *l = ls ? ls->head : NULL;

	for (; l; l = l->next)
		if (!strcmp(l->scope, scope))
			return l;
	return NULL;
}

/* Cache the token HDR, or (HDR NULL) the refusal ERROR with the current detail. */
static int login_remember(struct kc_ctx *ctx, char **scope, struct kc_secret **hdr,
			  int error)
{
	struct vault_logins *ls = ctx_slot(ctx, &provider_vault);
	struct vault_login *l;

	if (!ls) {
		ls = calloc(1, sizeof(*ls));
		if (!ls || ctx_slot_set(ctx, &provider_vault, ls, login_cache_free) < 0) {
			free(ls);
			return -ENOMEM;
		}
	}
	l = calloc(1, sizeof(*l));
	if (!l || (!*hdr && !(l->detail = strdup(ctx->detail)))) {
		free(l);
		return -ENOMEM;
	}
	l->scope = TAKE_PTR(*scope);
	l->header = TAKE_PTR(*hdr);
	l->error = error;
	l->next = ls->head;
	ls->head = l;
	return 0;
}

/* {"role_id":"...","secret_id":"..."} or {"name":"..."} (cert), in secret memory. */
static int login_body(struct kc_ctx *ctx, const struct vault_state *st,
		      const struct vault_conf *c, struct kc_secret **r_body)
{
	_cleanup_(kc_secret_freep) struct kc_secret *role = NULL, *secret = NULL, *b = NULL;
	int r;

	if (c->auth == AUTH_CERT) {
		if (c->cert_role && !segment_ok(c->cert_role, strlen(c->cert_role)))
			return ctx_fail(ctx, -EINVAL, "config [" SECTION "]: bad cert-role '%s'",
					c->cert_role);
		r = sbuf_str(&b, "{");
		if (r >= 0 && c->cert_role)
			r = sbuf_str(&b, "\"name\":\"") ?: sbuf_str(&b, c->cert_role) ?:
			    sbuf_str(&b, "\"");
		if (r >= 0)
			r = sbuf_str(&b, "}");
	} else {
		r = cred_read(ctx, st, c->role_id_file, "AppRole role-id-file", &role);
		if (r < 0)
			return r;
		r = cred_read(ctx, st, c->secret_id_file, "AppRole secret-id-file", &secret);
		if (r < 0)
			return r;
		r = sbuf_str(&b, "{\"role_id\":\"") ?:
		    http_sbuf_append(&b, (const char *)role->data, role->len) ?:
		    sbuf_str(&b, "\",\"secret_id\":\"") ?:
		    http_sbuf_append(&b, (const char *)secret->data, secret->len) ?:
		    sbuf_str(&b, "\"}");
	}
	if (r < 0)
		return r;
	*r_body = TAKE_PTR(b);
	return 0;
}

/* Take auth.client_token from a login answer into a token header. */
static int login_answer(struct kc_ctx *ctx, const struct vault_state *st,
			const struct http_response *resp, struct kc_secret **r_hdr)
{
	_cleanup_(kc_secret_freep) struct kc_secret *tok = NULL;
	_cleanup_(http_json_put_wipep) json_object *obj = NULL;
	json_object *auth;
	int r;

	r = answer_parse(ctx, st, OP_LOGIN, resp, "auth", &obj, &auth);
	if (r < 0)
		return r;
	r = http_json_take_secret(auth, "client_token", false, &tok);
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return ctx_fail(ctx, -EBADE, "%s: login: Vault's answer has no auth.client_token",
				st->server);
	for (size_t i = 0; i < tok->len; i++)
		if (tok->data[i] <= 0x20 || tok->data[i] >= 0x7f)
			return ctx_fail(ctx, -EBADE, "%s: login: Vault issued a token with "
					"characters no token has", st->server);
	if (tok->len == 0 || tok->len > CRED_MAX)
		return ctx_fail(ctx, -EBADE, "%s: login: Vault issued an empty or oversized token",
				st->server);
	return token_header(tok->data, tok->len, r_hdr);
}

static int vault_login(struct kc_ctx *ctx, const struct vault_state *st,
		       const struct vault_conf *c, struct kc_secret **r_hdr)
{
	_cleanup_(kc_secret_freep) struct kc_secret *body = NULL;
	_cleanup_(freep) char *path = NULL;
	struct http_response resp = { 0 };
	const char *method = c->auth == AUTH_CERT ? "cert" : "approle";
	int r;

	r = login_body(ctx, st, c, &body);
	if (r < 0)
		return r;
	if (asprintf(&path, "auth/%s/login", c->auth_mount ?: method) < 0)
		return -ENOMEM;
	log_dbg(ctx, "%s: logging in with %s at auth/%s", st->server, method,
		c->auth_mount ?: method);
	r = vault_post(ctx, st, c, path, body, NULL, &resp);
	if (r >= 0 && (resp.status < 200 || resp.status > 299))
		r = vault_refused(ctx, st, c, OP_LOGIN, &resp);
	else if (r >= 0)
		r = login_answer(ctx, st, &resp, r_hdr);
	http_response_clear(&resp);
	return r;
}

/* The token header for this call: from token-file, the login cache, or a new login. */
static int vault_token(struct kc_ctx *ctx, const struct vault_state *st,
		       const struct vault_conf *c, const struct kc_secret **r_hdr,
		       struct kc_secret **r_owned)
{
	_cleanup_(kc_secret_freep) struct kc_secret *tok = NULL, *hdr = NULL;
	_cleanup_(freep) char *scope = NULL;
	const struct vault_login *cached;
	int r;

	if (c->auth == AUTH_TOKEN) {
		r = cred_read(ctx, st, c->token_file, "Vault token-file", &tok);
		if (r >= 0)
			r = token_header(tok->data, tok->len, &hdr);
		if (r < 0)
			return r;
		*r_hdr = *r_owned = TAKE_PTR(hdr);
		return 0;
	}
	r = login_scope(st, c, &scope);
	if (r < 0)
		return r;
	cached = login_cached(ctx, scope);
	if (cached && cached->header) {
		log_dbg(ctx, "%s: reusing the client token of this process's login", st->what);
		*r_hdr = cached->header;
		return 0;
	}
	if (cached)
		return ctx_fail(ctx, cached->error, "%s", cached->detail);
	r = vault_login(ctx, st, c, &hdr);
	/* A refusal is remembered; what may pass (unreachable, deadline) is not. */
	if (r == -EKEYREJECTED || r == -ENOANO || r == -EINVAL || r == -EACCES)
		return login_remember(ctx, &scope, &hdr, r) ?: r;
	if (r < 0)
		return r;
	*r_hdr = hdr;
	r = login_remember(ctx, &scope, &hdr, 0);
	if (r < 0)
		*r_hdr = NULL;
	return r;
}

/* ---------------------------------------------------------------------------------------- */
/* Transit                                                                                  */

/*
 * A Vault ciphertext "vault:vN:BASE64" with N a key version, checked strictly: it comes
 * from the header (anyone can write it) and goes into a JSON request. Returns N, or 0.
 */
static unsigned long ciphertext_version(const unsigned char *ct, size_t len)
{
	const char *s = (const char *)ct;
	unsigned long v = 0;
	size_t i = 7, digits, b64, pad = 0;

	if (len < 10 || len > TOKEN_WRAPPED_MAX || memcmp(s, "vault:v", 7))
		return 0;
	for (digits = 0; i < len && s[i] >= '0' && s[i] <= '9'; i++, digits++)
		v = v * 10 + (unsigned long)(s[i] - '0');
	if (digits == 0 || digits > VERSION_DIGITS_MAX || s[7] == '0' || i >= len || s[i] != ':')
		return 0;
	b64 = len - ++i;
	while (pad < 2 && b64 > pad && s[len - 1 - pad] == '=')
		pad++;
	if (b64 == 0 || b64 % 4 || !span_is(s + i, b64 - pad, B64_CHARS))
		return 0;
	return v;
}

/* data.ciphertext of an encrypt or rewrap answer into R_WRAPPED. */
static int wrapped_from_answer(struct kc_ctx *ctx, const struct vault_state *st,
			       enum vault_op op, const struct http_response *resp,
			       struct kc_wrapped *r_wrapped)
{
	_cleanup_(http_json_put_wipep) json_object *obj = NULL;
	const char *ct;
	json_object *data;
	unsigned long v;
	int r;

	r = answer_parse(ctx, st, op, resp, "data", &obj, &data);
	if (r < 0)
		return r;
	ct = http_json_get_string(data, NULL, "ciphertext");
	v = ct ? ciphertext_version((const unsigned char *)ct, strlen(ct)) : 0;
	if (!v)
		return ctx_fail(ctx, -EBADE, "%s: %s: Vault's answer has no valid "
				"data.ciphertext (\"vault:vN:...\")", st->what,
				op == OP_ENCRYPT ? "encrypt" : "rewrap");
	*r_wrapped = (struct kc_wrapped){ 0 };
	r_wrapped->len = strlen(ct);
	r_wrapped->data = (unsigned char *)strdup(ct);
	if (asprintf(&r_wrapped->key_version, "%lu", v) < 0)
		r_wrapped->key_version = NULL;
	if (!r_wrapped->data || !r_wrapped->key_version) {
		wrapped_clear(r_wrapped);
		return -ENOMEM;
	}
	snprintf(r_wrapped->alg, sizeof(r_wrapped->alg), "%s", ALG);
	return 0;
}

/* One authenticated transit call: POST BODY to MOUNT/OP/NAME; a 2xx answer in R_RESP. */
static int transit_call(struct kc_ctx *ctx, const struct vault_state *st, enum vault_op op,
			const struct kc_secret *body, struct http_response *r_resp)
{
	_cleanup_(kc_secret_freep) struct kc_secret *owned = NULL;
	_cleanup_(freep) char *path = NULL;
	const struct kc_secret *hdr = NULL;
	struct vault_conf c;
	int r;

	r = conf_load(ctx, st, &c);
	if (r >= 0)
		r = vault_token(ctx, st, &c, &hdr, &owned);
	if (r < 0)
		return r;
	if (asprintf(&path, "%s/%s/%s", st->mount, op == OP_READ ? "keys" : op_names[op],
		     st->key) < 0)
		return -ENOMEM;
	r = vault_post(ctx, st, &c, path, body, hdr, r_resp);
	if (r >= 0 && (r_resp->status < 200 || r_resp->status > 299)) {
		r = vault_refused(ctx, st, &c, op, r_resp);
		http_response_clear(r_resp);
	}
	return r;
}

/* A read-key answer ({"data":{"name","type","deletion_allowed","latest_version",...}}) into
 * R_INFO: Vault has no disabled or expiring keys, but deletion_allowed lets anyone with the
 * delete capability destroy the key. */
static int key_info_from_answer(struct kc_ctx *ctx, const struct vault_state *st,
				const struct http_response *resp, struct kek_info *r_info)
{
	_cleanup_(http_json_put_wipep) json_object *obj = NULL;
	json_object *data, *del, *latest;
	int r;

	r = answer_parse(ctx, st, OP_READ, resp, "data", &obj, &data);
	if (r < 0)
		return r;
	/* Encrypt and rewrap use latest_version: what a token made now records. */
	if (json_object_object_get_ex(data, "latest_version", &latest) &&
	    json_object_is_type(latest, json_type_int) && json_object_get_int64(latest) > 0)
		snprintf(r_info->current_version, sizeof(r_info->current_version), "%" PRId64,
			 json_object_get_int64(latest));
	if (!json_object_object_get_ex(data, "deletion_allowed", &del) ||
	    !json_object_is_type(del, json_type_boolean) || !json_object_get_boolean(del))
		return 0;
	r_info->deletable = true;
	snprintf(r_info->deletable_why, sizeof(r_info->deletable_why),
		 "deletion_allowed is true on %s", st->server);
	snprintf(r_info->deletable_fix, sizeof(r_info->deletable_fix),
		 "forbid it: vault write %s/keys/%s/config deletion_allowed=false", st->mount,
		 st->key);
	return 0;
}

/* GET MOUNT/keys/NAME: -ENOENT when Vault has no such key. */
static int key_read(struct kc_ctx *ctx, const struct vault_state *st, struct kek_info *r_info)
{
	struct http_response resp = { 0 };
	int r;

	r = transit_call(ctx, st, OP_READ, NULL, &resp);
	if (r >= 0)
		r = key_info_from_answer(ctx, st, &resp, r_info);
	http_response_clear(&resp);
	return r;
}

/*
 * Vault's encrypt creates a key that does not exist (given the create capability): a typo in
 * a KEK URI would wrap the DEK under a new key nobody knows of. So a wrap reads the key first
 * and goes on only when Vault has it; a policy that does not let us read it is refused too,
 * since the check could not be made.
 */
static int key_must_exist(struct kc_ctx *ctx, const struct vault_state *st)
{
	struct kek_info info = { 0 };
	char was[256];
	int r;

	r = key_read(ctx, st, &info);
	snprintf(was, sizeof(was), "%s", ctx->detail);
	if (r == -ENOENT)
		return ctx_fail(ctx, -ENOENT, "%s: Vault has no such key: refusing to wrap, "
				"since Vault's encrypt would create a new key of that name (a typo "
				"in the KEK URI?); if the key is meant to be new, create it first: "
				"vault write -f %s/keys/%s", st->what, st->mount, st->key);
	if (r == -EPERM)
		return ctx_fail(ctx, -EPERM, "%s: cannot read the key to check that it exists "
				"before wrapping (%s); grant the 'read' capability on %s/keys/%s",
				st->what, was, st->mount, st->key);
	return r;
}

static int vault_inspect(struct kc_ctx *ctx, void *state, struct kek_info *r_info)
{
	return key_read(ctx, state, r_info);
}

/* {"ciphertext":"vault:vN:..."}; the caller has checked it with ciphertext_version(). */
static int ciphertext_body(const unsigned char *ct, size_t len, struct kc_secret **r_body)
{
	_cleanup_(kc_secret_freep) struct kc_secret *b = NULL;
	int r;

	r = sbuf_str(&b, "{\"ciphertext\":\"") ?: http_sbuf_append(&b, (const char *)ct, len) ?:
	    sbuf_str(&b, "\"}");
	if (r < 0)
		return r;
	*r_body = TAKE_PTR(b);
	return 0;
}

static int wrapped_check(struct kc_ctx *ctx, const struct vault_state *st,
			 const char *key_version, const unsigned char *wrapped, size_t len)
{
	unsigned long v = wrapped ? ciphertext_version(wrapped, len) : 0;
	char buf[16];

	if (!v)
		return ctx_fail(ctx, -EINVAL, "%s: the wrapped key is not a Vault ciphertext "
				"(\"vault:vN:...\"; corrupt token?)", st->what);
	snprintf(buf, sizeof(buf), "%lu", v);
	if (key_version && strcmp(key_version, buf))
		return ctx_fail(ctx, -EINVAL, "%s: the token says key version %s but the wrapped "
				"key is of version %s (corrupt token?)", st->what, key_version,
				buf);
	return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* The provider                                                                             */

static void vault_free(void *state)
{
	struct vault_state *st = state;

	if (!st)
		return;
	free(st->base);
	free(st->mount);
	free(st->key);
	free(st);
}

static int vault_init(struct kc_ctx *ctx, const char *uri, void **r_state)
{
	struct vault_state *st;
	int r;

	if (!uri || !r_state)
		return -EINVAL;
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	r = uri_parse(ctx, uri, st);
	if (r < 0) {
		vault_free(st);
		return r;
	}
	*r_state = st;
	return 0;
}

static int vault_wrap(struct kc_ctx *ctx, void *state, const struct kc_secret *dek,
		      struct kc_wrapped *r_wrapped)
{
	_cleanup_(kc_secret_freep) struct kc_secret *body = NULL;
	struct vault_state *st = state;
	struct http_response resp = { 0 };
	int r;

	if (!st || !dek || !r_wrapped)
		return -EINVAL;
	if (dek->len < DEK_MIN || dek->len > DEK_MAX)
		return ctx_fail(ctx, -EINVAL, "%s: a DEK of %zu bytes is not %d to %d bytes",
				st->what, dek->len, DEK_MIN, DEK_MAX);
	/* The DEK is base64-encoded straight into secret memory. */
	r = key_must_exist(ctx, st);
	if (r < 0)
		return r;
	r = sbuf_str(&body, "{\"plaintext\":\"") ?:
	    http_sbuf_append_b64(&body, dek->data, dek->len, false) ?: sbuf_str(&body, "\"}");
	if (r < 0)
		return r;
	r = transit_call(ctx, st, OP_ENCRYPT, body, &resp);
	if (r >= 0)
		r = wrapped_from_answer(ctx, st, OP_ENCRYPT, &resp, r_wrapped);
	http_response_clear(&resp);
	return r;
}

/* data.plaintext of a decrypt answer, decoded straight into secret memory. */
static int dek_from_answer(struct kc_ctx *ctx, const struct vault_state *st,
			   const struct http_response *resp, struct kc_secret **r_dek)
{
	_cleanup_(http_json_put_wipep) json_object *obj = NULL;
	_cleanup_(kc_secret_freep) struct kc_secret *dek = NULL;
	json_object *data;
	int r;

	r = answer_parse(ctx, st, OP_DECRYPT, resp, "data", &obj, &data);
	if (r < 0)
		return r;
	r = http_json_take_secret(data, "plaintext", true, &dek);
	if (r == -ENOMEM)
		return r;
	if (r == -ENOENT)
		return ctx_fail(ctx, -EBADE, "%s: decrypt: Vault's answer has no data.plaintext",
				st->what);
	if (r < 0)
		return ctx_fail(ctx, -EBADE, "%s: decrypt: data.plaintext is not base64",
				st->what);
	if (dek->len < DEK_MIN || dek->len > DEK_MAX)
		return ctx_fail(ctx, -EBADE, "%s: decrypt: the plaintext has %zu bytes, not a "
				"volume key of %d to %d", st->what, dek->len, DEK_MIN, DEK_MAX);
	*r_dek = TAKE_PTR(dek);
	return 0;
}

static int vault_unwrap(struct kc_ctx *ctx, void *state, const char *alg,
			const char *key_version, const unsigned char *wrapped,
			size_t wrapped_len, struct kc_secret **r_dek)
{
	_cleanup_(kc_secret_freep) struct kc_secret *body = NULL;
	struct vault_state *st = state;
	struct http_response resp = { 0 };
	int r;

	if (!st || !r_dek)
		return -EINVAL;
	if (!alg || strcmp(alg, ALG))
		return ctx_fail(ctx, -EINVAL, "%s: wrap algorithm '%s' is not " ALG, st->what,
				alg ?: "(none)");
	r = wrapped_check(ctx, st, key_version, wrapped, wrapped_len);
	if (r >= 0)
		r = ciphertext_body(wrapped, wrapped_len, &body);
	if (r < 0)
		return r;
	r = transit_call(ctx, st, OP_DECRYPT, body, &resp);
	if (r >= 0)
		r = dek_from_answer(ctx, st, &resp, r_dek);
	http_response_clear(&resp);
	return r;
}

int vault_transit_rewrap(struct kc_ctx *ctx, void *state, const unsigned char *wrapped,
			 size_t wrapped_len, struct kc_wrapped *r_wrapped)
{
	_cleanup_(kc_secret_freep) struct kc_secret *body = NULL;
	struct vault_state *st = state;
	struct http_response resp = { 0 };
	int r;

	if (!ctx || !st || !r_wrapped)
		return -EINVAL;
	r = wrapped_check(ctx, st, NULL, wrapped, wrapped_len);
	if (r >= 0)
		r = ciphertext_body(wrapped, wrapped_len, &body);
	if (r < 0)
		return r;
	r = transit_call(ctx, st, OP_REWRAP, body, &resp);
	if (r >= 0)
		r = wrapped_from_answer(ctx, st, OP_REWRAP, &resp, r_wrapped);
	http_response_clear(&resp);
	return r;
}

static int vault_validate(struct kc_ctx *ctx, const struct token *t)
{
	unsigned long v;
	char buf[16];

	if (!t || !t->alg || strcmp(t->alg, ALG))
		return ctx_fail(ctx, -EINVAL, "vault-transit: wrap algorithm '%s' is not " ALG,
				t && t->alg ? t->alg : "(none)");
	if (!t->key_version || !t->key_version[0] ||
	    !span_is(t->key_version, strlen(t->key_version), "0123456789"))
		return ctx_fail(ctx, -EINVAL, "vault-transit: the key version must be a number");
	v = ciphertext_version(t->wrapped, t->wrapped_len);
	if (!v)
		return ctx_fail(ctx, -EINVAL, "vault-transit: the wrapped key is not a Vault "
				"ciphertext (\"vault:vN:...\")");
	snprintf(buf, sizeof(buf), "%lu", v);
	if (strcmp(buf, t->key_version))
		return ctx_fail(ctx, -EINVAL, "vault-transit: key version %s does not match the "
				"wrapped key's v%s", t->key_version, buf);
	return 0;
}

/* A boot needs the network, the HTTPS files and the credential files of the config. */
static int vault_boot_needs(struct kc_ctx *ctx, void *state, struct boot_list *list)
{
	static const char *const creds[] = { "token-file", "role-id-file", "secret-id-file" };
	int r = http_boot_needs(ctx, SECTION, list);

	for (size_t i = 0; r >= 0 && i < ARRAY_SIZE(creds); i++)
		r = boot_add_listed(ctx, list, KC_BOOT_SECRET, SECTION, creds[i]);
	return r;
}

/* The Vault server of the URI: credentials go only where allowed-hosts says. */
static void vault_needs(void *state, struct kek_needs *r_needs)
{
	const struct vault_state *st = state;
	const char *auth = st->base + strlen("https://");
	size_t host_len = auth[0] == '[' ? strcspn(auth, "]") + 1 : strcspn(auth, ":");

	snprintf(r_needs->host, sizeof(r_needs->host), "%.*s", (int)host_len, auth);
	r_needs->port = auth[host_len] == ':' ? (unsigned)strtoul(auth + host_len + 1, NULL, 10)
					      : 443;
}

const struct kc_provider_ops provider_vault = {
	.abi_version = KC_PROVIDER_ABI_VERSION,
	.name = "vault-transit",
	.schemes = (const char *const[]){ "vault-transit+https", NULL },
	.syntax = "vault-transit+https://HOST[:PORT]/v1/MOUNT/keys/NAME",
	.summary = "a HashiCorp Vault or OpenBao Transit key",
	.init = vault_init,
	.wrap = vault_wrap,
	.unwrap = vault_unwrap,
	.validate = vault_validate,
	.free = vault_free,
	.rewrap = vault_transit_rewrap,
	.needs = vault_needs,
	.boot_needs = vault_boot_needs,
	.inspect = vault_inspect,
	.config_keys = (const char *const[]){ "allowed-hosts", "auth", "token-file",
					      "role-id-file", "secret-id-file", "cert-role",
					      "auth-mount", "namespace", HTTP_CONFIG_KEYS, NULL },
};

/* Every parser of an answer from Vault on RESP, for the fuzz target
 * tests/fuzz/fuzz-kms-response.c (http.h). No request, no file. */
void vault_fuzz_answer(struct kc_ctx *ctx, const struct http_response *resp)
{
	char base[] = "https://v", mount[] = "transit", key[] = "k";
	struct vault_state st = { .base = base, .mount = mount, .key = key,
				  .server = "Vault v", .what = "Vault v, key transit/k" };
	_cleanup_(kc_secret_freep) struct kc_secret *hdr = NULL, *dek = NULL;
	struct kc_wrapped w = { 0 };
	struct vault_conf c = { 0 };
	struct kek_info info = { 0 };

	(void)health_says_sealed(resp);
	for (c.auth = AUTH_TOKEN; c.auth <= AUTH_CERT; c.auth++)
		for (enum vault_op op = OP_ENCRYPT; op <= OP_LOGIN; op++)
			(void)vault_refused(ctx, &st, &c, op, resp);
	(void)login_answer(ctx, &st, resp, &hdr);
	if (wrapped_from_answer(ctx, &st, OP_REWRAP, resp, &w) >= 0)
		wrapped_clear(&w);
	(void)dek_from_answer(ctx, &st, resp, &dek);
	(void)key_info_from_answer(ctx, &st, resp, &info);
}
