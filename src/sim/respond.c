#include "sim/respond.h"

#include "core/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THINKING_TEXT "The user greeted me. A short, friendly answer will do."
/* Opaque to clients; real signatures are base64 too. */
#define SIGNATURE "EqQBCkgIBRABGAIiQHNpbS1zaWduYXR1cmUtbm90LXJlYWwtbWF4cG9vbC1zaW0tc2lnbmF0dXJl"

struct sim_respond {
    sim_respond_cfg_t cfg;
    int64_t output_tokens;
    buf_t model_json; /* cfg.model as a JSON literal, empty when echoing */
    buf_t blocks;     /* SSE: content_block_start … content_block_stop, text only */
    buf_t blocks_th;  /* SSE: the same with a thinking block first */
    buf_t content;    /* JSON: the content array, text only */
    buf_t content_th; /* JSON: with the thinking block */
};

void sim_respond_cfg_defaults(sim_respond_cfg_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->text = xstrdup(SIM_DEFAULT_TEXT);
    cfg->deltas = SIM_DEFAULT_DELTAS;
}

void sim_respond_cfg_clear(sim_respond_cfg_t *cfg)
{
    free(cfg->text);
    free(cfg->model);
    cfg->text = cfg->model = NULL;
}

void sim_json_str(buf_t *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    buf_reserve(out, n + 2);
    buf_append(out, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        buf_append(out, s + run, i - run);
        run = i + 1;
        char e[6] = {'\\', 0};
        size_t el = 2;
        switch (c) {
        case '"':
            e[1] = '"';
            break;
        case '\\':
            e[1] = '\\';
            break;
        case '\n':
            e[1] = 'n';
            break;
        case '\r':
            e[1] = 'r';
            break;
        case '\t':
            e[1] = 't';
            break;
        default:
            e[1] = 'u';
            memcpy(e + 2, "00", 2);
            buf_append(out, e, 4);
            e[0] = hex[c >> 4];
            e[1] = hex[c & 15];
            el = 2;
            break;
        }
        buf_append(out, e, el);
    }
    buf_append(out, s + run, n - run);
    buf_append(out, "\"", 1);
}

/* Appends one SSE event whose data is a JSON object given as pieces. */
static void event_start(buf_t *b, const char *name)
{
    buf_puts(b, "event: ");
    buf_puts(b, name);
    buf_puts(b, "\ndata: ");
}

/* Splits text into n pieces on UTF-8 boundaries; piece i is text[cut[i]..cut[i+1]). */
static size_t cut_at(const char *text, size_t len, int64_t i, int64_t n)
{
    size_t c = (size_t)((unsigned long long)len * (unsigned long long)i / (unsigned long long)n);
    while (c < len && ((unsigned char)text[c] & 0xC0) == 0x80)
        c++;
    return c;
}

static void build_text_block(sim_respond_t *r, buf_t *b, int index, bool with_ping)
{
    const char *t = r->cfg.text;
    size_t len = strlen(t);
    event_start(b, "content_block_start");
    buf_printf(b,
               "{\"type\":\"content_block_start\",\"index\":%d,\"content_block\":{\"type\":"
               "\"text\",\"text\":\"\"}}\n\n",
               index);
    if (with_ping) buf_puts(b, "event: ping\ndata: {\"type\": \"ping\"}\n\n");
    for (int64_t i = 0; i < r->cfg.deltas; i++) {
        size_t a = cut_at(t, len, i, r->cfg.deltas), z = cut_at(t, len, i + 1, r->cfg.deltas);
        event_start(b, "content_block_delta");
        buf_printf(b,
                   "{\"type\":\"content_block_delta\",\"index\":%d,\"delta\":{\"type\":"
                   "\"text_delta\",\"text\":",
                   index);
        sim_json_str(b, t + a, z - a);
        buf_puts(b, "}}\n\n");
    }
    event_start(b, "content_block_stop");
    buf_printf(b, "{\"type\":\"content_block_stop\",\"index\":%d}\n\n", index);
}

static void build_thinking_block(buf_t *b)
{
    static const char th[] = THINKING_TEXT;
    size_t len = sizeof th - 1, half = len / 2;
    event_start(b, "content_block_start");
    buf_puts(b, "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":"
                "\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}\n\n");
    buf_puts(b, "event: ping\ndata: {\"type\": \"ping\"}\n\n");
    for (int i = 0; i < 2; i++) {
        event_start(b, "content_block_delta");
        buf_puts(b, "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                    "\"thinking_delta\",\"thinking\":");
        sim_json_str(b, th + (i ? half : 0), i ? len - half : half);
        buf_puts(b, "}}\n\n");
    }
    event_start(b, "content_block_delta");
    buf_puts(b, "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                "\"signature_delta\",\"signature\":\"" SIGNATURE "\"}}\n\n");
    event_start(b, "content_block_stop");
    buf_puts(b, "{\"type\":\"content_block_stop\",\"index\":0}\n\n");
}

