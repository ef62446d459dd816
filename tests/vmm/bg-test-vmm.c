/* bg-test-vmm: a stand-in for Firecracker at the API level, for machines
 * without KVM or a Firecracker binary. It follows firecracker-api.yaml
 * for the endpoints banger uses and is as strict as Firecracker: every
 * body is checked for required fields, types, ranges and unknown fields
 * (400 with {"fault_message": ...} otherwise), pre-boot endpoints refuse
 * after InstanceStart, InstanceStart needs a boot source and a root drive,
 * and it opens the kernel, drives and tap it is given, so a jail that
 * lacks them makes it fail as Firecracker would. SendCtrlAltDel makes it
 * exit 0. GET /vm/config returns everything it accepted.
 *
 * The vsock is Firecracker's hybrid vsock (firecracker/NOTES.md): the
 * host side connects to uds_path and sends "CONNECT <port>\n"; the VMM
 * answers "OK <host port>\n" and relays bytes to the guest's listener on
 * that port, or closes the connection when nothing listens there. The
 * "guest" here is whatever listens on the unix socket
 * "<uds_path>.guest_<port>" (a test runs banger-agent --listen-unix there;
 * in the slow suite it is QEMU's chardev socket for the real guest's
 * virtio-serial port org.banger.agent, tests/slow/qemu-vm.c, a test
 * instrument only: the product never connects to a port but vsock's).
 * SIGUSR1 (the slow suite's, a test instrument too) makes it let go of
 * what it holds open (kernel, drives, the tap), so that QEMU can attach
 * to the tap while this VMM keeps serving the API and the vsock.
 *
 *   bg-test-vmm --api-sock PATH [--id ID] | --version
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <glib-unix.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#define VERSION "1.16.0"

/* In sanitizer builds: LeakSanitizer needs /proc, which a jail does not
 * have (as with Firecracker's jailer), and would turn a clean exit into
 * status 1. Unused in normal builds. */
const char *__asan_default_options (void);
const char *
__asan_default_options (void)
{
  return "detect_leaks=0";
}

typedef enum { NOT_STARTED, RUNNING, PAUSED } State;

static struct {
  char       *id;
  State       state;
  JsonObject *machine;
  JsonObject *boot;
  GHashTable *drives;   /* id -> JsonObject */
  GPtrArray  *order;    /* drive ids as first attached: /vm/config's order */
  GHashTable *ifaces;
  JsonObject *vsock;
  GSocket    *vsock_listener;
  guint       vsock_watch;
  guint32     vsock_next_port;   /* Firecracker's local ports start at 2^30 */
  GMainLoop  *loop;
  GList      *held_fds;
} vmm;

typedef enum { T_STRING, T_INT, T_BOOL } FieldType;

typedef struct {
  const char *name;
  FieldType   type;
  gboolean    required;
  gint64      min, max;        /* for T_INT, when max > 0 */
  const char * const *values;  /* for T_STRING enums */
} Field;

static void
reply_error (SoupServerMessage *msg,
             guint              status,
             const char        *format,
             ...) G_GNUC_PRINTF (3, 4);

static void
reply_error (SoupServerMessage *msg,
             guint              status,
             const char        *format,
             ...)
{
  g_autofree char *text = NULL;
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *body = NULL;
  va_list args;

  va_start (args, format);
  text = g_strdup_vprintf (format, args);
  va_end (args);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "fault_message");
  json_builder_add_string_value (b, text);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  body = json_to_string (root, FALSE);
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY, body, strlen (body));
  g_printerr ("[test-vmm] %u: %s\n", status, text);
}

static void
reply_json (SoupServerMessage *msg,
            guint              status,
            JsonNode          *node)
{
  g_autofree char *body = node ? json_to_string (node, FALSE) : NULL;

  soup_server_message_set_status (msg, status, NULL);
  if (body)
    soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY, body, strlen (body));
}

/* Parses and checks a body against @fields; unknown members are refused
 * (Firecracker's types deny unknown fields). */
