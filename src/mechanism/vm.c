/* vm.c: launching jailed VMMs and handing their sockets to the caller.
 *
 * LaunchVm arms an inotify watch on the jail's run/ dir on the main loop
 * *before* it spawns the VMM. As each socket appears (the API socket, then
 * the vsock socket once the CLI configured it) it is opened O_PATH |
 * O_NOFOLLOW, checked to be a socket with one link owned by the jail uid,
 * and chowned to the caller through that very fd, then made 0600: the VMM
 * cannot swap in a symlink or a hard link between check and chown. The
 * method replies only once the API socket is the caller's, so the caller
 * never probes a socket it cannot open. The VMM's exit is watched through
 * a pidfd; it emits VmExited and removes the jail, the loop device and
 * the registry entry, and gives the tap back to its owner.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib-unix.h>
#include <gio/gunixfdlist.h>

#include "bg-error.h"
#include "bg-names.h"
#include "auth.h"
#include "jail.h"
#include "network.h"
#include "storage.h"
#include "validate.h"
#include "vm.h"

#define DEFAULT_LAUNCH_TIMEOUT_MS 5000
#define TAIL_MAX 4096

struct _BgVms {
  BgDaemon   *daemon;
  GHashTable *running;   /* id -> Vm */
};

typedef struct {
  BgVms    *vms;
  char     *id;
  char     *vm_name;
  uid_t     owner;
  BgJail   *jail;
  GPid      pid;
  gboolean  is_child;
  int       pidfd;
  guint     pidfd_source;
  int       loop_fd;
  int       config_loop_fd;
  char     *tap;
  int       output_fd;
  guint     output_source;
  int       console_fd;
  GString  *tail;
  int       inotify_fd;
  guint     inotify_source;
  gboolean  api_ready;
  gboolean  vsock_ready;
  BgCall   *pending;       /* LaunchVm waiting for the API socket */
  guint     timeout_source;
  gboolean  held;
} Vm;

static int
sys_pidfd_open (pid_t pid)
{
  return syscall (SYS_pidfd_open, pid, 0);
}

