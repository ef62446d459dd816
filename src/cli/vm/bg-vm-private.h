/* What bg-vm.c, bg-vm-launch.c and bg-vm-control.c share; not for the
 * rest of the CLI. */
#pragma once

#include "bg-image.h"
#include "bg-progress.h"
#include "bg-undo.h"
#include "bg-vm.h"

G_BEGIN_DECLS

gboolean  bg_vm_mark_stopped       (BgStateStore *store,
                                    const char   *name,
                                    GError      **error);

void      bg_vm_take_network       (BgVmRecord   *record,
                                    GVariant     *info);
gboolean  bg_vm_write_config_drive (BgVmRecord   *record,
                                    BgConfig     *config,
                                    const char   *dir,
                                    GError      **error);
gboolean  bg_vm_pin_host_key       (BgVmRecord   *record,
                                    const char   *dir,
                                    BgUndo       *undo,
                                    GError      **error);
gboolean  bg_vm_launch             (BgVmRecord   *record,
                                    BgImage      *image,
                                    BgConfig     *config,
                                    const char   *dir,
                                    BgProgress   *progress,
                                    BgUndo       *undo,
                                    GVariant    **paths,
                                    GError      **error);
gboolean  bg_vm_configure_and_start (BgVmRecord  *record,
                                    BgImage      *image,
                                    GVariant     *paths,
                                    BgProgress   *progress,
                                    GError      **error);

G_END_DECLS
