/* storage-dbus.c: AttachLoop and DetachLoop on the bus. */
#include "bg-error.h"
#include "bg-fd.h"
#include "auth.h"
#include "daemon.h"
#include "loop.h"
#include "registry.h"
#include "storage.h"
#include "validate.h"

static BgFdAccess
loop_access (gboolean read_only)
{
  /* A writable loop needs a file the caller could both read and write. */
  return read_only ? BG_FD_READ : BG_FD_READ_WRITE;
}

static void
attach_authorized (BgCall   *call,
                   gpointer  self)
{
  GError *error = NULL;
  g_auto(BgFd) fd = -1;
  g_autofree char *device = NULL;
  gint32 handle;
  gboolean read_only;
  BgResource *r;

  g_variant_get (bg_call_get_parameters (call), "(hb)", &handle, &read_only);
  fd = bg_take_fd (bg_call_get_fd_list (call), handle, "fd", loop_access (read_only), &error);
  if (fd < 0 || (r = bg_storage_attach (self, call->caller_uid, fd, read_only, &error)) == NULL)
    return bg_call_take_error (call, error);
  device = g_strdup_printf ("/dev/%s", r->name);
  bg_call_return_value (call, g_variant_new ("(s)", device));
}

static gboolean
handle_attach_loop (BgMechanism1          *skeleton,
                    GDBusMethodInvocation *invocation,
                    GUnixFDList           *fd_list,
                    GVariant              *handle,
                    gboolean               read_only,
                    BgStorage             *storage)
{
  GError *error = NULL;

  if (!bg_validate_fd (fd_list, g_variant_get_handle (handle), "fd", loop_access (read_only), &error))
    return bg_invocation_take_error (invocation, error);
  bg_call_start (storage->daemon, invocation, "org.banger.storage", NULL, attach_authorized, storage);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
detach_loop (gpointer     self,
             BgCall      *call,
             BgResource  *loop,
             GError     **error)
{
  return bg_daemon_release_resource (call->daemon, loop, error);
}

static const char *
device_name (const char *device)
{
  return g_str_has_prefix (device, "/dev/") ? device + 5 : device;
}

static void
detach_authorized (BgCall   *call,
                   gpointer  self)
{
  const char *device;

  g_variant_get (bg_call_get_parameters (call), "(&s)", &device);
  bg_call_act_on_owned (call, "device", BG_KIND_LOOP, device_name (device), detach_loop);
}

static gboolean
handle_detach_loop (BgMechanism1          *skeleton,
                    GDBusMethodInvocation *invocation,
                    const char            *device,
                    BgStorage             *storage)
{
  GError *error = NULL;
  const char *name = device_name (device);

  if (!bg_loop_validate_name ("device", name, &error))
    return bg_invocation_take_error (invocation, error);
  bg_call_start (storage->daemon, invocation, "org.banger.storage", bg_details_new ("banger.device", name),
                 detach_authorized, storage);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

const BgMethod bg_storage_methods[] = {
  { "handle-attach-loop", G_CALLBACK (handle_attach_loop) },
  { "handle-detach-loop", G_CALLBACK (handle_detach_loop) },
  { NULL }
};
