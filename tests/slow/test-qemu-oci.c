/* Images banger did not build, booted for real under QEMU (-M microvm,
 * software emulation, as test-qemu-boot does: the kernel, command line
 * and drives `vm up` gave the test VMM), each layered.
 *
 * A pulled image: a Debian tree with neither systemd nor sshd
 * (mmdebstrap's essential variant) and a Cmd, made into an OCI image
 * with umoci (as every image here), pushed with skopeo to a real registry (docker-registry
 * with TLS from the test's CA and token auth, tests/registry's fixture)
 * and `banger image pull`ed. Its VM is layered; banger-init is PID 1,
 * gives the guest its host name and address from the config drive and
 * runs the Cmd, whose line is on the console; the guest answers on its
 * address; banger-init starts banger-agent, reached over the virtio-serial
 * port (as in test-qemu-agent: this host has no vhost-vsock), so `vm up`
 * returns on the agent's ready, and `vm exec` and `vm cp` work without
 * sshd; `vm ssh` says there is no sshd and names `vm exec`; the image's
 * ext4 never changes.
 *
 * A pulled image with systemd and sshd (mmdebstrap's minbase with
 * them): banger stages banger-guest-setup and its unit into it, so the
 * image's systemd applies the config drive and `banger vm ssh` answers
 * with the pinned host key.
 *
 * A bring-your-own ext4: the Debian tree `image build` makes (systemd,
 * sshd) with everything of banger's taken out, imported with `image
 * import --kernel --rootfs`: banger writes banger-init and
 * banger-guest-setup (with its unit) into its own copy, so the VM is
 * layered; it boots through banger-init to the image's systemd and
 * answers `banger vm ssh`; the user's file and banger's copy never
 * change. */
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "harness.h"
#include "qemu-vm.h"
#include "registry-fixture.h"

#define MARKER "banger-oci-workload:"

static char *prep_home;
static char *layout;
static char *byo_rootfs;

static void
run_root (const char * const *argv)
{
  g_free (bg_test_run_ok (argv));
}

/* An image of the OCI layout, tagged @tag: one layer holding a Debian
 * tree made by mmdebstrap's @variant with @include (without: checked to
 * have no init, systemd or sshd); no kernel, nothing of banger's. */
static void
make_image (const char *tag,
            const char *variant,
            const char *include)
{
  g_autofree char *image = g_strdup_printf ("%s:%s", layout, tag);
  g_autofree char *bundle = g_build_filename (prep_home, "bundle", NULL);
  g_autofree char *rootfs = g_build_filename (bundle, "rootfs", NULL);
  g_autofree char *host_keys = g_build_filename (rootfs, "etc/ssh", NULL);

  run_root ((const char *[]) { "umoci", "new", "--image", image, NULL });
  run_root ((const char *[]) { "umoci", "unpack", "--image", image, bundle, NULL });
  if (include != NULL)
    run_root ((const char *[]) { "mmdebstrap", variant, "--quiet", include, "bookworm", rootfs, NULL });
  else
    {
      run_root ((const char *[]) { "mmdebstrap", variant, "--quiet", "bookworm", rootfs, NULL });
      for (const char * const *p = (const char *[]) { "lib/systemd/systemd", "usr/sbin/sshd", "sbin/init", NULL };
           *p; p++)
        {
          g_autofree char *file = g_build_filename (rootfs, *p, NULL);
          g_assert_false (g_file_test (file, G_FILE_TEST_EXISTS));
        }
    }
  /* Host keys made by openssh-server's package script, as `image
   * build` drops them: each VM gets its own, pinned. */
  if (g_file_test (host_keys, G_FILE_TEST_IS_DIR))
    run_root ((const char *[]) { "find", host_keys, "-name", "ssh_host_*", "-delete", NULL });
  run_root ((const char *[]) { "umoci", "repack", "--image", image, bundle, NULL });
  run_root ((const char *[]) { "rm", "-rf", "--one-file-system", "--", bundle, NULL });
}

/* The OCI layout: "app", a Debian tree without systemd or sshd and a
 * Cmd that prints what PID 1 is and the host name it was given, then
 * stays up; "sshd", a Debian tree booting systemd, with sshd. */
