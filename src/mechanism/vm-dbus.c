/* vm-dbus.c: LaunchVm and KillVm on the bus, and the VmExited signal. */
#include "bg-error.h"
#include "bg-names.h"
#include "auth.h"
#include "daemon.h"
#include "jail.h"
#include "bg-netconf.h"
#include "network.h"
#include "validate.h"
#include "vm.h"

static const BgOptionSpec launch_options[] = {
  { BG_LAUNCH_TAP, "s" },
  { BG_LAUNCH_ADDRESS, "s" },
  { BG_LAUNCH_INITRD, "h" },
  { BG_LAUNCH_CONSOLE, "h" },
  { BG_LAUNCH_TIMEOUT_MS, "u" },
  { BG_LAUNCH_READ_ONLY, "b" },
  { BG_LAUNCH_CONFIG_DRIVE, "h" },
  { BG_LAUNCH_BASE, "h" },
  { NULL }
};

/* The descriptors LaunchVm takes, where they are and how each must have
 * been opened. */
typedef struct {
  const char *field;
  const char *option;     /* NULL: a positional argument */
  BgFdAccess  access;
  gsize       offset;     /* into BgLaunchParams */
} FdArg;

static const FdArg launch_fds[] = {
  { "kernel", NULL, BG_FD_READ, G_STRUCT_OFFSET (BgLaunchParams, kernel_fd) },
  { "rootfs", NULL, BG_FD_READ_WRITE, G_STRUCT_OFFSET (BgLaunchParams, rootfs_fd) },
  { "options: " BG_LAUNCH_INITRD, BG_LAUNCH_INITRD, BG_FD_READ, G_STRUCT_OFFSET (BgLaunchParams, initrd_fd) },
  { "options: " BG_LAUNCH_CONFIG_DRIVE, BG_LAUNCH_CONFIG_DRIVE, BG_FD_READ,
    G_STRUCT_OFFSET (BgLaunchParams, config_fd) },
  { "options: " BG_LAUNCH_BASE, BG_LAUNCH_BASE, BG_FD_READ, G_STRUCT_OFFSET (BgLaunchParams, base_fd) },
  { "options: " BG_LAUNCH_CONSOLE, BG_LAUNCH_CONSOLE, BG_FD_WRITE, G_STRUCT_OFFSET (BgLaunchParams, console_fd) },
};

/* The handle of @arg in the call's parameters: -2 when an optional one
 * was not given. */
static gint32
fd_handle (GVariant    *parameters,
           const FdArg *arg)
{
  g_autoptr(GVariant) options = g_variant_get_child_value (parameters, 1);
  gint32 handle = -2;

  if (arg->option == NULL)
    g_variant_get_child (parameters, g_str_equal (arg->field, "kernel") ? 2 : 3, "h", &handle);
  else
    g_variant_lookup (options, arg->option, "h", &handle);
  return handle;
}

static BgFdAccess
fd_access (const FdArg *arg,
           gboolean     read_only)
{
  return g_str_equal (arg->field, "rootfs") && read_only ? BG_FD_READ : arg->access;
}

/* Checks every descriptor (before polkit), and with @take also takes
 * them into @p (after it). */
static gboolean
launch_fds_check (GVariant        *parameters,
                  GUnixFDList     *fd_list,
                  BgLaunchParams  *p,
                  gboolean         take,
                  GError         **error)
{
  for (guint i = 0; i < G_N_ELEMENTS (launch_fds); i++)
    {
      const FdArg *arg = &launch_fds[i];
      gint32 handle = fd_handle (parameters, arg);
      BgFdAccess access = fd_access (arg, p->read_only);

      if (handle == -2)
        continue;
      if (!bg_validate_fd (fd_list, handle, arg->field, access, error))
        return FALSE;
      if (take)
        {
          int *slot = G_STRUCT_MEMBER_P (p, arg->offset);
          if ((*slot = bg_take_fd (fd_list, handle, arg->field, access, error)) < 0)
            return FALSE;
        }
    }
  return TRUE;
}

typedef struct {
  BgCall   *call;
  GVariant *network;   /* the tap's info, with "tap" */
} Launch;

