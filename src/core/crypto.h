/* crypto — base64url, SHA-256 and random bytes (OpenSSL), for PKCE, keys and
 * token fingerprints. */
#ifndef MAXPOOL_CORE_CRYPTO_H
#define MAXPOOL_CORE_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

/* Fills out with n cryptographically random bytes; returns 0 or -EIO. */
int crypto_random(void *out, size_t n);
/* Writes the 32-byte SHA-256 digest of data into out. */
void crypto_sha256(const void *data, size_t n, uint8_t out[32]);
/* Encodes n bytes as unpadded base64url into a new string (caller frees). */
char *crypto_b64url_encode(const void *data, size_t n);
/* Decodes unpadded (or padded) base64url/base64 text; returns a new buffer (caller frees)
 * and its length in *out_len, or NULL on invalid input. */
uint8_t *crypto_b64url_decode(const char *text, size_t len, size_t *out_len);
/* Returns a new string of base64url(n random bytes) (caller frees); aborts if the system
 * has no randomness. */
char *crypto_random_b64url(size_t n);
/* Writes the first 8 hex digits of SHA-256(s) into out (9 bytes): a token fingerprint that
 * is safe to log (§7.3). */
void crypto_fingerprint(const char *s, char out[9]);

#endif
