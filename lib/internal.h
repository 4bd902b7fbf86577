/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Internal interfaces of libkekcrypt shared between its files. */
#ifndef KEKCRYPT_INTERNAL_H
#define KEKCRYPT_INTERNAL_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "kekcrypt.h"

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Hand ownership over: return the pointer and clear the variable. */
#define TAKE_PTR(p)                                                                          \
	({                                                                                   \
		__typeof__(p) _p = (p);                                                      \
		(p) = NULL;                                                                  \
		_p;                                                                          \
	})

static inline void freep(void *p)
{
	free(*(void **)p);
}

static inline void closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}

/* ---------------------------------------------------------------------------------------- */
/* secret.c: locked, wiped memory for keys, passphrases, PINs and credentials.              */

struct kc_secret {
	size_t len;		/* bytes in use */
	size_t size;		/* bytes allocated in data */
	unsigned char data[];
};

/* Allocate SIZE zeroed bytes (len = size), mlock'ed best effort, excluded from core dumps. */
struct kc_secret *kc_secret_alloc(size_t size);
/* Copy LEN bytes into a new secret. */
struct kc_secret *kc_secret_dup(const void *buf, size_t len);
/* Wipe and free; NULL-safe. */
void kc_secret_free(struct kc_secret *s);
void kc_secret_freep(struct kc_secret **s);
/* Wipe LEN bytes so the compiler cannot elide it. */
void secret_wipe(void *buf, size_t len);
/* Constant-time comparison; 0 when equal. */
int secret_memeq(const void *a, const void *b, size_t len);

/* Wipe a stack array when it goes out of scope. */
struct secret_erase_ctx {
	void *p;
	size_t n;
};
static inline void secret_erasep(struct secret_erase_ctx *e)
{
	secret_wipe(e->p, e->n);
}
#define CLEANUP_ERASE_CAT2(a, b) a##b
#define CLEANUP_ERASE_CAT(a, b) CLEANUP_ERASE_CAT2(a, b)
#define CLEANUP_ERASE(var)                                                                   \
	_cleanup_(secret_erasep) struct secret_erase_ctx CLEANUP_ERASE_CAT(                 \
		_erase_, __COUNTER__) = { .p = &(var), .n = sizeof(var) }

/* ---------------------------------------------------------------------------------------- */
/* ctx.c: logging and error detail.                                                         */

struct kc_config;
struct audit;

/* State a part of the library keeps for the life of a context (see ctx_slot()). */
struct ctx_slot {
	const void *key;
	void *data;
	void (*free)(void *data);
};

struct kc_ctx {
	kc_log_fn log_fn;
	void *log_usrptr;
	int log_max;
	struct crypt_device *borrowed_cd; /* from kc_init_by_crypt_device(), not ours */
	struct kc_config *config;
	uint64_t deadline_ms;	/* util_now_ms() after which providers give up; 0: none */
	unsigned timeout_ms;	/* kc_set_timeout(); 0: CTX_DEFAULT_TIMEOUT_MS */
	unsigned retry_s;	/* kc_set_retry(); 0: one attempt */
	bool retry_set;		/* kc_set_retry() called: log attempts and the time of success */
	struct crypt_device *log_cd; /* kc_log_to_crypt_device(): log there instead of log_fn */
	struct ctx_slot *slots;	/* ctx_slot() */
	size_t n_slots;
	struct audit *audit;	/* the event of the public call under way (audit.c), or NULL */
	char *header;		/* kc_set_header(): the detached LUKS2 header, or NULL */
	char detail[2048];
};

void ctx_log(struct kc_ctx *ctx, int level, const char *fmt, ...) _printf_(3, 4);
/* What a part of the library keeps for the life of CTX (a provider's access tokens, the HTTP
 * connection cache), found by KEY, the address of something of the owner's: the data, or
 * NULL when none is set. */
void *ctx_slot(struct kc_ctx *ctx, const void *key);
/* Keep DATA under KEY (replacing nothing: KEY must be new); FREE_FN frees it with CTX. */
int ctx_slot_set(struct kc_ctx *ctx, const void *key, void *data, void (*free_fn)(void *));
/* Set the error detail shown to the user, log it at debug level, and return R. */
int ctx_fail(struct kc_ctx *ctx, int r, const char *fmt, ...) _printf_(3, 4);
/* Prefix the current detail with "PREFIX: ". */
void ctx_detail_prefix(struct kc_ctx *ctx, const char *fmt, ...) _printf_(2, 3);
/* Append to the current detail (cut at its size). */
void ctx_detail_suffix(struct kc_ctx *ctx, const char *fmt, ...) _printf_(2, 3);
/* What to say when adding a KEK or a recovery key fails because no token unlocks: another
 * way to authorise it (kek add, recovery add). */
#define ENROL_AUTH_HINT \
	"; without a working KEK, authorise with the recovery key (--recovery-key) or a " \
	"passphrase (--key-file)"
void ctx_detail_clear(struct kc_ctx *ctx);
/* Make sure the detail names DEVICE (prefix "device 'DEVICE'" unless it already does). */
void ctx_detail_device(struct kc_ctx *ctx, const char *device);

