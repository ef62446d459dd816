/* bg-image-ref.c: image references, by the grammar of distribution's
 * reference package. Short names go to Docker Hub, as podman's
 * short-name-mode=permissive and docker do ("debian" is
 * docker.io/library/debian:latest); a first component with a dot, a
 * colon or "localhost" is a registry. */
#include "bg-image-ref.h"

#include <string.h>

#include "bg-error.h"
#include "bg-names.h"

#define REF_MAX  512     /* distribution's name limit is 255; a tag 128 */

void
bg_image_ref_free (BgImageRef *ref)
{
  if (ref == NULL)
    return;
  g_free (ref->registry);
  g_free (ref->repository);
  g_free (ref->tag);
  g_free (ref->digest);
  g_free (ref);
}

static gboolean
refuse (GError    **error,
        const char *text,
        const char *why)
{
  g_autofree char *shown = g_strescape (text, NULL);

  if (strlen (shown) > 80)
    strcpy (shown + 77, "...");
  g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
               "REF: \"%s\" is not an image reference: %s; write it as docker does, "
               "like debian:bookworm or registry.example.com:5000/team/app@sha256:<64 hex digits>",
               shown, why);
  return FALSE;
}

/* One path component: [a-z0-9]+ joined by ".", "_", "__" or "-"s. */
static gboolean
valid_component (const char *c,
                 gsize       len)
{
  if (len == 0 || !(g_ascii_islower (c[0]) || g_ascii_isdigit (c[0])) ||
      !(g_ascii_islower (c[len - 1]) || g_ascii_isdigit (c[len - 1])))
    return FALSE;
  for (gsize i = 0; i < len; i++)
    {
      if (g_ascii_islower (c[i]) || g_ascii_isdigit (c[i]))
        continue;
      if (c[i] != '.' && c[i] != '_' && c[i] != '-')
        return FALSE;
      /* a separator run: "-"+, ".", "_" or "__" */
      if (c[i] == '.' && !(g_ascii_isalnum (c[i + 1])))
        return FALSE;
      if (c[i] == '_' && c[i + 1] == '_' && c[i + 2] == '_')
        return FALSE;
      if (c[i] == '_' && c[i + 1] != '_' && !g_ascii_isalnum (c[i + 1]))
        return FALSE;
    }
  return TRUE;
}

/* A host name or address, with an optional port: what can become a URL's
 * authority, nothing else. */
static gboolean
valid_registry (const char *r)
{
  const char *colon = strrchr (r, ':');
  gsize host_len = colon ? (gsize) (colon - r) : strlen (r);

  if (host_len == 0 || host_len > 253)
    return FALSE;
  /* Labels of letters, digits and inner hyphens, joined by single dots. */
  for (gsize i = 0; i < host_len; i++)
    {
      gboolean edge = i == 0 || i == host_len - 1 || r[i - 1] == '.' || r[i + 1] == '.';

      if (g_ascii_isalnum (r[i]))
        continue;
      if ((r[i] != '.' && r[i] != '-') || edge)
        return FALSE;
    }
  if (colon != NULL)
    {
      guint64 port;
      if (!g_ascii_string_to_unsigned (colon + 1, 10, 1, 65535, &port, NULL))
        return FALSE;
    }
  return TRUE;
}

static gboolean
valid_tag (const char *t)
{
  gsize len = strlen (t);

  if (len == 0 || len > 128 || !(g_ascii_isalnum (t[0]) || t[0] == '_'))
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (!(g_ascii_isalnum (t[i]) || t[i] == '_' || t[i] == '.' || t[i] == '-'))
      return FALSE;
  return TRUE;
}

static gboolean
valid_digest (const char *d)
{
  if (!g_str_has_prefix (d, "sha256:") || strlen (d) != 7 + 64)
    return FALSE;
  for (const char *c = d + 7; *c; c++)
    if (!(g_ascii_isdigit (*c) || (*c >= 'a' && *c <= 'f')))
      return FALSE;
  return TRUE;
}

