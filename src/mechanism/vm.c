/* vm.c: jailed VMMs for callers — launch, kill, release, recovery.
 *
 * A launch records the VM ("creating") before anything exists, builds
 * its jail, attaches its disks, gives it its tap, arms the socket watch
 * and spawns the VMM; it is ready once the API socket is the caller's
 * (vmm.c). When the VMM exits, everything it had is undone before anyone
 * hears of it: the jail is removed, the loop devices closed, the tap
 * given back to its owner and the entry dropped; then VmExited is sent.
 */
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib-unix.h>

#include "bg-error.h"
#include "bg-fd.h"
#include "bg-names.h"
#include "bg-size.h"
#include "confine.h"
#include "daemon.h"
#include "jail.h"
#include "loop.h"
#include "netlink.h"
#include "netns.h"
#include "proc.h"
#include "registry.h"
#include "storage.h"
#include "tap.h"
#include "vm.h"

#define DEFAULT_LAUNCH_TIMEOUT_MS 5000

static char *
vm_id (uid_t       owner,
       const char *vm_name)
{
  return g_strdup_printf ("u%u-%s", (guint) owner, vm_name);
}

gboolean
bg_vm_validate_id (const char  *field,
                   const char  *name,
                   GError     **error)
{
  const char *dash = name ? strchr (name, '-') : NULL;
  guint64 uid;

  if (name != NULL && name[0] == 'u' && dash != NULL)
    {
      g_autofree char *num = g_strndup (name + 1, dash - name - 1);
      if (g_ascii_string_to_unsigned (num, 10, 0, G_MAXUINT32, &uid, NULL) && bg_name_is_valid (dash + 1))
        return TRUE;
    }
  g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
               "%s: not a VM resource name (u<uid>-<vm name>)", field);
  return FALSE;
}

void
bg_launch_params_clear (BgLaunchParams *p)
{
  bg_fd_clear (&p->kernel_fd);
  bg_fd_clear (&p->rootfs_fd);
  bg_fd_clear (&p->base_fd);
  bg_fd_clear (&p->initrd_fd);
  bg_fd_clear (&p->console_fd);
  bg_fd_clear (&p->config_fd);
}

static const char *
run_dir (BgVms *vms)
{
  return bg_daemon_get_run_dir (vms->daemon);
}

/* The VMM process a record names: its PID, start time and jail uid (0
 * for what the record lacks). */
static void
recorded_process (BgResource *r,
                  guint64    *pid,
                  guint64    *start,
                  guint32    *uid)
{
  *pid = *start = 0;
  *uid = 0;
  g_variant_lookup (r->details, "pid", "t", pid);
  g_variant_lookup (r->details, "start-time", "t", start);
  g_variant_lookup (r->details, "uid", "u", uid);
}

/* Undoes what a VM had, whatever of it exists: its process (if still
 * there and still the same), its tap's loan to the jail uid, its jail.
 * Tolerates every part being gone already. */
static gboolean
undo_vm (BgVms       *vms,
         BgResource  *r,
         GError     **error)
{
  const char *tap = bg_resource_get_string (r, "tap");
  guint64 pid, start;
  guint32 uid;
  g_autoptr(GError) local = NULL;

  recorded_process (r, &pid, &start, &uid);
  bg_proc_kill_if_same (pid, start, uid);
  bg_storage_unshare_bases (vms->storage, r->name, NULL);
  /* The tap back to its owner; where the VMM had a network namespace of
   * its own, its veth goes and the tap is made again on the bridge
   * (only while the tap's record stands: a tap already released stays
   * gone). Checked on the kernel, not the record: a crash may have come
   * between making the veth and recording it. */
  if (tap != NULL)
    {
      BgResource *t = bg_registry_lookup (vms->registry, BG_KIND_TAP, tap);

      if (!bg_netns_restore_tap (tap, t ? bg_resource_get_string (t, "bridge") : NULL, r->owner,
                                 t != NULL && t->state != BG_RESOURCE_DELETING, &local))
        g_debug ("Could not give tap %s back to uid %u: %s", tap, (guint) r->owner, local->message);
    }
  /* An older mechanism kept jails in the state dir. */
  return bg_jail_destroy (run_dir (vms), r->name, error) &&
         bg_jail_destroy (bg_daemon_get_state_dir (vms->daemon), r->name, error);
}

