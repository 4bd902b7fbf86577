/* SPDX-License-Identifier: GPL-2.0-or-later */
/* rekey and encrypt: LUKS2 re-encryption (DEK rotation, in-place encryption) with a progress
 * display; resumable. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

/* SIGINT/SIGTERM stop after the current chunk (the library's callback returns non-zero). */
static void catch_signals(void)
{
	/* SA_RESTART: a signal landing in one of libcryptsetup's reads or writes must not fail
	 * that I/O with EINTR (seen as "re-encryption failed (Input/output error)"). */
	struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_RESTART };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

struct progress {
	bool json;		/* one JSON object per line on stdout */
	bool tty;		/* a progress line on stderr */
	double t0;		/* first call: seconds */
	uint64_t done0;		/* bytes done at the first call (earlier runs) */
	double last;		/* last line printed */
	bool printed;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void progress_line(const struct progress *p, uint64_t done, uint64_t total, double rate)
{
	double pct = total ? 100.0 * (double)done / (double)total : 100.0;
	char eta[32] = "--:--";

	if (rate > 0 && total >= done) {
		unsigned long s = (unsigned long)((double)(total - done) / rate + 0.5);

		snprintf(eta, sizeof(eta), "%lu:%02lu:%02lu", s / 3600, s / 60 % 60, s % 60);
	}
	fprintf(stderr, "\rProgress: %5.1f%%, %8.1f MiB/s, ETA %s, %llu of %llu MiB  ", pct,
		rate / (1024.0 * 1024.0), eta, (unsigned long long)(done >> 20),
		(unsigned long long)(total >> 20));
	fflush(stderr);
}

static int on_progress(uint64_t done, uint64_t total, void *usrptr)
{
	struct progress *p = usrptr;
	double t = now_s(), rate = 0;

	if (!p->t0) {
		p->t0 = t;
		p->done0 = done;
	}
	if (t > p->t0 && done >= p->done0)
		rate = (double)(done - p->done0) / (t - p->t0);
	if (p->json) {
		printf("{\"done\":%llu,\"total\":%llu,\"rate\":%.0f}\n", (unsigned long long)done,
		       (unsigned long long)total, rate);
		fflush(stdout);
	}
	/* At most 4 lines a second, and always the last one. */
	if (p->tty && (t - p->last >= 0.25 || done == total)) {
		progress_line(p, done, total, rate);
		p->last = t;
		p->printed = true;
	}
	return stop_signal != 0;
}

/* End the progress line on the terminal, if one was printed. */
static void finish_line(struct progress *p)
{
	if (p->printed)
		fputc('\n', stderr);
	p->printed = false;
}

/* The verb's error R; a stop by signal says how to continue. */
static int run_failed(struct cli *cli, struct progress *p, const char *device, int r)
{
	finish_line(p);
	if (r == -ECANCELED && stop_signal) {
		/* firstboot continues by itself; it has no --resume. */
		cli_error(cli, "%s: stopped by %s; the data is consistent. Continue with "
			  "'kekcrypt %s%s%s%s %s'.", device, strsignal(stop_signal), cli->verb,
			  strcmp(cli->verb, "firstboot") ? " --resume" : "",
			  cli->header ? " --header " : "", cli->header ?: "", device);
		return cli_exit_code(r);
	}
	return cli_fail(cli, r);
}

static int rekey_done(struct cli *cli, const char *device, const struct kc_rekey_result *res)
{
	if (cli->json) {
		json_object *out = cli_json_new(cli, "rekey");

		json_object_object_add(out, "device", json_object_new_string(device));
		cli_json_uuid(cli, out, device);
		json_object_object_add(out, "tokens", json_object_new_int(res->n_tokens));
		json_object_object_add(out, "resumed", json_object_new_boolean(res->resumed));
		json_object_object_add(out, "online", json_object_new_boolean(res->name[0]));
		if (res->name[0])
			json_object_object_add(out, "name", json_object_new_string(res->name));
		cli_print_json(cli, out);
	} else {
		printf("%s: data key rotated%s%s%s; %d token(s) now wrap the new key\n", device,
		       res->resumed ? " (resumed)" : "", res->name[0] ? ", online through " : "",
		       res->name, res->n_tokens);
	}
	return EXIT_OK;
}

static int run_rekey(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		COMMON_LONGOPTS,
		{ "resume", no_argument, NULL, 0x200 },
		{ "progress-json", no_argument, NULL, 0x201 },
		{ "resilience", required_argument, NULL, 0x202 },
		{ "force", no_argument, NULL, 0x203 },
		{}
	};
	struct progress prog = { .tty = isatty(STDERR_FILENO) };
	struct kc_rekey_result res = KC_SIZED(struct kc_rekey_result);
	uint32_t flags = 0;
	int o, c, ex, r;

