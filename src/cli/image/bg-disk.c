/* bg-disk.c: a VM's own writable disk, made from its image, in constant
 * time wherever it can be.
 *
 * Strategies (disk-mode = auto picks the first that works here):
 *  - reflink: FICLONE shares every extent with the image; O(1), rootless,
 *    on XFS (reflink=1), btrfs and friends. The clone is grown to the
 *    requested size and its ext4 resized offline (resize2fs) before first
 *    boot; the image was fsck'ed at import;
 *  - layered, for images with banger-init (every 'image build'): the
 *    image itself is the VM's root, shared read-only by every VM of it,
 *    and the VM's own disk is an empty sparse file of the requested size
 *    (O(1), no data) that banger-init formats at first boot and lays
 *    over the image as an overlayfs (for an image with no mke2fs, a
 *    sparse copy of a formatted template: bg-disk-upper.c);
 *  - copy: copies only data extents (SEEK_DATA/SEEK_HOLE with
 *    copy_file_range, or read and write between filesystems), so holes
 *    stay holes; then grown like a clone.
 * No device-mapper: it needs root on the host, leaks easily, and the
 * layered disk does the same in the guest.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include "bg-disk.h"
#include "bg-cli.h"
#include "bg-error.h"
#include "bg-fd.h"
#include "bg-spawn.h"

#define CHUNK (8 << 20)

gboolean
bg_disk_reflink (int      src_fd,
                 int      dst_fd,
                 GError **error)
{
  if (ioctl (dst_fd, FICLONE, src_fd) < 0)
    {
      int errsv = errno;
      g_set_error (error, BG_ERROR, errsv == EOPNOTSUPP || errsv == EXDEV || errsv == EINVAL
                                      ? BG_ERROR_NOT_SUPPORTED : BG_ERROR_FAILED,
                   "cannot reflink: %s", g_strerror (errsv));
      return FALSE;
    }
  return TRUE;
}

/* Whether to stop: @cancellable, when a thread's work has one (it is
 * cancelled by the thread that waits for it); without one, the command's
 * Ctrl-C flag, which only the main thread reads. */
static gboolean
interrupted (GCancellable  *cancellable,
             GError       **error)
{
  if (cancellable != NULL ? !g_cancellable_is_cancelled (cancellable) : !bg_interrupted)
    return FALSE;
  g_set_error_literal (error, BG_ERROR, BG_ERROR_FAILED, "interrupted");
  return TRUE;
}

/* A short write is not a failure until the next one says why (ENOSPC). */
static gboolean
pwrite_all (int          fd,
            const void  *buf,
            gsize        len,
            off_t        off)
{
  for (gsize done = 0; done < len;)
    {
      ssize_t n = pwrite (fd, (const guint8 *) buf + done, len - done, off + done);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          if (n == 0)
            errno = ENOSPC;
          return FALSE;
        }
      done += n;
    }
  return TRUE;
}

/* Copies the data extents of @src_fd to @dst_fd and sizes @dst_fd to
 * match; holes stay holes. With @checksum, every byte (holes as zeros) is
 * fed to it, so the digest is the file's. */
