/* The bytes of simulated answers: SSE event order, usage consistent with the quota charge,
 * thinking blocks, JSON messages, error bodies. */
#include "sim/respond.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

typedef struct {
    char name[64];
    json_t *data;
} ev_t;

/* Splits SSE text into events, checking each is `event: X\ndata: {json}\n\n`. */
static size_t parse_sse(const char *s, size_t len, ev_t *ev, size_t max)
{
    size_t n = 0, pos = 0;
    while (pos < len) {
        size_t end = sim_sse_event_end(s, len, pos);
        cr_assert(end - pos > 2 && s[end - 1] == '\n' && s[end - 2] == '\n', "event unterminated");
        cr_assert_lt(n, max);
        const char *nl = memchr(s + pos, '\n', end - pos);
        cr_assert(strncmp(s + pos, "event: ", 7) == 0);
        size_t nlen = (size_t)(nl - (s + pos)) - 7;
        memcpy(ev[n].name, s + pos + 7, nlen);
        ev[n].name[nlen] = 0;
        cr_assert(strncmp(nl + 1, "data: ", 6) == 0);
        json_error_t je;
        ev[n].data = json_loadb(nl + 7, (size_t)(s + end - 2 - (nl + 7)), 0, &je);
        cr_assert_not_null(ev[n].data, "bad JSON in %s: %s", ev[n].name, je.text);
        cr_assert_str_eq(json_string_value(json_object_get(ev[n].data, "type")), ev[n].name);
        n++;
        pos = end;
    }
    return n;
}

static sim_respond_t *make(const char *text, int deltas, const char *model)
{
    sim_respond_cfg_t c;
    sim_respond_cfg_defaults(&c);
    free(c.text);
    c.text = strdup(text);
    c.deltas = deltas;
    c.model = model ? strdup(model) : NULL;
    sim_respond_t *r = sim_respond_new(&c);
    sim_respond_cfg_clear(&c);
    return r;
}

Test(sim_respond, sse_order_and_usage)
{
    sim_respond_t *r = make("Hello from maxpool sim.", 20, NULL);
    sim_msg_t m = {
        .seq = 7, .model_json = "\"claude-sonnet-4-5\"", .model_len = 19, .input_tokens = 25};
    buf_t b;
    buf_init(&b, 0);
    sim_respond_sse(r, &m, &b);
    ev_t ev[64];
    size_t n = parse_sse(b.data, b.len, ev, 64);
    cr_assert_eq(n, 3 + 20 + 3);
    cr_assert_str_eq(ev[0].name, "message_start");
    json_t *msg = json_object_get(ev[0].data, "message");
    cr_assert_str_eq(json_string_value(json_object_get(msg, "id")), "msg_sim_7");
    cr_assert_str_eq(json_string_value(json_object_get(msg, "model")), "claude-sonnet-4-5");
    json_t *u = json_object_get(msg, "usage");
    cr_assert_eq(json_integer_value(json_object_get(u, "input_tokens")), 25);
    cr_assert_eq(json_integer_value(json_object_get(u, "output_tokens")), 1);
    cr_assert_eq(json_integer_value(json_object_get(u, "cache_read_input_tokens")), 0);
    cr_assert_eq(json_integer_value(json_object_get(u, "cache_creation_input_tokens")), 0);
    cr_assert_str_eq(ev[1].name, "content_block_start");
    cr_assert_str_eq(ev[2].name, "ping");
    char text[256] = "";
    for (size_t i = 3; i < 23; i++) {
        cr_assert_str_eq(ev[i].name, "content_block_delta");
        json_t *d = json_object_get(ev[i].data, "delta");
        cr_assert_str_eq(json_string_value(json_object_get(d, "type")), "text_delta");
        strncat(text, json_string_value(json_object_get(d, "text")), 255 - strlen(text));
    }
    cr_assert_str_eq(text, "Hello from maxpool sim.");
    cr_assert_str_eq(ev[23].name, "content_block_stop");
    cr_assert_str_eq(ev[24].name, "message_delta");
    json_t *md = ev[24].data;
    cr_assert_str_eq(
        json_string_value(json_object_get(json_object_get(md, "delta"), "stop_reason")),
        "end_turn");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(md, "usage"), "output_tokens")),
                 60);
    cr_assert_eq(sim_respond_output_tokens(r), 60);
    cr_assert_str_eq(ev[25].name, "message_stop");
    for (size_t i = 0; i < n; i++)
        json_decref(ev[i].data);
    buf_free(&b);
    sim_respond_free(r);
}

