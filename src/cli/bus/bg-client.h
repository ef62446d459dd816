/* bg-client.h: calling banger-mechanism from the CLI. */
#pragma once

#include <gio/gio.h>
#include <gio/gunixfdlist.h>

#include "bg-dbus.h"

G_BEGIN_DECLS

GVariant        *bg_client_call            (const char   *method,
                                            GVariant     *parameters,
                                            GUnixFDList  *fd_list,
                                            GError      **error);
void             bg_client_connect_ahead   (void);
void             bg_client_shutdown        (void);
gboolean         bg_client_graphical_session (const char * const *envp);
GDBusConnection *bg_client_get_connection  (GError      **error);

G_END_DECLS
