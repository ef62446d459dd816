/* bg-unpack.c: the compressions kernels and initrds come in (gzip, xz,
 * zstd, and LZ4's legacy frame, as the kernel's build writes them),
 * decompressed in-process with their libraries. */
#include <errno.h>
#include <lz4.h>
#include <lzma.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "bg-error.h"
#include "bg-unpack.h"

static gboolean
write_all (int          fd,
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

static gboolean
inflate_gzip (const guint8 *in, gsize len, int out, GError **error)
{
  z_stream z = { 0 };
  g_autofree guint8 *buf = g_malloc (1 << 20);
  int r;

  if (inflateInit2 (&z, 16 + MAX_WBITS) != Z_OK)
    return FALSE;
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
      if (!write_all (out, buf, (1 << 20) - z.avail_out, error))
        {
          inflateEnd (&z);
          return FALSE;
        }
    }
  while (r != Z_STREAM_END);
  inflateEnd (&z);
  return TRUE;
}

static gboolean
inflate_xz (const guint8 *in, gsize len, int out, GError **error)
{
  lzma_stream s = LZMA_STREAM_INIT;
  g_autofree guint8 *buf = g_malloc (1 << 20);
  lzma_ret r;

  if (lzma_stream_decoder (&s, UINT64_MAX, 0) != LZMA_OK)
    return FALSE;
  s.next_in = in;
  s.avail_in = len;
  do
    {
      s.next_out = buf;
      s.avail_out = 1 << 20;
      r = lzma_code (&s, LZMA_FINISH);
      if (r != LZMA_OK && r != LZMA_STREAM_END)
        {
          lzma_end (&s);
          g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "corrupt xz data (%d)", r);
          return FALSE;
        }
      if (!write_all (out, buf, (1 << 20) - s.avail_out, error))
        {
          lzma_end (&s);
          return FALSE;
        }
    }
  while (r != LZMA_STREAM_END);
  lzma_end (&s);
  return TRUE;
}

static gboolean
inflate_zstd (const guint8 *in, gsize len, int out, GError **error)
{
  ZSTD_DStream *z = ZSTD_createDStream ();
  g_autofree guint8 *buf = g_malloc (ZSTD_DStreamOutSize ());
  ZSTD_inBuffer input = { in, len, 0 };
  size_t r = 1;

  ZSTD_initDStream (z);
  while (r != 0 && input.pos < input.size)
    {
      ZSTD_outBuffer output = { buf, ZSTD_DStreamOutSize (), 0 };
      r = ZSTD_decompressStream (z, &output, &input);
      if (ZSTD_isError (r))
        {
          g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "corrupt zstd data: %s",
                       ZSTD_getErrorName (r));
          ZSTD_freeDStream (z);
          return FALSE;
        }
      if (!write_all (out, buf, output.pos, error))
        {
          ZSTD_freeDStream (z);
          return FALSE;
        }
    }
  ZSTD_freeDStream (z);
  return TRUE;
}

/* LZ4's legacy frame, as the kernel's build writes it: a magic, then
 * blocks of at most 8 MiB uncompressed, each preceded by its compressed
 * size; the kernel appends its uncompressed size (4 bytes) at the end. */
static gboolean
inflate_lz4_legacy (const guint8 *in, gsize len, int out, GError **error)
{
  const gsize block_max = 8 << 20;
  g_autofree char *buf = g_malloc (block_max);
  gsize pos = 4;

  while (pos + 4 <= len)
    {
      guint32 size;
      int n;

      memcpy (&size, in + pos, 4);
      size = GUINT32_FROM_LE (size);
      pos += 4;
      if (size == 0x184C2102)   /* another legacy frame follows */
        continue;
      if (size == 0 || size > len - pos)
        break;                  /* the trailing uncompressed size */
      n = LZ4_decompress_safe ((const char *) in + pos, buf, size, block_max);
      if (n < 0)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "corrupt lz4 data");
          return FALSE;
        }
      if (!write_all (out, buf, n, error))
        return FALSE;
      pos += size;
    }
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

  if (g_strcmp0 (format, "gzip") == 0)
    return inflate_gzip (data, len, out_fd, error);
  if (g_strcmp0 (format, "xz") == 0)
    return inflate_xz (data, len, out_fd, error);
  if (g_strcmp0 (format, "zstd") == 0)
    return inflate_zstd (data, len, out_fd, error);
  if (g_strcmp0 (format, "lz4") == 0)
    return inflate_lz4_legacy (data, len, out_fd, error);
  g_set_error_literal (error, BG_ERROR, BG_ERROR_NOT_SUPPORTED, "not compressed in a way banger knows");
  return FALSE;
}
