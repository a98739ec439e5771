/* http/server integration tests: a real libuv loop in the test process, raw blocking
 * client sockets in a second thread. Every wait is bounded (socket timeouts and a loop
 * watchdog); nothing asserts on elapsed time. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/xalloc.h"
#include "http/server.h"
#include "testutil.h"

/* ---- client side (runs in the client thread) ---------------------------------------- */

typedef struct resp {
    int status;
    buf_t head; /* "name: value\n" lines, lower-cased names */
    buf_t body;
    bool complete;
    bool in_value;
} resp_t;

static int on_r_field(http_parser *p, const char *at, size_t n)
{
    resp_t *r = p->data;
    if (r->in_value) buf_puts(&r->head, "\n");
    r->in_value = false;
    for (size_t i = 0; i < n; i++) {
        char ch = at[i];
        if (ch >= 'A' && ch <= 'Z') ch = (char)(ch - 'A' + 'a');
        buf_append(&r->head, &ch, 1);
    }
    return 0;
}

static int on_r_value(http_parser *p, const char *at, size_t n)
{
    resp_t *r = p->data;
    if (!r->in_value) buf_puts(&r->head, ": ");
    r->in_value = true;
    buf_append(&r->head, at, n);
    return 0;
}

static int on_r_headers(http_parser *p)
{
    resp_t *r = p->data;
    if (r->in_value) buf_puts(&r->head, "\n");
    r->status = (int)p->status_code;
    return 0;
}

static int on_r_body(http_parser *p, const char *at, size_t n)
{
    buf_append(&((resp_t *)p->data)->body, at, n);
    return 0;
}

