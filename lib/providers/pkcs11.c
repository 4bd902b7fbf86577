/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The "pkcs11" KEK provider: the KEK is a key in a PKCS#11 token (an HSM, a smart card,
 * SoftHSM2), named by an RFC 7512 URI such as
 *
 *   pkcs11:token=kc;object=kek-aes;type=secret-key?module-path=/usr/lib/softhsm/libsofthsm2.so
 *          &pin-source=file:/etc/kekcrypt/pin
 *
 * An AES KEK wraps the DEK with CKM_AES_KEY_WRAP_PAD (RFC 5649, "A256KWP"), or with
 * CKM_AES_KEY_WRAP (RFC 3394, "A256KW") when the module lacks the padded variant. An RSA KEK
 * encrypts it with CKM_RSA_PKCS_OAEP, SHA-256 ("RSA-OAEP-256") or, when the module only
 * implements OAEP with SHA-1 (SoftHSM2 2.6), SHA-1 ("RSA-OAEP").
 *
 * Nothing is loaded in init() but p11-kit itself (dl-p11kit.h: a process that meets no pkcs11:
 * URI never maps it): wrap() and unwrap() load the module, log in, do their one operation and
 * tear everything down again, so no session or PIN outlives a call.
 */
#include <stdio.h>
#include <string.h>

#include "dl-p11kit.h"
#include "internal.h"

/* A DEK is an XTS key pair or similar: anything outside this range is not a volume key. */
#define DEK_MIN 16
#define DEK_MAX 128
/* PKCS#11 tokens take PINs of at most a few dozen bytes; this is a generous cap. */
#define PIN_MAX 256
/* Room for an operation's description in messages, PIN file path included. */
#define OP_MAX 1024

#define ALG_A256KWP "A256KWP"
#define ALG_A256KW "A256KW"
#define ALG_RSA_OAEP_256 "RSA-OAEP-256"
#define ALG_RSA_OAEP "RSA-OAEP"

struct wrap_alg {
	const char *name;
	CK_MECHANISM_TYPE mech;
	bool sha256;		/* OAEP hash and MGF1 hash: SHA-256, else SHA-1 */
};

static const struct wrap_alg wrap_algs[] = {
	{ ALG_A256KWP, CKM_AES_KEY_WRAP_PAD, false },
	{ ALG_A256KW, CKM_AES_KEY_WRAP, false },
	{ ALG_RSA_OAEP_256, CKM_RSA_PKCS_OAEP, true },
	{ ALG_RSA_OAEP, CKM_RSA_PKCS_OAEP, false },
};

struct p11_state {
	P11KitUri *uri;
	char *pin_path;		/* from pin-source, or NULL */
	char what[224];		/* "PKCS#11 key 'LABEL' on token 'TOKEN'", for messages */
};

/* One use of the token, opened and closed within a single wrap() or unwrap(). */
struct p11_conn {
	CK_FUNCTION_LIST **modules;	/* p11-kit's configured modules (no module-path) */
	bool modules_initialized;	/* all of them, when the URI has no module-name */
	CK_FUNCTION_LIST *one;		/* the module-path or module-name module, initialised */
	CK_FUNCTION_LIST *m;		/* the module holding the token */
	CK_SLOT_ID slot;
	CK_TOKEN_INFO tinfo;
	CK_SESSION_HANDLE session;
	bool have_session;
	bool logged_in;			/* we logged in, so we log out */
	bool authenticated;		/* user functions allowed (ours or a previous login) */
};

/* ---------------------------------------------------------------------------------------- */
/* Errors                                                                                   */

#define CKR_ENTRY(x) { x, #x }
static const struct {
	CK_RV rv;
	const char *name;
} ckr_names[] = {
	CKR_ENTRY(CKR_OK), CKR_ENTRY(CKR_HOST_MEMORY), CKR_ENTRY(CKR_SLOT_ID_INVALID),
	CKR_ENTRY(CKR_GENERAL_ERROR), CKR_ENTRY(CKR_FUNCTION_FAILED),
	CKR_ENTRY(CKR_ARGUMENTS_BAD), CKR_ENTRY(CKR_ACTION_PROHIBITED),
	CKR_ENTRY(CKR_ATTRIBUTE_SENSITIVE), CKR_ENTRY(CKR_ATTRIBUTE_TYPE_INVALID),
	CKR_ENTRY(CKR_ATTRIBUTE_VALUE_INVALID), CKR_ENTRY(CKR_DATA_INVALID),
	CKR_ENTRY(CKR_DATA_LEN_RANGE), CKR_ENTRY(CKR_DEVICE_ERROR), CKR_ENTRY(CKR_DEVICE_MEMORY),
	CKR_ENTRY(CKR_DEVICE_REMOVED), CKR_ENTRY(CKR_ENCRYPTED_DATA_INVALID),
	CKR_ENTRY(CKR_ENCRYPTED_DATA_LEN_RANGE), CKR_ENTRY(CKR_FUNCTION_CANCELED),
	CKR_ENTRY(CKR_FUNCTION_NOT_SUPPORTED), CKR_ENTRY(CKR_KEY_HANDLE_INVALID),
	CKR_ENTRY(CKR_KEY_SIZE_RANGE), CKR_ENTRY(CKR_KEY_TYPE_INCONSISTENT),
	CKR_ENTRY(CKR_KEY_FUNCTION_NOT_PERMITTED), CKR_ENTRY(CKR_KEY_NOT_WRAPPABLE),
	CKR_ENTRY(CKR_KEY_UNEXTRACTABLE), CKR_ENTRY(CKR_MECHANISM_INVALID),
	CKR_ENTRY(CKR_MECHANISM_PARAM_INVALID), CKR_ENTRY(CKR_OBJECT_HANDLE_INVALID),
	CKR_ENTRY(CKR_OPERATION_ACTIVE), CKR_ENTRY(CKR_PIN_INCORRECT), CKR_ENTRY(CKR_PIN_INVALID),
	CKR_ENTRY(CKR_PIN_LEN_RANGE), CKR_ENTRY(CKR_PIN_EXPIRED), CKR_ENTRY(CKR_PIN_LOCKED),
	CKR_ENTRY(CKR_SESSION_CLOSED), CKR_ENTRY(CKR_SESSION_HANDLE_INVALID),
	CKR_ENTRY(CKR_SESSION_READ_ONLY), CKR_ENTRY(CKR_TEMPLATE_INCOMPLETE),
	CKR_ENTRY(CKR_TEMPLATE_INCONSISTENT), CKR_ENTRY(CKR_TOKEN_NOT_PRESENT),
	CKR_ENTRY(CKR_TOKEN_NOT_RECOGNIZED), CKR_ENTRY(CKR_UNWRAPPING_KEY_HANDLE_INVALID),
	CKR_ENTRY(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT), CKR_ENTRY(CKR_USER_ALREADY_LOGGED_IN),
	CKR_ENTRY(CKR_USER_NOT_LOGGED_IN), CKR_ENTRY(CKR_USER_PIN_NOT_INITIALIZED),
	CKR_ENTRY(CKR_USER_TYPE_INVALID), CKR_ENTRY(CKR_WRAPPED_KEY_INVALID),
	CKR_ENTRY(CKR_WRAPPED_KEY_LEN_RANGE), CKR_ENTRY(CKR_WRAPPING_KEY_HANDLE_INVALID),
	CKR_ENTRY(CKR_WRAPPING_KEY_TYPE_INCONSISTENT), CKR_ENTRY(CKR_BUFFER_TOO_SMALL),
	CKR_ENTRY(CKR_CRYPTOKI_NOT_INITIALIZED), CKR_ENTRY(CKR_FUNCTION_REJECTED),
};

