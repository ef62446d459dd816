/* bg-vm.c: the VM lifecycle, orchestrated in the CLI's own process.
 *
 * vm up, a new VM: record it ("creating", naming its tap) -> while a
 * thread makes the disk: the keys and the config drive, for the network
 * guessed from the one banger last learned (bg-vm-network.c) -> LaunchVm
 * (the tap made with that address, sockets handed over) -> configure
 * over the API -> InstanceStart, while a thread pins the host key at
 * the address LaunchVm confirmed -> record it running -> wait until SSH
 * answers with the pinned key. One privileged call; two for the first VM
 * (nothing to guess from: CreateTap first says the network), and a second
 * launch when the guess was wrong.
 * vm start, an existing VM: LaunchVm alone, which makes the VM's tap
 * again if it vanished (a reboot), asking for the address it had. One
 * privileged call, unless the network changed under the VM; then its
 * config drive is written again and the launch redone.
 *
 * Each step that creates something pushes its undo; a failure or Ctrl-C
 * runs them in reverse, so a failed command leaves nothing. Every change
 * to a record is made under the state store's lock.
 *
 * bg-vm-launch.c launches and configures the VMM; bg-vm-control.c stops,
 * removes and pauses VMs that exist.
 */
#include <signal.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include "bg-agent-proto.h"
#include "bg-auth.h"
#include "bg-build.h"
#include "bg-cli.h"
#include "bg-client.h"
#include "bg-disk.h"
#include "bg-disk-vm.h"
#include "bg-error.h"
#include "bg-file.h"
#include "bg-forward.h"
#include "bg-image.h"
#include "bg-names.h"
#include "bg-netconf.h"
#include "bg-paths.h"
#include "bg-progress.h"
#include "bg-ready.h"
#include "bg-spawn.h"
#include "bg-ssh.h"
#include "bg-undo.h"
#include "bg-vm.h"
#include "bg-vm-control.h"
#include "bg-vm-launch.h"
#include "bg-vm-network.h"


static void
on_interrupt (int sig)
{
  bg_interrupted = 1;
}

/* ---- undo ---- */

static void
undo_delete_tap (gpointer tap)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) r = bg_client_call ("DeleteTap", g_variant_new ("(s)", (char *) tap), NULL, &error);
  if (r == NULL && !g_error_matches (error, BG_ERROR, BG_ERROR_NOT_FOUND))
    bg_cli_warn ("could not delete tap %s: %s", (char *) tap, error->message);
}

static void
undo_remove_dir (gpointer dir)
{
  bg_file_remove_tree (dir, NULL);
}

static void
undo_delete_record (gpointer name)
{
  g_autoptr(BgStateStore) store = bg_state_store_new_default ();
  bg_state_store_delete (store, name, NULL);
}
/* ---- the record, changed only under the store's lock ---- */

static BgVmRecord *
create_record (BgVmRecord  *current,
               gpointer     data,
               GError     **error)
{
  BgVmRecord *r = data;

  if (current != NULL)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_EXISTS, "a VM named %s appeared meanwhile", r->name);
      return NULL;
    }
  return bg_vm_record_copy (r);
}

/* Everything this run learned about the VM (its network, sockets,
 * state), over what the file holds now. */
static BgVmRecord *
replace_record (BgVmRecord  *current,
                gpointer     data,
                GError     **error)
{
  BgVmRecord *r = bg_vm_record_copy (data);

  if (current == NULL)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_NOT_FOUND, "VM %s was removed meanwhile", r->name);
      bg_vm_record_free (r);
      return NULL;
    }
  r->generation = current->generation;
  return r;
}

static gboolean
save_record (BgStateStore  *store,
             BgVmRecord    *r,
             GError       **error)
{
  return bg_state_store_update (store, r->name, replace_record, r, error);
}

/* ---- a new VM ---- */

/* What a new VM needs that owes nothing to the mechanism nor to its
 * address: its disk. It is made in a thread while the main thread makes
 * the keys and the config drive (and, for the first VM, waits on
 * CreateTap). The thread is stopped by its own cancellable, which only
 * the main thread cancels (on Ctrl-C, which only the main thread hears,
 * or on a failure of its own). */
typedef struct {
  BgImage      *image;
  BgDiskMode    mode;
  guint64       bytes;
  const char   *dir;
  GCancellable *cancellable;
  GMutex        lock;
  GCond         cond;
  gboolean      done;
  BgDiskMode    used;
  char         *reason;
  GError       *error;
} LocalWork;

