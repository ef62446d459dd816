/* bg-blob-cache.c: see bg-blob-cache.h. */
#include "bg-blob-cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "bg-error.h"
#include "bg-fd.h"
#include "bg-names.h"
#include "bg-sha256.h"

#define ROOT_MAX  (1u << 20)

struct _BgBlobCache {
  char *path;        /* .../banger/blobs */
  char *roots;       /* .../banger/blob-roots */
  int   dirfd;       /* blobs/, flocked: shared by pulls, exclusive by prune */
  int   sha_fd;      /* blobs/sha256 */
};

struct _BgBlobWriter {
  BgBlobCache *cache;
  char        *digest;
  guint64      size;
  guint64      written;
  BgSha256    *sum;
  int          fd;
  char        *tmp_name;   /* when the filesystem has no O_TMPFILE */
};

/* "sha256:<hex>" → "<hex>", or NULL for anything else (names in the
 * cache are only ever 64 hex digits, never a path). */
static const char *
digest_hex (const char *digest)
{
  if (digest == NULL || !g_str_has_prefix (digest, "sha256:") || strlen (digest) != 71)
    return NULL;
  for (const char *c = digest + 7; *c; c++)
    if (!(g_ascii_isdigit (*c) || (*c >= 'a' && *c <= 'f')))
      return NULL;
  return digest + 7;
}

/* @exclusive: for a prune, which fails (BG_ERROR_BUSY) rather than
 * waits while a pull holds the cache. */
BgBlobCache *
bg_blob_cache_open (gboolean   exclusive,
                    GError   **error)
{
  g_autoptr(BgBlobCache) cache = g_new0 (BgBlobCache, 1);
  g_autofree char *base = g_build_filename (g_get_user_cache_dir (), "banger", NULL);

  cache->dirfd = cache->sha_fd = -1;
  cache->path = g_build_filename (base, "blobs", NULL);
  cache->roots = g_build_filename (base, "blob-roots", NULL);
  if (g_mkdir_with_parents (cache->path, 0700) < 0 || g_mkdir_with_parents (cache->roots, 0700) < 0)
    return bg_error_errno (error, errno, "Cannot make the blob cache", cache->path), NULL;
  cache->dirfd = open (cache->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cache->dirfd < 0)
    return bg_error_errno (error, errno, "Cannot open the blob cache", cache->path), NULL;
  /* A prune must not remove a blob a pull has just fetched and not yet
   * imported: pulls share the lock, a prune takes it alone, or not at
   * all while a pull runs (the next prune frees what this one could not). */
  if (flock (cache->dirfd, exclusive ? LOCK_EX | LOCK_NB : LOCK_SH) < 0)
    {
      if (errno == EWOULDBLOCK)
        return g_set_error (error, BG_ERROR, BG_ERROR_BUSY, "a pull is using the blob cache %s", cache->path), NULL;
      return bg_error_errno (error, errno, "Cannot lock the blob cache", cache->path), NULL;
    }
  if (mkdirat (cache->dirfd, "sha256", 0700) < 0 && errno != EEXIST)
    return bg_error_errno (error, errno, "Cannot make the blob cache", cache->path), NULL;
  cache->sha_fd = openat (cache->dirfd, "sha256", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (cache->sha_fd < 0)
    return bg_error_errno (error, errno, "Cannot open the blob cache", cache->path), NULL;
  return g_steal_pointer (&cache);
}

void
bg_blob_cache_free (BgBlobCache *cache)
{
  if (cache == NULL)
    return;
  bg_fd_clear (&cache->sha_fd);
  bg_fd_clear (&cache->dirfd);
  g_free (cache->path);
  g_free (cache->roots);
  g_free (cache);
}

int
bg_blob_cache_dirfd (BgBlobCache *cache)
{
  return cache->dirfd;
}

/* Present with the size the manifest gives. Its content was verified
 * when it was linked in; the importer checks every digest again as it
 * reads, so a blob changed on disk since is caught there. */
gboolean
bg_blob_cache_has (BgBlobCache *cache,
                   const char  *digest,
                   guint64      size)
{
  const char *hex = digest_hex (digest);
  struct stat st;

  return hex != NULL && fstatat (cache->sha_fd, hex, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
         S_ISREG (st.st_mode) && (guint64) st.st_size == size;
}

/* A small blob (a manifest, a config), read whole, bounded, verified. */
GBytes *
bg_blob_cache_read (BgBlobCache *cache,
                    const char  *digest,
                    gsize        max,
                    GError     **error)
{
  const char *hex = digest_hex (digest);
  g_auto(BgFd) fd = -1;
  g_autofree char *data = NULL;
  g_autofree char *sum = NULL;
  struct stat st;
  gsize got = 0;

  if (hex == NULL)
    return g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "not a sha256 digest"), NULL;
  fd = openat (cache->sha_fd, hex, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 || fstat (fd, &st) < 0)
    return bg_error_errno (error, errno, "Cannot read cached blob", digest), NULL;
  if (!S_ISREG (st.st_mode) || (guint64) st.st_size > max)
    return g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cached blob %s is larger than %" G_GSIZE_FORMAT " bytes",
                        digest, max), NULL;
  data = g_malloc (st.st_size + 1);
  while (got < (gsize) st.st_size)
    {
      ssize_t n = read (fd, data + got, st.st_size - got);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return bg_error_errno (error, errno, "Cannot read cached blob", digest), NULL;
      got += n;
    }
  if ((sum = bg_sha256_for_data (data, got, error)) == NULL)
    return NULL;
  if (!g_str_equal (sum, hex))
    return g_set_error (error, BG_ERROR, BG_ERROR_FAILED,
                        "cached blob %s does not match its digest; remove it from %s", digest, cache->path), NULL;
  return g_bytes_new_take (g_steal_pointer (&data), got);
}

