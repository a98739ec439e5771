/* sched — the rate-aware scheduler (SPEC §5, §6.1–§6.4, Part A3/A4): which account serves a
 * request, what a response or a failure means for that account, and when a request that
 * found no route could be retried.
 *
 * PURE: no sockets, no libuv, no curl, no clock reads, no printing. Every function that
 * depends on time takes `now` (epoch ms). Log-worthy transitions are queued as events
 * (sched_event_pop) for the caller to print, in the SPEC's wording.
 *
 * Life of one request (the proxy's side):
 *   sched_request_init(&req) and fill model/stream/weight/session/profile/body_bytes;
 *   loop: sched_select(s, &req, now, &pick)
 *           no account → pick.retry_ms / pick.retry_cause (queue or §6.10 error);
 *           account pick.idx → send upstream;
 *         headers arrive → sched_on_response(s, idx, &req, &resp, now, &out):
 *           SCHED_RELAY / SCHED_PASS → relay, then sched_on_complete (or sched_on_failure
 *             with SCHED_FAIL_MIDSTREAM if the stream breaks);
 *           SCHED_RETRY → loop again (the account is in req.tried, the lease is released);
 *           SCHED_REFRESH → refresh the token, then loop (req.pin keeps the same account);
 *           SCHED_GIVE_UP → queue with out.cause if possible, else send out's error;
 *         network failure before headers → sched_on_failure(...) with the same outcomes;
 *         client gone / refresh failed → sched_release(s, idx, &req, now) (neutral).
 * Every account returned by sched_select is leased (inFlight, activeWeight) until exactly one
 * of: sched_on_response returning RETRY/REFRESH/GIVE_UP, sched_on_failure, sched_on_complete,
 * sched_release. */
#ifndef MAXPOOL_SCHED_SCHED_H
#define MAXPOOL_SCHED_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sched/account.h"
#include "sched/quota.h"

/* ------------------------------------------------------------ options ---- */

typedef enum sched_routing_mode {
    SCHED_ROUTE_STICKY = 0, /* default: sessions keep their account */
    SCHED_ROUTE_BALANCE,
    SCHED_ROUTE_PREFER_CLAUDE,
    SCHED_ROUTE_PREFER_ZAI,
    SCHED_ROUTE_PREFER_KIMI,
} sched_routing_mode_t;

typedef enum sched_fallback_policy {
    SCHED_FALLBACK_NEVER = 0,
    SCHED_FALLBACK_WHEN_EXHAUSTED,
    SCHED_FALLBACK_ALWAYS,
} sched_fallback_policy_t;

/* Every knob of §5.9 plus the few top-level keys routing reads. Field names follow the
 * config keys; sched_options_default gives the §5.9 defaults. */
typedef struct sched_options {
    double switch_threshold;  /* switchThreshold (0.90) */
    bool preferred_mode;      /* routing.mode == "preferred" */
    char preferred[128];      /* routing.preferredAccount */
    int64_t quota_probe_ms;   /* quotaProbeSeconds × 1000 (60 s); 0 = probes off */
    int max_attempts;         /* retry.maxAttemptsPerRequest (0 = number of accounts) */
    int64_t max_retry_buffer; /* retry.maxRetryBufferBytes */
    sched_routing_mode_t routing_mode;
    sched_fallback_policy_t cross_provider_fallback;
    bool provider_cross_fallback;
    int safety_max_active_per_account, safety_max_global_active;
    int64_t cooldown_ms, max_cooldown_ms, network_cooldown_ms;
    double weekly_soft, weekly_reserve, weekly_critical, weekly_exhausted;
    double weekly_burn_debt_weight;
    double critical_pre_reset_hours;
    int critical_pressure_unlock_routes; /* -1 disables */
    double critical_pressure_cost, critical_drain_floor_cost;
    bool critical_peak_unlock;
    double concurrency_weight, per_account_concurrency_target, cap_penalty_weight;
    double pace_cost_weight, utilization_weight;
    bool weekly_aware_scoring;
    double reserve_floor_cost, reserve_band_weight, reserve_scarcity_weight;
    double reserve_concurrency_target, spread_share_weight;
    double fast_refill_discount, fast_refill_fade_util;
    double recovery_ramp_weight;
    int64_t recovery_ramp_ms, spread_window_ms;
    bool cross_account_thinking_migration;
} sched_options_t;

