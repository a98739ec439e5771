#include "store/state.h"
#include "store/config.h"
#include "core/fileio.h"
#include "core/xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ records ---- */

static json_t *util_json(double u)
{
    return u >= 0 ? json_real(u) : json_null();
}

static json_t *ms_json(int64_t ms)
{
    return ms > 0 ? json_integer((json_int_t)ms) : json_null();
}

static json_t *count_json(int64_t v)
{
    return v >= 0 ? json_integer((json_int_t)v) : json_null();
}

json_t *state_quota_to_json(const quota_t *q)
{
    json_t *o = json_object();
    json_object_set_new(o, "unified5h", util_json(q->unified5h));
    json_object_set_new(o, "unified7d", util_json(q->unified7d));
    json_object_set_new(o, "unified5hReset", ms_json(q->unified5h_reset_ms));
    json_object_set_new(o, "unified7dReset", ms_json(q->unified7d_reset_ms));
    json_object_set_new(o, "unifiedStatus",
                        q->unified_status[0] ? json_string(q->unified_status) : json_null());
    json_t *scoped = json_object();
    for (int f = 1; f < QUOTA_FAMILIES; f++) {
        const struct quota_scoped *e = &q->scoped[f];
        if (e->utilization < 0) continue;
        json_t *x = json_object();
        json_object_set_new(x, "utilization", json_real(e->utilization));
        json_object_set_new(x, "resetAt", ms_json(e->reset_ms));
        json_object_set_new(x, "severity", e->severity[0] ? json_string(e->severity) : json_null());
        json_object_set_new(x, "isActive", json_boolean(e->active));
        if (e->reactive) json_object_set_new(x, "reactive", json_true());
        json_object_set_new(scoped, quota_family_name((quota_family_t)f), x);
    }
    json_object_set_new(o, "scopedWeekly", scoped);
    json_object_set_new(o, "tokensLimit", count_json(q->tokens_limit));
    json_object_set_new(o, "tokensRemaining", count_json(q->tokens_remaining));
    json_object_set_new(o, "requestsLimit", count_json(q->requests_limit));
    json_object_set_new(o, "requestsRemaining", count_json(q->requests_remaining));
    json_object_set_new(o, "resetsAt", ms_json(q->resets_at_ms));
    json_object_set_new(o, "weeklyAbsent", json_boolean(q->weekly_absent));
    json_object_set_new(o, "providerSes", util_json(q->provider_ses));
    json_object_set_new(o, "providerSesReset", ms_json(q->provider_ses_reset_ms));
    json_object_set_new(o, "providerWk", util_json(q->provider_wk));
    json_object_set_new(o, "providerWkReset", ms_json(q->provider_wk_reset_ms));
    json_object_set_new(o, "providerQuotaSource",
                        q->provider_source[0] ? json_string(q->provider_source) : json_null());
    json_object_set_new(o, "lastProbeOkAt", ms_json(q->last_probe_ok_ms));
    return o;
}

static double get_util(const json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    if (!json_is_number(v)) return QUOTA_UNKNOWN;
    double d = json_number_value(v);
    return d < 0 ? 0 : d > 1 ? 1 : d;
}

/* A time as a ms number, a seconds number, or a date string (older writers). */
static int64_t get_ms(const json_t *o, const char *k, int64_t now)
{
    json_t *v = json_object_get(o, k);
    if (json_is_number(v)) {
        double d = json_number_value(v);
        if (d <= 0) return 0;
        return d < 1e12 ? (int64_t)(d * 1000) : (int64_t)d;
    }
    if (json_is_string(v)) return quota_parse_reset(json_string_value(v), now);
    return 0;
}

static int64_t get_count(const json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_number(v) && json_number_value(v) >= 0 ? (int64_t)json_number_value(v) : -1;
}

static void get_str(const json_t *o, const char *k, char *out, size_t len)
{
    json_t *v = json_object_get(o, k);
    snprintf(out, len, "%s", json_is_string(v) ? json_string_value(v) : "");
}

