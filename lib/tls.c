/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A raw TLS stream to a KMS (see tls.h for the contract): OpenSSL over a non-blocking socket,
 * every wait a poll() bounded by the operation's deadline.
 *
 * SIGPIPE: OpenSSL writes to the socket with write(), which raises SIGPIPE when the peer has
 * gone, and a library must not change the process's signal dispositions. Each call that may
 * write blocks SIGPIPE in the calling thread only, and takes back a SIGPIPE it caused before
 * unblocking it, so the failure shows as EPIPE and nothing else changes.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "dl-ssl.h"
#include "tls.h"

struct tls_conn {
	struct kc_ctx *ctx;
	SSL_CTX *ssl_ctx;
	SSL *ssl;
	int fd;
	unsigned connect_ms;	/* per connect attempt, without a deadline */
	unsigned io_ms;		/* per read or write call, without a deadline */
	bool numeric;		/* HOST is an IP address: no SNI, IP SAN match */
	bool failed;		/* unusable: no more I/O, no close_notify */
	char host[256];		/* without brackets */
	char port[8];
	char where[272];	/* "host:port" or "[v6]:port", for details */
	char why[256];		/* the last failure, for details */
};

/* ---------------------------------------------------------------------------------------- */
/* Time and the socket                                                                      */

/* STEP_MS from now, or the deadline when it comes first. */
static uint64_t until_ms(const struct kc_ctx *ctx, unsigned step_ms)
{
	uint64_t t = util_now_ms() + step_ms;

	return ctx->deadline_ms && ctx->deadline_ms < t ? ctx->deadline_ms : t;
}

static bool deadline_passed(const struct kc_ctx *ctx)
{
	return ctx->deadline_ms && util_now_ms() >= ctx->deadline_ms;
}

/* Wait until FD is ready for EVENTS (an error or hang-up counts: the next call reports it):
 * 0, -ETIMEDOUT when UNTIL comes first, or -errno. */
static int fd_wait(int fd, short events, uint64_t until)
{
	struct pollfd p = { .fd = fd, .events = events };
	uint64_t now;
	int n;

	for (;;) {
		now = util_now_ms();
		if (now >= until)
			return -ETIMEDOUT;
		n = poll(&p, 1, until - now > INT_MAX ? INT_MAX : (int)(until - now));
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

struct sigpipe_guard {
	sigset_t old;
	bool was_pending;	/* someone else's SIGPIPE: not ours to take */
};

static void sigpipe_block(struct sigpipe_guard *g)
{
	sigset_t set, pending;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	g->was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, &g->old);
}

static void sigpipe_unblock(struct sigpipe_guard *g)
{
	struct timespec zero = { 0, 0 };
	sigset_t set, pending;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	if (!g->was_pending && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE))
		while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
			;
	pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/* ---------------------------------------------------------------------------------------- */
/* Name lookup                                                                              */

/* A lookup glibc runs in its own thread (getaddrinfo_a), in memory it may still write after
 * we stop waiting: when it cannot be cancelled, the block is left to it (a few hundred bytes
 * per lookup that outlived a deadline). */
struct lookup {
	struct gaicb cb;
	struct addrinfo hints;
	char host[256];
	char port[8];
};

/* getaddrinfo_a() for C's host, waited for until UNTIL: an EAI_* code, or EAI_INPROGRESS
 * when UNTIL came first. */
static int lookup_async(struct tls_conn *c, uint64_t until, struct addrinfo **r_ai)
{
	struct lookup *l = calloc(1, sizeof(*l));
	struct gaicb *list[1];
	struct timespec ts;
	uint64_t now;
	int e;

	if (!l)
		return EAI_MEMORY;
	memcpy(l->host, c->host, sizeof(l->host));
	memcpy(l->port, c->port, sizeof(l->port));
	l->hints = (struct addrinfo){ .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	l->cb = (struct gaicb){ .ar_name = l->host, .ar_service = l->port,
				.ar_request = &l->hints };
	list[0] = &l->cb;
	e = getaddrinfo_a(GAI_NOWAIT, list, 1, NULL);
	if (e) {
		free(l);
		return e;
	}
	while ((e = gai_error(&l->cb)) == EAI_INPROGRESS && (now = util_now_ms()) < until) {
		ts = (struct timespec){ .tv_sec = (time_t)((until - now) / 1000),
					.tv_nsec = (long)((until - now) % 1000) * 1000000 };
		gai_suspend((const struct gaicb *const *)list, 1, &ts);
	}
	if (e == EAI_INPROGRESS && gai_cancel(&l->cb) == EAI_ALLDONE)
		e = gai_error(&l->cb);
	if (e == EAI_INPROGRESS && gai_error(&l->cb) == EAI_INPROGRESS)
		return e;	/* still running: L is the lookup's now */
	if (!e)
		*r_ai = l->cb.ar_result;
	free(l);
	return e;
}

/* C's host's addresses: 0, -ETIMEDOUT (UNTIL came), -EAGAIN (lookup failed: c->why), or
 * -ENOMEM. An IP address needs no lookup. */
static int resolve(struct tls_conn *c, uint64_t until, struct addrinfo **r_ai)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV | AI_NUMERICHOST };
	int e;

	if (c->numeric)
		e = getaddrinfo(c->host, c->port, &hints, r_ai);
	else
		e = lookup_async(c, until, r_ai);
	switch (e) {
	case 0:
		return 0;
	case EAI_MEMORY:
		return -ENOMEM;
	case EAI_INPROGRESS:
		snprintf(c->why, sizeof(c->why), "name lookup timed out");
		return -ETIMEDOUT;
	default:
		/* Also "no such name": at boot, DNS may answer that before the network is up. */
		snprintf(c->why, sizeof(c->why), "cannot resolve '%s': %s", c->host,
			 e == EAI_SYSTEM ? strerror(errno) : gai_strerror(e));
		return -EAGAIN;
	}
}

