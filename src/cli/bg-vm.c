/* bg-vm.c: the VM lifecycle, orchestrated in the CLI's own process.
 *
 * vm up, a new VM: record it ("creating") -> CreateTap (the network, made
 * or repaired, and the VM's address) while a thread makes the disk and
 * keys -> config drive -> LaunchVm (sockets handed over) -> configure over
 * the API -> InstanceStart -> record it running -> wait until SSH answers
 * with the pinned key. Two privileged calls.
 * vm start, an existing VM: LaunchVm alone, which makes the VM's tap
 * again if it vanished (a reboot), asking for the address it had. One
 * privileged call, unless the network changed under the VM; then its
 * config drive is written again and the launch redone.
 *
 * Each step that creates something pushes its undo; a failure or Ctrl-C
 * runs them in reverse, so a failed command leaves nothing. Every change
 * to a record is made under the state store's lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <gio/gunixfdlist.h>
#include <glib/gstdio.h>

#include "bg-auth.h"
#include "bg-build.h"
#include "bg-client.h"
#include "bg-disk.h"
#include "bg-drive.h"
#include "bg-error.h"
#include "bg-fc-client.h"
#include "bg-file.h"
#include "bg-image.h"
#include "bg-names.h"
#include "bg-netconf.h"
#include "bg-paths.h"
#include "bg-progress.h"
#include "bg-ready.h"
#include "bg-spawn.h"
#include "bg-ssh.h"
#include "bg-sync.h"
#include "bg-undo.h"
#include "bg-vm.h"

#define DEFAULT_BOOT_ARGS "console=ttyS0 reboot=k panic=1 pci=off"
/* The VM's own disk is the root; or (layered) the image, shared and
 * read-only, is, and banger-init lays the VM's disk (the third drive)
 * over it before systemd starts. */
#define ROOT_ARGS "root=/dev/vda rw"
#define LAYERED_ARGS "root=/dev/vda ro init=/usr/libexec/banger/banger-init banger.upper=/dev/vdc"
#define STOP_TIMEOUT_S 30

char *
bg_vm_dir (const char *name)
{
  g_autofree char *vms = bg_paths_vms_dir ();
  return g_build_filename (vms, name, NULL);
}

/* Test builds only: BANGER_TEST_PAUSE_AT=<step> stops the process there,
 * so a test can kill it at exactly that step. */
static void
test_hook (const char *step)
{
#ifdef BG_TEST_HOOKS
  if (g_strcmp0 (g_getenv ("BANGER_TEST_PAUSE_AT"), step) == 0)
    {
      g_printerr ("banger: paused at %s\n", step);
      raise (SIGSTOP);
    }
#endif
}

static void
on_interrupt (int sig)
{
  bg_interrupted = 1;
}

static gboolean
check_interrupt (GError **error)
{
  if (!bg_interrupted)
    return TRUE;
  g_set_error_literal (error, BG_ERROR, BG_ERROR_FAILED, "interrupted");
  return FALSE;
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
undo_kill_vm (gpointer name)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) r = bg_client_call ("KillVm", g_variant_new ("(s)", (char *) name), NULL, &error);
  if (r == NULL && !g_error_matches (error, BG_ERROR, BG_ERROR_NOT_FOUND))
    bg_cli_warn ("could not stop VM %s: %s", (char *) name, error->message);
}

static void
undo_remove_dir (gpointer dir)
{
  bg_file_remove_tree (dir, NULL);
}

typedef struct {
  char *alias;
  char *address;
} KnownHost;

static void
known_host_free (KnownHost *k)
{
  g_free (k->alias);
  g_free (k->address);
  g_free (k);
}

static void
undo_known_host (gpointer data)
{
  KnownHost *k = data;
  g_autofree char *kh = bg_known_hosts_path ();
  bg_known_hosts_remove (kh, k->alias, k->address, NULL);
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

static BgVmRecord *
set_stopped (BgVmRecord  *current,
             gpointer     data,
             GError     **error)
{
  if (current == NULL)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_NOT_FOUND, "VM %s was removed meanwhile", (char *) data);
      return NULL;
    }
  current->state = BG_VM_STOPPED;
  current->started_at = 0;
  current->pid = 0;
  g_clear_pointer (&current->api_socket, g_free);
  g_clear_pointer (&current->vsock_socket, g_free);
  return current;
}

