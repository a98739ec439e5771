/* Helpers shared by the sched unit tests: a scheduler with named accounts, headers in, and
 * a virtual time origin. Tests never read the clock: every call gets NOW + offset. */
#ifndef MAXPOOL_SCHED_FIXTURE_H
#define MAXPOOL_SCHED_FIXTURE_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "sched/sched.h"

#define NOW  1767225600000LL /* 2026-01-01T00:00:00Z */
#define SEC  1000LL
#define MIN  (60 * SEC)
#define HOUR (60 * MIN)
#define DAY  (24 * HOUR)

/* A scheduler with n API-key accounts named a, b, c, … (defaults unless opt). */
static inline void fx_init(sched_t *s, int n, const sched_options_t *opt)
{
    sched_init(s, opt);
    for (int i = 0; i < n; i++) {
        account_t a;
        char name[2] = {(char)('a' + i), 0};
        account_init(&a, name, ACCOUNT_APIKEY, "sk-ant-test");
        sched_add_account(s, &a, false, NOW);
    }
}

/* Sets the unified windows of account i directly (reset 0 = unknown). */
static inline void fx_quota(sched_t *s, int i, double u5, int64_t r5, double u7, int64_t r7,
                            const char *status)
{
    quota_t *q = &s->accts[i].quota;
    q->unified5h = u5;
    q->unified5h_reset_ms = r5;
    q->unified7d = u7;
    q->unified7d_reset_ms = r7;
    snprintf(q->unified_status, sizeof q->unified_status, "%s", status ? status : "");
}

/* A plain request (model sonnet unless given). */
static inline sched_request_t fx_req(const char *model, const char *session)
{
    sched_request_t r;
    sched_request_init(&r);
    r.model = model;
    r.session = session;
    r.body_json = true;
    r.body_bytes = 1000;
    return r;
}

/* Selects for a fresh request and completes it successfully at t; returns the index. */
static inline int fx_serve(sched_t *s, const char *model, const char *session, int64_t t)
{
    sched_request_t r = fx_req(model, session);
    sched_pick_t p;
    int idx = sched_select(s, &r, t, &p);
    if (idx >= 0) {
        sched_usage_t u = {.status = 200, .input_tokens = 10, .output_tokens = 5};
        sched_on_complete(s, idx, &r, &u, t);
    }
    return idx;
}

/* Builds a response head. */
static inline sched_response_t fx_resp(int status, const quota_header_t *h, size_t n,
                                       const char *type, const char *msg)
{
    sched_response_t r = {
        .status = status, .headers = h, .n_headers = n, .error_type = type, .error_message = msg};
    return r;
}

/* True when some queued event's message contains needle (drains the queue). */
static inline bool fx_event(sched_t *s, const char *needle)
{
    sched_event_t ev;
    bool found = false;
    while (sched_event_pop(s, &ev))
        if (strstr(ev.msg, needle)) found = true;
    return found;
}

#endif
