/* SPDX-License-Identifier: GPL-2.0-or-later */
/* keyscript-passphrase: the keyslot passphrase on a pipe, for crypttab keyscripts;
 * keyscript-normalise: the text typed at the keyscript's prompt, a recovery key normalised. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cli.h"
#include "crypttab.h"

/* The options, over what --crypttab-key says, over the defaults (one attempt, each token). */
struct keyscript_opts {
	int token;		/* -1: each in order */
	const char *token_arg;	/* --token: an ID or a KEK URI, resolved on the device */
	int retry_until;	/* seconds; -1: not given */
	const char *crypttab_key;
};

static void keyscript_settings(struct keyscript_opts *o)
{
	struct crypttab_keyscript ks;
	char bad[160];

	if (!o->crypttab_key)
		return;
	/* A bad setting is named but does not stop the boot: the rest applies. */
	if (crypttab_keyscript_key(o->crypttab_key, &ks, bad, sizeof(bad)) < 0)
		fprintf(stderr, "kekcrypt keyscript-passphrase: warning: the crypttab key field: "
			"%s\n", bad);
	if (!o->token_arg)
		o->token = ks.token;
	if (o->retry_until < 0)
		o->retry_until = (int)ks.timeout_s;
}

static int parse_keyscript_opts(struct cli *cli, int argc, char **argv,
				struct keyscript_opts *o, int *r_exit)
{
	static const struct option opts[] = {
		COMMON_LONGOPTS, TOKEN_LONGOPT,
		{ "retry-until", required_argument, NULL, 0x200 },
		{ "crypttab-key", required_argument, NULL, 0x201 }, { 0 },
	};
	int c, common;

	*o = (struct keyscript_opts){ .token = -1, .retry_until = -1 };
	optind = 0;
	while ((c = getopt_long(argc, argv, COMMON_SHORTOPTS, opts, NULL)) != -1) {
		if ((common = cli_common_opt(cli, c, &verb_keyscript_passphrase, r_exit)) == 2)
			return -1;
		if (common)
			continue;
		if (c == OPT_TOKEN)
			o->token_arg = optarg;
		else if (c == 0x200 && (o->retry_until = cli_parse_int(optarg, 86400)) < 0)
			*r_exit = cli_usage_error(cli, "invalid --retry-until '%s' (seconds, at "
						  "most 86400)", optarg);
		else if (c == 0x201)
			o->crypttab_key = optarg;
		else
			continue;
		if (*r_exit != EXIT_OK)
			return -1;
	}
	if (optind + 1 != argc) {
		*r_exit = cli_usage_error(cli, "expected one DEVICE");
		return -1;
	}
	keyscript_settings(o);
	return 0;
}

static int run_keyscript_passphrase(struct cli *cli, int argc, char **argv)
{
	struct kc_unlock_result res = KC_SIZED(struct kc_unlock_result);
	struct keyscript_opts o;
	char *pass = NULL;
	size_t len = 0;
	int ex = EXIT_OK, r;

	if (parse_keyscript_opts(cli, argc, argv, &o, &ex) < 0)
		return ex;
	/* The passphrase is binary and secret: never onto a screen. */
	if (isatty(STDOUT_FILENO))
		return cli_usage_error(cli, "standard output is a terminal; this verb writes the "
				       "keyslot passphrase for a crypttab keyscript to a pipe");
	if ((ex = cli_ctx(cli)))
		return ex;
	if (o.token_arg && (ex = cli_token_id(cli, argv[optind], o.token_arg, &o.token)) >= 0)
		return ex;
	if (o.retry_until >= 0)
		kc_set_retry(cli->ctx, (unsigned)o.retry_until);
	r = kc_keyslot_passphrase(cli->ctx, argv[optind], o.token, &pass, &len, &res);
	if (r < 0)
		return cli_fail_device(cli, argv[optind], r);
	r = cli_write_all(STDOUT_FILENO, pass, len);
	kc_token_passphrase_free(pass, len);
	if (r < 0) {
		fprintf(stderr, "kekcrypt keyscript-passphrase: cannot write to standard output: "
			"%s\n", strerror(-r));
		return EXIT_INTERNAL;
	}
	/* With --retry-until the library has said it, with the attempts and the time. */
	if (o.retry_until < 0)
		fprintf(stderr, "%s: unlocked with token %d (%s)\n", argv[optind], res.token_id,
			res.kek_uri);
	return EXIT_OK;
}

