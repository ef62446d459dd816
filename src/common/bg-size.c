/* bg-size.c: sizes as people write them ("8G", "512MiB") and as banger
 * prints them, shared by the CLI (banger.conf, --disk) and the mechanism
 * (its limits in mechanism.conf, its errors). */
#include <errno.h>
#include <string.h>

#include "bg-error.h"
#include "bg-size.h"

/* Sizes are binary multiples: "512M", "8G", "8GiB", "1T" or plain bytes. */
gboolean
bg_parse_size (const char  *str,
               guint64     *out_bytes,
               GError     **error)
{
  const char *p = str;
  char *end = NULL;
  guint64 value;
  guint shift = 0;

  if (str == NULL || !g_ascii_isdigit (*p))
    goto bad;

  errno = 0;
  value = g_ascii_strtoull (p, &end, 10);
  if (errno != 0 || end == p)
    goto bad;

  switch (g_ascii_toupper (*end))
    {
    case '\0':
    case 'B': shift = 0; break;
    case 'K': shift = 10; end++; break;
    case 'M': shift = 20; end++; break;
    case 'G': shift = 30; end++; break;
    case 'T': shift = 40; end++; break;
    default: goto bad;
    }
  if (shift > 0)
    {
      if (g_ascii_strcasecmp (end, "iB") == 0 || g_ascii_strcasecmp (end, "B") == 0)
        end += strlen (end);
    }
  else if (g_ascii_strcasecmp (end, "B") == 0)
    end++;
  if (*end != '\0')
    goto bad;

  if (shift > 0 && value > (G_MAXUINT64 >> shift))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                   "size \"%s\" is too large", str);
      return FALSE;
    }

  *out_bytes = value << shift;
  return TRUE;

bad:
  {
    g_autofree char *shown = g_strescape (str ? str : "", NULL);
    g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                 "invalid size \"%s\"; use a number with an optional K, M, G or T suffix, like 8G",
                 shown);
  }
  return FALSE;
}

/* @bytes in the largest binary unit: exactly ("2G", "512M"; bytes when
 * no unit divides it) or, for people, to a tenth ("53.1M", "17B"). */
static char *
format_size (guint64  bytes,
             gboolean exact)
{
  static const char units[] = "KMGT";

  for (int i = 3; i >= 0; i--)
    {
      guint64 unit = G_GUINT64_CONSTANT (1) << (10 * (i + 1));

      if (exact && bytes >= unit && bytes % unit == 0)
        return g_strdup_printf ("%" G_GUINT64_FORMAT "%c", bytes / unit, units[i]);
      if (!exact && bytes >= unit)
        return g_strdup_printf ("%.1f%c", (double) bytes / unit, units[i]);
    }
  return g_strdup_printf (exact ? "%" G_GUINT64_FORMAT : "%" G_GUINT64_FORMAT "B", bytes);
}

char *
bg_format_size_human (guint64 bytes)
{
  return format_size (bytes, FALSE);
}

char *
bg_format_size (guint64 bytes)
{
  return format_size (bytes, TRUE);
}
