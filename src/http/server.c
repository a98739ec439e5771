/* http/server — HTTP/1.1 connections on libuv (see server.h for the contract).
 *
 * Output is batched the redis way: http_resp_* calls only append to the connection's
 * output buffer and put the connection on the server's pending list; one uv_idle pass per
 * loop turn flushes every pending connection with uv_try_write (falling back to one
 * uv_write for what the kernel did not take). A small SSE response written in a burst is
 * therefore one syscall. The same pass fires drain hooks, resumes parsing of pipelined
 * requests after a response ended outside the read callback, and frees connections whose
 * handles are closed: nothing is freed inside its own callback. */
#include "http/server.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/xalloc.h"
#include "http/reqparse.h"

#define SRV_DEFAULT_HEAD         (64u * 1024)
#define SRV_DEFAULT_BODY         (32u * 1024 * 1024)
#define SRV_DEFAULT_HEAD_TIMEOUT 30000
#define SRV_DEFAULT_IDLE_TIMEOUT 120000
#define SRV_DEFAULT_HIGH_WATER   (256u * 1024)
#define SRV_READ_BUF             (64u * 1024)
/* After the last response on a closing connection we send FIN and keep reading (and
 * discarding) for this long, so unread client bytes do not turn our close into an RST
 * that destroys the response in flight (the "lingering close" of every HTTP server). */
#define SRV_LINGER_MS 2000
/* Output buffers larger than this are released when idle instead of kept for reuse. */
#define SRV_KEEP_BYTES (64u * 1024)

/* Connection states. A connection parses (IDLE → HEAD → BODY), hands the request to the
 * handler (ACTIVE), then either returns to IDLE (keep-alive) or drains its output and
 * closes (CLOSING → LINGER → CLOSED). */
typedef enum conn_state {
    CS_IDLE,    /* waiting for the first byte of a request (idle timer) */
    CS_HEAD,    /* head in progress (head timer) */
    CS_BODY,    /* body in progress (idle timer, reset by every read) */
    CS_ACTIVE,  /* the handler owns the request */
    CS_CLOSING, /* last bytes queued; shutdown once flushed */
    CS_LINGER,  /* FIN sent, discarding input until EOF or the linger timer */
    CS_CLOSED,  /* uv_close called */
} conn_state_t;

typedef struct conn conn_t;

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wreq;
    uv_shutdown_t sreq;
    http_server_t *srv;
    conn_t *prev, *next; /* all connections of the server */
    conn_t *pnext;       /* pending list */
    conn_state_t state;
    int handles_open;
    bool pending;     /* on the server's pending list */
    bool reading;     /* uv_read_start active */
    bool parsing;     /* inside conn_parse (no re-entry) */
    bool need_parse;  /* buffered input may hold the next request */
    bool writing;     /* a uv_write is in flight on wbuf */
    bool req_active;  /* on_request was called; the handler has not ended it */
    bool req_dead;    /* the client went away while the handler had the request */
    bool close_after; /* close once this response is flushed */
    bool resp_started;
    bool resp_chunked;
    bool resp_nobody;  /* HEAD request, 1xx, 204 or 304: never send body bytes */
    int64_t resp_left; /* Content-Length bytes still owed, or -1 */
    reqparse_t rp;
    http_req_t req;
    buf_t in;   /* received bytes not yet parsed (pipelined requests) */
    buf_t out;  /* response bytes not yet handed to the kernel */
    buf_t wbuf; /* bytes of the uv_write in flight */
    size_t woff;
    size_t charged; /* request-body bytes counted against the server's buffer budget */
    http_event_cb on_close;
    void *on_close_ud;
    http_event_cb on_drain;
    void *on_drain_ud;
};

struct http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_idle_t idle;
    http_server_config_t cfg;
    buf_t common; /* common headers, pre-rendered */
    conn_t *conns;
    conn_t *pending;
    size_t nconns, nbusy;
    size_t buffered, buffer_limit; /* request-body bytes held, and their cap (0 = none) */
    uint64_t next_id;
    int port;
    bool stopping, listener_closed, idle_closing, stopped;
    void (*on_closed)(void *ud);
    void *closed_ud;
    char rbuf[SRV_READ_BUF]; /* shared read buffer: a read is parsed before the next one */
    bool rbuf_busy;
};

