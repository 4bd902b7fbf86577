/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * --crypttab of `kek rotate --if-newer` and `verify --all`: the same verb on every volume of
 * /etc/crypttab that kekcrypt protects (what kekcrypt-refresh.service runs), one result per
 * volume, one JSON document for them all.
 */
#include <stdio.h>
#include <string.h>
#include <limits.h>

#include "cli.h"
#include "crypttab.h"

/* Why the volume of DEVICE is not one to run on (NULL: it is), or its error in *R_ERR. */
static const char *crypttab_skip(struct cli *cli, const char *device, int *r_err)
{
	struct kc_volume_info *info = NULL;
	const char *why = NULL;
	int r = kc_volume_info_get(cli->ctx, device, &info);

	*r_err = 0;
	if (r == -ENOENT)
		why = "no such device";
	else if (r == -EMEDIUMTYPE)
		why = "not a LUKS2 volume";
	else if (r < 0)
		*r_err = r;
	else if (!kc_volume_info_n_tokens(info))
		why = "no kekcrypt token";
	kc_volume_info_free(info);
	return why;
}

/* One entry: FN's result (or why not) in text, and as a "volumes" element in ARR. */
static int crypttab_one(struct cli *cli, const struct crypttab_entry *e, cli_volume_fn fn,
			void *usrptr, json_object *arr)
{
	json_object *v = json_object_new_object(), *doc = NULL;
	char device[PATH_MAX], header[PATH_MAX];
	/* Each volume through its own detached header, if its line names one. */
	const char *skip, *status = "done", *h = crypttab_value(e, "header", header, sizeof(header));
	struct stat hst;
	bool seen = h && stat(h, &hst) == 0;
	int err, ex = EXIT_OK;

	crypttab_source_path(e->source, device, sizeof(device));
	err = kc_set_header(cli->ctx, h);
	skip = err ? NULL : crypttab_skip(cli, device, &err);
	if (!cli->json)
		printf("%s (%s)%s%s\n", e->name, device, skip ? ": skipped: " : ":", skip ?: "");
	if (err)
		ex = cli_fail(cli, err);
	else if (!skip)
		ex = fn(cli, device, usrptr, &doc);
	/* A header that the initramfs holds a copy of, changed: that copy is older now. */
	if (seen && cli_header_changed(h, &hst) && cli_header_in_initramfs(e, h))
		cli_header_note_entry(h, e->name);
	if (skip)
		status = "skipped";
	else if (ex)
		status = "failed";
	json_object_object_add(v, "name", json_object_new_string(e->name));
	json_object_object_add(v, "source", json_object_new_string(e->source));
	json_object_object_add(v, "device", json_object_new_string(device));
	json_object_object_add(v, "status", json_object_new_string(status));
	json_object_object_add(v, "reason", skip ? json_object_new_string(skip) : ex && !doc ?
			       json_object_new_string(cli->last_error) : NULL);
	json_object_object_add(v, "exit_code", json_object_new_int(ex));
	json_object_object_add(v, "result", doc);
	json_object_array_add(arr, v);
	return ex;
}

int cli_crypttab_run(struct cli *cli, const char *path, cli_volume_fn fn, void *usrptr)
{
	struct crypttab tab = { 0 };
	json_object *o, *arr;
	int r, ex = EXIT_OK, failed = 0;

	if (cli->header)
		return cli_usage_error(cli, "--header and --crypttab exclude each other: crypttab's "
				       "header= option names a volume's detached header");
	r = crypttab_read(path, &tab);
	if (r < 0) {
		cli_error(cli, "cannot read %s: %s", path ?: CRYPTTAB_PATH, strerror(-r));
		return cli_exit_code(r == -ENOENT ? -ENOENT : -EACCES);
	}
	o = cli_json_new(cli, "crypttab-run");
	arr = json_object_new_array();
	json_object_object_add(o, "verb", json_object_new_string(cli->verb));
	json_object_object_add(o, "crypttab", json_object_new_string(path ?: CRYPTTAB_PATH));
	for (size_t i = 0; i < tab.n; i++) {
		int one = crypttab_one(cli, &tab.entries[i], fn, usrptr, arr);

		failed += one != EXIT_OK;
		if (!ex)
			ex = one;
	}
	crypttab_clear(&tab);
	json_object_object_add(o, "volumes", arr);
	json_object_object_add(o, "failed", json_object_new_int(failed));
	if (cli->json)
		cli_print_json(cli, o);
	else
		json_object_put(o);
	return ex;
}
