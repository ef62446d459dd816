/* network.c: the VM network's engine — the bridge, taps and addresses.
 *
 * One bridge from /etc/banger/network.conf, with the gateway address,
 * forwarding, and NAT in banger's own nftables table (nft.c); a
 * persistent tap per VM owned by its user; names for libnss_banger
 * (hosts.c). Routes stay on the bridge, never per tap, so a leaked tap
 * cannot swallow the return traffic of the next VM.
 *
 * The registry is a record, not the truth (DESIGN.md, invariant 9).
 * Every ensure checks each recorded object against the kernel and makes
 * again what is gone: a bridge deleted by hand (with its subnet, address,
 * forwarding and rules), a flushed nft table, a tap deleted or no longer
 * attached to the bridge. Nothing here assumes a recorded link exists.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <unistd.h>

#include "bg-error.h"
#include "bg-file.h"
#include "daemon.h"
#include "hosts.h"
#include "bg-netconf.h"
#include "conntrack.h"
#include "ipv6.h"
#include "netlink.h"
#include "network.h"
#include "nft.h"
#include "registry.h"
#include "tap.h"

static gboolean mark_subnet_unforgotten (BgNetwork   *network,
                                         const char  *why,
                                         GError     **error);
static gboolean subnet_unforgotten (BgNetwork *network);
static gboolean forget_subnet (BgNetwork    *network,
                               BgNetConfig  *c,
                               BgResource   *bridge,
                               BgNetState   *s,
                               GError      **error);
static gboolean apply_ports (BgNetwork  *network,
                             GError    **error);
static gboolean repair_taps (BgNetwork   *network,
                             BgNlSock    *sk,
                             GHashTable  *links,
                             int          bridge_ifindex,
                             GError     **error);
static gboolean taps_to_repair (BgNetwork  *network,
                                GHashTable *links,
                                int         bridge_ifindex);

void
bg_net_state_free (BgNetState *s)
{
  if (s == NULL)
    return;
  g_free (s->bridge);
  g_free (s->subnet_text);
  g_free (s->gateway);
  g_free (s->uplink);
  g_strfreev (s->dns);
  g_free (s->domain);
  g_free (s->subnet6_text);
  g_free (s->gateway6);
  g_free (s->ipv6_off);
  g_free (s);
}

GVariant *
bg_net_state_to_variant (BgNetState *s)
{
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE ("a{sv}"));
  g_variant_builder_add (&b, "{sv}", "bridge", g_variant_new_string (s->bridge));
  g_variant_builder_add (&b, "{sv}", "subnet", g_variant_new_string (s->subnet_text ? s->subnet_text : ""));
  g_variant_builder_add (&b, "{sv}", "prefix", g_variant_new_uint32 (s->prefix));
  g_variant_builder_add (&b, "{sv}", "gateway", g_variant_new_string (s->gateway ? s->gateway : ""));
  g_variant_builder_add (&b, "{sv}", "uplink", g_variant_new_string (s->uplink ? s->uplink : ""));
  g_variant_builder_add (&b, "{sv}", "domain", g_variant_new_string (s->domain));
  g_variant_builder_add (&b, "{sv}", "dns", g_variant_new_strv ((const char * const *) s->dns, -1));
  g_variant_builder_add (&b, "{sv}", "nat", g_variant_new_boolean (s->nat));
  g_variant_builder_add (&b, "{sv}", "ipv6", g_variant_new_boolean (s->ipv6));
  if (s->ipv6)
    {
      g_variant_builder_add (&b, "{sv}", "subnet6", g_variant_new_string (s->subnet6_text));
      g_variant_builder_add (&b, "{sv}", "gateway6", g_variant_new_string (s->gateway6));
    }
  else if (s->ipv6_off != NULL)
    g_variant_builder_add (&b, "{sv}", "ipv6-off", g_variant_new_string (s->ipv6_off));
  return g_variant_builder_end (&b);
}

static BgNetState *
net_state_new (BgNetConfig *c)
{
  BgNetState *s = g_new0 (BgNetState, 1);

  s->bridge = g_strdup (c->bridge);
  s->domain = g_strdup (c->domain);
  s->dns = bg_net_config_guest_dns (c, NULL);
  return s;
}

static void
net_state_set_subnet (BgNetState *s,
                      guint32     net,
                      guint       prefix)
{
  g_autofree char *ip = bg_ip_format (net);

  s->subnet = net;
  s->prefix = prefix;
  s->subnet_text = g_strdup_printf ("%s/%u", ip, prefix);
  s->gateway = bg_ip_format (net + 1);
}

static void
net_state_set_subnet6 (BgNetState   *s,
                       const guint8  net[16])
{
  g_autofree char *ip = bg_ip6_format (net);

  s->ipv6 = TRUE;
  memcpy (s->subnet6, net, 16);
  s->subnet6_text = g_strdup_printf ("%s/64", ip);
  s->gateway6 = bg_net_ip6_host (net, 1);
}

/* The bridge's record: the subnet it was made with. */
static gboolean
record_subnet (BgResource  *r,
               guint32     *net,
               guint       *prefix,
               GError     **error)
{
  guint32 p = 0;

  g_variant_lookup (r->details, "prefix", "u", &p);
  if (!bg_ip_parse (bg_resource_get_string (r, "subnet"), net) || p < 16 || p > 28)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_CORRUPT, "the registry entry for bridge %s lacks its subnet", r->name);
      return FALSE;
    }
  *prefix = p;
  return TRUE;
}

