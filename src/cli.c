/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Helpers shared by the verbs: exit codes, errors, confirmation, common options. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libcryptsetup.h>

#include "cli.h"
#include "crypttab.h"

int cli_exit_code(int r)
{
	switch (r) {
	case 0: return EXIT_OK;
	case -ENOENT: return EXIT_NOENT;
	case -EAGAIN: return EXIT_UNREACHABLE;
	case -EPERM: return EXIT_REFUSED;
	case -ENOANO: return EXIT_CRED_REQUIRED;
	case -EKEYREJECTED: return EXIT_CRED_REJECTED;
	case -EBADMSG: return EXIT_WRONG_KEY;
	case -EINVAL: return EXIT_MALFORMED;
	case -EMEDIUMTYPE: return EXIT_NOT_LUKS;
	case -ENOEXEC: return EXIT_LUKS1;
	case -EEXIST: return EXIT_EXISTS;
	case -EBUSY: return EXIT_BUSY;
	case -EROFS: return EXIT_READONLY;
	case -EACCES: return EXIT_ACCESS;
	case -EPROTONOSUPPORT: return EXIT_UNSUPPORTED_URI;
	case -ETIMEDOUT: return EXIT_TIMEOUT;
	case -ECANCELED: return EXIT_CANCELLED;
	case -ENOMEM: return EXIT_NOMEM;
	case -ENOTSUP: return EXIT_NO_DM;
	case -ENOSPC: return EXIT_NOSPACE;
	case -EPROTO: return EXIT_TLS;
	case -EBADE: return EXIT_BAD_RESPONSE;
	case -EXDEV: return EXIT_OTHER_VOLUME;
	default: return EXIT_INTERNAL;
	}
}

int cli_fail(struct cli *cli, int r)
{
	const char *detail = cli->ctx ? kc_error_detail(cli->ctx) : "";

	cli_error(cli, "%s", detail[0] ? detail : kc_strerror(r));
	return cli_exit_code(r);
}

int cli_config_fail(struct cli *cli, int r)
{
	/* -EINVAL here is the file's text, not a token's: its own exit code. */
	int ex = r == -EINVAL ? EXIT_CONFIG : cli_exit_code(r);

	cli_fail(cli, r);
	return ex;
}

/* The next "; token N" in S, or NULL. */
static const char *next_token(const char *s)
{
	while ((s = strstr(s, "; token ")) && !isdigit((unsigned char)s[8]))
		s++;
	return s;
}

/* The library joins the causes of several failed tokens into one line, "...: token N (URI):
 * cause; token M (URI): cause": where that list starts, or NULL when MSG has none. */
static const char *token_list(const char *msg)
{
	const char *next = next_token(msg), *p;

	for (p = msg; next && (p = strstr(p, ": token ")) && p < next; p++)
		if (isdigit((unsigned char)p[8]))
			return p + 2;
	return NULL;
}

/* MSG on stderr, a list of token causes one line per token (a boot console wraps one long
 * line into an unreadable block). */
static void print_message(const char *msg)
{
	const char *list = token_list(msg), *next;

	if (!list) {
		fprintf(stderr, "%s\n", msg);
		return;
	}
	fprintf(stderr, "%.*s\n", (int)(list - msg - 1), msg);
	for (; list; list = next ? next + 2 : NULL) {
		next = next_token(list);
		fprintf(stderr, "  %.*s\n", next ? (int)(next - list) : (int)strlen(list), list);
	}
}

static void verror(struct cli *cli, const char *fmt, va_list ap)
{
	char msg[sizeof(cli->last_error)];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* Warnings are not why the verb failed. */
	if (strncmp(msg, "warning: ", 9))
		memcpy(cli->last_error, msg, sizeof(msg));
	/* Before the verb is known (options in front of it), the tool's name alone. */
	fprintf(stderr, cli->verb ? "kekcrypt %s: " : "kekcrypt: ", cli->verb);
	print_message(msg);
}

void cli_error(struct cli *cli, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verror(cli, fmt, ap);
	va_end(ap);
}

bool cli_rekey_state(struct cli *cli, const char *device, struct kc_rekey_state *r_st)
{
	*r_st = KC_SIZED(struct kc_rekey_state);
	return kc_rekey_state(cli->ctx, device, r_st) > 0;
}