static void
make_layout (void)
{
  g_autofree char *app = NULL;

  layout = g_build_filename (prep_home, "layout", NULL);
  app = g_strdup_printf ("%s:app", layout);
  run_root ((const char *[]) { "umoci", "init", "--layout", layout, NULL });
  make_image ("app", "--variant=essential", NULL);
  run_root ((const char *[]) { "umoci", "config", "--image", app, "--config.cmd", "/bin/sh",
                               "--config.cmd", "-c", "--config.cmd",
                               "echo \"" MARKER " pid1=$(cat /proc/1/comm) host=$(cat /proc/sys/kernel/hostname)\"; "
                               "exec sleep infinity", NULL });
  make_image ("sshd", "--variant=minbase", "--include=systemd-sysv,udev,openssh-server,sudo,iproute2");
}

/* The bring-your-own ext4: the built image's root with everything of
 * banger's taken out (its guest programs, their units and the links
 * enabling them), never mounted (debugfs), as a user's own Debian ext4
 * with systemd and sshd would be. */
static void
make_byo_rootfs (void)
{
  g_autofree char *built = g_build_filename (prep_home, ".local/share/banger/images/guest/rootfs.ext4", NULL);
  g_autofree char *script = g_build_filename (prep_home, "byo.debugfs", NULL);
  struct passwd *pw = getpwnam (BG_TEST_USER_A);
  const char *dirs[] = { "/usr/libexec", "/usr/lib/systemd/system", "/etc/systemd/system/sysinit.target.wants" };

  byo_rootfs = g_build_filename (prep_home, "byo.ext4", NULL);
  run_root ((const char *[]) { "cp", "--sparse=always", "--", built, byo_rootfs, NULL });
  g_assert_true (g_file_set_contents (script,
                                      "rm /usr/libexec/banger/banger-init\n"
                                      "rm /usr/libexec/banger/banger-agent\n"
                                      "rm /usr/libexec/banger/banger-guest-setup\n"
                                      "rmdir /usr/libexec/banger\n"
                                      "rm /usr/lib/systemd/system/banger-guest-setup.service\n"
                                      "rm /usr/lib/systemd/system/banger-agent.service\n"
                                      "rm /etc/systemd/system/sysinit.target.wants/banger-guest-setup.service\n"
                                      "rm /etc/systemd/system/sysinit.target.wants/banger-agent.service\n",
                                      -1, NULL));
  run_root ((const char *[]) { "debugfs", "-w", "-f", script, byo_rootfs, NULL });
  for (guint i = 0; i < G_N_ELEMENTS (dirs); i++)
    {
      g_autofree char *request = g_strdup_printf ("ls %s", dirs[i]);
      g_autofree char *out = bg_test_run_ok ((const char *[]) { "debugfs", "-R", request, byo_rootfs, NULL });

      g_assert_null (strstr (out, "banger"));
    }
  g_assert_no_errno (chown (byo_rootfs, pw->pw_uid, pw->pw_gid));
}

/* Runs before the harness leaves the host network: the image build and
 * mmdebstrap need the Debian mirror. */
static const char *
prepare (void)
{
  static char reason[200];
  const char *missing;
  g_autofree char *mmdebstrap = g_find_program_in_path ("mmdebstrap");
  g_autofree char *debugfs = g_find_program_in_path ("debugfs");

  if (!g_file_test ("/usr/bin/qemu-system-x86_64", G_FILE_TEST_IS_EXECUTABLE))
    return "needs qemu-system-x86_64 (the boot instrument)";
  if ((missing = bg_test_registry_missing_tool ()) != NULL)
    {
      g_snprintf (reason, sizeof reason, "needs %s for the registry (apt-get install docker-registry skopeo umoci "
                  "openssl python3)", missing);
      return reason;
    }
  if (mmdebstrap == NULL || debugfs == NULL)
    return "needs mmdebstrap and debugfs";
  if (!bg_harness_mirror_reachable ())
    return "the Debian mirror (deb.debian.org) is not reachable: cannot build an image";
  prep_home = bg_harness_build_image (NULL, "guest", FALSE);
  make_layout ();
  make_byo_rootfs ();
  return NULL;
}

/* The guest's kernel answers on @address: a TCP connection to a port
 * nothing listens on is refused (a reset from the guest), where a guest
 * without the address would leave it unanswered. */
static void
assert_answers (const char *address)
{
  g_autoptr(GError) error = NULL;

  for (gint64 end = bg_test_deadline (120); g_get_monotonic_time () < end;)
    {
      g_autoptr(GSocketClient) c = g_socket_client_new ();
      g_autoptr(GSocketConnection) conn = NULL;

      g_clear_error (&error);
      g_socket_client_set_timeout (c, 5);
      conn = g_socket_client_connect_to_host (c, address, 9, NULL, &error);
      g_assert_null (conn);
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED))
        return;
      g_usleep (G_USEC_PER_SEC);
    }
  g_error ("the guest does not answer on %s: %s", address, error->message);
}

