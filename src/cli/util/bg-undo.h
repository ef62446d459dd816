/* bg-undo.h: what a failed or interrupted command has to take back. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef void (*BgUndoFunc) (gpointer data);

typedef struct _BgUndo BgUndo;

BgUndo *bg_undo_new    (void);
void    bg_undo_push   (BgUndo         *undo,
                        BgUndoFunc      func,
                        gpointer        data,
                        GDestroyNotify  free_func);
void    bg_undo_run    (BgUndo         *undo);
void    bg_undo_forget (BgUndo         *undo);
void    bg_undo_free   (BgUndo         *undo);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgUndo, bg_undo_free)

G_END_DECLS
