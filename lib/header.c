/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * LUKS2 header backup and restore, on libcryptsetup's crypt_header_backup() and
 * crypt_header_restore(). A backup is the whole header area (both binary headers, the JSON
 * and the keyslot areas): it holds the wrapped DEKs, so it is as sensitive as the header and
 * is created private (0600) and never over an existing file. A restore is refused unless the
 * backup carries the device's LUKS UUID (or force): restoring another volume's header would
 * make this one unopenable.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libcryptsetup.h>

#include "internal.h"

int kc_header_backup(struct kc_ctx *ctx, const char *device, const char *file)
{
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	struct stat st;
	int r;

	if (!ctx || !device || !file || !*file)
		return -EINVAL;
	ctx_detail_clear(ctx);
	if (lstat(file, &st) == 0)
		return ctx_fail(ctx, -EEXIST, "backup file '%s' exists; refusing to overwrite it",
				file);
	r = vol_load(ctx, device, &cd);
	if (r < 0)
		return r;
	/* libcryptsetup creates it with O_EXCL, owner read-only. */
	r = crypt_header_backup(cd, CRYPT_LUKS2, file);
	if (r < 0)
		return ctx_fail(ctx, lstat(file, &st) == 0 && r == -EINVAL ? -EEXIST :
				r == -ENOMEM ? r : -EIO, "device '%s': cannot write the header "
				"backup '%s' (%s)", device, file, strerror(-r));
	if (chmod(file, 0600) < 0)
		return ctx_fail(ctx, -EACCES, "backup '%s': chmod: %s", file, strerror(errno));
	log_dbg(ctx, "device '%s': header (UUID %s) saved to '%s'", device, crypt_get_uuid(cd),
		file);
	return 0;
}

/* The LUKS2 UUID of a header backup file. */
static int backup_uuid(struct kc_ctx *ctx, const char *file, char uuid[40])
{
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	struct stat st;
	int r;

	if (stat(file, &st) < 0)
		return ctx_fail(ctx, errno == ENOENT ? -ENOENT : -EACCES, "backup file '%s': %s",
				file, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return ctx_fail(ctx, -EINVAL, "backup '%s' is not a regular file", file);
	r = crypt_init(&cd, file);
	if (r >= 0) {
		luks_log_to(ctx, cd);
		r = crypt_load(cd, CRYPT_LUKS2, NULL);
	}
	if (r < 0 || !crypt_get_uuid(cd))
		return ctx_fail(ctx, -EMEDIUMTYPE, "'%s' is not a LUKS2 header backup", file);
	snprintf(uuid, 40, "%s", crypt_get_uuid(cd));
	return 0;
}

/* Check that FILE's header belongs to DEVICE (same LUKS UUID). */
static int check_same_volume(struct kc_ctx *ctx, struct crypt_device *cd, const char *device,
			     const char *file, const char *uuid)
{
	if (crypt_load(cd, CRYPT_LUKS2, NULL) < 0 || !crypt_get_uuid(cd))
		return ctx_fail(ctx, -EMEDIUMTYPE, "device '%s' holds no readable LUKS2 header, so "
				"the backup cannot be matched to it; use --force if you are sure "
				"'%s' belongs to it", device, file);
	if (strcmp(crypt_get_uuid(cd), uuid))
		return ctx_fail(ctx, -EXDEV, "backup '%s' is of volume %s, but device '%s' is "
				"volume %s; refusing (use --force to restore it anyway)", file,
				uuid, device, crypt_get_uuid(cd));
	return 0;
}

static int header_restore(struct kc_ctx *ctx, const char *device, const char *file, bool force)
{
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	_cleanup_(vol_unlockp) int lock = -1;
	char uuid[40];
	int r;

	if (!ctx || !device || !file)
		return -EINVAL;
	ctx_detail_clear(ctx);
	r = backup_uuid(ctx, file, uuid);
	if (r >= 0)
		r = vol_check_writable(ctx, vol_metadata(ctx, device), false);
	/* The writers' lock, not vol_load_for_write(): the header there may be anything. */
	if (r >= 0)
		r = vol_lock(ctx, device, &lock);
	if (r >= 0)
		r = vol_init(ctx, device, &cd);
	if (r < 0)
		return r;
	if (!force) {
		r = check_same_volume(ctx, cd, device, file, uuid);
		if (r < 0)
			return r;
	}
	/* A fresh handle: crypt_header_restore() wants one without a loaded header type
	 * other than LUKS2, and nothing stale. */
	crypt_free(cd);
	cd = NULL;
	r = vol_crypt_init(ctx, device, &cd);
	if (r >= 0)
		r = crypt_header_restore(cd, CRYPT_LUKS2, file);
	if (r < 0)
		return ctx_fail(ctx, r == -ENOMEM ? r : -EIO, "device '%s': restoring the header "
				"from '%s' failed (%s); the backup may not fit this device", device,
				file, strerror(-r));
	log_dbg(ctx, "device '%s': header restored from '%s' (UUID %s)", device, file, uuid);
	return 0;
}

int kc_header_restore(struct kc_ctx *ctx, const char *device, const char *file, bool force)
{
	struct audit a;

	audit_begin(ctx, &a, "header-restore", device);
	audit_field(ctx, "file", file);
	if (force)
		audit_field(ctx, "force", "yes");
	return audit_end(ctx, &a, header_restore(ctx, device, file, force));
}
