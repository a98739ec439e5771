#include "sim/script.h"

#include "core/xalloc.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void sim_world_init(sim_world_t *w, int64_t real_now)
{
    memset(w, 0, sizeof *w);
    sim_quota_init(&w->quota, real_now, 1.0);
    w->oauth = sim_oauth_new();
    sim_respond_cfg_t cfg;
    sim_respond_cfg_defaults(&cfg);
    w->resp = sim_respond_new(&cfg);
    sim_respond_cfg_clear(&cfg);
}

void sim_world_free(sim_world_t *w)
{
    sim_quota_free(&w->quota);
    sim_oauth_free(w->oauth);
    sim_respond_free(w->resp);
    sim_faults_free(&w->faults);
    memset(w, 0, sizeof *w);
}

/* ---- parse ------------------------------------------------------------------------------- */

static bool only_keys(const json_t *obj, const char *const *known, const char *where, char **err)
{
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)obj, key, val)
    {
        bool ok = false;
        for (int i = 0; known[i]; i++)
            if (strcmp(known[i], key) == 0) ok = true;
        if (!ok) {
            *err = xasprintf("unknown key \"%s\" in %s", key, where);
            return false;
        }
    }
    return true;
}

static int opt_int(const json_t *obj, const char *key, int64_t min, int64_t max, int64_t *out,
                   const char *where, char **err)
{
    const json_t *v = json_object_get(obj, key);
    if (!v) return 0;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        *err = xasprintf("%s: \"%s\" must be an integer from %lld to %lld", where, key,
                         (long long)min, (long long)max);
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}

static int opt_str(const json_t *obj, const char *key, char **out, const char *where, char **err)
{
    const json_t *v = json_object_get(obj, key);
    if (!v) return 0;
    if (!json_is_string(v) || !*json_string_value(v)) {
        *err = xasprintf("%s: \"%s\" must be a non-empty string", where, key);
        return -1;
    }
    *out = xstrdup(json_string_value(v));
    return 0;
}

static int opt_util(const json_t *obj, const char *key, double *out, const char *where, char **err)
{
    const json_t *v = json_object_get(obj, key);
    if (!v) return 0;
    if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 100) {
        *err = xasprintf("%s: \"%s\" must be a utilization from 0 to 1 (or more)", where, key);
        return -1;
    }
    *out = json_number_value(v);
    return 0;
}

static int parse_account(const json_t *o, size_t idx, sim_acct_spec_t *a, char **err)
{
    static const char *const known[] = {
        "name",   "type",   "accessToken", "refreshToken",    "apiKey",
        "uuid",   "email",  "tier",        "budget5h",        "budget7d",
        "used5h", "used7d", "tokenTtlSec", "tokensPerMinute", "requestsPerMinute",
        NULL};
    memset(a, 0, sizeof *a);
    a->type = -1;
    a->budget5h = a->budget7d = a->tpm = a->rpm = a->ttl_sec = -1;
    a->used5h = a->used7d = -1;
    char where[64];
    snprintf(where, sizeof where, "accounts[%zu]", idx);
    if (!json_is_object(o)) {
        *err = xasprintf("%s must be an object", where);
        return -1;
    }
    if (!only_keys(o, known, where, err)) return -1;
    if (opt_str(o, "name", &a->name, where, err)) return -1;
    if (!a->name) {
        *err = xasprintf("%s: \"name\" is required", where);
        return -1;
    }
    snprintf(where, sizeof where, "account \"%.40s\"", a->name);
    const json_t *t = json_object_get(o, "type");
    if (t) {
        const char *ts = json_is_string(t) ? json_string_value(t) : "";
        if (strcmp(ts, "oauth") == 0)
            a->type = SIM_ACCT_OAUTH;
        else if (strcmp(ts, "apikey") == 0)
            a->type = SIM_ACCT_APIKEY;
        else {
            *err = xasprintf("%s: \"type\" must be \"oauth\" or \"apikey\"", where);
            return -1;
        }
    }
    const int64_t big = (int64_t)1 << 50;
    if (opt_str(o, "accessToken", &a->access_token, where, err) ||
        opt_str(o, "refreshToken", &a->refresh_token, where, err) ||
        opt_str(o, "apiKey", &a->api_key, where, err) || opt_str(o, "uuid", &a->uuid, where, err) ||
        opt_str(o, "email", &a->email, where, err) || opt_str(o, "tier", &a->tier, where, err) ||
        opt_int(o, "budget5h", 0, big, &a->budget5h, where, err) ||
        opt_int(o, "budget7d", 0, big, &a->budget7d, where, err) ||
        opt_int(o, "tokensPerMinute", 0, big, &a->tpm, where, err) ||
        opt_int(o, "requestsPerMinute", 0, big, &a->rpm, where, err) ||
        opt_int(o, "tokenTtlSec", 1, big, &a->ttl_sec, where, err) ||
        opt_util(o, "used5h", &a->used5h, where, err) ||
        opt_util(o, "used7d", &a->used7d, where, err))
        return -1;
    if (a->tier && strcmp(a->tier, "max") && strcmp(a->tier, "pro") && strcmp(a->tier, "team")) {
        *err = xasprintf("%s: \"tier\" must be \"max\", \"pro\" or \"team\"", where);
        return -1;
    }
    if (a->type == SIM_ACCT_OAUTH && a->api_key) {
        *err = xasprintf("%s: an oauth account has no \"apiKey\"", where);
        return -1;
    }
    if (a->type == SIM_ACCT_APIKEY && (a->access_token || a->refresh_token)) {
        *err = xasprintf("%s: an apikey account has no OAuth tokens", where);
        return -1;
    }
    return 0;
}

