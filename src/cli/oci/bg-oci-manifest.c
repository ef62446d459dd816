/* bg-oci-manifest.c: OCI image indexes, manifests and configs.
 *
 * Everything here came from a registry or an archive someone else made,
 * so a document is bounded before it is parsed, every member read is
 * checked for its JSON type, every digest is sha256 and well formed
 * (it becomes a file name under blobs/sha256/), and a media type that is
 * not on the list is refused by name rather than guessed at.
 */
#include <json-glib/json-glib.h>

#include "bg-error.h"
#include "bg-oci-manifest.h"

/* Strings a config may carry (Env, Cmd, ...): bounded in count and
 * length, so a hostile config cannot fill banger-init's environment. */
#define STRV_MAX      4096
#define STRING_MAX    (64u << 10)
#define INDEX_MAX     1024

const char bg_oci_manifest_accept[] =
  BG_OCI_MT_OCI_INDEX ", " BG_OCI_MT_DOCKER_LIST ", " BG_OCI_MT_OCI_MANIFEST ", " BG_OCI_MT_DOCKER_MANIFEST;

static const struct {
  const char       *media_type;
  BgOciCompression  compression;
} layer_types[] = {
  { "application/vnd.oci.image.layer.v1.tar", BG_OCI_COMPRESSION_NONE },
  { "application/vnd.oci.image.layer.v1.tar+gzip", BG_OCI_COMPRESSION_GZIP },
  { "application/vnd.oci.image.layer.v1.tar+zstd", BG_OCI_COMPRESSION_ZSTD },
  { "application/vnd.oci.image.layer.nondistributable.v1.tar", BG_OCI_COMPRESSION_NONE },
  { "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", BG_OCI_COMPRESSION_GZIP },
  { "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", BG_OCI_COMPRESSION_ZSTD },
  { "application/vnd.docker.image.rootfs.diff.tar.gzip", BG_OCI_COMPRESSION_GZIP },
  { "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", BG_OCI_COMPRESSION_GZIP },
};

gboolean
bg_oci_digest_validate (const char  *field,
                        const char  *digest,
                        GError     **error)
{
  if (digest == NULL || !g_str_has_prefix (digest, "sha256:") || strlen (digest) != 7 + 64)
    goto bad;
  for (const char *p = digest + 7; *p; p++)
    if (!g_ascii_isdigit (*p) && !(*p >= 'a' && *p <= 'f'))
      goto bad;
  return TRUE;

bad:
  g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
               "%s: \"%.80s\" is not a sha256 digest (sha256: and 64 lowercase hex digits)",
               field, digest ? digest : "(missing)");
  return FALSE;
}

BgOciDocKind
bg_oci_doc_kind (const char *media_type)
{
  if (media_type == NULL)
    return BG_OCI_DOC_UNKNOWN;
  if (g_str_equal (media_type, BG_OCI_MT_OCI_INDEX) || g_str_equal (media_type, BG_OCI_MT_DOCKER_LIST))
    return BG_OCI_DOC_INDEX;
  if (g_str_equal (media_type, BG_OCI_MT_OCI_MANIFEST) || g_str_equal (media_type, BG_OCI_MT_DOCKER_MANIFEST))
    return BG_OCI_DOC_MANIFEST;
  return BG_OCI_DOC_UNKNOWN;
}

static JsonNode *
parse_bounded (GBytes      *doc,
               gsize        max,
               const char  *what,
               GError     **error)
{
  g_autoptr(JsonParser) parser = json_parser_new_immutable ();
  g_autoptr(GError) local = NULL;
  gsize len = 0;
  const char *data = doc ? g_bytes_get_data (doc, &len) : NULL;

  if (data == NULL || len == 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "%s: empty document", what);
      return NULL;
    }
  if (len > max)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "%s: %" G_GSIZE_FORMAT
                   " bytes, more than the %" G_GSIZE_FORMAT " banger accepts", what, len, max);
      return NULL;
    }
  if (!json_parser_load_from_data (parser, data, len, &local))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "%s: not valid JSON: %s", what, local->message);
      return NULL;
    }
  if (json_parser_get_root (parser) == NULL || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "%s: not a JSON object", what);
      return NULL;
    }
  return json_node_ref (json_parser_get_root (parser));
}

