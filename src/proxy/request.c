/* proxy/request — one proxied request from admission to the last byte (§3.4–§3.7, §6).
 *
 * States: SELECT (ask sched for an account) → WAIT_HEAD (upstream transfer started) →
 * RELAY (the response is being relayed) → DONE. Every routing judgement is sched's
 * (sched/sched.h): it leases an account in sched_select and the lease ends in exactly one
 * of sched_on_response (RETRY/REFRESH/GIVE_UP), sched_on_failure, sched_on_complete or
 * sched_release. Failover happens only while nothing has been written to the client.
 * Ownership: the preq lives until both the upstream transfer is over and the client
 * response ended (or the client left); preq_maybe_free() is the one place it is freed. */
#include "core/clock.h"
#include "core/jscan.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "http/headers.h"
#include "http/sse.h"
#include "proxy/headers.h"
#include "proxy/internal.h"
#include "proxy/reqlog.h"

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ECHO_HOLD_MAX        (64 * 1024) /* §3.7: hold up to 64 KiB waiting for the model */
#define JSON_BUFFER_MAX      (64u << 20) /* a non-streamed body larger than this is relayed as is */
#define ERROR_BODY_MAX       (64 * 1024) /* error bodies are read whole to classify them (§6.3) */
#define MAX_UPSTREAM_HEADERS 256

typedef enum preq_state { PR_SELECT, PR_WAIT_HEAD, PR_RELAY, PR_DONE } preq_state_t;

static const char *const STATE_NAMES[] = {"select", "wait_head", "relay", "done"};

typedef enum relay_mode {
    RELAY_RAW,   /* pass bytes through as they come */
    RELAY_SSE,   /* event stream: usage on the side, model echo on the first event */
    RELAY_JSON,  /* buffer, echo the model, send with a length */
    RELAY_ERROR, /* status ≥ 400: read the (small) body, then let sched judge it */
} relay_mode_t;

typedef struct preq {
    proxy_t *px;
    http_req_t *req; /* NULL once the client left or the response ended */
    upstream_req_t *up;
    preq_state_t state;
    uint64_t id;
    sched_request_t sr; /* what sched knows about this request */
    int idx;            /* the leased account, or -1 */
    bool leased;
    char *model;   /* requested model, or NULL (sr.model points here) */
    char *session; /* x-maxpool-session, or NULL (sr.session points here) */
    char *profile; /* x-maxpool-profile lower-cased, or NULL */
    size_t body_len;
    buf_t cred; /* storage for the credential header of the current attempt */
    char *url;
    int status;
    relay_mode_t mode;
    bool head_sent; /* the response head went to the client */
    buf_t hold;     /* SSE bytes held (model echo, unfinished event), or a buffered body */
    buf_t uhead;    /* the upstream head of the current attempt, "name\0value\0" pairs */
    size_t uhead_n;
    bool echo_done;
    bool freeing;
    const char *net_code; /* the code of the last network failure, for messages */
    sse_parser_t sse;
    uint64_t input_tokens, output_tokens;
    int64_t started_ms;
    uv_timer_t retry; /* next attempt on a clean stack (never from inside libcurl) */
    uv_timer_t hb;    /* stream grace (§6.8), then heartbeats while nothing is relayed */
    int open_handles; /* retry and hb: freed when both closed */
    bool hb_head;     /* our own 200 text/event-stream head went out (§6.8, §6.9) */
    queue_ticket_t ticket;
    sched_outcome_t held_out; /* the failure a held request answers with if it gives up */
    bool has_held_out;
    int64_t tolerance_ms; /* x-maxpool-client-stream-idle-ms × 0.8 when > 300000, else 0 */
    reqlog_t *log;        /* --log-to record, or NULL */
} preq_t;

#define PREQ_OF_TICKET(t) ((preq_t *)((char *)(t)-offsetof(preq_t, ticket)))

static void attempt(preq_t *p);
static void hb_stop(preq_t *p);
static void give_up_now(preq_t *p, const sched_outcome_t *out);

static void set_state(preq_t *p, preq_state_t s)
{
    /* Read once: getenv walks the whole environment, and this runs 3-4 times a request. */
    static int trace = -1;
    if (trace < 0) trace = getenv("MAXPOOL_TRACE_STATES") != NULL;
    if (trace)
        log_msg("request %llu: %s -> %s", (unsigned long long)p->id, STATE_NAMES[p->state],
                STATE_NAMES[s]);
    p->state = s;
}

static account_t *cur_acct(preq_t *p)
{
    return p->idx >= 0 ? &p->px->sched.accts[p->idx] : NULL;
}

/* ---- the lease ------------------------------------------------------------------------ */

/* Ends the lease without judging the account (client left, attempt abandoned). */
static void lease_release(preq_t *p)
{
    if (!p->leased) return;
    p->leased = false;
    sched_release(&p->px->sched, p->idx, &p->sr, clock_now_ms());
    proxy_log_events(p->px);
}

/* Ends the lease of a relayed response, counting its outcome and usage. */
static void lease_complete(preq_t *p)
{
    if (!p->leased) return;
    p->leased = false;
    sched_usage_t u = {
        .status = p->status, .input_tokens = p->input_tokens, .output_tokens = p->output_tokens};
    sched_on_complete(&p->px->sched, p->idx, &p->sr, &u, clock_now_ms());
    proxy_log_events(p->px);
}

static void preq_closed(uv_handle_t *h)
{
    preq_t *p = h->data;
    if (--p->open_handles == 0) free(p);
}

