#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "core/buf.h"
#include "http/sse.h"
#include "testutil.h"

typedef struct seen {
    int n;
    buf_t names; /* name|data\n per event */
    buf_t raw;   /* concatenated raw */
    int stop_after;
} seen_t;

static int collect(const sse_event_t *ev, void *ud)
{
    seen_t *s = ud;
    s->n++;
    buf_append(&s->names, ev->event, ev->event_len);
    buf_append(&s->names, "|", 1);
    buf_append(&s->names, ev->data, ev->data_len);
    buf_append(&s->names, "\n", 1);
    buf_append(&s->raw, ev->raw, ev->raw_len);
    return s->stop_after && s->n >= s->stop_after ? 7 : 0;
}

static void seen_init(seen_t *s)
{
    memset(s, 0, sizeof *s);
    buf_init(&s->names, 0);
    buf_init(&s->raw, 0);
}

static void seen_free(seen_t *s)
{
    buf_free(&s->names);
    buf_free(&s->raw);
}

static const char *STREAM = "event: message_start\n"
                            "data: {\"type\":\"message_start\"}\n"
                            "\n"
                            ": keep-alive comment\n"
                            "\n"
                            "event: content_block_delta\r\n"
                            "data: {\"a\":1}\r\n"
                            "data: {\"b\":2}\r\n"
                            "\r\n"
                            "\n"
                            "event:ping\rdata:x\r\r"
                            "id: 7\n"
                            "retry: 100\n"
                            "data\n"
                            "\n"
                            "event: message_stop\n"
                            "data: {\"type\":\"message_stop\"}\n"
                            "\n";

static const char *EXPECT = "message_start|{\"type\":\"message_start\"}\n"
                            "|\n"
                            "content_block_delta|{\"a\":1}\n{\"b\":2}\n"
                            "ping|x\n"
                            "|\n"
                            "message_stop|{\"type\":\"message_stop\"}\n";

Test(sse, whole_stream)
{
    sse_parser_t p;
    sse_init(&p, 0);
    seen_t s;
    seen_init(&s);
    cr_assert_eq(sse_feed(&p, STREAM, strlen(STREAM), collect, &s), 0);
    cr_expect_eq(s.n, 6);
    cr_expect_str_eq(s.names.data, EXPECT);
    cr_expect_str_eq(s.raw.data, STREAM, "raw bytes concatenate to the input");
    cr_expect(!sse_partial(&p));
    cr_expect_eq(sse_buffered(&p), 0);
    seen_free(&s);
    sse_free(&p);
}

Test(sse, every_split_and_bytewise)
{
    size_t n = strlen(STREAM);
    for (size_t cut1 = 0; cut1 <= n; cut1++) {
        for (size_t cut2 = cut1; cut2 <= n; cut2 += 7) {
            sse_parser_t p;
            sse_init(&p, 0);
            seen_t s;
            seen_init(&s);
            sse_feed(&p, STREAM, cut1, collect, &s);
            sse_feed(&p, STREAM + cut1, cut2 - cut1, collect, &s);
            sse_feed(&p, STREAM + cut2, n - cut2, collect, &s);
            cr_assert_str_eq(s.names.data, EXPECT, "cuts %zu %zu", cut1, cut2);
            cr_assert_str_eq(s.raw.data, STREAM);
            seen_free(&s);
            sse_free(&p);
        }
    }
    sse_parser_t p;
    sse_init(&p, 0);
    seen_t s;
    seen_init(&s);
    for (size_t i = 0; i < n; i++)
        sse_feed(&p, STREAM + i, 1, collect, &s);
    cr_expect_str_eq(s.names.data, EXPECT);
    cr_expect_str_eq(s.raw.data, STREAM);
    seen_free(&s);
    sse_free(&p);
}