/* ---------------------------------------------------------------------------------------- */
/* Connecting                                                                               */

/* A TCP connection to one of AI's addresses, tried in turn, before UNTIL: 0 (c->fd), or the
 * -errno of the last failure (c->why). */
static int tcp_connect(struct tls_conn *c, const struct addrinfo *ai, uint64_t until)
{
	socklen_t len = sizeof(int);
	int r = -EHOSTUNREACH, fd, err;

	for (; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0) {
			r = -errno;
			continue;
		}
		r = connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ? 0 : -errno;
		if (r == -EINPROGRESS)
			r = fd_wait(fd, POLLOUT, until);
		if (r >= 0)
			r = getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 ? -errno : -err;
		if (r >= 0) {
			c->fd = fd;
			return 0;
		}
		close(fd);
		if (r == -ETIMEDOUT)
			break;	/* no time left for the next address either */
	}
	snprintf(c->why, sizeof(c->why), "%s", strerror(-r));
	return r;
}

/* What OpenSSL said last, or the verification result, into c->why. */
static void ssl_why(struct tls_conn *c)
{
	long v = c->ssl ? sym_SSL_get_verify_result(c->ssl) : X509_V_OK;
	unsigned long e = ERR_peek_last_error();
	char buf[200];

	if (v != X509_V_OK) {
		snprintf(c->why, sizeof(c->why), "certificate verify failed: %s",
			 X509_verify_cert_error_string(v));
	} else if (e) {
		ERR_error_string_n(e, buf, sizeof(buf));
		snprintf(c->why, sizeof(c->why), "%s", buf);
	}
}

/* After an SSL call returned RET: wait for what it wants and return 0 (call it again), or
 * fail: -ETIMEDOUT (UNTIL came), -ESHUTDOWN (the peer's close_notify), -EBADE (the peer
 * closed or reset the connection without it), -EPROTO (a TLS error: c->why says which). */
static int ssl_want(struct tls_conn *c, int ret, uint64_t until)
{
	int e = sym_SSL_get_error(c->ssl, ret), r;
	unsigned long err;

	switch (e) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		r = fd_wait(c->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, until);
		if (r < 0)
			snprintf(c->why, sizeof(c->why), "%s", strerror(-r));
		return r;
	case SSL_ERROR_ZERO_RETURN:
		snprintf(c->why, sizeof(c->why), "the peer closed the connection");
		return -ESHUTDOWN;
	case SSL_ERROR_SYSCALL:
		snprintf(c->why, sizeof(c->why), "%s", errno ? strerror(errno) :
			 "the peer closed the connection");
		return -EBADE;
	default:
		err = ERR_peek_last_error();
		if (ERR_GET_LIB(err) == ERR_LIB_SSL &&
		    ERR_GET_REASON(err) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
			snprintf(c->why, sizeof(c->why), "the peer closed the connection without "
				 "a TLS close_notify");
			return -EBADE;
		}
		ssl_why(c);
		return -EPROTO;
	}
}