static void spec_clear(sim_acct_spec_t *a)
{
    free(a->name);
    free(a->api_key);
    free(a->access_token);
    free(a->refresh_token);
    free(a->uuid);
    free(a->email);
    free(a->tier);
}

void sim_script_free(sim_script_t *s)
{
    free(s->text);
    free(s->model);
    for (size_t i = 0; i < s->naccts; i++)
        spec_clear(&s->accts[i]);
    free(s->accts);
    for (size_t i = 0; i < s->nfaults; i++)
        sim_fault_clear(&s->faults[i]);
    free(s->faults);
    memset(s, 0, sizeof *s);
}

static int parse_response(const json_t *r, sim_script_t *s, char **err)
{
    static const char *const known[] = {"text",  "deltas", "deltaDelayMs", "firstByteDelayMs",
                                        "model", NULL};
    if (!json_is_object(r)) {
        *err = xstrdup("\"response\" must be an object");
        return -1;
    }
    if (!only_keys(r, known, "response", err)) return -1;
    const json_t *t = json_object_get(r, "text");
    if (t) {
        if (!json_is_string(t)) {
            *err = xstrdup("response: \"text\" must be a string");
            return -1;
        }
        s->text = xstrdup(json_string_value(t));
    }
    const json_t *m = json_object_get(r, "model");
    if (m && json_is_null(m))
        s->model_null = true;
    else if (opt_str(r, "model", &s->model, "response", err))
        return -1;
    if (opt_int(r, "deltas", 0, SIM_MAX_DELTAS, &s->deltas, "response", err) ||
        opt_int(r, "deltaDelayMs", 0, 3600000, &s->delta_delay_ms, "response", err) ||
        opt_int(r, "firstByteDelayMs", 0, 3600000, &s->first_byte_delay_ms, "response", err))
        return -1;
    return 0;
}

int sim_script_parse(const char *json, size_t n, sim_script_t *s, char **err)
{
    static const char *const known[] = {"seed",     "timeScale", "response",
                                        "accounts", "faults",    NULL};
    memset(s, 0, sizeof *s);
    s->deltas = s->delta_delay_ms = s->first_byte_delay_ms = -1;
    json_error_t je;
    json_t *root = json_loadb(json, n, 0, &je);
    if (!root) {
        *err = xasprintf("script is not valid JSON (line %d, column %d): %s", je.line, je.column,
                         je.text);
        return -1;
    }
    int rc = -1;
    if (!json_is_object(root)) {
        *err = xstrdup("script must be a JSON object");
        goto out;
    }
    if (!only_keys(root, known, "script", err)) goto out;
    const json_t *v = json_object_get(root, "seed");
    if (v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0) {
            *err = xstrdup("\"seed\" must be a non-negative integer");
            goto out;
        }
        s->has_seed = true;
        s->seed = (uint64_t)json_integer_value(v);
    }
    v = json_object_get(root, "timeScale");
    if (v) {
        if (!json_is_number(v) || !(json_number_value(v) > 0) || json_number_value(v) > 1e7) {
            *err = xstrdup("\"timeScale\" must be a number > 0");
            goto out;
        }
        s->has_scale = true;
        s->scale = json_number_value(v);
    }
    v = json_object_get(root, "response");
    if (v && parse_response(v, s, err)) goto out;
    v = json_object_get(root, "accounts");
    if (v) {
        if (!json_is_array(v)) {
            *err = xstrdup("\"accounts\" must be an array");
            goto out;
        }
        s->accts = xcalloc(json_array_size(v) + 1, sizeof *s->accts);
        for (size_t i = 0; i < json_array_size(v); i++) {
            int r = parse_account(json_array_get(v, i), i, &s->accts[i], err);
            s->naccts = i + 1;
            if (r) goto out;
            for (size_t j = 0; j < i; j++) {
                if (strcmp(s->accts[j].name, s->accts[i].name) == 0) {
                    *err = xasprintf("account \"%s\" appears twice", s->accts[i].name);
                    goto out;
                }
            }
        }
    }
    v = json_object_get(root, "faults");
    if (v) {
        if (!json_is_array(v)) {
            *err = xstrdup("\"faults\" must be an array");
            goto out;
        }
        s->has_faults = true;
        s->faults = xcalloc(json_array_size(v) + 1, sizeof *s->faults);
        for (size_t i = 0; i < json_array_size(v); i++) {
            char *ferr = NULL;
            if (sim_fault_parse(json_array_get(v, i), &s->faults[i], &ferr)) {
                *err = xasprintf("faults[%zu]: %s", i, ferr);
                free(ferr);
                goto out;
            }
            s->nfaults = i + 1;
        }
    }
    rc = 0;