	optind = 0;
	while ((c = getopt_long(argc, argv, COMMON_SHORTOPTS, opts, NULL)) != -1) {
		if ((o = cli_common_opt(cli, c, &verb_rekey, &ex)) == 2)
			return ex;
		if (o)
			continue;
		if (c == 0x200)
			flags |= KC_REKEY_RESUME;
		else if (c == 0x201)
			prog.json = true;
		else if (c == 0x203)
			flags |= KC_REKEY_FORCE;
		else if (c == 0x202 && !strcmp(optarg, "checksum"))
			flags = (flags & ~(uint32_t)KC_REKEY_JOURNAL) | KC_REKEY_CHECKSUM;
		else if (c == 0x202 && !strcmp(optarg, "journal"))
			flags = (flags & ~(uint32_t)KC_REKEY_CHECKSUM) | KC_REKEY_JOURNAL;
		else if (c == 0x202)
			return cli_usage_error(cli, "invalid --resilience '%s' (checksum or journal)",
					       optarg);
	}
	if (optind + 1 != argc)
		return cli_usage_error(cli, "expected DEVICE");
	if (prog.json && cli->json)
		return cli_usage_error(cli, "--progress-json and --json exclude each other");
	if ((ex = cli_ctx(cli)))
		return ex;
	catch_signals();
	r = kc_rekey(cli->ctx, argv[optind], flags, on_progress, &prog, &res);
	if (r < 0)
		return run_failed(cli, &prog, argv[optind], r);
	finish_line(&prog);
	return rekey_done(cli, argv[optind], &res);
}

const struct verb verb_rekey = {
	.name = "rekey",
	.run = run_rekey,
	.header = true,
	.summary = "rotate the data key: re-encrypt the volume (online, resumable)",
	.usage = "rekey DEVICE [--resume] [--progress-json] [--resilience checksum|journal]\n\n"
		 "Generate a new data key, wrap it under every KEK of the volume, and re-encrypt\n"
		 "the data with it (LUKS2 re-encryption): online through the active mapping of\n"
		 "DEVICE when it is open, offline otherwise. The old tokens are removed at the\n"
		 "end. SIGINT/SIGTERM stop after the current chunk; an interrupted rekey (also\n"
		 "by a crash or power loss) is continued by 'rekey' or 'rekey --resume'.\n\n"
		 "      --resume          only continue an interrupted rekey\n"
		 "      --progress-json   one JSON object per chunk on stdout:\n"
		 "                        {\"done\":BYTES,\"total\":BYTES,\"rate\":BYTES_PER_S}\n"
		 "      --resilience M    checksum (default) or journal\n"
		 "      --force           also when keyslots without a kekcrypt token (recovery\n"
		 "                        keys, passphrases) exist: they are destroyed\n"
		 "With --header FILE (a detached header), offline or online alike.\n",
};

