/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The KEK provider registry and KEK URI dispatch. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "internal.h"

/* Built-in providers, made from lib/Makemodule.am's KC_PROVIDERS; NULL-terminated. */
static const struct kc_provider_ops *const providers[] = {
#define PROVIDER(name) &provider_##name,
#include "providers-list.h"
#undef PROVIDER
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
	return ops->abi_version == KC_PROVIDER_ABI_VERSION && ops->name && ops->schemes &&
	       ops->schemes[0] && ops->syntax && ops->summary && ops->wrap && ops->unwrap;
}

const struct kc_provider_ops *provider_find(const char *name)
{
	for (size_t i = 0; providers[i]; i++)
		if (!strcmp(providers[i]->name, name) && provider_usable(providers[i]))
			return providers[i];
	return NULL;
}

const struct kc_provider_ops *provider_at(size_t i)
{
	for (size_t k = 0; providers[k]; k++)
		if (provider_usable(providers[k]) && i-- == 0)
			return providers[k];
	return NULL;
}

static bool serves(const struct kc_provider_ops *ops, const char *scheme, size_t len)
{
	for (size_t i = 0; ops->schemes[i]; i++)
		if (strlen(ops->schemes[i]) == len && !strncmp(ops->schemes[i], scheme, len))
			return true;
	return false;
}

static const struct kc_provider_ops *provider_for_scheme(const char *scheme, size_t len)
{
	const struct kc_provider_ops *ops;

	for (size_t i = 0; (ops = provider_at(i)); i++)
		if (serves(ops, scheme, len))
			return ops;
	return NULL;
}

/* "file, pkcs11, ...": every scheme of the table, for messages. */
static void schemes_list(char *buf, size_t size)
{
	const struct kc_provider_ops *ops;
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; (ops = provider_at(i)); i++)
		for (size_t k = 0; ops->schemes[k] && n < size; k++)
			n += (size_t)snprintf(buf + n, size - n, "%s%s", n ? ", " : "",
					      ops->schemes[k]);
}

static bool has_key(const char *const *keys, const char *key)
{
	for (size_t i = 0; keys && keys[i]; i++)
		if (!strcmp(keys[i], key))
			return true;
	return false;
}

int provider_config_check(struct kc_ctx *ctx, const char *section, const char *key)
{
	const struct kc_provider_ops *ops = provider_find(section);
	char list[1024] = "";
	size_t n = 0;

	if (ops && (!key || has_key(ops->config_keys, key)))
		return 0;
	/* What may be there instead: a typo is then easy to see. */
	if (!ops) {
		for (size_t i = 0; (ops = provider_at(i)) && n < sizeof(list); i++)
			n += (size_t)snprintf(list + n, sizeof(list) - n, "%s[%s]", n ? ", " : "",
					      ops->name);
		return ctx_fail(ctx, -EINVAL, "unknown section [%s]; the sections are "
				"[" FIRSTBOOT_SECTION "] and the providers': %s", section, list);
	}
	for (size_t i = 0; ops->config_keys && ops->config_keys[i] && n < sizeof(list); i++)
		n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", n ? ", " : "",
				      ops->config_keys[i]);
	return ctx_fail(ctx, -EINVAL, "unknown key '%s' in [%s]; it takes: %s", key, section,
			list[0] ? list : "no keys");
}

int kek_token_check(struct kc_ctx *ctx, const struct token *t)
{
	const struct kc_provider_ops *ops = provider_find(t->provider);
	size_t n = strcspn(t->uri, ":");

	if (!ops)
		return ctx_fail(ctx, -ENOENT, "provider '%s' is not known to this kekcrypt",
				t->provider);
	if (t->uri[n] != ':' || !serves(ops, t->uri, n))
		return ctx_fail(ctx, -EINVAL, "KEK URI '%s' does not belong to provider '%s'",
				t->uri, t->provider);
	return ops->validate ? ops->validate(ctx, t) : 0;
}

