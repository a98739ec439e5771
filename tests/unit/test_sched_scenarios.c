/* SPEC §13 routing and failure scenarios 20–30 and 34–38 at the pure level: the proxy's calls
 * (select → response/failure → complete) replayed against sched in virtual time. The e2e
 * versions against `maxpool sim` come with the proxy. */
#include "sched_fixture.h"

/* Answer tables list only the fields that matter. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

/* One attempt loop as the proxy runs it: each account answers with answer[idx] (status,
 * headers) until RELAY/PASS or GIVE_UP. Returns the serving account or -1; *out the last
 * outcome. */
typedef struct answer {
    int status;
    const quota_header_t *h;
    size_t n;
    const char *type, *msg;
    bool network; /* connection refused instead of a response */
} answer_t;

static int drive(sched_t *s, sched_request_t *r, const answer_t *ans, int64_t t,
                 sched_outcome_t *out, sched_pick_t *pick)
{
    for (int guard = 0; guard < 16; guard++) {
        sched_pick_t p;
        int i = sched_select(s, r, t, &p);
        if (pick) *pick = p;
        if (i < 0) return -1;
        const answer_t *a = &ans[i];
        sched_action_t act;
        if (a->network) {
            act = sched_on_failure(s, i, r, SCHED_FAIL_NETWORK, "ECONNREFUSED", t, out);
        } else {
            sched_response_t resp =
                fx_resp(a->status ? a->status : 200, a->h, a->n, a->type, a->msg);
            act = sched_on_response(s, i, r, &resp, t, out);
        }
        if (act == SCHED_RELAY || act == SCHED_PASS) {
            sched_usage_t u = {.status = a->status ? a->status : 200};
            sched_on_complete(s, i, r, &u, t);
            return i;
        }
        if (act == SCHED_GIVE_UP) return -1;
    }
    cr_assert_fail("attempt loop did not end");
    return -1;
}

static int request(sched_t *s, const char *session, const answer_t *ans, int64_t t,
                   sched_outcome_t *out)
{
    sched_request_t r = fx_req("claude-sonnet-4-5", session);
    sched_outcome_t o;
    return drive(s, &r, ans, t, out ? out : &o, NULL);
}

static const answer_t OK2[2] = {{200}, {200}};

Test(scenario, s20_two_healthy_accounts_both_used)
{
    sched_t s;
    fx_init(&s, 2, NULL);
    int used[2] = {0, 0};
    for (int i = 0; i < 10; i++)
        used[request(&s, NULL, OK2, NOW + i * SEC, NULL)]++;
    cr_assert(used[0] >= 3 && used[1] >= 3, "a=%d b=%d", used[0], used[1]);
    sched_free(&s);
}

Test(scenario, s21_session_threshold)
{
    quota_header_t h[] = {{"anthropic-ratelimit-unified-5h-utilization", "0.95"},
                          {"anthropic-ratelimit-unified-5h-reset", "3600"}};
    answer_t ans[2] = {{200, h, 2}, {200}};
    for (int run = 0; run < 2; run++) {
        sched_options_t o;
        sched_options_default(&o);
        if (run) o.switch_threshold = 0.97;
        sched_t s;
        fx_init(&s, 2, &o);
        s.accts[1].enabled = false;
        cr_assert_eq(request(&s, NULL, ans, NOW, NULL), 0); /* learns 0.95 */
        sched_request_t r = fx_req("m", NULL);
        sched_outcome_t out;
        sched_pick_t p;
        int got = drive(&s, &r, ans, NOW + SEC, &out, &p);
        if (!run) {
            cr_assert_eq(got, -1); /* benched: held / 429 */
            cr_assert_eq(p.cause, SCHED_CAUSE_SESSION_LIMIT);
            cr_assert_eq(p.retry_ms, HOUR - SEC);
        } else {
            cr_assert_eq(got, 0);
        }
        sched_free(&s);
    }
}

Test(scenario, s22_reserve_account_yields_to_healthy)
{
    sched_t s;
    fx_init(&s, 2, NULL);
    quota_header_t ha[] = {{"anthropic-ratelimit-unified-7d-utilization", "0.90"},
                           {"anthropic-ratelimit-unified-7d-reset", "300000"},
                           {"anthropic-ratelimit-unified-status", "allowed"}};
    quota_header_t hb[] = {{"anthropic-ratelimit-unified-7d-utilization", "0.10"},
                           {"anthropic-ratelimit-unified-7d-reset", "300000"}};
    answer_t ans[2] = {{200, ha, 3}, {200, hb, 2}};
    request(&s, NULL, ans, NOW, NULL);
    request(&s, NULL, ans, NOW + 1, NULL);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(request(&s, NULL, ans, NOW + 10 + i, NULL), 1);
    s.accts[1].enabled = false;
    cr_assert_eq(request(&s, NULL, ans, NOW + 20, NULL), 0);
    quota_header_t rej[] = {{"anthropic-ratelimit-unified-7d-utilization", "0.999"},
                            {"anthropic-ratelimit-unified-7d-reset", "300000"},
                            {"anthropic-ratelimit-unified-status", "rejected"}};
    answer_t ans2[2] = {{200, rej, 3}, {200, hb, 2}};
    request(&s, NULL, ans2, NOW + 30, NULL);
    s.accts[1].enabled = true;
    for (int i = 0; i < 5; i++)
        cr_assert_eq(request(&s, NULL, ans2, NOW + 40 + i, NULL), 1);
    s.accts[1].enabled = false;
    cr_assert_eq(request(&s, NULL, ans2, NOW + 50, NULL), -1); /* never chosen */
    sched_free(&s);
}

