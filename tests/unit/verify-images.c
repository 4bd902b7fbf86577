/* SPDX-License-Identifier: GPL-2.0-or-later */
/* verify-images IMG...: every image through what `kekcrypt verify` and `kekcrypt dump` call
 * (kc_verify, kc_volume_info_get and each token's description), in one process, so that one
 * valgrind run covers a whole corpus of bad tokens (tests/host/bad-tokens.sh). Prints
 * "IMG: verify R, N token(s)" per image; exits 0 when every image was read, whatever verify
 * said (the CLI's exit codes are bad-tokens.sh's to check). */
#include <stdio.h>
#include <stdlib.h>

#include "kekcrypt.h"

static int check_image(struct kc_ctx *ctx, const char *img)
{
	struct kc_unlock_result res = KC_SIZED(struct kc_unlock_result);
	struct kc_volume_info *info = NULL;
	size_t n, valid = 0;
	int v, r;

	v = kc_verify(ctx, img, -1, &res);
	r = kc_volume_info_get(ctx, img, &info);
	if (r < 0) {
		fprintf(stderr, "%s: cannot read the header: %s (%s)\n", img, kc_strerror(r),
			kc_error_detail(ctx));
		return r;
	}
	n = kc_volume_info_n_tokens(info);
	for (size_t i = 0; i < n; i++)
		valid += kc_volume_info_token(info, i)->valid == 0;
	printf("%s: verify %d (%s), %zu token(s), %zu valid\n", img, v, kc_strerror(v), n, valid);
	kc_volume_info_free(info);
	return 0;
}

int main(int argc, char **argv)
{
	struct kc_ctx *ctx = NULL;
	int i, r, failed = 0;

	if (argc < 3) {
		fprintf(stderr, "usage: verify-images CONFIG IMG...\n");
		return 2;
	}
	r = kc_init(&ctx, argv[1]);
	if (r < 0) {
		fprintf(stderr, "kc_init: %s\n", kc_strerror(r));
		return 1;
	}
	for (i = 2; i < argc; i++)
		failed |= check_image(ctx, argv[i]) < 0;
	kc_free(ctx);
	return failed;
}
