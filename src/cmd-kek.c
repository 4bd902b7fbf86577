/* SPDX-License-Identifier: GPL-2.0-or-later */
/* kek add / remove / list. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

#define KEK_USAGE                                                                            \
	"kek add DEVICE --kek URI\n"                                                         \
	"       kekcrypt kek remove DEVICE --token ID [--force]\n"                          \
	"       kekcrypt kek list DEVICE [--json]\n\n"                                       \
	"add     unwrap the data key through an existing token and store it wrapped by\n"    \
	"        another KEK, in a new token (e.g. a second KMS or an HSM elsewhere)\n"       \
	"remove  remove a token and its keyslot; refuses the last way to unlock unless\n"     \
	"        --force\n"                                                                  \
	"list    list the kekcrypt tokens\n\n"                                               \
	"  -k, --kek URI    the KEK to add\n"                                                \
	"  -t, --token ID   the token to remove\n"                                           \
	"  -f, --force      allow removing the last unlock path\n"

static int kek_run(struct cli *cli, int argc, char **argv);

const struct verb verb_kek = {
	.name = "kek",
	.run = kek_run,
	.summary = "add, remove or list the KEKs (tokens) of a volume",
	.usage = KEK_USAGE,
};

struct kek_args {
	const char *sub;
	const char *device;
	const char *uri;
	int token;
	bool force;
};

static int kek_parse(struct cli *cli, int argc, char **argv, struct kek_args *a)
{
	static const struct option opts[] = {
		COMMON_LONGOPTS,
		{ "kek", required_argument, NULL, 'k' },
		{ "token", required_argument, NULL, 't' },
		{ "force", no_argument, NULL, 'f' },
		{}
	};
	int o, c, ex = -1;

	optind = 0;
	while ((c = getopt_long(argc, argv, COMMON_SHORTOPTS "k:t:f", opts, NULL)) != -1) {
		if ((o = cli_common_opt(cli, c, &verb_kek, &ex)) == 2)
			return ex;
		if (o)
			continue;
		if (c == 'k')
			a->uri = optarg;
		else if (c == 'f')
			a->force = true;
		else if (c == 't' && (a->token = cli_parse_int(optarg, 31)) < 0)
			return cli_usage_error(cli, "invalid --token '%s'", optarg);
	}
	if (optind + 2 != argc)
		return cli_usage_error(cli, "expected 'kek add|remove|list DEVICE'");
	a->sub = argv[optind];
	a->device = argv[optind + 1];
	return -1;
}

static int kek_add(struct cli *cli, const struct kek_args *a)
{
	int ex, r;

	if (!a->uri)
		return cli_usage_error(cli, "kek add needs --kek URI");
	if ((ex = cli_ctx(cli)))
		return ex;
	r = kc_kek_add(cli->ctx, a->device, a->uri);
	if (r < 0)
		return cli_fail(cli, r);
	if (cli->json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "device", json_object_new_string(a->device));
		json_object_object_add(o, "token", json_object_new_int(r));
		json_object_object_add(o, "kek", json_object_new_string(a->uri));
		cli_print_json(o);
	} else {
		printf("%s: added token %d for %s\n", a->device, r, a->uri);
	}
	return EXIT_OK;
}

static int kek_remove(struct cli *cli, const struct kek_args *a)
{
	int ex, r;

	if (a->token < 0)
		return cli_usage_error(cli, "kek remove needs --token ID");
	if ((ex = cli_ctx(cli)))
		return ex;
	if (a->force && !cli_confirm(cli, "Removing this token may leave the volume with no "
				     "way to unlock it."))
		return EXIT_CANCELLED;
	r = kc_kek_remove(cli->ctx, a->device, a->token, a->force);
	if (r < 0)
		return cli_fail(cli, r);
	if (!cli->json)
		printf("%s: removed token %d\n", a->device, a->token);
	return EXIT_OK;
}

static int kek_run(struct cli *cli, int argc, char **argv)
{
	struct kek_args a = { .token = -1 };
	int r;

	r = kek_parse(cli, argc, argv, &a);
	if (r >= 0)
		return r;
	/* Messages name the sub-verb: "kekcrypt kek add: ..." */
	if (!strcmp(a.sub, "add")) {
		cli->verb = "kek add";
		return kek_add(cli, &a);
	}
	if (!strcmp(a.sub, "remove")) {
		cli->verb = "kek remove";
		return kek_remove(cli, &a);
	}
	if (!strcmp(a.sub, "list")) {
		cli->verb = "kek list";
		return cmd_show(cli, a.device, true);
	}
	return cli_usage_error(cli, "unknown 'kek %s'; expected add, remove or list", a.sub);
}
