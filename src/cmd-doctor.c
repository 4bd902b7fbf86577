/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * doctor: before a reboot, would the volumes that crypttab unlocks at boot through kekcrypt
 * unlock? Those with kekcrypt-keyscript (initramfs-tools), and those with no key file whose
 * header holds kekcrypt tokens (systemd-cryptsetup and the token plugin; dracut). For each:
 * the device, whether a KEK answers now, a recovery key to fall back on, and whether the
 * initramfs (or, for a volume unlocked after it, the system) holds what the unlock needs;
 * and that an initramfs holding secrets is readable by root only.
 */
#include <errno.h>
#include <getopt.h>
#include <glob.h>
#include <limits.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <blkid.h>

#include "cli.h"

extern char **environ;

#define KEYSCRIPT_NAME "kekcrypt-keyscript"
#define CONFIG_PATH "/etc/kekcrypt/kekcrypt.conf"
#define PLUGIN_PATH KC_TOKENDIR "/libcryptsetup-token-kekcrypt.so"
#define CA_BUNDLE "/etc/ssl/certs/ca-certificates.crt"

/* How crypttab has a volume unlocked. */
struct method {
	const char *keyscript;	/* kekcrypt-keyscript's path, or NULL: the token plugin */
	bool in_initramfs;	/* plugin: x-initrd.attach, force or initramfs */
};

/* The initramfs's file list (paths without a leading slash), one per line. */
struct listing {
	char *text;
	size_t len;
};

struct report {
	json_object *volumes;
	int errors, warnings;
	char secrets[2048];	/* the secret files found in the initramfs, ", "-separated */
};

/* lsinitrd lists like `ls -l` ("-rw-r--r-- 1 root root 12 Nov 23 11:06 etc/crypttab", links
 * with " -> TARGET"): keep the paths, one per line, as lsinitramfs prints them. */
static void keep_paths(struct listing *l)
{
	char *out = l->text, *line = l->text;

	while (line && *line) {
		char *end = strchr(line, '\n'), *arrow, *path;

		if (end)
			*end = 0;
		arrow = strstr(line, " -> ");
		if (arrow)
			*arrow = 0;
		path = strrchr(line, ' ');
		path = path ? path + 1 : line;
		memmove(out, path, strlen(path));
		out += strlen(path);
		*out++ = '\n';
		line = end ? end + 1 : NULL;
	}
	*out = 0;
	l->len = (size_t)(out - l->text);
}

/* Run `lsinitramfs FILE` and keep its output; lsinitrd (dracut) when that is missing. */
static int list_initramfs(const char *file, struct listing *l)
{
	static const char *const tools[] = { "lsinitramfs", "lsinitrd" };
	FILE *out = NULL;
	int r = -ENOENT;

	for (size_t i = 0; i < 2 && r == -ENOENT; i++) {
		char *argv[] = { (char *)tools[i], (char *)file, NULL };
		posix_spawn_file_actions_t fa;
		int fd[2], status;
		pid_t pid;

		if (pipe(fd) < 0)
			return -errno;
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_adddup2(&fa, fd[1], STDOUT_FILENO);
		posix_spawn_file_actions_addclose(&fa, fd[0]);
		posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", 1, 0);
		r = posix_spawnp(&pid, tools[i], &fa, NULL, argv, environ) ? -ENOENT : 0;
		posix_spawn_file_actions_destroy(&fa);
		close(fd[1]);
		if (r < 0) {
			close(fd[0]);
			continue;
		}
		out = open_memstream(&l->text, &l->len);
		if (out) {
			char buf[65536];
			ssize_t n;

			while ((n = read(fd[0], buf, sizeof(buf))) > 0)
				fwrite(buf, 1, (size_t)n, out);
			fclose(out);
		}
		close(fd[0]);
		if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) ||
		    !l->text)
			r = -EBADMSG;
		else if (i == 1)
			keep_paths(l);
	}
	return r;
}

