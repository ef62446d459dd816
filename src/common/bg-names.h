#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define BG_NAME_MAX_LEN 31
#define BG_NAME_RULE "1 to 31 characters of a-z, 0-9 and '-', starting with a letter or digit"

gboolean bg_name_is_valid (const char *name);
gboolean bg_name_validate (const char  *field,
                           const char  *name,
                           GError     **error);

G_END_DECLS