/* A utilization is only worth keeping with a reset in the future (§2.8, Part A4). */
static void keep_window(double *u, int64_t *reset, double val, int64_t at, int64_t now)
{
    if (val >= 0 && at > now) {
        *u = val;
        *reset = at;
    }
}

void state_quota_from_json(const json_t *obj, quota_t *q, int64_t now)
{
    quota_init(q);
    if (!json_is_object(obj)) return;
    keep_window(&q->unified5h, &q->unified5h_reset_ms, get_util(obj, "unified5h"),
                get_ms(obj, "unified5hReset", now), now);
    keep_window(&q->unified7d, &q->unified7d_reset_ms, get_util(obj, "unified7d"),
                get_ms(obj, "unified7dReset", now), now);
    /* A status belongs to the windows it describes. */
    if (q->unified5h >= 0 || q->unified7d >= 0)
        get_str(obj, "unifiedStatus", q->unified_status, sizeof q->unified_status);
    json_t *scoped = json_object_get(obj, "scopedWeekly");
    const char *fam;
    json_t *e;
    json_object_foreach(scoped, fam, e)
    {
        quota_family_t f = quota_family_by_name(fam);
        double u = get_util(e, "utilization");
        int64_t at = get_ms(e, "resetAt", now);
        if (f == QUOTA_FAMILY_NONE || u < 0 || at <= now) continue;
        json_t *active = json_object_get(e, "isActive");
        quota_set_scoped(q, f, u, at, json_is_true(json_object_get(e, "reactive")));
        q->scoped[f].active = !json_is_false(active);
        get_str(e, "severity", q->scoped[f].severity, sizeof q->scoped[f].severity);
    }
    int64_t resets = get_ms(obj, "resetsAt", now);
    if (resets > now) {
        q->tokens_limit = get_count(obj, "tokensLimit");
        q->tokens_remaining = get_count(obj, "tokensRemaining");
        q->requests_limit = get_count(obj, "requestsLimit");
        q->requests_remaining = get_count(obj, "requestsRemaining");
        q->resets_at_ms = resets;
    }
    q->weekly_absent = json_is_true(json_object_get(obj, "weeklyAbsent"));
    keep_window(&q->provider_ses, &q->provider_ses_reset_ms, get_util(obj, "providerSes"),
                get_ms(obj, "providerSesReset", now), now);
    keep_window(&q->provider_wk, &q->provider_wk_reset_ms, get_util(obj, "providerWk"),
                get_ms(obj, "providerWkReset", now), now);
    get_str(obj, "providerQuotaSource", q->provider_source, sizeof q->provider_source);
    q->last_probe_ok_ms = get_ms(obj, "lastProbeOkAt", now);
}

json_t *state_quota_array(const sched_t *s)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < s->n; i++) {
        const account_t *a = &s->accts[i];
        json_t *e = json_object();
        json_object_set_new(e, "accountUuid", a->uuid ? json_string(a->uuid) : json_null());
        json_object_set_new(e, "name", json_string(a->name ? a->name : ""));
        json_object_set_new(e, "quota", state_quota_to_json(&a->quota));
        json_array_append_new(arr, e);
    }
    return arr;
}

/* The account an entry belongs to: by UUID when both have one, else by name. */
static int match(const sched_t *s, const json_t *entry)
{
    const char *uuid = json_string_value(json_object_get(entry, "accountUuid"));
    const char *name = json_string_value(json_object_get(entry, "name"));
    if (uuid && *uuid)
        for (size_t i = 0; i < s->n; i++)
            if (s->accts[i].uuid && strcmp(s->accts[i].uuid, uuid) == 0) return (int)i;
    for (size_t i = 0; name && i < s->n; i++) {
        const account_t *a = &s->accts[i];
        /* Both have UUIDs and they differ: a different account that took the name. */
        if (uuid && *uuid && a->uuid && *a->uuid) continue;
        if (a->name && strcmp(a->name, name) == 0) return (int)i;
    }
    return -1;
}

