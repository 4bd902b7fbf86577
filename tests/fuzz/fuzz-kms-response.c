/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz target for KMS response parsing: a response body from secret memory through the json-c
 * parser, the field readers and the base64/base64url decoder into secret memory, the path
 * every remote provider's unwrap takes; then, with the body as the answer under several
 * HTTP statuses, every parser of each remote provider (azure_fuzz_answer(),
 * vault_fuzz_answer(): access tokens, wrapped keys, DEKs, errors). With -fsanitize=fuzzer it
 * is a libFuzzer target; otherwise replay-main.c replays the files given on the command line
 * (`make check`).
 */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void take(struct json_object *obj, const char *key, bool b64)
{
	struct kc_secret *s = NULL;

	if (http_json_take_secret(obj, key, b64, &s) == 0 && s->data[s->len] != '\0' && !b64)
		abort();	/* taken strings are NUL-terminated */
	kc_secret_free(s);
}

/* Each provider's parsers on BODY as the answer with each status an answer can have. */
static void providers(struct kc_ctx *ctx, struct kc_secret *body)
{
	static const long statuses[] = { 200, 400, 401, 403, 404, 429, 503 };
	struct http_response resp = { .body = body };

	for (size_t i = 0; i < ARRAY_SIZE(statuses); i++) {
		resp.status = statuses[i];
		azure_fuzz_answer(ctx, &resp);
		vault_fuzz_answer(ctx, &resp);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct kc_ctx *ctx;
	struct kc_secret *body, *dec = NULL;
	struct json_object *obj = NULL, *inner;

	if (!ctx && kc_init(&ctx, NULL) < 0)
		abort();
	body = kc_secret_alloc(size + 1);
	if (!body)
		return 0;
	memcpy(body->data, data, size);
	body->len = size;
	/* NUL-terminated, as http_send() hands it over (kc_secret_alloc() zeroes). */
	providers(ctx, body);
	if (http_json_parse(ctx, body, "fuzz", &obj) == 0) {
		/* Azure: {"kid":..,"value":b64url}; Vault: {"data":{"plaintext":b64}}; tokens. */
		(void)http_json_get_string(obj, NULL, "kid");
		(void)http_json_get_string(obj, "data", "ciphertext");
		take(obj, "value", true);
		take(obj, "access_token", false);
		if (json_object_object_get_ex(obj, "data", &inner))
			take(inner, "plaintext", true);
		http_json_put_wipe(obj);
	}
	/* The decoder alone on the raw input, which need not be JSON. */
	if (http_b64_decode_secret((const char *)data, size, &dec) == 0 && dec->len > size)
		abort();
	kc_secret_free(dec);
	kc_secret_free(body);
	return 0;
}
