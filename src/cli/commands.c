/* The command table: one row per command, one file per command (cmd_*.c). */
#include "cli/cli.h"

#include <string.h>

const cli_command_t cli_commands[] = {
    {"help", "help", "Show this help", cmd_help, false},
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
