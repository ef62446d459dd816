/* bg-forward.c: the relay behind `banger vm forward`. TCP connections
 * are moved with splice(2) through a pipe per direction, on the main
 * loop, so bytes never enter user space; UDP gets one connected socket
 * per client (a flow), closed after it has been idle.
 *
 * A forwarded loopback port is open to every local user, so what one
 * client can take is bounded: the soft descriptor limit is raised to the
 * hard one, at most BG_FORWARD_MAX_CONNS connections are relayed at once
 * (more are reset at once, not left to exhaust descriptors), and at most
 * BG_FORWARD_MAX_FLOWS UDP flows are kept: a new client's flow takes the
 * place of the flow idle longest, so traffic that flows is never shut
 * out by sources that went quiet. Both shrink to fit the descriptor
 * limit when it is low.
 *
 * Both caps are shared out by the client's owner (bg-peer.c asks the
 * kernel whose socket is at the other end): a quarter of each is kept
 * for the user running the forward (the VM's owner), and any one other
 * user — or the peers on other hosts, together — holds at most a
 * quarter, so one local user's connections or sprayed sources cannot
 * shut the owner out, and a new flow of another user never evicts one
 * of the owner's. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <glib-unix.h>

#include "bg-error.h"
#include "bg-fd.h"
#include "bg-forward.h"
#include "bg-peer.h"

#define SPLICE_CHUNK   (1024 * 1024)
#define PUMP_ROUNDS    32
#define UDP_DATAGRAM   65536
#define BG_FORWARD_MAX_CONNS 256
#define BG_FORWARD_MAX_FLOWS 1024
/* Descriptors a relayed connection holds: two sockets, two pipes. */
#define FDS_PER_CONN   6

typedef struct _Conn Conn;

typedef enum { WANT_IN, WANT_OUT, DONE, FAILED } Want;

typedef struct {
  int      from, to;
  int      pipe[2];
  gsize    pending;         /* bytes in the pipe */
  gboolean eof;
  Want     want;            /* WANT_IN: @from readable; WANT_OUT: @to writable */
} Direction;

/* One source per connection, polling both sockets for what its two
 * directions wait for: no source is made or dropped while bytes flow. */
typedef struct {
  GSource  base;
  Conn    *conn;
} ConnSource;

struct _Conn {
  BgForward *forward;
  int        client, guest;
  gboolean   connecting;
  GSource   *source;
  gpointer   client_tag, guest_tag;
  Direction  dir[2];        /* 0: client to guest, 1: guest to client */
  char      *peer;
  uid_t      uid;           /* the client socket's owner (bg-peer.h) */
};

typedef struct {
  BgForward      *forward;
  int             fd;
  BgForwardSpec  *spec;
  guint           watch;
  GHashTable     *flows;    /* UDP: client address bytes → Flow */
  char           *shown;
} Listener;

typedef struct {
  Listener        *listener;
  struct sockaddr_storage client;
  socklen_t        client_len;
  int              fd;
  guint            watch;
  gint64           last_used;
  GBytes          *key;
  uid_t            uid;
} Flow;

struct _BgForward {
  char        *vm;
  char        *guest_address;
  GPtrArray   *listeners;
  GHashTable  *conns;       /* Conn* set */
  guint        udp_idle_s;
  guint        sweep;
  guint        max_conns;
  guint        max_flows;
  guint        n_flows;
  uid_t        owner;
  GHashTable  *conns_held;  /* uid → connections its clients hold */
  GHashTable  *flows_held;  /* uid → UDP flows */
  gboolean     said_full;
  GSourceFunc  drained;
  gpointer     drained_data;
};

static void listener_free (Listener *l);

static guint
held_by (GHashTable *held,
         uid_t       uid)
{
  return GPOINTER_TO_UINT (g_hash_table_lookup (held, GUINT_TO_POINTER (uid)));
}

static void
held_change (GHashTable *held,
             uid_t       uid,
             int         delta)
{
  guint n = held_by (held, uid) + delta;

  if (n == 0)
    g_hash_table_remove (held, GUINT_TO_POINTER (uid));
  else
    g_hash_table_insert (held, GUINT_TO_POINTER (uid), GUINT_TO_POINTER (n));
}

