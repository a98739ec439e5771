/* maxpool help — lists the commands of the table (§1). */
#include "cli/cli.h"

#include <stdio.h>

void cli_print_help(void)
{
    printf("maxpool — one person's Claude accounts behind one local endpoint\n\n");
    printf("Usage: maxpool [command] [options]\n\nCommands:\n");
    for (const cli_command_t *c = cli_commands; c->name; c++) {
        if (c->hidden) continue;
        printf("  %-28s %s\n", c->usage, c->summary);
    }
}

int cmd_help(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_print_help();
    return 0;
}
