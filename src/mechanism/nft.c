/* nft.c: NAT and forwarding rules in banger's own table (`ip banger`),
 * through libnftables, in-process and applied as one atomic transaction;
 * the host's own rules are never touched, and teardown is dropping that
 * one table. The table carries a comment naming the bridge and subnet it
 * was made for, so "in place" means "in place for this network", and a
 * flushed or stale table is simply made again. IPv6 has a table of its
 * own (`ip6 banger`, NAT66 to the uplink's address), made and dropped
 * with the IPv4 one.
 *
 * On the bridge itself (`bridge banger`): a tap may only send frames as
 * its VM (its MAC, and for IPv4, ARP and IPv6 its address; for IPv6 also
 * its link-local address, and neighbour advertisements only for those;
 * never a router advertisement, a redirect or a DHCPv6 server's
 * message); a `bg-` port not (yet) listed sends nothing; and, unless
 * network.conf allows it, frames between taps of different owners are
 * dropped, bridged (forward) or routed by the host (output: a frame from
 * one VM's IPv4 or IPv6 address leaving through another owner's tap).
 *
 * The host's own connections to VMs (`ip banger` and `ip6 banger`,
 * output): a process reaches a VM's addresses (IPv4; IPv6, and the
 * link-local address its MAC makes) only as the VM's owner or root
 * (`meta skuid`, the sets `owners` kept with the taps); replies to what a
 * VM opened pass, and so does the kernel's own neighbour discovery and
 * MLD, which carry no user's connection. */
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <netlink/netfilter/nfnl.h>
#include <arpa/inet.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <nftables/libnftables.h>

#include "bg-error.h"
#include "bg-netconf.h"
#include "nft.h"

#define NFT_TABLE "banger"

/* One libnftables context for the mechanism's life: a fresh one costs
 * milliseconds to make and to fill its cache, and every call would make
 * one. Its cache is no shortcut past the kernel: libnftables compares the
 * ruleset's generation with the kernel's before each command and fetches
 * it again when anyone (a person with nft, another tool) changed it.
 *
 * What this process last made is remembered, only to skip a listing
 * whose answer is known: the digest of the bridge table it last wrote
 * (a different set of ports is written anew without listing the old),
 * and whether the ip6 table exists. A change that fails on what was
 * remembered (someone dropped a table meanwhile) forgets it and is made
 * again from what the kernel lists.
 *
 * And whether the ip and ip6 tables were in place, at which generation
 * of the ruleset: the kernel counts every committed change, anyone's,
 * so while the count is where this process left it nothing has changed
 * them, and "in place" needs no listing (two, of both tables, on every
 * call that makes sure of the network). One change of anyone else's, a
 * flush by hand included, moves the count past it, and the tables are
 * listed again. The same holds for the bridge table this process last
 * wrote: while the count is where it left it, a new set of ports only
 * needs the sets changed. */
typedef enum {
  IP6_UNKNOWN = -1,
  IP6_ABSENT,
  IP6_PRESENT,
} Ip6Table;

struct _BgNft {
  struct nft_ctx *ctx;
  char           *ports_digest;
  gboolean        ports_isolate;  /* which chains the bridge table has */
  Ip6Table        ip6;
  char           *in_place;       /* for what (bridge, subnets), or NULL */
  gint64          in_place_gen;   /* at which generation */
  gint64          ports_gen;      /* the generation at which the bridge table
                                   * held ports_digest's ports, or -1 */
  guint           owners_written; /* how many owners this process last wrote */
};

BgNft *
bg_nft_new (void)
{
  BgNft *nft = g_new0 (BgNft, 1);

  nft->ip6 = IP6_UNKNOWN;
  nft->ports_gen = -1;
  return nft;
}

static void
forget_made (BgNft *nft)
{
  g_clear_pointer (&nft->ports_digest, g_free);
  g_clear_pointer (&nft->in_place, g_free);
  nft->ports_gen = -1;
  nft->owners_written = 0;
  nft->ip6 = IP6_UNKNOWN;
}

