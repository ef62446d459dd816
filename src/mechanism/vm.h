/* vm.h: launching jailed VMMs for callers, and killing them. The
 * engine: it takes a caller's uid and a GError, never a call. */
#pragma once

#include <sys/types.h>

#include "types.h"
#include "vmm.h"

G_BEGIN_DECLS

struct _BgVms {
  BgDaemon   *daemon;
  BgRegistry *registry;
  BgNetwork  *network;
  BgStorage  *storage;
  GHashTable *running;   /* id -> BgVmm */
};

/* What LaunchVm was given. The descriptors belong to the params until
 * bg_vms_launch() takes them (and sets them to -1). */
typedef struct {
  const char *vm_name;
  const char *tap;        /* NULL: no network */
  int         kernel_fd;
  int         rootfs_fd;  /* the VM's own disk: its root, or with a base its upper layer */
  int         base_fd;    /* -1, or the image's root filesystem, shared read-only */
  int         initrd_fd;
  int         console_fd;
  int         config_fd;
  guint       timeout_ms; /* 0: mechanism.conf's or the default */
  gboolean    read_only;
} BgLaunchParams;

BgVms      *bg_vms_new          (BgDaemon        *daemon,
                                 BgNetwork       *network,
                                 BgStorage       *storage);
void        bg_vms_free         (BgVms           *vms);
void        bg_vms_recover      (BgVms           *vms);
void        bg_vms_launch       (BgVms           *vms,
                                 uid_t            owner,
                                 BgLaunchParams  *params,
                                 BgVmmReadyFunc   done,
                                 gpointer         user_data);
char       *bg_vms_resolve_id   (BgVms           *vms,
                                 uid_t            caller,
                                 const char      *name_or_id);
gboolean    bg_vms_kill         (BgVms           *vms,
                                 BgResource      *vm,
                                 GError         **error);
void        bg_launch_params_clear (BgLaunchParams *params);

char       *bg_vm_config_vmm    (const char      *config_dir,
                                 guint           *timeout_ms);
const char *bg_vm_abstract_unix_guard (const char *config_dir);
gboolean    bg_vm_validate_id   (const char      *field,
                                 const char      *name,
                                 GError         **error);

G_END_DECLS
