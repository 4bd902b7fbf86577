/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Drive vault_transit_rewrap() (lib/providers/vault.c), which `kek rotate` does not use yet:
 *
 *   test-vault-rewrap CONFIG KEK-URI IN OUT
 *
 * reads a Vault ciphertext ("vault:vN:...") from IN, has Vault rewrap it under the key's
 * latest version, writes the new ciphertext to OUT and prints "alg VERSION" on stdout.
 * Exit 0, or the kekcrypt exit code of the failure with the error detail on stderr. Run by
 * tests/host/vault-transit.sh against the fixture. KC_DEBUG=1 logs to stderr.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

int vault_transit_rewrap(struct kc_ctx *ctx, void *state, const unsigned char *wrapped,
			 size_t wrapped_len, struct kc_wrapped *r_wrapped);

static void log_stderr(int level, const char *msg, void *usrptr)
{
	fprintf(stderr, "# %s\n", msg);
}

static int fail(struct kc_ctx *ctx, int r)
{
	fprintf(stderr, "test-vault-rewrap: %s\n", ctx && kc_error_detail(ctx)[0] ?
		kc_error_detail(ctx) : kc_strerror(r));
	return r == -EPERM ? 5 : r == -ENOENT ? 3 : r == -EAGAIN ? 4 : 1;
}

int main(int argc, char **argv)
{
	_cleanup_(freep) unsigned char *in = NULL;
	struct kc_wrapped w = { 0 };
	struct kc_kek *kek = NULL;
	struct kc_ctx *ctx = NULL;
	FILE *out;
	size_t len;
	int r;

	if (argc != 5) {
		fprintf(stderr, "usage: test-vault-rewrap CONFIG KEK-URI IN OUT\n");
		return 2;
	}
	r = kc_init(&ctx, argv[1]);
	if (r < 0)
		return fail(NULL, r);
	if (getenv("KC_DEBUG"))
		kc_set_log(ctx, log_stderr, KC_LOG_DEBUG, NULL);
	r = util_read_file(argv[3], TOKEN_WRAPPED_MAX, &in, &len);
	while (r >= 0 && len && (in[len - 1] == '\n' || in[len - 1] == '\r'))
		len--;
	if (r >= 0)
		r = kek_open(ctx, argv[2], &kek);
	if (r >= 0)
		r = vault_transit_rewrap(ctx, kek->state, in, len, &w);
	if (r < 0) {
		r = fail(ctx, r);
		goto out;
	}
	out = fopen(argv[4], "we");
	if (!out || fwrite(w.data, 1, w.len, out) != w.len || fclose(out) != 0) {
		perror("test-vault-rewrap: writing the output");
		r = 1;
		goto out;
	}
	printf("%s %s\n", w.alg, w.key_version);
	r = 0;
out:
	wrapped_clear(&w);
	kek_close(kek);
	kc_free(ctx);
	return r;
}
