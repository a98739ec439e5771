/* Model echo (§3.7): the client sees the model it asked for, whatever id the upstream
 * answered with (dated ids, provider model names). */
#include "proxy/internal.h"

#include <string.h>

/* Finds `"model"` followed by optional whitespace, a colon, whitespace and a string; sets
 * [*vs, *ve) to the string's contents (without quotes). */
static int find_model(const char *s, size_t n, size_t *vs, size_t *ve)
{
    static const char key[] = "\"model\"";
    size_t i = 0;
    while (i + sizeof key - 1 <= n) {
        const char *hit = memmem(s + i, n - i, key, sizeof key - 1);
        if (!hit) return 0;
        size_t j = (size_t)(hit - s) + sizeof key - 1;
        while (j < n && (s[j] == ' ' || s[j] == '\t' || s[j] == '\n' || s[j] == '\r'))
            j++;
        if (j < n && s[j] == ':') {
            j++;
            while (j < n && (s[j] == ' ' || s[j] == '\t' || s[j] == '\n' || s[j] == '\r'))
                j++;
            if (j < n && s[j] == '"') {
                size_t k = j + 1;
                while (k < n && s[k] != '"')
                    k += s[k] == '\\' ? 2 : 1;
                if (k < n) {
                    *vs = j + 1;
                    *ve = k;
                    return 1;
                }
                return 0;
            }
        }
        i = (size_t)(hit - s) + 1;
    }
    return 0;
}

/* Appends model as the inside of a JSON string (escaping quotes, backslashes, controls). */
static void append_escaped(buf_t *out, const char *model)
{
    for (const char *p = model; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\') {
            buf_append(out, "\\", 1);
            buf_append(out, p, 1);
        } else if (c < 0x20) {
            buf_printf(out, "\\u%04x", c);
        } else {
            buf_append(out, p, 1);
        }
    }
}

int proxy_model_echo(const char *json, size_t n, const char *model, buf_t *out)
{
    size_t vs, ve;
    if (!model || !find_model(json, n, &vs, &ve)) {
        buf_append(out, json, n);
        return 0;
    }
    buf_append(out, json, vs);
    append_escaped(out, model);
    buf_append(out, json + ve, n - ve);
    return 1;
}
