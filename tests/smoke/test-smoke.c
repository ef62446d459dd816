/* The real thing, on a host that has it: KVM that boots stock kernels and
 * a Firecracker binary. Build the default image, `vm up` (ready when the
 * guest agent answers over the real vsock and reports sshd listening),
 * `vm ssh NAME -- uname -a`, `vm exec` through the real vsock (output,
 * exit statuses, a signal's 128+N, --user), `vm stop`, `vm rm`, all
 * as an unprivileged user, with the real mechanism, polkitd and bridge of
 * the integration harness. Meanwhile the test asks the agent itself for
 * READY over the VM's vsock and reports (never asserts: no timing in
 * tests) how long after that answer `vm up` returned. Elsewhere it
 * skips, naming what is missing. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "bg-agent-proto.h"
#include "harness.h"

static char *firecracker;
static char *prep_home;

static const char *
prepare (void)
{
  if (!bg_harness_mirror_reachable ())
    return "the Debian mirror (deb.debian.org) is not reachable: cannot build an image";
  prep_home = bg_harness_build_image (NULL, "default", FALSE);
  return NULL;
}

/* Reads one whole message from @fd into @msg (bounded wait); FALSE
 * when the connection ended first. @in keeps what follows it. */
static gboolean
read_msg (int fd, GByteArray *in, BgAgentMsg *msg)
{
  gint64 end = bg_test_deadline (600);

  for (;;)
    {
      BgAgentFrame frame;
      gsize used;
      int r = bg_agent_frame_parse (in->data, in->len, &frame, &used);
      struct pollfd p = { fd, POLLIN, 0 };
      guint8 buf[4096];
      ssize_t n;

      g_assert_cmpint (r, >=, 0);
      if (r > 0)
        {
          g_assert_cmpint (bg_agent_msg_decode (&frame, msg), >, 0);
          msg->bytes = NULL;
          g_byte_array_remove_range (in, 0, (guint) used);
          return TRUE;
        }
      if (g_get_monotonic_time () > end || poll (&p, 1, 1000) < 0)
        return FALSE;
      if (!(p.revents & (POLLIN | POLLHUP)))
        continue;
      n = read (fd, buf, sizeof buf);
      if (n <= 0)
        return FALSE;
      g_byte_array_append (in, buf, (guint) n);
    }
}

static gboolean
send_frame (int fd, BgAgentBuf *b)
{
  gboolean ok = bg_agent_buf_end (b) == 0 && write (fd, b->data, b->len) == (ssize_t) b->len;

  bg_agent_buf_free (b);
  return ok;
}

/* Over the VM's vsock socket (@path, the user's), as `vm up` does:
 * CONNECT 52, HELLO, READY for sshd. The monotonic time of the answer,
 * or 0 when the agent did not (yet) listen. */
static gint64
agent_ready_at (const char *path)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  g_autoptr(GByteArray) in = g_byte_array_new ();
  char line[33];
  gsize n = 0;
  gint64 at = 0;
  BgAgentBuf b;
  BgAgentMsg m;
  int fd;

  if (strlen (path) >= sizeof sa.sun_path)
    return 0;
  strcpy (sa.sun_path, path);
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect (fd, (struct sockaddr *) &sa, sizeof sa) < 0 || write (fd, "CONNECT 52\n", 11) != 11)
    goto out;
  while (n < sizeof line - 1 && read (fd, line + n, 1) == 1 && line[n++] != '\n')
    ;
  if (n < 4 || strncmp (line, "OK ", 3) != 0)
    goto out;
  bg_agent_buf_init (&b);
  bg_agent_buf_begin (&b, BG_AGENT_HELLO, 0);
  bg_agent_put_u32 (&b, BG_AGENT_F_VERSION, BG_AGENT_VERSION);
  if (!send_frame (fd, &b) || !read_msg (fd, in, &m))
    goto out;
  g_assert_cmpuint (m.type, ==, BG_AGENT_HELLO);
  bg_agent_msg_clear (&m);
  bg_agent_buf_init (&b);
  bg_agent_buf_begin (&b, BG_AGENT_READY, 0);
  bg_agent_put_u32 (&b, BG_AGENT_F_MASK, BG_AGENT_UP_SSHD);
  bg_agent_put_u32 (&b, BG_AGENT_F_TIMEOUT, 300000);
  if (!send_frame (fd, &b) || !read_msg (fd, in, &m))
    goto out;
  at = g_get_monotonic_time ();
  g_assert_cmpuint (m.type, ==, BG_AGENT_READY);
  g_assert_true (m.mask & BG_AGENT_UP_SSHD);
  bg_agent_msg_clear (&m);
