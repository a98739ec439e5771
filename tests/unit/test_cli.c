/* The real binary from outside (§1, §13 scenarios 1–9): a temp HOME and MAXPOOL_CONFIG,
 * stdout and stderr captured separately, exit codes, and 50 concurrent logins. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <pty.h>
#include <termios.h>
#include <time.h>

#include "core/fileio.h"
#include "store/config.h"
#include "testutil.h"

#define RUN_TIMEOUT_MS 20000

typedef struct run {
    int code;  /* exit status, or -1 if it did not exit normally */
    char *out; /* captured stdout */
    char *err; /* captured stderr */
} run_t;

typedef struct env {
    char dir[256];  /* private folder of the test */
    char home[300]; /* $HOME */
    char cfg[300];  /* $MAXPOOL_CONFIG */
} env_t;

static const char *bin(void)
{
    const char *b = getenv("MAXPOOL_BIN");
    cr_assert_not_null(b, "MAXPOOL_BIN is not set (run the tests through `make unit`)");
    return b;
}

static void env_init(env_t *e)
{
    snprintf(e->dir, sizeof e->dir, "%s", tu_tmpdir());
    snprintf(e->home, sizeof e->home, "%s/home", e->dir);
    snprintf(e->cfg, sizeof e->cfg, "%s/cfg/maxpool.json", e->dir);
    mkdir(e->home, 0700);
}

static char *slurp(const char *path)
{
    char *data = NULL;
    if (fileio_read(path, &data, NULL, 0) != 0) return strdup("");
    return data;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    char *dir = strdup(path);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = '\0';
        fileio_mkdirs(dir);
    }
    free(dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot create %s", path);
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

/* Starts the binary with argv (NULL-terminated, without the program name); stdin from
 * `input` (NULL = /dev/null); stdout/stderr into files under e->dir tagged by `tag`.
 * extra_env may add NAME=value strings (NULL-terminated) or be NULL. */
static pid_t start(const env_t *e, const char *const *args, const char *input, const char *tag,
                   const char *const *extra_env, const char *cfg_override)
{
    char in_path[400], out_path[400], err_path[400];
    snprintf(in_path, sizeof in_path, "%s/%s.in", e->dir, tag);
    snprintf(out_path, sizeof out_path, "%s/%s.out", e->dir, tag);
    snprintf(err_path, sizeof err_path, "%s/%s.err", e->dir, tag);
    if (input) write_file(in_path, input, 0600);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, input ? in_path : "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    char *argv[32];
    int argc = 0;
    argv[argc++] = (char *)bin();
    for (; args && args[argc - 1] && argc < 31; argc++)
        argv[argc] = (char *)args[argc - 1];
    argv[argc] = NULL;
    char home_var[400], cfg_var[400];
    snprintf(home_var, sizeof home_var, "HOME=%s", e->home);
    snprintf(cfg_var, sizeof cfg_var, "MAXPOOL_CONFIG=%s", cfg_override ? cfg_override : e->cfg);
    char *envp[24];
    int n = 0;
    envp[n++] = "PATH=/usr/bin:/bin";
    envp[n++] = "LANG=C.UTF-8";
    envp[n++] = home_var;
    if (!cfg_override || *cfg_override) envp[n++] = cfg_var;
    for (int i = 0; extra_env && extra_env[i] && n < 23; i++)
        envp[n++] = (char *)extra_env[i];
    envp[n] = NULL;
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    cr_assert_eq(rc, 0, "posix_spawn %s: %s", argv[0], strerror(rc));
    return pid;
}

/* Waits for pid (bounded: killed after RUN_TIMEOUT_MS) and returns its exit code. */
static int finish(pid_t pid)
{
    int status = 0;
    for (int waited = 0;; waited += 5) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) break;
        cr_assert(r == 0 || errno == EINTR, "waitpid: %s", strerror(errno));
        if (waited >= RUN_TIMEOUT_MS) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            cr_assert_fail("maxpool did not finish within %d ms", RUN_TIMEOUT_MS);
        }
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static run_t collect(const env_t *e, pid_t pid, const char *tag)
{
    run_t r;
    r.code = finish(pid);
    char path[400];
    snprintf(path, sizeof path, "%s/%s.out", e->dir, tag);
    r.out = slurp(path);
    snprintf(path, sizeof path, "%s/%s.err", e->dir, tag);
    r.err = slurp(path);
    return r;
}

