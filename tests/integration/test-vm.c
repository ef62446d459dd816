/* Launching jailed VMMs through the mechanism, with the test VMM standing
 * in for Firecracker, and driving them with banger's API client. */
#include <pwd.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/ioctl.h>
#include <linux/loop.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <gio/gunixinputstream.h>
#include <json-glib/json-glib.h>

#include "harness.h"

#define E_FAILED    "org.banger.Mechanism1.Error.Failed"
#define E_TIMEOUT   "org.banger.Mechanism1.Error.Timeout"
#define E_UNSAFE    "org.banger.Mechanism1.Error.Unsafe"
#define E_NOT_OWNER "org.banger.Mechanism1.Error.NotOwner"
#define JAIL_UID    0x70000000u

typedef struct {
  BgHarness *h;
  char      *files;     /* user A's directory with kernel, rootfs, log */
  GMainLoop *loop;
  guint      sub;
  GPtrArray *exits;     /* "name status" of VmExited signals seen */
} Fixture;

typedef struct {
  char   *api;
  char   *vsock;
  guint64 pid;
  char   *jail;
} Launched;

static void
launched_free (Launched *l)
{
  g_free (l->api);
  g_free (l->vsock);
  g_free (l->jail);
  g_free (l);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Launched, launched_free)

static void
on_vm_exited (GDBusConnection *c, const char *sender, const char *path, const char *iface,
              const char *signal, GVariant *params, gpointer data)
{
  Fixture *f = data;
  const char *name;
  guint32 owner;
  gint32 status;

  g_variant_get (params, "(&sui)", &name, &owner, &status);
  g_ptr_array_add (f->exits, g_strdup_printf ("%s %d", name, status));
  g_main_loop_quit (f->loop);
}

static gboolean
quit_loop (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_REMOVE;
}

/* Waits (bounded) for the VmExited signal of @vm; returns its status. */
static int
wait_exit (Fixture *f, const char *vm)
{
  g_autofree char *prefix = g_strdup_printf ("%s ", vm);
  guint timeout = g_timeout_add_seconds (bg_test_timeout (30), quit_loop, f->loop);

  for (;;)
    {
      for (guint i = 0; i < f->exits->len; i++)
        if (g_str_has_prefix (f->exits->pdata[i], prefix))
          {
            int status = atoi ((char *) f->exits->pdata[i] + strlen (prefix));
            g_ptr_array_remove_index (f->exits, i);
            g_source_remove (timeout);
            return status;
          }
      if (g_main_context_find_source_by_id (NULL, timeout) == NULL)
        g_error ("no VmExited for %s", vm);
      g_main_loop_run (f->loop);
    }
}

static void
write_owned (const char *path, gsize size, uid_t uid, int mode)
{
  g_autofree char *data = g_malloc0 (size);

  g_assert_true (g_file_set_contents_full (path, data, size, G_FILE_SET_CONTENTS_NONE, mode, NULL));
  g_assert_no_errno (chown (path, uid, uid));
}

static void
setup (Fixture *f, gconstpointer data)
{
  struct passwd *pw = getpwnam (BG_TEST_USER_A);
  g_autofree char *kernel = NULL, *rootfs = NULL, *console = NULL;

  f->h = bg_harness_start (60);
  bg_harness_set_group_rule (f->h, TRUE);
  f->exits = g_ptr_array_new_with_free_func (g_free);
  f->loop = g_main_loop_new (NULL, FALSE);
  f->sub = g_dbus_connection_signal_subscribe (f->h->bus, NULL, "org.banger.Mechanism1", "VmExited",
                                               "/org/banger/Mechanism1", NULL, G_DBUS_SIGNAL_FLAGS_NONE,
                                               on_vm_exited, f, NULL);
  {
    /* The match rule is in place once the bus answered this; VmExited
     * comes only to subscribers (root's hear of every VM). */
    g_autoptr(GVariant) sub = g_dbus_connection_call_sync (f->h->bus, "org.banger.Mechanism1", "/org/banger/Mechanism1",
                                                           "org.banger.Mechanism1", "Subscribe", NULL, NULL,
                                                           G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL);
    g_assert_nonnull (sub);
  }

  /* The user's own files, which only the user can open. */
  f->files = g_build_filename (f->h->tmp, "files-a", NULL);
  g_assert_no_errno (g_mkdir (f->files, 0700));
  g_assert_no_errno (chown (f->files, pw->pw_uid, pw->pw_gid));
  kernel = g_build_filename (f->files, "vmlinux", NULL);
  rootfs = g_build_filename (f->files, "rootfs.ext4", NULL);
  console = g_build_filename (f->files, "console.log", NULL);
  /* The jailed VMM reads the kernel as its own user. */
  write_owned (kernel, 4096, pw->pw_uid, 0644);
  write_owned (rootfs, 4 << 20, pw->pw_uid, 0600);
  write_owned (console, 0, pw->pw_uid, 0600);
  bg_harness_use_vmm (f->h, g_getenv ("BANGER_TEST_VMM"));
}

/* mechanism.conf: the VMM (its launch timeout scaled) and @more. */
static char *
vmm_conf (const char *vmm,
          const char *more)
{
  g_autofree char *section = bg_harness_vmm_section (vmm);
  return g_strconcat (section, more, NULL);
}

/* mechanism.conf's [limits] are read at start: a new config, then the
 * mechanism started again (and subscribed to again). */
static void
restart_with_config (Fixture *f, const char *conf)
{
  GPid pid = bg_harness_mechanism_pid (f->h);
  g_autoptr(GVariant) sub = NULL;

  bg_harness_write_config (f->h, "mechanism.conf", conf);
  if (pid > 0)
    {
      kill (pid, SIGTERM);
      g_assert_true (bg_harness_wait_name_gone (f->h, 20));
    }
  sub = g_dbus_connection_call_sync (f->h->bus, "org.banger.Mechanism1", "/org/banger/Mechanism1",
                                     "org.banger.Mechanism1", "Subscribe", NULL, NULL, G_DBUS_CALL_FLAGS_NONE, -1,
                                     NULL, NULL);
  g_assert_nonnull (sub);
}

static void
teardown (Fixture *f, gconstpointer data)
{
  g_dbus_connection_signal_unsubscribe (f->h->bus, f->sub);
  bg_harness_stop (f->h);
  g_main_loop_unref (f->loop);
  g_ptr_array_unref (f->exits);
  g_free (f->files);
}

static BgCallResult *
launch_call (Fixture *f, const char *user, const char *vm, const char *extra_options)
{
  g_autofree char *kernel = g_strdup_printf ("--fd=%s/vmlinux", f->files);
  g_autofree char *rootfs = g_strdup_printf ("--fd=%s/rootfs.ext4:rw", f->files);
  g_autofree char *console = g_strdup_printf ("--fd=%s/console.log:rw", f->files);
  g_autofree char *args = g_strdup_printf ("('%s', {'console': <@h 2>%s%s}, @h 0, @h 1)", vm,
                                           extra_options ? ", " : "", extra_options ? extra_options : "");

  return bg_harness_call (f->h, user, "LaunchVm", args, kernel, rootfs, console, NULL);
}

static Launched *
launch (Fixture *f, const char *user, const char *vm, const char *extra_options)
{
  g_autoptr(BgCallResult) r = launch_call (f, user, vm, extra_options);
  g_autoptr(GVariant) v = NULL;
  g_autoptr(GVariant) paths = NULL;
  Launched *l = g_new0 (Launched, 1);

  bg_assert_call_ok (r);
  v = g_variant_parse (G_VARIANT_TYPE ("(ssta{sv})"), r->reply, NULL, NULL, NULL);
  g_assert_nonnull (v);
  g_variant_get (v, "(sst@a{sv})", &l->api, &l->vsock, &l->pid, &paths);
  g_assert_true (g_variant_lookup (paths, "jail", "s", &l->jail));
  return l;
}

static char *
fc (const char *user, const char *socket, const char *cmd, const char *a1, const char *a2)
{
  g_autofree char *user_arg = user ? g_strdup_printf ("--user=%s", user) : g_strdup ("--user=root");
  const char *argv[] = { g_getenv ("BANGER_TEST_FC"), user_arg, socket, cmd, a1, a2, NULL };
  char *out = NULL;

  bg_harness_run_argv (argv, &out, NULL);
  return g_strstrip (out);
}

static gboolean
nothing_left (Fixture *f, const char *id)
{
  g_autoptr(BgCallResult) list = bg_harness_call (f->h, NULL, "ListResources",
                                                  "({'all-users': <true>, 'kind': <'vm'>},)", NULL);
  g_autofree char *jail = g_strdup_printf ("%s/state/jail/%s", f->h->tmp, id);

  bg_assert_call_ok (list);
  return g_str_equal (list->reply, "(@a(ssutsa{sv}) [],)") && !g_file_test (jail, G_FILE_TEST_EXISTS);
}

static char *
id_of (const char *user, const char *vm)
{
  return g_strdup_printf ("u%u-%s", bg_harness_uid (user), vm);
}

static void
test_api_socket_is_handed_to_the_caller (Fixture *f, gconstpointer data)
{
  g_autoptr(Launched) l = launch (f, BG_TEST_USER_A, "hand", NULL);
  g_autofree char *as_a = NULL, *as_b = NULL;
  g_autoptr(BgCallResult) kill = NULL;
  struct stat st;

  /* The reply came only after this was true. */
  g_assert_no_errno (lstat (l->api, &st));
  g_assert_true (S_ISSOCK (st.st_mode));
  g_assert_cmpuint (st.st_uid, ==, bg_harness_uid (BG_TEST_USER_A));
  g_assert_cmpuint (st.st_mode & 0777, ==, 0600);

  as_a = fc (BG_TEST_USER_A, l->api, "get", NULL, NULL);
  g_assert_cmpstr (as_a, ==, "Not started");
  /* Another user cannot even reach it. */
  as_b = fc (BG_TEST_USER_B, l->api, "get", NULL, NULL);
  g_assert_true (g_str_has_prefix (as_b, "ERROR cannot reach the VMM"));
  g_assert_nonnull (strstr (as_b, "ermission denied"));

  kill = bg_harness_call (f->h, BG_TEST_USER_A, "KillVm", "('hand',)", NULL);
  bg_assert_call_ok (kill);
  g_assert_cmpint (wait_exit (f, "hand"), ==, 128 + 9);
}

