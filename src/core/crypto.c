#include "core/crypto.h"
#include "core/xalloc.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int crypto_random(void *out, size_t n)
{
    if (n > INT32_MAX) return -EINVAL;
    return RAND_bytes(out, (int)n) == 1 ? 0 : -EIO;
}

void crypto_sha256(const void *data, size_t n, uint8_t out[32])
{
    unsigned int len = 32;
    if (!EVP_Digest(data, n, out, &len, EVP_sha256(), NULL)) abort();
}

char *crypto_b64url_encode(const void *data, size_t n)
{
    const uint8_t *p = data;
    char *out = xmalloc((n + 2) / 3 * 4 + 1);
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = B64URL[v >> 18 & 63];
        out[o++] = B64URL[v >> 12 & 63];
        out[o++] = B64URL[v >> 6 & 63];
        out[o++] = B64URL[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        out[o++] = B64URL[v >> 18 & 63];
        out[o++] = B64URL[v >> 12 & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        out[o++] = B64URL[v >> 18 & 63];
        out[o++] = B64URL[v >> 12 & 63];
        out[o++] = B64URL[v >> 6 & 63];
    }
    out[o] = '\0';
    return out;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-' || c == '+') return 62;
    if (c == '_' || c == '/') return 63;
    return -1;
}

uint8_t *crypto_b64url_decode(const char *text, size_t len, size_t *out_len)
{
    while (len > 0 && text[len - 1] == '=')
        len--;
    if (len % 4 == 1) return NULL;
    uint8_t *out = xmalloc(len * 3 / 4 + 1);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value((unsigned char)text[i]);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    *out_len = o;
    return out;
}

char *crypto_random_b64url(size_t n)
{
    uint8_t stack[64];
    uint8_t *raw = n <= sizeof stack ? stack : xmalloc(n);
    if (crypto_random(raw, n) != 0) {
        fprintf(stderr, "maxpool: no system randomness available\n");
        abort();
    }
    char *s = crypto_b64url_encode(raw, n);
    if (raw != stack) free(raw);
    return s;
}

void crypto_fingerprint(const char *s, char out[9])
{
    uint8_t d[32];
    crypto_sha256(s, strlen(s), d);
    snprintf(out, 9, "%02x%02x%02x%02x", d[0], d[1], d[2], d[3]);
}
