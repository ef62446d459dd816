/* bg-fc-client.c: Firecracker's HTTP API over its unix socket, on GIO.
 *
 * HTTP/1.1 by hand, because this is all `vm up` needs of HTTP and a full
 * client (libsoup: TLS, Kerberos, IDN, brotli, sqlite ...) cost every run
 * of banger its start-up in the dynamic loader. One connection a client,
 * kept open between requests and made again when the VMM closed it.
 * Bodies are JSON built with json-glib; a 4xx/5xx answer becomes an error
 * carrying Firecracker's fault_message. Paths inside bodies are the
 * jail-relative ones the mechanism returned.
 *
 * The VMM is the user's own jailed process, still not trusted: every wait
 * has a deadline, and its reply's head and body are bounded before read.
 */
#include <string.h>

#include "bg-error.h"
#include "bg-fc-client.h"

/* A VMM answers in milliseconds; one that takes this long is stuck. */
#define REQUEST_TIMEOUT_S 10
/* The socket file exists from bind(); a VMM that has not reached
 * listen() yet refuses the connection for a moment: retried this long. */
#define REFUSED_RETRY_US  (1 * G_USEC_PER_SEC)
#define REFUSED_PAUSE_US  2000
/* Firecracker's replies are a few hundred bytes (/vm/config a few KiB). */
#define MAX_HEAD          (16 * 1024)
#define MAX_BODY          (1024 * 1024)
#define MAX_CHUNK_LINE    256

struct _BgFcClient {
  char       *socket;
  GSocket    *conn;      /* NULL until the first request, or after a close */
  GByteArray *in;        /* read from conn, not consumed yet */
};

BgFcClient *
bg_fc_client_new (const char *api_socket)
{
  BgFcClient *client = g_new0 (BgFcClient, 1);

  client->socket = g_strdup (api_socket);
  client->in = g_byte_array_new ();
  return client;
}

static void
drop_connection (BgFcClient *client)
{
  if (client->conn != NULL)
    g_socket_close (client->conn, NULL);
  g_clear_object (&client->conn);
  g_byte_array_set_size (client->in, 0);
}

void
bg_fc_client_free (BgFcClient *client)
{
  if (client == NULL)
    return;
  drop_connection (client);
  g_byte_array_unref (client->in);
  g_free (client->socket);
  g_free (client);
}

/* Waits for @condition on @sock until @deadline (monotonic). */
static gboolean
wait_for (GSocket       *sock,
          GIOCondition   condition,
          gint64         deadline,
          GError       **error)
{
  gint64 left = deadline - g_get_monotonic_time ();

  if (left <= 0)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "Socket I/O timed out");
      return FALSE;
    }
  return g_socket_condition_timed_wait (sock, condition, left, NULL, error);
}

static gboolean
connect_socket (BgFcClient  *client,
                gint64       deadline,
                GError     **error)
{
  g_autoptr(GSocketAddress) address = g_unix_socket_address_new (client->socket);
  gint64 refused_until = g_get_monotonic_time () + REFUSED_RETRY_US;

  for (;;)
    {
      g_autoptr(GError) local = NULL;
      g_autoptr(GSocket) sock = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
                                              G_SOCKET_PROTOCOL_DEFAULT, error);
      gboolean connected;

      if (sock == NULL)
        return FALSE;
      /* Non-blocking, so that no call can outlast the deadline (a full
       * listen backlog would otherwise block connect()). */
      g_socket_set_blocking (sock, FALSE);
      connected = g_socket_connect (sock, address, NULL, &local);

      if (!connected && g_error_matches (local, G_IO_ERROR, G_IO_ERROR_PENDING))
        {
          g_clear_error (&local);
          connected = wait_for (sock, G_IO_OUT, deadline, &local) &&
                      g_socket_check_connect_result (sock, &local);
        }
      if (connected)
        {
          client->conn = g_steal_pointer (&sock);
          return TRUE;
        }
      /* Refused: not listening yet; would block: its backlog is full. */
      if (!(g_error_matches (local, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED) ||
            g_error_matches (local, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) ||
          g_get_monotonic_time () >= MIN (refused_until, deadline))
        {
          g_propagate_error (error, g_steal_pointer (&local));
          return FALSE;
        }
      g_usleep (REFUSED_PAUSE_US);
    }
}

