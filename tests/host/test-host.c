/* The host suite: banger as installed, used the way a user meets it, on
 * a host that drifts.
 *
 * A release build of banger is installed with `meson install --destdir`
 * and made visible at its real places (/usr, /etc) by overlays, in a
 * mount namespace of the tests' own; /run and /var are fresh, empty
 * tmpfs there, so the suite neither changes nor starts from the host's
 * (a real banger's registry, jails, bus socket). The harness runs it in
 * a PID namespace of its own: the VMMs it counts and kills are its own,
 * and a bystander (a process of the first jail uid, started on the host
 * before the namespaces) proves it, untouched when the suite ends. The system bus listens where it always
 * does, with the installed activation file and bus policy; polkitd reads
 * the installed actions and group rule; the mechanism runs as installed,
 * with its defaults. The CLI runs as a test user with an empty
 * environment but HOME and Debian's login PATH (no /usr/sbin), no
 * XDG_RUNTIME_DIR and no bus address. The user's home is a filesystem of
 * its own, and the image is of real size (a 2 GiB ext4 holding 1 GiB of
 * data, a 48 MiB kernel), imported by the user. The test VMM stands in
 * for Firecracker.
 *
 * Then each row of the drift and crash table: a VM runs (or is stopped),
 * the host drifts, and a 'vm start' of that VM and a 'vm up' of a new one
 * must succeed (or fail saying what to do); 'vm rm' and 'system cleanup'
 * must then leave nothing: no taps, loops, jails, registry entries,
 * names, VM files or pinned keys, and the network as it was.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "harness.h"

#define LOGIN_PATH "/usr/local/bin:/usr/bin:/bin:/usr/games"
#define JAIL_UID_BASE 0x70000000u

static struct {
  char      *tmp;        /* everything of the suite's, outside the overlays */
  char      *root;       /* the install's DESTDIR */
  char      *home;       /* the test user's home, a filesystem of its own */
  BgHarness *h;
  char      *baseline;
  pid_t      bystander;  /* on the host, outside the tests' namespaces */
  int        bystander_pidfd;
  int        bystander_proc; /* its /proc/PID, from the host's /proc */
} S;

/* ---- running things ---- */

/* A file of the bystander's /proc/PID, read through the directory opened
 * on the host's /proc (the tests' own /proc does not show it). */
static char *
bystander_file (const char *name)
{
  g_autofree char *text = g_malloc0 (4096);
  int fd = openat (S.bystander_proc, name, O_RDONLY | O_CLOEXEC);
  ssize_t n;

  if (fd < 0)
    return NULL;
  n = read (fd, text, 4095);
  close (fd);
  return n < 0 ? NULL : g_steal_pointer (&text);
}

static int
run (const char * const *argv,
     char              **out,
     char              **err)
{
  g_autoptr(GError) error = NULL;
  int status;

  if (!g_spawn_sync ("/", (char **) argv, NULL, G_SPAWN_SEARCH_PATH | (out ? 0 : G_SPAWN_STDOUT_TO_DEV_NULL) |
                     (err ? 0 : G_SPAWN_STDERR_TO_DEV_NULL), NULL, NULL, out, err, &status, &error))
    g_error ("cannot run %s: %s", argv[0], error->message);
  return WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
}

static void
must (const char *first, ...) G_GNUC_NULL_TERMINATED;

static void
must (const char *first, ...)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autofree char *err = NULL;
  va_list ap;

  va_start (ap, first);
  for (const char *a = first; a; a = va_arg (ap, const char *))
    g_ptr_array_add (argv, (gpointer) a);
  va_end (ap);
  g_ptr_array_add (argv, NULL);
  if (run ((const char * const *) argv->pdata, NULL, &err) != 0)
    g_error ("%s failed: %s", first, err);
}

/* The installed banger, as the test user logs in: env -i, HOME, Debian's
 * login PATH, no XDG_RUNTIME_DIR, no bus address. */
static int
banger (char **out, char **err, const char *first, ...) G_GNUC_NULL_TERMINATED;

static int
banger (char **out, char **err, const char *first, ...)
{
  struct passwd *pw = getpwnam (BG_TEST_USER_A);
  g_autofree char *reuid = g_strdup_printf ("--reuid=%u", pw->pw_uid);
  g_autofree char *regid = g_strdup_printf ("--regid=%u", pw->pw_gid);
  g_autofree char *home = g_strdup_printf ("HOME=%s", S.home);
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autofree char *o = NULL, *e = NULL;
  va_list ap;
  int rc;

  g_ptr_array_add (argv, "setpriv");
  g_ptr_array_add (argv, reuid);
  g_ptr_array_add (argv, regid);
  g_ptr_array_add (argv, "--init-groups");
  g_ptr_array_add (argv, "--");
  g_ptr_array_add (argv, "env");
  g_ptr_array_add (argv, "-i");
  g_ptr_array_add (argv, home);
  g_ptr_array_add (argv, "PATH=" LOGIN_PATH);
  g_ptr_array_add (argv, "USER=" BG_TEST_USER_A);
  g_ptr_array_add (argv, "LOGNAME=" BG_TEST_USER_A);
  g_ptr_array_add (argv, "/usr/bin/banger");
  va_start (ap, first);
  for (const char *a = first; a; a = va_arg (ap, const char *))
    g_ptr_array_add (argv, (gpointer) a);
  va_end (ap);
  g_ptr_array_add (argv, NULL);
  rc = run ((const char * const *) argv->pdata, &o, &e);
  if (g_test_verbose ())
    g_printerr ("$ banger %s -> %d\n%s%s", first, rc, o, e);
  if (out)
    *out = g_steal_pointer (&o);
  if (err)
    *err = g_steal_pointer (&e);
  return rc;
}

