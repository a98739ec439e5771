/* sched selection (§5.2, §5.5, §5.6, §5.8) and the retry oracle (§6.9) in virtual time. */
#include "sched_fixture.h"

Test(sched_select, ladder_rotates_equal_accounts_and_skips_tried)
{
    sched_t s;
    fx_init(&s, 3, NULL);
    sched_request_t r = fx_req("claude-sonnet-4", NULL);
    sched_pick_t p;
    cr_assert_eq(sched_select(&s, &r, NOW, &p), 0);
    cr_assert_str_eq(p.via, "ladder");
    cr_assert_eq(s.accts[0].in_flight, 1);
    cr_assert_eq(s.accts[0].active_weight, 1);
    cr_assert_eq(s.global_in_flight, 1);
    /* While a holds a lease it scores worse: the next request goes to b. */
    sched_request_t r2 = fx_req("claude-sonnet-4", NULL);
    cr_assert_eq(sched_select(&s, &r2, NOW, &p), 1);
    sched_release(&s, 0, &r, NOW);
    sched_release(&s, 1, &r2, NOW);
    cr_assert_eq(s.global_in_flight, 0);
    cr_assert_eq(s.accts[0].in_flight, 0);
    /* Tried accounts are skipped. */
    sched_request_t r3 = fx_req("claude-sonnet-4", NULL);
    account_mask_add(&r3.tried, 0);
    account_mask_add(&r3.tried, 1);
    cr_assert_eq(sched_select(&s, &r3, NOW, &p), 2);
    sched_release(&s, 2, &r3, NOW);
    sched_request_t r4 = fx_req("claude-sonnet-4", NULL);
    for (int i = 0; i < 3; i++)
        account_mask_add(&r4.tried, (size_t)i);
    cr_assert_eq(sched_select(&s, &r4, NOW, &p), -1);
    cr_assert_eq(p.cause, SCHED_CAUSE_AVAILABLE); /* the oracle ignores exclusions */
    sched_free(&s);
}

Test(sched_select, lower_score_wins_and_priority_dominates)
{
    sched_t s;
    fx_init(&s, 2, NULL);
    fx_quota(&s, 0, 0.8, 0, QUOTA_UNKNOWN, 0, "");
    /* a costs 2 + 0.8 × 1.5 + 0.8 × 3 = 5.6; b at most 2 + 3 (its full spread share): b wins
     * even though a comes first in the rotation. */
    for (int i = 0; i < 3; i++)
        cr_assert_eq(fx_serve(&s, "claude-sonnet-4", NULL, NOW + i), 1);
    /* A worse priority loses even with a better score. */
    s.accts[1].priority = 1;
    cr_assert_eq(fx_serve(&s, "claude-sonnet-4", NULL, NOW + 10), 0);
    sched_free(&s);
}

Test(sched_select, reserve_is_used_after_healthy_and_critical_is_last_resort)
{
    sched_t s;
    fx_init(&s, 3, NULL);
    fx_quota(&s, 0, QUOTA_UNKNOWN, 0, 0.96, NOW + 3 * DAY, "allowed"); /* critical */
    fx_quota(&s, 1, QUOTA_UNKNOWN, 0, 0.90, NOW + 3 * DAY, "allowed"); /* reserve */
    fx_quota(&s, 2, QUOTA_UNKNOWN, 0, 0.10, NOW + 3 * DAY, "allowed");
    cr_assert_eq(fx_serve(&s, "m", NULL, NOW), 2);
    s.accts[2].enabled = false;
    cr_assert_eq(fx_serve(&s, "m", NULL, NOW), 1);
    s.accts[1].enabled = false;
    /* Only the critical one is left; pressure unlock (no pass-1 route with headroom). */
    sched_request_t r = fx_req("m", NULL);
    sched_pick_t p;
    cr_assert_eq(sched_select(&s, &r, NOW, &p), 0);
    cr_assert(p.critical);
    cr_assert(fx_event(&s, "Critical unlock \"pressure\": routing to \"a\""));
    sched_release(&s, 0, &r, NOW);
    /* With pressure unlock disabled it is still the second-pass last resort. */
    s.opt.critical_pressure_unlock_routes = -1;
    cr_assert_eq(fx_serve(&s, "m", NULL, NOW), 0);
    sched_free(&s);
}

