/* sched formulas in virtual time (§5.3, §5.4, §5.7, §5.8, §5.10, §5.11, §3.6, §6.3):
 * boundaries (thresholds exactly hit, resets in the past, missing resets, null utilizations). */
#include "sched_fixture.h"

#define EPS 1e-9

/* ------------------------------------------------------------ §5.7 S() */

Test(sched_formula, scarcity_window)
{
    cr_assert_float_eq(sched_scarcity(QUOTA_UNKNOWN, NOW + HOUR, 5 * HOUR, NOW), 0, EPS);
    cr_assert_float_eq(sched_scarcity(0.4, 0, 5 * HOUR, NOW), 0.4, EPS);       /* reset unknown */
    cr_assert_float_eq(sched_scarcity(0.4, NOW - 1, 5 * HOUR, NOW), 0.4, EPS); /* reset past */
    cr_assert_float_eq(sched_scarcity(0.4, NOW, 5 * HOUR, NOW), 0.4, EPS);     /* reset = now */
    cr_assert_float_eq(sched_scarcity(1.7, 0, 5 * HOUR, NOW), 1.0, EPS);       /* clamp01 */
    /* Just opened: nothing elapsed, the whole usage is ahead of an even burn. */
    cr_assert_float_eq(sched_scarcity(0.5, NOW + 5 * HOUR, 5 * HOUR, NOW), 0.5, EPS);
    /* Half elapsed: only usage beyond 50 % counts; at or below it is 0 (use it or lose it). */
    cr_assert_float_eq(sched_scarcity(0.7, NOW + 150 * MIN, 5 * HOUR, NOW), 0.2, EPS);
    cr_assert_float_eq(sched_scarcity(0.5, NOW + 150 * MIN, 5 * HOUR, NOW), 0.0, EPS);
    cr_assert_float_eq(sched_scarcity(0.3, NOW + 150 * MIN, 5 * HOUR, NOW), 0.0, EPS);
    /* A reset further away than the window length counts as nothing elapsed. */
    cr_assert_float_eq(sched_scarcity(0.3, NOW + 9 * HOUR, 5 * HOUR, NOW), 0.3, EPS);
}

/* ------------------------------------------------------------ §5.4 tiers */

static sched_tier_t raw7(sched_t *s, double u7, const char *status)
{
    fx_quota(s, 0, QUOTA_UNKNOWN, 0, u7, u7 >= 0 ? NOW + DAY : 0, status);
    return sched_weekly_raw(s, &s->accts[0]);
}

Test(sched_formula, weekly_raw_thresholds_exactly_hit)
{
    sched_t s;
    fx_init(&s, 1, NULL);
    cr_assert_eq(raw7(&s, QUOTA_UNKNOWN, ""), SCHED_TIER_UNKNOWN); /* null utilization */
    cr_assert_eq(raw7(&s, 0.0, ""), SCHED_TIER_NORMAL);
    cr_assert_eq(raw7(&s, 0.6499, ""), SCHED_TIER_NORMAL);
    cr_assert_eq(raw7(&s, 0.65, ""), SCHED_TIER_SOFT);
    cr_assert_eq(raw7(&s, 0.8499, ""), SCHED_TIER_SOFT);
    cr_assert_eq(raw7(&s, 0.85, ""), SCHED_TIER_RESERVE);
    cr_assert_eq(raw7(&s, 0.95, ""), SCHED_TIER_CRITICAL);
    cr_assert_eq(raw7(&s, 0.9989, ""), SCHED_TIER_CRITICAL);
    cr_assert_eq(raw7(&s, 0.999, ""), SCHED_TIER_EXHAUSTED);
    cr_assert_eq(raw7(&s, 0.999, "allowed"), SCHED_TIER_CRITICAL); /* §13 scenario 23 */
    cr_assert_eq(raw7(&s, 1.0, "allowed_warning"), SCHED_TIER_CRITICAL);
    cr_assert_eq(raw7(&s, 0.999, "rejected"), SCHED_TIER_EXHAUSTED);
    sched_free(&s);
}

Test(sched_formula, weekly_thresholds_come_from_options)
{
    sched_options_t o;
    sched_options_default(&o);
    o.weekly_soft = 0.5;
    o.weekly_reserve = 0.6;
    o.weekly_critical = 0.7;
    o.weekly_exhausted = 0.8;
    sched_t s;
    fx_init(&s, 1, &o);
    cr_assert_eq(raw7(&s, 0.5, ""), SCHED_TIER_SOFT);
    cr_assert_eq(raw7(&s, 0.6, ""), SCHED_TIER_RESERVE);
    cr_assert_eq(raw7(&s, 0.7, ""), SCHED_TIER_CRITICAL);
    cr_assert_eq(raw7(&s, 0.8, ""), SCHED_TIER_EXHAUSTED);
    sched_free(&s);
}

