/* bg-registry-module.c: finds and opens banger's registry module, once:
 * the installed one, or (for an uninstalled build) the one in
 * $BANGER_MODULE_DIR, as bg-layer-spawn.c finds the layer applier. */
#include "bg-registry-module.h"

#include <gmodule.h>

#include "bg-error.h"

#define MODULE_NAME "banger-registry.so"

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
