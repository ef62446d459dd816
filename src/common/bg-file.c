/* bg-file.c: writing files atomically with an exact mode.
 *
 * g_file_set_contents_full() applies the umask to the mode, and both
 * binaries run with umask 077; files that must be readable by others (the
 * hosts file every resolver reads) need their mode set explicitly.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <gio/gio.h>
#include <glib/gstdio.h>

#include "bg-file.h"

gboolean
bg_file_replace (const char  *path,
                 const char  *contents,
                 gssize       length,
                 int          mode,
                 GError     **error)
{
  g_autofree char *tmp = g_strdup_printf ("%s.XXXXXX", path);
  gsize len = length < 0 ? strlen (contents) : (gsize) length;
  gsize done = 0;
  int fd = g_mkstemp_full (tmp, O_WRONLY | O_CLOEXEC, 0600);
  int errsv;

  if (fd < 0)
    {
      errsv = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                   "Cannot create %s: %s", tmp, g_strerror (errsv));
      return FALSE;
    }
  while (done < len)
    {
      ssize_t n = write (fd, contents + done, len - done);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        goto fail;
      done += n;
    }
  if (fchmod (fd, mode) < 0 || fsync (fd) < 0)
    goto fail;
  if (close (fd) < 0)
    {
      fd = -1;
      goto fail;
    }
  fd = -1;
  if (rename (tmp, path) < 0)
    goto fail;
  return TRUE;

fail:
  errsv = errno;
  if (fd >= 0)
    close (fd);
  g_unlink (tmp);
  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
               "Cannot write %s: %s", path, g_strerror (errsv));
  return FALSE;
}
