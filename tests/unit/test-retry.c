/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The one retry policy (lib/retry.c): which failures are transient, the backoff (doubling,
 * capped, with jitter in [d/2, d]), a server's hint taking its place, the attempts limit, and
 * the deadline that no wait may reach; and crypttab_keyscript_key(), the keyscript's key
 * field (common/crypttab.c).
 */
#include <errno.h>
#include <string.h>

#include "crypttab.h"
#include "internal.h"
#include "test.h"

static void transient(void)
{
	CHECK(retry_transient(-EAGAIN));
	CHECK(retry_transient(-ETIMEDOUT));
	CHECK(retry_transient(-EPROTO));
	CHECK(retry_transient(-EBADE));
	CHECK(!retry_transient(-EACCES));
	CHECK(!retry_transient(-EPERM));
	CHECK(!retry_transient(-EBADMSG));
	CHECK(!retry_transient(-EINVAL));
	CHECK(!retry_transient(-ENOENT));
	CHECK(!retry_transient(0));
}

/* Over many draws, each wait lies in [d/2, d] for d = base * 2^(n-1) capped. */
static void backoff(void)
{
	static const struct retry_policy p = { .base_ms = 1000, .cap_ms = 8000 };
	static const uint64_t d[] = { 1000, 2000, 4000, 8000, 8000, 8000 };
	bool in_range = true, jitter = false;
	uint64_t first = 0;

	for (int round = 0; round < 50; round++) {
		struct retry rt;

		retry_init(&rt, &p, 0);
		for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++) {
			uint64_t w = 0;

			if (retry_next(&rt, RETRY_NO_HINT, &w) != RETRY_AGAIN || w < d[i] / 2 ||
			    w > d[i])
				in_range = false;
			if (i == 0 && round == 0)
				first = w;
			else if (i == 0 && w != first)
				jitter = true;
		}
		CHECK_EQ(rt.attempts, 6);
	}
	CHECK(in_range);
	CHECK(jitter);
}

static void hint_attempts_deadline(void)
{
	static const struct retry_policy p = { .max_attempts = 3, .base_ms = 200,
					       .cap_ms = 5000 };
	static const struct retry_policy open_ended = { .base_ms = 1000, .cap_ms = 8000 };
	struct retry rt;
	uint64_t w = 0;

	retry_init(&rt, &p, 0);
	CHECK_EQ(retry_next(&rt, 1234, &w), RETRY_AGAIN);
	CHECK_EQ(w, 1234);	/* a Retry-After replaces the backoff */
	CHECK_EQ(retry_next(&rt, RETRY_NO_HINT, &w), RETRY_AGAIN);
	CHECK_EQ(retry_next(&rt, RETRY_NO_HINT, &w), RETRY_STOP_ATTEMPTS);
	CHECK_EQ(retry_left_ms(&rt), UINT64_MAX);

	/* 300 ms left: a first wait of 500-1000 ms would pass the deadline, so stop now. */
	retry_init(&rt, &open_ended, util_now_ms() + 300);
	CHECK_EQ(retry_next(&rt, RETRY_NO_HINT, &w), RETRY_STOP_DEADLINE);
	CHECK(retry_left_ms(&rt) <= 300);
	/* A hint that fits is taken; one that reaches the deadline is not. */
	retry_init(&rt, &open_ended, util_now_ms() + 10000);
	CHECK_EQ(retry_next(&rt, 50, &w), RETRY_AGAIN);
	CHECK_EQ(w, 50);
	CHECK_EQ(retry_next(&rt, 20000, &w), RETRY_STOP_DEADLINE);
	/* Past the deadline: nothing left, stop. */
	retry_init(&rt, &open_ended, util_now_ms() - 1);
	CHECK_EQ(retry_left_ms(&rt), 0);
	CHECK_EQ(retry_next(&rt, 0, &w), RETRY_STOP_DEADLINE);
}

static void keyscript_key(void)
{
	struct crypttab_keyscript ks;
	char bad[128];

	CHECK_EQ(crypttab_keyscript_key(NULL, &ks, bad, sizeof(bad)), 0);
	CHECK_EQ(ks.timeout_s, CRYPTTAB_KEYSCRIPT_TIMEOUT_S);
	CHECK_EQ(ks.token, -1);
	CHECK_EQ(crypttab_keyscript_key("none", &ks, bad, sizeof(bad)), 0);
	CHECK_EQ(ks.timeout_s, 60);
	CHECK_EQ(crypttab_keyscript_key("timeout=2min,token=3", &ks, bad, sizeof(bad)), 0);
	CHECK_EQ(ks.timeout_s, 120);
	CHECK_EQ(ks.token, 3);
	CHECK_EQ(crypttab_keyscript_key("timeout=0", &ks, bad, sizeof(bad)), 0);
	CHECK_EQ(ks.timeout_s, 0);
	/* The first problem is named, the rest of the field applies. */
	CHECK_EQ(crypttab_keyscript_key("frob=1,timeout=9,token=x", &ks, bad, sizeof(bad)),
		 -EINVAL);
	CHECK(!strcmp(bad, "unknown setting 'frob=1' ignored"));
	CHECK_EQ(ks.timeout_s, 9);
	CHECK_EQ(ks.token, -1);
	CHECK_EQ(crypttab_keyscript_key("timeout=soon", &ks, bad, sizeof(bad)), -EINVAL);
	CHECK(strstr(bad, "bad 'timeout=soon'") != NULL);
	CHECK_EQ(ks.timeout_s, 60);
	CHECK_EQ(crypttab_keyscript_key("token=32", &ks, bad, sizeof(bad)), -EINVAL);
	CHECK_EQ(ks.token, -1);
	CHECK_EQ(crypttab_keyscript_key(",,token=0,", &ks, bad, sizeof(bad)), 0);
	CHECK_EQ(ks.token, 0);
}

/* An operation's deadline: kc_set_timeout()'s, else the documented default of 30 s (tests of
 * a KMS that never answers pass --timeout, so none of them waits this out). */
static void deadline_default(void)
{
	struct kc_ctx *ctx = NULL;
	uint64_t t0;

	CHECK_EQ(kc_new(&ctx), 0);
	if (!ctx)
		return;
	t0 = util_now_ms();
	ctx_deadline_start(ctx, 0);
	CHECK(ctx->deadline_ms >= t0 + 30000 && ctx->deadline_ms <= util_now_ms() + 30000);
	ctx_deadline_start(ctx, 1500);
	CHECK(ctx->deadline_ms >= t0 + 1500 && ctx->deadline_ms <= util_now_ms() + 1500);
	kc_set_timeout(ctx, 4000);
	ctx_deadline_start(ctx, 0);
	CHECK(ctx->deadline_ms >= t0 + 4000 && ctx->deadline_ms <= util_now_ms() + 4000);
	ctx_deadline_end(ctx);
	CHECK_EQ(ctx->deadline_ms, 0);
	kc_free(ctx);
}

int main(void)
{
	transient();
	deadline_default();
	backoff();
	hint_attempts_deadline();
	keyscript_key();
	return test_done();
}
