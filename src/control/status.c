#include "control/status.h"
#include "core/clock.h"
#include "store/state.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static json_t *num_or_null(double v)
{
    return v < 0 ? json_null() : json_real(v);
}

static json_t *int_or_null(int64_t v)
{
    return v < 0 ? json_null() : json_integer(v);
}

static json_t *iso_or_null(int64_t ms)
{
    if (ms <= 0) return json_null();
    char iso[32];
    return json_string(clock_iso8601(ms, iso, sizeof iso));
}

static json_t *load_json(const account_t *a, int64_t now, int64_t window)
{
    uint32_t req = 0, failed = 0;
    uint64_t weight = 0, dur = 0;
    account_load_sum(a, now, window, &req, &failed, &weight, &dur);
    return json_pack("{s:i,s:i,s:I,s:o}", "requests", (int)req, "failed", (int)failed, "weight",
                     (json_int_t)weight, "avgMs",
                     req ? json_integer((json_int_t)(dur / req)) : json_null());
}

static json_t *quota_json(const quota_t *q)
{
    return json_pack(
        "{s:o,s:o,s:o,s:o,s:s?,s:o,s:o,s:o,s:o,s:o,s:b}", "unified5h", num_or_null(q->unified5h),
        "unified7d", num_or_null(q->unified7d), "unified5hReset",
        q->unified5h_reset_ms ? json_integer(q->unified5h_reset_ms) : json_null(), "unified7dReset",
        q->unified7d_reset_ms ? json_integer(q->unified7d_reset_ms) : json_null(), "unifiedStatus",
        q->unified_status[0] ? q->unified_status : NULL, "tokensLimit",
        int_or_null(q->tokens_limit), "tokensRemaining", int_or_null(q->tokens_remaining),
        "requestsLimit", int_or_null(q->requests_limit), "requestsRemaining",
        int_or_null(q->requests_remaining), "resetsAt", iso_or_null(q->resets_at_ms),
        "weeklyAbsent", q->weekly_absent);
}

static json_t *account_json(const sched_t *s, const account_t *a, int64_t now)
{
    sched_tier_t pace;
    double eff = sched_weekly_effective(s, a, now, &pace);
    json_t *weekly =
        json_pack("{s:s,s:s,s:f,s:s}", "state", sched_tier_name(sched_weekly_display(s, a, now)),
                  "rawState", sched_tier_name(sched_weekly_raw(s, a)), "effectiveUsage", eff,
                  "paceState", sched_tier_name(pace));
    json_t *load = json_pack("{s:{s:i,s:i},s:o,s:o}", "current", "inFlight", a->in_flight,
                             "activeWeight", a->active_weight, "last15m",
                             load_json(a, now, 15 * 60000), "last1h", load_json(a, now, 3600000));
    json_t *usage =
        json_pack("{s:I,s:I,s:I,s:o}", "totalInputTokens", (json_int_t)a->input_tokens,
                  "totalOutputTokens", (json_int_t)a->output_tokens, "totalRequests",
                  (json_int_t)a->quota.total_requests, "lastUsed", iso_or_null(a->last_used_ms));
    int64_t cool = a->cooldown_until_ms > a->provisional_until_ms ? a->cooldown_until_ms
                                                                  : a->provisional_until_ms;
    json_t *o = json_pack(
        "{s:s,s:s,s:s?,s:b,s:s?,s:i,s:o,s:b,s:s,s:i,s:i,s:I,s:I,s:i,s:o,s:o}", "name", a->name,
        "type", account_type_name(a->type), "provider", a->provider[0] ? a->provider : NULL,
        "enabled", a->enabled, "upstream", a->upstream, "priority", a->priority, "capUtilization",
        a->cap_utilization > 0 ? json_real(a->cap_utilization) : json_null(), "runtime",
        a->runtime_added, "status", account_status_name(a->status), "inFlight", a->in_flight,
        "activeWeight", a->active_weight, "completedRequests", (json_int_t)a->completed,
        "failedRequests", (json_int_t)a->failed, "consecutiveFailures", a->consecutive_failures,
        "lastStatus", a->last_status ? json_integer(a->last_status) : json_null(), "lastResponseMs",
        a->last_response_ms ? json_integer(a->last_response_ms) : json_null());
    json_object_set_new(o, "load", load);
    json_object_set_new(o, "lastError",
                        a->last_error[0] ? json_string(a->last_error) : json_null());
    json_object_set_new(o, "lastErrorAt", iso_or_null(a->last_error_ms));
    json_object_set_new(o, "cooldownUntil", iso_or_null(cool > now ? cool : 0));
    /* §3.8 shows every quota field: the ones without a display form (scopedWeekly, provider
     * windows, lastProbeOkAt) as the state file stores them. */
    json_t *quota = quota_json(&a->quota), *full = state_quota_to_json(&a->quota);
    json_object_update_missing(quota, full);
    json_decref(full);
    json_object_set_new(o, "quota", quota);
    json_object_set_new(o, "weekly", weekly);
    json_object_set_new(o, "usage", usage);
    json_object_set_new(o, "rateLimitedUntil",
                        iso_or_null(a->rate_limited_until_ms > now ? a->rate_limited_until_ms : 0));
    return o;
}

