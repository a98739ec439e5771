/* http/sse: events across arbitrary splits, line-end styles, caps, partial detection. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>

#include "http/sse.h"

typedef struct seen {
    int n;
    char names[8][32];
    char data[8][128];
    size_t raw_total;
} seen_t;

static void on_ev(void *ud, const sse_event_t *ev)
{
    seen_t *s = ud;
    if (s->n < 8) {
        snprintf(s->names[s->n], 32, "%.*s", (int)ev->event_len, ev->event);
        snprintf(s->data[s->n], 128, "%.*s", (int)ev->data_len, ev->data);
    }
    s->raw_total += ev->raw_len;
    s->n++;
}

static const char STREAM[] = "event: message_start\ndata: {\"a\":1}\n\n"
                             ": comment\nevent: ping\ndata: {}\n\n"
                             "data: line1\ndata: line2\n\n";

Test(sse, every_split_point_gives_the_same_events)
{
    size_t n = sizeof STREAM - 1;
    for (size_t cut = 0; cut <= n; cut++) {
        sse_parser_t p;
        sse_init(&p, 0);
        seen_t s = {0};
        sse_feed(&p, STREAM, cut, on_ev, &s);
        sse_feed(&p, STREAM + cut, n - cut, on_ev, &s);
        cr_assert_eq(s.n, 3, "cut %zu", cut);
        cr_assert_str_eq(s.names[0], "message_start");
        cr_assert_str_eq(s.data[0], "{\"a\":1}");
        cr_assert_str_eq(s.names[1], "ping");
        cr_assert_str_eq(s.data[2], "line1\nline2");
        cr_assert_eq(s.raw_total, n);
        cr_assert_not(sse_has_partial(&p));
        sse_free(&p);
    }
}

Test(sse, byte_by_byte_crlf)
{
    const char *t = "event: a\r\ndata: x\r\n\r\nevent: b\r\ndata: y\r\n\r\n";
    sse_parser_t p;
    sse_init(&p, 0);
    seen_t s = {0};
    for (size_t i = 0; t[i]; i++) sse_feed(&p, t + i, 1, on_ev, &s);
    cr_assert_eq(s.n, 2);
    cr_assert_str_eq(s.names[1], "b");
    cr_assert_str_eq(s.data[1], "y");
    /* Each blank line's '\n' arrived in the next feed, after its event was reported. */
    cr_assert_eq(s.raw_total, strlen(t) - 2);
    cr_assert_not(sse_has_partial(&p));
    sse_free(&p);
}

Test(sse, partial_event_is_reported)
{
    sse_parser_t p;
    sse_init(&p, 0);
    seen_t s = {0};
    const char *t = "event: a\ndata: 1\n\nevent: message_delta\ndata: {\"usa";
    sse_feed(&p, t, strlen(t), on_ev, &s);
    cr_assert_eq(s.n, 1);
    cr_assert(sse_has_partial(&p));
    sse_free(&p);
}

Test(sse, oversized_event_is_dropped_then_parsing_resumes)
{
    sse_parser_t p;
    sse_init(&p, 64);
    seen_t s = {0};
    char big[200];
    memset(big, 'x', sizeof big);
    cr_assert_eq(sse_feed(&p, "data: ", 6, on_ev, &s), 0);
    cr_assert_eq(sse_feed(&p, big, sizeof big, on_ev, &s), -ENOBUFS);
    sse_feed(&p, "\n\ndata: ok\n\n", 12, on_ev, &s);
    cr_assert_eq(s.n, 1);
    cr_assert_str_eq(s.data[0], "ok");
    sse_free(&p);
}
