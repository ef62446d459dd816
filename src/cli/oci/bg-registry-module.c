/* bg-registry-module.c: finds and opens banger's registry module, once:
 * the installed one, or (for an uninstalled build) the one in
 * $BANGER_MODULE_DIR, as bg-layer-spawn.c finds the layer applier. */
#include "bg-registry-module.h"

#include <gmodule.h>

#include "bg-blob-cache.h"
#include "bg-cli.h"
#include "bg-error.h"
#include "bg-oci-manifest.h"
#include "bg-progress.h"

/* Sanitizer builds (tools/test) only: GCC 12's LeakSanitizer follows
 * dynamic TLS through its __tls_get_addr interceptor and crashes in its
 * tracer ("Tracer caught signal 11") once the TLS backend's modules
 * (GnuTLS, loaded by GIO with dlopen; libsoup's own, in the registry
 * module) have thread-local storage; leak checking itself stays on.
 * ASAN_OPTIONS still overrides this. Here, not in the module: ASan reads
 * it at the program's start, from every program that can load the module. */
#if defined(__SANITIZE_ADDRESS__)
const char *__asan_default_options (void);
const char *
__asan_default_options (void)
{
  return "intercept_tls_get_addr=0";
}
#endif

#define MODULE_NAME "banger-registry.so"

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
static char *load_failure;   /* why the module could not be loaded */

static char *
module_path (void)
{
  const char *env = g_getenv ("BANGER_MODULE_DIR");

  return g_build_filename (env && *env ? env : BG_MODULEDIR, MODULE_NAME, NULL);
}

static void
load (void)
{
  static const struct { const char *name; gsize offset; } symbols[] = {
    { "bg_registry_new",          G_STRUCT_OFFSET (BgRegistryModule, new) },
    { "bg_registry_is_insecure",  G_STRUCT_OFFSET (BgRegistryModule, is_insecure) },
    { "bg_registry_get_manifest", G_STRUCT_OFFSET (BgRegistryModule, get_manifest) },
    { "bg_registry_fetch_start",  G_STRUCT_OFFSET (BgRegistryModule, fetch_start) },
    { "bg_registry_fetch_wait",   G_STRUCT_OFFSET (BgRegistryModule, fetch_wait) },
    { "bg_registry_fetch_has",    G_STRUCT_OFFSET (BgRegistryModule, fetch_has) },
    { "bg_registry_fetch_free",   G_STRUCT_OFFSET (BgRegistryModule, fetch_free) },
    { "bg_registry_free",         G_STRUCT_OFFSET (BgRegistryModule, free) },
  };
  g_autofree char *path = module_path ();
  GModule *module;

  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    {
      load_failure = g_strdup_printf ("banger's registry module is missing: %s (reinstall banger, or set "
                                      "BANGER_MODULE_DIR to a build's src/cli)", path);
      return;
    }
  /* Symbols bound now, so that a module of another build fails here,
   * by name, rather than in the middle of a pull. */
  module = g_module_open (path, G_MODULE_BIND_LOCAL);
  if (module == NULL)
    {
      load_failure = g_strdup_printf ("banger's registry module %s cannot be loaded: %s (reinstall banger)",
                                      path, g_module_error ());
      return;
    }
  for (guint i = 0; i < G_N_ELEMENTS (symbols); i++)
    if (!g_module_symbol (module, symbols[i].name, G_STRUCT_MEMBER_P (&table, symbols[i].offset)))
      {
        load_failure = g_strdup_printf ("banger's registry module %s lacks %s (reinstall banger)",
                                        path, symbols[i].name);
        g_module_close (module);
        return;
      }
  /* Kept for the process's life: its threads and objects outlive any caller. */
  g_module_make_resident (module);
}

const BgRegistryModule *
bg_registry_module_load (GError **error)
{
  static gsize once;

  if (g_once_init_enter (&once))
    {
      load ();
      g_once_init_leave (&once, 1);
    }
  if (load_failure != NULL)
    {
      g_set_error_literal (error, BG_ERROR, BG_ERROR_NOT_SUPPORTED, load_failure);
      return NULL;
    }
  return &table;
}
