/* harness-sandbox.c: the supervisor, test users, fresh network, mount
 * and PID namespaces, and small file helpers.
 *
 * Structure: main() is the supervisor. It makes the test users, then
 * forks PID 1 of a PID namespace of the tests' own (in a network and
 * mount namespace of their own too, /proc showing only that namespace),
 * which forks the process that runs the GTest suite and reaps whatever
 * is orphaned in the namespace. However the test process ends (a failed
 * assertion aborts it), PID 1 then exits and the kernel kills every
 * process left in the namespace; the supervisor deletes the test users,
 * groups and temporary directories. So a failing test still leaves
 * nothing behind, and no test can see, count or signal a process it did
 * not start (DESIGN.md, invariant 12): a real banger's VMMs on the same
 * machine are in another PID namespace.
 * See harness.h. */
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

#include "harness-private.h"

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

void
bg_harness_rm_rf (const char *path)
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
  /* A CLI run without XDG_RUNTIME_DIR (the host suite's) made its
   * fallback runtime dir; it must not outlive the user's uid. */
  for (const char *u = BG_TEST_USER_A; u; u = g_str_equal (u, BG_TEST_USER_A) ? BG_TEST_USER_B : NULL)
    {
      struct passwd *pw = getpwnam (u);
      if (pw != NULL)
        {
          g_autofree char *runtime = g_strdup_printf ("/tmp/banger-runtime-%u", (guint) pw->pw_uid);
          bg_harness_rm_rf (runtime);
        }
    }

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
        bg_harness_rm_rf (path);
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

/* PID 1 of the tests' PID namespace. /proc is mounted anew in a mount
 * namespace of its own, so the tests see only this namespace's
 * processes; the test process runs as its child, and every process
 * orphaned in the namespace (a VMM whose mechanism was killed) is reaped
 * here, so none lingers as a zombie. Returns the test process's status. */
