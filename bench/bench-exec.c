/* bench-exec: `banger vm exec` against `banger vm ssh` on the same guest,
 * in one run, on the integration harness: a VM made by `vm up` with the
 * test VMM, and one stand-in guest serving both ways in: banger-agent
 * (--listen-unix, where the test VMM's hybrid vsock relays port 52) and
 * sshd, both in a network namespace holding the VM's address on a veth
 * on the banger bridge (the agent there sees sshd listen, as in a guest).
 * The guest user is root for both (banger.conf's [guest] user), so both
 * run the same command as the same user on the same files.
 *
 *   true      `vm exec NAME -- true` and `vm ssh NAME -- true`, wall time
 *             from the CLI's start to its exit;
 *   stdout    `vm exec NAME -- cat BIG` and `vm ssh NAME -- cat BIG` into
 *             a pipe this program drains, MiB/s (a file of random
 *             bytes, so no compression helps either);
 *   ready     `vm up NAME` (waiting for the guest): the agent's READY
 *             answer passes through a relay of this program's own (a
 *             thread between the VMM's socket and the agent), which
 *             stamps the last bytes the agent sent; the time from that
 *             stamp to `vm up`'s exit.
 *
 * The CLI runs as the test user, started as a shell starts it (no setpriv
 * exec in between). Medians. Needs root and sshd: openssh-server, or
 * $BANGER_BENCH_SSHD_ROOT (see enter_guest). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "bench-common.h"
#include "harness.h"

#define TRUE_RUNS  21
#define CAT_RUNS   5
#define UP_RUNS    9
#define BIG_BYTES  (G_GINT64_CONSTANT (256) << 20)

static BgBenchIds user_ids;

typedef struct {
  BgHarness *h;
  char      *home;
  char      *ns;
} Ctx;

/* ---- the CLI, as the test user ---- */

/* banger @args as the user, its stdout to @out_fd (-1: /dev/null); not
 * waited for. */
static GPid
cli_async (Ctx *c, int out_fd, const char * const *args)
{
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();
  g_auto(GStrv) argv = NULL;
  g_auto(GStrv) envp = bg_harness_cli_envp (c->h, c->home, c->home);
  g_autoptr(GError) error = NULL;
  int null = open ("/dev/null", O_RDWR | O_CLOEXEC);
  GPid pid;

  g_strv_builder_add (b, g_getenv ("BANGER_CLI"));
  g_strv_builder_addv (b, (const char **) args);
  argv = g_strv_builder_end (b);
  if (!g_spawn_async_with_fds (c->home, argv, envp, G_SPAWN_DO_NOT_REAP_CHILD, bg_bench_become, &user_ids, &pid,
                               null, out_fd >= 0 ? out_fd : null, -1, &error))
    g_error ("%s", error->message);
  close (null);
  return pid;
}

static void
wait_ok (GPid pid, const char *what)
{
  int status;

  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    g_error ("%s failed (status %d)", what, status);
}

static double
time_cli (Ctx *c, const char * const *args)
{
  double t0 = bg_bench_now_ms ();
  GPid pid = cli_async (c, -1, args);

  wait_ok (pid, args[1]);
  return bg_bench_now_ms () - t0;
}

/* MiB/s of `banger @args`'s stdout, drained here; it must be @expect bytes. */
static double
throughput (Ctx *c, const char * const *args, gint64 expect)
{
  static char buf[1 << 20];
  int p[2];
  gint64 got = 0;
  double t0 = bg_bench_now_ms (), t;
  ssize_t n;
  GPid pid;

  g_assert_no_errno (pipe2 (p, O_CLOEXEC));
  pid = cli_async (c, p[1], args);
  close (p[1]);
  while ((n = read (p[0], buf, sizeof buf)) > 0)
    got += n;
  close (p[0]);
  wait_ok (pid, args[1]);
  t = bg_bench_now_ms () - t0;
  g_assert_cmpint (got, ==, expect);
  return (expect / 1048576.0) / (t / 1000.0);
}

