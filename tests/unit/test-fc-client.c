/* The Firecracker API client's HTTP/1.1, against a server in a thread of
 * this test on a unix socket: each case scripts the server's replies byte
 * for byte (Content-Length, chunked, 204, a 400 with fault_message, a
 * reply in many small writes, a close between requests, replies too big
 * to read, a socket that refuses before it listens, a VMM that never
 * answers). */
#include <string.h>
#include <unistd.h>
#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>

#include "../bg-test.h"
#include "bg-error.h"
#include "bg-fc-client.h"

typedef struct {
  char               *dir;
  char               *path;
  GSocket            *listener;
  const char * const *replies;      /* one a request, in order */
  gboolean            close_each;   /* close the connection after each reply */
  gsize               write_size;   /* bytes a write; 0: each reply in one */
  gboolean            never_answer; /* read the request, then wait for the client to go */
  GPtrArray          *requests;     /* "METHOD PATH BODY" as the server read them */
  guint               accepts;
  GThread            *thread;
} Server;

static void
server_bind (Server *s)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketAddress) address = NULL;

  s->dir = g_dir_make_tmp ("bg-fc-client-XXXXXX", &error);
  g_assert_no_error (error);
  s->path = g_build_filename (s->dir, "api.sock", NULL);
  address = g_unix_socket_address_new (s->path);
  s->listener = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT, &error);
  g_assert_no_error (error);
  /* No case may hang the suite: every blocking call gives up. */
  g_socket_set_timeout (s->listener, bg_test_timeout (30));
  g_socket_bind (s->listener, address, FALSE, &error);
  g_assert_no_error (error);
  s->requests = g_ptr_array_new_with_free_func (g_free);
}

static void
server_listen (Server *s)
{
  g_autoptr(GError) error = NULL;

  g_socket_listen (s->listener, &error);
  g_assert_no_error (error);
}

/* One request off @conn: its head up to the empty line, then as many body
 * bytes as its Content-Length says. NULL when the client closed first. */
static char *
read_request (GSocket *conn)
{
  g_autoptr(GString) in = g_string_new (NULL);
  const char *end, *cl;
  gsize length = 0;
  char buf[1024];
  gssize n;

  while ((end = strstr (in->str, "\r\n\r\n")) == NULL)
    {
      if ((n = g_socket_receive (conn, buf, sizeof buf, NULL, NULL)) <= 0)
        return NULL;
      g_string_append_len (in, buf, n);
    }
  if ((cl = g_strstr_len (in->str, end - in->str, "Content-Length: ")) != NULL)
    length = g_ascii_strtoull (cl + strlen ("Content-Length: "), NULL, 10);
  while (in->len < (gsize) (end - in->str) + 4 + length)
    {
      gsize head = end - in->str;

      if ((n = g_socket_receive (conn, buf, sizeof buf, NULL, NULL)) <= 0)
        return NULL;
      g_string_append_len (in, buf, n);
      end = in->str + head;
    }
  {
    g_auto(GStrv) words = g_strsplit (in->str, " ", 3);
    return g_strdup_printf ("%s %s %s", words[0], words[1], end + 4);
  }
}

static void
send_reply (GSocket    *conn,
            const char *reply,
            gsize       write_size)
{
  gsize len = strlen (reply);

  for (gsize off = 0; off < len; )
    {
      gssize n = g_socket_send (conn, reply + off, write_size ? MIN (write_size, len - off) : len - off, NULL, NULL);

      /* A client that refused the reply closes: the rest goes nowhere. */
      if (n < 0)
        return;
      off += n;
      if (write_size)
        g_usleep (100);   /* so that the pieces arrive apart */
    }
}

static gpointer
server_run (gpointer data)
{
  Server *s = data;
  g_autoptr(GSocket) conn = NULL;

  for (guint i = 0; s->replies[i] != NULL; )
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *request = NULL;

      if (conn == NULL)
        {
          conn = g_socket_accept (s->listener, NULL, &error);
          g_assert_no_error (error);
          g_socket_set_timeout (conn, bg_test_timeout (30));
          s->accepts++;
        }
      if ((request = read_request (conn)) == NULL)
        {
          /* The client went for a new connection. */
          g_clear_object (&conn);
          continue;
        }
      g_ptr_array_add (s->requests, g_steal_pointer (&request));
      if (s->never_answer)
        {
          char byte;
          g_socket_receive (conn, &byte, 1, NULL, NULL);
          break;
        }
      send_reply (conn, s->replies[i++], s->write_size);
      if (s->close_each)
        {
          g_socket_close (conn, NULL);
          g_clear_object (&conn);
        }
    }
  return NULL;
}

