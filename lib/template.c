/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Template marks and the first boot of a clone (kc_template_mark(), kc_firstboot()).
 *
 * Every clone of an image holds its template's DEK. A volume formatted for a template carries
 * a mark, a token of type "kekcrypt-template" (token.c; no keyslot, no secret, no KEK named),
 * in state "template". On a clone's first boot kc_firstboot() makes these steps, each its own
 * writer's transaction:
 *
 *   F1  state "template": kc_rekey() (a new random DEK under every KEK the volume has; its
 *       own resumable state machine, rekey.c), then the mark's state set to "rekeyed";
 *   F2  when the configuration has a [firstboot] section ("kek = URI", repeatable): a token
 *       for each of its KEKs that has none (kc_kek_add()), each of them checked by an unwrap
 *       (kc_verify()), and only then every other kekcrypt token removed (kc_kek_remove());
 *   F3  the mark removed.
 *
 * The next call continues from what the header says: stopped in F1, the state is still
 * "template" and kc_rekey() resumes the re-encryption (or rolls back an unstarted rekey and
 * starts again); killed between the end of the rekey and the state write, the rekey is done
 * again (a second new DEK: correct, only slower); stopped in F2, the KEKs still missing are
 * added and the tokens left over removed; in F3, only the mark is left to remove.
 *
 * The header is untrusted: a forged mark can make a volume be re-keyed under the KEKs it
 * already has, and have its tokens moved to KEKs only when this machine's configuration names
 * them ([firstboot]); it names no KEK, path or endpoint itself. A forged "rekeyed" state skips
 * the rekey, as removing the mark would.
 */
#include <stdio.h>
#include <string.h>

#include <libcryptsetup.h>

#include "internal.h"

#define FIRSTBOOT_MAX_TOKENS 32

/* The first template mark of CD: its id, its state in *R_STATE; -1 when there is none; -EINVAL
 * for one that does not parse. */
static int mark_find(struct kc_ctx *ctx, struct crypt_device *cd, int *r_state)
{
	for (int id = 0; id < crypt_token_max(CRYPT_LUKS2); id++) {
		const char *json;
		int r;

		if (!luks_token_is(cd, id, TEMPLATE_TOKEN_TYPE))
			continue;
		r = crypt_token_json_get(cd, id, &json);
		if (r >= 0)
			r = token_template_parse(ctx, json, r_state);
		if (r < 0) {
			ctx_detail_prefix(ctx, "template mark (token %d)", id);
			return -EINVAL;
		}
		return id;
	}
	return -1;
}

/* Write the mark of STATE over token ID (-1: a new one); KC_TEMPLATE_NONE removes every mark. */
static int mark_write(struct kc_ctx *ctx, struct crypt_device *cd, int id, int state)
{
	char json[256];
	int r;

	if (state == KC_TEMPLATE_NONE) {
		for (r = 0, id = 0; r >= 0 && id < crypt_token_max(CRYPT_LUKS2); id++)
			if (luks_token_is(cd, id, TEMPLATE_TOKEN_TYPE))
				r = luks_token_remove(ctx, cd, id);
		return r;
	}
	r = token_template_json(state, json, sizeof(json));
	if (r >= 0)
		r = crypt_token_json_set(cd, id >= 0 ? id : CRYPT_ANY_TOKEN, json);
	if (r < 0)
		return ctx_fail(ctx, r, "cannot write the template mark (%s)", strerror(-r));
	util_crash_point();
	return 0;
}

/* Set DEVICE's mark to STATE under its writer lock: 1 when written, 0 when it already was. */
static int mark_set(struct kc_ctx *ctx, const char *device, int state)
{
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	_cleanup_(vol_unlockp) int lock = -1;
	int r, id, old = KC_TEMPLATE_NONE;

	r = vol_load_for_write(ctx, device, 0, &cd, &lock);
	if (r < 0)
		return r;
	/* Marks that do not parse are removed first: the caller asks for a mark that does, or
	 * for none. */
	id = mark_find(ctx, cd, &old);
	if (id == -EINVAL) {
		ctx_detail_clear(ctx);
		r = mark_write(ctx, cd, -1, KC_TEMPLATE_NONE);
		if (r < 0 || state == KC_TEMPLATE_NONE)
			return r < 0 ? r : 1;
		id = -1;
	}
	if (id >= 0 ? old == state : state == KC_TEMPLATE_NONE)
		return 0;
	r = mark_write(ctx, cd, id, state);
	if (r >= 0)
		log_dbg(ctx, "device '%s': template mark %s", device,
			state == KC_TEMPLATE_NONE ? "removed" : "written");
	return r < 0 ? r : 1;
}

int kc_template_mark(struct kc_ctx *ctx, const char *device, bool mark)
{
	struct audit a;
	int r;

	if (!ctx || !device)
		return -EINVAL;
	ctx_detail_clear(ctx);
	audit_begin(ctx, &a, mark ? "template-mark" : "template-clear", device);
	r = mark_set(ctx, device, mark ? KC_TEMPLATE_MARKED : KC_TEMPLATE_NONE);
	if (r < 0)
		ctx_detail_device(ctx, device);
	return audit_end(ctx, &a, r);
}

