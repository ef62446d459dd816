/* daemon.c: bus name, object, idle exit, and the system-wide methods
 * (Ping, ListResources, ReleaseResource). Each privileged concern lives in
 * its own file and connects its own handlers (network.c, ...). */
#include <errno.h>
#include <signal.h>
#include <unistd.h>
#include <glib-unix.h>
#include <glib/gstdio.h>

#include "bg-error.h"
#include "bg-names.h"
#include "auth.h"
#include "daemon.h"
#include "network.h"
#include "storage.h"
#include "vm.h"
#include "validate.h"

#define OBJECT_PATH "/org/banger/Mechanism1"
#define BUS_NAME    "org.banger.Mechanism1"

struct _BgDaemon {
  BgDaemonOptions  options;
  char            *run_dir;
  char            *config_dir;
  char            *state_dir;
  GMainLoop       *loop;
  BgMechanism1    *skeleton;
  PolkitAuthority *authority;
  BgRegistry      *registry;
  BgNetwork       *network;
  BgVms           *vms;
  BgStorage       *storage;
  guint            owner_id;
  guint            idle_source;
  guint            holds;
  gboolean         name_acquired;
  int              exit_code;
};

static const BgResourceKind *kinds[] = {
  &bg_network_bridge_kind,
  &bg_network_tap_kind,
  &bg_vm_kind,
  &bg_loop_kind,
  NULL
};

const BgResourceKind *
bg_daemon_lookup_kind (const char *kind)
{
  for (guint i = 0; kinds[i] != NULL; i++)
    if (g_str_equal (kinds[i]->kind, kind))
      return kinds[i];
  return NULL;
}

/* Undoes @resource and forgets it; @resource is freed on success. The
 * entry is marked "deleting" first, so a crash midway is finished by the
 * next start's reconciliation. */
gboolean
bg_daemon_release_resource (BgDaemon    *daemon,
                            BgResource  *resource,
                            GError     **error)
{
  const BgResourceKind *kind = bg_daemon_lookup_kind (resource->kind);

  if (!bg_registry_set_state (daemon->registry, resource, BG_RESOURCE_DELETING, error))
    return FALSE;
  if (kind != NULL && !kind->release (daemon, resource, error))
    return FALSE;
  return bg_registry_remove (daemon->registry, resource, error);
}

/* Entries a crash left half-done ("creating", "deleting") are undone. */
static void
reconcile (BgDaemon *daemon)
{
  g_autoptr(GPtrArray) all = bg_registry_list (daemon->registry, NULL);

  for (guint i = 0; i < all->len; i++)
    {
      BgResource *r = all->pdata[i];
      g_autoptr(GError) error = NULL;
      g_autofree char *what = NULL;

      /* A loop device lives only while its fd is held: after a restart
       * every recorded loop is stale, whatever its state. */
      if (r->state == BG_RESOURCE_READY && !g_str_equal (r->kind, "loop"))
        continue;
      what = g_strdup_printf ("%s %s (%s)", r->kind, r->name, bg_resource_state_to_string (r->state));
      if (!bg_daemon_release_resource (daemon, r, &error))
        g_warning ("Could not clean up %s left by a crash: %s", what, error->message);
      else
        g_message ("Cleaned up %s left by a crash", what);
    }
}

/* ---- idle exit ---- */

static gboolean
on_idle_timeout (gpointer user_data)
{
  BgDaemon *daemon = user_data;

  daemon->idle_source = 0;
  g_debug ("Idle for %u s, exiting", daemon->options.idle_timeout);
  /* Give the name up first, so a call arriving now activates a fresh
   * instance instead of reaching one that is going away. */
  if (daemon->owner_id != 0)
    {
      g_bus_unown_name (daemon->owner_id);
      daemon->owner_id = 0;
    }
  g_main_loop_quit (daemon->loop);
  return G_SOURCE_REMOVE;
}

static void
arm_idle (BgDaemon *daemon)
{
  g_clear_handle_id (&daemon->idle_source, g_source_remove);
  if (daemon->options.idle_timeout == 0 || daemon->holds > 0)
    return;
  daemon->idle_source = g_timeout_add_seconds (daemon->options.idle_timeout, on_idle_timeout, daemon);
}