static void conn_close(conn_t *c, bool reset);
static void conn_parse_buffered(conn_t *c);
static void conn_read_start(conn_t *c);
static void on_idle(uv_idle_t *idle);

/* ---------------------------------------------------------------------------------------
 * Small helpers */

static const struct {
    int status;
    const char *reason;
} reasons[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {206, "Partial Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {402, "Payment Required"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {413, "Payload Too Large"},
    {415, "Unsupported Media Type"},
    {422, "Unprocessable Entity"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {529, "Overloaded"},
};

static const char *reason_phrase(int status)
{
    for (size_t i = 0; i < sizeof reasons / sizeof *reasons; i++)
        if (reasons[i].status == status) return reasons[i].reason;
    return "Unknown";
}

static void json_escape(buf_t *b, const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            char e[2] = {'\\', (char)ch};
            buf_append(b, e, 2);
        } else if (ch < 0x20) {
            buf_printf(b, "\\u%04x", ch);
        } else {
            buf_append(b, s, 1);
        }
    }
}

static bool is_framing_header(const char *name)
{
    char c = (char)(name[0] | 0x20); /* most names are rejected by their first letter */
    if (c != 'c' && c != 't') return false;
    return strcasecmp(name, "content-length") == 0 || strcasecmp(name, "transfer-encoding") == 0 ||
           strcasecmp(name, "connection") == 0;
}

static size_t conn_queued(const conn_t *c)
{
    return c->out.len + (c->writing ? c->wbuf.len - c->woff : 0);
}

static conn_t *req_conn(const http_req_t *req)
{
    return (conn_t *)((char *)req - offsetof(conn_t, req));
}

/* Puts c on the pending list; the idle pass will service it on this or the next turn. */
static void conn_schedule(conn_t *c)
{
    http_server_t *srv = c->srv;
    if (c->pending) return;
    c->pending = true;
    c->pnext = srv->pending;
    srv->pending = c;
    if (!srv->idle_closing) uv_idle_start(&srv->idle, on_idle);
}

static void timer_set(conn_t *c, uint64_t ms, uv_timer_cb cb)
{
    if (c->state == CS_CLOSED) return;
    uv_timer_start(&c->timer, cb, ms, 0);
}

/* ---------------------------------------------------------------------------------------
 * Writing */

static void on_write(uv_write_t *wr, int status);

static void conn_flush(conn_t *c)
{
    if (c->state == CS_CLOSED || c->writing || c->out.len == 0) return;
    uv_buf_t b = uv_buf_init(c->out.data, (unsigned)c->out.len);
    int r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (r < 0 && r != UV_EAGAIN) {
        conn_close(c, false);
        return;
    }
    size_t done = r > 0 ? (size_t)r : 0;
    if (done == c->out.len) {
        if (c->out.cap > SRV_KEEP_BYTES)
            buf_free(&c->out);
        else
            buf_reset(&c->out);
        return;
    }
    /* The kernel is full: hand the rest to one uv_write and keep appending to a fresh
     * buffer meanwhile. */
    buf_t t = c->wbuf;
    c->wbuf = c->out;
    c->out = t;
    buf_reset(&c->out);
    c->woff = done;
    c->writing = true;
    b = uv_buf_init(c->wbuf.data + done, (unsigned)(c->wbuf.len - done));
    r = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (r < 0) {
        c->writing = false;
        conn_close(c, false);
    }
}

static void on_write(uv_write_t *wr, int status)
{
    conn_t *c = wr->data;
    c->writing = false;
    if (c->wbuf.cap > SRV_KEEP_BYTES)
        buf_free(&c->wbuf);
    else
        buf_reset(&c->wbuf);
    c->woff = 0;
    if (status < 0) {
        conn_close(c, false);
        return;
    }
    conn_schedule(c);
}

static void on_shutdown(uv_shutdown_t *sr, int status)
{
    conn_t *c = sr->data;
    if (c->state == CS_CLOSED) return;
    if (status < 0) conn_close(c, false);
}

static void on_linger_timeout(uv_timer_t *t)
{
    conn_close(t->data, false);
}

/* A closing connection whose output is all written: send FIN, then linger. */
static void conn_start_linger(conn_t *c)
{
    c->state = CS_LINGER;
    if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
        conn_close(c, false);
        return;
    }
    buf_free(&c->in);
    conn_read_start(c); /* drain what the client still sends, and see its EOF */
    timer_set(c, SRV_LINGER_MS, on_linger_timeout);
}