/* Takes @vmm out of the running table (so a release no longer finds
 * it), without freeing it. */
static void
take_vmm (BgVms *vms,
          BgVmm *vmm)
{
  gpointer key = NULL;

  if (g_hash_table_steal_extended (vms->running, vmm->id, &key, NULL))
    g_free (key);
}

/* Frees a taken VMM; each one held the daemon (no idle exit) while it ran. */
static void
finish_vmm (BgVms *vms,
            BgVmm *vmm)
{
  bg_vmm_free (vmm);
  bg_daemon_release (vms->daemon);
}

/* Forgets a VMM the mechanism runs: it is killed and reaped now. */
static void
drop_vmm (BgVms *vms,
          BgVmm *vmm)
{
  take_vmm (vms, vmm);
  bg_vmm_reap (vmm);
  bg_vmm_fail_ready (vmm, g_error_new (BG_ERROR, BG_ERROR_FAILED, "the VM was released"));
  finish_vmm (vms, vmm);
}

static void
vmm_exited (BgVmm   *vmm,
            int      status,
            gpointer user_data)
{
  BgVms *vms = user_data;
  BgResource *r = bg_registry_lookup (vms->registry, BG_KIND_VM, vmm->id);
  g_autofree char *tail = bg_vmm_tail (vmm);
  g_autoptr(GError) error = NULL;

  g_debug ("VMM of %s exited with status %d", vmm->id, status);
  take_vmm (vms, vmm);
  /* Everything is gone before anyone hears of the exit. */
  if (r != NULL && !bg_daemon_release_resource (vms->daemon, r, &error))
    g_warning ("VM %s: %s", vmm->id, error->message);
  bg_vmm_fail_ready (vmm, g_error_new (BG_ERROR, BG_ERROR_FAILED,
                                       "the VMM exited (status %d) before its API socket appeared:\n%s",
                                       status, tail));
  bg_daemon_emit_vm_exited (vms->daemon, vmm->vm_name, vmm->owner, status);
  finish_vmm (vms, vmm);
}

/* mechanism.conf's [vmm]: the VMM (root's choice, never a caller's) and,
 * when @timeout_ms is given and still 0, the launch timeout. */
char *
bg_vm_config_vmm (const char *config_dir,
                  guint      *timeout_ms)
{
  g_autoptr(GKeyFile) kf = g_key_file_new ();
  g_autofree char *conf = g_build_filename (config_dir, "mechanism.conf", NULL);
  char *path = NULL;

  if (g_key_file_load_from_file (kf, conf, G_KEY_FILE_NONE, NULL))
    {
      path = g_key_file_get_string (kf, "vmm", "firecracker", NULL);
      if (timeout_ms && *timeout_ms == 0 && g_key_file_has_key (kf, "vmm", "launch-timeout-ms", NULL))
        *timeout_ms = CLAMP (g_key_file_get_integer (kf, "vmm", "launch-timeout-ms", NULL), 100, 60000);
    }
  if (timeout_ms && *timeout_ms == 0)
    *timeout_ms = DEFAULT_LAUNCH_TIMEOUT_MS;
  return path ? g_strstrip (path) : g_strdup (BG_DEFAULT_FIRECRACKER);
}

/* mechanism.conf's [vmm] netns: whether each VMM gets a network
 * namespace of its own (netns.c), which keeps it from the host's
 * abstract unix sockets. "auto" (the default): where the kernel has no
 * Landlock scopes to do that (before Linux 6.12); "always": everywhere.
 * Test builds also take "never", and landlock-scopes=false, so a test
 * can show each protection alone and the hole without them. Sets
 * @landlock_scopes to whether the jail applies them (where the kernel
 * has them). */
