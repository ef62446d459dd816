/* bg-test-agent: a user whose polkit agent never answers, for the tests.
 *
 *   bg-test-agent --user NAME --calls N
 *
 * Drops to NAME, registers a polkit authentication agent for its own
 * process whose BeginAuthentication never replies, then sends N CreateTap
 * calls allowing interactive authorization, all at once, and waits for
 * every reply. Prints one line per reply, in the order they came:
 * "OK" or "ERROR <D-Bus error name> <message>". polkit must be told (by a
 * rule) to ask NAME for a password, so that each check waits on the agent.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <unistd.h>
#include <gio/gio.h>

static const char agent_xml[] =
  "<node>"
  "  <interface name='org.freedesktop.PolicyKit1.AuthenticationAgent'>"
  "    <method name='BeginAuthentication'>"
  "      <arg type='s' direction='in'/><arg type='s' direction='in'/><arg type='s' direction='in'/>"
  "      <arg type='a{ss}' direction='in'/><arg type='s' direction='in'/><arg type='a(sa{sv})' direction='in'/>"
  "    </method>"
  "    <method name='CancelAuthentication'><arg type='s' direction='in'/></method>"
  "  </interface>"
  "</node>";

typedef struct {
  GMainLoop *loop;
  guint      outstanding;
  GPtrArray *held;   /* BeginAuthentication invocations never answered */
} State;

static void
on_agent_call (GDBusConnection *c, const char *sender, const char *path, const char *iface,
               const char *method, GVariant *params, GDBusMethodInvocation *invocation, gpointer data)
{
  State *s = data;

  if (g_str_equal (method, "BeginAuthentication"))
    g_ptr_array_add (s->held, g_object_ref (invocation));   /* and never answered */
  else
    g_dbus_method_invocation_return_value (invocation, NULL);
}

static void
on_reply (GObject *source, GAsyncResult *result, gpointer data)
{
  State *s = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);

  if (reply != NULL)
    g_print ("OK\n");
  else
    {
      g_autofree char *name = g_dbus_error_get_remote_error (error);
      g_dbus_error_strip_remote_error (error);
      g_print ("ERROR %s %s\n", name ? name : "(local)", error->message);
    }
  if (--s->outstanding == 0)
    g_main_loop_quit (s->loop);
}

static guint64
own_start_time (void)
{
  g_autofree char *stat = NULL;
  g_auto(GStrv) fields = NULL;
  const char *after;

  if (!g_file_get_contents ("/proc/self/stat", &stat, NULL, NULL) || (after = strrchr (stat, ')')) == NULL)
    return 0;
  fields = g_strsplit (after + 2, " ", -1);
  return g_ascii_strtoull (fields[19], NULL, 10);   /* field 22 of the line */
}

int
main (int argc, char **argv)
{
  g_autofree char *user = NULL;
  gint calls = 1;
  GOptionEntry entries[] = {
    { "user", 0, 0, G_OPTION_ARG_STRING, &user, "Run as this user", "NAME" },
    { "calls", 0, 0, G_OPTION_ARG_INT, &calls, "How many calls", "N" },
    { NULL }
  };
  g_autoptr(GOptionContext) ctx = g_option_context_new ("- a polkit agent that never answers");
  g_autoptr(GError) error = NULL;
  g_autoptr(GDBusConnection) bus = NULL;
  g_autoptr(GDBusNodeInfo) info = NULL;
  g_autoptr(GVariant) registered = NULL;
  GDBusInterfaceVTable vtable = { on_agent_call };
  State s = { g_main_loop_new (NULL, FALSE), 0, g_ptr_array_new_with_free_func (g_object_unref) };
  struct passwd *pw;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error) || user == NULL || (pw = getpwnam (user)) == NULL)
    {
      g_printerr ("bg-test-agent: --user NAME --calls N\n");
      return 2;
    }
  if (initgroups (pw->pw_name, pw->pw_gid) < 0 || setresgid (pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
      setresuid (pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0)
    {
      g_printerr ("bg-test-agent: cannot become %s: %s\n", user, g_strerror (errno));
      return 2;
    }

  bus = g_dbus_connection_new_for_address_sync (g_getenv ("DBUS_SYSTEM_BUS_ADDRESS"),
                                                G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                NULL, NULL, &error);
  if (bus == NULL)
    {
      g_printerr ("bg-test-agent: %s\n", error->message);
      return 2;
    }
  info = g_dbus_node_info_new_for_xml (agent_xml, NULL);
  g_dbus_connection_register_object (bus, "/bg/agent", info->interfaces[0], &vtable, &s, NULL, &error);
  g_assert_no_error (error);
  registered = g_dbus_connection_call_sync (
      bus, "org.freedesktop.PolicyKit1", "/org/freedesktop/PolicyKit1/Authority",
      "org.freedesktop.PolicyKit1.Authority", "RegisterAuthenticationAgent",
      g_variant_new_parsed ("(('unix-process', {'pid': <%u>, 'start-time': <%t>, 'uid': <%i>}), 'C', '/bg/agent')",
                            (guint32) getpid (), own_start_time (), (gint32) getuid ()),
      NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  if (registered == NULL)
    {
      g_printerr ("bg-test-agent: cannot register the agent: %s\n", error->message);
      return 2;
    }

  for (gint i = 0; i < calls; i++)
    {
      g_autofree char *name = g_strdup_printf ("stall%d", i);
      s.outstanding++;
      g_dbus_connection_call (bus, "org.banger.Mechanism1", "/org/banger/Mechanism1", "org.banger.Mechanism1",
                              "CreateTap", g_variant_new_parsed ("(%s, @a{sv} {})", name), NULL,
                              G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION, 600 * 1000, NULL, on_reply, &s);
    }
  g_main_loop_run (s.loop);
  g_ptr_array_unref (s.held);
  g_main_loop_unref (s.loop);
  return 0;
}
