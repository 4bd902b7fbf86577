/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * KEK rotation (`kek rotate`): rewrap a token's DEK under the KMS's current version of the
 * same key, or move it to another KEK. Header only: the DEK and the data do not change.
 *
 * The new token shares the old token's keyslot. The keyslot passphrase is derived from the
 * DEK and the volume UUID only (vol_keyslot_passphrase()), which a rotation does not change,
 * so a fresh keyslot would hold the same secret under a new salt. Sharing it means that a
 * rotation never creates or destroys a keyslot, so it can never leave an orphan one behind.
 *
 * The header writes of one token's rotation, old token O, new token N (a free id while the
 * rotation runs; when it ends, the new token has O's id, so crypttab's token=O and scripts that
 * stored the id still name the same KEK slot):
 *
 *   W1  add N: O's fields with the new KEK's wrapped key, bound to O's keyslot, plus
 *       "kekcrypt-rotating-from": "O" and "kekcrypt-rotation-state": "prepared";
 *         then re-read the header from disk, unwrap through N, check the DEK against the
 *         volume digest and N's keyslot; if that fails, remove N again (rollback);
 *   W2  N: "kekcrypt-rotation-state": "verified";
 *   W3  write N's content without the marks as token O, replacing the old token in place;
 *   W4  remove N (committed).
 *
 * Invariants: O's old content is replaced only after a write recording that N was verified,
 * so at every instant the old token or a verified new one opens the volume; until W4, N
 * carries the mark, so the header never holds two unmarked tokens of one rotation. W3 is
 * idempotent: after it, token O holds either the old or the new content, and writing N's
 * content there again is what completing the rotation does in both cases.
 *
 * Recovery after a crash (rotate_recover(), from vol_load_for_write(), i.e. every command that
 * writes the header, under the device's lock), for each kekcrypt token N marked
 * "kekcrypt-rotating-from": "O":
 *   - state "verified": W3 and W4 (O still there, old or new, or gone: an earlier kekcrypt
 *     removed O and kept N's id);
 *   - otherwise, O present: remove N (rollback: the rotation must be run again);
 *   - otherwise (O gone, which kekcrypt never does to an unverified N): N is the only copy
 *     left: W3 and W4 too, moving it to O's id.
 *   In the last two moves, if id O holds a token that is not an unmarked kekcrypt token (a
 *   header someone else wrote), it is left alone and N only loses its marks, keeping its id.
 * It decides from the header alone and needs no KMS. It runs under the device's writer lock
 * (vol_lock()), so it never touches a rotation running in another process. Read verbs never
 * run it: they leave the header as it is, and `dump` shows the state
 * (kc_kek_rotation_pending()); a header anyone can write must not make a reader write.
 *
 * Test hook: KC_TEST_CRASH_AT=N (util_crash_point()) makes the process raise SIGKILL right
 * after the Nth header write of the rotation and recovery code in this file
 * (tests/host/rotate-crash.sh). Unset, it has no effect.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#include <libcryptsetup.h>

#include "internal.h"


/* ---------------------------------------------------------------------------------------- */
/* Rotation                                                                                 */

struct rotation {
	struct crypt_device *cd;
	const char *device;
	struct token *old;
	struct kc_kek *kek;		/* the new KEK */
	struct kc_wrapped wrapped;	/* the DEK under it */
	bool dry_run;
};

/* Wrap the DEK under the new KEK: Vault rewraps without the DEK leaving the KMS when the
 * key stays the same; otherwise unwrap through the old token and wrap. */
static int rotation_wrap(struct kc_ctx *ctx, struct rotation *rot)
{
	_cleanup_(kc_secret_freep) struct kc_secret *dek = NULL;
	bool same_key = !strcmp(rot->kek->uri, rot->old->uri);
	int r;

	if (same_key && rot->kek->ops->rewrap && !rot->dry_run)
		return rot->kek->ops->rewrap(ctx, rot->kek->state, rot->old->wrapped,
					     rot->old->wrapped_len, &rot->wrapped);
	r = vol_unlock(ctx, rot->cd, rot->device, rot->old->id, &dek, NULL);
	if (r < 0)
		return r;
	r = rot->kek->ops->wrap(ctx, rot->kek->state, dek, &rot->wrapped);
	if (r < 0)
		ctx_detail_prefix(ctx, "new KEK '%s'", rot->kek->uri);
	return r;
}

/* Unwrap TOKEN through KEK and check the DEK against CD's digest and the token's keyslot. */
static int check_token(struct kc_ctx *ctx, struct crypt_device *cd, struct kc_kek *kek,
		       const struct token *t)
{
	_cleanup_(kc_secret_freep) struct kc_secret *dek = NULL, *pass = NULL;
	int r;

	r = kek->ops->unwrap(ctx, kek->state, t->alg, t->key_version, t->wrapped,
			     t->wrapped_len, &dek);
	if (r < 0)
		return r;
	if (dek->len != (size_t)crypt_get_volume_key_size(cd) ||
	    crypt_volume_key_verify(cd, (const char *)dek->data, dek->len) < 0)
		return ctx_fail(ctx, -EBADMSG, "the key unwrapped through the new KEK does not "
				"match the volume");
	if (t->keyslot < 0)
		return 0;
	r = vol_keyslot_passphrase(dek, crypt_get_uuid(cd), &pass);
	if (r >= 0 && crypt_activate_by_passphrase(cd, NULL, t->keyslot, (const char *)pass->data,
						   pass->len, 0) != t->keyslot)
		r = ctx_fail(ctx, -EBADMSG, "keyslot %d does not open with the new token",
			     t->keyslot);
	return r;
}

/* Read token ID back from the device itself (a fresh handle) and check it. */
static int verify_on_disk(struct kc_ctx *ctx, const char *device, struct kc_kek *kek, int id)
{
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	_cleanup_(token_freep) struct token *t = NULL;
	int r;

	r = luks_load_raw(ctx, device, &cd);
	if (r < 0)
		return ctx_fail(ctx, -EIO, "cannot read the header back (%s)", strerror(-r));
	r = vol_token_read(ctx, cd, id, &t);
	if (r == -ENOENT)
		r = ctx_fail(ctx, -EIO, "the new token %d is not on the disk", id);
	if (r >= 0)
		r = check_token(ctx, cd, kek, t);
	return r;
}

/* The new token's JSON: the old one's keyslot, the new KEK's wrapped key, the mark. */
static int new_token_json(struct kc_ctx *ctx, const struct rotation *rot, char **r_json)
{
	_cleanup_(freep) char *plain = NULL;
	char created[32];
	struct token t = {
		.id = -1, .keyslot = rot->old->keyslot, .version = TOKEN_FORMAT_VERSION,
		.provider = (char *)rot->kek->ops->name, .uri = rot->kek->uri,
		.key_version = rot->wrapped.key_version, .alg = (char *)rot->wrapped.alg,
		.wrapped = rot->wrapped.data, .wrapped_len = rot->wrapped.len, .created = created,
	};
	int r;

	util_utc_now(created);
	r = token_serialise(ctx, &t, &plain);
	if (r >= 0) {
		static const char *const keys[] = { TOKEN_MARK_ROTATING_FROM,
						    TOKEN_MARK_ROTATION_STATE };
		char from[16];
		const char *values[] = { from, TOKEN_ROTATION_PREPARED };

		snprintf(from, sizeof(from), "%d", rot->old->id);
		r = token_json_set(plain, keys, values, 2, r_json);
	}
	return r;
}

/* The caller's RES (size-versioned; NULL: none). */
static void fill_result(const struct rotation *rot, int new_id, struct kc_rotate_result *r_res)
{
	struct kc_rotate_result full = { .size = sizeof(full) }, *res = &full;

	if (!r_res)
		return;
	res->old_token = rot->old->id;
	res->new_token = new_id;
	snprintf(res->old_kek_uri, sizeof(res->old_kek_uri), "%s", rot->old->uri);
	snprintf(res->new_kek_uri, sizeof(res->new_kek_uri), "%s", rot->kek->uri);
	snprintf(res->old_key_version, sizeof(res->old_key_version), "%s",
		 rot->old->key_version ?: "");
	snprintf(res->new_key_version, sizeof(res->new_key_version), "%s",
		 rot->wrapped.key_version ?: "");
	sized_put(r_res, res, sizeof(*res));
}

/* W1 .. W4 of the state machine, after the new wrapped key is ready; returns the token's id
 * (O's, kept). */
static int rotation_commit(struct kc_ctx *ctx, struct rotation *rot)
{
	_cleanup_(freep) char *json = NULL;
	int id, r;

	r = new_token_json(ctx, rot, &json);
	if (r < 0)
		return r;
	id = crypt_token_json_set(rot->cd, CRYPT_ANY_TOKEN, json);
	if (id < 0)
		return ctx_fail(ctx, id == -ENOMEM ? id : -ENOSPC, "the LUKS2 header has no room "
				"for another token (%s)", strerror(-id));
	util_crash_point();
	r = verify_on_disk(ctx, rot->device, rot->kek, id);
	if (r < 0) {
		ctx_detail_prefix(ctx, "the new token %d failed verification and was removed; "
				  "token %d is left in place", id, rot->old->id);
		(void)luks_token_remove(ctx, rot->cd, id);
		return r;
	}
	r = luks_rotation_mark_set(ctx, rot->cd, id, rot->old->id, TOKEN_ROTATION_VERIFIED);
	if (r >= 0)
		r = luks_rotation_move(ctx, rot->cd, id, rot->old->id);
	return r < 0 ? r : rot->old->id;
}

/* Check the new wrapped key in memory only (dry run): it unwraps to the volume's DEK. */
static int rotation_dry_check(struct kc_ctx *ctx, struct rotation *rot)
{
	struct token t = *rot->old;

	t.keyslot = -1;
	t.uri = rot->kek->uri;
	t.alg = rot->wrapped.alg;
	t.key_version = rot->wrapped.key_version;
	t.wrapped = rot->wrapped.data;
	t.wrapped_len = rot->wrapped.len;
	return check_token(ctx, rot->cd, rot->kek, &t);
}

static int rotate_one(struct kc_ctx *ctx, struct crypt_device *cd, const char *device, int id,
		      const char *to_uri, uint32_t flags, struct kc_rotate_result *res)
{
	_cleanup_(token_freep) struct token *old = NULL;
	_cleanup_(kek_closep) struct kc_kek *kek = NULL;
	_cleanup_(freep) char *uri = NULL;
	struct rotation rot = { .cd = cd, .device = device, .dry_run = flags & KC_ROTATE_DRY_RUN };
	int r;

	ctx_detail_clear(ctx);
	r = vol_token_read(ctx, cd, id, &old);
	if (r == -ENOENT)
		return ctx_fail(ctx, -ENOENT, "no kekcrypt token %d", id);
	/* Without --to: the KMS's current version of the same key (the provider says how). */
	if (r >= 0 && !to_uri) {
		r = kek_open(ctx, old->uri, &kek);
		if (r >= 0)
			r = kek_current_uri(ctx, kek, &uri);
		kek_closep(&kek);
	}
	if (r >= 0)
		r = kek_open(ctx, to_uri ?: uri, &kek);
	if (r < 0 && old)
		ctx_detail_prefix(ctx, "token %d ('%s') not rotated, left in place", id,
				  old->uri);
	if (r < 0)
		return r;
	rot.old = old;
	rot.kek = kek;
	ctx_deadline_start(ctx, 0);
	r = rotation_wrap(ctx, &rot);
	if (r >= 0 && rot.dry_run)
		r = rotation_dry_check(ctx, &rot);
	if (r >= 0 && !rot.dry_run)
		r = rotation_commit(ctx, &rot);
	ctx_deadline_end(ctx);
	if (r >= 0)
		fill_result(&rot, rot.dry_run ? -1 : r, res);
	if (r >= 0) {
		audit_token(ctx, id, kek->uri);
		audit_from(ctx, old->uri);
	}
	if (r < 0)
		ctx_detail_prefix(ctx, "token %d ('%s') not rotated, left in place", id,
				  old->uri);
	wrapped_clear(&rot.wrapped);
	return r;
}

/* The tokens to rotate: TOKEN_ID, or every kekcrypt token (ONLY: there must be one). A
 * token still marked by an interrupted rotation (a dry run reads the header as it is) is
 * not one to rotate. */
static int rotation_targets(struct kc_ctx *ctx, struct crypt_device *cd, const char *device,
			    int token_id, bool only, int *ids, size_t *r_n)
{
	struct kc_rotation_pending m;
	size_t n = 0;

	for (int id = 0; id < crypt_token_max(CRYPT_LUKS2); id++)
		if (luks_token_is(cd, id, TOKEN_TYPE) && (token_id < 0 || id == token_id) &&
		    !luks_rotation_mark(cd, id, &m))
			ids[n++] = id;
	if (!n && token_id >= 0)
		return ctx_fail(ctx, -ENOENT, "device '%s' has no kekcrypt token %d", device,
				token_id);
	if (!n)
		return ctx_fail(ctx, -ENOENT, "device '%s' has no kekcrypt token", device);
	if (only && n > 1)
		return ctx_fail(ctx, -ENOTUNIQ, "device '%s' has %zu kekcrypt tokens: name one "
				"with --token ID, or use --all", device, n);
	*r_n = n;
	return 0;
}

static int kek_rotate(struct kc_ctx *ctx, const char *device, int token_id, const char *to_uri,
		      uint32_t flags, struct kc_rotate_result *r_results, size_t n_results)
{
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	_cleanup_(vol_unlockp) int fd = -1;
	int ids[64];
	size_t n = 0, done = 0;
	char sum[sizeof(ctx->detail)] = "";
	int r;

	if (!ctx || !device || (flags & ~(uint32_t)(KC_ROTATE_DRY_RUN | KC_ROTATE_ONLY_TOKEN)) ||
	    (n_results && (!r_results ||
			   !sized_ok(r_results, SIZED_V1(struct kc_rotate_result,
							  new_key_version)))) ||
	    (token_id < 0 && to_uri && !(flags & KC_ROTATE_ONLY_TOKEN)) ||
	    (token_id >= 0 && (flags & KC_ROTATE_ONLY_TOKEN)))
		return -EINVAL;
	ctx_detail_clear(ctx);
	/* A dry run writes nothing: it reads the header as it is. */
	if (flags & KC_ROTATE_DRY_RUN)
		r = vol_load(ctx, device, &cd);
	else
		r = vol_load_for_write(ctx, device, 0, &cd, &fd);
	if (r >= 0)
		r = rotation_targets(ctx, cd, device, token_id, flags & KC_ROTATE_ONLY_TOKEN, ids,
				     &n);
	for (size_t i = 0; r >= 0 && i < n; i++) {
		r = rotate_one(ctx, cd, device, ids[i], to_uri, flags,
			       i < n_results ? sized_at(r_results, i) : NULL);
		if (r >= 0) {
			done++;
			snprintf(sum + strlen(sum), sizeof(sum) - strlen(sum), "%stoken %d",
				 strlen(sum) ? ", " : "", ids[i]);
		}
	}
	if (r < 0 && done)
		ctx_detail_prefix(ctx, "rotated %s; then", sum);
	if (r < 0)
		ctx_detail_device(ctx, device);
	return r < 0 ? r : (int)done;
}

int kc_kek_rotate(struct kc_ctx *ctx, const char *device, int token_id, const char *to_uri,
		  uint32_t flags, struct kc_rotate_result *r_results, size_t n_results)
{
	struct audit a;

	/* A dry run changes nothing: no event. */
	if (flags & KC_ROTATE_DRY_RUN)
		return kek_rotate(ctx, device, token_id, to_uri, flags, r_results, n_results);
	audit_begin(ctx, &a, "kek-rotate", device);
	return audit_end(ctx, &a, kek_rotate(ctx, device, token_id, to_uri, flags, r_results,
					     n_results));
}

int kc_kek_rotation_pending(struct kc_ctx *ctx, const char *device,
			    struct kc_rotation_pending *r_pending, size_t max)
{
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	struct kc_rotation_pending m;
	int r, n = 0;

	if (!ctx || !device || (max && (!r_pending ||
					!sized_ok(r_pending, SIZED_V1(struct kc_rotation_pending,
								      verified)))))
		return -EINVAL;
	ctx_detail_clear(ctx);
	r = luks_load_state(ctx, device, &cd);
	if (r < 0)
		return r;
	for (int id = 0; id < crypt_token_max(CRYPT_LUKS2); id++)
		if (luks_rotation_mark(cd, id, &m) && (size_t)n++ < max)
			sized_put(sized_at(r_pending, (size_t)n - 1), &m, sizeof(m));
	return n;
}

/* ---------------------------------------------------------------------------------------- */
/* Picking up new KEK versions (kek rotate --if-newer)                                      */

#define REFRESH_RESULT_V1 SIZED_V1(struct kc_refresh_result, detail)

/* The KMS's current version of token T's key in R_VERSION (SIZE bytes), read only; "" when
 * there is nothing to pick up: the provider has no versions (decided from the token alone,
 * so a file: or pkcs11: KEK is not even opened), the URI pins a version (moving it off that
 * version is a plain kek rotate's business), or the KMS did not say. */
static int current_version(struct kc_ctx *ctx, const struct token *t, char *r_version,
			   size_t size)
{
	const struct kc_provider_ops *ops = provider_find(t->provider);
	_cleanup_(kek_closep) struct kc_kek *kek = NULL;
	_cleanup_(freep) char *uri = NULL;
	struct kek_info info = { 0 };
	int r;

	r_version[0] = '\0';
	if (!ops || !ops->inspect)
		return 0;
	r = kek_open(ctx, t->uri, &kek);
	if (r >= 0)
		r = kek_current_uri(ctx, kek, &uri);
	if (r < 0 || strcmp(uri, t->uri))
		return r;
	ctx_deadline_start(ctx, 0);
	r = kek->ops->inspect(ctx, kek->state, &info);
	ctx_deadline_end(ctx);
	if (r >= 0)
		snprintf(r_version, size, "%s", info.current_version);
	return r;
}

/* Rotate token ID to the current version, as its own audited change. */
static int refresh_rotate(struct kc_ctx *ctx, struct crypt_device *cd, const char *device,
			  int id, struct kc_refresh_result *res)
{
	struct kc_rotate_result rot = { .size = sizeof(rot) };
	struct audit a;
	int r;

	audit_begin(ctx, &a, "kek-rotate", device);
	audit_uuid(ctx, crypt_get_uuid(cd));
	audit_field(ctx, "trigger", "if-newer");
	r = audit_end(ctx, &a, rotate_one(ctx, cd, device, id, NULL, 0, &rot));
	if (r >= 0)
		snprintf(res->new_key_version, sizeof(res->new_key_version), "%s",
			 rot.new_key_version);
	return r;
}

/* One token: ask, compare, rotate when newer; RES says what happened. */
static void refresh_one(struct kc_ctx *ctx, struct crypt_device *cd, const char *device, int id,
			struct kc_refresh_result *res)
{
	_cleanup_(token_freep) struct token *t = NULL;
	int r;

	*res = (struct kc_refresh_result){ .size = sizeof(*res), .token_id = id,
					   .state = KC_REFRESH_FAILED };
	ctx_detail_clear(ctx);
	r = vol_token_read(ctx, cd, id, &t);
	if (r >= 0) {
		snprintf(res->kek_uri, sizeof(res->kek_uri), "%s", t->uri);
		snprintf(res->old_key_version, sizeof(res->old_key_version), "%s",
			 t->key_version ?: "");
		r = current_version(ctx, t, res->new_key_version, sizeof(res->new_key_version));
	}
	if (r >= 0 && !res->new_key_version[0])
		res->state = KC_REFRESH_UNVERSIONED;
	else if (r >= 0 && !strcmp(res->new_key_version, res->old_key_version))
		res->state = KC_REFRESH_CURRENT;
	else if (r >= 0)
		r = refresh_rotate(ctx, cd, device, id, res);
	if (r >= 0 && res->state == KC_REFRESH_FAILED)
		res->state = KC_REFRESH_ROTATED;
	res->result = r < 0 ? r : 0;
	if (r < 0)
		snprintf(res->detail, sizeof(res->detail), "%s",
			 ctx->detail[0] ? ctx->detail : kc_strerror(r));
}

int kc_kek_refresh(struct kc_ctx *ctx, const char *device, int token_id,
		   struct kc_refresh_result *r_results, size_t max)
{
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	_cleanup_(vol_unlockp) int fd = -1;
	struct kc_refresh_result res, first = { .result = 0 };
	int ids[64];
	size_t n = 0;
	int r;

	if (!ctx || !device || (max && (!r_results || !sized_ok(r_results, REFRESH_RESULT_V1))))
		return -EINVAL;
	ctx_detail_clear(ctx);
	r = vol_load_for_write(ctx, device, 0, &cd, &fd);
	if (r >= 0)
		r = rotation_targets(ctx, cd, device, token_id, false, ids, &n);
	for (size_t i = 0; r >= 0 && i < n; i++) {
		refresh_one(ctx, cd, device, ids[i], &res);
		if (res.result < 0 && !first.result)
			first = res;
		if (i < max)
			sized_put(sized_at(r_results, i), &res, sizeof(res));
	}
	res = (struct kc_refresh_result){ .size = sizeof(res), .token_id = -1 };
	for (size_t i = n; i < max; i++)
		sized_put(sized_at(r_results, i), &res, sizeof(res));
	if (r >= 0 && first.result)
		r = ctx_fail(ctx, first.result, "token %d not moved to its KMS's current version: "
			     "%s", first.token_id, first.detail);
	else if (r >= 0)
		ctx_detail_clear(ctx);
	if (r < 0)
		ctx_detail_device(ctx, device);
	return r < 0 ? r : (int)n;
}
