/* proxy/request — one proxied request from admission to the last byte (§3.4–§3.7).
 *
 * States: SELECT (pick an account) → WAIT_HEAD (upstream transfer started) → RELAY (the
 * client response has started) → DONE. Failover happens only in WAIT_HEAD, while nothing
 * has been written to the client: the attempt is cancelled and the next account tried.
 * Ownership: the preq lives until both the upstream transfer is over and the client
 * response ended (or the client left); preq_maybe_free() is the one place it is freed. */
#include "core/clock.h"
#include "core/jscan.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "http/sse.h"
#include "proxy/headers.h"
#include "proxy/internal.h"
#include "proxy/reqlog.h"

#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ECHO_HOLD_MAX        (64 * 1024) /* §3.7: hold up to 64 KiB waiting for the model */
#define JSON_BUFFER_MAX      (64u << 20) /* a non-streamed body larger than this is relayed as is */
#define MAX_UPSTREAM_HEADERS 256

typedef enum preq_state { PR_SELECT, PR_WAIT_HEAD, PR_RELAY, PR_DONE } preq_state_t;

static const char *const STATE_NAMES[] = {"select", "wait_head", "relay", "done"};

typedef enum relay_mode {
    RELAY_RAW,  /* pass bytes through as they come */
    RELAY_SSE,  /* event stream: usage on the side, model echo on the first event */
    RELAY_JSON, /* buffer, echo the model, send with a length */
} relay_mode_t;

typedef struct preq {
    proxy_t *px;
    http_req_t *req; /* NULL once the client left or the response ended */
    upstream_req_t *up;
    preq_state_t state;
    uint64_t id;
    int acct; /* index of the account serving the current attempt, or -1 */
    account_mask_t tried;
    int attempts;
    char *model; /* requested model, or NULL */
    bool stream;
    size_t body_len; /* counted in px->buffered_bytes */
    buf_t cred;      /* storage for the credential header of the current attempt */
    char *url;
    int status;
    relay_mode_t mode;
    buf_t hold;  /* SSE bytes held for model echo, or the buffered JSON body */
    buf_t rhead; /* RELAY_JSON: the filtered response head, "name\0value\0" pairs */
    size_t rhead_n;
    bool echo_done;
    bool freeing;
    sse_parser_t sse;
    uint64_t input_tokens, output_tokens;
    int64_t started_ms;
    uv_timer_t retry;     /* next attempt on a clean stack (never from inside libcurl) */
    reqlog_t *log;        /* --log-to record, or NULL */
    const char *last_err; /* upstream_err_* of the last failed attempt */
    char last_detail[128];
} preq_t;

static void attempt(preq_t *p);

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
    return p->acct >= 0 ? &p->px->accts[p->acct] : NULL;
}

/* Gives the account back: one in-flight slot fewer. */
static void release_acct(preq_t *p, bool ok)
{
    account_t *a = cur_acct(p);
    if (!a) return;
    a->in_flight--;
    if (ok) {
        a->completed++;
        a->consecutive_failures = 0;
    } else {
        a->failed++;
    }
    a->input_tokens += p->input_tokens;
    a->output_tokens += p->output_tokens;
    a->last_response_ms = clock_mono_ms() - p->started_ms;
    p->acct = -1;
}

static void preq_closed(uv_handle_t *h)
{
    free(h->data);
}

static void preq_maybe_free(preq_t *p)
{
    if (p->req || p->up || p->freeing) return;
    p->freeing = true;
    release_acct(p, p->status > 0 && p->status < 400);
    p->px->buffered_bytes -= p->body_len;
    free(p->model);
    free(p->url);
    buf_free(&p->cred);
    buf_free(&p->hold);
    buf_free(&p->rhead);
    sse_free(&p->sse);
    if (p->log) {
        if (p->log->text.len)
            reqlog_flush(p->log, p->px->loop, p->px->s.log_dir, p->id, p->mode == RELAY_SSE);
        reqlog_free(p->log);
        free(p->log);
    }
    proxy_t *px = p->px;
    uv_close((uv_handle_t *)&p->retry, preq_closed);
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

/* An error for the client: JSON before the response started, an SSE error event after. */
static void client_error(preq_t *p, int status, const char *type, const char *message)
{
    if (!p->req) return;
    if (!http_resp_started(p->req)) {
        http_resp_error(p->req, status, type, message);
        p->req = NULL;
        set_state(p, PR_DONE);
        return;
    }
    if (p->mode == RELAY_SSE) {
        buf_t b;
        buf_init(&b, 0);
        json_t *o = json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error", "type", type,
                              "message", message);
        char *j = json_dumps(o, JSON_COMPACT);
        buf_printf(&b, "event: error\ndata: %s\n\n", j);
        free(j);
        json_decref(o);
        client_write(p, b.data, b.len);
        buf_free(&b);
        client_end(p);
        return;
    }
    /* A plain body cannot carry an error after its head: cut the connection instead. */
    http_resp_abort(p->req);
    p->req = NULL;
    set_state(p, PR_DONE);
}