static void preq_maybe_free(preq_t *p)
{
    if (p->req || p->up || p->freeing) return;
    p->freeing = true;
    lease_release(p);
    queue_remove(&p->px->queue, &p->ticket);
    p->px->sched.queue_depth = p->px->queue.count;
    free(p->model);
    free(p->session);
    free(p->profile);
    free(p->url);
    buf_free(&p->cred);
    buf_free(&p->hold);
    buf_free(&p->uhead);
    sse_free(&p->sse);
    if (p->log) {
        if (p->log->text.len)
            reqlog_flush(p->log, p->px->loop, p->px->s.log_dir, p->id, p->mode == RELAY_SSE);
        reqlog_free(p->log);
        free(p->log);
    }
    proxy_t *px = p->px;
    uv_close((uv_handle_t *)&p->retry, preq_closed);
    uv_close((uv_handle_t *)&p->hb, preq_closed);
    proxy_request_ended(px);
}

/* ---- writing to the client ---------------------------------------------------------- */

static void on_client_drain(http_req_t *req, void *ud)
{
    preq_t *p = ud;
    if (p->up) upstream_req_resume(p->up);
}

/* Writes to the client; pauses the upstream read while the client is slow (backpressure). */
static void client_write(preq_t *p, const void *data, size_t n)
{
    if (!p->req || n == 0) return;
    p->sr.committed = true;
    http_resp_write(p->req, data, n);
    if (!http_resp_writable(p->req) && p->up) {
        upstream_req_pause(p->up);
        http_resp_on_drain(p->req, on_client_drain, p);
    }
}

static void client_end(preq_t *p)
{
    if (!p->req) return;
    http_resp_end(p->req);
    p->req = NULL;
    set_state(p, PR_DONE);
}

/* Rebuilds the stored upstream head as an array (strings point into p->uhead). */
static size_t stored_head(preq_t *p, http_header_t *hv)
{
    http_headers_unpack(&p->uhead, p->uhead_n, hv);
    return p->uhead_n;
}

/* Sends the stored upstream head, filtered for the client (§3.7). */
static void send_head(preq_t *p, int64_t content_length)
{
    if (!p->req || p->head_sent) return;
    if (p->hb_head) {
        /* Our heartbeat already answered 200 text/event-stream: only events follow. */
        p->head_sent = true;
        return;
    }
    http_header_t in[MAX_UPSTREAM_HEADERS], out[MAX_UPSTREAM_HEADERS];
    size_t n = stored_head(p, in);
    size_t k = proxy_headers_downstream(in, n, out);
    http_resp_start(p->req, p->status, out, k, content_length);
    p->head_sent = true;
}

/* An error for the client: JSON before the response started, an SSE error event after. */
static void client_error_ex(preq_t *p, int status, const char *type, const char *message,
                            int retry_after_s, int64_t rejected_reset_ms);

static void client_error(preq_t *p, int status, const char *type, const char *message,
                         int retry_after_s)
{
    client_error_ex(p, status, type, message, retry_after_s, 0);
}

/* rejected_reset_ms > 0 adds `anthropic-ratelimit-unified-status: rejected`, the reset and a
 * representative claim, so Claude Code stops at once and tells the user when (issue 6,
 * CLIENTS.md): without the claim it says "Server is temporarily limiting requests (not your
 * usage limit)"; with it, "You've hit your 5-hour limit · resets <time>" (measured, 2.1.332). */
static void client_error_ex(preq_t *p, int status, const char *type, const char *message,
                            int retry_after_s, int64_t rejected_reset_ms)
{
    if (!p->req) return;
    json_t *o =
        json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error", "type", type, "message", message);
    char *j = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!http_resp_started(p->req)) {
        char ra[24], reset[24];
        snprintf(ra, sizeof ra, "%d", retry_after_s);
        snprintf(reset, sizeof reset, "%lld", (long long)((rejected_reset_ms + 999) / 1000));
        http_header_t hv[6] = {{"content-type", "application/json"}};
        size_t k = 1;
        if (retry_after_s > 0) hv[k++] = (http_header_t){"retry-after", ra};
        if (rejected_reset_ms > 0) {
            /* A recovery more than 5 h away cannot be a 5-hour window. */
            bool weekly = rejected_reset_ms - clock_now_ms() > 5 * 3600 * 1000LL;
            hv[k++] = (http_header_t){"anthropic-ratelimit-unified-status", "rejected"};
            hv[k++] = (http_header_t){"anthropic-ratelimit-unified-reset", reset};
            hv[k++] = (http_header_t){"anthropic-ratelimit-unified-representative-claim",
                                      weekly ? "seven_day" : "five_hour"};
        }
        http_resp_start(p->req, status, hv, k, (int64_t)strlen(j));
        http_resp_write(p->req, j, strlen(j));
        client_end(p);
    } else if (p->mode == RELAY_SSE || p->hb_head) {
        buf_t b;
        buf_init(&b, 0);
        sse_format_error(&b, type, message);
        client_write(p, b.data, b.len);
        buf_free(&b);
        client_end(p);
    } else {
        /* A plain body cannot carry an error after its head: cut the connection instead. */
        http_resp_abort(p->req);
        p->req = NULL;
        set_state(p, PR_DONE);
    }
    free(j);
}

static void on_client_close(http_req_t *req, void *ud)
{
    preq_t *p = ud;
    p->req = NULL;
    hb_stop(p);
    if (p->up) {
        /* Nobody will read the rest: stop the transfer and free the account now. */
        upstream_req_cancel(p->up);
        p->up = NULL;
    }
    double secs = (double)(clock_mono_ms() - p->started_ms) / 1000.0;
    log_msg("Client left after %.1fs on \"%s\" (%s)", secs,
            p->leased && cur_acct(p) ? cur_acct(p)->name : "-",
            p->sr.committed ? "mid-response — output already sent" : "still waiting, nothing sent");
    set_state(p, PR_DONE);
    preq_maybe_free(p);
}

