#include "sim/fault.h"

#include "core/xalloc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[SIM_FAULT_KIND_COUNT] = {
    [SIM_FAULT_RATE_LIMIT] = "rate_limit",
    [SIM_FAULT_SERVER_THROTTLE] = "server_throttle",
    [SIM_FAULT_OVERLOADED] = "overloaded",
    [SIM_FAULT_STATUS] = "status",
    [SIM_FAULT_UNAUTHORIZED] = "unauthorized",
    [SIM_FAULT_FORBIDDEN] = "forbidden",
    [SIM_FAULT_SLOW_FIRST_BYTE] = "slow_first_byte",
    [SIM_FAULT_STALL] = "stall",
    [SIM_FAULT_RESET] = "reset",
    [SIM_FAULT_TRUNCATE] = "truncate",
    [SIM_FAULT_RESET_BEFORE_HEADERS] = "reset_before_headers",
};

uint64_t sim_rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

double sim_rng_unit(uint64_t *state)
{
    return (double)(sim_rng_next(state) >> 11) * (1.0 / 9007199254740992.0);
}

const char *sim_fault_kind_name(sim_fault_kind_t k)
{
    return (unsigned)k < SIM_FAULT_KIND_COUNT ? kind_names[k] : "?";
}

int sim_fault_kind_parse(const char *name)
{
    for (int i = 0; i < SIM_FAULT_KIND_COUNT; i++)
        if (strcmp(kind_names[i], name) == 0) return i;
    return -1;
}

bool sim_fault_is_error(sim_fault_kind_t k)
{
    return k <= SIM_FAULT_FORBIDDEN;
}

void sim_fault_clear(sim_fault_t *f)
{
    free(f->account);
    free(f->path);
    free(f->message);
    memset(f, 0, sizeof *f);
}

/* Reads an optional non-negative integer member; -1 with *err when it is not one. */
static int get_count(const json_t *obj, const char *key, int64_t *out, char **err)
{
    const json_t *v = json_object_get(obj, key);
    if (!v) return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        *err = xasprintf("fault \"%s\" must be a non-negative integer", key);
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}

static int get_str(const json_t *obj, const char *key, char **out, char **err)
{
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v)) {
        *err = xasprintf("fault \"%s\" must be a string", key);
        return -1;
    }
    free(*out);
    *out = xstrdup(json_string_value(v));
    return 0;
}

int sim_fault_parse(const json_t *obj, sim_fault_t *f, char **err)
{
    static const char *const known[] = {
        "kind",       "account", "count",   "skip",        "path",        "status", "message",
        "retryAfter", "delayMs", "stallMs", "afterEvents", "probability", NULL};
    memset(f, 0, sizeof *f);
    if (!json_is_object(obj)) {
        *err = xstrdup("a fault must be a JSON object");
        return -1;
    }
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)obj, key, val)
    {
        int ok = 0;
        for (int i = 0; known[i]; i++)
            if (strcmp(known[i], key) == 0) ok = 1;
        if (!ok) {
            *err = xasprintf("unknown fault key \"%s\"", key);
            return -1;
        }
    }
    const json_t *k = json_object_get(obj, "kind");
    if (!json_is_string(k)) {
        *err = xstrdup("fault \"kind\" is required (a string)");
        return -1;
    }
    int kind = sim_fault_kind_parse(json_string_value(k));
    if (kind < 0) {
        *err = xasprintf("unknown fault kind \"%s\"", json_string_value(k));
        return -1;
    }
    f->kind = (sim_fault_kind_t)kind;
    f->count = -1;
    f->probability = 1.0;
    f->retry_after = (kind == SIM_FAULT_RATE_LIMIT || kind == SIM_FAULT_SERVER_THROTTLE) ? 7 : -1;
    f->delay_ms = 1000;
    f->after_events = 3;
    f->stall_ms = -1;
    f->status = kind == SIM_FAULT_STATUS ? 500 : 0;
    if (get_str(obj, "account", &f->account, err) || get_str(obj, "path", &f->path, err) ||
        get_str(obj, "message", &f->message, err) || get_count(obj, "count", &f->count, err) ||
        get_count(obj, "skip", &f->skip, err) ||
        get_count(obj, "retryAfter", &f->retry_after, err) ||
        get_count(obj, "delayMs", &f->delay_ms, err) ||
        get_count(obj, "afterEvents", &f->after_events, err) ||
        get_count(obj, "stallMs", &f->stall_ms, err))
        goto fail;
    if (f->path && f->path[0] != '/') {
        *err = xstrdup("fault \"path\" must start with /");
        goto fail;
    }
    if (!f->path) f->path = xstrdup("/v1/messages");
    const json_t *p = json_object_get(obj, "probability");
    if (p) {
        if (!json_is_number(p) || json_number_value(p) < 0 || json_number_value(p) > 1) {
            *err = xstrdup("fault \"probability\" must be a number from 0 to 1");
            goto fail;
        }
        f->probability = json_number_value(p);
    }
    const json_t *st = json_object_get(obj, "status");
    if (st) {
        if (kind != SIM_FAULT_STATUS) {
            *err = xstrdup("fault \"status\" applies only to kind \"status\"");
            goto fail;
        }
        if (!json_is_integer(st) || json_integer_value(st) < 400 || json_integer_value(st) > 599) {
            *err = xstrdup("fault \"status\" must be an HTTP error status (400-599)");
            goto fail;
        }
        f->status = (int)json_integer_value(st);
    }
    return 0;