out:
  if (fd >= 0)
    close (fd);
  return at;
}

/* `vm up` in the background while this test asks the agent for READY
 * itself: returns `vm up`'s stdout, and reports the time between the
 * agent's answer and `vm up` returning (both wait for the same thing in
 * the guest, answered in the same turn of the agent's loop). */
static char *
up_measuring_ready (BgHarness *h, const char *boot_s)
{
  g_autofree char *home = g_strdup_printf ("%s/home-%s", h->tmp, BG_TEST_USER_A);
  g_autofree char *runtime = g_strdup_printf ("%s/runtime-%s", h->tmp, BG_TEST_USER_A);
  const char *args[] = { "vm", "up", "smoke", "--timeout", boot_s, NULL };
  g_auto(GStrv) argv = bg_harness_cli_argv (BG_TEST_USER_A, args);
  g_auto(GStrv) envp = bg_harness_cli_envp (h, home, runtime);
  g_autoptr(GError) error = NULL;
  g_autofree char *vsock = NULL;
  gint64 ready = 0, returned, end = bg_test_deadline (600);
  int out_fd, status;
  char *out = NULL;
  GPid pid;

  if (!g_spawn_async_with_pipes (home, argv, envp, G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
                                 &pid, NULL, &out_fd, NULL, &error))
    g_error ("%s", error->message);
  /* The VM's vsock socket, once the record has it. */
  while (vsock == NULL && g_get_monotonic_time () < end && waitpid (pid, NULL, WNOHANG) == 0)
    {
      g_autofree char *show = NULL;
      g_autoptr(JsonParser) p = json_parser_new ();

      if (bg_harness_run_cli (h, BG_TEST_USER_A, &show, NULL, "vm", "show", "smoke", "--json", NULL) == 0 &&
          json_parser_load_from_data (p, show, -1, NULL))
        {
          JsonObject *o = json_node_get_object (json_parser_get_root (p));

          if (json_object_has_member (o, "vsock_socket"))
            vsock = g_strdup (json_object_get_string_member (o, "vsock_socket"));
        }
      if (vsock == NULL)
        g_usleep (50000);
    }
  /* The test runs as root: it may open the user's socket. */
  while (vsock != NULL && ready == 0 && g_get_monotonic_time () < end && waitpid (pid, NULL, WNOHANG) == 0)
    if ((ready = agent_ready_at (vsock)) == 0)
      g_usleep (5000);
  {
    g_autoptr(GIOChannel) ch = g_io_channel_unix_new (out_fd);

    g_io_channel_set_close_on_unref (ch, TRUE);
    g_io_channel_read_to_end (ch, &out, NULL, NULL);
  }
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  returned = g_get_monotonic_time ();
  g_spawn_close_pid (pid);
  if (!g_spawn_check_wait_status (status, &error))
    g_error ("vm up: %s", error->message);
  if (ready != 0)
    g_test_message ("vm up returned %.1f ms after the agent answered READY (goal: 5 ms)",
                    (double) (returned - ready) / 1000.0);
  else
    g_test_message ("the agent's READY time was not caught (vm up was faster): no measurement");
  return out;
}

