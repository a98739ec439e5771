/* http/upstream — libcurl multi-socket on libuv. See upstream.h for the contract.
 *
 * The one rule that shapes this file: libcurl forbids removing an easy handle from inside
 * its own callbacks. Everything that ends a transfer therefore happens either after
 * curl_multi_socket_action() returned (check_done) or from our own uv timers; a cancel that
 * arrives while libcurl is on the stack only marks the request, and the next callback
 * returns 0, which makes libcurl abort the transfer itself. */
#include "http/upstream.h"
#include "http/headers.h"
#include "core/buf.h"
#include "core/xalloc.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <strings.h>

#define UPSTREAM_SPARE_MAX 64

const char upstream_err_connect[] = "upstream connect failed";
const char upstream_err_ttfb[] = "upstream sent no response head in time";
const char upstream_err_idle[] = "upstream stream went idle";
const char upstream_err_io[] = "upstream connection failed";
const char upstream_err_closed[] = "upstream closed the connection early";

struct upstream {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    char *proxy;
    upstream_req_t *reqs; /* in flight, doubly linked */
    size_t active;
    int in_curl; /* depth of libcurl frames on the stack */
    /* Easy handles of finished transfers, reset and kept for the next request: a fresh
     * handle costs a large calloc, libcurl's defaults and a 16 KiB receive buffer. */
    CURL *spare[UPSTREAM_SPARE_MAX];
    size_t nspare;
    /* Poll handles by socket, kept while libcurl keeps the connection (see socket_fn). */
    struct sock_ctx **socks;
    size_t nsocks;
};

typedef struct sock_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
    upstream_t *up;
    int events; /* what the poll handle is started with; 0 = stopped */
    bool idle;  /* libcurl stopped watching it (CURL_POLL_REMOVE) but kept the connection */
} sock_ctx_t;

struct upstream_req {
    upstream_t *up;
    CURL *easy;
    struct curl_slist *slist; /* one block: the nodes, then their strings (build_slist) */
    upstream_callbacks_t cb;
    void *ud;
    upstream_opts_t opts;
    uv_timer_t timer; /* TTFB until the head, then idle between chunks */
    buf_t hstore;     /* "name\0value\0" pairs of the current response head */
    size_t nh;
    int status;
    bool got_head, paused, cancelled, finished;
    bool reusable; /* ended cleanly: the easy handle may serve another request */
    const char *timeout_err;
    char errbuf[CURL_ERROR_SIZE];
    upstream_req_t *prev, *next;
};

static void check_done(upstream_t *up);

/* ---- socket and timer plumbing ------------------------------------------------ */

static void sock_closed(uv_handle_t *h)
{
    free(h->data);
}

static void poll_cb(uv_poll_t *h, int status, int events);

static sock_ctx_t *sock_find(upstream_t *up, curl_socket_t fd)
{
    return fd >= 0 && (size_t)fd < up->nsocks ? up->socks[fd] : NULL;
}

static void sock_set(upstream_t *up, curl_socket_t fd, sock_ctx_t *ctx)
{
    if ((size_t)fd >= up->nsocks) {
        size_t n = up->nsocks ? up->nsocks : 64;
        while (n <= (size_t)fd)
            n *= 2;
        up->socks = xrealloc(up->socks, n * sizeof *up->socks);
        memset(up->socks + up->nsocks, 0, (n - up->nsocks) * sizeof *up->socks);
        up->nsocks = n;
    }
    up->socks[fd] = ctx;
}

static void sock_watch(sock_ctx_t *ctx, int ev)
{
    if (ev == ctx->events) return; /* every uv_poll_start costs an epoll_ctl */
    ctx->events = ev;
    if (ev)
        uv_poll_start(&ctx->poll, ev, poll_cb);
    else
        uv_poll_stop(&ctx->poll);
}

/* libcurl closes a connection's socket: its poll handle goes first (libuv must not poll a
 * closed descriptor, whose number the next socket or accepted client may reuse). */
