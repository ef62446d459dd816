/* bg-paths.c: where banger keeps things for the user running it.
 *
 * XDG variables are read on every call rather than through GLib's cached
 * g_get_user_*_dir(), so a process (and a test) sees changes to them.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <gio/gio.h>
#include <glib/gstdio.h>

#include "bg-error.h"
#include "bg-fd.h"
#include "bg-paths.h"

static const char *
home_dir (void)
{
  const char *home = g_getenv ("HOME");

  if (home != NULL && g_path_is_absolute (home))
    return home;
  return g_get_home_dir ();
}

/* XDG says relative values are invalid and must be ignored. */
static char *
xdg_dir (const char *variable,
         const char *fallback_below_home)
{
  const char *value = g_getenv (variable);

  if (value != NULL && g_path_is_absolute (value))
    return g_build_filename (value, "banger", NULL);
  return g_build_filename (home_dir (), fallback_below_home, "banger", NULL);
}

static char *
config_dir (void)
{
  return xdg_dir ("XDG_CONFIG_HOME", ".config");
}

char *
bg_paths_config_file (void)
{
  g_autofree char *dir = config_dir ();

  return g_build_filename (dir, "banger.conf", NULL);
}

char *
bg_paths_data_dir (void)
{
  return xdg_dir ("XDG_DATA_HOME", ".local/share");
}

/* What banger can make again when it is gone (the formatted templates
 * of layered VMs' disks): nothing there is the user's data. */
char *
bg_paths_cache_dir (void)
{
  return xdg_dir ("XDG_CACHE_HOME", ".cache");
}

char *
bg_paths_state_dir (void)
{
  return xdg_dir ("XDG_STATE_HOME", ".local/state");
}

char *
bg_paths_images_dir (void)
{
  g_autofree char *dir = bg_paths_data_dir ();

  return g_build_filename (dir, "images", NULL);
}

char *
bg_paths_vms_dir (void)
{
  g_autofree char *dir = bg_paths_state_dir ();

  return g_build_filename (dir, "vms", NULL);
}

/* A VM's own directory: its record, disk, keys, forwards. */
char *
bg_paths_vm_dir (const char *name)
{
  g_autofree char *vms = bg_paths_vms_dir ();

  return g_build_filename (vms, name, NULL);
}

/* Creates @path and any missing parents, each new one 0700. */
gboolean
bg_paths_mkdir_private (const char  *path,
                        GError     **error)
{
  if (g_mkdir_with_parents (path, 0700) < 0)
    return bg_error_errno (error, errno, "Cannot create directory", path);
  return TRUE;
}

/* Opens @path as a directory without following a final symlink, so the
 * checks below are made on the object itself and not on a name that can
 * be swapped between check and use. */
static int
open_dir_nofollow (const char  *path,
                   GError     **error)
{
  int fd = open (path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

  if (fd < 0)
    {
      int errsv = errno;

      struct stat st;

      /* With O_DIRECTORY, a symlink fails as ENOTDIR rather than ELOOP;
       * lstat tells the two apart for the message. */
      if (errsv == ELOOP || (errsv == ENOTDIR && lstat (path, &st) == 0 && S_ISLNK (st.st_mode)))
        g_set_error (error, BG_ERROR, BG_ERROR_UNSAFE,
                     "%s is a symbolic link; refusing to use it. Remove it and try again",
                     path);
      else if (errsv == ENOTDIR)
        g_set_error (error, BG_ERROR, BG_ERROR_UNSAFE,
                     "%s is not a directory; refusing to use it. Remove it and try again",
                     path);
      else
        bg_error_errno (error, errsv, "Cannot open", path);
    }
  return fd;
}

static gboolean
check_dir_fd (int          fd,
              const char  *path,
              uid_t        uid,
              gboolean     require_mode,
              GError     **error)
{
  struct stat st;

  if (fstat (fd, &st) < 0)
    return bg_error_errno (error, errno, "Cannot stat", path);

  if (st.st_uid != uid)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_UNSAFE,
                   "%s is owned by uid %u, not by you (uid %u); refusing to use it. "
                   "Remove it or set XDG_RUNTIME_DIR",
                   path, (guint) st.st_uid, (guint) uid);
      return FALSE;
    }

  if (require_mode && (st.st_mode & 07777) != 0700)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_UNSAFE,
                   "%s has mode %04o, not 0700; refusing to use it. "
                   "Run 'chmod 0700 %s' if you made it yourself",
                   path, (guint) (st.st_mode & 07777), path);
      return FALSE;
    }

  return TRUE;
}

