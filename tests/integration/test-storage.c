/* Disks for real: reflink copies on an XFS filesystem made for the test,
 * and loop devices attached by the mechanism from users' fds. */
#include <fcntl.h>
#include <pwd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <signal.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include "bg-disk.h"
#include "harness.h"

typedef struct {
  BgHarness *h;
  char      *files;
} Fixture;

static void
setup (Fixture *f, gconstpointer data)
{
  struct passwd *pw = getpwnam (BG_TEST_USER_A);

  f->h = bg_harness_start (60);
  bg_harness_set_group_rule (f->h, TRUE);
  f->files = g_build_filename (f->h->tmp, "files-a", NULL);
  g_assert_no_errno (g_mkdir (f->files, 0700));
  g_assert_no_errno (chown (f->files, pw->pw_uid, pw->pw_gid));
}

static void
teardown (Fixture *f, gconstpointer data)
{
  bg_harness_stop (f->h);
  g_free (f->files);
}

static char *
user_file (Fixture *f, const char *name, gsize size)
{
  struct passwd *pw = getpwnam (BG_TEST_USER_A);
  char *path = g_build_filename (f->files, name, NULL);
  int fd = open (path, O_RDWR | O_CREAT | O_EXCL, 0600);

  g_assert_cmpint (fd, >=, 0);
  g_assert_no_errno (ftruncate (fd, size));
  g_assert_no_errno (pwrite (fd, "banger", 6, 0) == 6 ? 0 : -1);
  close (fd);
  g_assert_no_errno (chown (path, pw->pw_uid, pw->pw_gid));
  return path;
}

static void
test_reflink_copies_in_constant_space (Fixture *f, gconstpointer data)
{
  g_autofree char *img = g_build_filename (f->h->tmp, "xfs.img", NULL);
  g_autofree char *mnt = g_build_filename (f->h->tmp, "xfs", NULL);
  g_autofree char *opts = NULL;
  g_autofree char *base = NULL, *disk = NULL;
  g_autofree guint8 *chunk = g_malloc (8 << 20);
  g_autoptr(GError) error = NULL;
  struct statvfs before, after;
  BgDiskMode used;
  int fd, status;

  if (g_find_program_in_path ("mkfs.xfs") == NULL)
    {
      g_test_skip ("mkfs.xfs (xfsprogs) is not installed");
      return;
    }
  fd = open (img, O_RDWR | O_CREAT, 0600);
  g_assert_no_errno (ftruncate (fd, 3ll << 30));
  close (fd);
  {
    const char *argv[] = { "mkfs.xfs", "-q", "-m", "reflink=1", img, NULL };
    bg_harness_run_argv (argv, NULL, &status);
    g_assert_cmpint (status, ==, 0);
  }
  g_assert_no_errno (g_mkdir (mnt, 0755));
  {
    /* mount(8) sets up the loop device; we are in the harness's private
     * mount namespace, so the host never sees this mount. */
    const char *argv[] = { "mount", "-o", "loop", img, mnt, NULL };
    bg_harness_run_argv (argv, NULL, &status);
    g_assert_cmpint (status, ==, 0);
  }

  /* A 1 GiB image of real data. */
  base = g_build_filename (mnt, "base.ext4", NULL);
  fd = open (base, O_RDWR | O_CREAT, 0600);
  memset (chunk, 0x5a, 8 << 20);
  for (int i = 0; i < 128; i++)
    g_assert_cmpint (write (fd, chunk, 8 << 20), ==, 8 << 20);
  fsync (fd);
  close (fd);

  disk = g_build_filename (mnt, "vm.disk", NULL);
  g_assert_no_errno (statvfs (mnt, &before));
  g_assert_true (bg_disk_create (base, disk, BG_DISK_MODE_AUTO, 0, &used, NULL, &error));
  g_assert_no_error (error);
  g_assert_no_errno (statvfs (mnt, &after));
  g_assert_cmpint (used, ==, BG_DISK_MODE_REFLINK);
  /* 1 GiB "copied" for (almost) no space: the extents are shared. */
  g_assert_cmpint ((gint64) (before.f_bfree - after.f_bfree) * before.f_bsize, <, 16 << 20);

  {
    const char *argv[] = { "umount", mnt, NULL };
    bg_harness_run_argv (argv, NULL, &status);
    g_assert_cmpint (status, ==, 0);
  }
}

