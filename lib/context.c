/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A context's life: made, given its configuration, freed. */
#include <libcryptsetup.h>

#include "internal.h"

#define DEFAULT_CONFIG "/etc/kekcrypt/kekcrypt.conf"

static int ctx_new(struct kc_ctx **r_ctx, struct crypt_device *cd, const char *config_path)
{
	struct kc_ctx *ctx;
	int r;

	if (!r_ctx)
		return -EINVAL;
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return -ENOMEM;
	ctx->borrowed_cd = cd;
	ctx->log_max = -1;
	r = config_load(ctx, config_path ?: DEFAULT_CONFIG, config_path != NULL,
			template_config_check, &ctx->config);
	if (r < 0) {
		kc_free(ctx);
		return r;
	}
	*r_ctx = ctx;
	return 0;
}

int kc_init(struct kc_ctx **r_ctx, const char *config_path)
{
	return ctx_new(r_ctx, NULL, config_path);
}

int kc_new(struct kc_ctx **r_ctx)
{
	struct kc_ctx *ctx;

	if (!r_ctx)
		return -EINVAL;
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return -ENOMEM;
	ctx->log_max = -1;
	*r_ctx = ctx;
	return 0;
}

int kc_config_load(struct kc_ctx *ctx, const char *config_path)
{
	struct kc_config *config = NULL;
	int r;

	if (!ctx)
		return -EINVAL;
	ctx_detail_clear(ctx);
	r = config_load(ctx, config_path ?: DEFAULT_CONFIG, config_path != NULL,
			template_config_check, &config);
	if (r < 0)
		return r;
	config_free(ctx->config);
	ctx->config = config;
	return 0;
}

int kc_init_by_crypt_device(struct kc_ctx **r_ctx, struct crypt_device *cd,
			    const char *config_path)
{
	if (!cd)
		return -EINVAL;
	return ctx_new(r_ctx, cd, config_path);
}

void kc_free(struct kc_ctx *ctx)
{
	if (!ctx)
		return;
	for (size_t i = ctx->n_slots; i-- > 0;)
		if (ctx->slots[i].free)
			ctx->slots[i].free(ctx->slots[i].data);
	free(ctx->slots);
	config_free(ctx->config);
	free(ctx->header);
	free(ctx);
}
