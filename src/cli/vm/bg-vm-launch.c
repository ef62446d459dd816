/* bg-vm-launch.c: a VM's configuration and its launch: the config drive
 * and pinned key follow the network the mechanism answered; LaunchVm
 * hands over the VM's files as descriptors; the VMM is configured over
 * its API socket and started. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <gio/gunixfdlist.h>

#include "bg-cli.h"
#include "bg-client.h"
#include "bg-dbus-keys.h"
#include "bg-drive.h"
#include "bg-error.h"
#include "bg-fd.h"
#include "bg-fc-client.h"
#include "bg-netconf.h"
#include "bg-known-hosts.h"
#include "bg-ssh.h"
#include "bg-sync.h"
#include "bg-vm-launch.h"

#define DEFAULT_BOOT_ARGS "console=ttyS0 reboot=k panic=1 pci=off"
/* The VM's own disk is the root; or (layered) the image, shared and
 * read-only, is, and banger-init lays the VM's disk (the third drive)
 * over it before systemd starts. */
#define ROOT_ARGS "root=/dev/vda rw"
#define LAYERED_ARGS "root=/dev/vda ro init=/usr/libexec/banger/banger-init banger.upper=/dev/vdc"

static void
undo_kill_vm (gpointer name)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) r = bg_client_call ("KillVm", g_variant_new ("(s)", (char *) name), NULL, &error);
  if (r == NULL && !g_error_matches (error, BG_ERROR, BG_ERROR_NOT_FOUND))
    bg_cli_warn ("could not stop VM %s: %s", (char *) name, error->message);
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

/* ---- the guest's configuration ---- */

/* The VM's network, as the mechanism answered it (CreateTap, or LaunchVm's
 * "network"), into the record. */
void
bg_vm_take_network (BgVmRecord *r,
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
  /* No IPv6 now (the host disabled it) is news too: the drive must
   * stop asking for it. */
  g_clear_pointer (&r->address6, g_free);
  g_clear_pointer (&r->gateway6, g_free);
  if (g_variant_lookup (info, "address6", "&s", &s))
    r->address6 = g_strdup (s);
  if (g_variant_lookup (info, "gateway6", "&s", &s))
    r->gateway6 = g_strdup (s);
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
         g_strcmp0 (before->mac, after->mac) == 0 &&
         g_strcmp0 (before->address6, after->address6) == 0 && g_strcmp0 (before->gateway6, after->gateway6) == 0 &&
         before->prefix == after->prefix && g_strcmp0 (before->domain, after->domain) == 0 &&
         g_strv_equal ((const char * const *) (before->dns ? before->dns : (char *[]) { NULL }),
                       (const char * const *) (after->dns ? after->dns : (char *[]) { NULL }));
}

/* The VM's own files that @later, if not NULL, makes durable instead
 * of the call that writes them: the host key pair and the config drive,
 * and the directory that holds them. */
static BgFileFlags
defer_to (BgFsyncBatch *later,
          const char   *dir,
          const char   *file)
{
  g_autofree char *path = NULL;

  if (later == NULL)
    return BG_FILE_NONE;
  path = g_build_filename (dir, file, NULL);
  bg_fsync_batch_add (later, path);
  bg_fsync_batch_add (later, dir);
  return BG_FILE_NO_SYNC;
}

static BgFileFlags
defer_host_key (BgFsyncBatch *later,
                const char   *dir)
{
  defer_to (later, dir, BG_SSH_HOST_KEY ".pub");
  return defer_to (later, dir, BG_SSH_HOST_KEY);
}

/* The config drive, from the record and the keys (the VM's host key is
 * made once, then reused: it stays pinned). Synced files are read now;
 * the drive is synced now, or by @later. */
gboolean
bg_vm_write_config_drive (BgVmRecord   *r,
                          BgConfig     *config,
                          const char   *dir,
                          BgFsyncBatch *later,
                          GError      **error)
{
  g_autoptr(BgGuestConfig) guest = g_new0 (BgGuestConfig, 1);
  g_autoptr(GPtrArray) files = NULL;
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
  if (!bg_ssh_generate_host_key (dir, defer_host_key (later, dir), &guest->host_key_private,
                                 &guest->host_key_public, error))
    return FALSE;
  files = bg_sync_resolve_config (config, error);
  if (files == NULL)
    return FALSE;
  guest->name = g_strdup (r->name);
  guest->domain = g_strdup (r->domain);
  guest->user = g_strdup (r->guest_user);
  guest->address = g_strdup (r->address);
  guest->prefix = r->prefix;
  guest->gateway = g_strdup (r->gateway);
  guest->address6 = g_strdup (r->address6);
  guest->gateway6 = g_strdup (r->gateway6);
  guest->mac = g_strdup (r->mac);
  guest->dns = g_strdupv (r->dns);
  guest->authorized_keys = g_strv_builder_end (keys);
  guest->instance_id = g_strdup_printf ("banger-%s-%" G_GINT64_FORMAT, r->name, r->created_at);
  return bg_config_drive_build (guest, files, cidata, defer_to (later, dir, "cidata.img"), error);
}

