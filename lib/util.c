/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Small helpers: files, base64, time, HKDF. */
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <linux/fs.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "internal.h"

int util_read_file(const char *path, size_t max, unsigned char **r_buf, size_t *r_len)
{
	_cleanup_(freep) unsigned char *buf = NULL;
	size_t got = 0;
	ssize_t n;
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	buf = malloc(max + 1);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	while ((n = read(fd, buf + got, max + 1 - got)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			goto out;
		}
		got += (size_t)n;
		if (got > max) {
			r = -EFBIG;
			goto out;
		}
	}
	buf[got] = '\0';
	*r_buf = TAKE_PTR(buf);
	*r_len = got;
out:
	close(fd);
	return r;
}

int util_base64_encode(const unsigned char *buf, size_t len, char **r_str)
{
	char *s;

	if (len > INT32_MAX / 2)
		return -EINVAL;
	s = malloc(4 * ((len + 2) / 3) + 1);
	if (!s)
		return -ENOMEM;
	EVP_EncodeBlock((unsigned char *)s, buf, (int)len);
	*r_str = s;
	return 0;
}

int util_base64_decode(const char *str, unsigned char **r_buf, size_t *r_len)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t len = strlen(str), pad = 0;
	unsigned char *buf;
	int n;

	if (len == 0 || len % 4 || len > INT32_MAX / 2)
		return -EINVAL;
	if (str[len - 1] == '=')
		pad++;
	if (str[len - 2] == '=')
		pad++;
	/* EVP_DecodeBlock skips blanks and does not check padding: we do it first. */
	if (strspn(str, alphabet) != len - pad)
		return -EINVAL;
	buf = malloc(len / 4 * 3 + 1);
	if (!buf)
		return -ENOMEM;
	n = EVP_DecodeBlock(buf, (const unsigned char *)str, (int)len);
	if (n < 0 || (size_t)n < pad) {
		free(buf);
		return -EINVAL;
	}
	*r_buf = buf;
	*r_len = (size_t)n - pad;
	return 0;
}

int util_device_size(const char *path, uint64_t *r_size)
{
	_cleanup_(closep) int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;

	if (fd < 0 || fstat(fd, &st) < 0)
		return -errno;
	if (S_ISREG(st.st_mode)) {
		*r_size = (uint64_t)st.st_size;
		return 0;
	}
	if (!S_ISBLK(st.st_mode))
		return -EINVAL;
	return ioctl(fd, BLKGETSIZE64, r_size) < 0 ? -errno : 0;
}

uint64_t util_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void util_utc_now(char buf[32])
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int util_hkdf_sha256(const void *ikm, size_t ikm_len, const void *salt, size_t salt_len,
		     const char *info, unsigned char *out, size_t out_len)
{
	OSSL_PARAM params[5], *p = params;
	EVP_KDF_CTX *kctx = NULL;
	EVP_KDF *kdf;
	int r = -EINVAL;

	kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	if (!kdf)
		return -ENOTSUP;
	kctx = EVP_KDF_CTX_new(kdf);
	EVP_KDF_free(kdf);
	if (!kctx)
		return -ENOMEM;
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info,
						 strlen(info));
	*p = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(kctx, out, out_len, params) == 1)
		r = 0;
	EVP_KDF_CTX_free(kctx);
	return r;
}

/* Not thread-safe, like the header writes it counts: one operation at a time per process. */
static unsigned crash_writes;

void util_crash_point(void)
{
	const char *s = secure_getenv("KC_TEST_CRASH_AT");

	crash_writes++;
	if (s && *s && strtoul(s, NULL, 10) == crash_writes)
		raise(SIGKILL);
}

int util_aes256_kwp(const unsigned char key[32], bool wrap, const unsigned char *in,
		    size_t in_len, unsigned char *out, size_t *r_out_len)
{
	EVP_CIPHER_CTX *c;
	int n = 0, fin = 0, ok;

	if (in_len > INT_MAX - 16)
		return -EINVAL;
	c = EVP_CIPHER_CTX_new();
	if (!c)
		return -ENOMEM;
	ok = EVP_CipherInit_ex2(c, EVP_aes_256_wrap_pad(), key, NULL, wrap, NULL) &&
	     EVP_CipherUpdate(c, out, &n, in, (int)in_len) &&
	     EVP_CipherFinal_ex(c, out + n, &fin);
	EVP_CIPHER_CTX_free(c);
	if (!ok)
		return wrap ? -EINVAL : -EBADMSG;
	*r_out_len = (size_t)n + (size_t)fin;
	return 0;
}

bool sized_ok(const void *p, size_t min)
{
	size_t size;

	if (!p)
		return true;
	memcpy(&size, p, sizeof(size));
	return size >= min;
}

void sized_put(void *dst, const void *src, size_t size)
{
	size_t have;

	if (!dst)
		return;
	memcpy(&have, dst, sizeof(have));
	if (have > size)
		have = size;
	memcpy((char *)dst + sizeof(size_t), (const char *)src + sizeof(size_t),
	       have - sizeof(size_t));
}

void sized_get(void *dst, size_t size, const void *src)
{
	size_t have;

	memset(dst, 0, size);
	memcpy(&have, src, sizeof(have));
	if (have > size)
		have = size;
	memcpy(dst, src, have);
	memcpy(dst, &size, sizeof(size));
}

void *sized_at(void *base, size_t i)
{
	size_t stride;

	memcpy(&stride, base, sizeof(stride));
	return (char *)base + i * stride;
}
