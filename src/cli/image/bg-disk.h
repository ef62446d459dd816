#pragma once

#include <gio/gio.h>

#include "bg-config.h"
#include "bg-progress.h"
#include "bg-sha256.h"

G_BEGIN_DECLS

gboolean bg_disk_reflink     (int            src_fd,
                              int            dst_fd,
                              GError       **error);
gboolean bg_disk_copy_sparse (int            src_fd,
                              int            dst_fd,
                              BgSha256      *checksum,
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
G_END_DECLS