static gboolean
config_netns (const char *config_dir,
              gboolean   *landlock_scopes)
{
  g_autoptr(GKeyFile) kf = g_key_file_new ();
  g_autofree char *conf = g_build_filename (config_dir, "mechanism.conf", NULL);
  g_autofree char *mode = NULL;
  gboolean scopes = TRUE;

  if (g_key_file_load_from_file (kf, conf, G_KEY_FILE_NONE, NULL))
    {
      mode = g_key_file_get_string (kf, "vmm", "netns", NULL);
#ifdef BG_TEST_HOOKS
      if (g_key_file_has_key (kf, "vmm", "landlock-scopes", NULL))
        scopes = g_key_file_get_boolean (kf, "vmm", "landlock-scopes", NULL);
#endif
    }
  if (landlock_scopes != NULL)
    *landlock_scopes = scopes;
  if (mode != NULL)
    g_strstrip (mode);
  if (mode != NULL && g_str_equal (mode, "always"))
    return TRUE;
#ifdef BG_TEST_HOOKS
  if (mode != NULL && g_str_equal (mode, "never"))
    return FALSE;
#endif
  if (mode != NULL && !g_str_equal (mode, "auto"))
    g_warning ("%s: [vmm] netns=%s is not auto or always; using auto", conf, mode);
  return !scopes || bg_confine_landlock_abi () < 6;
}

/* What keeps jailed VMMs from the host's abstract unix sockets:
 * "landlock", "netns", both ("landlock+netns") or, only in test builds
 * told so, "none". */
const char *
bg_vm_abstract_unix_guard (const char *config_dir)
{
  gboolean scopes;
  gboolean netns = config_netns (config_dir, &scopes);

  scopes = scopes && bg_confine_landlock_abi () >= 6;
  return scopes && netns ? "landlock+netns" : scopes ? "landlock" : netns ? "netns" : "none";
}

static gboolean
allocate_jail_uid (BgRegistry  *registry,
                   uid_t       *out,
                   GError     **error)
{
  g_autoptr(GPtrArray) vms = bg_registry_list (registry, BG_KIND_VM);
  g_autoptr(GHashTable) used = g_hash_table_new (NULL, NULL);

  for (guint i = 0; i < vms->len; i++)
    {
      guint32 uid;
      if (g_variant_lookup (((BgResource *) vms->pdata[i])->details, "uid", "u", &uid))
        g_hash_table_add (used, GUINT_TO_POINTER (uid));
    }
  for (guint32 i = 0; i < BG_JAIL_UID_COUNT; i++)
    {
      uid_t uid = BG_JAIL_UID_BASE + i;
      if (!g_hash_table_contains (used, GUINT_TO_POINTER (uid)) && getpwuid (uid) == NULL)
        {
          *out = uid;
          return TRUE;
        }
    }
  g_set_error (error, BG_ERROR, BG_ERROR_BUSY, "no free jail uid left");
  return FALSE;
}

typedef struct {
  BgVms          *vms;
  BgVmmReadyFunc  done;
  gpointer        user_data;
} Launch;

static void
launch_ready (BgVmm    *vmm,
              GError   *error,
              gpointer  user_data)
{
  Launch *l = user_data;
  BgResource *r = bg_registry_lookup (l->vms->registry, BG_KIND_VM, vmm->id);
  g_autoptr(GError) local = NULL;

  if (error == NULL && r != NULL && !bg_registry_set_state (l->vms->registry, r, BG_RESOURCE_READY, &local))
    g_warning ("%s", local->message);
  l->done (vmm, error, l->user_data);
  g_free (l);
}

/* Adds loop device @name over the file behind @fd to @disks. */
static gboolean
add_disk (GVariantBuilder  *disks,
          const char       *name,
          int               fd,
          const char       *field,
          GError          **error)
{
  struct stat st;

  if (fstat (fd, &st) < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "%s: unusable file descriptor", field);
      return FALSE;
    }
  g_variant_builder_add (disks, "(stt)", name, (guint64) st.st_dev, (guint64) st.st_ino);
  return TRUE;
}