/* Fills o with the §5.9 / §2.3 defaults. */
void sched_options_default(sched_options_t *o);
/* Parses "sticky" / "balance" / …; returns -1 if unknown. */
int sched_routing_mode_parse(const char *s);
/* Parses "never" / "when-exhausted" / "always"; invalid → when-exhausted (§5.2). */
sched_fallback_policy_t sched_fallback_parse(const char *s);

/* ----------------------------------------------------------- requests ---- */

#define SCHED_FP_MAX 240

/* Server-side 429/529 failures of one request grouped by fingerprint (§6.4). */
typedef struct sched_incident {
    char fingerprint[SCHED_FP_MAX + 1]; /* "" = none */
    account_mask_t accounts;
    int count;
    int64_t first_ms;
    int retry_after_s; /* max seen */
    int status;        /* 429 or 529 */
} sched_incident_t;

/* What the proxy knows about one request (§3.6); sched updates the lower part. The strings
 * are borrowed: they must outlive the request (sched copies the session key only into its
 * binding). */
typedef struct sched_request {
    /* Filled by the caller. */
    const char *model;   /* JSON model, or NULL */
    const char *session; /* x-maxpool-session (trimmed), or NULL/"" */
    const char *profile; /* x-maxpool-profile lower-cased; NULL = "claude" */
    bool stream;
    int weight;           /* sched_weight(); ≥ 1 */
    size_t body_bytes;    /* for the retry buffer limit (§6.1) */
    bool body_json;       /* the body parsed as JSON (migration-safe test, §5.6) */
    bool signed_thinking; /* requiresAnthropicThinkingIntegrity (§3.6) */
    bool queue_admitted;  /* admitted from the queue (holds a ticket, §5.2 rule 7) */
    bool committed;       /* bytes (not our heartbeat) already written to the client */
    bool is_count_tokens; /* /v1/messages/count_tokens */
    /* Updated by sched. */
    account_mask_t tried; /* accounts this request already used (failover skips them) */
    int attempt;          /* failovers so far (§6.1) */
    int pin;              /* retry pin (§5.5 step 1, A5 refresh retry); -1 = none */
    bool auth_retried;    /* A5: the one refresh-and-retry is spent */
    bool probe;           /* this attempt carries the throttle's recovery probe (§6.4) */
    int64_t started_ms;   /* when the current attempt was acquired */
    sched_incident_t incident;
} sched_request_t;

/* Resets r to an empty request (weight 1, profile claude, no pin). */
void sched_request_init(sched_request_t *r);
/* Prepares a request resumed from the queue for a fresh attempt loop (§6.1): attempt 0, no
 * exclusions, no incident, no pin; the description is kept. */
void sched_request_restart(sched_request_t *r);
/* Request weight of §3.6: max(1, ceil(body/64000)) + (max_tokens > 16000) + thinking/effort. */
int sched_weight(size_t body_bytes, int64_t max_tokens, bool thinking_or_effort);

/* -------------------------------------------------------------- state ---- */