static void on_client_close(http_req_t *req, void *ud)
{
    preq_t *p = ud;
    p->req = NULL;
    if (p->up) {
        /* Nobody will read the rest: stop the transfer and free the account now. */
        upstream_req_cancel(p->up);
        p->up = NULL;
    }
    log_msg("Client left on \"%s\" (%s)", cur_acct(p) ? cur_acct(p)->name : "-",
            p->state == PR_RELAY ? "mid-response — output already sent"
                                 : "still waiting, nothing sent");
    set_state(p, PR_DONE);
    preq_maybe_free(p);
}

/* ---- usage on the side (§3.7) ---------------------------------------------------------- */

static void usage_event(void *ud, const sse_event_t *ev)
{
    preq_t *p = ud;
    const char *v;
    size_t vn;
    if (!ev->data_len) return;
    if (ev->event_len == 13 && memcmp(ev->event, "message_start", 13) == 0) {
        const char *msg;
        size_t mn;
        if (jscan_get(ev->data, ev->data_len, "message", &msg, &mn) == 0 &&
            jscan_get(msg, mn, "usage", &v, &vn) == 0) {
            const char *t;
            size_t tn;
            int64_t x;
            if (jscan_get(v, vn, "input_tokens", &t, &tn) == 0 && jscan_int64(t, tn, &x) == 0)
                p->input_tokens = (uint64_t)x;
        }
    } else if (ev->event_len == 13 && memcmp(ev->event, "message_delta", 13) == 0) {
        if (jscan_get(ev->data, ev->data_len, "usage", &v, &vn) == 0) {
            const char *t;
            size_t tn;
            int64_t x;
            /* Cumulative: keep the running maximum. */
            if (jscan_get(v, vn, "output_tokens", &t, &tn) == 0 && jscan_int64(t, tn, &x) == 0 &&
                (uint64_t)x > p->output_tokens)
                p->output_tokens = (uint64_t)x;
        }
    }
}

/* ---- upstream callbacks ------------------------------------------------------------------ */

static bool failover_status(int status)
{
    return status == 429 || status == 529 || status == 500 || status == 502 || status == 503 ||
           status == 504;
}

static bool can_fail_over(preq_t *p)
{
    proxy_t *px = p->px;
    int budget = px->s.max_attempts > 0 ? px->s.max_attempts : (int)px->naccts;
    if (p->attempts >= budget) return false;
    if (p->body_len > px->s.retry_buffer_bytes) return false;
    return p->req && !http_resp_started(p->req);
}

/* Marks the account of a failed attempt per §5.11 (simplified until the scheduler lands). */
static void penalise(preq_t *p, int status, int retry_after_s)
{
    account_t *a = cur_acct(p);
    if (!a) return;
    int64_t now = clock_now_ms();
    a->last_status = status;
    if (status == 429) {
        int s = retry_after_s > 0 ? retry_after_s : 60;
        a->cooldown_until_ms = now + (int64_t)s * 1000;
        log_msg("Account \"%s\" rate limited for %ds", a->name, s);
    } else if (status == 529) {
        int s = retry_after_s > 0 && retry_after_s < 30 ? retry_after_s : 30;
        a->cooldown_until_ms = now + (int64_t)s * 1000;
        log_msg("Account \"%s\" overloaded (529); trying another account, back in %ds", a->name, s);
    } else if (status >= 500) {
        a->consecutive_failures++;
        int f = a->consecutive_failures - 1;
        int64_t ms = 30000LL << (f > 5 ? 5 : f);
        if (ms > 900000) ms = 900000;
        a->cooldown_until_ms = now + ms;
        log_msg("Account \"%s\" cooling down for %llds after HTTP %d", a->name,
                (long long)(ms / 1000), status);
    } else {
        a->cooldown_until_ms = now + 5000; /* network class (§5.11) */
    }
}