static int
on_generation (struct nl_msg *msg,
               void          *data)
{
  static struct nla_policy policy[NFTA_GEN_MAX + 1] = { [NFTA_GEN_ID] = { .type = NLA_U32 } };
  struct nlmsghdr *h = nlmsg_hdr (msg);
  struct nlattr *tb[NFTA_GEN_MAX + 1];
  gint64 *gen = data;

  if (h->nlmsg_type == ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWGEN) &&
      nlmsg_parse (h, sizeof (struct nfgenmsg), tb, NFTA_GEN_MAX, policy) == 0 && tb[NFTA_GEN_ID] != NULL)
    *gen = ntohl (nla_get_u32 (tb[NFTA_GEN_ID]));
  return NL_OK;
}

/* The ruleset's generation (NFT_MSG_GETGEN), or -1 if it cannot be read:
 * then nothing is taken as known. */
static gint64
ruleset_generation (void)
{
  struct nl_sock *sk = nl_socket_alloc ();
  gint64 gen = -1;

  if (sk == NULL)
    return -1;
  if (nfnl_connect (sk) < 0 ||
      nfnl_send_simple (sk, NFNL_SUBSYS_NFTABLES, NFT_MSG_GETGEN, 0, AF_UNSPEC, 0) < 0 ||
      nl_socket_modify_cb (sk, NL_CB_VALID, NL_CB_CUSTOM, on_generation, &gen) < 0 ||
      nl_recvmsgs_default (sk) < 0)
    gen = -1;
  nl_socket_free (sk);
  return gen;
}

/* After a change of this process's own, committed from generation
 * @before (read just before it): what was known at @before still is if
 * the change was the only one (the count moved by exactly one). Only if
 * the change @changed something for certain: the kernel does not count
 * a transaction that changes nothing (an empty set flushed, a table
 * added that exists), and then a move by one is someone else's. */
static void
committed (BgNft    *nft,
           gint64    before,
           gboolean  changed)
{
  gint64 now = changed && before >= 0 && (nft->in_place != NULL || nft->ports_gen >= 0) ? ruleset_generation () : -1;
  gboolean only_ours = now >= 0 && now == before + 1;

  if (only_ours && nft->in_place != NULL && nft->in_place_gen == before)
    nft->in_place_gen = now;
  else
    g_clear_pointer (&nft->in_place, g_free);
  nft->ports_gen = only_ours && nft->ports_gen == before ? now : -1;
}

void
bg_nft_free (BgNft *nft)
{
  if (nft == NULL)
    return;
  if (nft->ctx != NULL)
    nft_ctx_free (nft->ctx);
  g_free (nft->ports_digest);
  g_free (nft->in_place);
  g_free (nft);
}

static gboolean
nft_run (BgNft       *nft,
         const char  *script,
         char       **output,
         GError     **error)
{
  const char *out, *err;
  gboolean ok;

  if (nft->ctx == NULL)
    {
      nft->ctx = nft_ctx_new (NFT_CTX_DEFAULT);
      nft_ctx_buffer_output (nft->ctx);
      nft_ctx_buffer_error (nft->ctx);
    }
  ok = nft_run_cmd_from_buffer (nft->ctx, script) == 0;
  /* Reading a buffer also empties it for the next command. */
  out = nft_ctx_get_output_buffer (nft->ctx);
  err = nft_ctx_get_error_buffer (nft->ctx);
  if (!ok)
    {
      g_autofree char *msg = g_strdup (err);
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "nftables refused the change: %s",
                   g_strstrip (msg));
    }
  else if (output)
    *output = g_strdup (out);
  return ok;
}

static char *
marker (const char *bridge,
        const char *subnet)
{
  return g_strdup_printf ("\"banger bridge=%s subnet=%s\"", bridge, subnet);
}

