/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Provider "azure-kv": Azure Key Vault and Managed HSM keys (REST api-version 7.4).
 *
 *   azure-kv+https://VAULT.vault.azure.net/keys/NAME[/VERSION]
 *   azure-kv+https://HSM.managedhsm.azure.net/keys/NAME[/VERSION]
 *
 * wrap:   POST https://HOST/keys/NAME[/VERSION]/wrapkey   {"alg","value":base64url(DEK)}
 * unwrap: POST https://HOST/keys/NAME/VERSION/unwrapkey   (VERSION recorded in the token)
 * Without a VERSION in the URI the vault's current version wraps, and the version named by
 * the response's "kid" is stored in the token, so unwrap keeps working after a rotation.
 *
 * Algorithms (the token's label -> the service's name): RSA-OAEP-256 and RSA-OAEP for RSA
 * keys; A256KW (RFC 3394) and A256KWP (RFC 5649, "CKM_AES_KEY_WRAP_PAD" on the wire) for
 * Managed HSM oct-HSM keys. Chosen from the key's kty (GET /keys/NAME) unless configured.
 * The same GET's attributes (enabled, exp, recoveryLevel) answer kc_kek_check().
 *
 * Access tokens (Entra ID) come from the managed identity endpoint (IMDS) or the
 * client-credentials grant, authenticated by a client secret or by a certificate (a client
 * assertion: a JWT signed with the certificate's private key, RS256, the certificate named by
 * its SHA-1 thumbprint "x5t"; Microsoft identity platform "certificate credentials" and
 * RFC 7523); one per resource per context (ctx->cache), so a process that
 * opens several volumes asks once. The KEK URI comes from the unauthenticated LUKS2 header:
 * our bearer token is only ever sent to Azure Key Vault domains or hosts the (private)
 * configuration allows, never to a host an attacker wrote into a header.
 *
 * Config section [azure-kv]: auth (managed-identity | client-secret | client-certificate),
 * imds-endpoint, client-id, object-id, tenant-id, client-secret-file, client-certificate-file,
 * client-certificate-key-file, authority-host, resource, wrap-alg, allowed-hosts, and the
 * http_opts keys (ca-file, ca-path, client-cert, client-key: TLS client authentication, not
 * to be confused with client-certificate-*; connect-timeout-ms, request-timeout-ms,
 * max-attempts).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "../http.h"

#define SECTION "azure-kv"
#define SCHEME_PREFIX "azure-kv+https://"
#define API_VERSION "7.4"
#define IMDS_DEFAULT "http://169.254.169.254/metadata/identity/oauth2/token"
#define AUTHORITY_DEFAULT "https://login.microsoftonline.com"
#define NAME_MAX_LEN 127
#define VERSION_MAX_LEN 64
#define SECRET_FILE_MAX 4096
#define CERT_FILE_MAX (64 * 1024)
#define KEY_FILE_MAX (32 * 1024)
#define ASSERTION_LIFETIME_S 600
#define ASSERTION_TYPE "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#define TOKEN_CACHE_SLOTS 4
#define DEK_MAX 128

/* Azure's key vault domains, which tell the access token's audience (resource). A domain says
 * nothing about whose vault it is: only allowed-hosts lets a token go to a host. */
static const char *const azure_suffixes[] = {
	".vault.azure.net", ".managedhsm.azure.net", ".vault.azure.cn", ".managedhsm.azure.cn",
	".vault.usgovcloudapi.net", ".managedhsm.usgovcloudapi.net", NULL,
};

enum azure_auth {
	AUTH_MANAGED_IDENTITY,
	AUTH_CLIENT_SECRET,
	AUTH_CLIENT_CERTIFICATE,
};

struct azure_state {
	char host[256];		/* host[:port] */
	char hostname[256];	/* without port */
	char name[NAME_MAX_LEN + 1];
	char version[VERSION_MAX_LEN + 1];	/* "" when the URI has none */
	char resource[128];	/* token audience, e.g. https://vault.azure.net */
	enum azure_auth auth;
	const char *wrap_alg;	/* configured, or NULL */
	struct http_opts http;
};

/* One access token per resource, as "Authorization: Bearer ..." in secret memory. */
struct azure_cache {
	struct {
		char resource[128];
		struct kc_secret *header;
	} slot[TOKEN_CACHE_SLOTS];
};

struct alg_map {
	const char *label;	/* stored in the token */
	const char *wire;	/* sent to the service */
	bool rsa;
};

static const struct alg_map algs[] = {
	{ "RSA-OAEP-256", "RSA-OAEP-256", true },
	{ "RSA-OAEP", "RSA-OAEP", true },
	{ "A256KW", "A256KW", false },
	{ "A256KWP", "CKM_AES_KEY_WRAP_PAD", false },
};

static const struct alg_map *alg_find(const char *label)
{
	for (size_t i = 0; label && i < ARRAY_SIZE(algs); i++)
		if (!strcmp(algs[i].label, label))
			return &algs[i];
	return NULL;
}

static bool version_ok(const char *v)
{
	size_t n = v ? strlen(v) : 0;

	if (n == 0 || n > VERSION_MAX_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)v[i]))
			return false;
	return true;
}