static void retry_cb(uv_timer_t *t)
{
    preq_t *p = t->data;
    if (!p->req) {
        preq_maybe_free(p);
        return;
    }
    attempt(p);
}

static void on_up_head(upstream_req_t *u, int status, const http_header_t *h, size_t n, void *ud)
{
    preq_t *p = ud;
    account_t *a = cur_acct(p);
    int64_t now = clock_now_ms();
    int retry_after = 0;
    if (a) {
        /* Every response teaches us about the account, whatever its status (§4.1). */
        quota_header_t qh[MAX_UPSTREAM_HEADERS];
        size_t qn = n < MAX_UPSTREAM_HEADERS ? n : MAX_UPSTREAM_HEADERS;
        for (size_t i = 0; i < qn; i++) {
            qh[i].name = h[i].name;
            qh[i].value = h[i].value;
            if (strcasecmp(h[i].name, "retry-after") == 0)
                retry_after = quota_parse_retry_after(h[i].value, now);
        }
        quota_apply_headers(&a->quota, qh, qn, now);
        a->last_status = status;
        a->last_used_ms = now;
    }
    p->status = status;
    if (p->log) reqlog_response(p->log, status, h, n);
    /* The account is marked whether or not another one can take over: the last account
     * of a request that answered 429 is as throttled as the first (§6.2). */
    if (failover_status(status)) penalise(p, status, retry_after);
    if (failover_status(status) && can_fail_over(p)) {
        upstream_req_cancel(u);
        p->up = NULL;
        account_mask_add(&p->tried, (size_t)p->acct);
        release_acct(p, false);
        /* We are inside libcurl's header callback: start the next attempt on a new turn. */
        set_state(p, PR_SELECT);
        uv_timer_start(&p->retry, retry_cb, 0, 0);
        return;
    }
    if (!p->req) return;
    set_state(p, PR_RELAY);

    http_header_t out[MAX_UPSTREAM_HEADERS];
    size_t k =
        proxy_headers_downstream(h, n < MAX_UPSTREAM_HEADERS ? n : MAX_UPSTREAM_HEADERS, out);
    const char *ctype = "";
    for (size_t i = 0; i < k; i++)
        if (strcasecmp(out[i].name, "content-type") == 0) ctype = out[i].value;
    if (strstr(ctype, "text/event-stream")) {
        p->mode = RELAY_SSE;
        p->echo_done = p->model == NULL;
    } else if (strstr(ctype, "json") && p->model) {
        p->mode = RELAY_JSON;
    } else {
        p->mode = RELAY_RAW;
    }
    if (p->mode == RELAY_JSON) {
        /* The head waits for the body: its length changes with the echoed model. */
        for (size_t i = 0; i < k; i++) {
            buf_append(&p->rhead, out[i].name, strlen(out[i].name) + 1);
            buf_append(&p->rhead, out[i].value, strlen(out[i].value) + 1);
        }
        p->rhead_n = k;
        return;
    }
    http_resp_start(p->req, status, out, k, -1);
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
    size_t keep = p->sse.pending.len < p->hold.len ? p->sse.pending.len : p->hold.len;
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
    size_t keep = p->sse.pending.len < total ? p->sse.pending.len : total;
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
    if (!p->req) return;
    if (p->log) reqlog_body(p->log, data, n);
    switch (p->mode) {
    case RELAY_SSE:
        sse_feed(&p->sse, data, n, usage_event, p);
        if (!p->echo_done) {
            buf_append(&p->hold, data, n);
            flush_echo(p, false);
        } else {
            relay_events(p, data, n);
        }
        break;
    case RELAY_JSON:
        if (p->hold.len + n > JSON_BUFFER_MAX) {
            /* Too big to rewrite: fall back to relaying what we have and the rest. */
            p->mode = RELAY_RAW;
        } else {
            buf_append(&p->hold, data, n);
            break;
        }
        /* fall through */
    case RELAY_RAW:
        if (!http_resp_started(p->req)) {
            http_header_t hv[MAX_UPSTREAM_HEADERS];
            const char *s = p->rhead.data;
            for (size_t i = 0; i < p->rhead_n; i++) {
                hv[i].name = s;
                s += strlen(s) + 1;
                hv[i].value = s;
                s += strlen(s) + 1;
            }
            http_resp_start(p->req, p->status, hv, p->rhead_n, -1);
            client_write(p, p->hold.data, p->hold.len);
            buf_reset(&p->hold);
        }
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
    /* Usage of a non-streamed answer sits in its top-level "usage" object. */
    if (p->hold.len && jscan_get(p->hold.data, p->hold.len, "usage", &v, &vn) == 0) {
        const char *t;
        size_t tn;
        int64_t x;
        if (jscan_get(v, vn, "input_tokens", &t, &tn) == 0 && jscan_int64(t, tn, &x) == 0)
            p->input_tokens = (uint64_t)x;
        if (jscan_get(v, vn, "output_tokens", &t, &tn) == 0 && jscan_int64(t, tn, &x) == 0)
            p->output_tokens = (uint64_t)x;
    }
    if (jscan_get(p->hold.data ? p->hold.data : "", p->hold.len, "model", &v, &vn) == 0 &&
        vn >= 2 && v[0] == '"') {
        size_t off = (size_t)(v - p->hold.data);
        buf_append(&out, p->hold.data, off + 1);
        json_t *js = json_string(p->model);
        char *enc = json_dumps(js, JSON_ENCODE_ANY);
        /* enc is "\"model\"": keep what is between the quotes. */
        buf_append(&out, enc + 1, strlen(enc) - 2);
        free(enc);
        json_decref(js);
        buf_append(&out, v + vn - 1, p->hold.len - off - vn + 1);
    } else {
        buf_append(&out, p->hold.data ? p->hold.data : "", p->hold.len);
    }
    http_header_t hv[MAX_UPSTREAM_HEADERS];
    const char *s = p->rhead.data;
    for (size_t i = 0; i < p->rhead_n; i++) {
        hv[i].name = s;
        s += strlen(s) + 1;
        hv[i].value = s;
        s += strlen(s) + 1;
    }
    http_resp_start(p->req, p->status, hv, p->rhead_n, (int64_t)out.len);
    client_write(p, out.data, out.len);
    buf_free(&out);
}

static const char TRUNCATED[] =
    "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":"
    "\"Upstream closed the stream before the response completed. Retry the message.\"}}\n\n";

static const char CONNECTION_MSG[] =
    "The connection to Claude dropped on every account maxpool tried (%s). This is not a quota "
    "problem, and it is usually brief — sending the message again normally works. If it keeps "
    "happening, the link between this machine and Anthropic is unstable.";

static const char *err_code(const char *err)
{
    if (err == upstream_err_connect) return "ECONNREFUSED";
    if (err == upstream_err_ttfb) return "UPSTREAM_TTFB";
    if (err == upstream_err_idle) return "UPSTREAM_IDLE";
    if (err == upstream_err_closed) return "ECONNRESET";
    return "ECONNRESET";
}

static void on_up_done(upstream_req_t *u, const char *err, const char *detail, void *ud)
{
    preq_t *p = ud;
    p->up = NULL;
    if (err && p->state == PR_WAIT_HEAD) {
        /* Nothing reached the client: a network-class failure fails over (§6.2). */
        p->last_err = err;
        snprintf(p->last_detail, sizeof p->last_detail, "%s", detail ? detail : "");
        log_msg("Account \"%s\": %s (%s)", cur_acct(p) ? cur_acct(p)->name : "-", err,
                p->last_detail);
        if (p->log) reqlog_error(p->log, "ERROR", p->last_detail[0] ? p->last_detail : err);
        penalise(p, 0, 0);
        if (cur_acct(p)) account_mask_add(&p->tried, (size_t)p->acct);
        release_acct(p, false);
        if (p->req && can_fail_over(p)) {
            attempt(p);
            return;
        }
        char msg[512];
        snprintf(msg, sizeof msg, CONNECTION_MSG, err_code(err));
        client_error(p, 503, "connection_unavailable", msg);
        preq_maybe_free(p);
        return;
    }
    if (!p->req) {
        preq_maybe_free(p);
        return;
    }
    if (err) {
        /* Mid-stream failure (§6.5): cool the account, tell the client in-band. */
        penalise(p, 0, 0);
        p->status = 0;
        if (p->mode == RELAY_SSE && !p->echo_done) flush_echo(p, true);
        char msg[512];
        snprintf(msg, sizeof msg, CONNECTION_MSG, err_code(err));
        client_error(p, 503, "connection_unavailable", msg);
        preq_maybe_free(p);
        return;
    }
    switch (p->mode) {
    case RELAY_SSE:
        if (!p->echo_done) flush_echo(p, true);
        /* The held tail is either an unfinished event (replaced by the sentinel) or
         * whitespace that belongs to the stream. */
        if (sse_has_partial(&p->sse)) client_write(p, TRUNCATED, sizeof TRUNCATED - 1);
        else
            client_write(p, p->hold.data, p->hold.len);
        break;
    case RELAY_JSON:
        finish_json(p);
        break;
    case RELAY_RAW:
        if (!http_resp_started(p->req)) http_resp_start(p->req, p->status, NULL, 0, 0);
        break;
    }
    client_end(p);
    preq_maybe_free(p);
}

static const upstream_callbacks_t UPSTREAM_CB = {on_up_head, on_up_body, on_up_done};

/* ---- selection and sending ------------------------------------------------------------- */

static void no_route(preq_t *p)
{
    proxy_t *px = p->px;
    size_t enabled = 0;
    int64_t soonest = 0, now = clock_now_ms();
    for (size_t i = 0; i < px->naccts; i++) {
        account_t *a = &px->accts[i];
        if (!a->enabled) continue;
        enabled++;
        if (a->cooldown_until_ms > now && (!soonest || a->cooldown_until_ms < soonest))
            soonest = a->cooldown_until_ms;
    }
    if (p->last_err) {
        char msg[512];
        snprintf(msg, sizeof msg, CONNECTION_MSG, err_code(p->last_err));
        client_error(p, 503, "connection_unavailable", msg);
        return;
    }
    int64_t wait_s = soonest ? (soonest - now + 999) / 1000 : 60;
    if (wait_s < 1) wait_s = 1;
    char msg[256], ra[24];
    snprintf(msg, sizeof msg,
             "No account can take this request — all %zu Claude account(s) are at their limit. "
             "Retry in ~%llds.",
             enabled, (long long)wait_s);
    snprintf(ra, sizeof ra, "%lld", (long long)wait_s);
    if (!p->req) return;
    http_header_t hv[] = {{"retry-after", ra}};
    json_t *o = json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error", "type", "rate_limit_error",
                          "message", msg);
    char *body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    http_header_t all[] = {hv[0], {"content-type", "application/json"}};
    http_resp_start(p->req, 429, all, 2, (int64_t)strlen(body));
    http_resp_write(p->req, body, strlen(body));
    free(body);
    client_end(p);
}

