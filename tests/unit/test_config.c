/* The config store: §2.1 paths, §2.2 load and backfill, §2.5/A7 writes, §2.4 accounts,
 * and the JSON.stringify-compatible output. §13 scenarios 6–9. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <sys/stat.h>

#include "core/fileio.h"
#include "store/config.h"
#include "store/options.h"
#include "testutil.h"

static char *path_in(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot create %s", path);
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

static char *read_text(const char *path)
{
    char *data = NULL;
    int rc = fileio_read(path, &data, NULL, 0);
    cr_assert_eq(rc, 0, "cannot read %s (%d)", path, rc);
    return data;
}

static int count_tmp(const char *dir)
{
    int n = 0;
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l > 4 && strcmp(e->d_name + l - 4, ".tmp") == 0) n++;
    }
    closedir(d);
    return n;
}

static json_t *load_ok(const char *path)
{
    json_t *cfg = NULL;
    char *err = NULL;
    int rc = config_load(path, &cfg, &err);
    cr_assert_eq(rc, 0, "load failed: %s", err ? err : "(missing)");
    return cfg;
}

static int noop_write(json_t *cfg, void *ud, char **err)
{
    (void)cfg;
    (void)ud;
    (void)err;
    return 0;
}

static void clear_env(void)
{
    unsetenv("MAXPOOL_CONFIG");
    unsetenv("TEAMCLAUDE_CONFIG");
    unsetenv("XDG_CONFIG_HOME");
}

/* ---------------------------------------------------------------- paths ---- */

Test(config_path, maxpool_config_beats_teamclaude_config)
{
    clear_env();
    setenv("TEAMCLAUDE_CONFIG", "/x/team.json", 1);
    char *p = config_path();
    cr_assert_str_eq(p, "/x/team.json");
    free(p);
    setenv("MAXPOOL_CONFIG", "/x/max.json", 1);
    p = config_path();
    cr_assert_str_eq(p, "/x/max.json");
    free(p);
}

Test(config_path, xdg_legacy_file_used_when_alone)
{
    clear_env();
    const char *dir = tu_tmpdir();
    setenv("XDG_CONFIG_HOME", dir, 1);
    char *cur = path_in(dir, "maxpool.json"), *legacy = path_in(dir, "teamclaude.json");
    char *p = config_path();
    cr_assert_str_eq(p, cur, "neither exists: the new name");
    free(p);
    write_file(legacy, "{}", 0600);
    p = config_path();
    cr_assert_str_eq(p, legacy, "only the legacy file exists: used in place");
    free(p);
    write_file(cur, "{}", 0600);
    p = config_path();
    cr_assert_str_eq(p, cur, "both exist: maxpool.json");
    free(p);
    free(cur);
    free(legacy);
}

Test(config_path, home_dot_config_without_xdg)
{
    clear_env();
    const char *dir = tu_tmpdir();
    setenv("HOME", dir, 1);
    setenv("XDG_CONFIG_HOME", "", 1); /* empty counts as unset */
    char *want = path_in(dir, ".config/maxpool.json");
    char *p = config_path();
    cr_assert_str_eq(p, want);
    free(p);
    free(want);
}

Test(config_path, siblings)
{
    char *s = config_state_path("/a/maxpool.json"), *l = config_log_path("/a/maxpool.json");
    cr_assert_str_eq(s, "/a/maxpool.state.json");
    cr_assert_str_eq(l, "/a/maxpool.log");
    free(s);
    free(l);
    s = config_state_path("/a/conf");
    l = config_log_path("/a/conf");
    cr_assert_str_eq(s, "/a/conf.state");
    cr_assert_str_eq(l, "/a/conf.log");
    free(s);
    free(l);
}

/* ----------------------------------------------------------------- load ---- */

Test(config_load, missing_file)
{
    char *p = path_in(tu_tmpdir(), "none.json");
    json_t *cfg = (json_t *)1;
    char *err = NULL;
    cr_assert_eq(config_load(p, &cfg, &err), CONFIG_MISSING);
    cr_assert_null(cfg);
    free(p);
}