BgImageRef *
bg_image_ref_parse (const char  *text,
                    GError     **error)
{
  g_autoptr(BgImageRef) ref = g_new0 (BgImageRef, 1);
  g_autofree char *name = NULL;
  g_auto(GStrv) parts = NULL;
  const char *at, *slash, *colon;
  guint n, first = 0;

  if (text == NULL || *text == '\0')
    return refuse (error, "", "it is empty"), NULL;
  if (strlen (text) > REF_MAX)
    return refuse (error, text, "it is too long"), NULL;

  at = strchr (text, '@');
  name = at ? g_strndup (text, at - text) : g_strdup (text);
  if (at != NULL)
    {
      if (!valid_digest (at + 1))
        return refuse (error, text, "the digest must be sha256: and 64 lowercase hex digits"), NULL;
      ref->digest = g_strdup (at + 1);
    }

  /* The tag: after the last colon that follows the last slash. */
  slash = strrchr (name, '/');
  colon = strrchr (slash ? slash : name, ':');
  if (colon != NULL)
    {
      if (!valid_tag (colon + 1))
        return refuse (error, text, "the tag may hold only letters, digits, '_', '.' and '-' (128 at most)"), NULL;
      ref->tag = g_strdup (colon + 1);
      name[colon - name] = '\0';
    }

  parts = g_strsplit (name, "/", -1);
  n = g_strv_length (parts);
  if (n > 1 && (strchr (parts[0], '.') || strchr (parts[0], ':') || g_str_equal (parts[0], "localhost")))
    {
      if (!valid_registry (parts[0]))
        return refuse (error, text, "the registry must be a host name or address with an optional :port"), NULL;
      ref->registry = g_ascii_strdown (parts[0], -1);
      first = 1;
    }
  else
    ref->registry = g_strdup (BG_IMAGE_REF_DOCKER_HUB);
  if (g_str_equal (ref->registry, "index.docker.io") || g_str_equal (ref->registry, "registry-1.docker.io"))
    {
      g_free (ref->registry);
      ref->registry = g_strdup (BG_IMAGE_REF_DOCKER_HUB);
    }

  for (guint i = first; i < n; i++)
    if (!valid_component (parts[i], strlen (parts[i])))
      return refuse (error, text, "a repository has lowercase letters, digits and separators ('.', '_', '-') between slashes"), NULL;
  if (first >= n)
    return refuse (error, text, "it names no repository"), NULL;
  ref->repository = g_strjoinv ("/", parts + first);
  if (g_str_equal (ref->registry, BG_IMAGE_REF_DOCKER_HUB) && strchr (ref->repository, '/') == NULL)
    {
      char *full = g_strconcat ("library/", ref->repository, NULL);
      g_free (ref->repository);
      ref->repository = full;
    }
  if (strlen (ref->repository) > 255)
    return refuse (error, text, "the repository name is longer than 255 characters"), NULL;
  if (ref->tag == NULL && ref->digest == NULL)
    ref->tag = g_strdup ("latest");
  return g_steal_pointer (&ref);
}

/* registry/repository[:tag][@digest], the form `image show` prints. */
char *
bg_image_ref_to_string (const BgImageRef *ref)
{
  return g_strdup_printf ("%s/%s%s%s%s%s", ref->registry, ref->repository,
                          ref->tag ? ":" : "", ref->tag ? ref->tag : "",
                          ref->digest ? "@" : "", ref->digest ? ref->digest : "");
}

/* What goes after /manifests/: the digest when there is one (it pins the
 * image; the tag is then only a name), else the tag. */
const char *
bg_image_ref_reference (const BgImageRef *ref)
{
  return ref->digest ? ref->digest : ref->tag;
}

/* The banger image name `image pull` uses without --name: the
 * repository's last component, and the tag unless it is "latest"
 * ("debian:bookworm" is debian-bookworm), made a valid name. */
char *
bg_image_ref_default_name (const BgImageRef *ref)
{
  const char *last = strrchr (ref->repository, '/');
  g_autoptr(GString) s = g_string_new (last ? last + 1 : ref->repository);

  if (ref->tag && !g_str_equal (ref->tag, "latest"))
    g_string_append_printf (s, "-%s", ref->tag);
  for (gsize i = 0; i < s->len; i++)
    {
      s->str[i] = g_ascii_tolower (s->str[i]);
      if (!(g_ascii_isalnum (s->str[i]) || s->str[i] == '-'))
        s->str[i] = '-';
    }
  if (s->len > BG_NAME_MAX_LEN)
    g_string_truncate (s, BG_NAME_MAX_LEN);
  return g_string_free (g_steal_pointer (&s), FALSE);
}
