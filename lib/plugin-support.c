/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the libcryptsetup token plugin (tokens/) and crypttab keyscripts need from the
 * library: unlock through a token of a handle libcryptsetup already holds (or of a device)
 * and hand back the keyslot passphrase, parse a token's JSON for validate() and dump(), and
 * log through the handle.
 */
#include <ctype.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <libcryptsetup.h>

#include "internal.h"

/* libcryptsetup drops CRYPT_LOG_DEBUG messages unless debugging is on (cryptsetup --debug),
 * so debug messages may go there; the debug level itself is the application's to set. What
 * the library says at INFO (a warning: a token skipped by local policy) is shown. */
static void crypt_device_log(int level, const char *msg, void *usrptr)
{
	crypt_logf(usrptr, level == KC_LOG_DEBUG ? CRYPT_LOG_DEBUG : CRYPT_LOG_ERROR,
		   "kekcrypt: %s", msg);
}

void kc_log_to_crypt_device(struct kc_ctx *ctx, struct crypt_device *cd)
{
	if (!ctx || !cd)
		return;
	/* Not kc_set_log(): that switches libcryptsetup's global debug level on. */
	ctx->log_fn = crypt_device_log;
	ctx->log_max = KC_LOG_DEBUG;
	ctx->log_usrptr = cd;
}

/* Unlock CD through TOKEN_ID (-1: each kekcrypt token in order) and derive the passphrase
 * of the keyslot bound to the token that worked. */
static int unlock_passphrase(struct kc_ctx *ctx, struct crypt_device *cd, const char *device,
			     int token_id, char **r_buf, size_t *r_len,
			     struct kc_unlock_result *r_result)
{
	_cleanup_(kc_secret_freep) struct kc_secret *dek = NULL;
	_cleanup_(kc_secret_freep) struct kc_secret *pass = NULL;
	const char *uuid = crypt_get_uuid(cd);
	int r;

	if (!uuid || !crypt_get_type(cd) || strcmp(crypt_get_type(cd), CRYPT_LUKS2))
		return ctx_fail(ctx, -EMEDIUMTYPE, "device '%s' is not a LUKS2 volume", device);
	ctx_deadline_start(ctx, 0);
	r = vol_unlock(ctx, cd, device, token_id, &dek, r_result);
	ctx_deadline_end(ctx);
	if (r < 0)
		return r;
	r = vol_keyslot_passphrase(dek, uuid, &pass);
	if (r < 0)
		return ctx_fail(ctx, r, "device '%s': cannot derive the keyslot passphrase", device);
	*r_len = pass->len;
	*r_buf = (char *)TAKE_PTR(pass)->data;
	return 0;
}

int kc_token_unlock_passphrase(struct kc_ctx *ctx, struct crypt_device *cd, int token_id,
			       char **r_buf, size_t *r_len)
{
	if (!ctx || !cd || token_id < 0 || !r_buf || !r_len)
		return -EINVAL;
	ctx_detail_clear(ctx);
	return unlock_passphrase(ctx, cd, crypt_get_device_name(cd) ?: "?", token_id, r_buf,
				 r_len, NULL);
}

int kc_keyslot_passphrase(struct kc_ctx *ctx, const char *device, int token_id, char **r_buf,
			  size_t *r_len, struct kc_unlock_result *r_result)
{
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	int r;

	if (!ctx || !device || !r_buf || !r_len)
		return -EINVAL;
	ctx_detail_clear(ctx);
	r = vol_load(ctx, device, &cd);
	if (r < 0)
		return r;
	return unlock_passphrase(ctx, cd, device, token_id, r_buf, r_len, r_result);
}

void kc_token_passphrase_free(char *buf, size_t len)
{
	struct kc_secret *s;

	if (!buf)
		return;
	/* BUF is the data of a kc_secret from kc_token_unlock_passphrase(); freeing the secret
	 * wipes its whole block, LEN bytes included. */
	(void)len;
	s = (struct kc_secret *)(void *)(buf - offsetof(struct kc_secret, data));
	kc_secret_free(s);
}