static void attempt(preq_t *p)
{
    proxy_t *px = p->px;
    set_state(p, PR_SELECT);
    int i = account_select_rotate(px->accts, px->naccts, &px->cursor, &p->tried, clock_now_ms());
    if (i < 0) {
        no_route(p);
        preq_maybe_free(p);
        return;
    }
    p->acct = i;
    p->attempts++;
    px->current = i;
    account_t *a = &px->accts[i];
    a->in_flight++;
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
        reqlog_request(p->log, a->name, p->attempts - 1, req->method, p->url, hv, k, req->body.data,
                       req->body.len);
    set_state(p, PR_WAIT_HEAD);
    p->up = upstream_start(px->up, req->method, p->url, hv, k, req->body.data, req->body.len, &o,
                           &UPSTREAM_CB, p);
    free(hv);
}

void proxy_request_begin(proxy_t *px, http_req_t *req)
{
    preq_t *p = xcalloc(1, sizeof *p);
    p->px = px;
    p->req = req;
    p->id = ++px->next_id;
    p->acct = -1;
    p->started_ms = clock_mono_ms();
    p->body_len = req->body.len;
    px->buffered_bytes += p->body_len;
    px->active++;
    buf_init(&p->cred, 0);
    buf_init(&p->hold, 0);
    buf_init(&p->rhead, 0);
    sse_init(&p->sse, 1u << 20);
    uv_timer_init(px->loop, &p->retry);
    p->retry.data = p;
    http_req_on_close(req, on_client_close, p);
    if (px->s.log_dir) {
        p->log = xcalloc(1, sizeof *p->log);
        buf_init(&p->log->text, 0);
        buf_init(&p->log->stream, 0);
    }

    /* Describe (§3.6): only what routing and the relay need, without building a tree. */
    const char *v;
    size_t vn;
    if (req->body.len && jscan_get(req->body.data, req->body.len, "model", &v, &vn) == 0 &&
        v[0] == '"') {
        buf_t m;
        buf_init(&m, 4096);
        if (jscan_string(v, vn, &m) == 0) p->model = buf_steal(&m, NULL);
        buf_free(&m);
    }
    if (req->body.len && jscan_get(req->body.data, req->body.len, "stream", &v, &vn) == 0)
        p->stream = jscan_truthy(v, vn);
    attempt(p);
}
