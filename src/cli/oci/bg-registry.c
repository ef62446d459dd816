/* bg-registry.c: see bg-registry.h. */
#include "bg-registry.h"

#include <signal.h>
#include <string.h>
#include <libsoup/soup.h>

#include "bg-cli.h"
#include "bg-error.h"
#include "bg-oci-manifest.h"
#include "bg-registry-auth.h"

#define MAX_REDIRECTS   5
#define TOKEN_MAX       (1u << 20)
#define CHUNK           (1u << 20)
#define TIMEOUT_S       60

struct _BgRegistry {
  char                  *registry;     /* as the user named it: "docker.io" */
  char                  *repository;
  char                  *scheme;       /* "https", or "http" when insecure */
  char                  *host;         /* where the API is: "registry-1.docker.io" */
  int                    port;
  char                  *base;         /* "https://host:port/v2/<repository>" */
  char                 **insecure;
  BgRegistryCredentials *creds;
  SoupSession           *session;      /* the calling thread's */
  GMutex                 lock;         /* guards what follows */
  char                  *authorization;/* "Bearer …" or "Basic …": a secret */
  GHashTable            *cas;          /* "host:port" → GList of GTlsCertificate */
};

/* ---- TLS trust for one host:port ---- */

static void
free_ca_list (gpointer list)
{
  g_list_free_full (list, g_object_unref);
}

/* The CAs in $XDG_CONFIG_HOME/banger/certs.d/<host:port>/ (.crt files); NULL when
 * there are none (the system's CAs alone then). */
static GList *
extra_cas (BgRegistry *r,
           const char *authority)
{
  GList *list = NULL;

  g_mutex_lock (&r->lock);
  if (!g_hash_table_lookup_extended (r->cas, authority, NULL, (gpointer *) &list))
    {
      g_autofree char *dir = g_build_filename (g_get_user_config_dir (), "banger", "certs.d", authority, NULL);
      g_autoptr(GDir) d = strchr (authority, '/') ? NULL : g_dir_open (dir, 0, NULL);
      const char *entry;

      while (d != NULL && (entry = g_dir_read_name (d)) != NULL)
        {
          g_autofree char *file = g_build_filename (dir, entry, NULL);
          if (g_str_has_suffix (entry, ".crt"))
            list = g_list_concat (list, g_tls_certificate_list_new_from_file (file, NULL));
        }
      g_hash_table_insert (r->cas, g_strdup (authority), list);
    }
  g_mutex_unlock (&r->lock);
  return list;
}

/* libsoup found the peer not trusted by the system: it may still be by a
 * CA of certs.d for exactly this host:port. */
static gboolean
on_accept_certificate (SoupMessage         *msg,
                       GTlsCertificate     *cert,
                       GTlsCertificateFlags errors,
                       gpointer             data)
{
  GList *cas = data;
  GUri *uri = soup_message_get_uri (msg);
  g_autoptr(GSocketConnectable) identity = g_network_address_new (g_uri_get_host (uri), g_uri_get_port (uri));

  for (GList *l = cas; l != NULL; l = l->next)
    if (g_tls_certificate_verify (cert, identity, l->data) == 0)
      return TRUE;
  return FALSE;
}

/* Proxies from the environment (https_proxy, http_proxy, no_proxy) as
 * curl and podman take them, not GIO's default resolver, which would read
 * the desktop's settings through dconf: a command-line tool does what its
 * environment says. NULL: no proxy. */
static GProxyResolver *
env_proxy_resolver (void)
{
  const char *https = g_getenv ("https_proxy") ? g_getenv ("https_proxy") : g_getenv ("HTTPS_PROXY");
  const char *http = g_getenv ("http_proxy") ? g_getenv ("http_proxy") : g_getenv ("HTTP_PROXY");
  const char *no = g_getenv ("no_proxy") ? g_getenv ("no_proxy") : g_getenv ("NO_PROXY");
  g_auto(GStrv) ignore = NULL;
  GProxyResolver *resolver;

  if ((https == NULL || *https == '\0') && (http == NULL || *http == '\0'))
    return NULL;
  ignore = no ? g_strsplit (no, ",", -1) : NULL;
  for (guint i = 0; ignore && ignore[i]; i++)
    g_strstrip (ignore[i]);
  resolver = g_simple_proxy_resolver_new (NULL, ignore);
  if (https && *https)
    g_simple_proxy_resolver_set_uri_proxy (G_SIMPLE_PROXY_RESOLVER (resolver), "https", https);
  if (http && *http)
    g_simple_proxy_resolver_set_uri_proxy (G_SIMPLE_PROXY_RESOLVER (resolver), "http", http);
  return resolver;
}