/* ---- heartbeats (§6.8, §6.9) ----------------------------------------------------------- */

static const char PING[] = "event: ping\ndata: {}\n\n";

static void hb_cb(uv_timer_t *t);

/* Commits our own 200 text/event-stream head and pings, so the client's idle watchdog does
 * not fire while the request waits for an account or a slow first byte. */
static void hb_start(preq_t *p)
{
    if (!p->req || !p->sr.stream || p->sr.committed || http_resp_started(p->req)) {
        if (p->hb_head) uv_timer_start(&p->hb, hb_cb, (uint64_t)p->px->qopts.heartbeat_ms, 0);
        return;
    }
    http_header_t hv[] = {{"content-type", "text/event-stream"},
                          {"cache-control", "no-cache"},
                          {"x-accel-buffering", "no"}};
    http_resp_start(p->req, 200, hv, 3, -1);
    p->hb_head = true;
    http_resp_write(p->req, PING, sizeof PING - 1);
    uv_timer_start(&p->hb, hb_cb, (uint64_t)p->px->qopts.heartbeat_ms, 0);
}

static void hb_cb(uv_timer_t *t)
{
    preq_t *p = t->data;
    if (!p->req || p->sr.committed) return;
    if (!p->hb_head) {
        /* Stream grace (§6.8): nothing from upstream yet, commit and keep the client. */
        hb_start(p);
        return;
    }
    http_resp_write(p->req, PING, sizeof PING - 1);
    uv_timer_start(&p->hb, hb_cb, (uint64_t)p->px->qopts.heartbeat_ms, 0);
}

/* Stops heartbeats: real events are flowing (or the request is over). */
static void hb_stop(preq_t *p)
{
    uv_timer_stop(&p->hb);
}

/* ---- the queue (§6.9, Part A1/A2) ------------------------------------------------------ */

static void qtick_cb(uv_timer_t *t);

static void queue_arm(proxy_t *px, int64_t delay_ms)
{
    if (px->queue.count == 0) {
        uv_timer_stop(&px->qtimer);
        return;
    }
    /* pollMs × U(0.8, 1.2) so held requests do not move in lockstep. */
    if (delay_ms < 0) {
        int64_t base = px->qopts.poll_ms;
        delay_ms = base * 8 / 10 + (int64_t)((uint64_t)rand() % (uint64_t)(base * 4 / 10 + 1));
    }
    uv_timer_start(&px->qtimer, qtick_cb, (uint64_t)delay_ms, 0);
}

static sched_queue_cause_t queue_cause_of(sched_cause_t c)
{
    switch (c) {
    case SCHED_CAUSE_UPSTREAM_THROTTLE:
    case SCHED_CAUSE_UPSTREAM_PROBE:
        return SCHED_QUEUE_UPSTREAM_THROTTLE;
    case SCHED_CAUSE_COOLDOWN:
    case SCHED_CAUSE_UPSTREAM_FAILURE:
    case SCHED_CAUSE_CONCURRENCY_CAP:
        return SCHED_QUEUE_CAPACITY;
    default:
        return SCHED_QUEUE_QUOTA;
    }
}

static const char QUEUE_FULL_MSG[] =
    "Maxpool queue is full — too many requests are already waiting for capacity. Try again "
    "shortly.";

/* Tries to hold the request instead of failing it. Returns true when the request is taken
 * care of (held, or answered with the in-band "queue is full" error). */
static bool try_hold(preq_t *p, sched_queue_cause_t cause, sched_cause_t oracle, int64_t retry_ms,
                     const char *reason)
{
    proxy_t *px = p->px;
    if (!p->req || p->sr.committed) return false;
    int64_t now = clock_now_ms();
    queue_verdict_t v = queue_offer(&px->queue, &px->qopts, &p->ticket, p->sr.stream,
                                    p->sr.is_count_tokens, p->body_len, cause, oracle, retry_ms,
                                    p->tolerance_ms, p->sr.queue_admitted, now);
    if (v == QUEUE_FULL && p->hb_head) {
        client_error(p, 429, "rate_limit_error", QUEUE_FULL_MSG, 0);
        return true;
    }
    if (v != QUEUE_HOLD) return false;
    px->sched.queue_depth = px->queue.count;
    /* A ticket holder is judged as the queue sees it, not as a newcomer behind the queue. */
    p->sr.queue_admitted = true;
    size_t rl = strlen(reason);
    while (rl > 0 && (reason[rl - 1] == '.' || reason[rl - 1] == ' '))
        rl--;
    log_msg("%.*s; queueing request for up to %llds (cause: %s, retry: %s)", (int)rl, reason,
            (long long)((p->ticket.deadline_ms - now + 999) / 1000), sched_queue_cause_name(cause),
            sched_cause_name(oracle));
    set_state(p, PR_SELECT);
    if (p->sr.stream) hb_start(p);
    if (!uv_is_active((uv_handle_t *)&px->qtimer)) queue_arm(px, -1);
    return true;
}

