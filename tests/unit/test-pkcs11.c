/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The "pkcs11" KEK provider against a real SoftHSM2 token. Run through test-pkcs11.sh, or by
 * hand after: eval "$(tests/fixtures/softhsm-setup.sh DIR)". Needs SOFTHSM2_CONF,
 * KC_P11_MODULE and KC_P11_PIN_FILE; exits 77 (skip) when SoftHSM2 is not installed.
 * KC_DEBUG=1 prints the library's debug log on stderr.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <p11-kit/p11-kit.h>

#include "internal.h"


#define DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define TOKEN_LABEL "kekcrypt-test"

static struct kc_ctx *ctx;
static const char *module, *pin_file;
static char dir[4096];
static char *log_text;		/* every log line, to check that no PIN ever shows */
static size_t log_len;
static unsigned n_run, n_failed;

/* ---------------------------------------------------------------------------------------- */
/* Reporting                                                                                */

static void check_at(bool ok, const char *expr, const char *name, int line)
{
	n_run++;
	printf("%s %u - %s\n", ok ? "ok" : "not ok", n_run, name);
	if (ok)
		return;
	n_failed++;
	printf("#   line %d: %s\n#   detail: %s\n", line, expr, kc_error_detail(ctx));
}

static void check_r_at(int r, int want, const char *expr, const char *name, int line)
{
	n_run++;
	printf("%s %u - %s\n", r == want ? "ok" : "not ok", n_run, name);
	if (r == want)
		return;
	n_failed++;
	printf("#   line %d: %s = %d (%s), expected %d (%s)\n#   detail: %s\n", line, expr, r,
	       kc_strerror(r), want, kc_strerror(want), kc_error_detail(ctx));
}

#define CHECK(cond, name) check_at((cond), #cond, (name), __LINE__)
#define CHECK_R(expr, want, name) check_r_at((expr), (want), #expr, (name), __LINE__)

static void skip(const char *name, const char *why)
{
	printf("ok %u - %s # SKIP %s\n", ++n_run, name, why);
}

static void log_cb(int level, const char *msg, void *usrptr)
{
	size_t len = strlen(msg);
	char *p;

	(void)usrptr;
	if (getenv("KC_DEBUG"))
		fprintf(stderr, "kc[%d]: %s\n", level, msg);
	p = realloc(log_text, log_len + len + 2);
	if (!p)
		abort();
	log_text = p;
	memcpy(log_text + log_len, msg, len);
	log_len += len;
	log_text[log_len++] = '\n';
	log_text[log_len] = '\0';
}

/* ---------------------------------------------------------------------------------------- */
/* Helpers                                                                                  */

static const char *uri_fmt(char *buf, size_t size, const char *fmt, ...) _printf_(3, 4);
static const char *uri_fmt(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return buf;
}

/* The URI of OBJECT on the test token, with module-path and pin-source. */
static const char *uri_std(char *buf, size_t size, const char *object)
{
	return uri_fmt(buf, size, "pkcs11:token=" TOKEN_LABEL ";object=%s?module-path=%s"
		       "&pin-source=file:%s", object, module, pin_file);
}

/* Through kek_open(), as the library uses a KEK: local policy included. */
static int do_wrap(const char *uri, const struct kc_secret *dek, struct kc_wrapped *w)
{
	struct kc_kek *kek = NULL;
	int r;

	ctx_detail_clear(ctx);
	r = kek_open(ctx, uri, &kek);
	if (r >= 0)
		r = kek->ops->wrap(ctx, kek->state, dek, w);
	kek_close(kek);
	return r;
}

static int do_unwrap(const char *uri, const char *alg, const unsigned char *blob, size_t len,
		     struct kc_secret **r_dek)
{
	struct kc_kek *kek = NULL;
	int r;

	ctx_detail_clear(ctx);
	r = kek_open(ctx, uri, &kek);
	if (r >= 0)
		r = kek->ops->unwrap(ctx, kek->state, alg, NULL, blob, len, r_dek);
	kek_close(kek);
	return r;
}

