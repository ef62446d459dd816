/* A banger-built guest booted for real. Firecracker cannot run here, so
 * QEMU (software emulation, -M microvm: virtio-mmio devices like
 * Firecracker's) boots the VM that `banger vm up` made with the test VMM:
 * its own disk, config drive, kernel, initrd and tap, on the banger
 * bridge. Twice: an image that configures itself with banger-guest-setup
 * (the default) and one built with --cloud-init, which stands for stock
 * cloud images reading the same NoCloud drive. `banger vm ssh NAME` must
 * then work with the pinned host key, as the user the drive asked for,
 * with the synced file in its home.
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
  prep_home = bg_harness_build_image (NULL, "guest", FALSE);
  g_free (bg_harness_build_image (prep_home, "cloudguest", TRUE));
  return NULL;
}

typedef struct {
  const char *image;
  const char *done;       /* on the console when the guest configured itself */
  const char *done_too;   /* and this, if not NULL */
} BootCase;

static const BootCase guest_setup_case = { "guest", "banger-guest-setup: qguest configured in", NULL };
static const BootCase cloud_init_case = { "cloudguest", "Cloud-init v.", "finished at" };

static JsonObject *
json_object (const char *text)
{
  g_autoptr(JsonParser) p = json_parser_new ();
  g_assert_true (json_parser_load_from_data (p, text, -1, NULL));
  return json_object_ref (json_node_get_object (json_parser_get_root (p)));
}

static void
test_guest_boots_and_answers_ssh (gconstpointer data)
{
  const BootCase *bc = data;
  BgHarness *h = bg_harness_start (600);
  g_autofree char *images = g_build_filename (prep_home, ".local/share/banger/images", bc->image, NULL);
  g_autofree char *kernel = g_build_filename (images, "vmlinux", NULL);
  g_autofree char *rootfs = g_build_filename (images, "rootfs.ext4", NULL);
  g_autofree char *initrd = g_build_filename (images, "initrd.img", NULL);
  g_autofree char *o = NULL, *e = NULL, *up = NULL, *up_err = NULL, *so = NULL, *se = NULL;
  g_autofree char *vmdir = NULL, *disk = NULL, *cidata = NULL, *console = NULL, *netdev = NULL, *nic = NULL;
  g_autofree char *d_root = NULL, *d_cidata = NULL, *hosts = NULL, *hostname = NULL;
  g_autoptr(JsonObject) vm = NULL;
  g_autoptr(GError) error = NULL;
  const char *tap, *mac, *address;
  gboolean exited = FALSE;
  gsize console_len = 0;
  int i, quiet = 0;
  GPid qemu;

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
      /* -icount: guest time follows executed instructions, so the
       * kernel's TSC-against-PIT calibration cannot be upset by a busy
       * host (it failed that way once and the guest spun at 0.000000). */
      "qemu-system-x86_64", "-M", "microvm,acpi=on", "-cpu", "max", "-m", "1024", "-smp", "1",
      "-icount", "shift=auto,sleep=off",
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

  /* Software emulation is slow: stay quiet (read the console once a
   * second) until the guest says it configured itself, then ask for SSH.
   * A console silent for three minutes means a stuck guest. */
  for (i = 0; i < 900 && !exited && quiet < 180; i++)
    {
      g_autofree char *log = NULL;
      const char *done = NULL;
      gsize len = 0;

      if (g_file_get_contents (console, &log, &len, NULL) && (done = strstr (log, bc->done)) != NULL &&
          (bc->done_too == NULL || strstr (done, bc->done_too) != NULL))
        {
          const char *last = bc->done_too ? strstr (done, bc->done_too) : done;
          const char *bol = last;
          g_autofree char *line = NULL;

          while (bol > log && bol[-1] != '\n')
            bol--;
          line = g_strndup (bol, strcspn (bol, "\r\n"));
          g_test_message ("%s; about %d s after QEMU started (TCG)", line, i);
          break;
        }
      quiet = len > console_len ? 0 : quiet + 1;
      console_len = MAX (console_len, len);
      exited = waitpid (qemu, NULL, WNOHANG) == qemu;
      if (!exited)
        g_usleep (G_USEC_PER_SEC);
    }
  for (i = 0; i < 60 && !exited && quiet < 180; i++)
    {
      g_clear_pointer (&so, g_free);
      g_clear_pointer (&se, g_free);
      if (bg_harness_run_cli (h, BG_TEST_USER_A, &so, &se, "vm", "ssh", "qguest", "--", "cat", "/etc/hostname",
                              ".gitconfig", NULL) == 0)
        break;
      exited = waitpid (qemu, NULL, WNOHANG) == qemu;
      if (!exited)
        g_usleep (2 * G_USEC_PER_SEC);
    }
  if (!exited)
    {
      kill (qemu, SIGKILL);
      waitpid (qemu, NULL, 0);
    }
  if (so == NULL || !g_str_has_prefix (so, "qguest\n"))
    {
      g_autofree char *log = NULL;
      g_file_get_contents (console, &log, NULL, NULL);
      g_error ("no SSH into the guest (%s); console:\n%s", exited ? "QEMU exited" : quiet >= 180 ?
               "the guest stopped making progress" : se ? se : "", log ? log + MAX (0, (int) strlen (log) - 4000) : "");
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
  g_test_add_data_func ("/slow/banger-guest-setup-image-boots-and-answers-ssh", &guest_setup_case,
                        test_guest_boots_and_answers_ssh);
  g_test_add_data_func ("/slow/cloud-init-image-boots-and-answers-ssh", &cloud_init_case,
                        test_guest_boots_and_answers_ssh);
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
