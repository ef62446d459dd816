/* bg-crypto.c: the module banger-crypto.so (see bg-crypto.h): nettle's
 * SHA-256, which uses the CPU's SHA extensions when it has them, and
 * hogweed's ed25519 (on GMP). */
#include <nettle/eddsa.h>
#include <nettle/sha2.h>

#include "bg-crypto.h"

G_STATIC_ASSERT (BG_CRYPTO_SHA256_DIGEST_SIZE == SHA256_DIGEST_SIZE);
G_STATIC_ASSERT (BG_CRYPTO_ED25519_KEY_SIZE == ED25519_KEY_SIZE);

struct _BgCryptoSha256 {
  struct sha256_ctx ctx;
};

BgCryptoSha256 *
bg_crypto_sha256_new (void)
{
  BgCryptoSha256 *s = g_new (BgCryptoSha256, 1);

  sha256_init (&s->ctx);
  return s;
}

void
bg_crypto_sha256_update (BgCryptoSha256 *s,
                         const void     *data,
                         gsize           len)
{
  sha256_update (&s->ctx, len, data);
}

void
bg_crypto_sha256_digest (BgCryptoSha256 *s,
                         guint8          digest[BG_CRYPTO_SHA256_DIGEST_SIZE])
{
  sha256_digest (&s->ctx, SHA256_DIGEST_SIZE, digest);
}

void
bg_crypto_sha256_free (BgCryptoSha256 *s)
{
  g_free (s);
}

void
bg_crypto_ed25519_public_key (guint8       public_key[BG_CRYPTO_ED25519_KEY_SIZE],
                              const guint8 seed[BG_CRYPTO_ED25519_KEY_SIZE])
{
  ed25519_sha512_public_key (public_key, seed);
}