/* Why a request could not be served now (§6.9 oracle causes). */
typedef enum sched_cause {
    SCHED_CAUSE_AVAILABLE = 0, /* a route is available now */
    SCHED_CAUSE_CRITICAL_LAST_RESORT,
    SCHED_CAUSE_UPSTREAM_THROTTLE,
    SCHED_CAUSE_UPSTREAM_PROBE,
    SCHED_CAUSE_RATE_LIMITED,
    SCHED_CAUSE_COOLDOWN,
    SCHED_CAUSE_UPSTREAM_FAILURE,
    SCHED_CAUSE_SESSION_LIMIT,
    SCHED_CAUSE_TOKEN_LIMIT,
    SCHED_CAUSE_REQUEST_LIMIT,
    SCHED_CAUSE_PROVIDER_LIMIT,
    SCHED_CAUSE_WEEKLY_EXHAUSTED,
    SCHED_CAUSE_WEEKLY_CRITICAL,
    SCHED_CAUSE_CONCURRENCY_CAP,
    SCHED_CAUSE_QUEUED_BEHIND_FAIRNESS,
    SCHED_CAUSE_WEEKLY_RESET_UNKNOWN, /* ∞ */
    SCHED_CAUSE_NO_ELIGIBLE_ROUTE,    /* ∞ */
    SCHED_CAUSE_UNAVAILABLE,          /* ∞ */
} sched_cause_t;

#define SCHED_NEVER INT64_MAX /* an infinite retry time */

/* The oracle's names: "available", "rate_limited", … (as in §6.9). */
const char *sched_cause_name(sched_cause_t c);

/* Weekly tiers (§5.4), in order of health. */
typedef enum sched_tier {
    SCHED_TIER_NORMAL = 0,
    SCHED_TIER_UNKNOWN,
    SCHED_TIER_SOFT,
    SCHED_TIER_RESERVE,
    SCHED_TIER_CRITICAL,
    SCHED_TIER_EXHAUSTED,
    SCHED_TIER_CAPPED,
} sched_tier_t;

/* "normal", "unknown", "soft", "reserve", "critical", "exhausted", "capped". */
const char *sched_tier_name(sched_tier_t t);

/* Session binding (§5.6), by account name so renames and removals stay safe. */
typedef struct sched_binding {
    char *key;
    char *home;
    char *current;
    int home_priority;
    int64_t last_ms;
    struct sched_binding *next;
} sched_binding_t;

#define SCHED_BIND_BUCKETS 256

/* The shared upstream throttle / circuit breaker (§6.4). */
typedef struct sched_throttle {
    int64_t until_ms; /* 0 = closed */
    char reason[SCHED_FP_MAX + 1];
    int status; /* 429 or 529 that opened it */
    int failed_probes;
    bool probe_in_flight;
    int probe_idx;
    int64_t ramp_until_ms; /* 5 s admission ramp after it cleared */
    int count;             /* times opened */
    int64_t last_ms;
} sched_throttle_t;

/* A log-worthy transition (sched never prints). */
typedef enum sched_event_kind {
    SCHED_EV_SWITCHED,        /* Switched to account "X" */
    SCHED_EV_RATE_LIMITED,    /* Account "X" rate limited for Ns */
    SCHED_EV_RATE_EXPIRED,    /* Account "X" rate limit expired, marking active */
    SCHED_EV_COOLDOWN,        /* Account "X" cooling down for Ns after <reason> */
    SCHED_EV_SESSION_RESET,   /* Account "X" session quota reset */
    SCHED_EV_WEEKLY_RESET,    /* Account "X" weekly quota reset */
    SCHED_EV_NEAR_QUOTA,      /* Account "X" at P% usage — limiting new placement (…) */
    SCHED_EV_WEEKLY_LEARNED,  /* Learned weekly quota for "X", re-evaluating selection */
    SCHED_EV_SCOPED_BENCH,    /* Account "X" <family> weekly limit hit — scoped bench Ns … */
    SCHED_EV_CRITICAL_UNLOCK, /* Critical unlock "<reason>": routing to "X" (reset in Nm) */
    SCHED_EV_FORCED_RESET,    /* Account "X" reset, switching to it */
    SCHED_EV_THROTTLE_OPEN,   /* Anthropic upstream temporarily limiting requests … */
    SCHED_EV_THROTTLE_PROBE,  /* … throttle window expired; sending one recovery probe */
    SCHED_EV_THROTTLE_CLEAR,  /* … throttle cleared (Anthropic accepted recovery probe) */
    SCHED_EV_THROTTLE_REOPEN, /* recovery probe failed; … */
    SCHED_EV_PROVISIONAL,     /* Account "X" server-side NNN; pausing it for Ns */
} sched_event_kind_t;

