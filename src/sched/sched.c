/* sched — state, formulas (§5.3–§5.8, §5.10) and the selection ladder (§5.5–§5.6), plus the
 * retry oracle (§6.9). Outcomes of responses and failures live in sched_fail.c. */
#include "sched/sched.h"
#include "sched/sched_int.h"
#include "core/xalloc.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ============================================================ options ==== */

void sched_options_default(sched_options_t *o)
{
    memset(o, 0, sizeof *o);
    o->switch_threshold = 0.90;
    o->quota_probe_ms = 60000;
    o->max_attempts = 0;
    o->max_retry_buffer = 10485760;
    o->routing_mode = SCHED_ROUTE_STICKY;
    o->cross_provider_fallback = SCHED_FALLBACK_NEVER;
    o->provider_cross_fallback = true;
    o->safety_max_active_per_account = 50;
    o->safety_max_global_active = 150;
    o->cooldown_ms = 30000;
    o->max_cooldown_ms = 900000;
    o->network_cooldown_ms = 5000;
    o->weekly_soft = 0.65;
    o->weekly_reserve = 0.85;
    o->weekly_critical = 0.95;
    o->weekly_exhausted = 0.999;
    o->weekly_burn_debt_weight = 0.6;
    o->critical_pre_reset_hours = 2;
    o->critical_pressure_unlock_routes = 0;
    o->critical_pressure_cost = 21;
    o->critical_drain_floor_cost = 8;
    o->critical_peak_unlock = false;
    o->concurrency_weight = 2;
    o->per_account_concurrency_target = 3;
    o->cap_penalty_weight = 10;
    o->pace_cost_weight = 1.5;
    o->utilization_weight = 3;
    o->weekly_aware_scoring = true;
    o->reserve_floor_cost = 5;
    o->reserve_band_weight = 8;
    o->reserve_scarcity_weight = 6;
    o->reserve_concurrency_target = 2;
    o->spread_share_weight = 3;
    o->fast_refill_discount = 0.6;
    o->fast_refill_fade_util = 0.65;
    o->recovery_ramp_weight = 4;
    o->recovery_ramp_ms = 300000;
    o->spread_window_ms = 900000;
    o->cross_account_thinking_migration = true;
}

int sched_routing_mode_parse(const char *s)
{
    static const char *const names[] = {"sticky", "balance", "prefer-claude", "prefer-zai",
                                        "prefer-kimi"};
    for (int i = 0; s && i < 5; i++)
        if (strcmp(s, names[i]) == 0) return i;
    return -1;
}

sched_fallback_policy_t sched_fallback_parse(const char *s)
{
    if (s && strcmp(s, "never") == 0) return SCHED_FALLBACK_NEVER;
    if (s && strcmp(s, "always") == 0) return SCHED_FALLBACK_ALWAYS;
    return SCHED_FALLBACK_WHEN_EXHAUSTED;
}

void sched_request_init(sched_request_t *r)
{
    memset(r, 0, sizeof *r);
    r->weight = 1;
    r->pin = -1;
}

void sched_request_restart(sched_request_t *r)
{
    memset(&r->tried, 0, sizeof r->tried);
    memset(&r->incident, 0, sizeof r->incident);
    r->attempt = 0;
    r->pin = -1;
    r->auth_retried = false;
    r->probe = false;
}

int sched_weight(size_t body_bytes, int64_t max_tokens, bool thinking_or_effort)
{
    int64_t w = (int64_t)((body_bytes + 63999) / 64000);
    if (w < 1) w = 1;
    if (max_tokens > 16000) w++;
    if (thinking_or_effort) w++;
    return w > 1000000 ? 1000000 : (int)w;
}

const char *sched_cause_name(sched_cause_t c)
{
    static const char *const names[] = {"available",
                                        "weekly_critical_last_resort",
                                        "upstream_throttle",
                                        "upstream_probe",
                                        "rate_limited",
                                        "cooldown",
                                        "upstream_failure",
                                        "session_limit",
                                        "token_limit",
                                        "request_limit",
                                        "provider_limit",
                                        "weekly_exhausted",
                                        "weekly_critical",
                                        "concurrency_cap",
                                        "queued_behind_fairness",
                                        "weekly_reset_unknown",
                                        "no_eligible_route",
                                        "unavailable"};
    return (unsigned)c < sizeof names / sizeof *names ? names[c] : "unavailable";
}

const char *sched_tier_name(sched_tier_t t)
{
    static const char *const names[] = {"normal",   "unknown",   "soft",  "reserve",
                                        "critical", "exhausted", "capped"};
    return (unsigned)t < 7 ? names[t] : "unknown";
}

/* ============================================================== state ==== */

void sched_init(sched_t *s, const sched_options_t *opt)
{
    memset(s, 0, sizeof *s);
    if (opt)
        s->opt = *opt;
    else
        sched_options_default(&s->opt);
    s->current_index = -1;
    s->throttle.probe_idx = -1;
}

static void binding_free(sched_binding_t *b)
{
    free(b->key);
    free(b->home);
    free(b->current);
    free(b);
}

void sched_free(sched_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        account_free(&s->accts[i]);
    free(s->accts);
    for (int k = 0; k < SCHED_BIND_BUCKETS; k++) {
        sched_binding_t *b = s->bind[k];
        while (b) {
            sched_binding_t *next = b->next;
            binding_free(b);
            b = next;
        }
    }
    memset(s, 0, sizeof *s);
}

void sched_set_options(sched_t *s, const sched_options_t *opt)
{
    s->opt = *opt;
}

int sched_add_account(sched_t *s, account_t *a, bool runtime, int64_t now)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        s->accts = xrealloc(s->accts, s->cap * sizeof *s->accts);
    }
    account_t *d = &s->accts[s->n];
    *d = *a;
    memset(a, 0, sizeof *a);
    d->runtime_added = runtime;
    d->added_at_ms = now;
    return (int)s->n++;
}

int sched_find(const sched_t *s, const char *name)
{
    for (size_t i = 0; name && i < s->n; i++)
        if (s->accts[i].name && strcmp(s->accts[i].name, name) == 0) return (int)i;
    return -1;
}