int cli_fail_device(struct cli *cli, const char *device, int r)
{
	struct kc_rekey_state st;
	char detail[1024];

	if (!cli->ctx)
		return cli_fail(cli, r);
	/* Asking for the state clears the detail: copied first. */
	snprintf(detail, sizeof(detail), "%s", kc_error_detail(cli->ctx));
	if (!cli_rekey_state(cli, device, &st)) {
		cli_error(cli, "%s", detail[0] ? detail : kc_strerror(r));
		return cli_exit_code(r);
	}
	cli_error(cli, "device '%s': %s: run '%s %s' (%s)", device, st.summary, st.resume,
		  device, detail[0] ? detail : kc_strerror(r));
	/* An old key that no longer matches is the rekey's doing, not a wrong key. */
	return r == -EBADMSG ? EXIT_BUSY : cli_exit_code(r);
}

json_object *cli_rekey_json(const struct kc_rekey_state *st)
{
	json_object *o = json_object_new_object(), *toks = json_object_new_array(),
		    *slots = json_object_new_array();

	json_object_object_add(o, "phase", json_object_new_string(st->phase));
	json_object_object_add(o, "done_bytes", json_object_new_int64((int64_t)st->done_bytes));
	json_object_object_add(o, "total_bytes", json_object_new_int64((int64_t)st->total_bytes));
	json_object_object_add(o, "resilience", json_object_new_string(st->resilience));
	for (int i = 0; i < 32; i++) {
		if (st->new_tokens & (1u << i))
			json_object_array_add(toks, json_object_new_int(i));
		if (st->new_keyslots & (1u << i))
			json_object_array_add(slots, json_object_new_int(i));
	}
	json_object_object_add(o, "new_tokens", toks);
	json_object_object_add(o, "new_keyslots", slots);
	json_object_object_add(o, "bridge_keyslot", st->bridge_keyslot < 0 ? NULL :
			       json_object_new_int(st->bridge_keyslot));
	json_object_object_add(o, "reencrypt_keyslot", st->reencrypt_keyslot < 0 ? NULL :
			       json_object_new_int(st->reencrypt_keyslot));
	json_object_object_add(o, "summary", json_object_new_string(st->summary));
	json_object_object_add(o, "resume", json_object_new_string(st->resume));
	return o;
}

void cli_rekey_text(const char *device, const struct kc_rekey_state *st)
{
	printf("Rekey:       %s: run '%s %s'\n", st->summary, st->resume, device);
	printf("  phase:       %s", st->phase);
	if (st->total_bytes)
		printf(", %llu of %llu bytes under the new key",
		       (unsigned long long)st->done_bytes, (unsigned long long)st->total_bytes);
	if (st->resilience[0])
		printf(", resilience %s", st->resilience);
	printf("\n  new tokens: ");
	for (int i = 0; i < 32; i++)
		if (st->new_tokens & (1u << i))
			printf(" %d", i);
	printf("\n  new keyslots:");
	for (int i = 0; i < 32; i++)
		if (st->new_keyslots & (1u << i))
			printf(" %d", i);
	printf("\n");
	if (st->bridge_keyslot >= 0)
		printf("  bridge keyslot: %d (the old key, for libcryptsetup's resume)\n",
		       st->bridge_keyslot);
	if (st->reencrypt_keyslot >= 0)
		printf("  reencrypt keyslot: %d (libcryptsetup's re-encryption state)\n",
		       st->reencrypt_keyslot);
}

int cli_usage_error(struct cli *cli, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verror(cli, fmt, ap);
	va_end(ap);
	fprintf(stderr, "Try 'kekcrypt %s%s--help'.\n", cli->verb ?: "", cli->verb ? " " : "");
	return EXIT_USAGE;
}

/* The library's INFO messages (repairs, warnings such as a token skipped by local policy)
 * always; its DEBUG messages with --debug. */
static void log_stderr(int level, const char *msg, void *usrptr)
{
	if (level <= KC_LOG_INFO)
		fprintf(stderr, "kekcrypt: %s\n", msg);
	else
		fprintf(stderr, "# %s\n", msg);
}

static void cryptsetup_quiet(int level, const char *msg, void *usrptr)
{
}

/* What libcryptsetup says before a device handle exists (crypt_init() failing): with
 * --debug, into the debug output; otherwise nothing (the library's error detail says it). */