/* What the network looks like now, without changing anything. */
BgNetState *
bg_network_inspect (BgNetwork  *network,
                    GError    **error)
{
  g_autoptr(BgNetConfig) c = bg_net_config_load (bg_daemon_get_config_dir (network->daemon), error);
  g_autoptr(BgNetState) s = NULL;
  BgResource *r;

  if (c == NULL)
    return NULL;
  s = net_state_new (c);
  r = bg_registry_lookup (network->registry, BG_KIND_BRIDGE, c->bridge);
  if (r != NULL)
    {
      const char *subnet6 = bg_resource_get_string (r, "subnet6");
      guint8 net6[16];
      guint32 net;
      guint prefix;

      if (subnet6 != NULL && bg_net_parse_subnet6 (subnet6, net6, NULL))
        net_state_set_subnet6 (s, net6);
      if (record_subnet (r, &net, &prefix, NULL))
        {
          net_state_set_subnet (s, net, prefix);
          s->nat = bg_nft_in_place (network->nft, s->bridge, s->subnet_text, s->subnet6_text);
        }
      s->uplink = g_strdup (bg_resource_get_string (r, "uplink"));
    }
  else if (!c->subnet_auto)
    net_state_set_subnet (s, c->subnet, c->prefix);
  if (!s->ipv6)
    s->ipv6_off = bg_ipv6_off_reason (c, r != NULL ? c->bridge : "default");
  return g_steal_pointer (&s);
}

static gboolean
check_no_clash (BgNlSock    *sk,
                GArray      *routes,
                guint32      net,
                guint        prefix,
                int          own_ifindex,
                GError     **error)
{
  const BgRoute *clash = bg_routes_find_clash (routes, net, prefix, own_ifindex);
  g_autofree char *ip = NULL, *route = NULL, *dev = NULL;

  if (clash == NULL)
    return TRUE;
  ip = bg_ip_format (net);
  route = bg_ip_format (clash->net);
  dev = bg_nl_link_name (sk, clash->oif);
  g_set_error (error, BG_ERROR, BG_ERROR_EXISTS,
               "subnet: %s/%u clashes with the route %s/%u on %s; set another subnet= in network.conf",
               ip, prefix, route, clash->prefix, dev ? dev : "?");
  return FALSE;
}

/* A bridge named in network.conf that exists while the registry has no
 * record of it: banger's own if its nft table names it, or if nothing but
 * banger's taps are on it (the registry was wiped); then it is recorded
 * again with the subnet it has. Anything else is not banger's to touch. */
static BgResource *
adopt_bridge (BgNetwork    *network,
              BgNlSock     *sk,
              BgNetConfig  *c,
              BgNlLink     *link,
              GError      **error)
{
  int ifindex = rtnl_link_get_ifindex (link);
  g_autofree char *marked = bg_nft_marked_subnet (network->nft, c->bridge);
  guint32 net = 0, address;
  guint prefix = 0;
  GVariantBuilder b;

  if (marked == NULL || !bg_net_parse_subnet (marked, &net, &prefix, NULL))
    {
      if (!bg_nl_bridge_only_taps (sk, ifindex) || !bg_nl_first_address (sk, ifindex, &address, &prefix) ||
          prefix < 16 || prefix > 28)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_EXISTS,
                       "bridge: %s exists but banger did not create it; choose another bridge= in network.conf "
                       "(or, if it is a leftover of banger's, delete it: ip link del %s)", c->bridge, c->bridge);
          return NULL;
        }
      net = address & (0xffffffffu << (32 - prefix));
    }
  g_message ("Bridge %s is banger's, but the registry had lost it; recording it again", c->bridge);
  g_variant_builder_init (&b, G_VARIANT_TYPE ("a{sv}"));
  g_variant_builder_add (&b, "{sv}", "subnet", g_variant_new_take_string (bg_ip_format (net)));
  g_variant_builder_add (&b, "{sv}", "prefix", g_variant_new_uint32 (prefix));
  return bg_registry_add (network->registry, BG_KIND_BRIDGE, c->bridge, 0, g_variant_builder_end (&b), error);
}

/* The IPv6 half, where the host has IPv6 and network.conf wants it: the
 * bridge holds ::1 of the /64, and the host forwards IPv6 without
 * losing the router advertisements its uplink lives on (ipv6.c). A
 * network.conf that moves the /64 while taps hold addresses of the old
 * one is refused, as for IPv4. The kernel refusing a step leaves the
 * VMs IPv4 only, saying why, rather than without a network. */
static gboolean
ensure_ipv6 (BgNetwork    *network,
             BgNlSock     *sk,
             BgNetConfig  *c,
             BgResource   *r,
             BgNetState   *s,
             int           ifindex,
             GError      **error)
{
  const char *recorded = bg_resource_get_string (r, "subnet6");
  g_autoptr(GError) local = NULL;
  guint8 net6[16], gateway6[16];

  /* With subnet6=off the bridge holds no IPv6 at all, not even the
   * link-local address the kernel gives every link: else any host user
   * could reach a guest's link-local address, which no ip6 rule of
   * banger's guards then. Turned on again when IPv6 is wanted and the
   * host has it (the bridge is banger's own link). */
  if (!bg_ipv6_set_link (c->bridge, !c->ipv6_off && bg_ipv6_link_enabled ("default"), error))
    return FALSE;
  s->ipv6_off = bg_ipv6_off_reason (c, c->bridge);
  if (s->ipv6_off != NULL)
    return TRUE;
  if (!bg_ipv6_load_prefix (c, bg_daemon_get_state_dir (network->daemon), net6, error))
    return FALSE;
  net_state_set_subnet6 (s, net6);
  if (recorded != NULL && g_strcmp0 (recorded, s->subnet6_text) != 0 && bg_registry_count (network->registry, BG_KIND_TAP) > 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_BUSY,
                   "subnet6: network.conf changed the IPv6 subnet while VMs still use %s; remove them first",
                   recorded);
      return FALSE;
    }
  memcpy (gateway6, net6, 16);
  gateway6[15] = 1;
  if ((!bg_nl_has_address6 (sk, ifindex, gateway6) && !bg_nl_add_address6 (sk, ifindex, gateway6, &local)) ||
      !bg_ipv6_enable_forwarding (s->uplink, &local))
    {
      g_warning ("VMs get IPv4 only: %s", local->message);
      s->ipv6 = FALSE;
      g_clear_pointer (&s->subnet6_text, g_free);
      g_clear_pointer (&s->gateway6, g_free);
      s->ipv6_off = g_strdup_printf ("cannot set IPv6 up: %s", local->message);
    }
  return TRUE;
}

