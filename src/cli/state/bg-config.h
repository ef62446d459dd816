#pragma once

#include <glib.h>

#include "bg-size.h"

G_BEGIN_DECLS

/* How a VM's root disk is made from its image. */
typedef enum {
  BG_DISK_MODE_AUTO,      /* reflink, else layered, else copy */
  BG_DISK_MODE_REFLINK,   /* a clone sharing the image's extents */
  BG_DISK_MODE_LAYERED,   /* the image shared read-only + a disk for writes */
  BG_DISK_MODE_COPY,      /* a copy of the image's data */
} BgDiskMode;

#define BG_DEFAULT_CPUS        2
#define BG_DEFAULT_MEMORY_MIB  1024
#define BG_DEFAULT_DISK_BYTES  (G_GUINT64_CONSTANT (8) << 30)
#define BG_DEFAULT_IMAGE       "default"
#define BG_DEFAULT_GUEST_USER  "dev"
#define BG_DEFAULT_SYNC_LIMIT  (G_GUINT64_CONSTANT (64) << 20)

#define BG_MIN_MEMORY_MIB      128
#define BG_MAX_MEMORY_MIB      (1024 * 1024)
#define BG_MAX_CPUS            32
#define BG_MIN_DISK_BYTES      (G_GUINT64_CONSTANT (256) << 20)
#define BG_MAX_DISK_BYTES      (G_GUINT64_CONSTANT (16) << 40)

typedef struct {
  char       *path;            /* the file read, or NULL for defaults */
  guint       cpus;
  guint       memory_mib;
  guint64     disk_bytes;
  char       *image;
  BgDiskMode  disk_mode;
  char       *guest_user;
  char       *ssh_key;         /* banger's own private key */
  char      **authorized_keys; /* extra public key files to authorize */
  char      **sync_paths;      /* files to copy into the guest's home */
  guint64     sync_limit;
  char      **insecure_registries; /* "host[:port]" pulled over plain HTTP */
  GPtrArray  *warnings;        /* human-readable, one per unknown key */
} BgConfig;

BgConfig   *bg_config_new_defaults        (void);
BgConfig   *bg_config_load                (const char  *path,
                                           GError     **error);
BgConfig   *bg_config_load_default        (GError     **error);
void        bg_config_free                (BgConfig    *config);
const char *bg_config_disk_mode_to_string (BgDiskMode   mode);

/* The limits of a VM's size, for banger.conf's keys and for the command
 * lines' flags that override them. */
gboolean    bg_config_validate_cpus       (const char  *field,
                                           gint64       cpus,
                                           GError     **error);
gboolean    bg_config_validate_memory     (const char  *field,
                                           gint64       mib,
                                           GError     **error);
gboolean    bg_config_validate_disk_size  (const char  *field,
                                           guint64      bytes,
                                           GError     **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgConfig, bg_config_free)

G_END_DECLS
