/* The network steps, for real, inside a fresh network namespace (see
 * harness.c): bridge, taps, forwarding, NAT and names. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <dlfcn.h>
#include <netdb.h>
#include <nss.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "harness.h"

#define E_INVALID   "org.banger.Mechanism1.Error.InvalidArgument"
#define E_NOT_OWNER "org.banger.Mechanism1.Error.NotOwner"
#define E_NOT_FOUND "org.banger.Mechanism1.Error.NotFound"
#define E_BUSY      "org.banger.Mechanism1.Error.Busy"
#define E_EXISTS    "org.banger.Mechanism1.Error.Exists"

typedef struct {
  BgHarness *h;
} Fixture;

typedef struct {
  char   *tap;
  char   *address;
  char   *gateway;
  char   *mac;
  guint32 prefix;
  char   *address6;   /* NULL without IPv6 */
  char   *gateway6;
} Tap;

static void
tap_free (Tap *t)
{
  g_free (t->tap);
  g_free (t->address);
  g_free (t->gateway);
  g_free (t->mac);
  g_free (t->address6);
  g_free (t->gateway6);
  g_free (t);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Tap, tap_free)

static void
setup (Fixture *f, gconstpointer data)
{
  f->h = bg_harness_start (60);
  bg_harness_set_group_rule (f->h, TRUE);
}

static void
teardown (Fixture *f, gconstpointer data)
{
  bg_harness_stop (f->h);
}

static char *
run (const char *first, ...)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  const char *a;
  char *out = NULL;
  int status;
  va_list ap;

  va_start (ap, first);
  for (a = first; a != NULL; a = va_arg (ap, const char *))
    g_ptr_array_add (argv, (char *) a);
  va_end (ap);
  g_ptr_array_add (argv, NULL);
  bg_harness_run_argv ((const char * const *) argv->pdata, &out, &status);
  if (status != 0)
    g_clear_pointer (&out, g_free);
  return out;
}

/* Test setup that must work, or the test proves nothing. */
#define must(...) G_STMT_START { \
    char *_out = run (__VA_ARGS__); \
    if (_out == NULL) \
      g_error ("test setup failed: %s", #__VA_ARGS__); \
    g_free (_out); \
  } G_STMT_END

static gboolean
link_exists (const char *name)
{
  g_autofree char *path = g_strdup_printf ("/sys/class/net/%s", name);
  return g_file_test (path, G_FILE_TEST_EXISTS);
}

static char *
sys_read (const char *ifname, const char *attr)
{
  g_autofree char *path = g_strdup_printf ("/sys/class/net/%s/%s", ifname, attr);
  char *text = NULL;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return NULL;
  return g_strstrip (text);
}

static char *
master_of (const char *ifname)
{
  g_autofree char *path = g_strdup_printf ("/sys/class/net/%s/master", ifname);
  g_autofree char *target = g_file_read_link (path, NULL);
  return target ? g_path_get_basename (target) : NULL;
}

static Tap *
create_tap (Fixture *f, const char *user, const char *vm)
{
  g_autofree char *args = g_strdup_printf ("('%s', @a{sv} {})", vm);
  g_autoptr(BgCallResult) r = bg_harness_call (f->h, user, "CreateTap", args, NULL);
  g_autofree char *prefix = NULL;
  Tap *t = g_new0 (Tap, 1);

  bg_assert_call_ok (r);
  t->tap = bg_call_result_lookup (r, "tap");
  t->address = bg_call_result_lookup (r, "address");
  t->gateway = bg_call_result_lookup (r, "gateway");
  t->mac = bg_call_result_lookup (r, "mac");
  t->address6 = bg_call_result_lookup (r, "address6");
  t->gateway6 = bg_call_result_lookup (r, "gateway6");
  prefix = bg_call_result_lookup (r, "prefix");
  t->prefix = atoi (prefix);
  return t;
}

static BgCallResult *
delete_tap (Fixture *f, const char *user, const char *tap)
{
  g_autofree char *args = g_strdup_printf ("('%s',)", tap);
  return bg_harness_call (f->h, user, "DeleteTap", args, NULL);
}

/* `ip -j addr show`, without what the kernel changes on its own between
 * two reads: an IPv6 address stays "tentative" until duplicate address
 * detection ends, a second or so after the link comes up. */
static char *
addresses_now (void)
{
  g_autofree char *text = run ("ip", "-j", "addr", "show", NULL);
  g_auto(GStrv) parts = g_strsplit (text, "\"tentative\":true,", -1);

  return g_strjoinv ("", parts);
}

static void
test_ensure_network_is_complete_and_idempotent (Fixture *f, gconstpointer data)
{
  g_autoptr(BgCallResult) first = bg_harness_call (f->h, BG_TEST_USER_A, "EnsureNetwork", "(@a{sv} {},)", NULL);
  g_autoptr(BgCallResult) second = NULL;
  g_autofree char *ruleset1 = NULL, *ruleset2 = NULL, *links1 = NULL, *links2 = NULL;
  g_autofree char *addrs = NULL, *fwd = NULL, *table = NULL;

  bg_assert_call_ok (first);
  g_assert_nonnull (strstr (first->reply, "'bridge': <'banger0'>"));
  g_assert_nonnull (strstr (first->reply, "'subnet': <'172.30.0.0/24'>"));
  g_assert_nonnull (strstr (first->reply, "'gateway': <'172.30.0.1'>"));
  g_assert_nonnull (strstr (first->reply, "'nat': <true>"));

  g_assert_true (link_exists ("banger0"));
  addrs = run ("ip", "-o", "-4", "addr", "show", "dev", "banger0", NULL);
  g_assert_nonnull (strstr (addrs, "172.30.0.1/24"));
  fwd = sys_read ("banger0", "operstate");
  g_assert_nonnull (fwd);
  g_clear_pointer (&fwd, g_free);
  g_file_get_contents ("/proc/sys/net/ipv4/conf/banger0/forwarding", &fwd, NULL, NULL);
  g_assert_cmpstr (g_strstrip (fwd), ==, "1");
  table = run ("nft", "list", "table", "ip", "banger", NULL);
  g_assert_nonnull (table);
  g_assert_nonnull (strstr (table, "ip saddr 172.30.0.0/24 oifname != \"banger0\" masquerade"));
  /* IPv6: a ULA /64 (fd00::/8), ::1 of it on the bridge, NAT66. */
  g_assert_nonnull (strstr (first->reply, "'ipv6': <true>"));
  g_assert_nonnull (strstr (first->reply, "'subnet6': <'fd"));
  {
    g_autofree char *subnet6 = bg_call_result_lookup (first, "subnet6");
    g_autofree char *gateway6 = bg_call_result_lookup (first, "gateway6");
    g_autofree char *addrs6 = run ("ip", "-o", "-6", "addr", "show", "dev", "banger0", "scope", "global", NULL);
    g_autofree char *table6 = run ("nft", "list", "table", "ip6", "banger", NULL);
    g_autofree char *kept = NULL, *want = g_strdup_printf ("ip6 saddr %s oifname != \"banger0\" masquerade", subnet6);
    g_autofree char *kept_path = g_build_filename (f->h->tmp, "state", "subnet6", NULL);

    g_assert_true (g_str_has_suffix (subnet6, "::/64"));
    g_assert_true (g_str_has_suffix (gateway6, "::1"));
    g_assert_nonnull (strstr (addrs6, gateway6));
    g_assert_nonnull (table6);
    g_assert_nonnull (strstr (table6, want));
    /* Chosen once, kept in the mechanism's state. */
    g_assert_true (g_file_get_contents (kept_path, &kept, NULL, NULL));
    g_assert_cmpstr (g_strstrip (kept), ==, subnet6);
  }

  ruleset1 = run ("nft", "-j", "list", "ruleset", NULL);
  links1 = addresses_now ();
  second = bg_harness_call (f->h, BG_TEST_USER_A, "EnsureNetwork", "(@a{sv} {},)", NULL);
  bg_assert_call_ok (second);
  ruleset2 = run ("nft", "-j", "list", "ruleset", NULL);
  links2 = addresses_now ();
  /* Nothing changed: same rules (same handles), same links and addresses. */
  g_assert_cmpstr (ruleset1, ==, ruleset2);
  g_assert_cmpstr (links1, ==, links2);
  g_assert_cmpstr (first->reply, ==, second->reply);
}

static void
test_tap_is_owned_by_caller_and_attached (Fixture *f, gconstpointer data)
{
  g_autoptr(Tap) t = create_tap (f, BG_TEST_USER_A, "owned");
  g_autofree char *owner = sys_read (t->tap, "owner");
  g_autofree char *master = master_of (t->tap);
  g_autofree char *flags = sys_read (t->tap, "flags");
  g_autofree char *node_a = g_build_filename (f->h->run_dir, "..", "tun-a", NULL);
  g_autofree char *node_b = g_build_filename (f->h->run_dir, "..", "tun-b", NULL);
  g_autofree char *as_a = NULL, *as_b = NULL;
  g_autofree char *uid_a = g_strdup_printf ("%u", bg_harness_uid (BG_TEST_USER_A));
  g_autoptr(Tap) again = NULL;

  g_assert_true (g_str_has_prefix (t->tap, "bg-"));
  g_assert_cmpuint (strlen (t->tap), <=, 15);
  g_assert_cmpstr (owner, ==, uid_a);
  g_assert_cmpstr (master, ==, "banger0");
  g_assert_true (strtoul (flags, NULL, 16) & 0x1); /* IFF_UP */
  g_assert_true (g_str_has_prefix (t->address, "172.30.0."));
  g_assert_cmpstr (t->gateway, ==, "172.30.0.1");
  g_assert_cmpuint (t->prefix, ==, 24);
  g_assert_true (g_str_has_prefix (t->mac, "02:"));

  /* There is no udev here and /dev/net/tun is 0600 root: give each user a
   * private node of its own, as a jail does. */
  g_assert_no_errno (mknod (node_a, S_IFCHR | 0600, makedev (10, 200)));
  g_assert_no_errno (chown (node_a, bg_harness_uid (BG_TEST_USER_A), 0));
  g_assert_no_errno (mknod (node_b, S_IFCHR | 0600, makedev (10, 200)));
  g_assert_no_errno (chown (node_b, bg_harness_uid (BG_TEST_USER_B), 0));
  as_a = run (g_getenv ("BANGER_TEST_NET"), "open-tap", BG_TEST_USER_A, node_a, t->tap, NULL);
  as_b = run (g_getenv ("BANGER_TEST_NET"), "open-tap", BG_TEST_USER_B, node_b, t->tap, NULL);
  g_assert_cmpstr (as_a, ==, "OK\n");
  g_assert_cmpstr (as_b, ==, "TUNSETIFF: Operation not permitted\n");

  /* Asking again for the same VM gives the same tap. */
  again = create_tap (f, BG_TEST_USER_A, "owned");
  g_assert_cmpstr (again->tap, ==, t->tap);
  g_assert_cmpstr (again->address, ==, t->address);
  g_assert_cmpstr (again->mac, ==, t->mac);
}

static void
test_fifty_taps_get_distinct_addresses (Fixture *f, gconstpointer data)
{
  g_autoptr(GHashTable) addresses = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GHashTable) macs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GHashTable) taps = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  for (guint i = 0; i < 50; i++)
    {
      g_autofree char *vm = g_strdup_printf ("vm%u", i);
      g_autoptr(Tap) t = create_tap (f, i % 2 ? BG_TEST_USER_A : BG_TEST_USER_B, vm);

      g_assert_false (g_hash_table_contains (addresses, t->address));
      g_assert_false (g_hash_table_contains (macs, t->mac));
      g_assert_false (g_hash_table_contains (taps, t->tap));
      g_hash_table_add (addresses, g_strdup (t->address));
      g_hash_table_add (macs, g_strdup (t->mac));
      g_hash_table_add (taps, g_strdup (t->tap));
      g_assert_true (link_exists (t->tap));
    }
  g_assert_cmpuint (g_hash_table_size (addresses), ==, 50);
}

static void
test_pool_exhaustion_is_a_clear_error (Fixture *f, gconstpointer data)
{
  g_autoptr(BgCallResult) full = NULL;

  /* A /28 holds 13 VMs: .2 to .14 (.1 gateway, .15 broadcast). */
  bg_harness_write_config (f->h, "network.conf", "[network]\nsubnet=10.99.0.16/28\n");
  for (guint i = 0; i < 13; i++)
    {
      g_autofree char *vm = g_strdup_printf ("small%u", i);
      g_autoptr(Tap) t = create_tap (f, BG_TEST_USER_A, vm);
      g_assert_true (g_str_has_prefix (t->address, "10.99.0."));
    }
  full = bg_harness_call (f->h, BG_TEST_USER_A, "CreateTap", "(\'one-too-many\', @a{sv} {})", NULL);
  bg_assert_call_error (full, E_BUSY, "no free address left in 10.99.0.16/28");
  /* And it left nothing behind. */
  g_assert_false (g_file_test ("/sys/class/net/bg-one-too-many", G_FILE_TEST_EXISTS));
}

static int
netns_pid_spawn (const char *ns, const char * const *cmd, int *stdout_fd)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  GPid pid;

  g_ptr_array_add (argv, "ip");
  g_ptr_array_add (argv, "netns");
  g_ptr_array_add (argv, "exec");
  g_ptr_array_add (argv, (char *) ns);
  for (guint i = 0; cmd[i]; i++)
    g_ptr_array_add (argv, (char *) cmd[i]);
  g_ptr_array_add (argv, NULL);
  if (!g_spawn_async_with_pipes (NULL, (char **) argv->pdata, NULL,
                                 G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &pid,
                                 NULL, stdout_fd, NULL, &error))
    g_error ("%s", error->message);
  return pid;
}

/* The "outside": a namespace @far behind a veth that stands in for the
 * uplink (up0), with the host's default route through it. */
static void
far_side_add (const char *far)
{
  must ("ip", "netns", "add", far, NULL);
  must ("ip", "link", "add", "up0", "type", "veth", "peer", "name", "far0", "netns", far, NULL);
  must ("ip", "addr", "add", "198.51.100.2/24", "dev", "up0", NULL);
  must ("ip", "link", "set", "up0", "up", NULL);
  must ("ip", "-n", far, "addr", "add", "198.51.100.1/24", "dev", "far0", NULL);
  must ("ip", "-n", far, "link", "set", "far0", "up", NULL);
  must ("ip", "-n", far, "link", "set", "lo", "up", NULL);
  must ("ip", "route", "add", "default", "via", "198.51.100.1", NULL);
}

/* The stand-in guest's side in namespace @guest, its veth gv0: the
 * address banger gave @t's VM, up, the default route through the bridge. */
static void
guest_side_up (const char *guest, const Tap *t)
{
  g_autofree char *addr = g_strdup_printf ("%s/%u", t->address, t->prefix);

  must ("ip", "-n", guest, "addr", "add", addr, "dev", "gv0", NULL);
  must ("ip", "-n", guest, "link", "set", "gv0", "up", NULL);
  must ("ip", "-n", guest, "route", "add", "default", "via", t->gateway, NULL);
}

/* A TCP connection from namespace @guest to a server in @far (behind
 * far_side_add's uplink) completes, and the server saw the uplink's
 * address: the guest's was masqueraded. */
static void
assert_far_side_sees_the_uplink (const char *far, const char *guest)
{
  const char *serve[] = { g_getenv ("BANGER_TEST_NET"), "serve", "7777", NULL };
  const char *cmd[] = { "ip", "netns", "exec", guest, g_getenv ("BANGER_TEST_NET"), "connect",
                        "198.51.100.1", "7777", NULL };
  g_autofree char *seen = NULL;
  char line[64] = { 0 };
  int out_fd, status;
  GPid server;

  server = netns_pid_spawn (far, serve, &out_fd);
  g_assert_cmpint (read (out_fd, line, sizeof line - 1), >, 0);
  g_assert_cmpstr (line, ==, "listening\n");
  close (out_fd);
  bg_harness_run_argv (cmd, &seen, &status);
  waitpid (server, NULL, 0);
  g_assert_cmpint (status, ==, 0);
  g_assert_cmpstr (seen, ==, "198.51.100.2\n");
}

