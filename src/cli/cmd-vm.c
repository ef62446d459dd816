/* cmd-vm.c: banger vm … — the user's VMs. */
#include "bg-agent-client.h"
#include "bg-agent-exec.h"
#include "bg-cli.h"
#include "bg-client.h"
#include "bg-config.h"
#include "bg-crypto-module.h"
#include "bg-error.h"
#include "bg-fd.h"
#include "bg-names.h"
#include "bg-drive.h"
#include "bg-forward.h"
#include "bg-image.h"
#include "bg-ready.h"
#include "bg-ssh.h"
#include "bg-sync.h"
#include "bg-paths.h"
#include "bg-spawn.h"
#include "bg-state.h"
#include "bg-vm.h"
#include "bg-vm-control.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <signal.h>
#include <glib-unix.h>
#include <gio/gunixoutputstream.h>

static char *
format_memory (guint mib)
{
  if (mib >= 1024 && mib % 1024 == 0)
    return g_strdup_printf ("%uG", mib / 1024);
  return g_strdup_printf ("%uM", mib);
}

static gboolean
cmd_ls (BgCli *cli, int argc, char **argv, GError **error)
{
  g_autoptr(BgStateStore) store = NULL;
  g_autoptr(GPtrArray) records = NULL;
  g_autoptr(GPtrArray) problems = NULL;

  if (!bg_cli_parse (cli, &(BgUsage) { NULL, 0, 0, "List your VMs.", NULL }, &argc, &argv, error))
    return FALSE;

  store = bg_state_store_new_default ();
  records = bg_state_store_list (store, &problems, error);
  if (records == NULL)
    return FALSE;
  for (guint i = 0; i < problems->len; i++)
    bg_cli_warn ("%s", (char *) problems->pdata[i]);

  /* Shown as it is, not as it was last written. */
  for (guint i = 0; i < records->len; i++)
    {
      BgVmRecord *r = records->pdata[i];
      r->state = bg_vm_probe_state (r);
    }

  if (cli->json)
    {
      g_autoptr(JsonArray) array = json_array_new ();
      g_autoptr(JsonNode) root = json_node_new (JSON_NODE_ARRAY);

      for (guint i = 0; i < records->len; i++)
        json_array_add_element (array, bg_vm_record_to_json (records->pdata[i]));
      json_node_set_array (root, array);
      bg_cli_print_json (root);
      return TRUE;
    }

  if (records->len == 0)
    {
      if (cli->is_tty)
        g_print ("No VMs yet. Create one with 'banger vm up'.\n");
      return TRUE;
    }

  {
    g_autoptr(BgTable) table = bg_table_new ("NAME", "STATE", "ADDRESS", "IPV6", "IMAGE", "CPUS",
                                             "MEMORY", "UPTIME", NULL);
    for (guint i = 0; i < records->len; i++)
      {
        BgVmRecord *r = records->pdata[i];
        g_autofree char *cpus = g_strdup_printf ("%u", r->cpus);
        g_autofree char *mem = format_memory (r->memory_mib);
        g_autofree char *up = bg_cli_format_age (r->state == BG_VM_RUNNING ? r->started_at : 0);

        bg_table_add_row (table, r->name, bg_vm_state_to_string (r->state), r->address ? r->address : "-",
                          r->address6 ? r->address6 : "-", r->image ? r->image : "-", cpus, mem, up, NULL);
      }
    bg_table_print (table);
  }
  return TRUE;
}

