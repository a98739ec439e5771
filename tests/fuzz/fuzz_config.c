/* Fuzzes the config text path: parse (as config_load does), validate, serialise with
 * config_dump, and check the output parses back to the same document. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/config.h"
#include "store/options.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Equal as JSON.stringify sees it: numbers by value (1000.0 is written as 1000). */
static int same(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b)) {
        if (json_is_integer(a) && json_is_integer(b))
            return json_integer_value(a) == json_integer_value(b);
        return json_number_value(a) == json_number_value(b);
    }
    if (json_typeof(a) != json_typeof(b)) return 0;
    if (json_is_object(a)) {
        if (json_object_size(a) != json_object_size(b)) return 0;
        const char *k;
        json_t *v;
        void *ib = json_object_iter((json_t *)b);
        json_object_foreach((json_t *)a, k, v)
        {
            /* Key order must survive too. */
            if (!ib || strcmp(k, json_object_iter_key(ib)) != 0) return 0;
            if (!same(v, json_object_iter_value(ib))) return 0;
            ib = json_object_iter_next((json_t *)b, ib);
        }
        return 1;
    }
    if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b)) return 0;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!same(json_array_get(a, i), json_array_get(b, i))) return 0;
        return 1;
    }
    return json_equal(a, b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t e;
    json_t *doc = json_loadb((const char *)data, size, JSON_DECODE_ANY, &e);
    if (!doc) return 0;
    char *err = NULL;
    options_validate(doc, &err);
    free(err);
    if (json_is_object(doc)) {
        config_migrate_peak(doc);
        (void)options_get_int(doc, "queue.pollMs");
        (void)options_get_string(doc, "routing.mode");
        (void)config_account_resolve(doc, "2");
        (void)config_account_dedup_uuid(doc);
    }
    char *text = config_dump(doc);
    json_t *back = json_loads(text, JSON_DECODE_ANY, &e);
    if (!back || !same(doc, back)) abort();
    json_decref(back);
    free(text);
    json_decref(doc);
    return 0;
}