/* ---------------------------------------------------------------------------------------
 * Closing and freeing */

static void on_handle_closed(uv_handle_t *h)
{
    conn_t *c = h->data;
    c->handles_open--;
    if (c->handles_open == 0) conn_schedule(c);
}

static void srv_maybe_finish_stop(http_server_t *srv);

/* Returns this connection's request-body bytes to the server's budget. */
static void conn_uncharge(conn_t *c)
{
    c->srv->buffered -= c->charged;
    c->charged = 0;
}

static void conn_free(conn_t *c)
{
    http_server_t *srv = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    srv->nconns--;
    conn_uncharge(c);
    reqparse_free(&c->rp);
    buf_free(&c->req.body);
    buf_free(&c->in);
    buf_free(&c->out);
    buf_free(&c->wbuf);
    free(c);
    srv_maybe_finish_stop(srv);
}

/* Ends the request from the server side: the handler no longer owns it. */
static void conn_release_req(conn_t *c)
{
    if (!c->req_active) return;
    c->req_active = false;
    c->srv->nbusy--;
}

/* The client is gone (EOF, error, or a failed write) or the server closes: tell the
 * handler once, then close both handles. */
static void conn_close(conn_t *c, bool reset)
{
    if (c->state == CS_CLOSED) return;
    c->state = CS_CLOSED;
    if (c->req_active && !c->req_dead) {
        c->req_dead = true;
        if (c->on_close) {
            http_event_cb cb = c->on_close;
            c->on_close = NULL;
            c->on_drain = NULL;
            /* After this hook the handler drops the request; it is ours again. */
            conn_release_req(c);
            cb(&c->req, c->on_close_ud);
        }
        /* Without a hook the request stays valid (writes are ignored) until the handler
         * ends or aborts it. */
    }
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    if (!reset || uv_tcp_close_reset(&c->tcp, on_handle_closed) != 0)
        uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

/* ---------------------------------------------------------------------------------------
 * The idle pass */

static void conn_service(conn_t *c)
{
    if (c->state == CS_CLOSED) {
        if (c->handles_open == 0 && !c->req_active) conn_free(c);
        return;
    }
    conn_flush(c);
    if (c->state == CS_CLOSED) return;
    if (c->on_drain && c->req_active && !c->req_dead &&
        conn_queued(c) <= c->srv->cfg.write_high_water) {
        http_event_cb cb = c->on_drain;
        c->on_drain = NULL;
        cb(&c->req, c->on_drain_ud);
        if (c->state == CS_CLOSED) return;
        /* Whatever the hook wrote goes out on the next pass. */
    }
    if (c->need_parse && !c->parsing) conn_parse_buffered(c);
    if (c->state == CS_CLOSED) return;
    if (c->state == CS_CLOSING && conn_queued(c) == 0 && !c->writing) conn_start_linger(c);
}

static void on_idle(uv_idle_t *idle)
{
    http_server_t *srv = idle->data;
    conn_t *list = srv->pending;
    srv->pending = NULL;
    while (list) {
        conn_t *c = list;
        list = c->pnext;
        c->pending = false;
        conn_service(c);
    }
    if (!srv->pending && !srv->idle_closing) uv_idle_stop(&srv->idle);
}

/* ---------------------------------------------------------------------------------------
 * Responses */

static void resp_error_raw(conn_t *c, int status, const char *type, const char *message);

static void on_idle_timeout(uv_timer_t *t)
{
    conn_close(t->data, false);
}

static void on_head_timeout(uv_timer_t *t)
{
    conn_t *c = t->data;
    if (c->state != CS_HEAD && c->state != CS_BODY) return;
    resp_error_raw(c, 408, "invalid_request_error", "The request was not received in time");
}

/* Back to waiting for the next request on a kept-alive connection. */
static void conn_next_request(conn_t *c)
{
    http_server_t *srv = c->srv;
    /* Hand the body storage back to the parser when it is small enough to reuse. */
    if (c->req.body.cap && c->req.body.cap <= SRV_KEEP_BYTES && c->rp.body.cap == 0) {
        buf_free(&c->rp.body);
        size_t limit = c->rp.body.limit;
        c->rp.body = c->req.body;
        c->rp.body.limit = limit;
        buf_init(&c->req.body, 0);
    } else {
        buf_free(&c->req.body);
    }
    reqparse_next(&c->rp);
    c->state = CS_IDLE;
    c->resp_started = false;
    c->on_close = NULL;
    c->on_drain = NULL;
    timer_set(c, srv->cfg.idle_timeout_ms, on_idle_timeout);
    conn_read_start(c);
    c->need_parse = c->in.len > 0;
    conn_schedule(c);
}

/* Called when the current response is complete (end, error after parse, abort). */
static void conn_finish_response(conn_t *c)
{
    conn_release_req(c);
    conn_uncharge(c);
    if (c->state == CS_CLOSED) return;
    if (c->close_after || !c->rp.keep_alive || c->srv->stopping) {
        c->state = CS_CLOSING;
        c->need_parse = false;
        conn_schedule(c);
        return;
    }
    conn_next_request(c);
}

static void append_status_line(buf_t *o, int status)
{
    char line[64];
    int n = snprintf(line, sizeof line, "HTTP/1.1 %d %s\r\n", status, reason_phrase(status));
    buf_append(o, line, (size_t)n);
}

static void append_header(buf_t *o, const char *name, const char *value)
{
    /* One reserve and plain copies: this runs for every header of every response. */
    size_t nl = strlen(name), vl = strlen(value);
    if (buf_reserve(o, nl + vl + 4)) return;
    char *p = o->data + o->len;
    memcpy(p, name, nl);
    memcpy(p + nl, ": ", 2);
    memcpy(p + nl + 2, value, vl);
    memcpy(p + nl + 2 + vl, "\r\n", 2);
    o->len += nl + vl + 4;
    o->data[o->len] = '\0';
}

static void resp_start(conn_t *c, int status, const http_header_t *hdrs, size_t nhdrs,
                       int64_t content_length)
{
    buf_t *o = &c->out;
    bool http10 = c->rp.parser.http_major == 1 && c->rp.parser.http_minor == 0;
    bool is_head = c->rp.method && strcmp(c->rp.method, "HEAD") == 0;
    bool no_body_status = (status >= 100 && status < 200) || status == 204 || status == 304;
    c->resp_started = true;
    c->resp_nobody = is_head || no_body_status;
    c->resp_chunked = false;
    c->resp_left = content_length;
    append_status_line(o, status);
    for (size_t i = 0; i < nhdrs; i++)
        if (hdrs[i].name && hdrs[i].value && !is_framing_header(hdrs[i].name))
            append_header(o, hdrs[i].name, hdrs[i].value);
    if (c->srv->common.len) buf_append(o, c->srv->common.data, c->srv->common.len);
    if (!no_body_status) {
        if (content_length >= 0) {
            char cl[48];
            int n = snprintf(cl, sizeof cl, "content-length: %" PRId64 "\r\n", content_length);
            buf_append(o, cl, (size_t)n);
        } else if (!http10) {
            buf_puts(o, "transfer-encoding: chunked\r\n");
            c->resp_chunked = !is_head;
        } else {
            c->close_after = true; /* HTTP/1.0 has no chunks: the close ends the body */
        }
    }
    if (!c->rp.keep_alive || c->srv->stopping) c->close_after = true;
    if (c->close_after)
        buf_puts(o, "connection: close\r\n");
    else if (http10)
        buf_puts(o, "connection: keep-alive\r\n");
    buf_append(o, "\r\n", 2);
    conn_schedule(c);
}

static void resp_write(conn_t *c, const void *data, size_t n)
{
    if (n == 0 || c->resp_nobody) return;
    if (c->resp_left >= 0) {
        /* Never send more than announced: it would corrupt the next response. */
        if ((uint64_t)n > (uint64_t)c->resp_left) n = (size_t)c->resp_left;
        c->resp_left -= (int64_t)n;
        if (n == 0) return;
    }
    if (c->resp_chunked) {
        char hdr[24];
        int k = snprintf(hdr, sizeof hdr, "%zx\r\n", n);
        buf_append(&c->out, hdr, (size_t)k);
        buf_append(&c->out, data, n);
        buf_append(&c->out, "\r\n", 2);
    } else {
        buf_append(&c->out, data, n);
    }
    conn_schedule(c);
}

static void resp_end(conn_t *c)
{
    if (c->resp_chunked) buf_append(&c->out, "0\r\n\r\n", 5);
    /* A body shorter than announced cannot be completed: close so the client sees it. */
    if (c->resp_left > 0 && !c->resp_nobody) c->close_after = true;
    conn_schedule(c);
    conn_finish_response(c);
}

static void body_json_error(buf_t *b, const char *type, const char *message)
{
    buf_puts(b, "{\"type\":\"error\",\"error\":{\"type\":\"");
    json_escape(b, type);
    buf_puts(b, "\",\"message\":\"");
    json_escape(b, message);
    buf_puts(b, "\"}}");
}

/* Answers a request the handler never saw (parse errors, timeouts) and closes. */
static void resp_error_raw(conn_t *c, int status, const char *type, const char *message)
{
    buf_t body;
    buf_init(&body, 0);
    body_json_error(&body, type, message);
    http_header_t h = {"content-type", "application/json"};
    conn_uncharge(c);
    c->close_after = true;
    resp_start(c, status, &h, 1, (int64_t)body.len);
    resp_write(c, body.data, body.len);
    buf_free(&body);
    uv_timer_stop(&c->timer);
    c->state = CS_CLOSING;
    c->need_parse = false;
    conn_schedule(c);
}

/* ---------------------------------------------------------------------------------------
 * Reading and parsing */

static void conn_dispatch(conn_t *c)
{
    http_server_t *srv = c->srv;
    reqparse_t *rp = &c->rp;
    http_req_t *req = &c->req;
    uv_timer_stop(&c->timer);
    c->state = CS_ACTIVE;
    req->method = rp->method;
    req->target = rp->target;
    req->path = rp->path;
    req->query = rp->query;
    req->headers = rp->headers;
    req->nheaders = rp->nheaders;
    buf_free(&req->body);
    req->body = rp->body; /* the body moves to the request: no copy */
    buf_init(&rp->body, 0);
    rp->body.limit = srv->cfg.max_body_bytes;
    req->keep_alive = rp->keep_alive;
    req->id = ++srv->next_id;
    req->user = NULL;
    c->req_active = true;
    c->req_dead = false;
    c->close_after = false;
    c->resp_started = false;
    c->resp_left = -1;
    c->on_close = NULL;
    c->on_drain = NULL;
    srv->nbusy++;
    srv->cfg.on_request(req, srv->cfg.ud);
}

/* Counts the request body against the server-wide budget (an announced Content-Length
 * is charged in full at once, so concurrent uploads cannot overshoot together). Returns
 * false when the budget cannot take it. */
static bool conn_charge(conn_t *c)
{
    http_server_t *srv = c->srv;
    const reqparse_t *rp = &c->rp;
    size_t want = rp->content_length >= 0 ? (size_t)rp->content_length : rp->body.len;
    if (want <= c->charged) return true;
    size_t delta = want - c->charged;
    if (srv->buffer_limit && srv->buffered + delta > srv->buffer_limit) return false;
    srv->buffered += delta;
    c->charged += delta;
    return true;
}

/* Parses data[0..n) as far as the current state allows; returns bytes consumed. */
static size_t conn_parse(conn_t *c, const char *data, size_t n)
{
    size_t off = 0;
    c->parsing = true;
    while (off < n && (c->state == CS_IDLE || c->state == CS_HEAD || c->state == CS_BODY)) {
        off += reqparse_feed(&c->rp, data + off, n - off);
        reqparse_t *rp = &c->rp;
        if (rp->state == REQPARSE_ERROR) {
            char msg[160];
            const char *type = "invalid_request_error";
            if (rp->status == 413) {
                type = "request_too_large";
                snprintf(msg, sizeof msg, "Request body exceeds %zu bytes",
                         c->srv->cfg.max_body_bytes);
            } else if (rp->status == 431) {
                snprintf(msg, sizeof msg, "Request head exceeds %zu bytes",
                         c->srv->cfg.max_head_bytes);
            } else {
                snprintf(msg, sizeof msg, "Malformed HTTP request: %s",
                         rp->error ? rp->error : "parse error");
            }
            resp_error_raw(c, rp->status, type, msg);
            break;
        }
        if (c->state == CS_IDLE && reqparse_started(rp)) {
            c->state = CS_HEAD;
            timer_set(c, c->srv->cfg.head_timeout_ms, on_head_timeout);
        }
        /* The budget is checked before any 100 Continue invites the body. */
        if ((rp->state == REQPARSE_BODY || rp->state == REQPARSE_DONE) && !conn_charge(c)) {
            resp_error_raw(c, 503, "overloaded_error",
                           "Too many request bytes are buffered right now; retry shortly");
            break;
        }
        if (rp->state != REQPARSE_HEAD && c->state == CS_HEAD) {
            c->state = CS_BODY;
            if (rp->expect_continue && rp->state == REQPARSE_BODY) {
                buf_puts(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
                conn_schedule(c);
            }
        }
        if (rp->state == REQPARSE_DONE) conn_dispatch(c);
    }
    c->parsing = false;
    return off;
}

static void conn_parse_buffered(conn_t *c)
{
    c->need_parse = false;
    if (c->in.len == 0) return;
    size_t used = conn_parse(c, c->in.data, c->in.len);
    if (c->state != CS_CLOSED) buf_consume(&c->in, used);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    conn_t *c = h->data;
    http_server_t *srv = c->srv;
    if (!srv->rbuf_busy) {
        srv->rbuf_busy = true;
        *b = uv_buf_init(srv->rbuf, sizeof srv->rbuf);
        return;
    }
    /* Not expected (reads are dispatched one at a time), but stay correct. */
    *b = uv_buf_init(xmalloc(SRV_READ_BUF), SRV_READ_BUF);
}

static size_t conn_in_cap(const conn_t *c)
{
    return c->srv->cfg.max_head_bytes + 64 * 1024;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    conn_t *c = s->data;
    http_server_t *srv = c->srv;
    bool shared = b->base == srv->rbuf;
    if (nread < 0) {
        /* EOF or error: the client is gone (a half-close counts as gone, as in nginx). */
        if (c->state != CS_CLOSED) conn_close(c, false);
        goto out;
    }
    if (nread == 0 || c->state == CS_CLOSED) goto out;
    if (c->state == CS_LINGER) goto out; /* discard */
    if (c->state == CS_BODY) timer_set(c, srv->cfg.idle_timeout_ms, on_head_timeout);
    bool can_parse =
        (c->state == CS_IDLE || c->state == CS_HEAD || c->state == CS_BODY) && !c->parsing;
    if (can_parse && c->in.len == 0) {
        size_t used = conn_parse(c, b->base, (size_t)nread);
        if (c->state != CS_CLOSED && c->state != CS_CLOSING && used < (size_t)nread)
            buf_append(&c->in, b->base + used, (size_t)nread - used);
    } else if (c->state != CS_CLOSING) {
        buf_append(&c->in, b->base, (size_t)nread);
        if (can_parse) conn_parse_buffered(c);
    }
    /* Pipelined bytes beyond a head's worth wait in the kernel, not in our memory. */
    if (c->state != CS_CLOSED && c->reading && c->in.len > conn_in_cap(c)) {
        uv_read_stop(s);
        c->reading = false;
    }
out:
    if (shared)
        srv->rbuf_busy = false;
    else
        free(b->base);
}

static void conn_read_start(conn_t *c)
{
    if (c->reading || c->state == CS_CLOSED) return;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0) c->reading = true;
}

static void peer_fill(conn_t *c)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    c->req.peer[0] = '\0';
    c->req.peer_local = false;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0) return;
    if (ss.ss_family == AF_INET)
        uv_ip4_name((struct sockaddr_in *)&ss, c->req.peer, sizeof c->req.peer);
    else if (ss.ss_family == AF_INET6)
        uv_ip6_name((struct sockaddr_in6 *)&ss, c->req.peer, sizeof c->req.peer);
    c->req.peer_local = strcmp(c->req.peer, "127.0.0.1") == 0 || strcmp(c->req.peer, "::1") == 0 ||
                        strcmp(c->req.peer, "::ffff:127.0.0.1") == 0;
}

