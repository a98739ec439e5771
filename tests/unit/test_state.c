/* store/state: the §2.8 state file — round trip, matching, dropped stamps, 0600, generation
 * guard, corrupt files, and a writer killed mid-write never leaves a torn file. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/fileio.h"
#include "store/state.h"
#include "testutil.h"

#define NOW  1767225600000LL
#define HOUR 3600000LL
#define DAY  (24 * HOUR)

static void add(sched_t *s, const char *name, const char *uuid)
{
    account_t a;
    account_init(&a, name, ACCOUNT_OAUTH, "tok");
    if (uuid) a.uuid = strdup(uuid);
    sched_add_account(s, &a, false, NOW);
}

static char *path_in(const char *dir, const char *file)
{
    char *p = malloc(512);
    snprintf(p, 512, "%s/%s", dir, file);
    return p;
}

static void fill(quota_t *q)
{
    q->unified5h = 0.42;
    q->unified5h_reset_ms = NOW + HOUR;
    q->unified7d = 0.77;
    q->unified7d_reset_ms = NOW + 3 * DAY;
    snprintf(q->unified_status, sizeof q->unified_status, "allowed_warning");
    quota_set_scoped(q, QUOTA_FAMILY_OPUS, 0.9, NOW + 2 * DAY, true);
    q->tokens_limit = 1000;
    q->tokens_remaining = 400;
    q->requests_limit = 50;
    q->requests_remaining = 10;
    q->resets_at_ms = NOW + 60000;
    q->weekly_absent = true;
    q->last_probe_ok_ms = NOW - 1000;
}

Test(state, round_trip_and_mode)
{
    const char *dir = tu_tmpdir();
    char *path = path_in(dir, "maxpool.state.json");
    sched_t s;
    sched_init(&s, NULL);
    add(&s, "a", "uuid-a");
    add(&s, "b", NULL);
    fill(&s.accts[0].quota);
    s.accts[1].quota.unified7d = 0.1;
    s.accts[1].quota.unified7d_reset_ms = NOW + DAY;
    int64_t gen = 0;
    char *err = NULL;
    cr_assert_eq(state_save(path, &s, &gen, &err), 0, "%s", err ? err : "");
    cr_assert_eq(gen, 1);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);

    sched_t r;
    sched_init(&r, NULL);
    add(&r, "b", NULL);
    add(&r, "a", "uuid-a");
    int64_t g2 = 0;
    cr_assert_eq(state_load(path, &r, NOW + 1, &g2, &err), 2);
    cr_assert_eq(g2, 1);
    const quota_t *q = &r.accts[1].quota;
    cr_assert_float_eq(q->unified5h, 0.42, 1e-12);
    cr_assert_eq(q->unified5h_reset_ms, NOW + HOUR);
    cr_assert_float_eq(q->unified7d, 0.77, 1e-12);
    cr_assert_str_eq(q->unified_status, "allowed_warning");
    cr_assert_float_eq(q->scoped[QUOTA_FAMILY_OPUS].utilization, 0.9, 1e-12);
    cr_assert(q->scoped[QUOTA_FAMILY_OPUS].reactive);
    cr_assert_eq(q->tokens_remaining, 400);
    cr_assert_eq(q->requests_remaining, 10);
    cr_assert(q->weekly_absent);
    cr_assert_eq(q->last_probe_ok_ms, NOW - 1000);
    cr_assert_float_eq(r.accts[0].quota.unified7d, 0.1, 1e-12);
    /* No temp files left behind. */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls %s | grep -c tmp >/dev/null", dir);
    cr_assert_neq(system(cmd), 0);
    sched_free(&s);
    sched_free(&r);
    free(path);
}

