/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Optional libraries loaded with dlopen() on first use, so that a process that never talks
 * to a KMS over HTTPS or to a PKCS#11 module (the plugin inside cryptsetup, the CLI on a
 * file-KEK volume, the initramfs) does not map libcurl and its network stack, or p11-kit.
 * Their headers are used at build time for types and constants; their functions are called
 * through pointers named sym_<function> that a loader fills in (dl-curl.h, dl-p11kit.h).
 *
 * A library is loaded at most once per process and never unloaded (RTLD_NODELETE): the
 * pointers stay valid for the life of the process. A failed load is not remembered; the next
 * call tries again.
 */
#ifndef KEKCRYPT_DLOPEN_H
#define KEKCRYPT_DLOPEN_H

#include "internal.h"

/* X-macro helpers for a symbol list X(function): the pointer's declaration, its definition
 * and its entry in a struct dl_sym table. */
#define DL_DECLARE(fn) extern __typeof__(fn) *sym_##fn;
#define DL_DEFINE(fn) __typeof__(fn) *sym_##fn;
#define DL_ENTRY(fn) { #fn, (void **)&sym_##fn },

/*
 * An ELF note naming a library we dlopen(), as ldd cannot see it, in the format of
 * https://systemd.io/ELF_DLOPEN_METADATA/ (section .note.dlopen, owner "FDO", a JSON array):
 * `readelf -n`, `systemd-analyze dlopen-metadata` and packaging or initramfs tools that read
 * these notes then know what libkekcrypt may load. VAR names the (unused) object.
 */
#define DL_NOTE_OWNER "FDO"
#define DL_NOTE_TYPE 0x407c0c0aU
#define DL_NOTE(var, json)                                                                   \
	__attribute__((used, section(".note.dlopen"), aligned(4))) static const struct {     \
		uint32_t n_namesz, n_descsz, n_type;                                         \
		char name[sizeof(DL_NOTE_OWNER)];                                            \
		_Alignas(4) char desc[sizeof(json)];                                         \
	} var = {                                                                            \
		.n_namesz = sizeof(DL_NOTE_OWNER),                                           \
		.n_descsz = sizeof(json),                                                    \
		.n_type = DL_NOTE_TYPE,                                                      \
		.name = DL_NOTE_OWNER,                                                       \
		.desc = json,                                                                \
	}

struct dl_sym {
	const char *name;
	void **ptr;
};

struct dl_library {
	const char *soname;		/* given to dlopen(), e.g. "libcurl.so.4" */
	const char *package;		/* the Debian package that ships it, for the error */
	const char *purpose;		/* what needs it, for the error: "HTTPS to a KMS" */
	const struct dl_sym *syms;	/* terminated by { NULL, NULL } */
	void *handle;			/* set once every symbol is resolved */
};

/*
 * Load LIB and resolve all of its symbols (thread-safe; a no-op once done). Returns 0, or
 * -ENOTSUP when the library cannot be loaded or lacks a symbol: then no pointer of LIB is set
 * and the detail of CTX (may be NULL) names the library, why, and the package to install.
 */
int dl_library_load(struct kc_ctx *ctx, struct dl_library *lib);

/* For an initramfs: LIB's file as a KC_BOOT_LIBRARY need (ldd of kekcrypt does not show it),
 * or, when it cannot be loaded, a KC_BOOT_MISSING one naming the package. */
int dl_library_boot_need(struct kc_ctx *ctx, struct dl_library *lib, struct boot_list *list);

#endif