static void
run_quiet (const char * const *argv)
{
  int status;

  bg_harness_run_argv (argv, NULL, &status);
  if (status != 0)
    g_error ("%s %s failed", argv[0], argv[1]);
}
#define RUN(...) run_quiet ((const char * const[]) { __VA_ARGS__, NULL })

static void
stop (GPid pid)
{
  if (pid > 0)
    {
      kill (pid, SIGTERM);
      waitpid (pid, NULL, 0);
    }
}

static void
wait_file (const char *p)
{
  gint64 deadline = bg_test_deadline (10);

  while (!g_file_test (p, G_FILE_TEST_EXISTS) && g_get_monotonic_time () < deadline)
    g_usleep (5000);
  g_assert_true (g_file_test (p, G_FILE_TEST_EXISTS));
}

static guint32
uid_of_process (gint64 pid)
{
  g_autofree char *p = g_strdup_printf ("/proc/%" G_GINT64_FORMAT "/status", pid);
  g_autofree char *text = NULL;
  const char *line;

  g_assert_true (g_file_get_contents (p, &text, NULL, NULL));
  line = strstr (text, "\nUid:");
  g_assert_nonnull (line);
  return (guint32) g_ascii_strtoull (line + 5, NULL, 10);
}

/* ---- the stand-in guest ---- */

/* Its processes run in the guest's network namespace and in a mount
 * namespace of their own, where sshd is installed: the host's, or (a host
 * without openssh-server, whose tests want none: an agent on the host
 * would report it) the one $BANGER_BENCH_SSHD_ROOT holds, a `dpkg-deb -x`
 * of openssh-server and libwrap0, bound over /usr/sbin, with its
 * privilege-separation user added to a copy of /etc/passwd bound over
 * the real one. Nothing of it is seen outside the namespace. */
typedef struct {
  char *netns;        /* /run/netns/NAME */
  char *sbin;         /* NULL: the host's sshd */
  char *passwd;       /* NULL: the host's passwd has sshd */
} Guest;

static Guest guest_ns;

static void
enter_guest (gpointer data)
{
  const Guest *g = data;
  int fd = open (g->netns, O_RDONLY | O_CLOEXEC);

  if (fd < 0 || setns (fd, CLONE_NEWNET) < 0 || unshare (CLONE_NEWNS) < 0 ||
      mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
      (g->sbin && mount (g->sbin, "/usr/sbin", NULL, MS_BIND, NULL) < 0) ||
      (g->passwd && mount (g->passwd, "/etc/passwd", NULL, MS_BIND, NULL) < 0))
    _exit (126);
  close (fd);
}

static const char *
sshd_root (void)
{
  const char *root = g_getenv ("BANGER_BENCH_SSHD_ROOT");
  return root && *root ? root : NULL;
}

static gboolean
have_sshd (void)
{
  g_autofree char *in_root = sshd_root () ? g_build_filename (sshd_root (), "usr/sbin/sshd", NULL) : NULL;

  return g_file_test ("/usr/sbin/sshd", G_FILE_TEST_IS_EXECUTABLE) ||
         (in_root && g_file_test (in_root, G_FILE_TEST_IS_EXECUTABLE));
}

static void
guest_init (Ctx *c)
{
  guest_ns.netns = g_strdup_printf ("/run/netns/%s", c->ns);
  if (!g_file_test ("/usr/sbin/sshd", G_FILE_TEST_IS_EXECUTABLE))
    guest_ns.sbin = g_build_filename (sshd_root (), "usr/sbin", NULL);
  if (getpwnam ("sshd") == NULL)
    {
      g_autofree char *text = NULL;
      g_autofree char *more = NULL;
      uid_t uid = 64000;

      while (getpwuid (uid) != NULL)
        uid++;
      guest_ns.passwd = g_build_filename (c->h->tmp, "guest-passwd", NULL);
      g_assert_true (g_file_get_contents ("/etc/passwd", &text, NULL, NULL));
      more = g_strdup_printf ("%ssshd:x:%u:65534::/run/sshd:/usr/sbin/nologin\n", text, (guint) uid);
      g_assert_true (g_file_set_contents (guest_ns.passwd, more, -1, NULL));
      g_chmod (guest_ns.passwd, 0644);
    }
}

