/* bg-apply.c: making the guest what the drive says, idempotently.
 *
 * Every boot: host name, /etc/hosts, the interface (libnl, as the
 * mechanism does on the host), /etc/resolv.conf.
 * Once per instance-id, as cloud-init does: the pinned SSH host key (any
 * key the image carried is deleted first), the user and its sudo rule,
 * authorized_keys and the synced files. Later boots leave what the user
 * changed inside the guest alone.
 *
 * Files in the user's home are written by a child that has become the
 * user, so a symlink the user planted (~/.ssh -> /etc) cannot turn this
 * root program into a writer of someone else's files.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <linux/if_addr.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/route.h>

#include "bg-apply.h"
#include "bg-error.h"
#include "bg-file.h"
#include "bg-passwd.h"

#define STATE_DIR "/var/lib/banger-guest-setup"

static char *
in_root (const BgApplyOptions *o,
         const char           *path)
{
  return g_build_filename (o->root, path, NULL);
}

/* @path with its missing parent directories, atomically, mode exact. */
static gboolean
write_with_parents (const char  *path,
                    const char  *data,
                    gsize        len,
                    int          mode,
                    GError     **error)
{
  g_autofree char *dir = g_path_get_dirname (path);

  if (g_mkdir_with_parents (dir, 0755) < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot create %s: %s", dir, g_strerror (errno));
      return FALSE;
    }
  return bg_file_replace (path, data, len, mode, error);
}

static gboolean
write_root_file (const BgApplyOptions *o,
                 const char           *path,
                 const char           *text,
                 int                   mode,
                 GError              **error)
{
  g_autofree char *full = in_root (o, path);

  if (!write_with_parents (full, text, strlen (text), mode, error))
    {
      g_prefix_error (error, "%s: ", path);
      return FALSE;
    }
  return TRUE;
}

/* ---- every boot ---- */

static gboolean
apply_hostname (const BgSeed         *s,
                const BgApplyOptions *o,
                GError              **error)
{
  g_autofree char *hostname = g_strdup_printf ("%s\n", s->hostname);
  g_autofree char *names = s->fqdn ? g_strdup_printf ("%s %s", s->fqdn, s->hostname) : g_strdup (s->hostname);
  g_autofree char *hosts = g_strdup_printf ("# written by banger-guest-setup at every boot\n"
                                            "127.0.0.1\tlocalhost\n"
                                            "127.0.1.1\t%s\n"
                                            "::1\tlocalhost ip6-localhost ip6-loopback\n"
                                            "ff02::1\tip6-allnodes\n"
                                            "ff02::2\tip6-allrouters\n", names);

  if (!write_root_file (o, "/etc/hostname", hostname, 0644, error) ||
      !write_root_file (o, "/etc/hosts", hosts, 0644, error))
    return FALSE;
  if (g_str_equal (o->root, "/") && sethostname (s->hostname, strlen (s->hostname)) < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot set the host name: %s", g_strerror (errno));
      return FALSE;
    }
  return TRUE;
}

static gboolean
apply_resolver (const BgSeed         *s,
                const BgApplyOptions *o,
                GError              **error)
{
  g_autoptr(GString) text = g_string_new ("# written by banger-guest-setup at every boot\n");

  for (guint i = 0; s->dns[i]; i++)
    g_string_append_printf (text, "nameserver %s\n", s->dns[i]);
  if (s->search[0] != NULL)
    {
      g_autofree char *search = g_strjoinv (" ", s->search);
      g_string_append_printf (text, "search %s\n", search);
    }
  /* rename() replaces a symlink (say, to a resolved stub) itself. */
  return write_root_file (o, "/etc/resolv.conf", text->str, 0644, error);
}