static char *
user_home (BgHarness *h)
{
  return g_strdup_printf ("%s/home-%s", h->tmp, BG_TEST_USER_A);
}

/* The user's default image is the built one (a pulled image borrows its
 * kernel, initrd and modules); the registry runs with the layout's @tag
 * pushed as @repo:1, banger trusts the test CA for it and its token
 * server, and pulls it anonymously as image @tag. Its image show. */
static char *
pull_image (BgHarness      *h,
            BgTestRegistry *r,
            const char     *tag,
            const char     *repo)
{
  g_autofree char *home = user_home (h);
  g_autofree char *reg_dir = g_build_filename (h->tmp, "registry", NULL);
  g_autofree char *certs = g_build_filename (home, ".config", "banger", "certs.d", NULL);
  g_autofree char *owner = g_strdup_printf ("%u:%u", bg_harness_uid (BG_TEST_USER_A),
                                            getpwnam (BG_TEST_USER_A)->pw_gid);
  g_autofree char *dest = g_strdup_printf ("%s:1", repo);
  g_autofree char *ref = NULL, *out = NULL, *err = NULL, *show = NULL;
  g_autoptr(JsonObject) pulled = NULL;

  import_image_as (h, prep_home, "guest", "default");
  g_assert_no_errno (g_mkdir (reg_dir, 0700));
  bg_test_registry_start (r, reg_dir);
  bg_test_registry_push (r, layout, tag, dest, FALSE);
  bg_test_registry_trust (r, home, r->reg);
  bg_test_registry_trust (r, home, r->tok);
  run_root ((const char *[]) { "chown", "-R", owner, certs, NULL });

  ref = g_strdup_printf ("%s/%s", r->reg, dest);
  if (cli (h, &out, &err, "image", "pull", ref, "--name", tag, "--json", NULL) != 0)
    g_error ("image pull %s: %s", ref, err);
  pulled = json_object (out);
  g_assert_cmpstr (json_object_get_string_member (pulled, "name"), ==, tag);
  g_assert_cmpint (json_object_get_int_member (pulled, "layers"), ==, 1);
  g_assert_cmpint (cli (h, &show, NULL, "image", "show", tag, NULL), ==, 0);
  g_assert_nonnull (strstr (show, "Layered VMs: yes"));
  return g_steal_pointer (&show);
}

/* @vm is layered as `vm show` says: the image's ext4 its read-only first
 * drive, banger-init the kernel's init. */
static void
assert_layered (BgHarness *h,
                Vm        *vm)
{
  g_autofree char *out = NULL;

  g_assert_cmpint (cli (h, &out, NULL, "vm", "show", vm->name, NULL), ==, 0);
  g_assert_nonnull (strstr (out, "layered"));
  g_assert_nonnull (strstr (vm->boot_args, "init=/usr/libexec/banger/banger-init"));
  g_assert_cmpuint (vm->drives->len, ==, 3);
  g_assert_true (g_str_has_suffix (vm->drives->pdata[0], ",readonly=on"));
}

/* A layered VM of @image as @name, booted through banger-init to the
 * image's systemd, which starts banger-guest-setup: `banger vm ssh`
 * answers with the pinned host key, as the VM's user with the synced
 * file; the root is the overlay, PID 1 systemd. Powered off, removed. */
static void
boot_layered_to_ssh (BgHarness  *h,
                     const char *name,
                     const char *image)
{
  g_autoptr(Vm) vm = make_vm (h, name, image);
  g_autofree char *done = g_strdup_printf ("banger-guest-setup: %s configured in", name);
  g_autofree char *ssh = NULL, *first = g_strdup_printf ("%s\n", name), *root_fs = NULL, *pid1 = NULL;

  assert_layered (h, vm);
  boot (vm);
  ssh = wait_ssh (h, vm, done, NULL);
  g_assert_true (g_str_has_prefix (ssh, first));
  g_assert_nonnull (strstr (ssh, "\tname = Synced From The Host\n"));
  root_fs = in_guest (h, vm, "findmnt -n -o FSTYPE /");
  g_assert_cmpstr (root_fs, ==, "overlay");
  pid1 = in_guest (h, vm, "cat /proc/1/comm");
  g_assert_cmpstr (pid1, ==, "systemd");
  power_off (vm);
  g_assert_cmpint (cli (h, NULL, NULL, "vm", "rm", name, NULL), ==, 0);
}

