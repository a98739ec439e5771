/* proxy/queue — "hold instead of fail" (§6.9, Part A1/A2): the FIFO of requests waiting for
 * an account, its limits, and the hold window of each request. The list and the window are
 * pure (no I/O, times passed in); proxy/request.c drives the waiting, heartbeats and
 * admissions. */
#ifndef MAXPOOL_PROXY_QUEUE_H
#define MAXPOOL_PROXY_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sched/sched.h"

typedef struct queue_opts {
    bool enabled;                 /* queue.enabled */
    int64_t max_wait_ms;          /* queue.maxWaitMs: streaming, capacity cause */
    int64_t capacity_max_wait_ms; /* queue.capacityMaxWaitMs (or autoMaxWaitMs when null) */
    int64_t stream_hold_max_ms;   /* queue.streamHoldMaxMs: streaming, other causes */
    int64_t non_stream_max_wait_ms;
    int64_t network_max_wait_ms; /* queue.networkMaxWaitMs */
    int64_t client_tolerance_ms; /* queue.streamClientToleranceMs when set in the file; 0 = none */
    int64_t count_tokens_max_wait_ms;
    int64_t network_soak_nonstream_ms; /* MAXPOOL_NETWORK_SOAK_NONSTREAM_MS (45 s) */
    int max_concurrent;                /* queue.maxConcurrentQueued */
    int64_t max_queued_bytes;          /* queue.maxQueuedBytes */
    int64_t max_queued_body_bytes;
    int64_t poll_ms;         /* queue.pollMs */
    int64_t heartbeat_ms;    /* queue.heartbeatMs */
    int64_t stream_grace_ms; /* queue.streamForwardGraceMs (§6.8) */
} queue_opts_t;

/* Fills o with the §2.3 defaults (Part A1: no hidden 240 s clamp). */
void queue_opts_default(queue_opts_t *o);

/* One waiting request. Embedded in the caller's request object. */
typedef struct queue_ticket {
    struct queue_ticket *prev, *next;
    bool queued;
    int64_t first_ms;    /* first time this request was held (windows count from here) */
    int64_t deadline_ms; /* give up after this */
    size_t bytes;        /* body bytes counted against maxQueuedBytes */
    sched_queue_cause_t cause;
} queue_ticket_t;

typedef struct queue {
    queue_ticket_t *head, *tail;
    int count;
    int64_t bytes;
} queue_t;

/* The hold window of §6.9 (with Part A1) for a request of this kind and cause; the oracle's
 * cause narrows it for concurrency caps. `tolerance_ms` is the client's stream tolerance from
 * x-maxpool-client-stream-idle-ms (0 = none). Returns ms (≤ 0 = do not hold). */
int64_t queue_window(const queue_opts_t *o, bool stream, bool count_tokens,
                     sched_queue_cause_t cause, sched_cause_t oracle, int64_t tolerance_ms);

typedef enum queue_verdict {
    QUEUE_HOLD = 0, /* hold it: the ticket is in the queue */
    QUEUE_NO,       /* not holdable (disabled, proxy cause, too big, wait beyond the window) */
    QUEUE_FULL,     /* holdable, but the queue is full (§6.9 "Maxpool queue is full") */
} queue_verdict_t;

/* Decides whether a request can wait (§6.9 decision) and, if so, appends t (FIFO), or puts
 * it first when `front` (a request just admitted from the head that must wait again keeps
 * its place). t->first_ms is kept from an earlier hold of the same request (0 = now), so a
 * request's window never restarts. retry_ms is the oracle's wait (SCHED_NEVER = ∞). */
queue_verdict_t queue_offer(queue_t *q, const queue_opts_t *o, queue_ticket_t *t, bool stream,
                            bool count_tokens, size_t body_bytes, sched_queue_cause_t cause,
                            sched_cause_t oracle, int64_t retry_ms, int64_t tolerance_ms,
                            bool front, int64_t now);
/* Removes t if queued (admitted, expired or its client left). */
void queue_remove(queue_t *q, queue_ticket_t *t);

#endif
