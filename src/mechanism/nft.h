/* nft.h: banger's own nftables table, and nothing of the host's. */
#pragma once

#include "types.h"

G_BEGIN_DECLS

BgNft   *bg_nft_new      (void);
void     bg_nft_free     (BgNft       *nft);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgNft, bg_nft_free)

gboolean bg_nft_in_place (BgNft       *nft,
                          const char  *bridge,
                          const char  *subnet,
                          const char  *subnet6);
gboolean bg_nft_apply    (BgNft       *nft,
                          const char  *bridge,
                          const char  *subnet,
                          const char  *subnet6,
                          GError     **error);
gboolean bg_nft_remove   (BgNft       *nft,
                          GError     **error);

/* A tap on the bridge and what its VM may send as. */
typedef struct {
  const char *tap;
  const char *mac;
  const char *address;
  const char *address6;   /* NULL: IPv4 only */
  uid_t       owner;
} BgNftPort;

gboolean bg_nft_apply_ports (BgNft           *nft,
                             const BgNftPort *ports,
                             guint            n_ports,
                             gboolean         isolate,
                             GError         **error);
char    *bg_nft_marked_subnet (BgNft      *nft,
                               const char *bridge);

G_END_DECLS
