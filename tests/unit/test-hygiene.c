/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Process hygiene: the wiping heap functions (lib/hygiene.c) wipe every block they free, and
 * libcurl (after http_global_init()) and OpenSSL (after kc_process_harden()) really allocate
 * through them; TLS contexts lose their key log callback; kc_process_harden() turns core
 * dumps off.
 *
 * How a wipe is seen: this program is linked with -Wl,--wrap=malloc,--wrap=calloc,--wrap=free
 * (tests/Makemodule.am), so that every malloc(), calloc() and free() of the library's objects
 * (hygiene.c's among them) comes here first. While `watching`, __wrap_free() counts the
 * blocks it is given and those that still hold a non-zero byte. libcurl and OpenSSL are
 * shared libraries, not wrapped: their blocks reach __wrap_free() only through hygiene.c.
 * A negative control (a plain malloc()/free() pair) proves that the check can fail.
 */
#include <malloc.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "internal.h"
#include "http.h"
#include "hygiene.h"
#include "test.h"

void *__real_malloc(size_t size);
void *__real_calloc(size_t nmemb, size_t size);
void __real_free(void *ptr);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t nmemb, size_t size);
void __wrap_free(void *ptr);

/* volatile: the compiler must not assume that malloc() and free() leave them alone (they
 * are static and the calls go to other objects, as far as it knows). */
static volatile bool watching;
static volatile size_t n_allocs, n_frees, n_unwiped;

void *__wrap_malloc(size_t size)
{
	if (watching)
		n_allocs++;
	return __real_malloc(size);
}

void *__wrap_calloc(size_t nmemb, size_t size)
{
	if (watching)
		n_allocs++;
	return __real_calloc(nmemb, size);
}

void __wrap_free(void *ptr)
{
	const unsigned char *b = ptr;
	size_t n;

	if (watching && ptr) {
		n = malloc_usable_size(ptr);
		n_frees++;
		for (size_t i = 0; i < n; i++) {
			if (b[i]) {
				n_unwiped++;
				break;
			}
		}
	}
	__real_free(ptr);
}

static void watch(void)
{
	n_allocs = n_frees = n_unwiped = 0;
	watching = true;
}

/* Allocate 100 bytes with ALLOC, fill them, release them with RELEASE while watching. */
static void fill_and_release(void *(*alloc)(size_t), void (*release)(void *))
{
	void *p = alloc(100);

	memset(p, 0xa5, 100);
	watch();
	release(p);
	watching = false;
}

static void test_blocks(void)
{
	unsigned char *p, *q;
	char *s;

	/* Negative control: plain free() of a filled block is seen as unwiped. */
	fill_and_release(malloc, free);
	CHECK_EQ(n_frees, 1);
	CHECK_EQ(n_unwiped, 1);
	fill_and_release(hygiene_malloc, hygiene_free);
	CHECK_EQ(n_frees, 1);
	CHECK_EQ(n_unwiped, 0);

	/* realloc moves the data and wipes the old block, growing and shrinking. */
	p = hygiene_malloc(32);
	memset(p, 0x5a, 32);
	watch();
	q = hygiene_realloc(p, 4096);
	watching = false;
	CHECK(q && q[0] == 0x5a && q[31] == 0x5a);
	CHECK_EQ(n_frees, 1);
	CHECK_EQ(n_unwiped, 0);
	watch();
	p = hygiene_realloc(q, 8);
	watching = false;
	CHECK(p && p[0] == 0x5a && p[7] == 0x5a);
	CHECK_EQ(n_frees, 1);
	CHECK_EQ(n_unwiped, 0);
	hygiene_free(p);
	p = hygiene_realloc(NULL, 0);
	CHECK(p != NULL);
	hygiene_free(p);

	s = hygiene_strdup("Authorization: Bearer x");
	CHECK(s && !strcmp(s, "Authorization: Bearer x"));
	watch();
	hygiene_free(s);
	watching = false;
	CHECK_EQ(n_unwiped, 0);
	p = hygiene_calloc(4, 8);
	CHECK(p && !p[0] && !p[31]);
	hygiene_free(p);
}

/* libcurl allocates through hygiene.c once the library has initialised it. */
static void test_curl(void)
{
	static const char *const hdr = "Authorization: Bearer not-a-real-token";
	struct curl_slist *l;
	CURL *c;

	CHECK_EQ(http_global_init(NULL), 0);
	CHECK_EQ(http_global_init(NULL), 0);	/* once */
	watch();
	c = curl_easy_init();
	l = curl_slist_append(NULL, hdr);
	CHECK(c && l);
	curl_easy_setopt(c, CURLOPT_URL, "https://kms.invalid/keys/k/unwrapkey");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, l);
	curl_easy_cleanup(c);
	curl_slist_free_all(l);
	watching = false;
	CHECK(n_allocs > 0);
	CHECK(n_frees > 0);
	CHECK_EQ(n_unwiped, 0);
}

/* OpenSSL allocates through hygiene.c after kc_process_harden(KC_HARDEN_OPENSSL_MEM). */
static void test_openssl(void)
{
	unsigned char md[32];
	unsigned mdlen = 0;
	EVP_MD_CTX *m;

	watch();
	m = EVP_MD_CTX_new();
	CHECK(m && EVP_DigestInit_ex(m, EVP_sha256(), NULL) == 1 &&
	      EVP_DigestUpdate(m, "abc", 3) == 1 && EVP_DigestFinal_ex(m, md, &mdlen) == 1);
	EVP_MD_CTX_free(m);
	watching = false;
	CHECK_EQ(mdlen, 32);
	CHECK(n_allocs > 0);
	CHECK(n_frees > 0);
	CHECK_EQ(n_unwiped, 0);
	/* Once ours, OpenSSL keeps accepting the same functions: asking again does no harm. */
	CHECK_EQ(kc_process_harden(KC_HARDEN_OPENSSL_MEM), 0);
}

static void keylog(const SSL *ssl, const char *line)
{
}

static void test_ssl_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	CHECK(ctx != NULL);
	SSL_CTX_set_keylog_callback(ctx, keylog);
	CHECK_EQ(http_global_init(NULL), 0);	/* libssl's functions, as libcurl's TLS uses */
	http_ssl_ctx_harden(ctx);
	CHECK(SSL_CTX_get_keylog_callback(ctx) == NULL);
	CHECK((SSL_CTX_get_options(ctx) & SSL_OP_CLEANSE_PLAINTEXT) != 0);
	SSL_CTX_free(ctx);
}

static void test_no_core(void)
{
	struct rlimit rl;

	CHECK_EQ(kc_process_harden(1u << 7), -EINVAL);
	CHECK_EQ(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 1);
	CHECK_EQ(kc_process_harden(KC_HARDEN_NO_CORE), 0);
	CHECK_EQ(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
	CHECK(getrlimit(RLIMIT_CORE, &rl) == 0 && rl.rlim_cur == 0 && rl.rlim_max == 0);
}

int main(void)
{
	/* First, before OpenSSL allocates anything. */
	CHECK_EQ(kc_process_harden(KC_HARDEN_OPENSSL_MEM), 0);
	test_blocks();
	test_curl();
	test_openssl();
	test_ssl_ctx();
	test_no_core();
	return test_done();
}
