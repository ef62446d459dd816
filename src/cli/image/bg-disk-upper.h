#pragma once

#include <gio/gio.h>

#include "bg-file.h"

G_BEGIN_DECLS

gboolean bg_disk_upper_make (const char    *dest,
                             guint64        size,
                             BgFileFlags    flags,
                             GCancellable  *cancellable,
                             GError       **error);

G_END_DECLS
