/* maxpool demo [--seconds N] [--sessions N] — the pool at work, offline: `maxpool sim` with
 * four accounts at different quota levels and a fast clock, `maxpool server` in front of it
 * with a private config, and a few Claude-Code-like sessions of synthetic traffic. Prints the
 * proxy's plain log and, every few seconds, where each account stands. */
#include "cli/cli.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/fileio.h"
#include "core/xalloc.h"
#include "http/upstream.h"
#include "sim/loadgen.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

extern char **environ;

/* Time runs 600× faster in the simulator: a 5-hour window passes in 30 seconds. */
#define DEMO_TIME_SCALE 600

static const char DEMO_SCRIPT[] =
    "{\n"
    "  \"seed\": 7,\n"
    "  \"response\": {\"text\": \"Sure - here is the change you asked for.\", \"deltas\": 20,"
    " \"deltaDelayMs\": 25},\n"
    "  \"accounts\": [\n"
    "    {\"name\": \"max-alice\", \"type\": \"oauth\", \"accessToken\": \"sk-ant-oat01-demo-a\","
    " \"refreshToken\": \"sk-ant-ort01-demo-a\", \"tier\": \"max\", \"budget5h\": 400000,"
    " \"budget7d\": 4000000, \"used5h\": 0.10, \"used7d\": 0.30},\n"
    "    {\"name\": \"max-work\", \"type\": \"oauth\", \"accessToken\": \"sk-ant-oat01-demo-b\","
    " \"refreshToken\": \"sk-ant-ort01-demo-b\", \"tier\": \"max\", \"budget5h\": 200000,"
    " \"budget7d\": 4000000, \"used5h\": 0.85, \"used7d\": 0.60},\n"
    "    {\"name\": \"pro-side\", \"type\": \"oauth\", \"accessToken\": \"sk-ant-oat01-demo-c\","
    " \"refreshToken\": \"sk-ant-ort01-demo-c\", \"tier\": \"pro\", \"budget5h\": 40000,"
    " \"budget7d\": 900000, \"used5h\": 0.50, \"used7d\": 0.20},\n"
    "    {\"name\": \"console-key\", \"type\": \"apikey\", \"apiKey\": \"sk-ant-api03-demo-d\","
    " \"tokensPerMinute\": 2000000, \"requestsPerMinute\": 4000}\n"
    "  ],\n"
    "  \"faults\": [{\"kind\": \"overloaded\", \"account\": \"max-work\", \"skip\": 5, \"count\": "
    "2}]\n"
    "}\n";

typedef struct demo {
    uv_loop_t *loop;
    char dir[64];
    pid_t sim_pid, server_pid;
    char proxy_url[64];
    loadgen_t *lg;
    upstream_t *up;
    buf_t status_body;
    uv_timer_t tick, stop;
    uv_signal_t sigint, sigterm;
    int64_t started;
    bool stopping;
} demo_t;

static pid_t spawn_self(char *const argv[], const char *config)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return -1;
    exe[n] = '\0';
    if (config) setenv("MAXPOOL_CONFIG", config, 1);
    pid_t pid;
    int rc = posix_spawn(&pid, exe, NULL, NULL, argv, environ);
    return rc == 0 ? pid : -1;
}

/* Waits (bounded) for a child to write its port file; returns the port or -1. */
static int wait_port(const char *path, pid_t pid)
{
    for (int i = 0; i < 200; i++) {
        char *txt;
        if (fileio_read(path, &txt, NULL, 64) == 0) {
            int port = (int)strtol(txt, NULL, 10);
            free(txt);
            if (port > 0) return port;
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) return -1;
        usleep(25000);
    }
    return -1;
}

static void bar(char *out, size_t outlen, json_t *v)
{
    if (!json_is_number(v)) {
        snprintf(out, outlen, "%-16s", "    -");
        return;
    }
    double u = json_number_value(v);
    int filled = (int)(u * 10 + 0.5);
    if (filled > 10) filled = 10;
    char b[11];
    for (int i = 0; i < 10; i++)
        b[i] = i < filled ? '#' : '.';
    b[10] = '\0';
    snprintf(out, outlen, "%s %4.0f%%", b, u * 100);
}

