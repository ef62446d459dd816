/* bg-vm.c: the VM lifecycle, orchestrated in the CLI's own process.
 *
 * vm up: network -> tap -> root disk -> keys -> config drive -> LaunchVm
 * (sockets handed over) -> configure over the API -> InstanceStart ->
 * record -> wait until SSH answers with the pinned key. Each step that
 * creates something pushes its undo; a failure or Ctrl-C runs them in
 * reverse, so a failed `vm up` leaves nothing. Only the privileged steps
 * go to the mechanism.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <gio/gunixfdlist.h>
#include <glib/gstdio.h>

#include "bg-build.h"
#include "bg-client.h"
#include "bg-disk.h"
#include "bg-error.h"
#include "bg-file.h"
#include "bg-fc-client.h"
#include "bg-guest.h"
#include "bg-image.h"
#include "bg-names.h"
#include "bg-paths.h"
#include "bg-vm.h"

#define DEFAULT_BOOT_ARGS "console=ttyS0 reboot=k panic=1 pci=off root=/dev/vda rw"
#define STOP_TIMEOUT_S 30

char *
bg_vm_dir (const char *name)
{
  g_autofree char *vms = bg_paths_vms_dir ();
  return g_build_filename (vms, name, NULL);
}

/* ---- progress ---- */

typedef struct {
  BgCli      *cli;
  const char *vm;
  int         step;
  int         steps;
  gint64      started;
  GString    *timings;   /* with BANGER_TIMINGS=1: "what=ms" per step */
  const char *current;
} Progress;

static void
progress_mark (Progress *p)
{
  gint64 now = g_get_monotonic_time ();

  if (p->timings != NULL && p->current != NULL)
    {
      g_autofree char *key = g_strdelimit (g_strdup (p->current), " ", '-');
      g_string_append_printf (p->timings, " %s=%.2f", key, (now - p->started) / 1000.0);
    }
  p->started = now;
}

static void
progress_step (Progress   *p,
               const char *what)
{
  progress_mark (p);
  p->current = what;
  p->step++;
  if (p->cli->json)
    return;
  if (p->cli->is_tty)
    g_printerr ("\r\033[K[%d/%d] %s: %s", p->step, p->steps, p->vm, what);
  else
    g_printerr ("[%d/%d] %s: %s\n", p->step, p->steps, p->vm, what);
}

static void
progress_done (Progress *p)
{
  if (p->cli->is_tty && !p->cli->json)
    g_printerr ("\r\033[K");
  progress_mark (p);
  p->current = NULL;
  if (p->timings != NULL && p->timings->len > 0)
    {
      g_autofree char *status = NULL;
      const char *hwm;

      g_printerr ("banger: timings:%s\n", p->timings->str);
      g_string_truncate (p->timings, 0);
      /* The process's own peak, which a parent's rusage cannot give: it
       * counts the parent's pages copied by the fork before exec. */
      if (g_file_get_contents ("/proc/self/status", &status, NULL, NULL) &&
          (hwm = strstr (status, "VmHWM:")) != NULL)
        g_printerr ("banger: peak RSS: %ld KiB\n", strtol (hwm + 6, NULL, 10));
    }
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

/* ---- undo stack ---- */

typedef void (*UndoFunc) (gpointer data);

typedef struct {
  UndoFunc       func;
  gpointer       data;
  GDestroyNotify free;
} Undo;

static void
push_undo (GArray        *undo,
           UndoFunc       func,
           gpointer       data,
           GDestroyNotify free_func)
{
  Undo u = { func, data, free_func };
  g_array_append_val (undo, u);
}

static void
run_undo (GArray *undo)
{
  for (guint i = undo->len; i > 0; i--)
    {
      Undo *u = &g_array_index (undo, Undo, i - 1);
      u->func (u->data);
      if (u->free)
        u->free (u->data);
    }
  g_array_set_size (undo, 0);
}

static void
drop_undo (GArray *undo)
{
  for (guint i = 0; i < undo->len; i++)
    {
      Undo *u = &g_array_index (undo, Undo, i);
      if (u->free)
        u->free (u->data);
    }
  g_array_set_size (undo, 0);
}

static void
undo_delete_tap (gpointer tap)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) r = bg_client_call ("DeleteTap", g_variant_new ("(s)", (char *) tap), NULL, NULL, NULL, &error);
  if (r == NULL && !g_error_matches (error, BG_ERROR, BG_ERROR_NOT_FOUND))
    bg_cli_warn ("could not delete tap %s: %s", (char *) tap, error->message);
}

