/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * adopt --from ade: bring the volumes of a running Azure Disk Encryption (ADE) VM under
 * kekcrypt in place (doc/ADE.md, "Summary for design").
 *
 * ADE unlocks each volume with a passphrase it keeps on the BEK volume (a VFAT disk labelled
 * "BEK VOLUME", mounted at /mnt/azure_bek_disk), in the files LinuxPassPhraseFileName and
 * LinuxPassPhraseFileName_<controller>_<lun> that crypttab names as key files. adopt finds
 * the BEK volume (--bek DIR where it is mounted, else --bek DEVICE or the filesystem labelled
 * "BEK VOLUME", mounted read-only where only this process sees it), reads that passphrase
 * into locked memory, enrols a kekcrypt token per KEK with it (kek add's enrolment,
 * kc_kek_enrol(): the passphrase keyslot stays), then rewrites crypttab so that kekcrypt
 * unlocks the volumes and the BEK volume is no longer needed.
 *
 * Two more kinds of ADE volume (doc/ADE.md section 3). ADE's legacy azure_crypt_mount lists
 * data volumes that its extension opens and mounts after boot: each gets tokens as well, a
 * crypttab line and a nofail fstab line, and the file is moved aside (azure_crypt_mount.ade)
 * after crypttab and fstab are written, so that ADE's leftovers cannot open them again. A
 * crypttab key file (or azure_crypt_mount's uses_cleartext_key=True) naming
 * cleartext_key_<mapper> says that ADE had started a disable: the volume is refused while its
 * header holds the decryption, else adopted with the cleartext key (it opens a keyslot of the
 * volume), and the output says so.
 *
 * Order of the writes, each safe to repeat: every volume is checked before the first write
 * (ADE still encrypting, a re-encryption in the header, LUKS1 without --convert, the key
 * files); then each volume gets its tokens (a KEK it has a token for already is left alone);
 * crypttab is rewritten last, atomically, after ADE's is saved beside it, and then fstab
 * without the BEK volume's line (the boot no longer needs the BEK volume). An adopt that
 * stopped half-way is finished by running it again; on an adopted system no crypttab entry
 * names a BEK key file any more, and adopt says so and writes nothing.
 *
 * crypttab, azure_crypt_mount, the header they name and the key files are untrusted input:
 * entry names and key file names are checked before they name a file, every field of
 * azure_crypt_mount before it goes into a line adopt writes, the key files must be regular
 * files (no symbolic link followed) of bounded size.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <blkid.h>

#include "cli.h"
#include "crypttab.h"

#define ADE_KEY_PREFIX "LinuxPassPhraseFileName"
#define ADE_BEK_LABEL "BEK VOLUME"
#define ADE_BEK_MOUNT "/mnt/azure_bek_disk"
#define ADE_BEK_FSTAB_SOURCE "LABEL=BEK\\040VOLUME"
#define ADE_CONFIG_DIR "/var/lib/azure_disk_encryption_config"
#define ADE_ONGOING ADE_CONFIG_DIR "/azure_crypt_ongoing_item.ini"
/* ADE's legacy list of data volumes that its extension opens and mounts after boot. */
#define ADE_CRYPT_MOUNT ADE_CONFIG_DIR "/azure_crypt_mount"
/* The key ADE adds to a volume when a disable (decryption) is started: cleartext_key_<mapper>. */
#define ADE_CLEARTEXT_PREFIX "cleartext_key_"
/* ADE's passphrase is 172 characters of base64; anything much larger is not one. */
#define ADE_KEY_MAX 4096
/* crypttab and fstab are small text files; a larger one is refused rather than read. */
#define TEXT_MAX (1u << 20)
/* A line adopt writes (crypttab) or reads into a buffer (fstab) at most. */
#define LINE_MAX_NEW 4200
#define ADOPT_KEYSCRIPT KC_KEYSCRIPTDIR "/" CRYPTTAB_KEYSCRIPT

#define ADOPT_USAGE                                                                          \
	"adopt --from ade --kek URI [--kek URI ...] [--bek DIR|DEVICE] [--root DIR]\n"       \
	"       [--convert --header-backup-dir DIR] [--dry-run]\n\n"                          \
	"Bring the volumes of an Azure Disk Encryption VM under kekcrypt in place: each\n"     \
	"volume that crypttab unlocks with a key file of the BEK volume (or an ADE cleartext\n"\
	"key: a disable was started) or that ADE's legacy azure_crypt_mount lists gets a\n"   \
	"token per KEK, authorised by that key (its keyslot stays); then crypttab is rewritten\n"\
	"(ADE's saved as crypttab.ade beside it): the OS volume (header=, or 'osencrypt')\n"  \
	"through kekcrypt-keyscript in the initramfs, the others through the token plugin;\n"\
	"and the BEK volume's line is removed from fstab (saved as fstab.ade);\n"           \
	"azure_crypt_mount's volumes get crypttab and fstab lines, and it is moved aside.\n" \
	"Refused while ADE still encrypts or a volume is being re-encrypted. Running it\n"     \
	"again finishes an interrupted adopt; on an adopted system it writes nothing.\n"     \
	"The initramfs is not rebuilt: adopt says what is left to do.\n\n"                   \
	"      --from ade       what the volumes come from (only ade)\n"                     \
	"  -k, --kek URI        a KEK to enrol (repeatable, up to 16)\n"                     \
	"      --bek DIR|DEVICE the BEK volume: where it is mounted (/mnt/azure_bek_disk),\n"\
	"                       or its device, mounted read-only here; default: the\n"       \
	"                       filesystem labelled 'BEK VOLUME'\n"                          \
	"      --root DIR       the system's root: DIR/etc/crypttab and fstab, header=\n"  \
	"                       under DIR (default /)\n"                                    \
	"      --convert        convert LUKS1 volumes to LUKS2 first (libcryptsetup)\n"      \
	"      --header-backup-dir DIR  --convert: where each LUKS1 header is saved,\n"     \
	"                       as NAME.luks1-header\n"                                      \
	"  -n, --dry-run        check everything and say what would be done; write nothing\n"

struct adopt_args {
	const char *from;
	const char *root;	/* NULL: / */
	const char *bek;
	const char *backup_dir;
	const char *keks[CLI_MAX_KEKS];
	size_t n_keks;
	bool convert;
	bool dry_run;
};

/* A file adopt edits: crypttab, fstab. */
struct edited {
	char path[PATH_MAX];
	char backup[PATH_MAX];	/* the file as ADE left it: PATH.ade */
	bool backup_kept;	/* the backup was there already */
	size_t changed;		/* lines replaced or dropped (to be, in a dry run) */
	size_t added;		/* lines appended (to be, in a dry run) */
	bool created;		/* it was not there */
	bool rewritten;
};

/* One ADE volume: its crypttab entry and what adopt found and did. */
struct ade_volume {
	const struct crypttab_entry *e;
	const char *key_name;	/* the key file's name on the BEK volume */
	char *device;		/* blkid_evaluate_spec() of the entry's source */
	char header[PATH_MAX];	/* header= under --root, "" when attached */
	char backup[PATH_MAX];	/* --convert: the LUKS1 header's backup */
	bool os;		/* unlocked by the initramfs */
	bool cleartext;		/* authorised by ADE's cleartext key: a disable was started */
	bool legacy;		/* from azure_crypt_mount (e is made up), not crypttab */
	bool in_crypttab;	/* legacy: its new crypttab line is there already */
	bool in_fstab;		/* legacy: fstab mounts /dev/mapper/NAME already */
	char *mount_point;	/* legacy: where ADE's extension mounted it, */
	char *fs_type;		/* and with which file system */
	bool luks1;
	bool converted;
	int auth_keyslot;	/* the keyslot the BEK passphrase opens; -1: not checked */
	int tokens[CLI_MAX_KEKS];	/* -1: none yet (dry run) */
	bool added[CLI_MAX_KEKS];
};

struct adopt {
	struct cli *cli;
	const struct adopt_args *a;
	struct crypttab tab;
	struct crypttab legacy;	/* azure_crypt_mount's volumes, as crypttab entries */
	struct ade_volume *vols;
	size_t n;
	int bek_fd;
	char *bek_name;		/* the BEK volume's directory or device, for messages */
	int ade_fd;		/* ADE_CONFIG_DIR under --root: the cleartext keys */
	char ade_dir[PATH_MAX];
	struct edited crypttab, fstab;
	char acm[PATH_MAX];	/* azure_crypt_mount under --root */
	char acm_backup[PATH_MAX];	/* where it is moved: azure_crypt_mount.ade */
	bool acm_active;	/* it holds a data volume: ADE's extension opens them */
	bool acm_moved;
};

static int adopt_run(struct cli *cli, int argc, char **argv);

const struct verb verb_adopt = {
	.name = "adopt",
	.run = adopt_run,
	.summary = "bring the volumes of an Azure Disk Encryption VM under kekcrypt in place",
	.usage = ADOPT_USAGE,
};

enum { OPT_FROM = 0x400, OPT_BEK, OPT_ROOT, OPT_CONVERT, OPT_BACKUP_DIR };

static int adopt_opt(struct cli *cli, int c, struct adopt_args *a)
{
	switch (c) {
	case OPT_FROM: a->from = optarg; break;
	case OPT_BEK: a->bek = optarg; break;
	case OPT_ROOT: a->root = optarg; break;
	case OPT_CONVERT: a->convert = true; break;
	case OPT_BACKUP_DIR: a->backup_dir = optarg; break;
	case 'n': a->dry_run = true; break;
	case 'k':
		if (a->n_keks == CLI_MAX_KEKS)
			return cli_usage_error(cli, "at most %d --kek", CLI_MAX_KEKS);
		a->keks[a->n_keks++] = optarg;
		break;
	}
	return -1;
}

static int adopt_parse(struct cli *cli, int argc, char **argv, struct adopt_args *a)
{
	static const struct option opts[] = {
		COMMON_LONGOPTS,
		{ "from", required_argument, NULL, OPT_FROM },
		{ "kek", required_argument, NULL, 'k' },
		{ "bek", required_argument, NULL, OPT_BEK },
		{ "root", required_argument, NULL, OPT_ROOT },
		{ "convert", no_argument, NULL, OPT_CONVERT },
		{ "header-backup-dir", required_argument, NULL, OPT_BACKUP_DIR },
		{ "dry-run", no_argument, NULL, 'n' },
		{}
	};
	int c, o, ex;

	optind = 0;
	while ((c = getopt_long(argc, argv, COMMON_SHORTOPTS "k:n", opts, NULL)) != -1) {
		if ((o = cli_common_opt(cli, c, &verb_adopt, &ex)) == 2)
			return ex;
		if (!o && (ex = adopt_opt(cli, c, a)) >= 0)
			return ex;
	}
	if (optind != argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	if (!a->from || strcmp(a->from, "ade"))
		return cli_usage_error(cli, "--from ade is required (the only kind adopt knows)");
	if (!a->n_keks)
		return cli_usage_error(cli, "at least one --kek URI is required");
	if (a->convert != !!a->backup_dir)
		return cli_usage_error(cli, "--convert needs --header-backup-dir DIR (where the "
				       "LUKS1 headers are saved), and --header-backup-dir needs "
				       "--convert");
	return -1;
}

/* PATH (absolute) under --root, in BUF. */
static int rooted(const struct adopt_args *a, const char *path, char *buf, size_t size)
{
	const char *root = a->root ? a->root : "";
	size_t n = strlen(root);

	while (n && root[n - 1] == '/')
		n--;
	if (path[0] != '/')
		return -EINVAL;
	if ((size_t)snprintf(buf, size, "%.*s%s", (int)n, root, path) >= size)
		return -ENAMETOOLONG;
	return 0;
}

static bool name_chars_ok(const char *s, const char *extra)
{
	for (; *s; s++)
		if (!(*s >= 'a' && *s <= 'z') && !(*s >= 'A' && *s <= 'Z') &&
		    !(*s >= '0' && *s <= '9') && !strchr(extra, *s))
			return false;
	return true;
}

/* The name of the key file that entry E's key field names: the BEK volume's
 * (".../LinuxPassPhraseFileName[_<ctrl>_<lun>]"), or ADE's cleartext key
 * (ADE_CONFIG_DIR/cleartext_key_<mapper>, *R_CLEARTEXT set); NULL when E is not ADE's. */
static const char *ade_key_name(const struct crypttab_entry *e, bool *r_cleartext)
{
	const char *base = e->key ? strrchr(e->key, '/') : NULL;
	size_t dir = base ? (size_t)(base - e->key) : 0;

	if (!base)
		return NULL;
	base++;
	*r_cleartext = !strncmp(base, ADE_CLEARTEXT_PREFIX, strlen(ADE_CLEARTEXT_PREFIX));
	if (*r_cleartext)
		return dir == strlen(ADE_CONFIG_DIR) && !strncmp(e->key, ADE_CONFIG_DIR, dir) &&
		       name_chars_ok(base, "_-") ? base : NULL;
	return !strncmp(base, ADE_KEY_PREFIX, strlen(ADE_KEY_PREFIX)) &&
	       name_chars_ok(base, "_") ? base : NULL;
}

static int new_line(const struct ade_volume *v, char *buf, size_t size);

static const char *origin(const struct ade_volume *v)
{
	return v->legacy ? "azure_crypt_mount" : "crypttab";
}

/* Entry E (KEY_NAME its key file's name) as the next volume: 0, or an exit code. */
static int add_volume(struct adopt *ad, const struct crypttab_entry *e, const char *key_name,
		      bool cleartext, bool legacy)
{
	struct cli *cli = ad->cli;
	struct ade_volume *v = &ad->vols[ad->n++];
	char hbuf[PATH_MAX], line[LINE_MAX_NEW];
	const char *header = crypttab_value(e, "header", hbuf, sizeof(hbuf));

	v->e = e;
	v->key_name = key_name;
	v->cleartext = cleartext;
	v->legacy = legacy;
	v->auth_keyslot = -1;
	for (size_t k = 0; k < CLI_MAX_KEKS; k++)
		v->tokens[k] = -1;
	/* azure_crypt_mount lists data volumes only (its OS entries are skipped). */
	v->os = !legacy && (header || !strcmp(e->name, "osencrypt"));
	if (header && rooted(ad->a, header, v->header, sizeof(v->header)) < 0) {
		cli_error(cli, "%s: %s's header=%s is not an absolute path", e->name, origin(v),
			  header);
		return EXIT_MALFORMED;
	}
	if (new_line(v, line, sizeof(line)) < 0) {
		cli_error(cli, "%s: its crypttab line is too long", e->name);
		return EXIT_MALFORMED;
	}
	v->device = blkid_evaluate_spec(e->source, NULL);
	if (!v->device || access(v->device, F_OK)) {
		cli_error(cli, "%s: its device %s (%s) is not here", e->name, e->source, origin(v));
		return EXIT_NOENT;
	}
	return 0;
}

/* The volumes crypttab unlocks with a key file of the BEK volume or an ADE cleartext key: 0,
 * or an exit code. */
static int ade_collect(struct adopt *ad)
{
	for (size_t i = 0; i < ad->tab.n; i++) {
		const struct crypttab_entry *e = &ad->tab.entries[i];
		bool cleartext = false;
		const char *key_name = ade_key_name(e, &cleartext);
		int ex;

		if (key_name && (ex = add_volume(ad, e, key_name, cleartext, false)))
			return ex;
	}
	return 0;
}

/* azure_crypt_mount's fields: "mapper_name dev_path luks_header_path|None mount_point
 * file_system uses_cleartext_key current_luks_slot", the last one optional. */
enum { ACM_NAME, ACM_DEV, ACM_HEADER, ACM_MOUNT, ACM_FS, ACM_CLEARTEXT, ACM_SLOT, ACM_FIELDS };

/* Whether S can stand as one field of a crypttab or fstab line as an absolute path: printable
 * ASCII without blanks, backslashes (fstab's escapes) or commas (a header= path with one would
 * add crypttab options), bounded. */
static bool field_path_ok(const char *s)
{
	if (s[0] != '/' || strlen(s) >= 1024)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || (unsigned char)*s > '~' || strchr("\\,", *s))
			return false;
	return true;
}

/* A device-mapper name that also names files (cleartext_key_NAME, NAME.luks1-header). */
static bool mapper_name_ok(const char *s)
{
	return s[0] != '.' && s[0] != '-' && strlen(s) < 128 && name_chars_ok(s, "_.-");
}

static bool slot_ok(const char *s)
{
	char *end;
	long n = strtol(s, &end, 10);

	return *s && !*end && n >= -1 && n < 32;
}

#define PLAIN_PATH "an absolute path of printable characters without blanks, '\\' or ','"

/* What is wrong with the N fields F of an azure_crypt_mount line, or NULL. */
static const char *acm_defect(char *const *f, size_t n)
{
	if (n < ACM_SLOT || n > ACM_FIELDS)
		return "it does not have 6 or 7 space-separated fields";
	if (!mapper_name_ok(f[ACM_NAME]))
		return "field 1 is not a mapper name ([A-Za-z0-9_.-], at most 127 characters)";
	if (!field_path_ok(f[ACM_DEV]))
		return "field 2 (the device) is not " PLAIN_PATH;
	if (strcmp(f[ACM_HEADER], "None") && !field_path_ok(f[ACM_HEADER]))
		return "field 3 (the LUKS header) is neither None nor " PLAIN_PATH;
	if (strcmp(f[ACM_MOUNT], "None") && !field_path_ok(f[ACM_MOUNT]))
		return "field 4 (the mount point) is neither None nor " PLAIN_PATH;
	if (!name_chars_ok(f[ACM_FS], "_.-") || strlen(f[ACM_FS]) > 32)
		return "field 5 is not a file system type";
	if (strcmp(f[ACM_CLEARTEXT], "True") && strcmp(f[ACM_CLEARTEXT], "False"))
		return "field 6 (uses_cleartext_key) is neither True nor False";
	if (n == ACM_FIELDS && !slot_ok(f[ACM_SLOT]))
		return "field 7 (the keyslot) is not a number from -1 to 31";
	return NULL;
}

/* The OS volume, skipped (crypttab has it; ADE opens it in the initramfs): as ADE's own
 * migration of azure_crypt_mount (DiskUtil.migrate_crypt_items) skips it, named osencrypt or
 * mounted at /. */
static bool acm_os(char *const *f)
{
	return !strcmp(f[ACM_NAME], "osencrypt") || !strcmp(f[ACM_MOUNT], "/");
}

/* LINE split at blanks into F (at most ACM_FIELDS + 1, the last meaning too many): *R_N. */
static void acm_split(char *line, char **f, size_t *r_n)
{
	char *save = NULL;
	size_t n = 0;

	for (char *t = strtok_r(line, " \t", &save); t && n <= ACM_FIELDS;
	     t = strtok_r(NULL, " \t", &save))
		f[n++] = t;
	*r_n = n;
}

/* Fields F as a crypttab entry (the next of ad->legacy) whose key is the BEK volume's
 * LinuxPassPhraseFileName or the volume's cleartext key, as ADE's extension opened it. */
static int acm_entry(struct adopt *ad, char *const *f, const char *line,
		     struct crypttab_entry **r_e)
{
	struct crypttab_entry *e = &ad->legacy.entries[ad->legacy.n++];
	bool cleartext = !strcmp(f[ACM_CLEARTEXT], "True");
	bool header = strcmp(f[ACM_HEADER], "None");

	e->line = strdup(line);
	e->name = strdup(f[ACM_NAME]);
	e->source = strdup(f[ACM_DEV]);
	if (asprintf(&e->key, "%s/%s%s", cleartext ? ADE_CONFIG_DIR : ADE_BEK_MOUNT,
		     cleartext ? ADE_CLEARTEXT_PREFIX : ADE_KEY_PREFIX,
		     cleartext ? f[ACM_NAME] : "") < 0)
		e->key = NULL;
	if (asprintf(&e->options, "luks,nofail%s%s", header ? ",header=" : "",
		     header ? f[ACM_HEADER] : "") < 0)
		e->options = NULL;
	if (!e->line || !e->name || !e->source || !e->key || !e->options)
		return -ENOMEM;
	*r_e = e;
	return 0;
}

/* Whether crypttab or an earlier azure_crypt_mount line names volume V already: its own
 * crypttab line (an adopt that stopped before moving azure_crypt_mount) is no conflict.
 * -1 to go on, else an exit code. */
static int acm_conflict(struct adopt *ad, struct ade_volume *v)
{
	char line[LINE_MAX_NEW];

	for (size_t i = 0; i + 1 < ad->n; i++)
		if (!strcmp(ad->vols[i].e->name, v->e->name) && ad->vols[i].legacy) {
			cli_error(ad->cli, "%s: %s lists it twice", v->e->name, ad->acm);
			return EXIT_MALFORMED;
		}
	for (size_t i = 0; i < ad->tab.n; i++) {
		if (strcmp(ad->tab.entries[i].name, v->e->name))
			continue;
		if (new_line(v, line, sizeof(line)) >= 0 &&
		    !strcmp(line, ad->tab.entries[i].line)) {
			v->in_crypttab = true;
			continue;
		}
		cli_error(ad->cli, "%s: crypttab has an entry of this name already and %s lists "
			  "it too: remove the one ADE does not use", v->e->name, ad->acm);
		return EXIT_EXISTS;
	}
	return -1;
}

/* The fields F of line LINE of azure_crypt_mount as the next volume. -1, or an exit code. */
static int acm_volume(struct adopt *ad, char *const *f, const char *line)
{
	struct crypttab_entry *e = NULL;
	struct ade_volume *v;
	int ex, r;

	if ((r = acm_entry(ad, f, line, &e)) < 0)
		return cli_fail(ad->cli, r);
	if ((ex = add_volume(ad, e, strrchr(e->key, '/') + 1, !strcmp(f[ACM_CLEARTEXT], "True"),
			      true)))
		return ex;
	v = &ad->vols[ad->n - 1];
	v->fs_type = strdup(strcmp(f[ACM_FS], "None") ? f[ACM_FS] : "auto");
	v->mount_point = strcmp(f[ACM_MOUNT], "None") ? strdup(f[ACM_MOUNT]) : NULL;
	if (!v->fs_type || (strcmp(f[ACM_MOUNT], "None") && !v->mount_point))
		return cli_fail(ad->cli, -ENOMEM);
	return acm_conflict(ad, v);
}

/* Each line of azure_crypt_mount's TEXT (cut into lines here) checked, its data volumes
 * added. -1, or an exit code: a malformed line refuses the adopt before anything is written. */
static int acm_parse(struct adopt *ad, char *text)
{
	char *f[ACM_FIELDS + 1], copy[LINE_MAX_NEW];
	size_t lineno = 0, n = 0;
	const char *defect;
	int ex;

	for (char *l = text, *end; *l; l = end) {
		end = strchrnul(l, '\n');
		if (*end)
			*end++ = '\0';
		lineno++;
		if (!l[strspn(l, " \t")])
			continue;
		defect = strlen(l) >= sizeof(copy) ? "it is longer than 4200 bytes" : NULL;
		if (!defect) {
			snprintf(copy, sizeof(copy), "%s", l);
			acm_split(copy, f, &n);
			defect = acm_defect(f, n);
		}
		if (defect) {
			cli_error(ad->cli, "%s: line %zu: %s: refused, nothing written", ad->acm,
				  lineno, defect);
			return EXIT_MALFORMED;
		}
		/* ADE uses the file while a line is not osencrypt's
		 * (DiskUtil.should_use_azure_crypt_mount). */
		ad->acm_active |= strcmp(f[ACM_NAME], "osencrypt") != 0;
		if (!acm_os(f) && (ex = acm_volume(ad, f, l)) >= 0)
			return ex;
	}
	return -1;
}

/* What reading V's key file (the BEK volume's, or ADE's cleartext key) failed with (R): the
 * message and exit code. */
static int key_fail(struct adopt *ad, const struct ade_volume *v, int r)
{
	const char *why = r == -ENOENT ? "does not exist" :
			  r == -ELOOP ? "is a symbolic link: refused" :
			  r == -ENODEV ? "is not a regular file: refused" :
			  r == -EFBIG ? "is larger than an ADE key (4096 bytes): refused" :
			  r == -ENODATA ? "is empty" : strerror(-r);

	cli_error(ad->cli, "%s: %s %s/%s %s", v->e->name, v->cleartext ? "ADE's cleartext key "
		  "file" : "the BEK volume's key file", v->cleartext ? ad->ade_dir : ad->bek_name,
		  v->key_name, why);
	return r == -ENOENT ? EXIT_NOENT :
	       r == -ELOOP || r == -ENODEV || r == -EACCES ? EXIT_ACCESS :
	       r == -EFBIG || r == -ENODATA ? EXIT_MALFORMED : EXIT_INTERNAL;
}

/* V's passphrase, as the bytes of its key file (on the BEK volume, or ADE's cleartext key),
 * into AUTH's locked memory: -1 to go on, or an exit code. */
static int key_read(struct adopt *ad, const struct ade_volume *v, struct cli_auth *auth)
{
	struct stat st;
	int fd, r = 0;

	fd = openat(v->cleartext ? ad->ade_fd : ad->bek_fd, v->key_name,
		    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		r = -errno;
	else if (fstat(fd, &st) < 0)
		r = -errno;
	else if (!S_ISREG(st.st_mode))
		r = -ENODEV;	/* key_fail()'s "not a regular file" */
	if (r >= 0)
		r = cli_auth_read_fd(auth, fd, ADE_KEY_MAX);
	if (r >= 0 && !auth->len)
		r = -ENODATA;
	if (fd >= 0)
		close(fd);
	if (r < 0) {
		cli_auth_clear(auth);
		return key_fail(ad, v, r);
	}
	return -1;
}

/* LUKS1: refused without --convert, else where its header is to be saved. -1 to go on. */
static int check_luks1(struct adopt *ad, struct ade_volume *v)
{
	struct cli *cli = ad->cli;
	struct stat st;

	v->luks1 = true;
	if (!ad->a->convert) {
		cli_error(cli, "%s: %s is a LUKS1 volume: run adopt with --convert "
			  "--header-backup-dir DIR to convert it to LUKS2 first (its LUKS1 header "
			  "is saved in DIR)", v->e->name, v->device);
		return EXIT_LUKS1;
	}
	if (!name_chars_ok(v->e->name, "_.-") || v->e->name[0] == '.' ||
	    (size_t)snprintf(v->backup, sizeof(v->backup), "%s/%s.luks1-header",
			     ad->a->backup_dir, v->e->name) >= sizeof(v->backup)) {
		cli_error(cli, "%s: no header backup file can be named after this crypttab name",
			  v->e->name);
		return EXIT_MALFORMED;
	}
	if (lstat(v->backup, &st) == 0) {
		cli_error(cli, "%s: the header backup %s exists; refusing to overwrite it",
			  v->e->name, v->backup);
		return EXIT_EXISTS;
	}
	return -1;
}

/* Whether V's BEK passphrase opens a keyslot of V (a LUKS2 volume; kc_kek_enrol() checks a
 * converted LUKS1 one): before anything is written. -1 to go on, else an exit code. */
static int check_passphrase(struct adopt *ad, struct ade_volume *v)
{
	struct cli_auth auth = { 0 };
	int ex, r;

	if ((ex = key_read(ad, v, &auth)) >= 0)
		return ex;
	r = kc_secret_keyslot(ad->cli->ctx, v->device, auth.secret, auth.len, 0);
	cli_auth_clear(&auth);
	if (r < 0)
		return cli_fail(ad->cli, r);
	v->auth_keyslot = r;
	return -1;
}

/* Everything about V that can refuse the adopt, read only; the tokens it has already. */
static int check_volume(struct adopt *ad, struct ade_volume *v)
{
	struct cli *cli = ad->cli;
	struct cli_auth auth = { 0 };
	struct kc_volume_info *info = NULL;
	struct kc_rekey_state st = KC_SIZED(struct kc_rekey_state);
	size_t n_have = 0;
	int ex, r;

	if ((ex = key_read(ad, v, &auth)) >= 0)
		return ex;
	cli_auth_clear(&auth);
	if (v->header[0] && access(v->header, F_OK)) {
		cli_error(cli, "%s: its detached LUKS2 header %s (crypttab header=) is missing",
			  v->e->name, v->header);
		return EXIT_NOENT;
	}
	r = kc_set_header(cli->ctx, v->header[0] ? v->header : NULL);
	if (r >= 0)
		r = kc_volume_info_get(cli->ctx, v->device, &info);
	kc_volume_info_free(info);
	if (r == -ENOEXEC)
		return check_luks1(ad, v);
	if (r < 0)
		return cli_fail(cli, r);
	if (kc_rekey_state(cli->ctx, v->device, &st) > 0) {
		/* ADE's disable decrypts (cryptsetup reencrypt --decrypt): the header says so. */
		if (v->cleartext)
			cli_error(cli, "%s: %s: ADE had started a disable (its cleartext key is "
				  "there) and the header holds a re-encryption in progress (a "
				  "decryption): adopt it once that is finished or undone",
				  v->e->name, v->device);
		else
			cli_error(cli, "%s: %s: %s; adopt it once that is finished", v->e->name,
				  v->device, st.summary);
		return EXIT_BUSY;
	}
	for (size_t i = 0; i < ad->a->n_keks; i++) {
		v->tokens[i] = kc_kek_find(cli->ctx, v->device, ad->a->keks[i]);
		if (v->tokens[i] < 0)
			v->tokens[i] = -1;
		else
			n_have++;
	}
	return n_have < ad->a->n_keks ? check_passphrase(ad, v) : -1;
}

/* Enrol V under each KEK it has no token for, with its BEK passphrase; LUKS1 converted
 * first. -1 to go on, else an exit code. */
static int enrol_volume(struct adopt *ad, struct ade_volume *v)
{
	struct cli *cli = ad->cli;
	struct cli_auth auth = { 0 };
	int ex = -1, r = 0;

	r = kc_set_header(cli->ctx, v->header[0] ? v->header : NULL);
	if (r >= 0 && v->luks1)
		v->converted = (r = kc_luks1_convert(cli->ctx, v->device, v->backup)) > 0;
	if (r < 0)
		return cli_fail(cli, r);
	if ((ex = key_read(ad, v, &auth)) >= 0)
		return ex;
	for (size_t i = 0; i < ad->a->n_keks && ex < 0; i++) {
		struct kc_enrol_result res = { .size = sizeof(res), .auth_keyslot = -1 };

		if (v->tokens[i] >= 0)
			continue;
		r = kc_kek_enrol(cli->ctx, v->device, ad->a->keks[i], auth.secret, auth.len,
				 KC_ENROL_NOT_TOKEN_5, &res);
		if (r == -EEXIST)
			r = kc_kek_find(cli->ctx, v->device, ad->a->keks[i]);
		else if (r >= 0)
			v->added[i] = true;
		if (r < 0)
			ex = cli_fail(cli, r);
		v->tokens[i] = r;
		if (res.auth_keyslot >= 0)
			v->auth_keyslot = res.auth_keyslot;
	}
	cli_auth_clear(&auth);
	return ex;
}

/* V's new crypttab line: NAME SOURCE none OPTIONS, ADE's options kept but a keyscript=; the OS
 * volume gets kekcrypt-keyscript (the initramfs unlocks it), the others none (systemd-cryptsetup
 * unlocks them after the initramfs, through the token plugin). */
static int new_line(const struct ade_volume *v, char *buf, size_t size)
{
	char opts[4096] = "", *copy = strdup(v->e->options), *save = NULL;
	size_t n = 0;

	if (!copy)
		return -ENOMEM;
	for (char *o = strtok_r(copy, ",", &save); o; o = strtok_r(NULL, ",", &save))
		if (strncmp(o, "keyscript=", 10) && n < sizeof(opts))
			n += (size_t)snprintf(opts + n, sizeof(opts) - n, "%s%s", n ? "," : "", o);
	if (v->os && n < sizeof(opts))
		n += (size_t)snprintf(opts + n, sizeof(opts) - n, "%skeyscript=%s", n ? "," : "",
				      ADOPT_KEYSCRIPT);
	free(copy);
	if (n >= sizeof(opts) ||
	    (size_t)snprintf(buf, size, "%s %s none %s", v->e->name, v->e->source,
			     n ? opts : "luks") >= size)
		return -ENAMETOOLONG;
	return 0;
}

/* All of PATH (a regular text file of at most TEXT_MAX bytes, without NUL bytes) in *R_TEXT,
 * its stat in *R_ST. */
static int read_text(const char *path, char **r_text, size_t *r_len, struct stat *r_st)
{
	char *text = NULL;
	ssize_t k;
	size_t n = 0;
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, r_st) < 0)
		r = -errno;
	else if (!S_ISREG(r_st->st_mode) || r_st->st_size > (off_t)TEXT_MAX)
		r = -EINVAL;
	else if (!(text = malloc((size_t)r_st->st_size + 1)))
		r = -ENOMEM;
	while (r >= 0 && n < (size_t)r_st->st_size &&
	       (k = read(fd, text + n, (size_t)r_st->st_size - n)) != 0)
		r = k < 0 ? -errno : (n += (size_t)k, 0);
	close(fd);
	/* The line editor works on C strings: a NUL byte would cut the file short. */
	if (r >= 0 && memchr(text, '\0', n))
		r = -EINVAL;
	if (r < 0) {
		free(text);
		return r;
	}
	text[n] = '\0';
	*r_text = text;
	*r_len = n;
	return 0;
}