const struct verb verb_keyscript_passphrase = {
	.name = "keyscript-passphrase",
	.run = run_keyscript_passphrase,
	.header = true,
	.summary = "write the keyslot passphrase to a pipe (for crypttab keyscripts)",
	.usage = "keyscript-passphrase DEVICE [--token ID|URI] [--retry-until SEC]\n"
		 "                     [--crypttab-key FIELD]\n\n"
		 "Unwrap the data key through the kekcrypt tokens in order (each attempt within\n"
		 "--timeout) and write the passphrase of the keyslot bound to the token that\n"
		 "worked to standard output, which must not be a terminal: what cryptsetup reads\n"
		 "from a crypttab keyscript (/usr/lib/kekcrypt/kekcrypt-keyscript, see\n"
		 "kekcrypt(8), BOOT). The token used is reported on standard error.\n\n"
		 "      --token ID|URI     try only this token (its ID, or its KEK's URI)\n"
		 "      --retry-until SEC  retry what time may cure (KMS unreachable, timed out,\n"
		 "                         TLS, a bad answer) with backoff for up to SEC seconds\n"
		 "                         (default: one attempt); each retry is reported\n"
		 "      --crypttab-key FIELD\n"
		 "                         the keyscript's crypttab key field (timeout=SPAN,\n"
		 "                         token=N, or none): --retry-until defaults to its\n"
		 "                         timeout (60 s unless it says), --token to its token\n",
};

/* ---------------------------------------------------------------------------------------- */
/* boot-needs: what an initramfs needs, for the initramfs-tools hook and the dracut module.  */

static const char *const boot_kinds[] = {
	[KC_BOOT_SECRET] = "secret", [KC_BOOT_FILE] = "file", [KC_BOOT_LIBRARY] = "lib",
	[KC_BOOT_NETWORK] = "network", [KC_BOOT_MISSING] = "missing",
	[KC_BOOT_UNLISTED] = "unlisted", [KC_BOOT_UNUSABLE] = "unusable",
	[KC_BOOT_UNREADABLE] = "unreadable",
};

struct boot_out {
	struct cli *cli;
	json_object *needs;
	/* the crypttab source of each device asked about, for the lines that name one */
	const char *const *devices, *const *sources;
	size_t n;
};

