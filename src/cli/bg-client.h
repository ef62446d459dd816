#pragma once

#include <gio/gio.h>
#include <gio/gunixfdlist.h>

G_BEGIN_DECLS

#define BG_MECHANISM_BUS_NAME  "org.banger.Mechanism1"
#define BG_MECHANISM_PATH      "/org/banger/Mechanism1"
#define BG_MECHANISM_IFACE     "org.banger.Mechanism1"

GVariant *bg_client_call (const char          *method,
                          GVariant            *parameters,
                          const GVariantType  *reply_type,
                          GUnixFDList         *fd_list,
                          GUnixFDList        **out_fd_list,
                          GError             **error);
void      bg_client_shutdown (void);
GDBusConnection *bg_client_get_connection (GError **error);

G_END_DECLS