static void on_connection(uv_stream_t *ls, int status)
{
    http_server_t *srv = ls->data;
    if (status < 0 || srv->stopping) return;
    conn_t *c = xcalloc(1, sizeof *c);
    c->srv = srv;
    uv_tcp_init(srv->loop, &c->tcp);
    c->tcp.data = c;
    c->wreq.data = c;
    c->sreq.data = c;
    uv_timer_init(srv->loop, &c->timer);
    c->timer.data = c;
    c->handles_open = 2;
    reqparse_init(&c->rp, srv->cfg.max_head_bytes, srv->cfg.max_body_bytes);
    buf_init(&c->in, 0);
    buf_init(&c->out, 0);
    buf_init(&c->wbuf, 0);
    buf_init(&c->req.body, 0);
    c->next = srv->conns;
    if (srv->conns) srv->conns->prev = c;
    srv->conns = c;
    srv->nconns++;
    c->state = CS_IDLE;
    if (uv_accept(ls, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c, false);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    peer_fill(c);
    timer_set(c, srv->cfg.idle_timeout_ms, on_idle_timeout);
    conn_read_start(c);
}

/* ---------------------------------------------------------------------------------------
 * Server lifecycle */

static void on_idle_closed(uv_handle_t *h)
{
    http_server_t *srv = h->data;
    srv->stopped = true;
    if (srv->on_closed) srv->on_closed(srv->closed_ud);
}

static void srv_maybe_finish_stop(http_server_t *srv)
{
    if (!srv->stopping || !srv->listener_closed || srv->nconns || srv->idle_closing) return;
    srv->idle_closing = true;
    uv_idle_stop(&srv->idle);
    uv_close((uv_handle_t *)&srv->idle, on_idle_closed);
}

static void on_listener_closed(uv_handle_t *h)
{
    http_server_t *srv = h->data;
    srv->listener_closed = true;
    srv_maybe_finish_stop(srv);
}

int http_server_start(uv_loop_t *loop, const char *host, int port, const http_server_config_t *cfg,
                      http_server_t **out, char **err)
{
    *out = NULL;
    if (err) *err = NULL;
    struct sockaddr_storage ss;
    const char *h = host && *host ? host : "127.0.0.1";
    if (strcmp(h, "localhost") == 0) h = "127.0.0.1";
    int r = strchr(h, ':') ? uv_ip6_addr(h, port, (struct sockaddr_in6 *)&ss)
                           : uv_ip4_addr(h, port, (struct sockaddr_in *)&ss);
    if (r != 0) {
        if (err) *err = xasprintf("%s is not an IP address", h);
        return r;
    }
    http_server_t *srv = xcalloc(1, sizeof *srv);
    srv->loop = loop;
    srv->cfg = *cfg;
    if (!srv->cfg.max_head_bytes) srv->cfg.max_head_bytes = SRV_DEFAULT_HEAD;
    if (!srv->cfg.max_body_bytes) srv->cfg.max_body_bytes = SRV_DEFAULT_BODY;
    if (!srv->cfg.head_timeout_ms) srv->cfg.head_timeout_ms = SRV_DEFAULT_HEAD_TIMEOUT;
    if (!srv->cfg.idle_timeout_ms) srv->cfg.idle_timeout_ms = SRV_DEFAULT_IDLE_TIMEOUT;
    if (!srv->cfg.write_high_water) srv->cfg.write_high_water = SRV_DEFAULT_HIGH_WATER;
    buf_init(&srv->common, 0);
    for (size_t i = 0; i < cfg->ncommon_headers; i++)
        append_header(&srv->common, cfg->common_headers[i].name, cfg->common_headers[i].value);
    srv->cfg.common_headers = NULL; /* rendered above; the caller's array is not kept */
    srv->cfg.ncommon_headers = 0;
    uv_idle_init(loop, &srv->idle);
    srv->idle.data = srv;
    uv_tcp_init(loop, &srv->listener);
    srv->listener.data = srv;
    r = uv_tcp_bind(&srv->listener, (struct sockaddr *)&ss, 0);
    if (r == 0) r = uv_listen((uv_stream_t *)&srv->listener, 511, on_connection);
    if (r != 0) {
        if (err) *err = xasprintf("cannot listen on %s:%d: %s", h, port, uv_strerror(r));
        /* Close both handles and let the loop run their close callbacks before freeing. */
        srv->stopping = true;
        uv_close((uv_handle_t *)&srv->listener, NULL);
        uv_close((uv_handle_t *)&srv->idle, NULL);
        uv_run(loop, UV_RUN_NOWAIT);
        buf_free(&srv->common);
        free(srv);
        return r;
    }
    struct sockaddr_storage bound;
    int blen = sizeof bound;
    uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&bound, &blen);
    srv->port = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                                            : ntohs(((struct sockaddr_in *)&bound)->sin_port);
    *out = srv;
    return 0;
}

