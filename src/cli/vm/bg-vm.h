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
gboolean  bg_vm_stop          (BgCli        *cli,
                               const char   *name,
                               gboolean      force,
                               guint         timeout_s,
                               GError      **error);
gboolean  bg_vm_remove        (BgCli        *cli,
                               const char   *name,
                               gboolean      force,
                               GError      **error);
gboolean  bg_vm_set_paused    (const char   *name,
                               gboolean      paused,
                               GError      **error);
BgVmState bg_vm_probe_state   (BgVmRecord   *record);
/* Running, paused or starting: a VMM is there. */
gboolean  bg_vm_state_is_live (BgVmState     state);

/* cmd-forward.c */
gboolean  bg_vm_cmd_forward   (BgCli        *cli,
                               int           argc,
                               char        **argv,
                               GError      **error);
gboolean  bg_vm_cmd_cp        (BgCli        *cli,
                               int           argc,
                               char        **argv,
                               GError      **error);

G_END_DECLS
