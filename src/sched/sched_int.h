/* sched internals shared by sched.c (state, formulas, selection) and sched_fail.c (outcomes).
 * Not for other modules. */
#ifndef MAXPOOL_SCHED_SCHED_INT_H
#define MAXPOOL_SCHED_SCHED_INT_H

#include "sched/sched.h"

#define SCHED_H5_MS (5LL * 3600 * 1000)
#define SCHED_D7_MS (7LL * 24 * 3600 * 1000)

/* Flags for sched_matches: parts of §5.2 the retry oracle evaluates on its own. */
enum {
    SCHED_M_IGNORE_FAIRNESS = 1,
    SCHED_M_IGNORE_THROTTLE = 2,
};

/* Queues a formatted event. */
void sched_emit(sched_t *s, sched_event_kind_t kind, int idx, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* §5.2 compatibility of account idx with req. */
bool sched_matches(const sched_t *s, int idx, const sched_request_t *req, int64_t now,
                   unsigned flags);
/* Ends the lease of account idx held by req (counters only). */
void sched_lease_end(sched_t *s, int idx, sched_request_t *req);
/* True when some account other than those in req->tried matches and is available (reserve
 * and critical allowed): a failover has somewhere to go. */
bool sched_other_route(sched_t *s, const sched_request_t *req, int64_t now);
/* Clears passed windows of account idx, with events. */
void sched_expire_account(sched_t *s, int idx, int64_t now);
/* Closes the shared throttle (probe accepted or given up). */
void sched_throttle_close(sched_t *s, const char *why, int64_t now);
/* Opens (or extends) the shared throttle for retry_after_s. */
void sched_throttle_open(sched_t *s, int retry_after_s, const char *reason, int status,
                         int64_t now);
/* A recovery probe failed: reopen with backoff, or give up after 4 failures. */
void sched_throttle_probe_failed(sched_t *s, int64_t now);
/* Emits the near-quota line when an account newly enters a limited state. */
void sched_check_near(sched_t *s, int idx, int64_t now);

static inline bool sched_u_known(double u)
{
    return u >= 0;
}
static inline double sched_u0(double u)
{
    return u >= 0 ? u : 0;
}
static inline double sched_clamp01(double d)
{
    return d < 0 ? 0 : d > 1 ? 1 : d;
}
static inline bool sched_is_claude(const account_t *a)
{
    return a->type != ACCOUNT_PROVIDER;
}

#endif
