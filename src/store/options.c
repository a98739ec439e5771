/* options — the config-key table and everything it drives (see options.h). */
#include "store/options.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/crypto.h"
#include "core/xalloc.h"

/* ---------------------------------------------------------------- the table ---- */

#define FR        OPTIONS_F_FRESH
#define NUL       OPTIONS_F_NULLABLE
#define CLAMP     OPTIONS_F_CLAMP
#define ZDEF      OPTIONS_F_ZERO_DEFAULT
#define RANGE     (OPTIONS_F_MIN | OPTIONS_F_MAX)
#define MAX_MS    1e13 /* ~317 years: any sane duration */
#define MAX_BYTES 1e15
#define MAX_COUNT 1e6

#define OBJ(p, fl, d, h)                                                                           \
    {                                                                                              \
        .path = (p), .type = OPTIONS_OBJECT, .flags = (fl), .def = (d), .help = (h)                \
    }
#define ARR(p, fl, h)                                                                              \
    {                                                                                              \
        .path = (p), .type = OPTIONS_ARRAY, .flags = (fl), .def = "[]", .help = (h)                \
    }
#define BOOL(p, fl, d, h)                                                                          \
    {                                                                                              \
        .path = (p), .type = OPTIONS_BOOL, .flags = (fl), .def = (d), .help = (h)                  \
    }
#define INT(p, fl, d, lo, hi, h)                                                                   \
    {                                                                                              \
        .path = (p), .type = OPTIONS_INT, .flags = (fl) | RANGE, .def = (d), .min = (lo),          \
        .max = (hi), .help = (h)                                                                   \
    }
#define DBL(p, fl, d, lo, hi, h)                                                                   \
    {                                                                                              \
        .path = (p), .type = OPTIONS_DOUBLE, .flags = (fl) | RANGE, .def = (d), .min = (lo),       \
        .max = (hi), .help = (h)                                                                   \
    }
#define STR(p, fl, d, ch, h)                                                                       \
    {                                                                                              \
        .path = (p), .type = OPTIONS_STRING, .flags = (fl), .def = (d), .choices = (ch),           \
        .help = (h)                                                                                \
    }

static const char *const routing_modes[] = {"automatic", "preferred", NULL};
static const char *const fallback_policies[] = {"never", "when-exhausted", "always", NULL};
static const char *const sched_routing_modes[] = {"balance",     "prefer-claude", "prefer-zai",
                                                  "prefer-kimi", "sticky",        NULL};
static const char *const account_types[] = {"oauth", "apikey", "provider", NULL};

/* The default peak settings of §8.6, also merged into older files by the peak migration. */
#define PEAK_DEFAULTS                                                                              \
    "{\"zai\": {\"peakTimezone\": \"Asia/Singapore\", \"peakWindows\": [{\"days\": "               \
    "[1, 2, 3, 4, 5], \"startMin\": 840, \"endMin\": 1080}], \"peakCap\": 0.5, "                   \
    "\"peakDepreference\": true}, \"kimi\": {\"peakWindows\": [], \"peakCap\": 0.5, "              \
    "\"peakDepreference\": true}}"

