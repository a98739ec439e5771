/* sched/account — the runtime state of one account (what the scheduler knows), and the
 * simple selection used until the rate-aware scheduler lands: rotation over enabled
 * accounts, skipping those already tried for this request. Pure: no I/O, times passed in. */
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
} account_t;

/* Fills a with a fresh enabled account (strings copied). */
void account_init(account_t *a, const char *name, account_type_t type, const char *credential);
/* Frees the strings of a. */
void account_free(account_t *a);
/* "apikey", "oauth" or "provider". */
const char *account_type_name(account_type_t t);

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

/* Picks the next enabled account after *cursor that is not in tried, not cooling down and
 * not rejected by its quota at now_ms; advances *cursor. Returns its index, or -1. */
int account_select_rotate(account_t *accts, size_t n, size_t *cursor, const account_mask_t *tried,
                          int64_t now_ms);

#endif
