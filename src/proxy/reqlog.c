#include "proxy/reqlog.h"
#include "core/clock.h"
#include "core/fileio.h"
#include "core/xalloc.h"

#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static void headers(buf_t *b, const http_header_t *h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *v = h[i].value;
        if (strcasecmp(h[i].name, "x-api-key") == 0)
            buf_printf(b, "  %s: %.15s...\n", h[i].name, v);
        else if (strcasecmp(h[i].name, "authorization") == 0)
            buf_printf(b, "  %s: %.20s...\n", h[i].name, v);
        else
            buf_printf(b, "  %s: %s\n", h[i].name, v);
    }
}

/* Pretty JSON when the bytes parse, else the first `cap` bytes under a size title. */
static void body_section(buf_t *b, const char *title, const char *p, size_t n, size_t cap)
{
    if (n == 0) {
        buf_printf(b, "\n=== %s ===\n(empty)\n", title);
        return;
    }
    json_t *j = json_loadb(p, n, 0, NULL);
    if (j) {
        char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        buf_printf(b, "\n=== %s ===\n%s\n", title, s);
        free(s);
        json_decref(j);
        return;
    }
    buf_printf(b, "\n=== %s (%zu bytes) ===\n", title, n);
    buf_append(b, p, n < cap ? n : cap);
    buf_puts(b, "\n");
}

void reqlog_request(reqlog_t *lg, const char *account, int retry, const char *method,
                    const char *url, const http_header_t *h, size_t n, const char *body,
                    size_t body_len)
{
    buf_reset(&lg->text);
    buf_reset(&lg->stream);
    lg->stream_total = 0;
    buf_printf(&lg->text, "=== REQUEST (account: %s, retry: %d) ===\n%s %s\n", account, retry,
               method, url);
    headers(&lg->text, h, n);
    body_section(&lg->text, "REQUEST BODY", body, body_len, 4096);
}

void reqlog_response(reqlog_t *lg, int status, const http_header_t *h, size_t n)
{
    lg->status = status;
    buf_printf(&lg->text, "\n=== RESPONSE %d ===\n", status);
    headers(&lg->text, h, n);
}

void reqlog_body(reqlog_t *lg, const char *data, size_t n)
{
    lg->stream_total += n;
    if (lg->stream.len < REQLOG_STREAM_CAP) {
        size_t room = REQLOG_STREAM_CAP - lg->stream.len;
        buf_append(&lg->stream, data, n < room ? n : room);
    }
}

void reqlog_error(reqlog_t *lg, const char *title, const char *detail)
{
    buf_printf(&lg->text, "\n=== %s ===\n%s\n", title, detail ? detail : "");
}

typedef struct job {
    uv_work_t work;
    char *path;
    char *text;
    size_t len;
} job_t;

static void job_run(uv_work_t *w)
{
    job_t *j = w->data;
    int fd = open(j->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return;
    size_t off = 0;
    while (off < j->len) {
        ssize_t n = write(fd, j->text + off, j->len - off);
        if (n <= 0) break;
        off += (size_t)n;
    }
    close(fd);
}

static void job_done(uv_work_t *w, int status)
{
    job_t *j = w->data;
    free(j->path);
    free(j->text);
    free(j);
}

void reqlog_flush(reqlog_t *lg, uv_loop_t *loop, const char *dir, uint64_t id, bool streamed)
{
    if (streamed) {
        buf_printf(&lg->text, "\n=== RESPONSE BODY (streamed) ===\n");
        buf_append(&lg->text, lg->stream.data ? lg->stream.data : "", lg->stream.len);
        if (lg->stream_total > lg->stream.len)
            buf_printf(&lg->text, "\n… (%zu more bytes not kept)\n",
                       lg->stream_total - lg->stream.len);
    } else {
        body_section(&lg->text, "RESPONSE BODY", lg->stream.data ? lg->stream.data : "",
                     lg->stream.len, 8192);
    }
    int64_t now = clock_now_ms();
    time_t secs = (time_t)(now / 1000);
    struct tm tm;
    localtime_r(&secs, &tm);
    job_t *j = xcalloc(1, sizeof *j);
    j->path = xasprintf("%s/%04d%02d%02d_%02d%02d%02d.%03d_%05llu.log", dir, tm.tm_year + 1900,
                        tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                        (int)(now % 1000), (unsigned long long)id);
    j->text = buf_steal(&lg->text, &j->len);
    j->work.data = j;
    buf_reset(&lg->stream);
    uv_queue_work(loop, &j->work, job_run, job_done);
}

void reqlog_free(reqlog_t *lg)
{
    buf_free(&lg->text);
    buf_free(&lg->stream);
}
