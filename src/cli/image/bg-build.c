/* bg-build.c: banger image build — a Debian image made without root.
 *
 * 1. mmdebstrap --mode=unshare writes the system to a tarball as the
 *    user (it needs a subordinate uid range in /etc/subuid).
 * 2. The tarball is extracted inside `unshare --map-auto --map-root-user`,
 *    so its files stay root-owned as seen from inside; device nodes are
 *    skipped (devtmpfs provides them at boot).
 * 3. banger's guest configuration is copied over the tree, in the same
 *    mapping: banger-guest-setup (built with banger, run by a oneshot unit
 *    at every boot, it applies the config drive without cloud-init) or,
 *    with --cloud-init, cloud-init limited to the NoCloud drive; the root
 *    filesystem in fstab; sshd offering only the pinned host key. Host
 *    keys the package scripts made are not copied into the image.
 * 4. mke2fs -d builds the ext4 image from the tree, again in the same
 *    mapping, so owners inside the image are root's (Debian 12's mke2fs
 *    takes a directory, not a tarball).
 * 5. The kernel's vmlinux is extracted from its bzImage in-process, and
 *    the image is imported like any other.
 * Every step is an argv; no shell and no hook scripts.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include "bg-build.h"
#include "bg-guest-programs.h"
#include "bg-config.h"
#include "bg-error.h"
#include "bg-fd.h"
#include "bg-file.h"
#include "bg-image.h"
#include "bg-kernel.h"
#include "bg-names.h"
#include "bg-spawn.h"

#define COMMON_PACKAGES "systemd-sysv,udev,openssh-server,sudo,iproute2,linux-image-cloud-amd64"
/* banger-guest-setup is static (src/guest/meson.build): it needs no
 * library from the image, so any suite will do. */
#define SETUP_PACKAGES COMMON_PACKAGES
/* ifupdown: cloud-init renders the guest's network for Debian's
 * networking.service; minbase has no other renderer's service running. */
#define CLOUD_INIT_PACKAGES COMMON_PACKAGES ",cloud-init,ifupdown"

#define GUEST_SETUP_IN_IMAGE BG_GUEST_SETUP_IN_IMAGE
#define GUEST_INIT_IN_IMAGE "/usr/libexec/banger/banger-init"
#define GUEST_AGENT_IN_IMAGE "/usr/libexec/banger/banger-agent"
#define GUEST_AGENT_UNIT "/usr/lib/systemd/system/banger-agent.service"

/* The guest agent (banger vm exec) for VMs that boot without banger-init
 * (a disk of their own, or --cloud-init images); where banger-init
 * started it already, this second one finds the port served and exits 0.
 * Early, so that `vm up` hears from it before the rest of the boot. */
static const char guest_agent_unit[] =
  "[Unit]\n"
  "Description=banger guest agent (banger vm exec)\n"
  "Documentation=man:banger(1)\n"
  "DefaultDependencies=no\n"
  "After=local-fs.target\n"
  "Before=sysinit.target\n"
  "\n"
  "[Service]\n"
  "ExecStart=" GUEST_AGENT_IN_IMAGE "\n"
  "Restart=on-failure\n"
  "StandardError=journal+console\n"
  "\n"
  "[Install]\n"
  "WantedBy=sysinit.target\n";

/* Whether @name (or @uid) has a range in /etc/subuid or /etc/subgid. */
static gboolean
has_subordinate_range (const char *file,
                       const char *name,
                       uid_t       uid)
{
  g_autofree char *text = NULL;
  g_autofree char *by_uid = g_strdup_printf ("%u:", (guint) uid);
  g_autofree char *by_name = g_strdup_printf ("%s:", name);
  g_auto(GStrv) lines = NULL;

  if (!g_file_get_contents (file, &text, NULL, NULL))
    return FALSE;
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i]; i++)
    if (g_str_has_prefix (lines[i], by_name) || g_str_has_prefix (lines[i], by_uid))
      return TRUE;
  return FALSE;
}

