/* storage.c: loop devices over files the caller opened.
 *
 * The mechanism never opens the backing file: the caller passed its fd,
 * opened with the caller's own rights. LOOP_CONFIGURE sets the file,
 * read-only flag and autoclear in one ioctl, so there is no moment where
 * a half-configured device is visible; autoclear detaches the device
 * when its last opener closes it, so a crash cannot leak it for long.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gio/gunixfdlist.h>

#include "bg-error.h"
#include "auth.h"
#include "storage.h"
#include "validate.h"

/* Returns an open fd on the new loop device (keep it open until the VMM
 * has the device open, or autoclear detaches it), or -1. */
int
bg_loop_attach (int          backing_fd,
                gboolean     read_only,
                dev_t       *out_rdev,
                char       **out_device,
                GError     **error)
{
  int control = open ("/dev/loop-control", O_RDWR | O_CLOEXEC);

  if (control < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_NOT_SUPPORTED,
                   "cannot open /dev/loop-control: %s", g_strerror (errno));
      return -1;
    }

  /* Another process may take the free device between GET_FREE and
   * CONFIGURE: retry on EBUSY. */
  for (int attempt = 0; attempt < 16; attempt++)
    {
      struct loop_config config = { 0 };
      g_autofree char *path = NULL;
      struct stat st;
      int n = ioctl (control, LOOP_CTL_GET_FREE);
      int fd;

      if (n < 0)
        break;
      path = g_strdup_printf ("/dev/loop%d", n);
      fd = open (path, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
      if (fd < 0)
        continue;
      config.fd = backing_fd;
      config.info.lo_flags = LO_FLAGS_AUTOCLEAR | (read_only ? LO_FLAGS_READ_ONLY : 0);
      if (ioctl (fd, LOOP_CONFIGURE, &config) < 0)
        {
          int errsv = errno;
          close (fd);
          if (errsv == EBUSY)
            continue;
          close (control);
          g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot attach %s: %s", path, g_strerror (errsv));
          return -1;
        }
      if (fstat (fd, &st) < 0)
        {
          close (fd);
          continue;
        }
      close (control);
      *out_rdev = st.st_rdev;
      if (out_device)
        *out_device = g_steal_pointer (&path);
      return fd;
    }
  g_set_error (error, BG_ERROR, BG_ERROR_BUSY, "no free loop device: %s", g_strerror (errno));
  close (control);
  return -1;
}

/* ---- AttachLoop / DetachLoop ---- */

struct _BgStorage {
  BgDaemon   *daemon;
  GHashTable *loops;   /* "loopN" -> fd held open (autoclear keeps it alive) */
};

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
  storage->loops = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, close_fd);
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

static gboolean
validate_loop_name (const char  *field,
                    const char  *name,
                    GError     **error)
{
  guint64 n;

  if (name != NULL && g_str_has_prefix (name, "loop") &&
      g_ascii_string_to_unsigned (name + 4, 10, 0, 1 << 20, &n, NULL))
    return TRUE;
  g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
               "%s: not a loop device name (loopN, as AttachLoop returned it)", field);
  return FALSE;
}

/* Detaches now rather than waiting for the last opener: the registry
 * must not say "gone" while it still exists. */
static gboolean
release_loop (BgDaemon    *daemon,
              BgResource  *resource,
              GError     **error)
{
  BgStorage *storage = bg_daemon_get_storage (daemon);
  g_autofree char *path = g_strdup_printf ("/dev/%s", resource->name);
  gpointer held;
  int fd;

  if (g_hash_table_lookup_extended (storage->loops, resource->name, NULL, &held))
    {
      fd = dup (GPOINTER_TO_INT (held));
      g_hash_table_remove (storage->loops, resource->name);
      bg_daemon_release (daemon);
    }
  else
    fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd >= 0)
    {
      if (ioctl (fd, LOOP_CLR_FD, 0) < 0 && errno != ENXIO)
        {
          int errsv = errno;
          close (fd);
          g_set_error (error, BG_ERROR, errsv == EBUSY ? BG_ERROR_BUSY : BG_ERROR_FAILED,
                       "cannot detach %s: %s", path, g_strerror (errsv));
          return FALSE;
        }
      close (fd);
    }
  return TRUE;
}

const BgResourceKind bg_loop_kind = {
  .kind = "loop",
  .action = "org.banger.storage",
  .validate_name = validate_loop_name,
  .release = release_loop,
};

typedef struct {
  int      fd;
  gboolean read_only;
  char    *device;
} LoopData;

static void
loop_data_free (LoopData *d)
{
  if (d->fd >= 0)
    close (d->fd);
  g_free (d->device);
  g_free (d);
}