static int close_fn(void *clientp, curl_socket_t fd)
{
    upstream_t *up = clientp;
    sock_ctx_t *ctx = sock_find(up, fd);
    if (ctx) {
        sock_set(up, fd, NULL);
        uv_poll_stop(&ctx->poll);
        uv_close((uv_handle_t *)&ctx->poll, sock_closed);
    }
    return close(fd);
}

static void poll_cb(uv_poll_t *h, int status, int events)
{
    sock_ctx_t *ctx = h->data;
    upstream_t *up = ctx->up;
    if (ctx->idle) {
        /* EOF or stray bytes on a cached connection: libcurl's reuse check will see it;
         * stop polling so a level-triggered event does not spin the loop. */
        sock_watch(ctx, 0);
        return;
    }
    int flags = 0;
    if (status < 0) flags |= CURL_CSELECT_ERR;
    if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
    int running;
    up->in_curl++;
    curl_multi_socket_action(up->multi, ctx->fd, flags, &running);
    up->in_curl--;
    check_done(up);
}

static int socket_fn(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    upstream_t *up = userp;
    sock_ctx_t *ctx = socketp;
    if (what == CURL_POLL_REMOVE) {
        /* Usually the end of a transfer whose connection goes back to libcurl's cache and
         * serves the next request: the handle stays as it is (epoll registration and all)
         * instead of being closed and re-created per request. close_fn frees it. */
        if (ctx) {
            curl_multi_assign(up->multi, s, NULL);
            ctx->idle = true;
        }
        return 0;
    }
    if (!ctx) ctx = sock_find(up, s);
    if (!ctx) {
        ctx = xcalloc(1, sizeof *ctx);
        ctx->fd = s;
        ctx->up = up;
        if (uv_poll_init_socket(up->loop, &ctx->poll, s) != 0) {
            free(ctx);
            return -1;
        }
        ctx->poll.data = ctx;
        sock_set(up, s, ctx);
    }
    if (ctx->idle) {
        ctx->idle = false;
        curl_multi_assign(up->multi, s, ctx);
    } else if (!socketp) {
        curl_multi_assign(up->multi, s, ctx);
    }
    int ev = 0;
    if (what & CURL_POLL_IN) ev |= UV_READABLE;
    if (what & CURL_POLL_OUT) ev |= UV_WRITABLE;
    sock_watch(ctx, ev);
    return 0;
}

static void multi_timer_cb(uv_timer_t *t)
{
    upstream_t *up = t->data;
    int running;
    up->in_curl++;
    curl_multi_socket_action(up->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    up->in_curl--;
    check_done(up);
}

static int timer_fn(CURLM *m, long timeout_ms, void *userp)
{
    upstream_t *up = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&up->timer);
    else
        uv_timer_start(&up->timer, multi_timer_cb, (uint64_t)timeout_ms, 0);
    return 0;
}

/* ---- request lifecycle -------------------------------------------------------- */

static void req_closed(uv_handle_t *h)
{
    upstream_req_t *u = h->data;
    buf_free(&u->hstore);
    free(u);
}

/* Detaches u from libcurl and the list, then frees it once its timer handle closed. */
static void req_release(upstream_req_t *u)
{
    upstream_t *up = u->up;
    if (u->easy) {
        curl_multi_remove_handle(up->multi, u->easy);
        if (u->reusable && !u->paused && up->nspare < UPSTREAM_SPARE_MAX) {
            curl_easy_reset(u->easy);
            up->spare[up->nspare++] = u->easy;
        } else {
            curl_easy_cleanup(u->easy);
        }
        u->easy = NULL;
    }
    free(u->slist);
    u->slist = NULL;
    if (u->prev)
        u->prev->next = u->next;
    else
        up->reqs = u->next;
    if (u->next) u->next->prev = u->prev;
    up->active--;
    uv_timer_stop(&u->timer);
    uv_close((uv_handle_t *)&u->timer, req_closed);
}

