/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Local policy: the LUKS2 header is untrusted input (anyone who can write the disk can write
 * it), so a KEK URI read from it may only NAME a key; whether and how kekcrypt uses that key
 * is decided here, from the root-owned configuration and the ownership of local files:
 *
 *  - a remote endpoint is used only when the provider's section of the config names it in
 *    allowed-hosts (HOST, or HOST:PORT): no credential is read, no connection made otherwise;
 *  - a PKCS#11 module named by the URI (module-path) is loaded only when [pkcs11]
 *    allowed-modules names it; a PIN file (pin-source) is read only when [pkcs11]
 *    allowed-pin-files names it; a KEK file only when [file] allowed-paths names it, if that
 *    key is set;
 *  - a file read as a KEK, PIN, credential or the config itself passes trust.c's checks
 *    (owner, mode, the directories above it).
 *
 * Every refusal is -EACCES with a detail that names what was refused and the config line that
 * would allow it. kek_open() calls policy_kek() for every KEK, whatever reads its URI: this is
 * the one place where a header's URI meets the policy.
 */
#include <ctype.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define LIST_SEPARATORS ", \t"

/* ---------------------------------------------------------------------------------------- */
/* What the configuration allows                                                            */

/* true when the space/comma separated LIST holds the word WORD (LEN bytes), compared with
 * CMP (strncmp or strncasecmp). */
static bool list_has(const char *list, const char *word, size_t len,
		     int (*cmp)(const char *, const char *, size_t))
{
	size_t m;

	while (list && *list) {
		list += strspn(list, LIST_SEPARATORS);
		m = strcspn(list, LIST_SEPARATORS);
		if (m && m == len && !cmp(list, word, len))
			return true;
		list += m;
	}
	return false;
}

/* true when LIST names the file PATH: the same string, or the same file once both are
 * resolved ("//etc/x", symbolic links). */
static bool list_has_path(const char *list, const char *path)
{
	char real[PATH_MAX], entry[PATH_MAX], entry_real[PATH_MAX];
	size_t m;

	if (list_has(list, path, strlen(path), strncmp))
		return true;
	if (!realpath(path, real))
		return false;
	while (list && *list) {
		list += strspn(list, LIST_SEPARATORS);
		m = strcspn(list, LIST_SEPARATORS);
		if (m && m < sizeof(entry)) {
			memcpy(entry, list, m);
			entry[m] = '\0';
			if (realpath(entry, entry_real) && !strcmp(entry_real, real))
				return true;
		}
		list += m;
	}
	return false;
}

/* -EACCES: VALUE is not in the lists of KEY; name the line that would allow it. */
static int refuse(struct kc_ctx *ctx, const char *section, const char *key, const char *what,
		  const char *value)
{
	return ctx_fail(ctx, -EACCES, "%s '%s' is not allowed by local policy: [%s] %s in %s "
			"does not name it; to trust it, add the line '%s = %s' to [%s] there",
			what, value, section, key, config_path(ctx->config), key, value, section);
}

/* KEY of SECTION, on any number of lines, names WORD (or the file WORD when PATHS). */
static bool allowed(struct kc_ctx *ctx, const char *section, const char *key, const char *word,
		    bool paths)
{
	const char *list;

	for (size_t i = 0; (list = config_get_nth(ctx->config, section, key, i)); i++)
		if (paths ? list_has_path(list, word) :
			    list_has(list, word, strlen(word), strncasecmp))
			return true;
	return false;
}

static int policy_host(struct kc_ctx *ctx, const struct kek_needs *n)
{
	char hostport[300];

	snprintf(hostport, sizeof(hostport), "%s:%u", n->host, n->port);
	if (allowed(ctx, n->section, "allowed-hosts", n->host, false) ||
	    allowed(ctx, n->section, "allowed-hosts", hostport, false))
		return 0;
	return refuse(ctx, n->section, "allowed-hosts", "endpoint", hostport);
}

int policy_kek(struct kc_ctx *ctx, const struct kek_needs *n)
{
	int r;

	if (n->host[0]) {
		r = policy_host(ctx, n);
		if (r < 0)
			return r;
	}
	if (n->module) {
		if (!allowed(ctx, "pkcs11", "allowed-modules", n->module, true))
			return refuse(ctx, "pkcs11", "allowed-modules", "PKCS#11 module",
				      n->module);
		r = trust_check_path(ctx, n->module, "PKCS#11 module", 0);
		if (r < 0)
			return r;
	}
	if (n->pin_file && !allowed(ctx, "pkcs11", "allowed-pin-files", n->pin_file, true))
		return refuse(ctx, "pkcs11", "allowed-pin-files", "PIN file", n->pin_file);
	/* A key file is the provider's: [file] allowed-paths for file:, and so on. Without
	 * that key: any key file that passes the ownership checks when it is read. */
	if (n->key_file && config_get(ctx->config, n->section, "allowed-paths") &&
	    !allowed(ctx, n->section, "allowed-paths", n->key_file, true))
		return refuse(ctx, n->section, "allowed-paths", "KEK file", n->key_file);
	return 0;
}

/* HOST or HOST:PORT, HOST a DNS name or address, IPv6 in brackets; PORT 1 to 65535. */
static bool host_entry_ok(const char *e, size_t len)
{
	size_t h = e[0] == '[' ? strcspn(e, "]") + 1 : strcspn(e, ":");
	unsigned long port = 0;

	if (h > len || h < (e[0] == '[' ? 3u : 1u))
		return false;
	for (size_t i = e[0] == '[' ? 1 : 0; i < (e[0] == '[' ? h - 1 : h); i++)
		if (!isalnum((unsigned char)e[i]) && !strchr(e[0] == '[' ? ":." : ".-_", e[i]))
			return false;
	if (h == len)
		return true;
	if (e[h] != ':' || h + 1 == len || len - h - 1 > 5)
		return false;
	for (size_t i = h + 1; i < len; i++) {
		if (!isdigit((unsigned char)e[i]))
			return false;
		port = port * 10 + (unsigned long)(e[i] - '0');
	}
	return port >= 1 && port <= 65535;
}

int policy_hosts_check(struct kc_ctx *ctx, const char *section, policy_bad_fn bad,
		       void *usrptr)
{
	const char *list;
	int r = 0;

	for (size_t i = 0; r >= 0 && (list = config_get_nth(ctx->config, section,
							     "allowed-hosts", i)); i++)
		while (r >= 0 && *list) {
			size_t m;

			list += strspn(list, LIST_SEPARATORS);
			m = strcspn(list, LIST_SEPARATORS);
			if (m && !host_entry_ok(list, m))
				r = bad(ctx, section, list, m, usrptr);
			list += m;
		}
	return r;
}

bool policy_names(struct kc_ctx *ctx, const char *section, const char *key, const char *path)
{
	return allowed(ctx, section, key, path, true);
}
