/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * DEK rotation (`rekey`): LUKS2 re-encryption of the data to a fresh random DEK, online when
 * the volume is mapped, offline otherwise; resumable after an interruption or a power loss
 * by kekcrypt alone.
 *
 * libcryptsetup re-encrypts with one passphrase that must open a keyslot of the old volume
 * key and one of the new (LUKS2_keyslot_open_all_segments), both when it starts and when it
 * resumes or recovers. Our keyslot passphrases are derived from the DEK they hold, so the
 * old and the new ones differ. Hence a "bridge": a keyslot holding the OLD DEK under the
 * passphrase derived from the NEW DEK. With it, the new DEK alone, unwrapped through any new
 * token, is all that resuming needs; libcryptsetup destroys the bridge with every other
 * keyslot of the old key when the re-encryption completes.
 *
 * The header writes, old tokens O1..On (each bound to a keyslot of the old DEK):
 *
 *   W1  for each KEK of O1..On, a new keyslot holding the new DEK (unbound: no segment uses
 *       it yet) and a kekcrypt token over it wrapping the new DEK, marked
 *       "kekcrypt-rekey": "new";
 *   W2  the bridge keyslot, and a token of type "kekcrypt-rekey" (no secret) naming it;
 *   W3  libcryptsetup: re-encryption metadata (one write), then the data, chunk by chunk,
 *       each chunk protected by the resilience mode (checksum or journal); at the end it
 *       destroys every keyslot of the old DEK (O1..On's and the bridge) and binds the new
 *       keyslots to the data segment;
 *   W4  remove O1..On and the bridge's token, then drop the marks of the new tokens.
 *
 * Every later call decides from the header alone (no KMS) what an interrupted run left:
 *   - re-encryption metadata present (W3 under way): resume it (crash recovery first);
 *   - none, marked tokens whose keyslots are bound to the data segment: W3 completed, so
 *     finish W4;
 *   - none, marked tokens over unbound keyslots: W1/W2 interrupted before W3 began; roll
 *     back (remove the marked tokens, their keyslots, the bridge and unbound keyslots that
 *     no token names), and start again.
 * At every instant some token opens the volume: the old ones until W3 begins (they stay
 * valid), the new ones from then on (with the bridge, for libcryptsetup), both sets until W4.
 *
 * Keyslots of the old DEK that no kekcrypt token holds (recovery keys, passphrases added
 * with cryptsetup) are destroyed by libcryptsetup at the end of W3 and cannot be re-created
 * without their secret: rekey refuses such a volume unless KC_REKEY_FORCE.
 *
 * The whole run holds the device's writer lock (vol_load_for_write()); other writers refuse
 * to touch a header with rekey leftovers, and readers never change it.
 *
 * Test hook: KC_TEST_CRASH_AT=N (util_crash_point()) kills the process right after the Nth
 * header write kekcrypt makes here (the keyslot and token writes of W1, W2 and W4, and those
 * of a rollback; not libcryptsetup's own during W3).
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#include <libcryptsetup.h>
#include <openssl/rand.h>

#include "internal.h"

/* What to do when the header has no room for the new keyslots or the re-encryption metadata. */
#define REKEY_ROOM_HINT \
	"; rekey needs one free keyslot per kekcrypt token plus one, and room in the keyslot " \
	"area: remove tokens or recovery keys no longer needed (kekcrypt kek remove, kekcrypt " \
	"recovery remove) and run it again"
#define MAX_TOKENS 32
#define HOTZONE_BYTES (8u << 20)
#define HOTZONE_MIN (1u << 20)

/* The kekcrypt tokens of one side (old or new) of a rekey. */
struct token_set {
	struct token *t[MAX_TOKENS];
	size_t n;
};

static void token_set_clear(struct token_set *s)
{
	for (size_t i = 0; i < s->n; i++)
		token_free(s->t[i]);
	s->n = 0;
}

/* Read the kekcrypt tokens, split into unmarked (old) and marked (new). A malformed token
 * fails the call: rekey must know every KEK of the volume. */
static int tokens_read(struct kc_ctx *ctx, struct crypt_device *cd, struct token_set *old,
		       struct token_set *new)
{
	int max = crypt_token_max(CRYPT_LUKS2), r;

	for (int id = 0; id < max; id++) {
		const char *type = luks_token_type(cd, id);
		struct token_set *s;
		struct token *t = NULL;

		if (!type || strcmp(type, TOKEN_TYPE))
			continue;
		s = luks_rekey_marked(cd, id) ? new : old;
		r = vol_token_read(ctx, cd, id, &t);
		if (r < 0) {
			ctx_detail_prefix(ctx, "token %d", id);
			return r;
		}
		if (s->n == MAX_TOKENS) {
			token_free(t);
			return ctx_fail(ctx, -EINVAL, "more than %d kekcrypt tokens", MAX_TOKENS);
		}
		s->t[s->n++] = t;
	}
	return 0;
}

/* Remove token ID, then its keyslot unless another token still names it, or it is the last
 * keyslot of the data (a header may be forged to mark any token: nothing here may make the
 * data unopenable). */
static int token_remove_with_slot(struct kc_ctx *ctx, struct crypt_device *cd, int id)
{
	int slot = luks_token_slot(cd, id), r;

	r = luks_token_remove(ctx, cd, id);
	if (r < 0)
		return r;
	if (slot >= 0 && luks_last_bound_slot(cd, slot)) {
		log_warn(ctx, "token %d removed; its keyslot %d is the last of the data, "
			 "kept", id, slot);
		return 0;
	}
	if (slot >= 0 && luks_slot_in_use(cd, slot) && !luks_slot_has_token(cd, slot)) {
		r = crypt_keyslot_destroy(cd, slot);
		if (r < 0)
			return ctx_fail(ctx, r, "token %d removed but not its keyslot %d (%s)", id,
					slot, strerror(-r));
		util_crash_point();
	}
	log_dbg(ctx, "token %d removed (keyslot %d)", id, slot);
	return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* W1, W2: new tokens and the bridge                                                        */

/* The token JSON of T (keyslot set) with the rekey mark added. */
static int marked_json(struct kc_ctx *ctx, const struct token *t, char **r_json)
{
	static const char *const keys[] = { TOKEN_MARK_REKEY }, *const values[] = {
		TOKEN_REKEY_NEW };
	_cleanup_(freep) char *json = NULL;
	int r;

	r = token_serialise(ctx, t, &json);
	return r < 0 ? r : token_json_set(json, keys, values, 1, r_json);
}

/* W1 for one KEK: an unbound keyslot with the new DEK, and a marked token over it. */
static int add_new_token(struct kc_ctx *ctx, struct crypt_device *cd, const struct token *old,
			 const struct kc_wrapped *w, const struct kc_secret *dek,
			 const struct kc_secret *pass)
{
	_cleanup_(freep) char *json = NULL;
	struct token t = {
		.id = -1, .version = TOKEN_FORMAT_VERSION, .provider = old->provider,
		.uri = old->uri, .key_version = w->key_version, .alg = (char *)w->alg,
		.wrapped = w->data, .wrapped_len = w->len,
	};
	char created[32];
	int slot, r;

	util_utc_now(created);
	t.created = created;
	/* DIGEST_REUSE: every new keyslot shares the one digest of the new DEK. */
	slot = crypt_keyslot_add_by_key(cd, CRYPT_ANY_SLOT, (const char *)dek->data, dek->len,
					(const char *)pass->data, pass->len,
					CRYPT_VOLUME_KEY_NO_SEGMENT | CRYPT_VOLUME_KEY_DIGEST_REUSE);
	if (slot < 0)
		return ctx_fail(ctx, slot == -ENOMEM ? slot : -ENOSPC,
				"no room for a new keyslot (%s)", strerror(-slot));
	util_crash_point();
	t.keyslot = slot;
	r = marked_json(ctx, &t, &json);
	if (r >= 0) {
		r = crypt_token_json_set(cd, CRYPT_ANY_TOKEN, json);
		if (r < 0)
			r = ctx_fail(ctx, r == -ENOMEM ? r : -ENOSPC,
				     "cannot write a token (%s)", strerror(-r));
		else
			util_crash_point();
	}
	if (r < 0)
		crypt_keyslot_destroy(cd, slot);
	else
		log_dbg(ctx, "new token %d (keyslot %d) for '%s'", r, slot, old->uri);
	return r < 0 ? r : slot;
}

/* W2: the bridge keyslot (old DEK, new DEK's passphrase) and its marker token. */
static int add_bridge(struct kc_ctx *ctx, struct crypt_device *cd,
		      const struct kc_secret *old_dek, const struct kc_secret *pass)
{
	char json[128];
	int slot, r;

	/* The highest free keyslot: libcryptsetup destroys the old key's keyslots in order at
	 * the end, and the bridge must be the last to go (see check_bridge()). */
	slot = CRYPT_ANY_SLOT;
	for (int k = crypt_keyslot_max(CRYPT_LUKS2) - 1; k >= 0 && slot < 0; k--)
		if (crypt_keyslot_status(cd, k) == CRYPT_SLOT_INACTIVE)
			slot = k;
	slot = crypt_keyslot_add_by_volume_key(cd, slot, (const char *)old_dek->data,
					       old_dek->len, (const char *)pass->data, pass->len);
	if (slot < 0)
		return ctx_fail(ctx, slot == -ENOMEM ? slot : -ENOSPC,
				"no room for the bridge keyslot (%s)", strerror(-slot));
	util_crash_point();
	snprintf(json, sizeof(json), "{\"type\":\"" BRIDGE_TOKEN_TYPE "\",\"keyslots\":[\"%d\"]}", slot);
	r = crypt_token_json_set(cd, CRYPT_ANY_TOKEN, json);
	if (r < 0) {
		crypt_keyslot_destroy(cd, slot);
		return ctx_fail(ctx, r == -ENOMEM ? r : -ENOSPC,
				"cannot write the bridge token (%s)", strerror(-r));
	}
	util_crash_point();
	log_dbg(ctx, "bridge keyslot %d, token %d", slot, r);
	return slot;
}

/* Roll back W1/W2 (re-encryption never began): marked tokens with their keyslots, the
 * bridge, unbound keyslots no token names (left by a crash between a keyslot write and its
 * token's; kekcrypt makes no other unbound keyslots), and a bridge keyslot whose token a
 * crash kept from being written (one of kekcrypt's keyslots that no token holds), never the
 * last keyslot of the data. */
static int rollback(struct kc_ctx *ctx, struct crypt_device *cd)
{
	int r = 0;

	for (int id = 0; r >= 0 && id < crypt_token_max(CRYPT_LUKS2); id++) {
		const char *type = luks_token_type(cd, id);

		if (type && ((!strcmp(type, TOKEN_TYPE) && luks_rekey_marked(cd, id)) ||
			     !strcmp(type, BRIDGE_TOKEN_TYPE)))
			r = token_remove_with_slot(ctx, cd, id);
	}
	for (int s = 0; r >= 0 && s < crypt_keyslot_max(CRYPT_LUKS2); s++) {
		crypt_keyslot_info ki = crypt_keyslot_status(cd, s);

		if (luks_slot_has_token(cd, s) || luks_last_bound_slot(cd, s) ||
		    (ki != CRYPT_SLOT_UNBOUND && !(luks_slot_in_use(cd, s) && luks_slot_is_ours(cd, s))))
			continue;
		r = crypt_keyslot_destroy(cd, s);
		util_crash_point();
	}
	if (r < 0)
		return ctx_fail(ctx, r, "rolling back an unstarted rekey failed (%s)",
				strerror(-r));
	log_dbg(ctx, "unstarted rekey rolled back");
	return 0;
}

/* Roll back after a failure whose explanation must stay the detail. */
static void rollback_keep_detail(struct kc_ctx *ctx, struct crypt_device *cd)
{
	char detail[sizeof(ctx->detail)];

	snprintf(detail, sizeof(detail), "%s", ctx->detail);
	if (rollback(ctx, cd) < 0)
		log_warn(ctx, "%s", ctx->detail);
	snprintf(ctx->detail, sizeof(ctx->detail), "%s", detail);
}

/* ---------------------------------------------------------------------------------------- */
/* W4: commit                                                                               */

static int unmark(struct kc_ctx *ctx, struct crypt_device *cd, int id)
{
	static const char *const keys[] = { TOKEN_MARK_REKEY }, *const values[] = { NULL };

	return luks_token_mark(ctx, cd, id, keys, values, 1);
}

/* Re-encryption completed: drop the old tokens (their keyslots are gone with the old key),
 * the bridge's token, recovery markers whose keyslot went the same way, then the marks. */
static int commit(struct kc_ctx *ctx, struct crypt_device *cd)
{
	int max = crypt_token_max(CRYPT_LUKS2), r = 0;

	for (int id = 0; r >= 0 && id < max; id++) {
		const char *type = luks_token_type(cd, id);
		bool has_slot = false;

		if (!type)
			continue;
		for (int s = 0; s < crypt_keyslot_max(CRYPT_LUKS2) && !has_slot; s++)
			has_slot = crypt_token_is_assigned(cd, id, s) == 0 && luks_slot_in_use(cd, s);
		if ((!strcmp(type, TOKEN_TYPE) && !luks_rekey_marked(cd, id)) ||
		    !strcmp(type, BRIDGE_TOKEN_TYPE) || (!strcmp(type, RECOVERY_TOKEN_TYPE) && !has_slot))
			r = token_remove_with_slot(ctx, cd, id);
	}
	for (int id = 0; r >= 0 && id < max; id++) {
		const char *type = luks_token_type(cd, id);

		if (type && !strcmp(type, TOKEN_TYPE) && luks_rekey_marked(cd, id))
			r = unmark(ctx, cd, id);
	}
	if (r >= 0)
		log_dbg(ctx, "rekey committed: old tokens removed, new tokens unmarked");
	return r;
}

/* ---------------------------------------------------------------------------------------- */
/* Unwrapping                                                                               */

/* Unwrap the new DEK through one of the marked tokens and check it against that token's
 * keyslot (the new digest is not the data segment's until the re-encryption completes). */
static int unwrap_new(struct kc_ctx *ctx, struct crypt_device *cd, const struct token_set *new,
		      struct kc_secret **r_dek, struct kc_secret **r_pass)
{
	char last[sizeof(ctx->detail)] = "";
	int best = -ENOENT;

	for (size_t i = 0; i < new->n; i++) {
		_cleanup_(kc_secret_freep) struct kc_secret *dek = NULL, *pass = NULL, *key = NULL;
		_cleanup_(kek_closep) struct kc_kek *kek = NULL;
		const struct token *t = new->t[i];
		size_t len;
		int r;

		r = kek_open(ctx, t->uri, &kek);
		if (r >= 0)
			r = kek->ops->unwrap(ctx, kek->state, t->alg, t->key_version, t->wrapped,
					     t->wrapped_len, &dek);
		if (r >= 0)
			r = vol_keyslot_passphrase(dek, crypt_get_uuid(cd), &pass);
		if (r >= 0 && !(key = kc_secret_alloc(dek->len)))
			r = -ENOMEM;
		len = key ? key->len : 0;
		if (r >= 0 && (t->keyslot < 0 ||
			       crypt_volume_key_get(cd, t->keyslot, (char *)key->data, &len,
						    (const char *)pass->data, pass->len) < 0 ||
			       len != dek->len || secret_memeq(key->data, dek->data, len)))
			r = ctx_fail(ctx, -EBADMSG, "the unwrapped key does not open keyslot %d",
				     t->keyslot);
		if (r >= 0) {
			log_dbg(ctx, "new data key unwrapped through token %d ('%s')", t->id,
				t->uri);
			*r_dek = TAKE_PTR(dek);
			*r_pass = TAKE_PTR(pass);
			return 0;
		}
		log_dbg(ctx, "token %d ('%s'): %s", t->id, t->uri, ctx->detail);
		snprintf(last, sizeof(last), "token %d: %s", t->id,
			 ctx->detail[0] ? ctx->detail : kc_strerror(r));
		if (best == -ENOENT || r == -EAGAIN)
			best = r;
	}
	return ctx_fail(ctx, best, "no new token could unwrap the new data key%s%s",
			last[0] ? "; last failure: " : "", last);
}

/* Keyslots of the old key that no kekcrypt token holds would be destroyed at the end. */
/* The recovery token holding keyslot SLOT, or -1. */
static int recovery_token_of(struct crypt_device *cd, int slot)
{
	for (int id = 0; id < crypt_token_max(CRYPT_LUKS2); id++)
		if (luks_token_is(cd, id, RECOVERY_TOKEN_TYPE) &&
		    crypt_token_is_assigned(cd, id, slot) == 0)
			return id;
	return -1;
}

static int check_other_slots(struct kc_ctx *ctx, struct crypt_device *cd,
			     const struct token_set *old, uint32_t flags)
{
	uint64_t recovery = 0;
	int n = 0, nrec = 0;

	for (int s = 0; s < crypt_keyslot_max(CRYPT_LUKS2); s++) {
		bool ours = false;
		int id;

		if (!luks_slot_bound(cd, s))
			continue;
		for (size_t i = 0; i < old->n && !ours; i++)
			ours = old->t[i]->keyslot == s;
		if (ours)
			continue;
		/* A recovery key has several keyslots (one per typed form): it counts once. */
		id = recovery_token_of(cd, s);
		if (id >= 0 && id < 64) {
			nrec += !(recovery & (1ull << id));
			recovery |= 1ull << id;
		} else {
			n++;
		}
	}
	if ((n || nrec) && !(flags & KC_REKEY_FORCE))
		return ctx_fail(ctx, -EBUSY,
				"%d recovery key(s) and %d other keyslot(s) not held by a kekcrypt "
				"token (passphrases) would be destroyed by the re-encryption; "
				"remove them first and add them again afterwards, or use --force",
				nrec, n);
	return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* W3: libcryptsetup re-encryption                                                          */

struct progress_state {
	struct kc_ctx *ctx;
	kc_progress_fn fn;
	void *usrptr;
};

static int progress_cb(uint64_t size, uint64_t offset, void *usrptr)
{
	struct progress_state *ps = usrptr;

	return ps->fn && ps->fn(offset, size, ps->usrptr) ? 1 : 0;
}

/* Chunks of 8 MiB, or a quarter of a smaller volume's data (at least 1 MiB): progress and
 * a stop come at least that often, and the buffer stays small (libcryptsetup would otherwise
 * take as much as the resilience area covers). */
static uint64_t hotzone_bytes(struct crypt_device *cd)
{
	uint64_t size, data = crypt_get_data_offset(cd) * 512, z;

	if (util_device_size(crypt_get_device_name(cd), &size) < 0 || size <= data)
		return HOTZONE_BYTES;
	z = ((size - data) / 4) & ~(uint64_t)(HOTZONE_MIN - 1);
	return z < HOTZONE_MIN ? HOTZONE_MIN : z > HOTZONE_BYTES ? HOTZONE_BYTES : z;
}

static void reencrypt_params(struct crypt_params_reencrypt *p, struct crypt_params_luks2 *l,
			     struct crypt_device *cd, uint32_t flags)
{
	memset(l, 0, sizeof(*l));
	l->sector_size = (uint32_t)crypt_get_sector_size(cd);
	memset(p, 0, sizeof(*p));
	p->mode = CRYPT_REENCRYPT_REENCRYPT;
	p->direction = CRYPT_REENCRYPT_FORWARD;
	p->resilience = flags & KC_REKEY_JOURNAL ? "journal" : "checksum";
	p->hash = "sha256";
	p->max_hotzone_size = hotzone_bytes(cd) / 512;
	p->luks2 = l;
}

/* Resume (RESUME) or start the re-encryption and run it to the end or until the callback
 * stops it. PASS opens the bridge and the new keyslots. */
static int reencrypt(struct kc_ctx *ctx, struct crypt_device *cd, const char *name,
		     const struct kc_secret *pass, int slot_old, int slot_new, bool resume,
		     uint32_t flags, struct progress_state *ps)
{
	struct crypt_params_reencrypt p;
	struct crypt_params_luks2 l;
	char cipher[64], mode[64];
	int r;

	snprintf(cipher, sizeof(cipher), "%s", crypt_get_cipher(cd) ?: "");
	snprintf(mode, sizeof(mode), "%s", crypt_get_cipher_mode(cd) ?: "");
	reencrypt_params(&p, &l, cd, flags);
	if (resume) {
		/* Keep the resilience chosen at the start unless one was asked for. */
		if (!(flags & (KC_REKEY_JOURNAL | KC_REKEY_CHECKSUM)))
			p.resilience = NULL;
		p.flags = CRYPT_REENCRYPT_RESUME_ONLY;
	}
	r = crypt_reencrypt_init_by_passphrase(cd, name, (const char *)pass->data, pass->len,
					       slot_old, slot_new, resume ? NULL : cipher,
					       resume ? NULL : mode, &p);
	if (r < 0)
		return ctx_fail(ctx, r == -EBUSY || r == -ENOMEM || r == -ENOSPC ? r : -EIO,
				"cannot %s the re-encryption%s%s (%s)%s", resume ? "resume" : "start",
				name ? " of mapping " : "", name ?: "", strerror(-r),
				r == -ENOSPC ? REKEY_ROOM_HINT : "");
	log_dbg(ctx, "re-encryption %s (%s, %s)", resume ? "resumed" : "started",
		name ? name : "offline", p.resilience ?: "resilience as stored");
	r = crypt_reencrypt_run(cd, progress_cb, ps);
	if (r < 0)
		return ctx_fail(ctx, -EIO, "re-encryption failed (%s); run 'kekcrypt rekey "
				"--resume' to continue it", strerror(-r));
	/* A stop asked for after the last chunk still completes: trust the header only. */
	if (crypt_reencrypt_status(cd, NULL) != CRYPT_REENCRYPT_NONE)
		return ctx_fail(ctx, -ECANCELED, "re-encryption stopped; run 'kekcrypt rekey "
				"--resume' to continue it");
	return 0;
}

/* A power loss in the middle of a chunk: let libcryptsetup repair the chunk first. */
static int recover_crash(struct kc_ctx *ctx, struct crypt_device *cd,
			 const struct kc_secret *pass)
{
	struct crypt_params_reencrypt p = { .flags = CRYPT_REENCRYPT_RECOVERY };
	int r;

	log_dbg(ctx, "interrupted re-encryption chunk: running crash recovery");
	r = crypt_reencrypt_init_by_passphrase(cd, NULL, (const char *)pass->data, pass->len,
					       CRYPT_ANY_SLOT, CRYPT_ANY_SLOT, NULL, NULL, &p);
	if (r < 0)
		return ctx_fail(ctx, r == -EBUSY ? -EBUSY : -EIO,
				"re-encryption crash recovery failed (%s)", strerror(-r));
	return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* The operation                                                                            */

struct rekey_run {
	struct kc_ctx *ctx;
	struct crypt_device *cd;
	const char *device;
	char name[128];		/* active mapping, "" offline */
	uint32_t flags;
	struct progress_state ps;
	struct kc_rekey_result res;
	struct token_set old, new;
};

/* W1 and W2 from the old DEK: returns the first new keyslot, the bridge in *R_BRIDGE. */
static int prepare(struct rekey_run *rr, const struct kc_secret *old_dek,
		   const struct kc_secret *dek, const struct kc_secret *pass,
		   struct kc_wrapped *w, int *r_bridge)
{
	int r = 0, first = -1;

	r = luks_minimal_pbkdf(rr->ctx, rr->cd);
	for (size_t i = 0; r >= 0 && i < rr->old.n; i++) {
		r = add_new_token(rr->ctx, rr->cd, rr->old.t[i], &w[i], dek, pass);
		if (r >= 0 && first < 0)
			first = r;
		if (r < 0)
			ctx_detail_prefix(rr->ctx, "KEK '%s'", rr->old.t[i]->uri);
	}
	if (r >= 0)
		r = add_bridge(rr->ctx, rr->cd, old_dek, pass);
	if (r < 0) {
		char detail[sizeof(rr->ctx->detail)];

		rollback_keep_detail(rr->ctx, rr->cd);
		if (r != -ENOSPC)
			return r;
		snprintf(detail, sizeof(detail), "%s", rr->ctx->detail);
		return ctx_fail(rr->ctx, r, "%s" REKEY_ROOM_HINT, detail);
	}
	*r_bridge = r;
	return first;
}

/* Wrap the new DEK under every KEK of the old tokens; nothing is written before all did. */
static int wrap_all(struct rekey_run *rr, const struct kc_secret *dek, struct kc_wrapped *w)
{
	int r = 0;

	for (size_t i = 0; r >= 0 && i < rr->old.n; i++) {
		_cleanup_(kek_closep) struct kc_kek *kek = NULL;

		r = kek_open(rr->ctx, rr->old.t[i]->uri, &kek);
		if (r >= 0)
			r = kek->ops->wrap(rr->ctx, kek->state, dek, &w[i]);
		if (r < 0)
			ctx_detail_prefix(rr->ctx, "KEK '%s'", rr->old.t[i]->uri);
	}
	return r;
}

/* true when token T's KEK unwraps DEK (the current data key) now. */
static int unwraps_to(struct kc_ctx *ctx, const struct token *t, const struct kc_secret *dek)
{
	_cleanup_(kc_secret_freep) struct kc_secret *got = NULL;
	_cleanup_(kek_closep) struct kc_kek *kek = NULL;
	int r;

	r = kek_open(ctx, t->uri, &kek);
	if (r >= 0)
		r = kek->ops->unwrap(ctx, kek->state, t->alg, t->key_version, t->wrapped,
				     t->wrapped_len, &got);
	if (r >= 0 && (got->len != dek->len || secret_memeq(got->data, dek->data, dek->len)))
		r = ctx_fail(ctx, -EBADMSG, "its KEK does not unwrap the current data key");
	return r;
}

/*
 * The new DEK is wrapped under the KEK of every old token (they are carried forward), so
 * each must prove now that it holds the current DEK: a forged token (a header anyone can
 * write) would otherwise be handed the new one, e.g. a file: KEK of the attacker's. A token
 * that cannot (forged, refused by local policy, KMS unreachable) stops the rekey, named:
 * dropping it silently would lose an unlock path, keeping it would leak the key.
 */
static int check_carried(struct rekey_run *rr, const struct kc_secret *old_dek, int used)
{
	char bad[sizeof(rr->ctx->detail)] = "";
	int first = 0;

	for (size_t i = 0; i < rr->old.n; i++) {
		const struct token *t = rr->old.t[i];
		size_t n = strlen(bad);
		int r;

		if (t->id == used)
			continue;	/* it just unwrapped the DEK */
		ctx_detail_clear(rr->ctx);
		r = unwraps_to(rr->ctx, t, old_dek);
		if (r >= 0)
			continue;
		first = first ?: r;
		snprintf(bad + n, sizeof(bad) - n, "%stoken %d (%s): %s", n ? "; " : "", t->id,
			 t->uri, rr->ctx->detail[0] ? rr->ctx->detail : kc_strerror(r));
	}
	if (!first)
		return 0;
	return ctx_fail(rr->ctx, first, "not re-keyed: the new data key would be wrapped under "
			"every KEK of the volume, and these did not unwrap the current one just "
			"now: %s; fix them or remove them (kekcrypt kek remove --token N), then run "
			"rekey again", bad);
}

static int start(struct rekey_run *rr)
{
	_cleanup_(kc_secret_freep) struct kc_secret *old_dek = NULL, *dek = NULL, *pass = NULL;
	struct kc_wrapped w[MAX_TOKENS] = { 0 };
	struct kc_unlock_result used = { .token_id = -1 };
	int r, first, bridge = -1;

	r = check_other_slots(rr->ctx, rr->cd, &rr->old, rr->flags);
	if (r < 0)
		return r;
	ctx_deadline_start(rr->ctx, 0);
	r = vol_unlock(rr->ctx, rr->cd, rr->device, -1, &old_dek, &used);
	if (r >= 0)
		r = check_carried(rr, old_dek, used.token_id);
	if (r >= 0 && !(dek = kc_secret_alloc(old_dek->len)))
		r = -ENOMEM;
	if (r >= 0 && RAND_priv_bytes(dek->data, (int)dek->len) != 1)
		r = ctx_fail(rr->ctx, -EIO, "no random bytes from OpenSSL");
	if (r >= 0)
		r = wrap_all(rr, dek, w);
	ctx_deadline_end(rr->ctx);
	if (r >= 0)
		r = vol_keyslot_passphrase(dek, crypt_get_uuid(rr->cd), &pass);
	if (r >= 0) {
		first = prepare(rr, old_dek, dek, pass, w, &bridge);
		r = first < 0 ? first :
			reencrypt(rr->ctx, rr->cd, rr->name[0] ? rr->name : NULL, pass, bridge,
				  first, false, rr->flags, &rr->ps);
		/* Never started (no re-encryption metadata, the new keyslots still unbound):
		 * leave the header as it was, not with the new tokens and the bridge. */
		if (r < 0 && first >= 0 && crypt_load(rr->cd, CRYPT_LUKS2, NULL) >= 0 &&
		    crypt_reencrypt_status(rr->cd, NULL) == CRYPT_REENCRYPT_NONE &&
		    crypt_keyslot_status(rr->cd, first) == CRYPT_SLOT_UNBOUND)
			rollback_keep_detail(rr->ctx, rr->cd);
	}
	for (size_t i = 0; i < rr->old.n; i++)
		wrapped_clear(&w[i]);
	return r;
}

/* true when a bridge token names a keyslot that still exists. */
static bool bridge_present(struct crypt_device *cd)
{
	for (int id = 0; id < crypt_token_max(CRYPT_LUKS2); id++) {
		const char *type = luks_token_type(cd, id);

		for (int s = 0; type && !strcmp(type, BRIDGE_TOKEN_TYPE) &&
		     s < crypt_keyslot_max(CRYPT_LUKS2); s++)
			if (crypt_token_is_assigned(cd, id, s) == 0 && luks_slot_in_use(cd, s))
				return true;
	}
	return false;
}

/* libcryptsetup (2.6) completes by destroying the old key's keyslots one by one and then
 * commits; a crash after the last of them (the bridge: the highest numbered, so destroyed
 * last) and before that commit leaves a re-encryption it cannot reopen, as it insists on
 * unlocking the old key, and it refuses to add keyslots to a volume in re-encryption. The
 * data is entirely under the new key by then, but only a header edit can tell libcryptsetup
 * so: say exactly that rather than fail obscurely. */
static int check_bridge(struct rekey_run *rr)
{
	if (bridge_present(rr->cd))
		return 0;
	return ctx_fail(rr->ctx, -EIO, "the re-encryption was interrupted while libcryptsetup "
			"was completing it (after it removed the keyslots of the old data key, "
			"before its final header write): the data is entirely under the new key, "
			"but libcryptsetup cannot resume this state; keep the device as it is and "
			"repair the header by hand (see kekcrypt(8), rekey)");
}

static int resume(struct rekey_run *rr, crypt_reencrypt_info ri)
{
	_cleanup_(kc_secret_freep) struct kc_secret *dek = NULL, *pass = NULL;
	int r;

	rr->res.resumed = true;
	ctx_deadline_start(rr->ctx, 0);
	r = unwrap_new(rr->ctx, rr->cd, &rr->new, &dek, &pass);
	ctx_deadline_end(rr->ctx);
	if (r >= 0)
		r = check_bridge(rr);
	if (r >= 0 && ri == CRYPT_REENCRYPT_CRASH) {
		if (rr->name[0])
			return ctx_fail(rr->ctx, -EBUSY, "the interrupted re-encryption needs crash "
					"recovery, which libcryptsetup does offline: close "
					"'%s' first", rr->name);
		r = recover_crash(rr->ctx, rr->cd, pass);
	}
	if (r >= 0)
		r = reencrypt(rr->ctx, rr->cd, rr->name[0] ? rr->name : NULL, pass,
			      CRYPT_ANY_SLOT, CRYPT_ANY_SLOT, true, rr->flags, &rr->ps);
	return r;
}

static bool has_bridge(struct crypt_device *cd)
{
	for (int id = 0; id < crypt_token_max(CRYPT_LUKS2); id++) {
		const char *type = luks_token_type(cd, id);

		if (type && !strcmp(type, BRIDGE_TOKEN_TYPE))
			return true;
	}
	return false;
}

/* true when the marked tokens' keyslots serve the data segment: W3 completed. */
static bool reencrypted(struct crypt_device *cd, const struct token_set *new)
{
	for (size_t i = 0; i < new->n; i++) {
		crypt_keyslot_info ki = new->t[i]->keyslot >= 0 ?
			crypt_keyslot_status(cd, new->t[i]->keyslot) : CRYPT_SLOT_INVALID;

		if (ki == CRYPT_SLOT_ACTIVE || ki == CRYPT_SLOT_ACTIVE_LAST)
			return true;
	}
	return false;
}

/* The event that a rekey begins (or resumes): the tokens it starts from (SET). */
static void audit_started(struct kc_ctx *ctx, const struct token_set *set, bool resume)
{
	for (size_t i = 0; i < set->n; i++)
		audit_token(ctx, set->t[i]->id, set->t[i]->uri);
	audit_field(ctx, "resume", resume ? "yes" : "no");
	audit_mark(ctx, "rekey-start");
}

/* For the event that a rekey finished: the kekcrypt tokens over the new DEK. */
static void audit_finished(struct kc_ctx *ctx, struct crypt_device *cd)
{
	char uri[TOKEN_URI_MAX + 1];
	const char *json;

	for (int id = -1; (id = luks_token_next(cd, id, TOKEN_TYPE)) >= 0;)
		if (crypt_token_json_get(cd, id, &json) >= 0)
			audit_token(ctx, id, token_json_field(json, "kekcrypt-key-id", uri,
							      sizeof(uri)) ? uri : NULL);
}

static int rekey_locked(struct rekey_run *rr)
{
	struct crypt_params_reencrypt p;
	crypt_reencrypt_info ri;
	int r;

	ri = crypt_reencrypt_status(rr->cd, &p);
	if (ri == CRYPT_REENCRYPT_INVALID)
		return ctx_fail(rr->ctx, -EMEDIUMTYPE, "its re-encryption metadata is invalid");
	r = tokens_read(rr->ctx, rr->cd, &rr->old, &rr->new);
	if (r < 0)
		return r;
	if (ri != CRYPT_REENCRYPT_NONE) {
		if (p.mode == CRYPT_REENCRYPT_ENCRYPT)
			return ctx_fail(rr->ctx, -EBUSY, "an in-place encryption is in progress: "
					"run 'kekcrypt encrypt --resume %s'", rr->device);
		if (!rr->new.n || p.mode != CRYPT_REENCRYPT_REENCRYPT)
			return ctx_fail(rr->ctx, -EBUSY, "a re-encryption kekcrypt did not start "
					"is in progress; finish it with 'cryptsetup reencrypt "
					"--resume-only'");
		audit_started(rr->ctx, &rr->new, true);
		r = resume(rr, ri);
	} else if (rr->new.n && reencrypted(rr->cd, &rr->new)) {
		log_dbg(rr->ctx, "re-encryption completed earlier; committing the tokens");
		rr->res.resumed = true;
		r = 0;
	} else {
		bool leftovers = rr->new.n || has_bridge(rr->cd);

		if (leftovers)
			r = rollback(rr->ctx, rr->cd);
		if (r >= 0 && (rr->flags & KC_REKEY_RESUME))
			return ctx_fail(rr->ctx, -ENOENT, "no interrupted rekey to resume%s",
					leftovers ? " (an unstarted one was rolled back)" : "");
		if (r >= 0 && leftovers) {
			token_set_clear(&rr->old);
			token_set_clear(&rr->new);
			r = tokens_read(rr->ctx, rr->cd, &rr->old, &rr->new);
		}
		if (r >= 0 && !rr->old.n)
			r = ctx_fail(rr->ctx, -ENOENT, "it has no kekcrypt token");
		if (r >= 0)
			audit_started(rr->ctx, &rr->old, false);
		if (r >= 0)
			r = start(rr);
	}
	if (r >= 0)
		r = crypt_load(rr->cd, CRYPT_LUKS2, NULL);
	if (r >= 0)
		r = commit(rr->ctx, rr->cd);
	return r;
}

static int rekey(struct kc_ctx *ctx, const char *device, uint32_t flags, kc_progress_fn fn,
		 void *usrptr, struct kc_rekey_result *r_result)
{
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	struct rekey_run rr = {
		.ctx = ctx, .device = device, .flags = flags,
		.ps = { .ctx = ctx, .fn = fn, .usrptr = usrptr },
		.res = { .size = sizeof(rr.res) },
	};
	_cleanup_(vol_unlockp) int lock = -1;
	int r;

	if (!ctx || !device || (flags & ~(uint32_t)(KC_REKEY_RESUME | KC_REKEY_JOURNAL |
						   KC_REKEY_CHECKSUM | KC_REKEY_FORCE)) ||
	    ((flags & KC_REKEY_JOURNAL) && (flags & KC_REKEY_CHECKSUM)) ||
	    !sized_ok(r_result, SIZED_V1(struct kc_rekey_result, name)))
		return -EINVAL;
	ctx_detail_clear(ctx);
	/* The device's writer lock for the whole run. */
	r = vol_load_for_write(ctx, device, VOL_WRITE_REKEY, &cd, &lock);
	rr.cd = cd;
	if (r >= 0)
		r = dm_find_mapping(ctx, device, crypt_get_uuid(cd), rr.name);
	/* A detached header is only where libcryptsetup reads and writes the metadata, offline
	 * and online (the mapping's data device is DEVICE). */
	if (r >= 0)
		r = rekey_locked(&rr);
	if (r >= 0)
		audit_finished(ctx, cd);
	if (r >= 0) {
		rr.res.n_tokens = (int)(rr.new.n ? rr.new.n : rr.old.n);
		snprintf(rr.res.name, sizeof(rr.res.name), "%s", rr.name);
		sized_put(r_result, &rr.res, sizeof(rr.res));
		r = rr.res.n_tokens;
	} else {
		ctx_detail_device(ctx, device);
	}
	token_set_clear(&rr.old);
	token_set_clear(&rr.new);
	return r;
}

int kc_rekey(struct kc_ctx *ctx, const char *device, uint32_t flags, kc_progress_fn fn,
	     void *usrptr, struct kc_rekey_result *r_result)
{
	struct audit a;

	audit_begin(ctx, &a, "rekey-finish", device);
	return audit_end(ctx, &a, rekey(ctx, device, flags, fn, usrptr, r_result));
}