static gpointer
local_work_run (gpointer data)
{
  LocalWork *w = data;

  bg_cli_block_interrupts ();
  /* Not synced here: make_new_vm adds the disk to its fsync batch. */
  bg_disk_vm_make_full (w->image, w->dir, w->mode, w->bytes, BG_FILE_NO_SYNC, &w->used, &w->reason,
                        w->cancellable, &w->error);
  g_mutex_lock (&w->lock);
  w->done = TRUE;
  g_cond_signal (&w->cond);
  g_mutex_unlock (&w->lock);
  return NULL;
}

/* Waits for the thread and joins it, once, passing Ctrl-C on to it. */
static void
local_work_wait (GThread   **thread,
                 LocalWork  *w)
{
  if (*thread == NULL)
    return;
  g_mutex_lock (&w->lock);
  while (!w->done)
    {
      if (bg_interrupted)
        g_cancellable_cancel (w->cancellable);
      g_cond_wait_until (&w->cond, &w->lock, g_get_monotonic_time () + 50 * G_TIME_SPAN_MILLISECOND);
    }
  g_mutex_unlock (&w->lock);
  g_thread_join (g_steal_pointer (thread));
}

/* As local_work_wait; its error only if there is none already. */
static gboolean
local_work_join (GThread   **thread,
                 LocalWork  *w,
                 GError    **error)
{
  local_work_wait (thread, w);
  if (w->error == NULL)
    return TRUE;
  if (error != NULL && *error == NULL)
    g_propagate_error (error, g_steal_pointer (&w->error));
  else
    g_clear_error (&w->error);
  return FALSE;
}

static gboolean
make_new_vm (BgStateStore *store,
             BgVmRecord   *r,
             BgConfig     *config,
             BgImage      *image,
             const char   *dir,
             gboolean      guessed,
             BgFsyncBatch *later,
             BgProgress   *p,
             BgUndo       *undo,
             GError      **error)
{
  g_autoptr(GVariant) reply = NULL, info = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  LocalWork work = { image, config->disk_mode, r->disk_bytes, dir, cancellable };
  g_autoptr(GThread) thread = NULL;
  gboolean ok = FALSE;

  g_mutex_init (&work.lock);
  g_cond_init (&work.cond);

  /* Every return below joins it first: the undo stack removes the
   * directory it writes into. */
  thread = g_thread_new ("banger-local", local_work_run, &work);

  /* The tap is named in the record from the start (its name is the
   * user's and the VM's), so whoever makes it, CreateTap here or LaunchVm
   * from the guess, a kill at any later step leaves a record that names
   * it for cleanup. Its undo is pushed once a call may have made it: a
   * failure before asks the mechanism nothing. */
  if (!guessed)
    {
      bg_progress_step (p, "setting up the network");
      bg_cli_test_hook ("tap");
      reply = bg_client_call ("CreateTap", g_variant_new ("(s@a{sv})", r->name,
                                                          g_variant_new_array (G_VARIANT_TYPE ("{sv}"), NULL, 0)),
                              NULL, error);
      if (reply == NULL)
        goto out;
      info = g_variant_get_child_value (reply, 0);
      bg_vm_take_network (r, info);
      bg_undo_push (undo, undo_delete_tap, g_strdup (r->tap), g_free);
      /* The address, which the key is pinned with next, is recorded
       * first: a kill after the pin leaves a record that names it. Not
       * durable (no wait for the directory's sync): a power loss takes
       * the tap with it, and the record this one replaces, "creating" as
       * well, names the rest. */
      if (!bg_state_store_update_full (store, r->name, replace_record, r, BG_STATE_WRITE_CONSISTENT, error) ||
          !bg_cli_check_interrupt (error))
        goto out;
    }

  /* While the thread makes the disk. The VM's own files reach the disk
   * while it is launched (@later); the record that says it exists waits
   * for them. A guessed address is pinned only once LaunchVm has said it
   * is the VM's (bg_vm_launch): a pin drops every line naming its
   * address, and a guess may name another VM's, made meanwhile. */
  bg_progress_step (p, "pinning keys and writing the config drive");
  bg_cli_test_hook ("keys");
  if (!bg_ssh_ensure_client_key (config->ssh_key, error) ||
      (!guessed && !bg_vm_pin_host_key (r, dir, undo, later, error)) ||
      !bg_vm_write_config_drive (r, config, dir, later, error) ||
      !bg_cli_check_interrupt (error))
    goto out;

  /* This step waits for what is left of it. */
  bg_progress_step (p, "making the root disk");
  bg_cli_test_hook ("disk");
  if (!local_work_join (&thread, &work, error))
    goto out;
  g_free (r->disk_mode);
  r->disk_mode = g_strdup (bg_config_disk_mode_to_string (work.used));
  g_free (r->disk_reason);
  r->disk_reason = g_steal_pointer (&work.reason);
  ok = bg_cli_check_interrupt (error);
  if (ok)
    {
      /* The VM's disk is synced with its other files, while it is
       * launched, not before: a layered VM's (a formatted copy, or
       * blank), and a reflinked or copied one, which nothing synced.
       * It and the config drive first: LaunchVm puts both on loop
       * devices, whose setup syncs them in the mechanism too. */
      g_autofree char *disk = g_build_filename (dir, work.used == BG_DISK_MODE_LAYERED ? "upper.img" : "disk.ext4",
                                                NULL);
      g_autofree char *drive = g_build_filename (dir, "cidata.img", NULL);

      bg_fsync_batch_add_first (later, drive);
      bg_fsync_batch_add_first (later, disk);
      bg_fsync_batch_start (later);
    }

out:
  if (!ok && thread != NULL && error != NULL && g_error_matches (*error, G_FILE_ERROR, G_FILE_ERROR_NOSPC))
    {
      /* Out of space writing the record while the disk is copied into
       * the same directory: the copy's error, which says what to do, is
       * the one to show. It fails on its next write, so it is waited
       * for, not stopped. */
      local_work_wait (&thread, &work);
      if (work.error != NULL)
        {
          g_clear_error (error);
          g_propagate_error (error, g_steal_pointer (&work.error));
        }
    }
  if (!ok)
    {
      /* Stops a disk copy still running. */
      g_cancellable_cancel (cancellable);
      local_work_join (&thread, &work, error);
    }
  else if (!local_work_join (&thread, &work, error))
    ok = FALSE;
  g_free (work.reason);
  g_mutex_clear (&work.lock);
  g_cond_clear (&work.cond);
  return ok;
}
/* ---- vm up ---- */

