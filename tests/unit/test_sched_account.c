/* sched/account: rotation skips tried, disabled, cooling and rejected accounts. */
#include <criterion/criterion.h>

#include "sched/account.h"

#define NOW 1767225600000LL

Test(account, rotation_spreads_and_skips)
{
    account_t a[3];
    account_init(&a[0], "a", ACCOUNT_APIKEY, "sk-ant-a");
    account_init(&a[1], "b", ACCOUNT_OAUTH, "sk-ant-oat01-b");
    account_init(&a[2], "c", ACCOUNT_APIKEY, "sk-ant-c");
    cr_assert_not(a[0].bearer);
    cr_assert(a[1].bearer);
    size_t cur = 0;
    account_mask_t none = {0};
    /* Sequential requests use every account (§13 scenario 20). */
    cr_assert_eq(account_select_rotate(a, 3, &cur, &none, NOW), 0);
    cr_assert_eq(account_select_rotate(a, 3, &cur, &none, NOW), 1);
    cr_assert_eq(account_select_rotate(a, 3, &cur, &none, NOW), 2);
    cr_assert_eq(account_select_rotate(a, 3, &cur, &none, NOW), 0);
    /* Tried, disabled and cooling accounts are skipped. */
    account_mask_t tried = {0};
    account_mask_add(&tried, 1);
    a[2].enabled = false;
    cr_assert_eq(account_select_rotate(a, 3, &cur, &tried, NOW), 0);
    a[0].cooldown_until_ms = NOW + 1;
    cr_assert_eq(account_select_rotate(a, 3, &cur, &tried, NOW), -1);
    cr_assert_eq(account_select_rotate(a, 3, &cur, &tried, NOW + 1), 0);
    /* A rejected account is skipped until its window resets. */
    quota_header_t h[] = {{"anthropic-ratelimit-unified-5h-utilization", "1.0"},
                          {"anthropic-ratelimit-unified-5h-reset", "1767229200"},
                          {"anthropic-ratelimit-unified-status", "rejected"}};
    quota_apply_headers(&a[1].quota, h, 3, NOW);
    account_mask_t empty = {0};
    a[0].enabled = false;
    cr_assert_eq(account_select_rotate(a, 3, &cur, &empty, NOW), -1);
    cr_assert_eq(account_select_rotate(a, 3, &cur, &empty, 1767229200000LL), 1);
    for (int i = 0; i < 3; i++)
        account_free(&a[i]);
}
