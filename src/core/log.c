#include "core/log.h"
#include "core/clock.h"
#include "core/xalloc.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define LOG_LINE_MAX 480

static bool console_on = true;
static int event_fd = -1;

static bool is_ident(unsigned char c)
{
    return isalnum(c) || c == '_' || c == '-';
}

/* Secret-bearing key names, compared lowercase with '_' and '-' removed. */
static const char *const SECRET_KEYS[] = {
    "accesstoken", "refreshtoken", "apikey",       "xapikey",
    "authtoken",   "clientsecret", "codeverifier", NULL,
};

static bool is_secret_key(const char *s, size_t n)
{
    char norm[32];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '_' || s[i] == '-') continue;
        if (k + 1 >= sizeof norm) return false;
        norm[k++] = (char)tolower((unsigned char)s[i]);
    }
    norm[k] = '\0';
    for (int i = 0; SECRET_KEYS[i]; i++)
        if (strcmp(norm, SECRET_KEYS[i]) == 0) return true;
    return false;
}

static bool is_value_char(unsigned char c)
{
    return c > ' ' && c != '"' && c != '\'' && c != ',' && c != '&' && c != ';' && c != '}' &&
           c != ')' && c != ']';
}

void log_redact(const char *s, size_t n, buf_t *out)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        bool word_start = i == 0 || !is_ident((unsigned char)s[i - 1]);
        /* sk-ant-… keys and tokens. */
        if (word_start && n - i >= 7 && memcmp(s + i, "sk-ant-", 7) == 0) {
            size_t j = i + 7;
            while (j < n && is_ident((unsigned char)s[j]))
                j++;
            if (j > i + 7) {
                buf_puts(out, "sk-ant-[redacted]");
                i = j;
                continue;
            }
        }
        /* Bearer <token>. */
        if (word_start && n - i >= 7 && strncasecmp(s + i, "bearer", 6) == 0 &&
            (s[i + 6] == ' ' || s[i + 6] == '\t')) {
            size_t j = i + 6;
            while (j < n && (s[j] == ' ' || s[j] == '\t'))
                j++;
            size_t v = j;
            while (j < n && is_value_char((unsigned char)s[j]))
                j++;
            /* Six characters: short enough for any real token, long enough to leave prose
             * ("the bearer of news") alone. */
            if (j - v >= 6) {
                buf_append(out, s + i, 6);
                buf_puts(out, " [redacted]");
                i = j;
                continue;
            }
        }
        /* key: value, "key":"value", key=value for secret-named keys. */
        if (word_start && is_ident(c)) {
            size_t j = i;
            while (j < n && is_ident((unsigned char)s[j]))
                j++;
            if (is_secret_key(s + i, j - i)) {
                size_t k = j;
                if (k < n && (s[k] == '"' || s[k] == '\'')) k++;
                while (k < n && (s[k] == ' ' || s[k] == '\t'))
                    k++;
                if (k < n && (s[k] == ':' || s[k] == '=')) {
                    k++;
                    while (k < n && (s[k] == ' ' || s[k] == '\t'))
                        k++;
                    if (k < n && (s[k] == '"' || s[k] == '\'')) k++;
                    size_t v = k;
                    while (k < n && is_value_char((unsigned char)s[k]))
                        k++;
                    if (k - v >= 8) {
                        buf_append(out, s + i, v - i);
                        buf_puts(out, "[redacted]");
                        i = k;
                        continue;
                    }
                }
            }
            buf_append(out, s + i, j - i);
            i = j;
            continue;
        }
        buf_append(out, s + i, 1);
        i++;
    }
}

char *log_redact_str(const char *s)
{
    buf_t b;
    buf_init(&b, 0);
    log_redact(s, strlen(s), &b);
    return buf_steal(&b, NULL);
}

void log_set_console(bool on)
{
    console_on = on;
}

int log_set_event_file(const char *path)
{
    if (event_fd >= 0) close(event_fd);
    event_fd = -1;
    if (!path) return 0;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    event_fd = fd;
    return 0;
}

/* Cuts a UTF-8 string to at most max bytes on a character boundary, adding "…". */
static void cap_utf8(buf_t *b, size_t max)
{
    if (b->len <= max) return;
    size_t cut = max - 3;
    while (cut > 0 && ((unsigned char)b->data[cut] & 0xC0) == 0x80)
        cut--;
    b->len = cut;
    buf_puts(b, "\xE2\x80\xA6");
}

void log_msg(const char *fmt, ...)
{
    buf_t raw, line;
    buf_init(&raw, 0);
    buf_init(&line, 0);
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&raw, fmt, ap);
    va_end(ap);
    for (size_t i = 0; i < raw.len; i++)
        if (raw.data[i] == '\n' || raw.data[i] == '\r') raw.data[i] = ' ';
    log_redact(raw.data ? raw.data : "", raw.len, &line);
    cap_utf8(&line, LOG_LINE_MAX);
    char ts[32];
    clock_iso8601(clock_now_ms(), ts, sizeof ts);
    if (console_on) fprintf(stderr, "[%.19s] %s\n", ts + 0, line.data ? line.data : "");
    if (event_fd >= 0) {
        buf_t rec;
        buf_init(&rec, 0);
        buf_printf(&rec, "%s %s\n", ts, line.data ? line.data : "");
        /* One write(2) under PIPE_BUF: concurrent appenders never interleave. */
        ssize_t w = write(event_fd, rec.data, rec.len);
        (void)w;
        buf_free(&rec);
    }
    buf_free(&raw);
    buf_free(&line);
}
