/* ipv6.h: the host's IPv6 settings the VM network needs, which the
 * kernel offers only as sysctls. */
#pragma once

#include "bg-netconf.h"
#include "types.h"

G_BEGIN_DECLS

gboolean bg_ipv6_link_enabled      (const char   *ifname);
gboolean bg_ipv6_set_link          (const char   *ifname,
                                    gboolean      on,
                                    GError      **error);
gboolean bg_ipv6_port_off          (const char   *port,
                                    GError      **error);
gboolean bg_ipv6_load_prefix       (BgNetConfig  *config,
                                    const char   *state_dir,
                                    guint8        network[16],
                                    GError      **error);
gboolean bg_ipv6_peek_prefix       (BgNetConfig  *config,
                                    const char   *state_dir,
                                    guint8        network[16]);
char    *bg_ipv6_off_reason        (BgNetConfig  *config,
                                    const char   *ifname);
gboolean bg_ipv6_enable_forwarding (const char   *uplink,
                                    GError      **error);

G_END_DECLS
