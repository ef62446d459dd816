/* The guest agent in a real guest, and the guest's IPv6, booted by QEMU.
 *
 * This host has no vhost-vsock, so the VM's vsock is the test VMM's
 * (Firecracker's hybrid vsock, tests/vmm) and the guest's end is the
 * virtio-serial port org.banger.agent, which banger-agent serves where
 * the guest has no vsock: the VMM relays `CONNECT 52` on the VM's vsock
 * socket to QEMU's chardev socket. `banger vm up` (the real one, with its
 * VMM left running) is waiting while QEMU boots the VM it configured; it
 * must return because the agent said ready. Then `vm exec` (exit codes,
 * a signal, megabytes of stdout, stdin to EOF, a terminal's size) and
 * `vm cp` both ways, with the guest's sshd stopped so that nothing can
 * have gone over SSH; and the guest's IPv6 address answers ping and SSH.
 * What only a KVM host with the real Firecracker proves (its vsock, the
 * ready time) is in tests/smoke. */
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <pwd.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "harness.h"
#include "qemu-vm.h"

static char *prep_home;

static const char *
prepare (void)
{
  if (!g_file_test ("/usr/bin/qemu-system-x86_64", G_FILE_TEST_IS_EXECUTABLE))
    return "needs qemu-system-x86_64 (the boot instrument)";
  if (!bg_harness_mirror_reachable ())
    return "the Debian mirror (deb.debian.org) is not reachable: cannot build an image";
  prep_home = bg_harness_build_image (NULL, "guest", FALSE);
  return NULL;
}

static char *
user_home (BgHarness *h)
{
  return g_strdup_printf ("%s/home-%s", h->tmp, BG_TEST_USER_A);
}

/* banger as user A, not waited for, with the given stdio (-1: the
 * test's own). */
static GPid
cli_async (BgHarness *h, int in, int out, int err, const char * const *args)
{
  g_autofree char *home = user_home (h);
  g_autofree char *runtime = g_strdup_printf ("%s/runtime-%s", h->tmp, BG_TEST_USER_A);
  g_auto(GStrv) argv = bg_harness_cli_argv (BG_TEST_USER_A, args);
  g_auto(GStrv) envp = bg_harness_cli_envp (h, home, runtime);
  g_autoptr(GError) error = NULL;
  GPid pid;

  if (!g_spawn_async_with_fds (home, argv, envp, G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &pid,
                               in, out, err, &error))
    g_error ("%s", error->message);
  return pid;
}

static int
wait_status (GPid pid)
{
  int status;

  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  g_spawn_close_pid (pid);
  return WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
}

static char *
console_tail (Vm *vm)
{
  g_autofree char *log = NULL;

  if (!g_file_get_contents (vm->console, &log, NULL, NULL))
    return g_strdup ("(no console)");
  return g_strdup (log + MAX (0, (int) strlen (log) - 4000));
}

/* Waits (bounded; a console silent for three minutes is a stuck guest)
 * until the console shows @needle. */
static void
wait_agent_console (Vm *vm, const char *needle, GPid also)
{
  gint64 end = bg_test_deadline (900);
  gsize seen = 0;
  int quiet = 0;

  for (;;)
    {
      g_autofree char *log = NULL;
      gsize len = 0;

      if (g_file_get_contents (vm->console, &log, &len, NULL) && strstr (log, needle) != NULL)
        return;
      quiet = len > seen ? 0 : quiet + 1;
      seen = MAX (seen, len);
      if (waitpid (vm->qemu, NULL, WNOHANG) == vm->qemu)
        {
          g_autofree char *tail = console_tail (vm), *qemu_log = g_strdup_printf ("%s.qemu-stderr", vm->console);
          g_autofree char *qemu_err = NULL;

          g_file_get_contents (qemu_log, &qemu_err, NULL, NULL);
          g_error ("QEMU ended before \"%s\" was on %s's console: %s; console:\n%s", needle, vm->name,
                   qemu_err ? qemu_err : "", tail);
        }
      if (also && waitpid (also, NULL, WNOHANG) == also)
        g_error ("vm up ended before \"%s\" was on %s's console", needle, vm->name);
      if (g_get_monotonic_time () > end || (guint) quiet > bg_test_timeout (180))
        {
          g_autofree char *tail = console_tail (vm);
          g_error ("no \"%s\" on %s's console; console:\n%s", needle, vm->name, tail);
        }
      g_usleep (G_USEC_PER_SEC);
    }
}