int http_server_port(const http_server_t *srv)
{
    return srv->port;
}

void http_server_stop(http_server_t *srv, void (*on_closed)(void *ud), void *ud)
{
    if (srv->stopping) return;
    srv->stopping = true;
    srv->on_closed = on_closed;
    srv->closed_ud = ud;
    uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
    for (conn_t *c = srv->conns; c; c = c->next)
        if (c->state == CS_IDLE || c->state == CS_HEAD || c->state == CS_BODY) conn_close(c, false);
}

size_t http_server_connections(const http_server_t *srv)
{
    return srv->nconns;
}

size_t http_server_busy(const http_server_t *srv)
{
    return srv->nbusy;
}

void http_server_set_buffer_limit(http_server_t *srv, size_t max_bytes)
{
    srv->buffer_limit = max_bytes;
}

size_t http_server_buffered(const http_server_t *srv)
{
    return srv->buffered;
}

void http_server_free(http_server_t *srv)
{
    if (!srv) return;
    buf_free(&srv->common);
    free(srv);
}

/* ---------------------------------------------------------------------------------------
 * The request API */

const char *http_req_header(const http_req_t *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (strcasecmp(req->headers[i].name, name) == 0) return req->headers[i].value;
    return NULL;
}

void http_req_on_close(http_req_t *req, http_event_cb cb, void *ud)
{
    conn_t *c = req_conn(req);
    c->on_close = cb;
    c->on_close_ud = ud;
}

