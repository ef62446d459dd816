/* bg-fsync.c: files written without waiting for the disk, made durable
 * together in a thread while other work goes on, and waited for before
 * anything that depends on them is itself made durable.
 *
 * vm up writes a new VM's host key and config drive this way: they are
 * the VM's own (a power loss before they reach the disk leaves the VM
 * "creating" on record, which 'system cleanup' removes whole), and the
 * fsyncs, 0.3-1 ms each, then run while the mechanism launches the VM
 * rather than before. The record that says the VM exists is written
 * durably only after them. Shared files (known_hosts) are never
 * deferred: a rename over them must not be able to lose other VMs'
 * lines.
 *
 * A path is a file or a directory (whose fsync makes the renames into
 * it durable); each is opened again by name, without following a link.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "bg-cli.h"
#include "bg-error.h"
#include "bg-fd.h"
#include "bg-fsync.h"

struct _BgFsyncBatch {
  GPtrArray *paths;
  GThread   *thread;
  GError    *error;
  gboolean   done;
};

BgFsyncBatch *
bg_fsync_batch_new (void)
{
  BgFsyncBatch *batch = g_new0 (BgFsyncBatch, 1);

  batch->paths = g_ptr_array_new_with_free_func (g_free);
  return batch;
}

/* Before bg_fsync_batch_start () only. */
void
bg_fsync_batch_add (BgFsyncBatch *batch,
                    const char   *path)
{
  g_return_if_fail (batch->thread == NULL && !batch->done);
  if (!g_ptr_array_find_with_equal_func (batch->paths, path, g_str_equal, NULL))
    g_ptr_array_add (batch->paths, g_strdup (path));
}

/* As bg_fsync_batch_add, but synced before the others (moved to the
 * front if it is there): a file some other process is about to sync
 * itself (the kernel does, for a loop device's backing file) is then
 * clean when it does. */
void
bg_fsync_batch_add_first (BgFsyncBatch *batch,
                          const char   *path)
{
  guint i;

  g_return_if_fail (batch->thread == NULL && !batch->done);
  if (g_ptr_array_find_with_equal_func (batch->paths, path, g_str_equal, &i))
    g_ptr_array_remove_index (batch->paths, i);
  g_ptr_array_insert (batch->paths, 0, g_strdup (path));
}

static gpointer
sync_all (gpointer data)
{
  BgFsyncBatch *batch = data;

  for (guint i = 0; i < batch->paths->len && batch->error == NULL; i++)
    {
      const char *path = batch->paths->pdata[i];
      g_auto(BgFd) fd = open (path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

      if (fd < 0 || fsync (fd) < 0)
        {
          int errsv = errno;
          g_set_error (&batch->error, BG_ERROR, BG_ERROR_FAILED, "cannot write %s to the disk: %s",
                       path, g_strerror (errsv));
        }
    }
  return NULL;
}

/* Only the main thread hears Ctrl-C (bg-cli.c). */
static gpointer
sync_all_thread (gpointer data)
{
  bg_cli_block_interrupts ();
  return sync_all (data);
}

void
bg_fsync_batch_start (BgFsyncBatch *batch)
{
  g_return_if_fail (batch->thread == NULL && !batch->done);
  batch->thread = g_thread_new ("banger-fsync", sync_all_thread, batch);
}

/* Waits for the batch (or, not started, syncs it here); the first
 * failure, if any. Once: later calls answer the same. */
gboolean
bg_fsync_batch_finish (BgFsyncBatch  *batch,
                       GError       **error)
{
  if (!batch->done)
    {
      if (batch->thread != NULL)
        g_thread_join (g_steal_pointer (&batch->thread));
      else
        sync_all (batch);
      batch->done = TRUE;
    }
  if (batch->error != NULL)
    {
      if (error != NULL)
        *error = g_error_copy (batch->error);
      return FALSE;
    }
  return TRUE;
}

void
bg_fsync_batch_free (BgFsyncBatch *batch)
{
  if (batch == NULL)
    return;
  /* Never left running over files its owner may remove next. */
  if (batch->thread != NULL)
    g_thread_join (g_steal_pointer (&batch->thread));
  g_ptr_array_unref (batch->paths);
  g_clear_error (&batch->error);
  g_free (batch);
}