static char *
marker6 (const char *bridge,
         const char *subnet6)
{
  return g_strdup_printf ("\"banger bridge=%s subnet6=%s\"", bridge, subnet6);
}

/* The first rule of both output chains (see bg_nft_apply), as nft lists
 * it. */
#define PORT_DROP "oifname \"" BG_TAP_PREFIX "*\" drop"

static gboolean
table_in_place (BgNft      *nft,
                const char *family,
                const char *want,
                const char *also)
{
  g_autofree char *out = NULL;
  g_autofree char *cmd = g_strdup_printf ("list table %s " NFT_TABLE, family);

  if (!nft_run (nft, cmd, &out, NULL))
    return FALSE;
  return strstr (out, want) != NULL && strstr (out, "masquerade") != NULL &&
         (also == NULL || strstr (out, also) != NULL);
}

/* The tables exist, are the ones for this bridge and subnets (@subnet6
 * NULL: no IPv6 table), and still have their masquerade rules (a flush
 * keeps a table's comment, not its rules). */
static gboolean
tables_in_place (BgNft      *nft,
                 const char *bridge,
                 const char *subnet,
                 const char *subnet6)
{
  g_autofree char *want = marker (bridge, subnet);
  g_autofree char *want6 = subnet6 ? marker6 (bridge, subnet6) : NULL;

  /* A table from before the drop of what leaves straight out a port
   * (and so from before the owners' check, which came first) is made
   * again. */
  if (!table_in_place (nft, "ip", want, PORT_DROP))
    return FALSE;
  if (subnet6 == NULL)
    {
      if (nft_run (nft, "list table ip6 " NFT_TABLE, NULL, NULL))
        return FALSE;
      nft->ip6 = IP6_ABSENT;
      return TRUE;
    }
  if (!table_in_place (nft, "ip6", want6, PORT_DROP))
    return FALSE;
  nft->ip6 = IP6_PRESENT;
  return TRUE;
}

static char *
in_place_key (const char *bridge,
              const char *subnet,
              const char *subnet6)
{
  return g_strdup_printf ("%s %s %s", bridge, subnet, subnet6 ? subnet6 : "-");
}

gboolean
bg_nft_in_place (BgNft      *nft,
                 const char *bridge,
                 const char *subnet,
                 const char *subnet6)
{
  g_autofree char *key = in_place_key (bridge, subnet, subnet6);
  /* Read before the listing: a change made during it moves the count
   * past what is remembered. */
  gint64 gen = ruleset_generation ();

  if (gen >= 0 && nft->in_place != NULL && g_str_equal (nft->in_place, key) && gen == nft->in_place_gen &&
      nft->ip6 != IP6_UNKNOWN)
    return TRUE;
  g_clear_pointer (&nft->in_place, g_free);
  if (!tables_in_place (nft, bridge, subnet, subnet6))
    return FALSE;
  if (gen >= 0)
    {
      nft->in_place = g_steal_pointer (&key);
      nft->in_place_gen = gen;
    }
  return TRUE;
}

/* The subnet banger's table says it was made for, if it names @bridge:
 * how a bridge the registry lost is known to be banger's. */
char *
bg_nft_marked_subnet (BgNft      *nft,
                      const char *bridge)
{
  g_autofree char *out = NULL;
  g_autofree char *want = g_strdup_printf ("\"banger bridge=%s subnet=", bridge);
  const char *at, *end;

  if (!nft_run (nft, "list table ip " NFT_TABLE, &out, NULL) || (at = strstr (out, want)) == NULL)
    return NULL;
  at += strlen (want);
  end = strchr (at, '"');
  return end ? g_strndup (at, end - at) : NULL;
}

/* Replaces banger's table in one transaction: "add table" (a no-op if it
 * exists) then "delete table" then the new table, so there is never a
 * moment with half the rules. Everything interpolated here comes from the
 * validated system config. */