static JsonObject *
parse_body (SoupServerMessage *msg,
            const Field       *fields)
{
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  g_autoptr(GBytes) bytes = soup_message_body_flatten (body);
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GList) members = NULL;
  JsonNode *root;
  JsonObject *o;

  if (!json_parser_load_from_data (parser, g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes), &error) ||
      (root = json_parser_get_root (parser)) == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      reply_error (msg, 400, "An error occurred when deserializing the json body of a request: %s",
                   error ? error->message : "expected a JSON object");
      return NULL;
    }
  o = json_node_get_object (root);

  members = json_object_get_members (o);
  for (GList *l = members; l; l = l->next)
    {
      gboolean known = FALSE;
      for (const Field *f = fields; f->name; f++)
        known |= g_str_equal (f->name, l->data);
      if (!known)
        {
          reply_error (msg, 400, "An error occurred when deserializing the json body of a request: "
                       "unknown field `%s`", (char *) l->data);
          return NULL;
        }
    }

  for (const Field *f = fields; f->name; f++)
    {
      JsonNode *n = json_object_get_member (o, f->name);
      GType t;

      if (n == NULL)
        {
          if (f->required)
            {
              reply_error (msg, 400, "An error occurred when deserializing the json body of a request: "
                           "missing field `%s`", f->name);
              return NULL;
            }
          continue;
        }
      t = JSON_NODE_HOLDS_VALUE (n) ? json_node_get_value_type (n) : G_TYPE_INVALID;
      if ((f->type == T_STRING && t != G_TYPE_STRING) || (f->type == T_INT && t != G_TYPE_INT64) ||
          (f->type == T_BOOL && t != G_TYPE_BOOLEAN))
        {
          reply_error (msg, 400, "An error occurred when deserializing the json body of a request: "
                       "invalid type for field `%s`", f->name);
          return NULL;
        }
      if (f->type == T_INT && f->max > 0 &&
          (json_node_get_int (n) < f->min || json_node_get_int (n) > f->max))
        {
          reply_error (msg, 400, "Invalid value for `%s`: %" G_GINT64_FORMAT, f->name, json_node_get_int (n));
          return NULL;
        }
      if (f->type == T_STRING && f->values != NULL &&
          !g_strv_contains (f->values, json_node_get_string (n)))
        {
          reply_error (msg, 400, "An error occurred when deserializing the json body of a request: "
                       "unknown variant `%s` for `%s`", json_node_get_string (n), f->name);
          return NULL;
        }
    }
  return json_object_ref (o);
}

static gboolean
pre_boot_only (SoupServerMessage *msg)
{
  if (vmm.state == NOT_STARTED)
    return TRUE;
  reply_error (msg, 400, "The requested operation is not supported after starting the microVM.");
  return FALSE;
}

/* Opens @path as Firecracker would, and keeps it open like a device. */
static gboolean
open_resource (SoupServerMessage *msg,
               const char        *what,
               const char        *path,
               int                flags)
{
  int fd = open (path, flags | O_CLOEXEC);

  if (fd < 0)
    {
      reply_error (msg, 400, "%s: cannot open %s: %s", what, path, g_strerror (errno));
      return FALSE;
    }
  vmm.held_fds = g_list_prepend (vmm.held_fds, GINT_TO_POINTER (fd));
  return TRUE;
}

static void
handle_machine_config (SoupServerMessage *msg, const char *method)
{
  static const char * const huge[] = { "None", "Transparent", "2M", NULL };
  static const Field fields[] = {
    { "vcpu_count", T_INT, TRUE, 1, 32 },
    { "mem_size_mib", T_INT, TRUE, 1, G_MAXINT32 },
    { "smt", T_BOOL, FALSE },
    { "track_dirty_pages", T_BOOL, FALSE },
    { "huge_pages", T_STRING, FALSE, 0, 0, huge },
    { NULL }
  };
  JsonObject *o;

  if (g_str_equal (method, "GET"))
    {
      g_autoptr(JsonNode) n = json_node_new (JSON_NODE_OBJECT);
      json_node_set_object (n, vmm.machine);
      reply_json (msg, 200, n);
      return;
    }
  if (!pre_boot_only (msg) || (o = parse_body (msg, fields)) == NULL)
    return;
  /* "either 1 or an even number" */
  if (json_object_get_int_member (o, "vcpu_count") > 1 && json_object_get_int_member (o, "vcpu_count") % 2)
    {
      reply_error (msg, 400, "The vCPU number is invalid! The vCPU number can only be 1 or an even number when SMT is enabled.");
      json_object_unref (o);
      return;
    }
  json_object_unref (vmm.machine);
  vmm.machine = o;
  reply_json (msg, 204, NULL);
}

