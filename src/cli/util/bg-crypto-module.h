/* bg-crypto-module.h: the SHA-256 and ed25519 of bg-crypto.h, loaded
 * the first time a digest is computed or an SSH key made. They are a
 * module of their own because nettle, hogweed and GMP would otherwise be
 * loaded at every command's start (about 0.27 ms here), for the few
 * commands that make a VM or pull or import an image. */
#pragma once

#include "bg-crypto.h"

G_BEGIN_DECLS

/* The module's functions, bg_crypto_<field>. */
typedef struct {
  __typeof__ (bg_crypto_sha256_new)         *sha256_new;
  __typeof__ (bg_crypto_sha256_update)      *sha256_update;
  __typeof__ (bg_crypto_sha256_digest)      *sha256_digest;
  __typeof__ (bg_crypto_sha256_free)        *sha256_free;
  __typeof__ (bg_crypto_ed25519_public_key) *ed25519_public_key;
} BgCryptoModule;

void                  bg_crypto_preload     (void);
const BgCryptoModule *bg_crypto_module_load (GError **error);

G_END_DECLS
