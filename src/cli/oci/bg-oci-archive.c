/* bg-oci-archive.c: see bg-oci-archive.h.
 *
 * An archive's member names are never used as paths: every member's
 * bytes are copied into the blobs directory under the digest computed
 * while copying (a member named blobs/sha256/<hex> must hash to <hex>),
 * and the few documents banger reads (index.json, manifest.json) are
 * read into memory, bounded. The archive is a plain tar, read with
 * pread, its members bounded by its own size.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <json-glib/json-glib.h>

#include "bg-error.h"
#include "bg-fd.h"
#include "bg-layer.h"
#include "bg-oci-archive.h"
#include "bg-oci-blob.h"
#include "bg-oci-manifest.h"

#define BLOCK 512

void
bg_oci_archive_free (BgOciArchive *a)
{
  if (a == NULL)
    return;
  g_clear_pointer (&a->index, g_bytes_unref);
  g_clear_pointer (&a->docker_manifest, g_bytes_unref);
  g_clear_pointer (&a->members, g_hash_table_unref);
  g_free (a);
}

static gboolean
read_at (int       fd,
         void     *buf,
         gsize     len,
         guint64   off,
         GError  **error)
{
  gsize done = 0;

  while (done < len)
    {
      ssize_t n = pread (fd, (guint8 *) buf + done, len - done, off + done);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "archive: %s at byte %" G_GUINT64_FORMAT,
                       n < 0 ? g_strerror (errno) : "truncated", off + done);
          return FALSE;
        }
      done += n;
    }
  return TRUE;
}

/* Member bytes into blobs/sha256/, named by their digest. */
static char *
copy_member (int       archive_fd,
             guint64   off,
             guint64   size,
             int       sha_dirfd,
             GError  **error)
{
  g_autoptr(GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autofree guint8 *buf = g_malloc (1 << 20);
  g_auto(BgFd) out = -1;
  const char *incoming = ".incoming";
  guint64 done = 0;

  unlinkat (sha_dirfd, incoming, 0);
  out = openat (sha_dirfd, incoming, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (out < 0)
    {
      bg_error_errno (error, errno, "cannot write", "a blob");
      return NULL;
    }
  while (done < size)
    {
      gsize chunk = MIN (size - done, 1 << 20);
      if (!read_at (archive_fd, buf, chunk, off + done, error))
        return NULL;
      g_checksum_update (sum, buf, chunk);
      if (write (out, buf, chunk) != (ssize_t) chunk)
        {
          bg_error_errno (error, errno, "cannot write", "a blob");
          return NULL;
        }
      done += chunk;
    }
  if (renameat (sha_dirfd, incoming, sha_dirfd, g_checksum_get_string (sum)) < 0)
    {
      bg_error_errno (error, errno, "cannot write", "a blob");
      return NULL;
    }
  return g_strconcat ("sha256:", g_checksum_get_string (sum), NULL);
}

static GBytes *
read_document (int           archive_fd,
               guint64       off,
               guint64       size,
               const char   *name,
               GError      **error)
{
  g_autofree char *buf = NULL;

  if (size > BG_OCI_MANIFEST_MAX)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "archive: %s is %" G_GUINT64_FORMAT
                   " bytes, more than banger reads", name, size);
      return NULL;
    }
  buf = g_malloc (size + 1);
  if (!read_at (archive_fd, buf, size, off, error))
    return NULL;
  return g_bytes_new_take (g_steal_pointer (&buf), size);
}

/* "./blobs//sha256/x" -> "blobs/sha256/x": a member's name, only ever
 * compared, never used as a path. */
static char *
member_name (const char *raw)
{
  g_auto(GStrv) parts = g_strsplit (raw, "/", -1);
  g_autoptr(GString) out = g_string_new (NULL);

  for (guint i = 0; parts[i]; i++)
    if (parts[i][0] != '\0' && !g_str_equal (parts[i], "."))
      g_string_append_printf (out, "%s%s", out->len ? "/" : "", parts[i]);
  return g_string_free (g_steal_pointer (&out), FALSE);
}