const options_entry_t options_table[] = {
    /* §2.3, in createDefaultConfig order */
    OBJ("proxy", FR, "{}", "Local listener settings."),
    INT("proxy.port", FR, "3456", 0, 65535, "Port the proxy listens on."),
    STR("proxy.host", FR, "\"127.0.0.1\"", NULL, "Address the proxy listens on."),
    {.path = "proxy.apiKey",
     .type = OPTIONS_STRING,
     .flags = FR | OPTIONS_F_SECRET | OPTIONS_F_GENERATED,
     .def = NULL,
     .help = "Key for /maxpool/status and for clients that are not on loopback."},
    STR("upstream", FR, "\"https://api.anthropic.com\"", NULL, "Anthropic API base URL."),
    BOOL("preventSleep", FR, "true", "macOS: keep the machine awake while requests run."),
    BOOL("updateCheck", FR, "true", "Look up the latest release at start and show a notice."),
    BOOL("autoUpdate", FR, "false",
         "Accepted for compatibility; a native binary only prints how to update (Part A15)."),
    BOOL("autoApply", 0, "false", "Apply an installed update with a seamless reload (TUI u/t)."),
    DBL("switchThreshold", FR | ZDEF, "0.9", 0, 1,
        "5h/session utilization at which an account is benched; 0 means 0.90."),
    INT("quotaProbeSeconds", FR, "60", 0, 86400,
        "Seconds between background usage probes of every account (0 = off)."),
    OBJ("routing", FR, "{}", "How requests pick an account."),
    STR("routing.mode", FR, "\"automatic\"", routing_modes,
        "automatic load balancing, or preferred (one account first, failover to the rest)."),
    STR("routing.preferredAccount", FR | NUL, "null", NULL,
        "Account name used first in preferred mode."),

    /* §5.9: scheduler keys a fresh file holds */
    OBJ("scheduler", FR, "{}", "Scheduling policy (§5); absent keys take their code default."),
    STR("scheduler.mode", FR, "\"adaptive-least-loaded\"", NULL, "Informational only."),
    INT("scheduler.safetyMaxActivePerAccount", FR, "50", 1, MAX_COUNT,
        "Hard cap on concurrent requests per account."),
    INT("scheduler.safetyMaxGlobalActive", FR, "150", 1, MAX_COUNT,
        "Hard cap on concurrent requests over all accounts."),
    INT("scheduler.cooldownMs", FR, "30000", 0, MAX_MS,
        "First cooldown after a transient failure; doubles per failure."),
    INT("scheduler.maxCooldownMs", FR, "900000", 0, MAX_MS, "Longest transient-failure cooldown."),
    INT("scheduler.networkCooldownMs", FR, "5000", 0, MAX_MS,
        "Fixed cooldown after a network-class failure."),
    DBL("scheduler.weeklySoftThreshold", FR, "0.65", 0, 1,
        "Weekly utilization where mild de-preference starts."),
    DBL("scheduler.weeklyReserveThreshold", FR, "0.85", 0, 1,
        "Weekly utilization where an account becomes reserve (overflow only)."),
    DBL("scheduler.weeklyCriticalThreshold", FR, "0.95", 0, 1,
        "Weekly utilization where an account is last resort."),
    DBL("scheduler.weeklyExhaustedThreshold", FR, "0.999", 0, 1,
        "Weekly utilization where an account is parked until its weekly reset."),
    STR("scheduler.crossProviderFallbackPolicy", FR, "\"never\"", fallback_policies,
        "May a Claude session fall back to GLM/Kimi providers."),
    BOOL("scheduler.providerCrossFallback", FR, "true",
         "May a GLM/Kimi session move to the other provider."),
    OBJ("scheduler.providers", FR, PEAK_DEFAULTS,
        "Per provider (zai, kimi): claudeFallback and peak-hour settings (§8.6)."),
    INT("scheduler.peakDefaultsVersion", FR, "1", 0, MAX_COUNT,
        "Peak defaults already merged into scheduler.providers (migration marker)."),
    /* §5.9: code defaults, not written to a fresh file */
    DBL("scheduler.weeklyBurnDebtWeight", 0, "0.6", 0, MAX_COUNT,
        "Weight of weekly burn ahead of pace."),
    DBL("scheduler.criticalPreResetHours", 0, "2", 0, 168,
        "Unlock a critical account this close to its weekly reset (0 = off)."),
    INT("scheduler.criticalPressureUnlockRoutes", 0, "0", -1, MAX_COUNT,
        "Unlock critical accounts when at most this many routes have headroom (-1 = off)."),
    DBL("scheduler.criticalPressureCost", 0, "21", 0, MAX_COUNT,
        "Score cost of a pressure-unlocked critical account."),
    DBL("scheduler.criticalDrainFloorCost", 0, "8", 0, MAX_COUNT,
        "Score cost of a critical account at the opening of its pre-reset window."),
    BOOL("scheduler.criticalPeakUnlock", 0, "false",
         "Unlock critical Claude accounts while a provider is in peak hours."),
    DBL("scheduler.concurrencyWeight", 0, "2", 0, MAX_COUNT, "Weight of in-flight load."),
    DBL("scheduler.perAccountConcurrencyTarget", 0, "3", 0, MAX_COUNT,
        "Soft in-flight target per account; past it the cap penalty applies."),
    DBL("scheduler.capPenaltyWeight", 0, "10", 0, MAX_COUNT,
        "Penalty per unit of in-flight depth past the target."),
    DBL("scheduler.paceCostWeight", 0, "1.5", 0, MAX_COUNT,
        "De-preference of accounts burning ahead of pace."),
    DBL("scheduler.utilizationWeight", 0, "3", 0, MAX_COUNT, "Weight of raw utilization."),
    BOOL("scheduler.weeklyAwareScoring", 0, "true",
         "Fold weekly utilization into the utilization cost."),
    DBL("scheduler.scarcityWeight", 0, "6", 0, MAX_COUNT, "Unused (kept for old configs)."),
    DBL("scheduler.reserveFloorCost", 0, "5", 0, MAX_COUNT, "Base cost of a reserve account."),
    DBL("scheduler.reserveBandWeight", 0, "8", 0, MAX_COUNT,
        "Extra cost the deeper an account is into the reserve band."),
    DBL("scheduler.reserveScarcityWeight", 0, "6", 0, MAX_COUNT,
        "Reset-timing weight among reserve accounts."),
    DBL("scheduler.reserveConcurrencyTarget", 0, "2", 0, MAX_COUNT,
        "In-flight target for reserve accounts."),
    DBL("scheduler.spreadShareWeight", 0, "3", 0, MAX_COUNT,
        "Weight of an account's share of recent load."),
    DBL("scheduler.fastRefillDiscount", 0, "0.6", 0, 1,
        "Discount of the balancing terms for fast-refilling accounts (0 = off)."),
    DBL("scheduler.fastRefillFadeUtil", 0, "0.65", 0, 1,
        "Session utilization where the fast-refill discount reaches 0."),
    DBL("scheduler.recoveryRampWeight", 0, "4", 0, MAX_COUNT,
        "Penalty on a just-recovered account, decaying to 0."),
    INT("scheduler.recoveryRampMs", 0, "300000", 0, MAX_MS, "Length of the recovery ramp."),
    INT("scheduler.spreadWindowMs", 0, "900000", 1000, MAX_MS,
        "Window over which recent per-account load is measured."),
    BOOL("scheduler.crossAccountThinkingMigration", 0, "true",
         "Let a signed-thinking session move to another Claude account."),
    STR("scheduler.routingMode", NUL, "null", sched_routing_modes,
        "Session distribution; null derives it from crossProviderFallbackPolicy."),

    OBJ("retry", FR, "{}", "Failover within one request."),
    INT("retry.maxAttemptsPerRequest", FR, "0", 0, 1000,
        "Accounts tried per request (0 = the number of accounts)."),
    INT("retry.maxRetryBufferBytes", FR, "10485760", 0, MAX_BYTES,
        "Largest request body that may fail over to another account."),
    OBJ("shutdown", FR, "{}", "Quit behaviour."),
    INT("shutdown.drainTimeoutMs", FR | CLAMP | ZDEF, "15000", 1000, MAX_MS,
        "How long quit waits for in-flight requests (at least 1000)."),
    OBJ("queue", FR, "{}", "Hold requests while every account is limited (§6.9)."),
    BOOL("queue.enabled", FR, "true", "Hold instead of failing at once."),
    INT("queue.maxWaitMs", FR, "86400000", 0, MAX_MS, "Streaming capacity hold ceiling."),
    INT("queue.autoMaxWaitMs", FR | NUL, "null", 0, MAX_MS,
        "Fallback for capacityMaxWaitMs when that is null."),
    INT("queue.capacityMaxWaitMs", FR | NUL, "900000", 0, MAX_MS,
        "Non-streaming capacity hold cap and concurrency clamp."),
    INT("queue.weeklyMaxWaitMs", FR, "86400000", 0, MAX_MS, "Unused (legacy)."),
    INT("queue.streamHoldMaxMs", FR, "604800000", 0, MAX_MS,
        "Streaming hold ceiling for non-capacity causes."),
    INT("queue.nonStreamMaxWaitMs", FR, "300000", 0, MAX_MS, "Non-streaming hold ceiling."),
    INT("queue.maxConcurrentQueued", FR, "64", 0, MAX_COUNT, "Most requests held at once."),
    INT("queue.maxQueuedBytes", FR, "1073741824", 0, MAX_BYTES,
        "Most request-body bytes held at once."),
    INT("queue.maxQueuedBodyBytes", FR, "268435456", 0, MAX_BYTES,
        "Largest body that may be held."),
    INT("queue.pollMs", FR | CLAMP | ZDEF, "1000", 100, MAX_MS,
        "How often a held request re-checks (at least 100)."),
    INT("queue.heartbeatMs", FR | CLAMP | ZDEF, "10000", 1000, MAX_MS,
        "Interval of `event: ping` on held streams (at least 1000)."),
    INT("queue.networkMaxWaitMs", 0, "120000", 0, MAX_MS, "Hold ceiling for network causes."),
    INT("queue.streamClientToleranceMs", CLAMP, "240000", 60000, MAX_MS,
        "How long a client tolerates a heartbeat-only stream (at least 60000)."),
    INT("queue.streamForwardGraceMs", CLAMP, "10000", 1000, MAX_MS,
        "Grace before a held stream commits its heartbeat (at least 1000)."),
    INT("queue.countTokensMaxWaitMs", CLAMP, "8000", 1000, MAX_MS,
        "Hold ceiling for count_tokens requests (at least 1000)."),

    ARR("accounts", FR, "Claude and provider accounts (see Accounts below)."),
    ARR("providers", FR, "Config-sourced GLM/Kimi providers (§8.2)."),

    /* §2.3 "also read when present" */
    OBJ("sync", 0, "{}", "Hot sync of the file into a running server."),
    INT("sync.accountsIntervalMs", CLAMP, "15000", 1000, MAX_MS,
        "How often a running server re-reads accounts from the file."),
    BOOL("eventLog", 0, "true", "false disables the event log next to the config."),
    INT("restartDrainTimeoutMs", 0, "10000", 0, MAX_MS, "Drain bound of a restart."),
    OBJ("ui", 0, "{}", "Terminal UI preferences."),
    BOOL("ui.hideDisabled", 0, "false", "Hide disabled accounts in the TUI."),
    STR("logDir", NUL | OPTIONS_F_RUNTIME, "null", NULL,
        "Set from --log-to DIR for one run; not meant to be edited."),
    INT("_generation", OPTIONS_F_RUNTIME, "0", 0, MAX_BYTES,
        "Write counter, bumped by every writer (Part A7)."),

    /* Part A */
    OBJ("limits", 0, "{}", "Memory bounds (Part A12)."),
    INT("limits.maxBodyBytes", 0, "33554432", 1024, MAX_BYTES,
        "Largest request body accepted (413 above it); the Anthropic API takes 32 MB."),
    INT("limits.maxBufferedBytes", 0, "536870912", 1048576, MAX_BYTES,
        "Cap on request bytes buffered over all requests."),
    OBJ("network", 0, "{}", "Outbound networking (Part A13)."),
    STR("network.proxy", NUL, "null", NULL,
        "Plain outbound HTTP(S) proxy URL (else HTTPS_PROXY is used)."),
    OBJ("secrets", 0, "{}", "Secret resolver (Part A10)."),
    STR("secrets.command", NUL, "null", NULL,
        "Command printing a provider secret, {name} replaced (e.g. `pass show {name}`)."),
};

