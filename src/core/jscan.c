/* jscan — strict, bounded JSON skipping without building a tree.
 *
 * One recursive-descent skipper serves every entry point. Nesting is capped at
 * JSCAN_MAX_DEPTH so hostile input cannot exhaust the stack; deeper documents are
 * rejected as malformed (-EINVAL) rather than half-scanned. */
#include "core/jscan.h"

#include <errno.h>
#include <locale.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define JSCAN_MAX_DEPTH 256

typedef struct jsc {
    const char *p;
    const char *end;
    int depth;
    /* jscan_has_type: the wanted value of a "type" member, and whether one was seen. */
    const char *type;
    size_t tlen;
    bool found;
} jsc_t;

static int sk_value(jsc_t *s);

static void sk_ws(jsc_t *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

#define ONES  0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* True if one of the eight bytes in w is '"', '\\' or below 0x20 (the classic SWAR tests:
 * a byte equal to zero, or less than n, borrows into its high bit). */
static bool word_special(uint64_t w)
{
    uint64_t q = w ^ (ONES * '"'), b = w ^ (ONES * '\\');
    return (((q - ONES) & ~q) | ((b - ONES) & ~b) | ((w - ONES * 0x20) & ~w)) & HIGHS;
}

/* s->p is at the opening quote; on success s->p is just past the closing quote. */
static int sk_string(jsc_t *s)
{
    const char *p = s->p + 1, *end = s->end;
    for (;;) {
        /* The common case is plain text: run through it eight bytes at a time (a 1 MiB
         * prompt is scanned on every request), then byte by byte to the special one. */
        while (end - p >= 8) {
            uint64_t w;
            memcpy(&w, p, 8);
            if (word_special(w)) break;
            p += 8;
        }
        while (p < end && *p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
            p++;
        if (p >= end) return -EINVAL;
        if (*p == '"') break;
        if (*p != '\\') return -EINVAL; /* raw control character */
        if (++p >= end) return -EINVAL;
        switch (*p) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't':
            p++;
            break;
        case 'u':
            if (end - p < 5) return -EINVAL;
            for (int i = 1; i <= 4; i++)
                if (hexval(p[i]) < 0) return -EINVAL;
            p += 5;
            break;
        default:
            return -EINVAL;
        }
    }
    s->p = p + 1;
    return 0;
}

static int sk_digits(jsc_t *s)
{
    const char *start = s->p;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
        s->p++;
    return s->p > start ? 0 : -EINVAL;
}

static int sk_number(jsc_t *s)
{
    if (s->p < s->end && *s->p == '-') s->p++;
    if (s->p >= s->end) return -EINVAL;
    if (*s->p == '0') {
        s->p++;
    } else if (*s->p >= '1' && *s->p <= '9') {
        sk_digits(s);
    } else {
        return -EINVAL;
    }
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (sk_digits(s)) return -EINVAL;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-')) s->p++;
        if (sk_digits(s)) return -EINVAL;
    }
    return 0;
}

static int sk_lit(jsc_t *s, const char *lit, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0) return -EINVAL;
    s->p += n;
    return 0;
}

