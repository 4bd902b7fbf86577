/* SPDX-License-Identifier: GPL-2.0-or-later */
/* rekey: DEK rotation by LUKS2 re-encryption, with a progress display; resumable. */
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
	if (prog.printed)
		fputc('\n', stderr);
	if (r == -ECANCELED && stop_signal) {
		cli_error(cli, "%s: stopped by %s; the data is consistent. Continue with "
			  "'kekcrypt rekey --resume %s'.", argv[optind], strsignal(stop_signal),
			  argv[optind]);
		return cli_exit_code(r);
	}
	if (r < 0)
		return cli_fail(cli, r);
	return rekey_done(cli, argv[optind], &res);
}

const struct verb verb_rekey = {
	.name = "rekey",
	.run = run_rekey,
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
		 "                        keys, passphrases) exist: they are destroyed\n",
};
