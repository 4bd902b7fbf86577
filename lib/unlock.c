/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* kekcrypt tokens on a loaded volume: read, add, remove, unlock. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <libcryptsetup.h>

#include "internal.h"

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
	/* The first token is always tried (the deadline may have gone into getting ready). */
	if (r >= 0 && us->tried > 1 && ctx->deadline_ms && util_now_ms() >= ctx->deadline_ms)
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
				log_warn(ctx, "device '%s': skipped (not allowed by local "
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

void kc_set_retry(struct kc_ctx *ctx, unsigned seconds)
{
	if (!ctx)
		return;
	ctx->retry_s = seconds;
	ctx->retry_set = true;
}

/* The per-attempt deadline: the operation's timeout, but no later than the retry limit while
 * any of it is left (a first attempt past it still gets the whole timeout). */
static unsigned attempt_timeout_ms(struct kc_ctx *ctx, const struct retry *rt,
				   unsigned timeout_ms)
{
	uint64_t left = retry_left_ms(rt), t = timeout_ms ?: ctx->timeout_ms ?:
					      CTX_DEFAULT_TIMEOUT_MS;

	return (unsigned)(left && left < t ? left : t);
}

static void log_unlocked(struct kc_ctx *ctx, const char *device, const struct retry *rt,
			 const struct kc_unlock_result *res)
{
	struct timespec boot = { 0 };

	clock_gettime(CLOCK_BOOTTIME, &boot);
	log_info(ctx, "%s: token %d: unlocked after %u attempt(s), %ld.%01ld s since boot (%s).",
		 device, res->token_id, rt->attempts + 1, (long)boot.tv_sec,
		 boot.tv_nsec / 100000000, res->kek_uri);
}

int vol_unlock_retry(struct kc_ctx *ctx, struct crypt_device *cd, const char *device,
		     int token_id, unsigned timeout_ms, struct kc_secret **r_dek,
		     struct kc_unlock_result *r_result)
{
	static const struct retry_policy policy = { .base_ms = 1000, .cap_ms = 8000 };
	struct kc_unlock_result res = { .size = sizeof(res), .token_id = token_id };
	enum retry_verdict v = RETRY_AGAIN;
	struct retry rt;
	uint64_t wait = 0;
	char who[32] = "";
	int r;

	if (token_id >= 0)
		snprintf(who, sizeof(who), ": token %d", token_id);
	retry_init(&rt, &policy, ctx->retry_s == KC_RETRY_FOREVER ? 0 :
		   util_now_ms() + (uint64_t)ctx->retry_s * 1000);
	for (;;) {
		ctx_deadline_start(ctx, attempt_timeout_ms(ctx, &rt, timeout_ms));
		r = vol_unlock(ctx, cd, device, token_id, r_dek, &res);
		ctx_deadline_end(ctx);
		if (r >= 0 || !ctx->retry_s || !retry_transient(r))
			break;
		v = retry_next(&rt, RETRY_NO_HINT, &wait);
		if (v != RETRY_AGAIN)
			break;
		log_warn(ctx, "%s%s: attempt %u failed: %s; retrying in %.1f s (%s%.0f s left)",
			 device, who, rt.attempts, ctx->detail[0] ? ctx->detail : kc_strerror(r),
			 (double)wait / 1000, rt.deadline_ms == UINT64_MAX ? "no limit, " : "",
			 rt.deadline_ms == UINT64_MAX ? 0.0 : (double)retry_left_ms(&rt) / 1000);
		retry_sleep(wait);
	}
	/* retry_next() counted the last attempt when it stopped the retries. */
	audit_attempts(ctx, rt.attempts + (r >= 0 || v == RETRY_AGAIN));
	if (r >= 0)
		audit_token(ctx, res.token_id, res.kek_uri);
	if (r < 0 && v == RETRY_STOP_DEADLINE)
		ctx_detail_prefix(ctx, "not unlocked within the retry limit of %u s (%u attempts)",
				  ctx->retry_s, rt.attempts);
	if (r >= 0 && ctx->retry_set)
		log_unlocked(ctx, device, &rt, &res);
	if (r >= 0)
		sized_put(r_result, &res, sizeof(res));
	return r;
}

int kc_verify(struct kc_ctx *ctx, const char *device, int token_id,
	      struct kc_unlock_result *r_result)
{
	_cleanup_(kc_secret_freep) struct kc_secret *dek = NULL;
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	int r;

	if (!ctx || !device || !sized_ok(r_result, UNLOCK_RESULT_V1))
		return -EINVAL;
	ctx_detail_clear(ctx);
	r = vol_load(ctx, device, &cd);
	if (r < 0)
		return r;
	return vol_unlock_retry(ctx, cd, device, token_id, 0, &dek, r_result);
}

/* Token ID as it is stored, read without the KEK's policy (a token that local policy refuses
 * is still named); NULL when it does not parse. The detail is left clear. */
static struct token *token_peek(struct kc_ctx *ctx, struct crypt_device *cd, int id)
{
	struct token *t = NULL;
	const char *json;

	if (crypt_token_json_get(cd, id, &json) < 0 || token_parse(ctx, json, &t) < 0)
		t = NULL;
	ctx_detail_clear(ctx);
	return t;
}

/* One token, one attempt within its own deadline; US gathers the failures. */
static void check_token(struct kc_ctx *ctx, struct crypt_device *cd, int id,
			struct unlock_state *us, struct kc_token_check *c)
{
	_cleanup_(kc_secret_freep) struct kc_secret *dek = NULL;
	_cleanup_(token_freep) struct token *t = token_peek(ctx, cd, id);

	*c = (struct kc_token_check){ .size = sizeof(*c), .token_id = id,
				      .keyslot = t ? t->keyslot : -1 };
	if (t)
		snprintf(c->kek_uri, sizeof(c->kek_uri), "%s", t->uri);
	ctx_deadline_start(ctx, 0);
	c->result = unlock_one(ctx, cd, id, us, &dek, NULL);
	ctx_deadline_end(ctx);
	if (c->result < 0)
		snprintf(c->detail, sizeof(c->detail), "%s",
			 ctx->detail[0] ? ctx->detail : kc_strerror(c->result));
}

int kc_verify_all(struct kc_ctx *ctx, const char *device, struct kc_token_check *r_checks,
		  size_t max)
{
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	struct unlock_state us = { .best = -ENOENT };
	struct kc_token_check c;
	int r, n = 0, working = 0;

	if (!ctx || !device || (max && (!r_checks || !sized_ok(r_checks, TOKEN_CHECK_V1))))
		return -EINVAL;
	ctx_detail_clear(ctx);
	r = vol_load(ctx, device, &cd);
	if (r < 0)
		return r;
	for (int id = -1; (id = luks_token_next(cd, id, TOKEN_TYPE)) >= 0;) {
		check_token(ctx, cd, id, &us, &c);
		working += c.result == 0;
		if ((size_t)n++ < max)
			sized_put(sized_at(r_checks, (size_t)n - 1), &c, sizeof(c));
	}
	c = (struct kc_token_check){ .size = sizeof(c), .token_id = -1, .keyslot = -1 };
	for (size_t i = (size_t)n; i < max; i++)
		sized_put(sized_at(r_checks, i), &c, sizeof(c));
	if (!n)
		return ctx_fail(ctx, -ENOENT, "device '%s' has no kekcrypt token", device);
	if (!working)
		return ctx_fail(ctx, us.best, "device '%s': no token could unlock it: %s", device,
				us.summary);
	ctx_detail_clear(ctx);
	return n;
}

int vol_token_find_uri(struct kc_ctx *ctx, struct crypt_device *cd, const char *uri)
{
	int found = -ENOENT;

	for (int id = -1; found < 0 && (id = luks_token_next(cd, id, TOKEN_TYPE)) >= 0;) {
		_cleanup_(token_freep) struct token *t = token_peek(ctx, cd, id);

		if (t && !strcmp(t->uri, uri))
			found = id;
	}
	return found;
}

int kc_kek_find(struct kc_ctx *ctx, const char *device, const char *kek_uri)
{
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	int r;

	if (!ctx || !device || !kek_uri)
		return -EINVAL;
	ctx_detail_clear(ctx);
	r = vol_load(ctx, device, &cd);
	if (r < 0)
		return r;
	r = vol_token_find_uri(ctx, cd, kek_uri);
	if (r < 0)
		return ctx_fail(ctx, r, "device '%s' has no kekcrypt token for '%s'", device,
				kek_uri);
	return r;
}

static int kek_add(struct kc_ctx *ctx, const char *device, const char *kek_uri)
{
	_cleanup_(kc_secret_freep) struct kc_secret *dek = NULL;
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	_cleanup_(kek_closep) struct kc_kek *kek = NULL;
	_cleanup_(vol_unlockp) int lock = -1;
	struct kc_wrapped wrapped = { 0 };
	int existing, r;

	if (!ctx || !device || !kek_uri)
		return -EINVAL;
	ctx_detail_clear(ctx);
	r = kek_open(ctx, kek_uri, &kek);
	/* Only a URI its provider accepted: a refused one may hold a secret (a pin-value). */
	if (r >= 0)
		audit_kek(ctx, kek->uri);
	if (r >= 0)
		r = vol_load_for_write(ctx, device, 0, &cd, &lock);
	if (r >= 0 && (existing = vol_token_find_uri(ctx, cd, kek_uri)) >= 0)
		r = ctx_fail(ctx, -EEXIST, "device '%s' already has a token for %s (token %d)",
			     device, kek_uri, existing);
	if (r >= 0) {
		ctx_deadline_start(ctx, 0);
		r = vol_unlock(ctx, cd, device, -1, &dek, NULL);
		if (r < 0)
			ctx_detail_suffix(ctx, ENROL_AUTH_HINT);
		if (r >= 0)
			r = kek->ops->wrap(ctx, kek->state, dek, &wrapped);
		ctx_deadline_end(ctx);
	}
	if (r >= 0)
		r = vol_token_add(ctx, cd, kek, &wrapped, dek, 0);
	if (r < 0)
		ctx_detail_device(ctx, device);
	else
		log_dbg(ctx, "device '%s': token %d added for '%s'", device, r, kek_uri);
	wrapped_clear(&wrapped);
	return r;
}

int kc_kek_add(struct kc_ctx *ctx, const char *device, const char *kek_uri)
{
	struct audit a;
	int r;

	audit_begin(ctx, &a, "kek-add", device);
	r = kek_add(ctx, device, kek_uri);
	audit_token(ctx, r, NULL);
	return audit_end(ctx, &a, r);
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

/* true when keyslot SLOT is kekcrypt's own and so no path of its own: one opened by the
 * passphrase derived from the DEK (e.g. an orphan a crash left); without the DEK, the KDF
 * alone decides (luks_slot_is_ours()). */
static bool slot_is_derived(struct crypt_device *cd, int slot, const struct kc_secret *dek)
{
	_cleanup_(kc_secret_freep) struct kc_secret *pass = NULL;

	if (!luks_slot_is_ours(cd, slot))
		return false;
	if (!dek)
		return true;
	return vol_keyslot_passphrase(dek, crypt_get_uuid(cd), &pass) >= 0 &&
	       crypt_activate_by_passphrase(cd, NULL, slot, (const char *)pass->data, pass->len,
					    0) == slot;
}

int vol_usable_paths(struct kc_ctx *ctx, struct crypt_device *cd, uint64_t exclude,
		     const struct kc_secret *dek, int working)
{
	uint64_t ours = 0;
	int n = 0, ntok = crypt_token_max(CRYPT_LUKS2);

	for (int id = 0; id < ntok && id < 64; id++) {
		_cleanup_(token_freep) struct token *t = NULL;

		if (!luks_token_is(cd, id, TOKEN_TYPE))
			continue;
		ours |= 1ull << id;
		if (exclude & (1ull << id))
			continue;
		if (id == working ||
		    (dek && vol_token_read(ctx, cd, id, &t) >= 0 && token_unwraps(ctx, t, dek)))
			n++;
	}
	for (int s = 0; s < crypt_keyslot_max(CRYPT_LUKS2); s++) {
		if (luks_slot_bound(cd, s) && !luks_slot_held(cd, s, ours | exclude) &&
		    !slot_is_derived(cd, s, dek))
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

int vol_check_keyslot_removable(struct kc_ctx *ctx, struct crypt_device *cd,
				const char *device, int slot, const struct kc_secret *dek)
{
	int n;

	for (int t = 0; t < crypt_token_max(CRYPT_LUKS2); t++)
		if (crypt_token_is_assigned(cd, t, slot) == 0)
			return ctx_fail(ctx, -EBUSY, "device '%s': keyslot %d belongs to token %d "
					"(type '%s'); remove it with the tool that made it (e.g. "
					"'clevis luks unbind', 'systemd-cryptenroll --wipe-slot', "
					"'kekcrypt recovery remove')", device, slot, t,
					luks_token_type(cd, t) ?: "luks2");
	/* Every usable path, less this keyslot (bound, held by no token) unless it is a
	 * derived one and was not counted. */
	n = vol_usable_paths(ctx, cd, 0, dek, -1);
	if (luks_slot_bound(cd, slot) && !slot_is_derived(cd, slot, dek))
		n--;
	if (n > 0)
		return 0;
	return ctx_fail(ctx, -EBUSY, "device '%s': keyslot %d is the last way to unlock it that "
			"works now (no kekcrypt token unwraps the volume key, no other keyslot); "
			"it is kept", device, slot);
}

static int kek_remove(struct kc_ctx *ctx, const char *device, int token_id, bool force)
{
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	_cleanup_(token_freep) struct token *tok = NULL;
	_cleanup_(vol_unlockp) int lock = -1;
	char what[32];
	int r, slot = -1, ntok;

	if (!ctx || !device || token_id < 0)
		return -EINVAL;
	ctx_detail_clear(ctx);
	r = vol_load_for_write(ctx, device, 0, &cd, &lock);
	if (r < 0)
		return r;
	tok = token_peek(ctx, cd, token_id);
	if (tok)
		audit_kek(ctx, tok->uri);
	if (!luks_token_is(cd, token_id, TOKEN_TYPE) || token_id >= 64)
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

int kc_kek_remove(struct kc_ctx *ctx, const char *device, int token_id, bool force)
{
	struct audit a;

	audit_begin(ctx, &a, "kek-remove", device);
	audit_token(ctx, token_id, NULL);
	if (force)
		audit_field(ctx, "force", "yes");
	return audit_end(ctx, &a, kek_remove(ctx, device, token_id, force));
}