/* Decodes the JSON string raw[0..n) (quotes included, already validated) into out. */
static int decode_string(const char *raw, size_t n, buf_t *out)
{
    const char *p = raw + 1, *end = raw + n - 1;
    while (p < end) {
        const char *run = p;
        while (p < end && *p != '\\')
            p++;
        if (p > run && buf_append(out, run, (size_t)(p - run))) return -ENOBUFS;
        if (p >= end) break;
        p++; /* backslash */
        char c = *p++, ch;
        switch (c) {
        case 'b':
            ch = '\b';
            break;
        case 'f':
            ch = '\f';
            break;
        case 'n':
            ch = '\n';
            break;
        case 'r':
            ch = '\r';
            break;
        case 't':
            ch = '\t';
            break;
        case 'u':
            ch = 0;
            break;
        default:
            ch = c;
            break;
        }
        if (c != 'u') {
            if (buf_append(out, &ch, 1)) return -ENOBUFS;
            continue;
        }
        uint32_t cp = 0;
        for (int i = 0; i < 4; i++)
            cp = cp << 4 | (uint32_t)hexval(p[i]);
        p += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
            uint32_t lo = 0;
            int ok = 1;
            for (int i = 2; i < 6; i++) {
                int h = hexval(p[i]);
                if (h < 0) ok = 0;
                lo = lo << 4 | (uint32_t)(h < 0 ? 0 : h);
            }
            if (ok && lo >= 0xDC00 && lo <= 0xDFFF) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                p += 6;
            }
        }
        /* A lone surrogate cannot be encoded as UTF-8; JSON.parse keeps it in a UTF-16
         * string, and Node writes it out as U+FFFD, so do the same. */
        if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;
        char u[4];
        size_t un;
        if (cp < 0x80) {
            u[0] = (char)cp;
            un = 1;
        } else if (cp < 0x800) {
            u[0] = (char)(0xC0 | cp >> 6);
            u[1] = (char)(0x80 | (cp & 0x3F));
            un = 2;
        } else if (cp < 0x10000) {
            u[0] = (char)(0xE0 | cp >> 12);
            u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
            u[2] = (char)(0x80 | (cp & 0x3F));
            un = 3;
        } else {
            u[0] = (char)(0xF0 | cp >> 18);
            u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
            u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
            u[3] = (char)(0x80 | (cp & 0x3F));
            un = 4;
        }
        if (buf_append(out, u, un)) return -ENOBUFS;
    }
    return 0;
}

/* Compares the JSON string raw[0..n) (quotes included, validated) with want[0..wn). */
static bool raw_eq(const char *raw, size_t n, const char *want, size_t wn)
{
    if (!memchr(raw, '\\', n)) return n - 2 == wn && memcmp(raw + 1, want, wn) == 0;
    /* Escapes only ever shrink the text, so a raw form shorter than want cannot match;
     * decoding is capped just past wn, so a long escaped key costs little. */
    if (n - 2 < wn) return false;
    char small[256];
    buf_t b = {.data = NULL, .len = 0, .cap = 0, .limit = wn + 1};
    bool eq = false;
    if (wn + 1 < sizeof small) {
        b.data = small;
        b.cap = sizeof small - 1;
    }
    if (decode_string(raw, n, &b) == 0) eq = b.len == wn && memcmp(b.data, want, wn) == 0;
    if (b.data != small) buf_free(&b);
    return eq;
}

static int sk_object(jsc_t *s)
{
    s->p++; /* '{' */
    sk_ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        return 0;
    }
    for (;;) {
        sk_ws(s);
        if (s->p >= s->end || *s->p != '"') return -EINVAL;
        const char *k = s->p;
        if (sk_string(s)) return -EINVAL;
        size_t kn = (size_t)(s->p - k);
        sk_ws(s);
        if (s->p >= s->end || *s->p != ':') return -EINVAL;
        s->p++;
        sk_ws(s);
        const char *v = s->p;
        if (sk_value(s)) return -EINVAL;
        if (s->type && !s->found && *v == '"' && raw_eq(k, kn, "type", 4) &&
            raw_eq(v, (size_t)(s->p - v), s->type, s->tlen))
            s->found = true;
        sk_ws(s);
        if (s->p >= s->end) return -EINVAL;
        if (*s->p == '}') {
            s->p++;
            return 0;
        }
        if (*s->p != ',') return -EINVAL;
        s->p++;
    }
}

static int sk_array(jsc_t *s)
{
    s->p++; /* '[' */
    sk_ws(s);
    if (s->p < s->end && *s->p == ']') {
        s->p++;
        return 0;
    }
    for (;;) {
        sk_ws(s);
        if (sk_value(s)) return -EINVAL;
        sk_ws(s);
        if (s->p >= s->end) return -EINVAL;
        if (*s->p == ']') {
            s->p++;
            return 0;
        }
        if (*s->p != ',') return -EINVAL;
        s->p++;
    }
}

