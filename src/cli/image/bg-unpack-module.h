/* bg-unpack-module.h: the decompressors of bg-inflate.h, loaded when a
 * kernel or initrd in xz, zstd or LZ4 is unpacked (bg-unpack.c). They
 * are a module of their own because liblzma, libzstd and liblz4 would
 * otherwise be loaded at every command's start, `vm up` included, for
 * the few commands that build or import an image. */
#pragma once

#include "bg-inflate.h"

G_BEGIN_DECLS

/* The module's functions, bg_inflate_<field>. */
typedef struct {
  __typeof__ (bg_inflate_xz)         *xz;
  __typeof__ (bg_inflate_zstd)       *zstd;
  __typeof__ (bg_inflate_lz4_legacy) *lz4_legacy;
} BgUnpackModule;

const BgUnpackModule *bg_unpack_module_load (GError **error);

G_END_DECLS
