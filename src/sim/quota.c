#include "sim/quota.h"

#include "core/clock.h"
#include "core/crypto.h"
#include "core/xalloc.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- headers ---------------------------------------------------------------------------- */

void sim_hdrs_init(sim_hdrs_t *h)
{
    h->n = 0;
    h->used = 0;
}

void sim_hdrs_add(sim_hdrs_t *h, const char *name, const char *fmt, ...)
{
    if (h->n >= SIM_HDRS_MAX) return;
    size_t room = sizeof h->store - h->used;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(h->store + h->used, room, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= room) return; /* no room: drop rather than truncate a value */
    h->name[h->n] = name;
    h->value[h->n] = h->store + h->used;
    h->n++;
    h->used += (size_t)k + 1;
}

const char *sim_hdrs_get(const sim_hdrs_t *h, const char *name)
{
    for (size_t i = 0; i < h->n; i++)
        if (strcasecmp(h->name[i], name) == 0) return h->value[i];
    return NULL;
}

/* ---- time ------------------------------------------------------------------------------- */

void sim_quota_init(sim_quota_t *q, int64_t start_ms, double scale)
{
    memset(q, 0, sizeof *q);
    q->start_ms = start_ms;
    q->scale = scale > 0 ? scale : 1.0;
}

static void account_free(sim_account_t *a)
{
    free(a->name);
    free(a->api_key);
    free(a->access_token);
    free(a->refresh_token);
    free(a->uuid);
    free(a->email);
    free(a->tier);
    free(a);
}

void sim_quota_free(sim_quota_t *q)
{
    for (size_t i = 0; i < q->n; i++)
        account_free(q->accts[i]);
    free(q->accts);
    q->accts = NULL;
    q->n = q->cap = 0;
}

int64_t sim_quota_now(const sim_quota_t *q, int64_t real_ms)
{
    double d = (double)(real_ms - q->start_ms) * q->scale;
    return q->start_ms + (int64_t)llround(d) + q->advance_ms;
}

int64_t sim_quota_to_real(const sim_quota_t *q, int64_t sim_ms)
{
    double d = (double)(sim_ms - q->start_ms - q->advance_ms) / q->scale;
    return q->start_ms + (int64_t)llround(d);
}

void sim_quota_advance(sim_quota_t *q, int64_t ms)
{
    if (ms > 0) q->advance_ms += ms;
}

void sim_quota_set_scale(sim_quota_t *q, double scale, int64_t real_now)
{
    if (!(scale > 0) || scale == q->scale) return;
    /* Keep sim_now continuous: fold the time elapsed so far into the advance. */
    int64_t sim_now = sim_quota_now(q, real_now);
    q->start_ms = real_now;
    q->scale = scale;
    q->advance_ms = sim_now - real_now;
}

/* ---- accounts --------------------------------------------------------------------------- */

sim_account_t *sim_quota_find(const sim_quota_t *q, const char *name)
{
    for (size_t i = 0; i < q->n; i++)
        if (strcmp(q->accts[i]->name, name) == 0) return q->accts[i];
    return NULL;
}

/* A stable uuid-shaped id derived from a seed string, so a script without uuids still gives
 * every account the same identity run after run. */
static char *uuid_from(const char *prefix, const char *name)
{
    char *s = xasprintf("%s%s", prefix, name);
    uint8_t d[32];
    crypto_sha256(s, strlen(s), d);
    free(s);
    return xasprintf("%02x%02x%02x%02x-%02x%02x-4%x%02x-%x%x%02x-%02x%02x%02x%02x%02x%02x", d[0],
                     d[1], d[2], d[3], d[4], d[5], d[6] & 0xf, d[7], 8 | (d[8] & 3), d[9] & 0xf,
                     d[10], d[11], d[12], d[13], d[14], d[15], d[16]);
}