Test(state, match_by_uuid_else_name)
{
    sched_t s;
    sched_init(&s, NULL);
    add(&s, "old-name", "u1");
    add(&s, "b", NULL);
    add(&s, "c", "u3");
    s.accts[0].quota.unified7d = 0.5;
    s.accts[0].quota.unified7d_reset_ms = NOW + DAY;
    s.accts[1].quota.unified7d = 0.6;
    s.accts[1].quota.unified7d_reset_ms = NOW + DAY;
    s.accts[2].quota.unified7d = 0.7;
    s.accts[2].quota.unified7d_reset_ms = NOW + DAY;
    json_t *doc = json_object();
    json_object_set_new(doc, "quota", state_quota_array(&s));

    sched_t r;
    sched_init(&r, NULL);
    add(&r, "renamed", "u1"); /* renamed: found by UUID */
    add(&r, "b", "u2");       /* UUID learned since: found by name */
    add(&r, "c", "u-other");  /* same name, another account: not matched */
    cr_assert_eq(state_apply(&r, doc, NOW), 2);
    cr_assert_float_eq(r.accts[0].quota.unified7d, 0.5, 1e-12);
    cr_assert_float_eq(r.accts[1].quota.unified7d, 0.6, 1e-12);
    cr_assert_eq(r.accts[2].quota.unified7d, QUOTA_UNKNOWN);
    json_decref(doc);
    sched_free(&s);
    sched_free(&r);
}

Test(state, drops_values_without_or_past_reset)
{
    json_error_t e;
    json_t *obj =
        json_loads("{\"unified5h\":0.9,\"unified5hReset\":null,\"unified7d\":0.8,"
                   "\"unified7dReset\":1767225600000,\"unifiedStatus\":\"rejected\","
                   "\"scopedWeekly\":{\"opus\":{\"utilization\":1,\"resetAt\":null},"
                   "\"sonnet\":{\"utilization\":0.5,\"resetAt\":1767312000000,\"isActive\":false},"
                   "\"bogus\":{\"utilization\":1,\"resetAt\":1767312000000}},"
                   "\"providerSes\":0.3,\"providerSesReset\":1767229200,\"resetsAt\":\"garbage\"}",
                   0, &e);
    cr_assert_not_null(obj, "%s", e.text);
    quota_t q;
    state_quota_from_json(obj, &q, NOW);
    cr_assert_eq(q.unified5h, QUOTA_UNKNOWN); /* no stamp */
    cr_assert_eq(q.unified7d, QUOTA_UNKNOWN); /* stamp = now: already reset */
    cr_assert_str_eq(q.unified_status, "");   /* nothing left it could describe */
    cr_assert_eq(q.scoped[QUOTA_FAMILY_OPUS].utilization, QUOTA_UNKNOWN);
    cr_assert_float_eq(q.scoped[QUOTA_FAMILY_SONNET].utilization, 0.5, 1e-12);
    cr_assert_not(q.scoped[QUOTA_FAMILY_SONNET].active);
    cr_assert_float_eq(q.provider_ses, 0.3, 1e-12); /* seconds stamp accepted */
    cr_assert_eq(q.provider_ses_reset_ms, 1767229200000LL);
    cr_assert_eq(q.resets_at_ms, 0);
    json_decref(obj);
}

Test(state, corrupt_or_missing_file_is_ignored)
{
    const char *dir = tu_tmpdir();
    char *path = path_in(dir, "x.state.json");
    sched_t s;
    sched_init(&s, NULL);
    add(&s, "a", NULL);
    char *err = NULL;
    int64_t gen = -1;
    cr_assert_eq(state_load(path, &s, NOW, &gen, &err), 0);
    cr_assert_null(err);
    cr_assert_eq(gen, 0);
    cr_assert_eq(fileio_write_atomic(path, "{\"quota\": [", 11), 0);
    cr_assert_eq(state_load(path, &s, NOW, &gen, &err), 0);
    cr_assert_not_null(err);
    cr_assert(strstr(err, "not valid JSON"));
    free(err);
    err = NULL;
    cr_assert_eq(s.accts[0].quota.unified7d, QUOTA_UNKNOWN);
    /* The next save replaces it. */
    cr_assert_eq(state_save(path, &s, &gen, &err), 0);
    cr_assert_eq(state_load(path, &s, NOW, &gen, &err), 1);
    sched_free(&s);
    free(path);
}