static bool name_ok(const char *s, size_t n)
{
	if (n == 0 || n > NAME_MAX_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-')
			return false;
	return true;
}

/* ---------------------------------------------------------------------------------------- */
/* init: URI and configuration                                                              */

static int parse_uri(struct kc_ctx *ctx, const char *uri, struct azure_state *st)
{
	const char *p = uri + strlen(SCHEME_PREFIX), *slash, *name, *ver;
	size_t hlen;

	if (strncmp(uri, SCHEME_PREFIX, strlen(SCHEME_PREFIX)))
		goto bad;
	slash = strchr(p, '/');
	hlen = slash ? (size_t)(slash - p) : 0;
	if (!hlen || hlen >= sizeof(st->host) || strspn(p, "abcdefghijklmnopqrstuvwxyz"
		"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:") < hlen ||
	    strncmp(slash, "/keys/", 6))
		goto bad;
	memcpy(st->host, p, hlen);
	st->host[hlen] = '\0';
	snprintf(st->hostname, sizeof(st->hostname), "%.*s", (int)strcspn(st->host, ":"),
		 st->host);
	if (!st->hostname[0] || (strchr(st->host, ':') &&
				 strspn(strchr(st->host, ':') + 1, "0123456789") !=
				 strlen(strchr(st->host, ':') + 1)))
		goto bad;
	name = slash + 6;
	ver = strchr(name, '/');
	if (!name_ok(name, ver ? (size_t)(ver - name) : strlen(name)))
		goto bad;
	snprintf(st->name, sizeof(st->name), "%.*s",
		 (int)(ver ? (size_t)(ver - name) : strlen(name)), name);
	if (ver && !version_ok(ver + 1))
		goto bad;
	if (ver)
		snprintf(st->version, sizeof(st->version), "%s", ver + 1);
	return 0;
bad:
	return ctx_fail(ctx, -EINVAL, "KEK URI '%s' is not azure-kv+https://HOST/keys/NAME"
			"[/VERSION] (NAME: letters, digits, dashes; VERSION: letters and digits)",
			uri);
}

/* The token audience: https://vault.azure.net for VAULT.vault.azure.net, and so on. */
static void default_resource(struct azure_state *st)
{
	const char *dot = strchr(st->hostname, '.');

	for (size_t i = 0; dot && azure_suffixes[i]; i++) {
		size_t n = strlen(st->hostname), m = strlen(azure_suffixes[i]);

		if (n > m && !strcasecmp(st->hostname + n - m, azure_suffixes[i])) {
			snprintf(st->resource, sizeof(st->resource), "https://%s",
				 azure_suffixes[i] + 1);
			return;
		}
	}
	snprintf(st->resource, sizeof(st->resource), "https://vault.azure.net");
}

static int parse_config(struct kc_ctx *ctx, struct azure_state *st)
{
	const char *auth = config_get(ctx->config, SECTION, "auth");
	const char *res = config_get(ctx->config, SECTION, "resource");

	if (!auth || !strcmp(auth, "managed-identity"))
		st->auth = AUTH_MANAGED_IDENTITY;
	else if (!strcmp(auth, "client-secret"))
		st->auth = AUTH_CLIENT_SECRET;
	else if (!strcmp(auth, "client-certificate"))
		st->auth = AUTH_CLIENT_CERTIFICATE;
	else
		return ctx_fail(ctx, -EINVAL, "configuration [" SECTION "] auth = '%s': expected "
				"managed-identity, client-secret or client-certificate", auth);
	st->wrap_alg = config_get(ctx->config, SECTION, "wrap-alg");
	if (st->wrap_alg && !alg_find(st->wrap_alg))
		return ctx_fail(ctx, -EINVAL, "configuration [" SECTION "] wrap-alg = '%s': "
				"expected RSA-OAEP-256, RSA-OAEP, A256KW or A256KWP", st->wrap_alg);
	if (res && (strncmp(res, "https://", 8) || strlen(res) >= sizeof(st->resource)))
		return ctx_fail(ctx, -EINVAL, "configuration [" SECTION "] resource = '%s': "
				"expected an https:// URI", res);
	if (res)
		snprintf(st->resource, sizeof(st->resource), "%s", res);
	else
		default_resource(st);
	return http_opts_from_config(ctx, SECTION, &st->http);
}

static int azure_init(struct kc_ctx *ctx, const char *uri, void **r_state)
{
	struct azure_state *st;
	int r;

	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	r = parse_uri(ctx, uri, st);
	if (r >= 0)
		r = parse_config(ctx, st);
	if (r < 0) {
		free(st);
		return r;
	}
	*r_state = st;
	return 0;
}

static void azure_free(void *state)
{
	free(state);
}

/* ---------------------------------------------------------------------------------------- */
/* Access tokens                                                                            */

static void cache_free(void *data)
{
	struct azure_cache *c = data;

	for (size_t i = 0; i < TOKEN_CACHE_SLOTS; i++)
		kc_secret_free(c->slot[i].header);
	free(c);
}

/* The context's access tokens, kept under the provider's own address. */
static struct azure_cache *cache_get(struct kc_ctx *ctx)
{
	struct azure_cache *c = ctx_slot(ctx, &provider_azure);

	if (c)
		return c;
	c = calloc(1, sizeof(*c));
	if (c && ctx_slot_set(ctx, &provider_azure, c, cache_free) < 0) {
		free(c);
		c = NULL;
	}
	return c;
}

static const struct kc_secret *cache_lookup(struct kc_ctx *ctx, const char *resource)
{
	struct azure_cache *c = ctx_slot(ctx, &provider_azure);

	for (size_t i = 0; c && i < TOKEN_CACHE_SLOTS; i++)
		if (c->slot[i].header && !strcmp(c->slot[i].resource, resource))
			return c->slot[i].header;
	return NULL;
}

/* Keep HEADER (ownership taken) for RESOURCE; the oldest slot goes when all are used. */
static int cache_store(struct kc_ctx *ctx, const char *resource, struct kc_secret *header)
{
	struct azure_cache *c = cache_get(ctx);
	size_t i;

	if (!c) {
		kc_secret_free(header);
		return -ENOMEM;
	}
	for (i = 0; i < TOKEN_CACHE_SLOTS - 1 && c->slot[i].header; i++)
		;
	kc_secret_free(c->slot[i].header);
	snprintf(c->slot[i].resource, sizeof(c->slot[i].resource), "%s", resource);
	c->slot[i].header = header;
	return 0;
}

/* Explain a refused token request from its OAuth error JSON ("error", "error_description"). */
static int token_error(struct kc_ctx *ctx, const char *what, const struct http_response *resp)
{
	_cleanup_(http_json_put_wipep) struct json_object *obj = NULL;
	const char *err = NULL, *desc = NULL;
	long s = resp->status;
	int r;

	if (http_json_parse(ctx, resp->body, what, &obj) >= 0) {
		err = http_json_get_string(obj, NULL, "error");
		desc = http_json_get_string(obj, NULL, "error_description");
	}
	if (s == 401 || (s == 400 && err && (!strcmp(err, "invalid_client") ||
					     !strcmp(err, "unauthorized_client"))))
		r = -EKEYREJECTED;
	else if (s == 400 || s == 404)
		r = -ENOANO;	/* e.g. no managed identity assigned, unknown identity */
	else
		r = http_status_errno(s) ?: -EBADE;
	return ctx_fail(ctx, r, "%s refused: HTTP %ld%s%s%s%.200s", what, s, err ? " " : "",
			err ?: "", desc ? ": " : "", desc ?: "");
}

/* Build "Authorization: Bearer TOKEN" from a token response. */
static int token_header(struct kc_ctx *ctx, const char *what, const struct http_response *resp,
			struct kc_secret **r_header)
{
	_cleanup_(http_json_put_wipep) struct json_object *obj = NULL;
	_cleanup_(kc_secret_freep) struct kc_secret *tok = NULL, *hdr = NULL;
	const char *type;
	int r;

	if (resp->status != 200)
		return token_error(ctx, what, resp);
	r = http_json_parse(ctx, resp->body, what, &obj);
	if (r < 0)
		return r;
	type = http_json_get_string(obj, NULL, "token_type");
	if (type && strcasecmp(type, "Bearer"))
		return ctx_fail(ctx, -EBADE, "%s: token type '%.32s' is not Bearer", what, type);
	r = http_json_take_secret(obj, "access_token", false, &tok);
	if (r == -ENOMEM)
		return r;
	/* RFC 6750 b64token characters only: nothing that could break the header. */
	if (r < 0 || tok->len == 0 ||
	    strspn((const char *)tok->data, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		   "0123456789-._~+/=") != tok->len)
		return ctx_fail(ctx, -EBADE, "%s: no usable access_token in the response", what);
	r = http_sbuf_append(&hdr, "Authorization: Bearer ", 22);
	if (r >= 0)
		r = http_sbuf_append(&hdr, (const char *)tok->data, tok->len);
	if (r < 0)
		return r;
	*r_header = TAKE_PTR(hdr);
	return 0;
}

static int token_imds(struct kc_ctx *ctx, const struct azure_state *st,
		      struct http_response *r_resp, char *what, size_t what_size)
{
	const char *ep = config_get(ctx->config, SECTION, "imds-endpoint") ?: IMDS_DEFAULT;
	const char *cid = config_get(ctx->config, SECTION, "client-id");
	const char *oid = config_get(ctx->config, SECTION, "object-id");
	static const char *const headers[] = { "Metadata: true", NULL };
	_cleanup_(kc_secret_freep) struct kc_secret *url = NULL;
	char host[256];
	int r;

	http_url_host(ep, host, sizeof(host));
	snprintf(what, what_size, "managed identity token endpoint %s", host);
	r = http_sbuf_append(&url, ep, strlen(ep));
	if (r >= 0)
		r = http_sbuf_append(&url, strchr(ep, '?') ? "&" : "?", 1);
	if (r >= 0)
		r = http_sbuf_append(&url, "api-version=2018-02-01&resource=", 32);
	if (r >= 0)
		r = http_sbuf_append_urlencoded(&url, st->resource, strlen(st->resource));
	if (r >= 0 && (cid || oid)) {
		r = http_sbuf_append(&url, cid ? "&client_id=" : "&object_id=", 11);
		if (r >= 0)
			r = http_sbuf_append_urlencoded(&url, cid ?: oid, strlen(cid ?: oid));
	}
	if (r < 0)
		return r;
	return http_send(ctx, &st->http, &(struct http_request){
		.method = "GET", .url = (const char *)url->data, .plain = HTTP_PLAIN_LOCAL,
		.headers = headers }, r_resp);
}

/* The client secret from its private file, without a trailing newline. */
static int read_client_secret(struct kc_ctx *ctx, const char *path, struct kc_secret **r_sec)
{
	struct kc_secret *s = NULL;
	int r;

	r = trust_read_secret(ctx, path, "client secret file", SECRET_FILE_MAX, &s);
	if (r < 0)
		return r == -EFBIG ? -EINVAL : r;
	while (s->len && (s->data[s->len - 1] == '\n' || s->data[s->len - 1] == '\r'))
		s->len--;
	if (!s->len) {
		kc_secret_free(s);
		return ctx_fail(ctx, -ENOANO, "client secret file '%s' is empty", path);
	}
	*r_sec = s;
	return 0;
}

static int form_add(struct kc_secret **body, const char *key, const char *val, size_t len)
{
	int r = 0;

	if ((*body) && (*body)->len)
		r = http_sbuf_append(body, "&", 1);
	if (r >= 0)
		r = http_sbuf_append(body, key, strlen(key));
	if (r >= 0)
		r = http_sbuf_append(body, "=", 1);
	if (r >= 0)
		r = http_sbuf_append_urlencoded(body, val, len);
	return r;
}

/* The tenant's token endpoint https://AUTHORITY/TENANT/oauth2/v2.0/token into URL (also the
 * client assertion's audience) and the scope; AUTH names the method for the message. */
static int client_endpoint(struct kc_ctx *ctx, const struct azure_state *st, const char *auth,
			   const char *needs, char *url, size_t url_size, char *scope,
			   size_t scope_size, char *what, size_t what_size)
{
	const char *authority = config_get(ctx->config, SECTION, "authority-host") ?:
				AUTHORITY_DEFAULT;
	const char *tenant = config_get(ctx->config, SECTION, "tenant-id");
	const char *cid = config_get(ctx->config, SECTION, "client-id");
	char host[256];

	http_url_host(authority, host, sizeof(host));
	snprintf(what, what_size, "Entra ID token endpoint %s", host);
	if (!tenant || !cid)
		return ctx_fail(ctx, -ENOANO, "configuration [" SECTION "]: auth = %s needs "
				"tenant-id, client-id and %s", auth, needs);
	if (!tenant[0] || strspn(tenant, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				 "0123456789.-") != strlen(tenant))
		return ctx_fail(ctx, -EINVAL, "configuration [" SECTION "] tenant-id = '%s' is "
				"not a tenant id or domain", tenant);
	if (!authority[0] ||
	    (size_t)snprintf(url, url_size, "%s%s%s/oauth2/v2.0/token", authority,
			     authority[strlen(authority) - 1] == '/' ? "" : "/", tenant) >= url_size)
		return ctx_fail(ctx, -EINVAL, "configuration [" SECTION "] authority-host is empty "
				"or too long");
	snprintf(scope, scope_size, "%s/.default", st->resource);
	return 0;
}

static int token_client_secret(struct kc_ctx *ctx, const struct azure_state *st,
			       struct http_response *r_resp, char *what, size_t what_size)
{
	const char *cid = config_get(ctx->config, SECTION, "client-id");
	const char *file = config_get(ctx->config, SECTION, "client-secret-file");
	_cleanup_(kc_secret_freep) struct kc_secret *secret = NULL, *body = NULL;
	char url[1024], scope[160];
	int r;

	r = client_endpoint(ctx, st, "client-secret", "client-secret-file", url, sizeof(url),
			    scope, sizeof(scope), what, what_size);
	if (r >= 0 && !file)
		r = ctx_fail(ctx, -ENOANO, "configuration [" SECTION "]: auth = client-secret "
			     "needs tenant-id, client-id and client-secret-file");
	if (r >= 0)
		r = read_client_secret(ctx, file, &secret);
	/* The form body holds the client secret: built in secret memory, URL-encoded there. */
	if (r >= 0)
		r = form_add(&body, "grant_type", "client_credentials", 18);
	if (r >= 0)
		r = form_add(&body, "client_id", cid, strlen(cid));
	if (r >= 0)
		r = form_add(&body, "client_secret", (const char *)secret->data, secret->len);
	if (r >= 0)
		r = form_add(&body, "scope", scope, strlen(scope));
	if (r < 0)
		return r;
	return http_send(ctx, &st->http, &(struct http_request){
		.method = "POST", .url = url, .body = body,
		.content_type = "application/x-www-form-urlencoded" }, r_resp);
}

/* ---------------------------------------------------------------------------------------- */
/* Certificate credentials: a client assertion (RFC 7523 JWT, RS256) signed with the key of a
 * certificate registered with the application.                                             */

static void x509_freep(X509 **p)
{
	X509_free(*p);
}

static void pkey_freep(EVP_PKEY **p)
{
	EVP_PKEY_free(*p);
}

static void bio_freep(BIO **p)
{
	BIO_free(*p);
}

static void md_ctx_freep(EVP_MD_CTX **p)
{
	EVP_MD_CTX_free(*p);
}

static void json_putp(struct json_object **p)
{
	json_object_put(*p);
}

/* Encrypted keys are not supported: never prompt on a terminal for a PEM passphrase. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

/* The application's certificate: the first PEM certificate of PATH (not secret). */
static int read_client_cert(struct kc_ctx *ctx, const char *path, X509 **r_cert)
{
	_cleanup_(freep) unsigned char *buf = NULL;
	_cleanup_(bio_freep) BIO *bio = NULL;
	size_t len = 0;
	int r;

	r = util_read_file(path, CERT_FILE_MAX, &buf, &len);
	if (r < 0)
		return ctx_fail(ctx, r == -EFBIG ? -EINVAL : r, "client certificate file '%s': %s",
				path, strerror(-r));
	bio = BIO_new_mem_buf(buf, (int)len);
	if (!bio)
		return -ENOMEM;
	*r_cert = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL);
	ERR_clear_error();
	if (!*r_cert)
		return ctx_fail(ctx, -EINVAL, "client certificate file '%s' holds no PEM "
				"certificate", path);
	return 0;
}

