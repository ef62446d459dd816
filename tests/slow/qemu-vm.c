/* qemu-vm.c: banger-made VMs booted for real by QEMU (software
 * emulation, a test instrument only), for the slow suite's tests. */
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "harness.h"
#include "qemu-vm.h"

JsonObject *
json_object (const char *text)
{
  g_autoptr(JsonParser) p = json_parser_new ();
  if (!json_parser_load_from_data (p, text, -1, NULL))
    g_error ("not JSON: %s", text);
  return json_object_ref (json_node_get_object (json_parser_get_root (p)));
}

void
vm_free (Vm *vm)
{
  g_free (vm->name);
  g_free (vm->tap);
  g_free (vm->mac);
  g_free (vm->address);
  g_free (vm->boot_args);
  g_free (vm->kernel);
  g_free (vm->initrd);
  g_ptr_array_unref (vm->drives);
  g_free (vm->console);
  if (vm->agent_dir != NULL)
    g_unlink (vm->agent_dir);
  g_free (vm->agent_socket);
  g_free (vm->agent_link);
  g_free (vm->agent_dir);
  g_free (vm);
}

/* What a path in the jail was, on the host. */
static char *
host_path (const char *jail_path,
           const char *vm_dir,
           const char *image_dir,
           gboolean    layered)
{
  if (g_str_equal (jail_path, "/rootfs"))
    return layered ? g_build_filename (image_dir, "rootfs.ext4", NULL) : g_build_filename (vm_dir, "disk.ext4", NULL);
  if (g_str_equal (jail_path, "/upper"))
    return g_build_filename (vm_dir, "upper.img", NULL);
  if (g_str_equal (jail_path, "/cidata"))
    return g_build_filename (vm_dir, "cidata.img", NULL);
  g_error ("a drive banger did not make: %s", jail_path);
}

/* `banger vm up NAME --no-wait` with the test VMM, which records what it
 * was told; then the VMM is killed (it cannot boot the guest). */
Vm *
make_vm (BgHarness  *h,
         const char *name,
         const char *image)
{
  g_autofree char *up = NULL, *err = NULL;
  g_autoptr(JsonObject) rec = NULL;
  Vm *vm;

  if (cli (h, &up, &err, "vm", "up", name, "--image", image, "--no-wait", "--disk", "3G", "--json", NULL) != 0)
    g_error ("vm up %s: %s", name, err);
  rec = json_object (up);
  vm = vm_from_record (h, name, rec);
  /* The VMM goes (it cannot boot the guest; QEMU will), and the record
   * stays "running", as for a VMM that died under a live guest: commands
   * that talk to the guest (vm ssh, sync, cp, forward) try it. */
  {
    gint64 pid = json_object_get_int_member (rec, "pid");
    g_assert_cmpint (pid, >, 1);
    g_assert_no_errno (kill ((pid_t) pid, SIGKILL));
    for (gint64 end = bg_test_deadline (5); g_get_monotonic_time () < end && kill ((pid_t) pid, 0) == 0;)
      g_usleep (10000);
  }
  return vm;
}

