/* maxpool server [--log-to DIR] [--port-file F] — the proxy (§3, §10.1). Also what a bare
 * `maxpool` runs. Headless for now: the plain log goes to stderr and the event log. */
#include "cli/cli.h"
#include "core/fileio.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "proxy/proxy.h"
#include "store/config.h"
#include "store/options.h"
#include "store/schedopts.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* Reads a numeric tunable from the environment with the floor of §1.1, else def. */
static uint64_t env_ms(const char *name, uint64_t def, uint64_t floor)
{
    const char *v = getenv(name);
    if (!v || !*v) return def;
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    if (*end) return def;
    return x < floor ? floor : x;
}

/* Turns the config's accounts into runtime accounts, skipping unusable ones (§2.4). */
static account_t *load_accounts(json_t *cfg, size_t *n_out, size_t *listed)
{
    json_t *arr = config_accounts(cfg);
    size_t n = arr ? json_array_size(arr) : 0;
    *listed = n;
    account_t *accts = xcalloc(n ? n : 1, sizeof *accts);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(arr, i);
        const char *name = config_account_name(e);
        const char *type = json_string_value(json_object_get(e, "type"));
        const char *cred = NULL;
        account_type_t t;
        if (type && strcmp(type, "oauth") == 0) {
            t = ACCOUNT_OAUTH;
            cred = json_string_value(json_object_get(e, "accessToken"));
            if (!cred || !*cred) {
                log_msg("No token for \"%s\", skipping — re-add it with: maxpool login", name);
                continue;
            }
        } else if (type && strcmp(type, "provider") == 0) {
            t = ACCOUNT_PROVIDER;
            cred = json_string_value(json_object_get(e, "authToken"));
            if (!cred || !*cred) cred = json_string_value(json_object_get(e, "apiKey"));
        } else {
            t = ACCOUNT_APIKEY;
            cred = json_string_value(json_object_get(e, "apiKey"));
        }
        if (!cred || !*cred) {
            log_msg("No credential for \"%s\", skipping", name);
            continue;
        }
        account_t *a = &accts[k++];
        account_init(a, name, t, cred);
        json_t *en = json_object_get(e, "enabled");
        if (json_is_boolean(en)) a->enabled = json_is_true(en);
        const char *up = json_string_value(json_object_get(e, "upstream"));
        if (up && *up) a->upstream = xstrdup(up);
        const char *uuid = json_string_value(json_object_get(e, "accountUuid"));
        if (uuid && *uuid) a->uuid = xstrdup(uuid);
        const char *ah = json_string_value(json_object_get(e, "authHeader"));
        if (ah && strcmp(ah, "authorization") == 0) a->bearer = true;
        if (t == ACCOUNT_PROVIDER || json_is_true(json_object_get(e, "stripBetaHeaders")))
            a->strip_beta = true;
        json_t *cap = json_object_get(e, "capUtilization");
        if (json_is_number(cap)) {
            double c = json_number_value(cap);
            if (c > 0 && c < 1)
                a->cap_utilization = c;
            else
                log_msg("Ignoring capUtilization %g of \"%s\" (must be between 0 and 1)", c, name);
        }
        json_t *prio = json_object_get(e, "priority");
        if (json_is_integer(prio)) a->priority = (int)json_integer_value(prio);
        const char *prov = json_string_value(json_object_get(e, "provider"));
        if (prov) snprintf(a->provider, sizeof a->provider, "%s", prov);
    }
    *n_out = k;
    return accts;
}

