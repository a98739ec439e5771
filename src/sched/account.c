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

int account_select_rotate(account_t *accts, size_t n, size_t *cursor, const account_mask_t *tried,
                          int64_t now_ms)
{
    for (size_t k = 0; k < n; k++) {
        size_t i = (*cursor + k) % n;
        account_t *a = &accts[i];
        if (!a->enabled || account_mask_has(tried, i)) continue;
        if (a->cooldown_until_ms > now_ms) continue;
        quota_expire(&a->quota, now_ms);
        if (quota_rejected(&a->quota)) continue;
        *cursor = (i + 1) % n;
        return (int)i;
    }
    return -1;
}