static void
test_masquerade_rewrites_source (Fixture *f, gconstpointer data)
{
  g_autofree char *far = g_strdup_printf ("bgt%d-far", bg_harness_run_id ());
  g_autofree char *guest = g_strdup_printf ("bgt%d-guest", bg_harness_run_id ());
  g_autoptr(Tap) t = NULL;
  g_autoptr(BgCallResult) ensure = NULL;

  far_side_add (far);
  must ("ip", "netns", "add", guest, NULL);

  ensure = bg_harness_call (f->h, BG_TEST_USER_A, "EnsureNetwork", "(@a{sv} {},)", NULL);
  bg_assert_call_ok (ensure);
  g_assert_nonnull (strstr (ensure->reply, "'uplink': <'up0'>"));
  {
    g_autofree char *fwd = NULL;
    g_file_get_contents ("/proc/sys/net/ipv4/conf/up0/forwarding", &fwd, NULL, NULL);
    g_assert_cmpstr (g_strstrip (fwd), ==, "1");
  }

  /* The "guest": a namespace attached to the bridge through a veth (a
   * tap-like device), using the address banger allocated for a VM. */
  t = create_tap (f, BG_TEST_USER_A, "guest");
  must ("ip", "link", "add", "gvh", "type", "veth", "peer", "name", "gv0", "netns", guest, NULL);
  must ("ip", "link", "set", "gvh", "master", "banger0", "up", NULL);
  guest_side_up (guest, t);

  assert_far_side_sees_the_uplink (far, guest);

  must ("ip", "netns", "del", far, NULL);
  must ("ip", "netns", "del", guest, NULL);
}

typedef enum nss_status (*ByName2) (const char *, int, struct hostent *, char *, size_t, int *, int *);
typedef enum nss_status (*ByName4) (const char *, struct gaih_addrtuple **, char *, size_t, int *, int *,
                                    int32_t *);

static char *
nss_lookup (const char *name)
{
  void *module = dlopen (g_getenv ("BANGER_NSS"), RTLD_NOW);
  ByName2 by2 = dlsym (module, "_nss_banger_gethostbyname2_r");
  ByName4 by4 = dlsym (module, "_nss_banger_gethostbyname4_r");
  struct hostent he;
  struct gaih_addrtuple *pat = NULL;
  char buf[1024], buf4[1024], ip[INET_ADDRSTRLEN];
  int err, herr;
  int32_t ttl;
  enum nss_status s2, s4;

  g_assert_nonnull (by2);
  g_assert_nonnull (by4);
  s2 = by2 (name, AF_INET, &he, buf, sizeof buf, &err, &herr);
  s4 = by4 (name, &pat, buf4, sizeof buf4, &err, &herr, &ttl);
  g_assert_cmpint (s2, ==, s4);
  if (s2 != NSS_STATUS_SUCCESS)
    return NULL;
  g_assert_cmpint (he.h_addrtype, ==, AF_INET);
  g_assert_cmpint (memcmp (he.h_addr_list[0], pat->addr, 4), ==, 0);
  return g_strdup (inet_ntop (AF_INET, he.h_addr_list[0], ip, sizeof ip));
}

/* @name's AAAA answer from the module, or NULL. */
static char *
nss_lookup6 (const char *name)
{
  void *module = dlopen (g_getenv ("BANGER_NSS"), RTLD_NOW);
  ByName2 by2 = dlsym (module, "_nss_banger_gethostbyname2_r");
  struct hostent he;
  char buf[1024], ip[INET6_ADDRSTRLEN];
  int err, herr;

  g_assert_nonnull (by2);
  if (by2 (name, AF_INET6, &he, buf, sizeof buf, &err, &herr) != NSS_STATUS_SUCCESS)
    return NULL;
  g_assert_cmpint (he.h_addrtype, ==, AF_INET6);
  return g_strdup (inet_ntop (AF_INET6, he.h_addr_list[0], ip, sizeof ip));
}

/* Whether @user may make a user namespace (the kernel may allow none:
 * user.max_user_namespaces, or an LSM). */
static gboolean
userns_allowed (const char *user)
{
  struct passwd *pw = getpwnam (user);
  int status;
  pid_t child = fork ();

  g_assert_cmpint (child, >=, 0);
  if (child == 0)
    {
      if (setresgid (pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 || setresuid (pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0)
        _exit (2);
      _exit (unshare (CLONE_NEWUSER) == 0 ? 0 : 1);
    }
  g_assert_cmpint (waitpid (child, &status, 0), ==, child);
  return WIFEXITED (status) && WEXITSTATUS (status) == 0;
}

/* nss_lookup() (@af AF_INET) or nss_lookup6() (AF_INET6) in a child
 * that has become @user and, with @userns, then made a user namespace
 * of its own where it is root, as `unshare -r` does. */
static char *
nss_lookup_in (const char *user, const char *name, int af, gboolean userns)
{
  struct passwd *pw = getpwnam (user);
  char buf[64] = { 0 };
  int fds[2], status;
  ssize_t n;
  pid_t child;

  g_assert_no_errno (pipe (fds));
  child = fork ();
  g_assert_cmpint (child, >=, 0);
  if (child == 0)
    {
      g_autofree char *found = NULL;

      close (fds[0]);
      if (setresgid (pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 || setresuid (pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0)
        _exit (2);
      if (userns)
        {
          g_autofree char *map = g_strdup_printf ("0 %u 1\n", (guint) pw->pw_uid);
          int fd;

          /* Dumpable again (setresuid made /proc/self root's), so
           * that the process may write its own uid_map. */
          if (prctl (PR_SET_DUMPABLE, 1, 0, 0, 0) < 0 || unshare (CLONE_NEWUSER) < 0)
            _exit (4);
          if ((fd = open ("/proc/self/uid_map", O_WRONLY | O_CLOEXEC)) < 0 ||
              write (fd, map, strlen (map)) != (ssize_t) strlen (map) || geteuid () != 0)
            _exit (5);
          close (fd);
        }
      found = af == AF_INET6 ? nss_lookup6 (name) : nss_lookup (name);
      if (found != NULL && write (fds[1], found, strlen (found)) < 0)
        _exit (3);
      _exit (0);
    }
  close (fds[1]);
  n = read (fds[0], buf, sizeof buf - 1);
  close (fds[0]);
  g_assert_cmpint (waitpid (child, &status, 0), ==, child);
  g_assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
  return n > 0 ? g_strdup (buf) : NULL;
}

static char *
nss_lookup_as (const char *user, const char *name, int af)
{
  return nss_lookup_in (user, name, af, FALSE);
}

/* NAME.banger answers its owner and root, nobody else: another user can
 * neither see it nor, once it is gone and the name is theirs, be reached
 * through it by the first user. */
static void
test_names_answer_only_their_owner (Fixture *f, gconstpointer data)
{
  g_autofree char *hosts = g_build_filename (f->h->run_dir, "hosts", NULL);
  g_autoptr(Tap) a = NULL, b = NULL;
  g_autoptr(BgCallResult) del = NULL;
  g_autofree char *as_a = NULL, *as_b = NULL, *as_root = NULL, *a_after = NULL, *b_after = NULL;
  g_autofree char *as_a6 = NULL, *as_b6 = NULL, *as_root6 = NULL;

  g_setenv ("BANGER_NSS_HOSTS", hosts, TRUE);
  a = create_tap (f, BG_TEST_USER_A, "db");
  as_a = nss_lookup_as (BG_TEST_USER_A, "db.banger", AF_INET);
  as_b = nss_lookup_as (BG_TEST_USER_B, "db.banger", AF_INET);
  as_root = nss_lookup ("db.banger");
  g_assert_cmpstr (as_a, ==, a->address);
  g_assert_null (as_b);
  g_assert_cmpstr (as_root, ==, a->address);
  /* The AAAA answer the same: its line carries the owner too. */
  g_assert_nonnull (a->address6);
  as_a6 = nss_lookup_as (BG_TEST_USER_A, "db.banger", AF_INET6);
  as_b6 = nss_lookup_as (BG_TEST_USER_B, "db.banger", AF_INET6);
  as_root6 = nss_lookup6 ("db.banger");
  g_assert_cmpstr (as_a6, ==, a->address6);
  g_assert_null (as_b6);
  g_assert_cmpstr (as_root6, ==, a->address6);

  del = delete_tap (f, BG_TEST_USER_A, a->tap);
  bg_assert_call_ok (del);
  b = create_tap (f, BG_TEST_USER_B, "db");
  a_after = nss_lookup_as (BG_TEST_USER_A, "db.banger", AF_INET);
  b_after = nss_lookup_as (BG_TEST_USER_B, "db.banger", AF_INET);
  g_assert_null (a_after);
  g_assert_cmpstr (b_after, ==, b->address);
}

/* A user's own process in a user namespace where it is root (`unshare
 * -r`) is not root: it gets no answer for another user's name, nor for
 * its own (a uid there is not the host's), while root still does. */
static void
test_names_unanswered_in_a_user_namespace (Fixture *f, gconstpointer data)
{
  g_autofree char *hosts = g_build_filename (f->h->run_dir, "hosts", NULL);
  g_autoptr(Tap) b = NULL;
  g_autofree char *as_a = NULL, *as_a6 = NULL, *as_b = NULL, *as_root = NULL;

  if (!userns_allowed (BG_TEST_USER_A) || !userns_allowed (BG_TEST_USER_B))
    {
      g_test_skip ("this kernel lets the test users make no user namespace (user.max_user_namespaces, or an "
                   "LSM), so no process of theirs can be root in one");
      return;
    }
  g_setenv ("BANGER_NSS_HOSTS", hosts, TRUE);
  b = create_tap (f, BG_TEST_USER_B, "theirs");
  as_a = nss_lookup_in (BG_TEST_USER_A, "theirs.banger", AF_INET, TRUE);
  as_a6 = nss_lookup_in (BG_TEST_USER_A, "theirs.banger", AF_INET6, TRUE);
  as_b = nss_lookup_in (BG_TEST_USER_B, "theirs.banger", AF_INET, TRUE);
  as_root = nss_lookup ("theirs.banger");
  g_assert_null (as_a);
  g_assert_null (as_a6);
  g_assert_null (as_b);
  g_assert_cmpstr (as_root, ==, b->address);
}

static void
test_names_resolve_while_tap_exists (Fixture *f, gconstpointer data)
{
  g_autofree char *hosts = g_build_filename (f->h->run_dir, "hosts", NULL);
  g_autoptr(Tap) t = NULL;
  g_autoptr(BgCallResult) del = NULL;
  g_autofree char *found = NULL, *upper = NULL, *gone = NULL, *other = NULL;
  struct stat st;

  g_setenv ("BANGER_NSS_HOSTS", hosts, TRUE);
  g_assert_null (nss_lookup ("named.banger"));

  t = create_tap (f, BG_TEST_USER_A, "named");
  found = nss_lookup ("named.banger");
  g_assert_cmpstr (found, ==, t->address);
  upper = nss_lookup ("NAMED.Banger");
  g_assert_cmpstr (upper, ==, t->address);
  other = nss_lookup ("unnamed.banger");
  g_assert_null (other);
  /* Readable by every process that resolves names; written only by root. */
  g_assert_no_errno (stat (hosts, &st));
  g_assert_cmpuint (st.st_mode & 0777, ==, 0644);
  g_assert_cmpuint (st.st_uid, ==, 0);

  del = delete_tap (f, BG_TEST_USER_A, t->tap);
  bg_assert_call_ok (del);
  gone = nss_lookup ("named.banger");
  g_assert_null (gone);
  g_assert_false (link_exists (t->tap));
}

static void
test_delete_tap_errors (Fixture *f, gconstpointer data)
{
  g_autoptr(Tap) t = create_tap (f, BG_TEST_USER_A, "mine");
  g_autoptr(BgCallResult) other = delete_tap (f, BG_TEST_USER_B, t->tap);
  g_autoptr(BgCallResult) missing = delete_tap (f, BG_TEST_USER_A, "bg-123456789abc");
  g_autoptr(BgCallResult) taken = bg_harness_call (f->h, BG_TEST_USER_B, "CreateTap", "(\'mine\', @a{sv} {})", NULL);
  const char *bad[] = { "eth0", "banger0", "../x", "bg-0123456789abcdef", "" };

  bg_assert_call_error (other, E_NOT_OWNER, NULL);
  g_assert_true (link_exists (t->tap));
  bg_assert_call_error (missing, E_NOT_FOUND, NULL);
  /* mine.banger can name only one VM. */
  bg_assert_call_error (taken, E_EXISTS, "vm_name: another user's VM");
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(BgCallResult) r = delete_tap (f, BG_TEST_USER_A, bad[i]);
      bg_assert_call_error (r, E_INVALID, "tap: ");
    }
}

static void
crash_at (Fixture *f, const char *step)
{
  g_autofree char *path = g_build_filename (f->h->run_dir, "crash-at", NULL);
  g_assert_true (g_file_set_contents (path, step, -1, NULL));
}

static void
test_crash_between_tap_and_registry_leaves_nothing (Fixture *f, gconstpointer data)
{
  const char *steps[] = { "create-tap-recorded", "create-tap-created" };

  if (g_getenv ("BANGER_TEST_HOOKS") == NULL)
    {
      g_test_skip ("built without -Dtest_hooks=true, so the mechanism cannot be told where to crash");
      return;
    }

  for (guint i = 0; i < G_N_ELEMENTS (steps); i++)
    {
      g_autoptr(BgCallResult) ensure = bg_harness_call (f->h, BG_TEST_USER_A, "EnsureNetwork", "(@a{sv} {},)", NULL);
      g_autoptr(BgCallResult) crashed = NULL;
      g_autoptr(BgCallResult) list = NULL;
      g_autofree char *vm = g_strdup_printf ("crash%u", i);
      g_autofree char *args = g_strdup_printf ("('%s', @a{sv} {})", vm);
      g_autofree char *links = NULL;

      bg_assert_call_ok (ensure);
      crash_at (f, steps[i]);
      crashed = bg_harness_call (f->h, BG_TEST_USER_A, "CreateTap", args, NULL);
      g_assert_false (crashed->ok);
      g_assert_true (bg_harness_wait_name_gone (f->h, 20));

      /* The next call starts a fresh mechanism, which reconciles. */
      list = bg_harness_call (f->h, BG_TEST_USER_A, "ListResources", "({'kind': <'tap'>},)", NULL);
      bg_assert_call_ok (list);
      g_assert_cmpstr (list->reply, ==, "(@a(ssutsa{sv}) [],)");
      links = run ("ip", "-o", "link", "show", NULL);
      g_assert_null (strstr (links, "bg-"));
    }
}

static void
test_subnet_clash_is_detected (Fixture *f, gconstpointer data)
{
  g_autoptr(BgCallResult) r = NULL;

  /* Any device with a route will do (this kernel has no dummy driver). */
  must ("ip", "link", "add", "clash0", "type", "bridge", NULL);
  must ("ip", "addr", "add", "10.77.0.1/16", "dev", "clash0", NULL);
  must ("ip", "link", "set", "clash0", "up", NULL);
  bg_harness_write_config (f->h, "network.conf", "[network]\nsubnet=10.77.3.0/24\n");
  r = bg_harness_call (f->h, NULL, "EnsureNetwork", "(@a{sv} {},)", NULL);
  bg_assert_call_error (r, E_EXISTS, "clashes with the route 10.77.0.0/16 on clash0");
  g_assert_false (link_exists ("banger0"));
}

static void
test_teardown_only_when_no_taps_remain (Fixture *f, gconstpointer data)
{
  g_autoptr(Tap) t = create_tap (f, BG_TEST_USER_A, "last");
  g_autoptr(BgCallResult) busy = bg_harness_call (f->h, NULL, "TeardownNetwork", NULL, NULL);
  g_autoptr(BgCallResult) user = bg_harness_call (f->h, BG_TEST_USER_A, "TeardownNetwork", NULL, NULL);
  g_autoptr(BgCallResult) del = NULL;
  g_autoptr(BgCallResult) done = NULL;
  g_autofree char *table = NULL;

  bg_assert_call_error (user, "org.banger.Mechanism1.Error.NotAuthorized", "org.banger.admin");
  bg_assert_call_error (busy, E_BUSY, "1 tap");
  /* Deleting the last tap leaves the bridge for others. */
  del = delete_tap (f, BG_TEST_USER_A, t->tap);
  bg_assert_call_ok (del);
  g_assert_true (link_exists ("banger0"));

  done = bg_harness_call (f->h, NULL, "TeardownNetwork", NULL, NULL);
  bg_assert_call_ok (done);
  g_assert_false (link_exists ("banger0"));
  table = run ("nft", "list", "table", "ip", "banger", NULL);
  g_assert_null (table);
  g_clear_pointer (&table, g_free);
  table = run ("nft", "list", "table", "ip6", "banger", NULL);
  g_assert_null (table);
}

static void
test_cli_system_network_shows_taps (Fixture *f, gconstpointer data)
{
  g_autoptr(Tap) t = create_tap (f, BG_TEST_USER_A, "shown");
  g_autoptr(Tap) other = create_tap (f, BG_TEST_USER_B, "hidden");
  g_autofree char *out = NULL, *err = NULL, *text = NULL, *err2 = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  JsonObject *o;
  JsonArray *taps;

  g_assert_cmpint (bg_harness_run_cli (f->h, BG_TEST_USER_A, &out, &err, "system", "network", "--json", NULL), ==, 0);
  json_parser_load_from_data (parser, out, -1, &error);
  g_assert_no_error (error);
  o = json_node_get_object (json_parser_get_root (parser));
  g_assert_cmpstr (json_object_get_string_member (o, "bridge"), ==, "banger0");
  g_assert_cmpstr (json_object_get_string_member (o, "subnet"), ==, "172.30.0.0/24");
  g_assert_true (json_object_get_boolean_member (o, "nat"));
  taps = json_object_get_array_member (o, "taps");
  /* Only the caller's own taps. */
  g_assert_cmpuint (json_array_get_length (taps), ==, 1);
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (taps, 0), "tap"), ==, t->tap);
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (taps, 0), "address"),
                   ==, t->address);
  g_assert_true (g_str_has_prefix (json_object_get_string_member (o, "subnet6"), "fd"));
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (taps, 0), "address6"),
                   ==, t->address6);

  g_assert_cmpint (bg_harness_run_cli (f->h, BG_TEST_USER_A, &text, &err2, "system", "network", NULL), ==, 0);
  g_assert_nonnull (strstr (text, "Bridge:   banger0"));
  g_assert_nonnull (strstr (text, "IPv6:     fd"));
  g_assert_nonnull (strstr (text, t->address6));
  g_assert_nonnull (strstr (text, t->tap));
  g_assert_null (strstr (text, other->tap));
}

