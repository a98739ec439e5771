/* cli — the command table and the argument helpers every command shares (§1).
 *
 * Arguments follow the reference: argv[0] is the command word and flags are found by
 * simple lookup (cli_arg_value), unknown flags are ignored. Notices go to stderr so
 * stdout stays machine-readable (Part A9). */
#ifndef MAXPOOL_CLI_CLI_H
#define MAXPOOL_CLI_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct cli_command {
    const char *name;    /* the word typed after `maxpool` */
    const char *usage;   /* one line for `maxpool help`, e.g. "remove <name>" */
    const char *summary; /* what it does, for `maxpool help` */
    /* Runs the command; argv[0] is the command word. Returns the process exit code. */
    int (*exec)(int argc, char **argv);
    bool hidden; /* left out of help (internal or developer commands) */
} cli_command_t;

/* The command table, terminated by an entry with name == NULL (cli/commands.c). */
extern const cli_command_t cli_commands[];

/* The token after the first occurrence of flag, or NULL if absent or empty (§1). */
const char *cli_arg_value(int argc, char **argv, const char *flag);
/* True if flag occurs anywhere in argv. */
bool cli_has_flag(int argc, char **argv, const char *flag);
/* Prints the help text of §1 to stdout. */
void cli_print_help(void);

/* Loads the config for a command (§1): resolves the path, creates the file with the
 * defaults when missing (notice `Created config at <path>` on stderr, Part A9) and prints
 * validation problems on stderr as warnings. Returns the config (new reference) and *path
 * (caller frees), or NULL after printing the error on stderr. */
json_t *cli_config_open(char **path);

/* Writes the proxy's base URL (http://host:port, IPv6 bracketed) for cfg into out. */
void cli_base_url(const json_t *cfg, char *out, size_t outlen);

/* A blocking HTTP call for CLI commands: headers is a NULL-terminated list of "Name: value"
 * lines, body may be NULL. Fills *status, the raw response head (may be NULL) and body.
 * Returns 0, or -1 with a message in err when no response arrived. */
struct buf;
int cli_http(const char *method, const char *url, const char *const *headers, const char *body,
             long timeout_ms, long *status, struct buf *resp_head, struct buf *resp_body, char *err,
             size_t errlen);

/* Commands (one file each). */
int cmd_help(int argc, char **argv);
int cmd_help_config(int argc, char **argv);
int cmd_env(int argc, char **argv);
int cmd_login(int argc, char **argv);
int cmd_accounts(int argc, char **argv);
int cmd_remove(int argc, char **argv);
int cmd_rename(int argc, char **argv);
int cmd_server(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_api(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_sim(int argc, char **argv);

#endif