static gboolean
mark_stopped (BgStateStore  *store,
              const char    *name,
              GError       **error)
{
  return bg_state_store_update (store, name, set_stopped, (gpointer) name, error);
}

/* ---- reality ---- */

/* What the VM really is: the VMM's own answer when its API socket
 * answers; crashed when the record says it runs but nothing answers. */
BgVmState
bg_vm_probe_state (BgVmRecord *r)
{
  g_autoptr(BgFcClient) fc = NULL;
  g_autofree char *state = NULL;

  if (r->state != BG_VM_RUNNING && r->state != BG_VM_PAUSED)
    return r->state;
  if (r->api_socket == NULL)
    return BG_VM_CRASHED;
  fc = bg_fc_client_new (r->api_socket);
  state = bg_fc_get_state (fc, NULL);
  if (state == NULL)
    return BG_VM_CRASHED;
  if (g_str_equal (state, "Paused"))
    return BG_VM_PAUSED;
  if (g_str_equal (state, "Running"))
    return BG_VM_RUNNING;
  return BG_VM_STARTING;
}

static gboolean
is_live (BgVmState state)
{
  return state == BG_VM_RUNNING || state == BG_VM_PAUSED || state == BG_VM_STARTING;
}

/* ---- the guest's configuration ---- */

static char *
vm_alias (BgVmRecord *r)
{
  return g_strdup_printf ("%s.%s", r->name, r->domain ? r->domain : "banger");
}

/* The VM's network, as the mechanism answered it (CreateTap, or LaunchVm's
 * "network"), into the record. */
static void
take_network (BgVmRecord *r,
              GVariant   *info)
{
  const char *s;
  guint32 ip;

  if (g_variant_lookup (info, "tap", "&s", &s))
    g_free (r->tap), r->tap = g_strdup (s);
  if (g_variant_lookup (info, "address", "&s", &s))
    g_free (r->address), r->address = g_strdup (s);
  if (g_variant_lookup (info, "gateway", "&s", &s))
    g_free (r->gateway), r->gateway = g_strdup (s);
  if (g_variant_lookup (info, "mac", "&s", &s))
    g_free (r->mac), r->mac = g_strdup (s);
  if (g_variant_lookup (info, "domain", "&s", &s))
    g_free (r->domain), r->domain = g_strdup (s);
  g_variant_lookup (info, "prefix", "u", &r->prefix);
  g_strfreev (r->dns);
  r->dns = NULL;
  g_variant_lookup (info, "dns", "^as", &r->dns);
  if (bg_ip_parse (r->address, &ip))
    r->cid = 3 + (ip & 0xffffff);
}

/* Whether the config drive, written from @before, still says what the
 * network now is (@after). */
static gboolean
same_network (BgVmRecord *before,
              BgVmRecord *after)
{
  return g_strcmp0 (before->address, after->address) == 0 && g_strcmp0 (before->gateway, after->gateway) == 0 &&
         before->prefix == after->prefix && g_strcmp0 (before->domain, after->domain) == 0 &&
         g_strv_equal ((const char * const *) (before->dns ? before->dns : (char *[]) { NULL }),
                       (const char * const *) (after->dns ? after->dns : (char *[]) { NULL }));
}

/* The config drive, from the record and the keys (the VM's host key is
 * made once, then reused: it stays pinned). Synced files are read now. */
static gboolean
write_config_drive (BgVmRecord  *r,
                    BgConfig    *config,
                    const char  *dir,
                    GError     **error)
{
  g_autoptr(BgGuestConfig) guest = g_new0 (BgGuestConfig, 1);
  g_autoptr(GPtrArray) files = NULL;
  g_autoptr(GPtrArray) skipped = NULL;
  g_autoptr(GStrvBuilder) keys = g_strv_builder_new ();
  g_autofree char *cidata = g_build_filename (dir, "cidata.img", NULL);
  g_autofree char *client = NULL;

  if ((client = bg_ssh_read_public_key (config->ssh_key, error)) == NULL)
    return FALSE;
  g_strv_builder_add (keys, client);
  for (guint i = 0; config->authorized_keys[i]; i++)
    {
      g_autofree char *text = NULL;
      if (!g_file_get_contents (config->authorized_keys[i], &text, NULL, error))
        return FALSE;
      g_strv_builder_add (keys, g_strstrip (text));
    }
  if (!bg_ssh_generate_host_key (dir, &guest->host_key_private, &guest->host_key_public, error))
    return FALSE;
  files = bg_sync_resolve (g_get_home_dir (), config->sync_paths, config->sync_limit, &skipped, error);
  if (files == NULL)
    return FALSE;
  for (guint i = 0; i < skipped->len; i++)
    bg_cli_warn ("not syncing %s", (char *) skipped->pdata[i]);
  guest->name = g_strdup (r->name);
  guest->domain = g_strdup (r->domain);
  guest->user = g_strdup (r->guest_user);
  guest->address = g_strdup (r->address);
  guest->prefix = r->prefix;
  guest->gateway = g_strdup (r->gateway);
  guest->mac = g_strdup (r->mac);
  guest->dns = g_strdupv (r->dns);
  guest->authorized_keys = g_strv_builder_end (keys);
  guest->instance_id = g_strdup_printf ("banger-%s-%" G_GINT64_FORMAT, r->name, r->created_at);
  return bg_config_drive_build (guest, files, cidata, error);
}

