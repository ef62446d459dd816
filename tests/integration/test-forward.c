/* `banger vm forward`, as an unprivileged user, in the harness's network
 * namespace: a VM made by `vm up` with the test VMM, and a stand-in guest
 * behind it — a network namespace with the VM's address on a veth
 * attached to the banger bridge, running echo servers (bg-test-net). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/fsuid.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <json-glib/json-glib.h>

#include "harness.h"

#define ECHO_PORT 7000      /* TCP and UDP echo; 7001 resets; 7002 refuses */

typedef struct {
  BgHarness *h;
  char      *ns;
  char      *address;
  GPid       echo;
} Fixture;

/* The CLI as the test user. */
#define cli(f, out, err, ...) bg_harness_run_cli ((f)->h, BG_TEST_USER_A, out, err, __VA_ARGS__)

static void
must_run (const char * const *argv)
{
  int status;
  bg_harness_run_argv (argv, NULL, &status);
  if (status != 0)
    g_error ("%s %s failed", argv[0], argv[1]);
}
#define MUST(...) must_run ((const char * const[]) { __VA_ARGS__, NULL })

static JsonNode *
json (const char *text)
{
  g_autoptr(JsonParser) p = json_parser_new ();
  if (!json_parser_load_from_data (p, text, -1, NULL))
    g_error ("not JSON: %s", text);
  return json_node_copy (json_parser_get_root (p));
}

static void
setup (Fixture *f, gconstpointer data)
{
  g_autofree char *out = NULL, *err = NULL, *cidr = NULL;
  g_autoptr(JsonNode) show = NULL;
  const char *echo[] = { "ip", "netns", "exec", NULL, g_getenv ("BANGER_TEST_NET"), "echo", "7000", NULL };
  char ready[16] = { 0 };
  int out_fd;
  g_autoptr(GError) error = NULL;

  f->h = bg_harness_start (60);
  bg_harness_set_group_rule (f->h, TRUE);
  bg_harness_use_vmm (f->h, g_getenv ("BANGER_TEST_VMM"));
  bg_harness_import_test_image (f->h, BG_TEST_USER_A);
  if (cli (f, &out, &err, "vm", "up", "fw", "--no-wait", NULL) != 0)
    g_error ("vm up: %s", err);
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (cli (f, &out, &err, "vm", "show", "fw", "--json", NULL), ==, 0);
  show = json (out);
  f->address = g_strdup (json_object_get_string_member (json_node_get_object (show), "address"));
  cidr = g_strdup_printf ("%s/%" G_GINT64_FORMAT, f->address,
                          json_object_get_int_member (json_node_get_object (show), "prefix"));

  /* The stand-in guest: the VM's address, on the bridge. */
  f->ns = g_strdup_printf ("bgt%d-fw", bg_harness_run_id ());
  MUST ("ip", "link", "set", "lo", "up");
  MUST ("ip", "netns", "add", f->ns);
  MUST ("ip", "link", "add", "fwh0", "type", "veth", "peer", "name", "fwg0", "netns", f->ns);
  MUST ("ip", "link", "set", "fwh0", "master", "banger0", "up");
  MUST ("ip", "-n", f->ns, "addr", "add", cidr, "dev", "fwg0");
  if (json_object_has_member (json_node_get_object (show), "address6"))
    {
      g_autofree char *cidr6 = g_strdup_printf ("%s/64", json_object_get_string_member (json_node_get_object (show),
                                                                                        "address6"));
      MUST ("ip", "-n", f->ns, "addr", "add", cidr6, "dev", "fwg0", "nodad");
    }
  MUST ("ip", "-n", f->ns, "link", "set", "fwg0", "up");
  MUST ("ip", "-n", f->ns, "link", "set", "lo", "up");
  echo[3] = f->ns;
  if (!g_spawn_async_with_pipes (NULL, (char **) echo, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD, NULL,
                                 NULL, &f->echo, NULL, &out_fd, NULL, &error))
    g_error ("%s", error->message);
  g_assert_cmpint (read (out_fd, ready, sizeof ready - 1), >, 0);
  g_assert_cmpstr (ready, ==, "ready\n");
  close (out_fd);
}

