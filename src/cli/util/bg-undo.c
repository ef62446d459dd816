/* bg-undo.c: each step that creates something pushes the function that
 * removes it; on failure they run in reverse, so nothing is left; on
 * success they are forgotten. Freeing an undo stack forgets it. */
#include "bg-undo.h"

typedef struct {
  BgUndoFunc     func;
  gpointer       data;
  GDestroyNotify free;
} Undo;

struct _BgUndo {
  GArray *steps;
};

BgUndo *
bg_undo_new (void)
{
  BgUndo *undo = g_new0 (BgUndo, 1);

  undo->steps = g_array_new (FALSE, FALSE, sizeof (Undo));
  return undo;
}

void
bg_undo_push (BgUndo         *undo,
              BgUndoFunc      func,
              gpointer        data,
              GDestroyNotify  free_func)
{
  Undo u = { func, data, free_func };
  g_array_append_val (undo->steps, u);
}

void
bg_undo_run (BgUndo *undo)
{
  for (guint i = undo->steps->len; i > 0; i--)
    {
      Undo *u = &g_array_index (undo->steps, Undo, i - 1);
      u->func (u->data);
    }
  bg_undo_forget (undo);
}

void
bg_undo_forget (BgUndo *undo)
{
  for (guint i = 0; i < undo->steps->len; i++)
    {
      Undo *u = &g_array_index (undo->steps, Undo, i);
      if (u->free)
        u->free (u->data);
    }
  g_array_set_size (undo->steps, 0);
}

void
bg_undo_free (BgUndo *undo)
{
  if (undo == NULL)
    return;
  bg_undo_forget (undo);
  g_array_unref (undo->steps);
  g_free (undo);
}
