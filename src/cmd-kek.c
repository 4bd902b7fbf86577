/* SPDX-License-Identifier: GPL-2.0-or-later */
/* kek add / remove / list / rotate. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

#define KEK_USAGE                                                                            \
	"kek add DEVICE --kek URI [--key-file FILE|-] [--recovery-key]\n"                   \
	"               [--wipe-passphrase] [--convert --header-backup FILE]\n"              \
	"       kekcrypt kek remove DEVICE --token ID|URI [--force]\n"                      \
	"       kekcrypt kek list DEVICE [--json | --ids]\n"                                 \
	"       kekcrypt kek rotate DEVICE [--token ID|URI | --all] [--to URI] [--dry-run]\n" \
	"       kekcrypt kek rotate DEVICE (--token ID|URI | --all) --if-newer\n"            \
	"       kekcrypt kek rotate --crypttab[=PATH] --all --if-newer\n"                     \
	"       kekcrypt kek providers [--json]\n\n"                                         \
	"add     unwrap the data key through an existing token and store it wrapped by\n"    \
	"        another KEK, in a new token (e.g. a second KMS or an HSM elsewhere); a\n"    \
	"        KEK the volume already has a token for is left as it is (exit 0). A volume\n"\
	"        without a kekcrypt token (made by cryptsetup, systemd-cryptenroll, clevis)\n"\
	"        is enrolled with an existing passphrase instead (asked on a terminal), as\n" \
	"        is any volume with --key-file or --recovery-key (e.g. its KEKs are gone)\n" \
	"remove  remove a token and its keyslot; refuses the last way to unlock unless\n"     \
	"        --force\n"                                                                  \
	"list    list the kekcrypt tokens; with --ids only their IDs, one a line (for\n"      \
	"        scripts and the bash completion)\n"                                         \
	"rotate  store the data key wrapped under the KMS's current version of the same\n"    \
	"        key (or under --to URI) in a new token, verify it, then write it over the\n"  \
	"        old one: the token keeps its ID; the data key and the data do not change;\n" \
	"        crash-safe; with --if-newer only the tokens whose KMS has a newer current\n" \
	"        version of their key (exit 0 when none has: nothing is written)\n"          \
	"providers  the kinds of KEK this kekcrypt knows: name (the config section), URI\n"  \
	"        syntax and what it is\n\n"                                                    \
	"  -k, --kek URI    the KEK to add\n"                                                \
	"      --key-file FILE  add: an existing passphrase or key file authorises it (all\n"\
	"                   of FILE, as cryptsetup reads one; '-': standard input)\n"       \
	"      --recovery-key  add: the secret (key file, standard input or the prompt) is\n"\
	"                   a kekcrypt recovery key\n"                                      \
	"      --wipe-passphrase  add: then destroy the keyslot that the passphrase opened;\n"\
	"                   refused when no other way to unlock would be left, or when a\n"  \
	"                   token (clevis, systemd, recovery) holds that keyslot\n"         \
	"      --convert    add: convert a LUKS1 volume to LUKS2 first (libcryptsetup);\n"   \
	"                   needs --header-backup FILE, where its LUKS1 header is saved\n"  \
	"      --header-backup FILE  add --convert: the new file for the LUKS1 header\n"     \
	"      --token ID|URI  the token to remove or rotate: its ID, or the URI of its\n"   \
	"                   KEK (one token only); rotate: needed when the volume has\n"      \
	"                   several tokens, unless --all\n"                                  \
	"  -f, --force      allow removing the last unlock path\n"                           \
	"  -a, --all        rotate every kekcrypt token\n"                                   \
	"      --to URI     rotate: move the token to this KEK\n"                            \
	"  -n, --dry-run    rotate: check that the old KEK unwraps and the new one wraps;\n" \
	"                   write nothing\n"                                                \
	"      --if-newer   rotate: ask each token's KMS for the current version of its\n"  \
	"                   key and rotate only the tokens not at it; a KEK without\n"      \
	"                   versions (file:, pkcs11:, a URI pinning one) is left alone\n"  \
	"      --crypttab[=PATH]  rotate --if-newer: instead of DEVICE, every volume of\n" \
	"                   /etc/crypttab (or PATH) with a kekcrypt token\n"

static int kek_run(struct cli *cli, int argc, char **argv);

const struct verb verb_kek = {
	.name = "kek",
	.run = kek_run,
	.header = true,
	.summary = "add, remove, list or rotate the KEKs (tokens) of a volume",
	.usage = KEK_USAGE,
};

struct kek_args {
	const char *sub;
	const char *device;
	const char *uri;
	const char *token;	/* --token: an ID or a KEK URI */
	bool force;
	bool all;
	bool dry_run;
	bool if_newer;
	bool crypttab;		/* --crypttab: the volumes of crypttab_path instead of DEVICE */
	const char *crypttab_path;	/* NULL: /etc/crypttab */
	const char *to;
	bool wipe;		/* --wipe-passphrase */
	bool convert;		/* --convert */
	bool ids;		/* list --ids */
	const char *header_backup;
	struct cli_auth auth;
};

