#pragma once

#include "daemon.h"

G_BEGIN_DECLS

typedef struct _BgNetwork BgNetwork;

extern const BgResourceKind bg_network_tap_kind;
extern const BgResourceKind bg_network_bridge_kind;

BgNetwork *bg_network_new      (BgDaemon      *daemon);
void       bg_network_free     (BgNetwork     *network);
void       bg_network_connect  (BgNetwork     *network,
                                BgMechanism1  *skeleton);

/* Exposed for unit tests. */
gboolean   bg_network_validate_ifname (const char  *field,
                                       const char  *name,
                                       GError     **error);
char      *bg_network_tap_name        (guint32      owner,
                                       const char  *vm_name);
char      *bg_network_guest_mac       (guint32      owner,
                                       const char  *vm_name);
gboolean   bg_network_validate_tap_name (const char  *field,
                                         const char  *name,
                                         GError     **error);
gboolean   bg_network_tap_set_owner   (const char  *tap,
                                       uid_t        owner,
                                       GError     **error);
gboolean   bg_network_parse_subnet    (const char  *text,
                                       guint32     *network,
                                       guint       *prefix,
                                       GError     **error);

G_END_DECLS
