/* bg-vm-network.c: the network a new VM will get, guessed so that
 * LaunchVm alone can make its tap: one privileged call (one polkit
 * check, one round trip), not CreateTap and then LaunchVm.
 *
 * The guess is the network banger last learned from the mechanism (kept
 * in $XDG_CACHE_HOME/banger/network, a cache: written when it changes,
 * never synced, deleted at will) or, without it, that of the record last
 * written with one; and the lowest address of its subnet that no VM of
 * this user's holds, which is what the mechanism gives (the lowest free
 * one, or the one asked for while it is free) unless another user's VM
 * holds it. The MAC is derived from the user and the VM's name, as the
 * mechanism derives it (and the tap's name, which the caller has set).
 *
 * A wrong guess costs time, never correctness: LaunchVm answers with the
 * network it made, and bg_vm_launch writes the config drive and the
 * pinned key again and launches again when it differs (another user's VM
 * on the address; a new subnet after a reboot or a change of
 * network.conf). No guess at all (the first VM): CreateTap says.
 */
#include <string.h>
#include <unistd.h>

#include "bg-netconf.h"
#include "bg-paths.h"
#include "bg-vm-launch.h"
#include "bg-vm-network.h"

#define GROUP "network"

/* The subnet-wide part of a VM's network: what every VM on it shares. */
typedef struct {
  char    *gateway;
  guint    prefix;
  char    *domain;
  char   **dns;
  char    *gateway6;
  char    *subnet6;     /* an address of the /64; NULL: no IPv6 */
} Hint;

static void
hint_clear (Hint *h)
{
  g_free (h->gateway);
  g_free (h->domain);
  g_strfreev (h->dns);
  g_free (h->gateway6);
  g_free (h->subnet6);
  memset (h, 0, sizeof *h);
}

static char *
hint_path (void)
{
  g_autofree char *cache = bg_paths_cache_dir ();

  return g_build_filename (cache, "network", NULL);
}

static gboolean
hint_valid (const Hint *h)
{
  guint32 ip;

  return h->prefix >= 8 && h->prefix <= 30 && bg_ip_parse (h->gateway, &ip);
}

static gboolean
hint_load (Hint *h)
{
  g_autofree char *path = hint_path ();
  g_autoptr(GKeyFile) kf = g_key_file_new ();

  memset (h, 0, sizeof *h);
  if (!g_key_file_load_from_file (kf, path, G_KEY_FILE_NONE, NULL))
    return FALSE;
  h->gateway = g_key_file_get_string (kf, GROUP, "gateway", NULL);
  h->prefix = (guint) g_key_file_get_uint64 (kf, GROUP, "prefix", NULL);
  h->domain = g_key_file_get_string (kf, GROUP, "domain", NULL);
  h->dns = g_key_file_get_string_list (kf, GROUP, "dns", NULL, NULL);
  h->gateway6 = g_key_file_get_string (kf, GROUP, "gateway6", NULL);
  h->subnet6 = g_key_file_get_string (kf, GROUP, "subnet6", NULL);
  if (hint_valid (h))
    return TRUE;
  hint_clear (h);
  return FALSE;
}

static void
hint_from_record (Hint             *h,
                  const BgVmRecord *r)
{
  h->gateway = g_strdup (r->gateway);
  h->prefix = r->prefix;
  h->domain = g_strdup (r->domain);
  h->dns = g_strdupv (r->dns);
  h->gateway6 = g_strdup (r->address6 ? r->gateway6 : NULL);
  h->subnet6 = g_strdup (r->gateway6 ? r->address6 : NULL);
}

static gboolean
hint_equal (const Hint *a,
            const Hint *b)
{
  return g_strcmp0 (a->gateway, b->gateway) == 0 && a->prefix == b->prefix &&
         g_strcmp0 (a->domain, b->domain) == 0 && g_strcmp0 (a->gateway6, b->gateway6) == 0 &&
         g_strcmp0 (a->subnet6, b->subnet6) == 0 &&
         g_strv_equal ((const char * const *) (a->dns ? a->dns : (char *[]) { NULL }),
                       (const char * const *) (b->dns ? b->dns : (char *[]) { NULL }));
}

/* After a launch: the network @r got, for the next VM's guess. Written
 * only when it differs from what the cache holds. */