static void
handle_boot_source (SoupServerMessage *msg)
{
  static const Field fields[] = {
    { "kernel_image_path", T_STRING, TRUE },
    { "boot_args", T_STRING, FALSE },
    { "initrd_path", T_STRING, FALSE },
    { NULL }
  };
  JsonObject *o;

  if (!pre_boot_only (msg) || (o = parse_body (msg, fields)) == NULL)
    return;
  if (!open_resource (msg, "Kernel", json_object_get_string_member (o, "kernel_image_path"), O_RDONLY) ||
      (json_object_has_member (o, "initrd_path") &&
       !open_resource (msg, "Initrd", json_object_get_string_member (o, "initrd_path"), O_RDONLY)))
    {
      json_object_unref (o);
      return;
    }
  g_clear_pointer (&vmm.boot, json_object_unref);
  vmm.boot = o;
  reply_json (msg, 204, NULL);
}

static void
handle_drive (SoupServerMessage *msg, const char *id)
{
  static const char * const cache[] = { "Unsafe", "Writeback", NULL };
  static const char * const engine[] = { "Sync", "Async", NULL };
  static const Field fields[] = {
    { "drive_id", T_STRING, TRUE },
    { "is_root_device", T_BOOL, TRUE },
    { "path_on_host", T_STRING, FALSE },
    { "is_read_only", T_BOOL, FALSE },
    { "partuuid", T_STRING, FALSE },
    { "cache_type", T_STRING, FALSE, 0, 0, cache },
    { "io_engine", T_STRING, FALSE, 0, 0, engine },
    { NULL }
  };
  JsonObject *o;
  gboolean ro;

  if (!pre_boot_only (msg) || (o = parse_body (msg, fields)) == NULL)
    return;
  if (!g_str_equal (json_object_get_string_member (o, "drive_id"), id))
    {
      reply_error (msg, 400, "The id from the path [%s] does not match the id from the body [%s]!",
                   id, json_object_get_string_member (o, "drive_id"));
      json_object_unref (o);
      return;
    }
  if (!json_object_has_member (o, "path_on_host"))
    {
      reply_error (msg, 400, "Unable to create the block device: path_on_host is required without socket");
      json_object_unref (o);
      return;
    }
  ro = json_object_get_boolean_member_with_default (o, "is_read_only", FALSE);
  if (!open_resource (msg, "Drive", json_object_get_string_member (o, "path_on_host"), ro ? O_RDONLY : O_RDWR))
    {
      json_object_unref (o);
      return;
    }
  if (!g_hash_table_contains (vmm.drives, id))
    g_ptr_array_add (vmm.order, g_strdup (id));
  g_hash_table_replace (vmm.drives, g_strdup (id), o);
  reply_json (msg, 204, NULL);
}

