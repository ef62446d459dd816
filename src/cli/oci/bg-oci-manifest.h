/* bg-oci-manifest.h: the JSON documents of an OCI image (image indexes
 * and Docker manifest lists, image manifests, image configs), parsed and
 * validated as the untrusted input they are: sizes bounded before they
 * are parsed, media types from a closed list (OCI and Docker schema 2),
 * digests "sha256:" and 64 lowercase hex digits only. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Bounds on what is read before parsing (distribution's own limit on a
 * manifest is 4 MiB; configs carry the build history, so more). */
#define BG_OCI_MANIFEST_MAX   (4u << 20)
#define BG_OCI_CONFIG_MAX     (8u << 20)
#define BG_OCI_LAYERS_MAX     256
#define BG_OCI_BLOB_MAX       (G_GUINT64_CONSTANT (64) << 30)

#define BG_OCI_MT_OCI_INDEX        "application/vnd.oci.image.index.v1+json"
#define BG_OCI_MT_OCI_MANIFEST     "application/vnd.oci.image.manifest.v1+json"
#define BG_OCI_MT_OCI_CONFIG       "application/vnd.oci.image.config.v1+json"
#define BG_OCI_MT_DOCKER_LIST      "application/vnd.docker.distribution.manifest.list.v2+json"
#define BG_OCI_MT_DOCKER_MANIFEST  "application/vnd.docker.distribution.manifest.v2+json"
#define BG_OCI_MT_DOCKER_CONFIG    "application/vnd.docker.container.image.v1+json"

typedef enum {
  BG_OCI_DOC_UNKNOWN,
  BG_OCI_DOC_INDEX,      /* an OCI image index or a Docker manifest list */
  BG_OCI_DOC_MANIFEST,   /* an OCI or Docker schema 2 image manifest */
} BgOciDocKind;

typedef enum {
  BG_OCI_COMPRESSION_NONE,
  BG_OCI_COMPRESSION_GZIP,
  BG_OCI_COMPRESSION_ZSTD,
} BgOciCompression;

typedef struct {
  char             *media_type;
  char             *digest;       /* "sha256:<64 hex>" */
  guint64           size;
  BgOciCompression  compression;  /* layers only */
} BgOciDescriptor;

typedef struct {
  char             *media_type;
  BgOciDescriptor  *config;
  GPtrArray        *layers;       /* of BgOciDescriptor, lowest first */
} BgOciManifest;

typedef struct {
  char   **entrypoint;   /* NULL when the image sets none */
  char   **cmd;
  char   **env;          /* "NAME=value" each */
  char    *working_dir;
  char    *user;
  char   **diff_ids;     /* the uncompressed layers' digests, lowest first */
} BgOciConfig;

/* The accept list a registry client sends, the media types of this file. */
extern const char bg_oci_manifest_accept[];

gboolean          bg_oci_digest_validate    (const char     *field,
                                             const char     *digest,
                                             GError        **error);
BgOciDocKind      bg_oci_doc_kind           (const char     *media_type);
BgOciDocKind      bg_oci_doc_detect         (GBytes         *doc,
                                             GError        **error);
BgOciDescriptor  *bg_oci_index_select       (GBytes         *index,
                                             GError        **error);
BgOciManifest    *bg_oci_manifest_parse     (GBytes         *manifest,
                                             GError        **error);
BgOciConfig      *bg_oci_config_parse       (GBytes         *config,
                                             GError        **error);
void              bg_oci_descriptor_free    (BgOciDescriptor *d);
void              bg_oci_manifest_free      (BgOciManifest  *m);
void              bg_oci_config_free        (BgOciConfig    *c);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgOciDescriptor, bg_oci_descriptor_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgOciManifest, bg_oci_manifest_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgOciConfig, bg_oci_config_free)

G_END_DECLS
