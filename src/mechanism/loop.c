/* loop.c: loop devices over files the caller opened.
 *
 * The mechanism never opens the backing file: the caller passed its fd,
 * opened with the caller's own rights. LOOP_CONFIGURE sets the file,
 * read-only flag and autoclear in one ioctl, so there is no moment where
 * a half-configured device is visible; autoclear detaches the device
 * when its last opener closes it, so a crash cannot leak it for long.
 * A device is detached only while it is still attached to the file it
 * was made for: after a restart, a recorded loopN may be someone else's.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bg-error.h"
#include "bg-fd.h"
#include "loop.h"

gboolean
bg_loop_validate_name (const char  *field,
                       const char  *name,
                       GError     **error)
{
  guint64 n;

  if (name != NULL && g_str_has_prefix (name, "loop") &&
      g_ascii_string_to_unsigned (name + 4, 10, 0, 1 << 20, &n, NULL))
    return TRUE;
  g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
               "%s: not a loop device name (loopN, as AttachLoop returned it)", field);
  return FALSE;
}

/* Returns an open fd on the new loop device (keep it open until the VMM
 * has the device open, or autoclear detaches it), or -1. */
int
bg_loop_attach (int          backing_fd,
                gboolean     read_only,
                dev_t       *out_rdev,
                char       **out_name,
                GError     **error)
{
  g_auto(BgFd) control = open ("/dev/loop-control", O_RDWR | O_CLOEXEC);

  if (control < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_NOT_SUPPORTED,
                   "cannot open /dev/loop-control: %s", g_strerror (errno));
      return -1;
    }

  /* Another process may take the free device between GET_FREE and
   * CONFIGURE: retry on EBUSY. */
  for (int attempt = 0; attempt < 16; attempt++)
    {
      struct loop_config config = { 0 };
      g_autofree char *path = NULL;
      g_auto(BgFd) fd = -1;
      struct stat st;
      int n = ioctl (control, LOOP_CTL_GET_FREE);

      if (n < 0)
        break;
      path = g_strdup_printf ("/dev/loop%d", n);
      fd = open (path, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
      if (fd < 0)
        continue;
      config.fd = backing_fd;
      /* Direct I/O: the guest's reads are cached once, in the device's
       * page cache, not a second time in the backing file's. The kernel
       * drops the flag where the backing filesystem cannot do it. */
      config.info.lo_flags = LO_FLAGS_AUTOCLEAR | LO_FLAGS_DIRECT_IO | (read_only ? LO_FLAGS_READ_ONLY : 0);
      if (ioctl (fd, LOOP_CONFIGURE, &config) < 0)
        {
          if (errno == EBUSY)
            continue;
          g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot attach %s: %s", path, g_strerror (errno));
          return -1;
        }
      if (fstat (fd, &st) < 0)
        continue;
      *out_rdev = st.st_rdev;
      if (out_name)
        *out_name = g_strdup_printf ("loop%d", n);
      return g_steal_fd (&fd);
    }
  g_set_error (error, BG_ERROR, BG_ERROR_BUSY, "no free loop device: %s", g_strerror (errno));
  return -1;
}

/* Detaches now rather than waiting for the last opener: the registry
 * must not say "gone" while it still exists. Through @held_fd when the
 * mechanism holds one; otherwise the device is opened by name and
 * detached only if it still has the backing file @backing_dev/@backing_ino
 * (0/0: not recorded, by an older mechanism). Already gone is success. */
gboolean
bg_loop_detach (const char  *name,
                int          held_fd,
                dev_t        backing_dev,
                ino_t        backing_ino,
                GError     **error)
{
  g_autofree char *path = g_strdup_printf ("/dev/%s", name);
  g_auto(BgFd) fd = held_fd >= 0 ? dup (held_fd) : open (path, O_RDONLY | O_CLOEXEC);
  struct loop_info64 info = { 0 };

  if (fd < 0)
    return TRUE;
  if (ioctl (fd, LOOP_GET_STATUS64, &info) < 0)
    return TRUE;   /* ENXIO: nothing attached any more */
  if (held_fd < 0 && (backing_dev != 0 || backing_ino != 0) &&
      (info.lo_device != backing_dev || info.lo_inode != backing_ino))
    {
      g_message ("Not detaching %s: it is now attached to another file", name);
      return TRUE;
    }
  if (ioctl (fd, LOOP_CLR_FD, 0) < 0 && errno != ENXIO)
    {
      int errsv = errno;
      g_set_error (error, BG_ERROR, errsv == EBUSY ? BG_ERROR_BUSY : BG_ERROR_FAILED,
                   "cannot detach %s: %s", path, g_strerror (errsv));
      return FALSE;
    }
  return TRUE;
}

/* /dev/@name opened read-only, if it is attached to the file @dev/@ino
 * (checked on the descriptor returned: while it is held, autoclear
 * cannot give the number to another file), its device number in @rdev;
 * or -1. */
int
bg_loop_open_matching (const char *name,
                       guint64     dev,
                       guint64     ino,
                       dev_t      *rdev)
{
  g_autofree char *path = g_strdup_printf ("/dev/%s", name);
  g_auto(BgFd) fd = open (path, O_RDONLY | O_CLOEXEC);
  struct loop_info64 info = { 0 };
  struct stat st;

  if (fd < 0 || ioctl (fd, LOOP_GET_STATUS64, &info) < 0 || info.lo_device != dev || info.lo_inode != ino ||
      fstat (fd, &st) < 0 || !S_ISBLK (st.st_mode))
    return -1;
  if (rdev != NULL)
    *rdev = st.st_rdev;
  return g_steal_fd (&fd);
}

/* Whether /dev/@name is attached to the file @dev/@ino. */
gboolean
bg_loop_matches (const char *name,
                 guint64     dev,
                 guint64     ino)
{
  g_auto(BgFd) fd = bg_loop_open_matching (name, dev, ino, NULL);

  return fd >= 0;
}