/* Starts the forwards recorded with vm up --forward, in the background;
 * a forward that cannot start is a warning, the VM runs all the same. */
static void
start_recorded_forwards (BgVmRecord *r)
{
  g_autoptr(GError) error = NULL;
  GPid pid = 0;

  if (r->forwards == NULL || r->forwards[0] == NULL)
    return;
  bg_forward_stop_processes (r->name, NULL, NULL);
  bg_forward_spec_warn_exposed ((const char * const *) r->forwards, r->name);
  if (!bg_forward_spawn_background (r->name, r->forwards, TRUE, FALSE, &pid, &error))
    bg_cli_warn ("%s runs, but its forwards do not: %s", r->name, error->message);
}

static void
print_summary (BgCli      *cli,
               BgVmRecord *r,
               gboolean    waited,
               guint32     agent_up)
{
  g_autofree char *alias = bg_ssh_alias (r);
  gboolean no_sshd = agent_up != 0 && !(agent_up & BG_AGENT_HAS_SSHD);

  if (cli->json)
    {
      g_autoptr(JsonNode) node = bg_vm_record_to_json (r);
      bg_cli_print_json (node);
      return;
    }
  g_print ("VM %s is %s.\n", r->name,
           !waited ? "started" : agent_up == 0 ? "up and answering SSH" :
           no_sshd ? "up (its guest agent answers; the image has no sshd)" : "up (its guest agent and sshd answer)");
  g_print ("  address:  %s (%s)\n", r->address, alias);
  if (r->address6 != NULL)
    g_print ("  ipv6:     %s\n", r->address6);
  if (no_sshd)
    g_print ("  shell:    banger vm exec -it %s -- sh\n", r->name);
  else
    g_print ("  shell:    banger vm ssh %s\n", r->name);
}

static gboolean
wait_ready (BgVmRecord  *r,
            BgConfig    *config,
            const char  *dir,
            guint        timeout_s,
            guint32     *agent_up,
            GError     **error)
{
  g_autoptr(BgSshTarget) target = bg_ssh_target_new (r, config);
  g_autofree char *console = g_build_filename (dir, "console.log", NULL);
  const char *cmd[] = { "true", NULL };
  g_auto(GStrv) argv = bg_ssh_build_argv (target, cmd, TRUE);

  return bg_guest_wait_ready (r->address, 22, (const char * const *) argv, r->vsock_socket, timeout_s * 1000,
                              console, agent_up, error);
}

