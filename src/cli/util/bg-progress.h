/* bg-progress.h: "[3/8] dev: launching the jailed VMM" on stderr, or
 * "deb: copying and checksumming the root filesystem:  42% (410 of 980
 * MiB)" where the steps are not counted ahead (byte counts on a terminal
 * only). Every function takes a NULL progress and does nothing. */
#pragma once

#include "bg-cli.h"

G_BEGIN_DECLS

typedef struct {
  BgCli      *cli;
  const char *subject;
  int         step;
  int         steps;
  gint64      started;
  GString    *timings;   /* with BANGER_TIMINGS=1: "what=ms" per step */
  char       *current;   /* a copy: callers pass strings they free */
  gint64      shown;     /* when bytes were last drawn */
} BgProgress;

void bg_progress_init  (BgProgress  *p,
                        BgCli       *cli,
                        const char  *subject);
void bg_progress_step  (BgProgress  *p,
                        const char  *what);
void bg_progress_bytes (BgProgress  *p,
                        guint64      done,
                        guint64      total);
void bg_progress_done  (BgProgress  *p);
void bg_progress_clear (BgProgress  *p);

G_END_DECLS
