/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The transports against real loopback servers (tests/fixtures/tls-echo.py, started by
 * tests/unit/test-tls.sh, which exports KC_TLS_DIR and the fixture's *_PORT variables):
 *  - lib/tls.c: echo round trips (by address and by name), mTLS given and missing, an
 *    untrusted CA, a certificate for another address, nothing listening (the retries counted
 *    in the debug log), a server that never answers the handshake or a request (the
 *    deadline), a peer closing mid-read, a proxy option, bad arguments;
 *  - http_send(): PUT, PATCH, DELETE, HEAD and their bodies over plain http to loopback with
 *    HTTP_PLAIN_ANY, method tokens, and plain http refused without the opt-in before any
 *    connection.
 * KC_DEBUG=1 shows the library's debug log on stderr.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http.h"
#include "tls.h"
#include "test.h"

static unsigned n_connects;	/* "tls: connect" attempts logged */
static unsigned n_requests;	/* http_send() attempts logged */
static char conf_dir[4096];

static void log_count(int level, const char *msg, void *usrptr)
{
	if (!strncmp(msg, "tls: connect ", 13))
		n_connects++;
	if (!strncmp(msg, "http: ", 6) && !strstr(msg, "retrying"))
		n_requests++;
	if (getenv("KC_DEBUG"))
		fprintf(stderr, "# %s\n", msg);
}

static unsigned port_of(const char *name)
{
	const char *v = getenv(name);

	return v ? (unsigned)strtoul(v, NULL, 10) : 0;
}

/* The configuration file of one trust setting, DIR/SETTING.conf: the HTTPS options of a
 * provider section (the configuration knows only the providers' sections and keys). */
#define SECTION "vault-transit"

static void conf_path(char *buf, size_t size, const char *setting)
{
	snprintf(buf, size, "%s/%s.conf", conf_dir, setting);
}

static int write_one(const char *setting, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int write_one(const char *setting, const char *fmt, ...)
{
	char path[4200];
	va_list ap;
	FILE *f;

	conf_path(path, sizeof(path), setting);
	f = fopen(path, "we");
	if (!f)
		return -1;
	fputs("[" SECTION "]\n", f);
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	return fclose(f);
}

static int write_config(const char *dir)
{
	snprintf(conf_dir, sizeof(conf_dir), "%s", dir);
	umask(077);	/* kekcrypt reads only a private configuration */
	if (write_one("good", "ca-file = %s/ca.pem\nmax-attempts = 3\n", dir) < 0 ||
	    write_one("other-ca", "ca-file = %s/other-ca.pem\n", dir) < 0 ||
	    write_one("mtls", "ca-file = %s/ca.pem\nclient-cert = %s/client.pem\n"
		      "client-key = %s/client.key\n", dir, dir, dir) < 0 ||
	    write_one("proxied", "ca-file = %s/ca.pem\nproxy = http://127.0.0.1:9\n", dir) < 0)
		return -1;
	return 0;
}

/* A context with the test configuration, counting log lines, and a deadline DEADLINE_MS
 * from now. */
static struct kc_ctx *ctx_new(unsigned deadline_ms)
{
	struct kc_ctx *ctx = NULL;

	if (kc_new(&ctx) < 0) {
		fprintf(stderr, "kc_new failed\n");
		exit(1);
	}
	kc_set_log(ctx, log_count, KC_LOG_DEBUG, NULL);
	ctx_deadline_start(ctx, deadline_ms);
	n_connects = n_requests = 0;
	return ctx;
}

/* Connect with the trust SETTING (its configuration file). */
static int connect_with(struct kc_ctx *ctx, const char *setting, const char *host,
			unsigned port, struct tls_conn **r_conn)
{
	char path[4200];
	struct http_opts o;
	int r;

	conf_path(path, sizeof(path), setting);
	if (kc_config_load(ctx, path) < 0) {
		fprintf(stderr, "kc_config_load: %s\n", kc_error_detail(ctx));
		exit(1);
	}
	r = http_opts_from_config(ctx, SECTION, &o);
	if (r < 0)
		return r;
	return tls_connect(ctx, &o, host, port, r_conn);
}

static bool detail_has(struct kc_ctx *ctx, const char *what)
{
	bool has = strstr(kc_error_detail(ctx), what) != NULL;

	if (!has)
		printf("# detail: %s\n", kc_error_detail(ctx));
	return has;
}

/* Write MSG and read it back. */
static int round_trip(struct tls_conn *conn, const char *msg)
{
	char buf[64] = { 0 };
	size_t n = strlen(msg);
	int r;

	r = tls_write_all(conn, msg, n);
	if (r >= 0)
		r = tls_read_exact(conn, buf, n);
	if (r >= 0 && memcmp(buf, msg, n))
		r = -EBADMSG;
	return r;
}

static void test_echo(void)
{
	struct kc_ctx *ctx = ctx_new(30000);
	struct tls_conn *conn = NULL;
	char buf[64];
	size_t n = 0;

	CHECK_EQ(connect_with(ctx, "good", "127.0.0.1", port_of("ECHO_PORT"), &conn), 0);
	CHECK_EQ(n_connects, 1);
	CHECK_EQ(round_trip(conn, "hello, kms"), 0);
	CHECK_EQ(tls_write_all(conn, "x", 1), 0);
	CHECK_EQ(tls_read(conn, buf, sizeof(buf), &n), 0);
	CHECK_EQ(n, 1);
	CHECK_EQ(tls_read(conn, buf, 0, &n), -EINVAL);
	tls_closep(&conn);
	CHECK(conn == NULL);

	/* By name: looked up asynchronously, verified as a DNS name (SNI sent). */
	CHECK_EQ(connect_with(ctx, "good", "localhost", port_of("ECHO_PORT"), &conn), 0);
	CHECK_EQ(round_trip(conn, "by name"), 0);
	tls_close(conn);
	kc_free(ctx);
}

static void test_untrusted(void)
{
	struct kc_ctx *ctx = ctx_new(30000);
	struct tls_conn *conn = NULL;
	char where[64];

	snprintf(where, sizeof(where), "127.0.0.1:%u", port_of("ECHO_PORT"));
	CHECK_EQ(connect_with(ctx, "other-ca", "127.0.0.1", port_of("ECHO_PORT"), &conn),
		 -EPROTO);
	CHECK(conn == NULL);
	CHECK(detail_has(ctx, where));
	CHECK(detail_has(ctx, "certificate verify failed"));
	CHECK_EQ(n_connects, 1);	/* a TLS failure is not retried */

	/* 127.0.0.2 reaches the same server, whose certificate names 127.0.0.1 only. */
	CHECK_EQ(connect_with(ctx, "good", "127.0.0.2", port_of("MISMATCH_PORT"), &conn),
		 -EPROTO);
	CHECK(detail_has(ctx, "127.0.0.2:"));
	CHECK(detail_has(ctx, "mismatch"));
	kc_free(ctx);
}

static void test_mtls(void)
{
	struct kc_ctx *ctx = ctx_new(30000);
	struct tls_conn *conn = NULL;
	char buf[8];
	int r;

	CHECK_EQ(connect_with(ctx, "mtls", "127.0.0.1", port_of("MTLS_PORT"), &conn), 0);
	CHECK_EQ(round_trip(conn, "with a client certificate"), 0);
	tls_closep(&conn);

	/* Without one: TLS 1.3 finishes the client's handshake before the server checks, so
	 * the refusal (an alert) may come with the first read. */
	r = connect_with(ctx, "good", "127.0.0.1", port_of("MTLS_PORT"), &conn);
	if (r >= 0)
		r = tls_read_exact(conn, buf, sizeof(buf));
	CHECK_EQ(r, -EPROTO);
	CHECK(detail_has(ctx, "127.0.0.1:"));
	tls_close(conn);
	kc_free(ctx);
}

/* A port nothing listens on (bound, then closed). */
static unsigned closed_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, len) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		return 0;
	close(fd);
	return ntohs(a.sin_port);
}