static void cryptsetup_default_log(int level, const char *msg, void *usrptr)
{
	size_t n = strlen(msg);

	fprintf(stderr, "# libcryptsetup: %.*s\n", (int)(n && msg[n - 1] == '\n' ? n - 1 : n),
		msg);
}

/* A context without configuration yet, and --config made absolute: 0, or an exit code. */
static int ctx_new(struct cli *cli)
{
	int r;

	r = kc_new(&cli->ctx);
	if (r < 0) {
		cli_error(cli, "%s", kc_strerror(r));
		return cli_exit_code(r);
	}
	r = kc_set_header(cli->ctx, cli->header);
	if (r < 0) {
		cli_error(cli, "--header: %s", kc_error_detail(cli->ctx)[0] ?
			  kc_error_detail(cli->ctx) : kc_strerror(r));
		return r == -EINVAL ? EXIT_USAGE : cli_exit_code(r);
	}
	cli->header_seen = cli->header && stat(cli->header, &cli->header_st) == 0;
	/* The library takes absolute paths only (what it checks is what it reads). */
	if (cli->config && cli->config[0] != '/') {
		char cwd[PATH_MAX];

		if (!getcwd(cwd, sizeof(cwd)) ||
		    snprintf(cli->config_abs, sizeof(cli->config_abs), "%s/%s", cwd, cli->config) >=
		    (int)sizeof(cli->config_abs))
			return cli_usage_error(cli, "--config '%s': path too long", cli->config);
		cli->config = cli->config_abs;
	}
	return 0;
}

/* Logging, deadline, libcryptsetup's settings: once the configuration is loaded. */
static void ctx_setup(struct cli *cli)
{
	bool debug = cli->debug || secure_getenv("KC_DEBUG");

	if (cli->verbose || debug)
		cli_error(cli, "configuration %s%s; deadline %d s", cli->config ?: CLI_CONFIG_PATH,
			  cli->config || !access(CLI_CONFIG_PATH, F_OK) ? "" : " (absent)",
			  cli->timeout ?: 30);
	cli->last_error[0] = '\0';	/* that line is no error */
	kc_set_timeout(cli->ctx, (unsigned)cli->timeout * 1000);
	kc_set_log(cli->ctx, log_stderr, debug ? KC_LOG_DEBUG : KC_LOG_INFO, NULL);
	/* libcryptsetup's process-wide settings are ours to make, not the library's. */
	crypt_set_debug_level(debug ? CRYPT_DEBUG_ALL : CRYPT_DEBUG_NONE);
	crypt_set_log_callback(NULL, debug || cli->verbose ? cryptsetup_default_log :
			       cryptsetup_quiet, NULL);
}

int cli_ctx(struct cli *cli)
{
	int ex, r;

	ex = ctx_new(cli);
	if (ex)
		return ex;
	r = kc_config_load(cli->ctx, cli->config);
	if (r < 0)
		return cli_config_fail(cli, r);
	ctx_setup(cli);
	return 0;
}

int cli_ctx_checked(struct cli *cli, kc_config_fn fn, void *usrptr, int *r_problems)
{
	int ex, r;

	ex = ctx_new(cli);
	if (ex)
		return ex;
	r = kc_config_load(cli->ctx, cli->config);
	if (r < 0) {
		fn(CLI_CONFIG_UNLOADABLE, kc_error_detail(cli->ctx), usrptr);
		return r == -EINVAL ? EXIT_CONFIG : cli_exit_code(r);
	}
	ctx_setup(cli);
	r = kc_config_check(cli->ctx, fn, usrptr);
	if (r < 0)
		return cli_fail(cli, r);
	*r_problems = r;
	return 0;
}

bool cli_confirm(struct cli *cli, const char *what)
{
	char answer[16];

	if (cli->batch || !isatty(STDIN_FILENO))
		return true;
	fprintf(stderr, "\nWARNING!\n========\n%s\n\nAre you sure? (Type 'yes' in capital "
		"letters): ", what);
	fflush(stderr);
	if (!fgets(answer, sizeof(answer), stdin))
		return false;
	return !strcmp(answer, "YES\n");
}

