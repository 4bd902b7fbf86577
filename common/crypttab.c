/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* /etc/crypttab (see crypttab.h). */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "crypttab.h"

#define FIELD_SEPARATORS " \t"

static void entry_free(struct crypttab_entry *e)
{
	free(e->name);
	free(e->source);
	free(e->key);
	free(e->options);
	free(e->line);
	*e = (struct crypttab_entry){ 0 };
}

void crypttab_clear(struct crypttab *tab)
{
	for (size_t i = 0; i < tab->n; i++)
		entry_free(&tab->entries[i]);
	free(tab->entries);
	*tab = (struct crypttab){ 0 };
}

/* The next whitespace-separated field of *P, copied; NULL at the end of the line. */
static char *field(const char **p)
{
	const char *s = *p + strspn(*p, FIELD_SEPARATORS);
	size_t n = strcspn(s, FIELD_SEPARATORS);
	char *f;

	if (!n)
		return NULL;
	f = strndup(s, n);
	*p = s + n;
	return f;
}

/* Parse LINE (no newline) into E (zeroed): 1 for an entry, 0 for a comment, a blank line or
 * a name alone (E may hold something to free then), -ENOMEM. */
static int entry_parse(const char *line, struct crypttab_entry *e)
{
	const char *p = line + strspn(line, FIELD_SEPARATORS);
	char *opts;

	if (!*p || *p == '#')
		return 0;
	e->line = strdup(line);
	e->name = field(&p);
	e->source = field(&p);
	e->key = field(&p);
	opts = field(&p);
	e->options = opts ?: strdup("");
	if (!e->line || !e->name || !e->options)
		return -ENOMEM;
	if (!e->source)
		return 0;	/* a name alone is no entry */
	if (e->key && (!strcmp(e->key, "-") || !strcmp(e->key, "none"))) {
		free(e->key);
		e->key = NULL;
	}
	return 1;
}

int crypttab_read(const char *path, struct crypttab *r_tab)
{
	struct crypttab tab = { 0 };
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	FILE *f;
	int r = 0;

	f = fopen(path ?: CRYPTTAB_PATH, "re");
	if (!f) {
		if (errno != ENOENT)
			return -errno;
		*r_tab = tab;
		return 0;
	}
	while (r >= 0 && (len = getline(&line, &cap, f)) >= 0) {
		struct crypttab_entry e = { 0 }, *grown;

		if (len && line[len - 1] == '\n')
			line[len - 1] = '\0';
		r = entry_parse(line, &e);
		if (r <= 0) {
			entry_free(&e);
			continue;
		}
		grown = realloc(tab.entries, (tab.n + 1) * sizeof(*grown));
		if (!grown) {
			entry_free(&e);
			r = -ENOMEM;
			break;
		}
		tab.entries = grown;
		tab.entries[tab.n++] = e;
		r = 0;
	}
	free(line);
	fclose(f);
	if (r < 0) {
		crypttab_clear(&tab);
		return r;
	}
	*r_tab = tab;
	return 0;
}

/* The option NAME in E's options: its text and length (with "=VALUE"), the last one. */
static const char *option_find(const struct crypttab_entry *e, const char *name, size_t *r_len)
{
	size_t n = strlen(name), m;
	const char *found = NULL;

	for (const char *p = e->options; *p; p += m + (p[m] == ',')) {
		m = strcspn(p, ",");
		if (m >= n && !strncmp(p, name, n) && (m == n || p[n] == '=')) {
			found = p;
			*r_len = m;
		}
	}
	return found;
}

bool crypttab_has(const struct crypttab_entry *e, const char *name)
{
	size_t len;

	return option_find(e, name, &len) != NULL;
}

const char *crypttab_value(const struct crypttab_entry *e, const char *name, char *buf,
			   size_t size)
{
	size_t len, n = strlen(name);
	const char *o = option_find(e, name, &len);

	if (!o || len == n || len - n - 1 >= size)
		return NULL;
	memcpy(buf, o + n + 1, len - n - 1);
	buf[len - n - 1] = '\0';
	return buf;
}

const char *crypttab_our_keyscript(const struct crypttab_entry *e, char *buf, size_t size)
{
	const char *ks = crypttab_value(e, "keyscript", buf, size);
	const char *base = ks ? strrchr(ks, '/') : NULL;

	return base && !strcmp(base + 1, CRYPTTAB_KEYSCRIPT) ? ks : NULL;
}

bool crypttab_in_initrd(const struct crypttab_entry *e)
{
	return crypttab_has(e, "x-initrd.attach") || crypttab_has(e, "force");
}

const char *crypttab_source_path(const char *source, char *buf, size_t size)
{
	static const struct { const char *tag, *dir; } tags[] = {
		{ "UUID=", "/dev/disk/by-uuid/" }, { "PARTUUID=", "/dev/disk/by-partuuid/" },
		{ "LABEL=", "/dev/disk/by-label/" }, { "PARTLABEL=", "/dev/disk/by-partlabel/" },
	};

	for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++)
		if (!strncasecmp(source, tags[i].tag, strlen(tags[i].tag))) {
			snprintf(buf, size, "%s%s", tags[i].dir, source + strlen(tags[i].tag));
			return buf;
		}
	snprintf(buf, size, "%s", source);
	return buf;
}

