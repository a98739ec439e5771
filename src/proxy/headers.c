#include "proxy/headers.h"

#include <string.h>
#include <strings.h>

static const char *const HOP[] = {
    "host",    "connection",          "keep-alive",         "transfer-encoding", "te", "trailer",
    "upgrade", "proxy-authorization", "proxy-authenticate", "proxy-connection",  NULL};

/* Case-insensitive equality with a lower-case name. The first letters are compared before
 * calling strcasecmp: most header names differ there, and these checks run for every header
 * of every request and response. */
static int name_is(const char *name, const char *lower)
{
    return (name[0] | 0x20) == lower[0] && strcasecmp(name, lower) == 0;
}

int proxy_header_is_hop(const char *name)
{
    for (int i = 0; HOP[i]; i++)
        if (name_is(name, HOP[i])) return 1;
    return 0;
}

/* True if `name` is listed in the client's Connection header (hop-by-hop by nomination). */
static int named_in_connection(const http_header_t *in, size_t n, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < n; i++) {
        if (!name_is(in[i].name, "connection")) continue;
        const char *p = in[i].value;
        while (*p) {
            while (*p == ' ' || *p == ',' || *p == '\t')
                p++;
            size_t t = strcspn(p, ", \t");
            if (t == len && strncasecmp(p, name, len) == 0) return 1;
            p += t;
        }
    }
    return 0;
}

size_t proxy_headers_upstream(const http_header_t *in, size_t n, const account_t *a,
                              http_header_t *out, buf_t *store)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *nm = in[i].name;
        if (proxy_header_is_hop(nm) || named_in_connection(in, n, nm)) continue;
        if ((nm[0] | 0x20) == 'x' &&
            (strncasecmp(nm, "x-maxpool-", 10) == 0 || strncasecmp(nm, "x-teamclaude-", 13) == 0))
            continue;
        /* expect: our server already answered "100-continue"; the body is complete. */
        if (name_is(nm, "x-api-key") || name_is(nm, "authorization") ||
            name_is(nm, "content-length") || name_is(nm, "accept-encoding") ||
            name_is(nm, "expect"))
            continue;
        if (a->strip_beta && name_is(nm, "anthropic-beta")) continue;
        out[k++] = in[i];
    }
    buf_reset(store);
    if (a->bearer) {
        buf_printf(store, "Bearer %s", a->credential);
        out[k].name = "Authorization";
    } else {
        buf_puts(store, a->credential);
        out[k].name = "x-api-key";
    }
    out[k].value = store->data;
    return k + 1;
}

size_t proxy_headers_downstream(const http_header_t *in, size_t n, http_header_t *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *nm = in[i].name;
        if (proxy_header_is_hop(nm) || name_is(nm, "content-encoding") ||
            name_is(nm, "content-length"))
            continue;
        out[k++] = in[i];
    }
    return k;
}