Test(sched_formula, a3_five_hour_rejection_is_a_session_bench)
{
    sched_t s;
    fx_init(&s, 1, NULL);
    account_t *a = &s.accts[0];
    fx_quota(&s, 0, 1.0, NOW + HOUR, 0.2, NOW + 3 * DAY, "rejected");
    cr_assert_eq(sched_weekly_raw(&s, a), SCHED_TIER_NORMAL);
    cr_assert(sched_session_benched(&s, a));
    cr_assert_not(sched_available(&s, 0, QUOTA_FAMILY_NONE, true, true, NOW));
    /* The oracle keys on the 5h reset, not the weekly one. */
    sched_request_t r = fx_req("claude-sonnet-4", NULL);
    sched_cause_t c;
    cr_assert_eq(sched_next_retry(&s, &r, NOW, &c), HOUR);
    cr_assert_eq(c, SCHED_CAUSE_SESSION_LIMIT);
    /* Even with switchThreshold 1.0 the rejection benches until the reset. */
    s.opt.switch_threshold = 1.0;
    fx_quota(&s, 0, 0.9995, NOW + HOUR, 0.2, NOW + 3 * DAY, "rejected");
    cr_assert(sched_session_benched(&s, a));
    /* At the 5h reset the window and the bench clear. */
    cr_assert(sched_available(&s, 0, QUOTA_FAMILY_NONE, true, true, NOW + HOUR));
    cr_assert(fx_event(&s, "Account \"a\" session quota reset"));
    sched_free(&s);
}

Test(sched_formula, cap_utilization_caps_both_windows)
{
    sched_t s;
    fx_init(&s, 1, NULL);
    account_t *a = &s.accts[0];
    a->cap_utilization = 0.5;
    fx_quota(&s, 0, 0.49, NOW + HOUR, 0.49, NOW + DAY, "allowed");
    cr_assert_not(sched_session_benched(&s, a));
    cr_assert_eq(sched_weekly_raw(&s, a), SCHED_TIER_NORMAL);
    fx_quota(&s, 0, 0.5, NOW + HOUR, 0.5, NOW + DAY, "allowed");
    cr_assert(sched_session_benched(&s, a));                  /* min(switchThreshold, cap) */
    cr_assert_eq(sched_weekly_raw(&s, a), SCHED_TIER_CAPPED); /* outranks "allowed" */
    /* Out-of-range caps are ignored (§2.4). */
    a->cap_utilization = 1.0;
    cr_assert_eq(sched_weekly_raw(&s, a), SCHED_TIER_NORMAL);
    a->cap_utilization = 0;
    cr_assert_not(sched_session_benched(&s, a));
    sched_free(&s);
}

Test(sched_formula, pace_and_burn_debt)
{
    sched_t s;
    fx_init(&s, 1, NULL);
    account_t *a = &s.accts[0];
    sched_tier_t pace;
    /* Half the week elapsed, 70 % used: debt 0.2 × 0.6 → 0.82 (soft). */
    fx_quota(&s, 0, QUOTA_UNKNOWN, 0, 0.7, NOW + 84 * HOUR, "allowed");
    cr_assert_float_eq(sched_weekly_effective(&s, a, NOW, &pace), 0.82, 1e-9);
    cr_assert_eq(pace, SCHED_TIER_SOFT);
    cr_assert_eq(sched_weekly_display(&s, a, NOW), SCHED_TIER_SOFT);
    /* On pace or under: no debt. */
    fx_quota(&s, 0, QUOTA_UNKNOWN, 0, 0.4, NOW + 84 * HOUR, "allowed");
    cr_assert_float_eq(sched_weekly_effective(&s, a, NOW, &pace), 0.4, 1e-9);
    cr_assert_eq(pace, SCHED_TIER_NORMAL);
    /* Early heavy burn: 0.8 used with 10 % elapsed → 0.8 + 0.7 × 0.6 = 1.22. Display stops at
     * critical (the upstream did not say exhausted). */
    fx_quota(&s, 0, QUOTA_UNKNOWN, 0, 0.8, NOW + (int64_t)(0.9 * 7 * DAY), "allowed");
    cr_assert_float_eq(sched_weekly_effective(&s, a, NOW, &pace), 1.22, 1e-6);
    cr_assert_eq(pace, SCHED_TIER_EXHAUSTED);
    cr_assert_eq(sched_weekly_raw(&s, a), SCHED_TIER_SOFT);
    cr_assert_eq(sched_weekly_display(&s, a, NOW), SCHED_TIER_CRITICAL);
    /* The effective usage is capped at 1.5. */
    fx_quota(&s, 0, QUOTA_UNKNOWN, 0, 0.98, NOW + 7 * DAY, "allowed");
    cr_assert_float_eq(sched_weekly_effective(&s, a, NOW, NULL), 1.5, 1e-9);
    /* Reset unknown or past: no elapsed time to compare with, effective = used. */
    fx_quota(&s, 0, QUOTA_UNKNOWN, 0, 0.7, 0, "allowed");
    cr_assert_float_eq(sched_weekly_effective(&s, a, NOW, NULL), 0.7, 1e-9);
    fx_quota(&s, 0, QUOTA_UNKNOWN, 0, 0.7, NOW - 1, "allowed");
    cr_assert_float_eq(sched_weekly_effective(&s, a, NOW, NULL), 0.7, 1e-9);
    /* Unknown weekly: display unknown. */
    fx_quota(&s, 0, QUOTA_UNKNOWN, 0, QUOTA_UNKNOWN, 0, "");
    cr_assert_eq(sched_weekly_display(&s, a, NOW), SCHED_TIER_UNKNOWN);
    sched_free(&s);
}