Vm *
vm_from_record (BgHarness  *h,
                const char *name,
                JsonObject *rec)
{
  g_autofree char *config = NULL;
  const char *image = json_object_get_string_member (rec, "image");
  g_autofree char *vm_dir = g_strdup_printf ("%s/home-%s/.local/state/banger/vms/%s", h->tmp, BG_TEST_USER_A, name);
  g_autofree char *image_dir = g_strdup_printf ("%s/home-%s/.local/share/banger/images/%s", h->tmp, BG_TEST_USER_A,
                                                image);
  g_autoptr(JsonObject) cfg = NULL;
  JsonObject *boot;
  JsonArray *drives;
  gboolean layered;
  Vm *vm = g_new0 (Vm, 1);

  layered = g_strcmp0 (json_object_get_string_member (rec, "disk_mode"), "layered") == 0;
  {
    const char *argv[] = { g_getenv ("BANGER_TEST_FC"), "--user=" BG_TEST_USER_A,
                           json_object_get_string_member (rec, "api_socket"), "config", NULL };
    bg_harness_run_argv (argv, &config, NULL);
  }
  cfg = json_object (config);
  boot = json_object_get_object_member (cfg, "boot-source");
  vm->name = g_strdup (name);
  vm->tap = g_strdup (json_object_get_string_member (rec, "tap"));
  vm->mac = g_strdup (json_object_get_string_member (rec, "mac"));
  vm->address = g_strdup (json_object_get_string_member (rec, "address"));
  vm->boot_args = g_strdup (json_object_get_string_member (boot, "boot_args"));
  vm->kernel = g_build_filename (image_dir, "vmlinux", NULL);
  vm->initrd = g_build_filename (image_dir, "initrd.img", NULL);
  vm->console = g_strdup_printf ("%s/%s-console.log", h->tmp, name);
  vm->drives = g_ptr_array_new_with_free_func (g_free);
  drives = json_object_get_array_member (cfg, "drives");
  for (guint i = 0; i < json_array_get_length (drives); i++)
    {
      JsonObject *d = json_array_get_object_element (drives, i);
      g_autofree char *file = host_path (json_object_get_string_member (d, "path_on_host"), vm_dir, image_dir,
                                         layered);
      g_ptr_array_add (vm->drives, g_strdup_printf ("%s%s", file, json_object_get_boolean_member (d, "is_read_only")
                                                                    ? ",readonly=on" : ""));
    }
  return vm;
}

void
agent_port (Vm         *vm,
            const char *vsock)
{
  g_autofree char *dir = g_path_get_dirname (vsock);
  g_autofree char *tmpl = g_build_filename (g_get_tmp_dir (), "bgq-XXXXXX", NULL);
  int fd = g_mkstemp (tmpl);

  /* A short name for QEMU's socket (sun_path holds 108 bytes): a link to
   * the jail's directory, where the socket is made under a name the VMM
   * does not look for yet. */
  g_assert_cmpint (fd, >=, 0);
  close (fd);
  g_unlink (tmpl);
  g_assert_no_errno (symlink (dir, tmpl));
  vm->agent_dir = g_steal_pointer (&tmpl);
  vm->agent_socket = g_build_filename (vm->agent_dir, "qemu-agent.sock", NULL);
  vm->agent_link = g_strdup_printf ("%s.guest_%u", vsock, 52u);
}

void
agent_plug (Vm     *vm,
            gint64  vmm_pid)
{
  g_autofree char *status_path = g_strdup_printf ("/proc/%" G_GINT64_FORMAT "/status", vmm_pid);
  g_autofree char *status = NULL, *dir = g_file_read_link (vm->agent_dir, NULL);
  g_autofree char *made = NULL;
  const char *uid_line;
  guint uid, gid;

  g_assert_nonnull (dir);
  made = g_build_filename (dir, "qemu-agent.sock", NULL);
  g_assert_true (g_file_get_contents (status_path, &status, NULL, NULL));
  g_assert_nonnull ((uid_line = strstr (status, "\nUid:")));
  uid = (guint) g_ascii_strtoull (uid_line + 5, NULL, 10);
  g_assert_nonnull ((uid_line = strstr (status, "\nGid:")));
  gid = (guint) g_ascii_strtoull (uid_line + 5, NULL, 10);
  /* The jailed VMM connects to it as its own user. */
  g_assert_no_errno (chown (made, uid, gid));
  g_assert_no_errno (chmod (made, 0600));
  g_assert_no_errno (rename (made, vm->agent_link));
}

