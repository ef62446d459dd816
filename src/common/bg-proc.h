/* bg-proc.h: another process, known by a pidfd and its start time, never
 * by a bare PID. Used by the mechanism (its VMMs) and the CLI (its
 * background forwards). */
#pragma once

#include <sys/types.h>
#include <glib.h>

G_BEGIN_DECLS

int      bg_proc_open_pidfd     (pid_t    pid);
int      bg_proc_open_if_same   (pid_t    pid,
                                 guint64  start_time);
int      bg_proc_signal_pidfd   (int      pidfd,
                                 int      signo);
gboolean bg_proc_wait_pidfd     (int      pidfd,
                                 guint    timeout_ms);
guint64  bg_proc_get_start_time (pid_t    pid);
uid_t    bg_proc_get_uid        (pid_t    pid);

G_END_DECLS
