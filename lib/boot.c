/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What an initramfs needs to unlock kekcrypt volumes at boot: one list, in C, for the
 * initramfs-tools hook and the dracut module (through `kekcrypt boot-needs`) and for doctor.
 *
 * Only files that the configuration names are listed: the configuration itself, and what its
 * providers' sections name (credential files, CA files, the allowed KEK files, PKCS#11
 * modules and PIN files), as each provider's boot_needs() says. A LUKS2 header is untrusted,
 * so a token is used only as far as local policy allows (kek_open()); a token that names a
 * file the configuration does not name for copying is reported (KC_BOOT_UNLISTED), never
 * copied, and fails the build (KC_BOOT_UNUSABLE) only when no other token of the volume can
 * unlock it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <libcryptsetup.h>

#include "internal.h"

struct boot_item {
	int kind;
	char *path;
	char *what;
};

struct boot_list {
	struct boot_item *items;
	size_t n;
};

static void boot_list_clear(struct boot_list *b)
{
	for (size_t i = 0; i < b->n; i++) {
		free(b->items[i].path);
		free(b->items[i].what);
	}
	free(b->items);
	*b = (struct boot_list){ 0 };
}

int boot_add(struct boot_list *b, int kind, const char *path, const char *fmt, ...)
{
	struct boot_item *items, *it;
	va_list ap;
	int r;

	/* A file once is enough (the first reason given stays); what is said of a volume is said
	 * each time. */
	for (size_t i = 0; kind < KC_BOOT_UNLISTED && i < b->n; i++)
		if (b->items[i].kind == kind && !strcmp(b->items[i].path ?: "", path ?: ""))
			return 0;
	items = realloc(b->items, (b->n + 1) * sizeof(*items));
	if (!items)
		return -ENOMEM;
	b->items = items;
	it = &b->items[b->n];
	*it = (struct boot_item){ .kind = kind };
	va_start(ap, fmt);
	r = vasprintf(&it->what, fmt, ap);
	va_end(ap);
	if (r < 0 || (path && !(it->path = strdup(path)))) {
		free(it->what);
		free(it->path);
		return -ENOMEM;
	}
	b->n++;
	return 0;
}

int boot_add_listed(struct kc_ctx *ctx, struct boot_list *b, int kind, const char *section,
		    const char *key)
{
	const char *list;
	char path[4096];
	int r = 0;

	for (size_t i = 0; r >= 0 && (list = config_get_nth(ctx->config, section, key, i)); i++)
		while (r >= 0 && *list) {
			size_t m;

			list += strspn(list, ", \t");
			m = strcspn(list, ", \t");
			if (m && m < sizeof(path)) {
				memcpy(path, list, m);
				path[m] = '\0';
				r = boot_add(b, kind, path, "[%s] %s of %s", section, key,
					     config_path(ctx->config));
			}
			list += m;
		}
	return r;
}

/* The configuration and what its providers' sections name. */
static int config_needs(struct kc_ctx *ctx, struct boot_list *b)
{
	const struct kc_provider_ops *ops;
	struct stat st;
	int r = 0;

	if (stat(config_path(ctx->config), &st) < 0)
		return 0;	/* no configuration: nothing it names */
	r = boot_add(b, KC_BOOT_SECRET, config_path(ctx->config), "the configuration");
	for (size_t i = 0; r >= 0 && (ops = provider_at(i)); i++)
		if (ops->boot_needs && config_section_used(ctx->config, ops->name))
			r = ops->boot_needs(ctx, NULL, b);
	return r;
}

