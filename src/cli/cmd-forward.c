/* cmd-forward.c: banger vm forward and banger vm cp — a VM's ports on
 * the host's loopback, and files both ways through the guest agent (or
 * over the pinned-key SSH where the image has no agent that copies).
 * Both run as the user: nothing here asks the mechanism for anything. */
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib-unix.h>

#include <fcntl.h>

#include "bg-agent-cp.h"
#include "bg-cli.h"
#include "bg-config.h"
#include "bg-error.h"
#include "bg-fd.h"
#include "bg-image.h"
#include "bg-forward.h"
#include "bg-names.h"
#include "bg-paths.h"
#include "bg-spawn.h"
#include "bg-ssh.h"
#include "bg-state.h"
#include "bg-vm.h"
#include "bg-vm-control.h"

#define UDP_IDLE_DEFAULT_S 60

typedef struct {
  GMainLoop *loop;
  BgForward *forward;
  gboolean   background;
  guint      interrupts;
} Serving;

static gboolean
on_drained (gpointer data)
{
  g_main_loop_quit (((Serving *) data)->loop);
  return G_SOURCE_REMOVE;
}

static gboolean
on_stop_signal (gpointer data)
{
  Serving *s = data;
  guint open = bg_forward_n_open (s->forward);

  /* In the background (stopped by vm forward --stop, vm stop, vm rm)
   * the end is now; in a terminal the first Ctrl-C lets open
   * connections finish, the second cuts them. */
  if (s->background || s->interrupts++ > 0 || open == 0)
    {
      g_main_loop_quit (s->loop);
      return G_SOURCE_CONTINUE;
    }
  g_printerr ("Waiting for %u connection%s to end; press Ctrl-C again to cut %s.\n", open, open == 1 ? "" : "s",
              open == 1 ? "it" : "them");
  bg_forward_drain (s->forward, on_drained, s);
  return G_SOURCE_CONTINUE;
}

static void
serve (Serving *s)
{
  guint sigint = g_unix_signal_add (SIGINT, on_stop_signal, s);
  guint sigterm = g_unix_signal_add (SIGTERM, on_stop_signal, s);
  guint sighup = g_unix_signal_add (SIGHUP, on_stop_signal, s);

  s->loop = g_main_loop_new (NULL, FALSE);
  g_main_loop_run (s->loop);
  g_source_remove (sigint);
  g_source_remove (sigterm);
  g_source_remove (sighup);
  g_main_loop_unref (s->loop);
}

/* Takes @ready_fd: the parent reads the text until it is closed. */
static void
tell_ready (int         ready_fd,
            const char *text)
{
  g_auto(BgFd) fd = ready_fd;

  if (fd < 0)
    return;
  if (write (fd, text, strlen (text)) < 0)
    { /* the parent is gone; nothing to tell */ }
}

static gboolean
list_forwards (BgCli      *cli,
               const char *name)
{
  g_autoptr(GPtrArray) list = bg_forward_list_processes (name);

  if (cli->json)
    {
      GVariantBuilder b = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE ("aa{sv}"));

      for (guint i = 0; i < list->len; i++)
        {
          BgForwardProcess *p = list->pdata[i];
          g_variant_builder_add_parsed (&b, "{'pid': <%x>, 'persistent': <%b>, 'specs': <%^as>}",
                                        p->pid, p->persistent, p->specs);
        }
      bg_cli_print_variant (g_variant_builder_end (&b));
      return TRUE;
    }
  if (list->len == 0)
    {
      g_print ("No background forwards for %s.\n", name);
      return TRUE;
    }
  {
    g_autoptr(BgTable) table = bg_table_new ("PID", "FORWARDS", "STARTED BY", NULL);
    for (guint i = 0; i < list->len; i++)
      {
        BgForwardProcess *p = list->pdata[i];
        g_autofree char *pid = g_strdup_printf ("%" G_GINT64_FORMAT, p->pid);
        g_autofree char *specs = g_strjoinv (" ", p->specs);
        bg_table_add_row (table, pid, specs, p->persistent ? "vm up --forward" : "vm forward --background", NULL);
      }
    bg_table_print (table);
  }
  return TRUE;
}