static void test_unreachable(void)
{
	struct kc_ctx *ctx = ctx_new(30000);
	struct tls_conn *conn = NULL;

	CHECK_EQ(connect_with(ctx, "good", "127.0.0.1", closed_port(), &conn), -EAGAIN);
	CHECK_EQ(n_connects, 3);	/* [good] max-attempts = 3 */
	CHECK(detail_has(ctx, "3 attempts"));
	CHECK(detail_has(ctx, "refused"));
	kc_free(ctx);
}

/* The deadline ends a connect to a server that never speaks TLS, and a read from one that
 * never answers: -ETIMEDOUT, around the 2 s deadline and well before the 10 s per-call bound
 * (no tight timing: the machines are noisy). */
static void test_deadline(void)
{
	struct kc_ctx *ctx = ctx_new(2000);
	struct tls_conn *conn = NULL;
	uint64_t start = util_now_ms();
	char buf[4];

	CHECK_EQ(connect_with(ctx, "good", "127.0.0.1", port_of("SILENT_PORT"), &conn),
		 -ETIMEDOUT);
	CHECK(util_now_ms() - start >= 1000);
	CHECK(util_now_ms() - start < 8000);
	CHECK(detail_has(ctx, "deadline"));
	kc_free(ctx);

	ctx = ctx_new(2000);
	start = util_now_ms();
	CHECK_EQ(connect_with(ctx, "good", "127.0.0.1", port_of("MUTE_PORT"), &conn), 0);
	CHECK_EQ(tls_write_all(conn, "ping", 4), 0);
	CHECK_EQ(tls_read_exact(conn, buf, sizeof(buf)), -ETIMEDOUT);
	CHECK(util_now_ms() - start >= 1000);
	CHECK(util_now_ms() - start < 8000);
	CHECK(detail_has(ctx, "at the deadline"));
	/* Once failed, the connection stays failed. */
	CHECK_EQ(tls_write_all(conn, "ping", 4), -EBADE);
	tls_close(conn);
	kc_free(ctx);
}