const int options_count = (int)(sizeof options_table / sizeof options_table[0]);

/* ------------------------------------------------------------- lookups ---- */

const options_entry_t *options_find(const char *path)
{
    for (int i = 0; i < options_count; i++)
        if (strcmp(options_table[i].path, path) == 0) return &options_table[i];
    return NULL;
}

json_t *options_lookup(const json_t *cfg, const char *path)
{
    json_t *cur = (json_t *)cfg;
    const char *p = path;
    while (cur) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (!json_is_object(cur)) return NULL;
        cur = json_object_getn(cur, p, n);
        if (!dot) return cur;
        p = dot + 1;
    }
    return NULL;
}

/* Parsed defaults, built once: the getters hand out borrowed strings from here. */
static json_t *defaults_cache[sizeof options_table / sizeof options_table[0]];
static pthread_once_t defaults_once = PTHREAD_ONCE_INIT;

static void defaults_build(void)
{
    for (int i = 0; i < options_count; i++) {
        const char *def = options_table[i].def;
        if (!def) continue;
        json_error_t jerr;
        defaults_cache[i] = json_loads(def, JSON_DECODE_ANY, &jerr);
        if (!defaults_cache[i]) {
            fprintf(stderr, "options: bad default for %s: %s\n", options_table[i].path, jerr.text);
            abort();
        }
    }
}