enum { OPT_WIPE = 0x210, OPT_CONVERT, OPT_HEADER_BACKUP, OPT_IDS };

static int kek_parse(struct cli *cli, int argc, char **argv, struct kek_args *a)
{
	static const struct option opts[] = {
		COMMON_LONGOPTS,
		{ "kek", required_argument, NULL, 'k' },
		TOKEN_LONGOPT,
		{ "force", no_argument, NULL, 'f' },
		{ "all", no_argument, NULL, 'a' },
		{ "to", required_argument, NULL, 0x200 },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "if-newer", no_argument, NULL, 0x201 },
		CRYPTTAB_LONGOPT,
		AUTH_LONGOPTS,
		{ "wipe-passphrase", no_argument, NULL, OPT_WIPE },
		{ "convert", no_argument, NULL, OPT_CONVERT },
		{ "header-backup", required_argument, NULL, OPT_HEADER_BACKUP },
		{ "ids", no_argument, NULL, OPT_IDS },
		{}
	};
	int o, c, ex = -1;

	optind = 0;
	while ((c = getopt_long(argc, argv, COMMON_SHORTOPTS "k:fan", opts, NULL)) != -1) {
		if ((o = cli_common_opt(cli, c, &verb_kek, &ex)) == 2)
			return ex;
		if (o || cli_auth_opt(c, &a->auth))
			continue;
		if (c == 'k' && a->uri)
			return cli_usage_error(cli, "--kek given twice: kek add adds one KEK");
		if (c == 'k')
			a->uri = optarg;
		else if (c == 'f')
			a->force = true;
		else if (c == 'a')
			a->all = true;
		else if (c == 'n')
			a->dry_run = true;
		else if (c == 0x200)
			a->to = optarg;
		else if (c == 0x201)
			a->if_newer = true;
		else if (c == OPT_CRYPTTAB) {
			a->crypttab = true;
			a->crypttab_path = optarg;
		}
		else if (c == OPT_TOKEN)
			a->token = optarg;
		else if (c == OPT_WIPE)
			a->wipe = true;
		else if (c == OPT_CONVERT)
			a->convert = true;
		else if (c == OPT_HEADER_BACKUP)
			a->header_backup = optarg;
		else if (c == OPT_IDS)
			a->ids = true;
	}
	if (optind + 1 == argc && !strcmp(argv[optind], "providers")) {
		a->sub = argv[optind];
		return -1;
	}
	/* --crypttab names the volumes: the sub-verb alone. */
	if (a->crypttab && optind + 1 == argc) {
		a->sub = argv[optind];
		return -1;
	}
	if (a->crypttab && optind + 2 == argc)
		return cli_usage_error(cli, "--crypttab and DEVICE exclude each other (another "
				       "crypttab file: --crypttab=PATH)");
	if (optind + 2 != argc)
		return cli_usage_error(cli, "expected 'kek add|remove|list|rotate DEVICE' or "
				       "'kek providers'");
	a->sub = argv[optind];
	a->device = argv[optind + 1];
	return -1;
}

/* kek list --ids: the ID of each kekcrypt token, one a line (an invalid one's too: it can be
 * removed), nothing else; no JSON (--json and --ids exclude each other). */
