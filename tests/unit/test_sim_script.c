/* Script parsing (every section, clear errors) and merging into a live world. */
#include "sim/script.h"

#include "core/clock.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define T0 1700000000000LL

static const char *full =
    "{\"seed\":42,\"timeScale\":2,"
    "\"response\":{\"text\":\"Hi there\",\"deltas\":4,\"deltaDelayMs\":5,"
    "\"firstByteDelayMs\":6,\"model\":null},"
    "\"accounts\":["
    "{\"name\":\"max-a\",\"type\":\"oauth\",\"accessToken\":\"sk-ant-oat01-a\","
    "\"refreshToken\":\"sk-ant-ort01-a\",\"email\":\"a@example.com\",\"tier\":\"pro\","
    "\"budget5h\":1000,\"budget7d\":10000,\"used5h\":0.5,\"tokenTtlSec\":60},"
    "{\"name\":\"key-1\",\"type\":\"apikey\",\"apiKey\":\"sk-ant-api03-k1\","
    "\"tokensPerMinute\":500,\"requestsPerMinute\":5}],"
    "\"faults\":[{\"kind\":\"overloaded\",\"account\":\"max-a\",\"count\":1}]}";

static char *load_err(sim_world_t *w, const char *json)
{
    char *err = NULL;
    cr_assert_eq(sim_script_load(w, json, strlen(json), T0, &err), -1, "accepted %s", json);
    cr_assert_not_null(err);
    return err;
}

Test(sim_script, parse_and_apply_full)
{
    sim_world_t w;
    sim_world_init(&w, T0);
    char *err = NULL;
    cr_assert_eq(sim_script_load(&w, full, strlen(full), T0, &err), 0, "%s", err);
    cr_assert_eq(w.seed, 42);
    cr_assert_eq(w.quota.scale, 2.0);
    const sim_respond_cfg_t *c = sim_respond_cfg(w.resp);
    cr_assert_str_eq(c->text, "Hi there");
    cr_assert_eq(c->deltas, 4);
    cr_assert_eq(c->delta_delay_ms, 5);
    cr_assert_eq(c->first_byte_delay_ms, 6);
    cr_assert_null(c->model);
    sim_account_t *a = sim_quota_find(&w.quota, "max-a");
    cr_assert_not_null(a);
    cr_assert_eq(a->type, SIM_ACCT_OAUTH);
    cr_assert_str_eq(a->tier, "pro");
    cr_assert_eq(a->w5h.budget, 1000);
    cr_assert_eq(a->w5h.used, 500);
    cr_assert_eq(a->w5h.reset_ms, T0 + SIM_5H_MS);
    cr_assert_eq(a->w7d.reset_ms, 0);
    cr_assert_eq(a->token_ttl_sec, 60);
    cr_assert_eq(sim_oauth_lookup(w.oauth, "sk-ant-oat01-a", 14, T0), a);
    cr_assert_eq(sim_oauth_redeem_refresh(w.oauth, "sk-ant-ort01-a"), a);
    sim_account_t *k = sim_quota_find(&w.quota, "key-1");
    cr_assert_eq(k->type, SIM_ACCT_APIKEY);
    cr_assert_eq(k->tok.budget, 500);
    cr_assert_eq(k->req.budget, 5);
    cr_assert_eq(sim_oauth_lookup(w.oauth, "sk-ant-api03-k1", 15, T0), k);
    cr_assert_eq(w.faults.n, 1);
    cr_assert_str_eq(w.faults.v[0].account, "max-a");
    sim_world_free(&w);
}