/* The certificate's RSA private key from its private file: read into locked memory and
 * parsed from there; the PEM text is wiped when this returns. */
static int read_client_key(struct kc_ctx *ctx, const char *path, X509 *cert,
			   EVP_PKEY **r_key)
{
	_cleanup_(kc_secret_freep) struct kc_secret *pem = NULL;
	_cleanup_(bio_freep) BIO *bio = NULL;
	_cleanup_(pkey_freep) EVP_PKEY *key = NULL;
	int r;

	r = trust_read_secret(ctx, path, "client certificate key file", KEY_FILE_MAX, &pem);
	if (r < 0)
		return r == -EFBIG ? -EINVAL : r;
	bio = BIO_new_mem_buf(pem->data, (int)pem->len);
	if (!bio)
		return -ENOMEM;
	key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	ERR_clear_error();
	if (!key)
		return ctx_fail(ctx, -EINVAL, "client certificate key file '%s' holds no "
				"unencrypted PEM private key", path);
	if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA)
		return ctx_fail(ctx, -EINVAL, "client certificate key file '%s' is not an RSA key "
				"(RS256 client assertions need one)", path);
	r = X509_check_private_key(cert, key);
	ERR_clear_error();
	if (r != 1)
		return ctx_fail(ctx, -EINVAL, "client certificate key file '%s' is not the key of "
				"the client certificate", path);
	*r_key = TAKE_PTR(key);
	return 0;
}

