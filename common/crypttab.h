/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * /etc/crypttab, read once for every part that needs it: doctor and `kekcrypt boot-needs`
 * (which volumes kekcrypt unlocks at boot, and how), and the token plugin (a volume's
 * token-timeout=). Linked into the CLI and the plugin (libkekcrypt-common.la), not part of
 * libkekcrypt's ABI: crypttab is the tools' business, not the library's.
 */
#ifndef KEKCRYPT_CRYPTTAB_H
#define KEKCRYPT_CRYPTTAB_H

#include <stdbool.h>
#include <stddef.h>

#define CRYPTTAB_PATH "/etc/crypttab"
#define CRYPTTAB_KEYSCRIPT "kekcrypt-keyscript"

/* One line: "NAME SOURCE [KEY [OPTIONS]]" (KEY "-"/"none" or absent: none). */
struct crypttab_entry {
	char *name;
	char *source;
	char *key;	/* NULL when none */
	char *options;	/* "" when none */
	char *line;	/* the line as written, without its newline */
};

struct crypttab {
	struct crypttab_entry *entries;
	size_t n;
};

/* Read PATH (NULL: /etc/crypttab); a missing file is an empty table. -errno otherwise. */
int crypttab_read(const char *path, struct crypttab *r_tab);
void crypttab_clear(struct crypttab *tab);

/* Whether option NAME is set (a flag, or NAME=VALUE). */
bool crypttab_has(const struct crypttab_entry *e, const char *name);
/* The value of option NAME=VALUE in BUF, or NULL when it is not set (the last one wins). */
const char *crypttab_value(const struct crypttab_entry *e, const char *name, char *buf,
			   size_t size);
/* kekcrypt-keyscript's path when the entry's keyscript= is ours (any directory), else NULL;
 * in BUF. */
const char *crypttab_our_keyscript(const struct crypttab_entry *e, char *buf, size_t size);
/* Unlocked in the initramfs by systemd-cryptsetup (dracut): x-initrd.attach, or force. */
bool crypttab_in_initrd(const struct crypttab_entry *e);
/* Whether the entry's SOURCE (UUID=, PARTUUID=, LABEL=, PARTLABEL=, a path) is the volume
 * with LUKS UUID whose device resolves to DEVICE (a realpath, or NULL). */
bool crypttab_matches(const struct crypttab_entry *e, const char *uuid, const char *device);
/* The device path SOURCE names (/dev/disk/by-uuid/... for UUID=...), in BUF. */
const char *crypttab_source_path(const char *source, char *buf, size_t size);
/* "30", "30s", "1min", "500ms", "2m 30s" (systemd.time(7) spans) in whole seconds, rounded
 * up; -EINVAL otherwise. */
int crypttab_timespan(const char *s, unsigned *r_seconds);
/* The token-timeout= of the entry of the volume with UUID at DEVICE (a realpath, or NULL) in
 * crypttab PATH (NULL: /etc/crypttab), in *R_SECONDS, left as it is without one: 1 when the
 * volume has an entry, 0 when it has none (or there is no crypttab), -EINVAL for a bad
 * value, -errno when the file cannot be read. */
int crypttab_token_timeout(const char *path, const char *uuid, const char *device,
			   unsigned *r_seconds);

/* kekcrypt-keyscript's settings, in the key field (third column) of its crypttab entry:
 * comma-separated "timeout=SPAN" (how long to keep retrying the KMS/HSM before the prompt)
 * and "token=N" (only that token), or "none". */
#define CRYPTTAB_KEYSCRIPT_TIMEOUT_S 60
struct crypttab_keyscript {
	unsigned timeout_s;
	int token;	/* -1: each in order */
};
/* Parse KEY (NULL: none) into *R_KS, defaults for what it does not say. A bad or unknown
 * setting is skipped and the first one named in BAD: -EINVAL (*R_KS still set). */
int crypttab_keyscript_key(const char *key, struct crypttab_keyscript *r_ks, char *bad,
			   size_t size);

#endif /* KEKCRYPT_CRYPTTAB_H */