static gboolean
cmd_show (BgCli *cli, int argc, char **argv, GError **error)
{
  g_autoptr(BgStateStore) store = NULL;
  g_autoptr(BgVmRecord) r = NULL;

  if (!bg_cli_parse (cli, &(BgUsage) { "NAME", 1, 1, "Show everything banger knows about a VM.",
                     NULL }, &argc, &argv, error) ||
      !bg_name_validate ("NAME", argv[1], error))
    return FALSE;

  store = bg_state_store_new_default ();
  r = bg_state_store_load (store, argv[1], error);
  if (r == NULL)
    return FALSE;
  r->state = bg_vm_probe_state (r);

  if (cli->json)
    {
      g_autoptr(JsonNode) node = bg_vm_record_to_json (r);
      bg_cli_print_json (node);
      return TRUE;
    }

  {
    g_autofree char *mem = format_memory (r->memory_mib);
    g_autofree char *disk = bg_format_size_human (r->disk_bytes);
    g_autofree char *created = NULL;
    g_autoptr(GDateTime) dt = g_date_time_new_from_unix_local (r->created_at);

    created = dt ? g_date_time_format (dt, "%Y-%m-%d %H:%M:%S") : g_strdup ("-");
    g_print ("Name:      %s\n", r->name);
    g_print ("State:     %s\n", bg_vm_state_to_string (r->state));
    g_print ("Image:     %s\n", r->image ? r->image : "-");
    g_print ("CPUs:      %u\n", r->cpus);
    g_print ("Memory:    %s\n", mem);
    g_print ("Disk:      %s%s%s\n", disk, r->disk_reason ? ", " : "", r->disk_reason ? r->disk_reason : "");
    g_print ("Address:   %s\n", r->address ? r->address : "-");
    g_print ("IPv6:      %s\n", r->address6 ? r->address6 : "-");
    g_print ("MAC:       %s\n", r->mac ? r->mac : "-");
    g_print ("Tap:       %s\n", r->tap ? r->tap : "-");
    g_print ("Created:   %s\n", created);
    {
      g_autoptr(GPtrArray) running = bg_forward_list_processes (r->name);
      g_autofree char *recorded = r->forwards ? g_strjoinv (" ", r->forwards) : NULL;

      if (recorded != NULL)
        g_print ("Forwards:  %s (with every start)\n", recorded);
      for (guint i = 0; i < running->len; i++)
        {
          BgForwardProcess *p = running->pdata[i];
          g_autofree char *specs = g_strjoinv (" ", p->specs);
          g_print ("Forwarding: %s (pid %" G_GINT64_FORMAT ")\n", specs, p->pid);
        }
    }
  }
  return TRUE;
}

static gboolean
parse_name (BgCli        *cli,
            int          *argc,
            char       ***argv,
            const char   *summary,
            GOptionEntry *entries,
            GError      **error)
{
  return bg_cli_parse (cli, &(BgUsage) { "NAME", 1, 1, summary, entries }, argc, argv, error) &&
         bg_name_validate ("NAME", (*argv)[1], error);
}

