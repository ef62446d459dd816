/* bench-up: `banger vm up --no-wait` with the test VMM, from command
 * start to exit (the VMM accepted InstanceStart), as an unprivileged user
 * on the integration harness, for two images made like `image build`
 * makes them (banger-init inside, so layered where the filesystem cannot
 * reflink):
 *
 *   tiny       a 4 KiB "kernel" and a 64 MiB ext4;
 *   realistic  a 48 MiB kernel and a 2 GiB ext4 holding 1 GiB of data,
 *              the size of the default Debian image.
 *
 * Each cold (page cache dropped, mechanism activated by the call) and
 * warm, by step, against a bare baseline doing the same work with the same
 * files and none of banger's layers (as root: tap over netlink, the test
 * VMM spawned directly, the same API calls). Then the cost of the copy
 * mode it replaces, what 16 VMs of the realistic image cost in host disk
 * and page cache, what a network namespace per VMM costs (netns=always
 * against auto), `vm ls` with 256 records, peak RSS and the mechanism's
 * idle exit. Needs root. BANGER_BENCH_ONLY=netns measures only the
 * network namespace's cost; BANGER_BENCH_ONLY=warm only the warm tiny
 * figure, by step, against the baseline, the two interleaved. */
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <pwd.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <netlink/route/link.h>

#include "bg-fc-client.h"
#include "bg-state.h"
#include "bench-common.h"
#include "harness.h"

#define RUNS     21
#define COPY_RUNS 5
#define MANY     16
#define MiB      (G_GINT64_CONSTANT (1) << 20)

static BgBenchIds user_ids;

typedef struct {
  BgHarness *h;
  char      *home;
  glong      max_rss_kb;
} Ctx;

/* Step timings of one kind of run: name -> GArray of ms, in first-seen order. */
typedef struct {
  GHashTable *steps;
  GPtrArray  *order;
} Steps;

typedef struct {
  const char *label;
  const char *image;
  char       *kernel;     /* the files the image was imported from */
  char       *rootfs;
  GArray     *cold, *warm, *base_cold, *base_warm;
  Steps       cold_steps, warm_steps;
} Case;

static void
steps_init (Steps *s)
{
  s->steps = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_array_unref);
  s->order = g_ptr_array_new_with_free_func (g_free);
}

static void
steps_clear (Steps *s)
{
  g_hash_table_unref (s->steps);
  g_ptr_array_unref (s->order);
}

