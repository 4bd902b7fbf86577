/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What every part that changes a header asks of it, written once: the type of a token, the
 * keyslot a token holds, whether a keyslot is in use, held, kekcrypt's own, the last of the
 * data, and the minimal KDF kekcrypt gives the keyslots it derives from a DEK.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libcryptsetup.h>

#include "internal.h"

static void cryptsetup_log(int level, const char *msg, void *usrptr)
{
	struct kc_ctx *ctx = usrptr;
	size_t n = strlen(msg);

	/* libcryptsetup messages end in a newline; our log lines do not. */
	if (n && msg[n - 1] == '\n')
		n--;
	ctx_log(ctx, KC_LOG_DEBUG, "libcryptsetup: %.*s", (int)n, msg);
}

void luks_log_to(struct kc_ctx *ctx, struct crypt_device *cd)
{
	/* Without a callback libcryptsetup prints to stderr itself. */
	crypt_set_log_callback(cd, cryptsetup_log, ctx);
}

const char *luks_token_type(struct crypt_device *cd, int id)
{
	const char *type = NULL;
	crypt_token_info ti = crypt_token_status(cd, id, &type);

	if (ti != CRYPT_TOKEN_EXTERNAL && ti != CRYPT_TOKEN_EXTERNAL_UNKNOWN)
		return NULL;
	return type;
}

bool luks_token_is(struct crypt_device *cd, int id, const char *type)
{
	const char *t = luks_token_type(cd, id);

	return t && !strcmp(t, type);
}

int luks_token_free(struct crypt_device *cd, uint32_t avoid)
{
	for (int id = 0; id < crypt_token_max(CRYPT_LUKS2); id++)
		if (!(id < 32 && avoid & (1u << id)) &&
		    crypt_token_status(cd, id, NULL) == CRYPT_TOKEN_INACTIVE)
			return id;
	return -ENOSPC;
}

int luks_token_next(struct crypt_device *cd, int after, const char *type)
{
	for (int id = after + 1; id < crypt_token_max(CRYPT_LUKS2); id++)
		if (luks_token_is(cd, id, type))
			return id;
	return -1;
}

int luks_token_slot(struct crypt_device *cd, int id)
{
	for (int s = 0; s < crypt_keyslot_max(CRYPT_LUKS2); s++)
		if (crypt_token_is_assigned(cd, id, s) == 0)
			return s;
	return -1;
}

bool luks_slot_in_use(struct crypt_device *cd, int slot)
{
	crypt_keyslot_info ki = crypt_keyslot_status(cd, slot);

	return ki == CRYPT_SLOT_ACTIVE || ki == CRYPT_SLOT_ACTIVE_LAST || ki == CRYPT_SLOT_UNBOUND;
}

bool luks_slot_bound(struct crypt_device *cd, int slot)
{
	crypt_keyslot_info ki = crypt_keyslot_status(cd, slot);

	return ki == CRYPT_SLOT_ACTIVE || ki == CRYPT_SLOT_ACTIVE_LAST;
}

bool luks_slot_held(struct crypt_device *cd, int slot, uint64_t tokens)
{
	for (int t = 0; t < crypt_token_max(CRYPT_LUKS2) && t < 64; t++)
		if ((tokens & (1ull << t)) && crypt_token_is_assigned(cd, t, slot) == 0)
			return true;
	return false;
}

bool luks_slot_has_token(struct crypt_device *cd, int slot)
{
	return luks_slot_held(cd, slot, ~0ull);
}

bool luks_last_bound_slot(struct crypt_device *cd, int slot)
{
	if (!luks_slot_bound(cd, slot))
		return false;
	for (int s = 0; s < crypt_keyslot_max(CRYPT_LUKS2); s++)
		if (s != slot && luks_slot_bound(cd, s))
			return false;
	return true;
}

bool luks_slot_is_ours(struct crypt_device *cd, int slot)
{
	struct crypt_pbkdf_type pbkdf;

	return crypt_keyslot_get_pbkdf(cd, slot, &pbkdf) >= 0 && pbkdf.type &&
	       !strcmp(pbkdf.type, CRYPT_KDF_PBKDF2) && pbkdf.iterations <= LUKS_MINIMAL_ITERATIONS;
}

int luks_minimal_pbkdf(struct kc_ctx *ctx, struct crypt_device *cd)
{
	/* The passphrase is derived from a random DEK: a slow KDF adds nothing but time. */
	const struct crypt_pbkdf_type pbkdf = {
		.type = CRYPT_KDF_PBKDF2, .hash = "sha256", .iterations = LUKS_MINIMAL_ITERATIONS,
		.flags = CRYPT_PBKDF_NO_BENCHMARK,
	};
	int r = crypt_set_pbkdf_type(cd, &pbkdf);

	return r < 0 ? ctx_fail(ctx, r, "cannot set the keyslot KDF") : 0;
}

