/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Provider "seamtest", for tests only (tests/host/provider-seam.sh): the proof that a KEK
 * provider is one file in lib/providers/ and one line in lib/Makemodule.am's KC_PROVIDERS.
 * The test copies this file there, adds the line, builds that tree, and drives format,
 * verify, kek rotate, the token plugin, doctor and boot-needs through it. It is never built
 * into kekcrypt itself.
 *
 * URI seamtest:/PATH names a private file of key versions, one per line, "VERSION HEX" (a
 * 32-byte AES-256 key in hex); the last line is the current version. Wrap uses the current
 * one and stores its VERSION in the token; unwrap uses the token's. So appending a line and
 * running `kekcrypt kek rotate` moves a volume to the new version, as a KMS's key rotation
 * would. Local policy: [seamtest] allowed-paths names the files (kek_needs.key_file).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define SECTION "seamtest"
#define ALG "A256KWP"
#define KEY_LEN 32
#define KWP_OVERHEAD 8
#define DEK_MAX 128

struct seam_state {
	char *path;
};

static int seam_init(struct kc_ctx *ctx, const char *uri, void **r_state)
{
	const char *path = uri + strlen("seamtest:");
	struct seam_state *st;

	if (path[0] != '/' || strpbrk(path, "?#"))
		return ctx_fail(ctx, -EINVAL, "KEK URI '%s': expected seamtest:/PATH", uri);
	st = calloc(1, sizeof(*st));
	if (!st || !(st->path = strdup(path))) {
		free(st);
		return -ENOMEM;
	}
	*r_state = st;
	return 0;
}

static void seam_free(void *state)
{
	struct seam_state *st = state;

	free(st->path);
	free(st);
}

static int hexval(int c)
{
	return isdigit(c) ? c - '0' : isxdigit(c) ? tolower(c) - 'a' + 10 : -1;
}

/* The key of VERSION (NULL: the last line's) into a secret, its version into R_VERSION. */
static int seam_key(struct kc_ctx *ctx, const struct seam_state *st, const char *version,
		    struct kc_secret **r_key, char r_version[32])
{
	_cleanup_(kc_secret_freep) struct kc_secret *file = NULL, *key = NULL;
	const char *line, *found = NULL;
	size_t vlen = 0;
	int r;

	r = trust_read_secret(ctx, st->path, "seamtest key file", 4096, &file);
	if (r < 0)
		return r;
	for (line = (const char *)file->data; *line;) {
		size_t len = strcspn(line, "\n"), n = strcspn(line, " \n");

		if (n && n < len && n < 32 &&
		    (!version || (strlen(version) == n && !strncmp(line, version, n)))) {
			found = line;
			vlen = n;
		}
		line += len + (line[len] == '\n');
	}
	if (!found)
		return ctx_fail(ctx, -EBADMSG, "seamtest key file '%s' has no key version '%s'",
				st->path, version ?: "(any)");
	key = kc_secret_alloc(KEY_LEN);
	if (!key)
		return -ENOMEM;
	for (size_t i = 0; i < KEY_LEN; i++) {
		int hi = hexval((unsigned char)found[vlen + 1 + 2 * i]);
		int lo = hi < 0 ? -1 : hexval((unsigned char)found[vlen + 2 + 2 * i]);

		if (lo < 0)
			return ctx_fail(ctx, -EINVAL, "seamtest key file '%s': version %.*s is not "
					"64 hex digits", st->path, (int)vlen, found);
		key->data[i] = (unsigned char)(hi << 4 | lo);
	}
	snprintf(r_version, 32, "%.*s", (int)vlen, found);
	*r_key = TAKE_PTR(key);
	return 0;
}


static int seam_wrap(struct kc_ctx *ctx, void *state, const struct kc_secret *dek,
		     struct kc_wrapped *r_wrapped)
{
	_cleanup_(kc_secret_freep) struct kc_secret *key = NULL;
	char version[32];
	unsigned char *out;
	size_t len;
	int r;

	if (!dek->len || dek->len > DEK_MAX)
		return ctx_fail(ctx, -EINVAL, "a %zu-byte key cannot be wrapped", dek->len);
	r = seam_key(ctx, state, NULL, &key, version);
	if (r < 0)
		return r;
	out = malloc(dek->len + 2 * KWP_OVERHEAD);
	if (!out)
		return -ENOMEM;
	r = util_aes256_kwp(key->data, true, dek->data, dek->len, out, &len);
	if (r < 0 || !(r_wrapped->key_version = strdup(version))) {
		free(out);
		return r < 0 ? ctx_fail(ctx, r, "seamtest: wrap failed") : -ENOMEM;
	}
	r_wrapped->data = out;
	r_wrapped->len = len;
	snprintf(r_wrapped->alg, sizeof(r_wrapped->alg), "%s", ALG);
	return 0;
}

static int seam_unwrap(struct kc_ctx *ctx, void *state, const char *alg,
		       const char *key_version, const unsigned char *wrapped, size_t wrapped_len,
		       struct kc_secret **r_dek)
{
	_cleanup_(kc_secret_freep) struct kc_secret *key = NULL, *dek = NULL;
	char version[32];
	int r;

	if (strcmp(alg, ALG) || !key_version || wrapped_len < 2 * KWP_OVERHEAD ||
	    wrapped_len > DEK_MAX + 2 * KWP_OVERHEAD)
		return ctx_fail(ctx, -EINVAL, "seamtest: not a seamtest wrapped key");
	r = seam_key(ctx, state, key_version, &key, version);
	if (r < 0)
		return r;
	dek = kc_secret_alloc(wrapped_len);
	if (!dek)
		return -ENOMEM;
	r = util_aes256_kwp(key->data, false, wrapped, wrapped_len, dek->data, &dek->len);
	if (r < 0)
		return ctx_fail(ctx, r, "seamtest: the wrapped key failed its integrity check");
	*r_dek = TAKE_PTR(dek);
	return 0;
}

static int seam_validate(struct kc_ctx *ctx, const struct token *t)
{
	if (strcmp(t->alg, ALG) || !t->key_version)
		return ctx_fail(ctx, -EINVAL, "a seamtest token has alg %s and a key version", ALG);
	return 0;
}

static void seam_needs(void *state, struct kek_needs *r_needs)
{
	const struct seam_state *st = state;

	r_needs->key_file = st->path;
}

static int seam_boot_needs(struct kc_ctx *ctx, void *state, struct boot_list *list)
{
	const struct seam_state *st = state;

	if (!st)
		return boot_add_listed(ctx, list, KC_BOOT_SECRET, SECTION, "allowed-paths");
	if (!policy_names(ctx, SECTION, "allowed-paths", st->path))
		return ctx_fail(ctx, -EACCES, "seamtest key file %s is not in [%s] allowed-paths",
				st->path, SECTION);
	return boot_add(list, KC_BOOT_SECRET, st->path, "a seamtest key file");
}

const struct kc_provider_ops provider_seamtest = {
	.abi_version = KC_PROVIDER_ABI_VERSION,
	.name = SECTION,
	.schemes = (const char *const[]){ "seamtest", NULL },
	.syntax = "seamtest:/PATH",
	.summary = "a test-only file of key versions",
	.init = seam_init,
	.wrap = seam_wrap,
	.unwrap = seam_unwrap,
	.validate = seam_validate,
	.free = seam_free,
	.needs = seam_needs,
	.boot_needs = seam_boot_needs,
	.config_keys = (const char *const[]){ "allowed-paths", NULL },
};
