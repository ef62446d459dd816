#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  BG_FILE_NONE    = 0,
  BG_FILE_NO_SYNC = 1 << 0,   /* whole once renamed, not yet on the disk: the caller syncs it later */
  BG_FILE_NO_REPLACE = 1 << 1, /* fails (EEXIST) if @path exists: put in place by link(), never over one */
} BgFileFlags;

gboolean bg_fd_write_all      (int          fd,
                               const void  *data,
                               gsize        len);

gboolean bg_file_replace      (const char  *path,
                               const char  *contents,
                               gssize       length,
                               int          mode,
                               GError     **error);
gboolean bg_file_replace_full (const char  *path,
                               const char  *contents,
                               gssize       length,
                               int          mode,
                               BgFileFlags  flags,
                               GError     **error);

gboolean bg_file_remove_tree_at (int          parent_fd,
                                 const char  *name);
gboolean bg_file_remove_tree    (const char  *path,
                                 GError     **error);

G_END_DECLS