static void
undo_kill_vm (gpointer name)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) r = bg_client_call ("KillVm", g_variant_new ("(s)", (char *) name), NULL, NULL, NULL, &error);
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

/* ---- reality ---- */

/* What the VM really is: the VMM's own answer when its API socket
 * answers; "crashed" when the record says running but nothing answers. */
char *
bg_vm_probe_state (BgVmRecord *r)
{
  g_autoptr(BgFcClient) fc = NULL;
  g_autofree char *state = NULL;

  if (g_strcmp0 (r->state, "running") != 0 && g_strcmp0 (r->state, "paused") != 0)
    return g_strdup (r->state);
  if (r->api_socket == NULL)
    return g_strdup ("crashed");
  fc = bg_fc_client_new (r->api_socket);
  state = bg_fc_get_state (fc, NULL);
  if (state == NULL)
    return g_strdup ("crashed");
  if (g_str_equal (state, "Paused"))
    return g_strdup ("paused");
  if (g_str_equal (state, "Running"))
    return g_strdup ("running");
  return g_strdup ("starting");
}

/* ---- vm up ---- */

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
launch_and_start (BgVmRecord  *r,
                  BgImage     *image,
                  const char  *dir,
                  Progress    *p,
                  GArray      *undo,
                  GError     **error)
{
  g_autofree char *disk = g_build_filename (dir, "disk.ext4", NULL);
  g_autofree char *cidata = g_build_filename (dir, "cidata.img", NULL);
  g_autofree char *console = g_build_filename (dir, "console.log", NULL);
  g_autofree char *boot_args = NULL;
  g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) paths = NULL;
  g_autoptr(BgFcClient) fc = NULL;
  GVariantDict opts;
  const char *api, *vsock, *initrd = NULL;
  guint64 pid;
  int k, d, c, l, i = -1;

  progress_step (p, "launching the jailed VMM");
  test_hook ("launch");
  if ((k = open_boot_file (image->kernel, error)) < 0)
    return FALSE;
  g_unix_fd_list_append (fds, k, NULL);
  close (k);
  if ((d = open_fd (disk, O_RDWR, error)) < 0)
    return FALSE;
  g_unix_fd_list_append (fds, d, NULL);
  close (d);
  if ((c = open_fd (cidata, O_RDONLY, error)) < 0)
    return FALSE;
  g_unix_fd_list_append (fds, c, NULL);
  close (c);
  if ((l = open_fd (console, O_WRONLY | O_APPEND | O_CREAT, error)) < 0)
    return FALSE;
  g_unix_fd_list_append (fds, l, NULL);
  close (l);
  g_variant_dict_init (&opts, NULL);
  g_variant_dict_insert (&opts, "tap", "s", r->tap);
  g_variant_dict_insert (&opts, "config-drive", "h", 2);
  g_variant_dict_insert (&opts, "console", "h", 3);
  if (image->initrd)
    {
      if ((i = open_boot_file (image->initrd, error)) < 0)
        return FALSE;
      g_variant_dict_insert (&opts, "initrd", "h", g_unix_fd_list_append (fds, i, NULL));
      close (i);
    }

  reply = bg_client_call ("LaunchVm", g_variant_new ("(s@a{sv}hh)", r->name, g_variant_dict_end (&opts), 0, 1),
                          G_VARIANT_TYPE ("(ssta{sv})"), fds, NULL, error);
  if (reply == NULL)
    return FALSE;
  push_undo (undo, undo_kill_vm, g_strdup (r->name), g_free);
  test_hook ("launched");
  g_variant_get (reply, "(&s&st@a{sv})", &api, &vsock, &pid, &paths);
  g_variant_lookup (paths, "initrd", "&s", &initrd);
  g_free (r->api_socket);
  r->api_socket = g_strdup (api);
  g_free (r->vsock_socket);
  r->vsock_socket = g_strdup (vsock);
  r->pid = pid;
  if (!check_interrupt (error))
    return FALSE;

  progress_step (p, "configuring the VM");
  test_hook ("configure");
  boot_args = image->cmdline ? g_strdup_printf ("%s %s", DEFAULT_BOOT_ARGS, image->cmdline)
                             : g_strdup (DEFAULT_BOOT_ARGS);
  fc = bg_fc_client_new (api);
  if (!bg_fc_configure_machine (fc, r->cpus, r->memory_mib, error) ||
      !bg_fc_set_boot_source (fc, "/vmlinux", boot_args, initrd, error) ||
      !bg_fc_add_drive (fc, "rootfs", "/rootfs", TRUE, FALSE, error) ||
      !bg_fc_add_drive (fc, "cidata", "/cidata", FALSE, TRUE, error) ||
      !bg_fc_add_network (fc, "eth0", r->tap, r->mac, error) ||
      !bg_fc_set_vsock (fc, r->cid, "/run/vsock.sock", error))
    return FALSE;
  if (!check_interrupt (error))
    return FALSE;

  progress_step (p, "starting the guest");
  test_hook ("start");
  if (!bg_fc_action (fc, "InstanceStart", error))
    return FALSE;
  return TRUE;
}

