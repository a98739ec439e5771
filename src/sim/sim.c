#include "sim/sim.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/crypto.h"
#include "core/jscan.h"
#include "core/xalloc.h"
#include "http/server.h"
#include "sim/script.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define RING_SIZE     256
#define RING_KEEP     (8u * 1024) /* ring entries larger than this are not kept for reuse */
#define LOG_FLUSH_MS  200
#define RESET_POLL_MS 10
#define RATE_LIMIT_MSG                                                                             \
    "This request would exceed your account's rate limit. Please try again later."
#define APIKEY_LIMIT_MSG "Number of request tokens has exceeded your per-minute rate limit"
#define OAUTH_SCOPE                                                                                \
    "user:inference user:profile user:sessions:claude_code user:mcp_servers user:file_upload "     \
    "org:create_api_key"

/* One recent request for /_sim/requests: the fixed part is pre-rendered JSON members. */
typedef struct ring_ent {
    uint64_t rid; /* 0 = empty */
    int status;   /* 0 until answered (or when the connection was reset before headers) */
    const sim_account_t *acct;
    buf_t json; /* "method":…,"target":…,"headers":{…},"bodyBytes":…,"bodySha256":… */
} ring_ent_t;

/* What the handler knows about the request being answered. */
typedef struct rctx {
    uint64_t rid;
    char rid_str[32];
    ring_ent_t *ring; /* NULL for control endpoints */
    sim_account_t *acct;
    bool control;
} rctx_t;

typedef struct sim_job sim_job_t;

struct sim_server {
    uv_loop_t *loop;
    http_server_t *http;
    sim_world_t world;
    uint64_t rid_seq, msg_seq, total_requests;
    buf_t out; /* scratch for bodies answered at once */
    ring_ent_t ring[RING_SIZE];
    uint64_t ring_next;
    FILE *log;
    uv_timer_t log_timer;
    bool log_dirty;
    sim_job_t *jobs; /* responses waiting on a timer or the client */
    bool stopping;
    int handles_open;
    void (*on_closed)(void *ud);
    void *closed_ud;
    bool http_closed;
};

/* A response that cannot be written at once: delays, stalls, resets, truncation. */
typedef enum job_phase { JOB_FIRST_BYTE, JOB_STREAM, JOB_RESETTING } job_phase_t;

struct sim_job {
    sim_server_t *srv;
    sim_job_t *prev, *next;
    http_req_t *req; /* NULL once the request is finished or gone */
    uv_timer_t timer;
    job_phase_t phase;
    int status;
    bool chunked;
    sim_hdrs_t hdrs;
    buf_t body;
    size_t pos;
    int64_t events_sent;
    int64_t delta_delay_ms;
    bool delay_done; /* the pause before the next event has elapsed */
    bool stalled;    /* the stall fault already happened */
    sim_fault_kind_t fault;
    bool has_fault;
    int64_t after_events, stall_ms;
};

/* ---- small helpers ------------------------------------------------------------------------ */

static bool str_has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

static int64_t sim_now(const sim_server_t *s)
{
    return sim_quota_now(&s->world.quota, clock_now_ms());
}

/* Copies h into dst keeping the value pointers inside dst's own store. */
static void hdrs_copy(sim_hdrs_t *dst, const sim_hdrs_t *h)
{
    memcpy(dst, h, sizeof *dst);
    for (size_t i = 0; i < h->n; i++)
        dst->value[i] = dst->store + (h->value[i] - h->store);
}

static size_t hdrs_to_http(const sim_hdrs_t *h, http_header_t *out)
{
    for (size_t i = 0; i < h->n; i++) {
        out[i].name = h->name[i];
        out[i].value = h->value[i];
    }
    return h->n;
}

static void log_line(sim_server_t *s, http_req_t *req, const rctx_t *rc, int status, size_t bytes)
{
    if (!s->log) return;
    char iso[40];
    clock_iso8601(clock_now_ms(), iso, sizeof iso);
    fprintf(s->log, "%s %s %s %s %d %zu\n", iso, req->method, req->target,
            rc->acct ? rc->acct->name : "-", status, bytes);
    s->log_dirty = true;
}

/* Records the status decided for a request (counters, ring, log). */
static void note_status(sim_server_t *s, http_req_t *req, const rctx_t *rc, int status,
                        size_t bytes)
{
    if (rc->acct && !rc->control) {
        sim_quota_count_status(rc->acct, status);
    }
    if (rc->ring && rc->ring->rid == rc->rid) {
        rc->ring->status = status;
        rc->ring->acct = rc->acct;
    }
    log_line(s, req, rc, status, bytes);
}

/* Starts the headers every answer carries: content type and request-id. */
static void hdrs_base(sim_hdrs_t *h, const rctx_t *rc, const char *ctype)
{
    sim_hdrs_init(h);
    if (ctype) sim_hdrs_add(h, "content-type", "%s", ctype);
    sim_hdrs_add(h, "request-id", "%s", rc->rid_str);
}

static void send_now(sim_server_t *s, http_req_t *req, const rctx_t *rc, int status,
                     const sim_hdrs_t *h, const void *body, size_t len, bool chunked)
{
    http_header_t hh[SIM_HDRS_MAX];
    size_t n = hdrs_to_http(h, hh);
    note_status(s, req, rc, status, len);
    http_resp_start(req, status, hh, n, chunked ? -1 : (int64_t)len);
    if (len) http_resp_write(req, body, len);
    http_resp_end(req);
}

static void send_json(sim_server_t *s, http_req_t *req, const rctx_t *rc, int status,
                      const char *body, size_t len)
{
    sim_hdrs_t h;
    hdrs_base(&h, rc, "application/json");
    send_now(s, req, rc, status, &h, body, len, false);
}

