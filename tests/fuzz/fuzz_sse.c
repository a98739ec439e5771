/* libFuzzer harness for http/sse: arbitrary bytes, split at a fuzzer-chosen point, must
 * never crash, read out of bounds, or report an event larger than the cap. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "http/sse.h"

static void on_ev(void *ud, const sse_event_t *ev)
{
    size_t *total = ud;
    if (ev->raw_len > 4096 || ev->data_len > ev->raw_len || ev->event_len > ev->raw_len) abort();
    *total += ev->raw_len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t cut = data[0] % size;
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    if (cut > n) cut = n;
    sse_parser_t ps;
    sse_init(&ps, 4096);
    size_t total = 0;
    sse_feed(&ps, p, cut, on_ev, &total);
    sse_feed(&ps, p + cut, n - cut, on_ev, &total);
    if (total > n) abort();
    (void)sse_has_partial(&ps);
    sse_free(&ps);
    return 0;
}
