/* bg-progress.c: one line per step of long work, on stderr; rewritten in
 * place on a terminal, one line each otherwise, nothing with --json.
 * With BANGER_TIMINGS=1 it also measures each step (for bench-up). */
#include "bg-progress.h"

void
bg_progress_init (BgProgress *p,
                  BgCli      *cli,
                  const char *subject)
{
  *p = (BgProgress) { cli, subject, 0, 0, g_get_monotonic_time (),
                      g_getenv ("BANGER_TIMINGS") ? g_string_new (NULL) : NULL, NULL, 0 };
}

static void
mark (BgProgress *p)
{
  gint64 now = g_get_monotonic_time ();

  if (p->timings != NULL && p->current != NULL)
    {
      g_autofree char *key = g_strdelimit (g_strdup (p->current), " ", '-');
      g_string_append_printf (p->timings, " %s=%.2f", key, (now - p->started) / 1000.0);
    }
  p->started = now;
}

/* "[3/8] " when the steps are counted, else nothing. */
static void
print_line (BgProgress *p,
            const char *tail)
{
  g_autofree char *counter = p->steps > 0 ? g_strdup_printf ("[%d/%d] ", p->step, p->steps) : g_strdup ("");

  if (p->cli->is_tty)
    g_printerr ("\r\033[K%s%s: %s%s", counter, p->subject, p->current, tail);
  else
    g_printerr ("%s%s: %s%s\n", counter, p->subject, p->current, tail);
}

void
bg_progress_step (BgProgress *p,
                  const char *what)
{
  if (p == NULL)
    return;
  mark (p);
  g_free (p->current);
  p->current = g_strdup (what);
  p->step++;
  p->shown = 0;
  if (!p->cli->json)
    print_line (p, "");
}

/* How far the current step is, redrawn at most ten times a second and
 * only on a terminal: logs get the step's line alone. */
void
bg_progress_bytes (BgProgress *p,
                   guint64     done,
                   guint64     total)
{
  gint64 now = g_get_monotonic_time ();
  g_autofree char *tail = NULL;

  if (p == NULL || p->cli->json || !p->cli->is_tty || p->current == NULL || total == 0 ||
      (now - p->shown < G_USEC_PER_SEC / 10 && done < total))
    return;
  p->shown = now;
  tail = g_strdup_printf (": %3d%% (%" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT " MiB)",
                          (int) (done * 100 / total), done >> 20, total >> 20);
  print_line (p, tail);
}

void
bg_progress_done (BgProgress *p)
{
  if (p == NULL)
    return;
  if (p->cli->is_tty && !p->cli->json)
    g_printerr ("\r\033[K");
  mark (p);
  g_clear_pointer (&p->current, g_free);
  if (p->timings != NULL && p->timings->len > 0)
    {
      g_autofree char *status = NULL;
      const char *hwm;

      g_printerr ("banger: timings:%s\n", p->timings->str);
      g_string_truncate (p->timings, 0);
      /* The process's own peak, which a parent's rusage cannot give: it
       * counts the parent's pages copied by the fork before exec. */
      if (g_file_get_contents ("/proc/self/status", &status, NULL, NULL) &&
          (hwm = strstr (status, "VmHWM:")) != NULL)
        g_printerr ("banger: peak RSS: %ld KiB\n", strtol (hwm + 6, NULL, 10));
    }
}

void
bg_progress_clear (BgProgress *p)
{
  if (p == NULL)
    return;
  g_clear_pointer (&p->current, g_free);
  if (p->timings != NULL)
    g_string_free (g_steal_pointer (&p->timings), TRUE);
}
