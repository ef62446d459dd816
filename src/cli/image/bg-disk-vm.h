#pragma once

#include "bg-disk.h"
#include "bg-file.h"
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
/* As bg_disk_vm_make; with BG_FILE_NO_SYNC in @flags a layered disk's
 * formatted copy is not synced: the caller syncs it before the VM is
 * recorded. */
gboolean bg_disk_vm_make_full (BgImage       *image,
                               const char    *dir,
                               BgDiskMode     want,
                               guint64        size,
                               BgFileFlags    flags,
                               BgDiskMode    *used,
                               char         **reason,
                               GCancellable  *cancellable,
                               GError       **error);

G_END_DECLS
