#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "bg-progress.h"

G_BEGIN_DECLS

typedef struct {
  char    *name;
  char    *dir;
  char    *kernel;      /* absolute paths inside dir */
  char    *rootfs;
  char    *initrd;      /* NULL when the image has none */
  char    *cmdline;
  guint64  kernel_bytes;
  guint64  rootfs_bytes;
  char    *kernel_sha256;
  char    *rootfs_sha256;
  gint64   created_at;
  char    *source;
  gboolean layered;       /* VMs share its root read-only (it has banger-init) */
  char    *boot_source;   /* where its kernel configuration was read; NULL: none found */
  char   **boot_missing;  /* what Firecracker needs that its kernel lacks */
  char    *copy_reason;     /* why VMs of it cannot be layered; NULL when they can */
  gboolean format_upper;    /* layered VMs' disks are formatted on the host (the image has no mke2fs) */
  gboolean sshd_known;      /* has_sshd was read off the image (images imported before it was not) */
  gboolean has_sshd;        /* its root has /usr/sbin/sshd or /sbin/sshd, so `vm ssh` can work */
  char    *guest_setup;     /* what applies the config drive: "banger-guest-setup", "cloud-init",
                             * "banger-init" or "none"; NULL for images imported before it was read */
  char    *manifest_digest; /* an OCI image's manifest; NULL for others */
  char   **layers;          /* an OCI image's layers (blob digests, lowest first); NULL for others */
} BgImage;

char          *bg_image_new_dir       (const char  *images_dir,
                                       const char  *name,
                                       GError     **error);
BgImage       *bg_image_load          (const char  *images_dir,
                                       const char  *name,
                                       GError     **error);
void           bg_image_free          (BgImage     *image);
JsonNode      *bg_image_to_json       (const BgImage *image);
/* What an image is made from. */
typedef struct {
  const char *kernel;
  const char *rootfs;
  const char *initrd;     /* NULL: none */
  const char *cmdline;    /* NULL: none */
  const char *source;     /* how it was made, for 'image show'; NULL: the files' names */
  const char *manifest_digest;      /* an OCI image's; NULL: none */
  const char * const *layers;       /* an OCI image's layer digests; NULL: none */
  gboolean    rootfs_is_ours;       /* rootfs is banger's own new file (an OCI image's mke2fs -d): moved
                                     * into the image, not copied */
} BgImageFiles;

BgImage       *bg_image_import        (const char  *images_dir,
                                       const char  *name,
                                       const BgImageFiles *files,
                                       BgProgress  *progress,
                                       GError     **error);
gboolean       bg_image_remove        (const char  *images_dir,
                                       const char  *name,
                                       GError     **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgImage, bg_image_free)

G_END_DECLS