/* encrypt's report: what it found (--dry-run) or did. */
static void encrypt_report(struct cli *cli, const char *device, const struct kc_encrypt_result *res,
			   bool dry, const char *rkey, int rslot)
{
	if (cli->json) {
		json_object *out = cli_json_new(cli, "encrypt");

		json_object_object_add(out, "device", json_object_new_string(device));
		json_object_object_add(out, "header", cli->header ?
				       json_object_new_string(cli->header) : NULL);
		json_object_object_add(out, "uuid", res->uuid[0] ?
				       json_object_new_string(res->uuid) : NULL);
		json_object_object_add(out, "dry_run", json_object_new_boolean(dry));
		json_object_object_add(out, "resumed", json_object_new_boolean(res->resumed));
		json_object_object_add(out, "content", json_object_new_string(res->content));
		json_object_object_add(out, "device_bytes",
				       json_object_new_int64((int64_t)res->device_bytes));
		json_object_object_add(out, "content_bytes",
				       json_object_new_int64((int64_t)res->content_bytes));
		json_object_object_add(out, "header_bytes",
				       json_object_new_int64((int64_t)res->header_bytes));
		json_object_object_add(out, "reserved_bytes",
				       json_object_new_int64((int64_t)res->reserved_bytes));
		json_object_object_add(out, "shrunk_to_bytes",
				       json_object_new_int64((int64_t)res->shrunk_to_bytes));
		json_object_object_add(out, "online", json_object_new_boolean(res->name[0]));
		json_object_object_add(out, "name", res->name[0] ?
				       json_object_new_string(res->name) : NULL);
		json_object_object_add(out, "mount_point", res->mount_point[0] ?
				       json_object_new_string(res->mount_point) : NULL);
		cli_new_volume_recovery_print(out, rkey, rslot);
		cli_print_json(cli, out);
		return;
	}
	if (dry && res->resumed) {
		printf("%s: an interrupted encryption would be resumed%s%s\n", device,
		       res->name[0] ? ", online through /dev/mapper/" : "", res->name);
		return;
	}
	if (dry) {
		char used[64] = "";

		if (res->content_bytes)
			snprintf(used, sizeof(used), ", %llu MiB used",
				 (unsigned long long)(res->content_bytes >> 20));
		if (res->shrunk_to_bytes)
			printf("%s: its filesystem would be checked (e2fsck -f -p) and shrunk to %llu "
			       "MiB first.\n", device, (unsigned long long)(res->shrunk_to_bytes >> 20));
		if (cli->header) {
			printf("%s: %llu MiB holding %s%s. Its LUKS2 header would go to the new file "
			       "%s and its data be encrypted where it is. Nothing was written.\n",
			       device, (unsigned long long)(res->device_bytes >> 20),
			       res->content[0] ? res->content : "data libblkid does not know", used,
			       cli->header);
			return;
		}
		if (res->mount_point[0])
			printf("%s: it would be unmounted from %s first, and mounted there again "
			       "from /dev/mapper/%s as soon as that is open.\n", device,
			       res->mount_point, res->name);
		printf("%s: %llu MiB holding %s%s. It would get a %llu MiB LUKS2 header in front, "
		       "its data moved back by as much, and use its last %llu MiB while "
		       "encrypting%s%s%s. Nothing was written.\n", device,
		       (unsigned long long)(res->device_bytes >> 20),
		       res->content[0] ? res->content : "data libblkid does not know", used,
		       (unsigned long long)(res->header_bytes >> 20),
		       (unsigned long long)(res->reserved_bytes >> 20),
		       res->name[0] ? ", online: opened as /dev/mapper/" : "", res->name,
		       res->name[0] ? " first, usable at once" : "");
		return;
	}
	if (res->shrunk_to_bytes)
		printf("%s: filesystem checked and shrunk to %llu MiB\n", device,
		       (unsigned long long)(res->shrunk_to_bytes >> 20));
	printf("%s: encrypted in place%s%s%s%s%s; LUKS2 UUID %s\n", device,
	       res->resumed ? " (resumed)" : "", res->name[0] ? ", online through " : "",
	       res->name, res->mount_point[0] ? ", mounted at " : "", res->mount_point, res->uuid);
	cli_new_volume_recovery_print(NULL, rkey, rslot);
}

