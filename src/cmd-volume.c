/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Verbs on a volume's header: format, verify, dump. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* verify --all lists this many tokens (LUKS2 has 32). */
#define VERIFY_MAX_TOKENS 32

int cli_format_opt(struct cli *cli, int c, struct kc_format_params *p)
{
	const char **keks = (const char **)p->kek_uris;
	int r;

	switch (c) {
	case 'k':
		if (p->n_keks == CLI_MAX_KEKS)
			return -cli_usage_error(cli, "at most %d --kek", CLI_MAX_KEKS);
		for (size_t i = 0; i < p->n_keks; i++)
			if (!strcmp(keks[i], optarg))
				return -cli_usage_error(cli, "--kek %s given twice", optarg);
		keks[p->n_keks++] = optarg;
		return 1;
	case 'c': p->cipher = optarg; return 1;
	case 'l': p->label = optarg; return 1;
	case 'f': p->force = true; return 1;
	case 's':
		r = cli_parse_int(optarg, 4096);
		if (r <= 0)
			return -cli_usage_error(cli, "invalid --key-size '%s'", optarg);
		p->key_size_bits = (size_t)r;
		return 1;
	case OPT_SECTOR_SIZE:
		r = cli_parse_int(optarg, 4096);
		if (r <= 0)
			return -cli_usage_error(cli, "invalid --sector-size '%s'", optarg);
		p->sector_size = (uint32_t)r;
		return 1;
	case OPT_UUID:
		p->uuid = optarg;
		return 1;
	}
	return 0;
}

int cli_new_volume_recovery(struct cli *cli, const char *device, const char *done,
			    const struct kc_recovery_params *rp, char **r_key, int *r_slot)
{
	int r = kc_recovery_add(cli->ctx, device, rp, r_key, r_slot);
	int ex;

	if (r >= 0)
		return 0;
	ex = cli_fail(cli, r);
	fprintf(stderr, "kekcrypt %s: %s is %s, but has no recovery key; add one with 'kekcrypt "
		"recovery add'.\n", cli->verb, device, done);
	return ex;
}

void cli_new_volume_recovery_print(json_object *out, const char *key, int slot)
{
	if (!key)
		return;
	if (out) {
		json_object_object_add(out, "recovery_keyslot", json_object_new_int(slot));
		json_object_object_add(out, "recovery_key", json_object_new_string(key));
		return;
	}
	fprintf(stderr, "Recovery key (keyslot %d, and three more for the other typed forms); "
		"write it down and keep it safe: it opens the volume without the KMS, and it is "
		"shown only now.\n", slot);
	printf("%s\n", key);
}

