/* A banger-built guest booted for real. Firecracker cannot run here, so
 * QEMU (software emulation, -M microvm: virtio-mmio devices like
 * Firecracker's) boots the VM that `banger vm up` made with the test VMM:
 * its own disk, config drive, kernel, initrd and tap, on the banger
 * bridge. The image configures itself with banger-guest-setup (no
 * cloud-init): `banger vm ssh NAME` must then work with the pinned host
 * key, as the user the drive asked for, with the synced file in its home.
 * QEMU is a test instrument here, never a product path. */
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "harness.h"

static char *prep_home;

/* Runs before the harness leaves the host network: the image build needs
 * the Debian mirror. */
static const char *
prepare (void)
{
  if (!g_file_test ("/usr/bin/qemu-system-x86_64", G_FILE_TEST_IS_EXECUTABLE))
    return "needs qemu-system-x86_64 (the boot instrument)";
  if (!bg_harness_mirror_reachable ())
    return "the Debian mirror (deb.debian.org) is not reachable: cannot build an image";
  prep_home = bg_harness_build_image ("guest");
  return NULL;
}

static JsonObject *
json_object (const char *text)
{
  g_autoptr(JsonParser) p = json_parser_new ();
  g_assert_true (json_parser_load_from_data (p, text, -1, NULL));
  return json_object_ref (json_node_get_object (json_parser_get_root (p)));
}