gboolean
bg_nft_apply (BgNft       *nft,
              const char  *bridge,
              const char  *subnet,
              const char  *subnet6,
              GError     **error)
{
  g_autofree char *comment = marker (bridge, subnet);
  g_autoptr(GString) script = g_string_new (NULL);
  gint64 before;

  g_string_append_printf (script,
      "add table ip " NFT_TABLE "\n"
      "delete table ip " NFT_TABLE "\n"
      "table ip " NFT_TABLE " {\n"
      "  comment %s\n"
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
      /* Filled by bg_nft_apply_ports: each VM's address with its owner. */
      "  set owners { typeof ip daddr . meta skuid; }\n"
      /* Nothing legitimate leaves the host's own stack straight out a
       * VM's port (the host reaches VMs through the bridge, and the
       * port of a VMM's network namespace is the host end of its
       * veth): a user sending there, to the broadcast address from the
       * bridge's, would reach every service of that VM and hear their
       * answers to the gateway, past the owners check below. */
      "  chain output {\n"
      "    type filter hook output priority filter; policy accept;\n"
      "    " PORT_DROP "\n"
      "    oifname != \"%s\" accept\n"
      "    ct state established,related accept\n"
      "    meta skuid 0 accept\n"
      "    ip daddr . meta skuid @owners accept\n"
      /* Refused as a closed port would be, at once, not left to time out. */
      "    meta l4proto tcp reject with tcp reset\n"
      "    reject with icmp type admin-prohibited\n"
      "  }\n"
      "}\n",
      comment, subnet, bridge, bridge, bridge, bridge, bridge);
  g_string_append (script, "add table ip6 " NFT_TABLE "\n"
                           "delete table ip6 " NFT_TABLE "\n");
  if (subnet6 != NULL)
    {
      g_autofree char *comment6 = marker6 (bridge, subnet6);

      /* The same shape for IPv6: VMs out through the uplink's address
       * (NAT66), replies back, nothing else in; host users reach only
       * their own VMs. Neighbour discovery and MLD pass first: the
       * kernel sends them for everyone's connections (and root's), and
       * they open none (a user needs a raw socket to send them). */
      g_string_append_printf (script,
          "table ip6 " NFT_TABLE " {\n"
          "  comment %s\n"
          "  chain postrouting {\n"
          "    type nat hook postrouting priority srcnat; policy accept;\n"
          "    ip6 saddr %s oifname != \"%s\" masquerade\n"
          "  }\n"
          "  chain forward {\n"
          "    type filter hook forward priority filter; policy accept;\n"
          "    iifname \"%s\" accept\n"
          "    oifname \"%s\" ct state established,related accept\n"
          "    oifname \"%s\" drop\n"
          "  }\n"
          /* Filled by bg_nft_apply_ports, as the IPv4 one. */
          "  set owners { typeof ip6 daddr . meta skuid; }\n"
          /* As for IPv4: nothing straight out a VM's port (to ff02::1
           * there, say), not even neighbour discovery. */
          "  chain output {\n"
          "    type filter hook output priority filter; policy accept;\n"
          "    " PORT_DROP "\n"
          "    oifname != \"%s\" accept\n"
          "    icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert,"
          " mld-listener-report, mld-listener-done, mld2-listener-report } accept\n"
          "    ct state established,related accept\n"
          "    meta skuid 0 accept\n"
          "    ip6 daddr . meta skuid @owners accept\n"
          "    meta l4proto tcp reject with tcp reset\n"
          "    reject with icmpv6 type admin-prohibited\n"
          "  }\n"
          "}\n",
          comment6, subnet6, bridge, bridge, bridge, bridge, bridge);
    }
  /* The bridge table is not touched: its digest still holds. */
  nft->ip6 = IP6_UNKNOWN;
  g_clear_pointer (&nft->in_place, g_free);
  before = ruleset_generation ();
  if (!nft_run (nft, script->str, NULL, error))
    return FALSE;
  nft->ip6 = subnet6 != NULL ? IP6_PRESENT : IP6_ABSENT;
  nft->in_place = in_place_key (bridge, subnet, subnet6);
  nft->in_place_gen = before;
  committed (nft, before, TRUE);
  return TRUE;
}