static int run_format(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		COMMON_LONGOPTS,
		FORMAT_LONGOPTS,
		{ "recovery", no_argument, NULL, 0x201 },
		{ "template", no_argument, NULL, 0x202 },
		RECOVERY_PBKDF_LONGOPTS,
		{}
	};
	struct kc_recovery_params rp = KC_SIZED(struct kc_recovery_params);
	char *rkey = NULL;
	bool recovery = false, template = false;
	int rslot = -1;
	const char *keks[CLI_MAX_KEKS];
	struct kc_format_params p = { .size = sizeof(p), .kek_uris = keks };
	char what[4200];
	json_object *warnings;
	int o, c, ex, r;

	optind = 0;
	while ((c = getopt_long(argc, argv, COMMON_SHORTOPTS FORMAT_SHORTOPTS, opts, NULL)) != -1) {
		if ((o = cli_common_opt(cli, c, &verb_format, &ex)) == 2)
			return ex;
		if (o)
			continue;
		if ((o = cli_recovery_opt(cli, c, &rp)) < 0)
			return -o;
		if (o)
			continue;
		if (c == 0x201 || c == 0x202) {
			recovery |= c == 0x201;
			template |= c == 0x202;
			continue;
		}
		if ((o = cli_format_opt(cli, c, &p)) < 0)
			return -o;
	}
	if (optind + 1 != argc)
		return cli_usage_error(cli, "expected one DEVICE");
	if (!p.n_keks)
		return cli_usage_error(cli, "at least one --kek URI is required");
	/* Every clone would hold the same recovery key, which the rekey of 'firstboot' could
	 * not carry over. */
	if (recovery && template)
		return cli_usage_error(cli, "--recovery and --template exclude each other (add a "
				       "recovery key to each clone after 'kekcrypt firstboot')");
	if ((ex = cli_ctx(cli)))
		return ex;
	snprintf(what, sizeof(what), "This will overwrite data on %s irrevocably.", argv[optind]);
	if (!cli_confirm(cli, what)) {
		cli_error(cli, "cancelled, nothing written.");
		return EXIT_CANCELLED;
	}
	r = kc_format(cli->ctx, argv[optind], &p);
	if (r >= 0 && template)
		r = kc_template_mark(cli->ctx, argv[optind], true);
	if (r < 0)
		return cli_fail_device(cli, argv[optind], r);
	warnings = cli_kek_warnings(cli, keks, p.n_keks);
	if (recovery && (ex = cli_new_volume_recovery(cli, argv[optind], "formatted", &rp, &rkey,
						     &rslot))) {
		json_object_put(warnings);
		return ex;
	}
	if (!cli->json) {
		json_object_put(warnings);
		printf("Formatted %s with %zu KEK%s%s.\n", argv[optind], p.n_keks,
		       p.n_keks > 1 ? "s" : "", template ? ", marked as a template" : "");
		cli_new_volume_recovery_print(NULL, rkey, rslot);
	} else {
		json_object *out = cli_json_new(cli, "format");

		json_object_object_add(out, "device", json_object_new_string(argv[optind]));
		cli_json_uuid(cli, out, argv[optind]);
		json_object_object_add(out, "keks", json_object_new_int((int)p.n_keks));
		json_object_object_add(out, "template", json_object_new_boolean(template));
		json_object_object_add(out, "warnings", warnings);
		cli_new_volume_recovery_print(out, rkey, rslot);
		cli_print_json(cli, out);
	}
	fflush(stdout);
	kc_recovery_key_free(rkey);
	return EXIT_OK;
}

const struct verb verb_format = {
	.name = "format",
	.run = run_format,
	.header = true,
	.summary = "create a LUKS2 volume whose key is wrapped by one or more KEKs",
	.usage = "format DEVICE --kek URI [--kek URI ...] [OPTIONS]\n\n"
		 "Format DEVICE (block device or image file) as LUKS2 with a random data key,\n"
		 "stored only wrapped by each KEK. Refuses a device holding a filesystem,\n"
		 "partition table or LUKS header unless --force. With --header FILE the LUKS2\n"
		 "header goes to FILE (created if absent) and the data starts at offset 0.\n\n"
		 FORMAT_USAGE
		 "  -f, --force          format even if the device holds data\n"
		 "      --template       mark it as a volume of an image template: each clone\n"
		 "                       gets a data key of its own by 'kekcrypt firstboot'\n"
		 "      --recovery       also add a recovery key, printed once (see\n"
		 "                       'kekcrypt recovery --help')\n",
};

static void print_unlock(struct cli *cli, const char *device, const struct kc_unlock_result *res,
			 const char *what)
{
	struct kc_rekey_state st;
	bool rekey = cli_rekey_state(cli, device, &st);
	json_object *o;

	/* It unlocks, and a rekey waits to be finished: say both. */
	if (rekey)
		fprintf(stderr, "kekcrypt %s: note: device '%s': %s: run '%s %s'\n", cli->verb,
			device, st.summary, st.resume, device);
	if (!cli->json) {
		printf("%s: %s with token %d (%s)\n", device, what, res->token_id, res->kek_uri);
		return;
	}
	o = cli_json_new(cli, "verify");
	json_object_object_add(o, "device", json_object_new_string(device));
	cli_json_uuid(cli, o, device);
	json_object_object_add(o, "token", json_object_new_int(res->token_id));
	json_object_object_add(o, "keyslot", json_object_new_int(res->keyslot));
	json_object_object_add(o, "kek", json_object_new_string(res->kek_uri));
	json_object_object_add(o, "rekey", rekey ? cli_rekey_json(&st) : NULL);
	cli_print_json(cli, o);
}

/* verify --all: print each check (text), the JSON document in *R_DOC; the exit code says
 * whether all, some or none work. */
