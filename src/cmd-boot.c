/* SPDX-License-Identifier: GPL-2.0-or-later */
/* keyscript-passphrase: the keyslot passphrase on a pipe, for crypttab keyscripts. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* Write all of BUF to FD (a pipe to cryptsetup); -errno on failure. */
static int write_all(int fd, const char *buf, size_t len)
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

static int run_keyscript_passphrase(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		COMMON_LONGOPTS, { "token", required_argument, NULL, 't' }, { 0 },
	};
	struct kc_unlock_result res = { 0 };
	char *pass = NULL;
	size_t len = 0;
	int c, o, ex, r, token = -1;

	while ((c = getopt_long(argc, argv, COMMON_SHORTOPTS "t:", opts, NULL)) != -1) {
		if ((o = cli_common_opt(cli, c, &verb_keyscript_passphrase, &ex)) == 2)
			return ex;
		if (o)
			continue;
		if (c == 't' && (token = cli_parse_int(optarg, 31)) < 0)
			return cli_usage_error(cli, "invalid --token '%s'", optarg);
	}
	if (optind + 1 != argc)
		return cli_usage_error(cli, "expected one DEVICE");
	/* The passphrase is binary and secret: never onto a screen. */
	if (isatty(STDOUT_FILENO))
		return cli_usage_error(cli, "standard output is a terminal; this verb writes the "
				       "keyslot passphrase for a crypttab keyscript to a pipe");
	if ((ex = cli_ctx(cli)))
		return ex;
	r = kc_keyslot_passphrase(cli->ctx, argv[optind], token, &pass, &len, &res);
	if (r < 0)
		return cli_fail(cli, r);
	r = write_all(STDOUT_FILENO, pass, len);
	kc_token_passphrase_free(pass, len);
	if (r < 0) {
		fprintf(stderr, "kekcrypt keyscript-passphrase: cannot write to standard output: "
			"%s\n", strerror(-r));
		return EXIT_INTERNAL;
	}
	fprintf(stderr, "%s: unlocked with token %d (%s)\n", argv[optind], res.token_id,
		res.kek_uri);
	return EXIT_OK;
}

const struct verb verb_keyscript_passphrase = {
	.name = "keyscript-passphrase",
	.run = run_keyscript_passphrase,
	.summary = "write the keyslot passphrase to a pipe (for crypttab keyscripts)",
	.usage = "keyscript-passphrase DEVICE [--token ID]\n\n"
		 "Unwrap the data key through the kekcrypt tokens in order (within --timeout)\n"
		 "and write the passphrase of the keyslot bound to the token that worked to\n"
		 "standard output, which must not be a terminal: what cryptsetup reads from a\n"
		 "crypttab keyscript (/usr/lib/kekcrypt/kekcrypt-keyscript, see kekcrypt(8),\n"
		 "BOOT). The token used is reported on standard error.\n\n"
		 "  -t, --token ID  try only this token\n",
};