/* Member @key of @o when it is a string; NULL when it is absent (or
 * JSON null); an error naming "@what.@key" when it is anything else. */
static gboolean
get_string (JsonObject   *o,
            const char   *key,
            const char   *what,
            gboolean      required,
            const char  **out,
            GError      **error)
{
  JsonNode *n = json_object_get_member (o, key);

  *out = NULL;
  if (n == NULL || JSON_NODE_HOLDS_NULL (n))
    {
      if (!required)
        return TRUE;
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "%s.%s: missing", what, key);
      return FALSE;
    }
  if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING ||
      strlen (json_node_get_string (n)) > STRING_MAX)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "%s.%s: not a string (of at most %u bytes)",
                   what, key, STRING_MAX);
      return FALSE;
    }
  *out = json_node_get_string (n);
  return TRUE;
}

/* Member @key of @o when it is an object; NULL when it is absent and
 * not @required; FALSE and an error naming it when it is anything else. */
static gboolean
get_object (JsonObject   *o,
            const char   *key,
            const char   *what,
            gboolean      required,
            JsonObject  **out,
            GError      **error)
{
  JsonNode *n = json_object_get_member (o, key);

  *out = NULL;
  if ((n == NULL || JSON_NODE_HOLDS_NULL (n)) && !required)
    return TRUE;
  if (n == NULL || !JSON_NODE_HOLDS_OBJECT (n))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "%s.%s: %s", what, key,
                   n == NULL ? "missing" : "not an object");
      return FALSE;
    }
  *out = json_node_get_object (n);
  return TRUE;
}

static JsonArray *
get_array (JsonObject  *o,
           const char  *key,
           const char  *what,
           guint        max,
           GError     **error)
{
  JsonNode *n = json_object_get_member (o, key);

  if (n == NULL || !JSON_NODE_HOLDS_ARRAY (n))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "%s.%s: %s", what, key,
                   n == NULL ? "missing" : "not an array");
      return NULL;
    }
  if (json_array_get_length (json_node_get_array (n)) > max)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "%s.%s: more than %u entries", what, key, max);
      return NULL;
    }
  return json_node_get_array (n);
}

/* schemaVersion 2, and mediaType (when the document names one) of @kind. */
static gboolean
check_header (JsonObject    *o,
              const char    *what,
              BgOciDocKind   kind,
              const char   **media_type,
              GError       **error)
{
  JsonNode *v = json_object_get_member (o, "schemaVersion");

  if (v == NULL || !JSON_NODE_HOLDS_VALUE (v) || json_node_get_value_type (v) != G_TYPE_INT64 ||
      json_node_get_int (v) != 2)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                   "%s.schemaVersion: not 2 (Docker schema 1 and other versions are not supported)", what);
      return FALSE;
    }
  if (!get_string (o, "mediaType", what, FALSE, media_type, error))
    return FALSE;
  if (*media_type != NULL && bg_oci_doc_kind (*media_type) != kind)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "%s.mediaType: \"%s\" is not an image %s",
                   what, *media_type, kind == BG_OCI_DOC_INDEX ? "index or manifest list" : "manifest");
      return FALSE;
    }
  return TRUE;
}

void
bg_oci_descriptor_free (BgOciDescriptor *d)
{
  if (d == NULL)
    return;
  g_free (d->media_type);
  g_free (d->digest);
  g_free (d);
}

static BgOciDescriptor *
parse_descriptor (JsonObject  *o,
                  const char  *what,
                  GError     **error)
{
  g_autoptr(BgOciDescriptor) d = g_new0 (BgOciDescriptor, 1);
  g_autofree char *digest_field = g_strdup_printf ("%s.digest", what);
  const char *media_type, *digest;
  JsonNode *size = json_object_get_member (o, "size");

  if (!get_string (o, "mediaType", what, TRUE, &media_type, error) ||
      !get_string (o, "digest", what, TRUE, &digest, error) ||
      !bg_oci_digest_validate (digest_field, digest, error))
    return NULL;
  if (size == NULL || !JSON_NODE_HOLDS_VALUE (size) || json_node_get_value_type (size) != G_TYPE_INT64 ||
      json_node_get_int (size) < 0 || (guint64) json_node_get_int (size) > BG_OCI_BLOB_MAX)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                   "%s.size: missing, negative or more than %" G_GUINT64_FORMAT " GiB",
                   what, BG_OCI_BLOB_MAX >> 30);
      return NULL;
    }
  d->media_type = g_strdup (media_type);
  d->digest = g_strdup (digest);
  d->size = json_node_get_int (size);
  return g_steal_pointer (&d);
}

