/* sim/oauth — the simulated OAuth server's memory: credentials (API keys and access tokens)
 * → account, authorization codes bound to a PKCE challenge, and single-use rotating refresh
 * tokens (§7.2, §7.3). Pure: times are parameters.
 *
 * Accounts are opaque `void *` owners here (the caller's sim_account_t); they must outlive
 * every entry that names them. */
#ifndef MAXPOOL_SIM_OAUTH_H
#define MAXPOOL_SIM_OAUTH_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

typedef struct sim_oauth sim_oauth_t;

typedef struct sim_grant {
    char *access_token; /* caller frees with sim_grant_free */
    char *refresh_token;
    int64_t expires_ms; /* when the access token stops working (same clock as `now`) */
} sim_grant_t;

/* A new, empty registry (free with sim_oauth_free). */
sim_oauth_t *sim_oauth_new(void);
/* Frees the registry and every token it holds. */
void sim_oauth_free(sim_oauth_t *o);

/* Makes `cred` (an API key or access token) identify owner until expires_ms (0 = never);
 * an existing entry for cred is replaced. */
void sim_oauth_add_credential(sim_oauth_t *o, const char *cred, void *owner, int64_t expires_ms);
/* Forgets a credential (no effect when unknown). */
void sim_oauth_remove_credential(sim_oauth_t *o, const char *cred);
/* The owner of a credential of length n at time now, or NULL when unknown or expired. */
void *sim_oauth_lookup(sim_oauth_t *o, const char *cred, size_t n, int64_t now);
/* Makes `token` a valid single-use refresh token of owner. */
void sim_oauth_add_refresh(sim_oauth_t *o, const char *token, void *owner);

/* Creates a single-use authorization code for owner bound to the PKCE challenge (method
 * must be "S256"), redirect_uri and client_id; valid 10 minutes. Returns it (caller frees). */
char *sim_oauth_new_code(sim_oauth_t *o, void *owner, const char *challenge,
                         const char *redirect_uri, const char *client_id, int64_t now);
/* Redeems a code: checks it exists, is unexpired, that base64url(SHA-256(verifier)) equals
 * its challenge and that redirect_uri/client_id match when given. The code is consumed
 * whether or not the check passes. Returns the owner, or NULL with a reason in *why. */
void *sim_oauth_redeem_code(sim_oauth_t *o, const char *code, const char *verifier,
                            const char *redirect_uri, const char *client_id, int64_t now,
                            const char **why);
/* Redeems (consumes) a refresh token; returns its owner or NULL when unknown/used. */
void *sim_oauth_redeem_refresh(sim_oauth_t *o, const char *token);
/* Mints a new access token (valid ttl_ms from now) and refresh token for owner. */
void sim_oauth_issue(sim_oauth_t *o, void *owner, int64_t ttl_ms, int64_t now, sim_grant_t *out);
/* Frees the strings of a grant. */
void sim_grant_free(sim_grant_t *g);
/* Number of live credentials (for tests and leak checks). */
size_t sim_oauth_credentials(const sim_oauth_t *o);

/* Finds `key` in an application/x-www-form-urlencoded query and appends its decoded value
 * to out; returns 0 or -ENOENT. */
int sim_url_param(const char *query, const char *key, buf_t *out);
/* Appends s percent-encoded for a query value. */
void sim_url_encode(buf_t *out, const char *s);

#endif
