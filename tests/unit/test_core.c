/* Unit tests for core/: buf, clock, crypto, fileio, log redaction. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <dirent.h>
#include <sys/wait.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/crypto.h"
#include "core/fileio.h"
#include "core/log.h"
#include "testutil.h"

/* ---- buf ---------------------------------------------------------------- */

Test(buf, append_printf_consume)
{
    buf_t b;
    buf_init(&b, 0);
    cr_assert_eq(buf_puts(&b, "hello"), 0);
    cr_assert_eq(buf_printf(&b, " %d %s", 42, "x"), 0);
    cr_assert_str_eq(b.data, "hello 42 x");
    buf_consume(&b, 6);
    cr_assert_str_eq(b.data, "42 x");
    cr_assert_eq(b.len, 4);
    buf_free(&b);
}

Test(buf, long_printf_grows)
{
    buf_t b;
    buf_init(&b, 0);
    char big[1000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    cr_assert_eq(buf_printf(&b, "<%s>", big), 0);
    cr_assert_eq(b.len, 1001);
    cr_assert_eq(b.data[0], '<');
    cr_assert_eq(b.data[1000], '>');
    buf_free(&b);
}

Test(buf, limit_refuses_without_change)
{
    buf_t b;
    buf_init(&b, 8);
    cr_assert_eq(buf_puts(&b, "12345678"), 0);
    cr_assert_eq(buf_puts(&b, "9"), -ENOBUFS);
    cr_assert_eq(b.len, 8);
    cr_assert_str_eq(b.data, "12345678");
    size_t n;
    char *s = buf_steal(&b, &n);
    cr_assert_eq(n, 8);
    cr_assert_str_eq(s, "12345678");
    free(s);
    cr_assert_null(b.data);
}

/* ---- clock --------------------------------------------------------------- */

Test(clock, virtual_time)
{
    clock_set_virtual(1700000000000);
    cr_assert_eq(clock_now_ms(), 1700000000000);
    clock_advance(1500);
    cr_assert_eq(clock_now_ms(), 1700000001500);
    char iso[32];
    cr_assert_str_eq(clock_iso8601(clock_now_ms(), iso, sizeof iso), "2023-11-14T22:13:21.500Z");
    clock_use_real();
    cr_assert_gt(clock_now_ms(), 1700000000000);
}

/* ---- crypto -------------------------------------------------------------- */

Test(crypto, sha256_known_vector)
{
    uint8_t d[32];
    crypto_sha256("abc", 3, d);
    char hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    cr_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

Test(crypto, b64url_round_trip_and_rfc7636_vector)
{
    /* RFC 7636 appendix B: the verifier's S256 challenge. */
    const char *verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    uint8_t d[32];
    crypto_sha256(verifier, strlen(verifier), d);
    char *ch = crypto_b64url_encode(d, 32);
    cr_assert_str_eq(ch, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    free(ch);
    for (size_t n = 0; n < 40; n++) {
        uint8_t raw[40];
        for (size_t i = 0; i < n; i++)
            raw[i] = (uint8_t)(i * 37 + n);
        char *enc = crypto_b64url_encode(raw, n);
        cr_assert_eq(strlen(enc), (n * 4 + 2) / 3);
        cr_assert_null(strpbrk(enc, "+/="));
        size_t m = 0;
        uint8_t *dec = crypto_b64url_decode(enc, strlen(enc), &m);
        cr_assert_not_null(dec);
        cr_assert_eq(m, n);
        cr_assert_eq(memcmp(dec, raw, n), 0);
        free(dec);
        free(enc);
    }
    size_t m;
    cr_assert_null(crypto_b64url_decode("ab$d", 4, &m));
    cr_assert_null(crypto_b64url_decode("a", 1, &m));
}

Test(crypto, random_keys_differ)
{
    char *a = crypto_random_b64url(24), *b = crypto_random_b64url(24);
    cr_assert_eq(strlen(a), 32);
    cr_assert_str_neq(a, b);
    free(a);
    free(b);
    char fp[9];
    crypto_fingerprint("abc", fp);
    cr_assert_str_eq(fp, "ba7816bf");
}

/* ---- fileio -------------------------------------------------------------- */

static int count_tmp_files(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp")) n++;
    closedir(d);
    return n;
}

Test(fileio, atomic_write_mode_0600_over_0644_no_tmp)
{
    const char *dir = tu_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/sub/dir/cfg.json", dir);
    cr_assert_eq(fileio_write_atomic(path, "one\n", 4), 0);
    chmod(path, 0644);
    cr_assert_eq(fileio_write_atomic(path, "two\n", 4), 0);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    char *data;
    size_t len;
    cr_assert_eq(fileio_read(path, &data, &len, 0), 0);
    cr_assert_str_eq(data, "two\n");
    free(data);
    char sub[512];
    snprintf(sub, sizeof sub, "%s/sub/dir", dir);
    cr_assert_eq(count_tmp_files(sub), 0);
    cr_assert_eq(fileio_read("/nonexistent/x", &data, &len, 0), -ENOENT);
}

Test(fileio, write_failure_leaves_target_and_no_tmp)
{
    const char *dir = tu_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/cfg.json", dir);
    cr_assert_eq(fileio_write_atomic(path, "keep", 4), 0);
    /* A directory that cannot be written: the rename target survives untouched. */
    chmod(dir, 0500);
    if (geteuid() == 0) { /* root ignores mode bits: use a path under a file instead */
        chmod(dir, 0700);
        char bad[600];
        snprintf(bad, sizeof bad, "%s/cfg.json/inner.json", dir);
        cr_assert_lt(fileio_write_atomic(bad, "x", 1), 0);
    } else {
        cr_assert_lt(fileio_write_atomic(path, "new", 3), 0);
        chmod(dir, 0700);
    }
    char *data;
    cr_assert_eq(fileio_read(path, &data, NULL, 0), 0);
    cr_assert_str_eq(data, "keep");
    free(data);
    cr_assert_eq(count_tmp_files(dir), 0);
}

Test(fileio, lock_serialises_processes)
{
    const char *dir = tu_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/counter", dir);
    cr_assert_eq(fileio_write_atomic(path, "0", 1), 0);
    /* 8 processes × 25 locked read-increment-writes must end at exactly 200. */
    for (int p = 0; p < 8; p++) {
        if (fork() == 0) {
            for (int i = 0; i < 25; i++) {
                fileio_lock_t lk;
                if (fileio_lock(path, &lk) != 0) _exit(2);
                char *data;
                if (fileio_read(path, &data, NULL, 0) != 0) _exit(3);
                long v = strtol(data, NULL, 10);
                free(data);
                char out[32];
                int n = snprintf(out, sizeof out, "%ld", v + 1);
                if (fileio_write_atomic(path, out, (size_t)n) != 0) _exit(4);
                fileio_unlock(&lk);
            }
            _exit(0);
        }
    }
    for (int p = 0; p < 8; p++) {
        int st;
        wait(&st);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    char *data;
    cr_assert_eq(fileio_read(path, &data, NULL, 0), 0);
    cr_assert_str_eq(data, "200");
    free(data);
}

/* ---- log redaction (§11.2) ----------------------------------------------- */

static void check_redact(const char *in, const char *want)
{
    char *got = log_redact_str(in);
    cr_assert_str_eq(got, want, "redact(%s)", in);
    free(got);
}

Test(log, redacts_every_secret_shape)
{
    check_redact("key sk-ant-api03-AbC_def-123 used", "key sk-ant-[redacted] used");
    check_redact("oauth sk-ant-oat01-xyz,", "oauth sk-ant-[redacted],");
    check_redact("Authorization: Bearer abcdefghijkl", "Authorization: Bearer [redacted]");
    check_redact("authorization: bearer tok123", "authorization: bearer [redacted]");
    check_redact("{\"access_token\":\"abcdefgh123\",\"x\":1}",
                 "{\"access_token\":\"[redacted]\",\"x\":1}");
    check_redact("refresh_token=abcdefghij&grant=1", "refresh_token=[redacted]&grant=1");
    check_redact("api_key: supersecretvalue", "api_key: [redacted]");
    check_redact("\"apiKey\": \"mp-abcdefghijklmnop\"", "\"apiKey\": \"[redacted]\"");
    check_redact("x-api-key: mp-0123456789", "x-api-key: [redacted]");
    check_redact("\"refreshToken\":\"r-12345678\"", "\"refreshToken\":\"[redacted]\"");
    /* Short values and ordinary words stay. */
    check_redact("api_key: short", "api_key: short");
    check_redact("input_tokens: 123456789", "input_tokens: 123456789");
    check_redact("the bearer of news", "the bearer of news");
    check_redact("nosk-ant-x", "nosk-ant-x");
}

Test(log, event_file_lines_are_timestamped_and_redacted)
{
    const char *dir = tu_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/maxpool.log", dir);
    log_set_console(false);
    cr_assert_eq(log_set_event_file(path), 0);
    log_msg("token sk-ant-oat01-SECRET\nsecond line");
    char big[2000];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    log_msg("%s", big);
    log_set_event_file(NULL);
    char *data;
    cr_assert_eq(fileio_read(path, &data, NULL, 0), 0);
    cr_assert_null(strstr(data, "SECRET"));
    char *nl = strchr(data, '\n');
    cr_assert_not_null(nl);
    cr_assert(nl - data < 200);
    cr_assert_not_null(strstr(data, "Z token sk-ant-[redacted] second line\n"));
    /* Second line: capped at 480 bytes of message plus the timestamp. */
    char *l2 = nl + 1;
    cr_assert_lt(strlen(l2), 480 + 30);
    struct stat st;
    stat(path, &st);
    cr_assert_eq(st.st_mode & 0777, 0600);
    free(data);
}