void sched_emit(sched_t *s, sched_event_kind_t kind, int idx, const char *fmt, ...)
{
    size_t slot;
    if (s->ev_len == SCHED_EVENTS) {
        /* Keep the newest: drop the oldest. */
        s->ev_head = (s->ev_head + 1) % SCHED_EVENTS;
        s->ev_len--;
    }
    slot = (s->ev_head + s->ev_len) % SCHED_EVENTS;
    sched_event_t *e = &s->ev[slot];
    e->kind = kind;
    e->account = idx;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    s->ev_len++;
}

bool sched_event_pop(sched_t *s, sched_event_t *ev)
{
    if (!s->ev_len) return false;
    *ev = s->ev[s->ev_head];
    s->ev_head = (s->ev_head + 1) % SCHED_EVENTS;
    s->ev_len--;
    return true;
}

void sched_fmt_duration(int64_t ms, char *buf, size_t len)
{
    double sec = ms / 1000.0;
    if (sec < 90)
        snprintf(buf, len, "%llds", (long long)(sec < 1 ? 1 : llround(sec)));
    else if (sec < 90 * 60)
        snprintf(buf, len, "%lldm", (long long)llround(sec / 60));
    else if (sec < 36 * 3600)
        snprintf(buf, len, "%lldh", (long long)llround(sec / 3600));
    else
        snprintf(buf, len, "%lldd", (long long)llround(sec / 86400));
}

/* ============================================================ expiry ==== */

void sched_expire_account(sched_t *s, int idx, int64_t now)
{
    account_t *a = &s->accts[idx];
    int ev = quota_expire(&a->quota, now);
    if (ev & QUOTA_RESET_5H) {
        sched_emit(s, SCHED_EV_SESSION_RESET, idx, "Account \"%s\" session quota reset", a->name);
        a->near_logged &= ~1u;
    }
    if (ev & QUOTA_RESET_7D) {
        sched_emit(s, SCHED_EV_WEEKLY_RESET, idx, "Account \"%s\" weekly quota reset", a->name);
        a->near_logged &= 1u;
        /* A weekly reset ends an exhaustion the upstream reported. */
        if (a->status == ACCOUNT_EXHAUSTED) a->status = ACCOUNT_ACTIVE;
    }
}

/* ========================================================== formulas ==== */

double sched_scarcity(double u, int64_t reset_ms, int64_t len_ms, int64_t now)
{
    if (!sched_u_known(u)) return 0;
    double cu = sched_clamp01(u);
    if (!reset_ms || reset_ms <= now || len_ms <= 0) return cu;
    double elapsed = sched_clamp01((double)(len_ms - (reset_ms - now)) / (double)len_ms);
    double d = cu - elapsed;
    return d > 0 ? d : 0;
}

static sched_tier_t tier_of(const sched_options_t *o, double used)
{
    if (used >= o->weekly_exhausted) return SCHED_TIER_EXHAUSTED;
    if (used >= o->weekly_critical) return SCHED_TIER_CRITICAL;
    if (used >= o->weekly_reserve) return SCHED_TIER_RESERVE;
    if (used >= o->weekly_soft) return SCHED_TIER_SOFT;
    return SCHED_TIER_NORMAL;
}

static bool has_cap(const account_t *a)
{
    return a->cap_utilization > 0 && a->cap_utilization < 1;
}

sched_tier_t sched_weekly_raw(const sched_t *s, const account_t *a)
{
    const quota_t *q = &a->quota;
    const sched_options_t *o = &s->opt;
    /* Account-wide rejection. Part A3: a rejection with only the 5h window full is a session
     * bench (sched_session_benched), not weekly exhaustion. */
    if (strcmp(q->unified_status, "rejected") == 0 && q->unified7d >= 0.999)
        return SCHED_TIER_EXHAUSTED;
    if (!sched_is_claude(a)) {
        double used = fmax(sched_u0(q->provider_ses), sched_u0(q->provider_wk));
        if (has_cap(a) && used >= a->cap_utilization) return SCHED_TIER_CAPPED;
        return tier_of(o, used);
    }
    if (!sched_u_known(q->unified7d)) return SCHED_TIER_UNKNOWN;
    double used = q->unified7d;
    if (has_cap(a) && used >= a->cap_utilization) return SCHED_TIER_CAPPED;
    sched_tier_t t = tier_of(o, used);
    /* The upstream's "allowed…" outranks our threshold: a full window it still serves is a
     * last resort (critical), not exhausted (§13 scenario 23). */
    if (t == SCHED_TIER_EXHAUSTED && strncmp(q->unified_status, "allowed", 7) == 0)
        return SCHED_TIER_CRITICAL;
    return t;
}

double sched_weekly_effective(const sched_t *s, const account_t *a, int64_t now, sched_tier_t *pace)
{
    const quota_t *q = &a->quota;
    bool prov = !sched_is_claude(a);
    double used =
        prov ? fmax(sched_u0(q->provider_ses), sched_u0(q->provider_wk)) : sched_u0(q->unified7d);
    int64_t reset = prov ? q->provider_wk_reset_ms : q->unified7d_reset_ms;
    double eff = used;
    if (!prov && reset > now) {
        double elapsed = sched_clamp01((double)(SCHED_D7_MS - (reset - now)) / (double)SCHED_D7_MS);
        double debt = used - elapsed;
        eff = used + (debt > 0 ? debt : 0) * s->opt.weekly_burn_debt_weight;
        if (eff > 1.5) eff = 1.5;
    }
    if (pace) *pace = tier_of(&s->opt, prov ? used : eff);
    return eff;
}

sched_tier_t sched_weekly_display(const sched_t *s, const account_t *a, int64_t now)
{
    sched_tier_t raw = sched_weekly_raw(s, a);
    if (raw == SCHED_TIER_UNKNOWN || raw == SCHED_TIER_EXHAUSTED || raw == SCHED_TIER_CAPPED)
        return raw;
    double used = sched_is_claude(a)
                      ? sched_u0(a->quota.unified7d)
                      : fmax(sched_u0(a->quota.provider_ses), sched_u0(a->quota.provider_wk));
    double eff = sched_weekly_effective(s, a, now, NULL);
    sched_tier_t t = tier_of(&s->opt, fmax(used, eff));
    /* Pace never claims exhaustion the upstream has not reported. */
    return t > SCHED_TIER_CRITICAL ? SCHED_TIER_CRITICAL : t;
}