/* Pins the VM's host key under its name and address. */
static gboolean
pin_host_key (BgVmRecord  *r,
              const char  *dir,
              BgUndo      *undo,
              GError     **error)
{
  g_autofree char *kh = bg_known_hosts_path ();
  g_autofree char *alias = vm_alias (r);
  g_autofree char *private_key = NULL, *public_key = NULL;
  KnownHost *k;

  if (!bg_ssh_generate_host_key (dir, &private_key, &public_key, error) ||
      !bg_known_hosts_add (kh, alias, r->address, public_key, error))
    return FALSE;
  if (undo != NULL)
    {
      k = g_new0 (KnownHost, 1);
      k->alias = g_steal_pointer (&alias);
      k->address = g_strdup (r->address);
      bg_undo_push (undo, undo_known_host, k, (GDestroyNotify) known_host_free);
    }
  return TRUE;
}

/* ---- launch ---- */

static int
open_fd (const char *path, int flags, GError **error)
{
  int fd = open (path, flags | O_CLOEXEC, 0600);
  if (fd < 0)
    g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot open %s: %s", path, g_strerror (errno));
  return fd;
}

/* A kernel or initrd: the jailed VMM reads it as its own user, so it
 * must be readable by others (it is no secret). Images imported by an
 * older banger were 0600; they are the user's own, so fix them here. */
static int
open_boot_file (const char *path, GError **error)
{
  int fd = open_fd (path, O_RDONLY, error);
  struct stat st;

  if (fd >= 0 && fstat (fd, &st) == 0 && st.st_uid == getuid () && !(st.st_mode & S_IROTH))
    fchmod (fd, (st.st_mode & 07777) | S_IRUSR | S_IRGRP | S_IROTH);
  return fd;
}

static gboolean
append_fd (GUnixFDList  *fds,
           int           fd,
           gint32       *handle,
           GError      **error)
{
  if (fd < 0)
    return FALSE;
  *handle = g_unix_fd_list_append (fds, fd, error);
  close (fd);
  return *handle >= 0;
}

/* LaunchVm: the jailed VMM, with the VM's disks, its tap (made again by
 * the mechanism if it vanished) and its console. The record learns the
 * sockets, the pid and the network the tap is on. */
static gboolean
is_layered (BgVmRecord *r)
{
  return g_strcmp0 (r->disk_mode, "layered") == 0;
}