void
boot (Vm *vm)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GError) error = NULL;

  g_unlink (vm->console);
  /* -icount: guest time follows executed instructions, so the kernel's
   * TSC-against-PIT calibration cannot be upset by a busy host (it
   * failed that way once and the guest spun at 0.000000). */
  for (const char * const *a = (const char *[]) { "qemu-system-x86_64", "-M", "microvm,acpi=on", "-cpu", "max",
                                                  "-m", "1024", "-smp", "1", "-icount", "shift=auto,sleep=off",
                                                  "-display", "none", "-monitor", "none", "-no-reboot",
                                                  "-nodefaults", NULL }; *a; a++)
    g_ptr_array_add (argv, g_strdup (*a));
  g_ptr_array_add (argv, g_strdup ("-serial"));
  g_ptr_array_add (argv, g_strdup_printf ("file:%s", vm->console));
  g_ptr_array_add (argv, g_strdup ("-kernel"));
  g_ptr_array_add (argv, g_strdup (vm->kernel));
  g_ptr_array_add (argv, g_strdup ("-initrd"));
  g_ptr_array_add (argv, g_strdup (vm->initrd));
  g_ptr_array_add (argv, g_strdup ("-append"));
  g_ptr_array_add (argv, g_strdup (vm->boot_args));
  /* The drives in banger's order: vda, vdb, vdc in the guest. */
  for (guint i = 0; i < vm->drives->len; i++)
    {
      g_ptr_array_add (argv, g_strdup ("-drive"));
      g_ptr_array_add (argv, g_strdup_printf ("id=d%u,file=%s,format=raw,if=none", i, (char *) vm->drives->pdata[i]));
      g_ptr_array_add (argv, g_strdup ("-device"));
      g_ptr_array_add (argv, g_strdup_printf ("virtio-blk-device,drive=d%u", i));
    }
  g_ptr_array_add (argv, g_strdup ("-netdev"));
  g_ptr_array_add (argv, g_strdup_printf ("tap,id=n0,ifname=%s,script=no,downscript=no", vm->tap));
  g_ptr_array_add (argv, g_strdup ("-device"));
  g_ptr_array_add (argv, g_strdup_printf ("virtio-net-device,netdev=n0,mac=%s", vm->mac));
  if (vm->agent_socket != NULL)
    {
      /* The guest agent's port (no vhost-vsock here): virtio-serial on
       * virtio-mmio, its host end a unix socket nobody need wait for. */
      g_unlink (vm->agent_socket);
      g_ptr_array_add (argv, g_strdup ("-device"));
      g_ptr_array_add (argv, g_strdup ("virtio-serial-device"));
      g_ptr_array_add (argv, g_strdup ("-chardev"));
      g_ptr_array_add (argv, g_strdup_printf ("socket,id=agent,path=%s,server=on,wait=off", vm->agent_socket));
      g_ptr_array_add (argv, g_strdup ("-device"));
      g_ptr_array_add (argv, g_strdup ("virtserialport,chardev=agent,name=org.banger.agent"));
    }
  g_ptr_array_add (argv, NULL);
  {
    /* QEMU's own complaints, for a test that sees it end early. */
    g_autofree char *log = g_strdup_printf ("%s.qemu-stderr", vm->console);
    int err = open (log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    g_assert_cmpint (err, >=, 0);
    g_assert_true (g_spawn_async_with_fds (NULL, (char **) argv->pdata, NULL,
                                           G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD |
                                           G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDIN_FROM_DEV_NULL, NULL, NULL,
                                           &vm->qemu, -1, -1, err, &error));
    close (err);
  }
}

void
power_off (Vm *vm)
{
  kill (vm->qemu, SIGKILL);
  waitpid (vm->qemu, NULL, 0);
  vm->qemu = 0;
  /* QEMU removes its socket by the name it made it under. */
  if (vm->agent_link != NULL)
    g_unlink (vm->agent_link);
  /* The VMM up_with_agent() left serving the vsock goes with the guest. */
  if (vm->vmm_pid > 1 && kill ((pid_t) vm->vmm_pid, 0) == 0)
    kill ((pid_t) vm->vmm_pid, SIGKILL);
  vm->vmm_pid = 0;
}