gboolean
bg_disk_copy_sparse (int             src_fd,
                     int             dst_fd,
                     BgSha256       *checksum,
                     BgProgress     *progress,
                     GCancellable   *cancellable,
                     GError        **error)
{
  struct stat st;
  off_t pos = 0;
  g_autofree guint8 *buf = checksum ? g_malloc (CHUNK) : NULL;
  g_autofree guint8 *zeros = checksum ? g_malloc0 (CHUNK) : NULL;
  /* copy_file_range() only within a filesystem (or between ones of a
   * kind, depending on the kernel): elsewhere, read and write. */
  gboolean in_kernel = checksum == NULL;

  if (fstat (src_fd, &st) < 0 || ftruncate (dst_fd, st.st_size) < 0)
    goto fail;

  while (pos < st.st_size)
    {
      off_t data = lseek (src_fd, pos, SEEK_DATA);
      off_t hole;

      if (data < 0)
        {
          if (errno != ENXIO)
            goto fail;
          data = st.st_size;   /* only a hole is left */
        }
      for (off_t z = pos; checksum && z < data; z += MIN (CHUNK, data - z))
        bg_sha256_update (checksum, zeros, MIN (CHUNK, data - z));
      if (data >= st.st_size)
        break;
      hole = lseek (src_fd, data, SEEK_HOLE);
      if (hole < 0)
        goto fail;

      for (off_t off = data; off < hole;)
        {
          gsize want = MIN ((off_t) CHUNK, hole - off);
          ssize_t n;

          if (interrupted (cancellable, error))
            return FALSE;
          if (in_kernel)
            {
              off_t in = off, out = off;
              n = copy_file_range (src_fd, &in, dst_fd, &out, want, 0);
              if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP || errno == EINVAL))
                {
                  in_kernel = FALSE;
                  continue;
                }
              if (n <= 0)
                goto fail;
            }
          else
            {
              if (buf == NULL)
                buf = g_malloc (CHUNK);
              n = pread (src_fd, buf, want, off);
              if (n <= 0 || !pwrite_all (dst_fd, buf, n, off))
                goto fail;
              if (checksum)
                bg_sha256_update (checksum, buf, n);
            }
          off += n;
          bg_progress_bytes (progress, off, st.st_size);
        }
      pos = hole;
    }
  return TRUE;

fail:
  {
    int errsv = errno;
    g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot copy the disk: %s%s", g_strerror (errsv),
                 errsv == ENOSPC ? " (free some space there, or make the VM's disk smaller with --disk)" : "");
  }
  return FALSE;
}


static gboolean
grow (const char  *dest,
      int          fd,
      guint64      size,
      GError     **error)
{
  struct stat st;
  /* The image's filesystem was checked once, at import; a fresh copy of
   * it needs no fsck before growing. */
  const char *resize[] = { "resize2fs", "-f", dest, NULL };

  if (fstat (fd, &st) < 0)
    return FALSE;
  if (size <= (guint64) st.st_size)
    return TRUE;
  if (ftruncate (fd, size) < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot grow it: %s", g_strerror (errno));
      return FALSE;
    }
  return bg_spawn_run (resize, NULL, error);
}

gboolean
bg_disk_create (const char     *image_rootfs,
                const char     *dest,
                BgDiskMode      mode,
                guint64         size,
                BgDiskMode     *used,
                GCancellable   *cancellable,
                GError        **error)
{
  g_autoptr(GError) local = NULL;
  g_auto(BgFd) src = -1, dst = -1;
  gboolean ok = FALSE;

  src = open (image_rootfs, O_RDONLY | O_CLOEXEC);
  if (src < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_NOT_FOUND, "cannot open %s: %s", image_rootfs, g_strerror (errno));
      return FALSE;
    }
  dst = open (dest, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (dst < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_EXISTS, "cannot create %s: %s", dest, g_strerror (errno));
      return FALSE;
    }

  switch (mode)
    {
    case BG_DISK_MODE_REFLINK:
      ok = bg_disk_reflink (src, dst, error);
      *used = BG_DISK_MODE_REFLINK;
      break;
    case BG_DISK_MODE_COPY:
      ok = bg_disk_copy_sparse (src, dst, NULL, NULL, cancellable, error);
      *used = BG_DISK_MODE_COPY;
      break;
    case BG_DISK_MODE_AUTO:
    case BG_DISK_MODE_LAYERED:
    default:
      if (bg_disk_reflink (src, dst, &local))
        {
          ok = TRUE;
          *used = BG_DISK_MODE_REFLINK;
        }
      else
        {
          ok = bg_disk_copy_sparse (src, dst, NULL, NULL, cancellable, error);
          *used = BG_DISK_MODE_COPY;
        }
      break;
    }

  if (ok)
    ok = grow (dest, dst, size, error);
  bg_fd_clear (&src);
  bg_fd_clear (&dst);
  if (!ok)
    {
      g_unlink (dest);
      g_prefix_error (error, "making the root disk %s: ", dest);
    }
  return ok;
}
