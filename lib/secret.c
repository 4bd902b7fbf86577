/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Secret memory: locked, kept out of core dumps, wiped on free. */
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

void secret_wipe(void *buf, size_t len)
{
	if (!buf || !len)
		return;
#if HAVE_EXPLICIT_BZERO
	explicit_bzero(buf, len);
#else
	volatile unsigned char *p = buf;

	while (len--)
		*p++ = 0;
#endif
}

int secret_memeq(const void *a, const void *b, size_t len)
{
	const unsigned char *x = a, *y = b;
	unsigned char diff = 0;

	for (size_t i = 0; i < len; i++)
		diff |= x[i] ^ y[i];
	return diff != 0;
}

struct kc_secret *kc_secret_alloc(size_t size)
{
	/* Whole pages, so that madvise() and mlock() cover exactly our block. */
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t total = (sizeof(struct kc_secret) + size + page - 1) / page * page;
	struct kc_secret *s;

	s = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (s == MAP_FAILED)
		return NULL;
	/* Best effort: an unprivileged caller may exceed RLIMIT_MEMLOCK. */
	(void)mlock(s, total);
	(void)madvise(s, total, MADV_DONTDUMP);
	s->size = total - sizeof(*s);
	s->len = size;
	return s;
}

struct kc_secret *kc_secret_dup(const void *buf, size_t len)
{
	struct kc_secret *s = kc_secret_alloc(len);

	if (s && len)
		memcpy(s->data, buf, len);
	return s;
}

void kc_secret_free(struct kc_secret *s)
{
	size_t total;

	if (!s)
		return;
	total = s->size + sizeof(*s);
	secret_wipe(s, total);
	munlock(s, total);
	munmap(s, total);
}

void kc_secret_freep(struct kc_secret **s)
{
	kc_secret_free(*s);
	*s = NULL;
}
