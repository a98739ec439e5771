/* libFuzzer harness for http/sse: arbitrary splits; the raw bytes of the reported events
 * plus what stays buffered must equal the input. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "http/sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int on_event(const sse_event_t *ev, void *ud)
{
    buf_t *raw = ud;
    if (ev->raw_len == 0 || ev->data_len > ev->raw_len || ev->event_len > ev->raw_len) abort();
    if (ev->event_len && (ev->event < ev->raw || ev->event + ev->event_len > ev->raw + ev->raw_len))
        abort();
    char last = ev->raw[ev->raw_len - 1];
    if (last != '\n' && last != '\r') abort();
    buf_append(raw, ev->raw, ev->raw_len);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t step = (size_t)data[0] % 32 + 1;
    data++;
    size--;
    sse_parser_t p;
    sse_init(&p, 512);
    buf_t raw;
    buf_init(&raw, 0);
    int rc = 0;
    for (size_t off = 0; off < size && rc == 0; off += step) {
        size_t n = size - off < step ? size - off : step;
        rc = sse_feed(&p, data + off, n, on_event, &raw);
    }
    if (rc != 0 && rc != -EMSGSIZE) abort();
    if (rc == 0) {
        if (raw.len + sse_buffered(&p) != size) abort();
        if (memcmp(raw.data ? raw.data : "", data, raw.len) != 0) abort();
        if (sse_buffered(&p) > 512) abort();
    }
    buf_free(&raw);
    sse_free(&p);
    return 0;
}
