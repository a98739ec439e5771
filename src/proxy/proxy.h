/* proxy — `maxpool server`'s request path: admit → describe → select → send → relay →
 * finish, with failover before the first byte reaches the client (DESIGN.md "How a request
 * flows"). Glue between http/server, http/upstream and sched/. */
#ifndef MAXPOOL_PROXY_PROXY_H
#define MAXPOOL_PROXY_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "proxy/queue.h"
#include "sched/sched.h"

typedef struct proxy_settings {
    const char *host;             /* proxy.host */
    int port;                     /* proxy.port (0 = ephemeral) */
    const char *api_key;          /* proxy.apiKey, or NULL/"" for none */
    const char *upstream;         /* default upstream base URL */
    const char *network_proxy;    /* outbound HTTP(S) proxy URL, or NULL for the environment's */
    const char *log_dir;          /* --log-to DIR, or NULL */
    size_t max_body_bytes;        /* limits.maxBodyBytes */
    size_t max_buffered_bytes;    /* limits.maxBufferedBytes: all request bodies held at once */
    uint64_t ttfb_ms, idle_ms;    /* §6.7 */
    uint64_t drain_timeout_ms;    /* shutdown.drainTimeoutMs */
    const sched_options_t *sched; /* routing options, switchThreshold and retry.* included
                                   * (NULL = the §5.9 defaults) */
    const char *state_path;       /* <config>.state.json, or NULL for no state file */
    const queue_opts_t *queue;    /* queue.* (NULL = the §2.3 defaults) */
} proxy_settings_t;

typedef struct proxy proxy_t;

/* Starts listening; takes ownership of accts[0..n) (an xmalloc'd array; the accounts move
 * into the scheduler) and restores quota from the state file. Returns 0, or -1 with a
 * message for the user in *err (caller frees), e.g. the §3.1 EADDRINUSE text. */
int proxy_start(uv_loop_t *loop, const proxy_settings_t *s, account_t *accts, size_t n,
                proxy_t **out, char **err);
/* The port actually bound. */
int proxy_port(const proxy_t *px);
/* Stops accepting (idle connections close; requests already admitted finish). on_drained
 * fires once nothing is in flight. */
void proxy_drain(proxy_t *px, void (*on_drained)(void *ud), void *ud);
/* Requests being served right now. */
size_t proxy_active(const proxy_t *px);
/* Writes the state file now (blocking: for shutdown). */
void proxy_save_state(proxy_t *px);
/* Frees everything (after drain, or to force exit); the memory goes on the next loop run. */
void proxy_free(proxy_t *px);

#endif