static int verify_all_report(struct cli *cli, const char *device,
			     const struct kc_token_check *checks, size_t n, int r,
			     json_object **r_doc)
{
	json_object *o = cli_json_new(cli, "verify-all"), *arr = json_object_new_array();
	size_t working = 0;

	for (size_t i = 0; i < n; i++) {
		const struct kc_token_check *c = &checks[i];
		json_object *t = json_object_new_object();

		working += c->result == 0;
		if (!cli->json)
			printf("token %d%s%s%s: %s\n", c->token_id, c->kek_uri[0] ? " (" : "",
			       c->kek_uri, c->kek_uri[0] ? ")" : "", c->result ? c->detail : "ok");
		json_object_object_add(t, "id", json_object_new_int(c->token_id));
		json_object_object_add(t, "kek", c->kek_uri[0] ?
				       json_object_new_string(c->kek_uri) : NULL);
		json_object_object_add(t, "keyslot", json_object_new_int(c->keyslot));
		json_object_object_add(t, "ok", json_object_new_boolean(c->result == 0));
		if (c->result) {
			json_object_object_add(t, "error", json_object_new_string(c->detail));
			json_object_object_add(t, "exit_code",
					       json_object_new_int(cli_exit_code(c->result)));
			json_object_object_add(t, "meaning",
					       json_object_new_string(kc_strerror(c->result)));
		}
		json_object_array_add(arr, t);
	}
	json_object_object_add(o, "device", json_object_new_string(device));
	if (cli->json)
		cli_json_uuid(cli, o, device);
	json_object_object_add(o, "tokens", arr);
	json_object_object_add(o, "working", json_object_new_int((int)working));
	json_object_object_add(o, "failed", json_object_new_int((int)(n - working)));
	*r_doc = o;
	if (r < 0)
		return cli_fail(cli, r);
	if (working < n) {
		fprintf(stderr, "kekcrypt verify: device '%s': degraded: %zu of %zu tokens "
			"unlock it\n", device, working, n);
		return EXIT_DEGRADED;
	}
	return EXIT_OK;
}

/* verify --all on DEVICE (a cli_volume_fn). */
static int verify_all(struct cli *cli, const char *device, void *usrptr, json_object **r_doc)
{
	struct kc_token_check checks[VERIFY_MAX_TOKENS];
	size_t n;
	int r;

	for (n = 0; n < VERIFY_MAX_TOKENS; n++)
		checks[n] = (struct kc_token_check){ .size = sizeof(checks[0]), .token_id = -1 };
	r = kc_verify_all(cli->ctx, device, checks, VERIFY_MAX_TOKENS);
	/* Every token is listed, also when none works; the rest keep token_id -1 (all of them
	 * when the volume could not be checked). */
	for (n = 0; n < VERIFY_MAX_TOKENS && checks[n].token_id >= 0; n++)
		;
	(void)usrptr;
	if (r < 0 && !n)
		return cli_fail(cli, r);
	return verify_all_report(cli, device, checks, n, r, r_doc);
}

static int run_verify(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		COMMON_LONGOPTS, TOKEN_LONGOPT, { "all", no_argument, NULL, 'a' },
		CRYPTTAB_LONGOPT, {}
	};
	json_object *doc = NULL;
	const char *crypttab_path = NULL;
	bool crypttab = false;
	struct kc_unlock_result res = KC_SIZED(struct kc_unlock_result);
	const char *token_arg = NULL;
	int o, c, ex, r, token = -1;
	bool all = false;

	optind = 0;
	while ((c = getopt_long(argc, argv, COMMON_SHORTOPTS, opts, NULL)) != -1) {
		if ((o = cli_common_opt(cli, c, &verb_verify, &ex)) == 2)
			return ex;
		if (o)
			continue;
		if (c == 'a')
			all = true;
		if (c == OPT_TOKEN)
			token_arg = optarg;
		if (c == OPT_CRYPTTAB) {
			crypttab = true;
			crypttab_path = optarg;
		}
	}
	if (crypttab && (!all || optind != argc))
		return cli_usage_error(cli, "--crypttab goes with --all and no DEVICE (another "
				       "crypttab file: --crypttab=PATH)");
	if (crypttab) {
		ex = cli_ctx(cli);
		return ex ?: cli_crypttab_run(cli, crypttab_path, verify_all, NULL);
	}
	if (optind + 1 != argc)
		return cli_usage_error(cli, "expected one DEVICE");
	if (all && token_arg)
		return cli_usage_error(cli, "--all and --token exclude each other");
	if ((ex = cli_ctx(cli)))
		return ex;
	if (all) {
		ex = verify_all(cli, argv[optind], NULL, &doc);
		if (doc && cli->json)
			cli_print_json(cli, doc);
		else
			json_object_put(doc);
		return ex;
	}
	if ((ex = cli_token_id(cli, argv[optind], token_arg, &token)) >= 0)
		return ex;
	r = kc_verify(cli->ctx, argv[optind], token, &res);
	if (r < 0)
		return cli_fail_device(cli, argv[optind], r);
	print_unlock(cli, argv[optind], &res, "data key unwrapped and verified");
	return EXIT_OK;
}