static int run_encrypt(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		COMMON_LONGOPTS,
		FORMAT_LONGOPTS,
		{ "resume", no_argument, NULL, 0x200 },
		{ "progress-json", no_argument, NULL, 0x201 },
		{ "dry-run", no_argument, NULL, 0x202 },
		{ "recovery", no_argument, NULL, 0x203 },
		{ "shrink", no_argument, NULL, 0x204 },
		{ "remount", no_argument, NULL, 0x205 },
		RECOVERY_PBKDF_LONGOPTS,
		{}
	};
	struct kc_recovery_params rp = KC_SIZED(struct kc_recovery_params);
	struct kc_encrypt_result res = KC_SIZED(struct kc_encrypt_result);
	struct progress prog = { .tty = isatty(STDERR_FILENO) };
	const char *keks[CLI_MAX_KEKS];
	struct kc_format_params p = { .size = sizeof(p), .kek_uris = keks };
	bool recovery = false;
	char *rkey = NULL;
	uint32_t flags = 0;
	int o, c, ex, r, rslot = -1;

	optind = 0;
	while ((c = getopt_long(argc, argv, COMMON_SHORTOPTS FORMAT_SHORTOPTS, opts, NULL)) != -1) {
		if ((o = cli_common_opt(cli, c, &verb_encrypt, &ex)) == 2)
			return ex;
		if (o)
			continue;
		if ((o = cli_recovery_opt(cli, c, &rp)) < 0 || (!o && (o = cli_format_opt(cli, c, &p)) < 0))
			return -o;
		if (o)
			continue;
		if (c == 0x200)
			flags |= KC_ENCRYPT_RESUME;
		else if (c == 0x201)
			prog.json = true;
		else if (c == 0x202)
			flags |= KC_ENCRYPT_DRY_RUN;
		else if (c == 0x203)
			recovery = true;
		else if (c == 0x204)
			flags |= KC_ENCRYPT_SHRINK;
		else if (c == 0x205)
			flags |= KC_ENCRYPT_REMOUNT;
	}
	if (optind + 1 != argc && optind + 2 != argc)
		return cli_usage_error(cli, "expected DEVICE, or DEVICE NAME (online)");
	if (!p.n_keks && !(flags & KC_ENCRYPT_RESUME))
		return cli_usage_error(cli, "at least one --kek URI is required (or --resume)");
	if (prog.json && cli->json)
		return cli_usage_error(cli, "--progress-json and --json exclude each other");
	if ((flags & KC_ENCRYPT_REMOUNT) && optind + 2 != argc)
		return cli_usage_error(cli, "--remount is online: give DEVICE NAME");
	if (recovery && (flags & KC_ENCRYPT_DRY_RUN))
		return cli_usage_error(cli, "--recovery and --dry-run exclude each other");
	if (cli->header && (flags & KC_ENCRYPT_SHRINK))
		return cli_usage_error(cli, "--shrink and --header exclude each other: with a "
				       "detached header the data does not move");
	if ((ex = cli_ctx(cli)))
		return ex;
	catch_signals();
	r = kc_encrypt_online(cli->ctx, argv[optind], argv[optind + 1], &p, flags, on_progress,
			      &prog, &res);
	if (r < 0)
		return run_failed(cli, &prog, argv[optind], r);
	finish_line(&prog);
	if (recovery && (ex = cli_new_volume_recovery(cli, argv[optind], "encrypted", &rp, &rkey,
						     &rslot)))
		return ex;
	encrypt_report(cli, argv[optind], &res, flags & KC_ENCRYPT_DRY_RUN, rkey, rslot);
	fflush(stdout);
	kc_recovery_key_free(rkey);
	return EXIT_OK;
}

const struct verb verb_encrypt = {
	.name = "encrypt",
	.run = run_encrypt,
	.header = true,
	.summary = "encrypt a device that holds data, in place (online or offline, resumable)",
	.usage = "encrypt DEVICE [NAME] --kek URI [--kek URI ...] [OPTIONS]\n"
		 "encrypt DEVICE [NAME] --resume\n\n"
		 "Make DEVICE, which holds a filesystem, a kekcrypt volume holding the same data:\n"
		 "a random data key wrapped by each KEK, the data encrypted in place by LUKS2\n"
		 "re-encryption. The device must be neither mounted nor mapped. With NAME it is\n"
		 "online: the volume is opened as /dev/mapper/NAME as soon as its header is\n"
		 "written (mount it from there at once) and encrypted through that mapping;\n"
		 "--remount unmounts a mounted DEVICE first and mounts its filesystem there\n"
		 "again from /dev/mapper/NAME, with the same options, as soon as that is open.\n"
		 "Without NAME, offline, unless the volume is open (an online run to resume).\n"
		 "A 16 MiB header goes in front and the data moves back by as much, so the\n"
		 "filesystem must leave the device's last 32 MiB free (ext2/3/4 are checked;\n"
		 "--shrink shrinks them).\n"
		 "With --header FILE (a new file) the header goes there instead: the data stays\n"
		 "where it is, no room is needed, and FILE is then needed to open the volume.\n"
		 "SIGINT/SIGTERM stop after the current chunk; an interrupted encryption (also by\n"
		 "a crash or power loss) is continued by the same command or --resume, naming the\n"
		 "device by the same path (and the same --header FILE); online through the\n"
		 "volume's mapping when it is open, else opened as NAME when given.\n\n"
		 FORMAT_USAGE
		 "  -f, --force          also when what the device holds cannot be sized\n"
		 "      --resume         only continue an interrupted encryption\n"
		 "      --shrink         shrink an ext2/3/4 filesystem that leaves too little\n"
		 "                       room (e2fsck -f -p, then resize2fs)\n"
		 "      --remount        online: unmount DEVICE, mount the mapping there instead\n"
		 "      --dry-run        check and say what would happen; write nothing\n"
		 "      --progress-json  one JSON object per chunk on stdout (as rekey's)\n"
		 "      --recovery       also add a recovery key, printed once\n",
};

