/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* LUKS2 volumes: load, check, and the kekcrypt tokens on them. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/fs.h>

#include <blkid.h>
#include <libcryptsetup.h>
#include <openssl/rand.h>

#include "internal.h"

#define KEYSLOT_PASS_LEN 32
#define KEYSLOT_PASS_INFO "kekcrypt keyslot passphrase v1"

void vol_freep(struct crypt_device **cd)
{
	crypt_free(*cd);
	*cd = NULL;
}

int vol_crypt_init(struct kc_ctx *ctx, const char *device, struct crypt_device **r_cd)
{
	struct crypt_device *cd = NULL;
	int r;

	/* The one place a handle is made: a detached header holds the metadata, DEVICE only the
	 * data (cryptsetup --header). Not crypt_set_data_device(): it wants a loaded header. */
	if (ctx->header)
		r = crypt_init_data_device(&cd, ctx->header, device);
	else
		r = crypt_init(&cd, device);
	if (r < 0)
		return r;
	luks_log_to(ctx, cd);
	*r_cd = cd;
	return 0;
}

/* PATH, the device or its detached header (WHAT), exists and is a block device or a file. */
static int vol_check_path(struct kc_ctx *ctx, const char *what, const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return ctx_fail(ctx, errno == ENOENT ? -ENOENT : -errno, "%s '%s': %s", what,
				path, strerror(errno));
	if (!S_ISBLK(st.st_mode) && !S_ISREG(st.st_mode))
		return ctx_fail(ctx, -EINVAL, "%s '%s' is neither a block device nor a file", what,
				path);
	return 0;
}

int vol_init(struct kc_ctx *ctx, const char *device, struct crypt_device **r_cd)
{
	int r;

	r = vol_check_path(ctx, "device", device);
	if (r >= 0 && ctx->header)
		r = vol_check_path(ctx, "header file", ctx->header);
	if (r < 0)
		return r;
	r = vol_crypt_init(ctx, device, r_cd);
	if (r < 0)
		return ctx_fail(ctx, r == -ENOTBLK || r == -EINVAL ? -EMEDIUMTYPE : r,
				"device '%s'%s%s%s: cannot be used (%s)", device,
				ctx->header ? " with header file '" : "", ctx->header ?: "",
				ctx->header ? "'" : "", strerror(-r));
	return 0;
}

int kc_set_header(struct kc_ctx *ctx, const char *header_path)
{
	struct stat st;
	char *copy = NULL;

	if (!ctx || (header_path && !*header_path))
		return -EINVAL;
	ctx_detail_clear(ctx);
	/* Absent is fine here: kc_format() creates it; the others fail on use. */
	if (header_path && stat(header_path, &st) == 0 && !S_ISBLK(st.st_mode) &&
	    !S_ISREG(st.st_mode))
		return ctx_fail(ctx, -EINVAL, "header file '%s' is neither a regular file nor a "
				"block device", header_path);
	if (header_path && !(copy = strdup(header_path)))
		return -ENOMEM;
	free(ctx->header);
	ctx->header = copy;
	return 0;
}

/* What libblkid read is untrusted and goes into messages: keep terminals safe. */
static void printable(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			*s = '?';
}

int vol_probe(const char *device, char type[32], char version[16], bool *r_pt)
{
	const char *v = NULL;
	blkid_probe pr;
	int r;

	type[0] = version[0] = '\0';
	*r_pt = false;
	pr = blkid_new_probe_from_filename(device);
	if (!pr)
		return errno ? -errno : -EIO;
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE | BLKID_SUBLKS_VERSION);
	blkid_probe_enable_partitions(pr, 1);
	blkid_probe_set_partitions_flags(pr, BLKID_PARTS_MAGIC);
	r = blkid_do_safeprobe(pr);
	if (r == 0 && blkid_probe_lookup_value(pr, "TYPE", &v, NULL) == 0) {
		snprintf(type, 32, "%s", v);
		if (blkid_probe_lookup_value(pr, "VERSION", &v, NULL) == 0)
			snprintf(version, 16, "%s", v);
	} else if (r == 0 && blkid_probe_lookup_value(pr, "PTTYPE", &v, NULL) == 0) {
		snprintf(type, 32, "%s", v);
		*r_pt = true;
	}
	blkid_free_probe(pr);
	printable(type);
	printable(version);
	return r == 0 ? 1 : r == 1 ? 0 : r == -2 ? -ENOTUNIQ : -EIO;
}