static void
drop_caches (void)
{
  int fd;

  sync ();
  fd = open ("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write (fd, "3", 1) != 1)
    g_error ("cannot drop the page cache: %s (run as root)", g_strerror (errno));
  close (fd);
}

static gint64
meminfo (const char *key)
{
  g_autofree char *text = NULL;
  g_autofree char *needle = g_strdup_printf ("\n%s:", key);
  const char *at;

  g_assert_true (g_file_get_contents ("/proc/meminfo", &text, NULL, NULL));
  at = strstr (text, needle);
  g_assert_nonnull (at);
  return g_ascii_strtoll (at + strlen (needle), NULL, 10) * 1024;
}

/* Runs the CLI as the test user; returns wall ms, collects stderr. */
static double
run_cli_full (Ctx *c, char **out, char **err, const char * const *args)
{
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();
  g_auto(GStrv) argv = NULL;
  g_auto(GStrv) envp = bg_harness_cli_envp (c->h, c->home, c->home);
  g_autoptr(GError) error = NULL;
  g_autofree char *stdout_text = NULL, *stderr_text = NULL;
  int status;
  double t0, t;

  if (user_ids.uid == 0)
    bg_bench_ids_of (&user_ids, BG_TEST_USER_A);
  g_strv_builder_add (b, g_getenv ("BANGER_CLI"));
  g_strv_builder_addv (b, (const char **) args);
  argv = g_strv_builder_end (b);
  envp = g_environ_setenv (envp, "BANGER_TIMINGS", "1", TRUE);
  t0 = bg_bench_now_ms ();
  if (!g_spawn_sync (c->home, argv, envp, G_SPAWN_DEFAULT, bg_bench_become, &user_ids, &stdout_text, &stderr_text,
                     &status, &error))
    g_error ("%s", error->message);
  t = bg_bench_now_ms () - t0;
  if (!g_spawn_check_wait_status (status, NULL))
    g_error ("banger %s %s failed: %s", args[0], args[1], stderr_text);
  /* Not ru.ru_maxrss: it includes this (large) process's pages, which
   * the child had between fork and exec. banger reports its own peak
   * with BANGER_TIMINGS; only vm up's counts here (image import reports
   * one too, and reads the whole kernel for its boot check). */
  {
    const char *peak = strstr (stderr_text, "banger: peak RSS: ");
    if (peak != NULL && g_strcmp0 (args[0], "vm") == 0 && g_strcmp0 (args[1], "up") == 0)
      c->max_rss_kb = MAX (c->max_rss_kb, strtol (peak + 18, NULL, 10));
  }
  if (out)
    *out = g_steal_pointer (&stdout_text);
  if (err)
    *err = g_steal_pointer (&stderr_text);
  return t;
}

static double
run_cli (Ctx *c, char **err, const char * const *args)
{
  return run_cli_full (c, NULL, err, args);
}

/* "banger: timings: step=ms step=ms ..." */
static void
add_timings (Steps *s, const char *err)
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
      a = g_hash_table_lookup (s->steps, pairs[i]);
      if (a == NULL)
        {
          a = bg_bench_samples ();
          g_hash_table_insert (s->steps, g_strdup (pairs[i]), a);
          g_ptr_array_add (s->order, g_strdup (pairs[i]));
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

static void
stop_mechanism (Ctx *c)
{
  GPid mech = bg_harness_mechanism_pid (c->h);

  if (mech > 0)
    {
      kill (mech, SIGTERM);
      bg_harness_wait_name_gone (c->h, 20);
    }
}

/* The same work, no banger: a tap over ioctl + netlink, the test VMM
 * spawned directly, the same API calls, the image's own files. */
static double
baseline_once (const char *dir, const char *kernel, const char *rootfs)
{
  g_autofree char *sock = g_build_filename (dir, "api.sock", NULL);
  g_autofree char *vsock = g_build_filename (dir, "v.sock", NULL);
  struct ifreq ifr = { 0 };
  struct nl_sock *sk = nl_socket_alloc ();
  struct rtnl_link *link = NULL, *bridge = NULL, *change = rtnl_link_alloc ();
  g_autoptr(BgFcClient) fc = NULL;
  g_autoptr(GError) error = NULL;
  const char *argv[] = { g_getenv ("BANGER_TEST_VMM"), "--api-sock", sock, "--id", "baseline", NULL };
  double t0 = bg_bench_now_ms (), t;
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
  fc = bg_fc_client_new (sock);
  if (!bg_fc_configure (fc, &(BgFcMachine) { 2, 1024, kernel, NULL, "console=ttyS0",
                                             (BgFcDrive[]) { { "rootfs", rootfs, TRUE, FALSE }, { NULL } },
                                             "bench-tap", "02:00:00:00:00:01", 3, vsock }, &error) ||
      !bg_fc_action (fc, "InstanceStart", &error))
    g_error ("baseline: %s", error->message);
  t = bg_bench_now_ms () - t0;

  /* Closed off the clock: closing an inotify descriptor waits for an
   * SRCU grace period (fsnotify_destroy_group), 7-15 ms here, which is
   * no part of starting a VM (the mechanism closes its own once both
   * sockets are handed over, after LaunchVm answered). */
  close (ino);
  kill (pid, SIGKILL);
  waitpid (pid, NULL, 0);
  g_unlink (sock);
  g_unlink (vsock);
  rtnl_link_delete (sk, link);
  rtnl_link_put (link);
  if (bridge)
    rtnl_link_put (bridge);
  rtnl_link_put (change);
  nl_socket_free (sk);
  return t;
}

/* Fills @path with @size bytes that neither compress nor read as holes. */
static void
write_noise (const char *path, gint64 size, const guint8 *head, gsize head_len, mode_t mode)
{
  g_autofree guint8 *buf = g_malloc (MiB);
  g_autoptr(GRand) rand = g_rand_new_with_seed (0x6261);
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

  g_assert_cmpint (fd, >=, 0);
  for (gint64 done = 0; done < size; done += MiB)
    {
      gsize n = MIN (MiB, size - done);
      for (gsize i = 0; i < n; i += 4)
        *(guint32 *) (buf + i) = g_rand_int (rand);
      if (done == 0 && head != NULL)
        memcpy (buf, head, head_len);
      g_assert_cmpint (write (fd, buf, n), ==, (gssize) n);
    }
  close (fd);
}

/* An image as `image build` makes one: banger-init in it (unless
 * @byo: the user's own ext4, which banger layers by writing its guest
 * programs into its own copy), @data bytes of files, an ext4 of
 * @fs_size; a kernel of @kernel_size. Imported as the test user under
 * @name. */
static void
make_image_full (Ctx *c, Case *k, gint64 kernel_size, const char *fs_size, gint64 data, gboolean byo)
{
  struct passwd *pw = getpwnam (BG_TEST_USER_A);
  g_autofree char *tree = g_strdup_printf ("%s/tree-%s", c->home, k->image);
  g_autofree char *libexec = g_build_filename (tree, "usr/libexec/banger", NULL);
  g_autofree char *init = g_build_filename (libexec, "banger-init", NULL);
  g_autofree char *init_bin = NULL;
  guint8 elf[20] = { 0x7f, 'E', 'L', 'F', 2 };
  gsize len;
  int status;

  elf[16] = 2;   /* ET_EXEC */
  elf[18] = 62;  /* EM_X86_64 */
  k->kernel = g_strdup_printf ("%s/%s.vmlinux", c->home, k->image);
  k->rootfs = g_strdup_printf ("%s/%s.ext4", c->home, k->image);

  g_assert_no_errno (g_mkdir_with_parents (byo ? tree : libexec, 0755));
  if (!byo)
    {
      g_assert_true (g_file_get_contents (g_getenv ("BANGER_INIT"), &init_bin, &len, NULL));
      g_assert_true (g_file_set_contents_full (init, init_bin, len, G_FILE_SET_CONTENTS_NONE, 0755, NULL));
    }
  for (gint64 done = 0, i = 0; done < data; done += 64 * MiB, i++)
    {
      g_autofree char *dir = g_strdup_printf ("%s/usr/share/bench", tree);
      g_autofree char *blob = g_strdup_printf ("%s/blob-%02" G_GINT64_FORMAT, dir, i);
      g_mkdir_with_parents (dir, 0755);
      write_noise (blob, MIN (64 * MiB, data - done), NULL, 0, 0644);
    }
  {
    const char *mk[] = { "mke2fs", "-q", "-F", "-t", "ext4", "-d", tree, k->rootfs, fs_size, NULL };
    const char *rm[] = { "rm", "-rf", tree, NULL };
    bg_harness_run_argv (mk, NULL, &status);
    g_assert_cmpint (status, ==, 0);
    bg_harness_run_argv (rm, NULL, NULL);
  }
  write_noise (k->kernel, kernel_size, elf, sizeof elf, 0644);
  g_assert_no_errno (chown (k->kernel, pw->pw_uid, pw->pw_gid));
  g_assert_no_errno (chown (k->rootfs, pw->pw_uid, pw->pw_gid));
  {
    const char *import[] = { "image", "import", k->image, "--kernel", k->kernel, "--rootfs", k->rootfs, NULL };
    run_cli (c, NULL, import);
  }
}

static void
make_image (Ctx *c, Case *k, gint64 kernel_size, const char *fs_size, gint64 data)
{
  make_image_full (c, k, kernel_size, fs_size, data, FALSE);
}

/* RUNS cold and RUNS warm `vm up --no-wait` of @k, then the baseline. */
static void
measure_case (Ctx *c, Case *k, const char *bdir)
{
  for (int i = 0; i < RUNS * 2; i++)
    {
      gboolean is_cold = i % 2 == 0;
      g_autofree char *name = g_strdup_printf ("%c%d", k->label[0], i);
      g_autofree char *err = NULL;
      const char *up[] = { "vm", "up", name, "--image", k->image, "--no-wait", NULL };
      double t;

      if (is_cold)
        {
          stop_mechanism (c);
          drop_caches ();
        }
      t = run_cli (c, &err, up);
      g_array_append_val (is_cold ? k->cold : k->warm, t);
      add_timings (is_cold ? &k->cold_steps : &k->warm_steps, err);
      remove_vm (c, name);
    }
  for (int i = 0; i < RUNS * 2; i++)
    {
      gboolean is_cold = i % 2 == 0;
      double t;

      if (is_cold)
        drop_caches ();
      t = baseline_once (bdir, k->kernel, k->rootfs);
      g_array_append_val (is_cold ? k->base_cold : k->base_warm, t);
    }
}

static void
print_cases (Case *cases, guint n)
{
  const char *kinds[] = { "cold", "warm" };

  g_print ("\nbanger vm up --no-wait with the test VMM, as an unprivileged user, median of %d\n", RUNS);
  g_print ("  (cold: page cache dropped, mechanism activated by the call; baseline: the same\n"
           "   work as root on the image's own files, no bus, polkit, jail or state)\n");
  for (guint i = 0; i < n; i++)
    {
      Case *k = &cases[i];

      for (guint w = 0; w < 2; w++)
        {
          gboolean warm = w == 1;
          GArray *total = warm ? k->warm : k->cold;
          double base = bg_bench_median (warm ? k->base_warm : k->base_cold);
          double all = bg_bench_median (total), in_steps = 0;
          Steps *s = warm ? &k->warm_steps : &k->cold_steps;

          g_print ("  %-9s %s  banger %8.2f ms  baseline %7.2f ms  ratio %5.2fx\n",
                   k->label, kinds[w], all, base, all / base);
          for (guint j = 0; j < s->order->len; j++)
            {
              double m = bg_bench_median (g_hash_table_lookup (s->steps, s->order->pdata[j]));
              in_steps += m;
              g_print ("      %-40s %8.2f ms  %5.2fx baseline\n", (char *) s->order->pdata[j], m, m / base);
            }
          g_print ("      %-40s %8.2f ms  %5.2fx baseline\n", "(outside steps: start, config, exit)",
                   all - in_steps, (all - in_steps) / base);
        }
    }
  if (n == 2)
    g_print ("  warm realistic / warm tiny: %.2fx\n", bg_bench_median (cases[1].warm) / bg_bench_median (cases[0].warm));
}

/* Host disk a VM's directory holds: allocated blocks, not apparent size. */
static gint64
allocated_bytes (const char *dir)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *e;
  gint64 sum = 0;
  struct stat st;

  if (lstat (dir, &st) == 0)
    sum += st.st_blocks * 512;
  while (d && (e = g_dir_read_name (d)))
    {
      g_autofree char *p = g_build_filename (dir, e, NULL);
      if (lstat (p, &st) == 0)
        sum += S_ISDIR (st.st_mode) ? allocated_bytes (p) : st.st_blocks * 512;
    }
  return sum;
}

static JsonObject *
vm_show (Ctx *c, const char *name, JsonNode **node)
{
  const char *show[] = { "vm", "show", name, "--json", NULL };
  g_autofree char *out = NULL;

  run_cli_full (c, &out, NULL, show);
  *node = json_from_string (out, NULL);
  g_assert_nonnull (*node);
  return json_node_get_object (*node);
}

/* Loop devices whose backing file is @path. */
static guint
loops_backing (const char *path)
{
  g_autoptr(GDir) d = g_dir_open ("/sys/block", 0, NULL);
  const char *e;
  guint n = 0;

  while ((e = g_dir_read_name (d)))
    {
      g_autofree char *f = g_strdup_printf ("/sys/block/%s/loop/backing_file", e);
      g_autofree char *text = NULL;

      if (g_str_has_prefix (e, "loop") && g_file_get_contents (f, &text, NULL, NULL) &&
          g_str_equal (g_strstrip (text), path))
        n++;
    }
  return n;
}

/* The mode it replaces: what a VM of the realistic image costs when its
 * root is a copy (images without banger-init, filesystems without
 * reflink). */
static void
measure_copy (Ctx *c, Case *k)
{
  g_autoptr(GArray) t = bg_bench_samples ();
  g_autofree char *conf_dir = g_build_filename (c->home, ".config", "banger", NULL);
  g_autofree char *conf = g_build_filename (conf_dir, "banger.conf", NULL);
  g_autofree char *dir = g_build_filename (c->home, ".local/state/banger/vms/copy", NULL);
  const char *chown_argv[] = { "chown", "-R", BG_TEST_USER_A ":", conf_dir, NULL };
  gint64 disk = 0;

  g_mkdir_with_parents (conf_dir, 0755);
  g_assert_true (g_file_set_contents (conf, "[vm]\ndisk-mode = copy\n", -1, NULL));
  bg_harness_run_argv (chown_argv, NULL, NULL);
  for (int i = 0; i < COPY_RUNS; i++)
    {
      const char *up[] = { "vm", "up", "copy", "--image", k->image, "--no-wait", NULL };
      double ms = run_cli (c, NULL, up);
      g_array_append_val (t, ms);
      disk = allocated_bytes (dir);
      remove_vm (c, "copy");
    }
  g_unlink (conf);
  g_print ("\nthe copy mode layered VMs replace (disk-mode = copy), %s image, warm, median of %d\n",
           k->label, COPY_RUNS);
  g_print ("  vm up --no-wait %8.2f ms  (%.1fx the warm layered figure); host disk per VM %" G_GINT64_FORMAT
           " MiB\n", bg_bench_median (t), bg_bench_median (t) / bg_bench_median (k->warm), disk / MiB);
}

/* 16 VMs of the realistic image: host disk at creation, loop devices,
 * and the page cache once every guest has read its whole root. */
static void
measure_many (Ctx *c, Case *k)
{
  g_autofree char *vms = g_build_filename (c->home, ".local/state/banger/vms", NULL);
  g_autofree char *image_rootfs = g_build_filename (c->home, ".local/share/banger/images", k->image,
                                                    "rootfs.ext4", NULL);
  gint64 per_vm_max = 0, total = 0, cache0, cache1, root_size = 0;
  struct statvfs before, after;
  double t0, read_ms;
  GPid pids[MANY];

  sync ();
  statvfs (vms, &before);
  for (int i = 0; i < MANY; i++)
    {
      g_autofree char *name = g_strdup_printf ("many%02d", i);
      g_autofree char *dir = g_build_filename (vms, name, NULL);
      const char *up[] = { "vm", "up", name, "--image", k->image, "--no-wait", NULL };
      g_autoptr(JsonNode) node = NULL;
      JsonObject *o;
      gint64 bytes;

      run_cli (c, NULL, up);
      o = vm_show (c, name, &node);
      g_assert_cmpstr (json_object_get_string_member (o, "disk_mode"), ==, "layered");
      pids[i] = json_object_get_int_member (o, "pid");
      bytes = allocated_bytes (dir);
      per_vm_max = MAX (per_vm_max, bytes);
      total += bytes;
    }
  sync ();
  statvfs (vms, &after);

  /* What each guest would read at boot and after: its whole root, through
   * the drive its VMM was given. */
  drop_caches ();
  /* A block device's pages count as Buffers, a file's as Cached. */
  cache0 = meminfo ("Cached") + meminfo ("Buffers");
  t0 = bg_bench_now_ms ();
  for (int i = 0; i < MANY; i++)
    {
      g_autofree char *link = g_strdup_printf ("/proc/%d/root/rootfs", (int) pids[i]);
      g_autofree char *target = g_file_read_link (link, NULL);
      g_autofree char *drive = NULL;
      g_autofree char *buf = g_malloc (MiB);
      int fd;

      /* The jail holds no block device node: /rootfs names the VMM's own
       * descriptor (/proc/self/fd/N), which only the VMM can follow as
       * written. The same descriptor, seen from here, is /proc/PID/fd/N. */
      if (target != NULL && g_str_has_prefix (target, "/proc/self/fd/"))
        drive = g_strdup_printf ("/proc/%d/fd/%s", (int) pids[i], target + strlen ("/proc/self/fd/"));
      else
        drive = g_steal_pointer (&link);
      fd = open (drive, O_RDONLY | O_CLOEXEC);
      ssize_t n;
      gint64 size = 0;

      if (fd < 0)
        g_error ("%s: %s", drive, g_strerror (errno));
      while ((n = read (fd, buf, MiB)) > 0)
        size += n;
      close (fd);
      root_size = size;
    }
  read_ms = bg_bench_now_ms () - t0;
  cache1 = meminfo ("Cached") + meminfo ("Buffers");

  g_print ("\n%d VMs of the %s image (layered)\n", MANY, k->label);
  g_print ("  host disk per VM at creation: at most %" G_GINT64_FORMAT " KiB; all %d: %" G_GINT64_FORMAT
           " KiB by their files, %" G_GINT64_FORMAT " KiB by the filesystem's free space\n",
           per_vm_max / 1024, MANY, total / 1024,
           (gint64) ((before.f_bfree - after.f_bfree) * before.f_frsize) / 1024);
  g_print ("  loop devices for the image: %u\n", loops_backing (image_rootfs));
  g_print ("  every VM reads its whole %" G_GINT64_FORMAT " MiB root: %.0f ms for all %d, page cache +%"
           G_GINT64_FORMAT " MiB (%.2f copies of the root)\n", root_size / MiB, read_ms, MANY,
           (cache1 - cache0) / MiB, (double) (cache1 - cache0) / root_size);

  for (int i = 0; i < MANY; i++)
    {
      g_autofree char *name = g_strdup_printf ("many%02d", i);
      remove_vm (c, name);
    }
}

static void
measure_ls (Ctx *c)
{
  g_autoptr(GArray) ls = bg_bench_samples ();
  g_autofree char *vms = g_build_filename (c->home, ".local", "state", "banger", "vms", NULL);
  g_autoptr(BgStateStore) store = bg_state_store_new (vms);
  const char *ls_args[] = { "vm", "ls", "--json", NULL };
  const char *chown_argv[] = { "chown", "-R", BG_TEST_USER_A ":", c->home, NULL };

  /* 256 records, stopped: no VMM to ask. */
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
      double t = run_cli (c, NULL, ls_args);
      g_array_append_val (ls, t);
    }
  g_print ("\nbanger vm ls --json with 256 records         median %7.2f ms\n", bg_bench_median (ls));
}

