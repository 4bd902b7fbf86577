/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Recovery keys: a way to open a volume when no KMS or HSM can be reached.
 *
 * A recovery key is 256 random bits (RAND_priv_bytes) written as 64 modhex characters in 8
 * groups of 8, e.g. "cbdefghi-jklnrtuv-...". Modhex ("cbdefghijklnrtuv") types the same on
 * QWERTY, AZERTY, QWERTZ and Dvorak keyboards, which matters at a boot prompt.
 *
 * A person types it at prompts kekcrypt does not control (systemd-cryptsetup's, cryptsetup's),
 * which try the typed text as it is. So one recovery key has one keyslot per form a person
 * is likely to type: as printed (lower case, with the dashes), lower case without dashes,
 * UPPER CASE with dashes, UPPER CASE without dashes (RECOVERY_FORMS, in that order, added in
 * that order so that the printed form has the lowest of the four keyslots). kekcrypt itself
 * (open --recovery, recovery verify, keyscript-normalise for the initramfs-tools keyscript)
 * accepts any case, even mixed, with any or no separators (dashes, blanks), and tries the
 * printed form; the other forms only on a token that lost keyslots (an interrupted removal
 * destroys them in ascending order, the printed form's first).
 *
 * KDF: PBKDF2-SHA256 with a fixed RECOVERY_ITERATIONS, no benchmark. The key is 256 random
 * bits: no KDF cost makes guessing it any harder than it already is, while a benchmarked
 * argon2id (seconds and up to 1 GiB, measured on the host that added the key) can leave a
 * small VM unable to open it, which is when it is needed. Four keyslots of PBKDF2 cost a
 * fraction of a second to try, and no memory (kekcrypt(8), RECOVERY KEYS, has the numbers).
 *
 * The keyslots are marked by one LUKS2 token that holds no secret:
 *
 *   {"type": "kekcrypt-recovery", "keyslots": ["1", "2", "3", "4"],
 *    "kekcrypt-recovery-version": "2", "kekcrypt-recovery-created": "2026-11-22T22:00:00Z"}
 *
 * so that `recovery remove` finds them and `dump` shows them as one key. Version "1" tokens
 * (one keyslot, the printed form, argon2id) are read the same way: everything here goes
 * through the keyslots the token lists, however many. Adding writes every keyslot, then the
 * token (a failure destroys the keyslots already added). Removal destroys the keyslots first
 * (libcryptsetup unbinds each from the token), then the token: a crash in between leaves a
 * recovery token with fewer or no keyslots, which `recovery remove` also removes, never an
 * unmarked key.
 *
 * The key exists only in kc_secret memory and in the caller's one-time output.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>
#include <libcryptsetup.h>
#include <openssl/rand.h>

#include "internal.h"

#define RECOVERY_VERSION "2"
#define RECOVERY_BYTES 32
#define GROUPS 8
#define GROUP_LEN 8
#define KEY_CHARS (2 * RECOVERY_BYTES)			/* 64 */
#define KEY_TEXT_LEN (KEY_CHARS + GROUPS - 1)		/* 71: with the dashes */
#define RECOVERY_ITERATIONS 100000			/* PBKDF2-SHA256, see above */
/* The least for tests: libcryptsetup's floor is 1000, but kekcrypt's own keyslots (derived
 * from the DEK) are PBKDF2 with LUKS_MINIMAL_ITERATIONS, which luks_slot_is_ours() goes by. */
#define RECOVERY_MIN_ITERATIONS (2 * LUKS_MINIMAL_ITERATIONS)
#define RECOVERY_FORMS 4

/* The typed forms that have a keyslot: upper case?, dashes? */
static const struct {
	bool upper, dashes;
} forms[RECOVERY_FORMS] = { { false, true }, { false, false }, { true, true }, { true, false } };

static const char modhex[] = "cbdefghijklnrtuv";

/* 64 modhex characters (any case, any dashes or blanks) -> the printed form in KEY (room for
 * KEY_TEXT_LEN + 1). Not a recovery key: -EILSEQ (another character, or more than 64),
 * -EINVAL (fewer, *R_N of them). */
static int key_parse(const char *in, size_t len, struct kc_secret *key, size_t *r_n)
{
	size_t n = 0, o = 0;

	*r_n = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)tolower((unsigned char)in[i]);

		if (c == '-' || c == ' ' || c == '\t' || c == '\n' || c == '\r')
			continue;
		if (!c || !strchr(modhex, c) || n == KEY_CHARS)
			return -EILSEQ;
		if (n && n % GROUP_LEN == 0)
			key->data[o++] = '-';
		key->data[o++] = c;
		*r_n = ++n;
	}
	if (n != KEY_CHARS)
		return -EINVAL;
	key->len = KEY_TEXT_LEN;
	return 0;
}

