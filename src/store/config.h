/* config — the maxpool-compatible config file: where it lives (§2.1), how it loads (§2.2),
 * its account entries (§2.4) and how it is written (§2.5, Part A7).
 *
 * The config is a jansson object that keeps the file's key order and every key we do not
 * know, because people edit this file by hand. Every change goes through config_update:
 * lock `<path>.lock`, re-read the disk, apply the change, bump `_generation`, write
 * atomically with mode 0600. A file that is not valid JSON is refused and never touched. */
#ifndef MAXPOOL_STORE_CONFIG_H
#define MAXPOOL_STORE_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* ------------------------------------------------------------- paths ---- */

/* The config path of §2.1: $MAXPOOL_CONFIG, else $TEAMCLAUDE_CONFIG, else
 * <$XDG_CONFIG_HOME or ~/.config>/maxpool.json, or teamclaude.json there if only that one
 * exists. Returns a new string (caller frees). */
char *config_path(void);
/* The state file next to a config path: `.json` → `.state.json`, else + `.state` (caller
 * frees). */
char *config_state_path(const char *config_path);
/* The event log next to a config path: `.json` → `.log`, else + `.log` (caller frees). */
char *config_log_path(const char *config_path);

/* -------------------------------------------------------- load / write ---- */

#define CONFIG_MISSING 1 /* config_load: there is no file */

/* Reads and parses the file, backfills absent top-level keys from the defaults (present
 * ones win, even 0/false) and runs the peak migration (§2.2). Returns 0 with *out (new
 * reference), CONFIG_MISSING with *out = NULL, or -1 with *err (caller frees), e.g.
 * `config at <path> is not valid JSON (corrupt?): <msg>`. Never writes. */
int config_load(const char *path, json_t **out, char **err);

/* Serialises cfg as JSON.stringify(cfg, null, 2) + "\n" would: 2-space indent, key order
 * kept, numbers in their shortest form. Returns a new string (caller frees). */
char *config_dump(const json_t *cfg);

/* The change applied under the lock: returns 0 to write, CONFIG_UNCHANGED to skip the write,
 * or -1 with *err set (nothing is written; the message reaches the caller unchanged). */
typedef int (*config_mutate_fn)(json_t *cfg, void *ud, char **err);
#define CONFIG_UNCHANGED 1

/* Part A7 read-modify-write: takes the lock, re-reads the file (or starts from the defaults
 * when it is missing, which is then always written), calls fn (may be NULL), sets
 * `_generation` to the disk value + 1 and writes atomically (0600). If out is not NULL it
 * receives the config as written (new reference); *created tells whether the file was
 * created (may be NULL). Returns 0 or -1 with *err (caller frees). */
int config_update(const char *path, config_mutate_fn fn, void *ud, json_t **out, bool *created,
                  char **err);

/* Loads the file, creating it with the defaults (under the lock) when missing. Returns 0 with
 * *out and *created, or -1 with *err. */
int config_load_or_create(const char *path, json_t **out, bool *created, char **err);

/* Merges the default peak settings into scheduler.providers key by key (existing keys win)
 * when scheduler.peakDefaultsVersion < 1, then sets it to 1 (§2.2, §8.6). No-op without a
 * scheduler object. */
void config_migrate_peak(json_t *cfg);

/* ---------------------------------------------------------- accounts ---- */

/* The accounts array of cfg, created empty if absent; NULL if `accounts` is not an array. */
json_t *config_accounts(json_t *cfg);
/* The account's name, or "" when it has none (borrowed). */
const char *config_account_name(const json_t *acct);
/* Index (0-based) of the first account with exactly this name, or -1. */
int config_account_find(const json_t *cfg, const char *name);
/* §1 rename target: the exact name, else (when all digits) the 1-based index; 0-based index
 * or -1. */
int config_account_resolve(const json_t *cfg, const char *target);
/* A name `<prefix><n>` for a new account: n = 1 + the number of names starting with
 * prefix (§1), raised past names already taken. Returns a new string (caller frees). */
char *config_account_next_name(const json_t *cfg, const char *prefix);
/* Appends acct (reference stolen) to accounts; returns 0 or -1 if accounts is not an array. */
int config_account_append(json_t *cfg, json_t *acct);
/* Removes the account with this exact name; returns 0 or -1 with *err
 * `Account "<name>" not found`. */
int config_account_remove(json_t *cfg, const char *name, char **err);
/* Renames the account `target` (name or 1-based index) to newname and updates
 * routing.preferredAccount when it named the old one. Returns 0 with *old_name (caller
 * frees, may be NULL) or -1 with *err: `Account "<t>" not found` or
 * `An account named "<new>" already exists`. */
int config_account_rename(json_t *cfg, const char *target, const char *newname, char **old_name,
                          char **err);
/* Removes accounts whose accountUuid repeats, keeping the last occurrence (§2.7); returns
 * how many were removed. */
int config_account_dedup_uuid(json_t *cfg);
/* The account's token expiry in ms since the epoch (values < 1e12 are seconds), 0 if none. */
int64_t config_account_expires_ms(const json_t *acct);

#endif
