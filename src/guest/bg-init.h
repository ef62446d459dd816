/* bg-init.h: the steps of banger-init, the early init of layered VMs.
 * Plain C and libc: it runs as PID 1, before anything else exists. */
#pragma once

#include <stddef.h>

/* Where a VM's own writes go on its disk (the "upper" ext4). */
#define BG_INIT_UPPER_ROOT "root"   /* the overlay's upper dir */
#define BG_INIT_UPPER_WORK "work"   /* the overlay's work dir */
#define BG_INIT_UPPER_DATA "data"   /* container engines' data, not on overlayfs */

/* Directories container engines keep data in: overlayfs cannot be their
 * upper layer, so each is a bind of a directory on the VM's ext4. */
extern const char * const bg_init_data_dirs[];

int bg_init_cmdline_value (const char *cmdline,
                           const char *key,
                           char       *out,
                           size_t      size);
int bg_init_has_filesystem (const char *device);
int bg_init_assemble       (const char *base,
                            const char *upper,
                            const char *newroot,
                            char       *why,
                            size_t      why_size);
