/* bg-crypto.h: SHA-256 and the ed25519 public key of a seed: the module
 * banger-crypto.so, which links nettle and hogweed (and with it GMP) so
 * that banger does not. bg-sha256.c and bg-keypair.c call these through
 * bg_crypto_module_load() (bg-crypto-module.c). The module takes nothing
 * from the program that loads it but GLib, so banger-layer-apply, which
 * exports nothing, loads it as banger does. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define BG_CRYPTO_SHA256_DIGEST_SIZE 32
#define BG_CRYPTO_ED25519_KEY_SIZE   32

/* A SHA-256 being computed (nettle's context). */
typedef struct _BgCryptoSha256 BgCryptoSha256;

BgCryptoSha256 *bg_crypto_sha256_new          (void);
void            bg_crypto_sha256_update       (BgCryptoSha256 *ctx,
                                               const void     *data,
                                               gsize           len);
void            bg_crypto_sha256_digest       (BgCryptoSha256 *ctx,
                                               guint8          digest[BG_CRYPTO_SHA256_DIGEST_SIZE]);
void            bg_crypto_sha256_free         (BgCryptoSha256 *ctx);
void            bg_crypto_ed25519_public_key  (guint8          public_key[BG_CRYPTO_ED25519_KEY_SIZE],
                                               const guint8    seed[BG_CRYPTO_ED25519_KEY_SIZE]);

G_END_DECLS