static run_t run_full(const env_t *e, const char *const *args, const char *input,
                      const char *const *extra_env)
{
    return collect(e, start(e, args, input, "run", extra_env, NULL), "run");
}

static run_t run(const env_t *e, const char *const *args)
{
    return run_full(e, args, NULL, NULL);
}

static void run_free(run_t *r)
{
    free(r->out);
    free(r->err);
}

/* Returns a copy of s with every `from` replaced by `to` (caller frees). */
static char *replace_all(const char *s, const char *from, const char *to)
{
    size_t fl = strlen(from), tl = strlen(to), n = 0;
    for (const char *p = strstr(s, from); p; p = strstr(p + fl, from))
        n++;
    char *out = malloc(strlen(s) + n * tl + 1), *w = out;
    for (const char *p = s; *p;) {
        if (strncmp(p, from, fl) == 0) {
            memcpy(w, to, tl);
            w += tl;
            p += fl;
        } else {
            *w++ = *p++;
        }
    }
    *w = '\0';
    return out;
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static json_t *load_disk(const char *path)
{
    json_error_t je;
    json_t *cfg = json_load_file(path, 0, &je);
    cr_assert_not_null(cfg, "%s is not valid JSON: %s", path, je.text);
    return cfg;
}

static int tmp_files_in(const char *dir)
{
    int n = 0;
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l > 4 && strcmp(de->d_name + l - 4, ".tmp") == 0) n++;
    }
    closedir(d);
    return n;
}

static void add_key(const env_t *e, const char *name, const char *key)
{
    run_t r = name ? run_full(e, ARGS("login", "--api", "--name", name), key, NULL)
                   : run_full(e, ARGS("login", "--api"), key, NULL);
    cr_assert_eq(r.code, 0, "login failed: %s", r.err);
    run_free(&r);
}

/* ------------------------------------------------------------------ env ---- */