static void
attach_authorized (BgCall *call)
{
  LoopData *d = call->data;
  BgStorage *storage = bg_daemon_get_storage (call->daemon);
  BgRegistry *registry = bg_daemon_get_registry (call->daemon);
  g_autofree char *device = NULL;
  GError *error = NULL;
  GVariantBuilder b;
  BgResource *r;
  dev_t rdev;
  int loop_fd;

  loop_fd = bg_loop_attach (d->fd, d->read_only, &rdev, &device, &error);
  if (loop_fd < 0)
    {
      bg_call_return_error (call, error);
      return;
    }
  g_variant_builder_init (&b, G_VARIANT_TYPE ("a{sv}"));
  g_variant_builder_add (&b, "{sv}", "read-only", g_variant_new_boolean (d->read_only));
  r = bg_registry_add (registry, "loop", device + 5, call->caller_uid, g_variant_builder_end (&b), &error);
  if (r == NULL || !bg_registry_set_state (registry, r, BG_RESOURCE_READY, &error))
    {
      ioctl (loop_fd, LOOP_CLR_FD, 0);
      close (loop_fd);
      if (r != NULL)
        bg_registry_remove (registry, r, NULL);
      bg_call_return_error (call, error);
      return;
    }
  /* Held open: with autoclear, the device lives while someone has it
   * open; the mechanism keeps it (and so stays up) until DetachLoop. */
  g_hash_table_replace (storage->loops, g_strdup (device + 5), GINT_TO_POINTER (loop_fd));
  bg_daemon_hold (call->daemon);
  bg_call_return_value (call, g_variant_new ("(s)", device));
}

static gboolean
handle_attach_loop (BgMechanism1          *skeleton,
                    GDBusMethodInvocation *invocation,
                    GUnixFDList           *fd_list,
                    GVariant              *handle,
                    gboolean               read_only,
                    BgDaemon              *daemon)
{
  g_autoptr(GError) error = NULL;
  LoopData *d = g_new0 (LoopData, 1);
  gint32 index = g_variant_get_handle (handle);
  struct stat st;
  int flags;
  BgCall *call;

  d->fd = -1;
  d->read_only = read_only;
  if (fd_list == NULL || index < 0 || index >= g_unix_fd_list_get_length (fd_list))
    {
      g_set_error (&error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "fd: no such file descriptor in the message");
      goto bad;
    }
  d->fd = g_unix_fd_list_get (fd_list, index, &error);
  if (d->fd < 0)
    goto bad;
  flags = fcntl (d->fd, F_GETFL);
  if (fstat (d->fd, &st) < 0 || !S_ISREG (st.st_mode))
    {
      g_set_error (&error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "fd: must be a regular file");
      goto bad;
    }
  /* A writable loop needs a file the caller could write. */
  if (!read_only && (flags & O_ACCMODE) != O_RDWR)
    {
      g_set_error (&error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                   "fd: must be opened read-write (or pass read_only)");
      goto bad;
    }
  call = bg_call_new (daemon, invocation);
  bg_call_set_data (call, d, (GDestroyNotify) loop_data_free);
  bg_call_authorize (call, "org.banger.storage", NULL, attach_authorized);
  return G_DBUS_METHOD_INVOCATION_HANDLED;

bad:
  loop_data_free (d);
  g_dbus_method_invocation_return_gerror (invocation, error);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
detach_authorized (BgCall *call)
{
  LoopData *d = call->data;

  bg_call_act_on_owned (call, "device", "loop", d->device, bg_daemon_release_for_call);
}

static gboolean
handle_detach_loop (BgMechanism1          *skeleton,
                    GDBusMethodInvocation *invocation,
                    const char            *device,
                    BgDaemon              *daemon)
{
  g_autoptr(GError) error = NULL;
  const char *name = g_str_has_prefix (device, "/dev/") ? device + 5 : device;
  LoopData *d;
  BgCall *call;

  if (!validate_loop_name ("device", name, &error))
    {
      g_dbus_method_invocation_return_gerror (invocation, error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  d = g_new0 (LoopData, 1);
  d->fd = -1;
  d->device = g_strdup (name);
  call = bg_call_new (daemon, invocation);
  bg_call_set_data (call, d, (GDestroyNotify) loop_data_free);
  bg_call_authorize (call, "org.banger.storage", bg_details_new ("banger.device", name), detach_authorized);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

void
bg_storage_connect (BgStorage    *storage,
                    BgMechanism1 *skeleton)
{
  g_signal_connect (skeleton, "handle-attach-loop", G_CALLBACK (handle_attach_loop), storage->daemon);
  g_signal_connect (skeleton, "handle-detach-loop", G_CALLBACK (handle_detach_loop), storage->daemon);
}