/* What a file edit does with one line of LEN bytes at LINE: LINE (kept), BUF holding the new
 * line (at most LINE_MAX_NEW bytes), or NULL (dropped). */
typedef const char *(*line_fn)(const struct adopt *ad, const char *line, size_t len,
				char *buf);

/* crypttab: each adopted entry's line replaced by new_line(). */
static const char *crypttab_line(const struct adopt *ad, const char *line, size_t len,
				 char *buf)
{
	for (size_t i = 0; i < ad->n; i++)
		if (!ad->vols[i].legacy && strlen(ad->vols[i].e->line) == len &&
		    !memcmp(ad->vols[i].e->line, line, len) &&
		    new_line(&ad->vols[i], buf, LINE_MAX_NEW) >= 0)
			return buf;
	return line;
}

/* fstab: the BEK volume's line dropped (ADE's: "LABEL=BEK\040VOLUME /mnt/azure_bek_disk ..."). */
static const char *fstab_line(const struct adopt *ad, const char *line, size_t len, char *buf)
{
	char *save = NULL, *src, *dir;

	(void)ad;
	if (len >= LINE_MAX_NEW)
		return line;
	memcpy(buf, line, len);
	buf[len] = '\0';
	src = strtok_r(buf, " \t", &save);
	dir = src && src[0] != '#' ? strtok_r(NULL, " \t", &save) : NULL;
	return dir && (!strcmp(src, ADE_BEK_FSTAB_SOURCE) || !strcmp(dir, ADE_BEK_MOUNT)) ? NULL :
	       line;
}

