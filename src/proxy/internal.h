/* proxy/internal — the proxy object shared by the proxy/ files (not a public interface). */
#ifndef MAXPOOL_PROXY_INTERNAL_H
#define MAXPOOL_PROXY_INTERNAL_H

#include "http/server.h"
#include "http/upstream.h"
#include "proxy/proxy.h"

struct proxy {
    uv_loop_t *loop;
    proxy_settings_t s; /* strings owned (copied) */
    http_server_t *srv;
    upstream_t *up;
    account_t *accts;
    size_t naccts;
    size_t cursor;         /* rotation position */
    int current;           /* last selected account, -1 before the first */
    size_t buffered_bytes; /* request bodies held by requests in flight */
    size_t active;         /* proxied requests in flight */
    uint64_t next_id;
    bool draining;
    bool srv_closed; /* the listener and every client connection are closed */
    void (*on_drained)(void *ud);
    void *drained_ud;
    char worker[24]; /* x-maxpool-worker value */
    http_header_t common[1];
};

/* Handles a proxied request (everything but the local routes). */
void proxy_request_begin(proxy_t *px, http_req_t *req);
/* Relays POST /v1/oauth/token to <upstream>/v1/oauth/token (§3.2). */
void proxy_token_relay(proxy_t *px, http_req_t *req);
/* Called when a proxied request finished; fires on_drained when the last one ends. */
void proxy_request_ended(proxy_t *px);

/* Replaces the first "model":"…" value of json[0..n) with model, appending the result to
 * out. Returns 1 if a value was replaced, 0 if none was found (out gets the input as is). */
int proxy_model_echo(const char *json, size_t n, const char *model, buf_t *out);

#endif
