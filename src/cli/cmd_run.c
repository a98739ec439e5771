/* maxpool run [--] [claude args…] — runs Claude Code through the proxy (§1). */
#include "cli/cli.h"
#include "store/options.h"

#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int cmd_run(int argc, char **argv)
{
    char *path;
    json_t *cfg = cli_config_open(&path);
    if (!cfg) return 1;
    char url[512];
    cli_base_url(cfg, url, sizeof url);
    json_decref(cfg);
    free(path);
    /* Only the base URL: Claude Code keeps its own login, so no auth-conflict warning. */
    setenv("ANTHROPIC_BASE_URL", url, 1);

    int first = 1;
    if (first < argc && strcmp(argv[first], "--") == 0) first++;
    char **args = calloc((size_t)(argc - first + 2), sizeof *args);
    if (!args) abort();
    args[0] = "claude";
    for (int i = first; i < argc; i++)
        args[i - first + 1] = argv[i];
    /* Ctrl-C belongs to Claude Code: we wait, it decides. The child gets default handlers. */
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t def;
    sigemptyset(&def);
    sigaddset(&def, SIGINT);
    sigaddset(&def, SIGQUIT);
    posix_spawnattr_setsigdefault(&attr, &def);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF);
    signal(SIGINT, SIG_IGN);
    signal(SIGQUIT, SIG_IGN);
    pid_t pid;
    int rc = posix_spawnp(&pid, "claude", NULL, &attr, args, environ);
    posix_spawnattr_destroy(&attr);
    free(args);
    if (rc == ENOENT) {
        fprintf(stderr, "Claude Code not found in PATH. Install it first.\n");
        return 1;
    }
    if (rc != 0) {
        fprintf(stderr, "Failed to start claude: %s\n", strerror(rc));
        return 1;
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return 1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