static char *
user_home (BgHarness *h)
{
  return g_strdup_printf ("%s/home-%s", h->tmp, BG_TEST_USER_A);
}

GPid
cli_async (BgHarness          *h,
           int                 in,
           int                 out,
           int                 err,
           const char * const *args)
{
  g_autofree char *home = user_home (h);
  g_autofree char *runtime = g_strdup_printf ("%s/runtime-%s", h->tmp, BG_TEST_USER_A);
  g_auto(GStrv) argv = bg_harness_cli_argv (BG_TEST_USER_A, args);
  g_auto(GStrv) envp = bg_harness_cli_envp (h, home, runtime);
  g_autoptr(GError) error = NULL;
  GPid pid;

  if (!g_spawn_async_with_fds (home, argv, envp, G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &pid,
                               in, out, err, &error))
    g_error ("%s", error->message);
  return pid;
}

int
wait_status (GPid pid)
{
  int status;

  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  g_spawn_close_pid (pid);
  return WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
}

static char *
console_tail (Vm *vm)
{
  g_autofree char *log = NULL;

  if (!g_file_get_contents (vm->console, &log, NULL, NULL))
    return g_strdup ("(no console)");
  return g_strdup (log + MAX (0, (int) strlen (log) - 4000));
}

/* Waits (bounded; a console silent for three minutes is a stuck guest)
 * until the console shows @needle; @also (`vm up`) must not end first. */
static void
wait_agent_console (Vm *vm, const char *needle, GPid also)
{
  gint64 end = bg_test_deadline (900);
  gsize seen = 0;
  int quiet = 0;

  for (;;)
    {
      g_autofree char *log = NULL;
      gsize len = 0;

      if (g_file_get_contents (vm->console, &log, &len, NULL) && strstr (log, needle) != NULL)
        return;
      quiet = len > seen ? 0 : quiet + 1;
      seen = MAX (seen, len);
      if (waitpid (vm->qemu, NULL, WNOHANG) == vm->qemu)
        {
          g_autofree char *tail = console_tail (vm), *qemu_log = g_strdup_printf ("%s.qemu-stderr", vm->console);
          g_autofree char *qemu_err = NULL;

          g_file_get_contents (qemu_log, &qemu_err, NULL, NULL);
          g_error ("QEMU ended before \"%s\" was on %s's console: %s; console:\n%s", needle, vm->name,
                   qemu_err ? qemu_err : "", tail);
        }
      if (also && waitpid (also, NULL, WNOHANG) == also)
        g_error ("vm up ended before \"%s\" was on %s's console", needle, vm->name);
      if (g_get_monotonic_time () > end || (guint) quiet > bg_test_timeout (180))
        {
          g_autofree char *tail = console_tail (vm);
          g_error ("no \"%s\" on %s's console; console:\n%s", needle, vm->name, tail);
        }
      g_usleep (G_USEC_PER_SEC);
    }
}

/* nft with @argv (the test's own table; banger's are never touched). */
static void
nft (const char * const *argv)
{
  g_autofree char *err = NULL;
  int status;

  if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, &err, &status, NULL) ||
      !g_spawn_check_wait_status (status, NULL))
    g_error ("nft: %s", err);
}