/* ------------------------------------------------------------ §5.3 availability */

Test(sched_formula, session_bench_boundaries)
{
    sched_t s;
    fx_init(&s, 1, NULL);
    account_t *a = &s.accts[0];
    fx_quota(&s, 0, 0.8999, NOW + HOUR, QUOTA_UNKNOWN, 0, "");
    cr_assert_not(sched_session_benched(&s, a));
    fx_quota(&s, 0, 0.9, NOW + HOUR, QUOTA_UNKNOWN, 0, "");
    cr_assert(sched_session_benched(&s, a)); /* exactly the threshold */
    s.opt.switch_threshold = 0;              /* 0 reads as 0.90 */
    cr_assert(sched_session_benched(&s, a));
    s.opt.switch_threshold = 0.97;
    cr_assert_not(sched_session_benched(&s, a));
    /* API-key buckets: used fraction 1 − remaining/limit. */
    fx_quota(&s, 0, QUOTA_UNKNOWN, 0, QUOTA_UNKNOWN, 0, "");
    a->quota.tokens_limit = 1000;
    a->quota.tokens_remaining = 31;
    cr_assert_not(sched_session_benched(&s, a));
    a->quota.tokens_remaining = 30; /* 0.97 */
    cr_assert(sched_session_benched(&s, a));
    a->quota.tokens_limit = a->quota.tokens_remaining = -1;
    a->quota.requests_limit = 100;
    a->quota.requests_remaining = 3;
    cr_assert(sched_session_benched(&s, a));
    a->quota.requests_limit = a->quota.requests_remaining = -1;
    a->quota.provider_ses = 0.97;
    cr_assert(sched_session_benched(&s, a));
    sched_free(&s);
}

