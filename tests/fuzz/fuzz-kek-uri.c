/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz target for the KEK URI parsers: kek_open() on an arbitrary string, which dispatches on
 * the scheme to a provider's init() (file, pkcs11 through p11-kit's URI parser, vault-transit,
 * azure-kv). The URI comes from the LUKS2 header, which anyone holding the disk can write.
 * The context has an empty configuration, so that nothing is reachable: init() parses, and
 * must neither connect, nor read a file, nor crash, leak or read outside the string. With
 * -fsanitize=fuzzer it is a libFuzzer target (tests/fuzz/run-libfuzzer.sh); otherwise
 * replay-main.c replays the files given on the command line (`make check`).
 */
#include <string.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct kc_ctx *ctx;
	struct kc_kek *kek = NULL;
	char *uri;

	if (!ctx) {
		if (kc_init(&ctx, "/dev/null/none") < 0 && kc_init(&ctx, NULL) < 0)
			abort();
		/* Whatever configuration was found: none. */
		config_free(ctx->config);
		ctx->config = NULL;
	}
	/* Exactly SIZE bytes and a NUL, so that ASan sees any read past the string. */
	uri = malloc(size + 1);
	if (!uri)
		return 0;
	memcpy(uri, data, size);
	uri[size] = '\0';
	if (kek_open(ctx, uri, &kek) == 0) {
		/* What opened names its provider and keeps its own copy of the URI. */
		if (!kek->ops || !kek->uri || strcmp(kek->uri, uri))
			abort();
		kek_close(kek);
	}
	free(uri);
	return 0;
}
