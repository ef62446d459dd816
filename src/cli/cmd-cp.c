/* cmd-cp.c: banger vm cp — files both ways through the guest agent (or
 * over the pinned-key SSH where the image has no agent that copies). It
 * runs as the user: nothing here asks the mechanism for anything. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bg-agent-cp.h"
#include "bg-cli.h"
#include "bg-config.h"
#include "bg-error.h"
#include "bg-fd.h"
#include "bg-image.h"
#include "bg-names.h"
#include "bg-paths.h"
#include "bg-spawn.h"
#include "bg-ssh.h"
#include "bg-state.h"
#include "bg-vm.h"
#include "bg-vm-control.h"

/* NAME:PATH names a VM's path when NAME is a VM's name (no '/' before the
 * colon; write ./a:b for a local file with a colon). */
static gboolean
split_remote (const char  *arg,
              char       **name,
              char       **path)
{
  const char *colon = strchr (arg, ':');
  g_autofree char *n = NULL;

  if (colon == NULL || colon == arg || memchr (arg, '/', colon - arg) != NULL)
    return FALSE;
  n = g_strndup (arg, colon - arg);
  if (!bg_name_is_valid (n))
    return FALSE;
  *name = g_steal_pointer (&n);
  *path = g_strdup (colon[1] != '\0' ? colon + 1 : ".");
  return TRUE;
}

static gboolean
is_remote (const char *arg)
{
  g_autofree char *name = NULL, *path = NULL;
  return split_remote (arg, &name, &path);
}

/* Where a copy out of the guest goes: a directory fd and a name, both
 * from the user's command line. DST an existing directory: the copy is
 * named after the guest path's last component; else DST is the copy. */