static double session_bench_level(const sched_t *s, const account_t *a)
{
    double bench = s->opt.switch_threshold > 0 ? s->opt.switch_threshold : 0.90;
    if (has_cap(a) && a->cap_utilization < bench) bench = a->cap_utilization;
    return bench;
}

bool sched_session_benched(const sched_t *s, const account_t *a)
{
    const quota_t *q = &a->quota;
    double bench = session_bench_level(s, a);
    if (sched_u_known(q->unified5h) && q->unified5h >= bench) return true;
    /* Part A3: the upstream rejected us on the 5h window: benched until the 5h reset. */
    if (strcmp(q->unified_status, "rejected") == 0 && q->unified5h >= 0.999) return true;
    double t = quota_tokens_used(q), r = quota_requests_used(q);
    if (sched_u_known(t) && t >= bench) return true;
    if (sched_u_known(r) && r >= bench) return true;
    if (sched_u_known(q->provider_ses) && q->provider_ses >= bench) return true;
    return false;
}

/* Ends passed pauses (§5.3: passing them stamps recoveredAt for the ramp). */
static void end_pauses(sched_t *s, int idx, int64_t now)
{
    account_t *a = &s->accts[idx];
    if (a->status == ACCOUNT_THROTTLED && a->rate_limited_until_ms <= now) {
        a->status = ACCOUNT_ACTIVE;
        a->recovered_at_ms = a->rate_limited_until_ms ? a->rate_limited_until_ms : now;
        a->rate_limited_until_ms = 0;
        sched_emit(s, SCHED_EV_RATE_EXPIRED, idx,
                   "Account \"%s\" rate limit expired, marking active", a->name);
    }
    if (a->cooldown_until_ms && a->cooldown_until_ms <= now) {
        a->recovered_at_ms = a->cooldown_until_ms;
        a->cooldown_until_ms = 0;
    }
    if (a->provisional_until_ms && a->provisional_until_ms <= now) {
        a->recovered_at_ms = a->provisional_until_ms;
        a->provisional_until_ms = 0;
    }
}

bool sched_available(sched_t *s, int idx, quota_family_t fam, bool allow_reserve,
                     bool allow_critical, int64_t now)
{
    account_t *a = &s->accts[idx];
    if (!a->enabled) return false;
    sched_expire_account(s, idx, now);
    end_pauses(s, idx, now);
    if (a->status == ACCOUNT_THROTTLED) return false;
    if (a->cooldown_until_ms > now || a->provisional_until_ms > now) return false;
    if (a->in_flight >= s->opt.safety_max_active_per_account) return false;
    if (s->global_in_flight >= s->opt.safety_max_global_active) return false;
    if (a->status == ACCOUNT_EXHAUSTED || a->status == ACCOUNT_ERROR) return false;
    if (sched_session_benched(s, a)) return false;
    sched_tier_t t = sched_weekly_raw(s, a);
    if (t == SCHED_TIER_EXHAUSTED || t == SCHED_TIER_CAPPED) return false;
    if (t == SCHED_TIER_CRITICAL && !allow_critical) return false;
    if (t == SCHED_TIER_RESERVE && !allow_reserve) return false;
    if (quota_scoped_benched(&a->quota, fam, s->opt.weekly_exhausted)) return false;
    return true;
}

int sched_effective_priority(const sched_t *s, const account_t *a)
{
    bool prov = !sched_is_claude(a);
    int base = a->priority;
    switch (s->opt.routing_mode) {
    case SCHED_ROUTE_BALANCE:
        return 0;
    case SCHED_ROUTE_PREFER_CLAUDE:
        return prov ? base : 0;
    case SCHED_ROUTE_PREFER_ZAI:
        return prov && strcmp(a->provider, "zai") == 0 ? 0 : base;
    case SCHED_ROUTE_PREFER_KIMI:
        return prov && strcmp(a->provider, "kimi") == 0 ? 0 : base;
    case SCHED_ROUTE_STICKY:
        return prov && s->opt.cross_provider_fallback == SCHED_FALLBACK_ALWAYS ? 0 : base;
    }
    return base;
}

static double concurrency_target(const sched_t *s, const account_t *a, int unlock)
{
    sched_tier_t t = sched_weekly_raw(s, a);
    if (t == SCHED_TIER_RESERVE || (t == SCHED_TIER_CRITICAL && unlock))
        return s->opt.reserve_concurrency_target;
    return s->opt.per_account_concurrency_target;
}

static double share_of(const sched_t *s, int idx, int64_t now)
{
    uint64_t total = 0, mine = 0;
    for (size_t i = 0; i < s->n; i++) {
        const account_t *a = &s->accts[i];
        if (!a->enabled || !sched_is_claude(a)) continue;
        uint64_t w;
        account_load_sum(a, now, s->opt.spread_window_ms, NULL, NULL, &w, NULL);
        total += w;
        if ((int)i == idx) mine = w;
    }
    if (!sched_is_claude(&s->accts[idx])) {
        account_load_sum(&s->accts[idx], now, s->opt.spread_window_ms, NULL, NULL, &mine, NULL);
    }
    return total ? (double)mine / (double)total : 0;
}

