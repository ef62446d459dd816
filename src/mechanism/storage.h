#pragma once

#include <glib.h>
#include <sys/types.h>

G_BEGIN_DECLS

int      bg_loop_attach   (int          backing_fd,
                           gboolean     read_only,
                           dev_t       *out_rdev,
                           char       **out_device,
                           GError     **error);

G_END_DECLS
