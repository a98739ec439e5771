/* maxpool sim — runs the simulated Anthropic API for tests, the demo and benchmarks. */
#include "cli/cli.h"

#include "core/fileio.h"
#include "core/xalloc.h"
#include "sim/sim.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

typedef struct sim_cli {
    uv_loop_t *loop;
    sim_server_t *srv;
    uv_signal_t sigint, sigterm;
    bool stopping;
} sim_cli_t;

static void on_stopped(void *ud)
{
    sim_cli_t *c = ud;
    uv_close((uv_handle_t *)&c->sigint, NULL);
    uv_close((uv_handle_t *)&c->sigterm, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    sim_cli_t *c = h->data;
    if (c->stopping) return;
    c->stopping = true;
    sim_server_stop(c->srv, on_stopped, c);
}

static int bad_flag(const char *flag, const char *val)
{
    fprintf(stderr, "maxpool sim: invalid %s %s\n", flag, val ? val : "(missing)");
    return 2;
}

int cmd_sim(int argc, char **argv)
{
    sim_options_t opt = {0};
    opt.host = cli_arg_value(argc, argv, "--host");
    const char *v = cli_arg_value(argc, argv, "--port");
    if (v) {
        char *end = NULL;
        long p = strtol(v, &end, 10);
        if (!end || *end || p < 0 || p > 65535) return bad_flag("--port", v);
        opt.port = (int)p;
    } else if (cli_has_flag(argc, argv, "--port")) {
        return bad_flag("--port", NULL);
    }
    if ((v = cli_arg_value(argc, argv, "--seed"))) {
        char *end = NULL;
        errno = 0;
        unsigned long long sd = strtoull(v, &end, 10);
        if (!end || *end || errno || v[0] == '-') return bad_flag("--seed", v);
        opt.has_seed = true;
        opt.seed = sd;
    }
    if ((v = cli_arg_value(argc, argv, "--time-scale"))) {
        char *end = NULL;
        double k = strtod(v, &end);
        if (!end || *end || !(k > 0) || k > 1e7) return bad_flag("--time-scale", v);
        opt.has_scale = true;
        opt.scale = k;
    }
    opt.log_path = cli_arg_value(argc, argv, "--log");
    const char *port_file = cli_arg_value(argc, argv, "--port-file");
    const char *script_path = cli_arg_value(argc, argv, "--script");
    char *script = NULL;
    size_t script_len = 0;
    if (script_path) {
        int r = fileio_read(script_path, &script, &script_len, 0);
        if (r) {
            fprintf(stderr, "maxpool sim: cannot read script %s: %s\n", script_path, strerror(-r));
            return 1;
        }
    }

    sim_cli_t c = {.loop = uv_default_loop()};
    char *err = NULL;
    int r = sim_server_start(c.loop, &opt, script, script_len, &c.srv, &err);
    free(script);
    if (r) {
        fprintf(stderr, "maxpool sim: %s\n", err ? err : "cannot start");
        free(err);
        return 1;
    }
    int port = sim_server_port(c.srv);
    /* Signals first: whoever reads the port file may stop us at once, and must get exit 0. */
    uv_signal_init(c.loop, &c.sigint);
    uv_signal_init(c.loop, &c.sigterm);
    c.sigint.data = c.sigterm.data = &c;
    uv_signal_start(&c.sigint, on_signal, SIGINT);
    uv_signal_start(&c.sigterm, on_signal, SIGTERM);
    if (port_file) {
        char line[16];
        int n = snprintf(line, sizeof line, "%d\n", port);
        int w = fileio_write_atomic(port_file, line, (size_t)n);
        if (w) {
            fprintf(stderr, "maxpool sim: cannot write %s: %s\n", port_file, strerror(-w));
            uv_close((uv_handle_t *)&c.sigint, NULL);
            uv_close((uv_handle_t *)&c.sigterm, NULL);
            sim_server_stop(c.srv, NULL, NULL);
            uv_run(c.loop, UV_RUN_DEFAULT);
            sim_server_free(c.srv);
            return 1;
        }
    }
    fprintf(stderr, "maxpool sim listening on http://127.0.0.1:%d\n", port);
    uv_run(c.loop, UV_RUN_DEFAULT);
    sim_server_free(c.srv);
    uv_loop_close(c.loop);
    return 0;
}
