/* libFuzzer harness for sched: upstream response heads (headers, error type and message are
 * untrusted bytes) fed through select → response → complete on a small fleet, in virtual
 * time. Must never crash, leak a lease, or leave a utilization outside [0, 1]. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sched/sched.h"

#define NOW 1767225600000LL

static const int STATUSES[] = {200, 400, 401, 403, 429, 429, 429, 500, 503, 529};

static void check(const sched_t *s)
{
    int total = 0;
    for (size_t i = 0; i < s->n; i++) {
        const account_t *a = &s->accts[i];
        const quota_t *q = &a->quota;
        if (a->in_flight < 0 || a->active_weight < 0) abort();
        total += a->in_flight;
        if (q->unified5h != QUOTA_UNKNOWN && (q->unified5h < 0 || q->unified5h > 1)) abort();
        if (q->unified7d != QUOTA_UNKNOWN && (q->unified7d < 0 || q->unified7d > 1)) abort();
    }
    if (total != s->global_in_flight) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 8192) return 0;
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    sched_t s;
    sched_init(&s, NULL);
    for (int i = 0; i < 3; i++) {
        account_t a;
        char name[2] = {(char)('a' + i), 0};
        account_init(&a, name, i == 2 ? ACCOUNT_OAUTH : ACCOUNT_APIKEY, "k");
        sched_add_account(&s, &a, false, NOW);
    }
    /* Records separated by '\x1e': "<status byte><name>:<value>\n…\n<type>\n<message>". */
    int64_t now = NOW;
    char *save = NULL;
    for (char *rec = strtok_r(text, "\x1e", &save); rec; rec = strtok_r(NULL, "\x1e", &save)) {
        int status = STATUSES[(unsigned char)rec[0] % 10];
        quota_header_t h[16];
        size_t n = 0;
        const char *type = NULL, *msg = NULL;
        char *lsave = NULL;
        for (char *line = strtok_r(rec + (rec[0] ? 1 : 0), "\n", &lsave); line;
             line = strtok_r(NULL, "\n", &lsave)) {
            char *colon = strchr(line, ':');
            if (colon && n < 16) {
                *colon = '\0';
                h[n].name = line;
                h[n].value = colon + 1;
                n++;
            } else if (!type) {
                type = line;
            } else {
                msg = line;
            }
        }
        sched_request_t r;
        sched_request_init(&r);
        r.model = "claude-opus-4";
        r.session = (rec[0] & 1) ? "s" : NULL;
        for (int guard = 0; guard < 8; guard++) {
            sched_pick_t p;
            int i = sched_select(&s, &r, now, &p);
            if (i < 0) break;
            sched_response_t resp = {status, h, n, type, msg};
            sched_outcome_t out;
            sched_action_t act = sched_on_response(&s, i, &r, &resp, now, &out);
            if (act == SCHED_RELAY || act == SCHED_PASS) {
                sched_usage_t u = {.status = status};
                sched_on_complete(&s, i, &r, &u, now);
                break;
            }
            if (act == SCHED_GIVE_UP) break;
        }
        check(&s);
        if (s.global_in_flight != 0) abort();
        sched_event_t ev;
        while (sched_event_pop(&s, &ev))
            if (strlen(ev.msg) >= sizeof ev.msg) abort();
        now += (rec[0] & 0x70) * 1000LL;
        sched_tick(&s, now);
    }
    sched_free(&s);
    free(text);
    return 0;
}