/* Idempotent: when everything is in place it only reads. The guards of
 * the bridge's ports are written again, unless @guards_follow (the
 * caller writes them next, as CreateTap does with its new tap among
 * them) and nothing had to be made again; @guarded says whether they
 * were. */
static BgNetState *
ensure_network (BgNetwork  *network,
                gboolean    guards_follow,
                gboolean   *guarded,
                GError    **error)
{
  BgRegistry *registry = network->registry;
  g_autoptr(BgNetConfig) c = bg_net_config_load (bg_daemon_get_config_dir (network->daemon), error);
  g_autoptr(BgNetState) s = NULL;
  g_autoptr(BgNlSock) sk = NULL;
  g_autoptr(BgNlLink) link = NULL;
  g_autoptr(GArray) routes = NULL;
  g_autoptr(GHashTable) links = NULL;
  BgResource *r;
  gboolean new_record = FALSE, new_link = FALSE, unforgotten = FALSE, in_place;
  int ifindex;

  *guarded = FALSE;
  bg_daemon_test_count (network->daemon, "network-ensure");
  if (c == NULL || (sk = bg_nl_open (error)) == NULL || (routes = bg_nl_routes (sk, error)) == NULL)
    return NULL;
  s = net_state_new (c);
  r = bg_registry_lookup (registry, BG_KIND_BRIDGE, c->bridge);
  link = bg_nl_link_get (sk, c->bridge);

  if (r == NULL && link != NULL)
    {
      /* Marked first: the registry lost the bridge, and may have lost
       * taps with it. */
      if (!mark_subnet_unforgotten (network, "the bridge was adopted", error) ||
          (r = adopt_bridge (network, sk, c, link, error)) == NULL)
        return NULL;
    }

  if (r != NULL)
    {
      guint32 net;
      guint prefix;

      if (!record_subnet (r, &net, &prefix, error))
        return NULL;
      if (!c->subnet_auto && (net != c->subnet || prefix != c->prefix) &&
          bg_registry_count (registry, BG_KIND_TAP) > 0)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_BUSY,
                       "subnet: network.conf changed the subnet while VMs still use the old one; "
                       "remove them first");
          return NULL;
        }
      if (c->subnet_auto)
        net_state_set_subnet (s, net, prefix);
      else
        net_state_set_subnet (s, c->subnet, c->prefix);
    }
  else
    {
      guint32 net = c->subnet;
      GVariantBuilder b;

      if (c->subnet_auto && !bg_routes_pick_subnet (routes, &net, error))
        return NULL;
      net_state_set_subnet (s, net, c->subnet_auto ? 24 : c->prefix);
      /* Recorded before it exists, so a crash right after leaves an entry
       * that reconciliation removes together with the bridge. */
      g_variant_builder_init (&b, G_VARIANT_TYPE ("a{sv}"));
      g_variant_builder_add (&b, "{sv}", "subnet", g_variant_new_take_string (bg_ip_format (s->subnet)));
      g_variant_builder_add (&b, "{sv}", "prefix", g_variant_new_uint32 (s->prefix));
      if (!mark_subnet_unforgotten (network, "the bridge was made anew", error))
        return NULL;
      r = bg_registry_add (registry, BG_KIND_BRIDGE, c->bridge, 0, g_variant_builder_end (&b), error);
      if (r == NULL)
        return NULL;
      new_record = TRUE;
    }

  if (link == NULL)
    {
      /* A new bridge, or a recorded one the kernel lost: either way its
       * subnet must still be free. */
      if (!check_no_clash (sk, routes, s->subnet, s->prefix, -1, error))
        goto rollback;
      if (!new_record)
        g_message ("Bridge %s is gone; making it again with %s", c->bridge, s->subnet_text);
      if (!bg_nl_bridge_add (sk, c->bridge, error))
        goto rollback;
      new_link = TRUE;
      link = bg_nl_link_get (sk, c->bridge);
      if (link == NULL)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "bridge %s vanished after creation", c->bridge);
          goto rollback;
        }
    }
  ifindex = rtnl_link_get_ifindex (link);

  if (!(rtnl_link_get_flags (link) & IFF_UP) && !bg_nl_link_up (sk, link, 0, error))
    goto rollback;
  if (!bg_nl_has_address (sk, ifindex, s->subnet + 1, s->prefix) &&
      !bg_nl_add_address (sk, ifindex, s->subnet + 1, s->prefix, error))
    goto rollback;

  /* Forward on the bridge (VM to world) and on the uplink (replies back). */
  if (!bg_nl_link_enable_forwarding (sk, c->bridge, error))
    goto rollback;
  s->uplink = c->uplink ? g_strdup (c->uplink) : bg_nl_link_name (sk, bg_routes_default_oif (routes));
  if (s->uplink != NULL && !bg_nl_link_enable_forwarding (sk, s->uplink, error))
    goto rollback;

  if (!ensure_ipv6 (network, sk, c, r, s, ifindex, error))
    goto rollback;
  unforgotten = subnet_unforgotten (network);

  in_place = bg_nft_in_place (network->nft, s->bridge, s->subnet_text, s->subnet6_text);
  if (!in_place && !bg_nft_apply (network->nft, s->bridge, s->subnet_text, s->subnet6_text, error))
    goto rollback;
  s->nat = TRUE;

  /* The guards before the taps they guard come back up. Tables made
   * again start with empty sets of owners: written here, whoever's taps
   * they are. */
  if (bg_registry_count (registry, BG_KIND_TAP) > 0 && (links = bg_nl_links (sk, error)) == NULL)
    goto rollback;
  if (!guards_follow || new_link || !in_place || unforgotten ||
      (links != NULL && taps_to_repair (network, links, ifindex)))
    {
      if (!apply_ports (network, error))
        goto rollback;
      *guarded = TRUE;
    }
  if (links != NULL && !repair_taps (network, sk, links, ifindex, error))
    goto rollback;
  /* Once the guards list only what the registry holds: from then on no
   * user but root can track a new connection to a lost address. */
  if (unforgotten && !forget_subnet (network, c, r, s, error))
    goto rollback;

  /* The record says "" for no uplink (a host with no default route):
   * the same, not a change to write down on every call. */
  if (r->state != BG_RESOURCE_READY ||
      g_strcmp0 (bg_resource_get_string (r, "uplink"), s->uplink ? s->uplink : "") != 0 ||
      g_strcmp0 (bg_resource_get_string (r, "subnet6"), s->subnet6_text) != 0)
    {
      GVariantBuilder b;
      g_variant_builder_init (&b, G_VARIANT_TYPE ("a{sv}"));
      g_variant_builder_add (&b, "{sv}", "subnet", g_variant_new_take_string (bg_ip_format (s->subnet)));
      g_variant_builder_add (&b, "{sv}", "prefix", g_variant_new_uint32 (s->prefix));
      g_variant_builder_add (&b, "{sv}", "uplink", g_variant_new_string (s->uplink ? s->uplink : ""));
      if (s->ipv6)
        g_variant_builder_add (&b, "{sv}", "subnet6", g_variant_new_string (s->subnet6_text));
      if (!bg_registry_set_details (registry, r, g_variant_builder_end (&b), error) ||
          !bg_registry_set_state (registry, r, BG_RESOURCE_READY, error))
        goto rollback;
    }
  return g_steal_pointer (&s);