static void send_jansson(sim_server_t *s, http_req_t *req, const rctx_t *rc, int status, json_t *j)
{
    char *txt = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(j);
    send_json(s, req, rc, status, txt, strlen(txt));
    free(txt);
}

/* An Anthropic error body, with the account's quota headers when there is an account. */
static void send_error(sim_server_t *s, http_req_t *req, const rctx_t *rc, int status,
                       const char *type, const char *message, int64_t retry_after)
{
    sim_hdrs_t h;
    hdrs_base(&h, rc, "application/json");
    if (retry_after >= 0) sim_hdrs_add(&h, "retry-after", "%lld", (long long)retry_after);
    if (rc->acct) sim_quota_headers(&s->world.quota, rc->acct, sim_now(s), &h);
    buf_reset(&s->out);
    sim_respond_error(&s->out, type, message);
    send_now(s, req, rc, status, &h, s->out.data, s->out.len, false);
}

/* An OAuth-style error body ({"error":…,"error_description":…}). */
static void send_oauth_error(sim_server_t *s, http_req_t *req, const rctx_t *rc, int status,
                             const char *error, const char *desc)
{
    json_t *j = json_pack("{s:s,s:s}", "error", error, "error_description", desc);
    send_jansson(s, req, rc, status, j);
}

/* ---- the request ring --------------------------------------------------------------------- */

static ring_ent_t *ring_record(sim_server_t *s, http_req_t *req, uint64_t rid)
{
    ring_ent_t *e = &s->ring[s->ring_next++ % RING_SIZE];
    if (e->json.cap > RING_KEEP) buf_free(&e->json);
    buf_reset(&e->json);
    e->rid = rid;
    e->status = 0;
    e->acct = NULL;
    buf_t *b = &e->json;
    buf_puts(b, "\"method\":");
    sim_json_str(b, req->method, strlen(req->method));
    buf_puts(b, ",\"target\":");
    sim_json_str(b, req->target, strlen(req->target));
    buf_puts(b, ",\"headers\":{");
    char lname[128];
    for (size_t i = 0; i < req->nheaders; i++) {
        const char *nm = req->headers[i].name;
        size_t nl = strlen(nm);
        if (nl >= sizeof lname) nl = sizeof lname - 1;
        for (size_t k = 0; k < nl; k++)
            lname[k] = (nm[k] >= 'A' && nm[k] <= 'Z') ? (char)(nm[k] + 32) : nm[k];
        if (i) buf_puts(b, ",");
        sim_json_str(b, lname, nl);
        buf_puts(b, ":");
        sim_json_str(b, req->headers[i].value, strlen(req->headers[i].value));
    }
    uint8_t d[32];
    crypto_sha256(req->body.data ? req->body.data : "", req->body.len, d);
    char hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    buf_printf(b, "},\"bodyBytes\":%zu,\"bodySha256\":\"%s\"", req->body.len, hex);
    return e;
}

/* ---- delayed and disturbed responses ------------------------------------------------------- */

static void job_pump(sim_job_t *j);
static void maybe_closed(sim_server_t *s);

static void on_job_timer_closed(uv_handle_t *h)
{
    sim_job_t *j = h->data;
    sim_server_t *s = j->srv;
    buf_free(&j->body);
    free(j);
    s->handles_open--;
    maybe_closed(s);
}

/* The job is over (response ended/aborted or client gone): unlink and free it later. */
static void job_finish(sim_job_t *j)
{
    sim_server_t *s = j->srv;
    j->req = NULL;
    if (j->prev)
        j->prev->next = j->next;
    else
        s->jobs = j->next;
    if (j->next) j->next->prev = j->prev;
    uv_timer_stop(&j->timer);
    uv_close((uv_handle_t *)&j->timer, on_job_timer_closed);
}

static void on_job_client_gone(http_req_t *req, void *ud)
{
    sim_job_t *j = ud;
    job_finish(j);
}

static void on_job_timer(uv_timer_t *t)
{
    sim_job_t *j = t->data;
    if (!j->req) return;
    if (j->phase == JOB_FIRST_BYTE) {
        http_header_t hh[SIM_HDRS_MAX];
        size_t n = hdrs_to_http(&j->hdrs, hh);
        http_resp_start(j->req, j->status, hh, n, j->chunked ? -1 : (int64_t)j->body.len);
        j->phase = JOB_STREAM;
        job_pump(j);
    } else if (j->phase == JOB_RESETTING) {
        /* Reset only once what was written has left, so the client sees the events first. */
        if (http_resp_queued(j->req) > 0) {
            uv_timer_start(&j->timer, on_job_timer, RESET_POLL_MS, 0);
            return;
        }
        http_resp_abort(j->req);
        job_finish(j);
    } else {
        job_pump(j);
    }
}

static void on_job_drain(http_req_t *req, void *ud)
{
    job_pump(ud);
}

