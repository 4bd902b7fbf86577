/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The audit trail: one event per change of what protects a volume (format, kek add, remove
 * and rotate, rekey start and finish, recovery add and remove, header restore) and per unlock
 * through a kekcrypt token (open, the token plugin, the keyscript), whether it worked or not:
 * one syslog line of identifier "kekcrypt", facility authpriv, e.g.
 *
 *   kekcrypt[812]: audit: event=kek-add outcome=ok device=/dev/vdb uuid=... token=3
 *   kek=file:/etc/kekcrypt/k2.bin uid=0 auid=1000 elapsed=0.041
 *
 * Never a secret: KEK URIs hold none (DESIGN.md), nor do error details (kekcrypt.h).
 *
 * The line goes straight to the /dev/log datagram socket, not through syslog(3): its ident
 * and facility are process-wide (openlog()), and the library runs inside programs (cryptsetup,
 * systemd-cryptsetup) whose own logging must not change. Where nothing listens there (an
 * initramfs-tools initramfs has no syslog daemon), the same line goes to the kernel log,
 * /dev/kmsg, which journald reads once it runs. authpriv, not daemon: these are security
 * records (who changed the keys of which volume, what unlocked it); syslog daemons keep
 * authpriv in a file only root (and adm) can read, where security tooling looks.
 *
 * Logging is best effort: an operation never fails because its event could not be written.
 *
 * Test hook: KC_AUDIT_KMSG_PATH (secure_getenv), an existing file used instead of /dev/kmsg.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <libcryptsetup.h>

#include "internal.h"

#define AUDIT_SOCKET "/dev/log"
#define AUDIT_KMSG "/dev/kmsg"
/* The kernel takes at most about 1 KiB per /dev/kmsg record. */
#define AUDIT_KMSG_MAX 976

/* Append " KEY=VALUE" to BUF, VALUE quoted when it is empty or holds a space, '"', '\' or
 * '=', control characters replaced (values come from headers, which are untrusted). */
static void field_add(char *buf, size_t size, const char *key, const char *value)
{
	size_t n = strlen(buf);
	bool quote = !*value || strpbrk(value, " \"\\=");

	n += (size_t)snprintf(buf + n, n < size ? size - n : 0, " %s=%s", key, quote ? "\"" : "");
	for (const char *p = value; *p && n + 3 < size; p++) {
		if (*p == '"' || *p == '\\')
			buf[n++] = '\\';
		buf[n++] = (unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p;
	}
	if (n + 2 < size && quote)
		buf[n++] = '"';
	if (n < size)
		buf[n] = '\0';
}

static void list_add(char *list, size_t size, const char *item)
{
	size_t n = strlen(list);

	snprintf(list + n, size - n, "%s%s", n ? " " : "", item);
}

void audit_begin(struct kc_ctx *ctx, struct audit *a, const char *event, const char *device)
{
	*a = (struct audit){ .event = event, .device = device, .started_ms = util_now_ms() };
	/* A public call inside another's: the outer one's event tells it all. */
	if (ctx && device && !ctx->audit) {
		ctx->audit = a;
		audit_field(ctx, "header", ctx->header);
	}
}

void audit_token(struct kc_ctx *ctx, int id, const char *kek)
{
	char num[16];

	if (!ctx || !ctx->audit || id < 0)
		return;
	snprintf(num, sizeof(num), "%d", id);
	list_add(ctx->audit->tokens, sizeof(ctx->audit->tokens), num);
	if (kek)
		audit_kek(ctx, kek);
}

void audit_kek(struct kc_ctx *ctx, const char *kek)
{
	if (ctx && ctx->audit && kek)
		list_add(ctx->audit->keks, sizeof(ctx->audit->keks), kek);
}

void audit_from(struct kc_ctx *ctx, const char *kek)
{
	if (ctx && ctx->audit && kek)
		list_add(ctx->audit->from, sizeof(ctx->audit->from), kek);
}

void audit_uuid(struct kc_ctx *ctx, const char *uuid)
{
	if (ctx && ctx->audit && uuid)
		snprintf(ctx->audit->uuid, sizeof(ctx->audit->uuid), "%s", uuid);
}

void audit_field(struct kc_ctx *ctx, const char *key, const char *value)
{
	if (ctx && ctx->audit && value)
		field_add(ctx->audit->fields, sizeof(ctx->audit->fields), key, value);
}

void audit_attempts(struct kc_ctx *ctx, unsigned attempts)
{
	if (ctx && ctx->audit)
		ctx->audit->attempts = attempts;
}

/* The volume's UUID as the header on DEVICE has it now (after the change), read without
 * touching the context's error detail; "" when it is not a LUKS2 volume. */
static void uuid_read(struct kc_ctx *ctx, const char *device, char uuid[40])
{
	struct crypt_device *cd = NULL;

	if (vol_crypt_init(ctx, device, &cd) >= 0) {
		if (crypt_load(cd, CRYPT_LUKS2, NULL) >= 0 && crypt_get_uuid(cd))
			snprintf(uuid, 40, "%s", crypt_get_uuid(cd));
	}
	crypt_free(cd);
}

/* The login UID of the session the caller runs in (who, behind sudo), or -1 when unset. */
static long login_uid(void)
{
	char buf[16] = "";
	unsigned long uid = UINT32_MAX;	/* the kernel's "unset" */
	int fd = open("/proc/self/loginuid", O_RDONLY | O_CLOEXEC);

	if (fd >= 0 && read(fd, buf, sizeof(buf) - 1) > 0)
		uid = strtoul(buf, NULL, 10);
	if (fd >= 0)
		close(fd);
	return uid < UINT32_MAX ? (long)uid : -1;
}

/* The name of error code R as kekcrypt.h documents it. */
static const char *error_name(int r)
{
	/* On Linux ENOTSUP is EOPNOTSUPP, the name glibc gives it. */
	if (r == -ENOTSUP)
		return "ENOTSUP";
	return strerrorname_np(-r) ?: "unknown";
}

/* The event A (outcome R) as "key=value..." in MSG. */
static void audit_format(struct kc_ctx *ctx, const struct audit *a, int r, char *msg,
			 size_t size)
{
	uint64_t ms = util_now_ms() - a->started_ms;
	char num[32];
	long auid = login_uid();

	snprintf(msg, size, "event=%s outcome=%s", a->event, r < 0 ? "failed" : "ok");
	field_add(msg, size, "device", a->device);
	if (a->uuid[0])
		field_add(msg, size, "uuid", a->uuid);
	if (a->tokens[0])
		field_add(msg, size, "token", a->tokens);
	if (a->keks[0])
		field_add(msg, size, "kek", a->keks);
	if (a->from[0])
		field_add(msg, size, "from", a->from);
	snprintf(msg + strlen(msg), size - strlen(msg), "%s", a->fields);
	if (a->attempts) {
		snprintf(num, sizeof(num), "%u", a->attempts);
		field_add(msg, size, "attempts", num);
	}
	snprintf(num, sizeof(num), "%u", (unsigned)getuid());
	field_add(msg, size, "uid", num);
	if (auid >= 0) {
		snprintf(num, sizeof(num), "%ld", auid);
		field_add(msg, size, "auid", num);
	}
	snprintf(num, sizeof(num), "%llu.%03llu", (unsigned long long)ms / 1000,
		 (unsigned long long)ms % 1000);
	field_add(msg, size, "elapsed", num);
	if (r < 0) {
		field_add(msg, size, "error", error_name(r));
		field_add(msg, size, "message", ctx->detail[0] ? ctx->detail : kc_strerror(r));
	}
}

/* Send LINE (an RFC 3164 message) to the syslog socket; false when nothing listens. */
static bool send_syslog(const char *line)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = AUDIT_SOCKET };
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	bool sent;

	if (fd < 0)
		return false;
	sent = sendto(fd, line, strlen(line), MSG_NOSIGNAL, (struct sockaddr *)&sa,
		      sizeof(sa)) >= 0;
	close(fd);
	return sent;
}