sim_account_t *sim_quota_add(sim_quota_t *q, const char *name, sim_acct_type_t type)
{
    sim_account_t *a = xcalloc(1, sizeof *a);
    a->name = xstrdup(name);
    a->type = type;
    a->uuid = uuid_from("", name);
    a->email = xasprintf("%s@example.com", name);
    a->tier = xstrdup("max");
    a->token_ttl_sec = SIM_DEFAULT_TTL_SEC;
    a->w5h = (sim_window_t){.budget = SIM_DEFAULT_BUDGET5H, .len_ms = SIM_5H_MS};
    a->w7d = (sim_window_t){.budget = SIM_DEFAULT_BUDGET7D, .len_ms = SIM_7D_MS};
    a->tok = (sim_window_t){.budget = SIM_DEFAULT_TPM, .len_ms = SIM_MIN_MS};
    a->req = (sim_window_t){.budget = SIM_DEFAULT_RPM, .len_ms = SIM_MIN_MS};
    if (q->n == q->cap) {
        q->cap = q->cap ? q->cap * 2 : 8;
        q->accts = xrealloc(q->accts, q->cap * sizeof *q->accts);
    }
    q->accts[q->n++] = a;
    return a;
}

/* ---- windows ---------------------------------------------------------------------------- */

static void window_expire(sim_window_t *w, int64_t sim_now)
{
    if (w->reset_ms && sim_now >= w->reset_ms) {
        w->reset_ms = 0;
        w->used = 0;
    }
}

static void window_charge(sim_window_t *w, int64_t sim_now, int64_t amount)
{
    window_expire(w, sim_now);
    if (!w->reset_ms) w->reset_ms = sim_now + w->len_ms;
    w->used += amount;
}

void sim_quota_set_used(sim_window_t *w, double utilization, int64_t sim_now)
{
    if (!(utilization > 0) || w->budget <= 0) {
        w->used = 0;
        w->reset_ms = 0;
        return;
    }
    window_expire(w, sim_now);
    if (!w->reset_ms) w->reset_ms = sim_now + w->len_ms;
    w->used = (int64_t)llround(utilization * (double)w->budget);
}

double sim_quota_utilization(sim_window_t *w, int64_t sim_now)
{
    window_expire(w, sim_now);
    if (!w->reset_ms || w->budget <= 0) return 0.0;
    return (double)w->used / (double)w->budget;
}

void sim_quota_expire(sim_account_t *a, int64_t sim_now)
{
    window_expire(&a->w5h, sim_now);
    window_expire(&a->w7d, sim_now);
    window_expire(&a->tok, sim_now);
    window_expire(&a->req, sim_now);
}

const char *sim_quota_status_name(double u)
{
    if (u >= 1.0) return "rejected";
    if (u >= 0.8) return "allowed_warning";
    return "allowed";
}

void sim_quota_fmt_util(double u, char *out, size_t outlen)
{
    if (!(u > 0)) u = 0;
    snprintf(out, outlen, "%.4f", u);
    char *dot = strchr(out, '.');
    if (!dot) return;
    char *end = out + strlen(out);
    while (end > dot + 1 && end[-1] == '0')
        *--end = '\0';
    if (end == dot + 1) *dot = '\0';
}

/* Real unix seconds of a simulated reset, rounded up so a client never sees a reset that
 * comes before the window really closes. */
static int64_t real_reset_s(const sim_quota_t *q, int64_t sim_reset)
{
    int64_t r = sim_quota_to_real(q, sim_reset);
    return (r + 999) / 1000;
}

static int64_t real_wait_s(const sim_quota_t *q, int64_t sim_now, int64_t sim_reset)
{
    int64_t ms = sim_quota_to_real(q, sim_reset) - sim_quota_to_real(q, sim_now);
    int64_t s = (ms + 999) / 1000;
    return s < 1 ? 1 : s;
}

static bool window_full(const sim_window_t *w)
{
    return w->reset_ms && w->budget > 0 && w->used >= w->budget;
}

int sim_quota_check(const sim_quota_t *q, sim_account_t *a, int64_t sim_now, int64_t *retry_after_s)
{
    sim_quota_expire(a, sim_now);
    const sim_window_t *ws[2];
    if (a->type == SIM_ACCT_OAUTH) {
        ws[0] = &a->w5h;
        ws[1] = &a->w7d;
    } else {
        ws[0] = &a->tok;
        ws[1] = &a->req;
    }
    int64_t until = 0;
    for (int i = 0; i < 2; i++)
        if (window_full(ws[i]) && ws[i]->reset_ms > until) until = ws[i]->reset_ms;
    if (!until) return 0;
    if (retry_after_s) *retry_after_s = real_wait_s(q, sim_now, until);
    return 1;
}