BgOciArchive *
bg_oci_archive_unpack (int      archive_fd,
                       int      blobs_dirfd,
                       GError **error)
{
  g_autoptr(BgOciArchive) a = g_new0 (BgOciArchive, 1);
  g_auto(BgFd) sha = -1;
  g_autofree char *long_name = NULL;
  struct stat st;
  guint64 off = 0;

  a->members = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  if (fstat (archive_fd, &st) < 0 || !S_ISREG (st.st_mode))
    {
      g_set_error_literal (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "archive: not a regular file");
      return NULL;
    }
  if ((mkdirat (blobs_dirfd, "sha256", 0700) < 0 && errno != EEXIST) ||
      (sha = openat (blobs_dirfd, "sha256", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
    {
      bg_error_errno (error, errno, "cannot create", "the blobs directory");
      return NULL;
    }
  while (off + BLOCK <= (guint64) st.st_size)
    {
      static const guint8 zero[BLOCK];
      guint8 h[BLOCK];
      guint64 size;
      g_autofree char *name = NULL;
      char type;

      if (!read_at (archive_fd, h, BLOCK, off, error))
        return NULL;
      if (memcmp (h, zero, BLOCK) == 0)
        break;
      if (!bg_layer_check_header (h) || !bg_layer_parse_number (h + 124, 12, &size) ||
          size > (guint64) st.st_size - off - BLOCK)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                       "archive: not a tar, or corrupt (a bad header at byte %" G_GUINT64_FORMAT ")", off);
          return NULL;
        }
      type = h[156];
      off += BLOCK;
      if (type == 'L' || type == 'x')
        {
          g_autoptr(GBytes) body = read_document (archive_fd, off, size, "a long name", error);
          gsize len;
          const char *data;

          if (body == NULL)
            return NULL;
          data = g_bytes_get_data (body, &len);
          g_clear_pointer (&long_name, g_free);
          if (type == 'L')
            long_name = g_strndup (data, len);
          else
            {
              /* Only "path" matters here: "LEN path=VALUE\n". */
              const char *p = g_strstr_len (data, len, " path=");
              const char *end = p ? memchr (p, '\n', data + len - p) : NULL;
              if (p && end)
                long_name = g_strndup (p + 6, end - p - 6);
            }
          off += (size + BLOCK - 1) / BLOCK * BLOCK;
          continue;
        }
      if (long_name)
        name = member_name (long_name);
      else
        {
          g_autofree char *raw = g_strndup ((const char *) h, 100);
          if (memcmp (h + 257, "ustar\0", 6) == 0 && h[345] != '\0')
            {
              g_autofree char *prefix = g_strndup ((const char *) h + 345, 155);
              g_autofree char *joined = g_strconcat (prefix, "/", raw, NULL);
              name = member_name (joined);
            }
          else
            name = member_name (raw);
        }
      g_clear_pointer (&long_name, g_free);
      if (type == '0' || type == '\0' || type == '7')
        {
          if (g_str_equal (name, "index.json"))
            {
              g_clear_pointer (&a->index, g_bytes_unref);
              if ((a->index = read_document (archive_fd, off, size, name, error)) == NULL)
                return NULL;
            }
          else if (g_str_equal (name, "manifest.json"))
            {
              g_clear_pointer (&a->docker_manifest, g_bytes_unref);
              if ((a->docker_manifest = read_document (archive_fd, off, size, name, error)) == NULL)
                return NULL;
            }
          else if (!g_str_equal (name, "oci-layout") && !g_str_equal (name, "repositories"))
            {
              char *digest = copy_member (archive_fd, off, size, sha, error);

              if (digest == NULL)
                return NULL;
              if (g_str_has_prefix (name, "blobs/sha256/") && !g_str_equal (name + 13, digest + 7))
                {
                  g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                               "archive: %s hashes to %s: refused (corrupt or tampered)", name, digest);
                  g_free (digest);
                  return NULL;
                }
              g_hash_table_replace (a->members, g_steal_pointer (&name), digest);
            }
        }
      off += (size + BLOCK - 1) / BLOCK * BLOCK;
    }
  if (a->index == NULL && a->docker_manifest == NULL)
    {
      g_set_error_literal (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                           "archive: neither an OCI layout (index.json) nor a docker/podman save archive "
                           "(manifest.json)");
      return NULL;
    }
  return g_steal_pointer (&a);
}

static BgOciCompression
sniff (int       blobs_dirfd,
       const char *digest)
{
  g_auto(BgFd) fd = bg_oci_blob_open (blobs_dirfd, digest, G_MAXUINT64, NULL);
  guint8 magic[4] = { 0 };

  if (fd < 0 || pread (fd, magic, 4, 0) != 4)
    return BG_OCI_COMPRESSION_NONE;
  if (magic[0] == 0x1f && magic[1] == 0x8b)
    return BG_OCI_COMPRESSION_GZIP;
  if (magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd)
    return BG_OCI_COMPRESSION_ZSTD;
  return BG_OCI_COMPRESSION_NONE;
}