Test(config_load, backfill_keeps_explicit_zero_and_false)
{
    /* §13.8: no `queue`; explicit 0/false stay. */
    const char *dir = tu_tmpdir();
    char *p = path_in(dir, "maxpool.json");
    write_file(p,
               "{\"quotaProbeSeconds\": 0, \"preventSleep\": false, \"switchThreshold\": 0, "
               "\"accounts\": []}",
               0600);
    json_t *cfg = load_ok(p);
    cr_assert(json_is_integer(json_object_get(cfg, "quotaProbeSeconds")));
    cr_assert_eq(json_integer_value(json_object_get(cfg, "quotaProbeSeconds")), 0);
    cr_assert(json_is_false(json_object_get(cfg, "preventSleep")));
    cr_assert_eq(json_integer_value(json_object_get(cfg, "switchThreshold")), 0);
    json_t *queue = json_object_get(cfg, "queue");
    json_t *def = options_default_value("queue");
    json_t *fresh = options_default_config();
    cr_assert(json_equal(queue, json_object_get(fresh, "queue")), "default queue backfilled");
    /* The user's keys come first, backfilled ones after, in the default order. */
    void *it = json_object_iter(cfg);
    cr_assert_str_eq(json_object_iter_key(it), "quotaProbeSeconds");
    json_decref(def);
    json_decref(fresh);
    json_decref(cfg);
    free(p);
}

Test(config_load, backfilled_queue_is_written_on_next_save)
{
    const char *dir = tu_tmpdir();
    char *p = path_in(dir, "maxpool.json");
    write_file(p, "{\"quotaProbeSeconds\": 0, \"accounts\": []}", 0600);
    char *err = NULL;
    cr_assert_eq(config_update(p, noop_write, NULL, NULL, NULL, &err), 0, "%s", err);
    json_error_t je;
    json_t *disk = json_load_file(p, 0, &je);
    cr_assert_not_null(disk);
    cr_assert_eq(json_integer_value(options_lookup(disk, "queue.heartbeatMs")), 10000);
    cr_assert_eq(json_integer_value(json_object_get(disk, "quotaProbeSeconds")), 0);
    cr_assert_eq(json_integer_value(json_object_get(disk, "_generation")), 1);
    json_decref(disk);
    free(p);
}

Test(config_load, nested_objects_are_not_merged)
{
    const char *dir = tu_tmpdir();
    char *p = path_in(dir, "maxpool.json");
    write_file(p, "{\"queue\": {\"enabled\": false}}", 0600);
    json_t *cfg = load_ok(p);
    cr_assert_null(options_lookup(cfg, "queue.heartbeatMs"));
    cr_assert_eq(options_get_int(cfg, "queue.heartbeatMs"), 10000);
    cr_assert_eq(json_object_size(json_object_get(cfg, "queue")), 1u);
    json_decref(cfg);
    free(p);
}

Test(config_load, corrupt_json_is_refused_and_untouched)
{
    /* §13.7: the error names the file; no write path ever replaces it. */
    const char *dir = tu_tmpdir();
    char *p = path_in(dir, "maxpool.json");
    const char *bad = "{\"accounts\": [{\"name\": \"a\", \"accessToken\": \"sk-ant-x\"},]\n";
    write_file(p, bad, 0644);
    struct stat before, after;
    stat(p, &before);
    json_t *cfg = NULL;
    char *err = NULL;
    cr_assert_eq(config_load(p, &cfg, &err), -1);
    char prefix[512];
    snprintf(prefix, sizeof prefix, "config at %s is not valid JSON (corrupt?): ", p);
    cr_assert_eq(strncmp(err, prefix, strlen(prefix)), 0, "got: %s", err);
    free(err);
    err = NULL;
    cr_assert_eq(config_update(p, noop_write, NULL, NULL, NULL, &err), -1);
    cr_assert_eq(strncmp(err, prefix, strlen(prefix)), 0, "got: %s", err);
    free(err);
    err = NULL;
    bool created = true;
    cr_assert_eq(config_load_or_create(p, &cfg, &created, &err), -1);
    cr_assert_eq(created, false);
    free(err);
    char *now = read_text(p);
    cr_assert_str_eq(now, bad, "file changed");
    stat(p, &after);
    cr_assert_eq(after.st_mode & 0777, 0644, "mode changed");
    cr_assert_eq(after.st_ino, before.st_ino, "file replaced");
    cr_assert_eq(count_tmp(dir), 0);
    free(now);
    free(p);
}

Test(config_load, empty_and_non_object_files_are_refused)
{
    const char *dir = tu_tmpdir();
    char *p = path_in(dir, "maxpool.json");
    const char *cases[] = {"", "[1, 2]", "\"text\""};
    for (size_t i = 0; i < 3; i++) {
        write_file(p, cases[i], 0600);
        json_t *cfg = NULL;
        char *err = NULL;
        cr_assert_eq(config_load(p, &cfg, &err), -1, "case %zu", i);
        cr_assert(strstr(err, "is not valid JSON (corrupt?)"), "%s", err);
        free(err);
    }
    free(p);
}

