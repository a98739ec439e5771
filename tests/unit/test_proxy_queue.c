/* proxy/queue: hold windows (§6.9 with Part A1), the hold decision, FIFO order and limits. */
#include <criterion/criterion.h>

#include "proxy/queue.h"

#define NOW 1767225600000LL

Test(queue, windows_follow_the_config_without_a_hidden_clamp)
{
    queue_opts_t o;
    queue_opts_default(&o);
    /* Part A1: streams hold as configured (7 d / 24 h), not 240 s. */
    cr_assert_eq(queue_window(&o, true, false, SCHED_QUEUE_QUOTA, SCHED_CAUSE_RATE_LIMITED, 0),
                 604800000);
    cr_assert_eq(queue_window(&o, true, false, SCHED_QUEUE_CAPACITY, SCHED_CAUSE_COOLDOWN, 0),
                 86400000);
    cr_assert_eq(queue_window(&o, false, false, SCHED_QUEUE_QUOTA, SCHED_CAUSE_RATE_LIMITED, 0),
                 300000);
    cr_assert_eq(queue_window(&o, false, false, SCHED_QUEUE_CAPACITY, SCHED_CAUSE_COOLDOWN, 0),
                 300000);
    /* Concurrency caps, count_tokens, a client's tolerance and network soaks narrow it. */
    cr_assert_eq(queue_window(&o, true, false, SCHED_QUEUE_QUOTA, SCHED_CAUSE_CONCURRENCY_CAP, 0),
                 900000);
    cr_assert_eq(queue_window(&o, true, true, SCHED_QUEUE_QUOTA, SCHED_CAUSE_RATE_LIMITED, 0),
                 8000);
    cr_assert_eq(queue_window(&o, true, false, SCHED_QUEUE_QUOTA, SCHED_CAUSE_RATE_LIMITED, 400000),
                 400000);
    cr_assert_eq(queue_window(&o, false, false, SCHED_QUEUE_NETWORK, SCHED_CAUSE_COOLDOWN, 0),
                 45000);
    cr_assert_eq(queue_window(&o, true, false, SCHED_QUEUE_NETWORK, SCHED_CAUSE_COOLDOWN, 0),
                 120000);
    o.client_tolerance_ms = 240000; /* set in the file: honoured */
    cr_assert_eq(queue_window(&o, true, false, SCHED_QUEUE_QUOTA, SCHED_CAUSE_RATE_LIMITED, 0),
                 240000);
}

Test(queue, decision_fifo_and_limits)
{
    queue_opts_t o;
    queue_opts_default(&o);
    o.max_concurrent = 2;
    queue_t q = {0};
    queue_ticket_t a = {0}, b = {0}, c = {0}, d = {0};
    /* Never: proxy errors, an infinite wait, a wait beyond the window, too big a body. */
    cr_assert_eq(queue_offer(&q, &o, &a, false, false, 10, SCHED_QUEUE_PROXY, SCHED_CAUSE_COOLDOWN,
                             1000, 0, false, NOW),
                 QUEUE_NO);
    cr_assert_eq(queue_offer(&q, &o, &a, false, false, 10, SCHED_QUEUE_QUOTA,
                             SCHED_CAUSE_WEEKLY_RESET_UNKNOWN, 1000, 0, false, NOW),
                 QUEUE_NO);
    cr_assert_eq(queue_offer(&q, &o, &a, false, false, 10, SCHED_QUEUE_QUOTA,
                             SCHED_CAUSE_RATE_LIMITED, SCHED_NEVER, 0, false, NOW),
                 QUEUE_NO);
    cr_assert_eq(queue_offer(&q, &o, &a, false, false, 10, SCHED_QUEUE_QUOTA,
                             SCHED_CAUSE_RATE_LIMITED, 300001, 0, false, NOW),
                 QUEUE_NO);
    cr_assert_eq(queue_offer(&q, &o, &a, false, false, (size_t)o.max_queued_body_bytes + 1,
                             SCHED_QUEUE_QUOTA, SCHED_CAUSE_RATE_LIMITED, 1000, 0, false, NOW),
                 QUEUE_NO);
    cr_assert_eq(q.count, 0);
    /* Held, in arrival order; the deadline counts from the first hold. */
    cr_assert_eq(queue_offer(&q, &o, &a, false, false, 10, SCHED_QUEUE_QUOTA,
                             SCHED_CAUSE_RATE_LIMITED, 300000, 0, false, NOW),
                 QUEUE_HOLD);
    cr_assert_eq(a.deadline_ms, NOW + 300000);
    cr_assert_eq(queue_offer(&q, &o, &b, false, false, 20, SCHED_QUEUE_QUOTA,
                             SCHED_CAUSE_RATE_LIMITED, 1000, 0, false, NOW + 5),
                 QUEUE_HOLD);
    cr_assert_eq(q.head, &a);
    cr_assert_eq(q.tail, &b);
    cr_assert_eq(q.bytes, 30);
    /* Full at maxConcurrentQueued. */
    cr_assert_eq(queue_offer(&q, &o, &c, false, false, 10, SCHED_QUEUE_QUOTA,
                             SCHED_CAUSE_RATE_LIMITED, 1000, 0, false, NOW),
                 QUEUE_FULL);
    /* Admitted head that must wait again keeps its place and its deadline. */
    queue_remove(&q, &a);
    cr_assert_eq(q.head, &b);
    cr_assert_eq(queue_offer(&q, &o, &a, false, false, 10, SCHED_QUEUE_QUOTA,
                             SCHED_CAUSE_RATE_LIMITED, 1000, 0, true, NOW + 100000),
                 QUEUE_HOLD);
    cr_assert_eq(q.head, &a);
    cr_assert_eq(a.deadline_ms, NOW + 300000);
    queue_remove(&q, &a);
    queue_remove(&q, &b);
    queue_remove(&q, &b); /* removing twice is harmless */
    cr_assert_eq(q.count, 0);
    cr_assert_eq(q.bytes, 0);
    cr_assert_null(q.head);
    /* The byte cap applies once something waits. */
    o.max_queued_bytes = 100;
    cr_assert_eq(queue_offer(&q, &o, &d, false, false, 90, SCHED_QUEUE_QUOTA,
                             SCHED_CAUSE_RATE_LIMITED, 1000, 0, false, NOW),
                 QUEUE_HOLD);
    cr_assert_eq(queue_offer(&q, &o, &c, false, false, 20, SCHED_QUEUE_QUOTA,
                             SCHED_CAUSE_RATE_LIMITED, 1000, 0, false, NOW),
                 QUEUE_FULL);
}