/* A held request gives up: the honest answer with the soonest retry (§6.9, §6.10). */
static void fail_held(preq_t *p, sched_cause_t oracle, int64_t retry_ms)
{
    proxy_t *px = p->px;
    queue_remove(&px->queue, &p->ticket);
    px->sched.queue_depth = px->queue.count;
    hb_stop(p);
    if (!p->hb_head && p->has_held_out) {
        /* Plain requests get the answer they would have had without the hold (§6.9). */
        give_up_now(p, &p->held_out);
        preq_maybe_free(p);
        return;
    }
    char msg[512];
    if (p->ticket.cause == SCHED_QUEUE_NETWORK)
        snprintf(msg, sizeof msg,
                 "Could not connect to Claude (network error) and connectivity did not return "
                 "in time. Check your internet connection and try again. This is not an "
                 "account quota issue.");
    else
        sched_no_route_message(&px->sched, retry_ms, oracle, msg, sizeof msg);
    int64_t ra = retry_ms == SCHED_NEVER ? 60 : (retry_ms + 999) / 1000;
    if (ra < 1) ra = 1;
    int64_t reset = retry_ms == SCHED_NEVER ? 0 : clock_now_ms() + retry_ms;
    client_error_ex(p, 429, "rate_limit_error", msg, (int)ra,
                    p->ticket.cause == SCHED_QUEUE_QUOTA ? reset : 0);
    hb_stop(p);
    preq_maybe_free(p);
}

static void qtick_cb(uv_timer_t *t)
{
    proxy_t *px = t->data;
    int64_t now = clock_now_ms();
    int64_t next = -1;
    queue_ticket_t *tk = px->queue.head;
    while (tk) {
        queue_ticket_t *after = tk->next;
        preq_t *p = PREQ_OF_TICKET(tk);
        sched_cause_t cause;
        int64_t wait = sched_next_retry(&px->sched, &p->sr, now, &cause);
        if (now >= tk->deadline_ms || wait == SCHED_NEVER) {
            fail_held(p, cause, wait);
            tk = after;
            continue;
        }
        if (wait > 0 || tk != px->queue.head) {
            /* FIFO: the head goes first; those behind a waiting head still end on their own
             * deadline (each held request keeps its window, §6.9). */
            tk = after;
            continue;
        }
        queue_remove(&px->queue, tk);
        px->sched.queue_depth = px->queue.count;
        sched_request_restart(&p->sr);
        p->sr.queue_admitted = true;
        attempt(p);
        /* After a throttle cleared, admissions are spaced (§6.4 ramp). */
        if (px->sched.throttle.ramp_until_ms > now) {
            next = 250;
            break;
        }
        tk = px->queue.head;
    }
    proxy_log_events(px);
    queue_arm(px, next);
}

void proxy_queue_fail_all(proxy_t *px, const char *message)
{
    while (px->queue.head) {
        preq_t *p = PREQ_OF_TICKET(px->queue.head);
        queue_remove(&px->queue, px->queue.head);
        client_error(p, 503, "overloaded_error", message, 1);
        hb_stop(p);
        preq_maybe_free(p);
    }
    px->sched.queue_depth = 0;
    uv_timer_stop(&px->qtimer);
}

/* ---- usage on the side (§3.7) ---------------------------------------------------------- */

static void read_usage(preq_t *p, const char *usage, size_t un, bool input, bool output)
{
    const char *t;
    size_t tn;
    int64_t x;
    if (input && jscan_get(usage, un, "input_tokens", &t, &tn) == 0 &&
        jscan_int64(t, tn, &x) == 0 && x >= 0)
        p->input_tokens = (uint64_t)x;
    /* Output tokens are cumulative in a stream: keep the running maximum. */
    if (output && jscan_get(usage, un, "output_tokens", &t, &tn) == 0 &&
        jscan_int64(t, tn, &x) == 0 && x >= 0 && (uint64_t)x > p->output_tokens)
        p->output_tokens = (uint64_t)x;
}

static int usage_event(const sse_event_t *ev, void *ud)
{
    preq_t *p = ud;
    const char *v, *msg;
    size_t vn, mn;
    if (!ev->data_len) return 0;
    if (ev->event_len == 13 && memcmp(ev->event, "message_start", 13) == 0) {
        if (jscan_get(ev->data, ev->data_len, "message", &msg, &mn) == 0 &&
            jscan_get(msg, mn, "usage", &v, &vn) == 0)
            read_usage(p, v, vn, true, true);
    } else if (ev->event_len == 13 && memcmp(ev->event, "message_delta", 13) == 0) {
        if (jscan_get(ev->data, ev->data_len, "usage", &v, &vn) == 0)
            read_usage(p, v, vn, false, true);
    }
    return 0;
}

/* ---- what sched says ------------------------------------------------------------------- */

static void retry_cb(uv_timer_t *t)
{
    attempt(t->data);
}

static void schedule_attempt(preq_t *p)
{
    /* Often inside libcurl's callbacks: start the next attempt on a new loop turn. */
    set_state(p, PR_SELECT);
    uv_timer_start(&p->retry, retry_cb, 0, 0);
}

/* Carries out a GIVE_UP outcome: the upstream's own answer, or the §6.10 error. The queue
 * (§6.9) will take the requests whose cause allows holding. */
static void give_up(preq_t *p, const sched_outcome_t *out)
{
    if (out->cause != SCHED_QUEUE_NONE && out->cause != SCHED_QUEUE_PROXY && p->req &&
        !p->sr.committed) {
        sched_cause_t oracle;
        int64_t wait = sched_next_retry(&p->px->sched, &p->sr, clock_now_ms(), &oracle);
        p->held_out = *out;
        p->has_held_out = true;
        if (try_hold(p, out->cause, oracle, wait,
                     out->message[0] ? out->message : "No failover left"))
            return;
    }
    give_up_now(p, out);
}