static const char *ckr_name(CK_RV rv)
{
	for (size_t i = 0; i < ARRAY_SIZE(ckr_names); i++)
		if (ckr_names[i].rv == rv)
			return ckr_names[i].name;
	return "CKR_(unknown)";
}

/*
 * UNWRAPPING: the failing call is the one that checks the wrapped key. There a generic
 * failure means the integrity check failed: SoftHSM2 reports a wrong KEK as CKR_GENERAL_ERROR.
 */
static int ckr_errno(CK_RV rv, bool unwrapping)
{
	switch (rv) {
	case CKR_PIN_INCORRECT: case CKR_PIN_INVALID: case CKR_PIN_LEN_RANGE:
	case CKR_PIN_EXPIRED: case CKR_PIN_LOCKED:
		return -EKEYREJECTED;
	case CKR_USER_NOT_LOGGED_IN: case CKR_USER_PIN_NOT_INITIALIZED:
		return -ENOANO;
	case CKR_DEVICE_ERROR: case CKR_DEVICE_MEMORY: case CKR_DEVICE_REMOVED:
	case CKR_TOKEN_NOT_PRESENT: case CKR_TOKEN_NOT_RECOGNIZED: case CKR_SESSION_CLOSED:
	case CKR_FUNCTION_CANCELED:
		return -EAGAIN;
	case CKR_KEY_FUNCTION_NOT_PERMITTED: case CKR_KEY_NOT_WRAPPABLE:
	case CKR_KEY_UNEXTRACTABLE: case CKR_ATTRIBUTE_SENSITIVE: case CKR_ACTION_PROHIBITED:
	case CKR_FUNCTION_REJECTED: case CKR_MECHANISM_INVALID: case CKR_MECHANISM_PARAM_INVALID:
	case CKR_KEY_TYPE_INCONSISTENT: case CKR_WRAPPING_KEY_TYPE_INCONSISTENT:
	case CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT: case CKR_TEMPLATE_INCONSISTENT:
	case CKR_FUNCTION_NOT_SUPPORTED:
		return -EPERM;
	case CKR_WRAPPED_KEY_INVALID: case CKR_WRAPPED_KEY_LEN_RANGE:
	case CKR_ENCRYPTED_DATA_INVALID: case CKR_ENCRYPTED_DATA_LEN_RANGE:
		return -EBADMSG;
	case CKR_GENERAL_ERROR: case CKR_FUNCTION_FAILED:
		return unwrapping ? -EBADMSG : -ENOENT;
	case CKR_HOST_MEMORY:
		return -ENOMEM;
	default:
		/* As libcryptsetup does for unexpected token errors: not usable, see detail. */
		return -ENOENT;
	}
}

static const char *errno_hint(int r)
{
	switch (r) {
	case -EKEYREJECTED: return " (wrong PIN?)";
	case -ENOANO: return " (a PIN is required: add pin-source=file:PATH to the URI)";
	case -EAGAIN: return " (HSM unavailable; try again later)";
	case -EPERM: return " (refused by the key's attributes or the HSM's policy)";
	case -EBADMSG: return " (wrong KEK or corrupt wrapped key?)";
	default: return "";
	}
}

/* Map a failed PKCS#11 call OP to an errno; the CKR_ name goes to the debug log only. */
static int p11_fail(struct kc_ctx *ctx, const struct p11_state *st, CK_RV rv, bool unwrapping,
		    const char *op)
{
	int r = ckr_errno(rv, unwrapping);

	log_dbg(ctx, "%s: %s: %s (0x%08lx)", st->what, op, ckr_name(rv), (unsigned long)rv);
	return ctx_fail(ctx, r, "%s: %s: %s%s", st->what, op, sym_p11_kit_strerror(rv),
			errno_hint(r));
}

/* ---------------------------------------------------------------------------------------- */
/* URI                                                                                      */

/*
 * Labels come from the URI in the LUKS2 header, which anyone holding the disk can write:
 * quote them and keep terminal control characters out of messages.
 */
static void text_quote(char *out, size_t size, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	size_t o = 0;

	if (size < 3)
		return;
	out[o++] = '\'';
	for (size_t i = 0; i < len && o < size - 2; i++)
		out[o++] = (p[i] >= 0x20 && p[i] < 0x7f) ? (char)p[i] : '?';
	out[o++] = '\'';
	out[o] = '\0';
}

