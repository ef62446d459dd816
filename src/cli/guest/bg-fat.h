#pragma once

#include <glib.h>

#include "bg-file.h"

G_BEGIN_DECLS

typedef struct {
  const char *name;     /* printable ASCII, no '/', up to 255 characters */
  GBytes     *content;
} BgFatFile;

gboolean bg_fat_write_image (const char       *path,
                             const char       *label,
                             const BgFatFile  *files,
                             guint             n_files,
                             BgFileFlags       flags,
                             GError          **error);

G_END_DECLS
