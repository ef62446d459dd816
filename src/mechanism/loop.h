/* loop.h: loop devices over descriptors the caller opened. */
#pragma once

#include <sys/types.h>

#include "types.h"

G_BEGIN_DECLS

int      bg_loop_attach     (int          backing_fd,
                             gboolean     read_only,
                             dev_t       *out_rdev,
                             char       **out_name,
                             GError     **error);
gboolean bg_loop_detach     (const char  *name,
                             int          held_fd,
                             dev_t        backing_dev,
                             ino_t        backing_ino,
                             GError     **error);
int      bg_loop_open_matching (const char *name,
                                guint64     dev,
                                guint64     ino,
                                dev_t      *rdev);
gboolean bg_loop_matches    (const char  *name,
                             guint64      dev,
                             guint64      ino);
gboolean bg_loop_validate_name (const char  *field,
                                const char  *name,
                                GError     **error);

G_END_DECLS