static gboolean
launch (BgVmRecord  *r,
        BgImage     *image,
        const char  *dir,
        GError     **error)
{
  g_autofree char *disk = g_build_filename (dir, is_layered (r) ? "upper.img" : "disk.ext4", NULL);
  g_autofree char *cidata = g_build_filename (dir, "cidata.img", NULL);
  g_autofree char *console = g_build_filename (dir, "console.log", NULL);
  g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
  g_autoptr(GVariant) reply = NULL, paths = NULL, network = NULL;
  gint32 kernel, rootfs, config_drive, console_log, initrd = -1, base = -1;
  const char *api, *vsock;
  guint64 pid;
  GVariantDict opts;

  if (!append_fd (fds, open_boot_file (image->kernel, error), &kernel, error) ||
      !append_fd (fds, open_fd (disk, O_RDWR, error), &rootfs, error) ||
      !append_fd (fds, open_fd (cidata, O_RDONLY, error), &config_drive, error) ||
      !append_fd (fds, open_fd (console, O_WRONLY | O_APPEND | O_CREAT, error), &console_log, error) ||
      (image->initrd && !append_fd (fds, open_boot_file (image->initrd, error), &initrd, error)) ||
      (is_layered (r) && !append_fd (fds, open_fd (image->rootfs, O_RDONLY, error), &base, error)))
    return FALSE;
  g_variant_dict_init (&opts, NULL);
  g_variant_dict_insert (&opts, "tap", "s", r->tap);
  g_variant_dict_insert (&opts, "address", "s", r->address);
  g_variant_dict_insert (&opts, "config-drive", "h", config_drive);
  g_variant_dict_insert (&opts, "console", "h", console_log);
  if (initrd >= 0)
    g_variant_dict_insert (&opts, "initrd", "h", initrd);
  if (base >= 0)
    g_variant_dict_insert (&opts, "base", "h", base);

  reply = bg_client_call ("LaunchVm", g_variant_new ("(s@a{sv}hh)", r->name, g_variant_dict_end (&opts),
                                                     kernel, rootfs), fds, error);
  if (reply == NULL)
    return FALSE;
  g_variant_get (reply, "(&s&st@a{sv})", &api, &vsock, &pid, &paths);
  g_free (r->api_socket);
  r->api_socket = g_strdup (api);
  g_free (r->vsock_socket);
  r->vsock_socket = g_strdup (vsock);
  r->pid = pid;
  if ((network = g_variant_lookup_value (paths, "network", G_VARIANT_TYPE_VARDICT)) != NULL)
    take_network (r, network);
  return TRUE;
}

/* Over the API socket the mechanism handed over: machine, boot source,
 * drives, network, vsock; then the guest starts. */
static gboolean
configure_and_start (BgVmRecord  *r,
                     BgImage     *image,
                     BgProgress  *p,
                     GError     **error)
{
  gboolean layered = is_layered (r);
  g_autofree char *boot_args = g_strdup_printf ("%s %s%s%s", DEFAULT_BOOT_ARGS, layered ? LAYERED_ARGS : ROOT_ARGS,
                                                image->cmdline ? " " : "", image->cmdline ? image->cmdline : "");
  g_autoptr(BgFcClient) fc = bg_fc_client_new (r->api_socket);

  bg_progress_step (p, "configuring the VM");
  test_hook ("configure");
  /* In this order: /dev/vda, vdb, vdc in the guest. */
  if (!bg_fc_configure_machine (fc, r->cpus, r->memory_mib, error) ||
      !bg_fc_set_boot_source (fc, "/vmlinux", boot_args, image->initrd ? "/initrd" : NULL, error) ||
      !bg_fc_add_drive (fc, "rootfs", "/rootfs", TRUE, layered, error) ||
      !bg_fc_add_drive (fc, "cidata", "/cidata", FALSE, TRUE, error) ||
      (layered && !bg_fc_add_drive (fc, "upper", "/upper", FALSE, FALSE, error)) ||
      !bg_fc_add_network (fc, "eth0", r->tap, r->mac, error) ||
      !bg_fc_set_vsock (fc, r->cid, "/run/vsock.sock", error) ||
      !check_interrupt (error))
    return FALSE;

  bg_progress_step (p, "starting the guest");
  test_hook ("start");
  return bg_fc_action (fc, "InstanceStart", error);
}

/* LaunchVm, once or (when the network under a stopped VM changed, say
 * another subnet after a reboot) twice: the VM is killed, its config
 * drive and pinned key follow the new network, and it is launched again. */
static gboolean
launch_vm (BgVmRecord  *r,
           BgImage     *image,
           BgConfig    *config,
           const char  *dir,
           BgProgress  *p,
           BgUndo      *undo,
           GError     **error)
{
  g_autoptr(BgVmRecord) before = bg_vm_record_copy (r);

  bg_progress_step (p, "launching the jailed VMM");
  test_hook ("launch");
  if (!launch (r, image, dir, error))
    return FALSE;
  bg_undo_push (undo, undo_kill_vm, g_strdup (r->name), g_free);
  test_hook ("launched");
  if (!same_network (before, r))
    {
      g_autofree char *kh = bg_known_hosts_path ();
      g_autofree char *old_alias = vm_alias (before);

      bg_cli_warn ("the network of %s changed (address %s, was %s); writing its configuration again",
                   r->name, r->address, before->address);
      undo_kill_vm (r->name);
      if (!bg_known_hosts_remove (kh, old_alias, before->address, error) ||
          !pin_host_key (r, dir, NULL, error) ||
          !write_config_drive (r, config, dir, error) ||
          !launch (r, image, dir, error))
        return FALSE;
    }
  return check_interrupt (error);
}

