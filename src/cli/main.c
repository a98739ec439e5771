/* maxpool — entry point: picks the command from argv[1] (§1). */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    const char *word = argc > 1 ? argv[1] : "server";
    /* No command, or a first argument that is a flag, means `server` (§1). */
    if (argc > 1 && argv[1][0] == '-') {
        if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) word = "help";
        else word = "server";
    }
    for (const cli_command_t *c = cli_commands; c->name; c++) {
        if (strcmp(c->name, word) == 0) {
            if (argc > 1 && argv[1][0] != '-') return c->exec(argc - 1, argv + 1);
            return c->exec(argc, argv);
        }
    }
    fprintf(stderr, "Unknown command: %s\n\n", word);
    cli_print_help();
    return 1;
}
