/* Fuzzes the simulator's script path (POST /_sim/script takes any bytes): parse, merge into
 * a world twice, answer a message with whatever response text it set, and the query-string
 * helper the authorize endpoint uses. */
#include "core/buf.h"
#include "core/clock.h"
#include "sim/oauth.h"
#include "sim/script.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    clock_set_virtual(1700000000000LL);
    sim_world_t w;
    sim_world_init(&w, clock_now_ms());
    char *err = NULL;
    for (int round = 0; round < 2; round++) {
        if (sim_script_load(&w, (const char *)data, size, clock_now_ms(), &err)) {
            free(err);
            err = NULL;
            break;
        }
        clock_advance(1000);
    }
    sim_msg_t m = {
        .seq = 1, .model_json = "\"m\"", .model_len = 3, .thinking = size & 1, .input_tokens = 1};
    buf_t b;
    buf_init(&b, 0);
    sim_respond_sse(w.resp, &m, &b);
    sim_respond_message(w.resp, &m, &b);
    for (size_t i = 0; i < w.quota.n; i++) {
        sim_hdrs_t h;
        sim_hdrs_init(&h);
        int64_t now = sim_quota_now(&w.quota, clock_now_ms());
        sim_quota_charge(w.quota.accts[i], now, 100);
        sim_quota_headers(&w.quota, w.quota.accts[i], now, &h);
    }
    sim_world_free(&w);

    char *q = malloc(size + 1);
    memcpy(q, data, size);
    q[size] = 0;
    buf_reset(&b);
    sim_url_param(q, "redirect_uri", &b);
    free(q);
    buf_free(&b);
    return 0;
}
