/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* kc_volume_info: a read-only description of a volume and its kekcrypt tokens. */
#include <stdio.h>
#include <string.h>

#include <libcryptsetup.h>

#include "internal.h"

struct kc_volume_info {
	char uuid[40];
	char label[49];
	char cipher[64];
	size_t key_bits;
	uint32_t sector_size;
	uint64_t data_offset;
	uint32_t keyslots;
	struct kc_token_info *tokens;
	size_t n_tokens;
};

void info_token_fill(struct kc_token_info *ti, int id, const struct token *t)
{
	memset(ti, 0, sizeof(*ti));
	ti->size = sizeof(*ti);
	ti->id = id;
	ti->keyslot = t ? t->keyslot : -1;
	if (!t)
		return;
	ti->format_version = t->version;
	ti->wrapped_len = t->wrapped_len;
	snprintf(ti->provider, sizeof(ti->provider), "%s", t->provider);
	snprintf(ti->kek_uri, sizeof(ti->kek_uri), "%s", t->uri);
	snprintf(ti->key_version, sizeof(ti->key_version), "%s", t->key_version ?: "");
	snprintf(ti->wrap_alg, sizeof(ti->wrap_alg), "%s", t->alg);
	snprintf(ti->created, sizeof(ti->created), "%s", t->created);
}

static void info_fill_token(struct kc_ctx *ctx, struct crypt_device *cd, int id,
			    struct kc_token_info *ti)
{
	_cleanup_(token_freep) struct token *t = NULL;
	int r = vol_token_read(ctx, cd, id, &t);

	info_token_fill(ti, id, r < 0 ? NULL : t);
	ti->valid = r < 0 ? r : 0;
	if (r < 0)
		snprintf(ti->problem, sizeof(ti->problem), "%s", ctx->detail);
}

static int info_fill_tokens(struct kc_ctx *ctx, struct crypt_device *cd,
			    struct kc_volume_info *info)
{
	int max = crypt_token_max(CRYPT_LUKS2);

	info->tokens = calloc((size_t)max, sizeof(*info->tokens));
	if (!info->tokens)
		return -ENOMEM;
	for (int id = 0; id < max; id++) {
		const char *type = NULL;
		crypt_token_info st = crypt_token_status(cd, id, &type);

		if (st == CRYPT_TOKEN_INACTIVE || st == CRYPT_TOKEN_INVALID || !type ||
		    strcmp(type, TOKEN_TYPE))
			continue;
		info_fill_token(ctx, cd, id, &info->tokens[info->n_tokens++]);
	}
	return 0;
}

int kc_volume_info_get(struct kc_ctx *ctx, const char *device, struct kc_volume_info **r_info)
{
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	struct kc_volume_info *info;
	int r;

	if (!ctx || !device || !r_info)
		return -EINVAL;
	ctx_detail_clear(ctx);
	r = vol_load(ctx, device, &cd);
	if (r < 0)
		return r;
	info = calloc(1, sizeof(*info));
	if (!info)
		return -ENOMEM;
	snprintf(info->uuid, sizeof(info->uuid), "%s", crypt_get_uuid(cd) ?: "");
	snprintf(info->label, sizeof(info->label), "%s", crypt_get_label(cd) ?: "");
	for (char *p = info->label; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';	/* the header is untrusted; keep terminals safe */
	snprintf(info->cipher, sizeof(info->cipher), "%s-%s", crypt_get_cipher(cd),
		 crypt_get_cipher_mode(cd));
	info->key_bits = (size_t)crypt_get_volume_key_size(cd) * 8;
	info->sector_size = (uint32_t)crypt_get_sector_size(cd);
	info->data_offset = crypt_get_data_offset(cd) * 512;
	for (int s = 0; s < crypt_keyslot_max(CRYPT_LUKS2); s++) {
		crypt_keyslot_info ki = crypt_keyslot_status(cd, s);

		if (ki == CRYPT_SLOT_ACTIVE || ki == CRYPT_SLOT_ACTIVE_LAST)
			info->keyslots |= 1u << s;
	}
	r = info_fill_tokens(ctx, cd, info);
	if (r < 0) {
		kc_volume_info_free(info);
		return r;
	}
	ctx_detail_clear(ctx);
	*r_info = info;
	return 0;
}

void kc_volume_info_free(struct kc_volume_info *info)
{
	if (!info)
		return;
	free(info->tokens);
	free(info);
}

const char *kc_volume_info_uuid(const struct kc_volume_info *info) { return info->uuid; }
const char *kc_volume_info_label(const struct kc_volume_info *info) { return info->label; }
const char *kc_volume_info_cipher(const struct kc_volume_info *info) { return info->cipher; }
size_t kc_volume_info_key_bits(const struct kc_volume_info *info) { return info->key_bits; }
uint32_t kc_volume_info_sector_size(const struct kc_volume_info *info)
{
	return info->sector_size;
}
uint64_t kc_volume_info_data_offset(const struct kc_volume_info *info)
{
	return info->data_offset;
}
uint32_t kc_volume_info_keyslots(const struct kc_volume_info *info) { return info->keyslots; }
size_t kc_volume_info_n_tokens(const struct kc_volume_info *info) { return info->n_tokens; }

const struct kc_token_info *kc_volume_info_token(const struct kc_volume_info *info, size_t i)
{
	return i < info->n_tokens ? &info->tokens[i] : NULL;
}
