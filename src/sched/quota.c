#include "sched/quota.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define H5_MS (5LL * 3600 * 1000)
#define D7_MS (7LL * 24 * 3600 * 1000)

void quota_init(quota_t *q)
{
    memset(q, 0, sizeof *q);
    q->unified5h = q->unified7d = QUOTA_UNKNOWN;
    q->tokens_limit = q->tokens_remaining = -1;
    q->requests_limit = q->requests_remaining = -1;
    q->generic_limit = q->generic_remaining = -1;
    for (int f = 0; f < QUOTA_FAMILIES; f++)
        q->scoped[f].utilization = QUOTA_UNKNOWN;
    q->provider_ses = q->provider_wk = QUOTA_UNKNOWN;
}

quota_family_t quota_family(const char *model)
{
    if (!model) return QUOTA_FAMILY_NONE;
    char low[128];
    size_t n = 0;
    for (; model[n] && n + 1 < sizeof low; n++)
        low[n] = (char)((model[n] >= 'A' && model[n] <= 'Z') ? model[n] + 32 : model[n]);
    low[n] = '\0';
    if (strstr(low, "fable") || strstr(low, "mythos")) return QUOTA_FAMILY_FABLE;
    if (strstr(low, "opus")) return QUOTA_FAMILY_OPUS;
    if (strstr(low, "sonnet")) return QUOTA_FAMILY_SONNET;
    if (strstr(low, "haiku")) return QUOTA_FAMILY_HAIKU;
    return QUOTA_FAMILY_NONE;
}

static const char *const FAMILY_NAMES[QUOTA_FAMILIES] = {"", "fable", "opus", "sonnet", "haiku"};

const char *quota_family_name(quota_family_t f)
{
    return f > 0 && f < QUOTA_FAMILIES ? FAMILY_NAMES[f] : "";
}

quota_family_t quota_family_by_name(const char *name)
{
    for (int f = 1; name && f < QUOTA_FAMILIES; f++)
        if (strcmp(name, FAMILY_NAMES[f]) == 0) return (quota_family_t)f;
    return QUOTA_FAMILY_NONE;
}

void quota_set_scoped(quota_t *q, quota_family_t f, double utilization, int64_t reset_ms,
                      bool reactive)
{
    if (f <= QUOTA_FAMILY_NONE || f >= QUOTA_FAMILIES) return;
    struct quota_scoped *e = &q->scoped[f];
    e->utilization = utilization < 0 ? 0 : utilization > 1 ? 1 : utilization;
    e->reset_ms = reset_ms;
    e->active = true;
    e->reactive = reactive;
}

bool quota_scoped_benched(const quota_t *q, quota_family_t f, double exhausted)
{
    if (f <= QUOTA_FAMILY_NONE || f >= QUOTA_FAMILIES) return false;
    const struct quota_scoped *e = &q->scoped[f];
    return e->utilization != QUOTA_UNKNOWN && e->active && e->utilization >= exhausted;
}

static double used_fraction(int64_t limit, int64_t remaining)
{
    if (limit <= 0 || remaining < 0) return QUOTA_UNKNOWN;
    double u = 1.0 - (double)remaining / (double)limit;
    return u < 0 ? 0 : u > 1 ? 1 : u;
}

double quota_tokens_used(const quota_t *q)
{
    return used_fraction(q->tokens_limit, q->tokens_remaining);
}

double quota_requests_used(const quota_t *q)
{
    return used_fraction(q->requests_limit, q->requests_remaining);
}

static const char *find(const quota_header_t *h, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(h[i].name, name) == 0) return h[i].value;
    return NULL;
}

/* Copies the first comma item of v, trimmed, into out. */
static void first_item(const char *v, char *out, size_t outlen)
{
    while (*v == ' ' || *v == '\t')
        v++;
    size_t n = strcspn(v, ",");
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    if (n >= outlen) n = outlen - 1;
    memcpy(out, v, n);
    out[n] = '\0';
}

static bool parse_number(const char *s, double *out)
{
    if (!*s) return false;
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (errno || *end || !isfinite(d)) return false;
    *out = d;
    return true;
}