static void job_pump(sim_job_t *j)
{
    http_req_t *req = j->req;
    const char *b = j->body.data;
    size_t len = j->body.len;
    /* The fault checks run once more after the last event, so a stall or reset asked for
     * after more events than the stream has happens before the terminating chunk. */
    for (;;) {
        bool due = j->events_sent >= j->after_events || j->pos >= len;
        if (j->has_fault && j->fault == SIM_FAULT_STALL && !j->stalled && due) {
            j->stalled = true;
            /* No timer = wait for the client to give up (the close hook frees the job). */
            if (j->stall_ms >= 0) uv_timer_start(&j->timer, on_job_timer, (uint64_t)j->stall_ms, 0);
            return;
        }
        if (j->has_fault && j->fault == SIM_FAULT_RESET && due) {
            j->phase = JOB_RESETTING;
            uv_timer_start(&j->timer, on_job_timer, RESET_POLL_MS, 0);
            return;
        }
        if (j->pos >= len) break;
        if (j->delta_delay_ms > 0 && j->events_sent > 0 && !j->delay_done) {
            j->delay_done = true;
            uv_timer_start(&j->timer, on_job_timer, (uint64_t)j->delta_delay_ms, 0);
            return;
        }
        j->delay_done = false;
        size_t end = j->chunked ? sim_sse_event_end(b, len, j->pos) : len;
        size_t n = end - j->pos;
        if (j->has_fault && j->fault == SIM_FAULT_TRUNCATE && end == len) {
            /* Cut the last event in the middle: no trailing blank line. */
            n = n / 2;
            end = len;
        }
        http_resp_write(req, b + j->pos, n);
        j->pos = end;
        j->events_sent++;
        if (!http_resp_writable(req)) {
            http_resp_on_drain(req, on_job_drain, j);
            return;
        }
    }
    http_resp_end(req);
    job_finish(j);
}

/* Answers with status/headers/body, now when nothing delays or disturbs it, otherwise
 * through a job. `fault` is a non-error fault that fired for this request, or NULL. */
static void answer(sim_server_t *s, http_req_t *req, const rctx_t *rc, int status,
                   const sim_hdrs_t *h, const char *body, size_t len, bool chunked,
                   const sim_fault_t *fault, int64_t first_byte_ms, int64_t delta_ms)
{
    if (fault && fault->kind == SIM_FAULT_SLOW_FIRST_BYTE) first_byte_ms += fault->delay_ms;
    bool disturbed = fault && fault->kind != SIM_FAULT_SLOW_FIRST_BYTE;
    if (!disturbed && first_byte_ms <= 0 && (delta_ms <= 0 || !chunked)) {
        send_now(s, req, rc, status, h, body, len, chunked);
        return;
    }
    note_status(s, req, rc, status, len);
    sim_job_t *j = xcalloc(1, sizeof *j);
    j->srv = s;
    j->req = req;
    j->status = status;
    j->chunked = chunked;
    hdrs_copy(&j->hdrs, h);
    buf_init(&j->body, 0);
    buf_append(&j->body, body, len);
    j->delta_delay_ms = chunked ? delta_ms : 0;
    if (disturbed) {
        j->has_fault = true;
        j->fault = fault->kind;
        /* A JSON body is one event: stall and reset happen right after the headers. */
        j->after_events = chunked ? fault->after_events : 0;
        j->stall_ms = fault->stall_ms;
        if (!chunked && fault->kind == SIM_FAULT_TRUNCATE) {
            /* Announce the cut length so the body ends cleanly, just incomplete. */
            j->body.len = len / 2;
            j->has_fault = false;
        }
    }
    uv_timer_init(s->loop, &j->timer);
    j->timer.data = j;
    s->handles_open++;
    j->next = s->jobs;
    if (s->jobs) s->jobs->prev = j;
    s->jobs = j;
    http_req_on_close(req, on_job_client_gone, j);
    if (first_byte_ms > 0) {
        j->phase = JOB_FIRST_BYTE;
        uv_timer_start(&j->timer, on_job_timer, (uint64_t)first_byte_ms, 0);
    } else {
        j->phase = JOB_FIRST_BYTE;
        on_job_timer(&j->timer);
    }
}

/* ---- credentials and faults ------------------------------------------------------------- */

static sim_account_t *find_account(sim_server_t *s, http_req_t *req, bool *had_cred)
{
    const char *cred = http_req_header(req, "x-api-key");
    size_t n = 0;
    if (cred && *cred) {
        n = strlen(cred);
    } else {
        const char *auth = http_req_header(req, "authorization");
        if (auth && strncasecmp(auth, "Bearer ", 7) == 0) {
            cred = auth + 7;
            while (*cred == ' ')
                cred++;
            n = strlen(cred);
        } else {
            cred = NULL;
        }
    }
    *had_cred = cred && n;
    if (!cred || !n) return NULL;
    return sim_oauth_lookup(s->world.oauth, cred, n, sim_now(s));
}

/* Answers an error fault; returns true when the request was answered or reset. */
static bool apply_error_fault(sim_server_t *s, http_req_t *req, const rctx_t *rc,
                              const sim_fault_t *f)
{
    if (f->kind == SIM_FAULT_RESET_BEFORE_HEADERS) {
        note_status(s, req, rc, 0, 0);
        http_resp_abort(req);
        return true;
    }
    if (!sim_fault_is_error(f->kind)) return false;
    bool apikey = rc->acct && rc->acct->type == SIM_ACCT_APIKEY;
    send_error(s, req, rc, sim_fault_status(f), sim_fault_error_type(f),
               sim_fault_message(f, apikey), f->retry_after);
    return true;
}

/* ---- Anthropic API endpoints ------------------------------------------------------------- */

static bool request_wants_thinking(const char *body, size_t n)
{
    const char *v;
    size_t vl;
    if (jscan_get(body, n, "thinking", &v, &vl) != 0) return false;
    if (!jscan_truthy(v, vl)) return false;
    /* {"type":"disabled"} asks for no thinking. */
    for (size_t i = 0; i + 10 <= vl; i++)
        if (memcmp(v + i, "\"disabled\"", 10) == 0) return false;
    return true;
}

