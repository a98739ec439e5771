/* bench/policy — the scheduling-policy simulator (issue 5, docs/routing.md).
 *
 * Drives routing policies in virtual time against a simulated fleet of subscription
 * accounts and a seeded workload of Claude-Code-like sessions, and prints one Markdown table.
 *
 * Fleet: the quota model of `maxpool sim` (src/sim/quota.c): every account has a 5-hour and a
 * 7-day token window that open on the first request and close (used → 0) at their reset; a
 * request to an account whose window is full gets a 429 (status rejected, retry-after = the
 * reset); every answer carries the unified-* rate-limit headers.
 *
 * Workload: sessions arrive as a Poisson process whose rate follows a working-hours pattern
 * (weekdays 09–18 busy, evenings lighter, nights and weekends quiet). A session is a run of
 * turns; a turn is a burst of sequential requests (the agent's tool loop) separated by short
 * tool gaps; turns are separated by idle gaps (the user reading and typing), sometimes long
 * breaks. The context grows with every request and is compacted when it gets large. A request
 * that finds no account waits (held, then retried) until one serves it.
 *
 * Policies: `maxpool` (sched/, SPEC §5 with the §5.9 defaults), `round-robin`, `least-used`
 * (lowest known utilization), `sticky-98` (one account for everyone until it reaches 98 %,
 * the teamclaude default). The naive policies learn from the same headers and 429s.
 *
 * Everything is deterministic for a seed; a simulated week takes well under a second. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"
#include "sched/sched.h"

#define SEC  1000LL
#define MIN  (60 * SEC)
#define HOUR (60 * MIN)
#define DAY  (24 * HOUR)
#define T0   1767571200000LL /* Monday 2026-01-05 00:00 UTC */
#define MAXA 16

/* =============================================================== random ==== */

/* The random stream in use. Arrivals and every session have their own stream, so the
 * workload is the same for every policy (only its timing differs when requests wait). */
static uint64_t *rng_state;

static uint64_t rng_seed(uint64_t seed, uint64_t stream)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ULL + stream * 0xBF58476D1CE4E5B9ULL + 1;
    x ^= x >> 31;
    return x ? x : 1;
}

static uint64_t rng_next(void)
{
    /* xorshift64*: small, fast, and the same everywhere for a seed. */
    uint64_t x = *rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *rng_state = x;
    return x * 2685821657736338717ULL;
}

static double rng_u(void)
{
    return (double)(rng_next() >> 11) / 9007199254740992.0;
}

static double rng_exp(double mean)
{
    return -mean * log(1 - rng_u());
}

static double rng_lognormal(double mean, double sigma)
{
    double u1 = rng_u(), u2 = rng_u();
    double z = sqrt(-2 * log(u1 > 1e-300 ? u1 : 1e-300)) * cos(2 * M_PI * u2);
    double mu = log(mean) - sigma * sigma / 2;
    return exp(mu + sigma * z);
}

static int rng_geometric(double mean)
{
    return (int)floor(rng_exp(mean));
}

/* =============================================================== params ==== */

typedef struct params {
    uint64_t seed;
    int accounts;
    int days;
    int64_t budget5h, budget7d;
    double rate_work, rate_evening, rate_weekend, rate_night; /* sessions per hour */
    double turns_mean, requests_mean;
    double idle_mean_s, long_break_p;
    double new_input_mean, output_mean, cache_rate;
    int64_t retry_poll_ms;
    int64_t probe_ms; /* maxpool's usage probe interval (quotaProbeSeconds); 0 = off */
    bool prior;       /* weekly windows opened before the run, at staggered times */
} params_t;

static void params_default(params_t *p)
{
    p->seed = 42;
    p->accounts = 4;
    p->days = 7;
    p->budget5h = 2000000; /* the sim's defaults (SIM_DEFAULT_BUDGET5H / 7D) */
    p->budget7d = 20000000;
    p->rate_work = 0.9; /* one person: a new session every ~65 min at work */
    p->rate_evening = 0.3;
    p->rate_weekend = 0.2;
    p->rate_night = 0.03;
    p->turns_mean = 20;
    p->requests_mean = 5;
    p->idle_mean_s = 120;
    p->long_break_p = 0.08;
    p->new_input_mean = 2500;
    p->output_mean = 600;
    p->cache_rate = 0.1;
    p->retry_poll_ms = 30 * SEC;
    p->probe_ms = 60 * SEC;
    p->prior = true;
}

