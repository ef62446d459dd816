/* bg-sync.c: the files of the user's home a guest gets a copy of, read
 * only below that home, after resolving symlinks. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bg-cli.h"
#include "bg-error.h"
#include "bg-sync.h"

void
bg_sync_entry_free (BgSyncEntry *e)
{
  g_free (e->source);
  g_free (e->relative);
  g_free (e);
}


static gboolean
below (const char *path,
       const char *dir)
{
  gsize n = strlen (dir);
  return strncmp (path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0') && path[n] != '\0';
}

typedef struct {
  const char *home;
  guint64     limit;
  guint64     total;
  GPtrArray  *entries;
  GPtrArray  *skipped;
} SyncWalk;

static gboolean
add_file (SyncWalk     *w,
          const char   *shown,
          const char   *source,
          const char   *relative,
          struct stat  *st,
          GError      **error)
{
  BgSyncEntry *e;

  w->total += st->st_size;
  if (w->total > w->limit)
    {
      g_autofree char *lim = g_format_size_full (w->limit, G_FORMAT_SIZE_IEC_UNITS);
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                   "sync: %s takes the files to sync over the %s limit ([sync] max-size)", shown, lim);
      return FALSE;
    }
  e = g_new0 (BgSyncEntry, 1);
  e->source = g_strdup (source);
  e->relative = g_strdup (relative);
  e->mode = st->st_mode & 07777;
  g_ptr_array_add (w->entries, e);
  return TRUE;
}

static gboolean
walk_dir (SyncWalk    *w,
          const char  *dir,
          const char  *relative,
          GError     **error)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, error);
  const char *name;

  if (d == NULL)
    return FALSE;
  while ((name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      g_autofree char *rel = g_build_filename (relative, name, NULL);
      struct stat st;

      if (lstat (path, &st) < 0)
        continue;
      if (S_ISLNK (st.st_mode))
        {
          g_autofree char *target = realpath (path, NULL);
          /* Never followed: a link inside a synced directory could lead
           * anywhere, now or later. */
          g_ptr_array_add (w->skipped, g_strdup_printf ("%s (a symlink to %s%s)", path,
                                                        target ? target : "nothing",
                                                        target && !below (target, w->home) ? ", outside your home" : ""));
        }
      else if (S_ISDIR (st.st_mode))
        {
          if (!walk_dir (w, path, rel, error))
            return FALSE;
        }
      else if (S_ISREG (st.st_mode))
        {
          if (!add_file (w, path, path, rel, &st, error))
            return FALSE;
        }
      else
        g_ptr_array_add (w->skipped, g_strdup_printf ("%s (not a regular file)", path));
    }
  return TRUE;
}

/* Resolves the configured sync paths. Each must end, after following
 * symlinks, below the real home, and be a regular file or directory;
 * the total must stay under @limit. Errors name the path. */
GPtrArray *
bg_sync_resolve (const char  *home,
                 char       **paths,
                 guint64      limit,
                 GPtrArray  **skipped,
                 GError     **error)
{
  g_autoptr(GPtrArray) entries = g_ptr_array_new_with_free_func ((GDestroyNotify) bg_sync_entry_free);
  g_autoptr(GPtrArray) skip = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *real_home = NULL;
  SyncWalk w;
  struct stat st;

  if (lstat (home, &st) < 0 || S_ISLNK (st.st_mode) || !S_ISDIR (st.st_mode))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_UNSAFE,
                   "sync: your home %s is %s; refusing to sync from it", home,
                   S_ISLNK (st.st_mode) ? "a symlink" : "not a directory");
      return NULL;
    }
  real_home = realpath (home, NULL);
  w = (SyncWalk) { real_home, limit, 0, entries, skip };

  for (guint i = 0; paths && paths[i]; i++)
    {
      g_autofree char *lexical = g_canonicalize_filename (paths[i], home);
      g_autofree char *real = realpath (lexical, NULL);
      g_autofree char *relative = NULL;

      if (real == NULL)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "sync: %s: %s", paths[i], g_strerror (errno));
          return NULL;
        }
      if (!below (real, real_home))
        {
          g_set_error (error, BG_ERROR, BG_ERROR_UNSAFE,
                       "sync: %s resolves to %s, outside your home; refusing to sync it", paths[i], real);
          return NULL;
        }
      if (stat (real, &st) < 0 || (!S_ISREG (st.st_mode) && !S_ISDIR (st.st_mode)))
        {
          g_set_error (error, BG_ERROR, BG_ERROR_UNSAFE,
                       "sync: %s is not a regular file or directory; refusing to sync it", paths[i]);
          return NULL;
        }
      /* Named in the guest as it is named in the home. */
      relative = g_strdup (below (lexical, home) ? lexical + strlen (home) + 1 : real + strlen (real_home) + 1);
      if (S_ISREG (st.st_mode) ? !add_file (&w, paths[i], real, relative, &st, error)
                               : !walk_dir (&w, real, relative, error))
        return NULL;
    }
  if (skipped)
    *skipped = g_steal_pointer (&skip);
  return g_steal_pointer (&entries);
}

GPtrArray *
bg_sync_resolve_config (BgConfig  *config,
                        GError   **error)
{
  g_autoptr(GPtrArray) skipped = NULL;
  GPtrArray *files = bg_sync_resolve (g_get_home_dir (), config->sync_paths, config->sync_limit, &skipped, error);

  for (guint i = 0; files != NULL && i < skipped->len; i++)
    bg_cli_warn ("not syncing %s", (char *) skipped->pdata[i]);
  return files;
}
