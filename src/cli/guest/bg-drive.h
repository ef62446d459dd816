/* bg-drive.h: a VM's config drive. */
#pragma once

#include <gio/gio.h>

#include "bg-file.h"

G_BEGIN_DECLS

typedef struct {
  char  *name;          /* VM name, the guest's hostname */
  char  *domain;        /* DNS domain, "banger" */
  char  *user;          /* the guest user */
  char  *address;       /* IPv4 */
  guint  prefix;
  char  *gateway;
  char  *address6;      /* IPv6, a /64; NULL for none */
  char  *gateway6;
  char  *mac;
  char **dns;           /* name servers */
  char **authorized_keys; /* public key lines */
  char  *host_key_private;
  char  *host_key_public;
  char  *instance_id;
} BgGuestConfig;

void      bg_guest_config_free     (BgGuestConfig *config);
gboolean  bg_config_drive_build    (const BgGuestConfig *config,
                                    GPtrArray     *files,
                                    const char    *path,
                                    BgFileFlags    flags,
                                    GError       **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgGuestConfig, bg_guest_config_free)

G_END_DECLS