rollback:
  if (new_link)
    bg_nl_link_delete (sk, c->bridge, NULL);
  if (new_record)
    {
      bg_nft_remove (network->nft, NULL);
      bg_registry_remove (registry, r, NULL);
    }
  return NULL;
}

BgNetState *
bg_network_ensure (BgNetwork  *network,
                   GError    **error)
{
  gboolean guarded;

  return ensure_network (network, FALSE, &guarded, error);
}

static gboolean
release_bridge (gpointer     self,
                BgResource  *resource,
                GError     **error)
{
  BgNetwork *network = self;
  g_autoptr(BgNlSock) sk = bg_nl_open (error);

  if (sk == NULL || !bg_nl_link_delete (sk, resource->name, error))
    return FALSE;
  /* Dropping the table removes every banger rule at once. */
  if (!bg_nft_remove (network->nft, error))
    return FALSE;
  bg_hosts_remove (bg_daemon_get_run_dir (network->daemon));
  return TRUE;
}

/* Removes the bridge, banger's table and the names, once no tap remains. */
gboolean
bg_network_teardown (BgNetwork  *network,
                     GError    **error)
{
  g_autoptr(BgNetConfig) c = NULL;
  guint taps = bg_registry_count (network->registry, BG_KIND_TAP);
  BgResource *r;

  if (taps > 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_BUSY, "the network still has %u tap%s; remove those VMs first",
                   taps, taps == 1 ? "" : "s");
      return FALSE;
    }
  c = bg_net_config_load (bg_daemon_get_config_dir (network->daemon), error);
  if (c == NULL)
    return FALSE;
  r = bg_registry_lookup (network->registry, BG_KIND_BRIDGE, c->bridge);
  if (r == NULL)
    /* Nothing recorded: still drop a table a crash may have left. */
    return bg_nft_remove (network->nft, error);
  return bg_daemon_release_resource (network->daemon, r, error);
}

static const BgKindOps bridge_kind = {
  .kind = BG_KIND_BRIDGE,
  .action = "org.banger.network",
  .validate_name = bg_net_validate_ifname,
  .release = release_bridge,
};

BgNetwork *
bg_network_new (BgDaemon *daemon)
{
  BgNetwork *network = g_new0 (BgNetwork, 1);

  network->daemon = daemon;
  network->registry = bg_daemon_get_registry (daemon);
  network->nft = bg_nft_new ();
  bg_daemon_add_kind (daemon, &bridge_kind, network);
  bg_daemon_add_kind (daemon, &bg_tap_kind, network);
  return network;
}

void
bg_network_free (BgNetwork *network)
{
  bg_nft_free (network->nft);
  g_free (network);
}

/* ---- taps: one per VM, persistent, owned by its user (its jail uid
 * while the VM runs), attached to the bridge, with an address of the
 * subnet and a name in the hosts file. Recorded taps the kernel lost are
 * made again; taps the kernel has and the registry lost are recorded at
 * start so cleanup finds them. ---- */

/* Recorded and ready, not an orphan (recorded only to be cleaned up). */
static gboolean
tap_is_live (BgResource *t)
{
  g_autoptr(GVariant) orphan = g_variant_lookup_value (t->details, "orphan", NULL);

  return t->state == BG_RESOURCE_READY && orphan == NULL;
}

/* A live tap the kernel lost, or that left the bridge or went down. */
static gboolean
tap_needs_repair (BgResource *t,
                  GHashTable *links,
                  int         bridge_ifindex)
{
  BgLinkInfo *info;

  if (!tap_is_live (t))
    return FALSE;
  info = g_hash_table_lookup (links, t->name);
  return info == NULL || info->master != bridge_ifindex || !info->up;
}