/* Whether PATH (absolute, or relative to the initramfs root) is in the listing. */
static bool listed_exact(const struct listing *l, const char *path)
{
	char want[PATH_MAX + 2];

	snprintf(want, sizeof(want), "\n%s\n", path);
	return !strncmp(l->text, want + 1, strlen(want + 1)) || strstr(l->text, want);
}

/* Whether PATH is in the listing, also under usr/ or without it (usr-merged systems). */
static bool listed(const struct listing *l, const char *path)
{
	char usr[PATH_MAX];
	const char *p = path + (path[0] == '/');

	if (!l->text)
		return false;
	if (listed_exact(l, p))
		return true;
	if (!strncmp(p, "usr/", 4))
		return listed_exact(l, p + 4);
	snprintf(usr, sizeof(usr), "usr/%s", p);
	return listed_exact(l, usr);
}

/* Whether a kernel module NAME is in the listing (NAME.ko, also compressed). */
static bool module_listed(const struct listing *l, const char *name)
{
	char want[256];

	for (const char *s = l->text; s && (s = strstr(s, "/kernel/")); s++) {
		const char *end = strchr(s, '\n'), *base;

		end = end ?: s + strlen(s);
		for (base = end; base > s && base[-1] != '/'; base--)
			;
		snprintf(want, sizeof(want), "%s.ko", name);
		if ((size_t)(end - base) >= strlen(want) && !strncmp(base, want, strlen(want)))
			return true;
	}
	return false;
}

