/* proxy — the listener, the local routes (§3.2), client authentication (§3.3) and drain
 * (§10.1). Proxied requests continue in proxy/request.c. */
#include "control/status.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "http/headers.h"
#include "proxy/headers.h"
#include "proxy/internal.h"
#include "store/state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#ifndef MAXPOOL_VERSION
#define MAXPOOL_VERSION "0.1.0"
#endif

/* ---- POST /v1/oauth/token relay ------------------------------------------------------ */

typedef struct relay {
    http_req_t *req;
    upstream_req_t *up;
    int status;
    buf_t head; /* "name\0value\0" pairs */
    size_t nhead;
    buf_t body;
} relay_t;

static void relay_free(relay_t *r)
{
    buf_free(&r->head);
    buf_free(&r->body);
    free(r);
}

static void relay_client_close(http_req_t *req, void *ud)
{
    relay_t *r = ud;
    r->req = NULL;
    if (r->up) upstream_req_cancel(r->up);
    relay_free(r);
}

static void relay_head(upstream_req_t *u, int status, const http_header_t *h, size_t n, void *ud)
{
    relay_t *r = ud;
    r->status = status;
    for (size_t i = 0; i < n; i++) {
        if (proxy_header_is_hop(h[i].name) || strcasecmp(h[i].name, "content-length") == 0 ||
            strcasecmp(h[i].name, "content-encoding") == 0)
            continue;
        if (http_headers_pack(&r->head, h[i].name, strlen(h[i].name), h[i].value,
                              strlen(h[i].value)) == 0)
            r->nhead++;
    }
}

static void relay_body(upstream_req_t *u, const char *data, size_t n, void *ud)
{
    relay_t *r = ud;
    buf_append(&r->body, data, n);
}

static void relay_done(upstream_req_t *u, const char *err, const char *detail, void *ud)
{
    relay_t *r = ud;
    r->up = NULL;
    if (!r->req) return;
    http_req_on_close(r->req, NULL, NULL);
    if (err) {
        http_resp_error(r->req, 502, "proxy_error", "Upstream unreachable");
    } else {
        http_header_t *hv = xcalloc(r->nhead ? r->nhead : 1, sizeof *hv);
        http_headers_unpack(&r->head, r->nhead, hv);
        http_resp_start(r->req, r->status, hv, r->nhead, (int64_t)r->body.len);
        http_resp_write(r->req, r->body.data, r->body.len);
        http_resp_end(r->req);
        free(hv);
    }
    relay_free(r);
}

static const upstream_callbacks_t RELAY_CB = {relay_head, relay_body, relay_done};

void proxy_token_relay(proxy_t *px, http_req_t *req)
{
    /* Only what a token endpoint needs; never the client's or an account's credential. */
    const char *ct = http_req_header(req, "content-type");
    const char *ac = http_req_header(req, "accept");
    const char *ua = http_req_header(req, "user-agent");
    http_header_t hv[] = {{"content-type", ct ? ct : "application/json"},
                          {"accept", ac ? ac : "application/json"},
                          {"user-agent", ua ? ua : "node"}};
    relay_t *r = xcalloc(1, sizeof *r);
    r->req = req;
    buf_init(&r->head, 0);
    buf_init(&r->body, 1u << 20);
    http_req_on_close(req, relay_client_close, r);
    size_t bl = strlen(px->s.upstream);
    while (bl > 0 && px->s.upstream[bl - 1] == '/')
        bl--;
    char *url = xasprintf("%.*s/v1/oauth/token", (int)bl, px->s.upstream);
    upstream_opts_t o = {.ttfb_ms = 30000, .idle_ms = 30000};
    r->up =
        upstream_start(px->up, "POST", url, hv, 3, req->body.data, req->body.len, &o, &RELAY_CB, r);
    free(url);
}

/* ---- local routes and admission ------------------------------------------------------ */

static bool key_matches(const proxy_t *px, const http_req_t *req)
{
    const char *k = http_req_header(req, "x-api-key");
    return k && px->s.api_key && strcmp(k, px->s.api_key) == 0;
}

static void serve_status(proxy_t *px, http_req_t *req)
{
    /* §3.2: the key is required even from loopback when one is configured. */
    if (px->s.api_key && *px->s.api_key && !key_matches(px, req)) {
        http_resp_error(req, 401, "authentication_error", "Invalid proxy API key");
        return;
    }
    int64_t now = clock_now_ms();
    sched_tick(&px->sched, now);
    proxy_log_events(px);
    char *doc = status_render(&px->sched, now, MAXPOOL_VERSION);
    http_resp_send(req, 200, "application/json", doc, strlen(doc));
    free(doc);
}

