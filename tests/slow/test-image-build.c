/* banger image build for real, from the Debian mirror this machine
 * reaches, as an unprivileged user with a subordinate uid range. */
#include <elf.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <gio/gio.h>

#include "harness.h"

#define USER "bg-test-build"

static char *tmp;
static char *home;

static void
run_ok (const char * const *argv, char **out)
{
  /* Output not asked for must not reach the TAP stream. */
  GSpawnFlags flags = G_SPAWN_SEARCH_PATH | G_SPAWN_STDERR_TO_DEV_NULL | (out ? 0 : G_SPAWN_STDOUT_TO_DEV_NULL);
  g_autoptr(GError) error = NULL;
  int status;

  if (!g_spawn_sync (NULL, (char **) argv, NULL, flags, NULL, NULL,
                     out, NULL, &status, &error) || !g_spawn_check_wait_status (status, NULL))
    g_error ("%s failed", argv[0]);
}

static void
cleanup_user (void)
{
  const char *del[] = { "userdel", USER, NULL };
  if (getpwnam (USER) != NULL)
    g_spawn_sync (NULL, (char **) del, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, NULL,
                  NULL, NULL, NULL);
}

static void
new_pgrp (gpointer data)
{
  setpgid (0, 0);
}

static GPid
spawn_banger (const char * const *args, int *err_fd)
{
  g_auto(GStrv) argv = bg_harness_cli_argv (USER, args);
  g_auto(GStrv) envp = bg_harness_cli_envp (NULL, home, home);
  g_autoptr(GError) error = NULL;
  GPid pid;

  if (!g_spawn_async_with_pipes (home, argv, envp,
                                 G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL,
                                 new_pgrp, NULL, &pid, NULL, NULL, err_fd, &error))
    g_error ("%s", error->message);
  return pid;
}

static char *
debugfs_stat (const char *image, const char *path)
{
  g_autofree char *req = g_strdup_printf ("stat %s", path);
  const char *argv[] = { "debugfs", "-R", req, image, NULL };
  char *out = NULL;

  run_ok (argv, &out);
  return out;
}