/* Everything `image build` will need, checked before any work: the
 * programs, a subordinate id range for the rootless bootstrap, and
 * banger's guest applier. */
gboolean
bg_build_check_host (const BgBuildOptions  *o,
                     GError               **error)
{
  static const char * const programs[] = {
    "mmdebstrap", "unshare", "newuidmap", "newgidmap", "tar", "cp", "ls", "cat", "rm", "mke2fs", "e2fsck", NULL
  };
  const char *user = g_get_user_name ();

  if (!bg_programs_require (programs, "image build", error))
    return FALSE;
  {
    g_autofree char *agent = bg_guest_programs_agent_path ();

    if (!g_file_test (agent, G_FILE_TEST_IS_EXECUTABLE))
      {
        g_set_error (error, BG_ERROR, BG_ERROR_NOT_SUPPORTED,
                     "banger's guest agent %s is missing: reinstall banger, or set BANGER_AGENT to a built "
                     "banger-agent", agent);
        return FALSE;
      }
  }
  if (getuid () != 0 &&
      (!has_subordinate_range ("/etc/subuid", user, getuid ()) ||
       !has_subordinate_range ("/etc/subgid", user, getuid ())))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_NOT_SUPPORTED,
                   "image build needs a subordinate uid and gid range for %s in /etc/subuid and /etc/subgid "
                   "(an administrator adds one with: usermod --add-subuids 100000-165535 "
                   "--add-subgids 100000-165535 %s)", user, user);
      return FALSE;
    }
  if (!o->cloud_init)
    {
      g_autofree char *guest_setup = bg_guest_programs_setup_path ();
      g_autofree char *init = bg_guest_programs_init_path ();

      if (!g_file_test (guest_setup, G_FILE_TEST_IS_EXECUTABLE))
        {
          g_set_error (error, BG_ERROR, BG_ERROR_NOT_SUPPORTED,
                       "banger's guest applier %s is missing: reinstall banger, set BANGER_GUEST_SETUP "
                       "to a built banger-guest-setup, or build with --cloud-init", guest_setup);
          return FALSE;
        }
      if (!g_file_test (init, G_FILE_TEST_IS_EXECUTABLE))
        {
          g_set_error (error, BG_ERROR, BG_ERROR_NOT_SUPPORTED,
                       "banger's early init %s is missing: reinstall banger, set BANGER_INIT to a built "
                       "banger-init, or build with --cloud-init", init);
          return FALSE;
        }
    }
  return TRUE;
}

static gboolean
run (const char * const  *argv,
     const char          *stage,
     char               **out,
     GError             **error)
{
  if (!bg_spawn_run (argv, out, error))
    {
      g_prefix_error (error, "%s: ", stage);
      return FALSE;
    }
  return TRUE;
}

/* @argv as root inside the user's own subuid mapping, its program found
 * outside it the way every program is (bg_program_find). */
static char **
mapped_argv (const char * const *argv)
{
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();
  g_autofree char *unshare = bg_program_find ("unshare");
  g_autofree char *program = bg_program_find (argv[0]);

  g_strv_builder_add_many (b, unshare ? unshare : "unshare", "--map-auto", "--map-root-user", "--",
                           program ? program : argv[0], NULL);
  g_strv_builder_addv (b, (const char **) argv + 1);
  return g_strv_builder_end (b);
}

static gboolean
run_mapped (const char * const  *argv,
            const char          *stage,
            char               **out,
            GError             **error)
{
  g_auto(GStrv) full = mapped_argv (argv);
  return run ((const char * const *) full, stage, out, error);
}

/* The overlay is copied with its modes (cp --preserve=mode): every
 * directory on the way must be 0755 whatever the umask, or the copy would
 * make /etc unreadable in the guest. */
