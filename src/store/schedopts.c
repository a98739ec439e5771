#include "store/schedopts.h"
#include "store/options.h"

#include <stdio.h>
#include <string.h>

void schedopts_from_config(const json_t *cfg, sched_options_t *o)
{
    sched_options_default(o);
    o->switch_threshold = options_get_double(cfg, "switchThreshold");
    if (o->switch_threshold <= 0) o->switch_threshold = 0.90;
    o->quota_probe_ms = options_get_int(cfg, "quotaProbeSeconds") * 1000;
    const char *mode = options_get_string(cfg, "routing.mode");
    const char *pref = options_get_string(cfg, "routing.preferredAccount");
    if (mode && strcmp(mode, "preferred") == 0 && pref && *pref) {
        o->preferred_mode = true;
        snprintf(o->preferred, sizeof o->preferred, "%s", pref);
    }
    o->max_attempts = (int)options_get_int(cfg, "retry.maxAttemptsPerRequest");
    o->max_retry_buffer = options_get_int(cfg, "retry.maxRetryBufferBytes");

    const char *fb = options_get_string(cfg, "scheduler.crossProviderFallbackPolicy");
    o->cross_provider_fallback = sched_fallback_parse(fb ? fb : "never");
    const char *rm = options_get_string(cfg, "scheduler.routingMode");
    int m = sched_routing_mode_parse(rm);
    if (m < 0) {
        /* §5.1: derived from the legacy fallback policy. */
        m = o->cross_provider_fallback == SCHED_FALLBACK_ALWAYS ? SCHED_ROUTE_BALANCE
            : o->cross_provider_fallback == SCHED_FALLBACK_WHEN_EXHAUSTED
                ? SCHED_ROUTE_PREFER_CLAUDE
                : SCHED_ROUTE_STICKY;
    }
    o->routing_mode = (sched_routing_mode_t)m;
    o->provider_cross_fallback = options_get_bool(cfg, "scheduler.providerCrossFallback");

    o->safety_max_active_per_account =
        (int)options_get_int(cfg, "scheduler.safetyMaxActivePerAccount");
    o->safety_max_global_active = (int)options_get_int(cfg, "scheduler.safetyMaxGlobalActive");
    o->cooldown_ms = options_get_int(cfg, "scheduler.cooldownMs");
    o->max_cooldown_ms = options_get_int(cfg, "scheduler.maxCooldownMs");
    o->network_cooldown_ms = options_get_int(cfg, "scheduler.networkCooldownMs");
    o->weekly_soft = options_get_double(cfg, "scheduler.weeklySoftThreshold");
    o->weekly_reserve = options_get_double(cfg, "scheduler.weeklyReserveThreshold");
    o->weekly_critical = options_get_double(cfg, "scheduler.weeklyCriticalThreshold");
    o->weekly_exhausted = options_get_double(cfg, "scheduler.weeklyExhaustedThreshold");
    o->weekly_burn_debt_weight = options_get_double(cfg, "scheduler.weeklyBurnDebtWeight");
    o->critical_pre_reset_hours = options_get_double(cfg, "scheduler.criticalPreResetHours");
    o->critical_pressure_unlock_routes =
        (int)options_get_int(cfg, "scheduler.criticalPressureUnlockRoutes");
    o->critical_pressure_cost = options_get_double(cfg, "scheduler.criticalPressureCost");
    o->critical_drain_floor_cost = options_get_double(cfg, "scheduler.criticalDrainFloorCost");
    o->critical_peak_unlock = options_get_bool(cfg, "scheduler.criticalPeakUnlock");
    o->concurrency_weight = options_get_double(cfg, "scheduler.concurrencyWeight");
    o->per_account_concurrency_target =
        options_get_double(cfg, "scheduler.perAccountConcurrencyTarget");
    o->cap_penalty_weight = options_get_double(cfg, "scheduler.capPenaltyWeight");
    o->pace_cost_weight = options_get_double(cfg, "scheduler.paceCostWeight");
    o->utilization_weight = options_get_double(cfg, "scheduler.utilizationWeight");
    o->weekly_aware_scoring = options_get_bool(cfg, "scheduler.weeklyAwareScoring");
    o->reserve_floor_cost = options_get_double(cfg, "scheduler.reserveFloorCost");
    o->reserve_band_weight = options_get_double(cfg, "scheduler.reserveBandWeight");
    o->reserve_scarcity_weight = options_get_double(cfg, "scheduler.reserveScarcityWeight");
    o->reserve_concurrency_target = options_get_double(cfg, "scheduler.reserveConcurrencyTarget");
    o->spread_share_weight = options_get_double(cfg, "scheduler.spreadShareWeight");
    o->fast_refill_discount = options_get_double(cfg, "scheduler.fastRefillDiscount");
    o->fast_refill_fade_util = options_get_double(cfg, "scheduler.fastRefillFadeUtil");
    o->recovery_ramp_weight = options_get_double(cfg, "scheduler.recoveryRampWeight");
    o->recovery_ramp_ms = options_get_int(cfg, "scheduler.recoveryRampMs");
    o->spread_window_ms = options_get_int(cfg, "scheduler.spreadWindowMs");
    o->cross_account_thinking_migration =
        options_get_bool(cfg, "scheduler.crossAccountThinkingMigration");
}