static void h_messages(sim_server_t *s, http_req_t *req, rctx_t *rc, const sim_fault_t *fault)
{
    const char *body = req->body.data ? req->body.data : "";
    size_t blen = req->body.len;
    const char *model, *v;
    size_t mlen, vl;
    int r = jscan_get(body, blen, "model", &model, &mlen);
    if (r == -EINVAL || blen == 0) {
        send_error(s, req, rc, 400, "invalid_request_error", "The request body is not valid JSON.",
                   -1);
        return;
    }
    if (r != 0 || mlen < 2 || model[0] != '"') {
        send_error(s, req, rc, 400, "invalid_request_error", "model: Field required", -1);
        return;
    }
    bool stream = jscan_get(body, blen, "stream", &v, &vl) == 0 && jscan_truthy(v, vl);
    sim_account_t *a = rc->acct;
    int64_t now = sim_now(s);
    int64_t retry = 0;
    if (sim_quota_check(&s->world.quota, a, now, &retry)) {
        send_error(s, req, rc, 429, "rate_limit_error",
                   a->type == SIM_ACCT_OAUTH ? RATE_LIMIT_MSG : APIKEY_LIMIT_MSG, retry);
        return;
    }
    const sim_respond_t *resp = s->world.resp;
    sim_msg_t m = {.seq = ++s->msg_seq,
                   .model_json = model,
                   .model_len = mlen,
                   .thinking = request_wants_thinking(body, blen),
                   .input_tokens = sim_respond_input_tokens(blen)};
    int64_t out_tokens = sim_respond_output_tokens(resp);
    sim_quota_charge(a, now, m.input_tokens + out_tokens);
    a->input_tokens += (uint64_t)m.input_tokens;
    a->output_tokens += (uint64_t)out_tokens;

    sim_hdrs_t h;
    hdrs_base(&h, rc, stream ? "text/event-stream; charset=utf-8" : "application/json");
    if (stream) sim_hdrs_add(&h, "cache-control", "no-cache");
    sim_quota_headers(&s->world.quota, a, now, &h);
    buf_reset(&s->out);
    if (stream)
        sim_respond_sse(resp, &m, &s->out);
    else
        sim_respond_message(resp, &m, &s->out);
    const sim_respond_cfg_t *cfg = sim_respond_cfg(resp);
    answer(s, req, rc, 200, &h, s->out.data, s->out.len, stream, fault, cfg->first_byte_delay_ms,
           cfg->delta_delay_ms);
    /* Do not let one huge answer pin memory for the rest of the run. */
    if (s->out.cap > (1u << 20)) buf_free(&s->out);
}

static void h_count_tokens(sim_server_t *s, http_req_t *req, rctx_t *rc, const sim_fault_t *f)
{
    const char *body = req->body.data ? req->body.data : "";
    const char *model;
    size_t mlen;
    int r = jscan_get(body, req->body.len, "model", &model, &mlen);
    if (r == -EINVAL || req->body.len == 0) {
        send_error(s, req, rc, 400, "invalid_request_error", "The request body is not valid JSON.",
                   -1);
        return;
    }
    if (r != 0 || model[0] != '"') {
        send_error(s, req, rc, 400, "invalid_request_error", "model: Field required", -1);
        return;
    }
    sim_hdrs_t h;
    hdrs_base(&h, rc, "application/json");
    sim_quota_headers(&s->world.quota, rc->acct, sim_now(s), &h);
    char out[64];
    int n = snprintf(out, sizeof out, "{\"input_tokens\":%lld}",
                     (long long)sim_respond_input_tokens(req->body.len));
    answer(s, req, rc, 200, &h, out, (size_t)n, false, f, 0, 0);
}

static void h_models(sim_server_t *s, http_req_t *req, rctx_t *rc, const sim_fault_t *f)
{
    static const char body[] =
        "{\"data\":["
        "{\"type\":\"model\",\"id\":\"claude-opus-4-1-20250805\",\"display_name\":\"Claude Opus "
        "4.1\",\"created_at\":\"2025-08-05T00:00:00Z\"},"
        "{\"type\":\"model\",\"id\":\"claude-sonnet-4-5-20250929\",\"display_name\":\"Claude "
        "Sonnet 4.5\",\"created_at\":\"2025-09-29T00:00:00Z\"},"
        "{\"type\":\"model\",\"id\":\"claude-haiku-4-5-20251001\",\"display_name\":\"Claude "
        "Haiku 4.5\",\"created_at\":\"2025-10-01T00:00:00Z\"}],"
        "\"has_more\":false,\"first_id\":\"claude-opus-4-1-20250805\","
        "\"last_id\":\"claude-haiku-4-5-20251001\"}";
    sim_hdrs_t h;
    hdrs_base(&h, rc, "application/json");
    answer(s, req, rc, 200, &h, body, sizeof body - 1, false, f, 0, 0);
}

/* ---- OAuth endpoints --------------------------------------------------------------------- */

