/* sched outcomes (§6.1–§6.4, §5.11, Part A5) in virtual time: the status table, the attempt
 * budget, cooldown backoff, 429 scopes, the shared throttle and its half-open probe. */
#include "sched_fixture.h"
#include "sched/sched_int.h"

static sched_action_t respond(sched_t *s, int idx, sched_request_t *r, int status,
                              const quota_header_t *h, size_t n, const char *type, const char *msg,
                              int64_t t, sched_outcome_t *out)
{
    sched_response_t resp = fx_resp(status, h, n, type, msg);
    return sched_on_response(s, idx, r, &resp, t, out);
}

static void no_leases(const sched_t *s)
{
    for (size_t i = 0; i < s->n; i++) {
        cr_assert_eq(s->accts[i].in_flight, 0, "account %zu in flight", i);
        cr_assert_eq(s->accts[i].active_weight, 0);
    }
    cr_assert_eq(s->global_in_flight, 0);
}

Test(sched_fail, server_error_backoff_and_failover)
{
    sched_t s;
    fx_init(&s, 2, NULL);
    sched_request_t r = fx_req("m", NULL);
    sched_pick_t p;
    sched_outcome_t o;
    cr_assert_eq(sched_select(&s, &r, NOW, &p), 0);
    cr_assert_eq(respond(&s, 0, &r, 500, NULL, 0, "api_error", "x", NOW, &o), SCHED_RETRY);
    cr_assert_eq(s.accts[0].cooldown_until_ms, NOW + 30 * SEC);
    cr_assert_eq(s.accts[0].consecutive_failures, 1);
    cr_assert(fx_event(&s, "Account \"a\" cooling down for 30s after HTTP 500"));
    cr_assert_eq(r.attempt, 1);
    cr_assert_eq(sched_select(&s, &r, NOW, &p), 1);
    sched_usage_t u = {.status = 200, .input_tokens = 3, .output_tokens = 4};
    sched_on_complete(&s, 1, &r, &u, NOW);
    no_leases(&s);
    cr_assert_eq(s.accts[1].completed, 1);
    cr_assert_eq(s.accts[1].output_tokens, 4);
    /* The second consecutive 500 doubles the cooldown. */
    sched_request_t r2 = fx_req("m", NULL);
    r2.pin = 0;
    cr_assert_eq(sched_select(&s, &r2, NOW + 30 * SEC, &p), 0);
    cr_assert_eq(respond(&s, 0, &r2, 502, NULL, 0, NULL, NULL, NOW + 30 * SEC, &o), SCHED_RETRY);
    cr_assert_eq(s.accts[0].cooldown_until_ms, NOW + 90 * SEC);
    sched_release(&s, 1, &r2, NOW); /* not acquired: guard keeps counters at 0 */
    /* A success resets the streak. */
    sched_request_t r3 = fx_req("m", NULL);
    r3.pin = 0;
    cr_assert_eq(sched_select(&s, &r3, NOW + 90 * SEC, &p), 0);
    sched_on_complete(&s, 0, &r3, &u, NOW + 90 * SEC);
    cr_assert_eq(s.accts[0].consecutive_failures, 0);
    no_leases(&s);
    sched_free(&s);
}

Test(sched_fail, give_up_when_no_failover_is_possible)
{
    sched_t s;
    fx_init(&s, 1, NULL);
    sched_request_t r = fx_req("m", NULL);
    sched_pick_t p;
    sched_outcome_t o;
    sched_select(&s, &r, NOW, &p);
    cr_assert_eq(respond(&s, 0, &r, 503, NULL, 0, NULL, NULL, NOW, &o), SCHED_GIVE_UP);
    cr_assert_eq(o.cause, SCHED_QUEUE_CAPACITY);
    cr_assert_eq(o.status, 503);
    cr_assert_str_eq(o.error_type, "overloaded_error");
    cr_assert_str_eq(o.message, "Upstream returned 503");
    no_leases(&s);
    sched_free(&s);
}

