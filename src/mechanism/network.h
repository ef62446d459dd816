/* network.h: the VM network — one bridge, a tap per VM, NAT, names.
 * The engine: it takes a caller's uid and a GError, never a call. */
#pragma once

#include <sys/types.h>

#include "netlink.h"
#include "types.h"

G_BEGIN_DECLS

struct _BgNetwork {
  BgDaemon   *daemon;
  BgRegistry *registry;
  BgNft      *nft;
  gboolean    forget_pending;   /* as <run-dir>/forget-subnet, should it not be written */
};

/* The network as it is: what EnsureNetwork() and NetworkInfo() report. */
struct _BgNetState {
  char     *bridge;
  guint32   subnet;
  guint     prefix;
  char     *subnet_text;
  char     *gateway;
  char     *uplink;
  char    **dns;
  char     *domain;
  gboolean  nat;
  gboolean  ipv6;         /* the VMs have IPv6 (subnet6, gateway6) */
  guint8    subnet6[16];
  char     *subnet6_text;
  char     *gateway6;
  char     *ipv6_off;     /* why not, when not */
};

BgNetwork  *bg_network_new          (BgDaemon     *daemon);
void        bg_network_free         (BgNetwork    *network);
void        bg_network_reconcile    (BgNetwork    *network);

BgNetState *bg_network_ensure       (BgNetwork    *network,
                                     GError      **error);
BgNetState *bg_network_inspect      (BgNetwork    *network,
                                     GError      **error);
gboolean    bg_network_teardown     (BgNetwork    *network,
                                     GError      **error);
BgResource *bg_network_create_tap   (BgNetwork    *network,
                                     uid_t         owner,
                                     const char   *vm_name,
                                     const char   *want_address,
                                     BgNetState  **state,
                                     GError      **error);
BgResource *bg_network_tap_for_launch (BgNetwork  *network,
                                       uid_t       owner,
                                       const char *vm_name,
                                       const char *want_address,
                                       BgNetState **state,
                                       GError    **error);
GVariant   *bg_network_tap_info     (BgResource   *tap,
                                     BgNetState   *state);
gboolean    bg_network_delete_tap   (BgNetwork    *network,
                                     BgResource   *tap,
                                     GError      **error);

extern const BgKindOps bg_tap_kind;

gboolean    bg_network_validate_address_option (GVariant *options,
                                                GError  **error);
void        bg_net_state_free       (BgNetState   *state);
GVariant   *bg_net_state_to_variant (BgNetState   *state);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgNetState, bg_net_state_free)

G_END_DECLS
