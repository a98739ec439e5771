#include "sim/loadgen.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/xalloc.h"
#include "http/upstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct session {
    struct loadgen *lg;
    int idx;
    int turns;
    uv_timer_t think;
    upstream_req_t *req;
    buf_t body;
    int status;
    size_t bytes;
    int64_t started;
    char sid[48];
} session_t;

struct loadgen {
    uv_loop_t *loop;
    loadgen_opts_t o;
    char *url;
    upstream_t *up;
    session_t *s;
    uint64_t rng;
    loadgen_stats_t st;
    int open_handles;
    bool stopping;
};

static uint64_t next_rand(uint64_t *x)
{
    /* splitmix64: tiny, seedable, good enough for think times and sizes. */
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static void send_turn(session_t *s);

static void think_cb(uv_timer_t *t)
{
    send_turn(t->data);
}

static void schedule(session_t *s)
{
    loadgen_t *lg = s->lg;
    if (lg->stopping || (lg->o.max_turns && s->turns >= lg->o.max_turns)) return;
    uint64_t span =
        lg->o.think_max_ms > lg->o.think_min_ms ? lg->o.think_max_ms - lg->o.think_min_ms : 0;
    uint64_t ms = lg->o.think_min_ms + (span ? next_rand(&lg->rng) % (span + 1) : 0);
    uv_timer_start(&s->think, think_cb, ms, 0);
}

static void on_head(upstream_req_t *u, int status, const http_header_t *h, size_t n, void *ud)
{
    ((session_t *)ud)->status = status;
}

static void on_body(upstream_req_t *u, const char *d, size_t n, void *ud)
{
    ((session_t *)ud)->bytes += n;
}

static void on_done(upstream_req_t *u, const char *err, const char *detail, void *ud)
{
    session_t *s = ud;
    loadgen_t *lg = s->lg;
    s->req = NULL;
    int status = err ? 0 : s->status;
    lg->st.turns++;
    lg->st.bytes += s->bytes;
    if (status >= 200 && status < 300)
        lg->st.ok++;
    else
        lg->st.failed++;
    if (lg->o.on_turn)
        lg->o.on_turn(lg->o.ud, s->idx, status, (uint64_t)(clock_mono_ms() - s->started), s->bytes);
    schedule(s);
}

static const upstream_callbacks_t CB = {on_head, on_body, on_done};

static void send_turn(session_t *s)
{
    loadgen_t *lg = s->lg;
    if (lg->stopping) return;
    s->turns++;
    s->status = 0;
    s->bytes = 0;
    s->started = clock_mono_ms();
    /* A transcript that grows by a few KB per turn, like a coding session's. */
    buf_reset(&s->body);
    buf_puts(&s->body, "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":64000,\"stream\":true,"
                       "\"messages\":[");
    for (int i = 0; i < s->turns; i++) {
        buf_printf(&s->body, "%s{\"role\":\"user\",\"content\":\"turn %d: ", i ? "," : "", i);
        size_t words = 50 + next_rand(&lg->rng) % 400;
        for (size_t w = 0; w < words; w++)
            buf_puts(&s->body, "lorem ");
        buf_puts(&s->body, "\"}");
    }
    buf_puts(&s->body, "]}");
    http_header_t h[] = {
        {"content-type", "application/json"},
        {"anthropic-version", "2023-06-01"},
        {"x-maxpool-session", s->sid},
    };
    s->req = upstream_start(lg->up, "POST", lg->url, h, 3, s->body.data, s->body.len, NULL, &CB, s);
}

loadgen_t *loadgen_start(uv_loop_t *loop, const loadgen_opts_t *o)
{
    loadgen_t *lg = xcalloc(1, sizeof *lg);
    lg->loop = loop;
    lg->o = *o;
    lg->rng = o->seed ? o->seed : 1;
    lg->url = xasprintf("%s/v1/messages?beta=true", o->base_url);
    lg->up = upstream_new(loop);
    lg->s = xcalloc((size_t)o->sessions, sizeof *lg->s);
    for (int i = 0; i < o->sessions; i++) {
        session_t *s = &lg->s[i];
        s->lg = lg;
        s->idx = i;
        buf_init(&s->body, 0);
        snprintf(s->sid, sizeof s->sid, "demo-session-%d", i + 1);
        uv_timer_init(loop, &s->think);
        s->think.data = s;
        lg->open_handles++;
        /* Stagger the first turns so sessions do not move in lockstep. */
        uv_timer_start(&s->think, think_cb, next_rand(&lg->rng) % (o->think_max_ms + 1), 0);
    }
    return lg;
}

loadgen_stats_t loadgen_stats(const loadgen_t *lg)
{
    return lg->st;
}

static void session_closed(uv_handle_t *h)
{
    session_t *s = h->data;
    loadgen_t *lg = s->lg;
    buf_free(&s->body);
    if (--lg->open_handles == 0) {
        free(lg->s);
        free(lg->url);
        free(lg);
    }
}

void loadgen_stop(loadgen_t *lg)
{
    lg->stopping = true;
    for (int i = 0; i < lg->o.sessions; i++) {
        session_t *s = &lg->s[i];
        if (s->req) upstream_req_cancel(s->req);
        s->req = NULL;
    }
    upstream_free(lg->up);
    for (int i = 0; i < lg->o.sessions; i++)
        uv_close((uv_handle_t *)&lg->s[i].think, session_closed);
}