Test(sched_fail, attempt_budget_buffer_and_commit)
{
    sched_options_t opt;
    sched_options_default(&opt);
    opt.max_attempts = 2;
    sched_t s;
    fx_init(&s, 3, &opt);
    sched_request_t r = fx_req("m", NULL);
    sched_pick_t p;
    sched_outcome_t o;
    int i = sched_select(&s, &r, NOW, &p);
    cr_assert_eq(respond(&s, i, &r, 500, NULL, 0, NULL, NULL, NOW, &o), SCHED_RETRY);
    i = sched_select(&s, &r, NOW, &p);
    cr_assert_eq(respond(&s, i, &r, 500, NULL, 0, NULL, NULL, NOW, &o), SCHED_GIVE_UP);
    /* Bodies over the retry buffer are sent once (§13 scenario 38). */
    s.opt.max_attempts = 0;
    sched_request_t big = fx_req("m", NULL);
    big.body_bytes = (size_t)s.opt.max_retry_buffer + 1;
    i = sched_select(&s, &big, NOW + HOUR, &p);
    cr_assert_eq(respond(&s, i, &big, 429, NULL, 0, "rate_limit_error", "Session limit reached",
                         NOW + HOUR, &o),
                 SCHED_GIVE_UP);
    cr_assert_eq(o.cause, SCHED_QUEUE_QUOTA);
    cr_assert_eq(o.status, 429);
    /* Exactly at the limit it may fail over. */
    sched_request_t edge = fx_req("m", NULL);
    edge.body_bytes = (size_t)s.opt.max_retry_buffer;
    i = sched_select(&s, &edge, NOW + HOUR, &p);
    cr_assert_eq(respond(&s, i, &edge, 500, NULL, 0, NULL, NULL, NOW + HOUR, &o), SCHED_RETRY);
    /* Once the client got bytes there is no switch. */
    sched_request_t c = fx_req("m", NULL);
    i = sched_select(&s, &c, NOW + 2 * HOUR, &p);
    c.committed = true;
    cr_assert_eq(respond(&s, i, &c, 500, NULL, 0, NULL, NULL, NOW + 2 * HOUR, &o), SCHED_GIVE_UP);
    no_leases(&s);
    sched_free(&s);
}

Test(sched_fail, account_429_throttles_and_reports_retry_after)
{
    sched_t s;
    fx_init(&s, 2, NULL);
    sched_request_t r = fx_req("m", NULL);
    sched_pick_t p;
    sched_outcome_t o;
    quota_header_t h[] = {{"retry-after", "7"}};
    cr_assert_eq(sched_select(&s, &r, NOW, &p), 0);
    cr_assert_eq(
        respond(&s, 0, &r, 429, h, 1, "rate_limit_error", "Session limit reached", NOW, &o),
        SCHED_RETRY);
    cr_assert_eq(s.accts[0].status, ACCOUNT_THROTTLED);
    cr_assert_eq(s.accts[0].rate_limited_until_ms, NOW + 7 * SEC);
    cr_assert(fx_event(&s, "Account \"a\" rate limited for 7s"));
    cr_assert_eq(sched_select(&s, &r, NOW, &p), 1);
    quota_header_t h5[] = {{"retry-after", "5"}};
    cr_assert_eq(
        respond(&s, 1, &r, 429, h5, 1, "rate_limit_error", "Session limit reached", NOW, &o),
        SCHED_GIVE_UP);
    cr_assert_eq(o.cause, SCHED_QUEUE_QUOTA);
    cr_assert_eq(o.retry_after_s, 5); /* the oracle: b is back first */
    cr_assert_str_eq(o.error_type, "rate_limit_error");
    cr_assert(strstr(o.message, "all 2 Claude accounts are momentarily at their limit. Retry "
                                "in ~5s."),
              "%s", o.message);
    no_leases(&s);
    sched_free(&s);
}

Test(sched_fail, model_scoped_429_benches_one_family)
{
    sched_t s;
    fx_init(&s, 1, NULL);
    sched_request_t r = fx_req("claude-opus-4-1", NULL);
    sched_pick_t p;
    sched_outcome_t o;
    quota_header_t h[] = {{"retry-after", "7200"},
                          {"anthropic-ratelimit-unified-5h-utilization", "0.3"},
                          {"anthropic-ratelimit-unified-5h-reset", "3600"},
                          {"anthropic-ratelimit-unified-7d-utilization", "0.4"},
                          {"anthropic-ratelimit-unified-7d-reset", "86400"}};
    cr_assert_eq(sched_select(&s, &r, NOW, &p), 0);
    cr_assert_eq(respond(&s, 0, &r, 429, h, 5, "rate_limit_error", "Rate limited", NOW, &o),
                 SCHED_GIVE_UP);
    cr_assert_eq(s.accts[0].failed, 0); /* no failure counted */
    cr_assert_eq(s.accts[0].status, ACCOUNT_ACTIVE);
    cr_assert(fx_event(&s, "Account \"a\" opus weekly limit hit — scoped bench 7200s (account "
                           "stays active for other models)"));
    cr_assert_eq(o.retry_after_s, 7200);
    cr_assert_eq(fx_serve(&s, "claude-opus-4-1", NULL, NOW + SEC), -1);
    cr_assert_eq(fx_serve(&s, "claude-sonnet-4-5", NULL, NOW + SEC), 0);
    cr_assert_eq(fx_serve(&s, "claude-opus-4-1", NULL, NOW + 7200 * SEC), 0);
    sched_free(&s);
}

