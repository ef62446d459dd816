/* ipv6.c: IPv6 forwarding and the /64 of the VMs.
 *
 * The kernel takes IPv6 device settings over netlink only for a token
 * and the address generation mode, so forwarding and accept_ra are
 * written under /proc/sys/net/ipv6/conf (fixed paths, never a caller's).
 * IPv6 forwards only when conf/all/forwarding is on; turning that on
 * makes every interface a router, which stops it taking router
 * advertisements (accept_ra=1 means "unless forwarding") and purges the
 * default routes they gave. An uplink that takes its address and route
 * from RAs is set to accept_ra=2 first, so the host keeps its own IPv6.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "bg-error.h"
#include "bg-fd.h"
#include "bg-file.h"
#include "ipv6.h"

#define CONF_DIR "/proc/sys/net/ipv6/conf"
#define PREFIX_FILE "subnet6"

static char *
conf_read (const char *ifname,
           const char *key)
{
  g_autofree char *path = g_build_filename (CONF_DIR, ifname, key, NULL);
  char *text = NULL;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return NULL;
  return g_strstrip (text);
}

static gboolean
conf_write (const char  *ifname,
            const char  *key,
            const char  *value,
            GError     **error)
{
  g_autofree char *path = g_build_filename (CONF_DIR, ifname, key, NULL);
  g_auto(BgFd) fd = open (path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);

  if (fd < 0 || write (fd, value, strlen (value)) != (gssize) strlen (value))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot set net.ipv6.conf.%s.%s to %s: %s", ifname, key,
                   value, g_strerror (errno));
      return FALSE;
    }
  return TRUE;
}

/* IPv6 works on @ifname ("default" for links yet to be made): the
 * kernel has it, and disable_ipv6 is off there. */
gboolean
bg_ipv6_link_enabled (const char *ifname)
{
  g_autofree char *all = conf_read ("all", "disable_ipv6");
  g_autofree char *link = conf_read (ifname, "disable_ipv6");

  return all != NULL && link != NULL && g_str_equal (all, "0") && g_str_equal (link, "0");
}

/* IPv6 on or off on @ifname (disable_ipv6), written only when it
 * differs. A kernel without IPv6 has no such file and nothing to turn
 * off: that is not an error. */
gboolean
bg_ipv6_set_link (const char  *ifname,
                  gboolean     on,
                  GError     **error)
{
  g_autofree char *now = conf_read (ifname, "disable_ipv6");
  const char *want = on ? "0" : "1";

  if (now == NULL || g_str_equal (now, want))
    return TRUE;
  return conf_write (ifname, "disable_ipv6", want, error);
}

/* A bridge port carries frames, not the host's own IPv6: with IPv6 off
 * there the host has no address on the port and sends nothing out of it
 * (the kernel discards it), so no local user reaches a VM's link-local
 * services by sending straight out its port (to ff02::1%bg-…), also
 * where no `ip6 banger` output chain drops that (subnet6=off).
 * Bridging, the bridge's guards and MLD snooping are unaffected. */
gboolean
bg_ipv6_port_off (const char  *port,
                  GError     **error)
{
  return bg_ipv6_set_link (port, FALSE, error);
}

/* As bg_ipv6_load_prefix, without choosing one: FALSE if none was. */
gboolean
bg_ipv6_peek_prefix (BgNetConfig  *config,
                     const char   *state_dir,
                     guint8        network[16])
{
  g_autofree char *path = g_build_filename (state_dir, PREFIX_FILE, NULL);
  g_autofree char *text = NULL;

  if (!config->subnet6_auto)
    {
      memcpy (network, config->subnet6, 16);
      return TRUE;
    }
  return g_file_get_contents (path, &text, NULL, NULL) && bg_net_parse_subnet6 (g_strstrip (text), network, NULL);
}

/* The /64 of network.conf, or the ULA chosen once for this host and
 * kept in the mechanism's state directory (a reboot keeps it, so VMs
 * keep their addresses). */
gboolean
bg_ipv6_load_prefix (BgNetConfig  *config,
                     const char   *state_dir,
                     guint8        network[16],
                     GError      **error)
{
  g_autofree char *path = g_build_filename (state_dir, PREFIX_FILE, NULL);
  g_autofree char *text = NULL, *chosen = NULL, *line = NULL;

  if (!config->subnet6_auto)
    {
      memcpy (network, config->subnet6, 16);
      return TRUE;
    }
  if (g_file_get_contents (path, &text, NULL, NULL) && bg_net_parse_subnet6 (g_strstrip (text), network, NULL))
    return TRUE;
  if (text != NULL)
    g_warning ("%s does not hold an IPv6 /64; choosing a new one", path);
  bg_net_ula_random (network);
  chosen = bg_ip6_format (network);
  line = g_strdup_printf ("%s/64\n", chosen);
  if (g_mkdir_with_parents (state_dir, 0700) < 0 || !bg_file_replace (path, line, -1, 0644, error))
    {
      if (error != NULL && *error == NULL)
        g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot create %s: %s", state_dir, g_strerror (errno));
      return FALSE;
    }
  g_message ("Chose %s/64 as the VMs' IPv6 subnet", chosen);
  return TRUE;
}

/* Why the VMs have no IPv6 here (@ifname: the bridge, or "default"
 * before it exists), or NULL when they have it. */
char *
bg_ipv6_off_reason (BgNetConfig *c,
                    const char  *ifname)
{
  if (c->ipv6_off)
    return g_strdup_printf ("subnet6=off in %s", c->path);
  if (!bg_ipv6_link_enabled (ifname))
    return g_strdup ("IPv6 is disabled on this host (net.ipv6.conf.*.disable_ipv6=1, or no IPv6 in the kernel)");
  return NULL;
}

static gboolean
forwarding_on (void)
{
  g_autofree char *on = conf_read ("all", "forwarding");
  return g_strcmp0 (on, "1") == 0;
}

/* Forwarding on, the uplink still taking RAs if it took them. Only
 * writes what is not already so. */
gboolean
bg_ipv6_enable_forwarding (const char  *uplink,
                           GError     **error)
{
  if (uplink != NULL && bg_ipv6_link_enabled (uplink))
    {
      g_autofree char *accept_ra = conf_read (uplink, "accept_ra");
      if (g_strcmp0 (accept_ra, "1") == 0 && !conf_write (uplink, "accept_ra", "2", error))
        return FALSE;
    }
  if (forwarding_on ())
    return TRUE;
  return conf_write ("all", "forwarding", "1", error);
}
