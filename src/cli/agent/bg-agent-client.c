/* bg-agent-client.c: the host's end of the guest agent's protocol.
 *
 * The socket is the VM's Firecracker hybrid vsock, handed to its owner
 * by the mechanism (0600): no polkit, no mechanism call. Everything the
 * guest sends is untrusted: the handshake line is read a byte at a time
 * up to 32 bytes, and a frame's length is checked against the protocol's
 * limit (bg_agent_frame_parse) before its payload is waited for, so the
 * input buffer never grows past one maximal frame. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "bg-agent-client.h"
#include "bg-error.h"
#include "bg-fd.h"

#define HANDSHAKE_MAX 32

struct _BgAgentClient {
  int        fd;
  guint8    *in;
  gsize      in_len;
  gsize      in_off;     /* start of the first unparsed byte */
  BgAgentBuf out;
  guint32    version;    /* what the agent agreed to speak */
};

guint32
bg_agent_client_get_version (BgAgentClient *client)
{
  return client->version;
}

void
bg_agent_client_free (BgAgentClient *client)
{
  if (client == NULL)
    return;
  bg_fd_clear (&client->fd);
  g_free (client->in);
  bg_agent_buf_free (&client->out);
  g_free (client);
}

int
bg_agent_client_get_fd (BgAgentClient *client)
{
  return client->fd;
}

BgAgentBuf *
bg_agent_client_out (BgAgentClient *client)
{
  return &client->out;
}

gboolean
bg_agent_client_has_output (BgAgentClient *client)
{
  return client->out.len > 0;
}

gboolean
bg_agent_client_queue (BgAgentClient *client,
                       GError       **error)
{
  int r = bg_agent_buf_end (&client->out);

  if (r < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "cannot send that to the guest agent: %s",
                   bg_agent_strerror (r));
      return FALSE;
    }
  return TRUE;
}

static gboolean
wait_for (int fd, short events, int timeout_ms, GError **error)
{
  struct pollfd p = { fd, events, 0 };
  int r;

  while ((r = poll (&p, 1, timeout_ms)) < 0 && errno == EINTR)
    ;
  if (r < 0)
    return bg_error_errno (error, errno, "poll", "the guest agent's socket");
  if (r == 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_TIMEOUT, "the guest agent did not answer within %d s",
                   timeout_ms / 1000);
      return FALSE;
    }
  return TRUE;
}

gboolean
bg_agent_client_flush (BgAgentClient *client,
                       gboolean       wait,
                       GError       **error)
{
  while (client->out.len > 0)
    {
      ssize_t n = send (client->fd, client->out.data, client->out.len, MSG_NOSIGNAL);

      if (n > 0)
        {
          bg_agent_buf_consume (&client->out, (gsize) n);
          continue;
        }
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno == EAGAIN)
        {
          if (!wait)
            return TRUE;
          if (!wait_for (client->fd, POLLOUT, -1, error))
            return FALSE;
          continue;
        }
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "the guest agent's connection broke: %s",
                   g_strerror (errno));
      return FALSE;
    }
  return TRUE;
}

gboolean
bg_agent_client_fill (BgAgentClient *client,
                      gboolean       wait,
                      GError       **error)
{
  const gsize cap = BG_AGENT_HEADER_SIZE + BG_AGENT_MAX_PAYLOAD;
  ssize_t n;

  if (client->in_off > 0)
    {
      memmove (client->in, client->in + client->in_off, client->in_len - client->in_off);
      client->in_len -= client->in_off;
      client->in_off = 0;
    }
  for (;;)
    {
      /* A full buffer holds a whole maximal frame: next() takes it. */
      if (client->in_len == cap)
        return TRUE;
      n = recv (client->fd, client->in + client->in_len, cap - client->in_len, 0);
      if (n > 0)
        {
          client->in_len += (gsize) n;
          return TRUE;
        }
      if (n == 0)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "the guest agent closed the connection");
          return FALSE;
        }
      if (errno == EINTR)
        continue;
      if (errno != EAGAIN)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "the guest agent's connection broke: %s",
                       g_strerror (errno));
          return FALSE;
        }
      if (!wait)
        return TRUE;
      if (!wait_for (client->fd, POLLIN, -1, error))
        return FALSE;
    }
}

int
bg_agent_client_next (BgAgentClient *client,
                      BgAgentMsg    *msg,
                      GError       **error)
{
  BgAgentFrame frame;
  gsize used;
  int r = bg_agent_frame_parse (client->in + client->in_off, client->in_len - client->in_off, &frame, &used);

  if (r > 0)
    r = bg_agent_msg_decode (&frame, msg);
  if (r < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_CORRUPT, "the guest agent sent a malformed frame: %s",
                   bg_agent_strerror (r));
      return -1;
    }
  if (r == 0)
    return 0;
  client->in_off += used;
  return 1;
}

/* Waits (bounded) for the next message of the agent. */
static gboolean
next_blocking (BgAgentClient *client, BgAgentMsg *msg, guint timeout_ms, GError **error)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;

  for (;;)
    {
      int r = bg_agent_client_next (client, msg, error);
      gint64 left;

      if (r != 0)
        return r > 0;
      left = (deadline - g_get_monotonic_time ()) / 1000;
      if (left <= 0)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_TIMEOUT, "the guest agent did not answer within %u ms",
                       timeout_ms);
          return FALSE;
        }
      if (!bg_agent_client_flush (client, TRUE, error) || !wait_for (client->fd, POLLIN, (int) left, error) ||
          !bg_agent_client_fill (client, FALSE, error))
        return FALSE;
    }
}

