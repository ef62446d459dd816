/* bench-forward: `banger vm forward` next to the other ways to reach a
 * VM's port, in one run, on the integration harness: a VM made by `vm up`
 * with the test VMM, and a stand-in guest (a network namespace with the
 * VM's address on a veth on the banger bridge) running a sink and a
 * ping-pong server. The paths:
 *
 *   direct      the VM's address, over the bridge (the bare baseline);
 *   banger      vm forward --background, 127.0.0.1 → the VM, as the user;
 *   ssh -L      ssh -N -L to the guest's sshd (the usual alternative);
 *   socat       socat TCP-LISTEN,fork → the VM.
 *
 * For each: throughput (512 MiB sent, acknowledged by the sink), the
 * setup of a connection (connect, one byte each way, close) and a round
 * trip on an open connection; medians. Needs root; ssh -L and socat are
 * skipped, saying so, where sshd or socat is not installed. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <json-glib/json-glib.h>

#include "harness.h"

#define SINK_PORT   9000
#define PING_PORT   9001
#define BULK_BYTES  (512 * 1024 * 1024)
#define BULK_RUNS   3
#define SETUPS      300
#define PINGS       2000

typedef struct {
  const char *name;
  char       *address;
  guint16     sink, ping;
  gboolean    skipped;
  const char *why;
  double      mib_s, setup_us, rtt_us;
} Path;

static double
now_us (void)
{
  return (double) g_get_monotonic_time ();
}

static int
cmp (gconstpointer a, gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

static double
median (double *v, guint n)
{
  qsort (v, n, sizeof *v, cmp);
  return v[n / 2];
}

static int
dial (const char *address, guint16 port)
{
  struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons (port) };
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

  inet_pton (AF_INET, address, &sin.sin_addr);
  if (connect (fd, (struct sockaddr *) &sin, sizeof sin) < 0)
    {
      close (fd);
      return -1;
    }
  setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

static void
wait_listening (const char *address, guint16 port)
{
  for (guint i = 0; i < 300; i++)
    {
      int fd = dial (address, port);
      if (fd >= 0)
        {
          close (fd);
          return;
        }
      g_usleep (50000);
    }
  g_error ("nothing listens on %s:%u", address, port);
}

/* ---- the stand-in guest's servers (a child in the guest's netns) ---- */

static void
sink (int c)
{
  static char buf[1 << 20];
  guint64 total = 0;
  ssize_t n;

  while ((n = read (c, buf, sizeof buf)) > 0)
    total += n;
  if (write (c, &total, sizeof total) < 0)
    _exit (1);
  _exit (0);
}

static void
ping (int c)
{
  char b;
  while (read (c, &b, 1) == 1)
    if (write (c, &b, 1) != 1)
      break;
  _exit (0);
}

static int
listen_any (guint16 port)
{
  struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons (port) };
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

  setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind (fd, (struct sockaddr *) &sin, sizeof sin) < 0 || listen (fd, 512) < 0)
    _exit (1);
  return fd;
}