typedef struct sched_event {
    sched_event_kind_t kind;
    int account; /* index, or -1 */
    char msg[256];
} sched_event_t;

#define SCHED_EVENTS 64

/* A recent ambiguous 429 (§6.3 step 4). */
typedef struct sched_seen429 {
    uint64_t fp_hash;
    int idx;
    int64_t at_ms;
} sched_seen429_t;

#define SCHED_SEEN429 32

typedef struct sched {
    sched_options_t opt;
    account_t *accts; /* owned; index = account id */
    size_t n, cap;
    size_t next_index; /* rotating ladder start (§5.5 step 4) */
    int current_index; /* last chosen, -1 = none */
    int global_in_flight;
    bool admission_paused;     /* restart/reload in progress (§5.2 rule 1) */
    int queue_depth;           /* tickets waiting (§5.2 rule 7), set by the queue */
    int64_t last_claude_ok_ms; /* a Claude account accepted a request (§6.4 promotion) */
    sched_throttle_t throttle;
    sched_binding_t *bind[SCHED_BIND_BUCKETS];
    size_t n_bindings;
    sched_seen429_t seen[SCHED_SEEN429];
    size_t seen_next;
    sched_event_t ev[SCHED_EVENTS];
    size_t ev_head, ev_len;
} sched_t;

/* Sets up an empty scheduler with a copy of opt. */
void sched_init(sched_t *s, const sched_options_t *opt);
/* Frees the accounts (account_free) and bindings. */
void sched_free(sched_t *s);
/* Replaces the options (hot reload); bindings and account state are kept. */
void sched_set_options(sched_t *s, const sched_options_t *opt);
/* Takes ownership of *a (the struct is copied, a is zeroed) and returns its index. A
 * runtime-added account (not at boot) warms up (§5.6) from now. */
int sched_add_account(sched_t *s, account_t *a, bool runtime, int64_t now);
/* Index of the account with this name, or -1. */
int sched_find(const sched_t *s, const char *name);

/* Pops the oldest queued event into ev; false when there is none. The ring keeps the newest
 * SCHED_EVENTS events. */
bool sched_event_pop(sched_t *s, sched_event_t *ev);

/* ---------------------------------------------------------- selection ---- */

typedef struct sched_pick {
    int idx;             /* the leased account, or -1 = no route */
    sched_cause_t cause; /* no route: the oracle's cause */
    int64_t retry_ms;    /* no route: ms until the soonest retry (SCHED_NEVER = ∞) */
    const char *via;     /* "pin", "preferred", "sticky", "warmup", "ladder", "reset" */
    bool critical;       /* chosen as a weekly-critical last resort */
} sched_pick_t;

/* Chooses an account for req (§5.5) at now, skipping req->tried, and leases it
 * (inFlight++, activeWeight += weight, session binding, throttle probe). When nothing can
 * serve it, out->idx = -1 with the retry oracle's answer (§6.9). Expires passed windows as a
 * side effect (events). Returns out->idx. */
int sched_select(sched_t *s, sched_request_t *req, int64_t now, sched_pick_t *out);

/* The §6.9 retry oracle for req (ignores req->tried): 0 with SCHED_CAUSE_AVAILABLE when a
 * route is free now, else ms until the soonest known recovery and its cause (SCHED_NEVER
 * for ∞). */
int64_t sched_next_retry(sched_t *s, const sched_request_t *req, int64_t now, sched_cause_t *cause);

/* --------------------------------------------------------- outcomes ---- */

typedef enum sched_action {
    SCHED_RELAY = 0, /* relay the response; end with sched_on_complete */
    SCHED_PASS,      /* relay the upstream status/body unchanged (counted as a failure) */
    SCHED_RETRY,     /* fail over now: call sched_select again (lease released) */
    SCHED_REFRESH,   /* A5: force a token refresh, then sched_select (pinned to the account) */
    SCHED_GIVE_UP,   /* no failover: queue with `cause` if possible, else send the error */
} sched_action_t;