/* What one user other than the owner may hold of @max, and what is kept
 * for the owner (nothing when the cap is too small to share). */
static guint
share_of (guint max)
{
  return MAX (max / 4, 1);
}

static guint
reserve_of (guint max)
{
  return max >= 4 ? max / 4 : 0;
}

/* Whether @uid's clients may take one more of what @max caps, of which
 * @total are taken, by owner as @held says. */
static gboolean
share_allows (BgForward  *f,
              GHashTable *held,
              guint       total,
              guint       max,
              uid_t       uid)
{
  if (total >= max)
    return FALSE;
  if (uid == f->owner)
    return TRUE;
  return held_by (held, uid) < share_of (max) &&
         total - held_by (held, f->owner) < max - reserve_of (max);
}

static void
conn_free (Conn *c)
{
  held_change (c->forward->conns_held, c->uid, -1);
  if (c->source != NULL)
    {
      g_source_destroy (c->source);
      g_source_unref (c->source);
    }
  for (guint i = 0; i < 2; i++)
    for (guint k = 0; k < 2; k++)
      bg_fd_clear (&c->dir[i].pipe[k]);
  bg_fd_clear (&c->client);
  bg_fd_clear (&c->guest);
  g_free (c->peer);
  g_free (c);
}

static void
maybe_drained (BgForward *f)
{
  if (f->drained != NULL && g_hash_table_size (f->conns) == 0)
    {
      GSourceFunc done = f->drained;
      f->drained = NULL;
      done (f->drained_data);
    }
}

/* Ends a connection; @reset sends an RST to both sides, as the side
 * that failed did. */
