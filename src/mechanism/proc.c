/* proc.c: pidfds, and PIDs checked by their start time.
 *
 * A running VMM is watched and killed through a pidfd. After a restart of
 * the mechanism only its recorded PID and start time are left; a PID is
 * trusted only while the process that has it still started when the
 * recorded one did, so a PID the kernel reused is never signalled.
 *
 * The mechanism has no CAP_KILL, and never signals anything itself: a
 * VMM is signalled with the authority of its own jail uid, from a
 * short-lived child that has become that uid, and only a uid of the jail
 * range is ever taken on. So it can kill processes of a jail uid, and
 * nothing else (not root's, not a user's), whatever a record says.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bg-fd.h"
#include "jail.h"
#include "proc.h"

int
bg_pidfd_open (pid_t pid)
{
  return syscall (SYS_pidfd_open, pid, 0);
}

gboolean
bg_proc_is_jail_uid (guint64 uid)
{
  return uid >= BG_JAIL_UID_BASE && uid < (guint64) BG_JAIL_UID_BASE + BG_JAIL_UID_COUNT;
}

/* SIGKILLs the process behind @pidfd, as the jail uid @uid: from a child
 * that has become @uid, so the signal reaches only what that uid may
 * signal. Any other @uid is refused (EPERM) without a signal sent. 0, or
 * -1 with errno set. */
int
bg_pidfd_kill (int   pidfd,
               uid_t uid)
{
  pid_t child;
  int status;

  if (!bg_proc_is_jail_uid (uid))
    {
      errno = EPERM;
      return -1;
    }
  child = fork ();
  if (child < 0)
    return -1;
  if (child == 0)
    {
      /* Only async-signal-safe calls here: raw system calls, then _exit. */
      if (syscall (SYS_setresuid, uid, uid, uid) < 0)
        _exit (EPERM);
      _exit (syscall (SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0) == 0 ? 0 : errno);
    }
  while (waitpid (child, &status, 0) < 0)
    if (errno != EINTR)
      return -1;
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    {
      errno = WIFEXITED (status) ? WEXITSTATUS (status) : ECHILD;
      return -1;
    }
  return 0;
}

/* The process's start time (clock ticks since boot), or 0 if it is gone. */
guint64
bg_proc_start_time (pid_t pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/stat", (int) pid);
  g_autofree char *text = NULL;
  g_auto(GStrv) fields = NULL;
  const char *after;
  guint64 start = 0;

  if (pid <= 0 || !g_file_get_contents (path, &text, NULL, NULL) || (after = strrchr (text, ')')) == NULL)
    return 0;
  fields = g_strsplit (after + 2, " ", -1);
  /* field 22 overall is the 20th after "pid (comm)" */
  if (g_strv_length (fields) > 19)
    g_ascii_string_to_unsigned (fields[19], 10, 0, G_MAXUINT64, &start, NULL);
  return start;
}

/* The real uid of @pid, or (uid_t) -1 if it is gone. Read from its
 * status, not from /proc/PID's owner: a VMM is not dumpable, which makes
 * its /proc entries root's. */
uid_t
bg_proc_uid (pid_t pid)
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

/* SIGKILLs @pid, as the jail uid @uid, if it is still the process that
 * started at @start_time and runs as @uid; TRUE if it was (and so was
 * killed). The pidfd is taken first, so the process checked is the
 * process signalled. */
gboolean
bg_proc_kill_if_same (pid_t   pid,
                      guint64 start_time,
                      uid_t   uid)
{
  g_auto(BgFd) pidfd = -1;

  if (pid <= 0 || start_time == 0 || !bg_proc_is_jail_uid (uid) || (pidfd = bg_pidfd_open (pid)) < 0)
    return FALSE;
  if (bg_proc_start_time (pid) != start_time || bg_proc_uid (pid) != uid)
    return FALSE;
  return bg_pidfd_kill (pidfd, uid) == 0;
}