static void give_up_now(preq_t *p, const sched_outcome_t *out)
{
    if (out->verbatim && !p->sr.committed && p->mode == RELAY_ERROR) {
        send_head(p, (int64_t)p->hold.len);
        client_write(p, p->hold.data, p->hold.len);
        client_end(p);
        return;
    }
    /* A quota 429 after every account was tried is "every account is spent": say when, so
     * Claude Code stops at once instead of backing off (issue 6 item 4, as no_route does). */
    int64_t reset = 0;
    if (out->status == 429 && out->cause == SCHED_QUEUE_QUOTA) {
        sched_cause_t oracle;
        int64_t now = clock_now_ms();
        int64_t wait = sched_next_retry(&p->px->sched, &p->sr, now, &oracle);
        if (wait > 0 && wait != SCHED_NEVER) reset = now + wait;
    }
    client_error_ex(p, out->status ? out->status : 502,
                    out->error_type ? out->error_type : "proxy_error", out->message,
                    out->retry_after_s, reset);
}

/* Acts on what sched decided about a finished attempt (the lease is already settled). */
static void follow(preq_t *p, sched_action_t act, const sched_outcome_t *out)
{
    proxy_log_events(p->px);
    switch (act) {
    case SCHED_RETRY:
    case SCHED_REFRESH: /* token refresh comes with the OAuth work; the pin retries once */
        if (p->req && !p->sr.committed) {
            schedule_attempt(p);
            return;
        }
        break;
    case SCHED_GIVE_UP:
        give_up(p, out);
        if (p->ticket.queued) return;
        break;
    case SCHED_RELAY:
    case SCHED_PASS:
        break;
    }
    preq_maybe_free(p);
}

/* The attempt failed without a usable response. */
static void attempt_failed(preq_t *p, sched_fail_kind_t kind, const char *code)
{
    sched_outcome_t out;
    memset(&out, 0, sizeof out);
    if (!p->leased) {
        preq_maybe_free(p);
        return;
    }
    p->leased = false;
    p->net_code = code;
    sched_action_t act =
        sched_on_failure(&p->px->sched, p->idx, &p->sr, kind, code, clock_now_ms(), &out);
    if (kind == SCHED_FAIL_MIDSTREAM) {
        proxy_log_events(p->px);
        if (p->mode == RELAY_SSE && !p->echo_done) p->echo_done = true;
        client_error(p, out.status ? out.status : 503,
                     out.error_type ? out.error_type : "connection_unavailable", out.message, 0);
        preq_maybe_free(p);
        return;
    }
    follow(p, act, &out);
}

/* ---- upstream callbacks ------------------------------------------------------------------ */

static void store_head(preq_t *p, const http_header_t *h, size_t n)
{
    buf_reset(&p->uhead);
    p->uhead_n = 0;
    for (size_t i = 0; i < n && i < MAX_UPSTREAM_HEADERS; i++)
        if (http_headers_pack(&p->uhead, h[i].name, strlen(h[i].name), h[i].value,
                              strlen(h[i].value)) == 0)
            p->uhead_n++;
}

/* Hands the stored head (and the parsed error, if any) to sched. */
static sched_action_t judge(preq_t *p, const char *etype, const char *emsg, sched_outcome_t *out)
{
    http_header_t hv[MAX_UPSTREAM_HEADERS];
    quota_header_t qh[MAX_UPSTREAM_HEADERS];
    size_t n = stored_head(p, hv);
    for (size_t i = 0; i < n; i++) {
        qh[i].name = hv[i].name;
        qh[i].value = hv[i].value;
    }
    sched_response_t r = {.status = p->status,
                          .headers = qh,
                          .n_headers = n,
                          .error_type = etype,
                          .error_message = emsg};
    memset(out, 0, sizeof *out);
    sched_action_t act = sched_on_response(&p->px->sched, p->idx, &p->sr, &r, clock_now_ms(), out);
    if (act == SCHED_RETRY || act == SCHED_REFRESH || act == SCHED_GIVE_UP) p->leased = false;
    return act;
}

static void on_up_head(upstream_req_t *u, int status, const http_header_t *h, size_t n, void *ud)
{
    preq_t *p = ud;
    p->status = status;
    store_head(p, h, n);
    if (p->log) reqlog_response(p->log, status, h, n);
    if (status >= 400) {
        /* Read the error body first: a 429's message decides its scope (§6.3). */
        p->mode = RELAY_ERROR;
        return;
    }
    sched_outcome_t out;
    sched_action_t act = judge(p, NULL, NULL, &out);
    proxy_log_events(p->px);
    if (act != SCHED_RELAY && act != SCHED_PASS) {
        upstream_req_cancel(u);
        p->up = NULL;
        follow(p, act, &out);
        return;
    }
    if (!p->req) return;
    set_state(p, PR_RELAY);
    const char *ctype = "";
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(h[i].name, "content-type") == 0) ctype = h[i].value;
    if (p->hb_head && !strstr(ctype, "text/event-stream")) {
        /* Our heartbeat already promised a stream: say what happened in-band (§3.7). */
        char msg[160];
        snprintf(msg, sizeof msg,
                 "Upstream returned a non-streaming %d response for a streaming request", status);
        upstream_req_cancel(u);
        p->up = NULL;
        hb_stop(p);
        lease_release(p);
        p->mode = RELAY_SSE;
        client_error(p, 502, "api_error", msg, 0);
        preq_maybe_free(p);
        return;
    }
    if (strstr(ctype, "text/event-stream")) {
        /* The head waits for the first event: a stream that stalls before it can still fail
         * over (§13 scenario 37). */
        p->mode = RELAY_SSE;
        p->echo_done = p->model == NULL;
    } else if (strstr(ctype, "json") && p->model) {
        p->mode = RELAY_JSON; /* the head waits for the body: its length changes */
    } else {
        p->mode = RELAY_RAW;
        send_head(p, -1);
    }
}

