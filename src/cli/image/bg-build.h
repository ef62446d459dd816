#pragma once

#include "bg-image.h"

G_BEGIN_DECLS

typedef struct {
  const char *suite;      /* "bookworm" */
  const char *mirror;     /* NULL: the distribution's default */
  char      **packages;   /* extra packages */
  guint64     size;       /* root filesystem size */
  gboolean    cloud_init; /* configure guests with cloud-init, not banger-guest-setup */
} BgBuildOptions;

gboolean bg_build_check_host       (const BgBuildOptions *options,
                                    GError              **error);
gboolean bg_build_write_overlay    (const char           *overlay,
                                    const BgBuildOptions *options,
                                    const char           *guest_setup,
                                    GError              **error);

BgImage *bg_image_build (const char           *images_dir,
                         const char           *name,
                         const BgBuildOptions *options,
                         BgProgress           *progress,
                         GError              **error);

G_END_DECLS
