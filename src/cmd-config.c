/* SPDX-License-Identifier: GPL-2.0-or-later */
/* config check: is the configuration sound, before a boot or an unlock depends on it? */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static int run_config(struct cli *cli, int argc, char **argv);

const struct verb verb_config = {
	.name = "config",
	.run = run_config,
	.summary = "check the configuration file (syntax, keys, the files it names)",
	.usage = "config check [--config FILE] [--json]\n\n"
		 "check   the configuration (default " CLI_CONFIG_PATH "): its syntax; that\n"
		 "        every section is a provider's and every key one it takes; that the file\n"
		 "        is private; that the files it names (credentials, PIN, client\n"
		 "        certificate and key, CA, KEK files, PKCS#11 modules) exist and pass the\n"
		 "        ownership and mode checks kekcrypt applies when it uses them; that each\n"
		 "        allowed-hosts entry is HOST or HOST:PORT. Reaches no KMS. Exit 0\n"
		 "        when it is sound, 25 when it has problems (each listed), 3 when\n"
		 "        --config FILE does not exist, 14 when the file itself is unsafe.\n",
};

static const char *const kinds[] = {
	[KC_CONFIG_UNUSABLE] = "unusable",
	[KC_CONFIG_MISSING] = "missing",
	[KC_CONFIG_BAD_ENTRY] = "bad-entry",
};

static void add_problem(int kind, const char *msg, void *usrptr)
{
	json_object *p = json_object_new_object();

	json_object_object_add(p, "problem", json_object_new_string(
		kind >= 0 && kind < (int)(sizeof(kinds) / sizeof(kinds[0])) ? kinds[kind] :
		"does-not-load"));
	json_object_object_add(p, "message", json_object_new_string(msg));
	json_object_array_add(usrptr, p);
}

static int config_check(struct cli *cli)
{
	json_object *problems = json_object_new_array();
	const char *path;
	int n = 0, ex;
	size_t len;

	ex = cli_ctx_checked(cli, add_problem, problems, &n);
	path = cli->config ?: CLI_CONFIG_PATH;
	len = json_object_array_length(problems);
	if (!ex && len)
		ex = EXIT_CONFIG;
	if (cli->json) {
		json_object *o = cli_json_new(cli, "config-check");

		json_object_object_add(o, "config", json_object_new_string(path));
		json_object_object_add(o, "ok", json_object_new_boolean(!ex));
		json_object_object_add(o, "problems", problems);
		cli_print_json(cli, o);
		return ex;
	}
	for (size_t i = 0; i < len; i++)
		printf("error: %s\n", json_object_get_string(json_object_object_get(
			json_object_array_get_idx(problems, i), "message")));
	printf("%s: %s\n", path, ex ? "PROBLEMS" : "ok");
	json_object_put(problems);
	return ex;
}

static int run_config(struct cli *cli, int argc, char **argv)
{
	int ex = cli_parse_common_only(cli, argc, argv, &verb_config);

	if (ex >= 0)
		return ex;
	if (optind + 1 != argc || strcmp(argv[optind], "check"))
		return cli_usage_error(cli, "expected 'config check'");
	return config_check(cli);
}