/* Warm only, tiny image: `vm up` and the baseline taking turns, so a
 * busy minute weighs on both alike. A minute, for a change's before and
 * after. */
static void
measure_warm (Ctx *c, Case *k, const char *bdir)
{
  Steps steps;
  g_autoptr(GArray) up = bg_bench_samples ();
  g_autoptr(GArray) base = bg_bench_samples ();
  double total, in_steps = 0, b;

  steps_init (&steps);
  /* One first, so the mechanism is running for all that count. */
  {
    const char *first[] = { "vm", "up", "w-first", "--image", k->image, "--no-wait", NULL };
    run_cli (c, NULL, first);
    remove_vm (c, "w-first");
  }
  for (int i = 0; i < RUNS; i++)
    {
      g_autofree char *name = g_strdup_printf ("w%d", i);
      g_autofree char *err = NULL;
      const char *args[] = { "vm", "up", name, "--image", k->image, "--no-wait", NULL };
      double t;

      t = run_cli (c, &err, args);
      g_array_append_val (up, t);
      add_timings (&steps, err);
      remove_vm (c, name);
      t = baseline_once (bdir, k->kernel, k->rootfs);
      g_array_append_val (base, t);
    }
  total = bg_bench_median (up);
  b = bg_bench_median (base);
  g_print ("\nwarm vm up --no-wait, %s image, median of %d, interleaved with the baseline\n", k->label, RUNS);
  g_print ("  banger %8.2f ms  baseline %7.2f ms  ratio %5.2fx\n", total, b, total / b);
  for (guint j = 0; j < steps.order->len; j++)
    {
      double m = bg_bench_median (g_hash_table_lookup (steps.steps, steps.order->pdata[j]));
      in_steps += m;
      g_print ("      %-40s %8.2f ms  %5.2fx baseline\n", (char *) steps.order->pdata[j], m, m / b);
    }
  g_print ("      %-40s %8.2f ms  %5.2fx baseline\n", "(outside steps: start, config, exit)", total - in_steps,
           (total - in_steps) / b);
  steps_clear (&steps);
}

