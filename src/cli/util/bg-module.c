/* bg-module.c: finds and opens one of banger's modules, once: the
 * installed one, or (for an uninstalled build) the one in
 * $BANGER_MODULE_DIR, as bg-layer-spawn.c finds the layer applier. */
#include "bg-module.h"

#include <gmodule.h>

#include "bg-error.h"

/* Sanitizer builds (tools/test) only: GCC 12's LeakSanitizer follows
 * dynamic TLS through its __tls_get_addr interceptor and crashes in its
 * tracer ("Tracer caught signal 11") once the TLS backend's modules
 * (GnuTLS, loaded by GIO with dlopen; libsoup's own, in the registry
 * module) have thread-local storage; leak checking itself stays on.
 * ASAN_OPTIONS still overrides this. Here, not in a module: ASan reads
 * it at the program's start, from every program that can load one. */
#if defined(__SANITIZE_ADDRESS__)
const char *__asan_default_options (void);
const char *
__asan_default_options (void)
{
  return "intercept_tls_get_addr=0";
}
#endif

static char *
module_path (const char *file)
{
  const char *env = g_getenv ("BANGER_MODULE_DIR");

  return g_build_filename (env && *env ? env : BG_MODULEDIR, file, NULL);
}

/* NULL, or why @m cannot be loaded. */
static char *
load (BgModule *m)
{
  g_autofree char *path = module_path (m->file);
  GModule *module;

  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    return g_strdup_printf ("banger's %s is missing: %s (reinstall banger, or set "
                            "BANGER_MODULE_DIR to a build's src/cli)", m->what, path);
  /* Symbols bound now, so that a module of another build fails here,
   * by name, rather than in the middle of the work. */
  module = g_module_open (path, G_MODULE_BIND_LOCAL);
  if (module == NULL)
    return g_strdup_printf ("banger's %s %s cannot be loaded: %s (reinstall banger)",
                            m->what, path, g_module_error ());
  for (guint i = 0; i < m->n_symbols; i++)
    if (!g_module_symbol (module, m->symbols[i].name, G_STRUCT_MEMBER_P (m->table, m->symbols[i].offset)))
      {
        g_module_close (module);
        return g_strdup_printf ("banger's %s %s lacks %s (reinstall banger)",
                                m->what, path, m->symbols[i].name);
      }
  /* Kept for the process's life: its threads and objects outlive any caller. */
  g_module_make_resident (module);
  return NULL;
}

/* Opens @module's file and fills its table, the first time; later calls
 * give the first one's answer. */
gboolean
bg_module_load_table (BgModule  *module,
                      GError   **error)
{
  if (g_once_init_enter (&module->once))
    {
      module->failure = load (module);
      g_once_init_leave (&module->once, 1);
    }
  if (module->failure != NULL)
    {
      g_set_error_literal (error, BG_ERROR, BG_ERROR_NOT_SUPPORTED, module->failure);
      return FALSE;
    }
  return TRUE;
}