BgOciDocKind
bg_oci_doc_detect (GBytes  *doc,
                   GError **error)
{
  g_autoptr(JsonNode) root = parse_bounded (doc, BG_OCI_MANIFEST_MAX, "manifest", error);
  JsonObject *o;
  const char *media_type;

  if (root == NULL)
    return BG_OCI_DOC_UNKNOWN;
  o = json_node_get_object (root);
  if (!get_string (o, "mediaType", "manifest", FALSE, &media_type, error))
    return BG_OCI_DOC_UNKNOWN;
  if (media_type != NULL)
    {
      if (bg_oci_doc_kind (media_type) == BG_OCI_DOC_UNKNOWN)
        g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                     "manifest.mediaType: \"%s\" is neither an image index nor an image manifest", media_type);
      return bg_oci_doc_kind (media_type);
    }
  /* OCI 1.0 made mediaType optional: what the document holds says. */
  if (json_object_has_member (o, "manifests"))
    return BG_OCI_DOC_INDEX;
  if (json_object_has_member (o, "layers"))
    return BG_OCI_DOC_MANIFEST;
  g_set_error_literal (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                       "manifest: neither an image index (manifests) nor an image manifest (layers)");
  return BG_OCI_DOC_UNKNOWN;
}

/* The linux/amd64 entry of an image index or manifest list: the only
 * platform banger's Firecracker VMs run. The entry may itself be an
 * index (an OCI layout's index.json naming a multi-arch image); the
 * caller then selects again. */
BgOciDescriptor *
bg_oci_index_select (GBytes  *index,
                     GError **error)
{
  g_autoptr(JsonNode) root = parse_bounded (index, BG_OCI_MANIFEST_MAX, "index", error);
  g_autoptr(GString) seen = g_string_new (NULL);
  const char *media_type;
  JsonArray *manifests;
  JsonObject *o;

  if (root == NULL)
    return NULL;
  o = json_node_get_object (root);
  if (!check_header (o, "index", BG_OCI_DOC_INDEX, &media_type, error) ||
      (manifests = get_array (o, "manifests", "index", INDEX_MAX, error)) == NULL)
    return NULL;
  for (guint i = 0; i < json_array_get_length (manifests); i++)
    {
      g_autofree char *what = g_strdup_printf ("index.manifests[%u]", i);
      JsonNode *n = json_array_get_element (manifests, i);
      JsonObject *entry, *platform;
      const char *os = NULL, *arch = NULL;
      BgOciDescriptor *d;

      if (!JSON_NODE_HOLDS_OBJECT (n))
        {
          g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "%s: not an object", what);
          return NULL;
        }
      entry = json_node_get_object (n);
      if (!get_object (entry, "platform", what, FALSE, &platform, error))
        return NULL;
      if (platform == NULL)
        {
          /* An OCI layout's index.json names its image without a
           * platform: the image's own config says (checked later). With
           * several such images there is no telling which is meant. */
          if (json_array_get_length (manifests) != 1)
            {
              g_string_append_printf (seen, "%san image of no stated platform", seen->len ? ", " : "");
              continue;
            }
        }
      else
        {
          g_autofree char *pwhat = g_strdup_printf ("%s.platform", what);
          if (!get_string (platform, "os", pwhat, TRUE, &os, error) ||
              !get_string (platform, "architecture", pwhat, TRUE, &arch, error))
            return NULL;
          g_string_append_printf (seen, "%s%s/%s", seen->len ? ", " : "", os, arch);
          if (!g_str_equal (os, "linux") || !g_str_equal (arch, "amd64"))
            continue;
        }
      if ((d = parse_descriptor (entry, what, error)) == NULL)
        return NULL;
      if (bg_oci_doc_kind (d->media_type) == BG_OCI_DOC_UNKNOWN)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                       "%s.mediaType: \"%s\" is not an image manifest", what, d->media_type);
          bg_oci_descriptor_free (d);
          return NULL;
        }
      return d;
    }
  g_set_error (error, BG_ERROR, BG_ERROR_NOT_FOUND, "index: no linux/amd64 image (it has: %s)",
               seen->len ? seen->str : "nothing");
  return NULL;
}