static void
handle_iface (SoupServerMessage *msg, const char *id)
{
  static const Field fields[] = {
    { "iface_id", T_STRING, TRUE },
    { "host_dev_name", T_STRING, TRUE },
    { "guest_mac", T_STRING, FALSE },
    { "mtu", T_INT, FALSE, 68, 65535 },
    { NULL }
  };
  struct ifreq ifr = { 0 };
  JsonObject *o;
  int fd;

  if (!pre_boot_only (msg) || (o = parse_body (msg, fields)) == NULL)
    return;
  if (!g_str_equal (json_object_get_string_member (o, "iface_id"), id))
    {
      reply_error (msg, 400, "The id from the path [%s] does not match the id from the body [%s]!",
                   id, json_object_get_string_member (o, "iface_id"));
      json_object_unref (o);
      return;
    }
  /* Attach to the tap as Firecracker does; it must be ours to open. */
  fd = open ("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  g_strlcpy (ifr.ifr_name, json_object_get_string_member (o, "host_dev_name"), IFNAMSIZ);
  if (fd < 0 || ioctl (fd, TUNSETIFF, &ifr) < 0)
    {
      reply_error (msg, 400, "Could not create the network device: Open tap device failed: %s",
                   g_strerror (errno));
      if (fd >= 0)
        close (fd);
      json_object_unref (o);
      return;
    }
  vmm.held_fds = g_list_prepend (vmm.held_fds, GINT_TO_POINTER (fd));
  g_hash_table_replace (vmm.ifaces, g_strdup (id), o);
  reply_json (msg, 204, NULL);
}

typedef struct {
  int     host;
  char   *guest_path;
  guint32 host_port;
} VsockConn;

/* Reads "CONNECT <port>\n" a byte at a time, as Firecracker does (at most
 * 32 bytes: anything longer is not a handshake). */
static gboolean
read_connect (int fd, guint32 *port)
{
  char line[33];
  gsize n = 0;
  guint64 v;
  char *end;

  while (n < sizeof line - 1)
    {
      ssize_t r = read (fd, line + n, 1);

      if (r <= 0)
        return FALSE;
      if (line[n++] == '\n')
        break;
    }
  line[n] = '\0';
  if (n == 0 || line[n - 1] != '\n' || !g_str_has_prefix (line, "CONNECT "))
    return FALSE;
  v = g_ascii_strtoull (line + 8, &end, 10);
  if (end == line + 8 || *end != '\n' || v > G_MAXUINT32)
    return FALSE;
  *port = (guint32) v;
  return TRUE;
}

/* Copies both ways until both directions ended; an end in one direction
 * becomes a shutdown of the other socket's write side, so EOF travels. */
static void
relay (int a, int b)
{
  gboolean open_ab = TRUE, open_ba = TRUE;
  char buf[65536];

  while (open_ab || open_ba)
    {
      struct pollfd p[2] = { { a, open_ab ? POLLIN : 0, 0 }, { b, open_ba ? POLLIN : 0, 0 } };

      if (poll (p, 2, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          return;
        }
      for (int i = 0; i < 2; i++)
        {
          int from = i == 0 ? a : b, to = i == 0 ? b : a;
          gboolean *open = i == 0 ? &open_ab : &open_ba;
          ssize_t n;

          if (!*open || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
          n = read (from, buf, sizeof buf);
          if (n <= 0)
            {
              *open = FALSE;
              shutdown (to, SHUT_WR);
              continue;
            }
          for (ssize_t off = 0; off < n;)
            {
              ssize_t w = write (to, buf + off, n - off);

              if (w < 0 && errno == EINTR)
                continue;
              if (w <= 0)
                return;
              off += w;
            }
        }
    }
}

static gpointer
vsock_conn_thread (gpointer data)
{
  VsockConn *c = data;
  guint32 port;
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  g_autofree char *path = NULL;
  int guest = -1;

  if (read_connect (c->host, &port))
    {
      path = g_strdup_printf ("%s.guest_%u", c->guest_path, port);
      if (strlen (path) < sizeof sa.sun_path)
        {
          strcpy (sa.sun_path, path);
          guest = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
          if (guest >= 0 && connect (guest, (struct sockaddr *) &sa, sizeof sa) < 0)
            {
              close (guest);
              guest = -1;
            }
        }
    }
  /* Nothing listens on that port (or no handshake): Firecracker closes
   * the host's connection without an answer. */
  if (guest >= 0)
    {
      g_autofree char *ok = g_strdup_printf ("OK %u\n", c->host_port);

      if (write (c->host, ok, strlen (ok)) == (ssize_t) strlen (ok))
        relay (c->host, guest);
      close (guest);
    }
  close (c->host);
  g_free (c->guest_path);
  g_free (c);
  return NULL;
}

static gboolean
on_vsock_accept (int fd, GIOCondition condition, gpointer data)
{
  int host = accept4 (fd, NULL, NULL, SOCK_CLOEXEC);
  VsockConn *c;

  if (host < 0)
    return G_SOURCE_CONTINUE;
  c = g_new0 (VsockConn, 1);
  c->host = host;
  c->host_port = vmm.vsock_next_port++;
  c->guest_path = g_strdup (json_object_get_string_member (vmm.vsock, "uds_path"));
  g_thread_unref (g_thread_new ("vsock", vsock_conn_thread, c));
  return G_SOURCE_CONTINUE;
}

static void
handle_vsock (SoupServerMessage *msg)
{
  static const Field fields[] = {
    { "guest_cid", T_INT, TRUE, 3, G_MAXUINT32 },
    { "uds_path", T_STRING, TRUE },
    { "vsock_id", T_STRING, FALSE },
    { NULL }
  };
  g_autoptr(GSocketAddress) addr = NULL;
  g_autoptr(GError) error = NULL;
  JsonObject *o;

  if (!pre_boot_only (msg) || (o = parse_body (msg, fields)) == NULL)
    return;
  /* Firecracker binds the host side at PUT /vsock time, refusing an
   * existing path. */
  addr = g_unix_socket_address_new (json_object_get_string_member (o, "uds_path"));
  g_clear_handle_id (&vmm.vsock_watch, g_source_remove);
  g_clear_object (&vmm.vsock_listener);
  vmm.vsock_listener = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, 0, &error);
  if (vmm.vsock_listener == NULL || !g_socket_bind (vmm.vsock_listener, addr, FALSE, &error) ||
      !g_socket_listen (vmm.vsock_listener, &error))
    {
      reply_error (msg, 400, "Cannot create backend for vsock device: %s", error->message);
      g_clear_object (&vmm.vsock_listener);
      json_object_unref (o);
      return;
    }
  g_clear_pointer (&vmm.vsock, json_object_unref);
  vmm.vsock = o;
  g_clear_handle_id (&vmm.vsock_watch, g_source_remove);
  vmm.vsock_watch = g_unix_fd_add (g_socket_get_fd (vmm.vsock_listener), G_IO_IN, on_vsock_accept, NULL);
  reply_json (msg, 204, NULL);
}

static gboolean
root_drive_present (void)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, vmm.drives);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (json_object_get_boolean_member (value, "is_root_device"))
      return TRUE;
  return FALSE;
}

