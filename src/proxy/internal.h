/* proxy/internal — the proxy object shared by the proxy/ files (not a public interface). */
#ifndef MAXPOOL_PROXY_INTERNAL_H
#define MAXPOOL_PROXY_INTERNAL_H

#include "http/server.h"
#include "http/upstream.h"
#include "proxy/proxy.h"
#include "proxy/queue.h"
#include "sched/sched.h"

struct proxy {
    uv_loop_t *loop;
    proxy_settings_t s; /* strings owned (copied) */
    http_server_t *srv;
    upstream_t *up;
    sched_t sched; /* accounts, sessions, throttle: every routing decision */
    size_t active; /* proxied requests in flight */
    uint64_t next_id;
    bool draining;
    bool srv_closed; /* every client connection is gone (http_server_stop finished) */
    void (*on_drained)(void *ud);
    void *drained_ud;
    uv_timer_t tick; /* sched_tick and the state file */
    queue_t queue;   /* requests held for capacity (§6.9) */
    queue_opts_t qopts;
    uv_timer_t qtimer;      /* the queue's poll */
    int open_handles;       /* tick and qtimer: px is freed when both closed */
    int64_t state_gen;      /* state file generation last seen */
    int64_t state_saved_ms; /* last state write */
    bool state_writing;     /* a write is in the thread pool */
    bool tick_on;           /* tick is initialised (closed in proxy_free) */
    bool free_pending;      /* proxy_free ran while a state write was in flight */
    char worker[24];        /* x-maxpool-worker value */
    http_header_t common[1];
};

/* Handles a proxied request (everything but the local routes). */
void proxy_request_begin(proxy_t *px, http_req_t *req);
/* Relays POST /v1/oauth/token to <upstream>/v1/oauth/token (§3.2). */
void proxy_token_relay(proxy_t *px, http_req_t *req);
/* Called when a proxied request finished; fires on_drained when the last one ends. */
void proxy_request_ended(proxy_t *px);
/* Fails every held request at once (shutdown): SSE error frames or JSON errors. */
void proxy_queue_fail_all(proxy_t *px, const char *message);
/* Prints the scheduler's pending events to the log. */
void proxy_log_events(proxy_t *px);

/* Replaces the first "model":"…" value of json[0..n) with model, appending the result to
 * out. Returns 1 if a value was replaced, 0 if none was found (out gets the input as is). */
int proxy_model_echo(const char *json, size_t n, const char *model, buf_t *out);

#endif
