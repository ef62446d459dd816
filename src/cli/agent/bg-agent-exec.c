/* bg-agent-exec.c: one exec session through the guest agent.
 *
 * One poll() over the agent's socket, our stdin and a signalfd: signals
 * are read as data (no handler, no flag shared with one), and are
 * forwarded as SIGNAL frames, window changes as RESIZE. Output is
 * written out before it is credited back to the agent, so a slow reader
 * of our stdout slows the guest's process, and at most a window per
 * stream is ever in flight. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include "bg-agent-exec.h"
#include "bg-error.h"
#include "bg-fd.h"

#define SESSION   1u
#define OUT_HIGH  (1024u * 1024u)

typedef struct {
  BgAgentClient *client;
  const BgAgentExecOptions *options;
  gboolean started, done, stdin_eof;
  guint64  stdin_credit;
  int      status;
} Exec;

static gboolean
write_all (int fd, const guint8 *data, gsize len)
{
  while (len > 0)
    {
      ssize_t n = write (fd, data, len);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno == EAGAIN)
        {
          struct pollfd p = { fd, POLLOUT, 0 };

          poll (&p, 1, -1);
          continue;
        }
      if (n <= 0)
        return FALSE;
      data += n;
      len -= (gsize) n;
    }
  return TRUE;
}

static void
window_size (guint32 *rows, guint32 *cols)
{
  struct winsize ws = { 0 };

  if ((ioctl (STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 || ioctl (STDIN_FILENO, TIOCGWINSZ, &ws) == 0) &&
      ws.ws_row > 0 && ws.ws_col > 0)
    {
      *rows = ws.ws_row;
      *cols = ws.ws_col;
      return;
    }
  *rows = 24;
  *cols = 80;
}

static gboolean
send_exec (Exec *e, GError **error)
{
  BgAgentBuf *out = bg_agent_client_out (e->client);
  const BgAgentExecOptions *o = e->options;

  bg_agent_buf_begin (out, BG_AGENT_EXEC, SESSION);
  for (const char * const *a = o->argv; *a; a++)
    bg_agent_put_str (out, BG_AGENT_F_ARG, *a);
  for (const char * const *v = o->env; v && *v; v++)
    bg_agent_put_str (out, BG_AGENT_F_ENV, *v);
  if (o->cwd)
    bg_agent_put_str (out, BG_AGENT_F_CWD, o->cwd);
  if (o->user)
    bg_agent_put_str (out, BG_AGENT_F_USER, o->user);
  if (o->interactive)
    bg_agent_put_u32 (out, BG_AGENT_F_STDIN, 1);
  if (o->tty)
    {
      guint32 rows, cols;

      window_size (&rows, &cols);
      bg_agent_put_u32 (out, BG_AGENT_F_PTY, 1);
      bg_agent_put_u32 (out, BG_AGENT_F_ROWS, MIN (rows, 65535));
      bg_agent_put_u32 (out, BG_AGENT_F_COLS, MIN (cols, 65535));
    }
  return bg_agent_client_queue (e->client, error);
}

static gboolean
send_u32 (Exec *e, BgAgentType type, BgAgentField f1, guint32 v1, BgAgentField f2, guint32 v2, GError **error)
{
  BgAgentBuf *out = bg_agent_client_out (e->client);

  bg_agent_buf_begin (out, type, SESSION);
  bg_agent_put_u32 (out, f1, v1);
  if (f2)
    bg_agent_put_u32 (out, f2, v2);
  return bg_agent_client_queue (e->client, error);
}

static gboolean
handle_msg (Exec *e, BgAgentMsg *m, GError **error)
{
  if (m->session != SESSION && !(m->session == 0 && m->type == BG_AGENT_ERROR))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_CORRUPT, "the guest agent sent a frame for session %u, which "
                   "does not exist", m->session);
      return FALSE;
    }
  switch (m->type)
    {
    case BG_AGENT_STARTED:
      e->started = TRUE;
      return TRUE;
    case BG_AGENT_DATA:
      if (m->stream == BG_AGENT_STDIN)
        break;
      if (!write_all (m->stream == BG_AGENT_STDOUT ? STDOUT_FILENO : STDERR_FILENO, m->bytes, m->nbytes))
        {
          /* Our reader is gone (banger vm exec … | head): end as a
           * process in a pipeline does, by SIGPIPE's status (even where
           * SIGPIPE is ignored); the connection closes, and the agent
           * kills what it started. */
          e->status = 128 + SIGPIPE;
          e->done = TRUE;
          return TRUE;
        }
      return send_u32 (e, BG_AGENT_CREDIT, BG_AGENT_F_STREAM, m->stream, BG_AGENT_F_CREDIT, m->nbytes, error);
    case BG_AGENT_EOF:
      return TRUE;
    case BG_AGENT_CREDIT:
      if (m->stream != BG_AGENT_STDIN || e->stdin_credit + m->credit > 64u * BG_AGENT_WINDOW)
        break;
      e->stdin_credit += m->credit;
      return TRUE;
    case BG_AGENT_EXIT:
      e->status = BG_AGENT_HAS (m, BG_AGENT_F_SIGNAL) ? 128 + (int) m->signo : (int) m->code;
      e->done = TRUE;
      return TRUE;
    case BG_AGENT_ERROR:
      if (!e->started && m->session == SESSION)
        {
          e->status = 127;
          g_set_error (error, BG_ERROR, BG_ERROR_NOT_FOUND, "in the guest: %s", m->message);
        }
      else
        g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "the guest agent says: %s", m->message);
      return FALSE;
    default:
      break;
    }
  g_set_error (error, BG_ERROR, BG_ERROR_CORRUPT, "the guest agent sent an unexpected frame (type %u)", m->type);
  return FALSE;
}

