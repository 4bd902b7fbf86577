/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* kekcrypt tokens on a loaded volume: read, add, remove, unlock. */
#include <stdio.h>
#include <string.h>

#include <libcryptsetup.h>

#include "internal.h"

static bool token_is_ours(struct crypt_device *cd, int id)
{
	const char *type = NULL;
	crypt_token_info ti = crypt_token_status(cd, id, &type);

	return (ti == CRYPT_TOKEN_EXTERNAL || ti == CRYPT_TOKEN_EXTERNAL_UNKNOWN) && type &&
	       !strcmp(type, TOKEN_TYPE);
}

int vol_token_read(struct kc_ctx *ctx, struct crypt_device *cd, int id, struct token **r_token)
{
	struct token *t = NULL;
	const char *json;
	int r;

	if (!token_is_ours(cd, id))
		return -ENOENT;
	r = crypt_token_json_get(cd, id, &json);
	if (r < 0)
		return ctx_fail(ctx, -EINVAL, "token %d cannot be read", id);
	r = token_parse(ctx, json, &t);
	if (r < 0)
		return r;
	t->id = id;
	*r_token = t;
	return 0;
}

int vol_token_add(struct kc_ctx *ctx, struct crypt_device *cd, struct kc_kek *kek,
		  const struct kc_wrapped *wrapped, const struct kc_secret *dek)
{
	_cleanup_(kc_secret_freep) struct kc_secret *pass = NULL;
	_cleanup_(freep) char *json = NULL;
	struct crypt_pbkdf_type pbkdf = {
		.type = CRYPT_KDF_PBKDF2, .hash = "sha256", .iterations = 1000,
		.flags = CRYPT_PBKDF_NO_BENCHMARK,
	};
	struct token t = {
		.id = -1, .version = TOKEN_FORMAT_VERSION, .provider = (char *)kek->ops->name,
		.uri = kek->uri, .key_version = wrapped->key_version, .alg = (char *)wrapped->alg,
		.wrapped = wrapped->data, .wrapped_len = wrapped->len,
	};
	char created[32];
	int slot, r;

	util_utc_now(created);
	t.created = created;
	r = vol_keyslot_passphrase(dek, crypt_get_uuid(cd), &pass);
	if (r < 0)
		return r;
	r = crypt_set_pbkdf_type(cd, &pbkdf);
	if (r < 0)
		return ctx_fail(ctx, r, "cannot set the keyslot KDF");
	slot = crypt_keyslot_add_by_volume_key(cd, CRYPT_ANY_SLOT, (const char *)dek->data,
					       dek->len, (const char *)pass->data, pass->len);
	if (slot < 0)
		return ctx_fail(ctx, slot == -ENOMEM ? slot : -ENOSPC,
				"no room for a new keyslot (%s)", strerror(-slot));
	t.keyslot = slot;
	r = token_serialise(ctx, &t, &json);
	if (r >= 0) {
		r = crypt_token_json_set(cd, CRYPT_ANY_TOKEN, json);
		if (r < 0)
			r = ctx_fail(ctx, r == -ENOMEM ? r : -ENOSPC,
				     "cannot write the token (%s)", strerror(-r));
	}
	/* Roll back: a keyslot without its token is useless to us. */
	if (r < 0)
		crypt_keyslot_destroy(cd, slot);
	return r;
}

/* The error worth reporting when several tokens fail: lower rank wins. */
static int error_rank(int r)
{
	static const int order[] = { -EAGAIN, -ETIMEDOUT, -EPROTO, -EKEYREJECTED, -ENOANO,
				     -EPERM, -EBADE, -EBADMSG, -EACCES, -EINVAL,
				     -ENOTSUP, -EPROTONOSUPPORT, -ENOENT };

	for (size_t i = 0; i < ARRAY_SIZE(order); i++)
		if (order[i] == r)
			return (int)i;
	return (int)ARRAY_SIZE(order);
}

/* Unwrap through one token and check the DEK against the volume's digest. */
static int unlock_token(struct kc_ctx *ctx, struct crypt_device *cd, const struct token *t,
			struct kc_secret **r_dek)
{
	_cleanup_(kc_secret_freep) struct kc_secret *dek = NULL;
	_cleanup_(kek_closep) struct kc_kek *kek = NULL;
	int r;