static const char *classify(const upstream_req_t *u, CURLcode rc)
{
    if (u->timeout_err) return u->timeout_err;
    switch (rc) {
    case CURLE_OK:
        return u->got_head ? NULL : upstream_err_closed;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return upstream_err_connect;
    case CURLE_OPERATION_TIMEDOUT: {
        double t = 0;
        curl_easy_getinfo(u->easy, CURLINFO_CONNECT_TIME, &t);
        return t <= 0 ? upstream_err_connect : upstream_err_io;
    }
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        return upstream_err_closed;
    default:
        return u->got_head ? upstream_err_closed : upstream_err_io;
    }
}

static void req_finish(upstream_req_t *u, CURLcode rc)
{
    if (u->finished) return;
    u->finished = true;
    const char *err = classify(u, rc);
    const char *detail = u->timeout_err ? "" : (u->errbuf[0] ? u->errbuf : curl_easy_strerror(rc));
    if (!err) detail = "";
    bool notify = !u->cancelled && u->cb.on_done;
    u->reusable = rc == CURLE_OK && !u->cancelled;
    upstream_callbacks_t cb = u->cb;
    void *ud = u->ud;
    /* Release first so the callback may start a new request (failover) on a clean client. */
    u->cancelled = true;
    req_release(u);
    if (notify) cb.on_done(u, err, detail, ud);
}

static void check_done(upstream_t *up)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(up->multi, &left))) {
        if (msg->msg != CURLMSG_DONE) continue;
        upstream_req_t *u = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&u);
        if (u) req_finish(u, msg->data.result);
    }
}

static void req_timer_cb(uv_timer_t *t)
{
    upstream_req_t *u = t->data;
    u->timeout_err = u->got_head ? upstream_err_idle : upstream_err_ttfb;
    req_finish(u, CURLE_OPERATION_TIMEDOUT);
}

static void arm_idle(upstream_req_t *u)
{
    if (u->paused || u->finished) return;
    uv_timer_start(&u->timer, req_timer_cb, u->opts.idle_ms, 0);
}

/* ---- libcurl data callbacks ---------------------------------------------------- */

static size_t header_cb(char *p, size_t size, size_t nitems, void *userdata)
{
    upstream_req_t *u = userdata;
    size_t n = size * nitems;
    if (u->cancelled) return 0;
    size_t len = n;
    while (len > 0 && (p[len - 1] == '\r' || p[len - 1] == '\n'))
        len--;
    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        /* A new head (also after 1xx): start over. */
        const char *sp = memchr(p, ' ', len);
        u->status = sp ? (int)strtol(sp + 1, NULL, 10) : 0;
        buf_reset(&u->hstore);
        u->nh = 0;
        return n;
    }
    if (len == 0) {
        if (u->status < 200) return n; /* end of a 1xx head */
        u->got_head = true;
        http_header_t *hv = xcalloc(u->nh ? u->nh : 1, sizeof *hv);
        http_headers_unpack(&u->hstore, u->nh, hv);
        arm_idle(u);
        if (u->cb.on_head) u->cb.on_head(u, u->status, hv, u->nh, u->ud);
        free(hv);
        return u->cancelled ? 0 : n;
    }
    const char *colon = memchr(p, ':', len);
    if (!colon) return n; /* obsolete line folding or junk: ignore */
    size_t nl = (size_t)(colon - p);
    const char *v = colon + 1;
    const char *end = p + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t vl = (size_t)(end - v);
    if (http_headers_pack(&u->hstore, p, nl, v, vl) == 0) u->nh++;
    return n;
}

static size_t write_cb(char *p, size_t size, size_t nmemb, void *userdata)
{
    upstream_req_t *u = userdata;
    size_t n = size * nmemb;
    if (u->cancelled) return 0;
    if (u->paused) return CURL_WRITEFUNC_PAUSE;
    if (u->cb.on_body) u->cb.on_body(u, p, n, u->ud);
    if (u->cancelled) return 0;
    arm_idle(u);
    return n;
}

