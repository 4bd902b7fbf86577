/* SPDX-License-Identifier: GPL-2.0-or-later */
/* recovery add / remove / verify, header backup / restore. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"

#define RECOVERY_USAGE                                                                       \
	"recovery add DEVICE [--key-file FILE|-] [--recovery-key] [--json]\n"               \
	"       kekcrypt recovery remove DEVICE [--token ID] [--force]\n"                    \
	"       kekcrypt recovery verify DEVICE [--key-file FILE|-]\n\n"                     \
	"add     unwrap the data key through a kekcrypt token and add a recovery key: 256\n" \
	"        random bits in 8 groups of 8 characters, printed once on stdout, stored in\n" \
	"        four PBKDF2 passphrase keyslots (as printed, without dashes, in upper case\n" \
	"        with and without dashes). It opens the volume without the KMS (kekcrypt\n"  \
	"        open --recovery, or cryptsetup's or systemd's passphrase prompt). On a\n"   \
	"        volume without a kekcrypt token (made by cryptsetup, clevis...), or with\n"  \
	"        --key-file or --recovery-key, an existing passphrase authorises it instead\n"\
	"remove  remove the recovery key --token ID, or without --token every recovery\n"  \
	"        key (asked on a terminal; without one, only with -q); refuses the last\n" \
	"        way to unlock unless --force\n"                                           \
	"verify  check a recovery key (asked on the terminal without echo) without\n"        \
	"        mapping anything\n\n"                                                       \
	"      --token ID       the recovery token to remove (default: all, see above)\n"   \
	"  -f, --force          allow removing the last unlock path\n"                      \
	"      --key-file FILE  verify: read the recovery key from FILE; add: an existing\n"\
	"                       passphrase or key file (all of FILE; '-': standard input)\n"\
	"                       instead of a kekcrypt token\n"                               \
	"      --recovery-key   add: that secret (or the one asked) is a recovery key\n"

#define HEADER_USAGE                                                                         \
	"header backup DEVICE FILE\n"                                                        \
	"       kekcrypt header restore DEVICE FILE [--force]\n\n"                           \
	"backup   save the LUKS2 header (with the wrapped keys and keyslots) to the new\n"   \
	"         file FILE, mode 0600; an existing FILE is never overwritten\n"             \
	"restore  write the header saved in FILE back to DEVICE, after confirmation on a\n"  \
	"         terminal (-q: none); refused when the backup is of another volume (LUKS\n" \
	"         UUID), or when DEVICE holds no readable LUKS2 header, unless --force\n\n"  \
	"  -f, --force  restore even when the UUIDs differ or cannot be compared\n"

static int run_recovery(struct cli *cli, int argc, char **argv);
static int run_header(struct cli *cli, int argc, char **argv);

const struct verb verb_recovery = {
	.name = "recovery",
	.run = run_recovery,
	.header = true,
	.summary = "add, remove or check a one-time printed recovery key",
	.usage = RECOVERY_USAGE,
};

const struct verb verb_header = {
	.name = "header",
	.run = run_header,
	.header = true,
	.summary = "back up or restore the LUKS2 header",
	.usage = HEADER_USAGE,
};

int cli_recovery_opt(struct cli *cli, int c, struct kc_recovery_params *p)
{
	int v;

	if (c != OPT_PBKDF_MEMORY && c != OPT_ITER_TIME && c != OPT_PBKDF_ITERATIONS)
		return 0;
	v = cli_parse_int(optarg, 1 << 30);
	if (v <= 0)
		return -cli_usage_error(cli, "invalid value '%s'", optarg);
	if (c == OPT_PBKDF_MEMORY)
		p->max_memory_kb = (uint32_t)v;
	else if (c == OPT_ITER_TIME)
		p->iter_time_ms = (uint32_t)v;
	else
		p->iterations = (uint32_t)v;
	return 1;
}

int cli_recovery_add(struct cli *cli, const char *device, const struct kc_recovery_params *p,
		     const struct cli_auth *auth)
{
	struct kc_enrol_result res = { .size = sizeof(res), .auth_keyslot = -1 };
	char *key = NULL;
	int r, slot = -1;

	if (auth && auth->secret) {
		r = kc_recovery_enrol(cli->ctx, device, p, auth->secret, auth->len,
				      auth->recovery_key ? KC_ENROL_RECOVERY_KEY : 0, &key, &res);
		slot = res.keyslot;
	} else {
		r = kc_recovery_add(cli->ctx, device, p, &key, &slot);
	}
	if (r < 0)
		return cli_fail(cli, r);
	if (cli->json) {
		json_object *o = cli_json_new(cli, "recovery-add");

		json_object_object_add(o, "device", json_object_new_string(device));
		cli_json_uuid(cli, o, device);
		json_object_object_add(o, "keyslot", json_object_new_int(slot));
		json_object_object_add(o, "authorised_by",
				       json_object_new_string(cli_auth_kind(auth)));
		if (res.auth_keyslot >= 0)
			json_object_object_add(o, "auth_keyslot",
					       json_object_new_int(res.auth_keyslot));
		/* The only copy the user will ever get; json-c's buffer is freed (not wiped)
		 * right after printing. */
		json_object_object_add(o, "recovery_key", json_object_new_string(key));
		cli_print_json(cli, o);
	} else {
		fprintf(stderr, "%s: recovery key added in keyslot %d (and three more for the "
			"other typed forms). Write it down and keep it safe: it opens the volume "
			"without the KMS, and it is shown only now.\n", device, slot);
		printf("%s\n", key);
	}
	fflush(stdout);
	kc_recovery_key_free(key);
	return EXIT_OK;
}