static SoupSession *
make_session (void)
{
  g_autoptr(GProxyResolver) proxies = env_proxy_resolver ();

  return soup_session_new_with_options ("timeout", TIMEOUT_S, "idle-timeout", TIMEOUT_S,
                                        "user-agent", "banger/" PACKAGE_VERSION,
                                        "proxy-resolver", proxies, NULL);
}

/* ---- the registry ---- */

static gboolean
in_list (const char * const *list,
         const char         *authority)
{
  for (guint i = 0; list && list[i]; i++)
    if (g_ascii_strcasecmp (list[i], authority) == 0)
      return TRUE;
  return FALSE;
}

BgRegistry *
bg_registry_new (const BgImageRef   *ref,
                 const char * const *insecure,
                 GError            **error)
{
  g_autoptr(BgRegistry) r = g_new0 (BgRegistry, 1);
  const char *colon;

  g_mutex_init (&r->lock);
  r->cas = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, free_ca_list);
  r->registry = g_strdup (ref->registry);
  r->repository = g_strdup (ref->repository);
  r->insecure = g_strdupv ((char **) insecure);
  r->scheme = g_strdup (in_list (insecure, ref->registry) ? "http" : "https");
  /* Docker Hub's API is not at its name. */
  if (g_str_equal (ref->registry, BG_IMAGE_REF_DOCKER_HUB))
    r->host = g_strdup ("registry-1.docker.io");
  else
    {
      colon = strrchr (ref->registry, ':');
      r->host = g_strndup (ref->registry, colon ? colon - ref->registry : -1);
      if (colon)
        r->port = atoi (colon + 1);
    }
  if (r->port == 0)
    r->port = g_str_equal (r->scheme, "https") ? 443 : 80;
  r->base = g_strdup_printf ("%s://%s:%d/v2/%s", r->scheme, r->host, r->port, r->repository);
  r->creds = bg_registry_credentials_find (ref->registry, ref->repository, error);
  if (r->creds == NULL && error && *error)
    return NULL;
  r->session = make_session ();
  return g_steal_pointer (&r);
}

void
bg_registry_free (BgRegistry *r)
{
  if (r == NULL)
    return;
  g_clear_object (&r->session);
  bg_registry_credentials_free (r->creds);
  if (r->authorization)
    explicit_bzero (r->authorization, strlen (r->authorization));
  g_free (r->authorization);
  g_hash_table_unref (r->cas);
  g_strfreev (r->insecure);
  g_free (r->registry);
  g_free (r->repository);
  g_free (r->scheme);
  g_free (r->host);
  g_free (r->base);
  g_mutex_clear (&r->lock);
  g_free (r);
}

gboolean
bg_registry_is_insecure (BgRegistry *r)
{
  return g_str_equal (r->scheme, "http");
}

/* The registry's own origin: the only one its credentials go to. */
static gboolean
is_registry (BgRegistry *r,
             GUri       *uri)
{
  return g_str_equal (g_uri_get_scheme (uri), r->scheme) &&
         g_ascii_strcasecmp (g_uri_get_host (uri), r->host) == 0 &&
         g_uri_get_port (uri) == r->port;
}

static char *
authority_of (GUri *uri)
{
  int port = g_uri_get_port (uri);

  if (port < 0)
    port = g_str_equal (g_uri_get_scheme (uri), "https") ? 443 : 80;
  return g_strdup_printf ("%s:%d", g_uri_get_host (uri), port);
}

/* https, or http to a host the user named insecure (a downgrade by a
 * redirect or a realm is refused like any other plain-HTTP URL). */
static gboolean
check_scheme (BgRegistry *r,
              GUri       *uri,
              const char *what,
              GError    **error)
{
  g_autofree char *authority = authority_of (uri);
  g_autofree char *short_auth = NULL;
  const char *scheme = g_uri_get_scheme (uri);

  if (g_strcmp0 (scheme, "https") == 0)
    return TRUE;
  short_auth = g_uri_get_port (uri) > 0 ? g_strdup (authority) : g_strdup (g_uri_get_host (uri));
  if (g_strcmp0 (scheme, "http") == 0 && (in_list ((const char * const *) r->insecure, authority) ||
                                          in_list ((const char * const *) r->insecure, short_auth)))
    return TRUE;
  g_set_error (error, BG_ERROR, BG_ERROR_FAILED,
               "%s for %s is at %s://%s, not https; refused (only a registry named in banger.conf's "
               "[registry] insecure is used over plain HTTP)", what, r->registry, scheme ? scheme : "?", authority);
  return FALSE;
}

