/* network.c: the VM network — one bridge, a tap per VM, NAT, names.
 *
 * Netlink through libnl-route-3 (never `ip`); NAT and forwarding rules in
 * banger's own nftables table (`ip banger`) through libnftables, in-process
 * and applied as one atomic transaction, so the host's own rules are never
 * touched and teardown is dropping that one table.
 *
 * Callers choose nothing but their VM's name: the bridge, subnet and
 * uplink come from /etc/banger/network.conf, addresses and MACs are
 * derived here. Routes stay on the bridge, never per tap, so a leaked tap
 * cannot swallow the return traffic of the next VM.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>
#include <netlink/route/route.h>
#include <nftables/libnftables.h>

#include "bg-error.h"
#include "bg-file.h"
#include "bg-names.h"
#include "auth.h"
#include "network.h"
#include "validate.h"

#define NFT_TABLE "banger"
#define TAP_PREFIX "bg-"
#define DEFAULT_BRIDGE "banger0"
#define DEFAULT_DOMAIN "banger"

struct _BgNetwork {
  BgDaemon *daemon;
};

typedef struct {
  char    *bridge;
  gboolean subnet_auto;
  guint32  subnet;      /* host order */
  guint    prefix;
  char    *domain;
  char    *uplink;      /* NULL: the default route's interface */
  char   **dns;         /* NULL: from the host's resolv.conf */
} NetConfig;

static void
net_config_free (NetConfig *c)
{
  g_free (c->bridge);
  g_free (c->domain);
  g_free (c->uplink);
  g_strfreev (c->dns);
  g_free (c);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (NetConfig, net_config_free)

/* ---- names, addresses ---- */

/* Interface names reach the kernel and nft; allow what `ip` would, minus
 * anything that could be mistaken for syntax. */
gboolean
bg_network_validate_ifname (const char  *field,
                            const char  *name,
                            GError     **error)
{
  gsize len = name ? strlen (name) : 0;

  if (len == 0 || len >= IFNAMSIZ)
    goto bad;
  for (gsize i = 0; i < len; i++)
    if (!g_ascii_isalnum (name[i]) && name[i] != '-' && name[i] != '_')
      goto bad;
  if (name[0] == '-')
    goto bad;
  return TRUE;

bad:
  {
    g_autofree char *shown = g_strescape (name ? name : "", NULL);
    g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                 "%s: \"%.32s\" is not a valid interface name (1 to 15 of a-z, A-Z, 0-9, '-', '_')",
                 field, shown);
  }
  return FALSE;
}

gboolean
bg_network_validate_tap_name (const char  *field,
                   const char  *name,
                   GError     **error)
{
  gsize len = name ? strlen (name) : 0;

  if (len == strlen (TAP_PREFIX) + 12 && g_str_has_prefix (name, TAP_PREFIX))
    {
      gboolean hex = TRUE;
      for (gsize i = strlen (TAP_PREFIX); i < len; i++)
        hex &= g_ascii_isxdigit (name[i]) && !g_ascii_isupper (name[i]);
      if (hex)
        return TRUE;
    }
  {
    g_autofree char *shown = g_strescape (name ? name : "", NULL);
    g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                 "%s: \"%.32s\" is not a banger tap name (bg- and 12 hex digits)", field, shown);
  }
  return FALSE;
}

static char *
digest (guint32     owner,
        const char *vm_name,
        const char *purpose)
{
  g_autofree char *input = g_strdup_printf ("%s:%u:%s", purpose, owner, vm_name);
  return g_compute_checksum_for_string (G_CHECKSUM_SHA256, input, -1);
}

/* Stable across restarts: derived from the owner and the VM name. */
char *
bg_network_tap_name (guint32     owner,
                     const char *vm_name)
{
  g_autofree char *d = digest (owner, vm_name, "tap");
  return g_strdup_printf (TAP_PREFIX "%.12s", d);
}

/* A locally administered unicast MAC (02:...), stable for owner + name. */
char *
bg_network_guest_mac (guint32     owner,
                      const char *vm_name)
{
  g_autofree char *d = digest (owner, vm_name, "mac");
  return g_strdup_printf ("02:%.2s:%.2s:%.2s:%.2s:%.2s", d, d + 2, d + 4, d + 6, d + 8);
}

gboolean
bg_network_parse_subnet (const char  *text,
                         guint32     *network,
                         guint       *prefix,
                         GError     **error)
{
  g_auto(GStrv) parts = g_strsplit (text, "/", 2);
  struct in_addr addr;
  guint64 p;
  guint32 mask;

  if (g_strv_length (parts) != 2 || inet_pton (AF_INET, parts[0], &addr) != 1 ||
      !g_ascii_string_to_unsigned (parts[1], 10, 16, 28, &p, NULL))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                   "subnet: \"%s\" is not an IPv4 subnet with a prefix of 16 to 28, like 172.30.0.0/24",
                   text);
      return FALSE;
    }
  mask = 0xffffffffu << (32 - p);
  if ((ntohl (addr.s_addr) & ~mask) != 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                   "subnet: \"%s\" has host bits set", text);
      return FALSE;
    }
  *network = ntohl (addr.s_addr);
  *prefix = p;
  return TRUE;
}

static char *
format_ip (guint32 host_order)
{
  struct in_addr a = { htonl (host_order) };
  char buf[INET_ADDRSTRLEN];

  return g_strdup (inet_ntop (AF_INET, &a, buf, sizeof buf));
}

static gboolean
parse_ip (const char *text,
          guint32    *out)
{
  struct in_addr a;

  if (text == NULL || inet_pton (AF_INET, text, &a) != 1)
    return FALSE;
  *out = ntohl (a.s_addr);
  return TRUE;
}

/* ---- config ---- */

static NetConfig *
load_config (BgNetwork  *network,
             GError    **error)
{
  g_autoptr(NetConfig) c = g_new0 (NetConfig, 1);
  g_autoptr(GKeyFile) kf = g_key_file_new ();
  g_autoptr(GError) local = NULL;
  g_autofree char *path = g_build_filename (bg_daemon_get_config_dir (network->daemon),
                                            "network.conf", NULL);
  g_autofree char *subnet = NULL;
  g_autofree char *dns = NULL;

  if (!g_key_file_load_from_file (kf, path, G_KEY_FILE_NONE, &local) &&
      !g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "%s: %s", path, local->message);
      return NULL;
    }

