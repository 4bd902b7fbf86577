/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests: token parse/serialise/validate, base64, KEK URIs, secret memory, HKDF,
 * size-versioned structs. */
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"
#include "test.h"

#define GOOD_B64 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+P0BBQkNERUZH"

static char *token_text(const char *version, const char *provider, const char *uri,
			const char *alg, const char *b64, const char *extra)
{
	static char buf[8192];

	snprintf(buf, sizeof(buf),
		 "{\"type\":\"kekcrypt\",\"keyslots\":[\"0\"],\"kekcrypt-version\":%s,"
		 "\"kekcrypt-provider\":\"%s\",\"kekcrypt-key-id\":\"%s\","
		 "\"kekcrypt-wrap-alg\":\"%s\",\"kekcrypt-wrapped-key\":\"%s\","
		 "\"kekcrypt-created\":\"2026-11-22T00:00:00Z\"%s}",
		 version, provider, uri, alg, b64, extra);
	return buf;
}

static int parse(struct kc_ctx *ctx, const char *json)
{
	struct token *t = NULL;
	int r = token_parse(ctx, json, &t);

	if (r >= 0)
		r = kek_token_check(ctx, t);	/* what needs the provider */
	token_free(t);
	return r;
}

static void test_token_good(struct kc_ctx *ctx)
{
	struct token *t = NULL, *t2 = NULL;
	char *json = NULL;

	CHECK_EQ(token_parse(ctx, token_text("\"1\"", "file", "file:/k", "A256KWP", GOOD_B64,
					     ",\"x-future\":[1,2]"), &t), 0);
	CHECK(t && t->wrapped_len == 72 && t->wrapped[0] == 0 && t->wrapped[71] == 71);
	CHECK(t && t->keyslot == 0 && t->version == 1 && !t->key_version);
	CHECK(t && !strcmp(t->uri, "file:/k") && !strcmp(t->provider, "file"));
	CHECK_EQ(token_serialise(ctx, t, &json), 0);
	CHECK(json && strstr(json, "\"kekcrypt-wrapped-key\":\"" GOOD_B64 "\""));
	CHECK_EQ(token_parse(ctx, json, &t2), 0);
	CHECK(t2 && t2->wrapped_len == t->wrapped_len &&
	      !memcmp(t2->wrapped, t->wrapped, t->wrapped_len));
	free(json);
	token_free(t);
	token_free(t2);
}

static void test_token_bad(struct kc_ctx *ctx)
{
	char big[5000];

	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK_EQ(parse(ctx, "not json"), -EINVAL);
	CHECK_EQ(parse(ctx, "[1,2]"), -EINVAL);
	CHECK_EQ(parse(ctx, token_text("1", "file", "file:/k", "A256KWP", GOOD_B64, "")), -EINVAL);
	CHECK(strstr(kc_error_detail(ctx), "kekcrypt-version"));
	CHECK_EQ(parse(ctx, token_text("\"2\"", "file", "file:/k", "A256KWP", GOOD_B64, "")),
		 -EINVAL);
	CHECK(strstr(kc_error_detail(ctx), "version 2 is not supported"));
	CHECK_EQ(parse(ctx, token_text("\"1\"", "nosuch", "nosuch:x", "A256KWP", GOOD_B64, "")),
		 -ENOENT);
	CHECK_EQ(parse(ctx, token_text("\"1\"", "file", "pkcs11:x", "A256KWP", GOOD_B64, "")),
		 -EINVAL);
	CHECK_EQ(parse(ctx, token_text("\"1\"", "file", "file:/k", "RSA-OAEP", GOOD_B64, "")),
		 -EINVAL);
	CHECK_EQ(parse(ctx, token_text("\"1\"", "file", "file:/k", "A256KWP", "AAEC*wQF", "")),
		 -EINVAL);
	CHECK_EQ(parse(ctx, token_text("\"1\"", "file", "file:/k", "A256KWP", "AAECAwQ", "")),
		 -EINVAL);
	CHECK_EQ(parse(ctx, token_text("\"1\"", "file", "file:/k", "A256KWP", "AA==AAAA", "")),
		 -EINVAL);
	CHECK_EQ(parse(ctx, token_text("\"1\"", "file", "file:/k", "A256KWP", "AAECAw==", "")),
		 -EINVAL); /* 4 bytes: too short */
	CHECK_EQ(parse(ctx, token_text("\"1\"", "file", "file:/k", "A256KWP", big, "")), -EINVAL);
	CHECK_EQ(parse(ctx, "{\"type\":\"kekcrypt\",\"keyslots\":\"0\"}"), -EINVAL);
	CHECK_EQ(parse(ctx, "{\"type\":\"kekcrypt\",\"keyslots\":[\"0\",\"1\"]}"), -EINVAL);
	CHECK_EQ(parse(ctx, "{\"type\":\"kekcrypt\",\"keyslots\":[\"99\"]}"), -EINVAL);
	CHECK_EQ(parse(ctx, "{\"type\":\"kekcrypt\",\"keyslots\":[]}"), -EINVAL);
	CHECK(strstr(kc_error_detail(ctx), "missing"));
}

