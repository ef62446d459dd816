/* bg-image-ref.h: an image reference as Docker and podman write it
 * ("debian:bookworm", "ghcr.io/org/img@sha256:...", "host:5000/a/b:tag"),
 * split into registry, repository, tag and digest. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define BG_IMAGE_REF_DOCKER_HUB "docker.io"

typedef struct {
  char *registry;    /* "docker.io", "ghcr.io", "127.0.0.1:5000" */
  char *repository;  /* "library/debian" */
  char *tag;         /* "bookworm"; NULL when only a digest was given */
  char *digest;      /* "sha256:<64 hex>" or NULL */
} BgImageRef;

BgImageRef *bg_image_ref_parse     (const char        *text,
                                    GError           **error);
char       *bg_image_ref_to_string (const BgImageRef  *ref);
const char *bg_image_ref_reference (const BgImageRef  *ref);
char       *bg_image_ref_default_name (const BgImageRef *ref);
void        bg_image_ref_free      (BgImageRef        *ref);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgImageRef, bg_image_ref_free)

G_END_DECLS