/* ---- frames on the bridge ---- */

#define VNET_HDR 10   /* the taps have IFF_VNET_HDR, default header size */

/* Waits (bounded) until the bridge forwards what @port sends. */
static void
wait_port_forwarding (const char *port)
{
  for (gint64 end = bg_test_deadline (10);;)
    {
      g_autofree char *state = sys_read (port, "brport/state");

      if (state != NULL && g_str_equal (state, "3")) /* BR_STATE_FORWARDING */
        break;
      if (g_get_monotonic_time () >= end)
        g_error ("bridge port %s never started forwarding (state %s)", port, state ? state : "gone");
      g_usleep (10 * 1000);
    }
}

static int
tap_attach (const char *tap)
{
  struct ifreq ifr = { 0 };
  int fd = open ("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);

  g_assert_cmpint (fd, >=, 0);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  g_strlcpy (ifr.ifr_name, tap, IFNAMSIZ);
  g_assert_no_errno (ioctl (fd, TUNSETIFF, &ifr));
  /* Attaching brings the tap's carrier up, and the kernel tells the
   * bridge later (linkwatch defers the event up to a second): until the
   * port forwards, the bridge drops what the tap sends. Wait for it, so
   * a frame that does not arrive was dropped by banger's guards. */
  wait_port_forwarding (tap);
  return fd;
}

static void
parse_mac (const char *text, guint8 mac[6])
{
  g_assert_cmpint (sscanf (text, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &mac[0], &mac[1], &mac[2], &mac[3], &mac[4],
                           &mac[5]), ==, 6);
}

static guint32
parse_ip (const char *text)
{
  struct in_addr a;
  g_assert_cmpint (inet_pton (AF_INET, text, &a), ==, 1);
  return a.s_addr;
}

/* A broadcast frame from @tap_fd: ethernet source @src, of @type, whose
 * body carries "BGTAG" and @tag where a reader finds it. ARP: sender
 * @sha/@spa (the tag in the target hardware address). IPv4: UDP from
 * @spa. Anything else: the tag in an opaque body. */
static void
send_frame (int tap_fd, const guint8 src[6], guint16 type, const guint8 sha[6], guint32 spa, guint8 tag)
{
  guint8 f[VNET_HDR + 14 + 64] = { 0 };
  guint8 *e = f + VNET_HDR, *b = e + 14;
  gsize len = VNET_HDR + 14;

  memset (e, 0xff, 6);
  memcpy (e + 6, src, 6);
  e[12] = type >> 8;
  e[13] = type & 0xff;
  if (type == ETH_P_ARP)
    {
      static const guint8 head[] = { 0, 1, 8, 0, 6, 4, 0, 1 };
      memcpy (b, head, 8);
      memcpy (b + 8, sha, 6);
      memcpy (b + 14, &spa, 4);
      memcpy (b + 18, "BGTAG", 5);
      b[23] = tag;
      len += 28;
    }
  else if (type == ETH_P_IP)
    {
      guint32 sum = 0;
      b[0] = 0x45;
      b[3] = 20 + 8 + 6;
      b[8] = 64;
      b[9] = IPPROTO_UDP;
      memcpy (b + 12, &spa, 4);
      memset (b + 16, 0xff, 4);
      for (int i = 0; i < 20; i += 2)
        sum += (b[i] << 8) | b[i + 1];
      sum = (sum & 0xffff) + (sum >> 16);
      sum = ~sum & 0xffff;
      b[10] = sum >> 8;
      b[11] = sum & 0xff;
      b[21] = 9;
      b[23] = 9;
      b[25] = 8 + 6;
      memcpy (b + 28, "BGTAG", 5);
      b[33] = tag;
      len += 34;
    }
  else
    {
      memcpy (b, "BGTAG", 5);
      b[5] = tag;
      len += 46;
    }
  g_assert_cmpint (write (tap_fd, f, len), ==, (gssize) len);
}

/* Adds the tags of the frames waiting on @fd to @seen. */
static void
drain (int fd, gboolean is_tap, GString *seen)
{
  guint8 buf[2048];
  ssize_t n;

  for (;;)
    {
      struct sockaddr_ll from = { 0 };
      socklen_t flen = sizeof from;
      const guint8 *at;

      n = is_tap ? read (fd, buf, sizeof buf)
                 : recvfrom (fd, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *) &from, &flen);
      if (n <= 0)
        break;
      if (!is_tap && from.sll_pkttype == PACKET_OUTGOING)
        continue;
      if ((at = memmem (buf, n, "BGTAG", 5)) != NULL && at + 5 < buf + n)
        g_string_append_printf (seen, "%u,", at[5]);
    }
}

/* Waits (bounded) until @tag is among what @fd received. */
static void
wait_tag (int fd, gboolean is_tap, GString *seen, guint8 tag)
{
  g_autofree char *want = g_strdup_printf ("%u,", tag);

  for (gint64 end = bg_test_deadline (5); g_get_monotonic_time () < end;)
    {
      struct pollfd p = { fd, POLLIN, 0 };
      drain (fd, is_tap, seen);
      if (strstr (seen->str, want) != NULL)
        return;
      poll (&p, 1, 10);
    }
  g_error ("tag %u never arrived (saw %s)", tag, seen->str);
}

/* A VM can send only as itself, and only to its owner's other VMs and
 * the host: frames with another VM's MAC, address or ARP claim reach
 * nothing, nor does an IPv6 frame that is not from its addresses, nor
 * anything from another user's VM. The host still hears every VM. */
static void
test_taps_send_only_as_their_vm (Fixture *f, gconstpointer data)
{
  g_autoptr(Tap) a1 = create_tap (f, BG_TEST_USER_A, "spoofer");
  g_autoptr(Tap) a2 = create_tap (f, BG_TEST_USER_A, "sibling");
  g_autoptr(Tap) b1 = create_tap (f, BG_TEST_USER_B, "victim");
  g_autoptr(GString) at_a1 = g_string_new (NULL), at_a2 = g_string_new (NULL);
  g_autoptr(GString) at_b1 = g_string_new (NULL), at_host = g_string_new (NULL);
  struct sockaddr_ll ll = { .sll_family = AF_PACKET, .sll_protocol = htons (ETH_P_ALL) };
  guint8 mac_a1[6], mac_b1[6];
  guint32 ip_a1 = parse_ip (a1->address), ip_b1 = parse_ip (b1->address);
  int fa1 = tap_attach (a1->tap), fa2 = tap_attach (a2->tap), fb1 = tap_attach (b1->tap);
  int host = socket (AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons (ETH_P_ALL));

  parse_mac (a1->mac, mac_a1);
  parse_mac (b1->mac, mac_b1);
  ll.sll_ifindex = if_nametoindex ("banger0");
  g_assert_no_errno (bind (host, (struct sockaddr *) &ll, sizeof ll));

  send_frame (fa1, mac_a1, ETH_P_ARP, mac_a1, ip_a1, 1);   /* itself */
  send_frame (fa1, mac_b1, ETH_P_ARP, mac_b1, ip_b1, 2);   /* another VM's MAC */
  send_frame (fa1, mac_a1, ETH_P_ARP, mac_a1, ip_b1, 3);   /* claims another VM's address */
  send_frame (fa1, mac_a1, ETH_P_ARP, mac_b1, ip_a1, 4);   /* ARP says another MAC */
  send_frame (fa1, mac_a1, ETH_P_IP, NULL, ip_b1, 5);      /* IPv4 from another address */
  send_frame (fa1, mac_a1, ETH_P_IP, NULL, ip_a1, 6);      /* IPv4 as itself */
  send_frame (fa1, mac_a1, ETH_P_IPV6, NULL, 0, 7);        /* not IPv6 from its address */
  send_frame (fa1, mac_a1, ETH_P_ARP, mac_a1, ip_a1, 8);   /* the last one */
  /* Frames of one tap are bridged in order, to every port in the same
   * pass: once the last is at the host and at A's other VM, anything
   * the victim could have got is waiting on its tap too. */
  wait_tag (host, FALSE, at_host, 8);
  wait_tag (fa2, TRUE, at_a2, 8);
  drain (fb1, TRUE, at_b1);
  g_assert_cmpstr (at_host->str, ==, "1,6,8,");
  g_assert_cmpstr (at_a2->str, ==, "1,6,8,");
  g_assert_cmpstr (at_b1->str, ==, "");

  /* The other user's VM reaches the host, and not A's VMs. */
  g_string_truncate (at_host, 0);
  send_frame (fb1, mac_b1, ETH_P_ARP, mac_b1, ip_b1, 9);
  send_frame (fb1, mac_b1, ETH_P_IP, NULL, ip_b1, 10);
  wait_tag (host, FALSE, at_host, 10);
  g_assert_cmpstr (at_host->str, ==, "9,10,");
  drain (fa1, TRUE, at_a1);
  drain (fa2, TRUE, at_a2);
  g_assert_null (strstr (at_a1->str, "9,"));
  g_assert_null (strstr (at_a2->str, "9,"));
  g_assert_null (strstr (at_a2->str, "10,"));

  close (host);
  close (fa1);
  close (fa2);
  close (fb1);
}

typedef struct {
  char *tap;
  int   netns_fd;
  int   fd;
} InnerTap;

/* In a thread: setns() of a network namespace is the calling thread's,
 * and the tun descriptor stays on the tap it attached to. */