static gboolean G_GNUC_UNUSED
quit_soon (gpointer data)
{
  g_main_loop_quit (vmm.loop);
  return G_SOURCE_REMOVE;
}

static void
handle_actions (SoupServerMessage *msg)
{
  static const char * const actions[] = { "FlushMetrics", "InstanceStart", "SendCtrlAltDel", NULL };
  static const Field fields[] = {
    { "action_type", T_STRING, TRUE, 0, 0, actions },
    { NULL }
  };
  g_autoptr(JsonObject) o = parse_body (msg, fields);
  const char *action;

  if (o == NULL)
    return;
  action = json_object_get_string_member (o, "action_type");
  if (g_str_equal (action, "InstanceStart"))
    {
      if (vmm.state != NOT_STARTED)
        {
          reply_error (msg, 400, "The requested operation is not supported after starting the microVM.");
          return;
        }
      if (vmm.boot == NULL)
        {
          reply_error (msg, 400, "Cannot start microvm without kernel configuration.");
          return;
        }
      if (!root_drive_present ())
        {
          reply_error (msg, 400, "Cannot start microvm without a root block device.");
          return;
        }
      vmm.state = RUNNING;
      g_print ("[test-vmm] InstanceStart: guest \"booted\"\n");
    }
  else if (g_str_equal (action, "SendCtrlAltDel"))
    {
      if (vmm.state == NOT_STARTED)
        {
          reply_error (msg, 400, "The requested operation is not supported before starting the microVM.");
          return;
        }
#ifdef BG_TEST_VMM_DEAF
      /* bg-vmm-deaf: a guest that never shuts down on Ctrl-Alt-Del (hung,
       * or ignoring it), for `vm stop --timeout` to kill. */
      g_print ("[test-vmm] SendCtrlAltDel: ignored\n");
#else
      /* The guest "shuts down": exit once the reply is on its way. */
      g_print ("[test-vmm] SendCtrlAltDel: guest shutting down\n");
      g_timeout_add (50, quit_soon, NULL);
#endif
    }
  reply_json (msg, 204, NULL);
}

