#include "sim/oauth.h"

#include "core/crypto.h"
#include "core/xalloc.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define CODE_TTL_MS (10LL * 60 * 1000)

/* A chained hash map from token text to an entry; small and private to this file. */
typedef struct entry {
    struct entry *next;
    char *key;
    size_t klen;
    void *owner;
    int64_t expires_ms; /* 0 = never */
    char *challenge;    /* codes only */
    char *redirect_uri;
    char *client_id;
} entry_t;

typedef struct tmap {
    entry_t **slot;
    size_t nslots, n;
} tmap_t;

struct sim_oauth {
    tmap_t creds, refresh, codes;
    uint64_t seq;
};

static uint64_t hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

static void entry_free(entry_t *e)
{
    free(e->key);
    free(e->challenge);
    free(e->redirect_uri);
    free(e->client_id);
    free(e);
}

static void tmap_free(tmap_t *m)
{
    for (size_t i = 0; i < m->nslots; i++) {
        for (entry_t *e = m->slot[i], *nx; e; e = nx) {
            nx = e->next;
            entry_free(e);
        }
    }
    free(m->slot);
    memset(m, 0, sizeof *m);
}

static entry_t **tmap_find(tmap_t *m, const char *k, size_t n)
{
    if (!m->nslots) return NULL;
    entry_t **pp = &m->slot[hash(k, n) & (m->nslots - 1)];
    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->klen == n && memcmp((*pp)->key, k, n) == 0) return pp;
    return NULL;
}

static void tmap_remove(tmap_t *m, const char *k, size_t n)
{
    entry_t **pp = tmap_find(m, k, n);
    if (!pp) return;
    entry_t *e = *pp;
    *pp = e->next;
    entry_free(e);
    m->n--;
}

static void tmap_grow(tmap_t *m)
{
    size_t ns = m->nslots ? m->nslots * 2 : 64;
    entry_t **slot = xcalloc(ns, sizeof *slot);
    for (size_t i = 0; i < m->nslots; i++) {
        for (entry_t *e = m->slot[i], *nx; e; e = nx) {
            nx = e->next;
            entry_t **s = &slot[hash(e->key, e->klen) & (ns - 1)];
            e->next = *s;
            *s = e;
        }
    }
    free(m->slot);
    m->slot = slot;
    m->nslots = ns;
}

static entry_t *tmap_put(tmap_t *m, const char *k, void *owner, int64_t expires_ms)
{
    size_t n = strlen(k);
    tmap_remove(m, k, n);
    if (m->n + 1 > m->nslots) tmap_grow(m);
    entry_t *e = xcalloc(1, sizeof *e);
    e->key = xstrndup(k, n);
    e->klen = n;
    e->owner = owner;
    e->expires_ms = expires_ms;
    entry_t **s = &m->slot[hash(k, n) & (m->nslots - 1)];
    e->next = *s;
    *s = e;
    m->n++;
    return e;
}

sim_oauth_t *sim_oauth_new(void)
{
    return xcalloc(1, sizeof(sim_oauth_t));
}

void sim_oauth_free(sim_oauth_t *o)
{
    if (!o) return;
    tmap_free(&o->creds);
    tmap_free(&o->refresh);
    tmap_free(&o->codes);
    free(o);
}

void sim_oauth_add_credential(sim_oauth_t *o, const char *cred, void *owner, int64_t expires_ms)
{
    tmap_put(&o->creds, cred, owner, expires_ms);
}

void sim_oauth_remove_credential(sim_oauth_t *o, const char *cred)
{
    tmap_remove(&o->creds, cred, strlen(cred));
}

void *sim_oauth_lookup(sim_oauth_t *o, const char *cred, size_t n, int64_t now)
{
    entry_t **pp = tmap_find(&o->creds, cred, n);
    if (!pp) return NULL;
    if ((*pp)->expires_ms && now >= (*pp)->expires_ms) {
        /* Expired tokens never come back: drop them so refresh churn stays bounded. */
        tmap_remove(&o->creds, cred, n);
        return NULL;
    }
    return (*pp)->owner;
}

void sim_oauth_add_refresh(sim_oauth_t *o, const char *token, void *owner)
{
    tmap_put(&o->refresh, token, owner, 0);
}

