/* banger-built guests booted for real. Firecracker cannot run here, so
 * QEMU (software emulation, -M microvm: virtio-mmio devices like
 * Firecracker's) boots the VM that `banger vm up` made with the test VMM,
 * exactly as banger told the VMM to: the kernel, initrd and command line,
 * the drives in their order and with their read-only flags, the tap, on
 * the banger bridge. QEMU is a test instrument here, never a product path.
 *
 * A layered VM (the default image has banger-init, and the tests' home
 * is on ext4, which cannot reflink): the image is its read-only root,
 * its writes land on its own disk, a second VM of the image sees none of
 * them, they survive a stop and a start, container data dirs are on the
 * VM's ext4 and not on overlayfs, and the image never changes.
 * Then an image built with --cloud-init, which stands for stock cloud
 * images reading the same NoCloud drive, booted as a copy.
 * Each time `banger vm ssh NAME` must work with the pinned host key, as
 * the user the drive asked for, with the synced file in its home. */
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

static void
assert_configured (BgHarness  *h,
                   Vm         *vm,
                   const char *ssh_out,
                   const char *git_name)
{
  g_autofree char *git_line = g_strdup_printf ("\tname = %s\n", git_name);
  g_autofree char *first = g_strdup_printf ("%s\n", vm->name);
  g_autofree char *hosts = g_build_filename (h->run_dir, "hosts", NULL);
  g_autofree char *text = NULL, *line = g_strdup_printf ("%s %s.banger", vm->address, vm->name);

  g_assert_true (g_str_has_prefix (ssh_out, first));
  /* The synced file, written at first boot in the user's home (or
   * since, by 'vm sync'). */
  g_assert_nonnull (strstr (ssh_out, git_line));
  /* The host resolves NAME.banger to it. */
  g_assert_true (g_file_get_contents (hosts, &text, NULL, NULL));
  g_assert_nonnull (strstr (text, line));
}

/* The user's files of a tree to copy: NAME → mode and contents. */
static const struct { const char *path; guint mode; gsize size; } cp_tree[] = {
  { "cptree/a.txt", 0640, 5 },
  { "cptree/sub/b.bin", 0755, 200 * 1024 },
  { "cptree/sub/deeper/c", 0600, 1 },
};

static char *
cp_content (guint i)
{
  char *data = g_malloc (cp_tree[i].size + 1);
  for (gsize k = 0; k < cp_tree[i].size; k++)
    data[k] = (char) ('a' + (k * 31 + i + k / 97) % 26);
  data[cp_tree[i].size] = '\0';
  return data;
}

/* 'vm cp -r' a tree into the guest and back out: the same bytes and
 * modes at every step. */
static void
assert_cp_round_trip (BgHarness *h,
                      const char *vm)
{
  struct passwd *pw = getpwnam (BG_TEST_USER_A);
  g_autofree char *home = g_strdup_printf ("%s/home-%s", h->tmp, BG_TEST_USER_A);
  g_autofree char *in = g_strdup_printf ("%s:copied", vm), *out = g_strdup_printf ("%s:copied", vm);
  g_autofree char *o = NULL, *e = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (cp_tree); i++)
    {
      g_autofree char *path = g_build_filename (home, cp_tree[i].path, NULL);
      g_autofree char *dir = g_path_get_dirname (path);
      g_autofree char *data = cp_content (i);

      g_assert_no_errno (g_mkdir_with_parents (dir, 0755));
      g_assert_true (g_file_set_contents (path, data, cp_tree[i].size, NULL));
      g_assert_no_errno (chmod (path, cp_tree[i].mode));
      for (char *d = g_strdup (path); strlen (d) > strlen (home); )
        {
          char *up;
          g_assert_no_errno (chown (d, pw->pw_uid, pw->pw_gid));
          up = g_path_get_dirname (d);
          g_free (d);
          d = up;
          if (strlen (d) <= strlen (home))
            {
              g_free (d);
              break;
            }
        }
    }
  if (cli (h, &o, &e, "vm", "cp", "-r", "cptree", in, NULL) != 0)
    g_error ("vm cp into %s: %s", vm, e);
  g_clear_pointer (&e, g_free);
  if (cli (h, &o, &e, "vm", "cp", "-r", out, "back", NULL) != 0)
    g_error ("vm cp out of %s: %s", vm, e);
  for (guint i = 0; i < G_N_ELEMENTS (cp_tree); i++)
    {
      g_autofree char *path = g_strdup_printf ("%s/back/%s", home, cp_tree[i].path + strlen ("cptree/"));
      g_autofree char *data = cp_content (i), *back = NULL;
      gsize len = 0;
      struct stat st;

      g_assert_true (g_file_get_contents (path, &back, &len, NULL));
      g_assert_cmpmem (back, len, data, cp_tree[i].size);
      g_assert_no_errno (stat (path, &st));
      g_assert_cmpuint (st.st_mode & 07777, ==, cp_tree[i].mode);
    }
  /* Errors name the side and the path. */
  g_clear_pointer (&e, g_free);
  g_assert_cmpint (cli (h, NULL, &e, "vm", "cp", "no-such-file", in, NULL), ==, 1);
  g_assert_nonnull (strstr (e, "local SRC no-such-file: No such file or directory"));
}

