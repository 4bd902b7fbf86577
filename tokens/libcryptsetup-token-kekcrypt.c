/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libcryptsetup external token plugin for tokens of type "kekcrypt", so that `cryptsetup open`
 * and systemd-cryptsetup unlock kekcrypt volumes. Glue only: the work is libkekcrypt's.
 *
 * libcryptsetup finds this file as <token dir>/libcryptsetup-token-kekcrypt.so (the token
 * dir is fixed when libcryptsetup is built: `cryptsetup --help` prints it) when a header holds
 * a token of type "kekcrypt", and resolves the cryptsetup_token_* symbols below with
 * dlvsym(..., "CRYPTSETUP_TOKEN_1.0"); open and version are mandatory.
 *
 * The token hands libcryptsetup the passphrase of the keyslot bound to it, derived from the
 * DEK that the token's KEK unwraps; libcryptsetup then opens that keyslot.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libcryptsetup.h>

#include "crypttab.h"
#include "kekcrypt.h"

#define _public_ __attribute__((visibility("default")))

/* Prototypes of the ABI (libcryptsetup.h declares only the function types). */
_public_ const char *cryptsetup_token_version(void);
_public_ int cryptsetup_token_open(struct crypt_device *cd, int token, char **buffer,
				   size_t *buffer_len, void *usrptr);
_public_ void cryptsetup_token_buffer_free(void *buffer, size_t buffer_len);
_public_ int cryptsetup_token_validate(struct crypt_device *cd, const char *json);
_public_ void cryptsetup_token_dump(struct crypt_device *cd, const char *json);

_public_ const char *cryptsetup_token_version(void)
{
	return PACKAGE_VERSION;
}

/*
 * The errno libcryptsetup gets from open() decides what happens next, in libcryptsetup
 * (lib/luks2/luks2_token.c) and in its callers:
 *  - the token loop of crypt_activate_by_token_pin(CRYPT_ANY_TOKEN) goes on to the next token
 *    after -ENOENT, -EPERM, -EAGAIN and -ENOANO, and stops at once on any other error, so
 *    another kekcrypt token (a second KMS region), or a token of another type, would never
 *    be tried. The loop reports the most significant of the four: -ENOANO, -EAGAIN, -EPERM,
 *    then -ENOENT;
 *  - an external plugin's -EINVAL, -EPERM or positive value is rewritten to -ENOENT
 *    (translate_errno(): only a keyslot that refuses the passphrase the token gave means
 *    "wrong passphrase", -EPERM, and libcryptsetup says that itself);
 *  - -ENOANO means "PIN missing or wrong": `cryptsetup open --token-only/--token-type` and
 *    systemd-cryptsetup then prompt for a token PIN. kekcrypt has no PIN (credentials come
 *    from kekcrypt.conf), so it must never be returned;
 *  - -EAGAIN means "a resource the token needs is missing" (cryptsetup -v: "Token N requires
 *    additional missing resource");
 *  - `cryptsetup open` without --token-only asks for a passphrase after every failure but
 *    -EEXIST; systemd-cryptsetup falls back to its password prompt likewise.
 * Hence: whatever the KMS/HSM, the network or the credentials get wrong (retryable, or fixed
 * outside the header) is -EAGAIN; what is wrong with this token or its key (wrong KEK,
 * refused by the KMS, malformed, unknown provider, missing KEK file, a library the provider
 * loads missing (-ENOTSUP: libcurl, p11-kit), and a KEK that local policy refuses: a forged
 * token) is -ENOENT, "unusable"; -ENOMEM stays. The reason goes to the log
 * (kc_error_detail()).
 */
static int translate_errno(int r)
{
	switch (r) {
	case -EAGAIN: case -ETIMEDOUT: case -EPROTO: case -EBADE:
	case -ENOANO: case -EKEYREJECTED:
		return -EAGAIN;
	case -ENOMEM:
		return -ENOMEM;
	default:
		return -ENOENT;
	}
}

/*
 * systemd-cryptsetup tries the tokens once, at once, and falls back to its password prompt on
 * -EAGAIN; its token-timeout= only waits for FIDO2/PKCS#11/TPM2 devices to appear. At boot
 * the network may still be coming up and a KMS may be briefly away, so under
 * systemd-cryptsetup the plugin itself retries until the token-timeout= of the volume's
 * crypttab entry (systemd's default, 30 s, without one; 0: no limit). `cryptsetup open` has
 * a person in front of it: one attempt.
 */
#define SYSTEMD_TOKEN_TIMEOUT_S 30

/* The seconds of retrying left to this token: libcryptsetup calls open() once per kekcrypt
 * token, and systemd-cryptsetup runs one process per volume, so the limit counts from the
 * first call in this process. KC_RETRY_FOREVER for token-timeout=0. */
static unsigned retry_left(unsigned timeout_s)
{
	static struct timespec start;
	struct timespec now;
	long elapsed;

	if (!timeout_s)
		return KC_RETRY_FOREVER;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!start.tv_sec && !start.tv_nsec)
		start = now;
	elapsed = (long)(now.tv_sec - start.tv_sec);
	return elapsed >= (long)timeout_s ? 0 : timeout_s - (unsigned)elapsed;
}

/*
 * No core dump of a process that is about to hold a volume key or a KMS credential. We run
 * inside cryptsetup or systemd-cryptsetup and leave the process non-dumpable afterwards, which
 * is what that process should have been anyway. OpenSSL's heap functions cannot be replaced
 * here (libcryptsetup has already allocated with OpenSSL): libkekcrypt wipes libcurl's heap
 * and sets SSL_OP_CLEANSE_PLAINTEXT on its TLS contexts, which wipes OpenSSL's record
 * buffers; the rest of OpenSSL's heap is not wiped in the plugin.
 */
