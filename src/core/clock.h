/* clock — the one source of time (Part A14). Real by default; tests switch it to a
 * virtual clock they advance by hand, so the scheduler runs in virtual time. */
#ifndef MAXPOOL_CORE_CLOCK_H
#define MAXPOOL_CORE_CLOCK_H

#include <stdint.h>

/* Wall time in milliseconds since the Unix epoch (virtual when a test set it). */
int64_t clock_now_ms(void);
/* Monotonic milliseconds for measuring durations (virtual clock: same as now). */
int64_t clock_mono_ms(void);
/* Switches to a virtual clock that reads `now_ms` until advanced. */
void clock_set_virtual(int64_t now_ms);
/* Moves the virtual clock forward by `ms` (no effect on the real clock). */
void clock_advance(int64_t ms);
/* Returns to the real clock. */
void clock_use_real(void);
/* Formats `ms` (epoch) as ISO-8601 UTC with milliseconds, e.g. 2026-01-02T03:04:05.678Z,
 * into out (at least 25 bytes); returns out. */
char *clock_iso8601(int64_t ms, char *out, unsigned long outlen);

#endif