Test(sched_formula, availability_pauses_and_recovery_stamp)
{
    sched_t s;
    fx_init(&s, 1, NULL);
    account_t *a = &s.accts[0];
    cr_assert(sched_available(&s, 0, QUOTA_FAMILY_NONE, false, false, NOW));
    a->enabled = false;
    cr_assert_not(sched_available(&s, 0, QUOTA_FAMILY_NONE, true, true, NOW));
    a->enabled = true;
    /* Throttled until T: unavailable before, active exactly at T with recoveredAt = T. */
    a->status = ACCOUNT_THROTTLED;
    a->rate_limited_until_ms = NOW + 7 * SEC;
    cr_assert_not(sched_available(&s, 0, QUOTA_FAMILY_NONE, true, true, NOW + 7 * SEC - 1));
    cr_assert(sched_available(&s, 0, QUOTA_FAMILY_NONE, true, true, NOW + 7 * SEC));
    cr_assert_eq(a->status, ACCOUNT_ACTIVE);
    cr_assert_eq(a->recovered_at_ms, NOW + 7 * SEC);
    cr_assert(fx_event(&s, "Account \"a\" rate limit expired, marking active"));
    a->cooldown_until_ms = NOW + 30 * SEC;
    cr_assert_not(sched_available(&s, 0, QUOTA_FAMILY_NONE, true, true, NOW));
    cr_assert(sched_available(&s, 0, QUOTA_FAMILY_NONE, true, true, NOW + 30 * SEC));
    cr_assert_eq(a->recovered_at_ms, NOW + 30 * SEC);
    a->provisional_until_ms = NOW + 31 * SEC;
    cr_assert_not(sched_available(&s, 0, QUOTA_FAMILY_NONE, true, true, NOW + 30 * SEC));
    cr_assert(sched_available(&s, 0, QUOTA_FAMILY_NONE, true, true, NOW + 31 * SEC));
    /* Emergency breakers. */
    a->in_flight = 50;
    cr_assert_not(sched_available(&s, 0, QUOTA_FAMILY_NONE, true, true, NOW + HOUR));
    a->in_flight = 49;
    s.global_in_flight = 150;
    cr_assert_not(sched_available(&s, 0, QUOTA_FAMILY_NONE, true, true, NOW + HOUR));
    s.global_in_flight = 0;
    a->in_flight = 0;
    a->status = ACCOUNT_ERROR;
    cr_assert_not(sched_available(&s, 0, QUOTA_FAMILY_NONE, true, true, NOW + HOUR));
    a->status = ACCOUNT_EXHAUSTED;
    cr_assert_not(sched_available(&s, 0, QUOTA_FAMILY_NONE, true, true, NOW + HOUR));
    a->status = ACCOUNT_ACTIVE;
    /* Tiers gate by the allow flags. */
    fx_quota(&s, 0, QUOTA_UNKNOWN, 0, 0.85, NOW + DAY, "allowed");
    cr_assert_not(sched_available(&s, 0, QUOTA_FAMILY_NONE, false, false, NOW + HOUR));
    cr_assert(sched_available(&s, 0, QUOTA_FAMILY_NONE, true, false, NOW + HOUR));
    fx_quota(&s, 0, QUOTA_UNKNOWN, 0, 0.95, NOW + DAY, "allowed");
    cr_assert_not(sched_available(&s, 0, QUOTA_FAMILY_NONE, true, false, NOW + HOUR));
    cr_assert(sched_available(&s, 0, QUOTA_FAMILY_NONE, true, true, NOW + HOUR));
    fx_quota(&s, 0, QUOTA_UNKNOWN, 0, 0.999, NOW + DAY, "");
    cr_assert_not(sched_available(&s, 0, QUOTA_FAMILY_NONE, true, true, NOW + HOUR));
    /* The weekly window resets: available again, with the log line. */
    cr_assert(sched_available(&s, 0, QUOTA_FAMILY_NONE, true, true, NOW + DAY));
    cr_assert(fx_event(&s, "Account \"a\" weekly quota reset"));
    sched_free(&s);
}

Test(sched_formula, scoped_bench_is_per_family)
{
    sched_t s;
    fx_init(&s, 1, NULL);
    quota_set_scoped(&s.accts[0].quota, QUOTA_FAMILY_OPUS, 0.999, NOW + HOUR, false);
    cr_assert_not(sched_available(&s, 0, QUOTA_FAMILY_OPUS, true, true, NOW));
    cr_assert(sched_available(&s, 0, QUOTA_FAMILY_SONNET, true, true, NOW));
    cr_assert(sched_available(&s, 0, QUOTA_FAMILY_NONE, true, true, NOW));
    /* An inactive entry does not bench; a lower one does not either. */
    s.accts[0].quota.scoped[QUOTA_FAMILY_OPUS].active = false;
    cr_assert(sched_available(&s, 0, QUOTA_FAMILY_OPUS, true, true, NOW));
    quota_set_scoped(&s.accts[0].quota, QUOTA_FAMILY_OPUS, 0.998, NOW + HOUR, false);
    cr_assert(sched_available(&s, 0, QUOTA_FAMILY_OPUS, true, true, NOW));
    /* It expires at its reset. */
    quota_set_scoped(&s.accts[0].quota, QUOTA_FAMILY_OPUS, 1.0, NOW + HOUR, true);
    cr_assert(sched_available(&s, 0, QUOTA_FAMILY_OPUS, true, true, NOW + HOUR));
    cr_assert_eq(s.accts[0].quota.scoped[QUOTA_FAMILY_OPUS].utilization, QUOTA_UNKNOWN);
    cr_assert_eq(quota_family("claude-opus-4-1"), QUOTA_FAMILY_OPUS);
    cr_assert_eq(quota_family("Claude Sonnet 4.5"), QUOTA_FAMILY_SONNET);
    cr_assert_eq(quota_family("claude-3-5-haiku"), QUOTA_FAMILY_HAIKU);
    cr_assert_eq(quota_family("mythos-1"), QUOTA_FAMILY_FABLE);
    cr_assert_eq(quota_family("gpt-x"), QUOTA_FAMILY_NONE);
    cr_assert_eq(quota_family(NULL), QUOTA_FAMILY_NONE);
    sched_free(&s);
}

/* ------------------------------------------------------------ §5.7 score */

