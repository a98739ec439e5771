/* maxpool env [--with-key] — shell exports for the proxy (§1). */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/options.h"

/* Prints `export NAME=value`, single-quoting the value when the shell would otherwise read
 * it differently: `eval "$(maxpool env)"` must never run a hand-edited value. */
static void print_export(const char *name, const char *value)
{
    bool plain = *value != '\0';
    for (const char *p = value; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:/@%+=,-[]",
                    *p))
            plain = false;
    if (plain) {
        printf("export %s=%s\n", name, value);
        return;
    }
    printf("export %s='", name);
    for (const char *p = value; *p; p++) {
        if (*p == '\'')
            fputs("'\\''", stdout);
        else
            putchar(*p);
    }
    printf("'\n");
}

int cmd_env(int argc, char **argv)
{
    char *path;
    json_t *cfg = cli_config_open(&path);
    if (!cfg) return 1;
    char url[512];
    cli_base_url(cfg, url, sizeof url);
    print_export("ANTHROPIC_BASE_URL", url);
    int rc = 0;
    if (cli_has_flag(argc, argv, "--with-key")) {
        const char *key = options_get_string(cfg, "proxy.apiKey");
        if (key && *key) {
            print_export("ANTHROPIC_API_KEY", key);
        } else {
            fprintf(stderr, "config: \"proxy.apiKey\" is not set in %s\n", path);
            rc = 1;
        }
    }
    json_decref(cfg);
    free(path);
    return rc;
}