gboolean
bg_blob_cache_put (BgBlobCache *cache,
                   const char  *digest,
                   GBytes      *bytes,
                   GError     **error)
{
  g_autoptr(BgBlobWriter) w = NULL;
  gsize len;
  const void *data = g_bytes_get_data (bytes, &len);

  if (bg_blob_cache_has (cache, digest, len))
    return TRUE;
  w = bg_blob_writer_new (cache, digest, len, error);
  return w != NULL && bg_blob_writer_write (w, data, len, error) && bg_blob_writer_commit (w, error);
}

/* ---- writing one blob ---- */

BgBlobWriter *
bg_blob_writer_new (BgBlobCache *cache,
                    const char  *digest,
                    guint64      size,
                    GError     **error)
{
  g_autoptr(BgBlobWriter) w = g_new0 (BgBlobWriter, 1);

  w->fd = -1;
  if (digest_hex (digest) == NULL)
    return g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                        "blob digest \"%.80s\" is not sha256: and 64 lowercase hex digits", digest), NULL;
  w->cache = cache;
  w->digest = g_strdup (digest);
  w->size = size;
  if ((w->sum = bg_sha256_new (error)) == NULL)
    return NULL;
  /* Unnamed until verified: nothing to clean up after a crash or kill. */
  w->fd = openat (cache->sha_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (w->fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL))
    {
      w->tmp_name = g_strdup_printf (".tmp-%s-%08x", digest_hex (digest), g_random_int ());
      w->fd = openat (cache->sha_fd, w->tmp_name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
      if (w->fd < 0)
        g_clear_pointer (&w->tmp_name, g_free);
    }
  if (w->fd < 0)
    return bg_error_errno (error, errno, "Cannot write to the blob cache", cache->path), NULL;
  return g_steal_pointer (&w);
}

/* Refuses a blob growing past its declared size before writing a byte
 * of it: the manifest's size is the bound on what a registry may send. */
gboolean
bg_blob_writer_write (BgBlobWriter *w,
                      const void   *data,
                      gsize         len,
                      GError      **error)
{
  const char *p = data;

  if (len > w->size - w->written)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED,
                   "blob %s is larger than the %" G_GUINT64_FORMAT " bytes its manifest gives; refused",
                   w->digest, w->size);
      return FALSE;
    }
  bg_sha256_update (w->sum, data, len);
  w->written += len;
  while (len > 0)
    {
      ssize_t n = write (w->fd, p, len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return bg_error_errno (error, errno, "Cannot write to the blob cache", w->cache->path);
      p += n;
      len -= n;
    }
  return TRUE;
}

guint64
bg_blob_writer_written (BgBlobWriter *w)
{
  return w->written;
}