static int
namespace_init (void (*add_tests) (void))
{
  pid_t test, pid;
  int status = 0;

  prctl (PR_SET_PDEATHSIG, SIGKILL);
  if (unshare (CLONE_NEWNS) < 0 ||
      mount ("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
      mount ("proc", "/proc", "proc", MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL) < 0)
    {
      g_autofree char *why = g_strdup_printf ("cannot mount /proc for the tests' PID namespace: %s",
                                              g_strerror (errno));
      return bg_harness_cannot_run (why);
    }

  test = fork ();
  if (test < 0)
    g_error ("fork: %s", g_strerror (errno));
  if (test == 0)
    {
      prctl (PR_SET_PDEATHSIG, SIGKILL);
      add_tests ();
      _exit (g_test_run ());
    }
  while ((pid = waitpid (-1, &status, 0)) != test)
    if (pid < 0 && errno != EINTR)
      g_error ("waitpid: %s", g_strerror (errno));

  if (WIFSIGNALED (status))
    {
      g_printerr ("test process died with signal %d\n", WTERMSIG (status));
      return 1;
    }
  return WIFEXITED (status) ? WEXITSTATUS (status) : 1;
}

/* Where a suite cannot run. Under CI=true that is a failure (TAP's
 * "Bail out!"), since CI is where it must run; elsewhere the suite skips,
 * saying why. tools/test names both. */
int
bg_harness_cannot_run (const char *reason)
{
  if (g_strcmp0 (g_getenv ("CI"), "true") == 0)
    {
      g_print ("Bail out! cannot run here: %s\n", reason);
      return 1;
    }
  g_print ("1..0 # SKIP %s\n", reason);
  return 0;
}

int
bg_harness_run_id (void)
{
  return supervisor_pid ? supervisor_pid : getpid ();
}

int
bg_harness_main_full (int          *argc,
                      char       ***argv,
                      const char *(*prepare) (void),
                      void        (*add_tests) (void))
{
  const char *missing;
  pid_t init;
  int status, own_pidns;

  g_test_init (argc, argv, NULL);
  missing = missing_prerequisite ();
  if (missing != NULL)
    return bg_harness_cannot_run (missing);

  supervisor_pid = getpid ();
  setup_users ();
  if (prepare != NULL && (missing = prepare ()) != NULL)
    {
      remove_users ();
      return bg_harness_cannot_run (missing);
    }

  /* Everything from here on, the mechanism included, lives in fresh
   * network and PID namespaces: the host's network is never touched, and
   * the host's processes are never seen. A private mount namespace with
   * its own sysfs makes /sys/class/net show this namespace's devices,
   * and keeps `ip netns add` mounts to ourselves. */
  own_pidns = open ("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
  if (own_pidns < 0 || unshare (CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWPID) < 0 ||
      mount ("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
      mount ("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL) < 0)
    {
      g_autofree char *why = g_strdup_printf ("cannot create network, mount and PID namespaces: %s",
                                              g_strerror (errno));
      remove_users ();
      return bg_harness_cannot_run (why);
    }
  bring_up_loopback ();

  init = fork ();
  if (init < 0)
    g_error ("fork: %s", g_strerror (errno));
  if (init == 0)
    _exit (namespace_init (add_tests));
  /* The supervisor's own later children (rm, userdel) belong in its own
   * PID namespace: the tests' one admits no process once its PID 1 ends. */
  if (setns (own_pidns, CLONE_NEWPID) < 0)
    g_error ("cannot return to the supervisor's PID namespace: %s", g_strerror (errno));
  close (own_pidns);

  /* PID 1's end took every process of the namespace with it. */
  while (waitpid (init, &status, 0) < 0 && errno == EINTR)
    ;
  remove_leftover_netns ();
  remove_leftover_dirs ();
  remove_users ();

  if (WIFSIGNALED (status))
    {
      g_printerr ("the tests' PID 1 died with signal %d\n", WTERMSIG (status));
      return 1;
    }
  return WIFEXITED (status) ? WEXITSTATUS (status) : 1;
}

void
bg_harness_reset_network (void)
{
  g_autofree char *out = NULL;
  g_auto(GStrv) lines = NULL;
  const char *list[] = { "ip", "-o", "link", "show", NULL };
  const char *nft[] = { "nft", "delete", "table", "ip", "banger", NULL };
  const char *nft6[] = { "nft", "delete", "table", "ip6", "banger", NULL };
  /* What an IPv6 test may have changed in the namespace, back to a
   * fresh namespace's values. */
  static const struct { const char *path, *value; } sysctls[] = {
    { "/proc/sys/net/ipv6/conf/all/disable_ipv6", "0" },
    { "/proc/sys/net/ipv6/conf/default/disable_ipv6", "0" },
    { "/proc/sys/net/ipv6/conf/all/forwarding", "0" },
  };

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
  bg_harness_run_argv (nft6, NULL, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (sysctls); i++)
    {
      int fd = open (sysctls[i].path, O_WRONLY | O_CLOEXEC);
      if (fd >= 0 && write (fd, sysctls[i].value, 1) < 0)
        g_warning ("cannot reset %s: %s", sysctls[i].path, g_strerror (errno));
      if (fd >= 0)
        close (fd);
    }
}

void
bg_harness_write_file (const char *dir,
                       const char *name,
                       const char *text,
                       int         mode)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autoptr(GError) error = NULL;

  /* CONSISTENT: a new file renamed over the old one. GLib's NONE
   * rewrites the file in place without truncating it, so a shorter
   * text would keep the old one's tail. */
  if (!g_file_set_contents_full (path, text, -1, G_FILE_SET_CONTENTS_CONSISTENT, mode, &error))
    g_error ("%s", error->message);
}

char *
bg_harness_make_dir (const char *parent,
                     const char *name,
                     int         mode)
{
  char *path = g_build_filename (parent, name, NULL);

  if (g_mkdir (path, mode) < 0 || g_chmod (path, mode) < 0)
    g_error ("mkdir %s: %s", path, g_strerror (errno));
  return path;
}