typedef struct nl_sock nl_sock_t;
typedef struct rtnl_link rtnl_link_t;
typedef struct nl_cache nl_cache_t;
typedef struct nl_addr nl_addr_t;
G_DEFINE_AUTOPTR_CLEANUP_FUNC (nl_sock_t, nl_socket_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (rtnl_link_t, rtnl_link_put)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (nl_cache_t, nl_cache_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (nl_addr_t, nl_addr_put)

static gboolean
nl_fail (GError    **error,
         int         err,
         const char *what,
         const char *ifname)
{
  g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "%s %s: %s", what, ifname, nl_geterror (err));
  return FALSE;
}

static nl_addr_t *
ipv4 (guint32 host_order,
      guint   prefix)
{
  guint32 be = htonl (host_order);
  struct nl_addr *a = nl_addr_build (AF_INET, &be, sizeof be);

  nl_addr_set_prefixlen (a, prefix);
  return a;
}

/* The IPv6 address and default route, when the drive gives them. No
 * duplicate address detection: the mechanism gave this address to this
 * VM alone, and DAD would leave it unusable for the first second. */
static gboolean
apply_network6 (struct nl_sock       *sk,
                const BgSeed         *s,
                int                   ifindex,
                const char           *name,
                GError              **error)
{
  g_autoptr(nl_addr_t) local = nl_addr_build (AF_INET6, s->address6, 16);
  struct rtnl_addr *addr = rtnl_addr_alloc ();
  char text[INET6_ADDRSTRLEN], via[INET6_ADDRSTRLEN] = "(none)";
  int err;

  nl_addr_set_prefixlen (local, s->prefix6);
  rtnl_addr_set_ifindex (addr, ifindex);
  rtnl_addr_set_local (addr, local);
  rtnl_addr_set_prefixlen (addr, s->prefix6);
  rtnl_addr_set_flags (addr, IFA_F_NODAD);
  err = rtnl_addr_add (sk, addr, NLM_F_REPLACE);
  rtnl_addr_put (addr);
  if (err < 0)
    return nl_fail (error, err, "cannot give an IPv6 address to", name);
  if (s->has_gateway6)
    {
      g_autoptr(nl_addr_t) dst = nl_addr_build (AF_INET6, (guint8[16]) { 0 }, 16);
      g_autoptr(nl_addr_t) gw = nl_addr_build (AF_INET6, s->gateway6, 16);
      struct rtnl_route *r = rtnl_route_alloc ();
      struct rtnl_nexthop *nh = rtnl_route_nh_alloc ();

      nl_addr_set_prefixlen (dst, 0);
      rtnl_route_set_family (r, AF_INET6);
      rtnl_route_set_table (r, RT_TABLE_MAIN);
      rtnl_route_set_protocol (r, RTPROT_STATIC);
      rtnl_route_set_dst (r, dst);
      rtnl_route_nh_set_ifindex (nh, ifindex);
      rtnl_route_nh_set_gateway (nh, gw);
      rtnl_route_add_nexthop (r, nh);
      err = rtnl_route_add (sk, r, NLM_F_CREATE | NLM_F_REPLACE);
      rtnl_route_put (r);
      if (err < 0)
        return nl_fail (error, err, "cannot add the IPv6 default route via", name);
      inet_ntop (AF_INET6, s->gateway6, via, sizeof via);
    }
  g_print ("network: %s %s/%u via %s\n", name, inet_ntop (AF_INET6, s->address6, text, sizeof text), s->prefix6,
           via);
  return TRUE;
}

static rtnl_link_t *
link_by_mac (struct nl_sock *sk,
             const char     *mac,
             GError        **error)
{
  g_autoptr(nl_cache_t) cache = NULL;
  g_autoptr(nl_addr_t) want = NULL;
  int err;

  if ((err = nl_addr_parse (mac, AF_LLC, &want)) < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "network-config: macaddress %s: %s", mac,
                   nl_geterror (err));
      return NULL;
    }
  if ((err = rtnl_link_alloc_cache (sk, AF_UNSPEC, &cache)) < 0)
    {
      nl_fail (error, err, "cannot list", "the interfaces");
      return NULL;
    }
  for (struct nl_object *obj = nl_cache_get_first (cache); obj; obj = nl_cache_get_next (obj))
    {
      struct rtnl_link *l = (struct rtnl_link *) obj;
      struct nl_addr *a = rtnl_link_get_addr (l);

      if (a && nl_addr_get_len (a) == nl_addr_get_len (want) && nl_addr_cmp (a, want) == 0)
        {
          nl_object_get (obj);
          return l;
        }
    }
  g_set_error (error, BG_ERROR, BG_ERROR_NOT_FOUND,
               "network-config: no interface has the MAC address %s (is this the VM the drive was made for?)", mac);
  return NULL;
}