static void
test_build_makes_a_bootable_image (void)
{
  g_autofree char *images = g_build_filename (home, ".local/share/banger/images", NULL);
  g_autofree char *dir = g_build_filename (images, "slow", NULL);
  g_autofree char *vmlinux = g_build_filename (dir, "vmlinux", NULL);
  g_autofree char *rootfs = g_build_filename (dir, "rootfs.ext4", NULL);
  g_autofree char *initrd = g_build_filename (dir, "initrd.img", NULL);
  g_autofree char *sshd = NULL, *cloud = NULL, *shadow = NULL, *header = NULL, *setup = NULL, *wants = NULL;
  g_autofree char *hostname = NULL, *ssh_dir = NULL, *copied = NULL;
  const char *args[] = { "image", "build", "slow", "--size", "1536M", NULL };
  GString *err = g_string_new (NULL);
  char buf[4096];
  ssize_t n;
  int fd, status;
  GPid pid = spawn_banger (args, &fd);
  Elf64_Ehdr *eh;
  gsize len;
  struct stat st;

  while ((n = read (fd, buf, sizeof buf)) > 0)
    g_string_append_len (err, buf, n);
  close (fd);
  waitpid (pid, &status, 0);
  if (bg_test_exit_code (status) != 0)
    g_error ("image build failed: %s", err->str);
  g_string_free (err, TRUE);

  g_assert_true (g_file_get_contents (vmlinux, &header, &len, NULL));
  eh = (Elf64_Ehdr *) header;
  g_assert_cmpuint (len, >, 1 << 20);
  g_assert_cmpmem (eh->e_ident, SELFMAG, ELFMAG, SELFMAG);
  g_assert_cmpint (eh->e_machine, ==, EM_X86_64);
  g_assert_no_errno (stat (initrd, &st));
  g_assert_cmpint (st.st_size, >, 1 << 20);
  /* The initramfs carries the virtio drivers a Firecracker guest needs to
   * find its root disk (Debian builds them as modules). */
  {
    g_autoptr(GFile) file = g_file_new_for_path (initrd);
    g_autoptr(GInputStream) raw = G_INPUT_STREAM (g_file_read (file, NULL, NULL));
    g_autoptr(GZlibDecompressor) gz = g_zlib_decompressor_new (G_ZLIB_COMPRESSOR_FORMAT_GZIP);
    g_autoptr(GInputStream) in = g_converter_input_stream_new (raw, G_CONVERTER (gz));
    g_autoptr(GOutputStream) mem = g_memory_output_stream_new_resizable ();
    g_autoptr(GBytes) cpio = NULL;

    g_output_stream_splice (mem, in, G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET, NULL, NULL);
    cpio = g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (mem));
    /* cpio data holds NULs: memmem, not a string search. */
    g_assert_nonnull (memmem (g_bytes_get_data (cpio, NULL), g_bytes_get_size (cpio), "virtio_mmio.ko", 14));
    g_assert_nonnull (memmem (g_bytes_get_data (cpio, NULL), g_bytes_get_size (cpio), "virtio_blk.ko", 13));
  }
  {
    const char *fsck[] = { "e2fsck", "-fn", rootfs, NULL };
    run_ok (fsck, NULL);
  }
  sshd = debugfs_stat (rootfs, "/usr/sbin/sshd");
  g_assert_nonnull (strstr (sshd, "Type: regular"));
  /* Guests configure themselves with banger-guest-setup, not cloud-init:
   * the applier (static: it needs no library of the image's) and its
   * enabled unit are in the image. */
  cloud = debugfs_stat (rootfs, "/usr/bin/cloud-init");
  g_assert_null (strstr (cloud, "Type:"));
  setup = debugfs_stat (rootfs, "/usr/libexec/banger/banger-guest-setup");
  g_assert_nonnull (strstr (setup, "Type: regular"));
  g_assert_nonnull (strstr (setup, "Mode:  0755"));
  g_assert_nonnull (strstr (setup, "User:     0"));
  wants = debugfs_stat (rootfs, "/etc/systemd/system/sysinit.target.wants/banger-guest-setup.service");
  g_assert_nonnull (strstr (wants, "Type: symlink"));
  /* The very program that was built, byte for byte. */
  {
    g_autofree char *copy = g_build_filename (home, "guest-setup-copy", NULL);
    g_autofree char *request = g_strdup_printf ("dump /usr/libexec/banger/banger-guest-setup %s", copy);
    g_autofree char *built_bytes = NULL;
    const char *dump[] = { "debugfs", "-R", request, rootfs, NULL };
    gsize built_len = 0, copy_len = 0;

    run_ok (dump, NULL);
    g_assert_true (g_file_get_contents (g_getenv ("BANGER_GUEST_SETUP"), &built_bytes, &built_len, NULL));
    g_assert_true (g_file_get_contents (copy, &copied, &copy_len, NULL));
    g_assert_cmpmem (copied, copy_len, built_bytes, built_len);
  }
  /* The overlay kept its modes despite the CLI's umask 077. */
  hostname = debugfs_stat (rootfs, "/etc/hostname");
  g_assert_nonnull (strstr (hostname, "Mode:  0644"));
  /* No host key made during the build: each VM gets its pinned one. */
  {
    const char *argv[] = { "debugfs", "-R", "ls -l /etc/ssh", rootfs, NULL };
    run_ok (argv, &ssh_dir);
    g_assert_nonnull (strstr (ssh_dir, "sshd_config.d"));
    g_assert_null (strstr (ssh_dir, "ssh_host_"));
  }
  /* Made without root, yet owners inside the image are root's. */
  shadow = debugfs_stat (rootfs, "/etc/shadow");
  g_assert_nonnull (strstr (shadow, "Mode:  0640"));
  g_assert_nonnull (strstr (shadow, "User:     0"));
  g_assert_nonnull (strstr (shadow, "Group:    42"));
}