static gpointer
inner_tap_attach (gpointer data)
{
  InnerTap *t = data;
  struct ifreq ifr = { 0 };

  g_assert_no_errno (setns (t->netns_fd, CLONE_NEWNET));
  t->fd = open ("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  g_assert_cmpint (t->fd, >=, 0);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  g_strlcpy (ifr.ifr_name, t->tap, IFNAMSIZ);
  g_assert_no_errno (ioctl (t->fd, TUNSETIFF, &ifr));
  return NULL;
}

/* Launches user A's VM @name on @tap (made by create_tap) with its VMM
 * in a network namespace of its own ([vmm] netns=always); returns the
 * VMM's pid. The VMM is the test VMM on placeholder files. */
static guint64
launch_in_own_netns (Fixture *f, const char *name, const char *tap)
{
  struct passwd *pw = getpwnam (BG_TEST_USER_A);
  g_autofree char *files = g_build_filename (f->h->tmp, "files-net", NULL);
  g_autofree char *kernel = g_build_filename (files, "vmlinux", NULL);
  g_autofree char *rootfs = g_build_filename (files, "rootfs.ext4", NULL);
  g_autofree char *kernel_arg = g_strdup_printf ("--fd=%s", kernel);
  g_autofree char *rootfs_arg = g_strdup_printf ("--fd=%s:rw", rootfs);
  g_autofree char *section = bg_harness_vmm_section (g_getenv ("BANGER_VMM_ABSTRACT"));
  g_autofree char *conf = g_strconcat (section, "netns=always\n", NULL);
  g_autofree char *args = g_strdup_printf ("('%s', {'tap': <'%s'>}, @h 0, @h 1)", name, tap);
  g_autoptr(BgCallResult) launch = NULL;
  g_autoptr(GVariant) reply = NULL;
  const char *api, *vsock;
  guint64 pid;

  g_assert_no_errno (mkdir (files, 0700));
  g_assert_no_errno (chown (files, pw->pw_uid, pw->pw_gid));
  g_assert_true (g_file_set_contents_full (kernel, "k", 1, G_FILE_SET_CONTENTS_NONE, 0644, NULL));
  g_assert_true (g_file_set_contents_full (rootfs, "", 0, G_FILE_SET_CONTENTS_NONE, 0600, NULL));
  g_assert_no_errno (truncate (rootfs, 1 << 20));
  g_assert_no_errno (chown (kernel, pw->pw_uid, pw->pw_gid));
  g_assert_no_errno (chown (rootfs, pw->pw_uid, pw->pw_gid));
  bg_harness_write_config (f->h, "mechanism.conf", conf);

  launch = bg_harness_call (f->h, BG_TEST_USER_A, "LaunchVm", args, kernel_arg, rootfs_arg, NULL);
  bg_assert_call_ok (launch);
  reply = g_variant_parse (G_VARIANT_TYPE ("(ssta{sv})"), launch->reply, NULL, NULL, NULL);
  g_assert_nonnull (reply);
  g_variant_get (reply, "(&s&st@a{sv})", &api, &vsock, &pid, NULL);
  return pid;
}

/* Kills user A's VM @name and waits until the mechanism has undone it. */
static void
kill_vm_until_undone (Fixture *f, const char *name)
{
  g_autofree char *args = g_strdup_printf ("('%s',)", name);
  g_autoptr(BgCallResult) kill = bg_harness_call (f->h, BG_TEST_USER_A, "KillVm", args, NULL);

  bg_assert_call_ok (kill);
  for (gint64 end = bg_test_deadline (30);;)
    {
      g_autoptr(BgCallResult) list = bg_harness_call (f->h, NULL, "ListResources",
                                                      "({'all-users': <true>, 'kind': <'vm'>},)", NULL);
      bg_assert_call_ok (list);
      if (g_str_equal (list->reply, "(@a(ssutsa{sv}) [],)"))
        break;
      if (g_get_monotonic_time () >= end)
        g_error ("the VM was not undone: %s", list->reply);
      g_usleep (50 * 1000);
    }
}

/* A VMM in a network namespace of its own (forced with [vmm]
 * netns=always; the default where Landlock scopes are missing): its tap
 * is inside, and on the host the veth of the tap's name is the bridge
 * port. The test stands in for the guest on that tap (the VMM here does
 * not open it): the bridge's guards hold through the namespace as on a
 * host tap (a frame as the VM passes, so its MAC is unchanged; forged
 * MAC, ARP claims and IP sources are dropped), the host reaches the VM,
 * and when the VM ends the veth and its peer are gone and the tap is the
 * owner's again on the bridge. */
static void
test_guards_hold_through_the_vmms_netns (Fixture *f, gconstpointer data)
{
  struct passwd *pw = getpwnam (BG_TEST_USER_A);
  g_autoptr(Tap) a1 = create_tap (f, BG_TEST_USER_A, "inner");
  g_autoptr(Tap) b1 = create_tap (f, BG_TEST_USER_B, "other");
  g_autoptr(GString) at_host = g_string_new (NULL), at_a1 = g_string_new (NULL);
  g_autofree char *ns_path = NULL, *kind = NULL, *owner = NULL, *br_mac = NULL;
  struct sockaddr_ll ll = { .sll_family = AF_PACKET, .sll_protocol = htons (ETH_P_ALL) };
  guint8 mac_a1[6], mac_b1[6], mac_br[6];
  guint32 ip_a1 = parse_ip (a1->address), ip_b1 = parse_ip (b1->address), ip_gw = parse_ip (a1->gateway);
  InnerTap inner = { a1->tap, -1, -1 };
  int host = socket (AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons (ETH_P_ALL));
  guint64 pid = launch_in_own_netns (f, "inner", a1->tap);

  /* The host's port is a veth now, on the bridge. */
  kind = run ("ip", "-d", "-o", "link", "show", "dev", a1->tap, NULL);
  g_assert_nonnull (kind);
  g_assert_nonnull (strstr (kind, "veth"));
  g_assert_null (sys_read (a1->tap, "tun_flags"));
  g_assert_cmpstr (master_of (a1->tap), ==, "banger0");

  ns_path = g_strdup_printf ("/proc/%" G_GUINT64_FORMAT "/ns/net", pid);
  inner.netns_fd = open (ns_path, O_RDONLY | O_CLOEXEC);
  g_assert_cmpint (inner.netns_fd, >=, 0);
  g_thread_join (g_thread_new ("inner-tap", inner_tap_attach, &inner));
  close (inner.netns_fd);

  parse_mac (a1->mac, mac_a1);
  parse_mac (b1->mac, mac_b1);
  br_mac = sys_read ("banger0", "address");
  parse_mac (br_mac, mac_br);
  ll.sll_ifindex = if_nametoindex ("banger0");
  g_assert_no_errno (bind (host, (struct sockaddr *) &ll, sizeof ll));

  /* Until both bridges forward (carrier events are deferred), frames may
   * be dropped on the way: resend the first until it arrives. */
  for (gint64 end = bg_test_deadline (10);;)
    {
      struct pollfd p = { host, POLLIN, 0 };

      send_frame (inner.fd, mac_a1, ETH_P_ARP, mac_a1, ip_a1, 100);
      poll (&p, 1, 100);
      drain (host, FALSE, at_host);
      if (strstr (at_host->str, "100,") != NULL)
        break;
      if (g_get_monotonic_time () >= end)
        g_error ("no frame from the VMM's namespace reached the bridge (saw %s)", at_host->str);
    }
  g_string_truncate (at_host, 0);

  send_frame (inner.fd, mac_a1, ETH_P_ARP, mac_a1, ip_a1, 1);   /* itself */
  send_frame (inner.fd, mac_b1, ETH_P_ARP, mac_b1, ip_b1, 2);   /* another VM's MAC */
  send_frame (inner.fd, mac_a1, ETH_P_ARP, mac_a1, ip_b1, 3);   /* claims another VM's address */
  send_frame (inner.fd, mac_a1, ETH_P_ARP, mac_b1, ip_a1, 4);   /* ARP says another MAC */
  send_frame (inner.fd, mac_a1, ETH_P_IP, NULL, ip_b1, 5);      /* IPv4 from another address */
  send_frame (inner.fd, mac_a1, ETH_P_IP, NULL, ip_a1, 6);      /* IPv4 as itself */
  send_frame (inner.fd, mac_a1, ETH_P_IPV6, NULL, 0, 7);        /* not IPv6 from its address */
  send_frame (inner.fd, mac_a1, ETH_P_ARP, mac_a1, ip_a1, 8);   /* the last one */
  wait_tag (host, FALSE, at_host, 8);
  g_assert_cmpstr (at_host->str, ==, "1,6,8,");

  /* The host's ARP for the VM reaches it, through the veth and the
   * namespace's bridge. */
  {
    guint8 f_[VNET_HDR + 14 + 28] = { 0 };
    guint8 *e = f_ + VNET_HDR, *b = e + 14;
    static const guint8 head[] = { 0, 1, 8, 0, 6, 4, 0, 1 };

    memset (e, 0xff, 6);
    memcpy (e + 6, mac_br, 6);
    e[12] = ETH_P_ARP >> 8;
    e[13] = ETH_P_ARP & 0xff;
    memcpy (b, head, 8);
    memcpy (b + 8, mac_br, 6);
    memcpy (b + 14, &ip_gw, 4);
    memcpy (b + 18, "BGTAG", 5);
    b[23] = 9;
    memcpy (b + 24, &ip_a1, 4);
    g_assert_cmpint (send (host, e, 14 + 28, 0), ==, 14 + 28);
    wait_tag (inner.fd, TRUE, at_a1, 9);
  }
  close (host);
  close (inner.fd);

  kill_vm_until_undone (f, "inner");
  /* The tap is a tap again, the owner's, on the bridge; no veth peer
   * was ever in the host's namespace. */
  g_assert_nonnull (sys_read (a1->tap, "tun_flags"));
  owner = sys_read (a1->tap, "owner");
  g_assert_cmpuint (strtoul (owner, NULL, 10), ==, pw->pw_uid);
  g_assert_cmpstr (master_of (a1->tap), ==, "banger0");
  g_assert_false (link_exists ("host0"));
}

/* An IPv4 UDP frame from @tap_fd to @dst (ethernet) and @tpa, from
 * @src/@spa, carrying "BGTAG" and @tag. */
static void
send_ip (int tap_fd, const guint8 dst[6], const guint8 src[6], guint32 spa, guint32 tpa, guint8 tag)
{
  guint8 f[VNET_HDR + 14 + 64] = { 0 };
  guint8 *e = f + VNET_HDR, *b = e + 14;
  gsize len = VNET_HDR + 14 + 34;
  guint32 sum = 0;

  memcpy (e, dst, 6);
  memcpy (e + 6, src, 6);
  e[12] = ETH_P_IP >> 8;
  e[13] = ETH_P_IP & 0xff;
  b[0] = 0x45;
  b[3] = 20 + 8 + 6;
  b[8] = 64;
  b[9] = IPPROTO_UDP;
  memcpy (b + 12, &spa, 4);
  memcpy (b + 16, &tpa, 4);
  for (int i = 0; i < 20; i += 2)
    sum += (b[i] << 8) | b[i + 1];
  sum = (sum & 0xffff) + (sum >> 16);
  sum = ~sum & 0xffff;
  b[10] = sum >> 8;
  b[11] = sum & 0xff;
  b[21] = 9;
  b[23] = 9;
  b[25] = 8 + 6;
  memcpy (b + 28, "BGTAG", 5);
  b[33] = tag;
  g_assert_cmpint (write (tap_fd, f, len), ==, (gssize) len);
}

/* Frames written to a tap are bridged (and routed) within the write, on
 * the writing CPU; kept on one CPU, frames of different taps arrive in
 * the order written. */
static void
stay_on_one_cpu (void)
{
  cpu_set_t one;

  CPU_ZERO (&one);
  CPU_SET (sched_getcpu (), &one);
  g_assert_no_errno (sched_setaffinity (0, sizeof one, &one));
}

/* isolate-users holds for routed traffic too: a VM sending to another
 * user's VM through the host (the bridge's MAC) reaches nothing, while
 * its owner's other VM is routed to. */
static void
test_routing_keeps_users_apart (Fixture *f, gconstpointer data)
{
  g_autoptr(Tap) a1 = create_tap (f, BG_TEST_USER_A, "router");
  g_autoptr(Tap) a2 = create_tap (f, BG_TEST_USER_A, "sibling");
  g_autoptr(Tap) b1 = create_tap (f, BG_TEST_USER_B, "victim");
  g_autoptr(GString) at_a2 = g_string_new (NULL), at_b1 = g_string_new (NULL);
  g_autofree char *bridge_mac_text = sys_read ("banger0", "address");
  guint8 mac_a1[6], bridge_mac[6];
  guint32 ip_a1 = parse_ip (a1->address), ip_a2 = parse_ip (a2->address), ip_b1 = parse_ip (b1->address);
  int fa1 = tap_attach (a1->tap), fa2 = tap_attach (a2->tap), fb1 = tap_attach (b1->tap);

  parse_mac (a1->mac, mac_a1);
  parse_mac (bridge_mac_text, bridge_mac);
  /* The host knows where both VMs are (the stand-ins answer no ARP). */
  must ("ip", "neigh", "replace", a2->address, "lladdr", a2->mac, "dev", "banger0", "nud", "permanent", NULL);
  must ("ip", "neigh", "replace", b1->address, "lladdr", b1->mac, "dev", "banger0", "nud", "permanent", NULL);
  stay_on_one_cpu ();

  send_ip (fa1, bridge_mac, mac_a1, ip_a1, ip_b1, 1);   /* to another user's VM */
  send_ip (fa1, bridge_mac, mac_a1, ip_a1, ip_a2, 2);   /* to its owner's other VM */
  wait_tag (fa2, TRUE, at_a2, 2);
  drain (fb1, TRUE, at_b1);
  g_assert_cmpstr (at_b1->str, ==, "");

  close (fa1);
  close (fa2);
  close (fb1);
}

/* A bg- port the registry does not list (made by hand, or a tap whose
 * record is not ready yet) carries nothing onto the bridge. */
static void
test_unlisted_tap_sends_nothing (Fixture *f, gconstpointer data)
{
  g_autoptr(Tap) a1 = create_tap (f, BG_TEST_USER_A, "listed");
  g_autoptr(GString) at_host = g_string_new (NULL);
  struct sockaddr_ll ll = { .sll_family = AF_PACKET, .sll_protocol = htons (ETH_P_ALL) };
  static const guint8 rogue_mac[6] = { 0x02, 0xbb, 0, 0, 0, 1 };
  guint8 mac_a1[6];
  guint32 ip_a1 = parse_ip (a1->address);
  int host = socket (AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons (ETH_P_ALL));
  int fa1 = tap_attach (a1->tap), rogue;

  must ("ip", "tuntap", "add", "dev", "bg-rogue", "mode", "tap", "vnet_hdr", NULL);
  must ("ip", "link", "set", "bg-rogue", "master", "banger0", "up", NULL);
  rogue = tap_attach ("bg-rogue");
  parse_mac (a1->mac, mac_a1);
  ll.sll_ifindex = if_nametoindex ("banger0");
  g_assert_no_errno (bind (host, (struct sockaddr *) &ll, sizeof ll));
  stay_on_one_cpu ();

  send_frame (rogue, rogue_mac, ETH_P_ARP, rogue_mac, parse_ip ("172.30.0.200"), 1);
  send_frame (rogue, rogue_mac, ETH_P_IP, NULL, parse_ip ("172.30.0.200"), 2);
  send_frame (fa1, mac_a1, ETH_P_ARP, mac_a1, ip_a1, 3);
  wait_tag (host, FALSE, at_host, 3);
  g_assert_cmpstr (at_host->str, ==, "3,");

  close (rogue);
  close (fa1);
  close (host);
  must ("ip", "link", "del", "bg-rogue", NULL);
}

/* A tap is guarded before it carries anything: the mechanism stopped
 * (killed by the test hook) right after the tap went up on the bridge,
 * and the tap claiming another user's VM's address there reaches
 * nothing; as itself, it reaches the host. */
static void
test_new_tap_is_guarded_before_it_is_up (Fixture *f, gconstpointer data)
{
  g_autoptr(Tap) b1 = NULL;
  g_autoptr(BgCallResult) crashed = NULL;
  g_autoptr(GString) at_host = g_string_new (NULL);
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autofree char *links = NULL, *tap = NULL, *record = NULL;
  g_auto(GStrv) lines = NULL;
  g_autoptr(GVariant) details = NULL;
  const char *mac_text = NULL, *address = NULL;
  struct sockaddr_ll ll = { .sll_family = AF_PACKET, .sll_protocol = htons (ETH_P_ALL) };
  guint8 mac[6];
  int host, fd;

  if (g_getenv ("BANGER_TEST_HOOKS") == NULL)
    {
      g_test_skip ("built without -Dtest_hooks=true, so the mechanism cannot be stopped at that step");
      return;
    }
  b1 = create_tap (f, BG_TEST_USER_B, "victim");
  crash_at (f, "create-tap-up");
  crashed = bg_harness_call (f->h, BG_TEST_USER_A, "CreateTap", "('racer', @a{sv} {})", NULL);
  g_assert_false (crashed->ok);
  g_assert_true (bg_harness_wait_name_gone (f->h, 20));

  /* The new tap: the bg- link on the bridge that is not B's. */
  links = run ("ip", "-o", "link", "show", "master", "banger0", NULL);
  lines = g_strsplit (links, "\n", -1);
  for (guint i = 0; lines[i]; i++)
    {
      g_auto(GStrv) fields = g_strsplit (lines[i], " ", 3);
      g_autofree char *name = fields[0] && fields[1] ? g_strndup (fields[1], strcspn (fields[1], ":@")) : NULL;

      if (name != NULL && g_str_has_prefix (name, "bg-") && !g_str_equal (name, b1->tap))
        tap = g_steal_pointer (&name);
    }
  g_assert_nonnull (tap);
  {
    g_autofree char *up = sys_read (tap, "flags");
    g_assert_true (g_ascii_strtoull (up, NULL, 16) & IFF_UP);
  }
  record = g_strdup_printf ("%s/registry/tap/%s.json", f->h->run_dir, tap);
  g_assert_true (json_parser_load_from_file (parser, record, NULL));
  details = g_variant_parse (G_VARIANT_TYPE_VARDICT,
                             json_object_get_string_member (json_node_get_object (json_parser_get_root (parser)),
                                                            "details"), NULL, NULL, NULL);
  g_assert_true (g_variant_lookup (details, "mac", "&s", &mac_text));
  g_assert_true (g_variant_lookup (details, "address", "&s", &address));
  parse_mac (mac_text, mac);

  host = socket (AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons (ETH_P_ALL));
  ll.sll_ifindex = if_nametoindex ("banger0");
  g_assert_no_errno (bind (host, (struct sockaddr *) &ll, sizeof ll));
  fd = tap_attach (tap);
  send_frame (fd, mac, ETH_P_ARP, mac, parse_ip (b1->address), 1);   /* claims B's VM's address */
  send_frame (fd, mac, ETH_P_ARP, mac, parse_ip (address), 2);       /* itself */
  wait_tag (host, FALSE, at_host, 2);
  g_assert_cmpstr (at_host->str, ==, "2,");
  close (fd);
  close (host);
}

/* Host users reach only their own VMs: a connection from the host to a
 * VM's address is refused at once for another user (no banger grant
 * needed to try), and made for its owner and root. */
static void
test_host_users_reach_only_their_own_vms (Fixture *f, gconstpointer data)
{
  g_autofree char *guest = g_strdup_printf ("bgt%d-guest", (int) getppid ());
  g_autofree char *guest_addr = NULL;
  g_autoptr(Tap) t = create_tap (f, BG_TEST_USER_A, "guest");
  const char *who[] = { BG_TEST_USER_B, BG_TEST_USER_A, "root" };
  GPid server = 0;

  must ("ip", "netns", "add", guest, NULL);
  guest_addr = g_strdup_printf ("%s/%u", t->address, t->prefix);
  must ("ip", "link", "add", "gvh", "type", "veth", "peer", "name", "gv0", "netns", guest, NULL);
  must ("ip", "link", "set", "gvh", "master", "banger0", "up", NULL);
  must ("ip", "-n", guest, "addr", "add", guest_addr, "dev", "gv0", NULL);
  must ("ip", "-n", guest, "link", "set", "gv0", "up", NULL);
  must ("ip", "-n", guest, "link", "set", "lo", "up", NULL);

  /* B first, while the VM's service listens: refused as if closed. */
  for (guint i = 0; i < G_N_ELEMENTS (who); i++)
    {
      struct passwd *pw = getpwnam (who[i]);
      g_autofree char *uid = g_strdup_printf ("--reuid=%u", pw->pw_uid);
      g_autofree char *gid = g_strdup_printf ("--regid=%u", pw->pw_gid);
      const char *serve[] = { g_getenv ("BANGER_TEST_NET"), "serve", "7778", NULL };
      const char *cmd[] = { "setpriv", uid, gid, "--init-groups", "--", g_getenv ("BANGER_TEST_NET"), "connect",
                            t->address, "7778", NULL };
      g_autofree char *seen = NULL, *expect = NULL;
      char line[64] = { 0 };
      int out_fd, status;

      if (server == 0)
        {
          server = netns_pid_spawn (guest, serve, &out_fd);
          g_assert_cmpint (read (out_fd, line, sizeof line - 1), >, 0);
          g_assert_cmpstr (line, ==, "listening\n");
          close (out_fd);
        }
      bg_harness_run_argv (cmd, &seen, &status);
      expect = i == 0 ? g_strdup ("connect failed: Connection refused\n") : g_strdup_printf ("%s\n", t->gateway);
      g_assert_cmpstr (seen, ==, expect);
      if (i > 0)
        {
          waitpid (server, NULL, 0);
          server = 0;
        }
    }
  must ("ip", "netns", "del", guest, NULL);
}

/* Connects from the host as @user to @address port 7779 (a serve6 in
 * @guest, started when @server is 0 and reaped once it answered); what
 * the connection printed. */
static char *
connect6_as (const char *user,
             const char *guest,
             const char *address,
             GPid       *server)
{
  struct passwd *pw = getpwnam (user);
  g_autofree char *uid = g_strdup_printf ("--reuid=%u", pw->pw_uid);
  g_autofree char *gid = g_strdup_printf ("--regid=%u", pw->pw_gid);
  const char *serve[] = { g_getenv ("BANGER_TEST_NET"), "serve6", "7779", NULL };
  const char *cmd[] = { "setpriv", uid, gid, "--init-groups", "--", g_getenv ("BANGER_TEST_NET"), "connect",
                        address, "7779", NULL };
  char *seen = NULL;
  int status;

  if (*server == 0)
    {
      char line[64] = { 0 };
      int out_fd;

      *server = netns_pid_spawn (guest, serve, &out_fd);
      g_assert_cmpint (read (out_fd, line, sizeof line - 1), >, 0);
      g_assert_cmpstr (line, ==, "listening\n");
      close (out_fd);
    }
  bg_harness_run_argv (cmd, &seen, &status);
  if (!g_str_has_prefix (seen, "connect failed"))
    {
      waitpid (*server, NULL, 0);
      *server = 0;
    }
  return seen;
}

/* The same over IPv6, for both of a VM's IPv6 addresses: the /64's and
 * the link-local one its MAC makes (reached as fe80::…%banger0). The
 * owner's connection needs the host's neighbour discovery, which the
 * same output chain carries. */
static void
test_host_users_reach_only_their_own_vms_over_ipv6 (Fixture *f, gconstpointer data)
{
  g_autofree char *guest = g_strdup_printf ("bgt%d-guest6", bg_harness_run_id ());
  g_autofree char *guest_addr = NULL, *ll = NULL, *ll_addr = NULL, *ll_scoped = NULL;
  g_autoptr(Tap) t = create_tap (f, BG_TEST_USER_A, "guest6");
  GPid server = 0;
  guint8 m[6];

  g_assert_nonnull (t->address6);
  parse_mac (t->mac, m);
  ll = g_strdup_printf ("fe80::%02x%02x:%02xff:fe%02x:%02x%02x", m[0] ^ 2, m[1], m[2], m[3], m[4], m[5]);
  ll_addr = g_strdup_printf ("%s/64", ll);
  ll_scoped = g_strdup_printf ("%s%%banger0", ll);
  guest_addr = g_strdup_printf ("%s/64", t->address6);
  must ("ip", "netns", "add", guest, NULL);
  must ("ip", "link", "add", "gvh", "type", "veth", "peer", "name", "gv0", "netns", guest, NULL);
  must ("ip", "link", "set", "gvh", "master", "banger0", "up", NULL);
  /* The guest's addresses as its kernel would have them, usable at once
   * (no duplicate address detection, no address of the veth's own). */
  must ("ip", "-n", guest, "link", "set", "gv0", "address", t->mac, "addrgenmode", "none", NULL);
  must ("ip", "-n", guest, "addr", "add", guest_addr, "dev", "gv0", "nodad", NULL);
  must ("ip", "-n", guest, "addr", "add", ll_addr, "dev", "gv0", "nodad", NULL);
  must ("ip", "-n", guest, "link", "set", "gv0", "up", NULL);
  must ("ip", "-n", guest, "link", "set", "lo", "up", NULL);

  /* B first, while the VM's service listens: refused as if closed. */
  {
    g_autofree char *b = connect6_as (BG_TEST_USER_B, guest, t->address6, &server);
    g_autofree char *b_ll = connect6_as (BG_TEST_USER_B, guest, ll_scoped, &server);
    g_autofree char *a = connect6_as (BG_TEST_USER_A, guest, t->address6, &server);
    g_autofree char *root = connect6_as ("root", guest, t->address6, &server);
    g_autofree char *a_ll = connect6_as (BG_TEST_USER_A, guest, ll_scoped, &server);
    g_autofree char *expect = g_strdup_printf ("%s\n", t->gateway6);

    g_assert_cmpstr (b, ==, "connect failed: Connection refused\n");
    g_assert_cmpstr (b_ll, ==, "connect failed: Connection refused\n");
    g_assert_cmpstr (a, ==, expect);
    g_assert_cmpstr (root, ==, expect);
    /* Answered with the host's address, whichever the kernel chose as
     * the source (the bridge's link-local one or its ::1). */
    {
      g_autofree char *peer = g_strchomp (g_strdup (a_ll));
      struct in6_addr any;

      g_assert_cmpint (inet_pton (AF_INET6, peer, &any), ==, 1);
    }
  }
  g_assert_cmpint (server, ==, 0);
  must ("ip", "netns", "del", guest, NULL);
}

/* bg-test-net as @user ("root" too, through the same setpriv), with
 * @args after the program's name; what it printed. */
static char *
net_as (const char *user, const char * const *args)
{
  struct passwd *pw = getpwnam (user);
  g_autofree char *uid = g_strdup_printf ("--reuid=%u", pw->pw_uid);
  g_autofree char *gid = g_strdup_printf ("--regid=%u", pw->pw_gid);
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  const char *head[] = { "setpriv", uid, gid, "--init-groups", "--", g_getenv ("BANGER_TEST_NET") };
  char *seen = NULL;
  int status;

  for (guint i = 0; i < G_N_ELEMENTS (head); i++)
    g_ptr_array_add (argv, (char *) head[i]);
  for (guint i = 0; args[i]; i++)
    g_ptr_array_add (argv, (char *) args[i]);
  g_ptr_array_add (argv, NULL);
  bg_harness_run_argv ((const char * const *) argv->pdata, &seen, &status);
  return seen;
}

/* One datagram tagged @tag, sent as @user from @src to @dst straight out
 * @ifname; what the sender printed. */
static char *
send_out_as (const char *user, const char *ifname, const char *src, const char *dst, guint8 tag)
{
  g_autofree char *tag_text = g_strdup_printf ("%u", tag);
  const char *args[] = { "send-out", ifname, src, dst, "7780", tag_text, NULL };

  return net_as (user, args);
}

/* Nothing leaves the host's own IP stack straight out a VM's port. A
 * local user sending to the broadcast address (or IPv6's all-nodes
 * group) out another user's tap, from the bridge's address, would reach
 * that VM's services, and their answers to the gateway would reach the
 * sender: refused for every user, the VM's owner and root too. What the
 * host sends through the bridge still reaches the VM. */
static void
test_host_sends_nothing_out_a_vms_port (Fixture *f, gconstpointer data)
{
  g_autoptr(Tap) a1 = create_tap (f, BG_TEST_USER_A, "victim");
  g_autoptr(GString) seen = g_string_new (NULL);
  const char *who[] = { BG_TEST_USER_B, BG_TEST_USER_A, "root" };
  int fa1 = tap_attach (a1->tap);
  guint8 tag = 0;

  g_assert_nonnull (a1->gateway6);
  for (guint i = 0; i < G_N_ELEMENTS (who); i++)
    {
      g_autofree char *out4 = send_out_as (who[i], a1->tap, a1->gateway, "255.255.255.255", ++tag);
      g_autofree char *out6 = send_out_as (who[i], a1->tap, a1->gateway6, "ff02::1", ++tag);

      /* Dropped by the output chain; over IPv6 the port has no route of
       * the host's to start with (its IPv6 is off). */
      g_assert_cmpstr (out4, ==, "send failed: Operation not permitted\n");
      g_assert_true (g_str_has_prefix (out6, "send failed: "));
    }
  /* Through the bridge: these arrive, behind anything sent above (one
   * queue, the tap's, in order). */
  {
    g_autofree char *out4 = send_out_as ("root", "banger0", a1->gateway, "255.255.255.255", 100);
    g_autofree char *out6 = send_out_as ("root", "banger0", a1->gateway6, "ff02::1", 101);

    g_assert_cmpstr (out4, ==, "sent\n");
    g_assert_cmpstr (out6, ==, "sent\n");
  }
  wait_tag (fa1, TRUE, seen, 100);
  wait_tag (fa1, TRUE, seen, 101);
  g_assert_cmpstr (seen->str, ==, "100,101,");
  close (fa1);
}

/* A VM's port holds none of the host's own IPv6: nothing the host's
 * IPv6 stack sends leaves straight out of it, also where the network
 * has no IPv6 and so no `ip6 banger` output chain to drop it
 * (subnet6=off), from whichever address the sender binds. */
static void
test_ports_hold_no_host_ipv6 (Fixture *f, gconstpointer data)
{
  g_autoptr(Tap) a1 = NULL;
  g_autoptr(GString) seen = g_string_new (NULL);
  g_autofree char *out4 = NULL, *out6 = NULL, *addresses = NULL;
  int fa1;

  bg_harness_write_config (f->h, "network.conf", "[network]\nsubnet6=off\n");
  a1 = create_tap (f, BG_TEST_USER_A, "victim");
  g_assert_null (a1->address6);
  fa1 = tap_attach (a1->tap);
  /* The bridge has no IPv6 here: an address of the host's to send from. */
  must ("ip", "addr", "add", "fd00:bad::1/128", "dev", "lo", "nodad", NULL);
  out6 = send_out_as (BG_TEST_USER_B, a1->tap, "fd00:bad::1", "ff02::1", 1);
  /* Through the bridge, behind it on the tap's queue: this arrives. */
  out4 = send_out_as ("root", "banger0", a1->gateway, "255.255.255.255", 2);
  g_assert_cmpstr (out4, ==, "sent\n");
  wait_tag (fa1, TRUE, seen, 2);
  g_assert_cmpstr (seen->str, ==, "2,");
  addresses = run ("ip", "-6", "-o", "addr", "show", "dev", a1->tap, NULL);
  g_assert_cmpstr (addresses, ==, "");
  close (fa1);
  must ("ip", "addr", "del", "fd00:bad::1/128", "dev", "lo", NULL);
}

typedef struct {
  GPid  pid;
  int   in;
  FILE *out;
} Flow;

/* A UDP flow of @user's to @address:@port (bg-test-net udp-flow). */
static void
flow_start (Flow *flow, const char *user, const char *address, const char *port)
{
  struct passwd *pw = getpwnam (user);
  g_autofree char *uid = g_strdup_printf ("--reuid=%u", pw->pw_uid);
  g_autofree char *gid = g_strdup_printf ("--regid=%u", pw->pw_gid);
  const char *argv[] = { "setpriv", uid, gid, "--init-groups", "--", g_getenv ("BANGER_TEST_NET"), "udp-flow",
                         address, port, NULL };
  g_autoptr(GError) error = NULL;
  int out;

  if (!g_spawn_async_with_pipes (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD,
                                 NULL, NULL, &flow->pid, &flow->in, &out, NULL, &error))
    g_error ("%s", error->message);
  flow->out = fdopen (out, "r");
}

/* Sends @text on the flow; the line it printed for it (the answer, or
 * what went wrong). The helper bounds its own wait. */
static char *
flow_say (Flow *flow, const char *text)
{
  g_autofree char *line = g_strdup_printf ("%s\n", text);
  char answer[256] = { 0 };

  g_assert_cmpint (write (flow->in, line, strlen (line)), ==, (gssize) strlen (line));
  g_assert_nonnull (fgets (answer, sizeof answer, flow->out));
  return g_strndup (answer, strcspn (answer, "\n"));
}

static void
flow_stop (Flow *flow)
{
  close (flow->in);
  fclose (flow->out);
  waitpid (flow->pid, NULL, 0);
}

/* A stand-in for whoever's VM has @address: a namespace on the bridge
 * with that address, answering UDP on 7781 (bg-test-net echo). */
typedef struct {
  char *ns;
  GPid  server;
  int   out;
} StandIn;

static void
stand_in_start (StandIn *g, const char *address, guint prefix)
{
  g_autofree char *with_prefix = g_strdup_printf ("%s/%u", address, prefix);
  const char *echo[] = { g_getenv ("BANGER_TEST_NET"), "echo", "7781", NULL };
  char ready[64] = { 0 };

  g->ns = g_strdup_printf ("bgt%d-reused", bg_harness_run_id ());
  must ("ip", "netns", "add", g->ns, NULL);
  must ("ip", "link", "add", "gvh", "type", "veth", "peer", "name", "gv0", "netns", g->ns, NULL);
  must ("ip", "link", "set", "gvh", "master", "banger0", "up", NULL);
  must ("ip", "-n", g->ns, "addr", "add", with_prefix, "dev", "gv0", NULL);
  must ("ip", "-n", g->ns, "link", "set", "gv0", "up", NULL);
  must ("ip", "-n", g->ns, "link", "set", "lo", "up", NULL);
  g->server = netns_pid_spawn (g->ns, echo, &g->out);
  g_assert_cmpint (read (g->out, ready, sizeof ready - 1), >, 0);
  g_assert_cmpstr (ready, ==, "ready\n");
}

static void
stand_in_stop (StandIn *g)
{
  kill (g->server, SIGKILL);
  waitpid (g->server, NULL, 0);
  close (g->out);
  must ("ip", "netns", "del", g->ns, NULL);
  g_free (g->ns);
}

/* After user A's flow to an address it held, the address is user B's
 * tap's: A's next datagram is refused, as any other user's is, and B
 * reaches its own VM. */
static void
check_flow_ended (Flow *fa, const char *user_b, const char *address)
{
  g_autofree char *two = NULL, *three = NULL;
  Flow fb;

  two = flow_say (fa, "two");
  g_assert_cmpstr (two, ==, "send failed: Operation not permitted");
  flow_start (&fb, user_b, address, "7781");
  three = flow_say (&fb, "three");
  g_assert_cmpstr (three, ==, "three");
  flow_stop (&fb);
}

/* B's next tap gets @address, A's flow @fa to it ends, and the flow and
 * the stand-in go. */
static void
address_goes_to_b (Fixture *f, Flow *fa, StandIn *guest, const char *address)
{
  g_autoptr(Tap) b1 = create_tap (f, BG_TEST_USER_B, "next");

  g_assert_cmpstr (b1->address, ==, address);
  check_flow_ended (fa, BG_TEST_USER_B, b1->address);
  flow_stop (fa);
  stand_in_stop (guest);
}

/* An address given to another user's VM carries none of the old VM's
 * flows: user A keeps a UDP flow to its VM going while the VM goes and
 * B's next VM gets the same address. */
static void
test_old_flows_end_with_their_address (Fixture *f, gconstpointer data)
{
  g_autofree char *one = NULL;
  g_autoptr(Tap) a1 = create_tap (f, BG_TEST_USER_A, "gone");
  g_autoptr(BgCallResult) deleted = NULL;
  StandIn guest;
  Flow fa;

  stand_in_start (&guest, a1->address, a1->prefix);
  flow_start (&fa, BG_TEST_USER_A, a1->address, "7781");
  one = flow_say (&fa, "one");
  g_assert_cmpstr (one, ==, "one");

  deleted = delete_tap (f, BG_TEST_USER_A, a1->tap);
  bg_assert_call_ok (deleted);
  address_goes_to_b (f, &fa, &guest, a1->address);
}

/* The bridge table's handle: a new one only when the table is made anew. */
static char *
bridge_table_handle (void)
{
  g_autofree char *out = run ("nft", "-a", "list", "table", "bridge", "banger", NULL);
  const char *at = out ? strstr (out, "# handle ") : NULL;

  g_assert_nonnull (at);
  at += strlen ("# handle ");
  return g_strndup (at, strspn (at, "0123456789"));
}

/* A new tap changes only the guards' sets, in place, while nothing else
 * changed the ruleset since the mechanism last wrote it; once anything
 * else did, the bridge table is written anew. The new tap is listed
 * either way. */
static void
test_new_tap_changes_only_the_guards_sets (Fixture *f, gconstpointer data)
{
  g_autoptr(Tap) one = create_tap (f, BG_TEST_USER_A, "one");
  g_autoptr(Tap) two = NULL, three = NULL;
  g_autofree char *first = bridge_table_handle (), *second = NULL, *third = NULL;
  g_autofree char *sources = NULL, *sources_after = NULL;

  two = create_tap (f, BG_TEST_USER_A, "two");
  second = bridge_table_handle ();
  g_assert_cmpstr (second, ==, first);
  sources = run ("nft", "list", "set", "bridge", "banger", "sources", NULL);
  g_assert_nonnull (strstr (sources, one->tap));
  g_assert_nonnull (strstr (sources, two->tap));

  /* Someone else's change: the count moves past the mechanism's. */
  must ("nft", "add", "table", "ip", "bgt-other", NULL);
  three = create_tap (f, BG_TEST_USER_B, "three");
  third = bridge_table_handle ();
  g_assert_cmpstr (third, !=, first);
  sources_after = run ("nft", "list", "set", "bridge", "banger", "sources", NULL);
  g_assert_nonnull (strstr (sources_after, one->tap));
  g_assert_nonnull (strstr (sources_after, two->tap));
  g_assert_nonnull (strstr (sources_after, three->tap));
  must ("nft", "delete", "table", "ip", "bgt-other", NULL);
}

/* A chain of the bridge table dropped by hand (the one that keeps
 * users' VMs apart) is back by the next tap, though a listing of the
 * table still shows its comment and a last drop: only a table the
 * mechanism wrote whole is changed set by set. */
static void
test_guard_chain_dropped_by_hand_comes_back (Fixture *f, gconstpointer data)
{
  g_autoptr(BgCallResult) first = bg_harness_call (f->h, BG_TEST_USER_A, "EnsureNetwork", "(@a{sv} {},)", NULL);
  g_autoptr(Tap) one = NULL, two = NULL;
  g_autoptr(BgCallResult) ensure = NULL;
  g_autofree char *gone = NULL, *back = NULL;

  /* Someone else's change first, so that the first tap's table is
   * written whole, its comment naming that tap. */
  bg_assert_call_ok (first);
  must ("nft", "add", "table", "ip", "bgt-other", NULL);
  one = create_tap (f, BG_TEST_USER_A, "one");
  must ("nft", "delete", "chain", "bridge", "banger", "forward", NULL);
  gone = run ("nft", "list", "chain", "bridge", "banger", "forward", NULL);
  g_assert_null (gone);
  ensure = bg_harness_call (f->h, BG_TEST_USER_A, "EnsureNetwork", "(@a{sv} {},)", NULL);
  bg_assert_call_ok (ensure);
  two = create_tap (f, BG_TEST_USER_B, "two");
  back = run ("nft", "list", "chain", "bridge", "banger", "forward", NULL);
  g_assert_nonnull (back);
  g_assert_nonnull (strstr (back, "iifname . oifname @peers accept"));  must ("nft", "delete", "table", "ip", "bgt-other", NULL);
}

/* A free address has no tracked connection left (every way one is freed
 * forgets its connections), so giving one walks no connection table:
 * only a new bridge (once) and a tap's release do. */
static void
test_only_freeing_an_address_walks_conntrack (Fixture *f, gconstpointer data)
{
  g_autoptr(Tap) first = NULL, second = NULL;
  g_autoptr(BgCallResult) deleted = NULL;

  if (g_getenv ("BANGER_TEST_HOOKS") == NULL)
    {
      g_test_skip ("built without -Dtest_hooks=true, so the mechanism does not count its steps");
      return;
    }
  bg_harness_count_start (f->h, "conntrack-walk");
  first = create_tap (f, BG_TEST_USER_A, "first");
  g_assert_cmpuint (bg_harness_count (f->h, "conntrack-walk"), ==, 1);
  bg_harness_count_start (f->h, "conntrack-walk");
  second = create_tap (f, BG_TEST_USER_A, "second");
  g_assert_cmpuint (bg_harness_count (f->h, "conntrack-walk"), ==, 0);
  deleted = delete_tap (f, BG_TEST_USER_A, second->tap);
  bg_assert_call_ok (deleted);
  g_assert_cmpuint (bg_harness_count (f->h, "conntrack-walk"), ==, 1);
}

typedef struct {
  BgHarness    *h;
  const char   *user;
  const char   *args;
} Call;

static gpointer
call_create_tap (gpointer data)
{
  Call *c = data;
  return bg_harness_call (c->h, c->user, "CreateTap", c->args, NULL);
}

/* A CreateTap that fails after its owner was listed for the address (the
 * names file cannot be written) forgets the flows the owner opened
 * meanwhile before the address is free: B's next tap gets it, and A's
 * flow ends. */
static void
test_rolled_back_tap_forgets_its_flows (Fixture *f, gconstpointer data)
{
  g_autofree char *pause_at = g_build_filename (f->h->run_dir, "pause-at", NULL);
  g_autofree char *paused_at = g_build_filename (f->h->run_dir, "paused-at", NULL);
  g_autofree char *hosts = g_build_filename (f->h->run_dir, "hosts", NULL);
  g_autofree char *in_hosts = g_build_filename (hosts, "in-the-way", NULL);
  g_autofree char *one = NULL;
  g_autoptr(Tap) a1 = create_tap (f, BG_TEST_USER_A, "before");
  g_autoptr(BgCallResult) deleted = NULL, failed = NULL;
  Call call = { f->h, BG_TEST_USER_A, "('again', @a{sv} {})" };
  GThread *thread;
  gint64 deadline;
  StandIn guest;
  Flow fa;

  if (g_getenv ("BANGER_TEST_HOOKS") == NULL)
    {
      g_test_skip ("built without -Dtest_hooks=true, so the mechanism cannot be held at that step");
      return;
    }
  /* The address A's next tap gets: the lowest, free again. */
  deleted = delete_tap (f, BG_TEST_USER_A, a1->tap);
  bg_assert_call_ok (deleted);
  stand_in_start (&guest, a1->address, a1->prefix);

  g_assert_true (g_file_set_contents (pause_at, "create-tap-up", -1, NULL));
  thread = g_thread_new ("create-tap", call_create_tap, &call);
  deadline = bg_test_deadline (60);
  while (!g_file_test (paused_at, G_FILE_TEST_EXISTS) && g_get_monotonic_time () < deadline)
    g_usleep (10000);
  g_assert_true (g_file_test (paused_at, G_FILE_TEST_EXISTS));

  /* The tap is up and A listed for its address: A's flow starts. */
  flow_start (&fa, BG_TEST_USER_A, a1->address, "7781");
  one = flow_say (&fa, "one");
  g_assert_cmpstr (one, ==, "one");
  /* The names file cannot be replaced: the call rolls back. */
  if (g_unlink (hosts) < 0)
    g_assert_cmpint (errno, ==, ENOENT);
  g_assert_no_errno (g_mkdir (hosts, 0755));
  g_assert_true (g_file_set_contents (in_hosts, "", 0, NULL));
  g_assert_no_errno (g_unlink (pause_at));
  failed = g_thread_join (thread);
  g_assert_false (failed->ok);
  g_assert_no_errno (g_unlink (in_hosts));
  g_assert_no_errno (g_rmdir (hosts));

  address_goes_to_b (f, &fa, &guest, a1->address);
}

/* A registry that lost a tap (wiped by hand: the kernel's tap is
 * recorded again at the next start, without its address) freed that
 * address without its release: the next start forgets the subnet's
 * flows before giving any address, so A's flow to its old VM's address
 * ends when B's VM gets it. */
static void
test_wiped_registry_forgets_the_subnets_flows (Fixture *f, gconstpointer data)
{
  g_autofree char *one = NULL, *record = NULL;
  g_autoptr(Tap) a1 = create_tap (f, BG_TEST_USER_A, "wiped");
  StandIn guest;
  GPid pid;
  Flow fa;

  stand_in_start (&guest, a1->address, a1->prefix);
  flow_start (&fa, BG_TEST_USER_A, a1->address, "7781");
  one = flow_say (&fa, "one");
  g_assert_cmpstr (one, ==, "one");

  pid = bg_harness_mechanism_pid (f->h);
  if (pid > 0)
    {
      kill (pid, SIGTERM);
      g_assert_true (bg_harness_wait_name_gone (f->h, 20));
    }
  record = g_strdup_printf ("%s/registry/tap/%s.json", f->h->run_dir, a1->tap);
  g_assert_no_errno (g_unlink (record));

  address_goes_to_b (f, &fa, &guest, a1->address);
}

/* Stops the mechanism and moves the record of tap @from to the name
 * @to, the kernel's link with it: as if two taps' names collided. */
static void
rename_tap_record (Fixture *f, const char *from, const char *to)
{
  g_autofree char *old_path = g_strdup_printf ("%s/registry/tap/%s.json", f->h->run_dir, from);
  g_autofree char *new_path = g_strdup_printf ("%s/registry/tap/%s.json", f->h->run_dir, to);
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  GPid pid = bg_harness_mechanism_pid (f->h);

  if (pid > 0)
    {
      kill (pid, SIGTERM);
      g_assert_true (bg_harness_wait_name_gone (f->h, 20));
    }
  g_assert_true (json_parser_load_from_file (parser, old_path, NULL));
  json_object_set_string_member (json_node_get_object (json_parser_get_root (parser)), "name", to);
  json_generator_set_root (gen, json_parser_get_root (parser));
  g_assert_true (json_generator_to_file (gen, new_path, NULL));
  g_assert_no_errno (unlink (old_path));
  must ("ip", "link", "set", from, "down", NULL);
  must ("ip", "link", "set", from, "name", to, NULL);
}

/* Tap names are digests of owner and VM name, cut short: should two
 * users' names meet, CreateTap refuses rather than hand over (or
 * release) the other user's tap. */
static void
test_create_tap_takes_no_other_users_tap (Fixture *f, gconstpointer data)
{
  g_autoptr(Tap) mine = create_tap (f, BG_TEST_USER_A, "mine");
  g_autoptr(Tap) theirs = NULL;
  g_autoptr(BgCallResult) deleted = NULL, again = NULL;
  g_autofree char *record = NULL;

  deleted = delete_tap (f, BG_TEST_USER_A, mine->tap);
  bg_assert_call_ok (deleted);
  theirs = create_tap (f, BG_TEST_USER_B, "theirs");
  rename_tap_record (f, theirs->tap, mine->tap);

  again = bg_harness_call (f->h, BG_TEST_USER_A, "CreateTap", "('mine', @a{sv} {})", NULL);
  bg_assert_call_error (again, E_EXISTS, "vm_name");
  /* B's tap is still B's, where it was. */
  record = g_strdup_printf ("%s/registry/tap/%s.json", f->h->run_dir, mine->tap);
  g_assert_true (g_file_test (record, G_FILE_TEST_EXISTS));
  g_assert_true (link_exists (mine->tap));
}

/* A stand-in guest with a whole IP stack behind a VMM in a network
 * namespace of its own: a namespace attached to that namespace's bridge
 * (where the guest's tap is), with the VM's MAC and address, reaches the
 * outside through the host's NAT, and the answer finds its way back
 * through the veth of the tap's name, the guards and the inner bridge. */
static void
test_stand_in_reaches_nat_through_the_vmms_netns (Fixture *f, gconstpointer data)
{
  g_autofree char *far = g_strdup_printf ("bgt%d-far", bg_harness_run_id ());
  g_autofree char *guest = g_strdup_printf ("bgt%d-guest", bg_harness_run_id ());
  g_autofree char *vmm = g_strdup_printf ("bgt%d-vmm", bg_harness_run_id ());
  g_autofree char *pid = NULL;
  g_autoptr(BgCallResult) ensure = NULL;
  g_autoptr(Tap) t = NULL;

  far_side_add (far);
  must ("ip", "netns", "add", guest, NULL);
  ensure = bg_harness_call (f->h, BG_TEST_USER_A, "EnsureNetwork", "(@a{sv} {},)", NULL);
  bg_assert_call_ok (ensure);
  g_assert_nonnull (strstr (ensure->reply, "'uplink': <'up0'>"));
  t = create_tap (f, BG_TEST_USER_A, "whole");
  pid = g_strdup_printf ("%" G_GUINT64_FORMAT, launch_in_own_netns (f, "whole", t->tap));

  /* Named only so ip(8) can reach it; the name goes, not the namespace. */
  must ("ip", "netns", "attach", vmm, pid, NULL);
  must ("ip", "-n", vmm, "link", "add", "gvh", "type", "veth", "peer", "name", "gv0", "netns", guest, NULL);
  must ("ip", "-n", vmm, "link", "set", "gvh", "master", "br0", "up", NULL);
  must ("ip", "netns", "del", vmm, NULL);
  must ("ip", "-n", guest, "link", "set", "gv0", "address", t->mac, NULL);
  guest_side_up (guest, t);

  assert_far_side_sees_the_uplink (far, guest);

  kill_vm_until_undone (f, "whole");
  must ("ip", "netns", "del", far, NULL);
  must ("ip", "netns", "del", guest, NULL);
}

/* The mechanism keeps one nftables context for its life; its cache must
 * not hide rules changed behind its back: flushed and deleted by hand
 * while it runs, they are seen gone on the next call and made again. */
static void
test_rules_changed_by_hand_are_seen (Fixture *f, gconstpointer data)
{
  g_autoptr(Tap) one = create_tap (f, BG_TEST_USER_A, "one");
  g_autoptr(Tap) two = NULL;
  GPid pid = bg_harness_mechanism_pid (f->h);
  g_autofree char *nat = NULL, *ports = NULL, *gone = NULL;

  g_assert_cmpint (pid, >, 0);
  must ("nft", "flush", "table", "ip", "banger", NULL);
  must ("nft", "delete", "table", "bridge", "banger", NULL);
  gone = run ("nft", "list", "table", "bridge", "banger", NULL);
  g_assert_null (gone);

  two = create_tap (f, BG_TEST_USER_A, "two");
  g_assert_cmpint (bg_harness_mechanism_pid (f->h), ==, pid);
  nat = run ("nft", "list", "table", "ip", "banger", NULL);
  g_assert_nonnull (nat);
  g_assert_nonnull (strstr (nat, "masquerade"));
  ports = run ("nft", "list", "table", "bridge", "banger", NULL);
  g_assert_nonnull (ports);
  g_assert_nonnull (strstr (ports, one->tap));
  g_assert_nonnull (strstr (ports, two->tap));
}

/* What the mechanism remembers of the tables it made (the ports it last
 * wrote, whether the ip6 table exists) only spares it a listing: the ip6
 * table dropped by hand, the next removal of a tap (which writes the
 * ports and the owners of both families, with no check of the tables
 * first) still succeeds, and leaves the remaining tap guarded. */
static void
test_tables_dropped_by_hand_do_not_fail_a_removal (Fixture *f, gconstpointer data)
{
  g_autoptr(Tap) one = create_tap (f, BG_TEST_USER_A, "one");
  g_autoptr(Tap) two = create_tap (f, BG_TEST_USER_A, "two");
  g_autoptr(BgCallResult) del = NULL;
  g_autofree char *ports = NULL;

  g_assert_nonnull (one->address6);
  must ("nft", "delete", "table", "ip6", "banger", NULL);
  del = delete_tap (f, BG_TEST_USER_A, one->tap);
  bg_assert_call_ok (del);
  ports = run ("nft", "list", "table", "bridge", "banger", NULL);
  g_assert_nonnull (ports);
  g_assert_null (strstr (ports, one->tap));
  g_assert_nonnull (strstr (ports, two->tap));
}

/* CreateTap writes the ports' guards once, with its new tap among them,
 * where it used to write them while making sure of the network and again
 * after: unless a recorded tap must be made again, whose guards come back
 * before it does. Counted by the test hook in apply_ports. */
static void
test_create_tap_writes_the_guards_once (Fixture *f, gconstpointer data)
{
  g_autoptr(Tap) one = create_tap (f, BG_TEST_USER_A, "one");
  g_autoptr(Tap) two = NULL;
  g_autoptr(Tap) three = NULL;
  g_autofree char *master = NULL;

  bg_harness_count_start (f->h, "ports-applied");
  two = create_tap (f, BG_TEST_USER_A, "two");
  g_assert_cmpuint (bg_harness_count (f->h, "ports-applied"), ==, 1);

  must ("ip", "link", "del", one->tap, NULL);
  three = create_tap (f, BG_TEST_USER_A, "three");
  g_assert_cmpuint (bg_harness_count (f->h, "ports-applied"), ==, 3);
  g_assert_true (link_exists (one->tap));
  master = master_of (one->tap);
  g_assert_cmpstr (master, ==, "banger0");
}

/* On a host with no default route (no uplink), the bridge's record says
 * so once: a call that finds everything in place writes nothing. */
static void
test_no_uplink_is_recorded_once (Fixture *f, gconstpointer data)
{
  g_autofree char *record = g_build_filename (f->h->run_dir, "registry", "bridge", "banger0.json", NULL);
  g_autoptr(BgCallResult) first = bg_harness_call (f->h, BG_TEST_USER_A, "EnsureNetwork", "(@a{sv} {},)", NULL);
  g_autoptr(BgCallResult) second = NULL;
  struct stat before, after;

  bg_assert_call_ok (first);
  g_assert_nonnull (strstr (first->reply, "'uplink': <''>"));
  g_assert_no_errno (stat (record, &before));
  second = bg_harness_call (f->h, BG_TEST_USER_A, "EnsureNetwork", "(@a{sv} {},)", NULL);
  bg_assert_call_ok (second);
  g_assert_no_errno (stat (record, &after));
  g_assert_cmpuint (before.st_ino, ==, after.st_ino);
}

/* ---- IPv6 ---- */

static void
sysctl_set (const char *path, const char *value)
{
  int fd = open (path, O_WRONLY | O_CLOEXEC);

  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (write (fd, value, strlen (value)), ==, (gssize) strlen (value));
  close (fd);
}

static char *
sysctl_get (const char *path)
{
  char *text = NULL;

  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  return g_strstrip (text);
}

/* Waits (bounded) until `ip ARGS` prints @want; whether it did. */
static gboolean
wait_for_ip (const char *want, const char * const *args)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();

  g_ptr_array_add (argv, "ip");
  for (guint i = 0; args[i]; i++)
    g_ptr_array_add (argv, (char *) args[i]);
  g_ptr_array_add (argv, NULL);
  for (gint64 deadline = bg_test_deadline (10); g_get_monotonic_time () < deadline;)
    {
      g_autofree char *out = NULL;
      int status;

      bg_harness_run_argv ((const char * const *) argv->pdata, &out, &status);
      if (status == 0 && out != NULL && strstr (out, want) != NULL)
        return TRUE;
      g_usleep (50 * 1000);
    }
  return FALSE;
}