static int
sys_pidfd_send_signal (int pidfd, int sig)
{
  return syscall (SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

static char *
vm_id (uid_t       owner,
       const char *vm_name)
{
  return g_strdup_printf ("u%u-%s", (guint) owner, vm_name);
}

static gboolean
validate_vm_id (const char  *field,
                const char  *name,
                GError     **error)
{
  const char *dash = name ? strchr (name, '-') : NULL;
  guint64 uid;
  g_autofree char *num = NULL;

  if (name != NULL && name[0] == 'u' && dash != NULL)
    {
      num = g_strndup (name + 1, dash - name - 1);
      if (g_ascii_string_to_unsigned (num, 10, 0, G_MAXUINT32, &uid, NULL) && bg_name_is_valid (dash + 1))
        return TRUE;
    }
  g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
               "%s: not a VM resource name (u<uid>-<vm name>)", field);
  return FALSE;
}

/* The process's start time (clock ticks since boot), to tell a PID that
 * still is our VMM from one the kernel reused. */
static guint64
process_start_time (pid_t pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/stat", (int) pid);
  g_autofree char *text = NULL;
  g_auto(GStrv) fields = NULL;
  const char *after;
  guint64 start = 0;

  if (!g_file_get_contents (path, &text, NULL, NULL) || (after = strrchr (text, ')')) == NULL)
    return 0;
  fields = g_strsplit (after + 2, " ", -1);
  /* field 22 overall is the 20th after "pid (comm)" */
  if (g_strv_length (fields) > 19)
    g_ascii_string_to_unsigned (fields[19], 10, 0, G_MAXUINT64, &start, NULL);
  return start;
}

static const char *
state_dir (BgVms *vms)
{
  return bg_daemon_get_state_dir (vms->daemon);
}

static void
vm_free (Vm *vm)
{
  g_clear_handle_id (&vm->pidfd_source, g_source_remove);
  g_clear_handle_id (&vm->output_source, g_source_remove);
  g_clear_handle_id (&vm->inotify_source, g_source_remove);
  g_clear_handle_id (&vm->timeout_source, g_source_remove);
  if (vm->pidfd >= 0)
    close (vm->pidfd);
  if (vm->loop_fd >= 0)
    close (vm->loop_fd);
  if (vm->config_loop_fd >= 0)
    close (vm->config_loop_fd);
  if (vm->output_fd >= 0)
    close (vm->output_fd);
  if (vm->console_fd >= 0)
    close (vm->console_fd);
  if (vm->inotify_fd >= 0)
    close (vm->inotify_fd);
  if (vm->tail)
    g_string_free (vm->tail, TRUE);
  if (vm->held)
    bg_daemon_release (vm->vms->daemon);
  bg_jail_free (vm->jail);
  g_free (vm->id);
  g_free (vm->vm_name);
  g_free (vm->tap);
  g_free (vm);
}

static Vm *
vm_new (BgVms      *vms,
        const char *vm_name,
        uid_t       owner)
{
  Vm *vm = g_new0 (Vm, 1);

  vm->vms = vms;
  vm->vm_name = g_strdup (vm_name);
  vm->owner = owner;
  vm->id = vm_id (owner, vm_name);
  vm->pidfd = vm->loop_fd = vm->config_loop_fd = vm->output_fd = vm->console_fd = vm->inotify_fd = -1;
  vm->tail = g_string_new (NULL);
  /* A running VMM (or one being started) is pending work: no idle exit. */
  bg_daemon_hold (vms->daemon);
  vm->held = TRUE;
  return vm;
}

/* Undoes everything a launch did, in reverse. Safe on a half-made VM. */
static void
vm_teardown (BgVms      *vms,
             const char *id,
             uid_t       owner,
             const char *tap,
             GPid        pid,
             gboolean    is_child)
{
  BgRegistry *registry = bg_daemon_get_registry (vms->daemon);
  BgResource *r = bg_registry_lookup (registry, "vm", id);
  g_autoptr(GError) error = NULL;

  if (pid > 0)
    {
      kill (pid, SIGKILL);
      if (is_child)
        waitpid (pid, NULL, 0);
    }
  if (tap != NULL && !bg_network_tap_set_owner (tap, owner, &error))
    g_warning ("Could not give tap %s back to uid %u: %s", tap, (guint) owner, error->message);
  g_clear_error (&error);
  if (!bg_jail_destroy (state_dir (vms), id, &error))
    g_warning ("%s", error->message);
  if (r != NULL)
    bg_registry_remove (registry, r, NULL);
}

static void
vm_finish (Vm *vm)
{
  g_hash_table_remove (vm->vms->running, vm->id);
}

static char *
vm_tail (Vm *vm)
{
  g_auto(GStrv) lines = g_strsplit (g_strstrip (vm->tail->str), "\n", -1);
  guint n = g_strv_length (lines);
  guint from = n > 8 ? n - 8 : 0;

  if (n == 0 || *vm->tail->str == '\0')
    return g_strdup ("(the VMM printed nothing)");
  return g_strjoinv ("\n", lines + from);
}

static void
fail_pending (Vm     *vm,
              GError *error)
{
  if (vm->pending != NULL)
    {
      bg_call_return_error (vm->pending, error);
      vm->pending = NULL;
    }
  else
    g_error_free (error);
}

static void
on_vm_exit (Vm  *vm,
             int  status)
{
  BgMechanism1 *skeleton = bg_daemon_get_skeleton (vm->vms->daemon);
  g_autofree char *tail = vm_tail (vm);

  g_debug ("VMM of %s (pid %d) exited with status %d", vm->id, (int) vm->pid, status);
  /* Everything is gone before anyone hears of the exit. */
  vm_teardown (vm->vms, vm->id, vm->owner, vm->tap, 0, FALSE);
  if (vm->pending != NULL)
    fail_pending (vm, g_error_new (BG_ERROR, BG_ERROR_FAILED,
                                   "the VMM exited (status %d) before its API socket appeared:\n%s",
                                   status, tail));
  bg_mechanism1_emit_vm_exited (skeleton, vm->vm_name, vm->owner, status);
  vm_finish (vm);
}

static gboolean
on_pidfd (int          fd,
          GIOCondition condition,
          gpointer     data)
{
  Vm *vm = data;
  int status = -1;

  vm->pidfd_source = 0;
  /* Drain the output first, so an error message is not lost. */
  if (vm->output_fd >= 0)
    {
      char buf[4096];
      ssize_t n;
      while ((n = read (vm->output_fd, buf, sizeof buf)) > 0)
        {
          g_string_append_len (vm->tail, buf, n);
          if (vm->console_fd >= 0 && write (vm->console_fd, buf, n) < 0)
            {
              close (vm->console_fd);
              vm->console_fd = -1;
            }
        }
    }
  if (vm->is_child)
    {
      int raw;
      if (waitpid (vm->pid, &raw, 0) == vm->pid)
        status = WIFEXITED (raw) ? WEXITSTATUS (raw) : 128 + WTERMSIG (raw);
    }
  vm->pid = 0;
  on_vm_exit (vm, status);
  return G_SOURCE_REMOVE;
}

static gboolean
on_output (int          fd,
           GIOCondition condition,
           gpointer     data)
{
  Vm *vm = data;
  char buf[4096];
  ssize_t n = read (fd, buf, sizeof buf);

  if (n <= 0)
    {
      if (n < 0 && errno == EAGAIN)
        return G_SOURCE_CONTINUE;
      vm->output_source = 0;
      return G_SOURCE_REMOVE;
    }
  g_string_append_len (vm->tail, buf, n);
  if (vm->tail->len > TAIL_MAX)
    g_string_erase (vm->tail, 0, vm->tail->len - TAIL_MAX);
  /* The caller's console log; if it stops taking output, keep going. */
  if (vm->console_fd >= 0 && write (vm->console_fd, buf, n) < 0)
    {
      close (vm->console_fd);
      vm->console_fd = -1;
    }
  return G_SOURCE_CONTINUE;
}

/* Gives the socket @name in the jail's run dir to the caller, through an
 * O_PATH fd so the object checked is the object chowned. */
static gboolean
hand_over (Vm          *vm,
           const char  *name,
           GError     **error)
{
  int dir = open (vm->jail->run, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  g_autofree char *proc = NULL;
  struct stat st;
  int fd;

  if (dir < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot open the jail's run dir: %s", g_strerror (errno));
      return FALSE;
    }
  fd = openat (dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  close (dir);
  if (fd < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot open %s: %s", name, g_strerror (errno));
      return FALSE;
    }
  if (fstat (fd, &st) < 0 || !S_ISSOCK (st.st_mode) || st.st_nlink != 1 || st.st_uid != vm->jail->uid)
    {
      close (fd);
      g_set_error (error, BG_ERROR, BG_ERROR_UNSAFE,
                   "%s in the jail is not a socket the VMM made; refusing to hand it over", name);
      return FALSE;
    }
  proc = g_strdup_printf ("/proc/self/fd/%d", fd);
  if (fchownat (fd, "", vm->owner, -1, AT_EMPTY_PATH) < 0 || chmod (proc, 0600) < 0)
    {
      int errsv = errno;
      close (fd);
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot hand %s over: %s", name, g_strerror (errsv));
      return FALSE;
    }
  close (fd);
  return TRUE;
}

static GVariant *
launch_reply (Vm *vm)
{
  g_autofree char *api = g_build_filename (vm->jail->run, BG_JAIL_API_SOCKET, NULL);
  g_autofree char *vsock = g_build_filename (vm->jail->run, BG_JAIL_VSOCK_SOCKET, NULL);
  GVariantBuilder paths;

  g_variant_builder_init (&paths, G_VARIANT_TYPE ("a{sv}"));
  g_variant_builder_add (&paths, "{sv}", "kernel", g_variant_new_string ("/vmlinux"));
  g_variant_builder_add (&paths, "{sv}", "rootfs", g_variant_new_string ("/rootfs"));
  g_variant_builder_add (&paths, "{sv}", "vsock", g_variant_new_string ("/run/" BG_JAIL_VSOCK_SOCKET));
  if (vm->config_loop_fd >= 0)
    g_variant_builder_add (&paths, "{sv}", "config-drive", g_variant_new_string ("/cidata"));
  if (g_file_test (vm->jail->root, G_FILE_TEST_EXISTS))
    {
      g_autofree char *initrd = g_build_filename (vm->jail->root, "initrd", NULL);
      if (g_file_test (initrd, G_FILE_TEST_EXISTS))
        g_variant_builder_add (&paths, "{sv}", "initrd", g_variant_new_string ("/initrd"));
    }
  g_variant_builder_add (&paths, "{sv}", "uid", g_variant_new_uint32 (vm->jail->uid));
  g_variant_builder_add (&paths, "{sv}", "jail", g_variant_new_string (vm->jail->root));
  return g_variant_new ("(sst@a{sv})", api, vsock, (guint64) vm->pid, g_variant_builder_end (&paths));
}

static void
socket_appeared (Vm         *vm,
                 const char *name)
{
  g_autoptr(GError) error = NULL;
  BgRegistry *registry = bg_daemon_get_registry (vm->vms->daemon);

  if (g_str_equal (name, BG_JAIL_API_SOCKET) && !vm->api_ready)
    {
      BgResource *r = bg_registry_lookup (registry, "vm", vm->id);

      if (!hand_over (vm, name, &error))
        {
          fail_pending (vm, g_steal_pointer (&error));
          kill (vm->pid, SIGKILL);
          return;
        }
      vm->api_ready = TRUE;
      g_clear_handle_id (&vm->timeout_source, g_source_remove);
      if (r != NULL && !bg_registry_set_state (registry, r, BG_RESOURCE_READY, &error))
        g_warning ("%s", error->message);
      if (vm->pending != NULL)
        {
          bg_call_return_value (vm->pending, launch_reply (vm));
          vm->pending = NULL;
        }
    }
  else if (g_str_equal (name, BG_JAIL_VSOCK_SOCKET) && !vm->vsock_ready)
    {
      if (!hand_over (vm, name, &error))
        g_warning ("VM %s: %s", vm->id, error->message);
      vm->vsock_ready = TRUE;
    }

  /* Both handed over: nothing left to watch. */
  if (vm->api_ready && vm->vsock_ready)
    {
      g_clear_handle_id (&vm->inotify_source, g_source_remove);
      close (vm->inotify_fd);
      vm->inotify_fd = -1;
    }
}

static gboolean
on_inotify (int          fd,
            GIOCondition condition,
            gpointer     data)
{
  Vm *vm = data;
  char buf[4096] __attribute__ ((aligned (__alignof__ (struct inotify_event))));
  ssize_t n = read (fd, buf, sizeof buf);

  for (char *p = buf; n > 0 && p < buf + n;)
    {
      struct inotify_event *ev = (struct inotify_event *) p;

      if (ev->len > 0)
        socket_appeared (vm, ev->name);
      p += sizeof *ev + ev->len;
      if (vm->inotify_fd < 0)
        {
          vm->inotify_source = 0;
          return G_SOURCE_REMOVE;
        }
    }
  return G_SOURCE_CONTINUE;
}

static gboolean
on_launch_timeout (gpointer data)
{
  Vm *vm = data;
  g_autofree char *tail = vm_tail (vm);

  vm->timeout_source = 0;
  fail_pending (vm, g_error_new (BG_ERROR, BG_ERROR_TIMEOUT,
                                 "the VMM did not create its API socket in time; its last output:\n%s",
                                 tail));
  /* Its exit (pidfd) tears the rest down. */
  if (vm->pidfd >= 0)
    sys_pidfd_send_signal (vm->pidfd, SIGKILL);
  return G_SOURCE_REMOVE;
}

/* ---- LaunchVm ---- */

typedef struct {
  char     *vm_name;
  char     *tap;
  int       kernel_fd;
  int       rootfs_fd;
  int       initrd_fd;
  int       console_fd;
  int       config_fd;
  guint     timeout_ms;
  gboolean  read_only;
} LaunchData;

static void
launch_data_free (LaunchData *d)
{
  g_free (d->vm_name);
  g_free (d->tap);
  for (int *fd = &d->kernel_fd; fd <= &d->config_fd; fd++)
    if (*fd >= 0)
      close (*fd);
  g_free (d);
}

static char *
resolve_vmm (BgDaemon  *daemon,
             guint     *timeout_ms)
{
  g_autoptr(GKeyFile) kf = g_key_file_new ();
  g_autofree char *conf = g_build_filename (bg_daemon_get_config_dir (daemon), "mechanism.conf", NULL);
  char *path = NULL;

  if (g_key_file_load_from_file (kf, conf, G_KEY_FILE_NONE, NULL))
    {
      path = g_key_file_get_string (kf, "vmm", "firecracker", NULL);
      if (*timeout_ms == 0 && g_key_file_has_key (kf, "vmm", "launch-timeout-ms", NULL))
        *timeout_ms = CLAMP (g_key_file_get_integer (kf, "vmm", "launch-timeout-ms", NULL), 100, 60000);
    }
  if (*timeout_ms == 0)
    *timeout_ms = DEFAULT_LAUNCH_TIMEOUT_MS;
  return path ? g_strstrip (path) : g_strdup (BG_DEFAULT_FIRECRACKER);
}

static gboolean
allocate_jail_uid (BgRegistry  *registry,
                   uid_t       *out,
                   GError     **error)
{
  g_autoptr(GPtrArray) vms = bg_registry_list (registry, "vm");
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

static void
launch_authorized (BgCall *call)
{
  LaunchData *d = call->data;
  BgVms *vms = bg_daemon_get_vms (call->daemon);
  BgRegistry *registry = bg_daemon_get_registry (call->daemon);
  g_autofree char *id = vm_id (call->caller_uid, d->vm_name);
  g_autofree char *vmm_path = NULL;
  g_auto(GStrv) argv = NULL;
  GError *error = NULL;
  GVariantBuilder details;
  BgResource *r;
  gboolean dynamic;
  uid_t jail_uid;
  dev_t rdev;
  int output[2] = { -1, -1 };
  Vm *vm;

  if (g_hash_table_contains (vms->running, id))
    {
      bg_call_return_gerror (call, BG_ERROR, BG_ERROR_BUSY, "vm_name: %s is already running", d->vm_name);
      return;
    }
  if (d->tap != NULL)
    {
      BgResource *tap = bg_registry_lookup (registry, "tap", d->tap);
      if (tap == NULL || tap->owner != call->caller_uid)
        {
          bg_call_return_gerror (call, BG_ERROR, tap ? BG_ERROR_NOT_OWNER : BG_ERROR_NOT_FOUND,
                                 "options: tap %s is not one of your taps", d->tap);
          return;
        }
    }

  vmm_path = resolve_vmm (call->daemon, &d->timeout_ms);
  if (!bg_jail_check_vmm (vmm_path, &dynamic, &error) ||
      !allocate_jail_uid (registry, &jail_uid, &error))
    {
      bg_call_return_error (call, error);
      return;
    }

  /* A stale entry of a VMM that died while no mechanism ran. */
  if ((r = bg_registry_lookup (registry, "vm", id)) != NULL &&
      !bg_daemon_release_resource (call->daemon, r, &error))
    {
      bg_call_return_error (call, error);
      return;
    }

  g_variant_builder_init (&details, G_VARIANT_TYPE ("a{sv}"));
  g_variant_builder_add (&details, "{sv}", "vm", g_variant_new_string (d->vm_name));
  g_variant_builder_add (&details, "{sv}", "uid", g_variant_new_uint32 (jail_uid));
  if (d->tap)
    g_variant_builder_add (&details, "{sv}", "tap", g_variant_new_string (d->tap));
  r = bg_registry_add (registry, "vm", id, call->caller_uid, g_variant_builder_end (&details), &error);
  if (r == NULL)
    {
      bg_call_return_error (call, error);
      return;
    }

  vm = vm_new (vms, d->vm_name, call->caller_uid);
  g_hash_table_replace (vms->running, g_strdup (id), vm);
  vm->jail = bg_jail_create (state_dir (vms), id, call->caller_uid, jail_uid, vmm_path, dynamic, &error);
  if (vm->jail == NULL ||
      !bg_jail_add_file (vm->jail, "vmlinux", d->kernel_fd, &error) ||
      (d->initrd_fd >= 0 && !bg_jail_add_file (vm->jail, "initrd", d->initrd_fd, &error)))
    goto fail;
  vm->loop_fd = bg_loop_attach (d->rootfs_fd, d->read_only, &rdev, NULL, &error);
  if (vm->loop_fd < 0 || !bg_jail_add_block (vm->jail, "rootfs", rdev, &error))
    goto fail;
  if (d->config_fd >= 0)
    {
      /* The guest's configuration: read-only, a second disk. */
      vm->config_loop_fd = bg_loop_attach (d->config_fd, TRUE, &rdev, NULL, &error);
      if (vm->config_loop_fd < 0 || !bg_jail_add_block (vm->jail, "cidata", rdev, &error))
        goto fail;
    }
  if (d->tap != NULL)
    {
      /* The jailed VMM opens the tap itself: it must be the jail uid's
       * for the VM's lifetime (the registry still says whose it is). */
      if (!bg_network_tap_set_owner (d->tap, jail_uid, &error))
        goto fail;
      vm->tap = g_strdup (d->tap);
    }

  /* Armed before the spawn: the socket cannot appear unseen. */
  vm->inotify_fd = inotify_init1 (IN_NONBLOCK | IN_CLOEXEC);
  if (vm->inotify_fd < 0 || inotify_add_watch (vm->inotify_fd, vm->jail->run, IN_CREATE | IN_MOVED_TO) < 0)
    {
      g_set_error (&error, BG_ERROR, BG_ERROR_FAILED, "cannot watch the jail: %s", g_strerror (errno));
      goto fail;
    }
  vm->inotify_source = g_unix_fd_add (vm->inotify_fd, G_IO_IN, on_inotify, vm);

  if (!g_unix_open_pipe (output, FD_CLOEXEC, NULL) || !g_unix_set_fd_nonblocking (output[0], TRUE, NULL))
    {
      g_set_error (&error, BG_ERROR, BG_ERROR_FAILED, "cannot make a pipe: %s", g_strerror (errno));
      goto fail;
    }
  argv = bg_jail_build_argv (id);
  vm->pid = bg_jail_spawn (vm->jail, (const char * const *) argv, output[1], &error);
  close (output[1]);
  vm->output_fd = output[0];
  if (vm->pid <= 0)
    goto fail;
  vm->is_child = TRUE;
  vm->output_source = g_unix_fd_add (vm->output_fd, G_IO_IN | G_IO_HUP, on_output, vm);
  vm->pidfd = sys_pidfd_open (vm->pid);
  if (vm->pidfd < 0)
    {
      g_set_error (&error, BG_ERROR, BG_ERROR_FAILED, "cannot watch the VMM: %s", g_strerror (errno));
      goto fail;
    }
  vm->pidfd_source = g_unix_fd_add (vm->pidfd, G_IO_IN, on_pidfd, vm);
  vm->console_fd = d->console_fd;
  d->console_fd = -1;

  {
    GVariantDict dict;
    g_variant_dict_init (&dict, r->details);
    g_variant_dict_insert (&dict, "pid", "t", (guint64) vm->pid);
    g_variant_dict_insert (&dict, "start-time", "t", process_start_time (vm->pid));
    if (!bg_registry_set_details (registry, r, g_variant_dict_end (&dict), &error))
      goto fail;
  }

  vm->pending = call;
  vm->timeout_source = g_timeout_add (d->timeout_ms, on_launch_timeout, vm);
  bg_daemon_test_hook (call->daemon, "launch-spawned");
  return;

fail:
  {
    GPid pid = vm->pid;
    g_autofree char *tap = g_strdup (vm->tap);

    vm->pid = 0;
    vm_finish (vm);
    vm_teardown (vms, id, call->caller_uid, tap, pid, TRUE);
  }
  bg_call_return_error (call, error);
}

static int
take_fd (GUnixFDList  *list,
         GVariant     *handle,
         const char   *field,
         GError      **error)
{
  gint32 index = g_variant_get_handle (handle);
  int fd;

  if (list == NULL || index < 0 || index >= g_unix_fd_list_get_length (list))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "%s: no such file descriptor in the message", field);
      return -1;
    }
  fd = g_unix_fd_list_get (list, index, error);
  if (fd < 0)
    g_prefix_error (error, "%s: ", field);
  return fd;
}

/* Files come from the caller as fds it opened itself; check each is what
 * it claims to be before the mechanism touches it. */
static gboolean
check_fd (int          fd,
          const char  *field,
          gboolean     want_write,
          gboolean     regular_only,
          GError     **error)
{
  struct stat st;
  int flags = fcntl (fd, F_GETFL);

  if (fstat (fd, &st) < 0 || flags < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "%s: unusable file descriptor", field);
      return FALSE;
    }
  if (!S_ISREG (st.st_mode) && (regular_only || !S_ISBLK (st.st_mode)))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                   "%s: must be a regular file%s", field, regular_only ? "" : " or a block device");
      return FALSE;
    }
  if (want_write && (flags & O_ACCMODE) == O_RDONLY)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "%s: must be opened for writing", field);
      return FALSE;
    }
  if (!want_write && (flags & O_ACCMODE) == O_WRONLY)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "%s: must be opened for reading", field);
      return FALSE;
    }
  return TRUE;
}

