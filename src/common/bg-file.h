#pragma once

#include <glib.h>

G_BEGIN_DECLS

gboolean bg_file_replace (const char  *path,
                          const char  *contents,
                          gssize       length,
                          int          mode,
                          GError     **error);

G_END_DECLS