int state_apply(sched_t *s, const json_t *doc, int64_t now)
{
    json_t *arr = json_object_get(doc, "quota");
    if (!json_is_array(arr)) return 0;
    int restored = 0;
    size_t k;
    json_t *entry;
    json_array_foreach(arr, k, entry)
    {
        if (!json_is_object(entry)) continue;
        int i = match(s, entry);
        if (i < 0) continue;
        quota_t q;
        state_quota_from_json(json_object_get(entry, "quota"), &q, now);
        /* Counters are runtime, not state. */
        q.total_requests = s->accts[i].quota.total_requests;
        s->accts[i].quota = q;
        restored++;
    }
    return restored;
}

/* ---------------------------------------------------------------- files ---- */

static int read_doc(const char *path, json_t **out, char **err)
{
    char *data = NULL;
    size_t len = 0;
    *out = NULL;
    int rc = fileio_read(path, &data, &len, 0);
    if (rc == -ENOENT) return 0;
    if (rc < 0) {
        if (err) *err = xasprintf("cannot read state at %s: %s", path, strerror(-rc));
        return -1;
    }
    json_error_t jerr;
    json_t *doc = json_loadb(data, len, 0, &jerr);
    free(data);
    if (!json_is_object(doc)) {
        json_decref(doc);
        if (err) *err = xasprintf("state at %s is not valid JSON (ignored): %s", path, jerr.text);
        return -1;
    }
    *out = doc;
    return 0;
}

static int64_t doc_generation(const json_t *doc)
{
    json_t *g = json_object_get(doc, "_generation");
    return json_is_number(g) ? (int64_t)json_number_value(g) : 0;
}

int state_load(const char *path, sched_t *s, int64_t now, int64_t *generation, char **err)
{
    if (err) *err = NULL;
    if (generation) *generation = 0;
    json_t *doc;
    if (read_doc(path, &doc, err) < 0 || !doc) return 0;
    if (generation) *generation = doc_generation(doc);
    int n = state_apply(s, doc, now);
    json_decref(doc);
    return n;
}

int state_save(const char *path, const sched_t *s, int64_t *generation, char **err)
{
    return state_save_quota(path, state_quota_array(s), generation, err);
}

int state_save_quota(const char *path, json_t *quota, int64_t *generation, char **err)
{
    fileio_lock_t lk;
    int rc = fileio_lock(path, &lk);
    if (rc < 0) {
        json_decref(quota);
        *err = xasprintf("cannot lock state at %s: %s", path, strerror(-rc));
        return -1;
    }
    json_t *doc = NULL;
    char *ignored = NULL;
    /* A corrupt file is replaced: it held nothing we could use. */
    if (read_doc(path, &doc, &ignored) < 0) doc = NULL;
    free(ignored);
    if (!doc) doc = json_object();
    int64_t disk = doc_generation(doc);
    if (disk > *generation) {
        *generation = disk;
        json_decref(quota);
        json_decref(doc);
        fileio_unlock(&lk);
        return STATE_STALE;
    }
    json_object_set_new(doc, "quota", quota);
    if (!json_object_get(doc, "runtimeProviders"))
        json_object_set_new(doc, "runtimeProviders", json_array());
    int64_t next = (disk > *generation ? disk : *generation) + 1;
    json_object_set_new(doc, "_generation", json_integer((json_int_t)next));
    char *text = config_dump(doc);
    rc = fileio_write_atomic(path, text, strlen(text));
    free(text);
    json_decref(doc);
    fileio_unlock(&lk);
    if (rc < 0) {
        *err = xasprintf("cannot write state at %s: %s", path, strerror(-rc));
        return -1;
    }
    *generation = next;
    return 0;
}
