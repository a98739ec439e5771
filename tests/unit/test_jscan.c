#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "core/jscan.h"
#include "core/xalloc.h"
#include "testutil.h"

static int val(const char *s)
{
    return jscan_validate(s, strlen(s));
}

Test(jscan, validate_accepts_well_formed)
{
    const char *ok[] = {
        "{}",
        "[]",
        " {\"a\":1} ",
        "\"x\"",
        "0",
        "-0",
        "1.5e-3",
        "1E+10",
        "true",
        "false",
        "null",
        "[1,[2,[3,{}]]]",
        "{\"a\":{\"b\":[true,null,\"\\u00e9\\n\"]}}",
        "\"\\ud83d\\ude00\"",
        "\t\r\n[ ]\n",
        "-12.25E2",
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        cr_expect_eq(val(ok[i]), 0, "should accept %s", ok[i]);
}

Test(jscan, validate_rejects_malformed)
{
    const char *bad[] = {
        "",          " ",     "{",         "}",       "{\"a\"}", "{\"a\":}",    "{\"a\":1,}",
        "[1,]",      "[,1]",  "01",        "1.",      ".5",      "1e",          "+1",
        "-",         "tru",   "nulll",     "\"abc",   "\"\\x\"", "\"\\u12G4\"", "{a:1}",
        "{} {}",     "[1 2]", "\"a\tb\"",  "{'a':1}", "NaN",     "Infinity",    "[1]]",
        "{\"a\" 1}", "1 2",   "\"\\u12\"",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_expect_eq(val(bad[i]), -EINVAL, "should reject [%s]", bad[i]);
}

Test(jscan, validate_is_bounded_by_n)
{
    /* The text continues past n: only the first n bytes count. */
    const char *s = "{\"a\":1}garbage";
    cr_expect_eq(jscan_validate(s, 7), 0);
    cr_expect_eq(jscan_validate(s, 6), -EINVAL);
    cr_expect_eq(jscan_validate("\"ab\"", 3), -EINVAL);
    cr_expect_eq(jscan_validate(NULL, 0), -EINVAL);
}

Test(jscan, depth_cap)
{
    size_t depth = 256;
    char *s = xmalloc(2 * depth + 1);
    memset(s, '[', depth);
    memset(s + depth, ']', depth);
    cr_expect_eq(jscan_validate(s, 2 * depth), 0);
    free(s);
    depth = 100000;
    s = xmalloc(2 * depth);
    memset(s, '[', depth);
    memset(s + depth, ']', depth);
    cr_expect_eq(jscan_validate(s, 2 * depth), -EINVAL);
    cr_expect_eq(jscan_has_type(s, 2 * depth, "x"), false);
    free(s);
}

Test(jscan, get_top_level_keys)
{
    const char *s = "{\"model\":\"claude-x\",\"stream\":true,\"max_tokens\":1024,"
                    "\"meta\":{\"model\":\"inner\"},\"arr\":[1,{\"k\":2}]}";
    const char *v;
    size_t n;
    cr_assert_eq(jscan_get(s, strlen(s), "model", &v, &n), 0);
    cr_expect_eq(n, strlen("\"claude-x\""));
    cr_expect(memcmp(v, "\"claude-x\"", n) == 0);
    cr_assert_eq(jscan_get(s, strlen(s), "stream", &v, &n), 0);
    cr_expect(n == 4 && memcmp(v, "true", 4) == 0);
    cr_assert_eq(jscan_get(s, strlen(s), "meta", &v, &n), 0);
    cr_expect(memcmp(v, "{\"model\":\"inner\"}", n) == 0);
    /* Nested keys are not top-level keys. */
    cr_expect_eq(jscan_get(s, strlen(s), "k", &v, &n), -ENOENT);
    cr_expect_eq(jscan_get(s, strlen(s), "missing", &v, &n), -ENOENT);
}

Test(jscan, get_last_key_wins_and_escaped_keys)
{
    const char *s = "{\"a\":1,\"b\":2,\"a\":[3]}";
    const char *v;
    size_t n;
    cr_assert_eq(jscan_get(s, strlen(s), "a", &v, &n), 0);
    cr_expect(n == 3 && memcmp(v, "[3]", 3) == 0);
    const char *e = "{\"\\u006dodel\":\"m\"}";
    cr_assert_eq(jscan_get(e, strlen(e), "model", &v, &n), 0);
    cr_expect(n == 3 && memcmp(v, "\"m\"", 3) == 0);
}

Test(jscan, get_rejects_non_objects_and_malformed)
{
    const char *v;
    size_t n;
    cr_expect_eq(jscan_get("[1]", 3, "a", &v, &n), -EINVAL);
    cr_expect_eq(jscan_get("\"a\"", 3, "a", &v, &n), -EINVAL);
    cr_expect_eq(jscan_get("{\"a\":1", 6, "a", &v, &n), -EINVAL);
    cr_expect_eq(jscan_get("{\"a\":1} x", 9, "a", &v, &n), -EINVAL);
    cr_expect_eq(jscan_get("{\"a\":1,\"b\":[}", 13, "a", &v, &n), -EINVAL);
    cr_expect_eq(jscan_get(" {} ", 4, "a", &v, &n), -ENOENT);
}

Test(jscan, string_unescapes)
{
    buf_t b;
    buf_init(&b, 0);
    const char *s = "\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u00e9\\u20ac\\ud83d\\ude00\"";
    cr_assert_eq(jscan_string(s, strlen(s), &b), 0);
    cr_expect_str_eq(b.data, "a\"b\\c/d\b\f\n\r\t\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    buf_reset(&b);
    /* Lone surrogates become U+FFFD, as Node does when it writes such a string. */
    const char *lone = "\"x\\ud800y\\udc00\"";
    cr_assert_eq(jscan_string(lone, strlen(lone), &b), 0);
    cr_expect_str_eq(b.data, "x\xef\xbf\xbdy\xef\xbf\xbd");
    buf_reset(&b);
    cr_expect_eq(jscan_string("\"\"", 2, &b), 0);
    cr_expect_eq(b.len, 0);
    cr_expect_eq(jscan_string("\"abc", 4, &b), -EINVAL);
    cr_expect_eq(jscan_string("abc", 3, &b), -EINVAL);
    cr_expect_eq(jscan_string("\"a\"b\"", 5, &b), -EINVAL);
    cr_expect_eq(jscan_string("\"", 1, &b), -EINVAL);
    cr_expect_eq(b.len, 0);
    buf_free(&b);
}

Test(jscan, int64_parsing)
{
    int64_t v;
    struct {
        const char *s;
        int rc;
        int64_t v;
    } cases[] = {
        {"0", 0, 0},
        {"42", 0, 42},
        {"-17", 0, -17},
        {"3.99", 0, 3},
        {"-3.99", 0, -3},
        {"1e3", 0, 1000},
        {"1.5E1", 0, 15},
        {"25e-1", 0, 2},
        {"1e-400", 0, 0},
        {"0e999999999", 0, 0},
        {"0.0001e4", 0, 1},
        {"9223372036854775807", 0, INT64_MAX},
        {"-9223372036854775808", 0, INT64_MIN},
        {"9223372036854775808", -ERANGE, 0},
        {"1e19", -ERANGE, 0},
        {"1e999999999", -ERANGE, 0},
        {" 7 ", 0, 7},
        {"\"7\"", -EINVAL, 0},
        {"07", -EINVAL, 0},
        {"", -EINVAL, 0},
        {"1x", -EINVAL, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        v = 12345;
        int rc = jscan_int64(cases[i].s, strlen(cases[i].s), &v);
        cr_expect_eq(rc, cases[i].rc, "%s: rc %d", cases[i].s, rc);
        if (rc == 0) cr_expect_eq(v, cases[i].v, "%s: %lld", cases[i].s, (long long)v);
    }
}

Test(jscan, truthiness)
{
    const char *falsy[] = {"false", "null", "0", "-0", "0.0", "0e10", "\"\"", " false ", "1e-400"};
    const char *truthy[] = {"true", "1", "-0.1", "\"0\"", "\"false\"", "{}", "[]", "1e-5"};
    for (size_t i = 0; i < sizeof falsy / sizeof *falsy; i++)
        cr_expect(!jscan_truthy(falsy[i], strlen(falsy[i])), "%s should be falsy", falsy[i]);
    for (size_t i = 0; i < sizeof truthy / sizeof *truthy; i++)
        cr_expect(jscan_truthy(truthy[i], strlen(truthy[i])), "%s should be truthy", truthy[i]);
}

Test(jscan, has_type_at_any_depth)
{
    const char *s = "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\"},"
                    "{\"type\":\"image\",\"source\":{}}]}],\"thinking\":{\"type\":\"enabled\"}}";
    cr_expect(jscan_has_type(s, strlen(s), "image"));
    cr_expect(jscan_has_type(s, strlen(s), "enabled"));
    cr_expect(jscan_has_type(s, strlen(s), "text"));
    cr_expect(!jscan_has_type(s, strlen(s), "thinking"));
    cr_expect(!jscan_has_type(s, strlen(s), "user"));
    /* A value that merely contains the word, or a non-string type, does not count. */
    const char *t = "{\"x\":\"type\",\"y\":{\"type\":[\"image\"]},\"z\":\"image\"}";
    cr_expect(!jscan_has_type(t, strlen(t), "image"));
    /* Malformed input → false even if the member appears. */
    const char *m = "{\"type\":\"image\",";
    cr_expect(!jscan_has_type(m, strlen(m), "image"));
    const char *esc = "[{\"t\\u0079pe\":\"im\\u0061ge\"}]";
    cr_expect(jscan_has_type(esc, strlen(esc), "image"));
}

Test(jscan, huge_inputs)
{
    /* A ~4 MB body with a long string and many members scans in one pass. */
    size_t big = 4u << 20;
    buf_t b;
    buf_init(&b, 0);
    buf_puts(&b, "{\"pad\":\"");
    buf_reserve(&b, big);
    memset(b.data + b.len, 'x', big);
    b.len += big;
    buf_puts(&b, "\",\"list\":[");
    for (int i = 0; i < 100000; i++)
        buf_printf(&b, "%s{\"type\":\"text\",\"n\":%d}", i ? "," : "", i);
    buf_puts(&b, "],\"model\":\"m\"}");
    cr_assert_eq(jscan_validate(b.data, b.len), 0);
    const char *v;
    size_t n;
    cr_assert_eq(jscan_get(b.data, b.len, "model", &v, &n), 0);
    cr_expect(n == 3 && memcmp(v, "\"m\"", 3) == 0);
    cr_expect(jscan_has_type(b.data, b.len, "text"));
    cr_expect(!jscan_has_type(b.data, b.len, "image"));
    /* Truncated anywhere → malformed. */
    cr_expect_eq(jscan_get(b.data, b.len - 1, "model", &v, &n), -EINVAL);
    buf_free(&b);
}

Test(jscan, get_many_one_pass)
{
    const char *s =
        "{\"model\":\"m1\",\"stream\":true,\"x\":{\"model\":\"inner\"},\"model\":\"m2\"}";
    const char *keys[] = {"model", "stream", "absent"};
    const char *v[3];
    size_t n[3];
    cr_assert_eq(jscan_get_many(s, strlen(s), keys, 3, v, n), 0);
    cr_expect(n[0] == 4 && memcmp(v[0], "\"m2\"", 4) == 0);
    cr_expect(n[1] == 4 && memcmp(v[1], "true", 4) == 0);
    cr_expect_null(v[2]);
    cr_expect_eq(n[2], 0);
    cr_expect_eq(jscan_get_many("{\"model\":1", 10, keys, 3, v, n), -EINVAL);
    cr_expect_null(v[0]);
}
