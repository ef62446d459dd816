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
                      g_getenv ("BANGER_TIMINGS") ? g_string_new (NULL) : NULL, NULL };
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

void
bg_progress_step (BgProgress *p,
                  const char *what)
{
  mark (p);
  p->current = what;
  p->step++;
  if (p->cli->json)
    return;
  if (p->cli->is_tty)
    g_printerr ("\r\033[K[%d/%d] %s: %s", p->step, p->steps, p->subject, what);
  else
    g_printerr ("[%d/%d] %s: %s\n", p->step, p->steps, p->subject, what);
}

void
bg_progress_done (BgProgress *p)
{
  if (p->cli->is_tty && !p->cli->json)
    g_printerr ("\r\033[K");
  mark (p);
  p->current = NULL;
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
  if (p->timings != NULL)
    g_string_free (g_steal_pointer (&p->timings), TRUE);
}
