/* bg-test-net: network probes for the netns tests.
 *
 *   bg-test-net serve PORT          accept one TCP connection, send back the
 *                                   peer's address, exit ("listening" first)
 *   bg-test-net serve6 PORT         the same over IPv6
 *   bg-test-net connect IP PORT     connect (IPv4 or IPv6, a link-local
 *                                   one as fe80::N%IFNAME), print what the
 *                                   server sent
 *   bg-test-net echo PORT           a stand-in guest's services: TCP echo
 *                                   (until the peer's EOF, then close) and
 *                                   UDP echo on PORT, TCP that resets every
 *                                   connection on PORT+1; forever, "ready"
 *                                   on stdout once all listen
 *   bg-test-net open-tap USER NODE TAP
 *                                   as USER, open the tun device node NODE
 *                                   and attach to TAP; print OK or the error
 *   bg-test-net send-out IFNAME SRC DST PORT TAG
 *                                   one UDP datagram "BGTAG"+TAG (a byte)
 *                                   from SRC to DST:PORT (IPv4 or IPv6),
 *                                   broadcast allowed, sent straight out
 *                                   IFNAME (IP_PKTINFO/IPV6_PKTINFO); print
 *                                   "sent" or the error
 *   bg-test-net udp-flow IP PORT    one connected UDP socket: each line read
 *                                   on stdin is sent, and the answer (or the
 *                                   error) printed, until EOF
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <grp.h>
#include <net/if.h>  /* before linux/if.h, which then defers to it */
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static int
serve (int port)
{
  struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons (port) };
  struct sockaddr_in peer;
  socklen_t len = sizeof peer;
  char text[64];
  int one = 1;
  int s = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int c;

  setsockopt (s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind (s, (struct sockaddr *) &addr, sizeof addr) < 0 || listen (s, 1) < 0)
    {
      perror ("bind");
      return 1;
    }
  printf ("listening\n");
  fflush (stdout);
  c = accept (s, (struct sockaddr *) &peer, &len);
  if (c < 0)
    return 1;
  snprintf (text, sizeof text, "%s\n", inet_ntoa (peer.sin_addr));
  if (write (c, text, strlen (text)) < 0)
    return 1;
  close (c);
  return 0;
}