/* What a file edit appends for volume V to the file's TEXT: true with the line in BUF (at
 * most LINE_MAX_NEW bytes). */
typedef bool (*append_fn)(const struct adopt *ad, struct ade_volume *v, const char *text,
			  char *buf);

/* crypttab: a line for each azure_crypt_mount volume, unless it is there already. */
static bool crypttab_append(const struct adopt *ad, struct ade_volume *v, const char *text,
			    char *buf)
{
	(void)ad;
	(void)text;
	return v->legacy && !v->in_crypttab && new_line(v, buf, LINE_MAX_NEW) >= 0;
}

/* Whether fstab TEXT has a line mounting /dev/mapper/NAME. */
static bool fstab_mounts(const char *text, const char *name)
{
	size_t len = strlen("/dev/mapper/") + strlen(name);

	for (const char *p = text; *p; p = *p ? p + 1 : p) {
		p += strspn(p, " \t");
		if (!strncmp(p, "/dev/mapper/", 12) && !strncmp(p + 12, name, strlen(name)) &&
		    (p[len] == ' ' || p[len] == '\t'))
			return true;
		p = strchrnul(p, '\n');
	}
	return false;
}

/* The fstab line of azure_crypt_mount volume V, which ADE's extension mounted: nofail, so that
 * a missing disk never stops the boot. */