static int sk_value(jsc_t *s)
{
    if (s->p >= s->end) return -EINVAL;
    int rc;
    switch (*s->p) {
    case '{':
    case '[':
        if (++s->depth > JSCAN_MAX_DEPTH) return -EINVAL;
        rc = *s->p == '{' ? sk_object(s) : sk_array(s);
        s->depth--;
        return rc;
    case '"':
        return sk_string(s);
    case 't':
        return sk_lit(s, "true", 4);
    case 'f':
        return sk_lit(s, "false", 5);
    case 'n':
        return sk_lit(s, "null", 4);
    default:
        return sk_number(s);
    }
}

static void jsc_init(jsc_t *s, const char *json, size_t n)
{
    memset(s, 0, sizeof *s);
    s->p = json ? json : "";
    s->end = s->p + (json ? n : 0);
}

/* Skips one whole document: optional whitespace, one value, optional whitespace. */
static int sk_document(jsc_t *s)
{
    sk_ws(s);
    if (sk_value(s)) return -EINVAL;
    sk_ws(s);
    return s->p == s->end ? 0 : -EINVAL;
}

int jscan_validate(const char *json, size_t n)
{
    jsc_t s;
    jsc_init(&s, json, n);
    return sk_document(&s);
}

static int scan_many(const char *json, size_t n, const char *const *keys, size_t nkeys,
                     const char **vals, size_t *vlens)
{
    jsc_t s;
    jsc_init(&s, json, n);
    for (size_t i = 0; i < nkeys; i++) {
        vals[i] = NULL;
        vlens[i] = 0;
    }
    sk_ws(&s);
    if (s.p >= s.end || *s.p != '{') return -EINVAL;
    s.p++;
    s.depth = 1;
    sk_ws(&s);
    if (s.p < s.end && *s.p == '}') {
        s.p++;
    } else {
        for (;;) {
            sk_ws(&s);
            if (s.p >= s.end || *s.p != '"') return -EINVAL;
            const char *k = s.p;
            if (sk_string(&s)) return -EINVAL;
            size_t kn = (size_t)(s.p - k);
            sk_ws(&s);
            if (s.p >= s.end || *s.p != ':') return -EINVAL;
            s.p++;
            sk_ws(&s);
            const char *v = s.p;
            if (sk_value(&s)) return -EINVAL;
            for (size_t i = 0; i < nkeys; i++) {
                if (raw_eq(k, kn, keys[i], strlen(keys[i]))) {
                    vals[i] = v; /* later duplicates overwrite: the last one wins */
                    vlens[i] = (size_t)(s.p - v);
                }
            }
            sk_ws(&s);
            if (s.p >= s.end) return -EINVAL;
            if (*s.p == '}') {
                s.p++;
                break;
            }
            if (*s.p != ',') return -EINVAL;
            s.p++;
        }
    }
    sk_ws(&s);
    return s.p == s.end ? 0 : -EINVAL;
}

int jscan_get_many(const char *json, size_t n, const char *const *keys, size_t nkeys,
                   const char **vals, size_t *vlens)
{
    int rc = scan_many(json, n, keys, nkeys, vals, vlens);
    if (rc)
        for (size_t i = 0; i < nkeys; i++)
            vals[i] = NULL, vlens[i] = 0;
    return rc;
}

int jscan_get(const char *json, size_t n, const char *key, const char **val, size_t *vlen)
{
    const char *v;
    size_t vn;
    int rc = jscan_get_many(json, n, &key, 1, &v, &vn);
    if (rc) return rc;
    if (!v) return -ENOENT;
    if (val) *val = v;
    if (vlen) *vlen = vn;
    return 0;
}

int jscan_string(const char *val, size_t vlen, buf_t *out)
{
    jsc_t s;
    jsc_init(&s, val, vlen);
    if (vlen < 2 || *s.p != '"' || sk_string(&s) || s.p != s.end) return -EINVAL;
    size_t old = out->len;
    int rc = decode_string(val, vlen, out);
    if (rc) {
        out->len = old;
        if (out->data) out->data[old] = '\0';
    }
    return rc;
}