Test(sched_formula, score_terms)
{
    sched_t s;
    fx_init(&s, 2, NULL);
    account_t *a = &s.accts[0];
    /* Fresh: concurrency only, 1 × 2. */
    cr_assert_float_eq(sched_score(&s, 0, 1, QUOTA_FAMILY_NONE, 0, NOW), 2.0, EPS);
    /* Weight counts as in-flight. Over the target (3) the cap penalty adds 10 per unit. */
    cr_assert_float_eq(sched_score(&s, 0, 3, QUOTA_FAMILY_NONE, 0, NOW), 6.0, EPS);
    a->active_weight = 3;
    cr_assert_float_eq(sched_score(&s, 0, 1, QUOTA_FAMILY_NONE, 0, NOW), 8.0 + 10.0, EPS);
    a->active_weight = 0;
    /* 5h usage 0.5, reset unknown: pace 0.5 × 1.5, util 0.5 × 3. */
    fx_quota(&s, 0, 0.5, 0, QUOTA_UNKNOWN, 0, "");
    cr_assert_float_eq(sched_score(&s, 0, 1, QUOTA_FAMILY_NONE, 0, NOW), 2 + 0.75 + 1.5, EPS);
    /* Same usage half-way through the window: on pace, no pace cost (util stays). */
    fx_quota(&s, 0, 0.5, NOW + 150 * MIN, QUOTA_UNKNOWN, 0, "");
    cr_assert_float_eq(sched_score(&s, 0, 1, QUOTA_FAMILY_NONE, 0, NOW), 2 + 0 + 1.5, EPS);
    /* Weekly-aware scoring adds S(u7d) to the raw utilization. */
    fx_quota(&s, 0, QUOTA_UNKNOWN, 0, 0.5, 0, "allowed");
    cr_assert_float_eq(sched_score(&s, 0, 1, QUOTA_FAMILY_NONE, 0, NOW), 2 + 0.75 + 1.5, EPS);
    s.opt.weekly_aware_scoring = false;
    cr_assert_float_eq(sched_score(&s, 0, 1, QUOTA_FAMILY_NONE, 0, NOW), 2 + 0.75, EPS);
    s.opt.weekly_aware_scoring = true;
    /* Reserve: target 2, floor 5 + band 8 × 0.5 + scarcity 6 × 0.9. */
    fx_quota(&s, 0, QUOTA_UNKNOWN, 0, 0.9, 0, "allowed");
    double want = 2 + 0.9 * 1.5 + 0.9 * 3 + 5 + 8 * 0.5 + 6 * 0.9;
    cr_assert_float_eq(sched_score(&s, 0, 1, QUOTA_FAMILY_NONE, 0, NOW), want, 1e-9);
    a->active_weight = 2; /* inflight 3 > reserve target 2 */
    cr_assert_float_eq(sched_score(&s, 0, 1, QUOTA_FAMILY_NONE, 0, NOW), want + 4 + 10, 1e-9);
    a->active_weight = 0;
    /* Critical unlocked: prereset cost goes 8 → −6 as the reset nears (1 h of 2 h → 1). */
    fx_quota(&s, 0, QUOTA_UNKNOWN, 0, 0.96, NOW + HOUR, "allowed");
    double s7 = sched_scarcity(0.96, NOW + HOUR, 7 * DAY, NOW);
    double base = 2 + s7 * 1.5 + s7 * 3;
    cr_assert_float_eq(sched_score(&s, 0, 1, QUOTA_FAMILY_NONE, 0, NOW), base, 1e-9);
    cr_assert_float_eq(sched_score(&s, 0, 1, QUOTA_FAMILY_NONE, 1, NOW), base + 1.0, 1e-9);
    cr_assert_float_eq(sched_score(&s, 0, 1, QUOTA_FAMILY_NONE, 1, NOW + HOUR - 1),
                       sched_score(&s, 0, 1, QUOTA_FAMILY_NONE, 0, NOW + HOUR - 1) - 6, 1e-3);
    cr_assert_float_eq(sched_score(&s, 0, 1, QUOTA_FAMILY_NONE, 2, NOW), base + 21, 1e-9);
    fx_quota(&s, 0, QUOTA_UNKNOWN, 0, QUOTA_UNKNOWN, 0, "");
    /* Recovery ramp 4 → 0 over 5 minutes. */
    a->recovered_at_ms = NOW - 150 * SEC;
    cr_assert_float_eq(sched_score(&s, 0, 1, QUOTA_FAMILY_NONE, 0, NOW), 2 + 2, EPS);
    cr_assert_float_eq(sched_score(&s, 0, 1, QUOTA_FAMILY_NONE, 0, NOW + 150 * SEC), 2, EPS);
    a->recovered_at_ms = 0;
    /* Failures: 5 each. */
    a->consecutive_failures = 2;
    cr_assert_float_eq(sched_score(&s, 0, 1, QUOTA_FAMILY_NONE, 0, NOW), 12, EPS);
    a->consecutive_failures = 0;
    /* Scoped pace for the request's family only, from the reserve threshold. */
    quota_set_scoped(&a->quota, QUOTA_FAMILY_OPUS, 0.9, 0, false);
    cr_assert_float_eq(sched_score(&s, 0, 1, QUOTA_FAMILY_OPUS, 0, NOW), 2 + 1.5 * 0.9, EPS);
    cr_assert_float_eq(sched_score(&s, 0, 1, QUOTA_FAMILY_SONNET, 0, NOW), 2, EPS);
    quota_set_scoped(&a->quota, QUOTA_FAMILY_OPUS, 0.84, 0, false);
    cr_assert_float_eq(sched_score(&s, 0, 1, QUOTA_FAMILY_OPUS, 0, NOW), 2, EPS);
    /* Spread: share of completed weight in the spread window (3 of 4 → 0.75 × 3). */
    account_load_add(&s.accts[0], NOW - MIN, 3, true, 100);
    account_load_add(&s.accts[1], NOW - MIN, 1, true, 100);
    cr_assert_float_eq(sched_score(&s, 0, 1, QUOTA_FAMILY_SONNET, 0, NOW), 2 + 2.25, EPS);
    cr_assert_float_eq(sched_score(&s, 1, 1, QUOTA_FAMILY_SONNET, 0, NOW), 2 + 0.75, EPS);
    /* Outside the spread window the load no longer counts. */
    cr_assert_float_eq(sched_score(&s, 0, 1, QUOTA_FAMILY_SONNET, 0, NOW + 16 * MIN), 2, EPS);
    sched_free(&s);
}