/* Sends the SSE bytes held for the model echo, rewritten if the model was found. */
static void flush_echo(preq_t *p, bool force)
{
    /* Wait for a complete event that names a model, unless the hold is full or it ends. */
    const char *end = NULL;
    for (size_t i = 0; i + 1 < p->hold.len; i++) {
        if (p->hold.data[i] == '\n' && p->hold.data[i + 1] == '\n') {
            end = p->hold.data + i + 2;
            if (memmem(p->hold.data, (size_t)(end - p->hold.data), "\"model\"", 7)) break;
            end = NULL;
        }
    }
    if (!end && !force && p->hold.len < ECHO_HOLD_MAX) return;
    /* The unfinished event at the tail stays held (see relay_events). */
    size_t keep = sse_buffered(&p->sse) < p->hold.len ? sse_buffered(&p->sse) : p->hold.len;
    size_t ev = end ? (size_t)(end - p->hold.data) : 0;
    if (keep > p->hold.len - ev) keep = p->hold.len - ev;
    buf_t out;
    buf_init(&out, 0);
    if (end) proxy_model_echo(p->hold.data, ev, p->model, &out);
    buf_append(&out, p->hold.data + ev, p->hold.len - ev - keep);
    p->echo_done = true;
    buf_consume(&p->hold, p->hold.len - keep);
    client_write(p, out.data, out.len);
    buf_free(&out);
}

/* Forwards whole events only: the bytes of an unfinished event wait in p->hold until its
 * blank line arrives, so a stream cut mid-event ends with a clean error frame the client can
 * parse (§3.7 truncation sentinel) instead of the sentinel glued to half an event. */
static void relay_events(preq_t *p, const char *data, size_t n)
{
    size_t total = p->hold.len + n;
    size_t keep = sse_buffered(&p->sse) < total ? sse_buffered(&p->sse) : total;
    size_t send = total - keep;
    if (p->hold.len == 0) {
        client_write(p, data, send);
        buf_append(&p->hold, data + send, n - send);
        return;
    }
    buf_append(&p->hold, data, n);
    client_write(p, p->hold.data, send);
    buf_consume(&p->hold, send);
}

static void on_up_body(upstream_req_t *u, const char *data, size_t n, void *ud)
{
    preq_t *p = ud;
    if (p->log) reqlog_body(p->log, data, n);
    if (p->mode == RELAY_ERROR) {
        if (p->hold.len < ERROR_BODY_MAX)
            buf_append(&p->hold, data,
                       n < ERROR_BODY_MAX - p->hold.len ? n : ERROR_BODY_MAX - p->hold.len);
        return;
    }
    if (!p->req) return;
    switch (p->mode) {
    case RELAY_SSE:
        hb_stop(p);
        send_head(p, -1);
        sse_feed(&p->sse, data, n, usage_event, p);
        if (!p->echo_done) {
            buf_append(&p->hold, data, n);
            flush_echo(p, false);
        } else {
            relay_events(p, data, n);
        }
        break;
    case RELAY_JSON:
        if (p->hold.len + n <= JSON_BUFFER_MAX) {
            buf_append(&p->hold, data, n);
            break;
        }
        /* Too big to rewrite: relay what we have and the rest as is. */
        p->mode = RELAY_RAW;
        send_head(p, -1);
        client_write(p, p->hold.data, p->hold.len);
        buf_reset(&p->hold);
        client_write(p, data, n);
        break;
    case RELAY_RAW:
    case RELAY_ERROR:
        client_write(p, data, n);
        break;
    }
}

/* Sends the buffered JSON body with the requested model echoed (§3.7, §13 scenario 16). */
static void finish_json(preq_t *p)
{
    buf_t out;
    buf_init(&out, 0);
    const char *v;
    size_t vn;
    const char *body = p->hold.data ? p->hold.data : "";
    if (jscan_get(body, p->hold.len, "usage", &v, &vn) == 0) read_usage(p, v, vn, true, true);
    if (jscan_get(body, p->hold.len, "model", &v, &vn) == 0 && vn >= 2 && v[0] == '"') {
        size_t off = (size_t)(v - body);
        buf_append(&out, body, off + 1);
        json_t *js = json_string(p->model);
        char *enc = json_dumps(js, JSON_ENCODE_ANY);
        /* enc is "\"model\"": keep what is between the quotes. */
        buf_append(&out, enc + 1, strlen(enc) - 2);
        free(enc);
        json_decref(js);
        buf_append(&out, v + vn - 1, p->hold.len - off - vn + 1);
    } else {
        buf_append(&out, body, p->hold.len);
    }
    send_head(p, (int64_t)out.len);
    client_write(p, out.data, out.len);
    buf_free(&out);
}