static int kek_list_ids(struct cli *cli, const char *device)
{
	struct kc_volume_info *info = NULL;
	int ex, r;

	if (cli->json)
		return cli_usage_error(cli, "--json and --ids exclude each other");
	if ((ex = cli_ctx(cli)))
		return ex;
	r = kc_volume_info_get(cli->ctx, device, &info);
	if (r < 0)
		return cli_fail(cli, r);
	for (size_t i = 0; i < kc_volume_info_n_tokens(info); i++)
		printf("%d\n", kc_volume_info_token(info, i)->id);
	kc_volume_info_free(info);
	return EXIT_OK;
}

/* The table of providers, as the library has it (usage texts and docs come from it). */
static int kek_providers(struct cli *cli)
{
	json_object *arr = json_object_new_array();

	for (size_t i = 0; kc_provider_name(i); i++) {
		json_object *o = json_object_new_object();

		if (!cli->json)
			printf("%-14s %s\n%14s %s\n", kc_provider_name(i), kc_provider_summary(i),
			       "", kc_provider_syntax(i));
		json_object_object_add(o, "name", json_object_new_string(kc_provider_name(i)));
		json_object_object_add(o, "syntax",
				       json_object_new_string(kc_provider_syntax(i)));
		json_object_object_add(o, "summary",
				       json_object_new_string(kc_provider_summary(i)));
		json_object_array_add(arr, o);
	}
	if (cli->json) {
		json_object *o = cli_json_new(cli, "kek-providers");

		json_object_object_add(o, "providers", arr);
		cli_print_json(cli, o);
	} else {
		json_object_put(arr);
	}
	return EXIT_OK;
}

/* --convert: a LUKS1 volume to LUKS2 first. -1 to go on, else an exit code. */
static int kek_convert(struct cli *cli, const struct kek_args *a, bool *r_converted)
{
	int r;

	if (!a->convert && !a->header_backup)
		return -1;
	if (!a->convert || !a->header_backup)
		return cli_usage_error(cli, "--convert needs --header-backup FILE (where the LUKS1 "
				       "header is saved), and --header-backup needs --convert");
	r = kc_luks1_convert(cli->ctx, a->device, a->header_backup);
	if (r < 0)
		return cli_fail(cli, r);
	*r_converted = r > 0;
	if (r > 0 && !cli->json)
		printf("%s: converted from LUKS1 to LUKS2; its LUKS1 header is saved in %s\n",
		       a->device, a->header_backup);
	return -1;
}

/* The token path (kc_kek_add()) or the secret's (kc_kek_enrol()): the token id, *R_RES. */
static int kek_add_write(struct cli *cli, const struct kek_args *a, struct kc_enrol_result *res)
{
	uint32_t flags = (a->auth.recovery_key ? KC_ENROL_RECOVERY_KEY : 0) |
			 (a->wipe ? KC_ENROL_WIPE_PASSPHRASE : 0);
	int r;

	if (a->auth.secret)
		return kc_kek_enrol(cli->ctx, a->device, a->uri, a->auth.secret, a->auth.len,
				    flags, res);
	r = kc_kek_add(cli->ctx, a->device, a->uri);
	res->added = r >= 0;
	return r;
}

static void kek_add_print(struct cli *cli, const struct kek_args *a, int token,
			  const struct kc_enrol_result *res, bool converted)
{
	json_object *warnings = cli_kek_warnings(cli, &a->uri, 1);
	json_object *o;

	if (!cli->json) {
		json_object_put(warnings);
		if (res->added)
			printf("%s: added token %d for %s", a->device, token, a->uri);
		else
			printf("%s: already has a token for %s (token %d)", a->device, a->uri,
			       token);
		if (res->auth_keyslot >= 0)
			printf(", authorised by the %s of keyslot %d", a->auth.recovery_key ?
			       "recovery key" : "passphrase", res->auth_keyslot);
		printf(res->added || res->wiped ? "\n" : "; nothing written\n");
		if (res->wiped)
			printf("%s: keyslot %d (the passphrase's) destroyed\n", a->device,
			       res->auth_keyslot);
		return;
	}
	o = cli_json_new(cli, "kek-add");
	json_object_object_add(o, "device", json_object_new_string(a->device));
	cli_json_uuid(cli, o, a->device);
	json_object_object_add(o, "token", json_object_new_int(token));
	json_object_object_add(o, "kek", json_object_new_string(a->uri));
	json_object_object_add(o, "added", json_object_new_boolean(res->added));
	json_object_object_add(o, "authorised_by", json_object_new_string(cli_auth_kind(&a->auth)));
	if (res->auth_keyslot >= 0)
		json_object_object_add(o, "auth_keyslot", json_object_new_int(res->auth_keyslot));
	if (res->wiped)
		json_object_object_add(o, "wiped_keyslot", json_object_new_int(res->auth_keyslot));
	if (a->convert) {
		json_object_object_add(o, "converted", json_object_new_boolean(converted));
		json_object_object_add(o, "header_backup", converted ?
				       json_object_new_string(a->header_backup) : NULL);
	}
	json_object_object_add(o, "warnings", warnings);
	cli_print_json(cli, o);
}

