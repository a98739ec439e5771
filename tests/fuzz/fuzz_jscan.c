/* libFuzzer harness for core/jscan: every entry point on arbitrary bytes. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/jscan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_value(const char *json, size_t n, const char *v, size_t vn)
{
    if (v < json || v + vn > json + n || vn == 0) abort();
    /* A value found by jscan_get is itself a well-formed document. */
    if (jscan_validate(v, vn) != 0) abort();
    buf_t b;
    buf_init(&b, 0);
    int rc = jscan_string(v, vn, &b);
    if ((rc == 0) != (v[0] == '"')) abort();
    buf_free(&b);
    int64_t i;
    rc = jscan_int64(v, vn, &i);
    if (rc == 0 && !(v[0] == '-' || (v[0] >= '0' && v[0] <= '9'))) abort();
    (void)jscan_truthy(v, vn);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *json = (const char *)data;
    int valid = jscan_validate(json, size);
    if (valid != 0 && valid != -EINVAL) abort();
    static const char *keys[] = {"model", "stream", "type", "", "a"};
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
        const char *v = NULL;
        size_t vn = 0;
        int rc = jscan_get(json, size, keys[k], &v, &vn);
        if (rc == 0) {
            if (valid != 0) abort(); /* get only succeeds on well-formed objects */
            check_value(json, size, v, vn);
        } else if (rc != -ENOENT && rc != -EINVAL) {
            abort();
        }
    }
    bool t = jscan_has_type(json, size, "image");
    if (t && valid != 0) abort();
    (void)jscan_has_type(json, size, "thinking");
    buf_t b;
    buf_init(&b, 64);
    (void)jscan_string(json, size, &b); /* with a small output limit */
    buf_free(&b);
    int64_t i;
    (void)jscan_int64(json, size, &i);
    (void)jscan_truthy(json, size);
    return 0;
}
