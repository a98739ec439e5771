/* http/server — incoming HTTP/1.1 for the proxy and the simulator: accept, parse
 * (http-parser), enforce limits, keep-alive, and a response writer with backpressure.
 * Protocol only, no policy: what to answer is the caller's business.
 *
 * Lifecycle of a request: the server parses the head and buffers the whole body (up to
 * max_body_bytes), then calls on_request once. The handler answers now or later (from a
 * timer, an upstream callback…) with http_resp_* calls and must finish with
 * http_resp_end() or http_resp_abort(). If the client goes away first, the on_close hook
 * (http_req_on_close) fires once; after it returns the request is freed on a later loop
 * turn and the handler must drop its pointer. One request per connection is in flight at a
 * time: the next pipelined request is parsed after the previous response ends.
 *
 * Limits answer with the JSON error body of SPEC §6.10 and close the connection:
 * head > max_head_bytes → 431, body > max_body_bytes → 413, malformed → 400,
 * no complete head within head_timeout_ms → 408 (slowloris), idle keep-alive connections
 * are closed after idle_timeout_ms. */
#ifndef MAXPOOL_HTTP_SERVER_H
#define MAXPOOL_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/buf.h"

typedef struct http_server http_server_t;
typedef struct http_req http_req_t;

typedef struct http_header {
    const char *name;  /* as received (case kept); compare with strcasecmp */
    const char *value; /* trimmed */
} http_header_t;

struct http_req {
    const char *method; /* "GET", "POST", … */
    const char *target; /* raw request-target, query string included */
    const char *path;   /* target up to '?' (NUL-terminated copy) */
    const char *query;  /* after '?', or "" */
    http_header_t *headers;
    size_t nheaders;
    buf_t body;      /* the whole request body */
    bool keep_alive; /* the client allows reuse of the connection */
    bool peer_local; /* peer is 127.0.0.1, ::1 or ::ffff:127.0.0.1 (§3.3) */
    char peer[64];   /* peer address text */
    uint64_t id;     /* server-unique, increasing */
    void *user;      /* free for the handler */
};

typedef void (*http_request_cb)(http_req_t *req, void *ud);
typedef void (*http_event_cb)(http_req_t *req, void *ud);

typedef struct http_server_config {
    size_t max_head_bytes;    /* 0 → 64 KiB */
    size_t max_body_bytes;    /* 0 → 32 MiB */
    uint64_t head_timeout_ms; /* 0 → 30 s: a complete head must arrive within this */
    uint64_t idle_timeout_ms; /* 0 → 120 s: idle keep-alive connections are closed */
    size_t write_high_water;  /* 0 → 256 KiB: http_resp_writable() turns false above it */
    http_request_cb on_request;
    void *ud;
    /* Extra response headers added to every response (e.g. x-maxpool-worker), or NULL. */
    const http_header_t *common_headers;
    size_t ncommon_headers;
} http_server_config_t;

/* Binds host:port (port 0 = ephemeral) and starts accepting on loop. Returns 0, or a
 * negative libuv error with a human message in *err (caller frees). */
int http_server_start(uv_loop_t *loop, const char *host, int port, const http_server_config_t *cfg,
                      http_server_t **out, char **err);
/* The port actually bound. */
int http_server_port(const http_server_t *srv);
/* Stops accepting and closes idle connections; busy ones close after their response.
 * on_closed fires once every connection is gone (it may be NULL). */
void http_server_stop(http_server_t *srv, void (*on_closed)(void *ud), void *ud);
/* Number of open connections / requests being answered. */
size_t http_server_connections(const http_server_t *srv);
size_t http_server_busy(const http_server_t *srv);
/* Caps the request-body bytes buffered across all connections (Part A12; 0 = no cap, the
 * default). A request whose body would pass it gets 503 overloaded_error and its
 * connection is closed; an announced Content-Length is counted in full up front. A body
 * counts from its first byte until its response ends. */
void http_server_set_buffer_limit(http_server_t *srv, size_t max_bytes);
/* Request-body bytes currently counted against that cap. */
size_t http_server_buffered(const http_server_t *srv);
/* Frees a stopped server (after on_closed). */
void http_server_free(http_server_t *srv);

/* Finds a request header by case-insensitive name; NULL when absent. */
const char *http_req_header(const http_req_t *req, const char *name);
/* Registers the hook called once if the client disconnects before the response ended. */
void http_req_on_close(http_req_t *req, http_event_cb cb, void *ud);
/* The loop the request lives on (for the handler's timers). */
uv_loop_t *http_req_loop(const http_req_t *req);

/* Starts the response. content_length < 0 → chunked (streaming). Headers named
 * content-length, transfer-encoding or connection in hdrs are ignored: the server frames. */
void http_resp_start(http_req_t *req, int status, const http_header_t *hdrs, size_t nhdrs,
                     int64_t content_length);
/* Queues body bytes (copied). Never blocks and never drops: check http_resp_writable()
 * and wait for the drain hook when it turns false. */
void http_resp_write(http_req_t *req, const void *data, size_t n);
/* False while more than write_high_water bytes wait to be written (backpressure). */
bool http_resp_writable(const http_req_t *req);
/* Calls cb once when the write queue falls below the high-water mark again. */
void http_resp_on_drain(http_req_t *req, http_event_cb cb, void *ud);
/* Bytes queued but not yet written to the socket. */
size_t http_resp_queued(const http_req_t *req);
/* Finishes the response (terminating chunk if chunked); the connection is reused or closed
 * per keep-alive. The request must not be touched afterwards. */
void http_resp_end(http_req_t *req);
/* Closes the connection abruptly (TCP RST where possible), whatever was sent. The request
 * must not be touched afterwards. */
void http_resp_abort(http_req_t *req);
/* One-shot response with a complete body. */
void http_resp_send(http_req_t *req, int status, const char *content_type, const void *body,
                    size_t n);
/* One-shot JSON error {"type":"error","error":{"type":type,"message":message}} (§6.10). */
void http_resp_error(http_req_t *req, int status, const char *type, const char *message);
/* Makes this response carry `Connection: close` and closes the connection after it (e.g.
 * the 503 restart_in_progress of §6.10). Call before http_resp_start; later it is a no-op. */
void http_resp_set_close(http_req_t *req);
/* True once http_resp_start has been called. */
bool http_resp_started(const http_req_t *req);

#endif