Test(sched_fail, server_side_429_is_provisional_and_neutral)
{
    sched_t s;
    fx_init(&s, 2, NULL);
    sched_request_t r = fx_req("m", NULL);
    sched_pick_t p;
    sched_outcome_t o;
    quota_header_t h[] = {{"retry-after", "120"}};
    const char *msg = "Anthropic is temporarily limiting requests. Please try again later.";
    cr_assert_eq(sched_select(&s, &r, NOW, &p), 0);
    cr_assert_eq(respond(&s, 0, &r, 429, h, 1, "rate_limit_error", msg, NOW, &o), SCHED_RETRY);
    cr_assert_eq(s.accts[0].provisional_until_ms, NOW + 30 * SEC); /* min(retry-after, 30 s) */
    cr_assert_eq(s.accts[0].failed, 0);
    cr_assert_eq(s.accts[0].status, ACCOUNT_ACTIVE);
    /* Second account, same answer: promotion (2 accounts, no success, nobody else). */
    cr_assert_eq(sched_select(&s, &r, NOW, &p), 1);
    cr_assert_eq(respond(&s, 1, &r, 429, h, 1, "rate_limit_error", msg, NOW, &o), SCHED_GIVE_UP);
    cr_assert_eq(o.cause, SCHED_QUEUE_UPSTREAM_THROTTLE);
    cr_assert_eq(o.status, 429);
    cr_assert_str_eq(o.message, "Anthropic is temporarily limiting requests. Maxpool will retry "
                                "automatically when capacity returns.");
    cr_assert_eq(s.throttle.until_ms, NOW + 120 * SEC);
    cr_assert(fx_event(&s, "Anthropic upstream temporarily limiting requests for 120s; pausing "
                           "Claude routes"));
    cr_assert_eq(o.retry_after_s, 120);
    no_leases(&s);
    sched_free(&s);
}

Test(sched_fail, server_side_429_single_account_is_verbatim_capacity)
{
    sched_t s;
    fx_init(&s, 1, NULL);
    sched_request_t r = fx_req("m", NULL);
    sched_pick_t p;
    sched_outcome_t o;
    sched_select(&s, &r, NOW, &p);
    cr_assert_eq(respond(&s, 0, &r, 429, NULL, 0, "overloaded_error", "busy", NOW, &o),
                 SCHED_GIVE_UP);
    cr_assert_eq(o.cause, SCHED_QUEUE_CAPACITY);
    cr_assert(o.verbatim);
    cr_assert_eq(s.throttle.until_ms, 0);
    sched_free(&s);
}

Test(sched_fail, promotion_needs_every_other_account_out)
{
    sched_t s;
    fx_init(&s, 3, NULL);
    sched_options_t *opt = &s.opt;
    opt->max_attempts = 2; /* leave c untried */
    sched_request_t r = fx_req("m", NULL);
    sched_pick_t p;
    sched_outcome_t o;
    sched_select(&s, &r, NOW, &p);
    respond(&s, p.idx, &r, 529, NULL, 0, "overloaded_error", "Overloaded", NOW, &o);
    sched_select(&s, &r, NOW, &p);
    cr_assert_eq(respond(&s, p.idx, &r, 529, NULL, 0, "overloaded_error", "Overloaded", NOW, &o),
                 SCHED_GIVE_UP);
    /* c is healthy and was never asked: no shared throttle, the upstream 529 goes back. */
    cr_assert_eq(s.throttle.until_ms, 0);
    cr_assert_eq(o.cause, SCHED_QUEUE_CAPACITY);
    cr_assert(o.verbatim);
    cr_assert_eq(o.status, 529);
    /* With c session-benched, the same incident promotes. */
    fx_quota(&s, 2, 0.95, NOW + HOUR, QUOTA_UNKNOWN, 0, "");
    cr_assert(sched_throttle_consider(&s, &r, NOW));
    cr_assert_eq(s.throttle.until_ms, NOW + 30 * SEC); /* 529 retry-after default 30 s */
    sched_free(&s);
}