Vm *
up_with_agent (BgHarness  *h,
               const char *name,
               const char *image,
               char      **up_out)
{
  const char *up_args[] = { "vm", "up", name, "--image", image, "--disk", "3G", "--timeout", "1800", NULL };
  g_autofree char *home = user_home (h), *up_out_path = NULL, *up_err_path = NULL, *up_err = NULL;
  g_autofree char *show = NULL;
  g_autoptr(JsonObject) rec = NULL;
  Vm *vm;
  gint64 vmm_pid, started;
  int up_out_fd, up_err_fd, status;
  GPid up;

  up_out_path = g_build_filename (home, "up.out", NULL);
  up_err_path = g_build_filename (home, "up.err", NULL);
  up_out_fd = open (up_out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  up_err_fd = open (up_err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  g_assert_cmpint (up_out_fd, >=, 0);
  g_assert_cmpint (up_err_fd, >=, 0);

  /* `vm up` waits for the guest; its VMM configures and "starts" it. */
  up = cli_async (h, -1, up_out_fd, up_err_fd, up_args);
  close (up_out_fd);
  close (up_err_fd);
  for (gint64 end = bg_test_deadline (300);; g_usleep (200000))
    {
      g_autofree char *state = NULL;

      g_clear_pointer (&show, g_free);
      if (g_get_monotonic_time () > end || waitpid (up, NULL, WNOHANG) == up)
        g_error ("vm up did not start the VM's VMM");
      if (cli (h, &show, NULL, "vm", "show", name, "--json", NULL) != 0)
        continue;
      g_clear_pointer (&rec, json_object_unref);
      rec = json_object (show);
      if (!json_object_has_member (rec, "api_socket") || !json_object_has_member (rec, "vsock_socket"))
        continue;
      {
        const char *argv[] = { g_getenv ("BANGER_TEST_FC"), "--user=" BG_TEST_USER_A,
                               json_object_get_string_member (rec, "api_socket"), "get", NULL };
        bg_harness_run_argv (argv, &state, NULL);
      }
      if (state != NULL && strstr (state, "Running") != NULL)
        break;
    }
  vmm_pid = json_object_get_int_member (rec, "pid");
  vm = vm_from_record (h, name, rec);
  vm->vmm_pid = vmm_pid;
  /* SSH to the guest is refused until `vm up` returned: its ready can
   * only come from the agent (in a guest with sshd, sshd starts about
   * when udev loads the port's driver, and `vm up` would otherwise take
   * whichever answers first). */
  {
    const char *table[] = { "nft", "add", "table", "inet", "bgqagent", NULL };
    const char *chain[] = { "nft", "add", "chain", "inet", "bgqagent", "out", "{", "type", "filter", "hook", "output",
                            "priority", "0", ";", "}", NULL };
    const char *rule[] = { "nft", "add", "rule", "inet", "bgqagent", "out", "ip", "daddr", vm->address, "tcp",
                           "dport", "22", "reject", "with", "tcp", "reset", NULL };

    nft (table);
    nft (chain);
    nft (rule);
  }
  g_assert_nonnull (strstr (vm->boot_args, "init=/usr/libexec/banger/banger-init"));
  agent_port (vm, json_object_get_string_member (rec, "vsock_socket"));
  /* A tap takes one VMM at a time: the test VMM lets go of it (it keeps
   * serving the API and the vsock), then QEMU attaches. */
  g_assert_no_errno (kill ((pid_t) vmm_pid, SIGUSR1));
  for (gint64 end = bg_test_deadline (30);; g_usleep (50000))
    {
      g_autofree char *fd_dir = g_strdup_printf ("/proc/%" G_GINT64_FORMAT "/fd", vmm_pid);
      g_autoptr(GDir) d = g_dir_open (fd_dir, 0, NULL);
      gboolean tun = FALSE;
      const char *fd;

      g_assert_nonnull (d);
      while ((fd = g_dir_read_name (d)) != NULL)
        {
          g_autofree char *path = g_build_filename (fd_dir, fd, NULL);
          g_autofree char *target = g_file_read_link (path, NULL);
          tun |= g_strcmp0 (target, "/dev/net/tun") == 0;
        }
      if (!tun)
        break;
      if (g_get_monotonic_time () > end)
        g_error ("the test VMM still holds the tap");
    }
  boot (vm);
  started = g_get_monotonic_time ();

  /* Until the guest's agent opened its port, CONNECT finds nothing (as
   * with Firecracker while nothing listens in the guest). */
  wait_agent_console (vm, "banger-agent: serving the virtio-serial port", up);
  agent_plug (vm, vmm_pid);
  status = wait_status (up);
  g_assert_true (g_file_get_contents (up_out_path, up_out, NULL, NULL));
  g_assert_true (g_file_get_contents (up_err_path, &up_err, NULL, NULL));
  if (status != 0)
    {
      g_autofree char *tail = console_tail (vm);
      g_error ("vm up: %d: %s\nconsole:\n%s", status, up_err, tail);
    }
  g_test_message ("vm up returned %" G_GINT64_FORMAT " s after QEMU started (TCG): %s",
                  (g_get_monotonic_time () - started) / G_USEC_PER_SEC, g_strstrip (*up_out));
  {
    const char *drop[] = { "nft", "delete", "table", "inet", "bgqagent", NULL };
    nft (drop);
  }
  return vm;
}

int
vm_exec (BgHarness  *h,
         const char *vm,
         char      **out,
         const char *first,
         ...)
{
  const char *a[12] = { "vm", "exec", vm, "--", first };
  g_autofree char *err = NULL;
  va_list ap;
  int n = 5, status;

  va_start (ap, first);
  while ((a[n] = va_arg (ap, const char *)) != NULL)
    if (++n == 11)
      g_error ("vm_exec(): too many arguments");
  va_end (ap);
  status = bg_harness_run_cli (h, BG_TEST_USER_A, out, &err, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8],
                               a[9], a[10], NULL);
  if (status != 0 && status < 128)
    g_test_message ("vm exec %s: %d: %s", first, status, err);
  return status;
}

char *
ssh_with_config (BgHarness  *h,
                 Vm         *vm,
                 const char *host_lines,
                 gboolean    ipv6)
{
  struct passwd *pw = getpwnam (BG_TEST_USER_A);
  g_autofree char *home = user_home (h);
  g_autofree char *runtime = g_strdup_printf ("%s/runtime-%s", h->tmp, BG_TEST_USER_A);
  g_autofree char *block = NULL, *e = NULL, *from = NULL, *conf = NULL, *path = NULL;
  g_autofree char *uid = g_strdup_printf ("--reuid=%u", pw->pw_uid), *gid = g_strdup_printf ("--regid=%u", pw->pw_gid);
  g_autofree char *out = NULL, *err = NULL;
  g_auto(GStrv) envp = bg_harness_cli_envp (h, home, runtime);
  const char *argv[] = { "setpriv", uid, gid, "--init-groups", "--", "ssh", ipv6 ? "-6" : "-4", "-F", NULL, "-o",
                         "BatchMode=yes", "-o", "ConnectTimeout=60", vm->name, "hostname", NULL };
  int status;

  if (cli (h, &block, &e, "vm", "ssh-config", vm->name, NULL) != 0)
    g_error ("vm ssh-config: %s", e);
  from = g_strdup_printf ("HostName %s\n", vm->address);
  g_assert_nonnull (strstr (block, from));
  {
    g_auto(GStrv) halves = g_strsplit (block, from, 2);
    conf = g_strjoin (host_lines, halves[0], halves[1], NULL);
  }
  path = g_build_filename (home, "test-ssh-config", NULL);
  g_assert_true (g_file_set_contents (path, conf, -1, NULL));
  g_assert_no_errno (chown (path, pw->pw_uid, pw->pw_gid));
  argv[8] = path;
  if (!g_spawn_sync (home, (char **) argv, envp, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err, &status, NULL) ||
      !g_spawn_check_wait_status (status, NULL))
    g_error ("ssh -F %s to %s: %s", path, vm->name, err);
  return g_strdup (g_strstrip (out));
}

/* Software emulation is slow: stay quiet (read the console once a
 * second) until @done is on it (if given), then ask for SSH until
 * `banger vm ssh NAME -- cat /etc/hostname .gitconfig` answers. A
 * console silent for three minutes means a stuck guest. Returns what it
 * printed. */
char *
wait_ssh (BgHarness  *h,
          Vm         *vm,
          const char *done,
          const char *done_too)
{
  g_autofree char *so = NULL, *se = NULL;
  gboolean exited = FALSE;
  gsize console_len = 0;
  int i, quiet = 0;
  /* Bounds in seconds, scaled (bg-test.h). */
  int boot_s = bg_test_timeout (900), ssh_s = bg_test_timeout (900), silent_s = bg_test_timeout (180);

  for (i = 0; done && i < boot_s && !exited && quiet < silent_s; i++)
    {
      g_autofree char *log = NULL;
      const char *at = NULL;
      gsize len = 0;

      if (g_file_get_contents (vm->console, &log, &len, NULL) && (at = strstr (log, done)) != NULL &&
          (done_too == NULL || strstr (at, done_too) != NULL))
        {
          const char *bol = done_too ? strstr (at, done_too) : at;
          g_autofree char *line = NULL;

          while (bol > log && bol[-1] != '\n')
            bol--;
          line = g_strndup (bol, strcspn (bol, "\r\n"));
          g_test_message ("%s: %s; about %d s after QEMU started (TCG)", vm->name, line, i);
          break;
        }
      quiet = len > console_len ? 0 : quiet + 1;
      console_len = MAX (console_len, len);
      exited = waitpid (vm->qemu, NULL, WNOHANG) == vm->qemu;
      if (!exited)
        g_usleep (G_USEC_PER_SEC);
    }
  for (i = 0; i < ssh_s / 2 && !exited && quiet < silent_s; i++)
    {
      gsize len = 0;
      g_autofree char *log = NULL;

      g_clear_pointer (&so, g_free);
      g_clear_pointer (&se, g_free);
      if (cli (h, &so, &se, "vm", "ssh", vm->name, "--", "cat", "/etc/hostname", ".gitconfig", NULL) == 0)
        return g_steal_pointer (&so);
      if (g_file_get_contents (vm->console, &log, &len, NULL))
        {
          quiet = len > console_len ? 0 : quiet + 2;
          console_len = MAX (console_len, len);
        }
      exited = waitpid (vm->qemu, NULL, WNOHANG) == vm->qemu;
      if (!exited)
        g_usleep (2 * G_USEC_PER_SEC);
    }
  {
    g_autofree char *log = NULL;
    g_file_get_contents (vm->console, &log, NULL, NULL);
    g_error ("no SSH into %s (%s); console:\n%s", vm->name, exited ? "QEMU exited" : quiet >= 180 ?
             "the guest stopped making progress" : se ? se : "",
             log ? log + MAX (0, (int) strlen (log) - 4000) : "");
  }
}

/* A file's sha256, hex. */
char *
sha256_of (const char *path)
{
  g_autoptr(GMappedFile) map = g_mapped_file_new (path, FALSE, NULL);
  g_assert_nonnull (map);
  return g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) g_mapped_file_get_contents (map),
                                      g_mapped_file_get_length (map));
}