/* `vm exec` and `vm cp` in the guest without sshd, over the agent:
 * exit statuses, a command's stdout, one file copied in with its bytes
 * and mode (owned by root: the image's setup makes no user). */
static void
assert_agent_works (BgHarness *h,
                    const char *name)
{
  struct passwd *pw = getpwnam (BG_TEST_USER_A);
  g_autofree char *home = user_home (h), *file = g_build_filename (home, "to-guest.txt", NULL);
  g_autofree char *dst = g_strdup_printf ("%s:/tmp/from-host.txt", name);
  g_autofree char *o = NULL, *e = NULL, *host = g_strdup_printf ("%s\n", name);

  g_assert_cmpint (vm_exec (h, name, NULL, "true", NULL), ==, 0);
  g_assert_cmpint (vm_exec (h, name, NULL, "false", NULL), ==, 1);
  g_assert_cmpint (vm_exec (h, name, &o, "cat", "/proc/sys/kernel/hostname", NULL), ==, 0);
  g_assert_cmpstr (o, ==, host);
  g_clear_pointer (&o, g_free);
  g_assert_cmpint (vm_exec (h, name, &o, "cat", "/proc/1/comm", NULL), ==, 0);
  g_assert_cmpstr (o, ==, "banger-init\n");

  g_assert_true (g_file_set_contents (file, "carried by the agent\n", -1, NULL));
  g_assert_no_errno (chmod (file, 0640));
  g_assert_no_errno (chown (file, pw->pw_uid, pw->pw_gid));
  if (cli (h, &o, &e, "vm", "cp", "to-guest.txt", dst, NULL) != 0)
    g_error ("vm cp into %s: %s", name, e);
  g_clear_pointer (&o, g_free);
  g_assert_cmpint (vm_exec (h, name, &o, "cat", "/tmp/from-host.txt", NULL), ==, 0);
  g_assert_cmpstr (o, ==, "carried by the agent\n");
  g_clear_pointer (&o, g_free);
  g_assert_cmpint (vm_exec (h, name, &o, "stat", "-c", "%a %U", "/tmp/from-host.txt", NULL), ==, 0);
  g_assert_cmpstr (o, ==, "640 root\n");
}

static void
test_pulled_image_without_init (void)
{
  BgHarness *h = bg_harness_start (600);
  g_autofree char *home = user_home (h);
  g_autofree char *err = NULL, *show = NULL, *rootfs = NULL, *up_out = NULL;
  g_autofree char *sum_before = NULL, *sum_after = NULL, *line = NULL, *want = NULL, *net = NULL;
  g_autoptr(Vm) vm = NULL;
  BgTestRegistry r = { 0 };

  show = pull_image (h, &r, "app", "debian-app");
  g_assert_nonnull (strstr (show, "SSH:       no"));
  g_assert_nonnull (strstr (show, "Guest setup: banger-init as PID 1"));
  rootfs = g_strdup_printf ("%s/.local/share/banger/images/app/rootfs.ext4", home);
  sum_before = sha256_of (rootfs);

  /* `vm up` waits, and returns because the agent (started by
   * banger-init, over its virtio-serial port here) said ready. */
  vm = up_with_agent (h, "qapp", "app", &up_out);
  assert_layered (h, vm);
  g_assert_nonnull (strstr (up_out, "up (its guest agent answers; the image has no sshd)"));
  g_assert_nonnull (strstr (up_out, "banger vm exec -it qapp -- sh"));

  /* banger-init started the Cmd, which runs under it (PID 1) with the
   * VM's name, after configuring the address the config drive gave. */
  line = wait_console (vm, MARKER);
  want = g_strdup_printf (MARKER " pid1=banger-init host=qapp");
  {
    g_autofree char *console = NULL;
    g_autofree char *addr = g_strdup_printf (" %s/", vm->address);
    g_auto(GStrv) lines = NULL;

    g_assert_true (g_file_get_contents (vm->console, &console, NULL, NULL));
    if (!g_str_equal (line, want))
      g_error ("the workload said \"%s\", not \"%s\"; console:\n%s", line, want, console);
    lines = g_strsplit (console, "\n", -1);
    for (guint i = 0; lines[i] && net == NULL; i++)
      if (g_str_has_prefix (lines[i], "banger-init: ") && strstr (lines[i], addr))
        net = g_strstrip (g_strdup (lines[i]));
    if (net == NULL)
      g_error ("banger-init said nothing of the address %s; console:\n%s", vm->address, console);
    g_test_message ("%s", net);
  }
  assert_answers (vm->address);
  assert_agent_works (h, "qapp");

  /* No sshd: vm ssh says so and names the way in. */
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (cli (h, NULL, &err, "vm", "ssh", "qapp", "--", "true", NULL), !=, 0);
  g_assert_nonnull (strstr (err, "has no sshd"));
  g_assert_nonnull (strstr (err, "banger vm exec -it qapp"));
  power_off (vm);

  sum_after = sha256_of (rootfs);
  g_assert_cmpstr (sum_after, ==, sum_before);
  g_assert_cmpint (cli (h, NULL, NULL, "vm", "rm", "qapp", NULL), ==, 0);
  bg_test_registry_stop (&r);
  bg_harness_stop (h);
}