/* Parses an HTTP date or ISO 8601 stamp to epoch ms; 0 if it is neither. */
static int64_t parse_date(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(s, "%a, %d %b %Y %H:%M:%S", &tm); /* HTTP date */
    int millis = 0;
    if (!end) {
        memset(&tm, 0, sizeof tm);
        end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm); /* ISO 8601 */
        if (end && *end == '.') {
            end++;
            int digits = 0;
            while (*end >= '0' && *end <= '9') {
                if (digits < 3) millis = millis * 10 + (*end - '0');
                digits++;
                end++;
            }
            while (digits > 0 && digits < 3) {
                millis *= 10;
                digits++;
            }
        }
    }
    if (!end) return 0;
    time_t t = timegm(&tm);
    if (t == (time_t)-1) return 0;
    int64_t ms = (int64_t)t * 1000 + millis;
    /* ISO offsets: Z (or nothing) is UTC; ±HH:MM shifts. */
    if (*end == '+' || *end == '-') {
        int hh = 0, mm = 0;
        if (sscanf(end + 1, "%2d:%2d", &hh, &mm) >= 1) {
            int64_t off = ((int64_t)hh * 60 + mm) * 60000;
            ms += *end == '+' ? -off : off;
        }
    }
    return ms;
}

int64_t quota_parse_reset(const char *value, int64_t now_ms)
{
    if (!value) return 0;
    char s[128];
    first_item(value, s, sizeof s);
    double d;
    if (parse_number(s, &d)) {
        if (d > 1e10) return (int64_t)d;
        if (d > 1e9) return (int64_t)(d * 1000);
        if (d < 0) return 0;
        return now_ms + (int64_t)(d * 1000);
    }
    /* Dates contain a comma themselves ("Thu, 01 Jan 2026 …"): parse the whole value. */
    while (*value == ' ' || *value == '\t')
        value++;
    snprintf(s, sizeof s, "%s", value);
    /* Responses repeat the same reset stamps until a window rolls over: the last few
     * parsed stamps are remembered instead of running strptime twice per response. */
    static struct {
        char text[128];
        int64_t ms;
    } memo[4];
    static unsigned memo_next;
    for (size_t i = 0; i < sizeof memo / sizeof *memo; i++)
        if (memo[i].text[0] && strcmp(memo[i].text, s) == 0) return memo[i].ms;
    int64_t ms = parse_date(s);
    unsigned slot = memo_next++ % (sizeof memo / sizeof *memo);
    memcpy(memo[slot].text, s, sizeof s);
    memo[slot].ms = ms;
    return ms;
}

int quota_parse_retry_after(const char *value, int64_t now_ms)
{
    if (!value) return 0;
    char s[128];
    first_item(value, s, sizeof s);
    double d;
    int64_t secs;
    if (parse_number(s, &d)) {
        secs = (int64_t)ceil(d);
    } else {
        int64_t at = quota_parse_reset(value, now_ms);
        if (!at) return 0;
        secs = (at - now_ms + 999) / 1000;
    }
    if (secs < 1) secs = 1;
    if (secs > 86400) secs = 86400;
    return (int)secs;
}

static double clamp01(double d)
{
    return d < 0 ? 0 : d > 1 ? 1 : d;
}

static int64_t parse_int(const char *v)
{
    char s[64];
    first_item(v, s, sizeof s);
    double d;
    return parse_number(s, &d) ? (int64_t)d : -1;
}

/* The first header present among names. */
static const char *find_any(const quota_header_t *h, size_t n, const char *const *names)
{
    for (; *names; names++) {
        const char *v = find(h, n, *names);
        if (v) return v;
    }
    return NULL;
}

static const char *const GENERIC_LIMIT[] = {
    "x-ratelimit-limit",          "x-rate-limit-limit",         "ratelimit-limit",
    "x-ratelimit-limit-requests", "x-ratelimit-requests-limit", NULL};