/* ssh as the user to 127.0.0.1:@port, a forward of the guest's sshd: it
 * must answer with the VM's pinned host key (StrictHostKeyChecking). */
static void
assert_ssh_through_forward (BgHarness  *h,
                            Vm         *vm,
                            guint       port)
{
  g_autofree char *to = g_strdup_printf ("HostName 127.0.0.1\n    Port %u\n", port);
  g_autofree char *name = ssh_with_config (h, vm, to, FALSE);

  g_assert_cmpstr (name, ==, vm->name);
}

static void
test_layered_guest (void)
{
  BgHarness *h = bg_harness_start (600);
  g_autofree char *image_rootfs = NULL, *sum_before = NULL, *sum_after = NULL, *show = NULL, *e = NULL;
  g_autofree char *ssh1 = NULL, *ssh2 = NULL, *ssh3 = NULL;
  g_autofree char *root_fs = NULL, *docker_fs = NULL, *ro = NULL, *kept = NULL, *clean = NULL;
  g_autoptr(Vm) one = NULL, two = NULL;

  import_image (h, prep_home, "guest");
  image_rootfs = g_strdup_printf ("%s/home-%s/.local/share/banger/images/guest/rootfs.ext4", h->tmp, BG_TEST_USER_A);
  sum_before = sha256_of (image_rootfs);
  g_assert_cmpint (cli (h, &show, &e, "image", "show", "guest", NULL), ==, 0);
  g_assert_nonnull (strstr (show, "Layered VMs: yes"));
  g_assert_nonnull (strstr (show, "Boots on Firecracker: yes"));

  /* First boot: banger-init formats the VM's disk and lays it over the
   * read-only image. */
  one = make_vm (h, "qguest", "guest");
  g_assert_nonnull (strstr (one->boot_args, "init=/usr/libexec/banger/banger-init"));
  g_assert_cmpuint (one->drives->len, ==, 3);
  g_assert_true (g_str_has_suffix (one->drives->pdata[0], ",readonly=on"));
  boot (one);
  ssh1 = wait_ssh (h, one, "banger-guest-setup: qguest configured in", NULL);
  assert_configured (h, one, ssh1, "Synced From The Host");
  root_fs = in_guest (h, one, "findmnt -n -o FSTYPE /");
  g_assert_cmpstr (root_fs, ==, "overlay");
  ro = in_guest (h, one, "cat /sys/block/vda/ro");
  g_assert_cmpstr (ro, ==, "1");
  /* Container engines' data is on the VM's ext4, not on overlayfs. */
  docker_fs = in_guest (h, one, "stat -f -c %T /var/lib/docker /var/lib/containers");
  g_assert_cmpstr (docker_fs, ==, "ext2/ext3\next2/ext3");
  g_free (in_guest (h, one, "echo kept > written && sudo mkdir -p /srv/mine && sync"));
  /* 'vm sync': the tar stream banger writes itself, extracted by the
   * guest's tar into the user's home. */
  {
    g_autofree char *gitconfig = g_strdup_printf ("%s/home-%s/.gitconfig", h->tmp, BG_TEST_USER_A);
    g_autofree char *synced = NULL, *so = NULL, *se = NULL;

    struct passwd *pw = getpwnam (BG_TEST_USER_A);

    g_assert_true (g_file_set_contents (gitconfig, "[user]\n\tname = Synced Again\n", -1, NULL));
    g_assert_no_errno (chown (gitconfig, pw->pw_uid, pw->pw_gid));
    if (cli (h, &so, &se, "vm", "sync", "qguest", NULL) != 0)
      g_error ("vm sync: %s", se);
    g_assert_nonnull (strstr (so, "Synced 1 file to qguest."));
    synced = in_guest (h, one, "cat .gitconfig && stat -c %a .gitconfig");
    g_assert_nonnull (strstr (synced, "name = Synced Again"));
  }
  /* vm cp, both ways; vm forward to the guest's sshd, in the
   * background. */
  assert_cp_round_trip (h, "qguest");
  {
    g_autofree char *so = NULL, *se = NULL;
    if (cli (h, &so, &se, "vm", "forward", "qguest", "12222:22", "--background", NULL) != 0)
      g_error ("vm forward: %s", se);
    assert_ssh_through_forward (h, one, 12222);
    g_clear_pointer (&so, g_free);
    g_assert_cmpint (cli (h, &so, NULL, "vm", "forward", "qguest", "--stop", NULL), ==, 0);
    g_assert_cmpstr (so, ==, "Stopped 1 forward of qguest.\n");
  }
  power_off (one);

  /* 'vm stop' and 'vm start': another boot of the same disks keeps
   * every write. */
  boot (one);
  ssh2 = wait_ssh (h, one, NULL, NULL);
  /* What vm sync wrote stays: a later boot does not sync again. */
  assert_configured (h, one, ssh2, "Synced Again");
  kept = in_guest (h, one, "cat written && test -d /srv/mine && echo dir");
  g_assert_cmpstr (kept, ==, "kept\ndir");
  power_off (one);

  /* Another VM of the image: none of the first one's writes. */
  two = make_vm (h, "qguest2", "guest");
  boot (two);
  ssh3 = wait_ssh (h, two, "banger-guest-setup: qguest2 configured in", NULL);
  /* A new VM gets the home as it is now. */
  assert_configured (h, two, ssh3, "Synced Again");
  clean = in_guest (h, two, "test ! -e written && test ! -e /srv/mine && echo clean");
  g_assert_cmpstr (clean, ==, "clean");
  power_off (two);

  /* The image was never written. */
  sum_after = sha256_of (image_rootfs);
  g_assert_cmpstr (sum_after, ==, sum_before);
  g_assert_cmpint (cli (h, NULL, NULL, "vm", "rm", "qguest", NULL), ==, 0);
  g_assert_cmpint (cli (h, NULL, NULL, "vm", "rm", "qguest2", NULL), ==, 0);
  bg_harness_stop (h);
}