/* ================================================================ fleet ==== */

typedef struct win {
    int64_t budget, used, reset, len;
    int64_t open_ms, waited_at_open; /* for the waste measure */
} win_t;

typedef struct facct {
    win_t w5, w7;
    double peak7; /* highest 7d utilization reached */
} facct_t;

/* =============================================================== events ==== */

enum { EV_SESSION_START, EV_ATTEMPT, EV_DONE, EV_RESET5, EV_RESET7, EV_PROBE };

typedef struct event {
    int64_t t;
    uint64_t seq; /* FIFO among equal times: determinism */
    int type;
    int id;
} event_t;

typedef struct heap {
    event_t *v;
    size_t n, cap;
    uint64_t seq;
} heap_t;

static bool ev_less(const event_t *a, const event_t *b)
{
    return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static void heap_push(heap_t *h, int64_t t, int type, int id)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 1024;
        h->v = xrealloc(h->v, h->cap * sizeof *h->v);
    }
    size_t i = h->n++;
    h->v[i] = (event_t){t, h->seq++, type, id};
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!ev_less(&h->v[i], &h->v[p])) break;
        event_t tmp = h->v[i];
        h->v[i] = h->v[p];
        h->v[p] = tmp;
        i = p;
    }
}

static event_t heap_pop(heap_t *h)
{
    event_t top = h->v[0];
    h->v[0] = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && ev_less(&h->v[l], &h->v[m])) m = l;
        if (r < h->n && ev_less(&h->v[r], &h->v[m])) m = r;
        if (m == i) break;
        event_t tmp = h->v[i];
        h->v[i] = h->v[m];
        h->v[m] = tmp;
        i = m;
    }
    return top;
}

/* ============================================================= sessions ==== */

typedef struct session {
    uint64_t rng;
    int turns_left, reqs_left;
    double context;
    int last_acct;
    int64_t last_done_ms;
    int requests, switches, misses;
    char key[24];
} session_t;

typedef struct req {
    int session;
    int64_t charge, input, output;
    double fresh, context; /* new tokens of this request; the context it carries */
    int weight;
    bool waiting, counted_held;
    int acct;
    sched_request_t sr; /* maxpool */
    account_mask_t tried;
} req_t;

/* =============================================================== policy ==== */

typedef enum {
    P_MAXPOOL,
    P_MAXPOOL_TUNED,
    P_ROUND_ROBIN,
    P_LEAST_USED,
    P_STICKY98,
    P_COUNT
} policy_kind_t;
static const char *const POLICY_NAMES[P_COUNT] = {"maxpool (defaults)",
                                                  "maxpool, switchThreshold 0.98", "round-robin",
                                                  "least-used", "sticky-98"};

/* What a naive proxy learns from headers and 429s. */
typedef struct view {
    double u5, u7;
    int64_t r5, r7, blocked_until;
} view_t;

typedef struct world {
    params_t p;
    policy_kind_t kind;
    heap_t heap;
    facct_t acct[MAXA];
    view_t view[MAXA];
    sched_t sched;
    size_t rr_cursor;
    int sticky_current;
    session_t *sess;
    size_t n_sess, cap_sess;
    req_t *reqs;
    size_t n_reqs, cap_reqs;
    /* waiting integral */
    int waiting;
    int64_t wait_total, wait_mark;
    /* results */
    int64_t served_tokens, spent_tokens, wasted_tokens;
    int64_t requests, held;
    int64_t wait_sum_ms;
    int64_t end;
    uint64_t arrivals_rng, fleet_rng;
} world_t;

static int64_t waited(const world_t *w, int64_t t)
{
    return w->wait_total + (w->waiting > 0 ? t - w->wait_mark : 0);
}

static void set_waiting(world_t *w, int delta, int64_t t)
{
    w->wait_total = waited(w, t);
    w->wait_mark = t;
    w->waiting += delta;
}