/* The queue's options (§2.3, §6.9, Part A1) from the config and the §1.1 environment. */
static void queue_opts_from(const json_t *cfg, queue_opts_t *q)
{
    queue_opts_default(q);
    q->enabled = options_get_bool(cfg, "queue.enabled");
    q->max_wait_ms = options_get_int(cfg, "queue.maxWaitMs");
    int64_t v;
    if (options_get_int_nullable(cfg, "queue.capacityMaxWaitMs", &v))
        q->capacity_max_wait_ms = v;
    else if (options_get_int_nullable(cfg, "queue.autoMaxWaitMs", &v))
        q->capacity_max_wait_ms = v;
    q->stream_hold_max_ms = options_get_int(cfg, "queue.streamHoldMaxMs");
    q->non_stream_max_wait_ms = options_get_int(cfg, "queue.nonStreamMaxWaitMs");
    q->network_max_wait_ms = options_get_int(cfg, "queue.networkMaxWaitMs");
    /* Part A1: a stream tolerance applies only when someone set one. */
    if (options_lookup(cfg, "queue.streamClientToleranceMs"))
        q->client_tolerance_ms = options_get_int(cfg, "queue.streamClientToleranceMs");
    q->client_tolerance_ms = (int64_t)env_ms("MAXPOOL_STREAM_CLIENT_TOLERANCE_MS",
                                             (uint64_t)q->client_tolerance_ms, 60000);
    q->count_tokens_max_wait_ms =
        (int64_t)env_ms("MAXPOOL_COUNT_TOKENS_MAX_WAIT_MS",
                        (uint64_t)options_get_int(cfg, "queue.countTokensMaxWaitMs"), 1000);
    q->network_soak_nonstream_ms =
        (int64_t)env_ms("MAXPOOL_NETWORK_SOAK_NONSTREAM_MS", 45000, 5000);
    q->max_concurrent = (int)options_get_int(cfg, "queue.maxConcurrentQueued");
    q->max_queued_bytes = options_get_int(cfg, "queue.maxQueuedBytes");
    q->max_queued_body_bytes = options_get_int(cfg, "queue.maxQueuedBodyBytes");
    q->poll_ms = options_get_int(cfg, "queue.pollMs");
    q->heartbeat_ms = options_get_int(cfg, "queue.heartbeatMs");
    q->stream_grace_ms =
        (int64_t)env_ms("MAXPOOL_STREAM_FORWARD_GRACE_MS",
                        (uint64_t)options_get_int(cfg, "queue.streamForwardGraceMs"), 1000);
}

/* ---- shutdown (§10.1) ------------------------------------------------------------------ */

typedef struct server_run {
    uv_loop_t *loop;
    proxy_t *px;
    uv_signal_t sigint, sigterm, sighup;
    uv_timer_t drain_timer, tick;
    uint64_t drain_ms;
    bool draining;
    int exit_code;
    uint64_t drain_started;
} server_run_t;

static void close_all(server_run_t *r, int code)
{
    r->exit_code = code;
    uv_stop(r->loop);
}

static void on_drained(void *ud)
{
    server_run_t *r = ud;
    log_msg("Shutdown complete.");
    close_all(r, 0);
}

static void drain_timeout(uv_timer_t *t)
{
    server_run_t *r = t->data;
    log_msg("Drain timeout after %llus; exiting with %zu active request(s) still open.",
            (unsigned long long)(r->drain_ms / 1000), proxy_active(r->px));
    close_all(r, 1);
}

static void drain_tick(uv_timer_t *t)
{
    server_run_t *r = t->data;
    log_msg("Still draining %zu active request(s)...", proxy_active(r->px));
}

static void on_signal(uv_signal_t *s, int signum)
{
    server_run_t *r = s->data;
    if (r->draining) {
        log_msg("Force exiting with %zu active request(s) still open.", proxy_active(r->px));
        close_all(r, 1);
        return;
    }
    r->draining = true;
    const char *name = signum == SIGINT ? "SIGINT" : signum == SIGTERM ? "SIGTERM" : "SIGHUP";
    log_msg("Draining shutdown (%s).", name);
    log_msg("Stopped accepting new requests; waiting up to %llus for %zu active request(s), then "
            "forcing exit. Press Ctrl-C again to force now.",
            (unsigned long long)(r->drain_ms / 1000), proxy_active(r->px));
    uv_timer_start(&r->drain_timer, drain_timeout, r->drain_ms, 0);
    uv_timer_start(&r->tick, drain_tick, 5000, 5000);
    proxy_drain(r->px, on_drained, r);
}

