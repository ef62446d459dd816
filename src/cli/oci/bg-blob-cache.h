/* bg-blob-cache.h: banger's content-addressed blob cache,
 * $XDG_CACHE_HOME/banger/blobs/sha256/<hex> (an OCI layout's blobs/ in
 * form, so the importer reads it as it reads a layout). A blob appears
 * under its name only whole and verified: it is written to an unnamed
 * file (O_TMPFILE) and linked in after its size and digest matched, so a
 * failed, interrupted or killed pull leaves nothing. Each pulled image
 * records the blobs it uses ("roots"), and prune removes all others. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct _BgBlobCache  BgBlobCache;
typedef struct _BgBlobWriter BgBlobWriter;

BgBlobCache  *bg_blob_cache_open      (gboolean       exclusive,
                                       GError       **error);
int           bg_blob_cache_dirfd     (BgBlobCache   *cache);
gboolean      bg_blob_cache_has       (BgBlobCache   *cache,
                                       const char    *digest,
                                       guint64        size);
GBytes       *bg_blob_cache_read      (BgBlobCache   *cache,
                                       const char    *digest,
                                       gsize          max,
                                       GError       **error);
gboolean      bg_blob_cache_put       (BgBlobCache   *cache,
                                       const char    *digest,
                                       GBytes        *bytes,
                                       GError       **error);
void          bg_blob_cache_free      (BgBlobCache   *cache);

BgBlobWriter *bg_blob_writer_new      (BgBlobCache   *cache,
                                       const char    *digest,
                                       guint64        size,
                                       GError       **error);
gboolean      bg_blob_writer_write    (BgBlobWriter  *w,
                                       const void    *data,
                                       gsize          len,
                                       GError       **error);
gboolean      bg_blob_writer_commit   (BgBlobWriter  *w,
                                       GError       **error);
guint64       bg_blob_writer_written  (BgBlobWriter  *w);
void          bg_blob_writer_free     (BgBlobWriter  *w);

/* Roots: which blobs a pulled image uses, and where it came from. */
typedef struct {
  char  *source;            /* "127.0.0.1:5000/app:1" as given, made full */
  char  *manifest_digest;
  char **blobs;             /* digests: the manifest, its config, its layers */
} BgBlobRoot;

gboolean      bg_blob_cache_set_root  (BgBlobCache   *cache,
                                       const char    *image,
                                       const BgBlobRoot *root,
                                       GError       **error);
BgBlobRoot   *bg_blob_cache_get_root  (BgBlobCache   *cache,
                                       const char    *image);
gboolean      bg_blob_cache_prune     (BgBlobCache   *cache,
                                       const char    *images_dir,
                                       guint         *out_count,
                                       guint64       *out_bytes,
                                       GError       **error);
void          bg_blob_root_free       (BgBlobRoot    *root);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgBlobCache, bg_blob_cache_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgBlobWriter, bg_blob_writer_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgBlobRoot, bg_blob_root_free)

G_END_DECLS
