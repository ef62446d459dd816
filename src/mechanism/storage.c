/* storage.c: loop devices over files the caller opened.
 *
 * The mechanism never opens the backing file: the caller passed its fd,
 * opened with the caller's own rights. LOOP_CONFIGURE sets the file,
 * read-only flag and autoclear in one ioctl, so there is no moment where
 * a half-configured device is visible; autoclear detaches the device
 * when its last opener closes it, so a crash cannot leak it for long.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bg-error.h"
#include "storage.h"

/* Returns an open fd on the new loop device (keep it open until the VMM
 * has the device open, or autoclear detaches it), or -1. */
int
bg_loop_attach (int          backing_fd,
                gboolean     read_only,
                dev_t       *out_rdev,
                char       **out_device,
                GError     **error)
{
  int control = open ("/dev/loop-control", O_RDWR | O_CLOEXEC);

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
      struct stat st;
      int n = ioctl (control, LOOP_CTL_GET_FREE);
      int fd;

      if (n < 0)
        break;
      path = g_strdup_printf ("/dev/loop%d", n);
      fd = open (path, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
      if (fd < 0)
        continue;
      config.fd = backing_fd;
      config.info.lo_flags = LO_FLAGS_AUTOCLEAR | (read_only ? LO_FLAGS_READ_ONLY : 0);
      if (ioctl (fd, LOOP_CONFIGURE, &config) < 0)
        {
          int errsv = errno;
          close (fd);
          if (errsv == EBUSY)
            continue;
          close (control);
          g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot attach %s: %s", path, g_strerror (errsv));
          return -1;
        }
      if (fstat (fd, &st) < 0)
        {
          close (fd);
          continue;
        }
      close (control);
      *out_rdev = st.st_rdev;
      if (out_device)
        *out_device = g_steal_pointer (&path);
      return fd;
    }
  g_set_error (error, BG_ERROR, BG_ERROR_BUSY, "no free loop device: %s", g_strerror (errno));
  close (control);
  return -1;
}
