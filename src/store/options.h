/* options — the one table of config keys (§2.3, §5.9, Part A): name, type, default, limits
 * and help. It drives the fresh default config, validation, the typed getters (code-level
 * defaults for keys absent from the file) and docs/configuration.md (`maxpool help-config`).
 *
 * Keys are dotted paths into the config object ("queue.pollMs"). A key absent from the file,
 * or present with a value of the wrong type, reads as its default; a key marked CLAMP reads
 * as its value limited to [min, max] (the reference floors these instead of refusing).
 * The getters search the table and the document: read options once when a config is
 * loaded, not on every request. */
#ifndef MAXPOOL_STORE_OPTIONS_H
#define MAXPOOL_STORE_OPTIONS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum options_type {
    OPTIONS_BOOL,
    OPTIONS_INT,
    OPTIONS_DOUBLE,
    OPTIONS_STRING,
    OPTIONS_OBJECT,
    OPTIONS_ARRAY,
} options_type_t;

enum {
    OPTIONS_F_FRESH = 1 << 0,        /* written into a fresh config (createDefaultConfig) */
    OPTIONS_F_NULLABLE = 1 << 1,     /* null is a valid value (it means "not set") */
    OPTIONS_F_MIN = 1 << 2,          /* `min` applies */
    OPTIONS_F_MAX = 1 << 3,          /* `max` applies */
    OPTIONS_F_CLAMP = 1 << 4,        /* out of range reads as the limit, not as an error */
    OPTIONS_F_ZERO_DEFAULT = 1 << 5, /* 0 reads as the default (reference `x || def`) */
    OPTIONS_F_SECRET = 1 << 6,       /* never echo the value (messages, docs) */
    OPTIONS_F_GENERATED = 1 << 7,    /* the default is generated per file (proxy.apiKey) */
    OPTIONS_F_RUNTIME = 1 << 8,      /* set in memory by the program, not meant to be edited */
};

typedef struct options_entry {
    const char *path;           /* dotted key, e.g. "queue.heartbeatMs" */
    options_type_t type;        /* the JSON type the key holds */
    unsigned flags;             /* OPTIONS_F_* */
    const char *def;            /* default as JSON text ("1000", "null", "{}"); NULL if generated */
    double min, max;            /* numeric limits when OPTIONS_F_MIN / OPTIONS_F_MAX */
    const char *const *choices; /* NULL-terminated allowed strings, or NULL for any */
    const char *help;           /* one line for docs and `maxpool help-config` */
} options_entry_t;

/* The table, in the reference's key order (fresh-file keys keep their relative order). */
extern const options_entry_t options_table[];
/* Number of rows in options_table. */
extern const int options_count;

/* Returns the row for a dotted path, or NULL if the key is not in the table. */
const options_entry_t *options_find(const char *path);

/* Returns the value at a dotted path (borrowed from cfg), or NULL when absent. */
json_t *options_lookup(const json_t *cfg, const char *path);

/* Returns a new reference to the default value of a key (a fresh random key for
 * proxy.apiKey); aborts if the key is not in the table (a programming error). */
json_t *options_default_value(const char *path);

/* Builds the config a fresh file holds (§2.3): only the FRESH keys, in the reference order,
 * proxy.apiKey = "mp-" + base64url(24 random bytes). Returns a new reference. */
json_t *options_default_config(void);

/* Checks every key of the table present in cfg (type, range, choices) and the shape of
 * accounts[] and providers[]. Returns the number of problems; when > 0 and err is not NULL,
 * *err gets one message per line, e.g. `config: "queue.pollMs" must be a number (got
 * string)` (caller frees). Secret values are never quoted. */
int options_validate(const json_t *cfg, char **err);

/* Typed getters: the value at `path` in cfg, or the table default when the key is absent,
 * null, of the wrong type or out of a hard range (see the file comment). The key must be in
 * the table with that type (aborts otherwise). cfg may be NULL (defaults only). */
bool options_get_bool(const json_t *cfg, const char *path);
int64_t options_get_int(const json_t *cfg, const char *path);
double options_get_double(const json_t *cfg, const char *path);
/* Borrowed from cfg or from the table's static defaults; NULL when the value is null. */
const char *options_get_string(const json_t *cfg, const char *path);
/* For nullable integers: true and *out set when the key has a number (or a non-null
 * default); false when it is null. */
bool options_get_int_nullable(const json_t *cfg, const char *path, int64_t *out);

/* Writes the table as Markdown (the body of docs/configuration.md) into a new string
 * (caller frees). */
char *options_docs_markdown(void);

#endif