static int kek_add(struct cli *cli, struct kek_args *a)
{
	/* auth_keyslot stays -1 when no secret was checked (the token path, or a KEK the
	 * volume has already: nothing to authorise). */
	struct kc_enrol_result res = { .size = sizeof(res), .auth_keyslot = -1 };
	bool converted = false;
	int ex, r;

	if (!a->uri)
		return cli_usage_error(cli, "kek add needs --kek URI");
	if ((ex = cli_ctx(cli)))
		return ex;
	if ((ex = kek_convert(cli, a, &converted)) >= 0)
		return ex;
	if ((ex = cli_auth_read(cli, a->device, a->wipe, &a->auth)) >= 0)
		return ex;
	r = kek_add_write(cli, a, &res);
	cli_auth_clear(&a->auth);
	/* Idempotent: a KEK the volume already has a token for is no error. */
	if (r == -EEXIST) {
		r = kc_kek_find(cli->ctx, a->device, a->uri);
		res.added = false;
	}
	if (r < 0)
		return cli_fail(cli, r);
	kek_add_print(cli, a, r, &res, converted);
	return EXIT_OK;
}

static int kek_remove(struct cli *cli, const struct kek_args *a)
{
	int ex, r, token;

	if (!a->token)
		return cli_usage_error(cli, "kek remove needs --token ID|URI");
	if ((ex = cli_ctx(cli)))
		return ex;
	if ((ex = cli_token_id(cli, a->device, a->token, &token)) >= 0)
		return ex;
	if (a->force && !cli_confirm(cli, "Removing this token may leave the volume with no "
				     "way to unlock it."))
		return EXIT_CANCELLED;
	r = kc_kek_remove(cli->ctx, a->device, token, a->force);
	if (r < 0)
		return cli_fail(cli, r);
	if (cli->json)
		cli_print_device_int(cli, "kek-remove", a->device, "token", token);
	else
		printf("%s: removed token %d\n", a->device, token);
	return EXIT_OK;
}

static void rotate_print(struct cli *cli, const struct kek_args *a,
			 const struct kc_rotate_result *res, int n)
{
	json_object *o, *arr;

	if (!cli->json) {
		for (int i = 0; i < n; i++) {
			const struct kc_rotate_result *x = &res[i];

			if (a->dry_run)
				printf("%s: token %d (%s%s%s) can be rotated to %s%s%s; nothing "
				       "written\n", a->device, x->old_token, x->old_kek_uri,
				       x->old_key_version[0] ? " version " : "", x->old_key_version,
				       x->new_kek_uri, x->new_key_version[0] ? " version " : "",
				       x->new_key_version);
			else
				printf("%s: token %d rotated from %s%s%s to %s%s%s\n",
				       a->device, x->new_token, x->old_kek_uri,
				       x->old_key_version[0] ? " version " : "", x->old_key_version,
				       x->new_kek_uri,
				       x->new_key_version[0] ? " version " : "",
				       x->new_key_version);
		}
		return;
	}
	o = cli_json_new(cli, "kek-rotate");
	arr = json_object_new_array();
	json_object_object_add(o, "device", json_object_new_string(a->device));
	cli_json_uuid(cli, o, a->device);
	json_object_object_add(o, "dry_run", json_object_new_boolean(a->dry_run));
	for (int i = 0; i < n; i++) {
		json_object *t = json_object_new_object();

		json_object_object_add(t, "old_token", json_object_new_int(res[i].old_token));
		if (!a->dry_run)
			json_object_object_add(t, "new_token",
					       json_object_new_int(res[i].new_token));
		json_object_object_add(t, "old_kek", json_object_new_string(res[i].old_kek_uri));
		json_object_object_add(t, "new_kek", json_object_new_string(res[i].new_kek_uri));
		if (res[i].old_key_version[0])
			json_object_object_add(t, "old_key_version",
					       json_object_new_string(res[i].old_key_version));
		if (res[i].new_key_version[0])
			json_object_object_add(t, "new_key_version",
					       json_object_new_string(res[i].new_key_version));
		json_object_array_add(arr, t);
	}
	json_object_object_add(o, "rotated", arr);
	cli_print_json(cli, o);
}