static gboolean
apply_network (const BgSeed         *s,
               const BgApplyOptions *o,
               GError              **error)
{
  g_autoptr(nl_sock_t) sk = nl_socket_alloc ();
  g_autoptr(rtnl_link_t) link = NULL;
  g_autofree char *name = NULL;
  int err, ifindex;

  if (sk == NULL || (err = nl_connect (sk, NETLINK_ROUTE)) < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot open a netlink socket");
      return FALSE;
    }
  if ((link = link_by_mac (sk, s->mac, error)) == NULL)
    return FALSE;
  ifindex = rtnl_link_get_ifindex (link);
  name = g_strdup (rtnl_link_get_name (link));

  /* The kernel renames only links that are down. */
  if (s->set_name && !g_str_equal (name, s->set_name))
    {
      g_autoptr(rtnl_link_t) down = rtnl_link_alloc ();
      g_autoptr(rtnl_link_t) rename = rtnl_link_alloc ();
      g_autoptr(rtnl_link_t) other = NULL;

      if (rtnl_link_get_kernel (sk, 0, s->set_name, &other) == 0)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_EXISTS, "network-config: set-name: another interface is named %s",
                       s->set_name);
          return FALSE;
        }
      rtnl_link_unset_flags (down, IFF_UP);
      rtnl_link_set_name (rename, s->set_name);
      if ((err = rtnl_link_change (sk, link, down, 0)) < 0 || (err = rtnl_link_change (sk, link, rename, 0)) < 0)
        return nl_fail (error, err, "cannot rename", name);
      g_free (name);
      name = g_strdup (s->set_name);
    }
  {
    g_autoptr(rtnl_link_t) up = rtnl_link_alloc ();
    g_autoptr(rtnl_link_t) current = NULL;

    if ((err = rtnl_link_get_kernel (sk, ifindex, NULL, &current)) < 0)
      return nl_fail (error, err, "cannot find", name);
    rtnl_link_set_flags (up, IFF_UP);
    if ((err = rtnl_link_change (sk, current, up, 0)) < 0)
      return nl_fail (error, err, "cannot bring up", name);
  }
  {
    g_autoptr(nl_addr_t) local = ipv4 (s->address, s->prefix);
    struct rtnl_addr *addr = rtnl_addr_alloc ();

    rtnl_addr_set_ifindex (addr, ifindex);
    rtnl_addr_set_local (addr, local);
    rtnl_addr_set_prefixlen (addr, s->prefix);
    err = rtnl_addr_add (sk, addr, NLM_F_REPLACE);
    rtnl_addr_put (addr);
    if (err < 0)
      return nl_fail (error, err, "cannot give an address to", name);
  }
  if (s->gateway != 0)
    {
      g_autoptr(nl_addr_t) dst = ipv4 (0, 0);
      g_autoptr(nl_addr_t) via = ipv4 (s->gateway, 32);
      struct rtnl_route *r = rtnl_route_alloc ();
      struct rtnl_nexthop *nh = rtnl_route_nh_alloc ();

      rtnl_route_set_family (r, AF_INET);
      rtnl_route_set_table (r, RT_TABLE_MAIN);
      rtnl_route_set_protocol (r, RTPROT_STATIC);
      rtnl_route_set_dst (r, dst);
      rtnl_route_nh_set_ifindex (nh, ifindex);
      rtnl_route_nh_set_gateway (nh, via);
      rtnl_route_add_nexthop (r, nh);
      err = rtnl_route_add (sk, r, NLM_F_CREATE | NLM_F_REPLACE);
      rtnl_route_put (r);
      if (err < 0)
        return nl_fail (error, err, "cannot add the default route via", name);
    }
  {
    struct in_addr a = { htonl (s->address) }, g = { htonl (s->gateway) };
    g_autofree char *as = g_strdup (inet_ntoa (a));
    g_print ("network: %s %s/%u via %s\n", name, as, s->prefix, s->gateway ? inet_ntoa (g) : "(none)");
  }
  /* A guest kernel without IPv6 still gets its IPv4 network. */
  if (s->has_address6)
    {
      g_autoptr(GError) local = NULL;
      if (!apply_network6 (sk, s, ifindex, name, &local))
        g_printerr ("banger-guest-setup: %s; the VM has IPv4 only\n", local->message);
    }
  return TRUE;
}