static void
set_authorization (BgRegistry *r,
                   char       *value)
{
  g_mutex_lock (&r->lock);
  if (r->authorization)
    explicit_bzero (r->authorization, strlen (r->authorization));
  g_free (r->authorization);
  r->authorization = value;
  g_mutex_unlock (&r->lock);
}

static void
add_authorization (BgRegistry  *r,
                   SoupMessage *msg)
{
  g_mutex_lock (&r->lock);
  if (r->authorization)
    soup_message_headers_replace (soup_message_get_request_headers (msg), "Authorization", r->authorization);
  g_mutex_unlock (&r->lock);
}

/* Reads a whole (small) body, refusing more than @max bytes. */
static GBytes *
read_bounded (GInputStream *in,
              gsize         max,
              const char   *what,
              GCancellable *cancellable,
              GError      **error)
{
  g_autoptr(GByteArray) buf = g_byte_array_new ();
  guint8 chunk[16384];

  for (;;)
    {
      gssize n = g_input_stream_read (in, chunk, sizeof chunk, cancellable, error);
      if (n < 0)
        return NULL;
      if (n == 0)
        break;
      if (buf->len + (gsize) n > max)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "%s is larger than %" G_GSIZE_FORMAT " bytes; refused",
                       what, max);
          return NULL;
        }
      g_byte_array_append (buf, chunk, n);
    }
  return g_byte_array_free_to_bytes (g_steal_pointer (&buf));
}

static SoupMessage *
new_message (BgRegistry *r,
             const char *method,
             GUri       *uri,
             const char *accept)
{
  SoupMessage *msg = soup_message_new_from_uri (method, uri);
  g_autofree char *authority = authority_of (uri);
  GList *cas = extra_cas (r, authority);

  /* Redirects are ours to follow: libsoup would carry the header along. */
  soup_message_add_flags (msg, SOUP_MESSAGE_NO_REDIRECT);
  if (accept)
    soup_message_headers_replace (soup_message_get_request_headers (msg), "Accept", accept);
  if (cas != NULL)
    g_signal_connect (msg, "accept-certificate", G_CALLBACK (on_accept_certificate), cas);
  return msg;
}

static const char *
who (BgRegistry *r)
{
  return r->registry;
}

/* A token from the realm the registry named, for pulling this repository:
 * anonymous, or with the user's credentials (the realm is the registry's
 * own choice, given over the registry's verified connection, as docker
 * and podman trust it). */
