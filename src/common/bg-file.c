/* bg-file.c: writing files atomically with an exact mode, and removing
 * trees without following links.
 *
 * g_file_set_contents_full() applies the umask to the mode, and both
 * binaries run with umask 077; files that must be readable by others (the
 * hosts file every resolver reads) need their mode set explicitly.
 *
 * GLib only (G_FILE_ERROR, not gio's G_IO_ERROR): the static
 * banger-guest-setup links this file and carries no gio.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "bg-fd.h"
#include "bg-file.h"

gboolean
bg_file_replace (const char  *path,
                 const char  *contents,
                 gssize       length,
                 int          mode,
                 GError     **error)
{
  return bg_file_replace_full (path, contents, length, mode, BG_FILE_NONE, error);
}

/* All of @len bytes of @data to @fd, through short writes and EINTR;
 * FALSE with errno set (ENOSPC for a write of nothing). */
gboolean
bg_fd_write_all (int          fd,
                 const void  *data,
                 gsize        len)
{
  const char *p = data;

  while (len > 0)
    {
      ssize_t n = write (fd, p, len);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return FALSE;
      if (n == 0)
        {
          errno = ENOSPC;
          return FALSE;
        }
      p += n;
      len -= n;
    }
  return TRUE;
}

/* @path replaced whole (a temporary file renamed over it), synced first
 * unless @flags say BG_FILE_NO_SYNC. */
gboolean
bg_file_replace_full (const char  *path,
                      const char  *contents,
                      gssize       length,
                      int          mode,
                      BgFileFlags  flags,
                      GError     **error)
{
  g_autofree char *tmp = g_strdup_printf ("%s.XXXXXX", path);
  gsize len = length < 0 ? strlen (contents) : (gsize) length;
  g_auto(BgFd) fd = g_mkstemp_full (tmp, O_WRONLY | O_CLOEXEC, 0600);
  int errsv;

  if (fd < 0)
    {
      errsv = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errsv),
                   "Cannot create %s: %s", tmp, g_strerror (errsv));
      return FALSE;
    }
  if (!bg_fd_write_all (fd, contents, len))
    goto fail;
  if (fchmod (fd, mode) < 0 || (!(flags & BG_FILE_NO_SYNC) && fsync (fd) < 0))
    goto fail;
  /* Closed by hand, its error checked: the file's last write error can
   * come here, and then it must not replace @path. */
  if (close (g_steal_fd (&fd)) < 0)
    goto fail;
  if ((flags & BG_FILE_NO_REPLACE) ? link (tmp, path) < 0 : rename (tmp, path) < 0)
    goto fail;
  if (flags & BG_FILE_NO_REPLACE)
    g_unlink (tmp);
  return TRUE;

fail:
  errsv = errno;
  bg_fd_clear (&fd);
  g_unlink (tmp);
  g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errsv),
               "Cannot write %s: %s", path, g_strerror (errsv));
  return FALSE;
}

/* Root without CAP_DAC_OVERRIDE (the mechanism) meets a directory
 * someone else made unreadable to it (a jailed VMM, in its socket dir):
 * made root's and 0700 through an O_PATH descriptor that does not follow
 * links, which CAP_CHOWN allows. */
static gboolean
take_over_dir (int         parent_fd,
               const char *name)
{
  g_auto(BgFd) fd = openat (parent_fd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  g_autofree char *proc = NULL;

  if (fd < 0)
    return FALSE;
  proc = g_strdup_printf ("/proc/self/fd/%d", fd);
  return fchownat (fd, "", 0, 0, AT_EMPTY_PATH) == 0 && chmod (proc, 0700) == 0;
}

/* Removes @parent_fd/@name and everything below it, in-process, without
 * following any symlink planted inside (a jailed VMM's, a guest's):
 * directories are entered only through O_NOFOLLOW descriptors. Already
 * gone is success. */
gboolean
bg_file_remove_tree_at (int         parent_fd,
                        const char *name)
{
  struct stat st;
  struct dirent *e;
  gboolean ok = TRUE;
  DIR *dir;
  g_auto(BgFd) fd = -1;

  if (fstatat (parent_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return errno == ENOENT;
  if (!S_ISDIR (st.st_mode))
    return unlinkat (parent_fd, name, 0) == 0 || errno == ENOENT;

  fd = openat (parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 && errno == EACCES && geteuid () == 0 && take_over_dir (parent_fd, name))
    fd = openat (parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return FALSE;
  dir = fdopendir (fd);
  if (dir == NULL)
    return FALSE;
  /* Owned by dir from here. */
  g_steal_fd (&fd);
  while ((e = readdir (dir)) != NULL)
    if (strcmp (e->d_name, ".") != 0 && strcmp (e->d_name, "..") != 0)
      ok &= bg_file_remove_tree_at (dirfd (dir), e->d_name);
  closedir (dir);
  return ok && (unlinkat (parent_fd, name, AT_REMOVEDIR) == 0 || errno == ENOENT);
}

gboolean
bg_file_remove_tree (const char  *path,
                     GError     **error)
{
  g_autofree char *parent = g_path_get_dirname (path);
  g_autofree char *name = g_path_get_basename (path);
  g_auto(BgFd) fd = open (parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  gboolean ok;

  if (fd < 0)
    {
      if (errno == ENOENT)
        return TRUE;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno), "Cannot open %s: %s", parent, g_strerror (errno));
      return FALSE;
    }
  ok = bg_file_remove_tree_at (fd, name);
  if (!ok)
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "Cannot remove %s", path);
  return ok;
}
