/* bg-known-hosts.c: banger's own known_hosts, which pins each VM's host
 * key under its name (NAME.<domain>) and address; ssh reads it with
 * StrictHostKeyChecking. Every change rewrites the file whole (a
 * temporary file synced and renamed over it: it holds every VM's pin)
 * under a lock beside it, so parallel `vm up`s lose no line. */
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include "bg-error.h"
#include "bg-fd.h"
#include "bg-file.h"
#include "bg-known-hosts.h"
#include "bg-paths.h"

char *
bg_known_hosts_path (void)
{
  g_autofree char *state = bg_paths_state_dir ();
  return g_build_filename (state, "known_hosts", NULL);
}

/* known_hosts without the lines naming @alias or @address; @alias
 * ending in '.' stands for every "NAME.<domain>". */
static GString *
known_hosts_without (const char *path,
                     const char *alias,
                     const char *address)
{
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;
  GString *out = g_string_new (NULL);

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return out;
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i]; i++)
    {
      g_auto(GStrv) fields = g_strsplit (lines[i], " ", 2);
      g_auto(GStrv) hosts = NULL;
      gboolean match = FALSE;

      if (*lines[i] == '\0')
        continue;
      hosts = g_strsplit (fields[0], ",", -1);
      for (guint j = 0; hosts[j]; j++)
        match |= g_strcmp0 (hosts[j], alias) == 0 || (address && g_strcmp0 (hosts[j], address) == 0) ||
                 (g_str_has_suffix (alias, ".") && g_str_has_prefix (hosts[j], alias));
      if (!match)
        g_string_append_printf (out, "%s\n", lines[i]);
    }
  return out;
}

/* Parallel `vm up`s edit the same file: serialize on a lock beside it,
 * held until the returned fd is closed. */
static int
known_hosts_lock (const char *path)
{
  g_autofree char *lock = g_strdup_printf ("%s.lock", path);
  g_autofree char *dir = g_path_get_dirname (path);
  int fd;

  g_mkdir_with_parents (dir, 0700);
  fd = open (lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd >= 0)
    while (flock (fd, LOCK_EX) < 0 && errno == EINTR)
      ;
  return fd;
}

gboolean
bg_known_hosts_add (const char  *path,
                    const char  *alias,
                    const char  *address,
                    const char  *public_key,
                    GError     **error)
{
  g_auto(GStrv) key = g_strsplit (public_key, " ", 3);
  g_autoptr(GString) text = NULL;
  g_auto(BgFd) lock = -1;

  if (g_strv_length (key) < 2)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "not an SSH public key: %.40s", public_key);
      return FALSE;
    }
  lock = known_hosts_lock (path);
  text = known_hosts_without (path, alias, address);
  g_string_append_printf (text, "%s%s%s %s %s\n", alias, address ? "," : "", address ? address : "",
                          key[0], key[1]);
  return bg_file_replace (path, text->str, text->len, 0600, error);
}

gboolean
bg_known_hosts_remove (const char  *path,
                       const char  *alias,
                       const char  *address,
                       GError     **error)
{
  g_autoptr(GString) text = NULL;
  g_auto(BgFd) lock = -1;

  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    return TRUE;
  lock = known_hosts_lock (path);
  text = known_hosts_without (path, alias, address);
  return bg_file_replace (path, text->str, text->len, 0600, error);
}

/* Every key pinned for VM @name, under whatever domain. */
gboolean
bg_known_hosts_remove_vm (const char  *path,
                          const char  *name,
                          GError     **error)
{
  g_autofree char *prefix = g_strdup_printf ("%s.", name);
  return bg_known_hosts_remove (path, prefix, NULL, error);
}