static void
collect_tree (const char *dir, const char *prefix, GPtrArray *out)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *e;

  while (d && (e = g_dir_read_name (d)))
    {
      g_autofree char *path = g_build_filename (dir, e, NULL);
      g_autofree char *rel = prefix ? g_strdup_printf ("%s/%s", prefix, e) : g_strdup (e);

      if (g_file_test (path, G_FILE_TEST_IS_DIR) && !g_file_test (path, G_FILE_TEST_IS_SYMLINK))
        collect_tree (path, rel, out);
      else
        g_ptr_array_add (out, g_steal_pointer (&rel));
    }
}

static gint
sort_strings (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(const char **) a, *(const char **) b);
}

static void
test_jail_confines_the_vmm (Fixture *f, gconstpointer data)
{
  g_autoptr(Launched) l = launch (f, BG_TEST_USER_A, "confined", NULL);
  g_autofree char *status_path = g_strdup_printf ("/proc/%" G_GUINT64_FORMAT "/status", l->pid);
  g_autofree char *status = NULL;
  g_autofree char *uids = g_strdup_printf ("Uid:\t%u\t%u\t%u\t%u", JAIL_UID, JAIL_UID, JAIL_UID, JAIL_UID);
  g_autofree char *gids = g_strdup_printf ("Gid:\t%u\t%u\t%u\t%u", JAIL_UID, JAIL_UID, JAIL_UID, JAIL_UID);
  g_autofree char *root = g_strdup_printf ("/proc/%" G_GUINT64_FORMAT "/root", l->pid);
  g_autofree char *home = g_build_filename (root, "home", NULL);
  g_autofree char *shadow = g_build_filename (root, "etc", "shadow", NULL);
  g_autofree char *dev = g_build_filename (root, "dev", NULL);
  g_autofree char *fds = g_strdup_printf ("/proc/%" G_GUINT64_FORMAT "/fd", l->pid);
  g_autoptr(GPtrArray) devices = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(BgCallResult) kill = NULL;
  g_autoptr(GDir) fd_dir = NULL;
  const char *e;

  g_assert_true (g_file_get_contents (status_path, &status, NULL, NULL));
  g_assert_nonnull (strstr (status, uids));
  g_assert_nonnull (strstr (status, gids));
  g_assert_nonnull (strstr (status, "Groups:\t \n"));
  g_assert_nonnull (strstr (status, "NoNewPrivs:\t1"));
  /* PID 1 of its own namespace. */
  g_assert_nonnull (strstr (status, "NSpid:"));
  g_assert_nonnull (g_strrstr (strstr (status, "NSpid:"), "\t1\n"));

  g_assert_false (g_file_test (home, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (shadow, G_FILE_TEST_EXISTS));
  collect_tree (dev, NULL, devices);
  g_ptr_array_sort (devices, (GCompareFunc) g_strcmp0);
  g_assert_cmpuint (devices->len, ==, 3);
  {
    g_autofree char *joined = NULL;
    g_ptr_array_add (devices, NULL);
    joined = g_strjoinv (",", (char **) devices->pdata);
    /* sorted by pointer order is not by name; compare as a set */
    g_assert_nonnull (strstr (joined, "kvm"));
    g_assert_nonnull (strstr (joined, "net/tun"));
    g_assert_nonnull (strstr (joined, "urandom"));
  }

  /* The root holds exactly what the jail lists, and nothing is a copy:
   * the kernel is the caller's own file, inherited as fd 3 and reached
   * through /vmlinux -> /proc/self/fd/3; the VMM is the configured
   * binary itself (same device and inode), mounted read-only. */
  {
    g_autoptr(GPtrArray) top = g_ptr_array_new_with_free_func (g_free);
    g_autofree char *joined = NULL;
    g_autofree char *vmlinux = g_build_filename (root, "vmlinux", NULL);
    g_autofree char *link = g_file_read_link (vmlinux, NULL);
    g_autofree char *fd3 = g_strdup_printf ("%s/3", fds);
    g_autofree char *kernel = g_build_filename (f->files, "vmlinux", NULL);
    g_autofree char *exe = g_build_filename (root, "firecracker", NULL);
    g_autofree char *mountinfo = NULL;
    g_autofree char *mi_path = g_strdup_printf ("/proc/%" G_GUINT64_FORMAT "/mountinfo", l->pid);
    struct stat a, b;
    g_autoptr(GDir) d = g_dir_open (root, 0, NULL);

    while ((e = g_dir_read_name (d)))
      g_ptr_array_add (top, g_strdup (e));
    g_ptr_array_sort (top, (GCompareFunc) sort_strings);
    g_ptr_array_add (top, NULL);
    joined = g_strjoinv (",", (char **) top->pdata);
    /* The test VMM is dynamically linked: the host's libraries are there. */
    g_assert_true (g_str_has_prefix (joined, "cidata,") || g_str_has_prefix (joined, "dev,"));
    g_assert_nonnull (strstr (joined, "dev,firecracker,"));
    g_assert_nonnull (strstr (joined, "proc,rootfs,run,usr,vmlinux"));
    g_assert_null (strstr (joined, "home"));
    g_assert_null (strstr (joined, "etc"));

    g_assert_cmpstr (link, ==, "/proc/self/fd/3");
    g_assert_no_errno (stat (fd3, &a));
    g_assert_no_errno (stat (kernel, &b));
    g_assert_cmpuint (a.st_dev, ==, b.st_dev);
    g_assert_cmpuint (a.st_ino, ==, b.st_ino);
    g_assert_no_errno (stat (exe, &a));
    g_assert_no_errno (stat (g_getenv ("BANGER_TEST_VMM"), &b));
    g_assert_cmpuint (a.st_dev, ==, b.st_dev);
    g_assert_cmpuint (a.st_ino, ==, b.st_ino);
    /* Read-only: its root and the VMM binary. */
    g_assert_true (g_file_get_contents (mi_path, &mountinfo, NULL, NULL));
    g_assert_true (g_regex_match_simple ("^\\S+ \\S+ \\S+ \\S+ / ro,", mountinfo, G_REGEX_MULTILINE, 0));
    g_assert_true (g_regex_match_simple ("^\\S+ \\S+ \\S+ \\S+ /firecracker ro,", mountinfo, G_REGEX_MULTILINE, 0));
  }

  /* The root disk is no node in the jail: /rootfs is the descriptor the
   * VMM inherited as 4, a loop device over the caller's file. */
  {
    g_autofree char *rootfs = g_build_filename (root, "rootfs", NULL);
    g_autofree char *link = g_file_read_link (rootfs, NULL);
    g_autofree char *fd4 = g_strdup_printf ("%s/4", fds);
    struct stat st;

    g_assert_cmpstr (link, ==, "/proc/self/fd/4");
    g_assert_no_errno (stat (fd4, &st));
    g_assert_true (S_ISBLK (st.st_mode));
    g_assert_cmpuint (major (st.st_rdev), ==, 7);
  }

  /* No descriptor of the mechanism leaked in: only stdio, the kernel (3),
   * the root disk (4) and what the VMM opened itself (sockets, anon
   * inodes, pipes). */
  fd_dir = g_dir_open (fds, 0, NULL);
  while ((e = g_dir_read_name (fd_dir)))
    {
      g_autofree char *link = g_build_filename (fds, e, NULL);
      g_autofree char *target = g_file_read_link (link, NULL);

      if (target == NULL || atoi (e) <= 4)
        continue;
      if (!g_str_has_prefix (target, "socket:") && !g_str_has_prefix (target, "anon_inode:") &&
          !g_str_has_prefix (target, "pipe:"))
        g_error ("unexpected fd %s -> %s in the VMM", e, target);
    }

  kill = bg_harness_call (f->h, BG_TEST_USER_A, "KillVm", "('confined',)", NULL);
  bg_assert_call_ok (kill);
  g_assert_cmpint (wait_exit (f, "confined"), ==, 137);
}

static void
test_symlink_in_place_of_socket_is_not_followed (Fixture *f, gconstpointer data)
{
  const char *target = "/tmp/bg-symlink-target";
  g_autoptr(BgCallResult) r = NULL;
  g_autofree char *id = id_of (BG_TEST_USER_A, "hostile");
  struct stat st;

  g_assert_true (g_file_set_contents (target, "mine", -1, NULL));
  g_assert_no_errno (chown (target, 0, 0));
  bg_harness_use_vmm (f->h, g_getenv ("BANGER_VMM_SYMLINK"));

  r = launch_call (f, BG_TEST_USER_A, "hostile", NULL);
  bg_assert_call_error (r, E_UNSAFE, "not a socket the VMM made");
  wait_exit (f, "hostile");
  g_assert_no_errno (lstat (target, &st));
  g_assert_cmpuint (st.st_uid, ==, 0);
  g_assert_true (nothing_left (f, id));
  unlink (target);
}

static void
test_vmm_exiting_at_once_fails_with_its_output (Fixture *f, gconstpointer data)
{
  g_autoptr(BgCallResult) r = NULL;
  g_autofree char *id = id_of (BG_TEST_USER_A, "crash");

  bg_harness_use_vmm (f->h, g_getenv ("BANGER_VMM_CRASH"));
  r = launch_call (f, BG_TEST_USER_A, "crash", NULL);
  bg_assert_call_error (r, E_FAILED, "simulated failure for the tests");
  g_assert_cmpint (wait_exit (f, "crash"), ==, 1);
  g_assert_true (nothing_left (f, id));
}

static void
test_vmm_without_socket_times_out (Fixture *f, gconstpointer data)
{
  g_autoptr(BgCallResult) r = NULL;
  g_autofree char *id = id_of (BG_TEST_USER_A, "silent");

  bg_harness_use_vmm (f->h, g_getenv ("BANGER_VMM_SILENT"));
  r = launch_call (f, BG_TEST_USER_A, "silent", "'timeout-ms': <uint32 300>");
  bg_assert_call_error (r, E_TIMEOUT, "did not create its API socket in time");
  g_assert_cmpint (wait_exit (f, "silent"), ==, 137);
  g_assert_true (nothing_left (f, id));
}

static void
test_full_sequence_through_the_api_client (Fixture *f, gconstpointer data)
{
  g_autoptr(BgCallResult) tap_r = bg_harness_call (f->h, BG_TEST_USER_A, "CreateTap", "('seq', @a{sv} {})", NULL);
  g_autoptr(Launched) l = NULL;
  g_autofree char *tap = NULL, *mac = NULL;
  g_autofree char *opt = NULL, *bad = NULL, *boot = NULL, *config = NULL, *cad = NULL, *owner = NULL;
  g_autofree char *uid_a = g_strdup_printf ("%u", bg_harness_uid (BG_TEST_USER_A));
  g_autofree char *id = id_of (BG_TEST_USER_A, "seq");
  struct stat st;

  bg_assert_call_ok (tap_r);
  tap = bg_call_result_lookup (tap_r, "tap");
  mac = bg_call_result_lookup (tap_r, "mac");
  opt = g_strdup_printf ("'tap': <'%s'>", tap);
  l = launch (f, BG_TEST_USER_A, "seq", opt);

  /* A body Firecracker rejects surfaces its fault_message. */
  bad = fc (BG_TEST_USER_A, l->api, "bad", NULL, NULL);
  g_assert_cmpstr (bad, ==, "ERROR Firecracker refused PUT /machine-config (400): The vCPU number is invalid! "
                   "The vCPU number can only be 1 or an even number when SMT is enabled.");

  boot = fc (BG_TEST_USER_A, l->api, "boot", tap, mac);
  g_assert_cmpstr (boot, ==, "Not started|Running|Paused|Running");
  config = fc (BG_TEST_USER_A, l->api, "config", NULL, NULL);
  g_assert_nonnull (strstr (config, "\"vcpu_count\":2"));
  g_assert_nonnull (strstr (config, "\"mem_size_mib\":256"));
  g_assert_nonnull (strstr (config, "\"path_on_host\":\"/rootfs\""));
  g_assert_nonnull (strstr (config, tap));
  g_assert_nonnull (strstr (config, "\"uds_path\":\"/run/vsock.sock\""));

  /* The vsock socket is handed over when it appears; there is no signal
   * for that, so wait for it, bounded. */
  for (gint64 end = bg_test_deadline (5); g_get_monotonic_time () < end;)
    {
      if (lstat (l->vsock, &st) == 0 && st.st_uid == bg_harness_uid (BG_TEST_USER_A))
        break;
      g_usleep (10000);
    }
  g_assert_cmpuint (st.st_uid, ==, bg_harness_uid (BG_TEST_USER_A));
  g_assert_cmpuint (st.st_mode & 0777, ==, 0600);

  cad = fc (BG_TEST_USER_A, l->api, "ctrl-alt-del", NULL, NULL);
  g_assert_cmpstr (cad, ==, "OK");
  g_assert_cmpint (wait_exit (f, "seq"), ==, 0);
  g_assert_true (nothing_left (f, id));
  /* The tap is the user's again. */
  {
    g_autofree char *path = g_strdup_printf ("/sys/class/net/%s/owner", tap);
    g_assert_true (g_file_get_contents (path, &owner, NULL, NULL));
    g_assert_cmpstr (g_strstrip (owner), ==, uid_a);
  }
}

/* vm up is CreateTap, then LaunchVm with that tap: the network is set up
 * once, by CreateTap. A tap the kernel lost meanwhile (as after a
 * reboot) is made again by LaunchVm, network and all. Counted by the
 * test hook in bg_network_ensure. */
static void
test_launch_after_create_tap_sets_up_the_network_once (Fixture *f, gconstpointer data)
{
  g_autoptr(BgCallResult) tap_r = NULL, kill1 = NULL, kill2 = NULL;
  g_autoptr(Launched) first = NULL, second = NULL;
  g_autofree char *tap = NULL, *opt = NULL, *sys = NULL;

  bg_harness_count_start (f->h, "network-ensure");
  tap_r = bg_harness_call (f->h, BG_TEST_USER_A, "CreateTap", "('once', @a{sv} {})", NULL);
  bg_assert_call_ok (tap_r);
  g_assert_cmpuint (bg_harness_count (f->h, "network-ensure"), ==, 1);
  tap = bg_call_result_lookup (tap_r, "tap");
  opt = g_strdup_printf ("'tap': <'%s'>", tap);

  first = launch (f, BG_TEST_USER_A, "once", opt);
  g_assert_cmpuint (bg_harness_count (f->h, "network-ensure"), ==, 1);
  kill1 = bg_harness_call (f->h, BG_TEST_USER_A, "KillVm", "('once',)", NULL);
  bg_assert_call_ok (kill1);
  g_assert_cmpint (wait_exit (f, "once"), ==, 128 + 9);

  {
    const char *del[] = { "ip", "link", "del", tap, NULL };
    int status;
    bg_harness_run_argv (del, NULL, &status);
    g_assert_cmpint (status, ==, 0);
  }
  second = launch (f, BG_TEST_USER_A, "once", opt);
  g_assert_cmpuint (bg_harness_count (f->h, "network-ensure"), ==, 2);
  sys = g_strdup_printf ("/sys/class/net/%s", tap);
  g_assert_true (g_file_test (sys, G_FILE_TEST_EXISTS));
  kill2 = bg_harness_call (f->h, BG_TEST_USER_A, "KillVm", "('once',)", NULL);
  bg_assert_call_ok (kill2);
  g_assert_cmpint (wait_exit (f, "once"), ==, 128 + 9);
}

static void
test_kill_vm_by_other_user_is_not_owner (Fixture *f, gconstpointer data)
{
  g_autoptr(Launched) l = launch (f, BG_TEST_USER_A, "victim", NULL);
  g_autofree char *id = id_of (BG_TEST_USER_A, "victim");
  g_autofree char *args = g_strdup_printf ("('%s',)", id);
  g_autoptr(BgCallResult) by_b = bg_harness_call (f->h, BG_TEST_USER_B, "KillVm", args, NULL);
  g_autoptr(BgCallResult) own_b = bg_harness_call (f->h, BG_TEST_USER_B, "KillVm", "('victim',)", NULL);
  g_autoptr(BgCallResult) by_a = NULL;

  bg_assert_call_error (by_b, E_NOT_OWNER, NULL);
  /* B's own "victim" does not exist. */
  bg_assert_call_error (own_b, "org.banger.Mechanism1.Error.NotFound", NULL);
  g_assert_true (kill (l->pid, 0) == 0);

  by_a = bg_harness_call (f->h, BG_TEST_USER_A, "KillVm", "('victim',)", NULL);
  bg_assert_call_ok (by_a);
  g_assert_cmpint (wait_exit (f, "victim"), ==, 137);
  g_assert_true (nothing_left (f, id));
}

static void
test_launch_refuses_bad_fds_and_options (Fixture *f, gconstpointer data)
{
  g_autofree char *kernel = g_strdup_printf ("--fd=%s/vmlinux", f->files);
  g_autofree char *rootfs_ro = g_strdup_printf ("--fd=%s/rootfs.ext4", f->files);
  g_autofree char *dir = g_strdup_printf ("--fd=%s", f->files);
  g_autoptr(BgCallResult) ro = bg_harness_call (f->h, BG_TEST_USER_A, "LaunchVm",
                                                "('x', @a{sv} {}, @h 0, @h 1)", kernel, rootfs_ro, NULL);
  g_autoptr(BgCallResult) a_dir = bg_harness_call (f->h, BG_TEST_USER_A, "LaunchVm",
                                                   "('x', @a{sv} {}, @h 0, @h 1)", dir, rootfs_ro, NULL);
  g_autoptr(BgCallResult) missing = bg_harness_call (f->h, BG_TEST_USER_A, "LaunchVm",
                                                     "('x', @a{sv} {}, @h 0, @h 7)", kernel, NULL);
  g_autoptr(BgCallResult) key = bg_harness_call (f->h, BG_TEST_USER_A, "LaunchVm",
                                                 "('x', {'vmm': <'/bin/sh'>}, @h 0, @h 1)", kernel, rootfs_ro, NULL);
  g_autoptr(BgCallResult) tap = bg_harness_call (f->h, BG_TEST_USER_A, "LaunchVm",
                                                 "('x', {'tap': <'eth0'>}, @h 0, @h 1)", kernel, rootfs_ro, NULL);
  /* The user cannot produce an fd for a file it cannot read. */
  g_autoptr(BgCallResult) shadow = bg_harness_call (f->h, BG_TEST_USER_A, "LaunchVm",
                                                    "('x', @a{sv} {}, @h 0, @h 1)", "--fd=/etc/shadow",
                                                    rootfs_ro, NULL);

  /* A file the user may only write (root's, 0622) cannot be read back
   * through a VM; an O_PATH descriptor opens nothing; a sparse "kernel"
   * of any size is refused before anything reads it. */
  g_autofree char *secret = g_build_filename (f->files, "secret", NULL);
  g_autofree char *huge = g_build_filename (f->files, "huge", NULL);
  g_autofree char *secret_w = NULL, *kernel_path = NULL, *huge_fd = NULL;
  g_autofree char *rootfs_rw = g_strdup_printf ("--fd=%s/rootfs.ext4:rw", f->files);
  g_autoptr(BgCallResult) wronly = NULL, opath = NULL, sparse = NULL;
  int fd;

  g_assert_true (g_file_set_contents (secret, "root's secret\n", -1, NULL));
  g_assert_no_errno (chown (secret, 0, 0));
  g_assert_no_errno (chmod (secret, 0622));
  fd = open (huge, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  g_assert_no_errno (ftruncate (fd, G_GINT64_CONSTANT (1) << 30));
  close (fd);
  secret_w = g_strdup_printf ("--fd=%s:w", secret);
  kernel_path = g_strdup_printf ("--fd=%s/vmlinux:path", f->files);
  huge_fd = g_strdup_printf ("--fd=%s", huge);
  wronly = bg_harness_call (f->h, BG_TEST_USER_A, "LaunchVm", "('x', @a{sv} {}, @h 0, @h 1)", secret_w,
                            rootfs_ro, NULL);
  opath = bg_harness_call (f->h, BG_TEST_USER_A, "LaunchVm", "('x', @a{sv} {}, @h 0, @h 1)", kernel_path,
                           rootfs_ro, NULL);
  sparse = bg_harness_call (f->h, BG_TEST_USER_A, "LaunchVm", "('x', @a{sv} {}, @h 0, @h 1)", huge_fd,
                            rootfs_rw, NULL);
  bg_assert_call_error (wronly, "org.banger.Mechanism1.Error.InvalidArgument", "kernel: must be opened for reading");
  bg_assert_call_error (opath, "org.banger.Mechanism1.Error.InvalidArgument", "kernel: an O_PATH");
  bg_assert_call_error (sparse, "org.banger.Mechanism1.Error.InvalidArgument",
                        "kernel: 1.0G is larger than the 512.0M a boot file may be");

  bg_assert_call_error (ro, "org.banger.Mechanism1.Error.InvalidArgument", "rootfs: must be opened read-write");
  bg_assert_call_error (a_dir, "org.banger.Mechanism1.Error.InvalidArgument", "kernel: must be a regular file");
  bg_assert_call_error (missing, "org.banger.Mechanism1.Error.InvalidArgument", "rootfs: no such file descriptor");
  bg_assert_call_error (key, "org.banger.Mechanism1.Error.InvalidArgument", "options: unknown key \"vmm\"");
  bg_assert_call_error (tap, "org.banger.Mechanism1.Error.InvalidArgument", "options: tap");
  g_assert_true (shadow->open_failed);
}

/* Each per-user limit stops the user at it, naming the setting, while
 * another user still gets the same. */
static void
test_limits_stop_one_user_not_another (Fixture *f, gconstpointer data)
{
  struct passwd *pb = getpwnam (BG_TEST_USER_B);
  g_autofree char *conf = vmm_conf (g_getenv ("BANGER_TEST_VMM"), "[limits]\nvms=1\ntaps=2\nloops=1\n");
  g_autofree char *files_a = g_strdup (f->files);
  g_autofree char *files_b = g_build_filename (f->h->tmp, "files-b", NULL);
  g_autofree char *rootfs_a = g_strdup_printf ("--fd=%s/rootfs.ext4", files_a);
  g_autofree char *rootfs_b = g_strdup_printf ("--fd=%s/rootfs.ext4", files_b);
  const char *tap_args[] = { "('ta1', @a{sv} {})", "('ta2', @a{sv} {})" };

  restart_with_config (f, conf);
  g_assert_no_errno (g_mkdir (files_b, 0700));
  g_assert_no_errno (chown (files_b, pb->pw_uid, pb->pw_gid));
  {
    g_autofree char *k = g_build_filename (files_b, "vmlinux", NULL);
    g_autofree char *r = g_build_filename (files_b, "rootfs.ext4", NULL);
    g_autofree char *c = g_build_filename (files_b, "console.log", NULL);
    write_owned (k, 4096, pb->pw_uid, 0644);
    write_owned (r, 4 << 20, pb->pw_uid, 0600);
    write_owned (c, 0, pb->pw_uid, 0600);
  }

  /* Running VMs. */
  {
    g_autoptr(Launched) one = launch (f, BG_TEST_USER_A, "q1", NULL);
    g_autoptr(BgCallResult) two = launch_call (f, BG_TEST_USER_A, "q2", NULL);
    g_autoptr(Launched) other = NULL;
    g_autoptr(BgCallResult) k1 = NULL, k2 = NULL;

    bg_assert_call_error (two, "org.banger.Mechanism1.Error.LimitExceeded", "you have 1 running VM,");
    g_assert_nonnull (strstr (two->message, "vms=1 in [limits]"));
    g_free (f->files);
    f->files = g_strdup (files_b);
    other = launch (f, BG_TEST_USER_B, "qb", NULL);
    g_free (f->files);
    f->files = g_strdup (files_a);
    k1 = bg_harness_call (f->h, BG_TEST_USER_A, "KillVm", "('q1',)", NULL);
    k2 = bg_harness_call (f->h, BG_TEST_USER_B, "KillVm", "('qb',)", NULL);
    bg_assert_call_ok (k1);
    bg_assert_call_ok (k2);
    wait_exit (f, "q1");
    wait_exit (f, "qb");
  }

  /* Taps. */
  for (guint i = 0; i < G_N_ELEMENTS (tap_args); i++)
    {
      g_autoptr(BgCallResult) t = bg_harness_call (f->h, BG_TEST_USER_A, "CreateTap", tap_args[i], NULL);
      bg_assert_call_ok (t);
    }
  {
    g_autoptr(BgCallResult) third = bg_harness_call (f->h, BG_TEST_USER_A, "CreateTap", "('ta3', @a{sv} {})", NULL);
    g_autoptr(BgCallResult) again = bg_harness_call (f->h, BG_TEST_USER_A, "CreateTap", "('ta1', @a{sv} {})", NULL);
    g_autoptr(BgCallResult) other = bg_harness_call (f->h, BG_TEST_USER_B, "CreateTap", "('tb', @a{sv} {})", NULL);

    bg_assert_call_error (third, "org.banger.Mechanism1.Error.LimitExceeded", "you have 2 taps");
    g_assert_nonnull (strstr (third->message, "taps=2"));
    /* Asking again for a tap one has is not a new one. */
    bg_assert_call_ok (again);
    bg_assert_call_ok (other);
  }
  /* Usage next to the limits: one's own, or everyone's for an admin. */
  {
    g_autoptr(BgCallResult) mine = bg_harness_call (f->h, BG_TEST_USER_A, "ListResources",
                                                    "({'usage': <true>},)", NULL);
    g_autoptr(BgCallResult) all = bg_harness_call (f->h, NULL, "ListResources",
                                                   "({'usage': <true>, 'all-users': <true>},)", NULL);
    g_autoptr(BgCallResult) peek = bg_harness_call (f->h, BG_TEST_USER_A, "ListResources",
                                                    "({'usage': <true>, 'all-users': <true>},)", NULL);

    bg_assert_call_ok (mine);
    g_assert_nonnull (strstr (mine->reply, "('usage', '" BG_TEST_USER_A "',"));
    g_assert_nonnull (strstr (mine->reply, "'taps': <uint32 2>"));
    g_assert_nonnull (strstr (mine->reply, "'taps-limit': <uint32 2>"));
    g_assert_nonnull (strstr (mine->reply, "'vms': <uint32 0>"));
    g_assert_nonnull (strstr (mine->reply, "'vms-limit': <uint32 1>"));
    g_assert_null (strstr (mine->reply, BG_TEST_USER_B));
    bg_assert_call_ok (all);
    g_assert_nonnull (strstr (all->reply, "('usage', '" BG_TEST_USER_A "',"));
    g_assert_nonnull (strstr (all->reply, "('usage', '" BG_TEST_USER_B "',"));
    bg_assert_call_error (peek, "org.banger.Mechanism1.Error.NotAuthorized", NULL);
  }

  /* Loop devices. */
  {
    g_autoptr(BgCallResult) one = bg_harness_call (f->h, BG_TEST_USER_A, "AttachLoop", "(@h 0, true)", rootfs_a, NULL);
    g_autoptr(BgCallResult) two = bg_harness_call (f->h, BG_TEST_USER_A, "AttachLoop", "(@h 0, true)", rootfs_a, NULL);
    g_autoptr(BgCallResult) other = bg_harness_call (f->h, BG_TEST_USER_B, "AttachLoop", "(@h 0, true)", rootfs_b,
                                                     NULL);
    g_autofree char *a_loop = NULL, *b_loop = NULL;

    bg_assert_call_ok (one);
    bg_assert_call_error (two, "org.banger.Mechanism1.Error.LimitExceeded", "you have 1 loop device,");
    g_assert_nonnull (strstr (two->message, "loops=1"));
    bg_assert_call_ok (other);
    a_loop = g_strndup (strstr (one->reply, "loop"), strspn (strstr (one->reply, "loop") + 4, "0123456789") + 4);
    b_loop = g_strndup (strstr (other->reply, "loop"), strspn (strstr (other->reply, "loop") + 4, "0123456789") + 4);
    {
      g_autofree char *da = g_strdup_printf ("('%s',)", a_loop), *db = g_strdup_printf ("('%s',)", b_loop);
      g_autoptr(BgCallResult) ra = bg_harness_call (f->h, BG_TEST_USER_A, "DetachLoop", da, NULL);
      g_autoptr(BgCallResult) rb = bg_harness_call (f->h, BG_TEST_USER_B, "DetachLoop", db, NULL);
      bg_assert_call_ok (ra);
      bg_assert_call_ok (rb);
    }
  }
}

/* A VMM that floods its console and then tries to leave its
 * confinement: the console log stays within console-size, and the VMM
 * gets no user namespace, no IP socket (so no loopback listener of the
 * host) and no abstract unix socket of the host, on any kernel. Launched
 * layered, it can neither reopen the shared base for writing nor
 * discard or zero its own writable disk (on a kernel that does not
 * refuse a discard on a read-only loop device, that is how a shared
 * base's file would lose its blocks). */
static void
test_hostile_vmm_stays_confined (Fixture *f, gconstpointer data)
{
  g_autofree char *conf = vmm_conf (g_getenv ("BANGER_VMM_HOSTILE"), "[limits]\nconsole-size=1M\n");
  g_autofree char *console = g_build_filename (f->files, "console.log", NULL);
  g_autofree char *text = NULL;
  g_autofree char *base = g_build_filename (f->files, "base.ext4", NULL);
  g_autofree char *base_fd = g_strdup_printf ("--fd=%s", base);
  g_autofree char *kernel = g_strdup_printf ("--fd=%s/vmlinux", f->files);
  g_autofree char *rootfs = g_strdup_printf ("--fd=%s/rootfs.ext4:rw", f->files);
  g_autofree char *console_fd = g_strdup_printf ("--fd=%s:rw", console);
  g_autoptr(BgCallResult) launched = NULL, kill = NULL;
  struct sockaddr_in local = { AF_INET, htons (47391), { htonl (INADDR_LOOPBACK) } };
  struct sockaddr_un abstract = { AF_UNIX };
  int tcp = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int unx = socket (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  long abi = syscall (SYS_landlock_create_ruleset, NULL, 0, 1U);
  struct stat st;

  setsockopt (tcp, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  g_assert_no_errno (bind (tcp, (struct sockaddr *) &local, sizeof local));
  g_assert_no_errno (listen (tcp, 4));
  memcpy (abstract.sun_path + 1, "bg-test-abstract", 16);
  g_assert_no_errno (bind (unx, (struct sockaddr *) &abstract, offsetof (struct sockaddr_un, sun_path) + 17));
  g_assert_no_errno (listen (unx, 4));
  restart_with_config (f, conf);

  write_owned (base, 4 << 20, bg_harness_uid (BG_TEST_USER_A), 0600);
  launched = bg_harness_call (f->h, BG_TEST_USER_A, "LaunchVm",
                              "('hostile', {'console': <@h 2>, 'base': <@h 3>}, @h 0, @h 1)", kernel, rootfs,
                              console_fd, base_fd, NULL);
  bg_assert_call_ok (launched);
  for (gint64 end = bg_test_deadline (60); g_get_monotonic_time () < end;)
    {
      g_clear_pointer (&text, g_free);
      if (g_file_get_contents (console, &text, NULL, NULL) && strstr (text, "\ndone\n") != NULL)
        break;
      g_usleep (100 * 1000);
    }
  g_assert_nonnull (strstr (text, "\ndone\n"));

  /* 16 MiB written; the log holds at most its limit. */
  g_assert_no_errno (stat (console, &st));
  g_assert_cmpint (st.st_size, <=, 1 << 20);
  g_assert_nonnull (strstr (text, "earlier output was dropped"));

  g_assert_nonnull (strstr (text, "unshare: Operation not permitted\n"));
  g_assert_nonnull (strstr (text, "tcp: Address family not supported by protocol\n"));
  g_assert_nonnull (strstr (text, "udp: Address family not supported by protocol\n"));
  /* Its disk is its own descriptor, not a node it could name again, and
   * it cannot change what a loop device is on. */
  g_assert_nonnull (strstr (text, "block nodes: 0\n"));
  g_assert_nonnull (strstr (text, "open rootfs: allowed\n"));
  g_assert_nonnull (strstr (text, "loop status: Operation not permitted\n"));
  g_assert_nonnull (strstr (text, "loop change: Operation not permitted\n"));
  /* The shared base's node is root's, readable by the jail's group
   * only: the reopen checks the node, so no writable descriptor. */
  g_assert_nonnull (strstr (text, "rootfs rw: Permission denied\n"));
  g_assert_nonnull (strstr (text, "\ndiscard: Operation not permitted\n"));
  g_assert_nonnull (strstr (text, "secure discard: Operation not permitted\n"));
  g_assert_nonnull (strstr (text, "zeroout: Operation not permitted\n"));
  /* Landlock scopes refuse it where the kernel has them; elsewhere its
   * own network namespace has no such name. */
  g_assert_nonnull (strstr (text, abi >= 6 ? "abstract: Operation not permitted\n"
                                           : "abstract: Connection refused\n"));
  g_assert_cmpint (accept (tcp, NULL, NULL), <, 0);
  g_assert_cmpint (accept (unx, NULL, NULL), <, 0);

  kill = bg_harness_call (f->h, BG_TEST_USER_A, "KillVm", "('hostile',)", NULL);
  bg_assert_call_ok (kill);
  wait_exit (f, "hostile");
  close (tcp);
  close (unx);
}

/* The console log on a full filesystem: the mechanism (root, but without
 * CAP_SYS_RESOURCE) cannot write into the root reserve; the log stops
 * growing and the VMM runs on. */
static void
test_console_never_uses_the_root_reserve (Fixture *f, gconstpointer data)
{
  struct passwd *pw = getpwnam (BG_TEST_USER_A);
  g_autofree char *conf = vmm_conf (g_getenv ("BANGER_VMM_HOSTILE"), "[limits]\nconsole-size=1G\n");
  g_autofree char *image = g_build_filename (f->h->tmp, "small.ext4", NULL);
  g_autofree char *mnt = g_build_filename (f->h->tmp, "small", NULL);
  g_autofree char *filler = g_build_filename (mnt, "filler", NULL);
  g_autofree char *console = g_build_filename (mnt, "console.log", NULL);
  g_autofree char *kernel = g_strdup_printf ("--fd=%s/vmlinux", f->files);
  g_autofree char *rootfs = g_strdup_printf ("--fd=%s/rootfs.ext4:rw", f->files);
  g_autofree char *console_fd = g_strdup_printf ("--fd=%s:rw", console);
  g_autofree char *flooded = NULL;
  g_autoptr(BgCallResult) r = NULL, kill = NULL;
  struct statvfs before, after;
  int status, fd;

  {
    const char *mk[] = { "mke2fs", "-q", "-F", "-t", "ext4", "-m", "50", image, "16M", NULL };
    const char *mount_argv[] = { "mount", "-o", "loop", image, mnt, NULL };
    bg_harness_run_argv (mk, NULL, &status);
    g_assert_cmpint (status, ==, 0);
    g_assert_no_errno (g_mkdir (mnt, 0755));
    bg_harness_run_argv (mount_argv, NULL, &status);
    g_assert_cmpint (status, ==, 0);
  }
  g_assert_no_errno (chown (mnt, pw->pw_uid, pw->pw_gid));
  write_owned (console, 0, pw->pw_uid, 0600);
  /* Everything but the reserve taken. */
  g_assert_no_errno (statvfs (mnt, &before));
  fd = open (filler, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  g_assert_no_errno (fallocate (fd, 0, 0, (off_t) before.f_bavail * before.f_frsize));
  close (fd);
  sync ();
  g_assert_no_errno (statvfs (mnt, &before));
  g_assert_cmpuint (before.f_bavail, ==, 0);
  g_assert_cmpuint (before.f_bfree, >, 1000);
  restart_with_config (f, conf);

  r = bg_harness_call (f->h, BG_TEST_USER_A, "LaunchVm", "('flood', {'console': <@h 2>}, @h 0, @h 1)", kernel,
                       rootfs, console_fd, NULL);
  bg_assert_call_ok (r);
  {
    g_autoptr(GVariant) v = g_variant_parse (G_VARIANT_TYPE ("(ssta{sv})"), r->reply, NULL, NULL, NULL);
    g_autoptr(GVariant) paths = g_variant_get_child_value (v, 3);
    g_autofree char *root = NULL, *jail = NULL;

    g_assert_true (g_variant_lookup (paths, "jail", "s", &root));
    jail = g_path_get_dirname (root);
    flooded = g_build_filename (jail, "run", "flooded", NULL);
  }
  for (gint64 end = bg_test_deadline (60); g_get_monotonic_time () < end && !g_file_test (flooded, G_FILE_TEST_EXISTS);)
    g_usleep (100 * 1000);
  g_assert_true (g_file_test (flooded, G_FILE_TEST_EXISTS));
  sync ();
  g_assert_no_errno (statvfs (mnt, &after));
  /* Not one block of the reserve went to the log. */
  g_assert_cmpuint (after.f_bfree, ==, before.f_bfree);

  kill = bg_harness_call (f->h, BG_TEST_USER_A, "KillVm", "('flood',)", NULL);
  bg_assert_call_ok (kill);
  wait_exit (f, "flood");
  umount2 (mnt, MNT_DETACH);
}

typedef struct {
  GPid              pid;
  int               in;
  GDataInputStream *out;
} Listener;

static void
listener_start (Fixture *f, Listener *l, const char *user)
{
  const char *argv[] = { g_getenv ("BANGER_TEST_LISTEN"), "--user", user, NULL };
  g_auto(GStrv) envp = g_environ_setenv (g_get_environ (), "DBUS_SYSTEM_BUS_ADDRESS", f->h->bus_address, TRUE);
  g_autoptr(GError) error = NULL;
  g_autofree char *ready = NULL;
  int out;

  g_assert_true (g_spawn_async_with_pipes (NULL, (char **) argv, envp, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
                                           &l->pid, &l->in, &out, NULL, &error));
  l->out = g_data_input_stream_new (g_unix_input_stream_new (out, TRUE));
  ready = g_data_input_stream_read_line (l->out, NULL, NULL, &error);
  g_assert_cmpstr (ready, ==, "READY");
}

/* Everything it heard, once every signal sent so far has arrived. */
static char *
listener_finish (Listener *l)
{
  GString *heard = g_string_new (NULL);
  char *line;

  close (l->in);
  while ((line = g_data_input_stream_read_line (l->out, NULL, NULL, NULL)) != NULL && !g_str_equal (line, "END"))
    {
      g_string_append_printf (heard, "%s\n", line);
      g_free (line);
    }
  g_free (line);
  waitpid (l->pid, NULL, 0);
  g_object_unref (l->out);
  return g_string_free (heard, FALSE);
}

/* VmExited reaches the VM's owner (and root), not another user. */
static void
test_vm_exits_reach_only_their_owner (Fixture *f, gconstpointer data)
{
  Listener a = { 0 }, b = { 0 };
  g_autoptr(Launched) l = NULL;
  g_autoptr(BgCallResult) kill = NULL;
  g_autofree char *heard_a = NULL, *heard_b = NULL;
  g_autofree char *expect = g_strdup_printf ("EXIT private %u 137\n", bg_harness_uid (BG_TEST_USER_A));

  listener_start (f, &a, BG_TEST_USER_A);
  listener_start (f, &b, BG_TEST_USER_B);
  l = launch (f, BG_TEST_USER_A, "private", NULL);
  kill = bg_harness_call (f->h, BG_TEST_USER_A, "KillVm", "('private',)", NULL);
  bg_assert_call_ok (kill);
  g_assert_cmpint (wait_exit (f, "private"), ==, 137);
  heard_a = listener_finish (&a);
  heard_b = listener_finish (&b);
  g_assert_cmpstr (heard_a, ==, expect);
  g_assert_cmpstr (heard_b, ==, "");
}

/* The file of VM @id's record. */
static char *
record_path (Fixture *f, const char *id)
{
  g_autofree char *leaf = g_strdup_printf ("%s.json", id);

  return g_build_filename (f->h->run_dir, "registry", "vm", leaf, NULL);
}

/* Stops the mechanism (its VMMs are left for the next one) and reads the
 * record of VM @id into @parser; @dict gets its details. */
static JsonObject *
stop_and_read_record (Fixture *f, const char *id, JsonParser *parser, GVariantDict *dict)
{
  g_autofree char *path = record_path (f, id);
  g_autoptr(GVariant) details = NULL;
  GPid pid = bg_harness_mechanism_pid (f->h);
  JsonObject *o;

  if (pid > 0)
    {
      kill (pid, SIGTERM);
      g_assert_true (bg_harness_wait_name_gone (f->h, 20));
    }
  g_assert_true (json_parser_load_from_file (parser, path, NULL));
  o = json_node_get_object (json_parser_get_root (parser));
  details = g_variant_parse (G_VARIANT_TYPE_VARDICT, json_object_get_string_member (o, "details"),
                             NULL, NULL, NULL);
  g_assert_nonnull (details);
  g_variant_dict_init (dict, details);
  return o;
}

/* Writes @parser's record, its details now @dict's, to @path. */
static void
write_record (JsonParser *parser, JsonObject *o, GVariantDict *dict, const char *path)
{
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(GVariant) forged = g_variant_ref_sink (g_variant_dict_end (dict));
  g_autofree char *printed = g_variant_print (forged, TRUE);

  json_object_set_string_member (o, "details", printed);
  json_generator_set_root (gen, json_parser_get_root (parser));
  g_assert_true (json_generator_to_file (gen, path, NULL));
}

/* Stops the mechanism and rewrites the record of VM @id: @key becomes
 * @value in its details. */
static void
forge_record (Fixture *f, const char *id, const char *key, GVariant *value)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autofree char *path = record_path (f, id);
  GVariantDict dict;
  JsonObject *o;

  g_variant_ref_sink (value);
  o = stop_and_read_record (f, id, parser, &dict);
  g_variant_dict_insert_value (&dict, key, value);
  write_record (parser, o, &dict, path);
  g_variant_unref (value);
}

/* The registry is a record, not the truth. A record forged to name a
 * process of user B (with its real start time) is not adopted after a
 * restart: the process does not run as the VM's jail uid. And the
 * cleanup that follows cannot kill it: the mechanism has no CAP_KILL and
 * signals a VMM as the VMM's own jail uid. */
static void
test_forged_record_kills_nothing_else (Fixture *f, gconstpointer data)
{
  g_autoptr(Launched) l = launch (f, BG_TEST_USER_A, "forged", NULL);
  g_autofree char *id = id_of (BG_TEST_USER_A, "forged");
  guint64 start = 0;
  GPid victim;

  victim = bg_harness_spawn_user_process (BG_TEST_USER_B, &start);
  forge_record (f, id, "pid", g_variant_new_uint64 (victim));
  forge_record (f, id, "start-time", g_variant_new_uint64 (start));
  kill ((pid_t) l->pid, SIGKILL);

  /* Activated again: the VM is found gone and cleaned up; B's process
   * still runs. */
  g_assert_true (nothing_left (f, id));
  g_assert_cmpint (waitpid (victim, NULL, WNOHANG), ==, 0);
  kill (victim, SIGKILL);
  waitpid (victim, NULL, 0);
}

/* A record naming a root process (with the VM's jail uid): judged gone,
 * and its cleanup signals nothing, not even as the mechanism's own uid. */
static void
test_forged_record_never_signals_root (Fixture *f, gconstpointer data)
{
  g_autoptr(Launched) l = launch (f, BG_TEST_USER_A, "forged", NULL);
  g_autofree char *id = id_of (BG_TEST_USER_A, "forged");
  guint64 start = 0;
  GPid victim;

  victim = bg_harness_spawn_user_process ("root", &start);
  forge_record (f, id, "pid", g_variant_new_uint64 (victim));
  forge_record (f, id, "start-time", g_variant_new_uint64 (start));
  kill ((pid_t) l->pid, SIGKILL);

  g_assert_true (nothing_left (f, id));
  g_assert_cmpint (waitpid (victim, NULL, WNOHANG), ==, 0);
  kill (victim, SIGKILL);
  waitpid (victim, NULL, 0);
}

/* A record naming user B's process with B's uid as its "jail uid" is not
 * adopted (no jail uid), so the owner's KillVm cannot reach B's process. */
static void
test_forged_record_adopts_no_user_process (Fixture *f, gconstpointer data)
{
  g_autoptr(Launched) l = launch (f, BG_TEST_USER_A, "forged", NULL);
  g_autofree char *id = id_of (BG_TEST_USER_A, "forged");
  g_autoptr(BgCallResult) kill_r = NULL;
  guint64 start = 0;
  GPid victim;

  victim = bg_harness_spawn_user_process (BG_TEST_USER_B, &start);
  forge_record (f, id, "pid", g_variant_new_uint64 (victim));
  forge_record (f, id, "start-time", g_variant_new_uint64 (start));
  forge_record (f, id, "uid", g_variant_new_uint32 (bg_harness_uid (BG_TEST_USER_B)));
  kill ((pid_t) l->pid, SIGKILL);

  kill_r = bg_harness_call (f->h, BG_TEST_USER_A, "KillVm", "('forged',)", NULL);
  g_assert_true (nothing_left (f, id));
  g_assert_cmpint (waitpid (victim, NULL, WNOHANG), ==, 0);
  kill (victim, SIGKILL);
  waitpid (victim, NULL, 0);
}

/* Stops the mechanism and writes a second record, VM @vm of @user, as a
 * copy of the record of VM @id: the same process and jail uid. */
static void
forge_copy (Fixture *f, const char *id, const char *user, const char *vm)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autofree char *copy_id = id_of (user, vm);
  g_autofree char *copy = record_path (f, copy_id);
  GVariantDict dict;
  JsonObject *o;

  o = stop_and_read_record (f, id, parser, &dict);
  g_variant_dict_insert (&dict, "vm", "s", vm);
  json_object_set_string_member (o, "name", copy_id);
  json_object_set_int_member (o, "owner", bg_harness_uid (user));
  write_record (parser, o, &dict, copy);
}

/* Whether @pid runs (exists and is not a zombie). */
static gboolean
process_runs (guint64 pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%" G_GUINT64_FORMAT "/stat", pid);
  g_autofree char *stat = NULL;
  const char *end;

  if (!g_file_get_contents (path, &stat, NULL, NULL) || (end = strrchr (stat, ')')) == NULL)
    return FALSE;
  return end[1] == ' ' && end[2] != 'Z' && end[2] != 'X';
}

/* Two records claiming one VMM (user B's forged as a copy of user A's:
 * the same process, start time and jail uid) cannot say whose it is:
 * neither is adopted, so B's KillVm cannot reach A's VMM, and neither
 * cleanup signals it. */
static void
test_forged_record_shares_no_process (Fixture *f, gconstpointer data)
{
  g_autoptr(Launched) l = launch (f, BG_TEST_USER_A, "claimed", NULL);
  g_autofree char *id = id_of (BG_TEST_USER_A, "claimed");
  g_autofree char *theirs = id_of (BG_TEST_USER_B, "theirs");
  g_autoptr(BgCallResult) kill_r = NULL;

  forge_copy (f, id, BG_TEST_USER_B, "theirs");
  kill_r = bg_harness_call (f->h, BG_TEST_USER_B, "KillVm", "('theirs',)", NULL);
  g_assert_true (nothing_left (f, id));
  g_assert_true (nothing_left (f, theirs));
  g_assert_true (process_runs (l->pid));
  kill ((pid_t) l->pid, SIGKILL);
}

/* The loop device behind /dev/@name: whether it is on @path's file. */
static gboolean
loop_is_on (const char *name, const char *path)
{
  g_autofree char *node = g_strdup_printf ("/dev/%s", name);
  int fd = open (node, O_RDONLY | O_CLOEXEC);
  struct loop_info64 info = { 0 };
  struct stat st;
  gboolean on;

  g_assert_no_errno (stat (path, &st));
  on = fd >= 0 && ioctl (fd, LOOP_GET_STATUS64, &info) == 0 && info.lo_device == st.st_dev &&
       info.lo_inode == st.st_ino;
  if (fd >= 0)
    close (fd);
  return on;
}

/* The loop device of a VM's root disk (fd 4 of its VMM), as "loopN". */
static char *
vm_loop (Launched *l)
{
  g_autofree char *fd4 = g_strdup_printf ("/proc/%" G_GUINT64_FORMAT "/fd/4", l->pid);
  struct stat st;

  g_assert_no_errno (stat (fd4, &st));
  g_assert_true (S_ISBLK (st.st_mode));
  return g_strdup_printf ("loop%u", minor (st.st_rdev));
}

/* A VMM holds its disks from before it runs: the mechanism stopping
 * (which closes every descriptor it held) frees no loop number a jail
 * could still name, even when the VMM never opened its disk (the test
 * VMM opens it only when asked to boot), and another user's new loop
 * device gets another number. */
static void
test_vm_disks_outlive_a_mechanism_restart (Fixture *f, gconstpointer data)
{
  g_autoptr(Launched) l = launch (f, BG_TEST_USER_A, "held", NULL);
  g_autofree char *loop = vm_loop (l);
  g_autofree char *rootfs = g_build_filename (f->files, "rootfs.ext4", NULL);
  g_autofree char *other = g_build_filename (f->h->tmp, "b.img", NULL);
  g_autofree char *other_fd = g_strdup_printf ("--fd=%s", other);
  g_autoptr(BgCallResult) attach = NULL, kill_r = NULL;
  g_autofree char *b_loop = NULL;
  GPid pid = bg_harness_mechanism_pid (f->h);

  write_owned (other, 1 << 20, bg_harness_uid (BG_TEST_USER_B), 0600);
  g_assert_true (loop_is_on (loop, rootfs));
  kill (pid, SIGTERM);
  g_assert_true (bg_harness_wait_name_gone (f->h, 20));
  g_assert_true (loop_is_on (loop, rootfs));

  attach = bg_harness_call (f->h, BG_TEST_USER_B, "AttachLoop", "(@h 0, true)", other_fd, NULL);
  bg_assert_call_ok (attach);
  b_loop = g_strndup (strstr (attach->reply, "loop"), strspn (strstr (attach->reply, "loop") + 4, "0123456789") + 4);
  g_assert_cmpstr (b_loop, !=, loop);
  g_assert_true (loop_is_on (loop, rootfs));

  kill_r = bg_harness_call (f->h, BG_TEST_USER_A, "KillVm", "('held',)", NULL);
  bg_assert_call_ok (kill_r);
  {
    g_autofree char *detach = g_strdup_printf ("('%s',)", b_loop);
    g_autoptr(BgCallResult) rb = bg_harness_call (f->h, BG_TEST_USER_B, "DetachLoop", detach, NULL);
    bg_assert_call_ok (rb);
  }
}

typedef struct {
  Fixture      *f;
  const char   *base;
  BgCallResult *result;
} LayeredLaunch;

/* VM "second" of user A, layered on the base @data->base (a thread's
 * body: the call waits while the mechanism is paused). */
static gpointer
launch_second (gpointer data)
{
  LayeredLaunch *ll = data;
  g_autofree char *kernel = g_strdup_printf ("--fd=%s/vmlinux", ll->f->files);
  g_autofree char *upper = g_strdup_printf ("--fd=%s/upper2.ext4:rw", ll->f->files);
  g_autofree char *console = g_strdup_printf ("--fd=%s/console2.log:rw", ll->f->files);
  g_autofree char *base = g_strdup_printf ("--fd=%s", ll->base);

  ll->result = bg_harness_call (ll->f->h, BG_TEST_USER_A, "LaunchVm",
                                "('second', {'console': <@h 2>, 'base': <@h 3>}, @h 0, @h 1)", kernel, upper,
                                console, base, NULL);
  return NULL;
}

/* A shared base reused after a restart, when only another VM's VMM
 * holds it, is held by the mechanism from the moment it is chosen: that
 * VMM exiting before the new VM's jail opens the device (the mechanism
 * paused there) leaves the device on the base, where autoclear would
 * have freed its number for another attacher's file. */
static void
test_reused_base_is_held (Fixture *f, gconstpointer data)
{
  uid_t uid = bg_harness_uid (BG_TEST_USER_A);
  g_autofree char *base = g_build_filename (f->files, "base.ext4", NULL);
  g_autofree char *base_fd = g_strdup_printf ("--fd=%s", base);
  g_autofree char *kernel = g_strdup_printf ("--fd=%s/vmlinux", f->files);
  g_autofree char *rootfs = g_strdup_printf ("--fd=%s/rootfs.ext4:rw", f->files);
  g_autofree char *console = g_strdup_printf ("--fd=%s/console.log:rw", f->files);
  g_autofree char *pause_at = g_build_filename (f->h->run_dir, "pause-at", NULL);
  g_autofree char *paused_at = g_build_filename (f->h->run_dir, "paused-at", NULL);
  g_autofree char *upper2 = g_build_filename (f->files, "upper2.ext4", NULL);
  g_autofree char *console2 = g_build_filename (f->files, "console2.log", NULL);
  g_autofree char *base_loop = NULL;
  g_autoptr(BgCallResult) first = NULL, kill_r = NULL;
  g_autoptr(GVariant) v = NULL;
  LayeredLaunch ll = { f, base, NULL };
  GThread *thread;
  guint64 pid = 0;
  gint64 deadline;

  write_owned (base, 4 << 20, uid, 0600);
  write_owned (upper2, 4 << 20, uid, 0600);
  write_owned (console2, 0, uid, 0600);
  first = bg_harness_call (f->h, BG_TEST_USER_A, "LaunchVm",
                           "('first', {'console': <@h 2>, 'base': <@h 3>}, @h 0, @h 1)", kernel, rootfs, console,
                           base_fd, NULL);
  bg_assert_call_ok (first);
  v = g_variant_parse (G_VARIANT_TYPE ("(ssta{sv})"), first->reply, NULL, NULL, NULL);
  g_variant_get (v, "(&s&st@a{sv})", NULL, NULL, &pid, NULL);
  /* Its base among the disks it holds. */
  for (int fd = 3; fd < 8 && base_loop == NULL; fd++)
    {
      g_autofree char *path = g_strdup_printf ("/proc/%" G_GUINT64_FORMAT "/fd/%d", pid, fd);
      g_autofree char *name = NULL;
      struct stat st;

      if (stat (path, &st) < 0 || !S_ISBLK (st.st_mode))
        continue;
      name = g_strdup_printf ("loop%u", minor (st.st_rdev));
      if (loop_is_on (name, base))
        base_loop = g_steal_pointer (&name);
    }
  g_assert_nonnull (base_loop);

  /* A restart: the mechanism no longer holds the base; the first VMM
   * does. */
  kill (bg_harness_mechanism_pid (f->h), SIGTERM);
  g_assert_true (bg_harness_wait_name_gone (f->h, 20));
  g_assert_true (g_file_set_contents (pause_at, "base-shared", -1, NULL));
  thread = g_thread_new ("launch-second", launch_second, &ll);
  deadline = bg_test_deadline (60);
  while (!g_file_test (paused_at, G_FILE_TEST_EXISTS) && g_get_monotonic_time () < deadline)
    g_usleep (10000);
  g_assert_true (g_file_test (paused_at, G_FILE_TEST_EXISTS));

  /* The last other holder goes while the second VM's jail is not yet
   * made. */
  kill ((pid_t) pid, SIGKILL);
  deadline = bg_test_deadline (30);
  while (process_runs (pid) && g_get_monotonic_time () < deadline)
    g_usleep (10000);
  g_assert_false (process_runs (pid));
  g_assert_true (loop_is_on (base_loop, base));

  g_assert_no_errno (g_unlink (pause_at));
  g_thread_join (thread);
  bg_assert_call_ok (ll.result);
  {
    /* VmExited from the restarted mechanism. */
    g_autoptr(GVariant) sub = g_dbus_connection_call_sync (f->h->bus, "org.banger.Mechanism1", "/org/banger/Mechanism1",
                                                           "org.banger.Mechanism1", "Subscribe", NULL, NULL,
                                                           G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL);
    g_assert_nonnull (sub);
  }
  kill_r = bg_harness_call (f->h, BG_TEST_USER_A, "KillVm", "('second',)", NULL);
  bg_assert_call_ok (kill_r);
  wait_exit (f, "second");
  bg_call_result_free (ll.result);
}

/* After a restart, a VM whose loop devices are not provably on its own
 * files any more (here: the record says another file) is killed, not
 * adopted. */
static void
test_recovery_kills_a_vm_whose_disks_moved (Fixture *f, gconstpointer data)
{
  g_autoptr(Launched) l = launch (f, BG_TEST_USER_A, "moved", NULL);
  g_autofree char *loop = vm_loop (l);
  g_autofree char *id = id_of (BG_TEST_USER_A, "moved");
  g_autofree char *rootfs = g_build_filename (f->files, "rootfs.ext4", NULL);
  int pidfd = syscall (SYS_pidfd_open, (pid_t) l->pid, 0);
  struct pollfd p = { pidfd, POLLIN, 0 };
  struct stat st;

  g_assert_cmpint (pidfd, >=, 0);
  g_assert_no_errno (stat (rootfs, &st));
  forge_record (f, id, "disks", g_variant_new_parsed ("[(%s, %t, %t)]", loop, (guint64) st.st_dev,
                                                        (guint64) st.st_ino + 1));
  g_assert_true (nothing_left (f, id));
  g_assert_cmpint (poll (&p, 1, 30000), ==, 1);
  close (pidfd);
}

/* ---- the host's abstract unix sockets ---- */

typedef struct {
  const char *conf;       /* [vmm] keys added to mechanism.conf */
  const char *guard;      /* HostInfo's "abstract-unix" */
  const char *reported;   /* what the VMM says of its connect */
  gboolean    reaches;    /* the host's listener sees it */
  gboolean    needs_scopes;
} AbstractCase;

static const AbstractCase abstract_netns = {
  "netns=always\nlandlock-scopes=false\n", "netns", "abstract: Connection refused\n", FALSE, FALSE };
static const AbstractCase abstract_landlock = {
  "netns=never\n", "landlock", "abstract: Operation not permitted\n", FALSE, TRUE };
/* The control: with neither protection (only a test build can say so)
 * the same VMM reaches the host's socket, so the cases above fail
 * without their protection. */
static const AbstractCase abstract_none = {
  "netns=never\nlandlock-scopes=false\n", "none", "abstract: allowed\n", TRUE, FALSE };

/* A jailed VMM connects to an abstract unix socket the test bound on the
 * host: each protection alone keeps it out, and HostInfo (system status)
 * names the one in force. */
static void
test_abstract_unix_sockets (Fixture *f, gconstpointer data)
{
  const AbstractCase *c = data;
  g_autofree char *more = g_strconcat (c->conf, "[limits]\nconsole-size=1M\n", NULL);
  g_autofree char *conf = vmm_conf (g_getenv ("BANGER_VMM_ABSTRACT"), more);
  g_autofree char *console = g_build_filename (f->files, "console.log", NULL);
  g_autofree char *text = NULL, *want_guard = NULL;
  g_autoptr(Launched) l = NULL;
  g_autoptr(BgCallResult) info = NULL, kill = NULL;
  struct sockaddr_un abstract = { AF_UNIX };
  int unx, peer = -1;
  long abi = syscall (SYS_landlock_create_ruleset, NULL, 0, 1U);

  if (c->needs_scopes && abi < 6)
    {
      g_autofree char *why = g_strdup_printf ("Landlock ABI %ld < 6 (kernel before 6.12): no scopes to test "
                                              "alone (the netns case covers this kernel)", abi);
      g_test_skip (why);
      return;
    }
  unx = socket (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  memcpy (abstract.sun_path + 1, "bg-test-abstract", 16);
  g_assert_no_errno (bind (unx, (struct sockaddr *) &abstract, offsetof (struct sockaddr_un, sun_path) + 17));
  g_assert_no_errno (listen (unx, 4));
  restart_with_config (f, conf);

  info = bg_harness_call (f->h, NULL, "HostInfo", NULL, NULL);
  bg_assert_call_ok (info);
  want_guard = g_strdup_printf ("'abstract-unix': <'%s'>", c->guard);
  g_assert_nonnull (strstr (info->reply, want_guard));
  /* system status --json names it too (its exit status says whether
   * the whole host is ready, which this one need not be). */
  {
    g_autofree char *out = NULL, *err = NULL;
    g_autoptr(JsonParser) parser = json_parser_new ();
    JsonArray *checks;
    const char *value = NULL;

    bg_harness_run_cli (f->h, BG_TEST_USER_A, &out, &err, "system", "status", "--json", NULL);
    g_assert_true (json_parser_load_from_data (parser, out, -1, NULL));
    checks = json_object_get_array_member (json_node_get_object (json_parser_get_root (parser)), "checks");
    for (guint i = 0; i < json_array_get_length (checks); i++)
      {
        JsonObject *o = json_array_get_object_element (checks, i);
        if (g_str_equal (json_object_get_string_member (o, "name"), "confinement"))
          value = json_object_get_string_member_with_default (o, "value", NULL);
      }
    g_assert_cmpstr (value, ==, c->guard);
  }

  l = launch (f, BG_TEST_USER_A, "reach", NULL);
  for (gint64 end = bg_test_deadline (30); g_get_monotonic_time () < end;)
    {
      g_clear_pointer (&text, g_free);
      if (g_file_get_contents (console, &text, NULL, NULL) && strstr (text, "abstract: ") != NULL)
        break;
      g_usleep (50 * 1000);
    }
  g_assert_nonnull (text);
  g_assert_cmpstr (strstr (text, "abstract: "), ==, c->reported);
  /* The VMM reported after its connect returned: a connection it made
   * waits in the backlog now. */
  peer = accept (unx, NULL, NULL);
  if (c->reaches)
    {
      char hello[5];
      g_assert_cmpint (peer, >=, 0);
      g_assert_cmpint (read (peer, hello, 5), ==, 5);
      g_assert_cmpmem (hello, 5, "hello", 5);
      close (peer);
    }
  else
    g_assert_cmpint (peer, <, 0);

  kill = bg_harness_call (f->h, BG_TEST_USER_A, "KillVm", "('reach',)", NULL);
  bg_assert_call_ok (kill);
  wait_exit (f, "reach");
  close (unx);
}

#define BG_TEST_NETNS_PEER "host0"   /* netns.h's BG_NETNS_PEER */

/* What the command @argv0 ... NULL printed; it must exit 0. */
static char *
run_out (const char *argv0, ...)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  const char *a;
  char *out = NULL;
  int status;
  va_list ap;

  g_ptr_array_add (argv, (gpointer) argv0);
  va_start (ap, argv0);
  while ((a = va_arg (ap, const char *)) != NULL)
    g_ptr_array_add (argv, (gpointer) a);
  va_end (ap);
  g_ptr_array_add (argv, NULL);
  bg_harness_run_argv ((const char * const *) argv->pdata, &out, &status);
  g_assert_cmpint (status, ==, 0);
  return out;
}

/* /sys/class/net/@link/@attr, stripped, or NULL. */
static char *
sys_net (const char *link, const char *attr)
{
  g_autofree char *path = g_strdup_printf ("/sys/class/net/%s/%s", link, attr);
  char *text = NULL;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return NULL;
  return g_strstrip (text);
}

/* Whether @link is a tap (a tun device) of the host's, attached to a
 * bridge, and owned by @uid. */
static gboolean
host_tap_in_place (const char *link, uid_t uid)
{
  g_autofree char *flags = sys_net (link, "tun_flags");
  g_autofree char *owner = sys_net (link, "owner");
  g_autofree char *master = g_strdup_printf ("/sys/class/net/%s/master", link);

  return flags != NULL && owner != NULL && strtoul (owner, NULL, 10) == uid &&
         g_file_test (master, G_FILE_TEST_EXISTS);
}

/* The network namespace of process @pid, as an inode number. */
static guint64
netns_of (const char *pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%s/ns/net", pid);
  struct stat st;

  g_assert_no_errno (stat (path, &st));
  return st.st_ino;
}

/* With a network namespace of its own (forced here; the default where
 * Landlock scopes are missing), a VMM still opens its tap by name and
 * boots, its tap in its namespace and the jail uid's; on the host the
 * tap's name is a veth on the bridge, which the bridge's guards name.
 * When the VM ends, the veth and the namespace go and the tap is its
 * owner's again on the bridge, as before the launch; also for a VM the
 * mechanism adopted after a restart. */
static void
test_vmm_in_its_own_netns_keeps_its_tap (Fixture *f, gconstpointer data)
{
  gboolean restart = GPOINTER_TO_INT (data);
  g_autofree char *conf = vmm_conf (g_getenv ("BANGER_TEST_VMM"), "netns=always\n");
  g_autoptr(BgCallResult) tap_r = NULL, kill = NULL;
  g_autoptr(Launched) l = NULL;
  g_autofree char *tap = NULL, *mac = NULL, *opt = NULL, *boot = NULL, *pid = NULL, *links = NULL;
  g_autofree char *kind = NULL, *owner = NULL, *nsarg = NULL;
  g_autofree char *id = id_of (BG_TEST_USER_A, "apart");
  uid_t uid_a = bg_harness_uid (BG_TEST_USER_A);

  restart_with_config (f, conf);
  tap_r = bg_harness_call (f->h, BG_TEST_USER_A, "CreateTap", "('apart', @a{sv} {})", NULL);
  bg_assert_call_ok (tap_r);
  tap = bg_call_result_lookup (tap_r, "tap");
  mac = bg_call_result_lookup (tap_r, "mac");
  g_assert_true (host_tap_in_place (tap, uid_a));
  opt = g_strdup_printf ("'tap': <'%s'>", tap);
  l = launch (f, BG_TEST_USER_A, "apart", opt);
  pid = g_strdup_printf ("%" G_GUINT64_FORMAT, l->pid);

  /* The test VMM opens the tap by name at boot, in its own namespace. */
  boot = fc (BG_TEST_USER_A, l->api, "boot", tap, mac);
  g_assert_cmpstr (boot, ==, "Not started|Running|Paused|Running");
  g_assert_cmpuint (netns_of (pid), !=, netns_of ("self"));
  /* On the host: a veth of the tap's name, on the bridge, up. */
  g_assert_null (sys_net (tap, "tun_flags"));
  {
    g_autofree char *master = g_strdup_printf ("/sys/class/net/%s/master", tap);
    g_autofree char *peer = g_strdup_printf ("/sys/class/net/%s", BG_TEST_NETNS_PEER);
    g_assert_true (g_file_test (master, G_FILE_TEST_EXISTS));
    g_assert_false (g_file_test (peer, G_FILE_TEST_EXISTS));
  }
  kind = run_out ("ip", "-d", "-o", "link", "show", "dev", tap, NULL);
  g_assert_nonnull (strstr (kind, "veth"));
  /* Inside: the tap (the jail uid's), the veth's peer, the bridge tying
   * them. */
  nsarg = g_strdup_printf ("--net=/proc/%s/ns/net", pid);
  links = run_out ("nsenter", nsarg, "ip", "-d", "-o", "link", "show", NULL);
  g_assert_nonnull (strstr (links, BG_TEST_NETNS_PEER "@"));
  g_assert_nonnull (strstr (links, "master br0"));
  {
    g_autofree char *want = g_strdup_printf (": %s: ", tap);
    g_assert_nonnull (strstr (links, want));
    g_assert_nonnull (strstr (links, "tun type tap"));
  }

  if (restart)
    {
      /* Adopted by the next mechanism, then killed: still undone. */
      restart_with_config (f, conf);
      g_assert_cmpuint (netns_of (pid), !=, netns_of ("self"));
    }
  kill = bg_harness_call (f->h, BG_TEST_USER_A, "KillVm", "('apart',)", NULL);
  bg_assert_call_ok (kill);
  wait_exit (f, "apart");
  g_assert_true (nothing_left (f, id));
  g_assert_true (host_tap_in_place (tap, uid_a));
  owner = sys_net (tap, "owner");
  g_assert_cmpuint (strtoul (owner, NULL, 10), ==, uid_a);

  /* The mechanism launches in the host's namespace again, with its tap,
   * as before. */
  {
    g_autofree char *plain = vmm_conf (g_getenv ("BANGER_TEST_VMM"), "netns=never\n");
    g_autoptr(Launched) again = NULL;
    g_autoptr(BgCallResult) kill2 = NULL;

    bg_harness_write_config (f->h, "mechanism.conf", plain);
    g_autofree char *pid2 = NULL;

    again = launch (f, BG_TEST_USER_A, "apart", opt);
    pid2 = g_strdup_printf ("%" G_GUINT64_FORMAT, again->pid);
    g_assert_cmpuint (netns_of (pid2), ==, netns_of ("self"));
    kill2 = bg_harness_call (f->h, BG_TEST_USER_A, "KillVm", "('apart',)", NULL);
    bg_assert_call_ok (kill2);
    wait_exit (f, "apart");
    g_assert_true (host_tap_in_place (tap, uid_a));
  }
}

static void
add_tests (void)
{
#define ADD(path, fn) g_test_add (path, Fixture, NULL, setup, fn, teardown)
  ADD ("/vm/api-socket-is-handed-to-the-caller", test_api_socket_is_handed_to_the_caller);
  ADD ("/vm/jail-confines-the-vmm", test_jail_confines_the_vmm);
  ADD ("/vm/symlink-in-place-of-socket-is-not-followed", test_symlink_in_place_of_socket_is_not_followed);
  ADD ("/vm/vmm-exiting-at-once-fails-with-its-output", test_vmm_exiting_at_once_fails_with_its_output);
  ADD ("/vm/vmm-without-socket-times-out", test_vmm_without_socket_times_out);
  ADD ("/vm/full-sequence-through-the-api-client", test_full_sequence_through_the_api_client);
  ADD ("/vm/launch-after-create-tap-sets-up-the-network-once", test_launch_after_create_tap_sets_up_the_network_once);
  ADD ("/vm/kill-vm-by-other-user-is-not-owner", test_kill_vm_by_other_user_is_not_owner);
  ADD ("/vm/launch-refuses-bad-fds-and-options", test_launch_refuses_bad_fds_and_options);
  ADD ("/vm/limits-stop-one-user-not-another", test_limits_stop_one_user_not_another);
  ADD ("/vm/hostile-vmm-stays-confined", test_hostile_vmm_stays_confined);
  g_test_add ("/vm/abstract-unix/netns-keeps-the-vmm-out", Fixture, &abstract_netns, setup,
              test_abstract_unix_sockets, teardown);
  g_test_add ("/vm/abstract-unix/landlock-keeps-the-vmm-out", Fixture, &abstract_landlock, setup,
              test_abstract_unix_sockets, teardown);
  g_test_add ("/vm/abstract-unix/unguarded-vmm-reaches-the-host", Fixture, &abstract_none, setup,
              test_abstract_unix_sockets, teardown);
  g_test_add ("/vm/netns/vmm-keeps-its-tap", Fixture, GINT_TO_POINTER (FALSE), setup,
              test_vmm_in_its_own_netns_keeps_its_tap, teardown);
  g_test_add ("/vm/netns/adopted-vmm-is-undone", Fixture, GINT_TO_POINTER (TRUE), setup,
              test_vmm_in_its_own_netns_keeps_its_tap, teardown);
  ADD ("/vm/console-never-uses-the-root-reserve", test_console_never_uses_the_root_reserve);
  ADD ("/vm/vm-exits-reach-only-their-owner", test_vm_exits_reach_only_their_owner);
  ADD ("/vm/forged-record-kills-nothing-else", test_forged_record_kills_nothing_else);
  ADD ("/vm/forged-record-never-signals-root", test_forged_record_never_signals_root);
  ADD ("/vm/forged-record-adopts-no-user-process", test_forged_record_adopts_no_user_process);
  ADD ("/vm/forged-record-shares-no-process", test_forged_record_shares_no_process);
  ADD ("/vm/disks-outlive-a-mechanism-restart", test_vm_disks_outlive_a_mechanism_restart);
  ADD ("/vm/reused-base-is-held", test_reused_base_is_held);
  ADD ("/vm/recovery-kills-a-vm-whose-disks-moved", test_recovery_kills_a_vm_whose_disks_moved);
}

int
main (int argc, char **argv)
{
  return bg_harness_main (&argc, &argv, add_tests);
}