gboolean
bg_nft_remove (BgNft   *nft,
               GError **error)
{
  forget_made (nft);
  return nft_run (nft, "add table ip " NFT_TABLE "\ndelete table ip " NFT_TABLE "\n"
                  "add table ip6 " NFT_TABLE "\ndelete table ip6 " NFT_TABLE "\n"
                  "add table bridge " NFT_TABLE "\ndelete table bridge " NFT_TABLE "\n", NULL, error);
}

static void
add_elements (GString    *script,
              const char *set,
              const char *type,
              GString    *elements)
{
  g_string_append_printf (script, "  set %s { type %s;", set, type);
  if (elements->len > 0)
    g_string_append_printf (script, " elements = { %s }", elements->str);
  g_string_append (script, " }\n");
}

/* The same set of the bridge table, emptied and filled again. */
static void
replace_elements (GString    *script,
                  const char *set,
                  GString    *elements)
{
  g_string_append_printf (script, "flush set bridge " NFT_TABLE " %s\n", set);
  if (elements->len > 0)
    g_string_append_printf (script, "add element bridge " NFT_TABLE " %s { %s }\n", set, elements->str);
}

/* @address as the 128-bit integer a raw payload match compares with. */
static void
append_ip6_integer (GString    *out,
                    const char *address)
{
  guint8 a[16];

  if (!bg_ip6_parse (address, a))
    return;
  g_string_append (out, "0x");
  for (guint i = 0; i < 16; i++)
    g_string_append_printf (out, "%02x", a[i]);
}

/* What @port may send as over IPv6: its address (if the network has
 * IPv6) and the link-local address its MAC makes, into @sources6 (by
 * source address) and @targets (by the target of its neighbour
 * advertisements, which nftables 1.0.6 reaches only as raw payload);
 * the same addresses are its owner's to reach from the host (@owners6). */
static void
add_port6 (GString         *sources6,
           GString         *targets,
           GString         *macs,
           GString         *owners6,
           const BgNftPort *port)
{
  g_autofree char *ll = bg_net_link_local (port->mac);
  const char *own[] = { ll, port->address6 };

  g_string_append_printf (macs, "%s\"%s\" . %s", macs->len ? ", " : "", port->tap, port->mac);
  for (guint k = 0; k < G_N_ELEMENTS (own); k++)
    {
      if (own[k] == NULL)
        continue;
      g_string_append_printf (sources6, "%s\"%s\" . %s . %s", sources6->len ? ", " : "", port->tap, port->mac,
                              own[k]);
      g_string_append_printf (targets, "%s\"%s\" . %s . ", targets->len ? ", " : "", port->tap, port->mac);
      append_ip6_integer (targets, own[k]);
      g_string_append_printf (owners6, "%s%s . %u", owners6->len ? ", " : "", own[k], (guint) port->owner);
    }
}

/* Replaces the bridge table in one transaction, unless it is in place:
 * its comment is a digest of what it was made from, and a flush (which
 * keeps the comment) is seen by its last rule being gone. The owners of
 * the VMs' addresses in `ip banger` and `ip6 banger` are written again
 * every time, in the same transaction (a table made again by
 * bg_nft_apply starts empty).
 * Names, MACs and addresses come from the registry, which only the
 * mechanism writes. */
/* Whether the ip6 table is there, as this process last made or saw it,
 * else as the kernel lists it now; @from_memory says which. */