static gboolean
overlay_mkdirs (const char  *overlay,
                const char  *rel_dir,
                GError     **error)
{
  g_auto(GStrv) parts = g_strsplit (rel_dir, "/", -1);
  g_autofree char *path = g_strdup (overlay);

  for (guint i = 0; parts[i]; i++)
    {
      char *next;

      if (*parts[i] == '\0' || g_str_equal (parts[i], "."))
        continue;
      next = g_build_filename (path, parts[i], NULL);
      g_free (path);
      path = next;
      if ((g_mkdir (path, 0755) < 0 && errno != EEXIST) || g_chmod (path, 0755) < 0)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot create %s: %s", path, g_strerror (errno));
          return FALSE;
        }
    }
  return TRUE;
}

static gboolean
overlay_write (const char  *overlay,
               const char  *rel,
               const char  *data,
               gssize       len,
               int          mode,
               GError     **error)
{
  g_autofree char *dir = g_path_get_dirname (rel);
  g_autofree char *path = g_build_filename (overlay, rel, NULL);

  return overlay_mkdirs (overlay, dir, error) && bg_file_replace (path, data, len, mode, error);
}

/* banger-agent and the unit that starts it where banger-init does not. */
static gboolean
write_agent (const char  *overlay,
             GError     **error)
{
  g_autofree char *path = bg_guest_programs_agent_path ();
  g_autofree char *binary = NULL;
  g_autofree char *link = g_build_filename (overlay, "etc/systemd/system/sysinit.target.wants",
                                            "banger-agent.service", NULL);
  gsize len;

  if (!g_file_get_contents (path, &binary, &len, error) ||
      !overlay_write (overlay, GUEST_AGENT_IN_IMAGE + 1, binary, len, 0755, error) ||
      !overlay_write (overlay, GUEST_AGENT_UNIT + 1, guest_agent_unit, -1, 0644, error) ||
      !overlay_mkdirs (overlay, "etc/systemd/system/sysinit.target.wants", error))
    return FALSE;
  if (symlink (GUEST_AGENT_UNIT, link) < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot create %s: %s", link, g_strerror (errno));
      return FALSE;
    }
  return TRUE;
}

gboolean
bg_build_write_overlay (const char            *overlay,
               const BgBuildOptions  *o,
               const char            *guest_setup,
               GError               **error)
{
  static const struct { const char *path; const char *text; } files[] = {
    /* The root is the kernel command line's business: a disk of the VM's
     * own, or (layered) an overlay banger-init assembles. */
    { "etc/fstab", "# banger: the root filesystem is given on the kernel command line\n" },
    { "etc/hostname", "banger\n" },
    /* Firecracker has no RTC battery and one serial console. */
    { "etc/systemd/timesyncd.conf.d/banger.conf", "[Time]\nFallbackNTP=\n" },
    /* Only the key banger pinned for this VM; never passwords or root. */
    { "etc/ssh/sshd_config.d/50-banger.conf",
      "# banger: the host key is the one pinned on the host before first boot\n"
      "HostKey /etc/ssh/ssh_host_ed25519_key\n"
      "PasswordAuthentication no\n"
      "KbdInteractiveAuthentication no\n"
      "PermitRootLogin no\n" },
  };

  if (g_chmod (overlay, 0755) < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot chmod %s: %s", overlay, g_strerror (errno));
      return FALSE;
    }
  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    if (!overlay_write (overlay, files[i].path, files[i].text, -1, 0644, error))
      return FALSE;

  if (!write_agent (overlay, error))
    return FALSE;
  if (o->cloud_init)
    /* Only the NoCloud config drive, never the network metadata services. */
    return overlay_write (overlay, "etc/cloud/cloud.cfg.d/90-banger.cfg",
                          "# banger: configuration comes from the NoCloud drive (label CIDATA)\n"
                          "datasource_list: [ NoCloud, None ]\n", -1, 0644, error);

  {
    g_autofree char *binary = NULL, *init = NULL, *init_path = bg_guest_programs_init_path ();
    g_autofree char *link = g_build_filename (overlay, "etc/systemd/system/sysinit.target.wants",
                                              "banger-guest-setup.service", NULL);
    gsize len, init_len;

    if (!g_file_get_contents (guest_setup, &binary, &len, error) ||
        !g_file_get_contents (init_path, &init, &init_len, error))
      return FALSE;
    /* banger-init makes the image's VMs layered (bg-disk.c). */
    if (!overlay_write (overlay, GUEST_INIT_IN_IMAGE + 1, init, init_len, 0755, error) ||
        !overlay_write (overlay, GUEST_SETUP_IN_IMAGE + 1, binary, len, 0755, error) ||
        !overlay_write (overlay, BG_GUEST_SETUP_UNIT + 1, bg_guest_programs_setup_unit, -1, 0644, error) ||
        !overlay_mkdirs (overlay, "etc/systemd/system/sysinit.target.wants", error))
      return FALSE;
    if (symlink (BG_GUEST_SETUP_UNIT, link) < 0)
      {
        g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot create %s: %s", link, g_strerror (errno));
        return FALSE;
      }
  }
  return TRUE;
}