/* memmem() without _GNU_SOURCE. */
static bool contains(const void *hay, size_t hay_len, const void *needle, size_t len)
{
	for (size_t i = 0; len <= hay_len && i <= hay_len - len; i++)
		if (!memcmp((const char *)hay + i, needle, len))
			return true;
	return false;
}

static bool same_dek(const struct kc_secret *a, const struct kc_secret *b)
{
	return a && b && a->len == b->len && !memcmp(a->data, b->data, a->len);
}

static int write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, text, strlen(text));
	if (fchmod(fd, mode) < 0 || n != (ssize_t)strlen(text)) {
		close(fd);
		return -EIO;
	}
	return close(fd) < 0 ? -errno : 0;
}

static struct kc_secret *random_dek(size_t len)
{
	struct kc_secret *dek = kc_secret_alloc(len);

	if (!dek || getrandom(dek->data, len, 0) != (ssize_t)len)
		abort();
	return dek;
}

/* ---------------------------------------------------------------------------------------- */
/* A256KW made outside the provider: SoftHSM2 has KWP, so wrap() never falls back itself.   */

struct raw {
	CK_FUNCTION_LIST *m;
	CK_SESSION_HANDLE s;
	bool session, login;
};

static void raw_close(struct raw *raw)
{
	if (raw->login)
		raw->m->C_Logout(raw->s);
	if (raw->session)
		raw->m->C_CloseSession(raw->s);
	if (raw->m) {
		p11_kit_module_finalize(raw->m);
		p11_kit_module_release(raw->m);
	}
}

static CK_RV raw_open(struct raw *raw)
{
	CK_SLOT_ID slots[16];
	CK_ULONG n = ARRAY_SIZE(slots);
	CK_TOKEN_INFO ti;
	struct kc_secret *pin = NULL;
	CK_RV rv;

	raw->m = p11_kit_module_load(module, 0);
	if (!raw->m)
		return CKR_GENERAL_ERROR;
	rv = p11_kit_module_initialize(raw->m);
	if (rv != CKR_OK) {
		p11_kit_module_release(raw->m);
		raw->m = NULL;
		return rv;
	}
	rv = raw->m->C_GetSlotList(CK_TRUE, slots, &n);
	for (CK_ULONG i = 0; rv == CKR_OK && i < n && !raw->session; i++)
		if (raw->m->C_GetTokenInfo(slots[i], &ti) == CKR_OK &&
		    !memcmp(ti.label, TOKEN_LABEL, strlen(TOKEN_LABEL)))
			raw->session = raw->m->C_OpenSession(slots[i], CKF_SERIAL_SESSION, NULL,
							     NULL, &raw->s) == CKR_OK;
	if (!raw->session || trust_read_secret(ctx, pin_file, "PIN file", 256, &pin) < 0)
		return CKR_GENERAL_ERROR;
	while (pin->len && pin->data[pin->len - 1] == '\n')
		pin->len--;
	rv = raw->m->C_Login(raw->s, CKU_USER, pin->data, pin->len);
	kc_secret_free(pin);
	raw->login = rv == CKR_OK;
	return rv;
}

