/* schedopts — fills the scheduler's options (sched/sched.h) from a loaded config, through
 * the options table, so every `scheduler.*` key and the few top-level routing keys come with
 * their §5.9 / §2.3 defaults. sched never reads the config itself (DESIGN.md: store → sched). */
#ifndef MAXPOOL_STORE_SCHEDOPTS_H
#define MAXPOOL_STORE_SCHEDOPTS_H

#include <jansson.h>

#include "sched/sched.h"

/* Fills o from cfg (NULL = defaults only). routingMode absent → derived from
 * crossProviderFallbackPolicy (§5.1); routing.mode "preferred" without a name stays
 * automatic. */
void schedopts_from_config(const json_t *cfg, sched_options_t *o);

#endif
