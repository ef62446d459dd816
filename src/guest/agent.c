/* banger-agent: the guest's end of `banger vm exec` (doc/agent-protocol.md).
 *
 * Started by banger-init in the guest's final root, as root. It listens
 * on AF_VSOCK port BG_AGENT_VSOCK_PORT and serves only the host (peer CID
 * 2): a guest process connecting over the loopback CID is refused, so
 * no guest user reaches a root service through it. Each connection may
 * run several sessions at once, each a process started with fork/exec of
 * the argv the host sent (never a shell), as the user it named (looked up
 * in the guest's own /etc/passwd and /etc/group), with pipes or a PTY.
 * One thread, one poll() over everything; every stream is flow
 * controlled by credit, so memory stays bounded whatever the host or the
 * processes do. Plain C and libc: a static program for any Linux root.
 *
 * Where the guest has the virtio-serial port org.banger.agent (QEMU in
 * the slow suite: no vhost-vsock there), the same frames also run over
 * that port, one host connection at a time: the host's side closing
 * (read 0 or POLLHUP from virtio_console) ends the connection and
 * everything it started, and the agent sleeps until the next host opens
 * the port (virtio_console sends SIGIO on the change).
 *
 *   banger-agent [--port N]
 *   banger-agent --serial PATH        (that port, or a stand-in: a tty)
 *   banger-agent --listen-unix PATH   (tests: a stand-in guest on the host)
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#ifndef O_ASYNC
#define O_ASYNC FASYNC
#endif

#include "bg-agent-proto.h"
#include "bg-passwd.h"

#define MAX_CONNS     16
#define OUT_HIGH      (1024u * 1024u)   /* stop reading processes above this */
#define READY_POLL_MS 20
#define SETUP_TRIES   600               /* vsock and the serial port: a minute at start */
#define SETUP_MS      100
#define SERIAL_NAME   "org.banger.agent"

typedef struct Conn Conn;

typedef struct Session {
  struct Session *next;
  Conn     *conn;          /* NULL once the connection closed */
  uint32_t  id;
  pid_t     pid;
  int       in_fd;         /* pipe to stdin, or the PTY master (dup) */
  int       out_fd;        /* stdout pipe, or the PTY master */
  int       err_fd;        /* stderr pipe; -1 with a PTY */
  int       pty;
  uint32_t  credit[3];     /* what the host lets us send of stdout, stderr */
  uint8_t  *in_data;       /* stdin the host sent, not yet written */
  size_t    in_len;
  int       in_eof;        /* the host ended stdin: close once written */
  int       exited;
  int       status;
} Session;

struct Conn {
  int        fd;
  uint8_t   *in;
  size_t     in_len;
  BgAgentBuf out;
  int        hello;        /* the host said hello with a version we speak */
  uint32_t   version;      /* the version this connection speaks */
  int        closing;      /* flush what is queued, then close */
  uint32_t   ready_mask;   /* a READY waiting: what the host waits for */
  int64_t    ready_deadline; /* ms; 0: none waiting */
  uint32_t   nsessions;
  int        serial;       /* over the virtio-serial port, not a socket */
};

static Conn    *conns[MAX_CONNS];
static Session *sessions;
static int      test_mode;   /* --listen-unix: the host's own root is "the guest" */

/* The virtio-serial port: its fd while open, and the connection on it
 * while a host is there (at most one). */
static const char *serial_path_opt;  /* --serial PATH; NULL: look for it */
static int      serial_fd = -1;
static Conn    *serial_conn;
static int      serial_found;        /* a port was found once: keep serving it */

static void __attribute__ ((format (printf, 1, 2)))
say (const char *format, ...)
{
  va_list ap;

  fprintf (stderr, "banger-agent: ");
  va_start (ap, format);
  vfprintf (stderr, format, ap);
  va_end (ap);
  fputc ('\n', stderr);
}

static int64_t
now_ms (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
set_nonblock (int fd)
{
  fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) | O_NONBLOCK);
}

static void
close_fd (int *fd)
{
  if (*fd >= 0)
    close (*fd);
  *fd = -1;
}

/* ---- what the guest has up ---- */

/* A listening TCP socket on local port 22, from /proc/net/tcp{,6}: no
 * connection is made, so sshd sees nothing. */
static int
sshd_listens (void)
{
  static const char * const files[] = { "/proc/net/tcp", "/proc/net/tcp6" };

  for (size_t i = 0; i < 2; i++)
    {
      FILE *f = fopen (files[i], "re");
      char line[512];

      if (f == NULL)
        continue;
      while (fgets (line, sizeof line, f))
        {
          char local[128];
          unsigned state;

          if (sscanf (line, " %*d: %127s %*s %x", local, &state) == 2 && state == 0x0a)
            {
              const char *port = strrchr (local, ':');

              if (port && strcmp (port, ":0016") == 0)
                {
                  fclose (f);
                  return 1;
                }
            }
        }
      fclose (f);
    }
  return 0;
}

/* The network is up when the guest has a default route. */
static int
network_up (void)
{
  FILE *f = fopen ("/proc/net/route", "re");
  char line[512];
  int up = 0;

  if (f == NULL)
    return 0;
  while (!up && fgets (line, sizeof line, f))
    {
      char iface[64];
      unsigned long dest, gw;
      unsigned flags;

      if (sscanf (line, "%63s %lx %lx %x", iface, &dest, &gw, &flags) == 4 && dest == 0 && (flags & 1))
        up = 1;
    }
  fclose (f);
  return up;
}

static uint32_t
guest_up (void)
{
  uint32_t mask = BG_AGENT_UP_AGENT;

  if (network_up ())
    mask |= BG_AGENT_UP_NETWORK;
  if (access ("/usr/sbin/sshd", X_OK) == 0 || access ("/usr/bin/sshd", X_OK) == 0)
    mask |= BG_AGENT_HAS_SSHD;
  if (sshd_listens ())
    mask |= BG_AGENT_UP_SSHD;
  return mask;
}

/* ---- sending ---- */

static void
conn_fail (Conn *c, uint32_t session, const char *format, ...) __attribute__ ((format (printf, 3, 4)));

static void
conn_fail (Conn *c, uint32_t session, const char *format, ...)
{
  char message[BG_AGENT_MAX_MESSAGE];
  va_list ap;

  va_start (ap, format);
  vsnprintf (message, sizeof message, format, ap);
  va_end (ap);
  bg_agent_buf_begin (&c->out, BG_AGENT_ERROR, session);
  bg_agent_put_str (&c->out, BG_AGENT_F_MESSAGE, message);
  bg_agent_buf_end (&c->out);
  if (session == 0)
    {
      say ("closing a connection: %s", message);
      c->closing = 1;
    }
}

static void
send_u32 (Conn *c, BgAgentType type, uint32_t session, BgAgentField f1, uint32_t v1, BgAgentField f2, uint32_t v2)
{
  bg_agent_buf_begin (&c->out, type, session);
  bg_agent_put_u32 (&c->out, f1, v1);
  if (f2)
    bg_agent_put_u32 (&c->out, f2, v2);
  bg_agent_buf_end (&c->out);
}

static void
answer_ready (Conn *c)
{
  uint32_t up = guest_up ();

  send_u32 (c, BG_AGENT_READY, 0, BG_AGENT_F_MASK, up, 0, 0);
  c->ready_deadline = 0;
}

/* ---- sessions ---- */

static Session *
session_find (Conn *c, uint32_t id)
{
  for (Session *s = sessions; s; s = s->next)
    if (s->conn == c && s->id == id)
      return s;
  return NULL;
}

static void
session_free (Session *s)
{
  Session **p;

  for (p = &sessions; *p && *p != s; p = &(*p)->next)
    ;
  if (*p)
    *p = s->next;
  if (s->conn)
    s->conn->nsessions--;
  close_fd (&s->in_fd);
  close_fd (&s->out_fd);
  close_fd (&s->err_fd);
  free (s->in_data);
  free (s);
}