/* ---------------------------------------------------------------------------------------- */
/* firstboot and template: the first boot of a clone of a template image.                    */

const char *cli_template_state(int state)
{
	static const char *const names[] = { [KC_TEMPLATE_NONE] = "none",
					     [KC_TEMPLATE_MARKED] = "template",
					     [KC_TEMPLATE_REKEYED] = "rekeyed" };

	return state >= 0 && state <= KC_TEMPLATE_REKEYED ? names[state] : "invalid";
}

/* {"schema": "kekcrypt.NAME/1", "device", "uuid", "mark": STATE}. */
static json_object *template_json(struct cli *cli, const char *name, const char *device, int state)
{
	json_object *out = cli_json_new(cli, name);

	json_object_object_add(out, "device", json_object_new_string(device));
	cli_json_uuid(cli, out, device);
	json_object_object_add(out, "mark", json_object_new_string(cli_template_state(state)));
	return out;
}

struct firstboot_args {
	uint32_t flags;
	struct progress prog;
};

static void firstboot_text(const char *device, const struct kc_firstboot_result *res)
{
	if (res->state == KC_TEMPLATE_NONE) {
		printf("%s: no template mark; nothing to do\n", device);
		return;
	}
	printf("%s: %s", device, res->rekeyed ? "data key rotated" : "re-keyed before");
	if (res->resumed)
		printf(" (resumed)");
	if (res->keks_added || res->tokens_removed)
		printf("; %d KEK(s) of [firstboot] added, %d other token(s) removed",
		       res->keks_added, res->tokens_removed);
	printf("; template mark removed; %d token(s)\n", res->n_tokens);
}

/* firstboot on DEVICE (a cli_volume_fn). */
static int firstboot_one(struct cli *cli, const char *device, void *usrptr, json_object **r_doc)
{
	struct firstboot_args *a = usrptr;
	struct kc_firstboot_result res = KC_SIZED(struct kc_firstboot_result);
	json_object *out;
	int r;

	r = kc_firstboot(cli->ctx, device, a->flags, on_progress, &a->prog, &res);
	if (r < 0)
		return run_failed(cli, &a->prog, device, r);
	finish_line(&a->prog);
	if (!cli->json) {
		firstboot_text(device, &res);
		return EXIT_OK;
	}
	out = template_json(cli, "firstboot", device, res.state);
	json_object_object_add(out, "rekeyed", json_object_new_boolean(res.rekeyed));
	json_object_object_add(out, "resumed", json_object_new_boolean(res.resumed));
	json_object_object_add(out, "keks_added", json_object_new_int(res.keks_added));
	json_object_object_add(out, "tokens_removed", json_object_new_int(res.tokens_removed));
	json_object_object_add(out, "tokens", json_object_new_int(res.n_tokens));
	*r_doc = out;
	return EXIT_OK;
}