int kc_token_validate_json(struct kc_ctx *ctx, const char *json, struct kc_token_info *r_info)
{
	_cleanup_(token_freep) struct token *t = NULL;
	struct kc_ctx bare = { .log_max = -1 };	/* no config, no log: parsing needs neither */
	int r;

	if (!json)
		return -EINVAL;
	if (!ctx)
		ctx = &bare;
	ctx_detail_clear(ctx);
	r = token_parse(ctx, json, &t);
	if (r >= 0)
		r = kek_token_check(ctx, t);
	if (r < 0 || !r_info)
		return r;
	memset(r_info, 0, sizeof(*r_info));
	r_info->id = -1;
	r_info->keyslot = t->keyslot;
	r_info->format_version = t->version;
	r_info->wrapped_len = t->wrapped_len;
	snprintf(r_info->provider, sizeof(r_info->provider), "%s", t->provider);
	snprintf(r_info->kek_uri, sizeof(r_info->kek_uri), "%s", t->uri);
	snprintf(r_info->key_version, sizeof(r_info->key_version), "%s", t->key_version ?: "");
	snprintf(r_info->wrap_alg, sizeof(r_info->wrap_alg), "%s", t->alg);
	snprintf(r_info->created, sizeof(r_info->created), "%s", t->created);
	return 0;
}

static bool retryable(int r)
{
	return r == -EAGAIN || r == -ETIMEDOUT || r == -EPROTO || r == -EBADE;
}

int kc_token_unlock_passphrase_retry(struct kc_ctx *ctx, struct crypt_device *cd, int token_id,
				     unsigned timeout_s, char **r_buf, size_t *r_len)
{
	/* One deadline per process: libcryptsetup calls this once per kekcrypt token, and
	 * systemd-cryptsetup runs one process per volume. */
	static uint64_t deadline_ms;
	static unsigned budget_s;
	const char *device = crypt_get_device_name(cd) ?: "?";
	unsigned attempt = 0, delay = 1;
	struct timespec boot;
	int r;

	if (!ctx || !cd)
		return -EINVAL;
	if (!deadline_ms) {
		deadline_ms = timeout_s ? util_now_ms() + (uint64_t)timeout_s * 1000 : UINT64_MAX;
		budget_s = timeout_s;
	}
	for (;;) {
		uint64_t now;
		unsigned left;

		attempt++;
		r = kc_token_unlock_passphrase(ctx, cd, token_id, r_buf, r_len);
		if (r == 0 || !retryable(r))
			break;
		now = util_now_ms();
		if (now >= deadline_ms) {
			crypt_logf(cd, CRYPT_LOG_ERROR, "kekcrypt: %s: token %d: the KMS/HSM did "
				   "not unlock it within the token-timeout of %u s (%u attempt(s)).",
				   device, token_id, budget_s, attempt);
			return r;
		}
		left = deadline_ms == UINT64_MAX ? UINT_MAX :
		       (unsigned)((deadline_ms - now + 999) / 1000);
		if (delay > left)
			delay = left;
		crypt_logf(cd, CRYPT_LOG_NORMAL, "kekcrypt: %s: token %d: attempt %u failed: %s; "
			   "retrying in %u s (%s%u s left).\n", device, token_id, attempt,
			   kc_error_detail(ctx)[0] ? kc_error_detail(ctx) : kc_strerror(r), delay,
			   left == UINT_MAX ? "no limit, " : "", left == UINT_MAX ? 0 : left);
		sleep(delay);
		if (delay < 8)
			delay *= 2;
	}
	if (r == 0 && clock_gettime(CLOCK_BOOTTIME, &boot) == 0)
		crypt_logf(cd, CRYPT_LOG_NORMAL, "kekcrypt: %s: token %d: unlocked after %u "
			   "attempt(s), %ld.%01ld s since boot.\n", device, token_id, attempt,
			   (long)boot.tv_sec,
			   boot.tv_nsec / 100000000);
	return r;
}
