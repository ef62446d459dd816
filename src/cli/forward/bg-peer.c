/* bg-peer.c: the owner of the socket at the other end of a connection
 * made on this host, asked of the kernel's socket diagnostics
 * (NETLINK_SOCK_DIAG, what ss(8) shows as "uid:"), which any user may
 * query. A forward uses it to give every local user a share of what it
 * relays, so no one of them can starve the others or the VM's owner. */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>

#include "bg-fd.h"
#include "bg-peer.h"

/* Copies the address and port of @ss into a diag id's @addr and @port. */
static void
put_end (const struct sockaddr_storage *ss,
         __be32                         addr[4],
         __be16                        *port)
{
  if (ss->ss_family == AF_INET6)
    {
      const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) ss;
      memcpy (addr, &in6->sin6_addr, 16);
      *port = in6->sin6_port;
    }
  else
    {
      const struct sockaddr_in *in = (const struct sockaddr_in *) ss;
      addr[0] = in->sin_addr.s_addr;
      *port = in->sin_port;
    }
}

/* The uid owning the socket at @peer that talks to us at @local, over
 * @protocol (IPPROTO_TCP or IPPROTO_UDP); BG_PEER_UID_UNKNOWN when no
 * socket of this host is there (a remote peer) or the kernel cannot say. */
uid_t
bg_peer_find_uid (int                             protocol,
                  const struct sockaddr_storage  *peer,
                  const struct sockaddr_storage  *local)
{
  g_auto(BgFd) nl = socket (AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  struct {
    struct nlmsghdr         h;
    struct inet_diag_req_v2 r;
  } req = { 0 };
  union {
    struct nlmsghdr h;
    char            bytes[1024];
  } answer;
  struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
  const struct inet_diag_msg *msg;
  ssize_t n;

  if (nl < 0 || peer->ss_family != local->ss_family ||
      (peer->ss_family != AF_INET && peer->ss_family != AF_INET6))
    return BG_PEER_UID_UNKNOWN;
  req.h.nlmsg_len = sizeof req;
  req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  req.h.nlmsg_flags = NLM_F_REQUEST;
  req.r.sdiag_family = peer->ss_family;
  req.r.sdiag_protocol = protocol;
  req.r.idiag_states = ~0u;
  req.r.id.idiag_cookie[0] = req.r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
  /* The peer's socket is the one looked up: its own end is "src" for
   * TCP; UDP's lookup takes the two ends the other way round (the
   * kernel's udp_dump_one: "src and dst are swapped for historical
   * reasons"). */
  if (protocol == IPPROTO_TCP)
    {
      put_end (peer, req.r.id.idiag_src, &req.r.id.idiag_sport);
      put_end (local, req.r.id.idiag_dst, &req.r.id.idiag_dport);
    }
  else
    {
      put_end (peer, req.r.id.idiag_dst, &req.r.id.idiag_dport);
      put_end (local, req.r.id.idiag_src, &req.r.id.idiag_sport);
    }
  if (sendto (nl, &req, sizeof req, 0, (struct sockaddr *) &kernel, sizeof kernel) != sizeof req)
    return BG_PEER_UID_UNKNOWN;
  do
    n = recv (nl, &answer, sizeof answer, 0);
  while (n < 0 && errno == EINTR);
  /* One answer: the socket, or an error (ENOENT: not a socket here). */
  if (n < (ssize_t) NLMSG_LENGTH (sizeof *msg) || !NLMSG_OK (&answer.h, (size_t) n) ||
      answer.h.nlmsg_type != SOCK_DIAG_BY_FAMILY)
    return BG_PEER_UID_UNKNOWN;
  msg = NLMSG_DATA (&answer.h);
  return msg->idiag_uid;
}
