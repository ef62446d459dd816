/* bg-unpack.c: the compressions kernels and initrds come in (gzip, xz,
 * zstd, and LZ4's legacy frame, as the kernel's build writes them),
 * decompressed in-process with their libraries. gzip is done here: zlib
 * is loaded with GIO anyway. The others are in banger's decompression
 * module (bg-inflate.c), loaded the first time one is needed, so that
 * recognising a format (bg_unpack_format()) loads nothing. */
#include <zlib.h>

#include "bg-error.h"
#include "bg-unpack.h"
#include "bg-unpack-module.h"
#include "bg-unpack-write.h"

static gboolean
inflate_gzip (const guint8 *in, gsize len, int out, GError **error)
{
  z_stream z = { 0 };
  g_autofree guint8 *buf = g_malloc (1 << 20);
  int r;

  if (inflateInit2 (&z, 16 + MAX_WBITS) != Z_OK)
    {
      g_set_error_literal (error, BG_ERROR, BG_ERROR_FAILED, "cannot start the gzip decoder");
      return FALSE;
    }
  z.next_in = (guint8 *) in;
  z.avail_in = len;
  do
    {
      z.next_out = buf;
      z.avail_out = 1 << 20;
      r = inflate (&z, Z_NO_FLUSH);
      if (r != Z_OK && r != Z_STREAM_END)
        {
          inflateEnd (&z);
          g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "corrupt gzip data (%d)", r);
          return FALSE;
        }
      if (!bg_unpack_write_all (out, buf, (1 << 20) - z.avail_out, error))
        {
          inflateEnd (&z);
          return FALSE;
        }
    }
  while (r != Z_STREAM_END);
  inflateEnd (&z);
  return TRUE;
}

/* The compression @data starts with: "gzip", "xz", "zstd", "lz4", or
 * NULL for none banger knows. */
const char *
bg_unpack_format (const guint8 *data,
                  gsize         len)
{
  if (len > 2 && data[0] == 0x1f && data[1] == 0x8b)
    return "gzip";
  if (len > 6 && memcmp (data, "\xfd" "7zXZ\0", 6) == 0)
    return "xz";
  if (len > 4 && memcmp (data, "\x28\xb5\x2f\xfd", 4) == 0)
    return "zstd";
  if (len > 8 && memcmp (data, "\x02\x21\x4c\x18", 4) == 0)
    return "lz4";
  return NULL;
}

/* Decompresses @data (as bg_unpack_format() says) to @out_fd. */
gboolean
bg_unpack (const guint8  *data,
           gsize          len,
           int            out_fd,
           GError       **error)
{
  const char *format = bg_unpack_format (data, len);
  const BgUnpackModule *module;

  if (format == NULL)
    {
      g_set_error_literal (error, BG_ERROR, BG_ERROR_NOT_SUPPORTED, "not compressed in a way banger knows");
      return FALSE;
    }
  if (g_str_equal (format, "gzip"))
    return inflate_gzip (data, len, out_fd, error);
  if ((module = bg_unpack_module_load (error)) == NULL)
    return FALSE;
  if (g_str_equal (format, "xz"))
    return module->xz (data, len, out_fd, error);
  if (g_str_equal (format, "zstd"))
    return module->zstd (data, len, out_fd, error);
  return module->lz4_legacy (data, len, out_fd, error);
}