void
bg_oci_manifest_free (BgOciManifest *m)
{
  if (m == NULL)
    return;
  g_free (m->media_type);
  bg_oci_descriptor_free (m->config);
  if (m->layers)
    g_ptr_array_unref (m->layers);
  g_free (m);
}

BgOciManifest *
bg_oci_manifest_parse (GBytes  *manifest,
                       GError **error)
{
  g_autoptr(JsonNode) root = parse_bounded (manifest, BG_OCI_MANIFEST_MAX, "manifest", error);
  g_autoptr(BgOciManifest) m = g_new0 (BgOciManifest, 1);
  const char *media_type;
  JsonObject *o, *config;
  JsonArray *layers;

  if (root == NULL)
    return NULL;
  o = json_node_get_object (root);
  if (!check_header (o, "manifest", BG_OCI_DOC_MANIFEST, &media_type, error) ||
      !get_object (o, "config", "manifest", TRUE, &config, error) ||
      (m->config = parse_descriptor (config, "manifest.config", error)) == NULL ||
      (layers = get_array (o, "layers", "manifest", BG_OCI_LAYERS_MAX, error)) == NULL)
    return NULL;
  m->media_type = g_strdup (media_type ? media_type : BG_OCI_MT_OCI_MANIFEST);
  if (!g_str_equal (m->config->media_type, BG_OCI_MT_OCI_CONFIG) &&
      !g_str_equal (m->config->media_type, BG_OCI_MT_DOCKER_CONFIG))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                   "manifest.config.mediaType: \"%s\" is not a container image config (an artifact?)",
                   m->config->media_type);
      return NULL;
    }
  if (m->config->size > BG_OCI_CONFIG_MAX)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "manifest.config.size: more than %u bytes",
                   BG_OCI_CONFIG_MAX);
      return NULL;
    }
  if (json_array_get_length (layers) == 0)
    {
      g_set_error_literal (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "manifest.layers: empty");
      return NULL;
    }
  m->layers = g_ptr_array_new_with_free_func ((GDestroyNotify) bg_oci_descriptor_free);
  for (guint i = 0; i < json_array_get_length (layers); i++)
    {
      g_autofree char *what = g_strdup_printf ("manifest.layers[%u]", i);
      JsonNode *n = json_array_get_element (layers, i);
      BgOciDescriptor *d;
      gboolean known = FALSE;

      if (!JSON_NODE_HOLDS_OBJECT (n))
        {
          g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "%s: not an object", what);
          return NULL;
        }
      if ((d = parse_descriptor (json_node_get_object (n), what, error)) == NULL)
        return NULL;
      g_ptr_array_add (m->layers, d);
      for (guint t = 0; t < G_N_ELEMENTS (layer_types); t++)
        if (g_str_equal (d->media_type, layer_types[t].media_type))
          {
            d->compression = layer_types[t].compression;
            known = TRUE;
          }
      if (!known)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                       "%s.mediaType: \"%s\" is not a layer banger can apply (tar, tar+gzip or tar+zstd)",
                       what, d->media_type);
          return NULL;
        }
    }
  return g_steal_pointer (&m);
}

void
bg_oci_config_free (BgOciConfig *c)
{
  if (c == NULL)
    return;
  g_strfreev (c->entrypoint);
  g_strfreev (c->cmd);
  g_strfreev (c->env);
  g_free (c->working_dir);
  g_free (c->user);
  g_strfreev (c->diff_ids);
  g_free (c);
}

