/* maxpool status — asks the running server for /maxpool/status and prints it (§1). */
#include "cli/cli.h"
#include "core/buf.h"
#include "store/options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* §1 durations: <1000ms → Nms; <60s → N.Ns; else MmSSs. */
static void status_duration(long long ms, char *out, size_t n)
{
    if (ms < 1000)
        snprintf(out, n, "%lldms", ms);
    else if (ms < 60000)
        snprintf(out, n, "%.1fs", (double)ms / 1000.0);
    else
        snprintf(out, n, "%lldm%02llds", ms / 60000, (ms % 60000) / 1000);
}

static void pct(const char *label, json_t *v)
{
    if (json_is_number(v))
        printf("%s%5.1f%% used", label, json_number_value(v) * 100);
    else
        printf("%s-", label);
}

static void print_account(json_t *a, const char *current)
{
    const char *name = json_string_value(json_object_get(a, "name"));
    const char *type = json_string_value(json_object_get(a, "type"));
    bool cur = current && name && strcmp(current, name) == 0;
    printf("  %s (%s)%s\n", name ? name : "?", type ? type : "?", cur ? " *" : "");
    json_t *en = json_object_get(a, "enabled");
    const char *st = json_string_value(json_object_get(a, "status"));
    printf("    Status:   %s\n", json_is_false(en) ? "disabled" : st ? st : "-");
    json_t *load = json_object_get(a, "load");
    json_t *live = json_object_get(load, "current");
    printf("    Load:     current %lld/%lld weight",
           (long long)json_integer_value(json_object_get(live, "inFlight")),
           (long long)json_integer_value(json_object_get(live, "activeWeight")));
    static const char *const windows[][2] = {{"last15m", "15m"}, {"last1h", "1h"}};
    for (int w = 0; w < 2; w++) {
        json_t *l = json_object_get(load, windows[w][0]);
        long long req = (long long)json_integer_value(json_object_get(l, "requests"));
        long long failed = (long long)json_integer_value(json_object_get(l, "failed"));
        json_t *avg = json_object_get(l, "avgMs");
        printf(", %s %lld req", windows[w][1], req);
        if (json_is_integer(avg)) {
            char d[32];
            status_duration(json_integer_value(avg), d, sizeof d);
            printf(" avg %s", d);
        }
        if (failed) printf(", %lld failed", failed);
    }
    printf("\n");
    json_t *q = json_object_get(a, "quota");
    if (type && strcmp(type, "apikey") == 0) {
        json_t *tl = json_object_get(q, "tokensLimit"), *tr = json_object_get(q, "tokensRemaining");
        json_t *rl = json_object_get(q, "requestsLimit"),
               *rr = json_object_get(q, "requestsRemaining");
        printf("    Tokens:   ");
        if (json_integer_value(tl) > 0)
            printf("%.1f%% used",
                   100.0 * (1.0 - (double)json_integer_value(tr) / (double)json_integer_value(tl)));
        else
            printf("-");
        printf("    Requests: ");
        if (json_integer_value(rl) > 0)
            printf("%.1f%% used\n",
                   100.0 * (1.0 - (double)json_integer_value(rr) / (double)json_integer_value(rl)));
        else
            printf("-\n");
    } else {
        pct("    Session: ", json_object_get(q, "unified5h"));
        pct("    Weekly: ", json_object_get(q, "unified7d"));
        printf("\n");
    }
    json_t *u = json_object_get(a, "usage");
    printf("    Total:    %lld tokens, %lld requests\n",
           (long long)(json_integer_value(json_object_get(u, "totalInputTokens")) +
                       json_integer_value(json_object_get(u, "totalOutputTokens"))),
           (long long)json_integer_value(json_object_get(u, "totalRequests")));
    const char *cd = json_string_value(json_object_get(a, "cooldownUntil"));
    if (cd) printf("    Throttled until: %s\n", cd);
}

int cmd_status(int argc, char **argv)
{
    char *path;
    json_t *cfg = cli_config_open(&path);
    if (!cfg) return 1;
    char base[512], url[600], keyh[512];
    cli_base_url(cfg, base, sizeof base);
    snprintf(url, sizeof url, "%s/maxpool/status", base);
    const char *key = options_get_string(cfg, "proxy.apiKey");
    snprintf(keyh, sizeof keyh, "x-api-key: %s", key ? key : "");
    const char *hdrs[] = {keyh, NULL};
    const char *host = options_get_string(cfg, "proxy.host");
    long long port = (long long)options_get_int(cfg, "proxy.port");
    long status = 0;
    buf_t body;
    buf_init(&body, 16u << 20);
    char err[256];
    int rc = cli_http("GET", url, hdrs, NULL, 5000, &status, NULL, &body, err, sizeof err);
    json_t *doc = rc == 0 ? json_loadb(body.data ? body.data : "", body.len, 0, NULL) : NULL;
    int code = 0;
    if (rc == 0 && status == 401) {
        /* Part A9: a wrong key is not a dead server. */
        fprintf(stderr, "The proxy at %s:%lld refused the key in %s (proxy.apiKey).\n",
                host ? host : "127.0.0.1", port, path);
        code = 1;
    } else if (!doc || status != 200) {
        fprintf(stderr,
                "Cannot connect to proxy at %s:%lld\nIs the server running? Start with: "
                "maxpool server\n",
                host ? host : "127.0.0.1", port);
        code = 1;
    } else {
        json_t *routing = json_object_get(doc, "routing");
        const char *mode = json_string_value(json_object_get(routing, "mode"));
        const char *pref = json_string_value(json_object_get(routing, "preferredAccount"));
        if (mode && strcmp(mode, "preferred") == 0 && pref)
            printf("Routing:        prefer %s with automatic failover\n", pref);
        else
            printf("Routing:        automatic load balancing\n");
        const char *current = json_string_value(json_object_get(doc, "currentAccount"));
        printf("Last selected:  %s\n", current ? current : "-");
        printf("Switch at:      %.0f%% usage\n",
               json_number_value(json_object_get(doc, "switchThreshold")) * 100);
        json_t *thr = json_object_get(doc, "upstreamThrottle");
        if (json_is_true(json_object_get(thr, "active"))) {
            const char *until = json_string_value(json_object_get(thr, "until"));
            long long queued = (long long)json_integer_value(json_object_get(thr, "queued"));
            if (json_is_true(json_object_get(thr, "probeInFlight")))
                printf("Anthropic:      temporarily throttled (probing recovery)\n");
            else
                printf("Anthropic:      temporarily throttled (retry at %s)\n",
                       until ? until : "?");
            if (queued) printf("                queued %lld\n", queued);
        }
        json_t *accts = json_object_get(doc, "accounts");
        size_t i;
        json_t *a;
        json_array_foreach(accts, i, a) print_account(a, current);
    }
    json_decref(doc);
    buf_free(&body);
    json_decref(cfg);
    free(path);
    return code;
}