const struct verb verb_verify = {
	.name = "verify",
	.run = run_verify,
	.header = true,
	.summary = "unwrap the data key and check it, mapping nothing (KMS health check)",
	.usage = "verify DEVICE [--token ID|URI | --all]\n"
		 "       kekcrypt verify --crypttab[=PATH] --all\n\n"
		 "Unwrap the data key through the kekcrypt tokens in order and check it\n"
		 "against the LUKS2 digest. Nothing is mapped or written.\n\n"
		 "      --token ID|URI  try only this token (its ID, or the URI of its KEK)\n"
		 "      --all           check every token on its own and report each; exit 0\n"
		 "                      when all work, 26 (degraded) when some do, else the error\n"
		 "      --crypttab[=PATH]  with --all: instead of DEVICE, every volume of\n"
		 "                      /etc/crypttab (or PATH) with a kekcrypt token; the exit\n"
		 "                      code of the first volume that failed\n",
};

static json_object *token_json(const struct kc_token_info *t)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "id", json_object_new_int(t->id));
	json_object_object_add(o, "valid", json_object_new_boolean(t->valid == 0));
	if (t->valid < 0) {
		json_object_object_add(o, "problem", json_object_new_string(t->problem));
		return o;
	}
	json_object_object_add(o, "keyslot", json_object_new_int(t->keyslot));
	json_object_object_add(o, "provider", json_object_new_string(t->provider));
	json_object_object_add(o, "kek", json_object_new_string(t->kek_uri));
	if (t->key_version[0])
		json_object_object_add(o, "key_version", json_object_new_string(t->key_version));
	json_object_object_add(o, "wrap_alg", json_object_new_string(t->wrap_alg));
	json_object_object_add(o, "wrapped_bytes", json_object_new_int((int)t->wrapped_len));
	json_object_object_add(o, "created", json_object_new_string(t->created));
	json_object_object_add(o, "format_version", json_object_new_int((int)t->format_version));
	return o;
}

static void print_tokens_text(const struct kc_volume_info *info)
{
	size_t n = kc_volume_info_n_tokens(info);

	if (!n)
		printf("  (no kekcrypt token)\n");
	for (size_t i = 0; i < n; i++) {
		const struct kc_token_info *t = kc_volume_info_token(info, i);

		if (t->valid < 0) {
			printf("  %d: INVALID: %s\n", t->id, t->problem);
			continue;
		}
		printf("  %d: %s\n", t->id, t->kek_uri);
		printf("\tprovider:  %s\n\tkeyslot:   %d\n\twrap:      %s (%zu bytes)\n",
		       t->provider, t->keyslot, t->wrap_alg, t->wrapped_len);
		if (t->key_version[0])
			printf("\tversion:   %s\n", t->key_version);
		printf("\tcreated:   %s\n", t->created);
	}
}

static json_object *tokens_json(const struct kc_volume_info *info)
{
	json_object *arr = json_object_new_array();

	for (size_t i = 0; i < kc_volume_info_n_tokens(info); i++)
		json_object_array_add(arr, token_json(kc_volume_info_token(info, i)));
	return arr;
}