/* One field of a line: no tab, newline or other control character can split it. */
static void put_field(const char *s)
{
	for (; s && *s; s++)
		putchar((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
}

static int boot_need(int kind, const char *path, const char *what, void *usrptr)
{
	struct boot_out *o = usrptr;
	const char *name = kind >= 0 && kind < (int)(sizeof(boot_kinds) / sizeof(boot_kinds[0])) ? boot_kinds[kind] :
			   "unknown";

	/* Lines about a volume name it as crypttab does. */
	for (size_t i = 0; path && i < o->n; i++)
		if (!strcmp(path, o->devices[i]) && kind >= KC_BOOT_UNLISTED)
			path = o->sources[i];
	if (o->cli->json) {
		json_object *n = json_object_new_object();

		json_object_object_add(n, "kind", json_object_new_string(name));
		json_object_object_add(n, "path", path ? json_object_new_string(path) : NULL);
		json_object_object_add(n, "what", json_object_new_string(what));
		json_object_array_add(o->needs, n);
		return 0;
	}
	printf("%s\t", name);
	put_field(path ?: "-");
	putchar('\t');
	put_field(what);
	putchar('\n');
	return 0;
}

/* The crypttab entries kekcrypt unlocks in an initramfs of KIND: "keyscript"
 * (initramfs-tools: keyscript=.../kekcrypt-keyscript) or "initrd" (dracut and
 * systemd-cryptsetup: x-initrd.attach or force). */
static bool boot_entry_wanted(const struct crypttab_entry *e, const char *kind)
{
	char buf[PATH_MAX];

	if (!strcmp(kind, "keyscript"))
		return crypttab_our_keyscript(e, buf, sizeof(buf)) != NULL;
	return crypttab_in_initrd(e);
}

static int run_boot_needs(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		COMMON_LONGOPTS,
		{ "for", required_argument, NULL, 0x200 },
		{ "crypttab", required_argument, NULL, 0x201 },
		{ "tokens", no_argument, NULL, 0x202 },
		{ 0 },
	};
	const char *kind = NULL, *tabfile = NULL;
	bool tokens = false;
	struct crypttab tab = { 0 };
	const char **devices = NULL, **sources = NULL, **headers = NULL;
	char (*paths)[PATH_MAX] = NULL, (*hpaths)[PATH_MAX] = NULL;
	json_object *entries = NULL;
	struct boot_out out = { .cli = cli };
	size_t n = 0;
	int c, o, ex, r;

	optind = 0;
	while ((c = getopt_long(argc, argv, COMMON_SHORTOPTS, opts, NULL)) != -1) {
		if ((o = cli_common_opt(cli, c, &verb_boot_needs, &ex)) == 2)
			return ex;
		if (o)
			continue;
		if (c == 0x200)
			kind = optarg;
		else if (c == 0x201)
			tabfile = optarg;
		else if (c == 0x202)
			tokens = true;
	}
	if (kind && strcmp(kind, "keyscript") && strcmp(kind, "initrd"))
		return cli_usage_error(cli, "--for takes keyscript or initrd, not '%s'", kind);
	if (!kind == (optind == argc))
		return cli_usage_error(cli, "expected --for keyscript|initrd, or DEVICEs");
	if (kind && tokens)
		return cli_usage_error(cli, "--tokens takes DEVICEs, not --for");
	if (kind && cli->header)
		return cli_usage_error(cli, "--header and --for exclude each other: crypttab's "
				       "header= option names a volume's detached header");
	if ((ex = cli_ctx(cli)))
		return ex;
	if (kind) {
		r = crypttab_read(tabfile, &tab);
		if (r < 0) {
			cli_error(cli, "cannot read %s: %s", tabfile ?: CRYPTTAB_PATH,
				  strerror(-r));
			return EXIT_NOENT;
		}
	}
	n = kind ? tab.n : (size_t)(argc - optind);
	devices = calloc(n + 1, sizeof(*devices));
	sources = calloc(n + 1, sizeof(*sources));
	paths = calloc(n + 1, sizeof(*paths));
	headers = calloc(n + 1, sizeof(*headers));
	hpaths = calloc(n + 1, sizeof(*hpaths));
	entries = json_object_new_array();
	if (!devices || !sources || !paths || !headers || !hpaths || !entries) {
		ex = EXIT_NOMEM;
		goto out;
	}
	out.n = 0;
	for (size_t i = 0; i < n; i++) {
		const char *src = kind ? tab.entries[i].source : argv[optind + i];

		if (kind && !boot_entry_wanted(&tab.entries[i], kind))
			continue;
		crypttab_source_path(src, paths[out.n], sizeof(paths[0]));
		devices[out.n] = paths[out.n];
		sources[out.n] = src;
		/* Without --for, --header (the context's) is every DEVICE's. */
		headers[out.n] = kind ? crypttab_value(&tab.entries[i], "header", hpaths[out.n],
						       sizeof(hpaths[0])) : cli->header;
		if (kind && cli->json) {
			json_object *e = json_object_new_object();

			json_object_object_add(e, "name",
					       json_object_new_string(tab.entries[i].name));
			json_object_object_add(e, "source", json_object_new_string(src));
			json_object_object_add(e, "line",
					       json_object_new_string(tab.entries[i].line));
			json_object_array_add(entries, e);
		} else if (kind) {
			printf("entry\t");
			put_field(tab.entries[i].name);
			putchar('\t');
			put_field(tab.entries[i].line);
			putchar('\n');
		}
		out.n++;
	}
	out.devices = devices;
	out.sources = sources;
	out.needs = json_object_new_array();
	ex = EXIT_OK;
	/* No volume of that kind: nothing is needed at all. */
	if (out.n && !tokens) {
		r = kc_boot_needs_headers(cli->ctx, devices, headers, out.n, boot_need, &out);
		if (r < 0)
			ex = cli_fail(cli, r);
	}
	for (size_t i = 0; tokens && ex == EXIT_OK && i < out.n; i++) {
		r = kc_boot_needs_tokens(cli->ctx, devices[i], boot_need, &out);
		if (r < 0)
			ex = cli_fail(cli, r);
	}
	if (ex == EXIT_OK && cli->json) {
		json_object *j = cli_json_new(cli, "boot-needs");

		json_object_object_add(j, "entries", json_object_get(entries));
		json_object_object_add(j, "needs", json_object_get(out.needs));
		cli_print_json(cli, j);
	}
	json_object_put(out.needs);
out:
	json_object_put(entries);
	free(devices);
	free(sources);
	free(paths);
	free(headers);
	free(hpaths);
	crypttab_clear(&tab);
	return ex;
}

const struct verb verb_boot_needs = {
	.name = "boot-needs",
	.run = run_boot_needs,
	.header = true,
	.summary = "what an initramfs needs to unlock the volumes (for the hooks)",
	.usage = "boot-needs --for keyscript|initrd [--crypttab FILE] [--json]\n"
		 "       kekcrypt boot-needs [--tokens] [--header FILE] DEVICE... [--json]\n\n"
		 "What the initramfs-tools hook (--for keyscript: the crypttab entries with\n"
		 "keyscript=.../kekcrypt-keyscript) or the dracut module (--for initrd: those with\n"
		 "x-initrd.attach or force) must put into an initramfs to unlock the volumes: one\n"
		 "line per need, tab-separated KIND, PATH (or the volume's crypttab source, or -)\n"
		 "and why; first an 'entry' line (NAME, the crypttab line) per volume. KIND:\n"
		 "  secret     a file that holds a secret (the image must be readable by root only)\n"
		 "  file       a file without secrets (CA bundle, certificate)\n"
		 "  lib        a shared object, to copy with its libraries\n"
		 "  network    the network must come up\n"
		 "  missing    a file the configuration names is not there (fail the build)\n"
		 "  unlisted   a token names a file the configuration does not name: not copied\n"
		 "  unusable   no token of the volume can unlock it with what is copied (fail)\n"
		 "  unreadable the device cannot be read now; the configuration alone was used\n"
		 "A volume's detached header (crypttab header=, or --header) is a 'file'.\n"
		 "Only files the configuration names are listed: the header is untrusted.\n\n"
		 "      --for KIND       keyscript or initrd\n"
		 "      --crypttab FILE  instead of /etc/crypttab\n"
		 "      --tokens         what the DEVICEs' own tokens need, without the\n"
		 "                       configuration's list (the keyscript: is the network needed?)\n",
};

/* What a console prompt may give: cryptsetup reads at most 512 bytes of an interactive
 * passphrase; more is passed on unchanged, in pieces. */
#define TYPED_MAX 4096

/* Read FD into BUF until end of file or BUF is full. */
static ssize_t read_full(int fd, char *buf, size_t size)
{
	size_t n = 0;

	while (n < size) {
		ssize_t k = read(fd, buf + n, size - n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			break;
		n += (size_t)k;
	}
	return (ssize_t)n;
}

/* Standard input to standard output; a recovery key in its printed form, all else unchanged. */
static int normalise_stream(char *buf, size_t size)
{
	char *key = NULL;
	ssize_t n = read_full(STDIN_FILENO, buf, size);
	int r;

	if (n < 0)
		return (int)n;
	if ((size_t)n < size && kc_recovery_key_normalise(buf, (size_t)n, &key) == 0) {
		r = cli_write_all(STDOUT_FILENO, key, strlen(key));
		kc_recovery_key_free(key);
		return r;
	}
	for (r = 0; r >= 0 && n > 0; n = read_full(STDIN_FILENO, buf, size))
		r = cli_write_all(STDOUT_FILENO, buf, (size_t)n);
	return r < 0 ? r : n < 0 ? (int)n : 0;
}

static int run_keyscript_normalise(struct cli *cli, int argc, char **argv)
{
	static char buf[TYPED_MAX];
	int ex, r;

	ex = cli_parse_common_only(cli, argc, argv, &verb_keyscript_normalise);
	if (ex >= 0)
		return ex;
	if (optind != argc)
		return cli_usage_error(cli, "no argument expected: the text comes on standard input");
	if (isatty(STDOUT_FILENO))
		return cli_usage_error(cli, "standard output is a terminal; this verb writes a "
				       "passphrase for a crypttab keyscript to a pipe");
	/* Best effort: keep what was typed out of swap. */
	(void)mlock(buf, sizeof(buf));
	r = normalise_stream(buf, sizeof(buf));
	explicit_bzero(buf, sizeof(buf));
	if (r < 0) {
		fprintf(stderr, "kekcrypt keyscript-normalise: %s\n", strerror(-r));
		return EXIT_INTERNAL;
	}
	return EXIT_OK;
}

const struct verb verb_keyscript_normalise = {
	.name = "keyscript-normalise",
	.run = run_keyscript_normalise,
	.summary = "pass a typed passphrase on, a recovery key in its printed form",
	.usage = "keyscript-normalise\n\n"
		 "Copy standard input (what a crypttab keyscript's console prompt read) to standard\n"
		 "output, which must not be a terminal. When it is a kekcrypt recovery key, in any\n"
		 "case, with or without the dashes or blanks between groups, what is written is its\n"
		 "printed form (lower case, with the dashes), which its keyslot accepts; anything\n"
		 "else (a passphrase) is written unchanged. For the initramfs-tools keyscript\n"
		 "(kekcrypt(8), BOOT).\n",
};
