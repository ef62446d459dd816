/* netlink.h: the kernel's network objects, through libnl-route-3 and the
 * tun driver's ioctls (never `ip`). */
#pragma once

#include <sys/types.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>

#include "types.h"

G_BEGIN_DECLS

typedef struct nl_sock BgNlSock;
typedef struct rtnl_link BgNlLink;

BgNlSock *bg_nl_open              (GError       **error);
void      bg_nl_close             (BgNlSock      *sk);
BgNlLink *bg_nl_link_get          (BgNlSock      *sk,
                                   const char    *name);
void      bg_nl_link_unref        (BgNlLink      *link);
gboolean  bg_nl_link_enable_forwarding (BgNlSock  *sk,
                                        const char *name,
                                        GError   **error);
char     *bg_nl_link_name         (BgNlSock      *sk,
                                   int            ifindex);
gboolean  bg_nl_link_up           (BgNlSock      *sk,
                                   BgNlLink      *link,
                                   int            master,
                                   GError       **error);
gboolean  bg_nl_link_delete       (BgNlSock      *sk,
                                   const char    *name,
                                   GError       **error);
gboolean  bg_nl_bridge_add        (BgNlSock      *sk,
                                   const char    *name,
                                   GError       **error);
gboolean  bg_nl_has_address       (BgNlSock      *sk,
                                   int            ifindex,
                                   guint32        address,
                                   guint          prefix);
gboolean  bg_nl_first_address     (BgNlSock      *sk,
                                   int            ifindex,
                                   guint32       *address,
                                   guint         *prefix);
gboolean  bg_nl_bridge_only_taps  (BgNlSock      *sk,
                                   int            ifindex);
gboolean  bg_nl_add_address       (BgNlSock      *sk,
                                   int            ifindex,
                                   guint32        address,
                                   guint          prefix,
                                   GError       **error);
gboolean  bg_nl_has_address6      (BgNlSock      *sk,
                                   int            ifindex,
                                   const guint8   address[16]);
gboolean  bg_nl_add_address6      (BgNlSock      *sk,
                                   int            ifindex,
                                   const guint8   address[16],
                                   GError       **error);

/* What the kernel says of a link, by name (bg_nl_links). */
typedef struct {
  int      ifindex;
  int      master;
  gboolean up;
} BgLinkInfo;

GHashTable *bg_nl_links           (BgNlSock      *sk,
                                   GError       **error);

/* An IPv4 route of the main table, as far as subnet choice cares. */
typedef struct {
  guint32 net;      /* host order */
  guint   prefix;   /* 0 for a default route */
  int     oif;
} BgRoute;

GArray        *bg_nl_routes             (BgNlSock     *sk,
                                         GError      **error);
const BgRoute *bg_routes_find_clash     (GArray       *routes,
                                         guint32       net,
                                         guint         prefix,
                                         int           skip_oif);
int            bg_routes_default_oif    (GArray       *routes);
gboolean       bg_routes_pick_subnet    (GArray       *routes,
                                         guint32      *net,
                                         GError      **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgNlSock, bg_nl_close)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgNlLink, bg_nl_link_unref)

G_END_DECLS