static gboolean
add_descriptor (JsonBuilder  *b,
                int           blobs_dirfd,
                const char   *media_type,
                const char   *digest,
                GError      **error)
{
  g_auto(BgFd) fd = bg_oci_blob_open (blobs_dirfd, digest, G_MAXUINT64, error);
  struct stat st;

  if (fd < 0 || fstat (fd, &st) < 0)
    return FALSE;
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "mediaType");
  json_builder_add_string_value (b, media_type);
  json_builder_set_member_name (b, "digest");
  json_builder_add_string_value (b, digest);
  json_builder_set_member_name (b, "size");
  json_builder_add_int_value (b, st.st_size);
  json_builder_end_object (b);
  return TRUE;
}

/* A docker/podman save archive's manifest.json, made into the image
 * manifest a registry would have served: its config and layers by the
 * digests of their bytes. */
GBytes *
bg_oci_archive_docker_manifest (BgOciArchive  *a,
                                int            blobs_dirfd,
                                GError       **error)
{
  static const char *layer_types[] = {
    [BG_OCI_COMPRESSION_NONE] = "application/vnd.oci.image.layer.v1.tar",
    [BG_OCI_COMPRESSION_GZIP] = "application/vnd.oci.image.layer.v1.tar+gzip",
    [BG_OCI_COMPRESSION_ZSTD] = "application/vnd.oci.image.layer.v1.tar+zstd",
  };
  g_autoptr(JsonParser) parser = json_parser_new_immutable ();
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GError) local = NULL;
  JsonNode *top;
  JsonArray *entries, *layers;
  JsonObject *entry;
  const char *config_name, *config_digest;
  gsize len;
  const char *data = g_bytes_get_data (a->docker_manifest, &len);
  g_autofree char *text = NULL;

  if (!json_parser_load_from_data (parser, data, len, &local))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "archive: manifest.json: %s", local->message);
      return NULL;
    }
  top = json_parser_get_root (parser);
  if (top == NULL || !JSON_NODE_HOLDS_ARRAY (top) || json_array_get_length (entries = json_node_get_array (top)) != 1 ||
      !JSON_NODE_HOLDS_OBJECT (json_array_get_element (entries, 0)))
    {
      g_set_error_literal (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                           "archive: manifest.json: not a list of exactly one image (save one image per archive)");
      return NULL;
    }
  entry = json_array_get_object_element (entries, 0);
  config_name = json_object_get_string_member_with_default (entry, "Config", NULL);
  layers = json_object_has_member (entry, "Layers") && JSON_NODE_HOLDS_ARRAY (json_object_get_member (entry, "Layers"))
             ? json_object_get_array_member (entry, "Layers") : NULL;
  if (config_name == NULL || layers == NULL || json_array_get_length (layers) == 0 ||
      json_array_get_length (layers) > BG_OCI_LAYERS_MAX)
    {
      g_set_error_literal (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                           "archive: manifest.json[0]: no Config, or not 1 to 256 Layers");
      return NULL;
    }
  {
    g_autofree char *cname = member_name (config_name);
    config_digest = g_hash_table_lookup (a->members, cname);
  }
  if (config_digest == NULL)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                   "archive: manifest.json[0].Config: %.200s is not in the archive", config_name);
      return NULL;
    }
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "schemaVersion");
  json_builder_add_int_value (b, 2);
  json_builder_set_member_name (b, "mediaType");
  json_builder_add_string_value (b, BG_OCI_MT_OCI_MANIFEST);
  json_builder_set_member_name (b, "config");
  if (!add_descriptor (b, blobs_dirfd, BG_OCI_MT_DOCKER_CONFIG, config_digest, error))
    return NULL;
  json_builder_set_member_name (b, "layers");
  json_builder_begin_array (b);
  for (guint i = 0; i < json_array_get_length (layers); i++)
    {
      const char *lname = json_array_get_string_element (layers, i);
      g_autofree char *clean = lname ? member_name (lname) : NULL;
      const char *digest = clean ? g_hash_table_lookup (a->members, clean) : NULL;

      if (digest == NULL)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                       "archive: manifest.json[0].Layers[%u]: %.200s is not in the archive", i,
                       lname ? lname : "(not a string)");
          return NULL;
        }
      if (!add_descriptor (b, blobs_dirfd, layer_types[sniff (blobs_dirfd, digest)], digest, error))
        return NULL;
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  text = json_to_string (root, FALSE);
  len = strlen (text);
  return g_bytes_new_take (g_steal_pointer (&text), len);
}