/* The cost of a network namespace per VMM (netns.c), warm, tiny image:
 * the same `vm up` and `vm rm` with mechanism.conf's [vmm] netns=auto
 * (on a kernel with Landlock scopes: the host's namespace, as before)
 * and netns=always, interleaved so the machine's load falls on both
 * alike. [vmm] is read at each launch. */
static void
measure_netns (Ctx *c, Case *k)
{
  g_autofree char *section = bg_harness_vmm_section (g_getenv ("BANGER_TEST_VMM"));
  GArray *up_t[2] = { bg_bench_samples (), bg_bench_samples () };
  GArray *rm_t[2] = { bg_bench_samples (), bg_bench_samples () };
  Steps steps[2];
  const char *modes[] = { "auto", "always" };

  steps_init (&steps[0]);
  steps_init (&steps[1]);
  for (int i = 0; i < RUNS * 2; i++)
    {
      int m = i % 2;
      g_autofree char *conf = g_strdup_printf ("%snetns=%s\n", section, modes[m]);
      g_autofree char *name = g_strdup_printf ("n%d", i);
      g_autofree char *err = NULL;
      const char *up[] = { "vm", "up", name, "--image", k->image, "--no-wait", NULL };
      const char *rm[] = { "vm", "rm", name, "--force", NULL };
      double t;

      bg_harness_write_config (c->h, "mechanism.conf", conf);
      t = run_cli (c, &err, up);
      g_array_append_val (up_t[m], t);
      add_timings (&steps[m], err);
      t = run_cli (c, NULL, rm);
      g_array_append_val (rm_t[m], t);
    }
  bg_harness_write_config (c->h, "mechanism.conf", section);
  g_print ("\nper-VMM network namespace, warm, %s image, median of %d each, interleaved\n", k->label, RUNS);
  for (int m = 0; m < 2; m++)
    {
      g_print ("  netns=%-6s vm up %8.2f ms   vm rm --force %8.2f ms\n", modes[m], bg_bench_median (up_t[m]),
               bg_bench_median (rm_t[m]));
      for (guint j = 0; j < steps[m].order->len; j++)
        g_print ("      %-40s %8.2f ms\n", (char *) steps[m].order->pdata[j],
                 bg_bench_median (g_hash_table_lookup (steps[m].steps, steps[m].order->pdata[j])));
    }
  g_print ("  netns=always - netns=auto: vm up %+.2f ms, vm rm %+.2f ms\n", bg_bench_median (up_t[1]) - bg_bench_median (up_t[0]),
           bg_bench_median (rm_t[1]) - bg_bench_median (rm_t[0]));
  for (int m = 0; m < 2; m++)
    {
      steps_clear (&steps[m]);
      g_array_unref (up_t[m]);
      g_array_unref (rm_t[m]);
    }
}