#define CTX_DEFAULT_TIMEOUT_MS 30000
/* Start the overall deadline of one operation (TIMEOUT_MS, or the context's default when 0);
 * ctx_deadline_end() clears it. Providers read ctx->deadline_ms. */
void ctx_deadline_start(struct kc_ctx *ctx, unsigned timeout_ms);
void ctx_deadline_end(struct kc_ctx *ctx);

#define log_dbg(ctx, ...) ctx_log((ctx), KC_LOG_DEBUG, __VA_ARGS__)
#define log_info(ctx, ...) ctx_log((ctx), KC_LOG_INFO, __VA_ARGS__)
/* A warning: KC_LOG_INFO to an application's log callback (whose levels are fixed), an error
 * in libcryptsetup's log (kc_log_to_crypt_device()), where INFO is a notice. */
#define CTX_LOG_WARNING (-2)
#define log_warn(ctx, fmt, ...) ctx_log((ctx), CTX_LOG_WARNING, "warning: " fmt, ##__VA_ARGS__)
/* Log at debug level and return R (a negative errno). */
#define log_dbg_errno(ctx, r, ...) ({ log_dbg((ctx), __VA_ARGS__); (r); })

/* ---------------------------------------------------------------------------------------- */
/* audit.c: the audit trail, one event per change and per unlock (see the top of audit.c).  */

struct audit {
	const char *event;	/* "kek-add", "unlock"... (kekcrypt(8), AUDIT) */
	const char *device;
	char uuid[40];		/* "": read from DEVICE's header when the event is written */
	char tokens[128];	/* token ids, space-separated */
	char keks[2048];	/* KEK URIs, space-separated */
	char from[2048];	/* the KEK URIs they replace (kek-rotate) */
	char fields[512];	/* more " key=value" pairs (audit_field()) */
	unsigned attempts;	/* unlock attempts; 0: not an unlock */
	uint64_t started_ms;
};

/* A public call that changes DEVICE or unlocks it starts its event A (on its stack) and ends
 * it with audit_end(); in between, the audit_*() notes below go to it (nothing when no event
 * is under way, or within a public call made by another). */
void audit_begin(struct kc_ctx *ctx, struct audit *a, const char *event, const char *device);
/* Write A's event with outcome R (a failure's error name and CTX's detail); returns R. */
int audit_end(struct kc_ctx *ctx, struct audit *a, int r);
/* Token ID and its KEK (may be NULL: recovery tokens). */
void audit_token(struct kc_ctx *ctx, int id, const char *kek);
void audit_kek(struct kc_ctx *ctx, const char *kek);
/* A KEK that a rotation replaced. */
void audit_from(struct kc_ctx *ctx, const char *kek);
/* Write the event under way now as EVENT, outcome ok (a long operation's start), and go on
 * with its token and KEK lists emptied. */
void audit_mark(struct kc_ctx *ctx, const char *event);
void audit_uuid(struct kc_ctx *ctx, const char *uuid);
/* One more " KEY=VALUE" (quoted as needed); never a secret. */
void audit_field(struct kc_ctx *ctx, const char *key, const char *value);
void audit_attempts(struct kc_ctx *ctx, unsigned attempts);

/* ---------------------------------------------------------------------------------------- */
/* config.c: "[section]" + "key = value" credentials file.                                  */

/* Load PATH; every section and key must pass CHECK (key NULL for a section header), whose
 * detail gets the prefix "PATH:LINE: ". */
typedef int (*config_check_fn)(struct kc_ctx *ctx, const char *section, const char *key);
int config_load(struct kc_ctx *ctx, const char *path, bool explicit_path, config_check_fn check,
		struct kc_config **r_config);
void config_free(struct kc_config *config);
/* The value of KEY in SECTION, or NULL. */
const char *config_get(const struct kc_config *config, const char *section, const char *key);
/* The Nth (from 0) value of KEY in SECTION, for keys that may be given on several lines
 * (lists such as allowed-hosts), or NULL. */
const char *config_get_nth(const struct kc_config *config, const char *section, const char *key,
			   size_t n);
/* Whether the configuration has any key in SECTION. */
bool config_section_used(const struct kc_config *config, const char *section);
/* The file the configuration came from (for messages). */
const char *config_path(const struct kc_config *config);

/* ---------------------------------------------------------------------------------------- */
/* policy.c: local policy over what a header names (see the top of policy.c).               */

/* What using one KEK touches, as its provider's needs() reports it. */
struct kek_needs {
	const char *section;	/* the provider's section of the config */
	char host[256];		/* remote endpoint (IPv6 in brackets), "" when local */
	unsigned port;
	const char *key_file;	/* a key file to read ([SECTION] allowed-paths), or NULL */
	const char *pin_file;	/* a PIN file to read, or NULL */
	const char *module;	/* a shared object to load, or NULL */
};

/* Whether KEY of SECTION (on any of its lines) names the file PATH (the same string, or the
 * same file once resolved). */
bool policy_names(struct kc_ctx *ctx, const char *section, const char *key, const char *path);


/* Each allowed-hosts entry of SECTION that is not HOST or HOST:PORT goes to BAD (ENTRY, LEN
 * bytes); a negative return of BAD stops the check with it. */
typedef int (*policy_bad_fn)(struct kc_ctx *ctx, const char *section, const char *entry,
			     size_t len, void *usrptr);
