/* bg-unpack-write.c: where unpacked data goes, for gzip here and for the
 * decompression module (bg-inflate.c), which takes it from banger. */
#include <errno.h>
#include <unistd.h>

#include "bg-error.h"
#include "bg-unpack-write.h"

/* Writes all of @data to @fd. */
gboolean
bg_unpack_write_all (int          fd,
                     const void  *data,
                     gsize        len,
                     GError     **error)
{
  const guint8 *p = data;

  while (len > 0)
    {
      ssize_t n = write (fd, p, len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot write: %s", g_strerror (errno));
          return FALSE;
        }
      p += n;
      len -= n;
    }
  return TRUE;
}
