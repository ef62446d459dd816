/* layer-tar.h: tar archives and compressed layers written by the tests
 * themselves, so hostile layers (names with "..", planted symlinks,
 * lying headers, bombs) are built exactly as an attacker would. */
#pragma once

#include <glib.h>

#include "bg-layer.h"

typedef struct {
  GByteArray *data;
} LayerTar;

LayerTar *layer_tar_new       (void);
/* type: '0' file, '1' hard link, '2' symlink, '3' char device, '5' dir;
 * @size_claim, when not 0, is the size written into the header instead
 * of @len (and no data follows it). Names longer than 100 bytes get a
 * pax header ('x'), or a GNU long name ('L') with @gnu. */
void      layer_tar_add_full  (LayerTar *t, char type, const char *name, const char *link,
                               guint mode, guint uid, guint gid,
                               const void *data, gsize len, guint64 size_claim, gboolean gnu);
/* A pax header ('x') of @keys (NULL-ended) and their binary @values,
 * for the entry added next. */
void      layer_tar_pax       (LayerTar *t, const char * const *keys, const GBytes * const *values);
void      layer_tar_file      (LayerTar *t, const char *name, const char *text, guint mode);
void      layer_tar_dir       (LayerTar *t, const char *name);
void      layer_tar_link      (LayerTar *t, char type, const char *name, const char *target);
/* The archive (with its end blocks), compressed as @c, and its spec
 * filled with the right digests and size (owned by the returned bytes'
 * caller via @digest_out / @diff_out). */
GBytes   *layer_tar_finish    (LayerTar *t, BgOciCompression c, char **digest_out, char **diff_out);
void      layer_tar_free      (LayerTar *t);
char     *layer_sha256        (const void *data, gsize len);
GBytes   *layer_gzip          (const void *data, gsize len);
GBytes   *layer_zstd          (const void *data, gsize len);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (LayerTar, layer_tar_free)