double sched_score(const sched_t *s, int idx, int w, quota_family_t fam, int unlock, int64_t now)
{
    const sched_options_t *o = &s->opt;
    const account_t *a = &s->accts[idx];
    const quota_t *q = &a->quota;
    if (w < 1) w = 1;
    double inflight = a->active_weight + w;
    double m = 1;
    if (!sched_is_claude(a) && q->weekly_absent) {
        double ses = sched_u0(q->provider_ses);
        if (ses < o->fast_refill_fade_util && o->fast_refill_fade_util > 0)
            m = 1 - o->fast_refill_discount * (1 - ses / o->fast_refill_fade_util);
    }
    double concurrency = inflight * o->concurrency_weight * m;
    double target = concurrency_target(s, a, unlock);
    double over = inflight - target;
    double cap_penalty = o->cap_penalty_weight * (over > 0 ? over : 0) * m;

    double s5 = sched_scarcity(q->unified5h, q->unified5h_reset_ms, SCHED_H5_MS, now);
    double s7 = sched_scarcity(q->unified7d, q->unified7d_reset_ms, SCHED_D7_MS, now);
    double sps = sched_scarcity(q->provider_ses, q->provider_ses_reset_ms, SCHED_H5_MS, now);
    double spw = sched_scarcity(q->provider_wk, q->provider_wk_reset_ms, SCHED_D7_MS, now);
    double tok = sched_u0(quota_tokens_used(q)), req = sched_u0(quota_requests_used(q));
    double scarcity = fmax(fmax(fmax(s5, s7), fmax(sps, spw)), fmax(tok, req));
    double pace_cost = scarcity * o->pace_cost_weight * m;

    double raw_util = fmax(fmax(sched_u0(q->unified5h), sched_u0(q->provider_ses)), tok);
    if (o->weekly_aware_scoring) raw_util = fmax(raw_util, fmax(s7, spw));
    double util_cost = raw_util * o->utilization_weight * m;

    double scoped_pace = 0;
    if (fam > QUOTA_FAMILY_NONE && fam < QUOTA_FAMILIES) {
        const struct quota_scoped *e = &q->scoped[fam];
        if (sched_u_known(e->utilization) && e->utilization >= o->weekly_reserve)
            scoped_pace =
                o->pace_cost_weight * sched_scarcity(e->utilization, e->reset_ms, SCHED_D7_MS, now);
    }

    double spread = share_of(s, idx, now) * o->spread_share_weight * m;

    double ramp = 0;
    if (a->recovered_at_ms && o->recovery_ramp_ms > 0) {
        int64_t age = now - a->recovered_at_ms;
        if (age >= 0 && age < o->recovery_ramp_ms)
            ramp = o->recovery_ramp_weight * (1 - (double)age / (double)o->recovery_ramp_ms);
    }

    sched_tier_t raw = sched_weekly_raw(s, a);
    double reserve_cost = 0;
    if (raw == SCHED_TIER_RESERVE) {
        double span = o->weekly_critical - o->weekly_reserve;
        double band =
            span > 0 ? sched_clamp01((sched_u0(q->unified7d) - o->weekly_reserve) / span) : 1;
        reserve_cost =
            o->reserve_floor_cost + o->reserve_band_weight * band + o->reserve_scarcity_weight * s7;
    }
    double critical_cost = 0;
    if (raw == SCHED_TIER_CRITICAL && unlock) {
        if (unlock == 1) {
            double window = o->critical_pre_reset_hours * 3600000.0;
            double eta = (double)(q->unified7d_reset_ms - now);
            double f = window > 0 ? sched_clamp01(1 - eta / window) : 1;
            critical_cost = o->critical_drain_floor_cost + (-6 - o->critical_drain_floor_cost) * f;
        } else {
            critical_cost = o->critical_pressure_cost;
        }
    }
    double failure = a->consecutive_failures * 5.0;
    return concurrency + cap_penalty + pace_cost + util_cost + scoped_pace + spread + ramp +
           reserve_cost + critical_cost + failure;
}

int64_t sched_backoff_ms(const sched_options_t *o, int failures)
{
    if (failures < 1) failures = 1;
    int e = failures - 1 > 5 ? 5 : failures - 1;
    int64_t c = o->cooldown_ms * ((int64_t)1 << e);
    return c < o->max_cooldown_ms ? c : o->max_cooldown_ms;
}

/* ===================================================== compatibility ==== */

bool sched_throttle_blocking(const sched_t *s, const sched_request_t *req, int64_t now)
{
    const sched_throttle_t *t = &s->throttle;
    if (!t->until_ms) return false;
    if (now < t->until_ms) return true;
    /* Half-open: only the probe goes while it is in flight. */
    return t->probe_in_flight && !(req && req->probe);
}

bool sched_matches(const sched_t *s, int idx, const sched_request_t *req, int64_t now,
                   unsigned flags)
{
    const account_t *a = &s->accts[idx];
    if (s->admission_paused) return false;
    const char *profile = req->profile && *req->profile ? req->profile : "claude";
    bool claude = sched_is_claude(a);
    if (claude) {
        if (strcmp(profile, "claude") != 0 && strcmp(profile, "all") != 0) return false;
    } else {
        if (strcmp(profile, "all") != 0) return false;
        if (s->opt.routing_mode == SCHED_ROUTE_STICKY &&
            s->opt.cross_provider_fallback == SCHED_FALLBACK_NEVER)
            return false;
    }
    if (claude && !(flags & SCHED_M_IGNORE_FAIRNESS) && s->queue_depth > 0 && !req->queue_admitted)
        return false;
    if (claude && !(flags & SCHED_M_IGNORE_THROTTLE) && sched_throttle_blocking(s, req, now))
        return false;
    return true;
}

bool sched_other_route(sched_t *s, const sched_request_t *req, int64_t now)
{
    quota_family_t fam = quota_family(req->model);
    for (size_t i = 0; i < s->n; i++) {
        if (account_mask_has(&req->tried, i)) continue;
        if (!sched_matches(s, (int)i, req, now, 0)) continue;
        if (sched_available(s, (int)i, fam, true, true, now)) return true;
    }
    return false;
}

/* Accounts available in pass-1 terms that still have headroom (§5.8 pressure). */
static int headroom_routes(sched_t *s, const sched_request_t *req, quota_family_t fam, int64_t now)
{
    int n = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (account_mask_has(&req->tried, i) || !sched_matches(s, (int)i, req, now, 0)) continue;
        if (!sched_available(s, (int)i, fam, true, false, now)) continue;
        const account_t *a = &s->accts[i];
        if (a->active_weight + 1 <= concurrency_target(s, a, 0)) n++;
    }
    return n;
}