/* Whether every loop device @r records is still on the file it was made
 * for. A VMM holds its own from before it runs, so this holds for a live
 * one; if it does not, the VM's disks may now be another's file. */
static gboolean
disks_still_its_own (BgResource *r)
{
  g_autoptr(GVariantIter) iter = NULL;
  const char *name;
  guint64 dev, ino;

  if (!g_variant_lookup (r->details, "disks", "a(stt)", &iter))
    return FALSE;
  while (g_variant_iter_next (iter, "(&stt)", &name, &dev, &ino))
    if (!bg_loop_validate_name ("disks", name, NULL) || !bg_loop_matches (name, dev, ino))
      {
        g_message ("VM %s: %s is no longer on the file it was made for", r->name, name);
        return FALSE;
      }
  return TRUE;
}

/* The jail, the disks and the tap, then the spawn; the VMM is recorded
 * in @r and watched from the main loop before this returns. */
static gboolean
launch_vmm (BgVms           *vms,
            BgVmm           *vmm,
            BgResource      *r,
            int              vmm_fd,
            gboolean         dynamic,
            uid_t            jail_uid,
            BgLaunchParams  *p,
            GError         **error)
{
  g_auto(GStrv) argv = NULL;
  g_auto(BgFd) output_read = -1;
  g_autofree char *loop = NULL;
  GVariantBuilder disks;
  int output[2];
  dev_t rdev;

  /* Each loop device with the file it must stay on, for recovery to
   * prove after a restart. */
  g_variant_builder_init (&disks, G_VARIANT_TYPE ("a(stt)"));
  vmm->jail = bg_jail_new (run_dir (vms), vmm->id, vmm->owner, jail_uid, vmm_fd, dynamic, error);
  if (vmm->jail == NULL ||
      !bg_jail_add_file (vmm->jail, "kernel", BG_JAIL_KERNEL, p->kernel_fd, error) ||
      (p->initrd_fd >= 0 && !bg_jail_add_file (vmm->jail, "options: " BG_LAUNCH_INITRD, BG_JAIL_INITRD, p->initrd_fd, error)))
    goto fail;
  vmm->has_initrd = p->initrd_fd >= 0;
  vmm->loop_fd = bg_loop_attach (p->rootfs_fd, p->read_only, &rdev, &loop, error);
  if (vmm->loop_fd < 0 || !add_disk (&disks, loop, p->rootfs_fd, "rootfs", error))
    goto fail;
  if (p->base_fd < 0)
    bg_jail_add_block (vmm->jail, BG_JAIL_ROOTFS, rdev, p->read_only);
  else
    {
      /* Layered: the image, shared read-only, is the root; the VM's own
       * disk takes its writes. */
      g_autofree char *base = NULL;
      dev_t base_rdev;
      GVariantDict dict;

      bg_jail_add_block (vmm->jail, BG_JAIL_UPPER, rdev, FALSE);
      vmm->base_shared = TRUE;
      if ((base = bg_storage_share_base (vms->storage, p->base_fd, vmm->id, &base_rdev, error)) == NULL ||
          !add_disk (&disks, base, p->base_fd, "options: " BG_LAUNCH_BASE, error))
        goto fail;
      bg_daemon_test_pause (vms->daemon, "base-shared");
      bg_jail_add_block (vmm->jail, BG_JAIL_ROOTFS, base_rdev, TRUE);
      g_variant_dict_init (&dict, r->details);
      g_variant_dict_insert (&dict, "base", "s", base);
      if (!bg_registry_set_details (vms->registry, r, g_variant_dict_end (&dict), error))
        goto fail;
    }
  if (p->config_fd >= 0)
    {
      /* The guest's configuration: read-only, a second disk. */
      g_clear_pointer (&loop, g_free);
      vmm->config_loop_fd = bg_loop_attach (p->config_fd, TRUE, &rdev, &loop, error);
      if (vmm->config_loop_fd < 0 || !add_disk (&disks, loop, p->config_fd, "options: config", error))
        goto fail;
      bg_jail_add_block (vmm->jail, BG_JAIL_CONFIG_DRIVE, rdev, TRUE);
    }
  vmm->jail->own_netns = config_netns (bg_daemon_get_config_dir (vms->daemon),
                                             &vmm->jail->landlock_scopes);
  if (p->tap != NULL && vmm->jail->own_netns)
    {
      /* In a network namespace of its own, the VMM gets a tap of that
       * name there, the jail uid's, and the host's tap becomes the veth
       * to it (netns.c). */
      BgResource *t = bg_registry_lookup (vms->registry, BG_KIND_TAP, p->tap);
      const char *bridge = t ? bg_resource_get_string (t, "bridge") : NULL;

      if (bridge == NULL)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "the tap %s has no bridge on record", p->tap);
          goto fail;
        }
      vmm->jail->netns_fd = bg_netns_new_with_tap (p->tap, bridge, jail_uid, error);
      if (vmm->jail->netns_fd < 0)
        goto fail;
      vmm->tap = g_strdup (p->tap);
    }
  else if (p->tap != NULL)
    {
      /* The jailed VMM opens the tap itself: it must be the jail uid's
       * for the VM's lifetime (the registry still says whose it is). */
      if (!bg_tap_set_owner (p->tap, jail_uid, error))
        goto fail;
      vmm->tap = g_strdup (p->tap);
    }

  if (!bg_vmm_watch_sockets (vmm, error))
    goto fail;
  if (!g_unix_open_pipe (output, FD_CLOEXEC, NULL) || !g_unix_set_fd_nonblocking (output[0], TRUE, NULL))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot make a pipe: %s", g_strerror (errno));
      goto fail;
    }
  output_read = output[0];
  argv = bg_jail_build_argv (vmm->id);
  vmm->pid = bg_jail_spawn (vmm->jail, (const char * const *) argv, output[1], error);
  close (output[1]);
  if (vmm->pid <= 0)
    goto fail;
  vmm->is_child = TRUE;
  vmm->console_max = bg_daemon_get_limits (vms->daemon)->console_bytes;
  if (!bg_vmm_watch_process (vmm, g_steal_fd (&output_read), g_steal_fd (&p->console_fd), error))
    goto fail;

  {
    GVariantDict dict;
    g_variant_dict_init (&dict, r->details);
    g_variant_dict_insert (&dict, "disks", "a(stt)", &disks);
    g_variant_dict_insert (&dict, "netns", "b", vmm->jail->own_netns);
    g_variant_dict_insert (&dict, "pid", "t", (guint64) vmm->pid);
    g_variant_dict_insert (&dict, "start-time", "t", bg_proc_get_start_time (vmm->pid));
    return bg_registry_set_details (vms->registry, r, g_variant_dict_end (&dict), error);
  }