uv_loop_t *http_req_loop(const http_req_t *req)
{
    return req_conn(req)->srv->loop;
}

void http_resp_start(http_req_t *req, int status, const http_header_t *hdrs, size_t nhdrs,
                     int64_t content_length)
{
    conn_t *c = req_conn(req);
    if (!c->req_active || c->resp_started) return;
    c->resp_started = true;
    if (c->req_dead) return;
    resp_start(c, status, hdrs, nhdrs, content_length);
}

void http_resp_write(http_req_t *req, const void *data, size_t n)
{
    conn_t *c = req_conn(req);
    if (!c->req_active || !c->resp_started || c->req_dead) return;
    resp_write(c, data, n);
}

bool http_resp_writable(const http_req_t *req)
{
    const conn_t *c = req_conn(req);
    if (c->req_dead) return true; /* nothing will ever drain; do not make anyone wait */
    return conn_queued(c) <= c->srv->cfg.write_high_water;
}

void http_resp_on_drain(http_req_t *req, http_event_cb cb, void *ud)
{
    conn_t *c = req_conn(req);
    c->on_drain = cb;
    c->on_drain_ud = ud;
    if (cb && !c->req_dead) conn_schedule(c);
}

size_t http_resp_queued(const http_req_t *req)
{
    return conn_queued(req_conn(req));
}