#define banger_ok(...) G_STMT_START { \
    g_autofree char *_e = NULL; \
    if (banger (NULL, &_e, __VA_ARGS__, NULL) != 0) \
      g_error ("banger " #__VA_ARGS__ " failed: %s", _e); \
  } G_STMT_END

static char *
home_path (const char *rel)
{
  return g_build_filename (S.home, rel, NULL);
}

/* ---- what banger left ---- */

static void
list_dir (GString    *s,
          const char *label,
          const char *dir)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *e;

  while (d && (e = g_dir_read_name (d)))
    if (*e != '.')
      g_ptr_array_add (names, g_strdup (e));
  g_ptr_array_sort (names, (GCompareFunc) g_strcmp0);
  for (guint i = 0; i < names->len; i++)
    g_string_append_printf (s, "%s %s\n", label, (char *) names->pdata[i]);
}

/* Jailed VMMs: live processes of a jail uid in the tests' PID namespace
 * (its /proc shows no other; a VMM whose mechanism was killed is reaped
 * by the namespace's PID 1, and a zombie is not a VMM left running). */
static GArray *
vmm_pids (void)
{
  g_autoptr(GDir) proc = g_dir_open ("/proc", 0, NULL);
  GArray *pids = g_array_new (FALSE, FALSE, sizeof (pid_t));
  const char *e;

  while ((e = g_dir_read_name (proc)))
    {
      g_autofree char *path = g_strdup_printf ("/proc/%s/status", e);
      g_autofree char *text = NULL;
      const char *uid;
      guint64 n;

      if (!g_ascii_string_to_unsigned (e, 10, 1, G_MAXINT, &n, NULL) ||
          !g_file_get_contents (path, &text, NULL, NULL) || (uid = strstr (text, "\nUid:\t")) == NULL ||
          strstr (text, "\nState:\tZ") != NULL)
        continue;
      if (g_ascii_strtoull (uid + 6, NULL, 10) >= JAIL_UID_BASE)
        {
          pid_t pid = n;
          g_array_append_val (pids, pid);
        }
    }
  return pids;
}

static char *
snapshot (void)
{
  g_autoptr(GString) s = g_string_new (NULL);
  g_autofree char *links = NULL, *kh = NULL, *hosts = NULL, *nft = NULL;
  g_autoptr(GArray) vmms = vmm_pids ();
  g_autoptr(GDir) blocks = g_dir_open ("/sys/block", 0, NULL);
  g_autofree char *vms = home_path (".local/state/banger/vms");
  g_autofree char *khp = home_path (".local/state/banger/known_hosts");
  const char *ls[] = { "ip", "-o", "link", "show", NULL };
  const char *nft_ls[] = { "nft", "list", "table", "ip", "banger", NULL };
  const char *e;

  run (ls, &links, NULL);
  {
    g_auto(GStrv) lines = g_strsplit (links, "\n", -1);
    for (guint i = 0; lines[i]; i++)
      if (strstr (lines[i], ": bg-"))
        g_string_append_printf (s, "link %.15s\n", strstr (lines[i], "bg-"));
  }
  for (const char *kind = "tap"; kind; kind = g_str_equal (kind, "tap") ? "vm" : g_str_equal (kind, "vm") ? "loop" : NULL)
    {
      g_autofree char *args = g_strdup_printf ("({'all-users': <true>, 'kind': <'%s'>},)", kind);
      g_autoptr(BgCallResult) r = bg_harness_call (S.h, NULL, "ListResources", args, NULL);
      bg_assert_call_ok (r);
      g_string_append_printf (s, "registry %s: %s\n", kind, r->reply);
    }
  while (blocks && (e = g_dir_read_name (blocks)))
    {
      g_autofree char *bf = g_strdup_printf ("/sys/block/%s/loop/backing_file", e);
      g_autofree char *backing = NULL;
      if (g_file_get_contents (bf, &backing, NULL, NULL) && g_str_has_prefix (backing, S.home) &&
          backing[strlen (S.home)] == '/')
        g_string_append_printf (s, "loop %s -> %s", e, backing);
    }
  list_dir (s, "jail", "/run/banger/jail");
  list_dir (s, "old jail", "/var/lib/banger/jail");
  list_dir (s, "vm dir", vms);
  if (g_file_get_contents (khp, &kh, NULL, NULL) && *kh)
    g_string_append_printf (s, "known_hosts: %s", kh);
  if (g_file_get_contents ("/run/banger/hosts", &hosts, NULL, NULL))
    {
      g_auto(GStrv) lines = g_strsplit (hosts, "\n", -1);
      for (guint i = 0; lines[i]; i++)
        if (*lines[i] && *lines[i] != '#')
          g_string_append_printf (s, "name %s\n", lines[i]);
    }
  if (run (nft_ls, &nft, NULL) == 0)
    g_string_append_printf (s, "nft table: %s\n", strstr (nft, "masquerade") ? "with its rules" : "without rules");
  g_string_append_printf (s, "VMM processes: %u\n", vmms->len);
  return g_string_free (g_steal_pointer (&s), FALSE);
}

