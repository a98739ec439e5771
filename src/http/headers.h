/* http/headers — a header list packed into one buffer as "name\0value\0" pairs: how a
 * response head is kept between the moment it arrives and the moment it is sent on (the
 * proxy's held heads, the token relay, the upstream client's head collection). */
#ifndef MAXPOOL_HTTP_HEADERS_H
#define MAXPOOL_HTTP_HEADERS_H

#include <stddef.h>

#include "core/buf.h"
#include "http/server.h"

/* Appends one header (name[0..nlen), value[0..vlen), copied) to b with one reservation.
 * Returns 0 or -ENOBUFS past b's limit (b unchanged). */
int http_headers_pack(buf_t *b, const char *name, size_t nlen, const char *value, size_t vlen);
/* Points out[0..n) at the first n headers packed in b; valid while b is unchanged. */
void http_headers_unpack(const buf_t *b, size_t n, http_header_t *out);

#endif
