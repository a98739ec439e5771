#include "control/status.h"
#include "core/clock.h"

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

static const char *account_status(const account_t *a, int64_t now)
{
    if (!a->enabled) return "disabled";
    if (quota_rejected(&a->quota)) return "exhausted";
    if (a->cooldown_until_ms > now) return a->last_status == 429 ? "throttled" : "cooldown";
    return "active";
}

static json_t *account_json(const account_t *a, int64_t now)
{
    const quota_t *q = &a->quota;
    json_t *quota = json_pack(
        "{s:o,s:o,s:o,s:o,s:s?,s:o,s:o,s:o,s:o,s:o}", "unified5h", num_or_null(q->unified5h),
        "unified7d", num_or_null(q->unified7d), "unified5hReset",
        q->unified5h_reset_ms ? json_integer(q->unified5h_reset_ms) : json_null(), "unified7dReset",
        q->unified7d_reset_ms ? json_integer(q->unified7d_reset_ms) : json_null(), "unifiedStatus",
        q->unified_status[0] ? q->unified_status : NULL, "tokensLimit",
        int_or_null(q->tokens_limit), "tokensRemaining", int_or_null(q->tokens_remaining),
        "requestsLimit", int_or_null(q->requests_limit), "requestsRemaining",
        int_or_null(q->requests_remaining), "resetsAt", iso_or_null(q->resets_at_ms));
    json_t *usage =
        json_pack("{s:I,s:I,s:I,s:o}", "totalInputTokens", (json_int_t)a->input_tokens,
                  "totalOutputTokens", (json_int_t)a->output_tokens, "totalRequests",
                  (json_int_t)q->total_requests, "lastUsed", iso_or_null(a->last_used_ms));
    json_t *load = json_pack("{s:{s:i}}", "current", "inFlight", a->in_flight);
    return json_pack("{s:s,s:s,s:b,s:s?,s:s,s:i,s:I,s:I,s:i,s:o,s:o,s:o,s:o,s:o,s:o}", "name",
                     a->name, "type", account_type_name(a->type), "enabled", a->enabled, "upstream",
                     a->upstream, "status", account_status(a, now), "inFlight", a->in_flight,
                     "completedRequests", (json_int_t)a->completed, "failedRequests",
                     (json_int_t)a->failed, "consecutiveFailures", a->consecutive_failures,
                     "lastStatus", a->last_status ? json_integer(a->last_status) : json_null(),
                     "cooldownUntil",
                     iso_or_null(a->cooldown_until_ms > now ? a->cooldown_until_ms : 0), "load",
                     load, "quota", quota, "usage", usage, "lastResponseMs",
                     a->last_response_ms ? json_integer(a->last_response_ms) : json_null());
}

char *status_render(const status_input_t *in)
{
    json_t *accts = json_array();
    for (size_t i = 0; i < in->naccts; i++)
        json_array_append_new(accts, account_json(&in->accts[i], in->now_ms));
    const char *current =
        in->current >= 0 && (size_t)in->current < in->naccts ? in->accts[in->current].name : NULL;
    json_t *doc = json_pack(
        "{s:{s:s,s:n,s:b},s:s,s:s?,s:f,s:{s:s,s:s?},s:o,s:{s:s,s:I,s:b},s:{s:b,s:n,s:n,s:b}}",
        "version", "current", in->version, "latest", "hasUpdate", 0, "runningVersion", in->version,
        "currentAccount", current, "switchThreshold", in->switch_threshold, "routing", "mode",
        in->routing_mode ? in->routing_mode : "automatic", "preferredAccount", in->preferred,
        "accounts", accts, "scheduler", "mode", "adaptive-least-loaded", "globalInFlight",
        (json_int_t)in->global_in_flight, "admissionPaused", 0, "upstreamThrottle", "active", 0,
        "until", "reason", "probeInFlight", 0);
    char *s = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(doc);
    size_t n = strlen(s);
    s = realloc(s, n + 2);
    if (!s) abort();
    s[n] = '\n';
    s[n + 1] = '\0';
    return s;
}
