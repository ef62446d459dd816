/* harness.c: see harness.h.
 *
 * Structure: main() forks. The child runs the GTest suite; the parent is a
 * supervisor (a child subreaper) that, however the child ends (a failed
 * assertion aborts it), kills every process left under it, deletes the
 * test users and groups it created and the temporary directories. So a
 * failing test still leaves nothing behind.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include "harness.h"

static pid_t supervisor_pid;

/* ---- small helpers ---- */

void
bg_harness_run_argv (const char * const *argv,
                     char              **out,
                     int                *status)
{
  g_autoptr(GError) error = NULL;
  int st = 0;

  if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH | (out ? 0 : G_SPAWN_STDOUT_TO_DEV_NULL) |
                     G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, out, NULL, &st, &error))
    g_error ("cannot run %s: %s", argv[0], error->message);
  if (status)
    *status = WIFEXITED (st) ? WEXITSTATUS (st) : 128 + WTERMSIG (st);
}

static void
rm_rf (const char *path)
{
  const char *argv[] = { "rm", "-rf", "--", path, NULL };
  bg_harness_run_argv (argv, NULL, NULL);
}

guint32
bg_harness_uid (const char *user)
{
  struct passwd *pw = getpwnam (user);
  g_assert_nonnull (pw);
  return pw->pw_uid;
}

/* ---- users ---- */

/* The bg-test* names belong to this harness: whatever a killed earlier
 * run left under them is deleted and made anew, so every run starts from
 * known users and removes them at the end. */
static void
remove_users (void)
{
  const char *del_a[] = { "userdel", BG_TEST_USER_A, NULL };
  const char *del_b[] = { "userdel", BG_TEST_USER_B, NULL };
  const char *del_g[] = { "groupdel", BG_TEST_GROUP, NULL };

  if (getpwnam (BG_TEST_USER_A) != NULL)
    bg_harness_run_argv (del_a, NULL, NULL);
  if (getpwnam (BG_TEST_USER_B) != NULL)
    bg_harness_run_argv (del_b, NULL, NULL);
  if (getgrnam (BG_TEST_GROUP) != NULL)
    bg_harness_run_argv (del_g, NULL, NULL);
}

