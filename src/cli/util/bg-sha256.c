/* bg-sha256.c: see bg-sha256.h. */
#include "bg-sha256.h"

#include "bg-crypto-module.h"

struct _BgSha256 {
  const BgCryptoModule *crypto;
  BgCryptoSha256       *ctx;
  char                  hex[BG_CRYPTO_SHA256_DIGEST_SIZE * 2 + 1];   /* set once the sum is final */
};

/* A new sum, or NULL if the crypto module cannot be loaded. */
BgSha256 *
bg_sha256_new (GError **error)
{
  const BgCryptoModule *crypto = bg_crypto_module_load (error);
  BgSha256 *sum;

  if (crypto == NULL)
    return NULL;
  sum = g_new0 (BgSha256, 1);
  sum->crypto = crypto;
  sum->ctx = crypto->sha256_new ();
  return sum;
}

void
bg_sha256_update (BgSha256   *sum,
                  const void *data,
                  gsize       len)
{
  g_return_if_fail (sum->hex[0] == '\0');
  sum->crypto->sha256_update (sum->ctx, data, len);
}

/* The sum in lowercase hex, as GChecksum gives it; no more updates then. */
const char *
bg_sha256_get_string (BgSha256 *sum)
{
  static const char digits[] = "0123456789abcdef";
  guint8 d[BG_CRYPTO_SHA256_DIGEST_SIZE];

  if (sum->hex[0] != '\0')
    return sum->hex;
  sum->crypto->sha256_digest (sum->ctx, d);
  for (guint i = 0; i < sizeof d; i++)
    {
      sum->hex[2 * i] = digits[d[i] >> 4];
      sum->hex[2 * i + 1] = digits[d[i] & 15];
    }
  sum->hex[sizeof d * 2] = '\0';
  return sum->hex;
}

char *
bg_sha256_for_data (const void  *data,
                    gsize        len,
                    GError     **error)
{
  g_autoptr(BgSha256) sum = bg_sha256_new (error);

  if (sum == NULL)
    return NULL;
  bg_sha256_update (sum, data, len);
  return g_strdup (bg_sha256_get_string (sum));
}

void
bg_sha256_free (BgSha256 *sum)
{
  sum->crypto->sha256_free (sum->ctx);
  g_free (sum);
}
