/* bg-sync.h: the home files a guest gets a copy of. */
#pragma once

#include <gio/gio.h>

#include "bg-config.h"

G_BEGIN_DECLS

typedef struct {
  char    *source;      /* resolved absolute path on the host */
  char    *relative;    /* path below the guest user's home */
  guint32  mode;
  gboolean is_dir;
} BgSyncEntry;

GPtrArray *bg_sync_resolve         (const char    *home,
                                    char         **paths,
                                    guint64        limit,
                                    GPtrArray    **skipped,
                                    GError       **error);
/* The [sync] paths of @config below your home; what is left out is said
 * on stderr. */
GPtrArray *bg_sync_resolve_config  (BgConfig      *config,
                                    GError       **error);
void       bg_sync_entry_free      (BgSyncEntry   *entry);

G_END_DECLS