static void
assert_nothing_left (const char *after_what)
{
  g_autofree char *now = snapshot ();

  if (g_strcmp0 (now, S.baseline) != 0)
    g_error ("after %s, banger left:\n%s\nexpected:\n%s", after_what, now, S.baseline);
}

/* ---- the network as it must be ---- */

static char *
read_sysfs (const char *link,
            const char *what)
{
  g_autofree char *path = g_strdup_printf ("/sys/class/net/%s/%s", link, what);
  g_autofree char *target = NULL;
  char *text = NULL;

  if (g_str_equal (what, "master"))
    return (target = g_file_read_link (path, NULL)) ? g_path_get_basename (target) : NULL;
  if (!g_file_get_contents (path, &text, NULL, NULL))
    return NULL;
  return g_strstrip (text);
}

static JsonObject *
vm_json (const char *name)
{
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr(JsonParser) p = json_parser_new ();

  if (banger (&out, &err, "vm", "show", name, "--json", NULL) != 0)
    g_error ("vm show %s: %s", name, err);
  g_assert_true (json_parser_load_from_data (p, out, -1, NULL));
  return json_object_ref (json_node_get_object (json_parser_get_root (p)));
}

/* The VM runs, its tap is on the bridge, the bridge has its address and
 * banger's nft table its rules: drift, if any, was repaired. */
static void
assert_vm_networked (const char *name)
{
  g_autoptr(JsonObject) o = vm_json (name);
  const char *tap = json_object_get_string_member (o, "tap");
  g_autofree char *master = read_sysfs (tap, "master");
  g_autofree char *addr = NULL;
  g_autofree char *nft = NULL;
  const char *ip[] = { "ip", "-o", "-4", "addr", "show", "dev", "banger0", NULL };
  const char *nft_ls[] = { "nft", "list", "table", "ip", "banger", NULL };

  g_assert_cmpstr (json_object_get_string_member (o, "state"), ==, "running");
  g_assert_cmpstr (master, ==, "banger0");
  g_assert_cmpint (run (ip, &addr, NULL), ==, 0);
  g_assert_nonnull (strstr (addr, json_object_get_string_member (o, "gateway")));
  g_assert_cmpint (run (nft_ls, &nft, NULL), ==, 0);
  g_assert_nonnull (strstr (nft, "masquerade"));
}

/* ---- drift ---- */

static void
kill_all (GArray *pids)
{
  for (guint i = 0; i < pids->len; i++)
    kill (g_array_index (pids, pid_t, i), SIGKILL);
}

static void
wait_vmms_gone (void)
{
  for (gint64 end = bg_test_deadline (20); g_get_monotonic_time () < end;)
    {
      g_autoptr(GArray) left = vmm_pids ();
      if (left->len == 0)
        return;
      g_usleep (10000);
    }
  g_error ("VMMs did not exit");
}

static void
kill_mechanism (void)
{
  GPid pid = bg_harness_mechanism_pid (S.h);

  g_assert_cmpint (pid, >, 0);
  kill (pid, SIGKILL);
  g_assert_true (bg_harness_wait_name_gone (S.h, 20));
}

static void
drift_bridge_deleted (void)
{
  must ("ip", "link", "del", "banger0", NULL);
}

static void
drift_tap_deleted (void)
{
  g_autoptr(JsonObject) o = vm_json ("old");
  must ("ip", "link", "del", json_object_get_string_member (o, "tap"), NULL);
}

static void
drift_nft_flushed (void)
{
  must ("nft", "flush", "table", "ip", "banger", NULL);
}

static void
drift_registry_wiped (void)
{
  must ("rm", "-rf", "/run/banger/registry", NULL);
}

static void
drift_mechanism_killed (void)
{
  kill_mechanism ();
}

static void
drift_vmms_killed (void)
{
  g_autoptr(GArray) pids = vmm_pids ();

  g_assert_cmpuint (pids->len, >, 0);
  kill_all (pids);
  wait_vmms_gone ();
}

/* What a reboot or power loss leaves: no process, no link, no rule, an
 * empty /run; the state dir and the user's files as they were. */
