/* http/reqparse — a socket-free HTTP/1.1 request parser: http-parser behind limits.
 *
 * Feed it bytes as they arrive, split anywhere. It parses one request at a time: the head
 * (method, target, path/query, headers), then the body, which it buffers up to
 * max_body_bytes. When a request is complete it stops consuming (pipelined bytes that
 * follow are left to the caller) until reqparse_next() is called.
 *
 * Limits: a head longer than max_head_bytes → status 431; a body longer than
 * max_body_bytes → 413 (as soon as Content-Length announces it, or when a chunked body
 * passes it); anything malformed → 400. After an error the parser consumes nothing more.
 *
 * Storage is reused across requests on one connection: in steady state a request costs
 * no allocation. All strings and the headers array live until reqparse_next/free. */
#ifndef MAXPOOL_HTTP_REQPARSE_H
#define MAXPOOL_HTTP_REQPARSE_H

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "http/server.h"

typedef enum reqparse_state {
    REQPARSE_HEAD,  /* waiting for (the rest of) the head */
    REQPARSE_BODY,  /* head parsed (fields below valid), body still arriving */
    REQPARSE_DONE,  /* one whole request parsed; call reqparse_next for the next one */
    REQPARSE_ERROR, /* malformed or over a limit: see status and error */
} reqparse_state_t;

typedef struct reqparse_off {
    size_t name, value; /* offsets into strs */
} reqparse_off_t;

typedef struct reqparse {
    reqparse_state_t state;
    int status;        /* on REQPARSE_ERROR: 400, 413 or 431 */
    const char *error; /* on REQPARSE_ERROR: a short static reason */

    /* The request, valid from REQPARSE_BODY on. */
    const char *method; /* static string */
    const char *target; /* raw request-target */
    const char *path;   /* target up to '?' */
    const char *query;  /* after '?', or "" */
    http_header_t *headers;
    size_t nheaders;
    bool keep_alive;        /* the connection may carry another request after this one */
    bool expect_continue;   /* the client sent `Expect: 100-continue` */
    int64_t content_length; /* announced length, or -1 (chunked or absent) */
    buf_t body;             /* the body so far; the whole body at REQPARSE_DONE */

    /* Private. */
    http_parser parser;
    size_t max_head, max_body;
    size_t head_bytes; /* bytes fed while the head was incomplete */
    buf_t strs;        /* target, header names and values, path, query, NUL-separated */
    reqparse_off_t *offs;
    size_t noffs, offcap, hdrcap;
    int last; /* which callback ran last: 0 none, 1 url, 2 field, 3 value */
} reqparse_t;

/* Prepares rp for a new connection with the given limits (0 → 64 KiB head, 32 MiB body). */
void reqparse_init(reqparse_t *rp, size_t max_head_bytes, size_t max_body_bytes);
/* Releases rp's storage; rp may be initialised again. */
void reqparse_free(reqparse_t *rp);
/* Parses up to n bytes; returns how many were consumed. Stops early when a request is
 * complete (state DONE) or on error (state ERROR); otherwise consumes all n. */
size_t reqparse_feed(reqparse_t *rp, const char *data, size_t n);
/* Forgets the finished request and gets ready for the next one on the same connection
 * (only meaningful after DONE with keep_alive). Keeps small buffers for reuse. */
void reqparse_next(reqparse_t *rp);
/* True once any byte of the current request has been fed (head in progress or later). */
bool reqparse_started(const reqparse_t *rp);
/* Finds a header of the parsed head by case-insensitive name; NULL when absent. */
const char *reqparse_header(const reqparse_t *rp, const char *name);

#endif