static char *
generate_name (BgStateStore *store)
{
  for (;;)
    {
      g_autofree char *name = g_strdup_printf ("vm-%04x", g_random_int_range (0, 0x10000));
      g_autofree char *dir = g_build_filename (bg_state_store_get_dir (store), name, NULL);

      /* Not one whose directory is there without a record to read (a
       * leftover for `system cleanup`). */
      if (!g_file_test (dir, G_FILE_TEST_EXISTS))
        return g_steal_pointer (&name);
    }
}

/* The image for a new VM, built first (after saying so) when it is the
 * default one and missing. Building takes minutes, so whether polkit
 * will let this user run VMs at all, and whether this host can build,
 * is known before it starts. */
static BgImage *
find_image (BgCli        *cli,
            BgConfig     *config,
            const char   *name,
            gboolean      is_default,
            GError      **error)
{
  g_autofree char *images = bg_paths_images_dir ();
  g_autoptr(GError) local = NULL;
  BgImage *image = bg_image_load (images, name, &local);
  BgBuildOptions b = { "bookworm", NULL, NULL, G_GUINT64_CONSTANT (2) << 30 };
  static const char * const actions[] = { "org.banger.network", "org.banger.vm", NULL };
  BgProgress progress;

  if (image != NULL || !is_default || !g_error_matches (local, BG_ERROR, BG_ERROR_NOT_FOUND))
    {
      if (image == NULL)
        g_propagate_error (error, g_steal_pointer (&local));
      return image;
    }
  if (!bg_auth_precheck (actions, error) || !bg_build_check_host (&b, error))
    {
      g_prefix_error (error, "there is no image \"%s\" yet, and banger did not build it: ", name);
      return NULL;
    }
  if (!cli->json)
    g_printerr ("banger: there is no image \"%s\" yet; building it now with 'banger image build %s' "
                "(Debian bookworm, a few minutes, once)\n", name, name);
  bg_progress_init (&progress, cli, name);
  image = bg_image_build (images, name, &b, &progress, error);
  bg_progress_done (&progress);
  bg_progress_clear (&progress);
  return image;
}