static gboolean
taps_to_repair (BgNetwork  *network,
                GHashTable *links,
                int         bridge_ifindex)
{
  g_autoptr(GPtrArray) taps = bg_registry_list (network->registry, BG_KIND_TAP);

  for (guint i = 0; i < taps->len; i++)
    if (tap_needs_repair (taps->pdata[i], links, bridge_ifindex))
      return TRUE;
  return FALSE;
}

/* Recorded taps that lost their link or their place on the bridge (the
 * bridge was made again, someone deleted a tap) are made and attached
 * again, owned by their user; LaunchVm gives a tap to its VM's jail uid
 * when the VM starts. */
static gboolean
repair_taps (BgNetwork   *network,
             BgNlSock    *sk,
             GHashTable  *links,
             int          bridge_ifindex,
             GError     **error)
{
  g_autoptr(GPtrArray) taps = bg_registry_list (network->registry, BG_KIND_TAP);

  for (guint i = 0; i < taps->len; i++)
    {
      BgResource *t = taps->pdata[i];
      BgLinkInfo *info = g_hash_table_lookup (links, t->name);
      g_autoptr(BgNlLink) link = NULL;

      /* Orphans (recorded only to be cleaned up) are not made again. */
      if (!tap_is_live (t))
        continue;
      /* A tap made before ports held none of the host's IPv6 loses it
       * here (a read when it has). */
      if (info != NULL && !bg_ipv6_port_off (t->name, error))
        return FALSE;
      if (!tap_needs_repair (t, links, bridge_ifindex))
        continue;
      if (info == NULL)
        {
          g_message ("Tap %s of uid %u is gone; making it again", t->name, (guint) t->owner);
          if (!bg_tap_create (t->name, t->owner, error))
            return FALSE;
        }
      link = bg_nl_link_get (sk, t->name);
      if (link == NULL)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "tap %s vanished after creation", t->name);
          return FALSE;
        }
      if (!bg_ipv6_port_off (t->name, error) || !bg_nl_link_up (sk, link, bridge_ifindex, error))
        return FALSE;
    }
  return TRUE;
}

/* <run-dir>/forget-subnet, while the subnet may hold tracked
 * connections of addresses that are free (see forget_connections). */
static char *
unforgotten_path (BgNetwork *network)
{
  return g_build_filename (bg_daemon_get_run_dir (network->daemon), "forget-subnet", NULL);
}

/* The registry may have lost taps, and so freed addresses without their
 * release: a wiped registry (taps the kernel has, recorded again as
 * orphans, without their addresses), a bridge adopted, or one made anew
 * (whoever deleted the last one may have deleted its taps' records too).
 * Written down, so that a restart before the walk still walks. */
static gboolean
mark_subnet_unforgotten (BgNetwork   *network,
                         const char  *why,
                         GError     **error)
{
  g_autofree char *path = unforgotten_path (network);
  g_autofree char *text = g_strdup_printf ("%s\n", why);

  /* Kept in memory too, should the file not be written. */
  network->forget_pending = TRUE;
  return bg_file_replace (path, text, strlen (text), 0600, error);
}

static gboolean
subnet_unforgotten (BgNetwork *network)
{
  g_autofree char *path = unforgotten_path (network);

  return network->forget_pending || g_file_test (path, G_FILE_TEST_EXISTS);
}

static void
add_prefix (GPtrArray  *prefixes,
            const char *subnet,
            guint       bits)
{
  if (subnet != NULL)
    g_ptr_array_add (prefixes, strchr (subnet, '/') ? g_strdup (subnet) : g_strdup_printf ("%s/%u", subnet, bits));
}

/* Once marked: every tracked connection of an address of the subnet
 * that no tap on record holds goes, then the mark. The subnet as
 * network.conf has it now and as the bridge's record had it (the lost
 * taps' addresses were of that one), IPv4 and the /64, whether or not
 * the VMs have IPv6 at the moment. The host's own addresses on the
 * bridge (the gateways) stay: the live VMs' flows with the host name
 * them. The link-local addresses are left: each is derived from a MAC,
 * which is a 40-bit digest of the owner and the VM's name, so no other
 * user's VM has it (short of a collision of that digest). */
static gboolean
forget_subnet (BgNetwork    *network,
               BgNetConfig  *c,
               BgResource   *bridge,
               BgNetState   *s,
               GError      **error)
{
  g_autofree char *path = unforgotten_path (network);
  g_autoptr(GPtrArray) taps = bg_registry_list (network->registry, BG_KIND_TAP);
  g_autoptr(GPtrArray) keep = g_ptr_array_new ();
  g_autoptr(GPtrArray) prefixes = g_ptr_array_new_with_free_func (g_free);
  guint32 prefix = 0;
  guint8 net6[16];

  add_prefix (prefixes, s->subnet_text, 0);
  add_prefix (prefixes, s->subnet6_text, 64);
  if (bridge != NULL && g_variant_lookup (bridge->details, "prefix", "u", &prefix))
    add_prefix (prefixes, bg_resource_get_string (bridge, "subnet"), prefix);
  if (bridge != NULL)
    add_prefix (prefixes, bg_resource_get_string (bridge, "subnet6"), 64);
  if (bg_ipv6_peek_prefix (c, bg_daemon_get_state_dir (network->daemon), net6))
    {
      g_autofree char *text = bg_ip6_format (net6);
      add_prefix (prefixes, text, 64);
    }
  g_ptr_array_add (prefixes, NULL);

  for (guint i = 0; i < taps->len; i++)
    {
      const char *a = bg_resource_get_string (taps->pdata[i], "address");
      const char *a6 = bg_resource_get_string (taps->pdata[i], "address6");

      if (a != NULL)
        g_ptr_array_add (keep, (gpointer) a);
      if (a6 != NULL)
        g_ptr_array_add (keep, (gpointer) a6);
    }
  g_ptr_array_add (keep, s->gateway);
  if (s->gateway6 != NULL)
    g_ptr_array_add (keep, s->gateway6);
  g_ptr_array_add (keep, NULL);
  bg_daemon_test_count (network->daemon, "conntrack-walk");
  if (!bg_conntrack_forget_prefixes ((const char * const *) prefixes->pdata, (const char * const *) keep->pdata,
                                     error))
    return FALSE;
  if (unlink (path) < 0 && errno != ENOENT)
    return bg_error_errno (error, errno, "cannot remove", path);
  network->forget_pending = FALSE;
  return TRUE;
}

