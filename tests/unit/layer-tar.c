/* layer-tar.c: see layer-tar.h. */
#include <zlib.h>
#include <zstd.h>

#include "layer-tar.h"

LayerTar *
layer_tar_new (void)
{
  LayerTar *t = g_new0 (LayerTar, 1);
  t->data = g_byte_array_new ();
  return t;
}

void
layer_tar_free (LayerTar *t)
{
  if (t->data)
    g_byte_array_unref (t->data);
  g_free (t);
}

static void
put_header (LayerTar *t, char type, const char *name, const char *link,
            guint mode, guint uid, guint gid, guint64 size)
{
  guint8 h[512] = { 0 };
  guint sum = 0;

  strncpy ((char *) h, name, 100);
  g_snprintf ((char *) h + 100, 8, "%07o", mode);
  g_snprintf ((char *) h + 108, 8, "%07o", uid);
  g_snprintf ((char *) h + 116, 8, "%07o", gid);
  if (size < 077777777777ull)
    g_snprintf ((char *) h + 124, 12, "%011llo", (unsigned long long) size);
  else
    {
      /* GNU base-256, as tar writes sizes of 8 GiB and more. */
      h[124] = 0x80;
      for (int i = 0; i < 8; i++)
        h[135 - i] = (size >> (8 * i)) & 0xff;
    }
  g_snprintf ((char *) h + 136, 12, "%011o", 1700000000u);
  memset (h + 148, ' ', 8);
  h[156] = type;
  if (link)
    strncpy ((char *) h + 157, link, 100);
  memcpy (h + 257, "ustar\0" "00", 8);
  for (int i = 0; i < 512; i++)
    sum += h[i];
  g_snprintf ((char *) h + 148, 8, "%06o", sum);
  g_byte_array_append (t->data, h, 512);
}

static void
pad (LayerTar *t)
{
  static const guint8 zero[512];
  if (t->data->len % 512)
    g_byte_array_append (t->data, zero, 512 - t->data->len % 512);
}

static void
put_body (LayerTar *t, const void *data, gsize len)
{
  g_byte_array_append (t->data, data, len);
  pad (t);
}

void
layer_tar_add_full (LayerTar *t, char type, const char *name, const char *link,
                    guint mode, guint uid, guint gid,
                    const void *data, gsize len, guint64 size_claim, gboolean gnu)
{
  if (strlen (name) > 100 || (link && strlen (link) > 100))
    {
      if (gnu)
        {
          put_header (t, 'L', "././@LongLink", NULL, 0644, 0, 0, strlen (name) + 1);
          put_body (t, name, strlen (name) + 1);
        }
      else
        {
          g_autoptr(GString) pax = g_string_new (NULL);
          const char *keys[] = { "path", "linkpath" };
          const char *vals[] = { name, link };

          for (int k = 0; k < 2; k++)
            {
              gsize body, total, digits = 1;
              char num[32];
              if (vals[k] == NULL || (k == 1 && strlen (vals[k]) <= 100))
                continue;
              body = strlen (keys[k]) + strlen (vals[k]) + 3;   /* " k=v\n" without the length */
              for (;; digits++)
                {
                  total = body + digits;
                  if ((gsize) g_snprintf (num, sizeof num, "%" G_GSIZE_FORMAT, total) == digits)
                    break;
                }
              g_string_append_printf (pax, "%" G_GSIZE_FORMAT " %s=%s\n", total, keys[k], vals[k]);
            }
          put_header (t, 'x', "PaxHeaders/x", NULL, 0644, 0, 0, pax->len);
          put_body (t, pax->str, pax->len);
        }
    }
  put_header (t, type, name, link, mode, uid, gid, size_claim ? size_claim : len);
  if (len)
    put_body (t, data, len);
}

void
layer_tar_pax (LayerTar *t, const char * const *keys, const GBytes * const *values)
{
  g_autoptr(GByteArray) pax = g_byte_array_new ();

  for (guint k = 0; keys[k]; k++)
    {
      gsize vlen = g_bytes_get_size ((GBytes *) values[k]);
      gsize body = strlen (keys[k]) + vlen + 3, total, digits = 1;
      char num[32];

      for (;; digits++)
        {
          total = body + digits;
          if ((gsize) g_snprintf (num, sizeof num, "%" G_GSIZE_FORMAT, total) == digits)
            break;
        }
      g_byte_array_append (pax, (const guint8 *) num, digits);
      g_byte_array_append (pax, (const guint8 *) " ", 1);
      g_byte_array_append (pax, (const guint8 *) keys[k], strlen (keys[k]));
      g_byte_array_append (pax, (const guint8 *) "=", 1);
      g_byte_array_append (pax, g_bytes_get_data ((GBytes *) values[k], NULL), vlen);
      g_byte_array_append (pax, (const guint8 *) "\n", 1);
    }
  put_header (t, 'x', "PaxHeaders/x", NULL, 0644, 0, 0, pax->len);
  put_body (t, pax->data, pax->len);
}

void
layer_tar_file (LayerTar *t, const char *name, const char *text, guint mode)
{
  layer_tar_add_full (t, '0', name, NULL, mode, 0, 0, text, strlen (text), 0, FALSE);
}

void
layer_tar_dir (LayerTar *t, const char *name)
{
  layer_tar_add_full (t, '5', name, NULL, 0755, 0, 0, NULL, 0, 0, FALSE);
}

void
layer_tar_link (LayerTar *t, char type, const char *name, const char *target)
{
  layer_tar_add_full (t, type, name, target, 0777, 0, 0, NULL, 0, 0, FALSE);
}

char *
layer_sha256 (const void *data, gsize len)
{
  g_autofree char *hex = g_compute_checksum_for_data (G_CHECKSUM_SHA256, data, len);
  return g_strconcat ("sha256:", hex, NULL);
}

GBytes *
layer_gzip (const void *data, gsize len)
{
  z_stream z = { 0 };
  gsize cap = compressBound (len) + 64;
  guint8 *out = g_malloc (cap);

  g_assert_cmpint (deflateInit2 (&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), ==, Z_OK);
  z.next_in = (guint8 *) data;
  z.avail_in = len;
  z.next_out = out;
  z.avail_out = cap;
  g_assert_cmpint (deflate (&z, Z_FINISH), ==, Z_STREAM_END);
  deflateEnd (&z);
  return g_bytes_new_take (out, z.total_out);
}

GBytes *
layer_zstd (const void *data, gsize len)
{
  gsize cap = ZSTD_compressBound (len);
  guint8 *out = g_malloc (cap);
  gsize n = ZSTD_compress (out, cap, data, len, 3);

  g_assert_false (ZSTD_isError (n));
  return g_bytes_new_take (out, n);
}

GBytes *
layer_tar_finish (LayerTar *t, BgOciCompression c, char **digest_out, char **diff_out)
{
  static const guint8 zero[1024];
  GBytes *blob;

  g_byte_array_append (t->data, zero, sizeof zero);
  if (diff_out)
    *diff_out = layer_sha256 (t->data->data, t->data->len);
  if (c == BG_OCI_COMPRESSION_GZIP)
    blob = layer_gzip (t->data->data, t->data->len);
  else if (c == BG_OCI_COMPRESSION_ZSTD)
    blob = layer_zstd (t->data->data, t->data->len);
  else
    blob = g_bytes_new (t->data->data, t->data->len);
  if (digest_out)
    *digest_out = layer_sha256 (g_bytes_get_data (blob, NULL), g_bytes_get_size (blob));
  return blob;
}
