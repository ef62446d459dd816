/* validate.c: the a{sv} options every growing method takes, and the file
 * descriptors that stand for files.
 *
 * Unknown keys are errors, not ignored: a caller that asks for something
 * this mechanism does not know must hear so, not get a silent default.
 *
 * Files come from the caller as descriptors it opened with its own
 * rights (udisks' LoopSetup, fwupd's fd checks). A descriptor is usable
 * only as it was opened: reading needs O_RDONLY or O_RDWR, anything a VM
 * may write needs O_RDWR, and O_PATH descriptors (which open nothing) are
 * refused here, not left for the kernel to stop later. Otherwise a file
 * the caller may only write could be read back through a VM.
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "bg-error.h"
#include "validate.h"

gboolean
bg_validate_options (GVariant            *options,
                     const BgOptionSpec  *specs,
                     GError             **error)
{
  GVariantIter iter;
  const char *key;
  GVariant *value;

  g_variant_iter_init (&iter, options);
  while (g_variant_iter_next (&iter, "{&sv}", &key, &value))
    {
      const BgOptionSpec *spec = NULL;
      g_autoptr(GVariant) owned = value;

      for (const BgOptionSpec *s = specs; s != NULL && s->key != NULL; s++)
        if (g_str_equal (s->key, key))
          spec = s;

      if (spec == NULL)
        {
          g_autofree char *shown = g_strescape (key, NULL);
          g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                       "options: unknown key \"%.64s\"", shown);
          return FALSE;
        }
      if (!g_variant_is_of_type (value, G_VARIANT_TYPE (spec->type)))
        {
          g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                       "options: key \"%s\" must have type '%s', not '%s'",
                       key, spec->type, g_variant_get_type_string (value));
          return FALSE;
        }
    }
  return TRUE;
}

static gboolean
check_fd (int          fd,
             const char  *field,
             BgFdAccess   access,
             GError     **error)
{
  static const char * const need[] = {
    [BG_FD_READ] = "opened for reading",
    [BG_FD_WRITE] = "opened for writing",
    [BG_FD_READ_WRITE] = "opened read-write (O_RDWR)",
  };
  struct stat st;
  int flags = fcntl (fd, F_GETFL);
  int mode = flags & O_ACCMODE;
  gboolean ok;

  if (flags < 0 || fstat (fd, &st) < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "%s: unusable file descriptor", field);
      return FALSE;
    }
  if (flags & O_PATH)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                   "%s: an O_PATH descriptor opens nothing; pass one %s", field, need[access]);
      return FALSE;
    }
  if (!S_ISREG (st.st_mode))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "%s: must be a regular file", field);
      return FALSE;
    }
  switch (access)
    {
    case BG_FD_READ:
      ok = mode == O_RDONLY || mode == O_RDWR;
      break;
    case BG_FD_WRITE:
      ok = mode == O_WRONLY || mode == O_RDWR;
      break;
    case BG_FD_READ_WRITE:
    default:
      ok = mode == O_RDWR;
      break;
    }
  if (!ok)
    g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "%s: must be %s", field, need[access]);
  return ok;
}

/* Before authorization: the handle names a descriptor the message
 * carries, of the right type and opened the right way. It is looked at
 * where the message holds it, not duplicated: nothing is held for a
 * caller polkit has not yet admitted. */
gboolean
bg_validate_fd (GUnixFDList  *list,
                gint32        index,
                const char   *field,
                BgFdAccess    access,
                GError      **error)
{
  const int *fds;
  int n = 0;

  fds = list ? g_unix_fd_list_peek_fds (list, &n) : NULL;
  if (index < 0 || index >= n)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "%s: no such file descriptor in the message", field);
      return FALSE;
    }
  return check_fd (fds[index], field, access, error);
}

/* After authorization: the caller's descriptor, validated as above, for
 * the mechanism to keep; -1 with @error naming @field otherwise. */
int
bg_take_fd (GUnixFDList  *list,
            gint32        index,
            const char   *field,
            BgFdAccess    access,
            GError      **error)
{
  int fd;

  if (!bg_validate_fd (list, index, field, access, error))
    return -1;
  fd = g_unix_fd_list_get (list, index, error);
  if (fd < 0)
    g_prefix_error (error, "%s: ", field);
  return fd;
}
