/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* p11-kit (RFC 7512 URIs, PKCS#11 module loading), loaded on first use (dlopen.h). */
#ifndef KEKCRYPT_DL_P11KIT_H
#define KEKCRYPT_DL_P11KIT_H

#include <p11-kit/p11-kit.h>
#include <p11-kit/uri.h>

#include "dlopen.h"

#define DL_P11KIT_SYMS(X)                                                                    \
	X(p11_kit_message)                                                                   \
	X(p11_kit_module_finalize)                                                           \
	X(p11_kit_module_for_name)                                                           \
	X(p11_kit_module_initialize)                                                         \
	X(p11_kit_module_load)                                                               \
	X(p11_kit_module_release)                                                            \
	X(p11_kit_modules_finalize_and_release)                                              \
	X(p11_kit_modules_load)                                                              \
	X(p11_kit_modules_load_and_initialize)                                               \
	X(p11_kit_modules_release)                                                           \
	X(p11_kit_space_strlen)                                                              \
	X(p11_kit_strerror)                                                                  \
	X(p11_kit_uri_any_unrecognized)                                                      \
	X(p11_kit_uri_free)                                                                  \
	X(p11_kit_uri_get_attribute)                                                         \
	X(p11_kit_uri_get_attributes)                                                        \
	X(p11_kit_uri_get_module_name)                                                       \
	X(p11_kit_uri_get_module_path)                                                       \
	X(p11_kit_uri_get_pin_source)                                                        \
	X(p11_kit_uri_get_pin_value)                                                         \
	X(p11_kit_uri_get_slot_id)                                                           \
	X(p11_kit_uri_get_token_info)                                                        \
	X(p11_kit_uri_match_module_info)                                                     \
	X(p11_kit_uri_match_slot_info)                                                       \
	X(p11_kit_uri_match_token_info)                                                      \
	X(p11_kit_uri_message)                                                               \
	X(p11_kit_uri_new)                                                                   \
	X(p11_kit_uri_parse)

DL_P11KIT_SYMS(DL_DECLARE)

/* Load libp11-kit.so.0 once. 0, or -ENOTSUP with a detail in CTX (may be NULL). */
int dl_p11kit_load(struct kc_ctx *ctx);
/* Its file, for an initramfs (dl_library_boot_need()). */
int dl_p11kit_boot_need(struct kc_ctx *ctx, struct boot_list *list);

#endif