static void
handle_vm (SoupServerMessage *msg, const char *method)
{
  static const char * const states[] = { "Paused", "Resumed", NULL };
  static const Field fields[] = {
    { "state", T_STRING, TRUE, 0, 0, states },
    { NULL }
  };
  g_autoptr(JsonObject) o = NULL;

  if (!g_str_equal (method, "PATCH"))
    {
      reply_error (msg, 405, "Invalid request method");
      return;
    }
  if ((o = parse_body (msg, fields)) == NULL)
    return;
  if (vmm.state == NOT_STARTED)
    {
      reply_error (msg, 400, "The requested operation is not supported before starting the microVM.");
      return;
    }
  vmm.state = g_str_equal (json_object_get_string_member (o, "state"), "Paused") ? PAUSED : RUNNING;
  reply_json (msg, 204, NULL);
}

/* The objects of @map, in the order of @order if given (Firecracker
 * lists drives as they were attached: vda, vdb, ...). */
static void
add_map (JsonBuilder *b, const char *name, GHashTable *map, GPtrArray *order)
{
  GHashTableIter iter;
  gpointer value;

  json_builder_set_member_name (b, name);
  json_builder_begin_array (b);
  g_hash_table_iter_init (&iter, map);
  for (guint i = 0; order ? i < order->len : g_hash_table_iter_next (&iter, NULL, &value); i++)
    {
      JsonNode *n = json_node_new (JSON_NODE_OBJECT);
      json_node_set_object (n, order ? g_hash_table_lookup (map, order->pdata[i]) : value);
      json_builder_add_value (b, n);
    }
  json_builder_end_array (b);
}

static void
add_object (JsonBuilder *b, const char *name, JsonObject *o)
{
  JsonNode *n = json_node_new (o ? JSON_NODE_OBJECT : JSON_NODE_NULL);

  if (o)
    json_node_set_object (n, o);
  json_builder_set_member_name (b, name);
  json_builder_add_value (b, n);
}

static void
handle_request (SoupServer        *server,
                SoupServerMessage *msg,
                const char        *path,
                GHashTable        *query,
                gpointer           data)
{
  const char *method = soup_server_message_get_method (msg);
  gboolean put = g_str_equal (method, "PUT");

  if (g_str_equal (path, "/") && g_str_equal (method, "GET"))
    {
      static const char * const names[] = { "Not started", "Running", "Paused" };
      g_autoptr(JsonBuilder) b = json_builder_new ();
      g_autoptr(JsonNode) root = NULL;

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "id");
      json_builder_add_string_value (b, vmm.id);
      json_builder_set_member_name (b, "state");
      json_builder_add_string_value (b, names[vmm.state]);
      json_builder_set_member_name (b, "vmm_version");
      json_builder_add_string_value (b, VERSION);
      json_builder_set_member_name (b, "app_name");
      json_builder_add_string_value (b, "Firecracker");
      json_builder_end_object (b);
      root = json_builder_get_root (b);
      reply_json (msg, 200, root);
    }
  else if (g_str_equal (path, "/vm/config") && g_str_equal (method, "GET"))
    {
      g_autoptr(JsonBuilder) b = json_builder_new ();
      g_autoptr(JsonNode) root = NULL;

      json_builder_begin_object (b);
      add_object (b, "machine-config", vmm.machine);
      add_object (b, "boot-source", vmm.boot);
      add_map (b, "drives", vmm.drives, vmm.order);
      add_map (b, "network-interfaces", vmm.ifaces, NULL);
      add_object (b, "vsock", vmm.vsock);
      json_builder_end_object (b);
      root = json_builder_get_root (b);
      reply_json (msg, 200, root);
    }
  else if (g_str_equal (path, "/machine-config") && (put || g_str_equal (method, "GET")))
    handle_machine_config (msg, method);
  else if (g_str_equal (path, "/boot-source") && put)
    handle_boot_source (msg);
  else if (g_str_has_prefix (path, "/drives/") && put && path[8])
    handle_drive (msg, path + 8);
  else if (g_str_has_prefix (path, "/network-interfaces/") && put && path[20])
    handle_iface (msg, path + 20);
  else if (g_str_equal (path, "/vsock") && put)
    handle_vsock (msg);
  else if (g_str_equal (path, "/actions") && put)
    handle_actions (msg);
  else if (g_str_equal (path, "/vm"))
    handle_vm (msg, method);
  else
    reply_error (msg, 400, "Invalid request method and/or path: %s %s", method, path);
}

