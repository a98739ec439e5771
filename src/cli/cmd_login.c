/* maxpool login [--api|--oauth] [--name N] — add an account (§1, §7.4).
 *
 * The API key comes from a no-echo prompt on a terminal or from the first line of stdin
 * otherwise, so scripts can pipe it in. The account is appended under the config lock
 * (config_update), which is what lets many logins run at once without losing one. */
#include "cli/cli.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "core/xalloc.h"
#include "store/config.h"

#define MAX_KEY_LINE 8192

/* ------------------------------------------------------- reading input ---- */

static struct termios saved_tio;
static volatile sig_atomic_t tio_saved;

/* A signal during the no-echo prompt must not leave the terminal silent. */
static void restore_and_reraise(int sig)
{
    if (tio_saved) tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tio);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Clears a buffer that held a key; volatile so the compiler keeps the stores (portable
 * stand-in for explicit_bzero). */
static void wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n--)
        *v++ = 0;
}

/* Reads one line from stdin (without its newline, trimmed); returns a new string or NULL at
 * end of input. */
static char *read_line(void)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (n < 0) {
        free(line);
        return NULL;
    }
    if (n > MAX_KEY_LINE) line[MAX_KEY_LINE] = '\0';
    char *s = line;
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    size_t len = strlen(s);
    while (len &&
           (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r' || s[len - 1] == '\n'))
        len--;
    char *out = xstrndup(s, len);
    wipe(line, cap);
    free(line);
    return out;
}

/* Prompts on stderr and reads a line with echo off when stdin is a terminal. */
static char *read_secret(const char *prompt)
{
    if (!isatty(STDIN_FILENO)) return read_line();
    fputs(prompt, stderr);
    fflush(stderr);
    struct termios tio;
    bool noecho = tcgetattr(STDIN_FILENO, &saved_tio) == 0;
    struct sigaction sa, old_int, old_term, old_hup;
    if (noecho) {
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = restore_and_reraise;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, &old_int);
        sigaction(SIGTERM, &sa, &old_term);
        sigaction(SIGHUP, &sa, &old_hup);
        tio_saved = 1;
        tio = saved_tio;
        tio.c_lflag &= ~(tcflag_t)ECHO;
        tio.c_lflag |= ECHONL;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &tio);
    }
    char *line = read_line();
    if (noecho) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tio);
        tio_saved = 0;
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
        sigaction(SIGHUP, &old_hup, NULL);
    } else {
        fputc('\n', stderr);
    }
    return line;
}

/* ------------------------------------------------------------ API key ---- */

typedef struct add_key {
    const char *name; /* --name, or NULL for api-<n> */
    const char *key;
    char *added; /* the name used (set by the mutation) */
} add_key_t;

static int add_key_mutate(json_t *cfg, void *ud, char **err)
{
    add_key_t *a = ud;
    free(a->added);
    /* Named under the lock, so concurrent logins count each other's api-<n>. */
    a->added = a->name ? xstrdup(a->name) : config_account_next_name(cfg, "api-");
    json_t *acct =
        json_pack("{s:s, s:s, s:s}", "name", a->added, "type", "apikey", "apiKey", a->key);
    if (config_account_append(cfg, acct) < 0) {
        *err = xstrdup("config: \"accounts\" must be an array");
        return -1;
    }
    return 0;
}

static int login_api(int argc, char **argv)
{
    char *path;
    json_t *cfg = cli_config_open(&path);
    if (!cfg) return 1;
    json_decref(cfg);
    char *key = read_secret("Anthropic API key: ");
    if (!key || !*key) {
        fprintf(stderr, "No API key provided\n");
        free(key);
        free(path);
        return 1;
    }
    add_key_t a = {.name = cli_arg_value(argc, argv, "--name"), .key = key};
    char *err = NULL;
    int rc = config_update(path, add_key_mutate, &a, NULL, NULL, &err);
    wipe(key, strlen(key));
    free(key);
    if (rc < 0) {
        fprintf(stderr, "%s\n", err);
        free(err);
        free(a.added);
        free(path);
        return 1;
    }
    printf("Added API key account \"%s\"\n", a.added);
    printf("Saved to %s\n", path);
    free(a.added);
    free(path);
    return 0;
}

/* -------------------------------------------------------------- OAuth ---- */

static int login_oauth(void)
{
    char *path;
    json_t *cfg = cli_config_open(&path);
    if (!cfg) return 1;
    json_decref(cfg);
    free(path);
    fprintf(stderr, "Browser login (Claude subscription) is not available in this build yet; "
                    "it arrives with the OAuth work.\n\n"
                    "Alternatives:\n"
                    "  maxpool login --api   Add an API key instead\n");
    return 1;
}

int cmd_login(int argc, char **argv)
{
    if (cli_has_flag(argc, argv, "--api")) return login_api(argc, argv);
    if (cli_has_flag(argc, argv, "--oauth")) return login_oauth();
    if (!isatty(STDOUT_FILENO)) return login_oauth();
    /* Interactive menu; prompts go to stderr so stdout stays clean (Part A9). */
    fprintf(stderr, "Select login method:\n\n"
                    "  1. Claude subscription  (Pro, Max, Team, Enterprise)\n"
                    "  2. Anthropic API key    (Console API billing)\n\n"
                    "Choice [1]: ");
    fflush(stderr);
    char *choice = read_line();
    int rc;
    if (!choice || !*choice || strcmp(choice, "1") == 0) {
        rc = login_oauth();
    } else if (strcmp(choice, "2") == 0) {
        rc = login_api(argc, argv);
    } else {
        fprintf(stderr, "Invalid choice: %s\n", choice);
        rc = 1;
    }
    free(choice);
    return rc;
}