void
bg_daemon_hold (BgDaemon *daemon)
{
  daemon->holds++;
  g_clear_handle_id (&daemon->idle_source, g_source_remove);
}

void
bg_daemon_release (BgDaemon *daemon)
{
  g_return_if_fail (daemon->holds > 0);
  if (--daemon->holds == 0)
    arm_idle (daemon);
}

/* ---- methods ---- */

static void
ping_authorized (BgCall *call)
{
  bg_call_return_value (call, g_variant_new ("(su)", PACKAGE_VERSION, (guint32) call->caller_uid));
}

static gboolean
handle_ping (BgMechanism1          *skeleton,
             GDBusMethodInvocation *invocation,
             BgDaemon              *daemon)
{
  bg_call_authorize (bg_call_new (daemon, invocation), NULL, NULL, ping_authorized);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

typedef struct {
  gboolean  all_users;
  char     *kind;
} ListData;

static void
list_data_free (ListData *d)
{
  g_free (d->kind);
  g_free (d);
}

static void
list_authorized (BgCall *call)
{
  ListData *d = call->data;
  g_autoptr(GPtrArray) all = bg_registry_list (call->daemon->registry, d->kind);
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE ("a(ssutsa{sv})"));
  for (guint i = 0; i < all->len; i++)
    {
      BgResource *r = all->pdata[i];
      if (d->all_users || r->owner == call->caller_uid)
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
    { NULL }
  };
  g_autoptr(GError) error = NULL;
  ListData *d;
  BgCall *call;

  if (!bg_validate_options (options, specs, &error))
    {
      g_dbus_method_invocation_return_gerror (invocation, error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }

  d = g_new0 (ListData, 1);
  g_variant_lookup (options, "all-users", "b", &d->all_users);
  g_variant_lookup (options, "kind", "s", &d->kind);
  if (d->kind != NULL && bg_daemon_lookup_kind (d->kind) == NULL)
    {
      g_dbus_method_invocation_return_error (invocation, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                                             "options: key \"kind\": unknown resource kind");
      list_data_free (d);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }

  call = bg_call_new (daemon, invocation);
  bg_call_set_data (call, d, (GDestroyNotify) list_data_free);
  /* Seeing one's own resources is part of managing them; seeing everyone's
   * is an administrator's business. */
  bg_call_authorize (call, d->all_users ? "org.banger.admin" : "org.banger.network",
                     NULL, list_authorized);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

typedef struct {
  char *kind;
  char *name;
} ReleaseData;

static void
release_data_free (ReleaseData *d)
{
  g_free (d->kind);
  g_free (d->name);
  g_free (d);
}

/* A BgResourceFunc that undoes the resource: ReleaseResource, DetachLoop. */
gboolean
bg_daemon_release_for_call (BgCall      *call,
                            BgResource  *resource,
                            GError     **error)
{
  return bg_daemon_release_resource (call->daemon, resource, error);
}

static void
release_authorized (BgCall *call)
{
  ReleaseData *d = call->data;

  bg_call_act_on_owned (call, "name", d->kind, d->name, bg_daemon_release_for_call);
}

static gboolean
handle_release_resource (BgMechanism1          *skeleton,
                         GDBusMethodInvocation *invocation,
                         const char            *kind_name,
                         const char            *name,
                         GVariant              *options,
                         BgDaemon              *daemon)
{
  const BgResourceKind *kind = bg_daemon_lookup_kind (kind_name);
  g_autoptr(GError) error = NULL;
  ReleaseData *d;
  BgCall *call;

  if (kind == NULL)
    {
      g_autofree char *shown = g_strescape (kind_name, NULL);
      g_dbus_method_invocation_return_error (invocation, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                                             "kind: unknown resource kind \"%.32s\"", shown);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  if (!kind->validate_name ("name", name, &error) ||
      !bg_validate_options (options, NULL, &error))
    {
      g_dbus_method_invocation_return_gerror (invocation, error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }

  d = g_new0 (ReleaseData, 1);
  d->kind = g_strdup (kind_name);
  d->name = g_strdup (name);
  call = bg_call_new (daemon, invocation);
  bg_call_set_data (call, d, (GDestroyNotify) release_data_free);
  bg_call_authorize (call, kind->action, bg_details_new ("banger.device", name), release_authorized);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- bus ---- */

static void
on_bus_acquired (GDBusConnection *connection,
                 const char      *name,
                 gpointer         user_data)
{
  BgDaemon *daemon = user_data;
  g_autoptr(GError) error = NULL;

  if (!g_dbus_interface_skeleton_export (G_DBUS_INTERFACE_SKELETON (daemon->skeleton),
                                         connection, OBJECT_PATH, &error))
    {
      g_critical ("Cannot export %s: %s", OBJECT_PATH, error->message);
      daemon->exit_code = 1;
      g_main_loop_quit (daemon->loop);
    }
}

static void
on_name_acquired (GDBusConnection *connection,
                  const char      *name,
                  gpointer         user_data)
{
  BgDaemon *daemon = user_data;

  daemon->name_acquired = TRUE;
  g_debug ("Acquired %s", name);
  arm_idle (daemon);
}

static void
on_name_lost (GDBusConnection *connection,
              const char      *name,
              gpointer         user_data)
{
  BgDaemon *daemon = user_data;

  if (connection == NULL)
    g_warning ("Cannot connect to the system bus");
  else if (!daemon->name_acquired)
    g_warning ("Cannot own %s: another banger-mechanism runs (use --replace)", name);
  else
    g_message ("Lost %s (replaced?), exiting", name);
  daemon->exit_code = daemon->name_acquired ? 0 : 1;
  g_main_loop_quit (daemon->loop);
}

static gboolean
on_signal (gpointer user_data)
{
  BgDaemon *daemon = user_data;

  g_main_loop_quit (daemon->loop);
  return G_SOURCE_CONTINUE;
}

BgDaemon *
bg_daemon_new (const BgDaemonOptions  *options,
               GError                **error)
{
  BgDaemon *daemon = g_new0 (BgDaemon, 1);
  g_autofree char *registry_dir = NULL;
  g_autoptr(GError) local = NULL;

  daemon->options = *options;
  daemon->run_dir = g_strdup (options->run_dir);
  daemon->config_dir = g_strdup (options->config_dir);
  daemon->state_dir = g_strdup (options->state_dir);
  daemon->options.run_dir = daemon->run_dir;
  daemon->options.config_dir = daemon->config_dir;
  daemon->options.state_dir = daemon->state_dir;
  daemon->loop = g_main_loop_new (NULL, FALSE);

  /* The run dir holds the hosts file every resolver reads (0644); the
   * registry below it is 0700. */
  if (g_mkdir_with_parents (daemon->run_dir, 0755) < 0 || g_chmod (daemon->run_dir, 0755) < 0)
    {
      int errsv = errno;
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot create %s: %s",
                   daemon->run_dir, g_strerror (errsv));
      bg_daemon_free (daemon);
      return NULL;
    }
  registry_dir = g_build_filename (daemon->run_dir, "registry", NULL);
  daemon->registry = bg_registry_open (registry_dir, error);
  if (daemon->registry == NULL)
    {
      bg_daemon_free (daemon);
      return NULL;
    }

  daemon->authority = polkit_authority_get_sync (NULL, &local);
  if (daemon->authority == NULL)
    g_warning ("polkit is not available, every privileged call will be refused: %s", local->message);

  daemon->network = bg_network_new (daemon);
  daemon->vms = bg_vms_new (daemon);
  daemon->storage = bg_storage_new (daemon);
  daemon->skeleton = bg_mechanism1_skeleton_new ();
  bg_mechanism1_set_version (daemon->skeleton, PACKAGE_VERSION);
  g_signal_connect (daemon->skeleton, "handle-ping", G_CALLBACK (handle_ping), daemon);
  g_signal_connect (daemon->skeleton, "handle-list-resources", G_CALLBACK (handle_list_resources), daemon);
  g_signal_connect (daemon->skeleton, "handle-release-resource", G_CALLBACK (handle_release_resource), daemon);
  bg_network_connect (daemon->network, daemon->skeleton);
  bg_vms_connect (daemon->vms, daemon->skeleton);
  bg_storage_connect (daemon->storage, daemon->skeleton);

  reconcile (daemon);
  bg_vms_recover (daemon->vms);
  return daemon;
}

void
bg_daemon_free (BgDaemon *daemon)
{
  if (daemon == NULL)
    return;
  g_clear_handle_id (&daemon->idle_source, g_source_remove);
  if (daemon->owner_id != 0)
    g_bus_unown_name (daemon->owner_id);
  if (daemon->skeleton != NULL)
    g_dbus_interface_skeleton_unexport (G_DBUS_INTERFACE_SKELETON (daemon->skeleton));
  g_clear_object (&daemon->skeleton);
  g_clear_pointer (&daemon->vms, bg_vms_free);
  g_clear_pointer (&daemon->storage, bg_storage_free);
  g_clear_pointer (&daemon->network, bg_network_free);
  g_clear_object (&daemon->authority);
  g_clear_pointer (&daemon->registry, bg_registry_free);
  g_clear_pointer (&daemon->loop, g_main_loop_unref);
  g_free (daemon->run_dir);
  g_free (daemon->config_dir);
  g_free (daemon->state_dir);
  g_free (daemon);
}

int
bg_daemon_run (BgDaemon *daemon)
{
  GBusNameOwnerFlags flags = G_BUS_NAME_OWNER_FLAGS_ALLOW_REPLACEMENT;
  guint sigterm, sigint;

  if (daemon->options.replace)
    flags |= G_BUS_NAME_OWNER_FLAGS_REPLACE;

  daemon->owner_id = g_bus_own_name (G_BUS_TYPE_SYSTEM, BUS_NAME, flags,
                                     on_bus_acquired, on_name_acquired, on_name_lost,
                                     daemon, NULL);
  sigterm = g_unix_signal_add (SIGTERM, on_signal, daemon);
  sigint = g_unix_signal_add (SIGINT, on_signal, daemon);
  g_main_loop_run (daemon->loop);
  g_source_remove (sigterm);
  g_source_remove (sigint);
  return daemon->exit_code;
}

PolkitAuthority *
bg_daemon_get_authority (BgDaemon *daemon)
{
  return daemon->authority;
}

BgRegistry *
bg_daemon_get_registry (BgDaemon *daemon)
{
  return daemon->registry;
}

BgMechanism1 *
bg_daemon_get_skeleton (BgDaemon *daemon)
{
  return daemon->skeleton;
}

const char *
bg_daemon_get_config_dir (BgDaemon *daemon)
{
  return daemon->config_dir;
}

const char *
bg_daemon_get_run_dir (BgDaemon *daemon)
{
  return daemon->run_dir;
}

BgNetwork *
bg_daemon_get_network (BgDaemon *daemon)
{
  return daemon->network;
}

/* Fault injection for the integration tests, compiled only with
 * -Dtest_hooks=true: when <run-dir>/crash-at names @step, the mechanism
 * dies there (SIGKILL, no cleanup), as a crash would. */
void
bg_daemon_test_hook (BgDaemon   *daemon,
                     const char *step)
{
#ifdef BG_TEST_HOOKS
  g_autofree char *path = g_build_filename (daemon->run_dir, "crash-at", NULL);
  g_autofree char *want = NULL;

  if (g_file_get_contents (path, &want, NULL, NULL) && g_str_equal (g_strstrip (want), step))
    {
      g_unlink (path);
      kill (getpid (), SIGKILL);
    }
#endif
}

BgVms *
bg_daemon_get_vms (BgDaemon *daemon)
{
  return daemon->vms;
}

const char *
bg_daemon_get_state_dir (BgDaemon *daemon)
{
  return daemon->state_dir;
}

BgStorage *
bg_daemon_get_storage (BgDaemon *daemon)
{
  return daemon->storage;
}