Test(sched_select, preferred_mode)
{
    sched_options_t o;
    sched_options_default(&o);
    o.preferred_mode = true;
    snprintf(o.preferred, sizeof o.preferred, "b");
    sched_t s;
    fx_init(&s, 2, &o);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(fx_serve(&s, "m", NULL, NOW + i), 1);
    /* B unavailable → automatic failover; back to B when it recovers. */
    s.accts[1].cooldown_until_ms = NOW + MIN;
    cr_assert_eq(fx_serve(&s, "m", NULL, NOW + 10), 0);
    cr_assert_eq(fx_serve(&s, "m", NULL, NOW + MIN), 1);
    /* Preferred but critical: still preferred (second try allows critical). */
    fx_quota(&s, 1, QUOTA_UNKNOWN, 0, 0.96, NOW + DAY, "allowed");
    cr_assert_eq(fx_serve(&s, "m", NULL, NOW + 2 * MIN), 1);
    /* A disabled or unknown preferred account: automatic. */
    s.accts[1].enabled = false;
    cr_assert_eq(fx_serve(&s, "m", NULL, NOW + 3 * MIN), 0);
    snprintf(s.opt.preferred, sizeof s.opt.preferred, "nope");
    cr_assert_eq(fx_serve(&s, "m", NULL, NOW + 4 * MIN), 0);
    sched_free(&s);
}

Test(sched_select, sticky_session_stays_fails_over_and_returns)
{
    sched_t s;
    fx_init(&s, 2, NULL);
    int first = fx_serve(&s, "m", "s1", NOW);
    cr_assert_eq(first, 0);
    /* Load elsewhere would pull a plain request away, but the session stays. */
    for (int i = 1; i < 6; i++)
        cr_assert_eq(fx_serve(&s, "m", "s1", NOW + i * SEC), 0);
    cr_assert_eq(s.n_bindings, 1);
    /* Home throttled: failover to b, home kept. */
    s.accts[0].status = ACCOUNT_THROTTLED;
    s.accts[0].rate_limited_until_ms = NOW + MIN;
    cr_assert_eq(fx_serve(&s, "m", "s1", NOW + 10 * SEC), 1);
    cr_assert_eq(fx_serve(&s, "m", "s1", NOW + 20 * SEC), 1); /* current = b while a is out */
    cr_assert_eq(fx_serve(&s, "m", "s1", NOW + MIN), 0);      /* home recovered */
    /* Another session lands on the other account. */
    cr_assert_eq(fx_serve(&s, "m", "s2", NOW + MIN + 1), 1);
    sched_free(&s);
}

Test(sched_select, sticky_rebalances_a_hot_account)
{
    sched_t s;
    fx_init(&s, 2, NULL);
    cr_assert_eq(fx_serve(&s, "m", "s1", NOW), 0);
    /* Bound session usage ≥ 0.85: move (another healthy account exists). */
    fx_quota(&s, 0, 0.86, NOW + 4 * HOUR, QUOTA_UNKNOWN, 0, "");
    cr_assert_eq(fx_serve(&s, "m", "s1", NOW + SEC), 1);
    /* The move was a by-choice move (a was still available): b is the new home. */
    fx_quota(&s, 0, 0.1, NOW + 4 * HOUR, QUOTA_UNKNOWN, 0, "");
    cr_assert_eq(fx_serve(&s, "m", "s1", NOW + 2 * SEC), 1);
    /* Not migration-safe (body not JSON): stays even when hot. */
    fx_quota(&s, 1, 0.86, NOW + 4 * HOUR, QUOTA_UNKNOWN, 0, "");
    sched_request_t r = fx_req("m", "s1");
    r.body_json = false;
    sched_pick_t p;
    cr_assert_eq(sched_select(&s, &r, NOW + 3 * SEC, &p), 1);
    cr_assert_str_eq(p.via, "sticky");
    sched_release(&s, 1, &r, NOW + 3 * SEC);
    /* Signed thinking with crossAccountThinkingMigration off: stays too. */
    s.opt.cross_account_thinking_migration = false;
    r = fx_req("m", "s1");
    r.signed_thinking = true;
    cr_assert_eq(sched_select(&s, &r, NOW + 4 * SEC, &p), 1);
    sched_release(&s, 1, &r, NOW + 4 * SEC);
    /* A warm (0.7) bound account with a merely better other one stays: the score gap rule. */
    s.opt.cross_account_thinking_migration = true;
    fx_quota(&s, 1, 0.7, NOW + 4 * HOUR, QUOTA_UNKNOWN, 0, "");
    fx_quota(&s, 0, 0.6, NOW + 4 * HOUR, QUOTA_UNKNOWN, 0, "");
    cr_assert_eq(fx_serve(&s, "m", "s1", NOW + 5 * SEC), 1);
    sched_free(&s);
}