static void
create_user (const char *name)
{
  const char *argv[] = { "useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                         "--groups", BG_TEST_GROUP, name, NULL };
  int status;

  bg_harness_run_argv (argv, NULL, &status);
  if (status != 0)
    g_error ("useradd %s failed", name);
}

static void
setup_users (void)
{
  const char *argv[] = { "groupadd", "--system", BG_TEST_GROUP, NULL };
  int status;

  remove_users ();
  bg_harness_run_argv (argv, NULL, &status);
  if (status != 0)
    g_error ("groupadd failed");
  create_user (BG_TEST_USER_A);
  create_user (BG_TEST_USER_B);
  {
    /* For rootless image builds (unshare --map-auto); userdel drops it. */
    const char *sub[] = { "usermod", "--add-subuids", "3100000-3165535", "--add-subgids", "3100000-3165535",
                          BG_TEST_USER_A, NULL };
    bg_harness_run_argv (sub, NULL, NULL);
  }
}

/* ---- supervisor ---- */

static gboolean
kill_descendants (void)
{
  g_autoptr(GDir) proc = g_dir_open ("/proc", 0, NULL);
  const char *entry;
  gboolean any = FALSE;

  while (proc != NULL && (entry = g_dir_read_name (proc)) != NULL)
    {
      g_autofree char *path = NULL;
      g_autofree char *status = NULL;
      const char *ppid_line;
      guint64 pid;

      if (!g_ascii_string_to_unsigned (entry, 10, 1, G_MAXINT, &pid, NULL))
        continue;
      path = g_strdup_printf ("/proc/%s/status", entry);
      if (!g_file_get_contents (path, &status, NULL, NULL))
        continue;
      ppid_line = strstr (status, "\nPPid:");
      if (ppid_line && atoi (ppid_line + 6) == supervisor_pid)
        {
          kill ((pid_t) pid, SIGKILL);
          waitpid ((pid_t) pid, NULL, 0);
          any = TRUE;
        }
    }
  return any;
}

static void
remove_leftover_dirs (void)
{
  g_autoptr(GDir) dir = g_dir_open (g_get_tmp_dir (), 0, NULL);
  g_autofree char *prefix = g_strdup_printf ("banger-it-%d-", (int) supervisor_pid);
  const char *entry;

  while (dir != NULL && (entry = g_dir_read_name (dir)) != NULL)
    if (g_str_has_prefix (entry, prefix))
      {
        g_autofree char *path = g_build_filename (g_get_tmp_dir (), entry, NULL);
        rm_rf (path);
      }
}

static void
remove_leftover_netns (void)
{
  g_autoptr(GDir) dir = g_dir_open ("/run/netns", 0, NULL);
  g_autofree char *prefix = g_strdup_printf ("bgt%d-", (int) supervisor_pid);
  const char *entry;

  while (dir != NULL && (entry = g_dir_read_name (dir)) != NULL)
    if (g_str_has_prefix (entry, prefix))
      {
        const char *argv[] = { "ip", "netns", "del", entry, NULL };
        bg_harness_run_argv (argv, NULL, NULL);
      }
}

static const char *
missing_prerequisite (void)
{
  static const char * const programs[] = {
    "dbus-daemon", "useradd", "userdel", "groupadd", "ip", "nft", NULL
  };

  if (geteuid () != 0)
    return "needs root (runs polkitd, creates test users, network namespaces and devices)";
  if (!g_file_test ("/usr/lib/polkit-1/polkitd", G_FILE_TEST_IS_EXECUTABLE))
    return "needs polkitd (/usr/lib/polkit-1/polkitd)";
  if (getpwnam ("polkitd") == NULL)
    return "needs the polkitd user";
  for (guint i = 0; programs[i]; i++)
    {
      g_autofree char *path = g_find_program_in_path (programs[i]);
      if (path == NULL)
        return "needs dbus-daemon, useradd, groupadd, ip and nft";
    }
  if (!g_file_test ("/dev/net/tun", G_FILE_TEST_EXISTS))
    return "needs /dev/net/tun";
  return NULL;
}

static void
bring_up_loopback (void)
{
  struct ifreq ifr = { 0 };
  int fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

  g_strlcpy (ifr.ifr_name, "lo", IFNAMSIZ);
  if (fd < 0 || ioctl (fd, SIOCGIFFLAGS, &ifr) < 0)
    g_error ("cannot read lo: %s", g_strerror (errno));
  ifr.ifr_flags |= IFF_UP;
  if (ioctl (fd, SIOCSIFFLAGS, &ifr) < 0)
    g_error ("cannot bring lo up: %s", g_strerror (errno));
  close (fd);
}

int
bg_harness_main (int    *argc,
                 char ***argv,
                 void  (*add_tests) (void))
{
  return bg_harness_main_full (argc, argv, NULL, add_tests);
}

int
bg_harness_main_full (int          *argc,
                      char       ***argv,
                      const char *(*prepare) (void),
                      void        (*add_tests) (void))
{
  const char *missing;
  pid_t child;
  int status;

  g_test_init (argc, argv, NULL);
  missing = missing_prerequisite ();
  if (missing != NULL)
    {
      g_print ("1..0 # SKIP %s\n", missing);
      return 0;
    }

  supervisor_pid = getpid ();
  setup_users ();
  if (prepare != NULL && (missing = prepare ()) != NULL)
    {
      remove_users ();
      g_print ("1..0 # SKIP %s\n", missing);
      return 0;
    }

  /* Everything from here on, the mechanism included, lives in a fresh
   * network namespace: the host's network is never touched. A private
   * mount namespace with its own sysfs makes /sys/class/net show this
   * namespace's devices, and keeps `ip netns add` mounts to ourselves. */
  if (unshare (CLONE_NEWNET | CLONE_NEWNS) < 0 ||
      mount ("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
      mount ("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL) < 0)
    {
      g_print ("1..0 # SKIP cannot create network and mount namespaces: %s\n", g_strerror (errno));
      return 0;
    }
  bring_up_loopback ();
  prctl (PR_SET_CHILD_SUBREAPER, 1);

  child = fork ();
  if (child < 0)
    g_error ("fork: %s", g_strerror (errno));
  if (child == 0)
    {
      prctl (PR_SET_PDEATHSIG, SIGKILL);
      add_tests ();
      _exit (g_test_run ());
    }

  while (waitpid (child, &status, 0) < 0 && errno == EINTR)
    ;
  while (kill_descendants ())
    ;
  remove_leftover_netns ();
  remove_leftover_dirs ();
  remove_users ();

  if (WIFSIGNALED (status))
    {
      g_printerr ("test process died with signal %d\n", WTERMSIG (status));
      return 1;
    }
  return WEXITSTATUS (status);
}

/* ---- bus and polkitd ---- */

static void
reset_network (void)
{
  g_autofree char *out = NULL;
  g_auto(GStrv) lines = NULL;
  const char *list[] = { "ip", "-o", "link", "show", NULL };
  const char *nft[] = { "nft", "delete", "table", "ip", "banger", NULL };

  bg_harness_run_argv (list, &out, NULL);
  lines = g_strsplit (out, "\n", -1);
  for (guint i = 0; lines[i]; i++)
    {
      g_auto(GStrv) f = g_strsplit (lines[i], ": ", 3);
      g_autofree char *name = NULL;

      if (g_strv_length (f) < 2)
        continue;
      name = g_strdup (f[1]);
      if (strchr (name, '@'))
        *strchr (name, '@') = '\0';
      if (!g_str_equal (name, "lo"))
        {
          const char *del[] = { "ip", "link", "del", name, NULL };
          bg_harness_run_argv (del, NULL, NULL);
        }
    }
  bg_harness_run_argv (nft, NULL, NULL);
}

static void
write_file (const char *dir,
            const char *name,
            const char *text,
            int         mode)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autoptr(GError) error = NULL;

  if (!g_file_set_contents_full (path, text, -1, G_FILE_SET_CONTENTS_NONE, mode, &error))
    g_error ("%s", error->message);
}

static char *
make_dir (const char *parent,
          const char *name,
          int         mode)
{
  char *path = g_build_filename (parent, name, NULL);

  if (g_mkdir (path, mode) < 0 || g_chmod (path, mode) < 0)
    g_error ("mkdir %s: %s", path, g_strerror (errno));
  return path;
}

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

/* Runs the loop until the waiter is done or @timeout_s passed; the
 * waiter can wait again. */
static gboolean
waiter_wait (Waiter *w,
             guint   timeout_s)
{
  if (!w->done)
    {
      w->timeout = g_timeout_add_seconds (timeout_s, waiter_timeout, w);
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

BgHarness *
bg_harness_start (guint idle_timeout)
{
  BgHarness *h = g_new0 (BgHarness, 1);
  g_autofree char *tmpl = g_strdup_printf ("banger-it-%d-XXXXXX", (int) getppid ());
  g_autofree char *actions = NULL, *empty = NULL, *services = NULL;
  g_autofree char *policy_text = NULL;
  g_autofree char *bus_conf = NULL, *service = NULL, *bus_conf_path = NULL;
  g_auto(GStrv) envp = g_get_environ ();
  g_autoptr(GError) error = NULL;
  PolkitSetup ps;
  int out_fd;
  char line[512];
  ssize_t n;

  reset_network ();

  h->tmp = g_dir_make_tmp (tmpl, &error);
  g_assert_no_error (error);
  g_chmod (h->tmp, 0755);
  h->run_dir = make_dir (h->tmp, "run", 0755);
  h->config_dir = make_dir (h->tmp, "etc", 0755);
  h->rules_dir = make_dir (h->tmp, "rules.d", 0755);
  actions = make_dir (h->tmp, "actions", 0755);
  empty = make_dir (h->tmp, "empty", 0755);
  services = make_dir (h->tmp, "services", 0755);

  /* The real policy file, as built. */
  if (!g_file_get_contents (g_getenv ("BANGER_POLICY"), &policy_text, NULL, &error))
    g_error ("%s", error->message);
  write_file (actions, "org.banger.policy", policy_text, 0644);

  h->bus_address = g_strdup_printf ("unix:path=%s/system_bus_socket", h->tmp);
  bus_conf = g_strdup_printf (
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
      "</busconfig>\n",
      h->bus_address, services, g_getenv ("BANGER_BUS_POLICY"));
  write_file (h->tmp, "bus.conf", bus_conf, 0644);

  service = g_strdup_printf ("[D-BUS Service]\n"
                             "Name=org.banger.Mechanism1\n"
                             "Exec=%s --run-dir %s --config-dir %s --state-dir %s/state --idle-timeout %u --verbose\n"
                             "User=root\n",
                             g_getenv ("BANGER_MECHANISM"), h->run_dir, h->config_dir, h->tmp, idle_timeout);
  write_file (services, "org.banger.Mechanism1.service", service, 0644);

  envp = g_environ_setenv (envp, "DBUS_SYSTEM_BUS_ADDRESS", h->bus_address, TRUE);

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

  ps = (PolkitSetup) { actions, h->rules_dir, empty };
  {
    const char *argv[] = { "/usr/lib/polkit-1/polkitd", "--no-debug", NULL };
    h->polkit_pid = spawn (argv, polkit_child_setup, &ps, envp, NULL);
  }
  if (!wait_for_name (h->bus, "org.freedesktop.PolicyKit1", FALSE, 20))
    g_error ("polkitd did not appear on the test bus");

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
  rm_rf (h->tmp);
  reset_network ();
  g_free (h->tmp);
  g_free (h->bus_address);
  g_free (h->run_dir);
  g_free (h->config_dir);
  g_free (h->rules_dir);
  g_free (h->cli_path_prefix);
  g_free (h);
}

void
bg_call_result_free (BgCallResult *r)
{
  if (r == NULL)
    return;
  g_free (r->error_name);
  g_free (r->message);
  g_free (r->reply);
  g_free (r);
}

/* A member of the a{sv} a call answered with (CreateTap's, say), as text:
 * strings as they are, other values printed. */
char *
bg_call_result_lookup (BgCallResult *r,
                       const char   *key)
{
  g_autoptr(GVariant) reply = NULL, dict = NULL, value = NULL;

  g_assert_true (r->ok);
  reply = g_variant_parse (NULL, r->reply, NULL, NULL, NULL);
  g_assert_nonnull (reply);
  dict = g_variant_get_child_value (reply, 0);
  value = g_variant_lookup_value (dict, key, NULL);
  if (value == NULL)
    return NULL;
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_STRING))
    return g_variant_dup_string (value, NULL);
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT32))
    return g_strdup_printf ("%u", g_variant_get_uint32 (value));
  return g_variant_print (value, FALSE);
}

BgCallResult *
bg_harness_call (BgHarness  *h,
                 const char *user,
                 const char *method,
                 const char *args,
                 ...)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *out = NULL;
  g_auto(GStrv) envp = g_environ_setenv (g_get_environ (), "DBUS_SYSTEM_BUS_ADDRESS", h->bus_address, TRUE);
  g_autoptr(GError) error = NULL;
  BgCallResult *r = g_new0 (BgCallResult, 1);
  const char *extra;
  char *nl;
  int status;
  va_list ap;

  g_ptr_array_add (argv, g_strdup (g_getenv ("BANGER_TEST_CALL")));
  if (user)
    g_ptr_array_add (argv, g_strdup_printf ("--user=%s", user));
  va_start (ap, args);
  while ((extra = va_arg (ap, const char *)) != NULL)
    g_ptr_array_add (argv, g_strdup (extra));
  va_end (ap);
  g_ptr_array_add (argv, g_strdup (method));
  if (args)
    g_ptr_array_add (argv, g_strdup (args));
  g_ptr_array_add (argv, NULL);

  if (!g_spawn_sync (NULL, (char **) argv->pdata, envp, G_SPAWN_DEFAULT, NULL, NULL, &out, NULL, &status, &error))
    g_error ("%s", error->message);
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    g_error ("bg-test-call %s failed (status %d)", method, status);

  nl = strchr (out, '\n');
  if (g_str_has_prefix (out, "OK\n"))
    {
      r->ok = TRUE;
      r->reply = g_strstrip (g_strdup (nl + 1));
    }
  else if (g_str_has_prefix (out, "ERROR "))
    {
      r->error_name = g_strndup (out + 6, nl - out - 6);
      r->message = g_strstrip (g_strdup (nl + 1));
    }
  else if (g_str_has_prefix (out, "OPEN-FAILED"))
    r->open_failed = TRUE;
  else
    g_error ("unexpected output from bg-test-call: %s", out);
  return r;
}