/* ---- once per instance ---- */

static gboolean
apply_host_key (const BgSeed         *s,
                const BgApplyOptions *o,
                GError              **error)
{
  g_autofree char *ssh = in_root (o, "/etc/ssh");
  g_autoptr(GDir) dir = g_dir_open (ssh, 0, NULL);
  g_autofree char *priv = g_str_has_suffix (s->host_key_private, "\n") ? g_strdup (s->host_key_private)
                                                                       : g_strdup_printf ("%s\n", s->host_key_private);
  g_autofree char *pub = g_strdup_printf ("%s\n", s->host_key_public);
  const char *entry;

  /* Keys baked into the image or invented by a package script are
   * not the pinned one: sshd must not offer them. */
  while (dir && (entry = g_dir_read_name (dir)) != NULL)
    if (g_str_has_prefix (entry, "ssh_host_"))
      {
        g_autofree char *path = g_build_filename (ssh, entry, NULL);
        g_unlink (path);
      }
  return write_root_file (o, "/etc/ssh/ssh_host_ed25519_key", priv, 0600, error) &&
         write_root_file (o, "/etc/ssh/ssh_host_ed25519_key.pub", pub, 0644, error);
}

/* getpwnam() would ask this system's NSS, not the tree being set up; and
 * in this static program it would need the image's libnss_*.so of the
 * host's glibc version. banger's own reader reads the tree's files. */
static gboolean
lookup_user (const BgApplyOptions *o,
             const char           *user,
             uid_t                *uid,
             gid_t                *gid,
             char                **home)
{
  BgPasswdUser pw;

  /* seed validation made @user a name (it never starts with a digit),
   * so the reader looks it up by name, never as a bare uid. */
  if (bg_passwd_lookup (o->root, user, &pw) < 0)
    return FALSE;
  *uid = pw.uid;
  *gid = pw.gid;
  g_free (*home);
  *home = g_strdup (pw.home);
  return TRUE;
}

static gboolean
apply_user (const BgSeed         *s,
            const BgApplyOptions *o,
            uid_t                *uid,
            gid_t                *gid,
            char                **home,
            GError              **error)
{
  if (!lookup_user (o, s->user, uid, gid, home))
    {
      g_autoptr(GPtrArray) argv = g_ptr_array_new ();
      g_autofree char *err = NULL;
      int status;

      g_ptr_array_add (argv, "useradd");
      if (!g_str_equal (o->root, "/"))
        {
          g_ptr_array_add (argv, "--prefix");
          g_ptr_array_add (argv, (char *) o->root);
        }
      g_ptr_array_add (argv, "--create-home");
      g_ptr_array_add (argv, "--user-group");
      g_ptr_array_add (argv, "--shell");
      g_ptr_array_add (argv, s->shell);
      g_ptr_array_add (argv, "--comment");
      g_ptr_array_add (argv, "banger");
      g_ptr_array_add (argv, "--");
      g_ptr_array_add (argv, s->user);
      g_ptr_array_add (argv, NULL);
      if (!g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL, NULL,
                         NULL, NULL, &err, &status, error))
        return FALSE;
      if (!g_spawn_check_wait_status (status, NULL))
        {
          g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "useradd %s failed: %s", s->user, g_strstrip (err));
          return FALSE;
        }
      if (!lookup_user (o, s->user, uid, gid, home))
        {
          g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "useradd %s left no entry in /etc/passwd", s->user);
          return FALSE;
        }
      g_print ("user: %s created (uid %u)\n", s->user, (guint) *uid);
    }
  if (*uid == 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_UNSAFE, "user-data: users[0].name: %s has uid 0", s->user);
      return FALSE;
    }
  if (s->sudo)
    {
      g_autofree char *rule = g_strdup_printf ("# written by banger-guest-setup\n%s %s\n", s->user, s->sudo);
      return write_root_file (o, "/etc/sudoers.d/90-banger", rule, 0440, error);
    }
  {
    g_autofree char *path = in_root (o, "/etc/sudoers.d/90-banger");
    g_unlink (path);
  }
  return TRUE;
}

