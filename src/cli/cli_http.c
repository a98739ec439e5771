/* A blocking HTTP call for CLI commands (status, api): libcurl easy, nothing invented. */
#include "cli/cli.h"
#include "core/buf.h"

#include <curl/curl.h>
#include <string.h>

static size_t collect(char *p, size_t size, size_t nmemb, void *ud)
{
    buf_append(ud, p, size * nmemb);
    return size * nmemb;
}

int cli_http(const char *method, const char *url, const char *const *headers, const char *body,
             long timeout_ms, long *status, buf_t *resp_head, buf_t *resp_body, char *err,
             size_t errlen)
{
    CURL *e = curl_easy_init();
    if (!e) {
        snprintf(err, errlen, "libcurl unavailable");
        return -1;
    }
    struct curl_slist *sl = NULL;
    for (const char *const *h = headers; h && *h; h++)
        sl = curl_slist_append(sl, *h);
    sl = curl_slist_append(sl, "Expect:");
    char ebuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, sl);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, ebuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, resp_body);
    if (resp_head) {
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, collect);
        curl_easy_setopt(e, CURLOPT_HEADERDATA, resp_head);
    }
    if (strcmp(method, "GET") != 0) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    if (body) curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    CURLcode rc = curl_easy_perform(e);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(sl);
    curl_easy_cleanup(e);
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "%s", ebuf[0] ? ebuf : curl_easy_strerror(rc));
        return -1;
    }
    return 0;
}
