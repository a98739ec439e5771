/* sched/account — the runtime state of one account (what the scheduler knows), its load
 * ring, and the tried-set of a request. Pure: no I/O, times passed in. */
#ifndef MAXPOOL_SCHED_ACCOUNT_H
#define MAXPOOL_SCHED_ACCOUNT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sched/quota.h"

typedef enum account_type {
    ACCOUNT_APIKEY = 0,
    ACCOUNT_OAUTH = 1,
    ACCOUNT_PROVIDER = 2,
} account_type_t;

/* Runtime status (§5.3): throttled ends at rate_limited_until_ms; exhausted and error need an
 * outside change (a reset, new credentials). */
typedef enum account_status {
    ACCOUNT_ACTIVE = 0,
    ACCOUNT_THROTTLED = 1,
    ACCOUNT_EXHAUSTED = 2,
    ACCOUNT_ERROR = 3,
} account_status_t;

/* One minute of load (§5.5: load events kept 1 hour, feeding the 15 m / 1 h summaries). */
typedef struct account_load {
    int64_t minute; /* now_ms / 60000 of this slot; stale slots are ignored */
    uint32_t requests, failed;
    uint32_t weight; /* completed request weight */
    uint64_t dur_ms;
} account_load_t;

#define ACCOUNT_LOAD_SLOTS 60

typedef struct account {
    char *name;
    char *uuid; /* accountUuid, or NULL */
    account_type_t type;
    char *credential; /* API key or OAuth access token; never logged or shown */
    char *upstream;   /* per-account upstream base URL, or NULL for the default */
    bool enabled;
    bool strip_beta; /* drop anthropic-beta on the way out (providers) */
    bool bearer;     /* send the credential as Authorization: Bearer */
    quota_t quota;
    /* Load and outcome counters (§3.8). */
    int in_flight;
    uint64_t completed, failed;
    int consecutive_failures;
    int last_status;
    int64_t last_used_ms;
    int64_t last_response_ms;
    uint64_t input_tokens, output_tokens;
    int64_t cooldown_until_ms; /* network/5xx cooldown (§5.11) */
    /* Scheduler state (sched/sched.h); epoch ms, 0 = none. */
    account_status_t status;
    int64_t rate_limited_until_ms; /* account 429: status throttled until then */
    int64_t provisional_until_ms;  /* server-side 429/529: short neutral pause */
    int64_t recovered_at_ms;       /* when the last pause ended (recovery ramp) */
    int64_t last_accepted_ms;      /* last 2xx/3xx headers */
    int64_t added_at_ms;           /* runtime-added accounts warm up (§5.6) */
    bool runtime_added;
    double cap_utilization; /* 0 < cap < 1, else 0 = none (§5.10) */
    int priority;           /* base priority (§5.7): Claude 0 */
    char provider[8];       /* "zai" / "kimi" for providers, else "" */
    int active_weight;      /* sum of the weights of in-flight requests */
    char last_error[96];
    int64_t last_error_ms;
    account_load_t load[ACCOUNT_LOAD_SLOTS];
    /* De-duplication of log lines (bit per reason). */
    unsigned near_logged;
    unsigned unlock_logged;
} account_t;

/* Fills a with a fresh enabled account (strings copied). */
void account_init(account_t *a, const char *name, account_type_t type, const char *credential);
/* Frees the strings of a. */
void account_free(account_t *a);
/* "apikey", "oauth" or "provider". */
const char *account_type_name(account_type_t t);

/* "active", "throttled", "exhausted" or "error". */
const char *account_status_name(account_status_t s);
/* Records one finished request in the per-minute load ring. */
void account_load_add(account_t *a, int64_t now_ms, int weight, bool ok, int64_t dur_ms);
/* Sums the load of the last window_ms (at most one hour) into the out parameters (any may
 * be NULL). */
void account_load_sum(const account_t *a, int64_t now_ms, int64_t window_ms, uint32_t *requests,
                      uint32_t *failed, uint64_t *weight, uint64_t *dur_ms);

/* A set of account indexes already tried by one request (h2o's tried[] mask). */
typedef struct account_mask {
    uint64_t bits[4]; /* up to 256 accounts */
} account_mask_t;

static inline bool account_mask_has(const account_mask_t *m, size_t i)
{
    return i < 256 && (m->bits[i / 64] >> (i % 64)) & 1;
}
static inline void account_mask_add(account_mask_t *m, size_t i)
{
    if (i < 256) m->bits[i / 64] |= 1ULL << (i % 64);
}

#endif
