/* sched/quota: §4.1 header parsing, reset rules and expiry (Part A3/A4), in virtual time. */
#include <criterion/criterion.h>

#include "sched/quota.h"

#define NOW 1767225600000LL /* 2026-01-01T00:00:00Z */

Test(quota, reset_value_forms)
{
    cr_assert_eq(quota_parse_reset("1767229200", NOW), 1767229200000LL);    /* unix seconds */
    cr_assert_eq(quota_parse_reset("1767229200123", NOW), 1767229200123LL); /* unix ms */
    cr_assert_eq(quota_parse_reset("30", NOW), NOW + 30000);                /* delay seconds */
    cr_assert_eq(quota_parse_reset("30, 99", NOW), NOW + 30000);            /* first item */
    cr_assert_eq(quota_parse_reset("2026-01-01T01:00:00Z", NOW), NOW + 3600000);
    cr_assert_eq(quota_parse_reset("2026-01-01T01:00:00.5Z", NOW), NOW + 3600500);
    cr_assert_eq(quota_parse_reset("2026-01-01T02:00:00+01:00", NOW), NOW + 3600000);
    cr_assert_eq(quota_parse_reset("Thu, 01 Jan 2026 00:00:10 GMT", NOW), NOW + 10000);
    cr_assert_eq(quota_parse_reset("soon", NOW), 0);
    cr_assert_eq(quota_parse_reset(NULL, NOW), 0);
}

Test(quota, retry_after_is_clamped)
{
    cr_assert_eq(quota_parse_retry_after("7", NOW), 7);
    cr_assert_eq(quota_parse_retry_after("0", NOW), 1);
    cr_assert_eq(quota_parse_retry_after("999999", NOW), 86400);
    cr_assert_eq(quota_parse_retry_after("Thu, 01 Jan 2026 00:01:00 GMT", NOW), 60);
    cr_assert_eq(quota_parse_retry_after("x", NOW), 0);
    cr_assert_eq(quota_parse_retry_after(NULL, NOW), 0);
}

Test(quota, unified_headers_and_expiry)
{
    quota_t q;
    quota_init(&q);
    quota_header_t h[] = {
        {"Anthropic-Ratelimit-Unified-5h-Utilization", "0.95"},
        {"anthropic-ratelimit-unified-5h-reset", "1767229200"},
        {"anthropic-ratelimit-unified-7d-utilization", "1.7"},
        {"anthropic-ratelimit-unified-7d-reset", "1767600000"},
        {"anthropic-ratelimit-unified-status", "allowed_warning"},
    };
    quota_apply_headers(&q, h, 5, NOW);
    cr_assert_float_eq(q.unified5h, 0.95, 1e-9);
    cr_assert_float_eq(q.unified7d, 1.0, 1e-9); /* clamp01 */
    cr_assert_eq(q.unified5h_reset_ms, 1767229200000LL);
    cr_assert_str_eq(q.unified_status, "allowed_warning");
    cr_assert_eq(q.total_requests, 1);
    cr_assert_eq(quota_expire(&q, 1767229200000LL - 1), 0);
    /* Exactly at the reset the session window clears (§13 scenario 26). */
    cr_assert_eq(quota_expire(&q, 1767229200000LL), QUOTA_RESET_5H);
    cr_assert_eq(q.unified5h, QUOTA_UNKNOWN);
    cr_assert_float_eq(q.unified7d, 1.0, 1e-9);
    cr_assert_eq(quota_expire(&q, 1767600000000LL), QUOTA_RESET_7D);
    cr_assert_str_eq(q.unified_status, "");
}

Test(quota, utilization_without_reset_expires_conservatively)
{
    quota_t q;
    quota_init(&q);
    quota_header_t h[] = {{"anthropic-ratelimit-unified-5h-utilization", "1.0"},
                          {"anthropic-ratelimit-unified-7d-utilization", "0.2"}};
    quota_apply_headers(&q, h, 2, NOW);
    cr_assert_eq(q.unified5h_reset_ms, NOW + 5 * 3600 * 1000LL);
    cr_assert_eq(q.unified7d_reset_ms, NOW + 7 * 24 * 3600 * 1000LL);
    cr_assert_eq(quota_expire(&q, NOW + 5 * 3600 * 1000LL), QUOTA_RESET_5H);
}

