/* bg-layer-header.c: a tar header's numbers and checksum, for the layer
 * applier (bg-layer.c) and the archive reader (bg-oci-archive.c). A file
 * of its own because the archive reader is in banger itself, and
 * bg-layer.c, with its decompressors, belongs to banger-layer-apply:
 * referring to it would link libzstd into every command's start. */
#include "bg-layer.h"

/* An octal field (NUL/space padded), or GNU's base-256 for big values. */
gboolean
bg_layer_parse_number (const guint8 *field,
                       gsize         len,
                       guint64      *out)
{
  guint64 v = 0;
  gsize i = 0;

  if (field[0] & 0x80)
    {
      if (field[0] != 0x80)
        return FALSE;   /* negative, or more than 64 bits */
      for (i = 1; i < len; i++)
        {
          if (v >> 56)
            return FALSE;
          v = (v << 8) | field[i];
        }
      *out = v;
      return TRUE;
    }
  while (i < len && field[i] == ' ')
    i++;
  for (; i < len && field[i] >= '0' && field[i] <= '7'; i++)
    {
      if (v >> 61)
        return FALSE;
      v = (v << 3) | (field[i] - '0');
    }
  for (; i < len; i++)
    if (field[i] != ' ' && field[i] != '\0')
      return FALSE;
  *out = v;
  return TRUE;
}

/* Whether @h, a tar header (one 512-byte block), holds the checksum of
 * its bytes (the checksum field counted as spaces), as unsigned or as
 * signed bytes (old tars summed signed chars). */
gboolean
bg_layer_check_header (const guint8 *h)
{
  guint64 want;
  guint64 u = 0;
  gint64 s = 0;

  if (!bg_layer_parse_number (h + 148, 8, &want))
    return FALSE;
  for (guint i = 0; i < 512; i++)
    {
      guint8 c = (i >= 148 && i < 156) ? ' ' : h[i];
      u += c;
      s += (gint8) c;
    }
  return want == u || (gint64) want == s;
}