static void state_describe(struct p11_state *st)
{
	CK_ATTRIBUTE *label = sym_p11_kit_uri_get_attribute(st->uri, CKA_LABEL);
	CK_ATTRIBUTE *id = sym_p11_kit_uri_get_attribute(st->uri, CKA_ID);
	CK_TOKEN_INFO *ti = sym_p11_kit_uri_get_token_info(st->uri);
	char obj[96] = "(any)", tok[64] = "";

	if (label) {
		text_quote(obj, sizeof(obj), label->pValue, label->ulValueLen);
	} else if (id) {
		const unsigned char *p = id->pValue;
		size_t o = (size_t)snprintf(obj, sizeof(obj), "with id ");

		for (size_t i = 0; i < id->ulValueLen && o + 3 < sizeof(obj); i++, o += 2)
			snprintf(obj + o, sizeof(obj) - o, "%02x", p[i]);
	}
	if (ti && ti->label[0])
		text_quote(tok, sizeof(tok), ti->label,
			   sym_p11_kit_space_strlen(ti->label, sizeof(ti->label)));
	snprintf(st->what, sizeof(st->what), "PKCS#11 key %s%s%s", obj, tok[0] ? " on token " : "",
		 tok);
}

/* The class named by type=, or (CK_OBJECT_CLASS)-1 when the URI has none. */
static CK_OBJECT_CLASS uri_class(struct p11_state *st)
{
	CK_ATTRIBUTE *a = sym_p11_kit_uri_get_attribute(st->uri, CKA_CLASS);
	CK_OBJECT_CLASS cls;

	if (!a || a->ulValueLen != sizeof(cls))
		return (CK_OBJECT_CLASS)-1;
	memcpy(&cls, a->pValue, sizeof(cls));
	return cls;
}

/* pin-source is "file:/PATH", "file:///PATH" or "/PATH"; commands ("|prog") are refused. */
static int pin_source_parse(struct kc_ctx *ctx, struct p11_state *st)
{
	const char *src = sym_p11_kit_uri_get_pin_source(st->uri), *path = src;

	if (!src)
		return 0;
	if (!strncmp(src, "file://", 7))
		path = src + 7;
	else if (!strncmp(src, "file:", 5))
		path = src + 5;
	if (path[0] != '/')
		return ctx_fail(ctx, -EINVAL,
				"%s: pin-source must be file:/ABSOLUTE/PATH of a PIN file", st->what);
	st->pin_path = strdup(path);
	return st->pin_path ? 0 : -ENOMEM;
}

static int state_parse(struct kc_ctx *ctx, struct p11_state *st, const char *uri)
{
	CK_OBJECT_CLASS cls;
	int pr;

	st->uri = sym_p11_kit_uri_new();
	if (!st->uri)
		return -ENOMEM;
	/* Never echo URI: a refused one may hold a pin-value. */
	pr = sym_p11_kit_uri_parse(uri, P11_KIT_URI_FOR_ANY, st->uri);
	if (pr == P11_KIT_URI_NO_MEMORY)
		return -ENOMEM;
	if (pr != P11_KIT_URI_OK)
		return ctx_fail(ctx, -EINVAL, "malformed PKCS#11 URI: %s",
				sym_p11_kit_uri_message(pr) ?: "parse error");
	state_describe(st);
	if (sym_p11_kit_uri_get_pin_value(st->uri))
		return ctx_fail(ctx, -EINVAL,
				"%s: pin-value refused: secrets never go in a URI; "
				"use pin-source=file:PATH", st->what);
	/* A misspelt attribute would otherwise widen the search to any key. */
	if (sym_p11_kit_uri_any_unrecognized(st->uri))
		return ctx_fail(ctx, -EINVAL, "%s: the URI has an unknown attribute or type",
				st->what);
	cls = uri_class(st);
	if (cls != (CK_OBJECT_CLASS)-1 && cls != CKO_SECRET_KEY && cls != CKO_PUBLIC_KEY &&
	    cls != CKO_PRIVATE_KEY)
		return ctx_fail(ctx, -EINVAL,
				"%s: type must be secret-key, public or private", st->what);
	return pin_source_parse(ctx, st);
}

/* ---------------------------------------------------------------------------------------- */
/* Module, token, session                                                                   */

static void conn_close(struct p11_conn *c)
{
	if (c->logged_in)
		(void)c->m->C_Logout(c->session);
	if (c->have_session)
		(void)c->m->C_CloseSession(c->session);
	if (c->one)
		(void)sym_p11_kit_module_finalize(c->one);
	if (c->modules && c->modules_initialized)
		sym_p11_kit_modules_finalize_and_release(c->modules);
	else if (c->modules)
		sym_p11_kit_modules_release(c->modules);
	else if (c->one)
		sym_p11_kit_module_release(c->one);
	*c = (struct p11_conn){ 0 };
}

static int module_init(struct kc_ctx *ctx, const struct p11_state *st, CK_FUNCTION_LIST *m,
		       const char *name)
{
	CK_RV rv = sym_p11_kit_module_initialize(m);

	if (rv == CKR_OK)
		return 0;
	log_dbg(ctx, "C_Initialize of '%s': %s", name, ckr_name(rv));
	return ctx_fail(ctx, ckr_errno(rv, false) == -EAGAIN ? -EAGAIN : -ENOENT,
			"%s: cannot initialise PKCS#11 module '%s': %s", st->what, name,
			sym_p11_kit_strerror(rv));
}

/*
 * Without module-path: p11-kit's configured modules. With module-name, only that one is
 * initialised, so that the others (smart card stacks, trust store) are left alone.
 */
static int conn_load_configured(struct kc_ctx *ctx, const struct p11_state *st,
				struct p11_conn *c)
{
	const char *name = sym_p11_kit_uri_get_module_name(st->uri);
	int r;

	if (!name) {
		c->modules = sym_p11_kit_modules_load_and_initialize(0);
		c->modules_initialized = true;
	} else {
		c->modules = sym_p11_kit_modules_load(NULL, 0);
	}
	if (!c->modules)
		return ctx_fail(ctx, -ENOENT, "%s: cannot load the p11-kit modules: %s",
				st->what, sym_p11_kit_message() ?: "unknown error");
	if (!name)
		return 0;
	c->one = sym_p11_kit_module_for_name(c->modules, name);
	if (!c->one)
		return ctx_fail(ctx, -ENOENT, "%s: no p11-kit module named '%s' is configured",
				st->what, name);
	r = module_init(ctx, st, c->one, name);
	if (r < 0)
		c->one = NULL;
	return r;
}

