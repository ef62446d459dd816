/* system-dbus.c: the methods about the mechanism as a whole — Ping,
 * HostInfo, ListResources, ReleaseResource. */
#include <grp.h>
#include <pwd.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>

#include "bg-error.h"
#include "bg-fd.h"
#include "bg-group-rule.h"
#include "auth.h"
#include "bg-netconf.h"
#include "ipv6.h"
#include "confine.h"
#include "vm.h"
#include "daemon.h"
#include "registry.h"
#include "validate.h"

static void
ping_authorized (BgCall   *call,
                 gpointer  self)
{
  bg_call_return_value (call, g_variant_new ("(su)", PACKAGE_VERSION, (guint32) call->caller_uid));
}

static void
subscribe_authorized (BgCall   *call,
                      gpointer  self)
{
  bg_daemon_subscribe (call->daemon, g_dbus_method_invocation_get_connection (call->invocation),
                       g_dbus_method_invocation_get_sender (call->invocation), call->caller_uid);
  bg_call_return_value (call, NULL);
}

/* "" when @path opens as a character device (and KVM answers with its
 * API version), else why not. */
static char *
try_device (const char *path)
{
  g_auto(BgFd) fd = open (path, O_RDWR | O_CLOEXEC);
  int version;

  if (fd < 0)
    return g_strdup_printf ("cannot open %s: %s", path, g_strerror (errno));
  if (g_str_equal (path, "/dev/kvm") && (version = ioctl (fd, KVM_GET_API_VERSION, 0)) != KVM_API_VERSION)
    return g_strdup_printf ("/dev/kvm reports API version %d, not %d", version, KVM_API_VERSION);
  return g_strdup ("");
}

static void
host_info_authorized (BgCall   *call,
                      gpointer  self)
{
  static const struct { const char *key, *path; } devices[] = {
    { "kvm", "/dev/kvm" }, { "tun", "/dev/net/tun" }, { "loop", "/dev/loop-control" },
  };
  g_autoptr(GError) error = NULL;
  g_autofree char *vmm = bg_vm_config_vmm (bg_daemon_get_config_dir (call->daemon), NULL);
  g_auto(BgFd) fd = -1;
  gboolean dynamic;
  GVariantDict d;

  g_variant_dict_init (&d, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (devices); i++)
    g_variant_dict_insert_value (&d, devices[i].key, g_variant_new_take_string (try_device (devices[i].path)));
  g_variant_dict_insert (&d, "vmm", "s", vmm);
  fd = bg_confine_open_vmm (vmm, &dynamic, &error);
  g_variant_dict_insert (&d, "vmm-error", "s", fd >= 0 ? "" : error->message);
  g_variant_dict_insert (&d, "abstract-unix", "s",
                         bg_vm_abstract_unix_guard (bg_daemon_get_config_dir (call->daemon)));
  {
    g_autoptr(BgNetConfig) c = bg_net_config_load (bg_daemon_get_config_dir (call->daemon), NULL);
    g_autofree char *off = c ? bg_ipv6_off_reason (c, "default") : g_strdup ("network.conf is not valid");
    g_variant_dict_insert (&d, "ipv6", "s", off ? off : "");
  }
  bg_call_return_value (call, g_variant_new ("(@a{sv})", g_variant_dict_end (&d)));
}

static void
group_rule_authorized (BgCall   *call,
                       gpointer  self)
{
  const char * const dirs[] = BG_POLKIT_RULES_DIRS;
  g_autofree char *group = bg_group_rule_find (dirs);
  GVariantDict d;

  g_variant_dict_init (&d, NULL);
  g_variant_dict_insert (&d, "group", "s", group ? group : "");
  g_variant_dict_insert (&d, "group-exists", "b", group != NULL && getgrnam (group) != NULL);
  bg_call_return_value (call, g_variant_new ("(@a{sv})", g_variant_dict_end (&d)));
}

/* One "usage" row per user who holds anything (and the caller): what
 * each holds next to the limits of [limits]. */
static void
add_usage (GVariantBuilder *b,
           BgCall          *call,
           gboolean         all_users)
{
  const BgLimits *limits = bg_daemon_get_limits (call->daemon);
  g_autoptr(GPtrArray) all = bg_registry_list_all (bg_daemon_get_registry (call->daemon));
  g_autoptr(GArray) uids = g_array_new (FALSE, FALSE, sizeof (uid_t));

  g_array_append_val (uids, call->caller_uid);
  for (guint i = 0; all_users && i < all->len; i++)
    {
      uid_t u = ((BgResource *) all->pdata[i])->owner;
      gboolean seen = FALSE;
      for (guint k = 0; k < uids->len && !seen; k++)
        seen = g_array_index (uids, uid_t, k) == u;
      if (!seen)
        g_array_append_val (uids, u);
    }
  for (guint k = 0; k < uids->len; k++)
    {
      uid_t u = g_array_index (uids, uid_t, k);
      struct passwd *pw = getpwuid (u);
      g_autofree char *name = pw ? g_strdup (pw->pw_name) : g_strdup_printf ("%u", (guint) u);
      GVariantDict d;

      g_variant_dict_init (&d, NULL);
      for (BgKind kind = 0; kind < BG_KIND_COUNT; kind++)
        {
          const BgKindInfo *info = bg_kind_get_info (kind);
          g_autofree char *lkey = g_strdup_printf ("%s-limit", info->plural);

          if (!info->per_user)
            continue;
          g_variant_dict_insert (&d, info->plural, "u", bg_daemon_count_owned (call->daemon, u, kind));
          /* Root has no limits: 0 says so. */
          g_variant_dict_insert (&d, lkey, "u", u == 0 ? 0 : bg_daemon_get_limit (call->daemon, kind));
        }
      g_variant_dict_insert (&d, "pending-calls", "u", bg_daemon_count_pending (call->daemon, u, 0));
      g_variant_dict_insert (&d, "pending-calls-limit", "u", u == 0 ? 0 : limits->pending_calls);
      g_variant_builder_add (b, "(ssuts@a{sv})", "usage", name, (guint32) u, (guint64) 0, "ready",
                             g_variant_dict_end (&d));
    }
}