static gboolean
cmd_up (BgCli *cli, int argc, char **argv, GError **error)
{
  g_autoptr(BgConfig) config = NULL;
  g_autofree char *image = NULL, *disk = NULL;
  gint cpus = -1, memory = -1, timeout = 120;
  gboolean no_wait = FALSE;
  g_auto(GStrv) forwards = NULL;
  g_autoptr(GStrvBuilder) canonical = g_strv_builder_new ();
  g_auto(GStrv) forward_specs = NULL;
  BgUpOptions o = { 0 };
  GOptionEntry entries[] = {
    { "image", 'i', 0, G_OPTION_ARG_STRING, &image, "Image to make the VM from (default from banger.conf)", "IMAGE" },
    { "cpus", 'c', 0, G_OPTION_ARG_INT, &cpus, "vCPUs: 1 or an even number up to 32", "N" },
    { "memory", 'm', 0, G_OPTION_ARG_INT, &memory, "Memory in MiB", "MIB" },
    { "disk", 'd', 0, G_OPTION_ARG_STRING, &disk, "Root disk size, e.g. 20G", "SIZE" },
    { "no-wait", 0, 0, G_OPTION_ARG_NONE, &no_wait, "Return once the VM started; do not wait for SSH", NULL },
    { "timeout", 't', 0, G_OPTION_ARG_INT, &timeout, "Seconds to wait for SSH (default 120)", "SECONDS" },
    { "forward", 'p', 0, G_OPTION_ARG_STRING_ARRAY, &forwards,
      "Forward a port whenever the VM runs (as 'vm forward'); repeatable", "SPEC" },
    { NULL }
  };

  if (!bg_cli_parse (cli, &(BgUsage) { "[NAME]", 0, 1,
                     "Create and start a VM, or start it again, and wait until SSH answers.\n\n"
                     "Without NAME, a name is made up. Running it on a running VM just prints\n"
                     "its summary. A failure or Ctrl-C removes whatever this run created.",
                     entries }, &argc, &argv, error))
    return FALSE;
  if (argc == 2 && !bg_name_validate ("NAME", argv[1], error))
    return FALSE;
  if ((image && !bg_name_validate ("--image", image, error)) ||
      (cpus != -1 && !bg_config_validate_cpus ("--cpus", cpus, error)) ||
      (memory != -1 && !bg_config_validate_memory ("--memory", memory, error)))
    return FALSE;
  if (disk != NULL)
    {
      if (!bg_parse_size (disk, &o.disk_bytes, error))
        {
          g_prefix_error (error, "--disk: ");
          return FALSE;
        }
      if (!bg_config_validate_disk_size ("--disk", o.disk_bytes, error))
        return FALSE;
    }
  if (timeout < 1 || timeout > 3600)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "--timeout: use 1 to 3600 seconds");
      return FALSE;
    }
  for (guint i = 0; forwards && forwards[i]; i++)
    {
      g_autoptr(BgForwardSpec) spec = bg_forward_spec_parse (forwards[i], error);
      if (spec == NULL)
        {
          g_prefix_error (error, "--forward: ");
          return FALSE;
        }
      g_strv_builder_add (canonical, spec->text);
    }
  forward_specs = forwards ? g_strv_builder_end (canonical) : NULL;

  /* The arguments are good: vm up calls the mechanism from here but for
   * a VM that runs already. The bus is reached while the rest is read
   * (bg_vm_up ends it on every path). */
  bg_client_connect_ahead ();
  /* A new VM's host key (and the user's first key, and the digest that
   * names a layered disk's template) need the crypto module: it is
   * opened meanwhile too. vm start keeps the keys it has, so it does
   * not (a missing one still loads the module when it is made). */
  bg_crypto_preload ();
  config = bg_config_load_default (error);
  if (config == NULL)
    {
      bg_client_shutdown ();
      return FALSE;
    }
  for (guint i = 0; i < config->warnings->len; i++)
    bg_cli_warn ("%s", (char *) config->warnings->pdata[i]);

  o.name = argc == 2 ? argv[1] : NULL;
  o.image = image;
  o.cpus = cpus;
  o.memory_mib = memory;
  o.no_wait = no_wait;
  o.ready_timeout_s = timeout;
  o.forwards = forward_specs;
  return bg_vm_up (cli, config, &o, error);
}

static gboolean
cmd_start (BgCli *cli, int argc, char **argv, GError **error)
{
  g_autoptr(BgConfig) config = NULL;
  g_autoptr(BgStateStore) store = bg_state_store_new_default ();
  g_autoptr(BgVmRecord) r = NULL;
  gboolean no_wait = FALSE;
  GOptionEntry entries[] = {
    { "no-wait", 0, 0, G_OPTION_ARG_NONE, &no_wait, "Do not wait for SSH", NULL },
    { NULL }
  };
  BgUpOptions o = { 0 };

  if (!parse_name (cli, &argc, &argv, "Start a stopped VM with its disk, address and keys.", entries, error))
    return FALSE;
  /* As vm up: the bus is reached while the record and the configuration
   * are read. */
  bg_client_connect_ahead ();
  /* Unlike up, start never creates. */
  if ((r = bg_state_store_load (store, argv[1], error)) == NULL ||
      (config = bg_config_load_default (error)) == NULL)
    {
      bg_client_shutdown ();
      return FALSE;
    }
  o.name = argv[1];
  o.no_wait = no_wait;
  o.ready_timeout_s = 120;
  o.verb = "start";
  return bg_vm_up (cli, config, &o, error);
}

