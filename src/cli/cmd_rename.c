/* maxpool rename <name|#> <new> — rename an account by name or 1-based list number (§1). */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>

#include "store/config.h"

typedef struct rename_args {
    const char *target, *newname;
    char *old;
} rename_args_t;

static int rename_mutate(json_t *cfg, void *ud, char **err)
{
    rename_args_t *r = ud;
    free(r->old);
    r->old = NULL;
    return config_account_rename(cfg, r->target, r->newname, &r->old, err);
}

int cmd_rename(int argc, char **argv)
{
    char *path;
    json_t *cfg = cli_config_open(&path);
    if (!cfg) return 1;
    json_decref(cfg);
    if (argc < 3 || !argv[1][0] || !argv[2][0]) {
        fprintf(stderr, "Usage: maxpool rename <account-name|number> <new-name>\n");
        free(path);
        return 1;
    }
    rename_args_t r = {.target = argv[1], .newname = argv[2]};
    char *err = NULL;
    if (config_update(path, rename_mutate, &r, NULL, NULL, &err) < 0) {
        fprintf(stderr, "%s\n", err);
        free(err);
        free(r.old);
        free(path);
        return 1;
    }
    printf("Renamed \"%s\" → \"%s\"\n", r.old, argv[2]);
    printf("Restart maxpool to apply this to a running proxy (or rename live from the TUI: a → "
           "n).\n");
    free(r.old);
    free(path);
    return 0;
}