Test(state, generation_guard_keeps_foreign_keys)
{
    const char *dir = tu_tmpdir();
    char *path = path_in(dir, "g.state.json");
    const char *foreign = "{\"quota\":[],\"runtimeProviders\":[{\"name\":\"glm\"}],"
                          "\"capacity\":{\"schemaVersion\":3},\"_generation\":7}";
    cr_assert_eq(fileio_write_atomic(path, foreign, strlen(foreign)), 0);
    sched_t s;
    sched_init(&s, NULL);
    add(&s, "a", NULL);
    char *err = NULL;
    int64_t gen = 3; /* this writer last saw 3: another process advanced it */
    cr_assert_eq(state_save(path, &s, &gen, &err), STATE_STALE);
    cr_assert_eq(gen, 7);
    cr_assert_eq(state_save(path, &s, &gen, &err), 0);
    cr_assert_eq(gen, 8);
    char *data;
    size_t len;
    cr_assert_eq(fileio_read(path, &data, &len, 0), 0);
    json_t *doc = json_loads(data, 0, NULL);
    cr_assert_not_null(doc);
    cr_assert_eq(json_integer_value(json_object_get(doc, "_generation")), 8);
    cr_assert_eq(json_array_size(json_object_get(doc, "runtimeProviders")), 1);
    cr_assert_not_null(json_object_get(json_object_get(doc, "capacity"), "schemaVersion"));
    cr_assert_eq(json_array_size(json_object_get(doc, "quota")), 1);
    json_decref(doc);
    free(data);
    sched_free(&s);
    free(path);
}

/* A writer killed with SIGKILL in the middle of its writes: every read in between and the
 * restore afterwards see a whole file (the old one or the new one), never a torn mix. */
Test(state, crash_mid_write_is_never_torn, .timeout = 60)
{
    const char *dir = tu_tmpdir();
    char *path = path_in(dir, "c.state.json");
    sched_t s;
    sched_init(&s, NULL);
    for (int i = 0; i < 40; i++) {
        char name[24];
        snprintf(name, sizeof name, "acct-%d", i);
        add(&s, name, NULL);
        s.accts[i].quota.unified7d = 0.5;
        s.accts[i].quota.unified7d_reset_ms = NOW + DAY;
    }
    int64_t gen = 0;
    char *err = NULL;
    cr_assert_eq(state_save(path, &s, &gen, &err), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int64_t g = gen;
        for (int i = 0; i < 100000; i++) {
            char *e = NULL;
            if (state_save(path, &s, &g, &e) < 0) _exit(2);
        }
        _exit(0);
    }
    int whole = 0;
    for (int i = 0; i < 300; i++) {
        char *data = NULL;
        size_t len = 0;
        int rc = fileio_read(path, &data, &len, 0);
        cr_assert_eq(rc, 0, "read %d: %s", i, strerror(-rc));
        json_t *doc = json_loadb(data, len, 0, NULL);
        cr_assert_not_null(doc, "torn state file seen on read %d", i);
        cr_assert_eq(json_array_size(json_object_get(doc, "quota")), 40);
        json_decref(doc);
        free(data);
        whole++;
        if (i == 150) kill(pid, SIGKILL); /* the crash, mid-traffic */
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert_eq(whole, 300);
    /* Restart: the quota is restored. */
    sched_t r;
    sched_init(&r, NULL);
    add(&r, "acct-39", NULL);
    int64_t g2;
    cr_assert_eq(state_load(path, &r, NOW, &g2, &err), 1);
    cr_assert_float_eq(r.accts[0].quota.unified7d, 0.5, 1e-12);
    cr_assert(g2 >= gen);
    sched_free(&r);
    sched_free(&s);
    free(path);
}