static void
server_start (Server *s)
{
  s->thread = g_thread_new ("server", server_run, s);
}

/* Waits for the server to have sent its last reply. */
static void
server_join (Server *s)
{
  g_thread_join (g_steal_pointer (&s->thread));
}

static void
server_clear (Server *s)
{
  if (s->thread != NULL)
    server_join (s);
  g_clear_object (&s->listener);
  if (s->path != NULL)
    g_unlink (s->path);
  if (s->dir != NULL)
    g_rmdir (s->dir);
  g_clear_pointer (&s->path, g_free);
  g_clear_pointer (&s->dir, g_free);
  g_clear_pointer (&s->requests, g_ptr_array_unref);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Server, server_clear)

static void
server_run_with (Server *s)
{
  server_bind (s);
  server_listen (s);
  server_start (s);
}

/* The server running its script, and a client of it. */
static BgFcClient *
client_of (Server *s)
{
  server_run_with (s);
  return bg_fc_client_new (s->path);
}

static JsonNode *
json (const char *text)
{
  JsonNode *node = json_from_string (text, NULL);

  g_assert_nonnull (node);
  return node;
}

/* A request the server answers with @reply; its error, or NULL. */
static GError *
one_request_error (Server     *s,
                   const char *reply)
{
  const char * const replies[] = { reply, NULL };
  g_autoptr(BgFcClient) fc = NULL;
  g_autoptr(JsonNode) answer = NULL;
  GError *error = NULL;

  s->replies = replies;
  fc = client_of (s);
  answer = bg_fc_client_request (fc, "GET", "/", NULL, &error);
  g_assert_true ((answer == NULL) == (error != NULL));
  g_clear_pointer (&fc, bg_fc_client_free);
  server_join (s);
  return error;
}

static void
test_content_length_replies_share_one_connection (void)
{
  static const char * const replies[] = {
    "HTTP/1.1 204 No Content\r\nServer: Firecracker API\r\n\r\n",
    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nCONTENT-LENGTH: 24\r\n\r\n{\"state\": \"Not started\"}",
    "HTTP/1.1 200 \r\nContent-Length:2\r\n\r\n{}",
    NULL,
  };
  g_auto(Server) s = { .replies = replies };
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) body = json ("{\"vcpu_count\": 2, \"mem_size_mib\": 256}");
  g_autoptr(JsonNode) first = NULL, config = NULL;
  g_autofree char *state = NULL;
  g_autoptr(BgFcClient) fc = NULL;

  fc = client_of (&s);
  first = bg_fc_client_request (fc, "PUT", "/machine-config", body, &error);
  g_assert_no_error (error);
  g_assert_true (JSON_NODE_HOLDS_NULL (first));
  state = bg_fc_get_state (fc, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (state, ==, "Not started");
  config = bg_fc_client_request (fc, "GET", "/vm/config", NULL, &error);
  g_assert_no_error (error);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (config));
  g_clear_pointer (&fc, bg_fc_client_free);
  server_join (&s);
  /* One connection for the three, and the requests as they were sent. */
  g_assert_cmpuint (s.accepts, ==, 1);
  g_assert_cmpuint (s.requests->len, ==, 3);
  g_assert_cmpstr (s.requests->pdata[0], ==, "PUT /machine-config {\"vcpu_count\":2,\"mem_size_mib\":256}");
  g_assert_cmpstr (s.requests->pdata[1], ==, "GET / ");
  g_assert_cmpstr (s.requests->pdata[2], ==, "GET /vm/config ");
}

