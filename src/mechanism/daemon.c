/* daemon.c: the hub — bus name, object, registry, idle exit, and the
 * resource kinds. Each privileged concern is a subsystem that registers
 * its kinds here through a table of callbacks (BgKindOps) and whose
 * handlers are connected with itself as their user data (network.c +
 * network-dbus.c, ...); mechanism.c builds them over the hub, which
 * knows none of them. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#include <glib-unix.h>
#include <glib/gstdio.h>

#include "bg-dbus.h"
#include "bg-error.h"
#include "daemon.h"
#include "registry.h"

typedef struct {
  const BgKindOps *ops;
  gpointer         self;
} Kind;

struct _BgDaemon {
  BgDaemonOptions  options;
  char            *run_dir;
  char            *config_dir;
  char            *state_dir;
  GMainLoop       *loop;
  BgMechanism1    *skeleton;
  PolkitAuthority *authority;
  BgRegistry      *registry;
  guint            owner_id;
  guint            idle_source;
  guint            drain_source;
  guint            holds;
  gboolean         exiting;     /* the name is given up; leave when idle */
  gboolean         name_acquired;
  int              exit_code;
  Kind             kinds[BG_KIND_COUNT];
  GHashTable      *pending;     /* uid -> calls of it waiting for polkit */
  GHashTable      *subscribers; /* unique bus name -> Subscriber */
  GHashTable      *callers;     /* unique bus name -> uid, as the bus said */
};

/* Enough for every connection of a busy desktop's banger runs at once;
 * past it, the table starts again (each name is asked once more). */
#define CALLERS_MAX 256

/* A connection that asked for VmExited: it hears of its user's VMs (all
 * of them for root), until it leaves the bus. */
typedef struct {
  uid_t uid;
  guint watch;
} Subscriber;

static void
subscriber_free (Subscriber *s)
{
  g_bus_unwatch_name (s->watch);
  g_free (s);
}

/* The uid the bus gave for a caller's unique name. A unique name is
 * never given to another connection while the bus runs, and a
 * connection's uid never changes, so the bus's answer holds for every
 * later call of that name: `vm up`'s second call is not asked again. A
 * name that left the bus stays until the table is cleared: it is
 * nobody's. The table lives no longer than the mechanism's one
 * connection to the bus (it exits when the bus goes), so no name of a
 * restarted bus ever meets it. */
void
bg_daemon_remember_caller (BgDaemon   *daemon,
                           const char *unique_name,
                           uid_t       uid)
{
  if (unique_name == NULL || unique_name[0] != ':')
    return;
  if (g_hash_table_size (daemon->callers) >= CALLERS_MAX)
    g_hash_table_remove_all (daemon->callers);
  g_hash_table_replace (daemon->callers, g_strdup (unique_name), GUINT_TO_POINTER ((guint) uid + 1));
}

gboolean
bg_daemon_lookup_caller (BgDaemon   *daemon,
                         const char *unique_name,
                         uid_t      *uid)
{
  gpointer value = unique_name ? g_hash_table_lookup (daemon->callers, unique_name) : NULL;

  if (value == NULL)
    return FALSE;
  *uid = (uid_t) (GPOINTER_TO_UINT (value) - 1);
  return TRUE;
}

void
bg_daemon_add_kind (BgDaemon        *daemon,
                    const BgKindOps *ops,
                    gpointer         self)
{
  g_return_if_fail ((guint) ops->kind < BG_KIND_COUNT);
  daemon->kinds[ops->kind] = (Kind) { ops, self };
}

/* NULL for a kind no subsystem serves. */
const BgKindOps *
bg_daemon_lookup_kind (BgDaemon *daemon,
                       BgKind    kind)
{
  g_return_val_if_fail ((guint) kind < BG_KIND_COUNT, NULL);
  return daemon->kinds[kind].ops;
}

/* Undoes @resource and forgets it; @resource is freed on success. The
 * entry is marked "deleting" first, so a crash midway is finished by the
 * next start's reconciliation. */
gboolean
bg_daemon_release_resource (BgDaemon    *daemon,
                            BgResource  *resource,
                            GError     **error)
{
  Kind *k = &daemon->kinds[resource->kind];

  if (!bg_registry_set_state (daemon->registry, resource, BG_RESOURCE_DELETING, error))
    return FALSE;
  if (k->ops != NULL && !k->ops->release (k->self, resource, error))
    return FALSE;
  return bg_registry_remove (daemon->registry, resource, error);
}