Test(cli, env_creates_config_with_defaults)
{
    /* §13.1, with Part A9: the notice goes to stderr, stdout stays eval-able. */
    env_t e;
    env_init(&e);
    run_t r = run(&e, ARGS("env"));
    cr_assert_eq(r.code, 0);
    cr_assert_str_eq(r.out, "export ANTHROPIC_BASE_URL=http://127.0.0.1:3456\n");
    char want[400];
    snprintf(want, sizeof want, "Created config at %s\n", e.cfg);
    cr_assert_str_eq(r.err, want);
    struct stat st;
    cr_assert_eq(stat(e.cfg, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    json_t *cfg = load_disk(e.cfg);
    const char *key = json_string_value(json_object_get(json_object_get(cfg, "proxy"), "apiKey"));
    cr_assert_not_null(key);
    cr_assert_eq(strlen(key), 35u);
    cr_assert_eq(strncmp(key, "mp-", 3), 0);
    cr_assert(json_is_object(json_object_get(cfg, "queue")));
    cr_assert_eq(json_array_size(json_object_get(cfg, "accounts")), 0u);
    json_decref(cfg);
    run_free(&r);
    /* Second run: no notice at all. */
    r = run(&e, ARGS("env"));
    cr_assert_eq(r.code, 0);
    cr_assert_str_eq(r.err, "");
    run_free(&r);
}

Test(cli, env_with_key)
{
    /* §13.2 */
    env_t e;
    env_init(&e);
    run_t r = run(&e, ARGS("env", "--with-key"));
    cr_assert_eq(r.code, 0);
    json_t *cfg = load_disk(e.cfg);
    char want[300];
    snprintf(want, sizeof want,
             "export ANTHROPIC_BASE_URL=http://127.0.0.1:3456\nexport ANTHROPIC_API_KEY=%s\n",
             json_string_value(json_object_get(json_object_get(cfg, "proxy"), "apiKey")));
    cr_assert_str_eq(r.out, want);
    json_decref(cfg);
    run_free(&r);
}

Test(cli, env_uses_host_and_port_and_quotes_odd_values)
{
    env_t e;
    env_init(&e);
    write_file(e.cfg, "{\"proxy\": {\"port\": 4000, \"host\": \"::1\", \"apiKey\": \"k'$(x)\"}}",
               0600);
    run_t r = run(&e, ARGS("env", "--with-key"));
    cr_assert_eq(r.code, 0);
    cr_assert_str_eq(r.out, "export ANTHROPIC_BASE_URL=http://[::1]:4000\n"
                            "export ANTHROPIC_API_KEY='k'\\''$(x)'\n");
    run_free(&r);
    write_file(e.cfg, "{\"proxy\": {\"port\": 4001, \"host\": \"\"}}", 0600);
    r = run(&e, ARGS("env"));
    cr_assert_str_eq(r.out, "export ANTHROPIC_BASE_URL=http://127.0.0.1:4001\n");
    run_free(&r);
}

Test(cli, invalid_values_warn_but_commands_work)
{
    env_t e;
    env_init(&e);
    write_file(e.cfg, "{\"queue\": {\"pollMs\": \"fast\"}}", 0600);
    run_t r = run(&e, ARGS("env"));
    cr_assert_eq(r.code, 0);
    cr_assert_str_eq(r.out, "export ANTHROPIC_BASE_URL=http://127.0.0.1:3456\n");
    cr_assert(strstr(r.err, "config: \"queue.pollMs\" must be a number (got string)"), "%s", r.err);
    run_free(&r);
}

Test(cli, corrupt_config_is_refused_and_untouched)
{
    /* §13.7 through the CLI: every command refuses, nothing is written. */
    env_t e;
    env_init(&e);
    const char *bad = "{\"accounts\": [\n";
    write_file(e.cfg, bad, 0644);
    const char *const *cmds[] = {ARGS("env"), ARGS("accounts"), ARGS("remove", "x"),
                                 ARGS("rename", "a", "b"), ARGS("login", "--api")};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        run_t r = run_full(&e, cmds[i], "sk-ant-api03-zzzzzzzzzzzzzzzzzzzz\n", NULL);
        cr_assert_eq(r.code, 1, "%s", cmds[i][0]);
        cr_assert_str_eq(r.out, "", "%s", cmds[i][0]);
        char prefix[400];
        snprintf(prefix, sizeof prefix, "config at %s is not valid JSON (corrupt?): ", e.cfg);
        cr_assert_eq(strncmp(r.err, prefix, strlen(prefix)), 0, "%s: %s", cmds[i][0], r.err);
        run_free(&r);
    }
    char *now = slurp(e.cfg);
    cr_assert_str_eq(now, bad);
    free(now);
    struct stat st;
    stat(e.cfg, &st);
    cr_assert_eq(st.st_mode & 0777, 0644);
}

/* --------------------------------------------------------- help / unknown ---- */

Test(cli, help_lists_the_commands_of_section_1)
{
    env_t e;
    env_init(&e);
    static const char *const lines[] = {
        "  server              Start the proxy server (default)\n",
        "  login --api         Add an API key account\n",
        "  env [--with-key]    Print env vars to use with Claude\n",
        "  run [-- args...]    Run Claude Code through the proxy\n",
        "  status              Show proxy & account status (live)\n",
        "  accounts            List configured accounts\n",
        "  remove <name>       Remove an account\n",
        "  rename <name|#> <new>  Rename an account (by name or list number)\n",
        "  api <path>          Call an API endpoint with account credentials\n",
        "  help                Show this help\n",
        "  --name NAME ",
        "  --log-to DIR ",
        "  --with-key ",
        "  MAXPOOL_TUI_COLD_RESTART=1 "};
    const char *const *forms[] = {ARGS("help"), ARGS("--help"), ARGS("-h")};
    for (size_t f = 0; f < 3; f++) {
        run_t r = run(&e, forms[f]);
        cr_assert_eq(r.code, 0);
        cr_assert_str_eq(r.err, "");
        for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
            cr_assert(strstr(r.out, lines[i]), "help lacks: %s", lines[i]);
        char cfgline[400];
        snprintf(cfgline, sizeof cfgline, "\nConfig: %s\n", e.cfg);
        cr_assert(strstr(r.out, cfgline), "help lacks the config path");
        cr_assert_null(strstr(r.out, "help-config"), "hidden command listed");
        run_free(&r);
    }
    struct stat st;
    cr_assert_neq(stat(e.cfg, &st), 0, "help must not create the config");
}

Test(cli, unknown_command)
{
    /* §13.3 */
    env_t e;
    env_init(&e);
    run_t r = run(&e, ARGS("import"));
    cr_assert_eq(r.code, 1);
    cr_assert_str_eq(r.err, "Unknown command: import\n\n");
    cr_assert_eq(strncmp(r.out, "Maxpool - Multi-account Claude proxy\n", 37), 0);
    run_free(&r);
}

Test(cli, help_shows_the_legacy_path_in_use)
{
    env_t e;
    env_init(&e);
    char legacy[400];
    snprintf(legacy, sizeof legacy, "%s/.config/teamclaude.json", e.home);
    write_file(legacy, "{}", 0600);
    run_t r = collect(&e, start(&e, ARGS("help"), NULL, "h", NULL, ""), "h");
    char want[500];
    snprintf(want, sizeof want, "\nConfig: %s\n", legacy);
    cr_assert(strstr(r.out, want), "%s", r.out);
    run_free(&r);
}

Test(cli, configuration_doc_is_in_sync_with_the_table)
{
    env_t e;
    env_init(&e);
    run_t r = run(&e, ARGS("help-config"));
    cr_assert_eq(r.code, 0);
    char *doc = slurp("docs/configuration.md");
    cr_assert_str_eq(r.out, doc,
                     "docs/configuration.md is stale: run ./maxpool help-config > "
                     "docs/configuration.md");
    free(doc);
    run_free(&r);
}

/* ---------------------------------------------------------------- login ---- */

Test(cli, login_api_from_stdin)
{
    env_t e;
    env_init(&e);
    run_t r = run_full(&e, ARGS("login", "--api"), "  sk-ant-api03-first-key-0000000000  \n", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    char want[500];
    snprintf(want, sizeof want, "Added API key account \"api-1\"\nSaved to %s\n", e.cfg);
    cr_assert_str_eq(r.out, want);
    cr_assert_null(strstr(r.err, "sk-ant"), "the key must not be echoed");
    run_free(&r);
    add_key(&e, "work", "sk-ant-api03-second-key-000000000\n");
    add_key(&e, NULL, "sk-ant-api03-third-key-0000000000\n");
    json_t *cfg = load_disk(e.cfg);
    json_t *acc = json_object_get(cfg, "accounts");
    cr_assert_eq(json_array_size(acc), 3u);
    json_t *a0 = json_array_get(acc, 0);
    cr_assert_str_eq(json_string_value(json_object_get(a0, "name")), "api-1");
    cr_assert_str_eq(json_string_value(json_object_get(a0, "type")), "apikey");
    cr_assert_str_eq(json_string_value(json_object_get(a0, "apiKey")),
                     "sk-ant-api03-first-key-0000000000");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(acc, 1), "name")), "work");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(acc, 2), "name")), "api-2");
    json_decref(cfg);
}