/* The option getopt just refused: the short option OPT, or the long one it read last. */
static const char *refused_opt(const struct cli *cli, int opt)
{
	static char buf[64];
	const char *arg = cli->argv && optind > 0 ? cli->argv[optind - 1] : "";

	if (!strncmp(arg, "--", 2))
		snprintf(buf, sizeof(buf), "%.*s", (int)strcspn(arg, "="), arg);
	else if (opt > 0 && opt < 0x80)
		snprintf(buf, sizeof(buf), "-%c", opt);
	else
		snprintf(buf, sizeof(buf), "?");
	return buf;
}

int cli_header_refuse(struct cli *cli, const struct verb *v)
{
	cli_error(cli, "--header: '%s' does not support a detached LUKS2 header", v->name);
	return EXIT_HEADER_UNSUPPORTED;
}

int cli_common_opt(struct cli *cli, int c, const struct verb *v, int *r_exit)
{
	switch (c) {
	case 'h':
		cli_help(v);
		*r_exit = EXIT_OK;
		return 2;
	case 'q':
		cli->batch = true;
		return 1;
	case 'v':
		cli->verbose = true;
		return 1;
	case 0x100:
		cli->config = optarg;
		return 1;
	case 0x101:
		cli->debug = true;
		return 1;
	case 0x102:
		cli->json = true;
		return 1;
	case 0x105:
		cli->header = optarg;
		/* Before the verb (V unnamed) main() checks it once the verb is known. */
		if (v->name[0] && !v->header) {
			*r_exit = cli_header_refuse(cli, v);
			return 2;
		}
		return 1;
	case 't':
		cli->timeout = cli_parse_int(optarg, 86400);
		if (cli->timeout <= 0) {
			*r_exit = cli_usage_error(cli, "invalid --timeout '%s' (seconds)", optarg);
			return 2;
		}
		return 1;
	case ':':
		*r_exit = cli_usage_error(cli, "option '%s' needs an argument",
					  refused_opt(cli, optopt));
		return 2;
	case '?':
		*r_exit = cli_usage_error(cli, "unknown option '%s'%s", refused_opt(cli, optopt),
					  optopt == 'T' ? " (the timeout is -t, --timeout)" : "");
		return 2;
	}
	return 0;
}

int cli_parse_common_only(struct cli *cli, int argc, char **argv, const struct verb *v)
{
	static const struct option opts[] = { COMMON_LONGOPTS, {} };
	int c, ex = -1;

	optind = 0;
	while ((c = getopt_long(argc, argv, COMMON_SHORTOPTS, opts, NULL)) != -1)
		if (cli_common_opt(cli, c, v, &ex) != 1)
			return ex >= 0 ? ex : cli_usage_error(cli, "unexpected option");
	return -1;
}

int cli_write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int cli_parse_int(const char *s, int max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 0 || v > max)
		return -1;
	return (int)v;
}

/* The kekcrypt tokens of DEVICE whose KEK is URI: how many, and the last one's id. */
static int tokens_of_kek(struct cli *cli, const char *device, const char *uri, int *r_id,
			 char *ids, size_t size)
{
	struct kc_volume_info *info = NULL;
	int r, n = 0;

	r = kc_volume_info_get(cli->ctx, device, &info);
	if (r < 0)
		return r;
	for (size_t i = 0; i < kc_volume_info_n_tokens(info); i++) {
		const struct kc_token_info *t = kc_volume_info_token(info, i);

		if (strcmp(t->kek_uri, uri))
			continue;
		snprintf(ids + strlen(ids), size - strlen(ids), "%s%d", n ? ", " : "", t->id);
		*r_id = t->id;
		n++;
	}
	kc_volume_info_free(info);
	return n;
}

int cli_token_id(struct cli *cli, const char *device, const char *arg, int *r_id)
{
	struct kc_rekey_state st;
	char ids[128] = "";
	int id = -1, n;

	if (!arg || (id = cli_parse_int(arg, 31)) >= 0) {
		*r_id = arg ? id : -1;
		return -1;
	}
	if (!strchr(arg, ':'))
		return cli_usage_error(cli, "invalid --token '%s': expected a token ID (0-31) or "
				       "a KEK URI", arg);
	n = tokens_of_kek(cli, device, arg, &id, ids, sizeof(ids));
	if (n < 0)
		return cli_fail(cli, n);
	/* A rekey's new tokens share the old ones' KEKs: say what is going on instead. */
	if (n > 1 && cli_rekey_state(cli, device, &st)) {
		cli_error(cli, "device '%s': %s: run '%s %s'", device, st.summary, st.resume,
			  device);
		return EXIT_BUSY;
	}
	if (n > 1)
		return cli_usage_error(cli, "--token '%s': tokens %s of '%s' use this KEK; name "
				       "one by its ID", arg, ids, device);
	if (!n) {
		cli_error(cli, "device '%s' has no kekcrypt token for the KEK '%s'", device, arg);
		return EXIT_NOENT;
	}
	*r_id = id;
	return -1;
}