static gboolean
cmd_stop (BgCli *cli, int argc, char **argv, GError **error)
{
  gboolean force = FALSE;
  gint timeout = 30;
  GOptionEntry entries[] = {
    { "force", 'f', 0, G_OPTION_ARG_NONE, &force, "Kill it at once instead of Ctrl-Alt-Del", NULL },
    { "timeout", 't', 0, G_OPTION_ARG_INT, &timeout, "Seconds to wait for a clean shutdown before killing (default 30)", "SECONDS" },
    { NULL }
  };

  return parse_name (cli, &argc, &argv, "Stop a VM: Ctrl-Alt-Del, then kill after a timeout.", entries, error) &&
         bg_vm_stop (cli, argv[1], force, MAX (timeout, 1), error) &&
         bg_cli_done (cli, NULL, "Stopped %s.", argv[1]);
}

static gboolean
cmd_restart (BgCli *cli, int argc, char **argv, GError **error)
{
  g_autoptr(BgConfig) config = NULL;
  g_autoptr(BgStateStore) store = bg_state_store_new_default ();
  g_autoptr(BgVmRecord) r = NULL;
  gboolean no_wait = FALSE;
  BgVmState state;
  GOptionEntry entries[] = {
    { "no-wait", 0, 0, G_OPTION_ARG_NONE, &no_wait, "Return once the VM started again; do not wait for SSH", NULL },
    { NULL }
  };
  BgUpOptions o = { 0 };

  if (!parse_name (cli, &argc, &argv,
                   "Stop a running VM (Ctrl-Alt-Del, killed after 30 s) and start it again with\n"
                   "its disk, address and keys: a new VMM, the same VM.", entries, error) ||
      (r = bg_state_store_load (store, argv[1], error)) == NULL)
    return FALSE;
  /* Restarting what is not running would only hide a mistake (the wrong
   * name, a VM stopped on purpose): say what to run instead. A crashed
   * VM restarts: that is what a user asking this means. */
  state = bg_vm_probe_state (r);
  if (!bg_vm_state_is_live (state) && state != BG_VM_CRASHED)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_BUSY, "VM %s is %s; start it with 'banger vm start %s'",
                   argv[1], bg_vm_state_to_string (state), argv[1]);
      return FALSE;
    }
  if (!bg_vm_stop (cli, argv[1], FALSE, 30, error) ||
      (config = bg_config_load_default (error)) == NULL)
    return FALSE;
  o.name = argv[1];
  o.no_wait = no_wait;
  o.ready_timeout_s = 120;
  o.verb = "restart";
  return bg_vm_up (cli, config, &o, error);
}

static gboolean
cmd_pause (BgCli *cli, int argc, char **argv, GError **error)
{
  return parse_name (cli, &argc, &argv, "Pause a running VM.", NULL, error) &&
         bg_vm_set_paused (argv[1], TRUE, error);
}

static gboolean
cmd_resume (BgCli *cli, int argc, char **argv, GError **error)
{
  return parse_name (cli, &argc, &argv, "Resume a paused VM.", NULL, error) &&
         bg_vm_set_paused (argv[1], FALSE, error);
}

static gboolean
cmd_rm (BgCli *cli, int argc, char **argv, GError **error)
{
  gboolean force = FALSE;
  GOptionEntry entries[] = {
    { "force", 'f', 0, G_OPTION_ARG_NONE, &force, "Kill a running VM instead of shutting it down", NULL },
    { NULL }
  };

  return parse_name (cli, &argc, &argv,
                     "Remove a VM: stop it, then delete its disk, tap, name, pinned key and state.",
                     entries, error) &&
         bg_vm_remove (cli, argv[1], force, error) &&
         bg_cli_done (cli, NULL, "Removed %s.", argv[1]);
}

