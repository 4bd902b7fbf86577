/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Status of dm-crypt mappings, read with libdevmapper. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libcryptsetup.h>
#include <libdevmapper.h>

#include "internal.h"

static void dm_taskp(struct dm_task **t)
{
	if (*t)
		dm_task_destroy(*t);
}

/* Resolve "MAJ:MIN" to /dev/NAME through sysfs; leave it as it is otherwise. */
static void resolve_devno(const char *devno, char *out, size_t size)
{
	char path[128], buf[256], *line, *save = NULL;
	ssize_t n;
	int fd;

	snprintf(out, size, "%s", devno);
	snprintf(path, sizeof(path), "/sys/dev/block/%s/uevent", devno);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (!strncmp(line, "DEVNAME=", 8))
			snprintf(out, size, "/dev/%s", line + 8);
}

/* Parse a crypt target line: cipher key iv_offset device offset [n opt...]. */
static int parse_crypt_params(char *params, struct kc_status *st)
{
	char *save = NULL, *cipher, *key, *dev, *tok;
	unsigned long long off;
	unsigned long nopt;

	cipher = strtok_r(params, " ", &save);
	key = strtok_r(NULL, " ", &save);
	if (!cipher || !key || !strtok_r(NULL, " ", &save))
		return -EINVAL;
	dev = strtok_r(NULL, " ", &save);
	tok = strtok_r(NULL, " ", &save);
	if (!dev || !tok || sscanf(tok, "%llu", &off) != 1)
		return -EINVAL;
	snprintf(st->cipher, sizeof(st->cipher), "%s", cipher);
	st->offset_sectors = off;
	resolve_devno(dev, st->device, sizeof(st->device));
	/* ":32:logon:..." names a keyring key of 32 bytes; otherwise hex (or "-" hidden). */
	if (key[0] == ':') {
		st->key_in_keyring = true;
		st->key_bits = strtoul(key + 1, NULL, 10) * 8;
	} else if (key[0] != '-') {
		st->key_bits = strlen(key) * 4;
	}
	st->sector_size = 512;
	tok = strtok_r(NULL, " ", &save);
	nopt = tok ? strtoul(tok, NULL, 10) : 0;
	for (unsigned long i = 0; i < nopt && (tok = strtok_r(NULL, " ", &save)); i++)
		if (!strncmp(tok, "sector_size:", 12))
			st->sector_size = (uint32_t)strtoul(tok + 12, NULL, 10);
	return 0;
}

static int read_table(struct kc_ctx *ctx, const char *name, struct kc_status *st)
{
	_cleanup_(dm_taskp) struct dm_task *dmt = NULL;
	uint64_t start, length;
	char *type = NULL, *params = NULL;
	struct dm_info info;

	dmt = dm_task_create(DM_DEVICE_TABLE);
	if (!dmt)
		return -ENOMEM;
	/* The table holds the key in hex when it is not in the keyring: the kernel and
	 * libdevmapper wipe the buffers of a secure task. */
	if (!dm_task_secure_data(dmt) || !dm_task_set_name(dmt, name) || !dm_task_run(dmt) ||
	    !dm_task_get_info(dmt, &info))
		return ctx_fail(ctx, -EIO, "mapping '%s': device-mapper query failed", name);
	if (!info.exists)
		return ctx_fail(ctx, -ENOENT, "no active mapping named '%s'", name);
	dm_get_next_target(dmt, NULL, &start, &length, &type, &params);
	if (!type || strcmp(type, "crypt") || !params)
		return ctx_fail(ctx, -EINVAL, "mapping '%s' is not a dm-crypt mapping", name);
	snprintf(st->name, sizeof(st->name), "%s", name);
	st->size_sectors = length;
	st->readonly = info.read_only;
	st->in_use = info.open_count > 0;
	if (parse_crypt_params(params, st) < 0)
		return ctx_fail(ctx, -EINVAL, "mapping '%s': unexpected dm-crypt table", name);
	return 0;
}

/* Is the backing device a LUKS2 volume carrying a kekcrypt token? */
static void read_luks(struct kc_ctx *ctx, const char *name, struct kc_status *st)
{
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	const char *type;

	if (crypt_init_by_name(&cd, name) < 0)
		return;
	luks_log_to(ctx, cd);
	if (!crypt_get_type(cd) || strcmp(crypt_get_type(cd), CRYPT_LUKS2))
		return;
	snprintf(st->uuid, sizeof(st->uuid), "%s", crypt_get_uuid(cd) ?: "");
	for (int id = 0; id < crypt_token_max(CRYPT_LUKS2) && !st->is_kekcrypt; id++)
		st->is_kekcrypt = crypt_token_status(cd, id, &type) != CRYPT_TOKEN_INACTIVE &&
				  type && !strcmp(type, TOKEN_TYPE);
}

int kc_status_get(struct kc_ctx *ctx, const char *name, struct kc_status *r_status)
{
	struct kc_status st = { .size = sizeof(st) };
	int r;

	if (!ctx || !name || !r_status ||
	    !sized_ok(r_status, SIZED_V1(struct kc_status, key_in_keyring)))
		return -EINVAL;
	ctx_detail_clear(ctx);
	r = dm_available(ctx);
	if (r < 0)
		return r;
	r = read_table(ctx, name, &st);
	if (r < 0)
		return r;
	read_luks(ctx, name, &st);
	sized_put(r_status, &st, sizeof(st));
	return 0;
}

void kc_strv_free(char **strv)
{
	if (!strv)
		return;
	for (char **s = strv; *s; s++)
		free(*s);
	free(strv);
}

static int is_crypt(const char *name)
{
	_cleanup_(dm_taskp) struct dm_task *dmt = dm_task_create(DM_DEVICE_TABLE);
	uint64_t start, length;
	char *type = NULL, *params = NULL;

	/* A table may hold a key: see read_table(). */
	if (!dmt || !dm_task_secure_data(dmt) || !dm_task_set_name(dmt, name) ||
	    !dm_task_run(dmt))
		return 0;
	dm_get_next_target(dmt, NULL, &start, &length, &type, &params);
	return type && !strcmp(type, "crypt");
}

int kc_status_list(struct kc_ctx *ctx, char ***r_names)
{
	_cleanup_(dm_taskp) struct dm_task *dmt = NULL;
	struct dm_names *names;
	char **v = NULL;
	size_t n = 0;
	unsigned next = 0;

	int r;

	if (!ctx || !r_names)
		return -EINVAL;
	r = dm_available(ctx);
	if (r < 0)
		return r;
	dmt = dm_task_create(DM_DEVICE_LIST);
	if (!dmt || !dm_task_run(dmt) || !(names = dm_task_get_names(dmt)))
		return ctx_fail(ctx, -EIO, "device-mapper: cannot list mappings");
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (; names->dev; next = names->next, names = (void *)((char *)names + next)) {
		char **nv;

		if (is_crypt(names->name)) {
			nv = realloc(v, (n + 2) * sizeof(*v));
			if (!nv || !(nv[n] = strdup(names->name))) {
				kc_strv_free(nv ?: v);
				return -ENOMEM;
			}
			v = nv;
			v[++n] = NULL;
		}
		if (!names->next)
			break;
	}
	*r_names = v;
	return (int)n;
}
