/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The LUKS2 token of type "kekcrypt". Readable by anyone holding the disk, so it holds no
 * secret in clear:
 *
 *   {"type": "kekcrypt", "keyslots": ["N"],
 *    "kekcrypt-version": "1",
 *    "kekcrypt-provider": "file",
 *    "kekcrypt-key-id": "<KEK URI>",
 *    "kekcrypt-key-version": "<KMS key version>",   (optional, version 1)
 *    "kekcrypt-wrap-alg": "A256KWP",
 *    "kekcrypt-wrapped-key": "<base64>",
 *    "kekcrypt-created": "2026-11-22T22:00:00Z"}
 *
 * Integers are strings, as LUKS2 stores them. Unknown fields are tolerated (a newer kekcrypt
 * may add optional ones); an unknown format version is not.
 */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "internal.h"

#define KEY(name) "kekcrypt-" name
#define FIELD_MAX 256

void token_free(struct token *t)
{
	if (!t)
		return;
	free(t->provider);
	free(t->uri);
	free(t->key_version);
	free(t->alg);
	free(t->created);
	free(t->wrapped);
	free(t);
}

void token_freep(struct token **t)
{
	token_free(*t);
	*t = NULL;
}

/* Fetch string member KEY of OBJ into *r_str, checking presence, type and length. */
static int json_string(struct kc_ctx *ctx, json_object *obj, const char *key, bool optional,
		       size_t max, const char **r_str)
{
	json_object *v;
	const char *s;

	if (!json_object_object_get_ex(obj, key, &v)) {
		if (optional) {
			*r_str = NULL;
			return 0;
		}
		return ctx_fail(ctx, -EINVAL, "field '%s' is missing", key);
	}
	if (!json_object_is_type(v, json_type_string))
		return ctx_fail(ctx, -EINVAL, "field '%s' is not a string", key);
	s = json_object_get_string(v);
	if (!*s || strlen(s) > max || strlen(s) != (size_t)json_object_get_string_len(v))
		return ctx_fail(ctx, -EINVAL, "field '%s' is empty, too long or holds a NUL", key);
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return ctx_fail(ctx, -EINVAL, "field '%s' holds a control character", key);
	*r_str = s;
	return 0;
}

static int parse_uint(const char *s, unsigned max, unsigned *r_val)
{
	unsigned long v;
	char *end;

	if (!s[0] || strspn(s, "0123456789") != strlen(s) || strlen(s) > 9)
		return -EINVAL;
	v = strtoul(s, &end, 10);
	if (v > max)
		return -EINVAL;
	*r_val = (unsigned)v;
	return 0;
}

static int parse_keyslots(struct kc_ctx *ctx, json_object *obj, struct token *t)
{
	json_object *arr, *v;
	unsigned slot;

	if (!json_object_object_get_ex(obj, "keyslots", &arr) ||
	    !json_object_is_type(arr, json_type_array))
		return ctx_fail(ctx, -EINVAL, "field 'keyslots' is missing or not an array");
	t->keyslot = -1;
	if (json_object_array_length(arr) == 0)
		return 0;
	if (json_object_array_length(arr) > 1)
		return ctx_fail(ctx, -EINVAL, "a kekcrypt token is bound to at most one keyslot");
	v = json_object_array_get_idx(arr, 0);
	if (!json_object_is_type(v, json_type_string) ||
	    parse_uint(json_object_get_string(v), 31, &slot) < 0)
		return ctx_fail(ctx, -EINVAL, "field 'keyslots' holds an invalid keyslot");
	t->keyslot = (int)slot;
	return 0;
}

static bool only_chars(const char *s, const char *set)
{
	return strspn(s, set) == strlen(s);
}

static int dup_field(const char *s, char **r)
{
	if (!s)
		return 0;
	*r = strdup(s);
	return *r ? 0 : -ENOMEM;
}