	r = kek_open(ctx, t->uri, &kek);
	if (r < 0)
		return r;
	r = kek->ops->unwrap(ctx, kek->state, t->alg, t->key_version, t->wrapped, t->wrapped_len,
			     &dek);
	if (r < 0)
		return r;
	if (dek->len != (size_t)crypt_get_volume_key_size(cd) ||
	    crypt_volume_key_verify(cd, (const char *)dek->data, dek->len) < 0)
		return ctx_fail(ctx, -EBADMSG,
				"the unwrapped key does not match this volume (token copied from "
				"another volume?)");
	*r_dek = TAKE_PTR(dek);
	return 0;
}

/* Append "token N (URI): detail" to the summary of failures. */
static void summary_add(char *sum, size_t size, int id, const char *uri, const char *detail)
{
	size_t n = strlen(sum);

	snprintf(sum + n, size - n, "%stoken %d%s%s%s: %s", n ? "; " : "", id, uri ? " (" : "",
		 uri ?: "", uri ? ")" : "", detail);
}

struct unlock_state {
	int best;		/* error to report so far */
	int tried;
	char summary[sizeof(((struct kc_ctx *)0)->detail)];
	char refused[sizeof(((struct kc_ctx *)0)->detail)]; /* tokens local policy refused */
};

static int unlock_one(struct kc_ctx *ctx, struct crypt_device *cd, int id,
		      struct unlock_state *us, struct kc_secret **r_dek,
		      struct kc_unlock_result *res)
{
	_cleanup_(token_freep) struct token *t = NULL;
	int r;

	ctx_detail_clear(ctx);
	r = vol_token_read(ctx, cd, id, &t);
	if (r == -ENOENT && !ctx->detail[0])
		return r;	/* not a kekcrypt token: silently skipped */
	us->tried++;
	if (r >= 0 && ctx->deadline_ms && util_now_ms() >= ctx->deadline_ms)
		r = ctx_fail(ctx, -ETIMEDOUT, "not tried: the deadline passed");
	if (r >= 0)
		r = unlock_token(ctx, cd, t, r_dek);
	if (r >= 0) {
		log_dbg(ctx, "token %d ('%s', provider %s, %s): data key unwrapped and verified", id,
			t->uri, t->provider, t->alg);
		if (res) {
			res->token_id = id;
			res->keyslot = t->keyslot;
			snprintf(res->kek_uri, sizeof(res->kek_uri), "%s", t->uri);
		}
		return 0;
	}
	log_dbg(ctx, "token %d failed: %s", id, ctx->detail);
	summary_add(us->summary, sizeof(us->summary), id, t ? t->uri : NULL,
		    ctx->detail[0] ? ctx->detail : kc_strerror(r));
	if (r == -EACCES)
		summary_add(us->refused, sizeof(us->refused), id, t ? t->uri : NULL,
			    ctx->detail[0] ? ctx->detail : kc_strerror(r));
	if (error_rank(r) < error_rank(us->best))
		us->best = r;
	return r;
}

int vol_unlock(struct kc_ctx *ctx, struct crypt_device *cd, const char *device, int token_id,
	       struct kc_secret **r_dek, struct kc_unlock_result *r_result)
{
	struct unlock_state us = { .best = -ENOENT };
	int max = crypt_token_max(CRYPT_LUKS2);

	for (int id = token_id >= 0 ? token_id : 0; id < max; id++) {
		if (unlock_one(ctx, cd, id, &us, r_dek, r_result) == 0) {
			/* Unlocked all the same: a token that names what local policy refuses is
			 * a sign that someone wrote the header; say so. */
			if (us.refused[0])
				log_info(ctx, "warning: device '%s': skipped (not allowed by local "
					 "policy; was the header tampered with?): %s", device,
					 us.refused);
			return 0;
		}
		if (token_id >= 0)
			break;
	}
	if (!us.tried) {
		if (token_id >= 0)
			return ctx_fail(ctx, -ENOENT, "device '%s' has no kekcrypt token %d",
					device, token_id);
		return ctx_fail(ctx, -ENOENT, "device '%s' has no kekcrypt token", device);
	}
	/* With one token asked for, "device 'D': token N (URI): why" says it all. */
	return ctx_fail(ctx, us.best, "device '%s': %s%s", device,
			token_id >= 0 ? "" : "no token could unlock it: ", us.summary);
}

