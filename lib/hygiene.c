/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Process hygiene: wiping heap functions (hygiene.h) and kc_process_harden(): no core dumps,
 * OpenSSL's heap wiped on free.
 */
#include <malloc.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <openssl/crypto.h>

#include "internal.h"
#include "hygiene.h"

void *hygiene_malloc(size_t size)
{
	return malloc(size ? size : 1);
}

void hygiene_free(void *ptr)
{
	if (!ptr)
		return;
	secret_wipe(ptr, malloc_usable_size(ptr));
	free(ptr);
}

void *hygiene_realloc(void *ptr, size_t size)
{
	size_t old;
	void *p;

	if (!ptr)
		return hygiene_malloc(size);
	/* Never realloc(): it may move the block and leave the old copy behind unwiped. */
	p = hygiene_malloc(size);
	if (!p)
		return NULL;
	old = malloc_usable_size(ptr);
	memcpy(p, ptr, old < size ? old : size);
	hygiene_free(ptr);
	return p;
}

void *hygiene_calloc(size_t nmemb, size_t size)
{
	return calloc(nmemb ? nmemb : 1, size ? size : 1);
}

char *hygiene_strdup(const char *str)
{
	size_t n = strlen(str) + 1;
	char *p = hygiene_malloc(n);

	if (p)
		memcpy(p, str, n);
	return p;
}

/* OpenSSL's CRYPTO_set_mem_functions() signatures. */
static void *ossl_malloc(size_t size, const char *file, int line)
{
	return hygiene_malloc(size);
}

static void *ossl_realloc(void *ptr, size_t size, const char *file, int line)
{
	return hygiene_realloc(ptr, size);
}

static void ossl_free(void *ptr, const char *file, int line)
{
	hygiene_free(ptr);
}

/* Not dumpable: no core file, and /proc/PID/mem and ptrace are closed to processes without
 * CAP_SYS_PTRACE, even of the same user. RLIMIT_CORE 0 as well: with
 * fs.suid_dumpable = 2 the kernel dumps a non-dumpable process anyway (to a pipe or as root),
 * and core_pattern helpers such as systemd-coredump are given the limit. */
static int no_core(void)
{
	struct rlimit rl = { 0, 0 };

	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return -errno;
	if (setrlimit(RLIMIT_CORE, &rl) < 0)
		return -errno;
	return 0;
}

int kc_process_harden(uint32_t flags)
{
	int r = 0;

	if (flags & ~(uint32_t)(KC_HARDEN_NO_CORE | KC_HARDEN_OPENSSL_MEM))
		return -EINVAL;
	/* OpenSSL first: it accepts new functions only before its first allocation. */
	if ((flags & KC_HARDEN_OPENSSL_MEM) &&
	    !CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free))
		r = -EALREADY;
	/* A core dump left possible matters more than an unwiped heap: its error wins. */
	if (flags & KC_HARDEN_NO_CORE)
		r = no_core() ?: r;
	return r;
}
