/* bg-netconf.c: the network's configuration and the names and addresses
 * derived from it.
 *
 * Callers choose nothing but their VM's name: the bridge, subnet and
 * uplink come from /etc/banger/network.conf, which only root writes;
 * tap names and MACs are derived here from the owner and the VM name, so
 * they are stable across restarts and reboots.
 */
#include <arpa/inet.h>
#include <linux/if.h>
#include <stdio.h>
#include <sys/random.h>

#include "bg-error.h"
#include "bg-names.h"
#include "bg-netconf.h"

#define DEFAULT_BRIDGE "banger0"
#define DEFAULT_DOMAIN "banger"

/* Interface names reach the kernel and nft; allow what `ip` would, minus
 * anything that could be mistaken for syntax. */
gboolean
bg_net_validate_ifname (const char  *field,
                        const char  *name,
                        GError     **error)
{
  gsize len = name ? strlen (name) : 0;
  gboolean ok = len > 0 && len < IFNAMSIZ && name[0] != '-';

  for (gsize i = 0; ok && i < len; i++)
    ok = g_ascii_isalnum (name[i]) || name[i] == '-' || name[i] == '_';
  if (!ok)
    {
      g_autofree char *shown = g_strescape (name ? name : "", NULL);
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                   "%s: \"%.32s\" is not a valid interface name (1 to 15 of a-z, A-Z, 0-9, '-', '_')",
                   field, shown);
    }
  return ok;
}

gboolean
bg_net_validate_tap_name (const char  *field,
                          const char  *name,
                          GError     **error)
{
  gsize len = name ? strlen (name) : 0;
  gboolean ok = len == strlen (BG_TAP_PREFIX) + 12 && g_str_has_prefix (name, BG_TAP_PREFIX);

  for (gsize i = strlen (BG_TAP_PREFIX); ok && i < len; i++)
    ok = g_ascii_isxdigit (name[i]) && !g_ascii_isupper (name[i]);
  if (!ok)
    {
      g_autofree char *shown = g_strescape (name ? name : "", NULL);
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                   "%s: \"%.32s\" is not a banger tap name (bg- and 12 hex digits)", field, shown);
    }
  return ok;
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
bg_net_tap_name (guint32     owner,
                 const char *vm_name)
{
  g_autofree char *d = digest (owner, vm_name, "tap");
  return g_strdup_printf (BG_TAP_PREFIX "%.12s", d);
}

/* A locally administered unicast MAC (02:...), stable for owner + name. */
char *
bg_net_guest_mac (guint32     owner,
                  const char *vm_name)
{
  g_autofree char *d = digest (owner, vm_name, "mac");
  return g_strdup_printf ("02:%.2s:%.2s:%.2s:%.2s:%.2s", d, d + 2, d + 4, d + 6, d + 8);
}

gboolean
bg_net_parse_subnet (const char  *text,
                     guint32     *network,
                     guint       *prefix,
                     GError     **error)
{
  g_auto(GStrv) parts = g_strsplit (text, "/", 2);
  guint32 addr;
  guint64 p;
  guint32 mask;

  if (g_strv_length (parts) != 2 || !bg_ip_parse (parts[0], &addr) ||
      !g_ascii_string_to_unsigned (parts[1], 10, 16, 28, &p, NULL))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                   "subnet: \"%s\" is not an IPv4 subnet with a prefix of 16 to 28, like 172.30.0.0/24",
                   text);
      return FALSE;
    }
  mask = 0xffffffffu << (32 - p);
  if ((addr & ~mask) != 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                   "subnet: \"%s\" has host bits set", text);
      return FALSE;
    }
  *network = addr;
  *prefix = p;
  return TRUE;
}

char *
bg_ip_format (guint32 host_order)
{
  struct in_addr a = { htonl (host_order) };
  char buf[INET_ADDRSTRLEN];

  return g_strdup (inet_ntop (AF_INET, &a, buf, sizeof buf));
}

gboolean
bg_ip_parse (const char *text,
             guint32    *host_order)
{
  struct in_addr a;

  if (text == NULL || inet_pton (AF_INET, text, &a) != 1)
    return FALSE;
  *host_order = ntohl (a.s_addr);
  return TRUE;
}

/* A /64 with no host bits, written with its prefix: subnet6= of
 * network.conf, and what the mechanism keeps of the one it chose. */
