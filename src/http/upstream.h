/* http/upstream — outgoing HTTP(S) requests on the libuv loop: libcurl's multi-socket API
 * driven by uv_poll/uv_timer, one connection cache for every request (reuse), HTTP/1.1
 * (libcurl 7.88 pauses HTTP/2 streams unreliably; DESIGN.md), an outbound proxy from
 * `HTTPS_PROXY` or upstream_set_proxy.
 *
 * A request is a chain of callbacks (h2o style): on_head once when the response head is
 * complete, on_body for each chunk as it arrives, then on_done exactly once — unless the
 * caller cancels first, after which nothing fires. Failures are named constant strings
 * (upstream_err_*), compared by pointer; the same value is the log text.
 *
 * Backpressure: a consumer that cannot take more (its client socket is full) calls
 * upstream_req_pause() from on_body or anywhere else; libcurl stops reading that socket
 * and at most one more buffer (CURLOPT_BUFFERSIZE) is held back inside libcurl, never
 * delivered until upstream_req_resume(). */
#ifndef MAXPOOL_HTTP_UPSTREAM_H
#define MAXPOOL_HTTP_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "http/server.h"

typedef struct upstream upstream_t;
typedef struct upstream_req upstream_req_t;

extern const char
    upstream_err_connect[]; /* never reached the server (refused, DNS, connect timeout) */
extern const char upstream_err_ttfb[];   /* no response head within ttfb_ms */
extern const char upstream_err_idle[];   /* no body bytes for idle_ms */
extern const char upstream_err_io[];     /* the connection failed after the request was sent */
extern const char upstream_err_closed[]; /* the peer closed before the response was complete */

typedef struct upstream_callbacks {
    /* The response head; headers are valid only during the call. */
    void (*on_head)(upstream_req_t *u, int status, const http_header_t *hdrs, size_t n, void *ud);
    /* A chunk of the response body, valid only during the call. */
    void (*on_body)(upstream_req_t *u, const char *data, size_t n, void *ud);
    /* The end: err is NULL on success, else an upstream_err_* constant; detail is curl's
     * message (may be ""). The request is freed right after this returns. */
    void (*on_done)(upstream_req_t *u, const char *err, const char *detail, void *ud);
} upstream_callbacks_t;

typedef struct upstream_opts {
    uint64_t ttfb_ms;    /* 0 → 120 s: the response head must arrive within this */
    uint64_t idle_ms;    /* 0 → 240 s: longest silence between body chunks (not while paused) */
    uint64_t connect_ms; /* 0 → 10 s */
} upstream_opts_t;

/* Creates the client for loop; returns NULL if libcurl cannot be initialised. */
upstream_t *upstream_new(uv_loop_t *loop);
/* Routes every later request through an HTTP(S) proxy URL (NULL = the environment's). */
void upstream_set_proxy(upstream_t *up, const char *proxy_url);
/* Cancels what is in flight (no callbacks) and frees the client once its handles closed. */
void upstream_free(upstream_t *up);
/* Number of requests in flight. */
size_t upstream_active(const upstream_t *up);

/* Starts method url with exactly the given headers (nothing invented: no Accept, no
 * Expect, no User-Agent, no Accept-Encoding) and body (borrowed: it must stay valid until
 * on_done or cancel). Returns the request (owned by the client). */
upstream_req_t *upstream_start(upstream_t *up, const char *method, const char *url,
                               const http_header_t *hdrs, size_t nhdrs, const void *body,
                               size_t body_len, const upstream_opts_t *opts,
                               const upstream_callbacks_t *cb, void *ud);
/* Stops delivering body bytes until upstream_req_resume (backpressure). */
void upstream_req_pause(upstream_req_t *u);
/* Resumes delivery; held bytes may be delivered before this returns. */
void upstream_req_resume(upstream_req_t *u);
/* Aborts the request: no callback fires afterwards; resources are freed on a later turn. */
void upstream_req_cancel(upstream_req_t *u);
/* True once any response byte (head) has arrived. */
bool upstream_req_got_head(const upstream_req_t *u);

#endif
