/* bg-ready.c: waiting until a guest is ready: its agent says so over the
 * vsock, or (images without an agent) it answers SSH with its pinned key. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bg-agent-client.h"
#include "bg-error.h"
#include "bg-fd.h"
#include "bg-ready.h"

/* How often the vsock CONNECT is tried until the agent listens: a local
 * unix-socket round trip that Firecracker refuses at once while nothing
 * listens in the guest, so cheap enough to try often; from the agent's
 * first answer on, one READY request waits in the guest. */
#define AGENT_RETRY_US  (5 * 1000)
#define SSH_RETRY_US    (200 * 1000)

static gboolean
tcp_answers (const char *address,
             guint16     port)
{
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons (port) };
  struct pollfd p;
  g_auto(BgFd) fd = -1;
  int err = 0;
  socklen_t len = sizeof err;

  if (inet_pton (AF_INET, address, &sa.sin_addr) != 1)
    return FALSE;
  fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return FALSE;
  if (connect (fd, (struct sockaddr *) &sa, sizeof sa) < 0 && errno != EINPROGRESS)
    return FALSE;
  p = (struct pollfd) { fd, POLLOUT, 0 };
  return poll (&p, 1, 1000) == 1 && getsockopt (fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
}

static char *
log_tail (const char *path,
          guint       lines)
{
  g_autofree char *text = NULL;
  g_auto(GStrv) all = NULL;
  guint n, from;

  if (path == NULL || !g_file_get_contents (path, &text, NULL, NULL) || *text == '\0')
    return g_strdup ("  (the console printed nothing)");
  all = g_strsplit (g_strchomp (text), "\n", -1);
  n = g_strv_length (all);
  from = n > lines ? n - lines : 0;
  {
    g_autofree char *joined = g_strjoinv ("\n  ", all + from);
    return g_strdup_printf ("  %s", joined);
  }
}

/* Asks the agent, once it listens, to answer when sshd is up (where
 * the image has one). TRUE when it answered (with *@up), FALSE with
 * @error when it answered badly or not in time; *@listening says whether
 * an agent listens at all. */
static gboolean
agent_ready (const char *vsock,
             gint64      deadline,
             gboolean   *listening,
             guint32    *up,
             GError    **error)
{
  g_autoptr(BgAgentClient) client = NULL;
  g_autoptr(GError) local = NULL;
  gint64 left_ms = (deadline - g_get_monotonic_time ()) / 1000;

  *listening = FALSE;
  client = bg_agent_client_connect (vsock, BG_AGENT_VSOCK_PORT, 2000, &local);
  if (client == NULL)
    {
      /* Not (yet) listening, or the VM's socket not there yet; or it
       * accepted but did not say HELLO in time (a guest still busy
       * booting, on a loaded host): not an agent that answers badly, so
       * it is asked again. */
      if (g_error_matches (local, BG_ERROR, BG_ERROR_NOT_FOUND) || g_error_matches (local, BG_ERROR, BG_ERROR_BUSY) ||
          g_error_matches (local, BG_ERROR, BG_ERROR_TIMEOUT))
        return FALSE;
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  *listening = TRUE;
  return bg_agent_client_ready (client, BG_AGENT_UP_SSHD, (guint) CLAMP (left_ms, 0, 600000), up, error);
}

/* Ready means the guest agent says so (and that sshd listens, where the
 * image has one); for a guest without an agent, that sshd answers with
 * the pinned host key: TCP first (cheap), then `ssh -o BatchMode=yes …
 * true` with StrictHostKeyChecking. */
gboolean
bg_guest_wait_ready (const char         *address,
                     guint16             port,
                     const char * const *ssh_argv,
                     const char         *vsock,
                     guint               timeout_ms,
                     const char         *console_log,
                     guint32            *agent_up,
                     GError            **error)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  gint64 next_ssh = 0;
  gboolean try_agent = vsock != NULL;
  g_autofree char *last = NULL;

  *agent_up = 0;
  while (g_get_monotonic_time () < deadline)
    {
      if (try_agent)
        {
          g_autoptr(GError) local = NULL;
          gboolean listening;
          guint32 up;

          if (agent_ready (vsock, deadline, &listening, &up, &local))
            {
              if ((up & BG_AGENT_UP_SSHD) || !(up & BG_AGENT_HAS_SSHD))
                {
                  *agent_up = up;
                  return TRUE;
                }
              /* The agent waited in the guest until the deadline. */
              g_free (last);
              last = g_strdup ("the guest agent answers, but sshd did not start listening");
              break;
            }
          if (local != NULL)
            {
              /* An agent that answers badly is no reason not to try SSH. */
              g_free (last);
              last = g_strdup (local->message);
              try_agent = FALSE;
            }
        }
      if (g_get_monotonic_time () >= next_ssh)
        {
          next_ssh = g_get_monotonic_time () + SSH_RETRY_US;
          if (tcp_answers (address, port))
            {
              g_autofree char *err = NULL;
              int status;

              if (g_spawn_sync (NULL, (char **) ssh_argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL,
                                NULL, NULL, NULL, &err, &status, NULL) &&
                  g_spawn_check_wait_status (status, NULL))
                return TRUE;
              g_free (last);
              last = g_strdup (err ? g_strstrip (err) : NULL);
            }
        }
      g_usleep (try_agent ? AGENT_RETRY_US : SSH_RETRY_US);
    }

  {
    g_autofree char *tail = log_tail (console_log, 10);
    g_set_error (error, BG_ERROR, BG_ERROR_TIMEOUT,
                 "the VM at %s was not ready within %u s: neither its guest agent nor SSH with its pinned "
                 "host key answered%s%s.\n"
                 "Last lines of its console (%s):\n%s\n"
                 "Try 'banger vm logs NAME' for the whole console, or 'banger vm up --no-wait' and "
                 "'banger vm ssh NAME' later.",
                 address, timeout_ms / 1000, last ? "; last: " : "", last ? last : "",
                 console_log ? console_log : "none", tail);
  }
  return FALSE;
}