/* A directory that holds sockets or secrets: real (not a symlink), ours,
 * mode 0700. */
static gboolean
check_private_dir (const char  *path,
                   uid_t        uid,
                   GError     **error)
{
  g_auto(BgFd) fd = open_dir_nofollow (path, error);

  return fd >= 0 && check_dir_fd (fd, path, uid, TRUE, error);
}

static gboolean
mkdir_or_exists (const char  *path,
                 GError     **error)
{
  if (mkdir (path, 0700) == 0 || errno == EEXIST)
    return TRUE;

  {
    int errsv = errno;
    g_autofree char *parent = g_path_get_dirname (path);

    if (errsv == ENOENT)
      g_set_error (error, BG_ERROR, BG_ERROR_NOT_FOUND,
                   "Cannot create %s: its parent %s does not exist", path, parent);
    else
      bg_error_errno (error, errsv, "Cannot create", path);
  }
  return FALSE;
}

/* The runtime dir policy, with its inputs explicit so it can be tested:
 *
 * - with XDG_RUNTIME_DIR (which the login manager made 0700 for us), use
 *   its "banger" child: create it, and re-chmod it to 0700 in case
 *   something loosened it, after checking through an O_NOFOLLOW fd that it
 *   is a real directory we own;
 * - without it, /tmp is shared with every user, so a pre-existing
 *   /tmp/banger-runtime-<uid> may have been planted by someone else: never
 *   adopt or repair it, only accept it when it is exactly what we would
 *   have made (directory, ours, 0700). mkdir 0700 then verify means there
 *   is no window where it exists with wider permissions.
 */
char *
bg_paths_resolve_runtime_dir (const char  *xdg_runtime_dir,
                              const char  *fallback_base,
                              uid_t        uid,
                              GError     **error)
{
  g_autofree char *path = NULL;

  if (xdg_runtime_dir != NULL && *xdg_runtime_dir != '\0')
    {
      struct stat st;
      g_auto(BgFd) fd = -1;
      gboolean ok;

      if (!g_path_is_absolute (xdg_runtime_dir))
        {
          g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                       "XDG_RUNTIME_DIR is not an absolute path (\"%s\"); unset it or fix it",
                       xdg_runtime_dir);
          return NULL;
        }
      if (stat (xdg_runtime_dir, &st) < 0 || !S_ISDIR (st.st_mode))
        {
          g_set_error (error, BG_ERROR, BG_ERROR_NOT_FOUND,
                       "XDG_RUNTIME_DIR (%s) does not exist or is not a directory; "
                       "unset it or log in again", xdg_runtime_dir);
          return NULL;
        }

      path = g_build_filename (xdg_runtime_dir, "banger", NULL);
      if (!mkdir_or_exists (path, error))
        return NULL;
      fd = open_dir_nofollow (path, error);
      if (fd < 0)
        return NULL;
      ok = check_dir_fd (fd, path, uid, FALSE, error);
      if (ok && fchmod (fd, 0700) < 0)
        {
          bg_error_errno (error, errno, "Cannot chmod", path);
          ok = FALSE;
        }
      return ok ? g_steal_pointer (&path) : NULL;
    }

  {
    g_autofree char *leaf = g_strdup_printf ("banger-runtime-%u", (guint) uid);
    path = g_build_filename (fallback_base, leaf, NULL);
  }
  if (!mkdir_or_exists (path, error))
    return NULL;
  if (!check_private_dir (path, uid, error))
    return NULL;

  return g_steal_pointer (&path);
}

char *
bg_paths_ensure_runtime_dir (GError **error)
{
  return bg_paths_resolve_runtime_dir (g_getenv ("XDG_RUNTIME_DIR"), "/tmp",
                                       geteuid (), error);
}

/* A socket directory below the runtime dir: same guarantees. */
char *
bg_paths_ensure_private_subdir (const char  *parent,
                                const char  *name,
                                GError     **error)
{
  g_autofree char *path = g_build_filename (parent, name, NULL);

  if (!mkdir_or_exists (path, error))
    return NULL;
  if (!check_private_dir (path, geteuid (), error))
    return NULL;
  return g_steal_pointer (&path);
}