static int fstab_new_line(const struct ade_volume *v, char *buf, size_t size)
{
	if ((size_t)snprintf(buf, size, "/dev/mapper/%s %s %s defaults,nofail 0 0", v->e->name,
			     v->mount_point, v->fs_type) >= size)
		return -ENAMETOOLONG;
	return 0;
}

/* fstab: a line for each azure_crypt_mount volume with a mount point, unless fstab mounts its
 * mapping already. */
static bool fstab_append(const struct adopt *ad, struct ade_volume *v, const char *text,
			 char *buf)
{
	(void)ad;
	if (!v->legacy || !v->mount_point)
		return false;
	v->in_fstab = fstab_mounts(text, v->e->name);
	return !v->in_fstab && fstab_new_line(v, buf, LINE_MAX_NEW) >= 0;
}

/* TEXT edited line by line by FN, then the lines of APP appended, in *R_OUT; F's counts of the
 * lines replaced or dropped, and appended. */
static int edit_text(const struct adopt *ad, const char *text, line_fn fn, append_fn app,
		     char **r_out, struct edited *f)
{
	size_t cap = strlen(text) + ad->n * LINE_MAX_NEW + 2, n = 0, changed = 0, added = 0;
	char *out = malloc(cap), buf[LINE_MAX_NEW];
	const char *p = text;

	if (!out)
		return -ENOMEM;
	while (*p) {
		const char *end = strchrnul(p, '\n');
		size_t len = (size_t)(end - p);
		const char *use = fn(ad, p, len, buf);

		if (use != p)
			changed++;
		/* A line of ours ends with a newline, also in place of ADE's last, which has none:
		 * the shell loops that read crypttab (cryptsetup-initramfs') skip such a line. */
		if (use)
			n += (size_t)snprintf(out + n, cap - n, "%.*s%s", use == p ? (int)len :
					      (int)strlen(use), use, *end || use != p ? "\n" : "");
		p = *end ? end + 1 : end;
	}
	for (size_t i = 0; i < ad->n; i++) {
		if (!app(ad, &ad->vols[i], text, buf))
			continue;
		/* ADE appends its lines without a newline at the end. */
		if (n && out[n - 1] != '\n')
			out[n++] = '\n';
		n += (size_t)snprintf(out + n, cap - n, "%s\n", buf);
		added++;
	}
	out[n] = '\0';
	*r_out = out;
	f->changed = changed;
	f->added = added;
	return 0;
}