/* An array of strings, NULL (and no error) when absent or null. */
static gboolean
get_strv (JsonObject   *o,
          const char   *key,
          const char   *what,
          char       ***out,
          GError      **error)
{
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();
  JsonNode *n = json_object_get_member (o, key);
  JsonArray *a;

  *out = NULL;
  if (n == NULL || JSON_NODE_HOLDS_NULL (n))
    return TRUE;
  if ((a = get_array (o, key, what, STRV_MAX, error)) == NULL)
    return FALSE;
  for (guint i = 0; i < json_array_get_length (a); i++)
    {
      JsonNode *e = json_array_get_element (a, i);

      if (!JSON_NODE_HOLDS_VALUE (e) || json_node_get_value_type (e) != G_TYPE_STRING ||
          strlen (json_node_get_string (e)) > STRING_MAX)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "%s.%s[%u]: not a string (of at most %u bytes)",
                       what, key, i, STRING_MAX);
          return FALSE;
        }
      g_strv_builder_add (b, json_node_get_string (e));
    }
  *out = g_strv_builder_end (b);
  return TRUE;
}

BgOciConfig *
bg_oci_config_parse (GBytes  *config,
                     GError **error)
{
  g_autoptr(JsonNode) root = parse_bounded (config, BG_OCI_CONFIG_MAX, "config", error);
  g_autoptr(BgOciConfig) c = g_new0 (BgOciConfig, 1);
  const char *os, *arch, *type, *s;
  JsonObject *o, *cc, *rootfs;

  if (root == NULL)
    return NULL;
  o = json_node_get_object (root);
  if (!get_string (o, "os", "config", TRUE, &os, error) ||
      !get_string (o, "architecture", "config", TRUE, &arch, error))
    return NULL;
  if (!g_str_equal (os, "linux") || !g_str_equal (arch, "amd64"))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_NOT_SUPPORTED,
                   "config: the image is for %s/%s; banger runs linux/amd64 images", os, arch);
      return NULL;
    }
  if (!get_object (o, "rootfs", "config", TRUE, &rootfs, error) ||
      !get_string (rootfs, "type", "config.rootfs", TRUE, &type, error) ||
      !get_strv (rootfs, "diff_ids", "config.rootfs", &c->diff_ids, error))
    return NULL;
  if (!g_str_equal (type, "layers") || c->diff_ids == NULL || c->diff_ids[0] == NULL ||
      g_strv_length (c->diff_ids) > BG_OCI_LAYERS_MAX)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                   "config.rootfs: not of type \"layers\" with 1 to %u diff_ids", BG_OCI_LAYERS_MAX);
      return NULL;
    }
  for (guint i = 0; c->diff_ids[i]; i++)
    {
      g_autofree char *what = g_strdup_printf ("config.rootfs.diff_ids[%u]", i);
      if (!bg_oci_digest_validate (what, c->diff_ids[i], error))
        return NULL;
    }
  if (!get_object (o, "config", "config", FALSE, &cc, error))
    return NULL;
  if (cc == NULL)
    return g_steal_pointer (&c);
  if (!get_strv (cc, "Entrypoint", "config.config", &c->entrypoint, error) ||
      !get_strv (cc, "Cmd", "config.config", &c->cmd, error) ||
      !get_strv (cc, "Env", "config.config", &c->env, error))
    return NULL;
  for (guint i = 0; c->env && c->env[i]; i++)
    if (strchr (c->env[i], '=') == NULL || c->env[i][0] == '=')
      {
        g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                     "config.config.Env[%u]: \"%.80s\" is not NAME=value", i, c->env[i]);
        return NULL;
      }
  if (!get_string (cc, "WorkingDir", "config.config", FALSE, &s, error))
    return NULL;
  c->working_dir = g_strdup (s && *s ? s : NULL);
  if (c->working_dir && c->working_dir[0] != '/')
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                   "config.config.WorkingDir: \"%.80s\" is not an absolute path", c->working_dir);
      return NULL;
    }
  if (!get_string (cc, "User", "config.config", FALSE, &s, error))
    return NULL;
  c->user = g_strdup (s && *s ? s : NULL);
  return g_steal_pointer (&c);
}