static void
bench (void)
{
  Ctx c = { 0 };
  Case cases[] = {
    { "tiny", "tiny" },
    { "realistic", "realistic" },
  };
  g_autofree char *bdir = NULL;
  struct passwd *pw = getpwnam (BG_TEST_USER_A);
  GPid mech;

  c.h = bg_harness_start (2);
  bg_harness_set_group_rule (c.h, TRUE);
  bg_harness_use_vmm (c.h, g_getenv ("BANGER_TEST_VMM"));
  c.home = g_strdup_printf ("%s/home-a", c.h->tmp);
  g_mkdir (c.home, 0700);
  g_assert_no_errno (chown (c.home, pw->pw_uid, pw->pw_gid));
  bdir = g_build_filename (c.h->tmp, "baseline", NULL);
  g_mkdir (bdir, 0700);

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      cases[i].cold = bg_bench_samples ();
      cases[i].warm = bg_bench_samples ();
      cases[i].base_cold = bg_bench_samples ();
      cases[i].base_warm = bg_bench_samples ();
      steps_init (&cases[i].cold_steps);
      steps_init (&cases[i].warm_steps);
    }
  make_image (&c, &cases[0], 4096, "64M", 0);
  if (g_strcmp0 (g_getenv ("BANGER_BENCH_ONLY"), "netns") == 0)
    {
      /* Only the network namespace's cost: a minute, not ten. */
      measure_netns (&c, &cases[0]);
      bg_harness_stop (c.h);
      return;
    }
  if (g_strcmp0 (g_getenv ("BANGER_BENCH_ONLY"), "warm") == 0)
    {
      measure_warm (&c, &cases[0], bdir);
      bg_harness_stop (c.h);
      return;
    }
  make_image (&c, &cases[1], 48 * MiB, "2G", 1024 * MiB);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    measure_case (&c, &cases[i], bdir);
  print_cases (cases, G_N_ELEMENTS (cases));
  measure_netns (&c, &cases[0]);
  measure_copy (&c, &cases[1]);
  measure_many (&c, &cases[1]);
  /* Peak RSS of the mechanism, read while it still runs: its last call
   * (the 16 VMs' removal) just returned, and it exits 2 s after it. */
  mech = bg_harness_mechanism_pid (c.h);
  {
    g_autofree char *path = g_strdup_printf ("/proc/%d/status", (int) mech);
    g_autofree char *status = NULL;
    const char *hwm;

    if (mech > 0)
      g_file_get_contents (path, &status, NULL, NULL);
    hwm = status ? strstr (status, "VmHWM:") : NULL;
    {
      g_autofree char *line = hwm ? g_strndup (hwm + 6, strcspn (hwm + 6, "\n")) : g_strdup ("? (it had exited)");
      g_print ("peak RSS: banger vm up %ld KiB, banger-mechanism %s\n", c.max_rss_kb, g_strstrip (line));
    }
  }
  measure_ls (&c);

  /* The mechanism's idle exit (--idle-timeout 2). */
  {
    g_autoptr(BgCallResult) ping = NULL;
    double t0;

    ping = bg_harness_call (c.h, NULL, "Ping", NULL, NULL);
    t0 = bg_bench_now_ms ();
    bg_harness_wait_name_gone (c.h, 30);
    g_print ("mechanism idle exit after its last call: %.0f ms (--idle-timeout 2)\n", bg_bench_now_ms () - t0);
  }

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_free (cases[i].kernel);
      g_free (cases[i].rootfs);
      g_array_unref (cases[i].cold);
      g_array_unref (cases[i].warm);
      g_array_unref (cases[i].base_cold);
      g_array_unref (cases[i].base_warm);
      steps_clear (&cases[i].cold_steps);
      steps_clear (&cases[i].warm_steps);
    }
  bg_harness_stop (c.h);
  g_free (c.home);
}