/* TEXT into PATH: a new file (never overwritten) when EXCL, else through a temporary file
 * renamed over it; owner and mode of ST either way. */
static int write_text(const char *path, const char *text, const struct stat *st, bool excl)
{
	char tmp[PATH_MAX];
	int fd, r = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.kekcrypt-XXXXXX", path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = excl ? open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600) : mkostemp(tmp,
											  O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fchown(fd, st->st_uid, st->st_gid) < 0 || fchmod(fd, st->st_mode & 07777) < 0)
		r = -errno;
	if (r >= 0)
		r = cli_write_all(fd, text, strlen(text));
	if (r >= 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r >= 0)
		r = -errno;
	if (r >= 0 && !excl && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		unlink(excl ? path : tmp);
	return r;
}

/* F edited by FN and APP (unless a dry run), after the file as it was is saved as F's backup
 * (kept when there); nothing is written when they change nothing. A missing F is created
 * (root's, mode 0644) when APP adds lines to it. */
static int edit_file(struct adopt *ad, struct edited *f, line_fn fn, append_fn app)
{
	char *text = NULL, *out = NULL;
	struct stat st, bst;
	size_t len;
	int ex = -1, r;

	r = read_text(f->path, &text, &len, &st);
	if (r == -ENOENT) {
		f->created = true;
		st = (struct stat){ .st_mode = 0644 };
		r = (text = strdup("")) ? 0 : -ENOMEM;
	}
	if (r >= 0)
		r = edit_text(ad, text, fn, app, &out, f);
	if (r < 0) {
		cli_error(ad->cli, "cannot read %s: %s", f->path, r == -EINVAL ? "not a regular "
			  "text file of at most 1 MiB" : strerror(-r));
		ex = r == -ENOMEM ? EXIT_NOMEM : r == -EINVAL ? EXIT_MALFORMED : EXIT_INTERNAL;
		goto out;
	}
	f->backup_kept = lstat(f->backup, &bst) == 0;
	if (ad->a->dry_run || (!f->changed && !f->added))
		goto out;
	if (!f->backup_kept && !f->created && (r = write_text(f->backup, text, &st, true)) < 0) {
		cli_error(ad->cli, "cannot save %s as %s: %s; it is unchanged", f->path, f->backup,
			  strerror(-r));
		ex = EXIT_INTERNAL;
	} else if ((r = write_text(f->path, out, &st, false)) < 0) {
		cli_error(ad->cli, "cannot write %s: %s; it is unchanged", f->path, strerror(-r));
		ex = EXIT_INTERNAL;
	}
	f->rewritten = r >= 0;
out:
	free(text);
	free(out);
	return ex;
}

