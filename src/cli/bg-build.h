#pragma once

#include "bg-image.h"

G_BEGIN_DECLS

typedef struct {
  const char *suite;      /* "bookworm" */
  const char *mirror;     /* NULL: the distribution's default */
  char      **packages;   /* extra packages */
  guint64     size;       /* root filesystem size */
} BgBuildOptions;

BgImage *bg_image_build (const char           *images_dir,
                         const char           *name,
                         const BgBuildOptions *options,
                         BgProgressFunc        progress,
                         gpointer              user_data,
                         GError              **error);

G_END_DECLS
