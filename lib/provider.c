/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The KEK provider registry and KEK URI dispatch. */
#include <string.h>

#include "internal.h"

/* Built-in providers; NULL-terminated. */
static const struct kc_provider_ops *const providers[] = {
	&provider_file,
	&provider_pkcs11,
	&provider_vault,
	&provider_azure,
	NULL,
};

void wrapped_clear(struct kc_wrapped *w)
{
	free(w->data);
	free(w->key_version);
	memset(w, 0, sizeof(*w));
}

/* A provider is used only if its ABI matches and the mandatory members exist. */
static bool provider_usable(const struct kc_provider_ops *ops)
{
	return ops->abi_version == KC_PROVIDER_ABI_VERSION && ops->name && ops->scheme &&
	       ops->wrap && ops->unwrap;
}

const struct kc_provider_ops *provider_find(const char *name)
{
	for (size_t i = 0; providers[i]; i++)
		if (!strcmp(providers[i]->name, name) && provider_usable(providers[i]))
			return providers[i];
	return NULL;
}

static const struct kc_provider_ops *provider_for_scheme(const char *scheme, size_t len)
{
	for (size_t i = 0; providers[i]; i++)
		if (strlen(providers[i]->scheme) == len &&
		    !strncmp(providers[i]->scheme, scheme, len) && provider_usable(providers[i]))
			return providers[i];
	return NULL;
}

int kek_open(struct kc_ctx *ctx, const char *uri, struct kc_kek **r_kek)
{
	const struct kc_provider_ops *ops;
	struct kc_kek *kek;
	size_t scheme_len;
	int r;

	if (!uri || !*uri)
		return ctx_fail(ctx, -EINVAL, "empty KEK URI");
	if (strlen(uri) > TOKEN_URI_MAX)
		return ctx_fail(ctx, -EINVAL, "KEK URI longer than %d bytes", TOKEN_URI_MAX);
	scheme_len = strspn(uri, "abcdefghijklmnopqrstuvwxyz0123456789+-.");
	if (uri[scheme_len] != ':' || scheme_len == 0)
		return ctx_fail(ctx, -EINVAL, "KEK URI '%s' has no scheme (e.g. file:, pkcs11:)",
				uri);
	ops = provider_for_scheme(uri, scheme_len);
	if (!ops)
		return ctx_fail(ctx, -EPROTONOSUPPORT,
				"KEK URI '%s': unsupported scheme '%.*s' (supported: file, pkcs11, "
				"vault-transit+https, azure-kv+https)",
				uri, (int)scheme_len, uri);
	kek = calloc(1, sizeof(*kek));
	if (!kek)
		return -ENOMEM;
	kek->ops = ops;
	kek->uri = strdup(uri);
	if (!kek->uri) {
		kek_close(kek);
		return -ENOMEM;
	}
	r = ops->init ? ops->init(ctx, uri, &kek->state) : 0;
	if (r >= 0 && ops->needs) {
		struct kek_needs needs = { .section = ops->name };

		ops->needs(kek->state, &needs);
		r = policy_kek(ctx, &needs);
	}
	if (r < 0) {
		kek_close(kek);
		return r;
	}
	*r_kek = kek;
	return 0;
}

void kek_close(struct kc_kek *kek)
{
	if (!kek)
		return;
	if (kek->ops->free && kek->state)
		kek->ops->free(kek->state);
	free(kek->uri);
	free(kek);
}

void kek_closep(struct kc_kek **kek)
{
	kek_close(*kek);
	*kek = NULL;
}