/* The far side of an uplink: namespace @far behind the veth up0/far0,
 * IPv4 198.51.100.0/24 (the default route, which makes up0 the uplink)
 * and, unless @ra_only, IPv6 2001:db8:1::/64 with a default route too.
 * No DAD anywhere, so addresses are usable at once. */
static void
make_far_side (const char *far, gboolean ra_only)
{
  must ("ip", "netns", "add", far, NULL);
  must ("ip", "link", "add", "up0", "type", "veth", "peer", "name", "far0", "netns", far, NULL);
  must ("ip", "netns", "exec", far, "sysctl", "-qw", "net.ipv6.conf.far0.accept_dad=0", NULL);
  sysctl_set ("/proc/sys/net/ipv6/conf/up0/accept_dad", "0");
  must ("ip", "addr", "add", "198.51.100.2/24", "dev", "up0", NULL);
  must ("ip", "link", "set", "up0", "up", NULL);
  must ("ip", "-n", far, "addr", "add", "198.51.100.1/24", "dev", "far0", NULL);
  must ("ip", "-n", far, "link", "set", "far0", "up", NULL);
  must ("ip", "-n", far, "link", "set", "lo", "up", NULL);
  must ("ip", "route", "add", "default", "via", "198.51.100.1", NULL);
  if (ra_only)
    return;
  must ("ip", "addr", "add", "2001:db8:1::2/64", "dev", "up0", "nodad", NULL);
  must ("ip", "-n", far, "addr", "add", "2001:db8:1::1/64", "dev", "far0", "nodad", NULL);
  must ("ip", "-6", "route", "add", "default", "via", "2001:db8:1::1", "dev", "up0", NULL);
}