static GVariant *
launch_reply (BgVmm    *vmm,
              GVariant *network)
{
  g_autofree char *api = g_build_filename (vmm->jail->run, BG_JAIL_API_SOCKET, NULL);
  g_autofree char *vsock = g_build_filename (vmm->jail->run, BG_JAIL_VSOCK_SOCKET, NULL);
  GVariantBuilder paths;

  g_variant_builder_init (&paths, G_VARIANT_TYPE ("a{sv}"));
  g_variant_builder_add (&paths, "{sv}", BG_LAUNCHED_KERNEL, g_variant_new_string ("/" BG_JAIL_KERNEL));
  g_variant_builder_add (&paths, "{sv}", BG_LAUNCHED_ROOTFS, g_variant_new_string ("/" BG_JAIL_ROOTFS));
  if (vmm->base_shared)
    g_variant_builder_add (&paths, "{sv}", BG_LAUNCHED_UPPER, g_variant_new_string ("/" BG_JAIL_UPPER));
  g_variant_builder_add (&paths, "{sv}", BG_LAUNCHED_VSOCK,
                         g_variant_new_string (BG_JAIL_RUN "/" BG_JAIL_VSOCK_SOCKET));
  if (vmm->config_loop_fd >= 0)
    g_variant_builder_add (&paths, "{sv}", BG_LAUNCHED_CONFIG_DRIVE,
                           g_variant_new_string ("/" BG_JAIL_CONFIG_DRIVE));
  /* The jail's root exists only in the VMM's own mount namespace: what
   * it holds is known from the launch, not looked up here. */
  if (vmm->has_initrd)
    g_variant_builder_add (&paths, "{sv}", BG_LAUNCHED_INITRD, g_variant_new_string ("/" BG_JAIL_INITRD));
  g_variant_builder_add (&paths, "{sv}", BG_LAUNCHED_UID, g_variant_new_uint32 (vmm->jail->uid));
  g_variant_builder_add (&paths, "{sv}", BG_LAUNCHED_JAIL, g_variant_new_string (vmm->jail->root));
  if (network != NULL)
    g_variant_builder_add (&paths, "{sv}", BG_LAUNCHED_NETWORK, network);
  return g_variant_new ("(sst@a{sv})", api, vsock, (guint64) vmm->pid, g_variant_builder_end (&paths));
}

static void
launch_done (BgVmm    *vmm,
             GError   *error,
             gpointer  user_data)
{
  Launch *l = user_data;

  if (error != NULL)
    bg_call_take_error (l->call, error);
  else
    bg_call_return_value (l->call, launch_reply (vmm, l->network));
  g_clear_pointer (&l->network, g_variant_unref);
  g_free (l);
}

static void
launch_authorized (BgCall   *call,
                   gpointer  self)
{
  BgVms *vms = self;
  GVariant *parameters = bg_call_get_parameters (call);
  g_autoptr(GVariant) options = g_variant_get_child_value (parameters, 1);
  BgLaunchParams p = { .kernel_fd = -1, .rootfs_fd = -1, .base_fd = -1, .initrd_fd = -1, .console_fd = -1,
                       .config_fd = -1 };
  const char *address = NULL;
  GError *error = NULL;
  Launch *l = g_new0 (Launch, 1);

  l->call = call;
  g_variant_get_child (parameters, 0, "&s", &p.vm_name);
  g_variant_lookup (options, BG_LAUNCH_TAP, "&s", &p.tap);
  g_variant_lookup (options, BG_LAUNCH_ADDRESS, "&s", &address);
  g_variant_lookup (options, BG_LAUNCH_TIMEOUT_MS, "u", &p.timeout_ms);
  g_variant_lookup (options, BG_LAUNCH_READ_ONLY, "b", &p.read_only);
  /* The VM's tap, as CreateTap made it, or made again if it vanished: a
   * stopped VM starts in one call, after a reboot too. */
  if (p.tap != NULL)
    {
      g_autoptr(BgNetState) state = NULL;
      g_autofree char *own = bg_net_tap_name (call->caller_uid, p.vm_name);
      BgResource *tap;

      /* Only this VM's own tap, whose name is derived from the caller and
       * the VM's name. */
      if (!g_str_equal (p.tap, own))
        {
          error = g_error_new (BG_ERROR, BG_ERROR_NOT_OWNER, "options: tap %s is not the tap of your VM %s",
                               p.tap, p.vm_name);
          goto fail;
        }
      tap = bg_network_tap_for_launch (vms->network, call->caller_uid, p.vm_name, address, &state, &error);

      if (tap == NULL)
        goto fail;
      l->network = g_variant_ref_sink (bg_network_tap_info (tap, state));
    }
  /* Only now, authorized, are the caller's descriptors taken. */
  if (!launch_fds_check (parameters, bg_call_get_fd_list (call), &p, TRUE, &error))
    goto fail;
  bg_vms_launch (vms, call->caller_uid, &p, launch_done, l);
  bg_launch_params_clear (&p);
  return;

fail:
  bg_launch_params_clear (&p);
  g_clear_pointer (&l->network, g_variant_unref);
  g_free (l);
  bg_call_take_error (call, error);
}

