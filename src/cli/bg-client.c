/* bg-client.c: calling banger-mechanism from the CLI.
 *
 * Every call may need authorization, so every call carries
 * ALLOW_INTERACTIVE_AUTHORIZATION. A desktop session has a polkit agent
 * that shows the prompt; a plain terminal has none, so (as systemctl does)
 * we start pkttyagent --fallback for the duration of the command when
 * stdin is a terminal: it registers only if no other agent is there.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bg-client.h"
#include "bg-error.h"
#include "bg-spawn.h"

/* Long enough for a person to type a password. */
#define CALL_TIMEOUT_MS (5 * 60 * 1000)

static GDBusConnection *connection;
static GPid agent_pid;

static void
agent_start (void)
{
  g_autofree char *pid_str = NULL;
  g_autofree char *fd_str = NULL;
  g_autoptr(GError) error = NULL;
  int notify[2];
  g_autofree char *agent = NULL;
  const char *argv[] = { NULL, "--notify-fd", NULL, "--fallback", "--process", NULL, NULL };
  char buf;

  if (agent_pid != 0 || !isatty (STDIN_FILENO) || g_getenv ("BANGER_NO_AGENT"))
    return;
  if ((agent = bg_program_find ("pkttyagent")) == NULL)
    return;
  argv[0] = agent;
  if (pipe2 (notify, O_CLOEXEC) < 0)
    return;

  /* The agent sees the pipe as fd 3, whatever number it has here. */
  fd_str = g_strdup ("3");
  pid_str = g_strdup_printf ("%d", (int) getpid ());
  argv[2] = fd_str;
  argv[5] = pid_str;

  {
    g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
    g_autoptr(GSubprocess) proc = NULL;

    g_subprocess_launcher_take_fd (launcher, notify[1], 3);
    proc = g_subprocess_launcher_spawnv (launcher, argv, &error);
    if (proc == NULL)
      {
        close (notify[0]);
        return;
      }
    agent_pid = atoi (g_subprocess_get_identifier (proc));
  }

  /* pkttyagent closes the fd once it is registered (or gave up). */
  while (read (notify[0], &buf, 1) < 0 && errno == EINTR)
    ;
  close (notify[0]);
}

void
bg_client_shutdown (void)
{
  if (agent_pid != 0)
    {
      kill (agent_pid, SIGTERM);
      waitpid (agent_pid, NULL, 0);
      agent_pid = 0;
    }
  g_clear_object (&connection);
}

static gboolean
ensure_connection (GError **error)
{
  g_autoptr(GError) local = NULL;

  if (connection != NULL)
    return TRUE;
  connection = g_bus_get_sync (G_BUS_TYPE_SYSTEM, NULL, &local);
  if (connection == NULL)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED,
                   "cannot reach the system D-Bus (%s); is dbus running?", local->message);
      return FALSE;
    }
  return TRUE;
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
  if (g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_SPAWN_CHILD_EXITED) ||
      g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_SPAWN_EXEC_FAILED))
    {
      g_dbus_error_strip_remote_error (error);
      g_prefix_error (&error, "banger-mechanism failed to start: ");
      return;
    }
  g_dbus_error_strip_remote_error (error);
}

GVariant *
bg_client_call (const char          *method,
                GVariant            *parameters,
                const GVariantType  *reply_type,
                GUnixFDList         *fd_list,
                GUnixFDList        **out_fd_list,
                GError             **error)
{
  GVariant *reply;

  if (!ensure_connection (error))
    {
      if (parameters != NULL)
        g_variant_unref (g_variant_ref_sink (parameters));
      return NULL;
    }

  /* Ping needs no authorization; everything else may prompt. */
  if (g_strcmp0 (method, "Ping") != 0)
    agent_start ();

  reply = g_dbus_connection_call_with_unix_fd_list_sync (connection,
                                                         BG_MECHANISM_BUS_NAME,
                                                         BG_MECHANISM_PATH,
                                                         BG_MECHANISM_IFACE,
                                                         method, parameters, reply_type,
                                                         G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION,
                                                         CALL_TIMEOUT_MS,
                                                         fd_list, out_fd_list, NULL, error);
  if (reply == NULL && error != NULL && *error != NULL)
    translate_error (*error);
  return reply;
}

GDBusConnection *
bg_client_get_connection (GError **error)
{
  if (!ensure_connection (error))
    return NULL;
  return connection;
}