static gboolean
local_destination (const char *dst, gboolean dst_is_dir, const char *guest_path, int *dir_fd, char **name,
                   GError **error)
{
  g_autofree char *trimmed = g_strdup (guest_path);
  g_autofree char *dir = NULL;

  while (strlen (trimmed) > 1 && g_str_has_suffix (trimmed, "/"))
    trimmed[strlen (trimmed) - 1] = '\0';
  if (dst_is_dir)
    {
      dir = g_strdup (dst);
      *name = g_path_get_basename (trimmed);
    }
  else
    {
      if (g_str_has_suffix (dst, "/"))
        {
          g_set_error (error, BG_ERROR, BG_ERROR_NOT_FOUND, "local DST %s is not a directory", dst);
          return FALSE;
        }
      dir = g_path_get_dirname (dst);
      *name = g_path_get_basename (dst);
    }
  if (!bg_agent_name_is_safe (*name) || strlen (*name) >= BG_AGENT_MAX_NAME)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "cannot tell what to name the copy of %s in %s; "
                   "give DST as the new name", guest_path, dst);
      g_clear_pointer (name, g_free);
      return FALSE;
    }
  if ((*dir_fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
    {
      g_clear_pointer (name, g_free);
      return bg_error_errno (error, errno, "open", dir);
    }
  return TRUE;
}

/* vm cp through the guest agent: one session per SRC on one connection;
 * progress on a terminal, as scp shows it. */
static gboolean
cp_over_agent (BgCli *cli, BgAgentClient *client, const char *vm, const char *owner, int argc, char **argv,
               gboolean to_vm, gboolean recursive, GError **error)
{
  BgProgress progress;
  BgAgentCpOptions options = { vm, owner, recursive, NULL };
  gboolean ok = TRUE;

  if (cli->is_tty && !cli->json)
    {
      bg_progress_init (&progress, cli, vm);
      options.progress = &progress;
    }
  if (to_vm)
    {
      g_autofree char *name = NULL, *path = NULL;

      split_remote (argv[argc - 1], &name, &path);
      /* Several SRCs go into a directory, never one over the other. */
      if (argc > 3 && !g_str_has_suffix (path, "/"))
        {
          char *with_slash = g_strconcat (path, "/", NULL);
          g_free (path);
          path = with_slash;
        }
      for (int i = 1; ok && i < argc - 1; i++)
        ok = bg_agent_cp_put (client, argv[i], path, &options, error);
    }
  else
    {
      const char *dst = argv[argc - 1];
      gboolean dst_is_dir = g_file_test (dst, G_FILE_TEST_IS_DIR);

      for (int i = 1; ok && i < argc - 1; i++)
        {
          g_autofree char *name = NULL, *path = NULL, *local_name = NULL;
          g_auto(BgFd) dir_fd = -1;

          split_remote (argv[i], &name, &path);
          ok = local_destination (dst, dst_is_dir, path, &dir_fd, &local_name, error) &&
               bg_agent_cp_get (client, path, dir_fd, local_name, &options, error);
        }
    }
  bg_progress_done (options.progress);
  bg_progress_clear (options.progress);
  return ok;
}

/* Who owns what `vm cp` puts into the VM: its user; root (the agent's
 * default, as for `vm exec`) where banger-init is PID 1 of an image with
 * no init, which makes no user, so the VM user does not exist there. An
 * image with no guest setup at all may have the user of its own. */
static const char *
cp_owner (BgVmRecord *r, BgSshTarget *target)
{
  g_autofree char *images = bg_paths_images_dir ();
  g_autoptr(BgImage) image = r->image ? bg_image_load (images, r->image, NULL) : NULL;

  if (image != NULL && g_strcmp0 (image->guest_setup, "banger-init") == 0)
    return NULL;
  return target->user;
}

gboolean
bg_vm_cmd_cp (BgCli *cli, int argc, char **argv, GError **error)
{
  gboolean recursive = FALSE;
  GOptionEntry entries[] = {
    { "recursive", 'r', 0, G_OPTION_ARG_NONE, &recursive, "Copy directories and what they hold", NULL },
    { NULL }
  };
  g_autoptr(BgConfig) config = NULL;
  g_autoptr(BgStateStore) store = NULL;
  g_autoptr(BgVmRecord) r = NULL;
  g_autoptr(GPtrArray) scp = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(BgSshTarget) target = NULL;
  g_autofree char *vm = NULL, *scp_path = NULL;
  g_autoptr(GSubprocess) child = NULL;
  gboolean to_vm;
  int remote_count = 0;

  if (!bg_cli_parse (cli, &(BgUsage) { "SRC… DST", 2, -1,
                     "Copy files between the host and a VM: through its guest agent, or over SSH with the "
                     "pinned host key where the image has no agent.\n\n"
                     "One side is NAME:PATH (a relative PATH is in the VM user's home); modes and times "
                     "are kept, and what is copied in is owned by the VM user (root where banger-init is "
                     "PID 1 of an image with no init, which makes no user).\n\n"
                     "  banger vm cp -r ./src dev:project     into the VM\n"
                     "  banger vm cp dev:/var/log/syslog .    out of it",
                     entries }, &argc, &argv, error))
    return FALSE;

  for (int i = 1; i < argc; i++)
    {
      g_autofree char *name = NULL, *path = NULL;
      if (!split_remote (argv[i], &name, &path))
        continue;
      remote_count++;
      if (vm != NULL && !g_str_equal (vm, name))
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       "%s: copy between the host and one VM at a time (%s and %s given)", argv[0], vm, name);
          return FALSE;
        }
      g_free (vm);
      vm = g_steal_pointer (&name);
    }
  to_vm = is_remote (argv[argc - 1]);
  if (remote_count == 0 || (to_vm && remote_count != 1) || (!to_vm && remote_count != argc - 2))
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "%s: either every SRC is NAME:PATH and DST is local, or DST is NAME:PATH and every SRC is "
                   "local (write ./%s for a local file whose name has a colon)", argv[0],
                   remote_count == 0 ? argv[1] : "a:b");
      return FALSE;
    }
  /* The local side is checked here, so its errors name it. */
  for (int i = 1; i < argc; i++)
    {
      gboolean local_src = to_vm && i < argc - 1;
      struct stat st;

      if (local_src && stat (argv[i], &st) < 0)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_NOT_FOUND, "local SRC %s: %s", argv[i], g_strerror (errno));
          return FALSE;
        }
      if (local_src && S_ISDIR (st.st_mode) && !recursive)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "local SRC %s is a directory; copy it with -r",
                       argv[i]);
          return FALSE;
        }
      if (!to_vm && i == argc - 1 && argc > 3 && !g_file_test (argv[i], G_FILE_TEST_IS_DIR))
        {
          g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                       "local DST %s must be a directory to take several files", argv[i]);
          return FALSE;
        }
    }

  if ((config = bg_config_load_default (error)) == NULL)
    return FALSE;
  store = bg_state_store_new_default ();
  if ((r = bg_state_store_load (store, vm, error)) == NULL)
    return FALSE;
  if (!bg_vm_may_answer (r, bg_vm_probe_state (r)))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_BUSY, "VM %s is not running; start it with 'banger vm start %s'", vm, vm);
      return FALSE;
    }
  target = bg_ssh_target_new (r, config);
  /* The agent where the guest has one that can transfer files (version
   * 2); scp for images without it. */
  if (r->vsock_socket != NULL)
    {
      g_autoptr(BgAgentClient) client = bg_agent_client_connect (r->vsock_socket, BG_AGENT_VSOCK_PORT, 2000, NULL);

      if (client != NULL && bg_agent_client_get_version (client) >= BG_AGENT_VERSION_FILES)
        return cp_over_agent (cli, client, vm, cp_owner (r, target), argc, argv, to_vm, recursive, error);
    }
  if (!bg_programs_require ((const char * const[]) { "scp", NULL }, "vm cp", error))
    return FALSE;
  scp_path = bg_program_find ("scp");
  g_ptr_array_add (scp, g_strdup (scp_path));
  /* -p keeps modes and times; scp shows progress only on a terminal. */
  g_ptr_array_add (scp, g_strdup ("-p"));
  if (recursive)
    g_ptr_array_add (scp, g_strdup ("-r"));
  if (!cli->is_tty)
    g_ptr_array_add (scp, g_strdup ("-q"));
  bg_ssh_add_options (scp, target, TRUE);
  g_ptr_array_add (scp, g_strdup ("--"));
  for (int i = 1; i < argc; i++)
    {
      g_autofree char *name = NULL, *path = NULL;
      if (split_remote (argv[i], &name, &path))
        g_ptr_array_add (scp, g_strdup_printf ("%s@%s:%s", target->user, target->address, path));
      else
        g_ptr_array_add (scp, g_strdup (argv[i]));
    }
  g_ptr_array_add (scp, NULL);
  if ((child = g_subprocess_newv ((const char * const *) scp->pdata, G_SUBPROCESS_FLAGS_NONE, error)) == NULL)
    return FALSE;
  if (!g_subprocess_wait (child, NULL, error))
    return FALSE;
  if (!g_subprocess_get_if_exited (child) || g_subprocess_get_exit_status (child) != 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "copying %s %s failed (scp said why, above)",
                   to_vm ? "into" : "out of", vm);
      return FALSE;
    }
  return TRUE;
}