static void test_base64(void)
{
	unsigned char *buf = NULL;
	char *s = NULL;
	size_t len = 0;

	CHECK_EQ(util_base64_encode((const unsigned char *)"foobar", 6, &s), 0);
	CHECK(s && !strcmp(s, "Zm9vYmFy"));
	free(s);
	CHECK_EQ(util_base64_decode("Zm9vYg==", &buf, &len), 0);
	CHECK(len == 4 && buf && !memcmp(buf, "foob", 4));
	free(buf);
	CHECK_EQ(util_base64_decode("Zm9vYmE=", &buf, &len), 0);
	CHECK(len == 5);
	free(buf);
	CHECK_EQ(util_base64_decode("", &buf, &len), -EINVAL);
	CHECK_EQ(util_base64_decode("Zm9v YmE=", &buf, &len), -EINVAL);
	CHECK_EQ(util_base64_decode("Zm9vY===", &buf, &len), -EINVAL);
	CHECK_EQ(util_base64_decode("Zm9=vYmE", &buf, &len), -EINVAL);
	CHECK_EQ(util_base64_decode("Zm9-YmE_", &buf, &len), -EINVAL);
}

static int open_uri(struct kc_ctx *ctx, const char *uri)
{
	struct kc_kek *kek = NULL;
	int r = kek_open(ctx, uri, &kek);

	kek_close(kek);
	return r;
}

static void test_uri(struct kc_ctx *ctx)
{
	CHECK_EQ(open_uri(ctx, "file:/etc/kek"), 0);
	CHECK_EQ(open_uri(ctx, "file:///etc/kek"), 0);
	CHECK_EQ(open_uri(ctx, "file:relative"), -EINVAL);
	CHECK_EQ(open_uri(ctx, "file://host/etc/kek"), -EINVAL);
	CHECK_EQ(open_uri(ctx, "file:/etc/kek?x=1"), -EINVAL);
	CHECK_EQ(open_uri(ctx, "nosuch:foo"), -EPROTONOSUPPORT);
	CHECK(strstr(kc_error_detail(ctx), "unsupported scheme 'nosuch'"));
	CHECK_EQ(open_uri(ctx, "/etc/kek"), -EINVAL);
	CHECK_EQ(open_uri(ctx, ""), -EINVAL);
	CHECK(provider_find("file") == &provider_file);
	CHECK(provider_find("nosuch") == NULL);
}

static void test_secret(void)
{
	struct kc_secret *s = kc_secret_alloc(64);
	unsigned char a[4] = { 1, 2, 3, 4 }, b[4] = { 1, 2, 3, 5 };

	CHECK(s && s->len == 64 && s->size >= 64);
	for (size_t i = 0; s && i < s->len; i++)
		if (s->data[i])
			CHECK(!"zeroed");
	kc_secret_free(s);
	kc_secret_free(NULL);
	s = kc_secret_dup("abc", 3);
	CHECK(s && s->len == 3 && !memcmp(s->data, "abc", 3));
	kc_secret_free(s);
	CHECK_EQ(secret_memeq(a, a, 4), 0);
	CHECK(secret_memeq(a, b, 4) != 0);
	secret_wipe(a, sizeof(a));
	CHECK(a[0] == 0 && a[3] == 0);
}