out:
    json_decref(root);
    if (rc) sim_script_free(s);
    return rc;
}

/* ---- apply ------------------------------------------------------------------------------- */

static void set_str(char **dst, char **src)
{
    if (!*src) return;
    free(*dst);
    *dst = *src;
    *src = NULL;
}

static void apply_account(sim_world_t *w, sim_acct_spec_t *s, int64_t sim_now)
{
    sim_account_t *a = sim_quota_find(&w->quota, s->name);
    if (!a) {
        sim_acct_type_t type = s->type >= 0 ? (sim_acct_type_t)s->type
                               : s->api_key ? SIM_ACCT_APIKEY
                                            : SIM_ACCT_OAUTH;
        a = sim_quota_add(&w->quota, s->name, type);
    }
    if (s->api_key) {
        if (a->api_key) sim_oauth_remove_credential(w->oauth, a->api_key);
        sim_oauth_add_credential(w->oauth, s->api_key, a, 0);
        set_str(&a->api_key, &s->api_key);
    }
    if (s->access_token) {
        if (a->access_token) sim_oauth_remove_credential(w->oauth, a->access_token);
        sim_oauth_add_credential(w->oauth, s->access_token, a, 0);
        set_str(&a->access_token, &s->access_token);
    }
    if (s->refresh_token) {
        sim_oauth_add_refresh(w->oauth, s->refresh_token, a);
        set_str(&a->refresh_token, &s->refresh_token);
    }
    set_str(&a->uuid, &s->uuid);
    set_str(&a->email, &s->email);
    set_str(&a->tier, &s->tier);
    if (s->ttl_sec > 0) a->token_ttl_sec = s->ttl_sec;
    if (s->budget5h >= 0) a->w5h.budget = s->budget5h;
    if (s->budget7d >= 0) a->w7d.budget = s->budget7d;
    if (s->tpm >= 0) a->tok.budget = s->tpm;
    if (s->rpm >= 0) a->req.budget = s->rpm;
    if (s->used5h >= 0) sim_quota_set_used(&a->w5h, s->used5h, sim_now);
    if (s->used7d >= 0) sim_quota_set_used(&a->w7d, s->used7d, sim_now);
}

int sim_script_apply(sim_world_t *w, sim_script_t *s, int64_t real_now, char **err)
{
    /* Check conflicts first so a rejected script changes nothing. */
    for (size_t i = 0; i < s->naccts; i++) {
        const sim_account_t *a = sim_quota_find(&w->quota, s->accts[i].name);
        if (a && s->accts[i].type >= 0 && (int)a->type != s->accts[i].type) {
            *err = xasprintf("account \"%s\" cannot change its type", a->name);
            return -1;
        }
        int type = a ? (int)a->type : s->accts[i].type;
        if (type == SIM_ACCT_OAUTH && s->accts[i].api_key) {
            *err =
                xasprintf("account \"%s\": an oauth account has no \"apiKey\"", s->accts[i].name);
            return -1;
        }
        if (type == SIM_ACCT_APIKEY && (s->accts[i].access_token || s->accts[i].refresh_token)) {
            *err = xasprintf("account \"%s\": an apikey account has no OAuth tokens",
                             s->accts[i].name);
            return -1;
        }
    }
    if (s->has_seed && !w->seed_fixed) w->seed = s->seed;
    if (s->has_scale && !w->scale_fixed) sim_quota_set_scale(&w->quota, s->scale, real_now);
    if (s->text || s->model || s->model_null || s->deltas >= 0 || s->delta_delay_ms >= 0 ||
        s->first_byte_delay_ms >= 0) {
        const sim_respond_cfg_t *cur = sim_respond_cfg(w->resp);
        sim_respond_cfg_t cfg = *cur;
        if (s->text) cfg.text = s->text;
        if (s->model) cfg.model = s->model;
        if (s->model_null) cfg.model = NULL;
        if (s->deltas >= 0) cfg.deltas = s->deltas;
        if (s->delta_delay_ms >= 0) cfg.delta_delay_ms = s->delta_delay_ms;
        if (s->first_byte_delay_ms >= 0) cfg.first_byte_delay_ms = s->first_byte_delay_ms;
        sim_respond_t *nr = sim_respond_new(&cfg); /* copies the strings */
        sim_respond_free(w->resp);
        w->resp = nr;
    }
    int64_t sim_now = sim_quota_now(&w->quota, real_now);
    for (size_t i = 0; i < s->naccts; i++)
        apply_account(w, &s->accts[i], sim_now);
    if (s->has_faults) {
        sim_faults_set(&w->faults, s->faults, s->nfaults, w->seed);
        s->faults = NULL;
        s->nfaults = 0;
    }
    return 0;
}

int sim_script_load(sim_world_t *w, const char *json, size_t n, int64_t real_now, char **err)
{
    sim_script_t s;
    if (sim_script_parse(json, n, &s, err)) return -1;
    int rc = sim_script_apply(w, &s, real_now, err);
    sim_script_free(&s);
    return rc;
}