static gboolean
send_all (BgFcClient  *client,
          const char  *data,
          gsize        len,
          gint64       deadline,
          GError     **error)
{
  while (len > 0)
    {
      g_autoptr(GError) local = NULL;
      gssize n;

      if (!wait_for (client->conn, G_IO_OUT, deadline, error))
        return FALSE;
      n = g_socket_send_with_blocking (client->conn, data, len, FALSE, NULL, &local);
      if (n < 0 && g_error_matches (local, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        continue;
      if (n < 0)
        {
          g_propagate_error (error, g_steal_pointer (&local));
          return FALSE;
        }
      data += n;
      len -= n;
    }
  return TRUE;
}

/* Reads what the VMM has sent into client->in; FALSE with *eof at its end. */
static gboolean
receive_more (BgFcClient  *client,
              gint64       deadline,
              gboolean    *eof,
              GError     **error)
{
  guint8 buf[4096];

  *eof = FALSE;
  for (;;)
    {
      g_autoptr(GError) local = NULL;
      gssize n;

      if (!wait_for (client->conn, G_IO_IN, deadline, error))
        return FALSE;
      n = g_socket_receive_with_blocking (client->conn, (char *) buf, sizeof buf, FALSE, NULL, &local);
      if (n < 0 && g_error_matches (local, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        continue;
      if (n < 0)
        {
          g_propagate_error (error, g_steal_pointer (&local));
          return FALSE;
        }
      if (n == 0)
        {
          *eof = TRUE;
          g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                               "the VMM closed the connection");
          return FALSE;
        }
      g_byte_array_append (client->in, buf, n);
      return TRUE;
    }
}

/* One line of the reply's head or chunk framing (CRLF, or a bare LF, cut
 * off), counted against *head_left so that a VMM cannot send an endless
 * head. */
static char *
read_line (BgFcClient  *client,
           gint64       deadline,
           gsize       *head_left,
           GError     **error)
{
  gsize scanned = 0;

  for (;;)
    {
      const guint8 *nl = memchr (client->in->data + scanned, '\n', client->in->len - scanned);
      gboolean eof;

      if (nl != NULL)
        {
          gsize len = nl - client->in->data;
          gsize text = len > 0 && nl[-1] == '\r' ? len - 1 : len;
          char *line;

          if (len + 1 > *head_left)
            break;
          if (memchr (client->in->data, '\0', text) != NULL)
            {
              g_set_error_literal (error, BG_ERROR, BG_ERROR_FAILED, "its reply's head holds a NUL byte");
              return NULL;
            }
          *head_left -= len + 1;
          line = g_strndup ((const char *) client->in->data, text);
          g_byte_array_remove_range (client->in, 0, len + 1);
          return line;
        }
      scanned = client->in->len;
      if (scanned >= *head_left)
        break;
      if (!receive_more (client, deadline, &eof, error))
        return NULL;
    }
  g_set_error_literal (error, BG_ERROR, BG_ERROR_FAILED, "its reply's head (or a chunk's size line) is too long");
  return NULL;
}

/* Moves @len bytes of the reply into @body, refusing a body over MAX_BODY. */
static gboolean
read_body (BgFcClient  *client,
           GByteArray  *body,
           guint64      len,
           gint64       deadline,
           GError     **error)
{
  gboolean eof;

  if (len > MAX_BODY - body->len)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "its reply's body is over %d bytes", MAX_BODY);
      return FALSE;
    }
  while (client->in->len < len)
    if (!receive_more (client, deadline, &eof, error))
      return FALSE;
  g_byte_array_append (body, client->in->data, len);
  g_byte_array_remove_range (client->in, 0, len);
  return TRUE;
}

/* A body with neither length nor chunks: the rest until the VMM closes. */
static gboolean
read_body_to_close (BgFcClient  *client,
                    GByteArray  *body,
                    gint64       deadline,
                    GError     **error)
{
  for (;;)
    {
      g_autoptr(GError) local = NULL;
      gboolean eof;

      if (!read_body (client, body, client->in->len, deadline, error))
        return FALSE;
      if (!receive_more (client, deadline, &eof, &local))
        {
          if (eof)
            return TRUE;
          g_propagate_error (error, g_steal_pointer (&local));
          return FALSE;
        }
    }
}

static gboolean
read_chunked (BgFcClient  *client,
              GByteArray  *body,
              gint64       deadline,
              gsize       *head_left,
              GError     **error)
{
  for (;;)
    {
      /* Each chunk's framing gets its own bound; the chunks' count is
       * bounded by the body's (each holds a byte at least). */
      gsize line_left = MAX_CHUNK_LINE;
      g_autofree char *line = read_line (client, deadline, &line_left, error);
      g_autofree char *crlf = NULL;
      guint64 size = 0;
      char *end = NULL;

      if (line == NULL)
        return FALSE;
      if (g_ascii_isxdigit (line[0]))
        size = g_ascii_strtoull (line, &end, 16);
      if (end == NULL || (*end != '\0' && *end != ';' && *end != ' ' && *end != '\t'))
        {
          g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "bad chunk size \"%.40s\"", line);
          return FALSE;
        }
      /* (read_body refuses a size past MAX_BODY, G_MAXUINT64 included) */
      if (size == 0)
        break;
      if (!read_body (client, body, size, deadline, error) ||
          (crlf = read_line (client, deadline, &line_left, error)) == NULL)
        return FALSE;
      if (*crlf != '\0')
        {
          g_set_error_literal (error, BG_ERROR, BG_ERROR_FAILED, "a chunk runs past its size");
          return FALSE;
        }
    }
  /* The trailer: header lines, ignored, up to an empty one. */
  for (;;)
    {
      g_autofree char *line = read_line (client, deadline, head_left, error);

      if (line == NULL)
        return FALSE;
      if (*line == '\0')
        return TRUE;
    }
}

