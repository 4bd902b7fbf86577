/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Process hygiene (DESIGN.md "Trust boundary"): heap functions that wipe what they free, for
 * the libraries that hold our secrets in their own buffers (libcurl: request headers with
 * bearer tokens, TLS records; OpenSSL in the CLI). kc_process_harden() (kekcrypt.h) is the
 * public side.
 *
 * The size of a block comes from malloc_usable_size(), not from a header of ours: a block
 * that some library hands to plain free() (or gets from plain malloc() and hands to us) stays
 * a valid heap block, so a mismatched pair costs at most a missed wipe, never a crash.
 */
#ifndef KEKCRYPT_HYGIENE_H
#define KEKCRYPT_HYGIENE_H

#include <stddef.h>

/* malloc(), free(), realloc(), calloc() and strdup() that wipe every byte they release:
 * hygiene_realloc() always moves the block (copy, wipe the old one, free it). */
void *hygiene_malloc(size_t size);
void hygiene_free(void *ptr);
void *hygiene_realloc(void *ptr, size_t size);
void *hygiene_calloc(size_t nmemb, size_t size);
char *hygiene_strdup(const char *str);

#endif
