/* bg-known-hosts.h: the known_hosts file that pins each VM's host key. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

char     *bg_known_hosts_path      (void);
gboolean  bg_known_hosts_add       (const char    *path,
                                    const char    *alias,
                                    const char    *address,
                                    const char    *public_key,
                                    GError       **error);
gboolean  bg_known_hosts_remove    (const char    *path,
                                    const char    *alias,
                                    const char    *address,
                                    GError       **error);
gboolean  bg_known_hosts_remove_vm (const char    *path,
                                    const char    *name,
                                    GError       **error);

G_END_DECLS