gboolean
bg_net_parse_subnet6 (const char  *text,
                      guint8       network[16],
                      GError     **error)
{
  g_auto(GStrv) parts = g_strsplit (text, "/", 2);
  guint8 a[16];

  if (g_strv_length (parts) != 2 || !bg_ip6_parse (parts[0], a) || !g_str_equal (parts[1], "64"))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                   "subnet6: \"%s\" is not an IPv6 /64 like fd12:3456:789a::/64 (or auto, or off)", text);
      return FALSE;
    }
  for (guint i = 8; i < 16; i++)
    if (a[i] != 0)
      {
        g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "subnet6: \"%s\" has host bits set", text);
        return FALSE;
      }
  memcpy (network, a, 16);
  return TRUE;
}

/* RFC 4193: fd00::/8, a random 40-bit global ID, subnet ID 0. */
void
bg_net_ula_random (guint8 network[16])
{
  memset (network, 0, 16);
  network[0] = 0xfd;
  if (getrandom (network + 1, 5, 0) != 5)
    for (guint i = 1; i < 6; i++)
      network[i] = g_random_int_range (0, 256);
}

char *
bg_ip6_format (const guint8 address[16])
{
  char buf[INET6_ADDRSTRLEN];

  return g_strdup (inet_ntop (AF_INET6, address, buf, sizeof buf));
}

gboolean
bg_ip6_parse (const char *text,
              guint8      address[16])
{
  return text != NULL && inet_pton (AF_INET6, text, address) == 1;
}

/* The address @host of the /64: a VM's is its IPv4 address's offset in
 * the IPv4 subnet, so the two stay paired (.1 and ::1 the bridge's). */
char *
bg_net_ip6_host (const guint8 network[16],
                 guint32      host)
{
  guint8 a[16];
  guint32 be = htonl (host);

  memcpy (a, network, 8);
  memset (a + 8, 0, 4);
  memcpy (a + 12, &be, 4);
  return bg_ip6_format (a);
}

/* fe80::/64 with the MAC's modified EUI-64 (RFC 4291, appendix A): the
 * link-local address a guest's kernel makes unless told otherwise. */