static void
teardown (Fixture *f, gconstpointer data)
{
  kill (f->echo, SIGKILL);
  waitpid (f->echo, NULL, 0);
  {
    const char *del[] = { "ip", "netns", "del", f->ns, NULL };
    bg_harness_run_argv (del, NULL, NULL);
  }
  bg_harness_stop (f->h);
  g_free (f->ns);
  g_free (f->address);
}

/* `banger vm forward ARGS…` in the foreground, as the user; returns once
 * it says it forwards. */
static GPid
forward_start (Fixture            *f,
               const char * const *args)
{
  g_autofree char *home = g_strdup_printf ("%s/home-%s", f->h->tmp, BG_TEST_USER_A);
  g_autofree char *runtime = g_strdup_printf ("%s/runtime-%s", f->h->tmp, BG_TEST_USER_A);
  g_auto(GStrv) argv = bg_harness_cli_argv (BG_TEST_USER_A, args);
  g_auto(GStrv) envp = bg_harness_cli_envp (f->h, home, runtime);
  g_autoptr(GError) error = NULL;
  g_autoptr(GString) said = g_string_new (NULL);
  int out_fd, err_fd;
  char buf[512];
  ssize_t n;
  GPid pid;

  if (!g_spawn_async_with_pipes (home, argv, envp, G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
                                 &pid, NULL, &out_fd, g_getenv ("BG_DEBUG_FORWARD") ? NULL : &err_fd, &error))
    g_error ("%s", error->message);
  while (strchr (said->str, '\n') == NULL && (n = read (out_fd, buf, sizeof buf)) > 0)
    g_string_append_len (said, buf, n);
  if (!g_str_has_prefix (said->str, "Forwarding "))
    {
      n = read (err_fd, buf, sizeof buf - 1);
      buf[MAX (n, 0)] = '\0';
      g_error ("vm forward did not start: %s%s", said->str, buf);
    }
  close (out_fd);
  if (!g_getenv ("BG_DEBUG_FORWARD"))
    close (err_fd);
  return pid;
}

static int
forward_end (GPid pid)
{
  int status;
  g_assert_no_errno (kill (pid, SIGINT));
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  return WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
}

static int
connect_to (int family, int type, guint16 port)
{
  struct sockaddr_in in4 = { .sin_family = AF_INET, .sin_port = htons (port) };
  struct sockaddr_in6 in6 = { .sin6_family = AF_INET6, .sin6_port = htons (port), .sin6_addr = IN6ADDR_LOOPBACK_INIT };
  int fd = socket (family, type | SOCK_CLOEXEC, 0);

  in4.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  g_assert_cmpint (fd, >=, 0);
  if (connect (fd, family == AF_INET ? (struct sockaddr *) &in4 : (struct sockaddr *) &in6,
               family == AF_INET ? sizeof in4 : sizeof in6) < 0)
    g_error ("connect to port %u: %s", port, g_strerror (errno));
  return fd;
}

/* Sends @len bytes, closes its side, and reads the echo to the end, both
 * at once so neither side's buffers stall the other. */
static void
echo_exchange (int fd, gsize len)
{
  g_autofree guint8 *data = g_malloc (len), *back = g_malloc (len + 1);
  gsize sent = 0, got = 0;

  for (gsize i = 0; i < len; i++)
    data[i] = (guint8) (i * 7 + i / 251);
  for (;;)
    {
      struct pollfd p = { fd, POLLIN | (sent < len ? POLLOUT : 0), 0 };
      ssize_t n;

      g_assert_cmpint (poll (&p, 1, 30000), ==, 1);
      if ((p.revents & POLLOUT) && sent < len)
        {
          n = send (fd, data + sent, MIN (len - sent, 65536), MSG_DONTWAIT);
          g_assert_cmpint (n, >, 0);
          if ((sent += n) == len)
            shutdown (fd, SHUT_WR);
        }
      if (p.revents & (POLLIN | POLLHUP))
        {
          n = recv (fd, back + got, len + 1 - got, MSG_DONTWAIT);
          if (n == 0)
            break;
          if (n < 0 && errno == EAGAIN)
            continue;
          g_assert_cmpint (n, >, 0);
          got += n;
        }
    }
  g_assert_cmpuint (got, ==, len);
  g_assert_cmpmem (data, len, back, got);
  close (fd);
}