static int run_firstboot(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		COMMON_LONGOPTS, CRYPTTAB_LONGOPT,
		{ "progress-json", no_argument, NULL, 0x201 },
		{ "force", no_argument, NULL, 0x203 },
		{}
	};
	struct firstboot_args a = { .prog.tty = isatty(STDERR_FILENO) };
	const char *crypttab_path = NULL;
	bool crypttab = false;
	json_object *doc = NULL;
	int o, c, ex;

	optind = 0;
	while ((c = getopt_long(argc, argv, COMMON_SHORTOPTS, opts, NULL)) != -1) {
		if ((o = cli_common_opt(cli, c, &verb_firstboot, &ex)) == 2)
			return ex;
		if (o)
			continue;
		if (c == 0x201)
			a.prog.json = true;
		if (c == 0x203)
			a.flags |= KC_REKEY_FORCE;
		if (c == OPT_CRYPTTAB) {
			crypttab = true;
			crypttab_path = optarg;
		}
	}
	if (crypttab ? optind != argc : optind + 1 != argc)
		return cli_usage_error(cli, "expected one DEVICE, or --crypttab[=PATH] alone");
	if (a.prog.json && cli->json)
		return cli_usage_error(cli, "--progress-json and --json exclude each other");
	if ((ex = cli_ctx(cli)))
		return ex;
	catch_signals();
	if (crypttab)
		return cli_crypttab_run(cli, crypttab_path, firstboot_one, &a);
	ex = firstboot_one(cli, argv[optind], &a, &doc);
	if (doc)
		cli_print_json(cli, doc);
	return ex;
}

const struct verb verb_firstboot = {
	.name = "firstboot",
	.run = run_firstboot,
	.header = true,
	.summary = "re-key a clone of a template image at its first boot",
	.usage = "firstboot [--header FILE] DEVICE|--crypttab[=PATH] [--progress-json] [--force]\n\n"
		 "When DEVICE carries a template mark ('format --template', 'template mark'), give\n"
		 "it a data key of its own (as 'rekey': online when mapped, resumable), then move\n"
		 "its tokens to the KEKs of the [firstboot] section of the configuration (when it\n"
		 "has one: each added and checked before the others are removed), then remove the\n"
		 "mark. Without a mark it does nothing. An interrupted run is continued by the\n"
		 "next one. kekcrypt-firstboot.service runs 'firstboot --crypttab' at boot.\n\n"
		 "      --crypttab[=PATH] every kekcrypt volume of /etc/crypttab (or PATH)\n"
		 "      --progress-json   the rekey's progress, one JSON object per chunk on\n"
		 "                        stdout (as rekey's)\n"
		 "      --force           also when keyslots without a kekcrypt token (recovery\n"
		 "                        keys, passphrases) exist: they are destroyed\n",
};

static int run_template(struct cli *cli, int argc, char **argv)
{
	const char *sub, *device;
	bool mark;
	int ex, r;

	if ((ex = cli_parse_common_only(cli, argc, argv, &verb_template)) >= 0)
		return ex;
	if (optind + 2 != argc)
		return cli_usage_error(cli, "expected mark|clear|show DEVICE");
	sub = argv[optind];
	device = argv[optind + 1];
	if (strcmp(sub, "mark") && strcmp(sub, "clear") && strcmp(sub, "show"))
		return cli_usage_error(cli, "unknown 'template %s'; expected mark, clear or show",
				       sub);
	cli->verb = !strcmp(sub, "mark") ? "template mark" : !strcmp(sub, "clear") ?
		    "template clear" : "template show";
	if ((ex = cli_ctx(cli)))
		return ex;
	mark = !strcmp(sub, "mark");
	r = strcmp(sub, "show") ? kc_template_mark(cli->ctx, device, mark) : 0;
	if (r >= 0)
		r = kc_template_get(cli->ctx, device);
	if (r < 0)
		return cli_fail_device(cli, device, r);
	if (!cli->json) {
		printf("%s: template mark: %s\n", device, cli_template_state(r));
		return EXIT_OK;
	}
	cli_print_json(cli, template_json(cli, "template", device, r));
	return EXIT_OK;
}

const struct verb verb_template = {
	.name = "template",
	.run = run_template,
	.header = true,
	.summary = "mark a volume of an image template, for 'firstboot' on its clones",
	.usage = "template mark|clear|show DEVICE\n\n"
		 "mark:  mark DEVICE as a volume of an image template: each clone of the image\n"
		 "       holds the same data key until 'kekcrypt firstboot' gives it one of its own\n"
		 "clear: remove the mark\n"
		 "show:  say whether DEVICE carries a mark (none, template, or rekeyed: a\n"
		 "       firstboot was interrupted after the rekey)\n",
};
