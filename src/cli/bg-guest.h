#pragma once

#include <gio/gio.h>

#include "bg-config.h"

G_BEGIN_DECLS

typedef struct {
  char  *name;          /* VM name, the guest's hostname */
  char  *domain;        /* DNS domain, "banger" */
  char  *user;          /* the guest user */
  char  *address;       /* IPv4 */
  guint  prefix;
  char  *gateway;
  char  *mac;
  char **dns;           /* name servers */
  char **authorized_keys; /* public key lines */
  char  *host_key_private;
  char  *host_key_public;
  char  *instance_id;
} BgGuestConfig;

typedef struct {
  char    *source;      /* resolved absolute path on the host */
  char    *relative;    /* path below the guest user's home */
  guint32  mode;
  gboolean is_dir;
} BgSyncEntry;

void      bg_guest_config_free     (BgGuestConfig *config);
gboolean  bg_config_drive_build    (const BgGuestConfig *config,
                                    GPtrArray     *files,
                                    const char    *path,
                                    GError       **error);

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

GPtrArray *bg_sync_resolve         (const char    *home,
                                    char         **paths,
                                    guint64        limit,
                                    GPtrArray    **skipped,
                                    GError       **error);
void       bg_sync_entry_free      (BgSyncEntry   *entry);

gboolean  bg_guest_wait_ready      (const char    *address,
                                    guint16        port,
                                    const char * const *ssh_argv,
                                    guint          timeout_ms,
                                    const char    *console_log,
                                    GError       **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgGuestConfig, bg_guest_config_free)

G_END_DECLS