static void
on_polkit_changed (GDBusConnection *c, const char *sender, const char *path, const char *iface,
                   const char *signal, GVariant *params, gpointer data)
{
  Waiter *w = data;
  w->done = TRUE;
  g_main_loop_quit (w->loop);
}

/* A process of test user A to ask polkitd about: sleep, once setpriv has
 * made it A's. */
static GPid
spawn_user_a_process (guint64 *start_time)
{
  struct passwd *pw = getpwnam (BG_TEST_USER_A);
  g_autofree char *uid = g_strdup_printf ("--reuid=%u", pw->pw_uid);
  g_autofree char *gid = g_strdup_printf ("--regid=%u", pw->pw_gid);
  g_autofree char *want = g_strdup_printf ("Uid:\t%u\t", pw->pw_uid);
  const char *argv[] = { "setpriv", uid, gid, "--init-groups", "--", "sleep", "60", NULL };
  g_autoptr(GError) error = NULL;
  GPid pid;

  if (!g_spawn_async (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
                      &pid, &error))
    g_error ("%s", error->message);
  for (int i = 0; i < 5000; i++)
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
  g_error ("setpriv did not become %s", BG_TEST_USER_A);
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
  gint64 deadline = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;
  guint64 start_time = 0;
  GPid member = spawn_user_a_process (&start_time);
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
      write_file (h->rules_dir, "50-banger.rules", text->str, 0644);
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
  write_file (h->config_dir, name, text, 0644);
}