/* Once the process ended and its output is drained, the host learns how
 * it ended, and the session is gone. */
static void
session_maybe_done (Session *s)
{
  if (!s->exited || s->out_fd >= 0 || s->err_fd >= 0)
    return;
  if (s->conn)
    {
      if (WIFSIGNALED (s->status))
        send_u32 (s->conn, BG_AGENT_EXIT, s->id, BG_AGENT_F_SIGNAL, WTERMSIG (s->status), 0, 0);
      else
        send_u32 (s->conn, BG_AGENT_EXIT, s->id, BG_AGENT_F_CODE, WEXITSTATUS (s->status) & 0xff, 0, 0);
    }
  session_free (s);
}

static void __attribute__ ((noreturn))
child_fail (int errpipe, const char *what)
{
  int e = errno;
  char buf[512];
  int n = snprintf (buf, sizeof buf, "%s: %s", what, strerror (e));

  if (write (errpipe, buf, (size_t) n) < 0)
    _exit (127);
  _exit (127);
}

static char **
build_env (const BgAgentMsg *m, const BgPasswdUser *u)
{
  static const char *path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  size_t n = 0, cap = (size_t) m->envc + 8;
  char **env = calloc (cap, sizeof (char *));
  char *base[6];

  if (env == NULL)
    return NULL;
  base[0] = strdup (path);
  if (asprintf (&base[1], "HOME=%s", u->home) < 0) base[1] = NULL;
  if (asprintf (&base[2], "USER=%s", u->name) < 0) base[2] = NULL;
  if (asprintf (&base[3], "LOGNAME=%s", u->name) < 0) base[3] = NULL;
  if (asprintf (&base[4], "SHELL=%s", u->shell) < 0) base[4] = NULL;
  base[5] = m->pty ? strdup ("TERM=xterm-256color") : NULL;
  /* The host's variables come last and win over the defaults. */
  for (size_t i = 0; i < 6; i++)
    {
      size_t klen;
      int overridden = 0;

      if (base[i] == NULL)
        continue;
      klen = strcspn (base[i], "=") + 1;
      for (uint32_t j = 0; j < m->envc; j++)
        if (strncmp (m->env[j], base[i], klen) == 0)
          overridden = 1;
      if (overridden)
        free (base[i]);
      else
        env[n++] = base[i];
    }
  for (uint32_t j = 0; j < m->envc; j++)
    env[n++] = m->env[j];
  env[n] = NULL;
  return env;
}

/* Frees what build_env made; the host's entries belong to @m. */
static void
free_env (char **env, const BgAgentMsg *m)
{
  if (env == NULL)
    return;
  for (size_t i = 0; env[i]; i++)
    {
      int from_host = 0;

      for (uint32_t j = 0; j < m->envc; j++)
        from_host |= env[i] == m->env[j];
      if (!from_host)
        free (env[i]);
    }
  free (env);
}

/* The child's side of fork: its own session, its streams, the user's
 * identity, then exec. Only async-signal-safe work is needed here since
 * the agent has one thread. */
static void __attribute__ ((noreturn))
child_exec (const BgAgentMsg *m, const BgPasswdUser *u, char **env, int errpipe,
            int in_fd, int out_fd, int err_fd, const char *pty_name)
{
  sigset_t none;

  sigemptyset (&none);
  sigprocmask (SIG_SETMASK, &none, NULL);
  for (int sig = 1; sig < NSIG; sig++)
    signal (sig, SIG_DFL);
  if (setsid () < 0)
    child_fail (errpipe, "setsid");
  if (pty_name)
    {
      int slave = open (pty_name, O_RDWR);

      if (slave < 0)
        child_fail (errpipe, "opening the terminal");
      if (ioctl (slave, TIOCSCTTY, 0) < 0)
        child_fail (errpipe, "taking the terminal");
      in_fd = out_fd = err_fd = slave;
    }
  if (dup2 (in_fd, 0) < 0 || dup2 (out_fd, 1) < 0 || dup2 (err_fd, 2) < 0)
    child_fail (errpipe, "setting up stdio");
  if (setgroups (u->ngroups, u->groups) < 0)
    child_fail (errpipe, "setgroups");
  if (setgid (u->gid) < 0)
    child_fail (errpipe, "setgid");
  if (setuid (u->uid) < 0)
    child_fail (errpipe, "setuid");
  if (chdir (m->cwd ? m->cwd : u->home) < 0 && (m->cwd || chdir ("/") < 0))
    child_fail (errpipe, m->cwd ? m->cwd : u->home);
  environ = env;
  execvp (m->argv[0], m->argv);
  child_fail (errpipe, m->argv[0]);
}

typedef struct Transfer Transfer;
static Transfer *transfer_find (Conn *c, uint32_t id);
static void conn_reset (Conn *c);

/* Starts the session @m asks for; errors go back to the host as ERROR
 * frames for that session, naming what failed. */
