#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* What banger's NoCloud drive asks of the guest: the subset of meta-data,
 * user-data (#cloud-config) and network-config v2 that the CLI writes
 * (src/cli/guest/bg-drive.c). Anything else in the documents is ignored;
 * anything missing or malformed that banger always writes is an error
 * naming the document and the field. */
typedef struct {
  char    *path;        /* absolute, below the user's home */
  GBytes  *content;
  guint32  mode;
} BgSeedFile;

typedef struct {
  char      *instance_id;
  char      *hostname;
  char      *fqdn;

  char      *user;
  char      *shell;
  char      *sudo;      /* sudoers rule for the user, or NULL */
  char     **authorized_keys;

  char      *host_key_private;  /* ed25519 */
  char      *host_key_public;

  GPtrArray *files;     /* BgSeedFile */

  char      *mac;       /* network-config: the one ethernet, matched by MAC */
  char      *set_name;  /* or NULL */
  guint32    address;   /* host order */
  guint      prefix;
  guint32    gateway;   /* default route's next hop, host order; 0 if none */
  gboolean   has_address6;
  guint8     address6[16];
  guint      prefix6;
  gboolean   has_gateway6;
  guint8     gateway6[16];  /* the IPv6 default route's next hop */
  char     **dns;
  char     **search;
} BgSeed;

BgSeed   *bg_seed_parse       (const char  *meta_data,
                               const char  *user_data,
                               const char  *network_config,
                               GError     **error);
BgSeed   *bg_seed_load_dir    (const char  *dir,
                               GError     **error);
void      bg_seed_free        (BgSeed      *seed);

gboolean  bg_seed_is_cidata   (int          fd);
char     *bg_seed_find_device (guint        timeout_ms,
                               GError     **error);
BgSeed   *bg_seed_load_device (const char  *device,
                               GError     **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgSeed, bg_seed_free)

G_END_DECLS
