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
 *    NULL-safe free function.
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
 *  -EMEDIUMTYPE     not a LUKS2 device, or its header is corrupt
 *  -EEXIST          the device holds data (a signature) or the name exists; use force
 *  -EBUSY           the device or mapping is in use
 *  -EROFS           the device is read-only
 *  -EACCES          local permission problem (file modes, not root)
 *  -EPROTONOSUPPORT unsupported KEK URI scheme
 *  -ETIMEDOUT       the operation's deadline passed
 *  -ENOTSUP         the system lacks a needed facility (e.g. device-mapper)
 *  -EPROTO          TLS failure talking to the KMS (untrusted certificate, wrong host)
 *  -EBADE           the KMS answered something malformed, truncated or oversized
 *  -ENOSPC          no room in the LUKS2 header for another keyslot or token
 *  -ENOMEM          out of memory
 */
#ifndef KEKCRYPT_H
#define KEKCRYPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct crypt_device;

/** Library context: logging, configuration, provider state. Opaque. */
struct kc_ctx;

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
 * Create a context that reuses a libcryptsetup handle (for the token plugin). The handle is
 * borrowed: it must outlive the context and is not freed by kc_free().
 *
 * @return as kc_init()
 */
int kc_init_by_crypt_device(struct kc_ctx **r_ctx, struct crypt_device *cd,
			    const char *config_path);

/** Free a context; NULL-safe. */
void kc_free(struct kc_ctx *ctx);

/** Set the log callback and the highest level passed to it (KC_LOG_*). */
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

/** The library version string. */
const char *kc_version(void);

/* ---------------------------------------------------------------------------------------- */
/* Volumes                                                                                  */

/** Parameters of kc_format(). Zero-initialise and set what you need. */
struct kc_format_params {
	const char *const *kek_uris; /**< KEK URIs, at least one */
	size_t n_keks;
	const char *cipher;	    /**< "aes-xts-plain64" when NULL */
	size_t key_size_bits;	    /**< 512 when 0 */
	const char *label;	    /**< LUKS2 label, or NULL */
	uint32_t sector_size;	    /**< 512 when 0 */
	bool force;		    /**< format even when a signature is found */
};

/**
 * Format DEVICE as LUKS2 with a fresh random DEK, stored once per KEK: wrapped in a token of
 * type "kekcrypt" bound to a keyslot whose passphrase is derived from the DEK. Every KEK is
 * tried before anything is written, so a failure leaves the device untouched.
 *
 * @return 0, -EEXIST (a filesystem, partition table or LUKS signature was found and force is
 *         not set), -EINVAL (bad parameters or URI), -EPROTONOSUPPORT, any provider error of
 *         the wrap (-ENOENT, -EAGAIN, -EPERM, -ENOANO, -EKEYREJECTED, -EACCES), -EBUSY,
 *         -EROFS, -ENOMEM
 */
int kc_format(struct kc_ctx *ctx, const char *device, const struct kc_format_params *params);

/** Result of an unlock attempt (verify, open). */
struct kc_unlock_result {
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
 *         -ENOANO, -EKEYREJECTED, -EBADMSG...), -ETIMEDOUT; when several tokens fail, the
 *         most actionable error is returned and kc_error_detail() lists each.
 */
int kc_verify(struct kc_ctx *ctx, const char *device, int token_id,
	      struct kc_unlock_result *r_result);

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
 * @return the new token id (>= 0), or the errors of kc_verify() and of the new KEK's wrap
 */
int kc_kek_add(struct kc_ctx *ctx, const char *device, const char *kek_uri);

/**
 * Remove kekcrypt token TOKEN_ID and its bound keyslot. Refuses to remove the last way to
 * unlock the volume (no other kekcrypt token nor other keyslot) unless FORCE.
 *
 * @return 0, -ENOENT (no such kekcrypt token), -EBUSY (it is the last unlock path and force
 *         is not set), -EMEDIUMTYPE, -EROFS
 */
int kc_kek_remove(struct kc_ctx *ctx, const char *device, int token_id, bool force);

/* ---------------------------------------------------------------------------------------- */
/* Mapped volumes                                                                           */

/** Status of a dm-crypt mapping. */
struct kc_status {
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

#ifdef __cplusplus
}
#endif

#endif /* KEKCRYPT_H */
