/* bg-ready.h: waiting for a booted guest. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

gboolean  bg_guest_wait_ready      (const char    *address,
                                    guint16        port,
                                    const char * const *ssh_argv,
                                    guint          timeout_ms,
                                    const char    *console_log,
                                    GError       **error);

G_END_DECLS
