/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Files kekcrypt trusts: whatever it reads as a KEK, PIN, credential or its configuration,
 * and the files other libraries read for it (CA bundle, client certificate, PKCS#11 module),
 * must be beyond other users' reach, whoever named them (a header may): owned by root (or the
 * caller), not accessible by group or others (TRUST_PRIVATE) or not writable by them, and
 * every directory above owned by root (or the caller) and not writable by group or others
 * unless sticky (/tmp). The checks run on the open descriptor, which is then compared with
 * the resolved path, so that a rename in between is caught. Needs no configuration: what
 * the configuration allows is policy.c's.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

static bool owner_ok(uid_t uid)
{
	return uid == 0 || uid == geteuid();
}

static const char *owner_words(void)
{
	return geteuid() == 0 ? "root" : "root or the caller";
}

/* Every directory above REAL (an absolute, resolved path) must be safe from other users. */
static int dirs_check(struct kc_ctx *ctx, const char *real, const char *what, const char *path)
{
	char dir[PATH_MAX];
	struct stat st;
	char *slash;

	snprintf(dir, sizeof(dir), "%s", real);
	while ((slash = strrchr(dir, '/'))) {
		slash[slash == dir ? 1 : 0] = '\0';
		if (lstat(dir, &st) < 0)
			return ctx_fail(ctx, -EACCES, "%s '%s': cannot check directory '%s': %s",
					what, path, dir, strerror(errno));
		if (!S_ISDIR(st.st_mode) || !owner_ok(st.st_uid))
			return ctx_fail(ctx, -EACCES, "%s '%s': directory '%s' is not owned by %s",
					what, path, dir, owner_words());
		if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
			return ctx_fail(ctx, -EACCES, "%s '%s': directory '%s' is writable by group "
					"or others (mode %04o)", what, path, dir,
					(unsigned)(st.st_mode & 07777));
		if (!strcmp(dir, "/"))
			break;
	}
	return 0;
}

int trust_check_fd(struct kc_ctx *ctx, int fd, const char *path, const char *what,
		    unsigned flags)
{
	char real[PATH_MAX];
	struct stat st, rst;
	mode_t bad = (flags & TRUST_PRIVATE) ? (S_IRWXG | S_IRWXO) : (S_IWGRP | S_IWOTH);

	if (fstat(fd, &st) < 0)
		return ctx_fail(ctx, -errno, "%s '%s': %s", what, path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return ctx_fail(ctx, -EINVAL, "%s '%s' is not a regular file", what, path);
	if (!owner_ok(st.st_uid))
		return ctx_fail(ctx, -EACCES, "%s '%s' is owned by uid %u, not by %s; refusing it",
				what, path, (unsigned)st.st_uid, owner_words());
	if (st.st_mode & bad)
		return ctx_fail(ctx, -EACCES, "%s '%s' is %s by group or others (mode %04o); "
				"chmod %s it", what, path,
				(flags & TRUST_PRIVATE) ? "accessible" : "writable",
				(unsigned)(st.st_mode & 07777),
				(flags & TRUST_PRIVATE) ? "600" : "go-w");
	/* The directories of the file we actually opened. */
	if (!realpath(path, real))
		return ctx_fail(ctx, -EACCES, "%s '%s': cannot resolve its path: %s", what, path,
				strerror(errno));
	if (stat(real, &rst) < 0 || rst.st_dev != st.st_dev || rst.st_ino != st.st_ino)
		return ctx_fail(ctx, -EACCES, "%s '%s' changed while it was being checked", what,
				path);
	return dirs_check(ctx, real, what, path);
}

int trust_open(struct kc_ctx *ctx, const char *path, const char *what, unsigned flags,
		int *r_fd)
{
	int fd, r;

	if (!path || path[0] != '/')
		return ctx_fail(ctx, -EINVAL, "%s '%s': not an absolute path", what, path ?: "");
	/* O_NONBLOCK: a FIFO put in place of the file must not block the open. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 && (errno == EACCES || errno == EPERM))
		return ctx_fail(ctx, -EACCES, "%s '%s': permission denied%s", what, path,
				geteuid() ? " (kekcrypt runs as root)" : "");
	if (fd < 0)
		return ctx_fail(ctx, -errno, "%s '%s': %s", what, path, strerror(errno));
	r = trust_check_fd(ctx, fd, path, what, flags);
	if (r < 0) {
		close(fd);
		return r;
	}
	*r_fd = fd;
	return 0;
}

int trust_check_path(struct kc_ctx *ctx, const char *path, const char *what, unsigned flags)
{
	int fd, r;

	r = trust_open(ctx, path, what, flags, &fd);
	if (r >= 0)
		close(fd);
	return r;
}

int trust_check_dir(struct kc_ctx *ctx, const char *path, const char *what)
{
	char real[PATH_MAX], below[PATH_MAX + 2];

	if (!path || path[0] != '/')
		return ctx_fail(ctx, -EINVAL, "%s '%s': not an absolute path", what, path ?: "");
	if (!realpath(path, real))
		return ctx_fail(ctx, -errno, "%s '%s': %s", what, path, strerror(errno));
	/* dirs_check() checks the directories above a file: name one inside REAL. */
	snprintf(below, sizeof(below), "%s/.", strcmp(real, "/") ? real : "");
	return dirs_check(ctx, below, what, path);
}

int trust_read_secret(struct kc_ctx *ctx, const char *path, const char *what, size_t max,
		       struct kc_secret **r_secret)
{
	_cleanup_(kc_secret_freep) struct kc_secret *s = NULL;
	size_t got = 0;
	ssize_t n;
	int fd, r;

	r = trust_open(ctx, path, what, TRUST_PRIVATE, &fd);
	if (r < 0)
		return r;
	/* One byte more than MAX tells a file that is too large; one more keeps a NUL. */
	s = kc_secret_alloc(max + 2);
	if (!s) {
		r = -ENOMEM;
		goto out;
	}
	while (got <= max && (n = read(fd, s->data + got, max + 1 - got)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = ctx_fail(ctx, -errno, "%s '%s': %s", what, path, strerror(errno));
			goto out;
		}
		got += (size_t)n;
	}
	if (got > max) {
		r = ctx_fail(ctx, -EFBIG, "%s '%s' is larger than %zu bytes", what, path, max);
		goto out;
	}
	s->data[got] = '\0';
	s->len = got;
	*r_secret = TAKE_PTR(s);
out:
	close(fd);
	return r;
}
