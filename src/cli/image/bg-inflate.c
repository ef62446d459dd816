/* bg-inflate.c: the module banger-unpack.so (see bg-inflate.h): xz,
 * zstd, and LZ4's legacy frame, as the kernel's build writes them,
 * decompressed in-process with their libraries. */
#include <lz4.h>
#include <lzma.h>
#include <zstd.h>

#include "bg-error.h"
#include "bg-inflate.h"
#include "bg-unpack-write.h"

gboolean
bg_inflate_xz (const guint8  *in,
               gsize          len,
               int            out,
               GError       **error)
{
  lzma_stream s = LZMA_STREAM_INIT;
  g_autofree guint8 *buf = g_malloc (1 << 20);
  lzma_ret r;

  if (lzma_stream_decoder (&s, UINT64_MAX, 0) != LZMA_OK)
    {
      g_set_error_literal (error, BG_ERROR, BG_ERROR_FAILED, "cannot start the xz decoder");
      return FALSE;
    }
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
      if (!bg_unpack_write_all (out, buf, (1 << 20) - s.avail_out, error))
        {
          lzma_end (&s);
          return FALSE;
        }
    }
  while (r != LZMA_STREAM_END);
  lzma_end (&s);
  return TRUE;
}

gboolean
bg_inflate_zstd (const guint8  *in,
                 gsize          len,
                 int            out,
                 GError       **error)
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
      if (!bg_unpack_write_all (out, buf, output.pos, error))
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
gboolean
bg_inflate_lz4_legacy (const guint8  *in,
                       gsize          len,
                       int            out,
                       GError       **error)
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
      if (!bg_unpack_write_all (out, buf, n, error))
        return FALSE;
      pos += size;
    }
  return TRUE;
}