/* Runs in a child that is the user and nothing more. */
static int
user_files_child (const BgSeed         *s,
                  const BgApplyOptions *o,
                  const char           *home)
{
  g_autofree char *home_in_root = in_root (o, home);
  g_autofree char *ssh = g_build_filename (home_in_root, ".ssh", NULL);
  g_autofree char *keys = g_build_filename (ssh, "authorized_keys", NULL);
  g_autofree char *prefix = g_str_has_suffix (home, "/") ? g_strdup (home) : g_strdup_printf ("%s/", home);
  g_autofree char *joined = g_strjoinv ("\n", s->authorized_keys);
  g_autofree char *text = NULL;
  g_autoptr(GError) error = NULL;

  if (g_mkdir_with_parents (ssh, 0700) < 0 || g_chmod (ssh, 0700) < 0)
    {
      g_printerr ("banger-guest-setup: cannot create %s: %s\n", ssh, g_strerror (errno));
      return 1;
    }
  text = s->authorized_keys[0] ? g_strconcat (joined, "\n", NULL) : g_strdup ("");
  if (!bg_file_replace (keys, text, -1, 0600, &error))
    {
      g_printerr ("banger-guest-setup: %s\n", error->message);
      return 1;
    }
  for (guint i = 0; i < s->files->len; i++)
    {
      BgSeedFile *f = s->files->pdata[i];
      g_autofree char *path = NULL;
      const char *data;
      gsize len;

      if (!g_str_has_prefix (f->path, prefix))
        {
          g_printerr ("banger-guest-setup: user-data: write_files[%u].path: %s is not below %s's home %s\n", i,
                      f->path, s->user, home);
          return 1;
        }
      path = in_root (o, f->path);
      data = g_bytes_get_data (f->content, &len);
      if (!write_with_parents (path, data ? data : "", len, f->mode & 0777, &error))
        {
          g_printerr ("banger-guest-setup: %s: %s\n", f->path, error->message);
          return 1;
        }
    }
  return 0;
}

static gboolean
apply_user_files (const BgSeed         *s,
                  const BgApplyOptions *o,
                  uid_t                 uid,
                  gid_t                 gid,
                  const char           *home,
                  GError              **error)
{
  int status;
  pid_t pid;

  /* This program has no threads, so the child may use GLib. */
  pid = fork ();
  if (pid < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "fork: %s", g_strerror (errno));
      return FALSE;
    }
  if (pid == 0)
    {
      if (setgroups (0, NULL) < 0 || setresgid (gid, gid, gid) < 0 || setresuid (uid, uid, uid) < 0)
        _exit (126);
      umask (022);
      _exit (user_files_child (s, o, home));
    }
  while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "writing %s's authorized_keys and files failed%s", s->user,
                   WIFEXITED (status) && WEXITSTATUS (status) == 126 ? ": cannot become the user" : " (see above)");
      return FALSE;
    }
  g_print ("user: %s: %u authorized key(s), %u file(s) written\n", s->user, g_strv_length (s->authorized_keys),
           s->files->len);
  return TRUE;
}

gboolean
bg_apply_seed (const BgSeed         *s,
               const BgApplyOptions *o,
               GError              **error)
{
  g_autofree char *marker = in_root (o, STATE_DIR "/instance-id");
  g_autofree char *applied = NULL;
  g_autofree char *home = NULL;
  gboolean first;
  uid_t uid;
  gid_t gid;

  if (g_file_get_contents (marker, &applied, NULL, NULL))
    g_strstrip (applied);
  first = g_strcmp0 (applied, s->instance_id) != 0;

  if (!apply_hostname (s, o, error) || !apply_resolver (s, o, error))
    return FALSE;
  g_print ("hostname: %s\n", s->hostname);
  if (o->network && !apply_network (s, o, error))
    return FALSE;

  if (!first)
    {
      g_print ("instance %s: already set up; user, keys and files left as they are\n", s->instance_id);
      return TRUE;
    }
  if (!apply_host_key (s, o, error))
    return FALSE;
  g_print ("ssh: host key pinned (%s)\n", s->host_key_public);
  if (!apply_user (s, o, &uid, &gid, &home, error) || !apply_user_files (s, o, uid, gid, home, error))
    return FALSE;
  {
    g_autofree char *text = g_strdup_printf ("%s\n", s->instance_id);
    if (!write_root_file (o, STATE_DIR "/instance-id", text, 0644, error))
      return FALSE;
  }
  return TRUE;
}
