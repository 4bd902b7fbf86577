/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The credentials file: "[provider]" sections of "key = value" lines, '#' comments. It names
 * credential files and endpoints; since it may also hold secrets it must be private. Strict:
 * a section or key the caller's check does not know (a typo) is an error naming FILE:LINE,
 * since a misspelt key would otherwise be a setting silently not applied.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define CONFIG_MAX (64 * 1024)

struct config_entry {
	char *section;
	char *key;
	char *value;
};

struct kc_config {
	struct config_entry *entries;
	size_t n;
	char *path;
};

void config_free(struct kc_config *config)
{
	if (!config)
		return;
	for (size_t i = 0; i < config->n; i++) {
		free(config->entries[i].section);
		free(config->entries[i].key);
		if (config->entries[i].value)
			secret_wipe(config->entries[i].value, strlen(config->entries[i].value));
		free(config->entries[i].value);
	}
	free(config->entries);
	free(config->path);
	free(config);
}

static char *strip(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static int config_add(struct kc_config *config, const char *section, const char *key,
		      const char *value)
{
	struct config_entry *e;

	e = realloc(config->entries, (config->n + 1) * sizeof(*e));
	if (!e)
		return -ENOMEM;
	config->entries = e;
	e = &config->entries[config->n];
	e->section = strdup(section);
	e->key = strdup(key);
	e->value = strdup(value);
	config->n++;
	if (!e->section || !e->key || !e->value)
		return -ENOMEM;
	return 0;
}

/* One line S (stripped, not a comment) into CONFIG under *SECTION (which a header changes). */
static int config_line(struct kc_ctx *ctx, char *s, char *section, size_t section_size,
		       config_check_fn check, struct kc_config *config)
{
	char *eq, *key;
	int r;

	if (*s == '[') {
		char *end = strchr(s, ']');

		if (!end || end[1] || (size_t)(end - s - 1) >= section_size)
			return ctx_fail(ctx, -EINVAL, "bad section header '%s'", s);
		*end = '\0';
		snprintf(section, section_size, "%s", strip(s + 1));
		return check ? check(ctx, section, NULL) : 0;
	}
	eq = strchr(s, '=');
	if (!eq || !section[0])
		return ctx_fail(ctx, -EINVAL, "expected 'key = value' in a [section]");
	*eq = '\0';
	key = strip(s);
	r = check ? check(ctx, section, key) : 0;
	return r < 0 ? r : config_add(config, section, key, strip(eq + 1));
}

static int config_parse(struct kc_ctx *ctx, const char *path, char *text,
			config_check_fn check, struct kc_config *config)
{
	char section[64] = "", *next;
	unsigned lineno = 0;
	int r = 0;

	/* Line by line, counting empty lines too (strtok_r would skip them). */
	for (char *line = text; r >= 0 && line; line = next) {
		char *s;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		s = strip(line);
		if (*s && *s != '#' && *s != ';')
			r = config_line(ctx, s, section, sizeof(section), check, config);
	}
	if (r == -EINVAL)
		ctx_detail_prefix(ctx, "%s:%u", path, lineno);
	return r;
}

int config_load(struct kc_ctx *ctx, const char *path, bool explicit_path, config_check_fn check,
		struct kc_config **r_config)
{
	_cleanup_(kc_secret_freep) struct kc_secret *text = NULL;
	struct kc_config *config;
	int r;

	config = calloc(1, sizeof(*config));
	if (!config)
		return -ENOMEM;
	config->path = strdup(path);
	if (!config->path) {
		config_free(config);
		return -ENOMEM;
	}
	/* Read into secret memory: a config may hold credentials. */
	r = trust_read_secret(ctx, path, "config file", CONFIG_MAX, &text);
	if (r == -ENOENT && !explicit_path) {
		ctx_detail_clear(ctx);
		*r_config = config;
		return 0;
	}
	if (r >= 0)
		r = config_parse(ctx, path, (char *)text->data, check, config);
	if (r < 0) {
		config_free(config);
		return r;
	}
	*r_config = config;
	return 0;
}

const char *config_get(const struct kc_config *config, const char *section, const char *key)
{
	if (!config)
		return NULL;
	for (size_t i = config->n; i-- > 0;)
		if (!strcmp(config->entries[i].section, section) &&
		    !strcmp(config->entries[i].key, key))
			return config->entries[i].value;
	return NULL;
}

const char *config_path(const struct kc_config *config)
{
	return config && config->path ? config->path : "the configuration";
}

const char *config_get_nth(const struct kc_config *config, const char *section, const char *key,
			   size_t n)
{
	for (size_t i = 0; config && i < config->n; i++)
		if (!strcmp(config->entries[i].section, section) &&
		    !strcmp(config->entries[i].key, key) && n-- == 0)
			return config->entries[i].value;
	return NULL;
}

bool config_section_used(const struct kc_config *config, const char *section)
{
	for (size_t i = 0; config && i < config->n; i++)
		if (!strcmp(config->entries[i].section, section))
			return true;
	return false;
}