static CK_RV raw_kw_wrap(const struct kc_secret *dek, unsigned char *out, CK_ULONG *out_len)
{
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE type = CKK_GENERIC_SECRET;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ATTRIBUTE find[] = { { CKA_LABEL, (void *)"kek-aes", 7 } };
	CK_ATTRIBUTE tmpl[] = {
		{ CKA_CLASS, &cls, sizeof(cls) }, { CKA_KEY_TYPE, &type, sizeof(type) },
		{ CKA_TOKEN, &no, sizeof(no) }, { CKA_EXTRACTABLE, &yes, sizeof(yes) },
		{ CKA_VALUE, (void *)dek->data, dek->len },
	};
	CK_MECHANISM mech = { CKM_AES_KEY_WRAP, NULL, 0 };
	CK_OBJECT_HANDLE kek, obj = CK_INVALID_HANDLE;
	CK_ULONG n = 0;
	struct raw raw = { 0 };
	CK_RV rv;

	rv = raw_open(&raw);
	if (rv == CKR_OK)
		rv = raw.m->C_FindObjectsInit(raw.s, find, 1);
	if (rv == CKR_OK) {
		rv = raw.m->C_FindObjects(raw.s, &kek, 1, &n);
		raw.m->C_FindObjectsFinal(raw.s);
	}
	if (rv == CKR_OK && n != 1)
		rv = CKR_KEY_HANDLE_INVALID;
	if (rv == CKR_OK)
		rv = raw.m->C_CreateObject(raw.s, tmpl, ARRAY_SIZE(tmpl), &obj);
	if (rv == CKR_OK)
		rv = raw.m->C_WrapKey(raw.s, &mech, kek, obj, out, out_len);
	if (obj != CK_INVALID_HANDLE)
		raw.m->C_DestroyObject(raw.s, obj);
	raw_close(&raw);
	return rv;
}

/* ---------------------------------------------------------------------------------------- */
/* Tests                                                                                    */

static void test_aes(void)
{
	_cleanup_(kc_secret_freep) struct kc_secret *dek = random_dek(64), *out = NULL;
	_cleanup_(kc_secret_freep) struct kc_secret *bad = NULL;
	struct kc_wrapped w = { 0 };
	char u[2048], u2[2048];
	int r;

	uri_std(u, sizeof(u), "kek-aes;type=secret-key");
	CHECK_R(do_wrap(u, dek, &w), 0, "AES: wrap a 64-byte DEK");
	CHECK(!strcmp(w.alg, "A256KWP"), "AES: algorithm is A256KWP");
	CHECK(w.len == 72, "AES: wrapped DEK has 72 bytes");
	CHECK(w.data && memcmp(w.data, dek->data, 64) && !contains(w.data, w.len, dek->data, 16),
	      "AES: wrapped DEK differs from the DEK");
	CHECK(w.key_version == NULL, "AES: no key version");
	if (!w.data)
		return;
	CHECK_R(do_unwrap(u, w.alg, w.data, w.len, &out), 0, "AES: unwrap");
	CHECK(same_dek(out, dek), "AES: round trip gives the same DEK");

	uri_std(u2, sizeof(u2), "kek-aes-2");
	r = do_unwrap(u2, w.alg, w.data, w.len, &bad);
	CHECK_R(r, -EBADMSG, "AES: unwrap with the wrong KEK (kek-aes-2) is -EBADMSG");
	CHECK_R(do_unwrap(u, w.alg, w.data, 71, &bad), -EBADMSG,
		"AES: blob truncated to 71 bytes is -EBADMSG");
	CHECK_R(do_unwrap(u, w.alg, w.data, 64, &bad), -EBADMSG,
		"AES: blob truncated to 64 bytes is -EBADMSG");
	w.data[10] ^= 1;
	CHECK_R(do_unwrap(u, w.alg, w.data, w.len, &bad), -EBADMSG,
		"AES: blob with a flipped bit is -EBADMSG");
	CHECK_R(do_unwrap(u, "A128GCM", w.data, w.len, &bad), -EINVAL,
		"AES: unknown algorithm is -EINVAL");
	CHECK(bad == NULL, "AES: failed unwraps return no DEK");
	wrapped_clear(&w);
}

static void test_aes_kw(void)
{
	_cleanup_(kc_secret_freep) struct kc_secret *dek = random_dek(64), *out = NULL;
	unsigned char blob[128];
	CK_ULONG len = sizeof(blob);
	char u[2048];
	CK_RV rv;

	rv = raw_kw_wrap(dek, blob, &len);
	CHECK(rv == CKR_OK && len == 72, "A256KW: SoftHSM2 wraps with CKM_AES_KEY_WRAP");
	if (rv != CKR_OK)
		return;
	uri_std(u, sizeof(u), "kek-aes");
	CHECK_R(do_unwrap(u, "A256KW", blob, len, &out), 0, "A256KW: unwrap");
	CHECK(same_dek(out, dek), "A256KW: round trip gives the same DEK");
}