int vol_not_luks2(struct kc_ctx *ctx, const char *device)
{
	const char *what = ctx->header ? "header file" : "device";
	const char *path = ctx->header ?: device;
	char type[32], version[16];
	bool pt;
	int r = vol_probe(path, type, version, &pt);

	if (r > 0 && !strcmp(type, "crypto_LUKS") && version[0] == '1')
		return ctx_fail(ctx, -ENOEXEC, "%s '%s' is a LUKS1 volume: convert it to LUKS2 "
				"first with 'kekcrypt kek add %s --convert --header-backup FILE ...' "
				"(or 'cryptsetup convert --type luks2 %s')", what, path, device,
				device);
	if (r > 0 && !strcmp(type, "crypto_LUKS"))
		return ctx_fail(ctx, -EMEDIUMTYPE, "%s '%s' is not a LUKS2 volume that "
				"libcryptsetup can load: its LUKS%s header is corrupt (or of a newer "
				"format)", what, path, version);
	if (r > 0 && pt)
		return ctx_fail(ctx, -EMEDIUMTYPE, "%s '%s' is not a LUKS2 volume: it holds a "
				"partition table (%s); name one of its partitions", what, path, type);
	if (r > 0)
		return ctx_fail(ctx, -EMEDIUMTYPE, "%s '%s' is not a LUKS2 volume: it holds %s",
				what, path, type);
	if (r == -ENOTUNIQ)
		return ctx_fail(ctx, -EMEDIUMTYPE, "%s '%s' is not a LUKS2 volume: it holds "
				"several conflicting signatures (see 'wipefs %s')", what, path, path);
	/* A detached header (ADE's OS disk) leaves the device without any signature. */
	if (r == 0)
		return ctx_fail(ctx, -EMEDIUMTYPE, "%s '%s' is not a LUKS2 volume: it holds no "
				"LUKS header and nothing else recognisable (empty, or random data%s)",
				what, path, ctx->header ? "" : "; if its LUKS2 header is detached, "
				"name it with --header");
	return ctx_fail(ctx, -EMEDIUMTYPE, "%s '%s' is not a LUKS2 volume or its header is "
			"corrupt", what, path);
}

int vol_load(struct kc_ctx *ctx, const char *device, struct crypt_device **r_cd)
{
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	int r;

	r = vol_init(ctx, device, &cd);
	if (r < 0)
		return r;
	r = crypt_load(cd, CRYPT_LUKS2, NULL);
	if (r == -EACCES || r == -EPERM)
		return ctx_fail(ctx, -EACCES, "device '%s': permission denied", device);
	if (r < 0)
		return vol_not_luks2(ctx, device);
	log_dbg(ctx, "device '%s': LUKS2 header loaded (UUID %s)", device, crypt_get_uuid(cd));
	*r_cd = TAKE_PTR(cd);
	return 0;
}

int vol_keyslot_passphrase(const struct kc_secret *dek, const char *uuid,
			   struct kc_secret **r_pass)
{
	_cleanup_(kc_secret_freep) struct kc_secret *pass = NULL;
	int r;

	pass = kc_secret_alloc(KEYSLOT_PASS_LEN);
	if (!pass)
		return -ENOMEM;
	/* Salted with the volume UUID so equal DEKs on two volumes give unrelated slots. */
	r = util_hkdf_sha256(dek->data, dek->len, uuid, strlen(uuid), KEYSLOT_PASS_INFO,
			     pass->data, pass->len);
	if (r < 0)
		return r;
	*r_pass = TAKE_PTR(pass);
	return 0;
}