Test(scenario, s23_full_weekly_but_allowed_is_last_resort)
{
    sched_t s;
    fx_init(&s, 1, NULL);
    quota_header_t h[] = {{"anthropic-ratelimit-unified-7d-utilization", "1.0"},
                          {"anthropic-ratelimit-unified-7d-reset", "300000"},
                          {"anthropic-ratelimit-unified-status", "allowed_warning"}};
    answer_t ans[1] = {{200, h, 3}};
    cr_assert_eq(request(&s, NULL, ans, NOW, NULL), 0);
    cr_assert_eq(sched_weekly_raw(&s, &s.accts[0]), SCHED_TIER_CRITICAL);
    cr_assert_eq(request(&s, NULL, ans, NOW + SEC, NULL), 0);
    sched_free(&s);
}

Test(scenario, s24_sticky_session_returns_home)
{
    sched_t s;
    fx_init(&s, 2, NULL);
    int home = request(&s, "s", OK2, NOW, NULL);
    for (int i = 1; i <= 5; i++)
        cr_assert_eq(request(&s, "s", OK2, NOW + i * SEC, NULL), home);
    quota_header_t ra[] = {{"retry-after", "30"}};
    answer_t ans[2] = {{200}, {200}};
    ans[home] = (answer_t){429, ra, 1, "rate_limit_error", "Session limit reached"};
    cr_assert_eq(request(&s, "s", ans, NOW + 10 * SEC, NULL), 1 - home);
    cr_assert_eq(request(&s, "s", OK2, NOW + 20 * SEC, NULL), 1 - home);
    cr_assert_eq(request(&s, "s", OK2, NOW + 40 * SEC, NULL), home);
    sched_free(&s);
}

Test(scenario, s25_preferred_account)
{
    sched_options_t o;
    sched_options_default(&o);
    o.preferred_mode = true;
    snprintf(o.preferred, sizeof o.preferred, "b");
    sched_t s;
    fx_init(&s, 2, &o);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(request(&s, NULL, OK2, NOW + i, NULL), 1);
    quota_header_t ra[] = {{"retry-after", "10"}};
    answer_t ans[2] = {{200}, {429, ra, 1, "rate_limit_error", "Session limit reached"}};
    cr_assert_eq(request(&s, NULL, ans, NOW + SEC, NULL), 0); /* same request, served by A */
    cr_assert_eq(request(&s, NULL, OK2, NOW + 2 * SEC, NULL), 0);
    cr_assert_eq(request(&s, NULL, OK2, NOW + 11 * SEC, NULL), 1);
    s.accts[1].enabled = false;
    cr_assert_eq(request(&s, NULL, OK2, NOW + 12 * SEC, NULL), 0);
    sched_free(&s);
}

Test(scenario, s26_reset_in_the_past_clears_on_next_request)
{
    sched_t s;
    fx_init(&s, 1, NULL);
    quota_header_t h[] = {{"anthropic-ratelimit-unified-5h-utilization", "0.95"},
                          {"anthropic-ratelimit-unified-5h-reset", "60"}};
    answer_t ans[1] = {{200, h, 2}};
    request(&s, NULL, ans, NOW, NULL);
    fx_event(&s, "");
    cr_assert_eq(request(&s, NULL, OK2, NOW + 30 * SEC, NULL), -1);
    cr_assert_eq(request(&s, NULL, OK2, NOW + 61 * SEC, NULL), 0);
    cr_assert_eq(s.accts[0].quota.unified5h, QUOTA_UNKNOWN);
    cr_assert(fx_event(&s, "Account \"a\" session quota reset"));
    sched_free(&s);
}

