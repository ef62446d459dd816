/* bg-ready.h: waiting for a booted guest. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* TRUE once the guest is ready; *@agent_up gets what its agent reported
 * (BG_AGENT_UP_*), or 0 when it answered over SSH (no agent). @vsock:
 * the VM's vsock socket, NULL to try SSH only. */
gboolean  bg_guest_wait_ready      (const char    *address,
                                    guint16        port,
                                    const char * const *ssh_argv,
                                    const char    *vsock,
                                    guint          timeout_ms,
                                    const char    *console_log,
                                    guint32       *agent_up,
                                    GError       **error);

G_END_DECLS