#define GET(key) g_strstrip (g_key_file_get_string (kf, "network", key, NULL) ?: g_strdup (""))
  c->bridge = GET ("bridge");
  subnet = GET ("subnet");
  c->domain = GET ("domain");
  c->uplink = GET ("uplink");
  dns = GET ("dns");
#undef GET

  if (*c->bridge == '\0')
    g_free (c->bridge), c->bridge = g_strdup (DEFAULT_BRIDGE);
  if (!bg_network_validate_ifname ("bridge", c->bridge, error) ||
      g_str_has_prefix (c->bridge, TAP_PREFIX))
    {
      g_prefix_error (error, "%s: ", path);
      if (error && *error == NULL)
        g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "%s: bridge must not start with " TAP_PREFIX, path);
      return NULL;
    }

  if (*subnet == '\0' || g_str_equal (subnet, "auto"))
    c->subnet_auto = TRUE;
  else if (!bg_network_parse_subnet (subnet, &c->subnet, &c->prefix, error))
    {
      g_prefix_error (error, "%s: ", path);
      return NULL;
    }

  if (*c->domain == '\0')
    g_free (c->domain), c->domain = g_strdup (DEFAULT_DOMAIN);
  if (!bg_name_is_valid (c->domain))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED,
                   "%s: domain: \"%s\" must be one DNS label (%s)", path, c->domain, BG_NAME_RULE);
      return NULL;
    }

  if (*c->uplink == '\0' || g_str_equal (c->uplink, "auto"))
    g_clear_pointer (&c->uplink, g_free);
  else if (!bg_network_validate_ifname ("uplink", c->uplink, error))
    {
      g_prefix_error (error, "%s: ", path);
      return NULL;
    }

  if (*dns != '\0' && !g_str_equal (dns, "auto"))
    {
      c->dns = g_strsplit_set (dns, ";, ", -1);
      for (guint i = 0; c->dns[i]; i++)
        {
          guint32 ip;
          if (*c->dns[i] != '\0' && !parse_ip (c->dns[i], &ip))
            {
              g_set_error (error, BG_ERROR, BG_ERROR_FAILED,
                           "%s: dns: \"%s\" is not an IPv4 address", path, c->dns[i]);
              return NULL;
            }
        }
    }

  return g_steal_pointer (&c);
}

/* Name servers a guest can use: the host's, minus loopback ones (a stub
 * resolver on 127.0.0.53 is unreachable from a VM); with systemd-resolved,
 * its upstream list. */
static char **
guest_dns (NetConfig *c)
{
  static const char * const files[] = { "/etc/resolv.conf", "/run/systemd/resolve/resolv.conf" };
  g_autoptr(GPtrArray) servers = g_ptr_array_new_with_free_func (g_free);

  if (c->dns != NULL)
    {
      for (guint i = 0; c->dns[i]; i++)
        if (*c->dns[i])
          g_ptr_array_add (servers, g_strdup (c->dns[i]));
    }
  for (guint f = 0; c->dns == NULL && f < G_N_ELEMENTS (files) && servers->len == 0; f++)
    {
      g_autofree char *text = NULL;
      g_auto(GStrv) lines = NULL;

      if (!g_file_get_contents (files[f], &text, NULL, NULL))
        continue;
      lines = g_strsplit (text, "\n", -1);
      for (guint i = 0; lines[i]; i++)
        {
          g_auto(GStrv) words = g_strsplit_set (g_strstrip (lines[i]), " \t", -1);
          guint32 ip;

          if (g_strv_length (words) >= 2 && g_str_equal (words[0], "nameserver") &&
              parse_ip (words[1], &ip) && (ip >> 24) != 127 && servers->len < 3)
            g_ptr_array_add (servers, g_strdup (words[1]));
        }
    }
  g_ptr_array_add (servers, NULL);
  return (char **) g_ptr_array_free (g_steal_pointer (&servers), FALSE);
}

/* ---- netlink ---- */

static struct nl_sock *
nl_open (GError **error)
{
  struct nl_sock *sk = nl_socket_alloc ();
  int err;

  if (sk == NULL)
    {
      g_set_error_literal (error, BG_ERROR, BG_ERROR_FAILED, "out of memory for a netlink socket");
      return NULL;
    }
  if ((err = nl_connect (sk, NETLINK_ROUTE)) < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot open netlink: %s", nl_geterror (err));
      nl_socket_free (sk);
      return NULL;
    }
  return sk;
}

typedef struct nl_sock nl_sock_t;
G_DEFINE_AUTOPTR_CLEANUP_FUNC (nl_sock_t, nl_socket_free)

static void
link_put (struct rtnl_link *link)
{
  if (link)
    rtnl_link_put (link);
}
typedef struct rtnl_link rtnl_link_t;
G_DEFINE_AUTOPTR_CLEANUP_FUNC (rtnl_link_t, link_put)

static gboolean
nl_fail (GError    **error,
         int         err,
         const char *format,
         ...) G_GNUC_PRINTF (3, 4);

static gboolean
nl_fail (GError    **error,
         int         err,
         const char *format,
         ...)
{
  g_autofree char *what = NULL;
  va_list args;

  va_start (args, format);
  what = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "%s: %s", what, nl_geterror (err));
  return FALSE;
}

static struct rtnl_link *
link_get (struct nl_sock *sk,
          const char     *name)
{
  struct rtnl_link *link = NULL;

  if (rtnl_link_get_kernel (sk, 0, name, &link) < 0)
    return NULL;
  return link;
}

static gboolean
link_set_up (struct nl_sock    *sk,
             struct rtnl_link  *link,
             int                master,
             GError           **error)
{
  g_autoptr(rtnl_link_t) change = rtnl_link_alloc ();
  int err;

  rtnl_link_set_flags (change, IFF_UP);
  if (master > 0)
    rtnl_link_set_master (change, master);
  if ((err = rtnl_link_change (sk, link, change, 0)) < 0)
    return nl_fail (error, err, "cannot bring %s up", rtnl_link_get_name (link));
  return TRUE;
}

