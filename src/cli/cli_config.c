/* The config loading every command shares (§1, Part A9). */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>

#include "store/config.h"
#include "store/options.h"

json_t *cli_config_open(char **path)
{
    *path = config_path();
    json_t *cfg = NULL;
    bool created = false;
    char *err = NULL;
    if (config_load_or_create(*path, &cfg, &created, &err) < 0) {
        fprintf(stderr, "%s\n", err);
        free(err);
        free(*path);
        *path = NULL;
        return NULL;
    }
    if (created) fprintf(stderr, "Created config at %s\n", *path);
    char *problems = NULL;
    if (options_validate(cfg, &problems) > 0) {
        /* Only warned here: account commands must keep working on a file with a typo. */
        fprintf(stderr, "Warning: %s is not fully valid:\n%s\n", *path, problems);
        free(problems);
    }
    return cfg;
}
