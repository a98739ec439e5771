/* maxpool accounts [-v|--verbose] — list the configured accounts (§1), offline: name, type,
 * a masked key or the token expiry. Profiles and token refresh come with the OAuth work. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "store/config.h"

static int dedup_mutate(json_t *cfg, void *ud, char **err)
{
    (void)err;
    int *removed = ud;
    *removed = config_account_dedup_uuid(cfg);
    return *removed > 0 ? 0 : CONFIG_UNCHANGED;
}

/* First 15 characters of a key, never more than half of it, so a short key is not shown
 * whole. */
static void print_masked(const char *key)
{
    size_t n = strlen(key), show = n / 2 < 15 ? n / 2 : 15;
    printf("%.*s...", (int)show, key);
}

static void print_expiry(const json_t *acct)
{
    int64_t exp = config_account_expires_ms(acct);
    if (!exp) return;
    int64_t remaining = exp - clock_now_ms();
    if (remaining <= 0) {
        printf("       Token: expired\n");
        return;
    }
    long long mins = (long long)(remaining / 60000), hrs = mins / 60;
    if (hrs > 0)
        printf("       Token: expires in %lldh %lldm\n", hrs, mins % 60);
    else
        printf("       Token: expires in %lldm\n", mins);
}

int cmd_accounts(int argc, char **argv)
{
    bool verbose = cli_has_flag(argc, argv, "-v") || cli_has_flag(argc, argv, "--verbose");
    /* Test-only (§1.1 MAXPOOL_TEST_*): a fixed "now" so expiry output is reproducible. */
    const char *test_now = getenv("MAXPOOL_TEST_NOW_MS");
    if (test_now && *test_now) clock_set_virtual((int64_t)strtoll(test_now, NULL, 10));
    char *path;
    json_t *cfg = cli_config_open(&path);
    if (!cfg) return 1;
    json_t *accounts = json_object_get(cfg, "accounts");
    if (json_array_size(accounts) == 0) {
        printf("No accounts configured.\n");
        printf("Add one with: maxpool login (browser) or maxpool login --api\n");
        json_decref(cfg);
        free(path);
        return 0;
    }
    /* §2.7: one entry per account UUID, the last one wins (offline: stored UUIDs only). */
    int removed = 0;
    json_t *fresh = cfg;
    json_t *probe = json_deep_copy(cfg);
    bool dups = config_account_dedup_uuid(probe) > 0;
    json_decref(probe);
    if (dups) {
        /* Only then take the lock (listing must work on a read-only file), and dedup what
         * is on disk now: another writer may have changed the list since it was read. */
        char *err = NULL;
        json_decref(cfg);
        if (config_update(path, dedup_mutate, &removed, &fresh, NULL, &err) < 0) {
            fprintf(stderr, "%s\n", err);
            free(err);
            free(path);
            return 1;
        }
    }
    if (removed > 0) printf("Removed %d duplicate account(s)\n\n", removed);
    accounts = json_object_get(fresh, "accounts");
    size_t i;
    json_t *a;
    json_array_foreach(accounts, i, a)
    {
        const char *type = json_string_value(json_object_get(a, "type"));
        bool disabled = json_is_false(json_object_get(a, "enabled"));
        printf("  [%zu] %s (", i + 1, config_account_name(a));
        if (type && strcmp(type, "apikey") == 0) {
            const char *key = json_string_value(json_object_get(a, "apiKey"));
            printf("apikey%s)  ", disabled ? ", disabled" : "");
            print_masked(key ? key : "");
            printf("\n");
            continue;
        }
        if (type && strcmp(type, "provider") == 0) {
            const char *prov = json_string_value(json_object_get(a, "provider"));
            printf("provider%s%s", prov ? " " : "", prov ? prov : "");
        } else {
            const char *src = json_string_value(json_object_get(a, "source"));
            printf("oauth%s%s", src ? ", " : "", src ? src : "");
        }
        printf("%s)\n", disabled ? ", disabled" : "");
        if (verbose) print_expiry(a);
    }
    json_decref(fresh);
    free(path);
    return 0;
}
