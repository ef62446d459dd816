/* netlink.c: links, addresses and routes over libnl-route-3;
 * persistent taps are tap.c's. Nothing here knows about the registry. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/ip.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <netlink/route/addr.h>
#include <netlink/route/link/bridge.h>
#include <netlink/route/link/inet.h>
#include <netlink/route/route.h>

#include "bg-error.h"
#include "bg-fd.h"
#include "bg-netconf.h"
#include "netlink.h"

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

BgNlSock *
bg_nl_open (GError **error)
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
      nl_socket_free (sk);
      nl_fail (error, err, "cannot open netlink");
      return NULL;
    }
  return sk;
}

void
bg_nl_close (BgNlSock *sk)
{
  if (sk != NULL)
    nl_socket_free (sk);
}

void
bg_nl_link_unref (BgNlLink *link)
{
  if (link != NULL)
    rtnl_link_put (link);
}

/* NULL when there is no such link: callers must not assume a recorded
 * link still exists. */
BgNlLink *
bg_nl_link_get (BgNlSock   *sk,
                const char *name)
{
  struct rtnl_link *link = NULL;

  if (rtnl_link_get_kernel (sk, 0, name, &link) < 0)
    return NULL;
  return link;
}

char *
bg_nl_link_name (BgNlSock *sk,
                 int       ifindex)
{
  g_autoptr(BgNlLink) link = NULL;

  if (ifindex <= 0 || rtnl_link_get_kernel (sk, ifindex, NULL, &link) < 0)
    return NULL;
  return g_strdup (rtnl_link_get_name (link));
}

/* What the forwarding sysctl does besides setting the bit: LRO off, so
 * frames merged on receive are not forwarded as one. A device without
 * ethtool flags (a bridge) or with LRO off is left alone; one whose LRO
 * cannot be turned off is only warned about, as the kernel does. */
static void
disable_lro (const char *name)
{
  struct ethtool_value ev = { .cmd = ETHTOOL_GFLAGS };
  struct ifreq ifr = { 0 };
  g_auto(BgFd) fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

  g_strlcpy (ifr.ifr_name, name, sizeof ifr.ifr_name);
  ifr.ifr_data = (void *) &ev;
  if (fd < 0 || ioctl (fd, SIOCETHTOOL, &ifr) < 0 || !(ev.data & ETH_FLAG_LRO))
    return;
  ev.cmd = ETHTOOL_SFLAGS;
  ev.data &= ~ETH_FLAG_LRO;
  if (ioctl (fd, SIOCETHTOOL, &ifr) < 0)
    g_warning ("Cannot turn LRO off on %s, which forwards VM traffic: %s", name, g_strerror (errno));
}

/* IPv4 forwarding on @name through netlink (IFLA_INET_CONF), so the
 * mechanism needs no /proc/sys; set, with LRO turned off, only when it is
 * off, as the sysctl does. */
gboolean
bg_nl_link_enable_forwarding (BgNlSock    *sk,
                              const char  *name,
                              GError     **error)
{
  g_autoptr(BgNlLink) link = bg_nl_link_get (sk, name);
  g_autoptr(BgNlLink) change = NULL;
  uint32_t on = 0;
  int err;

  if (link == NULL)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot enable forwarding on %s: no such device", name);
      return FALSE;
    }
  if (rtnl_link_inet_get_conf (link, IPV4_DEVCONF_FORWARDING, &on) == 0 && on)
    return TRUE;
  disable_lro (name);
  change = rtnl_link_alloc ();
  if ((err = rtnl_link_inet_set_conf (change, IPV4_DEVCONF_FORWARDING, 1)) < 0 ||
      (err = rtnl_link_change (sk, link, change, 0)) < 0)
    return nl_fail (error, err, "cannot enable forwarding on %s", name);
  return TRUE;
}

gboolean
bg_nl_link_up (BgNlSock  *sk,
               BgNlLink  *link,
               int        master,
               GError   **error)
{
  g_autoptr(BgNlLink) change = rtnl_link_alloc ();
  int err;

  rtnl_link_set_flags (change, IFF_UP);
  if (master > 0)
    rtnl_link_set_master (change, master);
  if ((err = rtnl_link_change (sk, link, change, 0)) < 0)
    return nl_fail (error, err, "cannot bring %s up", rtnl_link_get_name (link));
  return TRUE;
}

/* Deleting what is already gone succeeds. */
gboolean
bg_nl_link_delete (BgNlSock    *sk,
                   const char  *name,
                   GError     **error)
{
  g_autoptr(BgNlLink) link = rtnl_link_alloc ();
  int err;

  rtnl_link_set_name (link, name);
  err = rtnl_link_delete (sk, link);
  if (err < 0 && err != -NLE_OBJ_NOTFOUND && err != -NLE_NODEV)
    return nl_fail (error, err, "cannot delete %s", name);
  return TRUE;
}

