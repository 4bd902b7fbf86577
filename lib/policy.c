/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Local policy: the LUKS2 header is untrusted input (anyone who can write the disk can write
 * it), so a KEK URI read from it may only NAME a key; whether and how kekcrypt uses that key
 * is decided here, from the root-owned configuration and the ownership of local files:
 *
 *  - a remote endpoint is used only when the provider's section of the config names it in
 *    allowed-hosts (HOST, or HOST:PORT): no credential is read, no connection made otherwise;
 *  - a PKCS#11 module named by the URI (module-path) is loaded only when [pkcs11]
 *    allowed-modules names it; a PIN file (pin-source) is read only when [pkcs11]
 *    allowed-pin-files names it; a KEK file only when [file] allowed-paths names it, if that
 *    key is set;
 *  - a file read as a KEK, PIN, credential or the config itself is owned by root (or by the
 *    caller), not accessible by group or others, and every directory above it is owned by
 *    root (or the caller) and not writable by group or others unless sticky (/tmp); shared
 *    objects and CA bundles may be readable by all but not writable by others. The checks
 *    run on the open descriptor, which is then compared with the resolved path, so that a
 *    rename in between is caught.
 *
 * Every refusal is -EACCES with a detail that names what was refused and the config line that
 * would allow it. kek_open() calls policy_kek() for every KEK, whatever reads its URI: this is
 * the one place where a header's URI meets the policy.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define LIST_SEPARATORS ", \t"

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

int policy_check_fd(struct kc_ctx *ctx, int fd, const char *path, const char *what,
		    unsigned flags)
{
	char real[PATH_MAX];
	struct stat st, rst;
	mode_t bad = (flags & POLICY_PRIVATE) ? (S_IRWXG | S_IRWXO) : (S_IWGRP | S_IWOTH);

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
				(flags & POLICY_PRIVATE) ? "accessible" : "writable",
				(unsigned)(st.st_mode & 07777),
				(flags & POLICY_PRIVATE) ? "600" : "go-w");
	/* The directories of the file we actually opened. */
	if (!realpath(path, real))
		return ctx_fail(ctx, -EACCES, "%s '%s': cannot resolve its path: %s", what, path,
				strerror(errno));
	if (stat(real, &rst) < 0 || rst.st_dev != st.st_dev || rst.st_ino != st.st_ino)
		return ctx_fail(ctx, -EACCES, "%s '%s' changed while it was being checked", what,
				path);
	return dirs_check(ctx, real, what, path);
}

int policy_open(struct kc_ctx *ctx, const char *path, const char *what, unsigned flags,
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
	r = policy_check_fd(ctx, fd, path, what, flags);
	if (r < 0) {
		close(fd);
		return r;
	}
	*r_fd = fd;
	return 0;
}

int policy_check_path(struct kc_ctx *ctx, const char *path, const char *what, unsigned flags)
{
	int fd, r;

	r = policy_open(ctx, path, what, flags, &fd);
	if (r >= 0)
		close(fd);
	return r;
}

int policy_read_secret(struct kc_ctx *ctx, const char *path, const char *what, size_t max,
		       struct kc_secret **r_secret)
{
	_cleanup_(kc_secret_freep) struct kc_secret *s = NULL;
	size_t got = 0;
	ssize_t n;
	int fd, r;

	r = policy_open(ctx, path, what, POLICY_PRIVATE, &fd);
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

/* ---------------------------------------------------------------------------------------- */
/* What the configuration allows                                                            */

/* true when the space/comma separated LIST holds the word WORD (LEN bytes), compared with
 * CMP (strncmp or strncasecmp). */
static bool list_has(const char *list, const char *word, size_t len,
		     int (*cmp)(const char *, const char *, size_t))
{
	size_t m;

	while (list && *list) {
		list += strspn(list, LIST_SEPARATORS);
		m = strcspn(list, LIST_SEPARATORS);
		if (m && m == len && !cmp(list, word, len))
			return true;
		list += m;
	}
	return false;
}

/* true when LIST names the file PATH: the same string, or the same file once both are
 * resolved ("//etc/x", symbolic links). */
static bool list_has_path(const char *list, const char *path)
{
	char real[PATH_MAX], entry[PATH_MAX], entry_real[PATH_MAX];
	size_t m;

	if (list_has(list, path, strlen(path), strncmp))
		return true;
	if (!realpath(path, real))
		return false;
	while (list && *list) {
		list += strspn(list, LIST_SEPARATORS);
		m = strcspn(list, LIST_SEPARATORS);
		if (m && m < sizeof(entry)) {
			memcpy(entry, list, m);
			entry[m] = '\0';
			if (realpath(entry, entry_real) && !strcmp(entry_real, real))
				return true;
		}
		list += m;
	}
	return false;
}

/* -EACCES: VALUE is not in the lists of KEY; name the line that would allow it. */
static int refuse(struct kc_ctx *ctx, const char *section, const char *key, const char *what,
		  const char *value)
{
	return ctx_fail(ctx, -EACCES, "%s '%s' is not allowed by local policy: [%s] %s in %s "
			"does not name it; to trust it, add the line '%s = %s' to [%s] there",
			what, value, section, key, config_path(ctx->config), key, value, section);
}

/* KEY of SECTION, on any number of lines, names WORD (or the file WORD when PATHS). */
static bool allowed(struct kc_ctx *ctx, const char *section, const char *key, const char *word,
		    bool paths)
{
	const char *list;

	for (size_t i = 0; (list = config_get_nth(ctx->config, section, key, i)); i++)
		if (paths ? list_has_path(list, word) :
			    list_has(list, word, strlen(word), strncasecmp))
			return true;
	return false;
}

static int policy_host(struct kc_ctx *ctx, const struct kek_needs *n)
{
	char hostport[300];

	snprintf(hostport, sizeof(hostport), "%s:%u", n->host, n->port);
	if (allowed(ctx, n->section, "allowed-hosts", n->host, false) ||
	    allowed(ctx, n->section, "allowed-hosts", hostport, false))
		return 0;
	return refuse(ctx, n->section, "allowed-hosts", "endpoint", hostport);
}

int policy_kek(struct kc_ctx *ctx, const struct kek_needs *n)
{
	int r;

	if (n->host[0]) {
		r = policy_host(ctx, n);
		if (r < 0)
			return r;
	}
	if (n->module) {
		if (!allowed(ctx, "pkcs11", "allowed-modules", n->module, true))
			return refuse(ctx, "pkcs11", "allowed-modules", "PKCS#11 module",
				      n->module);
		r = policy_check_path(ctx, n->module, "PKCS#11 module", 0);
		if (r < 0)
			return r;
	}
	if (n->pin_file && !allowed(ctx, "pkcs11", "allowed-pin-files", n->pin_file, true))
		return refuse(ctx, "pkcs11", "allowed-pin-files", "PIN file", n->pin_file);
	/* Without [file] allowed-paths: any KEK file that passes the ownership checks when it
	 * is read. */
	if (n->key_file && config_get(ctx->config, "file", "allowed-paths") &&
	    !allowed(ctx, "file", "allowed-paths", n->key_file, true))
		return refuse(ctx, "file", "allowed-paths", "KEK file", n->key_file);
	return 0;
}

bool policy_names(struct kc_ctx *ctx, const char *section, const char *key, const char *path)
{
	return allowed(ctx, section, key, path, true);
}