Test(config_load, peak_migration_merges_key_by_key)
{
    const char *dir = tu_tmpdir();
    char *p = path_in(dir, "maxpool.json");
    write_file(p,
               "{\"scheduler\": {\"cooldownMs\": 1000, \"providers\": {\"zai\": {\"peakCap\": "
               "0.3, \"claudeFallback\": \"always\"}}}}",
               0600);
    json_t *cfg = load_ok(p);
    json_t *zai = options_lookup(cfg, "scheduler.providers.zai");
    cr_assert_float_eq(json_number_value(json_object_get(zai, "peakCap")), 0.3, 1e-12);
    cr_assert_str_eq(json_string_value(json_object_get(zai, "claudeFallback")), "always");
    cr_assert_str_eq(json_string_value(json_object_get(zai, "peakTimezone")), "Asia/Singapore");
    cr_assert_eq(json_array_size(json_object_get(zai, "peakWindows")), 1u);
    cr_assert_not_null(options_lookup(cfg, "scheduler.providers.kimi.peakWindows"));
    cr_assert_eq(json_integer_value(options_lookup(cfg, "scheduler.peakDefaultsVersion")), 1);
    json_decref(cfg);
    /* Version 1 already: deliberately emptied windows are not re-seeded. */
    write_file(p,
               "{\"scheduler\": {\"peakDefaultsVersion\": 1, \"providers\": {\"zai\": "
               "{\"peakWindows\": []}}}}",
               0600);
    cfg = load_ok(p);
    zai = options_lookup(cfg, "scheduler.providers.zai");
    cr_assert_eq(json_object_size(zai), 1u);
    cr_assert_null(options_lookup(cfg, "scheduler.providers.kimi"));
    json_decref(cfg);
    free(p);
}

/* ---------------------------------------------------------------- write ---- */