fail:
  g_variant_builder_clear (&disks);
  return FALSE;
}

/* Launches @params->vm_name for @owner. @done runs once: when the VM's
 * API socket is the caller's, or with the error that stopped it (then
 * nothing of the launch is left). */
/* The VMM reads the kernel and initrd whole into the guest's memory: a
 * sparse file of any size must not pass for one. */
static gboolean
check_boot_file (BgVms       *vms,
                 int          fd,
                 const char  *field,
                 GError     **error)
{
  guint64 limit = bg_daemon_get_limits (vms->daemon)->boot_file_bytes;
  struct stat st;

  if (fd < 0)
    return TRUE;
  if (fstat (fd, &st) < 0 || !S_ISREG (st.st_mode))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "%s: not a regular file", field);
      return FALSE;
    }
  if ((guint64) st.st_size > limit)
    {
      g_autofree char *size = bg_format_size_human (st.st_size);
      g_autofree char *max = bg_format_size_human (limit);
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                   "%s: %s is larger than the %s a boot file may be (boot-file-size in [limits] of mechanism.conf)",
                   field, size, max);
      return FALSE;
    }
  return TRUE;
}

void
bg_vms_launch (BgVms           *vms,
               uid_t            owner,
               BgLaunchParams  *p,
               BgVmmReadyFunc   done,
               gpointer         user_data)
{
  g_autofree char *id = vm_id (owner, p->vm_name);
  g_autofree char *vmm_path = NULL;
  g_auto(BgFd) vmm_fd = -1;
  GError *error = NULL;
  GVariantBuilder details;
  BgResource *r;
  gboolean dynamic;
  uid_t jail_uid;
  BgVmm *vmm;
  Launch *l;

  if (g_hash_table_contains (vms->running, id))
    {
      done (NULL, g_error_new (BG_ERROR, BG_ERROR_BUSY, "vm_name: %s is already running", p->vm_name), user_data);
      return;
    }
  if (!bg_daemon_check_limit (vms->daemon, owner, BG_KIND_VM, &error) ||
      !check_boot_file (vms, p->kernel_fd, "kernel", &error) ||
      !check_boot_file (vms, p->initrd_fd, "options: initrd", &error))
    {
      done (NULL, error, user_data);
      return;
    }
  if (p->tap != NULL)
    {
      BgResource *tap = bg_registry_lookup (vms->registry, BG_KIND_TAP, p->tap);
      if (tap == NULL || tap->owner != owner)
        {
          done (NULL, g_error_new (BG_ERROR, tap ? BG_ERROR_NOT_OWNER : BG_ERROR_NOT_FOUND,
                                   "options: tap %s is not one of your taps", p->tap), user_data);
          return;
        }
    }

  vmm_path = bg_vm_config_vmm (bg_daemon_get_config_dir (vms->daemon), &p->timeout_ms);
  if ((vmm_fd = bg_confine_open_vmm (vmm_path, &dynamic, &error)) < 0 ||
      !allocate_jail_uid (vms->registry, &jail_uid, &error))
    {
      done (NULL, error, user_data);
      return;
    }

  /* A stale entry of a VMM that died while no mechanism ran. */
  if ((r = bg_registry_lookup (vms->registry, BG_KIND_VM, id)) != NULL &&
      !bg_daemon_release_resource (vms->daemon, r, &error))
    {
      done (NULL, error, user_data);
      return;
    }

  g_variant_builder_init (&details, G_VARIANT_TYPE ("a{sv}"));
  g_variant_builder_add (&details, "{sv}", "vm", g_variant_new_string (p->vm_name));
  g_variant_builder_add (&details, "{sv}", "uid", g_variant_new_uint32 (jail_uid));
  if (p->tap)
    g_variant_builder_add (&details, "{sv}", "tap", g_variant_new_string (p->tap));
  r = bg_registry_add (vms->registry, BG_KIND_VM, id, owner, g_variant_builder_end (&details), &error);
  if (r == NULL)
    {
      done (NULL, error, user_data);
      return;
    }

  /* A running VMM (or one being started) is pending work: no idle exit. */
  vmm = bg_vmm_new (id, p->vm_name, owner, jail_uid, vmm_exited, vms);
  vmm->daemon = vms->daemon;
  bg_daemon_hold (vms->daemon);
  g_hash_table_replace (vms->running, g_strdup (id), vmm);
  if (!launch_vmm (vms, vmm, r, g_steal_fd (&vmm_fd), dynamic, jail_uid, p, &error))
    {
      g_autoptr(GError) local = NULL;

      take_vmm (vms, vmm);
      bg_vmm_reap (vmm);
      finish_vmm (vms, vmm);
      if (!bg_daemon_release_resource (vms->daemon, r, &local))
        g_warning ("VM %s: %s", id, local->message);
      done (NULL, error, user_data);
      return;
    }

  l = g_new0 (Launch, 1);
  l->vms = vms;
  l->done = done;
  l->user_data = user_data;
  bg_vmm_wait_ready (vmm, p->timeout_ms, launch_ready, l);
  bg_daemon_test_hook (vms->daemon, "launch-spawned");
}