Test(sched_formula, fast_refill_multiplier)
{
    sched_t s;
    fx_init(&s, 1, NULL);
    account_t p;
    account_init(&p, "glm", ACCOUNT_PROVIDER, "tok");
    snprintf(p.provider, sizeof p.provider, "zai");
    p.priority = 10;
    p.quota.weekly_absent = true;
    p.quota.provider_ses = 0.325; /* half of the fade level → m = 1 − 0.6 × 0.5 = 0.7 */
    int i = sched_add_account(&s, &p, false, NOW);
    double m = 0.7;
    double want = 1 * 2 * m + 0.325 * 1.5 * m + 0.325 * 3 * m;
    cr_assert_float_eq(sched_score(&s, i, 1, QUOTA_FAMILY_NONE, 0, NOW), want, 1e-9);
    s.accts[i].quota.provider_ses = 0.65; /* at the fade level: no discount */
    want = 2 + 0.65 * 1.5 + 0.65 * 3;
    cr_assert_float_eq(sched_score(&s, i, 1, QUOTA_FAMILY_NONE, 0, NOW), want, 1e-9);
    sched_free(&s);
}

Test(sched_formula, effective_priority_by_mode)
{
    sched_t s;
    fx_init(&s, 1, NULL);
    account_t p;
    account_init(&p, "glm", ACCOUNT_PROVIDER, "tok");
    snprintf(p.provider, sizeof p.provider, "zai");
    p.priority = 10;
    int i = sched_add_account(&s, &p, false, NOW);
    account_t *pa = &s.accts[i], *c = &s.accts[0];
    cr_assert_eq(sched_effective_priority(&s, c), 0);
    cr_assert_eq(sched_effective_priority(&s, pa), 10); /* sticky, policy never */
    s.opt.cross_provider_fallback = SCHED_FALLBACK_ALWAYS;
    cr_assert_eq(sched_effective_priority(&s, pa), 0);
    s.opt.routing_mode = SCHED_ROUTE_BALANCE;
    s.opt.cross_provider_fallback = SCHED_FALLBACK_NEVER;
    cr_assert_eq(sched_effective_priority(&s, pa), 0);
    s.opt.routing_mode = SCHED_ROUTE_PREFER_CLAUDE;
    cr_assert_eq(sched_effective_priority(&s, pa), 10);
    s.opt.routing_mode = SCHED_ROUTE_PREFER_ZAI;
    cr_assert_eq(sched_effective_priority(&s, pa), 0);
    s.opt.routing_mode = SCHED_ROUTE_PREFER_KIMI;
    cr_assert_eq(sched_effective_priority(&s, pa), 10);
    sched_free(&s);
}

/* ------------------------------------------------------------ §5.8 critical unlock */

