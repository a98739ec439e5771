/* control/status — the `/maxpool/status` document (§3.8): accounts, scheduler and throttle
 * state as JSON, read from the scheduler. Never contains a credential. */
#ifndef MAXPOOL_CONTROL_STATUS_H
#define MAXPOOL_CONTROL_STATUS_H

#include <stdint.h>

#include "sched/sched.h"

/* Returns the status document of s at now as 2-space indented JSON + "\n" (caller frees). */
char *status_render(const sched_t *s, int64_t now, const char *version);

#endif