static gboolean
link_delete (struct nl_sock  *sk,
             const char      *name,
             GError         **error)
{
  g_autoptr(rtnl_link_t) link = rtnl_link_alloc ();
  int err;

  rtnl_link_set_name (link, name);
  err = rtnl_link_delete (sk, link);
  if (err < 0 && err != -NLE_OBJ_NOTFOUND && err != -NLE_NODEV)
    return nl_fail (error, err, "cannot delete %s", name);
  return TRUE;
}

typedef struct {
  int      ifindex;
  guint32  want;
  guint    prefix;
  gboolean found;
} AddrSearch;

static void
addr_match (struct nl_object *obj,
            void             *data)
{
  AddrSearch *s = data;
  struct rtnl_addr *a = (struct rtnl_addr *) obj;
  struct nl_addr *local = rtnl_addr_get_local (a);

  if (rtnl_addr_get_ifindex (a) != s->ifindex || rtnl_addr_get_family (a) != AF_INET || local == NULL)
    return;
  if ((guint) rtnl_addr_get_prefixlen (a) == s->prefix &&
      ntohl (*(guint32 *) nl_addr_get_binary_addr (local)) == s->want)
    s->found = TRUE;
}

static gboolean
bridge_has_address (struct nl_sock *sk,
                    int             ifindex,
                    guint32         gateway,
                    guint           prefix)
{
  struct nl_cache *cache = NULL;
  AddrSearch s = { ifindex, gateway, prefix, FALSE };

  if (rtnl_addr_alloc_cache (sk, &cache) < 0)
    return FALSE;
  nl_cache_foreach (cache, addr_match, &s);
  nl_cache_free (cache);
  return s.found;
}

static gboolean
bridge_add_address (struct nl_sock  *sk,
                    int              ifindex,
                    guint32          gateway,
                    guint            prefix,
                    GError         **error)
{
  struct rtnl_addr *addr = rtnl_addr_alloc ();
  struct nl_addr *local;
  guint32 be = htonl (gateway);
  int err;

  local = nl_addr_build (AF_INET, &be, sizeof be);
  nl_addr_set_prefixlen (local, prefix);
  rtnl_addr_set_ifindex (addr, ifindex);
  rtnl_addr_set_local (addr, local);
  rtnl_addr_set_prefixlen (addr, prefix);
  err = rtnl_addr_add (sk, addr, 0);
  nl_addr_put (local);
  rtnl_addr_put (addr);
  if (err < 0 && err != -NLE_EXIST)
    return nl_fail (error, err, "cannot add the gateway address to the bridge");
  return TRUE;
}

typedef struct {
  int      skip_ifindex;    /* our bridge: its own route is no clash */
  guint32  net;
  guint    prefix;
  char    *clash;           /* the first route that clashes */
  int      clash_oif;
  int      default_oif;
} RouteScan;

static gboolean
overlaps (guint32 a, guint pa, guint32 b, guint pb)
{
  guint p = MIN (pa, pb);
  guint32 mask = p == 0 ? 0 : 0xffffffffu << (32 - p);

  return (a & mask) == (b & mask);
}

static void
route_scan (struct nl_object *obj,
            void             *data)
{
  RouteScan *s = data;
  struct rtnl_route *r = (struct rtnl_route *) obj;
  struct nl_addr *dst = rtnl_route_get_dst (r);
  struct rtnl_nexthop *nh;
  guint plen;
  guint32 dnet = 0;
  int oif = 0;

  if (rtnl_route_get_table (r) != RT_TABLE_MAIN || rtnl_route_get_family (r) != AF_INET)
    return;
  if (rtnl_route_get_nnexthops (r) > 0 && (nh = rtnl_route_nexthop_n (r, 0)) != NULL)
    oif = rtnl_route_nh_get_ifindex (nh);

  plen = dst ? nl_addr_get_prefixlen (dst) : 0;
  if (plen == 0)
    {
      if (s->default_oif == 0)
        s->default_oif = oif;
      return;
    }
  dnet = ntohl (*(guint32 *) nl_addr_get_binary_addr (dst));
  if (oif == s->skip_ifindex || s->clash != NULL)
    return;
  if (overlaps (dnet, plen, s->net, s->prefix))
    {
      g_autofree char *ip = format_ip (dnet);

      s->clash = g_strdup_printf ("%s/%u", ip, plen);
      s->clash_oif = oif;
    }
}

static char *
link_name (struct nl_sock *sk,
           int             ifindex)
{
  struct rtnl_link *link = NULL;
  char *name;

  if (ifindex <= 0 || rtnl_link_get_kernel (sk, ifindex, NULL, &link) < 0)
    return NULL;
  name = g_strdup (rtnl_link_get_name (link));
  rtnl_link_put (link);
  return name;
}

static gboolean
scan_routes (struct nl_sock *sk,
             RouteScan      *s,
             GError        **error)
{
  struct nl_cache *cache = NULL;
  int err;

  if ((err = rtnl_route_alloc_cache (sk, AF_INET, 0, &cache)) < 0)
    return nl_fail (error, err, "cannot read the routing table");
  nl_cache_foreach (cache, route_scan, s);
  nl_cache_free (cache);
  return TRUE;
}

/* The first 172.16/12 /24 no route on the host covers, from 172.30.0.0
 * upward (the low ones are where Docker and friends live). */
