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

/* "30", "30s", "1min", "500ms", "2m 30s" (the systemd.time(7) spans a crypttab uses) in whole
 * seconds, rounded up; -EINVAL otherwise. */
static int parse_timespan(const char *s, unsigned *r_seconds)
{
	static const struct { const char *unit; unsigned ms; } units[] = {
		{ "ms", 1 }, { "msec", 1 }, { "s", 1000 }, { "sec", 1000 }, { "second", 1000 },
		{ "seconds", 1000 }, { "m", 60000 }, { "min", 60000 }, { "minute", 60000 },
		{ "minutes", 60000 }, { "h", 3600000 }, { "hr", 3600000 }, { "hour", 3600000 },
		{ "hours", 3600000 },
	};
	uint64_t total_ms = 0;
	bool any = false;

	while (*s) {
		char unit[8] = "";
		size_t n = 0;
		unsigned long v;
		unsigned ms = 1000;
		char *end;

		while (isspace((unsigned char)*s))
			s++;
		if (!*s)
			break;
		if (!isdigit((unsigned char)*s))
			return -EINVAL;
		errno = 0;
		v = strtoul(s, &end, 10);
		if (errno || v > 100000000)
			return -EINVAL;
		for (s = end; isalpha((unsigned char)*s); s++)
			if (n + 1 < sizeof(unit))
				unit[n++] = *s;
			else
				return -EINVAL;
		if (n) {
			size_t i;

			for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
				if (!strcmp(unit, units[i].unit))
					break;
			if (i == sizeof(units) / sizeof(units[0]))
				return -EINVAL;
			ms = units[i].ms;
		}
		total_ms += (uint64_t)v * ms;
		if (total_ms > (uint64_t)UINT_MAX * 1000)
			return -EINVAL;
		any = true;
	}
	if (!any)
		return -EINVAL;
	*r_seconds = (unsigned)((total_ms + 999) / 1000);
	return 0;
}

/* Whether crypttab's SOURCE (UUID=, PARTUUID=, LABEL=, a path) names the volume with UUID
 * whose device resolves to DEVICE (a realpath, or NULL). */
static bool crypttab_source_matches(const char *source, const char *uuid, const char *device)
{
	static const struct { const char *tag, *dir; } tags[] = {
		{ "PARTUUID=", "/dev/disk/by-partuuid/" }, { "LABEL=", "/dev/disk/by-label/" },
		{ "PARTLABEL=", "/dev/disk/by-partlabel/" },
	};
	_cleanup_(freep) char *a = NULL;
	char path[PATH_MAX];

	if (!strncasecmp(source, "UUID=", 5))
		return uuid && !strcasecmp(source + 5, uuid);
	snprintf(path, sizeof(path), "%s", source);
	for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++)
		if (!strncasecmp(source, tags[i].tag, strlen(tags[i].tag)))
			snprintf(path, sizeof(path), "%s%s", tags[i].dir,
				 source + strlen(tags[i].tag));
	if (!device || path[0] != '/')
		return false;
	a = realpath(path, NULL);
	return a && !strcmp(a, device);
}

int kc_crypttab_token_timeout(const char *crypttab, struct crypt_device *cd,
			      unsigned *r_seconds)
{
	_cleanup_(freep) char *line = NULL, *device = NULL;
	size_t cap = 0;
	FILE *f;
	int r = 0;

	if (!cd || !r_seconds)
		return -EINVAL;
	if (crypt_get_device_name(cd))
		device = realpath(crypt_get_device_name(cd), NULL);
	f = fopen(crypttab ?: "/etc/crypttab", "re");
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	while (r == 0 && getline(&line, &cap, f) >= 0) {
		char *save = NULL, *name, *source, *options, *opt;

		name = strtok_r(line, " \t\n", &save);
		source = name ? strtok_r(NULL, " \t\n", &save) : NULL;
		if (!source || name[0] == '#')
			continue;
		(void)strtok_r(NULL, " \t\n", &save);	/* the key file */
		options = strtok_r(NULL, " \t\n", &save);
		if (!crypttab_source_matches(source, crypt_get_uuid(cd), device))
			continue;
		r = 1;	/* this volume's entry; the default applies unless it says otherwise */
		for (opt = strtok_r(options, ",", &save); opt; opt = strtok_r(NULL, ",", &save))
			if (!strncmp(opt, "token-timeout=", 14) &&
			    parse_timespan(opt + 14, r_seconds) < 0)
				r = -EINVAL;
	}
	fclose(f);
	return r;
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
