#include "sched/account.h"
#include "core/xalloc.h"

#include <stdlib.h>
#include <string.h>

void account_init(account_t *a, const char *name, account_type_t type, const char *credential)
{
    memset(a, 0, sizeof *a);
    a->name = xstrdup(name ? name : "");
    a->type = type;
    a->credential = xstrdup(credential ? credential : "");
    a->enabled = true;
    a->bearer = type != ACCOUNT_APIKEY;
    quota_init(&a->quota);
}

void account_free(account_t *a)
{
    free(a->name);
    free(a->uuid);
    if (a->credential) {
        /* Scrub the secret before the allocator hands the memory to someone else. */
        volatile char *p = a->credential;
        while (*p)
            *p++ = 0;
    }
    free(a->credential);
    free(a->upstream);
    memset(a, 0, sizeof *a);
}

const char *account_type_name(account_type_t t)
{
    switch (t) {
    case ACCOUNT_APIKEY:
        return "apikey";
    case ACCOUNT_OAUTH:
        return "oauth";
    case ACCOUNT_PROVIDER:
        return "provider";
    }
    return "unknown";
}

const char *account_status_name(account_status_t s)
{
    switch (s) {
    case ACCOUNT_ACTIVE:
        return "active";
    case ACCOUNT_THROTTLED:
        return "throttled";
    case ACCOUNT_EXHAUSTED:
        return "exhausted";
    case ACCOUNT_ERROR:
        return "error";
    }
    return "unknown";
}

void account_load_add(account_t *a, int64_t now_ms, int weight, bool ok, int64_t dur_ms)
{
    int64_t minute = now_ms / 60000;
    account_load_t *l = &a->load[(uint64_t)minute % ACCOUNT_LOAD_SLOTS];
    if (l->minute != minute) {
        memset(l, 0, sizeof *l);
        l->minute = minute;
    }
    l->requests++;
    if (!ok) l->failed++;
    if (ok) l->weight += (uint32_t)(weight > 0 ? weight : 1);
    l->dur_ms += (uint64_t)(dur_ms > 0 ? dur_ms : 0);
}

void account_load_sum(const account_t *a, int64_t now_ms, int64_t window_ms, uint32_t *requests,
                      uint32_t *failed, uint64_t *weight, uint64_t *dur_ms)
{
    uint32_t r = 0, f = 0;
    uint64_t w = 0, d = 0;
    int64_t minute = now_ms / 60000;
    int64_t span = (window_ms + 59999) / 60000; /* minutes, the current one included */
    if (span > ACCOUNT_LOAD_SLOTS) span = ACCOUNT_LOAD_SLOTS;
    for (int i = 0; i < ACCOUNT_LOAD_SLOTS; i++) {
        const account_load_t *l = &a->load[i];
        if (l->minute <= minute - span || l->minute > minute) continue;
        r += l->requests;
        f += l->failed;
        w += l->weight;
        d += l->dur_ms;
    }
    if (requests) *requests = r;
    if (failed) *failed = f;
    if (weight) *weight = w;
    if (dur_ms) *dur_ms = d;
}
