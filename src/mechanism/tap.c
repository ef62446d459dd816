/* tap.c: the VM network's taps — one per VM, persistent, owned by its
 * user (its jail uid while the VM runs), attached to the bridge, with an
 * address of the subnet (and of the IPv6 /64, paired with the IPv4 one)
 * and a name in the hosts file. Recorded taps the
 * kernel lost are made again; taps the kernel has and the registry lost
 * are recorded at start so cleanup finds them. */

#include "bg-error.h"
#include "bg-netconf.h"
#include "daemon.h"
#include "hosts.h"
#include "netlink.h"
#include "network.h"
#include "nft.h"
#include "registry.h"

/* Recorded taps that lost their link or their place on the bridge (the
 * bridge was made again, someone deleted a tap) are made and attached
 * again, owned by their user; LaunchVm gives a tap to its VM's jail uid
 * when the VM starts. */
gboolean
bg_network_repair_taps (BgNetwork  *network,
                        BgNlSock   *sk,
                        int         bridge_ifindex,
                        GError    **error)
{
  g_autoptr(GPtrArray) taps = bg_registry_list (network->registry, "tap");
  g_autoptr(GHashTable) links = NULL;

  if (taps->len == 0)
    return TRUE;
  links = bg_nl_links (sk, error);
  if (links == NULL)
    return FALSE;
  for (guint i = 0; i < taps->len; i++)
    {
      BgResource *t = taps->pdata[i];
      BgLinkInfo *info = g_hash_table_lookup (links, t->name);
      g_autoptr(BgNlLink) link = NULL;

      /* Orphans (recorded only to be cleaned up) are not made again. */
      if (t->state != BG_RESOURCE_READY || g_variant_lookup_value (t->details, "orphan", NULL) != NULL)
        continue;
      if (info != NULL && info->master == bridge_ifindex && info->up)
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
      if (!bg_nl_link_up (sk, link, bridge_ifindex, error))
        return FALSE;
    }
  return TRUE;
}

/* The tap goes, and its name with it (the entry is "deleting" now, so
 * the names file no longer lists it). */
static gboolean
release_tap (gpointer     self,
             BgResource  *resource,
             GError     **error)
{
  BgNetwork *network = self;
  g_autoptr(BgNlSock) sk = bg_nl_open (error);

  return sk != NULL && bg_nl_link_delete (sk, resource->name, error) &&
         bg_hosts_write (bg_daemon_get_run_dir (network->daemon), network->registry, error) &&
         bg_network_apply_ports (network, error);
}

/* The bridge's rules follow the taps: each ready tap may send only as
 * its VM, and (isolate-users) only to its owner's other taps. */
gboolean
bg_network_apply_ports (BgNetwork  *network,
                        GError    **error)
{
  g_autoptr(BgNetConfig) c = bg_net_config_load (bg_daemon_get_config_dir (network->daemon), error);
  g_autoptr(GPtrArray) taps = bg_registry_list (network->registry, "tap");
  g_autoptr(GArray) ports = g_array_new (FALSE, FALSE, sizeof (BgNftPort));

  if (c == NULL)
    return FALSE;
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

const BgResourceKind bg_tap_kind = {
  .kind = "tap",
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
  g_autoptr(GPtrArray) taps = bg_registry_list (registry, "tap");
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
  g_autoptr(GPtrArray) taps = bg_registry_list (registry, "tap");
  g_autofree char *tap = bg_net_tap_name (owner, vm_name);
  g_autofree char *mac = bg_net_guest_mac (owner, vm_name);
  GVariantBuilder b;
  BgResource *r;
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

  /* Ensuring also repairs the recorded taps, this one included. */
  s = bg_network_ensure (network, error);
  if (s == NULL)
    return NULL;
  r = bg_registry_lookup (registry, "tap", tap);
  if (r != NULL && r->state == BG_RESOURCE_READY && bg_resource_get_string (r, "address") != NULL)
    {
      *state = g_steal_pointer (&s);
      return r;
    }
  /* An adopted tap the registry lost track of, without its address: it
   * is made again, as new. */
  if (r != NULL && !bg_daemon_release_resource (network->daemon, r, error))
    return NULL;

  if (!bg_daemon_check_limit (network->daemon, owner, "tap", bg_daemon_get_limits (network->daemon)->taps, "taps",
                              error) ||
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

  r = bg_registry_add (registry, "tap", tap, owner, g_variant_builder_end (&b), error);
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
  if (!bg_nl_link_up (sk, link, rtnl_link_get_ifindex (bridge), error) ||
      !bg_registry_set_state (registry, r, BG_RESOURCE_READY, error) ||
      !bg_network_apply_ports (network, error) ||
      !bg_hosts_write (bg_daemon_get_run_dir (network->daemon), registry, error))
    goto rollback;
  *state = g_steal_pointer (&s);
  return r;

rollback:
  bg_nl_link_delete (sk, tap, NULL);
  bg_registry_remove (registry, r, NULL);
  bg_hosts_write (bg_daemon_get_run_dir (network->daemon), registry, NULL);
  bg_network_apply_ports (network, NULL);
  return NULL;
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
  g_autoptr(GPtrArray) vms = bg_registry_list (network->registry, "vm");
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
              bg_registry_lookup (network->registry, "tap", name) != NULL)
            continue;
          owner = tap_kernel_owner (name);
          for (guint i = 0; i < vms->len; i++)
            {
              BgResource *vm = vms->pdata[i];
              guint32 jail_uid;
              if (g_variant_lookup (vm->details, "uid", "u", &jail_uid) && jail_uid == owner)
                owner = vm->owner;
            }
          r = bg_registry_add (network->registry, "tap", name, owner,
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