Test(sched_formula, critical_unlock_reasons)
{
    sched_t s;
    fx_init(&s, 2, NULL);
    sched_request_t r = fx_req("claude-sonnet-4", NULL);
    fx_quota(&s, 0, QUOTA_UNKNOWN, 0, 0.96, NOW + HOUR, "allowed");
    /* b is healthy with headroom: no pressure; the reset is near but no probe proved it. */
    cr_assert_eq(sched_critical_unlock(&s, 0, &r, NOW), 0);
    /* prereset: a fresh probe (younger than max(2 × 60 s, 2 h)). */
    s.accts[0].quota.last_probe_ok_ms = NOW - 2 * HOUR + 1;
    cr_assert_eq(sched_critical_unlock(&s, 0, &r, NOW), 1);
    s.accts[0].quota.last_probe_ok_ms = NOW - 2 * HOUR; /* exactly stale */
    cr_assert_eq(sched_critical_unlock(&s, 0, &r, NOW), 0);
    s.accts[0].quota.last_probe_ok_ms = NOW;
    fx_quota(&s, 0, QUOTA_UNKNOWN, 0, 0.96, NOW + 2 * HOUR, "allowed"); /* exactly 2 h */
    cr_assert_eq(sched_critical_unlock(&s, 0, &r, NOW), 1);
    fx_quota(&s, 0, QUOTA_UNKNOWN, 0, 0.96, NOW + 2 * HOUR + 1, "allowed");
    cr_assert_eq(sched_critical_unlock(&s, 0, &r, NOW), 0);
    /* pressure: b has no headroom (activeWeight + 1 > 3) → 0 routes ≤ 0. */
    s.accts[1].active_weight = 3;
    cr_assert_eq(sched_critical_unlock(&s, 0, &r, NOW), 2);
    s.opt.critical_pressure_unlock_routes = -1; /* disabled */
    cr_assert_eq(sched_critical_unlock(&s, 0, &r, NOW), 0);
    /* Only critical accounts unlock. */
    cr_assert_eq(sched_critical_unlock(&s, 1, &r, NOW), 0);
    sched_free(&s);
}

/* ------------------------------------------------------------ §5.11 backoff, §3.6 weight */

Test(sched_formula, backoff_doubles_to_the_cap)
{
    sched_options_t o;
    sched_options_default(&o);
    int64_t want[] = {30000, 60000, 120000, 240000, 480000, 900000, 900000, 900000};
    for (int i = 0; i < 8; i++)
        cr_assert_eq(sched_backoff_ms(&o, i + 1), want[i], "failure %d", i + 1);
    o.cooldown_ms = 1000;
    o.max_cooldown_ms = 10000;
    cr_assert_eq(sched_backoff_ms(&o, 6), 10000); /* 32 s capped */
    cr_assert_eq(sched_backoff_ms(&o, 4), 8000);
}

Test(sched_formula, request_weight)
{
    cr_assert_eq(sched_weight(0, 0, false), 1);
    cr_assert_eq(sched_weight(64000, 0, false), 1);
    cr_assert_eq(sched_weight(64001, 0, false), 2);
    cr_assert_eq(sched_weight(1000, 16000, false), 1);
    cr_assert_eq(sched_weight(1000, 16001, false), 2);
    cr_assert_eq(sched_weight(1000, 32000, true), 3);
}

/* ------------------------------------------------------------ §6.3 classification */

static sched_scope_t classify(sched_t *s, int idx, const char *model, const quota_header_t *h,
                              size_t n, const char *type, const char *msg, int *ra)
{
    sched_request_t r = fx_req(model, NULL);
    sched_response_t resp = fx_resp(429, h, n, type, msg);
    char fp[SCHED_FP_MAX + 1];
    return sched_classify_429(s, idx, &r, &resp, NOW, fp, ra);
}