/* Entries a crash left half-done ("creating", "deleting") are undone,
 * once every kind is registered. */
void
bg_daemon_reconcile (BgDaemon *daemon)
{
  g_autoptr(GPtrArray) all = bg_registry_list_all (daemon->registry);

  for (guint i = 0; i < all->len; i++)
    {
      BgResource *r = all->pdata[i];
      g_autoptr(GError) error = NULL;
      g_autofree char *what = NULL;

      /* What lives only while the mechanism holds it is gone after a
       * restart, whatever its recorded state. */
      if (r->state == BG_RESOURCE_READY && !bg_kind_get_info (r->kind)->held_by_mechanism)
        continue;
      what = g_strdup_printf ("%s %s (%s)", bg_kind_to_string (r->kind), r->name,
                              bg_resource_state_to_string (r->state));
      if (!bg_daemon_release_resource (daemon, r, &error))
        g_warning ("Could not clean up %s left by a crash: %s", what, error->message);
      else
        g_message ("Cleaned up %s left by a crash", what);
    }
}

/* ---- idle exit ----
 *
 * As flatpak's system helper does: when idle, the name is given up
 * first, so a new call activates a fresh instance; calls already on
 * their way to this one (queued before the name went, or sent to its
 * unique name by a proxy that has not yet heard) are still answered.
 * The process leaves only once the queue has drained and no call is in
 * flight. */

#define DRAIN_MS 500

static void
exit_if_drained (BgDaemon *daemon)
{
  if (daemon->exiting && daemon->drain_source == 0 && daemon->holds == 0)
    g_main_loop_quit (daemon->loop);
}

static gboolean
on_drained (gpointer user_data)
{
  BgDaemon *daemon = user_data;

  daemon->drain_source = 0;
  exit_if_drained (daemon);
  return G_SOURCE_REMOVE;
}

static gboolean
on_idle_timeout (gpointer user_data)
{
  BgDaemon *daemon = user_data;

  daemon->idle_source = 0;
  bg_daemon_test_pause (daemon, "idle-exit");
  g_debug ("Idle for %u s, giving up the name", daemon->options.idle_timeout);
  daemon->exiting = TRUE;
  /* Synchronous: once it returns, every call the bus routed here under
   * the name has reached this process's queue. */
  if (daemon->owner_id != 0)
    {
      g_bus_unown_name (daemon->owner_id);
      daemon->owner_id = 0;
    }
  /* At low priority, so the calls already queued (dispatched at the
   * default one) start, and hold the daemon, before it may leave. */
  daemon->drain_source = g_timeout_add_full (G_PRIORITY_LOW, DRAIN_MS, on_drained, daemon, NULL);
  return G_SOURCE_REMOVE;
}

static void
arm_idle (BgDaemon *daemon)
{
  g_clear_handle_id (&daemon->idle_source, g_source_remove);
  if (daemon->exiting)
    {
      exit_if_drained (daemon);
      return;
    }
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

/* ---- bus ---- */

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
    g_warning ("Lost the system bus");
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
  daemon->pending = g_hash_table_new (NULL, NULL);
  daemon->subscribers = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) subscriber_free);
  daemon->callers = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
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

  daemon->skeleton = bg_mechanism1_skeleton_new ();
  bg_mechanism1_set_version (daemon->skeleton, PACKAGE_VERSION);
  return daemon;
}

void
bg_daemon_free (BgDaemon *daemon)
{
  if (daemon == NULL)
    return;
  g_clear_handle_id (&daemon->idle_source, g_source_remove);
  g_clear_handle_id (&daemon->drain_source, g_source_remove);
  if (daemon->owner_id != 0)
    g_bus_unown_name (daemon->owner_id);
  /* Never exported when the bus could not be reached. */
  if (daemon->skeleton != NULL &&
      g_dbus_interface_skeleton_get_connection (G_DBUS_INTERFACE_SKELETON (daemon->skeleton)) != NULL)
    g_dbus_interface_skeleton_unexport (G_DBUS_INTERFACE_SKELETON (daemon->skeleton));
  g_clear_object (&daemon->skeleton);
  g_clear_object (&daemon->authority);
  g_clear_pointer (&daemon->registry, bg_registry_free);
  g_clear_pointer (&daemon->loop, g_main_loop_unref);
  g_clear_pointer (&daemon->pending, g_hash_table_unref);
  g_clear_pointer (&daemon->subscribers, g_hash_table_unref);
  g_clear_pointer (&daemon->callers, g_hash_table_unref);
  g_free (daemon->run_dir);
  g_free (daemon->config_dir);
  g_free (daemon->state_dir);
  g_free (daemon);
}