int luks_load_raw(struct kc_ctx *ctx, const char *device, struct crypt_device **r_cd)
{
	struct crypt_device *cd = NULL;
	int r;

	r = vol_crypt_init(ctx, device, &cd);
	if (r >= 0)
		r = crypt_load(cd, CRYPT_LUKS2, NULL);
	if (r < 0) {
		crypt_free(cd);
		return r;
	}
	*r_cd = cd;
	return 0;
}

int luks_load_state(struct kc_ctx *ctx, const char *device, struct crypt_device **r_cd)
{
	int r = luks_load_raw(ctx, device, r_cd);

	if (r == -EACCES || r == -EPERM)
		return ctx_fail(ctx, -EACCES, "device '%s': permission denied", device);
	return r < 0 ? vol_not_luks2(ctx, device) : 0;
}

int luks_token_remove(struct kc_ctx *ctx, struct crypt_device *cd, int id)
{
	int r = crypt_token_json_set(cd, id, NULL);

	if (r < 0)
		return ctx_fail(ctx, -EIO, "cannot remove token %d (%s)", id, strerror(-r));
	util_crash_point();
	return 0;
}

/* Token SRC with KEYS set to VALUES, written as token DST: one header write. */
static int token_write_as(struct kc_ctx *ctx, struct crypt_device *cd, int src, int dst,
			  const char *const *keys, const char *const *values, size_t n)
{
	_cleanup_(freep) char *out = NULL;
	const char *json;
	int r;

	r = crypt_token_json_get(cd, src, &json);
	if (r >= 0)
		r = token_json_set(json, keys, values, n, &out);
	if (r >= 0)
		r = crypt_token_json_set(cd, dst, out);
	if (r < 0)
		return ctx_fail(ctx, r == -ENOMEM ? r : -EIO, "cannot write token %d (%s)", dst,
				strerror(-r));
	util_crash_point();
	return 0;
}

int luks_token_mark(struct kc_ctx *ctx, struct crypt_device *cd, int id, const char *const *keys,
		    const char *const *values, size_t n)
{
	return token_write_as(ctx, cd, id, id, keys, values, n);
}

bool luks_rotation_mark(struct crypt_device *cd, int id, struct kc_rotation_pending *r_mark)
{
	char from[16], state[16];
	const char *json;
	unsigned long v;
	char *end;

	if (!luks_token_is(cd, id, TOKEN_TYPE) || crypt_token_json_get(cd, id, &json) < 0 ||
	    !token_json_field(json, TOKEN_MARK_ROTATING_FROM, from, sizeof(from)))
		return false;
	v = strtoul(from, &end, 10);
	if (from[0] < '0' || from[0] > '9' || *end || v >= (unsigned long)crypt_token_max(CRYPT_LUKS2))
		return false;
	*r_mark = (struct kc_rotation_pending){ .size = sizeof(*r_mark), .token_id = id };
	r_mark->from_token_id = (int)v;
	r_mark->verified = token_json_field(json, TOKEN_MARK_ROTATION_STATE, state, sizeof(state)) &&
			   !strcmp(state, TOKEN_ROTATION_VERIFIED);
	return true;
}

int luks_rotation_mark_set(struct kc_ctx *ctx, struct crypt_device *cd, int id, int from,
			   const char *state)
{
	static const char *const keys[] = { TOKEN_MARK_ROTATING_FROM, TOKEN_MARK_ROTATION_STATE };
	const char *values[2] = { NULL, NULL };
	char buf[16];

	if (from >= 0) {
		snprintf(buf, sizeof(buf), "%d", from);
		values[0] = buf;
		values[1] = state;
	}
	return luks_token_mark(ctx, cd, id, keys, values, 2);
}

int luks_rotation_move(struct kc_ctx *ctx, struct crypt_device *cd, int from, int to)
{
	static const char *const keys[] = { TOKEN_MARK_ROTATING_FROM, TOKEN_MARK_ROTATION_STATE };
	static const char *const none[] = { NULL, NULL };
	int r;

	/* The unmarked copy replaces TO in one write; FROM, still marked, goes next. */
	r = token_write_as(ctx, cd, from, to, keys, none, 2);
	if (r >= 0)
		r = luks_token_remove(ctx, cd, from);
	return r;
}

bool luks_rekey_marked(struct crypt_device *cd, int id)
{
	const char *json;
	char v[8];

	return luks_token_is(cd, id, TOKEN_TYPE) && crypt_token_json_get(cd, id, &json) >= 0 &&
	       token_json_field(json, TOKEN_MARK_REKEY, v, sizeof(v)) && !strcmp(v, TOKEN_REKEY_NEW);
}