Test(sched_fail, promotion_blocked_by_a_success_since_the_incident)
{
    sched_t s;
    fx_init(&s, 3, NULL);
    sched_request_t r = fx_req("m", NULL);
    sched_pick_t p;
    sched_outcome_t o;
    s.accts[2].enabled = false;
    sched_select(&s, &r, NOW, &p);
    respond(&s, p.idx, &r, 529, NULL, 0, "overloaded_error", "Overloaded", NOW, &o);
    /* Another request succeeds on c meanwhile. */
    s.accts[2].enabled = true;
    s.accts[1].enabled = false;
    cr_assert_eq(fx_serve(&s, "m", NULL, NOW + 1), 2);
    s.accts[2].enabled = false;
    s.accts[1].enabled = true;
    sched_select(&s, &r, NOW + 2, &p);
    cr_assert_eq(
        respond(&s, p.idx, &r, 529, NULL, 0, "overloaded_error", "Overloaded", NOW + 2, &o),
        SCHED_GIVE_UP);
    cr_assert_eq(s.throttle.until_ms, 0);
    sched_free(&s);
}

static void open_throttle(sched_t *s, int secs)
{
    sched_throttle_open(s, secs, "test", 429, NOW);
}

Test(sched_fail, throttle_half_open_probe_success)
{
    sched_t s;
    fx_init(&s, 2, NULL);
    open_throttle(&s, 10);
    sched_request_t r = fx_req("m", NULL), r2 = fx_req("m", NULL);
    sched_pick_t p;
    cr_assert_eq(sched_select(&s, &r, NOW + 9 * SEC, &p), -1);
    cr_assert_eq(p.cause, SCHED_CAUSE_UPSTREAM_THROTTLE);
    cr_assert_eq(p.retry_ms, SEC);
    /* Window over: the first acquisition is the single probe; others wait 1 s. */
    int probe = sched_select(&s, &r, NOW + 10 * SEC, &p);
    cr_assert(probe >= 0);
    cr_assert(r.probe);
    cr_assert(fx_event(&s, "sending one recovery probe"));
    cr_assert_eq(sched_select(&s, &r2, NOW + 10 * SEC, &p), -1);
    cr_assert_eq(p.cause, SCHED_CAUSE_UPSTREAM_PROBE);
    cr_assert_eq(p.retry_ms, SEC);
    sched_outcome_t o;
    cr_assert_eq(respond(&s, probe, &r, 200, NULL, 0, NULL, NULL, NOW + 11 * SEC, &o), SCHED_RELAY);
    cr_assert_eq(s.throttle.until_ms, 0);
    cr_assert_eq(s.throttle.ramp_until_ms, NOW + 16 * SEC);
    cr_assert(fx_event(&s, "throttle cleared (Anthropic accepted recovery probe)"));
    cr_assert(sched_select(&s, &r2, NOW + 11 * SEC, &p) >= 0);
    sched_free(&s);
}

Test(sched_fail, throttle_probe_failures_back_off_then_close)
{
    sched_t s;
    fx_init(&s, 1, NULL);
    open_throttle(&s, 10);
    int64_t t = NOW + 10 * SEC;
    int64_t want[] = {5, 10, 20};
    sched_outcome_t o;
    for (int i = 0; i < 3; i++) {
        sched_request_t r = fx_req("m", NULL);
        sched_pick_t p;
        cr_assert_eq(sched_select(&s, &r, t, &p), 0, "probe %d", i);
        cr_assert(r.probe);
        respond(&s, 0, &r, 529, NULL, 0, "overloaded_error", "Overloaded", t, &o);
        cr_assert_eq(s.throttle.failed_probes, i + 1);
        cr_assert_eq(s.throttle.until_ms, t + want[i] * SEC);
        t = s.throttle.until_ms + 30 * SEC; /* past the provisional pause too */
    }
    sched_request_t r = fx_req("m", NULL);
    sched_pick_t p;
    cr_assert_eq(sched_select(&s, &r, t, &p), 0);
    respond(&s, 0, &r, 529, NULL, 0, "overloaded_error", "Overloaded", t, &o);
    cr_assert_eq(s.throttle.until_ms, 0); /* 4 failures: closed anyway */
    cr_assert(fx_event(&s, "after 4 failed recovery probes"));
    sched_free(&s);
}

