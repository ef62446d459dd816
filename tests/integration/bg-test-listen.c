/* bg-test-listen: a user listening for VmExited, for the tests.
 *
 *   bg-test-listen --user NAME
 *
 * Drops to NAME, subscribes (Subscribe), prints "READY", then one line
 * "EXIT <vm> <owner uid> <status>" per VmExited it receives. When its
 * stdin closes it makes one more call to the mechanism (so every signal
 * sent before that call's reply has arrived), prints "END" and exits. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <unistd.h>
#include <gio/gio.h>
#include <glib-unix.h>

typedef struct {
  GMainLoop       *loop;
  GDBusConnection *bus;
} State;

static void
on_exit_signal (GDBusConnection *c, const char *sender, const char *path, const char *iface,
                const char *signal, GVariant *params, gpointer data)
{
  const char *vm;
  guint32 owner;
  gint32 status;

  g_variant_get (params, "(&sui)", &vm, &owner, &status);
  g_print ("EXIT %s %u %d\n", vm, owner, status);
}

static gboolean
on_stdin (int fd, GIOCondition condition, gpointer data)
{
  State *s = data;
  char buf[64];

  if (read (fd, buf, sizeof buf) > 0)
    return G_SOURCE_CONTINUE;
  g_main_loop_quit (s->loop);
  return G_SOURCE_REMOVE;
}

static GVariant *
call (GDBusConnection *bus, const char *method)
{
  g_autoptr(GError) error = NULL;
  GVariant *r = g_dbus_connection_call_sync (bus, "org.banger.Mechanism1", "/org/banger/Mechanism1",
                                             "org.banger.Mechanism1", method, NULL, NULL, G_DBUS_CALL_FLAGS_NONE,
                                             -1, NULL, &error);
  if (r == NULL)
    g_error ("bg-test-listen: %s: %s", method, error->message);
  return r;
}

int
main (int argc, char **argv)
{
  g_autofree char *user = NULL;
  GOptionEntry entries[] = {
    { "user", 0, 0, G_OPTION_ARG_STRING, &user, "Run as this user", "NAME" },
    { NULL }
  };
  g_autoptr(GOptionContext) ctx = g_option_context_new ("- listen for VmExited");
  g_autoptr(GError) error = NULL;
  State s = { g_main_loop_new (NULL, FALSE), NULL };
  struct passwd *pw;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error) || user == NULL || (pw = getpwnam (user)) == NULL)
    return 2;
  if (initgroups (pw->pw_name, pw->pw_gid) < 0 || setresgid (pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
      setresuid (pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0)
    return 2;
  s.bus = g_dbus_connection_new_for_address_sync (g_getenv ("DBUS_SYSTEM_BUS_ADDRESS"),
                                                  G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                  G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                  NULL, NULL, &error);
  if (s.bus == NULL)
    return 2;
  g_dbus_connection_signal_subscribe (s.bus, NULL, "org.banger.Mechanism1", "VmExited", NULL, NULL,
                                      G_DBUS_SIGNAL_FLAGS_NONE, on_exit_signal, &s, NULL);
  g_variant_unref (call (s.bus, "Subscribe"));
  g_print ("READY\n");
  fflush (stdout);
  g_unix_fd_add (STDIN_FILENO, G_IO_IN | G_IO_HUP, on_stdin, &s);
  g_main_loop_run (s.loop);
  g_variant_unref (call (s.bus, "Ping"));
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_print ("END\n");
  g_object_unref (s.bus);
  return 0;
}
