/* bg-registry.h: a client of the OCI Distribution API (v2) on libsoup-3,
 * for one repository: manifests by tag or digest, and blobs streamed into
 * the blob cache, several at once, each verified as it arrives.
 *
 * Authentication is the registries' own: a 401's WWW-Authenticate names
 * either Basic (credentials sent to the registry) or Bearer (a token from
 * the realm the registry names, anonymous or with Basic credentials, then
 * sent to the registry). The Authorization header goes to the registry's
 * own scheme://host:port only: redirects are followed here, not by
 * libsoup, and a blob sent elsewhere (a CDN) is fetched without it. TLS
 * trusts the system's CAs, and for one registry (or token server)
 * host:port also the CA files in $XDG_CONFIG_HOME/banger/certs.d/
 * <host:port>/ (its .crt files), as podman's certs.d does; plain HTTP is only for
 * registries the user's banger.conf names insecure. */
#pragma once

#include <gio/gio.h>

#include "bg-blob-cache.h"
#include "bg-image-ref.h"
#include "bg-progress.h"

G_BEGIN_DECLS

#define BG_REGISTRY_PARALLEL  3     /* blobs fetched at once */

typedef struct _BgRegistry BgRegistry;
typedef struct _BgRegistryFetch BgRegistryFetch;

typedef struct {
  const char *digest;
  guint64     size;
} BgRegistryBlob;

BgRegistry *bg_registry_new           (const BgImageRef  *ref,
                                       const char * const *insecure,
                                       GError           **error);
gboolean    bg_registry_is_insecure   (BgRegistry        *r);
GBytes     *bg_registry_get_manifest  (BgRegistry        *r,
                                       const char        *reference,
                                       char             **out_digest,
                                       GError           **error);
BgRegistryFetch *bg_registry_fetch_start (BgRegistry           *r,
                                          BgBlobCache          *cache,
                                          const BgRegistryBlob *blobs,
                                          guint                 n_blobs);
gboolean    bg_registry_fetch_wait    (BgRegistryFetch   *fetch,
                                       const char        *digest,
                                       BgProgress        *progress,
                                       GError           **error);
gboolean    bg_registry_fetch_has     (BgRegistryFetch   *fetch,
                                       const char        *digest);
void        bg_registry_fetch_free    (BgRegistryFetch   *fetch);
void        bg_registry_free          (BgRegistry        *r);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgRegistry, bg_registry_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgRegistryFetch, bg_registry_fetch_free)

G_END_DECLS