/* The VM's host key (made now if there is none: synced now, or by
 * @later) pinned under @alias and @address; known_hosts is synced now:
 * it holds every VM's pin. */
static gboolean
pin_host_key (const char    *known_hosts,
              const char    *alias,
              const char    *address,
              const char    *dir,
              BgFsyncBatch  *later,
              GError       **error)
{
  g_autofree char *private_key = NULL, *public_key = NULL;

  if (!bg_ssh_generate_host_key (dir, defer_host_key (later, dir), &private_key, &public_key, error) ||
      !bg_known_hosts_add (known_hosts, alias, address, public_key, error))
    return FALSE;
  bg_cli_test_hook ("pinned");
  return TRUE;
}

/* Pins the VM's host key under its name and address. A key made now is
 * synced now, or by @later. */
gboolean
bg_vm_pin_host_key (BgVmRecord   *r,
                    const char   *dir,
                    BgUndo       *undo,
                    BgFsyncBatch *later,
                    GError      **error)
{
  g_autofree char *kh = bg_known_hosts_path ();
  g_autofree char *alias = bg_ssh_alias (r);
  KnownHost *k;

  if (!pin_host_key (kh, alias, r->address, dir, later, error))
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

/* A guessed VM's pin, made in a thread while the VMM is configured and
 * started: known_hosts' lock, read, rewrite and fsync were 3-4 ms on vm
 * up's path after LaunchVm, which only the pin waited for. The undo
 * stack owns it, and its undo joins the thread before it removes what
 * the thread wrote: a rollback never runs before or while the pin is
 * written, whichever path fails. The thread's strings are its own
 * copies; it touches nothing else of the caller's. */
struct _BgVmPinAhead {
  char     *known_hosts;
  char     *alias;
  char     *address;
  char     *dir;
  GThread  *thread;
  gboolean  pinned;
  GError   *error;
};

/* Only the main thread hears Ctrl-C (bg-cli.c). */
static gpointer
pin_ahead_run (gpointer data)
{
  BgVmPinAhead *pin = data;

  bg_cli_block_interrupts ();
  pin->pinned = pin_host_key (pin->known_hosts, pin->alias, pin->address, pin->dir, NULL, &pin->error);
  return NULL;
}

static void
pin_ahead_join (BgVmPinAhead *pin)
{
  if (pin->thread != NULL)
    g_thread_join (g_steal_pointer (&pin->thread));
}

/* A pin that failed changed nothing (known_hosts is replaced whole or
 * not at all): nothing to remove, as when the pin was made in line. */
static void
undo_pin_ahead (gpointer data)
{
  BgVmPinAhead *pin = data;

  pin_ahead_join (pin);
  if (pin->pinned)
    bg_known_hosts_remove (pin->known_hosts, pin->alias, pin->address, NULL);
}

static void
pin_ahead_free (gpointer data)
{
  BgVmPinAhead *pin = data;

  pin_ahead_join (pin);
  g_free (pin->known_hosts);
  g_free (pin->alias);
  g_free (pin->address);
  g_free (pin->dir);
  g_clear_error (&pin->error);
  g_free (pin);
}

static BgVmPinAhead *
pin_ahead_start (BgVmRecord *r,
                 const char *dir,
                 BgUndo     *undo)
{
  BgVmPinAhead *pin = g_new0 (BgVmPinAhead, 1);

  pin->known_hosts = bg_known_hosts_path ();
  pin->alias = bg_ssh_alias (r);
  pin->address = g_strdup (r->address);
  pin->dir = g_strdup (dir);
  bg_undo_push (undo, undo_pin_ahead, pin, pin_ahead_free);
  pin->thread = g_thread_new ("banger-pin", pin_ahead_run, pin);
  return pin;
}

/* Waits for the pin bg_vm_launch started (NULL: none); its error, if it
 * failed. */
gboolean
bg_vm_finish_pin (BgVmPinAhead  *pin,
                  GError       **error)
{
  if (pin == NULL)
    return TRUE;
  pin_ahead_join (pin);
  if (pin->error != NULL)
    {
      if (error != NULL)
        *error = g_error_copy (pin->error);
      return FALSE;
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

/* Takes @fd_in: the list holds a duplicate of it. */
static gboolean
append_fd (GUnixFDList  *fds,
           int           fd_in,
           gint32       *handle,
           GError      **error)
{
  g_auto(BgFd) fd = fd_in;

  if (fd < 0)
    return FALSE;
  *handle = g_unix_fd_list_append (fds, fd, error);
  return *handle >= 0;
}

static gboolean
is_layered (BgVmRecord *r)
{
  return g_strcmp0 (r->disk_mode, "layered") == 0;
}

/* LaunchVm: the jailed VMM, with the VM's disks, its tap (made again by
 * the mechanism if it vanished) and its console. The record learns the
 * sockets, the pid and the network the tap is on; @paths, the jail paths
 * to configure the VMM with. */
static gboolean
launch (BgVmRecord  *r,
        BgImage     *image,
        const char  *dir,
        GVariant   **paths,
        GError     **error)
{
  g_autofree char *disk = g_build_filename (dir, is_layered (r) ? "upper.img" : "disk.ext4", NULL);
  g_autofree char *cidata = g_build_filename (dir, "cidata.img", NULL);
  g_autofree char *console = g_build_filename (dir, "console.log", NULL);
  g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
  g_autoptr(GVariant) reply = NULL, network = NULL;
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
  g_variant_dict_insert (&opts, BG_LAUNCH_TAP, "s", r->tap);
  g_variant_dict_insert (&opts, BG_LAUNCH_ADDRESS, "s", r->address);
  g_variant_dict_insert (&opts, BG_LAUNCH_CONFIG_DRIVE, "h", config_drive);
  g_variant_dict_insert (&opts, BG_LAUNCH_CONSOLE, "h", console_log);
  if (initrd >= 0)
    g_variant_dict_insert (&opts, BG_LAUNCH_INITRD, "h", initrd);
  if (base >= 0)
    g_variant_dict_insert (&opts, BG_LAUNCH_BASE, "h", base);

  reply = bg_client_call ("LaunchVm", g_variant_new ("(s@a{sv}hh)", r->name, g_variant_dict_end (&opts),
                                                     kernel, rootfs), fds, error);
  if (reply == NULL)
    return FALSE;
  g_clear_pointer (paths, g_variant_unref);
  g_variant_get (reply, "(&s&st@a{sv})", &api, &vsock, &pid, paths);
  g_free (r->api_socket);
  r->api_socket = g_strdup (api);
  g_free (r->vsock_socket);
  r->vsock_socket = g_strdup (vsock);
  r->pid = pid;
  if ((network = g_variant_lookup_value (*paths, BG_LAUNCHED_NETWORK, G_VARIANT_TYPE_VARDICT)) != NULL)
    bg_vm_take_network (r, network);
  return TRUE;
}

/* A jail path LaunchVm answered with, or NULL; @need says whether its
 * absence is an error. */
static const char *
launched_path (GVariant    *paths,
               const char  *key,
               gboolean     need,
               GError     **error)
{
  const char *path = NULL;

  if (!g_variant_lookup (paths, key, "&s", &path) && need)
    g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "the mechanism's LaunchVm answered without \"%s\"; "
                 "is banger-mechanism the same version as banger?", key);
  return path;
}

/* The mechanism hands the vsock socket over when it sees it appear, on
 * its own main loop, while PUT /vsock has already answered here: until
 * then the socket is the jail uid's and refuses us (EACCES), so vm up's
 * readiness or a vm exec right after would fail for a moment's lag.
 * Waited for here, once, by its owner becoming us (the mechanism sets
 * 0600 before that last chown). A stat every millisecond: the run dir
 * lets us through (--x) but not list or watch it. */
#define VSOCK_HAND_OVER_TIMEOUT_S 10

static gboolean
wait_vsock_handed_over (const char  *path,
                        GError     **error)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) VSOCK_HAND_OVER_TIMEOUT_S * G_USEC_PER_SEC;
  uid_t me = geteuid ();
  struct stat st;

  while (lstat (path, &st) < 0 || !S_ISSOCK (st.st_mode) || st.st_uid != me)
    {
      if (g_get_monotonic_time () >= deadline)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_TIMEOUT,
                       "the mechanism did not hand the VM's vsock socket %s over within %d s; "
                       "banger-mechanism's log (journalctl -u banger-mechanism) says why",
                       path, VSOCK_HAND_OVER_TIMEOUT_S);
          return FALSE;
        }
      if (!bg_cli_check_interrupt (error))
        return FALSE;
      g_usleep (1000);
    }
  return TRUE;
}

