/* bench-up: `banger vm up --no-wait` with the test VMM, from command
 * start to exit (the VMM accepted InstanceStart), as an unprivileged user
 * on the integration harness; mechanism cold (activated by the call) and
 * warm; broken down by step; against a baseline doing the same work
 * without banger's layers (as root: tap over netlink, spawn the test VMM,
 * the same API calls). Also `vm ls` with 256 records, peak RSS of banger
 * and banger-mechanism, and the mechanism's idle exit. Needs root. */
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <pwd.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <netlink/route/link.h>

#include "bg-fc-client.h"
#include "bg-state.h"
#include "harness.h"

#define RUNS 21

static double
now_ms (void)
{
  return g_get_monotonic_time () / 1000.0;
}

static int
cmp (gconstpointer a, gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

static double
median (GArray *a)
{
  g_array_sort (a, cmp);
  return g_array_index (a, double, a->len / 2);
}

typedef struct {
  BgHarness *h;
  char      *home;
  glong      max_rss_kb;
} Ctx;

/* Runs the CLI as the test user; returns wall ms, collects stderr. */
static double
run_cli (Ctx *c, char **err, const char * const *args)
{
  g_auto(GStrv) argv = bg_harness_cli_argv (BG_TEST_USER_A, args);
  g_auto(GStrv) envp = bg_harness_cli_envp (c->h, c->home, c->home);
  g_autoptr(GError) error = NULL;
  int status, err_fd;
  GPid pid;
  double t0, t;
  GString *text = g_string_new (NULL);
  char buf[4096];
  ssize_t n;

  envp = g_environ_setenv (envp, "BANGER_TIMINGS", "1", TRUE);
  t0 = now_ms ();
  if (!g_spawn_async_with_pipes (c->home, argv, envp,
                                 G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL,
                                 NULL, NULL, &pid, NULL, NULL, &err_fd, &error))
    g_error ("%s", error->message);
  while ((n = read (err_fd, buf, sizeof buf)) > 0)
    g_string_append_len (text, buf, n);
  close (err_fd);
  waitpid (pid, &status, 0);
  t = now_ms () - t0;
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    g_error ("banger %s failed: %s", args[1], text->str);
  /* Not ru.ru_maxrss: it includes this (large) process's pages, which
   * the child had between fork and exec. banger reports its own peak
   * with BANGER_TIMINGS. */
  {
    const char *peak = strstr (text->str, "banger: peak RSS: ");
    if (peak != NULL)
      c->max_rss_kb = MAX (c->max_rss_kb, strtol (peak + 18, NULL, 10));
  }
  if (err)
    *err = g_string_free (text, FALSE);
  else
    g_string_free (text, TRUE);
  return t;
}

/* "banger: timings: step=ms step=ms ..." */
static void
add_timings (GHashTable *steps, GPtrArray *order, const char *err)
{
  const char *line = strstr (err, "banger: timings:");
  g_autofree char *copy = NULL;
  g_auto(GStrv) pairs = NULL;

  if (line == NULL)
    return;
  copy = g_strndup (line + 16, strcspn (line + 16, "\n"));
  pairs = g_strsplit (g_strstrip (copy), " ", -1);
  for (guint i = 0; pairs[i]; i++)
    {
      char *eq = strchr (pairs[i], '=');
      GArray *a;
      double ms;

      if (eq == NULL)
        continue;
      *eq = '\0';
      ms = g_ascii_strtod (eq + 1, NULL);
      a = g_hash_table_lookup (steps, pairs[i]);
      if (a == NULL)
        {
          a = g_array_new (FALSE, FALSE, sizeof (double));
          g_hash_table_insert (steps, g_strdup (pairs[i]), a);
          g_ptr_array_add (order, g_strdup (pairs[i]));
        }
      g_array_append_val (a, ms);
    }
}

static void
remove_vm (Ctx *c, const char *name)
{
  const char *rm[] = { "vm", "rm", name, "--force", NULL };
  run_cli (c, NULL, rm);
}

/* The same work, no banger: a tap over ioctl + netlink, the test VMM
 * spawned directly, the same API calls. */
static double
baseline_once (const char *dir, const char *kernel, const char *rootfs)
{
  g_autofree char *sock = g_build_filename (dir, "api.sock", NULL);
  struct ifreq ifr = { 0 };
  struct nl_sock *sk = nl_socket_alloc ();
  struct rtnl_link *link = NULL, *bridge = NULL, *change = rtnl_link_alloc ();
  g_autoptr(BgFcClient) fc = NULL;
  g_autoptr(GError) error = NULL;
  const char *argv[] = { g_getenv ("BANGER_TEST_VMM"), "--api-sock", sock, "--id", "baseline", NULL };
  double t0 = now_ms (), t;
  int fd, ino;
  GPid pid;

  nl_connect (sk, NETLINK_ROUTE);
  fd = open ("/dev/net/tun", O_RDWR | O_CLOEXEC);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  g_strlcpy (ifr.ifr_name, "bench-tap", IFNAMSIZ);
  ioctl (fd, TUNSETIFF, &ifr);
  ioctl (fd, TUNSETPERSIST, 1);
  close (fd);
  rtnl_link_get_kernel (sk, 0, "bench-tap", &link);
  rtnl_link_get_kernel (sk, 0, "banger0", &bridge);
  rtnl_link_set_flags (change, IFF_UP);
  if (bridge)
    rtnl_link_set_master (change, rtnl_link_get_ifindex (bridge));
  rtnl_link_change (sk, link, change, 0);

  ino = inotify_init1 (IN_CLOEXEC);
  inotify_add_watch (ino, dir, IN_CREATE);
  g_spawn_async (NULL, (char **) argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL |
                 G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &pid, NULL);
  while (!g_file_test (sock, G_FILE_TEST_EXISTS))
    {
      char buf[4096];
      if (read (ino, buf, sizeof buf) < 0)
        break;
    }
  close (ino);
  fc = bg_fc_client_new (sock);
  if (!bg_fc_configure_machine (fc, 2, 1024, &error) ||
      !bg_fc_set_boot_source (fc, kernel, "console=ttyS0", NULL, &error) ||
      !bg_fc_add_drive (fc, "rootfs", rootfs, TRUE, FALSE, &error) ||
      !bg_fc_add_network (fc, "eth0", "bench-tap", "02:00:00:00:00:01", &error) ||
      !bg_fc_set_vsock (fc, 3, g_build_filename (dir, "v.sock", NULL), &error) ||
      !bg_fc_action (fc, "InstanceStart", &error))
    g_error ("baseline: %s", error->message);
  t = now_ms () - t0;

  kill (pid, SIGKILL);
  waitpid (pid, NULL, 0);
  g_unlink (sock);
  {
    g_autofree char *v = g_build_filename (dir, "v.sock", NULL);
    g_unlink (v);
  }
  rtnl_link_delete (sk, link);
  rtnl_link_put (link);
  if (bridge)
    rtnl_link_put (bridge);
  rtnl_link_put (change);
  nl_socket_free (sk);
  return t;
}

static void
bench (void)
{
  Ctx c = { 0 };
  g_autoptr(GArray) cold = g_array_new (FALSE, FALSE, sizeof (double));
  g_autoptr(GArray) warm = g_array_new (FALSE, FALSE, sizeof (double));
  g_autoptr(GArray) base = g_array_new (FALSE, FALSE, sizeof (double));
  g_autoptr(GArray) ls = g_array_new (FALSE, FALSE, sizeof (double));
  g_autoptr(GHashTable) steps = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                       (GDestroyNotify) g_array_unref);
  g_autoptr(GPtrArray) order = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *kernel = NULL, *rootfs = NULL, *bdir = NULL;
  struct passwd *pw = getpwnam (BG_TEST_USER_A);
  GPid mech;
  double t0;

  c.h = bg_harness_start (2);
  bg_harness_set_group_rule (c.h, TRUE);
  bg_harness_use_vmm (c.h, g_getenv ("BANGER_TEST_VMM"));
  c.home = g_strdup_printf ("%s/home-a", c.h->tmp);
  g_mkdir (c.home, 0700);
  g_assert_no_errno (chown (c.home, pw->pw_uid, pw->pw_gid));

  /* An image: a 4 KiB "kernel" and a 64 MiB ext4. */
  kernel = g_build_filename (c.home, "vmlinux", NULL);
  rootfs = g_build_filename (c.home, "rootfs.ext4", NULL);
  {
    guint8 elf[4096] = { 0x7f, 'E', 'L', 'F', 2 };
    const char *mk[] = { "mke2fs", "-q", "-F", "-t", "ext4", rootfs, "64M", NULL };
    const char *import[] = { "image", "import", "default", "--kernel", kernel, "--rootfs", rootfs, NULL };
    int status;

    elf[16] = 2;   /* ET_EXEC */
    elf[18] = 62;  /* EM_X86_64 */
    g_file_set_contents (kernel, (char *) elf, sizeof elf, NULL);
    bg_harness_run_argv (mk, NULL, &status);
    chown (kernel, pw->pw_uid, pw->pw_gid);
    chown (rootfs, pw->pw_uid, pw->pw_gid);
    run_cli (&c, NULL, import);
  }
  /* Disk growth (e2fsck + resize2fs) is its own cost, shown in the
   * breakdown; --disk equal to the image size keeps it out of the
   * comparison with the baseline, which has no disk to make. */
  for (int i = 0; i < RUNS * 2; i++)
    {
      gboolean is_cold = i % 2 == 0;
      g_autofree char *name = g_strdup_printf ("b%d", i);
      g_autofree char *err = NULL;
      const char *up[] = { "vm", "up", name, "--no-wait", "--disk", "256M", NULL };
      double t;

      if (is_cold)
        {
          /* Cold: the call itself activates the mechanism. */
          mech = bg_harness_mechanism_pid (c.h);
          if (mech > 0)
            {
              kill (mech, SIGTERM);
              bg_harness_wait_name_gone (c.h, 20);
            }
        }
      t = run_cli (&c, &err, up);
      g_array_append_val (is_cold ? cold : warm, t);
      if (!is_cold)
        add_timings (steps, order, err);
      remove_vm (&c, name);
    }

  /* Baseline: same work as root, no bus, polkit, jail or state. */
  bdir = g_build_filename (c.h->tmp, "baseline", NULL);
  g_mkdir (bdir, 0700);
  {
    g_autofree char *bk = g_build_filename (bdir, "vmlinux", NULL);
    g_autofree char *br = g_build_filename (bdir, "rootfs", NULL);
    g_autofree char *data = NULL;
    gsize len;
    g_file_get_contents (kernel, &data, &len, NULL);
    g_file_set_contents (bk, data, len, NULL);
    g_file_set_contents (br, data, len, NULL);
    for (int i = 0; i < RUNS; i++)
      {
        double t = baseline_once (bdir, bk, br);
        g_array_append_val (base, t);
      }
  }

  /* vm ls with 256 records (stopped: no VMM to ask). */
  {
    g_autofree char *vms = g_build_filename (c.home, ".local", "state", "banger", "vms", NULL);
    g_autoptr(BgStateStore) store = bg_state_store_new (vms);
    const char *ls_args[] = { "vm", "ls", "--json", NULL };
    const char *chown_argv[] = { "chown", "-R", BG_TEST_USER_A ":", c.home, NULL };

    for (int i = 0; i < 256; i++)
      {
        g_autofree char *name = g_strdup_printf ("rec%03d", i);
        g_autoptr(BgVmRecord) r = bg_vm_record_new (name);
        r->state = BG_VM_STOPPED;
        r->address = g_strdup_printf ("172.30.%d.%d", i / 200, 2 + i % 200);
        r->cpus = 2;
        r->memory_mib = 1024;
        bg_state_store_save (store, r, NULL);
      }
    bg_harness_run_argv (chown_argv, NULL, NULL);
    for (int i = 0; i < RUNS; i++)
      {
        double t = run_cli (&c, NULL, ls_args);
        g_array_append_val (ls, t);
      }
  }

  /* Peak RSS of the mechanism, then its idle exit (--idle-timeout 2). */
  mech = bg_harness_mechanism_pid (c.h);
  {
    g_autofree char *path = g_strdup_printf ("/proc/%d/status", (int) mech);
    g_autofree char *status = NULL;
    const char *hwm;
    g_autoptr(BgCallResult) ping = NULL;

    g_file_get_contents (path, &status, NULL, NULL);
    hwm = status ? strstr (status, "VmHWM:") : NULL;
    g_print ("\nbanger vm up --no-wait with the test VMM, as an unprivileged user (%d runs each)\n", RUNS);
    g_print ("  cold (mechanism activated by the call)  median %7.2f ms\n", median (cold));
    g_print ("  warm (mechanism running)                median %7.2f ms\n", median (warm));
    g_print ("  baseline (root, no banger layers)       median %7.2f ms\n", median (base));
    g_print ("  warm / baseline                                %5.2fx\n", median (warm) / median (base));
    g_print ("  warm, by step (median ms):\n");
    for (guint i = 0; i < order->len; i++)
      g_print ("    %-28s %7.2f\n", (char *) order->pdata[i],
               median (g_hash_table_lookup (steps, order->pdata[i])));
    g_print ("banger vm ls --json with 256 records         median %7.2f ms\n", median (ls));
    {
      g_autofree char *line = hwm ? g_strndup (hwm + 6, strcspn (hwm + 6, "\n")) : g_strdup ("?");
      g_print ("peak RSS: banger vm up %ld KiB, banger-mechanism %s\n", c.max_rss_kb, g_strstrip (line));
    }

    ping = bg_harness_call (c.h, NULL, "Ping", NULL, NULL);
    t0 = now_ms ();
    bg_harness_wait_name_gone (c.h, 30);
    g_print ("mechanism idle exit after its last call: %.0f ms (--idle-timeout 2)\n", now_ms () - t0);
  }
  bg_harness_stop (c.h);
  g_free (c.home);
}

static void
add (void)
{
  g_test_add_func ("/bench/up", bench);
}

int
main (int argc, char **argv)
{
  return bg_harness_main (&argc, &argv, add);
}