static void
test_interrupted_build_leaves_nothing (void)
{
  g_autofree char *images = g_build_filename (home, ".local/share/banger/images", NULL);
  const char *args[] = { "image", "build", "half", NULL };
  GString *err = g_string_new (NULL);
  char buf[4096];
  ssize_t n;
  int fd, status;
  GPid pid = spawn_banger (args, &fd);
  g_autoptr(GDir) d = NULL;
  const char *e;

  /* Interrupt once it is bootstrapping, like Ctrl-C in its terminal. */
  while (!strstr (err->str, "bootstrapping") && (n = read (fd, buf, sizeof buf)) > 0)
    g_string_append_len (err, buf, n);
  kill (-pid, SIGINT);
  while ((n = read (fd, buf, sizeof buf)) > 0)
    g_string_append_len (err, buf, n);
  close (fd);
  waitpid (pid, &status, 0);
  /* It handles SIGINT: it ends with a failure status, not the signal. */
  g_assert_true (WIFEXITED (status));
  g_assert_cmpint (WEXITSTATUS (status), !=, 0);
  g_assert_nonnull (strstr (err->str, "nothing was kept"));
  g_string_free (err, TRUE);

  d = g_dir_open (images, 0, NULL);
  while (d && (e = g_dir_read_name (d)))
    g_assert_cmpstr (e, ==, "slow");
}

int
main (int argc, char **argv)
{
  int rc;

  g_test_init (&argc, &argv, NULL);
  if (geteuid () != 0)
    return bg_harness_cannot_run ("needs root to make a test user with a subordinate uid range");
  {
    g_autofree char *mmdebstrap = g_find_program_in_path ("mmdebstrap");
    g_autofree char *debugfs = g_find_program_in_path ("debugfs");

    if (mmdebstrap == NULL || debugfs == NULL)
      return bg_harness_cannot_run ("needs mmdebstrap and debugfs");
  }
  if (!bg_harness_mirror_reachable ())
    return bg_harness_cannot_run ("the Debian mirror (deb.debian.org) is not reachable from here");

  /* A run killed earlier (a failed assertion aborts) may have left its
   * directory: the banger-slow-* names are this test's own. */
  {
    g_autoptr(GDir) d = g_dir_open (g_get_tmp_dir (), 0, NULL);
    const char *e;
    while (d && (e = g_dir_read_name (d)))
      if (g_str_has_prefix (e, "banger-slow-"))
        {
          g_autofree char *path = g_build_filename (g_get_tmp_dir (), e, NULL);
          const char *rm[] = { "rm", "-rf", "--", path, NULL };
          g_spawn_sync (NULL, (char **) rm, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
        }
  }
  tmp = g_dir_make_tmp ("banger-slow-XXXXXX", NULL);
  g_assert_no_errno (chmod (tmp, 0755));
  home = g_build_filename (tmp, "home", NULL);
  cleanup_user ();
  {
    const char *add[] = { "useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER, NULL };
    const char *sub[] = { "usermod", "--add-subuids", "3000000-3065535", "--add-subgids", "3000000-3065535",
                          USER, NULL };
    struct passwd *pw;

    run_ok (add, NULL);
    run_ok (sub, NULL);
    pw = getpwnam (USER);
    g_assert_no_errno (g_mkdir (home, 0700));
    g_assert_no_errno (chown (home, pw->pw_uid, pw->pw_gid));
  }

  g_test_add_func ("/slow/image-build-makes-a-bootable-image", test_build_makes_a_bootable_image);
  g_test_add_func ("/slow/interrupted-build-leaves-nothing", test_interrupted_build_leaves_nothing);
  rc = g_test_run ();

  {
    /* Files made in the user namespace belong to the subuid range. */
    const char *rm[] = { "rm", "-rf", "--", tmp, NULL };
    g_spawn_sync (NULL, (char **) rm, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
  }
  cleanup_user ();
  return rc;
}
