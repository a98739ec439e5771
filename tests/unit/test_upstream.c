/* http/upstream against a tiny scripted TCP server running in a thread. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/buf.h"
#include "http/upstream.h"
#include "testutil.h"

/* ---- a one-connection scripted server ---------------------------------------- */

typedef void (*serve_fn)(int fd, const char *req, size_t n);

typedef struct server {
    int lfd;
    int port;
    serve_fn fn;
    pthread_t th;
    buf_t got; /* the raw request head + body as received */
} server_t;

static size_t head_end(const char *s, size_t n)
{
    for (size_t i = 3; i < n; i++)
        if (memcmp(s + i - 3, "\r\n\r\n", 4) == 0) return i + 1;
    return 0;
}

static void *server_main(void *arg)
{
    server_t *s = arg;
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0) return NULL;
    char tmp[65536];
    size_t want = 0;
    for (;;) {
        ssize_t r = read(fd, tmp, sizeof tmp);
        if (r <= 0) break;
        buf_append(&s->got, tmp, (size_t)r);
        size_t he = head_end(s->got.data, s->got.len);
        if (he && !want) {
            const char *cl = strcasestr(s->got.data, "content-length:");
            want = he + (cl && cl < s->got.data + he ? strtoul(cl + 15, NULL, 10) : 0);
        }
        if (want && s->got.len >= want) break;
    }
    s->fn(fd, s->got.data, s->got.len);
    close(fd);
    return NULL;
}

static server_t *g_srv; /* freed by the suite's fini, after the test's checks */

static server_t *server_start(serve_fn fn)
{
    server_t *s = calloc(1, sizeof *s);
    g_srv = s;
    s->fn = fn;
    buf_init(&s->got, 0);
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
    listen(s->lfd, 4);
    socklen_t al = sizeof a;
    getsockname(s->lfd, (struct sockaddr *)&a, &al);
    s->port = ntohs(a.sin_port);
    pthread_create(&s->th, NULL, server_main, s);
    return s;
}

static void server_join(server_t *s)
{
    pthread_join(s->th, NULL);
    close(s->lfd);
}

static void say(int fd, const char *s)
{
    ssize_t w = send(fd, s, strlen(s), MSG_NOSIGNAL);
    (void)w;
}

/* ---- a recording client -------------------------------------------------------- */

typedef struct rec {
    int status;
    int heads, bodies, dones;
    buf_t body;
    const char *err;
    char ctype[64];
    bool pause_after_first;
    int bodies_at_pause;
    upstream_req_t *req;
    uv_timer_t resume;
    bool cancel_in_head;
} rec_t;

static void on_head(upstream_req_t *u, int status, const http_header_t *h, size_t n, void *ud)
{
    rec_t *r = ud;
    r->status = status;
    r->heads++;
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(h[i].name, "content-type") == 0)
            snprintf(r->ctype, sizeof r->ctype, "%s", h[i].value);
    if (r->cancel_in_head) upstream_req_cancel(u);
}

static void resume_cb(uv_timer_t *t)
{
    rec_t *r = t->data;
    /* Nothing may have arrived while paused. */
    cr_assert_eq(r->bodies, r->bodies_at_pause);
    upstream_req_resume(r->req);
    uv_close((uv_handle_t *)t, NULL);
}

static void on_body(upstream_req_t *u, const char *p, size_t n, void *ud)
{
    rec_t *r = ud;
    r->bodies++;
    buf_append(&r->body, p, n);
    if (r->pause_after_first && r->bodies == 1) {
        upstream_req_pause(u);
        r->bodies_at_pause = r->bodies;
        r->req = u;
        uv_timer_init(uv_default_loop(), &r->resume);
        r->resume.data = r;
        uv_timer_start(&r->resume, resume_cb, 150, 0);
    }
}

static void on_done(upstream_req_t *u, const char *err, const char *detail, void *ud)
{
    rec_t *r = ud;
    r->dones++;
    r->err = err;
}

static const upstream_callbacks_t CB = {on_head, on_body, on_done};

static void run(rec_t *r, int port, const char *method, const char *path, const http_header_t *h,
                size_t nh, const void *body, size_t blen, const upstream_opts_t *opts)
{
    uv_loop_t *loop = uv_default_loop();
    upstream_t *up = upstream_new(loop);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    buf_init(&r->body, 0);
    upstream_start(up, method, url, h, nh, body, blen, opts, &CB, r);
    uv_run(loop, UV_RUN_DEFAULT);
    cr_assert_eq(upstream_active(up), 0);
    upstream_free(up);
    uv_run(loop, UV_RUN_DEFAULT);
}

/* ---- scenarios ----------------------------------------------------------------- */

static void cleanup(void)
{
    if (g_srv) {
        buf_free(&g_srv->got);
        free(g_srv);
    }
}

TestSuite(upstream, .fini = cleanup);

static void serve_json(int fd, const char *req, size_t n)
{
    say(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n"
            "X-Test:  padded  \r\n\r\n{\"ok\":true}");
}

