/* banger-init's steps, against a scratch tree in a mount namespace of
 * the test's own: the overlay it assembles, where writes go, and the
 * container data dirs that must not be on overlayfs. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <linux/magic.h>

#include "bg-init.h"

#include "../bg-test.h"

static void
test_cmdline (void)
{
  char v[64];
  const char *cmdline = "console=ttyS0 reboot=k root=/dev/vda ro init=/usr/libexec/banger/banger-init "
                        "banger.upper=/dev/vdc quiet\n";

  g_assert_cmpint (bg_init_cmdline_value (cmdline, "banger.upper", v, sizeof v), ==, 0);
  g_assert_cmpstr (v, ==, "/dev/vdc");
  g_assert_cmpint (bg_init_cmdline_value (cmdline, "root", v, sizeof v), ==, 0);
  g_assert_cmpstr (v, ==, "/dev/vda");
  g_assert_cmpint (bg_init_cmdline_value (cmdline, "banger", v, sizeof v), ==, -1);
  g_assert_cmpint (bg_init_cmdline_value (cmdline, "quiet", v, sizeof v), ==, -1);
  g_assert_cmpint (bg_init_cmdline_value (cmdline, "banger.upper", v, 4), ==, -1);
}

static void
test_blank_disk_is_told_from_ext4 (void)
{
  g_autofree char *dir = g_dir_make_tmp ("banger-init-XXXXXX", NULL);
  g_autofree char *blank = g_build_filename (dir, "blank", NULL);
  g_autofree char *ext4 = g_build_filename (dir, "ext4", NULL);
  const char *mkfs[] = { "mke2fs", "-q", "-t", "ext4", ext4, "16M", NULL };
  g_autoptr(GError) error = NULL;
  int status;
  int fd = open (blank, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

  g_assert_no_errno (ftruncate (fd, 16 << 20));
  close (fd);
  bg_test_spawn_sync (NULL, mkfs, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, &status, &error);
  g_assert_no_error (error);
  bg_assert_exited (status, 0);
  g_assert_cmpint (bg_init_has_filesystem (blank), ==, 0);
  g_assert_cmpint (bg_init_has_filesystem (ext4), ==, 1);
  g_assert_cmpint (bg_init_has_filesystem ("/nonexistent"), ==, -1);
  g_unlink (blank);
  g_unlink (ext4);
  g_rmdir (dir);
}

static void
write_text (const char *path, const char *text)
{
  g_assert_true (g_file_set_contents (path, text, -1, NULL));
}

/* In a child with a mount namespace of its own, so nothing outlives it. */
static void
assemble_in_scratch (void)
{
  g_autofree char *top = g_dir_make_tmp ("banger-init-XXXXXX", NULL);
  g_autofree char *base = g_build_filename (top, "base", NULL);
  g_autofree char *upper = g_build_filename (top, "upper", NULL);
  g_autofree char *root = g_build_filename (top, "root", NULL);
  g_autofree char *text = NULL;
  char why[8192];
  struct statfs fs;

  g_assert_no_errno (unshare (CLONE_NEWNS));
  g_assert_no_errno (mount ("none", "/", NULL, MS_REC | MS_PRIVATE, NULL));
  g_assert_no_errno (mount ("tmpfs", top, "tmpfs", 0, "mode=0755"));
  g_assert_no_errno (g_mkdir (base, 0755));
  g_assert_no_errno (g_mkdir (upper, 0755));
  /* The image: a root with /etc and /var/lib, mounted read-only. */
  g_assert_no_errno (g_mkdir_with_parents (g_build_filename (base, "etc", NULL), 0755));
  g_assert_no_errno (g_mkdir_with_parents (g_build_filename (base, "var/lib", NULL), 0755));
  write_text (g_build_filename (base, "etc/hostname", NULL), "image\n");
  g_assert_no_errno (mount (base, base, NULL, MS_BIND, NULL));
  g_assert_no_errno (mount (NULL, base, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL));
  /* The VM's disk: another filesystem. */
  g_assert_no_errno (mount ("tmpfs", upper, "tmpfs", 0, "mode=0755"));

  if (bg_init_assemble (base, upper, root, why, sizeof why) < 0)
    g_error ("%s", why);

  /* The image shows through; writes land on the VM's disk only. */
  g_assert_true (g_file_get_contents (g_build_filename (root, "etc/hostname", NULL), &text, NULL, NULL));
  g_assert_cmpstr (text, ==, "image\n");
  write_text (g_build_filename (root, "etc/hostname", NULL), "vm\n");
  write_text (g_build_filename (root, "etc/new", NULL), "written in the VM\n");
  g_clear_pointer (&text, g_free);
  g_assert_true (g_file_get_contents (g_build_filename (base, "etc/hostname", NULL), &text, NULL, NULL));
  g_assert_cmpstr (text, ==, "image\n");
  g_assert_false (g_file_test (g_build_filename (base, "etc/new", NULL), G_FILE_TEST_EXISTS));
  g_assert_true (g_file_test (g_build_filename (upper, BG_INIT_UPPER_ROOT "/etc/new", NULL), G_FILE_TEST_EXISTS));
  g_assert_no_errno (statfs (root, &fs));
  g_assert_cmpuint (fs.f_type, ==, OVERLAYFS_SUPER_MAGIC);

  /* Container engines' data: directly on the VM's disk, not overlayfs. */
  for (int i = 0; bg_init_data_dirs[i]; i++)
    {
      g_autofree char *dir = g_build_filename (root, bg_init_data_dirs[i], NULL);
      g_autofree char *file = g_build_filename (dir, "layer", NULL);
      g_autofree char *on_disk = g_build_filename (upper, BG_INIT_UPPER_DATA, bg_init_data_dirs[i], "layer", NULL);

      g_assert_no_errno (statfs (dir, &fs));
      g_assert_cmpuint (fs.f_type, ==, TMPFS_MAGIC);
      write_text (file, "data\n");
      g_assert_true (g_file_test (on_disk, G_FILE_TEST_EXISTS));
    }
}

static void
test_assemble_overlay_and_data_dirs (void)
{
  int status;
  pid_t pid;

  if (geteuid () != 0)
    {
      g_test_skip ("needs root: it mounts an overlay in a mount namespace of its own");
      return;
    }
  pid = fork ();
  g_assert_cmpint (pid, >=, 0);
  if (pid == 0)
    {
      assemble_in_scratch ();
      _exit (0);
    }
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  bg_assert_exited (status, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/init/cmdline", test_cmdline);
  g_test_add_func ("/init/blank-disk-is-told-from-ext4", test_blank_disk_is_told_from_ext4);
  g_test_add_func ("/init/assemble-overlay-and-data-dirs", test_assemble_overlay_and_data_dirs);
  return g_test_run ();
}
