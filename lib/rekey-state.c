/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What an interrupted rekey (lib/rekey.c) left in a header, read without writing: its phase,
 * how much of the data is under the new key, and the keyslots involved. Every verb that meets
 * such a header says this rather than what the half-changed header makes it fail with (an old
 * key that no longer matches the data segment, a keyslot area in use).
 *
 * The progress comes from libcryptsetup's re-encryption segments (crypt_dump_json(), where
 * libcryptsetup has it): with the forward direction kekcrypt uses, the data under the new key
 * is the fixed-size segments before the hotzone ("in-reencryption") and the old part (the
 * last one, "dynamic"); "backup-*" segments are copies, not data.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <libcryptsetup.h>

#include "internal.h"

/* Whether segment SEG (a LUKS2 JSON segment) carries flag FLAG. */
static bool segment_flag(json_object *seg, const char *flag)
{
	json_object *flags;

	if (!json_object_object_get_ex(seg, "flags", &flags) ||
	    !json_object_is_type(flags, json_type_array))
		return false;
	for (size_t i = 0; i < json_object_array_length(flags); i++)
		if (!strncmp(json_object_get_string(json_object_array_get_idx(flags, i)) ?: "",
			     flag, strlen(flag)))
			return true;
	return false;
}

/* The re-encrypted bytes by the segments in JSON (forward direction), and the reencrypt
 * keyslot; what the header does not say is left as it is. */
static void state_from_json(const char *json, struct kc_rekey_state *st)
{
	json_object *root = json_tokener_parse(json), *segs, *slots, *o;
	uint64_t done = 0;

	if (root && json_object_object_get_ex(root, "segments", &segs) &&
	    json_object_is_type(segs, json_type_object)) {
		json_object_object_foreach(segs, id, seg) {
			(void)id;
			if (!json_object_object_get_ex(seg, "size", &o) ||
			    segment_flag(seg, "backup") || segment_flag(seg, "in-reencryption") ||
			    !strcmp(json_object_get_string(o) ?: "", "dynamic"))
				continue;
			done += strtoull(json_object_get_string(o) ?: "0", NULL, 10);
		}
		st->done_bytes = done;
	}
	if (root && json_object_object_get_ex(root, "keyslots", &slots) &&
	    json_object_is_type(slots, json_type_object)) {
		json_object_object_foreach(slots, id, ks)
			if (json_object_object_get_ex(ks, "type", &o) &&
			    !strcmp(json_object_get_string(o) ?: "", "reencrypt"))
				st->reencrypt_keyslot = (int)strtol(id, NULL, 10);
	}
	json_object_put(root);
}

/* The data size: the device's size past the data offset; 0 when it cannot be read. */
static uint64_t data_bytes(struct crypt_device *cd, const char *device)
{
	uint64_t off = crypt_get_data_offset(cd) * 512;
	int fd = open(device, O_RDONLY | O_CLOEXEC);
	off_t end = fd >= 0 ? lseek(fd, 0, SEEK_END) : -1;

	if (fd >= 0)
		close(fd);
	return end > 0 && (uint64_t)end > off ? (uint64_t)end - off : 0;
}

/* The re-encryption's own part: progress, resilience, reencrypt keyslot. */
static void state_reencrypt(struct crypt_device *cd, const char *device,
			    const struct crypt_params_reencrypt *p, struct kc_rekey_state *st)
{
#if HAVE_CRYPT_DUMP_JSON
	const char *json = NULL;
#endif

	snprintf(st->phase, sizeof(st->phase), "re-encrypting");
	snprintf(st->resilience, sizeof(st->resilience), "%s", p->resilience ?: "");
	st->total_bytes = data_bytes(cd, device);
#if HAVE_CRYPT_DUMP_JSON
	if (p->direction == CRYPT_REENCRYPT_FORWARD && crypt_dump_json(cd, &json, 0) >= 0 &&
	    json)
		state_from_json(json, st);
#else
	(void)state_from_json;
#endif
	if (st->done_bytes > st->total_bytes)
		st->done_bytes = st->total_bytes;
}

static void state_summary(struct kc_rekey_state *st)
{
	snprintf(st->resume, sizeof(st->resume), "kekcrypt %s --resume",
		 strcmp(st->phase, "encrypting") ? "rekey" : "encrypt");
	if (!strcmp(st->phase, "encrypting"))
		snprintf(st->summary, sizeof(st->summary), "an in-place encryption is in progress");
	else if (!strcmp(st->phase, "re-encrypting") && st->total_bytes)
		snprintf(st->summary, sizeof(st->summary), "a rekey is in progress (%llu/%llu MiB)",
			 (unsigned long long)(st->done_bytes >> 20),
			 (unsigned long long)(st->total_bytes >> 20));
	else if (!strcmp(st->phase, "re-encrypting"))
		snprintf(st->summary, sizeof(st->summary), "a rekey is in progress (re-encrypting)");
	else if (!strcmp(st->phase, "finishing"))
		snprintf(st->summary, sizeof(st->summary), "a rekey is in progress (the data is "
			 "re-encrypted; the old tokens are not yet removed)");
	else
		snprintf(st->summary, sizeof(st->summary), "a rekey is in progress (prepared; no "
			 "data re-encrypted yet)");
}

int rekey_state_read(struct crypt_device *cd, const char *device, struct kc_rekey_state *r_st)
{
	struct kc_rekey_state st = { .size = sizeof(st), .bridge_keyslot = -1,
				     .reencrypt_keyslot = -1 };
	struct crypt_params_reencrypt p = { 0 };
	crypt_reencrypt_info ri = crypt_reencrypt_status(cd, &p);
	bool bound = false;

	if (!rekey_leftovers(cd))
		return 0;
	for (int id = 0; id < crypt_token_max(CRYPT_LUKS2) && id < 32; id++) {
		int slot = luks_token_slot(cd, id);

		if (luks_token_is(cd, id, BRIDGE_TOKEN_TYPE)) {
			st.bridge_keyslot = slot;
		} else if (luks_rekey_marked(cd, id)) {
			st.new_tokens |= 1u << id;
			if (slot >= 0 && slot < 32)
				st.new_keyslots |= 1u << slot;
			bound = bound || (slot >= 0 && luks_slot_bound(cd, slot));
		}
	}
	if (ri != CRYPT_REENCRYPT_NONE)
		state_reencrypt(cd, device, &p, &st);
	else
		snprintf(st.phase, sizeof(st.phase), "%s", bound ? "finishing" : "prepared");
	/* kc_encrypt()'s, interrupted. */
	if (ri != CRYPT_REENCRYPT_NONE && p.mode == CRYPT_REENCRYPT_ENCRYPT)
		snprintf(st.phase, sizeof(st.phase), "encrypting");
	if (!strcmp(st.phase, "finishing"))
		st.done_bytes = st.total_bytes = data_bytes(cd, device);
	state_summary(&st);
	sized_put(r_st, &st, sizeof(st));
	return 1;
}

int kc_rekey_state(struct kc_ctx *ctx, const char *device, struct kc_rekey_state *r_state)
{
	_cleanup_(vol_freep) struct crypt_device *cd = NULL;
	int r;

	if (!ctx || !device || !sized_ok(r_state, SIZED_V1(struct kc_rekey_state, summary)))
		return -EINVAL;
	ctx_detail_clear(ctx);
	r = luks_load_state(ctx, device, &cd);
	if (r < 0)
		return r;
	return rekey_state_read(cd, device, r_state);
}
