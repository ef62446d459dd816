/* bg-client.c: calling banger-mechanism from the CLI.
 *
 * Calls go through the proxy generated from the interface XML, so every
 * reply is checked against it. polkit decides every call. A call is
 * first made without interaction: when polkit would have to ask (the
 * mechanism answers InteractiveAuthorizationRequired) it is made again
 * allowing it, so no helper runs when nothing needs a password. Then, in
 * a text terminal, pkttyagent --fallback is started first (as systemctl
 * does); it registers only if the session has no agent. In a graphical
 * session none is started at all: the desktop's agent shows the prompt,
 * and a tty agent of banger's would only be a process that waits beside
 * it ($BANGER_POLKIT_AGENT=tty starts one anyway, for a desktop without
 * an agent).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bg-cli.h"
#include "bg-client.h"
#include "bg-dbus-generated.h"
#include "bg-error.h"
#include "bg-fd.h"
#include "bg-spawn.h"

/* Long enough for a person to type a password. */
#define CALL_TIMEOUT_MS (5 * 60 * 1000)

static GDBusConnection *connection;
static BgMechanism1 *proxy;
static GPid agent_pid;
/* bg_client_connect_ahead's thread, joined before anything here is used. */
static GThread *ahead;

/* A graphical session of this machine: its desktop runs a polkit agent
 * of its own. X forwarded over SSH is not one (the session is remote). */
gboolean
bg_client_graphical_session (const char * const *envp)
{
  const char *type = g_environ_getenv ((char **) envp, "XDG_SESSION_TYPE");
  const char *forced = g_environ_getenv ((char **) envp, "BANGER_POLKIT_AGENT");

  if (g_strcmp0 (forced, "tty") == 0)
    return FALSE;
  if (g_strcmp0 (type, "x11") == 0 || g_strcmp0 (type, "wayland") == 0)
    return TRUE;
  return (g_environ_getenv ((char **) envp, "WAYLAND_DISPLAY") != NULL ||
          g_environ_getenv ((char **) envp, "DISPLAY") != NULL) &&
         g_environ_getenv ((char **) envp, "SSH_CONNECTION") == NULL;
}

static void
agent_start (void)
{
  g_autofree char *pid_str = NULL;
  g_autofree char *agent = NULL;
  g_autoptr(GError) error = NULL;
  const char *argv[] = { NULL, "--notify-fd", "3", "--fallback", "--process", NULL, NULL };
  g_auto(GStrv) env = g_get_environ ();
  g_auto(BgFd) notified = -1;
  int notify[2];
  char buf;

  if (agent_pid != 0 || !isatty (STDIN_FILENO) || g_getenv ("BANGER_NO_AGENT") ||
      bg_client_graphical_session ((const char * const *) env))
    return;
  if ((agent = bg_program_find ("pkttyagent")) == NULL || pipe2 (notify, O_CLOEXEC) < 0)
    return;
  notified = notify[0];
  /* The agent sees the pipe as fd 3, whatever number it has here. */
  pid_str = g_strdup_printf ("%d", (int) getpid ());
  argv[0] = agent;
  argv[5] = pid_str;
  {
    g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
    g_autoptr(GSubprocess) proc = NULL;

    g_subprocess_launcher_take_fd (launcher, notify[1], 3);
    proc = g_subprocess_launcher_spawnv (launcher, argv, &error);
    if (proc == NULL)
      return;
    agent_pid = atoi (g_subprocess_get_identifier (proc));
  }
  /* pkttyagent closes the fd once it is registered (or gave up). */
  while (read (notified, &buf, 1) < 0 && errno == EINTR)
    ;
}

static BgMechanism1 *get_proxy (GError **error);

static void
join_ahead (void)
{
  if (ahead != NULL)
    g_thread_join (g_steal_pointer (&ahead));
}

static gpointer
connect_ahead_run (gpointer data)
{
  g_autoptr(GError) error = NULL;

  bg_cli_block_interrupts ();
  /* A failure is the first call's to report: it tries again. */
  if (get_proxy (&error) == NULL)
    g_debug ("connecting ahead: %s", error->message);
  return NULL;
}

/* Starts connecting to the system bus and reaching the mechanism (which
 * activates it if it is not running) in a thread, so that the round
 * trips to the bus, and a cold mechanism's start, overlap with the
 * caller's local work before its first call. The first call, or
 * bg_client_shutdown, waits for it. */
void
bg_client_connect_ahead (void)
{
  if (ahead == NULL && proxy == NULL)
    ahead = g_thread_new ("banger-bus", connect_ahead_run, NULL);
}

void
bg_client_shutdown (void)
{
  join_ahead ();
  if (agent_pid != 0)
    {
      kill (agent_pid, SIGTERM);
      waitpid (agent_pid, NULL, 0);
      agent_pid = 0;
    }
  g_clear_object (&proxy);
  g_clear_object (&connection);
}

/* The connection, made once. Only ever called from one thread at a time:
 * the caller's (which first waits for a connection made ahead), or the
 * connect-ahead thread itself. */
static GDBusConnection *
get_connection (GError **error)
{
  g_autoptr(GError) local = NULL;

  if (connection != NULL)
    return connection;
  connection = g_bus_get_sync (G_BUS_TYPE_SYSTEM, NULL, &local);
  if (connection == NULL)
    g_set_error (error, BG_ERROR, BG_ERROR_FAILED,
                 "cannot reach the system D-Bus (%s); is dbus running?", local->message);
  return connection;
}