static gboolean
fetch_token (BgRegistry          *r,
             SoupSession         *session,
             BgRegistryChallenge *c,
             GCancellable        *cancellable,
             GError             **error)
{
  g_autoptr(GUri) realm = NULL;
  g_autoptr(GUri) uri = NULL;
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(GInputStream) in = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GString) query = g_string_new (NULL);
  g_autofree char *scope = g_strdup_printf ("repository:%s:pull", r->repository);
  JsonObject *o;
  const char *token;
  guint status;

  realm = g_uri_parse (c->realm, G_URI_FLAGS_ENCODED, NULL);
  if (realm == NULL || g_uri_get_host (realm) == NULL)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "registry %s named a token service that is not a URL", who (r));
      return FALSE;
    }
  if (!check_scheme (r, realm, "the token service", error))
    return FALSE;
  if (g_uri_get_query (realm))
    g_string_append_printf (query, "%s&", g_uri_get_query (realm));
  if (c->service)
    {
      g_autofree char *s = g_uri_escape_string (c->service, NULL, FALSE);
      g_string_append_printf (query, "service=%s&", s);
    }
  {
    g_autofree char *s = g_uri_escape_string (scope, ":", FALSE);
    g_string_append_printf (query, "scope=%s", s);
  }
  uri = g_uri_build (G_URI_FLAGS_ENCODED, g_uri_get_scheme (realm), NULL, g_uri_get_host (realm),
                     g_uri_get_port (realm), g_uri_get_path (realm), query->str, NULL);
  msg = new_message (r, "GET", uri, "application/json");
  if (r->creds)
    {
      g_autofree char *basic = bg_registry_credentials_basic (r->creds);
      soup_message_headers_replace (soup_message_get_request_headers (msg), "Authorization", basic);
      explicit_bzero (basic, strlen (basic));
    }
  in = soup_session_send (session, msg, cancellable, error);
  if (in == NULL)
    {
      g_prefix_error (error, "Cannot get a token for %s: ", who (r));
      return FALSE;
    }
  status = soup_message_get_status (msg);
  if (status == SOUP_STATUS_UNAUTHORIZED || status == SOUP_STATUS_FORBIDDEN)
    {
      if (r->creds)
        g_set_error (error, BG_ERROR, BG_ERROR_FAILED,
                     "%s refused the credentials for it in %s; log in again (podman login %s)",
                     who (r), r->creds->file, who (r));
      else
        g_set_error (error, BG_ERROR, BG_ERROR_FAILED,
                     "%s refused an anonymous token; log in first (podman login %s)", who (r), who (r));
      return FALSE;
    }
  if (status != SOUP_STATUS_OK)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "the token service of %s answered %u %s",
                   who (r), status, soup_message_get_reason_phrase (msg));
      return FALSE;
    }
  body = read_bounded (in, TOKEN_MAX, "the token service's answer", cancellable, error);
  if (body == NULL)
    return FALSE;
  if (!json_parser_load_from_data (parser, g_bytes_get_data (body, NULL), g_bytes_get_size (body), NULL) ||
      !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "the token service of %s answered with no JSON object", who (r));
      return FALSE;
    }
  o = json_node_get_object (json_parser_get_root (parser));
  token = json_object_get_string_member_with_default (o, "token", NULL);
  if (token == NULL || *token == '\0')
    token = json_object_get_string_member_with_default (o, "access_token", NULL);
  if (token == NULL || *token == '\0' || strpbrk (token, " \r\n\t") != NULL)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "the token service of %s answered without a token", who (r));
      return FALSE;
    }
  set_authorization (r, g_strconcat ("Bearer ", token, NULL));
  return TRUE;
}

/* After a 401: answer the registry's challenge, so a retry may pass. */
static gboolean
answer_challenge (BgRegistry   *r,
                  SoupSession  *session,
                  SoupMessage  *msg,
                  GCancellable *cancellable,
                  GError      **error)
{
  const char *header = soup_message_headers_get_one (soup_message_get_response_headers (msg), "WWW-Authenticate");
  g_autoptr(BgRegistryChallenge) c = bg_registry_challenge_parse (header);

  if (c == NULL)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED,
                   "%s requires authentication of a kind banger does not know (neither Bearer nor Basic)", who (r));
      return FALSE;
    }
  if (g_str_equal (c->scheme, "bearer"))
    return fetch_token (r, session, c, cancellable, error);
  if (r->creds == NULL)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED,
                   "%s requires credentials, and none were found for it; log in first (podman login %s)",
                   who (r), who (r));
      return FALSE;
    }
  set_authorization (r, bg_registry_credentials_basic (r->creds));
  return TRUE;
}

/* One API request, as the registry wants it: the challenge answered once,
 * redirects followed (the Authorization header only to the registry), a
 * non-2xx status an error that names what was asked for. */
