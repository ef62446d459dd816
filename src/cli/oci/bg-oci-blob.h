/* bg-oci-blob.h: blobs in a directory laid out as an OCI layout's blobs/
 * (sha256/<hex>), read by digest, bounded, their digests checked. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

int     bg_oci_blob_open  (int          blobs_dirfd,
                           const char  *digest,
                           guint64      size,
                           GError     **error);
GBytes *bg_oci_blob_read  (int          blobs_dirfd,
                           const char  *digest,
                           guint64      size,
                           guint64      max,
                           GError     **error);

G_END_DECLS
