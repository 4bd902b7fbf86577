/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Shared pieces of the kekcrypt command line tool. */
#ifndef KEKCRYPT_CLI_H
#define KEKCRYPT_CLI_H

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "kekcrypt.h"

/* Exit codes; documented in man/kekcrypt.8.adoc "EXIT STATUS". Never renumber. */
enum {
	EXIT_OK = 0,
	EXIT_INTERNAL = 1,
	EXIT_USAGE = 2,
	EXIT_NOENT = 3,
	EXIT_UNREACHABLE = 4,
	EXIT_REFUSED = 5,
	EXIT_CRED_REQUIRED = 6,
	EXIT_CRED_REJECTED = 7,
	EXIT_WRONG_KEY = 8,
	EXIT_MALFORMED = 9,
	EXIT_NOT_LUKS = 10,
	EXIT_EXISTS = 11,
	EXIT_BUSY = 12,
	EXIT_READONLY = 13,
	EXIT_ACCESS = 14,
	EXIT_UNSUPPORTED_URI = 15,
	EXIT_TIMEOUT = 16,
	EXIT_CANCELLED = 17,
	EXIT_NOMEM = 18,
	EXIT_NO_DM = 19,	/* -ENOTSUP: no device-mapper, or a library to load missing */
	EXIT_NOSPACE = 20,
	EXIT_TLS = 21,
	EXIT_BAD_RESPONSE = 22,
	EXIT_OTHER_VOLUME = 23,
	EXIT_DOCTOR = 24,	/* doctor: a boot-time unlock would fail, or a secret is exposed */
	EXIT_CONFIG = 25,	/* the configuration file: syntax, unknown section or key */
	EXIT_DEGRADED = 26,	/* verify --all: some tokens work, some do not */
	EXIT_LUKS1 = 27,	/* -ENOEXEC: a LUKS1 volume, to be converted to LUKS2 first */
	EXIT_HEADER_UNSUPPORTED = 28, /* --header given to a verb that does not support it */
	EXIT_MOUNT = 29,	/* adopt: the BEK volume could not be mounted */
};

#define CLI_CONFIG_PATH "/etc/kekcrypt/kekcrypt.conf"

/* Options every verb accepts. */
struct cli {
	const char *config;
	char config_abs[4096];	/* a relative --config made absolute */
	bool debug;
	bool verbose;		/* -v: the library's informational messages too */
	bool batch;
	bool json;
	int timeout;		/* --timeout seconds, 0 for the library default */
	const char *header;	/* --header: the volume's detached LUKS2 header */
	struct stat header_st;	/* --header as it was before the verb ran (header_seen) */
	bool header_seen;
	const char *verb;
	bool json_done;		/* a JSON document went to stdout */
	char last_error[2048];	/* the last error printed, for the JSON error object */
	char **argv;		/* what getopt parses now (messages about its options) */
	struct kc_ctx *ctx;
};

struct verb {
	const char *name;
	int (*run)(struct cli *cli, int argc, char **argv);
	const char *usage;	/* synopsis and options, shown by --help */
	const char *summary;	/* one line for the verb list */
	bool header;		/* it accepts --header (a detached LUKS2 header) */
};

/* One function maps every library error to an exit code. */
int cli_exit_code(int r);
/* Print "kekcrypt VERB: <explanation>" for error R and return its exit code. */
int cli_fail(struct cli *cli, int r);
/* Print why the configuration did not load (kc_config_load() gave R) and return its exit
 * code: EXIT_CONFIG for a file that does not parse. */
int cli_config_fail(struct cli *cli, int r);
/* An interrupted rekey on DEVICE: true and *R_ST filled (kc_rekey_state()). */
bool cli_rekey_state(struct cli *cli, const char *device, struct kc_rekey_state *r_st);
/* cli_fail() for a verb on DEVICE: when a rekey is in progress there, say that first (what
 * made the verb fail, in parentheses) and how to finish it; a key that no longer matches is
 * then EXIT_BUSY. */
