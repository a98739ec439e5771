/* libFuzzer harness for core/jscan: every entry point on arbitrary bytes. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

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

static size_t count_openers(const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += s[i] == '[' || s[i] == '{';
    return k;
}

/* Differential check against jansson, the project's reference JSON library: whatever it
 * accepts we accept (up to our depth cap), and values agree. */
static void differential(const char *json, size_t size, int valid)
{
    json_error_t jerr;
    /* jansson keys stop at a NUL, and it reads a raw NUL byte as the end of input. */
    if (memmem(json, size, "\\u0000", 6) || memchr(json, 0, size)) return;
    json_t *doc = json_loadb(json, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (!doc) return;
    if (valid != 0 && count_openers(json, size) <= 256) abort();
    if (valid != 0) {
        json_decref(doc);
        return;
    }
    if (json_is_object(doc)) {
        const char *key;
        json_t *jv;
        json_object_foreach(doc, key, jv)
        {
            const char *v;
            size_t vn;
            if (jscan_get(json, size, key, &v, &vn) != 0) abort();
            json_t *mine = json_loadb(v, vn, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
            if (!mine || !json_equal(mine, jv)) abort();
            json_decref(mine);
            if (json_is_string(jv)) {
                buf_t b;
                buf_init(&b, 0);
                if (jscan_string(v, vn, &b) != 0) abort();
                if (b.len != json_string_length(jv) ||
                    (b.len && memcmp(b.data, json_string_value(jv), b.len)))
                    abort();
                buf_free(&b);
            }
            if (json_is_integer(jv)) {
                int64_t i;
                if (jscan_int64(v, vn, &i) != 0 || i != json_integer_value(jv)) abort();
            }
            if (jscan_truthy(v, vn) !=
                (json_is_true(jv) || (json_is_string(jv) && json_string_length(jv)) ||
                 json_is_object(jv) || json_is_array(jv) ||
                 (json_is_number(jv) && json_number_value(jv) != 0)))
                abort();
        }
    }
    json_decref(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *json = (const char *)data;
    int valid = jscan_validate(json, size);
    if (valid != 0 && valid != -EINVAL) abort();
    differential((const char *)data, size, valid);
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
    /* One pass for all keys agrees with one lookup per key. */
    const char *many[5];
    size_t many_len[5];
    int mrc = jscan_get_many(json, size, keys, 5, many, many_len);
    for (size_t k = 0; k < 5; k++) {
        const char *v = NULL;
        size_t vn = 0;
        int rc = jscan_get(json, size, keys[k], &v, &vn);
        if (mrc == -EINVAL ? rc != -EINVAL || many[k] : (rc == 0) != (many[k] != NULL)) abort();
        if (rc == 0 && (v != many[k] || vn != many_len[k])) abort();
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