/* ---- a new VM ---- */

/* What a new VM needs that owes nothing to the mechanism: its disk and
 * the keys. It runs in a thread while the main thread waits on CreateTap,
 * which is most of its time. */
typedef struct {
  BgImage    *image;
  BgDiskMode  mode;
  guint64     bytes;
  const char *client_key;
  const char *dir;
  BgDiskMode  used;
  char       *reason;
  GError     *error;
} LocalWork;

static gpointer
local_work_run (gpointer data)
{
  LocalWork *w = data;
  g_autofree char *private_key = NULL, *public_key = NULL;

  if (bg_disk_make_for_vm (w->image, w->dir, w->mode, w->bytes, &w->used, &w->reason, &w->error) &&
      bg_ssh_ensure_client_key (w->client_key, &w->error))
    bg_ssh_generate_host_key (w->dir, &private_key, &public_key, &w->error);
  return NULL;
}

/* Joins the thread once; its error only if there is none already. */
static gboolean
local_work_join (GThread   **thread,
                 LocalWork  *w,
                 GError    **error)
{
  if (*thread != NULL)
    g_thread_join (g_steal_pointer (thread));
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
             BgProgress   *p,
             BgUndo       *undo,
             GError      **error)
{
  g_autoptr(GVariant) reply = NULL, info = NULL;
  LocalWork work = { image, config->disk_mode, r->disk_bytes, config->ssh_key, dir };
  g_autoptr(GThread) thread = NULL;
  gboolean ok = FALSE;

  /* Every return below joins it first: the undo stack removes the
   * directory it writes into. */
  thread = g_thread_new ("banger-local", local_work_run, &work);

  bg_progress_step (p, "setting up the network");
  test_hook ("tap");
  reply = bg_client_call ("CreateTap", g_variant_new ("(s@a{sv})", r->name,
                                                      g_variant_new_array (G_VARIANT_TYPE ("{sv}"), NULL, 0)),
                          NULL, error);
  if (reply == NULL)
    goto out;
  info = g_variant_get_child_value (reply, 0);
  take_network (r, info);
  bg_undo_push (undo, undo_delete_tap, g_strdup (r->tap), g_free);
  /* Saved as each resource appears, so a kill at any later step leaves a
   * record that names everything to clean up. */
  if (!save_record (store, r, error) || !check_interrupt (error))
    goto out;

  /* Made meanwhile by the thread: this step waits for what is left. */
  bg_progress_step (p, "making the root disk");
  test_hook ("disk");
  if (!local_work_join (&thread, &work, error))
    goto out;
  g_free (r->disk_mode);
  r->disk_mode = g_strdup (bg_disk_mode_to_string (work.used));
  g_free (r->disk_reason);
  r->disk_reason = g_steal_pointer (&work.reason);
  if (!check_interrupt (error))
    goto out;

  bg_progress_step (p, "pinning keys and writing the config drive");
  test_hook ("keys");
  ok = pin_host_key (r, dir, undo, error) && write_config_drive (r, config, dir, error) && check_interrupt (error);

out:
  if (!ok)
    {
      /* Stops a disk copy still running; the flag then says again
       * whether the user interrupted. */
      sig_atomic_t was = bg_interrupted;

      bg_interrupted = 1;
      local_work_join (&thread, &work, error);
      bg_interrupted = was;
    }
  else if (!local_work_join (&thread, &work, error))
    ok = FALSE;
  g_free (work.reason);
  return ok;
}

/* ---- vm up ---- */

static void
print_summary (BgCli      *cli,
               BgVmRecord *r,
               gboolean    waited)
{
  g_autofree char *alias = vm_alias (r);

  if (cli->json)
    {
      g_autoptr(JsonNode) node = bg_vm_record_to_json (r);
      bg_cli_print_json (node);
      return;
    }
  g_print ("VM %s is %s.\n", r->name, waited ? "up and answering SSH" : "started");
  g_print ("  address:  %s (%s)\n", r->address, alias);
  g_print ("  shell:    banger vm ssh %s\n", r->name);
}