Test(sched_select, warmup_pull_moves_sessions_to_a_new_account)
{
    sched_t s;
    fx_init(&s, 1, NULL);
    cr_assert_eq(fx_serve(&s, "m", "s1", NOW), 0);
    account_t n;
    account_init(&n, "new", ACCOUNT_APIKEY, "k");
    int i = sched_add_account(&s, &n, true, NOW + MIN);
    cr_assert_eq(fx_serve(&s, "m", "s1", NOW + MIN + 1), i);
    sched_free(&s);
}

Test(sched_select, profiles_and_providers)
{
    sched_t s;
    fx_init(&s, 1, NULL);
    account_t p;
    account_init(&p, "glm", ACCOUNT_PROVIDER, "tok");
    snprintf(p.provider, sizeof p.provider, "zai");
    p.priority = 10;
    sched_add_account(&s, &p, false, NOW);
    s.accts[0].enabled = false;
    sched_request_t r = fx_req("m", NULL);
    sched_pick_t pk;
    /* Default config: providers never serve ordinary Claude sessions. */
    cr_assert_eq(sched_select(&s, &r, NOW, &pk), -1);
    r.profile = "all";
    cr_assert_eq(sched_select(&s, &r, NOW, &pk), -1); /* sticky + policy never */
    s.opt.routing_mode = SCHED_ROUTE_BALANCE;
    cr_assert_eq(sched_select(&s, &r, NOW, &pk), 1);
    sched_release(&s, 1, &r, NOW);
    r.profile = "other";
    cr_assert_eq(sched_select(&s, &r, NOW, &pk), -1);
    cr_assert_eq(pk.cause, SCHED_CAUSE_NO_ELIGIBLE_ROUTE);
    cr_assert_eq(pk.retry_ms, SCHED_NEVER);
    sched_free(&s);
}

Test(sched_select, fifo_fairness_and_admission_pause)
{
    sched_t s;
    fx_init(&s, 1, NULL);
    s.queue_depth = 1;
    sched_request_t r = fx_req("m", NULL);
    sched_pick_t p;
    cr_assert_eq(sched_select(&s, &r, NOW, &p), -1);
    cr_assert_eq(p.cause, SCHED_CAUSE_QUEUED_BEHIND_FAIRNESS);
    r.queue_admitted = true;
    cr_assert_eq(sched_select(&s, &r, NOW, &p), 0);
    sched_release(&s, 0, &r, NOW);
    s.queue_depth = 0;
    s.admission_paused = true;
    cr_assert_eq(sched_select(&s, &r, NOW, &p), -1);
    sched_free(&s);
}