void
bg_vm_network_remember (BgVmRecord *r)
{
  g_autofree char *path = hint_path ();
  g_autofree char *dir = g_path_get_dirname (path);
  g_autoptr(GKeyFile) kf = NULL;
  g_autofree char *text = NULL;
  Hint now = { 0 }, cached;
  gsize len;

  hint_from_record (&now, r);
  if (!hint_valid (&now))
    {
      hint_clear (&now);
      return;
    }
  if (hint_load (&cached))
    {
      gboolean same = hint_equal (&now, &cached);

      hint_clear (&cached);
      if (same)
        {
          hint_clear (&now);
          return;
        }
    }
  kf = g_key_file_new ();
  g_key_file_set_string (kf, GROUP, "gateway", now.gateway);
  g_key_file_set_uint64 (kf, GROUP, "prefix", now.prefix);
  if (now.domain)
    g_key_file_set_string (kf, GROUP, "domain", now.domain);
  g_key_file_set_string_list (kf, GROUP, "dns", (const char * const *) (now.dns ? now.dns : (char *[]) { NULL }),
                              now.dns ? g_strv_length (now.dns) : 0);
  if (now.gateway6 && now.subnet6)
    {
      g_key_file_set_string (kf, GROUP, "gateway6", now.gateway6);
      g_key_file_set_string (kf, GROUP, "subnet6", now.subnet6);
    }
  hint_clear (&now);
  text = g_key_file_to_data (kf, &len, NULL);
  /* A cache: a failure, or a power loss that empties it, only costs the
   * next VM its guess. */
  if (g_mkdir_with_parents (dir, 0700) == 0)
    g_file_set_contents_full (path, text, len, G_FILE_SET_CONTENTS_NONE, 0600, NULL);
}

/* Fills @r's network (its tap already named) with the guess; FALSE (and
 * @r untouched) when there is nothing to guess from. */
gboolean
bg_vm_network_guess (BgStateStore *store,
                     BgVmRecord   *r)
{
  g_autoptr(GPtrArray) records = bg_state_store_list (store, NULL, NULL);
  g_autoptr(GHashTable) used = g_hash_table_new (NULL, NULL);
  g_autofree char *mac = bg_net_guest_mac (getuid (), r->name);
  g_autoptr(GVariant) info = NULL;
  BgVmRecord *newest = NULL;
  guint32 ip, net, last, gateway;
  GVariantDict d;
  Hint h;

  if (records == NULL)
    return FALSE;
  for (guint i = 0; i < records->len; i++)
    {
      BgVmRecord *o = records->pdata[i];
      Hint oh = { .gateway = o->gateway, .prefix = o->prefix };

      if (g_str_equal (o->name, r->name) || !bg_ip_parse (o->address, &ip))
        continue;
      g_hash_table_add (used, GUINT_TO_POINTER (ip));
      if (hint_valid (&oh) && (newest == NULL || o->updated_at > newest->updated_at))
        newest = o;
    }
  if (!hint_load (&h))
    {
      if (newest == NULL)
        return FALSE;
      hint_from_record (&h, newest);
    }

  bg_ip_parse (h.gateway, &gateway);
  net = gateway & (0xffffffffu << (32 - h.prefix));
  last = net + (1u << (32 - h.prefix)) - 2;
  g_hash_table_add (used, GUINT_TO_POINTER (gateway));
  for (ip = net + 2; ip <= last && g_hash_table_contains (used, GUINT_TO_POINTER (ip)); ip++)
    ;
  if (ip > last)
    {
      hint_clear (&h);
      return FALSE;
    }

  g_variant_dict_init (&d, NULL);
  g_variant_dict_insert_value (&d, "address", g_variant_new_take_string (bg_ip_format (ip)));
  g_variant_dict_insert (&d, "gateway", "s", h.gateway);
  g_variant_dict_insert (&d, "prefix", "u", h.prefix);
  g_variant_dict_insert (&d, "mac", "s", mac);
  if (h.domain != NULL)
    g_variant_dict_insert (&d, "domain", "s", h.domain);
  g_variant_dict_insert_value (&d, "dns", g_variant_new_strv ((const char * const *) h.dns, h.dns ? -1 : 0));
  if (h.subnet6 != NULL && h.gateway6 != NULL)
    {
      guint8 net6[16];

      if (bg_ip6_parse (h.subnet6, net6))
        {
          memset (net6 + 8, 0, 8);
          g_variant_dict_insert_value (&d, "address6", g_variant_new_take_string (bg_net_ip6_host (net6, ip - net)));
          g_variant_dict_insert (&d, "gateway6", "s", h.gateway6);
        }
    }
  info = g_variant_ref_sink (g_variant_dict_end (&d));
  hint_clear (&h);
  bg_vm_take_network (r, info);
  return TRUE;
}