Test(upstream, get_sends_only_given_headers)
{
    server_t *s = server_start(serve_json);
    rec_t r = {0};
    http_header_t h[] = {{"x-api-key", "sk-ant-k"}, {"anthropic-version", "2023-06-01"}};
    run(&r, s->port, "GET", "/v1/models?x=1", h, 2, NULL, 0, NULL);
    server_join(s);
    cr_assert_eq(r.status, 200);
    cr_assert_null(r.err);
    cr_assert_eq(r.dones, 1);
    cr_assert_str_eq(r.body.data, "{\"ok\":true}");
    cr_assert_str_eq(r.ctype, "application/json");
    const char *got = s->got.data;
    cr_assert(strncmp(got, "GET /v1/models?x=1 HTTP/1.1\r\n", 29) == 0, "%s", got);
    cr_assert_not_null(strstr(got, "x-api-key: sk-ant-k\r\n"));
    cr_assert_null(strcasestr(got, "accept:"), "%s", got);
    cr_assert_null(strcasestr(got, "user-agent"), "%s", got);
    cr_assert_null(strcasestr(got, "accept-encoding"), "%s", got);
    cr_assert_null(strcasestr(got, "expect"), "%s", got);
    buf_free(&r.body);
}

static void serve_echo_len(int fd, const char *req, size_t n)
{
    size_t he = head_end(req, n);
    char out[256];
    snprintf(out, sizeof out, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%zu",
             snprintf(NULL, 0, "%zu", n - he), n - he);
    say(fd, out);
}

Test(upstream, post_body_arrives_intact)
{
    server_t *s = server_start(serve_echo_len);
    size_t n = 1 << 20;
    char *body = malloc(n);
    for (size_t i = 0; i < n; i++)
        body[i] = (char)('a' + i % 26);
    http_header_t h[] = {{"content-type", "application/json"}};
    rec_t r = {0};
    run(&r, s->port, "POST", "/v1/messages", h, 1, body, n, NULL);
    server_join(s);
    cr_assert_null(r.err);
    cr_assert_str_eq(r.body.data, "1048576");
    size_t he = head_end(s->got.data, s->got.len);
    cr_assert_eq(memcmp(s->got.data + he, body, n), 0);
    cr_assert_null(strcasestr(s->got.data, "x-www-form-urlencoded"));
    free(body);
    buf_free(&r.body);
}

static void serve_chunked_slow(int fd, const char *req, size_t n)
{
    say(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            "Transfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 5; i++) {
        say(fd, "6\r\nevent\n\r\n");
        usleep(20000);
    }
    say(fd, "0\r\n\r\n");
}

Test(upstream, pause_holds_body_until_resume)
{
    server_t *s = server_start(serve_chunked_slow);
    rec_t r = {.pause_after_first = true};
    run(&r, s->port, "GET", "/", NULL, 0, NULL, 0, NULL);
    server_join(s);
    cr_assert_null(r.err);
    cr_assert_str_eq(r.body.data, "event\nevent\nevent\nevent\nevent\n");
    cr_assert_str_eq(r.ctype, "text/event-stream");
    buf_free(&r.body);
}

static void serve_nothing(int fd, const char *req, size_t n)
{
    usleep(600000);
}

Test(upstream, ttfb_timeout)
{
    server_t *s = server_start(serve_nothing);
    rec_t r = {0};
    upstream_opts_t o = {.ttfb_ms = 100};
    run(&r, s->port, "GET", "/", NULL, 0, NULL, 0, &o);
    server_join(s);
    cr_assert_eq(r.err, upstream_err_ttfb);
    cr_assert_eq(r.heads, 0);
    cr_assert_eq(r.dones, 1);
    buf_free(&r.body);
}

static void serve_short(int fd, const char *req, size_t n)
{
    say(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten..");
}

Test(upstream, early_close_is_reported)
{
    server_t *s = server_start(serve_short);
    rec_t r = {0};
    run(&r, s->port, "GET", "/", NULL, 0, NULL, 0, NULL);
    server_join(s);
    cr_assert_eq(r.heads, 1);
    cr_assert_eq(r.err, upstream_err_closed);
    buf_free(&r.body);
}

Test(upstream, connection_refused_is_connect_error)
{
    /* Bind then close a socket to find a port that is (almost certainly) closed. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(fd, (struct sockaddr *)&a, sizeof a);
    socklen_t al = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &al);
    close(fd);
    rec_t r = {0};
    run(&r, ntohs(a.sin_port), "GET", "/", NULL, 0, NULL, 0, NULL);
    cr_assert_eq(r.err, upstream_err_connect);
    cr_assert_eq(r.dones, 1);
    buf_free(&r.body);
}

Test(upstream, cancel_inside_callback_fires_nothing_more)
{
    server_t *s = server_start(serve_chunked_slow);
    rec_t r = {.cancel_in_head = true};
    run(&r, s->port, "GET", "/", NULL, 0, NULL, 0, NULL);
    server_join(s);
    cr_assert_eq(r.heads, 1);
    cr_assert_eq(r.bodies, 0);
    cr_assert_eq(r.dones, 0);
    buf_free(&r.body);
}