static void test_hkdf(void)
{
	/* RFC 5869 test case 1. */
	static const unsigned char ikm[22] = { [0 ... 21] = 0x0b };
	static const unsigned char salt[13] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
	static const unsigned char expect[8] = { 0x3c, 0xb2, 0x5f, 0x25, 0xfa, 0xac, 0xd5, 0x7a };
	unsigned char out[42];

	CHECK_EQ(util_hkdf_sha256(ikm, sizeof(ikm), salt, sizeof(salt),
				  "\xf0\xf1\xf2\xf3\xf4\xf5\xf6\xf7\xf8\xf9", out, sizeof(out)), 0);
	CHECK(!memcmp(out, expect, sizeof(expect)));
}

/* Size-versioned structs (KC_SIZED()): an older caller's smaller struct is refused when below
 * the first version and never written past its .size; a newer caller's larger one keeps what
 * lies past the library's struct; arrays step by the first element's .size. */
static void test_sized(struct kc_ctx *ctx)
{
	const char *json = token_text("\"1\"", "file", "file:/k", "A256KWP", GOOD_B64, "");
	struct {
		struct kc_token_info ti;
		unsigned char tail[64];
	} newer;
	struct kc_token_info ti = KC_SIZED(struct kc_token_info), tiny = { .size = 8 };
	struct kc_recovery_info arr[3];
	bool tail_kept = true;

	CHECK_EQ(kc_token_validate_json(ctx, json, &ti), 0);
	CHECK(!strcmp(ti.kek_uri, "file:/k") && ti.size == sizeof(ti) && ti.id == -1);
	CHECK_EQ(kc_token_validate_json(ctx, json, &tiny), -EINVAL);
	CHECK_EQ(kc_token_validate_json(ctx, json, NULL), 0);
	memset(&newer, 0xaa, sizeof(newer));
	newer.ti.size = sizeof(newer);
	CHECK_EQ(kc_token_validate_json(ctx, json, &newer.ti), 0);
	CHECK(!strcmp(newer.ti.provider, "file") && newer.ti.size == sizeof(newer));
	for (size_t i = 0; i < sizeof(newer.tail); i++)
		tail_kept = tail_kept && newer.tail[i] == 0xaa;
	CHECK(tail_kept);

	/* An older caller's struct that ends before created[]: sized_put() stops at its .size. */
	memset(arr, 0x55, sizeof(arr));
	arr[0].size = offsetof(struct kc_recovery_info, created);
	sized_put(&arr[0], &(struct kc_recovery_info){ .size = sizeof(arr[0]), .token_id = 7,
						     .keyslot = 3, .created = "x" },
		  sizeof(arr[0]));
	CHECK(arr[0].token_id == 7 && arr[0].keyslot == 3 &&
	      (unsigned char)arr[0].created[0] == 0x55);
	CHECK(sized_at(arr, 2) == (char *)arr + 2 * offsetof(struct kc_recovery_info, created));
	CHECK(!sized_ok(&tiny, sizeof(struct kc_token_info)) && sized_ok(NULL, 100));
}

/* kc_recovery_key_normalise(): any case, dashes or blanks -> the printed form; else -EINVAL. */
static void test_recovery_normalise(void)
{
	static const char printed[] = "cbdefghi-jklnrtuv-cbdefghi-jklnrtuv-"
				      "cbdefghi-jklnrtuv-cbdefghi-jklnrtuv";
	static const char *const good[] = {
		printed,
		"CBDEFGHIJKLNRTUVCBDEFGHIJKLNRTUVCBDEFGHIJKLNRTUVCBDEFGHIJKLNRTUV",
		"cBdE fGhI-jKlN rTuV\tcbdefghijklnrtuv cbdefghi jklnrtuv cbdefghi jklnrtuv\r\n",
	};
	static const char *const bad[] = {
		"",
		"cbdefghi-jklnrtuv",
		"cbdefghi-jklnrtuv-cbdefghi-jklnrtuv-cbdefghi-jklnrtuv-cbdefghi-jklnrtuvc",
		"abdefghi-jklnrtuv-cbdefghi-jklnrtuv-cbdefghi-jklnrtuv-cbdefghi-jklnrtuv",
		"cbdefghi_jklnrtuv-cbdefghi-jklnrtuv-cbdefghi-jklnrtuv-cbdefghi-jklnrtuv",
	};
	char *key = NULL;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		CHECK_EQ(kc_recovery_key_normalise(good[i], strlen(good[i]), &key), 0);
		CHECK(key && !strcmp(key, printed));
		kc_recovery_key_free(key);
		key = NULL;
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_EQ(kc_recovery_key_normalise(bad[i], strlen(bad[i]), &key), -EINVAL);
		CHECK(!key);
	}
	/* A NUL inside is not a separator. */
	CHECK_EQ(kc_recovery_key_normalise(printed, sizeof(printed), &key), -EINVAL);
	CHECK_EQ(kc_recovery_key_normalise(NULL, 0, &key), -EINVAL);
	CHECK_EQ(kc_recovery_key_normalise(printed, strlen(printed), NULL), -EINVAL);
}