static void test_rsa(void)
{
	_cleanup_(kc_secret_freep) struct kc_secret *dek = random_dek(64), *out = NULL;
	_cleanup_(kc_secret_freep) struct kc_secret *bad = NULL, *out2 = NULL;
	struct kc_wrapped w = { 0 }, w2 = { 0 };
	char u[2048];

	uri_std(u, sizeof(u), "kek-rsa");
	CHECK_R(do_wrap(u, dek, &w), 0, "RSA: wrap a 64-byte DEK");
	printf("# RSA algorithm: %s\n", w.alg);
	CHECK(!strcmp(w.alg, "RSA-OAEP-256") || !strcmp(w.alg, "RSA-OAEP"),
	      "RSA: algorithm is RSA-OAEP-256 (or RSA-OAEP where the module lacks SHA-256)");
	CHECK(w.len == 384, "RSA: wrapped DEK has 384 bytes (RSA-3072)");
	CHECK(w.data && !contains(w.data, w.len, dek->data, 16), "RSA: wrapped DEK differs");
	if (!w.data)
		return;
	CHECK_R(do_unwrap(u, w.alg, w.data, w.len, &out), 0, "RSA: unwrap");
	CHECK(same_dek(out, dek), "RSA: round trip gives the same DEK");
	CHECK_R(do_unwrap(u, w.alg, w.data, w.len - 1, &bad), -EBADMSG,
		"RSA: blob truncated by one byte is -EBADMSG");
	w.data[100] ^= 1;
	CHECK_R(do_unwrap(u, w.alg, w.data, w.len, &bad), -EBADMSG,
		"RSA: blob with a flipped bit is -EBADMSG");

	uri_std(u, sizeof(u), "kek-rsa;type=private");
	CHECK_R(do_wrap(u, dek, &w2), 0, "RSA: type=private wraps with the public half");
	if (w2.data)
		CHECK_R(do_unwrap(u, w2.alg, w2.data, w2.len, &out2), 0,
			"RSA: type=private unwraps");
	CHECK(same_dek(out2, dek), "RSA: type=private round trip");
	CHECK(bad == NULL, "RSA: failed unwraps return no DEK");
	wrapped_clear(&w);
	wrapped_clear(&w2);
}

