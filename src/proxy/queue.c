#include "proxy/queue.h"

#include <string.h>

void queue_opts_default(queue_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->enabled = true;
    o->max_wait_ms = 86400000;
    o->capacity_max_wait_ms = 900000;
    o->stream_hold_max_ms = 604800000;
    o->non_stream_max_wait_ms = 300000;
    o->network_max_wait_ms = 120000;
    o->count_tokens_max_wait_ms = 8000;
    o->network_soak_nonstream_ms = 45000;
    o->max_concurrent = 64;
    o->max_queued_bytes = 1073741824;
    o->max_queued_body_bytes = 268435456;
    o->poll_ms = 1000;
    o->heartbeat_ms = 10000;
    o->stream_grace_ms = 10000;
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

int64_t queue_window(const queue_opts_t *o, bool stream, bool count_tokens,
                     sched_queue_cause_t cause, sched_cause_t oracle, int64_t tolerance_ms)
{
    int64_t w;
    bool capacity = cause == SCHED_QUEUE_CAPACITY;
    if (!stream)
        w = capacity ? min64(o->non_stream_max_wait_ms, o->capacity_max_wait_ms)
                     : o->non_stream_max_wait_ms;
    else
        w = capacity ? o->max_wait_ms : o->stream_hold_max_ms;
    if (oracle == SCHED_CAUSE_CONCURRENCY_CAP) w = min64(w, o->capacity_max_wait_ms);
    /* Part A1: only a tolerance someone configured or a client announced narrows a stream. */
    int64_t tol = tolerance_ms > 0 ? tolerance_ms : o->client_tolerance_ms;
    if (stream && tol > 0) w = min64(w, tol);
    if (count_tokens) w = min64(w, o->count_tokens_max_wait_ms);
    if (cause == SCHED_QUEUE_NETWORK) {
        int64_t soak = stream ? (o->network_max_wait_ms > 60000 ? o->network_max_wait_ms : 60000)
                              : o->network_soak_nonstream_ms;
        w = min64(w, soak);
    }
    return w;
}

queue_verdict_t queue_offer(queue_t *q, const queue_opts_t *o, queue_ticket_t *t, bool stream,
                            bool count_tokens, size_t body_bytes, sched_queue_cause_t cause,
                            sched_cause_t oracle, int64_t retry_ms, int64_t tolerance_ms,
                            bool front, int64_t now)
{
    if (!o->enabled || cause == SCHED_QUEUE_NONE || cause == SCHED_QUEUE_PROXY) return QUEUE_NO;
    if ((int64_t)body_bytes > o->max_queued_body_bytes) return QUEUE_NO;
    if (oracle == SCHED_CAUSE_WEEKLY_RESET_UNKNOWN || retry_ms == SCHED_NEVER) return QUEUE_NO;
    int64_t first = t->first_ms ? t->first_ms : now;
    int64_t window = queue_window(o, stream, count_tokens, cause, oracle, tolerance_ms);
    if (window <= 0) return QUEUE_NO;
    int64_t deadline = first + window;
    if (now + retry_ms > deadline) return QUEUE_NO;
    if (q->count >= o->max_concurrent ||
        (q->count > 0 && q->bytes + (int64_t)body_bytes > o->max_queued_bytes))
        return QUEUE_FULL;
    t->first_ms = first;
    t->deadline_ms = deadline;
    t->bytes = body_bytes;
    t->cause = cause;
    t->queued = true;
    if (front) {
        t->prev = NULL;
        t->next = q->head;
        if (q->head)
            q->head->prev = t;
        else
            q->tail = t;
        q->head = t;
    } else {
        t->next = NULL;
        t->prev = q->tail;
        if (q->tail)
            q->tail->next = t;
        else
            q->head = t;
        q->tail = t;
    }
    q->count++;
    q->bytes += (int64_t)body_bytes;
    return QUEUE_HOLD;
}

void queue_remove(queue_t *q, queue_ticket_t *t)
{
    if (!t->queued) return;
    if (t->prev)
        t->prev->next = t->next;
    else
        q->head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    else
        q->tail = t->prev;
    t->prev = t->next = NULL;
    t->queued = false;
    q->count--;
    q->bytes -= (int64_t)t->bytes;
}