/* Read one line without echo from the terminal. */
static int read_tty(const char *prompt, char *buf, size_t size, size_t *r_len)
{
	struct termios old, noecho;
	FILE *tty = fopen("/dev/tty", "r+e");
	int r = 0;

	if (!tty)
		return -ENOTTY;
	setvbuf(tty, NULL, _IONBF, 0);
	if (tcgetattr(fileno(tty), &old) < 0) {
		fclose(tty);
		return -ENOTTY;
	}
	noecho = old;
	noecho.c_lflag &= ~(tcflag_t)ECHO;
	/* Echo off before the prompt shows: nothing typed after it is ever echoed. */
	tcsetattr(fileno(tty), TCSAFLUSH, &noecho);
	fputs(prompt, tty);
	if (!fgets(buf, (int)size, tty))
		r = -ECANCELED;
	tcsetattr(fileno(tty), TCSAFLUSH, &old);
	fputs("\n", tty);
	fclose(tty);
	*r_len = r < 0 ? 0 : strlen(buf);
	return r;
}

static int read_fd(int fd, char *buf, size_t size, size_t *r_len)
{
	size_t n = 0;
	ssize_t k;

	while (n < size - 1 && (k = read(fd, buf + n, size - 1 - n)) != 0) {
		if (k < 0)
			return -errno;
		n += (size_t)k;
	}
	buf[n] = '\0';
	*r_len = n;
	return 0;
}

/* cryptsetup's default limit on a key file's size. */
#define KEY_FILE_MAX (8u << 20)
/* What a terminal prompt reads at most (cryptsetup: 512 characters). */
#define PROMPT_MAX 4096

int cli_auth_opt(int c, struct cli_auth *a)
{
	if (c == OPT_KEY_FILE)
		a->key_file = optarg;
	else if (c == OPT_RECOVERY_KEY)
		a->recovery_key = true;
	else
		return 0;
	return 1;
}

const char *cli_auth_kind(const struct cli_auth *a)
{
	if (!a || !a->used)
		return "token";
	return a->recovery_key ? "recovery-key" : "passphrase";
}

void cli_auth_clear(struct cli_auth *a)
{
	if (a->secret) {
		explicit_bzero(a->secret, a->len);
		munmap(a->secret, a->cap);
	}
	a->secret = NULL;
	a->len = a->cap = 0;
}