/* The caller's own VM of that name first; failing that, a full id
 * (u<uid>-<name>) addresses anyone's VM (which needs admin). */
char *
bg_vms_resolve_id (BgVms      *vms,
                   uid_t       caller,
                   const char *name_or_id)
{
  if (bg_name_is_valid (name_or_id))
    {
      g_autofree char *own = vm_id (caller, name_or_id);

      if (bg_registry_lookup (vms->registry, BG_KIND_VM, own) != NULL ||
          !bg_vm_validate_id ("vm_name", name_or_id, NULL))
        return g_steal_pointer (&own);
    }
  return g_strdup (name_or_id);
}

/* SIGKILL; its exit tears the rest down. A VMM the mechanism does not
 * run (it restarted) is killed only if its recorded start time matches. */
gboolean
bg_vms_kill (BgVms       *vms,
             BgResource  *r,
             GError     **error)
{
  BgVmm *vmm = g_hash_table_lookup (vms->running, r->name);
  guint64 pid, start;
  guint32 uid;

  if (vmm != NULL)
    return bg_vmm_kill (vmm, error);
  recorded_process (r, &pid, &start, &uid);
  bg_proc_kill_if_same (pid, start, uid);
  return TRUE;
}

static gboolean
release_vm (gpointer     self,
            BgResource  *resource,
            GError     **error)
{
  BgVms *vms = self;
  BgVmm *vmm = g_hash_table_lookup (vms->running, resource->name);

  if (vmm != NULL)
    drop_vmm (vms, vmm);
  return undo_vm (vms, resource, error);
}

