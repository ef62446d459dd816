/* bg-cli.h: what the banger command groups share. */
#pragma once

#include <signal.h>
#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "bg-table.h"

G_BEGIN_DECLS

/* Exit codes, documented in banger --help and the man page. */
#define BG_EXIT_OK       0
#define BG_EXIT_FAILURE  1
#define BG_EXIT_USAGE    2

typedef struct {
  gboolean  json;
  gboolean  verbose;
  gboolean  is_tty;
} BgCli;

typedef gboolean (*BgCommandFunc) (BgCli    *cli,
                                   int       argc,
                                   char    **argv,
                                   GError  **error);

/* A command table: commands, each listed in --help under the heading
 * before it (a row made by BG_COMMAND_HEADING), ended by a NULL name. */
typedef struct {
  const char    *name;
  const char    *summary;
  BgCommandFunc  func;        /* NULL: a heading */
} BgCommand;

#define BG_COMMAND_HEADING(title) { title, NULL, NULL }

typedef struct {
  const char      *name;
  const char      *summary;
  const BgCommand *commands;  /* NULL-terminated by name */
} BgCommandGroup;

/* Set from a SIGINT/SIGTERM handler; long work checks it and stops
 * cleanly, undoing what it made. */
extern volatile sig_atomic_t bg_interrupted;
gboolean bg_cli_check_interrupt (GError     **error);
void     bg_cli_block_interrupts (void);
void     bg_cli_test_hook       (const char  *step);

extern const BgCommand bg_vm_commands[];
extern const BgCommand bg_image_commands[];
extern const BgCommand bg_system_commands[];

/* What a command takes, for its --help and its checks. */
typedef struct {
  const char   *params;       /* after the command in "Usage:", e.g. "NAME"; NULL: none */
  int           min_args;
  int           max_args;     /* -1: no limit */
  const char   *summary;
  GOptionEntry *entries;      /* its own options; NULL: none */
} BgUsage;

/* Parses a command's own options (plus the global ones) and leaves the
 * positional arguments in argv, whose first is the command's path
 * ("banger vm ls"). Returns FALSE with a G_OPTION_ERROR that main()
 * turns into exit code 2. */
gboolean bg_cli_parse (BgCli          *cli,
                       const BgUsage  *usage,
                       int            *argc,
                       char         ***argv,
                       GError        **error);
/* Within the usage's bounds, a command can narrow them by mode. */
gboolean bg_cli_expect_args (const char  *command_path,
                             int          argc,
                             int          min,
                             int          max,
                             GError     **error);

void     bg_cli_print_json  (JsonNode    *node);
void     bg_cli_print_variant (GVariant  *value);
gboolean bg_cli_print_built (JsonBuilder *builder);
void     bg_cli_warn        (const char  *format,
                             ...) G_GNUC_PRINTF (1, 2);
gboolean bg_cli_done        (BgCli       *cli,
                             GVariant    *result,
                             const char  *format,
                             ...) G_GNUC_PRINTF (3, 4);
char    *bg_cli_format_age  (gint64       since_unix);

G_END_DECLS