static char *
find_boot_file (const char *listing,
                const char *prefix)
{
  g_auto(GStrv) lines = g_strsplit (listing, "\n", -1);
  char *found = NULL;

  for (guint i = 0; lines[i]; i++)
    if (g_str_has_prefix (lines[i], prefix))
      {
        g_free (found);
        found = g_strdup (lines[i]);
      }
  return found;
}

static gboolean
copy_out (const char  *tree,
          const char  *rel,
          const char  *dest,
          GError     **error)
{
  /* The file may be readable only by (mapped) root: read it from inside. */
  g_autofree char *src = g_build_filename (tree, rel, NULL);
  const char *cat[] = { "cat", src, NULL };
  g_auto(GStrv) argv = mapped_argv (cat);
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GBytes) data = NULL;

  proc = g_subprocess_newv ((const char * const *) argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE, error);
  if (proc == NULL || !g_subprocess_communicate (proc, NULL, NULL, &data, NULL, error))
    return FALSE;
  if (!g_subprocess_get_successful (proc))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot read %s from the image", rel);
      return FALSE;
    }
  return g_file_set_contents (dest, g_bytes_get_data (data, NULL), g_bytes_get_size (data), error);
}

static void
remove_tree (const char *tree)
{
  /* Owned by the subuid range: only the mapping may delete it, so this
   * is the one tree banger removes with a child. */
  const char *rm[] = { "rm", "-rf", "--", tree, NULL };

  run_mapped (rm, "cleanup", NULL, NULL);
}