/* Whether the comma-separated list @value holds @token (any case). */
static gboolean
list_has (const char *value,
          const char *token)
{
  g_auto(GStrv) items = g_strsplit (value, ",", -1);

  for (char **i = items; *i != NULL; i++)
    if (g_ascii_strcasecmp (g_strstrip (*i), token) == 0)
      return TRUE;
  return FALSE;
}

typedef struct {
  guint    status;
  gboolean close;       /* the VMM closes after this reply */
} Reply;

/* The status line and headers of one reply: what says where its body ends. */
static gboolean
read_head (BgFcClient  *client,
           Reply       *reply,
           gint64      *length,
           gboolean    *chunked,
           gint64       deadline,
           gsize       *head_left,
           GError     **error)
{
  g_autofree char *status_line = NULL;
  gboolean http10;
  guint64 status;
  char *end;

  *length = -1;
  *chunked = FALSE;
  if ((status_line = read_line (client, deadline, head_left, error)) == NULL)
    return FALSE;
  if (!(g_str_has_prefix (status_line, "HTTP/1.1 ") || g_str_has_prefix (status_line, "HTTP/1.0 ")) ||
      !g_ascii_isdigit (status_line[9]) ||
      (status = g_ascii_strtoull (status_line + 9, &end, 10)) < 100 || status > 599 ||
      end != status_line + 12 || (*end != ' ' && *end != '\0'))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "bad status line \"%.80s\"", status_line);
      return FALSE;
    }
  http10 = status_line[7] == '0';
  reply->status = status;
  reply->close = http10;
  for (;;)
    {
      g_autofree char *line = read_line (client, deadline, head_left, error);
      char *colon, *value;

      if (line == NULL)
        return FALSE;
      if (*line == '\0')
        return TRUE;
      if ((colon = strchr (line, ':')) == NULL || colon == line || line[0] == ' ' || line[0] == '\t')
        {
          g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "bad header line \"%.80s\"", line);
          return FALSE;
        }
      *colon = '\0';
      value = g_strstrip (colon + 1);
      if (g_ascii_strcasecmp (line, "Content-Length") == 0)
        {
          guint64 n;

          if (!g_ascii_isdigit (*value) || !g_ascii_string_to_unsigned (value, 10, 0, G_MAXINT64, &n, NULL) ||
              (*length >= 0 && (guint64) *length != n))
            {
              g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "bad Content-Length \"%.40s\"", value);
              return FALSE;
            }
          *length = n;
        }
      else if (g_ascii_strcasecmp (line, "Transfer-Encoding") == 0)
        {
          if (g_ascii_strcasecmp (value, "chunked") != 0)
            {
              g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "unsupported Transfer-Encoding \"%.40s\"", value);
              return FALSE;
            }
          *chunked = TRUE;
        }
      else if (g_ascii_strcasecmp (line, "Connection") == 0)
        {
          if (list_has (value, "close"))
            reply->close = TRUE;
          else if (http10 && list_has (value, "keep-alive"))
            reply->close = FALSE;
        }
    }
}