static gboolean
cmd_logs (BgCli *cli, int argc, char **argv, GError **error)
{
  g_autofree char *dir = NULL, *path = NULL;
  gboolean follow = FALSE;
  GOptionEntry entries[] = {
    { "follow", 'f', 0, G_OPTION_ARG_NONE, &follow, "Keep printing as the console writes", NULL },
    { NULL }
  };
  char buf[8192];
  ssize_t n;
  g_auto(BgFd) fd = -1;

  if (!parse_name (cli, &argc, &argv, "Print a VM's console log.", entries, error))
    return FALSE;
  {
    g_autoptr(BgStateStore) store = bg_state_store_new_default ();
    g_autoptr(BgVmRecord) r = bg_state_store_load (store, argv[1], error);
    if (r == NULL)
      return FALSE;
  }
  dir = bg_paths_vm_dir (argv[1]);
  path = g_build_filename (dir, "console.log", NULL);
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_NOT_FOUND, "%s has no console log yet", argv[1]);
      return FALSE;
    }
  for (;;)
    {
      while ((n = read (fd, buf, sizeof buf)) > 0)
        if (write (STDOUT_FILENO, buf, n) != n)
          break;
      if (!follow)
        break;
      g_usleep (200 * 1000);
    }
  return TRUE;
}

static BgVmRecord *
load_running (const char *name, GError **error)
{
  g_autoptr(BgStateStore) store = bg_state_store_new_default ();
  BgVmRecord *r = bg_state_store_load (store, name, error);

  if (r != NULL && r->address == NULL)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_BUSY, "VM %s has no address yet; start it with 'banger vm up %s'",
                   name, name);
      g_clear_pointer (&r, bg_vm_record_free);
    }
  return r;
}

/* The agent of a running VM, over its vsock socket (the VM owner's own
 * socket: no mechanism call). */
static BgAgentClient *
connect_agent (BgVmRecord *r, GError **error)
{
  g_autoptr(GError) local = NULL;
  BgAgentClient *client;

  if (r->vsock_socket == NULL || bg_vm_probe_state (r) != BG_VM_RUNNING)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_BUSY, "VM %s is not running; start it with 'banger vm up %s'",
                   r->name, r->name);
      return NULL;
    }
  client = bg_agent_client_connect (r->vsock_socket, BG_AGENT_VSOCK_PORT, 10000, &local);
  if (client == NULL && g_error_matches (local, BG_ERROR, BG_ERROR_NOT_FOUND))
    g_set_error (error, BG_ERROR, BG_ERROR_NOT_FOUND,
                 "VM %s has no guest agent answering (its image may predate banger-agent, or it is still "
                 "booting); 'banger vm ssh %s' works where the image has sshd", r->name, r->name);
  else if (client == NULL)
    g_propagate_error (error, g_steal_pointer (&local));
  return client;
}

static gboolean
check_exec_options (char **env, const char *cwd, const char *user, GError **error)
{
  for (char **v = env; v && *v; v++)
    if ((*v)[0] == '=' || strchr (*v, '=') == NULL || strlen (*v) > BG_AGENT_MAX_STRING)
      {
        g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "--env %s: expected NAME=VALUE", *v);
        return FALSE;
      }
  if (cwd && (cwd[0] != '/' || strlen (cwd) > BG_AGENT_MAX_PATH))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                   "--cwd %s: expected an absolute path in the guest (at most %u bytes)", cwd, BG_AGENT_MAX_PATH);
      return FALSE;
    }
  if (user && (*user == '\0' || strlen (user) > BG_AGENT_MAX_NAME || strchr (user, ':')))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "--user %s: expected a user name or uid", user);
      return FALSE;
    }
  return TRUE;
}

/* Runs the command; FALSE only when it could not (then *status is 127
 * when the guest could not start it, else 0). */