/* The client context: verification always on, the configured trust or the system bundle,
 * TLS 1.2 or newer, our hardening, the client certificate. -EPROTO when OpenSSL refuses a
 * file (c->why). */
static int ssl_ctx_setup(struct tls_conn *c, const struct http_opts *o)
{
	const char *ca_file = o ? o->ca_file : NULL, *ca_path = o ? o->ca_path : NULL;
	SSL_CTX *s;

	s = c->ssl_ctx = sym_SSL_CTX_new(sym_TLS_client_method());
	if (!s)
		return -ENOMEM;
	http_ssl_ctx_harden(s);
	sym_SSL_CTX_set_verify(s, SSL_VERIFY_PEER, NULL);
	if (!sym_SSL_CTX_ctrl(s, SSL_CTRL_SET_MIN_PROTO_VERSION, TLS1_2_VERSION, NULL))
		return -EPROTO;
	/* Not SSL_CTX_set_default_verify_paths(): it reads SSL_CERT_FILE and SSL_CERT_DIR from
	 * the environment, and whom we trust is root's configuration. */
	if (!ca_file && !ca_path)
		ca_file = HTTP_SYSTEM_CA_BUNDLE;
	if (sym_SSL_CTX_load_verify_locations(s, ca_file, ca_path) != 1) {
		snprintf(c->why, sizeof(c->why), "cannot load the CA certificates from '%s'",
			 ca_file ?: ca_path);
		return -EPROTO;
	}
	if (o && o->client_cert &&
	    (sym_SSL_CTX_use_certificate_chain_file(s, o->client_cert) != 1 ||
	     sym_SSL_CTX_use_PrivateKey_file(s, o->client_key, SSL_FILETYPE_PEM) != 1 ||
	     sym_SSL_CTX_check_private_key(s) != 1)) {
		snprintf(c->why, sizeof(c->why), "cannot use the client certificate '%s' with "
			 "its key", o->client_cert);
		return -EPROTO;
	}
	return 0;
}

/* The TLS side of one connection: SNI and the name to verify. */
static int ssl_start(struct tls_conn *c)
{
	c->ssl = sym_SSL_new(c->ssl_ctx);
	if (!c->ssl || sym_SSL_set_fd(c->ssl, c->fd) != 1)
		return -ENOMEM;
	if (c->numeric)
		/* RFC 6066: no IP address in SNI. The address must be an IP SAN. */
		return X509_VERIFY_PARAM_set1_ip_asc(sym_SSL_get0_param(c->ssl), c->host) == 1 ?
		       0 : -ENOMEM;
	if (sym_SSL_ctrl(c->ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
			 c->host) != 1 || sym_SSL_set1_host(c->ssl, c->host) != 1)
		return -ENOMEM;
	return 0;
}

static int handshake(struct tls_conn *c, uint64_t until)
{
	struct sigpipe_guard g;
	int ret, r = 0;

	sigpipe_block(&g);
	do {
		ERR_clear_error();
		ret = sym_SSL_connect(c->ssl);
	} while (ret != 1 && (r = ssl_want(c, ret, until)) >= 0);
	sigpipe_unblock(&g);
	/* The peer hanging up during the handshake is a TLS failure too (a protocol version
	 * or a certificate it refused), not a truncated answer. */
	return r == -ESHUTDOWN || r == -EBADE ? -EPROTO : r;
}

