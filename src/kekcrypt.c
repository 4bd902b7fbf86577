/* SPDX-License-Identifier: GPL-2.0-or-later */
/* kekcrypt: the command line tool. Parses arguments and hands each verb to the library. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct verb *const verbs[] = {
	&verb_format, &verb_open, &verb_close, &verb_status, &verb_verify, &verb_dump,
	&verb_kek, &verb_recovery, &verb_header, &verb_rekey, &verb_repair,
	&verb_keyscript_passphrase, &verb_boot_needs, &verb_doctor, NULL,
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: kekcrypt [--version] [--help] VERB [OPTIONS] ARGS\n\n"
		"LUKS2 disk encryption whose volume key is wrapped by a KEK in a KMS or HSM.\n\n"
		"Verbs:\n");
	for (size_t i = 0; verbs[i]; i++)
		fprintf(f, "  %-8s %s\n", verbs[i]->name, verbs[i]->summary);
	fprintf(f, "\nKEK URIs:\n");
	for (size_t i = 0; kc_provider_name(i); i++)
		fprintf(f, "  %s\n      %s\n", kc_provider_syntax(i), kc_provider_summary(i));
	fprintf(f, "\n'kekcrypt VERB --help' describes a verb; kekcrypt(8) the configuration and "
		"exit codes.\n");
}

int main(int argc, char **argv)
{
	struct cli cli = { 0 };
	int r;

	/* First thing, before OpenSSL allocates anything and before any key exists. When
	 * OpenSSL has allocated already (-EALREADY), carry on without wiping its heap. */
	r = kc_process_harden(KC_HARDEN_OPENSSL_MEM | KC_HARDEN_NO_CORE);
	if (r < 0 && r != -EALREADY)
		fprintf(stderr, "kekcrypt: warning: cannot disable core dumps: %s\n",
			strerror(-r));
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("kekcrypt %s\n", kc_version());
		return EXIT_OK;
	}
	for (size_t i = 0; verbs[i]; i++) {
		if (strcmp(argv[1], verbs[i]->name))
			continue;
		cli.verb = verbs[i]->name;
		r = verbs[i]->run(&cli, argc - 1, argv + 1);
		kc_free(cli.ctx);
		return r;
	}
	fprintf(stderr, "kekcrypt: unknown verb '%s'\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
