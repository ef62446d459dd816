/* bg-netconf.h: /etc/banger/network.conf, and the address arithmetic the
 * network needs. Pure: nothing here touches the kernel. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define BG_TAP_PREFIX "bg-"

typedef struct _BgNetConfig BgNetConfig;

struct _BgNetConfig {
  char     *path;        /* the file read (it may be absent) */
  char     *bridge;
  gboolean  subnet_auto;
  guint32   subnet;      /* host order */
  guint     prefix;
  char     *domain;
  char     *uplink;      /* NULL: the default route's interface */
  char    **dns;         /* NULL: from the host's resolv.conf */
  gboolean  isolate;     /* drop frames between different users' VMs */
  gboolean  ipv6_off;    /* subnet6=off: IPv4 only */
  gboolean  subnet6_auto;/* a ULA /64 chosen once per host (the default) */
  guint8    subnet6[16]; /* subnet6=PREFIX/64, when neither */
};

BgNetConfig *bg_net_config_load       (const char   *config_dir,
                                       GError      **error);
void         bg_net_config_free       (BgNetConfig  *config);
char       **bg_net_config_guest_dns  (BgNetConfig  *config,
                                       const char * const *resolv_files);

gboolean     bg_net_validate_ifname   (const char   *field,
                                       const char   *name,
                                       GError      **error);
gboolean     bg_net_validate_tap_name (const char   *field,
                                       const char   *name,
                                       GError      **error);
char        *bg_net_tap_name          (guint32       owner,
                                       const char   *vm_name);
char        *bg_net_guest_mac         (guint32       owner,
                                       const char   *vm_name);
gboolean     bg_net_parse_subnet      (const char   *text,
                                       guint32      *network,
                                       guint        *prefix,
                                       GError      **error);
char        *bg_ip_format             (guint32       host_order);
gboolean     bg_ip_parse              (const char   *text,
                                       guint32      *host_order);

/* IPv6: a /64 for the bridge, an address of it derived from an IPv4
 * one, and the EUI-64 link-local address a MAC makes. */
gboolean     bg_net_parse_subnet6     (const char   *text,
                                       guint8        network[16],
                                       GError      **error);
void         bg_net_ula_random        (guint8        network[16]);
char        *bg_ip6_format            (const guint8  address[16]);
gboolean     bg_ip6_parse             (const char   *text,
                                       guint8        address[16]);
char        *bg_net_ip6_host          (const guint8  network[16],
                                       guint32       host);
char        *bg_net_link_local        (const char   *mac);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgNetConfig, bg_net_config_free)

G_END_DECLS
