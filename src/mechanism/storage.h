/* storage.h: the caller's loop devices (AttachLoop / DetachLoop). */
#pragma once

#include <sys/types.h>

#include "types.h"

G_BEGIN_DECLS

struct _BgStorage {
  BgDaemon   *daemon;
  BgRegistry *registry;
  GHashTable *loops;   /* "loopN" -> fd held open (autoclear keeps it alive) */
};

BgStorage  *bg_storage_new     (BgDaemon   *daemon);
void        bg_storage_free    (BgStorage  *storage);
BgResource *bg_storage_attach  (BgStorage  *storage,
                                uid_t       owner,
                                int         fd,
                                gboolean    read_only,
                                GError    **error);
char       *bg_storage_share_base    (BgStorage   *storage,
                                      int          fd,
                                      const char  *vm,
                                      dev_t       *rdev,
                                      GError     **error);
void        bg_storage_unshare_bases (BgStorage   *storage,
                                      const char  *vm,
                                      GHashTable  *keep);

G_END_DECLS
