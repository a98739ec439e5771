/* sim/script — the simulator's world (accounts, credentials, response settings, faults) and
 * the script JSON that fills it, from --script at start and from POST /_sim/script live.
 *
 * Parsing is separate from applying so a bad script changes nothing: sim_script_parse
 * validates everything (unknown keys are errors, to catch typos in tests) and only then
 * sim_script_apply merges it: accounts are added or updated by name (only the keys present
 * change), "response" keys override the current settings, and "faults", when present,
 * replaces the whole fault list. See docs/sim.md for the format. */
#ifndef MAXPOOL_SIM_SCRIPT_H
#define MAXPOOL_SIM_SCRIPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim/fault.h"
#include "sim/oauth.h"
#include "sim/quota.h"
#include "sim/respond.h"

/* Everything the simulator knows; owned by the server glue (or a test). */
typedef struct sim_world {
    sim_quota_t quota;   /* accounts and simulated time */
    sim_oauth_t *oauth;  /* credentials → sim_account_t *, codes, refresh tokens */
    sim_respond_t *resp; /* compiled response settings */
    sim_faults_t faults;
    uint64_t seed;
    bool seed_fixed;  /* --seed given: a script's "seed" is ignored */
    bool scale_fixed; /* --time-scale given: a script's "timeScale" is ignored */
} sim_world_t;

/* One entry of "accounts", with what was present. */
typedef struct sim_acct_spec {
    char *name;
    int type; /* sim_acct_type_t, or -1 when absent */
    char *api_key, *access_token, *refresh_token, *uuid, *email, *tier;
    int64_t budget5h, budget7d, tpm, rpm, ttl_sec; /* -1 = absent */
    double used5h, used7d;                         /* < 0 = absent */
} sim_acct_spec_t;

typedef struct sim_script {
    bool has_seed, has_scale, has_faults;
    uint64_t seed;
    double scale;
    /* "response": the present keys; text/model NULL when absent */
    char *text, *model;
    bool model_null; /* "model": null (echo the request's model) */
    int64_t deltas, delta_delay_ms, first_byte_delay_ms; /* -1 = absent */
    sim_acct_spec_t *accts;
    size_t naccts;
    sim_fault_t *faults;
    size_t nfaults;
} sim_script_t;

/* Initialises an empty world whose simulated time starts at real_now, scale 1, seed 0. */
void sim_world_init(sim_world_t *w, int64_t real_now);
/* Frees everything the world owns. */
void sim_world_free(sim_world_t *w);

/* Parses script JSON text; returns 0, or -1 with a message in *err (caller frees). */
int sim_script_parse(const char *json, size_t n, sim_script_t *out, char **err);
/* Frees a parsed script (whatever apply did not take). */
void sim_script_free(sim_script_t *s);
/* Merges a parsed script into w at real time real_now (takes its faults); returns 0, or -1
 * with *err when it conflicts with the world (e.g. an account changing type), changing
 * nothing. */
int sim_script_apply(sim_world_t *w, sim_script_t *s, int64_t real_now, char **err);
/* Parse + apply in one call. */
int sim_script_load(sim_world_t *w, const char *json, size_t n, int64_t real_now, char **err);

#endif