static const json_t *default_of(const options_entry_t *e)
{
    pthread_once(&defaults_once, defaults_build);
    return defaults_cache[e - options_table];
}

static const options_entry_t *entry_or_die(const char *path, options_type_t type)
{
    const options_entry_t *e = options_find(path);
    if (!e || e->type != type) {
        fprintf(stderr, "options: %s is not a known key of that type\n", path);
        abort();
    }
    return e;
}

json_t *options_default_value(const char *path)
{
    const options_entry_t *e = options_find(path);
    if (!e) {
        fprintf(stderr, "options: unknown key %s\n", path);
        abort();
    }
    if (e->flags & OPTIONS_F_GENERATED) {
        char *rnd = crypto_random_b64url(24);
        char *key = xasprintf("mp-%s", rnd);
        free(rnd);
        json_t *v = json_string(key);
        free(key);
        return v;
    }
    return json_deep_copy(default_of(e));
}

json_t *options_default_config(void)
{
    json_t *cfg = json_object();
    for (int i = 0; i < options_count; i++) {
        const options_entry_t *e = &options_table[i];
        if (!(e->flags & OPTIONS_F_FRESH)) continue;
        const char *dot = strrchr(e->path, '.');
        json_t *parent = cfg;
        if (dot) {
            char *ppath = xstrndup(e->path, (size_t)(dot - e->path));
            parent = options_lookup(cfg, ppath);
            free(ppath);
        }
        /* The table lists a parent before its children; anything else is a table bug. */
        if (!json_is_object(parent)) abort();
        json_object_set_new(parent, dot ? dot + 1 : e->path, options_default_value(e->path));
    }
    return cfg;
}

