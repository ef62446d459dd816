/* jail.h: a private root and namespaces for one VMM. */
#pragma once

#include <gio/gio.h>
#include <sys/types.h>

#include "bg-dbus-keys.h"
#include "types.h"

G_BEGIN_DECLS

/* Per-VM uids/gids come from 0x70000000 + [0, 65536): above systemd's
 * container range (524288..1878982655), below 2^31 (which some tools treat
 * as negative), and documented by systemd as unused. A uid is refused if
 * the user database knows it. */
#define BG_JAIL_UID_BASE  0x70000000u
#define BG_JAIL_UID_COUNT 65536u

#define BG_JAIL_EXEC_NAME "firecracker"

struct _BgJail {
  char    *id;
  char    *dir;       /* <run>/jail/<id>: root 0700, the caller may traverse */
  char    *root;      /* <dir>/root: the VMM's root is mounted here, privately */
  char    *run;       /* <dir>/run: where its sockets appear; /run inside */
  char    *disks;     /* <dir>/disks: the child's tmpfs for its disk nodes */
  uid_t    uid;
  gid_t    gid;
  gboolean dynamic;   /* the VMM needs the host's libraries */
  int      vmm_tree;  /* a read-only clone of the VMM binary's mount */
  GArray  *fds;       /* descriptors the VMM inherits as 3, 4, ... */
  GArray  *steps;     /* how the child builds the root */
  /* The VMM's network namespace (netns.c): @netns_fd, which the child
   * joins, or, with @own_netns and no descriptor, a new empty one. Off
   * both, the host's. */
  int      netns_fd;
  gboolean own_netns;
  gboolean landlock_scopes;   /* where the kernel has them; off only in tests */
};

BgJail    *bg_jail_new           (const char   *run_dir,
                                  const char   *id,
                                  uid_t         caller,
                                  uid_t         jail_uid,
                                  int           vmm_fd,
                                  gboolean      dynamic,
                                  GError      **error);
gboolean   bg_jail_add_file      (BgJail       *jail,
                                  const char   *field,
                                  const char   *name,
                                  int           fd,
                                  GError      **error);
void       bg_jail_add_block     (BgJail       *jail,
                                  const char   *name,
                                  dev_t         dev,
                                  gboolean      read_only);
GPid       bg_jail_spawn         (BgJail       *jail,
                                  const char * const *argv,
                                  int           output_fd,
                                  GError      **error);
gboolean   bg_jail_destroy       (const char   *dir,
                                  const char   *id,
                                  GError      **error);
GPtrArray *bg_jail_list          (const char   *dir);
void       bg_jail_free          (BgJail       *jail);
char     **bg_jail_build_argv    (const char   *id);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgJail, bg_jail_free)

G_END_DECLS