static const char *const GENERIC_REMAINING[] = {
    "x-ratelimit-remaining",          "x-rate-limit-remaining",         "ratelimit-remaining",
    "x-ratelimit-remaining-requests", "x-ratelimit-requests-remaining", NULL};
static const char *const GENERIC_RESET[] = {
    "x-ratelimit-reset",          "x-rate-limit-reset",         "ratelimit-reset",
    "x-ratelimit-reset-requests", "x-ratelimit-requests-reset", NULL};

static const char *const RL_PREFIXES[] = {"anthropic-ratelimit-", "x-ratelimit-", "x-rate-limit-",
                                          "ratelimit-", NULL};

/* True if name starts with one of RL_PREFIXES (ASCII case-insensitive). */
static bool is_ratelimit_name(const char *name)
{
    for (const char *const *p = RL_PREFIXES; *p; p++) {
        const char *a = name, *b = *p;
        while (*b && (*a | 0x20) == *b) {
            a++;
            b++;
        }
        if (!*b) return true;
    }
    return false;
}

void quota_apply_headers(quota_t *q, const quota_header_t *h, size_t n, int64_t now_ms)
{
    const char *v;
    double d;
    char s[64];
    q->total_requests++;

    /* Every name looked up below starts with one of RL_PREFIXES: the ~30 lookups then scan
     * the few rate-limit headers instead of every header of every response. */
    quota_header_t rl[64];
    size_t k = 0;
    for (size_t i = 0; i < n && k < sizeof rl / sizeof *rl; i++)
        if (is_ratelimit_name(h[i].name)) rl[k++] = h[i];
    h = rl;
    n = k;

    if ((v = find(h, n, "anthropic-ratelimit-unified-5h-utilization"))) {
        first_item(v, s, sizeof s);
        if (parse_number(s, &d)) {
            q->unified5h = clamp01(d);
            int64_t r =
                quota_parse_reset(find(h, n, "anthropic-ratelimit-unified-5h-reset"), now_ms);
            /* A4: without a stamp, expire conservatively instead of benching forever. */
            q->unified5h_reset_ms = r ? r : now_ms + H5_MS;
        }
    }
    if ((v = find(h, n, "anthropic-ratelimit-unified-7d-utilization"))) {
        first_item(v, s, sizeof s);
        if (parse_number(s, &d)) {
            q->unified7d = clamp01(d);
            int64_t r =
                quota_parse_reset(find(h, n, "anthropic-ratelimit-unified-7d-reset"), now_ms);
            q->unified7d_reset_ms = r ? r : now_ms + D7_MS;
        }
    }
    if ((v = find(h, n, "anthropic-ratelimit-unified-status"))) {
        first_item(v, s, sizeof s);
        /* "rejected" only counts when a window is really full (§4.1). */
        if (strcmp(s, "rejected") == 0 && !(q->unified5h >= 0.999 || q->unified7d >= 0.999))
            snprintf(q->unified_status, sizeof q->unified_status, "allowed");
        else
            snprintf(q->unified_status, sizeof q->unified_status, "%.23s", s);
    }

    int64_t tok_reset = 0, req_reset = 0;
    if ((v = find(h, n, "anthropic-ratelimit-tokens-limit"))) q->tokens_limit = parse_int(v);
    if ((v = find(h, n, "anthropic-ratelimit-tokens-remaining")))
        q->tokens_remaining = parse_int(v);
    if ((v = find(h, n, "anthropic-ratelimit-tokens-reset")))
        tok_reset = quota_parse_reset(v, now_ms);
    if ((v = find(h, n, "anthropic-ratelimit-requests-limit"))) q->requests_limit = parse_int(v);
    if ((v = find(h, n, "anthropic-ratelimit-requests-remaining")))
        q->requests_remaining = parse_int(v);
    if ((v = find(h, n, "anthropic-ratelimit-requests-reset")))
        req_reset = quota_parse_reset(v, now_ms);
    if (tok_reset)
        q->resets_at_ms = tok_reset;
    else if (req_reset)
        q->resets_at_ms = req_reset;

    if ((v = find_any(h, n, GENERIC_LIMIT))) q->generic_limit = parse_int(v);
    if ((v = find_any(h, n, GENERIC_REMAINING))) q->generic_remaining = parse_int(v);
    if ((v = find_any(h, n, GENERIC_RESET))) q->generic_reset_ms = quota_parse_reset(v, now_ms);
}