/* One datagram there and back on @fd (connected). */
static void
udp_exchange (int fd, const char *text)
{
  char buf[256] = { 0 };
  struct pollfd p = { fd, POLLIN, 0 };

  /* UDP may lose a datagram; a few tries before calling it broken. */
  for (guint i = 0; i < 5; i++)
    {
      g_assert_cmpint (send (fd, text, strlen (text), 0), ==, (ssize_t) strlen (text));
      if (poll (&p, 1, 2000) == 1)
        break;
    }
  g_assert_cmpint (recv (fd, buf, sizeof buf - 1, 0), ==, (ssize_t) strlen (text));
  g_assert_cmpstr (buf, ==, text);
}

static void
udp_echo (int family, guint16 port, const char *text)
{
  int fd = connect_to (family, SOCK_DGRAM, port);

  udp_exchange (fd, text);
  close (fd);
}

/* What a peer of a relayed connection sees when the guest side failed:
 * the end of the stream or a reset, not a hang. */
static void
assert_ended (int fd)
{
  char c;
  struct pollfd p = { fd, POLLIN, 0 };
  ssize_t n;

  g_assert_cmpint (poll (&p, 1, 30000), ==, 1);
  n = recv (fd, &c, 1, 0);
  g_assert_true (n == 0 || (n < 0 && errno == ECONNRESET));
  close (fd);
}

static void
test_tcp_and_udp_both_ways (Fixture *f, gconstpointer data)
{
  const char *args[] = { "vm", "forward", "fw", "18080:7000", "15353:7000/udp", "18081:7001", "18082:7002", NULL };
  GPid fwd = forward_start (f, args);
  int many[48];

  /* A megabyte each way, on both loopback addresses. */
  echo_exchange (connect_to (AF_INET, SOCK_STREAM, 18080), 1 << 20);
  echo_exchange (connect_to (AF_INET6, SOCK_STREAM, 18080), 1 << 20);
  /* Many at once: all open before any ends. */
  for (guint i = 0; i < G_N_ELEMENTS (many); i++)
    many[i] = connect_to (i % 2 ? AF_INET6 : AF_INET, SOCK_STREAM, 18080);
  for (guint i = 0; i < G_N_ELEMENTS (many); i++)
    echo_exchange (many[i], 4096 + i);
  udp_echo (AF_INET, 15353, "datagram over IPv4");
  udp_echo (AF_INET6, 15353, "datagram over IPv6");
  /* The guest resetting, and a guest port nobody listens on. */
  assert_ended (connect_to (AF_INET, SOCK_STREAM, 18081));
  assert_ended (connect_to (AF_INET, SOCK_STREAM, 18082));
  /* And the forward still serves. */
  echo_exchange (connect_to (AF_INET, SOCK_STREAM, 18080), 1000);
  g_assert_cmpint (forward_end (fwd), ==, 0);
}

/* One byte there and back on an open connection: relayed to the guest. */
static gboolean
echoes_a_byte (int fd)
{
  struct pollfd p = { fd, POLLIN, 0 };
  char c = 'x';

  return send (fd, &c, 1, 0) == 1 && poll (&p, 1, 30000) == 1 && recv (fd, &c, 1, 0) == 1 && c == 'x';
}

/* connect_to, with the socket made as @user's (its owner is what the
 * forward asks the kernel about, bg-peer.c): only this thread's file
 * system uid changes, and only while the socket is made. */
static int
connect_as (const char *user, int family, int type, guint16 port)
{
  struct sockaddr_in in4 = { .sin_family = AF_INET, .sin_port = htons (port) };
  struct sockaddr_in6 in6 = { .sin6_family = AF_INET6, .sin6_port = htons (port), .sin6_addr = IN6ADDR_LOOPBACK_INIT };
  struct passwd *pw = getpwnam (user);
  int fd;

  g_assert_nonnull (pw);
  setfsuid (pw->pw_uid);
  fd = socket (family, type | SOCK_CLOEXEC, 0);
  setfsuid (0);
  g_assert_cmpint (fd, >=, 0);
  in4.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  if (connect (fd, family == AF_INET ? (struct sockaddr *) &in4 : (struct sockaddr *) &in6,
               family == AF_INET ? sizeof in4 : sizeof in6) < 0)
    g_error ("connect to port %u: %s", port, g_strerror (errno));
  return fd;
}

