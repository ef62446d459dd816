/* bg-inflate.h: xz, zstd and LZ4 (legacy) data decompressed to a file
 * descriptor: the module banger-unpack.so, which links liblzma, libzstd
 * and liblz4 so that banger does not. bg_unpack() (bg-unpack.c) calls
 * these through bg_unpack_module_load(); the module calls back into
 * banger for bg_unpack_write_all() (bg-unpack-write.c) and BG_ERROR. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

gboolean bg_inflate_xz         (const guint8  *data,
                                gsize          len,
                                int            out_fd,
                                GError       **error);
gboolean bg_inflate_zstd       (const guint8  *data,
                                gsize          len,
                                int            out_fd,
                                GError       **error);
gboolean bg_inflate_lz4_legacy (const guint8  *data,
                                gsize          len,
                                int            out_fd,
                                GError       **error);

G_END_DECLS
