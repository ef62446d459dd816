/* netns.c: a network namespace of a VMM's own, holding its tap.
 *
 * Abstract unix sockets (X11's @/tmp/.X11-unix/X0, D-Bus's, systemd's)
 * are per network namespace. Where the kernel has no Landlock scopes
 * (before Linux 6.12) a VMM in the host's namespace could connect to
 * every one of them, so it gets a namespace of its own, as Firecracker's
 * jailer gives it with --netns:
 *
 *   host:      bridge ── <tap name> (veth)          guards keyed by name
 *                              │
 *   VMM's ns:            host0 (veth) ── br0 ── <tap name> (tap, jail uid)
 *
 * The veth's host end takes the tap's name, so the bridge's per-port
 * guards (nft sets keyed by port name), the names file and the tap's
 * record apply to it unchanged; inside, the VM's tap of the same name
 * (Firecracker opens it by name, which TUNSETIFF looks up in the
 * opener's namespace) and the veth's peer are the two ports of a bridge
 * with no address of its own, so frames pass unchanged. The namespace
 * has no name and no path: the mechanism holds it by a descriptor until
 * the jail's child has joined it, then only the VMM does, and it goes
 * with the VMM. What remains on the host is the veth, which
 * bg_netns_restore_tap turns back into the VM's tap when the VM ends.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>
#include <linux/if.h>
#include <linux/if_link.h>

#include "bg-error.h"
#include "bg-fd.h"
#include "ipv6.h"
#include "netlink.h"

#include <netlink/route/link/inet6.h>
#include <netlink/route/link/veth.h>
#include "netns.h"
#include "tap.h"

typedef struct {
  const char *tap;
  uid_t       jail_uid;
  int         netns_fd;
  BgNlSock   *sk;       /* a netlink socket of the new namespace */
  GError     *error;
} NewNs;

/* In a thread of its own: unshare(CLONE_NEWNET) changes only the calling
 * thread's namespace, and the thread ends right after. What it opens
 * there (the namespace's descriptor, a netlink socket, the tap's tun
 * descriptor) stays in that namespace. */
static gpointer
new_ns_thread (gpointer data)
{
  NewNs *n = data;

  if (unshare (CLONE_NEWNET) < 0)
    {
      bg_error_errno (&n->error, errno, "cannot make", "a network namespace for the VMM");
      return NULL;
    }
  n->netns_fd = open ("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (n->netns_fd < 0)
    {
      bg_error_errno (&n->error, errno, "cannot hold", "the VMM's network namespace");
      return NULL;
    }
  if ((n->sk = bg_nl_open (&n->error)) == NULL)
    return NULL;
  if (n->tap != NULL && !bg_tap_create (n->tap, n->jail_uid, &n->error))
    return NULL;
  return NULL;
}

static gboolean
set_up (BgNlSock    *sk,
        const char  *name,
        int          master,
        gboolean     no_ipv6,
        GError     **error)
{
  g_autoptr(BgNlLink) link = bg_nl_link_get (sk, name);

  if (link == NULL)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "%s is missing in the VMM's network namespace", name);
      return FALSE;
    }
  if (no_ipv6)
    {
      /* No link-local address, so it sends nothing of its own (duplicate
       * address detection, router solicitations) towards the bridge,
       * whose guards would drop it anyway. A kernel without IPv6 (booted
       * with ipv6.disable=1) refuses the setting and needs none. */
      g_autoptr(BgNlLink) change = rtnl_link_alloc ();
      int err;

      if ((err = rtnl_link_inet6_set_addr_gen_mode (change, IN6_ADDR_GEN_MODE_NONE)) < 0 ||
          (err = rtnl_link_change (sk, link, change, 0)) < 0)
        g_debug ("%s in the VMM's namespace keeps its IPv6 link-local address: %s", name, nl_geterror (err));
    }
  return bg_nl_link_up (sk, link, master, error);
}

/* A namespace for a VMM, with the tap @tap (the jail uid's) in it tied to
 * @bridge on the host through a veth of the tap's name, which replaces
 * the host's tap of that name. Returns the namespace's descriptor, or -1.
 * On failure the host's tap is as it was, or gone (then the caller's
 * undo makes it again). */