/* The socket inodes process @pid holds. */
static GHashTable *
sockets_of (GPid pid)
{
  g_autofree char *dir = g_strdup_printf ("/proc/%d/fd", pid);
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  GHashTable *inodes = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  const char *name;

  g_assert_nonnull (d);
  while ((name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      g_autofree char *target = g_file_read_link (path, NULL);

      if (target != NULL && g_str_has_prefix (target, "socket:"))
        g_hash_table_add (inodes, g_steal_pointer (&target));
    }
  return inodes;
}

/* Any local user may connect to a forwarded loopback port; no number of
 * connections or UDP sources starves the forward of descriptors, and no
 * other user starves its owner. Another user (root here) holds at most
 * a quarter of the 256 connections it relays: past that, theirs are
 * reset at once while a third user and the owner still get through,
 * and one of theirs ending makes room for their next. UDP: the owner's
 * flow outlives another user spraying 1300 sources (its socket in the
 * forward is the same one after), and every new source still gets a
 * flow (its own idlest gives way), far past what the default
 * descriptor limit held before. */
static void
test_many_clients_cannot_starve_a_forward (Fixture *f, gconstpointer data)
{
  const char *args[] = { "vm", "forward", "fw", "18090:7000", "15363:7000/udp", NULL };
  g_autoptr(GHashTable) before_flow = NULL, with_flow = NULL, after_spray = NULL;
  g_autofree char *flow = NULL;
  struct rlimit before, low;
  GHashTableIter it;
  const char *inode;
  GPid fwd;
  int conns[256], owned, n = 0;

  /* The forward starts with the usual soft limit of 1024 descriptors
   * (fewer than 256 connections or 1300 flows need) under a higher hard
   * limit, which it must take for itself. */
  g_assert_no_errno (getrlimit (RLIMIT_NOFILE, &before));
  if (before.rlim_max < 4096)
    {
      g_test_skip ("the hard descriptor limit here is below 4096: the forward's caps shrink to fit it");
      return;
    }
  low = before;
  low.rlim_cur = 1024;
  g_assert_no_errno (setrlimit (RLIMIT_NOFILE, &low));
  fwd = forward_start (f, args);
  g_assert_no_errno (setrlimit (RLIMIT_NOFILE, &before));

  for (; n < (int) G_N_ELEMENTS (conns); n++)
    {
      conns[n] = connect_to (AF_INET, SOCK_STREAM, 18090);
      if (!echoes_a_byte (conns[n]))
        break;
    }
  g_assert_cmpint (n, ==, 256 / 4);
  assert_ended (conns[n]);
  /* Another user, and the owner, are not shut out by root's share. */
  owned = connect_as (BG_TEST_USER_B, AF_INET, SOCK_STREAM, 18090);
  g_assert_true (echoes_a_byte (owned));
  close (owned);
  owned = connect_as (BG_TEST_USER_A, AF_INET6, SOCK_STREAM, 18090);
  g_assert_true (echoes_a_byte (owned));
  close (owned);
  close (conns[0]);
  /* The relay sees the end of that one before it accepts the next. */
  for (guint i = 0; i < 100; i++)
    {
      int fd = connect_to (AF_INET, SOCK_STREAM, 18090);
      if (echoes_a_byte (fd))
        {
          close (fd);
          break;
        }
      close (fd);
      g_assert_cmpuint (i, <, 99);
      g_usleep (10000);
    }
  for (int i = 1; i < n; i++)
    close (conns[i]);

  /* The owner's flow: the one socket the forward opens for its first
   * datagram. */
  owned = connect_as (BG_TEST_USER_A, AF_INET, SOCK_DGRAM, 15363);
  before_flow = sockets_of (fwd);
  udp_exchange (owned, "the owner's flow");
  with_flow = sockets_of (fwd);
  g_hash_table_iter_init (&it, with_flow);
  while (g_hash_table_iter_next (&it, (gpointer *) &inode, NULL))
    if (!g_hash_table_contains (before_flow, inode))
      {
        g_assert_null (flow);
        flow = g_strdup (inode);
      }
  g_assert_nonnull (flow);
  for (guint i = 0; i < 1300; i++)
    udp_echo (AF_INET, 15363, "one of many sources");
  after_spray = sockets_of (fwd);
  g_assert_true (g_hash_table_contains (after_spray, flow));
  udp_exchange (owned, "the owner's flow, still");
  close (owned);
  g_assert_cmpint (forward_end (fwd), ==, 0);
}

/* --ipv6 relays to the VM's IPv6 address (the stand-in guest answers
 * on both; it is the route the relay takes that this pins: with the
 * IPv4 address gone from the guest, only IPv6 can carry it). */
static void
test_forward_to_the_ipv6_address (Fixture *f, gconstpointer data)
{
  const char *args[] = { "vm", "forward", "fw", "--ipv6", "18090:7000", "15363:7000/udp", NULL };
  g_autofree char *cidr = NULL, *out = NULL, *err = NULL;
  g_autoptr(JsonNode) show = NULL;
  GPid fwd;

  g_assert_cmpint (cli (f, &out, &err, "vm", "show", "fw", "--json", NULL), ==, 0);
  show = json (out);
  g_assert_true (g_str_has_prefix (json_object_get_string_member (json_node_get_object (show), "address6"), "fd"));
  cidr = g_strdup_printf ("%s/%" G_GINT64_FORMAT, f->address,
                          json_object_get_int_member (json_node_get_object (show), "prefix"));
  MUST ("ip", "-n", f->ns, "addr", "del", cidr, "dev", "fwg0");
  fwd = forward_start (f, args);
  echo_exchange (connect_to (AF_INET, SOCK_STREAM, 18090), 100000);
  echo_exchange (connect_to (AF_INET6, SOCK_STREAM, 18090), 1000);
  udp_echo (AF_INET, 15363, "datagram to the guest's IPv6 address");
  g_assert_cmpint (forward_end (fwd), ==, 0);
}

static void
test_bad_ports_are_clear_errors (Fixture *f, gconstpointer data)
{
  g_autofree char *e1 = NULL, *e2 = NULL, *e3 = NULL, *e4 = NULL;
  struct sockaddr_in in4 = { .sin_family = AF_INET, .sin_port = htons (18090) };
  int busy = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

  in4.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  g_assert_no_errno (bind (busy, (struct sockaddr *) &in4, sizeof in4));
  g_assert_no_errno (listen (busy, 1));
  g_assert_cmpint (cli (f, NULL, &e1, "vm", "forward", "fw", "18090:7000", NULL), ==, 1);
  g_assert_nonnull (strstr (e1, "127.0.0.1:18090/tcp is in use by another program"));
  close (busy);
  /* Bad input: exit status 2, as for any usage error. */
  g_assert_cmpint (cli (f, NULL, &e2, "vm", "forward", "fw", "80:7000", NULL), ==, 2);
  g_assert_nonnull (strstr (e2, "port 80 is privileged on this host"));
  g_assert_cmpint (cli (f, NULL, &e3, "vm", "forward", "fw", "8080:70000", NULL), ==, 2);
  g_assert_nonnull (strstr (e3, "SPEC \"8080:70000\": guest port \"70000\" is not a port number"));
  g_assert_cmpint (cli (f, NULL, &e4, "vm", "forward", "fw", "8080/sctp", NULL), ==, 2);
  g_assert_nonnull (strstr (e4, "the protocol is tcp or udp"));
}

static gboolean
process_gone (gint64 pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%" G_GINT64_FORMAT "/stat", pid);
  g_autofree char *text = NULL;
  char *end;

  /* Gone, or a zombie nobody reaped yet: either way not serving. */
  if (!g_file_get_contents (path, &text, NULL, NULL) || (end = strrchr (text, ')')) == NULL)
    return TRUE;
  return end[2] == 'Z' || end[2] == 'X';
}

/* The background forwards of @vm, as --list --json gives them. */
static JsonArray *
listed (Fixture *f, const char *vm)
{
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr(JsonNode) node = NULL;

  if (cli (f, &out, &err, "vm", "forward", vm, "--list", "--json", NULL) != 0)
    g_error ("vm forward --list: %s", err);
  node = json (out);
  return json_array_ref (json_node_get_array (node));
}

static gint64
single_pid (Fixture *f, const char *vm, const char *spec, gboolean persistent)
{
  g_autoptr(JsonArray) a = listed (f, vm);
  JsonObject *o;

  g_assert_cmpuint (json_array_get_length (a), ==, 1);
  o = json_array_get_object_element (a, 0);
  g_assert_cmpstr (json_array_get_string_element (json_object_get_array_member (o, "specs"), 0), ==, spec);
  g_assert_cmpint (json_object_get_boolean_member (o, "persistent"), ==, persistent);
  return json_object_get_int_member (o, "pid");
}

static void
test_background_forwards_end_with_the_vm (Fixture *f, gconstpointer data)
{
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr(JsonArray) none = NULL;
  gint64 pid, pid2, pid3;

  /* --background: listed, serving, stopped by --stop. */
  if (cli (f, &out, &err, "vm", "forward", "fw", "18100:7000", "--background", NULL) != 0)
    g_error ("vm forward --background: %s", err);
  g_assert_nonnull (strstr (out, "Forwarding 18100:7000/tcp to fw in the background"));
  pid = single_pid (f, "fw", "18100:7000/tcp", FALSE);
  echo_exchange (connect_to (AF_INET, SOCK_STREAM, 18100), 100000);
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (cli (f, &out, NULL, "vm", "forward", "fw", "--stop", "18100:7000", NULL), ==, 0);
  g_assert_cmpstr (out, ==, "Stopped 1 forward of fw.\n");
  g_assert_true (process_gone (pid));
  none = listed (f, "fw");
  g_assert_cmpuint (json_array_get_length (none), ==, 0);

  /* The same with --json, for scripts: the pid, then the count stopped. */
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (cli (f, &out, NULL, "vm", "forward", "fw", "18103:7000", "-b", "--json", NULL), ==, 0);
  {
    g_autoptr(JsonNode) n = json (out);
    JsonObject *o = json_node_get_object (n);

    g_assert_cmpstr (json_object_get_string_member (o, "vm"), ==, "fw");
    pid = json_object_get_int_member (o, "pid");
    g_assert_cmpint (pid, ==, single_pid (f, "fw", "18103:7000/tcp", FALSE));
  }
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (cli (f, &out, NULL, "vm", "forward", "fw", "--stop", "--json", NULL), ==, 0);
  {
    g_autoptr(JsonNode) n = json (out);
    g_assert_cmpint (json_object_get_int_member (json_node_get_object (n), "stopped"), ==, 1);
  }
  g_assert_true (process_gone (pid));

  /* On every interface, however written: the warning reaches the
   * terminal of the command, not only the background child's log. */
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (cli (f, NULL, &err, "vm", "forward", "fw", "[0::0]:18104:7000", "-b", NULL), ==, 0);
  g_assert_nonnull (strstr (err, "[::]:18104:7000/tcp listens on every interface"));
  g_assert_cmpint (cli (f, NULL, NULL, "vm", "forward", "fw", "--stop", NULL), ==, 0);

  /* vm stop ends it. */
  g_assert_cmpint (cli (f, NULL, NULL, "vm", "forward", "fw", "18101:7000", "-b", NULL), ==, 0);
  pid = single_pid (f, "fw", "18101:7000/tcp", FALSE);
  g_assert_cmpint (cli (f, NULL, &err, "vm", "stop", "fw", "--force", NULL), ==, 0);
  g_assert_true (process_gone (pid));
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (cli (f, NULL, &err, "vm", "forward", "fw", "18102:7000", "-b", NULL), ==, 1);
  g_assert_nonnull (strstr (err, "start it with 'banger vm start fw'"));

  /* vm up --forward: started with the VM, again at every start, ended by
   * vm stop and vm rm. */
  g_clear_pointer (&err, g_free);
  if (cli (f, NULL, &err, "vm", "up", "fw2", "--no-wait", "--forward", "18110:22", "-p", "18111:53/udp",
           "-p", "0.0.0.0:18112:22", NULL) != 0)
    g_error ("vm up --forward: %s", err);
  g_assert_nonnull (strstr (err, "0.0.0.0:18112:22/tcp listens on every interface"));
  {
    g_autoptr(JsonArray) a = listed (f, "fw2");
    JsonObject *o;
    JsonArray *specs;

    g_assert_cmpuint (json_array_get_length (a), ==, 1);
    o = json_array_get_object_element (a, 0);
    specs = json_object_get_array_member (o, "specs");
    g_assert_cmpuint (json_array_get_length (specs), ==, 3);
    g_assert_cmpstr (json_array_get_string_element (specs, 0), ==, "18110:22/tcp");
    g_assert_cmpstr (json_array_get_string_element (specs, 1), ==, "18111:53/udp");
    g_assert_cmpstr (json_array_get_string_element (specs, 2), ==, "0.0.0.0:18112:22/tcp");
    g_assert_true (json_object_get_boolean_member (o, "persistent"));
    pid2 = json_object_get_int_member (o, "pid");
  }
  g_assert_cmpint (cli (f, NULL, NULL, "vm", "stop", "fw2", "--force", NULL), ==, 0);
  g_assert_true (process_gone (pid2));
  g_assert_cmpint (cli (f, NULL, NULL, "vm", "start", "fw2", "--no-wait", NULL), ==, 0);
  {
    g_autoptr(JsonArray) a = listed (f, "fw2");
    g_assert_cmpuint (json_array_get_length (a), ==, 1);
    pid3 = json_object_get_int_member (json_array_get_object_element (a, 0), "pid");
    g_assert_cmpint (pid3, !=, pid2);
  }
  g_assert_cmpint (cli (f, NULL, NULL, "vm", "rm", "fw2", "--force", NULL), ==, 0);
  g_assert_true (process_gone (pid3));
}

/* The relay's UDP flows toward the guest's @port: its connected sockets
 * there, as /proc/net/udp lists them (this network namespace's). */
static guint
udp_flows_to (const char *address, guint16 port)
{
  g_autofree char *text = NULL;
  g_autofree char *want = NULL;
  struct in_addr a;
  guint n = 0;

  g_assert_cmpint (inet_pton (AF_INET, address, &a), ==, 1);
  /* The address as the kernel prints it: the 32 bits in host order. */
  want = g_strdup_printf (" %08X:%04X ", (guint) a.s_addr, port);
  g_assert_true (g_file_get_contents ("/proc/net/udp", &text, NULL, NULL));
  for (const char *p = text; (p = strstr (p, want)) != NULL; p++)
    n++;
  return n;
}

/* A UDP flow idle for --udp-idle seconds is closed (its socket toward
 * the guest gone); a new datagram from the same client opens another. */
static void
test_udp_flows_expire (Fixture *f, gconstpointer data)
{
  guint idle = bg_test_timeout (2);
  g_autofree char *idle_arg = g_strdup_printf ("%u", idle);
  const char *args[] = { "vm", "forward", "fw", "15354:7000/udp", "--udp-idle", idle_arg, NULL };
  GPid fwd = forward_start (f, args);
  gint64 sent, gone_at = 0;

  g_assert_cmpuint (udp_flows_to (f->address, 7000), ==, 0);
  udp_echo (AF_INET, 15354, "one flow");
  sent = g_get_monotonic_time ();
  g_assert_cmpuint (udp_flows_to (f->address, 7000), ==, 1);
  /* Gone within the idle time and a sweep (half of it), not before. */
  for (gint64 end = sent + (gint64) (2 * idle + bg_test_timeout (5)) * G_USEC_PER_SEC; !gone_at;)
    {
      if (udp_flows_to (f->address, 7000) == 0)
        gone_at = g_get_monotonic_time ();
      else if (g_get_monotonic_time () > end)
        g_error ("the UDP flow was not closed after %u s idle", idle);
      else
        g_usleep (100 * 1000);
    }
  g_assert_cmpint (gone_at - sent, >=, (gint64) idle * G_USEC_PER_SEC);
  /* The forward still serves: a new flow. */
  udp_echo (AF_INET, 15354, "another flow");
  g_assert_cmpuint (udp_flows_to (f->address, 7000), ==, 1);
  g_assert_cmpint (forward_end (fwd), ==, 0);
}

static void
add_tests (void)
{
#define ADD(path, fn) g_test_add (path, Fixture, NULL, setup, fn, teardown)
  ADD ("/forward/tcp-and-udp-both-ways", test_tcp_and_udp_both_ways);
  ADD ("/forward/udp-flows-expire", test_udp_flows_expire);
  ADD ("/forward/to-the-ipv6-address", test_forward_to_the_ipv6_address);
  ADD ("/forward/bad-ports-are-clear-errors", test_bad_ports_are_clear_errors);
  ADD ("/forward/background-forwards-end-with-the-vm", test_background_forwards_end_with_the_vm);
  ADD ("/forward/many-clients-cannot-starve-a-forward", test_many_clients_cannot_starve_a_forward);
}

int
main (int argc, char **argv)
{
  return bg_harness_main (&argc, &argv, add_tests);
}
