/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The write transaction: what every verb that changes a header does first, and the one lock
 * that serialises them. A header anyone can write must not make a reader write, so only here,
 * under the device's lock, are interrupted operations finished or undone: a KEK rotation's
 * marks (the state machine at the top of rotate.c) are resolved from the header alone; an
 * interrupted rekey's state (rekey.c) makes every other writer refuse until
 * `rekey --resume` has finished it.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <libcryptsetup.h>

#include "internal.h"

#define LOCK_DIR "/run/kekcrypt"

/* Whether id M's old token may be replaced by the new one: it holds O's unmarked kekcrypt token
 * (old content, or new after W3), or nothing; never a token of another kind. */
static bool old_id_ours(struct crypt_device *cd, const struct kc_rotation_pending *m)
{
	struct kc_rotation_pending om;

	if (m->from_token_id == m->token_id)
		return false;
	if (crypt_token_status(cd, m->from_token_id, NULL) == CRYPT_TOKEN_INACTIVE)
		return true;
	return luks_token_is(cd, m->from_token_id, TOKEN_TYPE) &&
	       !luks_rotation_mark(cd, m->from_token_id, &om);
}

/* Finish or undo one interrupted rotation (the state machine at the top of rotate.c). */
static int recover_one(struct kc_ctx *ctx, struct crypt_device *cd, const char *device,
		       const struct kc_rotation_pending *m)
{
	bool ours = old_id_ours(cd, m);
	bool old_there = ours && crypt_token_status(cd, m->from_token_id, NULL) !=
				 CRYPT_TOKEN_INACTIVE;
	int r;

	if (!m->verified && old_there) {
		r = luks_token_remove(ctx, cd, m->token_id);
		if (r >= 0)
			log_info(ctx, "device '%s': rolled back the interrupted rotation of token "
				 "%d (removed the unverified token %d)", device, m->from_token_id,
				 m->token_id);
	} else if (ours) {
		r = luks_rotation_move(ctx, cd, m->token_id, m->from_token_id);
		if (r >= 0)
			log_info(ctx, "device '%s': completed the interrupted rotation of token %d "
				 "(%s)", device, m->from_token_id, m->verified ? "new token verified" :
				 "the only copy left");
	} else {
		r = luks_rotation_mark_set(ctx, cd, m->token_id, -1, NULL);
		if (r >= 0)
			log_info(ctx, "device '%s': token %d of an interrupted rotation of token %d "
				 "kept as it is (id %d holds another token)", device, m->token_id,
				 m->from_token_id, m->from_token_id);
	}
	return r;
}

/* The number of rotations finished or undone, or a negative errno. */
static int recover_all(struct kc_ctx *ctx, struct crypt_device *cd, const char *device)
{
	struct kc_rotation_pending m;
	int r = 0, n = 0, max = crypt_token_max(CRYPT_LUKS2);

	for (int id = 0; id < max && r >= 0; id++)
		if (luks_rotation_mark(cd, id, &m)) {
			r = recover_one(ctx, cd, device, &m);
			n++;
		}
	return r < 0 ? r : n;
}

static bool pending_any(struct crypt_device *cd)
{
	struct kc_rotation_pending m;

	for (int id = 0; id < crypt_token_max(CRYPT_LUKS2); id++)
		if (luks_rotation_mark(cd, id, &m))
			return true;
	return false;
}

static int rotate_recover(struct kc_ctx *ctx, const char *device, struct crypt_device *cd)
{
	int r;

	if (!pending_any(cd))
		return 0;
	r = recover_all(ctx, cd, device);
	if (r < 0)
		ctx_detail_prefix(ctx, "device '%s': finishing an interrupted KEK rotation failed",
				  device);
	return r;
}

/* One lock per volume for every writer, a flock on a file in LOCK_DIR named after the device
 * number of a block device, or the device and inode of an image file: the one that holds the
 * header (a detached header file's, when there is one). */
int vol_lock(struct kc_ctx *ctx, const char *device, int *r_fd)
{
	return vol_lock_path(ctx, vol_metadata(ctx, device), r_fd);
}

int vol_lock_path(struct kc_ctx *ctx, const char *meta, int *r_fd)
{
	char path[128];
	struct stat st;
	int fd;

	if (stat(meta, &st) < 0)
		return ctx_fail(ctx, -errno, "device '%s': %s", meta, strerror(errno));
	if (mkdir(LOCK_DIR, 0700) < 0 && errno != EEXIST)
		return ctx_fail(ctx, -EACCES, "cannot create " LOCK_DIR ": %s", strerror(errno));
	if (S_ISBLK(st.st_mode))
		snprintf(path, sizeof(path), LOCK_DIR "/b%u:%u", major(st.st_rdev),
			 minor(st.st_rdev));
	else
		snprintf(path, sizeof(path), LOCK_DIR "/f%llx-%llx",
			 (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return ctx_fail(ctx, -EACCES, "cannot open the lock '%s': %s", path,
				strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		return ctx_fail(ctx, -EBUSY, "device '%s': another kekcrypt process is changing "
				"its header (lock '%s')", meta, path);
	}
	*r_fd = fd;
	return 0;
}

void vol_unlockp(int *fd)
{
	if (*fd >= 0)
		close(*fd);	/* releases the flock */
	*fd = -1;
}

int vol_load_for_write(struct kc_ctx *ctx, const char *device, unsigned flags,
		       struct crypt_device **r_cd, int *r_lock)
{
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	_cleanup_(vol_unlockp) int fd = -1;
	struct kc_rekey_state rk = { .size = sizeof(rk) };
	int r;

	r = vol_check_writable(ctx, vol_metadata(ctx, device), false);
	if (r >= 0)
		r = vol_lock(ctx, device, &fd);
	/* Loaded under the lock: what another writer did before is on the disk now. */
	if (r >= 0)
		r = vol_load(ctx, device, &cd);
	if (r >= 0 && !(flags & VOL_WRITE_REKEY) && rekey_state_read(cd, device, &rk) > 0)
		r = ctx_fail(ctx, -EBUSY, "device '%s': %s: run '%s %s' first", device,
			     rk.summary, rk.resume, device);
	/* Finish or undo a KEK rotation a crash interrupted. */
	if (r >= 0)
		r = rotate_recover(ctx, device, cd);
	if (r < 0)
		return r;
	*r_cd = TAKE_PTR(cd);
	*r_lock = fd;
	fd = -1;
	return r;
}

bool rekey_leftovers(struct crypt_device *cd)
{
	if (crypt_reencrypt_status(cd, NULL) != CRYPT_REENCRYPT_NONE)
		return true;
	for (int id = 0; id < crypt_token_max(CRYPT_LUKS2); id++)
		if (luks_token_is(cd, id, BRIDGE_TOKEN_TYPE) || luks_rekey_marked(cd, id))
			return true;
	return false;
}

int kc_repair(struct kc_ctx *ctx, const char *device)
{
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	_cleanup_(vol_unlockp) int lock = -1;
	int r;

	if (!ctx || !device)
		return -EINVAL;
	ctx_detail_clear(ctx);
	/* What every writer does first. */
	r = vol_load_for_write(ctx, device, 0, &cd, &lock);
	if (r < 0)
		ctx_detail_device(ctx, device);
	return r;
}