static const char *const next_steps[] = {
	"add a recovery key to each volume (kekcrypt recovery add DEVICE, with --header FILE for "
	"the OS volume) before the initramfs is rebuilt: once the BEK disk is detached, it is what "
	"opens a volume when no KEK answers",
	"remove ADE's initramfs hooks (initramfs-tools: crypt-ade-hook, crypt-ade-boot, "
	"luksheader, azure_crypt_key.sh; dracut: 91ade, 91adeOnline, /etc/dracut.conf.d/ade.conf "
	"and the rd.luks.ade.* kernel arguments), then rebuild the initramfs (update-initramfs -u "
	"-k all, or dracut -f --regenerate-all)",
	"run kekcrypt doctor: it checks that the boot can unlock every volume through kekcrypt",
	"after an unattended boot through kekcrypt, detach the BEK disk and remove ADE from the "
	"VM's settings (Azure keeps showing the disks as ADE-encrypted)",
	"the BEK passphrase still opens each volume (its keyslot stays): remove it (cryptsetup "
	"luksRemoveKey) once the boot no longer needs it, or keep it as a recovery path",
};

static json_object *volume_json(const struct adopt *ad, const struct ade_volume *v)
{
	json_object *o = json_object_new_object(), *toks = json_object_new_array();
	char line[4200];

	json_object_object_add(o, "name", json_object_new_string(v->e->name));
	json_object_object_add(o, "device", json_object_new_string(v->device));
	json_object_object_add(o, "header", v->header[0] ? json_object_new_string(v->header) :
			       NULL);
	json_object_object_add(o, "key_file", json_object_new_string(v->key_name));
	json_object_object_add(o, "method", json_object_new_string(v->os ? "keyscript" :
								   "token-plugin"));
	json_object_object_add(o, "luks1", json_object_new_boolean(v->luks1));
	json_object_object_add(o, "converted", json_object_new_boolean(v->converted));
	json_object_object_add(o, "header_backup", v->luks1 ? json_object_new_string(v->backup) :
			       NULL);
	json_object_object_add(o, "auth_keyslot", v->auth_keyslot >= 0 ?
			       json_object_new_int(v->auth_keyslot) : NULL);
	for (size_t i = 0; i < ad->a->n_keks; i++) {
		json_object *t = json_object_new_object();

		json_object_object_add(t, "kek", json_object_new_string(ad->a->keks[i]));
		json_object_object_add(t, "token", v->tokens[i] >= 0 ?
				       json_object_new_int(v->tokens[i]) : NULL);
		json_object_object_add(t, "added", json_object_new_boolean(v->added[i]));
		json_object_array_add(toks, t);
	}
	json_object_object_add(o, "tokens", toks);
	json_object_object_add(o, "crypttab_line", new_line(v, line, sizeof(line)) >= 0 ?
			       json_object_new_string(line) : NULL);
	json_object_object_add(o, "source", json_object_new_string(origin(v)));
	json_object_object_add(o, "ade_disable_started", json_object_new_boolean(v->cleartext));
	json_object_object_add(o, "fstab_line", v->mount_point &&
			       fstab_new_line(v, line, sizeof(line)) >= 0 ?
			       json_object_new_string(line) : NULL);
	return o;
}

static void print_json(const struct adopt *ad)
{
	json_object *o = cli_json_new(ad->cli, "adopt"), *vols = json_object_new_array();
	json_object *steps = json_object_new_array();

	json_object_object_add(o, "from", json_object_new_string("ade"));
	json_object_object_add(o, "dry_run", json_object_new_boolean(ad->a->dry_run));
	json_object_object_add(o, "already_adopted", json_object_new_boolean(!ad->n));
	json_object_object_add(o, "bek", ad->bek_name ? json_object_new_string(ad->bek_name) :
			       NULL);
	json_object_object_add(o, "crypttab", json_object_new_string(ad->crypttab.path));
	json_object_object_add(o, "crypttab_backup", json_object_new_string(ad->crypttab.backup));
	json_object_object_add(o, "crypttab_rewritten",
			       json_object_new_boolean(ad->crypttab.rewritten));
	json_object_object_add(o, "fstab", json_object_new_string(ad->fstab.path));
	json_object_object_add(o, "fstab_backup", json_object_new_string(ad->fstab.backup));
	json_object_object_add(o, "fstab_bek_lines", json_object_new_int((int)ad->fstab.changed));
	json_object_object_add(o, "fstab_rewritten", json_object_new_boolean(ad->fstab.rewritten));
	json_object_object_add(o, "fstab_lines_added", json_object_new_int((int)ad->fstab.added));
	json_object_object_add(o, "azure_crypt_mount", ad->acm_active ?
			       json_object_new_string(ad->acm) : NULL);
	json_object_object_add(o, "azure_crypt_mount_backup", ad->acm_active ?
			       json_object_new_string(ad->acm_backup) : NULL);
	json_object_object_add(o, "azure_crypt_mount_moved",
			       json_object_new_boolean(ad->acm_moved));
	for (size_t i = 0; i < ad->n; i++)
		json_object_array_add(vols, volume_json(ad, &ad->vols[i]));
	json_object_object_add(o, "volumes", vols);
	for (size_t i = 0; i < sizeof(next_steps) / sizeof(next_steps[0]); i++)
		json_object_array_add(steps, json_object_new_string(next_steps[i]));
	json_object_object_add(o, "next_steps", steps);
	cli_print_json(ad->cli, o);
}

/* A cleartext key says that ADE had started a disable (decryption) of V: tell the user. */
static void print_cleartext(const struct adopt *ad, const struct ade_volume *v)
{
	printf("  ADE had started a disable (decryption) of this volume: authorised by its "
	       "cleartext key %s/%s", ad->ade_dir, v->key_name);
	if (v->auth_keyslot >= 0)
		printf(" (keyslot %d)", v->auth_keyslot);
	printf(", not the BEK passphrase; once kekcrypt unlocks it, remove the key's keyslot "
	       "(cryptsetup luksKillSlot) and the file\n");
}