bool crypttab_matches(const struct crypttab_entry *e, const char *uuid, const char *device)
{
	char path[PATH_MAX], *real;
	bool same;

	if (!strncasecmp(e->source, "UUID=", 5))
		return uuid && !strcasecmp(e->source + 5, uuid);
	crypttab_source_path(e->source, path, sizeof(path));
	if (!device || path[0] != '/')
		return false;
	real = realpath(path, NULL);
	same = real && !strcmp(real, device);
	free(real);
	return same;
}

int crypttab_timespan(const char *s, unsigned *r_seconds)
{
	static const struct { const char *unit; unsigned ms; } units[] = {
		{ "ms", 1 }, { "msec", 1 }, { "s", 1000 }, { "sec", 1000 }, { "second", 1000 },
		{ "seconds", 1000 }, { "m", 60000 }, { "min", 60000 }, { "minute", 60000 },
		{ "minutes", 60000 }, { "h", 3600000 }, { "hr", 3600000 }, { "hour", 3600000 },
		{ "hours", 3600000 },
	};
	uint64_t total_ms = 0;
	bool any = false;

	while (*s) {
		char unit[8] = "";
		unsigned ms = 1000;
		size_t n = 0, i;
		unsigned long v;
		char *end;

		while (isspace((unsigned char)*s))
			s++;
		if (!*s)
			break;
		if (!isdigit((unsigned char)*s))
			return -EINVAL;
		errno = 0;
		v = strtoul(s, &end, 10);
		if (errno || v > 100000000)
			return -EINVAL;
		for (s = end; isalpha((unsigned char)*s); s++) {
			if (n + 1 >= sizeof(unit))
				return -EINVAL;
			unit[n++] = *s;
		}
		if (n) {
			for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
				if (!strcmp(unit, units[i].unit))
					break;
			if (i == sizeof(units) / sizeof(units[0]))
				return -EINVAL;
			ms = units[i].ms;
		}
		total_ms += (uint64_t)v * ms;
		if (total_ms > (uint64_t)UINT_MAX * 1000)
			return -EINVAL;
		any = true;
	}
	if (!any)
		return -EINVAL;
	*r_seconds = (unsigned)((total_ms + 999) / 1000);
	return 0;
}

int crypttab_token_timeout(const char *path, const char *uuid, const char *device,
			   unsigned *r_seconds)
{
	struct crypttab tab;
	char value[64];
	int r;

	r = crypttab_read(path, &tab);
	if (r < 0)
		return r;
	for (size_t i = 0; i < tab.n && r == 0; i++) {
		if (!crypttab_matches(&tab.entries[i], uuid, device))
			continue;
		r = 1;	/* this volume's entry; the default applies unless it says otherwise */
		if (crypttab_has(&tab.entries[i], "token-timeout") &&
		    (!crypttab_value(&tab.entries[i], "token-timeout", value, sizeof(value)) ||
		     crypttab_timespan(value, r_seconds) < 0))
			r = -EINVAL;
	}
	crypttab_clear(&tab);
	return r;
}

/* One "NAME=VALUE" of the key field; -EINVAL (BAD says why) for an unknown or bad one. */
static int keyscript_setting(const char *kv, size_t len, struct crypttab_keyscript *ks,
			     char *bad, size_t size)
{
	char buf[64], *end;
	long v;

	if (!len || (len == 4 && !strncmp(kv, "none", 4)))
		return 0;
	if (len >= sizeof(buf)) {
		snprintf(bad, size, "setting '%.*s...' is too long", 20, kv);
		return -EINVAL;
	}
	memcpy(buf, kv, len);
	buf[len] = '\0';
	if (!strncmp(buf, "timeout=", 8)) {
		if (crypttab_timespan(buf + 8, &ks->timeout_s) == 0)
			return 0;
		ks->timeout_s = CRYPTTAB_KEYSCRIPT_TIMEOUT_S;
		snprintf(bad, size, "bad '%s' (a time span such as 60 or 2min), using %u s", buf,
			 ks->timeout_s);
		return -EINVAL;
	}
	if (!strncmp(buf, "token=", 6)) {
		errno = 0;
		v = strtol(buf + 6, &end, 10);
		if (!errno && end != buf + 6 && !*end && v >= 0 && v < 32) {
			ks->token = (int)v;
			return 0;
		}
		snprintf(bad, size, "bad '%s' (a token id from 0 to 31)", buf);
		return -EINVAL;
	}
	snprintf(bad, size, "unknown setting '%s' ignored", buf);
	return -EINVAL;
}

int crypttab_keyscript_key(const char *key, struct crypttab_keyscript *r_ks, char *bad,
			   size_t size)
{
	struct crypttab_keyscript ks = { .timeout_s = CRYPTTAB_KEYSCRIPT_TIMEOUT_S, .token = -1 };
	char later[128];
	int r = 0;

	bad[0] = '\0';
	for (const char *p = key ?: ""; *p;) {
		size_t len = strcspn(p, ",");

		/* The first problem is the one named; the rest of the field still applies. */
		if (keyscript_setting(p, len, &ks, r ? later : bad, r ? sizeof(later) : size) < 0)
			r = -EINVAL;
		p += len + (p[len] == ',');
	}
	*r_ks = ks;
	return r;
}