Test(scenario, s27_model_scoped_bench)
{
    sched_t s;
    fx_init(&s, 1, NULL);
    quota_header_t h[] = {{"retry-after", "7200"},
                          {"anthropic-ratelimit-unified-5h-utilization", "0.3"},
                          {"anthropic-ratelimit-unified-7d-utilization", "0.4"}};
    answer_t ans[1] = {{429, h, 3, "rate_limit_error", "Rate limited"}};
    sched_request_t opus = fx_req("claude-opus-4-1", NULL);
    sched_outcome_t out;
    cr_assert_eq(drive(&s, &opus, ans, NOW, &out, NULL), -1);
    sched_request_t opus2 = fx_req("claude-opus-4-1", NULL);
    cr_assert_eq(drive(&s, &opus2, OK2, NOW + SEC, &out, NULL), -1);
    sched_request_t sonnet = fx_req("claude-sonnet-4-5", NULL);
    cr_assert_eq(drive(&s, &sonnet, OK2, NOW + SEC, &out, NULL), 0);
    sched_free(&s);
}

Test(scenario, s28_account_429_fails_over_in_the_same_request)
{
    sched_t s;
    fx_init(&s, 2, NULL);
    quota_header_t ra[] = {{"retry-after", "7"}};
    answer_t ans[2] = {{429, ra, 1, "rate_limit_error", "Session limit reached"}, {200}};
    sched_outcome_t out;
    cr_assert_eq(request(&s, NULL, ans, NOW, &out), 1);
    cr_assert_eq(s.accts[0].status, ACCOUNT_THROTTLED);
    cr_assert_eq(s.accts[0].rate_limited_until_ms, NOW + 7 * SEC);
    sched_free(&s);
}

Test(scenario, s29_both_accounts_429_hold_until_the_first_returns)
{
    sched_t s;
    fx_init(&s, 2, NULL);
    quota_header_t r3[] = {{"retry-after", "3"}}, r5[] = {{"retry-after", "5"}};
    answer_t ans[2] = {{429, r3, 1, "rate_limit_error", "Session limit reached"},
                       {429, r5, 1, "rate_limit_error", "Session limit reached"}};
    sched_request_t r = fx_req("m", NULL);
    sched_outcome_t out;
    cr_assert_eq(drive(&s, &r, ans, NOW, &out, NULL), -1);
    cr_assert_eq(out.cause, SCHED_QUEUE_QUOTA);
    cr_assert_eq(out.retry_after_s, 3); /* held ~3 s */
    sched_cause_t c;
    cr_assert_eq(sched_next_retry(&s, &r, NOW, &c), 3 * SEC);
    cr_assert_eq(c, SCHED_CAUSE_RATE_LIMITED);
    /* Resumed from the queue: attempt 0, empty exclusions. */
    cr_assert_eq(r.attempt, 1);
    sched_request_restart(&r);
    cr_assert_eq(r.attempt, 0);
    cr_assert_not(account_mask_has(&r.tried, 0));
    r.queue_admitted = true;
    cr_assert_eq(drive(&s, &r, OK2, NOW + 3 * SEC, &out, NULL), 0);
    sched_free(&s);
}

Test(scenario, s30_identical_429_opens_the_shared_throttle)
{
    sched_t s;
    fx_init(&s, 2, NULL);
    quota_header_t ra[] = {{"retry-after", "4"}};
    const char *msg = "Number of request tokens has exceeded your rate limit";
    answer_t ans[2] = {{429, ra, 1, "rate_limit_error", msg},
                       {429, ra, 1, "rate_limit_error", msg}};
    sched_request_t r = fx_req("m", NULL);
    sched_outcome_t out;
    cr_assert_eq(drive(&s, &r, ans, NOW, &out, NULL), -1);
    cr_assert_eq(out.cause, SCHED_QUEUE_UPSTREAM_THROTTLE);
    cr_assert_eq(s.throttle.until_ms, NOW + 4 * SEC);
    /* The first account's account-level pause was lifted: it is the upstream's fault. */
    cr_assert_eq(s.accts[0].status, ACCOUNT_ACTIVE);
    cr_assert(fx_event(&s, "pausing Claude routes"));
    sched_cause_t c;
    cr_assert_eq(sched_next_retry(&s, &r, NOW + SEC, &c), 3 * SEC);
    cr_assert_eq(c, SCHED_CAUSE_UPSTREAM_THROTTLE);
    /* After retry-after: one probe first, the others wait; its success clears it. */
    sched_request_t probe = fx_req("m", NULL), other = fx_req("m", NULL);
    sched_pick_t p;
    int i = sched_select(&s, &probe, NOW + 4 * SEC, &p);
    cr_assert(i >= 0 && probe.probe);
    cr_assert_eq(sched_select(&s, &other, NOW + 4 * SEC, &p), -1);
    sched_response_t ok = fx_resp(200, NULL, 0, NULL, NULL);
    cr_assert_eq(sched_on_response(&s, i, &probe, &ok, NOW + 5 * SEC, &out), SCHED_RELAY);
    sched_on_complete(&s, i, &probe, NULL, NOW + 5 * SEC);
    cr_assert_eq(s.throttle.until_ms, 0);
    cr_assert(sched_select(&s, &other, NOW + 5 * SEC, &p) >= 0);
    sched_free(&s);
}

