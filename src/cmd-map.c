/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Verbs on mappings: open, close, status. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* After an open: an in-place encryption or rekey the header says is unfinished (a power cut,
 * a stop) goes on reading and writing through the mapping, libcryptsetup's layers, until it
 * is finished: say what finishes it, on stderr (stdout may be --json). */
static void note_unfinished(struct cli *cli, const char *device, const char *name)
{
	struct kc_rekey_state st;

	if (cli_rekey_state(cli, device, &st))
		cli_error(cli, "warning: device '%s': %s: run '%s%s%s %s' to finish it (online, "
			  "through /dev/mapper/%s)", device, st.summary, st.resume,
			  cli->header ? " --header " : "", cli->header ?: "", device, name);
}

/* open --recovery: the recovery key instead of the KMS. */
static int open_recovery(struct cli *cli, const char *device, const char *name,
			 const char *key_file, uint32_t flags)
{
	static char key[512];
	size_t len = 0;
	int ex, r, slot = -1;

	ex = cli_read_recovery_key(cli, device, key_file, key, sizeof(key), &len);
	if (ex < 0) {
		r = kc_recovery_open(cli->ctx, device, name, key, len, flags, &slot);
		ex = r < 0 ? cli_fail(cli, r) : EXIT_OK;
	}
	explicit_bzero(key, sizeof(key));
	if (ex != EXIT_OK)
		return ex;
	if (cli->json) {
		json_object *out = cli_json_new(cli, "open");

		json_object_object_add(out, "device", json_object_new_string(device));
		cli_json_uuid(cli, out, device);
		json_object_object_add(out, "name", json_object_new_string(name));
		json_object_object_add(out, "recovery", json_object_new_boolean(true));
		json_object_object_add(out, "keyslot", json_object_new_int(slot));
		cli_print_json(cli, out);
	} else {
		printf("%s: opened as /dev/mapper/%s with the recovery key (keyslot %d)\n",
		       device, name, slot);
	}
	note_unfinished(cli, device, name);
	return EXIT_OK;
}

static int run_open(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		COMMON_LONGOPTS,
		{ "readonly", no_argument, NULL, 'r' },
		{ "allow-discards", no_argument, NULL, 0x200 },
		TOKEN_LONGOPT,
		{ "recovery", no_argument, NULL, 0x201 },
		{ "key-file", required_argument, NULL, 0x202 },
		{}
	};
	struct kc_unlock_result res = KC_SIZED(struct kc_unlock_result);
	const char *key_file = NULL, *token_arg = NULL;
	bool recovery = false;
	uint32_t flags = 0;
	int o, c, ex, r, token = -1;

	optind = 0;
	while ((c = getopt_long(argc, argv, COMMON_SHORTOPTS "r", opts, NULL)) != -1) {
		if ((o = cli_common_opt(cli, c, &verb_open, &ex)) == 2)
			return ex;
		if (o)
			continue;
		if (c == 'r')
			flags |= KC_OPEN_READONLY;
		else if (c == 0x200)
			flags |= KC_OPEN_ALLOW_DISCARDS;
		else if (c == 0x201)
			recovery = true;
		else if (c == 0x202)
			key_file = optarg;
		else if (c == OPT_TOKEN)
			token_arg = optarg;
	}
	if (optind + 2 != argc)
		return cli_usage_error(cli, "expected DEVICE NAME");
	if (key_file && !recovery)
		return cli_usage_error(cli, "--key-file goes with --recovery");
	if (recovery && token_arg)
		return cli_usage_error(cli, "--recovery and --token exclude each other");
	if ((ex = cli_ctx(cli)))
		return ex;
	if (!recovery && (ex = cli_token_id(cli, argv[optind], token_arg, &token)) >= 0)
		return ex;
	if (recovery)
		return open_recovery(cli, argv[optind], argv[optind + 1], key_file, flags);
	r = kc_open(cli->ctx, argv[optind], argv[optind + 1], token, flags,
		    0, &res);
	if (r < 0)
		return cli_fail_device(cli, argv[optind], r);
	if (cli->json) {
		json_object *out = cli_json_new(cli, "open");

		json_object_object_add(out, "device", json_object_new_string(argv[optind]));
		cli_json_uuid(cli, out, argv[optind]);
		json_object_object_add(out, "name", json_object_new_string(argv[optind + 1]));
		json_object_object_add(out, "recovery", json_object_new_boolean(false));
		json_object_object_add(out, "token", json_object_new_int(res.token_id));
		json_object_object_add(out, "kek", json_object_new_string(res.kek_uri));
		cli_print_json(cli, out);
	} else {
		printf("%s: opened as /dev/mapper/%s with token %d (%s)\n", argv[optind],
		       argv[optind + 1], res.token_id, res.kek_uri);
	}
	note_unfinished(cli, argv[optind], argv[optind + 1]);
	return EXIT_OK;
}