/* Queue causes of §6.9. */
typedef enum sched_queue_cause {
    SCHED_QUEUE_NONE = 0,
    SCHED_QUEUE_QUOTA,
    SCHED_QUEUE_CAPACITY,
    SCHED_QUEUE_UPSTREAM_THROTTLE,
    SCHED_QUEUE_NETWORK,
    SCHED_QUEUE_PROXY, /* never queued */
} sched_queue_cause_t;

/* "quota", "capacity", "upstream_throttle", "network", "proxy", or "". */
const char *sched_queue_cause_name(sched_queue_cause_t c);

typedef struct sched_outcome {
    sched_action_t action;
    sched_queue_cause_t cause; /* GIVE_UP: the queue cause */
    /* GIVE_UP when the queue cannot hold it: status + §6.10 error, or the upstream's body
     * verbatim when `verbatim` is true. */
    int status;
    bool verbatim;
    const char *error_type; /* static string, or NULL when verbatim */
    char message[320];
    int retry_after_s; /* for the retry-after header; 0 = none */
} sched_outcome_t;

/* Response head facts for sched_on_response. */
typedef struct sched_response {
    int status;
    const quota_header_t *headers;
    size_t n_headers;
    const char *error_type;    /* parsed JSON error.type (or top-level), or NULL */
    const char *error_message; /* parsed error.message, or NULL */
} sched_response_t;

/* Applies a response head from account idx (§4.1 headers on any status, §6.2 table, §6.3,
 * §6.4) and says what to do next; see sched_action_t for who owns the lease afterwards. */
sched_action_t sched_on_response(sched_t *s, int idx, sched_request_t *req,
                                 const sched_response_t *resp, int64_t now, sched_outcome_t *out);

/* Failure kinds without a usable response (§6.2, §6.5–6.7). */
typedef enum sched_fail_kind {
    SCHED_FAIL_NETWORK = 0, /* refused, reset, DNS, TTFB/idle/body timeout before commit */
    SCHED_FAIL_MIDSTREAM,   /* the stream broke after the client got bytes (§6.5) */
    SCHED_FAIL_PROXY,       /* another exception before the response */
    SCHED_FAIL_REFRESH,     /* the OAuth refresh failed (§6.6): neutral, excluded */
    SCHED_FAIL_TRANSIENT,   /* the OAuth refresh answered 429/5xx: HTTP-class backoff (§5.11) */
} sched_fail_kind_t;

/* Records a failure of account idx for req and releases its lease; returns the action
 * (RETRY while a failover is possible, else GIVE_UP with the §6.10 error in out). `code`
 * names the error for messages ("ECONNREFUSED"), may be NULL. */
sched_action_t sched_on_failure(sched_t *s, int idx, sched_request_t *req, sched_fail_kind_t kind,
                                const char *code, int64_t now, sched_outcome_t *out);

/* Usage of a completed response. */
typedef struct sched_usage {
    int status; /* the status relayed (≥ 400 for a SCHED_PASS response) */
    uint64_t input_tokens, output_tokens;
} sched_usage_t;

/* Ends a relayed response: releases the lease, counts success (status < 400) or failure,
 * adds the tokens, records the load event; closes the throttle if this was the probe. */
void sched_on_complete(sched_t *s, int idx, sched_request_t *req, const sched_usage_t *u,
                       int64_t now);
/* Ends a lease without judging the account (client left, request abandoned); a probe is
 * relinquished without penalty. */
void sched_release(sched_t *s, int idx, sched_request_t *req, int64_t now);

/* Applies a successful usage probe of account idx (quota_apply_probe) with its events
 * (`Learned weekly quota for "X", re-evaluating selection`, near-quota lines). */
void sched_on_probe(sched_t *s, int idx, const quota_probe_t *p, int64_t now);

/* ---------------------------------------------------------- formulas ---- */
/* Exposed for tests, the status view and the simulator. */

