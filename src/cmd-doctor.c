/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * doctor: before a reboot, would the volumes that crypttab unlocks at boot through kekcrypt
 * unlock? Those with kekcrypt-keyscript (initramfs-tools), and those with no key file whose
 * header holds kekcrypt tokens (systemd-cryptsetup and the token plugin; dracut). For each:
 * the device, whether a KEK answers now, a recovery key to fall back on, and whether the
 * initramfs (or, for a volume unlocked after it, the system) holds what the unlock needs;
 * and that an initramfs holding secrets is readable by root only. First of all, the
 * configuration itself, as `config check` sees it.
 */
#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <glob.h>
#include <limits.h>
#include <link.h>
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
#include "crypttab.h"
#include "initramfs-list.h"

extern char **environ;

#define KEYSCRIPT_NAME "kekcrypt-keyscript"
#define CONFIG_PATH CLI_CONFIG_PATH
#define PLUGIN_PATH KC_TOKENDIR "/libcryptsetup-token-kekcrypt.so"

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

/* The initramfs's file list: read with libarchive (initramfs-list.c); without it, the output
 * of `lsinitramfs FILE`, or of lsinitrd (dracut) when that is missing. */
static int list_initramfs(const char *file, struct listing *l)
{
	static const char *const tools[] = { "lsinitramfs", "lsinitrd" };
	FILE *out = NULL;
	int r = initramfs_list(file, &l->text, &l->len);

	if (r != -ENOTSUP)
		return r;
	r = -ENOENT;

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

/* What a boot needs (kc_boot_needs(), the list the hooks copy), held against the initramfs
 * listing: each need of a volume must be there (V, when checking one), and the secrets found
 * there are noted in REP. */
struct need_check {
	json_object *v;			/* the volume, or NULL: only note the secrets */
	struct report *rep;
	const struct listing *l;
	const char *config;		/* --config, which the boot reads at CONFIG_PATH */
	bool network;
};

/* The loaded object whose file is named SONAME, or NULL. */
static struct link_map *loaded_soname(struct link_map *head, const char *soname)
{
	for (struct link_map *m = head; m; m = m->l_next) {
		const char *base = strrchr(m->l_name, '/');

		if (base && !strcmp(base + 1, soname))
			return m;
	}
	return NULL;
}

/* A library kekcrypt dlopen()s is in the initramfs: so must be every library it links, which
 * no tool finds from kekcrypt's own ELF dependencies. Kekcrypt has it loaded (listing the
 * boot needs loads it), so the dynamic linker knows them: its DT_NEEDED entries, followed
 * through the loaded objects, each once. */
static void check_library_links(struct need_check *nc, const char *path, const char *what)
{
	struct link_map *seen[128], *head, *m;
	size_t n = 0, done = 0;
	void *h = dlopen(path, RTLD_LAZY | RTLD_NOLOAD);

	if (!h)
		return;
	if (dlinfo(h, RTLD_DI_LINKMAP, &m) < 0 || !m) {
		dlclose(h);
		return;
	}
	for (head = m; head->l_prev; head = head->l_prev)
		;
	seen[n++] = m;
	while (done < n) {
		const ElfW(Dyn) *d;
		const char *strtab = NULL;

		m = seen[done++];
		for (d = m->l_ld; d && d->d_tag != DT_NULL; d++)
			if (d->d_tag == DT_STRTAB)
				strtab = (const char *)d->d_un.d_ptr;
		for (d = m->l_ld; strtab && d->d_tag != DT_NULL; d++) {
			struct link_map *dep;
			size_t i;

			if (d->d_tag != DT_NEEDED ||
			    !(dep = loaded_soname(head, strtab + d->d_un.d_val)))
				continue;
			for (i = 0; i < n && seen[i] != dep; i++)
				;
			if (i < n || n == sizeof(seen) / sizeof(seen[0]))
				continue;
			seen[n++] = dep;
			if (!listed(nc->l, dep->l_name))
				problem(nc->v, nc->rep, true, "the initramfs lacks %s, which %s links "
					"(%s)", dep->l_name, path, what);
		}
	}
	dlclose(h);
}

static int check_need(int kind, const char *path, const char *what, void *usrptr)
{
	struct need_check *nc = usrptr;

	/* The hooks copy the configuration from its place, whatever --config says here. */
	if (nc->config && path && !strcmp(path, nc->config)) {
		if (access(CONFIG_PATH, F_OK) < 0)
			return 0;
		path = CONFIG_PATH;
	}
	switch (kind) {
	case KC_BOOT_SECRET:
	case KC_BOOT_FILE:
	case KC_BOOT_LIBRARY:
		if (listed(nc->l, path)) {
			if (kind == KC_BOOT_SECRET)
				secret_add(nc->rep, path);
			if (kind == KC_BOOT_LIBRARY && nc->v)
				check_library_links(nc, path, what);
		} else if (nc->v) {
			problem(nc->v, nc->rep, true, "the initramfs lacks %s (%s)", path, what);
		}
		break;
	case KC_BOOT_NETWORK:
		nc->network = true;
		break;
	case KC_BOOT_MISSING:
		/* The image may still hold it; the next build would fail. */
		if (nc->v && listed(nc->l, path))
			problem(nc->v, nc->rep, false, "%s (%s) is missing here: the initramfs has "
				"it, but the next build would fail", path, what);
		else if (nc->v)
			problem(nc->v, nc->rep, true, "the initramfs lacks %s (%s), which is "
				"missing here too", path, what);
		break;
	case KC_BOOT_UNLISTED:
		if (nc->v)
			problem(nc->v, nc->rep, false, "%s: not copied into the initramfs (a forged "
				"token, or add its file to the configuration)", what);
		break;
	case KC_BOOT_UNUSABLE:
		if (nc->v)
			problem(nc->v, nc->rep, true, "%s", what);
		break;
	}
	return 0;
}

/* The initramfs's copy of the volume's detached HEADER (the hook and the module copy it, and
 * the boot reads that copy) must be the header as it is now: a token, recovery key or rekey
 * written since is not in a copy made before, and a copy from before a rekey maps the volume
 * with its old key. */
static void check_header_copy(json_object *v, struct report *rep, const char *initramfs,
			      const struct listing *l, const char *header)
{
	int r;

	if (!listed(l, header))
		return;	/* check_need() said it lacks it */
	r = initramfs_same(initramfs, header, header);
	if (r == 1)
		problem(v, rep, true, "the initramfs holds an older copy of the detached header %s, "
			"which the boot reads: build the initramfs again (update-initramfs -u, or "
			"dracut -f)", header);
	else if (r < 0 && r != -ENOENT)
		problem(v, rep, false, "cannot tell whether the initramfs's copy of the detached "
			"header %s is current: %s", header, r == -ENOTSUP ? "libarchive is not "
			"installed" : strerror(-r));
}

/* What the initramfs INITRAMFS (listed in L) must hold for this volume (DEVICE, through its
 * detached HEADER when not NULL). */
static void check_initramfs(struct cli *cli, json_object *v, struct report *rep,
			    const struct listing *l, const struct method *m, const char *device,
			    const char *initramfs, const char *header)
{
	struct need_check nc = { .v = v, .rep = rep, .l = l, .config = cli->config };
	char self[PATH_MAX];
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
	if (kc_boot_needs(cli->ctx, &device, 1, check_need, &nc) < 0)
		problem(v, rep, true, "cannot tell what the boot needs: %s",
			kc_error_detail(cli->ctx));
	if (nc.network)
		check_nic_drivers(v, rep, l);
	if (header)
		check_header_copy(v, rep, initramfs, l, header);
}

/* An initramfs that holds secrets (the configuration, credentials, KEK or PIN files) must be
 * readable by root only: a problem of IMG otherwise. */
static void check_image_mode(struct cli *cli, json_object *img, struct report *rep,
			     const char *initramfs, const struct listing *l)
{
	struct need_check nc = { .rep = rep, .l = l, .config = cli->config };
	struct stat st;

	(void)kc_boot_needs(cli->ctx, NULL, 0, check_need, &nc);
	if (!rep->secrets[0] || stat(initramfs, &st) < 0 || !(st.st_mode & 044))
		return;
	problem(img, rep, true, "the initramfs %s is readable by %s (mode %04o) and holds "
		"secrets: %s; run chmod 600 %s, and build it with UMASK=0077 (initramfs-tools: "
		"kekcrypt's conf-hook sets it; dracut writes new images 0600)", initramfs,
		(st.st_mode & 040) && (st.st_mode & 004) ? "group and others" :
		(st.st_mode & 040) ? "group" : "others", (unsigned)(st.st_mode & 07777),
		rep->secrets, initramfs);
}

/* The KMS safety checks (kc_kek_check()) of each usable token's KEK, as warnings: a key that
 * is disabled, can be deleted for good, or expires. A KEK the KMS cannot be asked about is
 * left to the unlock check, which already says why. */
static void check_kek_safety(struct cli *cli, json_object *v, struct report *rep,
			     const struct kc_volume_info *info)
{
	for (size_t i = 0; i < kc_volume_info_n_tokens(info); i++) {
		const struct kc_token_info *t = kc_volume_info_token(info, i);
		struct kc_kek_safety ks = KC_SIZED(struct kc_kek_safety);

		if (t->valid < 0 || kc_kek_check(cli->ctx, t->kek_uri, &ks) < 0)
			continue;
		for (unsigned k = 0; k < ks.n_warnings; k++)
			problem(v, rep, false, "token %d: %s", t->id, ks.warnings[k].message);
	}
}

/* Whether INFO lists a kekcrypt token ID; its ids, ", "-separated, in IDS. */
static bool has_token(const struct kc_volume_info *info, int id, char *ids, size_t size)
{
	bool found = false;

	ids[0] = '\0';
	for (size_t i = 0; i < kc_volume_info_n_tokens(info); i++) {
		int t = kc_volume_info_token(info, i)->id;

		snprintf(ids + strlen(ids), size - strlen(ids), "%s%d", i ? ", " : "", t);
		found = found || t == id;
	}
	return found;
}

/* What the entry tells kekcrypt: the keyscript's key field (timeout=, token=; the same parser
 * the keyscript uses), the plugin's token-timeout= option. Each defect is an error: the boot
 * would not do what the line says. */
static void check_options(json_object *v, struct report *rep, const struct crypttab_entry *e,
			  const struct method *m, const struct kc_volume_info *info)
{
	struct crypttab_keyscript ks;
	char bad[160], value[64], ids[128];
	unsigned secs;

	if (crypttab_has(e, "token-timeout") &&
	    (!crypttab_value(e, "token-timeout", value, sizeof(value)) ||
	     crypttab_timespan(value, &secs) < 0))
		problem(v, rep, true, "crypttab: bad token-timeout= (a time span such as 60 or "
			"2min): the token plugin would refuse to unlock");
	if (!m->keyscript)
		return;
	if (crypttab_keyscript_key(e->key, &ks, bad, sizeof(bad)) < 0)
		problem(v, rep, true, "crypttab: the keyscript's key field '%s': %s", e->key, bad);
	if (ks.token >= 0 && !has_token(info, ks.token, ids, sizeof(ids)))
		problem(v, rep, true, "crypttab: token=%d names no kekcrypt token of this volume "
			"(its tokens: %s): the keyscript would not unlock it", ks.token,
			ids[0] ? ids : "none");
}

/* The keyslots of DEV that no kekcrypt token and no recovery key holds, as a bitmask, and
 * as "N M" in LIST: a passphrase kept when the volume was enrolled, or another tool's
 * (clevis, systemd-cryptenroll). The boot prompt takes a passphrase as well as a recovery
 * key, so they are a way in for whoever knows theirs. */
static uint32_t other_keyslots(struct cli *cli, const char *dev,
			       const struct kc_volume_info *info, char *list, size_t size)
{
	struct kc_recovery_info rec[32];
	uint32_t m = kc_volume_info_keyslots(info);
	size_t len = 0;
	int n;

	CLI_SIZED_ARRAY(rec);
	for (size_t i = 0; i < kc_volume_info_n_tokens(info); i++) {
		int s = kc_volume_info_token(info, i)->keyslot;

		if (s >= 0 && s < 32)
			m &= ~(1u << s);
	}
	n = kc_recovery_list(cli->ctx, dev, rec, 32);
	for (int i = 0; i < n && i < 32; i++)
		if (rec[i].keyslot >= 0 && rec[i].keyslot < 32)
			m &= ~(1u << rec[i].keyslot);
	list[0] = '\0';
	for (int s = 0; s < 32; s++)
		if ((m & (1u << s)) && len < size)
			len += (size_t)snprintf(list + len, size - len, "%s%d", len ? " " : "", s);
	return m;
}

/* A volume that unlocks: is each of its N_TOKENS tokens still a way to unlock it (a KEK that
 * fails leaves less redundancy than the header promises), and is there a recovery key (NREC)
 * or another keyslot (OTHERS) for the day none answers? Warnings: the boot itself would
 * work. */
static void check_redundancy(struct cli *cli, json_object *v, struct report *rep,
			     const char *dev, size_t n_tokens, int nrec, const char *others)
{
	struct kc_token_check checks[32];	/* LUKS2 has at most 32 tokens */
	const int max = (int)(sizeof(checks) / sizeof(checks[0]));
	json_object *failing = json_object_new_array();
	int n;

	if (nrec == 0 && !others[0])
		problem(v, rep, false, "no recovery key: if no KEK answers, the volume cannot be "
			"unlocked; add one with 'kekcrypt recovery add %s'", dev);
	else if (nrec == 0)
		problem(v, rep, false, "no recovery key: if no KEK answers, only keyslot(s) %s "
			"(not kekcrypt's: a passphrase kept at enrolment, or another tool's) open it, "
			"for whoever knows their passphrase; add a recovery key with 'kekcrypt "
			"recovery add %s'", others, dev);
	CLI_SIZED_ARRAY(checks);
	n = n_tokens > 1 ? kc_verify_all(cli->ctx, dev, checks, (size_t)max) : 0;
	for (int i = 0; i < n && i < max; i++) {
		if (!checks[i].result)
			continue;
		json_object_array_add(failing, json_object_new_int(checks[i].token_id));
		problem(v, rep, false, "degraded redundancy: token %d (%s) does not unlock it "
			"now: %s", checks[i].token_id, checks[i].kek_uri[0] ? checks[i].kek_uri :
			"unreadable", checks[i].detail);
	}
	json_object_object_add(v, "failing_tokens", failing);
}

/* One crypttab volume; false (nothing reported) for a volume without a keyscript that turns
 * out not to be kekcrypt's. */
static bool check_volume(struct cli *cli, struct report *rep, const struct crypttab_entry *e,
			 const struct method *m, const char *initramfs, const struct listing *l)
{
	const char *name = e->name, *source = e->source;
	json_object *v;
	struct kc_volume_info *info = NULL;
	struct kc_unlock_result res = KC_SIZED(struct kc_unlock_result);
	struct kc_recovery_info rec[1] = { KC_SIZED(struct kc_recovery_info) };
	struct kc_rekey_state rk;
	char *dev = blkid_evaluate_spec(source, NULL), others[100], hbuf[PATH_MAX];
	/* crypttab's header=: every check below reads the volume through it. */
	const char *header = crypttab_value(e, "header", hbuf, sizeof(hbuf));
	json_object *arr;
	uint32_t om;
	int r, nrec = 0;

	/* The header, read once: a volume without our keyscript is ours only if it says so. */
	r = kc_set_header(cli->ctx, header);
	if (r >= 0)
		r = dev && !access(dev, F_OK) ? kc_volume_info_get(cli->ctx, dev, &info) : -ENOENT;
	if (!m->keyscript && (r < 0 || !kc_volume_info_n_tokens(info))) {
		kc_volume_info_free(info);
		free(dev);
		return false;
	}
	v = json_object_new_object();
	json_object_object_add(v, "name", json_object_new_string(name));
	json_object_object_add(v, "source", json_object_new_string(source));
	if (header)
		json_object_object_add(v, "header", json_object_new_string(header));
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
	if (header && access(header, F_OK)) {
		problem(v, rep, true, "its detached LUKS2 header %s (crypttab header=) is missing",
			header);
		goto out;
	}
	if (r < 0 || !kc_volume_info_n_tokens(info)) {
		problem(v, rep, true, "%s", r < 0 ? kc_error_detail(cli->ctx) :
			"the device has no kekcrypt token");
		goto out;
	}
	check_options(v, rep, e, m, info);
	if (cli_rekey_state(cli, dev, &rk))
		problem(v, rep, false, "%s: run '%s %s' (the boot can unlock it, but every "
			"command that changes its header refuses until then)", rk.summary,
			rk.resume, dev);
	nrec = kc_recovery_list(cli->ctx, dev, rec, 1);
	json_object_object_add(v, "recovery_keys", json_object_new_int(nrec > 0 ? nrec : 0));
	om = other_keyslots(cli, dev, info, others, sizeof(others));
	arr = json_object_new_array();
	for (int s = 0; s < 32; s++)
		if (om & (1u << s))
			json_object_array_add(arr, json_object_new_int(s));
	json_object_object_add(v, "other_keyslots", arr);
	r = kc_verify(cli->ctx, dev, -1, &res);
	if (r >= 0) {
		json_object_object_add(v, "unlocks_with_token", json_object_new_int(res.token_id));
		check_redundancy(cli, v, rep, dev, kc_volume_info_n_tokens(info), nrec, others);
	} else {
		json_object_object_add(v, "unlocks_with_token", NULL);
		problem(v, rep, nrec <= 0 && !om, "no KEK answers now: %s; %s%s",
			kc_error_detail(cli->ctx), nrec > 0 ?
			"the boot would wait for the deadline, then ask for the recovery key" :
			om ? "the boot would wait for the deadline, then ask for a passphrase: only "
			"keyslot(s) not kekcrypt's would open it: " :
			"and there is no recovery key: the boot would fail",
			nrec <= 0 && om ? others : "");
	}
	/* An unreachable KMS would only make each check wait for the deadline again. */
	if (r != -EAGAIN && r != -ETIMEDOUT)
		check_kek_safety(cli, v, rep, info);
	if (!m->keyscript && !m->in_initramfs) {
		/* Unlocked after the initramfs, by the system's own systemd-cryptsetup. */
		if (access(PLUGIN_PATH, F_OK))
			problem(v, rep, true, "the token plugin " PLUGIN_PATH " is not installed: "
				"systemd-cryptsetup would ask for a passphrase");
	} else if (l)
		check_initramfs(cli, v, rep, l, m, dev, initramfs, header);
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

static int check_crypttab(struct cli *cli, const struct crypttab *tab, struct report *rep,
			  const char *initramfs, const struct listing *l)
{
	char ks[PATH_MAX];
	int n = 0;

	for (size_t i = 0; i < tab->n; i++) {
		const struct crypttab_entry *e = &tab->entries[i];
		struct method m = { 0 };

		m.keyscript = crypttab_our_keyscript(e, ks, sizeof(ks));
		if (!m.keyscript && (crypttab_has(e, "keyscript") || e->key))
			continue;	/* someone else's keyscript, or a key file */
		m.in_initramfs = crypttab_in_initrd(e) || crypttab_has(e, "initramfs");
		if (check_volume(cli, rep, e, &m, initramfs, l))
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

/* The configuration's problems (kc_config_check()), as problems of CONF: errors, but for a
 * file that is missing here, which the volumes' own checks weigh (the initramfs may have it). */
struct config_problems {
	json_object *conf;
	struct report *rep;
};

static void config_problem(int kind, const char *msg, void *usrptr)
{
	struct config_problems *cp = usrptr;

	problem(cp->conf, cp->rep, kind != KC_CONFIG_MISSING, "%s", msg);
}

static void print_text(const struct report *rep, const char *initramfs, json_object *img,
		       json_object *conf, const char *config)
{
	json_object *ps;
	char name[PATH_MAX + 600];

	json_object_object_get_ex(conf, "problems", &ps);
	if (json_object_array_length(ps)) {
		snprintf(name, sizeof(name), "configuration %s", config);
		print_problems(name, ps, "BROKEN");
	}
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
	const char *crypttab = CRYPTTAB_PATH, *initramfs = NULL;
	char initramfs_buf[PATH_MAX];
	struct crypttab tab = { 0 };
	struct report rep = { 0 };
	struct listing l = { 0 };
	json_object *img, *conf;
	struct config_problems cp = { .rep = &rep };
	struct utsname u;
	int c, o, ex, n = 0, lr = -ENOENT, r, nconf = 0;

	optind = 0;
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
	conf = cp.conf = json_object_new_object();
	json_object_object_add(conf, "problems", json_object_new_array());
	rep.volumes = json_object_new_array();
	/* A configuration that does not load: nothing else can be checked, and the boot would
	 * fail (the initramfs reads the same file). */
	ex = cli_ctx_checked(cli, config_problem, &cp, &nconf);
	if (ex && !rep.errors) {
		json_object_put(conf);
		json_object_put(rep.volumes);
		return ex;	/* said already (no context) */
	}
	if (!ex) {
		r = access(crypttab, F_OK) < 0 ? -errno : crypttab_read(crypttab, &tab);
		if (r < 0) {
			json_object_put(conf);
			json_object_put(rep.volumes);
			cli_error(cli, "cannot read %s: %s", crypttab, strerror(-r));
			return cli_exit_code(r == -ENOENT ? -ENOENT : -EACCES);
		}
		lr = initramfs ? list_initramfs(initramfs, &l) : -ENOENT;
		n = check_crypttab(cli, &tab, &rep, initramfs ?: "(none)", lr == 0 ? &l : NULL);
		crypttab_clear(&tab);
	}
	img = json_object_new_object();
	json_object_object_add(img, "problems", json_object_new_array());
	if (n && lr == 0)
		check_image_mode(cli, img, &rep, initramfs, &l);
	if (cli->json) {
		json_object *out = cli_json_new(cli, "doctor");

		json_object_object_add(out, "config", json_object_new_string(cli->config ?:
									     CLI_CONFIG_PATH));
		json_object_object_add(out, "config_problems",
				       json_object_get(json_object_object_get(conf, "problems")));
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
		cli_print_json(cli, out);
	} else {
		if (!n && !ex)
			printf("%s: no kekcrypt volume (" KEYSCRIPT_NAME ", or no key file and "
			       "kekcrypt tokens)\n", crypttab);
		print_text(&rep, initramfs, img, conf, cli->config ?: CLI_CONFIG_PATH);
		json_object_put(rep.volumes);
	}
	json_object_put(img);
	json_object_put(conf);
	free(l.text);
	if (!n && !rep.errors)
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
		 "credential or KEK files), is not readable by group or others. Warnings (exit\n"
		 "0): a volume with no recovery key, a token whose KEK does not answer while\n"
		 "another does (degraded redundancy). Exit 0 when all is well or there are\n"
		 "only warnings, 24 when something would fail or a secret is exposed.\n"
		 "First of all, the configuration, as 'kekcrypt config check' checks it:\n"
		 "a problem there is an error (the boot reads the same file).\n\n"
		 "      --crypttab FILE   instead of /etc/crypttab\n"
		 "      --initramfs FILE  instead of the running kernel's initramfs\n",
};
