/* maxpool remove <name> — delete an account by its exact name (§1). */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>

#include "store/config.h"

static int remove_mutate(json_t *cfg, void *ud, char **err)
{
    return config_account_remove(cfg, ud, err);
}

int cmd_remove(int argc, char **argv)
{
    char *path;
    json_t *cfg = cli_config_open(&path);
    if (!cfg) return 1;
    json_decref(cfg);
    if (argc < 2 || !argv[1][0]) {
        fprintf(stderr, "Usage: maxpool remove <account-name>\n");
        free(path);
        return 1;
    }
    char *err = NULL;
    if (config_update(path, remove_mutate, argv[1], NULL, NULL, &err) < 0) {
        fprintf(stderr, "%s\n", err);
        free(err);
        free(path);
        return 1;
    }
    printf("Removed account \"%s\"\n", argv[1]);
    free(path);
    return 0;
}