/* nft with @argv (the test's own table; banger's are never touched). */
static void
nft (const char * const *argv)
{
  g_autofree char *err = NULL;
  int status;

  if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, &err, &status, NULL) ||
      !g_spawn_check_wait_status (status, NULL))
    g_error ("nft: %s", err);
}

static int
exec_in (BgHarness *h, char **out, const char *first, ...) G_GNUC_NULL_TERMINATED;

/* `banger vm exec qagent -- ARGV...`: its status; its stdout in @out. */
static int
exec_in (BgHarness *h, char **out, const char *first, ...)
{
  const char *a[12] = { "vm", "exec", "qagent", "--", first };
  g_autofree char *err = NULL;
  va_list ap;
  int n = 5, status;

  va_start (ap, first);
  while ((a[n] = va_arg (ap, const char *)) != NULL)
    if (++n == 11)
      g_error ("exec_in(): too many arguments");
  va_end (ap);
  status = bg_harness_run_cli (h, BG_TEST_USER_A, out, &err, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8],
                               a[9], a[10], NULL);
  if (status != 0 && status < 128)
    g_test_message ("vm exec %s: %d: %s", first, status, err);
  return status;
}

/* stdin, read by the command to its end. */
static void
assert_stdin_to_eof (BgHarness *h)
{
  const char *args[] = { "vm", "exec", "qagent", "-i", "--", "sha256sum", NULL };
  g_autofree char *home = user_home (h), *path = g_build_filename (home, "stdin.bin", NULL);
  g_autofree char *data = g_malloc (1536 * 1024), *sum = NULL, *out_path = g_build_filename (home, "sum.txt", NULL);
  g_autofree char *got = NULL;
  int in, out;

  for (gsize i = 0; i < 1536 * 1024; i++)
    data[i] = (char) ((i * 7 + i / 4099) & 0xff);
  g_assert_true (g_file_set_contents (path, data, 1536 * 1024, NULL));
  sum = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) data, 1536 * 1024);
  in = open (path, O_RDONLY | O_CLOEXEC);
  out = open (out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  g_assert_cmpint (in, >=, 0);
  g_assert_cmpint (out, >=, 0);
  g_assert_cmpint (wait_status (cli_async (h, in, out, -1, args)), ==, 0);
  close (in);
  close (out);
  g_assert_true (g_file_get_contents (out_path, &got, NULL, NULL));
  g_assert_true (g_str_has_prefix (got, sum));
}

/* -t: the command's terminal has ours's size. */
static void
assert_pty_size (BgHarness *h)
{
  const char *args[] = { "vm", "exec", "qagent", "-t", "--", "stty", "size", NULL };
  struct winsize ws = { .ws_row = 37, .ws_col = 101 };
  g_autoptr(GString) seen = g_string_new (NULL);
  gint64 end = bg_test_deadline (300);
  int master, slave, status;
  GPid pid;

  g_assert_no_errno (openpty (&master, &slave, NULL, NULL, &ws));
  pid = cli_async (h, slave, slave, slave, args);
  close (slave);
  for (;;)
    {
      struct pollfd p = { master, POLLIN, 0 };
      char buf[4096];
      ssize_t n;

      if (g_get_monotonic_time () > end)
        g_error ("vm exec -t: no end; it printed: %s", seen->str);
      if (poll (&p, 1, 1000) <= 0)
        continue;
      n = read (master, buf, sizeof buf);
      if (n <= 0)
        break;   /* EIO: every slave closed, banger ended */
      g_string_append_len (seen, buf, n);
    }
  status = wait_status (pid);
  close (master);
  g_assert_cmpint (status, ==, 0);
  g_assert_nonnull (strstr (seen->str, "37 101"));
}

/* 'vm cp' into the guest and back out (over the agent: sshd is
 * stopped): the same bytes and modes. */
