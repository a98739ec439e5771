/* Fault matching: account and path filters, skip/count, deterministic probability. */
#include "sim/fault.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static sim_faults_t load(const char *json, uint64_t seed)
{
    json_error_t je;
    json_t *arr = json_loads(json, 0, &je);
    cr_assert_not_null(arr, "%s", je.text);
    size_t n = json_array_size(arr);
    sim_fault_t *v = calloc(n + 1, sizeof *v);
    for (size_t i = 0; i < n; i++) {
        char *err = NULL;
        cr_assert_eq(sim_fault_parse(json_array_get(arr, i), &v[i], &err), 0, "%s", err);
    }
    json_decref(arr);
    sim_faults_t fs = {0};
    sim_faults_set(&fs, v, n, seed);
    return fs;
}

static char *parse_err(const char *json)
{
    json_t *o = json_loads(json, 0, NULL);
    cr_assert_not_null(o);
    sim_fault_t f;
    char *err = NULL;
    cr_assert_eq(sim_fault_parse(o, &f, &err), -1);
    json_decref(o);
    return err;
}

Test(sim_fault, defaults_per_kind)
{
    sim_faults_t fs = load("[{\"kind\":\"rate_limit\"},{\"kind\":\"server_throttle\"},"
                           "{\"kind\":\"overloaded\"},{\"kind\":\"status\",\"status\":503},"
                           "{\"kind\":\"unauthorized\"},{\"kind\":\"forbidden\"},"
                           "{\"kind\":\"stall\"}]",
                           1);
    cr_assert_eq(sim_fault_status(&fs.v[0]), 429);
    cr_assert_str_eq(sim_fault_error_type(&fs.v[0]), "rate_limit_error");
    cr_assert_eq(fs.v[0].retry_after, 7);
    cr_assert_str_eq(sim_fault_message(&fs.v[1], false),
                     "Anthropic is temporarily limiting requests. Please try again later.");
    cr_assert_eq(sim_fault_status(&fs.v[2]), 529);
    cr_assert_str_eq(sim_fault_error_type(&fs.v[2]), "overloaded_error");
    cr_assert_eq(fs.v[2].retry_after, -1);
    cr_assert_eq(sim_fault_status(&fs.v[3]), 503);
    cr_assert_str_eq(sim_fault_error_type(&fs.v[3]), "api_error");
    cr_assert_str_eq(sim_fault_message(&fs.v[4], false), "OAuth token has expired");
    cr_assert_str_eq(sim_fault_message(&fs.v[4], true), "invalid x-api-key");
    cr_assert_eq(sim_fault_status(&fs.v[5]), 403);
    cr_assert(sim_fault_is_error(fs.v[5].kind));
    cr_assert_not(sim_fault_is_error(fs.v[6].kind));
    cr_assert_eq(fs.v[6].stall_ms, -1);
    cr_assert_str_eq(fs.v[6].path, "/v1/messages");
    sim_faults_free(&fs);
}

Test(sim_fault, account_and_path_filters)
{
    sim_faults_t fs = load("[{\"kind\":\"overloaded\",\"account\":\"a\"},"
                           "{\"kind\":\"forbidden\",\"path\":\"/api/oauth/usage\"}]",
                           1);
    cr_assert_null(sim_faults_match(&fs, "b", "/v1/messages"));
    cr_assert_null(sim_faults_match(&fs, NULL, "/v1/messages"));
    sim_fault_t *f = sim_faults_match(&fs, "a", "/v1/messages?beta=true");
    cr_assert_not_null(f);
    cr_assert_eq(f->kind, SIM_FAULT_OVERLOADED);
    cr_assert_eq(sim_faults_match(&fs, "a", "/v1/messages/count_tokens"), &fs.v[0]);
    cr_assert_eq(sim_faults_match(&fs, "b", "/api/oauth/usage"), &fs.v[1]);
    cr_assert_null(sim_faults_match(&fs, "b", "/api/oauth/profile"));
    sim_faults_free(&fs);
}

Test(sim_fault, skip_and_count)
{
    sim_faults_t fs = load("[{\"kind\":\"rate_limit\",\"skip\":2,\"count\":3}]", 1);
    int fired[8] = {0};
    for (int i = 0; i < 8; i++)
        fired[i] = sim_faults_match(&fs, "a", "/v1/messages") != NULL;
    int want[8] = {0, 0, 1, 1, 1, 0, 0, 0};
    for (int i = 0; i < 8; i++)
        cr_assert_eq(fired[i], want[i], "request %d", i);
    sim_faults_free(&fs);
}

Test(sim_fault, first_fault_wins)
{
    sim_faults_t fs =
        load("[{\"kind\":\"overloaded\",\"count\":1},{\"kind\":\"rate_limit\",\"count\":1}]", 1);
    cr_assert_eq(sim_faults_match(&fs, "a", "/v1/messages")->kind, SIM_FAULT_OVERLOADED);
    cr_assert_eq(sim_faults_match(&fs, "a", "/v1/messages")->kind, SIM_FAULT_RATE_LIMIT);
    cr_assert_null(sim_faults_match(&fs, "a", "/v1/messages"));
    sim_faults_free(&fs);
}

static unsigned pattern(uint64_t seed)
{
    sim_faults_t fs = load("[{\"kind\":\"overloaded\",\"probability\":0.5}]", seed);
    unsigned bits = 0;
    for (int i = 0; i < 32; i++)
        if (sim_faults_match(&fs, "a", "/v1/messages")) bits |= 1u << i;
    sim_faults_free(&fs);
    return bits;
}

Test(sim_fault, deterministic_probability)
{
    unsigned a = pattern(42), b = pattern(42), c = pattern(43);
    cr_assert_eq(a, b);
    cr_assert_neq(a, c);
    int ones = __builtin_popcount(a);
    cr_assert(ones > 4 && ones < 28, "p=0.5 fired %d of 32", ones);
    cr_assert_eq(pattern(7), pattern(7));
}

Test(sim_fault, rng_unit_range)
{
    uint64_t s = 9;
    for (int i = 0; i < 1000; i++) {
        double u = sim_rng_unit(&s);
        cr_assert(u >= 0 && u < 1);
    }
}

Test(sim_fault, parse_errors)
{
    char *e = parse_err("{\"kind\":\"nope\"}");
    cr_assert(strstr(e, "unknown fault kind \"nope\""), "%s", e);
    free(e);
    e = parse_err("{\"account\":\"a\"}");
    cr_assert(strstr(e, "kind"), "%s", e);
    free(e);
    e = parse_err("{\"kind\":\"rate_limit\",\"retry_after\":3}");
    cr_assert(strstr(e, "unknown fault key \"retry_after\""), "%s", e);
    free(e);
    e = parse_err("{\"kind\":\"rate_limit\",\"probability\":2}");
    cr_assert(strstr(e, "probability"), "%s", e);
    free(e);
    e = parse_err("{\"kind\":\"status\",\"status\":200}");
    cr_assert(strstr(e, "status"), "%s", e);
    free(e);
    e = parse_err("{\"kind\":\"rate_limit\",\"count\":-1}");
    cr_assert(strstr(e, "count"), "%s", e);
    free(e);
}