static void
test_chunked_reply_is_joined (void)
{
  static const char * const replies[] = {
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n"
    "3\r\n{\"s\r\n"
    "b;ext=1\r\ntate\": \"Pau\r\n"
    "4\r\nsed\"\r\n"
    "1\r\n}\r\n"
    "0\r\nX-Trailer: yes\r\n\r\n",
    "HTTP/1.1 204 No Content\r\n\r\n",
    NULL,
  };
  g_auto(Server) s = { .replies = replies };
  g_autoptr(GError) error = NULL;
  g_autoptr(BgFcClient) fc = NULL;
  g_autofree char *state = NULL;

  fc = client_of (&s);
  state = bg_fc_get_state (fc, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (state, ==, "Paused");
  /* The chunks' end left the connection ready for the next reply. */
  g_assert_true (bg_fc_set_state (fc, "Resumed", &error));
  g_assert_no_error (error);
  g_clear_pointer (&fc, bg_fc_client_free);
  server_join (&s);
  g_assert_cmpuint (s.accepts, ==, 1);
  g_assert_cmpstr (s.requests->pdata[1], ==, "PATCH /vm {\"state\":\"Resumed\"}");
}

static void
test_refusal_carries_the_fault_message (void)
{
  g_auto(Server) s = { 0, };
  g_autoptr(GError) error =
    one_request_error (&s, "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: 57\r\n\r\n"
                           "{\"fault_message\": \"The kernel file cannot be opened: x.\"}");

  g_assert_error (error, BG_ERROR, BG_ERROR_FAILED);
  g_assert_cmpstr (error->message, ==, "Firecracker refused GET / (400): The kernel file cannot be opened: x.");
}

static void
test_reply_in_many_small_writes (void)
{
  static const char * const replies[] = {
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 20\r\n\r\n{\"state\": \"Running\"}",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n14\r\n{\"state\": \"Running\"}\r\n0\r\n\r\n",
    NULL,
  };
  g_auto(Server) s = { .replies = replies, .write_size = 1 };
  g_autoptr(GError) error = NULL;
  g_autoptr(BgFcClient) fc = NULL;

  fc = client_of (&s);
  for (int i = 0; i < 2; i++)
    {
      g_autofree char *state = bg_fc_get_state (fc, &error);

      g_assert_no_error (error);
      g_assert_cmpstr (state, ==, "Running");
    }
}

/* A VMM that closes after each reply (or whose connection went away
 * between two requests) gets each request on a new connection. */
static void
test_closed_connection_is_made_again (void)
{
  static const char * const replies[] = {
    "HTTP/1.1 204 No Content\r\n\r\n",
    "HTTP/1.1 204 No Content\r\n\r\n",
    "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 22\r\n\r\n{\"state\": \"Running\"}  ",
    "HTTP/1.0 200 OK\r\n\r\n{\"state\": \"Paused\"}",
    NULL,
  };
  g_auto(Server) s = { .replies = replies, .close_each = TRUE };
  g_autoptr(GError) error = NULL;
  g_autoptr(BgFcClient) fc = NULL;
  g_autofree char *running = NULL, *paused = NULL;

  fc = client_of (&s);
  g_assert_true (bg_fc_action (fc, "InstanceStart", &error));
  g_assert_no_error (error);
  g_assert_true (bg_fc_action (fc, "FlushMetrics", &error));
  g_assert_no_error (error);
  running = bg_fc_get_state (fc, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (running, ==, "Running");
  /* No length: the body is what comes until the close. */
  paused = bg_fc_get_state (fc, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (paused, ==, "Paused");
  g_clear_pointer (&fc, bg_fc_client_free);
  server_join (&s);
  g_assert_cmpuint (s.accepts, ==, 4);
  g_assert_cmpuint (s.requests->len, ==, 4);
}

static void
test_oversized_replies_are_refused (void)
{
  g_autofree char *endless_head = NULL;
  g_autofree char *big_chunks = NULL;
  struct { const char *reply, *message; } cases[] = {
    { "HTTP/1.1 200 OK\r\nContent-Length: 4294967296\r\n\r\n{}", "body is over 1048576 bytes" },
    { NULL, "head (or a chunk's size line) is too long" },
    { NULL, "body is over 1048576 bytes" },
    { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n", "body is over 1048576 bytes" },
    { "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "unsupported Transfer-Encoding \"gzip\"" },
    { "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", "bad Content-Length \"3\"" },
    { "SSH-2.0-OpenSSH\r\n\r\n", "bad status line \"SSH-2.0-OpenSSH\"" },
  };
  GString *head = g_string_new ("HTTP/1.1 200 OK\r\n");
  GString *chunks = g_string_new ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");

  while (head->len < 20 * 1024)
    g_string_append (head, "X-Filler: 0123456789abcdef0123456789abcdef\r\n");
  g_string_append (head, "Content-Length: 2\r\n\r\n{}");
  cases[1].reply = endless_head = g_string_free (head, FALSE);
  for (int i = 0; i < 40; i++)
    {
      g_string_append_printf (chunks, "8000\r\n");
      for (int j = 0; j < 0x8000 / 16; j++)
        g_string_append (chunks, "0123456789abcdef");
      g_string_append (chunks, "\r\n");
    }
  g_string_append (chunks, "0\r\n\r\n");
  cases[2].reply = big_chunks = g_string_free (chunks, FALSE);

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_auto(Server) s = { 0, };
      g_autoptr(GError) error = one_request_error (&s, cases[i].reply);
      g_autofree char *expected = NULL;

      g_test_message ("case %u", i);
      g_assert_error (error, BG_ERROR, BG_ERROR_FAILED);
      expected = g_strdup_printf ("the VMM at %s answered GET / badly: its reply's %s", s.path, cases[i].message);
      if (!g_str_has_prefix (cases[i].message, "body") && !g_str_has_prefix (cases[i].message, "head"))
        {
          g_free (expected);
          expected = g_strdup_printf ("the VMM at %s answered GET / badly: %s", s.path, cases[i].message);
        }
      g_assert_cmpstr (error->message, ==, expected);
    }
}

typedef struct {
  const char *path;
  char       *state;
  GError     *error;
} Caller;

static gpointer
call_get_state (gpointer data)
{
  Caller *c = data;
  g_autoptr(BgFcClient) fc = bg_fc_client_new (c->path);

  c->state = bg_fc_get_state (fc, &c->error);
  return NULL;
}

/* The socket file exists before the VMM listens on it: the connection
 * refused meanwhile is tried again. */
static void
test_refused_connection_is_tried_again (void)
{
  static const char * const replies[] = {
    "HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n{\"state\": \"Running\"}",
    NULL,
  };
  g_auto(Server) s = { .replies = replies };
  Caller caller = { 0, };
  GThread *client;

  server_bind (&s);
  caller.path = s.path;
  client = g_thread_new ("client", call_get_state, &caller);
  /* Not a bound on anything: lets the client meet the refusal first. */
  g_usleep (20 * 1000);
  server_listen (&s);
  server_start (&s);
  g_thread_join (client);
  g_assert_no_error (caller.error);
  g_assert_cmpstr (caller.state, ==, "Running");
  g_free (caller.state);
}

/* Nothing listening at all: refused, and said so. */
static void
test_nothing_listening_is_an_error (void)
{
  g_auto(Server) s = { 0, };
  g_autoptr(GError) error = NULL;
  g_autoptr(BgFcClient) fc = NULL;
  g_autofree char *state = NULL;
  g_autofree char *expected = NULL;

  server_bind (&s);
  fc = bg_fc_client_new (s.path);
  state = bg_fc_get_state (fc, &error);
  g_assert_null (state);
  g_assert_error (error, BG_ERROR, BG_ERROR_FAILED);
  expected = g_strdup_printf ("cannot reach the VMM at %s: ", s.path);
  g_assert_true (g_str_has_prefix (error->message, expected));
}

/* A VMM that takes the request and never answers is stuck: the request
 * fails (after the client's REQUEST_TIMEOUT_S) rather than hang. */
static void
test_stuck_vmm_times_out (void)
{
  g_auto(Server) s = { .never_answer = TRUE };
  g_autoptr(GError) error = one_request_error (&s, "");

  g_assert_error (error, BG_ERROR, BG_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, "timed out"));
}

static void
test_bad_path_is_refused (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BgFcClient) fc = bg_fc_client_new ("/nonexistent/api.sock");
  g_autoptr(JsonNode) reply = bg_fc_client_request (fc, "GET", "/vm config\r\nX: y", NULL, &error);

  g_assert_null (reply);
  g_assert_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/fc-client/content-length", test_content_length_replies_share_one_connection);
  g_test_add_func ("/fc-client/chunked", test_chunked_reply_is_joined);
  g_test_add_func ("/fc-client/fault-message", test_refusal_carries_the_fault_message);
  g_test_add_func ("/fc-client/small-writes", test_reply_in_many_small_writes);
  g_test_add_func ("/fc-client/reconnect", test_closed_connection_is_made_again);
  g_test_add_func ("/fc-client/oversized", test_oversized_replies_are_refused);
  g_test_add_func ("/fc-client/refused-then-accepted", test_refused_connection_is_tried_again);
  g_test_add_func ("/fc-client/nothing-listening", test_nothing_listening_is_an_error);
  g_test_add_func ("/fc-client/stuck", test_stuck_vmm_times_out);
  g_test_add_func ("/fc-client/bad-path", test_bad_path_is_refused);
  return g_test_run ();
}
