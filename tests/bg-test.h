/* bg-test.h: one factor for every bound a test waits within.
 *
 * A bound that holds on an idle machine fires on a loaded one (two cores,
 * another build beside the tests) or under the sanitizers, which make
 * everything several times slower. So no test waits a bare fixed time:
 * each bound goes through bg_test_timeout(), which multiplies it by
 * $BANGER_TEST_TIMEOUT_SCALE (1 unless set) and by 3 in a build with
 * AddressSanitizer. tools/test gives meson's own timeouts the same factor.
 *
 * A child's end, read whole: a child killed by a signal (a failed
 * assertion in it aborts it) must never read as an exit status.
 *
 * And system programs found the way banger finds them (bg_program_find:
 * PATH, then the system directories), since a login user's PATH on
 * Debian has no /usr/sbin, where mke2fs and fsck.fat live.
 *
 * And a file dated before this boot, as one a power loss left. */
#pragma once

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <glib.h>

#if defined(__SANITIZE_ADDRESS__)
# define BG_TEST_SANITIZER_SCALE 3.0
#elif defined(__has_feature)
# if __has_feature(address_sanitizer)
#  define BG_TEST_SANITIZER_SCALE 3.0
# endif
#endif
#ifndef BG_TEST_SANITIZER_SCALE
# define BG_TEST_SANITIZER_SCALE 1.0
#endif

static inline double
bg_test_scale (void)
{
  const char *env = g_getenv ("BANGER_TEST_TIMEOUT_SCALE");
  double user = env ? g_ascii_strtod (env, NULL) : 1.0;

  return (user >= 1.0 ? user : 1.0) * BG_TEST_SANITIZER_SCALE;
}

/* @seconds, scaled. */
static inline guint
bg_test_timeout (guint seconds)
{
  return (guint) (seconds * bg_test_scale () + 0.999);
}

/* @ms, scaled. */
static inline guint
bg_test_timeout_ms (guint ms)
{
  return (guint) (ms * bg_test_scale () + 0.999);
}

/* A monotonic deadline @seconds (scaled) from now. */
static inline gint64
bg_test_deadline (guint seconds)
{
  return g_get_monotonic_time () + (gint64) bg_test_timeout (seconds) * G_USEC_PER_SEC;
}

/* A wait status as a shell shows it: the exit status, or 128 + the
 * signal that killed the child. */
static inline int
bg_test_exit_code (int status)
{
  if (WIFEXITED (status))
    return WEXITSTATUS (status);
  if (WIFSIGNALED (status))
    return 128 + WTERMSIG (status);
  return -1;
}

/* The child whose wait status is @status exited with @code; if it was
 * killed instead, the test fails naming the signal. */
#define bg_assert_exited(status, code) \
  G_STMT_START { \
    int _bg_s = (status); \
    if (WIFSIGNALED (_bg_s)) \
      g_error ("the child was killed by signal %d (%s), expected exit status %d", WTERMSIG (_bg_s), \
               strsignal (WTERMSIG (_bg_s)), (int) (code)); \
    if (!WIFEXITED (_bg_s)) \
      g_error ("the child neither exited nor was killed (wait status %#x)", _bg_s); \
    g_assert_cmpint (WEXITSTATUS (_bg_s), ==, (code)); \
  } G_STMT_END

/* banger's own lookup (src/cli/util/bg-spawn.c; link libbanger-cli). */
char *bg_program_find (const char *name);

/* g_spawn_sync() with argv[0] found by bg_program_find(), never by
 * G_SPAWN_SEARCH_PATH alone. */
static inline gboolean
bg_test_spawn_sync (const char          *dir,
                    const char * const  *argv,
                    char               **envp,
                    GSpawnFlags          flags,
                    char               **out,
                    char               **err,
                    int                 *status,
                    GError             **error)
{
  g_autofree char *path = bg_program_find (argv[0]);
  g_autofree const char **copy = NULL;
  guint n = g_strv_length ((char **) argv);

  if (path == NULL)
    {
      g_set_error (error, G_SPAWN_ERROR, G_SPAWN_ERROR_NOENT,
                   "%s not found on PATH (%s) nor in /usr/sbin, /sbin, /usr/bin, /bin", argv[0], g_getenv ("PATH"));
      return FALSE;
    }
  copy = g_new0 (const char *, n + 1);
  memcpy (copy, argv, n * sizeof *copy);
  copy[0] = path;
  return g_spawn_sync (dir, (char **) copy, envp, flags & ~G_SPAWN_SEARCH_PATH, NULL, NULL, out, err, status, error);
}

/* @path's mtime set to an hour before this boot, as a file written
 * before a power loss has it when the machine is up again. */
static inline void
bg_test_written_before_boot (const char *path)
{
  struct timespec boot, times[2];

  g_assert_cmpint (clock_gettime (CLOCK_BOOTTIME, &boot), ==, 0);
  times[0].tv_sec = times[1].tv_sec = g_get_real_time () / G_USEC_PER_SEC - boot.tv_sec - 3600;
  times[0].tv_nsec = times[1].tv_nsec = 0;
  g_assert_cmpint (utimensat (AT_FDCWD, path, times, AT_SYMLINK_NOFOLLOW), ==, 0);
}