/* What a new VM needs that owes nothing to the mechanism: its disk and
 * the keys. It runs in a thread while the main thread waits on the
 * polkit-checked network calls, which is most of their time. */
typedef struct {
  const char *rootfs;
  const char *disk;
  BgDiskMode  mode;
  guint64     bytes;
  const char *client_key;
  const char *dir;
  BgDiskMode  used;
  char       *host_key_private;
  char       *host_key_public;
  GError     *error;
} LocalWork;

static gpointer
local_work_run (gpointer data)
{
  LocalWork *w = data;

  if (bg_disk_create (w->rootfs, w->disk, w->mode, w->bytes, &w->used, NULL, NULL, &w->error) &&
      bg_ssh_ensure_client_key (w->client_key, &w->error))
    bg_ssh_generate_host_key (w->dir, &w->host_key_private, &w->host_key_public, &w->error);
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
             Progress     *p,
             GArray       *undo,
             GError      **error)
{
  g_autoptr(GVariant) net = NULL, info = NULL, tap = NULL;
  g_autoptr(BgGuestConfig) guest = g_new0 (BgGuestConfig, 1);
  g_autoptr(GPtrArray) files = NULL;
  g_autoptr(GPtrArray) skipped = NULL;
  g_autoptr(GPtrArray) keys = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *disk = g_build_filename (dir, "disk.ext4", NULL);
  g_autofree char *cidata = g_build_filename (dir, "cidata.img", NULL);
  g_autofree char *kh = bg_known_hosts_path ();
  g_autofree char *alias = NULL;
  const char *domain = "banger";
  g_autofree const char **dns = NULL;
  LocalWork work = { image->rootfs, disk, config->disk_mode, r->disk_bytes, config->ssh_key, dir };
  g_autoptr(GThread) thread = NULL;
  gboolean ok = FALSE;
  KnownHost *k;
  guint32 ip;

  /* Every return below joins it first: the undo stack removes the
   * directory it writes into. */
  thread = g_thread_new ("banger-local", local_work_run, &work);

  progress_step (p, "setting up the network");
  test_hook ("network");
  net = bg_client_call ("EnsureNetwork", g_variant_new_parsed ("(@a{sv} {},)"), G_VARIANT_TYPE ("(a{sv})"),
                        NULL, NULL, error);
  if (net == NULL || !check_interrupt (error))
    goto out;
  info = g_variant_get_child_value (net, 0);
  g_variant_lookup (info, "domain", "&s", &domain);
  g_variant_lookup (info, "dns", "^a&s", &dns);
  r->domain = g_strdup (domain);

  progress_step (p, "creating the VM's tap");
  test_hook ("tap");
  tap = bg_client_call ("CreateTap", g_variant_new ("(s)", r->name), G_VARIANT_TYPE ("(ssssu)"), NULL, NULL, error);
  if (tap == NULL)
    goto out;
  g_variant_get (tap, "(ssssu)", &r->tap, &r->address, &r->gateway, &r->mac, &r->prefix);
  push_undo (undo, undo_delete_tap, g_strdup (r->tap), g_free);
  if (inet_pton (AF_INET, r->address, &ip) == 1)
    r->cid = 3 + (ntohl (ip) & 0xffffff);
  /* Saved as each resource appears, so a kill at any later step leaves a
   * record that names everything to clean up. */
  if (!bg_state_store_save (store, r, error) || !check_interrupt (error))
    goto out;

  /* Made meanwhile by the thread: these steps wait for what is left. */
  progress_step (p, "making the root disk");
  test_hook ("disk");
  if (!local_work_join (&thread, &work, error))
    goto out;
  r->disk_mode = g_strdup (bg_disk_mode_to_string (work.used));
  if (!check_interrupt (error))
    goto out;

  progress_step (p, "pinning keys");
  test_hook ("keys");
  g_ptr_array_add (keys, bg_ssh_read_public_key (config->ssh_key, error));
  if (keys->pdata[0] == NULL)
    goto out;
  for (guint i = 0; config->authorized_keys[i]; i++)
    {
      g_autofree char *text = NULL;
      if (!g_file_get_contents (config->authorized_keys[i], &text, NULL, error))
        goto out;
      g_ptr_array_add (keys, g_strdup (g_strstrip (text)));
    }
  g_ptr_array_add (keys, NULL);
  guest->host_key_private = g_steal_pointer (&work.host_key_private);
  guest->host_key_public = g_steal_pointer (&work.host_key_public);
  alias = g_strdup_printf ("%s.%s", r->name, r->domain);
  if (!bg_known_hosts_add (kh, alias, r->address, guest->host_key_public, error))
    goto out;
  k = g_new0 (KnownHost, 1);
  k->alias = g_strdup (alias);
  k->address = g_strdup (r->address);
  push_undo (undo, undo_known_host, k, (GDestroyNotify) known_host_free);

  progress_step (p, "writing the config drive");
  test_hook ("config-drive");
  files = bg_sync_resolve (g_get_home_dir (), config->sync_paths, config->sync_limit, &skipped, error);
  if (files == NULL)
    goto out;
  for (guint i = 0; i < skipped->len; i++)
    bg_cli_warn ("not syncing %s", (char *) skipped->pdata[i]);
  guest->name = g_strdup (r->name);
  guest->domain = g_strdup (r->domain);
  guest->user = g_strdup (r->guest_user);
  guest->address = g_strdup (r->address);
  guest->prefix = r->prefix;
  guest->gateway = g_strdup (r->gateway);
  guest->mac = g_strdup (r->mac);
  guest->dns = g_strdupv ((char **) dns);
  guest->authorized_keys = g_strdupv ((char **) keys->pdata);
  guest->instance_id = g_strdup_printf ("banger-%s-%" G_GINT64_FORMAT, r->name, r->created_at);
  ok = bg_config_drive_build (guest, files, cidata, error) && check_interrupt (error);

out:
  if (!local_work_join (&thread, &work, error))
    ok = FALSE;
  g_free (work.host_key_private);
  g_free (work.host_key_public);
  return ok;
}