int kc_template_get(struct kc_ctx *ctx, const char *device)
{
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	int r, state = KC_TEMPLATE_NONE;

	if (!ctx || !device)
		return -EINVAL;
	ctx_detail_clear(ctx);
	r = vol_load(ctx, device, &cd);
	if (r >= 0)
		r = mark_find(ctx, cd, &state);
	if (r < -1) {
		ctx_detail_device(ctx, device);
		return r;
	}
	return state;
}

int template_config_check(struct kc_ctx *ctx, const char *section, const char *key)
{
	if (strcmp(section, FIRSTBOOT_SECTION))
		return provider_config_check(ctx, section, key);
	if (key && strcmp(key, "kek"))
		return ctx_fail(ctx, -EINVAL, "unknown key '%s' in [" FIRSTBOOT_SECTION "]; it "
				"takes: kek", key);
	return 0;
}

/* Whether URI is one of the [firstboot] KEKs of the configuration. */
static bool firstboot_kek(struct kc_ctx *ctx, const char *uri)
{
	const char *k;

	for (size_t i = 0; (k = config_get_nth(ctx->config, FIRSTBOOT_SECTION, "kek", i)); i++)
		if (!strcmp(k, uri))
			return true;
	return false;
}

/* The kekcrypt tokens of DEVICE whose KEK is not a [firstboot] one, in IDS. */
static int other_tokens(struct kc_ctx *ctx, const char *device, int ids[FIRSTBOOT_MAX_TOKENS],
			size_t *r_n)
{
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	size_t n = 0;
	int r;

	r = vol_load(ctx, device, &cd);
	for (int id = 0; r >= 0 && id < crypt_token_max(CRYPT_LUKS2); id++) {
		_cleanup_(token_freep) struct token *t = NULL;

		if (!luks_token_is(cd, id, TOKEN_TYPE))
			continue;
		r = vol_token_read(ctx, cd, id, &t);
		if (r >= 0 && !firstboot_kek(ctx, t->uri) && n < FIRSTBOOT_MAX_TOKENS)
			ids[n++] = id;
	}
	if (r >= 0)
		*r_n = n;
	return r;
}

/* F2: a verified token for each [firstboot] KEK, then no token of another KEK. */
static int move_keks(struct kc_ctx *ctx, const char *device, struct kc_firstboot_result *res)
{
	int ids[FIRSTBOOT_MAX_TOKENS], r = 0;
	const char *uri;
	size_t i, n;

	for (i = 0; r >= 0 && (uri = config_get_nth(ctx->config, FIRSTBOOT_SECTION, "kek", i)); i++) {
		r = kc_kek_find(ctx, device, uri);
		if (r == -ENOENT) {
			r = kc_kek_add(ctx, device, uri);
			res->keks_added += r >= 0;
		}
		if (r >= 0)
			r = kc_verify(ctx, device, r, NULL);
	}
	if (r < 0 || i == 0)
		return r;
	r = other_tokens(ctx, device, ids, &n);
	for (size_t k = 0; r >= 0 && k < n; k++) {
		r = kc_kek_remove(ctx, device, ids[k], false);
		res->tokens_removed += r >= 0;
	}
	return r;
}

/* The number of kekcrypt tokens of DEVICE. */
static int count_tokens(struct kc_ctx *ctx, const char *device)
{
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	int r, n = 0;

	r = vol_load(ctx, device, &cd);
	for (int id = 0; r >= 0 && id < crypt_token_max(CRYPT_LUKS2); id++)
		n += luks_token_is(cd, id, TOKEN_TYPE);
	return r < 0 ? r : n;
}

static int firstboot(struct kc_ctx *ctx, const char *device, uint32_t flags, kc_progress_fn fn,
		     void *usrptr, struct kc_firstboot_result *res)
{
	struct kc_rekey_result rk = { .size = sizeof(rk) };
	int r;

	r = kc_template_get(ctx, device);
	if (r <= KC_TEMPLATE_NONE)
		return r;
	res->state = r;
	if (res->state == KC_TEMPLATE_MARKED) {
		r = kc_rekey(ctx, device, flags, fn, usrptr, &rk);
		if (r < 0)
			return r;
		res->rekeyed = true;
		res->resumed = rk.resumed;
		r = mark_set(ctx, device, KC_TEMPLATE_REKEYED);
	}
	if (r >= 0)
		r = move_keks(ctx, device, res);
	if (r >= 0)
		r = mark_set(ctx, device, KC_TEMPLATE_NONE);
	if (r >= 0)
		r = count_tokens(ctx, device);
	if (r >= 0)
		res->n_tokens = r;
	return r;
}

int kc_firstboot(struct kc_ctx *ctx, const char *device, uint32_t flags, kc_progress_fn fn,
		 void *usrptr, struct kc_firstboot_result *r_result)
{
	struct kc_firstboot_result res = { .size = sizeof(res) };
	int r;

	if (!ctx || !device ||
	    (flags & ~(uint32_t)(KC_REKEY_JOURNAL | KC_REKEY_CHECKSUM | KC_REKEY_FORCE)) ||
	    !sized_ok(r_result, SIZED_V1(struct kc_firstboot_result, n_tokens)))
		return -EINVAL;
	r = firstboot(ctx, device, flags, fn, usrptr, &res);
	if (r < 0)
		return r;
	sized_put(r_result, &res, sizeof(res));
	return 0;
}