/* -------------------------------------------------------- fleet model ---- */

static void win_open(world_t *w, win_t *x, int idx, int type, int64_t t)
{
    x->reset = t + x->len;
    x->open_ms = t;
    x->waited_at_open = waited(w, t);
    heap_push(&w->heap, x->reset, type, idx);
}

static void charge(world_t *w, int idx, int64_t tokens, int64_t t)
{
    facct_t *a = &w->acct[idx];
    if (!a->w5.reset) win_open(w, &a->w5, idx, EV_RESET5, t);
    if (!a->w7.reset) win_open(w, &a->w7, idx, EV_RESET7, t);
    a->w5.used += tokens;
    a->w7.used += tokens;
    double u7 = (double)a->w7.used / (double)a->w7.budget;
    if (u7 > a->peak7) a->peak7 = u7;
}

/* Unused budget of a window that resets while work waited counts as wasted, in proportion to
 * the part of the window's life during which something was waiting. A 5h remainder is only
 * usable up to what the weekly window still allows. */
static void window_reset(world_t *w, int idx, bool weekly, int64_t t)
{
    facct_t *a = &w->acct[idx];
    win_t *x = weekly ? &a->w7 : &a->w5;
    if (x->reset != t) return; /* stale event */
    int64_t unused = x->budget - x->used;
    if (unused < 0) unused = 0;
    if (!weekly) {
        int64_t wk_left = a->w7.reset ? a->w7.budget - a->w7.used : a->w7.budget;
        if (wk_left < 0) wk_left = 0;
        if (unused > wk_left) unused = wk_left;
    }
    double frac = (double)(waited(w, t) - x->waited_at_open) / (double)x->len;
    if (frac > 1) frac = 1;
    w->wasted_tokens += (int64_t)llround((double)unused * frac);
    x->used = 0;
    x->reset = 0;
}

static bool win_full(const win_t *x)
{
    return x->reset && x->used >= x->budget;
}

/* Headers of an answer (sim_quota_headers' unified-* part); reset values are ms epochs. */
typedef struct hdrs {
    quota_header_t h[8];
    size_t n;
    char val[8][32];
} hdrs_t;

static void hdr_add(hdrs_t *h, const char *name, const char *fmt, double v)
{
    snprintf(h->val[h->n], sizeof h->val[h->n], fmt, v);
    h->h[h->n].name = name;
    h->h[h->n].value = h->val[h->n];
    h->n++;
}

static const char *status_name(double u)
{
    return u >= 1.0 ? "rejected" : u >= 0.8 ? "allowed_warning" : "allowed";
}

static void fleet_headers(const facct_t *a, hdrs_t *h, int retry_after_s)
{
    h->n = 0;
    double u5 = a->w5.reset ? (double)a->w5.used / (double)a->w5.budget : 0;
    double u7 = a->w7.reset ? (double)a->w7.used / (double)a->w7.budget : 0;
    hdr_add(h, "anthropic-ratelimit-unified-5h-utilization", "%.4f", u5 > 1 ? 1 : u5);
    if (a->w5.reset)
        hdr_add(h, "anthropic-ratelimit-unified-5h-reset", "%.0f", (double)a->w5.reset);
    hdr_add(h, "anthropic-ratelimit-unified-7d-utilization", "%.4f", u7 > 1 ? 1 : u7);
    if (a->w7.reset)
        hdr_add(h, "anthropic-ratelimit-unified-7d-reset", "%.0f", (double)a->w7.reset);
    h->h[h->n].name = "anthropic-ratelimit-unified-status";
    snprintf(h->val[h->n], sizeof h->val[h->n], "%s", status_name(u5 > u7 ? u5 : u7));
    h->h[h->n].value = h->val[h->n];
    h->n++;
    if (retry_after_s > 0) hdr_add(h, "retry-after", "%.0f", (double)retry_after_s);
}

/* 0 = serve; else the 429's retry-after in seconds. */
static int fleet_check(const facct_t *a, int64_t t)
{
    int64_t until = 0;
    if (win_full(&a->w5) && a->w5.reset > until) until = a->w5.reset;
    if (win_full(&a->w7) && a->w7.reset > until) until = a->w7.reset;
    if (!until) return 0;
    int64_t s = (until - t + 999) / 1000;
    return s < 1 ? 1 : (int)s;
}

