/* bg-oci-blob.c: see bg-oci-blob.h. A digest becomes a file name only
 * once it is checked to be sha256 and 64 hex digits, and the file is
 * opened without following a symlink there. */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bg-error.h"
#include "bg-fd.h"
#include "bg-oci-blob.h"
#include "bg-oci-manifest.h"

/* Blob @digest, a regular file of @size bytes (G_MAXUINT64: any). */
int
bg_oci_blob_open (int          blobs_dirfd,
                  const char  *digest,
                  guint64      size,
                  GError     **error)
{
  g_autofree char *rel = NULL;
  g_auto(BgFd) fd = -1;
  struct stat st;

  if (!bg_oci_digest_validate ("blob", digest, error))
    return -1;
  rel = g_strdup_printf ("sha256/%s", digest + 7);
  fd = openat (blobs_dirfd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    {
      g_set_error (error, BG_ERROR, errno == ENOENT ? BG_ERROR_NOT_FOUND : BG_ERROR_FAILED,
                   "blob %s: %s", digest, errno == ENOENT ? "missing from the image" : g_strerror (errno));
      return -1;
    }
  if (fstat (fd, &st) < 0 || !S_ISREG (st.st_mode))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "blob %s: not a regular file", digest);
      return -1;
    }
  if (size != G_MAXUINT64 && (guint64) st.st_size != size)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                   "blob %s: %" G_GUINT64_FORMAT " bytes, not the %" G_GUINT64_FORMAT " its descriptor declares",
                   digest, (guint64) st.st_size, size);
      return -1;
    }
  return g_steal_fd (&fd);
}

/* A small blob (a manifest, an index, a config), whole, refused when
 * more than @max or when its bytes do not hash to @digest. */
GBytes *
bg_oci_blob_read (int          blobs_dirfd,
                  const char  *digest,
                  guint64      size,
                  guint64      max,
                  GError     **error)
{
  g_auto(BgFd) fd = bg_oci_blob_open (blobs_dirfd, digest, size, error);
  g_autofree guint8 *buf = NULL;
  g_autofree char *hex = NULL;
  struct stat st;
  gsize done = 0;

  if (fd < 0)
    return NULL;
  fstat (fd, &st);
  if ((guint64) st.st_size > max)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                   "blob %s: %" G_GUINT64_FORMAT " bytes, more than the %" G_GUINT64_FORMAT " banger reads",
                   digest, (guint64) st.st_size, max);
      return NULL;
    }
  buf = g_malloc (st.st_size + 1);
  while (done < (gsize) st.st_size)
    {
      ssize_t n = pread (fd, buf + done, st.st_size - done, done);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "blob %s: cannot read: %s", digest,
                       n < 0 ? g_strerror (errno) : "shorter than it was");
          return NULL;
        }
      done += n;
    }
  hex = g_compute_checksum_for_data (G_CHECKSUM_SHA256, buf, done);
  if (!g_str_equal (hex, digest + 7))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                   "blob %s: its bytes hash to sha256:%s: refused (corrupt or tampered)", digest, hex);
      return NULL;
    }
  return g_bytes_new_take (g_steal_pointer (&buf), done);
}
