/* storage.c: loop devices a caller attaches for itself, recorded as
 * theirs, held open by the mechanism (so autoclear keeps them) until
 * DetachLoop, a release, or the mechanism's exit. */
#include <sys/stat.h>

#include "bg-error.h"
#include "bg-fd.h"
#include "daemon.h"
#include "loop.h"
#include "registry.h"
#include "storage.h"

static gboolean
release_loop (gpointer     self,
              BgResource  *resource,
              GError     **error)
{
  BgStorage *storage = self;
  gpointer held = NULL;
  guint64 dev = 0, ino = 0;

  g_variant_lookup (resource->details, "backing-dev", "t", &dev);
  g_variant_lookup (resource->details, "backing-ino", "t", &ino);
  if (!g_hash_table_lookup_extended (storage->loops, resource->name, NULL, &held))
    return bg_loop_detach (resource->name, -1, dev, ino, error);
  if (!bg_loop_detach (resource->name, GPOINTER_TO_INT (held), dev, ino, error))
    return FALSE;
  g_hash_table_remove (storage->loops, resource->name);
  bg_daemon_release (storage->daemon);
  return TRUE;
}

static const BgResourceKind loop_kind = {
  .kind = "loop",
  .action = "org.banger.storage",
  .validate_name = bg_loop_validate_name,
  .release = release_loop,
};

BgResource *
bg_storage_attach (BgStorage  *storage,
                   uid_t       owner,
                   int         fd,
                   gboolean    read_only,
                   GError    **error)
{
  g_autofree char *name = NULL;
  g_auto(BgFd) loop_fd = -1;
  GVariantBuilder b;
  BgResource *r;
  struct stat st;
  dev_t rdev;

  if (fstat (fd, &st) < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "fd: unusable file descriptor");
      return NULL;
    }
  loop_fd = bg_loop_attach (fd, read_only, &rdev, &name, error);
  if (loop_fd < 0)
    return NULL;
  g_variant_builder_init (&b, G_VARIANT_TYPE ("a{sv}"));
  g_variant_builder_add (&b, "{sv}", "read-only", g_variant_new_boolean (read_only));
  g_variant_builder_add (&b, "{sv}", "backing-dev", g_variant_new_uint64 (st.st_dev));
  g_variant_builder_add (&b, "{sv}", "backing-ino", g_variant_new_uint64 (st.st_ino));
  r = bg_registry_add (storage->registry, "loop", name, owner, g_variant_builder_end (&b), error);
  if (r == NULL || !bg_registry_set_state (storage->registry, r, BG_RESOURCE_READY, error))
    {
      bg_loop_detach (name, loop_fd, 0, 0, NULL);
      if (r != NULL)
        bg_registry_remove (storage->registry, r, NULL);
      return NULL;
    }
  /* Held open: with autoclear, the device lives while someone has it
   * open; the mechanism keeps it (and so stays up) until DetachLoop. */
  g_hash_table_replace (storage->loops, g_strdup (name), GINT_TO_POINTER (g_steal_fd (&loop_fd)));
  bg_daemon_hold (storage->daemon);
  return r;
}

static void
close_fd (gpointer data)
{
  close (GPOINTER_TO_INT (data));
}

BgStorage *
bg_storage_new (BgDaemon *daemon)
{
  BgStorage *storage = g_new0 (BgStorage, 1);

  storage->daemon = daemon;
  storage->registry = bg_daemon_get_registry (daemon);
  storage->loops = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, close_fd);
  bg_daemon_add_kind (daemon, &loop_kind, storage);
  return storage;
}

void
bg_storage_free (BgStorage *storage)
{
  if (storage == NULL)
    return;
  g_hash_table_unref (storage->loops);
  g_free (storage);
}