Test(cli, login_api_prompt_on_a_terminal_does_not_echo)
{
    env_t e;
    env_init(&e);
    int master, slave;
    cr_assert_eq(openpty(&master, &slave, NULL, NULL, NULL), 0);
    char out_path[400], err_path[400];
    snprintf(out_path, sizeof out_path, "%s/tty.out", e.dir);
    snprintf(err_path, sizeof err_path, "%s/tty.err", e.dir);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, slave, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    char home_var[400], cfg_var[400];
    snprintf(home_var, sizeof home_var, "HOME=%s", e.home);
    snprintf(cfg_var, sizeof cfg_var, "MAXPOOL_CONFIG=%s", e.cfg);
    char *envp[] = {"PATH=/usr/bin:/bin", home_var, cfg_var, NULL};
    char *argv[] = {(char *)bin(), "login", "--api", "--name", "tty", NULL};
    pid_t pid;
    cr_assert_eq(posix_spawn(&pid, argv[0], &fa, NULL, argv, envp), 0);
    posix_spawn_file_actions_destroy(&fa);
    /* Type only once the program has turned echo off (bounded wait). */
    struct termios tio;
    bool off = false;
    for (int i = 0; i < 2000 && !off; i++) {
        cr_assert_eq(tcgetattr(slave, &tio), 0);
        off = !(tio.c_lflag & ECHO);
        if (!off) {
            struct timespec ts = {0, 5 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    cr_assert(off, "echo was never turned off");
    const char *typed = "sk-ant-api03-typed-on-a-tty-000\n";
    cr_assert_eq(write(master, typed, strlen(typed)), (ssize_t)strlen(typed));
    cr_assert_eq(finish(pid), 0);
    cr_assert_eq(tcgetattr(slave, &tio), 0);
    cr_assert(tio.c_lflag & ECHO, "echo was not restored");
    /* Whatever the terminal showed must not include the key. */
    int fl = fcntl(master, F_GETFL);
    fcntl(master, F_SETFL, fl | O_NONBLOCK);
    char shown[512];
    ssize_t n = read(master, shown, sizeof shown - 1);
    shown[n > 0 ? n : 0] = '\0';
    cr_assert_null(strstr(shown, "sk-ant"), "the key was echoed: %s", shown);
    char *err = slurp(err_path);
    cr_assert(strstr(err, "Anthropic API key: "), "%s", err);
    free(err);
    close(master);
    close(slave);
    json_t *cfg = load_disk(e.cfg);
    int idx = config_account_find(cfg, "tty");
    cr_assert_geq(idx, 0);
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(json_object_get(cfg, "accounts"), (size_t)idx), "apiKey")),
                     "sk-ant-api03-typed-on-a-tty-000");
    json_decref(cfg);
}