gboolean
bg_nl_bridge_add (BgNlSock    *sk,
                  const char  *name,
                  GError     **error)
{
  g_autoptr(BgNlLink) br = rtnl_link_bridge_alloc ();
  int err;

  rtnl_link_set_name (br, name);
  if ((err = rtnl_link_add (sk, br, NLM_F_CREATE | NLM_F_EXCL)) < 0)
    return nl_fail (error, err, "cannot create bridge %s", name);
  return TRUE;
}

static void
link_collect (struct nl_object *obj,
              void             *data)
{
  struct rtnl_link *link = (struct rtnl_link *) obj;
  BgLinkInfo *info = g_new0 (BgLinkInfo, 1);

  info->ifindex = rtnl_link_get_ifindex (link);
  info->master = rtnl_link_get_master (link);
  info->up = (rtnl_link_get_flags (link) & IFF_UP) != 0;
  g_hash_table_replace (data, g_strdup (rtnl_link_get_name (link)), info);
}

/* Every link of this namespace, in one dump: name -> BgLinkInfo. */
GHashTable *
bg_nl_links (BgNlSock  *sk,
             GError   **error)
{
  struct nl_cache *cache = NULL;
  GHashTable *links;
  int err;

  if ((err = rtnl_link_alloc_cache (sk, AF_UNSPEC, &cache)) < 0)
    {
      nl_fail (error, err, "cannot list network links");
      return NULL;
    }
  links = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  nl_cache_foreach (cache, link_collect, links);
  nl_cache_free (cache);
  return links;
}

/* Whether every port of the bridge @ifindex is one of banger's taps
 * (and it has at least one): a bridge only banger uses. */
gboolean
bg_nl_bridge_only_taps (BgNlSock *sk,
                        int       ifindex)
{
  g_autoptr(GHashTable) links = bg_nl_links (sk, NULL);
  GHashTableIter iter;
  gpointer name, value;
  guint ports = 0;

  if (links == NULL)
    return FALSE;
  g_hash_table_iter_init (&iter, links);
  while (g_hash_table_iter_next (&iter, &name, &value))
    if (((BgLinkInfo *) value)->master == ifindex)
      {
        if (!g_str_has_prefix (name, BG_TAP_PREFIX))
          return FALSE;
        ports++;
      }
  return ports > 0;
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
  /* want 0: the first IPv4 address, whatever it is. */
  if (s->want == 0 && !s->found)
    {
      s->want = ntohl (*(guint32 *) nl_addr_get_binary_addr (local));
      s->prefix = rtnl_addr_get_prefixlen (a);
      s->found = TRUE;
    }
  else if ((guint) rtnl_addr_get_prefixlen (a) == s->prefix &&
           ntohl (*(guint32 *) nl_addr_get_binary_addr (local)) == s->want)
    s->found = TRUE;
}

gboolean
bg_nl_has_address (BgNlSock *sk,
                   int       ifindex,
                   guint32   address,
                   guint     prefix)
{
  struct nl_cache *cache = NULL;
  AddrSearch s = { ifindex, address, prefix, FALSE };

  if (rtnl_addr_alloc_cache (sk, &cache) < 0)
    return FALSE;
  nl_cache_foreach (cache, addr_match, &s);
  nl_cache_free (cache);
  return s.found;
}

/* The link's first IPv4 address and its prefix. */
gboolean
bg_nl_first_address (BgNlSock *sk,
                     int       ifindex,
                     guint32  *address,
                     guint    *prefix)
{
  struct nl_cache *cache = NULL;
  AddrSearch s = { ifindex, 0, 0, FALSE };

  if (rtnl_addr_alloc_cache (sk, &cache) < 0)
    return FALSE;
  nl_cache_foreach (cache, addr_match, &s);
  nl_cache_free (cache);
  *address = s.want;
  *prefix = s.prefix;
  return s.found;
}

gboolean
bg_nl_add_address (BgNlSock  *sk,
                   int        ifindex,
                   guint32    address,
                   guint      prefix,
                   GError   **error)
{
  struct rtnl_addr *addr = rtnl_addr_alloc ();
  struct nl_addr *local;
  guint32 be = htonl (address);
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
  int           ifindex;
  const guint8 *want;
  gboolean      found;
} Addr6Search;

static void
addr6_match (struct nl_object *obj,
             void             *data)
{
  Addr6Search *s = data;
  struct rtnl_addr *a = (struct rtnl_addr *) obj;
  struct nl_addr *local = rtnl_addr_get_local (a);

  if (rtnl_addr_get_ifindex (a) == s->ifindex && rtnl_addr_get_family (a) == AF_INET6 && local != NULL &&
      rtnl_addr_get_prefixlen (a) == 64 && nl_addr_get_len (local) == 16 &&
      memcmp (nl_addr_get_binary_addr (local), s->want, 16) == 0)
    s->found = TRUE;
}