/* Window scarcity S(u, reset, L) (§5.7): usage ahead of an even burn. */
double sched_scarcity(double u, int64_t reset_ms, int64_t len_ms, int64_t now);
/* Raw weekly tier (§5.4, Part A3: a 5h-only rejection is not weekly exhaustion). */
sched_tier_t sched_weekly_raw(const sched_t *s, const account_t *a);
/* Burn-debt effective usage (§5.4); *pace gets the tier of the effective usage. */
double sched_weekly_effective(const sched_t *s, const account_t *a, int64_t now,
                              sched_tier_t *pace);
/* Display tier (§5.4): raw for unknown/exhausted/capped, else tiers of max(used, effective). */
sched_tier_t sched_weekly_display(const sched_t *s, const account_t *a, int64_t now);
/* True when the 5h/session side benches a (§5.3, §5.10, Part A3). */
bool sched_session_benched(const sched_t *s, const account_t *a);
/* Availability predicate (§5.3) for a request's model family. Has side effects of expiry
 * (throttled → active, recovered_at) like the reference. */
bool sched_available(sched_t *s, int idx, quota_family_t fam, bool allow_reserve,
                     bool allow_critical, int64_t now);
/* Score (§5.7) of account idx for a request of weight w; lower is better. `unlock` is the
 * critical-unlock reason (0 none, 1 prereset, 2 pressure, 3 peak). */
double sched_score(const sched_t *s, int idx, int w, quota_family_t fam, int unlock, int64_t now);
/* Effective priority (§5.7). */
int sched_effective_priority(const sched_t *s, const account_t *a);
/* Situational critical unlock reason for account idx (§5.8): 0 none, 1 prereset,
 * 2 pressure, 3 peak. */
int sched_critical_unlock(sched_t *s, int idx, const sched_request_t *req, int64_t now);
/* §5.11 exponential cooldown for the n-th consecutive failure (n ≥ 1). */
int64_t sched_backoff_ms(const sched_options_t *o, int failures);

/* 429 scopes (§6.3). */
typedef enum sched_scope {
    SCHED_SCOPE_ACCOUNT = 0,
    SCHED_SCOPE_MODEL,    /* account scope, but only for the request's model family */
    SCHED_SCOPE_UPSTREAM, /* server-side: shared */
    SCHED_SCOPE_UNKNOWN,  /* ambiguous and seen on ≥ 2 accounts within 30 s: shared throttle
                           * (an ambiguous 429 seen once is classified ACCOUNT or MODEL) */
} sched_scope_t;

/* Classifies a 429 from account idx (§6.3) without changing state; fp (≥ SCHED_FP_MAX+1
 * bytes) receives the fingerprint, *retry_after_s the retry-after (default 60). */
sched_scope_t sched_classify_429(const sched_t *s, int idx, const sched_request_t *req,
                                 const sched_response_t *resp, int64_t now, char *fp,
                                 int *retry_after_s);
/* The §6.3 fingerprint of an error type and message into fp (SCHED_FP_MAX+1 bytes). */
void sched_fingerprint(const char *type, const char *message, char *fp);
/* True while the shared throttle keeps Claude accounts out for req (§5.2 rule 8, §6.4). */
bool sched_throttle_blocking(const sched_t *s, const sched_request_t *req, int64_t now);
/* §6.4 promotion test for a request whose failover options are spent: opens the shared
 * throttle and returns true when the request's incident qualifies. */
bool sched_throttle_consider(sched_t *s, sched_request_t *req, int64_t now);

/* The §6.10 "no route" message for a request that found no account (N = enabled Claude
 * accounts; the wait is the oracle's) into buf. */
void sched_no_route_message(const sched_t *s, int64_t retry_ms, sched_cause_t cause, char *buf,
                            size_t len);
/* A duration as §6.10 prints it: "Ns", "Nm", "Nh" or "Nd" (rounded) into buf. */
void sched_fmt_duration(int64_t ms, char *buf, size_t len);

/* Clears windows whose reset passed on every account (events) and drops session bindings
 * idle for more than a day; call on a timer (the status view does it too). */
void sched_tick(sched_t *s, int64_t now);

#endif