gboolean
bg_blob_writer_commit (BgBlobWriter *w,
                       GError      **error)
{
  const char *hex = digest_hex (w->digest);
  const char *sum;

  if (w->written != w->size)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED,
                   "blob %s ended after %" G_GUINT64_FORMAT " of its %" G_GUINT64_FORMAT " bytes; refused",
                   w->digest, w->written, w->size);
      return FALSE;
    }
  sum = bg_sha256_get_string (w->sum);
  if (!g_str_equal (sum, hex))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED,
                   "blob %s does not match its digest (the registry sent sha256:%s); refused, nothing kept",
                   w->digest, sum);
      return FALSE;
    }
  /* No fsync: the cache is content-addressed and verified on use, so a
   * blob a crash takes costs a fetch again, never a wrong image. A name is linked
   * only to content verified here; every reader checks the digest again
   * as it reads (the layer applier, bg_blob_cache_read()), so a blob a
   * crash left short or empty (its data not yet written back) is never
   * used: bg_blob_cache_has() sees the wrong size and the blob is fetched
   * again, replacing it below (ext4's ordered mode and XFS write the data
   * before the size that covers it, so a crash leaves a blob short, not
   * wrong), and one whose size survived but not its bytes would fail
   * the applier's digest check rather than make an image.
   * The writeback then happens after the pull, not in its way. */
  if (w->tmp_name != NULL)
    {
      if (renameat (w->cache->sha_fd, w->tmp_name, w->cache->sha_fd, hex) < 0)
        return bg_error_errno (error, errno, "Cannot write to the blob cache", w->cache->path);
      g_clear_pointer (&w->tmp_name, g_free);
      return TRUE;
    }
  {
    g_autofree char *self = g_strdup_printf ("/proc/self/fd/%d", w->fd);

    /* Another pull may have linked the same verified blob meanwhile
     * (kept); one of the wrong size, a crash's leftover, is replaced. */
    for (guint tries = 0; linkat (AT_FDCWD, self, w->cache->sha_fd, hex, AT_SYMLINK_FOLLOW) < 0; tries++)
      {
        if (errno != EEXIST || tries > 0)
          return bg_error_errno (error, errno, "Cannot write to the blob cache", w->cache->path);
        if (bg_blob_cache_has (w->cache, w->digest, w->size))
          break;
        if (unlinkat (w->cache->sha_fd, hex, 0) < 0 && errno != ENOENT)
          return bg_error_errno (error, errno, "Cannot write to the blob cache", w->cache->path);
      }
  }
  return TRUE;
}

void
bg_blob_writer_free (BgBlobWriter *w)
{
  if (w == NULL)
    return;
  if (w->tmp_name != NULL)
    unlinkat (w->cache->sha_fd, w->tmp_name, 0);
  bg_fd_clear (&w->fd);
  if (w->sum != NULL)
    bg_sha256_free (w->sum);
  g_free (w->digest);
  g_free (w->tmp_name);
  g_free (w);
}

/* ---- roots ---- */

void
bg_blob_root_free (BgBlobRoot *root)
{
  if (root == NULL)
    return;
  g_free (root->source);
  g_free (root->manifest_digest);
  g_strfreev (root->blobs);
  g_free (root);
}

gboolean
bg_blob_cache_set_root (BgBlobCache      *cache,
                        const char       *image,
                        const BgBlobRoot *root,
                        GError          **error)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) node = NULL;
  g_autofree char *text = NULL;
  g_autofree char *file = NULL;

  if (!bg_name_validate ("image", image, error))
    return FALSE;
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "source");
  json_builder_add_string_value (b, root->source);
  json_builder_set_member_name (b, "manifest-digest");
  json_builder_add_string_value (b, root->manifest_digest);
  json_builder_set_member_name (b, "blobs");
  json_builder_begin_array (b);
  for (guint i = 0; root->blobs[i] != NULL; i++)
    json_builder_add_string_value (b, root->blobs[i]);
  json_builder_end_array (b);
  json_builder_end_object (b);
  node = json_builder_get_root (b);
  json_generator_set_root (gen, node);
  text = json_generator_to_data (gen, NULL);
  file = g_strdup_printf ("%s/%s.json", cache->roots, image);
  return g_file_set_contents_full (file, text, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, error);
}

