/* bg-cleanup.h: what 'banger system cleanup' finds and removes. */
#pragma once

#include "bg-cli.h"

G_BEGIN_DECLS

typedef struct {
  char    *kind;    /* a registry kind ("vm", "tap", ...), or the user's
                       side: "half-made vm", "directory", "pinned key" */
  char    *name;
  char    *why;
  guint32  owner;
  gboolean user_side;
} BgLeftover;

GPtrArray *bg_cleanup_find   (gboolean     all_users,
                              GError     **error);
gboolean   bg_cleanup_remove (BgCli       *cli,
                              BgLeftover  *leftover,
                              GError     **error);

G_END_DECLS