/* The template mark (token.c): what token_template_json() writes parses back; anything else
 * a forged header may hold is refused with -EINVAL. */
static void test_template_mark(struct kc_ctx *ctx)
{
	static const char *const bad[] = {
		"",
		"[]",
		"{\"type\":\"kekcrypt\",\"keyslots\":[],\"kekcrypt-template-version\":\"1\","
		"\"kekcrypt-template-state\":\"template\"}",
		"{\"type\":\"kekcrypt-template\",\"keyslots\":[\"0\"],"
		"\"kekcrypt-template-version\":\"1\",\"kekcrypt-template-state\":\"template\"}",
		"{\"type\":\"kekcrypt-template\",\"kekcrypt-template-version\":\"1\","
		"\"kekcrypt-template-state\":\"template\"}",
		"{\"type\":\"kekcrypt-template\",\"keyslots\":[],\"kekcrypt-template-version\":\"2\","
		"\"kekcrypt-template-state\":\"template\"}",
		"{\"type\":\"kekcrypt-template\",\"keyslots\":[],\"kekcrypt-template-version\":1,"
		"\"kekcrypt-template-state\":\"template\"}",
		"{\"type\":\"kekcrypt-template\",\"keyslots\":[],\"kekcrypt-template-version\":\"1\","
		"\"kekcrypt-template-state\":\"done\"}",
		"{\"type\":\"kekcrypt-template\",\"keyslots\":[],\"kekcrypt-template-version\":\"1\"}",
	};
	char buf[256];
	int state;

	for (int s = KC_TEMPLATE_MARKED; s <= KC_TEMPLATE_REKEYED; s++) {
		state = -1;
		CHECK_EQ(token_template_json(s, buf, sizeof(buf)), 0);
		CHECK_EQ(token_template_parse(ctx, buf, &state), 0);
		CHECK_EQ(state, s);
	}
	CHECK_EQ(token_template_json(KC_TEMPLATE_NONE, buf, sizeof(buf)), -EINVAL);
	CHECK_EQ(token_template_json(KC_TEMPLATE_MARKED, buf, 16), -ENOBUFS);
	/* Unknown fields are tolerated, as in the kekcrypt token. */
	CHECK_EQ(token_template_parse(ctx, "{\"type\":\"kekcrypt-template\",\"keyslots\":[],"
				      "\"kekcrypt-template-version\":\"1\",\"kekcrypt-template-"
				      "state\":\"rekeyed\",\"x-later\":\"1\"}", &state), 0);
	CHECK_EQ(state, KC_TEMPLATE_REKEYED);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		state = -1;
		CHECK_EQ(token_template_parse(ctx, bad[i], &state), -EINVAL);
		CHECK_EQ(state, -1);
	}
}

int main(void)
{
	struct kc_ctx *ctx = NULL;

	if (kc_init(&ctx, NULL) < 0)
		return 99;
	test_token_good(ctx);
	test_token_bad(ctx);
	test_base64();
	test_uri(ctx);
	test_secret();
	test_hkdf();
	test_sized(ctx);
	test_recovery_normalise();
	test_template_mark(ctx);
	kc_free(ctx);
	return test_done();
}
