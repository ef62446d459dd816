/* bg-registry-auth.c: see bg-registry-auth.h.
 *
 * The files, first found wins, as podman reads them:
 * $XDG_RUNTIME_DIR/containers/auth.json, $XDG_CONFIG_HOME/containers/auth.json
 * (~/.config), then docker's ~/.docker/config.json. In each, "auths" maps
 * a registry ("host[:port]", "https://host/v1/", or podman's
 * "host/namespace" scoped to a part of it) to {"auth": base64(user:pass)};
 * the most specific key that covers the repository wins. Credential
 * helpers (credsStore, credHelpers) are programs banger does not run. */
#include "bg-registry-auth.h"

#include <string.h>
#include <libsoup/soup.h>
#include <json-glib/json-glib.h>

#include "bg-error.h"
#include "bg-image-ref.h"

#define AUTH_FILE_MAX  (1u << 20)

static void
wipe_free (char *s)
{
  if (s != NULL)
    {
      explicit_bzero (s, strlen (s));
      g_free (s);
    }
}

void
bg_registry_credentials_free (BgRegistryCredentials *creds)
{
  if (creds == NULL)
    return;
  wipe_free (creds->username);
  wipe_free (creds->password);
  g_free (creds->file);
  g_free (creds);
}

/* "Basic <base64>": an Authorization header value, itself a secret. */
char *
bg_registry_credentials_basic (const BgRegistryCredentials *creds)
{
  g_autofree char *plain = g_strconcat (creds->username, ":", creds->password, NULL);
  g_autofree char *b64 = g_base64_encode ((const guchar *) plain, strlen (plain));
  char *header = g_strconcat ("Basic ", b64, NULL);

  explicit_bzero (plain, strlen (plain));
  explicit_bzero (b64, strlen (b64));
  return header;
}

/* The key's registry and path ("https://index.docker.io/v1/" is
 * index.docker.io with no path: docker's URL form scopes nothing). */
static void
split_key (const char *key,
           char      **host,
           char      **path)
{
  const char *k = key;
  gboolean url = FALSE;
  const char *slash;

  if (g_str_has_prefix (k, "https://"))
    k += 8, url = TRUE;
  else if (g_str_has_prefix (k, "http://"))
    k += 7, url = TRUE;
  slash = strchr (k, '/');
  *host = g_ascii_strdown (k, slash ? slash - k : -1);
  *path = (slash && !url) ? g_strdup (slash + 1) : NULL;
  if (*path != NULL && g_str_has_suffix (*path, "/"))
    (*path)[strlen (*path) - 1] = '\0';
  if (g_str_equal (*host, "index.docker.io") || g_str_equal (*host, "registry-1.docker.io"))
    {
      g_free (*host);
      *host = g_strdup (BG_IMAGE_REF_DOCKER_HUB);
    }
}

/* How well @key covers registry/repository: -1 not at all, else the
 * length of its path (longer is more specific). */
static int
key_match (const char *key,
           const char *registry,
           const char *repository)
{
  g_autofree char *host = NULL, *path = NULL;

  split_key (key, &host, &path);
  if (!g_str_equal (host, registry))
    return -1;
  if (path == NULL || *path == '\0')
    return 0;
  if (g_str_equal (path, repository) ||
      (g_str_has_prefix (repository, path) && repository[strlen (path)] == '/'))
    return strlen (path);
  return -1;
}

