/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Mapped volumes: open, close and status through libcryptsetup and libdevmapper. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <libcryptsetup.h>
#include <libdevmapper.h>

#include "internal.h"

#define DM_CONTROL "/dev/mapper/control"

static void dm_log_quiet(int level, const char *file, int line, int dm_errno, const char *f,
			 ...)
{
}

int dm_available(struct kc_ctx *ctx)
{
	int fd;

	/* libdevmapper prints to stderr by default; the library never prints. */
	dm_log_with_errno_init(dm_log_quiet);
	fd = open(DM_CONTROL, O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	if (errno == EACCES || errno == EPERM)
		return ctx_fail(ctx, -EACCES, "device-mapper: permission denied (run as root)");
	return ctx_fail(ctx, -ENOTSUP,
			"device-mapper is not available (%s: %s); is dm_crypt loaded?",
			DM_CONTROL, strerror(errno));
}

int dm_check_name(struct kc_ctx *ctx, const char *name)
{
	if (!name || !*name || strlen(name) >= 128 || strchr(name, '/') ||
	    !strcmp(name, ".") || !strcmp(name, ".."))
		return ctx_fail(ctx, -EINVAL, "'%s' is not a valid mapping name", name ?: "");
	return 0;
}

/* The active state of NAME: 0 inactive, 1 active, 2 active and in use. */
int dm_mapping_state(const char *name)
{
	crypt_status_info st = crypt_status(NULL, name);

	return st == CRYPT_BUSY ? 2 : st == CRYPT_ACTIVE ? 1 : 0;
}

static int read_sysfs(const char *path, char *buf, size_t size)
{
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -EIO;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

/* The holder (dm device) below DIR, a sysfs holders directory, whose dm UUID starts with
 * PREFIX, searched DEPTH levels up: a volume under online re-encryption may sit on helper
 * devices of libcryptsetup's (a hotzone and an overlay) rather than on the device itself.
 * Its name into NAME: true when found. */
static bool find_holder(const char *dir, const char *prefix, int depth, char name[128])
{
	char path[512], dmuuid[256];
	struct dirent *de;
	bool found = false;
	DIR *d = opendir(dir);

	if (!d)
		return false;
	while (!found && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/block/%s/dm/uuid", de->d_name);
		if (read_sysfs(path, dmuuid, sizeof(dmuuid)) == 0 &&
		    !strncmp(dmuuid, prefix, strlen(prefix))) {
			snprintf(path, sizeof(path), "/sys/block/%s/dm/name", de->d_name);
			found = read_sysfs(path, name, 128) == 0 && name[0];
		} else if (depth > 0) {
			snprintf(path, sizeof(path), "/sys/block/%s/holders", de->d_name);
			found = find_holder(path, prefix, depth - 1, name);
		}
	}
	closedir(d);
	return found;
}

int dm_find_mapping(struct kc_ctx *ctx, const char *device, const char *uuid,
		    char name[128])
{
	char dir[128], prefix[64];
	struct stat st;
	size_t n;

	name[0] = 0;
	if (stat(device, &st) < 0 || !S_ISBLK(st.st_mode))
		return 0;	/* an image file is never mapped directly */
	n = (size_t)snprintf(prefix, sizeof(prefix), "CRYPT-LUKS2-");
	for (const char *p = uuid; *p && n < sizeof(prefix) - 2; p++)
		if (*p != '-')
			prefix[n++] = *p;
	prefix[n++] = '-';
	prefix[n] = 0;
	snprintf(dir, sizeof(dir), "/sys/dev/block/%u:%u/holders", major(st.st_rdev),
		 minor(st.st_rdev));
	if (!find_holder(dir, prefix, 2, name))
		name[0] = 0;
	if (name[0])
		log_dbg(ctx, "device '%s' is active as '%s'", device, name);
	return 0;
}

static int activate(struct kc_ctx *ctx, struct crypt_device *cd, const char *device,
		    const char *name, const struct kc_secret *dek, uint32_t flags)
{
	uint32_t cflags = 0;
	int r;

	if (flags & KC_OPEN_READONLY)
		cflags |= CRYPT_ACTIVATE_READONLY;
	if (flags & KC_OPEN_ALLOW_DISCARDS)
		cflags |= CRYPT_ACTIVATE_ALLOW_DISCARDS;
	/* The key goes to dm-crypt through the kernel keyring where the kernel has one, so that
	 * the table shows a keyring reference rather than the key. */
	crypt_volume_key_keyring(cd, 1);
	if (crypt_reencrypt_status(cd, NULL) == CRYPT_REENCRYPT_NONE) {
		r = crypt_activate_by_volume_key(cd, name, (const char *)dek->data, dek->len,
						 cflags);
	} else {
		/* An in-place encryption or a rekey under way (stopped, or cut by a power
		 * loss): libcryptsetup maps such a volume (its parts as the metadata says, an
		 * interrupted chunk recovered first) only from a keyslot passphrase, which
		 * unlocks every key the mapping needs; kekcrypt's is derived from the DEK. */
		_cleanup_(kc_secret_freep) struct kc_secret *pass = NULL;

		log_dbg(ctx, "device '%s': re-encryption under way: activating by keyslot", device);
		r = vol_keyslot_passphrase(dek, crypt_get_uuid(cd), &pass);
		if (r >= 0)
			r = crypt_activate_by_passphrase(cd, name, CRYPT_ANY_SLOT,
							 (const char *)pass->data, pass->len,
							 cflags);
		if (r == -EPERM || r == -ENOENT)
			return ctx_fail(ctx, -EBUSY, "device '%s': its re-encryption is under way "
					"and the key of this token does not map it", device);
	}
	if (r == -EBUSY || r == -EEXIST)
		return ctx_fail(ctx, -EBUSY, "device '%s' is in use (already open under another "
				"name, mounted, or held by another mapping)", device);
	if (r == -EPERM || r == -EACCES)
		return ctx_fail(ctx, -EACCES, "activating '%s': permission denied", name);
	if (r < 0)
		return ctx_fail(ctx, r == -ENOMEM ? r : -EIO, "activating '%s' on '%s' failed (%s)",
				name, device, strerror(-r));
	return 0;
}

static int open_volume(struct kc_ctx *ctx, const char *device, const char *name, int token_id,
		       uint32_t flags, unsigned timeout_ms, struct kc_unlock_result *r_result)
{
	_cleanup_(kc_secret_freep) struct kc_secret *dek = NULL;
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	int r;

	if (!ctx || !device || !sized_ok(r_result, UNLOCK_RESULT_V1))
		return -EINVAL;
	ctx_detail_clear(ctx);
	r = dm_check_name(ctx, name);
	if (r >= 0)
		r = dm_available(ctx);
	if (r >= 0 && dm_mapping_state(name))
		r = ctx_fail(ctx, -EEXIST, "a mapping named '%s' already exists", name);
	if (r >= 0)
		r = vol_load(ctx, device, &cd);
	if (r >= 0)
		r = vol_unlock_retry(ctx, cd, device, token_id, timeout_ms, &dek, r_result);
	if (r >= 0)
		r = activate(ctx, cd, device, name, dek, flags);
	if (r < 0)
		ctx_detail_device(ctx, device);
	else
		log_dbg(ctx, "device '%s': active as '%s'", device, name);
	return r;
}

int kc_open(struct kc_ctx *ctx, const char *device, const char *name, int token_id,
	    uint32_t flags, unsigned timeout_ms, struct kc_unlock_result *r_result)
{
	struct audit a;

	audit_begin(ctx, &a, "unlock", device);
	audit_field(ctx, "by", "open");
	audit_field(ctx, "name", name);
	return audit_end(ctx, &a, open_volume(ctx, device, name, token_id, flags, timeout_ms,
					      r_result));
}

int kc_close(struct kc_ctx *ctx, const char *name)
{
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	int r;

	if (!ctx)
		return -EINVAL;
	ctx_detail_clear(ctx);
	r = dm_check_name(ctx, name);
	if (r >= 0)
		r = dm_available(ctx);
	if (r < 0)
		return r;
	switch (dm_mapping_state(name)) {
	case 0:
		return ctx_fail(ctx, -ENOENT, "no active mapping named '%s'", name);
	case 2:
		return ctx_fail(ctx, -EBUSY, "mapping '%s' is in use (mounted or held open); "
				"unmount it first", name);
	}
	r = crypt_init_by_name(&cd, name);
	if (r < 0)
		return ctx_fail(ctx, -EIO, "mapping '%s': %s", name, strerror(-r));
	luks_log_to(ctx, cd);
	r = crypt_deactivate(cd, name);
	if (r == -EBUSY)
		return ctx_fail(ctx, -EBUSY, "mapping '%s' is in use", name);
	if (r < 0)
		return ctx_fail(ctx, -EIO, "closing '%s' failed (%s)", name, strerror(-r));
	return 0;
}