/* NULL when the image has no root or it cannot be read (then it is as
 * if the image had never been pulled: the next pull fetches again). */
BgBlobRoot *
bg_blob_cache_get_root (BgBlobCache *cache,
                        const char  *image)
{
  g_autofree char *file = NULL;
  g_autofree char *text = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(BgBlobRoot) root = g_new0 (BgBlobRoot, 1);
  g_autoptr(GStrvBuilder) blobs = g_strv_builder_new ();
  JsonObject *o;
  JsonArray *a;
  gsize len;

  if (!bg_name_is_valid (image))
    return NULL;
  file = g_strdup_printf ("%s/%s.json", cache->roots, image);
  if (!g_file_get_contents (file, &text, &len, NULL) || len > ROOT_MAX ||
      !json_parser_load_from_data (parser, text, len, NULL) ||
      !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    return NULL;
  o = json_node_get_object (json_parser_get_root (parser));
  if (!json_object_has_member (o, "blobs") || !JSON_NODE_HOLDS_ARRAY (json_object_get_member (o, "blobs")))
    return NULL;
  root->source = g_strdup (json_object_get_string_member_with_default (o, "source", NULL));
  root->manifest_digest = g_strdup (json_object_get_string_member_with_default (o, "manifest-digest", NULL));
  a = json_object_get_array_member (o, "blobs");
  for (guint i = 0; i < json_array_get_length (a); i++)
    {
      const char *d = json_node_get_string (json_array_get_element (a, i));
      if (digest_hex (d) != NULL)
        g_strv_builder_add (blobs, d);
    }
  root->blobs = g_strv_builder_end (blobs);
  if (root->source == NULL || root->manifest_digest == NULL)
    return NULL;
  return g_steal_pointer (&root);
}

/* Removes every blob no pulled image uses, and the roots of images that
 * are gone. The caller opened the cache exclusive, so no pull is
 * between fetching and importing meanwhile. */
gboolean
bg_blob_cache_prune (BgBlobCache *cache,
                     const char  *images_dir,
                     guint       *out_count,
                     guint64     *out_bytes,
                     GError     **error)
{
  g_autoptr(GHashTable) used = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GDir) roots = g_dir_open (cache->roots, 0, error);
  g_auto(BgFd) scan_fd = -1;
  DIR *dir;
  struct dirent *e;
  const char *entry;
  guint count = 0;
  guint64 bytes = 0;

  if (roots == NULL)
    return FALSE;
  while ((entry = g_dir_read_name (roots)) != NULL)
    {
      g_autofree char *image = NULL;
      g_autofree char *image_dir = NULL;
      g_autoptr(BgBlobRoot) root = NULL;

      if (!g_str_has_suffix (entry, ".json"))
        continue;
      image = g_strndup (entry, strlen (entry) - 5);
      image_dir = g_build_filename (images_dir, image, NULL);
      if (!bg_name_is_valid (image))
        continue;
      if (!g_file_test (image_dir, G_FILE_TEST_IS_DIR))
        {
          g_autofree char *file = g_build_filename (cache->roots, entry, NULL);
          g_unlink (file);
          continue;
        }
      root = bg_blob_cache_get_root (cache, image);
      for (guint i = 0; root && root->blobs[i]; i++)
        g_hash_table_add (used, g_strdup (digest_hex (root->blobs[i])));
    }

  scan_fd = dup (cache->sha_fd);
  if (scan_fd < 0 || (dir = fdopendir (scan_fd)) == NULL)
    return bg_error_errno (error, errno, "Cannot read the blob cache", cache->path);
  scan_fd = -1;   /* the DIR owns it now */
  rewinddir (dir);
  while ((e = readdir (dir)) != NULL)
    {
      struct stat st;
      g_autofree char *digest = g_strconcat ("sha256:", e->d_name, NULL);

      if (digest_hex (digest) == NULL || g_hash_table_contains (used, e->d_name))
        continue;
      if (fstatat (cache->sha_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
          unlinkat (cache->sha_fd, e->d_name, 0) == 0)
        {
          count++;
          bytes += st.st_size;
        }
    }
  closedir (dir);
  if (out_count)
    *out_count = count;
  if (out_bytes)
    *out_bytes = bytes;
  return TRUE;
}
