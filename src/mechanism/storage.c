/* storage.c: loop devices a caller attaches for itself, recorded as
 * theirs, held open by the mechanism (so autoclear keeps them) until
 * DetachLoop, a release, or the mechanism's exit; and the shared bases of
 * layered VMs: one read-only loop device per image file, whichever VMs
 * use it, recorded with the VMs that do (reference counting), detached
 * when the last of them is gone. */
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

static const BgKindOps base_kind = {
  .kind = BG_KIND_BASE,
  .action = "org.banger.storage",
  .validate_name = bg_loop_validate_name,
  .release = release_loop,     /* a shared base is a loop device */
};

static const BgKindOps loop_kind = {
  .kind = BG_KIND_LOOP,
  .action = "org.banger.storage",
  .validate_name = bg_loop_validate_name,
  .release = release_loop,
};

/* Records the attached @loop_fd as @kind @name, ready; detached again
 * if that fails. Held open: with autoclear, the device lives while
 * someone has it open; the mechanism keeps it (and so stays up) until it
 * is released. */
static BgResource *
record_loop (BgStorage   *storage,
             BgKind       kind,
             const char  *name,
             uid_t        owner,
             GVariant    *details,
             int         *loop_fd,
             GError     **error)
{
  BgResource *r = bg_registry_add (storage->registry, kind, name, owner, details, error);

  if (r == NULL || !bg_registry_set_state (storage->registry, r, BG_RESOURCE_READY, error))
    {
      bg_loop_detach (name, *loop_fd, 0, 0, NULL);
      if (r != NULL)
        bg_registry_remove (storage->registry, r, NULL);
      return NULL;
    }
  g_hash_table_replace (storage->loops, g_strdup (name), GINT_TO_POINTER (g_steal_fd (loop_fd)));
  bg_daemon_hold (storage->daemon);
  return r;
}

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
  struct stat st;
  dev_t rdev;

  if (fstat (fd, &st) < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "fd: unusable file descriptor");
      return NULL;
    }
  if (!bg_daemon_check_limit (storage->daemon, owner, BG_KIND_LOOP, error))
    return NULL;
  loop_fd = bg_loop_attach (fd, read_only, &rdev, &name, error);
  if (loop_fd < 0)
    return NULL;
  g_variant_builder_init (&b, G_VARIANT_TYPE ("a{sv}"));
  g_variant_builder_add (&b, "{sv}", "read-only", g_variant_new_boolean (read_only));
  g_variant_builder_add (&b, "{sv}", "backing-dev", g_variant_new_uint64 (st.st_dev));
  g_variant_builder_add (&b, "{sv}", "backing-ino", g_variant_new_uint64 (st.st_ino));
  return record_loop (storage, BG_KIND_LOOP, name, owner, g_variant_builder_end (&b), &loop_fd, error);
}

static GVariant *
base_details (guint64              dev,
              guint64              ino,
              const char * const  *users)
{
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE ("a{sv}"));
  g_variant_builder_add (&b, "{sv}", "read-only", g_variant_new_boolean (TRUE));
  g_variant_builder_add (&b, "{sv}", "backing-dev", g_variant_new_uint64 (dev));
  g_variant_builder_add (&b, "{sv}", "backing-ino", g_variant_new_uint64 (ino));
  g_variant_builder_add (&b, "{sv}", "users", g_variant_new_strv (users, -1));
  return g_variant_builder_end (&b);
}

/* The shared base behind @fd (an image's root filesystem, read), for
 * the VM @vm: the loop device other VMs of that file already use, if it
 * is still attached to it, or a new read-only one. Its device number in
 * @rdev; the base's name ("loopN") is returned. */
