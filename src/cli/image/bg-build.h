#pragma once

#include "bg-image.h"

G_BEGIN_DECLS

typedef struct {
  const char *suite;      /* "bookworm" */
  const char *mirror;     /* NULL: the distribution's default */
  char      **packages;   /* extra packages */
  guint64     size;       /* root filesystem size */
  gboolean    cloud_init; /* configure guests with cloud-init, not banger-guest-setup */
} BgBuildOptions;

/* The unit that runs banger-guest-setup early at every boot, where it is
 * installed, and the link that enables it (sysinit.target wants it).
 * `image build`, `image import --oci` / `image pull` and `image import`
 * of a plain ext4 put the same ones into images that boot systemd. */
#define BG_GUEST_SETUP_UNIT "/usr/lib/systemd/system/banger-guest-setup.service"
#define BG_GUEST_SETUP_WANTS "/etc/systemd/system/sysinit.target.wants/banger-guest-setup.service"
extern const char bg_build_guest_setup_unit[];

char    *bg_build_guest_setup_path (void);
char    *bg_build_guest_init_path  (void);
char    *bg_build_guest_agent_path (void);
gboolean bg_build_check_host       (const BgBuildOptions *options,
                                    GError              **error);
gboolean bg_build_write_overlay    (const char           *overlay,
                                    const BgBuildOptions *options,
                                    const char           *guest_setup,
                                    GError              **error);

BgImage *bg_image_build (const char           *images_dir,
                         const char           *name,
                         const BgBuildOptions *options,
                         BgProgress           *progress,
                         GError              **error);

G_END_DECLS