Test(sim_script, merge_updates_by_name)
{
    sim_world_t w;
    sim_world_init(&w, T0);
    char *err = NULL;
    cr_assert_eq(sim_script_load(&w, full, strlen(full), T0, &err), 0, "%s", err);
    const char *upd = "{\"accounts\":[{\"name\":\"max-a\",\"accessToken\":\"sk-ant-oat01-a2\","
                      "\"used5h\":0},{\"name\":\"max-b\",\"budget7d\":7}],"
                      "\"response\":{\"deltas\":2,\"model\":\"claude-x\"}}";
    cr_assert_eq(sim_script_load(&w, upd, strlen(upd), T0 + 1000, &err), 0, "%s", err);
    sim_account_t *a = sim_quota_find(&w.quota, "max-a");
    cr_assert_str_eq(a->tier, "pro"); /* untouched keys stay */
    cr_assert_eq(a->w5h.used, 0);
    cr_assert_eq(a->w5h.reset_ms, 0);
    cr_assert_null(sim_oauth_lookup(w.oauth, "sk-ant-oat01-a", 14, T0));
    cr_assert_eq(sim_oauth_lookup(w.oauth, "sk-ant-oat01-a2", 15, T0), a);
    sim_account_t *b = sim_quota_find(&w.quota, "max-b");
    cr_assert_not_null(b);
    cr_assert_eq(b->type, SIM_ACCT_OAUTH);
    cr_assert_eq(b->w7d.budget, 7);
    cr_assert_eq(w.quota.n, 3);
    const sim_respond_cfg_t *c = sim_respond_cfg(w.resp);
    cr_assert_str_eq(c->text, "Hi there");
    cr_assert_eq(c->deltas, 2);
    cr_assert_eq(c->delta_delay_ms, 5);
    cr_assert_str_eq(c->model, "claude-x");
    /* Faults are kept unless "faults" is present, and replaced when it is. */
    cr_assert_eq(w.faults.n, 1);
    const char *nof = "{\"faults\":[]}";
    cr_assert_eq(sim_script_load(&w, nof, strlen(nof), T0, &err), 0, "%s", err);
    cr_assert_eq(w.faults.n, 0);
    sim_world_free(&w);
}

Test(sim_script, fixed_seed_and_scale_win)
{
    sim_world_t w;
    sim_world_init(&w, T0);
    w.seed = 7;
    w.seed_fixed = true;
    w.scale_fixed = true;
    char *err = NULL;
    cr_assert_eq(sim_script_load(&w, full, strlen(full), T0, &err), 0, "%s", err);
    cr_assert_eq(w.seed, 7);
    cr_assert_eq(w.quota.scale, 1.0);
    sim_world_free(&w);
}

Test(sim_script, errors_are_clear_and_change_nothing)
{
    sim_world_t w;
    sim_world_init(&w, T0);
    char *err = NULL;
    cr_assert_eq(sim_script_load(&w, full, strlen(full), T0, &err), 0, "%s", err);
    struct {
        const char *json, *want;
    } cases[] = {
        {"{", "not valid JSON"},
        {"[]", "must be a JSON object"},
        {"{\"acounts\":[]}", "unknown key \"acounts\""},
        {"{\"accounts\":[{\"type\":\"oauth\"}]}", "\"name\" is required"},
        {"{\"accounts\":[{\"name\":\"x\",\"type\":\"bearer\"}]}", "\"type\" must be"},
        {"{\"accounts\":[{\"name\":\"x\",\"budget5h\":-1}]}", "budget5h"},
        {"{\"accounts\":[{\"name\":\"x\",\"tier\":\"gold\"}]}", "tier"},
        {"{\"accounts\":[{\"name\":\"x\"},{\"name\":\"x\"}]}", "appears twice"},
        {"{\"accounts\":[{\"name\":\"max-a\",\"type\":\"apikey\"}]}", "cannot change its type"},
        {"{\"accounts\":[{\"name\":\"max-a\",\"apiKey\":\"k\"}]}", "no \"apiKey\""},
        {"{\"response\":{\"deltas\":\"many\"}}", "deltas"},
        {"{\"response\":{\"txt\":\"a\"}}", "unknown key \"txt\" in response"},
        {"{\"timeScale\":0}", "timeScale"},
        {"{\"faults\":[{\"kind\":\"explode\"}]}", "faults[0]: unknown fault kind"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *e = load_err(&w, cases[i].json);
        cr_assert(strstr(e, cases[i].want), "%s → %s", cases[i].json, e);
        free(e);
    }
    /* Nothing changed. */
    cr_assert_eq(w.quota.n, 2);
    cr_assert_eq(w.faults.n, 1);
    cr_assert_eq(sim_quota_find(&w.quota, "max-a")->type, SIM_ACCT_OAUTH);
    sim_world_free(&w);
}

Test(sim_script, apikey_inferred)
{
    sim_world_t w;
    sim_world_init(&w, T0);
    char *err = NULL;
    const char *s = "{\"accounts\":[{\"name\":\"k\",\"apiKey\":\"sk-ant-api03-x\"}]}";
    cr_assert_eq(sim_script_load(&w, s, strlen(s), T0, &err), 0, "%s", err);
    cr_assert_eq(sim_quota_find(&w.quota, "k")->type, SIM_ACCT_APIKEY);
    sim_world_free(&w);
}