char *
bg_storage_share_base (BgStorage   *storage,
                       int          fd,
                       const char  *vm,
                       dev_t       *rdev,
                       GError     **error)
{
  g_autoptr(GPtrArray) bases = bg_registry_list (storage->registry, BG_KIND_BASE);
  g_autofree char *name = NULL;
  g_auto(BgFd) loop_fd = -1;
  struct stat st;
  BgResource *r;

  if (fstat (fd, &st) < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "options: base: unusable file descriptor");
      return NULL;
    }
  for (guint i = 0; i < bases->len; i++)
    {
      guint64 dev = 0, ino = 0;
      g_autofree const char **users = NULL;
      g_autoptr(GStrvBuilder) more = g_strv_builder_new ();
      g_auto(GStrv) all = NULL;
      gpointer held = NULL;
      struct stat ns;

      r = bases->pdata[i];
      g_variant_lookup (r->details, "backing-dev", "t", &dev);
      g_variant_lookup (r->details, "backing-ino", "t", &ino);
      if (r->state != BG_RESOURCE_READY || dev != st.st_dev || ino != st.st_ino)
        continue;
      if (g_hash_table_lookup_extended (storage->loops, r->name, NULL, &held))
        {
          if (fstat (GPOINTER_TO_INT (held), &ns) < 0)
            continue;
        }
      else
        {
          /* After a restart only the VMMs of other VMs hold it: held
           * from here, as a fresh attach is, and checked on the very
           * descriptor held. Otherwise the last of those VMMs could exit
           * before this VM's jail opens the device by number, and
           * autoclear would free the number for another attacher's
           * file. */
          g_auto(BgFd) hold = bg_loop_open_matching (r->name, dev, ino, &ns.st_rdev);

          if (hold < 0)
            continue;
          g_hash_table_replace (storage->loops, g_strdup (r->name), GINT_TO_POINTER (g_steal_fd (&hold)));
          bg_daemon_hold (storage->daemon);
        }
      g_variant_lookup (r->details, "users", "^a&s", &users);
      g_strv_builder_addv (more, users ? users : (const char *[]) { NULL });
      g_strv_builder_add (more, vm);
      all = g_strv_builder_end (more);
      if (!bg_registry_set_details (storage->registry, r, base_details (dev, ino, (const char * const *) all),
                                    error))
        return NULL;
      *rdev = ns.st_rdev;
      return g_strdup (r->name);
    }

  loop_fd = bg_loop_attach (fd, TRUE, rdev, &name, error);
  if (loop_fd < 0)
    return NULL;
  if (record_loop (storage, BG_KIND_BASE, name, 0, base_details (st.st_dev, st.st_ino, (const char * const[]) { vm, NULL }),
                   &loop_fd, error) == NULL)
    return NULL;
  return g_steal_pointer (&name);
}

/* @vm no longer uses any shared base; a base no VM uses is detached.
 * With @keep (NULL-terminated VM ids, at start: the VMs still running),
 * every user not in it is dropped. */
void
bg_storage_unshare_bases (BgStorage          *storage,
                          const char         *vm,
                          GHashTable         *keep)
{
  g_autoptr(GPtrArray) bases = bg_registry_list (storage->registry, BG_KIND_BASE);

  for (guint i = 0; i < bases->len; i++)
    {
      BgResource *r = bases->pdata[i];
      g_autofree const char **users = NULL;
      g_autoptr(GStrvBuilder) left = g_strv_builder_new ();
      g_auto(GStrv) rest = NULL;
      g_autoptr(GError) error = NULL;
      guint64 dev = 0, ino = 0;
      guint n = 0, before = 0;

      g_variant_lookup (r->details, "users", "^a&s", &users);
      g_variant_lookup (r->details, "backing-dev", "t", &dev);
      g_variant_lookup (r->details, "backing-ino", "t", &ino);
      for (guint u = 0; users && users[u]; u++, before++)
        if (!(vm && g_str_equal (users[u], vm)) && (keep == NULL || g_hash_table_contains (keep, users[u])))
          {
            g_strv_builder_add (left, users[u]);
            n++;
          }
      if (n == before && r->state == BG_RESOURCE_READY)
        continue;
      rest = g_strv_builder_end (left);
      if (n > 0 && r->state == BG_RESOURCE_READY)
        {
          if (!bg_registry_set_details (storage->registry, r, base_details (dev, ino, (const char * const *) rest),
                                        &error))
            g_warning ("%s", error->message);
          continue;
        }
      if (!bg_daemon_release_resource (storage->daemon, r, &error))
        g_warning ("Cannot detach the shared base %s: %s", r->name, error->message);
    }
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
  bg_daemon_add_kind (daemon, &base_kind, storage);
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