int policy_hosts_check(struct kc_ctx *ctx, const char *section, policy_bad_fn bad,
		       void *usrptr);
/* -EACCES (detail: what, and the config line that would allow it) unless the config and the
 * files' ownership allow everything in NEEDS. */
int policy_kek(struct kc_ctx *ctx, const struct kek_needs *needs);
/* ---------------------------------------------------------------------------------------- */
/* trust.c: files beyond other users' reach (see the top of trust.c).                       */

/* trust_*() flags: the file holds a secret (no access by group or others at all). */
#define TRUST_PRIVATE 1u

/* Check an open file FD (opened as PATH): regular, owned by root or the caller, not writable
 * (TRUST_PRIVATE: not accessible) by group or others, in directories safe from others. */
int trust_check_fd(struct kc_ctx *ctx, int fd, const char *path, const char *what,
		    unsigned flags);
/* Open PATH read-only and check it as trust_check_fd() does. */
int trust_open(struct kc_ctx *ctx, const char *path, const char *what, unsigned flags,
		int *r_fd);
/* The same for a file another library opens by path (CA bundle, client certificate). */
int trust_check_path(struct kc_ctx *ctx, const char *path, const char *what, unsigned flags);
/* The same for a directory others must not write into (a CA directory): it and those above. */
int trust_check_dir(struct kc_ctx *ctx, const char *path, const char *what);
/* Read a private file of at most MAX bytes into a secret (NUL-terminated, len excludes it);
 * -EFBIG when larger; every refusal with a detail naming WHAT and PATH. */
int trust_read_secret(struct kc_ctx *ctx, const char *path, const char *what, size_t max,
		       struct kc_secret **r_secret);

/* ---------------------------------------------------------------------------------------- */
/* retry.c: the one retry and deadline policy: which failures time may cure, how long to wait */
/* between attempts, when to stop.                                                          */

struct retry_policy {
	unsigned max_attempts;	/* 0: as many as the deadline allows */
	unsigned base_ms;	/* the first wait (before jitter), doubling... */
	unsigned cap_ms;	/* ...up to this */
};

struct retry {
	struct retry_policy policy;
	uint64_t deadline_ms;	/* util_now_ms() past which no wait may end; UINT64_MAX: none */
	uint64_t started_ms;
	unsigned attempts;	/* failed attempts so far */
};

enum retry_verdict {
	RETRY_AGAIN,		/* wait *r_wait_ms, then try again */
	RETRY_STOP_ATTEMPTS,	/* the policy's attempts are spent */
	RETRY_STOP_DEADLINE,	/* the wait would end at or past the deadline */
};

#define RETRY_NO_HINT UINT64_MAX

/* Whether a failure is one time may cure: KMS/HSM unreachable or timed out, TLS failing, a
 * bad answer (-EAGAIN, -ETIMEDOUT, -EPROTO, -EBADE). Everything else (refused, wrong key,
 * malformed token) fails the same way again. */
bool retry_transient(int r);
/* Start counting attempts under POLICY until DEADLINE_MS (util_now_ms() time; 0: none). */
void retry_init(struct retry *rt, const struct retry_policy *policy, uint64_t deadline_ms);
/* After a failed attempt that time may cure: count it, and say whether to try again and after
 * how long (exponential backoff with jitter, or HINT_MS, a server's Retry-After). */
enum retry_verdict retry_next(struct retry *rt, uint64_t hint_ms, uint64_t *r_wait_ms);
/* Milliseconds to the deadline (0 past it, UINT64_MAX without one). */
uint64_t retry_left_ms(const struct retry *rt);
void retry_sleep(uint64_t ms);

/* ---------------------------------------------------------------------------------------- */
/* util.c                                                                                   */

/* Read a whole file of at most MAX bytes (not secret). */
int util_read_file(const char *path, size_t max, unsigned char **r_buf, size_t *r_len);
/* Base64 (RFC 4648, padded, no line breaks). */
int util_base64_encode(const unsigned char *buf, size_t len, char **r_str);
/* Strict decode: only the alphabet, correct padding, length a multiple of 4. */
int util_base64_decode(const char *str, unsigned char **r_buf, size_t *r_len);
/* The size of PATH in bytes: a block device's, or a regular file's; -EINVAL for anything
 * else, -errno when it cannot be opened. */
int util_device_size(const char *path, uint64_t *r_size);
/* Monotonic milliseconds. */
uint64_t util_now_ms(void);
/* UTC time as "YYYY-MM-DDTHH:MM:SSZ". */
void util_utc_now(char buf[32]);
/* Test hook after each header write of a multi-write operation (KEK rotation, rekey): with
 * KC_TEST_CRASH_AT=N in the environment (secure_getenv), the Nth call of the process raises
 * SIGKILL, as a crash or power loss would stop it there. Unset, nothing. */
void util_crash_point(void);
/* One AES-256 key wrap with padding (RFC 5649) pass with the 32-byte KEY: wrap, or unwrap
 * (-EBADMSG when the integrity check fails). OUT holds IN_LEN + 8 bytes (wrap) or IN_LEN. */
int util_aes256_kwp(const unsigned char key[32], bool wrap, const unsigned char *in,
		    size_t in_len, unsigned char *out, size_t *r_out_len);
