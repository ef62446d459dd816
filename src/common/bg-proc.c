/* bg-proc.c: another process, known by a pidfd and its start time.
 *
 * A recorded PID is trusted only while the process that has it started
 * when the recorded one did, so a PID the kernel reused is never
 * signalled; and the check is made *after* the pidfd is taken, so the
 * process checked is the process a signal reaches.
 *
 * A zombie counts as gone everywhere: it has run its course, signals do
 * nothing to it, and its PID cannot be reused until it is reaped. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bg-fd.h"
#include "bg-proc.h"

/* A pidfd (close-on-exec) for @pid, or -1 with errno set (ESRCH: no
 * such process). */
int
bg_proc_open_pidfd (pid_t pid)
{
  if (pid <= 0)
    {
      errno = ESRCH;
      return -1;
    }
  return syscall (SYS_pidfd_open, pid, 0);
}

/* A pidfd for @pid if it is still the process that started at
 * @start_time (not a zombie); else -1 with errno ESRCH (or another errno
 * when no pidfd could be had at all, EMFILE say). */
int
bg_proc_open_if_same (pid_t   pid,
                      guint64 start_time)
{
  g_auto(BgFd) pidfd = -1;

  if (start_time == 0 || (pidfd = bg_proc_open_pidfd (pid)) < 0)
    {
      if (start_time == 0)
        errno = ESRCH;
      return -1;
    }
  if (bg_proc_get_start_time (pid) != start_time)
    {
      /* Survives the close on return: bg_fd_clear keeps errno. */
      errno = ESRCH;
      return -1;
    }
  return g_steal_fd (&pidfd);
}

/* 0, or -1 with errno set (ESRCH: it has exited). */
int
bg_proc_signal_pidfd (int pidfd,
                      int signo)
{
  return syscall (SYS_pidfd_send_signal, pidfd, signo, NULL, 0);
}

/* Whether the process behind @pidfd exits (zombies included) within
 * @timeout_ms; it need not be our child. */
gboolean
bg_proc_wait_pidfd (int   pidfd,
                    guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  struct pollfd pfd = { .fd = pidfd, .events = POLLIN };

  for (;;)
    {
      gint64 left = (deadline - g_get_monotonic_time () + 999) / 1000;
      int n = poll (&pfd, 1, (int) CLAMP (left, 0, G_MAXINT));

      if (n > 0)
        return TRUE;
      if (n == 0 || errno != EINTR)
        return FALSE;
    }
}

/* The process's start time (clock ticks since boot, field 22 of
 * /proc/PID/stat), or 0 if it is gone or a zombie. */
guint64
bg_proc_get_start_time (pid_t pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/stat", (int) pid);
  g_autofree char *text = NULL;
  g_auto(GStrv) fields = NULL;
  const char *after;
  guint64 start = 0;

  /* The name in parentheses may hold spaces and ')': the fields start
   * after the last ')'. */
  if (pid <= 0 || !g_file_get_contents (path, &text, NULL, NULL) || (after = strrchr (text, ')')) == NULL ||
      after[1] != ' ')
    return 0;
  fields = g_strsplit (after + 2, " ", -1);
  /* fields[0] is field 3, the state; field 22 is fields[19]. */
  if (g_strv_length (fields) < 20 || g_str_equal (fields[0], "Z") || g_str_equal (fields[0], "X") ||
      !g_ascii_string_to_unsigned (fields[19], 10, 0, G_MAXUINT64, &start, NULL))
    return 0;
  return start;
}

/* The real uid of @pid, or (uid_t) -1 if it is gone. Read from its
 * status, not from /proc/PID's owner: a process that is not dumpable
 * (a VMM) has root's /proc entries. */
uid_t
bg_proc_get_uid (pid_t pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/status", (int) pid);
  g_autofree char *text = NULL, *real = NULL;
  const char *line;
  guint64 uid;

  if (pid <= 0 || !g_file_get_contents (path, &text, NULL, NULL) ||
      (line = strstr (text, "\nUid:\t")) == NULL)
    return (uid_t) -1;
  line += strlen ("\nUid:\t");
  real = g_strndup (line, strcspn (line, "\t\n"));
  if (!g_ascii_string_to_unsigned (real, 10, 0, G_MAXUINT32, &uid, NULL))
    return (uid_t) -1;
  return (uid_t) uid;
}
