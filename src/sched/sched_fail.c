/* sched — what responses and failures mean (§6.1–§6.4, §5.11): the status table, 429
 * classification, the shared upstream throttle with its half-open probe, and completions. */
#include "sched/sched.h"
#include "sched/sched_int.h"

#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *sched_queue_cause_name(sched_queue_cause_t c)
{
    switch (c) {
    case SCHED_QUEUE_QUOTA:
        return "quota";
    case SCHED_QUEUE_CAPACITY:
        return "capacity";
    case SCHED_QUEUE_UPSTREAM_THROTTLE:
        return "upstream_throttle";
    case SCHED_QUEUE_NETWORK:
        return "network";
    case SCHED_QUEUE_PROXY:
        return "proxy";
    case SCHED_QUEUE_NONE:
        break;
    }
    return "";
}

static const char *hdr(const sched_response_t *r, const char *name)
{
    for (size_t i = 0; i < r->n_headers; i++)
        if (r->headers[i].name && strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

static bool hdr_number(const sched_response_t *r, const char *name, double *out)
{
    const char *v = hdr(r, name);
    if (!v) return false;
    char *end;
    double d = strtod(v, &end);
    if (end == v) return false;
    *out = d;
    return true;
}

/* ====================================================== classification ==== */

void sched_fingerprint(const char *type, const char *message, char *fp)
{
    char raw[1024];
    snprintf(raw, sizeof raw, "%s:%s", type ? type : "", message ? message : "");
    size_t o = 0;
    for (size_t i = 0; raw[i] && o < SCHED_FP_MAX;) {
        unsigned char ch = (unsigned char)tolower((unsigned char)raw[i]);
        size_t hex = 0;
        while (raw[i + hex] && isxdigit((unsigned char)raw[i + hex]))
            hex++;
        if (hex >= 8) {
            fp[o++] = '#';
            i += hex;
        } else if (isdigit(ch)) {
            fp[o++] = '#';
            while (isdigit((unsigned char)raw[i]))
                i++;
        } else if (isspace(ch)) {
            if (o > 0 && fp[o - 1] != ' ') fp[o++] = ' ';
            while (isspace((unsigned char)raw[i]))
                i++;
        } else {
            fp[o++] = (char)ch;
            i++;
        }
    }
    while (o > 0 && fp[o - 1] == ' ')
        o--;
    fp[o] = '\0';
}

/* True when some word of `a` is followed within `gap` characters by some word of `b`. */
static bool near_words(const char *low, const char *const *a, const char *const *b, size_t gap)
{
    for (; *a; a++) {
        for (const char *p = strstr(low, *a); p; p = strstr(p + 1, *a)) {
            const char *end = p + strlen(*a);
            for (const char *const *w = b; *w; w++) {
                const char *q = strstr(end, *w);
                if (q && (size_t)(q - end) <= gap) return true;
            }
        }
    }
    return false;
}

static void lower_copy(const char *s, char *out, size_t len)
{
    size_t i = 0;
    for (; s && s[i] && i + 1 < len; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    out[i] = '\0';
}

static bool account_message(const char *msg)
{
    static const char *const subj[] = {"account", "plan", "session", "weekly", "quota", NULL};
    static const char *const verb[] = {"exhausted", "limit", "exceeded", "reached", NULL};
    static const char *const usage[] = {"usage", NULL};
    static const char *const uverb[] = {"exhausted", "exceeded", "reached", NULL};
    char low[1024];
    lower_copy(msg, low, sizeof low);
    return near_words(low, subj, verb, 40) || near_words(low, usage, uverb, 40);
}

static bool upstream_message(const char *msg)
{
    char low[1024];
    lower_copy(msg, low, sizeof low);
    return strstr(low, "not your usage limit") || strstr(low, "temporarily limiting requests") ||
           strstr(low, "server is temporarily limiting");
}

static uint64_t fp_hash(const char *fp)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *fp; fp++)
        h = (h ^ (unsigned char)*fp) * 1099511628211ULL;
    return h;
}

/* Another account returned the same ambiguous 429 within 30 s (§6.3 step 4). */
static bool seen_elsewhere(const sched_t *s, uint64_t h, int idx, int64_t now)
{
    for (size_t i = 0; i < SCHED_SEEN429; i++) {
        const sched_seen429_t *e = &s->seen[i];
        if (e->at_ms && e->fp_hash == h && e->idx != idx && now - e->at_ms <= 30000) return true;
    }
    return false;
}

/* §6.3 step 2: signals that the account itself is spent. */
static bool is_account_429(const sched_response_t *resp)
{
    double u5 = -1, u7 = -1, v;
    bool h5 = hdr_number(resp, "anthropic-ratelimit-unified-5h-utilization", &u5);
    bool h7 = hdr_number(resp, "anthropic-ratelimit-unified-7d-utilization", &u7);
    const char *st = hdr(resp, "anthropic-ratelimit-unified-status");
    return (st && strncasecmp(st, "rejected", 8) == 0) || (h5 && u5 >= 0.999) ||
           (h7 && u7 >= 0.999) ||
           (hdr_number(resp, "anthropic-ratelimit-tokens-remaining", &v) && v <= 0) ||
           (hdr_number(resp, "anthropic-ratelimit-requests-remaining", &v) && v <= 0) ||
           account_message(resp->error_message ? resp->error_message : "");
}

sched_scope_t sched_classify_429(const sched_t *s, int idx, const sched_request_t *req,
                                 const sched_response_t *resp, int64_t now, char *fp,
                                 int *retry_after_s)
{
    int ra = quota_parse_retry_after(hdr(resp, "retry-after"), now);
    if (ra <= 0) ra = 60;
    if (retry_after_s) *retry_after_s = ra;
    const char *msg = resp->error_message ? resp->error_message : "";
    const char *type = resp->error_type ? resp->error_type : "";
    char local[SCHED_FP_MAX + 1];
    if (!fp) fp = local;
    sched_fingerprint(type, msg, fp);

    double u5 = -1, u7 = -1;
    bool h5 = hdr_number(resp, "anthropic-ratelimit-unified-5h-utilization", &u5);
    bool h7 = hdr_number(resp, "anthropic-ratelimit-unified-7d-utilization", &u7);
    quota_family_t fam = quota_family(req ? req->model : NULL);
    bool model_scope = fam != QUOTA_FAMILY_NONE && (h5 || h7) && (!h5 || u5 < 0.999) &&
                       (!h7 || u7 < 0.999) && ra >= 1800;

    if (is_account_429(resp)) return model_scope ? SCHED_SCOPE_MODEL : SCHED_SCOPE_ACCOUNT;
    if (upstream_message(msg) || strcmp(type, "overloaded_error") == 0) return SCHED_SCOPE_UPSTREAM;
    if (seen_elsewhere(s, fp_hash(fp), idx, now)) return SCHED_SCOPE_UNKNOWN;
    return model_scope ? SCHED_SCOPE_MODEL : SCHED_SCOPE_ACCOUNT;
}

/* ========================================================= throttle ==== */

void sched_throttle_open(sched_t *s, int retry_after_s, const char *reason, int status, int64_t now)
{
    sched_throttle_t *t = &s->throttle;
    if (retry_after_s < 1) retry_after_s = 1;
    if (retry_after_s > 86400) retry_after_s = 86400;
    int64_t until = now + retry_after_s * 1000LL;
    if (until > t->until_ms) t->until_ms = until;
    snprintf(t->reason, sizeof t->reason, "%s", reason ? reason : "");
    t->status = status;
    t->failed_probes = 0;
    t->probe_in_flight = false;
    t->probe_idx = -1;
    t->count++;
    t->last_ms = now;
    sched_emit(s, SCHED_EV_THROTTLE_OPEN, -1,
               "Anthropic upstream temporarily limiting requests for %llds; pausing Claude routes",
               (long long)((t->until_ms - now + 999) / 1000));
    sched_emit(s, SCHED_EV_THROTTLE_OPEN, -1,
               "Every eligible Claude account returned the same server-side %d; opening shared "
               "Anthropic throttle",
               status);
}

void sched_throttle_close(sched_t *s, const char *why, int64_t now)
{
    sched_throttle_t *t = &s->throttle;
    if (!t->until_ms) return;
    t->until_ms = 0;
    t->probe_in_flight = false;
    t->probe_idx = -1;
    t->failed_probes = 0;
    t->ramp_until_ms = now + 5000;
    sched_emit(s, SCHED_EV_THROTTLE_CLEAR, -1, "Anthropic upstream throttle cleared (%s)", why);
}

void sched_throttle_probe_failed(sched_t *s, int64_t now)
{
    sched_throttle_t *t = &s->throttle;
    t->probe_in_flight = false;
    t->probe_idx = -1;
    if (++t->failed_probes >= 4) {
        t->until_ms = 0;
        t->failed_probes = 0;
        sched_emit(s, SCHED_EV_THROTTLE_CLEAR, -1,
                   "Anthropic upstream throttle closed after 4 failed recovery probes; "
                   "per-account handling resumes");
        return;
    }
    int64_t secs = 5LL << (t->failed_probes - 1);
    if (secs > 60) secs = 60;
    t->until_ms = now + secs * 1000;
    sched_emit(s, SCHED_EV_THROTTLE_REOPEN, -1,
               "Anthropic upstream recovery probe failed; pausing Claude routes for %llds",
               (long long)secs);
}

bool sched_throttle_consider(sched_t *s, sched_request_t *req, int64_t now)
{
    sched_incident_t *in = &req->incident;
    if (!in->fingerprint[0]) return false;
    int involved = 0;
    for (size_t i = 0; i < s->n; i++)
        if (account_mask_has(&in->accounts, i)) involved++;
    if (involved < 2) return false;
    if (s->last_claude_ok_ms >= in->first_ms) return false;
    quota_family_t fam = quota_family(req->model);
    for (size_t i = 0; i < s->n; i++) {
        account_t *a = &s->accts[i];
        if (account_mask_has(&in->accounts, i) || !a->enabled || !sched_is_claude(a)) continue;
        if (!sched_matches(s, (int)i, req, now, SCHED_M_IGNORE_FAIRNESS | SCHED_M_IGNORE_THROTTLE))
            continue;
        sched_tier_t t = sched_weekly_raw(s, a);
        bool out = a->status == ACCOUNT_EXHAUSTED || a->status == ACCOUNT_ERROR ||
                   sched_session_benched(s, a) || t == SCHED_TIER_EXHAUSTED ||
                   t == SCHED_TIER_CAPPED || quota_scoped_benched(&a->quota, fam, 0.999);
        if (!out) return false;
    }
    sched_throttle_open(s, in->retry_after_s, in->fingerprint, in->status, now);
    return true;
}

/* ====================================================== bookkeeping ==== */

static void count_failure(sched_t *s, int idx, sched_request_t *req, int status, bool bump,
                          const char *why, int64_t now)
{
    account_t *a = &s->accts[idx];
    a->failed++;
    if (bump) a->consecutive_failures++;
    account_load_add(a, now, req->weight, false, now - req->started_ms);
    if (why) {
        snprintf(a->last_error, sizeof a->last_error, "%s", why);
        a->last_error_ms = now;
    }
    (void)status;
}

static int max_attempts(const sched_t *s)
{
    int m = s->opt.max_attempts > 0 ? s->opt.max_attempts : (int)s->n;
    return m < 1 ? 1 : m;
}

/* §6.1 preconditions shared by every failover. */
static bool can_failover(const sched_t *s, const sched_request_t *req)
{
    return !req->committed && (int64_t)req->body_bytes <= s->opt.max_retry_buffer &&
           req->attempt + 1 < max_attempts(s);
}

static sched_action_t retry(sched_request_t *req)
{
    req->attempt++;
    req->pin = -1;
    return SCHED_RETRY;
}

static void incident_add(sched_request_t *req, int idx, const char *fp, int ra, int status,
                         int64_t now)
{
    sched_incident_t *in = &req->incident;
    if (strcmp(in->fingerprint, fp) != 0) {
        memset(in, 0, sizeof *in);
        snprintf(in->fingerprint, sizeof in->fingerprint, "%s", fp);
        in->first_ms = now;
    }
    account_mask_add(&in->accounts, (size_t)idx);
    in->count++;
    if (ra > in->retry_after_s) in->retry_after_s = ra;
    in->status = status;
}

static void give_up(sched_outcome_t *out, sched_queue_cause_t cause, int status, const char *type,
                    bool verbatim, int retry_after_s)
{
    out->action = SCHED_GIVE_UP;
    out->cause = cause;
    out->status = status;
    out->error_type = verbatim ? NULL : type;
    out->verbatim = verbatim;
    out->retry_after_s = retry_after_s;
}

/* The no-route 429 of §6.10 with the oracle's retry-after. */
static void give_up_no_route(sched_t *s, sched_request_t *req, sched_queue_cause_t cause,
                             int64_t now, sched_outcome_t *out)
{
    sched_cause_t oc;
    int64_t ms = sched_next_retry(s, req, now, &oc);
    int ra = ms == SCHED_NEVER ? 60 : (int)((ms + 999) / 1000);
    if (ra < 1) ra = 1;
    give_up(out, cause, 429, "rate_limit_error", false, ra);
    sched_no_route_message(s, ms, oc, out->message, sizeof out->message);
}

static void throttle_give_up(sched_t *s, sched_request_t *req, int status, int64_t now,
                             sched_outcome_t *out)
{
    sched_cause_t oc;
    int64_t ms = sched_next_retry(s, req, now, &oc);
    int ra = ms == SCHED_NEVER ? 60 : (int)((ms + 999) / 1000);
    if (ra < 1) ra = 1;
    if (status == 529) {
        give_up(out, SCHED_QUEUE_UPSTREAM_THROTTLE, 529, "overloaded_error", false, ra);
        snprintf(out->message, sizeof out->message,
                 "Anthropic is temporarily overloaded. Maxpool will retry automatically when "
                 "capacity returns.");
    } else {
        give_up(out, SCHED_QUEUE_UPSTREAM_THROTTLE, 429, "rate_limit_error", false, ra);
        snprintf(out->message, sizeof out->message,
                 "Anthropic is temporarily limiting requests. Maxpool will retry automatically "
                 "when capacity returns.");
    }
}

static void record_seen(sched_t *s, const char *fp, int idx, int64_t now)
{
    sched_seen429_t *e = &s->seen[s->seen_next];
    e->fp_hash = fp_hash(fp);
    e->idx = idx;
    e->at_ms = now;
    s->seen_next = (s->seen_next + 1) % SCHED_SEEN429;
}

/* A promoted ambiguous 429: accounts that reported it are not at fault (§6.3 step 4). */
static void lift_seen(sched_t *s, const char *fp, int64_t now)
{
    uint64_t h = fp_hash(fp);
    for (size_t i = 0; i < SCHED_SEEN429; i++) {
        sched_seen429_t *e = &s->seen[i];
        if (!e->at_ms || e->fp_hash != h || now - e->at_ms > 30000) continue;
        if (e->idx < 0 || (size_t)e->idx >= s->n) continue;
        account_t *a = &s->accts[e->idx];
        if (a->status == ACCOUNT_THROTTLED) {
            a->status = ACCOUNT_ACTIVE;
            a->rate_limited_until_ms = 0;
        }
        a->provisional_until_ms = 0;
    }
}

static void rate_limit(sched_t *s, int idx, int secs, int64_t now)
{
    account_t *a = &s->accts[idx];
    if (secs < 1) secs = 1;
    if (secs > 86400) secs = 86400;
    a->status = ACCOUNT_THROTTLED;
    a->rate_limited_until_ms = now + secs * 1000LL;
    sched_emit(s, SCHED_EV_RATE_LIMITED, idx, "Account \"%s\" rate limited for %ds", a->name, secs);
}

static void provisional(sched_t *s, int idx, int ra, int status, int64_t now)
{
    account_t *a = &s->accts[idx];
    int secs = ra < 1 ? 1 : ra > 30 ? 30 : ra;
    int64_t until = now + secs * 1000LL;
    if (until > a->provisional_until_ms) a->provisional_until_ms = until;
    sched_emit(s, SCHED_EV_PROVISIONAL, idx, "Account \"%s\" server-side %d; pausing it for %ds",
               a->name, status, secs);
}

static void cooldown(sched_t *s, int idx, int64_t ms, const char *why, int64_t now)
{
    account_t *a = &s->accts[idx];
    if (now + ms > a->cooldown_until_ms) a->cooldown_until_ms = now + ms;
    sched_emit(s, SCHED_EV_COOLDOWN, idx, "Account \"%s\" cooling down for %llds after %s", a->name,
               (long long)((ms + 999) / 1000), why);
}

/* The lease ends with a failure that counts against a probe. */
static void end_probe(sched_t *s, sched_request_t *req, bool failed, int64_t now)
{
    if (!req->probe) return;
    req->probe = false;
    if (failed)
        sched_throttle_probe_failed(s, now);
    else
        s->throttle.probe_in_flight = false;
}

/* ====================================================== near quota ==== */

void sched_check_near(sched_t *s, int idx, int64_t now)
{
    account_t *a = &s->accts[idx];
    unsigned bits = 0;
    if (sched_session_benched(s, a)) bits |= 1u;
    sched_tier_t t = sched_weekly_raw(s, a);
    if (t == SCHED_TIER_RESERVE) bits |= 2u;
    if (t == SCHED_TIER_CRITICAL) bits |= 4u;
    if (t == SCHED_TIER_EXHAUSTED || t == SCHED_TIER_CAPPED) bits |= 8u;
    unsigned fresh = bits & ~a->near_logged;
    a->near_logged = bits;
    if (!fresh) return;
    if (fresh & 1u)
        sched_emit(s, SCHED_EV_NEAR_QUOTA, idx,
                   "Account \"%s\" at %.0f%% usage — limiting new placement (session quota)",
                   a->name, 100 * sched_u0(a->quota.unified5h));
    if (fresh & 14u)
        sched_emit(s, SCHED_EV_NEAR_QUOTA, idx,
                   "Account \"%s\" at %.0f%% usage — limiting new placement (weekly %s)", a->name,
                   100 * sched_u0(a->quota.unified7d), sched_tier_name(t));
    (void)now;
}

/* ========================================================= outcomes ==== */

void sched_on_probe(sched_t *s, int idx, const quota_probe_t *p, int64_t now)
{
    assert(idx >= 0 && (size_t)idx < s->n);
    account_t *a = &s->accts[idx];
    bool weekly_known = a->quota.unified7d_reset_ms != 0;
    quota_apply_probe(&a->quota, p, now);
    if (!weekly_known && a->quota.unified7d_reset_ms)
        sched_emit(s, SCHED_EV_WEEKLY_LEARNED, idx,
                   "Learned weekly quota for \"%s\", re-evaluating selection", a->name);
    sched_check_near(s, idx, now);
}

sched_action_t sched_on_response(sched_t *s, int idx, sched_request_t *req,
                                 const sched_response_t *resp, int64_t now, sched_outcome_t *out)
{
    assert(idx >= 0 && (size_t)idx < s->n);
    sched_outcome_t dummy;
    if (!out) out = &dummy;
    memset(out, 0, sizeof *out);
    account_t *a = &s->accts[idx];
    int st = resp->status;
    bool weekly_known = a->quota.unified7d_reset_ms != 0;
    quota_apply_headers(&a->quota, resp->headers, resp->n_headers, now);
    if (!weekly_known && a->quota.unified7d_reset_ms)
        sched_emit(s, SCHED_EV_WEEKLY_LEARNED, idx,
                   "Learned weekly quota for \"%s\", re-evaluating selection", a->name);
    a->last_status = st;
    a->last_response_ms = now - req->started_ms;
    sched_check_near(s, idx, now);

    bool claude = sched_is_claude(a);
    bool capacity = st == 429 || st == 403 || st == 408 || st >= 500;
    if (st >= 200 && st < 400) {
        a->last_accepted_ms = now;
        if (claude) s->last_claude_ok_ms = now;
        if (req->probe) {
            req->probe = false;
            sched_throttle_close(s, "Anthropic accepted recovery probe", now);
        }
        out->action = SCHED_RELAY;
        return SCHED_RELAY;
    }
    if (req->probe && !capacity) {
        req->probe = false;
        sched_throttle_close(s, "Anthropic accepted recovery probe", now);
    }

    /* ------------------------------------------------------------ 429 */
    if (st == 429 && claude) {
        char fp[SCHED_FP_MAX + 1];
        int ra;
        sched_scope_t scope = sched_classify_429(s, idx, req, resp, now, fp, &ra);
        bool was_probe = req->probe;
        end_probe(s, req, true, now);
        bool ambiguous = scope != SCHED_SCOPE_UPSTREAM && !is_account_429(resp);
        if (ambiguous) record_seen(s, fp, idx, now);
        if (scope == SCHED_SCOPE_UNKNOWN) {
            /* The same ambiguous 429 on two accounts within 30 s is the upstream's. */
            lift_seen(s, fp, now);
            sched_lease_end(s, idx, req);
            account_mask_add(&req->tried, (size_t)idx);
            incident_add(req, idx, fp, ra, 429, now);
            if (!was_probe) sched_throttle_open(s, ra, fp, 429, now);
            throttle_give_up(s, req, 429, now, out);
            return SCHED_GIVE_UP;
        }
        sched_lease_end(s, idx, req);
        account_mask_add(&req->tried, (size_t)idx);
        if (scope == SCHED_SCOPE_UPSTREAM) {
            provisional(s, idx, ra, 429, now);
            incident_add(req, idx, fp, ra, 429, now);
            if (can_failover(s, req) && sched_other_route(s, req, now)) return retry(req);
            if (sched_throttle_blocking(s, req, now) ||
                (!was_probe && sched_throttle_consider(s, req, now))) {
                throttle_give_up(s, req, 429, now, out);
                return SCHED_GIVE_UP;
            }
            give_up(out, SCHED_QUEUE_CAPACITY, 429, NULL, true, ra);
            return SCHED_GIVE_UP;
        }
        if (scope == SCHED_SCOPE_MODEL) {
            quota_family_t fam = quota_family(req->model);
            quota_set_scoped(&a->quota, fam, 1.0, now + ra * 1000LL, true);
            sched_emit(s, SCHED_EV_SCOPED_BENCH, idx,
                       "Account \"%s\" %s weekly limit hit — scoped bench %ds (account stays "
                       "active for other models)",
                       a->name, quota_family_name(fam), ra);
        } else {
            rate_limit(s, idx, ra, now);
            count_failure(s, idx, req, st, true, "429 rate limited", now);
        }
        if (can_failover(s, req) && sched_other_route(s, req, now)) return retry(req);
        give_up_no_route(s, req, SCHED_QUEUE_QUOTA, now, out);
        return SCHED_GIVE_UP;
    }
    if (st == 429 || (st == 403 && !claude)) {
        /* Providers: always account-scoped; a provider 403 is quota, not credentials. */
        int ra = quota_parse_retry_after(hdr(resp, "retry-after"), now);
        if (st == 403) ra = 1800;
        if (ra <= 0) ra = 60;
        end_probe(s, req, false, now);
        sched_lease_end(s, idx, req);
        account_mask_add(&req->tried, (size_t)idx);
        rate_limit(s, idx, ra, now);
        if (can_failover(s, req) && (st == 403 || sched_other_route(s, req, now)))
            return retry(req);
        if (st == 403) {
            give_up(out, SCHED_QUEUE_PROXY, 502, "provider_auth_error", false, 0);
            snprintf(out->message, sizeof out->message,
                     "Fallback provider \"%s\" returned HTTP %d. Check its token, base URL, and "
                     "model config.",
                     a->name, st);
        } else {
            give_up_no_route(s, req, SCHED_QUEUE_QUOTA, now, out);
        }
        return SCHED_GIVE_UP;
    }

    /* ------------------------------------------------------------ 529 (Claude) */
    if (st == 529 && claude) {
        int ra = quota_parse_retry_after(hdr(resp, "retry-after"), now);
        if (ra <= 0) ra = 30;
        char fp[SCHED_FP_MAX + 1];
        sched_fingerprint(resp->error_type ? resp->error_type : "overloaded_error",
                          resp->error_message ? resp->error_message : "", fp);
        bool was_probe = req->probe;
        end_probe(s, req, true, now);
        sched_lease_end(s, idx, req);
        account_mask_add(&req->tried, (size_t)idx);
        provisional(s, idx, ra, 529, now);
        incident_add(req, idx, fp, ra, 529, now);
        if (can_failover(s, req) && sched_other_route(s, req, now)) return retry(req);
        if (sched_throttle_blocking(s, req, now) ||
            (!was_probe && sched_throttle_consider(s, req, now))) {
            throttle_give_up(s, req, 529, now, out);
            return SCHED_GIVE_UP;
        }
        give_up(out, SCHED_QUEUE_CAPACITY, 529, NULL, true, ra);
        return SCHED_GIVE_UP;
    }

    /* ------------------------------------------------------------ 5xx */
    if (st >= 500) {
        end_probe(s, req, true, now);
        sched_lease_end(s, idx, req);
        account_mask_add(&req->tried, (size_t)idx);
        char why[32];
        snprintf(why, sizeof why, "HTTP %d", st);
        cooldown(s, idx, sched_backoff_ms(&s->opt, a->consecutive_failures + 1), why, now);
        count_failure(s, idx, req, st, true, why, now);
        if (can_failover(s, req)) return retry(req);
        give_up(out, SCHED_QUEUE_CAPACITY, st, "overloaded_error", false, 0);
        snprintf(out->message, sizeof out->message, "Upstream returned %d", st);
        return SCHED_GIVE_UP;
    }

    /* ------------------------------------------------------------ 401 */
    if (st == 401 && !claude) {
        end_probe(s, req, false, now);
        sched_lease_end(s, idx, req);
        account_mask_add(&req->tried, (size_t)idx);
        a->status = ACCOUNT_ERROR;
        count_failure(s, idx, req, st, true, "HTTP 401", now);
        if (can_failover(s, req)) return retry(req);
        give_up(out, SCHED_QUEUE_PROXY, 502, "provider_auth_error", false, 0);
        snprintf(out->message, sizeof out->message,
                 "Fallback provider \"%s\" returned HTTP %d. Check its token, base URL, and model "
                 "config.",
                 a->name, st);
        return SCHED_GIVE_UP;
    }
    if (st == 401 && a->type == ACCOUNT_OAUTH) {
        if (!req->auth_retried) {
            /* Part A5: one forced refresh and one retry on the same account first. */
            end_probe(s, req, false, now);
            sched_lease_end(s, idx, req);
            req->auth_retried = true;
            req->pin = idx;
            out->action = SCHED_REFRESH;
            return SCHED_REFRESH;
        }
        if (can_failover(s, req) && sched_other_route(s, req, now)) {
            end_probe(s, req, false, now);
            sched_lease_end(s, idx, req);
            account_mask_add(&req->tried, (size_t)idx);
            count_failure(s, idx, req, st, true, "HTTP 401", now);
            return retry(req);
        }
    }
    /* Other 4xx: the client's problem; relay the upstream answer as is. */
    out->action = SCHED_PASS;
    return SCHED_PASS;
}

sched_action_t sched_on_failure(sched_t *s, int idx, sched_request_t *req, sched_fail_kind_t kind,
                                const char *code, int64_t now, sched_outcome_t *out)
{
    assert(idx >= 0 && (size_t)idx < s->n);
    sched_outcome_t dummy;
    if (!out) out = &dummy;
    memset(out, 0, sizeof *out);
    account_t *a = &s->accts[idx];
    const char *c = code && *code ? code : "network error";
    sched_lease_end(s, idx, req);
    account_mask_add(&req->tried, (size_t)idx);
    switch (kind) {
    case SCHED_FAIL_NETWORK:
    case SCHED_FAIL_MIDSTREAM:
        end_probe(s, req, true, now);
        cooldown(s, idx, s->opt.network_cooldown_ms, c, now);
        count_failure(s, idx, req, 0, false, c, now);
        if (kind == SCHED_FAIL_NETWORK && can_failover(s, req)) return retry(req);
        give_up(out, kind == SCHED_FAIL_NETWORK ? SCHED_QUEUE_NETWORK : SCHED_QUEUE_NONE, 503,
                "connection_unavailable", false, 0);
        snprintf(out->message, sizeof out->message,
                 "The connection to Claude dropped on every account maxpool tried (%s). This is "
                 "not a quota problem, and it is usually brief — sending the message again "
                 "normally works. If it keeps happening, the link between this machine and "
                 "Anthropic is unstable.",
                 c);
        return SCHED_GIVE_UP;
    case SCHED_FAIL_PROXY:
        end_probe(s, req, true, now);
        count_failure(s, idx, req, 0, true, c, now);
        if (can_failover(s, req)) return retry(req);
        give_up(out, SCHED_QUEUE_PROXY, 502, "proxy_error", false, 0);
        snprintf(out->message, sizeof out->message, "Upstream error: %s", c);
        return SCHED_GIVE_UP;
    case SCHED_FAIL_TRANSIENT:
        end_probe(s, req, false, now);
        cooldown(s, idx, sched_backoff_ms(&s->opt, a->consecutive_failures + 1), c, now);
        count_failure(s, idx, req, 0, true, c, now);
        if (can_failover(s, req)) return retry(req);
        give_up(out, SCHED_QUEUE_CAPACITY, 503, "overloaded_error", false, 0);
        snprintf(out->message, sizeof out->message, "Upstream returned 503");
        return SCHED_GIVE_UP;
    case SCHED_FAIL_REFRESH:
        end_probe(s, req, false, now);
        if (can_failover(s, req) && sched_other_route(s, req, now)) return retry(req);
        give_up(out, SCHED_QUEUE_QUOTA, 401, "authentication_error", false, 0);
        snprintf(out->message, sizeof out->message,
                 "Claude account \"%s\" could not refresh its OAuth token. Run maxpool accounts "
                 "-v or log in again.",
                 a->name);
        return SCHED_GIVE_UP;
    }
    return SCHED_GIVE_UP;
}

void sched_on_complete(sched_t *s, int idx, sched_request_t *req, const sched_usage_t *u,
                       int64_t now)
{
    assert(idx >= 0 && (size_t)idx < s->n);
    account_t *a = &s->accts[idx];
    int status = u ? u->status : 200;
    bool ok = status < 400;
    sched_lease_end(s, idx, req);
    if (req->probe) {
        req->probe = false;
        if (ok)
            sched_throttle_close(s, "Anthropic accepted recovery probe", now);
        else
            s->throttle.probe_in_flight = false;
    }
    if (u) {
        a->input_tokens += u->input_tokens;
        a->output_tokens += u->output_tokens;
    }
    a->last_used_ms = now;
    if (ok) {
        a->completed++;
        a->consecutive_failures = 0;
        account_load_add(a, now, req->weight, true, now - req->started_ms);
        if (sched_is_claude(a)) s->last_claude_ok_ms = now;
    } else {
        char why[32];
        snprintf(why, sizeof why, "HTTP %d", status);
        count_failure(s, idx, req, status, true, why, now);
    }
}

void sched_release(sched_t *s, int idx, sched_request_t *req, int64_t now)
{
    assert(idx >= 0 && (size_t)idx < s->n);
    sched_lease_end(s, idx, req);
    end_probe(s, req, false, now);
}
