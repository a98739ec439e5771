/* state — the state file next to the config (`*.state.json`, §2.8): per-account quota so a
 * restart does not forget what the upstream told us.
 *
 * Shape: {quota:[{accountUuid,name,quota:{unified5h, unified7d, unified5hReset,
 * unified7dReset, unifiedStatus, scopedWeekly, tokensLimit, tokensRemaining, requestsLimit,
 * requestsRemaining, resetsAt, weeklyAbsent, providerSes, providerSesReset, providerWk,
 * providerWkReset, providerQuotaSource, lastProbeOkAt}}], runtimeProviders:[…],
 * capacity:{…}, _generation:N}. Times are ms since the epoch (Part A14); unknown values are
 * null. Keys this module does not own (runtimeProviders, capacity, anything else) are kept
 * as they are on disk.
 *
 * Writes follow Part A7: lock `<state>.lock`, re-read, refuse when the disk generation is
 * newer than the one this writer last saw (another process owns the file), bump
 * `_generation`, write atomically with mode 0600 — a reader, or a restart after a crash,
 * sees the old file or the new one, never a torn mix. An unreadable or corrupt state file
 * is ignored on restore (quota is relearned from the next responses). */
#ifndef MAXPOOL_STORE_STATE_H
#define MAXPOOL_STORE_STATE_H

#include <jansson.h>
#include <stdint.h>

#include "sched/sched.h"

#define STATE_STALE 1 /* state_save: the disk generation is newer; nothing written */

/* The quota record of one account as the state file stores it (new reference). */
json_t *state_quota_to_json(const quota_t *q);
/* Reads a quota record into q (starting from quota_init). A utilization without its reset
 * stamp is dropped, as is a scoped entry without a reset; windows whose reset is ≤ now are
 * dropped too. */
void state_quota_from_json(const json_t *obj, quota_t *q, int64_t now);

/* The `quota` array for every account of s (new reference). */
json_t *state_quota_array(const sched_t *s);
/* Restores quota from a state document into the accounts of s: matched by accountUuid when
 * both sides have one, else by name. Returns how many accounts were restored. */
int state_apply(sched_t *s, const json_t *doc, int64_t now);

/* Loads `path` and applies it (state_apply). Returns the number of accounts restored (0 when
 * the file is missing, unreadable or corrupt: then *err, if not NULL, says why; caller frees)
 * and sets *generation to the file's `_generation` (0 if none). */
int state_load(const char *path, sched_t *s, int64_t now, int64_t *generation, char **err);

/* Writes the quota of s to `path` (see the file comment). *generation is the generation this
 * writer last saw (0 = none yet) and receives the one written. Returns 0, STATE_STALE (disk is
 * newer; *generation gets the disk value so a caller may re-load), or -1 with *err. */
int state_save(const char *path, const sched_t *s, int64_t *generation, char **err);

/* The same as state_save with a quota array built beforehand (state_quota_array, reference
 * stolen): build it on the loop thread, where sched lives, and write from a worker thread
 * (uv_queue_work), since the write fsyncs. */
int state_save_quota(const char *path, json_t *quota, int64_t *generation, char **err);

#endif