/* An OCI image as `image pull` makes one (the same importer; `image
 * import --oci` of a layout, so no registry is needed here): two layers
 * of this host's /usr, imported as the test user, rootless. */
static void
make_oci_image (Ctx *c, Case *k, const char *kernel)
{
  struct passwd *pw = getpwnam (BG_TEST_USER_A);
  g_autofree char *layout = g_build_filename (c->home, "layout", NULL);
  g_autofree char *image = g_strdup_printf ("%s:oci", layout);
  const char *dirs[] = { "/usr/sbin", "/usr/libexec" };
  int status;

  {
    const char *init[] = { "umoci", "init", "--layout", layout, NULL };
    const char *new_image[] = { "umoci", "new", "--image", image, NULL };
    bg_harness_run_argv (init, NULL, &status);
    g_assert_cmpint (status, ==, 0);
    bg_harness_run_argv (new_image, NULL, &status);
    g_assert_cmpint (status, ==, 0);
  }
  for (guint i = 0; i < G_N_ELEMENTS (dirs); i++)
    {
      const char *insert[] = { "umoci", "insert", "--image", image, dirs[i], dirs[i], NULL };
      bg_harness_run_argv (insert, NULL, &status);
      g_assert_cmpint (status, ==, 0);
    }
  {
    g_autofree char *owner = g_strdup_printf ("%u:%u", pw->pw_uid, pw->pw_gid);
    const char *chown_argv[] = { "chown", "-R", owner, layout, NULL };
    const char *import[] = { "image", "import", k->image, "--oci", layout, "--kernel", kernel, NULL };
    const char *rm[] = { "rm", "-rf", layout, NULL };

    bg_harness_run_argv (chown_argv, NULL, NULL);
    run_cli (c, NULL, import);
    bg_harness_run_argv (rm, NULL, NULL);
  }
}