Test(sched_select, oracle_causes_and_times)
{
    sched_t s;
    fx_init(&s, 3, NULL);
    sched_request_t r = fx_req("claude-opus-4", NULL);
    sched_cause_t c;
    cr_assert_eq(sched_next_retry(&s, &r, NOW, &c), 0);
    cr_assert_eq(c, SCHED_CAUSE_AVAILABLE);
    s.accts[0].status = ACCOUNT_THROTTLED;
    s.accts[0].rate_limited_until_ms = NOW + 9 * SEC;
    s.accts[1].cooldown_until_ms = NOW + 5 * SEC;
    fx_quota(&s, 2, 0.95, NOW + 2 * HOUR, QUOTA_UNKNOWN, 0, "");
    cr_assert_eq(sched_next_retry(&s, &r, NOW, &c), 5 * SEC);
    cr_assert_eq(c, SCHED_CAUSE_COOLDOWN);
    s.accts[1].cooldown_until_ms = 0;
    s.accts[1].provisional_until_ms = NOW + 3 * SEC;
    cr_assert_eq(sched_next_retry(&s, &r, NOW, &c), 3 * SEC);
    cr_assert_eq(c, SCHED_CAUSE_UPSTREAM_FAILURE);
    s.accts[1].provisional_until_ms = 0;
    s.accts[1].enabled = false;
    cr_assert_eq(sched_next_retry(&s, &r, NOW, &c), 9 * SEC);
    cr_assert_eq(c, SCHED_CAUSE_RATE_LIMITED);
    /* An account blocked twice recovers when its later blocker clears. */
    s.accts[0].cooldown_until_ms = NOW + 20 * SEC;
    s.accts[0].enabled = false;
    cr_assert_eq(sched_next_retry(&s, &r, NOW, &c), 2 * HOUR);
    cr_assert_eq(c, SCHED_CAUSE_SESSION_LIMIT);
    /* Weekly exhausted with a known reset / unknown reset. */
    fx_quota(&s, 2, QUOTA_UNKNOWN, 0, 1.0, NOW + 3 * DAY, "");
    cr_assert_eq(sched_next_retry(&s, &r, NOW, &c), 3 * DAY);
    cr_assert_eq(c, SCHED_CAUSE_WEEKLY_EXHAUSTED);
    fx_quota(&s, 2, QUOTA_UNKNOWN, 0, 1.0, 0, "");
    cr_assert_eq(sched_next_retry(&s, &r, NOW, &c), SCHED_NEVER);
    cr_assert_eq(c, SCHED_CAUSE_WEEKLY_RESET_UNKNOWN);
    /* Model-scoped bench: its reset for that model. */
    fx_quota(&s, 2, QUOTA_UNKNOWN, 0, QUOTA_UNKNOWN, 0, "");
    quota_set_scoped(&s.accts[2].quota, QUOTA_FAMILY_OPUS, 1.0, NOW + HOUR, true);
    cr_assert_eq(sched_next_retry(&s, &r, NOW, &c), HOUR);
    sched_request_t sonnet = fx_req("claude-sonnet-4", NULL);
    cr_assert_eq(sched_next_retry(&s, &sonnet, NOW, &c), 0);
    /* Critical usable as a last resort. */
    quota_set_scoped(&s.accts[2].quota, QUOTA_FAMILY_OPUS, 0, 0, false);
    fx_quota(&s, 2, QUOTA_UNKNOWN, 0, 0.97, NOW + DAY, "allowed");
    cr_assert_eq(sched_next_retry(&s, &r, NOW, &c), 0);
    cr_assert_eq(c, SCHED_CAUSE_CRITICAL_LAST_RESORT);
    /* Nothing enabled: unavailable (∞). */
    s.accts[2].enabled = false;
    cr_assert_eq(sched_next_retry(&s, &r, NOW, &c), SCHED_NEVER);
    cr_assert_eq(c, SCHED_CAUSE_UNAVAILABLE);
    sched_free(&s);
}

Test(sched_select, concurrency_breaker_repolls)
{
    sched_options_t o;
    sched_options_default(&o);
    o.safety_max_active_per_account = 1;
    sched_t s;
    fx_init(&s, 1, &o);
    sched_request_t r1 = fx_req("m", NULL), r2 = fx_req("m", NULL);
    sched_pick_t p;
    cr_assert_eq(sched_select(&s, &r1, NOW, &p), 0);
    cr_assert_eq(sched_select(&s, &r2, NOW, &p), -1);
    cr_assert_eq(p.cause, SCHED_CAUSE_CONCURRENCY_CAP);
    cr_assert_eq(p.retry_ms, MIN);
    sched_release(&s, 0, &r1, NOW);
    cr_assert_eq(sched_select(&s, &r2, NOW, &p), 0);
    sched_free(&s);
}

Test(sched_select, events_switch_and_ring_overflow)
{
    sched_t s;
    fx_init(&s, 2, NULL);
    fx_serve(&s, "m", NULL, NOW);
    fx_serve(&s, "m", NULL, NOW + 1);
    cr_assert(fx_event(&s, "Switched to account \"b\""));
    for (int i = 0; i < SCHED_EVENTS + 10; i++)
        fx_serve(&s, "m", NULL, NOW + 2 + i);
    /* Alternating switches overflow the ring: only the newest SCHED_EVENTS are kept. */
    int n = 0;
    sched_event_t ev;
    while (sched_event_pop(&s, &ev))
        n++;
    cr_assert_eq(n, SCHED_EVENTS);
    sched_free(&s);
}

