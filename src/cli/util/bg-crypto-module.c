/* bg-crypto-module.c: banger's crypto module, opened (bg-module.c) the
 * first time a digest is computed or an SSH key made, or ahead of that
 * in a thread of its own (bg_crypto_preload). */
#include "bg-crypto-module.h"

#include "bg-cli.h"
#include "bg-module.h"

static BgCryptoModule table;

static const BgModuleSymbol symbols[] = {
  { "bg_crypto_sha256_new",         G_STRUCT_OFFSET (BgCryptoModule, sha256_new) },
  { "bg_crypto_sha256_update",      G_STRUCT_OFFSET (BgCryptoModule, sha256_update) },
  { "bg_crypto_sha256_digest",      G_STRUCT_OFFSET (BgCryptoModule, sha256_digest) },
  { "bg_crypto_sha256_free",        G_STRUCT_OFFSET (BgCryptoModule, sha256_free) },
  { "bg_crypto_ed25519_public_key", G_STRUCT_OFFSET (BgCryptoModule, ed25519_public_key) },
};

static BgModule module = {
  .file = "banger-crypto.so",
  .what = "crypto module",
  .symbols = symbols,
  .n_symbols = G_N_ELEMENTS (symbols),
  .table = &table,
};

/* bg_crypto_preload's thread, joined by the first use (from whichever
 * thread: vm up makes the host key on the main thread while its disk
 * thread digests the template's recipe). */
static GMutex preload_lock;
static GThread *preload;
static gboolean preload_started;

static gpointer
preload_run (gpointer data)
{
  bg_cli_block_interrupts ();
  /* A failure is kept with the module, for the first use to report. */
  bg_module_load_table (&module, NULL);
  return NULL;
}

/* Starts opening the module (and nettle, hogweed, GMP) in a thread, so
 * that the loading overlaps with a command's other work before its first
 * key or digest: for a command that nearly always needs one (vm up). */
void
bg_crypto_preload (void)
{
  g_mutex_lock (&preload_lock);
  if (!preload_started)
    {
      preload_started = TRUE;
      /* Without a thread, the first use loads it. */
      preload = g_thread_try_new ("banger-crypto", preload_run, NULL, NULL);
    }
  g_mutex_unlock (&preload_lock);
}

/* The module's functions, or NULL and why it cannot be loaded: a
 * preload's answer, once its thread is joined, or the first call's. */
const BgCryptoModule *
bg_crypto_module_load (GError **error)
{
  g_mutex_lock (&preload_lock);
  preload_started = TRUE;
  if (preload != NULL)
    g_thread_join (g_steal_pointer (&preload));
  g_mutex_unlock (&preload_lock);
  return bg_module_load_table (&module, error) ? &table : NULL;
}