/* ---------------------------------------------------------- validation ---- */

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    default:
        return "null";
    }
}

static bool type_matches(const options_entry_t *e, const json_t *v)
{
    switch (e->type) {
    case OPTIONS_BOOL:
        return json_is_boolean(v);
    case OPTIONS_INT:
    case OPTIONS_DOUBLE:
        return json_is_number(v);
    case OPTIONS_STRING:
        return json_is_string(v);
    case OPTIONS_OBJECT:
        return json_is_object(v);
    case OPTIONS_ARRAY:
        return json_is_array(v);
    }
    return false;
}

static const char *type_expectation(const options_entry_t *e)
{
    switch (e->type) {
    case OPTIONS_BOOL:
        return "true or false";
    case OPTIONS_INT:
    case OPTIONS_DOUBLE:
        return "a number";
    case OPTIONS_STRING:
        return "a string";
    case OPTIONS_OBJECT:
        return "an object";
    case OPTIONS_ARRAY:
        return "an array";
    }
    return "?";
}

static bool in_choices(const options_entry_t *e, const char *s)
{
    if (!e->choices) return true;
    for (const char *const *c = e->choices; *c; c++)
        if (strcmp(*c, s) == 0) return true;
    return false;
}

static bool in_range(const options_entry_t *e, double x)
{
    if ((e->flags & OPTIONS_F_MIN) && x < e->min) return false;
    if ((e->flags & OPTIONS_F_MAX) && x > e->max) return false;
    return true;
}

