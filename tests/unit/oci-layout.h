/* oci-layout.h: an OCI image layout written by the tests: two layers (a
 * small system, then whiteouts, an opaque directory and owners; or a
 * hostile second layer), a config with a workload, a manifest, a
 * multi-arch index named by index.json. */
#pragma once

#include <glib.h>

#define LAYER_GZ "application/vnd.oci.image.layer.v1.tar+gzip"
#define LAYER_ZSTD "application/vnd.oci.image.layer.v1.tar+zstd"

typedef struct {
  GBytes     *blob;
  char       *digest;
  char       *diff;
  const char *media_type;
} OciLayer;

void  oci_layout_write_file  (const char *path, const void *data, gsize len);
void  oci_layout_layers      (OciLayer layers[2], gboolean hostile);
void  oci_layout_layer_clear (OciLayer *l);
/* @parent/@name; @corrupt flips a byte of the second layer's blob. */
char *oci_layout_make        (const char *parent, const char *name, gboolean hostile, gboolean corrupt,
                              char **manifest_digest);