static void
conn_end (Conn     *c,
          gboolean  reset)
{
  BgForward *f = c->forward;

  if (reset)
    {
      struct linger lg = { 1, 0 };
      setsockopt (c->client, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
      if (c->guest >= 0)
        setsockopt (c->guest, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
  g_hash_table_remove (f->conns, c);
  maybe_drained (f);
}

/* Moves what can be moved now; says what it waits for. */
static Want
pump (Direction *d)
{
  for (guint round = 0; round < PUMP_ROUNDS; round++)
    {
      ssize_t n;

      if (d->pending > 0)
        {
          n = splice (d->pipe[0], NULL, d->to, NULL, d->pending, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
          if (n < 0)
            return errno == EAGAIN ? WANT_OUT : errno == EINTR ? WANT_OUT : FAILED;
          d->pending -= n;
          continue;
        }
      if (d->eof)
        {
          shutdown (d->to, SHUT_WR);
          return DONE;
        }
      n = splice (d->from, NULL, d->pipe[1], NULL, SPLICE_CHUNK, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n == 0)
        d->eof = TRUE;
      else if (n < 0)
        return errno == EAGAIN || errno == EINTR ? WANT_IN : FAILED;
      else
        d->pending += n;
    }
  /* Busy: let the others run, and come back. */
  return d->pending > 0 ? WANT_OUT : WANT_IN;
}

/* What each socket is polled for, from what the directions wait for. */
static void
conn_rearm (Conn *c)
{
  GIOCondition client = 0, guest = 0;

  if (c->connecting)
    guest = G_IO_OUT;
  else
    {
      for (guint i = 0; i < 2; i++)
        {
          Direction *d = &c->dir[i];
          if (d->want == WANT_IN)
            *(d->from == c->client ? &client : &guest) |= G_IO_IN;
          else if (d->want == WANT_OUT)
            *(d->to == c->client ? &client : &guest) |= G_IO_OUT;
        }
    }
  g_source_modify_unix_fd (c->source, c->client_tag, client);
  g_source_modify_unix_fd (c->source, c->guest_tag, guest);
}

/* Connected (or not): the pipes, then the first moves. FALSE when the
 * connection ended. */
static gboolean
conn_connected (Conn *c)
{
  int err = 0;
  socklen_t len = sizeof err;

  c->connecting = FALSE;
  if (getsockopt (c->guest, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
    err = errno;
  if (err != 0)
    {
      g_printerr ("banger: %s: cannot reach %s: %s\n", c->peer, c->forward->vm, g_strerror (err));
      conn_end (c, TRUE);
      return FALSE;
    }
  for (guint i = 0; i < 2; i++)
    {
      Direction *d = &c->dir[i];
      d->from = i == 0 ? c->client : c->guest;
      d->to = i == 0 ? c->guest : c->client;
      d->want = WANT_IN;
      if (pipe2 (d->pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        {
          g_printerr ("banger: %s: %s\n", c->peer, g_strerror (errno));
          conn_end (c, TRUE);
          return FALSE;
        }
      /* Room for a whole chunk; the default 64 KiB pipe halves throughput. */
      fcntl (d->pipe[1], F_SETPIPE_SZ, SPLICE_CHUNK);
    }
  return TRUE;
}

static gboolean
conn_dispatch (GSource     *source,
               GSourceFunc  callback,
               gpointer     data)
{
  Conn *c = ((ConnSource *) source)->conn;
  GIOCondition client = g_source_query_unix_fd (source, c->client_tag);
  GIOCondition guest = g_source_query_unix_fd (source, c->guest_tag);
  gboolean moved = FALSE;

  if (c->connecting)
    {
      if (guest == 0 || !conn_connected (c))
        return G_SOURCE_CONTINUE;
      /* Try both directions at once: data may be waiting already. */
      client = guest = G_IO_IN | G_IO_OUT;
    }
  for (guint i = 0; i < 2; i++)
    {
      Direction *d = &c->dir[i];
      GIOCondition on_from = d->from == c->client ? client : guest;
      GIOCondition on_to = d->to == c->client ? client : guest;

      if ((d->want == WANT_IN && on_from != 0) || (d->want == WANT_OUT && on_to != 0))
        {
          d->want = pump (d);
          moved = TRUE;
        }
      if (d->want == FAILED)
        {
          conn_end (c, TRUE);
          return G_SOURCE_CONTINUE;
        }
    }
  if (c->dir[0].want == DONE && c->dir[1].want == DONE)
    {
      conn_end (c, FALSE);
      return G_SOURCE_CONTINUE;
    }
  /* poll() reports errors and hang-ups even on a socket polled for
   * nothing; one that nothing waits for would wake us forever. */
  if (!moved && ((client | guest) & (G_IO_ERR | G_IO_HUP | G_IO_NVAL)) != 0)
    {
      conn_end (c, TRUE);
      return G_SOURCE_CONTINUE;
    }
  if (moved)
    conn_rearm (c);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs conn_source_funcs = { NULL, NULL, conn_dispatch, NULL, NULL, NULL };

/* The guest's end: its IPv4 address, or its IPv6 one (vm forward
 * --ipv6); *@len 0 when the address is neither. */
static void
guest_sockaddr (Listener                 *l,
                struct sockaddr_storage  *ss,
                socklen_t                *len)
{
  struct sockaddr_in *sin = (struct sockaddr_in *) ss;
  struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) ss;

  memset (ss, 0, sizeof *ss);
  *len = 0;
  if (inet_pton (AF_INET, l->forward->guest_address, &sin->sin_addr) == 1)
    {
      sin->sin_family = AF_INET;
      sin->sin_port = htons (l->spec->guest_port);
      *len = sizeof *sin;
    }
  else if (inet_pton (AF_INET6, l->forward->guest_address, &sin6->sin6_addr) == 1)
    {
      sin6->sin6_family = AF_INET6;
      sin6->sin6_port = htons (l->spec->guest_port);
      *len = sizeof *sin6;
    }
}

static char *
format_peer (const struct sockaddr_storage *ss)
{
  char host[INET6_ADDRSTRLEN] = "?";
  guint port = 0;

  if (ss->ss_family == AF_INET6)
    {
      const struct sockaddr_in6 *a = (const struct sockaddr_in6 *) ss;
      inet_ntop (AF_INET6, &a->sin6_addr, host, sizeof host);
      port = ntohs (a->sin6_port);
      return g_strdup_printf ("[%s]:%u", host, port);
    }
  inet_ntop (AF_INET, &((const struct sockaddr_in *) ss)->sin_addr, host, sizeof host);
  port = ntohs (((const struct sockaddr_in *) ss)->sin_port);
  return g_strdup_printf ("%s:%u", host, port);
}

static gboolean
on_accept (int           fd,
           GIOCondition  cond,
           gpointer      data)
{
  Listener *l = data;

  for (guint i = 0; i < 64; i++)
    {
      struct sockaddr_storage peer, local;
      socklen_t plen = sizeof peer, llen = sizeof local;
      struct sockaddr_storage guest;
      socklen_t glen;
      g_auto(BgFd) client = accept4 (fd, (struct sockaddr *) &peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
      BgForward *f = l->forward;
      guint open = g_hash_table_size (f->conns);
      uid_t uid;
      Conn *c;

      if (client < 0)
        break;
      uid = getsockname (client, (struct sockaddr *) &local, &llen) == 0
              ? bg_peer_find_uid (IPPROTO_TCP, &peer, &local)
              : BG_PEER_UID_UNKNOWN;
      if (!share_allows (f, f->conns_held, open, f->max_conns, uid))
        {
          struct linger lg = { 1, 0 };

          if (f->said_full)
            ;
          else if (open >= f->max_conns)
            g_printerr ("banger: %u connections to %s are open, the most one forward relays; "
                        "refusing more until some end\n", f->max_conns, f->vm);
          else
            g_printerr ("banger: other users' connections to %s hold their share of this forward; "
                        "refusing more of theirs until some end\n", f->vm);
          f->said_full = TRUE;
          setsockopt (client, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
          continue;
        }
      f->said_full = FALSE;
      c = g_new0 (Conn, 1);
      c->forward = f;
      c->client = g_steal_fd (&client);
      c->uid = uid;
      held_change (f->conns_held, uid, +1);
      c->peer = format_peer (&peer);
      for (guint k = 0; k < 2; k++)
        c->dir[k].pipe[0] = c->dir[k].pipe[1] = -1;
      g_hash_table_add (l->forward->conns, c);
      guest_sockaddr (l, &guest, &glen);
      c->guest = socket (guest.ss_family == AF_INET6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (c->guest < 0 || glen == 0 ||
          (connect (c->guest, (struct sockaddr *) &guest, glen) < 0 && errno != EINPROGRESS))
        {
          g_printerr ("banger: %s: cannot reach %s: %s\n", c->peer, l->forward->vm, g_strerror (errno));
          conn_end (c, TRUE);
          continue;
        }
      {
        int one = 1;
        setsockopt (c->guest, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt (c->client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      }
      c->connecting = TRUE;
      c->source = g_source_new (&conn_source_funcs, sizeof (ConnSource));
      ((ConnSource *) c->source)->conn = c;
      c->client_tag = g_source_add_unix_fd (c->source, c->client, 0);
      c->guest_tag = g_source_add_unix_fd (c->source, c->guest, G_IO_OUT);
      g_source_attach (c->source, NULL);
    }
  return G_SOURCE_CONTINUE;
}

static void
flow_free (Flow *w)
{
  w->listener->forward->n_flows--;
  held_change (w->listener->forward->flows_held, w->uid, -1);
  g_clear_handle_id (&w->watch, g_source_remove);
  bg_fd_clear (&w->fd);
  g_bytes_unref (w->key);
  g_free (w);
}

/* The relay is single-threaded: one buffer serves every datagram, and a
 * wake-up moves at most a burst of them so no socket starves the rest. */
static guint8 datagram[UDP_DATAGRAM];
#define BURST 64

static gboolean
on_flow_reply (int           fd,
               GIOCondition  cond,
               gpointer      data)
{
  Flow *w = data;

  for (guint i = 0; i < BURST; i++)
    {
      ssize_t n = recv (fd, datagram, sizeof datagram, MSG_DONTWAIT);
      if (n < 0)
        break;
      w->last_used = g_get_monotonic_time ();
      sendto (w->listener->fd, datagram, n, MSG_DONTWAIT, (struct sockaddr *) &w->client, w->client_len);
    }
  return G_SOURCE_CONTINUE;
}

typedef enum {
  FLOWS_OF_UID,       /* @uid's */
  FLOWS_OF_OTHERS,    /* any but the owner's */
  FLOWS_ANY,
} FlowsOf;

/* Makes room for a new flow: of the flows @which says, the one idle
 * longest, of any listener, goes. FALSE if there was none. */
static gboolean
evict_idlest_flow (BgForward *f,
                   FlowsOf    which,
                   uid_t      uid)
{
  Listener *from = NULL;
  Flow *idlest = NULL;

  for (guint i = 0; i < f->listeners->len; i++)
    {
      Listener *l = f->listeners->pdata[i];
      GHashTableIter it;
      Flow *w;

      if (l->flows == NULL)
        continue;
      g_hash_table_iter_init (&it, l->flows);
      while (g_hash_table_iter_next (&it, NULL, (gpointer *) &w))
        {
          if ((which == FLOWS_OF_UID && w->uid != uid) || (which == FLOWS_OF_OTHERS && w->uid == f->owner))
            continue;
          if (idlest == NULL || w->last_used < idlest->last_used)
            {
              idlest = w;
              from = l;
            }
        }
    }
  if (idlest == NULL)
    return FALSE;
  g_hash_table_remove (from->flows, idlest->key);
  return TRUE;
}

/* Makes room, if needed, for a new flow of @uid's: from its own flows
 * once it holds its share, never from the owner's for another user.
 * FALSE if there is no room for it. */
static gboolean
flow_make_room (BgForward *f,
                uid_t      uid)
{
  while (!share_allows (f, f->flows_held, f->n_flows, f->max_flows, uid))
    {
      if (uid != f->owner && held_by (f->flows_held, uid) >= share_of (f->max_flows))
        {
          if (!evict_idlest_flow (f, FLOWS_OF_UID, uid))
            return FALSE;
        }
      else if (!evict_idlest_flow (f, FLOWS_OF_OTHERS, uid) &&
               (uid != f->owner || !evict_idlest_flow (f, FLOWS_ANY, uid)))
        return FALSE;
    }
  return TRUE;
}

/* A client's first datagram: a socket of its own towards the guest, so
 * replies find their way back to it. */
static Flow *
flow_open (Listener                       *l,
           const struct sockaddr_storage  *from,
           socklen_t                       flen,
           GBytes                         *key)
{
  struct sockaddr_storage guest, local;
  socklen_t glen, llen = sizeof local;
  uid_t uid;
  Flow *w;

  guest_sockaddr (l, &guest, &glen);
  if (glen == 0)
    return NULL;
  /* A listener on every address (-b 0.0.0.0) names no local address: a
   * local client's connected socket is then not found and shares the
   * remote peers' part. */
  uid = getsockname (l->fd, (struct sockaddr *) &local, &llen) == 0
          ? bg_peer_find_uid (IPPROTO_UDP, from, &local)
          : BG_PEER_UID_UNKNOWN;
  if (!flow_make_room (l->forward, uid))
    return NULL;
  w = g_new0 (Flow, 1);
  w->listener = l;
  w->uid = uid;
  l->forward->n_flows++;
  held_change (l->forward->flows_held, uid, +1);
  memcpy (&w->client, from, flen);
  w->client_len = flen;
  w->key = g_bytes_ref (key);
  w->fd = socket (guest.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (w->fd < 0 || connect (w->fd, (struct sockaddr *) &guest, glen) < 0)
    {
      flow_free (w);
      return NULL;
    }
  w->watch = g_unix_fd_add (w->fd, G_IO_IN, on_flow_reply, w);
  g_hash_table_insert (l->flows, w->key, w);
  return w;
}

static gboolean
on_datagram (int           fd,
             GIOCondition  cond,
             gpointer      data)
{
  Listener *l = data;

  for (guint i = 0; i < BURST; i++)
    {
      struct sockaddr_storage from;
      socklen_t flen = sizeof from;
      ssize_t n = recvfrom (fd, datagram, sizeof datagram, MSG_DONTWAIT, (struct sockaddr *) &from, &flen);
      g_autoptr(GBytes) key = NULL;
      Flow *w;

      if (n < 0)
        break;
      key = g_bytes_new (&from, flen);
      if ((w = g_hash_table_lookup (l->flows, key)) == NULL && (w = flow_open (l, &from, flen, key)) == NULL)
        continue;
      w->last_used = g_get_monotonic_time ();
      send (w->fd, datagram, n, MSG_DONTWAIT);
    }
  return G_SOURCE_CONTINUE;
}

/* Closes UDP flows idle for longer than udp_idle_s. */
static gboolean
sweep_flows (gpointer data)
{
  BgForward *f = data;
  gint64 before = g_get_monotonic_time () - (gint64) f->udp_idle_s * G_USEC_PER_SEC;

  for (guint i = 0; i < f->listeners->len; i++)
    {
      Listener *l = f->listeners->pdata[i];
      GHashTableIter it;
      Flow *w;

      if (l->flows == NULL)
        continue;
      g_hash_table_iter_init (&it, l->flows);
      while (g_hash_table_iter_next (&it, NULL, (gpointer *) &w))
        if (w->last_used < before)
          g_hash_table_iter_remove (&it);
    }
  return G_SOURCE_CONTINUE;
}

static void
listener_free (Listener *l)
{
  g_clear_handle_id (&l->watch, g_source_remove);
  bg_fd_clear (&l->fd);
  g_clear_pointer (&l->flows, g_hash_table_unref);
  g_free (l->shown);
  g_free (l);
}

/* Binds one listener; errors say what to do. @optional: an address the
 * host may not have (::1) is skipped, not an error. */
static gboolean
listen_on (BgForward      *f,
           BgForwardSpec  *spec,
           const char     *address,
           gboolean        optional,
           GError        **error)
{
  g_autoptr(GInetAddress) a = g_inet_address_new_from_string (address);
  g_autoptr(GSocketAddress) sa = g_inet_socket_address_new (a, spec->host_port);
  struct sockaddr_storage ss;
  gboolean v6 = g_inet_address_get_family (a) == G_SOCKET_FAMILY_IPV6;
  g_autofree char *shown = g_strdup_printf ("%s%s%s:%u/%s", v6 ? "[" : "", address, v6 ? "]" : "",
                                            spec->host_port, spec->udp ? "udp" : "tcp");
  g_auto(BgFd) fd = socket (v6 ? AF_INET6 : AF_INET, (spec->udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1, errsv;
  Listener *l;

  if (fd >= 0)
    {
      setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (v6)
        setsockopt (fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    }
  g_socket_address_to_native (sa, &ss, sizeof ss, NULL);
  if (fd < 0 || bind (fd, (struct sockaddr *) &ss, g_socket_address_get_native_size (sa)) < 0 ||
      (!spec->udp && listen (fd, 256) < 0))
    {
      errsv = errno;
      bg_fd_clear (&fd);
      if (optional && (errsv == EADDRNOTAVAIL || errsv == EAFNOSUPPORT))
        return TRUE;
      if (errsv == EADDRINUSE)
        g_set_error (error, BG_ERROR, BG_ERROR_BUSY,
                     "SPEC \"%s\": %s is in use by another program; choose another host port", spec->text, shown);
      else if (errsv == EACCES && spec->host_port < 1024)
        g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                     "SPEC \"%s\": port %u is privileged on this host (below net.ipv4.ip_unprivileged_port_start); "
                     "forward a port from 1024 up instead, e.g. %u:%u",
                     spec->text, spec->host_port, spec->host_port + 8000, spec->guest_port);
      else if (errsv == EADDRNOTAVAIL)
        g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                     "SPEC \"%s\": this host has no address %s", spec->text, address);
      else
        g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "SPEC \"%s\": cannot listen on %s: %s", spec->text, shown,
                     g_strerror (errsv));
      return FALSE;
    }
  l = g_new0 (Listener, 1);
  l->forward = f;
  l->fd = g_steal_fd (&fd);
  l->spec = spec;
  l->shown = g_steal_pointer (&shown);
  if (spec->udp)
    {
      l->flows = g_hash_table_new_full (g_bytes_hash, g_bytes_equal, NULL, (GDestroyNotify) flow_free);
      l->watch = g_unix_fd_add (l->fd, G_IO_IN, on_datagram, l);
    }
  else
    l->watch = g_unix_fd_add (l->fd, G_IO_IN, on_accept, l);
  g_ptr_array_add (f->listeners, l);
  return TRUE;
}

BgForward *
bg_forward_new (const char  *vm_name,
                const char  *guest_address,
                GPtrArray   *specs,
                guint        udp_idle_s,
                GError     **error)
{
  g_autoptr(BgForward) f = g_new0 (BgForward, 1);

  f->vm = g_strdup (vm_name);
  f->guest_address = g_strdup (guest_address);
  f->listeners = g_ptr_array_new_with_free_func ((GDestroyNotify) listener_free);
  f->conns = g_hash_table_new_full (NULL, NULL, (GDestroyNotify) conn_free, NULL);
  f->conns_held = g_hash_table_new (NULL, NULL);
  f->flows_held = g_hash_table_new (NULL, NULL);
  f->owner = getuid ();
  f->udp_idle_s = MAX (udp_idle_s, 1);
  {
    /* Every descriptor the hard limit allows; the caps fit in them, with
     * room left for the listeners and the process's own. */
    struct rlimit nofile;
    guint budget;

    if (getrlimit (RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max)
      {
        nofile.rlim_cur = nofile.rlim_max;
        setrlimit (RLIMIT_NOFILE, &nofile);
      }
    if (getrlimit (RLIMIT_NOFILE, &nofile) < 0)
      nofile.rlim_cur = 1024;
    budget = (guint) MIN (nofile.rlim_cur, (rlim_t) G_MAXINT) - MIN (nofile.rlim_cur, 64 + 2 * specs->len * 2);
    f->max_conns = MAX (MIN (BG_FORWARD_MAX_CONNS, budget / 2 / FDS_PER_CONN), 1);
    f->max_flows = MAX (MIN (BG_FORWARD_MAX_FLOWS, budget / 2), 1);
  }
  for (guint i = 0; i < specs->len; i++)
    {
      BgForwardSpec *s = specs->pdata[i];
      if (s->host_address != NULL)
        {
          if (!listen_on (f, s, s->host_address, FALSE, error))
            return NULL;
        }
      else if (!listen_on (f, s, "127.0.0.1", FALSE, error) || !listen_on (f, s, "::1", TRUE, error))
        return NULL;
      if (s->udp && f->sweep == 0)
        f->sweep = g_timeout_add_seconds (MAX (f->udp_idle_s / 2, 1), sweep_flows, f);
    }
  return g_steal_pointer (&f);
}

GPtrArray *
bg_forward_listening (BgForward *f)
{
  GPtrArray *shown = g_ptr_array_new ();

  for (guint i = 0; i < f->listeners->len; i++)
    g_ptr_array_add (shown, ((Listener *) f->listeners->pdata[i])->shown);
  return shown;
}

guint
bg_forward_n_open (BgForward *f)
{
  return g_hash_table_size (f->conns);
}

void
bg_forward_drain (BgForward   *f,
                  GSourceFunc  done,
                  gpointer     data)
{
  /* No new connections or datagrams; UDP has no connection to wait for. */
  g_ptr_array_set_size (f->listeners, 0);
  g_clear_handle_id (&f->sweep, g_source_remove);
  f->drained = done;
  f->drained_data = data;
  maybe_drained (f);
}

void
bg_forward_free (BgForward *f)
{
  if (f == NULL)
    return;
  g_clear_handle_id (&f->sweep, g_source_remove);
  g_ptr_array_unref (f->listeners);
  g_hash_table_unref (f->conns);
  g_hash_table_unref (f->conns_held);
  g_hash_table_unref (f->flows_held);
  g_free (f->vm);
  g_free (f->guest_address);
  g_free (f);
}