/* A VM stand-in reaches a far namespace over IPv6 through the bridge,
 * forwarding and NAT66: the far side sees the uplink's address. The
 * uplink, which took router advertisements, is set to keep taking them
 * (accept_ra=2) before forwarding goes on. */
static void
test_nat66_rewrites_source (Fixture *f, gconstpointer data)
{
  g_autofree char *far = g_strdup_printf ("bgt%d-far6", bg_harness_run_id ());
  g_autofree char *guest = g_strdup_printf ("bgt%d-guest6", bg_harness_run_id ());
  g_autofree char *guest_addr = NULL, *seen = NULL, *fwd = NULL, *accept_ra = NULL;
  g_autoptr(Tap) t = NULL;
  g_autoptr(BgCallResult) ensure = NULL;
  const char *serve[] = { g_getenv ("BANGER_TEST_NET"), "serve6", "7778", NULL };
  char line[64] = { 0 };
  int out_fd, status;
  GPid server;

  make_far_side (far, FALSE);
  g_assert_cmpstr ((accept_ra = sysctl_get ("/proc/sys/net/ipv6/conf/up0/accept_ra")), ==, "1");
  g_clear_pointer (&accept_ra, g_free);
  ensure = bg_harness_call (f->h, BG_TEST_USER_A, "EnsureNetwork", "(@a{sv} {},)", NULL);
  bg_assert_call_ok (ensure);
  g_assert_nonnull (strstr (ensure->reply, "'ipv6': <true>"));
  fwd = sysctl_get ("/proc/sys/net/ipv6/conf/all/forwarding");
  g_assert_cmpstr (fwd, ==, "1");
  accept_ra = sysctl_get ("/proc/sys/net/ipv6/conf/up0/accept_ra");
  g_assert_cmpstr (accept_ra, ==, "2");

  t = create_tap (f, BG_TEST_USER_A, "guest6");
  g_assert_nonnull (t->address6);
  /* Paired with the IPv4 address: .N is ::N. */
  g_assert_true (g_str_has_suffix (t->address6, strrchr (t->address, '.') + 1));
  g_assert_true (g_str_has_suffix (t->gateway6, "::1"));
  guest_addr = g_strdup_printf ("%s/64", t->address6);
  must ("ip", "netns", "add", guest, NULL);
  must ("ip", "link", "add", "gvh", "type", "veth", "peer", "name", "gv0", "netns", guest, NULL);
  must ("ip", "link", "set", "gvh", "master", "banger0", "up", NULL);
  must ("ip", "-n", guest, "addr", "add", guest_addr, "dev", "gv0", "nodad", NULL);
  must ("ip", "-n", guest, "link", "set", "gv0", "up", NULL);
  must ("ip", "-n", guest, "-6", "route", "add", "default", "via", t->gateway6, NULL);

  server = netns_pid_spawn (far, serve, &out_fd);
  g_assert_cmpint (read (out_fd, line, sizeof line - 1), >, 0);
  g_assert_cmpstr (line, ==, "listening\n");
  close (out_fd);
  {
    const char *cmd[] = { "ip", "netns", "exec", guest, g_getenv ("BANGER_TEST_NET"), "connect",
                          "2001:db8:1::1", "7778", NULL };
    bg_harness_run_argv (cmd, &seen, &status);
  }
  waitpid (server, NULL, 0);
  g_assert_cmpint (status, ==, 0);
  g_assert_cmpstr (seen, ==, "2001:db8:1::2\n");

  must ("ip", "netns", "del", far, NULL);
  must ("ip", "netns", "del", guest, NULL);
}