static gboolean
handle_launch_vm (BgMechanism1          *skeleton,
                  GDBusMethodInvocation *invocation,
                  GUnixFDList           *fd_list,
                  const char            *vm_name,
                  GVariant              *options,
                  GVariant              *kernel,
                  GVariant              *rootfs,
                  BgDaemon              *daemon)
{
  static const BgOptionSpec specs[] = {
    { "tap", "s" },
    { "initrd", "h" },
    { "console", "h" },
    { "timeout-ms", "u" },
    { "read-only", "b" },
    { "config-drive", "h" },
    { NULL }
  };
  g_autoptr(GError) error = NULL;
  LaunchData *d = g_new0 (LaunchData, 1);
  GVariant *v;
  BgCall *call;

  d->kernel_fd = d->rootfs_fd = d->initrd_fd = d->console_fd = d->config_fd = -1;
  if (!bg_name_validate ("vm_name", vm_name, &error) ||
      !bg_validate_options (options, specs, &error))
    goto bad;
  d->vm_name = g_strdup (vm_name);
  if (g_variant_lookup (options, "tap", "s", &d->tap) && !bg_network_validate_tap_name ("options: tap", d->tap, &error))
    goto bad;
  g_variant_lookup (options, "timeout-ms", "u", &d->timeout_ms);
  if (d->timeout_ms != 0 && (d->timeout_ms < 100 || d->timeout_ms > 60000))
    {
      g_set_error (&error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "options: timeout-ms must be 100 to 60000");
      goto bad;
    }
  g_variant_lookup (options, "read-only", "b", &d->read_only);

  if ((d->kernel_fd = take_fd (fd_list, kernel, "kernel", &error)) < 0 ||
      !check_fd (d->kernel_fd, "kernel", FALSE, TRUE, &error) ||
      (d->rootfs_fd = take_fd (fd_list, rootfs, "rootfs", &error)) < 0 ||
      !check_fd (d->rootfs_fd, "rootfs", !d->read_only, TRUE, &error))
    goto bad;
  if ((v = g_variant_lookup_value (options, "initrd", G_VARIANT_TYPE_HANDLE)) != NULL)
    {
      d->initrd_fd = take_fd (fd_list, v, "options: initrd", &error);
      g_variant_unref (v);
      if (d->initrd_fd < 0 || !check_fd (d->initrd_fd, "options: initrd", FALSE, TRUE, &error))
        goto bad;
    }
  if ((v = g_variant_lookup_value (options, "config-drive", G_VARIANT_TYPE_HANDLE)) != NULL)
    {
      d->config_fd = take_fd (fd_list, v, "options: config-drive", &error);
      g_variant_unref (v);
      if (d->config_fd < 0 || !check_fd (d->config_fd, "options: config-drive", FALSE, TRUE, &error))
        goto bad;
    }
  if ((v = g_variant_lookup_value (options, "console", G_VARIANT_TYPE_HANDLE)) != NULL)
    {
      d->console_fd = take_fd (fd_list, v, "options: console", &error);
      g_variant_unref (v);
      if (d->console_fd < 0 || !check_fd (d->console_fd, "options: console", TRUE, TRUE, &error))
        goto bad;
    }

  call = bg_call_new (daemon, invocation);
  bg_call_set_data (call, d, (GDestroyNotify) launch_data_free);
  bg_call_authorize (call, "org.banger.vm", bg_details_new ("banger.vm", vm_name), launch_authorized);
  return G_DBUS_METHOD_INVOCATION_HANDLED;

bad:
  launch_data_free (d);
  g_dbus_method_invocation_return_gerror (invocation, error);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- KillVm ---- */

static gboolean
kill_vm_resource (BgVms       *vms,
                  BgResource  *r,
                  GError     **error)
{
  Vm *vm = g_hash_table_lookup (vms->running, r->name);
  guint64 pid = 0, start = 0;

  if (vm != NULL && vm->pidfd >= 0)
    {
      if (sys_pidfd_send_signal (vm->pidfd, SIGKILL) < 0 && errno != ESRCH)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot kill the VMM: %s", g_strerror (errno));
          return FALSE;
        }
      return TRUE;
    }
  /* Not ours in memory (the mechanism restarted): a PID from the
   * registry is trusted only if its start time still matches. */
  g_variant_lookup (r->details, "pid", "t", &pid);
  g_variant_lookup (r->details, "start-time", "t", &start);
  if (pid > 0 && start != 0 && process_start_time (pid) == start)
    kill (pid, SIGKILL);
  return TRUE;
}