static int parse_fields(struct kc_ctx *ctx, json_object *obj, struct token *t)
{
	const char *type, *ver, *prov, *uri, *kver, *alg, *wrapped, *created;
	int r;

	if ((r = json_string(ctx, obj, "type", false, 64, &type)) < 0 ||
	    (r = json_string(ctx, obj, KEY("version"), false, 9, &ver)) < 0 ||
	    (r = json_string(ctx, obj, KEY("provider"), false, 31, &prov)) < 0 ||
	    (r = json_string(ctx, obj, KEY("key-id"), false, TOKEN_URI_MAX, &uri)) < 0 ||
	    (r = json_string(ctx, obj, KEY("key-version"), true, FIELD_MAX - 1, &kver)) < 0 ||
	    (r = json_string(ctx, obj, KEY("wrap-alg"), false, 31, &alg)) < 0 ||
	    (r = json_string(ctx, obj, KEY("wrapped-key"), false, 4 * TOKEN_WRAPPED_MAX, &wrapped)) < 0 ||
	    (r = json_string(ctx, obj, KEY("created"), false, 31, &created)) < 0)
		return r;
	if (strcmp(type, TOKEN_TYPE))
		return ctx_fail(ctx, -EINVAL, "type '%s' is not '%s'", type, TOKEN_TYPE);
	if (parse_uint(ver, 1000000, &t->version) < 0)
		return ctx_fail(ctx, -EINVAL, "field '" KEY("version") "' is not a number");
	if (t->version != TOKEN_FORMAT_VERSION)
		return ctx_fail(ctx, -EINVAL,
				"token format version %u is not supported (this kekcrypt reads %u)",
				t->version, TOKEN_FORMAT_VERSION);
	if (!only_chars(prov, "abcdefghijklmnopqrstuvwxyz0123456789_-"))
		return ctx_fail(ctx, -EINVAL, "field '" KEY("provider") "' has invalid characters");
	if (!only_chars(alg, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"))
		return ctx_fail(ctx, -EINVAL, "field '" KEY("wrap-alg") "' has invalid characters");
	r = util_base64_decode(wrapped, &t->wrapped, &t->wrapped_len);
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return ctx_fail(ctx, -EINVAL, "field '" KEY("wrapped-key") "' is not valid base64");
	if (t->wrapped_len < 8 || t->wrapped_len > TOKEN_WRAPPED_MAX)
		return ctx_fail(ctx, -EINVAL, "wrapped key of %zu bytes is out of range (8..%d)",
				t->wrapped_len, TOKEN_WRAPPED_MAX);
	if (dup_field(prov, &t->provider) < 0 || dup_field(uri, &t->uri) < 0 ||
	    dup_field(kver, &t->key_version) < 0 || dup_field(alg, &t->alg) < 0 ||
	    dup_field(created, &t->created) < 0)
		return -ENOMEM;
	return 0;
}

int token_parse(struct kc_ctx *ctx, const char *json, struct token **r_token)
{
	_cleanup_(token_freep) struct token *t = NULL;
	json_object *obj;
	int r;

	obj = json_tokener_parse(json);
	if (!obj || !json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		return ctx_fail(ctx, -EINVAL, "token is not a JSON object");
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		r = -ENOMEM;
		goto out;
	}
	t->id = -1;
	r = parse_keyslots(ctx, obj, t);
	if (r >= 0)
		r = parse_fields(ctx, obj, t);
	if (r >= 0)
		*r_token = TAKE_PTR(t);
out:
	json_object_put(obj);
	return r;
}

static int add_string(json_object *obj, const char *key, const char *value)
{
	json_object *v = json_object_new_string(value);

	if (!v || json_object_object_add(obj, key, v) < 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

static int build_object(const struct token *t, const char *b64, json_object *obj)
{
	json_object *slots = json_object_new_array();
	char buf[16];

	if (!slots || json_object_object_add(obj, "keyslots", slots) < 0) {
		json_object_put(slots);
		return -ENOMEM;
	}
	if (t->keyslot >= 0) {
		snprintf(buf, sizeof(buf), "%d", t->keyslot);
		if (json_object_array_add(slots, json_object_new_string(buf)) < 0)
			return -ENOMEM;
	}
	snprintf(buf, sizeof(buf), "%u", t->version);
	if (add_string(obj, "type", TOKEN_TYPE) < 0 || add_string(obj, KEY("version"), buf) < 0 ||
	    add_string(obj, KEY("provider"), t->provider) < 0 ||
	    add_string(obj, KEY("key-id"), t->uri) < 0 ||
	    (t->key_version && add_string(obj, KEY("key-version"), t->key_version) < 0) ||
	    add_string(obj, KEY("wrap-alg"), t->alg) < 0 ||
	    add_string(obj, KEY("wrapped-key"), b64) < 0 ||
	    add_string(obj, KEY("created"), t->created) < 0)
		return -ENOMEM;
	return 0;
}

int token_serialise(struct kc_ctx *ctx, const struct token *t, char **r_json)
{
	_cleanup_(freep) char *b64 = NULL;
	_cleanup_(token_freep) struct token *check = NULL;
	json_object *obj;
	char *json = NULL;
	int r;

	r = util_base64_encode(t->wrapped, t->wrapped_len, &b64);
	if (r < 0)
		return r;
	obj = json_object_new_object();
	if (!obj)
		return -ENOMEM;
	r = build_object(t, b64, obj);
	if (r >= 0) {
		json = strdup(json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN |
								      JSON_C_TO_STRING_NOSLASHESCAPE));
		r = json ? 0 : -ENOMEM;
	}
	json_object_put(obj);
	/* Never write what we would refuse to read back. */
	if (r >= 0)
		r = token_parse(ctx, json, &check);
	if (r < 0) {
		free(json);
		return r;
	}
	*r_json = json;
	return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Marks: the fields kekcrypt adds to a token while a rotation or a rekey is under way.      */

bool token_json_field(const char *json, const char *key, char *buf, size_t size)
{
	json_object *obj = json_tokener_parse(json), *v;
	bool found = false;

	if (obj && json_object_is_type(obj, json_type_object) &&
	    json_object_object_get_ex(obj, key, &v) && json_object_is_type(v, json_type_string) &&
	    strlen(json_object_get_string(v)) < size) {
		snprintf(buf, size, "%s", json_object_get_string(v));
		found = true;
	}
	json_object_put(obj);
	return found;
}

int token_json_set(const char *json, const char *const *keys, const char *const *values,
		   size_t n, char **r_out)
{
	json_object *obj = json_tokener_parse(json);
	char *out = NULL;
	int r = 0;

	if (!obj || !json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		return -EINVAL;
	}
	for (size_t i = 0; r >= 0 && i < n; i++) {
		json_object_object_del(obj, keys[i]);
		if (values[i] &&
		    json_object_object_add(obj, keys[i], json_object_new_string(values[i])) < 0)
			r = -ENOMEM;
	}
	if (r >= 0) {
		out = strdup(json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN |
							     JSON_C_TO_STRING_NOSLASHESCAPE));
		r = out ? 0 : -ENOMEM;
	}
	json_object_put(obj);
	if (r >= 0)
		*r_out = out;
	return r;
}

/* ---------------------------------------------------------------------------------------- */
/* The template mark (template.c): a token of type "kekcrypt-template", bound to no keyslot,
 * holding no secret and naming no KEK:
 *
 *   {"type": "kekcrypt-template", "keyslots": [],
 *    "kekcrypt-template-version": "1",
 *    "kekcrypt-template-state": "template" | "rekeyed"}
 */

#define TEMPLATE_KEY(name) "kekcrypt-template-" name
#define TEMPLATE_FORMAT_VERSION "1"

static const char *const template_states[] = { [KC_TEMPLATE_MARKED] = "template",
					       [KC_TEMPLATE_REKEYED] = "rekeyed" };

static int template_fields(struct kc_ctx *ctx, json_object *obj, int *r_state)
{
	const char *type, *ver, *state;
	json_object *slots;
	int r;

	if ((r = json_string(ctx, obj, "type", false, 64, &type)) < 0 ||
	    (r = json_string(ctx, obj, TEMPLATE_KEY("version"), false, 9, &ver)) < 0 ||
	    (r = json_string(ctx, obj, TEMPLATE_KEY("state"), false, 31, &state)) < 0)
		return r;
	if (strcmp(type, TEMPLATE_TOKEN_TYPE))
		return ctx_fail(ctx, -EINVAL, "type '%s' is not '%s'", type, TEMPLATE_TOKEN_TYPE);
	if (!json_object_object_get_ex(obj, "keyslots", &slots) ||
	    !json_object_is_type(slots, json_type_array) || json_object_array_length(slots))
		return ctx_fail(ctx, -EINVAL, "a template mark is bound to no keyslot");
	if (strcmp(ver, TEMPLATE_FORMAT_VERSION))
		return ctx_fail(ctx, -EINVAL, "template mark version '%s' is not supported (this "
				"kekcrypt reads " TEMPLATE_FORMAT_VERSION ")", ver);
	for (int s = KC_TEMPLATE_MARKED; s <= KC_TEMPLATE_REKEYED; s++)
		if (!strcmp(state, template_states[s])) {
			*r_state = s;
			return 0;
		}
	return ctx_fail(ctx, -EINVAL, "template state '%s' is neither 'template' nor 'rekeyed'",
			state);
}

int token_template_parse(struct kc_ctx *ctx, const char *json, int *r_state)
{
	json_object *obj = json_tokener_parse(json);
	int r;

	if (!obj || !json_object_is_type(obj, json_type_object))
		r = ctx_fail(ctx, -EINVAL, "template mark is not a JSON object");
	else
		r = template_fields(ctx, obj, r_state);
	json_object_put(obj);
	return r;
}

int token_template_json(int state, char *buf, size_t size)
{
	if (state != KC_TEMPLATE_MARKED && state != KC_TEMPLATE_REKEYED)
		return -EINVAL;
	if ((size_t)snprintf(buf, size, "{\"type\":\"" TEMPLATE_TOKEN_TYPE "\",\"keyslots\":[],"
			     "\"" TEMPLATE_KEY("version") "\":\"" TEMPLATE_FORMAT_VERSION "\","
			     "\"" TEMPLATE_KEY("state") "\":\"%s\"}", template_states[state]) >= size)
		return -ENOBUFS;
	return 0;
}
