/* The real thing, on a host that has it: KVM that boots stock kernels and
 * a Firecracker binary. Build the default image, `vm up` (ready when the
 * guest agent answers over the real vsock and reports sshd listening),
 * `vm ssh NAME -- uname -a`, `vm exec` through the real vsock (output,
 * exit status, --user), `vm stop`, `vm rm`, all
 * as an unprivileged user, with the real mechanism, polkitd and bridge of
 * the integration harness. Elsewhere it skips, naming what is missing. */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <gio/gio.h>

#include "harness.h"

static char *firecracker;
static char *prep_home;

static const char *
prepare (void)
{
  if (!bg_harness_mirror_reachable ())
    return "the Debian mirror (deb.debian.org) is not reachable: cannot build an image";
  prep_home = bg_harness_build_image (NULL, "default", FALSE);
  return NULL;
}

static void
test_real_firecracker (void)
{
  BgHarness *h = bg_harness_start (600);
  g_autofree char *images = g_build_filename (prep_home, ".local/share/banger/images/default", NULL);
  g_autofree char *kernel = g_build_filename (images, "vmlinux", NULL);
  g_autofree char *rootfs = g_build_filename (images, "rootfs.ext4", NULL);
  g_autofree char *initrd = g_build_filename (images, "initrd.img", NULL);
  g_autofree char *o1 = NULL, *e1 = NULL, *o2 = NULL, *e2 = NULL, *o3 = NULL, *e3 = NULL;
  g_autofree char *o4 = NULL, *e4 = NULL, *o5 = NULL, *e5 = NULL;
  g_autofree char *boot_s = g_strdup_printf ("%u", bg_test_timeout (300));
  g_autofree char *o6 = NULL, *e6 = NULL, *o7 = NULL, *e7 = NULL, *o8 = NULL, *e8 = NULL;

  bg_harness_set_group_rule (h, TRUE);
  bg_harness_use_vmm (h, firecracker);
  g_assert_cmpint (bg_harness_run_cli (h, BG_TEST_USER_A, &o1, &e1, "image", "import", "default", "--kernel",
                                       kernel, "--rootfs", rootfs, "--initrd", initrd, NULL), ==, 0);
  if (bg_harness_run_cli (h, BG_TEST_USER_A, &o2, &e2, "vm", "up", "smoke", "--timeout", boot_s, NULL) != 0)
    g_error ("vm up: %s", e2);
  g_assert_cmpint (bg_harness_run_cli (h, BG_TEST_USER_A, &o3, &e3, "vm", "ssh", "smoke", "--", "uname", "-a",
                                       NULL), ==, 0);
  g_assert_true (g_str_has_prefix (o3, "Linux smoke "));
  /* Ready came from the agent, over Firecracker's own hybrid vsock. */
  g_assert_nonnull (strstr (o2, "up (its guest agent and sshd answer)"));
  g_assert_cmpint (bg_harness_run_cli (h, BG_TEST_USER_A, &o6, &e6, "vm", "exec", "smoke", "--", "uname", "-a",
                                       NULL), ==, 0);
  g_assert_true (g_str_has_prefix (o6, "Linux smoke "));
  g_assert_cmpint (bg_harness_run_cli (h, BG_TEST_USER_A, &o7, &e7, "vm", "exec", "smoke", "--", "sh", "-c",
                                       "exit 3", NULL), ==, 3);
  g_assert_cmpint (bg_harness_run_cli (h, BG_TEST_USER_A, &o8, &e8, "vm", "exec", "smoke", "--user", "dev", "--",
                                       "id", "-un", NULL), ==, 0);
  g_assert_cmpstr (o8, ==, "dev\n");
  g_assert_cmpint (bg_harness_run_cli (h, BG_TEST_USER_A, &o4, &e4, "vm", "stop", "smoke", NULL), ==, 0);
  g_assert_cmpint (bg_harness_run_cli (h, BG_TEST_USER_A, &o5, &e5, "vm", "rm", "smoke", NULL), ==, 0);
  bg_harness_stop (h);
}

static void
add_tests (void)
{
  g_test_add_func ("/smoke/real-firecracker", test_real_firecracker);
}

int
main (int argc, char **argv)
{
  int kvm, rc;

  kvm = open ("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0)
    {
      g_print ("1..0 # SKIP no usable /dev/kvm on this host (%s)\n", g_strerror (errno));
      return 0;
    }
  close (kvm);
  firecracker = g_find_program_in_path ("firecracker");
  if (firecracker == NULL && g_file_test ("/usr/local/bin/firecracker", G_FILE_TEST_IS_EXECUTABLE))
    firecracker = g_strdup ("/usr/local/bin/firecracker");
  if (firecracker == NULL)
    {
      g_print ("1..0 # SKIP no Firecracker binary (install one as /usr/local/bin/firecracker)\n");
      return 0;
    }
  rc = bg_harness_main_full (&argc, &argv, prepare, add_tests);
  if (prep_home != NULL)
    {
      const char *rm[] = { "rm", "-rf", "--", prep_home, NULL };
      g_spawn_sync (NULL, (char **) rm, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
    }
  return rc;
}