/* Reads the console once a second until a line holds @done; that line.
 * QEMU exiting, a console silent for three minutes (a stuck guest) or
 * the bound passing fails the test, showing the console's end. */
char *
wait_console (Vm         *vm,
              const char *done)
{
  gsize console_len = 0;
  gboolean exited = FALSE;
  int quiet = 0, boot_s = bg_test_timeout (900), silent_s = bg_test_timeout (180);
  g_autofree char *log = NULL;

  for (int i = 0; i < boot_s && !exited && quiet < silent_s; i++)
    {
      const char *at;
      gsize len = 0;

      g_clear_pointer (&log, g_free);
      if (g_file_get_contents (vm->console, &log, &len, NULL) && (at = strstr (log, done)) != NULL)
        {
          const char *bol = at;

          while (bol > log && bol[-1] != '\n')
            bol--;
          g_test_message ("%s: \"%s\" on the console about %d s after QEMU started (TCG)", vm->name, done, i);
          return g_strndup (bol, strcspn (bol, "\r\n"));
        }
      quiet = len > console_len ? 0 : quiet + 1;
      console_len = MAX (console_len, len);
      exited = waitpid (vm->qemu, NULL, WNOHANG) == vm->qemu;
      if (!exited)
        g_usleep (G_USEC_PER_SEC);
    }
  g_error ("no \"%s\" on %s's console (%s); console:\n%s", done, vm->name,
           exited ? "QEMU exited" : quiet >= silent_s ? "the guest stopped making progress" : "too long",
           log ? log + MAX (0, (int) strlen (log) - 4000) : "");
}

