/* bg-ssh.c: banger's SSH key pair, each VM's host key, and the ssh
 * command lines that use them with the pinned key (bg-known-hosts.c). */
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include "bg-error.h"
#include "bg-fd.h"
#include "bg-file.h"
#include "bg-keypair.h"
#include "bg-known-hosts.h"
#include "bg-paths.h"
#include "bg-spawn.h"
#include "bg-ssh.h"

gboolean
bg_ssh_ensure_client_key (const char  *key_path,
                          GError     **error)
{
  g_autofree char *dir = g_path_get_dirname (key_path);
  g_autofree char *lock_path = g_strdup_printf ("%s.lock", key_path);
  g_auto(BgFd) lock = -1;

  if (g_file_test (key_path, G_FILE_TEST_EXISTS))
    return TRUE;
  if (g_mkdir_with_parents (dir, 0700) < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot create %s: %s", dir, g_strerror (errno));
      return FALSE;
    }
  /* Several first runs at once must make one key, not two pairs
   * replacing each other's halves. */
  lock = open (lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (lock >= 0)
    while (flock (lock, LOCK_EX) < 0 && errno == EINTR)
      ;
  return g_file_test (key_path, G_FILE_TEST_EXISTS) || bg_keypair_write (key_path, "banger", BG_FILE_NONE, NULL, NULL, error);
}

char *
bg_ssh_read_public_key (const char  *key_path,
                        GError     **error)
{
  g_autofree char *pub = g_strdup_printf ("%s.pub", key_path);
  char *text = NULL;

  if (!g_file_get_contents (pub, &text, NULL, error))
    return NULL;
  return g_strstrip (text);
}


/* The VM's host key pair in @dir: kept if there (it stays pinned),
 * else made now. */
gboolean
bg_ssh_generate_host_key (const char  *dir,
                          BgFileFlags  flags,
                          char       **private_key,
                          char       **public_key,
                          GError     **error)
{
  g_autofree char *path = g_build_filename (dir, BG_SSH_HOST_KEY, NULL);
  g_autofree char *pub = g_strdup_printf ("%s.pub", path);

  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    {
      if (!bg_keypair_write (path, "banger-host", flags, private_key, public_key, error))
        return FALSE;
    }
  else if (!g_file_get_contents (path, private_key, NULL, error) ||
           !g_file_get_contents (pub, public_key, NULL, error))
    return FALSE;
  g_strstrip (*public_key);
  return TRUE;
}

char *
bg_ssh_alias (const BgVmRecord *r)
{
  return g_strdup_printf ("%s.%s", r->name, r->domain ? r->domain : "banger");
}

BgSshTarget *
bg_ssh_target_new (const BgVmRecord *r,
                   const BgConfig   *config)
{
  BgSshTarget *t = g_new0 (BgSshTarget, 1);

  t->key = g_strdup (config->ssh_key);
  t->known_hosts = bg_known_hosts_path ();
  t->alias = bg_ssh_alias (r);
  t->user = g_strdup (r->guest_user ? r->guest_user : config->guest_user);
  t->address = g_strdup (r->address);
  return t;
}

void
bg_ssh_target_free (BgSshTarget *t)
{
  if (t == NULL)
    return;
  g_free (t->key);
  g_free (t->known_hosts);
  g_free (t->alias);
  g_free (t->user);
  g_free (t->address);
  g_free (t);
}

/* banger's key only, banger's known_hosts only, the pinned key
 * required: the options every ssh and scp of banger's gets. */
void
bg_ssh_add_options (GPtrArray          *argv,
                    const BgSshTarget  *t,
                    gboolean            batch)
{
  g_autofree char *known_hosts = g_strdup_printf ("UserKnownHostsFile=%s", t->known_hosts);
  g_autofree char *alias = g_strdup_printf ("HostKeyAlias=%s", t->alias);
  const char *options[] = {
    "-i", t->key,
    "-o", "IdentitiesOnly=yes",
    "-o", known_hosts,
    "-o", "GlobalKnownHostsFile=/dev/null",
    "-o", "StrictHostKeyChecking=yes",
    "-o", alias,
  };

  for (guint i = 0; i < G_N_ELEMENTS (options); i++)
    g_ptr_array_add (argv, g_strdup (options[i]));
  if (batch)
    {
      g_ptr_array_add (argv, g_strdup ("-o"));
      g_ptr_array_add (argv, g_strdup ("BatchMode=yes"));
      g_ptr_array_add (argv, g_strdup ("-o"));
      g_ptr_array_add (argv, g_strdup ("ConnectTimeout=5"));
    }
}

/* The exact ssh command line. @command elements stay separate argv
 * elements; ssh joins them for the remote shell, as it always does. */
char **
bg_ssh_build_argv (const BgSshTarget   *t,
                   const char * const  *command,
                   gboolean             batch)
{
  GPtrArray *argv = g_ptr_array_new ();

  {
    char *ssh = bg_program_find ("ssh");
    g_ptr_array_add (argv, ssh ? ssh : g_strdup ("ssh"));
  }
  bg_ssh_add_options (argv, t, batch);
  g_ptr_array_add (argv, g_strdup ("-l"));
  g_ptr_array_add (argv, g_strdup (t->user));
  g_ptr_array_add (argv, g_strdup (t->address));
  for (guint i = 0; command && command[i]; i++)
    g_ptr_array_add (argv, g_strdup (command[i]));
  g_ptr_array_add (argv, NULL);
  return (char **) g_ptr_array_free (argv, FALSE);
}

/* The same as an ssh_config Host block, for ssh NAME.banger, scp, rsync
 * and editors. */
char *
bg_ssh_config_block (const char         *name,
                     const BgSshTarget  *t)
{
  return g_strdup_printf ("Host %s %s\n"
                          "    HostName %s\n"
                          "    User %s\n"
                          "    IdentityFile %s\n"
                          "    IdentitiesOnly yes\n"
                          "    UserKnownHostsFile %s\n"
                          "    StrictHostKeyChecking yes\n"
                          "    HostKeyAlias %s\n",
                          name, t->alias, t->address, t->user, t->key, t->known_hosts, t->alias);
}
