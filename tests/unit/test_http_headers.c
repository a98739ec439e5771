/* http/headers: packed header lists round-trip, and respect the buffer's cap. */
#include <criterion/criterion.h>
#include <errno.h>

#include "http/headers.h"

Test(http_headers, pack_unpack_round_trip)
{
    buf_t b;
    buf_init(&b, 0);
    cr_assert_eq(http_headers_pack(&b, "content-type", 12, "text/event-stream", 17), 0);
    cr_assert_eq(http_headers_pack(&b, "x-empty", 7, "", 0), 0);
    cr_assert_eq(http_headers_pack(&b, "retry-afterXX", 11, "7", 1), 0); /* lengths rule */
    http_header_t h[3];
    http_headers_unpack(&b, 3, h);
    cr_assert_str_eq(h[0].name, "content-type");
    cr_assert_str_eq(h[0].value, "text/event-stream");
    cr_assert_str_eq(h[1].name, "x-empty");
    cr_assert_str_eq(h[1].value, "");
    cr_assert_str_eq(h[2].name, "retry-after");
    cr_assert_str_eq(h[2].value, "7");
    buf_free(&b);
}

Test(http_headers, cap_refuses_without_change)
{
    buf_t b;
    buf_init(&b, 16);
    cr_assert_eq(http_headers_pack(&b, "a", 1, "b", 1), 0);
    size_t len = b.len;
    cr_assert_eq(http_headers_pack(&b, "long-name", 9, "long-value", 10), -ENOBUFS);
    cr_assert_eq(b.len, len);
    buf_free(&b);
}
