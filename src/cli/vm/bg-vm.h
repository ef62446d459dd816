/* bg-vm.h: vm up, the VM lifecycle's orchestrator, over its parts
 * (bg-vm-launch.h, bg-vm-control.h). */
#pragma once

#include "bg-cli.h"
#include "bg-config.h"
#include "bg-state.h"

G_BEGIN_DECLS

typedef struct {
  char    *name;          /* NULL: generate one */
  char    *image;         /* NULL: config's */
  gint     cpus;          /* 0: config's */
  gint     memory_mib;
  guint64  disk_bytes;
  gboolean no_wait;
  guint    ready_timeout_s;
  const char *verb;       /* "up", "start", "restart": for messages */
  char   **forwards;      /* --forward SPECs (canonical), NULL: as recorded */
} BgUpOptions;

gboolean  bg_vm_up            (BgCli        *cli,
                               BgConfig     *config,
                               BgUpOptions  *options,
                               GError      **error);

/* cmd-forward.c */
gboolean  bg_vm_cmd_forward   (BgCli        *cli,
                               int           argc,
                               char        **argv,
                               GError      **error);

/* cmd-cp.c */
gboolean  bg_vm_cmd_cp        (BgCli        *cli,
                               int           argc,
                               char        **argv,
                               GError      **error);

G_END_DECLS