/* Over the API socket the mechanism handed over, with the jail paths it
 * answered (@paths): machine, boot source, drives, network, vsock; then
 * the guest starts, and returns once the vsock socket is the caller's. */
gboolean
bg_vm_configure_and_start (BgVmRecord  *r,
                           BgImage     *image,
                           GVariant    *paths,
                           BgProgress  *p,
                           GError     **error)
{
  gboolean layered = is_layered (r);
  g_autofree char *boot_args = g_strdup_printf ("%s %s%s%s", DEFAULT_BOOT_ARGS, layered ? LAYERED_ARGS : ROOT_ARGS,
                                                image->cmdline ? " " : "", image->cmdline ? image->cmdline : "");
  g_autoptr(BgFcClient) fc = bg_fc_client_new (r->api_socket);
  const char *kernel, *rootfs, *cidata, *vsock, *upper = NULL, *initrd = NULL;

  if ((kernel = launched_path (paths, BG_LAUNCHED_KERNEL, TRUE, error)) == NULL ||
      (rootfs = launched_path (paths, BG_LAUNCHED_ROOTFS, TRUE, error)) == NULL ||
      (cidata = launched_path (paths, BG_LAUNCHED_CONFIG_DRIVE, TRUE, error)) == NULL ||
      (vsock = launched_path (paths, BG_LAUNCHED_VSOCK, TRUE, error)) == NULL ||
      (layered && (upper = launched_path (paths, BG_LAUNCHED_UPPER, TRUE, error)) == NULL) ||
      (image->initrd && (initrd = launched_path (paths, BG_LAUNCHED_INITRD, TRUE, error)) == NULL))
    return FALSE;

  {
    /* The root is the shared base, read-only, when the VM is layered; its
     * writes go to the upper disk, last. A VM that is not layered has no
     * upper disk: the NULL id ends its list there. */
    const BgFcDrive drives[] = {
      { "rootfs", rootfs, TRUE, layered },
      { "cidata", cidata, FALSE, TRUE },
      { layered ? "upper" : NULL, upper, FALSE, FALSE },
      { NULL }
    };
    const BgFcMachine machine = {
      .vcpus = r->cpus, .mem_mib = r->memory_mib,
      .kernel = kernel, .initrd = initrd, .boot_args = boot_args,
      .drives = drives,
      .tap = r->tap, .guest_mac = r->mac,
      .vsock_cid = r->cid, .vsock_path = vsock,
    };

    bg_progress_step (p, "configuring the VM");
    bg_cli_test_hook ("configure");
    if (!bg_fc_configure (fc, &machine, error) ||
        !bg_cli_check_interrupt (error))
      return FALSE;
  }

  bg_progress_step (p, "starting the guest");
  bg_cli_test_hook ("start");
  /* The guest boots meanwhile. */
  return bg_fc_action (fc, "InstanceStart", error) && wait_vsock_handed_over (r->vsock_socket, error);
}