/* ------------------------------------------------------ naive policies ---- */

static void view_learn(view_t *v, const facct_t *a)
{
    v->u5 = a->w5.reset ? (double)a->w5.used / (double)a->w5.budget : 0;
    v->u7 = a->w7.reset ? (double)a->w7.used / (double)a->w7.budget : 0;
    v->r5 = a->w5.reset;
    v->r7 = a->w7.reset;
}

static double view_util(view_t *v, int64_t t)
{
    if (v->r5 && v->r5 <= t) v->u5 = 0, v->r5 = 0;
    if (v->r7 && v->r7 <= t) v->u7 = 0, v->r7 = 0;
    return v->u5 > v->u7 ? v->u5 : v->u7;
}

static bool view_ok(world_t *w, int i, const req_t *r, int64_t t)
{
    return !account_mask_has(&r->tried, (size_t)i) && w->view[i].blocked_until <= t;
}

static int naive_pick(world_t *w, req_t *r, int64_t t)
{
    int n = w->p.accounts;
    switch (w->kind) {
    case P_ROUND_ROBIN:
        for (int k = 0; k < n; k++) {
            int i = (int)((w->rr_cursor + (size_t)k) % (size_t)n);
            if (!view_ok(w, i, r, t)) continue;
            w->rr_cursor = (size_t)i + 1;
            return i;
        }
        return -1;
    case P_LEAST_USED: {
        int best = -1;
        double bu = 0;
        for (int k = 0; k < n; k++) {
            int i = (int)((w->rr_cursor + (size_t)k) % (size_t)n);
            if (!view_ok(w, i, r, t)) continue;
            double u = view_util(&w->view[i], t);
            if (best < 0 || u < bu) best = i, bu = u;
        }
        if (best >= 0) w->rr_cursor = (size_t)best + 1;
        return best;
    }
    case P_STICKY98:
        for (int k = 0; k < n; k++) {
            int i = (w->sticky_current + k) % n;
            if (!view_ok(w, i, r, t) || view_util(&w->view[i], t) >= 0.98) continue;
            w->sticky_current = i;
            return i;
        }
        /* Everything at 98 %: anything not blocked. */
        for (int i = 0; i < n; i++)
            if (view_ok(w, i, r, t)) return i;
        return -1;
    default:
        return -1;
    }
}

/* ------------------------------------------------------------ maxpool ---- */

static void maxpool_init(world_t *w)
{
    sched_options_t o;
    sched_options_default(&o);
    o.quota_probe_ms = w->p.probe_ms;
    if (w->kind == P_MAXPOOL_TUNED) o.switch_threshold = 0.98;
    sched_init(&w->sched, &o);
    for (int i = 0; i < w->p.accounts; i++) {
        account_t a;
        char name[24];
        snprintf(name, sizeof name, "acct-%d", i + 1);
        account_init(&a, name, ACCOUNT_OAUTH, "x");
        sched_add_account(&w->sched, &a, false, T0);
    }
}

/* The usage probe (§4.3): what /api/oauth/usage would say about every account. */
static void probe(world_t *w, int64_t t)
{
    for (int i = 0; i < w->p.accounts; i++) {
        const facct_t *a = &w->acct[i];
        quota_probe_t pr;
        quota_probe_init(&pr);
        pr.session = a->w5.reset ? fmin(1, (double)a->w5.used / (double)a->w5.budget) : 0;
        pr.session_reset_ms = a->w5.reset;
        pr.weekly = a->w7.reset ? fmin(1, (double)a->w7.used / (double)a->w7.budget) : 0;
        pr.weekly_reset_ms = a->w7.reset;
        sched_on_probe(&w->sched, i, &pr, t);
    }
}

/* =============================================================== driver ==== */

static session_t *sess(world_t *w, int id)
{
    return &w->sess[id];
}

