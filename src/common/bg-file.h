#pragma once

#include <glib.h>

G_BEGIN_DECLS

gboolean bg_file_replace (const char  *path,
                          const char  *contents,
                          gssize       length,
                          int          mode,
                          GError     **error);

gboolean bg_file_remove_tree_at (int          parent_fd,
                                 const char  *name);
gboolean bg_file_remove_tree    (const char  *path,
                                 GError     **error);

G_END_DECLS