int kc_verify(struct kc_ctx *ctx, const char *device, int token_id,
	      struct kc_unlock_result *r_result)
{
	_cleanup_(kc_secret_freep) struct kc_secret *dek = NULL;
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	int r;

	if (!ctx || !device)
		return -EINVAL;
	ctx_detail_clear(ctx);
	r = vol_load(ctx, device, &cd);
	if (r < 0)
		return r;
	ctx_deadline_start(ctx, 0);
	r = vol_unlock(ctx, cd, device, token_id, &dek, r_result);
	ctx_deadline_end(ctx);
	return r;
}

int kc_kek_add(struct kc_ctx *ctx, const char *device, const char *kek_uri)
{
	_cleanup_(kc_secret_freep) struct kc_secret *dek = NULL;
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	_cleanup_(kek_closep) struct kc_kek *kek = NULL;
	_cleanup_(vol_unlockp) int lock = -1;
	struct kc_wrapped wrapped = { 0 };
	int r;

	if (!ctx || !device || !kek_uri)
		return -EINVAL;
	ctx_detail_clear(ctx);
	r = kek_open(ctx, kek_uri, &kek);
	if (r >= 0)
		r = vol_load_for_write(ctx, device, 0, &cd, &lock);
	if (r >= 0) {
		ctx_deadline_start(ctx, 0);
		r = vol_unlock(ctx, cd, device, -1, &dek, NULL);
		if (r >= 0)
			r = kek->ops->wrap(ctx, kek->state, dek, &wrapped);
		ctx_deadline_end(ctx);
	}
	if (r >= 0)
		r = vol_token_add(ctx, cd, kek, &wrapped, dek);
	if (r < 0)
		ctx_detail_device(ctx, device);
	else
		log_dbg(ctx, "device '%s': token %d added for '%s'", device, r, kek_uri);
	wrapped_clear(&wrapped);
	return r;
}

/* true when token T's KEK unwraps DEK now. */
static bool token_unwraps(struct kc_ctx *ctx, const struct token *t, const struct kc_secret *dek)
{
	_cleanup_(kc_secret_freep) struct kc_secret *got = NULL;
	_cleanup_(kek_closep) struct kc_kek *kek = NULL;

	return kek_open(ctx, t->uri, &kek) >= 0 &&
	       kek->ops->unwrap(ctx, kek->state, t->alg, t->key_version, t->wrapped,
				t->wrapped_len, &got) >= 0 &&
	       got->len == dek->len && !secret_memeq(got->data, dek->data, dek->len);
}

/* true when keyslot SLOT is one of kekcrypt's own (opened by the passphrase derived from the
 * DEK, e.g. an orphan a crash left), not a path of its own. kekcrypt gives its keyslots the
 * minimal KDF (vol_token_add()), so only those are tried (a person's passphrase or recovery
 * key has a costly one); without the DEK, the KDF alone decides. */
bool vol_slot_is_ours(struct crypt_device *cd, int slot)
{
	struct crypt_pbkdf_type pbkdf;

	return crypt_keyslot_get_pbkdf(cd, slot, &pbkdf) >= 0 && pbkdf.type &&
	       !strcmp(pbkdf.type, CRYPT_KDF_PBKDF2) && pbkdf.iterations <= 1000;
}

static bool slot_is_derived(struct crypt_device *cd, int slot, const struct kc_secret *dek)
{
	_cleanup_(kc_secret_freep) struct kc_secret *pass = NULL;

	if (!vol_slot_is_ours(cd, slot))
		return false;
	if (!dek)
		return true;
	return vol_keyslot_passphrase(dek, crypt_get_uuid(cd), &pass) >= 0 &&
	       crypt_activate_by_passphrase(cd, NULL, slot, (const char *)pass->data, pass->len,
					    0) == slot;
}

static bool slot_held_by(struct crypt_device *cd, int slot, uint64_t tokens)
{
	for (int t = 0; t < crypt_token_max(CRYPT_LUKS2) && t < 64; t++)
		if ((tokens & (1ull << t)) && crypt_token_is_assigned(cd, t, slot) == 0)
			return true;
	return false;
}

