/* sim/quota — the simulator's pure quota model: accounts, the 5h/7d subscription windows,
 * API-key per-minute buckets, simulated time and the rate-limit headers they produce.
 *
 * No I/O and no libuv: every function takes the real time (ms epoch) it should use, so unit
 * tests drive it in virtual time. Simulated time runs `scale` times faster than real time
 * from `start_ms`, plus whatever /_sim/clock added:
 *   sim = start + (real - start) * scale + advance,  real = start + (sim - start - advance) /
 * scale. Windows and buckets live in simulated time; every reset a client sees is converted back to
 * the real clock, so a client on the real clock sees a window pass `scale` times faster. */
#ifndef MAXPOOL_SIM_QUOTA_H
#define MAXPOOL_SIM_QUOTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIM_5H_MS  (5LL * 3600 * 1000)
#define SIM_7D_MS  (7LL * 24 * 3600 * 1000)
#define SIM_MIN_MS (60LL * 1000)

#define SIM_DEFAULT_BUDGET5H 2000000
#define SIM_DEFAULT_BUDGET7D 20000000
#define SIM_DEFAULT_TPM      400000
#define SIM_DEFAULT_RPM      4000
#define SIM_DEFAULT_TTL_SEC  28800

typedef enum sim_acct_type { SIM_ACCT_OAUTH, SIM_ACCT_APIKEY } sim_acct_type_t;

/* A window or bucket that opens on first charge and closes (used → 0) at reset_ms. */
typedef struct sim_window {
    int64_t budget;   /* tokens (or requests) per window; <= 0 = unlimited */
    int64_t used;     /* charged since it opened */
    int64_t reset_ms; /* simulated ms epoch; 0 = closed */
    int64_t len_ms;   /* window length in simulated ms */
} sim_window_t;

#define SIM_STATUS_SLOTS 16

typedef struct sim_account {
    char *name;
    sim_acct_type_t type;
    char *api_key;       /* apikey: the credential; NULL for oauth */
    char *access_token;  /* oauth: the script's access token (never expires), or NULL */
    char *refresh_token; /* oauth: the script's refresh token, or NULL */
    char *uuid;          /* account uuid (generated from the name when not scripted) */
    char *email;
    char *tier; /* "max" | "pro" | "team" */
    int64_t token_ttl_sec;
    sim_window_t w5h, w7d; /* oauth */
    sim_window_t tok, req; /* apikey: per-minute token and request buckets */
    /* counters for /_sim/state */
    uint64_t requests, input_tokens, output_tokens;
    int status_code[SIM_STATUS_SLOTS];
    uint64_t status_count[SIM_STATUS_SLOTS];
} sim_account_t;

typedef struct sim_quota {
    int64_t start_ms;   /* real ms epoch where simulated time starts */
    double scale;       /* simulated ms per real ms */
    int64_t advance_ms; /* added by /_sim/clock */
    sim_account_t **accts;
    size_t n, cap;
} sim_quota_t;

/* Response headers produced by the model; names are static strings, values live in store. */
#define SIM_HDRS_MAX 32
typedef struct sim_hdrs {
    size_t n;
    const char *name[SIM_HDRS_MAX];
    const char *value[SIM_HDRS_MAX];
    size_t used;
    char store[2048];
} sim_hdrs_t;

/* Empties h. */
void sim_hdrs_init(sim_hdrs_t *h);
/* Adds a header whose value is printf-formatted (silently dropped when h is full). */
void sim_hdrs_add(sim_hdrs_t *h, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The value of header `name` (case-insensitive) or NULL. */
const char *sim_hdrs_get(const sim_hdrs_t *h, const char *name);

/* Initialises an empty model whose simulated time starts at real time start_ms. */
void sim_quota_init(sim_quota_t *q, int64_t start_ms, double scale);
/* Frees every account. */
void sim_quota_free(sim_quota_t *q);
/* Simulated ms for real time real_ms. */
int64_t sim_quota_now(const sim_quota_t *q, int64_t real_ms);
/* Real ms at which simulated time reaches sim_ms. */
int64_t sim_quota_to_real(const sim_quota_t *q, int64_t sim_ms);
/* Moves simulated time forward by ms (/_sim/clock). */
void sim_quota_advance(sim_quota_t *q, int64_t ms);
/* Changes the time scale at real_now without a jump in simulated time (scale > 0). */
void sim_quota_set_scale(sim_quota_t *q, double scale, int64_t real_now);

/* Finds an account by name, or NULL. */
sim_account_t *sim_quota_find(const sim_quota_t *q, const char *name);
/* Adds a new account with default budgets (the model owns it); name must be unused. */
sim_account_t *sim_quota_add(sim_quota_t *q, const char *name, sim_acct_type_t type);
/* Sets a subscription window's starting utilization (0..1+): > 0 opens it at sim_now if
 * closed, 0 closes it. */
void sim_quota_set_used(sim_window_t *w, double utilization, int64_t sim_now);

/* Utilization (used/budget) of a window after expiring it at sim_now; 0 when closed. */
double sim_quota_utilization(sim_window_t *w, int64_t sim_now);
/* Closes every window and bucket of a whose reset has passed at sim_now. */
void sim_quota_expire(sim_account_t *a, int64_t sim_now);
/* Decides whether a may be served at sim_now: 0 = allowed, 1 = rejected by quota, with the
 * real seconds until the blocking window resets in *retry_after_s (>= 1). */
int sim_quota_check(const sim_quota_t *q, sim_account_t *a, int64_t sim_now,
                    int64_t *retry_after_s);
/* Charges tokens (and one request for API keys) at sim_now, opening closed windows. */
void sim_quota_charge(sim_account_t *a, int64_t sim_now, int64_t tokens);
/* Appends the rate-limit headers describing a's state at sim_now to h (unified-* for
 * subscription accounts, tokens-/requests-* for API keys). */
void sim_quota_headers(const sim_quota_t *q, sim_account_t *a, int64_t sim_now, sim_hdrs_t *h);
/* Counts one answered request with its HTTP status for /_sim/state (status <= 0 is ignored). */
void sim_quota_count_status(sim_account_t *a, int status);
/* "allowed" / "allowed_warning" / "rejected" for a utilization. */
const char *sim_quota_status_name(double utilization);
/* Formats a utilization as a decimal with at most 4 fraction digits ("0.1234", "0.5", "0"). */
void sim_quota_fmt_util(double u, char *out, size_t outlen);

#endif