/* kekcrypt.h's size-versioned structs (KC_SIZED()): each starts with size_t size. The size
 * of TYPE's first version, up to and including its field LAST: */
#define SIZED_V1(type, last) (offsetof(type, last) + sizeof(((type *)0)->last))
/* Whether P (NULL allowed) has at least MIN bytes by its own .size. */
bool sized_ok(const void *p, size_t min);
/* Copy SRC, a whole struct of SIZE bytes, into DST (NULL: nothing) as far as DST's .size
 * goes; DST keeps its .size. */
void sized_put(void *dst, const void *src, size_t size);
/* The caller's parameters SRC into DST, a struct of SIZE bytes: what SRC has, zeros (the
 * defaults) for fields its .size does not reach. */
void sized_get(void *dst, size_t size, const void *src);
/* Element I of an array whose first element's .size is the stride. */
void *sized_at(void *base, size_t i);
/* HKDF-SHA256 of IKM with SALT and INFO into OUT_LEN bytes. */
int util_hkdf_sha256(const void *ikm, size_t ikm_len, const void *salt, size_t salt_len,
		     const char *info, unsigned char *out, size_t out_len);

/* ---------------------------------------------------------------------------------------- */
/* token.c: the LUKS2 token of type "kekcrypt".                                             */

#define TOKEN_TYPE "kekcrypt"
/* Tokens without a secret that mark keyslots: a recovery key's, a rekey's bridge. */
#define RECOVERY_TOKEN_TYPE "kekcrypt-recovery"
/* recovery.c: a recovery key as typed (any case, any dashes or blanks) -> its printed form,
 * the passphrase of its keyslot; -EINVAL when it is not one. */
int recovery_key_normalise(struct kc_ctx *ctx, const char *in, size_t len,
			   struct kc_secret **r_key);
#define BRIDGE_TOKEN_TYPE "kekcrypt-rekey"
#define TOKEN_FORMAT_VERSION 1u
/* A wrapped DEK: at most a 4096-bit RSA ciphertext. Anything larger is absurd. */
#define TOKEN_WRAPPED_MAX 512
#define TOKEN_URI_MAX 1023

struct token {
	int id;			/* LUKS2 token id, -1 before it is written */
	int keyslot;		/* bound keyslot, -1 if none */
	unsigned version;	/* kekcrypt-version */
	char *provider;		/* kekcrypt-provider: registry name */
	char *uri;		/* kekcrypt-key-id: the KEK URI */
	char *key_version;	/* kekcrypt-key-version: NULL if the KMS has none */
	char *alg;		/* kekcrypt-wrap-alg */
	char *created;		/* kekcrypt-created */
	unsigned char *wrapped;	/* decoded kekcrypt-wrapped-key */
	size_t wrapped_len;
};

void token_free(struct token *t);
void token_freep(struct token **t);
/* Parse and validate a token JSON text; the detail names the first defect. */
int token_parse(struct kc_ctx *ctx, const char *json, struct token **r_token);
/* Serialise (validates first); the string is freed with free(). */
int token_serialise(struct kc_ctx *ctx, const struct token *t, char **r_json);

/* The marks kekcrypt adds to its tokens while a multi-write operation is under way: a KEK
 * rotation (the new token: the old one's id, and "prepared" or "verified"; rotate.c) and a
 * rekey (the new tokens: "new"; rekey.c). */
#define TOKEN_MARK_ROTATING_FROM "kekcrypt-rotating-from"
#define TOKEN_MARK_ROTATION_STATE "kekcrypt-rotation-state"
#define TOKEN_ROTATION_PREPARED "prepared"
#define TOKEN_ROTATION_VERIFIED "verified"
#define TOKEN_MARK_REKEY "kekcrypt-rekey"
#define TOKEN_REKEY_NEW "new"
/* The template mark (template.c): a token of this type, bound to no keyslot. */
#define FIRSTBOOT_SECTION "firstboot"
/* The configuration's check (config_load()): [firstboot] with its "kek" lines, else
 * provider_config_check(). */
int template_config_check(struct kc_ctx *ctx, const char *section, const char *key);
#define TEMPLATE_TOKEN_TYPE "kekcrypt-template"
/* Parse and validate a template mark's JSON text: its state (KC_TEMPLATE_MARKED or
 * KC_TEMPLATE_REKEYED) in *R_STATE, or -EINVAL with the defect in the detail. */
int token_template_parse(struct kc_ctx *ctx, const char *json, int *r_state);
/* A template mark of STATE as JSON text in BUF. */
int token_template_json(int state, char *buf, size_t size);
/* The string field KEY of the token JSON text, in BUF; false when absent (or too long). */
bool token_json_field(const char *json, const char *key, char *buf, size_t size);
/* The token JSON text with each of KEYS set to its value (a NULL value: removed). */
int token_json_set(const char *json, const char *const *keys, const char *const *values,
		   size_t n, char **r_out);

/* ---------------------------------------------------------------------------------------- */
/* provider.c: KEK providers.                                                                */

#define KC_PROVIDER_ABI_VERSION 2u