static GPid
spawn_guest (const char * const *argv)
{
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) envp = g_get_environ ();
  GPid pid;

  if (guest_ns.sbin)
    {
      g_autofree char *lib = g_build_filename (sshd_root (), "usr/lib/x86_64-linux-gnu", NULL);
      envp = g_environ_setenv (envp, "LD_LIBRARY_PATH", lib, TRUE);
    }
  if (!g_spawn_async (NULL, (char **) argv, envp, G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL,
                      enter_guest, &guest_ns, &pid, &error))
    g_error ("%s", error->message);
  return pid;
}

/* banger-agent as root in the guest, on @sock, which the jailed VMM
 * (@vmm_pid's uid) may open. */
static GPid
start_agent (Ctx *c, const char *sock, gint64 vmm_pid)
{
  GPid pid = spawn_guest ((const char * const[]) { g_getenv ("BANGER_AGENT"), "--listen-unix", sock, NULL });

  wait_file (sock);
  if (vmm_pid > 0)
    g_assert_no_errno (chown (sock, uid_of_process (vmm_pid), 0));
  return pid;
}

static JsonObject *
vm_json (Ctx *c, const char *name, JsonParser *p)
{
  g_autofree char *out = NULL, *err = NULL;

  if (bg_harness_run_cli (c->h, BG_TEST_USER_A, &out, &err, "vm", "show", name, "--json", NULL) != 0)
    g_error ("vm show: %s", err);
  g_assert_true (json_parser_load_from_data (p, out, -1, NULL));
  return json_node_get_object (json_parser_get_root (p));
}

/* sshd in the guest's namespace on @address, the VM's own host key (the
 * one banger pinned), root logging in with the user's banger key. */
static GPid
start_sshd (Ctx *c, const char *name, const char *address)
{
  g_autofree char *dir = g_build_filename (c->h->tmp, "bench-sshd", NULL);
  g_autofree char *conf = g_build_filename (dir, "sshd_config", NULL);
  g_autofree char *host_key = g_build_filename (c->home, ".local/state/banger/vms", name, "ssh_host_ed25519_key",
                                                NULL);
  g_autofree char *user_key = g_build_filename (c->home, ".local/share/banger/ssh/id_ed25519.pub", NULL);
  g_autofree char *keys = g_build_filename (dir, "authorized_keys", NULL);
  g_autofree char *text = NULL, *pub = NULL;
  GPid pid;

  g_mkdir_with_parents (dir, 0700);
  g_assert_true (g_file_get_contents (user_key, &pub, NULL, NULL));
  g_assert_true (g_file_set_contents (keys, pub, -1, NULL));
  text = g_strdup_printf ("ListenAddress %s\nHostKey %s\nAuthorizedKeysFile %s\nPermitRootLogin yes\n"
                          "UsePAM no\nStrictModes no\nPidFile none\n", address, host_key, keys);
  g_assert_true (g_file_set_contents (conf, text, -1, NULL));
  g_mkdir_with_parents ("/run/sshd", 0755);
  pid = spawn_guest ((const char * const[]) { "/usr/sbin/sshd", "-D", "-e", "-f", conf, NULL });
  {
    gint64 deadline = bg_test_deadline (10);
    g_autofree char *ss = NULL;

    /* Listening in the namespace: what the agent there checks. */
    while (g_get_monotonic_time () < deadline)
      {
        const char *argv[] = { "ip", "netns", "exec", c->ns, "ss", "-Hltn", "sport = :22", NULL };
        g_clear_pointer (&ss, g_free);
        bg_harness_run_argv (argv, &ss, NULL);
        if (ss && strstr (ss, "LISTEN"))
          break;
        g_usleep (20000);
      }
    g_assert_nonnull (strstr (ss ? ss : "", "LISTEN"));
  }
  return pid;
}