Test(sched_fail, throttle_probe_relinquished_without_penalty)
{
    sched_t s;
    fx_init(&s, 1, NULL);
    open_throttle(&s, 10);
    sched_request_t r = fx_req("m", NULL);
    sched_pick_t p;
    cr_assert_eq(sched_select(&s, &r, NOW + 10 * SEC, &p), 0);
    sched_release(&s, 0, &r, NOW + 11 * SEC); /* client left */
    cr_assert_eq(s.throttle.failed_probes, 0);
    cr_assert_not(s.throttle.probe_in_flight);
    sched_request_t r2 = fx_req("m", NULL);
    cr_assert_eq(sched_select(&s, &r2, NOW + 11 * SEC, &p), 0);
    cr_assert(r2.probe);
    /* A non-capacity answer (400) also clears it. */
    sched_outcome_t o;
    cr_assert_eq(
        respond(&s, 0, &r2, 400, NULL, 0, "invalid_request_error", "bad", NOW + 12 * SEC, &o),
        SCHED_PASS);
    cr_assert_eq(s.throttle.until_ms, 0);
    sched_usage_t u = {.status = 400};
    sched_on_complete(&s, 0, &r2, &u, NOW + 12 * SEC);
    cr_assert_eq(s.accts[0].failed, 1);
    no_leases(&s);
    sched_free(&s);
}

Test(sched_fail, network_failures)
{
    sched_t s;
    fx_init(&s, 2, NULL);
    sched_request_t r = fx_req("m", NULL);
    sched_pick_t p;
    sched_outcome_t o;
    sched_select(&s, &r, NOW, &p);
    cr_assert_eq(sched_on_failure(&s, 0, &r, SCHED_FAIL_NETWORK, "ECONNREFUSED", NOW, &o),
                 SCHED_RETRY);
    cr_assert_eq(s.accts[0].cooldown_until_ms, NOW + 5 * SEC);
    cr_assert_eq(s.accts[0].consecutive_failures, 0); /* network class does not bump */
    cr_assert_eq(s.accts[0].failed, 1);
    sched_select(&s, &r, NOW, &p);
    cr_assert_eq(sched_on_failure(&s, 1, &r, SCHED_FAIL_NETWORK, "ECONNREFUSED", NOW, &o),
                 SCHED_GIVE_UP);
    cr_assert_eq(o.cause, SCHED_QUEUE_NETWORK);
    cr_assert_eq(o.status, 503);
    cr_assert_str_eq(o.error_type, "connection_unavailable");
    cr_assert(strstr(o.message, "(ECONNREFUSED)"));
    /* The oracle knows when the cooldowns end. */
    sched_cause_t c;
    cr_assert_eq(sched_next_retry(&s, &r, NOW, &c), 5 * SEC);
    cr_assert_eq(c, SCHED_CAUSE_COOLDOWN);
    /* Mid-stream: never a failover. */
    sched_request_t m = fx_req("m", NULL);
    sched_select(&s, &m, NOW + 5 * SEC, &p);
    m.committed = true;
    cr_assert_eq(
        sched_on_failure(&s, p.idx, &m, SCHED_FAIL_MIDSTREAM, "ETIMEDOUT", NOW + 5 * SEC, &o),
        SCHED_GIVE_UP);
    cr_assert_eq(o.cause, SCHED_QUEUE_NONE);
    /* An OAuth refresh answering 429/5xx: HTTP-class backoff. */
    sched_request_t tr = fx_req("m", NULL);
    sched_select(&s, &tr, NOW + 10 * SEC, &p);
    int ti = p.idx;
    int before = s.accts[ti].consecutive_failures;
    cr_assert_eq(
        sched_on_failure(&s, ti, &tr, SCHED_FAIL_TRANSIENT, "refresh 503", NOW + 10 * SEC, &o),
        SCHED_RETRY);
    cr_assert_eq(s.accts[ti].cooldown_until_ms,
                 NOW + 10 * SEC + sched_backoff_ms(&s.opt, before + 1));
    cr_assert_eq(s.accts[ti].consecutive_failures, before + 1);
    sched_select(&s, &tr, NOW + 10 * SEC, &p);
    sched_release(&s, p.idx, &tr, NOW + 10 * SEC);
    /* Other exceptions: 502 proxy_error. */
    sched_request_t e = fx_req("m", NULL);
    s.opt.max_attempts = 1;
    sched_select(&s, &e, NOW + HOUR, &p);
    cr_assert_eq(sched_on_failure(&s, p.idx, &e, SCHED_FAIL_PROXY, "boom", NOW + HOUR, &o),
                 SCHED_GIVE_UP);
    cr_assert_eq(o.status, 502);
    cr_assert_str_eq(o.message, "Upstream error: boom");
    no_leases(&s);
    sched_free(&s);
}