static gboolean
handle_launch_vm (BgMechanism1          *skeleton,
                  GDBusMethodInvocation *invocation,
                  GUnixFDList           *fd_list,
                  const char            *vm_name,
                  GVariant              *options,
                  GVariant              *kernel,
                  GVariant              *rootfs,
                  BgVms                 *vms)
{
  GVariant *parameters = g_dbus_method_invocation_get_parameters (invocation);
  BgLaunchParams check = { 0 };
  const char *tap = NULL;
  GError *error = NULL;
  guint32 timeout_ms = 0;

  if (!bg_name_validate ("vm_name", vm_name, &error) ||
      !bg_validate_options (options, launch_options, &error))
    return bg_invocation_take_error (invocation, error);
  if (g_variant_lookup (options, BG_LAUNCH_TAP, "&s", &tap) &&
      !bg_net_validate_tap_name ("options: " BG_LAUNCH_TAP, tap, &error))
    return bg_invocation_take_error (invocation, error);
  if (!bg_network_validate_address_option (options, &error))
    return bg_invocation_take_error (invocation, error);
  g_variant_lookup (options, BG_LAUNCH_TIMEOUT_MS, "u", &timeout_ms);
  if (timeout_ms != 0 && (timeout_ms < 100 || timeout_ms > 60000))
    return bg_invocation_take_error (invocation, g_error_new (BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                                                              "options: timeout-ms must be 100 to 60000"));
  g_variant_lookup (options, BG_LAUNCH_READ_ONLY, "b", &check.read_only);
  if (!launch_fds_check (parameters, fd_list, &check, FALSE, &error))
    return bg_invocation_take_error (invocation, error);

  bg_call_start (vms->daemon, invocation, "org.banger.vm", bg_details_new ("banger.vm", vm_name),
                 launch_authorized, vms);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
kill_vm (gpointer     self,
         BgCall      *call,
         BgResource  *vm,
         GError     **error)
{
  return bg_vms_kill (self, vm, error);
}

static void
kill_authorized (BgCall   *call,
                 gpointer  self)
{
  const char *name;
  g_autofree char *id = NULL;

  g_variant_get (bg_call_get_parameters (call), "(&s)", &name);
  id = bg_vms_resolve_id (self, call->caller_uid, name);
  bg_call_act_on_owned (call, "vm_name", BG_KIND_VM, id, kill_vm);
}

static gboolean
handle_kill_vm (BgMechanism1          *skeleton,
                GDBusMethodInvocation *invocation,
                const char            *vm_name,
                BgVms                 *vms)
{
  GError *error = NULL;

  if (!bg_name_is_valid (vm_name) && !bg_vm_validate_id ("vm_name", vm_name, NULL))
    {
      bg_name_validate ("vm_name", vm_name, &error);
      return bg_invocation_take_error (invocation, error);
    }
  bg_call_start (vms->daemon, invocation, "org.banger.vm", bg_details_new ("banger.vm", vm_name),
                 kill_authorized, vms);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

const BgMethod bg_vm_methods[] = {
  { "handle-launch-vm", G_CALLBACK (handle_launch_vm) },
  { "handle-kill-vm", G_CALLBACK (handle_kill_vm) },
  { NULL }
};