/* Reads one reply into @body. */
static gboolean
read_reply (BgFcClient  *client,
            Reply       *reply,
            GByteArray  *body,
            gint64       deadline,
            GError     **error)
{
  gsize head_left = MAX_HEAD;
  gint64 length;
  gboolean chunked;

  /* 1xx replies (informational) come before the real one; their heads
   * count against the same bound. */
  do
    if (!read_head (client, reply, &length, &chunked, deadline, &head_left, error))
      return FALSE;
  while (reply->status < 200);
  if (reply->status == 204 || reply->status == 304)
    return TRUE;
  if (chunked)
    return read_chunked (client, body, deadline, &head_left, error);
  if (length >= 0)
    return read_body (client, body, length, deadline, error);
  /* Neither: the body is the rest, until the VMM closes. */
  reply->close = TRUE;
  return read_body_to_close (client, body, deadline, error);
}

static char *
fault_message (GByteArray *bytes)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonNode *root;

  if (bytes->len > 0 && json_parser_load_from_data (parser, (const char *) bytes->data, bytes->len, NULL) &&
      (root = json_parser_get_root (parser)) != NULL && JSON_NODE_HOLDS_OBJECT (root) &&
      json_object_has_member (json_node_get_object (root), "fault_message"))
    return g_strdup (json_object_get_string_member (json_node_get_object (root), "fault_message"));
  return bytes->len > 0 ? g_strndup ((const char *) bytes->data, MIN (bytes->len, 512)) : g_strdup ("(no message)");
}

/* A path of the API: printable ASCII from '/', nothing HTTP would split on. */
static gboolean
path_is_valid (const char *path)
{
  if (path[0] != '/')
    return FALSE;
  for (const char *p = path; *p; p++)
    if (*p <= ' ' || *p >= 0x7f)
      return FALSE;
  return TRUE;
}

/* One exchange on the kept connection, or a new one. A kept connection
 * the VMM closed meanwhile fails before any byte of the reply: then the
 * request goes again on a new one (it never reached the VMM). */
static gboolean
exchange (BgFcClient  *client,
          GString     *request,
          Reply       *reply,
          GByteArray  *body,
          GError     **error)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) REQUEST_TIMEOUT_S * G_USEC_PER_SEC;

  for (int attempt = 0; ; attempt++)
    {
      g_autoptr(GError) local = NULL;
      gboolean reused = client->conn != NULL;

      /* An idle kept connection with something to read has been closed
       * (or sent garbage): either way it is not for this request. */
      if (reused && (g_socket_condition_check (client->conn, G_IO_IN | G_IO_HUP | G_IO_ERR) != 0 ||
                     client->in->len > 0))
        {
          drop_connection (client);
          reused = FALSE;
        }
      if (!reused && !connect_socket (client, deadline, error))
        return FALSE;
      if (send_all (client, request->str, request->len, deadline, &local))
        {
          gboolean any = FALSE;

          /* Any byte of the reply means the VMM got the request. */
          if (client->in->len == 0)
            {
              gboolean eof;

              if (receive_more (client, deadline, &eof, &local))
                any = TRUE;
            }
          else
            any = TRUE;
          if (any)
            {
              gboolean ok = read_reply (client, reply, body, deadline, error);

              if (!ok || reply->close)
                drop_connection (client);
              return ok;
            }
        }
      drop_connection (client);
      if (!reused || attempt > 0 ||
          !(g_error_matches (local, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED) ||
            g_error_matches (local, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE)))
        {
          g_propagate_error (error, g_steal_pointer (&local));
          return FALSE;
        }
    }
}

/* Returns the parsed answer, or a JSON null for an empty (204) one. */
JsonNode *
bg_fc_client_request (BgFcClient  *client,
                      const char  *method,
                      const char  *path,
                      JsonNode    *body,
                      GError     **error)
{
  g_autoptr(GString) request = g_string_new (NULL);
  g_autoptr(GByteArray) answer = g_byte_array_new ();
  g_autoptr(GError) local = NULL;
  Reply reply = { 0, };

  if (!path_is_valid (path))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "bad API path %s", path);
      return NULL;
    }
  g_string_append_printf (request, "%s %s HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n",
                          method, path);
  if (body != NULL)
    {
      g_autofree char *text = json_to_string (body, FALSE);

      g_string_append_printf (request, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                              strlen (text), text);
    }
  else
    g_string_append (request, g_strcmp0 (method, "GET") == 0 ? "\r\n" : "Content-Length: 0\r\n\r\n");

  if (!exchange (client, request, &reply, answer, &local))
    {
      if (local->domain == BG_ERROR)
        g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "the VMM at %s answered %s %s badly: %s",
                     client->socket, method, path, local->message);
      else
        g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot reach the VMM at %s: %s",
                     client->socket, local->message);
      return NULL;
    }
  if (reply.status >= 400)
    {
      g_autofree char *fault = fault_message (answer);
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "Firecracker refused %s %s (%u): %s",
                   method, path, reply.status, fault);
      return NULL;
    }
  if (answer->len == 0)
    return json_node_new (JSON_NODE_NULL);
  {
    g_autoptr(JsonParser) parser = json_parser_new ();

    if (!json_parser_load_from_data (parser, (const char *) answer->data, answer->len, &local))
      {
        g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "the VMM answered %s %s with invalid JSON: %s",
                     method, path, local->message);
        return NULL;
      }
    return json_node_copy (json_parser_get_root (parser));
  }
}

