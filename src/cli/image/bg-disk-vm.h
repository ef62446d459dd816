#pragma once

#include "bg-disk.h"
#include "bg-image.h"

G_BEGIN_DECLS

gboolean bg_disk_vm_make (BgImage       *image,
                          const char    *dir,
                          BgDiskMode     want,
                          guint64        size,
                          BgDiskMode    *used,
                          char         **reason,
                          GCancellable  *cancellable,
                          GError       **error);

G_END_DECLS