static void
assert_cp_both_ways (BgHarness *h)
{
  struct passwd *pw = getpwnam (BG_TEST_USER_A);
  g_autofree char *home = user_home (h);
  g_autofree char *dir = g_build_filename (home, "cpin", NULL), *file = g_build_filename (dir, "f.bin", NULL);
  g_autofree char *back = g_build_filename (home, "cpback", NULL), *back_file = NULL;
  g_autofree char *data = g_malloc (300 * 1024), *got = NULL, *o = NULL, *e = NULL;
  gsize len = 0;
  struct stat st;

  for (gsize i = 0; i < 300 * 1024; i++)
    data[i] = (char) ((i * 13 + i / 511) & 0xff);
  g_assert_no_errno (g_mkdir (dir, 0750));
  g_assert_true (g_file_set_contents (file, data, 300 * 1024, NULL));
  g_assert_no_errno (chmod (file, 0741));
  g_assert_no_errno (chown (dir, pw->pw_uid, pw->pw_gid));
  g_assert_no_errno (chown (file, pw->pw_uid, pw->pw_gid));
  if (cli (h, &o, &e, "vm", "cp", "-r", "cpin", "qagent:/tmp/cpin", NULL) != 0)
    g_error ("vm cp into the guest: %s", e);
  g_clear_pointer (&o, g_free);
  g_assert_cmpint (exec_in (h, &o, "stat", "-c", "%a %s", "/tmp/cpin/f.bin", NULL), ==, 0);
  g_assert_cmpstr (o, ==, "741 307200\n");
  g_clear_pointer (&e, g_free);
  if (cli (h, NULL, &e, "vm", "cp", "-r", "qagent:/tmp/cpin", "cpback", NULL) != 0)
    g_error ("vm cp out of the guest: %s", e);
  back_file = g_build_filename (back, "f.bin", NULL);
  g_assert_true (g_file_get_contents (back_file, &got, &len, NULL));
  g_assert_cmpmem (got, len, data, 300 * 1024);
  g_assert_no_errno (stat (back_file, &st));
  g_assert_cmpuint (st.st_mode & 07777, ==, 0741);
}

/* The guest's IPv6 address: it answers ping, and ssh with the pinned
 * host key (vm ssh-config's block, its HostName made the IPv6 one). */
static void
assert_ipv6 (BgHarness *h, Vm *vm, const char *address6)
{
  struct passwd *pw = getpwnam (BG_TEST_USER_A);
  g_autofree char *home = user_home (h);
  g_autofree char *runtime = g_strdup_printf ("%s/runtime-%s", h->tmp, BG_TEST_USER_A);
  g_autofree char *block = NULL, *e = NULL, *from = NULL, *to = NULL, *conf = NULL, *path = NULL;
  g_autofree char *uid = g_strdup_printf ("--reuid=%u", pw->pw_uid), *gid = g_strdup_printf ("--regid=%u", pw->pw_gid);
  g_autofree char *out = NULL, *err = NULL;
  g_auto(GStrv) envp = bg_harness_cli_envp (h, home, runtime);
  const char *ssh[] = { "setpriv", uid, gid, "--init-groups", "--", "ssh", "-6", "-F", NULL, "-o", "BatchMode=yes",
                        "-o", "ConnectTimeout=60", vm->name, "hostname", NULL };
  const char *ping[] = { "ping", "-6", "-c", "1", "-W", "30", address6, NULL };
  int status;

  if (!g_spawn_sync (NULL, (char **) ping, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err, &status, NULL) ||
      !g_spawn_check_wait_status (status, NULL))
    g_error ("ping -6 %s: %s%s", address6, out, err);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  if (cli (h, &block, &e, "vm", "ssh-config", vm->name, NULL) != 0)
    g_error ("vm ssh-config: %s", e);
  from = g_strdup_printf ("HostName %s\n", vm->address);
  to = g_strdup_printf ("HostName %s\n", address6);
  g_assert_nonnull (strstr (block, from));
  {
    g_auto(GStrv) halves = g_strsplit (block, from, 2);
    conf = g_strjoin (to, halves[0], halves[1], NULL);
  }
  path = g_build_filename (home, "ipv6-ssh-config", NULL);
  g_assert_true (g_file_set_contents (path, conf, -1, NULL));
  g_assert_no_errno (chown (path, pw->pw_uid, pw->pw_gid));
  ssh[8] = path;
  if (!g_spawn_sync (home, (char **) ssh, envp, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err, &status, NULL) ||
      !g_spawn_check_wait_status (status, NULL))
    g_error ("ssh -6 to %s: %s", address6, err);
  g_assert_cmpstr (g_strstrip (out), ==, vm->name);
}

