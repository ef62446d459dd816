/* bg-ready.c: waiting until a guest answers SSH with its pinned key. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bg-error.h"
#include "bg-ready.h"

static gboolean
tcp_answers (const char *address,
             guint16     port)
{
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons (port) };
  struct pollfd p;
  int fd, err = 0;
  socklen_t len = sizeof err;
  gboolean ok;

  if (inet_pton (AF_INET, address, &sa.sin_addr) != 1)
    return FALSE;
  fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return FALSE;
  if (connect (fd, (struct sockaddr *) &sa, sizeof sa) < 0 && errno != EINPROGRESS)
    {
      close (fd);
      return FALSE;
    }
  p = (struct pollfd) { fd, POLLOUT, 0 };
  ok = poll (&p, 1, 1000) == 1 && getsockopt (fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
  close (fd);
  return ok;
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

/* Ready means sshd answers with the pinned host key: TCP first (cheap),
 * then `ssh -o BatchMode=yes … true` with StrictHostKeyChecking. */
gboolean
bg_guest_wait_ready (const char         *address,
                     guint16             port,
                     const char * const *ssh_argv,
                     guint               timeout_ms,
                     const char         *console_log,
                     GError            **error)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  g_autofree char *last = NULL;

  while (g_get_monotonic_time () < deadline)
    {
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
      g_usleep (200 * 1000);
    }

  {
    g_autofree char *tail = log_tail (console_log, 10);
    g_set_error (error, BG_ERROR, BG_ERROR_TIMEOUT,
                 "the VM at %s did not answer SSH with its pinned host key within %u s%s%s.\n"
                 "Last lines of its console (%s):\n%s\n"
                 "Try 'banger vm logs NAME' for the whole console, or 'banger vm up --no-wait' and "
                 "'banger vm ssh NAME' later.",
                 address, timeout_ms / 1000, last ? "; ssh said: " : "", last ? last : "",
                 console_log ? console_log : "none", tail);
  }
  return FALSE;
}
