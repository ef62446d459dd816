/* bg-init-oci.h: banger-init as PID 1 of an image with no init of its
 * own (an OCI image): the usual mounts, the host name and network from
 * the config drive, the image's workload started and its zombies reaped,
 * a clean power-off on Ctrl-Alt-Del or when the workload ends.
 * Plain C and libc: it runs in any root, glibc or musl, nothing of the
 * image's used. Kept apart from init.c so each piece is testable
 * (tests/unit/test-init-oci.c). */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#define BG_INIT_WORKLOAD     "/usr/libexec/banger/workload"
#define BG_INIT_WORKLOAD_MAX (1u << 20)
#define BG_INIT_ARGS_MAX     4096
#define BG_INIT_DNS_MAX      4

/* The image's workload (bg-oci-import.c writes it): "argv=", "env=",
 * "cwd=", "user=" records, each ended by a NUL. Pointers into @buf. */
typedef struct {
  char       *buf;
  const char *argv[BG_INIT_ARGS_MAX + 1];
  const char *env[BG_INIT_ARGS_MAX + 8];   /* room for the defaults */
  size_t      nargv, nenv;
  const char *cwd;
  const char *user;
} BgInitWorkload;

/* What the config drive tells a VM without banger-guest-setup. */
typedef struct {
  char     hostname[64];
  char     mac[18];
  char     address[16];       /* dotted IPv4 */
  unsigned prefix;
  char     gateway[16];
  char     dns[BG_INIT_DNS_MAX][46];
  size_t   ndns;
  char     search[256];
} BgInitSeed;

int  bg_init_workload_parse (char *buf, size_t len, BgInitWorkload *w, char *why, size_t why_size);
/* Adds PATH, HOME, HOSTNAME and TERM where the image's Env has none. */
void bg_init_workload_defaults (BgInitWorkload *w, const char *home, const char *hostname, char *storage,
                                size_t storage_size);
/* @name found in @path (a PATH value) under @root, into @out; 0 if found. */
int  bg_init_find_program (const char *root, const char *path, const char *name, char *out, size_t size);

/* Calls @leaf (path, value) for every string, number or boolean of a
 * JSON document; paths like "ethernets.eth0.addresses[0]". -1 on a
 * document that is not JSON (or nested deeper than 16). */
typedef void (*BgInitJsonLeaf) (const char *path, const char *value, void *data);
int  bg_init_json_walk      (const char *text, BgInitJsonLeaf leaf, void *data);
int  bg_init_seed_parse     (const char *meta_data, const char *network_config, BgInitSeed *seed,
                             char *why, size_t why_size);
/* Whether the FAT boot sector in @fd says volume label CIDATA. */
int  bg_init_is_cidata      (int fd);

/* Paths of @module and what it needs (dependencies first), from
 * @modules_dir/modules.dep; the count, or -1 if it is not listed. */
int  bg_init_module_paths   (const char *modules_dir, const char *module, char paths[][512], int max);
/* Loads @module (and what it needs) from @modules_dir with finit_module:
 * no modprobe needed in the image. 0, or -1 with errno. */
int  bg_init_load_module    (const char *modules_dir, const char *module);

/* @module loaded, unless @filesystem (when not NULL) is known already:
 * by the image's /sbin/modprobe, else bg_init_load_module. */
int  bg_init_ensure_module  (const char *module, const char *filesystem);
/* vfat loaded, and, without modprobe in the image, the code page and
 * character sets a vfat mount asks modprobe for. 0, or -1 with errno. */
int  bg_init_ensure_vfat    (void);

/* Whether @devices (/sys/bus/virtio/devices) holds a virtio device of
 * type @id (VIRTIO_ID_*), driver or not. */
int  bg_init_virtio_present (const char *devices, unsigned id);

/* PID 1's loop: reaps every child; returns the workload's wait status
 * once @workload ended, or -1 when @stop_signal (SIGINT: Ctrl-Alt-Del,
 * SIGTERM, SIGPWR) came first. The signals must be blocked. */
int  bg_init_supervise      (pid_t workload);

/* The whole of it, after the root was assembled and entered: never
 * returns (powers the VM off). */
void bg_init_oci_run        (void) __attribute__ ((noreturn));
