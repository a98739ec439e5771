/* http/sse — an incremental parser of Server-Sent Events (the upstream's streamed answers).
 * Bytes go in as they arrive, split anywhere; each complete event comes out once, with its
 * `event:` name, its `data:` lines joined by "\n", and its raw bytes. It parses untrusted
 * input: bounded per event (max_event) and fuzzed (tests/fuzz/fuzz_sse.c).
 * Line ends may be \n, \r\n or \r; lines starting with ':' are comments. */
#ifndef MAXPOOL_HTTP_SSE_H
#define MAXPOOL_HTTP_SSE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

typedef struct sse_event {
    const char *event; /* the event name, "" when there was no event: line */
    size_t event_len;
    const char *data; /* data lines joined with "\n" (no trailing newline) */
    size_t data_len;
    const char *raw; /* the whole event as received, blank line included (but for the '\n'
                      * of a "\r\n" blank line that arrives in the next feed) */
    size_t raw_len;
} sse_event_t;

/* Called once per complete event; the pointers are valid only during the call. */
typedef void (*sse_event_cb)(void *ud, const sse_event_t *ev);

typedef struct sse_parser {
    buf_t pending;    /* bytes of the event being received */
    size_t scan;      /* how far pending was already searched for the blank line */
    bool line_start;  /* scan position is at the start of a line */
    bool after_cr;    /* the last byte scanned was '\r' (a '\n' may follow) */
    bool skip_lf;     /* an event ended on '\r': drop one '\n' that may follow */
    bool overflow;    /* discarding an oversized event until its blank line */
    buf_t data;       /* scratch for joining data lines */
    size_t max_event; /* cap on one event's size */
} sse_parser_t;

/* Prepares p; events larger than max_event bytes (0 → 1 MiB) are dropped. */
void sse_init(sse_parser_t *p, size_t max_event);
/* Feeds n bytes, calling cb for every event they complete. Returns 0, or -ENOBUFS if an
 * event was dropped for exceeding max_event (parsing goes on after its blank line). */
int sse_feed(sse_parser_t *p, const char *bytes, size_t n, sse_event_cb cb, void *ud);
/* True if bytes of an unfinished event are pending (the stream ended mid-event, §3.7). */
bool sse_has_partial(const sse_parser_t *p);
/* Frees the parser's buffers. */
void sse_free(sse_parser_t *p);

#endif
