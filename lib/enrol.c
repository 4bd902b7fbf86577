/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Enrolment: bring a LUKS2 volume that kekcrypt did not format (cryptsetup, systemd-cryptenroll,
 * clevis), or a kekcrypt volume whose KEKs are gone, under a KEK. The volume key comes from the
 * keyslot that a secret opens (a passphrase, a key file's content, a recovery key), as with
 * `clevis luks bind -k` and `systemd-cryptenroll --unlock-key-file`; libcryptsetup checks it
 * against the LUKS2 digest. What follows is kek add's write, under the same transaction
 * (vol_load_for_write()) and trust policy (kek_open(): a KEK that local policy refuses wraps
 * nothing).
 *
 * The keyslot the secret opened stays unless the caller asks to wipe it, and then only after
 * the new token is written, every kekcrypt token has been unwrapped again through its KMS, and
 * some other path still opens the volume (vol_check_keyslot_removable()). A crash between the
 * two writes leaves both paths, never neither.
 *
 * Also the LUKS1 -> LUKS2 conversion that enrolling a LUKS1 volume needs first.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <libcryptsetup.h>

#include "internal.h"

int vol_dek_by_secret(struct kc_ctx *ctx, struct crypt_device *cd, const char *device,
		      const char *secret, size_t secret_len, uint32_t flags,
		      struct kc_secret **r_dek, int *r_slot)
{
	_cleanup_(kc_secret_freep) struct kc_secret *dek = NULL, *key = NULL;
	const char *what = flags & KC_ENROL_RECOVERY_KEY ? "recovery key" : "passphrase";
	int size = crypt_get_volume_key_size(cd), slot, r;
	size_t len;

	if (flags & KC_ENROL_RECOVERY_KEY) {
		r = recovery_key_normalise(ctx, secret, secret_len, &key);
		if (r < 0)
			return r;
		secret = (const char *)key->data;
		secret_len = key->len;
	}
	if (size <= 0)
		return ctx_fail(ctx, -EINVAL, "device '%s': no volume key size in its header",
				device);
	dek = kc_secret_alloc((size_t)size);
	if (!dek)
		return -ENOMEM;
	len = dek->len;
	slot = crypt_volume_key_get(cd, CRYPT_ANY_SLOT, (char *)dek->data, &len, secret,
				    secret_len);
	if (slot == -EPERM || slot == -ENOENT)
		return ctx_fail(ctx, -EBADMSG, "device '%s': the %s given opens none of its "
				"keyslots", device, what);
	if (slot < 0)
		return ctx_fail(ctx, slot == -ENOMEM ? slot : -EIO, "device '%s': cannot get the "
				"volume key with the %s (%s)", device, what, strerror(-slot));
	dek->len = len;
	log_dbg(ctx, "device '%s': the %s opens keyslot %d", device, what, slot);
	*r_dek = TAKE_PTR(dek);
	*r_slot = slot;
	return 0;
}

/* Wrap DEK under KEK and store it in a new token, whose id is not in AVOID: its id. */
static int enrol_wrap(struct kc_ctx *ctx, struct crypt_device *cd, struct kc_kek *kek,
		      const struct kc_secret *dek, uint32_t avoid)
{
	struct kc_wrapped wrapped = { 0 };
	int r;

	ctx_deadline_start(ctx, 0);
	r = kek->ops->wrap(ctx, kek->state, dek, &wrapped);
	ctx_deadline_end(ctx);
	if (r >= 0)
		r = vol_token_add(ctx, cd, kek, &wrapped, dek, avoid);
	wrapped_clear(&wrapped);
	return r;
}

int enrol_wipe(struct kc_ctx *ctx, struct crypt_device *cd, const char *device, int slot,
	       const struct kc_secret *dek, struct kc_enrol_result *res)
{
	char buf[16];
	int r;

	r = vol_check_keyslot_removable(ctx, cd, device, slot, dek);
	if (r < 0)
		return r;
	r = crypt_keyslot_destroy(cd, slot);
	if (r < 0)
		return ctx_fail(ctx, r == -ENOMEM ? r : -EIO, "device '%s': cannot destroy keyslot "
				"%d (%s)", device, slot, strerror(-r));
	snprintf(buf, sizeof(buf), "%d", slot);
	audit_field(ctx, "wiped-keyslot", buf);
	log_dbg(ctx, "device '%s': keyslot %d (the passphrase's) destroyed", device, slot);
	res->wiped = true;
	return 0;
}

static int kek_enrol(struct kc_ctx *ctx, const char *device, const char *kek_uri,
		     const char *secret, size_t secret_len, uint32_t flags,
		     struct kc_enrol_result *res)
{
	_cleanup_(kc_secret_freep) struct kc_secret *dek = NULL;
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	_cleanup_(kek_closep) struct kc_kek *kek = NULL;
	_cleanup_(vol_unlockp) int lock = -1;
	bool wipe = flags & KC_ENROL_WIPE_PASSPHRASE;
	int r;

	r = kek_open(ctx, kek_uri, &kek);
	/* Only a URI its provider accepted: a refused one may hold a secret (a pin-value). */
	if (r >= 0)
		audit_kek(ctx, kek->uri);
	if (r >= 0)
		r = vol_load_for_write(ctx, device, 0, &cd, &lock);
	if (r >= 0 && (res->token_id = vol_token_find_uri(ctx, cd, kek_uri)) < 0)
		res->token_id = -1;
	if (r >= 0 && res->token_id >= 0 && !wipe)
		return ctx_fail(ctx, -EEXIST, "device '%s' already has a token for %s (token %d)",
				device, kek_uri, res->token_id);
	if (r >= 0)
		r = vol_dek_by_secret(ctx, cd, device, secret, secret_len, flags, &dek,
				      &res->auth_keyslot);
	if (r >= 0 && res->token_id < 0) {
		/* Azure Disk Encryption keeps token 5 for itself (its confidential VMs'). */
		r = res->token_id = enrol_wrap(ctx, cd, kek, dek,
					       flags & KC_ENROL_NOT_TOKEN_5 ? 1u << 5 : 0);
		res->added = r >= 0;
		res->keyslot = r >= 0 ? luks_token_slot(cd, r) : -1;
	}
	if (r >= 0 && wipe)
		r = enrol_wipe(ctx, cd, device, res->auth_keyslot, dek, res);
	return r < 0 ? r : res->token_id;
}

int kc_kek_enrol(struct kc_ctx *ctx, const char *device, const char *kek_uri,
		 const char *secret, size_t secret_len, uint32_t flags,
		 struct kc_enrol_result *r_res)
{
	struct kc_enrol_result res = { .size = sizeof(res), .token_id = -1, .keyslot = -1,
				       .auth_keyslot = -1 };
	struct audit a;
	int r;

	if (!ctx || !device || !kek_uri || !secret ||
	    (r_res && !sized_ok(r_res, SIZED_V1(struct kc_enrol_result, wiped))))
		return -EINVAL;
	ctx_detail_clear(ctx);
	audit_begin(ctx, &a, "kek-add", device);
	audit_field(ctx, "by", flags & KC_ENROL_RECOVERY_KEY ? "recovery-key" : "passphrase");
	r = kek_enrol(ctx, device, kek_uri, secret, secret_len, flags, &res);
	audit_token(ctx, res.added ? res.token_id : -1, NULL);
	if (r < 0)
		ctx_detail_device(ctx, device);
	else
		log_dbg(ctx, "device '%s': token %d %s for '%s'", device, r,
			res.added ? "added" : "already there", kek_uri);
	if (r >= 0)
		sized_put(r_res, &res, sizeof(res));
	return audit_end(ctx, &a, r);
}

static int secret_keyslot(struct kc_ctx *ctx, const char *device, const char *secret,
			  size_t secret_len, uint32_t flags)
{
	_cleanup_(kc_secret_freep) struct kc_secret *dek = NULL;
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	int slot = -1, r;

	r = vol_load(ctx, device, &cd);
	if (r >= 0)
		r = vol_dek_by_secret(ctx, cd, device, secret, secret_len, flags, &dek, &slot);
	return r < 0 ? r : slot;
}

int kc_secret_keyslot(struct kc_ctx *ctx, const char *device, const char *secret,
		      size_t secret_len, uint32_t flags)
{
	int r;

	if (!ctx || !device || !secret)
		return -EINVAL;
	ctx_detail_clear(ctx);
	r = secret_keyslot(ctx, device, secret, secret_len, flags);
	if (r < 0)
		ctx_detail_device(ctx, device);
	return r;
}

/* Save DEVICE's LUKS1 header to FILE, then convert it. */
static int convert_loaded(struct kc_ctx *ctx, struct crypt_device *cd, const char *device,
			  const char *file)
{
	int r;

	/* libcryptsetup creates FILE with O_EXCL. */
	r = crypt_header_backup(cd, CRYPT_LUKS1, file);
	if (r < 0)
		return ctx_fail(ctx, r == -ENOMEM ? r : -EIO, "device '%s': cannot write the "
				"header backup '%s' (%s); nothing converted", device, file,
				strerror(-r));
	if (chmod(file, 0600) < 0)
		return ctx_fail(ctx, -EACCES, "backup '%s': chmod: %s; nothing converted", file,
				strerror(errno));
	/* libcryptsetup refuses a device that is active (-EBUSY) itself too, and a header with
	 * LUKSMeta (clevis's LUKS1 bindings). */
	r = crypt_convert(cd, CRYPT_LUKS2, NULL);
	if (r < 0)
		return ctx_fail(ctx, r == -ENOMEM || r == -EBUSY ? r : -EMEDIUMTYPE,
				"device '%s': libcryptsetup cannot convert this LUKS1 header to "
				"LUKS2 (%s); it is unchanged, and saved in '%s'", device,
				strerror(-r), file);
	log_dbg(ctx, "device '%s': converted to LUKS2 (LUKS1 header saved in '%s')", device,
		file);
	return 1;
}

static int luks1_convert(struct kc_ctx *ctx, const char *device, const char *file)
{
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	_cleanup_(vol_unlockp) int lock = -1;
	struct audit a;
	struct stat st;
	int r;

	/* Exclusive: a LUKS1 block device that is mapped or mounted is refused. */
	r = vol_check_writable(ctx, vol_metadata(ctx, device), true);
	if (r >= 0)
		r = vol_lock(ctx, device, &lock);
	if (r >= 0)
		r = vol_init(ctx, device, &cd);
	if (r < 0)
		return r;
	if (crypt_load(cd, CRYPT_LUKS2, NULL) >= 0)
		return 0;
	if (crypt_load(cd, CRYPT_LUKS1, NULL) < 0)
		return vol_not_luks2(ctx, device);
	/* An event only for a LUKS1 volume: for a LUKS2 one nothing happens. */
	audit_begin(ctx, &a, "luks1-convert", device);
	if (lstat(file, &st) == 0)
		r = ctx_fail(ctx, -EEXIST, "backup file '%s' exists; refusing to overwrite it",
			     file);
	else
		r = convert_loaded(ctx, cd, device, file);
	return audit_end(ctx, &a, r);
}

int kc_luks1_convert(struct kc_ctx *ctx, const char *device, const char *backup_file)
{
	int r;

	if (!ctx || !device || !backup_file || !*backup_file)
		return -EINVAL;
	ctx_detail_clear(ctx);
	r = luks1_convert(ctx, device, backup_file);
	if (r < 0)
		ctx_detail_device(ctx, device);
	return r;
}
