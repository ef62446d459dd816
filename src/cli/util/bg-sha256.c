/* bg-sha256.c: see bg-sha256.h. */
#include "bg-sha256.h"

#include <nettle/sha2.h>

struct _BgSha256 {
  struct sha256_ctx ctx;
  char              hex[SHA256_DIGEST_SIZE * 2 + 1];   /* set once the sum is final */
};

BgSha256 *
bg_sha256_new (void)
{
  BgSha256 *sum = g_new0 (BgSha256, 1);

  sha256_init (&sum->ctx);
  return sum;
}

void
bg_sha256_update (BgSha256   *sum,
                  const void *data,
                  gsize       len)
{
  g_return_if_fail (sum->hex[0] == '\0');
  sha256_update (&sum->ctx, len, data);
}

/* The sum in lowercase hex, as GChecksum gives it; no more updates then. */
const char *
bg_sha256_get_string (BgSha256 *sum)
{
  static const char digits[] = "0123456789abcdef";
  guint8 d[SHA256_DIGEST_SIZE];

  if (sum->hex[0] != '\0')
    return sum->hex;
  sha256_digest (&sum->ctx, sizeof d, d);
  for (guint i = 0; i < sizeof d; i++)
    {
      sum->hex[2 * i] = digits[d[i] >> 4];
      sum->hex[2 * i + 1] = digits[d[i] & 15];
    }
  sum->hex[sizeof d * 2] = '\0';
  return sum->hex;
}

char *
bg_sha256_for_data (const void *data,
                    gsize       len)
{
  g_autoptr(BgSha256) sum = bg_sha256_new ();

  bg_sha256_update (sum, data, len);
  return g_strdup (bg_sha256_get_string (sum));
}

void
bg_sha256_free (BgSha256 *sum)
{
  g_free (sum);
}