static char *
attach (Fixture *f, const char *user, const char *path, gboolean ro, BgCallResult **result)
{
  g_autofree char *fd = g_strdup_printf ("--fd=%s%s", path, ro ? "" : ":rw");
  BgCallResult *r = bg_harness_call (f->h, user, "AttachLoop", ro ? "(@h 0, true)" : "(@h 0, false)", fd, NULL);
  g_auto(GStrv) parts = NULL;

  *result = r;
  if (!r->ok)
    return NULL;
  parts = g_strsplit (r->reply, "'", -1);
  return g_strdup (parts[1]);
}

static void
test_attach_loop_from_a_users_fd (Fixture *f, gconstpointer data)
{
  g_autofree char *file = user_file (f, "disk.img", 8 << 20);
  g_autoptr(BgCallResult) r = NULL;
  g_autoptr(BgCallResult) list = NULL;
  g_autoptr(BgCallResult) by_b = NULL;
  g_autoptr(BgCallResult) by_a = NULL;
  g_autofree char *device = attach (f, BG_TEST_USER_A, file, FALSE, &r);
  g_autofree char *backing = NULL, *sysfs = NULL, *args = NULL;

  bg_assert_call_ok (r);
  g_assert_true (g_str_has_prefix (device, "/dev/loop"));
  sysfs = g_strdup_printf ("/sys/block/%s/loop/backing_file", device + 5);
  g_assert_true (g_file_get_contents (sysfs, &backing, NULL, NULL));
  g_assert_cmpstr (g_strstrip (backing), ==, file);

  list = bg_harness_call (f->h, BG_TEST_USER_A, "ListResources", "({'kind': <'loop'>},)", NULL);
  bg_assert_call_ok (list);
  g_assert_nonnull (strstr (list->reply, device + 5));

  args = g_strdup_printf ("('%s',)", device);
  by_b = bg_harness_call (f->h, BG_TEST_USER_B, "DetachLoop", args, NULL);
  bg_assert_call_error (by_b, "org.banger.Mechanism1.Error.NotOwner", NULL);
  g_assert_true (g_file_test (sysfs, G_FILE_TEST_EXISTS));

  by_a = bg_harness_call (f->h, BG_TEST_USER_A, "DetachLoop", args, NULL);
  bg_assert_call_ok (by_a);
  g_assert_false (g_file_test (sysfs, G_FILE_TEST_EXISTS));
}

static void
test_unreadable_file_cannot_be_attached (Fixture *f, gconstpointer data)
{
  g_autoptr(BgCallResult) r = NULL;
  g_autofree char *device = attach (f, BG_TEST_USER_A, "/etc/shadow", TRUE, &r);

  /* The user cannot produce the fd, so the mechanism never sees a path. */
  g_assert_null (device);
  g_assert_true (r->open_failed);
}

static void
test_read_only_base_cannot_be_written (Fixture *f, gconstpointer data)
{
  g_autofree char *file = user_file (f, "base.img", 8 << 20);
  g_autoptr(BgCallResult) r = NULL;
  g_autoptr(BgCallResult) wrong = NULL;
  g_autofree char *device = attach (f, BG_TEST_USER_A, file, TRUE, &r);
  g_autofree char *wrong_fd = g_strdup_printf ("--fd=%s", file);
  g_autofree char *args = NULL;
  g_autoptr(BgCallResult) detach = NULL;
  int fd;
  ssize_t n = -1;

  bg_assert_call_ok (r);
  /* Even root cannot write through it. */
  fd = open (device, O_WRONLY | O_CLOEXEC);
  if (fd >= 0)
    {
      n = pwrite (fd, "x", 1, 0);
      if (n == 1)
        n = fsync (fd) == 0 ? 1 : -1;
      close (fd);
    }
  g_assert_cmpint (n, <, 0);

  /* A writable attach needs a writable fd. */
  wrong = bg_harness_call (f->h, BG_TEST_USER_A, "AttachLoop", "(@h 0, false)", wrong_fd, NULL);
  bg_assert_call_error (wrong, "org.banger.Mechanism1.Error.InvalidArgument", "fd: must be opened read-write");

  args = g_strdup_printf ("('%s',)", device);
  detach = bg_harness_call (f->h, BG_TEST_USER_A, "DetachLoop", args, NULL);
  bg_assert_call_ok (detach);
}