static void print_volume(const struct adopt *ad, const struct ade_volume *v)
{
	const char *would = ad->a->dry_run ? "would be " : "";
	const char *auth = v->cleartext ? "ADE's cleartext key" : "the BEK passphrase";

	printf("%s (%s%s%s):\n", v->e->name, v->device, v->header[0] ? ", header " : "",
	       v->header);
	if (v->legacy)
		printf("  listed in %s (ADE's extension opened and mounted it after boot)\n",
		       ad->acm);
	if (v->cleartext)
		print_cleartext(ad, v);
	if (v->luks1)
		printf("  %sconverted from LUKS1 to LUKS2, its LUKS1 header saved in %s\n",
		       ad->a->dry_run ? "would be " : v->converted ? "" : "not ", v->backup);
	for (size_t i = 0; i < ad->a->n_keks; i++) {
		if (v->tokens[i] >= 0 && !v->added[i])
			printf("  has a token for %s already (token %d)\n", ad->a->keks[i],
			       v->tokens[i]);
		else if (v->added[i])
			printf("  token %d added for %s, authorised by %s (keyslot %d, which "
			       "stays)\n", v->tokens[i], ad->a->keks[i], auth, v->auth_keyslot);
		else if (v->auth_keyslot >= 0)
			printf("  a token for %s %sadded, authorised by %s (keyslot %d)\n",
			       ad->a->keks[i], would, auth, v->auth_keyslot);
		else
			printf("  a token for %s %sadded, authorised by %s\n", ad->a->keks[i],
			       would, auth);
	}
}

/* "FILE: rewritten; ADE's is saved as FILE.ade" */
static void print_edited(const struct adopt *ad, const struct edited *f, const char *done)
{
	if (f->created) {
		printf("%s: %screated\n", f->path, ad->a->dry_run ? "would be " : "");
		return;
	}
	printf("%s: %s%s; ADE's %s %s\n", f->path, ad->a->dry_run ? "would be " : "", done,
	       f->backup_kept ? "was saved already in" : ad->a->dry_run ? "would be saved as" :
	       "is saved as", f->backup);
}

static void print_text(const struct adopt *ad)
{
	char line[4200];

	if (!ad->n) {
		printf("%s: no entry uses a key file of the BEK volume: already adopted (ADE's "
		       "crypttab is %s); nothing to do\n", ad->crypttab.path, ad->crypttab.backup);
		return;
	}
	for (size_t i = 0; i < ad->n; i++)
		print_volume(ad, &ad->vols[i]);
	print_edited(ad, &ad->crypttab, "rewritten");
	for (size_t i = 0; i < ad->n; i++)
		if (new_line(&ad->vols[i], line, sizeof(line)) >= 0)
			printf("  %s\n", line);
	if (ad->fstab.changed || ad->fstab.added)
		print_edited(ad, &ad->fstab, !ad->fstab.added ? "without the BEK volume's line" :
			     ad->fstab.changed ? "without the BEK volume's line, with these lines" :
			     "with these lines");
	for (size_t i = 0; i < ad->n; i++)
		if (ad->vols[i].mount_point && !ad->vols[i].in_fstab &&
		    fstab_new_line(&ad->vols[i], line, sizeof(line)) >= 0)
			printf("  %s\n", line);
	if (ad->acm_active)
		printf("%s: %smoved aside to %s (ADE's extension no longer opens its volumes)\n",
		       ad->acm, ad->a->dry_run ? "would be " : "", ad->acm_backup);
	printf("What is left to do:\n");
	for (size_t i = 0; i < sizeof(next_steps) / sizeof(next_steps[0]); i++)
		printf("  - %s\n", next_steps[i]);
}

/* Mount DEV (VFAT) read-only on a new private directory, in a mount namespace of this process
 * alone: nobody else sees it. The directory stays open (*R_FD) after the mount is detached, so
 * nothing is left mounted whatever happens next. */
static int bek_mount(const char *dev, int *r_fd)
{
	const unsigned long flags = MS_NOSUID | MS_NODEV | MS_NOEXEC;
	char dir[] = "/tmp/kekcrypt-bek.XXXXXX";
	int fd = -1, r = 0;

	/* The type is ignored for a change of propagation ("none": valgrind checks it). */
	if (unshare(CLONE_NEWNS) < 0 || mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0)
		return -errno;
	if (!mkdtemp(dir))
		return -errno;
	if (mount(dev, dir, "vfat", MS_RDONLY | flags, "fmask=0177,dmask=0077") < 0) {
		r = -errno;
		/* Mounted read-write already (ADE's fstab line mounts it on /mnt/azure_bek_disk):
		 * the kernel does not mount a filesystem read-only while it is mounted read-write
		 * (EBUSY). A read-write mount of it is that same mount's filesystem (EBUSY again
		 * if it is not mounted but held by another user), made read-only here at once, for
		 * this mount point alone. */
		if (r == -EBUSY && mount(dev, dir, "vfat", flags, NULL) == 0) {
			r = mount(NULL, dir, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | flags, NULL) < 0 ?
			    -errno : 0;
			if (r < 0)
				(void)umount2(dir, MNT_DETACH);
		}
	}
	if (r == 0) {
		fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			r = -errno;
		(void)umount2(dir, MNT_DETACH);
	}
	(void)rmdir(dir);
	if (r >= 0)
		*r_fd = fd;
	return r;
}

/* The BEK volume's device: --bek DEVICE, else the filesystem labelled "BEK VOLUME" (libblkid;
 * a cache of /dev/null: nothing written); it must hold VFAT. In *R_DEV, or an exit code. */
static int bek_device(struct adopt *ad, char **r_dev)
{
	blkid_cache cache = NULL;
	char *dev = NULL, *type = NULL;
	int ex = -1;

	if (blkid_get_cache(&cache, "/dev/null") < 0)
		return cli_fail(ad->cli, -ENOMEM);
	dev = ad->a->bek ? strdup(ad->a->bek) : blkid_evaluate_tag("LABEL", ADE_BEK_LABEL, &cache);
	type = dev ? blkid_get_tag_value(cache, "TYPE", dev) : NULL;
	if (!dev) {
		cli_error(ad->cli, "no BEK volume: no filesystem is labelled '%s' (attach the BEK "
			  "disk, or name it with --bek DIR|DEVICE)", ADE_BEK_LABEL);
		ex = EXIT_NOENT;
	} else if (!type || strcmp(type, "vfat")) {
		cli_error(ad->cli, "the BEK volume %s holds %s, not VFAT", dev,
			  type ? type : "no filesystem");
		ex = EXIT_MALFORMED;
	}
	free(type);
	blkid_put_cache(cache);
	if (ex >= 0)
		free(dev);
	else
		*r_dev = dev;
	return ex;
}

/* The BEK volume's files: --bek DIR (mounted), or --bek DEVICE or the one labelled "BEK
 * VOLUME", mounted here. -1 to go on (ad->bek_fd), or an exit code. */