static gboolean
pick_subnet (struct nl_sock  *sk,
             guint32         *net,
             GError         **error)
{
  struct nl_cache *cache = NULL;
  int err;

  if ((err = rtnl_route_alloc_cache (sk, AF_INET, 0, &cache)) < 0)
    return nl_fail (error, err, "cannot read the routing table");
  for (guint i = 0; i < 256 * 16; i++)
    {
      guint32 candidate = (172u << 24) | (((16u << 8) + ((14u * 256 + i) % (256 * 16))) << 8);
      RouteScan s = { -1, candidate, 24, NULL, 0, 0 };

      nl_cache_foreach (cache, route_scan, &s);
      if (s.clash == NULL)
        {
          *net = candidate;
          nl_cache_free (cache);
          return TRUE;
        }
      g_free (s.clash);
    }
  nl_cache_free (cache);
  g_set_error_literal (error, BG_ERROR, BG_ERROR_FAILED,
                       "every /24 in 172.16.0.0/12 is routed on this host; set subnet= in network.conf");
  return FALSE;
}

/* ---- sysctl ---- */

static char *
forwarding_path (const char *ifname)
{
  return g_strdup_printf ("/proc/sys/net/ipv4/conf/%s/forwarding", ifname);
}

static gboolean
forwarding_enabled (const char *ifname)
{
  g_autofree char *path = forwarding_path (ifname);
  g_autofree char *text = NULL;

  return g_file_get_contents (path, &text, NULL, NULL) && text[0] == '1';
}

static gboolean
enable_forwarding (const char  *ifname,
                   GError     **error)
{
  g_autofree char *path = forwarding_path (ifname);
  int fd = open (path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);

  if (fd < 0 || write (fd, "1\n", 2) != 2)
    {
      int errsv = errno;
      if (fd >= 0)
        close (fd);
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED,
                   "cannot enable forwarding on %s: %s", ifname, g_strerror (errsv));
      return FALSE;
    }
  close (fd);
  return TRUE;
}

/* ---- nftables ---- */

static gboolean
nft_run (const char  *script,
         char       **output,
         GError     **error)
{
  struct nft_ctx *nft = nft_ctx_new (NFT_CTX_DEFAULT);
  gboolean ok;

  nft_ctx_buffer_output (nft);
  nft_ctx_buffer_error (nft);
  ok = nft_run_cmd_from_buffer (nft, script) == 0;
  if (!ok)
    {
      g_autofree char *msg = g_strdup (nft_ctx_get_error_buffer (nft));
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "nftables refused the change: %s",
                   g_strstrip (msg));
    }
  else if (output)
    *output = g_strdup (nft_ctx_get_output_buffer (nft));
  nft_ctx_free (nft);
  return ok;
}

static char *
nat_marker (const char *bridge,
            const char *subnet)
{
  return g_strdup_printf ("banger bridge=%s subnet=%s", bridge, subnet);
}

static gboolean
nat_in_place (const char *marker)
{
  g_autofree char *out = NULL;
  g_autofree char *quoted = g_strdup_printf ("\"%s\"", marker);

  if (!nft_run ("list table ip " NFT_TABLE, &out, NULL))
    return FALSE;
  return strstr (out, quoted) != NULL;
}

/* Replaces banger's table in one transaction: "add table" (a no-op if it
 * exists) then "delete table" then the new table, so there is never a
 * moment with half the rules. Everything interpolated here comes from the
 * validated system config. */
static gboolean
nat_apply (const char  *bridge,
           const char  *subnet,
           GError     **error)
{
  g_autofree char *marker = nat_marker (bridge, subnet);
  g_autofree char *script = g_strdup_printf (
      "add table ip " NFT_TABLE "\n"
      "delete table ip " NFT_TABLE "\n"
      "table ip " NFT_TABLE " {\n"
      "  comment \"%s\"\n"
      "  chain postrouting {\n"
      "    type nat hook postrouting priority srcnat; policy accept;\n"
      "    ip saddr %s oifname != \"%s\" masquerade\n"
      "  }\n"
      "  chain forward {\n"
      "    type filter hook forward priority filter; policy accept;\n"
      "    iifname \"%s\" accept\n"
      "    oifname \"%s\" ct state established,related accept\n"
      "    oifname \"%s\" drop\n"
      "  }\n"
      "}\n",
      marker, subnet, bridge, bridge, bridge, bridge);

  return nft_run (script, NULL, error);
}

static gboolean
nat_remove (GError **error)
{
  return nft_run ("add table ip " NFT_TABLE "\ndelete table ip " NFT_TABLE "\n", NULL, error);
}

/* ---- hosts file for libnss_banger ---- */

static gboolean
write_hosts (BgNetwork  *network,
             GError    **error)
{
  BgRegistry *registry = bg_daemon_get_registry (network->daemon);
  g_autoptr(GPtrArray) taps = bg_registry_list (registry, "tap");
  g_autoptr(GString) text = g_string_new ("# Written by banger-mechanism; read by libnss_banger.\n");
  g_autofree char *path = g_build_filename (bg_daemon_get_run_dir (network->daemon), "hosts", NULL);

  for (guint i = 0; i < taps->len; i++)
    {
      BgResource *r = taps->pdata[i];
      const char *ip = bg_resource_get_string (r, "address");
      const char *vm = bg_resource_get_string (r, "vm");
      const char *domain = bg_resource_get_string (r, "domain");

      if (r->state == BG_RESOURCE_READY && ip && vm && domain)
        g_string_append_printf (text, "%s %s.%s\n", ip, vm, domain);
    }
  /* World-readable: every process's resolver reads it. */
  return bg_file_replace (path, text->str, text->len, 0644, error);
}

/* ---- the bridge ---- */

typedef struct {
  char     *bridge;
  guint32   subnet;
  guint     prefix;
  char     *subnet_text;
  char     *gateway;
  char     *uplink;
  char    **dns;
  char     *domain;
  gboolean  nat;
} NetState;