/* ---- public API ---------------------------------------------------------------- */

upstream_t *upstream_new(uv_loop_t *loop)
{
    static bool global_done;
    if (!global_done) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return NULL;
        global_done = true;
    }
    upstream_t *up = xcalloc(1, sizeof *up);
    up->loop = loop;
    up->multi = curl_multi_init();
    if (!up->multi) {
        free(up);
        return NULL;
    }
    curl_multi_setopt(up->multi, CURLMOPT_SOCKETFUNCTION, socket_fn);
    curl_multi_setopt(up->multi, CURLMOPT_SOCKETDATA, up);
    curl_multi_setopt(up->multi, CURLMOPT_TIMERFUNCTION, timer_fn);
    curl_multi_setopt(up->multi, CURLMOPT_TIMERDATA, up);
    curl_multi_setopt(up->multi, CURLMOPT_MAXCONNECTS, 256L);
    uv_timer_init(loop, &up->timer);
    up->timer.data = up;
    return up;
}

void upstream_set_proxy(upstream_t *up, const char *proxy_url)
{
    free(up->proxy);
    up->proxy = proxy_url && *proxy_url ? xstrdup(proxy_url) : NULL;
}

static void up_closed(uv_handle_t *h)
{
    upstream_t *up = h->data;
    free(up->socks);
    free(up->proxy);
    free(up);
}

void upstream_free(upstream_t *up)
{
    while (up->reqs) {
        up->reqs->cancelled = true;
        up->reqs->finished = true;
        req_release(up->reqs);
    }
    while (up->nspare)
        curl_easy_cleanup(up->spare[--up->nspare]);
    curl_multi_cleanup(up->multi); /* closes the cached connections through close_fn */
    for (size_t i = 0; i < up->nsocks; i++) {
        sock_ctx_t *ctx = up->socks[i];
        if (!ctx) continue;
        up->socks[i] = NULL;
        uv_poll_stop(&ctx->poll);
        uv_close((uv_handle_t *)&ctx->poll, sock_closed);
    }
    uv_timer_stop(&up->timer);
    uv_close((uv_handle_t *)&up->timer, up_closed);
}

size_t upstream_active(const upstream_t *up)
{
    return up->active;
}

static bool has_header(const http_header_t *h, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(h[i].name, name) == 0) return true;
    return false;
}

/* The request's header list in one allocation, freed with free(): the struct curl_slist
 * nodes (a public struct libcurl only reads) and their "Name: value" strings after them,
 * instead of two mallocs and a printf per header through curl_slist_append. Ends with the
 * headers libcurl would otherwise invent, suppressed (§3.5: nothing is injected). */
static struct curl_slist *build_slist(const http_header_t *hdrs, size_t nhdrs)
{
    static const char *const SUPPRESS[] = {"Expect:", "Accept:", "Content-Type:"};
    bool want[3] = {true, !has_header(hdrs, nhdrs, "accept"),
                    !has_header(hdrs, nhdrs, "content-type")};
    size_t count = nhdrs, bytes = 0;
    for (size_t i = 0; i < nhdrs; i++)
        bytes += strlen(hdrs[i].name) + strlen(hdrs[i].value) + 3;
    for (size_t i = 0; i < 3; i++)
        if (want[i]) {
            count++;
            bytes += strlen(SUPPRESS[i]) + 1;
        }
    struct curl_slist *nodes = xmalloc(count * sizeof *nodes + bytes);
    char *p = (char *)(nodes + count);
    size_t k = 0;
    for (size_t i = 0; i < nhdrs; i++) {
        size_t nl = strlen(hdrs[i].name), vl = strlen(hdrs[i].value);
        nodes[k].data = p;
        memcpy(p, hdrs[i].name, nl);
        p += nl;
        if (vl) {
            /* "Name;" is libcurl's spelling of a header with an empty value. */
            memcpy(p, ": ", 2);
            memcpy(p + 2, hdrs[i].value, vl);
            p += 2 + vl;
        } else {
            *p++ = ';';
        }
        *p++ = '\0';
        k++;
    }
    for (size_t i = 0; i < 3; i++)
        if (want[i]) {
            size_t l = strlen(SUPPRESS[i]) + 1;
            nodes[k++].data = memcpy(p, SUPPRESS[i], l);
            p += l;
        }
    for (size_t i = 0; i < count; i++)
        nodes[i].next = i + 1 < count ? &nodes[i + 1] : NULL;
    return nodes;
}

