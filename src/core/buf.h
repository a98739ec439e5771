/* buf — a growable byte buffer with a cap, for request heads, JSON and log lines.
 *
 * Ownership: the buffer owns `data`; buf_free releases it. `data` is always
 * NUL-terminated (one spare byte beyond `len`) so text can be used as a C string.
 * A cap of 0 means unbounded; appends that would exceed the cap fail with -ENOBUFS
 * and leave the buffer unchanged. See docs/buffers.md. */
#ifndef MAXPOOL_CORE_BUF_H
#define MAXPOOL_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct buf {
    char *data;
    size_t len;
    size_t cap;   /* allocated bytes, excluding the NUL spare */
    size_t limit; /* 0 = unbounded */
} buf_t;

/* Initialises an empty buffer that may grow to `limit` bytes (0 = unbounded). */
void buf_init(buf_t *b, size_t limit);
/* Frees the storage and leaves the buffer empty and reusable. */
void buf_free(buf_t *b);
/* Empties the buffer, keeping its storage. */
void buf_reset(buf_t *b);
/* Ensures room for `extra` more bytes; returns 0 or -ENOBUFS past the limit. */
int buf_reserve(buf_t *b, size_t extra);
/* Appends n bytes; returns 0 or -ENOBUFS past the limit. */
int buf_append(buf_t *b, const void *p, size_t n);
/* Appends a C string; returns 0 or -ENOBUFS. */
int buf_puts(buf_t *b, const char *s);
/* Appends printf-formatted text; returns 0 or -ENOBUFS. */
int buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* va_list form of buf_printf. */
int buf_vprintf(buf_t *b, const char *fmt, va_list ap);
/* Drops the first n bytes (n <= len), moving the rest to the front. */
void buf_consume(buf_t *b, size_t n);
/* Hands the storage to the caller (NUL-terminated; free with free()) and empties b. */
char *buf_steal(buf_t *b, size_t *len_out);

#endif