/* Sends @body, an a{sv} (a floating one is taken), as the JSON object
 * it maps to: every request body of the API is one. */
static gboolean
send_body (BgFcClient  *client,
           const char  *method,
           const char  *path,
           GVariant    *body,
           GError     **error)
{
  g_autoptr(GVariant) owned = g_variant_ref_sink (body);
  g_autoptr(JsonNode) node = json_gvariant_serialize (owned);
  g_autoptr(JsonNode) reply = bg_fc_client_request (client, method, path, node, error);

  return reply != NULL;
}

static gboolean
add_drive (BgFcClient       *client,
           const BgFcDrive  *drive,
           GError          **error)
{
  g_autofree char *url = g_strdup_printf ("/drives/%s", drive->id);

  return send_body (client, "PUT", url,
                    g_variant_new_parsed ("{'drive_id': <%s>, 'path_on_host': <%s>, "
                                          "'is_root_device': <%b>, 'is_read_only': <%b>}",
                                          drive->id, drive->path, drive->is_root, drive->read_only),
                    error);
}

gboolean
bg_fc_configure (BgFcClient         *client,
                 const BgFcMachine  *m,
                 GError            **error)
{
  g_auto(GVariantDict) boot = G_VARIANT_DICT_INIT (NULL);
  g_auto(GVariantDict) net = G_VARIANT_DICT_INIT (NULL);

  g_variant_dict_insert (&boot, "kernel_image_path", "s", m->kernel);
  if (m->boot_args)
    g_variant_dict_insert (&boot, "boot_args", "s", m->boot_args);
  if (m->initrd)
    g_variant_dict_insert (&boot, "initrd_path", "s", m->initrd);
  g_variant_dict_insert (&net, "iface_id", "s", "eth0");
  g_variant_dict_insert (&net, "host_dev_name", "s", m->tap);
  if (m->guest_mac)
    g_variant_dict_insert (&net, "guest_mac", "s", m->guest_mac);

  if (!send_body (client, "PUT", "/machine-config",
                  g_variant_new_parsed ("{'vcpu_count': <%u>, 'mem_size_mib': <%u>}", m->vcpus, m->mem_mib),
                  error) ||
      !send_body (client, "PUT", "/boot-source", g_variant_dict_end (&boot), error))
    return FALSE;
  for (const BgFcDrive *d = m->drives; d != NULL && d->id != NULL; d++)
    if (!add_drive (client, d, error))
      return FALSE;
  return send_body (client, "PUT", "/network-interfaces/eth0", g_variant_dict_end (&net), error) &&
         send_body (client, "PUT", "/vsock",
                    g_variant_new_parsed ("{'guest_cid': <%u>, 'uds_path': <%s>}", m->vsock_cid, m->vsock_path),
                    error);
}

gboolean
bg_fc_action (BgFcClient  *client,
              const char  *action_type,
              GError     **error)
{
  return send_body (client, "PUT", "/actions",
                    g_variant_new_parsed ("{'action_type': <%s>}", action_type), error);
}

/* "Paused" or "Resumed". */
gboolean
bg_fc_set_state (BgFcClient  *client,
                 const char  *state,
                 GError     **error)
{
  return send_body (client, "PATCH", "/vm", g_variant_new_parsed ("{'state': <%s>}", state), error);
}

/* "Not started", "Running" or "Paused", from GET /. */
char *
bg_fc_get_state (BgFcClient  *client,
                 GError     **error)
{
  g_autoptr(JsonNode) info = bg_fc_client_request (client, "GET", "/", NULL, error);
  JsonObject *o;

  if (info == NULL)
    return NULL;
  if (!JSON_NODE_HOLDS_OBJECT (info) ||
      !json_object_has_member ((o = json_node_get_object (info)), "state"))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "the VMM's instance info lacks its state");
      return NULL;
    }
  return g_strdup (json_object_get_string_member (o, "state"));
}
