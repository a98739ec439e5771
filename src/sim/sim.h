/* sim/sim — the simulated Anthropic API server: routes requests on http/server to the pure
 * modules (script world, quota, faults, OAuth, responses), runs the timers of delayed,
 * stalled and reset streams, keeps the ring of recent requests for /_sim/requests and the
 * optional per-request log file. One libuv loop. See docs/sim.md. */
#ifndef MAXPOOL_SIM_SIM_H
#define MAXPOOL_SIM_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct sim_server sim_server_t;

typedef struct sim_options {
    const char *host;     /* NULL → 127.0.0.1; only loopback addresses are accepted */
    int port;             /* 0 → ephemeral */
    const char *log_path; /* append one line per request, or NULL */
    bool has_seed;        /* --seed given: wins over the script's */
    uint64_t seed;
    bool has_scale; /* --time-scale given: wins over the script's */
    double scale;
} sim_options_t;

/* Builds the world from script JSON (may be NULL), binds and starts serving on loop.
 * Returns 0, or -1 with a message in *err (caller frees). */
int sim_server_start(uv_loop_t *loop, const sim_options_t *opt, const char *script,
                     size_t script_len, sim_server_t **out, char **err);
/* The port actually bound. */
int sim_server_port(const sim_server_t *s);
/* Aborts every response in progress, stops listening and closes the log; on_closed fires
 * once every connection and handle is gone (then call sim_server_free). */
void sim_server_stop(sim_server_t *s, void (*on_closed)(void *ud), void *ud);
/* Frees a stopped server. */
void sim_server_free(sim_server_t *s);

#endif
