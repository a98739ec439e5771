/* http/sse — incremental SSE parsing (see sse.h). */
#include "http/sse.h"

#include <errno.h>
#include <string.h>

#define SSE_DEFAULT_MAX (1u << 20)

static void sse_clear_event(sse_parser_t *p)
{
    buf_reset(&p->data);
    p->event_off = p->event_len = 0;
    p->nlines = p->ndata = 0;
}

void sse_init(sse_parser_t *p, size_t max_event_bytes)
{
    memset(p, 0, sizeof *p);
    buf_init(&p->raw, 0);
    buf_init(&p->data, 0);
    p->max_event = max_event_bytes ? max_event_bytes : SSE_DEFAULT_MAX;
}

void sse_free(sse_parser_t *p)
{
    buf_free(&p->raw);
    buf_free(&p->data);
}

void sse_reset(sse_parser_t *p)
{
    buf_reset(&p->raw);
    sse_clear_event(p);
    p->start = p->scan = p->lscan = 0;
    p->cr_pending = false;
    p->err = 0;
}

static void sse_line(sse_parser_t *p, const char *line, size_t len)
{
    p->nlines++;
    const char *colon = memchr(line, ':', len);
    if (colon == line) return; /* comment */
    size_t nlen = colon ? (size_t)(colon - line) : len;
    const char *val = colon ? colon + 1 : line + len;
    size_t vlen = (size_t)(line + len - val);
    if (vlen && *val == ' ') val++, vlen--;
    if (nlen == 4 && memcmp(line, "data", 4) == 0) {
        if (p->ndata++) buf_append(&p->data, "\n", 1);
        buf_append(&p->data, val, vlen);
    } else if (nlen == 5 && memcmp(line, "event", 5) == 0) {
        p->event_off = (size_t)(val - (p->raw.data + p->start));
        p->event_len = vlen;
    }
}

int sse_feed(sse_parser_t *p, const void *data, size_t n, sse_event_cb cb, void *ud)
{
    if (p->err) return p->err;
    if (n && buf_append(&p->raw, data, n)) return p->err = -ENOMEM;
    int rc = 0;
    size_t pos = p->scan;
    while (pos < p->raw.len) {
        const char *b = p->raw.data;
        if (p->cr_pending) {
            p->cr_pending = false;
            if (b[pos] == '\n') {
                pos++; /* the \n of a \r\n split across two feeds */
                p->lscan = pos;
                continue;
            }
        }
        size_t e = p->lscan > pos ? p->lscan : pos;
        while (e < p->raw.len && b[e] != '\n' && b[e] != '\r')
            e++;
        if (e == p->raw.len) {
            p->lscan = e;
            break; /* the line is not complete yet */
        }
        size_t next = e + 1;
        if (b[e] == '\r') {
            if (next < p->raw.len) {
                if (b[next] == '\n') next++;
            } else {
                p->cr_pending = true;
            }
        }
        if (e > pos) {
            sse_line(p, b + pos, e - pos);
        } else if (p->nlines) {
            /* A blank line ends the event. */
            size_t raw_len = next - p->start;
            if (raw_len > p->max_event) {
                p->scan = pos;
                return p->err = -EMSGSIZE;
            }
            sse_event_t ev = {
                .event = p->event_len ? b + p->start + p->event_off : "",
                .event_len = p->event_len,
                .data = p->data.len ? p->data.data : "",
                .data_len = p->data.len,
                .raw = b + p->start,
                .raw_len = raw_len,
            };
            p->start = next;
            p->lscan = next;
            p->scan = next;
            rc = cb ? cb(&ev, ud) : 0;
            sse_clear_event(p);
            if (rc) {
                pos = next;
                break;
            }
        }
        pos = next;
        p->lscan = pos;
    }
    p->scan = pos;
    /* Drop what was reported, once per feed rather than once per event. */
    if (p->start) {
        buf_consume(&p->raw, p->start);
        p->scan -= p->start;
        p->lscan = p->lscan > p->start ? p->lscan - p->start : 0;
        p->start = 0;
    }
    if (p->raw.len > p->max_event) return p->err = -EMSGSIZE;
    return rc;
}

bool sse_partial(const sse_parser_t *p)
{
    return p->nlines > 0 || p->raw.len > p->scan;
}

size_t sse_buffered(const sse_parser_t *p)
{
    return p->raw.len - p->start;
}

void sse_format(buf_t *out, const char *event, const char *data, size_t n)
{
    if (event) {
        buf_puts(out, "event: ");
        buf_puts(out, event);
        buf_append(out, "\n", 1);
    }
    const char *end = data + n;
    do {
        const char *nl = memchr(data, '\n', (size_t)(end - data));
        const char *le = nl ? nl : end;
        buf_puts(out, "data: ");
        buf_append(out, data, (size_t)(le - data));
        buf_append(out, "\n", 1);
        data = nl ? nl + 1 : end;
    } while (data < end);
    buf_append(out, "\n", 1);
}

static void json_escape(buf_t *b, const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            char e[2] = {'\\', (char)ch};
            buf_append(b, e, 2);
        } else if (ch < 0x20) {
            buf_printf(b, "\\u%04x", ch);
        } else {
            buf_append(b, s, 1);
        }
    }
}

void sse_format_error(buf_t *out, const char *type, const char *message)
{
    buf_puts(out, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"");
    json_escape(out, type);
    buf_puts(out, "\",\"message\":\"");
    json_escape(out, message);
    buf_puts(out, "\"}}\n\n");
}
