/* banger-agent over a serial port (the virtio-serial transport QEMU
 * guests use, doc/agent-protocol.md), without a guest: a pty stands in
 * for the port. `banger-agent --serial PATH` opens PATH, a symlink to the
 * pty's slave; closing the master is the host going away (the agent reads
 * EIO or 0 and sees POLLHUP, as virtio_console gives when the host's
 * chardev disconnects). The next "host" is a new pty that the symlink is
 * pointed at. Each host must get a fresh connection: what the last one
 * started is killed, and its session ids are free again. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <termios.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "bg-agent-proto.h"
#include "../bg-test.h"

/* One host: a pty's master, and its slave held open (raw) so that
 * nothing the host writes before the agent opens it is echoed back. */
typedef struct {
  int         master;
  int         slave;
  GByteArray *in;
} Host;

static char *port_link;

static void
host_connect (Host *h)
{
  char name[128];
  struct termios t;
  g_autofree char *tmp = g_strdup_printf ("%s.new", port_link);

  h->master = posix_openpt (O_RDWR | O_NOCTTY | O_CLOEXEC);
  g_assert_cmpint (h->master, >=, 0);
  g_assert_no_errno (grantpt (h->master));
  g_assert_no_errno (unlockpt (h->master));
  g_assert_cmpint (ptsname_r (h->master, name, sizeof name), ==, 0);
  h->slave = open (name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  g_assert_cmpint (h->slave, >=, 0);
  g_assert_no_errno (tcgetattr (h->slave, &t));
  cfmakeraw (&t);
  g_assert_no_errno (tcsetattr (h->slave, TCSANOW, &t));
  g_unlink (tmp);
  g_assert_no_errno (symlink (name, tmp));
  g_assert_no_errno (rename (tmp, port_link));
  h->in = g_byte_array_new ();
}

/* The host goes: the agent sees its side of the port hang up. */
static void
host_disconnect (Host *h)
{
  g_unlink (port_link);
  close (h->slave);
  close (h->master);
  g_byte_array_unref (h->in);
  h->in = NULL;
}

static void
host_send (Host *h, BgAgentBuf *b)
{
  g_assert_cmpint (bg_agent_buf_end (b), ==, 0);
  for (gsize off = 0; off < b->len;)
    {
      ssize_t w = write (h->master, b->data + off, b->len - off);

      if (w < 0 && errno == EINTR)
        continue;
      g_assert_cmpint (w, >, 0);
      off += (gsize) w;
    }
  bg_agent_buf_free (b);
}

/* The agent's next message; fails the test if none comes in time. */
static void
host_next (Host *h, BgAgentMsg *msg)
{
  gint64 end = bg_test_deadline (20);

  for (;;)
    {
      BgAgentFrame frame;
      gsize used;
      int r = bg_agent_frame_parse (h->in->data, h->in->len, &frame, &used);
      struct pollfd p = { h->master, POLLIN, 0 };
      guint8 buf[65536];
      ssize_t n;

      g_assert_cmpint (r, >=, 0);
      if (r > 0)
        {
          g_assert_cmpint (bg_agent_msg_decode (&frame, msg), >, 0);
          /* DATA points into the buffer: tests use only its length. */
          msg->bytes = NULL;
          g_byte_array_remove_range (h->in, 0, (guint) used);
          return;
        }
      if (g_get_monotonic_time () > end)
        g_error ("no answer from the agent over the serial port");
      if (poll (&p, 1, 200) <= 0)
        continue;
      n = read (h->master, buf, sizeof buf);
      if (n < 0 && (errno == EAGAIN || errno == EINTR))
        continue;
      g_assert_cmpint (n, >, 0);
      g_byte_array_append (h->in, buf, (guint) n);
    }
}

static void
hello (Host *h)
{
  BgAgentBuf b;
  BgAgentMsg m;

  bg_agent_buf_init (&b);
  bg_agent_buf_begin (&b, BG_AGENT_HELLO, 0);
  bg_agent_put_u32 (&b, BG_AGENT_F_VERSION, BG_AGENT_VERSION);
  host_send (h, &b);
  host_next (h, &m);
  g_assert_cmpuint (m.type, ==, BG_AGENT_HELLO);
  g_assert_cmpuint (m.version, ==, BG_AGENT_VERSION);
  bg_agent_msg_clear (&m);
}

/* EXEC @argv as session @id; the process's pid. */
static pid_t
exec_start (Host *h, guint32 id, const char * const *argv)
{
  BgAgentBuf b;
  BgAgentMsg m;
  pid_t pid;

  bg_agent_buf_init (&b);
  bg_agent_buf_begin (&b, BG_AGENT_EXEC, id);
  for (; *argv; argv++)
    bg_agent_put_str (&b, BG_AGENT_F_ARG, *argv);
  host_send (h, &b);
  host_next (h, &m);
  if (m.type == BG_AGENT_ERROR)
    g_error ("EXEC refused: %s", m.message);
  g_assert_cmpuint (m.type, ==, BG_AGENT_STARTED);
  g_assert_cmpuint (m.session, ==, id);
  pid = (pid_t) m.pid;
  bg_agent_msg_clear (&m);
  return pid;
}

/* Runs @argv to its end as session @id: its exit status as a shell
 * shows it (128 + N for signal N). */
static int
exec_run (Host *h, guint32 id, const char * const *argv)
{
  int status = -1;

  exec_start (h, id, argv);
  while (status < 0)
    {
      BgAgentMsg m;

      host_next (h, &m);
      g_assert_cmpuint (m.session, ==, id);
      if (m.type == BG_AGENT_EXIT)
        status = BG_AGENT_HAS (&m, BG_AGENT_F_SIGNAL) ? 128 + (int) m.signo : (int) m.code;
      else
        g_assert_true (m.type == BG_AGENT_DATA || m.type == BG_AGENT_EOF);
      bg_agent_msg_clear (&m);
    }
  return status;
}

/* The agent reaps what it killed: @pid is gone, not only a zombie. */
static void
assert_gone (pid_t pid)
{
  gint64 end = bg_test_deadline (20);

  while (kill (pid, 0) == 0)
    {
      if (g_get_monotonic_time () > end)
        g_error ("process %d outlived the host that started it", (int) pid);
      g_usleep (20000);
    }
  g_assert_cmpint (errno, ==, ESRCH);
}

static void
test_serial_hosts_one_after_another (void)
{
  g_autofree char *dir = g_dir_make_tmp ("bg-agent-serial-XXXXXX", NULL);
  const char *agent = g_getenv ("BANGER_AGENT");
  const char * const sleeper[] = { "sleep", "1000", NULL };
  const char * const yes[] = { "true", NULL }, * const no[] = { "false", NULL };
  const char * const term[] = { "sh", "-c", "kill -TERM $$", NULL };
  Host h = { 0 };
  GPid pid;
  pid_t p1, p2;

  g_assert_nonnull (agent);
  port_link = g_build_filename (dir, "port", NULL);

  /* The first host, there before the agent. */
  host_connect (&h);
  {
    const char *argv[] = { agent, "--serial", port_link, NULL };
    g_autoptr(GError) error = NULL;

    g_assert_true (g_spawn_async (NULL, (char **) argv, NULL, G_SPAWN_STDIN_FROM_DEV_NULL | G_SPAWN_DO_NOT_REAP_CHILD,
                                  NULL, NULL, &pid, &error));
  }
  hello (&h);
  g_assert_cmpint (exec_run (&h, 1, yes), ==, 0);
  p1 = exec_start (&h, 2, sleeper);
  g_assert_no_errno (kill (p1, 0));

  /* It leaves in the middle of a session: the process goes with it. */
  host_disconnect (&h);
  assert_gone (p1);

  /* The next host: a new connection, the same session ids free again. */
  host_connect (&h);
  hello (&h);
  g_assert_cmpint (exec_run (&h, 1, yes), ==, 0);
  g_assert_cmpint (exec_run (&h, 2, no), ==, 1);
  g_assert_cmpint (exec_run (&h, 3, term), ==, 128 + SIGTERM);

  /* A host that comes before the agent noticed the last one left: its
   * HELLO starts a new connection all the same. */
  p2 = exec_start (&h, 4, sleeper);
  hello (&h);
  assert_gone (p2);
  g_assert_cmpint (exec_run (&h, 4, yes), ==, 0);
  host_disconnect (&h);

  /* And once more, after a while with no host at all. */
  g_usleep (300000);
  host_connect (&h);
  hello (&h);
  g_assert_cmpint (exec_run (&h, 1, no), ==, 1);
  host_disconnect (&h);

  g_assert_no_errno (kill (pid, SIGTERM));
  g_assert_cmpint (waitpid (pid, NULL, 0), ==, pid);
  g_spawn_close_pid (pid);
  g_rmdir (dir);
  g_clear_pointer (&port_link, g_free);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/agent/serial/hosts-one-after-another", test_serial_hosts_one_after_another);
  return g_test_run ();
}