static void
session_start (Conn *c, BgAgentMsg *m)
{
  BgPasswdUser user;
  int in_p[2] = { -1, -1 }, out_p[2] = { -1, -1 }, err_p[2] = { -1, -1 }, errpipe[2] = { -1, -1 };
  int master = -1;
  char pty_name[128] = "";
  char **env = NULL;
  char failure[512];
  ssize_t n;
  Session *s;
  pid_t pid;

  if (session_find (c, m->session) || transfer_find (c, m->session))
    {
      conn_fail (c, 0, "session %u is already in use", m->session);
      return;
    }
  if (c->nsessions >= BG_AGENT_MAX_SESSIONS)
    {
      conn_fail (c, m->session, "too many sessions on one connection (at most %u)", BG_AGENT_MAX_SESSIONS);
      return;
    }
  if (bg_passwd_lookup ("/", m->user ? m->user : "0", &user) < 0)
    {
      conn_fail (c, m->session, "user %s: %s", m->user,
                 errno == ENOENT ? "no such user in the guest's /etc/passwd" : strerror (errno));
      return;
    }
  if (m->pty)
    {
      struct winsize ws = { .ws_row = m->rows ? m->rows : 24, .ws_col = m->cols ? m->cols : 80 };

      master = posix_openpt (O_RDWR | O_NOCTTY | O_CLOEXEC);
      if (master < 0 || grantpt (master) < 0 || unlockpt (master) < 0 ||
          ptsname_r (master, pty_name, sizeof pty_name) != 0 || ioctl (master, TIOCSWINSZ, &ws) < 0)
        {
          conn_fail (c, m->session, "cannot make a terminal: %s", strerror (errno));
          close_fd (&master);
          return;
        }
    }
  else
    {
      if (pipe2 (out_p, O_CLOEXEC) < 0 || pipe2 (err_p, O_CLOEXEC) < 0)
        goto fail_errno;
      if (m->stdin_open ? pipe2 (in_p, O_CLOEXEC) < 0 : (in_p[0] = open ("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
        goto fail_errno;
    }
  if (pipe2 (errpipe, O_CLOEXEC) < 0 || (env = build_env (m, &user)) == NULL)
    goto fail_errno;

  pid = fork ();
  if (pid < 0)
    goto fail_errno;
  if (pid == 0)
    child_exec (m, &user, env, errpipe[1], in_p[0], out_p[1], err_p[1], m->pty ? pty_name : NULL);

  close_fd (&errpipe[1]);
  close_fd (&in_p[0]);
  close_fd (&out_p[1]);
  close_fd (&err_p[1]);
  free_env (env, m);
  env = NULL;
  /* The exec closes errpipe (CLOEXEC): nothing read means it ran. */
  while ((n = read (errpipe[0], failure, sizeof failure - 1)) < 0 && errno == EINTR)
    ;
  close_fd (&errpipe[0]);
  if (n > 0)
    {
      failure[n] = '\0';
      waitpid (pid, NULL, 0);
      conn_fail (c, m->session, "cannot run %s", failure);
      close_fd (&master);
      close_fd (&in_p[1]);
      close_fd (&out_p[0]);
      close_fd (&err_p[0]);
      return;
    }

  s = calloc (1, sizeof *s);
  if (s == NULL)
    {
      kill (pid, SIGKILL);
      conn_fail (c, 0, "out of memory");
      return;
    }
  s->conn = c;
  s->id = m->session;
  s->pid = pid;
  s->pty = m->pty;
  s->credit[BG_AGENT_STDOUT] = s->credit[BG_AGENT_STDERR] = BG_AGENT_WINDOW;
  if (m->pty)
    {
      s->out_fd = master;
      s->in_fd = m->stdin_open ? dup (master) : -1;
      s->err_fd = -1;
    }
  else
    {
      s->in_fd = in_p[1];
      s->out_fd = out_p[0];
      s->err_fd = err_p[0];
    }
  if (s->in_fd >= 0)
    set_nonblock (s->in_fd);
  set_nonblock (s->out_fd);
  if (s->err_fd >= 0)
    set_nonblock (s->err_fd);
  s->next = sessions;
  sessions = s;
  c->nsessions++;
  send_u32 (c, BG_AGENT_STARTED, s->id, BG_AGENT_F_PID, (uint32_t) pid, 0, 0);
  return;

fail_errno:
  conn_fail (c, m->session, "cannot start the session: %s", strerror (errno));
  close_fd (&master);
  for (int i = 0; i < 2; i++)
    {
      close_fd (&in_p[i]);
      close_fd (&out_p[i]);
      close_fd (&err_p[i]);
      close_fd (&errpipe[i]);
    }
  free_env (env, m);
}

/* ---- file transfer (version 2: PUT, GET, ENTRY) ---- */

/* One `vm cp` in either direction. PUT: the host sends a tree of ENTRY
 * frames and DATA on stream 0, written here under the owner it named.
 * GET: a guest path is walked and sent the same way on stream 1, as far
 * as the host's credit allows. The first entry is the root (no NAME);
 * every other is inside the directory opened last. */
typedef struct Transfer {
  struct Transfer *next;
  Conn     *conn;
  uint32_t  id;
  int       get;                       /* 1: GET; 0: PUT */
  uid_t     uid;                       /* PUT: the owner of what is made */
  gid_t     gid;
  char      path[PATH_MAX];            /* the guest path of the entry at hand, for messages */
  size_t    path_len[BG_AGENT_MAX_DEPTH + 1];
  int       dir_fd[BG_AGENT_MAX_DEPTH + 1];   /* [0]: the root's parent; then each open level */
  DIR      *dir[BG_AGENT_MAX_DEPTH + 1];      /* GET: the levels being walked */
  uint32_t  dir_mode[BG_AGENT_MAX_DEPTH + 1]; /* PUT: applied once a level is complete */
  uint64_t  dir_mtime[BG_AGENT_MAX_DEPTH + 1];
  unsigned  depth;                     /* open directory levels */
  char      root_name[NAME_MAX + 1];   /* PUT: the root's name in dir_fd[0] */
  int       started;                   /* the root entry came (or was sent) */
  int       file_fd;                   /* the file being written or read */
  char      file_tmp[64];              /* PUT: its temporary name, until renamed */
  char      file_name[NAME_MAX + 1];
  uint32_t  file_mode;
  uint64_t  file_mtime;
  uint32_t  credit;                    /* GET: what the host lets us send */
  uint32_t  window;                    /* PUT: what the host may still send */
} Transfer;

static Transfer *transfers;

static Transfer *
transfer_find (Conn *c, uint32_t id)
{
  for (Transfer *t = transfers; t; t = t->next)
    if (t->conn == c && t->id == id)
      return t;
  return NULL;
}

static void
transfer_free (Transfer *t)
{
  Transfer **p;

  for (p = &transfers; *p && *p != t; p = &(*p)->next)
    ;
  if (*p)
    *p = t->next;
  if (t->conn)
    t->conn->nsessions--;
  if (t->file_fd >= 0)
    {
      close (t->file_fd);
      /* A file not complete is not left behind under a temporary name. */
      if (!t->get && t->file_tmp[0])
        unlinkat (t->dir_fd[t->depth], t->file_tmp, 0);
    }
  for (unsigned i = 0; i <= t->depth; i++)
    {
      if (t->dir[i])
        closedir (t->dir[i]);
      else if (t->dir_fd[i] >= 0)
        close (t->dir_fd[i]);
    }
  free (t);
}

/* Ends the transfer with an ERROR naming the guest path and why. */
static void
transfer_fail (Transfer *t, int err, const char *what)
{
  if (t->conn)
    conn_fail (t->conn, t->id, "%s: %s", t->path[0] ? t->path : "(guest path)", what ? what : strerror (err));
  transfer_free (t);
}

static void
transfer_done (Transfer *t)
{
  if (t->conn)
    send_u32 (t->conn, BG_AGENT_EXIT, t->id, BG_AGENT_F_CODE, 0, 0, 0);
  transfer_free (t);
}

/* Appends "/NAME" to the path shown in messages (cut, never overrun). */
static void
path_push (Transfer *t, const char *name)
{
  size_t len = strlen (t->path);

  snprintf (t->path + len, sizeof t->path - len, "%s%s", len && t->path[len - 1] != '/' ? "/" : "", name);
}

static void
path_pop_to (Transfer *t, size_t len)
{
  t->path[len] = '\0';
}

/* A relative guest path is in the user's home, as scp has it. */
static int
resolve_path (const char *path, const char *user, BgPasswdUser *u, char *out, size_t size)
{
  if (bg_passwd_lookup ("/", user ? user : "0", u) < 0)
    return -1;
  if (path[0] == '/')
    return snprintf (out, size, "%s", path) < (int) size ? 0 : (errno = ENAMETOOLONG, -1);
  return snprintf (out, size, "%s/%s", u->home, path) < (int) size ? 0 : (errno = ENAMETOOLONG, -1);
}

static Transfer *
transfer_new (Conn *c, const BgAgentMsg *m, int get)
{
  Transfer *t;

  if (session_find (c, m->session) || transfer_find (c, m->session))
    {
      conn_fail (c, 0, "session %u is already in use", m->session);
      return NULL;
    }
  if (c->nsessions >= BG_AGENT_MAX_SESSIONS)
    {
      conn_fail (c, m->session, "too many sessions on one connection (at most %u)", BG_AGENT_MAX_SESSIONS);
      return NULL;
    }
  if ((t = calloc (1, sizeof *t)) == NULL)
    {
      conn_fail (c, 0, "out of memory");
      return NULL;
    }
  t->conn = c;
  t->id = m->session;
  t->get = get;
  t->file_fd = -1;
  for (unsigned i = 0; i <= BG_AGENT_MAX_DEPTH; i++)
    t->dir_fd[i] = -1;
  t->next = transfers;
  transfers = t;
  c->nsessions++;
  return t;
}

/* PUT{PATH, NAME, USER}: where the root goes. PATH an existing directory
 * (the guest's own lookup): the root is NAME inside it; else the root is
 * PATH itself. Nothing is written until its ENTRY comes. */
static void
put_start (Conn *c, const BgAgentMsg *m)
{
  BgPasswdUser u;
  Transfer *t = transfer_new (c, m, 0);
  char full[PATH_MAX];
  struct stat st;
  char *slash;

  if (t == NULL)
    return;
  snprintf (t->path, sizeof t->path, "%s", m->path);
  if (resolve_path (m->path, m->user, &u, full, sizeof full) < 0)
    {
      if (errno == ENOENT)
        {
          conn_fail (c, t->id, "user %s: no such user in the guest's /etc/passwd", m->user);
          transfer_free (t);
        }
      else
        transfer_fail (t, errno, NULL);
      return;
    }
  t->uid = u.uid;
  t->gid = u.gid;
  snprintf (t->path, sizeof t->path, "%s", full);
  if (stat (full, &st) == 0 && S_ISDIR (st.st_mode))
    {
      if (m->name == NULL)
        {
          transfer_fail (t, EISDIR, NULL);
          return;
        }
      t->dir_fd[0] = open (full, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      snprintf (t->root_name, sizeof t->root_name, "%s", m->name);
      path_push (t, m->name);
    }
  else
    {
      /* full/.. is not the parent when full ends in a symlink: split the
       * string, and let the final component be created, not followed. */
      if (strlen (full) > 1 && full[strlen (full) - 1] == '/')
        {
          /* "dir/" that is not a directory */
          transfer_fail (t, errno == ENOENT ? ENOENT : ENOTDIR, NULL);
          return;
        }
      slash = strrchr (full, '/');
      if (slash == NULL || !bg_agent_name_is_safe (slash + 1) || strlen (slash + 1) > NAME_MAX)
        {
          transfer_fail (t, EINVAL, "not a path a file can be written at");
          return;
        }
      snprintf (t->root_name, sizeof t->root_name, "%s", slash + 1);
      if (slash == full)
        t->dir_fd[0] = open ("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      else
        {
          *slash = '\0';
          t->dir_fd[0] = open (full, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        }
    }
  if (t->dir_fd[0] < 0)
    {
      int e = errno;

      /* Named: the directory that is missing, not the file. */
      path_pop_to (t, strlen (t->path) - strlen (t->root_name));
      if (strlen (t->path) > 1)
        path_pop_to (t, strlen (t->path) - 1);
      transfer_fail (t, e, NULL);
      return;
    }
  t->path_len[0] = strlen (t->path) - strlen (t->root_name);
  t->window = BG_AGENT_WINDOW;
  send_u32 (c, BG_AGENT_STARTED, t->id, BG_AGENT_F_PID, (uint32_t) getpid (), 0, 0);
}

static void
set_times (int fd, uint64_t mtime)
{
  struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_sec = (time_t) mtime } };

  futimens (fd, ts);
}

/* The completed entry at the top finished: a file is renamed over its
 * name, a directory gets its mode. The root done, so is the transfer. */
static void
put_entry_done (Transfer *t)
{
  if (t->depth == 0 && t->file_fd < 0)
    transfer_done (t);
}

static void
put_entry (Transfer *t, const BgAgentMsg *m)
{
  int at = t->dir_fd[t->depth];
  const char *name;

  if (t->file_fd >= 0 || (t->started && t->depth == 0) ||
      (t->started ? m->kind != BG_AGENT_KIND_END && m->name == NULL
                  : m->kind == BG_AGENT_KIND_END || m->kind == BG_AGENT_KIND_OTHER))
    {
      conn_fail (t->conn, 0, "session %u: an entry out of place", t->id);
      return;
    }
  if (m->kind == BG_AGENT_KIND_OTHER)
    return;
  if (m->kind == BG_AGENT_KIND_END)
    {
      int fd = t->dir_fd[t->depth];

      /* The mode last, so a read-only directory could be filled. */
      if (fchmod (fd, t->dir_mode[t->depth] & 0777) < 0)
        {
          transfer_fail (t, errno, NULL);
          return;
        }
      set_times (fd, t->dir_mtime[t->depth]);
      close (fd);
      t->dir_fd[t->depth--] = -1;
      path_pop_to (t, t->path_len[t->depth]);
      put_entry_done (t);
      return;
    }
  name = t->started ? m->name : t->root_name;
  if (t->started)
    {
      t->path_len[t->depth] = strlen (t->path);
      path_push (t, name);
    }
  t->started = 1;
  if (m->kind == BG_AGENT_KIND_FILE)
    {
      static unsigned counter;

      snprintf (t->file_tmp, sizeof t->file_tmp, ".banger-cp.%d.%u", (int) getpid (), ++counter);
      t->file_fd = openat (at, t->file_tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
      if (t->file_fd < 0 || fchown (t->file_fd, t->uid, t->gid) < 0)
        {
          transfer_fail (t, errno, NULL);
          return;
        }
      snprintf (t->file_name, sizeof t->file_name, "%s", name);
      t->file_mode = m->mode;
      t->file_mtime = m->mtime;
      return;
    }
  /* A directory: made, or one already there (never through a symlink). */
  {
    int made = mkdirat (at, name, 0700) == 0;
    int fd;

    if (!made && errno != EEXIST)
      {
        transfer_fail (t, errno, NULL);
        return;
      }
    fd = openat (at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || (made && fchown (fd, t->uid, t->gid) < 0))
      {
        int e = errno == ELOOP ? ENOTDIR : errno;

        if (fd >= 0)
          close (fd);
        transfer_fail (t, e, NULL);
        return;
      }
    if (t->depth >= BG_AGENT_MAX_DEPTH)
      {
        close (fd);
        transfer_fail (t, 0, "directories nested too deep");
        return;
      }
    t->dir_fd[++t->depth] = fd;
    t->dir_mode[t->depth] = m->mode;
    t->dir_mtime[t->depth] = m->mtime;
  }
}

static void
put_data (Transfer *t, const BgAgentMsg *m)
{
  const uint8_t *p = m->bytes;
  size_t left = m->nbytes;

  if (m->stream != BG_AGENT_STDIN || t->file_fd < 0 || m->nbytes > t->window)
    {
      conn_fail (t->conn, 0, "session %u: file data out of place or beyond its window", t->id);
      return;
    }
  t->window -= m->nbytes;
  while (left > 0)
    {
      ssize_t n = write (t->file_fd, p, left);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          transfer_fail (t, errno, NULL);
          return;
        }
      p += n;
      left -= (size_t) n;
    }
  /* Written to its destination: the host may send as much again. */
  t->window += m->nbytes;
  send_u32 (t->conn, BG_AGENT_CREDIT, t->id, BG_AGENT_F_STREAM, BG_AGENT_STDIN, BG_AGENT_F_CREDIT, m->nbytes);
}

static void
put_eof (Transfer *t, const BgAgentMsg *m)
{
  int at = t->dir_fd[t->depth];

  if (m->stream != BG_AGENT_STDIN || t->file_fd < 0)
    {
      conn_fail (t->conn, 0, "session %u: an EOF out of place", t->id);
      return;
    }
  if (fchmod (t->file_fd, t->file_mode & 0777) < 0)
    {
      transfer_fail (t, errno, NULL);
      return;
    }
  set_times (t->file_fd, t->file_mtime);
  /* rename replaces a symlink at the name, never what it points to. */
  if (close (t->file_fd) < 0 || renameat (at, t->file_tmp, at, t->file_name) < 0)
    {
      int e = errno;

      t->file_fd = -1;
      unlinkat (at, t->file_tmp, 0);
      t->file_tmp[0] = '\0';
      transfer_fail (t, e, NULL);
      return;
    }
  t->file_fd = -1;
  t->file_tmp[0] = '\0';
  if (t->depth > 0)
    path_pop_to (t, t->path_len[t->depth]);
  put_entry_done (t);
}

/* ---- GET ---- */

static void
send_entry (Transfer *t, uint32_t kind, const char *name, const struct stat *st)
{
  BgAgentBuf *out = &t->conn->out;

  bg_agent_buf_begin (out, BG_AGENT_ENTRY, t->id);
  bg_agent_put_u32 (out, BG_AGENT_F_KIND, kind);
  if (name)
    bg_agent_put_str (out, BG_AGENT_F_NAME, name);
  if (st && kind != BG_AGENT_KIND_OTHER)
    {
      bg_agent_put_u32 (out, BG_AGENT_F_MODE, st->st_mode & 07777);
      bg_agent_put_u64 (out, BG_AGENT_F_MTIME, (uint64_t) st->st_mtime);
      if (kind == BG_AGENT_KIND_FILE)
        bg_agent_put_u64 (out, BG_AGENT_F_SIZE, (uint64_t) st->st_size);
    }
  bg_agent_buf_end (out);
}

/* GET{PATH, USER, RECURSIVE}: the guest path is looked up the guest's
 * way (following its symlinks); it must be a regular file, or a
 * directory with RECURSIVE. */
static void
get_start (Conn *c, const BgAgentMsg *m)
{
  BgPasswdUser u;
  Transfer *t = transfer_new (c, m, 1);
  struct stat st;

  if (t == NULL)
    return;
  snprintf (t->path, sizeof t->path, "%s", m->path);
  if (resolve_path (m->path, m->user, &u, t->path, sizeof t->path) < 0)
    {
      if (errno == ENOENT)
        {
          conn_fail (c, t->id, "user %s: no such user in the guest's /etc/passwd", m->user);
          transfer_free (t);
        }
      else
        transfer_fail (t, errno, NULL);
      return;
    }
  if (stat (t->path, &st) < 0)
    {
      transfer_fail (t, errno, NULL);
      return;
    }
  if (S_ISDIR (st.st_mode) && !m->recursive)
    {
      transfer_fail (t, 0, "is a directory (copy it with -r)");
      return;
    }
  if (!S_ISDIR (st.st_mode) && !S_ISREG (st.st_mode))
    {
      transfer_fail (t, 0, "not a regular file or a directory");
      return;
    }
  if (S_ISDIR (st.st_mode))
    {
      int fd = open (t->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

      if (fd < 0 || (t->dir[1] = fdopendir (fd)) == NULL)
        {
          int e = errno;

          if (fd >= 0)
            close (fd);
          transfer_fail (t, e, NULL);
          return;
        }
      t->depth = 1;
      t->path_len[1] = strlen (t->path);
    }
  else if ((t->file_fd = open (t->path, O_RDONLY | O_NOCTTY | O_CLOEXEC)) < 0)
    {
      transfer_fail (t, errno, NULL);
      return;
    }
  t->credit = BG_AGENT_WINDOW;
  t->started = 1;
  send_entry (t, S_ISDIR (st.st_mode) ? BG_AGENT_KIND_DIR : BG_AGENT_KIND_FILE, NULL, &st);
}

/* The next entry of the directory being walked; its end closes it. */
static void
get_next_entry (Transfer *t)
{
  DIR *d = t->dir[t->depth];
  struct dirent *e;
  struct stat st;
  int at = dirfd (d);

  errno = 0;
  while ((e = readdir (d)) != NULL && (strcmp (e->d_name, ".") == 0 || strcmp (e->d_name, "..") == 0))
    ;
  if (e == NULL)
    {
      if (errno != 0)
        {
          transfer_fail (t, errno, NULL);
          return;
        }
      closedir (d);
      t->dir[t->depth--] = NULL;
      path_pop_to (t, t->path_len[t->depth + 1]);
      send_entry (t, BG_AGENT_KIND_END, NULL, NULL);
      if (t->depth == 0)
        transfer_done (t);
      else
        path_pop_to (t, t->path_len[t->depth]);
      return;
    }
  path_pop_to (t, t->path_len[t->depth]);
  path_push (t, e->d_name);
  if (fstatat (at, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    {
      transfer_fail (t, errno, NULL);
      return;
    }
  /* A symlink to a file is copied as the file (as scp does); a symlink
   * to a directory is not descended: a loop would never end. */
  if (S_ISLNK (st.st_mode))
    {
      struct stat target;

      if (fstatat (at, e->d_name, &target, 0) == 0 && S_ISREG (target.st_mode))
        st = target;
    }
  if (S_ISREG (st.st_mode))
    {
      if ((t->file_fd = openat (at, e->d_name, O_RDONLY | O_NOCTTY | O_CLOEXEC)) < 0)
        {
          transfer_fail (t, errno, NULL);
          return;
        }
      send_entry (t, BG_AGENT_KIND_FILE, e->d_name, &st);
    }
  else if (S_ISDIR (st.st_mode))
    {
      int fd;

      if (t->depth >= BG_AGENT_MAX_DEPTH)
        {
          transfer_fail (t, 0, "directories nested too deep");
          return;
        }
      fd = openat (at, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0 || (t->dir[t->depth + 1] = fdopendir (fd)) == NULL)
        {
          int err = errno;

          if (fd >= 0)
            close (fd);
          transfer_fail (t, err, NULL);
          return;
        }
      t->depth++;
      t->path_len[t->depth] = strlen (t->path);
      send_entry (t, BG_AGENT_KIND_DIR, e->d_name, &st);
    }
  else
    send_entry (t, BG_AGENT_KIND_OTHER, e->d_name, NULL);
}

/* Moves a GET along as far as the host's credit and our output buffer
 * allow; returns whether it can move further at once. */
static int
get_pump (Transfer *t)
{
  for (int steps = 0; steps < 64; steps++)
    {
      if (t->conn == NULL || t->conn->out.len >= OUT_HIGH)
        return 0;
      if (t->file_fd >= 0)
        {
          uint8_t buf[BG_AGENT_MAX_DATA];
          size_t want = t->credit < sizeof buf ? t->credit : sizeof buf;
          ssize_t n;

          if (want == 0)
            return 0;
          n = read (t->file_fd, buf, want);
          if (n < 0 && errno == EINTR)
            continue;
          if (n < 0)
            {
              transfer_fail (t, errno, NULL);
              return 0;
            }
          if (n == 0)
            {
              close (t->file_fd);
              t->file_fd = -1;
              send_u32 (t->conn, BG_AGENT_EOF, t->id, BG_AGENT_F_STREAM, BG_AGENT_STDOUT, 0, 0);
              if (t->depth == 0)
                {
                  transfer_done (t);
                  return 0;
                }
              path_pop_to (t, t->path_len[t->depth]);
              continue;
            }
          t->credit -= (uint32_t) n;
          bg_agent_buf_begin (&t->conn->out, BG_AGENT_DATA, t->id);
          bg_agent_put_u32 (&t->conn->out, BG_AGENT_F_STREAM, BG_AGENT_STDOUT);
          bg_agent_put_bytes (&t->conn->out, BG_AGENT_F_BYTES, buf, (size_t) n);
          bg_agent_buf_end (&t->conn->out);
          continue;
        }
      if (t->depth == 0)
        return 0;
      {
        Transfer *still = t;

        get_next_entry (t);
        /* It may have ended (done or failed) and been freed. */
        for (still = transfers; still && still != t; still = still->next)
          ;
        if (still == NULL)
          return 0;
      }
    }
  return 1;
}

static void
transfer_msg (Conn *c, Transfer *t, const BgAgentMsg *m)
{
  switch (m->type)
    {
    case BG_AGENT_ENTRY:
      if (t->get)
        break;
      put_entry (t, m);
      return;
    case BG_AGENT_DATA:
      if (t->get)
        break;
      put_data (t, m);
      return;
    case BG_AGENT_EOF:
      if (t->get)
        break;
      put_eof (t, m);
      return;
    case BG_AGENT_CREDIT:
      if (!t->get || m->stream != BG_AGENT_STDOUT || t->credit + (uint64_t) m->credit > 64u * BG_AGENT_WINDOW)
        break;
      t->credit += m->credit;
      return;
    case BG_AGENT_ERROR:
      /* The host gave up on it (a local write failed). */
      transfer_free (t);
      return;
    default:
      break;
    }
  conn_fail (c, 0, "session %u: frame type %u does not belong in a file transfer", t->id, m->type);
}

/* ---- receiving ---- */

static void
handle_msg (Conn *c, BgAgentMsg *m)
{
  Session *s = NULL;

  if (!c->hello && m->type != BG_AGENT_HELLO)
    {
      conn_fail (c, 0, "the first frame must be HELLO");
      return;
    }
  if (m->type == BG_AGENT_PUT || m->type == BG_AGENT_GET)
    {
      if (c->version < BG_AGENT_VERSION_FILES)
        conn_fail (c, 0, "file transfer needs protocol version %u; this connection speaks %u",
                   BG_AGENT_VERSION_FILES, c->version);
      else if (m->type == BG_AGENT_PUT)
        put_start (c, m);
      else
        get_start (c, m);
      return;
    }
  if (m->session != 0 && m->type != BG_AGENT_EXEC)
    {
      Transfer *t = transfer_find (c, m->session);

      if (t)
        {
          transfer_msg (c, t, m);
          return;
        }
    }
  if (m->session != 0 && m->type != BG_AGENT_EXEC && m->type != BG_AGENT_ERROR &&
      (s = session_find (c, m->session)) == NULL)
    return;   /* a session that just ended: its frames crossed ours */

  switch (m->type)
    {
    case BG_AGENT_HELLO:
      /* Over the serial port a host may leave and the next one say
       * HELLO before the agent saw the first go (both happened between
       * two polls): that HELLO starts a new connection. */
      if (c->hello && c->serial && m->version <= BG_AGENT_VERSION)
        {
          say ("a new host on the serial port");
          conn_reset (c);
        }
      /* Any version up to ours: the answer is the one both speak. */
      if (c->hello || m->version > BG_AGENT_VERSION)
        {
          conn_fail (c, 0, "protocol version %u is not supported (this agent speaks 1 to %u)", m->version,
                     BG_AGENT_VERSION);
          return;
        }
      c->hello = 1;
      c->version = m->version;
      send_u32 (c, BG_AGENT_HELLO, 0, BG_AGENT_F_VERSION, c->version, 0, 0);
      break;
    case BG_AGENT_READY:
      c->ready_mask = m->mask;
      c->ready_deadline = now_ms () + m->timeout_ms;
      break;
    case BG_AGENT_EXEC:
      session_start (c, m);
      break;
    case BG_AGENT_DATA:
      if (m->stream != BG_AGENT_STDIN || s->in_fd < 0 || s->in_eof ||
          s->in_len + m->nbytes > BG_AGENT_WINDOW)
        {
          conn_fail (c, 0, "session %u: stdin data beyond its window or after its end", s->id);
          return;
        }
      {
        uint8_t *grown = realloc (s->in_data, s->in_len + m->nbytes);

        if (grown == NULL)
          {
            conn_fail (c, 0, "out of memory");
            return;
          }
        memcpy (grown + s->in_len, m->bytes, m->nbytes);
        s->in_data = grown;
        s->in_len += m->nbytes;
      }
      break;
    case BG_AGENT_EOF:
      if (m->stream == BG_AGENT_STDIN)
        s->in_eof = 1;
      break;
    case BG_AGENT_CREDIT:
      if (m->stream == BG_AGENT_STDIN || s->credit[m->stream] + (uint64_t) m->credit > 64u * BG_AGENT_WINDOW)
        {
          conn_fail (c, 0, "session %u: credit out of range", s->id);
          return;
        }
      s->credit[m->stream] += m->credit;
      break;
    case BG_AGENT_RESIZE:
      if (s->pty)
        {
          struct winsize ws = { .ws_row = m->rows, .ws_col = m->cols };

          ioctl (s->out_fd, TIOCSWINSZ, &ws);
        }
      break;
    case BG_AGENT_SIGNAL:
      if (!s->exited)
        kill (s->pid, (int) m->signo);
      break;
    case BG_AGENT_ERROR:
      say ("the host says: %s", m->message);
      if (m->session == 0)
        c->closing = 1;
      break;
    default:
      conn_fail (c, 0, "frame type %u is not one the host sends", m->type);
      break;
    }
}

static void
conn_read (Conn *c)
{
  size_t off = 0;
  ssize_t n;

  n = read (c->fd, c->in + c->in_len, BG_AGENT_HEADER_SIZE + BG_AGENT_MAX_PAYLOAD - c->in_len);
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (n <= 0)
    {
      c->closing = 2;   /* gone: nothing to flush to */
      return;
    }
  c->in_len += (size_t) n;
  while (!c->closing)
    {
      BgAgentFrame frame;
      BgAgentMsg msg;
      size_t used;
      int r = bg_agent_frame_parse (c->in + off, c->in_len - off, &frame, &used);

      if (r == 0)
        break;
      if (r < 0 || (r = bg_agent_msg_decode (&frame, &msg)) < 0)
        {
          conn_fail (c, 0, "malformed frame: %s", bg_agent_strerror (r));
          break;
        }
      handle_msg (c, &msg);
      bg_agent_msg_clear (&msg);
      off += used;
    }
  memmove (c->in, c->in + off, c->in_len - off);
  c->in_len -= off;
}

/* Ends everything the connection's host started: its processes are
 * killed (and reaped later), its transfers dropped, and the connection
 * is as new, so that nothing of one host reaches the next. */
static void
conn_reset (Conn *c)
{
  for (Session *s = sessions; s; s = s->next)
    if (s->conn == c)
      {
        /* The host is gone: so is what it started. */
        if (!s->exited)
          kill (-s->pid, SIGKILL), kill (s->pid, SIGKILL);
        s->conn = NULL;
        close_fd (&s->in_fd);
        close_fd (&s->out_fd);
        close_fd (&s->err_fd);
      }
  for (Transfer *t = transfers, *next; t; t = next)
    {
      next = t->next;
      if (t->conn == c)
        {
          t->conn = NULL;
          transfer_free (t);
        }
    }
  c->nsessions = 0;
  c->hello = 0;
  c->version = 0;
  c->ready_mask = 0;
  c->ready_deadline = 0;
  c->out.len = 0;
}

static void
conn_close (Conn *c)
{
  conn_reset (c);
  if (c->serial)
    {
      /* Closing the port drops whatever the host sent and we did not
       * read; it is opened again for the next host. */
      say ("the host left the serial port");
      serial_conn = NULL;
      serial_fd = -1;
    }
  close (c->fd);
  free (c->in);
  bg_agent_buf_free (&c->out);
  for (int i = 0; i < MAX_CONNS; i++)
    if (conns[i] == c)
      conns[i] = NULL;
  free (c);
}

static Conn *
conn_new (int fd)
{
  for (int i = 0; i < MAX_CONNS; i++)
    if (conns[i] == NULL)
      {
        Conn *c = calloc (1, sizeof *c);

        if (c == NULL || (c->in = malloc (BG_AGENT_HEADER_SIZE + BG_AGENT_MAX_PAYLOAD)) == NULL)
          {
            free (c);
            break;
          }
        c->fd = fd;
        set_nonblock (fd);
        bg_agent_buf_init (&c->out);
        conns[i] = c;
        return c;
      }
  say ("refusing a connection: %d are open already", MAX_CONNS);
  close (fd);
  return NULL;
}

static void
accept_one (int listener)
{
  union {
    struct sockaddr     sa;
    struct sockaddr_vm  vm;
    struct sockaddr_un  un;
  } peer;
  socklen_t len = sizeof peer;
  int fd = accept4 (listener, &peer.sa, &len, SOCK_CLOEXEC);

  if (fd < 0)
    return;
  /* Only the host: a guest process could reach this port over the
   * loopback CID (VMADDR_CID_LOCAL) and would get root. */
  if (!test_mode && (peer.sa.sa_family != AF_VSOCK || peer.vm.svm_cid != VMADDR_CID_HOST))
    {
      say ("refusing a connection from CID %u: only the host (CID %u) is served",
           peer.sa.sa_family == AF_VSOCK ? peer.vm.svm_cid : 0u, (unsigned) VMADDR_CID_HOST);
      close (fd);
      return;
    }
  conn_new (fd);
}

/* ---- streams ---- */

static void
pump_output (Session *s, int stream)
{
  uint8_t buf[BG_AGENT_MAX_DATA];
  int *fd = stream == BG_AGENT_STDOUT ? &s->out_fd : &s->err_fd;
  size_t want = s->credit[stream] < sizeof buf ? s->credit[stream] : sizeof buf;
  ssize_t n = read (*fd, buf, want);

  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (n <= 0)
    {
      /* EOF, or EIO from a PTY master once every slave is closed. */
      close_fd (fd);
      if (s->pty)
        close_fd (&s->in_fd);
      if (s->conn)
        send_u32 (s->conn, BG_AGENT_EOF, s->id, BG_AGENT_F_STREAM, (uint32_t) stream, 0, 0);
      session_maybe_done (s);
      return;
    }
  s->credit[stream] -= (uint32_t) n;
  bg_agent_buf_begin (&s->conn->out, BG_AGENT_DATA, s->id);
  bg_agent_put_u32 (&s->conn->out, BG_AGENT_F_STREAM, (uint32_t) stream);
  bg_agent_put_bytes (&s->conn->out, BG_AGENT_F_BYTES, buf, (size_t) n);
  bg_agent_buf_end (&s->conn->out);
}

static void
pump_input (Session *s)
{
  ssize_t n = s->in_len ? write (s->in_fd, s->in_data, s->in_len) : 0;

  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (n < 0)
    {
      /* The process closed its stdin: what the host sends is dropped,
       * and the credit still flows so the host never stalls on it. */
      n = (ssize_t) s->in_len;
    }
  if (n > 0)
    {
      memmove (s->in_data, s->in_data + n, s->in_len - (size_t) n);
      s->in_len -= (size_t) n;
      if (s->conn)
        send_u32 (s->conn, BG_AGENT_CREDIT, s->id, BG_AGENT_F_STREAM, BG_AGENT_STDIN, BG_AGENT_F_CREDIT,
                  (uint32_t) n);
    }
  if (s->in_len == 0 && s->in_eof && !s->pty)
    close_fd (&s->in_fd);
}

static void
reap (void)
{
  int status;
  pid_t pid;

  while ((pid = waitpid (-1, &status, WNOHANG)) > 0)
    for (Session *s = sessions; s; s = s->next)
      if (s->pid == pid && !s->exited)
        {
          s->exited = 1;
          s->status = status;
          if (s->conn == NULL)
            {
              session_free (s);
              break;
            }
          session_maybe_done (s);
          break;
        }
}

/* ---- main loop ---- */

static int
listen_unix (const char *unix_path)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  int fd;

  if (strlen (unix_path) >= sizeof sa.sun_path)
    {
      say ("%s: path too long for a socket", unix_path);
      return -1;
    }
  strcpy (sa.sun_path, unix_path);
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || bind (fd, (struct sockaddr *) &sa, sizeof sa) < 0 || listen (fd, 16) < 0)
    {
      say ("cannot listen on %s: %s", unix_path, strerror (errno));
      return -1;
    }
  return fd;
}

/* One try at the vsock listener: its fd, or -1 with errno. Started early
 * in boot (by banger-init), the vsock module may not be loaded yet: the
 * caller tries again for a minute. */
static int
listen_vsock (unsigned port)
{
  struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_port = port, .svm_cid = VMADDR_CID_ANY };
  int fd = socket (AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

  if (fd >= 0 && bind (fd, (struct sockaddr *) &sa, sizeof sa) == 0 && listen (fd, 16) == 0)
    return fd;
  if (errno == EADDRINUSE)
    {
      /* Both banger-init and banger-agent.service start us: the first
       * one serves. */
      say ("vsock port %u is served already", port);
      exit (0);
    }
  if (fd >= 0)
    {
      int e = errno;

      close (fd);
      errno = e;
    }
  return -1;
}

/* ---- the virtio-serial port ---- */

/* The port's device: udev's name for it, else the vportNpM whose sysfs
 * name is ours (devtmpfs makes that node without udev). */
static int
serial_find (char *path, size_t size)
{
  DIR *d;
  struct dirent *e;
  int found = 0;

  if (serial_path_opt)
    return snprintf (path, size, "%s", serial_path_opt) < (int) size ? 0 : -1;
  if (access ("/dev/virtio-ports/" SERIAL_NAME, F_OK) == 0)
    return snprintf (path, size, "/dev/virtio-ports/" SERIAL_NAME) < (int) size ? 0 : -1;
  if ((d = opendir ("/sys/class/virtio-ports")) == NULL)
    return -1;
  while (!found && (e = readdir (d)) != NULL)
    {
      char file[PATH_MAX], name[64] = "";
      FILE *f;

      if (e->d_name[0] == '.' || snprintf (file, sizeof file, "/sys/class/virtio-ports/%s/name", e->d_name) >=
          (int) sizeof file || (f = fopen (file, "re")) == NULL)
        continue;
      if (fgets (name, sizeof name, f) && strcmp (name, SERIAL_NAME "\n") == 0 &&
          snprintf (path, size, "/dev/%s", e->d_name) < (int) size)
        found = 1;
      fclose (f);
    }
  closedir (d);
  return found ? 0 : -1;
}

/* Whether the guest has a virtio console device (virtio id 3), whose
 * ports appear once its driver is loaded (by udev, maybe long after the
 * agent started, in a slow guest): then the port is looked for until it
 * is there, not only for the first minute. */
static int
virtio_console_present (void)
{
  DIR *d = opendir ("/sys/bus/virtio/devices");
  struct dirent *e;
  int found = 0;

  if (d == NULL)
    return 0;
  while (!found && (e = readdir (d)) != NULL)
    {
      char file[PATH_MAX], id[32] = "";
      FILE *f;

      if (e->d_name[0] == '.' || snprintf (file, sizeof file, "/sys/bus/virtio/devices/%s/device", e->d_name) >=
          (int) sizeof file || (f = fopen (file, "re")) == NULL)
        continue;
      found = fgets (id, sizeof id, f) && strcmp (id, "0x0003\n") == 0;
      fclose (f);
    }
  closedir (d);
  return found;
}

/* Opens the port, if there is one. While no host is there the fd stays
 * out of poll() (virtio_console reports POLLHUP all along): O_ASYNC makes
 * the kernel send SIGIO when the host's side opens, which wakes the
 * signalfd. */
static void
serial_open (void)
{
  char path[PATH_MAX];
  struct termios t;
  int fd;

  if (serial_find (path, sizeof path) < 0)
    return;
  fd = open (path, O_RDWR | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0)
    return;
  /* A tty standing in for the port (a serial line, a test's pty) must
   * pass the frames' bytes as they are. */
  if (tcgetattr (fd, &t) == 0)
    {
      cfmakeraw (&t);
      tcsetattr (fd, TCSANOW, &t);
    }
  if (fcntl (fd, F_SETOWN, getpid ()) < 0 || fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) | O_ASYNC) < 0)
    say ("%s: no SIGIO (%s): checking for the host once a second", path, strerror (errno));
  if (!serial_found)
    say ("serving the virtio-serial port %s", path);
  serial_found = 1;
  serial_fd = fd;
}

/* Whether a host has the port open now. */
static int
serial_host_there (void)
{
  struct pollfd p = { serial_fd, POLLIN, 0 };

  return poll (&p, 1, 0) >= 0 && !(p.revents & (POLLHUP | POLLERR | POLLNVAL));
}

/* A host opened the port: it gets a connection, like a vsock accept. */
static void
serial_attach (void)
{
  fcntl (serial_fd, F_SETFL, fcntl (serial_fd, F_GETFL) & ~O_ASYNC);
  serial_conn = conn_new (serial_fd);
  if (serial_conn == NULL)
    {
      serial_fd = -1;   /* conn_new closed it */
      return;
    }
  serial_conn->serial = 1;
}

int
main (int argc, char **argv)
{
  const char *unix_path = NULL;
  unsigned port = BG_AGENT_VSOCK_PORT;
  struct pollfd pfds[1 + 1 + MAX_CONNS + 3 * MAX_CONNS * BG_AGENT_MAX_SESSIONS];
  void *who[sizeof pfds / sizeof pfds[0]];
  int kind[sizeof pfds / sizeof pfds[0]];
  sigset_t mask;
  int listener = -1, sigfd;
  /* Start-up tries left: of the vsock listener (-1: not wanted or
   * given up) and of looking for the serial port. */
  int vsock_tries = -1, serial_tries = 0;
  int64_t next_try = 0;

  for (int i = 1; i < argc; i++)
    {
      if (strcmp (argv[i], "--listen-unix") == 0 && i + 1 < argc)
        unix_path = argv[++i], test_mode = 1;
      else if (strcmp (argv[i], "--serial") == 0 && i + 1 < argc)
        serial_path_opt = argv[++i];
      else if (strcmp (argv[i], "--port") == 0 && i + 1 < argc)
        port = (unsigned) strtoul (argv[++i], NULL, 10);
      else
        {
          fprintf (stderr, "usage: banger-agent [--port N]\n"
                   "       banger-agent --serial PATH        (the virtio-serial port, or a tty standing in)\n"
                   "       banger-agent --listen-unix PATH   (tests only: serves anyone who can connect)\n");
          return 2;
        }
    }

  signal (SIGPIPE, SIG_IGN);
  sigemptyset (&mask);
  sigaddset (&mask, SIGCHLD);
  sigaddset (&mask, SIGIO);
  sigprocmask (SIG_BLOCK, &mask, NULL);
  if ((sigfd = signalfd (-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0)
    return 1;
  if (unix_path)
    {
      if ((listener = listen_unix (unix_path)) < 0)
        return 1;
      say ("listening on %s", unix_path);
      serial_tries = -1;
    }
  else if (serial_path_opt)
    serial_found = 1;   /* that port only, for as long as it takes */
  else
    {
      vsock_tries = SETUP_TRIES;
      serial_tries = SETUP_TRIES;
    }

  for (;;)
    {
      nfds_t n = 0;
      int timeout = -1, busy = 0;
      int64_t now = now_ms ();

      /* Transfers out of the guest first: what they queue must be in
       * the output before the connections' POLLOUT is decided. */
      for (Transfer *t = transfers, *next; t; t = next)
        {
          next = t->next;
          if (t->get && get_pump (t))
            busy = 1;
        }
      pfds[n] = (struct pollfd) { sigfd, POLLIN, 0 }, kind[n++] = 'S';
      if (listener >= 0)
        pfds[n] = (struct pollfd) { listener, POLLIN, 0 }, kind[n++] = 'L';
      for (int i = 0; i < MAX_CONNS; i++)
        {
          Conn *c = conns[i];

          if (c == NULL)
            continue;
          if (c->closing == 2 || (c->closing && c->out.len == 0))
            {
              conn_close (c);
              continue;
            }
          if (c->ready_deadline)
            {
              uint32_t up = guest_up ();
              uint32_t want = c->ready_mask;

              if (!(up & BG_AGENT_HAS_SSHD))
                want &= ~BG_AGENT_UP_SSHD;
              if ((up & want) == want || now >= c->ready_deadline)
                answer_ready (c);
              else if (timeout < 0 || timeout > READY_POLL_MS)
                timeout = READY_POLL_MS;
            }
          pfds[n] = (struct pollfd) { c->fd, (short) ((c->closing ? 0 : POLLIN) | (c->out.len ? POLLOUT : 0)), 0 };
          who[n] = c, kind[n++] = 'C';
        }
      /* Setting up: the vsock listener, the serial port where the guest
       * has one. Each is tried every SETUP_MS for a minute (the port for
       * as long as a virtio console device waits for its driver); a port
       * found once is opened again after each host (at once, or once a
       * second while its node is missing). */
      if (now >= next_try)
        {
          if (vsock_tries > 0 && listener < 0)
            {
              vsock_tries--;
              if ((listener = listen_vsock (port)) >= 0)
                say ("listening on vsock port %u", port);
              else if ((errno != EAFNOSUPPORT && errno != ENODEV && errno != EADDRNOTAVAIL) || vsock_tries == 0)
                {
                  say ("cannot listen on vsock port %u: %s", port, strerror (errno));
                  vsock_tries = -1;
                }
            }
          if (serial_fd < 0 && serial_tries > 0)
            {
              serial_tries--;
              serial_open ();
              if (serial_fd < 0 && serial_tries == 0 && virtio_console_present ())
                serial_tries = SETUP_TRIES;
            }
          next_try = now + (serial_found && serial_tries <= 0 && vsock_tries <= 0 ? 1000 : SETUP_MS);
        }
      /* The port found once: opened again as soon as its host left. */
      if (serial_fd < 0 && serial_found)
        serial_open ();
      if (listener < 0 && vsock_tries <= 0 && !serial_found && serial_tries <= 0)
        {
          say ("neither vsock nor the virtio-serial port %s: nothing to serve", SERIAL_NAME);
          return 1;
        }
      if ((listener < 0 && vsock_tries > 0) || (serial_fd < 0 && (serial_found || serial_tries > 0)))
        timeout = timeout >= 0 && timeout < (int) (next_try - now) ? timeout : (int) (next_try - now);
      /* A host opened the port: serve it. Until then SIGIO (or, without
       * it, a look once a second) says when. */
      if (serial_fd >= 0 && serial_conn == NULL)
        {
          if (serial_host_there ())
            {
              serial_attach ();
              if (serial_conn)
                pfds[n] = (struct pollfd) { serial_fd, POLLIN, 0 }, who[n] = serial_conn, kind[n++] = 'C';
            }
          else if (timeout < 0 || timeout > 1000)
            timeout = 1000;
        }

      for (Session *s = sessions; s; s = s->next)
        {
          int room = s->conn && s->conn->out.len < OUT_HIGH;

          if (s->out_fd >= 0 && room && s->credit[BG_AGENT_STDOUT] > 0)
            pfds[n] = (struct pollfd) { s->out_fd, POLLIN, 0 }, who[n] = s, kind[n++] = 'O';
          if (s->err_fd >= 0 && room && s->credit[BG_AGENT_STDERR] > 0)
            pfds[n] = (struct pollfd) { s->err_fd, POLLIN, 0 }, who[n] = s, kind[n++] = 'E';
          if (s->in_fd >= 0 && (s->in_len || (s->in_eof && !s->pty)))
            pfds[n] = (struct pollfd) { s->in_fd, POLLOUT, 0 }, who[n] = s, kind[n++] = 'I';
        }

      if (busy)
        timeout = 0;
      if (poll (pfds, n, timeout) < 0)
        {
          if (errno == EINTR)
            continue;
          say ("poll: %s", strerror (errno));
          return 1;
        }

      for (nfds_t i = 0; i < n; i++)
        {
          short ev = pfds[i].revents;

          if (ev == 0)
            continue;
          switch (kind[i])
            {
            case 'S':
              {
                struct signalfd_siginfo si;

                while (read (sigfd, &si, sizeof si) > 0)
                  ;
                reap ();
              }
              break;
            case 'L':
              accept_one (listener);
              break;
            case 'C':
              {
                Conn *c = who[i];
                int alive = 0;

                for (int j = 0; j < MAX_CONNS; j++)
                  alive |= conns[j] == c;
                if (!alive)
                  break;
                if (ev & POLLOUT)
                  {
                    ssize_t w = write (c->fd, c->out.data, c->out.len);

                    if (w > 0)
                      bg_agent_buf_consume (&c->out, (size_t) w);
                    else if (w < 0 && errno != EAGAIN && errno != EINTR)
                      c->closing = 2;
                  }
                if (ev & (POLLIN | POLLHUP | POLLERR))
                  conn_read (c);
              }
              break;
            default:
              {
                Session *s = who[i];
                int alive = 0;

                /* Sessions may have been freed by earlier entries. */
                for (Session *t = sessions; t; t = t->next)
                  alive |= t == s;
                if (!alive)
                  break;
                if (kind[i] == 'O' && s->out_fd == pfds[i].fd)
                  pump_output (s, BG_AGENT_STDOUT);
                else if (kind[i] == 'E' && s->err_fd == pfds[i].fd)
                  pump_output (s, BG_AGENT_STDERR);
                else if (kind[i] == 'I' && s->in_fd == pfds[i].fd)
                  pump_input (s);
              }
              break;
            }
        }
    }
}
