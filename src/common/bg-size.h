/* bg-size.h: parsing and printing sizes in binary units. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

gboolean    bg_parse_size          (const char  *str,
                                    guint64     *out_bytes,
                                    GError     **error);
char       *bg_format_size         (guint64      bytes);
char       *bg_format_size_human   (guint64      bytes);

G_END_DECLS