upstream_req_t *upstream_start(upstream_t *up, const char *method, const char *url,
                               const http_header_t *hdrs, size_t nhdrs, const void *body,
                               size_t body_len, const upstream_opts_t *opts,
                               const upstream_callbacks_t *cb, void *ud)
{
    upstream_req_t *u = xcalloc(1, sizeof *u);
    u->up = up;
    u->cb = *cb;
    u->ud = ud;
    if (opts) u->opts = *opts;
    if (!u->opts.ttfb_ms) u->opts.ttfb_ms = 120000;
    if (!u->opts.idle_ms) u->opts.idle_ms = 240000;
    if (!u->opts.connect_ms) u->opts.connect_ms = 10000;
    buf_init(&u->hstore, 0);
    buf_reserve(&u->hstore, 2048); /* a typical head (~20 headers) without regrowing */
    uv_timer_init(up->loop, &u->timer);
    u->timer.data = u;

    CURL *e = up->nspare ? up->spare[--up->nspare] : curl_easy_init();
    u->easy = e;
    u->slist = build_slist(hdrs, nhdrs);

    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, u->slist);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_PRIVATE, u);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, u->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)u->opts.connect_ms);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, u);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, u);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, close_fn);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, up);
    if (up->proxy) curl_easy_setopt(e, CURLOPT_PROXY, up->proxy);
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else {
        if (strcmp(method, "POST") != 0) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body_len ? body : "");
    }

    u->next = up->reqs;
    if (up->reqs) up->reqs->prev = u;
    up->reqs = u;
    up->active++;
    uv_timer_start(&u->timer, req_timer_cb, u->opts.ttfb_ms, 0);
    curl_multi_add_handle(up->multi, e);
    return u;
}

void upstream_req_pause(upstream_req_t *u)
{
    if (u->paused || u->finished) return;
    u->paused = true;
    uv_timer_stop(&u->timer);
    /* Inside libcurl the next write callback answers CURL_WRITEFUNC_PAUSE instead. */
    if (u->up->in_curl == 0) curl_easy_pause(u->easy, CURLPAUSE_RECV);
}

void upstream_req_resume(upstream_req_t *u)
{
    if (!u->paused || u->finished) return;
    u->paused = false;
    upstream_t *up = u->up;
    up->in_curl++;
    curl_easy_pause(u->easy, CURLPAUSE_CONT);
    up->in_curl--;
    if (!u->finished) arm_idle(u);
    check_done(up);
}

static void cancel_timer_cb(uv_timer_t *t)
{
    upstream_req_t *u = t->data;
    if (u->finished) return;
    u->finished = true;
    req_release(u);
}

void upstream_req_cancel(upstream_req_t *u)
{
    if (u->finished) return;
    u->cancelled = true;
    if (u->up->in_curl == 0) {
        u->finished = true;
        req_release(u);
        return;
    }
    /* libcurl is on the stack: release on the next loop turn. Until then every callback
     * of this transfer returns 0, so libcurl aborts it rather than deliver more. */
    uv_timer_start(&u->timer, cancel_timer_cb, 0, 0);
}

bool upstream_req_got_head(const upstream_req_t *u)
{
    return u->got_head;
}