/* "setpriv ... -- $BANGER_CLI ARGS": banger run as @user (as root when
 * @user is NULL), for g_spawn_*(). */
char **
bg_harness_cli_argv (const char         *user,
                     const char * const *args)
{
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();
  struct passwd *pw = user ? getpwnam (user) : NULL;

  if (user != NULL && pw == NULL)
    g_error ("no user %s", user);
  if (pw != NULL)
    {
      g_autofree char *uid = g_strdup_printf ("--reuid=%u", pw->pw_uid);
      g_autofree char *gid = g_strdup_printf ("--regid=%u", pw->pw_gid);
      const char *prefix[] = { "setpriv", uid, gid, "--init-groups", "--", NULL };
      g_strv_builder_addv (b, prefix);
    }
  g_strv_builder_add (b, g_getenv ("BANGER_CLI"));
  g_strv_builder_addv (b, (const char **) args);
  return g_strv_builder_end (b);
}

/* The environment banger gets in tests: its own home and runtime dir, no
 * XDG overrides from the runner, no polkit agent, and the test bus when
 * there is a harness. */
char **
bg_harness_cli_envp (BgHarness  *h,
                     const char *home,
                     const char *runtime)
{
  char **envp = g_get_environ ();

  if (h != NULL)
    envp = g_environ_setenv (envp, "DBUS_SYSTEM_BUS_ADDRESS", h->bus_address, TRUE);
  envp = g_environ_setenv (envp, "HOME", home, TRUE);
  envp = g_environ_setenv (envp, "XDG_RUNTIME_DIR", runtime, TRUE);
  envp = g_environ_unsetenv (envp, "XDG_CONFIG_HOME");
  envp = g_environ_unsetenv (envp, "XDG_DATA_HOME");
  envp = g_environ_unsetenv (envp, "XDG_STATE_HOME");
  envp = g_environ_setenv (envp, "BANGER_NO_AGENT", "1", TRUE);
  return envp;
}