/* Warm `vm up --no-wait` of the tiny image, an OCI image and a
 * bring-your-own ext4 (no banger-init: layered by banger's own copy),
 * interleaved, and the host disk each new VM takes. */
static void
bench_images (void)
{
  Ctx c = { 0 };
  Case cases[] = { { "tiny", "tiny" }, { "oci", "oci" }, { "byo", "byo" } };
  gint64 disk[G_N_ELEMENTS (cases)] = { 0 };
  struct passwd *pw = getpwnam (BG_TEST_USER_A);
  g_autofree char *umoci = g_find_program_in_path ("umoci");

  if (umoci == NULL)
    {
      g_test_skip ("umoci is not installed (it makes the OCI image)");
      return;
    }
  c.h = bg_harness_start (60);
  bg_harness_set_group_rule (c.h, TRUE);
  bg_harness_use_vmm (c.h, g_getenv ("BANGER_TEST_VMM"));
  c.home = g_strdup_printf ("%s/home-a", c.h->tmp);
  g_mkdir (c.home, 0700);
  g_assert_no_errno (chown (c.home, pw->pw_uid, pw->pw_gid));
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    cases[i].warm = bg_bench_samples ();

  make_image (&c, &cases[0], 4096, "64M", 0);
  make_oci_image (&c, &cases[1], cases[0].kernel);
  /* As issue 23 found it: a 2 GiB ext4 holding 700 MiB, no banger-init. */
  make_image_full (&c, &cases[2], 4096, "2G", 700 * MiB, TRUE);

  for (int i = 0; i < RUNS + 1; i++)
    for (guint j = 0; j < G_N_ELEMENTS (cases); j++)
      {
        Case *k = &cases[j];
        g_autofree char *name = g_strdup_printf ("%s%d", k->label, i);
        g_autofree char *dir = g_build_filename (c.home, ".local/state/banger/vms", name, NULL);
        const char *up[] = { "vm", "up", name, "--image", k->image, "--no-wait", NULL };
        double t = run_cli (&c, NULL, up);

        /* The first round warms the caches and the mechanism. */
        if (i > 0)
          g_array_append_val (k->warm, t);
        if (i == 1)
          {
            g_autoptr(JsonNode) node = NULL;
            JsonObject *o = vm_show (&c, name, &node);

            g_assert_cmpstr (json_object_get_string_member (o, "disk_mode"), ==, "layered");
            sync ();
            disk[j] = allocated_bytes (dir);
          }
        remove_vm (&c, name);
      }

  g_print ("\nwarm vm up --no-wait by kind of image, interleaved, median of %d\n", RUNS);
  for (guint j = 0; j < G_N_ELEMENTS (cases); j++)
    g_print ("  %-5s %8.2f ms  %5.2fx tiny  host disk per new VM %" G_GINT64_FORMAT " KiB\n", cases[j].label,
             bg_bench_median (cases[j].warm), bg_bench_median (cases[j].warm) / bg_bench_median (cases[0].warm), disk[j] / 1024);
  g_print ("  (tiny: 64 MiB ext4 with banger-init; oci: image import --oci of two layers of /usr, the importer "
           "image pull uses; byo: a 2 GiB ext4 holding 700 MiB, no banger-init)\n");

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_free (cases[i].kernel);
      g_free (cases[i].rootfs);
      g_array_unref (cases[i].warm);
    }
  bg_harness_stop (c.h);
  g_free (c.home);
}

static void
add (void)
{
  g_test_add_func ("/bench/up", bench);
  /* BANGER_BENCH_ONLY names a part of /bench/up: nothing else runs. */
  if (g_getenv ("BANGER_BENCH_ONLY") == NULL)
    g_test_add_func ("/bench/up-images", bench_images);
}

int
main (int argc, char **argv)
{
  return bg_harness_main (&argc, &argv, add);
}
