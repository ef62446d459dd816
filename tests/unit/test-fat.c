/* The in-process FAT writer behind the config drive: what it writes must
 * be a FAT that fsck.fat finds clean, that mtools reads back byte for
 * byte under its long names, and that the kernel mounts. */
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include "bg-error.h"
#include "bg-fat.h"

#include "../bg-test.h"

typedef struct {
  char *tmp;
  char *image;
} Fixture;

static void
setup (Fixture *f, gconstpointer data)
{
  f->tmp = g_dir_make_tmp ("banger-fat-XXXXXX", NULL);
  f->image = g_build_filename (f->tmp, "drive.img", NULL);
}

static void
teardown (Fixture *f, gconstpointer data)
{
  const char *argv[] = { "rm", "-rf", "--", f->tmp, NULL };
  g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
  g_free (f->image);
  g_free (f->tmp);
}

static int
run (const char * const *argv,
     char              **out,
     char              **err)
{
  g_auto(GStrv) envp = g_environ_setenv (g_get_environ (), "MTOOLS_SKIP_CHECK", "1", TRUE);
  int status;

  g_autoptr(GError) error = NULL;

  if (!bg_test_spawn_sync (NULL, argv, envp, G_SPAWN_DEFAULT, out, err, &status, &error))
    g_error ("%s", error->message);
  return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

static GBytes *
pattern (gsize len,
         guint seed)
{
  guint8 *data = g_malloc (len + 1);

  for (gsize i = 0; i < len; i++)
    data[i] = (guint8) ((i * 131 + seed * 7) >> 3);
  return g_bytes_new_take (data, len);
}

static void
assert_fsck_clean (const char *image)
{
  const char *argv[] = { "fsck.fat", "-n", "-V", image, NULL };
  g_autofree char *out = NULL, *err = NULL;

  if (run (argv, &out, &err) != 0)
    g_error ("fsck.fat found problems:\n%s%s", out, err);
  g_assert_null (strstr (out, "differ"));
}

/* Copied out with mcopy into a file: binary content stays intact. */
static GBytes *
mtype (const char *image,
       const char *name)
{
  g_autofree char *dir = g_path_get_dirname (image);
  g_autofree char *dest = g_build_filename (dir, "copied-out", NULL);
  g_autofree char *src = g_strdup_printf ("::/%s", name);
  const char *argv[] = { "mcopy", "-n", "-o", "-i", image, src, dest, NULL };
  g_autofree char *err = NULL;
  char *data = NULL;
  gsize len;

  if (run (argv, NULL, &err) != 0)
    g_error ("mcopy %s: %s", name, err);
  g_assert_true (g_file_get_contents (dest, &data, &len, NULL));
  g_unlink (dest);
  return g_bytes_new_take (data, len);
}

/* Writes @files, has fsck.fat check the result, reads every file back
 * with mtools and compares; then drops the contents. */
static void
write_check_and_read_back (Fixture   *f,
                           BgFatFile *files,
                           guint      n)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (bg_fat_write_image (f->image, "CIDATA", files, n, BG_FILE_NONE, &error));
  g_assert_no_error (error);
  assert_fsck_clean (f->image);
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GBytes) back = mtype (f->image, files[i].name);
      g_assert_true (g_bytes_equal (back, files[i].content));
      g_clear_pointer (&files[i].content, g_bytes_unref);
    }
}

/* Sizes around every boundary: empty, one byte, one cluster exactly, one
 * more, many clusters, and enough to need bigger clusters. */
static void
test_fat_files_read_back (Fixture *f, gconstpointer data)
{
  const gsize sizes[] = { 0, 1, 511, 512, 513, 4096, 200000, 3 << 20 };
  const char *names[] = { "empty", "one", "meta-data", "user-data", "network-config", "x.tar.gz",
                          "a name with spaces and a very long tail beyond thirteen characters", "BIG.BIN" };
  BgFatFile files[G_N_ELEMENTS (sizes)];
  g_autofree char *label = NULL, *listing = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++)
    {
      files[i].name = names[i];
      files[i].content = pattern (sizes[i], i);
    }
  write_check_and_read_back (f, files, G_N_ELEMENTS (files));
  {
    const char *argv[] = { "fatlabel", f->image, NULL };
    g_assert_cmpint (run (argv, &label, NULL), ==, 0);
    g_assert_cmpstr (g_strstrip (label), ==, "CIDATA");
  }
  {
    const char *argv[] = { "mdir", "-i", f->image, "::/", NULL };
    g_assert_cmpint (run (argv, &listing, NULL), ==, 0);
    g_assert_nonnull (strstr (listing, "network-config"));
    g_assert_nonnull (strstr (listing, "NETWOR~1"));
  }
}

