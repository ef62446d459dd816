/* proc.h: killing a jail's processes, with only that jail uid's
 * authority. Finding a process by pidfd and start time is bg-proc.h's. */
#pragma once

#include <sys/types.h>
#include <glib.h>

#include "bg-proc.h"

G_BEGIN_DECLS

gboolean bg_proc_is_jail_uid   (guint64  uid);
int      bg_pidfd_kill         (int      pidfd,
                                uid_t    uid);
gboolean bg_proc_kill_if_same  (pid_t    pid,
                                guint64  start_time,
                                uid_t    uid);

G_END_DECLS
