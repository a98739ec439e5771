/* control/status — the `/maxpool/status` document (§3.8): accounts, scheduler and throttle
 * state as JSON. Never contains a credential. */
#ifndef MAXPOOL_CONTROL_STATUS_H
#define MAXPOOL_CONTROL_STATUS_H

#include <stddef.h>
#include <stdint.h>

#include "sched/account.h"

typedef struct status_input {
    const account_t *accts;
    size_t naccts;
    int current;              /* index of the last selected account, or -1 */
    const char *routing_mode; /* "automatic" | "preferred" */
    const char *preferred;    /* or NULL */
    double switch_threshold;
    size_t global_in_flight;
    int64_t now_ms;
    const char *version;
} status_input_t;

/* Returns the status document as 2-space indented JSON + "\n" (caller frees). */
char *status_render(const status_input_t *in);

#endif