static void print_dump(struct cli *cli, const char *device, const struct kc_volume_info *info,
		       const struct cli_lifecycle *lc)
{
	uint32_t slots = kc_volume_info_keyslots(info);
	struct kc_rekey_state st;
	bool rekey = cli_rekey_state(cli, device, &st);
	int mark = kc_template_get(cli->ctx, device);
	json_object *o, *arr;

	if (!cli->json) {
		printf("Device:      %s\nUUID:        %s\nLabel:       %s\nCipher:      %s\n"
		       "Key size:    %zu bits\nSector size: %u\nData offset: %llu bytes\n"
		       "Keyslots:   ", device, kc_volume_info_uuid(info),
		       kc_volume_info_label(info)[0] ? kc_volume_info_label(info) : "(none)",
		       kc_volume_info_cipher(info), kc_volume_info_key_bits(info),
		       kc_volume_info_sector_size(info),
		       (unsigned long long)kc_volume_info_data_offset(info));
		for (int s = 0; s < 32; s++)
			if (slots & (1u << s))
				printf(" %d", s);
		printf("\n");
		if (rekey)
			cli_rekey_text(device, &st);
		if (mark < 0)
			printf("Template:    INVALID mark: %s\n", kc_error_detail(cli->ctx));
		else if (mark)
			printf("Template:    %s: 'kekcrypt firstboot' gives each clone a data key of "
			       "its own\n", cli_template_state(mark));
		printf("kekcrypt tokens:\n");
		print_tokens_text(info);
		cli_lifecycle_text(lc);
		return;
	}
	o = cli_json_new(cli, "dump");
	json_object_object_add(o, "device", json_object_new_string(device));
	json_object_object_add(o, "uuid", json_object_new_string(kc_volume_info_uuid(info)));
	json_object_object_add(o, "label", json_object_new_string(kc_volume_info_label(info)));
	json_object_object_add(o, "cipher", json_object_new_string(kc_volume_info_cipher(info)));
	json_object_object_add(o, "key_bits",
			       json_object_new_int((int)kc_volume_info_key_bits(info)));
	json_object_object_add(o, "sector_size",
			       json_object_new_int((int)kc_volume_info_sector_size(info)));
	json_object_object_add(o, "data_offset",
			       json_object_new_int64((int64_t)kc_volume_info_data_offset(info)));
	arr = json_object_new_array();
	for (int s = 0; s < 32; s++)
		if (slots & (1u << s))
			json_object_array_add(arr, json_object_new_int(s));
	json_object_object_add(o, "keyslots", arr);
	json_object_object_add(o, "tokens", tokens_json(info));
	json_object_object_add(o, "rekey", rekey ? cli_rekey_json(&st) : NULL);
	json_object_object_add(o, "template", json_object_new_string(cli_template_state(mark)));
	cli_lifecycle_json(o, lc);
	cli_print_json(cli, o);
}

/* kek list --json: the tokens, with the volume they belong to. */
static void print_list_json(struct cli *cli, const char *device,
			    const struct kc_volume_info *info)
{
	json_object *o = cli_json_new(cli, "kek-list");

	json_object_object_add(o, "device", json_object_new_string(device));
	json_object_object_add(o, "uuid", json_object_new_string(kc_volume_info_uuid(info)));
	json_object_object_add(o, "tokens", tokens_json(info));
	cli_print_json(cli, o);
}

int cmd_show(struct cli *cli, const char *device, bool list_only)
{
	struct kc_volume_info *info = NULL;
	struct cli_lifecycle lc;
	int ex, r;

	if ((ex = cli_ctx(cli)))
		return ex;
	cli_lifecycle_before(cli, device, &lc);
	r = kc_volume_info_get(cli->ctx, device, &info);
	if (r < 0)
		return cli_fail(cli, r);
	if (!list_only) {
		cli_lifecycle_after(cli, device, &lc);
		print_dump(cli, device, info, &lc);
	}
	else if (cli->json)
		print_list_json(cli, device, info);
	else
		print_tokens_text(info);
	kc_volume_info_free(info);
	return EXIT_OK;
}

static int run_dump(struct cli *cli, int argc, char **argv)
{
	int ex;

	ex = cli_parse_common_only(cli, argc, argv, &verb_dump);
	if (ex >= 0)
		return ex;
	if (optind + 1 != argc)
		return cli_usage_error(cli, "expected one DEVICE");
	return cmd_show(cli, argv[optind], false);
}

const struct verb verb_dump = {
	.name = "dump",
	.run = run_dump,
	.header = true,
	.summary = "show the volume and its kekcrypt tokens (never a secret)",
	.usage = "dump DEVICE [--json]\n\n"
		 "Show the LUKS2 volume's parameters, keyslots and kekcrypt tokens.\n",
};
