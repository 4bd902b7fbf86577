/* SPDX-License-Identifier: GPL-2.0-or-later */
/* kekcrypt: the command line tool. Parses arguments and hands each verb to the library. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct verb *const verbs[] = {
	&verb_format, &verb_open, &verb_close, &verb_status, &verb_verify, &verb_dump,
	&verb_kek, &verb_recovery, &verb_header, &verb_rekey, &verb_encrypt, &verb_repair,
	&verb_keyscript_passphrase, &verb_keyscript_normalise, &verb_boot_needs, &verb_doctor,
	&verb_config, &verb_firstboot, &verb_template, &verb_adopt, NULL,
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: kekcrypt [--version] [--help] [OPTIONS] VERB [OPTIONS] ARGS\n\n"
		"LUKS2 disk encryption whose volume key is wrapped by a KEK in a KMS or HSM.\n\n"
		"Verbs:\n");
	for (size_t i = 0; verbs[i]; i++)
		fprintf(f, "  %-8s %s\n", verbs[i]->name, verbs[i]->summary);
	fprintf(f, "\nKEK URIs:\n");
	for (size_t i = 0; kc_provider_name(i); i++)
		fprintf(f, "  %s\n      %s\n", kc_provider_syntax(i), kc_provider_summary(i));
	fprintf(f, "%s%s", COMMON_USAGE, DETACHED_HEADER_USAGE);
	fprintf(f, "\n'kekcrypt VERB --help' describes a verb; kekcrypt(8) the configuration and "
		"exit codes.\n");
}

/* The common options given before the verb: the index of the verb in ARGV (argc: none), or
 * -1 to exit with *R_EXIT (--help, --version, a usage error). */
static int parse_leading(struct cli *cli, int argc, char **argv, int *r_exit)
{
	static const struct option opts[] = {
		COMMON_LONGOPTS, { "version", no_argument, NULL, 'V' }, {}
	};
	static const struct verb tool = { .name = "" };
	int c;

	/* '+': stop at the first argument that is not an option, the verb. */
	optind = 0;
	cli->argv = argv;
	while ((c = getopt_long(argc, argv, "+" COMMON_SHORTOPTS "V", opts, NULL)) != -1) {
		if (c == 'h' || c == 'V') {
			if (c == 'h')
				usage(stdout);
			else
				printf("kekcrypt %s\n", kc_version());
			*r_exit = EXIT_OK;
			return -1;
		}
		if (cli_common_opt(cli, c, &tool, r_exit) != 1)
			return -1;
	}
	return optind;
}

int main(int argc, char **argv)
{
	struct cli cli = { 0 };
	int i, r;

	/* First thing, before OpenSSL allocates anything and before any key exists. When
	 * OpenSSL has allocated already (-EALREADY), carry on without wiping its heap. */
	r = kc_process_harden(KC_HARDEN_OPENSSL_MEM | KC_HARDEN_NO_CORE);
	if (r < 0 && r != -EALREADY)
		fprintf(stderr, "kekcrypt: warning: cannot disable core dumps: %s\n",
			strerror(-r));
	i = parse_leading(&cli, argc, argv, &r);
	if (i < 0)
		return cli_finish(&cli, r);
	if (i >= argc) {
		usage(stderr);
		return cli_finish(&cli, EXIT_USAGE);
	}
	if (!strcmp(argv[i], "help")) {
		usage(stdout);
		return EXIT_OK;
	}
	for (size_t v = 0; verbs[v]; v++) {
		if (strcmp(argv[i], verbs[v]->name))
			continue;
		cli.verb = verbs[v]->name;
		cli.argv = argv + i;
		if (cli.header && !verbs[v]->header)
			return cli_finish(&cli, cli_header_refuse(&cli, verbs[v]));
		r = verbs[v]->run(&cli, argc - i, argv + i);
		cli_header_note(&cli);
		kc_free(cli.ctx);
		return cli_finish(&cli, r);
	}
	return cli_finish(&cli, cli_usage_error(&cli, "unknown verb '%s'", argv[i]));
}