int vol_check_writable(struct kc_ctx *ctx, const char *device, bool exclusive)
{
	struct stat st;
	int fd, flags = O_RDWR | O_CLOEXEC;

	if (exclusive && stat(device, &st) == 0 && S_ISBLK(st.st_mode))
		flags |= O_EXCL;
	fd = open(device, flags);
	if (fd < 0) {
		int e = errno;

		if (e == EROFS || e == EACCES || e == EPERM)
			return ctx_fail(ctx, e == EROFS ? -EROFS : -EACCES,
					"device '%s' is not writable: %s", device, strerror(e));
		if (e == EBUSY)
			return ctx_fail(ctx, -EBUSY, "device '%s' is in use", device);
		return ctx_fail(ctx, e == ENOENT ? -ENOENT : -e, "device '%s': %s", device,
				strerror(e));
	}
	/* A read-only block device (losetup -r, write-protected disk) may still open O_RDWR. */
	if ((flags & O_EXCL) || (fstat(fd, &st) == 0 && S_ISBLK(st.st_mode))) {
		int ro = 0;

		if (ioctl(fd, BLKROGET, &ro) == 0 && ro) {
			close(fd);
			return ctx_fail(ctx, -EROFS, "device '%s' is read-only", device);
		}
	}
	close(fd);
	return 0;
}

int vol_token_read(struct kc_ctx *ctx, struct crypt_device *cd, int id, struct token **r_token)
{
	_cleanup_(token_freep) struct token *t = NULL;
	const char *json;
	int r;

	if (!luks_token_is(cd, id, TOKEN_TYPE))
		return -ENOENT;
	r = crypt_token_json_get(cd, id, &json);
	if (r < 0)
		return ctx_fail(ctx, -EINVAL, "token %d cannot be read", id);
	r = token_parse(ctx, json, &t);
	if (r >= 0)
		r = kek_token_check(ctx, t);
	if (r < 0)
		return r;
	t->id = id;
	*r_token = TAKE_PTR(t);
	return 0;
}

int vol_token_add(struct kc_ctx *ctx, struct crypt_device *cd, struct kc_kek *kek,
		  const struct kc_wrapped *wrapped, const struct kc_secret *dek, uint32_t avoid)
{
	_cleanup_(kc_secret_freep) struct kc_secret *pass = NULL;
	_cleanup_(freep) char *json = NULL;
	struct token t = {
		.id = -1, .version = TOKEN_FORMAT_VERSION, .provider = (char *)kek->ops->name,
		.uri = kek->uri, .key_version = wrapped->key_version, .alg = (char *)wrapped->alg,
		.wrapped = wrapped->data, .wrapped_len = wrapped->len,
	};
	char created[32];
	int id = avoid ? luks_token_free(cd, avoid) : CRYPT_ANY_TOKEN, slot, r;

	if (id == -ENOSPC)
		return ctx_fail(ctx, id, "the LUKS2 header has no room for another token (no "
				"free token id)");
	util_utc_now(created);
	t.created = created;
	r = vol_keyslot_passphrase(dek, crypt_get_uuid(cd), &pass);
	if (r < 0)
		return r;
	r = luks_minimal_pbkdf(ctx, cd);
	if (r < 0)
		return r;
	slot = crypt_keyslot_add_by_volume_key(cd, CRYPT_ANY_SLOT, (const char *)dek->data,
					       dek->len, (const char *)pass->data, pass->len);
	if (slot < 0)
		return ctx_fail(ctx, slot == -ENOMEM ? slot : -ENOSPC,
				"the LUKS2 header has no room for another token (no free keyslot "
				"for it: %s)", strerror(-slot));
	t.keyslot = slot;
	r = token_serialise(ctx, &t, &json);
	if (r >= 0) {
		r = crypt_token_json_set(cd, id, json);
		if (r < 0)
			r = ctx_fail(ctx, r == -ENOMEM ? r : -ENOSPC,
				     "the LUKS2 header has no room for another token (%s)",
				     strerror(-r));
	}
	/* Roll back: a keyslot without its token is useless to us. */
	if (r < 0)
		crypt_keyslot_destroy(cd, slot);
	return r;
}
