/* The options table: fresh defaults, validation messages, typed getters, table sanity. */
#include <criterion/criterion.h>
#include <math.h>
#include <signal.h>

#include "core/fileio.h"
#include "store/config.h"
#include "store/options.h"
#include "testutil.h"

static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);
    cr_assert_not_null(v, "bad test JSON: %s", e.text);
    return v;
}

/* Validates text and returns the problem messages ("" when none). */
static char *problems_of(const char *text, int *count)
{
    json_t *cfg = parse(text);
    char *err = NULL;
    *count = options_validate(cfg, &err);
    json_decref(cfg);
    return err ? err : strdup("");
}

static void expect_problem(const char *text, const char *message)
{
    int n;
    char *err = problems_of(text, &n);
    cr_assert_eq(n, 1, "%s: expected 1 problem, got %d: %s", text, n, err);
    cr_assert_str_eq(err, message);
    free(err);
}

static void expect_valid(const char *text)
{
    int n;
    char *err = problems_of(text, &n);
    cr_assert_eq(n, 0, "%s: unexpected problems: %s", text, err);
    free(err);
}

/* ------------------------------------------------------------- defaults ---- */

Test(options, fresh_config_matches_maxpool_1_20_4)
{
    /* The fixture is createDefaultConfig() of the published 1.20.4 package, apiKey replaced. */
    char *want = NULL;
    cr_assert_eq(fileio_read("tests/fixtures/maxpool-1.20.4-fresh.json", &want, NULL, 0), 0);
    json_t *cfg = options_default_config();
    json_object_set_new(json_object_get(cfg, "proxy"), "apiKey", json_string("mp-REPLACED"));
    char *got = config_dump(cfg);
    cr_assert_str_eq(got, want);
    free(got);
    free(want);
    json_decref(cfg);
}

Test(options, fresh_api_key_is_random_base64url)
{
    json_t *a = options_default_config(), *b = options_default_config();
    const char *ka = json_string_value(options_lookup(a, "proxy.apiKey"));
    const char *kb = json_string_value(options_lookup(b, "proxy.apiKey"));
    cr_assert_not_null(ka);
    cr_assert_eq(strlen(ka), 35u, "mp- plus 32 characters");
    cr_assert_eq(strncmp(ka, "mp-", 3), 0);
    for (const char *p = ka + 3; *p; p++)
        cr_assert(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *p),
                  "not base64url: %c", *p);
    cr_assert_str_neq(ka, kb);
    json_decref(a);
    json_decref(b);
}

Test(options, fresh_config_is_valid_and_lacks_code_only_keys)
{
    json_t *cfg = options_default_config();
    cr_assert_eq(options_validate(cfg, NULL), 0);
    cr_assert_null(options_lookup(cfg, "queue.networkMaxWaitMs"));
    cr_assert_null(options_lookup(cfg, "scheduler.weeklyBurnDebtWeight"));
    cr_assert_null(options_lookup(cfg, "autoApply"));
    cr_assert_null(options_lookup(cfg, "_generation"));
    json_decref(cfg);
}

Test(options, table_is_consistent)
{
    for (int i = 0; i < options_count; i++) {
        const options_entry_t *e = &options_table[i];
        cr_assert_not_null(e->help, "%s has no help", e->path);
        cr_assert_eq(options_find(e->path), e, "%s is listed twice", e->path);
        /* A parent is listed before its children (the fresh config relies on it). */
        const char *dot = strrchr(e->path, '.');
        if (dot) {
            char parent[128];
            snprintf(parent, sizeof parent, "%.*s", (int)(dot - e->path), e->path);
            const options_entry_t *p = options_find(parent);
            cr_assert_not_null(p, "%s has no parent row", e->path);
            cr_assert_lt(p, e, "%s listed before its parent", e->path);
            cr_assert_eq(p->type, OPTIONS_OBJECT);
            if (e->flags & OPTIONS_F_FRESH) cr_assert(p->flags & OPTIONS_F_FRESH, "%s", e->path);
        }
        /* The default has the declared type (or null when nullable). */
        json_t *d = options_default_value(e->path);
        cr_assert_not_null(d, "%s", e->path);
        if (json_is_null(d)) {
            cr_assert(e->flags & OPTIONS_F_NULLABLE, "%s defaults to null", e->path);
        } else {
            switch (e->type) {
            case OPTIONS_BOOL:
                cr_assert(json_is_boolean(d), "%s", e->path);
                break;
            case OPTIONS_INT:
                cr_assert(json_is_integer(d), "%s", e->path);
                break;
            case OPTIONS_DOUBLE:
                cr_assert(json_is_number(d), "%s", e->path);
                break;
            case OPTIONS_STRING:
                cr_assert(json_is_string(d), "%s", e->path);
                break;
            case OPTIONS_OBJECT:
                cr_assert(json_is_object(d), "%s", e->path);
                break;
            case OPTIONS_ARRAY:
                cr_assert(json_is_array(d), "%s", e->path);
                break;
            }
            if (json_is_number(d)) {
                double x = json_number_value(d);
                if (e->flags & OPTIONS_F_MIN) cr_assert_geq(x, e->min, "%s", e->path);
                if (e->flags & OPTIONS_F_MAX) cr_assert_leq(x, e->max, "%s", e->path);
            }
        }
        json_decref(d);
    }
}