Test(sim_respond, thinking_block_first)
{
    sim_respond_t *r = make("Hi", 3, "claude-fixed");
    sim_msg_t m = {
        .seq = 1, .model_json = "\"x\"", .model_len = 3, .thinking = true, .input_tokens = 1};
    buf_t b;
    buf_init(&b, 0);
    sim_respond_sse(r, &m, &b);
    ev_t ev[64];
    size_t n = parse_sse(b.data, b.len, ev, 64);
    const char *want[] = {"message_start",       "content_block_start", "ping",
                          "content_block_delta", "content_block_delta", "content_block_delta",
                          "content_block_stop",  "content_block_start", "content_block_delta",
                          "content_block_delta", "content_block_delta", "content_block_stop",
                          "message_delta",       "message_stop"};
    cr_assert_eq(n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < n; i++)
        cr_assert_str_eq(ev[i].name, want[i], "event %zu", i);
    cr_assert_str_eq(
        json_string_value(json_object_get(json_object_get(ev[0].data, "message"), "model")),
        "claude-fixed");
    json_t *cb = json_object_get(ev[1].data, "content_block");
    cr_assert_str_eq(json_string_value(json_object_get(cb, "type")), "thinking");
    cr_assert_str_eq(
        json_string_value(json_object_get(json_object_get(ev[3].data, "delta"), "type")),
        "thinking_delta");
    json_t *sig = json_object_get(ev[5].data, "delta");
    cr_assert_str_eq(json_string_value(json_object_get(sig, "type")), "signature_delta");
    cr_assert_gt(strlen(json_string_value(json_object_get(sig, "signature"))), 10);
    cr_assert_eq(json_integer_value(json_object_get(ev[7].data, "index")), 1);
    cr_assert_eq(json_integer_value(json_object_get(ev[8].data, "index")), 1);
    cr_assert_eq(
        json_integer_value(json_object_get(json_object_get(ev[12].data, "usage"), "output_tokens")),
        9);
    for (size_t i = 0; i < n; i++)
        json_decref(ev[i].data);
    buf_free(&b);
    sim_respond_free(r);
}

Test(sim_respond, utf8_and_escapes_split_safely)
{
    const char *t = "h\xc3\xa9llo \"w\"\n\xe2\x82\xac!";
    sim_respond_t *r = make(t, 7, NULL);
    sim_msg_t m = {.seq = 2, .model_json = "\"m\"", .model_len = 3, .input_tokens = 3};
    buf_t b;
    buf_init(&b, 0);
    sim_respond_sse(r, &m, &b);
    ev_t ev[64];
    size_t n = parse_sse(b.data, b.len, ev, 64);
    char text[256] = "";
    for (size_t i = 3; i < 10; i++)
        strncat(text,
                json_string_value(json_object_get(json_object_get(ev[i].data, "delta"), "text")),
                255 - strlen(text));
    cr_assert_str_eq(text, t);
    for (size_t i = 0; i < n; i++)
        json_decref(ev[i].data);
    buf_free(&b);
    sim_respond_free(r);
}

Test(sim_respond, json_message_matches_stream_usage)
{
    sim_respond_t *r = make("Hello", 5, NULL);
    sim_msg_t m = {.seq = 3,
                   .model_json = "\"claude-haiku\"",
                   .model_len = 14,
                   .thinking = true,
                   .input_tokens = sim_respond_input_tokens(101)};
    cr_assert_eq(m.input_tokens, 26);
    cr_assert_eq(sim_respond_input_tokens(0), 1);
    buf_t b;
    buf_init(&b, 0);
    sim_respond_message(r, &m, &b);
    json_error_t je;
    json_t *j = json_loadb(b.data, b.len, 0, &je);
    cr_assert_not_null(j, "%s: %s", je.text, b.data);
    cr_assert_str_eq(json_string_value(json_object_get(j, "type")), "message");
    cr_assert_str_eq(json_string_value(json_object_get(j, "role")), "assistant");
    cr_assert_str_eq(json_string_value(json_object_get(j, "model")), "claude-haiku");
    cr_assert_str_eq(json_string_value(json_object_get(j, "stop_reason")), "end_turn");
    cr_assert(json_is_null(json_object_get(j, "stop_sequence")));
    json_t *c = json_object_get(j, "content");
    cr_assert_eq(json_array_size(c), 2);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(c, 0), "type")), "thinking");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(c, 1), "text")), "Hello");
    json_t *u = json_object_get(j, "usage");
    cr_assert_eq(json_integer_value(json_object_get(u, "input_tokens")), 26);
    cr_assert_eq(json_integer_value(json_object_get(u, "output_tokens")), 15);
    json_decref(j);
    buf_free(&b);
    sim_respond_free(r);
}

Test(sim_respond, error_body)
{
    buf_t b;
    buf_init(&b, 0);
    sim_respond_error(&b, "rate_limit_error", "a \"quoted\"\x01 message");
    cr_assert_str_eq(b.data, "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\","
                             "\"message\":\"a \\\"quoted\\\"\\u0001 message\"}}");
    buf_free(&b);
}

Test(sim_respond, zero_deltas)
{
    sim_respond_t *r = make("ignored", 0, NULL);
    sim_msg_t m = {.seq = 4, .model_json = "\"m\"", .model_len = 3, .input_tokens = 1};
    buf_t b;
    buf_init(&b, 0);
    sim_respond_sse(r, &m, &b);
    ev_t ev[16];
    size_t n = parse_sse(b.data, b.len, ev, 16);
    cr_assert_eq(n, 6);
    cr_assert_eq(sim_respond_output_tokens(r), 0);
    for (size_t i = 0; i < n; i++)
        json_decref(ev[i].data);
    buf_free(&b);
    sim_respond_free(r);
}
