/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz target for the token JSON parser and serialiser, and the template mark's parser. Built with -fsanitize=fuzzer it is a
 * libFuzzer target (tests/fuzz/run-libfuzzer.sh); otherwise replay-main.c's main() replays the
 * files given on the command line, which is how `make check` runs the corpus.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct kc_ctx *ctx;
	struct token *t = NULL, *t2 = NULL;
	char *text, *json = NULL;
	int state;

	if (!ctx && kc_init(&ctx, "/dev/null/none") < 0 && kc_init(&ctx, NULL) < 0)
		abort();
	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (token_parse(ctx, text, &t) == 0) {
		/* What parses must serialise and parse back to the same wrapped key. */
		if (token_serialise(ctx, t, &json) != 0 || token_parse(ctx, json, &t2) != 0 ||
		    t2->wrapped_len != t->wrapped_len ||
		    memcmp(t2->wrapped, t->wrapped, t->wrapped_len))
			abort();
	}
	/* The template mark's parser too: what parses is written back the same. */
	if (token_template_parse(ctx, text, &state) == 0) {
		char buf[256];
		int again = -1;

		if (token_template_json(state, buf, sizeof(buf)) != 0 ||
		    token_template_parse(ctx, buf, &again) != 0 || again != state)
			abort();
	}
	token_free(t);
	token_free(t2);
	free(json);
	free(text);
	return 0;
}