static void
print_summary (BgCli      *cli,
               BgVmRecord *r,
               gboolean    waited)
{
  if (cli->json)
    {
      g_autoptr(JsonNode) node = bg_vm_record_to_json (r);
      bg_cli_print_json (node);
      return;
    }
  g_print ("VM %s is %s.\n", r->name, waited ? "up and answering SSH" : "started");
  g_print ("  address:  %s (%s.%s)\n", r->address, r->name, r->domain ? r->domain : "banger");
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
  g_autofree char *alias = g_strdup_printf ("%s.%s", r->name, r->domain);
  g_autofree char *console = g_build_filename (dir, "console.log", NULL);
  const char *cmd[] = { "true", NULL };
  g_auto(GStrv) argv = bg_ssh_build_argv (config->ssh_key, kh, alias, r->guest_user, r->address, cmd, TRUE);

  return bg_guest_wait_ready (r->address, 22, (const char * const *) argv, timeout_s * 1000, console, error);
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
  g_autoptr(GArray) undo = g_array_new (FALSE, FALSE, sizeof (Undo));
  g_autoptr(GError) local = NULL;
  g_autofree char *name = NULL, *dir = NULL, *images = bg_paths_images_dir ();
  struct sigaction sa = { .sa_handler = on_interrupt }, old_int, old_term;
  Progress p = { cli, NULL, 0, 0, g_get_monotonic_time (),
                 g_getenv ("BANGER_TIMINGS") ? g_string_new (NULL) : NULL, NULL };
  gboolean existing = FALSE, ok = FALSE;

  name = o->name ? g_strdup (o->name) : generate_name (store);
  if (!bg_name_validate ("NAME", name, error))
    return FALSE;
  p.vm = name;
  dir = bg_vm_dir (name);

  r = bg_state_store_load (store, name, &local);
  if (r == NULL && !g_error_matches (local, BG_ERROR, BG_ERROR_NOT_FOUND))
    {
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  if (r != NULL)
    {
      g_autofree char *state = bg_vm_probe_state (r);

      if (g_str_equal (state, "running") || g_str_equal (state, "paused") || g_str_equal (state, "starting"))
        {
          print_summary (cli, r, FALSE);
          return TRUE;
        }
      if (g_str_equal (state, "creating"))
        {
          g_set_error (error, BG_ERROR, BG_ERROR_BUSY,
                       "VM %s was being created when a banger run stopped; run 'banger system cleanup' "
                       "(or 'banger vm rm %s') first", name, name);
          return FALSE;
        }
      existing = TRUE;
    }

  image = bg_image_load (images, existing ? r->image : (o->image ? o->image : config->image), &local);
  if (image == NULL && !existing && o->image == NULL &&
      g_error_matches (local, BG_ERROR, BG_ERROR_NOT_FOUND))
    {
      /* The default image is built on first use, after saying so. */
      BgBuildOptions b = { "bookworm", NULL, NULL, G_GUINT64_CONSTANT (2) << 30 };

      g_clear_error (&local);
      if (!cli->json)
        g_printerr ("banger: there is no image \"%s\" yet; building it now with 'banger image build %s' "
                    "(Debian bookworm, a few minutes, once)\n", config->image, config->image);
      image = bg_image_build (images, config->image, &b, NULL, NULL, &local);
    }
  if (image == NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }

  sigemptyset (&sa.sa_mask);
  sigaction (SIGINT, &sa, &old_int);
  sigaction (SIGTERM, &sa, &old_term);
  bg_interrupted = 0;

  if (!existing)
    {
      p.steps = 9;
      r = bg_vm_record_new (name);
      g_free (r->state);
      r->state = g_strdup ("creating");
      r->image = g_strdup (image->name);
      r->cpus = o->cpus > 0 ? (guint) o->cpus : config->cpus;
      r->memory_mib = o->memory_mib > 0 ? (guint) o->memory_mib : config->memory_mib;
      r->disk_bytes = o->disk_bytes > 0 ? o->disk_bytes : config->disk_bytes;
      r->guest_user = g_strdup (config->guest_user);
      if (r->disk_bytes < image->rootfs_bytes)
        r->disk_bytes = image->rootfs_bytes;
      /* Recorded first, as "creating": a crash from here on leaves
       * something `system cleanup` recognizes. */
      if (!bg_paths_mkdir_private (dir, error) || !bg_state_store_save (store, r, error))
        goto out;
      push_undo (undo, undo_remove_dir, g_strdup (dir), g_free);
      push_undo (undo, undo_delete_record, g_strdup (name), g_free);
      if (!make_new_vm (store, r, config, image, dir, &p, undo, error))
        goto rollback;
    }
  else
    {
      g_autoptr(GVariant) tap = NULL;

      p.steps = 4;
      /* The same tap, address and MAC as before: CreateTap is idempotent
       * for its owner. */
      progress_step (&p, "checking the VM's tap");
      tap = bg_client_call ("CreateTap", g_variant_new ("(s)", r->name), G_VARIANT_TYPE ("(ssssu)"),
                            NULL, NULL, error);
      if (tap == NULL)
        goto out;
    }

  if (!launch_and_start (r, image, dir, &p, undo, error))
    goto rollback;

  g_free (r->state);
  r->state = g_strdup ("running");
  r->started_at = g_get_real_time () / G_USEC_PER_SEC;
  if (!bg_state_store_save (store, r, error))
    goto rollback;
  test_hook ("saved");
  /* From here the VM exists, whatever readiness says. */
  drop_undo (undo);

  if (!o->no_wait)
    {
      progress_step (&p, "waiting for SSH");
      if (!wait_ready (r, config, dir, o->ready_timeout_s, error))
        {
          progress_done (&p);
          g_prefix_error (error, "VM %s is running but not reachable: ", name);
          goto out;
        }
    }
  progress_done (&p);
  print_summary (cli, r, !o->no_wait);
  ok = TRUE;
  goto out;

rollback:
  progress_done (&p);
  {
    const char *what = bg_interrupted ? "interrupted" : "failed";
    g_prefix_error (error, "vm up %s at step %d/%d (%s); everything this run created was removed: ",
                    what, p.step, p.steps, name);
  }
  run_undo (undo);
  if (existing)
    {
      g_free (r->state);
      r->state = g_strdup ("stopped");
      bg_state_store_save (store, r, NULL);
    }
out:
  drop_undo (undo);
  sigaction (SIGINT, &old_int, NULL);
  sigaction (SIGTERM, &old_term, NULL);
  bg_client_shutdown ();
  if (p.timings)
    g_string_free (p.timings, TRUE);
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

static gboolean
mark_stopped (BgStateStore *store,
              BgVmRecord   *r,
              GError      **error)
{
  g_free (r->state);
  r->state = g_strdup ("stopped");
  r->started_at = 0;
  r->pid = 0;
  g_clear_pointer (&r->api_socket, g_free);
  g_clear_pointer (&r->vsock_socket, g_free);
  return bg_state_store_save (store, r, error);
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
  g_autofree char *state = NULL;
  GDBusConnection *bus;
  ExitWait w = { 0 };
  guint sub;
  gboolean graceful = FALSE;

  if (r == NULL)
    return FALSE;
  state = bg_vm_probe_state (r);
  if (g_str_equal (state, "stopped") || g_str_equal (state, "created"))
    return TRUE;
  if (g_str_equal (state, "crashed") || r->api_socket == NULL)
    {
      /* Its VMM is gone; make sure the mechanism agrees, then record it. */
      g_autoptr(GVariant) k = bg_client_call ("KillVm", g_variant_new ("(s)", name), NULL, NULL, NULL, NULL);
      return mark_stopped (store, r, error);
    }

  bus = bg_client_get_connection (error);
  if (bus == NULL)
    return FALSE;
  w.loop = g_main_loop_new (NULL, FALSE);
  w.name = g_strdup (name);
  sub = g_dbus_connection_signal_subscribe (bus, "org.banger.Mechanism1", "org.banger.Mechanism1", "VmExited",
                                            "/org/banger/Mechanism1", NULL, G_DBUS_SIGNAL_FLAGS_NONE,
                                            on_vm_exited, &w, NULL);

  if (!force)
    {
      /* Ctrl-Alt-Del needs no privilege: it is the VM's own API. */
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
      g_autoptr(GVariant) k = bg_client_call ("KillVm", g_variant_new ("(s)", name), NULL, NULL, NULL, &local);

      if (k == NULL && !g_error_matches (local, BG_ERROR, BG_ERROR_NOT_FOUND))
        {
          g_propagate_error (error, g_steal_pointer (&local));
          g_dbus_connection_signal_unsubscribe (bus, sub);
          g_main_loop_unref (w.loop);
          g_free (w.name);
          return FALSE;
        }
      if (k != NULL)
        wait_exit (&w, 10);
    }
  g_dbus_connection_signal_unsubscribe (bus, sub);
  g_main_loop_unref (w.loop);
  g_free (w.name);
  if (cli->verbose)
    g_printerr ("%s %s\n", name, graceful ? "shut down" : "killed");
  return mark_stopped (store, r, error);
}

gboolean
bg_vm_remove (BgCli       *cli,
              const char  *name,
              gboolean     force,
              GError     **error)
{
  g_autoptr(BgStateStore) store = bg_state_store_new_default ();
  g_autoptr(BgVmRecord) r = bg_state_store_load (store, name, error);
  g_autofree char *dir = bg_vm_dir (name);
  g_autofree char *kh = bg_known_hosts_path ();

  if (r == NULL)
    return FALSE;
  if (!bg_vm_stop (cli, name, force, STOP_TIMEOUT_S, error))
    return FALSE;
  if (r->tap != NULL)
    {
      g_autoptr(GError) local = NULL;
      g_autoptr(GVariant) t = bg_client_call ("DeleteTap", g_variant_new ("(s)", r->tap), NULL, NULL, NULL, &local);
      if (t == NULL && !g_error_matches (local, BG_ERROR, BG_ERROR_NOT_FOUND))
        {
          g_propagate_error (error, g_steal_pointer (&local));
          return FALSE;
        }
    }
  if (r->domain != NULL)
    {
      g_autofree char *alias = g_strdup_printf ("%s.%s", name, r->domain);
      if (!bg_known_hosts_remove (kh, alias, r->address, error))
        return FALSE;
    }
  undo_remove_dir (dir);
  bg_client_shutdown ();
  return bg_state_store_delete (store, name, error);
}

gboolean
bg_vm_set_paused (const char  *name,
                  gboolean     paused,
                  GError     **error)
{
  g_autoptr(BgStateStore) store = bg_state_store_new_default ();
  g_autoptr(BgVmRecord) r = bg_state_store_load (store, name, error);
  g_autoptr(BgFcClient) fc = NULL;
  g_autofree char *state = NULL;

  if (r == NULL)
    return FALSE;
  state = bg_vm_probe_state (r);
  if (!g_str_equal (state, "running") && !g_str_equal (state, "paused"))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_BUSY, "VM %s is %s; start it with 'banger vm start %s'",
                   name, state, name);
      return FALSE;
    }
  fc = bg_fc_client_new (r->api_socket);
  if (!bg_fc_set_state (fc, paused ? "Paused" : "Resumed", error))
    return FALSE;
  g_free (r->state);
  r->state = g_strdup (paused ? "paused" : "running");
  return bg_state_store_save (store, r, error);
}