static char *mint(sim_oauth_t *o, const char *prefix)
{
    char *r = crypto_random_b64url(24);
    char *t = xasprintf("%s%llu-%s", prefix, (unsigned long long)++o->seq, r);
    free(r);
    return t;
}

char *sim_oauth_new_code(sim_oauth_t *o, void *owner, const char *challenge,
                         const char *redirect_uri, const char *client_id, int64_t now)
{
    char *code = mint(o, "sim-code-");
    entry_t *e = tmap_put(&o->codes, code, owner, now + CODE_TTL_MS);
    e->challenge = xstrdup(challenge ? challenge : "");
    e->redirect_uri = xstrdup(redirect_uri ? redirect_uri : "");
    e->client_id = xstrdup(client_id ? client_id : "");
    return code;
}

void *sim_oauth_redeem_code(sim_oauth_t *o, const char *code, const char *verifier,
                            const char *redirect_uri, const char *client_id, int64_t now,
                            const char **why)
{
    const char *reason = NULL;
    void *owner = NULL;
    entry_t **pp = code ? tmap_find(&o->codes, code, strlen(code)) : NULL;
    if (!pp) {
        reason = "Invalid 'code' in request.";
    } else {
        entry_t *e = *pp;
        if (now >= e->expires_ms) {
            reason = "Authorization code expired";
        } else if (!verifier || !*verifier) {
            reason = "Missing code_verifier";
        } else {
            uint8_t d[32];
            crypto_sha256(verifier, strlen(verifier), d);
            char *want = crypto_b64url_encode(d, sizeof d);
            bool ok = strcmp(want, e->challenge) == 0;
            free(want);
            if (!ok)
                reason = "Invalid code_verifier";
            else if (redirect_uri && *e->redirect_uri && strcmp(redirect_uri, e->redirect_uri))
                reason = "redirect_uri does not match the authorization request";
            else if (client_id && *e->client_id && strcmp(client_id, e->client_id))
                reason = "client_id does not match the authorization request";
            else
                owner = e->owner;
        }
        /* Single use: a failed attempt burns the code too, as a real server does. */
        tmap_remove(&o->codes, code, strlen(code));
    }
    if (why) *why = reason;
    return owner;
}

void *sim_oauth_redeem_refresh(sim_oauth_t *o, const char *token)
{
    if (!token) return NULL;
    entry_t **pp = tmap_find(&o->refresh, token, strlen(token));
    if (!pp) return NULL;
    void *owner = (*pp)->owner;
    tmap_remove(&o->refresh, token, strlen(token));
    return owner;
}

void sim_oauth_issue(sim_oauth_t *o, void *owner, int64_t ttl_ms, int64_t now, sim_grant_t *out)
{
    out->access_token = mint(o, "sk-ant-oat01-sim-");
    out->refresh_token = mint(o, "sk-ant-ort01-sim-");
    out->expires_ms = now + (ttl_ms > 0 ? ttl_ms : 1);
    sim_oauth_add_credential(o, out->access_token, owner, out->expires_ms);
    sim_oauth_add_refresh(o, out->refresh_token, owner);
}

void sim_grant_free(sim_grant_t *g)
{
    free(g->access_token);
    free(g->refresh_token);
    g->access_token = g->refresh_token = NULL;
}

size_t sim_oauth_credentials(const sim_oauth_t *o)
{
    return o->creds.n;
}

/* ---- URL helpers ------------------------------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int sim_url_param(const char *query, const char *key, buf_t *out)
{
    size_t kl = strlen(key);
    const char *p = query;
    while (p && *p) {
        const char *end = strchr(p, '&');
        if (!end) end = p + strlen(p);
        if ((size_t)(end - p) >= kl && strncmp(p, key, kl) == 0 &&
            (p + kl == end || p[kl] == '=')) {
            const char *v = p + kl + (p + kl < end ? 1 : 0);
            while (v < end) {
                char c = *v;
                if (c == '+') {
                    c = ' ';
                } else if (c == '%' && end - v >= 3 && hexval(v[1]) >= 0 && hexval(v[2]) >= 0) {
                    c = (char)(hexval(v[1]) * 16 + hexval(v[2]));
                    v += 2;
                }
                buf_append(out, &c, 1);
                v++;
            }
            return 0;
        }
        p = *end ? end + 1 : end;
    }
    return -ENOENT;
}

void sim_url_encode(buf_t *out, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            buf_append(out, s, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            buf_append(out, e, 3);
        }
    }
}