/* Whether @ifindex holds @address/64. */
gboolean
bg_nl_has_address6 (BgNlSock     *sk,
                    int           ifindex,
                    const guint8  address[16])
{
  struct nl_cache *cache = NULL;
  Addr6Search s = { ifindex, address, FALSE };

  if (rtnl_addr_alloc_cache (sk, &cache) < 0)
    return FALSE;
  nl_cache_foreach (cache, addr6_match, &s);
  nl_cache_free (cache);
  return s.found;
}

/* @address/64 on @ifindex, without duplicate address detection: the
 * bridge's own /64 has no other holder of ::1, and DAD would keep the
 * address tentative (unusable) for a second, or for as long as the
 * bridge has no port up. */
gboolean
bg_nl_add_address6 (BgNlSock      *sk,
                    int            ifindex,
                    const guint8   address[16],
                    GError       **error)
{
  struct rtnl_addr *addr = rtnl_addr_alloc ();
  struct nl_addr *local = nl_addr_build (AF_INET6, address, 16);
  int err;

  nl_addr_set_prefixlen (local, 64);
  rtnl_addr_set_ifindex (addr, ifindex);
  rtnl_addr_set_local (addr, local);
  rtnl_addr_set_prefixlen (addr, 64);
  rtnl_addr_set_flags (addr, IFA_F_NODAD);
  err = rtnl_addr_add (sk, addr, 0);
  nl_addr_put (local);
  rtnl_addr_put (addr);
  if (err < 0 && err != -NLE_EXIST)
    return nl_fail (error, err, "cannot add the IPv6 gateway address to the bridge");
  return TRUE;
}

/* ---- routes ---- */

static void
route_collect (struct nl_object *obj,
               void             *data)
{
  GArray *routes = data;
  struct rtnl_route *r = (struct rtnl_route *) obj;
  struct nl_addr *dst = rtnl_route_get_dst (r);
  struct rtnl_nexthop *nh;
  BgRoute route = { 0 };

  if (rtnl_route_get_table (r) != RT_TABLE_MAIN || rtnl_route_get_family (r) != AF_INET)
    return;
  if (rtnl_route_get_nnexthops (r) > 0 && (nh = rtnl_route_nexthop_n (r, 0)) != NULL)
    route.oif = rtnl_route_nh_get_ifindex (nh);
  route.prefix = dst ? nl_addr_get_prefixlen (dst) : 0;
  if (route.prefix > 0)
    route.net = ntohl (*(guint32 *) nl_addr_get_binary_addr (dst));
  g_array_append_val (routes, route);
}

/* The main table's IPv4 routes, in the kernel's order. */
GArray *
bg_nl_routes (BgNlSock  *sk,
              GError   **error)
{
  struct nl_cache *cache = NULL;
  GArray *routes;
  int err;

  if ((err = rtnl_route_alloc_cache (sk, AF_INET, 0, &cache)) < 0)
    {
      nl_fail (error, err, "cannot read the routing table");
      return NULL;
    }
  routes = g_array_new (FALSE, FALSE, sizeof (BgRoute));
  nl_cache_foreach (cache, route_collect, routes);
  nl_cache_free (cache);
  return routes;
}

static gboolean
overlaps (guint32 a, guint pa, guint32 b, guint pb)
{
  guint p = MIN (pa, pb);
  guint32 mask = p == 0 ? 0 : 0xffffffffu << (32 - p);

  return (a & mask) == (b & mask);
}

/* The first non-default route that covers part of @net/@prefix, other
 * than those through @skip_oif (our own bridge's), or NULL. */
const BgRoute *
bg_routes_find_clash (GArray  *routes,
                      guint32  net,
                      guint    prefix,
                      int      skip_oif)
{
  for (guint i = 0; i < routes->len; i++)
    {
      const BgRoute *r = &g_array_index (routes, BgRoute, i);

      if (r->prefix > 0 && r->oif != skip_oif && overlaps (r->net, r->prefix, net, prefix))
        return r;
    }
  return NULL;
}

int
bg_routes_default_oif (GArray *routes)
{
  for (guint i = 0; i < routes->len; i++)
    if (g_array_index (routes, BgRoute, i).prefix == 0)
      return g_array_index (routes, BgRoute, i).oif;
  return 0;
}

/* The first 172.16/12 /24 no route covers, from 172.30.0.0 upward (the
 * low ones are where Docker and friends live), wrapping around. */
gboolean
bg_routes_pick_subnet (GArray   *routes,
                       guint32  *net,
                       GError  **error)
{
  for (guint i = 0; i < 256 * 16; i++)
    {
      guint32 candidate = (172u << 24) | (((16u << 8) + ((14u * 256 + i) % (256 * 16))) << 8);

      if (bg_routes_find_clash (routes, candidate, 24, -1) == NULL)
        {
          *net = candidate;
          return TRUE;
        }
    }
  g_set_error_literal (error, BG_ERROR, BG_ERROR_FAILED,
                       "every /24 in 172.16.0.0/12 is routed on this host; set subnet= in network.conf");
  return FALSE;
}
