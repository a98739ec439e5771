/* http/sse — an incremental Server-Sent Events parser (and a small writer).
 *
 * Feed the bytes of a text/event-stream as they arrive, split anywhere. Each event (a block
 * of lines ended by a blank line; lines end in \n, \r\n or \r) is reported once with its
 * `event:` name, its `data:` lines joined by \n, and its raw bytes. The raw bytes of all
 * reported events followed by the bytes still buffered are exactly the input, so a relay
 * may forward raw event by event without changing a byte (blank lines between events are
 * carried at the front of the next event's raw). Comment lines (":…") and other fields
 * (id, retry) are kept in raw and otherwise ignored; a block of only comments is still
 * reported (data_len 0). One event may not exceed max_event_bytes of raw text. */
#ifndef MAXPOOL_HTTP_SSE_H
#define MAXPOOL_HTTP_SSE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

typedef struct sse_event {
    const char *event; /* the `event:` value (last one wins), "" when absent */
    size_t event_len;
    const char *data; /* the `data:` values joined by \n, "" when none */
    size_t data_len;
    const char *raw; /* the event's bytes as received, through its blank line */
    size_t raw_len;
} sse_event_t;

/* Called once per complete event; the pointers are valid only during the call. A nonzero
 * return stops sse_feed, which returns that value (unparsed bytes stay buffered). */
typedef int (*sse_event_cb)(const sse_event_t *ev, void *ud);

typedef struct sse_parser {
    buf_t raw;        /* unreported bytes: [start, len) */
    buf_t data;       /* data lines of the event in progress */
    size_t start;     /* first byte of the event in progress */
    size_t scan;      /* first byte of the line in progress */
    size_t lscan;     /* how far the line in progress was searched for its end */
    size_t event_off; /* event name inside raw, relative to start */
    size_t event_len;
    size_t nlines; /* non-blank lines in the event in progress */
    size_t ndata;  /* data lines in the event in progress */
    size_t max_event;
    bool cr_pending; /* the last line ended with \r at the end of the input */
    int err;
} sse_parser_t;

/* Prepares p; max_event_bytes caps one event's raw size (0 → 1 MiB). */
void sse_init(sse_parser_t *p, size_t max_event_bytes);
/* Releases p's buffers; p may be initialised again. */
void sse_free(sse_parser_t *p);
/* Forgets everything buffered (a new stream). */
void sse_reset(sse_parser_t *p);
/* Parses n more bytes, calling cb for each complete event. Returns 0, -EMSGSIZE once an
 * event exceeds the cap (sticky: later calls return it too), or cb's nonzero value. */
int sse_feed(sse_parser_t *p, const void *data, size_t n, sse_event_cb cb, void *ud);
/* True if an incomplete event remains buffered (some non-blank line of an event that
 * was not yet ended by a blank line): the stream was cut mid-event (§3.7 sentinel). */
bool sse_partial(const sse_parser_t *p);
/* Bytes buffered but not yet reported. */
size_t sse_buffered(const sse_parser_t *p);

/* Appends one event to out: `event: <event>\n` (if event is non-NULL), one `data: ` line
 * per line of data, then a blank line. */
void sse_format(buf_t *out, const char *event, const char *data, size_t n);
/* Appends the §6.10 error event {"type":"error","error":{"type":type,"message":message}}
 * as `event: error` (message and type are JSON-escaped). */
void sse_format_error(buf_t *out, const char *type, const char *message);

#endif
