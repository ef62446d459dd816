/* bg-vm-control.h: a VM's state as found, and what changes it once it
 * exists: stop, remove, pause. */
#pragma once

#include "bg-cli.h"
#include "bg-state.h"

G_BEGIN_DECLS

gboolean  bg_vm_stop          (BgCli        *cli,
                               const char   *name,
                               gboolean      force,
                               guint         timeout_s,
                               GError      **error);
gboolean  bg_vm_remove        (BgCli        *cli,
                               const char   *name,
                               gboolean      force,
                               GError      **error);
gboolean  bg_vm_set_paused    (const char   *name,
                               gboolean      paused,
                               GError      **error);
BgVmState bg_vm_probe_state   (BgVmRecord   *record);
/* Running, paused or starting: a VMM is there. */
gboolean  bg_vm_state_is_live (BgVmState     state);
/* An address and not known stopped: vm forward and vm cp try it. */
gboolean  bg_vm_may_answer    (BgVmRecord   *record,
                               BgVmState     state);
gboolean  bg_vm_mark_stopped  (BgStateStore *store,
                               const char   *name,
                               GError      **error);

G_END_DECLS
