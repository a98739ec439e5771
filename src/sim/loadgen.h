/* sim/loadgen — synthetic Claude-Code-like clients for the demo and benchmarks: a number of
 * sessions, each sending streaming /v1/messages turns (growing transcripts, an
 * x-maxpool-session header) separated by think times. Deterministic for a seed. */
#ifndef MAXPOOL_SIM_LOADGEN_H
#define MAXPOOL_SIM_LOADGEN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct loadgen loadgen_t;

typedef struct loadgen_opts {
    const char *base_url; /* e.g. http://127.0.0.1:3456 */
    int sessions;         /* concurrent sessions */
    uint64_t seed;
    uint64_t think_min_ms; /* pause between a session's turns */
    uint64_t think_max_ms;
    int max_turns; /* per session; 0 = until stopped */
    /* Called after each turn with its HTTP status (0 = transport error) and duration. */
    void (*on_turn)(void *ud, int session, int status, uint64_t ms, size_t bytes);
    void *ud;
} loadgen_opts_t;

typedef struct loadgen_stats {
    uint64_t turns, ok, failed;
    uint64_t bytes;
} loadgen_stats_t;

/* Starts the sessions on loop; returns the generator (owned by the caller). */
loadgen_t *loadgen_start(uv_loop_t *loop, const loadgen_opts_t *o);
/* Counters so far. */
loadgen_stats_t loadgen_stats(const loadgen_t *lg);
/* Stops issuing turns, cancels those in flight and frees lg (handles close on the loop). */
void loadgen_stop(loadgen_t *lg);

#endif