int
bg_netns_new_with_tap (const char  *tap,
                       const char  *bridge,
                       uid_t        jail_uid,
                       GError     **error)
{
  NewNs n = { tap, jail_uid, -1, NULL, NULL };
  g_autoptr(BgNlSock) host = NULL;
  g_autoptr(BgNlSock) inner = NULL;
  g_autoptr(BgNlLink) br = NULL;
  g_autoptr(BgNlLink) end = NULL;
  g_auto(BgFd) ns = -1;
  struct rtnl_link *veth, *peer;
  int err;

  g_thread_join (g_thread_new ("netns", new_ns_thread, &n));
  ns = n.netns_fd;
  inner = n.sk;
  if (n.error != NULL)
    {
      g_propagate_error (error, n.error);
      return -1;
    }
  if ((host = bg_nl_open (error)) == NULL)
    return -1;
  if ((br = bg_nl_link_get (host, bridge)) == NULL)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "bridge %s is gone", bridge);
      return -1;
    }

  /* The host's tap gives its name (and so its guards) to the veth. */
  if (!bg_nl_link_delete (host, tap, error))
    return -1;
  veth = rtnl_link_veth_alloc ();
  peer = rtnl_link_veth_get_peer (veth);
  rtnl_link_set_name (veth, tap);
  rtnl_link_set_name (peer, BG_NETNS_PEER);
  rtnl_link_set_ns_fd (peer, ns);
  err = rtnl_link_add (host, veth, NLM_F_CREATE | NLM_F_EXCL);
  rtnl_link_put (peer);
  rtnl_link_veth_release (veth);
  if (err < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot make the veth %s for the VMM: %s", tap,
                   nl_geterror (err));
      return -1;
    }

  /* Inside first, then the host's end onto the bridge, where its guards
   * already name it. */
  if (!bg_nl_bridge_add (inner, BG_NETNS_BRIDGE, error) ||
      !set_up (inner, BG_NETNS_BRIDGE, 0, TRUE, error))
    goto fail;
  {
    g_autoptr(BgNlLink) inner_br = bg_nl_link_get (inner, BG_NETNS_BRIDGE);
    int master = inner_br ? rtnl_link_get_ifindex (inner_br) : 0;

    if (!set_up (inner, BG_NETNS_PEER, master, TRUE, error) || !set_up (inner, tap, master, FALSE, error))
      goto fail;
  }
  if ((end = bg_nl_link_get (host, tap)) == NULL)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "the veth %s vanished after creation", tap);
      goto fail;
    }
  if (!bg_ipv6_port_off (tap, error) || !bg_nl_link_up (host, end, rtnl_link_get_ifindex (br), error))
    goto fail;
  return g_steal_fd (&ns);

fail:
  bg_nl_link_delete (host, tap, NULL);
  return -1;
}

/* After the VM: its veth goes (and the peer with it; the namespace went
 * with the VMM), and, if @recorded (the tap's record still stands), the
 * tap is the owner's again on @bridge, as CreateTap left it. A tap still
 * in place is only given back. Tolerates every part being gone already,
 * the bridge included. */
gboolean
bg_netns_restore_tap (const char  *tap,
                      const char  *bridge,
                      uid_t        owner,
                      gboolean     recorded,
                      GError     **error)
{
  g_autoptr(BgNlSock) sk = bg_nl_open (error);
  g_autoptr(BgNlLink) link = NULL;
  g_autoptr(BgNlLink) br = NULL;

  if (sk == NULL)
    return FALSE;
  link = bg_nl_link_get (sk, tap);
  if (link != NULL && g_strcmp0 (rtnl_link_get_type (link), "veth") != 0)
    return bg_tap_set_owner (tap, owner, error);
  if (link != NULL && !bg_nl_link_delete (sk, tap, error))
    return FALSE;
  g_clear_pointer (&link, bg_nl_link_unref);
  if (!recorded)
    return TRUE;
  if (!bg_tap_create (tap, owner, error))
    return FALSE;
  br = bridge ? bg_nl_link_get (sk, bridge) : NULL;
  if (br == NULL)
    return TRUE;   /* the next ensure attaches it (repair_taps) */
  link = bg_nl_link_get (sk, tap);
  return link != NULL && bg_ipv6_port_off (tap, error) &&
         bg_nl_link_up (sk, link, rtnl_link_get_ifindex (br), error);
}
