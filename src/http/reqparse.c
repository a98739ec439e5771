/* http/reqparse — http-parser with limits, one request at a time (see reqparse.h). */
#include "http/reqparse.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/xalloc.h"

#define RP_DEFAULT_HEAD (64u * 1024)
#define RP_DEFAULT_BODY (32u * 1024 * 1024)
/* Buffers bigger than this are released between requests rather than kept for reuse, so
 * one large upload does not pin memory for the life of a keep-alive connection. */
#define RP_KEEP_BYTES  (64u * 1024)
#define RP_RESERVE_MAX (1u << 20)

enum { LAST_NONE, LAST_URL, LAST_FIELD, LAST_VALUE };

static void rp_fail(reqparse_t *rp, int status, const char *why)
{
    if (rp->state == REQPARSE_ERROR) return;
    rp->state = REQPARSE_ERROR;
    rp->status = status;
    rp->error = why;
}

/* Ends the string being collected (URL, name or value) with a NUL. */
static int rp_terminate(reqparse_t *rp)
{
    if (rp->last == LAST_VALUE) {
        /* http-parser drops leading whitespace of a value; drop the trailing too. */
        size_t start = rp->offs[rp->noffs - 1].value;
        while (rp->strs.len > start &&
               (rp->strs.data[rp->strs.len - 1] == ' ' || rp->strs.data[rp->strs.len - 1] == '\t'))
            rp->strs.len--;
    }
    if (rp->last == LAST_FIELD) {
        /* A name without a value: http-parser only does this for an empty value. */
        if (buf_append(&rp->strs, "", 1)) return -1;
        rp->offs[rp->noffs - 1].value = rp->strs.len;
        rp->last = LAST_VALUE;
    }
    if (rp->last != LAST_NONE && buf_append(&rp->strs, "", 1)) return -1;
    return 0;
}

static int rp_collect(reqparse_t *rp, int kind, const char *at, size_t len)
{
    if (rp->last != kind) {
        if (rp_terminate(rp)) goto full;
        if (kind == LAST_FIELD) {
            if (rp->noffs == rp->offcap) {
                rp->offcap = rp->offcap ? rp->offcap * 2 : 16;
                rp->offs = xrealloc(rp->offs, rp->offcap * sizeof *rp->offs);
            }
            rp->offs[rp->noffs].name = rp->strs.len;
            rp->offs[rp->noffs].value = 0;
            rp->noffs++;
        } else if (kind == LAST_VALUE) {
            rp->offs[rp->noffs - 1].value = rp->strs.len;
        }
        rp->last = kind;
    }
    if (buf_append(&rp->strs, at, len)) goto full;
    return 0;
full:
    rp_fail(rp, 431, "request head too large");
    return -1;
}