static GInputStream *
send_request (BgRegistry   *r,
              SoupSession  *session,
              const char   *path,
              const char   *accept,
              const char   *what,
              SoupMessage **out_msg,
              GCancellable *cancellable,
              GError      **error)
{
  g_autofree char *url = g_strconcat (r->base, path, NULL);
  g_autoptr(GUri) uri = g_uri_parse (url, G_URI_FLAGS_ENCODED, error);
  gboolean answered = FALSE;
  guint redirects = 0;

  if (uri == NULL)
    return NULL;
  for (;;)
    {
      g_autoptr(SoupMessage) msg = new_message (r, "GET", uri, accept);
      g_autoptr(GInputStream) in = NULL;
      guint status;

      if (is_registry (r, uri))
        add_authorization (r, msg);
      in = soup_session_send (session, msg, cancellable, error);
      if (in == NULL)
        {
          g_prefix_error (error, "Cannot reach %s (%s): ", who (r), what);
          return NULL;
        }
      status = soup_message_get_status (msg);
      if (SOUP_STATUS_IS_SUCCESSFUL (status))
        {
          *out_msg = g_steal_pointer (&msg);
          return g_steal_pointer (&in);
        }
      g_input_stream_close (in, NULL, NULL);
      if (status == SOUP_STATUS_UNAUTHORIZED && is_registry (r, uri) && !answered)
        {
          answered = TRUE;
          if (!answer_challenge (r, session, msg, cancellable, error))
            return NULL;
          continue;
        }
      if (SOUP_STATUS_IS_REDIRECTION (status) && status != 304)
        {
          const char *location = soup_message_headers_get_one (soup_message_get_response_headers (msg), "Location");
          g_autoptr(GUri) next = location ? g_uri_parse_relative (uri, location, G_URI_FLAGS_ENCODED, NULL) : NULL;

          if (next == NULL || ++redirects > MAX_REDIRECTS)
            {
              g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "%s sent %s to %s",
                           who (r), what, next ? "too many redirects" : "a redirect without a valid Location");
              return NULL;
            }
          if (!check_scheme (r, next, what, error))
            return NULL;
          g_uri_unref (uri);
          uri = g_steal_pointer (&next);
          continue;
        }
      if (status == SOUP_STATUS_UNAUTHORIZED || status == SOUP_STATUS_FORBIDDEN)
        {
          if (r->creds)
            g_set_error (error, BG_ERROR, BG_ERROR_FAILED,
                         "%s denied %s with the credentials for it in %s; check them (podman login %s)",
                         who (r), what, r->creds->file, who (r));
          else
            g_set_error (error, BG_ERROR, BG_ERROR_FAILED,
                         "%s denied %s without credentials; if it is private, log in first (podman login %s)",
                         who (r), what, who (r));
          return NULL;
        }
      if (status == SOUP_STATUS_NOT_FOUND)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_NOT_FOUND, "%s has no %s", who (r), what);
          return NULL;
        }
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "%s answered %u %s for %s",
                   who (r), status, soup_message_get_reason_phrase (msg), what);
      return NULL;
    }
}

/* A manifest or index by tag or digest: bounded, digest computed (and
 * checked against what was asked for, or the registry's header). */
GBytes *
bg_registry_get_manifest (BgRegistry *r,
                          const char *reference,
                          char      **out_digest,
                          GError    **error)
{
  g_autofree char *path = g_strconcat ("/manifests/", reference, NULL);
  g_autofree char *what = g_strdup_printf ("%s:%s", r->repository, reference);
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(GInputStream) in = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autofree char *digest = NULL;
  g_autofree char *hex = NULL;
  const char *header;

  if (g_str_has_prefix (reference, "sha256:"))
    {
      g_free (what);
      what = g_strdup_printf ("%s@%s", r->repository, reference);
    }
  in = send_request (r, r->session, path, bg_oci_manifest_accept, what, &msg, NULL, error);
  if (in == NULL)
    return NULL;
  if (soup_message_headers_get_content_length (soup_message_get_response_headers (msg)) > BG_OCI_MANIFEST_MAX)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "the manifest of %s is larger than %u bytes; refused",
                   what, BG_OCI_MANIFEST_MAX);
      return NULL;
    }
  body = read_bounded (in, BG_OCI_MANIFEST_MAX, "the manifest", NULL, error);
  if (body == NULL)
    return NULL;
  hex = g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, body);
  digest = g_strconcat ("sha256:", hex, NULL);
  header = soup_message_headers_get_one (soup_message_get_response_headers (msg), "Docker-Content-Digest");
  if ((g_str_has_prefix (reference, "sha256:") && !g_str_equal (reference, digest)) ||
      (header != NULL && g_str_has_prefix (header, "sha256:") && !g_str_equal (header, digest)))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED,
                   "the manifest %s sent for %s does not match its digest (it is %s); refused",
                   who (r), what, digest);
      return NULL;
    }
  *out_digest = g_steal_pointer (&digest);
  return g_steal_pointer (&body);
}

/* ---- blobs, several at once ---- */

struct _BgRegistryFetch {
  BgRegistry           *r;
  BgBlobCache          *cache;
  BgRegistryBlob       *blobs;       /* digests our own copies */
  gboolean             *done;        /* blob i verified and in the cache */
  guint                 n_blobs;
  guint                 next;        /* the next blob a worker takes */
  GCancellable         *cancellable; /* cancelled by the first failure, or the caller */
  GPtrArray            *threads;
  GMutex                lock;
  GCond                 changed;
  GError               *error;       /* the first failure */
  guint                 running;
  guint64               total;
  guint64               bytes;       /* bytes received, all blobs (atomic) */
};