int quota_expire(quota_t *q, int64_t now_ms)
{
    int ev = 0;
    if (q->unified5h_reset_ms && q->unified5h_reset_ms <= now_ms) {
        q->unified5h = QUOTA_UNKNOWN;
        q->unified5h_reset_ms = 0;
        ev |= QUOTA_RESET_5H;
    }
    if (q->unified7d_reset_ms && q->unified7d_reset_ms <= now_ms) {
        q->unified7d = QUOTA_UNKNOWN;
        q->unified7d_reset_ms = 0;
        q->unified_status[0] = '\0';
        ev |= QUOTA_RESET_7D;
    }
    if (q->resets_at_ms && q->resets_at_ms <= now_ms) {
        q->tokens_limit = q->tokens_remaining = -1;
        q->requests_limit = q->requests_remaining = -1;
        q->resets_at_ms = 0;
        ev |= QUOTA_RESET_API;
    }
    for (int f = 1; f < QUOTA_FAMILIES; f++) {
        struct quota_scoped *e = &q->scoped[f];
        if (e->utilization != QUOTA_UNKNOWN && e->reset_ms && e->reset_ms <= now_ms) {
            memset(e, 0, sizeof *e);
            e->utilization = QUOTA_UNKNOWN;
            ev |= QUOTA_RESET_SCOPED;
        }
    }
    if (q->provider_ses_reset_ms && q->provider_ses_reset_ms <= now_ms) {
        q->provider_ses = QUOTA_UNKNOWN;
        q->provider_ses_reset_ms = 0;
        ev |= QUOTA_RESET_PROVIDER;
    }
    if (q->provider_wk_reset_ms && q->provider_wk_reset_ms <= now_ms) {
        q->provider_wk = QUOTA_UNKNOWN;
        q->provider_wk_reset_ms = 0;
        ev |= QUOTA_RESET_PROVIDER;
    }
    return ev;
}

bool quota_rejected(const quota_t *q)
{
    return strcmp(q->unified_status, "rejected") == 0 &&
           (q->unified5h >= 0.999 || q->unified7d >= 0.999);
}

void quota_probe_init(quota_probe_t *p)
{
    memset(p, 0, sizeof *p);
    p->session = p->weekly = QUOTA_UNKNOWN;
}

void quota_apply_probe(quota_t *q, const quota_probe_t *p, int64_t now_ms)
{
    if (p->session >= 0) {
        q->unified5h = clamp01(p->session);
        q->unified5h_reset_ms = p->session_reset_ms ? p->session_reset_ms : now_ms + H5_MS;
    }
    if (p->weekly >= 0) {
        q->unified7d = clamp01(p->weekly);
        q->unified7d_reset_ms = p->weekly_reset_ms ? p->weekly_reset_ms : now_ms + D7_MS;
    }
    q->weekly_absent = p->weekly < 0;
    for (size_t i = 0; i < p->n_scoped && i < QUOTA_FAMILIES; i++) {
        const struct quota_probe_scoped *e = &p->scoped[i];
        if (e->family <= QUOTA_FAMILY_NONE || e->family >= QUOTA_FAMILIES || e->utilization < 0)
            continue;
        struct quota_scoped *cur = &q->scoped[e->family];
        bool reactive_bench = cur->utilization >= 0 && cur->reactive && cur->active &&
                              cur->reset_ms > now_ms && e->utilization < cur->utilization;
        if (reactive_bench) continue;
        quota_set_scoped(q, e->family, e->utilization, e->reset_ms ? e->reset_ms : now_ms + D7_MS,
                         false);
        cur->active = e->active;
        snprintf(cur->severity, sizeof cur->severity, "%s", e->severity);
    }
    q->last_probe_ok_ms = now_ms;
}