/* Write LEN bytes of LINE, one kernel log record, to /dev/kmsg. */
static void send_kmsg(const char *line, size_t len)
{
	const char *path = secure_getenv("KC_AUDIT_KMSG_PATH") ?: AUDIT_KMSG;
	/* No O_CREAT: the hook names a file that exists, never makes one. */
	int fd = open(path, O_WRONLY | O_APPEND | O_NOCTTY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return;
	n = write(fd, line, len);
	(void)n;	/* best effort: there is nowhere else to say it failed */
	close(fd);
}

static void audit_emit(struct kc_ctx *ctx, const struct audit *a, int r)
{
	int pri = LOG_AUTHPRIV | (r < 0 ? LOG_WARNING : LOG_NOTICE);
	char msg[4096], line[4200], stamp[32] = "";
	struct tm tm;
	time_t now = time(NULL);
	int n;

	audit_format(ctx, a, r, msg, sizeof(msg));
	if (localtime_r(&now, &tm))
		strftime(stamp, sizeof(stamp), "%b %e %T ", &tm);
	snprintf(line, sizeof(line), "<%d>%skekcrypt[%d]: audit: %s", pri, stamp, (int)getpid(),
		 msg);
	if (send_syslog(line))
		return;
	/* The kernel log: no timestamp of ours (it stamps the record), one record per line. */
	n = snprintf(line, sizeof(line), "<%d>kekcrypt[%d]: audit: %s", pri, (int)getpid(), msg);
	if (n < 0)
		return;
	if (n > AUDIT_KMSG_MAX)
		n = AUDIT_KMSG_MAX;
	line[n] = '\n';
	send_kmsg(line, (size_t)n + 1);
}

int audit_end(struct kc_ctx *ctx, struct audit *a, int r)
{
	if (!ctx || ctx->audit != a)
		return r;
	ctx->audit = NULL;
	if (!a->uuid[0])
		uuid_read(ctx, a->device, a->uuid);
	audit_emit(ctx, a, r);
	return r;
}

void audit_mark(struct kc_ctx *ctx, const char *event)
{
	struct audit *a = ctx ? ctx->audit : NULL;
	const char *saved;

	if (!a)
		return;
	if (!a->uuid[0])
		uuid_read(ctx, a->device, a->uuid);
	saved = a->event;
	a->event = event;
	audit_emit(ctx, a, 0);
	a->event = saved;
	a->tokens[0] = a->keks[0] = a->from[0] = '\0';
}