int vol_usable_paths(struct kc_ctx *ctx, struct crypt_device *cd, uint64_t exclude,
		     const struct kc_secret *dek, int working)
{
	uint64_t ours = 0;
	int n = 0, ntok = crypt_token_max(CRYPT_LUKS2);

	for (int id = 0; id < ntok && id < 64; id++) {
		_cleanup_(token_freep) struct token *t = NULL;

		if (!token_is_ours(cd, id))
			continue;
		ours |= 1ull << id;
		if (exclude & (1ull << id))
			continue;
		if (id == working ||
		    (dek && vol_token_read(ctx, cd, id, &t) >= 0 && token_unwraps(ctx, t, dek)))
			n++;
	}
	for (int s = 0; s < crypt_keyslot_max(CRYPT_LUKS2); s++) {
		crypt_keyslot_info ki = crypt_keyslot_status(cd, s);

		if ((ki == CRYPT_SLOT_ACTIVE || ki == CRYPT_SLOT_ACTIVE_LAST) &&
		    !slot_held_by(cd, s, ours | exclude) && !slot_is_derived(cd, s, dek))
			n++;
	}
	ctx_detail_clear(ctx);
	return n;
}

/* The volume key through any token (also the one about to go), for vol_usable_paths(); NULL
 * and WORKING -1 when none unwraps it now. */
static void current_dek(struct kc_ctx *ctx, struct crypt_device *cd, const char *device,
			struct kc_secret **r_dek, int *r_working)
{
	struct kc_unlock_result res = { .token_id = -1 };

	ctx_deadline_start(ctx, 0);
	if (vol_unlock(ctx, cd, device, -1, r_dek, &res) < 0)
		*r_dek = NULL;
	ctx_deadline_end(ctx);
	*r_working = *r_dek ? res.token_id : -1;
	ctx_detail_clear(ctx);
}

/* -EBUSY unless the volume keeps a usable unlock path without the tokens in EXCLUDE. */
int vol_check_paths_left(struct kc_ctx *ctx, struct crypt_device *cd, const char *device,
			 uint64_t exclude, const char *what)
{
	_cleanup_(kc_secret_freep) struct kc_secret *dek = NULL;
	int working;

	current_dek(ctx, cd, device, &dek, &working);
	if (working >= 0 && working < 64 && (exclude & (1ull << working)))
		working = -1;
	if (vol_usable_paths(ctx, cd, exclude, dek, working) > 0)
		return 0;
	return ctx_fail(ctx, -EBUSY, "device '%s': %s is the last way to unlock it that works "
			"now (other tokens or keyslots are unusable or only derived from it); "
			"add another KEK or a recovery key first, or use --force to make the "
			"volume unopenable", device, what);
}

int kc_kek_remove(struct kc_ctx *ctx, const char *device, int token_id, bool force)
{
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	_cleanup_(vol_unlockp) int lock = -1;
	char what[32];
	int r, slot = -1, ntok;

	if (!ctx || !device || token_id < 0)
		return -EINVAL;
	ctx_detail_clear(ctx);
	r = vol_load_for_write(ctx, device, 0, &cd, &lock);
	if (r < 0)
		return r;
	if (!token_is_ours(cd, token_id) || token_id >= 64)
		return ctx_fail(ctx, -ENOENT, "device '%s' has no kekcrypt token %d", device,
				token_id);
	snprintf(what, sizeof(what), "token %d", token_id);
	if (!force) {
		r = vol_check_paths_left(ctx, cd, device, 1ull << token_id, what);
		if (r < 0)
			return r;
	}
	ntok = crypt_token_max(CRYPT_LUKS2);
	for (int s = 0; s < crypt_keyslot_max(CRYPT_LUKS2) && slot < 0; s++)
		if (crypt_token_is_assigned(cd, token_id, s) == 0)
			slot = s;
	/* Token first: a crash in between leaves a harmless unbound keyslot, never a token
	 * pointing at a destroyed keyslot. */
	r = crypt_token_json_set(cd, token_id, NULL);
	if (r < 0)
		return ctx_fail(ctx, r, "device '%s': cannot remove token %d (%s)", device,
				token_id, strerror(-r));
	for (int t = 0; slot >= 0 && t < ntok; t++)
		if (crypt_token_is_assigned(cd, t, slot) == 0)
			slot = -1;	/* still used by another token */
	if (slot >= 0) {
		r = crypt_keyslot_destroy(cd, slot);
		if (r < 0)
			return ctx_fail(ctx, r, "device '%s': token %d removed but keyslot %d "
					"could not be (%s)", device, token_id, slot, strerror(-r));
	}
	return 0;
}