static void
test_guest_boots_and_answers_ssh (void)
{
  BgHarness *h = bg_harness_start (600);
  g_autofree char *images = g_build_filename (prep_home, ".local/share/banger/images/guest", NULL);
  g_autofree char *kernel = g_build_filename (images, "vmlinux", NULL);
  g_autofree char *rootfs = g_build_filename (images, "rootfs.ext4", NULL);
  g_autofree char *initrd = g_build_filename (images, "initrd.img", NULL);
  g_autofree char *o = NULL, *e = NULL, *up = NULL, *up_err = NULL, *so = NULL, *se = NULL;
  g_autofree char *vmdir = NULL, *disk = NULL, *cidata = NULL, *console = NULL, *netdev = NULL, *nic = NULL;
  g_autofree char *d_root = NULL, *d_cidata = NULL, *hosts = NULL, *hostname = NULL;
  g_autoptr(JsonObject) vm = NULL;
  g_autoptr(GError) error = NULL;
  const char *tap, *mac, *address;
  GPid qemu;
  int i;

  bg_harness_set_group_rule (h, TRUE);
  bg_harness_use_vmm (h, g_getenv ("BANGER_TEST_VMM"));
  g_assert_cmpint (bg_harness_run_cli (h, BG_TEST_USER_A, &o, &e, "image", "import", "default", "--kernel", kernel,
                                       "--rootfs", rootfs, "--initrd", initrd, NULL), ==, 0);
  /* A file to sync at first boot (written in the guest as the user). */
  {
    struct passwd *pw = getpwnam (BG_TEST_USER_A);
    g_autofree char *home = g_strdup_printf ("%s/home-%s", h->tmp, BG_TEST_USER_A);
    g_autofree char *config = g_build_filename (home, ".config", NULL);
    g_autofree char *bconfig = g_build_filename (config, "banger", NULL);
    g_autofree char *conf = g_build_filename (bconfig, "banger.conf", NULL);
    g_autofree char *gitconfig = g_build_filename (home, ".gitconfig", NULL);
    const char *paths[] = { config, bconfig, conf, gitconfig };

    g_assert_no_errno (g_mkdir_with_parents (bconfig, 0700));
    g_assert_true (g_file_set_contents (conf, "[sync]\npaths=~/.gitconfig\n", -1, NULL));
    g_assert_true (g_file_set_contents (gitconfig, "[user]\n\tname = Synced From The Host\n", -1, NULL));
    for (guint k = 0; k < G_N_ELEMENTS (paths); k++)
      g_assert_no_errno (chown (paths[k], pw->pw_uid, pw->pw_gid));
  }

  /* banger makes everything: disk, config drive, tap, name, keys. */
  if (bg_harness_run_cli (h, BG_TEST_USER_A, &up, &up_err, "vm", "up", "qguest", "--no-wait", "--disk", "3G",
                          "--json", NULL) != 0)
    g_error ("vm up: %s", up_err);
  vm = json_object (up);
  tap = json_object_get_string_member (vm, "tap");
  mac = json_object_get_string_member (vm, "mac");
  address = json_object_get_string_member (vm, "address");
  /* The test VMM cannot boot it: stop it, which gives the tap back. */
  {
    g_autofree char *so2 = NULL, *se2 = NULL;
    g_assert_cmpint (bg_harness_run_cli (h, BG_TEST_USER_A, &so2, &se2, "vm", "stop", "qguest", NULL), ==, 0);
  }

  vmdir = g_strdup_printf ("%s/home-%s/.local/state/banger/vms/qguest", h->tmp, BG_TEST_USER_A);
  disk = g_build_filename (vmdir, "disk.ext4", NULL);
  cidata = g_build_filename (vmdir, "cidata.img", NULL);
  console = g_build_filename (h->tmp, "qemu-console.log", NULL);
  d_root = g_strdup_printf ("id=root,file=%s,format=raw,if=none", disk);
  d_cidata = g_strdup_printf ("id=cidata,file=%s,format=raw,if=none,readonly=on", cidata);
  netdev = g_strdup_printf ("tap,id=n0,ifname=%s,script=no,downscript=no", tap);
  nic = g_strdup_printf ("virtio-net-device,netdev=n0,mac=%s", mac);
  {
    g_autofree char *serial = g_strdup_printf ("file:%s", console);
    const char *argv[] = {
      "qemu-system-x86_64", "-M", "microvm,acpi=on", "-cpu", "max", "-m", "1024", "-smp", "1",
      "-display", "none", "-monitor", "none", "-no-reboot", "-nodefaults", "-serial", serial,
      "-kernel", kernel, "-initrd", initrd,
      "-append", "console=ttyS0 reboot=k panic=1 root=/dev/vda rw",
      "-drive", d_root, "-device", "virtio-blk-device,drive=root",
      "-drive", d_cidata, "-device", "virtio-blk-device,drive=cidata",
      "-netdev", netdev, "-device", nic, NULL };
    g_assert_true (g_spawn_async (NULL, (char **) argv, NULL,
                                  G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL |
                                  G_SPAWN_STDERR_TO_DEV_NULL | G_SPAWN_STDIN_FROM_DEV_NULL, NULL, NULL, &qemu,
                                  &error));
  }

  /* Software emulation is slow and its early timer calibration is
   * sensitive to a busy host: stay quiet (read the console once a second)
   * until banger-guest-setup says it is done, then ask for SSH. */
  for (i = 0; i < 900; i++)
    {
      g_autofree char *log = NULL;
      const char *done = NULL;
      if (g_file_get_contents (console, &log, NULL, NULL) &&
          (done = strstr (log, "banger-guest-setup: qguest configured in")) != NULL)
        {
          g_autofree char *line = g_strndup (done, strcspn (done, "\r\n"));
          g_test_message ("%s; about %d s after QEMU started (TCG)", line, i);
          break;
        }
      if (waitpid (qemu, NULL, WNOHANG) == qemu)
        break;
      g_usleep (G_USEC_PER_SEC);
    }
  for (i = 0; i < 60; i++)
    {
      g_clear_pointer (&so, g_free);
      g_clear_pointer (&se, g_free);
      if (bg_harness_run_cli (h, BG_TEST_USER_A, &so, &se, "vm", "ssh", "qguest", "--", "cat", "/etc/hostname",
                              ".gitconfig", NULL) == 0)
        break;
      if (waitpid (qemu, NULL, WNOHANG) == qemu)
        break;
      g_usleep (2 * G_USEC_PER_SEC);
    }
  kill (qemu, SIGKILL);
  waitpid (qemu, NULL, 0);
  if (so == NULL || !g_str_has_prefix (so, "qguest\n"))
    {
      g_autofree char *log = NULL;
      g_file_get_contents (console, &log, NULL, NULL);
      g_error ("no SSH into the guest (%s); console:\n%s", se ? se : "", log ? log + MAX (0, (int) strlen (log) - 4000) : "");
    }

  /* The synced file, written at first boot in the user's home. */
  g_assert_nonnull (strstr (so, "\tname = Synced From The Host\n"));

  /* The host resolves NAME.banger to it. */
  hosts = g_build_filename (h->run_dir, "hosts", NULL);
  g_assert_true (g_file_get_contents (hosts, &hostname, NULL, NULL));
  {
    g_autofree char *line = g_strdup_printf ("%s qguest.banger", address);
    g_assert_nonnull (strstr (hostname, line));
  }
  g_test_message ("the guest's outside name resolution is not checked: this network namespace has no way out");

  {
    g_autofree char *ro = NULL, *re = NULL;
    g_assert_cmpint (bg_harness_run_cli (h, BG_TEST_USER_A, &ro, &re, "vm", "rm", "qguest", NULL), ==, 0);
  }
  bg_harness_stop (h);
}

static void
add_tests (void)
{
  g_test_add_func ("/slow/guest-boots-and-answers-ssh", test_guest_boots_and_answers_ssh);
}

int
main (int argc, char **argv)
{
  int rc = bg_harness_main_full (&argc, &argv, prepare, add_tests);

  if (prep_home != NULL)
    {
      /* The build's files include ones made in the user namespace. */
      const char *rm[] = { "rm", "-rf", "--", prep_home, NULL };
      g_spawn_sync (NULL, (char **) rm, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
    }
  return rc;
}