/* The status ≥ 400 answer is complete: parse its error and let sched decide (§6.2). */
static void finish_error(preq_t *p)
{
    char etype[64] = "", emsg[512] = "";
    const char *body = p->hold.data ? p->hold.data : "";
    const char *e, *v;
    size_t en, vn;
    const char *obj = body;
    size_t on = p->hold.len;
    if (jscan_get(body, p->hold.len, "error", &e, &en) == 0 && en && e[0] == '{') {
        obj = e;
        on = en;
    }
    buf_t tmp;
    buf_init(&tmp, 4096);
    if (jscan_get(obj, on, "type", &v, &vn) == 0 && jscan_string(v, vn, &tmp) == 0)
        snprintf(etype, sizeof etype, "%s", tmp.data ? tmp.data : "");
    buf_reset(&tmp);
    if (jscan_get(obj, on, "message", &v, &vn) == 0 && jscan_string(v, vn, &tmp) == 0)
        snprintf(emsg, sizeof emsg, "%s", tmp.data ? tmp.data : "");
    buf_free(&tmp);
    sched_outcome_t out;
    sched_action_t act = judge(p, etype[0] ? etype : NULL, emsg[0] ? emsg : NULL, &out);
    if ((act == SCHED_RELAY || act == SCHED_PASS) && p->hb_head) {
        /* The client already has our SSE head: the upstream's error goes in-band. */
        hb_stop(p);
        lease_complete(p);
        client_error(p, p->status, etype[0] ? etype : "api_error",
                     emsg[0] ? emsg : "Upstream error", 0);
        preq_maybe_free(p);
        return;
    }
    if (act == SCHED_RELAY || act == SCHED_PASS) {
        /* Passed through unchanged (§13 scenario 36): the body as the upstream sent it. */
        send_head(p, (int64_t)p->hold.len);
        client_write(p, p->hold.data, p->hold.len);
        client_end(p);
        lease_complete(p);
        preq_maybe_free(p);
        return;
    }
    follow(p, act, &out);
}

static const char TRUNCATED[] =
    "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":"
    "\"Upstream closed the stream before the response completed. Retry the message.\"}}\n\n";

static const char *err_code(const char *err)
{
    if (err == upstream_err_connect) return "ECONNREFUSED";
    if (err == upstream_err_ttfb) return "UPSTREAM_TTFB";
    if (err == upstream_err_idle) return "UPSTREAM_IDLE";
    return "ECONNRESET";
}

static void on_up_done(upstream_req_t *u, const char *err, const char *detail, void *ud)
{
    preq_t *p = ud;
    p->up = NULL;
    if (err) {
        log_msg("Account \"%s\": %s%s%s", cur_acct(p) ? cur_acct(p)->name : "-", err,
                detail && *detail ? ": " : "", detail ? detail : "");
        if (p->log) reqlog_error(p->log, "ERROR", detail && *detail ? detail : err);
        /* Before the first byte to the client it is a network failure (failover); after,
         * the stream broke under the client (§6.5). */
        attempt_failed(p, p->sr.committed ? SCHED_FAIL_MIDSTREAM : SCHED_FAIL_NETWORK,
                       err_code(err));
        return;
    }
    if (p->mode == RELAY_ERROR) {
        finish_error(p);
        return;
    }
    if (!p->req) {
        lease_release(p);
        preq_maybe_free(p);
        return;
    }
    switch (p->mode) {
    case RELAY_SSE:
        send_head(p, -1);
        if (!p->echo_done) flush_echo(p, true);
        /* The held tail is either an unfinished event (replaced by the sentinel) or
         * whitespace (sent as is). */
        if (sse_partial(&p->sse)) {
            buf_reset(&p->hold);
            client_write(p, TRUNCATED, sizeof TRUNCATED - 1);
        } else {
            client_write(p, p->hold.data, p->hold.len);
            buf_reset(&p->hold);
        }
        break;
    case RELAY_JSON:
        finish_json(p);
        break;
    case RELAY_RAW:
    case RELAY_ERROR:
        send_head(p, -1);
        break;
    }
    hb_stop(p);
    client_end(p);
    lease_complete(p);
    preq_maybe_free(p);
}

static const upstream_callbacks_t UPSTREAM_CB = {on_up_head, on_up_body, on_up_done};

/* ---- selection and sending ------------------------------------------------------------- */

/* No account can take the request now (§6.10 "no route"). The queue will hold these. */
static void no_route(preq_t *p, const sched_pick_t *pick)
{
    sched_queue_cause_t qc = p->net_code ? SCHED_QUEUE_NETWORK : queue_cause_of(pick->cause);
    if (try_hold(p, qc, pick->cause, pick->retry_ms, "No account can take this request now"))
        return;
    if (p->net_code) {
        /* Every account we tried dropped the connection: say so, not "quota". */
        sched_outcome_t out;
        memset(&out, 0, sizeof out);
        char msg[512];
        snprintf(msg, sizeof msg,
                 "The connection to Claude dropped on every account maxpool tried (%s). This "
                 "is not a quota problem, and it is usually brief — sending the message again "
                 "normally works. If it keeps happening, the link between this machine and "
                 "Anthropic is unstable.",
                 p->net_code);
        client_error(p, 503, "connection_unavailable", msg, 0);
        return;
    }
    char msg[512];
    sched_no_route_message(&p->px->sched, pick->retry_ms, pick->cause, msg, sizeof msg);
    int64_t ra = pick->retry_ms == SCHED_NEVER ? 60 : (pick->retry_ms + 999) / 1000;
    if (ra < 1) ra = 1;
    bool quota = queue_cause_of(pick->cause) == SCHED_QUEUE_QUOTA && pick->retry_ms != SCHED_NEVER;
    client_error_ex(p, 429, "rate_limit_error", msg, (int)ra,
                    quota ? clock_now_ms() + pick->retry_ms : 0);
}