static void
test_real_firecracker (void)
{
  BgHarness *h = bg_harness_start (600);
  g_autofree char *images = g_build_filename (prep_home, ".local/share/banger/images/default", NULL);
  g_autofree char *kernel = g_build_filename (images, "vmlinux", NULL);
  g_autofree char *rootfs = g_build_filename (images, "rootfs.ext4", NULL);
  g_autofree char *initrd = g_build_filename (images, "initrd.img", NULL);
  g_autofree char *o1 = NULL, *e1 = NULL, *o2 = NULL, *e2 = NULL, *o3 = NULL, *e3 = NULL;
  g_autofree char *o4 = NULL, *e4 = NULL, *o5 = NULL, *e5 = NULL;
  g_autofree char *boot_s = g_strdup_printf ("%u", bg_test_timeout (300));
  g_autofree char *o6 = NULL, *e6 = NULL, *o7 = NULL, *e7 = NULL, *o8 = NULL, *e8 = NULL;

  bg_harness_set_group_rule (h, TRUE);
  bg_harness_use_vmm (h, firecracker);
  g_assert_cmpint (bg_harness_run_cli (h, BG_TEST_USER_A, &o1, &e1, "image", "import", "default", "--kernel",
                                       kernel, "--rootfs", rootfs, "--initrd", initrd, NULL), ==, 0);
  o2 = up_measuring_ready (h, boot_s);
  g_assert_cmpint (bg_harness_run_cli (h, BG_TEST_USER_A, &o3, &e3, "vm", "ssh", "smoke", "--", "uname", "-a",
                                       NULL), ==, 0);
  g_assert_true (g_str_has_prefix (o3, "Linux smoke "));
  /* Ready came from the agent, over Firecracker's own hybrid vsock. */
  g_assert_nonnull (strstr (o2, "up (its guest agent and sshd answer)"));
  g_assert_cmpint (bg_harness_run_cli (h, BG_TEST_USER_A, &o6, &e6, "vm", "exec", "smoke", "--", "uname", "-a",
                                       NULL), ==, 0);
  g_assert_true (g_str_has_prefix (o6, "Linux smoke "));
  g_assert_cmpint (bg_harness_run_cli (h, BG_TEST_USER_A, &o7, &e7, "vm", "exec", "smoke", "--", "sh", "-c",
                                       "exit 3", NULL), ==, 3);
  g_assert_cmpint (bg_harness_run_cli (h, BG_TEST_USER_A, &o8, &e8, "vm", "exec", "smoke", "--user", "dev", "--",
                                       "id", "-un", NULL), ==, 0);
  g_assert_cmpstr (o8, ==, "dev\n");
  /* Exit statuses through the real vsock, a signal as 128+N. */
  g_assert_cmpint (bg_harness_run_cli (h, BG_TEST_USER_A, NULL, NULL, "vm", "exec", "smoke", "--", "true", NULL), ==,
                   0);
  g_assert_cmpint (bg_harness_run_cli (h, BG_TEST_USER_A, NULL, NULL, "vm", "exec", "smoke", "--", "false", NULL), ==,
                   1);
  g_assert_cmpint (bg_harness_run_cli (h, BG_TEST_USER_A, NULL, NULL, "vm", "exec", "smoke", "--", "sh", "-c",
                                       "kill -TERM $$", NULL), ==, 143);
  g_assert_cmpint (bg_harness_run_cli (h, BG_TEST_USER_A, &o4, &e4, "vm", "stop", "smoke", NULL), ==, 0);
  g_assert_cmpint (bg_harness_run_cli (h, BG_TEST_USER_A, &o5, &e5, "vm", "rm", "smoke", NULL), ==, 0);
  bg_harness_stop (h);
}

static void
add_tests (void)
{
  g_test_add_func ("/smoke/real-firecracker", test_real_firecracker);
}

int
main (int argc, char **argv)
{
  int kvm, rc;

  kvm = open ("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0)
    {
      g_print ("1..0 # SKIP no usable /dev/kvm on this host (%s)\n", g_strerror (errno));
      return 0;
    }
  close (kvm);
  firecracker = g_find_program_in_path ("firecracker");
  if (firecracker == NULL && g_file_test ("/usr/local/bin/firecracker", G_FILE_TEST_IS_EXECUTABLE))
    firecracker = g_strdup ("/usr/local/bin/firecracker");
  if (firecracker == NULL)
    {
      g_print ("1..0 # SKIP no Firecracker binary (install one as /usr/local/bin/firecracker)\n");
      return 0;
    }
  rc = bg_harness_main_full (&argc, &argv, prepare, add_tests);
  if (prep_home != NULL)
    {
      const char *rm[] = { "rm", "-rf", "--", prep_home, NULL };
      g_spawn_sync (NULL, (char **) rm, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
    }
  return rc;
}