char *status_render(const sched_t *s, int64_t now, const char *version)
{
    json_t *accts = json_array();
    for (size_t i = 0; i < s->n; i++)
        json_array_append_new(accts, account_json(s, &s->accts[i], now));
    const char *current = s->current_index >= 0 && (size_t)s->current_index < s->n
                              ? s->accts[s->current_index].name
                              : NULL;
    const sched_throttle_t *t = &s->throttle;
    bool active = t->until_ms > now || t->probe_in_flight;
    /* §5.1: preferring a missing, disabled or provider account falls back to automatic. */
    int pref = s->opt.preferred_mode ? sched_find(s, s->opt.preferred) : -1;
    bool preferred = pref >= 0 && s->accts[pref].enabled && !s->accts[pref].provider[0];
    json_t *doc = json_pack(
        "{s:{s:s,s:n,s:b},s:s,s:s?,s:f,s:{s:s,s:s?,s:s},s:o}", "version", "current", version,
        "latest", "hasUpdate", 0, "runningVersion", version, "currentAccount", current,
        "switchThreshold", s->opt.switch_threshold, "routing", "mode",
        preferred ? "preferred" : "automatic", "preferredAccount",
        preferred ? s->opt.preferred : NULL, "crossProviderFallbackPolicy",
        s->opt.cross_provider_fallback == SCHED_FALLBACK_ALWAYS           ? "always"
        : s->opt.cross_provider_fallback == SCHED_FALLBACK_WHEN_EXHAUSTED ? "when-exhausted"
                                                                          : "never",
        "accounts", accts);
    json_object_set_new(doc, "scheduler",
                        json_pack("{s:s,s:i,s:b,s:i,s:i,s:i}", "mode", "adaptive-least-loaded",
                                  "globalInFlight", s->global_in_flight, "admissionPaused",
                                  s->admission_paused, "safetyMaxActivePerAccount",
                                  s->opt.safety_max_active_per_account, "safetyMaxGlobalActive",
                                  s->opt.safety_max_global_active, "queued", s->queue_depth));
    json_object_set_new(doc, "upstreamThrottle",
                        json_pack("{s:b,s:o,s:s?,s:b,s:i,s:o,s:i}", "active", active, "until",
                                  iso_or_null(t->until_ms), "reason",
                                  t->reason[0] ? t->reason : NULL, "probeInFlight",
                                  t->probe_in_flight, "count", t->count, "lastAt",
                                  iso_or_null(t->last_ms), "queued", s->queue_depth));
    json_object_set_new(doc, "sessions",
                        json_pack("{s:I}", "stickyBindings", (json_int_t)s->n_bindings));
    char *out = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(doc);
    size_t n = strlen(out);
    out = realloc(out, n + 2);
    if (!out) abort();
    out[n] = '\n';
    out[n + 1] = '\0';
    return out;
}
