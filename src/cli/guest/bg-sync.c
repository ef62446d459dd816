/* bg-sync.c: the files of the user's home a guest gets a copy of, read
 * only below that home, after resolving symlinks; and read again, for the
 * config drive or vm sync's tar stream, only through openat2 from the
 * home's descriptor with no symlink allowed on the way, so a directory
 * swapped for a link between the check and the read is not followed. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/openat2.h>

#include "bg-cli.h"
#include "bg-error.h"
#include "bg-fd.h"
#include "bg-sync.h"

void
bg_sync_entry_free (BgSyncEntry *e)
{
  g_free (e->source);
  g_free (e->home);
  g_free (e->beneath);
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
  e->home = g_strdup (w->home);
  e->beneath = g_strdup (source + strlen (w->home) + 1);
  e->relative = g_strdup (relative);
  e->mode = st->st_mode & 07777;
  e->size = st->st_size;
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

static int
sync_entry_open (BgSyncEntry  *e,
                 GError      **error)
{
  struct open_how how = {
    .flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC,
    .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
  };
  g_auto(BgFd) home = open (e->home, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  g_auto(BgFd) fd = home < 0 ? -1 : syscall (SYS_openat2, home, e->beneath, &how, sizeof how);
  int errsv = errno;
  struct stat st;

  if (fd < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_UNSAFE, "sync: %s changed since it was checked (%s); not syncing it",
                   e->source, errsv == ELOOP ? "a symlink is now on its way" : g_strerror (errsv));
      return -1;
    }
  if (fstat (fd, &st) < 0 || !S_ISREG (st.st_mode) || (guint64) st.st_size != e->size)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_UNSAFE, "sync: %s changed since it was checked; not syncing it",
                   e->source);
      return -1;
    }
  return g_steal_fd (&fd);
}

GBytes *
bg_sync_entry_read (BgSyncEntry  *e,
                    GError      **error)
{
  g_auto(BgFd) fd = sync_entry_open (e, error);
  guint8 *data;
  gsize done = 0;

  if (fd < 0)
    return NULL;
  data = g_malloc (e->size + 1);
  while (done < e->size)
    {
      ssize_t n = read (fd, data + done, e->size - done);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "sync: cannot read %s: %s", e->source,
                       n < 0 ? g_strerror (errno) : "it shrank");
          g_free (data);
          return NULL;
        }
      done += n;
    }
  return g_bytes_new_take (data, e->size);
}

/* 10^@digits: the first length that needs more than @digits digits. */
static guint64
pow10_bound (gsize digits)
{
  guint64 p = 1;
  while (digits-- > 0)
    p *= 10;
  return p;
}

/* One 512-byte ustar header. */
static void
tar_header (guint8     *h,
            const char *name,
            char        type,
            guint32     mode,
            guint64     size)
{
  guint sum = 0;

  memset (h, 0, 512);
  g_strlcpy ((char *) h, name, 100);
  g_snprintf ((char *) h + 100, 8, "%07o", mode & 07777);
  g_snprintf ((char *) h + 108, 8, "%07o", 0);
  g_snprintf ((char *) h + 116, 8, "%07o", 0);
  g_snprintf ((char *) h + 124, 12, "%011" G_GINT64_MODIFIER "o", size);
  g_snprintf ((char *) h + 136, 12, "%011o", 0);
  h[156] = type;
  memcpy (h + 257, "ustar", 6);
  memcpy (h + 263, "00", 2);
  memset (h + 148, ' ', 8);
  for (guint i = 0; i < 512; i++)
    sum += h[i];
  g_snprintf ((char *) h + 148, 8, "%06o", sum);
}

static gboolean
tar_put (GOutputStream *out,
         const void    *data,
         gsize          len,
         GError       **error)
{
  static const guint8 zeros[512];
  gsize pad = (512 - len % 512) % 512;

  return g_output_stream_write_all (out, data, len, NULL, NULL, error) &&
         g_output_stream_write_all (out, zeros, pad, NULL, NULL, error);
}

gboolean
bg_sync_write_tar (GPtrArray      *entries,
                   GOutputStream  *out,
                   GError        **error)
{
  static const guint8 end[1024];
  guint8 h[512];

  for (guint i = 0; i < entries->len; i++)
    {
      BgSyncEntry *e = entries->pdata[i];
      g_autoptr(GBytes) data = NULL;

      if (e->is_dir)
        continue;
      if ((data = bg_sync_entry_read (e, error)) == NULL)
        return FALSE;
      if (strlen (e->relative) >= 100)
        {
          /* A pax extended header carries the long name: "LEN path=NAME\n",
           * LEN counting itself. */
          gsize body = strlen (" path=\n") + strlen (e->relative);
          g_autofree char *record = NULL;
          gsize digits = 1;

          while (body + digits >= (gsize) pow10_bound (digits))
            digits++;
          record = g_strdup_printf ("%" G_GSIZE_FORMAT " path=%s\n", body + digits, e->relative);
          tar_header (h, "PaxHeader", 'x', 0644, strlen (record));
          if (!tar_put (out, h, 512, error) || !tar_put (out, record, strlen (record), error))
            return FALSE;
        }
      tar_header (h, e->relative, '0', e->mode, e->size);
      if (!tar_put (out, h, 512, error) ||
          !tar_put (out, g_bytes_get_data (data, NULL), g_bytes_get_size (data), error))
        return FALSE;
    }
  return g_output_stream_write_all (out, end, sizeof end, NULL, NULL, error);
}
