/* proxy/headers — which headers cross the proxy in each direction (§3.5, §3.7, Part A6,
 * A11). Pure functions over header arrays; the strings stay owned by their sources except
 * those written into the caller's store. */
#ifndef MAXPOOL_PROXY_HEADERS_H
#define MAXPOOL_PROXY_HEADERS_H

#include <stddef.h>

#include "core/buf.h"
#include "http/server.h"
#include "sched/account.h"

/* Builds the upstream request headers for account a from the client's: hop-by-hop headers
 * (and any named in Connection), every x-maxpool-* and x-teamclaude-*, x-api-key,
 * authorization, content-length, accept-encoding, expect and host are dropped, anthropic-beta too
 * when a->strip_beta; then the account's credential is added (x-api-key, or Authorization:
 * Bearer). out must hold n + 1 entries; the credential line's strings live in *store (the
 * caller frees it after the request). Returns the number of headers written. */
size_t proxy_headers_upstream(const http_header_t *in, size_t n, const account_t *a,
                              http_header_t *out, buf_t *store);
/* Filters upstream response headers for the client: drops transfer-encoding, connection,
 * keep-alive, content-encoding and content-length (the proxy re-frames the body). out must
 * hold n entries. Returns the number written. */
size_t proxy_headers_downstream(const http_header_t *in, size_t n, http_header_t *out);
/* True for header names that never cross a hop (RFC 9110 §7.6.1). */
int proxy_header_is_hop(const char *name);

#endif