json_object *cli_json_new(const struct cli *cli, const char *name)
{
	json_object *o = json_object_new_object();
	char id[64];

	snprintf(id, sizeof(id), "kekcrypt.%s/1", name ?: cli->verb ?: "");
	for (char *c = id; *c; c++)
		if (*c == ' ')
			*c = '-';
	json_object_object_add(o, "schema", json_object_new_string(id));
	return o;
}

void cli_json_uuid(struct cli *cli, json_object *obj, const char *device)
{
	struct kc_volume_info *info = NULL;

	if (kc_volume_info_get(cli->ctx, device, &info) < 0) {
		json_object_object_add(obj, "uuid", NULL);
		return;
	}
	json_object_object_add(obj, "uuid", json_object_new_string(kc_volume_info_uuid(info)));
	kc_volume_info_free(info);
}

void cli_print_device_int(struct cli *cli, const char *name, const char *device,
			  const char *key, int value)
{
	json_object *o = cli_json_new(cli, name);

	json_object_object_add(o, "device", json_object_new_string(device));
	cli_json_uuid(cli, o, device);
	json_object_object_add(o, key, json_object_new_int(value));
	cli_print_json(cli, o);
}

void cli_print_json(struct cli *cli, json_object *obj)
{
	puts(json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PRETTY |
						 JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(obj);
	cli->json_done = true;
}

/* What each exit code means, as the man page's EXIT STATUS says it (shortened). */
static const char *const exit_meanings[] = {
	[EXIT_OK] = "success",
	[EXIT_INTERNAL] = "internal error",
	[EXIT_USAGE] = "usage error",
	[EXIT_NOENT] = "no usable token, provider, key, object or file",
	[EXIT_UNREACHABLE] = "the KMS or HSM is unreachable",
	[EXIT_REFUSED] = "the KMS or HSM refused the operation",
	[EXIT_CRED_REQUIRED] = "a credential or PIN is required",
	[EXIT_CRED_REJECTED] = "the credential or PIN was rejected",
	[EXIT_WRONG_KEY] = "wrong key",
	[EXIT_MALFORMED] = "malformed token, URI, configuration or KEK file",
	[EXIT_NOT_LUKS] = "not a LUKS2 device, or its header is corrupt",
	[EXIT_EXISTS] = "the device holds data or the name exists",
	[EXIT_BUSY] = "busy",
	[EXIT_READONLY] = "the device is read-only",
	[EXIT_ACCESS] = "refused by local policy or permissions",
	[EXIT_UNSUPPORTED_URI] = "unsupported KEK URI scheme",
	[EXIT_TIMEOUT] = "the deadline passed",
	[EXIT_CANCELLED] = "cancelled by the user",
	[EXIT_NOMEM] = "out of memory",
	[EXIT_NO_DM] = "the system lacks device-mapper or a library",
	[EXIT_NOSPACE] = "no room in the LUKS2 header",
	[EXIT_TLS] = "TLS failure talking to the KMS",
	[EXIT_BAD_RESPONSE] = "malformed answer from the KMS",
	[EXIT_OTHER_VOLUME] = "the header backup belongs to another volume",
	[EXIT_DOCTOR] = "a volume would not unlock at boot, or a secret is exposed",
	[EXIT_CONFIG] = "the configuration file does not parse",
	[EXIT_DEGRADED] = "degraded: some tokens do not unlock",
	[EXIT_LUKS1] = "a LUKS1 volume: convert it to LUKS2 first",
	[EXIT_HEADER_UNSUPPORTED] = "the verb does not support a detached header (--header)",
	[EXIT_MOUNT] = "the BEK volume could not be mounted",
};

int cli_finish(struct cli *cli, int ex)
{
	json_object *o, *e;
	const char *meaning = ex >= 0 && ex < (int)(sizeof(exit_meanings) /
						     sizeof(exit_meanings[0])) ?
		exit_meanings[ex] : NULL;

	if (!cli->json || ex == EXIT_OK || cli->json_done)
		return ex;
	o = cli_json_new(cli, "error");
	e = json_object_new_object();
	json_object_object_add(e, "verb", cli->verb ? json_object_new_string(cli->verb) : NULL);
	json_object_object_add(e, "message", json_object_new_string(
		cli->last_error[0] ? cli->last_error : meaning ?: "error"));
	json_object_object_add(e, "exit_code", json_object_new_int(ex));
	json_object_object_add(e, "meaning", json_object_new_string(meaning ?: "error"));
	json_object_object_add(o, "error", e);
	cli_print_json(cli, o);
	return ex;
}

void cli_help(const struct verb *v)
{
	printf("Usage: kekcrypt %s\n%s%s", v->usage, COMMON_USAGE,
	       v->header ? DETACHED_HEADER_USAGE : "");
}

json_object *cli_kek_warnings(struct cli *cli, const char *const *uris, size_t n)
{
	json_object *arr = json_object_new_array();

	for (size_t i = 0; i < n; i++) {
		struct kc_kek_safety ks = KC_SIZED(struct kc_kek_safety);
		int r = kc_kek_check(cli->ctx, uris[i], &ks);

		if (r < 0) {
			/* The KMS has just wrapped: not being able to ask it is worth saying. */
			snprintf(ks.warnings[0].kind, sizeof(ks.warnings[0].kind), "unchecked");
			snprintf(ks.warnings[0].message, sizeof(ks.warnings[0].message),
				 "KEK '%s': could not ask the KMS about the key: %s", uris[i],
				 kc_error_detail(cli->ctx)[0] ? kc_error_detail(cli->ctx) :
				 kc_strerror(r));
			ks.n_warnings = 1;
		}
		for (unsigned k = 0; k < ks.n_warnings; k++) {
			json_object *o = json_object_new_object();

			cli_error(cli, "warning: %s", ks.warnings[k].message);
			json_object_object_add(o, "kek", json_object_new_string(uris[i]));
			json_object_object_add(o, "kind",
					       json_object_new_string(ks.warnings[k].kind));
			json_object_object_add(o, "message",
					       json_object_new_string(ks.warnings[k].message));
			json_object_array_add(arr, o);
		}
	}
	return arr;
}

static bool same_time(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

bool cli_header_changed(const char *header, const struct stat *before)
{
	struct stat st;

	return stat(header, &st) == 0 && !(same_time(&st.st_mtim, &before->st_mtim) &&
					   same_time(&st.st_ctim, &before->st_ctim) &&
					   st.st_ino == before->st_ino);
}

bool cli_header_in_initramfs(const struct crypttab_entry *e, const char *header)
{
	char want[PATH_MAX], path[PATH_MAX], buf[PATH_MAX], ks[PATH_MAX];
	const char *h = crypttab_value(e, "header", buf, sizeof(buf));

	return h && realpath(h, path) && realpath(header, want) && !strcmp(path, want) &&
	       (crypttab_our_keyscript(e, ks, sizeof(ks)) || crypttab_in_initrd(e) ||
		crypttab_has(e, "initramfs"));
}

void cli_header_note_entry(const char *header, const char *name)
{
	fprintf(stderr, "kekcrypt: note: %s changed, and the initramfs holds a copy of it "
		"(crypttab: %s), which the next boot reads: build the initramfs again "
		"(update-initramfs -u, or dracut -f) before rebooting ('kekcrypt doctor' checks "
		"it)\n", header, name);
}

void cli_header_note(const struct cli *cli)
{
	struct crypttab tab = { 0 };

	if (!cli->header_seen || !cli_header_changed(cli->header, &cli->header_st) ||
	    crypttab_read(CRYPTTAB_PATH, &tab) < 0)
		return;
	for (size_t i = 0; i < tab.n; i++) {
		if (cli_header_in_initramfs(&tab.entries[i], cli->header)) {
			cli_header_note_entry(cli->header, tab.entries[i].name);
			break;
		}
	}
	crypttab_clear(&tab);
}