Test(quota, rejected_needs_a_full_window)
{
    quota_t q;
    quota_init(&q);
    quota_header_t h[] = {{"anthropic-ratelimit-unified-5h-utilization", "0.5"},
                          {"anthropic-ratelimit-unified-status", "rejected"}};
    quota_apply_headers(&q, h, 2, NOW);
    cr_assert_str_eq(q.unified_status, "allowed");
    cr_assert_not(quota_rejected(&q));
    quota_header_t h2[] = {{"anthropic-ratelimit-unified-5h-utilization", "0.9995"},
                           {"anthropic-ratelimit-unified-status", "rejected"}};
    quota_apply_headers(&q, h2, 2, NOW);
    cr_assert(quota_rejected(&q));
}

Test(quota, api_key_and_generic_buckets)
{
    quota_t q;
    quota_init(&q);
    quota_header_t h[] = {
        {"anthropic-ratelimit-tokens-limit", "400000"},
        {"anthropic-ratelimit-tokens-remaining", "399000"},
        {"anthropic-ratelimit-tokens-reset", "2026-01-01T00:01:00Z"},
        {"anthropic-ratelimit-requests-limit", "4000"},
        {"anthropic-ratelimit-requests-remaining", "3999"},
        {"anthropic-ratelimit-requests-reset", "2026-01-01T00:00:30Z"},
        {"x-ratelimit-limit-requests", "100, 5"},
        {"ratelimit-remaining", "7"},
    };
    quota_apply_headers(&q, h, 8, NOW);
    cr_assert_eq(q.tokens_limit, 400000);
    cr_assert_eq(q.tokens_remaining, 399000);
    cr_assert_eq(q.requests_remaining, 3999);
    cr_assert_eq(q.resets_at_ms, NOW + 60000); /* the token reset wins */
    cr_assert_eq(q.generic_limit, 100);
    cr_assert_eq(q.generic_remaining, 7);
    cr_assert_eq(quota_expire(&q, NOW + 60000), QUOTA_RESET_API);
    cr_assert_eq(q.tokens_remaining, -1);
}

Test(quota, usage_probe)
{
    quota_t q;
    quota_init(&q);
    quota_probe_t p;
    quota_probe_init(&p);
    p.session = 0.4;
    p.session_reset_ms = NOW + 3600000;
    p.scoped[0] = (struct quota_probe_scoped){.family = QUOTA_FAMILY_OPUS,
                                              .utilization = 0.5,
                                              .reset_ms = NOW + 86400000,
                                              .active = true};
    p.n_scoped = 1;
    quota_apply_probe(&q, &p, NOW);
    cr_assert_float_eq(q.unified5h, 0.4, 1e-12);
    cr_assert_eq(q.unified7d, QUOTA_UNKNOWN);
    cr_assert(q.weekly_absent); /* no weekly bucket: the plan has no weekly cap */
    cr_assert_eq(q.last_probe_ok_ms, NOW);
    cr_assert_float_eq(q.scoped[QUOTA_FAMILY_OPUS].utilization, 0.5, 1e-12);
    /* A weekly bucket without a reset expires by the A4 default. */
    p.weekly = 0.3;
    quota_apply_probe(&q, &p, NOW);
    cr_assert_not(q.weekly_absent);
    cr_assert_eq(q.unified7d_reset_ms, NOW + 7 * 86400000LL);
    /* A reactive scoped bench from a 429 is not lowered by a poll while it lasts. */
    quota_set_scoped(&q, QUOTA_FAMILY_OPUS, 1.0, NOW + 7200000, true);
    quota_apply_probe(&q, &p, NOW + 1000);
    cr_assert_float_eq(q.scoped[QUOTA_FAMILY_OPUS].utilization, 1.0, 1e-12);
    quota_apply_probe(&q, &p, NOW + 7200000);
    cr_assert_float_eq(q.scoped[QUOTA_FAMILY_OPUS].utilization, 0.5, 1e-12);
}