static void problem(json_object *v, struct report *rep, bool error, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void problem(json_object *v, struct report *rep, bool error, const char *fmt, ...)
{
	json_object *list, *p = json_object_new_object();
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_object_add(p, "severity", json_object_new_string(error ? "error" : "warning"));
	json_object_object_add(p, "message", json_object_new_string(msg));
	json_object_object_get_ex(v, "problems", &list);
	json_object_array_add(list, p);
	if (error)
		rep->errors++;
	else
		rep->warnings++;
}

/* The NIC drivers of this machine, for a remote KMS: at least one must be in the initramfs. */
static void check_nic_drivers(json_object *v, struct report *rep, const struct listing *l)
{
	bool any = false, found = false;
	glob_t g;

	if (glob("/sys/class/net/*/device/driver/module", 0, NULL, &g) == 0) {
		for (size_t i = 0; i < g.gl_pathc; i++) {
			char *mod = realpath(g.gl_pathv[i], NULL);

			if (!mod)
				continue;
			any = true;
			if (module_listed(l, strrchr(mod, '/') + 1))
				found = true;
			free(mod);
		}
		globfree(&g);
	}
	if (any && !found)
		problem(v, rep, true, "the initramfs has no driver for this machine's network "
			"cards, and a KEK is remote");
}

/* Note PATH, found in the initramfs, as a secret it holds. */
static void secret_add(struct report *rep, const char *path)
{
	size_t n = strlen(rep->secrets), len = strlen(path);

	for (const char *p = rep->secrets; (p = strstr(p, path)); p++)
		if ((p == rep->secrets || p[-1] == ' ') && (!p[len] || p[len] == ','))
			return;
	snprintf(rep->secrets + n, sizeof(rep->secrets) - n, "%s%s", n ? ", " : "", path);
}

/* Whether the files KEY names hold secrets: all but CA files, client certificates and PKCS#11
 * modules. The same rule as initramfs/boot-needs.sh, which has the hooks copy them. */
static bool key_names_secret(const char *key, const char *path)
{
	static const char *const open_keys[] = { "ca-file", "ca-path", "client-cert",
						 "client-certificate-file", "allowed-modules" };
	size_t n = strlen(path);

	for (size_t i = 0; i < sizeof(open_keys) / sizeof(open_keys[0]); i++)
		if (!strcmp(key, open_keys[i]))
			return false;
	return !strstr(path, ".so.") && (n < 3 || strcmp(path + n - 3, ".so"));
}

/* Whether PATH is one of the words of LIST (separated by spaces or commas). */
static bool in_list(const char *list, const char *path)
{
	size_t n = strlen(path), m;

	for (const char *p = list; *p; p += m) {
		p += strspn(p, " \t\r\n,");
		m = strcspn(p, " \t\r\n,");
		if (m && m == n && !strncmp(p, path, n))
			return true;
	}
	return false;
}

/* One file CONFIG names with KEY. */
static void config_file(json_object *v, struct report *rep, const struct listing *l,
			const char *config, const char *key, const char *path, bool *ca_file)
{
	if (!strcmp(key, "ca-file"))
		*ca_file = true;
	if (listed(l, path)) {
		if (key_names_secret(key, path))
			secret_add(rep, path);
	} else if (v) {
		problem(v, rep, true, "the initramfs lacks %s, named in %s (%s)", path, config,
			key);
	}
}

/* The files CONFIG names: every absolute path in a value, lists split at spaces and commas, as
 * initramfs/boot-needs.sh reads them (the hooks copy exactly these). Each must be in the
 * initramfs (a problem of V, unless V is NULL); the secret ones there are noted in REP.
 * *R_CA_FILE tells whether a ca-file is named; R_ALLOWED (SIZE bytes) gets [file]
 * allowed-paths. */
static void check_config_files(json_object *v, struct report *rep, const struct listing *l,
			       const char *config, bool *r_ca_file, char *r_allowed, size_t size)
{
	char line[4096], section[64] = "", key[64];
	FILE *f = fopen(config, "re");

	*r_ca_file = false;
	r_allowed[0] = 0;
	if (!f)
		return;
	/* The file may hold secrets: no stdio buffer keeps a copy, and the line is wiped. */
	setvbuf(f, NULL, _IONBF, 0);
	while (fgets(line, sizeof(line), f)) {
		char *save = NULL, *p;
		int n = 0;

		if (sscanf(line, " [ %63[^] \t] ]", section) == 1)
			continue;
		if (sscanf(line, " %63[a-z0-9-] =%n", key, &n) == 1 && n > 0) {
			if (!strcmp(section, "file") && !strcmp(key, "allowed-paths"))
				snprintf(r_allowed, size, "%s", line + n);
			for (p = strtok_r(line + n, " \t\r\n,", &save); p;
			     p = strtok_r(NULL, " \t\r\n,", &save))
				if (p[0] == '/')
					config_file(v, rep, l, config, key, p, r_ca_file);
		}
		explicit_bzero(line, sizeof(line));
	}
	fclose(f);
}

/* The path of a file: KEK URI (file:/PATH or file:///PATH). */
static const char *kek_file_path(const char *uri)
{
	const char *path = uri + strlen("file:");

	return strncmp(path, "///", 3) ? path : path + 2;
}

/* Token T's KEK file: in the initramfs if [file] allowed-paths (ALLOWED) names it; false
 * (and a warning) if it does not. */
static bool check_kek_file(json_object *v, struct report *rep, const struct listing *l,
			   const struct kc_token_info *t, const char *config, const char *allowed)
{
	const char *path = kek_file_path(t->kek_uri);

	if (listed(l, path))
		secret_add(rep, path);
	if (!in_list(allowed, path)) {
		problem(v, rep, false, "the KEK file %s of token %d is not in [file] allowed-paths "
			"of %s: not copied into the initramfs (a forged token, or add it there)",
			path, t->id, config);
		return false;
	}
	if (!listed(l, path))
		problem(v, rep, true, "the initramfs lacks the KEK file %s of token %d", path,
			t->id);
	return true;
}

/* The tokens' KEK files: in the initramfs if [file] allowed-paths (ALLOWED) names them, else a
 * warning: the hooks do not copy a file only a token names (a forged token, or one to add to
 * allowed-paths); an error when no token is left to unlock in the initramfs. Whether a KEK is
 * remote. */
static bool check_tokens(json_object *v, struct report *rep, const struct listing *l,
			 const struct kc_volume_info *info, const char *config, const char *allowed)
{
	bool remote = false;
	int usable = 0, refused = 0;

	for (size_t i = 0; i < kc_volume_info_n_tokens(info); i++) {
		const struct kc_token_info *t = kc_volume_info_token(info, i);

		if (t->valid < 0)
			continue;
		if (!strncmp(t->kek_uri, "file:", 5) &&
		    !check_kek_file(v, rep, l, t, config, allowed)) {
			refused++;
			continue;
		}
		if (strstr(t->kek_uri, "+https://"))
			remote = true;
		usable++;
	}
	if (refused && !usable)
		problem(v, rep, true, "no token can unlock it in the initramfs: each names a KEK "
			"file that %s does not allow", config);
	return remote;
}

/* What the initramfs must hold for this volume's tokens. */
static void check_initramfs(json_object *v, struct report *rep, const struct listing *l,
			    const struct method *m, const struct kc_volume_info *info,
			    const char *config)
{
	char self[PATH_MAX], allowed[4096];
	bool ca_file = false;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (m->keyscript) {
		if (n > 0) {
			self[n] = 0;
			if (!listed(l, self))
				problem(v, rep, true, "the initramfs lacks kekcrypt (%s)", self);
		}
		if (!listed(l, m->keyscript))
			problem(v, rep, true, "the initramfs lacks the keyscript %s", m->keyscript);
	} else if (!listed(l, PLUGIN_PATH))
		problem(v, rep, true, "the initramfs lacks the token plugin " PLUGIN_PATH
			" (with initramfs-tools, use keyscript=%s/" KEYSCRIPT_NAME ")",
			KC_KEYSCRIPTDIR);
	if (access(CONFIG_PATH, F_OK) == 0 && !listed(l, CONFIG_PATH))
		problem(v, rep, true, "the initramfs lacks " CONFIG_PATH);
	check_config_files(v, rep, l, config, &ca_file, allowed, sizeof(allowed));
	if (check_tokens(v, rep, l, info, config, allowed)) {
		check_nic_drivers(v, rep, l);
		if (!ca_file && !listed(l, CA_BUNDLE))
			problem(v, rep, true, "the initramfs lacks the CA bundle " CA_BUNDLE
				" (a KEK is remote and %s names no ca-file)", config);
	}
}

/* An initramfs that holds secrets (the configuration, credentials, KEK or PIN files) must be
 * readable by root only: a problem of IMG otherwise. */
static void check_image_mode(json_object *img, struct report *rep, const char *initramfs,
			     const struct listing *l, const char *config)
{
	char allowed[4096];
	struct stat st;
	bool ca_file;

	check_config_files(NULL, rep, l, config, &ca_file, allowed, sizeof(allowed));
	if (listed(l, config))
		secret_add(rep, config);
	if (listed(l, CONFIG_PATH))
		secret_add(rep, CONFIG_PATH);
	if (!rep->secrets[0] || stat(initramfs, &st) < 0 || !(st.st_mode & 044))
		return;
	problem(img, rep, true, "the initramfs %s is readable by %s (mode %04o) and holds "
		"secrets: %s; run chmod 600 %s, and build it with UMASK=0077 (initramfs-tools: "
		"kekcrypt's conf-hook sets it; dracut writes new images 0600)", initramfs,
		(st.st_mode & 040) && (st.st_mode & 004) ? "group and others" :
		(st.st_mode & 040) ? "group" : "others", (unsigned)(st.st_mode & 07777),
		rep->secrets, initramfs);
}

/* One crypttab volume; false (nothing reported) for a volume without a keyscript that turns
 * out not to be kekcrypt's. */
static bool check_volume(struct cli *cli, struct report *rep, const char *name,
			 const char *source, const struct method *m, const char *initramfs,
			 const struct listing *l)
{
	json_object *v;
	struct kc_volume_info *info = NULL;
	struct kc_unlock_result res = { 0 };
	struct kc_recovery_info rec[1];
	char *dev = blkid_evaluate_spec(source, NULL);
	int r, nrec = 0;

	/* The header, read once: a volume without our keyscript is ours only if it says so. */
	r = dev && !access(dev, F_OK) ? kc_volume_info_get(cli->ctx, dev, &info) : -ENOENT;
	if (!m->keyscript && (r < 0 || !kc_volume_info_n_tokens(info))) {
		kc_volume_info_free(info);
		free(dev);
		return false;
	}
	v = json_object_new_object();
	json_object_object_add(v, "name", json_object_new_string(name));
	json_object_object_add(v, "source", json_object_new_string(source));
	json_object_object_add(v, "method", json_object_new_string(m->keyscript ? "keyscript" :
								   "token-plugin"));
	json_object_object_add(v, "in_initramfs", json_object_new_boolean(m->keyscript ||
									  m->in_initramfs));
	json_object_object_add(v, "problems", json_object_new_array());
	json_object_array_add(rep->volumes, v);
	if (!dev || access(dev, F_OK)) {
		problem(v, rep, true, "device %s not found", source);
		goto out;
	}
	json_object_object_add(v, "device", json_object_new_string(dev));
	if (r < 0 || !kc_volume_info_n_tokens(info)) {
		problem(v, rep, true, "%s", r < 0 ? kc_error_detail(cli->ctx) :
			"the device has no kekcrypt token");
		goto out;
	}
	nrec = kc_recovery_list(cli->ctx, dev, rec, 1);
	json_object_object_add(v, "recovery_keys", json_object_new_int(nrec > 0 ? nrec : 0));
	r = kc_verify(cli->ctx, dev, -1, &res);
	if (r >= 0) {
		json_object_object_add(v, "unlocks_with_token", json_object_new_int(res.token_id));
	} else {
		json_object_object_add(v, "unlocks_with_token", NULL);
		problem(v, rep, nrec <= 0, "no KEK answers now: %s; %s",
			kc_error_detail(cli->ctx), nrec > 0 ?
			"the boot would wait for the deadline, then ask for the recovery key" :
			"and there is no recovery key: the boot would fail");
	}
	if (!m->keyscript && !m->in_initramfs) {
		/* Unlocked after the initramfs, by the system's own systemd-cryptsetup. */
		if (access(PLUGIN_PATH, F_OK))
			problem(v, rep, true, "the token plugin " PLUGIN_PATH " is not installed: "
				"systemd-cryptsetup would ask for a passphrase");
	} else if (l)
		check_initramfs(v, rep, l, m, info, cli->config ?: CONFIG_PATH);
	else
		problem(v, rep, true, "cannot list the initramfs %s (lsinitramfs or lsinitrd "
			"missing, or not an initramfs): its contents are not checked", initramfs);
out:
	json_object_object_add(v, "ok", json_object_new_boolean(
		json_object_array_length(json_object_object_get(v, "problems")) == 0));
	kc_volume_info_free(info);
	free(dev);
	return true;
}

/* Whether the comma-separated OPTIONS hold OPT (exactly, or as OPT=...). */
static bool has_option(const char *options, const char *opt)
{
	size_t n = strlen(opt);

	for (const char *p = options; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
		if (!strncmp(p, opt, n) && (p[n] == ',' || p[n] == '=' || !p[n]))
			return true;
	return false;
}

/* The keyscript named in a crypttab options field, when it is ours. */
static bool our_keyscript(const char *options, char *ks, size_t size)
{
	const char *p = strstr(options, "keyscript=");
	size_t n;

	if (!p)
		return false;
	p += strlen("keyscript=");
	n = strcspn(p, ",");
	if (n >= size || n < strlen(KEYSCRIPT_NAME) ||
	    strncmp(p + n - strlen(KEYSCRIPT_NAME), KEYSCRIPT_NAME, strlen(KEYSCRIPT_NAME)))
		return false;
	memcpy(ks, p, n);
	ks[n] = 0;
	return true;
}

static int check_crypttab(struct cli *cli, FILE *tab, struct report *rep,
			  const char *initramfs, const struct listing *l)
{
	char line[4096], name[256], source[1024], key[1024], options[2048], ks[PATH_MAX];
	int n = 0;

	while (fgets(line, sizeof(line), tab)) {
		char *p = line + strspn(line, " \t");
		struct method m = { 0 };

		if (*p == '#' || *p == '\n' || !*p)
			continue;
		options[0] = key[0] = 0;
		if (sscanf(p, "%255s %1023s %1023s %2047s", name, source, key, options) < 2)
			continue;
		if (our_keyscript(options, ks, sizeof(ks)))
			m.keyscript = ks;
		else if (has_option(options, "keyscript") ||
			 (strcmp(key, "none") && strcmp(key, "-") && key[0]))
			continue;	/* someone else's keyscript, or a key file */
		m.in_initramfs = has_option(options, "x-initrd.attach") ||
				 has_option(options, "force") || has_option(options, "initramfs");
		if (check_volume(cli, rep, name, source, &m, initramfs, l))
			n++;
	}
	return n;
}

/* "NAME: ok|warnings|FAILURE" and the problems, one per line. */
static void print_problems(const char *name, json_object *ps, const char *failure)
{
	bool error = false, warning = false;

	for (size_t j = 0; j < json_object_array_length(ps); j++) {
		json_object *sev = json_object_object_get(json_object_array_get_idx(ps, j),
							  "severity");

		if (!strcmp(json_object_get_string(sev), "error"))
			error = true;
		else
			warning = true;
	}
	printf("%s: %s\n", name, error ? failure : warning ? "warnings" : "ok");
	for (size_t j = 0; j < json_object_array_length(ps); j++) {
		json_object *p = json_object_array_get_idx(ps, j);

		printf("  %s: %s\n", json_object_get_string(json_object_object_get(p, "severity")),
		       json_object_get_string(json_object_object_get(p, "message")));
	}
}

static void print_text(const struct report *rep, const char *initramfs, json_object *img)
{
	json_object *ps;
	char name[PATH_MAX + 600];

	for (size_t i = 0; i < json_object_array_length(rep->volumes); i++) {
		json_object *v = json_object_array_get_idx(rep->volumes, i);

		snprintf(name, sizeof(name), "%s (%s)",
			 json_object_get_string(json_object_object_get(v, "name")),
			 json_object_get_string(json_object_object_get(v, "source")));
		json_object_object_get_ex(v, "problems", &ps);
		print_problems(name, ps, "WOULD FAIL");
	}
	json_object_object_get_ex(img, "problems", &ps);
	if (json_object_array_length(ps)) {
		snprintf(name, sizeof(name), "initramfs %s", initramfs);
		print_problems(name, ps, "EXPOSES SECRETS");
	}
	printf("%d error(s), %d warning(s)\n", rep->errors, rep->warnings);
}

static int run_doctor(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		COMMON_LONGOPTS,
		{ "crypttab", required_argument, NULL, 0x200 },
		{ "initramfs", required_argument, NULL, 0x201 },
		{ 0 },
	};
	const char *crypttab = "/etc/crypttab", *initramfs = NULL;
	char initramfs_buf[PATH_MAX];
	struct report rep = { 0 };
	struct listing l = { 0 };
	json_object *img;
	struct utsname u;
	int c, o, ex, n, lr;
	FILE *tab;

	while ((c = getopt_long(argc, argv, COMMON_SHORTOPTS, opts, NULL)) != -1) {
		if ((o = cli_common_opt(cli, c, &verb_doctor, &ex)) == 2)
			return ex;
		if (o)
			continue;
		if (c == 0x200)
			crypttab = optarg;
		else if (c == 0x201)
			initramfs = optarg;
	}
	if (optind != argc)
		return cli_usage_error(cli, "doctor takes no arguments");
	if (!initramfs && uname(&u) == 0) {
		snprintf(initramfs_buf, sizeof(initramfs_buf), "/boot/initrd.img-%s", u.release);
		initramfs = initramfs_buf;
	}
	if ((ex = cli_ctx(cli)))
		return ex;
	tab = fopen(crypttab, "re");
	if (!tab) {
		int e = errno;

		fprintf(stderr, "kekcrypt doctor: cannot read %s: %s\n", crypttab, strerror(e));
		return cli_exit_code(e == ENOENT ? -ENOENT : -EACCES);
	}
	lr = initramfs ? list_initramfs(initramfs, &l) : -ENOENT;
	rep.volumes = json_object_new_array();
	n = check_crypttab(cli, tab, &rep, initramfs ?: "(none)", lr == 0 ? &l : NULL);
	fclose(tab);
	img = json_object_new_object();
	json_object_object_add(img, "problems", json_object_new_array());
	if (n && lr == 0)
		check_image_mode(img, &rep, initramfs, &l, cli->config ?: CONFIG_PATH);
	if (cli->json) {
		json_object *out = json_object_new_object();

		json_object_object_add(out, "crypttab", json_object_new_string(crypttab));
		json_object_object_add(out, "initramfs", initramfs ?
				       json_object_new_string(initramfs) : NULL);
		json_object_object_add(out, "initramfs_checked", json_object_new_boolean(lr == 0));
		json_object_object_add(out, "initramfs_problems",
				       json_object_get(json_object_object_get(img, "problems")));
		json_object_object_add(out, "volumes", rep.volumes);
		json_object_object_add(out, "errors", json_object_new_int(rep.errors));
		json_object_object_add(out, "warnings", json_object_new_int(rep.warnings));
		json_object_object_add(out, "ok", json_object_new_boolean(!rep.errors && n));
		cli_print_json(out);
	} else {
		if (!n)
			printf("%s: no kekcrypt volume (" KEYSCRIPT_NAME ", or no key file and "
			       "kekcrypt tokens)\n", crypttab);
		print_text(&rep, initramfs, img);
		json_object_put(rep.volumes);
	}
	json_object_put(img);
	free(l.text);
	if (!n)
		return cli_exit_code(-ENOENT);
	return rep.errors ? EXIT_DOCTOR : EXIT_OK;
}

const struct verb verb_doctor = {
	.name = "doctor",
	.run = run_doctor,
	.summary = "check before a reboot that boot-time unlock would work",
	.usage = "doctor [--crypttab FILE] [--initramfs FILE] [--json]\n\n"
		 "For every crypttab volume unlocked by " KEYSCRIPT_NAME " (initramfs-tools),\n"
		 "or with no key file and kekcrypt tokens (systemd-cryptsetup with the token\n"
		 "plugin, e.g. dracut): the device exists and has kekcrypt tokens, a KEK answers\n"
		 "now (unwrap and check, nothing mapped), a recovery key exists to fall back on,\n"
		 "and the initramfs (default /boot/initrd.img-$(uname -r), listed with\n"
		 "lsinitramfs or lsinitrd) holds kekcrypt and the keyscript, or the plugin (for\n"
		 "x-initrd.attach volumes; the others need it installed), " CONFIG_PATH "\n"
		 "and the files it names (credentials, CA files; --config: another file's),\n"
		 "the KEK files it allows ([file] allowed-paths; a token naming another is\n"
		 "a warning, an error if no token is left) and, for a remote KMS, a driver\n"
		 "for this machine's network cards and the CA bundle (unless a ca-file is\n"
		 "named); and that the initramfs, if it holds secrets (the configuration,\n"
		 "credential or KEK files), is not readable by group or others. Exit 0 when\n"
		 "all is well, 24 when something would fail or a secret is exposed.\n\n"
		 "      --crypttab FILE   instead of /etc/crypttab\n"
		 "      --initramfs FILE  instead of the running kernel's initramfs\n",
};
