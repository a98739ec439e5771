/* log — console and event-log lines with secret redaction (§11.2).
 *
 * Every line goes through log_redact before it is written anywhere, so a token that
 * slips into a message never reaches a terminal or a file. */
#ifndef MAXPOOL_CORE_LOG_H
#define MAXPOOL_CORE_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

/* Appends a redacted copy of s[0..n) to out: `sk-ant-…` → `sk-ant-[redacted]`,
 * `Bearer <tok>` (≥ 6 chars) → `Bearer [redacted]`, and the value (≥ 8 chars) after a secret-named
 * key (access_token, refresh_token, api_key, apiKey, x-api-key, authToken, client_secret,
 * code_verifier, in JSON, header or query form) → `[redacted]`. */
void log_redact(const char *s, size_t n, buf_t *out);
/* Returns a new redacted copy of a C string (caller frees). */
char *log_redact_str(const char *s);

/* Sends log lines to stderr (default on) — the plain log of a headless server. */
void log_set_console(bool on);
/* Also appends every line to `path` (0600, append-only) as `<ISO UTC> message`; NULL stops.
 * Returns 0 or a negative errno. */
int log_set_event_file(const char *path);
/* Logs one line (newlines collapsed to spaces, redacted, capped at 480 bytes). */
void log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