sim_respond_t *sim_respond_new(const sim_respond_cfg_t *cfg)
{
    sim_respond_t *r = xcalloc(1, sizeof *r);
    r->cfg = *cfg;
    r->cfg.text = xstrdup(cfg->text ? cfg->text : SIM_DEFAULT_TEXT);
    r->cfg.model = cfg->model ? xstrdup(cfg->model) : NULL;
    if (r->cfg.deltas < 0) r->cfg.deltas = 0;
    if (r->cfg.deltas > SIM_MAX_DELTAS) r->cfg.deltas = SIM_MAX_DELTAS;
    r->output_tokens = r->cfg.deltas * 3;
    buf_init(&r->model_json, 0);
    buf_init(&r->blocks, 0);
    buf_init(&r->blocks_th, 0);
    buf_init(&r->content, 0);
    buf_init(&r->content_th, 0);
    if (r->cfg.model) sim_json_str(&r->model_json, r->cfg.model, strlen(r->cfg.model));
    build_text_block(r, &r->blocks, 0, true);
    build_thinking_block(&r->blocks_th);
    build_text_block(r, &r->blocks_th, 1, false);

    buf_puts(&r->content, "[{\"type\":\"text\",\"text\":");
    sim_json_str(&r->content, r->cfg.text, strlen(r->cfg.text));
    buf_puts(&r->content, "}]");
    buf_puts(&r->content_th, "[{\"type\":\"thinking\",\"thinking\":");
    sim_json_str(&r->content_th, THINKING_TEXT, strlen(THINKING_TEXT));
    buf_puts(&r->content_th, ",\"signature\":\"" SIGNATURE "\"},");
    buf_append(&r->content_th, r->content.data + 1, r->content.len - 1);
    return r;
}

void sim_respond_free(sim_respond_t *r)
{
    if (!r) return;
    sim_respond_cfg_clear(&r->cfg);
    buf_free(&r->model_json);
    buf_free(&r->blocks);
    buf_free(&r->blocks_th);
    buf_free(&r->content);
    buf_free(&r->content_th);
    free(r);
}

const sim_respond_cfg_t *sim_respond_cfg(const sim_respond_t *r)
{
    return &r->cfg;
}

int64_t sim_respond_output_tokens(const sim_respond_t *r)
{
    return r->output_tokens;
}

int64_t sim_respond_input_tokens(size_t body_bytes)
{
    int64_t t = (int64_t)((body_bytes + 3) / 4);
    return t < 1 ? 1 : t;
}

static void append_model(const sim_respond_t *r, const sim_msg_t *m, buf_t *out)
{
    if (r->model_json.len)
        buf_append(out, r->model_json.data, r->model_json.len);
    else if (m->model_json && m->model_len)
        buf_append(out, m->model_json, m->model_len);
    else
        buf_puts(out, "\"claude-sim\"");
}

void sim_respond_sse(const sim_respond_t *r, const sim_msg_t *m, buf_t *out)
{
    const buf_t *blocks = m->thinking ? &r->blocks_th : &r->blocks;
    buf_reserve(out, blocks->len + 700);
    buf_printf(out,
               "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":"
               "\"msg_sim_%llu\",\"type\":\"message\",\"role\":\"assistant\",\"model\":",
               (unsigned long long)m->seq);
    append_model(r, m, out);
    buf_printf(out,
               ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{"
               "\"input_tokens\":%lld,\"cache_creation_input_tokens\":0,"
               "\"cache_read_input_tokens\":0,\"output_tokens\":1}}}\n\n",
               (long long)m->input_tokens);
    buf_append(out, blocks->data, blocks->len);
    buf_printf(out,
               "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{"
               "\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{"
               "\"output_tokens\":%lld}}\n\n"
               "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
               (long long)r->output_tokens);
}

void sim_respond_message(const sim_respond_t *r, const sim_msg_t *m, buf_t *out)
{
    const buf_t *content = m->thinking ? &r->content_th : &r->content;
    buf_printf(out,
               "{\"id\":\"msg_sim_%llu\",\"type\":\"message\",\"role\":\"assistant\","
               "\"model\":",
               (unsigned long long)m->seq);
    append_model(r, m, out);
    buf_puts(out, ",\"content\":");
    buf_append(out, content->data, content->len);
    buf_printf(out,
               ",\"stop_reason\":\"end_turn\",\"stop_sequence\":null,\"usage\":{"
               "\"input_tokens\":%lld,\"cache_creation_input_tokens\":0,"
               "\"cache_read_input_tokens\":0,\"output_tokens\":%lld}}",
               (long long)m->input_tokens, (long long)r->output_tokens);
}

void sim_respond_error(buf_t *out, const char *type, const char *message)
{
    buf_puts(out, "{\"type\":\"error\",\"error\":{\"type\":");
    sim_json_str(out, type, strlen(type));
    buf_puts(out, ",\"message\":");
    sim_json_str(out, message, strlen(message));
    buf_puts(out, "}}");
}

size_t sim_sse_event_end(const char *s, size_t len, size_t from)
{
    for (size_t i = from; i + 1 < len; i++)
        if (s[i] == '\n' && s[i + 1] == '\n') return i + 2;
    return len;
}