static double session_rate(const params_t *p, int64_t t)
{
    int64_t day = (t - T0) / DAY; /* 0 = Monday */
    int hour = (int)(((t - T0) % DAY) / HOUR);
    bool weekend = day % 7 >= 5;
    if (weekend) return hour >= 10 && hour < 20 ? p->rate_weekend : p->rate_night;
    if (hour >= 9 && hour < 18) return p->rate_work;
    if (hour >= 18 && hour < 23) return p->rate_evening;
    return p->rate_night;
}

/* Next session arrival by thinning a Poisson process with the peak rate. */
static void schedule_arrival(world_t *w, int64_t t)
{
    const params_t *p = &w->p;
    double peak = fmax(fmax(p->rate_work, p->rate_evening), fmax(p->rate_weekend, p->rate_night));
    if (peak <= 0) return;
    rng_state = &w->arrivals_rng;
    for (int guard = 0; guard < 100000; guard++) {
        t += (int64_t)(rng_exp(3600.0 / peak) * 1000);
        if (t >= w->end) return;
        if (rng_u() * peak < session_rate(p, t)) {
            heap_push(&w->heap, t, EV_SESSION_START, -1);
            return;
        }
    }
}

static int new_request(world_t *w, int sid, int64_t t)
{
    session_t *s = sess(w, sid);
    const params_t *p = &w->p;
    rng_state = &s->rng;
    if (w->n_reqs == w->cap_reqs) {
        w->cap_reqs = w->cap_reqs ? w->cap_reqs * 2 : 4096;
        w->reqs = xrealloc(w->reqs, w->cap_reqs * sizeof *w->reqs);
    }
    int id = (int)w->n_reqs++;
    req_t *r = &w->reqs[id];
    memset(r, 0, sizeof *r);
    r->session = sid;
    double in = rng_lognormal(p->new_input_mean, 1.0);
    double out = fmin(rng_lognormal(p->output_mean, 0.9), 32000);
    s->context += in + out;
    if (s->context > 160000) s->context = 40000; /* compaction */
    r->input = (int64_t)(in + s->context);
    r->output = (int64_t)out;
    r->fresh = in + out;
    r->context = s->context;
    r->weight = sched_weight((size_t)(s->context * 4), 32000, rng_u() < 0.3);
    sched_request_init(&r->sr);
    r->sr.session = s->key;
    r->sr.model = "claude-sonnet-4-5";
    r->sr.stream = true;
    r->sr.body_json = true;
    r->sr.weight = r->weight;
    r->sr.body_bytes = (size_t)(s->context * 4);
    r->acct = -1;
    w->requests++;
    heap_push(&w->heap, t, EV_ATTEMPT, id);
    return id;
}

static void start_turn(world_t *w, int sid, int64_t t)
{
    session_t *s = sess(w, sid);
    rng_state = &s->rng;
    if (s->turns_left-- <= 0) return;
    s->reqs_left = 1 + rng_geometric(w->p.requests_mean - 1);
    new_request(w, sid, t);
}

static void session_start(world_t *w, int64_t t)
{
    if (w->n_sess == w->cap_sess) {
        w->cap_sess = w->cap_sess ? w->cap_sess * 2 : 256;
        w->sess = xrealloc(w->sess, w->cap_sess * sizeof *w->sess);
    }
    int sid = (int)w->n_sess++;
    session_t *s = sess(w, sid);
    memset(s, 0, sizeof *s);
    s->rng = rng_seed(w->p.seed, 1000 + (uint64_t)sid);
    rng_state = &s->rng;
    s->turns_left = 1 + rng_geometric(w->p.turns_mean - 1);
    s->context = rng_lognormal(20000, 0.4);
    s->last_acct = -1;
    snprintf(s->key, sizeof s->key, "s%d", sid);
    start_turn(w, sid, t);
}

static void served(world_t *w, req_t *r, int idx, int64_t t)
{
    session_t *s = sess(w, r->session);
    if (s->last_acct >= 0 && s->last_acct != idx) s->switches++;
    /* The prompt cache lives per account for 5 minutes: a read costs cache_rate of the
     * context; a miss (new account, or a long pause) pays for the whole context again. */
    bool hit = s->last_acct == idx && t - s->last_done_ms <= 5 * MIN;
    if (!hit) s->misses++;
    r->charge = (int64_t)(r->fresh + r->context * (hit ? w->p.cache_rate : 1.0));
    s->last_acct = idx;
    s->requests++;
    r->acct = idx;
    charge(w, idx, r->charge, t);
    w->spent_tokens += r->charge;
    w->served_tokens += (int64_t)r->fresh;
    if (r->waiting) {
        r->waiting = false;
        set_waiting(w, -1, t);
    }
    int64_t dur = 2 * SEC + r->output * 1000 / 50;
    heap_push(&w->heap, t + dur, EV_DONE, (int)(r - w->reqs));
}

