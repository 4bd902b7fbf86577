/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The one retry and deadline policy (see retry.h). Two loops use it: a transport retrying one
 * request (HTTP: a few attempts, 200 ms doubling to 5 s) and an unlock retried as a whole
 * until the boot's deadline (1 s doubling to 8 s: the plugin under systemd-cryptsetup and
 * `keyscript-passphrase --retry-until`). Both wait with jitter so that a fleet booting at
 * once does not hit the KMS in lockstep, and neither waits past its deadline: a wait that
 * would end there ends the loop now, with the last failure as the reason.
 */
#include <errno.h>
#include <sys/random.h>
#include <time.h>

#include "internal.h"

bool retry_transient(int r)
{
	return r == -EAGAIN || r == -ETIMEDOUT || r == -EPROTO || r == -EBADE;
}

void retry_init(struct retry *rt, const struct retry_policy *policy, uint64_t deadline_ms)
{
	*rt = (struct retry){ .policy = *policy, .deadline_ms = deadline_ms ?: UINT64_MAX,
			      .started_ms = util_now_ms() };
}

/* Uniformly in [d/2, d], d = base * 2^(attempt - 1) capped. */
static uint64_t backoff_ms(const struct retry_policy *p, unsigned attempt)
{
	uint64_t d = p->base_ms ?: 1;
	unsigned rnd;

	for (unsigned i = 1; i < attempt && d < p->cap_ms; i++)
		d *= 2;
	if (p->cap_ms && d > p->cap_ms)
		d = p->cap_ms;
	/* Jitter needs no strength: the clock will do when getrandom() cannot. */
	if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
		rnd = (unsigned)util_now_ms();
	return d / 2 + rnd % (d / 2 + 1);
}

enum retry_verdict retry_next(struct retry *rt, uint64_t hint_ms, uint64_t *r_wait_ms)
{
	uint64_t wait, now;

	rt->attempts++;
	if (rt->policy.max_attempts && rt->attempts >= rt->policy.max_attempts)
		return RETRY_STOP_ATTEMPTS;
	wait = hint_ms != RETRY_NO_HINT ? hint_ms : backoff_ms(&rt->policy, rt->attempts);
	now = util_now_ms();
	if (rt->deadline_ms != UINT64_MAX && (now >= rt->deadline_ms ||
					      wait >= rt->deadline_ms - now))
		return RETRY_STOP_DEADLINE;
	*r_wait_ms = wait;
	return RETRY_AGAIN;
}

uint64_t retry_left_ms(const struct retry *rt)
{
	uint64_t now = util_now_ms();

	if (rt->deadline_ms == UINT64_MAX)
		return UINT64_MAX;
	return now >= rt->deadline_ms ? 0 : rt->deadline_ms - now;
}

void retry_sleep(uint64_t ms)
{
	struct timespec ts = { .tv_sec = (time_t)(ms / 1000),
			       .tv_nsec = (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}
