/* store/schedopts: every scheduler option comes from the config with its §5.9 default. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

#include "store/options.h"
#include "store/schedopts.h"

Test(schedopts, defaults_match_the_table_and_sched)
{
    sched_options_t a, b;
    schedopts_from_config(NULL, &a);
    sched_options_default(&b);
    cr_assert_eq(memcmp(&a, &b, sizeof a), 0, "config defaults differ from sched defaults");
    json_t *fresh = options_default_config();
    schedopts_from_config(fresh, &a);
    cr_assert_eq(memcmp(&a, &b, sizeof a), 0, "a fresh config differs from the defaults");
    json_decref(fresh);
}

Test(schedopts, values_and_derived_modes)
{
    json_error_t e;
    json_t *cfg = json_loads("{\"switchThreshold\":0.97,\"quotaProbeSeconds\":0,"
                             "\"routing\":{\"mode\":\"preferred\",\"preferredAccount\":\"b\"},"
                             "\"retry\":{\"maxAttemptsPerRequest\":2},"
                             "\"scheduler\":{\"cooldownMs\":1000,\"weeklyReserveThreshold\":0.8,"
                             "\"crossProviderFallbackPolicy\":\"always\","
                             "\"paceCostWeight\":2.5,\"weeklyAwareScoring\":false}}",
                             0, &e);
    cr_assert_not_null(cfg);
    sched_options_t o;
    schedopts_from_config(cfg, &o);
    cr_assert_float_eq(o.switch_threshold, 0.97, 1e-12);
    cr_assert_eq(o.quota_probe_ms, 0);
    cr_assert(o.preferred_mode);
    cr_assert_str_eq(o.preferred, "b");
    cr_assert_eq(o.max_attempts, 2);
    cr_assert_eq(o.cooldown_ms, 1000);
    cr_assert_float_eq(o.weekly_reserve, 0.8, 1e-12);
    cr_assert_float_eq(o.pace_cost_weight, 2.5, 1e-12);
    cr_assert_not(o.weekly_aware_scoring);
    cr_assert_eq(o.cross_provider_fallback, SCHED_FALLBACK_ALWAYS);
    cr_assert_eq(o.routing_mode, SCHED_ROUTE_BALANCE); /* derived (§5.1) */
    json_decref(cfg);
    cfg = json_loads("{\"switchThreshold\":0,\"routing\":{\"mode\":\"preferred\"},"
                     "\"scheduler\":{\"routingMode\":\"prefer-kimi\","
                     "\"crossProviderFallbackPolicy\":\"when-exhausted\"}}",
                     0, &e);
    schedopts_from_config(cfg, &o);
    cr_assert_float_eq(o.switch_threshold, 0.90, 1e-12); /* 0 reads as 0.90 */
    cr_assert_not(o.preferred_mode);                     /* no name: automatic */
    cr_assert_eq(o.routing_mode, SCHED_ROUTE_PREFER_KIMI);
    json_decref(cfg);
}
