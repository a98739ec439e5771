#include <criterion/criterion.h>
#include <string.h>

#include "core/xalloc.h"
#include "http/reqparse.h"
#include "testutil.h"

/* Feeds all of s in one call; returns bytes consumed. */
static size_t feed_all(reqparse_t *rp, const char *s, size_t n)
{
    return reqparse_feed(rp, s, n);
}

static const char *REQ_POST = "POST /v1/messages?beta=true HTTP/1.1\r\n"
                              "Host: 127.0.0.1\r\n"
                              "Content-Type: application/json \r\n"
                              "X-Api-Key:   sk-test\r\n"
                              "Content-Length: 11\r\n"
                              "\r\n"
                              "{\"a\":\"bc\"}\n";

static void check_post(reqparse_t *rp)
{
    cr_assert_eq(rp->state, REQPARSE_DONE);
    cr_expect_str_eq(rp->method, "POST");
    cr_expect_str_eq(rp->target, "/v1/messages?beta=true");
    cr_expect_str_eq(rp->path, "/v1/messages");
    cr_expect_str_eq(rp->query, "beta=true");
    cr_assert_eq(rp->nheaders, 4);
    cr_expect_str_eq(rp->headers[0].name, "Host");
    cr_expect_str_eq(rp->headers[1].value, "application/json");
    cr_expect_str_eq(reqparse_header(rp, "x-api-key"), "sk-test");
    cr_expect_null(reqparse_header(rp, "authorization"));
    cr_expect_eq(rp->content_length, 11);
    cr_expect(rp->keep_alive);
    cr_assert_eq(rp->body.len, 11);
    cr_expect(memcmp(rp->body.data, "{\"a\":\"bc\"}\n", 11) == 0);
}

Test(reqparse, simple_post)
{
    reqparse_t rp;
    reqparse_init(&rp, 0, 0);
    cr_expect(!reqparse_started(&rp));
    size_t n = strlen(REQ_POST);
    cr_expect_eq(feed_all(&rp, REQ_POST, n), n);
    check_post(&rp);
    reqparse_free(&rp);
}

Test(reqparse, split_at_every_byte_boundary)
{
    size_t n = strlen(REQ_POST);
    for (size_t cut = 0; cut <= n; cut++) {
        reqparse_t rp;
        reqparse_init(&rp, 0, 0);
        size_t a = reqparse_feed(&rp, REQ_POST, cut);
        cr_assert_eq(a, cut);
        size_t b = reqparse_feed(&rp, REQ_POST + cut, n - cut);
        cr_assert_eq(b, n - cut);
        check_post(&rp);
        reqparse_free(&rp);
    }
    /* And one byte at a time. */
    reqparse_t rp;
    reqparse_init(&rp, 0, 0);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(reqparse_feed(&rp, REQ_POST + i, 1), 1);
        if (i == 0) cr_expect(reqparse_started(&rp));
    }
    check_post(&rp);
    reqparse_free(&rp);
}

Test(reqparse, pipelining_pauses_between_requests)
{
    const char *three = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
                        "POST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyz"
                        "GET /c?q=1 HTTP/1.1\r\nConnection: close\r\n\r\n";
    size_t n = strlen(three), off = 0;
    reqparse_t rp;
    reqparse_init(&rp, 0, 0);
    const char *paths[] = {"/a", "/b", "/c"};
    for (int i = 0; i < 3; i++) {
        size_t used = reqparse_feed(&rp, three + off, n - off);
        off += used;
        cr_assert_eq(rp.state, REQPARSE_DONE, "request %d", i);
        cr_expect_str_eq(rp.path, paths[i]);
        /* Nothing more is consumed until the caller moves on. */
        cr_expect_eq(reqparse_feed(&rp, three + off, n - off), 0);
        if (i == 1) cr_expect(rp.body.len == 3 && memcmp(rp.body.data, "xyz", 3) == 0);
        if (i == 2) {
            cr_expect(!rp.keep_alive);
            cr_expect_str_eq(rp.query, "q=1");
        } else {
            cr_expect(rp.keep_alive);
        }
        reqparse_next(&rp);
    }
    cr_expect_eq(off, n);
    reqparse_free(&rp);
}

Test(reqparse, chunked_body)
{
    const char *s = "POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n"
                    "GET /next HTTP/1.1\r\n\r\n";
    size_t n = strlen(s);
    for (size_t cut = 0; cut <= n; cut += 3) {
        reqparse_t rp;
        reqparse_init(&rp, 0, 0);
        size_t used = reqparse_feed(&rp, s, cut);
        if (rp.state != REQPARSE_DONE) used += reqparse_feed(&rp, s + used, n - used);
        cr_assert_eq(rp.state, REQPARSE_DONE);
        cr_expect_eq(rp.content_length, -1);
        cr_assert_eq(rp.body.len, 12);
        cr_expect(memcmp(rp.body.data, "hello, world", 12) == 0);
        cr_expect_eq(rp.nheaders, 1, "trailers are not headers");
        reqparse_next(&rp);
        reqparse_feed(&rp, s + used, n - used);
        cr_expect_eq(rp.state, REQPARSE_DONE);
        cr_expect_str_eq(rp.path, "/next");
        reqparse_free(&rp);
    }
}