/* banger-init builds the overlay and execs the image's systemd, which
 * starts the banger-guest-setup banger staged into the image: network,
 * host name, user, keys, the pinned host key; `banger vm ssh` answers. */
static void
test_pulled_image_with_systemd (void)
{
  BgHarness *h = bg_harness_start (600);
  g_autofree char *home = user_home (h);
  g_autofree char *show = NULL, *rootfs = NULL, *sum_before = NULL, *sum_after = NULL;
  BgTestRegistry r = { 0 };

  show = pull_image (h, &r, "sshd", "debian-sshd");
  g_assert_nonnull (strstr (show, "SSH:       yes"));
  g_assert_nonnull (strstr (show, "Guest setup: banger-guest-setup, started by the image's systemd"));
  rootfs = g_strdup_printf ("%s/.local/share/banger/images/sshd/rootfs.ext4", home);
  sum_before = sha256_of (rootfs);

  boot_layered_to_ssh (h, "qsshd", "sshd");

  sum_after = sha256_of (rootfs);
  g_assert_cmpstr (sum_after, ==, sum_before);
  bg_test_registry_stop (&r);
  bg_harness_stop (h);
}

static void
test_byo_ext4 (void)
{
  BgHarness *h = bg_harness_start (600);
  g_autofree char *dir = g_build_filename (prep_home, ".local/share/banger/images/guest", NULL);
  g_autofree char *kernel = g_build_filename (dir, "vmlinux", NULL);
  g_autofree char *initrd = g_build_filename (dir, "initrd.img", NULL);
  g_autofree char *home = user_home (h);
  g_autofree char *copy = g_strdup_printf ("%s/.local/share/banger/images/byo/rootfs.ext4", home);
  g_autofree char *users_before = sha256_of (byo_rootfs);
  g_autofree char *users_after = NULL, *copy_before = NULL, *copy_after = NULL;
  g_autofree char *out = NULL, *err = NULL, *show = NULL;

  /* The synced file and the group rule, as for any image; then the
   * user's own kernel, initrd and ext4. */
  import_image_as (h, prep_home, "guest", "default");
  if (cli (h, &out, &err, "image", "import", "byo", "--kernel", kernel, "--initrd", initrd, "--rootfs", byo_rootfs,
           NULL) != 0)
    g_error ("image import byo: %s", err);
  g_assert_cmpint (cli (h, &show, NULL, "image", "show", "byo", NULL), ==, 0);
  g_assert_nonnull (strstr (show, "Layered VMs: yes"));
  g_assert_nonnull (strstr (show, "Guest setup: banger-guest-setup, started by the image's systemd"));
  copy_before = sha256_of (copy);

  /* banger-init builds the overlay and hands PID 1 to the image's own
   * init. */
  boot_layered_to_ssh (h, "qbyo", "byo");

  users_after = sha256_of (byo_rootfs);
  g_assert_cmpstr (users_after, ==, users_before);
  copy_after = sha256_of (copy);
  g_assert_cmpstr (copy_after, ==, copy_before);
  bg_harness_stop (h);
}

static void
add_tests (void)
{
  g_test_add_func ("/slow/pulled-image-without-init-runs-its-cmd-under-banger-init", test_pulled_image_without_init);
  g_test_add_func ("/slow/pulled-image-with-systemd-answers-ssh", test_pulled_image_with_systemd);
  g_test_add_func ("/slow/bring-your-own-ext4-boots-layered-and-answers-ssh", test_byo_ext4);
}

int
main (int argc, char **argv)
{
  int rc = bg_harness_main_full (&argc, &argv, prepare, add_tests);

  if (prep_home != NULL)
    {
      /* The build's files include ones made in the user namespace. */
      const char *rm[] = { "rm", "-rf", "--one-file-system", "--", prep_home, NULL };
      g_spawn_sync (NULL, (char **) rm, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
    }
  return rc;
}
