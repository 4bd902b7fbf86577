/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kc_config_check(): what a loaded configuration names, checked now (config check, doctor)
 * rather than at the first unlock or the next boot. The files are those the configuration
 * names for a boot (boot.c asks each provider's boot_needs(), so a new provider's files are
 * checked too), held to the checks of trust.c; the endpoints are policy.c's allowed-hosts.
 */
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>

#include "internal.h"

struct check {
	struct kc_ctx *ctx;
	kc_config_fn fn;
	void *usrptr;
	int problems;
};

static void problem(struct check *c, int kind, const char *fmt, ...) _printf_(3, 4);
static void problem(struct check *c, int kind, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->fn(kind, msg, c->usrptr);
	c->problems++;
}

static int check_file(int kind, const char *path, const char *what, void *usrptr)
{
	struct check *c = usrptr;
	struct stat st;
	int r;

	if (kind == KC_BOOT_MISSING) {
		problem(c, KC_CONFIG_MISSING, "%s: '%s' does not exist", what, path);
		return 0;
	}
	if (kind != KC_BOOT_SECRET && kind != KC_BOOT_FILE && kind != KC_BOOT_LIBRARY)
		return 0;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		r = trust_check_dir(c->ctx, path, what);
	else
		r = trust_check_path(c->ctx, path, what,
				     kind == KC_BOOT_SECRET ? TRUST_PRIVATE : 0);
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		problem(c, KC_CONFIG_UNUSABLE, "%s", c->ctx->detail);
	return 0;
}

static int bad_host(struct kc_ctx *ctx, const char *section, const char *entry, size_t len,
		    void *usrptr)
{
	problem(usrptr, KC_CONFIG_BAD_ENTRY, "[%s] allowed-hosts in %s: '%.*s' is not HOST or "
		"HOST:PORT (no scheme, path or wildcard)", section, config_path(ctx->config),
		(int)len, entry);
	return 0;
}

int kc_config_check(struct kc_ctx *ctx, kc_config_fn fn, void *usrptr)
{
	struct check c = { .ctx = ctx, .fn = fn, .usrptr = usrptr };
	const struct kc_provider_ops *ops;
	int r;

	if (!ctx || !fn)
		return -EINVAL;
	r = kc_boot_needs(ctx, NULL, 0, check_file, &c);
	for (size_t i = 0; r >= 0 && (ops = provider_at(i)); i++)
		r = policy_hosts_check(ctx, ops->name, bad_host, &c);
	ctx_detail_clear(ctx);
	return r < 0 ? r : c.problems;
}
