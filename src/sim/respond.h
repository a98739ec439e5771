/* sim/respond — the bytes of a simulated answer: the SSE event sequence of a streamed
 * message, the JSON of a non-streamed one, and error bodies (CLIENTS.md, SPEC §6.10).
 *
 * This is the simulator's hot path. A sim_respond_t compiles the response settings once
 * (text split into escaped deltas, with and without a thinking block), so building one
 * stream is three appends to a caller-owned buffer and no allocation once that buffer has
 * grown. Usage is consistent: output_tokens = text deltas × 3 in message_delta and in the
 * JSON message alike, and input_tokens = max(1, ceil(body bytes / 4)). */
#ifndef MAXPOOL_SIM_RESPOND_H
#define MAXPOOL_SIM_RESPOND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define SIM_DEFAULT_TEXT   "Hello from maxpool sim."
#define SIM_DEFAULT_DELTAS 20
#define SIM_MAX_DELTAS     100000

/* The script's "response" settings. */
typedef struct sim_respond_cfg {
    char *text;                  /* assistant text (owned) */
    int64_t deltas;              /* text_delta events per stream (0..SIM_MAX_DELTAS) */
    int64_t delta_delay_ms;      /* real ms between events */
    int64_t first_byte_delay_ms; /* real ms before the response starts */
    char *model;                 /* model to report, or NULL to echo the request's (owned) */
} sim_respond_cfg_t;

/* One message being answered. */
typedef struct sim_msg {
    uint64_t seq;           /* numbers the message id msg_sim_<seq> */
    const char *model_json; /* the request's model as a JSON string literal, quotes included */
    size_t model_len;
    bool thinking; /* the request asked for thinking: add a thinking block */
    int64_t input_tokens;
} sim_msg_t;

typedef struct sim_respond sim_respond_t;

/* Fills cfg with the defaults (text, 20 deltas, no delays, echo model). */
void sim_respond_cfg_defaults(sim_respond_cfg_t *cfg);
/* Frees the strings of cfg. */
void sim_respond_cfg_clear(sim_respond_cfg_t *cfg);

/* Compiles cfg (copied) into a responder; free with sim_respond_free. */
sim_respond_t *sim_respond_new(const sim_respond_cfg_t *cfg);
void sim_respond_free(sim_respond_t *r);
/* The settings the responder was built from. */
const sim_respond_cfg_t *sim_respond_cfg(const sim_respond_t *r);
/* output_tokens of every message it builds. */
int64_t sim_respond_output_tokens(const sim_respond_t *r);
/* input_tokens charged for a request body of n bytes. */
int64_t sim_respond_input_tokens(size_t body_bytes);

/* Appends the whole SSE text of a streamed message (every event ends with a blank line). */
void sim_respond_sse(const sim_respond_t *r, const sim_msg_t *m, buf_t *out);
/* Appends the JSON of a non-streamed message. */
void sim_respond_message(const sim_respond_t *r, const sim_msg_t *m, buf_t *out);
/* Appends {"type":"error","error":{"type":type,"message":message}}. */
void sim_respond_error(buf_t *out, const char *type, const char *message);
/* Appends s[0..n) as a quoted, escaped JSON string. */
void sim_json_str(buf_t *out, const char *s, size_t n);
/* The offset just past the SSE event that starts at `from` (its blank line included), or
 * len when the text ends first. */
size_t sim_sse_event_end(const char *s, size_t len, size_t from);

#endif