/* What a provider's wrap() produces; nothing here is secret. */
struct kc_wrapped {
	unsigned char *data;	/* malloc'ed wrapped key */
	size_t len;
	char alg[32];		/* e.g. "A256KWP", "RSA-OAEP-256" */
	char *key_version;	/* malloc'ed, or NULL when the KMS has no versions */
};
void wrapped_clear(struct kc_wrapped *w);

/*
 * What a KMS says of a KEK's key (the provider's inspect()), for the safety checks of
 * kc_kek_check(): each *_fix says, in the KMS's own terms, what to change.
 */
struct kek_info {
	bool disabled;		/* the KMS refuses to unwrap with it until it is enabled */
	bool deletable;		/* it can be deleted for good */
	int64_t expires;	/* Unix time, 0: never */
	char deletable_why[128];	/* e.g. "deletion_allowed is true" */
	char deletable_fix[256];
	char disabled_fix[256];
	char expires_fix[384];	/* what expiry means there, and how to move it */
	/* The KMS's current version of the key (what a wrap under the URI now uses), as a
	 * token's kekcrypt-key-version records it; "" when the URI pins a version or the KMS
	 * did not say (kek rotate --if-newer then leaves the token alone). */
	char current_version[256];
};

/* One KEK named by a URI, as a provider sees it. */
struct kc_kek {
	const struct kc_provider_ops *ops;
	char *uri;
	void *state;		/* the provider's, from init() */
};

struct boot_list;

/*
 * A KEK provider: one file in lib/providers/ and one line in the table of provider.c. All
 * that the rest of kekcrypt knows of a kind of KEK comes from here: the URI schemes and their
 * syntax (usage texts, errors, the documentation check), what policy must allow (needs()),
 * what a boot needs (boot_needs()), how to move to the KMS's current key (current_uri()).
 */
struct kc_provider_ops {
	unsigned abi_version;	/* KC_PROVIDER_ABI_VERSION */
	const char *name;	/* [a-z0-9_-]+, stored in the token; its config section too */
	const char *const *schemes; /* the URI schemes it serves, NULL-terminated */
	const char *syntax;	/* the URI's shape, e.g. "file:/PATH" (usage, errors, docs) */
	const char *summary;	/* what the KEK is, in a few words */
	/* Optional: parse URI and config into *r_state; -EINVAL for a malformed URI. */
	int (*init)(struct kc_ctx *ctx, const char *uri, void **r_state);
	/* Mandatory: wrap the DEK. */
	int (*wrap)(struct kc_ctx *ctx, void *state, const struct kc_secret *dek,
		    struct kc_wrapped *r_wrapped);
	/* Mandatory: unwrap. ALG and KEY_VERSION come from the token (KEY_VERSION may be
	 * NULL); the result must be a locked secret. */
	int (*unwrap)(struct kc_ctx *ctx, void *state, const char *alg, const char *key_version,
		      const unsigned char *wrapped, size_t wrapped_len, struct kc_secret **r_dek);
	/* Optional: check provider-specific token fields (alg, version). */
	int (*validate)(struct kc_ctx *ctx, const struct token *t);
	/* Optional: free the state from init(). */
	void (*free)(void *state);
	/* Optional (KEK rotation): re-wrap WRAPPED under the KMS's current version of the same
	 * key without the DEK leaving the KMS (Vault Transit "rewrap"). */
	int (*rewrap)(struct kc_ctx *ctx, void *state, const unsigned char *wrapped,
		      size_t wrapped_len, struct kc_wrapped *r_wrapped);
	/* What the KEK touches (endpoint, files, modules), for local policy; kek_open() checks
	 * it before anything is read or loaded. Mandatory for a provider that touches any. */
	void (*needs)(void *state, struct kek_needs *r_needs);
	/* Optional (kek rotate without --to): the URI of the KMS's current version of the key
	 * of URI, in a new string; without it, URI itself (the provider wraps under whatever
	 * version the KMS has current). */
	int (*current_uri)(struct kc_ctx *ctx, void *state, const char *uri, char **r_uri);
	/* Optional: what an initramfs needs to unlock with this KEK (STATE), or what the
	 * provider's section of the config names (STATE NULL: credential files, CA files), added
	 * to LIST (boot.c). -EACCES with a detail: the KEK needs a file the config does not name
	 * for copying. */
	int (*boot_needs)(struct kc_ctx *ctx, void *state, struct boot_list *list);
	/* Optional (kc_kek_check()): read the key's state from the KMS into R_INFO (zeroed by
	 * the caller); -ENOENT with a detail when the KMS has no such key. */
	int (*inspect)(struct kc_ctx *ctx, void *state, struct kek_info *r_info);
	/* The keys its section of the configuration ([NAME]) may hold, NULL-terminated (NULL:
	 * none); any other key there is an error naming the file and line. */
	const char *const *config_keys;
};

/* Look up the provider for URI's scheme, check its vtable, init it, and check what it
 * needs against local policy (policy_kek(): -EACCES). */
int kek_open(struct kc_ctx *ctx, const char *uri, struct kc_kek **r_kek);
void kek_close(struct kc_kek *kek);
void kek_closep(struct kc_kek **kek);
/* The provider with registry NAME, or NULL. */
const struct kc_provider_ops *provider_find(const char *name);
/* The built-in providers, in table order: the Ith, or NULL past the end. */
const struct kc_provider_ops *provider_at(size_t i);
/* 0 if SECTION (a provider's name) and KEY (NULL: the section alone) may appear in the
 * configuration, else -EINVAL with a detail listing what may. */