const struct verb verb_open = {
	.name = "open",
	.run = run_open,
	.header = true,
	.summary = "unwrap the data key and map the volume with dm-crypt",
	.usage = "open DEVICE NAME [OPTIONS]\n\n"
		 "Unwrap the data key through the kekcrypt tokens and create /dev/mapper/NAME.\n"
		 "The key reaches dm-crypt through the kernel keyring.\n\n"
		 "  -r, --readonly        map read-only\n"
		 "      --allow-discards  pass discards (TRIM) through\n"
		 "      --token ID|URI    try only this token (its ID, or its KEK's URI)\n"
		 "      --recovery        open with the recovery key instead (asked on the\n"
		 "                        terminal without echo; with or without dashes)\n"
		 "      --key-file FILE   with --recovery: read it from FILE ('-': stdin)\n",
};

static int run_close(struct cli *cli, int argc, char **argv)
{
	int ex, r;

	ex = cli_parse_common_only(cli, argc, argv, &verb_close);
	if (ex >= 0)
		return ex;
	if (optind + 1 != argc)
		return cli_usage_error(cli, "expected NAME");
	if ((ex = cli_ctx(cli)))
		return ex;
	r = kc_close(cli->ctx, argv[optind]);
	if (r < 0)
		return cli_fail(cli, r);
	if (!cli->json)
		printf("%s: closed\n", argv[optind]);
	return EXIT_OK;
}

const struct verb verb_close = {
	.name = "close",
	.run = run_close,
	.summary = "remove a mapping (refused while it is in use)",
	.usage = "close NAME\n\nRemove the dm-crypt mapping NAME; refused while it is in use.\n",
};

/* The fields of one mapping, added to O. */
static json_object *status_json(json_object *o, const struct kc_status *st)
{
	json_object_object_add(o, "name", json_object_new_string(st->name));
	json_object_object_add(o, "device", json_object_new_string(st->device));
	json_object_object_add(o, "cipher", json_object_new_string(st->cipher));
	json_object_object_add(o, "key_bits", json_object_new_int((int)st->key_bits));
	json_object_object_add(o, "sector_size", json_object_new_int((int)st->sector_size));
	json_object_object_add(o, "offset_sectors", json_object_new_int64((int64_t)st->offset_sectors));
	json_object_object_add(o, "size_sectors", json_object_new_int64((int64_t)st->size_sectors));
	json_object_object_add(o, "readonly", json_object_new_boolean(st->readonly));
	json_object_object_add(o, "in_use", json_object_new_boolean(st->in_use));
	json_object_object_add(o, "kekcrypt", json_object_new_boolean(st->is_kekcrypt));
	json_object_object_add(o, "uuid", json_object_new_string(st->uuid));
	json_object_object_add(o, "key_in_keyring", json_object_new_boolean(st->key_in_keyring));
	return o;
}

static void status_text(const struct kc_status *st)
{
	printf("/dev/mapper/%s is active%s%s.\n  device:      %s\n  cipher:      %s\n"
	       "  key size:    %zu bits%s\n  sector size: %u\n  offset:      %llu sectors\n"
	       "  size:        %llu sectors\n  kekcrypt:    %s\n", st->name,
	       st->in_use ? " and in use" : "", st->readonly ? " (read-only)" : "", st->device,
	       st->cipher, st->key_bits, st->key_in_keyring ? " (in kernel keyring)" : "",
	       st->sector_size, (unsigned long long)st->offset_sectors,
	       (unsigned long long)st->size_sectors, st->is_kekcrypt ? "yes" : "no");
	if (st->uuid[0])
		printf("  LUKS UUID:   %s\n", st->uuid);
}

static int status_all(struct cli *cli)
{
	json_object *arr;
	char **names = NULL;
	int n;

	n = kc_status_list(cli->ctx, &names);
	if (n < 0)
		return cli_fail(cli, n);
	arr = cli->json ? json_object_new_array() : NULL;
	for (int i = 0; i < n; i++) {
		struct kc_status st = KC_SIZED(struct kc_status);

		if (kc_status_get(cli->ctx, names[i], &st) < 0)
			continue;	/* closed meanwhile */
		if (arr)
			json_object_array_add(arr, status_json(json_object_new_object(), &st));
		else
			status_text(&st);
	}
	if (arr) {
		json_object *o = cli_json_new(cli, "status-all");

		json_object_object_add(o, "mappings", arr);
		cli_print_json(cli, o);
	} else if (!n) {
		printf("No active dm-crypt mapping.\n");
	}
	kc_strv_free(names);
	return EXIT_OK;
}

static int run_status(struct cli *cli, int argc, char **argv)
{
	struct kc_status st = KC_SIZED(struct kc_status);
	int ex, r;

	ex = cli_parse_common_only(cli, argc, argv, &verb_status);
	if (ex >= 0)
		return ex;
	if (optind + 1 < argc)
		return cli_usage_error(cli, "expected at most one NAME");
	if ((ex = cli_ctx(cli)))
		return ex;
	if (optind == argc)
		return status_all(cli);
	r = kc_status_get(cli->ctx, argv[optind], &st);
	if (r < 0)
		return cli_fail(cli, r);
	if (cli->json) {
		cli_print_json(cli, status_json(cli_json_new(cli, "status"), &st));
	} else {
		status_text(&st);
	}
	return EXIT_OK;
}

const struct verb verb_status = {
	.name = "status",
	.run = run_status,
	.summary = "show active mappings: device, cipher, key size, kekcrypt or not",
	.usage = "status [NAME] [--json]\n\nShow one dm-crypt mapping, or all of them.\n",
};