Test(options, every_spec_key_is_in_the_table)
{
    static const char *const keys[] = {
        "proxy.port", "proxy.host", "proxy.apiKey", "upstream", "preventSleep", "updateCheck",
        "autoUpdate", "autoApply", "switchThreshold", "quotaProbeSeconds", "routing.mode",
        "routing.preferredAccount", "retry.maxAttemptsPerRequest", "retry.maxRetryBufferBytes",
        "shutdown.drainTimeoutMs", "queue.enabled", "queue.maxWaitMs", "queue.autoMaxWaitMs",
        "queue.capacityMaxWaitMs", "queue.weeklyMaxWaitMs", "queue.streamHoldMaxMs",
        "queue.nonStreamMaxWaitMs", "queue.maxConcurrentQueued", "queue.maxQueuedBytes",
        "queue.maxQueuedBodyBytes", "queue.pollMs", "queue.heartbeatMs", "accounts", "providers",
        "queue.networkMaxWaitMs", "queue.streamClientToleranceMs", "queue.streamForwardGraceMs",
        "queue.countTokensMaxWaitMs", "sync.accountsIntervalMs", "eventLog",
        "restartDrainTimeoutMs", "ui.hideDisabled", "logDir", "_generation",
        /* §5.9 */
        "scheduler.mode", "scheduler.safetyMaxActivePerAccount", "scheduler.safetyMaxGlobalActive",
        "scheduler.cooldownMs", "scheduler.maxCooldownMs", "scheduler.networkCooldownMs",
        "scheduler.weeklySoftThreshold", "scheduler.weeklyReserveThreshold",
        "scheduler.weeklyCriticalThreshold", "scheduler.weeklyExhaustedThreshold",
        "scheduler.weeklyBurnDebtWeight", "scheduler.criticalPreResetHours",
        "scheduler.criticalPressureUnlockRoutes", "scheduler.criticalPressureCost",
        "scheduler.criticalDrainFloorCost", "scheduler.criticalPeakUnlock",
        "scheduler.concurrencyWeight", "scheduler.perAccountConcurrencyTarget",
        "scheduler.capPenaltyWeight", "scheduler.paceCostWeight", "scheduler.utilizationWeight",
        "scheduler.weeklyAwareScoring", "scheduler.scarcityWeight", "scheduler.reserveFloorCost",
        "scheduler.reserveBandWeight", "scheduler.reserveScarcityWeight",
        "scheduler.reserveConcurrencyTarget", "scheduler.spreadShareWeight",
        "scheduler.fastRefillDiscount", "scheduler.fastRefillFadeUtil",
        "scheduler.recoveryRampWeight", "scheduler.recoveryRampMs", "scheduler.spreadWindowMs",
        "scheduler.crossAccountThinkingMigration", "scheduler.crossProviderFallbackPolicy",
        "scheduler.routingMode", "scheduler.providerCrossFallback", "scheduler.providers",
        "scheduler.peakDefaultsVersion",
        /* Part A */
        "limits.maxBufferedBytes", "network.proxy", "secrets.command"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        cr_assert_not_null(options_find(keys[i]), "%s missing from the table", keys[i]);
}

/* ----------------------------------------------------------- validation ---- */

Test(options, string_where_a_number_belongs_names_the_key)
{
    expect_problem("{\"queue\": {\"pollMs\": \"fast\"}}",
                   "config: \"queue.pollMs\" must be a number (got string)");
}

Test(options, type_messages)
{
    expect_problem("{\"preventSleep\": \"yes\"}",
                   "config: \"preventSleep\" must be true or false (got string)");
    expect_problem("{\"queue\": []}", "config: \"queue\" must be an object (got array)");
    expect_problem("{\"accounts\": {}}", "config: \"accounts\" must be an array (got object)");
    expect_problem("{\"upstream\": 5}", "config: \"upstream\" must be a string (got number)");
    expect_problem("{\"queue\": {\"autoMaxWaitMs\": true}}",
                   "config: \"queue.autoMaxWaitMs\" must be a number or null (got boolean)");
    expect_problem("{\"quotaProbeSeconds\": null}",
                   "config: \"quotaProbeSeconds\" must be a number (got null)");
    expect_problem("{\"proxy\": {\"port\": 34.5}}",
                   "config: \"proxy.port\" must be a whole number (got 34.5)");
}

Test(options, range_and_choice_messages)
{
    expect_problem("{\"proxy\": {\"port\": 70000}}",
                   "config: \"proxy.port\" must be between 0 and 65535 (got 70000)");
    expect_problem("{\"switchThreshold\": 1.5}",
                   "config: \"switchThreshold\" must be between 0 and 1 (got 1.5)");
    expect_problem("{\"routing\": {\"mode\": \"random\"}}",
                   "config: \"routing.mode\" must be one of \"automatic\", \"preferred\" (got "
                   "\"random\")");
}

Test(options, secrets_are_never_quoted)
{
    int n;
    char *err = problems_of("{\"proxy\": {\"apiKey\": 12345678}, \"accounts\": [{\"name\": "
                            "\"a\", \"apiKey\": 987654321}]}",
                            &n);
    cr_assert_eq(n, 2, "%s", err);
    cr_assert_null(strstr(err, "12345678"));
    cr_assert_null(strstr(err, "987654321"));
    cr_assert(strstr(err, "config: \"proxy.apiKey\" must be a string (got number)"), "%s", err);
    cr_assert(strstr(err, "config: accounts[0].apiKey must be a string (got number)"), "%s", err);
    free(err);
}

Test(options, accepted_values)
{
    expect_valid("{\"queue\": {\"pollMs\": 50, \"autoMaxWaitMs\": null, \"heartbeatMs\": 0}}");
    expect_valid("{\"quotaProbeSeconds\": 0, \"preventSleep\": false, \"switchThreshold\": 0}");
    expect_valid("{\"proxy\": {\"port\": 1e3}}");
    expect_valid("{\"routing\": {\"mode\": \"preferred\", \"preferredAccount\": \"x\"}}");
    expect_valid("{\"futureKey\": {\"anything\": [1, \"x\"]}, \"scheduler\": {\"newKnob\": 3}}");
}

Test(options, account_shape)
{
    expect_problem("{\"accounts\": [5]}", "config: accounts[0] must be an object (got number)");
    expect_problem("{\"accounts\": [{\"type\": \"apikey\"}]}",
                   "config: accounts[0].name must be a non-empty string");
    expect_problem("{\"accounts\": [{\"name\": \"a\", \"type\": \"magic\"}]}",
                   "config: accounts[0].type must be \"oauth\", \"apikey\" or \"provider\"");
    expect_problem("{\"accounts\": [{\"name\": \"a\"}, {\"name\": \"a\"}]}",
                   "config: accounts[1].name \"a\" is already used by accounts[0]");
    expect_problem("{\"accounts\": [{\"name\": \"a\", \"expiresAt\": \"soon\"}]}",
                   "config: accounts[0].expiresAt must be a number (got string)");
    expect_problem("{\"providers\": [\"kimi\"]}",
                   "config: providers[0] must be an object (got string)");
}

Test(options, several_problems_one_per_line)
{
    int n;
    char *err = problems_of("{\"queue\": {\"pollMs\": \"x\", \"enabled\": 1}}", &n);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(err, "config: \"queue.enabled\" must be true or false (got number)\n"
                          "config: \"queue.pollMs\" must be a number (got string)");
    free(err);
}

Test(options, the_1_20_4_fixture_is_valid)
{
    char *text = NULL;
    cr_assert_eq(fileio_read("tests/fixtures/maxpool-1.20.4.json", &text, NULL, 0), 0);
    int n;
    char *err = problems_of(text, &n);
    cr_assert_eq(n, 0, "%s", err);
    free(err);
    free(text);
}

/* -------------------------------------------------------------- getters ---- */

Test(options, absent_keys_read_their_code_default)
{
    json_t *cfg = parse("{\"queue\": {\"enabled\": false}}");
    cr_assert_eq(options_get_int(cfg, "queue.heartbeatMs"), 10000);
    cr_assert_eq(options_get_int(cfg, "queue.networkMaxWaitMs"), 120000);
    cr_assert_eq(options_get_bool(cfg, "queue.enabled"), false);
    cr_assert_eq(options_get_int(cfg, "sync.accountsIntervalMs"), 15000);
    cr_assert_float_eq(options_get_double(cfg, "scheduler.weeklyBurnDebtWeight"), 0.6, 1e-12);
    cr_assert_str_eq(options_get_string(cfg, "upstream"), "https://api.anthropic.com");
    cr_assert_eq(options_get_bool(NULL, "eventLog"), true);
    json_decref(cfg);
}

Test(options, explicit_zero_and_false_win)
{
    json_t *cfg = parse("{\"quotaProbeSeconds\": 0, \"preventSleep\": false, \"retry\": "
                        "{\"maxAttemptsPerRequest\": 0}}");
    cr_assert_eq(options_get_int(cfg, "quotaProbeSeconds"), 0);
    cr_assert_eq(options_get_bool(cfg, "preventSleep"), false);
    cr_assert_eq(options_get_int(cfg, "retry.maxAttemptsPerRequest"), 0);
    json_decref(cfg);
}

Test(options, floors_and_zero_defaults_follow_the_reference)
{
    json_t *cfg = parse("{\"queue\": {\"pollMs\": 50, \"heartbeatMs\": 0}, \"switchThreshold\": "
                        "0, \"shutdown\": {\"drainTimeoutMs\": 10}}");
    cr_assert_eq(options_get_int(cfg, "queue.pollMs"), 100);
    cr_assert_eq(options_get_int(cfg, "queue.heartbeatMs"), 10000);
    cr_assert_float_eq(options_get_double(cfg, "switchThreshold"), 0.9, 1e-12);
    cr_assert_eq(options_get_int(cfg, "shutdown.drainTimeoutMs"), 1000);
    json_decref(cfg);
}

Test(options, invalid_values_read_as_default)
{
    json_t *cfg = parse("{\"queue\": {\"pollMs\": \"x\"}, \"proxy\": {\"port\": 99999, \"host\": "
                        "7}, \"routing\": {\"mode\": \"random\"}, \"preventSleep\": 0}");
    cr_assert_eq(options_get_int(cfg, "queue.pollMs"), 1000);
    cr_assert_eq(options_get_int(cfg, "proxy.port"), 3456);
    cr_assert_str_eq(options_get_string(cfg, "proxy.host"), "127.0.0.1");
    cr_assert_str_eq(options_get_string(cfg, "routing.mode"), "automatic");
    cr_assert_eq(options_get_bool(cfg, "preventSleep"), true);
    json_decref(cfg);
}

Test(options, nullable_values)
{
    json_t *cfg = parse("{\"queue\": {\"autoMaxWaitMs\": null, \"capacityMaxWaitMs\": null}, "
                        "\"routing\": {\"preferredAccount\": null}}");
    int64_t v = -1;
    cr_assert_eq(options_get_int_nullable(cfg, "queue.autoMaxWaitMs", &v), false);
    cr_assert_eq(options_get_int_nullable(cfg, "queue.capacityMaxWaitMs", &v), false);
    cr_assert_null(options_get_string(cfg, "routing.preferredAccount"));
    json_decref(cfg);
    cr_assert_eq(options_get_int_nullable(NULL, "queue.capacityMaxWaitMs", &v), true);
    cr_assert_eq(v, 900000);
    cr_assert_eq(options_get_int_nullable(NULL, "queue.autoMaxWaitMs", &v), false);
}

Test(options, unknown_key_aborts, .signal = SIGABRT)
{
    options_get_int(NULL, "queue.noSuchKey");
}

Test(options, docs_list_every_key)
{
    char *md = options_docs_markdown();
    for (int i = 0; i < options_count; i++) {
        char needle[160];
        snprintf(needle, sizeof needle, "| `%s` |", options_table[i].path);
        cr_assert(strstr(md, needle), "%s missing from the docs", options_table[i].path);
    }
    cr_assert(strstr(md, "Default of `scheduler.providers`"));
    cr_assert_null(strstr(md, "mp-REPLACED"));
    free(md);
}
