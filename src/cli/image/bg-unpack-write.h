/* bg-unpack-write.h: decompressed data written out (bg-unpack.c, and the
 * decompression module through banger's exported symbols). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

gboolean bg_unpack_write_all (int          fd,
                              const void  *data,
                              gsize        len,
                              GError     **error);

G_END_DECLS
