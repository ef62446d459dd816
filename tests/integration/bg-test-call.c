/* bg-test-call: calls banger-mechanism as a given user, for the tests.
 *
 *   bg-test-call [--user NAME] [--no-interactive] [--fd PATH[:rw|:w|:path]]... METHOD [ARGS]
 *
 * ARGS is a GVariant tuple in text form, e.g. "('dev',)". Files given with
 * --fd are opened *after* dropping privileges, as the user would, and
 * passed as a GUnixFDList (handles 0, 1, ... in order).
 * Prints "OK" and the reply, or "ERROR <D-Bus error name>" and the message.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <unistd.h>
#include <gio/gio.h>
#include <gio/gunixfdlist.h>

#include "../bg-test.h"

static gboolean
drop_to (const char *user)
{
  struct passwd *pw = getpwnam (user);

  if (pw == NULL)
    {
      g_printerr ("bg-test-call: no user %s\n", user);
      return FALSE;
    }
  if (initgroups (pw->pw_name, pw->pw_gid) < 0 ||
      setresgid (pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
      setresuid (pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0)
    {
      g_printerr ("bg-test-call: cannot become %s: %s\n", user, g_strerror (errno));
      return FALSE;
    }
  return TRUE;
}

int
main (int argc, char **argv)
{
  g_autofree char *user = NULL;
  g_auto(GStrv) fds = NULL;
  gboolean no_interactive = FALSE;
  int timeout = bg_test_timeout_ms (60000);
  GOptionEntry entries[] = {
    { "user", 0, 0, G_OPTION_ARG_STRING, &user, "Call as this user", "NAME" },
    { "fd", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &fds, "Pass this file as an fd", "PATH[:rw]" },
    { "no-interactive", 0, 0, G_OPTION_ARG_NONE, &no_interactive, "Do not allow interactive auth", NULL },
    { "timeout", 0, 0, G_OPTION_ARG_INT, &timeout, "Call timeout (ms)", "MS" },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("METHOD [ARGS]");
  g_autoptr(GError) error = NULL;
  g_autoptr(GDBusConnection) bus = NULL;
  g_autoptr(GVariant) params = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GUnixFDList) fd_list = NULL;
  const char *iface = "org.banger.Mechanism1";
  const char *member;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error) || argc < 2)
    {
      g_printerr ("bg-test-call: %s\n", error ? error->message : "need a METHOD");
      return 2;
    }
  if (user != NULL && !drop_to (user))
    return 2;

  if (argc >= 3)
    {
      params = g_variant_parse (NULL, argv[2], NULL, NULL, &error);
      if (params == NULL)
        {
          g_printerr ("bg-test-call: bad ARGS: %s\n", error->message);
          return 2;
        }
    }

  for (guint i = 0; fds && fds[i]; i++)
    {
      g_autofree char *path = g_strdup (fds[i]);
      char *mode = strrchr (path, ':');
      int flags = O_RDONLY;
      int fd;

      if (mode && (g_str_equal (mode, ":rw") || g_str_equal (mode, ":w") || g_str_equal (mode, ":path")))
        {
          flags = g_str_equal (mode, ":rw") ? O_RDWR : g_str_equal (mode, ":w") ? O_WRONLY : O_PATH;
          *mode = '\0';
        }
      fd = open (path, flags | O_CLOEXEC);
      if (fd < 0)
        {
          /* As the user would: it cannot even produce the fd. */
          g_print ("OPEN-FAILED %s\n", g_strerror (errno));
          return 0;
        }
      if (fd_list == NULL)
        fd_list = g_unix_fd_list_new ();
      g_unix_fd_list_append (fd_list, fd, NULL);
      close (fd);
    }

  bus = g_dbus_connection_new_for_address_sync (g_getenv ("DBUS_SYSTEM_BUS_ADDRESS"),
                                                G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                NULL, NULL, &error);
  if (bus == NULL)
    {
      g_printerr ("bg-test-call: %s\n", error->message);
      return 2;
    }

  /* "Interface.Member" calls another interface of the object. */
  {
    char *dot = strrchr (argv[1], '.');
    if (dot != NULL)
      {
        *dot = '\0';
        iface = argv[1];
        member = dot + 1;
      }
    else
      member = argv[1];
  }
  reply = g_dbus_connection_call_with_unix_fd_list_sync (bus, "org.banger.Mechanism1",
                                                         "/org/banger/Mechanism1", iface,
                                                         member, g_steal_pointer (&params), NULL,
                                                         no_interactive ? G_DBUS_CALL_FLAGS_NONE
                                                           : G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION,
                                                         timeout, fd_list, NULL, NULL, &error);
  if (reply == NULL)
    {
      g_autofree char *name = g_dbus_error_get_remote_error (error);
      g_dbus_error_strip_remote_error (error);
      g_print ("ERROR %s\n%s\n", name ? name : "(local)", error->message);
      return 0;
    }
  {
    g_autofree char *text = g_variant_print (reply, TRUE);
    g_print ("OK\n%s\n", text);
  }
  return 0;
}
