/* tap.c: persistent taps over /dev/net/tun, made for and re-owned to a
 * uid. What a tap means to banger (one per VM, its address, its place on
 * the bridge) is network.c's. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>

#include "bg-error.h"
#include "bg-fd.h"
#include "tap.h"


/* The flags Firecracker opens its tap with; TUNSETIFF on an existing
 * persistent tap attaches to it (for re-owning), with these same flags. */
static int
tap_open (const char  *name,
          GError     **error)
{
  struct ifreq ifr = { 0 };
  g_auto(BgFd) fd = open ("/dev/net/tun", O_RDWR | O_CLOEXEC);

  if (fd < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_NOT_SUPPORTED, "cannot open /dev/net/tun: %s", g_strerror (errno));
      return -1;
    }
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  g_strlcpy (ifr.ifr_name, name, IFNAMSIZ);
  if (ioctl (fd, TUNSETIFF, &ifr) < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot open tap %s: %s", name, g_strerror (errno));
      return -1;
    }
  return g_steal_fd (&fd);
}

gboolean
bg_tap_create (const char  *name,
               uid_t        owner,
               GError     **error)
{
  g_auto(BgFd) fd = tap_open (name, error);

  if (fd < 0)
    return FALSE;
  if (ioctl (fd, TUNSETOWNER, (unsigned long) owner) < 0 || ioctl (fd, TUNSETPERSIST, 1UL) < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot create tap %s: %s", name, g_strerror (errno));
      return FALSE;
    }
  return TRUE;
}

/* Re-owns a persistent tap: to a VM's jail uid while the VM runs (the
 * jailed VMM opens it itself), back to its owner afterwards. */
gboolean
bg_tap_set_owner (const char  *name,
                  uid_t        owner,
                  GError     **error)
{
  g_auto(BgFd) fd = tap_open (name, error);

  if (fd < 0)
    return FALSE;
  if (ioctl (fd, TUNSETOWNER, (unsigned long) owner) < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot re-own tap %s: %s", name, g_strerror (errno));
      return FALSE;
    }
  return TRUE;
}