Test(cli, login_api_without_a_key)
{
    env_t e;
    env_init(&e);
    add_key(&e, "keep", "sk-ant-api03-keep-000000000000000\n");
    char *before = slurp(e.cfg);
    const char *inputs[] = {"", "\n", "   \n"};
    for (int i = 0; i < 3; i++) {
        run_t r = run_full(&e, ARGS("login", "--api"), inputs[i], NULL);
        cr_assert_eq(r.code, 1);
        cr_assert_str_eq(r.err, "No API key provided\n");
        cr_assert_str_eq(r.out, "");
        run_free(&r);
    }
    char *after = slurp(e.cfg);
    cr_assert_str_eq(after, before);
    free(before);
    free(after);
}

Test(cli, login_without_api_explains_oauth_is_not_built)
{
    env_t e;
    env_init(&e);
    const char *const *forms[] = {ARGS("login"), ARGS("login", "--oauth")};
    for (int i = 0; i < 2; i++) {
        run_t r = run(&e, forms[i]);
        cr_assert_eq(r.code, 1);
        cr_assert_str_eq(r.out, "");
        cr_assert(strstr(r.err, "maxpool login --api"), "%s", r.err);
        run_free(&r);
    }
}

/* ------------------------------------------------------------- accounts ---- */

Test(cli, accounts_empty)
{
    env_t e;
    env_init(&e);
    write_file(e.cfg, "{}", 0600);
    run_t r = run(&e, ARGS("accounts"));
    cr_assert_eq(r.code, 0);
    cr_assert_str_eq(r.out, "No accounts configured.\n"
                            "Add one with: maxpool login (browser) or maxpool login --api\n");
    cr_assert_str_eq(r.err, "");
    run_free(&r);
}

Test(cli, accounts_lists_the_1_20_4_fixture)
{
    env_t e;
    env_init(&e);
    char *fixture = slurp("tests/fixtures/maxpool-1.20.4.json");
    cr_assert_neq(fixture[0], '\0');
    write_file(e.cfg, fixture, 0600);
    /* expiresAt 1795000000000 is 3 h 25 min after this "now". */
    const char *const now[] = {"MAXPOOL_TEST_NOW_MS=1794987700000", NULL};
    run_t r = run_full(&e, ARGS("accounts", "-v"), NULL, now);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert_str_eq(r.out, "  [1] alice@example.com (oauth, login)\n"
                            "       Token: expires in 3h 25m\n"
                            "  [2] api-1 (apikey)  sk-ant-api03-FA...\n"
                            "  [3] glm-work (provider zai, disabled)\n");
    cr_assert_str_eq(r.err, "");
    run_free(&r);
    r = run(&e, ARGS("accounts"));
    cr_assert_null(strstr(r.out, "Token:"), "expiry only with -v");
    run_free(&r);
    const char *const later[] = {"MAXPOOL_TEST_NOW_MS=1795000000000", NULL};
    r = run_full(&e, ARGS("accounts", "--verbose"), NULL, later);
    cr_assert(strstr(r.out, "       Token: expired\n"), "%s", r.out);
    run_free(&r);
    const char *const soon[] = {"MAXPOOL_TEST_NOW_MS=1794999000000", NULL};
    r = run_full(&e, ARGS("accounts", "-v"), NULL, soon);
    cr_assert(strstr(r.out, "       Token: expires in 16m\n"), "%s", r.out);
    run_free(&r);
    /* Listing never rewrote the file, nor even took the lock (works on a read-only file). */
    char *now_text = slurp(e.cfg);
    cr_assert_str_eq(now_text, fixture);
    char lock[400];
    snprintf(lock, sizeof lock, "%s.lock", e.cfg);
    struct stat st;
    cr_assert_neq(stat(lock, &st), 0, "accounts took the write lock");
    free(now_text);
    free(fixture);
}