static void
drift_reboot (void)
{
  g_autoptr(GArray) pids = vmm_pids ();
  g_autofree char *links = NULL;
  const char *ls[] = { "ip", "-o", "link", "show", NULL };
  const char *nft[] = { "nft", "delete", "table", "ip", "banger", NULL };

  kill_mechanism ();
  kill_all (pids);
  wait_vmms_gone ();
  must ("rm", "-rf", "/run/banger", NULL);
  run (ls, &links, NULL);
  {
    g_auto(GStrv) lines = g_strsplit (links, "\n", -1);
    for (guint i = 0; lines[i]; i++)
      {
        g_auto(GStrv) f = g_strsplit (lines[i], ": ", 3);
        if (g_strv_length (f) >= 2 && !g_str_equal (f[1], "lo"))
          {
            g_autofree char *name = g_strdup (f[1]);
            if (strchr (name, '@'))
              *strchr (name, '@') = '\0';
            must ("ip", "link", "del", name, NULL);
          }
      }
  }
  run (nft, NULL, NULL);
}

typedef struct {
  gboolean running;      /* the old VM runs when the host drifts */
  void   (*drift) (void);
} Row;

/* A VM 'old' (running or stopped), the drift; then 'vm start old' and
 * 'vm up new' work and find the network repaired; then removing both and
 * 'system cleanup' leave nothing. */
static void
test_row (gconstpointer data)
{
  const Row *row = data;

  banger_ok ("vm", "up", "old", "--no-wait");
  if (!row->running)
    banger_ok ("vm", "stop", "old");
  row->drift ();

  banger_ok ("vm", "start", "old", "--no-wait");
  banger_ok ("vm", "up", "new", "--no-wait");
  assert_vm_networked ("old");
  assert_vm_networked ("new");

  banger_ok ("vm", "rm", "old", "--force");
  banger_ok ("vm", "rm", "new", "--force");
  banger_ok ("system", "cleanup");
  assert_nothing_left ("the row");
}

/* The state dir cannot take the VM's disk, or anything at all: 'vm up'
 * fails, says why (and, where it copied the root, what to do), and
 * leaves nothing half-made. */
static void
full_state_dir_case (const char *disk_mode,
                     const char *tmpfs_size,
                     gboolean    says_free_space)
{
  struct passwd *pw = getpwnam (BG_TEST_USER_A);
  g_autofree char *vms = home_path (".local/state/banger/vms");
  g_autofree char *conf_dir = home_path (".config/banger");
  g_autofree char *conf = g_build_filename (conf_dir, "banger.conf", NULL);
  g_autofree char *opts = g_strdup_printf ("size=%s,mode=0700", tmpfs_size);
  g_autofree char *text = g_strdup_printf ("[vm]\ndisk-mode = %s\n", disk_mode);
  g_autofree char *err = NULL;

  g_assert_false (g_file_test (conf, G_FILE_TEST_EXISTS));
  g_assert_no_errno (g_mkdir_with_parents (conf_dir, 0755));
  g_assert_true (g_file_set_contents (conf, text, -1, NULL));
  g_assert_no_errno (chown (conf, pw->pw_uid, pw->pw_gid));
  g_assert_no_errno (mount ("tmpfs", vms, "tmpfs", MS_NOSUID | MS_NODEV, opts));
  g_assert_no_errno (chown (vms, pw->pw_uid, pw->pw_gid));
  g_assert_cmpint (banger (NULL, &err, "vm", "up", "full", "--no-wait", NULL), ==, 1);
  g_test_message ("vm up (disk-mode %s) on a %s state dir: %s", disk_mode, tmpfs_size, err);
  g_assert_nonnull (strstr (err, "No space left on device"));
  if (says_free_space)
    g_assert_nonnull (strstr (err, "free some space"));
  g_assert_nonnull (strstr (err, "everything this run created was removed"));
  g_assert_no_errno (umount (vms));
  g_assert_no_errno (unlink (conf));
  assert_nothing_left ("a vm up that ran out of space");
}

static void
test_state_dir_full (void)
{
  /* A copy of the root does not fit in 32 MiB. */
  full_state_dir_case ("copy", "32m", TRUE);
  /* A layered VM needs next to nothing, and one page is still too little. */
  full_state_dir_case ("layered", "4k", FALSE);

  banger_ok ("vm", "up", "full", "--no-wait");
  banger_ok ("vm", "rm", "full", "--force");
  banger_ok ("system", "cleanup");
  assert_nothing_left ("the VM made once there was space");
}

/* A vm.json cut short, or overwritten with junk: the error names the
 * file and what to do; 'vm rm' still removes the VM entirely. */