static void test_short(void)
{
	struct kc_ctx *ctx = ctx_new(30000);
	struct tls_conn *conn = NULL;
	unsigned char buf[10], zero[10] = { 0 };

	CHECK_EQ(connect_with(ctx, "good", "127.0.0.1", port_of("SHORT_PORT"), &conn), 0);
	CHECK_EQ(tls_write_all(conn, "?", 1), 0);
	memset(buf, 0xaa, sizeof(buf));
	CHECK_EQ(tls_read_exact(conn, buf, sizeof(buf)), -EBADE);
	CHECK(detail_has(ctx, "5 of 10 bytes"));
	CHECK(!memcmp(buf, zero, 5));	/* what had come in is wiped */
	tls_close(conn);
	kc_free(ctx);
}

static void test_bad_args(void)
{
	struct kc_ctx *ctx = ctx_new(30000);
	struct tls_conn *conn = NULL;

	CHECK_EQ(connect_with(ctx, "proxied", "127.0.0.1", port_of("ECHO_PORT"), &conn),
		 -EINVAL);
	CHECK(detail_has(ctx, "proxy"));
	CHECK_EQ(connect_with(ctx, "good", "127.0.0.1", 0, &conn), -EINVAL);
	CHECK_EQ(connect_with(ctx, "good", "kms example", 443, &conn), -EINVAL);
	CHECK_EQ(connect_with(ctx, "good", "", 443, &conn), -EINVAL);
	CHECK_EQ(tls_connect(ctx, NULL, NULL, 443, &conn), -EINVAL);
	CHECK_EQ(n_connects, 0);
	CHECK(conn == NULL);
	tls_close(NULL);
	kc_free(ctx);
}

/* ---------------------------------------------------------------------------------------- */
/* HTTP                                                                                     */

static int send_plain(struct kc_ctx *ctx, const char *method, const char *body,
		      enum http_plain plain, const char *url, struct http_response *r_resp)
{
	_cleanup_(kc_secret_freep) struct kc_secret *b = NULL;
	char local[128];

	if (!url) {
		snprintf(local, sizeof(local), "http://127.0.0.1:%u/v1/thing",
			 port_of("HTTP_PORT"));
		url = local;
	}
	if (body && !(b = kc_secret_dup(body, strlen(body))))
		return -ENOMEM;
	return http_send(ctx, NULL, &(struct http_request){ .method = method, .url = url,
			 .plain = plain, .body = b, .content_type = "text/plain" }, r_resp);
}

static bool body_has(const struct http_response *resp, const char *what)
{
	bool has = resp->body && strstr((const char *)resp->body->data, what);

	if (!has)
		printf("# body: %s\n", resp->body ? (const char *)resp->body->data : "(none)");
	return has;
}

