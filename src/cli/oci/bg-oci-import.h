/* bg-oci-import.h: `banger image import --oci PATH`: an OCI image layout
 * directory, or an archive of one or of `docker save` / `podman save`,
 * made into a banger image offline (through bg_oci_image_import). */
#pragma once

#include "bg-oci.h"

G_BEGIN_DECLS

/* Where banger-init finds the image's workload (Entrypoint + Cmd, Env,
 * WorkingDir, User): "argv=…", "env=…", "cwd=…", "user=…" records, each
 * ended by a NUL, so banger-init reads it with libc alone. */
#define BG_OCI_WORKLOAD_IN_IMAGE "/usr/libexec/banger/workload"

gboolean bg_oci_import_path (const char  *name,
                             const char  *path,
                             const char  *kernel,
                             BgProgress  *progress,
                             GError     **error);

G_END_DECLS