static int on_r_done(http_parser *p)
{
    ((resp_t *)p->data)->complete = true;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings rsettings = {
    .on_header_field = on_r_field,
    .on_header_value = on_r_value,
    .on_headers_complete = on_r_headers,
    .on_body = on_r_body,
    .on_message_complete = on_r_done,
};

/* A client connection with its own read buffer so pipelined responses can be split. */
typedef struct client {
    int fd;
    char buf[65536];
    size_t len;
    bool eof;
} client_t;

static int g_port;

static void client_open_rcvbuf(client_t *cl, int rcvbuf)
{
    memset(cl, 0, sizeof *cl);
    cl->fd = socket(AF_INET, SOCK_STREAM, 0);
    /* Before connect, so the window scale is negotiated for the small buffer. */
    if (rcvbuf) setsockopt(cl->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(cl->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(cl->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(cl->fd, (struct sockaddr *)&sa, sizeof sa) != 0) cl->fd = -1;
}

static void client_open(client_t *cl)
{
    client_open_rcvbuf(cl, 0);
}

static void client_close(client_t *cl)
{
    if (cl->fd >= 0) close(cl->fd);
    cl->fd = -1;
}

static bool client_send(client_t *cl, const char *s, size_t n)
{
    while (n) {
        ssize_t w = send(cl->fd, s, n, MSG_NOSIGNAL);
        if (w <= 0) return false;
        s += w;
        n -= (size_t)w;
    }
    return true;
}

static bool client_sends(client_t *cl, const char *s)
{
    return client_send(cl, s, strlen(s));
}

/* Reads one response (HEAD-aware when is_head). Returns false on timeout/EOF before the
 * end of the response. */
static bool client_read_resp(client_t *cl, resp_t *r, bool is_head)
{
    memset(r, 0, sizeof *r);
    buf_init(&r->head, 0);
    buf_init(&r->body, 0);
    http_parser p;
    http_parser_init(&p, HTTP_RESPONSE);
    p.data = r;
    for (int rounds = 0; rounds < 100000; rounds++) {
        if (cl->len) {
            if (is_head) {
                /* http-parser cannot know a response answers HEAD: stop at the head. */
                char *e = memmem(cl->buf, cl->len, "\r\n\r\n", 4);
                if (e) {
                    size_t hl = (size_t)(e + 4 - cl->buf);
                    http_parser_execute(&p, &rsettings, cl->buf, hl);
                    r->complete = true;
                    memmove(cl->buf, cl->buf + hl, cl->len - hl);
                    cl->len -= hl;
                    return true;
                }
            } else {
                size_t used = http_parser_execute(&p, &rsettings, cl->buf, cl->len);
                memmove(cl->buf, cl->buf + used, cl->len - used);
                cl->len -= used;
                if (r->complete) return true;
                if (HTTP_PARSER_ERRNO(&p) != HPE_OK) return false;
            }
        }
        if (cl->eof) {
            if (!is_head) http_parser_execute(&p, &rsettings, NULL, 0);
            return r->complete;
        }
        ssize_t n = recv(cl->fd, cl->buf + cl->len, sizeof cl->buf - cl->len, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return false;
        if (n == 0) cl->eof = true;
        cl->len += (size_t)(n > 0 ? n : 0);
    }
    return false;
}

static void resp_free(resp_t *r)
{
    buf_free(&r->head);
    buf_free(&r->body);
}

static bool resp_has(const resp_t *r, const char *line)
{
    return r->head.data && strstr(r->head.data, line) != NULL;
}

/* True when the server closed the connection (EOF or reset) within the timeout. */
static bool client_sees_close(client_t *cl)
{
    char tmp[4096];
    for (int i = 0; i < 10000; i++) {
        ssize_t n = recv(cl->fd, tmp, sizeof tmp, 0);
        if (n == 0) return true;
        if (n < 0) return errno == ECONNRESET;
    }
    return false;
}

/* ---- server side (runs on the loop in the main thread) ------------------------------- */

typedef enum mode { M_ECHO, M_CHUNKED, M_DEFER, M_BACKPRESSURE, M_ABORT, M_HOLD } mode_t_;

static uv_loop_t g_loop;
static http_server_t *g_srv;
static uv_async_t g_done;
static uv_timer_t g_watchdog;
static bool g_watchdog_fired;
static mode_t_ g_mode;
static int g_requests;
static int g_drains;
static int g_not_writable;
static int g_closed_hooks;
static int g_stop_closed;
static size_t g_bp_total;
static http_server_config_t g_cfg;

static void on_stopped(void *ud)
{
    g_stop_closed++;
}

static void echo(http_req_t *req)
{
    buf_t b;
    buf_init(&b, 0);
    buf_printf(&b, "%s %s q=%s n=%zu peer_local=%d ka=%d id=%llu\n", req->method, req->path,
               req->query, req->body.len, req->peer_local, req->keep_alive,
               (unsigned long long)req->id);
    buf_append(&b, req->body.data, req->body.len);
    if (http_req_header(req, "x-close")) http_resp_set_close(req);
    const char *xt = http_req_header(req, "x-test");
    http_header_t hdrs[] = {{"x-echo", xt ? xt : "-"}, {"Content-Length", "999"}};
    http_resp_start(req, 200, hdrs, 2, (int64_t)b.len);
    http_resp_write(req, b.data, b.len);
    http_resp_end(req);
    buf_free(&b);
}

static void on_defer_timer(uv_timer_t *t)
{
    http_req_t *req = t->data;
    echo(req);
    uv_close((uv_handle_t *)t, (uv_close_cb)free);
}

#define BP_CHUNK (64 * 1024)
#define BP_TOTAL (4 * 1024 * 1024)

static void bp_pump(http_req_t *req, void *ud)
{
    static char chunk[BP_CHUNK];
    memset(chunk, 'z', sizeof chunk);
    if (ud) g_drains++;
    while (g_bp_total < BP_TOTAL) {
        if (!http_resp_writable(req)) {
            g_not_writable++;
            http_resp_on_drain(req, bp_pump, (void *)1);
            return;
        }
        http_resp_write(req, chunk, sizeof chunk);
        g_bp_total += sizeof chunk;
    }
    http_resp_end(req);
}

static void on_hook_close(http_req_t *req, void *ud)
{
    g_closed_hooks++;
    uv_timer_t *t = req->user;
    if (t) uv_close((uv_handle_t *)t, (uv_close_cb)free);
}

/* A per-request streaming producer that honours backpressure and the close hook. */
typedef struct big {
    size_t sent;
} big_t;

static void big_closed(http_req_t *req, void *ud)
{
    g_closed_hooks++;
    free(req->user);
}

static void big_pump(http_req_t *req, void *ud)
{
    static char chunk[16384];
    big_t *b = req->user;
    while (b->sent < 1024 * 1024) {
        if (!http_resp_writable(req)) {
            http_resp_on_drain(req, big_pump, NULL);
            return;
        }
        memset(chunk, 'a' + (int)(b->sent / sizeof chunk % 26), sizeof chunk);
        http_resp_write(req, chunk, sizeof chunk);
        b->sent += sizeof chunk;
    }
    free(b);
    req->user = NULL;
    http_resp_end(req);
}

static void big_start(http_req_t *req)
{
    req->user = xcalloc(1, sizeof(big_t));
    http_req_on_close(req, big_closed, NULL);
    http_resp_start(req, 200, NULL, 0, 1024 * 1024);
    big_pump(req, NULL);
}

static void on_req(http_req_t *req, void *ud)
{
    g_requests++;
    switch (g_mode) {
    case M_ECHO:
        if (strcmp(req->path, "/defer") == 0) goto defer;
        if (strcmp(req->path, "/hold") == 0) goto hold;
        if (strcmp(req->path, "/stream") == 0) goto chunked;
        if (strcmp(req->path, "/abort") == 0) goto abort;
        if (strcmp(req->path, "/big") == 0) {
            big_start(req);
            return;
        }
        echo(req);
        return;
    case M_CHUNKED:
    chunked : {
        http_header_t h = {"content-type", "text/event-stream"};
        http_resp_start(req, 200, &h, 1, -1);
        for (int i = 0; i < 3; i++) {
            char ev[64];
            int n = snprintf(ev, sizeof ev, "event: e%d\ndata: {\"i\":%d}\n\n", i, i);
            http_resp_write(req, ev, (size_t)n);
        }
        http_resp_write(req, "", 0); /* a zero write must not end the stream */
        http_resp_end(req);
        return;
    }
    case M_DEFER:
    defer : {
        uv_timer_t *t = xmalloc(sizeof *t);
        uv_timer_init(http_req_loop(req), t);
        t->data = req;
        uv_timer_start(t, on_defer_timer, 50, 0);
        return;
    }
    case M_BACKPRESSURE:
        http_resp_start(req, 200, NULL, 0, BP_TOTAL);
        bp_pump(req, NULL);
        return;
    case M_ABORT:
    abort:
        http_resp_start(req, 200, NULL, 0, 1000);
        http_resp_write(req, "partial", 7);
        http_resp_abort(req);
        return;
    case M_HOLD:
    hold:
        /* Never answers; waits for the client to go away. */
        req->user = NULL;
        http_req_on_close(req, on_hook_close, NULL);
        return;
    }
}

static void on_watchdog(uv_timer_t *t)
{
    g_watchdog_fired = true;
    uv_stop(&g_loop);
}

static void on_done(uv_async_t *a)
{
    uv_stop(&g_loop);
}

typedef void (*client_fn)(void *);
typedef struct {
    client_fn fn;
    void *arg;
} thread_arg_t;

static void *client_thread(void *p)
{
    thread_arg_t *ta = p;
    ta->fn(ta->arg);
    uv_async_send(&g_done);
    return NULL;
}

static void server_up(mode_t_ mode)
{
    g_mode = mode;
    cr_assert_eq(uv_loop_init(&g_loop), 0);
    if (!g_cfg.on_request) g_cfg.on_request = on_req;
    static const http_header_t common[] = {{"x-maxpool-worker", "1234"}};
    g_cfg.common_headers = common;
    g_cfg.ncommon_headers = 1;
    char *err = NULL;
    int rc = http_server_start(&g_loop, "127.0.0.1", 0, &g_cfg, &g_srv, &err);
    cr_assert_eq(rc, 0, "start: %s", err ? err : "?");
    g_port = http_server_port(g_srv);
    cr_assert_gt(g_port, 0);
    uv_async_init(&g_loop, &g_done, on_done);
    uv_timer_init(&g_loop, &g_watchdog);
    uv_timer_start(&g_watchdog, on_watchdog, 20000, 0);
}

/* Runs the loop while fn runs in a client thread. */
static void run_client(client_fn fn, void *arg)
{
    pthread_t th;
    thread_arg_t ta = {fn, arg};
    pthread_create(&th, NULL, client_thread, &ta);
    uv_run(&g_loop, UV_RUN_DEFAULT);
    pthread_join(th, NULL);
    cr_assert(!g_watchdog_fired, "watchdog fired");
}

static void server_down(void)
{
    http_server_stop(g_srv, on_stopped, NULL);
    uv_close((uv_handle_t *)&g_done, NULL);
    uv_close((uv_handle_t *)&g_watchdog, NULL);
    for (int i = 0; i < 1000 && g_stop_closed == 0; i++)
        uv_run(&g_loop, UV_RUN_ONCE);
    cr_assert_eq(g_stop_closed, 1);
    cr_assert_eq(http_server_connections(g_srv), 0);
    http_server_free(g_srv);
    cr_assert_eq(uv_loop_close(&g_loop), 0, "handles left open");
}

/* ---- tests ----------------------------------------------------------------------------- */

typedef struct result {
    int ok[16];
    resp_t r[8];
    char note[256];
} result_t;

static void c_get_post(void *p)
{
    result_t *res = p;
    client_t cl;
    client_open(&cl);
    client_sends(&cl, "GET /v1/models?x=1 HTTP/1.1\r\nHost: a\r\nX-Test: hi\r\n\r\n");
    res->ok[0] = client_read_resp(&cl, &res->r[0], false);
    const char *post = "POST /v1/messages HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
    client_sends(&cl, post);
    res->ok[1] = client_read_resp(&cl, &res->r[1], false);
    client_sends(&cl, "HEAD / HTTP/1.1\r\n\r\n");
    res->ok[2] = client_read_resp(&cl, &res->r[2], true);
    client_sends(&cl, "GET /last HTTP/1.1\r\nConnection: close\r\n\r\n");
    res->ok[3] = client_read_resp(&cl, &res->r[3], false);
    res->ok[4] = client_sees_close(&cl);
    client_close(&cl);
}

Test(http_server, get_post_keepalive_reuse)
{
    server_up(M_ECHO);
    result_t res = {0};
    run_client(c_get_post, &res);
    for (int i = 0; i < 5; i++)
        cr_expect(res.ok[i], "step %d", i);
    cr_expect_eq(res.r[0].status, 200);
    cr_expect(strstr(res.r[0].body.data, "GET /v1/models q=x=1 n=0 peer_local=1 ka=1") != NULL,
              "%s", res.r[0].body.data);
    cr_expect(resp_has(&res.r[0], "x-echo: hi"));
    cr_expect(resp_has(&res.r[0], "x-maxpool-worker: 1234"));
    cr_expect(!resp_has(&res.r[0], "999"), "handler's content-length must be ignored");
    cr_expect(!resp_has(&res.r[0], "connection: close"));
    cr_expect(strstr(res.r[1].body.data, "POST /v1/messages q= n=5") != NULL);
    cr_expect(strstr(res.r[1].body.data, "\nhello") != NULL);
    cr_expect_eq(res.r[2].status, 200);
    cr_expect(resp_has(&res.r[2], "content-length: "));
    cr_expect(resp_has(&res.r[3], "connection: close"));
    /* Three requests, one connection. */
    cr_expect(strstr(res.r[3].body.data, "id=4") != NULL, "%s", res.r[3].body.data);
    cr_expect_eq(g_requests, 4);
    for (int i = 0; i < 4; i++)
        resp_free(&res.r[i]);
    server_down();
}

static void c_pipeline(void *p)
{
    result_t *res = p;
    client_t cl;
    client_open(&cl);
    /* Three requests in one send; the middle one is answered late (deferred). */
    client_sends(&cl, "GET /a HTTP/1.1\r\n\r\nGET /defer HTTP/1.1\r\n\r\n"
                      "POST /c HTTP/1.1\r\nContent-Length: 2\r\n\r\nok");
    for (int i = 0; i < 3; i++)
        res->ok[i] = client_read_resp(&cl, &res->r[i], false);
    client_close(&cl);
}

Test(http_server, pipelining_in_order)
{
    server_up(M_ECHO);
    result_t res = {0};
    run_client(c_pipeline, &res);
    const char *want[] = {"GET /a ", "GET /defer ", "POST /c "};
    for (int i = 0; i < 3; i++) {
        cr_expect(res.ok[i], "response %d", i);
        cr_expect(res.r[i].body.data && strstr(res.r[i].body.data, want[i]), "response %d", i);
        resp_free(&res.r[i]);
    }
    server_down();
}

static void c_chunked(void *p)
{
    result_t *res = p;
    client_t cl;
    client_open(&cl);
    client_sends(&cl, "POST /stream HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "3\r\nabc\r\n0\r\n\r\n");
    res->ok[0] = client_read_resp(&cl, &res->r[0], false);
    /* HTTP/1.0 gets no chunks: the body ends with the connection. */
    client_t c10;
    client_open(&c10);
    client_sends(&c10, "GET /s HTTP/1.0\r\n\r\n");
    res->ok[1] = client_read_resp(&c10, &res->r[1], false);
    client_close(&c10);
    client_close(&cl);
}

Test(http_server, chunked_streaming_response)
{
    server_up(M_CHUNKED);
    result_t res = {0};
    run_client(c_chunked, &res);
    cr_expect(res.ok[0]);
    cr_expect(resp_has(&res.r[0], "transfer-encoding: chunked"));
    cr_expect_str_eq(res.r[0].body.data, "event: e0\ndata: {\"i\":0}\n\nevent: e1\ndata: "
                                         "{\"i\":1}\n\nevent: e2\ndata: {\"i\":2}\n\n");
    cr_expect(res.ok[1]);
    cr_expect(!resp_has(&res.r[1], "transfer-encoding"));
    cr_expect(resp_has(&res.r[1], "connection: close"));
    cr_expect(res.r[1].body.len > 0 && strstr(res.r[1].body.data, "event: e2"));
    resp_free(&res.r[0]);
    resp_free(&res.r[1]);
    server_down();
}

/* Sends bad to one connection while a healthy deferred request runs on another. */
static void bad_vs_healthy(result_t *res, const char *bad, size_t badlen)
{
    client_t good, evil;
    client_open(&good);
    client_sends(&good, "GET /defer HTTP/1.1\r\n\r\n");
    client_open(&evil);
    client_send(&evil, bad, badlen);
    res->ok[0] = client_read_resp(&evil, &res->r[0], false);
    res->ok[1] = client_sees_close(&evil);
    res->ok[2] = client_read_resp(&good, &res->r[1], false);
    /* The healthy connection is still usable. */
    client_sends(&good, "GET /again HTTP/1.1\r\n\r\n");
    res->ok[3] = client_read_resp(&good, &res->r[2], false);
    client_close(&evil);
    client_close(&good);
}

static void c_431(void *p)
{
    buf_t b;
    buf_init(&b, 0);
    buf_puts(&b, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < 500; i++)
        buf_printf(&b, "X-Flood-%d: %d\r\n", i, i);
    buf_puts(&b, "\r\n");
    bad_vs_healthy(p, b.data, b.len);
    buf_free(&b);
}

static void c_413(void *p)
{
    const char *s = "POST /big HTTP/1.1\r\nContent-Length: 100000\r\n\r\nsome body";
    bad_vs_healthy(p, s, strlen(s));
}

static void c_413_chunked(void *p)
{
    buf_t b;
    buf_init(&b, 0);
    buf_puts(&b, "POST /big HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 200; i++)
        buf_puts(&b, "10\r\n0123456789abcdef\r\n");
    bad_vs_healthy(p, b.data, b.len);
    buf_free(&b);
}

static void c_400(void *p)
{
    const char *s = "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
    bad_vs_healthy(p, s, strlen(s));
}

static void check_bad(result_t *res, int status, const char *type)
{
    cr_expect(res->ok[0], "error response read");
    cr_expect_eq(res->r[0].status, status);
    cr_expect(resp_has(&res->r[0], "content-type: application/json"));
    cr_expect(resp_has(&res->r[0], "connection: close"));
    char want[128];
    snprintf(want, sizeof want, "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":\"",
             type);
    cr_expect(res->r[0].body.data && strncmp(res->r[0].body.data, want, strlen(want)) == 0,
              "body %s", res->r[0].body.data);
    cr_expect(res->ok[1], "bad connection closed");
    cr_expect(res->ok[2], "healthy request completed");
    cr_expect_eq(res->r[1].status, 200);
    cr_expect(res->ok[3], "healthy connection reusable");
    for (int i = 0; i < 3; i++)
        resp_free(&res->r[i]);
}

Test(http_server, header_flood_431_spares_others)
{
    g_cfg.max_head_bytes = 4096;
    server_up(M_ECHO);
    result_t res = {0};
    run_client(c_431, &res);
    check_bad(&res, 431, "invalid_request_error");
    server_down();
}

Test(http_server, body_limit_413_spares_others)
{
    g_cfg.max_body_bytes = 1000;
    server_up(M_ECHO);
    result_t res = {0};
    run_client(c_413, &res);
    check_bad(&res, 413, "request_too_large");
    server_down();
}

Test(http_server, chunked_body_limit_413)
{
    g_cfg.max_body_bytes = 1000;
    server_up(M_ECHO);
    result_t res = {0};
    run_client(c_413_chunked, &res);
    check_bad(&res, 413, "request_too_large");
    server_down();
}

Test(http_server, malformed_400_spares_others)
{
    server_up(M_ECHO);
    result_t res = {0};
    run_client(c_400, &res);
    check_bad(&res, 400, "invalid_request_error");
    server_down();
}

static void c_slowloris(void *p)
{
    result_t *res = p;
    client_t cl;
    client_open(&cl);
    client_sends(&cl, "GET / HTTP/1.1\r\nX-Slow: a");
    /* ...and never finishes: the head timer answers 408. */
    res->ok[0] = client_read_resp(&cl, &res->r[0], false);
    res->ok[1] = client_sees_close(&cl);
    client_close(&cl);
    /* An idle keep-alive connection is simply closed. */
    client_open(&cl);
    res->ok[2] = client_sees_close(&cl);
    client_close(&cl);
}

Test(http_server, head_timeout_408_and_idle_close)
{
    g_cfg.head_timeout_ms = 100;
    g_cfg.idle_timeout_ms = 100;
    server_up(M_ECHO);
    result_t res = {0};
    run_client(c_slowloris, &res);
    cr_expect(res.ok[0]);
    cr_expect_eq(res.r[0].status, 408);
    cr_expect(res.ok[1]);
    cr_expect(res.ok[2]);
    resp_free(&res.r[0]);
    cr_expect_eq(g_requests, 0);
    server_down();
}

static void c_backpressure(void *p)
{
    result_t *res = p;
    client_t cl;
    client_open_rcvbuf(&cl, 8192);
    client_sends(&cl, "GET /big HTTP/1.1\r\n\r\n");
    /* Do not read for a while: the server's queue must fill past the high-water mark. */
    usleep(300 * 1000);
    res->ok[0] = client_read_resp(&cl, &res->r[0], false);
    client_close(&cl);
}

Test(http_server, backpressure_and_drain)
{
    g_cfg.write_high_water = 128 * 1024;
    server_up(M_BACKPRESSURE);
    result_t res = {0};
    run_client(c_backpressure, &res);
    cr_expect(res.ok[0]);
    cr_expect_eq(res.r[0].body.len, BP_TOTAL);
    cr_expect_gt(g_not_writable, 0, "http_resp_writable never turned false");
    cr_expect_eq(g_drains, g_not_writable, "every wait got its drain");
    resp_free(&res.r[0]);
    server_down();
}

static void c_abort(void *p)
{
    result_t *res = p;
    client_t cl;
    client_open(&cl);
    client_sends(&cl, "GET /x HTTP/1.1\r\n\r\n");
    res->ok[0] = !client_read_resp(&cl, &res->r[0], false); /* must not complete */
    client_close(&cl);
}

Test(http_server, abort_resets)
{
    server_up(M_ABORT);
    result_t res = {0};
    run_client(c_abort, &res);
    cr_expect(res.ok[0], "an aborted response must not look complete");
    resp_free(&res.r[0]);
    server_down();
}

static void c_disconnect(void *p)
{
    client_t cl;
    client_open(&cl);
    client_sends(&cl, "GET /hold HTTP/1.1\r\n\r\n");
    usleep(100 * 1000);
    client_close(&cl);
    /* Give the server a moment to notice before the loop is stopped. */
    client_t probe;
    client_open(&probe);
    client_sends(&probe, "GET /probe HTTP/1.1\r\n\r\n");
    resp_t r;
    client_read_resp(&probe, &r, false);
    resp_free(&r);
    client_close(&probe);
}

Test(http_server, client_disconnect_fires_on_close)
{
    server_up(M_ECHO);
    run_client(c_disconnect, NULL);
    for (int i = 0; i < 100 && g_closed_hooks == 0; i++)
        uv_run(&g_loop, UV_RUN_NOWAIT);
    cr_expect_eq(g_closed_hooks, 1);
    cr_expect_eq(http_server_busy(g_srv), 0);
    server_down();
}

static void c_stop(void *p)
{
    result_t *res = p;
    static client_t idle;
    client_open(&idle);
    client_sends(&idle, "GET /a HTTP/1.1\r\n\r\n");
    res->ok[0] = client_read_resp(&idle, &res->r[0], false);
    /* The idle connection stays open; the main thread stops the server now. */
    res->ok[1] = idle.fd;
}

Test(http_server, stop_closes_idle_connections)
{
    server_up(M_ECHO);
    result_t res = {0};
    run_client(c_stop, &res);
    cr_expect(res.ok[0]);
    cr_expect_eq(http_server_connections(g_srv), 1);
    client_t cl = {.fd = res.ok[1]};
    server_down(); /* asserts on_closed fired and no handle is left */
    cr_expect(client_sees_close(&cl));
    client_close(&cl);
    resp_free(&res.r[0]);
}

Test(http_server, bind_error_is_reported)
{
    server_up(M_ECHO);
    http_server_t *second = NULL;
    char *err = NULL;
    int rc = http_server_start(&g_loop, "127.0.0.1", g_port, &g_cfg, &second, &err);
    cr_expect_eq(rc, UV_EADDRINUSE);
    cr_expect_not_null(err);
    cr_expect_null(second);
    free(err);
    err = NULL;
    rc = http_server_start(&g_loop, "not-an-ip", 0, &g_cfg, &second, &err);
    cr_expect_lt(rc, 0);
    free(err);
    server_down();
}

static void c_gone_without_hook(void *p)
{
    result_t *res = p;
    client_t cl;
    client_open(&cl);
    /* The handler answers 50 ms later from a timer and registered no on_close hook. */
    client_sends(&cl, "GET /defer HTTP/1.1\r\n\r\n");
    client_close(&cl);
    usleep(150 * 1000);
    client_t probe;
    client_open(&probe);
    client_sends(&probe, "GET /probe HTTP/1.1\r\n\r\n");
    res->ok[0] = client_read_resp(&probe, &res->r[0], false);
    client_close(&probe);
}

Test(http_server, late_answer_to_gone_client_is_harmless)
{
    server_up(M_ECHO);
    result_t res = {0};
    run_client(c_gone_without_hook, &res);
    cr_expect(res.ok[0]);
    cr_expect_eq(res.r[0].status, 200);
    resp_free(&res.r[0]);
    for (int i = 0; i < 100 && http_server_busy(g_srv); i++)
        uv_run(&g_loop, UV_RUN_NOWAIT);
    cr_expect_eq(http_server_busy(g_srv), 0);
    server_down();
}

static void c_expect(void *p)
{
    result_t *res = p;
    client_t cl;
    client_open(&cl);
    client_sends(&cl, "POST /up HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    /* The interim 100 arrives before we send the body. */
    res->ok[0] = client_read_resp(&cl, &res->r[0], true);
    client_sends(&cl, "data");
    res->ok[1] = client_read_resp(&cl, &res->r[1], false);
    client_close(&cl);
}

Test(http_server, expect_100_continue)
{
    server_up(M_ECHO);
    result_t res = {0};
    run_client(c_expect, &res);
    cr_expect(res.ok[0]);
    cr_expect_eq(res.r[0].status, 100);
    cr_expect(res.ok[1]);
    cr_expect_eq(res.r[1].status, 200);
    cr_expect(res.r[1].body.data && strstr(res.r[1].body.data, "n=4"));
    resp_free(&res.r[0]);
    resp_free(&res.r[1]);
    server_down();
}

static uv_async_t g_stop_async;

static void c_stop_busy(void *p)
{
    result_t *res = p;
    client_t cl;
    client_open(&cl);
    client_sends(&cl, "GET /defer HTTP/1.1\r\n\r\n");
    usleep(10 * 1000);
    /* Ask the loop thread to stop the server while the request is in flight. */
    uv_async_send(&g_stop_async);
    res->ok[0] = client_read_resp(&cl, &res->r[0], false);
    res->ok[1] = client_sees_close(&cl);
    client_close(&cl);
}

static void on_done_stop(uv_async_t *a)
{
    http_server_stop(g_srv, on_stopped, NULL);
}

Test(http_server, stop_finishes_busy_response_then_closes)
{
    server_up(M_ECHO);
    uv_async_init(&g_loop, &g_stop_async, on_done_stop);
    result_t res = {0};
    pthread_t th;
    thread_arg_t ta = {c_stop_busy, &res};
    pthread_create(&th, NULL, client_thread, &ta);
    for (int i = 0; i < 100000 && g_stop_closed == 0 && !g_watchdog_fired; i++)
        uv_run(&g_loop, UV_RUN_ONCE);
    pthread_join(th, NULL);
    cr_expect_eq(g_stop_closed, 1);
    cr_expect(res.ok[0], "in-flight response completed");
    cr_expect_eq(res.r[0].status, 200);
    cr_expect(resp_has(&res.r[0], "connection: close"));
    cr_expect(res.ok[1]);
    resp_free(&res.r[0]);
    uv_close((uv_handle_t *)&g_done, NULL);
    uv_close((uv_handle_t *)&g_stop_async, NULL);
    uv_close((uv_handle_t *)&g_watchdog, NULL);
    uv_run(&g_loop, UV_RUN_DEFAULT);
    http_server_free(g_srv);
    cr_expect_eq(uv_loop_close(&g_loop), 0);
}

static void c_set_close(void *p)
{
    result_t *res = p;
    client_t cl;
    client_open(&cl);
    client_sends(&cl, "GET /a HTTP/1.1\r\nX-Close: 1\r\n\r\nGET /b HTTP/1.1\r\n\r\n");
    res->ok[0] = client_read_resp(&cl, &res->r[0], false);
    res->ok[1] = client_sees_close(&cl);
    client_close(&cl);
}

Test(http_server, resp_set_close)
{
    server_up(M_ECHO);
    result_t res = {0};
    run_client(c_set_close, &res);
    cr_expect(res.ok[0]);
    cr_expect(resp_has(&res.r[0], "connection: close"));
    cr_expect(res.ok[1], "closed after the response; the pipelined request is dropped");
    cr_expect_eq(g_requests, 1);
    resp_free(&res.r[0]);
    server_down();
}

/* ---- chaos: many connections doing good and bad things at once (for ASan) ---------- */

static unsigned chaos_rand(unsigned *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    return (*seed >> 16) & 0x7fff;
}

static void c_chaos(void *p)
{
    result_t *res = p;
    unsigned seed = 42;
    client_t *cl = xcalloc(8, sizeof *cl);
    int good = 0, good_ok = 0;
    for (int round = 0; round < 60; round++) {
        /* Open 8 connections, give each a random job, then finish them in turn. */
        int job[8];
        for (int i = 0; i < 8; i++) {
            client_open(&cl[i]);
            job[i] = (int)(chaos_rand(&seed) % 10);
            switch (job[i]) {
            case 0:
                client_sends(&cl[i], "GET /x HTTP/1.1\r\n\r\n");
                break;
            case 1:
                client_sends(&cl[i], "GET /defer HTTP/1.1\r\n\r\n");
                break;
            case 2:
                client_sends(&cl[i], "GET /hold HTTP/1.1\r\n\r\n");
                break;
            case 3:
                client_sends(&cl[i], "\x16\x03\x01garbage\r\n\r\n");
                break;
            case 4:
                client_sends(&cl[i], "POST /x HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc");
                break;
            case 5:
                client_sends(&cl[i], "GET /a HTTP/1.1\r\n\r\nGET /defer HTTP/1.1\r\n\r\n"
                                     "GET /stream HTTP/1.1\r\n\r\n");
                break;
            case 6:
                client_sends(&cl[i], "GET /abort HTTP/1.1\r\n\r\n");
                break;
            case 7:
                client_sends(&cl[i], "GET /big HTTP/1.1\r\n\r\n");
                break;
            case 8:
                client_sends(&cl[i], "GET /stream HTTP/1.1\r\n\r\n");
                break;
            default:
                client_sends(&cl[i], "GET /big HTTP/1.1\r\n\r\nGET /x HTTP/1.1\r\n\r\n");
                break;
            }
        }
        for (int i = 0; i < 8; i++) {
            resp_t r;
            bool read_it = chaos_rand(&seed) % 3 != 0;
            if (read_it && (job[i] == 0 || job[i] == 1 || job[i] == 8)) {
                good++;
                if (client_read_resp(&cl[i], &r, false) && r.status == 200) good_ok++;
                resp_free(&r);
            } else if (read_it && (job[i] == 7 || job[i] == 9)) {
                /* Read a little of the big body, then vanish mid-stream. */
                char tmp[4096];
                recv(cl[i].fd, tmp, sizeof tmp, 0);
            }
            client_close(&cl[i]);
        }
    }
    free(cl);
    res->ok[0] = good;
    res->ok[1] = good_ok;
    /* A final healthy request proves the server still serves. */
    client_t last;
    client_open(&last);
    client_sends(&last, "GET /final HTTP/1.1\r\n\r\n");
    res->ok[2] = client_read_resp(&last, &res->r[0], false);
    client_close(&last);
}

Test(http_server, chaos_many_connections, .timeout = 60)
{
    g_cfg.write_high_water = 32 * 1024;
    server_up(M_ECHO);
    result_t res = {0};
    run_client(c_chaos, &res);
    cr_expect_gt(res.ok[0], 0);
    cr_expect_eq(res.ok[1], res.ok[0], "every healthy request that was read completed");
    cr_expect(res.ok[2]);
    cr_expect_eq(res.r[0].status, 200);
    resp_free(&res.r[0]);
    /* Let the server notice the last disconnects, then everything must be released. */
    for (int i = 0; i < 2000 && (http_server_busy(g_srv) || http_server_connections(g_srv) > 0);
         i++) {
        uv_run(&g_loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    cr_expect_eq(http_server_busy(g_srv), 0, "busy %zu", http_server_busy(g_srv));
    cr_expect_gt(g_closed_hooks, 0, "some disconnects reached on_close hooks");
    server_down();
}

static void c_budget(void *p)
{
    result_t *res = p;
    client_t a, b, c;
    buf_t body;
    buf_init(&body, 0);
    for (int i = 0; i < 800; i++)
        buf_append(&body, "x", 1);
    client_open(&a);
    client_sends(&a, "POST /hold HTTP/1.1\r\nContent-Length: 800\r\n\r\n");
    client_send(&a, body.data, 800);
    usleep(50 * 1000);
    client_open(&b);
    client_sends(&b, "POST /x HTTP/1.1\r\nContent-Length: 300\r\n\r\n");
    res->ok[0] = client_read_resp(&b, &res->r[0], false);
    client_open(&c);
    client_sends(&c, "POST /x HTTP/1.1\r\nContent-Length: 100\r\n\r\n");
    client_send(&c, body.data, 100);
    res->ok[1] = client_read_resp(&c, &res->r[1], false);
    client_close(&a);
    client_close(&b);
    client_close(&c);
    buf_free(&body);
}

Test(http_server, global_body_budget_503)
{
    server_up(M_ECHO);
    http_server_set_buffer_limit(g_srv, 1000);
    result_t res = {0};
    run_client(c_budget, &res);
    cr_expect(res.ok[0]);
    cr_expect_eq(res.r[0].status, 503);
    cr_expect(res.r[0].body.data && strstr(res.r[0].body.data, "overloaded_error"));
    cr_expect(res.ok[1]);
    cr_expect_eq(res.r[1].status, 200, "a body that fits the budget still passes");
    for (int i = 0; i < 2000 && http_server_buffered(g_srv); i++) {
        uv_run(&g_loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    cr_expect_eq(http_server_buffered(g_srv), 0, "every byte returned to the budget");
    resp_free(&res.r[0]);
    resp_free(&res.r[1]);
    server_down();
}