/* Runs the real banger CLI as @user (root when NULL) against the test bus,
 * with a home and runtime dir of its own below the harness's tmp dir. */
int
bg_harness_run_cli (BgHarness   *h,
                    const char  *user,
                    char       **out,
                    char       **err,
                    const char  *first_arg,
                    ...)
{
  g_autoptr(GStrvBuilder) args = g_strv_builder_new ();
  g_autofree char *home = g_strdup_printf ("%s/home-%s", h->tmp, user ? user : "root");
  g_autofree char *runtime = g_strdup_printf ("%s/runtime-%s", h->tmp, user ? user : "root");
  g_auto(GStrv) argv = NULL, envp = NULL, arg_list = NULL;
  g_autoptr(GError) error = NULL;
  struct passwd *pw = user ? getpwnam (user) : NULL;
  const char *a;
  int status;
  va_list ap;

  if (!g_file_test (home, G_FILE_TEST_IS_DIR))
    {
      g_assert_no_errno (g_mkdir (home, 0700));
      g_assert_no_errno (g_mkdir (runtime, 0700));
      if (pw != NULL)
        {
          g_assert_no_errno (chown (home, pw->pw_uid, pw->pw_gid));
          g_assert_no_errno (chown (runtime, pw->pw_uid, pw->pw_gid));
        }
    }
  envp = bg_harness_cli_envp (h, home, runtime);
  if (h->cli_path_prefix != NULL)
    {
      g_autofree char *path = g_strdup_printf ("%s:%s", h->cli_path_prefix, g_environ_getenv (envp, "PATH"));
      envp = g_environ_setenv (envp, "PATH", path, TRUE);
    }
  va_start (ap, first_arg);
  for (a = first_arg; a != NULL; a = va_arg (ap, const char *))
    g_strv_builder_add (args, a);
  va_end (ap);
  arg_list = g_strv_builder_end (args);
  argv = bg_harness_cli_argv (user, (const char * const *) arg_list);

  /* Output nobody asked for must not land in the TAP stream. */
  if (!g_spawn_sync (home, argv, envp, G_SPAWN_SEARCH_PATH | (out ? 0 : G_SPAWN_STDOUT_TO_DEV_NULL), NULL, NULL,
                     out, err, &status, &error))
    g_error ("%s", error->message);
  return WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
}