/* Undo a failed attempt so that the next starts afresh. */
static void conn_reset(struct tls_conn *c)
{
	if (c->ssl)
		sym_SSL_free(c->ssl);
	c->ssl = NULL;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* One attempt: look up, connect, handshake. 0; -EAGAIN when time may cure it (c->why); or a
 * final failure with its detail set. */
static int conn_attempt(struct tls_conn *c, unsigned attempt)
{
	struct kc_ctx *ctx = c->ctx;
	uint64_t start = util_now_ms(), until = until_ms(ctx, c->connect_ms);
	struct addrinfo *ai = NULL;
	int r;

	c->why[0] = '\0';
	r = resolve(c, until, &ai);
	if (r >= 0)
		r = tcp_connect(c, ai, until);
	if (r >= 0)
		r = ssl_start(c);
	if (r >= 0)
		r = handshake(c, until);
	if (ai)
		freeaddrinfo(ai);
	log_dbg(ctx, "tls: connect %s -> %s (attempt %u, %llu ms)", c->where,
		r >= 0 ? "ok" : c->why, attempt, (unsigned long long)(util_now_ms() - start));
	if (r >= 0 || r == -ENOMEM)
		return r;
	conn_reset(c);
	if (r == -EPROTO)
		return ctx_fail(ctx, r, "TLS failure talking to %s: %s", c->where, c->why);
	if (r == -ETIMEDOUT && deadline_passed(ctx))
		return ctx_fail(ctx, r, "no answer from KMS %s before the deadline (%u attempts)",
				c->where, attempt);
	return -EAGAIN;
}

/* After an attempt that time may cure: wait as the retry policy says and return 0, or the
 * final -EAGAIN with its detail. */
static int conn_wait_retry(struct tls_conn *c, struct retry *rt)
{
	uint64_t delay = 0;

	switch (retry_next(rt, RETRY_NO_HINT, &delay)) {
	case RETRY_AGAIN:
		log_dbg(c->ctx, "tls: retrying %s in %llu ms", c->where,
			(unsigned long long)delay);
		retry_sleep(delay);
		return 0;
	case RETRY_STOP_ATTEMPTS:
		return ctx_fail(c->ctx, -EAGAIN, "KMS %s unreachable: %s (%u attempts)", c->where,
				c->why, rt->attempts);
	default:
		return ctx_fail(c->ctx, -EAGAIN, "KMS %s unreachable: %s; no time left for "
				"another attempt before the deadline (%u attempts)", c->where,
				c->why, rt->attempts);
	}
}

/* A host name or address as given, brackets around IPv6 allowed; nothing a detail or
 * getaddrinfo() should not see. */
static int conn_set_host(struct tls_conn *c, const char *host, unsigned port)
{
	size_t n = strlen(host);
	unsigned char a[16];

	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		host++;
		n -= 2;
	}
	if (!n || n >= sizeof(c->host) || strspn(host, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklm"
						 "nopqrstuvwxyz0123456789.-_:") < n)
		return -EINVAL;
	memcpy(c->host, host, n);
	c->host[n] = '\0';
	c->numeric = inet_pton(AF_INET, c->host, a) == 1 || inet_pton(AF_INET6, c->host, a) == 1;
	if (!c->numeric && strchr(c->host, ':'))
		return -EINVAL;
	snprintf(c->port, sizeof(c->port), "%u", port);
	snprintf(c->where, sizeof(c->where), strchr(c->host, ':') ? "[%s]:%u" : "%s:%u",
		 c->host, port);
	return 0;
}

static int conn_new(struct kc_ctx *ctx, const struct http_opts *o, const char *host,
		    unsigned port, struct tls_conn **r_conn)
{
	_cleanup_(tls_closep) struct tls_conn *c = NULL;
	int r;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->ctx = ctx;
	c->fd = -1;
	c->connect_ms = http_connect_timeout_ms(o);
	c->io_ms = http_request_timeout_ms(o);
	if (port < 1 || port > 65535 || conn_set_host(c, host, port) < 0)
		return ctx_fail(ctx, -EINVAL, "invalid KMS address for TLS (host '%.64s', port %u)",
				strpbrk(host, "\r\n") ? "?" : host, port);
	if (o && o->proxy && *o->proxy)
		return ctx_fail(ctx, -EINVAL, "KMS %s: a raw TLS connection does not go through a "
				"proxy; remove 'proxy' from its configuration", c->where);
	r = dl_ssl_load(ctx);
	if (r >= 0)
		r = ssl_ctx_setup(c, o);
	if (r == -EPROTO)
		return ctx_fail(ctx, r, "TLS setup for %s: %s", c->where, c->why);
	if (r < 0)
		return r;
	*r_conn = TAKE_PTR(c);
	return 0;
}