/* Test builds only: BANGER_TEST_PAUSE_AT=pull-blob stops the process
 * once the first bytes of a blob are in, so a test can kill the registry
 * in the middle of a pull. */
static void
test_hook (const char *step)
{
#ifdef BG_TEST_HOOKS
  static gint paused;

  if (g_strcmp0 (g_getenv ("BANGER_TEST_PAUSE_AT"), step) == 0 && g_atomic_int_compare_and_exchange (&paused, 0, 1))
    {
      g_printerr ("banger: paused at %s\n", step);
      raise (SIGSTOP);
    }
#endif
}

static gboolean
fetch_one (BgRegistryFetch      *f,
           SoupSession          *session,
           const BgRegistryBlob *blob,
           GError              **error)
{
  g_autofree char *path = g_strconcat ("/blobs/", blob->digest, NULL);
  g_autofree char *what = g_strdup_printf ("blob %s", blob->digest);
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(GInputStream) in = NULL;
  g_autoptr(BgBlobWriter) w = NULL;
  g_autofree guint8 *buf = g_malloc (CHUNK);
  goffset length;

  w = bg_blob_writer_new (f->cache, blob->digest, blob->size, error);
  if (w == NULL)
    return FALSE;
  in = send_request (f->r, session, path, NULL, what, &msg, f->cancellable, error);
  if (in == NULL)
    return FALSE;
  length = soup_message_headers_get_content_length (soup_message_get_response_headers (msg));
  if (length > 0 && (guint64) length != blob->size)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED,
                   "%s sent %" G_GINT64_FORMAT " bytes for blob %s, whose manifest gives %" G_GUINT64_FORMAT "; refused",
                   who (f->r), (gint64) length, blob->digest, blob->size);
      return FALSE;
    }
  for (;;)
    {
      gsize n = 0;

      /* A TLS stream gives one record (16 KiB) a read: a chunk filled
       * whole is one write to the cache, not sixty-four. At most the
       * declared size plus one byte is asked for, so a registry sending
       * more is refused by the writer without being read on. */
      if (!g_input_stream_read_all (in, buf, MIN ((guint64) CHUNK, blob->size - bg_blob_writer_written (w) + 1),
                                    &n, f->cancellable, error))
        {
          g_prefix_error (error, "%s: blob %s broke off after %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT " bytes: ",
                          who (f->r), blob->digest, bg_blob_writer_written (w) + n, blob->size);
          return FALSE;
        }
      if (n == 0)
        break;
      if (!bg_blob_writer_write (w, buf, n, error))
        return FALSE;
      /* No lock and no wake-up a read: the waiter looks ten times a second. */
      __atomic_fetch_add (&f->bytes, (guint64) n, __ATOMIC_RELAXED);
      if (bg_blob_writer_written (w) < blob->size)
        test_hook ("pull-blob");
    }
  return bg_blob_writer_commit (w, error);
}

static gpointer
fetch_worker (gpointer data)
{
  BgRegistryFetch *f = data;
  g_autoptr(SoupSession) session = make_session ();

  for (;;)
    {
      g_autoptr(GError) local = NULL;
      guint i;

      g_mutex_lock (&f->lock);
      i = f->next++;
      g_mutex_unlock (&f->lock);
      if (i >= f->n_blobs || g_cancellable_is_cancelled (f->cancellable))
        break;
      if (!fetch_one (f, session, &f->blobs[i], &local))
        {
          g_mutex_lock (&f->lock);
          if (f->error == NULL)
            f->error = g_steal_pointer (&local);
          g_mutex_unlock (&f->lock);
          g_cancellable_cancel (f->cancellable);
          break;
        }
      g_mutex_lock (&f->lock);
      f->done[i] = TRUE;
      g_cond_broadcast (&f->changed);
      g_mutex_unlock (&f->lock);
    }
  g_mutex_lock (&f->lock);
  f->running--;
  g_cond_broadcast (&f->changed);
  g_mutex_unlock (&f->lock);
  return NULL;
}

/* Starts fetching @blobs (none already cached, by the caller's choice)
 * into the cache, BG_REGISTRY_PARALLEL at a time, in their order, on
 * threads of their own: the caller may use each blob as soon as
 * bg_registry_fetch_wait() says it is in. The first failure stops the
 * others; every blob not verified whole is dropped. */