static gboolean
forward_signal (Exec *e, const struct signalfd_siginfo *si, GError **error)
{
  if (si->ssi_signo == SIGWINCH)
    {
      guint32 rows, cols;

      if (!e->options->tty)
        return TRUE;
      window_size (&rows, &cols);
      return send_u32 (e, BG_AGENT_RESIZE, BG_AGENT_F_ROWS, MIN (rows, 65535), BG_AGENT_F_COLS, MIN (cols, 65535),
                       error);
    }
  return send_u32 (e, BG_AGENT_SIGNAL, BG_AGENT_F_SIGNAL, si->ssi_signo, 0, 0, error);
}

static gboolean
pump_stdin (Exec *e, GError **error)
{
  guint8 buf[BG_AGENT_MAX_DATA];
  ssize_t n = read (STDIN_FILENO, buf, MIN (e->stdin_credit, sizeof buf));
  BgAgentBuf *out;

  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return TRUE;
  if (n <= 0)
    {
      e->stdin_eof = TRUE;
      return send_u32 (e, BG_AGENT_EOF, BG_AGENT_F_STREAM, BG_AGENT_STDIN, 0, 0, error);
    }
  e->stdin_credit -= (guint64) n;
  out = bg_agent_client_out (e->client);
  bg_agent_buf_begin (out, BG_AGENT_DATA, SESSION);
  bg_agent_put_u32 (out, BG_AGENT_F_STREAM, BG_AGENT_STDIN);
  bg_agent_put_bytes (out, BG_AGENT_F_BYTES, buf, (gsize) n);
  return bg_agent_client_queue (e->client, error);
}

static gboolean
run_loop (Exec *e, int sigfd, GError **error)
{
  int sock = bg_agent_client_get_fd (e->client);

  if (!send_exec (e, error))
    return FALSE;
  while (!e->done)
    {
      struct pollfd p[3] = {
        { sock, (short) (POLLIN | (bg_agent_client_has_output (e->client) ? POLLOUT : 0)), 0 },
        { sigfd, POLLIN, 0 },
        { -1, POLLIN, 0 },
      };
      BgAgentMsg msg;
      int r;

      if (e->options->interactive && e->started && !e->stdin_eof && e->stdin_credit > 0)
        p[2].fd = STDIN_FILENO;
      if (poll (p, 3, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          return bg_error_errno (error, errno, "poll", "the guest agent's socket");
        }
      if (p[1].revents)
        {
          struct signalfd_siginfo si;

          while (read (sigfd, &si, sizeof si) == sizeof si)
            if (!forward_signal (e, &si, error))
              return FALSE;
        }
      if (p[2].revents && !pump_stdin (e, error))
        return FALSE;
      if ((p[0].revents & POLLOUT) && !bg_agent_client_flush (e->client, FALSE, error))
        return FALSE;
      if (p[0].revents & (POLLIN | POLLHUP | POLLERR))
        {
          if (!bg_agent_client_fill (e->client, FALSE, error))
            {
              g_prefix_error (error, "before the command ended: ");
              return FALSE;
            }
          while (!e->done && (r = bg_agent_client_next (e->client, &msg, error)) != 0)
            {
              gboolean ok;

              if (r < 0)
                return FALSE;
              ok = handle_msg (e, &msg, error);
              bg_agent_msg_clear (&msg);
              if (!ok)
                return FALSE;
            }
        }
      if (!bg_agent_client_flush (e->client, FALSE, error))
        return FALSE;
    }
  return TRUE;
}

gboolean
bg_agent_exec_run (BgAgentClient            *client,
                   const BgAgentExecOptions *options,
                   int                      *exit_status,
                   GError                  **error)
{
  Exec e = { .client = client, .options = options, .stdin_credit = BG_AGENT_WINDOW };
  sigset_t forwarded, old;
  struct termios saved;
  gboolean raw = FALSE, ok;
  g_auto(BgFd) sigfd = -1;

  *exit_status = 0;
  sigemptyset (&forwarded);
  for (const int *s = (const int[]) { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH, 0 }; *s; s++)
    sigaddset (&forwarded, *s);
  if (sigprocmask (SIG_BLOCK, &forwarded, &old) < 0)
    return bg_error_errno (error, errno, "sigprocmask", "banger vm exec");
  if ((sigfd = signalfd (-1, &forwarded, SFD_CLOEXEC | SFD_NONBLOCK)) < 0)
    {
      int errsv = errno;

      /* The caller's mask is back on every return, this one too. */
      sigprocmask (SIG_SETMASK, &old, NULL);
      return bg_error_errno (error, errsv, "signalfd", "banger vm exec");
    }

  /* The guest's terminal interprets every key (Ctrl-C included): ours
   * passes bytes through untouched until the session ends. */
  if (options->tty && isatty (STDIN_FILENO) && tcgetattr (STDIN_FILENO, &saved) == 0)
    {
      struct termios r = saved;

      cfmakeraw (&r);
      raw = tcsetattr (STDIN_FILENO, TCSADRAIN, &r) == 0;
    }

  ok = run_loop (&e, sigfd, error);

  if (raw)
    tcsetattr (STDIN_FILENO, TCSADRAIN, &saved);
  {
    struct signalfd_siginfo si;

    /* Signals that came in the meantime were for the command (and were
     * forwarded, or the session is over): none is delivered to us once
     * the mask is back. */
    while (read (sigfd, &si, sizeof si) == sizeof si)
      ;
  }
  bg_fd_clear (&sigfd);
  sigprocmask (SIG_SETMASK, &old, NULL);
  *exit_status = e.status;
  return ok;
}