int provider_config_check(struct kc_ctx *ctx, const char *section, const char *key);
/* The checks of token T that need its provider: known, the URI its scheme, its fields. */
int kek_token_check(struct kc_ctx *ctx, const struct token *t);
/* The URI of the KMS's current version of KEK's key (kek rotate), in a new string. */
int kek_current_uri(struct kc_ctx *ctx, struct kc_kek *kek, char **r_uri);

/* ---------------------------------------------------------------------------------------- */
/* boot.c: what an initramfs needs (kc_boot_needs()), as providers add it.                  */

/* Add a need of KIND (KC_BOOT_*) for PATH (NULL for KC_BOOT_NETWORK), the reason as FMT. */
int boot_add(struct boot_list *b, int kind, const char *path, const char *fmt, ...)
	_printf_(4, 5);
/* Add, as KIND, every file that KEY of SECTION names (lists on one or several lines). */
int boot_add_listed(struct kc_ctx *ctx, struct boot_list *b, int kind, const char *section,
		    const char *key);

/* ---------------------------------------------------------------------------------------- */
/* luks.c: what every part that changes a header asks of it.                                */

/* The iterations of the PBKDF2 keyslots kekcrypt derives from a DEK (no person types them). */
#define LUKS_MINIMAL_ITERATIONS 1000

/* The type of token ID (an external one), or NULL. */
const char *luks_token_type(struct crypt_device *cd, int id);
/* Whether token ID is of TYPE (TOKEN_TYPE, RECOVERY_TOKEN_TYPE, BRIDGE_TOKEN_TYPE). */
bool luks_token_is(struct crypt_device *cd, int id, const char *type);
/* The first token of TYPE after token AFTER (-1: the first of all), or -1 when none. */
int luks_token_next(struct crypt_device *cd, int after, const char *type);
/* The first free token id that is not in AVOID (a bit per id), or -ENOSPC. */
int luks_token_free(struct crypt_device *cd, uint32_t avoid);
/* The keyslot token ID holds, or -1. */
int luks_token_slot(struct crypt_device *cd, int id);
/* Keyslot SLOT exists (bound to the data or not). */
bool luks_slot_in_use(struct crypt_device *cd, int slot);
/* Keyslot SLOT holds a key of the data segment. */
bool luks_slot_bound(struct crypt_device *cd, int slot);
/* One of TOKENS (a bit per token id) holds SLOT; luks_slot_has_token(): any token. */
bool luks_slot_held(struct crypt_device *cd, int slot, uint64_t tokens);
bool luks_slot_has_token(struct crypt_device *cd, int slot);
/* SLOT holds a key of the data and no other keyslot does. */
bool luks_last_bound_slot(struct crypt_device *cd, int slot);
/* SLOT is one kekcrypt made for a token or a rekey bridge: its passphrase is derived from a
 * DEK, so it has the minimal KDF (a person's passphrase or recovery key a costly one). */
bool luks_slot_is_ours(struct crypt_device *cd, int slot);
/* Give the keyslots CD adds next the minimal KDF. */
int luks_minimal_pbkdf(struct kc_ctx *ctx, struct crypt_device *cd);
/* Route libcryptsetup's messages about CD to CTX's debug log. */
void luks_log_to(struct kc_ctx *ctx, struct crypt_device *cd);
/* A fresh handle on DEVICE's header as it is on the disk; libcryptsetup's errno. */
int luks_load_raw(struct kc_ctx *ctx, const char *device, struct crypt_device **r_cd);
/* luks_load_raw() for the calls that report what interrupted operations left (rotations,
 * a rekey): -EMEDIUMTYPE or -EACCES, the detail set. */
int luks_load_state(struct kc_ctx *ctx, const char *device, struct crypt_device **r_cd);
/* Remove token ID (one header write, then util_crash_point()). */
int luks_token_remove(struct kc_ctx *ctx, struct crypt_device *cd, int id);
/* Set each of KEYS of token ID to its value (NULL: removed): one header write. */
int luks_token_mark(struct kc_ctx *ctx, struct crypt_device *cd, int id, const char *const *keys,
		    const char *const *values, size_t n);
/* Token ID's rotation mark: true and *R_MARK filled when it carries one. */
bool luks_rotation_mark(struct crypt_device *cd, int id, struct kc_rotation_pending *r_mark);
/* Set token ID's rotation mark to FROM and STATE, or drop it (FROM < 0). */
int luks_rotation_mark_set(struct kc_ctx *ctx, struct crypt_device *cd, int id, int from,
			   const char *state);
/* The last two writes of a rotation (rotate.c): token FROM, without its rotation mark,
 * written as token TO (replacing what TO holds), then FROM removed. */
int luks_rotation_move(struct kc_ctx *ctx, struct crypt_device *cd, int from, int to);
/* Whether token ID is a kekcrypt token marked new by a rekey. */
bool luks_rekey_marked(struct crypt_device *cd, int id);

/* ---------------------------------------------------------------------------------------- */
/* volume.c, unlock.c: LUKS2 devices.                                                       */

