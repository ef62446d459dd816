/* bg-ssh.h: keys, pinned host keys and ssh command lines. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

gboolean  bg_ssh_ensure_client_key (const char    *key_path,
                                    GError       **error);
char     *bg_ssh_read_public_key   (const char    *key_path,
                                    GError       **error);
gboolean  bg_ssh_generate_host_key (const char    *dir,
                                    char         **private_key,
                                    char         **public_key,
                                    GError       **error);
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
void      bg_ssh_add_options       (GPtrArray     *argv,
                                    const char    *key,
                                    const char    *known_hosts,
                                    const char    *alias,
                                    gboolean       batch);
char    **bg_ssh_build_argv        (const char    *key,
                                    const char    *known_hosts,
                                    const char    *alias,
                                    const char    *user,
                                    const char    *address,
                                    const char * const *command,
                                    gboolean       batch);
char     *bg_ssh_config_block      (const char    *name,
                                    const char    *alias,
                                    const char    *address,
                                    const char    *user,
                                    const char    *key,
                                    const char    *known_hosts);

G_END_DECLS