Test(config_write, atomic_0600_over_0644_and_no_tmp_left)
{
    /* §13.9 */
    const char *dir = tu_tmpdir();
    char *p = path_in(dir, "maxpool.json");
    write_file(p, "{\"accounts\": [], \"_generation\": 4}\n", 0644);
    char *err = NULL;
    cr_assert_eq(config_update(p, noop_write, NULL, NULL, NULL, &err), 0, "%s", err);
    struct stat st;
    cr_assert_eq(stat(p, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    cr_assert_eq(count_tmp(dir), 0);
    json_t *cfg = load_ok(p);
    cr_assert_eq(json_integer_value(json_object_get(cfg, "_generation")), 5);
    json_decref(cfg);
    free(p);
}

Test(config_write, creates_missing_file_and_folders)
{
    const char *dir = tu_tmpdir();
    char *p = path_in(dir, "a/b/maxpool.json");
    json_t *cfg = NULL;
    bool created = false;
    char *err = NULL;
    cr_assert_eq(config_load_or_create(p, &cfg, &created, &err), 0, "%s", err);
    cr_assert(created);
    cr_assert_eq(json_integer_value(json_object_get(cfg, "_generation")), 1);
    json_decref(cfg);
    struct stat st;
    cr_assert_eq(stat(p, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    /* A second open loads without writing. */
    cr_assert_eq(config_load_or_create(p, &cfg, &created, &err), 0);
    cr_assert(!created);
    cr_assert_eq(json_integer_value(json_object_get(cfg, "_generation")), 1);
    json_decref(cfg);
    free(p);
}

static int failing_mutation(json_t *cfg, void *ud, char **err)
{
    json_object_set_new(cfg, "upstream", json_string("http://changed"));
    *err = strdup("nope");
    return -1;
}

static int unchanged_mutation(json_t *cfg, void *ud, char **err)
{
    return CONFIG_UNCHANGED;
}

Test(config_write, failed_or_unchanged_mutation_writes_nothing)
{
    const char *dir = tu_tmpdir();
    char *p = path_in(dir, "maxpool.json");
    const char *text = "{\"accounts\": []}";
    write_file(p, text, 0644);
    char *err = NULL;
    cr_assert_eq(config_update(p, failing_mutation, NULL, NULL, NULL, &err), -1);
    cr_assert_str_eq(err, "nope");
    free(err);
    cr_assert_eq(config_update(p, unchanged_mutation, NULL, NULL, NULL, &err), 0);
    char *now = read_text(p);
    cr_assert_str_eq(now, text);
    free(now);
    free(p);
}

Test(config_write, symlinked_config_keeps_its_link)
{
    const char *dir = tu_tmpdir();
    char *real = path_in(dir, "real.json"), *link = path_in(dir, "maxpool.json");
    write_file(real, "{\"accounts\": []}", 0600);
    cr_assert_eq(symlink(real, link), 0);
    char *err = NULL;
    cr_assert_eq(config_update(link, noop_write, NULL, NULL, NULL, &err), 0, "%s", err);
    struct stat st;
    cr_assert_eq(lstat(link, &st), 0);
    cr_assert(S_ISLNK(st.st_mode), "the link was replaced by a file");
    json_t *cfg = load_ok(real);
    cr_assert_eq(json_integer_value(json_object_get(cfg, "_generation")), 1);
    json_decref(cfg);
    free(real);
    free(link);
}

/* ------------------------------------------------------- compatibility ---- */

Test(config_compat, fixture_round_trips_byte_for_byte)
{
    /* A file written by maxpool 1.20.4: unknown keys, key order and formatting survive. */
    char *want = read_text("tests/fixtures/maxpool-1.20.4.json");
    json_t *cfg = load_ok("tests/fixtures/maxpool-1.20.4.json");
    char *got = config_dump(cfg);
    cr_assert_str_eq(got, want);
    free(got);
    json_decref(cfg);

    const char *dir = tu_tmpdir();
    char *p = path_in(dir, "maxpool.json");
    write_file(p, want, 0644);
    char *err = NULL;
    cr_assert_eq(config_update(p, noop_write, NULL, NULL, NULL, &err), 0, "%s", err);
    char *disk = read_text(p);
    /* Only the generation moves (7 → 8). */
    char *at = strstr(want, "\"_generation\": 7");
    cr_assert_not_null(at);
    at[strlen("\"_generation\": ")] = '8';
    cr_assert_str_eq(disk, want);
    free(disk);
    free(want);
    free(p);
}

Test(config_compat, fixture_accounts_are_listed)
{
    json_t *cfg = load_ok("tests/fixtures/maxpool-1.20.4.json");
    cr_assert_eq(json_array_size(config_accounts(cfg)), 3u);
    cr_assert_eq(config_account_find(cfg, "alice@example.com"), 0);
    cr_assert_eq(config_account_find(cfg, "api-1"), 1);
    cr_assert_eq(config_account_find(cfg, "glm-work"), 2);
    cr_assert(json_is_object(json_object_get(cfg, "futureKey")));
    cr_assert_eq(config_account_expires_ms(json_array_get(config_accounts(cfg), 0)), 1795000000000);
    json_decref(cfg);
}

/* --------------------------------------------------------------- output ---- */

static void expect_dump(const char *json_text, const char *want)
{
    json_error_t e;
    json_t *v = json_loads(json_text, JSON_DECODE_ANY, &e);
    cr_assert_not_null(v, "%s", e.text);
    char *got = config_dump(v);
    cr_assert_str_eq(got, want);
    free(got);
    json_decref(v);
}

Test(config_dump, numbers_like_javascript)
{
    expect_dump("[0.9, 1000.0, 1e21, 1.5e21, 1e-7, 0.000001, 123.456, -0.5, 0.1, 1e300, "
                "-0.0, 12345678901234567890.0]",
                "[\n  0.9,\n  1000,\n  1e+21,\n  1.5e+21,\n  1e-7,\n  0.000001,\n  123.456,\n"
                "  -0.5,\n  0.1,\n  1e+300,\n  0,\n  1.2345678901234567e+19\n]\n");
    expect_dump("[0.30000000000000004, 5e-324, 1795000000000]",
                "[\n  0.30000000000000004,\n  5e-324,\n  1795000000000\n]\n");
    /* Past 18 integer digits the exponent form keeps the file readable by jansson. */
    expect_dump("[1e20, 123456789012345678.0, 2.5e-7]",
                "[\n  1e+20,\n  123456789012345680,\n  2.5e-7\n]\n");
}

Test(config_dump, strings_and_nesting_like_javascript)
{
    expect_dump("{\"a\\\"b\": \"line\\nnext\\ttab\\u0001 \\\\ / é\", \"e\": {}, \"f\": [], "
                "\"n\": null, \"t\": [true, false]}",
                "{\n  \"a\\\"b\": \"line\\nnext\\ttab\\u0001 \\\\ / é\",\n  \"e\": {},\n  "
                "\"f\": [],\n  \"n\": null,\n  \"t\": [\n    true,\n    false\n  ]\n}\n");
}

/* ------------------------------------------------------------- accounts ---- */

static json_t *three_accounts(void)
{
    json_error_t e;
    json_t *cfg = json_loads("{\"routing\": {\"mode\": \"preferred\", \"preferredAccount\": "
                             "\"b\"}, \"accounts\": [{\"name\": \"a\", \"accountUuid\": \"u1\"}, "
                             "{\"name\": \"b\"}, {\"name\": \"7\", \"accountUuid\": \"u1\"}]}",
                             0, &e);
    cr_assert_not_null(cfg);
    return cfg;
}

Test(config_accounts, resolve_by_name_then_index)
{
    json_t *cfg = three_accounts();
    cr_assert_eq(config_account_resolve(cfg, "b"), 1);
    cr_assert_eq(config_account_resolve(cfg, "2"), 1);
    cr_assert_eq(config_account_resolve(cfg, "7"), 2, "an exact name wins over an index");
    cr_assert_eq(config_account_resolve(cfg, "3"), 2);
    cr_assert_eq(config_account_resolve(cfg, "0"), -1);
    cr_assert_eq(config_account_resolve(cfg, "4"), -1);
    cr_assert_eq(config_account_resolve(cfg, "1x"), -1);
    cr_assert_eq(config_account_resolve(cfg, ""), -1);
    cr_assert_eq(config_account_resolve(cfg, "99999999999999999999"), -1);
    json_decref(cfg);
}

Test(config_accounts, rename_updates_preferred_account)
{
    json_t *cfg = three_accounts();
    char *old = NULL, *err = NULL;
    cr_assert_eq(config_account_rename(cfg, "2", "bee", &old, &err), 0);
    cr_assert_str_eq(old, "b");
    cr_assert_str_eq(options_get_string(cfg, "routing.preferredAccount"), "bee");
    free(old);
    cr_assert_eq(config_account_rename(cfg, "bee", "a", NULL, &err), -1);
    cr_assert_str_eq(err, "An account named \"a\" already exists");
    free(err);
    cr_assert_eq(config_account_rename(cfg, "nope", "x", NULL, &err), -1);
    cr_assert_str_eq(err, "Account \"nope\" not found");
    free(err);
    /* Renaming to its own name is allowed. */
    cr_assert_eq(config_account_rename(cfg, "a", "a", NULL, &err), 0);
    json_decref(cfg);
}

Test(config_accounts, remove_and_not_found)
{
    json_t *cfg = three_accounts();
    char *err = NULL;
    cr_assert_eq(config_account_remove(cfg, "nope", &err), -1);
    cr_assert_str_eq(err, "Account \"nope\" not found");
    free(err);
    cr_assert_eq(config_account_remove(cfg, "b", &err), 0);
    cr_assert_eq(json_array_size(config_accounts(cfg)), 2u);
    cr_assert_eq(config_account_find(cfg, "b"), -1);
    json_decref(cfg);
}

Test(config_accounts, next_name_skips_taken_names)
{
    json_error_t e;
    json_t *cfg = json_loads("{\"accounts\": []}", 0, &e);
    char *n = config_account_next_name(cfg, "api-");
    cr_assert_str_eq(n, "api-1");
    free(n);
    config_account_append(cfg, json_pack("{s:s}", "name", "api-2"));
    /* One api-* name → the reference picks api-2, which is taken. */
    n = config_account_next_name(cfg, "api-");
    cr_assert_str_eq(n, "api-3");
    free(n);
    json_decref(cfg);
}

Test(config_accounts, dedup_keeps_the_last_uuid)
{
    json_t *cfg = three_accounts();
    cr_assert_eq(config_account_dedup_uuid(cfg), 1);
    cr_assert_eq(json_array_size(config_accounts(cfg)), 2u);
    cr_assert_eq(config_account_find(cfg, "a"), -1);
    cr_assert_eq(config_account_find(cfg, "7"), 1);
    cr_assert_eq(config_account_dedup_uuid(cfg), 0);
    json_decref(cfg);
}

Test(config_accounts, expiry_seconds_or_ms)
{
    json_t *a = json_pack("{s:I}", "expiresAt", (json_int_t)1795000000);
    cr_assert_eq(config_account_expires_ms(a), 1795000000000);
    json_object_set_new(a, "expiresAt", json_integer(1795000000123));
    cr_assert_eq(config_account_expires_ms(a), 1795000000123);
    json_object_set_new(a, "expiresAt", json_string("x"));
    cr_assert_eq(config_account_expires_ms(a), 0);
    json_decref(a);
}

Test(config_accounts, append_refuses_a_non_array)
{
    json_error_t e;
    json_t *cfg = json_loads("{\"accounts\": {}}", 0, &e);
    cr_assert_eq(config_account_append(cfg, json_object()), -1);
    json_decref(cfg);
}