static void
test_agent_in_guest (void)
{
  BgHarness *h = bg_harness_start (600);
  const char *up_args[] = { "vm", "up", "qagent", "--image", "guest", "--disk", "3G", "--timeout", "1800", NULL };
  g_autofree char *home = NULL, *up_out_path = NULL, *up_err_path = NULL, *up_out = NULL, *up_err = NULL;
  g_autofree char *show = NULL, *e = NULL, *o = NULL, *want = NULL, *address6 = NULL;
  g_autoptr(JsonObject) rec = NULL;
  g_autoptr(Vm) vm = NULL;
  gint64 vmm_pid, started;
  int up_out_fd, up_err_fd, status;
  GPid up;

  import_image (h, prep_home, "guest");
  home = user_home (h);
  up_out_path = g_build_filename (home, "up.out", NULL);
  up_err_path = g_build_filename (home, "up.err", NULL);
  up_out_fd = open (up_out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  up_err_fd = open (up_err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  g_assert_cmpint (up_out_fd, >=, 0);
  g_assert_cmpint (up_err_fd, >=, 0);

  /* `vm up` waits for the guest; its VMM configures and "starts" it. */
  up = cli_async (h, -1, up_out_fd, up_err_fd, up_args);
  close (up_out_fd);
  close (up_err_fd);
  for (gint64 end = bg_test_deadline (300);; g_usleep (200000))
    {
      g_autofree char *state = NULL;

      g_clear_pointer (&show, g_free);
      if (g_get_monotonic_time () > end || waitpid (up, NULL, WNOHANG) == up)
        g_error ("vm up did not start the VM's VMM");
      if (cli (h, &show, NULL, "vm", "show", "qagent", "--json", NULL) != 0)
        continue;
      g_clear_pointer (&rec, json_object_unref);
      rec = json_object (show);
      if (!json_object_has_member (rec, "api_socket") || !json_object_has_member (rec, "vsock_socket"))
        continue;
      {
        const char *argv[] = { g_getenv ("BANGER_TEST_FC"), "--user=" BG_TEST_USER_A,
                               json_object_get_string_member (rec, "api_socket"), "get", NULL };
        bg_harness_run_argv (argv, &state, NULL);
      }
      if (state != NULL && strstr (state, "Running") != NULL)
        break;
    }
  vmm_pid = json_object_get_int_member (rec, "pid");
  vm = vm_from_record (h, "qagent", rec);
  /* SSH to the guest is refused until `vm up` returned: its ready can
   * only come from the agent (sshd starts about when udev loads the
   * port's driver, and `vm up` would otherwise take whichever answers
   * first). */
  {
    const char *table[] = { "nft", "add", "table", "inet", "bgqagent", NULL };
    const char *chain[] = { "nft", "add", "chain", "inet", "bgqagent", "out", "{", "type", "filter", "hook", "output",
                            "priority", "0", ";", "}", NULL };
    const char *rule[] = { "nft", "add", "rule", "inet", "bgqagent", "out", "ip", "daddr", vm->address, "tcp",
                           "dport", "22", "reject", "with", "tcp", "reset", NULL };

    nft (table);
    nft (chain);
    nft (rule);
  }
  g_assert_nonnull (strstr (vm->boot_args, "init=/usr/libexec/banger/banger-init"));
  address6 = g_strdup (json_object_get_string_member_with_default (rec, "address6", ""));
  agent_port (vm, json_object_get_string_member (rec, "vsock_socket"));
  /* A tap takes one VMM at a time: the test VMM lets go of it (it keeps
   * serving the API and the vsock), then QEMU attaches. */
  g_assert_no_errno (kill ((pid_t) vmm_pid, SIGUSR1));
  for (gint64 end = bg_test_deadline (30);; g_usleep (50000))
    {
      g_autofree char *fd_dir = g_strdup_printf ("/proc/%" G_GINT64_FORMAT "/fd", vmm_pid);
      g_autoptr(GDir) d = g_dir_open (fd_dir, 0, NULL);
      gboolean tun = FALSE;
      const char *fd;

      g_assert_nonnull (d);
      while ((fd = g_dir_read_name (d)) != NULL)
        {
          g_autofree char *path = g_build_filename (fd_dir, fd, NULL);
          g_autofree char *target = g_file_read_link (path, NULL);
          tun |= g_strcmp0 (target, "/dev/net/tun") == 0;
        }
      if (!tun)
        break;
      if (g_get_monotonic_time () > end)
        g_error ("the test VMM still holds the tap");
    }
  boot (vm);
  started = g_get_monotonic_time ();

  /* Until the guest's agent opened its port, CONNECT finds nothing (as
   * with Firecracker while nothing listens in the guest). */
  wait_agent_console (vm, "banger-agent: serving the virtio-serial port", up);
  agent_plug (vm, vmm_pid);
  status = wait_status (up);
  g_assert_true (g_file_get_contents (up_out_path, &up_out, NULL, NULL));
  g_assert_true (g_file_get_contents (up_err_path, &up_err, NULL, NULL));
  if (status != 0)
    {
      g_autofree char *tail = console_tail (vm);
      g_error ("vm up: %d: %s\nconsole:\n%s", status, up_err, tail);
    }
  g_test_message ("vm up returned %" G_GINT64_FORMAT " s after QEMU started (TCG): %s",
                  (g_get_monotonic_time () - started) / G_USEC_PER_SEC, g_strstrip (up_out));
  /* Ready because the agent said so (and sshd listens): not SSH polling. */
  g_assert_nonnull (strstr (up_out, "its guest agent and sshd answer"));
  {
    const char *drop[] = { "nft", "delete", "table", "inet", "bgqagent", NULL };
    nft (drop);
  }

  /* With sshd stopped, everything below can only go over the agent. */
  g_assert_cmpint (exec_in (h, NULL, "systemctl", "stop", "ssh.service", NULL), ==, 0);
  g_assert_cmpint (exec_in (h, NULL, "sh", "-c", "! ss -Hltn 'sport = :22' | grep -q .", NULL), ==, 0);
  g_assert_cmpint (exec_in (h, NULL, "true", NULL), ==, 0);
  g_assert_cmpint (exec_in (h, NULL, "false", NULL), ==, 1);
  g_assert_cmpint (exec_in (h, NULL, "sh", "-c", "kill -TERM $$", NULL), ==, 143);
  g_assert_cmpint (exec_in (h, &o, "sh", "-c", "exit 7", NULL), ==, 7);
  /* Megabytes of stdout, the same bytes as the guest made. */
  {
    g_autofree char *big = NULL, *sum = NULL, *guest_sum = NULL;

    g_assert_cmpint (exec_in (h, &big, "seq", "1", "700000", NULL), ==, 0);
    g_assert_cmpuint (strlen (big), >, 4 * 1024 * 1024);
    sum = g_compute_checksum_for_string (G_CHECKSUM_SHA256, big, -1);
    g_assert_cmpint (exec_in (h, &guest_sum, "sh", "-c", "seq 1 700000 | sha256sum", NULL), ==, 0);
    g_assert_true (g_str_has_prefix (guest_sum, sum));
  }
  assert_stdin_to_eof (h);
  assert_pty_size (h);
  assert_cp_both_ways (h);
  g_clear_pointer (&e, g_free);
  g_assert_cmpint (cli (h, NULL, &e, "vm", "ssh", "qagent", "--", "true", NULL), !=, 0);

  /* IPv6 (issue 25): with sshd back. */
  g_assert_cmpint (exec_in (h, NULL, "systemctl", "start", "ssh.service", NULL), ==, 0);
  if (*address6 == '\0')
    g_error ("the VM has no IPv6 address: %s", show);
  g_clear_pointer (&o, g_free);
  g_assert_cmpint (exec_in (h, &o, "sh", "-c", "ip -6 -o addr show scope global", NULL), ==, 0);
  want = g_strdup_printf (" %s/", address6);
  g_assert_nonnull (strstr (o, want));
  assert_ipv6 (h, vm, address6);

  power_off (vm);
  if (kill ((pid_t) vmm_pid, 0) == 0)
    kill ((pid_t) vmm_pid, SIGKILL);
  g_assert_cmpint (cli (h, NULL, NULL, "vm", "rm", "qagent", NULL), ==, 0);
  bg_harness_stop (h);
}

static void
add_tests (void)
{
  g_test_add_func ("/slow/agent-over-virtio-serial-and-ipv6", test_agent_in_guest);
}

int
main (int argc, char **argv)
{
  int rc = bg_harness_main_full (&argc, &argv, prepare, add_tests);

  if (prep_home != NULL)
    {
      const char *rm[] = { "rm", "-rf", "--", prep_home, NULL };
      g_spawn_sync (NULL, (char **) rm, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
    }
  return rc;
}