int recovery_key_normalise(struct kc_ctx *ctx, const char *in, size_t len,
			   struct kc_secret **r_key)
{
	_cleanup_(kc_secret_freep) struct kc_secret *key = kc_secret_alloc(KEY_TEXT_LEN + 1);
	size_t n;
	int r;

	if (!key)
		return -ENOMEM;
	r = key_parse(in, len, key, &n);
	if (r < 0) {
		/* Never echo the key, not even one character of it. */
		if (r == -EILSEQ)
			return ctx_fail(ctx, -EINVAL, "this is not a kekcrypt recovery key (64 "
					"characters of \"%s\", in groups or not)", modhex);
		return ctx_fail(ctx, -EINVAL, "this is not a kekcrypt recovery key: %zu characters "
				"instead of %d", n, KEY_CHARS);
	}
	*r_key = TAKE_PTR(key);
	return 0;
}

int kc_recovery_key_normalise(const char *in, size_t len, char **r_key)
{
	_cleanup_(kc_secret_freep) struct kc_secret *key = NULL;
	size_t n;

	if (!in || !r_key)
		return -EINVAL;
	key = kc_secret_alloc(KEY_TEXT_LEN + 1);
	if (!key)
		return -ENOMEM;
	if (key_parse(in, len, key, &n) < 0)
		return -EINVAL;
	key->data[key->len] = '\0';
	*r_key = (char *)TAKE_PTR(key)->data;
	return 0;
}

/* The printed KEY in typed form number I (forms[]). */
static int key_form(const struct kc_secret *key, int i, struct kc_secret **r_form)
{
	_cleanup_(kc_secret_freep) struct kc_secret *f = kc_secret_alloc(KEY_TEXT_LEN);
	size_t o = 0;

	if (!f)
		return -ENOMEM;
	for (size_t k = 0; k < key->len; k++) {
		unsigned char c = key->data[k];

		if (c == '-' && !forms[i].dashes)
			continue;
		f->data[o++] = forms[i].upper ? (unsigned char)toupper(c) : c;
	}
	f->len = o;
	*r_form = TAKE_PTR(f);
	return 0;
}

static int key_generate(struct kc_ctx *ctx, struct kc_secret **r_key)
{
	_cleanup_(kc_secret_freep) struct kc_secret *raw = kc_secret_alloc(RECOVERY_BYTES);
	_cleanup_(kc_secret_freep) struct kc_secret *hex = kc_secret_alloc(KEY_CHARS);

	if (!raw || !hex)
		return -ENOMEM;
	if (RAND_priv_bytes(raw->data, (int)raw->len) != 1)
		return ctx_fail(ctx, -EIO, "no random bytes from OpenSSL");
	for (size_t i = 0; i < RECOVERY_BYTES; i++) {
		hex->data[2 * i] = (unsigned char)modhex[raw->data[i] >> 4];
		hex->data[2 * i + 1] = (unsigned char)modhex[raw->data[i] & 0xf];
	}
	return recovery_key_normalise(ctx, (const char *)hex->data, hex->len, r_key);
}

/* PBKDF2-SHA256, RECOVERY_ITERATIONS (P->iterations for tests, at least
 * RECOVERY_MIN_ITERATIONS), no benchmark. */
static int set_pbkdf(struct kc_ctx *ctx, struct crypt_device *cd,
		     const struct kc_recovery_params *p)
{
	struct crypt_pbkdf_type pbkdf = {
		.type = CRYPT_KDF_PBKDF2, .hash = "sha256", .iterations = RECOVERY_ITERATIONS,
		.flags = CRYPT_PBKDF_NO_BENCHMARK,
	};
	int r;

	if (p && p->iterations)
		pbkdf.iterations = p->iterations < RECOVERY_MIN_ITERATIONS ?
				   RECOVERY_MIN_ITERATIONS : p->iterations;
	r = crypt_set_pbkdf_type(cd, &pbkdf);
	if (r < 0)
		return ctx_fail(ctx, -EINVAL, "PBKDF2 parameters refused by libcryptsetup (%s)",
				strerror(-r));
	return 0;
}