static void print_status(demo_t *d)
{
    json_t *doc =
        json_loadb(d->status_body.data ? d->status_body.data : "", d->status_body.len, 0, NULL);
    if (!doc) return;
    loadgen_stats_t st = loadgen_stats(d->lg);
    double secs = (double)(clock_mono_ms() - d->started) / 1000.0;
    fprintf(stderr,
            "\n--- demo %.0fs: %llu turns, %llu ok, %llu failed (simulated time runs %dx: a 5h "
            "window passes in %ds) ---\n",
            secs, (unsigned long long)st.turns, (unsigned long long)st.ok,
            (unsigned long long)st.failed, DEMO_TIME_SCALE, 5 * 3600 / DEMO_TIME_SCALE);
    fprintf(stderr, "  %-12s %-7s %-10s %-16s %-16s %6s %6s %9s\n", "account", "type", "status",
            "session (5h)", "weekly (7d)", "live", "done", "tokens");
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(doc, "accounts"), i, a)
    {
        json_t *q = json_object_get(a, "quota");
        char b5[32], b7[32];
        const char *type = json_string_value(json_object_get(a, "type"));
        if (type && strcmp(type, "apikey") == 0) {
            json_t *lim = json_object_get(q, "tokensLimit"),
                   *rem = json_object_get(q, "tokensRemaining");
            json_t *used = json_integer_value(lim) > 0
                               ? json_real(1.0 - (double)json_integer_value(rem) /
                                                     (double)json_integer_value(lim))
                               : json_null();
            bar(b5, sizeof b5, used);
            json_decref(used);
            snprintf(b7, sizeof b7, "%-16s", "  (per minute)");
        } else {
            bar(b5, sizeof b5, json_object_get(q, "unified5h"));
            bar(b7, sizeof b7, json_object_get(q, "unified7d"));
        }
        json_t *u = json_object_get(a, "usage");
        fprintf(stderr, "  %-12s %-7s %-10s %-16s %-16s %6lld %6lld %9lld\n",
                json_string_value(json_object_get(a, "name")), type ? type : "?",
                json_string_value(json_object_get(a, "status")), b5, b7,
                (long long)json_integer_value(json_object_get(a, "inFlight")),
                (long long)json_integer_value(json_object_get(a, "completedRequests")),
                (long long)(json_integer_value(json_object_get(u, "totalInputTokens")) +
                            json_integer_value(json_object_get(u, "totalOutputTokens"))));
    }
    fprintf(stderr, "\n");
    json_decref(doc);
}

static void st_body(upstream_req_t *u, const char *p, size_t n, void *ud)
{
    buf_append(&((demo_t *)ud)->status_body, p, n);
}

static void st_done(upstream_req_t *u, const char *err, const char *detail, void *ud)
{
    demo_t *d = ud;
    if (!err && !d->stopping) print_status(d);
}

static const upstream_callbacks_t STATUS_CB = {NULL, st_body, st_done};

static void tick_cb(uv_timer_t *t)
{
    demo_t *d = t->data;
    buf_reset(&d->status_body);
    char url[128];
    snprintf(url, sizeof url, "%s/maxpool/status", d->proxy_url);
    http_header_t h[] = {{"x-api-key", "mp-demo-local-key"}};
    upstream_start(d->up, "GET", url, h, 1, NULL, 0, NULL, &STATUS_CB, d);
}

