/* The proxy's base URL as clients should use it (§1 env, run, status). */
#include "cli/cli.h"
#include "store/options.h"

#include <stdio.h>
#include <string.h>

void cli_base_url(const json_t *cfg, char *out, size_t outlen)
{
    const char *host = options_get_string(cfg, "proxy.host");
    if (!host || !*host) host = "127.0.0.1";
    long long port = (long long)options_get_int(cfg, "proxy.port");
    /* An IPv6 literal needs brackets inside a URL. */
    bool v6 = strchr(host, ':') != NULL && host[0] != '[';
    snprintf(out, outlen, "http://%s%s%s:%lld", v6 ? "[" : "", host, v6 ? "]" : "", port);
}