static BgRegistryCredentials *
from_file (const char  *file,
           const char  *registry,
           const char  *repository,
           GError     **error)
{
  g_autofree char *text = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) local = NULL;
  g_autoptr(BgRegistryCredentials) creds = NULL;
  JsonObject *auths = NULL;
  JsonNode *root, *best = NULL;
  const char *best_key = NULL;
  int best_score = -1;
  gsize len;
  g_autoptr(GList) members = NULL;

  if (!g_file_get_contents (file, &text, &len, &local))
    {
      if (g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        return NULL;
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "Cannot read credentials from %s: %s", file, local->message);
      return NULL;
    }
  if (len > AUTH_FILE_MAX || !json_parser_load_from_data (parser, text, len, NULL) ||
      !JSON_NODE_HOLDS_OBJECT (root = json_parser_get_root (parser)))
    {
      explicit_bzero (text, len);
      /* The parser's message would quote the file, secrets and all. */
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                   "%s is not a JSON object; fix or remove it", file);
      return NULL;
    }
  explicit_bzero (text, len);
  if (json_object_has_member (json_node_get_object (root), "auths"))
    {
      JsonNode *a = json_object_get_member (json_node_get_object (root), "auths");
      if (JSON_NODE_HOLDS_OBJECT (a))
        auths = json_node_get_object (a);
    }
  if (auths == NULL)
    return NULL;
  members = json_object_get_members (auths);
  for (GList *l = members; l != NULL; l = l->next)
    {
      int score = key_match (l->data, registry, repository);
      if (score > best_score)
        {
          best_score = score;
          best_key = l->data;
          best = json_object_get_member (auths, l->data);
        }
    }
  if (best == NULL)
    return NULL;
  if (JSON_NODE_HOLDS_OBJECT (best))
    {
      JsonObject *entry = json_node_get_object (best);
      const char *auth = json_object_get_string_member_with_default (entry, "auth", NULL);
      gsize plain_len = 0;
      g_autofree guchar *plain = auth ? g_base64_decode (auth, &plain_len) : NULL;
      const char *colon = plain ? memchr (plain, ':', plain_len) : NULL;

      if (colon != NULL && colon != (const char *) plain && memchr (plain, '\0', plain_len) == NULL)
        {
          creds = g_new0 (BgRegistryCredentials, 1);
          creds->username = g_strndup ((const char *) plain, colon - (const char *) plain);
          creds->password = g_strndup (colon + 1, plain_len - (colon + 1 - (const char *) plain));
          creds->file = g_strdup (file);
        }
      if (plain != NULL)
        explicit_bzero (plain, plain_len);
      if (creds != NULL)
        return g_steal_pointer (&creds);
    }
  g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
               "%s: the entry for \"%s\" has no usable \"auth\" (base64 of user:password); "
               "log in again with podman login", file, best_key);
  return NULL;
}

/* NULL with no error: no credentials anywhere (pull anonymously). */
BgRegistryCredentials *
bg_registry_credentials_find (const char  *registry,
                              const char  *repository,
                              GError     **error)
{
  g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func (g_free);
  const char *runtime = g_getenv ("XDG_RUNTIME_DIR");

  if (runtime != NULL && *runtime != '\0')
    g_ptr_array_add (files, g_build_filename (runtime, "containers", "auth.json", NULL));
  g_ptr_array_add (files, g_build_filename (g_get_user_config_dir (), "containers", "auth.json", NULL));
  g_ptr_array_add (files, g_build_filename (g_get_home_dir (), ".docker", "config.json", NULL));

  for (guint i = 0; i < files->len; i++)
    {
      g_autoptr(GError) local = NULL;
      BgRegistryCredentials *creds = from_file (files->pdata[i], registry, repository, &local);

      if (creds != NULL)
        return creds;
      if (local != NULL)
        {
          g_propagate_error (error, g_steal_pointer (&local));
          return NULL;
        }
    }
  return NULL;
}

void
bg_registry_challenge_free (BgRegistryChallenge *c)
{
  if (c == NULL)
    return;
  g_free (c->scheme);
  g_free (c->realm);
  g_free (c->service);
  g_free (c->scope);
  g_free (c);
}

/* 'Bearer realm="https://auth.example/token",service="reg",scope="..."'
 * or 'Basic realm="..."'. NULL for any other scheme. */
BgRegistryChallenge *
bg_registry_challenge_parse (const char *header)
{
  g_autoptr(BgRegistryChallenge) c = g_new0 (BgRegistryChallenge, 1);
  g_autoptr(GHashTable) params = NULL;
  const char *space;

  if (header == NULL || strlen (header) > 4096)
    return NULL;
  space = strchr (header, ' ');
  c->scheme = g_ascii_strdown (header, space ? space - header : -1);
  if (!g_str_equal (c->scheme, "bearer") && !g_str_equal (c->scheme, "basic"))
    return NULL;
  if (space != NULL)
    {
      params = soup_header_parse_param_list (space + 1);
      c->realm = g_strdup (g_hash_table_lookup (params, "realm"));
      c->service = g_strdup (g_hash_table_lookup (params, "service"));
      c->scope = g_strdup (g_hash_table_lookup (params, "scope"));
    }
  if (g_str_equal (c->scheme, "bearer") && c->realm == NULL)
    return NULL;
  return g_steal_pointer (&c);
}