static void finish(demo_t *d)
{
    if (d->stopping) return;
    d->stopping = true;
    uv_timer_stop(&d->tick);
    uv_timer_stop(&d->stop);
    uv_signal_stop(&d->sigint);
    uv_signal_stop(&d->sigterm);
    loadgen_stop(d->lg);
    upstream_free(d->up);
    uv_close((uv_handle_t *)&d->tick, NULL);
    uv_close((uv_handle_t *)&d->stop, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
    uv_close((uv_handle_t *)&d->sigterm, NULL);
}

static void stop_cb(uv_timer_t *t)
{
    finish(t->data);
}

static void sig_cb(uv_signal_t *s, int signum)
{
    finish(s->data);
}

static void reap(pid_t pid)
{
    if (pid <= 0) return;
    kill(pid, SIGTERM);
    int st;
    for (int i = 0; i < 100; i++) {
        if (waitpid(pid, &st, WNOHANG) == pid) return;
        usleep(50000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
}

int cmd_demo(int argc, char **argv)
{
    const char *secs_s = cli_arg_value(argc, argv, "--seconds");
    const char *sess_s = cli_arg_value(argc, argv, "--sessions");
    long seconds = secs_s ? strtol(secs_s, NULL, 10) : 40;
    long sessions = sess_s ? strtol(sess_s, NULL, 10) : 4;
    if (seconds < 1 || seconds > 86400 || sessions < 1 || sessions > 256) {
        fprintf(stderr, "Usage: maxpool demo [--seconds 1..86400] [--sessions 1..256]\n");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    demo_t d = {.loop = uv_default_loop()};
    snprintf(d.dir, sizeof d.dir, "/tmp/maxpool-demo-XXXXXX");
    if (!mkdtemp(d.dir)) {
        perror("mkdtemp");
        return 1;
    }
    char *script = xasprintf("%s/sim-script.json", d.dir);
    char *simport = xasprintf("%s/sim.port", d.dir);
    char *config = xasprintf("%s/maxpool.json", d.dir);
    char *pxport = xasprintf("%s/proxy.port", d.dir);
    fileio_write_atomic(script, DEMO_SCRIPT, sizeof DEMO_SCRIPT - 1);
    char scale[16];
    snprintf(scale, sizeof scale, "%d", DEMO_TIME_SCALE);
    char *sim_argv[] = {"maxpool",  "sim",  "--port",       "0",   "--port-file", simport,
                        "--script", script, "--time-scale", scale, NULL};
    fprintf(stderr, "demo: starting maxpool sim (4 accounts, time x%d) in %s\n", DEMO_TIME_SCALE,
            d.dir);
    d.sim_pid = spawn_self(sim_argv, NULL);
    int sp = wait_port(simport, d.sim_pid);
    int rc = 1;
    if (sp < 0) {
        fprintf(stderr, "demo: the simulator did not start\n");
        goto out;
    }
    char *cfg = xasprintf(
        "{\n  \"proxy\": {\"port\": 0, \"host\": \"127.0.0.1\", \"apiKey\": "
        "\"mp-demo-local-key\"},\n  \"upstream\": \"http://127.0.0.1:%d\",\n  \"updateCheck\": "
        "false,\n  \"quotaProbeSeconds\": 0,\n  \"preventSleep\": false,\n  \"eventLog\": "
        "false,\n  \"accounts\": [\n"
        "    {\"name\": \"max-alice\", \"type\": \"oauth\", \"accessToken\": "
        "\"sk-ant-oat01-demo-a\", \"refreshToken\": \"sk-ant-ort01-demo-a\", \"expiresAt\": "
        "4102444800000},\n"
        "    {\"name\": \"max-work\", \"type\": \"oauth\", \"accessToken\": "
        "\"sk-ant-oat01-demo-b\", \"refreshToken\": \"sk-ant-ort01-demo-b\", \"expiresAt\": "
        "4102444800000},\n"
        "    {\"name\": \"pro-side\", \"type\": \"oauth\", \"accessToken\": "
        "\"sk-ant-oat01-demo-c\", \"refreshToken\": \"sk-ant-ort01-demo-c\", \"expiresAt\": "
        "4102444800000},\n"
        "    {\"name\": \"console-key\", \"type\": \"apikey\", \"apiKey\": "
        "\"sk-ant-api03-demo-d\"}\n  ]\n}\n",
        sp);
    fileio_write_atomic(config, cfg, strlen(cfg));
    free(cfg);
    char *srv_argv[] = {"maxpool", "server", "--port-file", pxport, NULL};
    fprintf(stderr, "demo: starting maxpool server in front of it (config %s)\n", config);
    d.server_pid = spawn_self(srv_argv, config);
    int pp = wait_port(pxport, d.server_pid);
    if (pp < 0) {
        fprintf(stderr, "demo: the proxy did not start\n");
        goto out;
    }
    snprintf(d.proxy_url, sizeof d.proxy_url, "http://127.0.0.1:%d", pp);
    fprintf(stderr,
            "demo: %ld Claude-Code-like sessions for %lds through %s (Ctrl-C stops early)\n\n",
            sessions, seconds, d.proxy_url);

    buf_init(&d.status_body, 4u << 20);
    d.up = upstream_new(d.loop);
    loadgen_opts_t o = {.base_url = d.proxy_url,
                        .sessions = (int)sessions,
                        .seed = 42,
                        .think_min_ms = 200,
                        .think_max_ms = 1500};
    d.lg = loadgen_start(d.loop, &o);
    d.started = clock_mono_ms();
    uv_timer_init(d.loop, &d.tick);
    uv_timer_init(d.loop, &d.stop);
    d.tick.data = d.stop.data = &d;
    uv_timer_start(&d.tick, tick_cb, 3000, 3000);
    uv_timer_start(&d.stop, stop_cb, (uint64_t)seconds * 1000, 0);
    uv_signal_init(d.loop, &d.sigint);
    uv_signal_init(d.loop, &d.sigterm);
    d.sigint.data = d.sigterm.data = &d;
    uv_signal_start(&d.sigint, sig_cb, SIGINT);
    uv_signal_start(&d.sigterm, sig_cb, SIGTERM);
    uv_run(d.loop, UV_RUN_DEFAULT);
    buf_free(&d.status_body);
    rc = 0;
out:
    fprintf(stderr, "demo: stopping the proxy and the simulator\n");
    reap(d.server_pid);
    reap(d.sim_pid);
    unlink(script);
    unlink(simport);
    unlink(pxport);
    unlink(config);
    char *lock = xasprintf("%s.lock", config);
    unlink(lock);
    free(lock);
    rmdir(d.dir);
    free(script);
    free(simport);
    free(config);
    free(pxport);
    return rc;
}