static void test_pin(void)
{
	_cleanup_(kc_secret_freep) struct kc_secret *dek = random_dek(64);
	struct kc_wrapped w = { 0 };
	char u[2048], path[4200];

	snprintf(path, sizeof(path), "%s/wrong-pin", dir);
	CHECK_R(write_file(path, "wrong-pin-4711\n", 0600), 0, "PIN: write a wrong PIN file");
	uri_fmt(u, sizeof(u), "pkcs11:token=" TOKEN_LABEL ";object=kek-aes?module-path=%s"
		"&pin-source=file:%s", module, path);
	CHECK_R(do_wrap(u, dek, &w), -EKEYREJECTED, "PIN: wrong PIN is -EKEYREJECTED");

	uri_fmt(u, sizeof(u), "pkcs11:token=" TOKEN_LABEL ";object=kek-aes?module-path=%s",
		module);
	CHECK_R(do_wrap(u, dek, &w), -ENOANO, "PIN: no pin-source on a login token is -ENOANO");

	uri_fmt(u, sizeof(u), "pkcs11:token=" TOKEN_LABEL ";object=kek-aes?module-path=%s"
		"&pin-value=wrong-pin-4711", module);
	CHECK_R(do_wrap(u, dek, &w), -EINVAL, "PIN: pin-value in the URI is -EINVAL");

	snprintf(path, sizeof(path), "%s/open-pin", dir);
	CHECK_R(write_file(path, "1234\n", 0644), 0, "PIN: write a mode 0644 PIN file");
	uri_fmt(u, sizeof(u), "pkcs11:token=" TOKEN_LABEL ";object=kek-aes?module-path=%s"
		"&pin-source=file:%s", module, path);
	CHECK_R(do_wrap(u, dek, &w), -EACCES, "PIN: PIN file of mode 0644 is -EACCES");

	uri_fmt(u, sizeof(u), "pkcs11:object=kek-aes?module-path=%s&pin-source=pin", module);
	CHECK_R(do_wrap(u, dek, &w), -EINVAL, "PIN: relative pin-source is -EINVAL");
	uri_fmt(u, sizeof(u), "pkcs11:object=kek-aes?module-path=%s&pin-source=%%7Ccat", module);
	CHECK_R(do_wrap(u, dek, &w), -EINVAL, "PIN: command pin-source is -EINVAL");

	/* Local policy: a PIN file the config does not name is never read. */
	snprintf(path, sizeof(path), "%s/unlisted-pin", dir);
	CHECK_R(write_file(path, "1234\n", 0600), 0, "PIN: write an unlisted PIN file");
	uri_fmt(u, sizeof(u), "pkcs11:token=" TOKEN_LABEL ";object=kek-aes?module-path=%s"
		"&pin-source=file:%s", module, path);
	CHECK_R(do_wrap(u, dek, &w), -EACCES, "PIN: a PIN file not in allowed-pin-files is "
		"-EACCES");
	CHECK(strstr(kc_error_detail(ctx), "allowed-pin-files") != NULL,
	      "PIN: ... and the detail names allowed-pin-files");

	snprintf(path, sizeof(path), "/%s", pin_file);	/* "//dir/pin": same file */
	uri_fmt(u, sizeof(u), "pkcs11:token=" TOKEN_LABEL ";object=kek-aes?module-path=%s"
		"&pin-source=%s", module, path);
	CHECK_R(do_wrap(u, dek, &w), 0, "PIN: plain path as pin-source");
	wrapped_clear(&w);
}

static void test_lookup(void)
{
	_cleanup_(kc_secret_freep) struct kc_secret *dek = random_dek(64);
	struct kc_wrapped w = { 0 };
	char u[2048];

	uri_std(u, sizeof(u), "no-such-key");
	CHECK_R(do_wrap(u, dek, &w), -ENOENT, "lookup: unknown object is -ENOENT");
	uri_fmt(u, sizeof(u), "pkcs11:token=no-such-token;object=kek-aes?module-path=%s"
		"&pin-source=file:%s", module, pin_file);
	CHECK_R(do_wrap(u, dek, &w), -ENOENT, "lookup: unknown token is -ENOENT");
	uri_fmt(u, sizeof(u), "pkcs11:object=kek-aes?module-path=/nonexistent/libnope.so"
		"&pin-source=file:%s", pin_file);
	CHECK_R(do_wrap(u, dek, &w), -ENOENT, "lookup: bad (allowed) module path is -ENOENT");
	CHECK(strstr(kc_error_detail(ctx), "/nonexistent/libnope.so") != NULL,
	      "lookup: the detail names the module");
	/* Local policy: a module the config does not name is never loaded, however safe. */
	uri_fmt(u, sizeof(u), "pkcs11:object=kek-aes?module-path=/usr/lib/x86_64-linux-gnu/"
		"libc.so.6&pin-source=file:%s", pin_file);
	CHECK_R(do_wrap(u, dek, &w), -EACCES, "lookup: a module not in allowed-modules is "
		"-EACCES");
	CHECK(strstr(kc_error_detail(ctx), "allowed-modules = ") != NULL,
	      "lookup: ... and the detail gives the config line that would allow it");
	uri_std(u, sizeof(u), "kek-aes-ecb-only");
	CHECK_R(do_wrap(u, dek, &w), -EPERM, "lookup: key not allowed to wrap is -EPERM");
	uri_fmt(u, sizeof(u), "pkcs11:objekt=kek-aes?module-path=%s", module);
	CHECK_R(do_wrap(u, dek, &w), -EINVAL, "lookup: unknown path attribute is -EINVAL");
	CHECK_R(do_wrap("pkcs11:object=kek-aes;type=cert", dek, &w), -EINVAL,
		"lookup: type=cert is -EINVAL");
	CHECK_R(do_wrap("pkcs12:object=x", dek, &w), -EPROTONOSUPPORT,
		"lookup: wrong scheme is -EPROTONOSUPPORT");
	uri_fmt(u, sizeof(u), "pkcs11:token=" TOKEN_LABEL ";id=%%01?module-path=%s"
		"&pin-source=file:%s", module, pin_file);
	CHECK_R(do_wrap(u, dek, &w), 0, "lookup: by id");
	CHECK(!strcmp(w.alg, "A256KWP"), "lookup: id 01 is kek-aes");
	wrapped_clear(&w);
	uri_fmt(u, sizeof(u), "pkcs11:token=" TOKEN_LABEL "?module-path=%s&pin-source=file:%s",
		module, pin_file);
	CHECK_R(do_wrap(u, dek, &w), -EINVAL, "lookup: a URI matching two keys is -EINVAL");
}