void http_resp_end(http_req_t *req)
{
    conn_t *c = req_conn(req);
    if (!c->req_active) return;
    if (c->req_dead) {
        conn_release_req(c);
        conn_schedule(c); /* the idle pass frees it */
        return;
    }
    if (!c->resp_started) resp_start(c, 204, NULL, 0, 0);
    c->on_drain = NULL;
    c->on_close = NULL;
    resp_end(c);
}

void http_resp_abort(http_req_t *req)
{
    conn_t *c = req_conn(req);
    if (!c->req_active) return;
    c->on_close = NULL;
    c->on_drain = NULL;
    conn_release_req(c);
    if (c->state != CS_CLOSED) conn_close(c, true);
    conn_schedule(c);
}

void http_resp_send(http_req_t *req, int status, const char *content_type, const void *body,
                    size_t n)
{
    http_header_t h = {"content-type", content_type};
    http_resp_start(req, status, content_type ? &h : NULL, content_type ? 1 : 0, (int64_t)n);
    http_resp_write(req, body, n);
    http_resp_end(req);
}

void http_resp_error(http_req_t *req, int status, const char *type, const char *message)
{
    buf_t b;
    buf_init(&b, 0);
    body_json_error(&b, type, message);
    http_resp_send(req, status, "application/json", b.data, b.len);
    buf_free(&b);
}

void http_resp_set_close(http_req_t *req)
{
    conn_t *c = req_conn(req);
    if (c->req_active && !c->resp_started) c->close_after = true;
}

bool http_resp_started(const http_req_t *req)
{
    return req_conn(req)->resp_started;
}