int jscan_int64(const char *val, size_t vlen, int64_t *out)
{
    jsc_t s;
    jsc_init(&s, val, vlen);
    sk_ws(&s);
    const char *start = s.p;
    if (sk_number(&s)) return -EINVAL;
    const char *stop = s.p;
    sk_ws(&s);
    if (s.p != s.end) return -EINVAL;

    const char *p = start;
    bool neg = *p == '-';
    if (neg) p++;
    const char *ip = p, *fp = NULL;
    size_t il = 0, fl = 0;
    while (p < stop && *p >= '0' && *p <= '9')
        p++, il++;
    if (p < stop && *p == '.') {
        fp = ++p;
        while (p < stop && *p >= '0' && *p <= '9')
            p++, fl++;
    }
    /* The exponent only moves the decimal point; clamp it far beyond any int64 so a
     * silly exponent neither overflows nor loops long. */
    long exp = 0;
    if (p < stop && (*p == 'e' || *p == 'E')) {
        p++;
        bool eneg = false;
        if (*p == '+' || *p == '-') eneg = *p++ == '-';
        while (p < stop) {
            if (exp < 100000) exp = exp * 10 + (*p - '0');
            p++;
        }
        if (eneg) exp = -exp;
    }
    bool allzero = true;
    for (size_t i = 0; i < il && allzero; i++)
        if (ip[i] != '0') allzero = false;
    for (size_t i = 0; i < fl && allzero; i++)
        if (fp[i] != '0') allzero = false;
    if (allzero) {
        *out = 0;
        return 0;
    }
    /* Integer part = the first (il + exp) digits of the mantissa digits, zero-padded. */
    long point = (long)il + exp;
    uint64_t mag = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (long i = 0; i < point; i++) {
        int d = 0;
        if ((size_t)i < il)
            d = ip[i] - '0';
        else if ((size_t)i - il < fl)
            d = fp[(size_t)i - il] - '0';
        if (mag > (lim - (uint64_t)d) / 10) return -ERANGE;
        mag = mag * 10 + (uint64_t)d;
    }
    if (neg)
        *out = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
    else
        *out = (int64_t)mag;
    return 0;
}

bool jscan_truthy(const char *val, size_t vlen)
{
    if (!val) return false;
    while (vlen && (*val == ' ' || *val == '\t' || *val == '\n' || *val == '\r'))
        val++, vlen--;
    while (vlen && (val[vlen - 1] == ' ' || val[vlen - 1] == '\t' || val[vlen - 1] == '\n' ||
                    val[vlen - 1] == '\r'))
        vlen--;
    if (vlen == 0) return false;
    if (vlen == 5 && memcmp(val, "false", 5) == 0) return false;
    if (vlen == 4 && memcmp(val, "null", 4) == 0) return false;
    if (vlen == 2 && memcmp(val, "\"\"", 2) == 0) return false;
    if (*val == '-' || (*val >= '0' && *val <= '9')) {
        /* A number is falsy iff its value is 0 (0, -0, 0.0, 0e5, and 1e-400, which
         * underflows to 0 in JavaScript too). */
        bool mantissa_zero = true, has_exp = false;
        for (size_t i = 0; i < vlen; i++) {
            char c = val[i];
            if (c == 'e' || c == 'E') {
                has_exp = true;
                break;
            }
            if (c >= '1' && c <= '9') mantissa_zero = false;
        }
        if (mantissa_zero) return false;
        if (!has_exp || vlen >= 512) return true;
        /* strtod follows LC_NUMERIC (the TUI sets a locale): use its decimal point. */
        char tmp[512], dp = localeconv()->decimal_point[0];
        memcpy(tmp, val, vlen);
        tmp[vlen] = '\0';
        for (size_t i = 0; i < vlen; i++)
            if (tmp[i] == '.') tmp[i] = dp;
        return strtod(tmp, NULL) != 0.0;
    }
    return true;
}

bool jscan_has_type(const char *json, size_t n, const char *type)
{
    jsc_t s;
    jsc_init(&s, json, n);
    s.type = type;
    s.tlen = strlen(type);
    if (sk_document(&s)) return false;
    return s.found;
}