Test(cli, accounts_never_prints_a_whole_key)
{
    env_t e;
    env_init(&e);
    add_key(&e, "short", "abcdefgh\n");
    add_key(&e, "long", "sk-ant-api03-SECRETSECRETSECRET\n");
    run_t r = run(&e, ARGS("accounts"));
    cr_assert_str_eq(r.out, "  [1] short (apikey)  abcd...\n"
                            "  [2] long (apikey)  sk-ant-api03-SE...\n");
    run_free(&r);
}

Test(cli, accounts_removes_duplicate_uuids)
{
    env_t e;
    env_init(&e);
    write_file(e.cfg,
               "{\"accounts\": [{\"name\": \"old\", \"type\": \"oauth\", \"accountUuid\": "
               "\"u\"}, {\"name\": \"new\", \"type\": \"oauth\", \"accountUuid\": \"u\"}]}",
               0600);
    run_t r = run(&e, ARGS("accounts"));
    cr_assert_eq(r.code, 0);
    cr_assert_str_eq(r.out, "Removed 1 duplicate account(s)\n\n  [1] new (oauth)\n");
    run_free(&r);
    json_t *cfg = load_disk(e.cfg);
    cr_assert_eq(json_array_size(json_object_get(cfg, "accounts")), 1u);
    json_decref(cfg);
}

/* -------------------------------------------------------- remove / rename ---- */

Test(cli, remove_errors_and_success)
{
    /* §13.5 */
    env_t e;
    env_init(&e);
    add_key(&e, "a", "sk-ant-api03-aaaaaaaaaaaaaaaaaaaa\n");
    add_key(&e, "b", "sk-ant-api03-bbbbbbbbbbbbbbbbbbbb\n");
    char *before = slurp(e.cfg);
    run_t r = run(&e, ARGS("remove", "nope"));
    cr_assert_eq(r.code, 1);
    cr_assert_str_eq(r.err, "Account \"nope\" not found\n");
    cr_assert_str_eq(r.out, "");
    run_free(&r);
    r = run(&e, ARGS("remove"));
    cr_assert_eq(r.code, 1);
    cr_assert_str_eq(r.err, "Usage: maxpool remove <account-name>\n");
    run_free(&r);
    char *after = slurp(e.cfg);
    cr_assert_str_eq(after, before, "a failed remove must not write");
    free(after);
    free(before);
    r = run(&e, ARGS("remove", "a"));
    cr_assert_eq(r.code, 0);
    cr_assert_str_eq(r.out, "Removed account \"a\"\n");
    run_free(&r);
    json_t *cfg = load_disk(e.cfg);
    json_t *acc = json_object_get(cfg, "accounts");
    cr_assert_eq(json_array_size(acc), 1u);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(acc, 0), "name")), "b");
    json_decref(cfg);
}

Test(cli, rename_by_index_and_errors)
{
    /* §13.4 */
    env_t e;
    env_init(&e);
    add_key(&e, "one", "sk-ant-api03-1111111111111111111\n");
    add_key(&e, "two", "sk-ant-api03-2222222222222222222\n");
    run_t r = run(&e, ARGS("rename", "2", "new"));
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert_str_eq(r.out, "Renamed \"two\" → \"new\"\n"
                            "Restart maxpool to apply this to a running proxy (or rename live "
                            "from the TUI: a → n).\n");
    run_free(&r);
    r = run(&e, ARGS("rename", "new", "one"));
    cr_assert_eq(r.code, 1);
    cr_assert_str_eq(r.err, "An account named \"one\" already exists\n");
    cr_assert_str_eq(r.out, "");
    run_free(&r);
    r = run(&e, ARGS("rename", "9", "x"));
    cr_assert_eq(r.code, 1);
    cr_assert_str_eq(r.err, "Account \"9\" not found\n");
    run_free(&r);
    r = run(&e, ARGS("rename", "one"));
    cr_assert_eq(r.code, 1);
    cr_assert_str_eq(r.err, "Usage: maxpool rename <account-name|number> <new-name>\n");
    run_free(&r);
    json_t *cfg = load_disk(e.cfg);
    json_t *acc = json_object_get(cfg, "accounts");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(acc, 0), "name")), "one");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(acc, 1), "name")), "new");
    json_decref(cfg);
}