/* A->secret: anonymous memory kept out of swap and core dumps, and wiped when released. */
static int auth_map(struct cli_auth *a)
{
	a->cap = KEY_FILE_MAX + 2;
	a->secret = mmap(NULL, a->cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			 0);
	if (a->secret == MAP_FAILED) {
		a->secret = NULL;
		return -ENOMEM;
	}
	(void)madvise(a->secret, a->cap, MADV_DONTDUMP);
	/* Best effort, the part a passphrase uses at least. */
	if (mlock(a->secret, a->cap) < 0)
		(void)mlock(a->secret, PROMPT_MAX);
	return 0;
}

/* The secret from the terminal (its newline stripped, as cryptsetup does), a key file or
 * standard input (all of it, as is, as cryptsetup's --key-file). */
static int auth_input(struct cli *cli, const char *device, struct cli_auth *a)
{
	char prompt[4200];
	int fd = STDIN_FILENO, r;

	if (!a->key_file && isatty(STDIN_FILENO)) {
		snprintf(prompt, sizeof(prompt), a->recovery_key ? "Recovery key for %s: " :
			 "Enter an existing passphrase for %s: ", device);
		r = read_tty(prompt, a->secret, PROMPT_MAX, &a->len);
		if (r >= 0 && a->len && a->secret[a->len - 1] == '\n')
			a->secret[--a->len] = '\0';
		return r;
	}
	if (a->key_file && strcmp(a->key_file, "-")) {
		fd = open(a->key_file, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
	}
	r = read_fd(fd, a->secret, a->cap, &a->len);
	if (fd != STDIN_FILENO)
		close(fd);
	return r >= 0 && a->len > KEY_FILE_MAX ? -EFBIG : r;
}

int cli_auth_read_fd(struct cli_auth *a, int fd, size_t max)
{
	int r;

	cli_auth_clear(a);
	r = auth_map(a);
	if (r >= 0)
		r = read_fd(fd, a->secret, max + 2 < a->cap ? max + 2 : a->cap, &a->len);
	if (r >= 0 && a->len > max)
		r = -EFBIG;
	if (r < 0)
		cli_auth_clear(a);
	else
		a->used = true;
	return r;
}

static bool has_kekcrypt_token(struct cli *cli, const char *device, int *r_ex)
{
	struct kc_volume_info *info = NULL;
	bool has;
	int r;

	r = kc_volume_info_get(cli->ctx, device, &info);
	if (r < 0) {
		*r_ex = cli_fail(cli, r);
		return false;
	}
	has = kc_volume_info_n_tokens(info) > 0;
	kc_volume_info_free(info);
	return has;
}

int cli_auth_read(struct cli *cli, const char *device, bool need, struct cli_auth *a)
{
	int ex = -1, r;

	if (!need && !a->key_file && !a->recovery_key &&
	    (has_kekcrypt_token(cli, device, &ex) || ex >= 0))
		return ex;
	/* A recovery key's blanks and newlines do not matter: stdin will do without a
	 * terminal, as for recovery verify. A passphrase's do. */
	if (!a->key_file && !a->recovery_key && !isatty(STDIN_FILENO)) {
		cli_error(cli, "device '%s': an existing passphrase is needed (%s) and there is no "
			  "terminal to ask for it: give --key-file FILE ('-': standard input, "
			  "read whole), or --recovery-key", device, need ? "--wipe-passphrase" :
			  "it has no kekcrypt token");
		return EXIT_CRED_REQUIRED;
	}
	if (auth_map(a) < 0) {
		cli_error(cli, "out of memory");
		return EXIT_NOMEM;
	}
	r = auth_input(cli, device, a);
	if (r == -ECANCELED || (r >= 0 && !a->len)) {
		cli_error(cli, "device '%s': no %s read (empty input)", device,
			  a->recovery_key ? "recovery key" : "passphrase");
		cli_auth_clear(a);
		return r == -ECANCELED ? EXIT_CANCELLED : EXIT_CRED_REQUIRED;
	}
	if (r == -EFBIG)
		cli_error(cli, "key file '%s': larger than %u bytes", a->key_file ?: "-",
			  KEY_FILE_MAX);
	else if (r < 0)
		cli_error(cli, "cannot read the key file '%s': %s", a->key_file ?: "-",
			  strerror(-r));
	if (r < 0) {
		cli_auth_clear(a);
		return r == -ENOENT ? EXIT_NOENT : EXIT_USAGE;
	}
	a->used = true;
	return -1;
}

int cli_read_recovery_key(struct cli *cli, const char *device, const char *key_file, char *buf,
			  size_t size, size_t *r_len)
{
	char prompt[4200];
	int fd, r;

	/* Best effort: keep the key out of swap. */
	(void)mlock(buf, size);
	if (key_file && strcmp(key_file, "-")) {
		fd = open(key_file, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			cli_error(cli, "key file '%s': %s", key_file, strerror(errno));
			return EXIT_NOENT;
		}
		r = read_fd(fd, buf, size, r_len);
		close(fd);
	} else if (!key_file && isatty(STDIN_FILENO)) {
		snprintf(prompt, sizeof(prompt), "Recovery key for %s: ", device);
		r = read_tty(prompt, buf, size, r_len);
	} else {
		r = read_fd(STDIN_FILENO, buf, size, r_len);
	}
	if (r == -ECANCELED) {
		cli_error(cli, "no recovery key entered");
		return EXIT_CANCELLED;
	}
	if (r < 0) {
		cli_error(cli, "cannot read the recovery key: %s", strerror(-r));
		return EXIT_USAGE;
	}
	return -1;
}

struct life_args {
	const char *sub;
	const char *device;
	const char *file;
	const char *key_file;
	int token;
	bool force;
	bool recovery_key;	/* recovery add --recovery-key */
	struct kc_recovery_params params;
};

static int life_parse(struct cli *cli, const struct verb *v, int argc, char **argv,
		      struct life_args *a, int nargs)
{
	static const struct option opts[] = {
		COMMON_LONGOPTS,
		TOKEN_LONGOPT,
		{ "force", no_argument, NULL, 'f' },
		{ "key-file", required_argument, NULL, 0x200 },
		{ "recovery-key", no_argument, NULL, OPT_RECOVERY_KEY },
		RECOVERY_PBKDF_LONGOPTS,
		{}
	};
	int o, c, ex = -1;

	optind = 0;
	while ((c = getopt_long(argc, argv, COMMON_SHORTOPTS "f", opts, NULL)) != -1) {
		if ((o = cli_common_opt(cli, c, v, &ex)) == 2)
			return ex;
		if (o)
			continue;
		if ((o = cli_recovery_opt(cli, c, &a->params)) < 0)
			return -o;
		if (o)
			continue;
		if (c == 'f')
			a->force = true;
		else if (c == 0x200)
			a->key_file = optarg;
		else if (c == OPT_RECOVERY_KEY)
			a->recovery_key = true;
		else if (c == OPT_TOKEN && (a->token = cli_parse_int(optarg, 31)) < 0)
			return cli_usage_error(cli, "invalid --token '%s'", optarg);
	}
	if (optind + nargs != argc)
		return cli_usage_error(cli, nargs == 3 ?
				       "expected '%s backup|restore DEVICE FILE'" :
				       "expected '%s add|remove|verify DEVICE'", v->name);
	a->sub = argv[optind];
	a->device = argv[optind + 1];
	a->file = nargs == 3 ? argv[optind + 2] : NULL;
	return -1;
}

/* Without --token every recovery key goes: asked on a terminal, and refused without one
 * unless -q, so that a script which forgot --token does not remove them all. */
static int recovery_remove_all_ok(struct cli *cli, const struct life_args *a)
{
	char what[4200];

	if (a->token >= 0 || cli->batch)
		return -1;
	if (!isatty(STDIN_FILENO))
		return cli_usage_error(cli, "without --token, this removes every recovery key of "
				       "%s; give --token ID, or -q (--batch-mode) to remove them "
				       "all without a terminal", a->device);
	snprintf(what, sizeof(what), "This removes every recovery key of %s.", a->device);
	if (!cli_confirm(cli, what))
		return EXIT_CANCELLED;
	return -1;
}

static int recovery_remove(struct cli *cli, const struct life_args *a)
{
	int ex, r;

	ex = recovery_remove_all_ok(cli, a);
	if (ex >= 0)
		return ex;
	if (a->force && !cli_confirm(cli, "Removing the recovery key may leave the volume with "
				     "no way to unlock it."))
		return EXIT_CANCELLED;
	r = kc_recovery_remove(cli->ctx, a->device, a->token, a->force);
	if (r < 0)
		return cli_fail(cli, r);
	if (cli->json)
		cli_print_device_int(cli, "recovery-remove", a->device, "removed", r);
	else
		printf("%s: removed %d recovery key%s\n", a->device, r, r == 1 ? "" : "s");
	return EXIT_OK;
}

static int recovery_verify(struct cli *cli, const struct life_args *a)
{
	static char key[512];
	size_t len = 0;
	int ex, r, slot = -1;

	ex = cli_read_recovery_key(cli, a->device, a->key_file, key, sizeof(key), &len);
	if (ex < 0) {
		r = kc_recovery_open(cli->ctx, a->device, NULL, key, len, 0, &slot);
		ex = r < 0 ? cli_fail_device(cli, a->device, r) : EXIT_OK;
	}
	explicit_bzero(key, sizeof(key));
	if (ex != EXIT_OK)
		return ex;
	if (cli->json)
		cli_print_device_int(cli, "recovery-verify", a->device, "keyslot", slot);
	else
		printf("%s: recovery key accepted by keyslot %d\n", a->device, slot);
	return EXIT_OK;
}

static int recovery_add(struct cli *cli, const struct life_args *a)
{
	struct cli_auth auth = { .key_file = a->key_file, .recovery_key = a->recovery_key };
	int ex;

	ex = cli_auth_read(cli, a->device, false, &auth);
	if (ex >= 0)
		return ex;
	ex = cli_recovery_add(cli, a->device, &a->params, &auth);
	cli_auth_clear(&auth);
	return ex;
}

static int run_recovery(struct cli *cli, int argc, char **argv)
{
	struct life_args a = { .token = -1, .params = KC_SIZED(struct kc_recovery_params) };
	int ex;

	ex = life_parse(cli, &verb_recovery, argc, argv, &a, 2);
	if (ex >= 0)
		return ex;
	if (!strcmp(a.sub, "add"))
		cli->verb = "recovery add";
	else if (!strcmp(a.sub, "remove"))
		cli->verb = "recovery remove";
	else if (!strcmp(a.sub, "verify"))
		cli->verb = "recovery verify";
	else
		return cli_usage_error(cli, "unknown 'recovery %s'; expected add, remove or verify",
				       a.sub);
	if (a.recovery_key && strcmp(a.sub, "add"))
		return cli_usage_error(cli, "--recovery-key is for 'recovery add'");
	if ((ex = cli_ctx(cli)))
		return ex;
	if (!strcmp(a.sub, "add"))
		return recovery_add(cli, &a);
	if (!strcmp(a.sub, "remove"))
		return recovery_remove(cli, &a);
	return recovery_verify(cli, &a);
}

static int header_backup(struct cli *cli, const struct life_args *a)
{
	int r;

	r = kc_header_backup(cli->ctx, a->device, a->file);
	if (r < 0)
		return cli_fail(cli, r);
	if (cli->json) {
		json_object *o = cli_json_new(cli, "header-backup");

		json_object_object_add(o, "device", json_object_new_string(a->device));
		cli_json_uuid(cli, o, a->device);
		json_object_object_add(o, "file", json_object_new_string(a->file));
		cli_print_json(cli, o);
	} else {
		printf("%s: header saved to %s (it holds the wrapped keys: keep it as safe as the "
		       "disk)\n", a->device, a->file);
	}
	return EXIT_OK;
}

static int header_restore(struct cli *cli, const struct life_args *a)
{
	char what[8400];
	int r;

	snprintf(what, sizeof(what), "This replaces the LUKS2 header of %s with the one saved "
		 "in %s: tokens, keyslots and recovery keys added since the backup are lost.",
		 a->device, a->file);
	if (!cli_confirm(cli, what)) {
		cli_error(cli, "cancelled, nothing written.");
		return EXIT_CANCELLED;
	}
	r = kc_header_restore(cli->ctx, a->device, a->file, a->force);
	if (r < 0)
		return cli_fail(cli, r);
	if (!cli->json)
		printf("%s: header restored from %s\n", a->device, a->file);
	return EXIT_OK;
}

static int run_header(struct cli *cli, int argc, char **argv)
{
	struct life_args a = { .token = -1, .params = KC_SIZED(struct kc_recovery_params) };
	int ex;

	ex = life_parse(cli, &verb_header, argc, argv, &a, 3);
	if (ex >= 0)
		return ex;
	if (!strcmp(a.sub, "backup"))
		cli->verb = "header backup";
	else if (!strcmp(a.sub, "restore"))
		cli->verb = "header restore";
	else
		return cli_usage_error(cli, "unknown 'header %s'; expected backup or restore",
				       a.sub);
	if ((ex = cli_ctx(cli)))
		return ex;
	return !strcmp(a.sub, "backup") ? header_backup(cli, &a) : header_restore(cli, &a);
}

/* ---------------------------------------------------------------------------------------- */
/* What dump shows of recovery keys and interrupted rotations.                              */

void cli_lifecycle_before(struct cli *cli, const char *device, struct cli_lifecycle *lc)
{
	memset(lc, 0, sizeof(*lc));
	CLI_SIZED_ARRAY(lc->before);
	CLI_SIZED_ARRAY(lc->after);
	CLI_SIZED_ARRAY(lc->rec);
	lc->n_before = kc_kek_rotation_pending(cli->ctx, device, lc->before, LC_MAX_PENDING);
	if (lc->n_before < 0)
		lc->n_before = 0;
}

void cli_lifecycle_after(struct cli *cli, const char *device, struct cli_lifecycle *lc)
{
	lc->n_after = kc_kek_rotation_pending(cli->ctx, device, lc->after, LC_MAX_PENDING);
	lc->n_rec = kc_recovery_list(cli->ctx, device, lc->rec, LC_MAX_RECOVERY);
	lc->n_after = lc->n_after < 0 ? 0 : lc->n_after > LC_MAX_PENDING ? LC_MAX_PENDING :
		      lc->n_after;
	lc->n_rec = lc->n_rec < 0 ? 0 : lc->n_rec > LC_MAX_RECOVERY ? LC_MAX_RECOVERY : lc->n_rec;
	lc->n_before = lc->n_before > LC_MAX_PENDING ? LC_MAX_PENDING : lc->n_before;
}

/* What became of an interrupted rotation seen before loading the volume. */
static const char *rotation_outcome(const struct cli_lifecycle *lc,
				    const struct kc_rotation_pending *p)
{
	for (int i = 0; i < lc->n_after; i++)
		if (lc->after[i].token_id == p->token_id)
			return "pending";
	return p->verified ? "completed" : "rolled back";
}

/* Rotations still pending, and those this command just resolved. */
static void for_each_rotation(const struct cli_lifecycle *lc,
			      void (*fn)(const struct kc_rotation_pending *p, const char *outcome,
					 void *data), void *data)
{
	for (int i = 0; i < lc->n_before; i++)
		fn(&lc->before[i], rotation_outcome(lc, &lc->before[i]), data);
	for (int i = 0; i < lc->n_after; i++) {
		bool seen = false;

		for (int j = 0; j < lc->n_before && !seen; j++)
			seen = lc->before[j].token_id == lc->after[i].token_id;
		if (!seen)
			fn(&lc->after[i], "pending", data);
	}
}

static void rotation_text(const struct kc_rotation_pending *p, const char *outcome, void *data)
{
	(void)data;
	printf("  token %d replacing token %d, new token %s: %s\n", p->token_id,
	       p->from_token_id, p->verified ? "verified" : "not verified",
	       !strcmp(outcome, "pending") ? (p->verified ?
		"pending (the next writable kekcrypt command completes it)" :
		"pending (the next writable kekcrypt command rolls it back)") :
	       !strcmp(outcome, "completed") ? "interrupted; completed now" :
	       "interrupted; rolled back now");
}

void cli_lifecycle_text(const struct cli_lifecycle *lc)
{
	printf("Recovery keys:\n");
	if (!lc->n_rec)
		printf("  (none)\n");
	for (int i = 0; i < lc->n_rec; i++) {
		printf("  %d: keyslot%s", lc->rec[i].token_id,
		       lc->rec[i].keyslot_mask & (lc->rec[i].keyslot_mask - 1) ? "s" : "");
		for (int s = 0, n = 0; s < 32; s++)
			if (lc->rec[i].keyslot_mask & (1u << s))
				printf("%s%d", n++ ? "," : " ", s);
		if (!lc->rec[i].keyslot_mask)
			printf(" (none)");
		printf(", created %s\n", lc->rec[i].created[0] ? lc->rec[i].created : "?");
	}
	if (lc->n_before || lc->n_after) {
		printf("KEK rotations:\n");
		for_each_rotation(lc, rotation_text, NULL);
	}
}

static void rotation_json(const struct kc_rotation_pending *p, const char *outcome, void *data)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "token", json_object_new_int(p->token_id));
	json_object_object_add(o, "from_token", json_object_new_int(p->from_token_id));
	json_object_object_add(o, "verified", json_object_new_boolean(p->verified));
	json_object_object_add(o, "state", json_object_new_string(outcome));
	json_object_array_add(data, o);
}