static int unlock_reason(sched_t *s, int idx, int headroom, int64_t now)
{
    const account_t *a = &s->accts[idx];
    const sched_options_t *o = &s->opt;
    if (sched_weekly_raw(s, a) != SCHED_TIER_CRITICAL) return 0;
    int64_t reset = a->quota.unified7d_reset_ms;
    int64_t window = (int64_t)(o->critical_pre_reset_hours * 3600000.0);
    int64_t fresh = 2 * o->quota_probe_ms > 7200000 ? 2 * o->quota_probe_ms : 7200000;
    /* Only a probe (not a header) proves the reset is real and near. */
    if (reset > now && reset - now <= window && a->quota.last_probe_ok_ms &&
        now - a->quota.last_probe_ok_ms < fresh)
        return 1;
    if (o->critical_pressure_unlock_routes >= 0 && headroom <= o->critical_pressure_unlock_routes)
        return 2;
    return 0; /* peak relief needs providers in peak (§8.6), not modelled here */
}

int sched_critical_unlock(sched_t *s, int idx, const sched_request_t *req, int64_t now)
{
    quota_family_t fam = quota_family(req->model);
    return unlock_reason(s, idx, headroom_routes(s, req, fam, now), now);
}

/* ========================================================== bindings ==== */

static uint64_t hash_str(const char *k)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *k; k++)
        h = (h ^ (unsigned char)*k) * 1099511628211ULL;
    return h;
}

static sched_binding_t *binding_find(sched_t *s, const char *key)
{
    sched_binding_t *b = s->bind[hash_str(key) % SCHED_BIND_BUCKETS];
    for (; b; b = b->next)
        if (strcmp(b->key, key) == 0) return b;
    return NULL;
}

static void binding_delete(sched_t *s, const char *key)
{
    sched_binding_t **pp = &s->bind[hash_str(key) % SCHED_BIND_BUCKETS];
    for (; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->key, key) == 0) {
            sched_binding_t *b = *pp;
            *pp = b->next;
            binding_free(b);
            s->n_bindings--;
            return;
        }
}

static void set_str(char **dst, const char *v)
{
    if (*dst && strcmp(*dst, v) == 0) return;
    free(*dst);
    *dst = xstrdup(v);
}

/* §5.6: after acquiring idx for a session. */
static void binding_update(sched_t *s, const char *key, int idx, quota_family_t fam, int64_t now)
{
    account_t *c = &s->accts[idx];
    int prio = sched_effective_priority(s, c);
    sched_binding_t *b = binding_find(s, key);
    if (!b) {
        b = xcalloc(1, sizeof *b);
        b->key = xstrdup(key);
        b->home = xstrdup(c->name);
        b->current = xstrdup(c->name);
        b->home_priority = prio;
        b->last_ms = now;
        uint64_t h = hash_str(key) % SCHED_BIND_BUCKETS;
        b->next = s->bind[h];
        s->bind[h] = b;
        s->n_bindings++;
        return;
    }
    b->last_ms = now;
    if (strcmp(b->home, c->name) != 0) {
        if (prio < b->home_priority) {
            set_str(&b->home, c->name);
            b->home_priority = prio;
        } else if (prio == b->home_priority) {
            /* A by-choice move (home still fine) re-homes; a failover keeps home so the
             * session returns when it recovers. */
            int h = sched_find(s, b->home);
            if (h < 0 || sched_available(s, h, fam, true, false, now)) {
                set_str(&b->home, c->name);
                b->home_priority = prio;
            }
        }
    }
    set_str(&b->current, c->name);
}

/* ========================================================= selection ==== */

static void acquire(sched_t *s, int idx, sched_request_t *req, quota_family_t fam, int64_t now)
{
    account_t *a = &s->accts[idx];
    int w = req->weight > 0 ? req->weight : 1;
    a->in_flight++;
    a->active_weight += w;
    a->last_used_ms = now;
    s->global_in_flight++;
    req->started_ms = now;
    if (req->session && *req->session) binding_update(s, req->session, idx, fam, now);
    sched_throttle_t *t = &s->throttle;
    if (sched_is_claude(a) && t->until_ms && t->until_ms <= now && !t->probe_in_flight) {
        t->probe_in_flight = true;
        t->probe_idx = idx;
        req->probe = true;
        sched_emit(s, SCHED_EV_THROTTLE_PROBE, idx,
                   "Anthropic upstream throttle window expired; sending one recovery probe");
    }
}

void sched_lease_end(sched_t *s, int idx, sched_request_t *req)
{
    account_t *a = &s->accts[idx];
    int w = req->weight > 0 ? req->weight : 1;
    if (a->in_flight > 0) a->in_flight--;
    a->active_weight = a->active_weight > w ? a->active_weight - w : 0;
    if (s->global_in_flight > 0) s->global_in_flight--;
}

static bool warming(const account_t *a, int64_t now)
{
    return a->runtime_added && (now - a->added_at_ms < 300000 || a->completed < 5);
}

static bool migration_safe(const sched_t *s, const account_t *bound, const sched_request_t *req)
{
    if (!sched_is_claude(bound)) return true;
    if (!req->body_json) return false;
    return !req->signed_thinking || s->opt.cross_account_thinking_migration;
}

static int pace_rank(sched_tier_t t)
{
    return t == SCHED_TIER_UNKNOWN ? 0 : (int)t;
}

/* The rebalance test of §5.6: true = move away from bound. */
static bool rebalance_move(sched_t *s, int bound, const sched_request_t *req, quota_family_t fam,
                           int64_t now)
{
    account_t *a = &s->accts[bound];
    if (!migration_safe(s, a, req) || req->queue_admitted) return false;
    sched_tier_t pace;
    sched_weekly_effective(s, a, now, &pace);
    double u5 = sched_u0(a->quota.unified5h);
    bool hot = sched_session_benched(s, a) || pace_rank(pace) >= SCHED_TIER_RESERVE || u5 >= 0.65;
    if (!hot) return false;
    int w = req->weight;
    int best = -1;
    double best_score = 0;
    for (size_t i = 0; i < s->n; i++) {
        if ((int)i == bound || account_mask_has(&req->tried, i)) continue;
        if (!sched_matches(s, (int)i, req, now, 0)) continue;
        if (!sched_is_claude(&s->accts[i]) && req->signed_thinking) continue;
        if (!sched_available(s, (int)i, fam, false, false, now)) continue;
        double sc = sched_score(s, (int)i, w, fam, 0, now);
        if (best < 0 || sc < best_score) best = (int)i, best_score = sc;
    }
    if (best < 0) return false;
    sched_tier_t raw = sched_weekly_raw(s, a);
    if (raw >= SCHED_TIER_RESERVE || u5 >= 0.85) return true;
    double bs = sched_score(s, bound, w, fam, 0, now);
    sched_tier_t best_pace;
    sched_weekly_effective(s, &s->accts[best], now, &best_pace);
    return best_score <= 0.5 * bs && bs - best_score >= 0.5 &&
           pace_rank(best_pace) < pace_rank(pace);
}