static void
test_record_damaged (gconstpointer data)
{
  gboolean truncate_it = GPOINTER_TO_INT (data);
  g_autofree char *path = home_path (".local/state/banger/vms/old/vm.json");
  g_autofree char *text = NULL, *err = NULL, *err2 = NULL;
  gsize len;

  banger_ok ("vm", "up", "old", "--no-wait");
  banger_ok ("vm", "stop", "old");
  g_assert_true (g_file_get_contents (path, &text, &len, NULL));
  if (truncate_it)
    g_assert_no_errno (truncate (path, len / 2));
  else
    {
      int fd = open (path, O_WRONLY | O_CLOEXEC);
      g_assert_cmpint (pwrite (fd, "\x89PNG\r\n\x1a\n", 8, 20), ==, 8);
      close (fd);
    }
  g_assert_cmpint (banger (NULL, &err, "vm", "start", "old", "--no-wait", NULL), ==, 1);
  g_assert_nonnull (strstr (err, path));
  g_assert_nonnull (strstr (err, "banger vm rm old"));
  /* The others still list; the damaged one is reported. */
  g_assert_cmpint (banger (NULL, &err2, "vm", "ls", NULL), ==, 0);
  g_assert_nonnull (strstr (err2, path));

  banger_ok ("vm", "up", "new", "--no-wait");
  banger_ok ("vm", "rm", "old");
  banger_ok ("vm", "rm", "new", "--force");
  banger_ok ("system", "cleanup");
  assert_nothing_left ("a damaged record");
}

/* The home is on another filesystem than the mechanism's run and state
 * dirs, and the kernel the VMM reads is the user's own file, not a copy. */
static void
test_home_on_another_filesystem (void)
{
  struct statfs home, run_fs, state;
  g_autoptr(GArray) pids = NULL;
  g_autofree char *kernel = home_path (".local/share/banger/images/default/vmlinux");
  g_autofree char *fd3 = NULL;
  struct stat a, b;

  g_assert_no_errno (statfs (S.home, &home));
  g_assert_no_errno (statfs ("/run/banger", &run_fs));
  g_assert_no_errno (statfs ("/var/lib/banger", &state));
  g_assert_true (memcmp (&home.f_fsid, &run_fs.f_fsid, sizeof home.f_fsid) != 0);
  g_assert_true (memcmp (&home.f_fsid, &state.f_fsid, sizeof home.f_fsid) != 0);

  banger_ok ("vm", "up", "far", "--no-wait");
  pids = vmm_pids ();
  g_assert_cmpuint (pids->len, ==, 1);
  {
    /* The very uid of the bystander on the host: told apart only by the
     * PID namespace. */
    g_autofree char *status_path = g_strdup_printf ("/proc/%d/status", g_array_index (pids, pid_t, 0));
    g_autofree char *status = NULL;
    g_autofree char *uid = g_strdup_printf ("\nUid:\t%u\t", JAIL_UID_BASE);
    g_assert_true (g_file_get_contents (status_path, &status, NULL, NULL));
    g_assert_nonnull (strstr (status, uid));
  }
  fd3 = g_strdup_printf ("/proc/%d/fd/3", g_array_index (pids, pid_t, 0));
  g_assert_no_errno (stat (fd3, &a));
  g_assert_no_errno (stat (kernel, &b));
  g_assert_cmpuint (a.st_ino, ==, b.st_ino);
  g_assert_cmpuint (a.st_dev, ==, b.st_dev);
  banger_ok ("vm", "rm", "far", "--force");
  assert_nothing_left ("a VM with its home on another filesystem");
}

/* As the user meets it: every check passes (the test VMM standing in
 * for Firecracker), but KVM on a host that has none, which the mechanism
 * reports as it finds it. */
static void
test_status_as_a_login_user (void)
{
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr(JsonParser) p = json_parser_new ();
  gboolean have_kvm = g_file_test ("/dev/kvm", G_FILE_TEST_EXISTS);
  JsonArray *checks;
  int rc = banger (&out, &err, "system", "status", "--json", NULL);

  if (!json_parser_load_from_data (p, out, -1, NULL))
    g_error ("system status: %s", err);
  checks = json_object_get_array_member (json_node_get_object (json_parser_get_root (p)), "checks");
  for (guint i = 0; i < json_array_get_length (checks); i++)
    {
      JsonObject *c = json_array_get_object_element (checks, i);
      const char *name = json_object_get_string_member (c, "name");
      const char *status = json_object_get_string_member (c, "status");
      const char *detail = json_object_get_string_member (c, "detail");

      if (g_str_equal (name, "kvm") && !have_kvm)
        {
          g_assert_cmpstr (status, ==, "missing");
          g_assert_cmpstr (detail, ==, "cannot open /dev/kvm: No such file or directory");
          g_assert_nonnull (strstr (json_object_get_string_member (c, "hint"), "kvm_intel"));
        }
      else if (!g_str_equal (status, "ok"))
        g_error ("status: %s is %s: %s", name, status, detail);
    }
  g_assert_cmpint (rc, ==, have_kvm ? 0 : 1);
}

/* ---- the bystander ---- */

/* A process of a jail uid that is none of the suite's: a `sleep` with the
 * very uid the suite's first VMM gets, started on the host, outside the
 * tests' namespaces, as a real banger's VMM (or another user's) would
 * run beside the suite. The suite must neither see nor touch it. */