/* Appends one problem line; returns 1 so callers can count. */
static int problem(buf_t *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int problem(buf_t *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (out->len) buf_puts(out, "\n");
    buf_puts(out, "config: ");
    buf_vprintf(out, fmt, ap);
    va_end(ap);
    return 1;
}

/* A short printable form of a string value for messages (quoted, capped at 40 chars). */
static char *quote_short(const char *s)
{
    size_t n = strlen(s);
    if (n > 40) return xasprintf("\"%.37s...\"", s);
    return xasprintf("\"%s\"", s);
}

static int check_entry(const options_entry_t *e, const json_t *v, buf_t *out)
{
    if (json_is_null(v)) {
        if (e->flags & OPTIONS_F_NULLABLE) return 0;
        return problem(out, "\"%s\" must be %s (got null)", e->path, type_expectation(e));
    }
    if (!type_matches(e, v)) {
        return problem(out, "\"%s\" must be %s%s (got %s)", e->path, type_expectation(e),
                       (e->flags & OPTIONS_F_NULLABLE) ? " or null" : "", json_type_name(v));
    }
    if (e->type == OPTIONS_INT || e->type == OPTIONS_DOUBLE) {
        double x = json_number_value(v);
        if (e->type == OPTIONS_INT && x != floor(x))
            return problem(out, "\"%s\" must be a whole number (got %g)", e->path, x);
        if (!(e->flags & OPTIONS_F_CLAMP) && !in_range(e, x)) {
            return problem(out, "\"%s\" must be between %g and %g (got %g)", e->path, e->min,
                           e->max, x);
        }
    }
    if (e->type == OPTIONS_STRING && !in_choices(e, json_string_value(v))) {
        buf_t allowed;
        buf_init(&allowed, 0);
        for (const char *const *c = e->choices; *c; c++)
            buf_printf(&allowed, "%s\"%s\"", c == e->choices ? "" : ", ", *c);
        char *got = (e->flags & OPTIONS_F_SECRET) ? xstrdup("another value")
                                                  : quote_short(json_string_value(v));
        int n = problem(out, "\"%s\" must be one of %s (got %s)", e->path, allowed.data, got);
        free(got);
        buf_free(&allowed);
        return n;
    }
    return 0;
}

static int check_accounts(const json_t *accounts, buf_t *out)
{
    int n = 0;
    size_t i;
    json_t *a;
    json_array_foreach(accounts, i, a)
    {
        if (!json_is_object(a)) {
            n += problem(out, "accounts[%zu] must be an object (got %s)", i, json_type_name(a));
            continue;
        }
        json_t *name = json_object_get(a, "name");
        if (!json_is_string(name) || json_string_length(name) == 0) {
            n += problem(out, "accounts[%zu].name must be a non-empty string", i);
        } else {
            for (size_t j = 0; j < i; j++) {
                json_t *other = json_object_get(json_array_get(accounts, j), "name");
                if (json_is_string(other) && json_equal(other, name)) {
                    n += problem(out, "accounts[%zu].name \"%s\" is already used by accounts[%zu]",
                                 i, json_string_value(name), j);
                    break;
                }
            }
        }
        json_t *type = json_object_get(a, "type");
        if (type) {
            const char *t = json_string_value(type);
            bool ok = false;
            for (const char *const *c = account_types; t && *c; c++)
                if (strcmp(*c, t) == 0) ok = true;
            if (!ok)
                n += problem(out,
                             "accounts[%zu].type must be \"oauth\", \"apikey\" or \"provider\"", i);
        }
        static const char *const secrets[] = {"accessToken", "refreshToken", "apiKey", "authToken",
                                              NULL};
        for (const char *const *s = secrets; *s; s++) {
            json_t *v = json_object_get(a, *s);
            if (v && !json_is_string(v) && !json_is_null(v))
                n += problem(out, "accounts[%zu].%s must be a string (got %s)", i, *s,
                             json_type_name(v));
        }
        json_t *v = json_object_get(a, "expiresAt");
        if (v && !json_is_number(v) && !json_is_null(v))
            n += problem(out, "accounts[%zu].expiresAt must be a number (got %s)", i,
                         json_type_name(v));
        v = json_object_get(a, "enabled");
        if (v && !json_is_boolean(v))
            n += problem(out, "accounts[%zu].enabled must be true or false (got %s)", i,
                         json_type_name(v));
        v = json_object_get(a, "capUtilization");
        if (v && !json_is_number(v) && !json_is_null(v))
            n += problem(out, "accounts[%zu].capUtilization must be a number (got %s)", i,
                         json_type_name(v));
    }
    return n;
}

int options_validate(const json_t *cfg, char **err)
{
    buf_t out;
    buf_init(&out, 0);
    int n = 0;
    if (!json_is_object(cfg)) {
        n += problem(&out, "the file must hold a JSON object (got %s)",
                     cfg ? json_type_name(cfg) : "nothing");
    } else {
        for (int i = 0; i < options_count; i++) {
            const json_t *v = options_lookup(cfg, options_table[i].path);
            if (v) n += check_entry(&options_table[i], v, &out);
        }
        json_t *accounts = json_object_get(cfg, "accounts");
        if (json_is_array(accounts)) n += check_accounts(accounts, &out);
        json_t *providers = json_object_get(cfg, "providers");
        size_t i;
        json_t *p;
        if (json_is_array(providers)) {
            json_array_foreach(providers, i, p)
            {
                if (!json_is_object(p))
                    n += problem(&out, "providers[%zu] must be an object (got %s)", i,
                                 json_type_name(p));
            }
        }
    }
    if (err && n > 0) *err = buf_steal(&out, NULL);
    buf_free(&out);
    return n;
}

/* ------------------------------------------------------------- getters ---- */

/* The value to use for a numeric key, or false to use the default. */
static bool number_of(const options_entry_t *e, const json_t *v, double *out)
{
    if (!v || !json_is_number(v)) return false;
    double x = json_number_value(v);
    if (e->type == OPTIONS_INT && x != floor(x)) return false;
    if ((e->flags & OPTIONS_F_ZERO_DEFAULT) && x == 0) return false;
    if (e->flags & OPTIONS_F_CLAMP) {
        if ((e->flags & OPTIONS_F_MIN) && x < e->min) x = e->min;
        if ((e->flags & OPTIONS_F_MAX) && x > e->max) x = e->max;
    } else if (!in_range(e, x)) {
        return false;
    }
    *out = x;
    return true;
}

bool options_get_bool(const json_t *cfg, const char *path)
{
    const options_entry_t *e = entry_or_die(path, OPTIONS_BOOL);
    const json_t *v = options_lookup(cfg, path);
    if (json_is_boolean(v)) return json_is_true(v);
    return json_is_true(default_of(e));
}

bool options_get_int_nullable(const json_t *cfg, const char *path, int64_t *out)
{
    const options_entry_t *e = entry_or_die(path, OPTIONS_INT);
    const json_t *v = options_lookup(cfg, path);
    double x;
    if (v && json_is_null(v) && (e->flags & OPTIONS_F_NULLABLE)) return false;
    if (!number_of(e, v, &x)) {
        const json_t *d = default_of(e);
        if (json_is_null(d)) return false;
        x = json_number_value(d);
    }
    *out = (int64_t)x;
    return true;
}

int64_t options_get_int(const json_t *cfg, const char *path)
{
    int64_t n = 0;
    if (!options_get_int_nullable(cfg, path, &n)) return 0;
    return n;
}

double options_get_double(const json_t *cfg, const char *path)
{
    const options_entry_t *e = entry_or_die(path, OPTIONS_DOUBLE);
    double x;
    if (number_of(e, options_lookup(cfg, path), &x)) return x;
    return json_number_value(default_of(e));
}

const char *options_get_string(const json_t *cfg, const char *path)
{
    const options_entry_t *e = entry_or_die(path, OPTIONS_STRING);
    const json_t *v = options_lookup(cfg, path);
    if (json_is_string(v) && in_choices(e, json_string_value(v))) return json_string_value(v);
    if (v && json_is_null(v) && (e->flags & OPTIONS_F_NULLABLE)) return NULL;
    return json_string_value(default_of(e)); /* NULL for a null or generated default */
}

/* ---------------------------------------------------------------- docs ---- */

static const char *type_doc(const options_entry_t *e)
{
    bool nul = e->flags & OPTIONS_F_NULLABLE;
    switch (e->type) {
    case OPTIONS_BOOL:
        return nul ? "boolean or null" : "boolean";
    case OPTIONS_INT:
        return nul ? "integer or null" : "integer";
    case OPTIONS_DOUBLE:
        return nul ? "number or null" : "number";
    case OPTIONS_STRING:
        return nul ? "string or null" : "string";
    case OPTIONS_OBJECT:
        return "object";
    case OPTIONS_ARRAY:
        return "array";
    }
    return "?";
}

static void limits_doc(const options_entry_t *e, buf_t *b)
{
    if (e->type == OPTIONS_INT || e->type == OPTIONS_DOUBLE) {
        bool big = (e->flags & OPTIONS_F_MAX) && e->max >= MAX_COUNT;
        if ((e->flags & OPTIONS_F_MIN) && (e->flags & OPTIONS_F_MAX) && !big)
            buf_printf(b, "%g to %g", e->min, e->max);
        else if (e->flags & OPTIONS_F_MIN)
            buf_printf(b, "at least %g", e->min);
        if (e->flags & OPTIONS_F_CLAMP) buf_puts(b, " (smaller values read as the minimum)");
        if (e->flags & OPTIONS_F_ZERO_DEFAULT) buf_puts(b, "; 0 reads as the default");
    } else if (e->choices) {
        for (const char *const *c = e->choices; *c; c++)
            buf_printf(b, "%s`%s`", c == e->choices ? "" : " \\| ", *c);
    }
}

char *options_docs_markdown(void)
{
    buf_t b;
    buf_init(&b, 0);
    buf_puts(&b, "| Key | Type | Default | Limits | In a fresh file | Meaning |\n");
    buf_puts(&b, "|---|---|---|---|---|---|\n");
    for (int i = 0; i < options_count; i++) {
        const options_entry_t *e = &options_table[i];
        buf_printf(&b, "| `%s` | %s | ", e->path, type_doc(e));
        if (e->flags & OPTIONS_F_GENERATED)
            buf_puts(&b, "`\"mp-\"` + 32 random base64url characters");
        else if (e->type == OPTIONS_OBJECT && strcmp(e->def, "{}") != 0)
            buf_puts(&b, "see below");
        else
            buf_printf(&b, "`%s`", e->def);
        buf_puts(&b, " | ");
        limits_doc(e, &b);
        buf_printf(&b, " | %s | %s |\n", (e->flags & OPTIONS_F_FRESH) ? "yes" : "no", e->help);
    }
    for (int i = 0; i < options_count; i++) {
        const options_entry_t *e = &options_table[i];
        if (e->type != OPTIONS_OBJECT || strcmp(e->def, "{}") == 0) continue;
        char *pretty = json_dumps(default_of(e), JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        buf_printf(&b, "\nDefault of `%s`:\n\n```json\n%s\n```\n", e->path, pretty);
        free(pretty);
    }
    return buf_steal(&b, NULL);
}
