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