int kek_current_uri(struct kc_ctx *ctx, struct kc_kek *kek, char **r_uri)
{
	char *uri;

	if (kek->ops->current_uri)
		return kek->ops->current_uri(ctx, kek->state, kek->uri, r_uri);
	uri = strdup(kek->uri);
	if (!uri)
		return -ENOMEM;
	*r_uri = uri;
	return 0;
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
	if (!ops) {
		char list[256];

		schemes_list(list, sizeof(list));
		return ctx_fail(ctx, -EPROTONOSUPPORT, "KEK URI '%s': unsupported scheme '%.*s' "
				"(supported: %s)", uri, (int)scheme_len, uri, list);
	}
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

/* Append a warning of KIND to R (dropped past KC_KEK_WARNINGS_MAX). */
static void safety_warn(struct kc_kek_safety *r, const char *kind, const char *fmt, ...)
	_printf_(3, 4);
static void safety_warn(struct kc_kek_safety *r, const char *kind, const char *fmt, ...)
{
	struct kc_kek_warning *w;
	va_list ap;

	if (r->n_warnings >= KC_KEK_WARNINGS_MAX)
		return;
	w = &r->warnings[r->n_warnings++];
	snprintf(w->kind, sizeof(w->kind), "%s", kind);
	va_start(ap, fmt);
	vsnprintf(w->message, sizeof(w->message), fmt, ap);
	va_end(ap);
}

/* The warnings of what the provider found (INFO) about URI's key, into R. */
static void safety_from_info(const char *uri, const struct kek_info *info,
			     struct kc_kek_safety *r)
{
	char when[32] = "";
	struct tm tm;
	time_t t = (time_t)info->expires;

	r->checked = true;
	r->disabled = info->disabled;
	r->deletable = info->deletable;
	r->expires = info->expires;
	if (info->disabled)
		safety_warn(r, "disabled", "KEK '%s': the key is disabled: the KMS refuses to "
			    "unwrap with it, so no volume opens through this KEK until it is "
			    "enabled; %s", uri, info->disabled_fix);
	if (info->deletable)
		safety_warn(r, "deletable", "KEK '%s': the key can be deleted for good (%s), and "
			    "with it every volume that has no other KEK or recovery key; %s", uri,
			    info->deletable_why, info->deletable_fix);
	if (info->expires && gmtime_r(&t, &tm))
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (info->expires)
		safety_warn(r, "expires", "KEK '%s': the key %s %s; %s", uri,
			    t <= time(NULL) ? "expired on" : "expires on", when,
			    info->expires_fix);
}

int kc_kek_check(struct kc_ctx *ctx, const char *kek_uri, struct kc_kek_safety *r_safety)
{
	_cleanup_(kek_closep) struct kc_kek *kek = NULL;
	struct kc_kek_safety res = { .size = sizeof(res) };
	struct kek_info info = { 0 };
	int r;

	if (!ctx || !kek_uri || !r_safety ||
	    !sized_ok(r_safety, SIZED_V1(struct kc_kek_safety, warnings)))
		return -EINVAL;
	ctx_detail_clear(ctx);
	r = kek_open(ctx, kek_uri, &kek);
	if (r >= 0 && kek->ops->inspect) {
		ctx_deadline_start(ctx, 0);
		r = kek->ops->inspect(ctx, kek->state, &info);
		ctx_deadline_end(ctx);
		/* On failure the provider's detail names the key. */
		if (r >= 0)
			safety_from_info(kek_uri, &info, &res);
	}
	if (r < 0)
		return r;
	sized_put(r_safety, &res, sizeof(res));
	return 0;
}

const char *kc_provider_name(size_t i)
{
	const struct kc_provider_ops *ops = provider_at(i);

	return ops ? ops->name : NULL;
}

const char *kc_provider_syntax(size_t i)
{
	const struct kc_provider_ops *ops = provider_at(i);

	return ops ? ops->syntax : NULL;
}

const char *kc_provider_summary(size_t i)
{
	const struct kc_provider_ops *ops = provider_at(i);

	return ops ? ops->summary : NULL;
}
