#pragma once

#include "bg-seed.h"

G_BEGIN_DECLS

typedef struct {
  const char *root;         /* "/" in the guest; a directory tree in tests */
  gboolean    network;      /* configure the interface over netlink */
} BgApplyOptions;

gboolean bg_apply_seed (const BgSeed         *seed,
                        const BgApplyOptions *options,
                        GError              **error);

G_END_DECLS