static void
net_state_free (NetState *s)
{
  g_free (s->bridge);
  g_free (s->subnet_text);
  g_free (s->gateway);
  g_free (s->uplink);
  g_strfreev (s->dns);
  g_free (s->domain);
  g_free (s);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (NetState, net_state_free)

static GVariant *
net_state_to_variant (NetState *s)
{
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE ("a{sv}"));
  g_variant_builder_add (&b, "{sv}", "bridge", g_variant_new_string (s->bridge));
  g_variant_builder_add (&b, "{sv}", "subnet", g_variant_new_string (s->subnet_text ? s->subnet_text : ""));
  g_variant_builder_add (&b, "{sv}", "prefix", g_variant_new_uint32 (s->prefix));
  g_variant_builder_add (&b, "{sv}", "gateway", g_variant_new_string (s->gateway ? s->gateway : ""));
  g_variant_builder_add (&b, "{sv}", "uplink", g_variant_new_string (s->uplink ? s->uplink : ""));
  g_variant_builder_add (&b, "{sv}", "domain", g_variant_new_string (s->domain));
  g_variant_builder_add (&b, "{sv}", "dns",
                         g_variant_new_strv ((const char * const *) s->dns, -1));
  g_variant_builder_add (&b, "{sv}", "nat", g_variant_new_boolean (s->nat));
  return g_variant_builder_end (&b);
}

static void
net_state_set_subnet (NetState *s,
                      guint32   net,
                      guint     prefix)
{
  g_autofree char *ip = format_ip (net);

  s->subnet = net;
  s->prefix = prefix;
  s->subnet_text = g_strdup_printf ("%s/%u", ip, prefix);
  s->gateway = format_ip (net + 1);
}

/* What the network looks like now, without changing anything. */
static NetState *
network_inspect (BgNetwork  *network,
                 GError    **error)
{
  g_autoptr(NetConfig) c = load_config (network, error);
  g_autoptr(NetState) s = NULL;
  BgResource *r;

  if (c == NULL)
    return NULL;
  s = g_new0 (NetState, 1);
  s->bridge = g_strdup (c->bridge);
  s->domain = g_strdup (c->domain);
  s->dns = guest_dns (c);

  r = bg_registry_lookup (bg_daemon_get_registry (network->daemon), "bridge", c->bridge);
  if (r != NULL)
    {
      guint32 net;
      guint32 prefix = 0;
      const char *subnet = bg_resource_get_string (r, "subnet");

      g_variant_lookup (r->details, "prefix", "u", &prefix);
      if (subnet && parse_ip (subnet, &net))
        net_state_set_subnet (s, net, prefix);
      s->uplink = g_strdup (bg_resource_get_string (r, "uplink"));
      if (s->subnet_text)
        {
          g_autofree char *marker = nat_marker (s->bridge, s->subnet_text);
          s->nat = nat_in_place (marker);
        }
    }
  else if (!c->subnet_auto)
    net_state_set_subnet (s, c->subnet, c->prefix);

  return g_steal_pointer (&s);
}

/* Idempotent: when everything is in place it only reads. */
static NetState *
network_ensure (BgNetwork  *network,
                GError    **error)
{
  BgRegistry *registry = bg_daemon_get_registry (network->daemon);
  g_autoptr(NetConfig) c = load_config (network, error);
  g_autoptr(NetState) s = NULL;
  g_autoptr(nl_sock_t) sk = NULL;
  g_autoptr(rtnl_link_t) link = NULL;
  g_autofree char *marker = NULL;
  BgResource *r;
  gboolean created = FALSE;
  RouteScan scan = { 0 };

  if (c == NULL)
    return NULL;
  sk = nl_open (error);
  if (sk == NULL)
    return NULL;

  s = g_new0 (NetState, 1);
  s->bridge = g_strdup (c->bridge);
  s->domain = g_strdup (c->domain);
  s->dns = guest_dns (c);

  r = bg_registry_lookup (registry, "bridge", c->bridge);
  link = link_get (sk, c->bridge);

  if (r == NULL && link != NULL)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_EXISTS,
                   "bridge: %s exists but banger did not create it; choose another bridge= in network.conf",
                   c->bridge);
      return NULL;
    }

  if (r != NULL)
    {
      guint32 net;
      guint32 prefix = 0;
      g_variant_lookup (r->details, "prefix", "u", &prefix);
      if (!parse_ip (bg_resource_get_string (r, "subnet"), &net))
        {
          g_set_error (error, BG_ERROR, BG_ERROR_CORRUPT, "the registry entry for %s lacks its subnet", c->bridge);
          return NULL;
        }
      if (!c->subnet_auto && (net != c->subnet || prefix != c->prefix) &&
          bg_registry_count (registry, "tap") > 0)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_BUSY,
                       "subnet: network.conf changed the subnet while VMs still use the old one; "
                       "remove them first");
          return NULL;
        }
      net_state_set_subnet (s, c->subnet_auto ? net : c->subnet, c->subnet_auto ? prefix : c->prefix);
    }
  else
    {
      g_autoptr(GVariant) details = NULL;
      GVariantBuilder b;

      if (c->subnet_auto)
        {
          guint32 net = 0;
          if (!pick_subnet (sk, &net, error))
            return NULL;
          net_state_set_subnet (s, net, 24);
        }
      else
        {
          RouteScan check = { -1, c->subnet, c->prefix, NULL, 0, 0 };
          if (!scan_routes (sk, &check, error))
            return NULL;
          if (check.clash != NULL)
            {
              g_autofree char *ip = format_ip (c->subnet);
              g_autofree char *dev = link_name (sk, check.clash_oif);

              g_set_error (error, BG_ERROR, BG_ERROR_EXISTS,
                           "subnet: %s/%u clashes with the route %s on %s; set another subnet= in network.conf",
                           ip, c->prefix, check.clash, dev ? dev : "?");
              g_free (check.clash);
              return NULL;
            }
          net_state_set_subnet (s, c->subnet, c->prefix);
        }

      /* Recorded before it exists, so a crash right after leaves an entry
       * that reconciliation removes together with the bridge. */
      g_variant_builder_init (&b, G_VARIANT_TYPE ("a{sv}"));
      g_variant_builder_add (&b, "{sv}", "subnet", g_variant_new_take_string (format_ip (s->subnet)));
      g_variant_builder_add (&b, "{sv}", "prefix", g_variant_new_uint32 (s->prefix));
      r = bg_registry_add (registry, "bridge", c->bridge, 0, g_variant_builder_end (&b), error);
      if (r == NULL)
        return NULL;

      {
        g_autoptr(rtnl_link_t) br = rtnl_link_bridge_alloc ();
        int err;

        rtnl_link_set_name (br, c->bridge);
        if ((err = rtnl_link_add (sk, br, NLM_F_CREATE | NLM_F_EXCL)) < 0)
          {
            nl_fail (error, err, "cannot create bridge %s", c->bridge);
            bg_registry_remove (registry, r, NULL);
            return NULL;
          }
      }
      link = link_get (sk, c->bridge);
      created = TRUE;
      if (link == NULL)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "bridge %s vanished after creation", c->bridge);
          goto rollback;
        }
    }

  if (!(rtnl_link_get_flags (link) & IFF_UP) && !link_set_up (sk, link, 0, error))
    goto rollback;
  if (!bridge_has_address (sk, rtnl_link_get_ifindex (link), s->subnet + 1, s->prefix) &&
      !bridge_add_address (sk, rtnl_link_get_ifindex (link), s->subnet + 1, s->prefix, error))
    goto rollback;

  /* Forward on the bridge (VM to world) and on the uplink (replies back). */
  if (!forwarding_enabled (c->bridge) && !enable_forwarding (c->bridge, error))
    goto rollback;
  scan.skip_ifindex = rtnl_link_get_ifindex (link);
  if (!scan_routes (sk, &scan, error))
    goto rollback;
  g_clear_pointer (&scan.clash, g_free);
  if (c->uplink != NULL)
    s->uplink = g_strdup (c->uplink);
  else
    s->uplink = link_name (sk, scan.default_oif);
  if (s->uplink != NULL && !forwarding_enabled (s->uplink) && !enable_forwarding (s->uplink, error))
    goto rollback;

  marker = nat_marker (s->bridge, s->subnet_text);
  if (!nat_in_place (marker) && !nat_apply (s->bridge, s->subnet_text, error))
    goto rollback;
  s->nat = TRUE;

  if (r->state != BG_RESOURCE_READY ||
      g_strcmp0 (bg_resource_get_string (r, "uplink"), s->uplink) != 0)
    {
      GVariantBuilder b;
      g_variant_builder_init (&b, G_VARIANT_TYPE ("a{sv}"));
      g_variant_builder_add (&b, "{sv}", "subnet", g_variant_new_take_string (format_ip (s->subnet)));
      g_variant_builder_add (&b, "{sv}", "prefix", g_variant_new_uint32 (s->prefix));
      g_variant_builder_add (&b, "{sv}", "uplink", g_variant_new_string (s->uplink ? s->uplink : ""));
      if (!bg_registry_set_details (registry, r, g_variant_builder_end (&b), error) ||
          !bg_registry_set_state (registry, r, BG_RESOURCE_READY, error))
        goto rollback;
    }
  return g_steal_pointer (&s);