/* Forgets every tracked connection of @tap's addresses (IPv4, IPv6 and
 * the link-local one of its MAC): an address is given to the next VM,
 * whoever's, and an established flow passes banger's output chains
 * without an owner check (see conntrack.c for why the entries go rather
 * than every packet being checked). Called once the address is out of
 * the owners' sets, so no user but root can track a new one to it.
 *
 * Every way a tap's address becomes free goes through here: its release
 * (DeleteTap, LaunchVm's undo, a crash's "creating" or "deleting" entry
 * finished at the next start) and CreateTap's own rollback. So a free
 * address has no tracked connection, and giving it needs no walk of the
 * table. Where the registry may have lost taps, and so addresses
 * without their release, the whole subnet is forgotten once instead
 * (mark_subnet_unforgotten). */
static gboolean
forget_connections (BgNetwork   *network,
                    BgResource  *tap,
                    GError     **error)
{
  g_autofree char *ll = bg_net_link_local (bg_resource_get_string (tap, "mac"));
  const char *addresses[] = { bg_resource_get_string (tap, "address"), bg_resource_get_string (tap, "address6"),
                              ll };

  bg_daemon_test_count (network->daemon, "conntrack-walk");
  return bg_conntrack_forget (addresses, G_N_ELEMENTS (addresses), error);
}

/* The tap goes, and its name with it (the entry is "deleting" now, so
 * the names file no longer lists it, nor the rules its address), then
 * its connections. */
static gboolean
release_tap (gpointer     self,
             BgResource  *resource,
             GError     **error)
{
  BgNetwork *network = self;
  g_autoptr(BgNlSock) sk = bg_nl_open (error);

  return sk != NULL && bg_nl_link_delete (sk, resource->name, error) &&
         bg_hosts_write (bg_daemon_get_run_dir (network->daemon), network->registry, error) &&
         apply_ports (network, error) && forget_connections (network, resource, error);
}

/* The bridge's rules follow the taps: each ready tap may send only as
 * its VM, and (isolate-users) only to its owner's other taps. */
static gboolean
apply_ports (BgNetwork  *network,
             GError    **error)
{
  g_autoptr(BgNetConfig) c = bg_net_config_load (bg_daemon_get_config_dir (network->daemon), error);
  g_autoptr(GPtrArray) taps = bg_registry_list (network->registry, BG_KIND_TAP);
  g_autoptr(GArray) ports = g_array_new (FALSE, FALSE, sizeof (BgNftPort));

  if (c == NULL)
    return FALSE;
  bg_daemon_test_count (network->daemon, "ports-applied");
  for (guint i = 0; i < taps->len; i++)
    {
      BgResource *t = taps->pdata[i];
      g_autoptr(GVariant) orphan = g_variant_lookup_value (t->details, "orphan", NULL);
      BgNftPort p = { t->name, bg_resource_get_string (t, "mac"), bg_resource_get_string (t, "address"),
                      bg_resource_get_string (t, "address6"), t->owner };

      if (t->state == BG_RESOURCE_READY && orphan == NULL && p.mac != NULL && p.address != NULL)
        g_array_append_val (ports, p);
    }
  return bg_nft_apply_ports (network->nft, (BgNftPort *) ports->data, ports->len, c->isolate, error);
}

const BgKindOps bg_tap_kind = {
  .kind = BG_KIND_TAP,
  .action = "org.banger.network",
  .validate_name = bg_net_validate_tap_name,
  .release = release_tap,
};

/* A free address of the subnet: @want if it is one (a VM asking for the
 * address it had before a reboot), else the lowest. */