Test(sse, partial_event_at_end)
{
    sse_parser_t p;
    sse_init(&p, 0);
    seen_t s;
    seen_init(&s);
    const char *a = "event: a\ndata: 1\n\nevent: content_block_delta\ndata: {\"trunc";
    sse_feed(&p, a, strlen(a), collect, &s);
    cr_expect_eq(s.n, 1);
    cr_expect(sse_partial(&p));
    cr_expect_eq(sse_buffered(&p), strlen(a) - strlen("event: a\ndata: 1\n\n"));
    sse_reset(&p);
    cr_expect(!sse_partial(&p));
    /* Complete lines but no blank line yet: still partial. */
    sse_feed(&p, "data: x\n", 8, collect, &s);
    cr_expect(sse_partial(&p));
    sse_feed(&p, "\n", 1, collect, &s);
    cr_expect(!sse_partial(&p));
    /* Only blank lines pending: not an event. */
    sse_feed(&p, "\n\r\n", 3, collect, &s);
    cr_expect(!sse_partial(&p));
    cr_expect_eq(s.n, 2);
    seen_free(&s);
    sse_free(&p);
}

Test(sse, cap_per_event)
{
    sse_parser_t p;
    sse_init(&p, 64);
    seen_t s;
    seen_init(&s);
    /* Many small events in one feed are fine even though the feed is bigger than the cap. */
    buf_t b;
    buf_init(&b, 0);
    for (int i = 0; i < 100; i++)
        buf_printf(&b, "data: %d\n\n", i);
    cr_expect_eq(sse_feed(&p, b.data, b.len, collect, &s), 0);
    cr_expect_eq(s.n, 100);
    /* One event over the cap fails, complete or not, and the error sticks. */
    buf_reset(&b);
    buf_puts(&b, "data: ");
    for (int i = 0; i < 100; i++)
        buf_puts(&b, "x");
    cr_expect_eq(sse_feed(&p, b.data, b.len, collect, &s), -EMSGSIZE);
    cr_expect_eq(sse_feed(&p, "\n\n", 2, collect, &s), -EMSGSIZE);
    sse_reset(&p);
    buf_puts(&b, "\n\n");
    cr_expect_eq(sse_feed(&p, b.data, b.len, collect, &s), -EMSGSIZE);
    cr_expect_eq(s.n, 100);
    buf_free(&b);
    seen_free(&s);
    sse_free(&p);
}

Test(sse, callback_can_stop)
{
    sse_parser_t p;
    sse_init(&p, 0);
    seen_t s;
    seen_init(&s);
    s.stop_after = 1;
    const char *t = "data: 1\n\ndata: 2\n\n";
    cr_expect_eq(sse_feed(&p, t, strlen(t), collect, &s), 7);
    cr_expect_eq(s.n, 1);
    s.stop_after = 0;
    /* The rest is still buffered and comes out on the next feed. */
    cr_expect_eq(sse_feed(&p, NULL, 0, collect, &s), 0);
    cr_expect_eq(s.n, 2);
    cr_expect_str_eq(s.raw.data, t);
    seen_free(&s);
    sse_free(&p);
}

Test(sse, format_and_error_event)
{
    buf_t b;
    buf_init(&b, 0);
    sse_format(&b, "ping", "{}", 2);
    sse_format(&b, NULL, "a\nb", 3);
    cr_expect_str_eq(b.data, "event: ping\ndata: {}\n\ndata: a\ndata: b\n\n");
    buf_reset(&b);
    sse_format_error(&b, "api_error", "Upstream closed \"x\"");
    cr_expect_str_eq(b.data, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"
                             "\"api_error\",\"message\":\"Upstream closed \\\"x\\\"\"}}\n\n");
    /* What we format, we parse. */
    sse_parser_t p;
    sse_init(&p, 0);
    seen_t s;
    seen_init(&s);
    sse_feed(&p, b.data, b.len, collect, &s);
    cr_expect_eq(s.n, 1);
    cr_expect(strncmp(s.names.data, "error|{\"type\":\"error\"", 21) == 0);
    seen_free(&s);
    sse_free(&p);
    buf_free(&b);
}