/* One router advertisement from @far's far0, for @prefix/64, from a
 * raw ICMPv6 socket (the kernel fills in the checksum). */
static void
send_ra (const char *far, const char *prefix)
{
  static const char script[] =
    "import socket, struct, sys\n"
    "s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)\n"
    "s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)\n"
    "ra = struct.pack('!BBHBBHII', 134, 0, 0, 64, 0, 1800, 0, 0)\n"
    "pi = struct.pack('!BBBBIII', 3, 4, 64, 0xc0, 86400, 14400, 0) + socket.inet_pton(socket.AF_INET6, sys.argv[2])\n"
    "s.sendto(ra + pi, ('ff02::1', 0, 0, socket.if_nametoindex(sys.argv[1])))\n";

  must ("ip", "netns", "exec", far, "/usr/bin/python3", "-c", script, "far0", prefix, NULL);
}

/* Turning IPv6 forwarding on ends router advertisements on interfaces
 * with accept_ra=1 and drops the default routes they gave: the uplink
 * keeps its RA default route through EnsureNetwork, and a new RA still
 * configures it afterwards. */
static void
test_uplink_still_takes_router_advertisements (Fixture *f, gconstpointer data)
{
  g_autofree char *far = g_strdup_printf ("bgt%d-far-ra", bg_harness_run_id ());
  g_autoptr(BgCallResult) ensure = NULL;
  g_autofree char *fwd = NULL, *routes = NULL;
  const char *addr_args[] = { "-6", "-o", "addr", "show", "dev", "up0", NULL };
  const char *route_args[] = { "-6", "route", "show", "default", NULL };

  make_far_side (far, TRUE);
  must ("ip", "-n", far, "link", "set", "far0", "up", NULL);
  g_assert_true (wait_for_ip ("fe80::", (const char *[]) { "-n", far, "-6", "-o", "addr", "show", "dev", "far0", NULL }));
  send_ra (far, "2001:db8:71::");
  g_assert_true (wait_for_ip ("2001:db8:71:", addr_args));
  g_assert_true (wait_for_ip ("proto ra", route_args));

  ensure = bg_harness_call (f->h, BG_TEST_USER_A, "EnsureNetwork", "(@a{sv} {},)", NULL);
  bg_assert_call_ok (ensure);
  fwd = sysctl_get ("/proc/sys/net/ipv6/conf/all/forwarding");
  g_assert_cmpstr (fwd, ==, "1");
  /* The RA's default route survived forwarding going on. */
  routes = run ("ip", "-6", "route", "show", "default", NULL);
  g_assert_nonnull (strstr (routes, "proto ra"));

  send_ra (far, "2001:db8:72::");
  g_assert_true (wait_for_ip ("2001:db8:72:", addr_args));

  must ("ip", "netns", "del", far, NULL);
}

static void
parse_ip6 (const char *text, guint8 out[16])
{
  g_assert_cmpint (inet_pton (AF_INET6, text, out), ==, 1);
}

typedef enum { V6_UDP, V6_ICMP } V6Kind;

/* An IPv6 frame from @tap_fd to ff02::1 (ethernet broadcast), from MAC
 * @src and address @saddr: UDP @a -> @b, or ICMPv6 of type @a whose
 * target (8 bytes in) is @target; "BGTAG" and @tag follow. */
static void
send_frame6 (int tap_fd, const guint8 src[6], const char *saddr, V6Kind kind, guint16 a, guint16 b,
             const char *target, guint8 tag)
{
  guint8 f[VNET_HDR + 14 + 40 + 64] = { 0 };
  guint8 *e = f + VNET_HDR, *ip = e + 14, *l4 = ip + 40, *tagp;
  gsize body;

  memset (e, 0xff, 6);
  memcpy (e + 6, src, 6);
  e[12] = ETH_P_IPV6 >> 8;
  e[13] = ETH_P_IPV6 & 0xff;
  ip[0] = 0x60;
  ip[7] = 255;
  parse_ip6 (saddr, ip + 8);
  parse_ip6 ("ff02::1", ip + 24);
  if (kind == V6_UDP)
    {
      ip[6] = IPPROTO_UDP;
      l4[0] = a >> 8, l4[1] = a & 0xff, l4[2] = b >> 8, l4[3] = b & 0xff;
      tagp = l4 + 8;
      body = 8 + 6;
      l4[5] = body;
    }
  else
    {
      ip[6] = IPPROTO_ICMPV6;
      l4[0] = a;
      if (target != NULL)
        parse_ip6 (target, l4 + 8);
      tagp = l4 + 24;
      body = 24 + 6;
    }
  memcpy (tagp, "BGTAG", 5);
  tagp[5] = tag;
  ip[5] = body;
  g_assert_cmpint (write (tap_fd, f, VNET_HDR + 14 + 40 + body), ==, (gssize) (VNET_HDR + 14 + 40 + body));
}

/* An IPv6 UDP frame from @tap_fd to @dst (ethernet) and @daddr, from
 * @src/@saddr, carrying "BGTAG" and @tag (routed, no checksum needed). */
static void
send_ip6 (int tap_fd, const guint8 dst[6], const guint8 src[6], const char *saddr, const char *daddr, guint8 tag)
{
  guint8 f[VNET_HDR + 14 + 40 + 14] = { 0 };
  guint8 *e = f + VNET_HDR, *ip = e + 14, *l4 = ip + 40;

  memcpy (e, dst, 6);
  memcpy (e + 6, src, 6);
  e[12] = ETH_P_IPV6 >> 8;
  e[13] = ETH_P_IPV6 & 0xff;
  ip[0] = 0x60;
  ip[5] = 8 + 6;
  ip[6] = IPPROTO_UDP;
  ip[7] = 64;
  parse_ip6 (saddr, ip + 8);
  parse_ip6 (daddr, ip + 24);
  l4[1] = 9;
  l4[3] = 9;
  l4[5] = 8 + 6;
  memcpy (l4 + 8, "BGTAG", 5);
  l4[13] = tag;
  g_assert_cmpint (write (tap_fd, f, sizeof f), ==, (gssize) sizeof f);
}

/* isolate-users holds for routed IPv6 as for IPv4: a VM sending to
 * another user's VM's IPv6 address through the host reaches nothing,
 * while its owner's other VM is routed to. */
static void
test_routing_keeps_users_apart_over_ipv6 (Fixture *f, gconstpointer data)
{
  g_autoptr(Tap) a1 = create_tap (f, BG_TEST_USER_A, "router6");
  g_autoptr(Tap) a2 = create_tap (f, BG_TEST_USER_A, "sibling6");
  g_autoptr(Tap) b1 = create_tap (f, BG_TEST_USER_B, "victim6");
  g_autoptr(GString) at_a2 = g_string_new (NULL), at_b1 = g_string_new (NULL);
  g_autofree char *bridge_mac_text = sys_read ("banger0", "address");
  guint8 mac_a1[6], bridge_mac[6];
  int fa1 = tap_attach (a1->tap), fa2 = tap_attach (a2->tap), fb1 = tap_attach (b1->tap);

  g_assert_nonnull (a1->address6);
  g_assert_nonnull (a2->address6);
  g_assert_nonnull (b1->address6);
  parse_mac (a1->mac, mac_a1);
  parse_mac (bridge_mac_text, bridge_mac);
  /* The host knows where both VMs are (the stand-ins answer no NS). */
  must ("ip", "-6", "neigh", "replace", a2->address6, "lladdr", a2->mac, "dev", "banger0", "nud", "permanent",
        NULL);
  must ("ip", "-6", "neigh", "replace", b1->address6, "lladdr", b1->mac, "dev", "banger0", "nud", "permanent",
        NULL);
  stay_on_one_cpu ();

  send_ip6 (fa1, bridge_mac, mac_a1, a1->address6, b1->address6, 1);   /* to another user's VM */
  send_ip6 (fa1, bridge_mac, mac_a1, a1->address6, a2->address6, 2);   /* to its owner's other VM */
  wait_tag (fa2, TRUE, at_a2, 2);
  drain (fb1, TRUE, at_b1);
  g_assert_cmpstr (at_b1->str, ==, "");

  close (fa1);
  close (fa2);
  close (fb1);
}

/* IPv6 on the bridge: a VM sends only from its own address and its
 * link-local one, advertises only those as a neighbour, and never sends
 * what routers and DHCPv6 servers send; isolate-users holds for IPv6
 * too. Each forged frame passes once banger's bridge table is gone, so
 * it is the rules that drop it. */
static void
test_taps_send_ipv6_only_as_their_vm (Fixture *f, gconstpointer data)
{
  g_autoptr(Tap) a1 = create_tap (f, BG_TEST_USER_A, "spoofer6");
  g_autoptr(Tap) a2 = create_tap (f, BG_TEST_USER_A, "sibling6");
  g_autoptr(Tap) b1 = create_tap (f, BG_TEST_USER_B, "victim6");
  g_autoptr(GString) at_a1 = g_string_new (NULL), at_a2 = g_string_new (NULL);
  g_autoptr(GString) at_b1 = g_string_new (NULL), at_host = g_string_new (NULL);
  struct sockaddr_ll ll = { .sll_family = AF_PACKET, .sll_protocol = htons (ETH_P_ALL) };
  guint8 mac_a1[6], mac_b1[6];
  g_autofree char *ll_a1 = NULL;
  int fa1 = tap_attach (a1->tap), fa2 = tap_attach (a2->tap), fb1 = tap_attach (b1->tap);
  int host = socket (AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons (ETH_P_ALL));

  g_assert_nonnull (a1->address6);
  g_assert_nonnull (b1->address6);
  parse_mac (a1->mac, mac_a1);
  parse_mac (b1->mac, mac_b1);
  /* Its EUI-64 link-local address, as its kernel makes it. */
  {
    guint8 m[6];
    memcpy (m, mac_a1, 6);
    ll_a1 = g_strdup_printf ("fe80::%02x%02x:%02xff:fe%02x:%02x%02x", m[0] ^ 2, m[1], m[2], m[3], m[4], m[5]);
  }
  ll.sll_ifindex = if_nametoindex ("banger0");
  g_assert_no_errno (bind (host, (struct sockaddr *) &ll, sizeof ll));

  send_frame6 (fa1, mac_a1, a1->address6, V6_UDP, 1000, 1000, NULL, 1);      /* itself */
  send_frame6 (fa1, mac_a1, b1->address6, V6_UDP, 1000, 1000, NULL, 2);      /* another VM's address */
  send_frame6 (fa1, mac_a1, ll_a1, V6_UDP, 1000, 1000, NULL, 3);             /* its link-local */
  send_frame6 (fa1, mac_a1, ll_a1, V6_ICMP, 136, 0, b1->address6, 4);        /* NA for another VM */
  send_frame6 (fa1, mac_a1, ll_a1, V6_ICMP, 136, 0, a1->address6, 5);        /* NA for itself */
  send_frame6 (fa1, mac_a1, ll_a1, V6_ICMP, 134, 0, NULL, 6);                /* router advertisement */
  send_frame6 (fa1, mac_a1, a1->address6, V6_UDP, 547, 546, NULL, 7);        /* DHCPv6 reply */
  send_frame6 (fa1, mac_a1, ll_a1, V6_ICMP, 137, 0, a1->address6, 8);        /* redirect */
  send_frame6 (fa1, mac_b1, a1->address6, V6_UDP, 1000, 1000, NULL, 9);      /* another VM's MAC */
  send_frame6 (fa1, mac_a1, a1->address6, V6_UDP, 1000, 1000, NULL, 10);     /* the last one */
  wait_tag (host, FALSE, at_host, 10);
  wait_tag (fa2, TRUE, at_a2, 10);
  drain (fb1, TRUE, at_b1);
  g_assert_cmpstr (at_host->str, ==, "1,3,5,10,");
  g_assert_cmpstr (at_a2->str, ==, "1,3,5,10,");
  /* Another user's VM hears none of it (isolate-users). */
  g_assert_cmpstr (at_b1->str, ==, "");

  /* And B's VM reaches the host over IPv6, not A's VMs. */
  g_string_truncate (at_host, 0);
  send_frame6 (fb1, mac_b1, b1->address6, V6_UDP, 1000, 1000, NULL, 11);
  wait_tag (host, FALSE, at_host, 11);
  drain (fa1, TRUE, at_a1);
  drain (fa2, TRUE, at_a2);
  g_assert_null (strstr (at_a1->str, "11,"));
  g_assert_null (strstr (at_a2->str, "11,"));

  /* Without banger's bridge table, every forged frame gets through. */
  must ("nft", "delete", "table", "bridge", "banger", NULL);
  g_string_truncate (at_host, 0);
  send_frame6 (fa1, mac_a1, b1->address6, V6_UDP, 1000, 1000, NULL, 12);
  send_frame6 (fa1, mac_a1, ll_a1, V6_ICMP, 136, 0, b1->address6, 14);
  send_frame6 (fa1, mac_a1, ll_a1, V6_ICMP, 134, 0, NULL, 16);
  send_frame6 (fa1, mac_a1, a1->address6, V6_UDP, 547, 546, NULL, 17);
  send_frame6 (fa1, mac_a1, ll_a1, V6_ICMP, 137, 0, a1->address6, 18);
  send_frame6 (fa1, mac_b1, a1->address6, V6_UDP, 1000, 1000, NULL, 19);
  send_frame6 (fa1, mac_a1, a1->address6, V6_UDP, 1000, 1000, NULL, 20);
  wait_tag (host, FALSE, at_host, 20);
  g_assert_cmpstr (at_host->str, ==, "12,14,16,17,18,19,20,");

  close (host);
  close (fa1);
  close (fa2);
  close (fb1);
}