fail:
    sim_fault_clear(f);
    return -1;
}

void sim_faults_set(sim_faults_t *fs, sim_fault_t *v, size_t n, uint64_t seed)
{
    sim_faults_free(fs);
    fs->v = v;
    fs->n = n;
    for (size_t i = 0; i < n; i++) {
        /* Decorrelate the streams of neighbouring faults. */
        uint64_t s = seed ^ ((uint64_t)(i + 1) * 0xd1b54a32d192ed03ULL);
        sim_rng_next(&s);
        v[i].rng = s;
        v[i].seen = 0;
        v[i].fired = 0;
    }
}

void sim_faults_free(sim_faults_t *fs)
{
    for (size_t i = 0; i < fs->n; i++)
        sim_fault_clear(&fs->v[i]);
    free(fs->v);
    fs->v = NULL;
    fs->n = 0;
}

sim_fault_t *sim_faults_match(sim_faults_t *fs, const char *account, const char *path)
{
    for (size_t i = 0; i < fs->n; i++) {
        sim_fault_t *f = &fs->v[i];
        if (f->account && (!account || strcmp(f->account, account) != 0)) continue;
        if (strncmp(path, f->path, strlen(f->path)) != 0) continue;
        if (f->count >= 0 && f->fired >= f->count) continue;
        f->seen++;
        if (f->seen <= f->skip) continue;
        /* Draw even at probability 1 so changing p alone never shifts later draws. */
        double u = sim_rng_unit(&f->rng);
        if (u >= f->probability) continue;
        f->fired++;
        return f;
    }
    return NULL;
}

int sim_fault_status(const sim_fault_t *f)
{
    switch (f->kind) {
    case SIM_FAULT_RATE_LIMIT:
    case SIM_FAULT_SERVER_THROTTLE:
        return 429;
    case SIM_FAULT_OVERLOADED:
        return 529;
    case SIM_FAULT_STATUS:
        return f->status ? f->status : 500;
    case SIM_FAULT_UNAUTHORIZED:
        return 401;
    case SIM_FAULT_FORBIDDEN:
        return 403;
    default:
        return 200;
    }
}

const char *sim_fault_error_type(const sim_fault_t *f)
{
    switch (f->kind) {
    case SIM_FAULT_RATE_LIMIT:
    case SIM_FAULT_SERVER_THROTTLE:
        return "rate_limit_error";
    case SIM_FAULT_OVERLOADED:
        return "overloaded_error";
    case SIM_FAULT_UNAUTHORIZED:
        return "authentication_error";
    case SIM_FAULT_FORBIDDEN:
        return "permission_error";
    default:
        return "api_error";
    }
}

const char *sim_fault_message(const sim_fault_t *f, bool account_is_apikey)
{
    if (f->message) return f->message;
    switch (f->kind) {
    case SIM_FAULT_RATE_LIMIT:
        return "Number of request tokens has exceeded your per-minute rate limit";
    case SIM_FAULT_SERVER_THROTTLE:
        return "Anthropic is temporarily limiting requests. Please try again later.";
    case SIM_FAULT_OVERLOADED:
        return "Overloaded";
    case SIM_FAULT_UNAUTHORIZED:
        return account_is_apikey ? "invalid x-api-key" : "OAuth token has expired";
    case SIM_FAULT_FORBIDDEN:
        return "Your credentials do not have permission for this request";
    default:
        return "Internal server error";
    }
}