/* A random (version 4) UUID, for the assertion's "jti". */
static int random_uuid(char buf[37])
{
	unsigned char b[16];

	if (RAND_bytes(b, sizeof(b)) != 1) {
		ERR_clear_error();
		return -ENOMEM;
	}
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	snprintf(buf, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
	return 0;
}

static int json_add(struct json_object *obj, const char *key, struct json_object *val)
{
	if (!val || json_object_object_add(obj, key, val) < 0) {
		json_object_put(val);
		return -ENOMEM;
	}
	return 0;
}

/* Append base64url(JSON text of OBJ) to *S. The header and claims are not secret. */
static int append_b64_json(struct kc_secret **s, struct json_object *obj)
{
	const char *j = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN |
						       JSON_C_TO_STRING_NOSLASHESCAPE);

	if (!j)
		return -ENOMEM;
	return http_sbuf_append_b64(s, (const unsigned char *)j, strlen(j), true);
}

/* The unsigned JWT "base64url(header).base64url(claims)" into *R_JWT. */
static int assertion_unsigned(X509 *cert, const char *aud, const char *cid,
			      struct kc_secret **r_jwt, char *x5t, size_t x5t_size)
{
	_cleanup_(json_putp) struct json_object *hdr = NULL, *claims = NULL;
	_cleanup_(kc_secret_freep) struct kc_secret *jwt = NULL, *thumb = NULL;
	unsigned char sha1[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	char jti[37];
	int64_t now = (int64_t)time(NULL);
	int r;

	/* x5t: base64url of the SHA-1 digest of the certificate's DER encoding. */
	if (X509_digest(cert, EVP_sha1(), sha1, &n) != 1) {
		ERR_clear_error();
		return -ENOMEM;
	}
	r = http_sbuf_append_b64(&thumb, sha1, n, true);
	if (r < 0)
		return r;
	snprintf(x5t, x5t_size, "%s", (const char *)thumb->data);
	r = random_uuid(jti);
	if (r < 0)
		return r;
	hdr = json_object_new_object();
	claims = json_object_new_object();
	if (!hdr || !claims)
		return -ENOMEM;
	r = json_add(hdr, "alg", json_object_new_string("RS256"));
	if (r >= 0)
		r = json_add(hdr, "typ", json_object_new_string("JWT"));
	if (r >= 0)
		r = json_add(hdr, "x5t", json_object_new_string(x5t));
	if (r >= 0)
		r = json_add(claims, "aud", json_object_new_string(aud));
	if (r >= 0)
		r = json_add(claims, "iss", json_object_new_string(cid));
	if (r >= 0)
		r = json_add(claims, "sub", json_object_new_string(cid));
	if (r >= 0)
		r = json_add(claims, "jti", json_object_new_string(jti));
	if (r >= 0)
		r = json_add(claims, "nbf", json_object_new_int64(now));
	if (r >= 0)
		r = json_add(claims, "iat", json_object_new_int64(now));
	if (r >= 0)
		r = json_add(claims, "exp", json_object_new_int64(now + ASSERTION_LIFETIME_S));
	if (r >= 0)
		r = append_b64_json(&jwt, hdr);
	if (r >= 0)
		r = http_sbuf_append(&jwt, ".", 1);
	if (r >= 0)
		r = append_b64_json(&jwt, claims);
	if (r < 0)
		return r;
	*r_jwt = TAKE_PTR(jwt);
	return 0;
}

/* Append ".base64url(RS256 signature of *JWT)": RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518). */
static int assertion_sign(struct kc_ctx *ctx, EVP_PKEY *key, struct kc_secret **jwt)
{
	_cleanup_(md_ctx_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();
	_cleanup_(kc_secret_freep) struct kc_secret *sig = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	size_t n = 0;
	int ok;

	if (!md)
		return -ENOMEM;
	ok = EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, key) == 1 &&
	     EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1 &&
	     EVP_DigestSign(md, NULL, &n, (*jwt)->data, (*jwt)->len) == 1 && n > 0;
	if (ok) {
		sig = kc_secret_alloc(n);
		if (!sig) {
			ERR_clear_error();
			return -ENOMEM;
		}
		ok = EVP_DigestSign(md, sig->data, &n, (*jwt)->data, (*jwt)->len) == 1;
		sig->len = n;
	}
	ERR_clear_error();
	if (!ok)
		return ctx_fail(ctx, -EINVAL, "cannot sign the client assertion with the client "
				"certificate's key");
	if (http_sbuf_append(jwt, ".", 1) < 0 ||
	    http_sbuf_append_b64(jwt, sig->data, sig->len, true) < 0)
		return -ENOMEM;
	return 0;
}

static int token_client_certificate(struct kc_ctx *ctx, const struct azure_state *st,
				    struct http_response *r_resp, char *what, size_t what_size)
{
	const char *cid = config_get(ctx->config, SECTION, "client-id");
	const char *cert_file = config_get(ctx->config, SECTION, "client-certificate-file");
	const char *key_file = config_get(ctx->config, SECTION, "client-certificate-key-file");
	_cleanup_(kc_secret_freep) struct kc_secret *jwt = NULL, *body = NULL;
	_cleanup_(x509_freep) X509 *cert = NULL;
	_cleanup_(pkey_freep) EVP_PKEY *key = NULL;
	char url[1024], scope[160], x5t[64] = "";
	int r;