rollback:
  if (created)
    {
      link_delete (sk, c->bridge, NULL);
      nat_remove (NULL);
      bg_registry_remove (registry, r, NULL);
    }
  return NULL;
}

static gboolean
release_bridge (BgDaemon    *daemon,
                BgResource  *resource,
                GError     **error)
{
  g_autoptr(nl_sock_t) sk = nl_open (error);
  g_autofree char *hosts = g_build_filename (bg_daemon_get_run_dir (daemon), "hosts", NULL);

  if (sk == NULL)
    return FALSE;
  if (!link_delete (sk, resource->name, error))
    return FALSE;
  /* Dropping the table removes every banger rule at once. */
  if (!nat_remove (error))
    return FALSE;
  g_unlink (hosts);
  return TRUE;
}

const BgResourceKind bg_network_bridge_kind = {
  .kind = "bridge",
  .action = "org.banger.network",
  .validate_name = bg_network_validate_ifname,
  .release = release_bridge,
};

/* ---- taps ---- */

static gboolean
tap_create (const char  *name,
            uid_t        owner,
            GError     **error)
{
  struct ifreq ifr = { 0 };
  int fd = open ("/dev/net/tun", O_RDWR | O_CLOEXEC);

  if (fd < 0)
    {
      int errsv = errno;
      g_set_error (error, BG_ERROR, BG_ERROR_NOT_SUPPORTED,
                   "cannot open /dev/net/tun: %s", g_strerror (errsv));
      return FALSE;
    }
  /* The flags Firecracker opens its tap with. */
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  g_strlcpy (ifr.ifr_name, name, IFNAMSIZ);
  if (ioctl (fd, TUNSETIFF, &ifr) < 0 ||
      ioctl (fd, TUNSETOWNER, (unsigned long) owner) < 0 ||
      ioctl (fd, TUNSETPERSIST, 1UL) < 0)
    {
      int errsv = errno;
      close (fd);
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot create tap %s: %s", name, g_strerror (errsv));
      return FALSE;
    }
  close (fd);
  return TRUE;
}

/* Re-owns a persistent tap: to a VM's jail uid while the VM runs (the
 * jailed VMM opens it itself), back to its owner afterwards. */
gboolean
bg_network_tap_set_owner (const char  *tap,
                          uid_t        owner,
                          GError     **error)
{
  struct ifreq ifr = { 0 };
  int fd = open ("/dev/net/tun", O_RDWR | O_CLOEXEC);

  if (fd < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_NOT_SUPPORTED, "cannot open /dev/net/tun: %s", g_strerror (errno));
      return FALSE;
    }
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  g_strlcpy (ifr.ifr_name, tap, IFNAMSIZ);
  if (ioctl (fd, TUNSETIFF, &ifr) < 0 || ioctl (fd, TUNSETOWNER, (unsigned long) owner) < 0)
    {
      int errsv = errno;
      close (fd);
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot re-own tap %s: %s", tap, g_strerror (errsv));
      return FALSE;
    }
  close (fd);
  return TRUE;
}

static gboolean
release_tap (BgDaemon    *daemon,
             BgResource  *resource,
             GError     **error)
{
  g_autoptr(nl_sock_t) sk = nl_open (error);

  if (sk == NULL || !link_delete (sk, resource->name, error))
    return FALSE;
  return TRUE;
}

const BgResourceKind bg_network_tap_kind = {
  .kind = "tap",
  .action = "org.banger.network",
  .validate_name = bg_network_validate_tap_name,
  .release = release_tap,
};