/* The registry names a device, not what it is attached to: after a
 * crash freed the user's loop device and root attached a file of its own
 * to it, the restarted mechanism must not detach root's. */
static void
test_recovery_leaves_a_reused_loop_alone (Fixture *f, gconstpointer data)
{
  g_autofree char *file = user_file (f, "mine.img", 8 << 20);
  g_autofree char *roots = g_build_filename (f->h->tmp, "roots.img", NULL);
  g_autoptr(BgCallResult) r = NULL, list = NULL;
  g_autofree char *device = attach (f, BG_TEST_USER_A, file, TRUE, &r);
  g_autofree char *sysfs = NULL, *backing = NULL, *out = NULL;
  GPid mech = bg_harness_mechanism_pid (f->h);
  int status;

  bg_assert_call_ok (r);
  /* The mechanism dies; autoclear frees the device with its last fd. */
  kill (mech, SIGKILL);
  g_assert_true (bg_harness_wait_name_gone (f->h, 20));
  sysfs = g_strdup_printf ("/sys/block/%s/loop/backing_file", device + 5);
  for (gint64 end = bg_test_deadline (10); g_get_monotonic_time () < end && g_file_test (sysfs, G_FILE_TEST_EXISTS);)
    g_usleep (50 * 1000);
  g_assert_false (g_file_test (sysfs, G_FILE_TEST_EXISTS));

  /* Root takes the very device for a file of its own. */
  {
    g_autofree char *zeros = g_malloc0 (1 << 20);
    const char *losetup[] = { "losetup", device, roots, NULL };
    g_assert_true (g_file_set_contents (roots, zeros, 1 << 20, NULL));
    bg_harness_run_argv (losetup, &out, &status);
    g_assert_cmpint (status, ==, 0);
  }

  /* Any call activates the mechanism again, which recovers its registry. */
  list = bg_harness_call (f->h, NULL, "ListResources", "({'all-users': <true>, 'kind': <'loop'>},)", NULL);
  bg_assert_call_ok (list);
  g_assert_null (strstr (list->reply, device + 5));
  g_assert_true (g_file_get_contents (sysfs, &backing, NULL, NULL));
  g_assert_cmpstr (g_strstrip (backing), ==, roots);
  {
    const char *detach[] = { "losetup", "-d", device, NULL };
    bg_harness_run_argv (detach, NULL, &status);
    g_assert_cmpint (status, ==, 0);
  }
}

static void
add_tests (void)
{
#define ADD(path, fn) g_test_add (path, Fixture, NULL, setup, fn, teardown)
  ADD ("/storage/reflink-copies-in-constant-space", test_reflink_copies_in_constant_space);
  ADD ("/storage/attach-loop-from-a-users-fd", test_attach_loop_from_a_users_fd);
  ADD ("/storage/unreadable-file-cannot-be-attached", test_unreadable_file_cannot_be_attached);
  ADD ("/storage/read-only-base-cannot-be-written", test_read_only_base_cannot_be_written);
  ADD ("/storage/recovery-leaves-a-reused-loop-alone", test_recovery_leaves_a_reused_loop_alone);
}

int
main (int argc, char **argv)
{
  return bg_harness_main (&argc, &argv, add_tests);
}