typedef struct {
  char *id;
} KillData;

static void
kill_data_free (KillData *d)
{
  g_free (d->id);
  g_free (d);
}

static gboolean
kill_vm (BgCall      *call,
         BgResource  *vm,
         GError     **error)
{
  return kill_vm_resource (bg_daemon_get_vms (call->daemon), vm, error);
}

static void
kill_resolved (BgCall *call)
{
  KillData *d = call->data;
  char *id = d->id;

  /* A name means the caller's own VM first; failing that, a full id
   * (u<uid>-<name>) addresses anyone's VM, which needs admin. */
  if (bg_name_is_valid (id))
    {
      g_autofree char *own = vm_id (call->caller_uid, id);

      if (bg_registry_lookup (bg_daemon_get_registry (call->daemon), "vm", own) != NULL ||
          !validate_vm_id ("vm_name", id, NULL))
        {
          d->id = g_steal_pointer (&own);
          g_free (id);
        }
    }
  bg_call_act_on_owned (call, "vm_name", "vm", d->id, kill_vm);
}

static gboolean
handle_kill_vm (BgMechanism1          *skeleton,
                GDBusMethodInvocation *invocation,
                const char            *vm_name,
                BgDaemon              *daemon)
{
  g_autoptr(GError) error = NULL;
  KillData *d;
  BgCall *call;

  if (!bg_name_is_valid (vm_name) && !validate_vm_id ("vm_name", vm_name, NULL))
    {
      bg_name_validate ("vm_name", vm_name, &error);
      g_dbus_method_invocation_return_gerror (invocation, error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  d = g_new0 (KillData, 1);
  d->id = g_strdup (vm_name);
  call = bg_call_new (daemon, invocation);
  bg_call_set_data (call, d, (GDestroyNotify) kill_data_free);
  bg_call_authorize (call, "org.banger.vm", bg_details_new ("banger.vm", vm_name), kill_resolved);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- the "vm" resource kind ---- */

static gboolean
release_vm (BgDaemon    *daemon,
            BgResource  *resource,
            GError     **error)
{
  BgVms *vms = bg_daemon_get_vms (daemon);
  Vm *vm = g_hash_table_lookup (vms->running, resource->name);
  const char *tap = bg_resource_get_string (resource, "tap");
  guint64 pid = 0, start = 0;

  if (vm != NULL)
    {
      /* Ours: kill and reap now, then tear down. */
      GPid p = vm->pid;
      gboolean child = vm->is_child;
      g_autofree char *t = g_strdup (vm->tap);

      vm->pid = 0;
      fail_pending (vm, g_error_new (BG_ERROR, BG_ERROR_FAILED, "the VM was released"));
      vm_finish (vm);
      if (p > 0)
        {
          kill (p, SIGKILL);
          if (child)
            waitpid (p, NULL, 0);
        }
      if (t != NULL)
        bg_network_tap_set_owner (t, resource->owner, NULL);
    }
  else
    {
      g_variant_lookup (resource->details, "pid", "t", &pid);
      g_variant_lookup (resource->details, "start-time", "t", &start);
      if (pid > 0 && start != 0 && process_start_time (pid) == start)
        kill (pid, SIGKILL);
      if (tap != NULL)
        bg_network_tap_set_owner (tap, resource->owner, NULL);
    }
  return bg_jail_destroy (state_dir (vms), resource->name, error);
}

const BgResourceKind bg_vm_kind = {
  .kind = "vm",
  .action = "org.banger.vm",
  .validate_name = validate_vm_id,
  .release = release_vm,
};

/* After a restart: VMMs that still run are watched again (through a
 * pidfd, they are no longer our children); dead ones are cleaned up. */
void
bg_vms_recover (BgVms *vms)
{
  BgRegistry *registry = bg_daemon_get_registry (vms->daemon);
  g_autoptr(GPtrArray) all = bg_registry_list (registry, "vm");

  for (guint i = 0; i < all->len; i++)
    {
      BgResource *r = all->pdata[i];
      guint64 pid = 0, start = 0;
      const char *name = bg_resource_get_string (r, "vm");
      int pidfd;
      Vm *vm;

      if (r->state != BG_RESOURCE_READY || name == NULL)
        continue;
      g_variant_lookup (r->details, "pid", "t", &pid);
      g_variant_lookup (r->details, "start-time", "t", &start);
      if (pid == 0 || start == 0 || process_start_time (pid) != start ||
          (pidfd = sys_pidfd_open (pid)) < 0)
        {
          g_autoptr(GError) error = NULL;
          g_message ("VM %s is gone; cleaning up", r->name);
          if (!bg_daemon_release_resource (vms->daemon, r, &error))
            g_warning ("%s", error->message);
          continue;
        }
      vm = vm_new (vms, name, r->owner);
      vm->pid = pid;
      vm->pidfd = pidfd;
      vm->api_ready = vm->vsock_ready = TRUE;
      vm->tap = g_strdup (bg_resource_get_string (r, "tap"));
      vm->pidfd_source = g_unix_fd_add (pidfd, G_IO_IN, on_pidfd, vm);
      g_hash_table_replace (vms->running, g_strdup (r->name), vm);
    }
}

BgVms *
bg_vms_new (BgDaemon *daemon)
{
  BgVms *vms = g_new0 (BgVms, 1);

  vms->daemon = daemon;
  vms->running = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) vm_free);
  return vms;
}

void
bg_vms_free (BgVms *vms)
{
  if (vms == NULL)
    return;
  /* Running VMMs are left running: the next mechanism adopts them. */
  g_hash_table_unref (vms->running);
  g_free (vms);
}

void
bg_vms_connect (BgVms        *vms,
                BgMechanism1 *skeleton)
{
  g_signal_connect (skeleton, "handle-launch-vm", G_CALLBACK (handle_launch_vm), vms->daemon);
  g_signal_connect (skeleton, "handle-kill-vm", G_CALLBACK (handle_kill_vm), vms->daemon);
}
