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

void kc_log_to_crypt_device(struct kc_ctx *ctx, struct crypt_device *cd)
{
	if (!ctx || !cd)
		return;
	/* Not kc_set_log(): that is for an application's callback; ctx_log() maps the levels,
	 * warnings included, to libcryptsetup's. Its debug level stays the application's. */
	ctx->log_fn = NULL;
	ctx->log_cd = cd;
	ctx->log_max = KC_LOG_DEBUG;
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
	r = vol_unlock_retry(ctx, cd, device, token_id, 0, &dek, r_result);
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
	const char *device;
	struct audit a;

	if (!ctx || !cd || token_id < 0 || !r_buf || !r_len)
		return -EINVAL;
	ctx_detail_clear(ctx);
	device = crypt_get_device_name(cd) ?: "?";
	audit_begin(ctx, &a, "unlock", device);
	audit_field(ctx, "by", "token-plugin");
	audit_uuid(ctx, crypt_get_uuid(cd));
	return audit_end(ctx, &a, unlock_passphrase(ctx, cd, device, token_id, r_buf, r_len,
						    NULL));
}

int kc_keyslot_passphrase(struct kc_ctx *ctx, const char *device, int token_id, char **r_buf,
			  size_t *r_len, struct kc_unlock_result *r_result)
{
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	struct audit a;
	int r;

	if (!ctx || !device || !r_buf || !r_len || !sized_ok(r_result, UNLOCK_RESULT_V1))
		return -EINVAL;
	ctx_detail_clear(ctx);
	audit_begin(ctx, &a, "unlock", device);
	audit_field(ctx, "by", "keyscript");
	r = vol_load(ctx, device, &cd);
	if (r >= 0) {
		/* The header is loaded: the audit event need not read it again. */
		audit_uuid(ctx, crypt_get_uuid(cd));
		r = unlock_passphrase(ctx, cd, device, token_id, r_buf, r_len, r_result);
	}
	return audit_end(ctx, &a, r);
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
	struct kc_token_info full;
	int r;

	if (!json || !sized_ok(r_info, SIZED_V1(struct kc_token_info, problem)))
		return -EINVAL;
	if (!ctx)
		ctx = &bare;
	ctx_detail_clear(ctx);
	r = token_parse(ctx, json, &t);
	if (r >= 0)
		r = kek_token_check(ctx, t);
	if (r < 0)
		return r;
	info_token_fill(&full, -1, t);
	sized_put(r_info, &full, sizeof(full));
	return 0;
}