int
bg_daemon_run (BgDaemon *daemon)
{
  GBusNameOwnerFlags flags = G_BUS_NAME_OWNER_FLAGS_ALLOW_REPLACEMENT;
  g_autoptr(GDBusConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  guint sigterm, sigint;

  if (daemon->options.replace)
    flags |= G_BUS_NAME_OWNER_FLAGS_REPLACE;

  /* The object is exported before the name is asked for, so no caller
   * finds the name without it. */
  if ((connection = g_bus_get_sync (G_BUS_TYPE_SYSTEM, NULL, &error)) == NULL)
    {
      g_warning ("Cannot connect to the system bus: %s", error->message);
      return 1;
    }
  if (!g_dbus_interface_skeleton_export (G_DBUS_INTERFACE_SKELETON (daemon->skeleton), connection, BG_DBUS_PATH,
                                         &error))
    {
      g_warning ("Cannot export %s: %s", BG_DBUS_PATH, error->message);
      return 1;
    }
  daemon->owner_id = g_bus_own_name_on_connection (connection, BG_DBUS_NAME, flags,
                                                   on_name_acquired, on_name_lost, daemon, NULL);
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

static void
on_subscriber_vanished (GDBusConnection *connection,
                        const char      *name,
                        gpointer         user_data)
{
  BgDaemon *daemon = user_data;
  g_hash_table_remove (daemon->subscribers, name);
}

/* @sender (a unique name) hears VmExited for @uid's VMs from now on. */
void
bg_daemon_subscribe (BgDaemon        *daemon,
                     GDBusConnection *connection,
                     const char      *sender,
                     uid_t            uid)
{
  Subscriber *s;

  if (g_hash_table_contains (daemon->subscribers, sender))
    return;
  s = g_new0 (Subscriber, 1);
  s->uid = uid;
  g_hash_table_insert (daemon->subscribers, g_strdup (sender), s);
  /* Inserted first: a name already gone calls back at once. */
  s->watch = g_bus_watch_name_on_connection (connection, sender, G_BUS_NAME_WATCHER_FLAGS_NONE, NULL,
                                             on_subscriber_vanished, daemon, NULL);
}

/* VmExited, sent to each subscriber of @owner (and of root) alone: other
 * users learn nothing of whose VMs exist. */
void
bg_daemon_emit_vm_exited (BgDaemon   *daemon,
                          const char *vm_name,
                          uid_t       owner,
                          int         status)
{
  GDBusConnection *connection = g_dbus_interface_skeleton_get_connection (G_DBUS_INTERFACE_SKELETON (daemon->skeleton));
  GHashTableIter iter;
  gpointer name, value;

  if (connection == NULL)
    return;
  g_hash_table_iter_init (&iter, daemon->subscribers);
  while (g_hash_table_iter_next (&iter, &name, &value))
    {
      Subscriber *s = value;
      g_autoptr(GError) error = NULL;

      if (s->uid != owner && s->uid != 0)
        continue;
      if (!g_dbus_connection_emit_signal (connection, name, BG_DBUS_PATH, BG_DBUS_INTERFACE, "VmExited",
                                          g_variant_new ("(sui)", vm_name, (guint32) owner, (gint32) status),
                                          &error))
        g_debug ("VmExited to %s: %s", (char *) name, error->message);
    }
}

/* Counts @uid's calls waiting for polkit up (@delta 1) or down (-1);
 * returns the count before the change. */
guint
bg_daemon_count_pending (BgDaemon *daemon,
                         uid_t     uid,
                         int       delta)
{
  guint n = GPOINTER_TO_UINT (g_hash_table_lookup (daemon->pending, GUINT_TO_POINTER (uid)));

  if (n + delta == 0)
    g_hash_table_remove (daemon->pending, GUINT_TO_POINTER (uid));
  else
    g_hash_table_insert (daemon->pending, GUINT_TO_POINTER (uid), GUINT_TO_POINTER (n + delta));
  return n;
}

const BgLimits *
bg_daemon_get_limits (BgDaemon *daemon)
{
  return &daemon->options.limits;
}

/* What @owner holds of @kind, not counting orphans (the registry keeps
 * those only to clean them up). */
guint
bg_daemon_count_owned (BgDaemon *daemon,
                       uid_t     owner,
                       BgKind    kind)
{
  g_autoptr(GPtrArray) all = bg_registry_list (daemon->registry, kind);
  guint n = 0;

  for (guint i = 0; i < all->len; i++)
    {
      BgResource *r = all->pdata[i];
      g_autoptr(GVariant) orphan = g_variant_lookup_value (r->details, "orphan", NULL);
      if (r->owner == owner && orphan == NULL)
        n++;
    }
  return n;
}

/* How many of @kind one user may have ([limits] <plural> of
 * mechanism.conf); G_MAXUINT for a kind not counted per user. */
guint
bg_daemon_get_limit (BgDaemon *daemon,
                     BgKind    kind)
{
  const BgLimits *limits = &daemon->options.limits;

  switch (kind)
    {
    case BG_KIND_VM:
      return limits->vms;
    case BG_KIND_TAP:
      return limits->taps;
    case BG_KIND_LOOP:
      return limits->loops;
    case BG_KIND_BRIDGE:
    case BG_KIND_BASE:
    case BG_KIND_COUNT:
    default:
      return G_MAXUINT;
    }
}

/* Whether @owner may have one more @kind: fewer than its limit recorded
 * (orphans found at start, which only wait to be cleaned up, aside).
 * Root has no limits. The refusal names the setting that would allow
 * more. */
gboolean
bg_daemon_check_limit (BgDaemon  *daemon,
                       uid_t      owner,
                       BgKind     kind,
                       GError   **error)
{
  const BgKindInfo *info = bg_kind_get_info (kind);
  guint limit = bg_daemon_get_limit (daemon, kind);
  guint n;

  if (owner == 0 || !info->per_user)
    return TRUE;
  n = bg_daemon_count_owned (daemon, owner, kind);
  if (n < limit)
    return TRUE;
  g_set_error (error, BG_ERROR, BG_ERROR_LIMIT_EXCEEDED,
               "you have %u %s, the most one user may have (%s=%u in [limits] of %s/mechanism.conf); "
               "remove some first, or ask an administrator to raise it",
               n, n == 1 ? info->noun : info->nouns, info->plural, limit, daemon->config_dir);
  return FALSE;
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

/* As bg_daemon_test_hook, but when <run-dir>/pause-at names @step the
 * mechanism writes <run-dir>/paused-at and waits there, its main loop
 * stopped, until a test removes pause-at (at most a minute): a window a
 * test can act in, deterministically. */
void
bg_daemon_test_pause (BgDaemon   *daemon,
                      const char *step)
{
#ifdef BG_TEST_HOOKS
  g_autofree char *path = g_build_filename (daemon->run_dir, "pause-at", NULL);
  g_autofree char *paused = g_build_filename (daemon->run_dir, "paused-at", NULL);
  g_autofree char *want = NULL;

  if (!g_file_get_contents (path, &want, NULL, NULL) || !g_str_equal (g_strstrip (want), step))
    return;
  g_file_set_contents (paused, step, -1, NULL);
  for (guint i = 0; i < 6000 && g_file_test (path, G_FILE_TEST_EXISTS); i++)
    g_usleep (10 * 1000);
  g_unlink (paused);
#endif
}

/* Test builds: when <run-dir>/count-@step exists, each pass through
 * @step adds a line to it, so a test can count work it must not repeat. */
void
bg_daemon_test_count (BgDaemon   *daemon,
                      const char *step)
{
#ifdef BG_TEST_HOOKS
  g_autofree char *name = g_strconcat ("count-", step, NULL);
  g_autofree char *path = g_build_filename (daemon->run_dir, name, NULL);
  FILE *f;

  if (!g_file_test (path, G_FILE_TEST_IS_REGULAR) || (f = fopen (path, "ae")) == NULL)
    return;
  fputs ("1\n", f);
  fclose (f);
#endif
}

const char *
bg_daemon_get_state_dir (BgDaemon *daemon)
{
  return daemon->state_dir;
}