/* SIGUSR1: another VMM (QEMU, in the slow suite) boots the guest; a tap
 * takes one VMM at a time. */
static gboolean
on_release (gpointer data)
{
  for (GList *l = vmm.held_fds; l; l = l->next)
    close (GPOINTER_TO_INT (l->data));
  g_clear_pointer (&vmm.held_fds, g_list_free);
  g_print ("[test-vmm] let go of the kernel, drives and tap\n");
  return G_SOURCE_CONTINUE;
}

int
main (int argc, char **argv)
{
  g_autofree char *api_sock = NULL;
  gboolean version = FALSE;
  GOptionEntry entries[] = {
    { "api-sock", 0, 0, G_OPTION_ARG_FILENAME, &api_sock, "API socket", "PATH" },
    { "id", 0, 0, G_OPTION_ARG_STRING, &vmm.id, "VM id", "ID" },
    { "version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version", NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new (NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(SoupServer) server = NULL;
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GSocketAddress) addr = NULL;

  /* Its stdout is the VM's console log: written line by line, as a serial
   * console is, so `vm logs` sees each line when it is printed. */
  setvbuf (stdout, NULL, _IOLBF, 0);

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("Arguments parsing error: %s\n", error->message);
      return 153;
    }
  if (version)
    {
      g_print ("Firecracker v%s (banger test VMM)\n", VERSION);
      return 0;
    }
  if (api_sock == NULL)
    api_sock = g_strdup ("/run/firecracker.socket");
  if (vmm.id == NULL)
    vmm.id = g_strdup ("anonymous-instance");

  vmm.vsock_next_port = 1u << 30;
  vmm.machine = json_object_new ();
  json_object_set_int_member (vmm.machine, "vcpu_count", 1);
  json_object_set_int_member (vmm.machine, "mem_size_mib", 128);
  vmm.drives = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) json_object_unref);
  vmm.order = g_ptr_array_new_with_free_func (g_free);
  vmm.ifaces = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) json_object_unref);

  /* Like Firecracker: bind as given, refuse an existing path. */
  addr = g_unix_socket_address_new (api_sock);
  socket = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, 0, &error);
  if (socket == NULL || !g_socket_bind (socket, addr, FALSE, &error) || !g_socket_listen (socket, &error))
    {
      g_printerr ("Error: FailedToBindSocket(\"%s\"): %s\n", api_sock, error->message);
      return 1;
    }
  server = soup_server_new ("server-header", "Firecracker API", NULL);
  soup_server_add_handler (server, NULL, handle_request, NULL, NULL);
  if (!soup_server_listen_socket (server, socket, 0, &error))
    {
      g_printerr ("Error: %s\n", error->message);
      return 1;
    }
  g_print ("[test-vmm] %s listening on %s\n", vmm.id, api_sock);
  vmm.loop = g_main_loop_new (NULL, FALSE);
  g_unix_signal_add (SIGUSR1, on_release, NULL);
  g_main_loop_run (vmm.loop);
  g_print ("[test-vmm] exiting\n");
  return 0;
}