static const BgKindOps vm_kind = {
  .kind = BG_KIND_VM,
  .action = "org.banger.vm",
  .validate_name = bg_vm_validate_id,
  .release = release_vm,
};

/* How many of the records @all name each process (pid and start time)
 * and each jail uid: keys "pid N S" and "uid N", counts as values. */
static GHashTable *
count_claims (GPtrArray *all)
{
  GHashTable *claims = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  for (guint i = 0; i < all->len; i++)
    {
      guint64 pid, start;
      guint32 uid;
      char *keys[2];

      recorded_process (all->pdata[i], &pid, &start, &uid);
      keys[0] = pid != 0 ? g_strdup_printf ("pid %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT, pid, start) : NULL;
      keys[1] = uid != 0 ? g_strdup_printf ("uid %u", uid) : NULL;
      for (guint k = 0; k < G_N_ELEMENTS (keys); k++)
        if (keys[k] != NULL)
          g_hash_table_replace (claims, keys[k],
                                GUINT_TO_POINTER (GPOINTER_TO_UINT (g_hash_table_lookup (claims, keys[k])) + 1));
    }
  return claims;
}

/* Whether more than one record names the process @pid that started at
 * @start, or the jail uid @uid. The mechanism gives each VM a jail uid
 * of its own, so only a forged registry does this, and the records
 * cannot say which claim is true. */
static gboolean
claim_contested (GHashTable *claims,
                 guint64     pid,
                 guint64     start,
                 guint32     uid)
{
  g_autofree char *p = g_strdup_printf ("pid %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT, pid, start);
  g_autofree char *u = g_strdup_printf ("uid %u", uid);

  return GPOINTER_TO_UINT (g_hash_table_lookup (claims, p)) > 1 ||
         GPOINTER_TO_UINT (g_hash_table_lookup (claims, u)) > 1;
}

/* Forgets which process @r names, so that its cleanup signals nothing. */
static gboolean
drop_claim (BgVms       *vms,
            BgResource  *r,
            GError     **error)
{
  GVariantDict dict;

  g_variant_dict_init (&dict, r->details);
  g_variant_dict_remove (&dict, "pid");
  g_variant_dict_remove (&dict, "start-time");
  return bg_registry_set_details (vms->registry, r, g_variant_dict_end (&dict), error);
}

/* After a restart: VMMs that still run are watched again (through a
 * pidfd; they are no longer our children); dead ones are cleaned up. */
void
bg_vms_recover (BgVms *vms)
{
  g_autoptr(GPtrArray) all = bg_registry_list (vms->registry, BG_KIND_VM);
  g_autoptr(GHashTable) claims = count_claims (all);

  for (guint i = 0; i < all->len; i++)
    {
      BgResource *r = all->pdata[i];
      const char *name = bg_resource_get_string (r, "vm");
      guint64 pid, start;
      guint32 uid;
      g_autoptr(GError) error = NULL;
      BgVmm *vmm;

      if (r->state != BG_RESOURCE_READY || name == NULL)
        continue;
      recorded_process (r, &pid, &start, &uid);
      /* A process or jail uid two records claim is neither's: adopting
       * it would let one owner's KillVm reach the other's VMM, and the
       * cleanup of either must not signal it. */
      if (claim_contested (claims, pid, start, uid))
        {
          g_message ("VM %s: another record names its process or jail uid; not adopting it", r->name);
          if (!drop_claim (vms, r, &error) || !bg_daemon_release_resource (vms->daemon, r, &error))
            g_warning ("%s", error->message);
          continue;
        }
      /* The record names a process; the kernel says whether it is
       * still that VM's: the same start time, and a jail uid (never
       * root's or a user's process, whatever the record says). */
      if (pid == 0 || start == 0 || !bg_proc_is_jail_uid (uid) || bg_proc_get_start_time (pid) != start ||
          bg_proc_get_uid (pid) != uid)
        {
          g_message ("VM %s is gone; cleaning up", r->name);
          if (!bg_daemon_release_resource (vms->daemon, r, &error))
            g_warning ("%s", error->message);
          continue;
        }
      /* Its disks must still be its own: a loop device freed while no
       * mechanism ran may now be on another user's file. */
      if (!disks_still_its_own (r))
        {
          g_message ("VM %s: its disks are not provably its own; killing it", r->name);
          bg_proc_kill_if_same (pid, start, uid);
          if (!bg_daemon_release_resource (vms->daemon, r, &error))
            g_warning ("%s", error->message);
          continue;
        }
      vmm = bg_vmm_new (r->name, name, r->owner, uid, vmm_exited, vms);
      vmm->pid = pid;
      vmm->tap = g_strdup (bg_resource_get_string (r, "tap"));
      bg_daemon_hold (vms->daemon);
      g_hash_table_replace (vms->running, g_strdup (r->name), vmm);
      if (!bg_vmm_watch_process (vmm, -1, -1, &error))
        {
          g_warning ("VM %s: %s", r->name, error->message);
          take_vmm (vms, vmm);
          finish_vmm (vms, vmm);
        }
    }

  /* Shared bases of VMs that did not survive: detached. */
  bg_storage_unshare_bases (vms->storage, NULL, vms->running);

  /* Jails no live VMM explains: a crash's, or an older mechanism's under
   * the state dir (whose jails a reboot did not clear). */
  for (guint d = 0; d < 2; d++)
    {
      const char *dir = d == 0 ? run_dir (vms) : bg_daemon_get_state_dir (vms->daemon);
      g_autoptr(GPtrArray) ids = bg_jail_list (dir);

      for (guint i = 0; i < ids->len; i++)
        {
          g_autoptr(GError) error = NULL;

          if (g_hash_table_contains (vms->running, ids->pdata[i]))
            continue;
          g_message ("Removing the jail %s/jail/%s: no VMM runs in it", dir, (char *) ids->pdata[i]);
          if (!bg_jail_destroy (dir, ids->pdata[i], &error))
            g_warning ("%s", error->message);
        }
    }
}

BgVms *
bg_vms_new (BgDaemon  *daemon,
            BgNetwork *network,
            BgStorage *storage)
{
  BgVms *vms = g_new0 (BgVms, 1);

  vms->daemon = daemon;
  vms->registry = bg_daemon_get_registry (daemon);
  vms->network = network;
  vms->storage = storage;
  vms->running = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                        (GDestroyNotify) bg_vmm_free);
  bg_daemon_add_kind (daemon, &vm_kind, vms);
  return vms;
}

void
bg_vms_free (BgVms *vms)
{
  if (vms == NULL)
    return;
  /* Running VMMs are left running: the next mechanism adopts them. The
   * daemon is going away, so their holds on it are not given back. */
  g_hash_table_unref (vms->running);
  g_free (vms);
}
