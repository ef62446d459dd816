/* daemon.h: the hub — bus name, object, registry, idle exit — and the
 * resource kinds the subsystems register with it. */
#pragma once

#include <gio/gio.h>
#include <polkit/polkit.h>

#include "bg-dbus-generated.h"
#include "kind.h"
#include "types.h"

G_BEGIN_DECLS

/* Per-user limits, [limits] in mechanism.conf; root has none. */
typedef struct {
  guint    pending_calls;     /* calls waiting for polkit */
  guint    auth_timeout_s;    /* an agent's time to answer */
  guint    vms;               /* running VMMs */
  guint    taps;
  guint    loops;             /* AttachLoop devices */
  guint64  boot_file_bytes;   /* kernel, initrd */
  guint64  console_bytes;     /* a VM's console log */
} BgLimits;

#define BG_LIMITS_DEFAULT { 4, 120, 32, 64, 32, G_GUINT64_CONSTANT (512) << 20, G_GUINT64_CONSTANT (8) << 20 }

typedef struct {
  const char *run_dir;        /* registry and runtime files */
  const char *config_dir;     /* mechanism.conf, network.conf */
  const char *state_dir;      /* jails */
  guint       idle_timeout;   /* seconds; 0 = never exit */
  gboolean    replace;
  BgLimits    limits;
} BgDaemonOptions;

/* What the subsystem that makes a kind of resource does for the hub: it
 * checks a caller-supplied name for it and undoes one (tolerating that it
 * is already gone, as after a crash or a reboot). The kind's fixed
 * properties are in kind.c's table. */
struct _BgKindOps {
  BgKind      kind;
  const char *action;
  gboolean  (*validate_name) (const char  *field,
                              const char  *name,
                              GError     **error);
  gboolean  (*release)       (gpointer     self,
                              BgResource  *resource,
                              GError     **error);
};

BgDaemon        *bg_daemon_new              (const BgDaemonOptions *options,
                                             GError               **error);
void             bg_daemon_free             (BgDaemon              *daemon);
void             bg_daemon_reconcile        (BgDaemon              *daemon);
int              bg_daemon_run              (BgDaemon              *daemon);
void             bg_daemon_hold             (BgDaemon              *daemon);
void             bg_daemon_release          (BgDaemon              *daemon);
PolkitAuthority *bg_daemon_get_authority    (BgDaemon              *daemon);
const BgLimits  *bg_daemon_get_limits       (BgDaemon              *daemon);
void             bg_daemon_subscribe        (BgDaemon              *daemon,
                                             GDBusConnection       *connection,
                                             const char            *sender,
                                             uid_t                  uid);
void             bg_daemon_emit_vm_exited   (BgDaemon              *daemon,
                                             const char            *vm_name,
                                             uid_t                  owner,
                                             int                    status);
guint            bg_daemon_count_pending    (BgDaemon              *daemon,
                                             uid_t                  uid,
                                             int                    delta);
guint            bg_daemon_count_owned      (BgDaemon              *daemon,
                                             uid_t                  owner,
                                             BgKind                 kind);
guint            bg_daemon_get_limit        (BgDaemon              *daemon,
                                             BgKind                 kind);
gboolean         bg_daemon_check_limit      (BgDaemon              *daemon,
                                             uid_t                  owner,
                                             BgKind                 kind,
                                             GError               **error);
BgRegistry      *bg_daemon_get_registry     (BgDaemon              *daemon);
void             bg_daemon_remember_caller  (BgDaemon              *daemon,
                                             const char            *unique_name,
                                             uid_t                  uid);
gboolean         bg_daemon_lookup_caller    (BgDaemon              *daemon,
                                             const char            *unique_name,
                                             uid_t                 *uid);
BgMechanism1    *bg_daemon_get_skeleton     (BgDaemon              *daemon);
const char      *bg_daemon_get_config_dir   (BgDaemon              *daemon);
const char      *bg_daemon_get_run_dir      (BgDaemon              *daemon);
const char      *bg_daemon_get_state_dir    (BgDaemon              *daemon);
void             bg_daemon_add_kind         (BgDaemon              *daemon,
                                             const BgKindOps       *ops,
                                             gpointer               self);
const BgKindOps *bg_daemon_lookup_kind      (BgDaemon              *daemon,
                                             BgKind                 kind);
gboolean         bg_daemon_release_resource (BgDaemon              *daemon,
                                             BgResource            *resource,
                                             GError               **error);
void             bg_daemon_test_hook        (BgDaemon              *daemon,
                                             const char            *step);
void             bg_daemon_test_pause       (BgDaemon              *daemon,
                                             const char            *step);
void             bg_daemon_test_count       (BgDaemon              *daemon,
                                             const char            *step);

G_END_DECLS