Test(sched_fail, oauth_401_refreshes_once_then_fails_over)
{
    sched_t s;
    sched_init(&s, NULL);
    for (int i = 0; i < 2; i++) {
        account_t a;
        account_init(&a, i ? "y" : "x", ACCOUNT_OAUTH, "tok");
        sched_add_account(&s, &a, false, NOW);
    }
    sched_request_t r = fx_req("m", NULL);
    sched_pick_t p;
    sched_outcome_t o;
    cr_assert_eq(sched_select(&s, &r, NOW, &p), 0);
    cr_assert_eq(respond(&s, 0, &r, 401, NULL, 0, "authentication_error", "expired", NOW, &o),
                 SCHED_REFRESH);
    cr_assert_eq(sched_select(&s, &r, NOW, &p), 0); /* pinned to the same account */
    cr_assert_str_eq(p.via, "pin");
    cr_assert_eq(respond(&s, 0, &r, 401, NULL, 0, "authentication_error", "expired", NOW, &o),
                 SCHED_RETRY);
    cr_assert_eq(sched_select(&s, &r, NOW, &p), 1);
    cr_assert_eq(respond(&s, 1, &r, 200, NULL, 0, NULL, NULL, NOW, &o), SCHED_RELAY);
    sched_on_complete(&s, 1, &r, NULL, NOW);
    /* Refresh failure on the request path: neutral, excluded, failover. */
    sched_request_t f = fx_req("m", NULL);
    sched_select(&s, &f, NOW + 1, &p);
    int first = p.idx;
    cr_assert_eq(sched_on_failure(&s, first, &f, SCHED_FAIL_REFRESH, NULL, NOW + 1, &o),
                 SCHED_RETRY);
    cr_assert_eq(s.accts[first].failed, first == 0 ? 1 : 0);
    sched_select(&s, &f, NOW + 1, &p);
    cr_assert_eq(sched_on_failure(&s, p.idx, &f, SCHED_FAIL_REFRESH, NULL, NOW + 1, &o),
                 SCHED_GIVE_UP);
    cr_assert_eq(o.status, 401);
    cr_assert_str_eq(o.error_type, "authentication_error");
    no_leases(&s);
    sched_free(&s);
}

Test(sched_fail, headers_on_every_status_and_events)
{
    sched_t s;
    fx_init(&s, 2, NULL);
    sched_request_t r = fx_req("m", NULL);
    sched_pick_t p;
    sched_outcome_t o;
    quota_header_t h[] = {{"anthropic-ratelimit-unified-5h-utilization", "0.92"},
                          {"anthropic-ratelimit-unified-5h-reset", "3600"},
                          {"anthropic-ratelimit-unified-7d-utilization", "0.5"},
                          {"anthropic-ratelimit-unified-7d-reset", "86400"},
                          {"anthropic-ratelimit-unified-status", "allowed_warning"}};
    sched_select(&s, &r, NOW, &p);
    cr_assert_eq(respond(&s, 0, &r, 400, h, 5, "invalid_request_error", "bad", NOW, &o),
                 SCHED_PASS);
    cr_assert_float_eq(s.accts[0].quota.unified5h, 0.92, 1e-9);
    cr_assert(fx_event(&s, "Learned weekly quota for \"a\", re-evaluating selection"));
    sched_on_complete(&s, 0, &r, &(sched_usage_t){.status = 400}, NOW);
    /* The near-quota line comes once per state. */
    sched_request_t r2 = fx_req("m", NULL);
    r2.pin = 0;
    s.accts[0].quota.unified5h = 0.5;
    sched_select(&s, &r2, NOW, &p);
    respond(&s, 0, &r2, 200, h, 5, NULL, NULL, NOW, &o);
    sched_event_t ev;
    int near = 0;
    while (sched_event_pop(&s, &ev))
        if (ev.kind == SCHED_EV_NEAR_QUOTA) {
            near++;
            cr_assert_str_eq(ev.msg,
                             "Account \"a\" at 92% usage — limiting new placement (session quota)");
        }
    cr_assert_eq(near, 0); /* already logged by the first response */
    sched_on_complete(&s, 0, &r2, NULL, NOW);
    no_leases(&s);
    sched_free(&s);
}