static void h_authorize(sim_server_t *s, http_req_t *req, rctx_t *rc)
{
    buf_t redirect, state, challenge, method, client, acct;
    buf_init(&redirect, 0);
    buf_init(&state, 0);
    buf_init(&challenge, 0);
    buf_init(&method, 0);
    buf_init(&client, 0);
    buf_init(&acct, 0);
    const char *q = req->query;
    sim_account_t *a = NULL;
    const char *problem = NULL;
    if (sim_url_param(q, "redirect_uri", &redirect) || !redirect.len)
        problem = "Missing redirect_uri";
    else if (sim_url_param(q, "code_challenge", &challenge) || !challenge.len)
        problem = "Missing code_challenge";
    else if (sim_url_param(q, "code_challenge_method", &method) == 0 &&
             strcmp(method.len ? method.data : "", "S256") != 0)
        problem = "code_challenge_method must be S256";
    sim_url_param(q, "state", &state);
    sim_url_param(q, "client_id", &client);
    if (!problem) {
        if (sim_url_param(q, "account", &acct) == 0) {
            a = sim_quota_find(&s->world.quota, acct.len ? acct.data : "");
            if (!a || a->type != SIM_ACCT_OAUTH) problem = "Unknown account";
        } else {
            for (size_t i = 0; i < s->world.quota.n && !a; i++)
                if (s->world.quota.accts[i]->type == SIM_ACCT_OAUTH) a = s->world.quota.accts[i];
            if (!a) problem = "No OAuth account in the script";
        }
    }
    if (problem) {
        send_oauth_error(s, req, rc, 400, "invalid_request", problem);
    } else {
        rc->acct = a;
        char *code = sim_oauth_new_code(s->world.oauth, a, challenge.data, redirect.data,
                                        client.data, sim_now(s));
        buf_t loc;
        buf_init(&loc, 0);
        buf_puts(&loc, redirect.data);
        buf_puts(&loc, strchr(redirect.data, '?') ? "&code=" : "?code=");
        sim_url_encode(&loc, code);
        buf_puts(&loc, "&state=");
        sim_url_encode(&loc, state.data ? state.data : "");
        free(code);
        sim_hdrs_t h;
        hdrs_base(&h, rc, NULL);
        sim_hdrs_add(&h, "location", "%s", loc.data);
        if (!sim_hdrs_get(&h, "location")) {
            send_oauth_error(s, req, rc, 400, "invalid_request", "redirect_uri is too long");
        } else {
            send_now(s, req, rc, 302, &h, NULL, 0, false);
        }
        buf_free(&loc);
    }
    buf_free(&redirect);
    buf_free(&state);
    buf_free(&challenge);
    buf_free(&method);
    buf_free(&client);
    buf_free(&acct);
}