static gboolean
ip6_table_present (BgNft    *nft,
                   gboolean *from_memory)
{
  *from_memory = nft->ip6 != IP6_UNKNOWN;
  if (nft->ip6 == IP6_UNKNOWN)
    nft->ip6 = nft_run (nft, "list set ip6 " NFT_TABLE " owners", NULL, NULL) ? IP6_PRESENT : IP6_ABSENT;
  return nft->ip6 == IP6_PRESENT;
}

static gboolean apply_ports_once (BgNft           *nft,
                                  const BgNftPort *ports,
                                  guint            n_ports,
                                  gboolean         isolate,
                                  gboolean        *from_memory,
                                  GError         **error);

gboolean
bg_nft_apply_ports (BgNft           *nft,
                    const BgNftPort *ports,
                    guint            n_ports,
                    gboolean         isolate,
                    GError         **error)
{
  g_autoptr(GError) local = NULL;
  gboolean from_memory = FALSE;

  if (apply_ports_once (nft, ports, n_ports, isolate, &from_memory, &local))
    return TRUE;
  forget_made (nft);
  if (!from_memory)
    {
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  /* A table went since this process last looked: as the kernel has it. */
  return apply_ports_once (nft, ports, n_ports, isolate, &from_memory, error);
}

static gboolean
apply_ports_once (BgNft           *nft,
                  const BgNftPort *ports,
                  guint            n_ports,
                  gboolean         isolate,
                  gboolean        *from_memory,
                  GError         **error)
{
  g_autoptr(GString) script = g_string_new (NULL);
  g_autoptr(GString) taps = g_string_new (NULL);
  g_autoptr(GString) sources = g_string_new (NULL);
  g_autoptr(GString) sources6 = g_string_new (NULL);
  g_autoptr(GString) targets = g_string_new (NULL);
  g_autoptr(GString) macs = g_string_new (NULL);
  g_autoptr(GString) peers = g_string_new (NULL);
  g_autoptr(GString) addresses = g_string_new (NULL);
  g_autoptr(GString) routes = g_string_new (NULL);
  g_autoptr(GString) addresses6 = g_string_new (NULL);
  g_autoptr(GString) routes6 = g_string_new (NULL);
  g_autoptr(GString) owners = g_string_new (NULL);
  g_autoptr(GString) owners6 = g_string_new (NULL);
  g_autofree char *written = NULL;
  /* The owners are flushed and written again: certain to change
   * something if there are any to write, or any this process wrote
   * last (while nobody else changed anything: else nothing it knows is
   * kept anyway). */
  gboolean changes = n_ports > 0 || nft->owners_written > 0;
  gint64 gen;

  for (guint i = 0; i < n_ports; i++)
    {
      const char *sep = i ? ", " : "";

      g_string_append_printf (taps, "%s\"%s\"", sep, ports[i].tap);
      g_string_append_printf (sources, "%s\"%s\" . %s . %s", sep, ports[i].tap, ports[i].mac, ports[i].address);
      g_string_append_printf (addresses, "%s%s", sep, ports[i].address);
      g_string_append_printf (owners, "%s%s . %u", sep, ports[i].address, (guint) ports[i].owner);
      if (ports[i].address6 != NULL)
        g_string_append_printf (addresses6, "%s%s", addresses6->len ? ", " : "", ports[i].address6);
      add_port6 (sources6, targets, macs, owners6, &ports[i]);
      for (guint j = 0; j < n_ports; j++)
        if (ports[j].owner == ports[i].owner)
          {
            if (j != i)
              g_string_append_printf (peers, "%s\"%s\" . \"%s\"", peers->len ? ", " : "", ports[i].tap,
                                      ports[j].tap);
            g_string_append_printf (routes, "%s%s . \"%s\"", routes->len ? ", " : "", ports[i].address,
                                    ports[j].tap);
            if (ports[i].address6 != NULL)
              g_string_append_printf (routes6, "%s%s . \"%s\"", routes6->len ? ", " : "", ports[i].address6,
                                      ports[j].tap);
          }
    }

  g_string_append (script, "add table ip " NFT_TABLE "\n"
                           "add set ip " NFT_TABLE " owners { typeof ip daddr . meta skuid; }\n"
                           "flush set ip " NFT_TABLE " owners\n");
  if (owners->len > 0)
    g_string_append_printf (script, "add element ip " NFT_TABLE " owners { %s }\n", owners->str);
  /* The IPv6 table, with its output chain, is there only while the
   * network has IPv6: bg_nft_apply made it or dropped it just before. */
  if (ip6_table_present (nft, from_memory))
    {
      g_string_append (script, "flush set ip6 " NFT_TABLE " owners\n");
      if (owners6->len > 0)
        g_string_append_printf (script, "add element ip6 " NFT_TABLE " owners { %s }\n", owners6->str);
    }
  {
    g_autofree char *spec = g_strdup_printf ("%s|%s|%s|%s|%d", taps->str, sources->str, sources6->str, peers->str,
                                             isolate);
    g_autofree char *digest = g_compute_checksum_for_string (G_CHECKSUM_SHA256, spec, -1);
    g_autofree char *listing = NULL;

    gen = ruleset_generation ();

    /* Nothing changed since this process last wrote the bridge table
     * (the ruleset's generation is where it left it): the same ports
     * are in place, and other ports of the same kind only change the
     * sets, in the same transaction, chains untouched. The table's
     * comment then names the ports it was made for, no longer the
     * ones in its sets: a listing (below) finds it stale and writes
     * it anew. */
    if (gen >= 0 && gen == nft->ports_gen && nft->ports_digest != NULL &&
        (g_str_equal (nft->ports_digest, digest) || nft->ports_isolate == isolate))
      {
        if (!g_str_equal (nft->ports_digest, digest))
          {
            replace_elements (script, "taps", taps);
            replace_elements (script, "sources", sources);
            replace_elements (script, "sources6", sources6);
            replace_elements (script, "macs", macs);
            replace_elements (script, "peers", peers);
            replace_elements (script, "targets", targets);
            if (isolate)
              {
                replace_elements (script, "addresses", addresses);
                replace_elements (script, "routes", routes);
                replace_elements (script, "addresses6", addresses6);
                replace_elements (script, "routes6", routes6);
              }
          }
        if (!nft_run (nft, script->str, NULL, error))
          return FALSE;
        g_free (nft->ports_digest);
        nft->ports_digest = g_steal_pointer (&digest);
        nft->owners_written = n_ports;
        committed (nft, gen, changes);
        return TRUE;
      }

    /* Other ports than this process last wrote: written anew, without
     * listing the old. The same ones: written only if they are not in
     * place (a flush keeps the comment, not the rules). */
    if (g_strcmp0 (nft->ports_digest, digest) == 0 &&
        nft_run (nft, "list table bridge " NFT_TABLE, &listing, NULL) && strstr (listing, digest) != NULL &&
        strstr (listing, "\t\tdrop\n") != NULL)
      {
        if (!nft_run (nft, script->str, NULL, error))
          return FALSE;
        /* Not remembered as this process's own: a listing does not see
         * every rule (a chain dropped by hand keeps the comment and the
         * last drop), and only a table written whole makes the sets-only
         * change above safe. */
        nft->owners_written = n_ports;
        committed (nft, gen, changes);
        return TRUE;
      }
    g_clear_pointer (&nft->ports_digest, g_free);
    written = g_strdup (digest);
    g_string_append_printf (script, "add table bridge " NFT_TABLE "\n"
                                    "delete table bridge " NFT_TABLE "\n"
                                    "table bridge " NFT_TABLE " {\n"
                                    "  comment \"banger ports %s\"\n", digest);
  }
  add_elements (script, "taps", "ifname", taps);
  add_elements (script, "sources", "ifname . ether_addr . ipv4_addr", sources);
  add_elements (script, "sources6", "ifname . ether_addr . ipv6_addr", sources6);
  add_elements (script, "macs", "ifname . ether_addr", macs);
  add_elements (script, "peers", "ifname . ifname", peers);
  g_string_append_printf (script, "  set targets { typeof iifname . ether saddr . @th,64,128;%s%s%s }\n",
                          targets->len ? " elements = { " : "", targets->str, targets->len ? " }" : "");
  /* Every bg- port is guarded, listed or not: a tap is listed before it
   * joins the bridge, and one the registry does not know sends nothing.
   * IPv6 from a VM: never what only routers and DHCPv6 servers send;
   * a neighbour advertisement only for its own addresses (the target
   * is 8 bytes into the ICMPv6 message); otherwise only from its own
   * addresses, or from :: while it checks an address is free (DAD). */
  g_string_append (script,
                   "  chain prerouting {\n"
                   "    type filter hook prerouting priority filter; policy accept;\n"
                   "    iifname != \"" BG_TAP_PREFIX "*\" accept\n"
                   "    ether type ip iifname . ether saddr . ip saddr @sources accept\n"
                   "    ether type arp iifname . ether saddr . arp saddr ip @sources"
                   " iifname . arp saddr ether . arp saddr ip @sources accept\n"
                   "    ether type ip6 icmpv6 type { nd-router-advert, nd-redirect } drop\n"
                   "    ether type ip6 udp sport 547 drop\n"
                   "    ether type ip6 udp dport 546 drop\n"
                   "    ether type ip6 icmpv6 type nd-neighbor-advert"
                   " iifname . ether saddr . @th,64,128 != @targets drop\n"
                   "    ether type ip6 iifname . ether saddr . ip6 saddr @sources6 accept\n"
                   "    ether type ip6 ip6 saddr :: icmpv6 type { nd-neighbor-solicit, mld2-listener-report }"
                   " iifname . ether saddr @macs accept\n"
                   "    drop\n"
                   "  }\n");
  if (isolate)
    {
      add_elements (script, "addresses", "ipv4_addr", addresses);
      add_elements (script, "routes", "ipv4_addr . ifname", routes);
      add_elements (script, "addresses6", "ipv6_addr", addresses6);
      add_elements (script, "routes6", "ipv6_addr . ifname", routes6);
      g_string_append (script,
                       "  chain forward {\n"
                       "    type filter hook forward priority filter; policy accept;\n"
                       "    iifname != @taps accept\n"
                       "    oifname != @taps accept\n"
                       "    iifname . oifname @peers accept\n"
                       "    drop\n"
                       "  }\n"
                       /* What the host routes from one VM to another
                        * leaves through the bridge's output: a VM's
                        * address (IPv4 or IPv6) goes only to its
                        * owner's taps. */
                       "  chain output {\n"
                       "    type filter hook output priority filter; policy accept;\n"
                       "    oifname != \"" BG_TAP_PREFIX "*\" accept\n"
                       "    ether type ip6 ip6 saddr != @addresses6 accept\n"
                       "    ether type ip6 ip6 saddr . oifname @routes6 accept\n"
                       "    ether type ip6 drop\n"
                       "    ether type != ip accept\n"
                       "    ip saddr != @addresses accept\n"
                       "    ip saddr . oifname @routes accept\n"
                       "    drop\n"
                       "  }\n");
    }
  g_string_append (script, "}\n");
  if (!nft_run (nft, script->str, NULL, error))
    return FALSE;
  nft->ports_digest = g_steal_pointer (&written);
  nft->ports_isolate = isolate;
  /* The ip and ip6 tables' rules are not touched, only their owners:
   * still in place if nobody else changed anything; the bridge table is
   * now this one. */
  nft->ports_gen = gen;
  nft->owners_written = n_ports;
  committed (nft, gen, TRUE);
  return TRUE;
}