/* §5.6 warmup pull: a session on an established account moves to a warming one. */
static int warmup_pull(sched_t *s, int bound, const sched_request_t *req, quota_family_t fam,
                       int64_t now)
{
    account_t *a = &s->accts[bound];
    if (!migration_safe(s, a, req) || req->queue_admitted || warming(a, now)) return -1;
    uint32_t recent;
    account_load_sum(a, now, 900000, &recent, NULL, NULL, NULL);
    if (!recent) return -1;
    int best = -1;
    double best_score = 0;
    for (size_t i = 0; i < s->n; i++) {
        account_t *c = &s->accts[i];
        if ((int)i == bound || !warming(c, now) || !sched_is_claude(c)) continue;
        if (account_mask_has(&req->tried, i) || !sched_matches(s, (int)i, req, now, 0)) continue;
        if (!sched_available(s, (int)i, fam, false, false, now)) continue;
        double sc = sched_score(s, (int)i, req->weight, fam, 0, now);
        if (best < 0 || sc < best_score) best = (int)i, best_score = sc;
    }
    return best;
}

static int sticky_choice(sched_t *s, sched_request_t *req, quota_family_t fam, int64_t now,
                         const char **via)
{
    sched_binding_t *b = binding_find(s, req->session);
    if (!b) return -1;
    int h = sched_find(s, b->home), c = sched_find(s, b->current);
    if (h < 0 && c < 0) {
        binding_delete(s, req->session);
        return -1;
    }
    int bound = -1;
    if (h >= 0 && !account_mask_has(&req->tried, (size_t)h) && sched_matches(s, h, req, now, 0) &&
        sched_available(s, h, fam, true, false, now))
        bound = h;
    else if (c >= 0 && !account_mask_has(&req->tried, (size_t)c) &&
             sched_matches(s, c, req, now, 0) && sched_available(s, c, fam, true, false, now))
        bound = c;
    if (bound < 0) return -1;
    int warm = warmup_pull(s, bound, req, fam, now);
    if (warm >= 0) {
        *via = "warmup";
        return warm;
    }
    int bp = sched_effective_priority(s, &s->accts[bound]);
    for (size_t i = 0; i < s->n; i++) {
        if ((int)i == bound || account_mask_has(&req->tried, i)) continue;
        if (sched_effective_priority(s, &s->accts[i]) >= bp) continue;
        if (sched_matches(s, (int)i, req, now, 0) &&
            sched_available(s, (int)i, fam, true, false, now))
            return -1; /* a better-priority route exists: let the ladder take it */
    }
    if (rebalance_move(s, bound, req, fam, now)) return -1;
    *via = "sticky";
    return bound;
}

static int ladder(sched_t *s, sched_request_t *req, quota_family_t fam, int64_t now,
                  int *unlock_out)
{
    if (!s->n) return -1;
    int headroom = headroom_routes(s, req, fam, now);
    for (int pass = 1; pass <= 2; pass++) {
        int best = -1, best_prio = 0, best_unlock = 0;
        double best_score = 0;
        for (size_t k = 0; k < s->n; k++) {
            int i = (int)((s->next_index + k) % s->n);
            if (account_mask_has(&req->tried, (size_t)i)) continue;
            if (!sched_matches(s, i, req, now, 0)) continue;
            int unlock = unlock_reason(s, i, headroom, now);
            bool allow_crit = pass == 2 || unlock != 0;
            if (!sched_available(s, i, fam, true, allow_crit, now)) continue;
            int prio = sched_effective_priority(s, &s->accts[i]);
            double sc = sched_score(s, i, req->weight, fam, unlock, now);
            if (best < 0 || prio < best_prio || (prio == best_prio && sc < best_score - 1e-12)) {
                best = i;
                best_prio = prio;
                best_score = sc;
                best_unlock = sched_weekly_raw(s, &s->accts[i]) == SCHED_TIER_CRITICAL ? unlock : 0;
            }
        }
        if (best >= 0) {
            *unlock_out = best_unlock;
            if (pass == 2 && sched_weekly_raw(s, &s->accts[best]) == SCHED_TIER_CRITICAL)
                *unlock_out = -1; /* plain second-pass last resort */
            return best;
        }
    }
    return -1;
}

/* §5.5 step 5: an account whose earliest known reset already passed is forced active. */
static int forced_reset(sched_t *s, sched_request_t *req, quota_family_t fam, int64_t now)
{
    for (size_t i = 0; i < s->n; i++) {
        account_t *a = &s->accts[i];
        if (!a->enabled || account_mask_has(&req->tried, i)) continue;
        if (!sched_matches(s, (int)i, req, now, 0)) continue;
        if (a->status != ACCOUNT_EXHAUSTED && a->status != ACCOUNT_THROTTLED) continue;
        int64_t r = a->rate_limited_until_ms      ? a->rate_limited_until_ms
                    : a->quota.unified5h_reset_ms ? a->quota.unified5h_reset_ms
                    : a->quota.unified7d_reset_ms ? a->quota.unified7d_reset_ms
                                                  : a->quota.resets_at_ms;
        if (!r || r > now) continue;
        a->status = ACCOUNT_ACTIVE;
        a->rate_limited_until_ms = 0;
        if (!sched_available(s, (int)i, fam, true, true, now)) continue;
        sched_emit(s, SCHED_EV_FORCED_RESET, (int)i, "Account \"%s\" reset, switching to it",
                   a->name);
        return (int)i;
    }
    return -1;
}