static void attempt(preq_t *p)
{
    proxy_t *px = p->px;
    if (!p->req) {
        preq_maybe_free(p);
        return;
    }
    set_state(p, PR_SELECT);
    /* A new attempt starts clean: nothing of the last one's response survives. */
    p->mode = RELAY_RAW;
    p->status = 0;
    p->head_sent = false;
    p->echo_done = false;
    buf_reset(&p->hold);
    buf_reset(&p->uhead);
    p->uhead_n = 0;
    sse_free(&p->sse);
    sse_init(&p->sse, 1u << 20);
    p->input_tokens = p->output_tokens = 0;

    sched_pick_t pick;
    sched_select(&px->sched, &p->sr, clock_now_ms(), &pick);
    proxy_log_events(px);
    if (pick.idx < 0) {
        no_route(p, &pick);
        if (!p->ticket.queued) {
            hb_stop(p);
            preq_maybe_free(p);
        }
        return;
    }
    p->idx = pick.idx;
    p->leased = true;
    account_t *a = &px->sched.accts[pick.idx];
    http_req_t *req = p->req;
    http_header_t *hv = xcalloc(req->nheaders + 1, sizeof *hv);
    size_t k = proxy_headers_upstream(req->headers, req->nheaders, a, hv, &p->cred);
    free(p->url);
    const char *base = a->upstream ? a->upstream : px->s.upstream;
    size_t bl = strlen(base);
    while (bl > 0 && base[bl - 1] == '/')
        bl--;
    p->url = xasprintf("%.*s%s", (int)bl, base, req->target);
    upstream_opts_t o = {.ttfb_ms = px->s.ttfb_ms, .idle_ms = px->s.idle_ms};
    if (p->log)
        reqlog_request(p->log, a->name, p->sr.attempt, req->method, p->url, hv, k, req->body.data,
                       req->body.len);
    set_state(p, PR_WAIT_HEAD);
    p->up = upstream_start(px->up, req->method, p->url, hv, k, req->body.data, req->body.len, &o,
                           &UPSTREAM_CB, p);
    free(hv);
}

/* A header value as a new trimmed string, or NULL when absent or empty. */
static char *header_dup(const http_req_t *req, const char *name, const char *legacy, bool lower)
{
    const char *v = http_req_header(req, name);
    if (!v && legacy) v = http_req_header(req, legacy);
    if (!v) return NULL;
    while (*v == ' ' || *v == '\t')
        v++;
    size_t n = strlen(v);
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    if (n == 0) return NULL;
    char *s = xstrndup(v, n);
    if (lower)
        for (char *c = s; *c; c++)
            if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
    return s;
}

/* Describes the request for sched (§3.6) without building a JSON tree. */
static void describe(preq_t *p, const http_req_t *req)
{
    sched_request_init(&p->sr);
    const char *body = req->body.data ? req->body.data : "";
    size_t n = req->body.len;
    const char *v;
    size_t vn;
    int64_t max_tokens = 0;
    bool json = n > 0 && jscan_validate(body, n) == 0;
    if (json) {
        if (jscan_get(body, n, "model", &v, &vn) == 0 && v[0] == '"') {
            buf_t m;
            buf_init(&m, 4096);
            if (jscan_string(v, vn, &m) == 0) p->model = buf_steal(&m, NULL);
            buf_free(&m);
        }
        if (jscan_get(body, n, "stream", &v, &vn) == 0) p->sr.stream = jscan_truthy(v, vn);
        if (jscan_get(body, n, "max_tokens", &v, &vn) == 0) jscan_int64(v, vn, &max_tokens);
    }
    bool thinking = json && (jscan_get(body, n, "thinking", &v, &vn) == 0 ||
                             jscan_get(body, n, "effort", &v, &vn) == 0);
    p->sr.model = p->model;
    p->sr.weight = sched_weight(n, max_tokens, thinking);
    p->sr.body_bytes = n;
    p->sr.body_json = json;
    p->sr.signed_thinking = thinking || (json && (jscan_has_type(body, n, "thinking") ||
                                                  jscan_has_type(body, n, "redacted_thinking")));
    p->sr.is_count_tokens = strncmp(req->path, "/v1/messages/count_tokens", 25) == 0;
    p->session = header_dup(req, "x-maxpool-session", "x-teamclaude-session", false);
    p->profile = header_dup(req, "x-maxpool-profile", "x-teamclaude-profile", true);
    p->sr.session = p->session;
    p->sr.profile = p->profile;
}

void proxy_request_begin(proxy_t *px, http_req_t *req)
{
    preq_t *p = xcalloc(1, sizeof *p);
    p->px = px;
    p->req = req;
    p->id = ++px->next_id;
    p->idx = -1;
    p->started_ms = clock_mono_ms();
    p->body_len = req->body.len;
    px->active++;
    buf_init(&p->cred, 0);
    buf_init(&p->hold, 0);
    buf_init(&p->uhead, 0);
    sse_init(&p->sse, 1u << 20);
    uv_timer_init(px->loop, &p->retry);
    uv_timer_init(px->loop, &p->hb);
    p->retry.data = p->hb.data = p;
    p->open_handles = 2;
    http_req_on_close(req, on_client_close, p);
    if (px->s.log_dir) {
        p->log = xcalloc(1, sizeof *p->log);
        buf_init(&p->log->text, 0);
        buf_init(&p->log->stream, 0);
    }
    describe(p, req);
    /* §3.4: a client that tolerates long silences may say so; it widens stream holds. */
    const char *tol = http_req_header(req, "x-maxpool-client-stream-idle-ms");
    if (tol) {
        long long v = strtoll(tol, NULL, 10);
        if (v > 300000) p->tolerance_ms = v * 8 / 10;
    }
    /* Stream grace (§6.8): no upstream head within streamForwardGraceMs → commit and ping. */
    if (p->sr.stream) uv_timer_start(&p->hb, hb_cb, (uint64_t)px->qopts.stream_grace_ms, 0);
    attempt(p);
}
