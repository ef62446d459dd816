/* mechanism.h: the mechanism assembled — the hub and the subsystems
 * over it. Only main.c (and tests) build one. */
#pragma once

#include "daemon.h"

G_BEGIN_DECLS

typedef struct _BgMechanism BgMechanism;

BgMechanism *bg_mechanism_new  (const BgDaemonOptions  *options,
                                GError                **error);
int          bg_mechanism_run  (BgMechanism            *mechanism);
void         bg_mechanism_free (BgMechanism            *mechanism);

G_END_DECLS