/* Stock cloud images stand in: cloud-init reads the NoCloud drive. The
 * import writes banger-init into banger's copy, so its VMs would be
 * layered; banger.conf's disk-mode=copy keeps this one a copy, the mode a
 * kernel without overlayfs gets, so that the copy path still boots. */
static void
test_cloud_init_guest (void)
{
  BgHarness *h = bg_harness_start (600);
  g_autofree char *ssh = NULL;
  g_autoptr(Vm) vm = NULL;
  g_autofree char *conf = g_strdup_printf ("%s/home-%s/.config/banger/banger.conf", h->tmp, BG_TEST_USER_A);
  struct passwd *pw = getpwnam (BG_TEST_USER_A);

  import_image (h, prep_home, "cloudguest");
  g_assert_true (g_file_set_contents (conf, "[sync]\npaths=~/.gitconfig\n[vm]\ndisk-mode=copy\n", -1, NULL));
  g_assert_no_errno (chown (conf, pw->pw_uid, pw->pw_gid));
  vm = make_vm (h, "qguest", "cloudguest");
  g_assert_null (strstr (vm->boot_args, "banger-init"));
  g_assert_cmpuint (vm->drives->len, ==, 2);
  boot (vm);
  ssh = wait_ssh (h, vm, "Cloud-init v.", "finished at");
  assert_configured (h, vm, ssh, "Synced From The Host");
  g_test_message ("the guest's outside name resolution is not checked: this network namespace has no way out");
  power_off (vm);
  g_assert_cmpint (cli (h, NULL, NULL, "vm", "rm", "qguest", NULL), ==, 0);
  bg_harness_stop (h);
}

static void
add_tests (void)
{
  g_test_add_func ("/slow/layered-guest-boots-keeps-its-writes-and-shares-none", test_layered_guest);
  g_test_add_func ("/slow/cloud-init-image-boots-and-answers-ssh", test_cloud_init_guest);
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