static gboolean
allocate_address (BgRegistry  *registry,
                  NetState    *s,
                  guint32     *out,
                  GError     **error)
{
  g_autoptr(GPtrArray) taps = bg_registry_list (registry, "tap");
  g_autoptr(GHashTable) used = g_hash_table_new (NULL, NULL);
  guint32 last = s->subnet + (1u << (32 - s->prefix)) - 2;

  for (guint i = 0; i < taps->len; i++)
    {
      guint32 ip;
      if (parse_ip (bg_resource_get_string (taps->pdata[i], "address"), &ip))
        g_hash_table_add (used, GUINT_TO_POINTER (ip));
    }
  /* .1 is the gateway; the top address is broadcast. */
  for (guint32 ip = s->subnet + 2; ip <= last; ip++)
    if (!g_hash_table_contains (used, GUINT_TO_POINTER (ip)))
      {
        *out = ip;
        return TRUE;
      }
  g_set_error (error, BG_ERROR, BG_ERROR_BUSY,
               "no free address left in %s (%u VMs); remove VMs or choose a larger subnet= in network.conf",
               s->subnet_text, g_hash_table_size (used));
  return FALSE;
}

static GVariant *
tap_reply (BgResource *r)
{
  guint32 prefix = 0;

  g_variant_lookup (r->details, "prefix", "u", &prefix);
  return g_variant_new ("(ssssu)", r->name, bg_resource_get_string (r, "address"),
                        bg_resource_get_string (r, "gateway"), bg_resource_get_string (r, "mac"),
                        prefix);
}

typedef struct {
  char *vm_name;
  char *tap;
} TapData;

static void
tap_data_free (TapData *d)
{
  g_free (d->vm_name);
  g_free (d->tap);
  g_free (d);
}

static void
create_tap_authorized (BgCall *call)
{
  TapData *d = call->data;
  BgNetwork *network = bg_daemon_get_network (call->daemon);
  BgRegistry *registry = bg_daemon_get_registry (call->daemon);
  g_autoptr(NetState) s = NULL;
  g_autoptr(nl_sock_t) sk = NULL;
  g_autoptr(rtnl_link_t) link = NULL;
  g_autoptr(rtnl_link_t) bridge = NULL;
  g_autoptr(GPtrArray) taps = bg_registry_list (registry, "tap");
  g_autofree char *tap = bg_network_tap_name (call->caller_uid, d->vm_name);
  g_autofree char *mac = bg_network_guest_mac (call->caller_uid, d->vm_name);
  GError *error = NULL;
  GVariantBuilder b;
  BgResource *r;
  guint32 ip;

  /* One tap per VM: the same owner asking again gets the same tap (the
   * CLI re-running after a crash); anyone else's VM of that name keeps it,
   * because NAME.<domain> must name one VM. */
  for (guint i = 0; i < taps->len; i++)
    {
      BgResource *t = taps->pdata[i];
      if (g_strcmp0 (bg_resource_get_string (t, "vm"), d->vm_name) != 0)
        continue;
      if (t->owner != call->caller_uid)
        {
          bg_call_return_gerror (call, BG_ERROR, BG_ERROR_EXISTS,
                                 "vm_name: another user's VM is already called %s", d->vm_name);
          return;
        }
      if (t->state == BG_RESOURCE_READY)
        {
          bg_call_return_value (call, tap_reply (t));
          return;
        }
    }

  s = network_ensure (network, &error);
  if (s == NULL)
    goto fail;
  sk = nl_open (&error);
  if (sk == NULL)
    goto fail;
  bridge = link_get (sk, s->bridge);
  if (bridge == NULL)
    {
      g_set_error (&error, BG_ERROR, BG_ERROR_FAILED, "bridge %s is gone", s->bridge);
      goto fail;
    }
  if (!allocate_address (registry, s, &ip, &error))
    goto fail;

  g_variant_builder_init (&b, G_VARIANT_TYPE ("a{sv}"));
  g_variant_builder_add (&b, "{sv}", "vm", g_variant_new_string (d->vm_name));
  g_variant_builder_add (&b, "{sv}", "address", g_variant_new_take_string (format_ip (ip)));
  g_variant_builder_add (&b, "{sv}", "gateway", g_variant_new_string (s->gateway));
  g_variant_builder_add (&b, "{sv}", "prefix", g_variant_new_uint32 (s->prefix));
  g_variant_builder_add (&b, "{sv}", "mac", g_variant_new_string (mac));
  g_variant_builder_add (&b, "{sv}", "bridge", g_variant_new_string (s->bridge));
  g_variant_builder_add (&b, "{sv}", "domain", g_variant_new_string (s->domain));

  /* A leftover from a crash that is still in the registry as "creating"
   * was handled at start-up; one that is only in the kernel is removed. */
  link_delete (sk, tap, NULL);

  r = bg_registry_add (registry, "tap", tap, call->caller_uid, g_variant_builder_end (&b), &error);
  if (r == NULL)
    goto fail;
#ifdef BG_TEST_HOOKS
  bg_daemon_test_hook (call->daemon, "create-tap-recorded");
#endif
  if (!tap_create (tap, call->caller_uid, &error))
    goto rollback;
#ifdef BG_TEST_HOOKS
  bg_daemon_test_hook (call->daemon, "create-tap-created");
#endif
  link = link_get (sk, tap);
  if (link == NULL)
    {
      g_set_error (&error, BG_ERROR, BG_ERROR_FAILED, "tap %s vanished after creation", tap);
      goto rollback;
    }
  if (!link_set_up (sk, link, rtnl_link_get_ifindex (bridge), &error) ||
      !bg_registry_set_state (registry, r, BG_RESOURCE_READY, &error) ||
      !write_hosts (network, &error))
    goto rollback;

  bg_call_return_value (call, tap_reply (r));
  return;

rollback:
  link_delete (sk, tap, NULL);
  bg_registry_remove (registry, r, NULL);
  write_hosts (network, NULL);
fail:
  bg_call_return_error (call, error);
}