/* Points the mechanism at @vmm_path, as an administrator would in
 * /etc/banger/mechanism.conf. */
void
bg_harness_use_vmm (BgHarness  *h,
                    const char *vmm_path)
{
  g_autofree char *conf = g_strdup_printf ("[vmm]\nfirecracker=%s\n", vmm_path);
  bg_harness_write_config (h, "mechanism.conf", conf);
}

/* Whether the Debian mirror answers, for tests that build images. */
gboolean
bg_harness_mirror_reachable (void)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketConnection) c = NULL;

  g_socket_client_set_timeout (client, 10);
  c = g_socket_client_connect_to_host (client, "deb.debian.org", 80, NULL, NULL);
  return c != NULL;
}

/* Builds image @name with `banger image build` as test user A (with
 * --cloud-init if asked), in @home, or in a new home when @home is NULL;
 * returns the home (the caller removes it). For a prepare step: it needs
 * the Debian mirror, so it runs before the harness leaves the network. */
char *
bg_harness_build_image (const char *home,
                        const char *name,
                        gboolean    cloud_init)
{
  struct passwd *pw = getpwnam (BG_TEST_USER_A);
  char *dir = home ? g_strdup (home) : g_dir_make_tmp ("banger-it-image-XXXXXX", NULL);
  const char *args[] = { "image", "build", name, cloud_init ? "--cloud-init" : NULL, NULL };
  g_auto(GStrv) argv = bg_harness_cli_argv (BG_TEST_USER_A, args);
  g_auto(GStrv) envp = bg_harness_cli_envp (NULL, dir, dir);
  g_autofree char *err = NULL;
  int status;

  g_chmod (dir, 0755);
  g_assert_no_errno (chown (dir, pw->pw_uid, pw->pw_gid));
  if (!g_spawn_sync (dir, argv, envp, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL,
                     NULL, &err, &status, NULL) || !g_spawn_check_wait_status (status, NULL))
    g_error ("image build %s failed: %s", name, err);
  return dir;
}
