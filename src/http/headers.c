#include "http/headers.h"

#include <string.h>

int http_headers_pack(buf_t *b, const char *name, size_t nlen, const char *value, size_t vlen)
{
    int rc = buf_reserve(b, nlen + vlen + 2);
    if (rc) return rc;
    char *d = b->data + b->len;
    memcpy(d, name, nlen);
    d[nlen] = '\0';
    memcpy(d + nlen + 1, value, vlen);
    d[nlen + 1 + vlen] = '\0';
    b->len += nlen + vlen + 2;
    b->data[b->len] = '\0'; /* as buf_append leaves it */
    return 0;
}

void http_headers_unpack(const buf_t *b, size_t n, http_header_t *out)
{
    const char *s = b->data;
    for (size_t i = 0; i < n; i++) {
        out[i].name = s;
        s += strlen(s) + 1;
        out[i].value = s;
        s += strlen(s) + 1;
    }
}
