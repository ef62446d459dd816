/* proc.c: killing a jail's processes.
 *
 * A running VMM is watched and killed through a pidfd. After a restart of
 * the mechanism only its recorded PID and start time are left; a PID is
 * trusted only while the process that has it still started when the
 * recorded one did (bg-proc.c), so a PID the kernel reused is never
 * signalled.
 *
 * The mechanism has no CAP_KILL, and never signals anything itself: a
 * VMM is signalled with the authority of its own jail uid, from a
 * short-lived child that has become that uid, and only a uid of the jail
 * range is ever taken on. So it can kill processes of a jail uid, and
 * nothing else (not root's, not a user's), whatever a record says.
 */
#include <errno.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bg-fd.h"
#include "jail.h"
#include "proc.h"

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

  if (!bg_proc_is_jail_uid (uid) || (pidfd = bg_proc_open_if_same (pid, start_time)) < 0)
    return FALSE;
  if (bg_proc_get_uid (pid) != uid)
    return FALSE;
  return bg_pidfd_kill (pidfd, uid) == 0;
}
