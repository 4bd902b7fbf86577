/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Optional libraries loaded with dlopen() on first use (dlopen.h). */
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>

#include "dlopen.h"

static pthread_mutex_t dl_lock = PTHREAD_MUTEX_INITIALIZER;

static void syms_clear(const struct dl_sym *syms)
{
	for (const struct dl_sym *s = syms; s->name; s++)
		*s->ptr = NULL;
}

/* Resolve every symbol of LIB from HANDLE; the name of the first one missing, or NULL. */
static const char *syms_resolve(const struct dl_library *lib, void *handle)
{
	for (const struct dl_sym *s = lib->syms; s->name; s++) {
		*s->ptr = dlsym(handle, s->name);
		if (!*s->ptr) {
			syms_clear(lib->syms);
			return s->name;
		}
	}
	return NULL;
}

static int library_open(struct kc_ctx *ctx, struct dl_library *lib)
{
	const char *missing, *err;
	void *handle;

	/* RTLD_LOCAL: its symbols serve only us; RTLD_NODELETE: our pointers outlive any
	 * dlclose() by whoever else loaded it. */
	handle = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
	if (!handle) {
		err = dlerror();
		return ctx_fail(ctx, -ENOTSUP, "%s, needed for %s, cannot be loaded (%s): install "
				"%s", lib->soname, lib->purpose, err ?: "unknown error",
				lib->package);
	}
	missing = syms_resolve(lib, handle);
	if (missing) {
		dlclose(handle);
		return ctx_fail(ctx, -ENOTSUP, "%s, needed for %s, has no %s (too old?): install "
				"a newer %s", lib->soname, lib->purpose, missing, lib->package);
	}
	log_dbg(ctx, "loaded %s for %s", lib->soname, lib->purpose);
	lib->handle = handle;
	return 0;
}

int dl_library_load(struct kc_ctx *ctx, struct dl_library *lib)
{
	int r = 0;

	pthread_mutex_lock(&dl_lock);
	if (!lib->handle)
		r = library_open(ctx, lib);
	pthread_mutex_unlock(&dl_lock);
	return r;
}

int dl_library_boot_need(struct kc_ctx *ctx, struct dl_library *lib, struct boot_list *list)
{
	struct link_map *map = NULL;

	if (dl_library_load(ctx, lib) < 0)
		return boot_add(list, KC_BOOT_MISSING, lib->soname, "loaded for %s: install %s",
				lib->purpose, lib->package);
	/* The file the dynamic linker found: the right architecture, as kekcrypt itself. */
	if (dlinfo(lib->handle, RTLD_DI_LINKMAP, &map) < 0 || !map || !map->l_name[0])
		return ctx_fail(ctx, -ENOTSUP, "cannot find the file %s was loaded from",
				lib->soname);
	return boot_add(list, KC_BOOT_LIBRARY, map->l_name, "%s, which kekcrypt loads for %s",
			lib->soname, lib->purpose);
}
