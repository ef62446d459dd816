/* bg-registry-module.c: banger's registry module, opened (bg-module.c)
 * the first time `image pull` needs it. */
#include "bg-registry-module.h"

#include "bg-blob-cache.h"
#include "bg-cli.h"
#include "bg-error.h"
#include "bg-module.h"
#include "bg-oci-manifest.h"
#include "bg-progress.h"

/* What the module takes from the program that loads it (nm -D
 * --undefined-only banger-registry.so). A static library's member is
 * linked only when something refers to it: referring to each here makes
 * every program that can load the module (banger, bg-test-fetch) hold
 * them all, and export them (export_dynamic). test-cli loads the module
 * into banger, so a name missing here fails there. */
__attribute__((used)) static const void * const module_imports[] = {
  (const void *) bg_blob_writer_new,
  (const void *) bg_blob_writer_write,
  (const void *) bg_blob_writer_written,
  (const void *) bg_blob_writer_commit,
  (const void *) bg_blob_writer_free,
  (const void *) bg_error_quark,
  (const void *) &bg_interrupted,
  (const void *) bg_oci_manifest_accept,
  (const void *) bg_progress_bytes,
};

static BgRegistryModule table;

static const BgModuleSymbol symbols[] = {
  { "bg_registry_new",          G_STRUCT_OFFSET (BgRegistryModule, new) },
  { "bg_registry_is_insecure",  G_STRUCT_OFFSET (BgRegistryModule, is_insecure) },
  { "bg_registry_get_manifest", G_STRUCT_OFFSET (BgRegistryModule, get_manifest) },
  { "bg_registry_fetch_start",  G_STRUCT_OFFSET (BgRegistryModule, fetch_start) },
  { "bg_registry_fetch_wait",   G_STRUCT_OFFSET (BgRegistryModule, fetch_wait) },
  { "bg_registry_fetch_has",    G_STRUCT_OFFSET (BgRegistryModule, fetch_has) },
  { "bg_registry_fetch_free",   G_STRUCT_OFFSET (BgRegistryModule, fetch_free) },
  { "bg_registry_free",         G_STRUCT_OFFSET (BgRegistryModule, free) },
};

static BgModule module = {
  .file = "banger-registry.so",
  .what = "registry module",
  .symbols = symbols,
  .n_symbols = G_N_ELEMENTS (symbols),
  .table = &table,
};

const BgRegistryModule *
bg_registry_module_load (GError **error)
{
  return bg_module_load_table (&module, error) ? &table : NULL;
}