static gboolean
allocate_address (BgRegistry  *registry,
                  BgNetState  *s,
                  const char  *want,
                  guint32     *out,
                  GError     **error)
{
  g_autoptr(GPtrArray) taps = bg_registry_list (registry, BG_KIND_TAP);
  g_autoptr(GHashTable) used = g_hash_table_new (NULL, NULL);
  guint32 last = s->subnet + (1u << (32 - s->prefix)) - 2;
  guint32 ip;

  for (guint i = 0; i < taps->len; i++)
    if (bg_ip_parse (bg_resource_get_string (taps->pdata[i], "address"), &ip))
      g_hash_table_add (used, GUINT_TO_POINTER (ip));
  /* .1 is the gateway; the top address is broadcast. */
  if (want != NULL && bg_ip_parse (want, &ip) && ip >= s->subnet + 2 && ip <= last &&
      !g_hash_table_contains (used, GUINT_TO_POINTER (ip)))
    {
      *out = ip;
      return TRUE;
    }
  for (ip = s->subnet + 2; ip <= last; ip++)
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

/* The caller's tap for @vm_name, made (with its address, MAC and name)
 * after making sure of the network. One tap per VM: the same owner
 * asking again gets the same tap (the CLI re-running after a crash);
 * another user's VM of that name keeps it, because NAME.<domain> must
 * name one VM. */
BgResource *
bg_network_create_tap (BgNetwork    *network,
                       uid_t         owner,
                       const char   *vm_name,
                       const char   *want_address,
                       BgNetState  **state,
                       GError      **error)
{
  BgRegistry *registry = network->registry;
  g_autoptr(BgNetState) s = NULL;
  g_autoptr(BgNlSock) sk = NULL;
  g_autoptr(BgNlLink) link = NULL;
  g_autoptr(BgNlLink) bridge = NULL;
  g_autoptr(GPtrArray) taps = bg_registry_list (registry, BG_KIND_TAP);
  g_autofree char *tap = bg_net_tap_name (owner, vm_name);
  g_autofree char *mac = bg_net_guest_mac (owner, vm_name);
  GVariantBuilder b;
  BgResource *r;
  gboolean guarded;
  guint32 ip;

  for (guint i = 0; i < taps->len; i++)
    {
      BgResource *t = taps->pdata[i];

      if (g_strcmp0 (bg_resource_get_string (t, "vm"), vm_name) != 0)
        continue;
      if (t->owner != owner)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_EXISTS, "vm_name: another user's VM is already called %s",
                       vm_name);
          return NULL;
        }
    }

  /* Ensuring also repairs the recorded taps, this one included. The
   * guards are written below, with this tap among them. */
  s = ensure_network (network, TRUE, &guarded, error);
  if (s == NULL)
    return NULL;
  r = bg_registry_lookup (registry, BG_KIND_TAP, tap);
  /* Tap names are digests of owner and VM name cut to fit IFNAMSIZ: two
   * users' names can meet, and the other user's tap is neither handed
   * over nor released. */
  if (r != NULL && r->owner != owner)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_EXISTS,
                   "vm_name: the tap name for %s (%s) is another user's VM's; choose another VM name",
                   vm_name, tap);
      return NULL;
    }
  if (r != NULL && r->state == BG_RESOURCE_READY && bg_resource_get_string (r, "address") != NULL)
    {
      if (!guarded && !apply_ports (network, error))
        return NULL;
      *state = g_steal_pointer (&s);
      return r;
    }
  /* An adopted tap the registry lost track of, without its address: it
   * is made again, as new. */
  if (r != NULL && !bg_daemon_release_resource (network->daemon, r, error))
    return NULL;

  if (!bg_daemon_check_limit (network->daemon, owner, BG_KIND_TAP, error) ||
      (sk = bg_nl_open (error)) == NULL)
    return NULL;
  bridge = bg_nl_link_get (sk, s->bridge);
  if (bridge == NULL)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "bridge %s is gone", s->bridge);
      return NULL;
    }
  if (!allocate_address (registry, s, want_address, &ip, error))
    return NULL;

  g_variant_builder_init (&b, G_VARIANT_TYPE ("a{sv}"));
  g_variant_builder_add (&b, "{sv}", "vm", g_variant_new_string (vm_name));
  g_variant_builder_add (&b, "{sv}", "address", g_variant_new_take_string (bg_ip_format (ip)));
  g_variant_builder_add (&b, "{sv}", "gateway", g_variant_new_string (s->gateway));
  g_variant_builder_add (&b, "{sv}", "prefix", g_variant_new_uint32 (s->prefix));
  g_variant_builder_add (&b, "{sv}", "mac", g_variant_new_string (mac));
  g_variant_builder_add (&b, "{sv}", "bridge", g_variant_new_string (s->bridge));
  g_variant_builder_add (&b, "{sv}", "domain", g_variant_new_string (s->domain));
  if (s->ipv6)
    {
      g_variant_builder_add (&b, "{sv}", "address6", g_variant_new_take_string (bg_net_ip6_host (s->subnet6, ip - s->subnet)));
      g_variant_builder_add (&b, "{sv}", "gateway6", g_variant_new_string (s->gateway6));
      g_variant_builder_add (&b, "{sv}", "prefix6", g_variant_new_uint32 (64));
    }

  /* A leftover from a crash that is still in the registry as "creating"
   * was handled at start-up; one that is only in the kernel is removed. */
  bg_nl_link_delete (sk, tap, NULL);

  r = bg_registry_add (registry, BG_KIND_TAP, tap, owner, g_variant_builder_end (&b), error);
  if (r == NULL)
    return NULL;
  bg_daemon_test_hook (network->daemon, "create-tap-recorded");
  if (!bg_tap_create (tap, owner, error))
    goto rollback;
  bg_daemon_test_hook (network->daemon, "create-tap-created");
  link = bg_nl_link_get (sk, tap);
  if (link == NULL)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "tap %s vanished after creation", tap);
      goto rollback;
    }
  /* Its guards first (listed as the only sender of its MAC and address),
   * then onto the bridge and up: it never carries a frame unguarded. The
   * address is free, so nothing tracked of its past is left (see
   * forget_connections). */
  if (!bg_registry_set_state (registry, r, BG_RESOURCE_READY, error) ||
      !apply_ports (network, error) || !bg_ipv6_port_off (tap, error) ||
      !bg_nl_link_up (sk, link, rtnl_link_get_ifindex (bridge), error))
    goto rollback;
  bg_daemon_test_hook (network->daemon, "create-tap-up");
  bg_daemon_test_pause (network->daemon, "create-tap-up");
  if (!bg_hosts_write (bg_daemon_get_run_dir (network->daemon), registry, error))
    goto rollback;
  *state = g_steal_pointer (&s);
  return r;

rollback:
  /* As its release, step by step whatever fails: its owner may have been
   * listed for the address, and so have tracked connections to it, which
   * go before the address is free. Should a step fail (the entry marked,
   * its owner out of the guards, the forgetting), the entry stays,
   * holding the address, and the next start's reconciliation releases
   * it. */
  bg_nl_link_delete (sk, tap, NULL);
  {
    gboolean out = bg_registry_set_state (registry, r, BG_RESOURCE_DELETING, NULL);

    bg_hosts_write (bg_daemon_get_run_dir (network->daemon), registry, NULL);
    if (out && apply_ports (network, NULL) && forget_connections (network, r, NULL))
      bg_registry_remove (registry, r, NULL);
  }
  return NULL;
}

