/* bg-ssh.h: keys, pinned host keys and ssh command lines. */
#pragma once

#include <gio/gio.h>

#include "bg-config.h"
#include "bg-file.h"
#include "bg-state.h"

G_BEGIN_DECLS

/* A VM's host key pair, in its directory (and NAME.pub). */
#define BG_SSH_HOST_KEY "ssh_host_ed25519_key"

gboolean  bg_ssh_ensure_client_key (const char    *key_path,
                                    GError       **error);
char     *bg_ssh_read_public_key   (const char    *key_path,
                                    GError       **error);
gboolean  bg_ssh_generate_host_key (const char    *dir,
                                    BgFileFlags    flags,
                                    char         **private_key,
                                    char         **public_key,
                                    GError       **error);
/* The name a VM's host key is pinned under: NAME.DOMAIN. */
char     *bg_ssh_alias             (const BgVmRecord *record);

/* How banger reaches a VM over SSH, and nothing else: its own key, its
 * own known_hosts with the VM's pinned key, the VM's user and address. */
typedef struct {
  char *key;
  char *known_hosts;
  char *alias;
  char *user;
  char *address;
} BgSshTarget;

BgSshTarget *bg_ssh_target_new     (const BgVmRecord   *record,
                                    const BgConfig     *config);
void      bg_ssh_target_free       (BgSshTarget        *target);
void      bg_ssh_add_options       (GPtrArray          *argv,
                                    const BgSshTarget  *target,
                                    gboolean            batch);
char    **bg_ssh_build_argv        (const BgSshTarget  *target,
                                    const char * const *command,
                                    gboolean            batch);
char     *bg_ssh_config_block      (const char         *name,
                                    const BgSshTarget  *target);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgSshTarget, bg_ssh_target_free)

G_END_DECLS