static void hold(world_t *w, req_t *r, int64_t t, int64_t retry_ms)
{
    if (!r->counted_held) {
        r->counted_held = true;
        w->held++;
    }
    if (!r->waiting) {
        r->waiting = true;
        set_waiting(w, +1, t);
    }
    if (retry_ms < SEC) retry_ms = SEC;
    if (retry_ms > w->p.retry_poll_ms) retry_ms = w->p.retry_poll_ms;
    w->wait_sum_ms += retry_ms;
    heap_push(&w->heap, t + retry_ms, EV_ATTEMPT, (int)(r - w->reqs));
}

static void attempt_maxpool(world_t *w, req_t *r, int64_t t)
{
    /* A resumed request starts over: attempt 0, no exclusions (§6.1). */
    sched_request_restart(&r->sr);
    for (int guard = 0; guard < 2 * MAXA; guard++) {
        sched_pick_t pk;
        int i = sched_select(&w->sched, &r->sr, t, &pk);
        if (i < 0) {
            hold(w, r, t, pk.retry_ms == SCHED_NEVER ? w->p.retry_poll_ms : pk.retry_ms);
            return;
        }
        int ra = fleet_check(&w->acct[i], t);
        hdrs_t h;
        fleet_headers(&w->acct[i], &h, ra);
        sched_outcome_t out;
        sched_response_t resp = {.status = ra ? 429 : 200,
                                 .headers = h.h,
                                 .n_headers = h.n,
                                 .error_type = ra ? "rate_limit_error" : NULL,
                                 .error_message = ra ? "Session limit reached" : NULL};
        if (!ra) {
            /* Headers describe the window after this request's charge, as the sim's do. */
            served(w, r, i, t);
            fleet_headers(&w->acct[i], &h, 0);
            resp.n_headers = h.n;
            sched_on_response(&w->sched, i, &r->sr, &resp, t, &out);
            return;
        }
        sched_action_t act = sched_on_response(&w->sched, i, &r->sr, &resp, t, &out);
        if (act != SCHED_RETRY) {
            sched_cause_t c;
            int64_t ms = sched_next_retry(&w->sched, &r->sr, t, &c);
            hold(w, r, t, ms == SCHED_NEVER ? w->p.retry_poll_ms : ms);
            return;
        }
    }
    hold(w, r, t, w->p.retry_poll_ms);
}

static void attempt_naive(world_t *w, req_t *r, int64_t t)
{
    memset(&r->tried, 0, sizeof r->tried);
    for (int guard = 0; guard < MAXA + 1; guard++) {
        int i = naive_pick(w, r, t);
        if (i < 0) break;
        int ra = fleet_check(&w->acct[i], t);
        if (!ra) {
            served(w, r, i, t);
            view_learn(&w->view[i], &w->acct[i]);
            return;
        }
        view_learn(&w->view[i], &w->acct[i]);
        w->view[i].blocked_until = t + ra * SEC;
        account_mask_add(&r->tried, (size_t)i);
    }
    /* Wait for the soonest known unblock (or poll). */
    int64_t soon = 0;
    for (int i = 0; i < w->p.accounts; i++)
        if (w->view[i].blocked_until > t && (!soon || w->view[i].blocked_until < soon))
            soon = w->view[i].blocked_until;
    hold(w, r, t, soon ? soon - t : w->p.retry_poll_ms);
}