static int
serve6 (int port)
{
  struct sockaddr_in6 addr = { .sin6_family = AF_INET6, .sin6_port = htons (port) };
  struct sockaddr_in6 peer;
  socklen_t len = sizeof peer;
  char text[INET6_ADDRSTRLEN + 1];
  int one = 1;
  int s = socket (AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int c;

  setsockopt (s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind (s, (struct sockaddr *) &addr, sizeof addr) < 0 || listen (s, 1) < 0)
    {
      perror ("bind");
      return 1;
    }
  printf ("listening\n");
  fflush (stdout);
  c = accept (s, (struct sockaddr *) &peer, &len);
  if (c < 0)
    return 1;
  inet_ntop (AF_INET6, &peer.sin6_addr, text, sizeof text - 1);
  strcat (text, "\n");
  if (write (c, text, strlen (text)) < 0)
    return 1;
  close (c);
  return 0;
}

static int
connect_to (const char *ip, const char *port)
{
  struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM };
  struct addrinfo *ai = NULL;
  struct timeval tv = { 10, 0 };
  char buf[64] = { 0 };
  int s, err;

  /* Numeric only: the scope of a link-local address (%IFNAME) is
   * understood here, and no name is ever looked up. */
  if ((err = getaddrinfo (ip, port, &hints, &ai)) != 0)
    {
      printf ("bad address %s: %s\n", ip, gai_strerror (err));
      return 1;
    }
  s = socket (ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  setsockopt (s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt (s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (connect (s, ai->ai_addr, ai->ai_addrlen) < 0)
    {
      printf ("connect failed: %s\n", strerror (errno));
      freeaddrinfo (ai);
      return 1;
    }
  freeaddrinfo (ai);
  if (read (s, buf, sizeof buf - 1) <= 0)
    return 1;
  printf ("%s", buf);
  return 0;
}

static int
open_tap (const char *user, const char *node, const char *tap)
{
  struct passwd *pw = getpwnam (user);
  struct ifreq ifr = { 0 };
  int fd;

  if (pw == NULL || initgroups (user, pw->pw_gid) < 0 || setresgid (pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
      setresuid (pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0)
    {
      printf ("cannot become %s\n", user);
      return 1;
    }
  fd = open (node, O_RDWR | O_CLOEXEC);
  if (fd < 0)
    {
      printf ("open: %s\n", strerror (errno));
      return 0;
    }
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  strncpy (ifr.ifr_name, tap, IFNAMSIZ - 1);
  if (ioctl (fd, TUNSETIFF, &ifr) < 0)
    printf ("TUNSETIFF: %s\n", strerror (errno));
  else
    printf ("OK\n");
  close (fd);
  return 0;
}

static int
send_out (const char *ifname, const char *src, const char *dst, const char *port, const char *tag)
{
  struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV, .ai_socktype = SOCK_DGRAM };
  struct addrinfo *from = NULL, *to = NULL;
  char body[6] = { 'B', 'G', 'T', 'A', 'G', (char) atoi (tag) };
  union { char buf[CMSG_SPACE (sizeof (struct in6_pktinfo))]; struct cmsghdr align; } control = { 0 };
  struct iovec iov = { body, sizeof body };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf };
  struct cmsghdr *c = (struct cmsghdr *) control.buf;
  unsigned int ifindex = if_nametoindex (ifname);
  int one = 1, s;

  if (ifindex == 0 || getaddrinfo (src, NULL, &hints, &from) != 0 || getaddrinfo (dst, port, &hints, &to) != 0 ||
      from->ai_family != to->ai_family)
    {
      printf ("bad arguments\n");
      return 1;
    }
  s = socket (to->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  setsockopt (s, SOL_SOCKET, SO_BROADCAST, &one, sizeof one);
  if (bind (s, from->ai_addr, from->ai_addrlen) < 0)
    {
      printf ("bind failed: %s\n", strerror (errno));
      return 1;
    }
  msg.msg_name = to->ai_addr;
  msg.msg_namelen = to->ai_addrlen;
  if (to->ai_family == AF_INET)
    {
      struct in_pktinfo pi = { .ipi_ifindex = ifindex };
      c->cmsg_level = IPPROTO_IP;
      c->cmsg_type = IP_PKTINFO;
      c->cmsg_len = CMSG_LEN (sizeof pi);
      memcpy (CMSG_DATA (c), &pi, sizeof pi);
      msg.msg_controllen = CMSG_SPACE (sizeof pi);
    }
  else
    {
      struct in6_pktinfo pi = { .ipi6_ifindex = ifindex };
      c->cmsg_level = IPPROTO_IPV6;
      c->cmsg_type = IPV6_PKTINFO;
      c->cmsg_len = CMSG_LEN (sizeof pi);
      memcpy (CMSG_DATA (c), &pi, sizeof pi);
      msg.msg_controllen = CMSG_SPACE (sizeof pi);
    }
  if (sendmsg (s, &msg, 0) < 0)
    printf ("send failed: %s\n", strerror (errno));
  else
    printf ("sent\n");
  freeaddrinfo (from);
  freeaddrinfo (to);
  close (s);
  return 0;
}

static int
udp_flow (const char *ip, const char *port)
{
  struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV, .ai_socktype = SOCK_DGRAM };
  struct addrinfo *ai = NULL;
  struct timeval tv = { 10, 0 };
  char line[256], answer[256];
  int s;

  if (getaddrinfo (ip, port, &hints, &ai) != 0)
    {
      printf ("bad address %s\n", ip);
      return 1;
    }
  s = socket (ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  setsockopt (s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect (s, ai->ai_addr, ai->ai_addrlen) < 0)
    {
      printf ("connect failed: %s\n", strerror (errno));
      return 1;
    }
  freeaddrinfo (ai);
  setvbuf (stdout, NULL, _IOLBF, 0);
  while (fgets (line, sizeof line, stdin) != NULL)
    {
      ssize_t n;

      line[strcspn (line, "\n")] = '\0';
      if (send (s, line, strlen (line), 0) < 0)
        {
          printf ("send failed: %s\n", strerror (errno));
          continue;
        }
      n = recv (s, answer, sizeof answer - 1, 0);
      if (n < 0)
        printf ("no answer: %s\n", strerror (errno));
      else
        printf ("%.*s\n", (int) n, answer);
    }
  return 0;
}

/* Dual-stack: the stand-in guest answers on its IPv4 and IPv6 addresses. */
static int
listen_on (int type,
           int port)
{
  struct sockaddr_in6 addr = { .sin6_family = AF_INET6, .sin6_port = htons (port) };
  int one = 1, zero = 0;
  int s = socket (AF_INET6, type | SOCK_CLOEXEC, 0);

  setsockopt (s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt (s, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  if (bind (s, (struct sockaddr *) &addr, sizeof addr) < 0 || (type == SOCK_STREAM && listen (s, 128) < 0))
    {
      perror ("bind");
      exit (1);
    }
  return s;
}

static void
echo_connection (int c)
{
  char buf[65536];
  ssize_t n;

  while ((n = read (c, buf, sizeof buf)) > 0)
    for (ssize_t done = 0; done < n;)
      {
        ssize_t w = write (c, buf + done, n - done);
        if (w <= 0)
          _exit (1);
        done += w;
      }
  _exit (0);
}

static int
echo_forever (int port)
{
  int tcp = listen_on (SOCK_STREAM, port);
  int udp = listen_on (SOCK_DGRAM, port);
  int rst = listen_on (SOCK_STREAM, port + 1);

  signal (SIGCHLD, SIG_IGN);
  printf ("ready\n");
  fflush (stdout);
  for (;;)
    {
      struct pollfd p[3] = { { tcp, POLLIN, 0 }, { udp, POLLIN, 0 }, { rst, POLLIN, 0 } };

      if (poll (p, 3, -1) < 0)
        continue;
      if (p[0].revents & POLLIN)
        {
          int c = accept (tcp, NULL, NULL);
          if (c >= 0 && fork () == 0)
            echo_connection (c);
          if (c >= 0)
            close (c);
        }
      if (p[1].revents & POLLIN)
        {
          char buf[65536];
          struct sockaddr_in6 from;
          socklen_t len = sizeof from;
          ssize_t n = recvfrom (udp, buf, sizeof buf, 0, (struct sockaddr *) &from, &len);
          if (n >= 0)
            sendto (udp, buf, n, 0, (struct sockaddr *) &from, len);
        }
      if (p[2].revents & POLLIN)
        {
          struct linger lg = { 1, 0 };
          int c = accept (rst, NULL, NULL);
          if (c >= 0)
            {
              setsockopt (c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
              close (c);
            }
        }
    }
  return 0;
}

int
main (int argc, char **argv)
{
  if (argc == 3 && strcmp (argv[1], "echo") == 0)
    return echo_forever (atoi (argv[2]));
  if (argc == 3 && strcmp (argv[1], "serve6") == 0)
    return serve6 (atoi (argv[2]));
  if (argc == 3 && strcmp (argv[1], "serve") == 0)
    return serve (atoi (argv[2]));
  if (argc == 4 && strcmp (argv[1], "connect") == 0)
    return connect_to (argv[2], argv[3]);
  if (argc == 7 && strcmp (argv[1], "send-out") == 0)
    return send_out (argv[2], argv[3], argv[4], argv[5], argv[6]);
  if (argc == 4 && strcmp (argv[1], "udp-flow") == 0)
    return udp_flow (argv[2], argv[3]);
  if (argc == 5 && strcmp (argv[1], "open-tap") == 0)
    return open_tap (argv[2], argv[3], argv[4]);
  fprintf (stderr, "usage: see the source\n");
  return 2;
}