static void on_request(http_req_t *req, void *ud)
{
    proxy_t *px = ud;
    if (strcmp(req->target, "/maxpool/status") == 0 && strcmp(req->method, "GET") == 0) {
        serve_status(px, req);
        return;
    }
    if (!req->peer_local && px->s.api_key && *px->s.api_key && !key_matches(px, req)) {
        http_resp_error(req, 401, "authentication_error", "Invalid proxy API key");
        return;
    }
    if (strcmp(req->target, "/v1/oauth/token") == 0 && strcmp(req->method, "POST") == 0) {
        proxy_token_relay(px, req);
        return;
    }
    proxy_request_begin(px, req);
}

/* Drained = no request in flight and every client connection closed: a response that
 * ended is not yet on the wire until its connection has flushed and closed (§10.1). */
static void maybe_drained(proxy_t *px)
{
    if (px->draining && px->active == 0 && px->srv_closed && px->on_drained) {
        void (*cb)(void *) = px->on_drained;
        px->on_drained = NULL;
        cb(px->drained_ud);
    }
}

void proxy_log_events(proxy_t *px)
{
    sched_event_t ev;
    while (sched_event_pop(&px->sched, &ev))
        log_msg("%s", ev.msg);
}

/* ---- the state file (§2.8) ------------------------------------------------------------- */

typedef struct state_job {
    uv_work_t work;
    proxy_t *px;
    json_t *quota;
    char *path;
    int64_t gen;
    int rc;
    char *err;
} state_job_t;

static void state_job_run(uv_work_t *w)
{
    state_job_t *j = w->data;
    /* Locks and fsyncs: never on the loop thread. */
    j->rc = state_save_quota(j->path, j->quota, &j->gen, &j->err);
    j->quota = NULL; /* state_save_quota stole the reference */
}

static void state_job_done(uv_work_t *w, int status)
{
    state_job_t *j = w->data;
    proxy_t *px = j->px;
    px->state_writing = false;
    if (j->rc == 0)
        px->state_gen = j->gen;
    else if (j->rc == STATE_STALE)
        log_msg("State file is newer on disk; not overwriting it");
    else if (j->err)
        log_msg("Could not write the state file: %s", j->err);
    free(j->err);
    free(j->path);
    json_decref(j->quota);
    free(j);
    if (px->free_pending) free(px);
}

static void state_save_async(proxy_t *px)
{
    if (!px->s.state_path || px->state_writing) return;
    state_job_t *j = xcalloc(1, sizeof *j);
    j->px = px;
    j->quota = state_quota_array(&px->sched);
    j->path = xstrdup(px->s.state_path);
    j->gen = px->state_gen;
    j->work.data = j;
    px->state_writing = true;
    uv_queue_work(px->loop, &j->work, state_job_run, state_job_done);
}

void proxy_save_state(proxy_t *px)
{
    if (!px->s.state_path) return;
    char *err = NULL;
    int rc = state_save(px->s.state_path, &px->sched, &px->state_gen, &err);
    if (rc < 0 && err) log_msg("Could not write the state file: %s", err);
    free(err);
}

static void tick_cb(uv_timer_t *t)
{
    proxy_t *px = t->data;
    int64_t now = clock_now_ms();
    sched_tick(&px->sched, now);
    proxy_log_events(px);
    if (now - px->state_saved_ms >= 60000) {
        px->state_saved_ms = now;
        state_save_async(px);
    }
}

void proxy_request_ended(proxy_t *px)
{
    px->active--;
    maybe_drained(px);
}

/* ---- lifecycle -------------------------------------------------------------------------- */