int cli_fail_device(struct cli *cli, const char *device, int r);
/* dump's view of an interrupted rekey: JSON, or text lines on stdout. */
json_object *cli_rekey_json(const struct kc_rekey_state *st);
void cli_rekey_text(const char *device, const struct kc_rekey_state *st);
/* Print a usage error and return EXIT_USAGE. */
int cli_usage_error(struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Create the library context from the common options: 0, or the exit code to return. */
int cli_ctx(struct cli *cli);
/* cli_ctx(), and kc_config_check(): each problem goes to FN, also why the configuration did
 * not load (kind CLI_CONFIG_UNLOADABLE). 0 with *R_PROBLEMS set, or the exit code of a
 * configuration that did not load. */
#define CLI_CONFIG_UNLOADABLE (-1)
int cli_ctx_checked(struct cli *cli, kc_config_fn fn, void *usrptr, int *r_problems);
/* Ask for confirmation on a terminal; true to go on (also with -q, or without a terminal). */
bool cli_confirm(struct cli *cli, const char *what);
/* Print "kekcrypt VERB: <message>" on stderr. */
void cli_error(struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Write all of BUF (LEN bytes) to FD, through short writes and EINTR: 0 or -errno. */
int cli_write_all(int fd, const char *buf, size_t len);

/* --header given to verb V, which does not take it: say so, return EXIT_HEADER_UNSUPPORTED. */
int cli_header_refuse(struct cli *cli, const struct verb *v);
/* Parse the common options inside a verb's getopt loop: 0 if C is not one, 1 if it was
 * handled, 2 if the verb must stop and return *R_EXIT (--help, a usage error). */
int cli_common_opt(struct cli *cli, int c, const struct verb *v, int *r_exit);
/* Parse argv of a verb that has only the common options: -1 to go on, else an exit code. */
int cli_parse_common_only(struct cli *cli, int argc, char **argv, const struct verb *v);
/* Parse a non-negative integer argument; -1 if it is not one. */
int cli_parse_int(const char *s, int max);
/* Resolve a --token argument ARG of DEVICE: a token ID, or the KEK URI of exactly one
 * kekcrypt token. *R_ID is the id (-1 when ARG is NULL); returns -1 to go on, else the exit
 * code (the message printed: no such token, or several with that KEK). */
int cli_token_id(struct cli *cli, const char *device, const char *arg, int *r_id);
/* Set .size in each element of ARR, an array of a size-versioned kekcrypt.h struct. */
#define CLI_SIZED_ARRAY(arr)                                                                \
	do {                                                                                 \
		for (size_t i_ = 0; i_ < sizeof(arr) / sizeof((arr)[0]); i_++)              \
			(arr)[i_].size = sizeof((arr)[0]);                                  \
	} while (0)
/* The KMS safety checks of format and kek add (kc_kek_check()) on the N KEKs URIS: each
 * warning on stderr, and all of them as a JSON array of {"kek","kind","message"} for --json
 * (a KEK that could not be checked: kind "unchecked"). */
json_object *cli_kek_warnings(struct cli *cli, const char *const *uris, size_t n);
/* A --json output object: {"schema": "kekcrypt.NAME/1"}, NAME the verb with '-' for ' '
 * when NULL. Every JSON document kekcrypt prints starts so (man page, JSON OUTPUT). */
json_object *cli_json_new(const struct cli *cli, const char *name);
/* Add "uuid": the LUKS UUID of DEVICE, or null when its header cannot be read. */
void cli_json_uuid(struct cli *cli, json_object *obj, const char *device);
/* Print {"schema": "kekcrypt.NAME/1", "device", "uuid", KEY: VALUE}. */
void cli_print_device_int(struct cli *cli, const char *name, const char *device,
			  const char *key, int value);
/* Print a json-c object to stdout and release it. */
void cli_print_json(struct cli *cli, json_object *obj);
/* At exit with code EX: with --json, a failure that printed no JSON document prints the
 * error object {"schema": "kekcrypt.error/1", "error": {...}} on stdout. Returns EX. */
int cli_finish(struct cli *cli, int ex);
/* After a verb: when it changed the detached header --header names, and crypttab has the
 * initramfs unlock a volume through that header (so the image holds a copy of it), say on
 * stderr that the image must be built again before the next boot. */
void cli_header_note(const struct cli *cli);
struct crypttab_entry;
/* Whether HEADER changed since it was as BEFORE says (stat()). */
bool cli_header_changed(const char *header, const struct stat *before);
/* Whether the crypttab entry E has the initramfs unlock its volume through the detached
 * HEADER (its header= is that file), so that the image holds a copy of it. */
bool cli_header_in_initramfs(const struct crypttab_entry *e, const char *header);
/* The note that HEADER, which the initramfs unlocks crypttab's NAME through, changed. */
void cli_header_note_entry(const char *header, const char *name);
void cli_help(const struct verb *v);
/* Show a volume (dump) or only its kekcrypt tokens (kek list). */
int cmd_show(struct cli *cli, const char *device, bool list_only);

/* One volume's run of a verb that --crypttab repeats: text on stdout as without --crypttab,
 * its JSON document (NULL when none: the error is printed) in *R_DOC, the exit code. */
typedef int (*cli_volume_fn)(struct cli *cli, const char *device, void *usrptr,
			     json_object **r_doc);
/* --crypttab[=PATH]: FN on every entry of crypttab PATH (NULL: /etc/crypttab) whose device is
 * a LUKS2 volume with a kekcrypt token (the others are listed as skipped, with why), in
 * order; one "kekcrypt.crypttab-run/1" document with --json. The exit code of the first
 * volume that failed, or EXIT_OK. */
int cli_crypttab_run(struct cli *cli, const char *path, cli_volume_fn fn, void *usrptr);
/* The option --crypttab[=PATH]: its value is optional, so in "--crypttab FILE" FILE is an
 * argument (a DEVICE, which the verbs refuse with --crypttab). */
#define OPT_CRYPTTAB 0x104
#define CRYPTTAB_LONGOPT { "crypttab", optional_argument, NULL, OPT_CRYPTTAB }

/* Short options mean what they mean in cryptsetup, or do not exist: -t is the timeout (there
 * is no -T: cryptsetup's --tries), the token only --token. The leading ':' makes getopt
 * return ':' for a missing argument and print nothing itself (cli_common_opt() does, with the
 * verb). */
#define COMMON_SHORTOPTS ":hqvt:"
#define COMMON_LONGOPTS                                                                      \
	{ "help", no_argument, NULL, 'h' }, { "batch-mode", no_argument, NULL, 'q' },        \
	{ "config", required_argument, NULL, 0x100 }, { "debug", no_argument, NULL, 0x101 }, \
	{ "json", no_argument, NULL, 0x102 }, { "timeout", required_argument, NULL, 't' },   \
	{ "verbose", no_argument, NULL, 'v' }, { "header", required_argument, NULL, 0x105 }

/* --header, in the help of the verbs that take it (struct verb's header). */
#define DETACHED_HEADER_USAGE                                                                \
	"  --header FILE     DEVICE's detached LUKS2 header (cryptsetup --header, crypttab\n"  \
	"                    header=): read and written there, DEVICE holds the data only\n"

#define OPT_TOKEN 0x103
#define TOKEN_LONGOPT { "token", required_argument, NULL, OPT_TOKEN }

#define COMMON_USAGE                                                                         \
	"\nCommon options (before or after the verb):\n"                                      \
	"  --config FILE     provider credentials (default /etc/kekcrypt/kekcrypt.conf)\n"   \
	"  --debug           debug messages on stderr (never secrets)\n"                     \
	"  -v, --verbose     say on stderr which configuration and deadline are used, and\n"  \
	"                    libcryptsetup's notices (--debug says everything)\n"            \
	"  --json            machine-readable output (schemas: man kekcrypt, JSON OUTPUT);\n"\
	"                    an error is a kekcrypt.error/1 object on stdout too\n"          \
	"  -q, --batch-mode  do not ask for confirmation\n"                                  \
	"  -t, --timeout SEC overall deadline for reaching the KMS/HSM (default 30)\n"       \
	"  -h, --help        this help\n"

extern const struct verb verb_format, verb_verify, verb_dump, verb_kek, verb_open, verb_close,
	verb_status, verb_recovery, verb_header, verb_rekey, verb_encrypt, verb_keyscript_passphrase,
	verb_keyscript_normalise, verb_doctor, verb_repair, verb_boot_needs, verb_config,
	verb_firstboot, verb_template, verb_adopt;

/* A template mark's state (kc_template_get()) as JSON and the text show it: "none",
 * "template", "rekeyed", or "invalid" for an error. */
const char *cli_template_state(int state);

/* Recovery keys (cmd-lifecycle.c), shared with format --recovery and open --recovery. The
 * KDF cost options are for tests and not shown by --help (recovery keyslots use PBKDF2 with
 * fixed iterations: --pbkdf-force-iterations changes them, the other two are ignored). */
enum { OPT_PBKDF_MEMORY = 0x300, OPT_ITER_TIME, OPT_PBKDF_ITERATIONS };
/* format and encrypt: a new volume's options. */
#define CLI_MAX_KEKS 16
enum { OPT_SECTOR_SIZE = 0x320, OPT_UUID };
#define FORMAT_SHORTOPTS "k:c:s:l:f"
#define FORMAT_LONGOPTS                                                                      \
	{ "kek", required_argument, NULL, 'k' },                                            \
	{ "cipher", required_argument, NULL, 'c' },                                         \
	{ "key-size", required_argument, NULL, 's' },                                       \
	{ "label", required_argument, NULL, 'l' },                                          \
	{ "sector-size", required_argument, NULL, OPT_SECTOR_SIZE },                        \
	{ "uuid", required_argument, NULL, OPT_UUID },                                      \
	{ "force", no_argument, NULL, 'f' }
#define FORMAT_USAGE                                                                         \
	"  -k, --kek URI        KEK to wrap the data key with (repeatable, up to 16)\n"       \
	"  -c, --cipher SPEC    cipher (default aes-xts-plain64)\n"                           \
	"  -s, --key-size BITS  data key size (default 512)\n"                                \
	"  -l, --label LABEL    LUKS2 label\n"                                                \
	"      --sector-size N  encryption sector size (default 512)\n"                       \
	"      --uuid UUID      the volume's UUID (default: a random one)\n"
/* --recovery of a new volume (format, encrypt): add the recovery key to DEVICE, which is DONE
 * ("formatted"): 0, or the exit status after saying it has none. */
int cli_new_volume_recovery(struct cli *cli, const char *device, const char *done,
			    const struct kc_recovery_params *rp, char **r_key, int *r_slot);
/* ... and show KEY (NULL: nothing): in OUT (JSON), or on stdout with a warning on stderr. */
void cli_new_volume_recovery_print(json_object *out, const char *key, int slot);
/* One of those options in P (whose kek_uris has room for CLI_MAX_KEKS): 1, 0 when C is not
 * one of them, or -EXIT after a usage error. */
int cli_format_opt(struct cli *cli, int c, struct kc_format_params *p);

#define RECOVERY_PBKDF_LONGOPTS                                                              \
	{ "pbkdf-memory", required_argument, NULL, OPT_PBKDF_MEMORY },                      \
	{ "iter-time", required_argument, NULL, OPT_ITER_TIME },                            \
	{ "pbkdf-force-iterations", required_argument, NULL, OPT_PBKDF_ITERATIONS }
/* 1 if C was one of those options (stored in P), 0 if not, -EXIT_USAGE on a bad value. */
int cli_recovery_opt(struct cli *cli, int c, struct kc_recovery_params *p);
/* What authorises kek add and recovery add on a volume that no kekcrypt token unlocks (one
 * made by cryptsetup or clevis, or whose KEKs are gone): an existing passphrase from
 * --key-file FILE|- (the whole content, as cryptsetup's --key-file) or asked on a terminal,
 * or with --recovery-key a recovery key. The secret lives in locked, non-dumpable memory. */
struct cli_auth {
	const char *key_file;	/* --key-file: FILE, "-" for standard input */
	bool recovery_key;	/* --recovery-key */
	char *secret;		/* NULL: authorised by a kekcrypt token (or cleared) */
	size_t len, cap;
	bool used;		/* a secret was read (also after cli_auth_clear()) */
};
enum { OPT_KEY_FILE = 0x310, OPT_RECOVERY_KEY };
#define AUTH_LONGOPTS                                                                        \
	{ "key-file", required_argument, NULL, OPT_KEY_FILE },                              \
	{ "recovery-key", no_argument, NULL, OPT_RECOVERY_KEY }
/* 1 if C was one of AUTH_LONGOPTS (stored in A), else 0. */
int cli_auth_opt(int c, struct cli_auth *a);
/* Read the secret into A when an option asks for one, when NEED (e.g. --wipe-passphrase), or
 * when DEVICE has no kekcrypt token at all: -1 to go on (A->secret NULL: the token path),
 * else an exit code (the message printed). */
int cli_auth_read(struct cli *cli, const char *device, bool need, struct cli_auth *a);
/* Read at most MAX bytes from FD into A's locked memory (all of it, as a key file): 0, -EFBIG
 * when there is more, -errno. */
int cli_auth_read_fd(struct cli_auth *a, int fd, size_t max);
/* Wipe and release A's secret. */
void cli_auth_clear(struct cli_auth *a);
/* "token", "passphrase" or "recovery-key": what authorised the change. */
const char *cli_auth_kind(const struct cli_auth *a);

/* Add a recovery key and print it once (stdout; --json: in the object); AUTH NULL or without
 * a secret: authorised by a kekcrypt token. */
int cli_recovery_add(struct cli *cli, const char *device, const struct kc_recovery_params *p,
		     const struct cli_auth *auth);
/* Read a recovery key from KEY_FILE ("-": stdin), else the terminal without echo (stdin when
 * it is not a terminal): -1 to go on, else an exit code (the message is printed). */
int cli_read_recovery_key(struct cli *cli, const char *device, const char *key_file, char *buf,
			  size_t size, size_t *r_len);

/* dump: recovery keys and interrupted KEK rotations. _before() reads the rotation state as it
 * is, before a command loads (and so recovers) the volume; _after() reads it again. */
#define LC_MAX_PENDING 8
#define LC_MAX_RECOVERY 32
struct cli_lifecycle {
	struct kc_rotation_pending before[LC_MAX_PENDING], after[LC_MAX_PENDING];
	int n_before, n_after;
	struct kc_recovery_info rec[LC_MAX_RECOVERY];
	int n_rec;
};
void cli_lifecycle_before(struct cli *cli, const char *device, struct cli_lifecycle *lc);
void cli_lifecycle_after(struct cli *cli, const char *device, struct cli_lifecycle *lc);
void cli_lifecycle_text(const struct cli_lifecycle *lc);
void cli_lifecycle_json(json_object *obj, const struct cli_lifecycle *lc);

#endif
