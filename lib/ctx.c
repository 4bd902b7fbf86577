/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The library context: logging, the explanation of the last failure, deadlines, slots. */
#include <stdio.h>
#include <string.h>

#include <libcryptsetup.h>

#include "internal.h"

void kc_set_log(struct kc_ctx *ctx, kc_log_fn fn, int max_level, void *usrptr)
{
	if (!ctx)
		return;
	/* This context's messages only: libcryptsetup's process-wide settings (its debug level,
	 * the log callback of handle-less calls) are the application's (see kekcrypt.h). */
	ctx->log_fn = fn;
	ctx->log_cd = NULL;
	ctx->log_max = max_level;
	ctx->log_usrptr = usrptr;
}

void kc_set_timeout(struct kc_ctx *ctx, unsigned timeout_ms)
{
	if (ctx)
		ctx->timeout_ms = timeout_ms;
}

void ctx_deadline_start(struct kc_ctx *ctx, unsigned timeout_ms)
{
	ctx->deadline_ms = util_now_ms() +
			   (timeout_ms ?: ctx->timeout_ms ?: CTX_DEFAULT_TIMEOUT_MS);
}

void ctx_deadline_end(struct kc_ctx *ctx)
{
	ctx->deadline_ms = 0;
}

const char *kc_error_detail(const struct kc_ctx *ctx)
{
	return ctx ? ctx->detail : "";
}

const char *kc_version(void)
{
	return PACKAGE_VERSION;
}

void *ctx_slot(struct kc_ctx *ctx, const void *key)
{
	for (size_t i = 0; ctx && i < ctx->n_slots; i++)
		if (ctx->slots[i].key == key)
			return ctx->slots[i].data;
	return NULL;
}

int ctx_slot_set(struct kc_ctx *ctx, const void *key, void *data, void (*free_fn)(void *))
{
	struct ctx_slot *s;

	s = realloc(ctx->slots, (ctx->n_slots + 1) * sizeof(*s));
	if (!s)
		return -ENOMEM;
	ctx->slots = s;
	ctx->slots[ctx->n_slots++] = (struct ctx_slot){ .key = key, .data = data,
							.free = free_fn };
	return 0;
}

/* libcryptsetup drops CRYPT_LOG_DEBUG messages unless debugging is on (cryptsetup --debug);
 * CRYPT_LOG_NORMAL is a notice (systemd-cryptsetup: LOG_NOTICE), CRYPT_LOG_ERROR an error. */
static int crypt_level(int level)
{
	switch (level) {
	case KC_LOG_DEBUG:
		return CRYPT_LOG_DEBUG;
	case KC_LOG_INFO:
		return CRYPT_LOG_NORMAL;
	default:
		return CRYPT_LOG_ERROR;
	}
}

void ctx_log(struct kc_ctx *ctx, int level, const char *fmt, ...)
{
	int public_level = level == CTX_LOG_WARNING ? KC_LOG_INFO : level;
	char msg[1024];
	va_list ap;

	if (!ctx || (!ctx->log_fn && !ctx->log_cd) || public_level > ctx->log_max)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (ctx->log_cd)
		crypt_logf(ctx->log_cd, crypt_level(level), "kekcrypt: %s%s", msg,
			   level == KC_LOG_DEBUG ? "" : "\n");
	else
		ctx->log_fn(public_level, msg, ctx->log_usrptr);
}

/* Details quote strings from untrusted headers: no control characters reach a terminal. */
static void detail_sanitise(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

int ctx_fail(struct kc_ctx *ctx, int r, const char *fmt, ...)
{
	va_list ap;

	if (!ctx)
		return r;
	va_start(ap, fmt);
	vsnprintf(ctx->detail, sizeof(ctx->detail), fmt, ap);
	va_end(ap);
	detail_sanitise(ctx->detail);
	log_dbg(ctx, "%s", ctx->detail);
	return r;
}

void ctx_detail_prefix(struct kc_ctx *ctx, const char *fmt, ...)
{
	char buf[sizeof(ctx->detail)];
	size_t n, m;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	n = strlen(buf);
	if (ctx->detail[0] && n + 2 < sizeof(buf)) {
		memcpy(buf + n, ": ", 2);
		n += 2;
		m = strnlen(ctx->detail, sizeof(buf) - n - 1);
		memcpy(buf + n, ctx->detail, m);
		buf[n + m] = '\0';
	}
	detail_sanitise(buf);
	memcpy(ctx->detail, buf, sizeof(buf));
}

void ctx_detail_suffix(struct kc_ctx *ctx, const char *fmt, ...)
{
	size_t n = strnlen(ctx->detail, sizeof(ctx->detail));
	va_list ap;

	if (n + 1 >= sizeof(ctx->detail))
		return;
	va_start(ap, fmt);
	vsnprintf(ctx->detail + n, sizeof(ctx->detail) - n, fmt, ap);
	va_end(ap);
	detail_sanitise(ctx->detail);
}

void ctx_detail_device(struct kc_ctx *ctx, const char *device)
{
	char needle[sizeof(ctx->detail)];

	snprintf(needle, sizeof(needle), "device '%s'", device);
	if (!strstr(ctx->detail, needle))
		ctx_detail_prefix(ctx, "%s", needle);
}

void ctx_detail_clear(struct kc_ctx *ctx)
{
	ctx->detail[0] = '\0';
}

const char *kc_strerror(int r)
{
	switch (r) {
	case 0: return "success";
	case -ENOENT: return "no usable token, key or file";
	case -EAGAIN: return "KMS or HSM unreachable";
	case -EPERM: return "refused by the KMS or HSM";
	case -ENOANO: return "credential or PIN required";
	case -EKEYREJECTED: return "credential or PIN rejected";
	case -EBADMSG: return "wrong key: integrity check failed";
	case -EINVAL: return "malformed token, URI, configuration or argument";
	case -EMEDIUMTYPE: return "not a LUKS2 device or corrupt header";
	case -ENOEXEC: return "a LUKS1 volume: convert it to LUKS2 first";
	case -EEXIST: return "device holds data or name exists";
	case -EBUSY: return "device or mapping in use";
	case -EROFS: return "device is read-only";
	case -EACCES: return "permission denied";
	case -EPROTONOSUPPORT: return "unsupported KEK URI scheme";
	case -ETIMEDOUT: return "deadline passed";
	case -ENOTSUP: return "not supported by this system";
	case -ENOMEM: return "out of memory";
	case -EPROTO: return "TLS failure talking to the KMS";
	case -EBADE: return "malformed response from the KMS";
	case -ENOSPC: return "no room in the LUKS2 header";
	case -EXDEV: return "the header backup belongs to another volume";
	case -EIO: return "header read or write failed";
	default: return "internal error";
	}
}