typedef enum nss_status (*ByName3) (const char *, int, struct hostent *, char *, size_t, int *, int *,
                                    int32_t *, char **);

/* NAME.banger has an A and an AAAA answer: by family, and both at once
 * (IPv4 first) from gethostbyname4_r, which getaddrinfo uses. */
static void
test_names_resolve_to_both_addresses (Fixture *f, gconstpointer data)
{
  g_autofree char *hosts = g_build_filename (f->h->run_dir, "hosts", NULL);
  g_autoptr(Tap) t = NULL;
  void *module = dlopen (g_getenv ("BANGER_NSS"), RTLD_NOW);
  ByName3 by3 = dlsym (module, "_nss_banger_gethostbyname3_r");
  ByName4 by4 = dlsym (module, "_nss_banger_gethostbyname4_r");
  struct hostent he;
  struct gaih_addrtuple *pat = NULL;
  char buf[1024], buf4[1024], ip[INET6_ADDRSTRLEN];
  int err, herr;
  int32_t ttl;

  g_setenv ("BANGER_NSS_HOSTS", hosts, TRUE);
  t = create_tap (f, BG_TEST_USER_A, "dual");
  g_assert_nonnull (t->address6);

  g_assert_cmpint (by3 ("dual.banger", AF_INET6, &he, buf, sizeof buf, &err, &herr, &ttl, NULL), ==,
                   NSS_STATUS_SUCCESS);
  g_assert_cmpint (he.h_addrtype, ==, AF_INET6);
  g_assert_cmpint (he.h_length, ==, 16);
  g_assert_cmpstr (inet_ntop (AF_INET6, he.h_addr_list[0], ip, sizeof ip), ==, t->address6);
  g_assert_null (he.h_addr_list[1]);

  g_assert_cmpint (by4 ("dual.banger", &pat, buf4, sizeof buf4, &err, &herr, &ttl), ==, NSS_STATUS_SUCCESS);
  g_assert_cmpint (pat->family, ==, AF_INET);
  g_assert_cmpstr (inet_ntop (AF_INET, pat->addr, ip, sizeof ip), ==, t->address);
  g_assert_nonnull (pat->next);
  g_assert_cmpint (pat->next->family, ==, AF_INET6);
  g_assert_cmpstr (inet_ntop (AF_INET6, pat->next->addr, ip, sizeof ip), ==, t->address6);
  g_assert_null (pat->next->next);

  /* Too small a buffer for both is ERANGE, not a short answer. */
  pat = NULL;
  g_assert_cmpint (by4 ("dual.banger", &pat, buf4, 40, &err, &herr, &ttl), ==, NSS_STATUS_TRYAGAIN);
  g_assert_cmpint (err, ==, ERANGE);
  g_assert_cmpint (by3 ("nope.banger", AF_INET6, &he, buf, sizeof buf, &err, &herr, &ttl, NULL), ==,
                   NSS_STATUS_NOTFOUND);
}

/* The IPv6 parts drift like the IPv4 ones (an address removed by hand,
 * a flushed table, forwarding turned off): the next call makes them
 * again. */
static void
test_ipv6_drift_is_repaired (Fixture *f, gconstpointer data)
{
  g_autoptr(Tap) t = create_tap (f, BG_TEST_USER_A, "drift6");
  g_autoptr(BgCallResult) ensure = NULL;
  g_autofree char *gw = g_strdup_printf ("%s/64", t->gateway6);
  g_autofree char *addrs = NULL, *table = NULL, *fwd = NULL;

  must ("ip", "addr", "del", gw, "dev", "banger0", NULL);
  must ("nft", "flush", "table", "ip6", "banger", NULL);
  sysctl_set ("/proc/sys/net/ipv6/conf/all/forwarding", "0");

  ensure = bg_harness_call (f->h, BG_TEST_USER_A, "EnsureNetwork", "(@a{sv} {},)", NULL);
  bg_assert_call_ok (ensure);
  addrs = run ("ip", "-o", "-6", "addr", "show", "dev", "banger0", "scope", "global", NULL);
  g_assert_nonnull (strstr (addrs, gw));
  table = run ("nft", "list", "table", "ip6", "banger", NULL);
  g_assert_nonnull (strstr (table, "masquerade"));
  fwd = sysctl_get ("/proc/sys/net/ipv6/conf/all/forwarding");
  g_assert_cmpstr (fwd, ==, "1");
}

/* With subnet6=off the VMs are IPv4 only, and no ip6 rule of banger's
 * guards their link-local addresses: the bridge holds no IPv6 at all,
 * so no host user reaches a guest's fe80::…%banger0 (before, any local
 * user could). Turned off again if turned on by hand; on again when
 * network.conf asks for IPv6. */
static void
test_subnet6_off_leaves_the_bridge_without_ipv6 (Fixture *f, gconstpointer data)
{
  g_autofree char *guest = g_strdup_printf ("bgt%d-guestll", bg_harness_run_id ());
  g_autofree char *ll = NULL, *ll_addr = NULL, *ll_scoped = NULL, *off = NULL, *addrs = NULL;
  g_autoptr(BgCallResult) ensure = NULL;
  g_autoptr(Tap) t = NULL;
  GPid server = 0;
  guint8 m[6];

  bg_harness_write_config (f->h, "network.conf", "[network]\nsubnet6=off\n");
  t = create_tap (f, BG_TEST_USER_A, "guestll");
  g_assert_null (t->address6);
  parse_mac (t->mac, m);
  ll = g_strdup_printf ("fe80::%02x%02x:%02xff:fe%02x:%02x%02x", m[0] ^ 2, m[1], m[2], m[3], m[4], m[5]);
  ll_addr = g_strdup_printf ("%s/64", ll);
  ll_scoped = g_strdup_printf ("%s%%banger0", ll);
  must ("ip", "netns", "add", guest, NULL);
  must ("ip", "link", "add", "gvh", "type", "veth", "peer", "name", "gv0", "netns", guest, NULL);
  must ("ip", "link", "set", "gvh", "master", "banger0", "up", NULL);
  must ("ip", "-n", guest, "link", "set", "gv0", "address", t->mac, "addrgenmode", "none", NULL);
  must ("ip", "-n", guest, "addr", "add", ll_addr, "dev", "gv0", "nodad", NULL);
  must ("ip", "-n", guest, "link", "set", "gv0", "up", NULL);
  must ("ip", "-n", guest, "link", "set", "lo", "up", NULL);
  wait_port_forwarding ("gvh");
  /* An address of the bridge's own still checked for duplicates would
   * refuse the connection by itself: wait until it has none such. */
  for (gint64 end = bg_test_deadline (10);;)
    {
      g_autofree char *tentative = run ("ip", "-o", "-6", "addr", "show", "dev", "banger0", "tentative", NULL);

      if (tentative != NULL && *tentative == '\0')
        break;
      if (g_get_monotonic_time () >= end)
        g_error ("banger0 kept a tentative IPv6 address: %s", tentative ? tentative : "(ip failed)");
      g_usleep (50 * 1000);
    }
  {
    g_autofree char *b = connect6_as (BG_TEST_USER_B, guest, ll_scoped, &server);
    g_autofree char *a = connect6_as (BG_TEST_USER_A, guest, ll_scoped, &server);

    g_assert_true (g_str_has_prefix (b, "connect failed"));
    g_assert_true (g_str_has_prefix (a, "connect failed"));
  }
  g_assert_cmpint (server, >, 0);
  kill (server, SIGTERM);
  waitpid (server, NULL, 0);
  off = sysctl_get ("/proc/sys/net/ipv6/conf/banger0/disable_ipv6");
  g_assert_cmpstr (off, ==, "1");
  addrs = run ("ip", "-o", "-6", "addr", "show", "dev", "banger0", NULL);
  g_assert_cmpstr (addrs, ==, "");

  /* Turned on behind banger's back: off again at the next call. */
  sysctl_set ("/proc/sys/net/ipv6/conf/banger0/disable_ipv6", "0");
  ensure = bg_harness_call (f->h, BG_TEST_USER_A, "EnsureNetwork", "(@a{sv} {},)", NULL);
  bg_assert_call_ok (ensure);
  g_clear_pointer (&off, g_free);
  off = sysctl_get ("/proc/sys/net/ipv6/conf/banger0/disable_ipv6");
  g_assert_cmpstr (off, ==, "1");

  /* IPv6 wanted again: the bridge has it, and its ::1. */
  bg_harness_write_config (f->h, "network.conf", "[network]\n");
  g_clear_pointer (&ensure, bg_call_result_free);
  ensure = bg_harness_call (f->h, BG_TEST_USER_A, "EnsureNetwork", "(@a{sv} {},)", NULL);
  bg_assert_call_ok (ensure);
  if (strstr (ensure->reply, "'ipv6': <true>") == NULL)
    g_error ("IPv6 not back on: %s", ensure->reply);
  g_clear_pointer (&off, g_free);
  off = sysctl_get ("/proc/sys/net/ipv6/conf/banger0/disable_ipv6");
  g_assert_cmpstr (off, ==, "0");
  must ("ip", "netns", "del", guest, NULL);
}

/* A host with IPv6 disabled runs IPv4 VMs, and says IPv6 is off. */
static void
test_ipv6_disabled_host_runs_ipv4_vms (Fixture *f, gconstpointer data)
{
  g_autoptr(BgCallResult) ensure = NULL, info = NULL;
  g_autoptr(Tap) t = NULL;
  g_autofree char *table6 = NULL, *text = NULL, *err = NULL, *hosts = NULL, *hosts_path = NULL;

  sysctl_set ("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1");
  sysctl_set ("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
  ensure = bg_harness_call (f->h, BG_TEST_USER_A, "EnsureNetwork", "(@a{sv} {},)", NULL);
  bg_assert_call_ok (ensure);
  g_assert_nonnull (strstr (ensure->reply, "'ipv6': <false>"));
  g_assert_nonnull (strstr (ensure->reply, "'ipv6-off': <'IPv6 is disabled on this host"));
  g_assert_nonnull (strstr (ensure->reply, "'nat': <true>"));
  table6 = run ("nft", "list", "table", "ip6", "banger", NULL);
  g_assert_null (table6);

  t = create_tap (f, BG_TEST_USER_A, "four");
  g_assert_true (g_str_has_prefix (t->address, "172.30.0."));
  g_assert_null (t->address6);
  hosts_path = g_build_filename (f->h->run_dir, "hosts", NULL);
  g_assert_true (g_file_get_contents (hosts_path, &hosts, NULL, NULL));
  g_assert_null (strstr (hosts, ":"));

  info = bg_harness_call (f->h, NULL, "HostInfo", NULL, NULL);
  bg_assert_call_ok (info);
  g_assert_nonnull (strstr (info->reply, "'ipv6': <'IPv6 is disabled on this host"));
  g_assert_cmpint (bg_harness_run_cli (f->h, BG_TEST_USER_A, &text, &err, "system", "network", NULL), ==, 0);
  g_assert_nonnull (strstr (text, "IPv6:     off: IPv6 is disabled on this host"));
}

static void
add_tests (void)
{
#define ADD(path, fn) g_test_add (path, Fixture, NULL, setup, fn, teardown)
  ADD ("/network/ensure-is-complete-and-idempotent", test_ensure_network_is_complete_and_idempotent);
  ADD ("/network/tap-is-owned-by-caller-and-attached", test_tap_is_owned_by_caller_and_attached);
  ADD ("/network/fifty-taps-get-distinct-addresses", test_fifty_taps_get_distinct_addresses);
  ADD ("/network/pool-exhaustion-is-a-clear-error", test_pool_exhaustion_is_a_clear_error);
  ADD ("/network/masquerade-rewrites-source", test_masquerade_rewrites_source);
  ADD ("/network/names-resolve-while-tap-exists", test_names_resolve_while_tap_exists);
  ADD ("/network/delete-tap-errors", test_delete_tap_errors);
  ADD ("/network/crash-between-tap-and-registry-leaves-nothing", test_crash_between_tap_and_registry_leaves_nothing);
  ADD ("/network/subnet-clash-is-detected", test_subnet_clash_is_detected);
  ADD ("/network/teardown-only-when-no-taps-remain", test_teardown_only_when_no_taps_remain);
  ADD ("/network/cli-system-network-shows-taps", test_cli_system_network_shows_taps);
  ADD ("/network/taps-send-only-as-their-vm", test_taps_send_only_as_their_vm);
  ADD ("/network/netns/guards-hold-through-the-vmms-netns", test_guards_hold_through_the_vmms_netns);
  ADD ("/network/netns/stand-in-reaches-nat-through-the-vmms-netns",
       test_stand_in_reaches_nat_through_the_vmms_netns);
  ADD ("/network/rules-changed-by-hand-are-seen", test_rules_changed_by_hand_are_seen);
  ADD ("/network/ipv6/tables-dropped-by-hand-do-not-fail-a-removal", test_tables_dropped_by_hand_do_not_fail_a_removal);
  ADD ("/network/create-tap-writes-the-guards-once", test_create_tap_writes_the_guards_once);
  ADD ("/network/no-uplink-is-recorded-once", test_no_uplink_is_recorded_once);
  ADD ("/network/routing-keeps-users-apart", test_routing_keeps_users_apart);
  ADD ("/network/names-answer-only-their-owner", test_names_answer_only_their_owner);
  ADD ("/network/names-unanswered-in-a-user-namespace", test_names_unanswered_in_a_user_namespace);
  ADD ("/network/unlisted-tap-sends-nothing", test_unlisted_tap_sends_nothing);
  ADD ("/network/new-tap-is-guarded-before-it-is-up", test_new_tap_is_guarded_before_it_is_up);
  ADD ("/network/host-users-reach-only-their-own-vms", test_host_users_reach_only_their_own_vms);
  ADD ("/network/ipv6/host-users-reach-only-their-own-vms", test_host_users_reach_only_their_own_vms_over_ipv6);
  ADD ("/network/host-sends-nothing-out-a-vms-port", test_host_sends_nothing_out_a_vms_port);
  ADD ("/network/old-flows-end-with-their-address", test_old_flows_end_with_their_address);
  ADD ("/network/only-freeing-an-address-walks-conntrack", test_only_freeing_an_address_walks_conntrack);
  ADD ("/network/new-tap-changes-only-the-guards-sets", test_new_tap_changes_only_the_guards_sets);
  ADD ("/network/guard-chain-dropped-by-hand-comes-back", test_guard_chain_dropped_by_hand_comes_back);
  ADD ("/network/rolled-back-tap-forgets-its-flows", test_rolled_back_tap_forgets_its_flows);
  ADD ("/network/wiped-registry-forgets-the-subnets-flows", test_wiped_registry_forgets_the_subnets_flows);
  ADD ("/network/ipv6/ports-hold-no-host-ipv6", test_ports_hold_no_host_ipv6);
  ADD ("/network/create-tap-takes-no-other-users-tap", test_create_tap_takes_no_other_users_tap);
  ADD ("/network/ipv6/nat66-rewrites-source", test_nat66_rewrites_source);
  ADD ("/network/ipv6/uplink-still-takes-router-advertisements", test_uplink_still_takes_router_advertisements);
  ADD ("/network/ipv6/taps-send-only-as-their-vm", test_taps_send_ipv6_only_as_their_vm);
  ADD ("/network/ipv6/routing-keeps-users-apart", test_routing_keeps_users_apart_over_ipv6);
  ADD ("/network/ipv6/names-resolve-to-both-addresses", test_names_resolve_to_both_addresses);
  ADD ("/network/ipv6/drift-is-repaired", test_ipv6_drift_is_repaired);
  ADD ("/network/ipv6/disabled-host-runs-ipv4-vms", test_ipv6_disabled_host_runs_ipv4_vms);
  ADD ("/network/ipv6/subnet6-off-leaves-the-bridge-without-ipv6", test_subnet6_off_leaves_the_bridge_without_ipv6);
}

int
main (int argc, char **argv)
{
  return bg_harness_main (&argc, &argv, add_tests);
}