static int conn_load(struct kc_ctx *ctx, const struct p11_state *st, struct p11_conn *c)
{
	const char *path = sym_p11_kit_uri_get_module_path(st->uri);
	int r;

	if (!path)
		return conn_load_configured(ctx, st, c);
	c->one = sym_p11_kit_module_load(path, 0);
	if (!c->one)
		return ctx_fail(ctx, -ENOENT, "%s: cannot load PKCS#11 module '%s': %s", st->what,
				path, sym_p11_kit_message() ?: "unknown error");
	r = module_init(ctx, st, c->one, path);
	if (r < 0) {
		sym_p11_kit_module_release(c->one);
		c->one = NULL;
	}
	return r;
}

static bool slot_matches(const struct p11_state *st, CK_FUNCTION_LIST *m, CK_SLOT_ID slot,
			 CK_TOKEN_INFO *r_tinfo)
{
	CK_SLOT_ID want = sym_p11_kit_uri_get_slot_id(st->uri);
	CK_SLOT_INFO sinfo;
	CK_TOKEN_INFO tinfo;

	if (want != (CK_SLOT_ID)-1 && want != slot)
		return false;
	if (m->C_GetSlotInfo(slot, &sinfo) != CKR_OK ||
	    !sym_p11_kit_uri_match_slot_info(st->uri, &sinfo))
		return false;
	if (m->C_GetTokenInfo(slot, &tinfo) != CKR_OK ||
	    !sym_p11_kit_uri_match_token_info(st->uri, &tinfo))
		return false;
	*r_tinfo = tinfo;
	return true;
}

