/* sim/fault — scripted failures: which request gets which fault.
 *
 * A fault matches a request by account name (NULL = any) and path prefix (default
 * "/v1/messages"). The first `skip` matching requests pass; after that each matching request
 * fires with `probability`, drawn from the fault's own PRNG (splitmix64 seeded from the
 * script seed and the fault's index), until it has fired `count` times. Faults are tried in
 * list order and the first one that fires answers the request; later faults do not see it.
 * Same seed, same list and same request sequence → the same faults, run after run. */
#ifndef MAXPOOL_SIM_FAULT_H
#define MAXPOOL_SIM_FAULT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum sim_fault_kind {
    SIM_FAULT_RATE_LIMIT,
    SIM_FAULT_SERVER_THROTTLE,
    SIM_FAULT_OVERLOADED,
    SIM_FAULT_STATUS,
    SIM_FAULT_UNAUTHORIZED,
    SIM_FAULT_FORBIDDEN,
    SIM_FAULT_SLOW_FIRST_BYTE,
    SIM_FAULT_STALL,
    SIM_FAULT_RESET,
    SIM_FAULT_TRUNCATE,
    SIM_FAULT_RESET_BEFORE_HEADERS,
    SIM_FAULT_KIND_COUNT
} sim_fault_kind_t;

typedef struct sim_fault {
    sim_fault_kind_t kind;
    char *account;        /* NULL = any account */
    char *path;           /* path prefix; never NULL after parsing */
    int64_t count;        /* fires at most this often; -1 = unlimited */
    int64_t skip;         /* matching requests let through first */
    double probability;   /* 0..1 */
    int status;           /* HTTP status of an error kind */
    char *message;        /* error message override, or NULL for the kind's default */
    int64_t retry_after;  /* seconds (rate_limit, server_throttle); -1 = no header */
    int64_t delay_ms;     /* slow_first_byte */
    int64_t after_events; /* stall, reset */
    int64_t stall_ms;     /* stall; -1 = until the client leaves */
    /* runtime */
    int64_t seen;  /* matching requests so far */
    int64_t fired; /* times it answered */
    uint64_t rng;
} sim_fault_t;

typedef struct sim_faults {
    sim_fault_t *v;
    size_t n;
} sim_faults_t;

/* One step of splitmix64: advances *state and returns 64 random bits. */
uint64_t sim_rng_next(uint64_t *state);
/* A uniform double in [0, 1) from the generator. */
double sim_rng_unit(uint64_t *state);

/* The script name of a kind ("rate_limit", …). */
const char *sim_fault_kind_name(sim_fault_kind_t k);
/* Parses a kind name; returns the kind or -1. */
int sim_fault_kind_parse(const char *name);
/* True for kinds that answer with an error body instead of a (disturbed) normal answer. */
bool sim_fault_is_error(sim_fault_kind_t k);

/* Parses one fault object into *f (zeroed first); returns 0, or -1 with a message in *err
 * (caller frees) naming the problem. */
int sim_fault_parse(const json_t *obj, sim_fault_t *f, char **err);
/* Frees the strings of one fault. */
void sim_fault_clear(sim_fault_t *f);

/* Replaces the list with v[0..n) (takes ownership of v and its strings) and seeds each
 * fault's generator from seed and its index, resetting counters. */
void sim_faults_set(sim_faults_t *fs, sim_fault_t *v, size_t n, uint64_t seed);
/* Frees the list. */
void sim_faults_free(sim_faults_t *fs);
/* Returns the fault that fires for a request of `account` (may be NULL) on `path`, counting
 * the request against every fault it reaches, or NULL when none fires. */
sim_fault_t *sim_faults_match(sim_faults_t *fs, const char *account, const char *path);

/* The default status, error type and message of an error kind; account_is_apikey picks the
 * unauthorized message. */
int sim_fault_status(const sim_fault_t *f);
const char *sim_fault_error_type(const sim_fault_t *f);
const char *sim_fault_message(const sim_fault_t *f, bool account_is_apikey);

#endif