Test(sched_select, binding_rehomes_to_better_priority_and_keeps_home_on_failover)
{
    sched_t s;
    fx_init(&s, 3, NULL);
    s.accts[0].priority = 1;
    s.accts[1].priority = 1;
    s.accts[2].priority = 1;
    /* Session starts on a (all equal). */
    cr_assert_eq(fx_serve(&s, "m", "s", NOW), 0);
    /* A better-priority account appears available: the session leaves and re-homes there. */
    s.accts[2].priority = 0;
    cr_assert_eq(fx_serve(&s, "m", "s", NOW + SEC), 2);
    s.accts[2].priority = 1;
    cr_assert_eq(fx_serve(&s, "m", "s", NOW + 2 * SEC), 2); /* home is c now */
    /* c out: failover keeps c as home and returns to it later. */
    s.accts[2].cooldown_until_ms = NOW + MIN;
    int other = fx_serve(&s, "m", "s", NOW + 3 * SEC);
    cr_assert_neq(other, 2);
    cr_assert_eq(fx_serve(&s, "m", "s", NOW + 4 * SEC), other);
    cr_assert_eq(fx_serve(&s, "m", "s", NOW + MIN), 2);
    /* A binding whose accounts are gone is dropped. */
    free(s.accts[2].name);
    s.accts[2].name = strdup("renamed");
    free(s.accts[other].name);
    s.accts[other].name = strdup("renamed-too");
    cr_assert_eq(s.n_bindings, 1);
    fx_serve(&s, "m", "s", NOW + 2 * MIN);
    cr_assert_eq(s.n_bindings, 1); /* re-created on the new pick */
    /* Bindings idle for more than a day are pruned by the tick. */
    sched_tick(&s, NOW + 2 * MIN + DAY + 1);
    cr_assert_eq(s.n_bindings, 0);
    sched_free(&s);
}

Test(sched_select, pin_to_an_unavailable_account_falls_through)
{
    sched_t s;
    fx_init(&s, 2, NULL);
    sched_request_t r = fx_req("m", NULL);
    r.pin = 1;
    s.accts[1].cooldown_until_ms = NOW + MIN;
    sched_pick_t p;
    cr_assert_eq(sched_select(&s, &r, NOW, &p), 0);
    cr_assert_str_eq(p.via, "ladder");
    cr_assert_eq(r.pin, -1); /* a pin is used once */
    sched_release(&s, 0, &r, NOW);
    sched_free(&s);
}

Test(sched_select, provider_weekly_tiers_and_caps)
{
    sched_t s;
    sched_init(&s, NULL);
    account_t p;
    account_init(&p, "glm", ACCOUNT_PROVIDER, "tok");
    snprintf(p.provider, sizeof p.provider, "zai");
    sched_add_account(&s, &p, false, NOW);
    account_t *a = &s.accts[0];
    /* Providers: used = max(session, weekly), nulls as 0; no "unknown" tier. */
    cr_assert_eq(sched_weekly_raw(&s, a), SCHED_TIER_NORMAL);
    a->quota.provider_ses = 0.5;
    a->quota.provider_wk = 0.86;
    cr_assert_eq(sched_weekly_raw(&s, a), SCHED_TIER_RESERVE);
    a->cap_utilization = 0.8;
    cr_assert_eq(sched_weekly_raw(&s, a), SCHED_TIER_CAPPED);
    /* Pace for providers is the raw tier of their usage. */
    sched_tier_t pace;
    sched_weekly_effective(&s, a, NOW, &pace);
    cr_assert_eq(pace, SCHED_TIER_RESERVE);
    sched_free(&s);
}

Test(sched_select, probe_proves_a_near_reset_and_unlocks_prereset)
{
    sched_t s;
    fx_init(&s, 2, NULL);
    quota_probe_t pr;
    quota_probe_init(&pr);
    pr.session = 0.1;
    pr.session_reset_ms = NOW + HOUR;
    pr.weekly = 0.96;
    pr.weekly_reset_ms = NOW + 10 * MIN;
    /* Headers alone (no probe): the critical account waits behind the healthy one. */
    fx_quota(&s, 0, 0.1, NOW + HOUR, 0.96, NOW + 10 * MIN, "allowed");
    cr_assert_eq(fx_serve(&s, "m", NULL, NOW), 1);
    /* A probe proves the reset is 10 minutes away: use it or lose it. */
    fx_quota(&s, 0, QUOTA_UNKNOWN, 0, QUOTA_UNKNOWN, 0, "allowed");
    sched_on_probe(&s, 0, &pr, NOW);
    cr_assert(fx_event(&s, "Learned weekly quota for \"a\""));
    sched_request_t r = fx_req("m", NULL);
    sched_pick_t p;
    cr_assert_eq(sched_select(&s, &r, NOW + SEC, &p), 0);
    cr_assert(p.critical);
    cr_assert(fx_event(&s, "Critical unlock \"prereset\": routing to \"a\" (reset in 10m)"));
    sched_release(&s, 0, &r, NOW + SEC);
    sched_free(&s);
}