static void
list_authorized (BgCall   *call,
                 gpointer  self)
{
  g_autoptr(GVariant) options = g_variant_get_child_value (bg_call_get_parameters (call), 0);
  g_autoptr(GPtrArray) all = NULL;
  gboolean all_users = FALSE;
  const char *kind_name = NULL;
  BgKind kind;
  GVariantBuilder b;

  gboolean usage = FALSE;

  g_variant_lookup (options, "all-users", "b", &all_users);
  if (g_variant_lookup (options, "usage", "b", &usage) && usage)
    {
      g_variant_builder_init (&b, G_VARIANT_TYPE ("a(ssutsa{sv})"));
      add_usage (&b, call, all_users);
      bg_call_return_value (call, g_variant_new ("(a(ssutsa{sv}))", &b));
      return;
    }
  /* The kind was checked when the call came in. */
  if (g_variant_lookup (options, "kind", "&s", &kind_name) && bg_kind_from_string (kind_name, &kind))
    all = bg_registry_list (bg_daemon_get_registry (call->daemon), kind);
  else
    all = bg_registry_list_all (bg_daemon_get_registry (call->daemon));
  g_variant_builder_init (&b, G_VARIANT_TYPE ("a(ssutsa{sv})"));
  for (guint i = 0; i < all->len; i++)
    {
      BgResource *r = all->pdata[i];
      if (all_users || r->owner == call->caller_uid)
        g_variant_builder_add_value (&b, bg_resource_to_variant (r));
    }
  bg_call_return_value (call, g_variant_new ("(a(ssutsa{sv}))", &b));
}

static gboolean
handle_list_resources (BgMechanism1          *skeleton,
                       GDBusMethodInvocation *invocation,
                       GVariant              *options,
                       BgDaemon              *daemon)
{
  static const BgOptionSpec specs[] = {
    { "all-users", "b" },
    { "kind", "s" },
    { "usage", "b" },
    { NULL }
  };
  GError *error = NULL;
  gboolean all_users = FALSE;
  const char *kind = NULL;
  BgKind unused;

  if (!bg_validate_options (options, specs, &error))
    return bg_invocation_take_error (invocation, error);
  if (g_variant_lookup (options, "kind", "&s", &kind) && !bg_kind_from_string (kind, &unused))
    return bg_invocation_take_error (invocation, g_error_new (BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                                                              "options: key \"kind\": unknown resource kind"));
  g_variant_lookup (options, "all-users", "b", &all_users);
  /* Seeing one's own resources is part of managing them; seeing everyone's
   * is an administrator's business. */
  bg_call_start (daemon, invocation, all_users ? "org.banger.admin" : "org.banger.network", NULL,
                 list_authorized, daemon);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
release (gpointer     self,
         BgCall      *call,
         BgResource  *resource,
         GError     **error)
{
  return bg_daemon_release_resource (call->daemon, resource, error);
}

static void
release_authorized (BgCall   *call,
                    gpointer  self)
{
  const char *kind_name, *name;
  BgKind kind = 0;

  /* The kind was checked when the call came in. */
  g_variant_get (bg_call_get_parameters (call), "(&s&s@a{sv})", &kind_name, &name, NULL);
  bg_kind_from_string (kind_name, &kind);
  bg_call_act_on_owned (call, "name", kind, name, release);
}

static gboolean
handle_release_resource (BgMechanism1          *skeleton,
                         GDBusMethodInvocation *invocation,
                         const char            *kind_name,
                         const char            *name,
                         GVariant              *options,
                         BgDaemon              *daemon)
{
  const BgKindOps *ops = NULL;
  GError *error = NULL;
  BgKind kind;

  if (bg_kind_from_string (kind_name, &kind))
    ops = bg_daemon_lookup_kind (daemon, kind);
  if (ops == NULL)
    {
      g_autofree char *shown = g_strescape (kind_name, NULL);
      return bg_invocation_take_error (invocation, g_error_new (BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                                                                "kind: unknown resource kind \"%.32s\"", shown));
    }
  if (!ops->validate_name ("name", name, &error) || !bg_validate_options (options, NULL, &error))
    return bg_invocation_take_error (invocation, error);
  bg_call_start (daemon, invocation, ops->action, bg_details_new ("banger.device", name),
                 release_authorized, daemon);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

const BgMethod bg_system_methods[] = {
  { "handle-ping", NULL, NULL, ping_authorized },
  { "handle-group-rule", NULL, NULL, group_rule_authorized },
  { "handle-subscribe", NULL, NULL, subscribe_authorized },
  { "handle-host-info", NULL, "org.banger.vm", host_info_authorized },
  { "handle-list-resources", G_CALLBACK (handle_list_resources) },
  { "handle-release-resource", G_CALLBACK (handle_release_resource) },
  { NULL }
};