static void close_walk(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

int cmd_server(int argc, char **argv)
{
    char *path;
    json_t *cfg = cli_config_open(&path);
    if (!cfg) return 1;
    if (!json_is_false(json_object_get(cfg, "eventLog"))) {
        char *lp = config_log_path(path);
        log_set_event_file(lp);
        free(lp);
    }

    size_t n = 0, listed = 0;
    account_t *accts = load_accounts(cfg, &n, &listed);
    json_t *providers = json_object_get(cfg, "providers");
    bool have_providers = json_is_array(providers) && json_array_size(providers) > 0;
    if (listed == 0 && !have_providers) {
        fprintf(stderr,
                "No accounts configured.\n"
                "  Add an API-key account:  maxpool login --api\n"
                "  Config: %s\n",
                path);
        free(accts);
        json_decref(cfg);
        free(path);
        return 1;
    }
    if (n == 0 && !have_providers) {
        fprintf(stderr, "No valid accounts after initialization\n");
        free(accts);
        json_decref(cfg);
        free(path);
        return 1;
    }

    sched_options_t sopt;
    schedopts_from_config(cfg, &sopt);
    queue_opts_t qopt;
    queue_opts_from(cfg, &qopt);
    char *state_path = config_state_path(path);
    proxy_settings_t s = {
        .sched = &sopt,
        .queue = &qopt,
        .state_path = state_path,
        .host = options_get_string(cfg, "proxy.host"),
        .port = (int)options_get_int(cfg, "proxy.port"),
        .api_key = options_get_string(cfg, "proxy.apiKey"),
        .upstream = options_get_string(cfg, "upstream"),
        .network_proxy = options_get_string(cfg, "network.proxy"),
        .log_dir = cli_arg_value(argc, argv, "--log-to"),
        .max_body_bytes = (size_t)options_get_int(cfg, "limits.maxBodyBytes"),
        .max_buffered_bytes = (size_t)options_get_int(cfg, "limits.maxBufferedBytes"),
        .ttfb_ms = env_ms("MAXPOOL_TTFB_MS", 120000, 5000),
        .idle_ms = env_ms("MAXPOOL_STREAM_IDLE_MS", 240000, 30000),
        .drain_timeout_ms = (uint64_t)options_get_int(cfg, "shutdown.drainTimeoutMs"),
    };
    if (s.drain_timeout_ms < 1000) s.drain_timeout_ms = 1000;
    if (s.log_dir) fileio_mkdirs(s.log_dir);

    signal(SIGPIPE, SIG_IGN);
    server_run_t r = {.loop = uv_default_loop(), .drain_ms = s.drain_timeout_ms};
    char *err = NULL;
    int started = proxy_start(r.loop, &s, accts, n, &r.px, &err);
    free(state_path);
    if (started != 0) {
        fprintf(stderr, "%s\n", err);
        free(err);
        json_decref(cfg);
        free(path);
        return 1;
    }
    /* Signals first: once the port file says "ready", a SIGTERM must drain, not kill. */
    uv_signal_init(r.loop, &r.sigint);
    uv_signal_init(r.loop, &r.sigterm);
    uv_signal_init(r.loop, &r.sighup);
    r.sigint.data = r.sigterm.data = r.sighup.data = &r;
    uv_signal_start(&r.sigint, on_signal, SIGINT);
    uv_signal_start(&r.sigterm, on_signal, SIGTERM);
    uv_signal_start(&r.sighup, on_signal, SIGHUP);
    uv_timer_init(r.loop, &r.drain_timer);
    uv_timer_init(r.loop, &r.tick);
    r.drain_timer.data = r.tick.data = &r;
    int port = proxy_port(r.px);
    const char *port_file = cli_arg_value(argc, argv, "--port-file");
    if (port_file) {
        char txt[16];
        int len = snprintf(txt, sizeof txt, "%d\n", port);
        fileio_write_atomic(port_file, txt, (size_t)len);
    }
    log_msg("maxpool listening on http://%s:%d with %zu account(s) (config %s)",
            s.host ? s.host : "127.0.0.1", port, n, path);
    json_decref(cfg);
    free(path);

    uv_run(r.loop, UV_RUN_DEFAULT);

    /* Exit path: close what is left so sanitizers see a clean heap on a normal exit. */
    int code = r.exit_code;
    proxy_save_state(r.px);
    if (code == 0) {
        proxy_free(r.px);
        uv_walk(r.loop, close_walk, NULL);
        uv_run(r.loop, UV_RUN_DEFAULT);
        uv_loop_close(r.loop);
    }
    log_set_event_file(NULL);
    return code;
}
