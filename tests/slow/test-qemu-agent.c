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

#define exec_in(h, out, ...) vm_exec ((h), "qagent", (out), __VA_ARGS__)

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
  g_autofree char *out = NULL, *err = NULL, *to = g_strdup_printf ("HostName %s\n", address6), *name = NULL;
  const char *ping[] = { "ping", "-6", "-c", "1", "-W", "30", address6, NULL };
  int status;

  if (!g_spawn_sync (NULL, (char **) ping, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err, &status, NULL) ||
      !g_spawn_check_wait_status (status, NULL))
    g_error ("ping -6 %s: %s%s", address6, out, err);
  name = ssh_with_config (h, vm, to, TRUE);
  g_assert_cmpstr (name, ==, vm->name);
}

static void
test_agent_in_guest (void)
{
  BgHarness *h = bg_harness_start (600);
  g_autofree char *up_out = NULL, *show = NULL, *e = NULL, *o = NULL, *want = NULL, *address6 = NULL;
  g_autoptr(JsonObject) rec = NULL;
  g_autoptr(Vm) vm = NULL;

  import_image (h, prep_home, "guest");
  vm = up_with_agent (h, "qagent", "guest", &up_out);
  g_assert_cmpint (cli (h, &show, NULL, "vm", "show", "qagent", "--json", NULL), ==, 0);
  rec = json_object (show);
  address6 = g_strdup (json_object_get_string_member_with_default (rec, "address6", ""));
  /* Ready because the agent said so (and sshd listens): not SSH polling. */
  g_assert_nonnull (strstr (up_out, "its guest agent and sshd answer"));

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