static int bek_open(struct adopt *ad)
{
	const char *bek = ad->a->bek;
	struct stat st;
	bool by_device = !bek || (stat(bek, &st) == 0 && S_ISBLK(st.st_mode));
	int ex, r;

	if (by_device && (ex = bek_device(ad, &ad->bek_name)) >= 0)
		return ex;
	if (!by_device && !(ad->bek_name = strdup(bek)))
		return cli_fail(ad->cli, -ENOMEM);
	if (by_device) {
		r = bek_mount(ad->bek_name, &ad->bek_fd);
	} else {
		ad->bek_fd = open(bek, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		r = ad->bek_fd < 0 ? -errno : 0;
	}
	if (r < 0) {
		cli_error(ad->cli, "the BEK volume %s: %s", ad->bek_name, by_device && r == -ENODEV ?
			  "this kernel cannot mount VFAT" : strerror(-r));
		return by_device ? EXIT_MOUNT : r == -ENOENT || r == -ENOTDIR ? EXIT_NOENT :
		       EXIT_ACCESS;
	}
	if (by_device && !ad->cli->json)
		printf("BEK volume: %s (mounted read-only, privately)\n", ad->bek_name);
	return -1;
}

/* ADE's directory under --root, for the cleartext keys, when a volume needs one. -1 to go on,
 * or an exit code. */
static int ade_dir_open(struct adopt *ad)
{
	bool need = false;
	int err;

	for (size_t i = 0; i < ad->n; i++)
		need |= ad->vols[i].cleartext;
	if (!need)
		return -1;
	ad->ade_fd = open(ad->ade_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ad->ade_fd >= 0)
		return -1;
	err = errno;
	cli_error(ad->cli, "%s: %s", ad->ade_dir, strerror(err));
	return err == ENOENT || err == ENOTDIR ? EXIT_NOENT : EXIT_ACCESS;
}

/* azure_crypt_mount renamed to azure_crypt_mount.ade (never over one), once crypttab and fstab
 * open and mount its volumes: ADE's leftovers cannot open them a second time. */
static int acm_move(struct adopt *ad)
{
	int err;

	if (!ad->acm_active || ad->a->dry_run)
		return -1;
	if (renameat2(AT_FDCWD, ad->acm, AT_FDCWD, ad->acm_backup, RENAME_NOREPLACE) < 0) {
		err = errno;
		cli_error(ad->cli, "cannot move %s aside to %s: %s", ad->acm, ad->acm_backup,
			  strerror(err));
		return err == EEXIST ? EXIT_EXISTS : EXIT_INTERNAL;
	}
	ad->acm_moved = true;
	return -1;
}

/* Check every volume, then (unless a dry run) enrol each and rewrite crypttab. */
static int adopt_volumes(struct adopt *ad)
{
	bool need_bek = false;
	int ex;

	for (size_t i = 0; i < ad->n; i++)
		need_bek |= !ad->vols[i].cleartext;
	if (need_bek && (ex = bek_open(ad)) >= 0)
		return ex;
	if ((ex = ade_dir_open(ad)) >= 0)
		return ex;
	for (size_t i = 0; i < ad->n; i++)
		if ((ex = check_volume(ad, &ad->vols[i])) >= 0)
			return ex;
	for (size_t i = 0; i < ad->n && !ad->a->dry_run; i++)
		if ((ex = enrol_volume(ad, &ad->vols[i])) >= 0)
			return ex;
	/* Last: the boot needs the BEK volume until crypttab no longer names it. */
	if ((ex = edit_file(ad, &ad->crypttab, crypttab_line, crypttab_append)) >= 0)
		return ex;
	if ((ex = edit_file(ad, &ad->fstab, fstab_line, fstab_append)) >= 0)
		return ex;
	return acm_move(ad);
}

/* The files adopt reads and writes, under --root. */
static int adopt_paths(struct adopt *ad, char *ongoing)
{
	const struct adopt_args *a = ad->a;

	if (rooted(a, CRYPTTAB_PATH, ad->crypttab.path, PATH_MAX) < 0 ||
	    rooted(a, CRYPTTAB_PATH ".ade", ad->crypttab.backup, PATH_MAX) < 0 ||
	    rooted(a, "/etc/fstab", ad->fstab.path, PATH_MAX) < 0 ||
	    rooted(a, "/etc/fstab.ade", ad->fstab.backup, PATH_MAX) < 0 ||
	    rooted(a, ADE_ONGOING, ongoing, PATH_MAX) < 0 ||
	    rooted(a, ADE_CONFIG_DIR, ad->ade_dir, PATH_MAX) < 0 ||
	    rooted(a, ADE_CRYPT_MOUNT, ad->acm, PATH_MAX) < 0 ||
	    rooted(a, ADE_CRYPT_MOUNT ".ade", ad->acm_backup, PATH_MAX) < 0)
		return cli_usage_error(ad->cli, "--root '%s': too long", a->root);
	return -1;
}

/* crypttab, and azure_crypt_mount (*R_ACM, NULL when there is none); room for their volumes.
 * -1 to go on, or an exit code. */
static int adopt_read(struct adopt *ad, char **r_acm)
{
	struct cli *cli = ad->cli;
	struct stat st;
	size_t len = 0, lines = 1;
	int r;

	r = crypttab_read(ad->crypttab.path, &ad->tab);
	if (r < 0) {
		cli_error(cli, "cannot read %s: %s", ad->crypttab.path, strerror(-r));
		return cli_exit_code(r);
	}
	r = read_text(ad->acm, r_acm, &len, &st);
	if (r < 0 && r != -ENOENT) {
		cli_error(cli, "cannot read %s: %s", ad->acm, r == -EINVAL ? "not a regular text "
			  "file of at most 1 MiB" : strerror(-r));
		return r == -ENOMEM ? EXIT_NOMEM : r == -EINVAL ? EXIT_MALFORMED : EXIT_INTERNAL;
	}
	for (size_t i = 0; i < len; i++)
		lines += (*r_acm)[i] == '\n';
	ad->vols = calloc(ad->tab.n + lines, sizeof(*ad->vols));
	ad->legacy.entries = calloc(lines, sizeof(*ad->legacy.entries));
	return ad->vols && ad->legacy.entries ? -1 : cli_fail(cli, -ENOMEM);
}

/* The volumes of crypttab and azure_crypt_mount, checked as far as reading their lines goes.
 * -1 to go on, or an exit code. */
static int adopt_collect(struct adopt *ad)
{
	char *acm = NULL;
	int ex;

	if ((ex = adopt_read(ad, &acm)) < 0 && !(ex = ade_collect(ad)))
		ex = acm ? acm_parse(ad, acm) : -1;
	free(acm);
	if (ex < 0 && ad->acm_active && !access(ad->acm_backup, F_OK)) {
		cli_error(ad->cli, "%s exists already (ADE wrote %s again after an adopt?): "
			  "refusing to overwrite it; move it away first", ad->acm_backup, ad->acm);
		ex = EXIT_EXISTS;
	}
	return ex;
}

static int adopt_start(struct adopt *ad)
{
	struct cli *cli = ad->cli;
	char ongoing[PATH_MAX];
	int ex;

	if ((ex = adopt_paths(ad, ongoing)) >= 0 || (ex = cli_ctx(cli)))
		return ex;
	if (!access(ongoing, F_OK)) {
		cli_error(cli, "Azure Disk Encryption is still encrypting (%s exists): adopt once "
			  "it has finished", ongoing);
		return EXIT_BUSY;
	}
	if ((ex = adopt_collect(ad)) >= 0)
		return ex;
	if (!ad->n && access(ad->crypttab.backup, F_OK) && access(ad->acm_backup, F_OK)) {
		cli_error(cli, "%s: no entry uses a key file of the BEK volume (%s...) or an ADE "
			  "cleartext key, and there is no %s: no Azure Disk Encryption volume to "
			  "adopt", ad->crypttab.path, ADE_KEY_PREFIX, ad->acm);
		return EXIT_NOENT;
	}
	return ad->n ? adopt_volumes(ad) : -1;
}

static int adopt_run(struct cli *cli, int argc, char **argv)
{
	struct adopt_args a = { 0 };
	struct adopt ad = { .cli = cli, .a = &a, .bek_fd = -1, .ade_fd = -1 };
	int ex;

	if ((ex = adopt_parse(cli, argc, argv, &a)) >= 0)
		return ex;
	ex = adopt_start(&ad);
	if (ex < 0 && cli->json)
		print_json(&ad);
	else if (ex < 0)
		print_text(&ad);
	for (size_t i = 0; i < ad.n; i++) {
		free(ad.vols[i].device);
		free(ad.vols[i].mount_point);
		free(ad.vols[i].fs_type);
	}
	free(ad.vols);
	crypttab_clear(&ad.tab);
	crypttab_clear(&ad.legacy);
	if (ad.bek_fd >= 0)
		close(ad.bek_fd);
	if (ad.ade_fd >= 0)
		close(ad.ade_fd);
	free(ad.bek_name);
	return ex < 0 ? EXIT_OK : ex;
}