void sim_quota_charge(sim_account_t *a, int64_t sim_now, int64_t tokens)
{
    if (a->type == SIM_ACCT_OAUTH) {
        window_charge(&a->w5h, sim_now, tokens);
        window_charge(&a->w7d, sim_now, tokens);
    } else {
        window_charge(&a->tok, sim_now, tokens);
        window_charge(&a->req, sim_now, 1);
    }
}

static void unified_window(const sim_quota_t *q, sim_hdrs_t *h, const sim_window_t *w, double u,
                           const char *n_util, const char *n_reset, const char *n_status)
{
    char ub[32];
    sim_quota_fmt_util(u, ub, sizeof ub);
    sim_hdrs_add(h, n_util, "%s", ub);
    if (w->reset_ms) sim_hdrs_add(h, n_reset, "%lld", (long long)real_reset_s(q, w->reset_ms));
    sim_hdrs_add(h, n_status, "%s", sim_quota_status_name(u));
}

static void bucket_headers(const sim_quota_t *q, sim_hdrs_t *h, const sim_window_t *w,
                           int64_t sim_now, const char *n_limit, const char *n_rem,
                           const char *n_reset)
{
    int64_t rem = w->budget - (w->reset_ms ? w->used : 0);
    if (rem < 0) rem = 0;
    /* An idle bucket is full now; report its reset as "now" like a replenished bucket. */
    int64_t reset = sim_quota_to_real(q, w->reset_ms ? w->reset_ms : sim_now);
    char iso[40];
    clock_iso8601(reset, iso, sizeof iso);
    sim_hdrs_add(h, n_limit, "%lld", (long long)w->budget);
    sim_hdrs_add(h, n_rem, "%lld", (long long)rem);
    sim_hdrs_add(h, n_reset, "%s", iso);
}

void sim_quota_headers(const sim_quota_t *q, sim_account_t *a, int64_t sim_now, sim_hdrs_t *h)
{
    sim_quota_expire(a, sim_now);
    if (a->type == SIM_ACCT_APIKEY) {
        bucket_headers(q, h, &a->req, sim_now, "anthropic-ratelimit-requests-limit",
                       "anthropic-ratelimit-requests-remaining",
                       "anthropic-ratelimit-requests-reset");
        bucket_headers(q, h, &a->tok, sim_now, "anthropic-ratelimit-tokens-limit",
                       "anthropic-ratelimit-tokens-remaining", "anthropic-ratelimit-tokens-reset");
        return;
    }
    double u5 = sim_quota_utilization(&a->w5h, sim_now);
    double u7 = sim_quota_utilization(&a->w7d, sim_now);
    double mx = u5 > u7 ? u5 : u7;
    sim_hdrs_add(h, "anthropic-ratelimit-unified-status", "%s", sim_quota_status_name(mx));
    unified_window(q, h, &a->w5h, u5, "anthropic-ratelimit-unified-5h-utilization",
                   "anthropic-ratelimit-unified-5h-reset", "anthropic-ratelimit-unified-5h-status");
    unified_window(q, h, &a->w7d, u7, "anthropic-ratelimit-unified-7d-utilization",
                   "anthropic-ratelimit-unified-7d-reset", "anthropic-ratelimit-unified-7d-status");
    bool weekly = u7 > u5;
    sim_hdrs_add(h, "anthropic-ratelimit-unified-representative-claim", "%s",
                 weekly ? "seven_day" : "five_hour");
    const sim_window_t *rep = weekly ? &a->w7d : &a->w5h;
    const sim_window_t *other = weekly ? &a->w5h : &a->w7d;
    if (!rep->reset_ms) rep = other;
    if (rep->reset_ms)
        sim_hdrs_add(h, "anthropic-ratelimit-unified-reset", "%lld",
                     (long long)real_reset_s(q, rep->reset_ms));
    sim_hdrs_add(h, "anthropic-ratelimit-unified-fallback-percentage", "0.5");
}

void sim_quota_count_status(sim_account_t *a, int status)
{
    /* 0 marks a free slot (and a reset before headers sent no status at all). */
    if (status <= 0) return;
    for (int i = 0; i < SIM_STATUS_SLOTS; i++) {
        if (a->status_code[i] == status || a->status_code[i] == 0) {
            a->status_code[i] = status;
            a->status_count[i]++;
            return;
        }
    }
}