static int parse_status(const char *s, size_t max_head, size_t max_body)
{
    reqparse_t rp;
    reqparse_init(&rp, max_head, max_body);
    reqparse_feed(&rp, s, strlen(s));
    int st = rp.state == REQPARSE_ERROR ? rp.status : (int)rp.state * -1;
    if (rp.state == REQPARSE_ERROR) {
        cr_expect_not_null(rp.error);
        /* After an error nothing more is consumed. */
        cr_expect_eq(reqparse_feed(&rp, "GET / HTTP/1.1\r\n\r\n", 18), 0);
    }
    reqparse_free(&rp);
    return st;
}

Test(reqparse, malformed_is_400)
{
    const char *bad[] = {
        "GET\r\n\r\n",
        "GARBAGE / HTTP/1.1\r\n\r\n",
        "GET / HTTP/9.x\r\n\r\n",
        "GET / HTTP/1.1\r\nBad Header\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFF\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        "POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        "\x01\x02\x03",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_expect_eq(parse_status(bad[i], 0, 0), 400, "case %zu", i);
}

Test(reqparse, head_limit_is_431)
{
    buf_t b;
    buf_init(&b, 0);
    buf_puts(&b, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < 2000; i++)
        buf_printf(&b, "X-Flood-%d: %d\r\n", i, i);
    buf_puts(&b, "\r\n");
    cr_expect_eq(parse_status(b.data, 1024, 0), 431);
    /* The same head fits a bigger limit. */
    cr_expect_eq(parse_status(b.data, 128 * 1024, 0), -(int)REQPARSE_DONE);
    /* A head of exactly the limit is accepted, one more byte is not. */
    const char *h = "GET / HTTP/1.1\r\nA: b\r\n\r\n";
    size_t hl = strlen(h);
    cr_expect_eq(parse_status(h, hl, 0), -(int)REQPARSE_DONE);
    cr_expect_eq(parse_status(h, hl - 1, 0), 431);
    /* An endless header line is cut at the limit even fed slowly. */
    reqparse_t rp;
    reqparse_init(&rp, 4096, 0);
    size_t total = reqparse_feed(&rp, "GET / HTTP/1.1\r\nX: ", 19);
    for (int i = 0; i < 10000 && rp.state == REQPARSE_HEAD; i++)
        total += reqparse_feed(&rp, "aaaaaaaa", 8);
    cr_expect_eq(rp.state, REQPARSE_ERROR);
    cr_expect_eq(rp.status, 431);
    cr_expect_eq(total, 4096);
    reqparse_free(&rp);
    buf_free(&b);
}

Test(reqparse, body_limit_is_413)
{
    /* Announced too big: rejected at the head, before any body byte. */
    cr_expect_eq(parse_status("POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n", 0, 100), 413);
    cr_expect_eq(parse_status("POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n", 0, 100),
                 -(int)REQPARSE_BODY);
    /* Chunked: rejected once the body passes the limit. */
    buf_t b;
    buf_init(&b, 0);
    buf_puts(&b, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 20; i++)
        buf_puts(&b, "a\r\n0123456789\r\n");
    cr_expect_eq(parse_status(b.data, 0, 150), 413);
    buf_puts(&b, "0\r\n\r\n");
    cr_expect_eq(parse_status(b.data, 0, 200), -(int)REQPARSE_DONE);
    buf_free(&b);
}

Test(reqparse, expect_continue_and_http10)
{
    reqparse_t rp;
    reqparse_init(&rp, 0, 0);
    const char *s = "PUT /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
    reqparse_feed(&rp, s, strlen(s));
    cr_expect_eq(rp.state, REQPARSE_BODY);
    cr_expect(rp.expect_continue);
    reqparse_feed(&rp, "ok", 2);
    cr_expect_eq(rp.state, REQPARSE_DONE);
    reqparse_free(&rp);

    reqparse_init(&rp, 0, 0);
    s = "GET / HTTP/1.0\r\n\r\n";
    reqparse_feed(&rp, s, strlen(s));
    cr_expect_eq(rp.state, REQPARSE_DONE);
    cr_expect(!rp.keep_alive);
    reqparse_free(&rp);

    reqparse_init(&rp, 0, 0);
    s = "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    reqparse_feed(&rp, s, strlen(s));
    cr_expect(rp.keep_alive);
    reqparse_free(&rp);
}

Test(reqparse, many_requests_reuse_storage)
{
    reqparse_t rp;
    reqparse_init(&rp, 0, 0);
    const char *s = "POST /v1/messages HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nContent-Length: 4\r\n"
                    "\r\nbody";
    size_t n = strlen(s);
    for (int i = 0; i < 1000; i++) {
        cr_assert_eq(reqparse_feed(&rp, s, n), n);
        cr_assert_eq(rp.state, REQPARSE_DONE);
        cr_assert_eq(rp.nheaders, 4);
        cr_assert_str_eq(rp.headers[2].value, "3");
        reqparse_next(&rp);
    }
    reqparse_free(&rp);
}

Test(reqparse, head_limit_above_parser_default)
{
    /* A 100 KiB head passes with a 128 KiB limit (http-parser alone stops at 80 KiB). */
    buf_t b;
    buf_init(&b, 0);
    buf_puts(&b, "GET / HTTP/1.1\r\nX-Big: ");
    for (int i = 0; i < 100 * 1024; i++)
        buf_append(&b, "a", 1);
    buf_puts(&b, "\r\n\r\n");
    cr_expect_eq(parse_status(b.data, 128 * 1024, 0), -(int)REQPARSE_DONE);
    cr_expect_eq(parse_status(b.data, 64 * 1024, 0), 431);
    buf_free(&b);
}
