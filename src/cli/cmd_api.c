/* maxpool api <path> [--account N] [--method M] [--data JSON] — a raw authenticated call
 * with one account's credential (§1). Head on stderr, body on stdout. */
#include "cli/cli.h"
#include "core/buf.h"
#include "store/config.h"
#include "store/options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_api(int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-') {
        fprintf(stderr, "Usage: maxpool api <path> [--account N] [--method M] [--data JSON]\n");
        return 1;
    }
    char *path;
    json_t *cfg = cli_config_open(&path);
    if (!cfg) return 1;
    json_t *accts = config_accounts(cfg);
    const char *want = cli_arg_value(argc, argv, "--account");
    json_t *acct = NULL;
    if (want) {
        int i = config_account_find(cfg, want);
        if (i < 0) {
            fprintf(stderr, "Account \"%s\" not found\n", want);
            json_decref(cfg);
            free(path);
            return 1;
        }
        acct = json_array_get(accts, (size_t)i);
    } else {
        size_t i;
        json_t *a;
        json_array_foreach(accts, i, a)
        {
            const char *t = json_string_value(json_object_get(a, "type"));
            if (t && strcmp(t, "oauth") == 0) {
                acct = a;
                break;
            }
        }
        if (!acct) acct = json_array_get(accts, 0);
    }
    if (!acct) {
        fprintf(stderr, "No accounts configured.\n");
        json_decref(cfg);
        free(path);
        return 1;
    }
    const char *type = json_string_value(json_object_get(acct, "type"));
    bool oauth = type && strcmp(type, "oauth") == 0;
    const char *cred = json_string_value(json_object_get(acct, oauth ? "accessToken" : "apiKey"));
    if (!cred) cred = json_string_value(json_object_get(acct, "authToken"));
    char authh[4096];
    snprintf(authh, sizeof authh, oauth ? "Authorization: Bearer %s" : "x-api-key: %s",
             cred ? cred : "");
    const char *data = cli_arg_value(argc, argv, "--data");
    const char *method = cli_arg_value(argc, argv, "--method");
    if (!method) method = data ? "POST" : "GET";
    const char *hdrs[] = {authh, data ? "Content-Type: application/json" : NULL, NULL};
    char *url;
    const char *target = argv[1];
    if (strncmp(target, "http", 4) == 0) {
        url = strdup(target);
    } else {
        const char *up = options_get_string(cfg, "upstream");
        size_t n = strlen(up);
        while (n > 0 && up[n - 1] == '/')
            n--;
        if (asprintf(&url, "%.*s%s", (int)n, up, target) < 0) abort();
    }
    long status = 0;
    buf_t head, body;
    buf_init(&head, 0);
    buf_init(&body, 64u << 20);
    char err[256];
    int rc = cli_http(method, url, hdrs, data, 60000, &status, &head, &body, err, sizeof err);
    int code = 0;
    if (rc != 0) {
        fprintf(stderr, "Request failed: %s\n", err);
        code = 1;
    } else {
        /* The head: status line then "  k: v" lines. */
        char *save = NULL;
        for (char *line = strtok_r(head.data, "\r\n", &save); line;
             line = strtok_r(NULL, "\r\n", &save)) {
            if (strncmp(line, "HTTP/", 5) == 0) {
                const char *sp = strchr(line, ' ');
                fprintf(stderr, "%s\n", sp ? sp + 1 : line);
            } else {
                fprintf(stderr, "  %s\n", line);
            }
        }
        fprintf(stderr, "\n");
        json_t *doc = json_loadb(body.data ? body.data : "", body.len, 0, NULL);
        if (doc) {
            char *pretty = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
            printf("%s\n", pretty);
            free(pretty);
            json_decref(doc);
        } else if (body.len) {
            fwrite(body.data, 1, body.len, stdout);
        }
    }
    free(url);
    buf_free(&head);
    buf_free(&body);
    json_decref(cfg);
    free(path);
    return code;
}