static gboolean
exec_in_vm (BgCli *cli, int argc, char **argv, int *status, GError **error)
{
  gboolean tty = FALSE, interactive = FALSE;
  g_autofree char *user = NULL, *cwd = NULL;
  g_auto(GStrv) env = NULL;
  GOptionEntry entries[] = {
    { "tty", 't', 0, G_OPTION_ARG_NONE, &tty, "Give the command a terminal (a PTY in the guest); "
      "this terminal is put in raw mode until it ends", NULL },
    { "interactive", 'i', 0, G_OPTION_ARG_NONE, &interactive, "Send stdin to the command (until its end)", NULL },
    { "user", 'u', 0, G_OPTION_ARG_STRING, &user, "Run as this guest user, a name or uid (default root)", "USER" },
    { "cwd", 'w', 0, G_OPTION_ARG_STRING, &cwd, "Working directory in the guest (default the user's home)", "DIR" },
    { "env", 'e', 0, G_OPTION_ARG_STRING_ARRAY, &env, "Set a variable for the command (repeatable)", "NAME=VALUE" },
    { NULL }
  };
  g_autoptr(BgVmRecord) r = NULL;
  g_autoptr(BgAgentClient) client = NULL;
  g_autoptr(GStrvBuilder) env_builder = g_strv_builder_new ();
  g_auto(GStrv) full_env = NULL;
  const char * const *command;
  BgAgentExecOptions options;

  *status = 0;
  if (!bg_cli_parse (cli, &(BgUsage) { "NAME -- COMMAND [ARG…]", 2, -1,
                     "Run a command in a VM through its guest agent (no SSH, no network needed).\\n\\n"
                     "The command is an argv, run without a shell, as root unless --user says otherwise. Its exit "
                     "status is banger's (128+N when signal N ended it). Ctrl-C, SIGTERM, SIGHUP and SIGQUIT are "
                     "forwarded to it; with -t, so are window size changes, and the keys go to the guest's "
                     "terminal. For a shell: banger vm exec -it NAME -- bash", entries }, &argc, &argv, error) ||
      !bg_name_validate ("NAME", argv[1], error) ||
      !check_exec_options (env, cwd, user, error))
    return FALSE;
  /* GOption keeps a "--" that follows NAME when options come after it
   * (sh -c …): it separates, it is not the command. */
  command = (const char * const *) argv + 2;
  if (g_strcmp0 (command[0], "--") == 0)
    command++;
  if (command[0] == NULL)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED, "a command to run is needed after NAME --");
      return FALSE;
    }
  if ((r = load_running (argv[1], error)) == NULL || (client = connect_agent (r, error)) == NULL)
    return FALSE;

  /* The guest's terminal should know what ours is. */
  if (tty && g_getenv ("TERM"))
    {
      g_autofree char *term = g_strdup_printf ("TERM=%s", g_getenv ("TERM"));
      g_strv_builder_add (env_builder, term);
    }
  if (env)
    g_strv_builder_addv (env_builder, (const char **) env);
  full_env = g_strv_builder_end (env_builder);
  options = (BgAgentExecOptions) {
    .argv = command,
    .env = (const char * const *) full_env,
    .user = user,
    .cwd = cwd,
    .tty = tty,
    .interactive = interactive,
  };
  return bg_agent_exec_run (client, &options, status, error);
}

static gboolean
cmd_exec (BgCli *cli, int argc, char **argv, GError **error)
{
  int status;

  if (!exec_in_vm (cli, argc, argv, &status, error))
    {
      if (status == 0)
        return FALSE;
      g_printerr ("banger: %s\\n", (*error)->message);
      exit (status);
    }
  /* The command's status is ours. */
  fflush (stdout);
  if (status != 0)
    exit (status);
  return TRUE;
}

