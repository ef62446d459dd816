/* network-dbus.c: the network's methods on the bus. Each handler checks
 * its arguments, then bg_call_start() asks polkit; the continuation reads
 * the arguments back from the invocation and calls the engine. */
#include "bg-error.h"
#include "bg-names.h"
#include "auth.h"
#include "daemon.h"
#include "bg-netconf.h"
#include "network.h"
#include "registry.h"
#include "validate.h"

static const BgOptionSpec create_tap_options[] = {
  { "address", "s" },
  { NULL }
};

static void
create_tap_authorized (BgCall   *call,
                       gpointer  self)
{
  g_autoptr(GVariant) options = NULL;
  g_autoptr(BgNetState) state = NULL;
  const char *vm_name, *address = NULL;
  GError *error = NULL;
  BgResource *r;

  g_variant_get (bg_call_get_parameters (call), "(&s@a{sv})", &vm_name, &options);
  g_variant_lookup (options, "address", "&s", &address);
  r = bg_network_create_tap (self, call->caller_uid, vm_name, address, &state, &error);
  if (r == NULL)
    return bg_call_take_error (call, error);
  bg_call_return_value (call, g_variant_new ("(@a{sv})", bg_network_tap_info (r, state)));
}

gboolean
bg_network_validate_address_option (GVariant  *options,
                                    GError   **error)
{
  const char *address;
  guint32 ip;

  if (g_variant_lookup (options, "address", "&s", &address) && !bg_ip_parse (address, &ip))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "options: address: not an IPv4 address");
      return FALSE;
    }
  return TRUE;
}

static gboolean
handle_create_tap (BgMechanism1          *skeleton,
                   GDBusMethodInvocation *invocation,
                   const char            *vm_name,
                   GVariant              *options,
                   BgNetwork             *network)
{
  GError *error = NULL;

  if (!bg_name_validate ("vm_name", vm_name, &error) ||
      !bg_validate_options (options, create_tap_options, &error) ||
      !bg_network_validate_address_option (options, &error))
    return bg_invocation_take_error (invocation, error);
  bg_call_start (network->daemon, invocation, "org.banger.network", bg_details_new ("banger.vm", vm_name),
                 create_tap_authorized, network);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
delete_tap (gpointer     self,
            BgCall      *call,
            BgResource  *tap,
            GError     **error)
{
  return bg_network_delete_tap (self, tap, error);
}

static void
delete_tap_authorized (BgCall   *call,
                       gpointer  self)
{
  const char *tap;

  g_variant_get (bg_call_get_parameters (call), "(&s)", &tap);
  bg_call_act_on_owned (call, "tap", BG_KIND_TAP, tap, delete_tap);
}

static gboolean
handle_delete_tap (BgMechanism1          *skeleton,
                   GDBusMethodInvocation *invocation,
                   const char            *tap,
                   BgNetwork             *network)
{
  GError *error = NULL;

  if (!bg_net_validate_tap_name ("tap", tap, &error))
    return bg_invocation_take_error (invocation, error);
  bg_call_start (network->daemon, invocation, "org.banger.network", bg_details_new ("banger.device", tap),
                 delete_tap_authorized, network);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
return_state (BgCall     *call,
              BgNetState *state,
              GError     *error)
{
  if (state == NULL)
    return bg_call_take_error (call, error);
  bg_call_return_value (call, g_variant_new ("(@a{sv})", bg_net_state_to_variant (state)));
  bg_net_state_free (state);
}

static void
ensure_authorized (BgCall   *call,
                   gpointer  self)
{
  GError *error = NULL;
  BgNetState *state = bg_network_ensure (self, &error);

  return_state (call, state, error);
}

static gboolean
handle_ensure_network (BgMechanism1          *skeleton,
                       GDBusMethodInvocation *invocation,
                       GVariant              *options,
                       BgNetwork             *network)
{
  GError *error = NULL;

  if (!bg_validate_options (options, NULL, &error))
    return bg_invocation_take_error (invocation, error);
  bg_call_start (network->daemon, invocation, "org.banger.network", NULL, ensure_authorized, network);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
info_authorized (BgCall   *call,
                 gpointer  self)
{
  GError *error = NULL;
  BgNetState *state = bg_network_inspect (self, &error);

  return_state (call, state, error);
}

static void
teardown_authorized (BgCall   *call,
                     gpointer  self)
{
  GError *error = NULL;

  if (!bg_network_teardown (self, &error))
    return bg_call_take_error (call, error);
  bg_call_return_value (call, NULL);
}

const BgMethod bg_network_methods[] = {
  { "handle-ensure-network", G_CALLBACK (handle_ensure_network) },
  { "handle-create-tap", G_CALLBACK (handle_create_tap) },
  { "handle-delete-tap", G_CALLBACK (handle_delete_tap) },
  { "handle-network-info", NULL, "org.banger.network", info_authorized },
  /* The bridge is shared by every user: only an administrator removes it. */
  { "handle-teardown-network", NULL, "org.banger.admin", teardown_authorized },
  { NULL }
};