static int recovery_token_json(const int *slots, int n, char **r_json)
{
	json_object *obj = json_object_new_object(), *arr = json_object_new_array();
	char buf[16], created[32];
	int r = -ENOMEM, i;

	util_utc_now(created);
	for (i = 0; arr && i < n; i++) {
		snprintf(buf, sizeof(buf), "%d", slots[i]);
		if (json_object_array_add(arr, json_object_new_string(buf)) < 0)
			break;
	}
	if (obj && i == n &&
	    json_object_object_add(obj, "type", json_object_new_string(RECOVERY_TOKEN_TYPE)) == 0 &&
	    json_object_object_add(obj, "keyslots", json_object_get(arr)) == 0 &&
	    json_object_object_add(obj, "kekcrypt-recovery-version",
				   json_object_new_string(RECOVERY_VERSION)) == 0 &&
	    json_object_object_add(obj, "kekcrypt-recovery-created",
				   json_object_new_string(created)) == 0) {
		*r_json = strdup(json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN));
		r = *r_json ? 0 : -ENOMEM;
	}
	json_object_put(arr);
	json_object_put(obj);
	return r;
}

/* One keyslot per typed form of KEY, in forms[] order; *R_N of them added, also on failure. */
static int recovery_slots_add(struct kc_ctx *ctx, struct crypt_device *cd,
			      const struct kc_secret *dek, const struct kc_secret *key,
			      int slots[RECOVERY_FORMS], int *r_n)
{
	*r_n = 0;
	for (int i = 0; i < RECOVERY_FORMS; i++) {
		_cleanup_(kc_secret_freep) struct kc_secret *form = NULL;
		int slot;

		if (key_form(key, i, &form) < 0)
			return -ENOMEM;
		slot = crypt_keyslot_add_by_volume_key(cd, CRYPT_ANY_SLOT, (const char *)dek->data,
						       dek->len, (const char *)form->data,
						       form->len);
		if (slot < 0)
			return ctx_fail(ctx, slot == -ENOMEM ? slot : -ENOSPC, "no room for the "
					"recovery keyslots (%d needed; %s)", RECOVERY_FORMS,
					strerror(-slot));
		slots[(*r_n)++] = slot;
	}
	return 0;
}

/* The recovery token that marks keyslot SLOT, or -1. */
static int recovery_token_of(struct crypt_device *cd, int slot)
{
	for (int id = -1; (id = luks_token_next(cd, id, RECOVERY_TOKEN_TYPE)) >= 0;)
		if (luks_token_slot(cd, id) == slot)
			return id;
	return -1;
}

/* Add the keyslots and their marking token; returns the keyslot of the printed form. */
static int recovery_store(struct kc_ctx *ctx, struct crypt_device *cd,
			  const struct kc_secret *dek, const struct kc_secret *key,
			  const struct kc_recovery_params *p)
{
	_cleanup_(freep) char *json = NULL;
	int slots[RECOVERY_FORMS], n = 0, r;

	r = set_pbkdf(ctx, cd, p);
	if (r >= 0)
		r = recovery_slots_add(ctx, cd, dek, key, slots, &n);
	if (r >= 0)
		r = recovery_token_json(slots, n, &json);
	if (r >= 0) {
		r = crypt_token_json_set(cd, CRYPT_ANY_TOKEN, json);
		if (r < 0)
			r = ctx_fail(ctx, r == -ENOMEM ? r : -ENOSPC,
				     "cannot write the recovery token (%s)", strerror(-r));
	}
	if (r < 0) {
		while (n--)	/* unmarked keys nobody has seen */
			crypt_keyslot_destroy(cd, slots[n]);
		return r;
	}
	return slots[0];
}

/* What authorises a recovery_add(): a kekcrypt token (SECRET NULL), or the keyslot SECRET
 * opens (vol_dek_by_secret()). */
struct recovery_auth {
	const char *secret;
	size_t secret_len;
	uint32_t flags;		/* KC_ENROL_RECOVERY_KEY */
	struct kc_enrol_result *res;
};

/* The volume key of CD as AUTH says. */
static int recovery_dek(struct kc_ctx *ctx, struct crypt_device *cd, const char *device,
			const struct recovery_auth *auth, struct kc_secret **r_dek)
{
	int r;

	if (auth->secret)
		return vol_dek_by_secret(ctx, cd, device, auth->secret, auth->secret_len,
					 auth->flags, r_dek, &auth->res->auth_keyslot);
	ctx_deadline_start(ctx, 0);
	r = vol_unlock(ctx, cd, device, -1, r_dek, NULL);
	ctx_deadline_end(ctx);
	if (r < 0)
		ctx_detail_suffix(ctx, ENROL_AUTH_HINT);
	return r;
}

