/* libFuzzer harness for http/reqparse: arbitrary bytes, arbitrary splits, small limits. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/reqparse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_request(const reqparse_t *rp)
{
    /* Every string the parser hands out must be NUL-terminated inside its storage. */
    size_t sum = strlen(rp->method) + strlen(rp->target) + strlen(rp->path) + strlen(rp->query);
    for (size_t i = 0; i < rp->nheaders; i++)
        sum += strlen(rp->headers[i].name) + strlen(rp->headers[i].value);
    if (strlen(rp->path) > strlen(rp->target)) abort();
    if (rp->content_length >= 0 && rp->state == REQPARSE_DONE &&
        (size_t)rp->content_length != rp->body.len)
        abort();
    (void)sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    /* The first two bytes choose the split step and the limits. */
    size_t step = (size_t)data[0] % 64 + 1;
    size_t max_head = 64 + (size_t)(data[1] & 0x0f) * 128;
    size_t max_body = (size_t)(data[1] >> 4) * 256 + 1;
    data += 2;
    size -= 2;
    reqparse_t rp;
    reqparse_init(&rp, max_head, max_body);
    size_t off = 0;
    int requests = 0;
    while (off < size && requests < 1000) {
        size_t n = size - off < step ? size - off : step;
        size_t used = reqparse_feed(&rp, (const char *)data + off, n);
        if (used > n) abort();
        off += used;
        if (rp.state == REQPARSE_ERROR) {
            if (rp.status != 400 && rp.status != 413 && rp.status != 431) abort();
            if (reqparse_feed(&rp, (const char *)data + off, size - off) != 0) abort();
            break;
        }
        if (rp.state == REQPARSE_BODY) check_request(&rp);
        if (rp.state == REQPARSE_DONE) {
            check_request(&rp);
            if (rp.body.len > max_body) abort();
            requests++;
            if (!rp.keep_alive) break;
            reqparse_next(&rp);
            continue;
        }
        if (used < n) abort(); /* not done, no error: must have taken everything */
    }
    reqparse_free(&rp);
    return 0;
}