static void done(world_t *w, req_t *r, int64_t t)
{
    if (w->kind == P_MAXPOOL || w->kind == P_MAXPOOL_TUNED) {
        sched_usage_t u = {.status = 200,
                           .input_tokens = (uint64_t)r->input,
                           .output_tokens = (uint64_t)r->output};
        sched_on_complete(&w->sched, r->acct, &r->sr, &u, t);
    }
    int sid = r->session;
    session_t *s = sess(w, sid);
    rng_state = &s->rng;
    s->last_done_ms = t;
    if (--s->reqs_left > 0) {
        new_request(w, sid, t + (int64_t)((2 + 6 * rng_u()) * SEC));
        return;
    }
    double idle = rng_u() < w->p.long_break_p ? (15 + 45 * rng_u()) * 60
                                              : rng_lognormal(w->p.idle_mean_s, 0.8);
    int64_t next = t + (int64_t)(idle * 1000);
    if (s->turns_left > 0 && next < w->end) {
        /* The next turn starts after the idle gap. */
        heap_push(&w->heap, next, EV_SESSION_START, sid);
    }
}

typedef struct result {
    double served_m, spent_m, wasted_m, held_pct, switches, peak;
    int64_t requests, held;
    int sessions;
    double mean_wait_s;
} result_t;

static result_t run(const params_t *p, policy_kind_t kind)
{
    world_t *w = xcalloc(1, sizeof *w);
    w->p = *p;
    w->kind = kind;
    w->end = T0 + p->days * DAY;
    w->arrivals_rng = rng_seed(p->seed, 1);
    w->fleet_rng = rng_seed(p->seed, 2);
    rng_state = &w->fleet_rng;
    for (int i = 0; i < p->accounts; i++) {
        w->acct[i].w5 = (win_t){.budget = p->budget5h, .len = 5 * HOUR};
        w->acct[i].w7 = (win_t){.budget = p->budget7d, .len = 7 * DAY};
        if (p->prior) {
            /* Weekly windows opened last week at staggered times with some use, so they
             * reset on different days (as real accounts do). */
            win_t *x = &w->acct[i].w7;
            int64_t opened = T0 - (int64_t)((double)(i + 1) / (p->accounts + 1) * 7 * DAY);
            x->used = (int64_t)(x->budget * (0.2 + 0.5 * rng_u()));
            x->reset = opened + x->len;
            x->open_ms = T0;
            heap_push(&w->heap, x->reset, EV_RESET7, i);
            w->acct[i].peak7 = (double)x->used / (double)x->budget;
        }
    }
    bool mp = kind == P_MAXPOOL || kind == P_MAXPOOL_TUNED;
    if (mp) {
        maxpool_init(w);
        if (p->probe_ms > 0) heap_push(&w->heap, T0, EV_PROBE, -1);
    }
    schedule_arrival(w, T0);
    while (w->heap.n) {
        event_t e = heap_pop(&w->heap);
        if (e.t >= w->end) break;
        switch (e.type) {
        case EV_SESSION_START:
            if (e.id < 0) {
                session_start(w, e.t);
                schedule_arrival(w, e.t);
            } else {
                start_turn(w, e.id, e.t);
            }
            break;
        case EV_ATTEMPT:
            if (mp)
                attempt_maxpool(w, &w->reqs[e.id], e.t);
            else
                attempt_naive(w, &w->reqs[e.id], e.t);
            break;
        case EV_DONE:
            done(w, &w->reqs[e.id], e.t);
            break;
        case EV_PROBE:
            probe(w, e.t);
            heap_push(&w->heap, e.t + p->probe_ms, EV_PROBE, -1);
            break;
        case EV_RESET5:
        case EV_RESET7:
            window_reset(w, e.id, e.type == EV_RESET7, e.t);
            break;
        }
        if (mp) {
            sched_event_t ev;
            while (sched_event_pop(&w->sched, &ev)) {
            }
        }
    }
    result_t res = {0};
    res.served_m = (double)w->served_tokens / 1e6;
    res.spent_m = (double)w->spent_tokens / 1e6;
    res.wasted_m = (double)w->wasted_tokens / 1e6;
    res.requests = w->requests;
    res.held = w->held;
    res.held_pct = w->requests ? 100.0 * (double)w->held / (double)w->requests : 0;
    int counted = 0;
    double sw = 0;
    for (size_t i = 0; i < w->n_sess; i++)
        if (w->sess[i].requests > 0) {
            sw += w->sess[i].switches;
            counted++;
        }
    res.sessions = (int)w->n_sess;
    res.switches = counted ? sw / counted : 0;
    for (int i = 0; i < p->accounts; i++)
        if (w->acct[i].peak7 > res.peak) res.peak = w->acct[i].peak7;
    res.mean_wait_s = w->held ? (double)w->wait_sum_ms / 1000.0 / (double)w->held : 0;
    if (mp) sched_free(&w->sched);
    free(w->heap.v);
    free(w->sess);
    free(w->reqs);
    free(w);
    return res;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: policy [--seed N] [--accounts N] [--days N] [--budget5h T] [--budget7d T]\n"
            "              [--load X (scales every session rate)] [--seeds N (average)]\n"
            "              [--probe-seconds N (maxpool's usage probe, 0 = off)] [--no-prior]\n");
}