static gboolean
up (BgCli        *cli,
    BgConfig     *config,
    BgUpOptions  *o,
    GError      **error)
{
  g_autoptr(BgStateStore) store = bg_state_store_new_default ();
  g_autoptr(BgVmRecord) r = NULL;
  g_autoptr(BgImage) image = NULL;
  g_autoptr(BgUndo) undo = bg_undo_new ();
  g_autoptr(GError) local = NULL;
  g_autoptr(GVariant) paths = NULL;
  g_autoptr(BgFsyncBatch) later = NULL;
  /* A guessed VM's pin, made while it is configured: @undo's, which
   * waits for it before anything is removed. */
  BgVmPinAhead *pin = NULL;
  g_autofree char *name = NULL, *dir = NULL;
  const char *verb = o->verb ? o->verb : "up";
  struct sigaction sa = { .sa_handler = on_interrupt }, old_int, old_term;
  guint32 agent_up = 0;
  BgProgress p;
  gboolean existing = FALSE, guessed = FALSE, ok = FALSE;

  name = o->name ? g_strdup (o->name) : generate_name (store);
  if (!bg_name_validate ("NAME", name, error))
    return FALSE;
  dir = bg_paths_vm_dir (name);

  r = bg_state_store_load (store, name, &local);
  if (r == NULL && !g_error_matches (local, BG_ERROR, BG_ERROR_NOT_FOUND))
    {
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  if (r != NULL)
    {
      BgVmState state = bg_vm_probe_state (r);

      if (bg_vm_state_is_live (state))
        {
          print_summary (cli, r, FALSE, 0);
          return TRUE;
        }
      if (state == BG_VM_CREATING)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_BUSY,
                       "VM %s was being created when a banger run stopped; run 'banger system cleanup' "
                       "(or 'banger vm rm %s') first", name, name);
          return FALSE;
        }
      existing = TRUE;
    }

  image = find_image (cli, config, existing ? r->image : (o->image ? o->image : config->image),
                      !existing && o->image == NULL, error);
  if (image == NULL)
    return FALSE;
  {
    g_autofree char *what = g_strdup_printf ("vm %s", verb);
    if (!bg_programs_require ((const char * const[]) { "resize2fs", o->no_wait ? NULL : "ssh", NULL },
                              what, error))
      return FALSE;
  }
  sigemptyset (&sa.sa_mask);
  sigaction (SIGINT, &sa, &old_int);
  sigaction (SIGTERM, &sa, &old_term);
  bg_interrupted = 0;
  bg_progress_init (&p, cli, name);

  if (!existing)
    {
      p.steps = 6;
      r = bg_vm_record_new (name);
      r->state = BG_VM_CREATING;
      r->image = g_strdup (image->name);
      r->cpus = o->cpus > 0 ? (guint) o->cpus : config->cpus;
      r->memory_mib = o->memory_mib > 0 ? (guint) o->memory_mib : config->memory_mib;
      r->disk_bytes = MAX (o->disk_bytes > 0 ? o->disk_bytes : config->disk_bytes, image->rootfs_bytes);
      r->guest_user = g_strdup (config->guest_user);
      r->tap = bg_net_tap_name (getuid (), name);
      /* Recorded first, as "creating": a crash from here on leaves
       * something 'system cleanup' recognizes. It names the tap, and no
       * address until one is the VM's. Not synced (~0.9 ms saved on
       * every new VM): a power loss before the record that says the VM
       * runs (which is) takes the VM's tap and VMM with it, and leaves
       * this directory with no record, an empty one or NUL bytes, which
       * cleanup finds as surely as a "creating" one. */
      if (!bg_paths_mkdir_private (dir, error) ||
          !bg_state_store_update_full (store, name, create_record, r, BG_STATE_WRITE_UNSYNCED, error))
        goto out;
      bg_undo_push (undo, undo_remove_dir, g_strdup (dir), g_free);
      bg_undo_push (undo, undo_delete_record, g_strdup (name), g_free);
      if ((guessed = bg_vm_network_guess (store, r)))
        p.steps--;
      later = bg_fsync_batch_new ();
      if (!make_new_vm (store, r, config, image, dir, guessed, later, &p, undo, error))
        goto rollback;
    }
  else
    p.steps = 3;
  if (!o->no_wait)
    p.steps++;
  if (o->forwards != NULL)
    {
      g_strfreev (r->forwards);
      r->forwards = g_strdupv (o->forwards);
    }

  /* LaunchVm makes a guessed VM's tap: undone from here. */
  if (guessed)
    bg_undo_push (undo, undo_delete_tap, g_strdup (r->tap), g_free);
  if (!bg_vm_launch (r, image, config, dir, guessed, &p, undo, &pin, &paths, error) ||
      !bg_vm_configure_and_start (r, image, paths, &p, error))
    goto rollback;

  /* The record that says the VM runs waits for what it depends on: its
   * pin and its own files on the disk. */
  r->state = BG_VM_RUNNING;
  r->started_at = g_get_real_time () / G_USEC_PER_SEC;
  if (!bg_vm_finish_pin (pin, error) || (later != NULL && !bg_fsync_batch_finish (later, error)) ||
      !save_record (store, r, error))
    goto rollback;
  bg_cli_test_hook ("saved");
  /* From here the VM exists, whatever readiness says. */
  bg_undo_forget (undo);
  pin = NULL;
  bg_vm_network_remember (r);
  start_recorded_forwards (r);

  if (!o->no_wait)
    {
      bg_progress_step (&p, "waiting for the guest");
      if (!wait_ready (r, config, dir, o->ready_timeout_s, &agent_up, error))
        {
          bg_progress_done (&p);
          g_prefix_error (error, "VM %s is running but not reachable: ", name);
          goto out;
        }
    }
  bg_progress_done (&p);
  print_summary (cli, r, !o->no_wait, agent_up);
  ok = TRUE;
  goto out;

rollback:
  bg_progress_done (&p);
  g_prefix_error (error, "vm %s %s at step %d/%d (%s); everything this run created was removed: ",
                  verb, bg_interrupted ? "interrupted" : "failed", p.step, p.steps, name);
  /* Nothing syncs what the undo removes. */
  g_clear_pointer (&later, bg_fsync_batch_free);
  bg_undo_run (undo);
  if (existing)
    bg_vm_mark_stopped (store, name, NULL);
out:
  sigaction (SIGINT, &old_int, NULL);
  sigaction (SIGTERM, &old_term, NULL);
  bg_progress_clear (&p);
  return ok;
}

/* The bus is reached, and a mechanism not running started, while the
 * record, the image and the disk are read and made: the connection was
 * still being made when LaunchVm needed it. Its callers start it sooner
 * still, once their arguments are checked. Every path ends in
 * bg_client_shutdown, those that call nothing (the VM runs already, an
 * error first) too: the thread is never left running at exit. */
gboolean
bg_vm_up (BgCli        *cli,
          BgConfig     *config,
          BgUpOptions  *o,
          GError      **error)
{
  gboolean ok;

  bg_client_connect_ahead ();
  ok = up (cli, config, o, error);
  bg_client_shutdown ();
  return ok;
}