/* 1 and fills C when module M holds a matching token, 0 when not, or a negative errno. */
static int module_find_token(struct kc_ctx *ctx, const struct p11_state *st,
			     CK_FUNCTION_LIST *m, struct p11_conn *c)
{
	_cleanup_(freep) CK_SLOT_ID *slots = NULL;
	CK_ULONG n = 0;
	CK_INFO info;
	CK_RV rv;

	if (m->C_GetInfo(&info) == CKR_OK && !sym_p11_kit_uri_match_module_info(st->uri, &info))
		return 0;
	rv = m->C_GetSlotList(CK_TRUE, NULL, &n);
	if (rv != CKR_OK)
		return p11_fail(ctx, st, rv, false, "listing the slots");
	if (n == 0)
		return 0;
	slots = calloc(n, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	rv = m->C_GetSlotList(CK_TRUE, slots, &n);
	if (rv != CKR_OK)
		return p11_fail(ctx, st, rv, false, "listing the slots");
	for (CK_ULONG i = 0; i < n; i++) {
		if (slot_matches(st, m, slots[i], &c->tinfo)) {
			c->m = m;
			c->slot = slots[i];
			return 1;
		}
	}
	return 0;
}

/* The first token that matches the URI: with module-path in that module, else in any. */
static int conn_find_token(struct kc_ctx *ctx, const struct p11_state *st, struct p11_conn *c)
{
	CK_FUNCTION_LIST *one[2] = { c->one, NULL };
	CK_FUNCTION_LIST **mods = c->one ? one : c->modules;
	int r;

	for (size_t i = 0; mods[i]; i++) {
		r = module_find_token(ctx, st, mods[i], c);
		if (r > 0)
			return 0;
		if (r < 0 && c->one)
			return r;
		/* One broken module among the configured ones must not hide the others. */
		if (r < 0)
			log_dbg(ctx, "%s, ignoring.", kc_error_detail(ctx));
	}
	return ctx_fail(ctx, -ENOENT, "%s: no PKCS#11 token matches the URI%s", st->what,
			mods[0] ? "" : " (no PKCS#11 module configured; add module-path=)");
}

static int pin_read(struct kc_ctx *ctx, const struct p11_state *st, struct kc_secret **r_pin)
{
	struct kc_secret *pin = NULL;
	int r;

	r = trust_read_secret(ctx, st->pin_path, "PIN file", PIN_MAX, &pin);
	if (r < 0) {
		ctx_detail_prefix(ctx, "%s", st->what);
		return r == -EFBIG ? -EINVAL : r;
	}
	while (pin->len && (pin->data[pin->len - 1] == '\n' || pin->data[pin->len - 1] == '\r'))
		pin->len--;
	*r_pin = pin;
	return 0;
}

static int conn_login(struct kc_ctx *ctx, const struct p11_state *st, struct p11_conn *c)
{
	_cleanup_(kc_secret_freep) struct kc_secret *pin = NULL;
	char op[OP_MAX];
	CK_RV rv;
	int r;

	if (!st->pin_path) {
		if (c->tinfo.flags & CKF_LOGIN_REQUIRED)
			return ctx_fail(ctx, -ENOANO, "%s: the token requires a PIN; add "
					"pin-source=file:PATH to the URI", st->what);
		return 0;
	}
	r = pin_read(ctx, st, &pin);
	if (r < 0)
		return r;
	rv = c->m->C_Login(c->session, CKU_USER, pin->data, pin->len);
	if (rv == CKR_USER_ALREADY_LOGGED_IN) {
		c->authenticated = true;
		return 0;
	}
	if (rv != CKR_OK) {
		snprintf(op, sizeof(op), "logging in with the PIN from '%s'", st->pin_path);
		return p11_fail(ctx, st, rv, false, op);
	}
	c->logged_in = c->authenticated = true;
	return 0;
}

static int conn_open(struct kc_ctx *ctx, const struct p11_state *st, struct p11_conn *c)
{
	CK_RV rv;
	int r;

	r = conn_load(ctx, st, c);
	if (r < 0)
		return r;
	r = conn_find_token(ctx, st, c);
	if (r < 0)
		return r;
	/* Read-only is enough: we create session objects only, never token objects. */
	rv = c->m->C_OpenSession(c->slot, CKF_SERIAL_SESSION, NULL, NULL, &c->session);
	if (rv != CKR_OK)
		return p11_fail(ctx, st, rv, false, "opening a session");
	c->have_session = true;
	return conn_login(ctx, st, c);
}

/* ---------------------------------------------------------------------------------------- */
/* Keys and objects                                                                          */

/* The URI's object attributes (label, id) with CLASS and KEY_TYPE instead of its type=. */
static CK_ULONG template_build(struct p11_state *st, CK_OBJECT_CLASS *cls, CK_KEY_TYPE *type,
			       CK_ATTRIBUTE *tmpl, CK_ULONG max)
{
	CK_ULONG n_uri = 0, n = 0;
	CK_ATTRIBUTE *attrs = sym_p11_kit_uri_get_attributes(st->uri, &n_uri);

	for (CK_ULONG i = 0; i < n_uri && n < max - 2; i++)
		if (attrs[i].type != CKA_CLASS)
			tmpl[n++] = attrs[i];
	tmpl[n++] = (CK_ATTRIBUTE){ CKA_CLASS, cls, sizeof(*cls) };
	tmpl[n++] = (CK_ATTRIBUTE){ CKA_KEY_TYPE, type, sizeof(*type) };
	return n;
}

/* 1 and the handle of the one matching key, 0 when there is none, or a negative errno. */
static int key_find(struct kc_ctx *ctx, struct p11_state *st, struct p11_conn *c,
		    CK_OBJECT_CLASS cls, CK_KEY_TYPE type, CK_OBJECT_HANDLE *r_key)
{
	CK_OBJECT_HANDLE found[2];
	CK_ATTRIBUTE tmpl[8];
	CK_ULONG n, nfound = 0;
	CK_RV rv;

	n = template_build(st, &cls, &type, tmpl, ARRAY_SIZE(tmpl));
	rv = c->m->C_FindObjectsInit(c->session, tmpl, n);
	if (rv != CKR_OK)
		return p11_fail(ctx, st, rv, false, "searching the key");
	rv = c->m->C_FindObjects(c->session, found, ARRAY_SIZE(found), &nfound);
	(void)c->m->C_FindObjectsFinal(c->session);
	if (rv != CKR_OK)
		return p11_fail(ctx, st, rv, false, "searching the key");
	if (nfound > 1)
		return ctx_fail(ctx, -EINVAL, "%s: the URI matches several keys; add id= or "
				"type= to it", st->what);
	if (nfound == 0)
		return 0;
	*r_key = found[0];
	return 1;
}

/* Wrapping takes an AES secret key, else the public half of an RSA pair. */
static int wrap_key_find(struct kc_ctx *ctx, struct p11_state *st, struct p11_conn *c,
			 CK_OBJECT_HANDLE *r_key, bool *r_rsa)
{
	CK_OBJECT_CLASS want = uri_class(st);
	int r;

	if (want != CKO_PUBLIC_KEY && want != CKO_PRIVATE_KEY) {
		r = key_find(ctx, st, c, CKO_SECRET_KEY, CKK_AES, r_key);
		if (r > 0)
			*r_rsa = false;
		if (r != 0)
			return r;
	}
	if (want != CKO_SECRET_KEY) {
		r = key_find(ctx, st, c, CKO_PUBLIC_KEY, CKK_RSA, r_key);
		if (r > 0)
			*r_rsa = true;
		if (r != 0)
			return r;
	}
	return ctx_fail(ctx, -ENOENT, "%s: no such AES secret key or RSA public key on the token",
			st->what);
}

static void object_destroy(struct p11_conn *c, CK_OBJECT_HANDLE obj)
{
	if (obj != CK_INVALID_HANDLE)
		(void)c->m->C_DestroyObject(c->session, obj);
}

static bool mech_has(struct p11_conn *c, CK_MECHANISM_TYPE mech, CK_FLAGS flags)
{
	CK_MECHANISM_INFO info;

	if (c->m->C_GetMechanismInfo(c->slot, mech, &info) != CKR_OK)
		return false;
	return (info.flags & flags) == flags;
}

static int result_check(struct kc_ctx *ctx, const struct p11_state *st, size_t len)
{
	if (len < DEK_MIN || len > DEK_MAX)
		return ctx_fail(ctx, -EBADMSG, "%s: the unwrapped key has %zu bytes, not %d to %d "
				"(corrupt token?)", st->what, len, DEK_MIN, DEK_MAX);
	return 0;
}

/* Hand a wrapped key over; BUF is malloc'ed and taken. */
static void wrapped_set(struct kc_wrapped *r_wrapped, unsigned char **buf, size_t len,
			const char *alg)
{
	*r_wrapped = (struct kc_wrapped){ .data = TAKE_PTR(*buf), .len = len };
	snprintf(r_wrapped->alg, sizeof(r_wrapped->alg), "%s", alg);
}

/* ---------------------------------------------------------------------------------------- */
/* AES key wrap                                                                             */

/*
 * SoftHSM2, like many HSMs, offers CKM_AES_KEY_WRAP(_PAD) for C_WrapKey/C_UnwrapKey only, not
 * for C_Encrypt. So the DEK enters the token as a short-lived session object (sensitive, so
 * it cannot be read back; extractable, so it can be wrapped) and leaves it wrapped.
 */
static int dek_object_create(struct kc_ctx *ctx, const struct p11_state *st,
			     struct p11_conn *c, const struct kc_secret *dek,
			     CK_OBJECT_HANDLE *r_obj)
{
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE type = CKK_GENERIC_SECRET;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE, priv = c->authenticated;
	CK_ATTRIBUTE tmpl[] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_KEY_TYPE, &type, sizeof(type) },
		{ CKA_TOKEN, &no, sizeof(no) },
		{ CKA_PRIVATE, &priv, sizeof(priv) },
		{ CKA_SENSITIVE, &yes, sizeof(yes) },
		{ CKA_EXTRACTABLE, &yes, sizeof(yes) },
		{ CKA_VALUE, (void *)dek->data, dek->len },
	};
	CK_RV rv;

	rv = c->m->C_CreateObject(c->session, tmpl, ARRAY_SIZE(tmpl), r_obj);
	if (rv != CKR_OK)
		return p11_fail(ctx, st, rv, false, "loading the DEK into the token for wrapping");
	return 0;
}