int main(int argc, char **argv)
{
    params_t p;
    params_default(&p);
    double load = 1.0;
    int seeds = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--no-prior") == 0) {
            p.prior = false;
            continue;
        }
        if (!v) {
            usage();
            return 2;
        }
        i++;
        if (strcmp(a, "--seed") == 0)
            p.seed = strtoull(v, NULL, 10);
        else if (strcmp(a, "--accounts") == 0)
            p.accounts = (int)strtol(v, NULL, 10);
        else if (strcmp(a, "--days") == 0)
            p.days = (int)strtol(v, NULL, 10);
        else if (strcmp(a, "--budget5h") == 0)
            p.budget5h = strtoll(v, NULL, 10);
        else if (strcmp(a, "--budget7d") == 0)
            p.budget7d = strtoll(v, NULL, 10);
        else if (strcmp(a, "--load") == 0)
            load = strtod(v, NULL);
        else if (strcmp(a, "--probe-seconds") == 0)
            p.probe_ms = strtoll(v, NULL, 10) * SEC;
        else if (strcmp(a, "--seeds") == 0)
            seeds = (int)strtol(v, NULL, 10);
        else {
            usage();
            return 2;
        }
    }
    if (p.accounts < 1 || p.accounts > MAXA || p.days < 1 || p.days > 60 || load <= 0 ||
        p.budget5h <= 0 || p.budget7d <= 0 || seeds < 1 || seeds > 100) {
        usage();
        return 2;
    }
    p.rate_work *= load;
    p.rate_evening *= load;
    p.rate_weekend *= load;
    p.rate_night *= load;
    printf("| policy | tokens served (M) | requests not served at once | quota wasted (M) | "
           "account switches / session | worst weekly peak | quota spent (M) |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|\n");
    for (int k = 0; k < P_COUNT; k++) {
        /* Averages over the seeds seed, seed+1, … */
        result_t r = {0};
        params_t q = p;
        for (int n = 0; n < seeds; n++) {
            q.seed = p.seed + (uint64_t)n;
            result_t x = run(&q, (policy_kind_t)k);
            r.served_m += x.served_m / seeds;
            r.spent_m += x.spent_m / seeds;
            r.wasted_m += x.wasted_m / seeds;
            r.switches += x.switches / seeds;
            r.peak += x.peak / seeds;
            r.held += x.held;
            r.requests += x.requests;
        }
        r.held_pct = r.requests ? 100.0 * (double)r.held / (double)r.requests : 0;
        r.held = (r.held + seeds / 2) / seeds;
        r.requests = (r.requests + seeds / 2) / seeds;
        printf("| %s | %.1f | %lld of %lld (%.1f %%) | %.1f | %.2f | %.0f %% | %.1f |\n",
               POLICY_NAMES[k], r.served_m, (long long)r.held, (long long)r.requests, r.held_pct,
               r.wasted_m, r.switches, 100 * r.peak, r.spent_m);
    }
    printf("\nseed %llu%s · %d accounts · %d days · budgets %lld / %lld tokens (5h / 7d) · load "
           "×%.2f%s\n",
           (unsigned long long)p.seed, seeds > 1 ? " (+ following seeds, averaged)" : "",
           p.accounts, p.days, (long long)p.budget5h, (long long)p.budget7d, load,
           p.prior ? " · staggered prior weekly use" : "");
    return 0;
}