/* LaunchVm, once or (when the network under a stopped VM changed, say
 * another subnet after a reboot, or a new VM's @guessed network was
 * not the one it got) twice: the VM is killed, its config drive and
 * pinned key follow the new network, and it is launched again.
 * @paths: the jail paths LaunchVm answered with; @pin, a guessed VM's
 * pin being made (owned by @undo: valid until it is run or forgotten). */
gboolean
bg_vm_launch (BgVmRecord    *r,
              BgImage       *image,
              BgConfig      *config,
              const char    *dir,
              gboolean       guessed,
              BgProgress    *p,
              BgUndo        *undo,
              BgVmPinAhead **pin,
              GVariant     **paths,
              GError       **error)
{
  g_autoptr(BgVmRecord) before = bg_vm_record_copy (r);

  bg_progress_step (p, "launching the jailed VMM");
  bg_cli_test_hook ("launch");
  if (!launch (r, image, dir, paths, error))
    return FALSE;
  bg_undo_push (undo, undo_kill_vm, g_strdup (r->name), g_free);
  bg_cli_test_hook ("launched");
  if (!same_network (before, r))
    {
      g_autofree char *kh = bg_known_hosts_path ();
      g_autofree char *old_alias = bg_ssh_alias (before);

      /* A guess is no news: the VM never ran on it. */
      if (!guessed)
        bg_cli_warn ("the network of %s changed (address %s, was %s); writing its configuration again",
                     r->name, r->address, before->address);
      else
        g_debug ("%s got address %s, not %s as guessed; writing its configuration again",
                 r->name, r->address, before->address);
      undo_kill_vm (r->name);
      if ((!guessed && (!bg_known_hosts_remove (kh, old_alias, before->address, error) ||
                        !bg_vm_pin_host_key (r, dir, NULL, NULL, error))) ||
          !bg_vm_write_config_drive (r, config, dir, NULL, error) ||
          !launch (r, image, dir, paths, error))
        return FALSE;
    }
  /* A guessed address is the VM's only now: pinned from now (see
   * make_new_vm), while the VMM is configured and started; the caller
   * waits for it (bg_vm_finish_pin) before the VM is recorded running. */
  if (guessed)
    *pin = pin_ahead_start (r, dir, undo);
  return bg_cli_check_interrupt (error);
}