static int aes_wrap_mech(struct kc_ctx *ctx, const struct p11_state *st, struct p11_conn *c,
			 size_t dek_len, const struct wrap_alg **r_alg)
{
	if (mech_has(c, CKM_AES_KEY_WRAP_PAD, CKF_WRAP)) {
		*r_alg = &wrap_algs[0];
		return 0;
	}
	/* RFC 3394 takes whole 64-bit blocks only; every real DEK is one. */
	if (dek_len % 8 == 0 && mech_has(c, CKM_AES_KEY_WRAP, CKF_WRAP)) {
		log_dbg(ctx, "%s: no CKM_AES_KEY_WRAP_PAD, using CKM_AES_KEY_WRAP", st->what);
		*r_alg = &wrap_algs[1];
		return 0;
	}
	return ctx_fail(ctx, -EPERM, "%s: the token offers no AES key wrap mechanism "
			"(RFC 5649 or RFC 3394) for wrapping", st->what);
}

static int aes_key_check(struct kc_ctx *ctx, const struct p11_state *st, struct p11_conn *c,
			 CK_OBJECT_HANDLE kek)
{
	CK_ULONG len = 0;
	CK_ATTRIBUTE a = { CKA_VALUE_LEN, &len, sizeof(len) };

	/* Tokens that hide the length get the benefit of the doubt. */
	if (c->m->C_GetAttributeValue(c->session, kek, &a, 1) != CKR_OK || len == 32)
		return 0;
	return ctx_fail(ctx, -ENOENT, "%s: the key is AES-%lu; kekcrypt needs an AES-256 KEK",
			st->what, len * 8);
}

static int aes_wrap(struct kc_ctx *ctx, struct p11_state *st, struct p11_conn *c,
		    CK_OBJECT_HANDLE kek, const struct kc_secret *dek, struct kc_wrapped *r_wrapped)
{
	CK_OBJECT_HANDLE obj = CK_INVALID_HANDLE;
	const struct wrap_alg *alg = NULL;
	CK_MECHANISM mech = { 0 };
	unsigned char *out = NULL;
	CK_ULONG out_len = TOKEN_WRAPPED_MAX;
	CK_RV rv;
	int r;

	r = aes_key_check(ctx, st, c, kek);
	if (r >= 0)
		r = aes_wrap_mech(ctx, st, c, dek->len, &alg);
	if (r >= 0)
		r = dek_object_create(ctx, st, c, dek, &obj);
	if (r < 0)
		goto out;
	out = malloc(out_len);
	if (!out) {
		r = -ENOMEM;
		goto out;
	}
	mech.mechanism = alg->mech;
	rv = c->m->C_WrapKey(c->session, &mech, kek, obj, out, &out_len);
	if (rv != CKR_OK) {
		r = p11_fail(ctx, st, rv, false, "wrapping the DEK");
		goto out;
	}
	wrapped_set(r_wrapped, &out, out_len, alg->name);
	r = 0;
out:
	object_destroy(c, obj);
	free(out);
	return r;
}

/* Read the unwrapped key's value straight into locked memory. */
static int object_read_value(struct kc_ctx *ctx, const struct p11_state *st,
			     struct p11_conn *c, CK_OBJECT_HANDLE obj, struct kc_secret **r_dek)
{
	_cleanup_(kc_secret_freep) struct kc_secret *dek = NULL;
	CK_ATTRIBUTE a = { CKA_VALUE, NULL, 0 };
	CK_RV rv;
	int r;

	rv = c->m->C_GetAttributeValue(c->session, obj, &a, 1);
	if (rv != CKR_OK)
		return p11_fail(ctx, st, rv, false, "reading the unwrapped DEK");
	r = result_check(ctx, st, a.ulValueLen);
	if (r < 0)
		return r;
	dek = kc_secret_alloc(a.ulValueLen);
	if (!dek)
		return -ENOMEM;
	a.pValue = dek->data;
	rv = c->m->C_GetAttributeValue(c->session, obj, &a, 1);
	if (rv != CKR_OK)
		return p11_fail(ctx, st, rv, false, "reading the unwrapped DEK");
	dek->len = a.ulValueLen;
	*r_dek = TAKE_PTR(dek);
	return 0;
}

/*
 * The DEK comes back as a session object, read once and destroyed at once. PKCS#11 reveals
 * CKA_VALUE only of a key that is neither sensitive nor unextractable, hence both flags.
 */
static int aes_unwrap(struct kc_ctx *ctx, struct p11_state *st, struct p11_conn *c,
		      CK_OBJECT_HANDLE kek, const struct wrap_alg *alg,
		      const unsigned char *wrapped, size_t wrapped_len, struct kc_secret **r_dek)
{
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE type = CKK_GENERIC_SECRET;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE, priv = c->authenticated;
	CK_ATTRIBUTE tmpl[] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_KEY_TYPE, &type, sizeof(type) },
		{ CKA_TOKEN, &no, sizeof(no) },
		{ CKA_PRIVATE, &priv, sizeof(priv) },
		{ CKA_SENSITIVE, &no, sizeof(no) },
		{ CKA_EXTRACTABLE, &yes, sizeof(yes) },
	};
	CK_MECHANISM mech = { alg->mech, NULL, 0 };
	CK_OBJECT_HANDLE obj = CK_INVALID_HANDLE;
	CK_RV rv;
	int r;

	rv = c->m->C_UnwrapKey(c->session, &mech, kek, (CK_BYTE_PTR)wrapped, wrapped_len, tmpl,
			       ARRAY_SIZE(tmpl), &obj);
	if (rv != CKR_OK)
		return p11_fail(ctx, st, rv, true, "unwrapping the DEK");
	r = object_read_value(ctx, st, c, obj, r_dek);
	object_destroy(c, obj);
	return r;
}

