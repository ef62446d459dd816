/* harness-bus.c: a private system bus, the real polkitd with
 * banger's real policy, and the mechanism it activates.
 * See harness.h. */
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include "harness-private.h"

typedef struct {
  const char *actions;
  const char *rules;
  const char *empty;
} PolkitSetup;

/* Runs in the forked child before exec: give polkitd a private view of
 * its configuration directories. polkitd then drops to its own user, as
 * the real service does. */
static void
polkit_child_setup (gpointer data)
{
  PolkitSetup *s = data;

  if (unshare (CLONE_NEWNS) < 0 ||
      mount ("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
      mount (s->actions, "/usr/share/polkit-1/actions", NULL, MS_BIND, NULL) < 0 ||
      mount (s->rules, "/etc/polkit-1/rules.d", NULL, MS_BIND, NULL) < 0 ||
      mount (s->empty, "/usr/share/polkit-1/rules.d", NULL, MS_BIND, NULL) < 0)
    _exit (127);
  prctl (PR_SET_PDEATHSIG, SIGTERM);
}

static void
pdeath_child_setup (gpointer data)
{
  prctl (PR_SET_PDEATHSIG, SIGTERM);
}

typedef struct {
  GMainLoop *loop;
  gboolean   done;
  guint      timeout;
} Waiter;

static gboolean
waiter_timeout (gpointer data)
{
  Waiter *w = data;

  w->timeout = 0;
  g_main_loop_quit (w->loop);
  return G_SOURCE_REMOVE;
}

/* Runs the loop until the waiter is done or @timeout_s (scaled: see
 * bg-test.h) passed; the waiter can wait again. */
static gboolean
waiter_wait (Waiter *w,
             guint   timeout_s)
{
  if (!w->done)
    {
      w->timeout = g_timeout_add_seconds (bg_test_timeout (timeout_s), waiter_timeout, w);
      g_main_loop_run (w->loop);
      g_clear_handle_id (&w->timeout, g_source_remove);
    }
  return w->done;
}

/* Waits once, then frees the waiter's loop. */
static gboolean
waiter_run (Waiter *w,
            guint   timeout_s)
{
  gboolean done = waiter_wait (w, timeout_s);

  g_main_loop_unref (w->loop);
  return done;
}

static void
name_appeared (GDBusConnection *c, const char *name, const char *owner, gpointer data)
{
  Waiter *w = data;
  w->done = TRUE;
  g_main_loop_quit (w->loop);
}

static void
name_vanished (GDBusConnection *c, const char *name, gpointer data)
{
  Waiter *w = data;
  w->done = TRUE;
  g_main_loop_quit (w->loop);
}

static gboolean
wait_for_name (GDBusConnection *bus,
               const char      *name,
               gboolean         gone,
               guint            timeout_s)
{
  Waiter w = { g_main_loop_new (NULL, FALSE), FALSE, 0 };
  guint watch;
  gboolean done;

  watch = g_bus_watch_name_on_connection (bus, name, G_BUS_NAME_WATCHER_FLAGS_NONE,
                                          gone ? NULL : name_appeared,
                                          gone ? name_vanished : NULL, &w, NULL);
  done = waiter_run (&w, timeout_s);
  g_bus_unwatch_name (watch);
  return done;
}

gboolean
bg_harness_wait_name_gone (BgHarness *h,
                           guint      timeout_s)
{
  return wait_for_name (h->bus, "org.banger.Mechanism1", TRUE, timeout_s);
}

/* The mechanism's test hook bg_daemon_test_count (test_hooks builds)
 * appends a line to <run-dir>/count-STEP each time STEP runs, if that
 * file exists: bg_harness_count_start makes it empty, bg_harness_count
 * says how many times STEP ran since. */
void
bg_harness_count_start (BgHarness  *h,
                        const char *step)
{
  g_autofree char *name = g_strconcat ("count-", step, NULL);
  g_autofree char *path = g_build_filename (h->run_dir, name, NULL);

  g_assert_true (g_file_set_contents (path, "", 0, NULL));
}

guint
bg_harness_count (BgHarness  *h,
                  const char *step)
{
  g_autofree char *name = g_strconcat ("count-", step, NULL);
  g_autofree char *path = g_build_filename (h->run_dir, name, NULL);
  g_autofree char *text = NULL;
  guint n = 0;

  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  for (const char *p = text; *p; p++)
    n += *p == '\n';
  return n;
}

GPid
bg_harness_mechanism_pid (BgHarness *h)
{
  g_autoptr(GVariant) reply = NULL;
  guint32 pid;

  reply = g_dbus_connection_call_sync (h->bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "GetConnectionUnixProcessID",
                                       g_variant_new ("(s)", "org.banger.Mechanism1"),
                                       G_VARIANT_TYPE ("(u)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL);
  if (reply == NULL)
    return 0;
  g_variant_get (reply, "(u)", &pid);
  return pid;
}

static GPid
spawn (const char * const  *argv,
       GSpawnChildSetupFunc setup,
       gpointer             setup_data,
       char               **envp,
       int                 *stdout_fd)
{
  g_autoptr(GError) error = NULL;
  GPid pid;

  if (!g_spawn_async_with_pipes (NULL, (char **) argv, envp, G_SPAWN_DO_NOT_REAP_CHILD, setup, setup_data,
                                 &pid, NULL, stdout_fd, NULL, &error))
    g_error ("cannot start %s: %s", argv[0], error->message);
  return pid;
}

static const char bus_conf_template[] =
  "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
  " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
  "<busconfig>\n"
  "  <type>system</type>\n"
  "  <listen>%s</listen>\n"
  "  <auth>EXTERNAL</auth>\n"
  "  <servicedir>%s</servicedir>\n"
  "  <policy context=\"default\">\n"
  "    <allow user=\"*\"/>\n"
  "    <deny own=\"*\"/>\n"
  "    <deny send_type=\"method_call\"/>\n"
  "    <allow send_type=\"signal\"/>\n"
  "    <allow send_requested_reply=\"true\" send_type=\"method_return\"/>\n"
  "    <allow send_requested_reply=\"true\" send_type=\"error\"/>\n"
  "    <allow receive_type=\"method_call\"/>\n"
  "    <allow receive_type=\"method_return\"/>\n"
  "    <allow receive_type=\"error\"/>\n"
  "    <allow receive_type=\"signal\"/>\n"
  "    <allow send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus\"/>\n"
  "    <allow send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus.Introspectable\"/>\n"
  "    <allow send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus.Properties\"/>\n"
  "  </policy>\n"
  "  <include>/usr/share/dbus-1/system.d/org.freedesktop.PolicyKit1.conf</include>\n"
  "  <include>%s</include>\n"
  "</busconfig>\n";

/* dbus-daemon with @services and the bus policy @policy, then polkitd
 * (set up in its child by @polkit_setup, when given). */
static void
start_bus (BgHarness            *h,
           const char           *services,
           const char           *policy,
           GSpawnChildSetupFunc  polkit_setup,
           gpointer              polkit_data)
{
  g_autofree char *bus_conf = NULL, *bus_conf_path = NULL, *listen = g_strdup (h->bus_address);
  g_auto(GStrv) envp = g_environ_setenv (g_get_environ (), "DBUS_SYSTEM_BUS_ADDRESS", h->bus_address, TRUE);
  g_autoptr(GError) error = NULL;
  int out_fd;
  char line[512];
  ssize_t n;

  bus_conf = g_strdup_printf (bus_conf_template, listen, services, policy);
  bg_harness_write_file (h->tmp, "bus.conf", bus_conf, 0644);
  bus_conf_path = g_build_filename (h->tmp, "bus.conf", NULL);
  {
    g_autofree char *arg = g_strdup_printf ("--config-file=%s", bus_conf_path);
    g_autofree char *path = g_find_program_in_path ("dbus-daemon");
    const char *argv[] = { path, arg, "--nofork", "--nopidfile", "--print-address=1", NULL };

    h->dbus_pid = spawn (argv, pdeath_child_setup, NULL, envp, &out_fd);
  }
  /* dbus-daemon prints its address once it listens. */
  n = read (out_fd, line, sizeof line - 1);
  close (out_fd);
  if (n <= 0)
    g_error ("dbus-daemon did not start");

  h->bus = g_dbus_connection_new_for_address_sync (h->bus_address,
                                                   G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                   G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                   NULL, NULL, &error);
  g_assert_no_error (error);
  {
    const char *argv[] = { "/usr/lib/polkit-1/polkitd", "--no-debug", NULL };
    h->polkit_pid = spawn (argv, polkit_setup ? polkit_setup : pdeath_child_setup, polkit_data, envp, NULL);
  }
  if (!wait_for_name (h->bus, "org.freedesktop.PolicyKit1", FALSE, 20))
    g_error ("polkitd did not appear on the test bus");
}

static BgHarness *
harness_new (void)
{
  BgHarness *h = g_new0 (BgHarness, 1);
  g_autofree char *tmpl = g_strdup_printf ("banger-it-%d-XXXXXX", bg_harness_run_id ());
  g_autoptr(GError) error = NULL;

  bg_harness_reset_network ();
  h->tmp = g_dir_make_tmp (tmpl, &error);
  g_assert_no_error (error);
  g_chmod (h->tmp, 0755);
  return h;
}

/* "setpriv ... --": the mechanism run with the capability bounding set,
 * ambient capabilities, securebits and no_new_privs its systemd unit
 * gives it (read from the built unit, $BANGER_UNIT), so a unit that
 * leaves the mechanism unable to work fails the tests, not users. */
static char *
unit_sandbox_prefix (void)
{
  const char *unit = g_getenv ("BANGER_UNIT");
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;
  g_autoptr(GString) cmd = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *setpriv = g_find_program_in_path ("setpriv");

  if (unit == NULL)
    return g_strdup ("");
  if (!g_file_get_contents (unit, &text, NULL, &error))
    g_error ("%s", error->message);
  if (setpriv == NULL)
    g_error ("setpriv (util-linux) is needed to run the mechanism as its unit does");
  cmd = g_string_new (setpriv);
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i]; i++)
    {
      const char *l = g_strstrip (lines[i]);
      const char *value = strchr (l, '=');
      g_auto(GStrv) words = NULL;
      g_autoptr(GString) caps = g_string_new ("-all");

      if (value == NULL || l[0] == '#')
        continue;
      words = g_strsplit_set (value + 1, " \t", -1);
      for (guint j = 0; words[j]; j++)
        if (g_str_has_prefix (words[j], "CAP_"))
          {
            g_autofree char *lower = g_ascii_strdown (words[j] + 4, -1);
            g_string_append_printf (caps, ",+%s", lower);
          }
      if (g_str_has_prefix (l, "CapabilityBoundingSet="))
        g_string_append_printf (cmd, " --bounding-set=%s", caps->str);
      else if (g_str_has_prefix (l, "AmbientCapabilities=") && !g_str_equal (caps->str, "-all"))
        g_string_append_printf (cmd, " --inh-caps=%s --ambient-caps=%s", caps->str, caps->str);
      else if (g_str_has_prefix (l, "NoNewPrivileges=") && g_str_equal (value + 1, "yes"))
        g_string_append (cmd, " --no-new-privs");
      else if (g_str_has_prefix (l, "SecureBits="))
        {
          g_string_append (cmd, " --securebits=");
          for (guint j = 0; words[j]; j++)
            if (*words[j])
              {
                g_autofree char *bit = g_strdelimit (g_strdup (words[j]), "-", '_');
                g_string_append_printf (cmd, "%s+%s", j ? "," : "", bit);
              }
        }
    }
  g_string_append (cmd, " -- ");
  return g_string_free (g_steal_pointer (&cmd), FALSE);
}

/* The mechanism from the build directory, with its own run, config and
 * state dirs under the harness's tmp dir, and the built policy; polkitd
 * sees only banger's actions and the rules the test writes. */
BgHarness *
bg_harness_start (guint idle_timeout)
{
  BgHarness *h = harness_new ();
  g_autofree char *actions = NULL, *empty = NULL, *services = NULL;
  g_autofree char *policy_text = NULL, *service = NULL, *sandbox = NULL;
  g_autoptr(GError) error = NULL;
  PolkitSetup ps;

  h->run_dir = bg_harness_make_dir (h->tmp, "run", 0755);
  /* As /run is on a real host: a tmpfs (the registry's and hosts file's
   * fsyncs cost nothing there, and jails live on another filesystem than
   * the files the tests hand the mechanism). */
  if (mount ("tmpfs", h->run_dir, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0)
    g_error ("mount tmpfs on %s: %s", h->run_dir, g_strerror (errno));
  h->run_mounted = TRUE;
  h->config_dir = bg_harness_make_dir (h->tmp, "etc", 0755);
  h->rules_dir = bg_harness_make_dir (h->tmp, "rules.d", 0755);
  actions = bg_harness_make_dir (h->tmp, "actions", 0755);
  empty = bg_harness_make_dir (h->tmp, "empty", 0755);
  services = bg_harness_make_dir (h->tmp, "services", 0755);
  /* The mechanism reads polkit's rules dirs itself (GroupRule): in the
   * harness's own mount namespace it sees the test's, as polkitd does. */
  if (mount (h->rules_dir, "/etc/polkit-1/rules.d", NULL, MS_BIND, NULL) < 0 ||
      mount (empty, "/usr/share/polkit-1/rules.d", NULL, MS_BIND, NULL) < 0)
    g_error ("bind the test's polkit rules: %s", g_strerror (errno));
  h->rules_mounted = TRUE;

  /* The real policy file, as built. */
  if (!g_file_get_contents (g_getenv ("BANGER_POLICY"), &policy_text, NULL, &error))
    g_error ("%s", error->message);
  bg_harness_write_file (actions, "org.banger.policy", policy_text, 0644);

  sandbox = unit_sandbox_prefix ();
  service = g_strdup_printf ("[D-BUS Service]\n"
                             "Name=org.banger.Mechanism1\n"
                             "Exec=%s%s --run-dir %s --config-dir %s --state-dir %s/state --idle-timeout %u --verbose\n"
                             "User=root\n",
                             sandbox, g_getenv ("BANGER_MECHANISM"), h->run_dir, h->config_dir, h->tmp,
                             idle_timeout);
  bg_harness_write_file (services, "org.banger.Mechanism1.service", service, 0644);

  h->bus_address = g_strdup_printf ("unix:path=%s/system_bus_socket", h->tmp);
  ps = (PolkitSetup) { actions, h->rules_dir, empty };
  start_bus (h, services, g_getenv ("BANGER_BUS_POLICY"), polkit_child_setup, &ps);
  return h;
}

/* banger as installed: the caller made the installed files visible at
 * their real places (in a mount namespace of its own). The bus listens
 * where the system bus does, with the installed activation file and bus
 * policy; polkitd reads the installed actions and rules; the mechanism
 * runs with its defaults (/run/banger, /etc/banger, /var/lib/banger). */
BgHarness *
bg_harness_start_installed (void)
{
  BgHarness *h = harness_new ();

  h->run_dir = g_strdup ("/run/banger");
  h->config_dir = g_strdup ("/etc/banger");
  h->bus_address = g_strdup ("unix:path=/run/dbus/system_bus_socket");
  g_mkdir_with_parents ("/run/dbus", 0755);
  start_bus (h, "/usr/share/dbus-1/system-services", "/usr/share/dbus-1/system.d/org.banger.Mechanism1.conf",
             NULL, NULL);
  return h;
}

void
bg_harness_stop (BgHarness *h)
{
  GPid pid = bg_harness_mechanism_pid (h);

  if (pid > 0)
    {
      kill (pid, SIGTERM);
      bg_harness_wait_name_gone (h, 20);
    }
  g_clear_object (&h->bus);
  kill (h->polkit_pid, SIGTERM);
  waitpid (h->polkit_pid, NULL, 0);
  kill (h->dbus_pid, SIGTERM);
  waitpid (h->dbus_pid, NULL, 0);
  if (h->run_mounted)
    umount2 (h->run_dir, MNT_DETACH);
  if (h->rules_mounted)
    {
      umount2 ("/usr/share/polkit-1/rules.d", MNT_DETACH);
      umount2 ("/etc/polkit-1/rules.d", MNT_DETACH);
    }
  bg_harness_rm_rf (h->tmp);
  bg_harness_reset_network ();
  g_free (h->tmp);
  g_free (h->bus_address);
  g_free (h->run_dir);
  g_free (h->config_dir);
  g_free (h->rules_dir);
  g_free (h->cli_path_prefix);
  g_free (h);
}

static void
on_polkit_changed (GDBusConnection *c, const char *sender, const char *path, const char *iface,
                   const char *signal, GVariant *params, gpointer data)
{
  Waiter *w = data;
  w->done = TRUE;
  g_main_loop_quit (w->loop);
}

/* A process of @user (sleep, once setpriv has made it @user's), and its
 * start time: to ask polkitd about, or to name in a record. */
GPid
bg_harness_spawn_user_process (const char *user,
                               guint64    *start_time)
{
  struct passwd *pw = getpwnam (user);
  g_autofree char *uid = g_strdup_printf ("--reuid=%u", pw->pw_uid);
  g_autofree char *gid = g_strdup_printf ("--regid=%u", pw->pw_gid);
  g_autofree char *want = g_strdup_printf ("Uid:\t%u\t", pw->pw_uid);
  const char *argv[] = { "setpriv", uid, gid, "--init-groups", "--", "sleep", "60", NULL };
  g_autoptr(GError) error = NULL;
  GPid pid;

  if (!g_spawn_async (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
                      &pid, &error))
    g_error ("%s", error->message);
  for (gint64 deadline = bg_test_deadline (5); g_get_monotonic_time () < deadline;)
    {
      g_autofree char *status_path = g_strdup_printf ("/proc/%d/status", pid);
      g_autofree char *stat_path = g_strdup_printf ("/proc/%d/stat", pid);
      g_autofree char *status = NULL, *stat = NULL;

      if (g_file_get_contents (status_path, &status, NULL, NULL) && strstr (status, want) != NULL &&
          g_file_get_contents (stat_path, &stat, NULL, NULL))
        {
          /* Field 22 (start time), counted after the ")" ending the name. */
          g_auto(GStrv) fields = g_strsplit (strrchr (stat, ')') + 2, " ", -1);
          *start_time = g_ascii_strtoull (fields[19], NULL, 10);
          return pid;
        }
      g_usleep (1000);
    }
  g_error ("setpriv did not become %s", user);
}

/* polkitd's own verdict on org.banger.network for a process of user A. */
static gboolean
polkit_allows_user_a (BgHarness *h,
                      GPid       pid,
                      guint64    start_time)
{
  struct passwd *pw = getpwnam (BG_TEST_USER_A);
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;
  GVariantBuilder subject;
  gboolean authorized, challenge;

  g_variant_builder_init (&subject, G_VARIANT_TYPE ("a{sv}"));
  g_variant_builder_add (&subject, "{sv}", "pid", g_variant_new_uint32 (pid));
  g_variant_builder_add (&subject, "{sv}", "start-time", g_variant_new_uint64 (start_time));
  g_variant_builder_add (&subject, "{sv}", "uid", g_variant_new_int32 (pw->pw_uid));
  reply = g_dbus_connection_call_sync (h->bus, "org.freedesktop.PolicyKit1", "/org/freedesktop/PolicyKit1/Authority",
                                       "org.freedesktop.PolicyKit1.Authority", "CheckAuthorization",
                                       g_variant_new ("((sa{sv})sa{ss}us)", "unix-process", &subject,
                                                      "org.banger.network", NULL, 0u, ""),
                                       G_VARIANT_TYPE ("((bba{ss}))"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  if (reply == NULL)
    g_error ("CheckAuthorization: %s", error->message);
  g_variant_get (reply, "((bb@a{ss}))", &authorized, &challenge, NULL);
  return authorized;
}

/* Installs (or removes) banger's optional group rule, for BG_TEST_GROUP,
 * and waits until polkitd's verdict for a group member changes. Its
 * Changed signal alone is not enough: one can come from an earlier event
 * (or its session monitor) before this rule is loaded. */
void
bg_harness_set_group_rule (BgHarness *h,
                           gboolean   enabled)
{
  g_autofree char *template = NULL;
  g_autofree char *path = g_build_filename (h->rules_dir, "50-banger.rules", NULL);
  g_autoptr(GError) error = NULL;
  Waiter w = { g_main_loop_new (NULL, FALSE), FALSE, 0 };
  gint64 deadline = bg_test_deadline (20);
  guint64 start_time = 0;
  GPid member = bg_harness_spawn_user_process (BG_TEST_USER_A, &start_time);
  guint sub;

  sub = g_dbus_connection_signal_subscribe (h->bus, NULL, "org.freedesktop.PolicyKit1.Authority",
                                            "Changed", "/org/freedesktop/PolicyKit1/Authority", NULL,
                                            G_DBUS_SIGNAL_FLAGS_NONE, on_polkit_changed, &w, NULL);
  if (enabled)
    {
      GString *text;
      if (!g_file_get_contents (g_getenv ("BANGER_RULES_TEMPLATE"), &template, NULL, &error))
        g_error ("%s", error->message);
      text = g_string_new (template);
      g_string_replace (text, "@GROUP@", BG_TEST_GROUP, 0);
      bg_harness_write_file (h->rules_dir, "50-banger.rules", text->str, 0644);
      g_string_free (text, TRUE);
    }
  else
    g_unlink (path);

  /* Asked again at each Changed (and once a second, in case one was
   * missed), until the verdict is the one the rule set implies. */
  while (polkit_allows_user_a (h, member, start_time) != enabled)
    {
      if (g_get_monotonic_time () > deadline)
        g_error ("polkitd did not reload its rules");
      w.done = FALSE;
      waiter_wait (&w, 1);
    }
  g_dbus_connection_signal_unsubscribe (h->bus, sub);
  g_main_loop_unref (w.loop);
  kill (member, SIGKILL);
  waitpid (member, NULL, 0);
}

void
bg_harness_write_config (BgHarness  *h,
                         const char *name,
                         const char *text)
{
  bg_harness_write_file (h->config_dir, name, text, 0644);
}

/* mechanism.conf's [vmm] for @vmm_path, with the launch timeout (the
 * VMM's time to make its API socket, 5 s by default) scaled as every
 * test bound is. */
char *
bg_harness_vmm_section (const char *vmm_path)
{
  return g_strdup_printf ("[vmm]\nfirecracker=%s\nlaunch-timeout-ms=%u\n", vmm_path,
                          MIN (bg_test_timeout_ms (5000), 60000));
}

/* Points the mechanism at @vmm_path, as an administrator would in
 * /etc/banger/mechanism.conf. */
void
bg_harness_use_vmm (BgHarness  *h,
                    const char *vmm_path)
{
  g_autofree char *conf = bg_harness_vmm_section (vmm_path);
  bg_harness_write_config (h, "mechanism.conf", conf);
}
