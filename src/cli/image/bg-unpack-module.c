/* bg-unpack-module.c: banger's decompression module, opened (bg-module.c)
 * the first time an xz, zstd or LZ4 kernel or initrd is unpacked. */
#include "bg-unpack-module.h"

#include "bg-error.h"
#include "bg-module.h"
#include "bg-unpack-write.h"

/* What the module takes from the program that loads it (nm -D
 * --undefined-only banger-unpack.so), referred to here so that every
 * program that can load it holds and exports them (see
 * bg-registry-module.c). test-cli unpacks an xz kernel with banger, so a
 * name missing here fails there. */
__attribute__((used)) static const void * const module_imports[] = {
  (const void *) bg_error_quark,
  (const void *) bg_unpack_write_all,
};

static BgUnpackModule table;

static const BgModuleSymbol symbols[] = {
  { "bg_inflate_xz",         G_STRUCT_OFFSET (BgUnpackModule, xz) },
  { "bg_inflate_zstd",       G_STRUCT_OFFSET (BgUnpackModule, zstd) },
  { "bg_inflate_lz4_legacy", G_STRUCT_OFFSET (BgUnpackModule, lz4_legacy) },
};

static BgModule module = {
  .file = "banger-unpack.so",
  .what = "decompression module",
  .symbols = symbols,
  .n_symbols = G_N_ELEMENTS (symbols),
  .table = &table,
};

const BgUnpackModule *
bg_unpack_module_load (GError **error)
{
  return bg_module_load_table (&module, error) ? &table : NULL;
}
