/* bg-vm-launch.h: the parts of vm up below its orchestrator: the
 * network's answer into the record, the pinned host key, the config
 * drive, the jailed VMM's launch and its configuration. */
#pragma once

#include <gio/gio.h>

#include "bg-config.h"
#include "bg-image.h"
#include "bg-fsync.h"
#include "bg-progress.h"
#include "bg-state.h"
#include "bg-undo.h"

G_BEGIN_DECLS

typedef struct _BgVmPinAhead BgVmPinAhead;

void      bg_vm_take_network       (BgVmRecord   *record,
                                    GVariant     *info);
gboolean  bg_vm_write_config_drive (BgVmRecord   *record,
                                    BgConfig     *config,
                                    const char   *dir,
                                    BgFsyncBatch *later,
                                    GError      **error);
gboolean  bg_vm_pin_host_key       (BgVmRecord   *record,
                                    const char   *dir,
                                    BgUndo       *undo,
                                    BgFsyncBatch *later,
                                    GError      **error);
gboolean  bg_vm_launch             (BgVmRecord   *record,
                                    BgImage      *image,
                                    BgConfig     *config,
                                    const char   *dir,
                                    gboolean      guessed,
                                    BgProgress   *progress,
                                    BgUndo       *undo,
                                    BgVmPinAhead **pin,
                                    GVariant    **paths,
                                    GError      **error);
gboolean  bg_vm_finish_pin         (BgVmPinAhead *pin,
                                    GError      **error);
gboolean  bg_vm_configure_and_start (BgVmRecord  *record,
                                    BgImage      *image,
                                    GVariant     *paths,
                                    BgProgress   *progress,
                                    GError      **error);

G_END_DECLS