/* ---- the ready relay ---- */

typedef struct {
  char        *path;      /* where the VMM connects: the guest's port 52 */
  char        *agent;     /* where the agent listens */
  int          listener;
  gint64       last_from_agent;   /* µs, monotonic */
  GMutex       lock;
  gboolean     quit;
} Relay;

static void
relay_conn (Relay *r, int a)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  int b = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  char buf[65536];
  gboolean a_open = TRUE, b_open = TRUE;

  g_strlcpy (sa.sun_path, r->agent, sizeof sa.sun_path);
  if (connect (b, (struct sockaddr *) &sa, sizeof sa) < 0)
    g_error ("relay: cannot reach the agent: %s", g_strerror (errno));
  while (a_open && b_open)
    {
      struct pollfd p[2] = { { a, POLLIN, 0 }, { b, POLLIN, 0 } };
      ssize_t n;

      if (poll (p, 2, 1000) <= 0)
        {
          if (r->quit)
            break;
          continue;
        }
      if (p[1].revents)
        {
          n = read (b, buf, sizeof buf);
          if (n <= 0)
            b_open = FALSE;
          else
            {
              if (write (a, buf, n) != n)
                a_open = FALSE;
              g_mutex_lock (&r->lock);
              r->last_from_agent = g_get_monotonic_time ();
              g_mutex_unlock (&r->lock);
            }
        }
      if (p[0].revents)
        {
          n = read (a, buf, sizeof buf);
          if (n <= 0 || write (b, buf, n) != n)
            a_open = FALSE;
        }
    }
  close (a);
  close (b);
}

static gpointer
relay_thread (gpointer data)
{
  Relay *r = data;

  while (!r->quit)
    {
      struct pollfd p = { r->listener, POLLIN, 0 };
      int a;

      if (poll (&p, 1, 100) <= 0)
        continue;
      if ((a = accept4 (r->listener, NULL, NULL, SOCK_CLOEXEC)) >= 0)
        relay_conn (r, a);
    }
  return NULL;
}

/* `vm up NAME` while the guest "boots": once the record says running,
 * the relay listens where the VMM relays port 52, to the agent. */
static double
ready_once (Ctx *c, const char *name, const char *agent_sock)
{
  const char *args[] = { "vm", "up", name, "--timeout", "60", NULL };
  g_autofree char *record = g_build_filename (c->home, ".local/state/banger/vms", name, "vm.json", NULL);
  g_autofree char *vsock = NULL;
  Relay r = { 0 };
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  gint64 vmm_pid = 0, deadline = bg_test_deadline (60);
  GThread *thread;
  double exited;
  GPid pid;

  pid = cli_async (c, -1, args);
  while (vsock == NULL && g_get_monotonic_time () < deadline)
    {
      g_autoptr(JsonParser) p = json_parser_new ();
      JsonObject *o;

      if (json_parser_load_from_file (p, record, NULL) &&
          (o = json_node_get_object (json_parser_get_root (p))) != NULL &&
          g_strcmp0 (json_object_get_string_member_with_default (o, "state", ""), "running") == 0)
        {
          vsock = g_strdup (json_object_get_string_member (o, "vsock_socket"));
          vmm_pid = json_object_get_int_member (o, "pid");
        }
      else
        g_usleep (2000);
    }
  g_assert_nonnull (vsock);
  r.path = g_strdup_printf ("%s.guest_52", vsock);
  r.agent = g_strdup (agent_sock);
  g_mutex_init (&r.lock);
  r.listener = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  g_strlcpy (sa.sun_path, r.path, sizeof sa.sun_path);
  g_assert_no_errno (bind (r.listener, (struct sockaddr *) &sa, sizeof sa));
  g_assert_no_errno (listen (r.listener, 8));
  g_assert_no_errno (chown (r.path, uid_of_process (vmm_pid), 0));
  thread = g_thread_new ("relay", relay_thread, &r);

  wait_ok (pid, "vm up");
  exited = g_get_monotonic_time ();
  r.quit = TRUE;
  g_thread_join (thread);
  close (r.listener);
  g_unlink (r.path);
  g_assert_cmpint (r.last_from_agent, >, 0);
  bg_harness_run_cli (c->h, BG_TEST_USER_A, NULL, NULL, "vm", "rm", name, "--force", NULL);
  g_free (r.path);
  g_free (r.agent);
  g_mutex_clear (&r.lock);
  return (exited - r.last_from_agent) / 1000.0;
}

