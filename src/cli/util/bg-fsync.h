/* bg-fsync.h: files written without waiting for the disk, made durable
 * together in a thread while other work goes on. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _BgFsyncBatch BgFsyncBatch;

BgFsyncBatch *bg_fsync_batch_new    (void);
void          bg_fsync_batch_add    (BgFsyncBatch  *batch,
                                     const char    *path);
void          bg_fsync_batch_add_first (BgFsyncBatch *batch,
                                       const char    *path);
void          bg_fsync_batch_start  (BgFsyncBatch  *batch);
gboolean      bg_fsync_batch_finish (BgFsyncBatch  *batch,
                                     GError       **error);
void          bg_fsync_batch_free   (BgFsyncBatch  *batch);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgFsyncBatch, bg_fsync_batch_free)

G_END_DECLS
