#pragma once

#include "bg-config.h"
#include "bg-image.h"

G_BEGIN_DECLS

gboolean bg_disk_reflink     (int            src_fd,
                              int            dst_fd,
                              GError       **error);
gboolean bg_disk_copy_sparse (int            src_fd,
                              int            dst_fd,
                              GChecksum     *checksum,
                              BgProgress    *progress,
                              GCancellable  *cancellable,
                              GError       **error);
gboolean bg_disk_create      (const char    *image_rootfs,
                              const char    *dest,
                              BgDiskMode     mode,
                              guint64        size,
                              BgDiskMode    *used,
                              GCancellable  *cancellable,
                              GError       **error);
gboolean bg_disk_make_for_vm (BgImage       *image,
                              const char    *dir,
                              BgDiskMode     want,
                              guint64        size,
                              BgDiskMode    *used,
                              char         **reason,
                              GCancellable  *cancellable,
                              GError       **error);

G_END_DECLS