/* ---------------------------------------------------------------------------------------- */
/* RSA-OAEP                                                                                 */

static void oaep_params(CK_RSA_PKCS_OAEP_PARAMS *p, bool sha256)
{
	*p = (CK_RSA_PKCS_OAEP_PARAMS){
		.hashAlg = sha256 ? CKM_SHA256 : CKM_SHA_1,
		.mgf = sha256 ? CKG_MGF1_SHA256 : CKG_MGF1_SHA1,
		.source = CKZ_DATA_SPECIFIED,
	};
}

/*
 * Start OAEP encryption with SHA-256. SoftHSM2 2.6 implements OAEP with SHA-1 only and says
 * so with CKR_ARGUMENTS_BAD; OAEP with SHA-1 is still sound for key transport (its security
 * does not rest on collision resistance), so fall back to it and record "RSA-OAEP".
 */
static int rsa_encrypt_init(struct kc_ctx *ctx, const struct p11_state *st,
			    struct p11_conn *c, CK_OBJECT_HANDLE pub,
			    const struct wrap_alg **r_alg)
{
	CK_RSA_PKCS_OAEP_PARAMS params;
	CK_MECHANISM mech = { CKM_RSA_PKCS_OAEP, &params, sizeof(params) };
	CK_RV rv;

	oaep_params(&params, true);
	rv = c->m->C_EncryptInit(c->session, &mech, pub);
	if (rv == CKR_OK) {
		*r_alg = &wrap_algs[2];
		return 0;
	}
	if (rv != CKR_MECHANISM_PARAM_INVALID && rv != CKR_ARGUMENTS_BAD)
		return p11_fail(ctx, st, rv, false, "starting RSA-OAEP encryption");
	log_dbg(ctx, "%s: no RSA-OAEP with SHA-256 (%s), using SHA-1", st->what, ckr_name(rv));
	oaep_params(&params, false);
	rv = c->m->C_EncryptInit(c->session, &mech, pub);
	if (rv != CKR_OK)
		return p11_fail(ctx, st, rv, false, "starting RSA-OAEP encryption");
	*r_alg = &wrap_algs[3];
	return 0;
}

static int rsa_wrap(struct kc_ctx *ctx, struct p11_state *st, struct p11_conn *c,
		    CK_OBJECT_HANDLE pub, const struct kc_secret *dek, struct kc_wrapped *r_wrapped)
{
	_cleanup_(freep) unsigned char *out = NULL;
	const struct wrap_alg *alg = NULL;
	CK_ULONG out_len = TOKEN_WRAPPED_MAX;
	CK_RV rv;
	int r;

	out = malloc(out_len);
	if (!out)
		return -ENOMEM;
	r = rsa_encrypt_init(ctx, st, c, pub, &alg);
	if (r < 0)
		return r;
	rv = c->m->C_Encrypt(c->session, (CK_BYTE_PTR)dek->data, dek->len, out, &out_len);
	if (rv != CKR_OK)
		return p11_fail(ctx, st, rv, false, "encrypting the DEK");
	wrapped_set(r_wrapped, &out, out_len, alg->name);
	return 0;
}