static void
bench_exec (void)
{
  Ctx c = { 0 };
  g_autofree char *out = NULL, *err = NULL, *cidr = NULL, *address = NULL, *vsock = NULL;
  g_autofree char *guest = NULL, *big = NULL, *agent2 = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GArray) exec_true = bg_bench_samples (), ssh_true = bg_bench_samples (), exec_cat = bg_bench_samples (), ssh_cat = bg_bench_samples ();
  g_autoptr(GArray) ready = bg_bench_samples ();
  JsonObject *vm;
  gint64 vmm_pid;
  GPid agent, agent_b, sshd;

  c.h = bg_harness_start (60);
  c.home = g_strdup_printf ("%s/home-%s", c.h->tmp, BG_TEST_USER_A);
  c.ns = g_strdup_printf ("bgbe%d", bg_harness_run_id ());
  bg_bench_ids_of (&user_ids, BG_TEST_USER_A);
  bg_harness_set_group_rule (c.h, TRUE);
  bg_harness_use_vmm (c.h, g_getenv ("BANGER_TEST_VMM"));
  bg_harness_import_test_image (c.h, BG_TEST_USER_A);
  {
    /* The guest user both ways in: root (the agent's default). */
    g_autofree char *dir = g_build_filename (c.home, ".config", "banger", NULL);
    g_autofree char *conf = g_build_filename (dir, "banger.conf", NULL);
    const char *chown_argv[] = { "chown", "-R", BG_TEST_USER_A ":", c.home, NULL };

    g_mkdir_with_parents (dir, 0755);
    g_assert_true (g_file_set_contents (conf, "[guest]\nuser = root\n", -1, NULL));
    bg_harness_run_argv (chown_argv, NULL, NULL);
  }
  if (bg_harness_run_cli (c.h, BG_TEST_USER_A, &out, &err, "vm", "up", "ex", "--no-wait", NULL) != 0)
    g_error ("vm up: %s", err);
  vm = vm_json (&c, "ex", parser);
  address = g_strdup (json_object_get_string_member (vm, "address"));
  vsock = g_strdup (json_object_get_string_member (vm, "vsock_socket"));
  vmm_pid = json_object_get_int_member (vm, "pid");
  cidr = g_strdup_printf ("%s/%" G_GINT64_FORMAT, address, json_object_get_int_member (vm, "prefix"));

  /* The stand-in guest: a namespace with the VM's address on the bridge. */
  RUN ("ip", "link", "set", "lo", "up");
  RUN ("ip", "netns", "add", c.ns);
  RUN ("ip", "link", "add", "beh0", "type", "veth", "peer", "name", "beg0", "netns", c.ns);
  RUN ("ip", "link", "set", "beh0", "master", "banger0", "up");
  RUN ("ip", "-n", c.ns, "addr", "add", cidr, "dev", "beg0");
  RUN ("ip", "-n", c.ns, "link", "set", "beg0", "up");
  RUN ("ip", "-n", c.ns, "link", "set", "lo", "up");
  guest_init (&c);
  sshd = start_sshd (&c, "ex", address);
  guest = g_strdup_printf ("%s.guest_52", vsock);
  agent = start_agent (&c, guest, vmm_pid);

  /* BIG: incompressible, readable by root in the "guest" (the host's
   * own files, as the stand-in guest's). */
  big = g_build_filename (c.h->tmp, "big", NULL);
  {
    g_autofree char *data = g_malloc (BIG_BYTES);
    g_autoptr(GRand) rand = g_rand_new_with_seed (24);

    for (gint64 i = 0; i < BIG_BYTES; i += 4)
      *(guint32 *) (data + i) = g_rand_int (rand);
    g_assert_true (g_file_set_contents (big, data, BIG_BYTES, NULL));
  }

  /* Alternating, so the machine's noise falls on both. */
  for (guint i = 0; i < TRUE_RUNS; i++)
    {
      double t = time_cli (&c, (const char * const[]) { "vm", "exec", "ex", "--", "true", NULL });
      g_array_append_val (exec_true, t);
      t = time_cli (&c, (const char * const[]) { "vm", "ssh", "ex", "--", "true", NULL });
      g_array_append_val (ssh_true, t);
    }
  for (guint i = 0; i < CAT_RUNS; i++)
    {
      double r = throughput (&c, (const char * const[]) { "vm", "exec", "ex", "--", "cat", big, NULL }, BIG_BYTES);
      g_array_append_val (exec_cat, r);
      r = throughput (&c, (const char * const[]) { "vm", "ssh", "ex", "--", "cat", big, NULL }, BIG_BYTES);
      g_array_append_val (ssh_cat, r);
    }

  /* The ready path: a second agent behind the relay, in the same
   * namespace, so it sees sshd listening as the guest's would. */
  agent2 = g_build_filename (c.h->tmp, "agent-ready.sock", NULL);
  agent_b = start_agent (&c, agent2, 0);
  for (guint i = 0; i < UP_RUNS; i++)
    {
      g_autofree char *name = g_strdup_printf ("rd%u", i);
      double ms = ready_once (&c, name, agent2);
      g_array_append_val (ready, ms);
    }

  g_print ("\n# vm exec against vm ssh, same stand-in guest (banger-agent and sshd), as the user\n");
  g_print ("%-34s %12s %12s %10s\n", "", "vm exec", "vm ssh", "ratio");
  g_print ("%-34s %9.2f ms %9.2f ms %9.1fx faster (goal >= 10x)\n", "-- true, median of 21",
           bg_bench_median (exec_true), bg_bench_median (ssh_true), bg_bench_median (ssh_true) / bg_bench_median (exec_true));
  g_print ("%-34s %7.0f MiB/s %6.0f MiB/s %9.2fx (goal >= 2x)\n", "-- cat 256 MiB, stdout, median of 5",
           bg_bench_median (exec_cat), bg_bench_median (ssh_cat), bg_bench_median (exec_cat) / bg_bench_median (ssh_cat));
  {
    double m = bg_bench_median (ready);   /* sorts: min and max after it */

    g_print ("vm up: the agent's READY answer to vm up's exit, median of %d: %.2f ms (goal <= 5 ms; min %.2f, "
             "max %.2f)\n", UP_RUNS, m, g_array_index (ready, double, 0), g_array_index (ready, double, ready->len - 1));
  }

  stop (agent);
  stop (agent_b);
  stop (sshd);
  g_unlink (guest);
  g_unlink (big);
  bg_harness_run_cli (c.h, BG_TEST_USER_A, NULL, NULL, "vm", "rm", "ex", "--force", NULL);
  {
    const char *del[] = { "ip", "netns", "del", c.ns, NULL };
    bg_harness_run_argv (del, NULL, NULL);
  }
  bg_harness_stop (c.h);
  g_free (c.home);
  g_free (c.ns);
}

static void
add (void)
{
  if (!have_sshd ())
    {
      g_print ("bench-exec: skipped: no sshd, and vm ssh is half of it: install openssh-server, or set "
               "BANGER_BENCH_SSHD_ROOT to a `dpkg-deb -x` of openssh-server and libwrap0\n");
      return;
    }
  g_test_add_func ("/bench/exec", bench_exec);
}

int
main (int argc, char **argv)
{
  return bg_harness_main (&argc, &argv, add);
}