int sched_select(sched_t *s, sched_request_t *req, int64_t now, sched_pick_t *out)
{
    memset(out, 0, sizeof *out);
    out->idx = -1;
    if (req->weight < 1) req->weight = 1;
    quota_family_t fam = quota_family(req->model);
    int idx = -1;
    const char *via = NULL;

    /* 1. Retry pin (A5 refresh retry, §8.5 thinking fail-safe). */
    if (req->pin >= 0 && (size_t)req->pin < s->n) {
        int p = req->pin;
        req->pin = -1;
        if (sched_matches(s, p, req, now, 0) && sched_available(s, p, fam, true, true, now))
            idx = p, via = "pin";
    }
    /* 2. Preferred (manual mode); unusable preferred accounts fall through to automatic. */
    if (idx < 0 && s->opt.preferred_mode && s->opt.preferred[0]) {
        int p = sched_find(s, s->opt.preferred);
        if (p >= 0 && sched_is_claude(&s->accts[p]) && s->accts[p].enabled &&
            !account_mask_has(&req->tried, (size_t)p) && sched_matches(s, p, req, now, 0) &&
            (sched_available(s, p, fam, true, false, now) ||
             sched_available(s, p, fam, true, true, now)))
            idx = p, via = "preferred";
    }
    /* 3. Sticky session binding. */
    if (idx < 0 && s->opt.routing_mode == SCHED_ROUTE_STICKY && req->session && *req->session)
        idx = sticky_choice(s, req, fam, now, &via);
    /* 4. Two-pass ladder. */
    int unlock = 0;
    if (idx < 0) {
        idx = ladder(s, req, fam, now, &unlock);
        if (idx >= 0) {
            via = "ladder";
            s->next_index = (size_t)idx + 1;
            /* The "current account" is the ladder's (§5.5 step 4); sticky picks leave it. */
            if (s->current_index != idx) {
                if (s->current_index >= 0)
                    sched_emit(s, SCHED_EV_SWITCHED, idx, "Switched to account \"%s\"",
                               s->accts[idx].name);
                s->current_index = idx;
            }
        }
    }
    /* 5. A reset that already passed. */
    if (idx < 0) {
        idx = forced_reset(s, req, fam, now);
        if (idx >= 0) via = "reset";
    }
    if (idx < 0) {
        out->retry_ms = sched_next_retry(s, req, now, &out->cause);
        return -1;
    }
    account_t *a = &s->accts[idx];
    if (sched_weekly_raw(s, a) == SCHED_TIER_CRITICAL) {
        out->critical = true;
        if (unlock > 0 && !(a->unlock_logged & (1u << unlock))) {
            static const char *const reasons[] = {"", "prereset", "pressure", "peak"};
            char eta[32] = "";
            if (a->quota.unified7d_reset_ms > now) {
                char d[16];
                sched_fmt_duration(a->quota.unified7d_reset_ms - now, d, sizeof d);
                snprintf(eta, sizeof eta, " (reset in %s)", d);
            }
            sched_emit(s, SCHED_EV_CRITICAL_UNLOCK, idx,
                       "Critical unlock \"%s\": routing to \"%s\"%s", reasons[unlock], a->name,
                       eta);
            a->unlock_logged |= 1u << unlock;
        }
    } else {
        a->unlock_logged = 0;
    }
    acquire(s, idx, req, fam, now);
    out->idx = idx;
    out->via = via;
    out->cause = SCHED_CAUSE_AVAILABLE;
    return idx;
}

/* ============================================================ oracle ==== */

/* When account i could serve again and why; SCHED_NEVER when unknown or never. */
static int64_t account_recovery(sched_t *s, int i, quota_family_t fam, int64_t now,
                                sched_cause_t *cause, bool *weekly_unknown)
{
    account_t *a = &s->accts[i];
    const quota_t *q = &a->quota;
    int64_t at = now;
    sched_cause_t c = SCHED_CAUSE_UNAVAILABLE;
    /* An account recovers when its last blocker clears: take the latest of them. */
#define BLOCK(t, why)                                                                              \
    do {                                                                                           \
        int64_t t_ = (t);                                                                          \
        if (t_ > at) at = t_, c = (why);                                                           \
    } while (0)
    if (a->status == ACCOUNT_THROTTLED) BLOCK(a->rate_limited_until_ms, SCHED_CAUSE_RATE_LIMITED);
    if (a->cooldown_until_ms > now) BLOCK(a->cooldown_until_ms, SCHED_CAUSE_COOLDOWN);
    if (a->provisional_until_ms > now) BLOCK(a->provisional_until_ms, SCHED_CAUSE_UPSTREAM_FAILURE);
    double bench = session_bench_level(s, a);
    if ((sched_u_known(q->unified5h) && q->unified5h >= bench) ||
        (strcmp(q->unified_status, "rejected") == 0 && q->unified5h >= 0.999))
        BLOCK(q->unified5h_reset_ms ? q->unified5h_reset_ms : SCHED_NEVER,
              SCHED_CAUSE_SESSION_LIMIT);
    double tu = quota_tokens_used(q), ru = quota_requests_used(q);
    if (sched_u_known(tu) && tu >= bench)
        BLOCK(q->resets_at_ms ? q->resets_at_ms : SCHED_NEVER, SCHED_CAUSE_TOKEN_LIMIT);
    if (sched_u_known(ru) && ru >= bench)
        BLOCK(q->resets_at_ms ? q->resets_at_ms : SCHED_NEVER, SCHED_CAUSE_REQUEST_LIMIT);
    if (sched_u_known(q->provider_ses) && q->provider_ses >= bench)
        BLOCK(q->provider_ses_reset_ms ? q->provider_ses_reset_ms : SCHED_NEVER,
              SCHED_CAUSE_PROVIDER_LIMIT);
    sched_tier_t t = sched_weekly_raw(s, a);
    if (t == SCHED_TIER_EXHAUSTED || t == SCHED_TIER_CAPPED) {
        int64_t r = sched_is_claude(a) ? q->unified7d_reset_ms : q->provider_wk_reset_ms;
        if (!r) *weekly_unknown = true;
        BLOCK(r ? r : SCHED_NEVER, SCHED_CAUSE_WEEKLY_EXHAUSTED);
    } else if (t == SCHED_TIER_CRITICAL) {
        BLOCK(now + 60000, SCHED_CAUSE_WEEKLY_CRITICAL);
    }
    if (quota_scoped_benched(q, fam, s->opt.weekly_exhausted))
        BLOCK(q->scoped[fam].reset_ms ? q->scoped[fam].reset_ms : SCHED_NEVER,
              SCHED_CAUSE_WEEKLY_EXHAUSTED);
    if (a->in_flight >= s->opt.safety_max_active_per_account ||
        s->global_in_flight >= s->opt.safety_max_global_active)
        BLOCK(now + 60000, SCHED_CAUSE_CONCURRENCY_CAP);
#undef BLOCK
    *cause = c;
    return at == now ? SCHED_NEVER : at;
}