Test(cli, rename_keeps_unknown_keys_order_and_preferred_account)
{
    env_t e;
    env_init(&e);
    char *fixture = slurp("tests/fixtures/maxpool-1.20.4.json");
    /* Make api-1 the preferred account, as the TUI would. */
    char *pref = strstr(fixture, "\"preferredAccount\": null");
    cr_assert_not_null(pref);
    char *edited = malloc(strlen(fixture) + 16);
    snprintf(edited, strlen(fixture) + 16, "%.*s\"preferredAccount\": \"api-1\"%s",
             (int)(pref - fixture), fixture, pref + strlen("\"preferredAccount\": null"));
    write_file(e.cfg, edited, 0644);
    run_t r = run(&e, ARGS("rename", "api-1", "api-main"));
    cr_assert_eq(r.code, 0, "%s", r.err);
    run_free(&r);
    /* Expected bytes: the same file with both names replaced and _generation 7 → 8. */
    char *want = replace_all(edited, "\"api-1\"", "\"api-main\"");
    char *want2 = replace_all(want, "\"_generation\": 7", "\"_generation\": 8");
    char *disk = slurp(e.cfg);
    cr_assert_str_eq(disk, want2);
    free(want);
    free(want2);
    struct stat st;
    stat(e.cfg, &st);
    cr_assert_eq(st.st_mode & 0777, 0600);
    free(disk);
    free(edited);
    free(fixture);
}

/* ---------------------------------------------------------- concurrency ---- */

Test(cli, fifty_concurrent_logins_lose_nothing, .timeout = 120)
{
    /* Part A7: lock, re-read, apply, write — every process's account survives. */
    enum { N = 50 };
    env_t e;
    env_init(&e);
    pid_t pids[N];
    for (int i = 0; i < N; i++) {
        char name[16], key[64], tag[16];
        snprintf(name, sizeof name, "k%d", i);
        snprintf(key, sizeof key, "sk-ant-api03-concurrent-%04d\n", i);
        snprintf(tag, sizeof tag, "c%d", i);
        pids[i] = start(&e, ARGS("login", "--api", "--name", name), key, tag, NULL, NULL);
    }
    int created = 0;
    for (int i = 0; i < N; i++) {
        char tag[16];
        snprintf(tag, sizeof tag, "c%d", i);
        run_t r = collect(&e, pids[i], tag);
        cr_assert_eq(r.code, 0, "login k%d failed: %s", i, r.err);
        if (strstr(r.err, "Created config at")) created++;
        run_free(&r);
    }
    cr_assert_eq(created, 1, "exactly one process creates the file");
    json_t *cfg = load_disk(e.cfg);
    json_t *acc = json_object_get(cfg, "accounts");
    cr_assert_eq(json_array_size(acc), (size_t)N);
    for (int i = 0; i < N; i++) {
        char name[16], key[64];
        snprintf(name, sizeof name, "k%d", i);
        snprintf(key, sizeof key, "sk-ant-api03-concurrent-%04d", i);
        int idx = config_account_find(cfg, name);
        cr_assert_geq(idx, 0, "%s lost", name);
        cr_assert_str_eq(
            json_string_value(json_object_get(json_array_get(acc, (size_t)idx), "apiKey")), key);
    }
    /* One write to create the file plus one per login. */
    cr_assert_eq(json_integer_value(json_object_get(cfg, "_generation")), N + 1);
    json_decref(cfg);
    struct stat st;
    cr_assert_eq(stat(e.cfg, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    char cfgdir[400];
    snprintf(cfgdir, sizeof cfgdir, "%s/cfg", e.dir);
    cr_assert_eq(tmp_files_in(cfgdir), 0);
}