int proxy_start(uv_loop_t *loop, const proxy_settings_t *s, account_t *accts, size_t n,
                proxy_t **out, char **err)
{
    proxy_t *px = xcalloc(1, sizeof *px);
    px->loop = loop;
    px->s = *s;
    px->s.host = xstrdup(s->host ? s->host : "127.0.0.1");
    px->s.api_key = s->api_key ? xstrdup(s->api_key) : NULL;
    px->s.upstream = xstrdup(s->upstream ? s->upstream : "https://api.anthropic.com");
    px->s.network_proxy = s->network_proxy ? xstrdup(s->network_proxy) : NULL;
    px->s.log_dir = s->log_dir ? xstrdup(s->log_dir) : NULL;
    if (!px->s.max_buffered_bytes) px->s.max_buffered_bytes = 512u << 20;
    px->s.state_path = s->state_path ? xstrdup(s->state_path) : NULL;
    sched_options_t defaults;
    sched_options_default(&defaults);
    sched_init(&px->sched, s->sched ? s->sched : &defaults);
    int64_t now = clock_now_ms();
    for (size_t i = 0; i < n; i++)
        sched_add_account(&px->sched, &accts[i], false, now);
    free(accts);
    if (px->s.state_path) {
        char *serr0 = NULL;
        if (state_load(px->s.state_path, &px->sched, now, &px->state_gen, &serr0) < 0 && serr0)
            log_msg("Ignoring the state file: %s", serr0);
        free(serr0);
        proxy_log_events(px);
    }
    px->state_saved_ms = now;
    if (s->queue)
        px->qopts = *s->queue;
    else
        queue_opts_default(&px->qopts);
    px->up = upstream_new(loop);
    if (!px->up) {
        *err = xstrdup("could not initialise libcurl");
        proxy_free(px);
        return -1;
    }
    if (px->s.network_proxy) upstream_set_proxy(px->up, px->s.network_proxy);
    snprintf(px->worker, sizeof px->worker, "%ld", (long)getpid());
    px->common[0].name = "x-maxpool-worker";
    px->common[0].value = px->worker;
    http_server_config_t cfg = {
        .max_head_bytes = 64 * 1024,
        .max_body_bytes = s->max_body_bytes ? s->max_body_bytes : 32u << 20,
        .on_request = on_request,
        .ud = px,
        .common_headers = px->common,
        .ncommon_headers = 1,
    };
    char *serr = NULL;
    int rc = http_server_start(loop, px->s.host, s->port, &cfg, &px->srv, &serr);
    if (rc != 0) {
        if (rc == UV_EADDRINUSE)
            *err = xasprintf("[Maxpool] %s:%d is already in use.\n"
                             "  Is maxpool already running? Check with: maxpool status\n"
                             "  Or see what holds the port: lsof -nP -iTCP:%d -sTCP:LISTEN",
                             px->s.host, s->port, s->port);
        else if (rc == UV_EACCES)
            *err = xasprintf("[Maxpool] Permission denied binding %s:%d. Choose a port above "
                             "1024 (proxy.port in the config).",
                             px->s.host, s->port);
        else
            *err = xasprintf("[Maxpool] cannot listen on %s:%d: %s", px->s.host, s->port,
                             serr ? serr : uv_strerror(rc));
        free(serr);
        proxy_free(px);
        return -1;
    }
    uv_timer_init(loop, &px->tick);
    px->tick.data = px;
    uv_timer_start(&px->tick, tick_cb, 1000, 1000);
    uv_timer_init(loop, &px->qtimer);
    px->qtimer.data = px;
    px->open_handles = 2;
    px->tick_on = true;
    /* Part A12: the server refuses (503) a body that would pass the global cap before it
     * buffers it, and counts it until the response ends — held requests included. */
    http_server_set_buffer_limit(px->srv, px->s.max_buffered_bytes);
    *out = px;
    return 0;
}

int proxy_port(const proxy_t *px)
{
    return http_server_port(px->srv);
}

size_t proxy_active(const proxy_t *px)
{
    return px->active;
}

static void server_stopped(void *ud)
{
    proxy_t *px = ud;
    px->srv_closed = true;
    maybe_drained(px);
}

void proxy_drain(proxy_t *px, void (*on_drained)(void *ud), void *ud)
{
    px->draining = true;
    px->on_drained = on_drained;
    px->drained_ud = ud;
    uv_timer_stop(&px->tick);
    /* Held requests would wait past our exit: tell them now, in-band (§10.1, issue 6). */
    proxy_queue_fail_all(px, "Maxpool is shutting down; this request was waiting for an "
                             "account and was not sent. Send it again when maxpool is back.");
    if (px->srv)
        http_server_stop(px->srv, server_stopped, px);
    else
        px->srv_closed = true;
    maybe_drained(px);
}

static void proxy_closed(uv_handle_t *h)
{
    proxy_t *px = h->data;
    if (--px->open_handles > 0) return;
    /* A state write still in the thread pool frees px when it comes back. */
    if (px->state_writing)
        px->free_pending = true;
    else
        free(px);
}

void proxy_free(proxy_t *px)
{
    if (!px) return;
    if (px->up) upstream_free(px->up);
    if (px->srv) http_server_free(px->srv);
    sched_free(&px->sched);
    free((char *)px->s.host);
    free((char *)px->s.api_key);
    free((char *)px->s.upstream);
    free((char *)px->s.network_proxy);
    free((char *)px->s.log_dir);
    free((char *)px->s.state_path);
    if (px->tick_on) {
        uv_close((uv_handle_t *)&px->tick, proxy_closed);
        uv_close((uv_handle_t *)&px->qtimer, proxy_closed);
    } else {
        free(px);
    }
}
