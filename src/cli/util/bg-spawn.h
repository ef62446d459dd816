/* bg-spawn.h: the programs banger runs, found the same way for every
 * user, and one way to run them. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

char    *bg_program_find      (const char          *name);
gboolean bg_programs_require  (const char * const  *names,
                               const char          *purpose,
                               GError             **error);
gboolean bg_spawn_run         (const char * const  *argv,
                               char               **out,
                               GError             **error);

G_END_DECLS