static int on_message_begin(http_parser *p)
{
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    return rp_collect(p->data, LAST_URL, at, len);
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    reqparse_t *rp = p->data;
    if (rp->state != REQPARSE_HEAD) return 0; /* chunked trailers: ignored */
    return rp_collect(rp, LAST_FIELD, at, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    reqparse_t *rp = p->data;
    if (rp->state != REQPARSE_HEAD) return 0;
    return rp_collect(rp, LAST_VALUE, at, len);
}

static int on_headers_complete(http_parser *p)
{
    reqparse_t *rp = p->data;
    if (rp->last == LAST_NONE && rp_collect(rp, LAST_URL, "", 0)) return -1;
    if (rp_terminate(rp)) {
        rp_fail(rp, 431, "request head too large");
        return -1;
    }
    rp->last = LAST_NONE;
    /* path and query copies follow the target. */
    size_t tlen = strlen(rp->strs.data);
    /* Reserve first: the copies come from strs itself, which must not move under them. */
    if (buf_reserve(&rp->strs, tlen + 2)) goto full;
    const char *t = rp->strs.data;
    const char *q = memchr(t, '?', tlen);
    size_t plen = q ? (size_t)(q - t) : tlen;
    size_t path_off = rp->strs.len;
    if (buf_append(&rp->strs, t, plen) || buf_append(&rp->strs, "", 1)) goto full;
    size_t query_off = rp->strs.len;
    if (q && buf_append(&rp->strs, q + 1, tlen - plen - 1)) goto full;
    if (buf_append(&rp->strs, "", 1)) goto full;

    /* Pointers are made only now: strs may have moved while it grew. */
    char *base = rp->strs.data;
    rp->target = base;
    rp->path = base + path_off;
    rp->query = base + query_off;
    if (rp->noffs > rp->hdrcap) {
        rp->hdrcap = rp->offcap;
        rp->headers = xrealloc(rp->headers, rp->hdrcap * sizeof *rp->headers);
    }
    for (size_t i = 0; i < rp->noffs; i++) {
        rp->headers[i].name = base + rp->offs[i].name;
        rp->headers[i].value = base + rp->offs[i].value;
    }
    rp->nheaders = rp->noffs;
    rp->method = http_method_str((enum http_method)p->method);
    rp->keep_alive = http_should_keep_alive(p) != 0;
    /* An upgrade (or CONNECT) is not something this server speaks: answer this request
     * and close. */
    if (p->upgrade) rp->keep_alive = false;
    const char *expect = reqparse_header(rp, "expect");
    rp->expect_continue = expect && strcasecmp(expect, "100-continue") == 0;
    rp->content_length = -1;
    if ((p->flags & F_CONTENTLENGTH) && !(p->flags & F_CHUNKED)) {
        if (p->content_length > rp->max_body) {
            rp_fail(rp, 413, "request body too large");
            return -1;
        }
        rp->content_length = (int64_t)p->content_length;
        /* Reserve for the announced body so it rarely regrows while it streams in, but
         * not more than RP_RESERVE_MAX: an announcement costs the client nothing. */
        size_t want = (size_t)p->content_length;
        buf_reserve(&rp->body, want < RP_RESERVE_MAX ? want : RP_RESERVE_MAX);
    }
    rp->state = REQPARSE_BODY;
    return 0;
full:
    rp_fail(rp, 431, "request head too large");
    return -1;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    reqparse_t *rp = p->data;
    if (buf_append(&rp->body, at, len)) {
        rp_fail(rp, 413, "request body too large");
        return -1;
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    reqparse_t *rp = p->data;
    rp->state = REQPARSE_DONE;
    /* Stop here: the next pipelined request waits until the caller has answered this one. */
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings rp_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void rp_clear_request(reqparse_t *rp)
{
    rp->state = REQPARSE_HEAD;
    rp->status = 0;
    rp->error = NULL;
    rp->method = rp->target = rp->path = rp->query = NULL;
    rp->nheaders = 0;
    rp->keep_alive = false;
    rp->expect_continue = false;
    rp->content_length = -1;
    rp->head_bytes = 0;
    rp->noffs = 0;
    rp->last = LAST_NONE;
}

void reqparse_init(reqparse_t *rp, size_t max_head_bytes, size_t max_body_bytes)
{
    memset(rp, 0, sizeof *rp);
    rp->max_head = max_head_bytes ? max_head_bytes : RP_DEFAULT_HEAD;
    rp->max_body = max_body_bytes ? max_body_bytes : RP_DEFAULT_BODY;
    /* The target is stored twice (raw, then split into path and query). */
    buf_init(&rp->strs, 2 * rp->max_head + 64);
    buf_init(&rp->body, rp->max_body);
    /* http-parser has its own process-wide head cap (80 KiB by default); raise it when a
     * caller allows more, so our limit is the one that applies. */
    static uint32_t parser_cap = 80u * 1024;
    if (rp->max_head > parser_cap && rp->max_head < UINT32_MAX) {
        parser_cap = (uint32_t)rp->max_head;
        http_parser_set_max_header_size(parser_cap);
    }
    http_parser_init(&rp->parser, HTTP_REQUEST);
    rp->parser.data = rp;
    rp_clear_request(rp);
}

void reqparse_free(reqparse_t *rp)
{
    buf_free(&rp->strs);
    buf_free(&rp->body);
    free(rp->offs);
    free(rp->headers);
    rp->offs = NULL;
    rp->headers = NULL;
    rp->offcap = rp->hdrcap = 0;
}

size_t reqparse_feed(reqparse_t *rp, const char *data, size_t n)
{
    size_t used = 0;
    while (used < n && (rp->state == REQPARSE_HEAD || rp->state == REQPARSE_BODY)) {
        size_t chunk = n - used;
        bool in_head = rp->state == REQPARSE_HEAD;
        if (in_head) {
            /* Never hand the parser more head than the limit allows, so an endless head
             * is cut off at exactly max_head bytes. */
            size_t room = rp->max_head - rp->head_bytes;
            if (chunk > room) chunk = room;
        }
        size_t got = http_parser_execute(&rp->parser, &rp_settings, data + used, chunk);
        used += got;
        if (in_head) rp->head_bytes += got;
        enum http_errno e = HTTP_PARSER_ERRNO(&rp->parser);
        if (e == HPE_PAUSED) break; /* message complete */
        if (e != HPE_OK) {
            if (e == HPE_HEADER_OVERFLOW)
                rp_fail(rp, 431, "request head too large");
            else
                rp_fail(rp, 400, http_errno_description(e));
            break;
        }
        if (rp->state == REQPARSE_HEAD && rp->head_bytes >= rp->max_head) {
            rp_fail(rp, 431, "request head too large");
            break;
        }
        if (got < chunk) { /* should not happen without an error; do not spin */
            rp_fail(rp, 400, "parser stalled");
            break;
        }
    }
    return used;
}

void reqparse_next(reqparse_t *rp)
{
    if (rp->state == REQPARSE_ERROR) return;
    if (rp->body.cap > RP_KEEP_BYTES)
        buf_free(&rp->body);
    else
        buf_reset(&rp->body);
    if (rp->strs.cap > RP_KEEP_BYTES)
        buf_free(&rp->strs);
    else
        buf_reset(&rp->strs);
    rp_clear_request(rp);
    http_parser_pause(&rp->parser, 0);
}

bool reqparse_started(const reqparse_t *rp)
{
    return rp->state != REQPARSE_HEAD || rp->head_bytes > 0;
}

const char *reqparse_header(const reqparse_t *rp, const char *name)
{
    for (size_t i = 0; i < rp->nheaders; i++)
        if (strcasecmp(rp->headers[i].name, name) == 0) return rp->headers[i].value;
    return NULL;
}