int tls_connect(struct kc_ctx *ctx, const struct http_opts *opts, const char *host,
		unsigned port, struct tls_conn **r_conn)
{
	_cleanup_(tls_closep) struct tls_conn *c = NULL;
	struct retry_policy policy = http_retry_policy(opts);
	struct retry rt;
	int r;

	if (!ctx || !host || !r_conn)
		return -EINVAL;
	r = conn_new(ctx, opts, host, port, &c);
	if (r < 0)
		return r;
	retry_init(&rt, &policy, ctx->deadline_ms);
	for (unsigned attempt = 1;; attempt++) {
		r = conn_attempt(c, attempt);
		if (r != -EAGAIN || (r = conn_wait_retry(c, &rt)) < 0)
			break;
	}
	if (r < 0)
		return r;
	*r_conn = TAKE_PTR(c);
	return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Reading and writing                                                                      */

/* A failed read or write: the connection is done; the detail says why. DONE of LEN bytes
 * had been transferred. */
static int io_fail(struct tls_conn *c, int r, const char *what, size_t done, size_t len)
{
	struct kc_ctx *ctx = c->ctx;

	c->failed = true;
	switch (r) {
	case -ETIMEDOUT:
		return ctx_fail(ctx, r, "KMS %s: %s timed out%s (%zu of %zu bytes)", c->where,
				what, deadline_passed(ctx) ? " at the deadline" : "", done, len);
	case -EPROTO:
		return ctx_fail(ctx, r, "TLS failure talking to %s (%s): %s", c->where, what,
				c->why);
	case -ENOMEM:
		return r;
	default:
		return ctx_fail(ctx, -EBADE, "KMS %s closed the connection early (%s, %zu of %zu "
				"bytes): %s", c->where, what, done, len, c->why);
	}
}

/* The checks before a read or write of LEN bytes at BUF. */
static int io_start(struct tls_conn *c, const void *buf, size_t len)
{
	if (!c || (!buf && len))
		return -EINVAL;
	if (c->failed)
		return ctx_fail(c->ctx, -EBADE, "KMS %s: the connection failed before", c->where);
	return 0;
}

int tls_write_all(struct tls_conn *c, const void *buf, size_t len)
{
	struct sigpipe_guard g;
	uint64_t until;
	size_t done = 0, n;
	int r;

	r = io_start(c, buf, len);
	if (r < 0)
		return r;
	until = until_ms(c->ctx, c->io_ms);
	sigpipe_block(&g);
	while (r >= 0 && done < len) {
		ERR_clear_error();
		if (sym_SSL_write_ex(c->ssl, (const unsigned char *)buf + done, len - done, &n))
			done += n;
		else
			r = ssl_want(c, 0, until);
	}
	sigpipe_unblock(&g);
	return r < 0 ? io_fail(c, r, "write", done, len) : 0;
}

/* One SSL_read_ex() of at most SIZE bytes, waiting until UNTIL: 0 (*R_N > 0), or as
 * ssl_want(). */
static int read_some(struct tls_conn *c, void *buf, size_t size, uint64_t until, size_t *r_n)
{
	struct sigpipe_guard g;
	int r = 0;

	/* Reading may write too (a TLS 1.3 key update answered). */
	sigpipe_block(&g);
	do {
		ERR_clear_error();
		if (sym_SSL_read_ex(c->ssl, buf, size, r_n))
			break;
	} while ((r = ssl_want(c, 0, until)) >= 0);
	sigpipe_unblock(&g);
	return r;
}

int tls_read_exact(struct tls_conn *c, void *buf, size_t len)
{
	uint64_t until;
	size_t done = 0, n = 0;
	int r;

	r = io_start(c, buf, len);
	if (r < 0)
		return r;
	until = until_ms(c->ctx, c->io_ms);
	while (r >= 0 && done < len) {
		r = read_some(c, (unsigned char *)buf + done, len - done, until, &n);
		if (r >= 0)
			done += n;
	}
	if (r < 0) {
		secret_wipe(buf, done);
		return io_fail(c, r, "read", done, len);
	}
	return 0;
}

int tls_read(struct tls_conn *c, void *buf, size_t size, size_t *r_len)
{
	size_t n = 0;
	int r;

	if (!size || !r_len)
		return -EINVAL;
	r = io_start(c, buf, size);
	if (r < 0)
		return r;
	r = read_some(c, buf, size, until_ms(c->ctx, c->io_ms), &n);
	if (r == -ESHUTDOWN) {
		/* A clean end of the stream, which the caller's protocol may expect. */
		c->failed = true;
		*r_len = 0;
		return 0;
	}
	if (r < 0)
		return io_fail(c, r, "read", 0, size);
	*r_len = n;
	return 0;
}

void tls_close(struct tls_conn *c)
{
	struct sigpipe_guard g;

	if (!c)
		return;
	if (c->ssl && !c->failed) {
		/* One try, without waiting for the peer's answer: the data is all in. */
		sigpipe_block(&g);
		ERR_clear_error();
		sym_SSL_shutdown(c->ssl);
		sigpipe_unblock(&g);
	}
	if (c->ssl_ctx)
		sym_SSL_CTX_free(c->ssl_ctx);
	conn_reset(c);
	ERR_clear_error();
	free(c);
}

void tls_closep(struct tls_conn **c)
{
	tls_close(*c);
	*c = NULL;
}