static gboolean
handle_create_tap (BgMechanism1          *skeleton,
                   GDBusMethodInvocation *invocation,
                   const char            *vm_name,
                   BgDaemon              *daemon)
{
  g_autoptr(GError) error = NULL;
  TapData *d;
  BgCall *call;

  if (!bg_name_validate ("vm_name", vm_name, &error))
    {
      g_dbus_method_invocation_return_gerror (invocation, error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  d = g_new0 (TapData, 1);
  d->vm_name = g_strdup (vm_name);
  call = bg_call_new (daemon, invocation);
  bg_call_set_data (call, d, (GDestroyNotify) tap_data_free);
  bg_call_authorize (call, "org.banger.network", bg_details_new ("banger.vm", vm_name),
                     create_tap_authorized);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
delete_tap (BgCall      *call,
            BgResource  *tap,
            GError     **error)
{
  return bg_daemon_release_resource (call->daemon, tap, error) &&
         write_hosts (bg_daemon_get_network (call->daemon), error);
}

static void
delete_tap_authorized (BgCall *call)
{
  TapData *d = call->data;

  bg_call_act_on_owned (call, "tap", "tap", d->tap, delete_tap);
}

static gboolean
handle_delete_tap (BgMechanism1          *skeleton,
                   GDBusMethodInvocation *invocation,
                   const char            *tap,
                   BgDaemon              *daemon)
{
  g_autoptr(GError) error = NULL;
  TapData *d;
  BgCall *call;

  if (!bg_network_validate_tap_name ("tap", tap, &error))
    {
      g_dbus_method_invocation_return_gerror (invocation, error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  d = g_new0 (TapData, 1);
  d->tap = g_strdup (tap);
  call = bg_call_new (daemon, invocation);
  bg_call_set_data (call, d, (GDestroyNotify) tap_data_free);
  bg_call_authorize (call, "org.banger.network", bg_details_new ("banger.device", tap),
                     delete_tap_authorized);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
ensure_authorized (BgCall *call)
{
  BgNetwork *network = bg_daemon_get_network (call->daemon);
  g_autoptr(NetState) s = NULL;
  GError *error = NULL;

  s = network_ensure (network, &error);
  if (s == NULL)
    {
      bg_call_return_error (call, error);
      return;
    }
  bg_call_return_value (call, g_variant_new ("(@a{sv})", net_state_to_variant (s)));
}

static gboolean
handle_ensure_network (BgMechanism1          *skeleton,
                       GDBusMethodInvocation *invocation,
                       GVariant              *options,
                       BgDaemon              *daemon)
{
  g_autoptr(GError) error = NULL;

  if (!bg_validate_options (options, NULL, &error))
    {
      g_dbus_method_invocation_return_gerror (invocation, error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  bg_call_authorize (bg_call_new (daemon, invocation), "org.banger.network", NULL, ensure_authorized);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
info_authorized (BgCall *call)
{
  BgNetwork *network = bg_daemon_get_network (call->daemon);
  g_autoptr(NetState) s = NULL;
  GError *error = NULL;

  s = network_inspect (network, &error);
  if (s == NULL)
    {
      bg_call_return_error (call, error);
      return;
    }
  bg_call_return_value (call, g_variant_new ("(@a{sv})", net_state_to_variant (s)));
}

static gboolean
handle_network_info (BgMechanism1          *skeleton,
                     GDBusMethodInvocation *invocation,
                     BgDaemon              *daemon)
{
  bg_call_authorize (bg_call_new (daemon, invocation), "org.banger.network", NULL, info_authorized);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
teardown_authorized (BgCall *call)
{
  BgRegistry *registry = bg_daemon_get_registry (call->daemon);
  BgNetwork *network = bg_daemon_get_network (call->daemon);
  g_autoptr(NetConfig) c = NULL;
  GError *error = NULL;
  BgResource *r;
  guint taps = bg_registry_count (registry, "tap");

  if (taps > 0)
    {
      bg_call_return_gerror (call, BG_ERROR, BG_ERROR_BUSY,
                             "the network still has %u tap%s; remove those VMs first",
                             taps, taps == 1 ? "" : "s");
      return;
    }
  c = load_config (network, &error);
  if (c == NULL)
    {
      bg_call_return_error (call, error);
      return;
    }
  r = bg_registry_lookup (registry, "bridge", c->bridge);
  if (r == NULL)
    {
      /* Nothing recorded: still drop a table a crash may have left. */
      if (!nat_remove (&error))
        {
          bg_call_return_error (call, error);
          return;
        }
      bg_call_return_value (call, NULL);
      return;
    }
  if (!bg_daemon_release_resource (call->daemon, r, &error))
    {
      bg_call_return_error (call, error);
      return;
    }
  bg_call_return_value (call, NULL);
}

static gboolean
handle_teardown_network (BgMechanism1          *skeleton,
                         GDBusMethodInvocation *invocation,
                         BgDaemon              *daemon)
{
  /* The bridge is shared by every user: only an administrator removes it. */
  bg_call_authorize (bg_call_new (daemon, invocation), "org.banger.admin", NULL, teardown_authorized);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

BgNetwork *
bg_network_new (BgDaemon *daemon)
{
  BgNetwork *network = g_new0 (BgNetwork, 1);

  network->daemon = daemon;
  return network;
}

void
bg_network_free (BgNetwork *network)
{
  g_free (network);
}

void
bg_network_connect (BgNetwork    *network,
                    BgMechanism1 *skeleton)
{
  BgDaemon *daemon = network->daemon;

  g_signal_connect (skeleton, "handle-ensure-network", G_CALLBACK (handle_ensure_network), daemon);
  g_signal_connect (skeleton, "handle-network-info", G_CALLBACK (handle_network_info), daemon);
  g_signal_connect (skeleton, "handle-create-tap", G_CALLBACK (handle_create_tap), daemon);
  g_signal_connect (skeleton, "handle-delete-tap", G_CALLBACK (handle_delete_tap), daemon);
  g_signal_connect (skeleton, "handle-teardown-network", G_CALLBACK (handle_teardown_network), daemon);
}