Test(sched_select, rebalance_score_gap_rule)
{
    /* Bound account hot (5h 0.70 ≥ 0.65) and burning its week early (pace worse), but below
     * the hard triggers (5h < 0.85, weekly < reserve). */
    for (int variant = 0; variant < 2; variant++) {
        sched_t s;
        fx_init(&s, 2, NULL);
        cr_assert_eq(fx_serve(&s, "m", "s", NOW), 0);
        fx_quota(&s, 0, 0.70, 0, 0.80, NOW + (int64_t)(0.9 * 7 * DAY), "allowed");
        if (variant == 1) /* b only moderately better: gap rule fails, the session stays */
            fx_quota(&s, 1, 0.50, 0, QUOTA_UNKNOWN, 0, "");
        double bs = sched_score(&s, 0, 1, QUOTA_FAMILY_NONE, 0, NOW + SEC);
        double cs = sched_score(&s, 1, 1, QUOTA_FAMILY_NONE, 0, NOW + SEC);
        bool move = cs <= 0.5 * bs && bs - cs >= 0.5;
        cr_assert_eq(move, variant == 0, "variant %d: bound %.2f best %.2f", variant, bs, cs);
        cr_assert_eq(fx_serve(&s, "m", "s", NOW + SEC), variant == 0 ? 1 : 0);
        sched_free(&s);
    }
}

Test(sched_select, rebalance_hard_triggers)
{
    sched_t s;
    fx_init(&s, 2, NULL);
    cr_assert_eq(fx_serve(&s, "m", "s", NOW), 0);
    /* Weekly reserve on the bound account: move to the healthy one. */
    fx_quota(&s, 0, 0.1, 0, 0.86, NOW + DAY, "allowed");
    cr_assert_eq(fx_serve(&s, "m", "s", NOW + SEC), 1);
    /* A queue-admitted request never migrates. */
    fx_quota(&s, 1, 0.1, 0, 0.86, NOW + DAY, "allowed");
    fx_quota(&s, 0, 0.1, 0, 0.1, NOW + DAY, "allowed");
    sched_request_t r = fx_req("m", "s");
    r.queue_admitted = true;
    sched_pick_t p;
    cr_assert_eq(sched_select(&s, &r, NOW + 2 * SEC, &p), 1);
    sched_release(&s, 1, &r, NOW + 2 * SEC);
    /* No healthy candidate (the other is in reserve too): stay. */
    fx_quota(&s, 0, 0.1, 0, 0.87, NOW + DAY, "allowed");
    cr_assert_eq(fx_serve(&s, "m", "s", NOW + 3 * SEC), 1);
    sched_free(&s);
}

Test(sched_select, oracle_repolls_critical_and_prefers_soonest)
{
    sched_t s;
    fx_init(&s, 2, NULL);
    sched_request_t r = fx_req("m", NULL);
    sched_cause_t c;
    /* Critical but blocked by a cooldown: the cooldown is the later blocker. */
    fx_quota(&s, 0, QUOTA_UNKNOWN, 0, 0.96, NOW + 3 * DAY, "allowed");
    s.accts[0].cooldown_until_ms = NOW + 2 * MIN;
    s.accts[1].status = ACCOUNT_THROTTLED;
    s.accts[1].rate_limited_until_ms = NOW + 5 * MIN;
    cr_assert_eq(sched_next_retry(&s, &r, NOW, &c), 2 * MIN);
    cr_assert_eq(c, SCHED_CAUSE_COOLDOWN);
    /* Disabled / error accounts never contribute. */
    s.accts[0].status = ACCOUNT_ERROR;
    cr_assert_eq(sched_next_retry(&s, &r, NOW, &c), 5 * MIN);
    cr_assert_eq(c, SCHED_CAUSE_RATE_LIMITED);
    sched_free(&s);
}