static gboolean
wait_ready (BgVmRecord  *r,
            BgConfig    *config,
            const char  *dir,
            guint        timeout_s,
            GError     **error)
{
  g_autofree char *kh = bg_known_hosts_path ();
  g_autofree char *alias = vm_alias (r);
  g_autofree char *console = g_build_filename (dir, "console.log", NULL);
  const char *cmd[] = { "true", NULL };
  g_auto(GStrv) argv = bg_ssh_build_argv (config->ssh_key, kh, alias, r->guest_user, r->address, cmd, TRUE);

  return bg_guest_wait_ready (r->address, 22, (const char * const *) argv, timeout_s * 1000, console, error);
}

static char *
generate_name (BgStateStore *store)
{
  for (;;)
    {
      g_autofree char *name = g_strdup_printf ("vm-%04x", g_random_int_range (0, 0x10000));
      g_autoptr(BgVmRecord) r = bg_state_store_load (store, name, NULL);
      if (r == NULL)
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
  return bg_image_build (images, name, &b, NULL, NULL, error);
}

gboolean
bg_vm_up (BgCli        *cli,
          BgConfig     *config,
          BgUpOptions  *o,
          GError      **error)
{
  g_autoptr(BgStateStore) store = bg_state_store_new_default ();
  g_autoptr(BgVmRecord) r = NULL;
  g_autoptr(BgImage) image = NULL;
  g_autoptr(BgUndo) undo = bg_undo_new ();
  g_autoptr(GError) local = NULL;
  g_autofree char *name = NULL, *dir = NULL;
  const char *verb = o->verb ? o->verb : "up";
  struct sigaction sa = { .sa_handler = on_interrupt }, old_int, old_term;
  BgProgress p;
  gboolean existing = FALSE, ok = FALSE;

  name = o->name ? g_strdup (o->name) : generate_name (store);
  if (!bg_name_validate ("NAME", name, error))
    return FALSE;
  dir = bg_vm_dir (name);

  r = bg_state_store_load (store, name, &local);
  if (r == NULL && !g_error_matches (local, BG_ERROR, BG_ERROR_NOT_FOUND))
    {
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  if (r != NULL)
    {
      BgVmState state = bg_vm_probe_state (r);

      if (is_live (state))
        {
          print_summary (cli, r, FALSE);
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
  if (!bg_programs_require ((const char * const[]) { "resize2fs", "ssh-keygen", o->no_wait ? NULL : "ssh", NULL },
                            verb[0] == 'u' ? "vm up" : "vm start", error))
    return FALSE;

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
      /* Recorded first, as "creating": a crash from here on leaves
       * something 'system cleanup' recognizes. */
      if (!bg_paths_mkdir_private (dir, error) ||
          !bg_state_store_update (store, name, create_record, r, error))
        goto out;
      bg_undo_push (undo, undo_remove_dir, g_strdup (dir), g_free);
      bg_undo_push (undo, undo_delete_record, g_strdup (name), g_free);
      if (!make_new_vm (store, r, config, image, dir, &p, undo, error))
        goto rollback;
    }
  else
    p.steps = 3;
  if (!o->no_wait)
    p.steps++;

  if (!launch_vm (r, image, config, dir, &p, undo, error) ||
      !configure_and_start (r, image, &p, error))
    goto rollback;

  r->state = BG_VM_RUNNING;
  r->started_at = g_get_real_time () / G_USEC_PER_SEC;
  if (!save_record (store, r, error))
    goto rollback;
  test_hook ("saved");
  /* From here the VM exists, whatever readiness says. */
  bg_undo_forget (undo);

  if (!o->no_wait)
    {
      bg_progress_step (&p, "waiting for SSH");
      if (!wait_ready (r, config, dir, o->ready_timeout_s, error))
        {
          bg_progress_done (&p);
          g_prefix_error (error, "VM %s is running but not reachable: ", name);
          goto out;
        }
    }
  bg_progress_done (&p);
  print_summary (cli, r, !o->no_wait);
  ok = TRUE;
  goto out;

rollback:
  bg_progress_done (&p);
  g_prefix_error (error, "vm %s %s at step %d/%d (%s); everything this run created was removed: ",
                  verb, bg_interrupted ? "interrupted" : "failed", p.step, p.steps, name);
  bg_undo_run (undo);
  if (existing)
    mark_stopped (store, name, NULL);
out:
  sigaction (SIGINT, &old_int, NULL);
  sigaction (SIGTERM, &old_term, NULL);
  bg_client_shutdown ();
  bg_progress_clear (&p);
  return ok;
}

/* ---- stop, rm, pause ---- */

typedef struct {
  GMainLoop *loop;
  char      *name;
  gboolean   exited;
  int        status;
} ExitWait;

static void
on_vm_exited (GDBusConnection *c, const char *sender, const char *path, const char *iface,
              const char *signal, GVariant *params, gpointer data)
{
  ExitWait *w = data;
  const char *name;
  guint32 owner;
  gint32 status;

  g_variant_get (params, "(&sui)", &name, &owner, &status);
  if (owner == getuid () && g_str_equal (name, w->name))
    {
      w->exited = TRUE;
      w->status = status;
      g_main_loop_quit (w->loop);
    }
}

static gboolean
quit_loop (gpointer loop)
{
  g_main_loop_quit (loop);
  return G_SOURCE_REMOVE;
}

static gboolean
wait_exit (ExitWait *w,
           guint     timeout_s)
{
  guint id = g_timeout_add_seconds (timeout_s, quit_loop, w->loop);

  if (!w->exited)
    g_main_loop_run (w->loop);
  if (w->exited)
    g_source_remove (id);
  return w->exited;
}

/* Ctrl-Alt-Del (the VM's own API, no privilege) and a wait; else, or
 * with @force, KillVm. */
static gboolean
stop_vmm (BgCli       *cli,
          BgVmRecord  *r,
          gboolean     force,
          guint        timeout_s,
          GError     **error)
{
  GDBusConnection *bus = bg_client_get_connection (error);
  ExitWait w = { 0 };
  gboolean graceful = FALSE, ok = TRUE;
  guint sub;

  if (bus == NULL)
    return FALSE;
  w.loop = g_main_loop_new (NULL, FALSE);
  w.name = r->name;
  sub = g_dbus_connection_signal_subscribe (bus, BG_DBUS_NAME, BG_DBUS_INTERFACE, "VmExited", BG_DBUS_PATH,
                                            NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_vm_exited, &w, NULL);
  if (!force)
    {
      g_autoptr(BgFcClient) fc = bg_fc_client_new (r->api_socket);
      g_autoptr(GError) local = NULL;

      if (bg_fc_action (fc, "SendCtrlAltDel", &local))
        graceful = wait_exit (&w, timeout_s);
      else if (cli->verbose)
        bg_cli_warn ("Ctrl-Alt-Del failed (%s); killing the VM", local->message);
    }
  if (!w.exited)
    {
      g_autoptr(GError) local = NULL;
      g_autoptr(GVariant) k = bg_client_call ("KillVm", g_variant_new ("(s)", r->name), NULL, &local);

      if (k != NULL)
        wait_exit (&w, 10);
      else if (!g_error_matches (local, BG_ERROR, BG_ERROR_NOT_FOUND))
        {
          g_propagate_error (error, g_steal_pointer (&local));
          ok = FALSE;
        }
    }
  g_dbus_connection_signal_unsubscribe (bus, sub);
  g_main_loop_unref (w.loop);
  if (ok && cli->verbose)
    g_printerr ("%s %s\n", r->name, graceful ? "shut down" : "killed");
  return ok;
}

gboolean
bg_vm_stop (BgCli       *cli,
            const char  *name,
            gboolean     force,
            guint        timeout_s,
            GError     **error)
{
  g_autoptr(BgStateStore) store = bg_state_store_new_default ();
  g_autoptr(BgVmRecord) r = bg_state_store_load (store, name, error);
  BgVmState state;

  if (r == NULL)
    return FALSE;
  state = bg_vm_probe_state (r);
  if (state == BG_VM_STOPPED || state == BG_VM_CREATED || state == BG_VM_CREATING)
    return TRUE;
  if (state == BG_VM_CRASHED)
    {
      /* Its VMM is gone; make sure the mechanism agrees, then record it. */
      g_autoptr(GVariant) k = bg_client_call ("KillVm", g_variant_new ("(s)", name), NULL, NULL);
    }
  else if (!stop_vmm (cli, r, force, timeout_s, error))
    return FALSE;
  return mark_stopped (store, name, error);
}

/* A VM whose record cannot be read: what the mechanism holds for it (its
 * VMM, its tap, found by the VM's name), its pinned keys and its files. */
static gboolean
remove_remains (const char  *name,
                GError     **error)
{
  g_autoptr(GVariant) kill = NULL, list = NULL, taps = NULL;
  g_autoptr(BgStateStore) store = bg_state_store_new_default ();
  g_autofree char *dir = bg_vm_dir (name);
  g_autofree char *kh = bg_known_hosts_path ();

  kill = bg_client_call ("KillVm", g_variant_new ("(s)", name), NULL, NULL);
  list = bg_client_call ("ListResources", g_variant_new_parsed ("({'kind': <'tap'>},)"), NULL, error);
  if (list == NULL)
    return FALSE;
  taps = g_variant_get_child_value (list, 0);
  for (gsize i = 0; i < g_variant_n_children (taps); i++)
    {
      g_autoptr(GVariant) details = NULL, del = NULL;
      const char *tap, *vm = NULL;

      g_variant_get_child (taps, i, "(&s&sut&s@a{sv})", NULL, &tap, NULL, NULL, NULL, &details);
      if (g_variant_lookup (details, "vm", "&s", &vm) && g_str_equal (vm, name))
        del = bg_client_call ("DeleteTap", g_variant_new ("(s)", tap), NULL, NULL);
    }
  bg_client_shutdown ();
  return bg_known_hosts_remove_vm (kh, name, error) && bg_file_remove_tree (dir, error) &&
         bg_state_store_delete (store, name, error);
}

gboolean
bg_vm_remove (BgCli       *cli,
              const char  *name,
              gboolean     force,
              GError     **error)
{
  g_autoptr(BgStateStore) store = bg_state_store_new_default ();
  g_autoptr(GError) local = NULL;
  g_autoptr(BgVmRecord) r = bg_state_store_load (store, name, &local);
  g_autofree char *dir = bg_vm_dir (name);
  g_autofree char *kh = bg_known_hosts_path ();

  if (r == NULL && g_error_matches (local, BG_ERROR, BG_ERROR_CORRUPT))
    {
      bg_cli_warn ("%s", local->message);
      return remove_remains (name, error);
    }
  if (r == NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  if (!bg_vm_stop (cli, name, force, STOP_TIMEOUT_S, error))
    return FALSE;
  if (r->tap != NULL)
    {
      g_autoptr(GVariant) t = bg_client_call ("DeleteTap", g_variant_new ("(s)", r->tap), NULL, &local);
      if (t == NULL && !g_error_matches (local, BG_ERROR, BG_ERROR_NOT_FOUND))
        {
          g_propagate_error (error, g_steal_pointer (&local));
          return FALSE;
        }
    }
  if (r->address != NULL)
    {
      g_autofree char *alias = vm_alias (r);
      if (!bg_known_hosts_remove (kh, alias, r->address, error))
        return FALSE;
    }
  bg_client_shutdown ();
  return bg_file_remove_tree (dir, error) && bg_state_store_delete (store, name, error);
}

typedef struct {
  gboolean  paused;
  BgVmState found;
} Pause;

static BgVmRecord *
set_paused (BgVmRecord  *current,
            gpointer     data,
            GError     **error)
{
  Pause *p = data;

  if (current == NULL)
    {
      g_set_error_literal (error, BG_ERROR, BG_ERROR_NOT_FOUND, "the VM was removed meanwhile");
      return NULL;
    }
  current->state = p->paused ? BG_VM_PAUSED : BG_VM_RUNNING;
  return current;
}

gboolean
bg_vm_set_paused (const char  *name,
                  gboolean     paused,
                  GError     **error)
{
  g_autoptr(BgStateStore) store = bg_state_store_new_default ();
  g_autoptr(BgVmRecord) r = bg_state_store_load (store, name, error);
  g_autoptr(BgFcClient) fc = NULL;
  Pause p = { paused, 0 };

  if (r == NULL)
    return FALSE;
  p.found = bg_vm_probe_state (r);
  if (p.found != BG_VM_RUNNING && p.found != BG_VM_PAUSED)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_BUSY, "VM %s is %s; start it with 'banger vm start %s'",
                   name, bg_vm_state_to_string (p.found), name);
      return FALSE;
    }
  fc = bg_fc_client_new (r->api_socket);
  return bg_fc_set_state (fc, paused ? "Paused" : "Resumed", error) &&
         bg_state_store_update (store, name, set_paused, &p, error);
}