/* `banger vm ssh NAME -- SCRIPT`: ssh hands the command to the guest
 * user's shell (banger itself passes an argv). It must succeed; its
 * output. */
char *
in_guest (BgHarness  *h,
          Vm         *vm,
          const char *script)
{
  g_autofree char *out = NULL, *err = NULL;

  if (cli (h, &out, &err, "vm", "ssh", vm->name, "--", script, NULL) != 0)
    g_error ("in %s, '%s' failed: %s", vm->name, script, err);
  return g_strstrip (g_steal_pointer (&out));
}

/* Imports @image, built in @prep_home, for test user A with the group
 * rule and the test VMM, and gives the user a file to sync at first boot
 * (~/.gitconfig, which wait_ssh reads back). */
void
import_image (BgHarness  *h,
              const char *prep_home,
              const char *image)
{
  import_image_as (h, prep_home, image, image);
}

/* As import_image, under the name @name. */
void
import_image_as (BgHarness  *h,
                 const char *prep_home,
                 const char *image,
                 const char *name)
{
  g_autofree char *dir = g_build_filename (prep_home, ".local/share/banger/images", image, NULL);
  g_autofree char *kernel = g_build_filename (dir, "vmlinux", NULL);
  g_autofree char *rootfs = g_build_filename (dir, "rootfs.ext4", NULL);
  g_autofree char *initrd = g_build_filename (dir, "initrd.img", NULL);
  g_autofree char *o = NULL, *e = NULL;
  struct passwd *pw = getpwnam (BG_TEST_USER_A);
  g_autofree char *home = g_strdup_printf ("%s/home-%s", h->tmp, BG_TEST_USER_A);
  g_autofree char *config = g_build_filename (home, ".config", NULL);
  g_autofree char *bconfig = g_build_filename (config, "banger", NULL);
  g_autofree char *conf = g_build_filename (bconfig, "banger.conf", NULL);
  g_autofree char *gitconfig = g_build_filename (home, ".gitconfig", NULL);
  const char *paths[] = { config, bconfig, conf, gitconfig };

  bg_harness_set_group_rule (h, TRUE);
  bg_harness_use_vmm (h, g_getenv ("BANGER_TEST_VMM"));
  if (cli (h, &o, &e, "image", "import", name, "--kernel", kernel, "--rootfs", rootfs, "--initrd", initrd,
           NULL) != 0)
    g_error ("image import: %s", e);
  /* A file to sync at first boot (written in the guest as the user). */
  g_assert_no_errno (g_mkdir_with_parents (bconfig, 0700));
  g_assert_true (g_file_set_contents (conf, "[sync]\npaths=~/.gitconfig\n", -1, NULL));
  g_assert_true (g_file_set_contents (gitconfig, "[user]\n\tname = Synced From The Host\n", -1, NULL));
  for (guint k = 0; k < G_N_ELEMENTS (paths); k++)
    g_assert_no_errno (chown (paths[k], pw->pw_uid, pw->pw_gid));
}