char *
bg_net_link_local (const char *mac)
{
  guint8 m[6], a[16] = { 0xfe, 0x80 };

  if (mac == NULL || sscanf (mac, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6)
    return NULL;
  a[8] = m[0] ^ 0x02;
  a[9] = m[1];
  a[10] = m[2];
  a[11] = 0xff;
  a[12] = 0xfe;
  a[13] = m[3];
  a[14] = m[4];
  a[15] = m[5];
  return bg_ip6_format (a);
}

void
bg_net_config_free (BgNetConfig *c)
{
  if (c == NULL)
    return;
  g_free (c->path);
  g_free (c->bridge);
  g_free (c->domain);
  g_free (c->uplink);
  g_strfreev (c->dns);
  g_free (c);
}

static char *
get_value (GKeyFile   *kf,
           const char *key)
{
  char *value = g_key_file_get_string (kf, "network", key, NULL);
  return g_strstrip (value ? value : g_strdup (""));
}

/* Every failure names the file and the key. */
BgNetConfig *
bg_net_config_load (const char  *config_dir,
                    GError     **error)
{
  g_autoptr(BgNetConfig) c = g_new0 (BgNetConfig, 1);
  g_autoptr(GKeyFile) kf = g_key_file_new ();
  g_autoptr(GError) local = NULL;
  g_autofree char *subnet = NULL;
  g_autofree char *dns = NULL;
  g_autofree char *isolate = NULL;
  g_autofree char *subnet6 = NULL;

  c->path = g_build_filename (config_dir, "network.conf", NULL);
  if (!g_key_file_load_from_file (kf, c->path, G_KEY_FILE_NONE, &local) &&
      !g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "%s: %s", c->path, local->message);
      return NULL;
    }

  c->bridge = get_value (kf, "bridge");
  subnet = get_value (kf, "subnet");
  c->domain = get_value (kf, "domain");
  c->uplink = get_value (kf, "uplink");
  dns = get_value (kf, "dns");
  isolate = get_value (kf, "isolate-users");
  subnet6 = get_value (kf, "subnet6");

  if (*c->bridge == '\0')
    g_free (c->bridge), c->bridge = g_strdup (DEFAULT_BRIDGE);
  if (!bg_net_validate_ifname ("bridge", c->bridge, error))
    {
      g_prefix_error (error, "%s: ", c->path);
      return NULL;
    }
  if (g_str_has_prefix (c->bridge, BG_TAP_PREFIX))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "%s: bridge must not start with " BG_TAP_PREFIX, c->path);
      return NULL;
    }

  if (*subnet == '\0' || g_str_equal (subnet, "auto"))
    c->subnet_auto = TRUE;
  else if (!bg_net_parse_subnet (subnet, &c->subnet, &c->prefix, error))
    {
      g_prefix_error (error, "%s: ", c->path);
      return NULL;
    }

  if (*c->domain == '\0')
    g_free (c->domain), c->domain = g_strdup (DEFAULT_DOMAIN);
  if (!bg_name_is_valid (c->domain))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED,
                   "%s: domain: \"%s\" must be one DNS label (%s)", c->path, c->domain, BG_NAME_RULE);
      return NULL;
    }

  if (*c->uplink == '\0' || g_str_equal (c->uplink, "auto"))
    g_clear_pointer (&c->uplink, g_free);
  else if (!bg_net_validate_ifname ("uplink", c->uplink, error))
    {
      g_prefix_error (error, "%s: ", c->path);
      return NULL;
    }

  if (*dns != '\0' && !g_str_equal (dns, "auto"))
    {
      c->dns = g_strsplit_set (dns, ";, ", -1);
      for (guint i = 0; c->dns[i]; i++)
        {
          guint32 ip;
          if (*c->dns[i] != '\0' && !bg_ip_parse (c->dns[i], &ip))
            {
              g_set_error (error, BG_ERROR, BG_ERROR_FAILED,
                           "%s: dns: \"%s\" is not an IPv4 address", c->path, c->dns[i]);
              return NULL;
            }
        }
    }

  if (*isolate == '\0' || g_str_equal (isolate, "true") || g_str_equal (isolate, "yes"))
    c->isolate = TRUE;
  else if (g_str_equal (isolate, "false") || g_str_equal (isolate, "no"))
    c->isolate = FALSE;
  else
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "%s: isolate-users: \"%s\" is not true or false", c->path,
                   isolate);
      return NULL;
    }

  if (*subnet6 == '\0' || g_str_equal (subnet6, "auto"))
    c->subnet6_auto = TRUE;
  else if (g_str_equal (subnet6, "off"))
    c->ipv6_off = TRUE;
  else if (!bg_net_parse_subnet6 (subnet6, c->subnet6, error))
    {
      g_prefix_error (error, "%s: ", c->path);
      return NULL;
    }

  return g_steal_pointer (&c);
}

/* Name servers a guest can use: the configured ones, else the host's
 * from the first of @resolv_files (NULL: /etc/resolv.conf, then
 * systemd-resolved's upstream list) that names any, minus loopback ones
 * (a stub resolver on 127.0.0.53 is unreachable from a VM). */
char **
bg_net_config_guest_dns (BgNetConfig        *c,
                         const char * const *resolv_files)
{
  static const char * const defaults[] = {
    "/etc/resolv.conf", "/run/systemd/resolve/resolv.conf", NULL
  };
  g_autoptr(GStrvBuilder) servers = g_strv_builder_new ();
  guint n = 0;

  if (resolv_files == NULL)
    resolv_files = defaults;

  if (c->dns != NULL)
    {
      for (guint i = 0; c->dns[i]; i++)
        if (*c->dns[i])
          g_strv_builder_add (servers, c->dns[i]);
      return g_strv_builder_end (servers);
    }
  for (guint f = 0; resolv_files[f] != NULL && n == 0; f++)
    {
      g_autofree char *text = NULL;
      g_auto(GStrv) lines = NULL;

      if (!g_file_get_contents (resolv_files[f], &text, NULL, NULL))
        continue;
      lines = g_strsplit (text, "\n", -1);
      for (guint i = 0; lines[i] && n < 3; i++)
        {
          g_auto(GStrv) words = g_strsplit_set (g_strstrip (lines[i]), " \t", -1);
          guint32 ip;

          if (g_strv_length (words) >= 2 && g_str_equal (words[0], "nameserver") &&
              bg_ip_parse (words[1], &ip) && (ip >> 24) != 127)
            {
              g_strv_builder_add (servers, words[1]);
              n++;
            }
        }
    }
  return g_strv_builder_end (servers);
}