BgImage *
bg_image_build (const char           *images_dir,
                const char           *name,
                const BgBuildOptions *o,
                BgProgress           *progress,
                GError              **error)
{
  g_autofree char *work = NULL, *tar = NULL, *tree = NULL, *overlay = NULL, *overlay_src = NULL;
  g_autofree char *rootfs = NULL, *bz = NULL, *vmlinux = NULL, *initrd = NULL;
  g_autofree char *include = NULL, *listing = NULL, *kname = NULL, *iname = NULL, *size = NULL;
  g_autofree char *guest_setup = NULL, *final = NULL;
  const char *base = o->cloud_init ? CLOUD_INIT_PACKAGES : SETUP_PACKAGES;
  BgImage *image = NULL;

  /* Checked before minutes of bootstrapping, not after. */
  if ((final = bg_image_new_dir (images_dir, name, error)) == NULL || !bg_build_check_host (o, error))
    return NULL;
  if (!o->cloud_init)
    guest_setup = bg_guest_programs_setup_path ();
  g_mkdir_with_parents (images_dir, 0700);
  work = g_strdup_printf ("%s/.build-%s-XXXXXX", images_dir, name);
  if (g_mkdtemp_full (work, 0700) == NULL)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot create %s: %s", work, g_strerror (errno));
      return NULL;
    }
  tar = g_build_filename (work, "root.tar", NULL);
  tree = g_build_filename (work, "tree", NULL);
  overlay = g_build_filename (work, "overlay", NULL);
  rootfs = g_build_filename (work, "rootfs.ext4", NULL);
  bz = g_build_filename (work, "vmlinuz", NULL);
  vmlinux = g_build_filename (work, "vmlinux", NULL);
  initrd = g_build_filename (work, "initrd.img", NULL);
  if (o->packages && o->packages[0])
    {
      g_autofree char *extra = g_strjoinv (",", o->packages);
      include = g_strdup_printf ("--include=%s,%s", base, extra);
    }
  else
    include = g_strdup_printf ("--include=%s", base);

  bg_progress_step (progress, "bootstrapping Debian with mmdebstrap (downloads packages; a few minutes)");
  {
    const char *argv[] = { "mmdebstrap", "--mode=unshare", "--variant=minbase", "--quiet", include,
                           o->suite, tar, o->mirror, NULL };
    if (!run (argv, "bootstrap", NULL, error))
      goto fail;
  }

  bg_progress_step (progress, "unpacking the system");
  if (g_mkdir (tree, 0755) < 0)
    goto io_fail;
  {
    /* Host keys made by openssh-server's package script would be the
     * same in every VM: each VM gets its own pinned key at first boot. */
    const char *argv[] = { "tar", "-C", tree, "--exclude=./dev/*", "--exclude=./etc/ssh/ssh_host_*",
                           "-xf", tar, NULL };
    if (!run_mapped (argv, "unpack", NULL, error))
      goto fail;
  }
  g_unlink (tar);

  bg_progress_step (progress, "adding banger's guest configuration");
  if (g_mkdir (overlay, 0755) < 0)
    goto io_fail;
  if (!bg_build_write_overlay (overlay, o, guest_setup, error))
    goto fail;
  overlay_src = g_strdup_printf ("%s/.", overlay);
  {
    const char *argv[] = { "cp", "-r", "--preserve=mode", "--no-preserve=ownership", overlay_src, tree,
                           NULL };
    if (!run_mapped (argv, "configure", NULL, error))
      goto fail;
  }

  bg_progress_step (progress, "extracting the kernel");
  {
    g_autofree char *boot = g_build_filename (tree, "boot", NULL);
    const char *argv[] = { "ls", "-1", boot, NULL };
    if (!run_mapped (argv, "kernel", &listing, error))
      goto fail;
  }
  kname = find_boot_file (listing, "vmlinuz-");
  iname = find_boot_file (listing, "initrd.img-");
  if (kname == NULL)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "kernel: the system has no /boot/vmlinuz-*");
      goto fail;
    }
  {
    g_autofree char *krel = g_build_filename ("boot", kname, NULL);
    g_auto(BgFd) in = -1, out = -1;

    if (!copy_out (tree, krel, bz, error))
      goto fail;
    in = open (bz, O_RDONLY | O_CLOEXEC);
    out = open (vmlinux, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (in < 0 || out < 0 || !bg_kernel_extract_vmlinux (in, out, error))
      goto fail;
  }
  if (iname != NULL)
    {
      g_autofree char *irel = g_build_filename ("boot", iname, NULL);
      if (!copy_out (tree, irel, initrd, error))
        goto fail;
    }

  bg_progress_step (progress, "making the ext4 root filesystem");
  size = g_strdup_printf ("%" G_GUINT64_FORMAT "k", o->size >> 10);
  {
    const char *argv[] = { "mke2fs", "-q", "-t", "ext4", "-L", "rootfs", "-d", tree, rootfs, size, NULL };
    if (!run_mapped (argv, "filesystem", NULL, error))
      goto fail;
  }
  remove_tree (tree);

  {
    g_autofree char *source = g_strdup_printf ("build: Debian %s (mmdebstrap), guest configured by %s, packages %s",
                                               o->suite, o->cloud_init ? "cloud-init" : "banger-guest-setup",
                                               include + 10);
    BgImageFiles files = { vmlinux, rootfs, iname ? initrd : NULL, NULL, source };

    image = bg_image_import (images_dir, name, &files, progress, error);
  }
  remove_tree (work);
  return image;

io_fail:
  g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot write into %s: %s", work, g_strerror (errno));
fail:
  remove_tree (work);
  return NULL;
}