	r = client_endpoint(ctx, st, "client-certificate", "client-certificate-file and "
			    "client-certificate-key-file", url, sizeof(url), scope,
			    sizeof(scope), what, what_size);
	if (r >= 0 && (!cert_file || !key_file))
		r = ctx_fail(ctx, -ENOANO, "configuration [" SECTION "]: auth = client-certificate "
			     "needs tenant-id, client-id, client-certificate-file and "
			     "client-certificate-key-file");
	if (r >= 0)
		r = read_client_cert(ctx, cert_file, &cert);
	if (r >= 0)
		r = read_client_key(ctx, key_file, cert, &key);
	/* The assertion is a credential (a bearer proof for its lifetime): secret memory. The
	 * audience is the token endpoint itself. */
	if (r >= 0)
		r = assertion_unsigned(cert, url, cid, &jwt, x5t, sizeof(x5t));
	if (r >= 0)
		r = assertion_sign(ctx, key, &jwt);
	if (r >= 0)
		r = form_add(&body, "grant_type", "client_credentials", 18);
	if (r >= 0)
		r = form_add(&body, "client_id", cid, strlen(cid));
	if (r >= 0)
		r = form_add(&body, "scope", scope, strlen(scope));
	if (r >= 0)
		r = form_add(&body, "client_assertion_type", ASSERTION_TYPE,
			     strlen(ASSERTION_TYPE));
	if (r >= 0)
		r = form_add(&body, "client_assertion", (const char *)jwt->data, jwt->len);
	if (r < 0)
		return r;
	log_dbg(ctx, "azure-kv: client assertion for client '%s' signed with certificate "
		"x5t %s", cid, x5t);
	return http_send(ctx, &st->http, &(struct http_request){
		.method = "POST", .url = url, .body = body,
		.content_type = "application/x-www-form-urlencoded" }, r_resp);
}

/* The cached "Authorization: Bearer ..." header for the key's resource, fetched once. */
static int token_get(struct kc_ctx *ctx, const struct azure_state *st,
		     const struct kc_secret **r_header)
{
	struct http_response resp = { 0 };
	struct kc_secret *hdr = NULL;
	char what[320];
	int r;

	*r_header = cache_lookup(ctx, st->resource);
	if (*r_header)
		return 0;
	if (st->auth == AUTH_CLIENT_SECRET)
		r = token_client_secret(ctx, st, &resp, what, sizeof(what));
	else if (st->auth == AUTH_CLIENT_CERTIFICATE)
		r = token_client_certificate(ctx, st, &resp, what, sizeof(what));
	else
		r = token_imds(ctx, st, &resp, what, sizeof(what));
	if (r >= 0)
		r = token_header(ctx, what, &resp, &hdr);
	http_response_clear(&resp);
	if (r >= 0)
		r = cache_store(ctx, st->resource, hdr);
	if (r < 0) {
		if (r != -ENOMEM)
			ctx_detail_prefix(ctx, "access token for %s", st->resource);
		return r;
	}
	log_dbg(ctx, "azure-kv: access token for %s obtained", st->resource);
	*r_header = cache_lookup(ctx, st->resource);
	return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Vault requests                                                                           */

/* Map a vault error response. OP is "get", "wrapKey" or "unwrapKey". */
static int vault_error(struct kc_ctx *ctx, const struct azure_state *st, const char *op,
		       const struct http_response *resp)
{
	_cleanup_(http_json_put_wipep) struct json_object *obj = NULL;
	const char *code = NULL, *msg = NULL;
	long s = resp->status;

	if (http_json_parse(ctx, resp->body, "error", &obj) >= 0) {
		code = http_json_get_string(obj, "error", "code");
		msg = http_json_get_string(obj, "error", "message");
	}
	ctx_detail_clear(ctx);
	switch (s) {
	case 401:
		return ctx_fail(ctx, -EKEYREJECTED, "the vault refused the access token "
				"(%s; challenge: %.200s): wrong tenant, resource or expired token?",
				code ?: "HTTP 401", resp->www_authenticate[0] ?
				resp->www_authenticate : "none");
	case 403:
		if (msg && strstr(msg, "disabled key"))
			return ctx_fail(ctx, -EPERM, "the key is disabled in the vault (%.200s); "
					"enable it (az keyvault key set-attributes ... --enabled "
					"true)", msg);
		return ctx_fail(ctx, -EPERM, "the identity lacks %s permission on the key (%s: "
				"%.200s)", op, code ?: "HTTP 403", msg ?: "forbidden");
	case 404:
		return ctx_fail(ctx, -ENOENT, "no such key or version in the vault (%s)",
				code ?: "HTTP 404");
	case 400:
		if (!strcmp(op, "unwrapKey"))
			return ctx_fail(ctx, -EBADMSG, "the vault could not unwrap the key (%s: "
					"%.200s): wrong key or corrupt token?",
					code ?: "HTTP 400", msg ?: "bad request");
		return ctx_fail(ctx, -EINVAL, "the vault rejected the %s request (%s: %.200s)",
				op, code ?: "HTTP 400", msg ?: "bad request");
	}
	return ctx_fail(ctx, http_status_errno(s) ?: -EBADE, "unexpected HTTP %ld to %s (%s)",
			s, op, code ?: "no error code");
}

/* POST or GET https://HOST/keys/NAME[/VERSION][/OP]?api-version=7.4 with the bearer token;
 * returns the parsed 200 response in *R_OBJ. */
static int vault_call(struct kc_ctx *ctx, const struct azure_state *st, const char *version,
		      const char *op, const char *opname, const struct kc_secret *body,
		      struct json_object **r_obj)
{
	struct http_response resp = { 0 };
	const struct kc_secret *auth = NULL;
	const struct kc_secret *secret_headers[2] = { NULL, NULL };
	static const char *const headers[] = { "Accept: application/json", NULL };
	char url[1024];
	int r;

	r = token_get(ctx, st, &auth);
	if (r < 0)
		return r;
	secret_headers[0] = auth;
	snprintf(url, sizeof(url), "https://%s/keys/%s%s%s%s%s?api-version=" API_VERSION,
		 st->host, st->name, version && *version ? "/" : "", version ?: "",
		 op ? "/" : "", op ?: "");
	r = http_send(ctx, &st->http, &(struct http_request){
		.method = body ? "POST" : "GET", .url = url, .headers = headers,
		.secret_headers = secret_headers, .body = body,
		.content_type = "application/json" }, &resp);
	if (r >= 0 && resp.status != 200)
		r = vault_error(ctx, st, opname, &resp);
	if (r >= 0)
		r = http_json_parse(ctx, resp.body, "the vault's response", r_obj);
	http_response_clear(&resp);
	return r;
}

/* The version in a kid "https://HOST/keys/NAME/VERSION", checked against our key. */
static int kid_version(struct kc_ctx *ctx, const struct azure_state *st, const char *kid,
		       char **r_version)
{
	const char *p = kid ? strstr(kid, "/keys/") : NULL;
	size_t n = strlen(st->name);

	if (!p || strncmp(kid, "https://", 8) || strncmp(p + 6, st->name, n) || p[6 + n] != '/' ||
	    !version_ok(p + 7 + n))
		return ctx_fail(ctx, -EBADE, "the vault's response names key '%.200s', not a "
				"version of '%s'", kid ?: "(none)", st->name);
	if (st->version[0] && strcmp(st->version, p + 7 + n))
		return ctx_fail(ctx, -EBADE, "the vault answered with version '%s', not '%s'",
				p + 7 + n, st->version);
	*r_version = strdup(p + 7 + n);
	return *r_version ? 0 : -ENOMEM;
}

/* The wrap algorithm: configured, or from the key's type. */
static int choose_alg(struct kc_ctx *ctx, const struct azure_state *st,
		      const struct alg_map **r_alg)
{
	_cleanup_(http_json_put_wipep) struct json_object *obj = NULL;
	const char *kty, *label;
	int r;

	if (st->wrap_alg) {
		*r_alg = alg_find(st->wrap_alg);
		return 0;
	}
	r = vault_call(ctx, st, st->version, NULL, "get", NULL, &obj);
	if (r < 0)
		return r;
	kty = http_json_get_string(obj, "key", "kty");
	if (kty && (!strcmp(kty, "RSA") || !strcmp(kty, "RSA-HSM")))
		label = "RSA-OAEP-256";
	else if (kty && (!strcmp(kty, "oct") || !strcmp(kty, "oct-HSM")))
		label = "A256KW";
	else
		return ctx_fail(ctx, kty ? -EINVAL : -EBADE, "key type '%.32s' cannot wrap keys "
				"(need RSA or oct-HSM)", kty ?: "(none)");
	/* Log the label, not (*r_alg)->label: alg_find() may return NULL as far as the
	 * compiler knows (-Wnull-dereference), though both labels are in algs[]. */
	log_dbg(ctx, "azure-kv: key '%s' is %s: wrapping with %s", st->name, kty, label);
	*r_alg = alg_find(label);
	return 0;
}

/* {"alg":"ALG","value":"base64url(DATA)"} in secret memory. */
static int op_body(const struct alg_map *alg, const unsigned char *data, size_t len,
		   struct kc_secret **r_body)
{
	_cleanup_(kc_secret_freep) struct kc_secret *b = NULL;
	int r;

	r = http_sbuf_append(&b, "{\"alg\":\"", 8);
	if (r >= 0)
		r = http_sbuf_append(&b, alg->wire, strlen(alg->wire));
	if (r >= 0)
		r = http_sbuf_append(&b, "\",\"value\":\"", 11);
	if (r >= 0)
		r = http_sbuf_append_b64(&b, data, len, true);
	if (r >= 0)
		r = http_sbuf_append(&b, "\"}", 2);
	if (r < 0)
		return r;
	*r_body = TAKE_PTR(b);
	return 0;
}

static int azure_fail_prefix(struct kc_ctx *ctx, const struct azure_state *st, int r)
{
	if (r != -ENOMEM)
		ctx_detail_prefix(ctx, "Azure Key Vault %s key '%s%s%s'", st->host, st->name,
				  st->version[0] ? "/" : "", st->version);
	return r;
}

static int wrap_result(struct kc_ctx *ctx, const struct azure_state *st,
		       struct json_object *obj, const struct alg_map *alg,
		       struct kc_wrapped *r_wrapped)
{
	_cleanup_(kc_secret_freep) struct kc_secret *w = NULL;
	_cleanup_(freep) char *version = NULL;
	unsigned char *data;
	int r;

	r = kid_version(ctx, st, http_json_get_string(obj, NULL, "kid"), &version);
	if (r < 0)
		return r;
	r = http_json_take_secret(obj, "value", true, &w);
	if (r == -ENOMEM)
		return r;
	if (r < 0 || w->len < 8 || w->len > TOKEN_WRAPPED_MAX)
		return ctx_fail(ctx, -EBADE, "the vault's wrapped key is %s",
				r < 0 ? "missing or not base64url" : "of an impossible size");
	data = malloc(w->len);
	if (!data)
		return -ENOMEM;
	memcpy(data, w->data, w->len);
	r_wrapped->data = data;
	r_wrapped->len = w->len;
	snprintf(r_wrapped->alg, sizeof(r_wrapped->alg), "%s", alg->label);
	r_wrapped->key_version = TAKE_PTR(version);
	return 0;
}

/* The key in an unwrapKey answer. */
static int unwrap_result(struct kc_ctx *ctx, struct json_object *obj, struct kc_secret **r_dek)
{
	_cleanup_(kc_secret_freep) struct kc_secret *dek = NULL;
	int r;

	r = http_json_take_secret(obj, "value", true, &dek);
	if (r == -ENOENT || r == -EINVAL)
		return ctx_fail(ctx, -EBADE, "the vault's unwrapped key is missing or not "
				"base64url");
	if (r < 0)
		return r;
	if (dek->len == 0 || dek->len > DEK_MAX)
		return ctx_fail(ctx, -EBADE, "the vault returned a %zu-byte key", dek->len);
	*r_dek = TAKE_PTR(dek);
	return 0;
}

static int azure_wrap(struct kc_ctx *ctx, void *state, const struct kc_secret *dek,
		      struct kc_wrapped *r_wrapped)
{
	_cleanup_(http_json_put_wipep) struct json_object *obj = NULL;
	_cleanup_(kc_secret_freep) struct kc_secret *body = NULL;
	const struct azure_state *st = state;
	const struct alg_map *alg = NULL;
	int r;

	if (dek->len == 0 || dek->len > DEK_MAX)
		return ctx_fail(ctx, -EINVAL, "a %zu-byte key cannot be wrapped", dek->len);
	r = choose_alg(ctx, st, &alg);
	if (r >= 0)
		r = op_body(alg, dek->data, dek->len, &body);
	if (r >= 0)
		r = vault_call(ctx, st, st->version, "wrapkey", "wrapKey", body, &obj);
	if (r >= 0)
		r = wrap_result(ctx, st, obj, alg, r_wrapped);
	if (r < 0)
		return azure_fail_prefix(ctx, st, r);
	log_dbg(ctx, "azure-kv: wrapped with key '%s' version %s (%s)", st->name,
		r_wrapped->key_version, alg->label);
	return 0;
}

static int azure_unwrap(struct kc_ctx *ctx, void *state, const char *alg_label,
			const char *key_version, const unsigned char *wrapped, size_t wrapped_len,
			struct kc_secret **r_dek)
{
	_cleanup_(http_json_put_wipep) struct json_object *obj = NULL;
	_cleanup_(kc_secret_freep) struct kc_secret *body = NULL, *dek = NULL;
	const struct azure_state *st = state;
	const struct alg_map *alg = alg_find(alg_label);
	const char *version = key_version ?: st->version;
	int r;

	if (!alg)
		return azure_fail_prefix(ctx, st, ctx_fail(ctx, -EINVAL, "unknown wrap algorithm "
							   "'%s'", alg_label));
	if (!version_ok(version))
		return azure_fail_prefix(ctx, st, ctx_fail(ctx, -EINVAL, "the token records no "
							   "usable key version"));
	r = op_body(alg, wrapped, wrapped_len, &body);
	if (r >= 0)
		r = vault_call(ctx, st, version, "unwrapkey", "unwrapKey", body, &obj);
	if (r >= 0)
		r = unwrap_result(ctx, obj, &dek);
	if (r < 0)
		return azure_fail_prefix(ctx, st, r);
	log_dbg(ctx, "azure-kv: unwrapped with key '%s' version %s", st->name, version);
	*r_dek = TAKE_PTR(dek);
	return 0;
}

static int azure_validate(struct kc_ctx *ctx, const struct token *t)
{
	const struct alg_map *alg = alg_find(t->alg);
	struct azure_state uri = { 0 };
	int r;

	if (!alg)
		return ctx_fail(ctx, -EINVAL, "wrap algorithm '%s' is not RSA-OAEP-256, RSA-OAEP, "
				"A256KW or A256KWP", t->alg);
	if (!version_ok(t->key_version))
		return ctx_fail(ctx, -EINVAL, "an azure-kv token needs a key version (letters and "
				"digits, at most %d)", VERSION_MAX_LEN);
	r = parse_uri(ctx, t->uri, &uri);
	if (r < 0)
		return r;
	/* A URI that pins a version (.../keys/NAME/VERSION) must agree with the token. */
	if (uri.version[0] && strcmp(uri.version, t->key_version))
		return ctx_fail(ctx, -EINVAL, "key version '%s' differs from the URI's '%s'",
				t->key_version, uri.version);
	if (alg->rsa ? t->wrapped_len < 128 : t->wrapped_len % 8 != 0)
		return ctx_fail(ctx, -EINVAL, "a %zu-byte wrapped key cannot come from %s",
				t->wrapped_len, t->alg);
	return 0;
}

/* The az command that changes the vault or HSM of ST ("keyvault update --name V", or
 * "keyvault update-hsm --hsm-name H"), and the one that changes the key's attributes. */
static void az_commands(const struct azure_state *st, char *vault_cmd, size_t vault_size,
			char *key_cmd, size_t key_size)
{
	int n = (int)strcspn(st->hostname, ".");
	bool hsm = strstr(st->hostname, ".managedhsm.") != NULL;

	snprintf(vault_cmd, vault_size, "az keyvault %s %.*s", hsm ? "update-hsm --hsm-name" :
		 "update --name", n, st->hostname);
	snprintf(key_cmd, key_size, "az keyvault key set-attributes --%s %.*s --name %s",
		 hsm ? "hsm-name" : "vault-name", n, st->hostname, st->name);
}

/* The attributes of a key bundle ({"key":{..},"attributes":{"enabled","exp","recoveryLevel",
 * ..}}) into R_INFO. A recovery level with "Purgeable" lets anyone with the purge permission
 * destroy the key for good (no purge protection); "Recoverable" and the
 * "+ProtectedSubscription" levels do not. Past exp the vault still unwraps (Key Vault lets
 * decrypt, unwrap and verify run outside nbf..exp) but refuses to wrap. */
static void key_info_from_bundle(const struct azure_state *st, struct json_object *obj,
				 struct kek_info *r_info)
{
	struct json_object *attrs = NULL, *v;
	const char *level;
	char vault_cmd[300], key_cmd[400];

	az_commands(st, vault_cmd, sizeof(vault_cmd), key_cmd, sizeof(key_cmd));
	if (!json_object_object_get_ex(obj, "attributes", &attrs) ||
	    !json_object_is_type(attrs, json_type_object))
		return;
	if (json_object_object_get_ex(attrs, "enabled", &v) &&
	    json_object_is_type(v, json_type_boolean) && !json_object_get_boolean(v)) {
		r_info->disabled = true;
		snprintf(r_info->disabled_fix, sizeof(r_info->disabled_fix),
			 "enable it: %s --enabled true", key_cmd);
	}
	level = http_json_get_string(obj, "attributes", "recoveryLevel");
	if (level && strstr(level, "Purgeable")) {
		r_info->deletable = true;
		snprintf(r_info->deletable_why, sizeof(r_info->deletable_why),
			 "recoveryLevel %.64s: no purge protection", level);
		snprintf(r_info->deletable_fix, sizeof(r_info->deletable_fix),
			 "enable purge protection: %s --enable-purge-protection true", vault_cmd);
	}
	if (json_object_object_get_ex(attrs, "exp", &v) && json_object_is_type(v, json_type_int) &&
	    json_object_get_int64(v) > 0) {
		r_info->expires = json_object_get_int64(v);
		snprintf(r_info->expires_fix, sizeof(r_info->expires_fix),
			 "after that the vault still unwraps with it but wraps nothing (no kek "
			 "add, rekey or rotation to it); move the expiry (%s --expires DATE) or "
			 "the volumes to another key (kekcrypt kek rotate --to)", key_cmd);
	}
}

/* GET the key (the URI's version, or the current one). */
static int azure_inspect(struct kc_ctx *ctx, void *state, struct kek_info *r_info)
{
	_cleanup_(http_json_put_wipep) struct json_object *obj = NULL;
	const struct azure_state *st = state;
	int r;

	r = vault_call(ctx, st, st->version, NULL, "get", NULL, &obj);
	if (r < 0)
		return azure_fail_prefix(ctx, st, r);
	key_info_from_bundle(st, obj, r_info);
	/* Without a version in the URI, the bundle is the current version's. */
	if (!st->version[0]) {
		_cleanup_(freep) char *version = NULL;

		r = kid_version(ctx, st, http_json_get_string(obj, "key", "kid"), &version);
		if (r < 0)
			return azure_fail_prefix(ctx, st, r);
		snprintf(r_info->current_version, sizeof(r_info->current_version), "%s",
			 version);
	}
	return 0;
}

/* A boot needs the network, the HTTPS files and the credential files of the config. */
static int azure_boot_needs(struct kc_ctx *ctx, void *state, struct boot_list *list)
{
	int r = http_boot_needs(ctx, SECTION, list);

	if (r >= 0)
		r = boot_add_listed(ctx, list, KC_BOOT_SECRET, SECTION, "client-secret-file");
	if (r >= 0)
		r = boot_add_listed(ctx, list, KC_BOOT_SECRET, SECTION,
				    "client-certificate-key-file");
	if (r >= 0)
		r = boot_add_listed(ctx, list, KC_BOOT_FILE, SECTION, "client-certificate-file");
	return r;
}

/* kek rotate: a URI pinning a version (.../keys/NAME/VERSION) loses it, so that the vault's
 * current version wraps. */
static int azure_current_uri(struct kc_ctx *ctx, void *state, const char *uri, char **r_uri)
{
	const struct azure_state *st = state;
	size_t n = strlen(uri);
	char *out;

	if (st->version[0])
		n -= strlen(st->version) + 1;
	out = strndup(uri, n);
	if (!out)
		return -ENOMEM;
	*r_uri = out;
	return 0;
}

/* The vault's host: an access token for https://vault.azure.net is good on every vault, so
 * it goes only where allowed-hosts says. */
static void azure_needs(void *state, struct kek_needs *r_needs)
{
	const struct azure_state *st = state;
	const char *colon = strchr(st->host, ':');

	snprintf(r_needs->host, sizeof(r_needs->host), "%s", st->hostname);
	r_needs->port = colon ? (unsigned)strtoul(colon + 1, NULL, 10) : 443;
}

const struct kc_provider_ops provider_azure = {
	.abi_version = KC_PROVIDER_ABI_VERSION,
	.name = "azure-kv",
	.schemes = (const char *const[]){ "azure-kv+https", NULL },
	.syntax = "azure-kv+https://VAULT.vault.azure.net/keys/NAME[/VERSION]",
	.summary = "an Azure Key Vault or Managed HSM key",
	.init = azure_init,
	.wrap = azure_wrap,
	.unwrap = azure_unwrap,
	.validate = azure_validate,
	.free = azure_free,
	.needs = azure_needs,
	.current_uri = azure_current_uri,
	.boot_needs = azure_boot_needs,
	.inspect = azure_inspect,
	.config_keys = (const char *const[]){ "allowed-hosts", "auth", "resource", "wrap-alg",
					      "imds-endpoint", "client-id", "object-id",
					      "authority-host", "tenant-id", "client-secret-file",
					      "client-certificate-file",
					      "client-certificate-key-file", HTTP_CONFIG_KEYS,
					      NULL },
};

/* Every parser of an answer from Entra ID or Key Vault on RESP, for the fuzz target
 * tests/fuzz/fuzz-kms-response.c (http.h). No request, no file. */
void azure_fuzz_answer(struct kc_ctx *ctx, const struct http_response *resp)
{
	struct azure_state st = { .host = "v.vault.azure.net", .hostname = "v.vault.azure.net",
				  .name = "k" };
	_cleanup_(kc_secret_freep) struct kc_secret *hdr = NULL, *dek = NULL;
	struct kc_wrapped w = { 0 };
	struct json_object *obj = NULL;
	struct kek_info info = { 0 };

	(void)token_header(ctx, "fuzz", resp, &hdr);
	(void)vault_error(ctx, &st, "wrapKey", resp);
	(void)vault_error(ctx, &st, "unwrapKey", resp);
	if (http_json_parse(ctx, resp->body, "fuzz", &obj) >= 0) {
		if (wrap_result(ctx, &st, obj, alg_find("RSA-OAEP-256"), &w) >= 0)
			wrapped_clear(&w);
		http_json_put_wipe(obj);
	}
	/* Parsed again: wrap_result() has wiped "value" in place. */
	if (http_json_parse(ctx, resp->body, "fuzz", &obj) >= 0) {
		key_info_from_bundle(&st, obj, &info);
		(void)unwrap_result(ctx, obj, &dek);
		http_json_put_wipe(obj);
	}
}
