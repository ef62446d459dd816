/* bg-oci-archive.h: an image archive (`docker save`, `podman save`, an
 * OCI layout as a tar) turned into a blobs directory (sha256/<hex>) and
 * the manifest to import from it. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct {
  GBytes *index;            /* index.json of an OCI layout archive; NULL if none */
  GBytes *docker_manifest;  /* manifest.json of a docker/podman save archive; NULL if none */
  GHashTable *members;      /* member name -> "sha256:<hex>" of its bytes */
} BgOciArchive;

BgOciArchive *bg_oci_archive_unpack          (int            archive_fd,
                                              int            blobs_dirfd,
                                              GError       **error);
GBytes       *bg_oci_archive_docker_manifest (BgOciArchive  *archive,
                                              int            blobs_dirfd,
                                              GError       **error);
void          bg_oci_archive_free            (BgOciArchive  *archive);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgOciArchive, bg_oci_archive_free)

G_END_DECLS
