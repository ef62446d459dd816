/* bg-unpack.h: gzip, xz, zstd and lz4 (legacy) data, decompressed. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

const char *bg_unpack_format (const guint8  *data,
                              gsize          len);
gboolean    bg_unpack        (const guint8  *data,
                              gsize          len,
                              int            out_fd,
                              GError       **error);

G_END_DECLS