void cli_lifecycle_json(json_object *obj, const struct cli_lifecycle *lc)
{
	json_object *rec = json_object_new_array(), *rot = json_object_new_array();

	for (int i = 0; i < lc->n_rec; i++) {
		json_object *o = json_object_new_object(), *slots = json_object_new_array();

		for (int s = 0; s < 32; s++)
			if (lc->rec[i].keyslot_mask & (1u << s))
				json_object_array_add(slots, json_object_new_int(s));
		json_object_object_add(o, "token", json_object_new_int(lc->rec[i].token_id));
		json_object_object_add(o, "keyslot", json_object_new_int(lc->rec[i].keyslot));
		json_object_object_add(o, "keyslots", slots);
		json_object_object_add(o, "created", json_object_new_string(lc->rec[i].created));
		json_object_array_add(rec, o);
	}
	for_each_rotation(lc, rotation_json, rot);
	json_object_object_add(obj, "recovery_keys", rec);
	json_object_object_add(obj, "rotations", rot);
}

/* ---------------------------------------------------------------------------------------- */
/* repair                                                                                   */

static int run_repair(struct cli *cli, int argc, char **argv)
{
	struct cli_lifecycle lc;
	const char *device;
	json_object *o;
	int ex, r;

	ex = cli_parse_common_only(cli, argc, argv, &verb_repair);
	if (ex >= 0)
		return ex;
	if (optind + 1 != argc)
		return cli_usage_error(cli, "expected one DEVICE");
	device = argv[optind];
	if ((ex = cli_ctx(cli)))
		return ex;
	cli_lifecycle_before(cli, device, &lc);
	r = kc_repair(cli->ctx, device);
	if (r < 0)
		return cli_fail(cli, r);
	cli_lifecycle_after(cli, device, &lc);
	if (cli->json) {
		o = cli_json_new(cli, "repair");
		json_object_object_add(o, "device", json_object_new_string(device));
		cli_json_uuid(cli, o, device);
		json_object_object_add(o, "repaired", json_object_new_int(r));
		cli_lifecycle_json(o, &lc);
		cli_print_json(cli, o);
	} else if (!r) {
		printf("%s: nothing to repair\n", device);
	} else {
		printf("%s: %d interrupted KEK rotation(s) finished or undone\n", device, r);
		cli_lifecycle_text(&lc);
	}
	return EXIT_OK;
}

const struct verb verb_repair = {
	.name = "repair",
	.run = run_repair,
	.header = true,
	.summary = "finish or undo what an interrupted KEK rotation left in the header",
	.usage = "repair DEVICE [--json]\n\n"
		 "Under the device's lock, complete an interrupted KEK rotation whose new token\n"
		 "was verified, or roll it back (`dump` shows them as pending). Every command\n"
		 "that writes the header does this first; commands that only read never write.\n"
		 "An interrupted rekey is finished by 'kekcrypt rekey --resume' instead.\n",
};
