/* `banger vm exec` end to end: the real CLI as an unprivileged user, the
 * real mechanism, the test VMM's hybrid vsock (CONNECT/OK on the jail's
 * socket), and banger-agent as the stand-in guest, run by the test as
 * root on the unix socket the test VMM relays to. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pty.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "harness.h"

typedef struct {
  BgHarness *h;
  char      *home;
  char      *runtime;
  char      *api;        /* the VM's API socket (the owner's) */
  char      *vsock;      /* the VM's vsock socket (the owner's) */
  char      *guest;      /* where the stand-in agent listens */
  GPid       agent;
} Fixture;

/* banger as user A with the given fds as its stdin/stdout/stderr (-1:
 * the test's own), not waited for. */
static GPid
cli_async (Fixture *f, int in, int out, int err, const char * const *args)
{
  g_auto(GStrv) argv = bg_harness_cli_argv (BG_TEST_USER_A, args);
  g_auto(GStrv) envp = bg_harness_cli_envp (f->h, f->home, f->runtime);
  g_autoptr(GError) error = NULL;
  GPid pid;

  if (!g_spawn_async_with_fds (f->home, argv, envp, G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
                               &pid, in, out, err, &error))
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

static guint32
uid_of_process (gint64 pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%" G_GINT64_FORMAT "/status", pid);
  g_autofree char *text = NULL;
  const char *line;

  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  line = strstr (text, "\nUid:");
  g_assert_nonnull (line);
  return (guint32) g_ascii_strtoull (line + 5, NULL, 10);
}

static void
setup (Fixture *f, gconstpointer data)
{
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr(JsonParser) p = json_parser_new ();
  const char *agent = g_getenv ("BANGER_AGENT");
  JsonObject *o;
  gint64 vmm_pid;

  f->h = bg_harness_start (60);
  bg_harness_set_group_rule (f->h, TRUE);
  bg_harness_use_vmm (f->h, g_getenv ("BANGER_TEST_VMM"));
  bg_harness_import_test_image (f->h, BG_TEST_USER_A);
  f->home = g_strdup_printf ("%s/home-%s", f->h->tmp, BG_TEST_USER_A);
  f->runtime = g_strdup_printf ("%s/runtime-%s", f->h->tmp, BG_TEST_USER_A);
  if (bg_harness_cli (f->h, &out, &err, "vm", "up", "dev", "--no-wait", "--json", NULL) != 0)
    g_error ("vm up failed: %s", err);
  g_assert_true (json_parser_load_from_data (p, out, -1, NULL));
  o = json_node_get_object (json_parser_get_root (p));
  f->vsock = g_strdup (json_object_get_string_member (o, "vsock_socket"));
  f->api = g_strdup (json_object_get_string_member (o, "api_socket"));
  vmm_pid = json_object_get_int_member (o, "pid");

  /* The guest: banger-agent as root, where the test VMM relays port 52. */
  f->guest = g_strdup_printf ("%s.guest_52", f->vsock);
  {
    const char *argv[] = { agent, "--listen-unix", f->guest, NULL };
    g_autoptr(GError) error = NULL;

    if (!g_spawn_async (NULL, (char **) argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &f->agent, &error))
      g_error ("%s", error->message);
  }
  for (int i = 0; i < 500 && !g_file_test (f->guest, G_FILE_TEST_EXISTS); i++)
    g_usleep (10000);
  g_assert_true (g_file_test (f->guest, G_FILE_TEST_EXISTS));
  /* The jailed VMM connects to it as the jail's uid, as Firecracker
   * reaches its guest. */
  g_assert_no_errno (chown (f->guest, uid_of_process (vmm_pid), 0));
}

static void
teardown (Fixture *f, gconstpointer data)
{
  g_autofree char *out = NULL, *err = NULL;

  kill (f->agent, SIGTERM);
  waitpid (f->agent, NULL, 0);
  g_unlink (f->guest);
  bg_harness_cli (f->h, &out, &err, "vm", "rm", "dev", "--force", NULL);
  bg_harness_stop (f->h);
  g_free (f->home);
  g_free (f->runtime);
  g_free (f->api);
  g_free (f->vsock);
  g_free (f->guest);
}

static void
test_exit_status_is_the_commands (Fixture *f, gconstpointer data)
{
  g_autofree char *o1 = NULL, *e1 = NULL, *o2 = NULL, *e2 = NULL, *o3 = NULL, *e3 = NULL;
  g_autofree char *o4 = NULL, *e4 = NULL, *o5 = NULL, *e5 = NULL, *o6 = NULL, *e6 = NULL;

  g_assert_cmpint (bg_harness_cli (f->h, &o1, &e1, "vm", "exec", "dev", "--", "true", NULL), ==, 0);
  g_assert_cmpstr (o1, ==, "");
  g_assert_cmpint (bg_harness_cli (f->h, &o2, &e2, "vm", "exec", "dev", "--", "false", NULL), ==, 1);
  g_assert_cmpint (bg_harness_cli (f->h, &o3, &e3, "vm", "exec", "dev", "--", "sh", "-c", "echo out; echo err >&2; exit 7",
                        NULL), ==, 7);
  g_assert_cmpstr (o3, ==, "out\n");
  g_assert_cmpstr (e3, ==, "err\n");
  /* Ended by a signal: 128+N, as a shell reports it. */
  g_assert_cmpint (bg_harness_cli (f->h, &o4, &e4, "vm", "exec", "dev", "--", "sh", "-c", "kill -KILL $$", NULL), ==, 137);
  /* Not there: 127, and the guest's reason. */
  g_assert_cmpint (bg_harness_cli (f->h, &o5, &e5, "vm", "exec", "dev", "--", "/no/such/program", NULL), ==, 127);
  g_assert_nonnull (strstr (e5, "cannot run /no/such/program: No such file or directory"));
  /* An argv, not a shell line: the argument reaches the program as is. */
  g_assert_cmpint (bg_harness_cli (f->h, &o6, &e6, "vm", "exec", "dev", "--", "printf", "%s|", "a b", "$HOME", ";x", NULL), ==, 0);
  g_assert_cmpstr (o6, ==, "a b|$HOME|;x|");
}

static void
test_user_cwd_and_env (Fixture *f, gconstpointer data)
{
  g_autofree char *out = NULL, *err = NULL, *o2 = NULL, *e2 = NULL, *o3 = NULL, *e3 = NULL;
  g_autofree char *want = g_strdup_printf ("%u\n%s\n/tmp\nbar\n", bg_harness_uid (BG_TEST_USER_B), BG_TEST_USER_B);

  if (bg_harness_cli (f->h, &out, &err, "vm", "exec", "dev", "--user", BG_TEST_USER_B, "--cwd", "/tmp", "--env", "FOO=bar",
           "--", "sh", "-c", "id -u; echo $USER; pwd; echo $FOO", NULL) != 0)
    g_error ("vm exec failed: %s", err);
  g_assert_cmpstr (out, ==, want);

  g_assert_cmpint (bg_harness_cli (f->h, &o2, &e2, "vm", "exec", "dev", "--user", "no-such-user", "--", "true", NULL), ==, 127);
  g_assert_nonnull (strstr (e2, "no such user in the guest's /etc/passwd"));
  /* Bad options are refused before anything is sent, naming the option. */
  g_assert_cmpint (bg_harness_cli (f->h, &o3, &e3, "vm", "exec", "dev", "--env", "NOVALUE", "--", "true", NULL), ==, 2);
  g_assert_nonnull (strstr (e3, "--env NOVALUE"));
}

/* 100 MiB through stdout, flow controlled all the way, arrive whole. */
static void
test_100_mib_through_stdout (Fixture *f, gconstpointer data)
{
  const char *args[] = { "vm", "exec", "dev", "--", "head", "-c", "104857600", "/dev/zero", NULL };
  int pipefd[2];
  guint64 total = 0, nonzero = 0;
  guint8 buf[65536];
  ssize_t n;
  GPid pid;

  g_assert_no_errno (pipe (pipefd));
  pid = cli_async (f, -1, pipefd[1], -1, args);
  close (pipefd[1]);
  while ((n = read (pipefd[0], buf, sizeof buf)) > 0)
    {
      total += (guint64) n;
      for (ssize_t i = 0; i < n; i++)
        nonzero += buf[i] != 0;
    }
  close (pipefd[0]);
  g_assert_cmpint (wait_status (pid), ==, 0);
  g_assert_cmpuint (total, ==, 104857600);
  g_assert_cmpuint (nonzero, ==, 0);
}

/* stdin goes through to its end: what sha256sum read is what we sent. */
static void
test_stdin_to_eof (Fixture *f, gconstpointer data)
{
  const char *args[] = { "vm", "exec", "dev", "-i", "--", "sha256sum", NULL };
  g_autofree char *input = g_build_filename (f->h->tmp, "exec-input", NULL);
  g_autoptr(GByteArray) data_in = g_byte_array_new ();
  g_autofree char *want = NULL, *got = NULL;
  int in, pipefd[2];
  GPid pid;

  /* 3 MiB and a bit: more than a window, not a multiple of a frame. */
  for (guint i = 0; i < 3 * 1024 * 1024 + 12345; i++)
    {
      guint8 b = (guint8) (i * 2654435761u >> 24);
      g_byte_array_append (data_in, &b, 1);
    }
  g_assert_true (g_file_set_contents (input, (char *) data_in->data, data_in->len, NULL));
  want = g_compute_checksum_for_data (G_CHECKSUM_SHA256, data_in->data, data_in->len);
  in = open (input, O_RDONLY);
  g_assert_no_errno (in);
  g_assert_no_errno (pipe (pipefd));
  pid = cli_async (f, in, pipefd[1], -1, args);
  close (in);
  close (pipefd[1]);
  {
    g_autoptr(GIOChannel) ch = g_io_channel_unix_new (pipefd[0]);
    g_io_channel_set_close_on_unref (ch, TRUE);
    g_assert_cmpint (g_io_channel_read_to_end (ch, &got, NULL, NULL), ==, G_IO_STATUS_NORMAL);
  }
  g_assert_cmpint (wait_status (pid), ==, 0);
  g_assert_true (g_str_has_prefix (got, want));
  g_unlink (input);
}

/* Reads from @fd until @needle was seen (bounded by the test's timeout). */
static char *
read_until (int fd, GString *seen, const char *needle)
{
  char buf[4096];

  while (strstr (seen->str, needle) == NULL)
    {
      struct pollfd p = { fd, POLLIN, 0 };
      ssize_t n;

      g_assert_cmpint (poll (&p, 1, 60000), ==, 1);
      n = read (fd, buf, sizeof buf);
      if (n <= 0)
        g_error ("output ended before \"%s\": %s", needle, seen->str);
      g_string_append_len (seen, buf, n);
    }
  return seen->str;
}

/* Ctrl-C (SIGINT to banger) reaches the command, whose end by SIGINT
 * becomes 130. */
static void
test_signal_is_forwarded (Fixture *f, gconstpointer data)
{
  const char *args[] = { "vm", "exec", "dev", "--", "sh", "-c", "echo started; exec sleep 600", NULL };
  g_autoptr(GString) seen = g_string_new (NULL);
  int pipefd[2];
  GPid pid;

  g_assert_no_errno (pipe (pipefd));
  pid = cli_async (f, -1, pipefd[1], -1, args);
  close (pipefd[1]);
  read_until (pipefd[0], seen, "started\n");
  /* setpriv execs banger: the pid is banger's. */
  g_assert_no_errno (kill (pid, SIGINT));
  g_assert_cmpint (wait_status (pid), ==, 130);
  close (pipefd[0]);
}

/* With -t the command has a terminal of our size; a size change (and
 * SIGWINCH) reaches it; our terminal's mode is back afterwards. */
static void
test_pty_has_our_size (Fixture *f, gconstpointer data)
{
  const char *args[] = { "vm", "exec", "dev", "-t", "-i", "--", "sh", "-c",
                         "stty size; trap 'stty size; exit 3' WINCH; echo waiting; "
                         "while :; do sleep 0.1; done", NULL };
  struct winsize ws = { .ws_row = 33, .ws_col = 101 };
  g_autoptr(GString) seen = g_string_new (NULL);
  struct termios before, after;
  int master, slave;
  GPid pid;

  g_assert_no_errno (openpty (&master, &slave, NULL, NULL, &ws));
  g_assert_no_errno (tcgetattr (slave, &before));
  pid = cli_async (f, slave, slave, slave, args);
  read_until (master, seen, "waiting");
  g_assert_nonnull (strstr (seen->str, "33 101"));
  /* banger was in raw mode meanwhile. */
  {
    struct termios now;
    g_assert_no_errno (tcgetattr (slave, &now));
    g_assert_false (now.c_lflag & ICANON);
  }
  ws = (struct winsize) { .ws_row = 40, .ws_col = 120 };
  g_assert_no_errno (ioctl (master, TIOCSWINSZ, &ws));
  g_assert_no_errno (kill (pid, SIGWINCH));
  read_until (master, seen, "40 120");
  g_assert_cmpint (wait_status (pid), ==, 3);
  g_assert_no_errno (tcgetattr (slave, &after));
  g_assert_cmpuint (after.c_lflag, ==, before.c_lflag);
  g_assert_cmpuint (after.c_iflag, ==, before.c_iflag);
  g_assert_cmpuint (after.c_oflag, ==, before.c_oflag);
  close (master);
  close (slave);
}

/* A stream that nobody reads stalls only itself (flow control), and the
 * agent runs another command meanwhile. */
static void
test_exec_while_another_streams (Fixture *f, gconstpointer data)
{
  const char *args[] = { "vm", "exec", "dev", "--", "sh", "-c", "echo started; exec cat /dev/zero", NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr(GString) seen = g_string_new (NULL);
  int pipefd[2];
  GPid pid;

  g_assert_no_errno (pipe (pipefd));
  pid = cli_async (f, -1, pipefd[1], -1, args);
  close (pipefd[1]);
  read_until (pipefd[0], seen, "started\n");
  /* Now unread: the pipe, banger, the window and cat all stall. */
  g_assert_cmpint (bg_harness_cli (f->h, &out, &err, "vm", "exec", "dev", "--", "echo", "meanwhile", NULL), ==, 0);
  g_assert_cmpstr (out, ==, "meanwhile\n");
  g_assert_no_errno (kill (pid, SIGTERM));
  close (pipefd[0]);
  /* SIGTERM forwarded: cat ends by it (or banger by SIGPIPE first). */
  {
    int status = wait_status (pid);
    g_assert_true (status == 128 + SIGTERM || status == 128 + SIGPIPE);
  }
}

/* What happens when @user connects to @path: 0 refused by permission
 * (EACCES), 1 connected, 2 the drop to @user did not hold, 3 refused for
 * another reason. The child becomes @user wholly before it tries: no
 * supplementary groups, real, effective, saved (and so filesystem) uid
 * and gid all @user's, checked, and no capability left. */
static int
connect_as (const char *user,
            const char *path)
{
  struct passwd *pw = getpwnam (user);
  uid_t uid;
  gid_t gid;
  pid_t pid;
  int status;

  /* Copied at once: getpwnam() returns one static record, which the next
   * lookup (bg_harness_uid() included) overwrites. The case this replaces
   * kept the pointer across a lookup of user A, so its child "dropped" to
   * A, the socket's owner, and connected. */
  g_assert_nonnull (pw);
  uid = pw->pw_uid;
  gid = pw->pw_gid;
  g_assert_cmpuint (strlen (path), <, sizeof ((struct sockaddr_un *) NULL)->sun_path);
  pid = fork ();
  g_assert_no_errno (pid);
  if (pid == 0)
    {
      struct sockaddr_un sa = { .sun_family = AF_UNIX };
      g_autofree char *status_text = NULL;
      uid_t ru, eu, su;
      gid_t rg, eg, sg;
      const char *cap;
      int fd;

      if (setgroups (0, NULL) < 0 || setresgid (gid, gid, gid) < 0 || setresuid (uid, uid, uid) < 0)
        _exit (2);
      if (getresuid (&ru, &eu, &su) < 0 || getresgid (&rg, &eg, &sg) < 0 || getgroups (0, NULL) != 0 ||
          ru != uid || eu != uid || su != uid || rg != gid || eg != gid || sg != gid)
        _exit (2);
      if (!g_file_get_contents ("/proc/self/status", &status_text, NULL, NULL) ||
          (cap = strstr (status_text, "\nCapEff:")) == NULL || g_ascii_strtoull (cap + 8, NULL, 16) != 0)
        _exit (2);
      g_strlcpy (sa.sun_path, path, sizeof sa.sun_path);
      fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd < 0)
        _exit (3);
      if (connect (fd, (struct sockaddr *) &sa, sizeof sa) == 0)
        _exit (1);
      _exit (errno == EACCES ? 0 : 3);
    }
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  g_assert_true (WIFEXITED (status));
  return WEXITSTATUS (status);
}

/* The VM's sockets are the owner's alone: another user can connect to
 * neither the vsock nor the API socket, while the owner, dropped to in
 * the same way, connects to both (so the refusal is the permissions',
 * not the drop's). */
static void
test_other_user_cannot_open_the_sockets (Fixture *f, gconstpointer data)
{
  const char *sockets[] = { f->vsock, f->api, NULL };

  g_assert_cmpuint (bg_harness_uid (BG_TEST_USER_B), !=, bg_harness_uid (BG_TEST_USER_A));
  for (const char * const *s = sockets; *s; s++)
    {
      struct stat st;

      g_test_message ("socket %s", *s);
      g_assert_no_errno (lstat (*s, &st));
      g_assert_true (S_ISSOCK (st.st_mode));
      g_assert_cmpuint (st.st_uid, ==, bg_harness_uid (BG_TEST_USER_A));
      g_assert_cmpuint (st.st_mode & 07777, ==, 0600);
      g_assert_cmpint (connect_as (BG_TEST_USER_A, *s), ==, 1);
      g_assert_cmpint (connect_as (BG_TEST_USER_B, *s), ==, 0);
    }
}

/* The test VMM follows Firecracker: CONNECT to a port nobody listens on
 * closes the connection, so banger says there is no agent. And an image
 * without sshd makes vm ssh point at vm exec. */
static void
test_no_agent_and_no_sshd_say_what_to_do (Fixture *f, gconstpointer data)
{
  g_autofree char *o1 = NULL, *e1 = NULL, *o2 = NULL, *e2 = NULL;

  g_assert_cmpint (bg_harness_cli (f->h, &o1, &e1, "vm", "ssh", "dev", "--", "true", NULL), ==, 1);
  g_assert_nonnull (strstr (e1, "has no sshd; use 'banger vm exec -it dev"));

  kill (f->agent, SIGTERM);
  waitpid (f->agent, NULL, 0);
  g_unlink (f->guest);
  g_assert_cmpint (bg_harness_cli (f->h, &o2, &e2, "vm", "exec", "dev", "--", "true", NULL), ==, 1);
  g_assert_nonnull (strstr (e2, "VM dev has no guest agent answering"));
}

/* vm up (waiting) returns once the agent answers READY: no TCP poll,
 * no SSH (this stand-in guest has no sshd, as the host has none). */
static void
test_up_returns_when_the_agent_is_ready (Fixture *f, gconstpointer data)
{
  const char *args[] = { "vm", "up", "later", "--timeout", "120", NULL };
  g_autofree char *record = g_build_filename (f->home, ".local/state/banger/vms/later/vm.json", NULL);
  g_autofree char *vsock = NULL, *guest = NULL, *o = NULL, *e = NULL;
  g_autoptr(GString) seen = g_string_new (NULL);
  gint64 vmm_pid = 0;
  int pipefd[2];
  GPid pid, agent;

  g_assert_no_errno (pipe (pipefd));
  pid = cli_async (f, -1, pipefd[1], -1, args);
  close (pipefd[1]);
  /* Once the record says running, the VMM and its vsock exist: the
   * guest's agent "boots" then, while vm up waits. */
  for (int i = 0; i < 6000 && vsock == NULL; i++)
    {
      g_autoptr(JsonParser) p = json_parser_new ();
      JsonObject *r;

      if (json_parser_load_from_file (p, record, NULL) &&
          (r = json_node_get_object (json_parser_get_root (p))) != NULL &&
          g_strcmp0 (json_object_get_string_member_with_default (r, "state", ""), "running") == 0)
        {
          vsock = g_strdup (json_object_get_string_member (r, "vsock_socket"));
          vmm_pid = json_object_get_int_member (r, "pid");
        }
      else
        g_usleep (10000);
    }
  g_assert_nonnull (vsock);
  guest = g_strdup_printf ("%s.guest_52", vsock);
  {
    const char *argv[] = { g_getenv ("BANGER_AGENT"), "--listen-unix", guest, NULL };
    g_autoptr(GError) error = NULL;

    if (!g_spawn_async (NULL, (char **) argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &agent, &error))
      g_error ("%s", error->message);
  }
  for (int i = 0; i < 500 && !g_file_test (guest, G_FILE_TEST_EXISTS); i++)
    g_usleep (10000);
  g_assert_no_errno (chown (guest, uid_of_process (vmm_pid), 0));

  g_assert_cmpint (wait_status (pid), ==, 0);
  {
    char buf[4096];
    ssize_t n;

    while ((n = read (pipefd[0], buf, sizeof buf)) > 0)
      g_string_append_len (seen, buf, n);
    close (pipefd[0]);
  }
  g_assert_nonnull (strstr (seen->str, "VM later is up (its guest agent answers; the image has no sshd)."));
  g_assert_nonnull (strstr (seen->str, "shell:    banger vm exec -it later -- sh"));

  kill (agent, SIGTERM);
  waitpid (agent, NULL, 0);
  g_spawn_close_pid (agent);
  g_unlink (guest);
  g_assert_cmpint (bg_harness_cli (f->h, &o, &e, "vm", "rm", "later", "--force", NULL), ==, 0);
}

/* The mechanism hands the vsock socket over on its own loop, after the
 * VMM bound it: held there (a test hook) for a second, vm up waits the
 * hand-over out instead of meeting the jail uid's socket (EACCES) and
 * failing, and the socket it leaves is the owner's, 0600. */
static void
test_up_waits_for_the_vsock_hand_over (Fixture *f, gconstpointer data)
{
  const char *args[] = { "vm", "up", "held", "--timeout", "120", NULL };
  g_autofree char *pause_at = g_build_filename (f->h->run_dir, "pause-at", NULL);
  g_autofree char *paused_at = g_build_filename (f->h->run_dir, "paused-at", NULL);
  g_autofree char *record = g_build_filename (f->home, ".local/state/banger/vms/held/vm.json", NULL);
  g_autofree char *vsock = NULL, *guest = NULL, *o = NULL, *e = NULL;
  gint64 deadline, vmm_pid = 0;
  struct stat st;
  GPid pid, agent;
  int status = -1, null;

  /* Its summary not into the TAP stream. */
  null = open ("/dev/null", O_WRONLY | O_CLOEXEC);
  g_assert_no_errno (null);
  g_assert_true (g_file_set_contents (pause_at, "hand-over-vsock", -1, NULL));
  pid = cli_async (f, -1, null, -1, args);
  close (null);
  deadline = bg_test_deadline (60);
  while (!g_file_test (paused_at, G_FILE_TEST_EXISTS) && g_get_monotonic_time () < deadline)
    g_usleep (10000);
  g_assert_true (g_file_test (paused_at, G_FILE_TEST_EXISTS));
  /* A second in which an impatient CLI would try the socket and fail. */
  for (int i = 0; i < 100 && waitpid (pid, &status, WNOHANG) == 0; i++)
    g_usleep (10000);
  g_assert_cmpint (status, ==, -1);
  g_assert_no_errno (g_unlink (pause_at));

  /* Running once the hand-over is done; then the guest's agent starts. */
  deadline = bg_test_deadline (60);
  while (vsock == NULL && g_get_monotonic_time () < deadline)
    {
      g_autoptr(JsonParser) p = json_parser_new ();
      JsonObject *r;

      if (json_parser_load_from_file (p, record, NULL) &&
          (r = json_node_get_object (json_parser_get_root (p))) != NULL &&
          g_strcmp0 (json_object_get_string_member_with_default (r, "state", ""), "running") == 0)
        {
          vsock = g_strdup (json_object_get_string_member (r, "vsock_socket"));
          vmm_pid = json_object_get_int_member (r, "pid");
        }
      else
        g_usleep (10000);
    }
  g_assert_nonnull (vsock);
  g_assert_no_errno (lstat (vsock, &st));
  g_assert_cmpuint (st.st_uid, ==, bg_harness_uid (BG_TEST_USER_A));
  g_assert_cmpuint (st.st_mode & 07777, ==, 0600);
  guest = g_strdup_printf ("%s.guest_52", vsock);
  {
    const char *argv[] = { g_getenv ("BANGER_AGENT"), "--listen-unix", guest, NULL };
    g_autoptr(GError) error = NULL;

    if (!g_spawn_async (NULL, (char **) argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &agent, &error))
      g_error ("%s", error->message);
  }
  deadline = bg_test_deadline (5);
  while (!g_file_test (guest, G_FILE_TEST_EXISTS) && g_get_monotonic_time () < deadline)
    g_usleep (10000);
  g_assert_no_errno (chown (guest, uid_of_process (vmm_pid), 0));

  g_assert_cmpint (wait_status (pid), ==, 0);
  kill (agent, SIGTERM);
  waitpid (agent, NULL, 0);
  g_spawn_close_pid (agent);
  g_unlink (guest);
  g_assert_cmpint (bg_harness_cli (f->h, &o, &e, "vm", "rm", "held", "--force", NULL), ==, 0);
}

static void
add_tests (void)
{
#define ADD(path, fn) g_test_add (path, Fixture, NULL, setup, fn, teardown)
  ADD ("/exec/exit-status-is-the-commands", test_exit_status_is_the_commands);
  ADD ("/exec/user-cwd-and-env", test_user_cwd_and_env);
  ADD ("/exec/100-mib-through-stdout", test_100_mib_through_stdout);
  ADD ("/exec/stdin-to-eof", test_stdin_to_eof);
  ADD ("/exec/signal-is-forwarded", test_signal_is_forwarded);
  ADD ("/exec/pty-has-our-size", test_pty_has_our_size);
  ADD ("/exec/exec-while-another-streams", test_exec_while_another_streams);
  ADD ("/exec/other-user-cannot-open-the-sockets", test_other_user_cannot_open_the_sockets);
  ADD ("/exec/no-agent-and-no-sshd-say-what-to-do", test_no_agent_and_no_sshd_say_what_to_do);
  ADD ("/exec/up-returns-when-the-agent-is-ready", test_up_returns_when_the_agent_is_ready);
  ADD ("/exec/up-waits-for-the-vsock-hand-over", test_up_waits_for_the_vsock_hand_over);
}

int
main (int argc, char **argv)
{
  return bg_harness_main (&argc, &argv, add_tests);
}
