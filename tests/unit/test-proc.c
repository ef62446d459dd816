/* bg-proc: a process known by its pidfd and start time, as the mechanism
 * (its VMMs) and the CLI (background forwards) both use it. Zombies
 * count as gone, on both sides. */
#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include "../bg-test.h"
#include "bg-fd.h"
#include "bg-proc.h"

/* A child that waits until it is signalled. */
static pid_t
start_sleeper (void)
{
  pid_t pid = fork ();

  g_assert_cmpint (pid, >=, 0);
  if (pid == 0)
    {
      for (;;)
        pause ();
    }
  return pid;
}

/* Returns once @pid (already SIGKILLed) is a zombie, without reaping it. */
static void
wait_until_zombie (pid_t pid)
{
  siginfo_t info = { 0 };

  g_assert_cmpint (waitid (P_PID, pid, &info, WEXITED | WNOWAIT), ==, 0);
  g_assert_cmpint (info.si_pid, ==, pid);
}

static void
test_start_time_of_a_live_process_is_stable (void)
{
  guint64 a = bg_proc_get_start_time (getpid ());

  g_assert_cmpuint (a, >, 0);
  g_assert_cmpuint (bg_proc_get_start_time (getpid ()), ==, a);
  g_assert_cmpuint (bg_proc_get_uid (getpid ()), ==, getuid ());
  g_assert_cmpuint (bg_proc_get_start_time (0), ==, 0);
  g_assert_cmpuint (bg_proc_get_start_time (-1), ==, 0);
  g_assert_cmpuint (bg_proc_get_uid (0), ==, (uid_t) -1);
}

static void
test_open_if_same_refuses_another_start_time (void)
{
  guint64 start = bg_proc_get_start_time (getpid ());
  g_auto(BgFd) same = bg_proc_open_if_same (getpid (), start);
  int other;

  g_assert_cmpint (same, >=, 0);
  errno = 0;
  other = bg_proc_open_if_same (getpid (), start + 1);
  g_assert_cmpint (other, ==, -1);
  g_assert_cmpint (errno, ==, ESRCH);
  errno = 0;
  g_assert_cmpint (bg_proc_open_if_same (getpid (), 0), ==, -1);
  g_assert_cmpint (errno, ==, ESRCH);
  errno = 0;
  g_assert_cmpint (bg_proc_open_pidfd (0), ==, -1);
  g_assert_cmpint (errno, ==, ESRCH);
}

/* The deliberate choice both sides share: an exited, unreaped process
 * has no start time, so a record of it is dropped and it is never
 * signalled; its pidfd already says it exited. */
static void
test_a_zombie_counts_as_gone (void)
{
  pid_t pid = start_sleeper ();
  guint64 start = bg_proc_get_start_time (pid);
  g_auto(BgFd) pidfd = bg_proc_open_if_same (pid, start);
  int status;

  g_assert_cmpuint (start, >, 0);
  g_assert_cmpint (pidfd, >=, 0);
  g_assert_false (bg_proc_wait_pidfd (pidfd, 0));
  g_assert_cmpint (bg_proc_signal_pidfd (pidfd, SIGKILL), ==, 0);
  wait_until_zombie (pid);

  g_assert_cmpuint (bg_proc_get_start_time (pid), ==, 0);
  errno = 0;
  g_assert_cmpint (bg_proc_open_if_same (pid, start), ==, -1);
  g_assert_cmpint (errno, ==, ESRCH);
  g_assert_true (bg_proc_wait_pidfd (pidfd, 0));

  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  g_assert_true (WIFSIGNALED (status));
  g_assert_cmpint (bg_proc_signal_pidfd (pidfd, SIGKILL), ==, -1);
  g_assert_cmpint (errno, ==, ESRCH);
}

/* The CLI stops a forward it did not start (not its child): the pidfd
 * reports the exit all the same. */
static void
test_wait_sees_a_signalled_process_exit (void)
{
  pid_t pid = start_sleeper ();
  g_auto(BgFd) pidfd = bg_proc_open_if_same (pid, bg_proc_get_start_time (pid));
  int status;

  g_assert_cmpint (pidfd, >=, 0);
  g_assert_cmpint (bg_proc_signal_pidfd (pidfd, SIGTERM), ==, 0);
  g_assert_true (bg_proc_wait_pidfd (pidfd, bg_test_timeout (30) * 1000));
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  g_assert_true (WIFSIGNALED (status));
  g_assert_cmpint (WTERMSIG (status), ==, SIGTERM);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/proc/start-time-stable", test_start_time_of_a_live_process_is_stable);
  g_test_add_func ("/proc/open-if-same-refuses-another-start-time", test_open_if_same_refuses_another_start_time);
  g_test_add_func ("/proc/zombie-counts-as-gone", test_a_zombie_counts_as_gone);
  g_test_add_func ("/proc/wait-sees-exit", test_wait_sees_a_signalled_process_exit);
  return g_test_run ();
}
