/* kernel-sample.c: compressed kernels as the tests of unpacking need
 * them (test-image in-process, test-cli through banger). */
#include <lz4.h>
#include <lzma.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "kernel-sample.h"

/* @in compressed with @method: "gzip", "xz", "zstd", or "lz4" (the
 * kernel's legacy frame). */
GBytes *
bg_test_compress (GBytes     *in,
                  const char *method)
{
  gsize len;
  const guint8 *src = g_bytes_get_data (in, &len);
  gsize cap = len + 65536;
  guint8 *out = g_malloc (cap);
  gsize n = 0;

  if (g_str_equal (method, "gzip"))
    {
      z_stream z = { 0 };
      deflateInit2 (&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
      z.next_in = (guint8 *) src;
      z.avail_in = len;
      z.next_out = out;
      z.avail_out = cap;
      g_assert_cmpint (deflate (&z, Z_FINISH), ==, Z_STREAM_END);
      n = z.total_out;
      deflateEnd (&z);
    }
  else if (g_str_equal (method, "xz"))
    g_assert_cmpint (lzma_easy_buffer_encode (6, LZMA_CHECK_CRC32, NULL, src, len, out, &n, cap), ==, LZMA_OK);
  else if (g_str_equal (method, "lz4"))
    {
      /* The legacy frame the kernel uses: magic, then size-prefixed blocks. */
      guint32 magic = GUINT32_TO_LE (0x184C2102), size;
      int c = LZ4_compress_default ((const char *) src, (char *) out + 8, len, cap - 8);
      memcpy (out, &magic, 4);
      size = GUINT32_TO_LE (c);
      memcpy (out + 4, &size, 4);
      n = 8 + c;
    }
  else
    n = ZSTD_compress (out, cap, src, len, 3);
  return g_bytes_new_take (out, n);
}

/* A bzImage as the boot protocol lays it out: setup sectors with the
 * header, then the protected-mode part holding the payload. */
GBytes *
bg_test_bzimage (GBytes *payload)
{
  gsize plen;
  const guint8 *p = g_bytes_get_data (payload, &plen);
  guint setup_sects = 4;
  gsize start = (setup_sects + 1) * 512 + 256;   /* payload_offset 256 */
  gsize len = start + plen + 4;
  guint8 *data = g_malloc0 (len);
  guint32 off = GUINT32_TO_LE (256), l = GUINT32_TO_LE (plen);

  data[0x1f1] = setup_sects;
  memcpy (data + 0x202, "HdrS", 4);
  data[0x206] = 0x0f;
  data[0x207] = 0x02;
  memcpy (data + 0x248, &off, 4);
  memcpy (data + 0x24c, &l, 4);
  memcpy (data + start, p, plen);
  return g_bytes_new_take (data, len);
}
