/* proc.h: processes identified without trusting a bare PID. */
#pragma once

#include <sys/types.h>
#include <glib.h>

G_BEGIN_DECLS

guint64  bg_proc_start_time    (pid_t    pid);
uid_t    bg_proc_uid           (pid_t    pid);
gboolean bg_proc_is_jail_uid   (guint64  uid);
int      bg_pidfd_open         (pid_t    pid);
int      bg_pidfd_kill         (int      pidfd,
                                uid_t    uid);
gboolean bg_proc_kill_if_same  (pid_t    pid,
                                guint64  start_time,
                                uid_t    uid);

G_END_DECLS
