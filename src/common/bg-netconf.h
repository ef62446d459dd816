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

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgNetConfig, bg_net_config_free)

G_END_DECLS