/* Stopped (or never started) VMs are refused with what to do. A VM
 * recorded running whose VMM does not answer (crashed) is tried all the
 * same, as vm ssh does: its guest answers or the connection says why. */
static gboolean
vm_may_answer (BgVmRecord *r,
               BgVmState   state)
{
  return r->address != NULL && state != BG_VM_STOPPED && state != BG_VM_CREATED && state != BG_VM_CREATING;
}

gboolean
bg_vm_cmd_forward (BgCli *cli, int argc, char **argv, GError **error)
{
  gboolean background = FALSE, list = FALSE, stop = FALSE, persistent = FALSE, ipv6 = FALSE;
  const char *guest_address;
  int serve_fd = -1, udp_idle = UDP_IDLE_DEFAULT_S;
  GOptionEntry entries[] = {
    { "background", 'b', 0, G_OPTION_ARG_NONE, &background, "Run in the background; stop with --stop", NULL },
    { "list", 'l', 0, G_OPTION_ARG_NONE, &list, "List the VM's background forwards", NULL },
    { "stop", 's', 0, G_OPTION_ARG_NONE, &stop, "Stop the VM's background forwards (those with SPEC, if given)", NULL },
    { "ipv6", '6', 0, G_OPTION_ARG_NONE, &ipv6, "Relay to the VM's IPv6 address (default: its IPv4 address)", NULL },
    { "udp-idle", 0, 0, G_OPTION_ARG_INT, &udp_idle, "Seconds before an idle UDP flow is closed (default 60)", "SECONDS" },
    { "serve-background", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_INT, &serve_fd, NULL, NULL },
    { "persistent", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_NONE, &persistent, NULL, NULL },
    { NULL }
  };
  g_autoptr(BgStateStore) store = NULL;
  g_autoptr(BgVmRecord) r = NULL;
  g_autoptr(GPtrArray) specs = g_ptr_array_new_with_free_func ((GDestroyNotify) bg_forward_spec_free);
  g_autoptr(GStrvBuilder) texts = g_strv_builder_new ();
  g_auto(GStrv) spec_texts = NULL;
  g_autoptr(BgForward) forward = NULL;
  g_autoptr(GPtrArray) shown = NULL;
  g_autofree char *joined = NULL;
  BgVmState state;
  Serving s = { 0 };

  if (!bg_cli_parse (cli, &(BgUsage) { "NAME [SPEC…]", 1, -1,
                     "Relay ports of the host to a VM: SPEC is [HOSTADDR:]HOSTPORT[:GUESTPORT][/tcp|/udp].\n\n"
                     "Without HOSTADDR it listens on 127.0.0.1 and ::1, so http://localhost:PORT reaches the\n"
                     "VM's service (a secure context for browsers). It runs as you; ports below the host's\n"
                     "net.ipv4.ip_unprivileged_port_start are refused.\n\n"
                     "  banger vm forward dev 8080:80          until Ctrl-C\n"
                     "  banger vm forward dev 5353/udp -b      in the background\n"
                     "  banger vm forward dev 8080:80 --ipv6   to the VM's IPv6 address\n"
                     "  banger vm forward dev --list | --stop [SPEC]",
                     entries }, &argc, &argv, error) ||
      !bg_name_validate ("NAME", argv[1], error))
    {
      tell_ready (serve_fd, error && *error ? (*error)->message : "bad arguments\n");
      return FALSE;
    }
  if (list + stop + background > 1 || ((list || stop) && serve_fd >= 0))
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "%s: --background, --list and --stop exclude "
                   "each other", argv[0]);
      return FALSE;
    }
  if (udp_idle < 1)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "%s: --udp-idle must be at least 1", argv[0]);
      return FALSE;
    }
  for (int i = 2; i < argc; i++)
    {
      BgForwardSpec *spec = bg_forward_spec_parse (argv[i], error);
      if (spec == NULL)
        {
          tell_ready (serve_fd, (*error)->message);
          return FALSE;
        }
      g_strv_builder_add (texts, spec->text);
      g_ptr_array_add (specs, spec);
    }
  spec_texts = g_strv_builder_end (texts);

  store = bg_state_store_new_default ();
  if ((r = bg_state_store_load (store, argv[1], error)) == NULL)
    {
      tell_ready (serve_fd, (*error)->message);
      return FALSE;
    }
  if (list)
    return bg_cli_expect_args (argv[0], argc, 1, 1, error) && list_forwards (cli, r->name);
  if (stop)
    {
      guint ended;
      if (!bg_cli_expect_args (argv[0], argc, 1, 2, error))
        return FALSE;
      ended = bg_forward_stop_processes (r->name, argc == 3 ? spec_texts[0] : NULL, error);
      if (error && *error)
        return FALSE;
      if (ended == 0 && argc == 3)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_NOT_FOUND, "no background forward of %s has %s; "
                       "see 'banger vm forward %s --list'", r->name, spec_texts[0], r->name);
          return FALSE;
        }
      return bg_cli_done (cli, g_variant_new_parsed ("{'vm': <%s>, 'stopped': <%u>}", r->name, ended),
                          "Stopped %u forward%s of %s.", ended, ended == 1 ? "" : "s", r->name);
    }
  if (specs->len == 0)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "%s: name at least one SPEC, e.g. 'banger vm forward %s 8080:80'", argv[0], r->name);
      return FALSE;
    }
  state = bg_vm_probe_state (r);
  if (!vm_may_answer (r, state))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_BUSY, "VM %s is %s; start it with 'banger vm start %s'", r->name,
                   bg_vm_state_to_string (state), r->name);
      tell_ready (serve_fd, (*error)->message);
      return FALSE;
    }
  guest_address = ipv6 ? r->address6 : r->address;
  if (guest_address == NULL)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_NOT_SUPPORTED, "--ipv6: VM %s has no IPv6 address (IPv6 is off on "
                   "this host; see 'banger system status'); forward without --ipv6", r->name);
      tell_ready (serve_fd, (*error)->message);
      return FALSE;
    }
  if (background)
    {
      GPid pid = 0;
      bg_forward_spec_warn_exposed ((const char * const *) spec_texts, r->name);
      joined = g_strjoinv (", ", spec_texts);
      if (!bg_forward_spawn_background (r->name, spec_texts, FALSE, ipv6, &pid, error))
        return FALSE;
      return bg_cli_done (cli, g_variant_new_parsed ("{'vm': <%s>, 'pid': <%i>, 'specs': <%^as>}", r->name,
                                                     (gint32) pid, spec_texts),
                          "Forwarding %s to %s in the background (pid %d).\n"
                          "Stop it with 'banger vm forward %s --stop'.", joined, r->name, pid, r->name);
    }

  /* Said here, where the user sees it: a background child's stderr is
   * its log. */
  if (serve_fd < 0)
    bg_forward_spec_warn_exposed ((const char * const *) spec_texts, r->name);
  if ((forward = bg_forward_new (r->name, guest_address, specs, udp_idle, error)) == NULL)
    {
      tell_ready (serve_fd, (*error)->message);
      return FALSE;
    }
  s.forward = forward;
  s.background = serve_fd >= 0;
  if (s.background)
    {
      if (!bg_forward_record_self (r->name, spec_texts, persistent, error))
        {
          tell_ready (serve_fd, (*error)->message);
          return FALSE;
        }
      tell_ready (serve_fd, "ok\n");
    }
  else
    {
      shown = bg_forward_listening (forward);
      g_ptr_array_add (shown, NULL);
      joined = g_strjoinv (", ", (char **) shown->pdata);
      bg_cli_done (cli, g_variant_new_parsed ("{'vm': <%s>, 'address': <%s>, 'listening': <%^as>}",
                                              r->name, guest_address, (char **) shown->pdata),
                   "Forwarding %s to %s (%s). Press Ctrl-C to stop.", joined, r->name, guest_address);
    }
  serve (&s);
  if (s.background)
    bg_forward_unrecord_self (r->name);
  return TRUE;
}

/* ---- vm cp ---- */

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
  if (!vm_may_answer (r, bg_vm_probe_state (r)))
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