/* A handle on DEVICE, its header not loaded: the only crypt_init() of a device by path. With
 * a detached header (kc_set_header()) the handle reads that file and maps DEVICE. No checks,
 * no error detail; -errno from libcryptsetup. */
int vol_crypt_init(struct kc_ctx *ctx, const char *device, struct crypt_device **r_cd);
/* The path whose header a call reads and writes (and locks): the detached header, or DEVICE. */
static inline const char *vol_metadata(const struct kc_ctx *ctx, const char *device)
{
	return ctx->header ?: device;
}
/* A handle on DEVICE (a block device or an image file, and its detached header, both checked),
 * its header not loaded. */
int vol_init(struct kc_ctx *ctx, const char *device, struct crypt_device **r_cd);
/* Load DEVICE's LUKS2 header; logs go to CTX. -ENOENT, -EMEDIUMTYPE, -EACCES. Never writes:
 * what a read verb loads stays byte-identical (interrupted operations included). */
int vol_load(struct kc_ctx *ctx, const char *device, struct crypt_device **r_cd);
void vol_freep(struct crypt_device **cd);
/* What libblkid finds on DEVICE: 1 with *TYPE (a filesystem, "crypto_LUKS", or with *R_PT a
 * partition table) and *VERSION ("" when none), 0 for nothing, -ENOTUNIQ for conflicting
 * signatures, or a negative errno. Both strings printable. */
int vol_probe(const char *device, char type[32], char version[16], bool *r_pt);
/* DEVICE did not load as LUKS2: fail saying what it holds (vol_probe()): -ENOEXEC for a
 * LUKS1 volume, else -EMEDIUMTYPE. */
int vol_not_luks2(struct kc_ctx *ctx, const char *device);

/* Fail early with -EROFS/-EBUSY/-EACCES rather than halfway through a header update;
 * EXCLUSIVE also refuses a block device that is open elsewhere (format). */
int vol_check_writable(struct kc_ctx *ctx, const char *device, bool exclusive);

/* The keyslot passphrase derived from DEK for volume UUID (32 bytes). */
int vol_keyslot_passphrase(const struct kc_secret *dek, const char *uuid,
			   struct kc_secret **r_pass);
/* Read kekcrypt token ID; -ENOENT if the token is absent or of another type. */
int vol_token_read(struct kc_ctx *ctx, struct crypt_device *cd, int id, struct token **r_token);
/* Wrap DEK under KEK and store it as a new token bound to a new keyslot; returns its id, the
 * first free one that is not in AVOID (a bit per token id; 0: libcryptsetup's choice). */
int vol_token_add(struct kc_ctx *ctx, struct crypt_device *cd, struct kc_kek *kek,
		  const struct kc_wrapped *wrapped, const struct kc_secret *dek, uint32_t avoid);
/* How many ways to unlock CD remain without the tokens in EXCLUDE (a bit per token id):
 * kekcrypt tokens whose KEK unwraps DEK now (WORKING: one known to, or -1), and keyslots that
 * no kekcrypt token holds and that are not kekcrypt's own derived ones (recovery keys,
 * passphrases). DEK may be NULL (unknown): then no other token counts. */
int vol_usable_paths(struct kc_ctx *ctx, struct crypt_device *cd, uint64_t exclude,
		     const struct kc_secret *dek, int working);
/* -EBUSY, naming WHAT, unless a usable path remains without the tokens in EXCLUDE. */
int vol_check_paths_left(struct kc_ctx *ctx, struct crypt_device *cd, const char *device,
			 uint64_t exclude, const char *what);
/* enrol.c: the volume key of CD through the keyslot that SECRET opens (a passphrase or a key
 * file's content; with KC_ENROL_RECOVERY_KEY in FLAGS a recovery key, normalised first), as
 * libcryptsetup checks it against the digest; *R_SLOT that keyslot. -EBADMSG when SECRET
 * opens no keyslot. */
int vol_dek_by_secret(struct kc_ctx *ctx, struct crypt_device *cd, const char *device,
		      const char *secret, size_t secret_len, uint32_t flags,
		      struct kc_secret **r_dek, int *r_slot);
/* enrol.c: destroy keyslot SLOT, the one a secret opened (vol_dek_by_secret() gave DEK),
 * when vol_check_keyslot_removable() allows it; RES->wiped set. */
int enrol_wipe(struct kc_ctx *ctx, struct crypt_device *cd, const char *device, int slot,
	       const struct kc_secret *dek, struct kc_enrol_result *res);
/* The first kekcrypt token of CD whose stored KEK URI is URI, or -ENOENT. */
int vol_token_find_uri(struct kc_ctx *ctx, struct crypt_device *cd, const char *uri);
/* -EBUSY unless keyslot SLOT (one that a passphrase opened, which yielded DEK) may be
 * destroyed: no token holds it (clevis, systemd, a recovery key: their tools remove them),
 * and a usable path remains without it (vol_usable_paths(): each kekcrypt token unwrapped
 * again through its KMS). */
int vol_check_keyslot_removable(struct kc_ctx *ctx, struct crypt_device *cd,
				const char *device, int slot, const struct kc_secret *dek);
