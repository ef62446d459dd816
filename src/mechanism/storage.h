#pragma once

#include <glib.h>
#include <sys/types.h>

G_BEGIN_DECLS

int      bg_loop_attach   (int          backing_fd,
                           gboolean     read_only,
                           dev_t       *out_rdev,
                           char       **out_device,
                           GError     **error);

#include "daemon.h"

typedef struct _BgStorage BgStorage;

extern const BgResourceKind bg_loop_kind;

BgStorage *bg_storage_new     (BgDaemon     *daemon);
void       bg_storage_free    (BgStorage    *storage);
void       bg_storage_connect (BgStorage    *storage,
                               BgMechanism1 *skeleton);

G_END_DECLS