int64_t sched_next_retry(sched_t *s, const sched_request_t *req, int64_t now, sched_cause_t *cause)
{
    quota_family_t fam = quota_family(req->model);
    sched_cause_t dummy;
    if (!cause) cause = &dummy;
    /* The shared throttle first, unless a provider can take the request. */
    if (sched_throttle_blocking(s, req, now)) {
        bool provider_route = false;
        for (size_t i = 0; i < s->n && !provider_route; i++)
            if (!sched_is_claude(&s->accts[i]) && sched_matches(s, (int)i, req, now, 0) &&
                sched_available(s, (int)i, fam, true, false, now))
                provider_route = true;
        if (!provider_route) {
            if (now >= s->throttle.until_ms) {
                *cause = SCHED_CAUSE_UPSTREAM_PROBE;
                return 1000;
            }
            *cause = SCHED_CAUSE_UPSTREAM_THROTTLE;
            return s->throttle.until_ms - now;
        }
    }
    const unsigned flags = SCHED_M_IGNORE_FAIRNESS | SCHED_M_IGNORE_THROTTLE;
    bool any_match = false, crit = false;
    for (size_t i = 0; i < s->n; i++) {
        if (!sched_matches(s, (int)i, req, now, flags)) continue;
        any_match = true;
        if (sched_available(s, (int)i, fam, true, false, now)) {
            bool fair = s->queue_depth > 0 && !req->queue_admitted && sched_is_claude(&s->accts[i]);
            *cause = fair ? SCHED_CAUSE_QUEUED_BEHIND_FAIRNESS : SCHED_CAUSE_AVAILABLE;
            return fair ? 1000 : 0;
        }
        if (sched_available(s, (int)i, fam, true, true, now)) crit = true;
    }
    if (!any_match) {
        *cause = SCHED_CAUSE_NO_ELIGIBLE_ROUTE;
        return SCHED_NEVER;
    }
    if (crit) {
        *cause = SCHED_CAUSE_CRITICAL_LAST_RESORT;
        return 0;
    }
    int64_t best = SCHED_NEVER;
    sched_cause_t best_cause = SCHED_CAUSE_UNAVAILABLE;
    bool weekly_unknown = false;
    for (size_t i = 0; i < s->n; i++) {
        account_t *a = &s->accts[i];
        if (!a->enabled || a->status == ACCOUNT_ERROR || a->status == ACCOUNT_EXHAUSTED) continue;
        if (!sched_matches(s, (int)i, req, now, flags)) continue;
        sched_cause_t c;
        int64_t at = account_recovery(s, (int)i, fam, now, &c, &weekly_unknown);
        if (at < best) best = at, best_cause = c;
    }
    if (best == SCHED_NEVER) {
        *cause = weekly_unknown ? SCHED_CAUSE_WEEKLY_RESET_UNKNOWN : SCHED_CAUSE_UNAVAILABLE;
        return SCHED_NEVER;
    }
    *cause = best_cause;
    return best > now ? best - now : 0;
}

void sched_no_route_message(const sched_t *s, int64_t retry_ms, sched_cause_t cause, char *buf,
                            size_t len)
{
    int n = 0;
    for (size_t i = 0; i < s->n; i++)
        if (s->accts[i].enabled && sched_is_claude(&s->accts[i])) n++;
    char d[16];
    sched_fmt_duration(retry_ms == SCHED_NEVER ? 0 : retry_ms, d, sizeof d);
    bool transient = cause == SCHED_CAUSE_COOLDOWN || cause == SCHED_CAUSE_UPSTREAM_FAILURE ||
                     cause == SCHED_CAUSE_CONCURRENCY_CAP;
    if (retry_ms == SCHED_NEVER || cause == SCHED_CAUSE_WEEKLY_EXHAUSTED)
        snprintf(buf, len,
                 "No account can take this request — all %d Claude account%s at their limit.%s%s%s "
                 "Add another Claude account or wait for a quota reset.",
                 n, n == 1 ? " is" : "s are", retry_ms == SCHED_NEVER ? "" : " Soonest reset in ~",
                 retry_ms == SCHED_NEVER ? "" : d, retry_ms == SCHED_NEVER ? "" : ".");
    else if (transient)
        snprintf(buf, len,
                 "No account can take this request — all %d Claude account%s momentarily busy, "
                 "not out of quota. Retry in ~%s; it clears on its own.",
                 n, n == 1 ? " is" : "s are", d);
    else
        snprintf(buf, len,
                 "No account can take this request — all %d Claude account%s %sat their limit. "
                 "Retry in ~%s.",
                 n, n == 1 ? " is" : "s are", retry_ms < 300000 ? "momentarily " : "", d);
}

/* ============================================================== tick ==== */

void sched_tick(sched_t *s, int64_t now)
{
    for (size_t i = 0; i < s->n; i++) {
        sched_expire_account(s, (int)i, now);
        end_pauses(s, (int)i, now);
    }
    for (int k = 0; k < SCHED_BIND_BUCKETS; k++) {
        sched_binding_t **pp = &s->bind[k];
        while (*pp) {
            if (now - (*pp)->last_ms > 24LL * 3600 * 1000) {
                sched_binding_t *b = *pp;
                *pp = b->next;
                binding_free(b);
                s->n_bindings--;
            } else {
                pp = &(*pp)->next;
            }
        }
    }
}
