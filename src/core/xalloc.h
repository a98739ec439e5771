/* xalloc — allocation that never returns NULL: out of memory aborts (DESIGN.md). */
#ifndef MAXPOOL_CORE_XALLOC_H
#define MAXPOOL_CORE_XALLOC_H

#include <stddef.h>

/* Returns n bytes (uninitialised); aborts with a message when memory is exhausted. */
void *xmalloc(size_t n);
/* Returns n*size zeroed bytes; aborts on overflow or exhaustion. */
void *xcalloc(size_t n, size_t size);
/* Resizes p to n bytes; aborts on exhaustion. */
void *xrealloc(void *p, size_t n);
/* Returns a heap copy of s (caller frees). */
char *xstrdup(const char *s);
/* Returns a heap copy of the first n bytes of s, NUL-terminated (caller frees). */
char *xstrndup(const char *s, size_t n);
/* Returns a heap string formatted like printf (caller frees). */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