Test(sched_formula, classify_429)
{
    sched_t s;
    fx_init(&s, 2, NULL);
    int ra = 0;
    quota_header_t ra7[] = {{"retry-after", "7"}};
    cr_assert_eq(classify(&s, 0, NULL, ra7, 1, "rate_limit_error", "Session limit reached", &ra),
                 SCHED_SCOPE_ACCOUNT);
    cr_assert_eq(ra, 7);
    cr_assert_eq(classify(&s, 0, NULL, NULL, 0, "rate_limit_error", "x", &ra), SCHED_SCOPE_ACCOUNT);
    cr_assert_eq(ra, 60); /* missing retry-after */
    cr_assert_eq(classify(&s, 0, NULL, NULL, 0, "rate_limit_error",
                          "Your weekly plan has now reached its cap", &ra),
                 SCHED_SCOPE_ACCOUNT);
    cr_assert_eq(classify(&s, 0, NULL, NULL, 0, "x", "usage has been exceeded", &ra),
                 SCHED_SCOPE_ACCOUNT);
    /* Forty characters apart is still "near"; forty-one is not. */
    char near[128], far[128];
    snprintf(near, sizeof near, "quota%40slimit", "");
    snprintf(far, sizeof far, "quota%41slimit", "");
    cr_assert_eq(classify(&s, 0, NULL, NULL, 0, "", near, &ra), SCHED_SCOPE_ACCOUNT);
    cr_assert_eq(classify(&s, 0, NULL, NULL, 0, "", far, &ra), SCHED_SCOPE_ACCOUNT); /* unseen */
    quota_header_t rej[] = {{"anthropic-ratelimit-unified-status", "rejected"}};
    cr_assert_eq(classify(&s, 0, NULL, rej, 1, "", "", &ra), SCHED_SCOPE_ACCOUNT);
    quota_header_t tok0[] = {{"anthropic-ratelimit-tokens-remaining", "0"}};
    cr_assert_eq(classify(&s, 0, NULL, tok0, 1, "", "", &ra), SCHED_SCOPE_ACCOUNT);
    /* Server-side. */
    cr_assert_eq(classify(&s, 0, NULL, NULL, 0, "rate_limit_error",
                          "Anthropic is temporarily limiting requests. Please try again later.",
                          &ra),
                 SCHED_SCOPE_UPSTREAM);
    cr_assert_eq(
        classify(&s, 0, NULL, NULL, 0, "rate_limit_error", "This is not your usage limit", &ra),
        SCHED_SCOPE_UPSTREAM);
    cr_assert_eq(classify(&s, 0, NULL, NULL, 0, "overloaded_error", "Overloaded", &ra),
                 SCHED_SCOPE_UPSTREAM);
    /* Model scope: family known, a unified header present, all < 0.999, retry-after ≥ 1800. */
    quota_header_t ms[] = {{"retry-after", "7200"},
                           {"anthropic-ratelimit-unified-5h-utilization", "0.3"},
                           {"anthropic-ratelimit-unified-7d-utilization", "0.4"}};
    cr_assert_eq(classify(&s, 0, "claude-opus-4", ms, 3, "rate_limit_error", "limited", &ra),
                 SCHED_SCOPE_MODEL);
    cr_assert_eq(classify(&s, 0, "unknown-model", ms, 3, "rate_limit_error", "limited", &ra),
                 SCHED_SCOPE_ACCOUNT);
    cr_assert_eq(classify(&s, 0, "claude-opus-4", ms, 1, "rate_limit_error", "limited", &ra),
                 SCHED_SCOPE_ACCOUNT); /* no unified header */
    quota_header_t ms1799[] = {{"retry-after", "1799"},
                               {"anthropic-ratelimit-unified-5h-utilization", "0.3"}};
    cr_assert_eq(classify(&s, 0, "claude-opus-4", ms1799, 2, "", "limited", &ra),
                 SCHED_SCOPE_ACCOUNT);
    quota_header_t ms1800[] = {{"retry-after", "1800"},
                               {"anthropic-ratelimit-unified-5h-utilization", "0.998"}};
    cr_assert_eq(classify(&s, 0, "claude-opus-4", ms1800, 2, "", "limited", &ra),
                 SCHED_SCOPE_MODEL);
    quota_header_t full[] = {{"retry-after", "7200"},
                             {"anthropic-ratelimit-unified-5h-utilization", "0.999"}};
    cr_assert_eq(classify(&s, 0, "claude-opus-4", full, 2, "", "limited", &ra),
                 SCHED_SCOPE_ACCOUNT);
    sched_free(&s);
}

Test(sched_formula, fingerprint_normalises)
{
    char fp[SCHED_FP_MAX + 1];
    sched_fingerprint("Rate_Limit_Error", "Request  0123abcd4567 used 1234 tokens", fp);
    cr_assert_str_eq(fp, "rate_limit_error:request # used # tokens");
    sched_fingerprint("t", "id deadbeefcafe and 12 vs 7", fp);
    cr_assert_str_eq(fp, "t:id # and # vs #");
    char longmsg[600];
    memset(longmsg, 'x', sizeof longmsg - 1);
    longmsg[sizeof longmsg - 1] = 0;
    sched_fingerprint("t", longmsg, fp);
    cr_assert_eq(strlen(fp), SCHED_FP_MAX);
}

Test(sched_formula, duration_format)
{
    char d[16];
    sched_fmt_duration(3000, d, sizeof d);
    cr_assert_str_eq(d, "3s");
    sched_fmt_duration(89 * SEC, d, sizeof d);
    cr_assert_str_eq(d, "89s");
    sched_fmt_duration(90 * SEC, d, sizeof d);
    cr_assert_str_eq(d, "2m");
    sched_fmt_duration(3 * HOUR, d, sizeof d);
    cr_assert_str_eq(d, "3h");
    sched_fmt_duration(3 * DAY, d, sizeof d);
    cr_assert_str_eq(d, "3d");
}