static gboolean
cmd_ssh (BgCli *cli, int argc, char **argv, GError **error)
{
  g_autoptr(BgConfig) config = NULL;
  g_autoptr(BgVmRecord) r = NULL;
  g_autoptr(BgSshTarget) target = NULL;
  g_auto(GStrv) ssh = NULL;

  if (!bg_cli_parse (cli, &(BgUsage) { "NAME [-- COMMAND [ARG…]]", 1, -1,
                     "Open a shell in a VM, or run a command there, over SSH with the pinned host key.\n\n"
                     "The remote command's exit status is banger's.", NULL }, &argc, &argv, error) ||
      !bg_name_validate ("NAME", argv[1], error))
    return FALSE;
  if ((config = bg_config_load_default (error)) == NULL || (r = load_running (argv[1], error)) == NULL)
    return FALSE;
  /* An image without sshd would only time out: its agent says so at
   * once. A guest without an agent gets ssh as before. */
  {
    g_autoptr(BgAgentClient) client = bg_agent_client_connect (r->vsock_socket ? r->vsock_socket : "",
                                                               BG_AGENT_VSOCK_PORT, 2000, NULL);
    guint32 up = 0;
    gboolean answered = client && bg_agent_client_ready (client, 0, 0, &up, NULL);

    if (answered && !(up & BG_AGENT_HAS_SSHD))
      {
        g_set_error (error, BG_ERROR, BG_ERROR_NOT_SUPPORTED,
                     "VM %s's image has no sshd; use 'banger vm exec -it %s -- COMMAND' (e.g. -- sh) instead",
                     r->name, r->name);
        return FALSE;
      }
    /* No agent answered: what the image's record says, read off its
     * root at import (an image imported before says nothing). */
    if (!answered && r->image != NULL)
      {
        g_autofree char *images = bg_paths_images_dir ();
        g_autoptr(BgImage) image = bg_image_load (images, r->image, NULL);

        if (image != NULL && image->sshd_known && !image->has_sshd)
          {
            g_set_error (error, BG_ERROR, BG_ERROR_NOT_SUPPORTED,
                         "VM %s's image %s has no sshd; use 'banger vm exec -it %s -- COMMAND' (e.g. -- sh) "
                         "instead, once its guest agent answers", r->name, r->image, r->name);
            return FALSE;
          }
      }
  }
  target = bg_ssh_target_new (r, config);
  ssh = bg_ssh_build_argv (target, (const char * const *) argv + 2, FALSE);
  if (!bg_programs_require ((const char * const[]) { "ssh", NULL }, "vm ssh", error))
    return FALSE;
  /* exec: ssh's exit status becomes ours. */
  execv (ssh[0], ssh);
  g_set_error (error, BG_ERROR, BG_ERROR_NOT_SUPPORTED, "cannot run %s: %s", ssh[0], g_strerror (errno));
  return FALSE;
}

static gboolean
cmd_ssh_config (BgCli *cli, int argc, char **argv, GError **error)
{
  g_autoptr(BgConfig) config = NULL;
  g_autoptr(BgStateStore) store = bg_state_store_new_default ();
  g_autoptr(GPtrArray) records = NULL;

  if (!bg_cli_parse (cli, &(BgUsage) { "[NAME]", 0, 1,
                     "Print ssh_config Host blocks for your VMs, for ssh, scp, rsync and editors.\n\n"
                     "  banger vm ssh-config >> ~/.ssh/config   then   ssh NAME.banger",
                     NULL }, &argc, &argv, error) ||
      (argc == 2 && !bg_name_validate ("NAME", argv[1], error)))
    return FALSE;
  if ((config = bg_config_load_default (error)) == NULL || (records = bg_state_store_list (store, NULL, error)) == NULL)
    return FALSE;
  if (argc == 2)
    {
      BgVmRecord *r = bg_state_store_load (store, argv[1], error);
      if (r == NULL)
        return FALSE;
      g_ptr_array_set_size (records, 0);
      g_ptr_array_add (records, r);
    }
  for (guint i = 0; i < records->len; i++)
    {
      BgVmRecord *r = records->pdata[i];
      g_autoptr(BgSshTarget) target = NULL;
      g_autofree char *block = NULL;

      if (r->address == NULL)
        continue;
      target = bg_ssh_target_new (r, config);
      block = bg_ssh_config_block (r->name, target);
      g_print ("%s%s", i ? "\n" : "", block);
    }
  return TRUE;
}