/* Reads the token request's fields from JSON or a form body into a jansson object. */
static json_t *token_params(http_req_t *req)
{
    const char *ct = http_req_header(req, "content-type");
    const char *body = req->body.data ? req->body.data : "";
    size_t i = 0;
    while (i < req->body.len && (body[i] == ' ' || body[i] == '\n' || body[i] == '\r'))
        i++;
    /* JSON is what real clients send; a form body is accepted too (curl -d, some SDKs). */
    if (i < req->body.len && body[i] != '{' && ct && strstr(ct, "x-www-form-urlencoded")) {
        static const char *const keys[] = {"grant_type", "code",  "code_verifier", "redirect_uri",
                                           "client_id",  "state", "refresh_token", NULL};
        json_t *o = json_object();
        buf_t v;
        buf_init(&v, 0);
        for (int k = 0; keys[k]; k++) {
            buf_reset(&v);
            if (sim_url_param(body, keys[k], &v) == 0)
                json_object_set_new(o, keys[k], json_string(v.data ? v.data : ""));
        }
        buf_free(&v);
        return o;
    }
    json_t *o = json_loadb(body, req->body.len, 0, NULL);
    if (o && !json_is_object(o)) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

static const char *jstr(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static char *org_uuid(const sim_account_t *a)
{
    uint8_t d[32];
    char *seed = xasprintf("org:%s", a->uuid);
    crypto_sha256(seed, strlen(seed), d);
    free(seed);
    return xasprintf("%02x%02x%02x%02x-%02x%02x-4%x%02x-%x%x%02x-%02x%02x%02x%02x%02x%02x", d[0],
                     d[1], d[2], d[3], d[4], d[5], d[6] & 0xf, d[7], 8 | (d[8] & 3), d[9] & 0xf,
                     d[10], d[11], d[12], d[13], d[14], d[15], d[16]);
}

static void h_token(sim_server_t *s, http_req_t *req, rctx_t *rc, const sim_fault_t *f)
{
    json_t *p = token_params(req);
    if (!p) {
        send_oauth_error(s, req, rc, 400, "invalid_request", "The request body is not valid JSON");
        return;
    }
    const char *grant = jstr(p, "grant_type");
    sim_account_t *a = NULL;
    int64_t now = sim_now(s);
    if (grant && strcmp(grant, "authorization_code") == 0) {
        const char *why = NULL;
        a = sim_oauth_redeem_code(s->world.oauth, jstr(p, "code"), jstr(p, "code_verifier"),
                                  jstr(p, "redirect_uri"), jstr(p, "client_id"), now, &why);
        if (!a) {
            send_oauth_error(s, req, rc, 400, "invalid_grant", why ? why : "Invalid code");
            json_decref(p);
            return;
        }
    } else if (grant && strcmp(grant, "refresh_token") == 0) {
        a = sim_oauth_redeem_refresh(s->world.oauth, jstr(p, "refresh_token"));
        if (!a) {
            send_oauth_error(s, req, rc, 400, "invalid_grant",
                             "Refresh token not found or invalid");
            json_decref(p);
            return;
        }
    } else {
        send_oauth_error(s, req, rc, 400, "unsupported_grant_type",
                         "grant_type must be authorization_code or refresh_token");
        json_decref(p);
        return;
    }
    json_decref(p);
    rc->acct = a;
    sim_grant_t g;
    sim_oauth_issue(s->world.oauth, a, a->token_ttl_sec * 1000, now, &g);
    /* The client keeps time on the real clock: tell it the real lifetime. */
    double real_s = (double)a->token_ttl_sec / s->world.quota.scale;
    char *org = org_uuid(a);
    json_t *j = json_pack("{s:s,s:s,s:I,s:s,s:s,s:{s:s,s:s},s:{s:s,s:s}}", "access_token",
                          g.access_token, "refresh_token", g.refresh_token, "expires_in",
                          (json_int_t)(real_s < 1 ? 1 : ceil(real_s)), "token_type", "Bearer",
                          "scope", OAUTH_SCOPE, "account", "uuid", a->uuid, "email_address",
                          a->email, "organization", "uuid", org, "name", a->name);
    free(org);
    sim_grant_free(&g);
    char *txt = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(j);
    sim_hdrs_t h;
    hdrs_base(&h, rc, "application/json");
    answer(s, req, rc, 200, &h, txt, strlen(txt), false, f, 0, 0);
    free(txt);
}

static void h_profile(sim_server_t *s, http_req_t *req, rctx_t *rc, const sim_fault_t *f)
{
    sim_account_t *a = rc->acct;
    char *org = org_uuid(a);
    char *orgname = xasprintf("%s's Organization", a->email);
    const char *otype = strcmp(a->tier, "max") == 0   ? "claude_max"
                        : strcmp(a->tier, "pro") == 0 ? "claude_pro"
                                                      : "claude_team";
    json_t *j = json_pack("{s:{s:s,s:s,s:s,s:s,s:b,s:b},s:{s:s,s:s,s:s}}", "account", "uuid",
                          a->uuid, "email", a->email, "email_address", a->email, "display_name",
                          a->name, "has_claude_max", strcmp(a->tier, "max") == 0, "has_claude_pro",
                          strcmp(a->tier, "pro") == 0, "organization", "uuid", org, "name", orgname,
                          "organization_type", otype);
    free(org);
    free(orgname);
    char *txt = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(j);
    sim_hdrs_t h;
    hdrs_base(&h, rc, "application/json");
    answer(s, req, rc, 200, &h, txt, strlen(txt), false, f, 0, 0);
    free(txt);
}

static json_t *reset_iso(const sim_server_t *s, const sim_window_t *w)
{
    if (!w->reset_ms) return json_null();
    char iso[40];
    clock_iso8601(sim_quota_to_real(&s->world.quota, w->reset_ms), iso, sizeof iso);
    return json_string(iso);
}

static double pct(double u)
{
    return round(u * 10000.0) / 100.0;
}

static void h_usage(sim_server_t *s, http_req_t *req, rctx_t *rc, const sim_fault_t *f)
{
    sim_account_t *a = rc->acct;
    int64_t now = sim_now(s);
    double u5 = sim_quota_utilization(&a->w5h, now), u7 = sim_quota_utilization(&a->w7d, now);
    json_t *j = json_pack(
        "{s:[{s:s,s:f,s:o,s:s,s:b},{s:s,s:f,s:o,s:s,s:b}],s:{s:f,s:o},s:{s:f,s:o}}", "limits",
        "kind", "session", "percent", pct(u5), "resets_at", reset_iso(s, &a->w5h), "severity",
        "normal", "is_active", 1, "kind", "weekly_all", "percent", pct(u7), "resets_at",
        reset_iso(s, &a->w7d), "severity", "normal", "is_active", 1, "five_hour", "utilization",
        pct(u5), "resets_at", reset_iso(s, &a->w5h), "seven_day", "utilization", pct(u7),
        "resets_at", reset_iso(s, &a->w7d));
    char *txt = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(j);
    sim_hdrs_t h;
    hdrs_base(&h, rc, "application/json");
    answer(s, req, rc, 200, &h, txt, strlen(txt), false, f, 0, 0);
    free(txt);
}

/* ---- control endpoints ------------------------------------------------------------------- */

static json_t *window_json(const sim_server_t *s, sim_window_t *w, int64_t now)
{
    double u = sim_quota_utilization(w, now);
    json_t *o = json_pack("{s:f,s:I,s:I}", "utilization", u, "used", (json_int_t)w->used, "budget",
                          (json_int_t)w->budget);
    if (w->reset_ms)
        json_object_set_new(
            o, "resetsAt",
            json_integer((sim_quota_to_real(&s->world.quota, w->reset_ms) + 999) / 1000));
    else
        json_object_set_new(o, "resetsAt", json_null());
    return o;
}

static void h_state(sim_server_t *s, http_req_t *req, rctx_t *rc)
{
    int64_t now = sim_now(s);
    json_t *accts = json_array();
    for (size_t i = 0; i < s->world.quota.n; i++) {
        sim_account_t *a = s->world.quota.accts[i];
        sim_quota_expire(a, now);
        json_t *st = json_object();
        for (int k = 0; k < SIM_STATUS_SLOTS && a->status_code[k]; k++) {
            char code[16];
            snprintf(code, sizeof code, "%d", a->status_code[k]);
            json_object_set_new(st, code, json_integer((json_int_t)a->status_count[k]));
        }
        json_t *win = json_object();
        json_object_set_new(win, "5h", window_json(s, &a->w5h, now));
        json_object_set_new(win, "7d", window_json(s, &a->w7d, now));
        if (a->type == SIM_ACCT_APIKEY) {
            json_object_set_new(win, "tokens", window_json(s, &a->tok, now));
            json_object_set_new(win, "requests", window_json(s, &a->req, now));
        }
        json_array_append_new(
            accts, json_pack("{s:s,s:s,s:I,s:I,s:I,s:o,s:o}", "name", a->name, "type",
                             a->type == SIM_ACCT_OAUTH ? "oauth" : "apikey", "requests",
                             (json_int_t)a->requests, "inputTokens", (json_int_t)a->input_tokens,
                             "outputTokens", (json_int_t)a->output_tokens, "statuses", st,
                             "windows", win));
    }
    json_t *j = json_pack("{s:I,s:I,s:f,s:I,s:o}", "now", (json_int_t)now, "realNow",
                          (json_int_t)clock_now_ms(), "timeScale", s->world.quota.scale, "requests",
                          (json_int_t)s->total_requests, "accounts", accts);
    send_jansson(s, req, rc, 200, j);
}

static void h_requests(sim_server_t *s, http_req_t *req, rctx_t *rc)
{
    long limit = RING_SIZE;
    buf_t v;
    buf_init(&v, 0);
    if (sim_url_param(req->query, "limit", &v) == 0 && v.len) {
        char *end = NULL;
        long l = strtol(v.data, &end, 10);
        if (end && *end == '\0' && l >= 0 && l < RING_SIZE) limit = l;
    }
    buf_free(&v);
    uint64_t have = s->ring_next < RING_SIZE ? s->ring_next : RING_SIZE;
    uint64_t take = have < (uint64_t)limit ? have : (uint64_t)limit;
    buf_t *b = &s->out;
    buf_reset(b);
    buf_puts(b, "{\"requests\":[");
    bool first = true;
    for (uint64_t k = s->ring_next - take; k < s->ring_next; k++) {
        const ring_ent_t *e = &s->ring[k % RING_SIZE];
        if (!e->rid) continue;
        if (!first) buf_puts(b, ",");
        first = false;
        buf_printf(b, "{\"id\":\"req_sim_%llu\",", (unsigned long long)e->rid);
        buf_append(b, e->json.data, e->json.len);
        buf_puts(b, ",\"account\":");
        if (e->acct)
            sim_json_str(b, e->acct->name, strlen(e->acct->name));
        else
            buf_puts(b, "null");
        if (e->status)
            buf_printf(b, ",\"status\":%d}", e->status);
        else
            buf_puts(b, ",\"status\":null}");
    }
    buf_puts(b, "]}");
    send_json(s, req, rc, 200, b->data, b->len);
}

static void h_script(sim_server_t *s, http_req_t *req, rctx_t *rc)
{
    char *err = NULL;
    if (sim_script_load(&s->world, req->body.data ? req->body.data : "", req->body.len,
                        clock_now_ms(), &err)) {
        send_error(s, req, rc, 400, "invalid_request_error", err, -1);
        free(err);
        return;
    }
    json_t *j = json_pack("{s:b,s:I,s:I}", "ok", 1, "accounts", (json_int_t)s->world.quota.n,
                          "faults", (json_int_t)s->world.faults.n);
    send_jansson(s, req, rc, 200, j);
}

static void h_clock(sim_server_t *s, http_req_t *req, rctx_t *rc)
{
    json_t *p = json_loadb(req->body.data ? req->body.data : "", req->body.len, 0, NULL);
    const json_t *adv = p ? json_object_get(p, "advanceMs") : NULL;
    if (!json_is_integer(adv) || json_integer_value(adv) < 0) {
        json_decref(p);
        send_error(s, req, rc, 400, "invalid_request_error",
                   "body must be {\"advanceMs\": <non-negative integer>}", -1);
        return;
    }
    sim_quota_advance(&s->world.quota, json_integer_value(adv));
    json_decref(p);
    send_jansson(s, req, rc, 200, json_pack("{s:I}", "now", (json_int_t)sim_now(s)));
}

/* ---- routing ----------------------------------------------------------------------------- */

static void on_request(http_req_t *req, void *ud)
{
    sim_server_t *s = ud;
    rctx_t rc = {.rid = ++s->rid_seq};
    snprintf(rc.rid_str, sizeof rc.rid_str, "req_sim_%llu", (unsigned long long)rc.rid);
    const char *m = req->method, *p = req->path;
    bool post = strcmp(m, "POST") == 0, get = strcmp(m, "GET") == 0;

    if (str_has_prefix(p, "/_sim/")) {
        rc.control = true;
        if (post && strcmp(p, "/_sim/script") == 0)
            h_script(s, req, &rc);
        else if (post && strcmp(p, "/_sim/clock") == 0)
            h_clock(s, req, &rc);
        else if (get && strcmp(p, "/_sim/state") == 0)
            h_state(s, req, &rc);
        else if (get && strcmp(p, "/_sim/requests") == 0)
            h_requests(s, req, &rc);
        else
            send_error(s, req, &rc, 404, "not_found_error", "Not found", -1);
        return;
    }
    s->total_requests++;
    rc.ring = ring_record(s, req, rc.rid);

    bool had_cred = false;
    rc.acct = find_account(s, req, &had_cred);
    if (rc.acct) rc.acct->requests++;

    enum { R_NONE, R_HEAD, R_MSG, R_COUNT, R_MODELS, R_AUTHZ, R_TOKEN, R_PROFILE, R_USAGE } route;
    route = R_NONE;
    if ((strcmp(m, "HEAD") == 0 || get) && strcmp(p, "/") == 0)
        route = R_HEAD;
    else if (post && strcmp(p, "/v1/messages") == 0)
        route = R_MSG;
    else if (post && strcmp(p, "/v1/messages/count_tokens") == 0)
        route = R_COUNT;
    else if (get && strcmp(p, "/v1/models") == 0)
        route = R_MODELS;
    else if (get && strcmp(p, "/oauth/authorize") == 0)
        route = R_AUTHZ;
    else if (post && strcmp(p, "/v1/oauth/token") == 0)
        route = R_TOKEN;
    else if (get && strcmp(p, "/api/oauth/profile") == 0)
        route = R_PROFILE;
    else if (get && strcmp(p, "/api/oauth/usage") == 0)
        route = R_USAGE;

    if (route == R_NONE) {
        send_error(s, req, &rc, 404, "not_found_error", "Not found", -1);
        return;
    }
    if (route == R_HEAD) {
        sim_hdrs_t h;
        hdrs_base(&h, &rc, "text/plain");
        send_now(s, req, &rc, 200, &h, NULL, 0, false);
        return;
    }
    bool needs_auth = route == R_MSG || route == R_COUNT || route == R_PROFILE || route == R_USAGE;
    if (needs_auth && !rc.acct) {
        bool bearer = route == R_PROFILE || route == R_USAGE;
        send_error(s, req, &rc, 401, "authentication_error",
                   bearer ? "OAuth token has expired" : "invalid x-api-key", -1);
        return;
    }
    if ((route == R_PROFILE || route == R_USAGE) && rc.acct->type != SIM_ACCT_OAUTH) {
        send_error(s, req, &rc, 403, "permission_error",
                   "OAuth authentication is currently not supported.", -1);
        return;
    }
    sim_fault_t *f =
        sim_faults_match(&s->world.faults, rc.acct ? rc.acct->name : NULL, req->target);
    if (f && apply_error_fault(s, req, &rc, f)) return;
    switch (route) {
    case R_MSG:
        h_messages(s, req, &rc, f);
        break;
    case R_COUNT:
        h_count_tokens(s, req, &rc, f);
        break;
    case R_MODELS:
        h_models(s, req, &rc, f);
        break;
    case R_AUTHZ:
        h_authorize(s, req, &rc);
        break;
    case R_TOKEN:
        h_token(s, req, &rc, f);
        break;
    case R_PROFILE:
        h_profile(s, req, &rc, f);
        break;
    case R_USAGE:
        h_usage(s, req, &rc, f);
        break;
    default:
        break;
    }
}

/* ---- lifecycle --------------------------------------------------------------------------- */

static void on_log_timer(uv_timer_t *t)
{
    sim_server_t *s = t->data;
    if (s->log && s->log_dirty) {
        fflush(s->log);
        s->log_dirty = false;
    }
}

static bool loopback(const char *h)
{
    return strcmp(h, "127.0.0.1") == 0 || strcmp(h, "localhost") == 0 || strcmp(h, "::1") == 0;
}

int sim_server_start(uv_loop_t *loop, const sim_options_t *opt, const char *script,
                     size_t script_len, sim_server_t **out, char **err)
{
    *out = NULL;
    const char *host = opt->host && *opt->host ? opt->host : "127.0.0.1";
    if (!loopback(host)) {
        *err = xasprintf("maxpool sim listens on loopback only (got --host %s)", host);
        return -1;
    }
    sim_server_t *s = xcalloc(1, sizeof *s);
    s->loop = loop;
    buf_init(&s->out, 0);
    for (int i = 0; i < RING_SIZE; i++)
        buf_init(&s->ring[i].json, 0);
    sim_world_init(&s->world, clock_now_ms());
    if (opt->has_seed) {
        s->world.seed = opt->seed;
        s->world.seed_fixed = true;
    }
    if (opt->has_scale) {
        sim_quota_set_scale(&s->world.quota, opt->scale, clock_now_ms());
        s->world.scale_fixed = true;
    }
    if (script && sim_script_load(&s->world, script, script_len, clock_now_ms(), err)) {
        char *e = *err;
        *err = xasprintf("script: %s", e);
        free(e);
        goto fail;
    }
    if (opt->log_path) {
        s->log = fopen(opt->log_path, "a");
        if (!s->log) {
            *err = xasprintf("cannot open log %s: %s", opt->log_path, strerror(errno));
            goto fail;
        }
    }
    http_server_config_t cfg = {.on_request = on_request, .ud = s};
    int r = http_server_start(loop, host, opt->port, &cfg, &s->http, err);
    if (r != 0) goto fail;
    uv_timer_init(loop, &s->log_timer);
    s->log_timer.data = s;
    s->handles_open++;
    if (s->log) uv_timer_start(&s->log_timer, on_log_timer, LOG_FLUSH_MS, LOG_FLUSH_MS);
    uv_unref((uv_handle_t *)&s->log_timer);
    *out = s;
    return 0;
fail:
    if (s->log) fclose(s->log);
    sim_world_free(&s->world);
    for (int i = 0; i < RING_SIZE; i++)
        buf_free(&s->ring[i].json);
    buf_free(&s->out);
    free(s);
    return -1;
}

int sim_server_port(const sim_server_t *s)
{
    return http_server_port(s->http);
}

static void maybe_closed(sim_server_t *s)
{
    if (s->http_closed && s->handles_open == 0 && s->on_closed) {
        void (*cb)(void *) = s->on_closed;
        s->on_closed = NULL;
        cb(s->closed_ud);
    }
}

static void on_log_timer_closed(uv_handle_t *h)
{
    sim_server_t *s = h->data;
    s->handles_open--;
    maybe_closed(s);
}

static void on_http_closed(void *ud)
{
    sim_server_t *s = ud;
    s->http_closed = true;
    maybe_closed(s);
}

void sim_server_stop(sim_server_t *s, void (*on_closed)(void *ud), void *ud)
{
    if (s->stopping) return;
    s->stopping = true;
    s->on_closed = on_closed;
    s->closed_ud = ud;
    while (s->jobs) {
        sim_job_t *j = s->jobs;
        if (j->req) http_resp_abort(j->req);
        job_finish(j);
    }
    if (s->log) {
        fflush(s->log);
        fclose(s->log);
        s->log = NULL;
    }
    uv_timer_stop(&s->log_timer);
    uv_close((uv_handle_t *)&s->log_timer, on_log_timer_closed);
    http_server_stop(s->http, on_http_closed, s);
}

void sim_server_free(sim_server_t *s)
{
    if (!s) return;
    http_server_free(s->http);
    sim_world_free(&s->world);
    for (int i = 0; i < RING_SIZE; i++)
        buf_free(&s->ring[i].json);
    buf_free(&s->out);
    free(s);
}
