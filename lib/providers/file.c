/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Provider "file": a 32-byte AES-256 KEK in a private local file. The DEK is wrapped with AES
 * key wrap with padding (RFC 5649), which carries its own integrity check, so a wrong KEK is
 * detected at unwrap.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define KEK_LEN 32
#define ALG_KWP "A256KWP"
/* RFC 5649 adds an 8-byte integrity block and pads to 8 bytes. */
#define KWP_OVERHEAD 8
#define DEK_MAX 128

struct file_state {
	char *path;
};

static int file_init(struct kc_ctx *ctx, const char *uri, void **r_state)
{
	const char *path = uri + strlen("file:");
	struct file_state *st;

	/* Accept file:/abs/path and file:///abs/path; nothing relative, no host, no query. */
	if (!strncmp(path, "//", 2)) {
		if (path[2] != '/')
			return ctx_fail(ctx, -EINVAL, "KEK URI '%s': a file URI has no host", uri);
		path += 2;
	}
	if (path[0] != '/')
		return ctx_fail(ctx, -EINVAL, "KEK URI '%s': the path must be absolute", uri);
	if (strpbrk(path, "?#"))
		return ctx_fail(ctx, -EINVAL, "KEK URI '%s': no query or fragment allowed", uri);
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->path = strdup(path);
	if (!st->path) {
		free(st);
		return -ENOMEM;
	}
	*r_state = st;
	return 0;
}

static void file_free(void *state)
{
	struct file_state *st = state;

	free(st->path);
	free(st);
}

static int file_load_kek(struct kc_ctx *ctx, const struct file_state *st,
			 struct kc_secret **r_kek)
{
	_cleanup_(kc_secret_freep) struct kc_secret *kek = NULL;
	int r;

	r = trust_read_secret(ctx, st->path, "KEK file", KEK_LEN, &kek);
	if (r == -EFBIG)
		r = ctx_fail(ctx, -EINVAL, "KEK file '%s' is larger than %d bytes", st->path,
			     KEK_LEN);
	if (r < 0)
		return r;
	if (kek->len != KEK_LEN)
		return ctx_fail(ctx, -EINVAL, "KEK file '%s' holds %zu bytes, expected %d",
				st->path, kek->len, KEK_LEN);
	*r_kek = TAKE_PTR(kek);
	return 0;
}


static int file_wrap(struct kc_ctx *ctx, void *state, const struct kc_secret *dek,
		     struct kc_wrapped *r_wrapped)
{
	_cleanup_(kc_secret_freep) struct kc_secret *kek = NULL;
	struct file_state *st = state;
	unsigned char *out;
	size_t len;
	int r;

	if (dek->len == 0 || dek->len > DEK_MAX)
		return ctx_fail(ctx, -EINVAL, "a %zu-byte key cannot be wrapped", dek->len);
	r = file_load_kek(ctx, st, &kek);
	if (r < 0)
		return r;
	out = malloc(dek->len + 2 * KWP_OVERHEAD);
	if (!out)
		return -ENOMEM;
	r = util_aes256_kwp(kek->data, true, dek->data, dek->len, out, &len);
	if (r < 0) {
		free(out);
		return ctx_fail(ctx, r, "KEK file '%s': AES key wrap failed", st->path);
	}
	r_wrapped->data = out;
	r_wrapped->len = len;
	snprintf(r_wrapped->alg, sizeof(r_wrapped->alg), "%s", ALG_KWP);
	r_wrapped->key_version = NULL;
	return 0;
}

static int file_unwrap(struct kc_ctx *ctx, void *state, const char *alg, const char *key_version,
		       const unsigned char *wrapped, size_t wrapped_len,
		       struct kc_secret **r_dek)
{
	_cleanup_(kc_secret_freep) struct kc_secret *kek = NULL, *dek = NULL;
	struct file_state *st = state;
	int r;

	if (strcmp(alg, ALG_KWP))
		return ctx_fail(ctx, -EINVAL, "wrap algorithm '%s' is not %s", alg, ALG_KWP);
	if (wrapped_len < 2 * KWP_OVERHEAD || wrapped_len % 8 ||
	    wrapped_len > DEK_MAX + KWP_OVERHEAD + 8)
		return ctx_fail(ctx, -EINVAL, "wrapped key of %zu bytes is not an RFC 5649 blob",
				wrapped_len);
	r = file_load_kek(ctx, st, &kek);
	if (r < 0)
		return r;
	dek = kc_secret_alloc(wrapped_len);
	if (!dek)
		return -ENOMEM;
	r = util_aes256_kwp(kek->data, false, wrapped, wrapped_len, dek->data, &dek->len);
	if (r < 0)
		return ctx_fail(ctx, r,
				"KEK file '%s': the wrapped key failed its integrity check "
				"(wrong KEK?)", st->path);
	*r_dek = TAKE_PTR(dek);
	return 0;
}

static int file_validate(struct kc_ctx *ctx, const struct token *t)
{
	if (strcmp(t->alg, ALG_KWP))
		return ctx_fail(ctx, -EINVAL, "wrap algorithm '%s' is not %s", t->alg, ALG_KWP);
	if (t->key_version)
		return ctx_fail(ctx, -EINVAL, "a file KEK has no key version");
	return 0;
}

/* The initramfs gets a KEK file only when [file] allowed-paths names it (the header is
 * untrusted: a token alone never gets a file copied), and with it the files named there. */
static int file_boot_needs(struct kc_ctx *ctx, void *state, struct boot_list *list)
{
	const struct file_state *st = state;

	if (!st)
		return boot_add_listed(ctx, list, KC_BOOT_SECRET, "file", "allowed-paths");
	if (!policy_names(ctx, "file", "allowed-paths", st->path))
		return ctx_fail(ctx, -EACCES, "KEK file %s is not in [file] allowed-paths of %s: "
				"not copied into the initramfs", st->path,
				config_path(ctx->config));
	return boot_add(list, KC_BOOT_SECRET, st->path, "a KEK file ([file] allowed-paths)");
}

static void file_needs(void *state, struct kek_needs *r_needs)
{
	const struct file_state *st = state;

	r_needs->key_file = st->path;
}

const struct kc_provider_ops provider_file = {
	.abi_version = KC_PROVIDER_ABI_VERSION,
	.name = "file",
	.schemes = (const char *const[]){ "file", NULL },
	.syntax = "file:/PATH",
	.summary = "a local 32-byte AES-256 key file",
	.init = file_init,
	.wrap = file_wrap,
	.unwrap = file_unwrap,
	.validate = file_validate,
	.free = file_free,
	.needs = file_needs,
	.boot_needs = file_boot_needs,
	.config_keys = (const char *const[]){ "allowed-paths", NULL },
};