static gboolean
cmd_sync (BgCli *cli, int argc, char **argv, GError **error)
{
  g_autoptr(BgConfig) config = NULL;
  g_autoptr(BgVmRecord) r = NULL;
  g_autoptr(GPtrArray) files = NULL;
  g_autoptr(GSubprocessLauncher) ssh_l = NULL;
  g_autoptr(GSubprocess) ssh = NULL;
  g_autoptr(GOutputStream) to_ssh = NULL;
  g_autoptr(GError) local = NULL;
  g_autoptr(BgSshTarget) target = NULL;
  g_auto(GStrv) ssh_argv = NULL;
  const char *remote[] = { "tar", "-x", "-C", "~", "--no-same-owner", NULL };
  void (*old_pipe) (int);
  gboolean wrote;
  int fds[2];

  if (!parse_name (cli, &argc, &argv,
                   "Copy the files listed in [sync] paths of banger.conf into the VM's home, over SSH.\n\n"
                   "Only files below your home are sent, after resolving symlinks.", NULL, error))
    return FALSE;
  if (!bg_programs_require ((const char * const[]) { "ssh", NULL }, "vm sync", error) ||
      (config = bg_config_load_default (error)) == NULL || (r = load_running (argv[1], error)) == NULL)
    return FALSE;
  files = bg_sync_resolve_config (config, error);
  if (files == NULL)
    return FALSE;
  if (files->len == 0)
    {
      g_print ("Nothing to sync: [sync] paths in banger.conf is empty.\n");
      return TRUE;
    }

  /* The tar stream is written here, each file read through the
   * descriptor its check opened (bg_sync_write_tar), and extracted by
   * the guest's tar. */
  target = bg_ssh_target_new (r, config);
  ssh_argv = bg_ssh_build_argv (target, remote, TRUE);
  if (!g_unix_open_pipe (fds, FD_CLOEXEC, error))
    return FALSE;
  ssh_l = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_subprocess_launcher_take_stdin_fd (ssh_l, fds[0]);
  ssh = g_subprocess_launcher_spawnv (ssh_l, (const char * const *) ssh_argv, error);
  to_ssh = g_unix_output_stream_new (fds[1], TRUE);
  if (ssh == NULL)
    return FALSE;
  /* ssh going away must end the write with an error, not the process. */
  old_pipe = signal (SIGPIPE, SIG_IGN);
  wrote = bg_sync_write_tar (files, to_ssh, &local);
  g_output_stream_close (to_ssh, NULL, NULL);
  signal (SIGPIPE, old_pipe);
  if (!g_subprocess_wait_check (ssh, NULL, error) || !wrote)
    {
      if (!wrote && (error == NULL || *error == NULL))
        g_propagate_error (error, g_steal_pointer (&local));
      g_prefix_error (error, "sync to %s failed: ", r->name);
      return FALSE;
    }
  return bg_cli_done (cli, g_variant_new_parsed ("{'vm': <%s>, 'synced': <%u>}", r->name, files->len),
                      "Synced %u file%s to %s.", files->len, files->len == 1 ? "" : "s", r->name);
}

const BgCommand bg_vm_commands[] = {
  BG_COMMAND_HEADING ("Make, find and remove VMs"),
  { "up", "Create and start a VM, or start it again", cmd_up },
  { "ls", "List your VMs", cmd_ls },
  { "show", "Show a VM's details", cmd_show },
  { "rm", "Remove a VM and everything it has", cmd_rm },
  BG_COMMAND_HEADING ("Run them"),
  { "stop", "Stop a VM", cmd_stop },
  { "start", "Start a stopped VM", cmd_start },
  { "restart", "Stop and start a VM", cmd_restart },
  { "pause", "Pause a VM", cmd_pause },
  { "resume", "Resume a paused VM", cmd_resume },
  BG_COMMAND_HEADING ("Work in them"),
  { "exec", "Run a command in a VM through its guest agent", cmd_exec },
  { "ssh", "Open a shell or run a command in a VM", cmd_ssh },
  { "cp", "Copy files between the host and a VM", bg_vm_cmd_cp },
  { "sync", "Copy your [sync] files into the VM", cmd_sync },
  { "logs", "Print a VM's console log", cmd_logs },
  BG_COMMAND_HEADING ("Reach them from the host"),
  { "ssh-config", "Print ssh_config blocks for your VMs", cmd_ssh_config },
  { "forward", "Relay host ports (localhost) to a VM", bg_vm_cmd_forward },
  { NULL }
};
