/* sched/quota — what the rate-limit headers of upstream responses say about one account
 * (§4.1), and when each window expires (§4.2, Part A3/A4). Pure: facts and times in, state
 * out; no I/O and no clock reads (callers pass now_ms). */
#ifndef MAXPOOL_SCHED_QUOTA_H
#define MAXPOOL_SCHED_QUOTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QUOTA_UNKNOWN (-1.0) /* a utilization nobody has reported (null in JSON) */

typedef struct quota {
    double unified5h; /* 0..1, or QUOTA_UNKNOWN */
    double unified7d;
    int64_t unified5h_reset_ms; /* epoch ms; 0 = unknown */
    int64_t unified7d_reset_ms;
    char unified_status[24]; /* "", "allowed", "allowed_warning", "rejected" */
    /* API-key buckets (anthropic-ratelimit-tokens-* / -requests-*), -1 = unknown. */
    int64_t tokens_limit, tokens_remaining;
    int64_t requests_limit, requests_remaining;
    int64_t resets_at_ms; /* token reset, else request reset; 0 = unknown */
    /* Generic x-ratelimit-* family (providers). */
    int64_t generic_limit, generic_remaining, generic_reset_ms;
    int64_t total_requests; /* responses seen */
    /* Per-model weekly limits (§4.4), indexed by quota_family_t (QUOTA_FAMILY_NONE unused). */
    struct quota_scoped {
        double utilization; /* 0..1, or QUOTA_UNKNOWN when no entry */
        int64_t reset_ms;   /* 0 = unknown */
        bool active;        /* is_active from the probe (default true) */
        bool reactive;      /* set by a classified 429 (§6.3), not by a probe */
        char severity[16];
    } scoped[5];
    bool weekly_absent;       /* the probe found no weekly bucket: the plan has no weekly cap */
    int64_t last_probe_ok_ms; /* last successful usage probe (§4.3); 0 = never */
    /* Provider quota (§8.8), kept here so the state file and scoring see one record. */
    double provider_ses, provider_wk; /* 0..1 or QUOTA_UNKNOWN */
    int64_t provider_ses_reset_ms, provider_wk_reset_ms;
    char provider_source[16]; /* providerQuotaSource, "" = none */
} quota_t;

/* Model families with their own weekly limit (§4.4). */
typedef enum quota_family {
    QUOTA_FAMILY_NONE = 0,
    QUOTA_FAMILY_FABLE = 1,
    QUOTA_FAMILY_OPUS = 2,
    QUOTA_FAMILY_SONNET = 3,
    QUOTA_FAMILY_HAIKU = 4,
} quota_family_t;
#define QUOTA_FAMILIES 5

/* A header as the proxy received it. */
typedef struct quota_header {
    const char *name;
    const char *value;
} quota_header_t;

/* Events quota_expire reports (bit flags). */
enum {
    QUOTA_RESET_5H = 1,       /* "Account "X" session quota reset" */
    QUOTA_RESET_7D = 2,       /* "Account "X" weekly quota reset" */
    QUOTA_RESET_API = 4,      /* API-key buckets cleared */
    QUOTA_RESET_SCOPED = 8,   /* a per-model weekly entry reached its reset */
    QUOTA_RESET_PROVIDER = 16 /* a provider session or weekly window cleared */
};

/* Starts with everything unknown. */
void quota_init(quota_t *q);
/* Parses a reset value per §4.1: first comma item; numeric > 1e10 → ms epoch, > 1e9 → seconds
 * epoch, other numbers → delay seconds from now; else an HTTP or ISO-8601 date. Returns epoch
 * ms, or 0 if unparseable. */
int64_t quota_parse_reset(const char *value, int64_t now_ms);
/* Parses retry-after (integer seconds, or an HTTP date) clamped to [1, 86400] s; returns
 * seconds, or 0 when absent/unparseable. */
int quota_parse_retry_after(const char *value, int64_t now_ms);
/* Applies every header of §4.1 found in h[0..n) to q; a utilization without its reset
 * expires at now + 5 h / 7 d (Part A4). Counts the response. */
void quota_apply_headers(quota_t *q, const quota_header_t *h, size_t n, int64_t now_ms);
/* Clears every window whose reset has passed; returns QUOTA_RESET_* flags of what it cleared. */
int quota_expire(quota_t *q, int64_t now_ms);
/* The family of a model id or display name (lower-case substring: fable/mythos, opus, sonnet,
 * haiku), or QUOTA_FAMILY_NONE (also for NULL). */
quota_family_t quota_family(const char *model);
/* "fable", "opus", "sonnet", "haiku", or "" for none. */
const char *quota_family_name(quota_family_t f);
/* Family by its name as quota_family_name prints it; QUOTA_FAMILY_NONE if unknown. */
quota_family_t quota_family_by_name(const char *name);
/* Sets the per-model weekly entry of a family (reset 0 = unknown). */
void quota_set_scoped(quota_t *q, quota_family_t f, double utilization, int64_t reset_ms,
                      bool reactive);
/* True when the family's weekly entry is active and at or over `exhausted` (§4.4). */
bool quota_scoped_benched(const quota_t *q, quota_family_t f, double exhausted);
/* API-key used fraction 1 − remaining/limit of the token (or request) bucket, or
 * QUOTA_UNKNOWN when the bucket is unknown. */
double quota_tokens_used(const quota_t *q);
double quota_requests_used(const quota_t *q);
/* What one successful usage probe (§4.3, GET /api/oauth/usage) reported, already parsed:
 * utilizations 0..1 (percent / 100), QUOTA_UNKNOWN when the bucket is absent; resets epoch ms
 * (0 = none given). */
typedef struct quota_probe {
    double session, weekly;
    int64_t session_reset_ms, weekly_reset_ms;
    struct quota_probe_scoped {
        quota_family_t family;
        double utilization;
        int64_t reset_ms;
        bool active; /* is_active (default true) */
        char severity[16];
    } scoped[QUOTA_FAMILIES];
    size_t n_scoped;
} quota_probe_t;

/* Starts a probe result with every bucket absent. */
void quota_probe_init(quota_probe_t *p);
/* Applies a successful probe (§4.3): 5h/7d/scoped values (a missing reset expires by the
 * Part A4 default), weeklyAbsent when there was no weekly bucket, lastProbeOkAt = now. A probe
 * never lowers a still-active reactive scoped bench (a 429 knows better than a poll). */
void quota_apply_probe(quota_t *q, const quota_probe_t *p, int64_t now_ms);
/* True when the upstream says this account is spent: status rejected with a window ≥ 0.999. */
bool quota_rejected(const quota_t *q);

#endif
