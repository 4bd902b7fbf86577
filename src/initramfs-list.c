/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The file list of an initramfs image, and whether a file in it is the same as one on this
 * system, read with libarchive, which kekcrypt loads with dlopen() here only (doctor), so that
 * no other command maps it.
 *
 * An image is what the kernel unpacks: one or more cpio archives one after the other, each
 * maybe compressed, with NUL bytes between them (Documentation/driver-api/early-userspace/
 * buffer-format.rst). initramfs-tools and dracut write an uncompressed "early" archive (CPU
 * microcode) before the compressed main one. libarchive reads one archive and stops at its
 * trailer; after an uncompressed one, the next starts where that reader stopped, past the NUL
 * padding. A compressed archive ends the list: libarchive cannot say where its stream ended
 * (neither tool writes anything after it).
 *
 * One pass over the image, in this process: lsinitrd (dracut's lister, the fallback) reads a
 * dracut image five times through zcat and cpio, which took minutes in an emulated guest.
 */
#include <archive.h>
#include <archive_entry.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "initramfs-list.h"

#define LIBARCHIVE_SONAME "libarchive.so.13"

#define ARCHIVE_SYMS(X)                                                                     \
	X(archive_read_new)                                                                  \
	X(archive_read_support_filter_all)                                                   \
	X(archive_read_support_format_cpio)                                                  \
	X(archive_read_open_memory)                                                          \
	X(archive_read_next_header)                                                          \
	X(archive_entry_pathname)                                                            \
	X(archive_entry_filetype)                                                            \
	X(archive_entry_size)                                                                \
	X(archive_read_data)                                                                 \
	X(archive_filter_code)                                                               \
	X(archive_filter_bytes)                                                              \
	X(archive_error_string)                                                              \
	X(archive_read_free)

#define ARCHIVE_SYM_FIELD(fn) __typeof__(fn) *fn;
struct libarchive {
	ARCHIVE_SYMS(ARCHIVE_SYM_FIELD)
};

/* Load libarchive and resolve its functions; false when it is not installed. */
static bool libarchive_load(struct libarchive *la)
{
	void *h = dlopen(LIBARCHIVE_SONAME, RTLD_NOW | RTLD_LOCAL);

	if (!h)
		return false;
#define ARCHIVE_SYM_LOAD(fn) \
	if (!(*(void **)&la->fn = dlsym(h, #fn))) { dlclose(h); return false; }
	ARCHIVE_SYMS(ARCHIVE_SYM_LOAD)
#undef ARCHIVE_SYM_LOAD
	return true;	/* kept loaded for the life of the process */
}

/* What walk() does with each entry E (its path P without a leading "./" or "/") of the archive
 * A: 0 to go on, 1 to stop (done), or an error. */
typedef int (*entry_fn)(const struct libarchive *la, struct archive *a, struct archive_entry *e,
			const char *p, void *usrptr);

/* FN on each entry of the archive at DATA (SIZE bytes); set *CONSUMED to the bytes its reader
 * took and *COMPRESSED. 1 when FN stopped, 0 at the archive's end, or an error. */
static int walk_one(const struct libarchive *la, const unsigned char *data, size_t size,
		    entry_fn fn, void *usrptr, size_t *consumed, bool *compressed)
{
	struct archive *a = la->archive_read_new();
	struct archive_entry *e;
	int r, f = 0;

	if (!a)
		return -ENOMEM;
	if (la->archive_read_support_filter_all(a) != ARCHIVE_OK ||
	    la->archive_read_support_format_cpio(a) != ARCHIVE_OK ||
	    la->archive_read_open_memory(a, data, size) != ARCHIVE_OK) {
		la->archive_read_free(a);
		return -EBADMSG;
	}
	while (!f && (r = la->archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		const char *p = la->archive_entry_pathname(e);

		if (!p)
			continue;
		while (p[0] == '.' && p[1] == '/')
			p += 2;
		while (*p == '/')
			p++;
		if (*p && strcmp(p, "."))
			f = fn(la, a, e, p, usrptr);
	}
	*compressed = la->archive_filter_code(a, 0) != ARCHIVE_FILTER_NONE;
	*consumed = (size_t)la->archive_filter_bytes(a, 0);
	la->archive_read_free(a);
	return f ? f : r == ARCHIVE_EOF ? 0 : -EBADMSG;
}

/* FN on each entry of every archive of the image FILE, until it stops. 1 when it stopped, 0
 * at the end, or an error (-ENOTSUP: no libarchive). */
static int walk(const char *file, entry_fn fn, void *usrptr)
{
	struct libarchive la;
	const unsigned char *data;
	struct stat st;
	size_t off = 0;
	int fd, r = 0;

	if (!libarchive_load(&la))
		return -ENOTSUP;
	fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
		close(fd);
		return -EBADMSG;
	}
	data = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (data == MAP_FAILED)
		return -errno;
	/* Each archive, past the NUL bytes before it, until a compressed one or the end. */
	for (;;) {
		bool compressed = false;
		size_t used = 0;

		while (off < (size_t)st.st_size && !data[off])
			off++;
		if (off == (size_t)st.st_size)
			break;
		r = walk_one(&la, data + off, (size_t)st.st_size - off, fn, usrptr, &used,
			     &compressed);
		if (r != 0 || compressed || !used)
			break;
		off += used;
	}
	munmap((void *)data, (size_t)st.st_size);
	return r;
}

static int list_entry(const struct libarchive *la, struct archive *a, struct archive_entry *e,
		      const char *p, void *usrptr)
{
	(void)la;
	(void)a;
	(void)e;
	fprintf(usrptr, "%s\n", p);
	return 0;
}

int initramfs_list(const char *file, char **r_text, size_t *r_len)
{
	FILE *out;
	int r;

	*r_text = NULL;
	*r_len = 0;
	out = open_memstream(r_text, r_len);
	if (!out)
		return -ENOMEM;
	r = walk(file, list_entry, out);
	if (fclose(out) != 0 && r == 0)
		r = -ENOMEM;
	if (r == 0 && !*r_len)
		r = -EBADMSG;
	if (r < 0) {
		free(*r_text);
		*r_text = NULL;
		*r_len = 0;
	}
	return r;
}

struct same {
	const char *path;	/* in the image */
	int fd;			/* the file on this system */
	int result;		/* 0 the same, 1 different; -ENOENT until found */
};

/* The entry SAME->path, compared with SAME->fd byte for byte (the buffers wiped after: the
 * file may be a secret). */
static int same_entry(const struct libarchive *la, struct archive *a, struct archive_entry *e,
		      const char *p, void *usrptr)
{
	struct same *sm = usrptr;
	unsigned char ours[65536], theirs[sizeof(ours)];
	struct stat st;
	int64_t left;
	int r = 1;

	if (strcmp(p, sm->path))
		return 0;
	sm->result = 1;
	if (la->archive_entry_filetype(e) != AE_IFREG || fstat(sm->fd, &st) < 0 ||
	    (left = la->archive_entry_size(e)) != st.st_size)
		return 1;
	while (left > 0 && r == 1) {
		la_ssize_t n = la->archive_read_data(a, theirs, sizeof(theirs));

		if (n <= 0)
			r = n < 0 ? -EBADMSG : 2;
		else if (read(sm->fd, ours, (size_t)n) != n || memcmp(ours, theirs, (size_t)n))
			r = 2;
		else
			left -= n;
	}
	if (r == 1)
		sm->result = 0;
	explicit_bzero(ours, sizeof(ours));
	explicit_bzero(theirs, sizeof(theirs));
	return r < 0 ? r : 1;
}

int initramfs_same(const char *file, const char *path, const char *local)
{
	struct same sm = { .path = path, .result = -ENOENT };
	int r;

	while (*sm.path == '/')
		sm.path++;
	sm.fd = open(local, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (sm.fd < 0)
		return -errno;
	r = walk(file, same_entry, &sm);
	close(sm.fd);
	return r < 0 ? r : sm.result;
}