/* What DEVICE's tokens need; reported as they are refused or found unusable. */
static int device_needs(struct kc_ctx *ctx, const char *device, struct boot_list *b)
{
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	char refused[2048] = "";
	int usable = 0, n_refused = 0, r;

	/* Not a secret without a KEK or passphrase, but the volume opens with nothing else. */
	if (ctx->header) {
		r = boot_add(b, KC_BOOT_FILE, ctx->header, "the detached LUKS2 header of %s",
			     device);
		if (r < 0)
			return r;
	}
	r = vol_load(ctx, device, &cd);
	if (r < 0)
		return boot_add(b, KC_BOOT_UNREADABLE, device, "%s", ctx->detail);
	for (int id = 0; id < crypt_token_max(CRYPT_LUKS2); id++) {
		_cleanup_(token_freep) struct token *t = NULL;
		_cleanup_(kek_closep) struct kc_kek *kek = NULL;

		ctx_detail_clear(ctx);
		if (vol_token_read(ctx, cd, id, &t) < 0)
			continue;	/* not ours, or invalid: nothing to copy for it */
		r = kek_open(ctx, t->uri, &kek);
		if (r >= 0)
			r = kek->ops->boot_needs ? kek->ops->boot_needs(ctx, kek->state, b) : 0;
		if (r == -ENOMEM)
			return r;
		if (r == -EACCES) {
			size_t n = strlen(refused);

			n_refused++;
			snprintf(refused + n, sizeof(refused) - n, "%stoken %d", n ? ", " : "", id);
			r = boot_add(b, KC_BOOT_UNLISTED, device, "token %d (%s): %s", id, t->uri,
				     ctx->detail);
			if (r < 0)
				return r;
			continue;
		}
		usable += r >= 0;
	}
	if (n_refused && !usable)
		return boot_add(b, KC_BOOT_UNUSABLE, device, "no token can unlock it in the "
				"initramfs: %s%s %s a file that %s does not name (see the "
				"warnings); if the token is yours, add its file there",
				n_refused > 1 ? "s " : "", refused + (n_refused > 1 ? 6 : 0),
				n_refused > 1 ? "each name" : "names", config_path(ctx->config));
	return 0;
}

/* device_needs() through HEADER (NULL: on the device), for this call only. */
static int device_needs_by(struct kc_ctx *ctx, const char *device, const char *header,
			   struct boot_list *b)
{
	char *saved = ctx->header;
	int r;

	ctx->header = (char *)header;	/* borrowed: restored before anything frees it */
	r = device_needs(ctx, device, b);
	ctx->header = saved;
	return r;
}

/* Report B's items to FN (a file that is not there as KC_BOOT_MISSING), then free them. */
static int boot_report(struct kc_ctx *ctx, struct boot_list *b, int r, kc_boot_fn fn,
		       void *usrptr)
{
	for (size_t i = 0; r >= 0 && i < b->n; i++) {
		const struct boot_item *it = &b->items[i];
		int kind = it->kind;
		struct stat st;

		/* A file a boot needs that is not there: the build must fail now. */
		if ((kind == KC_BOOT_SECRET || kind == KC_BOOT_FILE || kind == KC_BOOT_LIBRARY) &&
		    stat(it->path, &st) < 0)
			kind = KC_BOOT_MISSING;
		r = fn(kind, it->path, it->what, usrptr);
	}
	boot_list_clear(b);
	ctx_detail_clear(ctx);
	return r < 0 ? r : 0;
}

int kc_boot_needs_headers(struct kc_ctx *ctx, const char *const *devices,
			  const char *const *headers, size_t n_devices, kc_boot_fn fn,
			  void *usrptr)
{
	struct boot_list b = { 0 };
	int r;

	if (!ctx || !fn || (n_devices && !devices))
		return -EINVAL;
	ctx_detail_clear(ctx);
	r = config_needs(ctx, &b);
	for (size_t i = 0; r >= 0 && i < n_devices; i++)
		r = headers ? device_needs_by(ctx, devices[i], headers[i], &b) :
			      device_needs(ctx, devices[i], &b);
	return boot_report(ctx, &b, r, fn, usrptr);
}

int kc_boot_needs_tokens(struct kc_ctx *ctx, const char *device, kc_boot_fn fn, void *usrptr)
{
	struct boot_list b = { 0 };

	if (!ctx || !device || !fn)
		return -EINVAL;
	ctx_detail_clear(ctx);
	return boot_report(ctx, &b, device_needs(ctx, device, &b), fn, usrptr);
}

int kc_boot_needs(struct kc_ctx *ctx, const char *const *devices, size_t n_devices,
		  kc_boot_fn fn, void *usrptr)
{
	return kc_boot_needs_headers(ctx, devices, NULL, n_devices, fn, usrptr);
}
