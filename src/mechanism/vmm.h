/* vmm.h: one jailed VMM while it runs — its process, its output and the
 * hand-over of its sockets. */
#pragma once

#include <sys/types.h>

#include "types.h"

G_BEGIN_DECLS

/* Called once: with @error NULL when the API socket is the caller's, or
 * with @error (taken) when the launch failed before that. */
typedef void (*BgVmmReadyFunc) (BgVmm    *vmm,
                                GError   *error,
                                gpointer  user_data);
/* Called once when the process has exited; @status is its exit status
 * (128 + signal), -1 when unknown (an adopted VMM). */
typedef void (*BgVmmExitFunc)  (BgVmm    *vmm,
                                int       status,
                                gpointer  user_data);

struct _BgVmm {
  char     *id;           /* u<uid>-<name>: the registry entry */
  char     *vm_name;
  uid_t     owner;
  uid_t     uid;          /* the jail uid it runs as: it is signalled as that uid */
  BgJail   *jail;         /* NULL for a VMM adopted after a restart */
  GPid      pid;
  gboolean  is_child;
  int       loop_fd;      /* the root disk's loop device, held until exit */
  int       config_loop_fd;
  gboolean  base_shared;  /* layered: /rootfs is a shared base, /upper its own disk */
  gboolean  has_initrd;   /* the jail holds /initrd */
  char     *tap;
  guint64   console_max;  /* the console log is emptied past this size; 0: no limit */
  BgDaemon *daemon;       /* for the test hooks only; may be NULL */
};

BgVmm   *bg_vmm_new            (const char      *id,
                                const char      *vm_name,
                                uid_t            owner,
                                uid_t            uid,
                                BgVmmExitFunc    on_exit,
                                gpointer         user_data);
void     bg_vmm_free           (BgVmm           *vmm);
gboolean bg_vmm_watch_sockets  (BgVmm           *vmm,
                                GError         **error);
gboolean bg_vmm_watch_process  (BgVmm           *vmm,
                                int              output_fd,
                                int              console_fd,
                                GError         **error);
void     bg_vmm_wait_ready     (BgVmm           *vmm,
                                guint            timeout_ms,
                                BgVmmReadyFunc   func,
                                gpointer         user_data);
void     bg_vmm_fail_ready     (BgVmm           *vmm,
                                GError          *error);
gboolean bg_vmm_kill           (BgVmm           *vmm,
                                GError         **error);
void     bg_vmm_reap           (BgVmm           *vmm);
char    *bg_vmm_tail           (BgVmm           *vmm);

G_END_DECLS
