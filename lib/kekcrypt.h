/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libkekcrypt: LUKS2 volumes whose volume key (the DEK) is stored only wrapped by a key
 * encryption key (KEK) held in a KMS or an HSM.
 *
 * Conventions:
 *  - every function returns >= 0 on success and a negative errno on failure; each errno has
 *    one meaning across the library (see "Error codes" below);
 *  - the library never prints; it logs through the callback given to kc_set_log(), and a
 *    human-readable explanation of the last failure (never a secret) is kept in the context,
 *    see kc_error_detail();
 *  - objects are opaque; whatever a kc_*_new()/kc_init() returns is freed by the matching
 *    NULL-safe free function;
 *  - threads: a context, and whatever came from it, is used by one thread at a time; distinct
 *    contexts may be used in parallel threads, except for operations on the same device
 *    (serialised across processes by a lock in /run/kekcrypt, which a second writer finds
 *    busy: -EBUSY). The library sets no process-wide state of libcryptsetup's; it does make
 *    libcurl's allocator wipe what it frees (once, first, process-wide: see
 *    kc_process_harden()).
 *
 * Error codes:
 *  -ENOENT          no usable kekcrypt token, provider, key or file
 *  -EAGAIN          KMS/HSM unreachable (retryable)
 *  -EPERM           the KMS/HSM refused the operation
 *  -ENOANO          a credential or PIN is required but none was given
 *  -EKEYREJECTED    the credential or PIN was rejected
 *  -EBADMSG         the wrapped key failed its integrity check (wrong KEK), or the unwrapped
 *                   key does not match the volume's digest
 *  -EINVAL          malformed token, URI, config or argument
 *  -EMEDIUMTYPE     not a LUKS2 device, or its header is corrupt (the detail says what the
 *                   device holds: a filesystem, a partition table, nothing recognisable)
 *  -ENOEXEC         a LUKS1 volume: convert it to LUKS2 first (kc_luks1_convert())
 *  -EEXIST          the device holds data (a signature) or the name exists (use force), or
 *                   the volume has a token for that KEK already (kc_kek_add())
 *  -EBUSY           the device or mapping is in use
 *  -EROFS           the device is read-only
 *  -EACCES          local permission problem (file modes, not root)
 *  -EPROTONOSUPPORT unsupported KEK URI scheme
 *  -ETIMEDOUT       the operation's deadline passed
 *  -ENOTSUP         the system lacks a needed facility (device-mapper, or a library that a
 *                   provider loads when first used: libcurl, p11-kit)
 *  -EPROTO          TLS failure talking to the KMS (untrusted certificate, wrong host)
 *  -EBADE           the KMS answered something malformed, truncated or oversized
 *  -ENOSPC          no room in the LUKS2 header for another keyslot or token
 *  -EXDEV           a header backup belongs to another volume (UUID mismatch)
 *  -EIO             a header write or read failed
 *  -ECANCELED       stopped by the caller (a rekey's progress callback); resumable
 *  -ENOMEM          out of memory
 */
#ifndef KEKCRYPT_H
#define KEKCRYPT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct crypt_device;

/** Library context: logging, configuration, provider state. Opaque. */
struct kc_ctx;

/**
 * Size-versioned structs. Every struct that a caller allocates and passes in (parameters)
 * or gets filled (results) starts with `size_t size`, set by the caller to the struct's size
 * as its kekcrypt.h declares it: `struct kc_unlock_result res = KC_SIZED(struct
 * kc_unlock_result);` gives one, zeroed. The library reads and writes no byte past .size, so
 * a program built against an older kekcrypt.h keeps working when fields are appended (a
 * parameter it does not know takes its default), and functions return -EINVAL when .size is
 * smaller than the struct's first version. In an array, every element's .size is set and
 * the first one's is the stride. Structs the library hands out (kc_volume_info_token())
 * carry their own .size.
 */
#define KC_SIZED(type) ((type){ .size = sizeof(type) })

/** Log levels passed to the log callback. */
enum kc_log_level {
	KC_LOG_ERROR = 0,
	KC_LOG_INFO = 1,
	KC_LOG_DEBUG = 2,
};

typedef void (*kc_log_fn)(int level, const char *msg, void *usrptr);

/**
 * Create a library context.
 *
 * @param r_ctx       the new context, to be freed with kc_free()
 * @param config_path provider credentials file, or NULL for the default
 *                    (/etc/kekcrypt/kekcrypt.conf, which may be absent)
 * @return 0, -EINVAL (r_ctx NULL or unparsable config), -EACCES (config readable by group or
 *         others, or not owned by root or the caller), -ENOENT (an explicit config_path that
 *         does not exist), -ENOMEM
 */
int kc_init(struct kc_ctx **r_ctx, const char *config_path);

/**
 * Create a library context without a configuration (kc_config_load() gives it one), so that
 * a configuration problem can be explained through kc_error_detail().
 *
 * @return 0, -EINVAL (r_ctx NULL), -ENOMEM
 */
int kc_new(struct kc_ctx **r_ctx);

/**
 * Load the configuration CONFIG_PATH (NULL: the default, which may be absent) into CTX,
 * replacing the one it has. On failure CTX keeps its configuration and kc_error_detail() says
 * what is wrong.
 *
 * @return 0, or as kc_init()
 */
int kc_config_load(struct kc_ctx *ctx, const char *config_path);

/** What kc_config_check() reports. */
enum kc_config_problem {
	/** a file it names fails the checks kekcrypt applies when it uses it: owner, mode,
	 * directories, not a regular file */
	KC_CONFIG_UNUSABLE = 0,
	KC_CONFIG_MISSING = 1,		/**< a file it names does not exist */
	KC_CONFIG_BAD_ENTRY = 2,	/**< an allowed-hosts entry is not HOST or HOST:PORT */
};

/** Called once per problem kc_config_check() finds: its KIND (KC_CONFIG_*) and a message
 * naming the file or entry and the cause (never a secret). */
typedef void (*kc_config_fn)(int kind, const char *msg, void *usrptr);

/**
 * Check what CTX's configuration names, beyond the syntax, sections and keys that
 * kc_config_load() checked: each file it names (credential, PIN, client certificate and key,
 * CA, KEK files, PKCS#11 modules) exists and passes the ownership and mode checks kekcrypt
 * applies when it uses it (private for secrets, not writable by others for the rest, in
 * directories others cannot write), and each allowed-hosts entry is HOST or HOST:PORT. A
 * configuration that does not exist names nothing. Touches no KMS and no device.
 *
 * @return the number of problems reported to FN (0: none), -EINVAL (ctx or fn NULL), -ENOMEM
 */
int kc_config_check(struct kc_ctx *ctx, kc_config_fn fn, void *usrptr);

/**
 * Create a context that reuses a libcryptsetup handle (for the token plugin). The handle is
 * borrowed: it must outlive the context and is not freed by kc_free().
 *
 * @return as kc_init()
 */
int kc_init_by_crypt_device(struct kc_ctx **r_ctx, struct crypt_device *cd,
			    const char *config_path);

/** Free a context; NULL-safe. */
void kc_free(struct kc_ctx *ctx);

/**
 * Set CTX's log callback and the highest level passed to it (KC_LOG_*). It gets the library's
 * messages and libcryptsetup's about the devices CTX opens. libcryptsetup's process-wide state
 * is left to the application: its debug level (crypt_set_debug_level()) and what it says
 * before a device handle exists (crypt_set_log_callback(NULL, ...)).
 */
void kc_set_log(struct kc_ctx *ctx, kc_log_fn fn, int max_level, void *usrptr);

/**
 * Explanation of the last failure of a call on this context, e.g. "token 1
 * (file:/etc/kek.bin): the wrapped key failed its integrity check (wrong KEK?)". Never holds a
 * secret. Valid until the next call on the context; "" when there is none.
 */
const char *kc_error_detail(const struct kc_ctx *ctx);

/** A static English description of a kekcrypt error code (negative errno). */
const char *kc_strerror(int r);

/**
 * Set the overall deadline of each KMS/HSM operation (unwrapping through all tokens, or
 * wrapping under all KEKs) in milliseconds; 0 restores the default of 30 s.
 */
void kc_set_timeout(struct kc_ctx *ctx, unsigned timeout_ms);

/**
 * Name the detached LUKS2 header of the devices that the following calls on CTX name (as
 * cryptsetup's --header and crypttab's header=): each call reads and writes the header in
 * HEADER_PATH and uses DEVICE for the data only. kc_format() creates HEADER_PATH (0600) when
 * it does not exist and puts the data at offset 0 of its DEVICE; kc_encrypt() creates it
 * (it must not exist, unless it holds an interrupted encryption) and encrypts the data where
 * it is. NULL: the header is on the device (the default). The path is copied. kc_rekey(),
 * kc_firstboot() and kc_encrypt_online() work offline and online with one (since 0.2; before,
 * an active volume was refused with -ENOTSUP). Calls on an active mapping by name (kc_close(),
 * kc_status_get()) ignore it.
 *
 * @return 0; -EINVAL when HEADER_PATH is "" or names something other than a regular file or
 *         a block device (kc_error_detail() says what), -ENOMEM. A HEADER_PATH that does not
 *         exist is accepted here (for kc_format() and kc_encrypt()); the other calls then fail
 *         with -ENOENT.
 */
int kc_set_header(struct kc_ctx *ctx, const char *header_path);

/** kc_set_retry(): retry without a time limit. */
#define KC_RETRY_FOREVER UINT_MAX

/**
 * Retry unlocking (kc_verify(), kc_open(), kc_token_unlock_passphrase(),
 * kc_keyslot_passphrase()) when it fails in a way time may cure (KMS/HSM unreachable or timed
 * out, TLS failing, a bad answer: -EAGAIN, -ETIMEDOUT, -EPROTO, -EBADE), with backoff (about
 * 1, 2, 4, 8, 8... s, with jitter) until SECONDS after the call's first attempt
 * (KC_RETRY_FOREVER: no limit; 0, the default: one attempt). Each attempt's deadline
 * (kc_set_timeout()) ends no later than the limit. Each retry is logged at KC_LOG_INFO as a
 * warning, and, once this is called, the success too ("unlocked after N attempt(s), S s since
 * boot"). Refusals, a wrong KEK or a malformed token are never retried. Past the limit the
 * last attempt's error is returned, and kc_error_detail() says so.
 */
void kc_set_retry(struct kc_ctx *ctx, unsigned seconds);

/** The library version string. */
const char *kc_version(void);

/**
 * The built-in KEK providers, in order: the name (also the config section) of the Ith, the
 * shape of its KEK URIs (e.g. "file:/PATH") and what it is, in a few words; NULL past the
 * last one. Usage texts and documentation take the list from here.
 */
const char *kc_provider_name(size_t i);
const char *kc_provider_syntax(size_t i);
const char *kc_provider_summary(size_t i);

/** Flags of kc_process_harden(). */
enum kc_harden_flags {
	/** Not dumpable (prctl PR_SET_DUMPABLE 0) and RLIMIT_CORE 0: no core dump holds a key,
	 *  and processes without CAP_SYS_PTRACE cannot read the process's memory. */
	KC_HARDEN_NO_CORE = 1 << 0,
	/** Route OpenSSL's heap through functions that wipe every block they free. OpenSSL
	 *  accepts this only before its first allocation: call it first thing in main(). */
	KC_HARDEN_OPENSSL_MEM = 1 << 1,
};

/**
 * Harden the calling process for handling keys (DESIGN.md, "Process hygiene"). For programs
 * (the kekcrypt CLI) and plugins (the token plugin, inside cryptsetup or systemd-cryptsetup):
 * what it changes is process-wide and is not undone. The library itself always wipes what
 * libcurl frees and keeps TLS key logs (SSLKEYLOGFILE) and environment proxies out.
 *
 * @param flags a combination of enum kc_harden_flags; every flag is attempted
 * @return 0; -EINVAL (unknown flag, nothing done); the -errno of a failed prctl() or
 *         setrlimit(); else -EALREADY when OpenSSL had already allocated memory (its heap is
 *         then not wiped; the rest is done)
 */
int kc_process_harden(uint32_t flags);

/* ---------------------------------------------------------------------------------------- */
/* Volumes                                                                                  */

/** Parameters of kc_format(). Zero-initialise and set what you need. */
struct kc_format_params {
	size_t size;		/**< sizeof(struct kc_format_params): see KC_SIZED() */
	const char *const *kek_uris; /**< KEK URIs, at least one */
	size_t n_keks;
	const char *cipher;	    /**< "aes-xts-plain64" when NULL */
	size_t key_size_bits;	    /**< 512 when 0 */
	const char *label;	    /**< LUKS2 label, or NULL */
	uint32_t sector_size;	    /**< 512 when 0 */
	bool force;		    /**< format even when a signature is found */
	/* since 0.2: */
	const char *uuid;	    /**< the volume's UUID, or NULL for a random one */
};

/**
 * Format DEVICE as LUKS2 with a fresh random DEK, stored once per KEK: wrapped in a token of
 * type "kekcrypt" bound to a keyslot whose passphrase is derived from the DEK. Every KEK is
 * tried before anything is written, so a failure leaves the device untouched.
 *
 * @return 0, -EEXIST (a filesystem, partition table or LUKS signature was found and force is
 *         not set), -EINVAL (bad parameters or URI), -EPROTONOSUPPORT, any provider error of
 *         the wrap (-ENOENT, -EAGAIN, -EPERM, -ENOANO, -EKEYREJECTED, -EACCES, -ENOTSUP: a
 *         library the provider loads is missing), -EBUSY, -EROFS, -ENOMEM
 */
int kc_format(struct kc_ctx *ctx, const char *device, const struct kc_format_params *params);

/** Result of an unlock attempt (verify, open). */
struct kc_unlock_result {
	size_t size;		/**< sizeof(struct kc_unlock_result): see KC_SIZED() */
	int token_id;	  /**< the token that unwrapped the DEK */
	int keyslot;	  /**< the keyslot bound to it, or -1 */
	char kek_uri[1024]; /**< its KEK URI (not secret) */
};

/**
 * Unwrap the DEK through the volume's kekcrypt tokens in order (or only token_id when >= 0)
 * and check it against the LUKS2 digest. Maps nothing.
 *
 * @return 0 and fills r_result (may be NULL), -EMEDIUMTYPE, -ENOENT (no kekcrypt token, or
 *         none with that id), -EINVAL (malformed token), provider errors (-EAGAIN, -EPERM,
 *         -ENOANO, -EKEYREJECTED, -EBADMSG, -ENOTSUP: libcurl or p11-kit missing...),
 *         -ETIMEDOUT; when several tokens fail, the most actionable error is returned and
 *         kc_error_detail() lists each.
 */
int kc_verify(struct kc_ctx *ctx, const char *device, int token_id,
	      struct kc_unlock_result *r_result);

/** The check of one kekcrypt token by kc_verify_all() (nothing secret). */
struct kc_token_check {
	size_t size;		/**< sizeof(struct kc_token_check): see KC_SIZED() */
	int token_id;		/**< the token; -1 in entries past the last token */
	int keyslot;		/**< its bound keyslot, or -1 (unknown: token unreadable) */
	char kek_uri[1024];	/**< its KEK URI, "" when the token cannot be parsed */
	int result;		/**< 0: the DEK was unwrapped and verified; else the negative
				 *   errno kc_verify() with this token_id would return */
	char detail[512];	/**< why it failed, "" when it worked (never a secret) */
};

/**
 * Check each kekcrypt token of DEVICE on its own, as kc_verify() with that token_id does
 * (unwrap the DEK and check it against the LUKS2 digest; nothing mapped or written), to tell
 * a volume whose every KEK works from one with degraded redundancy. Each token gets its own
 * deadline (kc_set_timeout()) and one attempt (kc_set_retry() does not apply: a health check
 * reports what answers now).
 *
 * @param r_checks up to MAX entries, filled in token order; the entries past the last token
 *                 get token_id -1. Filled also when no token works.
 * @return the number of kekcrypt tokens (may exceed MAX) when at least one works;
 *         -EINVAL (bad arguments), -EMEDIUMTYPE, -ENOENT (no kekcrypt token), -EACCES,
 *         -ENOMEM; when no token works, the error kc_verify() would return (the most
 *         actionable one), with kc_error_detail() listing each token's cause.
 */
int kc_verify_all(struct kc_ctx *ctx, const char *device, struct kc_token_check *r_checks,
		  size_t max);

/** Flags of kc_open(). */
enum kc_open_flags {
	KC_OPEN_READONLY = 1 << 0,
	KC_OPEN_ALLOW_DISCARDS = 1 << 1,
};

/**
 * Unwrap the DEK as kc_verify() does and activate the dm-crypt mapping NAME with it (the key
 * goes to dm-crypt through the kernel keyring when the kernel has one).
 *
 * @param timeout_ms overall deadline for unwrapping, 0 for the default (30 s)
 * @return as kc_verify(), and -EEXIST (NAME exists), -EBUSY (the device is already mapped),
 *         -ENOTSUP (no device-mapper), -EACCES (not permitted)
 */
int kc_open(struct kc_ctx *ctx, const char *device, const char *name, int token_id,
	    uint32_t flags, unsigned timeout_ms, struct kc_unlock_result *r_result);

/**
 * Deactivate the mapping NAME.
 *
 * @return 0, -ENOENT (no such mapping), -EBUSY (in use), -ENOTSUP, -EACCES
 */
int kc_close(struct kc_ctx *ctx, const char *name);

/* ---------------------------------------------------------------------------------------- */
/* Tokens and KEKs                                                                          */

/** One kekcrypt token as stored in the header (nothing secret). */
struct kc_token_info {
	size_t size;		/**< sizeof(struct kc_token_info): see KC_SIZED() */
	int id;
	int keyslot;		/**< bound keyslot or -1 */
	char provider[32];
	char kek_uri[1024];
	char key_version[256];	/**< "" when the KMS has no versions */
	char wrap_alg[32];
	char created[32];	/**< ISO 8601 UTC */
	size_t wrapped_len;	/**< bytes of wrapped key */
	unsigned format_version;
	int valid;		/**< 0, or the negative errno that made it unusable */
	char problem[256];	/**< why it is unusable, when valid < 0 */
};

/** Description of a LUKS2 volume and its kekcrypt tokens. Opaque. */
struct kc_volume_info;

/**
 * Read DEVICE's header. Tokens that fail validation are listed with valid < 0.
 *
 * @return 0, -EMEDIUMTYPE, -ENOENT (no such device), -EACCES, -ENOMEM
 */
int kc_volume_info_get(struct kc_ctx *ctx, const char *device, struct kc_volume_info **r_info);
void kc_volume_info_free(struct kc_volume_info *info);
const char *kc_volume_info_uuid(const struct kc_volume_info *info);
const char *kc_volume_info_label(const struct kc_volume_info *info);
const char *kc_volume_info_cipher(const struct kc_volume_info *info);
size_t kc_volume_info_key_bits(const struct kc_volume_info *info);
uint32_t kc_volume_info_sector_size(const struct kc_volume_info *info);
uint64_t kc_volume_info_data_offset(const struct kc_volume_info *info); /**< bytes */
/** Keyslots in use as a bitmask (bit N = keyslot N). */
uint32_t kc_volume_info_keyslots(const struct kc_volume_info *info);
size_t kc_volume_info_n_tokens(const struct kc_volume_info *info);
const struct kc_token_info *kc_volume_info_token(const struct kc_volume_info *info, size_t i);

/**
 * Add a token for KEK_URI to DEVICE: unwrap the DEK through an existing token (any), wrap it
 * under the new KEK, then write keyslot and token.
 *
 * A KEK that already has a token on the volume (the same URI, compared as stored) is not added
 * again: -EEXIST, and kc_kek_find() tells which token it is.
 *
 * @return the new token id (>= 0), -EEXIST (a token for KEK_URI exists), -ENOSPC (the LUKS2
 *         header has no room for another keyslot or token), or the errors of kc_verify() and
 *         of the new KEK's wrap
 */
int kc_kek_add(struct kc_ctx *ctx, const char *device, const char *kek_uri);

/** kc_kek_enrol() and kc_recovery_enrol(): the secret is a kekcrypt recovery key (any case,
 *  any or no separators), not a passphrase or a key file's content. */
#define KC_ENROL_RECOVERY_KEY (1u << 0)
/** kc_kek_enrol(): once the new token is written, destroy the keyslot the secret opened
 *  (refused when a token holds it, or when no other path would be left that works now). */
#define KC_ENROL_WIPE_PASSPHRASE (1u << 1)
/** kc_kek_enrol(): the new token's id is never 5, which Azure Disk Encryption keeps for
 *  itself */
#define KC_ENROL_NOT_TOKEN_5 (1u << 2)

/** What kc_kek_enrol() or kc_recovery_enrol() did (nothing secret). */
struct kc_enrol_result {
	size_t size;		/**< sizeof(struct kc_enrol_result): see KC_SIZED() */
	int token_id;		/**< kek: the new token, or the KEK's existing one (added false);
				 *   recovery: the recovery token */
	int keyslot;		/**< the new keyslot, -1 when none was added */
	int auth_keyslot;	/**< the keyslot the secret opened */
	bool added;		/**< a token and keyslot were written */
	bool wiped;		/**< auth_keyslot was destroyed (KC_ENROL_WIPE_PASSPHRASE) */
};

/**
 * Enrol DEVICE, any LUKS2 volume (made by cryptsetup, systemd-cryptenroll, clevis, or a
 * kekcrypt volume whose KEKs are gone), under KEK_URI: the volume key comes from the keyslot
 * that SECRET opens (an existing passphrase, a key file's content, or with
 * KC_ENROL_RECOVERY_KEY a recovery key), as with `clevis luks bind -k` or
 * `systemd-cryptenroll --unlock-key-file`; then kc_kek_add()'s write. The keyslot SECRET
 * opened stays unless FLAGS has KC_ENROL_WIPE_PASSPHRASE: then, once the token is written,
 * every kekcrypt token is unwrapped again and the keyslot is destroyed only if one of them (or
 * another keyslot that no token holds) still opens the volume, and no token (clevis, systemd,
 * recovery) holds the keyslot. A KEK that already has a token: -EEXIST as kc_kek_add(),
 * unless KC_ENROL_WIPE_PASSPHRASE (the wipe then applies, added false).
 *
 * @param r_res  what was done (may be NULL; size-versioned)
 * @return the token id (>= 0), -EBADMSG (SECRET opens no keyslot), -EINVAL (not a recovery
 *         key, bad arguments), -EBUSY (the keyslot may not be wiped: nothing written but the
 *         token), -EEXIST, -ENOSPC, -ENOEXEC (LUKS1: kc_luks1_convert() first), and the errors
 *         of kc_kek_add() and the new KEK's wrap
 */
int kc_kek_enrol(struct kc_ctx *ctx, const char *device, const char *kek_uri,
		 const char *secret, size_t secret_len, uint32_t flags,
		 struct kc_enrol_result *r_res);

/**
 * The keyslot of DEVICE that SECRET opens (an existing passphrase or a key file's content; with
 * KC_ENROL_RECOVERY_KEY in FLAGS a recovery key), checked against the LUKS2 digest: what
 * kc_kek_enrol() would be authorised by. Reads only; the volume key found is wiped.
 *
 * @return the keyslot (>= 0), -EBADMSG (SECRET opens none), -ENOEXEC (LUKS1), -EMEDIUMTYPE,
 *         -ENOENT, -EACCES, -EINVAL (not a recovery key, bad arguments), -ENOMEM, -EIO
 */
int kc_secret_keyslot(struct kc_ctx *ctx, const char *device, const char *secret,
		      size_t secret_len, uint32_t flags);

/**
 * Convert DEVICE from LUKS1 to LUKS2 in place (libcryptsetup's crypt_convert()), after saving
 * its LUKS1 header to the new file BACKUP_FILE (mode 0600; never overwritten). Every keyslot
 * keeps its passphrase; the data does not move. A block device that is open elsewhere (mapped,
 * mounted) is refused. A LUKS2 DEVICE is left alone (returns 0, no backup written).
 *
 * @return 1 (converted), 0 (already LUKS2), -EEXIST (BACKUP_FILE exists), -EBUSY (in use, or
 *         another kekcrypt process writes its header), -EMEDIUMTYPE (neither LUKS1 nor LUKS2,
 *         or libcryptsetup cannot convert this LUKS1 header; it is unchanged), -EROFS,
 *         -EACCES, -EIO, -EINVAL
 */
int kc_luks1_convert(struct kc_ctx *ctx, const char *device, const char *backup_file);

/** The most warnings kc_kek_check() gives about one KEK. */
#define KC_KEK_WARNINGS_MAX 4

/** One thing about a KEK's key that could make the volumes it protects unopenable. */
struct kc_kek_warning {
	char kind[16];		/**< "deletable", "disabled" or "expires" */
	char message[768];	/**< what it means and what to change in the KMS */
};

/** What kc_kek_check() found out about a KEK's key (nothing secret). */
struct kc_kek_safety {
	size_t size;		/**< sizeof(struct kc_kek_safety): see KC_SIZED() */
	bool checked;		/**< the provider can tell; false: nothing below is known */
	bool disabled;		/**< the KMS refuses to unwrap with it until it is enabled */
	bool deletable;		/**< it can be deleted for good (Azure: the vault has no
				 *   purge protection; Vault: deletion_allowed) */
	int64_t expires;	/**< when it expires (Unix time), 0: never */
	unsigned n_warnings;
	struct kc_kek_warning warnings[KC_KEK_WARNINGS_MAX];
};

/**
 * Ask the KMS about KEK_URI's key (read only; nothing is wrapped): is it disabled, can it be
 * deleted for good, does it expire? Each such finding is also a warning in R_SAFETY, which
 * says what to change. A provider that cannot tell (file:, pkcs11:) gives checked = false and
 * no warning.
 *
 * @return 0, -EINVAL (bad arguments or URI), -EPROTONOSUPPORT, -EACCES (not allowed by local
 *         policy), -ENOENT (the KMS has no such key), and the KMS's errors as for a wrap
 *         (-EAGAIN, -EPERM, -ENOANO, -EKEYREJECTED, -EBADE...)
 */
int kc_kek_check(struct kc_ctx *ctx, const char *kek_uri, struct kc_kek_safety *r_safety);

/**
 * The first kekcrypt token of DEVICE whose KEK URI is KEK_URI (compared as stored, as
 * kc_kek_add() compares). Reads only; needs no KEK.
 *
 * @return the token id (>= 0), -ENOENT (no such token), -EINVAL, -EMEDIUMTYPE, -EACCES
 */
int kc_kek_find(struct kc_ctx *ctx, const char *device, const char *kek_uri);

/**
 * Remove kekcrypt token TOKEN_ID and its bound keyslot. Refuses to remove the last way to
 * unlock the volume (no other kekcrypt token nor other keyslot) unless FORCE.
 *
 * @return 0, -ENOENT (no such kekcrypt token), -EBUSY (it is the last unlock path and force
 *         is not set), -EMEDIUMTYPE, -EROFS
 */
int kc_kek_remove(struct kc_ctx *ctx, const char *device, int token_id, bool force);

/** Flags of kc_kek_rotate(). */
enum kc_rotate_flags {
	/** check that the old KEK unwraps and the new one wraps; write nothing */
	KC_ROTATE_DRY_RUN = 1 << 0,
	/** TOKEN_ID must be -1: rotate the volume's only kekcrypt token (as it is once an
	 * interrupted rotation is finished or undone); -ENOTUNIQ when it has several */
	KC_ROTATE_ONLY_TOKEN = 1 << 1,
};

/** What kc_kek_rotate() did to one token (nothing secret). */
struct kc_rotate_result {
	size_t size;		/**< sizeof(struct kc_rotate_result): see KC_SIZED() */
	int old_token;
	/** the rotated token's id: OLD_TOKEN, which a rotation keeps; -1 in a dry run */
	int new_token;
	char old_kek_uri[1024];
	char new_kek_uri[1024];
	char old_key_version[256];	/**< "" when the KMS has no versions */
	char new_key_version[256];
};

/**
 * Rotate the KEK of kekcrypt token TOKEN_ID (or of every kekcrypt token when TOKEN_ID < 0):
 * store the DEK wrapped under TO_URI, or, when TO_URI is NULL, under the KMS's current version
 * of the same key (Vault Transit rewraps inside Vault; an Azure URI pinning a version loses
 * it; file: and pkcs11: KEKs wrap again under the same key). The DEK and the data do not
 * change. Crash-safe: the new token is written, read back and verified (unwrap through it,
 * digest and keyslot check) before it is written over the old one, and until it is committed
 * it carries a mark that the next call writing the header (kc_repair() or any other writer)
 * uses to complete or roll back an interrupted rotation (see lib/rotate.c). The token keeps
 * its id and its keyslot; while the rotation runs, the new token takes the lowest free id.
 *
 * @param to_uri    the new KEK, or NULL; only with one token (TOKEN_ID >= 0, or
 *                  KC_ROTATE_ONLY_TOKEN)
 * @param flags     KC_ROTATE_*
 * @param r_results filled for each rotated token, in order (may be NULL)
 * @return the number of tokens rotated (checked, in a dry run); -EINVAL (bad arguments, TO_URI
 *         with several tokens, malformed URI), -ENOENT (no such kekcrypt token), -ENOTUNIQ
 *         (KC_ROTATE_ONLY_TOKEN and several tokens), -EBUSY (another process is writing this
 *         device's header, or an interrupted rekey must be resumed first), -EROFS, -EACCES
 *         (also: the new KEK is not allowed by local policy), -EMEDIUMTYPE, -ENOSPC,
 *         -EIO (a header write failed), the errors of kc_verify() for the old token and of the
 *         new KEK's wrap and unwrap (-EAGAIN, -EPERM, -ENOANO, -EKEYREJECTED, -EBADMSG,
 *         -EPROTONOSUPPORT, -ETIMEDOUT...). On failure the token being rotated is left in
 *         place; with several tokens those rotated before stay rotated, and kc_error_detail()
 *         says which.
 */
int kc_kek_rotate(struct kc_ctx *ctx, const char *device, int token_id, const char *to_uri,
		  uint32_t flags, struct kc_rotate_result *r_results, size_t n_results);

/** What kc_kek_refresh() did with one token. Never renumbered. */
enum kc_refresh_state {
	/** moved to the KMS's current version of its key (kc_kek_rotate() without TO_URI) */
	KC_REFRESH_ROTATED = 0,
	/** already wrapped under the current version: nothing written */
	KC_REFRESH_CURRENT = 1,
	/** its KEK has no versions (file:, pkcs11:) or its URI pins one: left alone */
	KC_REFRESH_UNVERSIONED = 2,
	/** the KMS could not tell its current version, or the rotation failed: left in place;
	 *  the entry's result and detail say why */
	KC_REFRESH_FAILED = 3,
};

/** One token as kc_kek_refresh() handled it (nothing secret). */
struct kc_refresh_result {
	size_t size;		/**< sizeof(struct kc_refresh_result): see KC_SIZED() */
	int token_id;		/**< the token (its id is kept); -1 in entries past the last */
	int state;		/**< enum kc_refresh_state */
	char kek_uri[1024];	/**< its KEK URI */
	char old_key_version[256];	/**< the version the token had; "" without versions */
	/** the KMS's current version (the token's now when ROTATED); "" when not known */
	char new_key_version[256];
	int result;		/**< 0, or the negative errno of a FAILED token */
	char detail[512];	/**< why it FAILED, "" otherwise (never a secret) */
};

/**
 * Pick up new KEK versions: for each kekcrypt token of DEVICE (or only TOKEN_ID when >= 0),
 * ask the KMS for the current version of the token's key (read only) and, when it differs
 * from the version the token records, rotate the token to it as kc_kek_rotate() does without
 * TO_URI (crash-safe, the id kept, one audit event per rotated token). A token already at the
 * current version, or whose KEK has no versions (file:, pkcs11:, a URI that pins a version),
 * is left as it is: when nothing is newer the header is not written. A token whose KMS cannot
 * be asked or whose rotation fails is left in place and reported; the others are still
 * handled. Each token gets its own deadline (kc_set_timeout()).
 *
 * @param r_results up to MAX entries, filled in token order, also when a token failed; the
 *                  entries past the last token get token_id -1
 * @return the number of kekcrypt tokens handled (may exceed MAX) when none failed; when some
 *         failed, the error of the first one (-EAGAIN, -EPERM, -ENOANO, -EKEYREJECTED,
 *         -ETIMEDOUT, -EACCES, -ENOENT...), with every entry filled; -EINVAL (bad arguments),
 *         -ENOENT (no such kekcrypt token, nothing filled), -EMEDIUMTYPE, -EBUSY, -EROFS,
 *         -ENOMEM
 */
int kc_kek_refresh(struct kc_ctx *ctx, const char *device, int token_id,
		   struct kc_refresh_result *r_results, size_t max);

/** An interrupted KEK rotation found in a header. */
struct kc_rotation_pending {
	size_t size;		/**< sizeof(struct kc_rotation_pending): see KC_SIZED() */
	int token_id;		/**< the new token, still marked */
	int from_token_id;	/**< the token it replaces */
	/** the new token was verified: recovery completes the rotation; otherwise it removes
	 * the new token */
	bool verified;
};

/**
 * List the interrupted KEK rotations in DEVICE's header, as they are (no call that only reads
 * a header changes it; kc_repair() completes or rolls them back).
 *
 * @param r_pending up to MAX entries
 * @return the number of pending rotations (may exceed MAX), -EMEDIUMTYPE, -EACCES, -EINVAL
 */
int kc_kek_rotation_pending(struct kc_ctx *ctx, const char *device,
			    struct kc_rotation_pending *r_pending, size_t max);

/**
 * Finish or undo what interrupted operations left in DEVICE's header, under the device's
 * writer lock: KEK rotations (kc_kek_rotation_pending()). Every other call that writes the
 * header does the same first; calls that only read it never do. An interrupted rekey is not
 * touched: it is finished by kc_rekey() with KC_REKEY_RESUME.
 *
 * @return the number of interrupted rotations finished or undone; -EBUSY (another process is
 *         writing the header, or an interrupted rekey must be resumed first: kc_error_detail()
 *         says so), -EROFS, -EACCES, -EMEDIUMTYPE, -EIO
 */
int kc_repair(struct kc_ctx *ctx, const char *device);

/* ---------------------------------------------------------------------------------------- */
/* Boot                                                                                     */

/** What kc_boot_needs() reports. */
enum kc_boot_kind {
	KC_BOOT_SECRET = 0,	/**< a file that holds a secret: the image must be private */
	KC_BOOT_FILE = 1,	/**< a file without secrets (a CA bundle, a certificate) */
	KC_BOOT_LIBRARY = 2,	/**< a shared object, to copy with the libraries it needs */
	KC_BOOT_NETWORK = 3,	/**< the network must come up (path NULL) */
	KC_BOOT_MISSING = 4,	/**< a file the configuration names is not there: fail */
	KC_BOOT_UNLISTED = 5,	/**< a token of the device at path names a file the
				 *   configuration does not name for copying: not copied; warn */
	KC_BOOT_UNUSABLE = 6,	/**< no token of the device at path can unlock it: fail */
	KC_BOOT_UNREADABLE = 7,	/**< the device at path cannot be read now (a build in a
				 *   chroot): only the configuration said what is needed */
};

/** Called once per need: KIND (KC_BOOT_*), a path (or NULL), why (text, never a secret). A
 * negative return stops kc_boot_needs() with it. */
typedef int (*kc_boot_fn)(int kind, const char *path, const char *what, void *usrptr);

/**
 * What an initramfs needs to unlock the volumes at DEVICES (none: what the configuration
 * alone names): the configuration, the files its providers' sections name, and per token, as
 * far as local policy allows, its KEK's needs (a KEK file or PIN file the configuration names,
 * a PKCS#11 module, the network). Only files the configuration names are ever listed; a token
 * naming others is reported, not followed. Each need is reported once. A volume with a
 * detached header (kc_set_header(), for every device) is read through it, and the header file
 * is a need (KC_BOOT_FILE; KC_BOOT_MISSING when it is not there).
 *
 * @return 0, -EINVAL, -ENOMEM, or FN's negative return
 */
int kc_boot_needs(struct kc_ctx *ctx, const char *const *devices, size_t n_devices,
		  kc_boot_fn fn, void *usrptr);

/**
 * kc_boot_needs() for volumes of which each may have its own detached header (crypttab's
 * header=): HEADERS[i] is the header of DEVICES[i], NULL for one on the device; HEADERS NULL:
 * as kc_boot_needs(). The header kc_set_header() named is not used, and stays set.
 *
 * @return as kc_boot_needs()
 */
int kc_boot_needs_headers(struct kc_ctx *ctx, const char *const *devices,
			  const char *const *headers, size_t n_devices, kc_boot_fn fn,
			  void *usrptr);

/**
 * What the tokens of the volume at DEVICE alone need (its header: kc_set_header()'s, if set),
 * as far as local policy allows, without the configuration's own list that kc_boot_needs()
 * starts with: in an initramfs, whether this volume's unlock needs the network (a token
 * naming a remote KMS) or only what is already there (a KEK file, a PKCS#11 token). Reported
 * as kc_boot_needs() reports them.
 *
 * @return as kc_boot_needs()
 */
int kc_boot_needs_tokens(struct kc_ctx *ctx, const char *device, kc_boot_fn fn, void *usrptr);

/* ---------------------------------------------------------------------------------------- */
/* DEK rotation (re-encryption)                                                             */

/**
 * Progress of kc_rekey(), called before the first chunk and after each re-encrypted chunk:
 * DONE of TOTAL bytes of data (DONE counts what earlier, interrupted runs did too). Return
 * non-zero to stop after the current chunk; the re-encryption stays resumable.
 */
typedef int (*kc_progress_fn)(uint64_t done, uint64_t total, void *usrptr);

/** Flags of kc_rekey(). */
enum kc_rekey_flags {
	/** only continue an interrupted rekey; -ENOENT when there is none */
	KC_REKEY_RESUME = 1 << 0,
	/** "journal" resilience (every chunk written twice) instead of "checksum" */
	KC_REKEY_JOURNAL = 1 << 1,
	/** "checksum" resilience (the default; on resume, switch back to it from journal) */
	KC_REKEY_CHECKSUM = 1 << 2,
	/** rekey although keyslots that no kekcrypt token holds (recovery keys, passphrases)
	 * exist: they are destroyed, since they hold the old DEK */
	KC_REKEY_FORCE = 1 << 3,
};

/** What kc_rekey() did (nothing secret). */
struct kc_rekey_result {
	size_t size;		/**< sizeof(struct kc_rekey_result): see KC_SIZED() */
	int n_tokens;		/**< kekcrypt tokens now wrapping the new DEK */
	bool resumed;		/**< an interrupted rekey was continued */
	char name[128];		/**< the mapping re-encrypted online, "" when offline */
};

/**
 * Rotate DEVICE's DEK: generate a new random DEK, wrap it under every KEK of the volume (the
 * KEK of each kekcrypt token), store those new tokens and their keyslots, then re-encrypt
 * the data with LUKS2 re-encryption, online through the active dm-crypt mapping of DEVICE
 * when there is one (found through its holders), offline otherwise; finally remove the old
 * tokens. Resumable: an interrupted run (callback, signal, crash, power loss) is continued
 * by the next call, which needs only one of the new tokens' KEKs (see lib/rekey.c). A call
 * on a volume whose rekey was interrupted before the re-encryption began rolls that back
 * and starts again (unless KC_REKEY_RESUME).
 *
 * @param flags    KC_REKEY_*
 * @param fn       progress callback, or NULL
 * @param r_result filled on success (may be NULL)
 * @return the number of tokens over the new DEK (>= 1); -EINVAL (bad arguments),
 *         -ENOENT (no kekcrypt token; with KC_REKEY_RESUME: no interrupted rekey),
 *         -EBUSY (another rekey of the volume is running, keyslots without a kekcrypt
 *         token and no KC_REKEY_FORCE, a re-encryption kekcrypt did not start, or crash
 *         recovery needed while mapped), -ECANCELED (stopped by the callback: resumable),
 *         -EIO (libcryptsetup failed to re-encrypt; resumable), -ENOSPC (no room for the
 *         new keyslots or tokens), -EMEDIUMTYPE, -EROFS, -EACCES, -ENOMEM, and the errors
 *         of kc_verify() (old tokens) and of the KEKs' wrap (-EAGAIN, -EPERM, -ENOANO,
 *         -EKEYREJECTED, -EBADMSG, -ETIMEDOUT...). Nothing is written unless the new DEK
 *         was wrapped under every KEK.
 */
int kc_rekey(struct kc_ctx *ctx, const char *device, uint32_t flags, kc_progress_fn fn,
	     void *usrptr, struct kc_rekey_result *r_result);

/** Flags of kc_encrypt(). */
enum kc_encrypt_flags {
	/** only continue an interrupted encryption; -ENOENT when there is none */
	KC_ENCRYPT_RESUME = 1 << 0,
	/** check everything and fill the result, write nothing (no KEK is contacted) */
	KC_ENCRYPT_DRY_RUN = 1 << 1,
	/** an ext2/3/4 filesystem that reaches into the last KC_ENCRYPT_RESERVED_BYTES is checked
	 * (e2fsck -f -p) and shrunk (resize2fs) first, instead of refused */
	KC_ENCRYPT_SHRINK = 1 << 2,
	/** online only (kc_encrypt_online() with a NAME): a DEVICE mounted (at one place) is
	 * unmounted first, and its filesystem mounted again at the same place, with the same
	 * options, from /dev/mapper/NAME as soon as the volume is open (libmount, as mount(8)
	 * does); a run that fails before that mounts back what holds the data, or says how
	 * (since 0.2) */
	KC_ENCRYPT_REMOUNT = 1 << 3,
};

/** What kc_encrypt() found and did (nothing secret). */
struct kc_encrypt_result {
	size_t size;		/**< sizeof(struct kc_encrypt_result): see KC_SIZED() */
	uint64_t device_bytes;	/**< the device's size */
	uint64_t content_bytes;	/**< what its filesystem uses (0: unknown, or resumed) */
	char content[32];	/**< the filesystem type found ("ext4"), "" when none */
	uint64_t header_bytes;	/**< the LUKS2 header put in front of the data */
	uint64_t reserved_bytes; /**< the free space the encryption needs at the device's end */
	bool resumed;		/**< an interrupted encryption was continued */
	char uuid[40];		/**< the volume's LUKS2 UUID ("" in a dry run without one) */
	/** KC_ENCRYPT_SHRINK: the filesystem's size after shrinking (would be, in a dry run); 0
	 * when it was not shrunk */
	uint64_t shrunk_to_bytes;
	/* since 0.2: */
	/** the mapping the data was (would be) encrypted through, online: the NAME given to
	 * kc_encrypt_online() or the volume's existing mapping; "" offline */
	char name[128];
	/** KC_ENCRYPT_REMOUNT: where the filesystem was unmounted from and mounted again from
	 * the mapping (would be, in a dry run); "" when it was not mounted */
	char mount_point[4096];
};

/**
 * Encrypt DEVICE in place: the data it holds (a filesystem, or anything with --force) becomes
 * a kekcrypt volume's, with a fresh random DEK wrapped under each KEK of PARAMS as kc_format()
 * does. Offline (DEVICE not mapped or mounted), by LUKS2 re-encryption in "encrypt" mode with a
 * data shift: the data moves back by the header's size (KC_ENCRYPT_HEADER_BYTES), so the last
 * KC_ENCRYPT_RESERVED_BYTES of the device must be free (a filesystem that reaches there is
 * refused with what to do, or shrunk with KC_ENCRYPT_SHRINK). Resumable: an interrupted run
 * (callback, signal, crash, power loss) is continued by the next call, which unwraps the DEK
 * through any of the new tokens; the header is first written to a private file (in
 * /var/lib/kekcrypt, or $KC_STATE_DIR) that is removed as soon as the device holds it.
 * PARAMS->force also encrypts a device whose content libblkid cannot size. With a detached
 * header (kc_set_header()) the header goes to that file, which must not exist (unless it holds
 * an interrupted encryption, then continued): no data shift, no room needed, header_bytes and
 * reserved_bytes 0, KC_ENCRYPT_SHRINK -EINVAL. See lib/encrypt.c.
 *
 * @return 0 and fills R_RESULT (may be NULL); -EINVAL, -EEXIST (already LUKS, a partition
 *         table, content that cannot be sized without force, a detached header file that
 *         holds no interrupted encryption), -ENOSPC (no free room at the
 *         end), -EBUSY (in use, mounted, or locked), -ENOENT (KC_ENCRYPT_RESUME and nothing
 *         to resume), -ECANCELED (stopped by the callback: resumable), -EIO, and the errors
 *         of kc_format().
 */
#define KC_ENCRYPT_HEADER_BYTES (16ULL << 20)
#define KC_ENCRYPT_RESERVED_BYTES (32ULL << 20)
int kc_encrypt(struct kc_ctx *ctx, const char *device, const struct kc_format_params *params,
	       uint32_t flags, kc_progress_fn fn, void *usrptr,
	       struct kc_encrypt_result *r_result);

/**
 * kc_encrypt(), online: the volume is opened as mapping NAME (dm-crypt) right after its header
 * is written, so that its filesystem can be mounted from /dev/mapper/NAME at once, and the
 * data is encrypted through that mapping while it is in use. DEVICE itself must not be
 * mounted: a mounted filesystem cannot move under dm-crypt (-EBUSY, the message says which
 * commands to run). Resuming (an interrupted run, also kc_encrypt()) continues through the
 * volume's mapping when it is open, whatever its name; otherwise kc_encrypt_online() opens it
 * as NAME first and kc_encrypt() continues offline. R_RESULT->name is the mapping used. With
 * a detached header (kc_set_header()) too: the data stays where it is. The volume is opened
 * with the keyslot passphrase derived from the DEK, as libcryptsetup opens a volume whose
 * encryption is under way.
 *
 * @return as kc_encrypt(), and -EINVAL (NAME cannot name a mapping), -EEXIST (a mapping NAME
 *         exists, not of DEVICE), -ENOTSUP (no device-mapper)
 */
int kc_encrypt_online(struct kc_ctx *ctx, const char *device, const char *name,
		      const struct kc_format_params *params, uint32_t flags, kc_progress_fn fn,
		      void *usrptr, struct kc_encrypt_result *r_result);

/** An interrupted rekey found in a header (kc_rekey_state()); nothing secret. */
struct kc_rekey_state {
	size_t size;		/**< sizeof(struct kc_rekey_state): see KC_SIZED() */
	/** "prepared" (new tokens and keyslots added, no data re-encrypted: kc_rekey() rolls
	 * them back), "re-encrypting" (libcryptsetup's re-encryption under way: resumable) or
	 * "finishing" (the data is under the new key; the old tokens not yet removed), or
	 * "encrypting" (an interrupted kc_encrypt()) */
	char phase[16];
	uint64_t done_bytes;	/**< data under the new key; 0 when not known */
	uint64_t total_bytes;	/**< data size; 0 when not known */
	char resilience[16];	/**< libcryptsetup's resilience mode; "" when not re-encrypting */
	uint32_t new_tokens;	/**< the new kekcrypt tokens, as a bitmask of token ids */
	uint32_t new_keyslots;	/**< their keyslots, as a bitmask */
	int bridge_keyslot;	/**< the bridge keyslot (see lib/rekey.c); -1 when none */
	int reencrypt_keyslot;	/**< libcryptsetup's reencrypt keyslot; -1 when none or unknown */
	/** e.g. "a rekey is in progress (16/144 MiB)": what every verb says of it */
	char summary[128];
	/* since 0.2: */
	/** what continues it: "kekcrypt rekey --resume", or "kekcrypt encrypt --resume" for an
	 * in-place encryption (kc_encrypt(); phase "encrypting") */
	char resume[32];
};

/**
 * Whether DEVICE's header holds an interrupted rekey, and its state. Reads only: resuming it
 * is kc_rekey() with KC_REKEY_RESUME. Every call that writes the header refuses such a header
 * with -EBUSY and this state's summary in kc_error_detail().
 *
 * @param r_state filled when there is one
 * @return 1 (an interrupted rekey), 0 (none), -EINVAL, -EMEDIUMTYPE (not LUKS2), -EACCES
 */
int kc_rekey_state(struct kc_ctx *ctx, const char *device, struct kc_rekey_state *r_state);

/* ---------------------------------------------------------------------------------------- */
/* Recovery keys and header backups                                                         */

/**
 * Cost of a recovery keyslot's KDF, for tests. Recovery keyslots use PBKDF2-SHA256 with a
 * fixed iteration count (100000), never benchmarked, and no memory: see kekcrypt(8).
 */
struct kc_recovery_params {
	size_t size;		/**< sizeof(struct kc_recovery_params): see KC_SIZED() */
	uint32_t max_memory_kb;	/**< ignored (PBKDF2 uses no memory; was argon2id's cap) */
	uint32_t iter_time_ms;	/**< ignored (no benchmark) */
	uint32_t iterations;	/**< PBKDF2 iterations instead of 100000 (tests); raised to
				     2000 at least (kekcrypt's own keyslots have 1000) */
};

/**
 * Add a recovery key to DEVICE: unwrap the DEK through a kekcrypt token, generate 256 random
 * bits shown as 8 dash-separated groups of 8 modhex characters, and store them in four new
 * passphrase keyslots (PBKDF2), one per form a prompt may be given (as printed, lower case
 * without dashes, upper case with and without dashes), all marked by one token of type
 * "kekcrypt-recovery" that holds no secret. The key is returned once and is not stored
 * anywhere else.
 *
 * @param params     NULL for the defaults
 * @param r_key      the key as printed (NUL-terminated, locked memory), to be shown to the
 *                   user once and freed with kc_recovery_key_free()
 * @param r_keyslot  the keyslot of the printed form (may be NULL); kc_recovery_list() has all
 * @return 0, the errors of kc_verify(), -EINVAL (bad params), -ENOSPC (no free keyslot or
 *         token), -EROFS, -EACCES, -EBUSY, -ENOMEM
 */
int kc_recovery_add(struct kc_ctx *ctx, const char *device,
		    const struct kc_recovery_params *params, char **r_key, int *r_keyslot);

/**
 * kc_recovery_add() authorised by SECRET instead of a kekcrypt token, for any LUKS2 volume:
 * the volume key comes from the keyslot SECRET opens (FLAGS: KC_ENROL_RECOVERY_KEY or 0).
 * The keyslot SECRET opened stays (kc_kek_enrol() can wipe it once a KEK protects the
 * volume).
 *
 * @param r_res  what was done (may be NULL; size-versioned)
 * @return 0, or the errors of kc_recovery_add() and of kc_kek_enrol()'s secret (-EBADMSG,
 *         -EINVAL, -ENOEXEC)
 */
int kc_recovery_enrol(struct kc_ctx *ctx, const char *device,
		      const struct kc_recovery_params *params, const char *secret,
		      size_t secret_len, uint32_t flags, char **r_key,
		      struct kc_enrol_result *r_res);

/** Wipe and free a key from kc_recovery_add(); NULL-safe. */
void kc_recovery_key_free(char *key);

/** A recovery key's marker (nothing secret). */
struct kc_recovery_info {
	size_t size;		/**< sizeof(struct kc_recovery_info): see KC_SIZED() */
	int token_id;		/**< the "kekcrypt-recovery" token */
	int keyslot;		/**< its first keyslot, or -1 (left by an interrupted removal) */
	char created[32];	/**< ISO 8601 UTC */
	uint32_t keyslot_mask;	/**< all its keyslots (bit N: keyslot N): four, one per typed
				     form; one for a key added before kekcrypt 0.x (version 1) */
};

/**
 * List DEVICE's recovery keys.
 *
 * @return the number of recovery keys (may exceed MAX; the first MAX are in R_INFO),
 *         -EMEDIUMTYPE, -ENOENT, -EACCES, -EINVAL
 */
int kc_recovery_list(struct kc_ctx *ctx, const char *device, struct kc_recovery_info *r_info,
		     size_t max);

/**
 * Remove the recovery key marked by token TOKEN_ID (every recovery key when < 0): its
 * keyslots, then its token. Refuses to remove the last way to unlock the volume unless FORCE.
 *
 * @return the number removed, -ENOENT (no recovery key / no such token), -EBUSY (last unlock
 *         path), -EROFS, -EACCES, -EMEDIUMTYPE, -EIO
 */
int kc_recovery_remove(struct kc_ctx *ctx, const char *device, int token_id, bool force);

/**
 * Check recovery key KEY (KEY_LEN bytes, any case, with or without the dashes or blanks
 * between groups) against DEVICE's recovery keyslots (every keyslot when none is marked;
 * the printed form first, the other typed forms only on a key whose removal was interrupted),
 * and with NAME != NULL activate the dm-crypt mapping NAME with it (KC_OPEN_* flags). With
 * NAME NULL nothing is mapped: a check only.
 *
 * @param r_keyslot the keyslot that accepted it (may be NULL)
 * @return 0, -EINVAL (not of the form of a recovery key), -EBADMSG (wrong key), -EBUSY (in
 *         use, or NAME exists), -ENOTSUP (no device-mapper), -EMEDIUMTYPE, -EACCES, -EIO,
 *         -ENOMEM
 */
int kc_recovery_open(struct kc_ctx *ctx, const char *device, const char *name, const char *key,
		     size_t key_len, uint32_t flags, int *r_keyslot);

/**
 * Whether KEY (KEY_LEN bytes) is a recovery key in any case, with or without the dashes or
 * blanks between groups; if so, its printed form (lower case, with the dashes).
 *
 * @param r_key  the printed form (NUL-terminated, locked memory), freed with
 *               kc_recovery_key_free()
 * @return 0, -EINVAL (not a recovery key: *R_KEY untouched), -ENOMEM
 */
int kc_recovery_key_normalise(const char *key, size_t key_len, char **r_key);

/**
 * Save DEVICE's LUKS2 header (binary headers, JSON and keyslot areas) to the new file FILE,
 * mode 0600. Never overwrites.
 *
 * @return 0, -EEXIST (FILE exists), -EMEDIUMTYPE, -ENOENT, -EACCES, -EIO, -ENOMEM
 */
int kc_header_backup(struct kc_ctx *ctx, const char *device, const char *file);

/**
 * Write the header saved in FILE back to DEVICE. Unless FORCE, the device must hold a
 * readable LUKS2 header with the backup's UUID.
 *
 * @return 0, -EXDEV (the backup is of another volume: UUID mismatch), -EMEDIUMTYPE (FILE is
 *         not a LUKS2 header backup, or DEVICE holds no readable LUKS2 header to compare
 *         with), -ENOENT (no FILE), -EROFS, -EACCES, -EBUSY, -EIO (libcryptsetup refused, e.g.
 *         the backup's data offset or key size do not fit the device), -ENOMEM
 */
int kc_header_restore(struct kc_ctx *ctx, const char *device, const char *file, bool force);

/* ---------------------------------------------------------------------------------------- */
/* Mapped volumes                                                                           */

/** Status of a dm-crypt mapping. */
struct kc_status {
	size_t size;		/**< sizeof(struct kc_status): see KC_SIZED() */
	char name[128];
	char device[4096];	/**< backing device */
	char cipher[64];
	size_t key_bits;
	uint32_t sector_size;
	uint64_t offset_sectors;
	uint64_t size_sectors;
	bool readonly;
	bool in_use;		/**< open count > 0 */
	bool is_kekcrypt;	/**< the backing device is a LUKS2 volume with a kekcrypt token */
	char uuid[40];		/**< LUKS UUID, when LUKS */
	bool key_in_keyring;	/**< dm-crypt holds a keyring reference, not the key */
};

/**
 * Status of mapping NAME.
 *
 * @return 0, -ENOENT (no such mapping), -ENOTSUP (no device-mapper), -EINVAL (not dm-crypt)
 */
int kc_status_get(struct kc_ctx *ctx, const char *name, struct kc_status *r_status);

/**
 * Names of all active dm-crypt mappings; *r_names is a NULL-terminated array freed with
 * kc_strv_free().
 *
 * @return number of names, -ENOTSUP, -ENOMEM
 */
int kc_status_list(struct kc_ctx *ctx, char ***r_names);
void kc_strv_free(char **strv);

/* ---------------------------------------------------------------------------------------- */
/* libcryptsetup token plugin support (libcryptsetup-token-kekcrypt.so)                      */

/**
 * Send the context's log to libcryptsetup's log of CD instead of a kc_set_log() callback:
 * errors and warnings at CRYPT_LOG_ERROR, KC_LOG_INFO at CRYPT_LOG_NORMAL, KC_LOG_DEBUG at
 * CRYPT_LOG_DEBUG (shown by `cryptsetup --debug`). libcryptsetup's debug level is left alone.
 */
void kc_log_to_crypt_device(struct kc_ctx *ctx, struct crypt_device *cd);

/**
 * Unwrap the DEK through kekcrypt token TOKEN_ID of the LUKS2 device loaded in CD (a borrowed
 * handle, e.g. one libcryptsetup is activating), within the deadline set by kc_set_timeout(),
 * check it against the volume's digest, and return the passphrase of the keyslot bound to the
 * token (binary, 32 bytes) in locked memory. Maps nothing, writes nothing.
 *
 * @param r_buf the passphrase, freed (and wiped) with kc_token_passphrase_free()
 * @return 0, -EINVAL (bad arguments, malformed token), -EMEDIUMTYPE (not LUKS2), -ENOENT (no
 *         kekcrypt token TOKEN_ID, unknown provider, missing KEK file), -EAGAIN, -ETIMEDOUT,
 *         -EPROTO, -EBADE (KMS unreachable or misbehaving), -EPERM, -ENOANO, -EKEYREJECTED,
 *         -EACCES (refused, or credentials missing or rejected), -EBADMSG (wrong KEK, or the
 *         key does not match the volume), -EPROTONOSUPPORT, -ENOMEM; kc_error_detail() says why
 */
int kc_token_unlock_passphrase(struct kc_ctx *ctx, struct crypt_device *cd, int token_id,
			       char **r_buf, size_t *r_len);

/**
 * Like kc_token_unlock_passphrase(), for DEVICE (a path) and TOKEN_ID (-1: each kekcrypt
 * token in order, as kc_verify()): for crypttab keyscripts, whose output libcryptsetup reads
 * as the keyslot passphrase. Maps nothing, writes nothing.
 *
 * @param r_result which token worked (may be NULL)
 * @return as kc_verify(); the passphrase is freed with kc_token_passphrase_free()
 */
int kc_keyslot_passphrase(struct kc_ctx *ctx, const char *device, int token_id, char **r_buf,
			  size_t *r_len, struct kc_unlock_result *r_result);

/** Wipe and free a passphrase from kc_token_unlock_passphrase() or kc_keyslot_passphrase();
 * NULL-safe. */
void kc_token_passphrase_free(char *buf, size_t len);

/**
 * Parse and validate the JSON text of a kekcrypt token, as the library reads tokens (format
 * version, fields, base64, sizes, provider-specific checks). Needs no configuration.
 *
 * @param ctx    for kc_error_detail() naming the defect, or NULL
 * @param r_info filled on success (id is -1, valid 0), or NULL to validate only
 * @return 0, -EINVAL (malformed), -ENOENT (provider unknown to this kekcrypt), -ENOMEM
 */
int kc_token_validate_json(struct kc_ctx *ctx, const char *json, struct kc_token_info *r_info);

/** What a volume's template mark says (kc_template_get()). */
enum kc_template_state {
	KC_TEMPLATE_NONE = 0,		/**< no mark: not a template, or its first boot is done */
	KC_TEMPLATE_MARKED = 1,		/**< formatted for an image template: its clones share its DEK */
	KC_TEMPLATE_REKEYED = 2,	/**< kc_firstboot() re-keyed it and has yet to finish */
};

/**
 * Mark DEVICE as a volume of an image template (MARK true: state KC_TEMPLATE_MARKED, also
 * over a mark of another state) or remove its mark (MARK false). The mark is a token of
 * type "kekcrypt-template" (no keyslot, no secret, no KEK named). Takes the device's writer
 * lock; refused while a rekey is in progress.
 *
 * @return 1 when the header was changed, 0 when it already was so, -EMEDIUMTYPE, -EBUSY,
 *         -EROFS, -EACCES, -ENOSPC (no free token), -EIO
 */
int kc_template_mark(struct kc_ctx *ctx, const char *device, bool mark);

/**
 * The template mark of DEVICE, read without writing.
 *
 * @return KC_TEMPLATE_NONE, KC_TEMPLATE_MARKED or KC_TEMPLATE_REKEYED; -EINVAL (a malformed
 *         mark: the detail says why), -EMEDIUMTYPE, -ENOENT, -EACCES
 */
int kc_template_get(struct kc_ctx *ctx, const char *device);

/** What kc_firstboot() found and did (nothing secret). */
struct kc_firstboot_result {
	size_t size;		/**< sizeof(struct kc_firstboot_result): see KC_SIZED() */
	int state;		/**< the mark found (KC_TEMPLATE_NONE: nothing was done) */
	bool rekeyed;		/**< the DEK was rotated in this call */
	bool resumed;		/**< ... by continuing an interrupted rekey */
	int keks_added;		/**< tokens added for the [firstboot] KEKs of the configuration */
	int tokens_removed;	/**< tokens of other KEKs removed after those verified */
	int n_tokens;		/**< kekcrypt tokens at the end */
};

/**
 * The first boot of a clone of a template image: when DEVICE carries a template mark,
 * rotate its DEK (kc_rekey(), online when mapped, resumable), then, when the configuration
 * has a [firstboot] section, give it a token for each "kek = URI" there (each checked by an
 * unwrap) and only then remove its tokens of every other KEK, and finally remove the mark.
 * Without a mark it does nothing. An interrupted call is continued by the next one.
 *
 * @param flags    KC_REKEY_JOURNAL, KC_REKEY_CHECKSUM, KC_REKEY_FORCE, for the rekey
 * @param fn       the rekey's progress callback, or NULL
 * @param r_result filled on success (may be NULL)
 * @return 0; -EINVAL (bad arguments, a malformed mark), and the errors of kc_template_get(),
 *         kc_rekey(), kc_kek_add(), kc_verify() and kc_kek_remove()
 */
int kc_firstboot(struct kc_ctx *ctx, const char *device, uint32_t flags, kc_progress_fn fn,
		 void *usrptr, struct kc_firstboot_result *r_result);

#ifdef __cplusplus
}
#endif

#endif /* KEKCRYPT_H */
