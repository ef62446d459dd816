/* bg-module.h: banger's own modules (banger-registry.so,
 * banger-unpack.so, banger-crypto.so), opened the first time a command
 * needs them, so that the libraries they link are not loaded at every
 * command's start. Each loader (bg-registry-module.c,
 * bg-unpack-module.c, bg-crypto-module.c) describes its module with a
 * BgModule and a table of the module's functions. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* One function of a module: its name, and where in the table it goes. */
typedef struct {
  const char *name;
  gsize       offset;   /* G_STRUCT_OFFSET (Table, field) */
} BgModuleSymbol;

typedef struct {
  const char            *file;        /* "banger-registry.so" */
  const char            *what;        /* in errors: "registry module" */
  const BgModuleSymbol  *symbols;
  guint                  n_symbols;
  gpointer               table;       /* filled once loaded */
  /* Private: loaded once for the process. */
  gsize                  once;
  char                  *failure;
} BgModule;

gboolean bg_module_load_table (BgModule  *module,
                               GError   **error);

G_END_DECLS
