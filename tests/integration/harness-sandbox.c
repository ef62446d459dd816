/* harness-sandbox.c: the supervisor, test users, a fresh network
 * and mount namespace, and small file helpers.
 *
 * Structure: main() forks. The child runs the GTest suite; the parent is a
 * supervisor (a child subreaper) that, however the child ends (a failed
 * assertion aborts it), kills every process left under it, deletes the
 * test users and groups it created and the temporary directories. So a
 * failing test still leaves nothing behind.
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


void
bg_harness_reset_network (void)
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

void
bg_harness_write_file (const char *dir,
                       const char *name,
                       const char *text,
                       int         mode)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autoptr(GError) error = NULL;

  if (!g_file_set_contents_full (path, text, -1, G_FILE_SET_CONTENTS_NONE, mode, &error))
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