GDBusConnection *
bg_client_get_connection (GError **error)
{
  join_ahead ();
  return get_connection (error);
}

static BgMechanism1 *
get_proxy (GError **error)
{
  if (proxy != NULL)
    return proxy;
  /* Registers banger's error names, so replies map back to BG_ERROR. */
  bg_error_quark ();
  if (get_connection (error) == NULL)
    return NULL;
  /* No property load and no signal subscription: either would be a round
   * trip (and an activation) before the first real call. */
  proxy = bg_mechanism1_proxy_new_sync (connection,
                                        G_DBUS_PROXY_FLAGS_DO_NOT_LOAD_PROPERTIES |
                                        G_DBUS_PROXY_FLAGS_DO_NOT_CONNECT_SIGNALS,
                                        BG_DBUS_NAME, BG_DBUS_PATH, NULL, error);
  if (proxy != NULL)
    g_dbus_proxy_set_default_timeout (G_DBUS_PROXY (proxy), CALL_TIMEOUT_MS);
  return proxy;
}

/* Turns what came back from the bus into one line a person can act on. */
static void
translate_error (GError *error)
{
  g_autofree char *remote = g_dbus_error_get_remote_error (error);

  if (error->domain == BG_ERROR)
    {
      g_dbus_error_strip_remote_error (error);
      return;
    }
  if (g_strcmp0 (remote, "org.freedesktop.DBus.Error.ServiceUnknown") == 0 ||
      g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN))
    {
      g_free (error->message);
      error->domain = BG_ERROR;
      error->code = BG_ERROR_NOT_SUPPORTED;
      error->message = g_strdup ("banger-mechanism is not installed on this system "
                                 "(org.banger.Mechanism1 cannot be activated); run tools/bootstrap");
      return;
    }
  g_dbus_error_strip_remote_error (error);
  if (g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_SPAWN_CHILD_EXITED) ||
      g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_SPAWN_EXEC_FAILED))
    g_prefix_error (&error, "banger-mechanism failed to start: ");
}

/* The proxy sends to the unique name of the instance that owned the
 * well-known name when it was made, and this process runs no main loop
 * that would tell it the owner changed. When that instance has exited
 * since (idle, after a long copy or wait), the bus refuses the call
 * without delivering it (ServiceUnknown, or AccessDenied while the old
 * connection lingers); the bus's own answer says whether the owner is
 * still the one the proxy names. If not, a fresh proxy reaches (or
 * activates) the current instance. */
static gboolean
owner_went_away (GError *error)
{
  g_autofree char *remote = g_dbus_error_get_remote_error (error);
  g_autofree char *named = proxy ? g_dbus_proxy_get_name_owner (G_DBUS_PROXY (proxy)) : NULL;
  g_autoptr(GVariant) reply = NULL;
  const char *current;

  /* Only refusals of the bus itself: a call that reached an instance
   * which then died (NoReply) may have done its work, and is not sent
   * again. */
  if (named == NULL ||
      (g_strcmp0 (remote, "org.freedesktop.DBus.Error.ServiceUnknown") != 0 &&
       g_strcmp0 (remote, "org.freedesktop.DBus.Error.AccessDenied") != 0 &&
       !g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN) &&
       !g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_ACCESS_DENIED)))
    return FALSE;
  reply = g_dbus_connection_call_sync (connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "GetNameOwner", g_variant_new ("(s)", BG_DBUS_NAME),
                                       G_VARIANT_TYPE ("(s)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL);
  if (reply == NULL)
    return TRUE;
  g_variant_get (reply, "(&s)", &current);
  return !g_str_equal (current, named);
}

/* Calls @method (parameters taken if floating) through the generated
 * proxy; @fd_list carries the descriptors the parameters' handles name. */
GVariant *
bg_client_call (const char   *method,
                GVariant     *parameters,
                GUnixFDList  *fd_list,
                GError      **error)
{
  g_autoptr(GVariant) params = parameters ? g_variant_ref_sink (parameters) : NULL;
  g_autoptr(GError) local = NULL;
  GVariant *reply;

  join_ahead ();
  if (get_proxy (error) == NULL)
    return NULL;
  reply = g_dbus_proxy_call_with_unix_fd_list_sync (G_DBUS_PROXY (proxy), method, params,
                                                    G_DBUS_CALL_FLAGS_NONE, -1, fd_list, NULL, NULL, &local);
  if (reply == NULL && owner_went_away (local))
    {
      g_clear_error (&local);
      g_clear_object (&proxy);
      if (get_proxy (error) == NULL)
        return NULL;
      reply = g_dbus_proxy_call_with_unix_fd_list_sync (G_DBUS_PROXY (proxy), method, params,
                                                        G_DBUS_CALL_FLAGS_NONE, -1, fd_list, NULL, NULL, &local);
    }
  if (reply == NULL && g_error_matches (local, BG_ERROR, BG_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED))
    {
      g_clear_error (&local);
      agent_start ();
      reply = g_dbus_proxy_call_with_unix_fd_list_sync (G_DBUS_PROXY (proxy), method, params,
                                                        G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION,
                                                        -1, fd_list, NULL, NULL, &local);
    }
  if (reply == NULL)
    {
      translate_error (local);
      g_propagate_error (error, g_steal_pointer (&local));
    }
  return reply;
}