/* valgrind preloads its own libraries. */
static bool under_valgrind(void)
{
	const char *preload = getenv("LD_PRELOAD");

	return preload && strstr(preload, "vgpreload");
}

static void round_trip(const char *uri, const char *what)
{
	_cleanup_(kc_secret_freep) struct kc_secret *dek = random_dek(64), *out = NULL;
	struct kc_wrapped w = { 0 };
	char name[256];

	snprintf(name, sizeof(name), "%s: wrap", what);
	CHECK_R(do_wrap(uri, dek, &w), 0, name);
	snprintf(name, sizeof(name), "%s: unwrap", what);
	if (w.data)
		CHECK_R(do_unwrap(uri, w.alg, w.data, w.len, &out), 0, name);
	snprintf(name, sizeof(name), "%s: round trip", what);
	CHECK(same_dek(out, dek), name);
	wrapped_clear(&w);
}

/*
 * Without module-path the provider uses p11-kit's configured modules. p11-kit dlopen()s every
 * one of them, and OpenSC's library constructor starts a GLib D-Bus thread that valgrind
 * reports as possibly lost: not under valgrind, then.
 */
static void test_p11kit_modules(void)
{
	char u[2048];

	if (access("/usr/share/p11-kit/modules/softhsm2.module", F_OK) < 0) {
		skip("p11-kit modules", "SoftHSM2 is not a configured p11-kit module here");
		return;
	}
	if (under_valgrind()) {
		skip("p11-kit modules", "OpenSC's GLib thread shows as a leak under valgrind");
		return;
	}
	uri_fmt(u, sizeof(u), "pkcs11:token=" TOKEN_LABEL ";object=kek-aes?module-name=softhsm2"
		"&pin-source=file:%s", pin_file);
	round_trip(u, "p11-kit module-name=softhsm2");
	uri_fmt(u, sizeof(u), "pkcs11:object=kek-aes?module-name=no-such-module"
		"&pin-source=file:%s", pin_file);
	CHECK_R(do_unwrap(u, "A256KWP", (const unsigned char *)"0123456789abcdef01234567", 24,
			  &(struct kc_secret *){ NULL }), -ENOENT,
		"p11-kit: unknown module-name is -ENOENT");
	uri_fmt(u, sizeof(u), "pkcs11:token=" TOKEN_LABEL ";object=kek-aes?pin-source=file:%s",
		pin_file);
	round_trip(u, "p11-kit all modules");
}