/* What --if-newer did with each token, as text lines. */
static const char *const refresh_states[] = {
	[KC_REFRESH_ROTATED] = "rotated", [KC_REFRESH_CURRENT] = "current",
	[KC_REFRESH_UNVERSIONED] = "unversioned", [KC_REFRESH_FAILED] = "failed",
};

static void refresh_text(const struct kc_refresh_result *x)
{
	printf("token %d (%s): ", x->token_id, x->kek_uri);
	if (x->state == KC_REFRESH_ROTATED)
		printf("now at version %s (was %s)\n", x->new_key_version,
		       x->old_key_version[0] ? x->old_key_version : "none");
	else if (x->state == KC_REFRESH_CURRENT)
		printf("already at the current version (%s)\n", x->new_key_version);
	else if (x->state == KC_REFRESH_UNVERSIONED)
		printf("not versioned: left alone\n");
	else
		printf("not rotated: %s\n", x->detail);
}

static json_object *refresh_token_json(const struct kc_refresh_result *x)
{
	json_object *t = json_object_new_object();

	json_object_object_add(t, "id", json_object_new_int(x->token_id));
	json_object_object_add(t, "kek", json_object_new_string(x->kek_uri));
	json_object_object_add(t, "state", json_object_new_string(refresh_states[x->state]));
	json_object_object_add(t, "old_key_version", x->old_key_version[0] ?
			       json_object_new_string(x->old_key_version) : NULL);
	json_object_object_add(t, "key_version", x->new_key_version[0] ?
			       json_object_new_string(x->new_key_version) : NULL);
	if (x->result) {
		json_object_object_add(t, "error", json_object_new_string(x->detail));
		json_object_object_add(t, "exit_code",
				       json_object_new_int(cli_exit_code(x->result)));
		json_object_object_add(t, "meaning", json_object_new_string(
			kc_strerror(x->result)));
	}
	return t;
}

/* kek rotate --if-newer on DEVICE (a cli_volume_fn): each token's outcome; the exit code of
 * the first token that failed (e.g. 4: its KMS is unreachable), the others still handled. */
static int kek_refresh(struct cli *cli, const char *device, void *usrptr, json_object **r_doc)
{
	const struct kek_args *a = usrptr;
	struct kc_refresh_result res[32];
	json_object *o, *arr;
	int r, token = -1, ex, rotated = 0, failed = 0;
	size_t n;

	CLI_SIZED_ARRAY(res);
	if ((ex = cli_token_id(cli, device, a->token, &token)) >= 0)
		return ex;
	r = kc_kek_refresh(cli->ctx, device, token, res, 32);
	for (n = 0; n < 32 && res[n].token_id >= 0; n++)
		;
	if (r < 0 && !n)
		return cli_fail(cli, r);
	/* Said now: the calls below clear the library's detail. */
	ex = r < 0 ? cli_fail(cli, r) : EXIT_OK;
	o = cli_json_new(cli, "kek-refresh");
	arr = json_object_new_array();
	json_object_object_add(o, "device", json_object_new_string(device));
	cli_json_uuid(cli, o, device);
	for (size_t i = 0; i < n; i++) {
		if (!cli->json)
			refresh_text(&res[i]);
		rotated += res[i].state == KC_REFRESH_ROTATED;
		failed += res[i].state == KC_REFRESH_FAILED;
		json_object_array_add(arr, refresh_token_json(&res[i]));
	}
	json_object_object_add(o, "tokens", arr);
	json_object_object_add(o, "rotated", json_object_new_int(rotated));
	json_object_object_add(o, "failed", json_object_new_int(failed));
	*r_doc = o;
	return ex;
}

