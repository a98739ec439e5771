#include "http/sse.h"

#include <errno.h>
#include <string.h>

void sse_init(sse_parser_t *p, size_t max_event)
{
    memset(p, 0, sizeof *p);
    p->max_event = max_event ? max_event : 1u << 20;
    buf_init(&p->pending, 0);
    buf_init(&p->data, 0);
    p->line_start = true;
}

void sse_free(sse_parser_t *p)
{
    buf_free(&p->pending);
    buf_free(&p->data);
}

/* Splits one complete event (raw[0..n)) into its fields and reports it. */
static void emit(sse_parser_t *p, const char *raw, size_t n, sse_event_cb cb, void *ud)
{
    sse_event_t ev = {.event = "", .raw = raw, .raw_len = n, .data = ""};
    size_t ndata = 0;
    const char *first_data = NULL;
    size_t first_len = 0;
    buf_reset(&p->data);
    size_t i = 0;
    /* Without a '\r' anywhere, a line ends at the next '\n': let memchr find it. */
    bool has_cr = memchr(raw, '\r', n) != NULL;
    while (i < n) {
        size_t s = i;
        if (!has_cr) {
            const char *nl = memchr(raw + i, '\n', n - i);
            i = nl ? (size_t)(nl - raw) : n;
        } else {
            while (i < n && raw[i] != '\n' && raw[i] != '\r')
                i++;
        }
        size_t e = i;
        if (i < n && raw[i] == '\r' && i + 1 < n && raw[i + 1] == '\n') i++;
        if (i < n) i++;
        if (e == s || raw[s] == ':') continue; /* blank line or comment */
        const char *colon = memchr(raw + s, ':', e - s);
        size_t nl = colon ? (size_t)(colon - (raw + s)) : e - s;
        const char *v = colon ? colon + 1 : raw + e;
        if (v < raw + e && *v == ' ') v++;
        size_t vl = (size_t)(raw + e - v);
        if (nl == 5 && memcmp(raw + s, "event", 5) == 0) {
            ev.event = v;
            ev.event_len = vl;
        } else if (nl == 4 && memcmp(raw + s, "data", 4) == 0) {
            if (ndata == 0) {
                first_data = v;
                first_len = vl;
            } else {
                if (ndata == 1) buf_append(&p->data, first_data, first_len);
                buf_append(&p->data, "\n", 1);
                buf_append(&p->data, v, vl);
            }
            ndata++;
        }
    }
    if (ndata == 1) {
        ev.data = first_data;
        ev.data_len = first_len;
    } else if (ndata > 1) {
        ev.data = p->data.data;
        ev.data_len = p->data.len;
    }
    cb(ud, &ev);
}

int sse_feed(sse_parser_t *p, const char *bytes, size_t n, sse_event_cb cb, void *ud)
{
    int rc = 0;
    if (n && p->skip_lf) {
        p->skip_lf = false;
        if (bytes[0] == '\n') {
            bytes++;
            n--;
        }
    }
    /* Streams use "\n" line ends in practice: without a '\r' in the bytes (and none just
     * before them) the blank line is found with memchr instead of byte by byte. */
    bool fast = !p->after_cr && memchr(bytes, '\r', n) == NULL;
    while (n > 0) {
        /* Scan the new bytes for a blank line without copying them first. */
        size_t i = 0;
        bool done = false;
        if (fast) {
            if (p->line_start && bytes[0] == '\n') {
                done = true;
                i = 1;
            }
            while (!done && i < n) {
                const char *nl = memchr(bytes + i, '\n', n - i);
                if (!nl) {
                    p->line_start = false;
                    i = n;
                    break;
                }
                i = (size_t)(nl - bytes) + 1;
                if (i == n) {
                    p->line_start = true;
                } else if (bytes[i] == '\n') {
                    done = true;
                    i++;
                }
            }
        }
        for (; !fast && i < n; i++) {
            char c = bytes[i];
            if (c == '\n' && p->after_cr) {
                /* second half of \r\n: the line already ended */
                p->after_cr = false;
                continue;
            }
            p->after_cr = c == '\r';
            if (c == '\n' || c == '\r') {
                if (p->line_start) {
                    done = true;
                    i++;
                    /* A "\r\n" blank line: swallow its '\n' now or at the next feed. */
                    if (c == '\r') {
                        if (i < n && bytes[i] == '\n')
                            i++;
                        else if (i == n)
                            p->skip_lf = true;
                        p->after_cr = false;
                    }
                    break;
                }
                p->line_start = true;
            } else {
                p->line_start = false;
            }
        }
        size_t take = i;
        if (!p->overflow) {
            if (p->pending.len + take > p->max_event) {
                p->overflow = true;
                buf_reset(&p->pending);
                rc = -ENOBUFS;
            } else if (done && p->pending.len == 0) {
                /* The common case: a whole event inside one chunk, parsed in place. */
                emit(p, bytes, take, cb, ud);
            } else {
                buf_append(&p->pending, bytes, take);
                if (done) emit(p, p->pending.data, p->pending.len, cb, ud);
            }
        }
        if (done) {
            buf_reset(&p->pending);
            p->overflow = false;
            p->line_start = true;
        }
        bytes += take;
        n -= take;
    }
    return rc;
}

bool sse_has_partial(const sse_parser_t *p)
{
    for (size_t i = 0; i < p->pending.len; i++) {
        char c = p->pending.data[i];
        if (c != '\n' && c != '\r' && c != ' ' && c != '\t') return true;
    }
    return p->overflow;
}