Test(scenario, s34_server_error_cooldown_doubles)
{
    sched_t s;
    fx_init(&s, 2, NULL);
    answer_t ans[2] = {{500, NULL, 0, "api_error", "Internal server error"}, {200}};
    cr_assert_eq(request(&s, NULL, ans, NOW, NULL), 1);
    cr_assert_eq(s.accts[0].cooldown_until_ms, NOW + 30 * SEC);
    sched_request_t r = fx_req("m", NULL);
    r.pin = 0;
    sched_outcome_t out;
    cr_assert_eq(drive(&s, &r, ans, NOW + 30 * SEC, &out, NULL), 1);
    cr_assert_eq(s.accts[0].cooldown_until_ms, NOW + 90 * SEC); /* 60 s */
    sched_free(&s);
}

Test(scenario, s35_unreachable_upstream_cools_each_account)
{
    sched_t s;
    fx_init(&s, 2, NULL);
    answer_t ans[2] = {{.network = true}, {.network = true}};
    sched_outcome_t out;
    cr_assert_eq(request(&s, NULL, ans, NOW, &out), -1);
    cr_assert_eq(out.cause, SCHED_QUEUE_NETWORK); /* the queue soaks ≤ 45 s non-stream */
    cr_assert_eq(out.status, 503);
    cr_assert_str_eq(out.error_type, "connection_unavailable");
    cr_assert(strstr(out.message, "ECONNREFUSED"));
    cr_assert_eq(s.accts[0].cooldown_until_ms, NOW + 5 * SEC);
    cr_assert_eq(s.accts[1].cooldown_until_ms, NOW + 5 * SEC);
    sched_free(&s);
}

Test(scenario, s36_client_error_passes_through_without_failover)
{
    sched_t s;
    fx_init(&s, 2, NULL);
    answer_t ans[2] = {{400, NULL, 0, "invalid_request_error", "bad"},
                       {400, NULL, 0, "invalid_request_error", "bad"}};
    sched_request_t r = fx_req("m", NULL);
    sched_outcome_t out;
    int i = drive(&s, &r, ans, NOW, &out, NULL);
    cr_assert(i >= 0);
    cr_assert_eq(r.attempt, 0);
    cr_assert_eq(s.accts[i].failed, 1);
    cr_assert_eq(s.accts[1 - i].failed + s.accts[1 - i].completed, 0);
    sched_free(&s);
}

Test(scenario, s37_stall_after_first_event_vs_before)
{
    sched_t s;
    fx_init(&s, 2, NULL);
    sched_request_t r = fx_req("m", NULL);
    sched_pick_t p;
    sched_outcome_t out;
    int i = sched_select(&s, &r, NOW, &p);
    sched_response_t ok = fx_resp(200, NULL, 0, NULL, NULL);
    sched_on_response(&s, i, &r, &ok, NOW, &out);
    r.committed = true; /* one SSE event relayed, then the idle timeout */
    cr_assert_eq(
        sched_on_failure(&s, i, &r, SCHED_FAIL_MIDSTREAM, "ETIMEDOUT", NOW + 30 * SEC, &out),
        SCHED_GIVE_UP);
    cr_assert_eq(s.accts[i].cooldown_until_ms, NOW + 35 * SEC);
    /* Stall before the first event: a failover instead. */
    sched_request_t r2 = fx_req("m", NULL);
    int j = sched_select(&s, &r2, NOW + 40 * SEC, &p);
    cr_assert_eq(
        sched_on_failure(&s, j, &r2, SCHED_FAIL_NETWORK, "ETIMEDOUT", NOW + 70 * SEC, &out),
        SCHED_RETRY);
    cr_assert(sched_select(&s, &r2, NOW + 70 * SEC, &p) >= 0);
    cr_assert_neq(p.idx, j);
    sched_free(&s);
}

Test(scenario, s38_large_body_is_not_retried)
{
    sched_t s;
    fx_init(&s, 2, NULL);
    quota_header_t ra[] = {{"retry-after", "7"}};
    answer_t ans[2] = {{429, ra, 1, "rate_limit_error", "Session limit reached"},
                       {429, ra, 1, "rate_limit_error", "Session limit reached"}};
    sched_request_t r = fx_req("m", NULL);
    r.body_bytes = 10485761;
    sched_outcome_t out;
    cr_assert_eq(drive(&s, &r, ans, NOW, &out, NULL), -1);
    cr_assert_eq(r.attempt, 0);
    cr_assert_eq(out.status, 429);
    int touched = (s.accts[0].failed > 0) + (s.accts[1].failed > 0);
    cr_assert_eq(touched, 1);
    sched_free(&s);
}