static void test_validate(void)
{
	struct token t = { .alg = (char *)"A256KWP" };
	const char *good[] = { "A256KWP", "A256KW", "RSA-OAEP-256", "RSA-OAEP" };
	bool all = true;

	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		t.alg = (char *)good[i];
		all = all && provider_pkcs11.validate(ctx, &t) == 0;
	}
	CHECK(all, "validate: accepts A256KWP, A256KW, RSA-OAEP-256, RSA-OAEP");
	t.alg = (char *)"A128KW";
	CHECK_R(provider_pkcs11.validate(ctx, &t), -EINVAL, "validate: refuses A128KW");
	t.alg = NULL;
	CHECK_R(provider_pkcs11.validate(ctx, &t), -EINVAL, "validate: refuses no algorithm");
	CHECK(provider_pkcs11.abi_version == KC_PROVIDER_ABI_VERSION &&
	      !strcmp(provider_pkcs11.name, "pkcs11") && !strcmp(provider_pkcs11.schemes[0], "pkcs11"),
	      "provider: name, scheme and ABI");
}

/* Neither the real PIN nor the wrong one may reach a log line or a detail. */
static void test_no_pin_in_logs(void)
{
	struct kc_secret *pin = NULL;
	bool clean;

	if (trust_read_secret(ctx, pin_file, "PIN file", 256, &pin) < 0)
		abort();
	while (pin->len && pin->data[pin->len - 1] == '\n')
		pin->len--;
	clean = !log_text || (!contains(log_text, log_len, pin->data, pin->len) &&
			      !strstr(log_text, "wrong-pin-4711"));
	CHECK(log_text != NULL, "logs: the provider logged at debug level");
	CHECK(clean, "logs: no PIN in any log line or detail");
	kc_secret_free(pin);
}

static int setup(void)
{
	const char *slash;
	char conf[4200], text[16384];
	int r;

	module = getenv("KC_P11_MODULE") ?: DEFAULT_MODULE;
	if (access(module, R_OK) < 0) {
		printf("1..0 # SKIP SoftHSM2 not installed (%s); apt-get install softhsm2 opensc\n",
		       module);
		return 77;
	}
	pin_file = getenv("KC_P11_PIN_FILE");
	if (!pin_file || !getenv("SOFTHSM2_CONF") || !(slash = strrchr(pin_file, '/'))) {
		fprintf(stderr, "test-pkcs11: run it through tests/unit/test-pkcs11.sh, or eval "
			"\"$(tests/fixtures/softhsm-setup.sh DIR)\" first\n");
		return 1;
	}
	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - pin_file), pin_file);
	/* A private config of our own, so that the host's /etc/kekcrypt plays no part: it lets
	 * the URIs name the SoftHSM2 module and the token's PIN file (local policy). */
	snprintf(conf, sizeof(conf), "%s/kekcrypt.conf", dir);
	snprintf(text, sizeof(text), "[pkcs11]\nallowed-modules = %s /nonexistent/libnope.so\n"
		 "allowed-pin-files = %s %s/wrong-pin %s/open-pin\n", module, pin_file, dir, dir);
	r = write_file(conf, text, 0600);
	if (r >= 0)
		r = kc_init(&ctx, conf);
	if (r < 0) {
		fprintf(stderr, "test-pkcs11: kc_init: %s\n", kc_strerror(r));
		return 1;
	}
	kc_set_log(ctx, log_cb, KC_LOG_DEBUG, NULL);
	return 0;
}

int main(void)
{
	int r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	r = setup();
	if (r)
		return r;
	test_validate();
	test_aes();
	test_aes_kw();
	test_rsa();
	test_pin();
	test_lookup();
	test_p11kit_modules();
	test_no_pin_in_logs();
	printf("1..%u\n", n_run);
	printf("%u passed, %u failed\n", n_run - n_failed, n_failed);
	kc_free(ctx);
	free(log_text);
	return n_failed ? 1 : 0;
}