/* Unwrap the DEK through the tokens (or only TOKEN_ID) and check it against the digest. */
int vol_unlock(struct kc_ctx *ctx, struct crypt_device *cd, const char *device, int token_id,
	       struct kc_secret **r_dek, struct kc_unlock_result *r_result);

/* vol_unlock() under the retry policy, R_RESULT the caller's (size-versioned): per attempt, a deadline of TIMEOUT_MS (0: the
 * context's) clipped to kc_set_retry()'s limit; attempts that time may cure are retried with
 * backoff, each logged as a warning; the success is logged (INFO) when kc_set_retry() was
 * called, with the time since boot. */
#define UNLOCK_RESULT_V1 SIZED_V1(struct kc_unlock_result, kek_uri)
#define TOKEN_CHECK_V1 SIZED_V1(struct kc_token_check, detail)
int vol_unlock_retry(struct kc_ctx *ctx, struct crypt_device *cd, const char *device,
		     int token_id, unsigned timeout_ms, struct kc_secret **r_dek,
		     struct kc_unlock_result *r_result);

/* ---------------------------------------------------------------------------------------- */
/* txn.c: the write transaction every writer goes through.                                  */

/* Take DEVICE's writer lock (one per volume, for every verb that writes its header; on the
 * detached header file when there is one, vol_metadata()): -EBUSY when another process holds
 * it. Release with close(), or vol_unlockp(). */
int vol_lock(struct kc_ctx *ctx, const char *device, int *r_fd);
/* The same lock, on the file or block device PATH (kc_encrypt(): the data device, whose
 * detached header does not exist yet). */
int vol_lock_path(struct kc_ctx *ctx, const char *path, int *r_fd);
void vol_unlockp(int *fd);
/* vol_load_for_write() flags: the caller is rekey, which deals with its own leftovers. */
#define VOL_WRITE_REKEY 1u
/* For writers: check DEVICE is writable, take its lock, load the header, refuse while an
 * interrupted rekey's state is there (-EBUSY, unless VOL_WRITE_REKEY), and finish or undo
 * interrupted KEK rotations (returns how many). The caller keeps *R_LOCK until its last
 * write. */
int vol_load_for_write(struct kc_ctx *ctx, const char *device, unsigned flags,
		       struct crypt_device **r_cd, int *r_lock);
/* true when the header holds what an interrupted rekey left (marked tokens, the bridge,
 * re-encryption metadata). */
bool rekey_leftovers(struct crypt_device *cd);
/* rekey-state.c: 1 and *R_ST (its .size set) when CD, the header of DEVICE, holds an
 * interrupted rekey; 0 when not. */
int rekey_state_read(struct crypt_device *cd, const char *device, struct kc_rekey_state *r_st);

/* format.c, shared with encrypt.c: a new volume's DEK, wrapped under each of its KEKs. */
#define FORMAT_DEFAULT_CIPHER "aes-xts-plain64"
#define FORMAT_DEFAULT_KEY_BITS 512
struct format_keks {
	struct kc_kek **keks;
	struct kc_wrapped *wrapped;
	size_t n;
};
int format_check_params(struct kc_ctx *ctx, const char *device,
			const struct kc_format_params *p);
/* "aes-xts-plain64" -> "aes", "xts-plain64". */
int format_split_cipher(struct kc_ctx *ctx, const char *spec, char cipher[32], char mode[32]);
/* A random DEK of P's size, in locked memory. */
int format_new_dek(struct kc_ctx *ctx, const struct kc_format_params *p,
		   struct kc_secret **r_dek);
/* Open every KEK of P and wrap DEK under each: nothing is written unless all succeed. */
int format_wrap_all(struct kc_ctx *ctx, const struct kc_format_params *p,
		    const struct kc_secret *dek, struct format_keks *fk);
/* A token and keyslot per KEK of FK on the freshly formatted CD; returns the last token id. */
int format_add_tokens(struct kc_ctx *ctx, struct crypt_device *cd, const struct format_keks *fk,
		      const struct kc_secret *dek);
void format_keks_clear(struct format_keks *fk);

/* info.c: a public kc_token_info (its .size set) for token T of id ID; T NULL: only the id
 * and keyslot -1 (an unreadable token; the caller sets valid and problem). */
void info_token_fill(struct kc_token_info *ti, int id, const struct token *t);

/* dm.c: 0 if device-mapper can be used; -ENOTSUP (no driver) or -EACCES otherwise. Also
 * silences libdevmapper's own stderr logging. */
int dm_available(struct kc_ctx *ctx);
/* -EINVAL (the message set) unless NAME can name a mapping. */
int dm_check_name(struct kc_ctx *ctx, const char *name);
/* The active state of mapping NAME: 0 inactive, 1 active, 2 active and in use. */
int dm_mapping_state(const char *name);
/* The dm-crypt mapping of DEVICE for LUKS2 volume UUID into NAME ("" when none): always 0. */
int dm_find_mapping(struct kc_ctx *ctx, const char *device, const char *uuid, char name[128]);

/* The built-in providers (lib/Makemodule.am's KC_PROVIDERS): provider_<name>. */
#define PROVIDER(name) extern const struct kc_provider_ops provider_##name;
#include "providers-list.h"
#undef PROVIDER

#endif /* KEKCRYPT_INTERNAL_H */