static GPid
guest_servers (const char *ns)
{
  g_autofree char *path = g_strdup_printf ("/run/netns/%s", ns);
  GPid pid = fork ();

  if (pid == 0)
    {
      int nsfd = open (path, O_RDONLY | O_CLOEXEC);
      int s, p;

      if (nsfd < 0 || setns (nsfd, CLONE_NEWNET) < 0)
        _exit (1);
      s = listen_any (SINK_PORT);
      p = listen_any (PING_PORT);
      signal (SIGCHLD, SIG_IGN);
      for (;;)
        {
          fd_set set;
          FD_ZERO (&set);
          FD_SET (s, &set);
          FD_SET (p, &set);
          if (select (MAX (s, p) + 1, &set, NULL, NULL, NULL) <= 0)
            continue;
          for (guint k = 0; k < 2; k++)
            {
              int l = k ? p : s, c;
              if (!FD_ISSET (l, &set) || (c = accept (l, NULL, NULL)) < 0)
                continue;
              if (fork () == 0)
                {
                  int one = 1;
                  setsockopt (c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                  k ? ping (c) : sink (c);
                }
              close (c);
            }
        }
    }
  return pid;
}

/* ---- measurements ---- */

static double
bulk_once (Path *p)
{
  static char buf[1 << 20];
  guint64 sent = 0, acked = 0;
  int fd = dial (p->address, p->sink);
  double t0 = now_us ();

  g_assert_cmpint (fd, >=, 0);
  while (sent < BULK_BYTES)
    {
      ssize_t n = write (fd, buf, MIN (sizeof buf, BULK_BYTES - sent));
      g_assert_cmpint (n, >, 0);
      sent += n;
    }
  shutdown (fd, SHUT_WR);
  g_assert_cmpint (read (fd, &acked, sizeof acked), ==, sizeof acked);
  g_assert_cmpuint (acked, ==, sent);
  close (fd);
  return (BULK_BYTES / 1048576.0) / ((now_us () - t0) / 1e6);
}

static void
measure (Path *p)
{
  double bulk[BULK_RUNS], *setups = g_new (double, SETUPS), *rtts = g_new (double, PINGS);
  char b = 'x';
  int fd;

  for (guint i = 0; i < BULK_RUNS; i++)
    bulk[i] = bulk_once (p);
  p->mib_s = median (bulk, BULK_RUNS);
  for (guint i = 0; i < SETUPS; i++)
    {
      double t0 = now_us ();
      fd = dial (p->address, p->ping);
      g_assert_cmpint (fd, >=, 0);
      g_assert_cmpint (write (fd, &b, 1), ==, 1);
      g_assert_cmpint (read (fd, &b, 1), ==, 1);
      close (fd);
      setups[i] = now_us () - t0;
    }
  p->setup_us = median (setups, SETUPS);
  fd = dial (p->address, p->ping);
  for (guint i = 0; i < PINGS; i++)
    {
      double t0 = now_us ();
      g_assert_cmpint (write (fd, &b, 1), ==, 1);
      g_assert_cmpint (read (fd, &b, 1), ==, 1);
      rtts[i] = now_us () - t0;
    }
  close (fd);
  p->rtt_us = median (rtts, PINGS);
  g_free (setups);
  g_free (rtts);
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

static GPid
spawn (const char * const *argv)
{
  g_autoptr(GError) error = NULL;
  GPid pid;
  if (!g_spawn_async (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD |
                      G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &pid, &error))
    g_error ("%s", error->message);
  return pid;
}

/* sshd in the guest's namespace, root logging in with a key of the run's
 * own: what `ssh -L` to a VM goes through. */
static GPid
start_ssh_tunnel (BgHarness *h, const char *ns, const char *address, GPid *sshd)
{
  g_autofree char *dir = g_build_filename (h->tmp, "bench-ssh", NULL);
  g_autofree char *host_key = g_build_filename (dir, "host", NULL);
  g_autofree char *key = g_build_filename (dir, "client", NULL);
  g_autofree char *pub = g_strdup_printf ("%s.pub", key);
  g_autofree char *conf = g_build_filename (dir, "sshd_config", NULL);
  g_autofree char *text = NULL;
  g_autofree char *fwd = g_strdup_printf ("127.0.0.1:18202:127.0.0.1:%u", SINK_PORT);
  g_autofree char *fwd2 = g_strdup_printf ("127.0.0.1:18212:127.0.0.1:%u", PING_PORT);
  g_autofree char *target = g_strdup_printf ("root@%s", address);

  g_mkdir_with_parents (dir, 0700);
  RUN ("ssh-keygen", "-q", "-N", "", "-t", "ed25519", "-f", host_key);
  RUN ("ssh-keygen", "-q", "-N", "", "-t", "ed25519", "-f", key);
  text = g_strdup_printf ("ListenAddress %s\nHostKey %s\nAuthorizedKeysFile %s\nPermitRootLogin yes\n"
                          "UsePAM no\nStrictModes no\nPidFile none\nAllowTcpForwarding yes\n", address, host_key, pub);
  g_assert_true (g_file_set_contents (conf, text, -1, NULL));
  g_mkdir_with_parents ("/run/sshd", 0755);
  *sshd = spawn ((const char * const[]) { "ip", "netns", "exec", ns, "/usr/sbin/sshd", "-D", "-f", conf, NULL });
  wait_listening (address, 22);
  return spawn ((const char * const[]) { "ssh", "-N", "-i", key, "-o", "StrictHostKeyChecking=no", "-o",
                                         "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-L", fwd, "-L",
                                         fwd2, target, NULL });
}

static void
bench_forward (void)
{
  BgHarness *h = bg_harness_start (60);
  g_autofree char *out = NULL, *err = NULL, *cidr = NULL, *ns = g_strdup_printf ("bgbf%d", (int) getpid ());
  g_autofree char *socat_l1 = NULL, *socat_l2 = NULL, *socat_c1 = NULL, *socat_c2 = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonObject *vm;
  GPid servers, sshd = 0, tunnel = 0, socat1 = 0, socat2 = 0;
  g_autofree char *sshd_path = g_find_program_in_path ("sshd"), *socat_path = g_find_program_in_path ("socat");
  Path paths[4] = {
    { "direct" }, { "banger" }, { "ssh -L" }, { "socat" },
  };

  bg_harness_set_group_rule (h, TRUE);
  bg_harness_use_vmm (h, g_getenv ("BANGER_TEST_VMM"));
  bg_harness_import_test_image (h, BG_TEST_USER_A);
  if (bg_harness_run_cli (h, BG_TEST_USER_A, &out, &err, "vm", "up", "fw", "--no-wait", NULL) != 0)
    g_error ("vm up: %s", err);
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (bg_harness_run_cli (h, BG_TEST_USER_A, &out, &err, "vm", "show", "fw", "--json", NULL), ==, 0);
  g_assert_true (json_parser_load_from_data (parser, out, -1, NULL));
  vm = json_node_get_object (json_parser_get_root (parser));
  cidr = g_strdup_printf ("%s/%" G_GINT64_FORMAT, json_object_get_string_member (vm, "address"),
                          json_object_get_int_member (vm, "prefix"));

  RUN ("ip", "link", "set", "lo", "up");
  RUN ("ip", "netns", "add", ns);
  RUN ("ip", "link", "add", "bfh0", "type", "veth", "peer", "name", "bfg0", "netns", ns);
  RUN ("ip", "link", "set", "bfh0", "master", "banger0", "up");
  RUN ("ip", "-n", ns, "addr", "add", cidr, "dev", "bfg0");
  RUN ("ip", "-n", ns, "link", "set", "bfg0", "up");
  RUN ("ip", "-n", ns, "link", "set", "lo", "up");
  servers = guest_servers (ns);

  paths[0].address = g_strdup (json_object_get_string_member (vm, "address"));
  paths[0].sink = SINK_PORT;
  paths[0].ping = PING_PORT;
  wait_listening (paths[0].address, SINK_PORT);

  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  if (bg_harness_run_cli (h, BG_TEST_USER_A, &out, &err, "vm", "forward", "fw", "18201:9000", "18211:9001", "-b",
                          NULL) != 0)
    g_error ("vm forward: %s", err);
  paths[1] = (Path) { "banger", g_strdup ("127.0.0.1"), 18201, 18211 };

  paths[2] = (Path) { "ssh -L", g_strdup ("127.0.0.1"), 18202, 18212 };
  if (sshd_path == NULL || g_find_program_in_path ("ssh") == NULL)
    paths[2].skipped = TRUE, paths[2].why = "sshd (openssh-server) is not installed";
  else
    tunnel = start_ssh_tunnel (h, ns, paths[0].address, &sshd);

  paths[3] = (Path) { "socat", g_strdup ("127.0.0.1"), 18203, 18213 };
  if (socat_path == NULL)
    paths[3].skipped = TRUE, paths[3].why = "socat is not installed";
  else
    {
      socat_l1 = g_strdup ("TCP-LISTEN:18203,bind=127.0.0.1,reuseaddr,fork");
      socat_c1 = g_strdup_printf ("TCP:%s:%u,nodelay", paths[0].address, SINK_PORT);
      socat_l2 = g_strdup ("TCP-LISTEN:18213,bind=127.0.0.1,reuseaddr,fork,nodelay");
      socat_c2 = g_strdup_printf ("TCP:%s:%u,nodelay", paths[0].address, PING_PORT);
      socat1 = spawn ((const char * const[]) { "socat", socat_l1, socat_c1, NULL });
      socat2 = spawn ((const char * const[]) { "socat", socat_l2, socat_c2, NULL });
    }

  for (guint i = 0; i < G_N_ELEMENTS (paths); i++)
    {
      if (paths[i].skipped)
        continue;
      wait_listening (paths[i].address, paths[i].sink);
      wait_listening (paths[i].address, paths[i].ping);
      measure (&paths[i]);
    }

  g_print ("\n# vm forward: %d MiB bulk (median of %d), %d connection setups, %d round trips\n",
           BULK_BYTES >> 20, BULK_RUNS, SETUPS, PINGS);
  g_print ("%-8s %12s %10s %14s %10s %14s\n", "path", "MiB/s", "vs direct", "connect+1B µs", "rtt µs",
           "vs ssh -L");
  for (guint i = 0; i < G_N_ELEMENTS (paths); i++)
    {
      Path *p = &paths[i];
      if (p->skipped)
        {
          g_print ("%-8s skipped: %s\n", p->name, p->why);
          continue;
        }
      g_print ("%-8s %12.0f %9.0f%% %14.0f %10.1f", p->name, p->mib_s, 100 * p->mib_s / paths[0].mib_s,
               p->setup_us, p->rtt_us);
      if (!paths[2].skipped)
        g_print (" %13.1fx", p->mib_s / paths[2].mib_s);
      g_print ("\n");
    }

  for (GPid *pid = (GPid[]) { tunnel, sshd, socat1, socat2, servers, -1 }; *pid != -1; pid++)
    if (*pid > 0)
      {
        kill (*pid, SIGTERM);
        waitpid (*pid, NULL, 0);
      }
  bg_harness_run_cli (h, BG_TEST_USER_A, NULL, NULL, "vm", "rm", "fw", "--force", NULL);
  {
    const char *del[] = { "ip", "netns", "del", ns, NULL };
    bg_harness_run_argv (del, NULL, NULL);
  }
  for (guint i = 0; i < G_N_ELEMENTS (paths); i++)
    g_free (paths[i].address);
  bg_harness_stop (h);
}

static void
add (void)
{
  g_test_add_func ("/bench/forward", bench_forward);
}

int
main (int argc, char **argv)
{
  return bg_harness_main (&argc, &argv, add);
}
