/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* kc_format(): a new LUKS2 volume whose random DEK is stored only wrapped by its KEKs. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <libcryptsetup.h>
#include <openssl/rand.h>

#include "internal.h"

/* Refuse to overwrite anything libblkid recognises: filesystem, partition table, LUKS. */
static int probe_empty(struct kc_ctx *ctx, const char *device)
{
	char type[32], version[16];
	bool pt;
	int r = vol_probe(device, type, version, &pt);

	if (r > 0 || r == -ENOTUNIQ)
		return ctx_fail(ctx, -EEXIST,
				"device '%s' holds %s%s; refusing to format it without --force",
				device, r > 0 ? "a signature of type " : "several signatures",
				r > 0 ? type : "");
	if (r < 0)
		return ctx_fail(ctx, -EIO, "device '%s': probing failed (%s)", device, strerror(-r));
	return 0;
}

/* Create the detached header file when it does not exist (cryptsetup luksFormat --header
 * does too): *R_CREATED tells the caller to remove it if the format fails. libcryptsetup
 * grows the file to the header's size, but refuses to start from an empty one: one 4 KiB
 * block is allocated first. */
static int header_create(struct kc_ctx *ctx, bool *r_created)
{
	int fd, r;

	*r_created = false;
	if (!ctx->header || access(ctx->header, F_OK) == 0 || errno != ENOENT)
		return 0;
	fd = open(ctx->header, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return ctx_fail(ctx, errno == EACCES || errno == EROFS ? -EACCES : -errno,
				"header file '%s': cannot create it: %s", ctx->header,
				strerror(errno));
	r = posix_fallocate(fd, 0, 4096);
	close(fd);
	if (r) {
		unlink(ctx->header);
		return ctx_fail(ctx, r == ENOSPC ? -ENOSPC : -EIO, "header file '%s': cannot "
				"allocate it: %s", ctx->header, strerror(r));
	}
	*r_created = true;
	return 0;
}

/* The device, and a detached header that held something before: writable, open nowhere else,
 * and (without FORCE) empty. */
static int check_targets(struct kc_ctx *ctx, const char *device, bool created, bool force)
{
	int r;

	r = vol_check_writable(ctx, device, true);
	if (r >= 0 && ctx->header)
		r = vol_check_writable(ctx, ctx->header, true);
	if (r >= 0 && !force)
		r = probe_empty(ctx, device);
	if (r >= 0 && !force && ctx->header && !created)
		r = probe_empty(ctx, ctx->header);
	return r;
}

int format_split_cipher(struct kc_ctx *ctx, const char *spec, char cipher[32], char mode[32])
{
	const char *dash = strchr(spec, '-');

	if (!dash || dash == spec || (size_t)(dash - spec) >= 32 || strlen(dash + 1) >= 32 ||
	    !dash[1])
		return ctx_fail(ctx, -EINVAL, "cipher '%s' is not of the form CIPHER-MODE "
				"(e.g. aes-xts-plain64)", spec);
	snprintf(cipher, 32, "%.*s", (int)(dash - spec), spec);
	snprintf(mode, 32, "%s", dash + 1);
	return 0;
}

void format_keks_clear(struct format_keks *fk)
{
	for (size_t i = 0; i < fk->n; i++) {
		kek_close(fk->keks[i]);
		wrapped_clear(&fk->wrapped[i]);
	}
	free(fk->keks);
	free(fk->wrapped);
}

int format_wrap_all(struct kc_ctx *ctx, const struct kc_format_params *p,
			   const struct kc_secret *dek, struct format_keks *fk)
{
	int r;

	fk->keks = calloc(p->n_keks, sizeof(*fk->keks));
	fk->wrapped = calloc(p->n_keks, sizeof(*fk->wrapped));
	if (!fk->keks || !fk->wrapped)
		return -ENOMEM;
	for (size_t i = 0; i < p->n_keks; i++) {
		fk->n = i + 1;
		r = kek_open(ctx, p->kek_uris[i], &fk->keks[i]);
		/* Only a URI its provider accepted: a refused one may hold a secret. */
		if (r >= 0)
			audit_kek(ctx, fk->keks[i]->uri);
		if (r >= 0)
			r = fk->keks[i]->ops->wrap(ctx, fk->keks[i]->state, dek, &fk->wrapped[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

int format_add_tokens(struct kc_ctx *ctx, struct crypt_device *cd, const struct format_keks *fk,
		      const struct kc_secret *dek)
{
	int r = 0;

	for (size_t i = 0; r >= 0 && i < fk->n; i++) {
		r = vol_token_add(ctx, cd, fk->keks[i], &fk->wrapped[i], dek, 0);
		if (r < 0)
			ctx_detail_prefix(ctx, "KEK '%s'", fk->keks[i]->uri);
		audit_token(ctx, r, NULL);
	}
	return r;
}

static int format_header(struct kc_ctx *ctx, const char *device, const struct kc_format_params *p,
			 const struct kc_secret *dek, struct crypt_device **r_cd)
{
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	struct crypt_params_luks2 params = {
		.sector_size = p->sector_size ?: 512, .label = p->label,
	};
	char cipher[32], mode[32];
	int r;

	r = format_split_cipher(ctx, p->cipher ?: FORMAT_DEFAULT_CIPHER, cipher, mode);
	if (r < 0)
		return r;
	r = vol_init(ctx, device, &cd);
	if (r < 0)
		return r;
	/* The DEK is random: a slow KDF adds nothing but unlock time. */
	r = luks_minimal_pbkdf(ctx, cd);
	if (r >= 0)
		r = crypt_format(cd, CRYPT_LUKS2, cipher, mode, p->uuid, (const char *)dek->data,
				 dek->len, &params);
	if (r < 0)
		return ctx_fail(ctx, r == -ENOMEM ? r : r == -EBUSY ? -EBUSY : -EINVAL,
				"device '%s': LUKS2 format failed (%s); check cipher, key size "
				"and sector size", device, strerror(-r));
	*r_cd = TAKE_PTR(cd);
	return 0;
}

int format_new_dek(struct kc_ctx *ctx, const struct kc_format_params *p,
		   struct kc_secret **r_dek)
{
	_cleanup_(kc_secret_freep) struct kc_secret *dek =
		kc_secret_alloc((p->key_size_bits ?: FORMAT_DEFAULT_KEY_BITS) / 8);

	if (!dek)
		return -ENOMEM;
	if (RAND_priv_bytes(dek->data, (int)dek->len) != 1)
		return ctx_fail(ctx, -EIO, "no random bytes from OpenSSL");
	*r_dek = TAKE_PTR(dek);
	return 0;
}

int format_check_params(struct kc_ctx *ctx, const char *device,
			       const struct kc_format_params *p)
{
	size_t bits = p->key_size_bits ?: FORMAT_DEFAULT_KEY_BITS;

	if (!ctx || !device || !p->kek_uris || p->n_keks == 0)
		return -EINVAL;
	if (bits % 8 || bits < 128 || bits > 1024)
		return ctx_fail(ctx, -EINVAL, "key size %zu bits is not a multiple of 8 in "
				"128..1024", bits);
	if (p->sector_size && (p->sector_size < 512 || p->sector_size > 4096 ||
			       (p->sector_size & (p->sector_size - 1))))
		return ctx_fail(ctx, -EINVAL, "sector size %u is not a power of two in 512..4096",
				p->sector_size);
	return 0;
}

static int format(struct kc_ctx *ctx, const char *device, const struct kc_format_params *params)
{
	_cleanup_(kc_secret_freep) struct kc_secret *dek = NULL;
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	_cleanup_(vol_unlockp) int lock = -1;
	struct kc_format_params full, *p = &full;
	struct format_keks fk = { 0 };
	bool created = false;
	int r;

	if (!params || !sized_ok(params, SIZED_V1(struct kc_format_params, force)))
		return -EINVAL;
	sized_get(&full, sizeof(full), params);
	r = format_check_params(ctx, device, p);
	if (r < 0)
		return r;
	ctx_detail_clear(ctx);
	r = format_new_dek(ctx, p, &dek);
	if (r >= 0)
		r = header_create(ctx, &created);
	if (r >= 0)
		r = vol_lock(ctx, device, &lock);
	if (r >= 0)
		r = check_targets(ctx, device, created, p->force);
	if (r >= 0) {
		ctx_deadline_start(ctx, 0);
		r = format_wrap_all(ctx, p, dek, &fk);
		ctx_deadline_end(ctx);
	}
	if (r >= 0)
		r = format_header(ctx, device, p, dek, &cd);
	if (r >= 0)
		r = format_add_tokens(ctx, cd, &fk, dek);
	if (r < 0)
		ctx_detail_device(ctx, device);
	else
		log_dbg(ctx, "device '%s': formatted with %zu kekcrypt token(s)", device, fk.n);
	/* A header file this call created and did not finish is not left behind. */
	if (r < 0 && created)
		unlink(ctx->header);
	format_keks_clear(&fk);
	return r < 0 ? r : 0;
}

int kc_format(struct kc_ctx *ctx, const char *device, const struct kc_format_params *params)
{
	struct audit a;

	audit_begin(ctx, &a, "format", device);
	return audit_end(ctx, &a, format(ctx, device, params));
}