/* Names sharing their first six characters get distinct 8.3 aliases. */
static void
test_fat_short_names_do_not_collide (Fixture *f, gconstpointer data)
{
  const char *names[] = { "network-config", "network-config.bak", "network-config2", "networking" };
  BgFatFile files[G_N_ELEMENTS (names)];

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      files[i].name = names[i];
      files[i].content = g_bytes_new (names[i], strlen (names[i]));
    }
  write_check_and_read_back (f, files, G_N_ELEMENTS (files));
}

static void
test_fat_refuses_what_it_cannot_hold (Fixture *f, gconstpointer data)
{
  BgFatFile big = { "user-data", g_bytes_new_take (g_malloc0 (128u << 20), 128u << 20) };
  BgFatFile bad[] = { { "a/b", NULL }, { "", NULL }, { "..", NULL }, { "tab\there", NULL } };
  g_autoptr(GError) error = NULL;

  g_assert_false (bg_fat_write_image (f->image, "CIDATA", &big, 1, BG_FILE_NONE, &error));
  g_assert_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "[sync] max-size"));
  g_bytes_unref (big.content);
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_clear_error (&error);
      bad[i].content = g_bytes_new ("x", 1);
      g_assert_false (bg_fat_write_image (f->image, "CIDATA", &bad[i], 1, BG_FILE_NONE, &error));
      g_assert_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT);
      g_bytes_unref (bad[i].content);
    }
  g_clear_error (&error);
  g_assert_false (bg_fat_write_image (f->image, "TWELVE_CHARS", NULL, 0, BG_FILE_NONE, &error));
  g_assert_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT);
  /* Nothing written, not even a temporary file. */
  {
    g_autoptr(GDir) d = g_dir_open (f->tmp, 0, NULL);
    g_assert_null (g_dir_read_name (d));
  }
}

/* The reader that matters: the kernel's vfat, on a real loop device, in
 * a private mount namespace. */
static void
test_fat_kernel_mounts_it (Fixture *f, gconstpointer data)
{
  g_autofree char *mnt = g_build_filename (f->tmp, "mnt", NULL);
  const char *names[] = { "meta-data", "user-data", "network-config" };
  BgFatFile files[G_N_ELEMENTS (names)];
  g_autoptr(GError) error = NULL;
  pid_t pid;
  int status;

  if (geteuid () != 0)
    {
      g_test_skip ("needs root to attach a loop device and mount");
      return;
    }
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      files[i].name = names[i];
      files[i].content = pattern (1000 + i * 70000, i);
    }
  g_assert_true (bg_fat_write_image (f->image, "CIDATA", files, G_N_ELEMENTS (files), BG_FILE_NONE, &error));
  g_assert_no_errno (g_mkdir (mnt, 0700));

  pid = fork ();
  if (pid == 0)
    {
      const char *argv[] = { "mount", "-t", "vfat", "-o", "ro,loop", f->image, mnt, NULL };
      g_autofree char *err = NULL;

      if (unshare (CLONE_NEWNS) < 0 || mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        _exit (3);
      if (run (argv, NULL, &err) != 0)
        {
          g_printerr ("mount: %s\n", err);
          _exit (4);
        }
      for (guint i = 0; i < G_N_ELEMENTS (names); i++)
        {
          g_autofree char *path = g_build_filename (mnt, names[i], NULL);
          g_autofree char *text = NULL;
          gsize len;

          if (!g_file_get_contents (path, &text, &len, NULL) ||
              len != g_bytes_get_size (files[i].content) ||
              memcmp (text, g_bytes_get_data (files[i].content, NULL), len) != 0)
            _exit (10 + i);
        }
      umount2 (mnt, MNT_DETACH);
      _exit (0);
    }
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  if (bg_test_exit_code (status) == 4)
    {
      /* The mount asked the kernel for vfat (loading the module if it
       * can): a kernel without it is the only acceptable reason. */
      g_autofree char *fs = NULL;
      g_assert_true (g_file_get_contents ("/proc/filesystems", &fs, NULL, NULL));
      g_assert_null (strstr (fs, "\tvfat\n"));
      g_test_skip ("this kernel has no vfat filesystem (not built in, no module); "
                   "the slow QEMU boot mounts the drive in a guest kernel instead");
    }
  else
    bg_assert_exited (status, 0);
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    g_bytes_unref (files[i].content);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, fn) g_test_add (path, Fixture, NULL, setup, fn, teardown)
  ADD ("/fat/files-read-back", test_fat_files_read_back);
  ADD ("/fat/short-names-do-not-collide", test_fat_short_names_do_not_collide);
  ADD ("/fat/refuses-what-it-cannot-hold", test_fat_refuses_what_it_cannot_hold);
  ADD ("/fat/kernel-mounts-it", test_fat_kernel_mounts_it);
  return g_test_run ();
}
