/* jscan — a small scanner for hot-path JSON (request bodies, SSE event data): finds
 * top-level keys without building a tree, so a 1 MB body costs one linear pass.
 * It parses untrusted bytes: every function is bounded by n, never reads past it, and is
 * fuzzed (tests/fuzz/fuzz_jscan.c). Values are returned as slices of the input. */
#ifndef MAXPOOL_CORE_JSCAN_H
#define MAXPOOL_CORE_JSCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* Returns 0 if json[0..n) is exactly one well-formed JSON value (surrounding whitespace
 * allowed), else -EINVAL. */
int jscan_validate(const char *json, size_t n);
/* Finds top-level key `key` of the JSON object json[0..n). Returns 0 and the raw value
 * text in *val and *vlen (a string keeps its quotes), -ENOENT if the key is absent, or
 * -EINVAL if the text is not a well-formed object. The last occurrence wins, as in
 * JSON.parse. */
int jscan_get(const char *json, size_t n, const char *key, const char **val, size_t *vlen);
/* One pass for several top-level keys: for each keys[i] sets vals[i]/vlens[i] to its raw
 * value (last occurrence wins) or NULL/0 when absent. Returns 0, or -EINVAL (all NULL) if
 * the text is not a well-formed object. */
int jscan_get_many(const char *json, size_t n, const char *const *keys, size_t nkeys,
                   const char **vals, size_t *vlens);
/* Appends the unescaped UTF-8 of the JSON string value val[0..vlen) (quotes included)
 * to out; returns 0, -EINVAL, or -ENOBUFS at out's limit (out is then unchanged). Lone
 * surrogates (\uD800 without its pair) decode to U+FFFD. */
int jscan_string(const char *val, size_t vlen, buf_t *out);
/* Parses an integer-valued JSON number (a fraction is truncated); 0 or -EINVAL/-ERANGE. */
int jscan_int64(const char *val, size_t vlen, int64_t *out);
/* JavaScript truthiness of a raw JSON value: false for false, null, 0, "" . */
bool jscan_truthy(const char *val, size_t vlen);
/* True if some object at any depth has a member "type" whose string value is `type`
 * (e.g. "thinking", "image"). Malformed input → false. */
bool jscan_has_type(const char *json, size_t n, const char *type);

#endif
