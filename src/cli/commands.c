/* The command table: one row per command, one file per command (cmd_*.c). */
#include "cli/cli.h"

#include <string.h>

const cli_command_t cli_commands[] = {
    {"server", "server [--log-to DIR]", "Start the proxy (default)", cmd_server, false},
    {"run", "run [-- args...]", "Run Claude Code through the proxy", cmd_run, false},
    {"status", "status", "Show the running proxy's accounts and quota", cmd_status, false},
    {"api", "api <path> [--account N]", "Call an API endpoint with an account's credentials",
     cmd_api, false},
    {"login", "login [--api] [--name N]", "Add an account", cmd_login, false},
    {"env", "env [--with-key]", "Print env vars to use with Claude", cmd_env, false},
    {"accounts", "accounts [-v]", "List configured accounts", cmd_accounts, false},
    {"remove", "remove <name>", "Remove an account", cmd_remove, false},
    {"rename", "rename <name|#> <new>", "Rename an account", cmd_rename, false},
    {"demo", "demo [--seconds N]", "Watch the pool at work against the simulator", cmd_demo, false},
    {"help", "help", "Show this help", cmd_help, false},
    {"help-config", "help-config", "Print docs/configuration.md from the options table",
     cmd_help_config, true},
    {"sim", "sim [--port N] [--script F]",
     "Run the simulated Anthropic API (for tests and the demo)", cmd_sim, false},
    {NULL, NULL, NULL, NULL, false},
};

const char *cli_arg_value(int argc, char **argv, const char *flag)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], flag) == 0) {
            if (i + 1 < argc && argv[i + 1][0] != '\0') return argv[i + 1];
            return NULL;
        }
    }
    return NULL;
}

bool cli_has_flag(int argc, char **argv, const char *flag)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], flag) == 0) return true;
    return false;
}
