/* bench-disk: making a VM disk from a 4 GiB image, each strategy next to
 * a plain `cp` of the same file, as ratios, in one run, with the host disk
 * each new disk takes. Reflink needs a
 * filesystem that can: as root, the benchmark makes an XFS (reflink=1) on
 * a loop device in a private mount namespace; otherwise it measures the
 * copy strategy on the current filesystem only and says so. */
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include "bench-common.h"
#include "bg-disk.h"
#include "bg-disk-vm.h"

#define IMAGE_BYTES (4ll << 30)
#define DATA_BYTES  (1ll << 30)   /* a filesystem image is mostly holes */

static void
drop_caches (void)
{
  int fd = open ("/proc/sys/vm/drop_caches", O_WRONLY);
  sync ();
  if (fd >= 0)
    {
      if (write (fd, "3", 1) < 0)
        {
        }
      close (fd);
    }
}

static void
make_image (const char *path)
{
  g_autofree guint8 *chunk = g_malloc (8 << 20);
  int fd = open (path, O_RDWR | O_CREAT | O_TRUNC, 0600);

  memset (chunk, 0x6b, 8 << 20);
  if (ftruncate (fd, IMAGE_BYTES) < 0)
    g_error ("ftruncate");
  /* 1 GiB of data spread over the 4 GiB, 8 MiB runs every 32 MiB. */
  for (gint64 off = 0; off < IMAGE_BYTES; off += 32 << 20)
    if (pwrite (fd, chunk, 8 << 20, off) != 8 << 20)
      g_error ("pwrite");
  fsync (fd);
  close (fd);
}

static double
time_cp (const char *src, const char *dst)
{
  const char *argv[] = { "cp", src, dst, NULL };
  double t0;
  int status;

  drop_caches ();
  t0 = bg_bench_now_ms ();
  g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, &status, NULL);
  return bg_bench_now_ms () - t0;
}

static double
time_strategy (const char *src, const char *dst, BgDiskMode mode)
{
  g_autoptr(GError) error = NULL;
  BgDiskMode used;
  double t0;

  drop_caches ();
  t0 = bg_bench_now_ms ();
  if (!bg_disk_create (src, dst, mode, 0, &used, NULL, &error))
    g_error ("%s", error->message);
  return bg_bench_now_ms () - t0;
}

/* Layered: the image stays shared; the VM gets an empty sparse disk. */
static double
time_layered (const char *src, const char *dir)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *reason = NULL;
  BgImage image = { .name = (char *) "bench", .rootfs = (char *) src, .layered = TRUE };
  BgDiskMode used;
  double t0;

  drop_caches ();
  t0 = bg_bench_now_ms ();
  if (!bg_disk_vm_make (&image, dir, BG_DISK_MODE_LAYERED, IMAGE_BYTES, &used, &reason, NULL, &error))
    g_error ("%s", error->message);
  return bg_bench_now_ms () - t0;
}

/* Space the filesystem holding @dir has in use: what a new disk costs is
 * the difference, shared extents (reflink) counted once. */
static gint64
fs_used (const char *dir)
{
  struct statvfs v;

  sync ();
  if (statvfs (dir, &v) < 0)
    g_error ("statvfs %s", dir);
  return (gint64) (v.f_blocks - v.f_bfree) * v.f_frsize;
}

static void
run_on (const char *dir, gboolean reflink)
{
  g_autofree char *img = g_build_filename (dir, "image.ext4", NULL);
  g_autofree char *c1 = g_build_filename (dir, "cp.disk", NULL);
  g_autofree char *c2 = g_build_filename (dir, "copy.disk", NULL);
  g_autofree char *c3 = g_build_filename (dir, "reflink.disk", NULL);
  g_autofree char *upper = g_build_filename (dir, "upper.img", NULL);
  double cp, copy, ref = 0, layered;

  gint64 u_cp, u_copy, u_ref = 0, u_layered, before;

  make_image (img);
  before = fs_used (dir);
  cp = time_cp (img, c1);
  u_cp = fs_used (dir) - before;
  before += u_cp;
  copy = time_strategy (img, c2, BG_DISK_MODE_COPY);
  u_copy = fs_used (dir) - before;
  before += u_copy;
  if (reflink)
    {
      ref = time_strategy (img, c3, BG_DISK_MODE_REFLINK);
      u_ref = fs_used (dir) - before;
      before += u_ref;
    }
  layered = time_layered (img, dir);
  u_layered = fs_used (dir) - before;

  g_print ("  cp (coreutils)       %9.1f ms   %9.5fx of cp   host disk %8" G_GINT64_FORMAT " KiB\n",
           cp, 1.0, u_cp >> 10);
  g_print ("  copy (sparse)        %9.1f ms   %9.5fx of cp   host disk %8" G_GINT64_FORMAT " KiB\n",
           copy, copy / cp, u_copy >> 10);
  if (reflink)
    g_print ("  reflink              %9.1f ms   %9.5fx of cp   host disk %8" G_GINT64_FORMAT " KiB\n",
             ref, ref / cp, u_ref >> 10);
  g_print ("  layered              %9.1f ms   %9.5fx of cp   host disk %8" G_GINT64_FORMAT " KiB\n",
           layered, layered / cp, u_layered >> 10);
  g_unlink (img);
  g_unlink (c1);
  g_unlink (c2);
  g_unlink (c3);
  g_unlink (upper);
}

int
main (int argc, char **argv)
{
  g_autofree char *tmp = g_dir_make_tmp ("banger-bench-disk-XXXXXX", NULL);

  g_print ("Making a VM disk from a 4 GiB image (1 GiB of data), caches dropped before each\n");
  if (geteuid () == 0 && g_find_program_in_path ("mkfs.xfs") &&
      unshare (CLONE_NEWNS) == 0 && mount ("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0)
    {
      g_autofree char *img = g_build_filename (tmp, "xfs.img", NULL);
      g_autofree char *mnt = g_build_filename (tmp, "mnt", NULL);
      const char *mkfs[] = { "mkfs.xfs", "-q", "-m", "reflink=1", img, NULL };
      const char *mnt_argv[] = { "mount", "-o", "loop", img, mnt, NULL };
      int fd = open (img, O_RDWR | O_CREAT, 0600), status;

      if (ftruncate (fd, 12ll << 30) < 0)
        g_error ("ftruncate");
      close (fd);
      g_mkdir (mnt, 0700);
      g_spawn_sync (NULL, (char **) mkfs, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, &status, NULL);
      g_spawn_sync (NULL, (char **) mnt_argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, &status, NULL);
      g_print ("on XFS (reflink=1, on a loop device):\n");
      run_on (mnt, TRUE);
      umount2 (mnt, MNT_DETACH);
    }
  else
    g_print ("(not root or no mkfs.xfs: reflink not measured)\n");
  g_print ("on %s (no reflink):\n", g_get_tmp_dir ());
  run_on (tmp, FALSE);
  {
    const char *rm[] = { "rm", "-rf", tmp, NULL };
    g_spawn_sync (NULL, (char **) rm, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
  }
  return 0;
}