static void harden(struct crypt_device *cd)
{
	int r = kc_process_harden(KC_HARDEN_NO_CORE);

	if (r < 0)
		crypt_logf(cd, CRYPT_LOG_ERROR, "kekcrypt: cannot disable core dumps: %s.\n",
			   strerror(-r));
}

static bool under_systemd_cryptsetup(void)
{
	return !strcmp(program_invocation_short_name, "systemd-cryptsetup");
}

/* The token-timeout= of the volume's crypttab entry (common/crypttab.c); -EINVAL: bad. */
static int token_timeout(struct crypt_device *cd, unsigned *r_seconds)
{
	const char *name = crypt_get_device_name(cd);
	char *device = name ? realpath(name, NULL) : NULL;
	int r;

	r = crypttab_token_timeout(NULL, crypt_get_uuid(cd), device, r_seconds);
	free(device);
	return r;
}

_public_ int cryptsetup_token_open(struct crypt_device *cd, int token, char **buffer,
				   size_t *buffer_len, void *usrptr)
{
	unsigned timeout = SYSTEMD_TOKEN_TIMEOUT_S;
	struct kc_ctx *ctx = NULL;
	int r;

	if (!cd || token < 0 || !buffer || !buffer_len)
		return -EINVAL;
	harden(cd);
	r = kc_init_by_crypt_device(&ctx, cd, NULL);
	if (r < 0) {
		crypt_logf(cd, CRYPT_LOG_ERROR, "kekcrypt token %d: cannot load the kekcrypt "
			   "configuration: %s.\n", token, kc_strerror(r));
		return translate_errno(r);
	}
	kc_log_to_crypt_device(ctx, cd);
	if (under_systemd_cryptsetup()) {
		if (token_timeout(cd, &timeout) < 0)
			crypt_logf(cd, CRYPT_LOG_ERROR, "kekcrypt token %d: bad token-timeout= in "
				   "/etc/crypttab; using %u s.\n", token, timeout);
		kc_set_retry(ctx, retry_left(timeout));
	}
	r = kc_token_unlock_passphrase(ctx, cd, token, buffer, buffer_len);
	if (r < 0) {
		/* An error, not debug: without it `cryptsetup open` says nothing about why it
		 * falls back to a passphrase, and the boot log nothing about the KMS. */
		if (kc_error_detail(ctx)[0])
			crypt_logf(cd, CRYPT_LOG_ERROR, "kekcrypt: %s.\n", kc_error_detail(ctx));
		else
			crypt_logf(cd, CRYPT_LOG_ERROR, "kekcrypt token %d: %s.\n", token,
				   kc_strerror(r));
		crypt_logf(cd, CRYPT_LOG_DEBUG, "kekcrypt token %d: error %d returned as %d.", token,
			   r, translate_errno(r));
		r = translate_errno(r);
	} else
		crypt_logf(cd, CRYPT_LOG_DEBUG, "kekcrypt token %d: keyslot passphrase derived.",
			   token);
	kc_free(ctx);
	return r;
}

_public_ void cryptsetup_token_buffer_free(void *buffer, size_t buffer_len)
{
	/* Wipes it too. */
	kc_token_passphrase_free(buffer, buffer_len);
}

/* Called before open() and by crypt_token_json_set() (cryptsetup token import): a token the
 * library would refuse to read is refused here. */
_public_ int cryptsetup_token_validate(struct crypt_device *cd, const char *json)
{
	struct kc_ctx *ctx = NULL;
	int r;

	harden(cd);
	/* A context only for the explanation; validating needs no configuration. */
	if (kc_init_by_crypt_device(&ctx, cd, NULL) < 0)
		ctx = NULL;
	r = kc_token_validate_json(ctx, json, NULL);
	if (r < 0)
		crypt_logf(cd, CRYPT_LOG_DEBUG, "kekcrypt token invalid: %s.",
			   ctx ? kc_error_detail(ctx) : kc_strerror(r));
	kc_free(ctx);
	return r < 0 ? -EINVAL : 0;
}

/* luksDump: what the token names (nothing in it is secret). */
_public_ void cryptsetup_token_dump(struct crypt_device *cd, const char *json)
{
	struct kc_token_info ti = KC_SIZED(struct kc_token_info);
	struct kc_ctx *ctx = NULL;
	int r;

	if (kc_init_by_crypt_device(&ctx, cd, NULL) < 0)
		ctx = NULL;
	r = kc_token_validate_json(ctx, json, &ti);
	if (r < 0) {
		crypt_logf(cd, CRYPT_LOG_NORMAL, "\tInvalid kekcrypt token: %s\n",
			   ctx ? kc_error_detail(ctx) : kc_strerror(r));
		kc_free(ctx);
		return;
	}
	kc_free(ctx);
	crypt_logf(cd, CRYPT_LOG_NORMAL, "\tProvider:    %s\n", ti.provider);
	crypt_logf(cd, CRYPT_LOG_NORMAL, "\tKEK URI:     %s\n", ti.kek_uri);
	crypt_logf(cd, CRYPT_LOG_NORMAL, "\tKey version: %s\n",
		   ti.key_version[0] ? ti.key_version : "(none)");
	crypt_logf(cd, CRYPT_LOG_NORMAL, "\tWrap alg:    %s\n", ti.wrap_alg);
	crypt_logf(cd, CRYPT_LOG_NORMAL, "\tWrapped key: %zu bytes\n", ti.wrapped_len);
	crypt_logf(cd, CRYPT_LOG_NORMAL, "\tCreated:     %s\n", ti.created);
	crypt_logf(cd, CRYPT_LOG_NORMAL, "\tFormat:      %u\n", ti.format_version);
}