BgRegistryFetch *
bg_registry_fetch_start (BgRegistry           *r,
                         BgBlobCache          *cache,
                         const BgRegistryBlob *blobs,
                         guint                 n_blobs)
{
  BgRegistryFetch *f = g_new0 (BgRegistryFetch, 1);
  guint workers = MIN (n_blobs, BG_REGISTRY_PARALLEL);

  f->r = r;
  f->cache = cache;
  f->n_blobs = n_blobs;
  f->blobs = g_new0 (BgRegistryBlob, MAX (n_blobs, 1));
  f->done = g_new0 (gboolean, MAX (n_blobs, 1));
  for (guint i = 0; i < n_blobs; i++)
    {
      f->blobs[i] = (BgRegistryBlob) { g_strdup (blobs[i].digest), blobs[i].size };
      f->total += blobs[i].size;
    }
  f->cancellable = g_cancellable_new ();
  f->threads = g_ptr_array_new ();
  g_mutex_init (&f->lock);
  g_cond_init (&f->changed);
  f->running = workers;
  for (guint i = 0; i < workers; i++)
    g_ptr_array_add (f->threads, g_thread_new ("bg-fetch", fetch_worker, f));
  return f;
}

/* Whether the blob @digest is in the cache now (or was never fetched). */
gboolean
bg_registry_fetch_has (BgRegistryFetch *f,
                       const char      *digest)
{
  gboolean has = TRUE;

  g_mutex_lock (&f->lock);
  for (guint i = 0; i < f->n_blobs; i++)
    if (g_str_equal (f->blobs[i].digest, digest))
      has = f->done[i];
  g_mutex_unlock (&f->lock);
  return has;
}

/* Waits until the blob @digest is in the cache (or, @digest NULL, every
 * blob), showing the fetch's progress; FALSE once any blob failed, or
 * on Ctrl-C. A digest not being fetched is there already. */
gboolean
bg_registry_fetch_wait (BgRegistryFetch *f,
                        const char      *digest,
                        BgProgress      *progress,
                        GError         **error)
{
  gint index = -1;
  gboolean ok;

  for (guint i = 0; digest != NULL && i < f->n_blobs; i++)
    if (g_str_equal (f->blobs[i].digest, digest))
      index = i;
  if (digest != NULL && index < 0)
    return TRUE;

  g_mutex_lock (&f->lock);
  for (;;)
    {
      guint64 bytes = __atomic_load_n (&f->bytes, __ATOMIC_RELAXED);

      if (f->error != NULL || (index >= 0 ? f->done[index] : f->running == 0))
        break;
      /* Ctrl-C: the workers stop at their next read, their blobs unnamed. */
      if (bg_interrupted)
        {
          g_cancellable_cancel (f->cancellable);
          if (f->error == NULL)
            f->error = g_error_new_literal (BG_ERROR, BG_ERROR_FAILED, "interrupted");
          break;
        }
      g_mutex_unlock (&f->lock);
      bg_progress_bytes (progress, bytes, f->total);
      g_mutex_lock (&f->lock);
      if (f->error == NULL && !(index >= 0 ? f->done[index] : f->running == 0))
        g_cond_wait_until (&f->changed, &f->lock, g_get_monotonic_time () + G_TIME_SPAN_SECOND / 10);
    }
  ok = f->error == NULL;
  if (!ok && bg_interrupted)
    g_set_error_literal (error, BG_ERROR, BG_ERROR_FAILED, "interrupted");
  else if (!ok)
    g_propagate_error (error, g_error_copy (f->error));
  g_mutex_unlock (&f->lock);
  if (ok && index < 0)
    bg_progress_bytes (progress, f->total, f->total);
  return ok;
}

/* Stops what still runs (its blobs dropped unnamed) and waits for the
 * workers to be gone. */
void
bg_registry_fetch_free (BgRegistryFetch *f)
{
  if (f == NULL)
    return;
  g_cancellable_cancel (f->cancellable);
  for (guint i = 0; i < f->threads->len; i++)
    g_thread_join (f->threads->pdata[i]);
  g_ptr_array_unref (f->threads);
  g_object_unref (f->cancellable);
  g_mutex_clear (&f->lock);
  g_cond_clear (&f->changed);
  g_clear_error (&f->error);
  for (guint i = 0; i < f->n_blobs; i++)
    g_free ((char *) f->blobs[i].digest);
  g_free (f->blobs);
  g_free (f->done);
  g_free (f);
}