/* Decrypt straight into locked memory: the DEK never exists as a token object. */
static int rsa_unwrap(struct kc_ctx *ctx, struct p11_state *st, struct p11_conn *c,
		      CK_OBJECT_HANDLE priv, const struct wrap_alg *alg,
		      const unsigned char *wrapped, size_t wrapped_len, struct kc_secret **r_dek)
{
	_cleanup_(kc_secret_freep) struct kc_secret *dek = NULL;
	CK_RSA_PKCS_OAEP_PARAMS params;
	CK_MECHANISM mech = { CKM_RSA_PKCS_OAEP, &params, sizeof(params) };
	CK_ULONG out_len;
	CK_RV rv;
	int r;

	/* A whole modulus worth of room, so that no module answers CKR_BUFFER_TOO_SMALL. */
	dek = kc_secret_alloc(TOKEN_WRAPPED_MAX);
	if (!dek)
		return -ENOMEM;
	oaep_params(&params, alg->sha256);
	rv = c->m->C_DecryptInit(c->session, &mech, priv);
	if (rv != CKR_OK)
		return p11_fail(ctx, st, rv, false, "starting RSA-OAEP decryption");
	out_len = TOKEN_WRAPPED_MAX;
	rv = c->m->C_Decrypt(c->session, (CK_BYTE_PTR)wrapped, wrapped_len, dek->data, &out_len);
	if (rv != CKR_OK)
		return p11_fail(ctx, st, rv, true, "decrypting the DEK");
	r = result_check(ctx, st, out_len);
	if (r < 0)
		return r;
	dek->len = out_len;
	*r_dek = TAKE_PTR(dek);
	return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* The provider                                                                             */

static const struct wrap_alg *alg_find(const char *name)
{
	for (size_t i = 0; name && i < ARRAY_SIZE(wrap_algs); i++)
		if (!strcmp(wrap_algs[i].name, name))
			return &wrap_algs[i];
	return NULL;
}

static int alg_unknown(struct kc_ctx *ctx, const char *alg)
{
	char quoted[40] = "(none)";

	if (alg)
		text_quote(quoted, sizeof(quoted), alg, strlen(alg));
	return ctx_fail(ctx, -EINVAL, "pkcs11: unknown wrap algorithm %s (expected %s, %s, %s "
			"or %s)", quoted, ALG_A256KWP, ALG_A256KW, ALG_RSA_OAEP_256, ALG_RSA_OAEP);
}

/* Refuse lengths no DEK of DEK_MIN..DEK_MAX bytes can wrap to, before bothering the HSM. */
static int blob_check(struct kc_ctx *ctx, const struct p11_state *st,
		      const struct wrap_alg *alg, const unsigned char *wrapped, size_t len)
{
	bool ok;

	if (alg->mech == CKM_RSA_PKCS_OAEP)
		ok = len > 0 && len <= TOKEN_WRAPPED_MAX;
	else
		ok = len % 8 == 0 && len >= DEK_MIN + 8 && len <= DEK_MAX + 8;
	if (!wrapped || !ok)
		return ctx_fail(ctx, -EBADMSG, "%s: no %s wrapped key has %zu bytes "
				"(corrupt token?)", st->what, alg->name, len);
	return 0;
}

static void p11_free(void *state)
{
	struct p11_state *st = state;

	if (!st)
		return;
	if (st->uri)
		sym_p11_kit_uri_free(st->uri);
	free(st->pin_path);
	free(st);
}

static int p11_init(struct kc_ctx *ctx, const char *uri, void **r_state)
{
	struct p11_state *st;
	int r;

	if (!uri || !r_state)
		return -EINVAL;
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	snprintf(st->what, sizeof(st->what), "PKCS#11 key");
	r = dl_p11kit_load(ctx);
	if (r >= 0)
		r = state_parse(ctx, st, uri);
	if (r < 0)
		goto out;
	*r_state = TAKE_PTR(st);
	r = 0;
out:
	p11_free(st);
	return r;
}

static int p11_wrap(struct kc_ctx *ctx, void *state, const struct kc_secret *dek,
		    struct kc_wrapped *r_wrapped)
{
	struct p11_state *st = state;
	struct p11_conn c = { 0 };
	CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
	bool rsa = false;
	int r;

	if (!st || !dek || !r_wrapped)
		return -EINVAL;
	if (dek->len < DEK_MIN || dek->len > DEK_MAX)
		return ctx_fail(ctx, -EINVAL, "%s: a DEK of %zu bytes is not %d to %d bytes",
				st->what, dek->len, DEK_MIN, DEK_MAX);
	r = conn_open(ctx, st, &c);
	if (r < 0)
		goto out;
	r = wrap_key_find(ctx, st, &c, &key, &rsa);
	if (r < 0)
		goto out;
	if (rsa)
		r = rsa_wrap(ctx, st, &c, key, dek, r_wrapped);
	else
		r = aes_wrap(ctx, st, &c, key, dek, r_wrapped);
out:
	conn_close(&c);
	return r;
}

static int p11_unwrap(struct kc_ctx *ctx, void *state, const char *alg_name,
		      const char *key_version, const unsigned char *wrapped, size_t wrapped_len,
		      struct kc_secret **r_dek)
{
	const struct wrap_alg *alg = alg_find(alg_name);
	struct p11_state *st = state;
	struct p11_conn c = { 0 };
	CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
	bool rsa;
	int r;

	(void)key_version; /* PKCS#11 keys have no versions; wrap() never records one */
	if (!st || !r_dek)
		return -EINVAL;
	if (!alg)
		return alg_unknown(ctx, alg_name);
	r = blob_check(ctx, st, alg, wrapped, wrapped_len);
	if (r < 0)
		return r;
	rsa = alg->mech == CKM_RSA_PKCS_OAEP;
	r = conn_open(ctx, st, &c);
	if (r < 0)
		goto out;
	r = key_find(ctx, st, &c, rsa ? CKO_PRIVATE_KEY : CKO_SECRET_KEY, rsa ? CKK_RSA : CKK_AES,
		     &key);
	if (r == 0)
		r = ctx_fail(ctx, -ENOENT, "%s: no such %s on the token", st->what,
			     rsa ? "RSA private key" : "AES secret key");
	if (r < 0)
		goto out;
	if (rsa)
		r = rsa_unwrap(ctx, st, &c, key, alg, wrapped, wrapped_len, r_dek);
	else
		r = aes_unwrap(ctx, st, &c, key, alg, wrapped, wrapped_len, r_dek);
out:
	conn_close(&c);
	return r;
}

static int p11_validate(struct kc_ctx *ctx, const struct token *t)
{
	if (!t || !alg_find(t->alg))
		return alg_unknown(ctx, t ? t->alg : NULL);
	return 0;
}

/* The modules and PIN files the config allows (policy made sure that a token's are among
 * them). Without module-path, p11-kit's registry names the modules: not followed here. */
static int p11_boot_needs(struct kc_ctx *ctx, void *state, struct boot_list *list)
{
	const struct p11_state *st = state;
	const char *module = st ? sym_p11_kit_uri_get_module_path(st->uri) : NULL;
	int r;

	r = dl_p11kit_boot_need(ctx, list);
	if (r < 0)
		return r;
	if (!st) {
		r = boot_add_listed(ctx, list, KC_BOOT_LIBRARY, "pkcs11", "allowed-modules");
		if (r >= 0)
			r = boot_add_listed(ctx, list, KC_BOOT_SECRET, "pkcs11",
					    "allowed-pin-files");
		return r;
	}
	r = module ? boot_add(list, KC_BOOT_LIBRARY, module, "a PKCS#11 module "
			      "([pkcs11] allowed-modules)") : 0;
	if (r >= 0 && st->pin_path)
		r = boot_add(list, KC_BOOT_SECRET, st->pin_path, "a PIN file ([pkcs11] "
			     "allowed-pin-files)");
	return r;
}

/* The URI may name a module to load and a PIN file to read: local policy decides. Without
 * module-path, the modules are p11-kit's root-owned registry's. */
static void p11_needs(void *state, struct kek_needs *r_needs)
{
	const struct p11_state *st = state;

	r_needs->module = sym_p11_kit_uri_get_module_path(st->uri);
	r_needs->pin_file = st->pin_path;
}

const struct kc_provider_ops provider_pkcs11 = {
	.abi_version = KC_PROVIDER_ABI_VERSION,
	.name = "pkcs11",
	.schemes = (const char *const[]){ "pkcs11", NULL },
	.syntax = "pkcs11:token=T;object=O?module-path=M&pin-source=file:P",
	.summary = "a key in a PKCS#11 HSM or token (RFC 7512)",
	.init = p11_init,
	.wrap = p11_wrap,
	.unwrap = p11_unwrap,
	.validate = p11_validate,
	.free = p11_free,
	.needs = p11_needs,
	.boot_needs = p11_boot_needs,
	.config_keys = (const char *const[]){ "allowed-modules", "allowed-pin-files", NULL },
};
