/* The simulator's quota model in virtual time: windows open on first use, fill, warn,
 * reject and reset; time scale; headers describe the state exactly; API-key buckets. */
#include "sim/quota.h"

#include "core/clock.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define T0 1700000000000LL

static sim_quota_t q;

static void setup(void)
{
    clock_set_virtual(T0);
    sim_quota_init(&q, T0, 1.0);
}

static void teardown(void)
{
    sim_quota_free(&q);
}

TestSuite(sim_quota, .init = setup, .fini = teardown);

static const char *hdr(sim_account_t *a, const char *name)
{
    static sim_hdrs_t h;
    sim_hdrs_init(&h);
    sim_quota_headers(&q, a, sim_quota_now(&q, clock_now_ms()), &h);
    return sim_hdrs_get(&h, name);
}

Test(sim_quota, window_opens_on_first_use)
{
    sim_account_t *a = sim_quota_add(&q, "max-a", SIM_ACCT_OAUTH);
    a->w5h.budget = 1000;
    a->w7d.budget = 10000;
    int64_t now = sim_quota_now(&q, clock_now_ms());
    cr_assert_eq(a->w5h.reset_ms, 0);
    cr_assert_eq(sim_quota_check(&q, a, now, NULL), 0);
    cr_assert_null(hdr(a, "anthropic-ratelimit-unified-5h-reset"));
    cr_assert_str_eq(hdr(a, "anthropic-ratelimit-unified-5h-utilization"), "0");
    cr_assert_null(hdr(a, "anthropic-ratelimit-unified-reset"));

    clock_advance(1000);
    now = sim_quota_now(&q, clock_now_ms());
    sim_quota_charge(a, now, 100);
    cr_assert_eq(a->w5h.reset_ms, T0 + 1000 + SIM_5H_MS);
    cr_assert_eq(a->w7d.reset_ms, T0 + 1000 + SIM_7D_MS);
    char want[32];
    snprintf(want, sizeof want, "%lld", (long long)((T0 + 1000 + SIM_5H_MS) / 1000));
    cr_assert_str_eq(hdr(a, "anthropic-ratelimit-unified-5h-reset"), want);
    cr_assert_str_eq(hdr(a, "anthropic-ratelimit-unified-5h-utilization"), "0.1");
    cr_assert_str_eq(hdr(a, "anthropic-ratelimit-unified-7d-utilization"), "0.01");
    cr_assert_str_eq(hdr(a, "anthropic-ratelimit-unified-status"), "allowed");
    cr_assert_str_eq(hdr(a, "anthropic-ratelimit-unified-representative-claim"), "five_hour");
    cr_assert_str_eq(hdr(a, "anthropic-ratelimit-unified-reset"), want);
    cr_assert_str_eq(hdr(a, "anthropic-ratelimit-unified-fallback-percentage"), "0.5");
    /* A second charge does not move the reset. */
    clock_advance(60000);
    sim_quota_charge(a, sim_quota_now(&q, clock_now_ms()), 100);
    cr_assert_eq(a->w5h.reset_ms, T0 + 1000 + SIM_5H_MS);
}

Test(sim_quota, fill_warn_reject_reset)
{
    sim_account_t *a = sim_quota_add(&q, "max-a", SIM_ACCT_OAUTH);
    a->w5h.budget = 1000;
    a->w7d.budget = 100000;
    int64_t now = sim_quota_now(&q, clock_now_ms());
    sim_quota_charge(a, now, 799);
    cr_assert_str_eq(hdr(a, "anthropic-ratelimit-unified-status"), "allowed");
    sim_quota_charge(a, now, 1);
    cr_assert_str_eq(hdr(a, "anthropic-ratelimit-unified-status"), "allowed_warning");
    cr_assert_str_eq(hdr(a, "anthropic-ratelimit-unified-5h-status"), "allowed_warning");
    cr_assert_str_eq(hdr(a, "anthropic-ratelimit-unified-7d-status"), "allowed");
    cr_assert_eq(sim_quota_check(&q, a, now, NULL), 0);
    sim_quota_charge(a, now, 200);
    cr_assert_str_eq(hdr(a, "anthropic-ratelimit-unified-status"), "rejected");
    cr_assert_str_eq(hdr(a, "anthropic-ratelimit-unified-5h-utilization"), "1");
    int64_t ra = 0;
    cr_assert_eq(sim_quota_check(&q, a, now, &ra), 1);
    cr_assert_eq(ra, SIM_5H_MS / 1000);
    clock_advance(SIM_5H_MS - 10000);
    now = sim_quota_now(&q, clock_now_ms());
    cr_assert_eq(sim_quota_check(&q, a, now, &ra), 1);
    cr_assert_eq(ra, 10);
    clock_advance(10000);
    now = sim_quota_now(&q, clock_now_ms());
    cr_assert_eq(sim_quota_check(&q, a, now, NULL), 0);
    cr_assert_str_eq(hdr(a, "anthropic-ratelimit-unified-5h-utilization"), "0");
    cr_assert_null(hdr(a, "anthropic-ratelimit-unified-5h-reset"));
    /* The weekly window stays open and becomes the representative claim. */
    cr_assert_str_eq(hdr(a, "anthropic-ratelimit-unified-representative-claim"), "seven_day");
    cr_assert_str_eq(hdr(a, "anthropic-ratelimit-unified-7d-utilization"), "0.01");
    cr_assert_not_null(hdr(a, "anthropic-ratelimit-unified-reset"));
}