static int recovery_add(struct kc_ctx *ctx, const char *device,
			const struct kc_recovery_params *params, const struct recovery_auth *auth,
			char **r_key, int *r_keyslot)
{
	_cleanup_(kc_secret_freep) struct kc_secret *dek = NULL, *key = NULL;
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	_cleanup_(vol_unlockp) int lock = -1;
	struct kc_recovery_params full, *p = NULL;
	char slot[16];
	int r;

	if (!ctx || !device || !r_key ||
	    !sized_ok(params, SIZED_V1(struct kc_recovery_params, iterations)))
		return -EINVAL;
	if (params) {
		sized_get(&full, sizeof(full), params);
		p = &full;
	}
	ctx_detail_clear(ctx);
	r = vol_load_for_write(ctx, device, 0, &cd, &lock);
	if (r >= 0)
		r = recovery_dek(ctx, cd, device, auth, &dek);
	if (r >= 0)
		r = key_generate(ctx, &key);
	if (r >= 0)
		r = recovery_store(ctx, cd, dek, key, p);
	if (r < 0) {
		ctx_detail_device(ctx, device);
		return r;
	}
	log_dbg(ctx, "device '%s': recovery key added in keyslot %d", device, r);
	if (auth->secret) {
		auth->res->keyslot = r;
		auth->res->token_id = recovery_token_of(cd, r);
		auth->res->added = true;
	}
	snprintf(slot, sizeof(slot), "%d", r);
	audit_field(ctx, "keyslot", slot);
	key->data[key->len] = '\0';
	if (r_keyslot)
		*r_keyslot = r;
	*r_key = (char *)TAKE_PTR(key)->data;
	return 0;
}

int kc_recovery_add(struct kc_ctx *ctx, const char *device,
		    const struct kc_recovery_params *params, char **r_key, int *r_keyslot)
{
	struct recovery_auth auth = { 0 };
	struct audit a;

	audit_begin(ctx, &a, "recovery-add", device);
	return audit_end(ctx, &a, recovery_add(ctx, device, params, &auth, r_key, r_keyslot));
}

int kc_recovery_enrol(struct kc_ctx *ctx, const char *device,
		      const struct kc_recovery_params *params, const char *secret,
		      size_t secret_len, uint32_t flags, char **r_key,
		      struct kc_enrol_result *r_res)
{
	struct kc_enrol_result res = { .size = sizeof(res), .token_id = -1, .keyslot = -1,
				       .auth_keyslot = -1 };
	struct recovery_auth auth = { secret, secret_len, flags, &res };
	struct audit a;
	int r;

	/* The passphrase stays: a recovery key is for when the KMS is gone, and `kek add
	 * --wipe-passphrase` removes it once a KEK protects the volume. */
	if (!secret || (flags & ~KC_ENROL_RECOVERY_KEY) ||
	    (r_res && !sized_ok(r_res, SIZED_V1(struct kc_enrol_result, wiped))))
		return -EINVAL;
	audit_begin(ctx, &a, "recovery-add", device);
	audit_field(ctx, "by", flags & KC_ENROL_RECOVERY_KEY ? "recovery-key" : "passphrase");
	r = recovery_add(ctx, device, params, &auth, r_key, NULL);
	if (r >= 0)
		sized_put(r_res, &res, sizeof(res));
	return audit_end(ctx, &a, r);
}

void kc_recovery_key_free(char *key)
{
	if (!key)
		return;
	/* KEY is the data of a kc_secret from kc_recovery_add(); freeing it wipes it. */
	kc_secret_free((struct kc_secret *)(void *)(key - offsetof(struct kc_secret, data)));
}