static void test_http_methods(void)
{
	struct kc_ctx *ctx = ctx_new(30000);
	struct http_response resp = { 0 };

	CHECK_EQ(send_plain(ctx, "PUT", "secret-body", HTTP_PLAIN_ANY, NULL, &resp), 0);
	CHECK_EQ(resp.status, 200);
	CHECK(body_has(&resp, "\"method\": \"PUT\""));
	CHECK(body_has(&resp, "\"body\": \"secret-body\""));
	http_response_clear(&resp);

	/* PUT without a body still says Content-Length: 0 (IMDSv2's token request). */
	CHECK_EQ(send_plain(ctx, "PUT", NULL, HTTP_PLAIN_ANY, NULL, &resp), 0);
	CHECK(body_has(&resp, "\"content_length\": \"0\""));
	http_response_clear(&resp);

	CHECK_EQ(send_plain(ctx, "PATCH", "{}", HTTP_PLAIN_ANY, NULL, &resp), 0);
	CHECK(body_has(&resp, "\"method\": \"PATCH\""));
	CHECK(body_has(&resp, "\"body\": \"{}\""));
	http_response_clear(&resp);

	CHECK_EQ(send_plain(ctx, "DELETE", NULL, HTTP_PLAIN_ANY, NULL, &resp), 0);
	CHECK(body_has(&resp, "\"method\": \"DELETE\""));
	CHECK(body_has(&resp, "\"content_length\": null"));
	http_response_clear(&resp);

	CHECK_EQ(send_plain(ctx, "HEAD", NULL, HTTP_PLAIN_ANY, NULL, &resp), 0);
	CHECK_EQ(resp.status, 200);
	CHECK(resp.body && resp.body->len == 0);
	http_response_clear(&resp);

	/* The metadata-endpoint setting still reaches loopback. */
	CHECK_EQ(send_plain(ctx, "GET", NULL, HTTP_PLAIN_LOCAL, NULL, &resp), 0);
	CHECK(body_has(&resp, "\"method\": \"GET\""));
	http_response_clear(&resp);
	CHECK_EQ(n_requests, 6);

	CHECK_EQ(send_plain(ctx, "HEAD", "x", HTTP_PLAIN_ANY, NULL, &resp), -EINVAL);
	CHECK_EQ(send_plain(ctx, "GE T", NULL, HTTP_PLAIN_ANY, NULL, &resp), -EINVAL);
	CHECK_EQ(send_plain(ctx, "GET\r\nX-Evil: 1", NULL, HTTP_PLAIN_ANY, NULL, &resp),
		 -EINVAL);
	CHECK_EQ(send_plain(ctx, "", NULL, HTTP_PLAIN_ANY, NULL, &resp), -EINVAL);
	CHECK_EQ(send_plain(ctx, NULL, NULL, HTTP_PLAIN_ANY, NULL, &resp), -EINVAL);
	CHECK_EQ(n_requests, 6);
	kc_free(ctx);
}

/* A deadline already passed when a call starts (getting ready took it all) still lets its
 * first request go, with a few seconds; no second one: nothing listening fails after one. */
static void test_http_first_attempt(void)
{
	struct kc_ctx *ctx = ctx_new(30000);
	struct http_response resp = { 0 };
	char url[128];

	ctx->deadline_ms = util_now_ms() - 1;
	CHECK_EQ(send_plain(ctx, "GET", NULL, HTTP_PLAIN_ANY, NULL, &resp), 0);
	CHECK_EQ(resp.status, 200);
	CHECK_EQ(n_requests, 1);
	http_response_clear(&resp);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/thing", closed_port());
	n_requests = 0;
	CHECK(send_plain(ctx, "GET", NULL, HTTP_PLAIN_ANY, url, &resp) < 0);
	CHECK_EQ(n_requests, 1);
	CHECK(resp.body == NULL);
	kc_free(ctx);
}

/* Plain http without the opt-in is refused before any connection: kms.example is never
 * looked up, no attempt is logged, and the detail names the rule. */
static void test_http_plain_refused(void)
{
	struct kc_ctx *ctx = ctx_new(30000);
	struct http_response resp = { 0 };

	CHECK_EQ(send_plain(ctx, "POST", "x", HTTP_TLS_ONLY, "http://kms.example/v1/k", &resp),
		 -EINVAL);
	CHECK(detail_has(ctx, "kms.example must use https"));
	CHECK_EQ(send_plain(ctx, "POST", "x", HTTP_PLAIN_LOCAL, "http://kms.example/v1/k",
			    &resp), -EINVAL);
	CHECK(detail_has(ctx, "plain http only to a loopback or link-local host"));
	CHECK_EQ(send_plain(ctx, "GET", NULL, HTTP_TLS_ONLY, NULL, &resp), -EINVAL);
	CHECK(detail_has(ctx, "must use https"));
	CHECK_EQ(send_plain(ctx, "GET", NULL, HTTP_PLAIN_ANY, "ftp://127.0.0.1/", &resp),
		 -EINVAL);
	CHECK_EQ(n_requests, 0);
	CHECK(resp.body == NULL);
	kc_free(ctx);
}

int main(void)
{
	const char *dir = getenv("KC_TLS_DIR");

	if (!dir || !port_of("ECHO_PORT")) {
		printf("1..0 # SKIP run through tests/unit/test-tls.sh (needs the fixture)\n");
		return 77;
	}
	if (write_config(dir) < 0) {
		perror("test-tls: writing the configuration");
		return 1;
	}
	test_echo();
	test_untrusted();
	test_mtls();
	test_unreachable();
	test_deadline();
	test_short();
	test_bad_args();
	test_http_methods();
	test_http_plain_refused();
	test_http_first_attempt();
	return test_done();
}