/* Whether the kernel has @tap up on @bridge, as CreateTap left it. */
static gboolean
tap_in_place (const char *tap,
              const char *bridge)
{
  g_autoptr(BgNlSock) sk = bg_nl_open (NULL);
  g_autoptr(GHashTable) links = sk ? bg_nl_links (sk, NULL) : NULL;
  BgLinkInfo *t = links ? g_hash_table_lookup (links, tap) : NULL;
  BgLinkInfo *b = links ? g_hash_table_lookup (links, bridge) : NULL;

  return t != NULL && b != NULL && t->up && t->master == b->ifindex;
}

/* The VM's tap for LaunchVm. The one CreateTap just made is taken as it
 * is, without setting the network up a second time; one the kernel lost
 * (a reboot, a tap deleted by hand) is made again as CreateTap makes it,
 * with the network under it. */
BgResource *
bg_network_tap_for_launch (BgNetwork    *network,
                           uid_t         owner,
                           const char   *vm_name,
                           const char   *want_address,
                           BgNetState  **state,
                           GError      **error)
{
  g_autofree char *name = bg_net_tap_name (owner, vm_name);
  BgResource *r = bg_registry_lookup (network->registry, BG_KIND_TAP, name);
  g_autoptr(BgNetState) s = NULL;
  gboolean orphan = FALSE;

  if (r != NULL)
    g_variant_lookup (r->details, "orphan", "b", &orphan);
  if (r != NULL && r->owner == owner && r->state == BG_RESOURCE_READY && !orphan &&
      bg_resource_get_string (r, "address") != NULL &&
      (s = bg_network_inspect (network, NULL)) != NULL && s->nat && tap_in_place (name, s->bridge))
    {
      *state = g_steal_pointer (&s);
      return r;
    }
  return bg_network_create_tap (network, owner, vm_name, want_address, state, error);
}

/* What CreateTap() answers: the tap and the network it is on. */
GVariant *
bg_network_tap_info (BgResource *tap,
                     BgNetState *state)
{
  GVariantDict d;

  g_variant_dict_init (&d, tap->details);
  g_variant_dict_remove (&d, "vm");
  g_variant_dict_insert (&d, "tap", "s", tap->name);
  g_variant_dict_insert_value (&d, "dns", g_variant_new_strv ((const char * const *) state->dns, -1));
  return g_variant_dict_end (&d);
}

gboolean
bg_network_delete_tap (BgNetwork   *network,
                       BgResource  *tap,
                       GError     **error)
{
  return bg_daemon_release_resource (network->daemon, tap, error);
}

static uid_t
tap_kernel_owner (const char *tap)
{
  g_autofree char *path = g_strdup_printf ("/sys/class/net/%s/owner", tap);
  g_autofree char *text = NULL;
  gint64 owner;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return 0;
  owner = g_ascii_strtoll (text, NULL, 10);
  return owner < 0 ? 0 : (uid_t) owner;
}

/* At start: banger's taps the kernel has and the registry does not (it
 * was wiped) are recorded, as their kernel owner's (a VM's jail uid maps
 * back to the VM's user; unknown ones are root's), so that 'system
 * cleanup' sees them and the next CreateTap of their VM makes them anew;
 * and the names file is written from the registry. */
void
bg_network_reconcile (BgNetwork *network)
{
  g_autoptr(BgNlSock) sk = bg_nl_open (NULL);
  g_autoptr(GHashTable) links = sk ? bg_nl_links (sk, NULL) : NULL;
  g_autoptr(GPtrArray) vms = bg_registry_list (network->registry, BG_KIND_VM);
  g_autoptr(GError) error = NULL;
  GHashTableIter iter;
  gpointer name;

  if (links != NULL)
    {
      g_hash_table_iter_init (&iter, links);
      while (g_hash_table_iter_next (&iter, &name, NULL))
        {
          g_autofree char *tun = g_strdup_printf ("/sys/class/net/%s/tun_flags", (char *) name);
          uid_t owner;
          BgResource *r;

          if (!bg_net_validate_tap_name ("tap", name, NULL) || !g_file_test (tun, G_FILE_TEST_EXISTS) ||
              bg_registry_lookup (network->registry, BG_KIND_TAP, name) != NULL)
            continue;
          owner = tap_kernel_owner (name);
          for (guint i = 0; i < vms->len; i++)
            {
              BgResource *vm = vms->pdata[i];
              guint32 jail_uid;
              if (g_variant_lookup (vm->details, "uid", "u", &jail_uid) && jail_uid == owner)
                owner = vm->owner;
            }
          /* Marked first: a crash between the two must not lose it. */
          if (!mark_subnet_unforgotten (network, "taps were recorded again", &error))
            {
              g_warning ("%s (kept in memory)", error->message);
              g_clear_error (&error);
            }
          r = bg_registry_add (network->registry, BG_KIND_TAP, name, owner,
                               g_variant_new_parsed ("{'orphan': <true>}"), &error);
          if (r == NULL || !bg_registry_set_state (network->registry, r, BG_RESOURCE_READY, &error))
            {
              g_warning ("Cannot record the tap %s: %s", (char *) name, error->message);
              g_clear_error (&error);
              continue;
            }
          g_message ("Tap %s was not in the registry; recorded as uid %u's", (char *) name, (guint) owner);
        }
    }
  if (!bg_hosts_write (bg_daemon_get_run_dir (network->daemon), network->registry, &error))
    g_warning ("%s", error->message);
}