static void
start_bystander (void)
{
  g_autofree char *proc = NULL;
  pid_t pid = fork ();

  g_assert_cmpint (pid, >=, 0);
  if (pid == 0)
    {
      if (setgroups (0, NULL) < 0 || setresgid (JAIL_UID_BASE, JAIL_UID_BASE, JAIL_UID_BASE) < 0 ||
          setresuid (JAIL_UID_BASE, JAIL_UID_BASE, JAIL_UID_BASE) < 0)
        _exit (127);
      /* Set after the uid change, which clears it: gone with the suite. */
      prctl (PR_SET_PDEATHSIG, SIGKILL);
      execl ("/bin/sleep", "sleep", "infinity", (char *) NULL);
      _exit (127);
    }
  S.bystander = pid;
  S.bystander_pidfd = syscall (SYS_pidfd_open, pid, 0);
  g_assert_cmpint (S.bystander_pidfd, >=, 0);
  g_assert_no_errno (fcntl (S.bystander_pidfd, F_SETFD, FD_CLOEXEC));
  proc = g_strdup_printf ("/proc/%d", (int) pid);
  S.bystander_proc = open (proc, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  g_assert_cmpint (S.bystander_proc, >=, 0);
  /* Running sleep, not still the fork of this program. */
  for (gint64 end = bg_test_deadline (10);;)
    {
      g_autofree char *comm = bystander_file ("comm");
      if (g_strcmp0 (comm, "sleep\n") == 0)
        break;
      if (g_get_monotonic_time () > end)
        g_error ("the bystander did not start sleep");
      g_usleep (10000);
    }
}

/* The suite is over (its PID namespace gone): the bystander must still
 * be running; then it is ended, and only it. */
static int
end_bystander (int rc)
{
  int status;

  if (waitpid (S.bystander, &status, WNOHANG) != 0)
    {
      g_printerr ("the bystander (pid %d, uid %#x, on the host) did not survive the suite\n", (int) S.bystander,
                  JAIL_UID_BASE);
      rc = 1;
    }
  else if (syscall (SYS_pidfd_send_signal, S.bystander_pidfd, SIGKILL, NULL, 0) == 0)
    waitpid (S.bystander, &status, 0);
  return rc;
}

/* The bystander ran beside the whole suite (every VMM count, every
 * "VMMs SIGKILLed" row, every cleanup): it still sleeps, with its uid,
 * never stopped, and it is not in the tests' PID namespace. */
static void
test_bystander_untouched (void)
{
  struct pollfd p = { .fd = S.bystander_pidfd, .events = POLLIN };
  g_autofree char *status = bystander_file ("status");
  g_autofree char *uid = g_strdup_printf ("\nUid:\t%u\t%u\t%u\t%u\n", JAIL_UID_BASE, JAIL_UID_BASE, JAIL_UID_BASE,
                                          JAIL_UID_BASE);
  g_autofree char *nspid = g_strdup_printf ("\nNSpid:\t%d\n", (int) S.bystander);

  g_assert_cmpint (poll (&p, 1, 0), ==, 0); /* not exited */
  g_assert_nonnull (status);
  g_assert_nonnull (strstr (status, "Name:\tsleep\n"));
  g_assert_nonnull (strstr (status, "\nState:\tS (sleeping)\n"));
  g_assert_nonnull (strstr (status, uid));
  /* One pid, the host's: the process lives in no namespace of ours. */
  g_assert_nonnull (strstr (status, nspid));
}

/* ---- setting up ---- */

/* A release build installed into a DESTDIR, as a package would be. */
static const char *
install_banger (void)
{
  const char *src = g_getenv ("BANGER_SOURCE_ROOT");
  const char *cache = g_getenv ("BANGER_HOST_BUILD");
  g_autofree char *tmpl = g_strdup_printf ("banger-it-%d-XXXXXX", bg_harness_run_id ());
  g_autofree char *ninja = g_build_filename (cache, "build.ninja", NULL);
  g_autofree char *meson = g_find_program_in_path ("meson");
  int rc;

  if (meson == NULL)
    return "needs meson to install banger into a scratch root";
  S.tmp = g_dir_make_tmp (tmpl, NULL);
  g_chmod (S.tmp, 0755);
  S.root = g_build_filename (S.tmp, "root", NULL);
  if (!g_file_test (ninja, G_FILE_TEST_EXISTS))
    {
      const char *setup[] = { meson, "setup", cache, src, "--prefix=/usr", "--buildtype=release",
                              "-Dtests=false", "-Dpolkit_group=" BG_TEST_GROUP, NULL };
      if ((rc = run (setup, NULL, NULL)) != 0)
        g_error ("meson setup of the installed build failed (%d)", rc);
    }
  {
    const char *compile[] = { meson, "compile", "-C", cache, NULL };
    g_autofree char *destdir = g_strdup_printf ("--destdir=%s", S.root);
    const char *install[] = { meson, "install", "-C", cache, "--no-rebuild", "--quiet", destdir, NULL };
    g_autofree char *err = NULL;

    if (run (compile, NULL, &err) != 0)
      g_error ("building banger for the install failed: %s", err);
    g_clear_pointer (&err, g_free);
    if (run (install, NULL, &err) != 0)
      g_error ("meson install failed: %s", err);
  }
  /* Last, on the host, before the harness enters the namespaces. */
  start_bystander ();
  return NULL;
}

static void
overlay (const char *target,
         const char *lower,
         gboolean    writable)
{
  g_autofree char *name = g_path_get_basename (target);
  g_autofree char *upper = g_strdup_printf ("%s/%s.upper", S.tmp, name);
  g_autofree char *work = g_strdup_printf ("%s/%s.work", S.tmp, name);
  g_autofree char *opts = NULL;

  if (writable)
    {
      g_assert_no_errno (g_mkdir (upper, 0755));
      g_assert_no_errno (g_mkdir (work, 0755));
      opts = g_strdup_printf ("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work);
    }
  else
    opts = g_strdup_printf ("lowerdir=%s", lower);
  if (mount ("overlay", target, "overlay", 0, opts) < 0)
    g_error ("cannot overlay %s (%s): %s", target, opts, g_strerror (errno));
}

typedef struct {
  const char *path;
  int         mode;      /* 0: a symlink to @target */
  const char *target;
} Entry;

/* What Debian's boot makes of an empty /run and what its base system
 * has in /var, enough for the programs the suite runs. */
static const Entry run_skeleton[] = {
  { "lock", 01777, NULL }, { "user", 0755, NULL }, { NULL, 0, NULL },
};
static const Entry var_skeleton[] = {
  { "lib", 0755, NULL }, { "cache", 0755, NULL }, { "log", 0755, NULL }, { "tmp", 01777, NULL },
  { "run", 0, "/run" }, { "lock", 0, "/run/lock" }, { NULL, 0, NULL },
};

/* An empty tmpfs over @target: nothing of the host's shows through it,
 * and nothing written there reaches the host. */
static void
fresh_tmpfs (const char  *target,
             const Entry *skeleton)
{
  if (mount ("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0)
    g_error ("cannot mount a tmpfs on %s: %s", target, g_strerror (errno));
  for (const Entry *e = skeleton; e->path; e++)
    {
      g_autofree char *path = g_build_filename (target, e->path, NULL);
      if (e->mode == 0)
        g_assert_no_errno (symlink (e->target, path));
      else
        {
          g_assert_no_errno (g_mkdir (path, e->mode));
          g_assert_no_errno (g_chmod (path, e->mode));
        }
    }
}

/* The installed files at their real places, in a mount namespace of the
 * test's own; /etc writable without touching the host, /run and /var
 * fresh and empty. */
static void
enter_installed_view (void)
{
  g_autofree char *usr = g_strdup_printf ("%s/usr:/usr", S.root);
  g_autofree char *etc = g_strdup_printf ("%s/etc:/etc", S.root);
  g_autofree char *conf = NULL, *nss = NULL;
  g_autoptr(GString) nsswitch = g_string_new (NULL);
  g_auto(GStrv) lines = NULL;

  if (unshare (CLONE_NEWNS) < 0 || mount ("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
    g_error ("cannot make a mount namespace: %s", g_strerror (errno));
  overlay ("/usr", usr, FALSE);
  overlay ("/etc", etc, TRUE);
  fresh_tmpfs ("/run", run_skeleton);
  fresh_tmpfs ("/var", var_skeleton);

  /* What an administrator sets: the VMM (the test one), and NAME.banger. */
  conf = bg_harness_vmm_section (g_getenv ("BANGER_TEST_VMM"));
  g_assert_true (g_file_set_contents ("/etc/banger/mechanism.conf", conf, -1, NULL));
  g_assert_true (g_file_get_contents ("/etc/nsswitch.conf", &nss, NULL, NULL));
  lines = g_strsplit (nss, "\n", -1);
  for (guint i = 0; lines[i]; i++)
    if (g_str_has_prefix (lines[i], "hosts:"))
      {
        /* As the package would: banger right after files. */
        g_auto(GStrv) words = g_strsplit_set (lines[i] + strlen ("hosts:"), " \t", -1);
        g_string_append (nsswitch, "hosts:");
        for (guint w = 0; words[w]; w++)
          if (*words[w])
            g_string_append_printf (nsswitch, " %s%s", words[w], g_str_equal (words[w], "files") ? " banger" : "");
        g_string_append_c (nsswitch, '\n');
      }
    else if (*lines[i] || lines[i + 1])
      g_string_append_printf (nsswitch, "%s\n", lines[i]);
  g_assert_true (g_file_set_contents ("/etc/nsswitch.conf", nsswitch->str, -1, NULL));
  g_mkdir_with_parents ("/var/lib/banger", 0700);
}

/* The user's home: an ext4 of its own, on a loop device. */
static void
make_home (void)
{
  struct passwd *pw = getpwnam (BG_TEST_USER_A);
  g_autofree char *img = g_build_filename (S.tmp, "home.img", NULL);

  S.home = g_build_filename (S.tmp, "home", NULL);
  g_assert_no_errno (g_mkdir (S.home, 0700));
  must ("truncate", "-s", "12G", img, NULL);
  must ("mke2fs", "-q", "-t", "ext4", img, NULL);
  must ("mount", "-o", "loop", img, S.home, NULL);
  g_assert_no_errno (chown (S.home, pw->pw_uid, pw->pw_gid));
  g_assert_no_errno (chmod (S.home, 0700));
}

/* An image of real size, made as the user would bring one: a 48 MiB
 * kernel, and a 2 GiB ext4 root holding 1 GiB of data. */
static void
make_image (void)
{
  struct passwd *pw = getpwnam (BG_TEST_USER_A);
  g_autofree char *src = home_path ("src");
  g_autofree char *tree = home_path ("src/tree");
  g_autofree char *data = home_path ("src/tree/data");
  g_autofree char *kernel = home_path ("src/vmlinux");
  g_autofree char *rootfs = home_path ("src/rootfs.ext4");
  g_autofree char *of = g_strdup_printf ("of=%s", data);
  guint8 head[4096] = { 0 };
  Elf64_Ehdr *eh = (Elf64_Ehdr *) head;
  int fd;

  g_assert_no_errno (g_mkdir (src, 0755));
  g_assert_no_errno (g_mkdir (tree, 0755));
  must ("dd", "if=/dev/urandom", of, "bs=1M", "count=1024", "status=none", NULL);
  must ("mke2fs", "-q", "-t", "ext4", "-d", tree, rootfs, "2G", NULL);
  g_unlink (data);
  g_rmdir (tree);

  memcpy (eh->e_ident, ELFMAG, SELFMAG);
  eh->e_ident[EI_CLASS] = ELFCLASS64;
  eh->e_type = ET_EXEC;
  eh->e_machine = EM_X86_64;
  fd = open (kernel, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  g_assert_cmpint (write (fd, head, sizeof head), ==, sizeof head);
  {
    g_autofree guint8 *block = g_malloc (1 << 20);
    for (guint i = 0; i < 48; i++)
      {
        for (guint j = 0; j < (1 << 20) / 4; j++)
          ((guint32 *) block)[j] = g_random_int ();
        g_assert_cmpint (write (fd, block, 1 << 20), ==, 1 << 20);
      }
  }
  close (fd);
  {
    g_autofree char *owner = g_strdup_printf ("%u:%u", pw->pw_uid, pw->pw_gid);
    must ("chown", "-R", owner, src, NULL);
  }
  banger_ok ("image", "import", "default", "--kernel", kernel, "--rootfs", rootfs);
  must ("rm", "-rf", src, NULL);
}

static const Row rows[] = {
  { TRUE, drift_bridge_deleted },
  { FALSE, drift_tap_deleted },
  { TRUE, drift_nft_flushed },
  { TRUE, drift_registry_wiped },
  { TRUE, drift_mechanism_killed },
  { TRUE, drift_vmms_killed },
  { TRUE, drift_reboot },
};
static const char * const row_names[] = {
  "bridge-deleted", "tap-deleted", "nft-table-flushed", "registry-wiped", "mechanism-killed", "vmms-killed",
  "reboot",
};

static void
add_tests (void)
{
  g_autofree char *version = NULL;

  enter_installed_view ();
  S.h = bg_harness_start_installed ();
  make_home ();
  g_assert_cmpint (banger (&version, NULL, "--version", NULL), ==, 0);
  g_assert_true (g_str_has_prefix (version, "banger "));
  make_image ();
  /* The network exists from the first VM on, shared: the baseline. */
  banger_ok ("vm", "up", "first", "--no-wait");
  banger_ok ("vm", "rm", "first", "--force");
  S.baseline = snapshot ();
  g_assert_nonnull (strstr (S.baseline, "nft table: with its rules"));

  g_test_add_func ("/host/status-as-a-login-user", test_status_as_a_login_user);
  g_test_add_func ("/host/home-on-another-filesystem", test_home_on_another_filesystem);
  for (guint i = 0; i < G_N_ELEMENTS (rows); i++)
    {
      g_autofree char *path = g_strdup_printf ("/host/drift/%s", row_names[i]);
      g_test_add_data_func (path, &rows[i], test_row);
    }
  g_test_add_func ("/host/drift/state-dir-full", test_state_dir_full);
  g_test_add_data_func ("/host/drift/vm-json-truncated", GINT_TO_POINTER (TRUE), test_record_damaged);
  g_test_add_data_func ("/host/drift/vm-json-corrupted", GINT_TO_POINTER (FALSE), test_record_damaged);
  /* A suite of its own, added last, so it runs after every row. */
  g_test_add_func ("/host/blast-radius/bystander-untouched", test_bystander_untouched);
}

int
main (int argc, char **argv)
{
  int rc;

  S.bystander_pidfd = S.bystander_proc = -1;
  rc = bg_harness_main_full (&argc, &argv, install_banger, add_tests);
  return S.bystander > 0 ? end_bystander (rc) : rc;
}
