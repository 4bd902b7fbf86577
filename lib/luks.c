/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What every part that changes a header asks of it, written once: the type of a token, the
 * keyslot a token holds, whether a keyslot is in use, held, kekcrypt's own, the last of the
 * data, and the minimal KDF kekcrypt gives the keyslots it derives from a DEK.
 */
#include <string.h>

#include <libcryptsetup.h>

#include "internal.h"

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

	r = crypt_init(&cd, device);
	if (r >= 0) {
		vol_log_to(ctx, cd);
		r = crypt_load(cd, CRYPT_LUKS2, NULL);
	}
	if (r < 0) {
		crypt_free(cd);
		return r;
	}
	*r_cd = cd;
	return 0;
}
