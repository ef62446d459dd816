/* bg-sync.h: the home files a guest gets a copy of. */
#pragma once

#include <gio/gio.h>

#include "bg-config.h"

G_BEGIN_DECLS

typedef struct {
  char    *source;      /* resolved absolute path on the host, for messages */
  char    *home;        /* the real home it is below */
  char    *beneath;     /* its path below that home, without symlinks */
  char    *relative;    /* path below the guest user's home */
  guint32  mode;
  guint64  size;
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
/* The file's bytes, read through a descriptor opened below the home with
 * no symlink anywhere on the way (openat2 RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS), as it was found: what is read is what was
 * checked, whatever was swapped in since. */
GBytes    *bg_sync_entry_read      (BgSyncEntry   *entry,
                                    GError       **error);
/* The entries as a tar stream (ustar, pax names when long), each read
 * as bg_sync_entry_read() reads it. */
gboolean   bg_sync_write_tar       (GPtrArray     *entries,
                                    GOutputStream *out,
                                    GError       **error);
void       bg_sync_entry_free      (BgSyncEntry   *entry);

G_END_DECLS