/* String field KEY of token ID, "" when absent; control characters replaced. */
static void token_field(struct crypt_device *cd, int id, const char *key, char out[32])
{
	const char *json;
	json_object *obj = NULL, *v;

	out[0] = '\0';
	if (crypt_token_json_get(cd, id, &json) >= 0)
		obj = json_tokener_parse(json);
	if (obj && json_object_object_get_ex(obj, key, &v) &&
	    json_object_is_type(v, json_type_string))
		snprintf(out, 32, "%s", json_object_get_string(v));
	for (char *c = out; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';	/* untrusted header, keep terminals safe */
	json_object_put(obj);
}

/* The keyslots recovery token ID lists (bit N: keyslot N). */
static uint32_t token_slots(struct crypt_device *cd, int id)
{
	uint32_t mask = 0;

	for (int s = 0; s < crypt_keyslot_max(CRYPT_LUKS2) && s < 32; s++)
		if (crypt_token_is_assigned(cd, id, s) == 0)
			mask |= 1u << s;
	return mask;
}

int kc_recovery_list(struct kc_ctx *ctx, const char *device, struct kc_recovery_info *r_info,
		     size_t max)
{
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	int r, n = 0;

	if (!ctx || !device || (max && (!r_info ||
				     !sized_ok(r_info, SIZED_V1(struct kc_recovery_info, created)))))
		return -EINVAL;
	ctx_detail_clear(ctx);
	r = vol_load(ctx, device, &cd);
	if (r < 0)
		return r;
	for (int id = 0; id < crypt_token_max(CRYPT_LUKS2); id++) {
		if (!luks_token_is(cd, id, RECOVERY_TOKEN_TYPE))
			continue;
		if ((size_t)n < max) {
			struct kc_recovery_info ri = { .size = sizeof(ri), .token_id = id,
						       .keyslot = luks_token_slot(cd, id),
						       .keyslot_mask = token_slots(cd, id) };

			token_field(cd, id, "kekcrypt-recovery-created", ri.created);
			sized_put(sized_at(r_info, (size_t)n), &ri, sizeof(ri));
		}
		n++;
	}
	return n;
}

static int recovery_remove_one(struct kc_ctx *ctx, struct crypt_device *cd, int id)
{
	uint32_t mask = token_slots(cd, id);
	int r;

	/* The keys first: a crash in between leaves a marker with fewer or no keyslots, never an
	 * unmarked key. */
	for (int s = 0; s < 32; s++) {
		if (!(mask & (1u << s)))
			continue;
		r = crypt_keyslot_destroy(cd, s);
		if (r < 0)
			return ctx_fail(ctx, -EIO, "cannot remove keyslot %d of recovery token %d "
					"(%s)", s, id, strerror(-r));
	}
	r = crypt_token_json_set(cd, id, NULL);
	if (r < 0)
		return ctx_fail(ctx, -EIO, "cannot remove recovery token %d (%s)", id,
				strerror(-r));
	return 0;
}

static int recovery_remove(struct kc_ctx *ctx, const char *device, int token_id, bool force)
{
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	_cleanup_(vol_unlockp) int lock = -1;
	uint64_t remove = 0;
	int r, n = 0;

	if (!ctx || !device)
		return -EINVAL;
	ctx_detail_clear(ctx);
	r = vol_load_for_write(ctx, device, 0, &cd, &lock);
	if (r < 0)
		return r;
	for (int id = 0; id < crypt_token_max(CRYPT_LUKS2) && id < 64; id++)
		if (luks_token_is(cd, id, RECOVERY_TOKEN_TYPE) && (token_id < 0 || id == token_id))
			remove |= 1ull << id;
	if (!remove)
		return ctx_fail(ctx, -ENOENT, token_id < 0 ? "device '%s' has no recovery key" :
				"device '%s' has no recovery token %d", device, token_id);
	if (!force) {
		r = vol_check_paths_left(ctx, cd, device, remove, "the recovery key");
		if (r < 0)
			return r;
	}
	for (int id = 0; r >= 0 && id < 64; id++)
		if (remove & (1ull << id)) {
			r = recovery_remove_one(ctx, cd, id);
			n += r >= 0;
			audit_token(ctx, r >= 0 ? id : -1, NULL);
		}
	if (r < 0)
		ctx_detail_device(ctx, device);
	return r < 0 ? r : n;
}

int kc_recovery_remove(struct kc_ctx *ctx, const char *device, int token_id, bool force)
{
	struct audit a;

	audit_begin(ctx, &a, "recovery-remove", device);
	if (force)
		audit_field(ctx, "force", "yes");
	return audit_end(ctx, &a, recovery_remove(ctx, device, token_id, force));
}

/* Typed form FORM of KEY on each keyslot in MASK, lowest first; -EPERM when none takes it. */
static int try_form(struct crypt_device *cd, const char *name, const struct kc_secret *key,
		    int form, uint32_t mask, uint32_t cflags)
{
	_cleanup_(kc_secret_freep) struct kc_secret *f = NULL;
	int r = -EPERM;

	if (key_form(key, form, &f) < 0)
		return -ENOMEM;
	for (int s = 0; s < 32 && r == -EPERM; s++)
		if (mask & (1u << s))
			r = crypt_activate_by_passphrase(cd, name, s, (const char *)f->data, f->len,
							 cflags);
	return r;
}

static int bits(uint32_t mask)
{
	int n = 0;

	for (; mask; mask &= mask - 1)
		n++;
	return n;
}

/* Try KEY (the printed form) on the marked recovery keyslots, or on every keyslot when none
 * is marked. Then the other typed forms, only on the keyslots of a recovery token (not
 * version 1) that lost some of its keyslots: a removal interrupted after the printed form's. */
static int try_keyslots(struct kc_ctx *ctx, struct crypt_device *cd, const char *name,
			const struct kc_secret *key, uint32_t cflags)
{
	uint32_t marked = 0, partial = 0;
	char version[32];
	int r;

	for (int id = 0; id < crypt_token_max(CRYPT_LUKS2); id++) {
		uint32_t mask = luks_token_is(cd, id, RECOVERY_TOKEN_TYPE) ? token_slots(cd, id) : 0;

		marked |= mask;
		if (!mask || bits(mask) >= RECOVERY_FORMS)
			continue;
		token_field(cd, id, "kekcrypt-recovery-version", version);
		if (strcmp(version, "1"))
			partial |= mask;
	}
	if (!marked)
		r = crypt_activate_by_passphrase(cd, name, CRYPT_ANY_SLOT, (const char *)key->data,
						 key->len, cflags);
	else
		r = try_form(cd, name, key, 0, marked, cflags);
	for (int f = 1; r == -EPERM && partial && f < RECOVERY_FORMS; f++)
		r = try_form(cd, name, key, f, partial, cflags);
	if (r == -EPERM || r == -ENOENT)
		return ctx_fail(ctx, -EBADMSG, "the recovery key does not open %s",
				marked ? "the volume's recovery keyslot" : "any keyslot");
	if (r == -EBUSY || r == -EEXIST)
		return ctx_fail(ctx, -EBUSY, "the device is in use or '%s' exists", name ?: "");
	if (r < 0)
		return ctx_fail(ctx, r == -ENOMEM ? r : -EIO, "activation failed (%s)",
				strerror(-r));
	return r;
}

static int recovery_open(struct kc_ctx *ctx, const char *device, const char *name,
			 const char *key, size_t key_len, uint32_t flags, int *r_keyslot)
{
	_cleanup_(kc_secret_freep) struct kc_secret *pass = NULL;
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	uint32_t cflags = 0;
	int r;

	if (!ctx || !device || !key)
		return -EINVAL;
	ctx_detail_clear(ctx);
	if (flags & KC_OPEN_READONLY)
		cflags |= CRYPT_ACTIVATE_READONLY;
	if (flags & KC_OPEN_ALLOW_DISCARDS)
		cflags |= CRYPT_ACTIVATE_ALLOW_DISCARDS;
	r = recovery_key_normalise(ctx, key, key_len, &pass);
	if (r >= 0 && name)
		r = dm_available(ctx);
	if (r >= 0)
		r = vol_load(ctx, device, &cd);
	if (r >= 0 && name)
		crypt_volume_key_keyring(cd, 1);
	if (r >= 0)
		r = try_keyslots(ctx, cd, name, pass, cflags);
	if (r < 0) {
		ctx_detail_device(ctx, device);
		return r;
	}
	log_dbg(ctx, "device '%s': recovery key accepted by keyslot %d%s%s", device, r,
		name ? ", active as " : "", name ?: "");
	if (r_keyslot)
		*r_keyslot = r;
	return 0;
}

int kc_recovery_open(struct kc_ctx *ctx, const char *device, const char *name, const char *key,
		     size_t key_len, uint32_t flags, int *r_keyslot)
{
	struct audit a;
	char slot[16];
	int r, keyslot = -1;

	/* Without NAME it checks the key and unlocks nothing: no event, as verify. */
	if (!name)
		return recovery_open(ctx, device, name, key, key_len, flags, r_keyslot);
	audit_begin(ctx, &a, "unlock", device);
	audit_field(ctx, "by", "recovery-key");
	audit_field(ctx, "name", name);
	r = recovery_open(ctx, device, name, key, key_len, flags, &keyslot);
	if (r >= 0) {
		snprintf(slot, sizeof(slot), "%d", keyslot);
		audit_field(ctx, "keyslot", slot);
		if (r_keyslot)
			*r_keyslot = keyslot;
	}
	return audit_end(ctx, &a, r);
}