static int kek_rotate_if_newer(struct cli *cli, const struct kek_args *a)
{
	json_object *doc = NULL;
	int ex;

	if (!a->all == !a->token)
		return cli_usage_error(cli, "--if-newer needs --all or --token ID|URI");
	if (a->to || a->dry_run)
		return cli_usage_error(cli, "--if-newer moves tokens to their KMS's current "
				       "version: no --to, no --dry-run");
	if (a->crypttab && a->token)
		return cli_usage_error(cli, "--crypttab rotates every token: --all, not --token");
	if ((ex = cli_ctx(cli)))
		return ex;
	if (a->crypttab)
		return cli_crypttab_run(cli, a->crypttab_path, kek_refresh, (void *)a);
	ex = kek_refresh(cli, a->device, (void *)a, &doc);
	if (doc && cli->json)
		cli_print_json(cli, doc);
	else
		json_object_put(doc);
	return ex;
}

static int kek_rotate(struct cli *cli, const struct kek_args *a)
{
	struct kc_rotate_result res[32];
	uint32_t flags = a->dry_run ? KC_ROTATE_DRY_RUN : 0;
	int ex, r, token = -1;

	CLI_SIZED_ARRAY(res);
	if (a->all && a->token)
		return cli_usage_error(cli, "--token and --all exclude each other");
	if (a->if_newer)
		return kek_rotate_if_newer(cli, a);
	if (a->crypttab)
		return cli_usage_error(cli, "--crypttab goes with --all --if-newer");
	if (a->all && a->to)
		return cli_usage_error(cli, "--to moves one token; name it with --token ID");
	if ((ex = cli_ctx(cli)))
		return ex;
	if ((ex = cli_token_id(cli, a->device, a->token, &token)) >= 0)
		return ex;
	/* Without --token or --all, a volume with a single kekcrypt token rotates that one (the
	 * library decides, once an interrupted rotation is finished or undone). */
	if (!a->all && !a->token)
		flags |= KC_ROTATE_ONLY_TOKEN;
	r = kc_kek_rotate(cli->ctx, a->device, token, a->to, flags, res, 32);
	if (r == -ENOTUNIQ)
		return cli_usage_error(cli, "%s", kc_error_detail(cli->ctx));
	if (r < 0)
		return cli_fail(cli, r);
	rotate_print(cli, a, res, r < 32 ? r : 32);
	return EXIT_OK;
}

static int kek_run(struct cli *cli, int argc, char **argv)
{
	struct kek_args a = { 0 };
	int r;

	r = kek_parse(cli, argc, argv, &a);
	if (r >= 0)
		return r;
	if ((a.crypttab || a.if_newer) && strcmp(a.sub, "rotate"))
		return cli_usage_error(cli, "--crypttab and --if-newer are kek rotate's");
	if (strcmp(a.sub, "add") && (a.auth.key_file || a.auth.recovery_key || a.wipe ||
				     a.convert || a.header_backup))
		return cli_usage_error(cli, "--key-file, --recovery-key, --wipe-passphrase, "
				       "--convert and --header-backup are for 'kek add'");
	/* Messages name the sub-verb: "kekcrypt kek add: ..." */
	if (!strcmp(a.sub, "add")) {
		cli->verb = "kek add";
		return kek_add(cli, &a);
	}
	if (!strcmp(a.sub, "remove")) {
		cli->verb = "kek remove";
		return kek_remove(cli, &a);
	}
	if (a.ids && strcmp(a.sub, "list"))
		return cli_usage_error(cli, "--ids is for 'kek list'");
	if (!strcmp(a.sub, "list")) {
		cli->verb = "kek list";
		if (a.ids)
			return kek_list_ids(cli, a.device);
		return cmd_show(cli, a.device, true);
	}
	if (!strcmp(a.sub, "providers")) {
		cli->verb = "kek providers";
		return kek_providers(cli);
	}
	if (!strcmp(a.sub, "rotate")) {
		cli->verb = "kek rotate";
		return kek_rotate(cli, &a);
	}
	return cli_usage_error(cli, "unknown 'kek %s'; expected add, remove, list or rotate",
			       a.sub);
}