Test(sim_quota, time_scale)
{
    sim_quota_free(&q);
    sim_quota_init(&q, T0, 60.0); /* one real minute = one simulated hour */
    clock_advance(1000);
    cr_assert_eq(sim_quota_now(&q, clock_now_ms()), T0 + 60000);
    cr_assert_eq(sim_quota_to_real(&q, T0 + 60000), T0 + 1000);
    sim_account_t *a = sim_quota_add(&q, "a", SIM_ACCT_OAUTH);
    a->w5h.budget = 10;
    sim_quota_charge(a, sim_quota_now(&q, clock_now_ms()), 10);
    /* 5 simulated hours = 5 real minutes after the first charge. */
    char want[32];
    snprintf(want, sizeof want, "%lld", (long long)((T0 + 1000 + 300000) / 1000));
    cr_assert_str_eq(hdr(a, "anthropic-ratelimit-unified-5h-reset"), want);
    int64_t ra = 0;
    cr_assert_eq(sim_quota_check(&q, a, sim_quota_now(&q, clock_now_ms()), &ra), 1);
    cr_assert_eq(ra, 300);
    clock_advance(300000);
    cr_assert_eq(sim_quota_check(&q, a, sim_quota_now(&q, clock_now_ms()), NULL), 0);
    /* Advancing simulated time and changing the scale keep time continuous. */
    int64_t before = sim_quota_now(&q, clock_now_ms());
    sim_quota_advance(&q, 5000);
    cr_assert_eq(sim_quota_now(&q, clock_now_ms()), before + 5000);
    sim_quota_set_scale(&q, 2.0, clock_now_ms());
    cr_assert_eq(sim_quota_now(&q, clock_now_ms()), before + 5000);
    clock_advance(1000);
    cr_assert_eq(sim_quota_now(&q, clock_now_ms()), before + 7000);
    cr_assert_eq(sim_quota_to_real(&q, before + 7000), clock_now_ms());
}

Test(sim_quota, clock_advance_closes_windows)
{
    sim_account_t *a = sim_quota_add(&q, "a", SIM_ACCT_OAUTH);
    sim_quota_set_used(&a->w7d, 0.5, sim_quota_now(&q, clock_now_ms()));
    cr_assert_str_eq(hdr(a, "anthropic-ratelimit-unified-7d-utilization"), "0.5");
    cr_assert_str_eq(hdr(a, "anthropic-ratelimit-unified-representative-claim"), "seven_day");
    sim_quota_advance(&q, SIM_7D_MS);
    cr_assert_str_eq(hdr(a, "anthropic-ratelimit-unified-7d-utilization"), "0");
    cr_assert_null(hdr(a, "anthropic-ratelimit-unified-7d-reset"));
}

Test(sim_quota, utilization_format)
{
    char b[32];
    sim_quota_fmt_util(0.12345, b, sizeof b);
    cr_assert_str_eq(b, "0.1235");
    sim_quota_fmt_util(0.0, b, sizeof b);
    cr_assert_str_eq(b, "0");
    sim_quota_fmt_util(1.25, b, sizeof b);
    cr_assert_str_eq(b, "1.25");
    sim_quota_fmt_util(0.00001, b, sizeof b);
    cr_assert_str_eq(b, "0");
}

Test(sim_quota, apikey_buckets)
{
    sim_account_t *k = sim_quota_add(&q, "key-1", SIM_ACCT_APIKEY);
    k->tok.budget = 1000;
    k->req.budget = 3;
    cr_assert_str_eq(hdr(k, "anthropic-ratelimit-requests-remaining"), "3");
    cr_assert_str_eq(hdr(k, "anthropic-ratelimit-tokens-limit"), "1000");
    cr_assert_null(hdr(k, "anthropic-ratelimit-unified-status"));
    int64_t now = sim_quota_now(&q, clock_now_ms());
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(sim_quota_check(&q, k, now, NULL), 0);
        sim_quota_charge(k, now, 100);
    }
    cr_assert_str_eq(hdr(k, "anthropic-ratelimit-requests-remaining"), "0");
    cr_assert_str_eq(hdr(k, "anthropic-ratelimit-tokens-remaining"), "700");
    char iso[40];
    clock_iso8601(T0 + 60000, iso, sizeof iso);
    cr_assert_str_eq(hdr(k, "anthropic-ratelimit-requests-reset"), iso);
    int64_t ra = 0;
    cr_assert_eq(sim_quota_check(&q, k, now, &ra), 1);
    cr_assert_eq(ra, 60);
    clock_advance(60000);
    now = sim_quota_now(&q, clock_now_ms());
    cr_assert_eq(sim_quota_check(&q, k, now, NULL), 0);
    cr_assert_str_eq(hdr(k, "anthropic-ratelimit-requests-remaining"), "3");
    /* The token bucket empties too. */
    sim_quota_charge(k, now, 1000);
    cr_assert_eq(sim_quota_check(&q, k, now, &ra), 1);
    cr_assert_str_eq(hdr(k, "anthropic-ratelimit-tokens-remaining"), "0");
}

Test(sim_quota, status_counters)
{
    sim_account_t *a = sim_quota_add(&q, "a", SIM_ACCT_OAUTH);
    sim_quota_count_status(a, 200);
    sim_quota_count_status(a, 429);
    sim_quota_count_status(a, 0); /* reset before headers: no status */
    sim_quota_count_status(a, 200);
    cr_assert_eq(a->status_code[0], 200);
    cr_assert_eq(a->status_count[0], 2);
    cr_assert_eq(a->status_code[1], 429);
    cr_assert_eq(a->status_count[1], 1);
    cr_assert_not_null(sim_quota_find(&q, "a"));
    cr_assert_null(sim_quota_find(&q, "b"));
    cr_assert_eq(strlen(a->uuid), 36);
}
