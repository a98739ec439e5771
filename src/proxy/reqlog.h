/* proxy/reqlog — `--log-to DIR`: one file per request outcome with the request and the
 * response as they crossed the proxy (§11.1). Debug only: it holds prompts. Credentials are
 * masked (x-api-key: first 15 chars + "...", authorization: first 20 + "..."). Files are
 * written off the loop thread (uv_queue_work). */
#ifndef MAXPOOL_PROXY_REQLOG_H
#define MAXPOOL_PROXY_REQLOG_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/buf.h"
#include "http/server.h"

#define REQLOG_STREAM_CAP (1u << 20) /* streamed bodies kept up to 1 MiB */

typedef struct reqlog {
    buf_t text;   /* the file being built */
    buf_t stream; /* response body bytes (capped) */
    size_t stream_total;
    int status;
} reqlog_t;

/* Starts the record of one attempt: the request line, headers and body. */
void reqlog_request(reqlog_t *lg, const char *account, int retry, const char *method,
                    const char *url, const http_header_t *h, size_t n, const char *body,
                    size_t body_len);
/* Adds the response head. */
void reqlog_response(reqlog_t *lg, int status, const http_header_t *h, size_t n);
/* Adds response body bytes (kept up to REQLOG_STREAM_CAP). */
void reqlog_body(reqlog_t *lg, const char *data, size_t n);
/* Adds an error section (a failed attempt or a transport error). */
void reqlog_error(reqlog_t *lg, const char *title, const char *detail);
/* Writes the record to DIR/<YYYYMMDD_HHMMSS.mmm>_<id>.log in the background and resets lg. */
void reqlog_flush(reqlog_t *lg, uv_loop_t *loop, const char *dir, uint64_t id, bool streamed);
/* Frees lg's buffers without writing. */
void reqlog_free(reqlog_t *lg);

#endif