/* Firecracker's host-initiated handshake: "CONNECT <port>\n", answered
 * by "OK <host port>\n", or by closing when nothing listens. */
static gboolean
handshake (int fd, guint port, guint timeout_ms, GError **error)
{
  g_autofree char *connect_line = g_strdup_printf ("CONNECT %u\n", port);
  char line[HANDSHAKE_MAX + 1];
  gsize n = 0;

  if (send (fd, connect_line, strlen (connect_line), MSG_NOSIGNAL) != (ssize_t) strlen (connect_line))
    return bg_error_errno (error, errno, "write", "the VM's vsock socket");
  while (n < HANDSHAKE_MAX)
    {
      ssize_t r;

      if (!wait_for (fd, POLLIN, (int) timeout_ms, error))
        return FALSE;
      r = recv (fd, line + n, 1, 0);
      if (r < 0 && (errno == EINTR || errno == EAGAIN))
        continue;
      if (r <= 0)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_NOT_FOUND, "no guest agent listens on vsock port %u", port);
          return FALSE;
        }
      if (line[n++] == '\n')
        break;
    }
  line[n] = '\0';
  if (n < 5 || line[n - 1] != '\n' || strncmp (line, "OK ", 3) != 0 ||
      strspn (line + 3, "0123456789") != n - 4)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_CORRUPT, "the VM's vsock socket answered CONNECT with something "
                   "other than \"OK <port>\"");
      return FALSE;
    }
  return TRUE;
}

/* One connection speaking @version: NULL with *@refused set when the
 * agent answered HELLO with an ERROR (it speaks an older version). */
static BgAgentClient *
connect_version (const char *vsock_path,
                 guint       port,
                 guint       timeout_ms,
                 guint32     version,
                 gboolean   *refused,
                 GError    **error)
{
  g_autoptr(BgAgentClient) client = g_new0 (BgAgentClient, 1);
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  BgAgentMsg msg;

  client->fd = -1;
  bg_agent_buf_init (&client->out);
  if (strlen (vsock_path) >= sizeof sa.sun_path)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "vsock socket path %s is too long", vsock_path);
      return NULL;
    }
  strcpy (sa.sun_path, vsock_path);
  client->fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (client->fd < 0)
    {
      bg_error_errno (error, errno, "socket", vsock_path);
      return NULL;
    }
  if (connect (client->fd, (struct sockaddr *) &sa, sizeof sa) < 0)
    {
      int errsv = errno;

      if (errsv == ENOENT || errsv == ECONNREFUSED)
        g_set_error (error, BG_ERROR, BG_ERROR_BUSY, "the VM's vsock socket %s is not there: the VM is not running",
                     vsock_path);
      else
        bg_error_errno (error, errsv, "connect", vsock_path);
      return NULL;
    }
  if (!handshake (client->fd, port, timeout_ms, error))
    return NULL;

  client->in = g_malloc (BG_AGENT_HEADER_SIZE + BG_AGENT_MAX_PAYLOAD);
  bg_agent_buf_begin (&client->out, BG_AGENT_HELLO, 0);
  bg_agent_put_u32 (&client->out, BG_AGENT_F_VERSION, version);
  if (!bg_agent_client_queue (client, error) || !next_blocking (client, &msg, timeout_ms, error))
    return NULL;
  if (msg.type != BG_AGENT_HELLO || msg.version < 1 || msg.version > version)
    {
      *refused = msg.type == BG_AGENT_ERROR;
      g_set_error (error, BG_ERROR, BG_ERROR_NOT_SUPPORTED, "the guest agent refused protocol version %u: %s",
                   version, msg.message ? msg.message : "it answered something else");
      bg_agent_msg_clear (&msg);
      return NULL;
    }
  client->version = msg.version;
  bg_agent_msg_clear (&msg);
  return g_steal_pointer (&client);
}

/* HELLO with the newest version; an agent of version 1 refuses any other
 * and closes, so then once more with 1 (exec and READY are the same in
 * both; file transfer is not there). */
BgAgentClient *
bg_agent_client_connect (const char *vsock_path,
                         guint       port,
                         guint       timeout_ms,
                         GError    **error)
{
  g_autoptr(GError) local = NULL;
  gboolean refused = FALSE;
  BgAgentClient *client = connect_version (vsock_path, port, timeout_ms, BG_AGENT_VERSION, &refused, &local);

  if (client == NULL && refused)
    return connect_version (vsock_path, port, timeout_ms, 1, &refused, error);
  if (client == NULL)
    g_propagate_error (error, g_steal_pointer (&local));
  return client;
}

gboolean
bg_agent_client_ready (BgAgentClient *client,
                       guint32        want,
                       guint          timeout_ms,
                       guint32       *up,
                       GError       **error)
{
  BgAgentMsg msg;

  bg_agent_buf_begin (&client->out, BG_AGENT_READY, 0);
  bg_agent_put_u32 (&client->out, BG_AGENT_F_MASK, want);
  bg_agent_put_u32 (&client->out, BG_AGENT_F_TIMEOUT, timeout_ms);
  /* The agent answers at its deadline at the latest; a second more
   * covers the trip. */
  if (!bg_agent_client_queue (client, error) || !next_blocking (client, &msg, timeout_ms + 1000, error))
    return FALSE;
  if (msg.type != BG_AGENT_READY)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "the guest agent answered READY with %s",
                   msg.message ? msg.message : "another frame");
      bg_agent_msg_clear (&msg);
      return FALSE;
    }
  *up = msg.mask;
  bg_agent_msg_clear (&msg);
  return TRUE;
}
