#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
  const char *key;
  const char *type;   /* GVariant type string of the value */
} BgOptionSpec;

gboolean bg_validate_options (GVariant            *options,
                              const BgOptionSpec  *specs,
                              GError             **error);

G_END_DECLS
