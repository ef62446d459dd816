/* bg-initrd.h: what an initrd holds (its kernel modules), read off its
 * bytes. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

GHashTable  *bg_initrd_modules         (const guint8  *data,
                                        gsize          len,
                                        GError       **error);

G_END_DECLS
