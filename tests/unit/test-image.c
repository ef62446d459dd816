#include <elf.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <glib/gstdio.h>

#include "bg-bootcheck.h"
#include "bg-build.h"
#include "bg-cli.h"
#include "bg-disk.h"
#include "bg-disk-vm.h"
#include "bg-guest-programs.h"
#include "bg-error.h"
#include "bg-guest-insert.h"
#include "bg-kernel.h"
#include "kernel-sample.h"
#include "bg-rootfs.h"
#include "bg-image.h"
#include "bg-initrd.h"
#include "bg-spawn.h"

#include "../bg-test.h"

typedef struct {
  char *tmp;
} Fixture;

static void
setup (Fixture *f, gconstpointer data)
{
  g_autofree char *cache = NULL;

  f->tmp = g_dir_make_tmp ("banger-image-XXXXXX", NULL);
  bg_interrupted = 0;
  /* The templates of layered VMs' disks go into the fixture, not the
   * user's own cache. */
  cache = g_build_filename (f->tmp, "cache", NULL);
  g_setenv ("XDG_CACHE_HOME", cache, TRUE);
}

static void
teardown (Fixture *f, gconstpointer data)
{
  const char *argv[] = { "rm", "-rf", "--", f->tmp, NULL };
  g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
  g_free (f->tmp);
}

/* A minimal x86-64 executable ELF image, as a vmlinux starts. */
static GBytes *
fake_vmlinux (guint16 machine)
{
  gsize len = 64 * 1024;
  guint8 *data = g_malloc0 (len);
  Elf64_Ehdr *eh = (Elf64_Ehdr *) data;

  memcpy (eh->e_ident, ELFMAG, SELFMAG);
  eh->e_ident[EI_CLASS] = ELFCLASS64;
  eh->e_ident[EI_DATA] = ELFDATA2LSB;
  eh->e_ident[EI_VERSION] = EV_CURRENT;
  eh->e_type = ET_EXEC;
  eh->e_machine = machine;
  for (gsize i = sizeof *eh; i < len; i++)
    data[i] = (guint8) (i * 7);
  return g_bytes_new_take (data, len);
}

static char *
write_file (Fixture *f, const char *name, const void *data, gsize len)
{
  char *path = g_build_filename (f->tmp, name, NULL);
  g_assert_true (g_file_set_contents (path, data, len, NULL));
  return path;
}

static char *
make_ext4 (Fixture *f, const char *name, const char *size)
{
  char *path = g_build_filename (f->tmp, name, NULL);
  const char *argv[] = { "mke2fs", "-q", "-F", "-t", "ext4", path, size, NULL };
  g_autoptr(GError) error = NULL;
  int status;

  /* Its "Creating regular file" line would break the TAP stream. */
  bg_test_spawn_sync (NULL, argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, &status, &error);
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  return path;
}

static BgKernelFormat
detect_path (const char *path, GError **error)
{
  int fd = open (path, O_RDONLY);
  BgKernelFormat k = bg_kernel_detect (fd, error);
  close (fd);
  return k;
}

static void
test_kernel_format_detection (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) elf = fake_vmlinux (EM_X86_64);
  g_autoptr(GBytes) arm = fake_vmlinux (EM_AARCH64);
  g_autoptr(GBytes) gz = bg_test_compress (elf, "gzip");
  g_autoptr(GBytes) bz = bg_test_bzimage (gz);
  g_autofree char *p_elf = write_file (f, "vmlinux", g_bytes_get_data (elf, NULL), g_bytes_get_size (elf));
  g_autofree char *p_arm = write_file (f, "arm", g_bytes_get_data (arm, NULL), g_bytes_get_size (arm));
  g_autofree char *p_bz = write_file (f, "bzImage", g_bytes_get_data (bz, NULL), g_bytes_get_size (bz));
  g_autofree char *p_junk = write_file (f, "junk", "not a kernel at all, just words", 31);
  g_autoptr(GError) error = NULL;

  g_assert_cmpint (detect_path (p_elf, NULL), ==, BG_KERNEL_VMLINUX);
  g_assert_cmpint (detect_path (p_bz, NULL), ==, BG_KERNEL_BZIMAGE);
  g_assert_cmpint (detect_path (p_arm, &error), ==, BG_KERNEL_UNKNOWN);
  g_assert_nonnull (strstr (error->message, "not an x86-64 kernel"));
  g_clear_error (&error);
  g_assert_cmpint (detect_path (p_junk, &error), ==, BG_KERNEL_UNKNOWN);
  g_assert_nonnull (strstr (error->message, "kernel: not a Linux kernel"));
}

static void
test_bzimage_payloads_decompress_to_vmlinux (Fixture *f, gconstpointer data)
{
  const char *methods[] = { "gzip", "xz", "zstd", "lz4" };
  g_autoptr(GBytes) elf = fake_vmlinux (EM_X86_64);

  for (guint i = 0; i < G_N_ELEMENTS (methods); i++)
    {
      g_autoptr(GBytes) payload = bg_test_compress (elf, methods[i]);
      g_autoptr(GBytes) bz = bg_test_bzimage (payload);
      g_autofree char *in = write_file (f, methods[i], g_bytes_get_data (bz, NULL), g_bytes_get_size (bz));
      g_autofree char *out_path = g_strdup_printf ("%s.vmlinux", in);
      g_autofree char *got = NULL;
      g_autoptr(GError) error = NULL;
      gsize len;
      int ifd = open (in, O_RDONLY), ofd = open (out_path, O_RDWR | O_CREAT, 0600);

      g_assert_true (bg_kernel_extract_vmlinux (ifd, ofd, &error));
      g_assert_no_error (error);
      close (ifd);
      close (ofd);
      g_assert_true (g_file_get_contents (out_path, &got, &len, NULL));
      g_assert_cmpmem (got, len, g_bytes_get_data (elf, NULL), g_bytes_get_size (elf));
    }
}

static void
test_rootfs_must_be_ext4 (Fixture *f, gconstpointer data)
{
  g_autofree char *ext4 = make_ext4 (f, "root.ext4", "8M");
  g_autofree char *junk = write_file (f, "junk.img", "\0\0\0\0", 4);
  g_autoptr(GError) error = NULL;
  int a = open (ext4, O_RDONLY), b = open (junk, O_RDONLY);

  g_assert_true (bg_rootfs_check_ext4 (a, NULL));
  g_assert_false (bg_rootfs_check_ext4 (b, &error));
  g_assert_nonnull (strstr (error->message, "rootfs: not an ext2/3/4"));
  close (a);
  close (b);
}

static void
test_import_round_trip (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) elf = fake_vmlinux (EM_X86_64);
  g_autoptr(GBytes) xz = bg_test_compress (elf, "xz");
  g_autoptr(GBytes) bz = bg_test_bzimage (xz);
  g_autofree char *kernel = write_file (f, "bzImage", g_bytes_get_data (bz, NULL), g_bytes_get_size (bz));
  g_autofree char *rootfs = make_ext4 (f, "root.ext4", "16M");
  g_autofree char *initrd = write_file (f, "initrd", "070701", 6);
  g_autofree char *images = g_build_filename (f->tmp, "images", NULL);
  g_autofree char *rootfs_data = NULL;
  g_autofree char *want_sha = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(BgImage) image = NULL;
  g_autoptr(BgImage) back = NULL;
  g_autoptr(GDir) dir = NULL;
  gsize len;

  image = bg_image_import (images, "deb", &(BgImageFiles) { kernel, rootfs, initrd, "quiet", NULL }, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (image->kernel_bytes, ==, g_bytes_get_size (elf));
  back = bg_image_load (images, "deb", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (back->cmdline, ==, "quiet");
  g_assert_nonnull (back->initrd);
  g_assert_cmpuint (back->rootfs_bytes, ==, 16 << 20);
  g_assert_true (g_file_get_contents (rootfs, &rootfs_data, &len, NULL));
  want_sha = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (guint8 *) rootfs_data, len);
  g_assert_cmpstr (back->rootfs_sha256, ==, want_sha);
  g_assert_cmpint (detect_path (back->kernel, NULL), ==, BG_KERNEL_VMLINUX);

  /* Importing the same name again is refused and changes nothing. */
  g_clear_pointer (&image, bg_image_free);
  image = bg_image_import (images, "deb", &(BgImageFiles) { kernel, rootfs, NULL, NULL, NULL }, NULL, &error);
  g_assert_null (image);
  g_assert_error (error, BG_ERROR, BG_ERROR_EXISTS);

  /* Nothing but the image itself in the images dir. */
  dir = g_dir_open (images, 0, NULL);
  g_assert_cmpstr (g_dir_read_name (dir), ==, "deb");
  g_assert_null (g_dir_read_name (dir));
}

/* A layered VM's disk that found no room: refused, saying so with the
 * layered disk's advice, and nothing left where it was to be (@left). */
static void
assert_no_room (gboolean made, const GError *error, gboolean left)
{
  g_assert_false (made);
  g_assert_nonnull (error);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "No space left on device"));
  g_assert_nonnull (strstr (error->message, "free some space there: a layered VM's disk"));
  g_assert_false (left);
}

/* An image with banger-init and no mke2fs (as an OCI image) is layered,
 * and its VMs' disks are made on the host as ext4, still O(1). */
static void
test_layering_and_copy_reasons (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) elf = fake_vmlinux (EM_X86_64);
  g_autofree char *kernel = write_file (f, "vmlinux", g_bytes_get_data (elf, NULL), g_bytes_get_size (elf));
  g_autofree char *tree = g_build_filename (f->tmp, "tree", NULL);
  g_autofree char *libexec = g_build_filename (tree, "usr/libexec/banger", NULL);
  g_autofree char *init = g_build_filename (libexec, "banger-init", NULL);
  g_autofree char *lay_fs = g_build_filename (f->tmp, "lay.ext4", NULL);
  g_autofree char *images = g_build_filename (f->tmp, "images", NULL);
  g_autofree char *init_bin = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(BgImage) lay = NULL;
  g_autofree char *mke2fs = bg_program_find ("mke2fs");
  const char *mkfs[] = { mke2fs, "-q", "-F", "-t", "ext4", "-d", tree, lay_fs, "16M", NULL };
  gsize len;
  int status;

  g_assert_true (g_file_get_contents (g_getenv ("BANGER_INIT"), &init_bin, &len, NULL));
  g_assert_no_errno (g_mkdir_with_parents (libexec, 0755));
  g_assert_true (g_file_set_contents_full (init, init_bin, len, G_FILE_SET_CONTENTS_NONE, 0755, NULL));
  /* An sshd (merged /usr), which image show and vm ssh go by. */
  {
    g_autofree char *sbin = g_build_filename (tree, "usr/sbin", NULL);
    g_autofree char *sshd = g_build_filename (sbin, "sshd", NULL);

    g_assert_no_errno (g_mkdir_with_parents (sbin, 0755));
    g_assert_true (g_file_set_contents_full (sshd, "", 0, G_FILE_SET_CONTENTS_NONE, 0755, NULL));
  }
  g_assert_nonnull (mke2fs);
  g_assert_true (g_spawn_sync (NULL, (char **) mkfs, NULL, G_SPAWN_STDOUT_TO_DEV_NULL,
                               NULL, NULL, NULL, NULL, &status, NULL));
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  lay = bg_image_import (images, "lay", &(BgImageFiles) { kernel, lay_fs, NULL, NULL, NULL }, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (lay->layered);
  g_assert_null (lay->copy_reason);
  g_assert_true (lay->format_upper);
  g_assert_true (lay->sshd_known);
  g_assert_true (lay->has_sshd);
  {
    g_autofree char *vm = g_build_filename (f->tmp, "vm", NULL);
    g_autofree char *upper = g_build_filename (vm, "upper.img", NULL);
    g_autofree char *reason = NULL;
    BgDiskMode used;
    struct stat st;
    int fd;

    g_assert_no_errno (g_mkdir (vm, 0700));
    g_assert_true (bg_disk_vm_make (lay, vm, BG_DISK_MODE_LAYERED, G_GUINT64_CONSTANT (8) << 30, &used,
                                        &reason, NULL, &error));
    g_assert_no_error (error);
    g_assert_cmpint (used, ==, BG_DISK_MODE_LAYERED);
    fd = open (upper, O_RDONLY | O_CLOEXEC);
    g_assert_true (bg_rootfs_check_ext4 (fd, NULL));
    close (fd);
    /* Still O(1): a few hundred KiB written of the 8 GiB. */
    g_assert_no_errno (stat (upper, &st));
    g_assert_cmpint (st.st_blocks * 512, <=, 1 << 20);
  }
  /* A state dir with no room for those few hundred KiB: the copy of
   * the template fails,
   * and the error says what to do, as a copy's does; nothing is left.
   * The tmpfs is unmounted before anything is asserted, so a failure
   * leaves no mount behind. */
  if (geteuid () == 0)
    {
      g_autofree char *full = g_build_filename (f->tmp, "full", NULL);
      g_autofree char *upper = g_build_filename (full, "upper.img", NULL);
      g_autofree char *reason = NULL;
      g_autoptr(GError) local = NULL;
      gboolean made, left;
      BgDiskMode used;

      g_assert_no_errno (g_mkdir (full, 0700));
      g_assert_no_errno (mount ("tmpfs", full, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0700"));
      made = bg_disk_vm_make (lay, full, BG_DISK_MODE_LAYERED, G_GUINT64_CONSTANT (8) << 30, &used, &reason,
                                  NULL, &local);
      left = g_file_test (upper, G_FILE_TEST_EXISTS);
      g_assert_no_errno (umount2 (full, MNT_DETACH));
      assert_no_room (made, local, left);
    }
}

/* What an import takes: a fake vmlinux, a 16 MiB ext4 root, and where
 * images go, all in the fixture's directory. */
typedef struct {
  char *kernel;
  char *rootfs;
  char *images;
} Sample;

static Sample
sample_init (Fixture *f)
{
  g_autoptr(GBytes) elf = fake_vmlinux (EM_X86_64);

  return (Sample) {
    write_file (f, "vmlinux", g_bytes_get_data (elf, NULL), g_bytes_get_size (elf)),
    make_ext4 (f, "root.ext4", "16M"),
    g_build_filename (f->tmp, "images", NULL),
  };
}

static void
sample_clear (Sample *s)
{
  g_free (s->kernel);
  g_free (s->rootfs);
  g_free (s->images);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Sample, sample_clear)

/* The import, reporting to a BgProgress as the CLI does; in a test
 * subprocess, whose stderr the parent reads. */
static void
import_with_progress (Fixture *f,
                      gboolean tty)
{
  g_auto(Sample) in = sample_init (f);
  g_autoptr(GError) error = NULL;
  g_autoptr(BgImage) image = NULL;
  BgCli cli = { .is_tty = tty };
  BgProgress progress;

  bg_progress_init (&progress, &cli, "deb");
  image = bg_image_import (in.images, "deb", &(BgImageFiles) { in.kernel, in.rootfs, NULL, NULL, NULL },
                           &progress, &error);
  bg_progress_done (&progress);
  bg_progress_clear (&progress);
  g_assert_no_error (error);
}

/* What an import shows: in a log, a line per step named by the image and
 * no byte counts; on a terminal, one line redrawn, with how far the
 * root's copy is. */
typedef struct {
  gboolean    tty;
  const char *expect;
  const char *never;
} ProgressCase;

static const ProgressCase progress_in_a_log = {
  FALSE,
  "deb: copying the kernel\n"
  "deb: *the root filesystem*\n"
  "deb: checking the root filesystem\n"
  "deb: adding banger's guest programs to banger's copy, so its VMs can be layered\n"
  "deb: checking the kernel against what Firecracker needs\n",
  "*%*",
};

static const ProgressCase progress_on_a_terminal = {
  TRUE,
  "\r\033[Kdeb: copying the kernel"
  "*\r\033[Kdeb: *the root filesystem: *% (* of 16 MiB)"
  "*\r\033[Kdeb: checking the kernel against what Firecracker needs\r\033[K",
  NULL,
};

static void
test_import_progress (Fixture *f, gconstpointer data)
{
  const ProgressCase *c = data;

  if (g_test_subprocess ())
    {
      import_with_progress (f, c->tty);
      return;
    }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
  g_test_trap_assert_stderr (c->expect);
  if (c->never != NULL)
    g_test_trap_assert_stderr_unmatched (c->never);
}

static void
test_interrupted_import_leaves_nothing (Fixture *f, gconstpointer data)
{
  g_auto(Sample) in = sample_init (f);
  g_autoptr(GError) error = NULL;
  g_autoptr(BgImage) image = NULL;
  g_autoptr(GDir) dir = NULL;

  /* Ctrl-C as the import starts: it stops at its first copy, after
   * making its temporary directory and the kernel's file. */
  bg_interrupted = 1;
  image = bg_image_import (in.images, "half", &(BgImageFiles) { in.kernel, in.rootfs, NULL, NULL, NULL }, NULL,
                           &error);
  g_assert_null (image);
  g_assert_nonnull (strstr (error->message, "interrupted"));
  dir = g_dir_open (in.images, 0, NULL);
  g_assert_null (g_dir_read_name (dir));
}

static void
test_bad_inputs_name_the_field (Fixture *f, gconstpointer data)
{
  g_autofree char *junk = write_file (f, "junk", "xxxxxxxx", 8);
  g_autofree char *rootfs = make_ext4 (f, "root.ext4", "8M");
  g_autofree char *images = g_build_filename (f->tmp, "images", NULL);
  g_autoptr(GBytes) elf = fake_vmlinux (EM_X86_64);
  g_autofree char *kernel = write_file (f, "vmlinux", g_bytes_get_data (elf, NULL), g_bytes_get_size (elf));
  g_autoptr(GError) e1 = NULL, e2 = NULL, e3 = NULL, e4 = NULL;

  g_assert_null (bg_image_import (images, "a", &(BgImageFiles) { junk, rootfs, NULL, NULL, NULL }, NULL, &e1));
  g_assert_true (g_str_has_prefix (e1->message, "kernel: "));
  g_assert_null (bg_image_import (images, "a", &(BgImageFiles) { kernel, junk, NULL, NULL, NULL }, NULL, &e2));
  g_assert_true (g_str_has_prefix (e2->message, "rootfs: "));
  g_assert_null (bg_image_import (images, "a", &(BgImageFiles) { kernel, "/nonexistent", NULL, NULL, NULL }, NULL, &e3));
  g_assert_true (g_str_has_prefix (e3->message, "rootfs: cannot open"));
  g_assert_null (bg_image_import (images, "Bad/Name", &(BgImageFiles) { kernel, rootfs, NULL, NULL, NULL }, NULL, &e4));
  g_assert_true (g_str_has_prefix (e4->message, "NAME: "));
}

/* A copy made in a thread stops when its cancellable is cancelled, and
 * only then: the command's Ctrl-C flag is not the thread's. */
static void
test_sparse_copy_stops_when_cancelled (Fixture *f, gconstpointer data)
{
  g_autofree char *src = g_build_filename (f->tmp, "data", NULL);
  g_autofree char *dst = g_build_filename (f->tmp, "copy", NULL);
  g_autofree guint8 *chunk = g_malloc (1 << 20);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  int in, out;

  memset (chunk, 0xcd, 1 << 20);
  in = open (src, O_RDWR | O_CREAT, 0600);
  g_assert_cmpint (pwrite (in, chunk, 1 << 20, 0), ==, 1 << 20);
  out = open (dst, O_RDWR | O_CREAT, 0600);
  g_assert_true (bg_disk_copy_sparse (in, out, NULL, NULL, cancellable, &error));
  g_assert_no_error (error);
  g_cancellable_cancel (cancellable);
  g_assert_false (bg_disk_copy_sparse (in, out, NULL, NULL, cancellable, &error));
  g_assert_error (error, BG_ERROR, BG_ERROR_FAILED);
  g_assert_cmpstr (error->message, ==, "interrupted");
  close (in);
  close (out);
}

static void
test_sparse_copy_keeps_holes (Fixture *f, gconstpointer data)
{
  g_autofree char *src = g_build_filename (f->tmp, "sparse", NULL);
  g_autofree char *dst = g_build_filename (f->tmp, "copy", NULL);
  g_autofree char *a = NULL, *b = NULL;
  g_autofree guint8 *chunk = g_malloc (1 << 20);
  g_autoptr(GError) error = NULL;
  struct stat s1, s2;
  gsize la, lb;
  int in, out;

  memset (chunk, 0xab, 1 << 20);
  in = open (src, O_RDWR | O_CREAT, 0600);
  g_assert_cmpint (ftruncate (in, 256 << 20), ==, 0);          /* 256 MiB, mostly hole */
  g_assert_cmpint (pwrite (in, chunk, 1 << 20, 100 << 20), ==, 1 << 20);
  g_assert_cmpint (pwrite (in, chunk, 1 << 20, 0), ==, 1 << 20);
  out = open (dst, O_RDWR | O_CREAT, 0600);
  g_assert_true (bg_disk_copy_sparse (in, out, NULL, NULL, NULL, &error));
  g_assert_no_error (error);
  fstat (in, &s1);
  fstat (out, &s2);
  close (in);
  close (out);

  g_assert_cmpint (s2.st_size, ==, s1.st_size);
  /* Only the 2 MiB of data was written. */
  g_assert_cmpint (s2.st_blocks, <=, s1.st_blocks + 64);
  g_assert_cmpint (s2.st_blocks * 512, <, 4 << 20);
  g_assert_true (g_file_get_contents (src, &a, &la, NULL));
  g_assert_true (g_file_get_contents (dst, &b, &lb, NULL));
  g_assert_cmpmem (a, la, b, lb);
}

static void
test_strategy_selection (Fixture *f, gconstpointer data)
{
  g_autofree char *rootfs = make_ext4 (f, "base.ext4", "32M");
  g_autofree char *d1 = g_build_filename (f->tmp, "d1", NULL);
  g_autofree char *d2 = g_build_filename (f->tmp, "d2", NULL);
  g_autofree char *d3 = g_build_filename (f->tmp, "d3", NULL);
  g_autoptr(GError) error = NULL;
  struct stat st;
  BgDiskMode used;
  int fd;
  gboolean reflinks;

  /* Whether this filesystem reflinks decides what auto must pick. */
  {
    g_autofree char *probe = g_build_filename (f->tmp, "probe", NULL);
    int a = open (rootfs, O_RDONLY), b = open (probe, O_RDWR | O_CREAT, 0600);
    reflinks = bg_disk_reflink (a, b, NULL);
    close (a);
    close (b);
  }

  g_assert_true (bg_disk_create (rootfs, d1, BG_DISK_MODE_AUTO, 64 << 20, &used, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (used, ==, reflinks ? BG_DISK_MODE_REFLINK : BG_DISK_MODE_COPY);
  /* Grown, and the filesystem with it. */
  g_assert_no_errno (stat (d1, &st));
  g_assert_cmpint (st.st_size, ==, 64 << 20);
  {
    const char *argv[] = { "e2fsck", "-fn", d1, NULL };
    g_autoptr(GError) spawn_error = NULL;
    int status;
    bg_test_spawn_sync (NULL, argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL,
                        &status, &spawn_error);
    g_assert_no_error (spawn_error);
    g_assert_true (g_spawn_check_wait_status (status, NULL));
  }

  /* Reflink asked for: made where the filesystem can, else refused. */
  if (!reflinks)
    {
      g_assert_false (bg_disk_create (rootfs, d2, BG_DISK_MODE_REFLINK, 0, &used, NULL, &error));
      g_assert_error (error, BG_ERROR, BG_ERROR_NOT_SUPPORTED);
      g_clear_error (&error);
      /* A failed attempt leaves no file. */
      g_assert_false (g_file_test (d2, G_FILE_TEST_EXISTS));
    }
  else
    {
      g_assert_true (bg_disk_create (rootfs, d2, BG_DISK_MODE_REFLINK, 0, &used, NULL, &error));
      g_assert_no_error (error);
      g_assert_cmpint (used, ==, BG_DISK_MODE_REFLINK);
    }

  /* Layered: an image with banger-init costs a new VM no data at all,
   * whatever its size; without reflink, auto picks it. */
  {
    BgImage layered = { .name = (char *) "lay", .rootfs = rootfs, .layered = TRUE };
    BgImage plain = { .name = (char *) "plain", .rootfs = rootfs, .layered = FALSE };
    g_autofree char *vm1 = g_build_filename (f->tmp, "vm1", NULL);
    g_autofree char *vm2 = g_build_filename (f->tmp, "vm2", NULL);
    g_autofree char *upper = g_build_filename (vm1, "upper.img", NULL);
    g_autofree char *reason = NULL;

    g_assert_no_errno (g_mkdir (vm1, 0700));
    g_assert_no_errno (g_mkdir (vm2, 0700));
    /* Where the filesystem reflinks, auto takes the reflink, and the
     * layered disk is checked asked for; elsewhere auto picks it. */
    g_assert_true (bg_disk_vm_make (&layered, vm1, reflinks ? BG_DISK_MODE_LAYERED : BG_DISK_MODE_AUTO,
                                        G_GUINT64_CONSTANT (8) << 30, &used, &reason, NULL, &error));
    g_assert_no_error (error);
    g_assert_cmpint (used, ==, BG_DISK_MODE_LAYERED);
    if (!reflinks)
      g_assert_nonnull (strstr (reason, "cannot reflink"));
    g_assert_no_errno (stat (upper, &st));
    g_assert_cmpint (st.st_size, ==, G_GINT64_CONSTANT (8) << 30);
    /* At most 1 MiB of the host's disk for a new VM. */
    g_assert_cmpint (st.st_blocks * 512, <=, 1 << 20);
    g_assert_cmpint (st.st_mode & 0777, ==, 0600);
    g_clear_pointer (&reason, g_free);
    /* Asked for, on an image without banger-init: refused, naming why. */
    g_assert_false (bg_disk_vm_make (&plain, vm2, BG_DISK_MODE_LAYERED, 64 << 20, &used, &reason, NULL, &error));
    g_assert_error (error, BG_ERROR, BG_ERROR_NOT_SUPPORTED);
    g_assert_nonnull (strstr (error->message, "no banger-init"));
    g_clear_error (&error);
    fd = open (d3, O_RDONLY);
    g_assert_cmpint (fd, <, 0);
  }
}

/* Every path in @dir with its type and mode, sorted, one per line. */
static void
list_tree (const char *dir,
           const char *rel,
           GPtrArray  *out)
{
  g_autofree char *path = g_build_filename (dir, rel, NULL);
  g_autoptr(GDir) d = g_dir_open (path, 0, NULL);
  const char *e;

  while (d && (e = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *child_rel = *rel ? g_build_filename (rel, e, NULL) : g_strdup (e);
      g_autofree char *child = g_build_filename (dir, child_rel, NULL);
      struct stat st;

      g_assert_no_errno (lstat (child, &st));
      if (S_ISLNK (st.st_mode))
        {
          g_autofree char *target = g_file_read_link (child, NULL);
          g_ptr_array_add (out, g_strdup_printf ("%s -> %s", child_rel, target));
        }
      else
        g_ptr_array_add (out, g_strdup_printf ("%s %s %04o", child_rel, S_ISDIR (st.st_mode) ? "dir" : "file",
                                               st.st_mode & 07777));
      if (S_ISDIR (st.st_mode))
        list_tree (dir, child_rel, out);
    }
}

static int
compare_lines (gconstpointer a,
               gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

static char *
overlay_listing (Fixture    *f,
                 const char *name,
                 gboolean    cloud_init)
{
  g_autofree char *overlay = g_build_filename (f->tmp, name, NULL);
  g_autofree char *setup_bin = g_build_filename (f->tmp, "banger-guest-setup", NULL);
  g_autoptr(GPtrArray) lines = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GError) error = NULL;
  BgBuildOptions o = { .suite = "bookworm", .cloud_init = cloud_init };

  g_assert_true (g_file_set_contents (setup_bin, "\177ELF the applier", -1, NULL));
  g_assert_no_errno (g_mkdir (overlay, 0700));
  g_assert_true (bg_build_write_overlay (overlay, &o, setup_bin, &error));
  g_assert_no_error (error);
  list_tree (overlay, "", lines);
  g_ptr_array_sort (lines, compare_lines);
  g_ptr_array_add (lines, NULL);
  return g_strjoinv ("\n", (char **) lines->pdata);
}

/* What `image build` lays over the bootstrapped system, for both ways of
 * configuring guests; copied with its modes, so the modes are part of it
 * (the CLI runs with umask 077). */
static void
test_build_overlay (Fixture *f, gconstpointer data)
{
  mode_t old = umask (077);
  g_autofree char *setup = overlay_listing (f, "setup", FALSE);
  g_autofree char *cloud = overlay_listing (f, "cloud", TRUE);
  g_autofree char *unit = NULL;
  g_autofree char *unit_path = g_build_filename (f->tmp, "setup/usr/lib/systemd/system/banger-guest-setup.service",
                                                 NULL);

  umask (old);
  g_assert_cmpstr (setup, ==,
    "etc dir 0755\n"
    "etc/fstab file 0644\n"
    "etc/hostname file 0644\n"
    "etc/ssh dir 0755\n"
    "etc/ssh/sshd_config.d dir 0755\n"
    "etc/ssh/sshd_config.d/50-banger.conf file 0644\n"
    "etc/systemd dir 0755\n"
    "etc/systemd/system dir 0755\n"
    "etc/systemd/system/sysinit.target.wants dir 0755\n"
    "etc/systemd/system/sysinit.target.wants/banger-agent.service -> "
      "/usr/lib/systemd/system/banger-agent.service\n"
    "etc/systemd/system/sysinit.target.wants/banger-guest-setup.service -> "
      "/usr/lib/systemd/system/banger-guest-setup.service\n"
    "etc/systemd/timesyncd.conf.d dir 0755\n"
    "etc/systemd/timesyncd.conf.d/banger.conf file 0644\n"
    "usr dir 0755\n"
    "usr/lib dir 0755\n"
    "usr/lib/systemd dir 0755\n"
    "usr/lib/systemd/system dir 0755\n"
    "usr/lib/systemd/system/banger-agent.service file 0644\n"
    "usr/lib/systemd/system/banger-guest-setup.service file 0644\n"
    "usr/libexec dir 0755\n"
    "usr/libexec/banger dir 0755\n"
    "usr/libexec/banger/banger-agent file 0755\n"
    "usr/libexec/banger/banger-guest-setup file 0755\n"
                   "usr/libexec/banger/banger-init file 0755");
  g_assert_cmpstr (cloud, ==,
    "etc dir 0755\n"
    "etc/cloud dir 0755\n"
    "etc/cloud/cloud.cfg.d dir 0755\n"
    "etc/cloud/cloud.cfg.d/90-banger.cfg file 0644\n"
    "etc/fstab file 0644\n"
    "etc/hostname file 0644\n"
    "etc/ssh dir 0755\n"
    "etc/ssh/sshd_config.d dir 0755\n"
    "etc/ssh/sshd_config.d/50-banger.conf file 0644\n"
    "etc/systemd dir 0755\n"
    "etc/systemd/system dir 0755\n"
    "etc/systemd/system/sysinit.target.wants dir 0755\n"
    "etc/systemd/system/sysinit.target.wants/banger-agent.service -> "
      "/usr/lib/systemd/system/banger-agent.service\n"
    "etc/systemd/timesyncd.conf.d dir 0755\n"
    "etc/systemd/timesyncd.conf.d/banger.conf file 0644\n"
    "usr dir 0755\n"
    "usr/lib dir 0755\n"
    "usr/lib/systemd dir 0755\n"
    "usr/lib/systemd/system dir 0755\n"
    "usr/lib/systemd/system/banger-agent.service file 0644\n"
    "usr/libexec dir 0755\n"
    "usr/libexec/banger dir 0755\n"
                   "usr/libexec/banger/banger-agent file 0755");

  /* The unit runs the copied applier before sshd and the network. */
  g_assert_true (g_file_get_contents (unit_path, &unit, NULL, NULL));
  g_assert_nonnull (strstr (unit, "ExecStart=/usr/libexec/banger/banger-guest-setup\n"));
  g_assert_nonnull (strstr (unit, "Before=sysinit.target network-pre.target ssh.service"));
  g_assert_nonnull (strstr (unit, "WantedBy=sysinit.target\n"));
  /* The agent is the one this build made, for both kinds of image. */
  {
    g_autofree char *agent_unit = NULL, *copied = NULL, *built = NULL;
    g_autofree char *au = g_build_filename (f->tmp, "cloud/usr/lib/systemd/system/banger-agent.service", NULL);
    g_autofree char *ab = g_build_filename (f->tmp, "cloud/usr/libexec/banger/banger-agent", NULL);
    gsize copied_len, built_len;

    g_assert_true (g_file_get_contents (au, &agent_unit, NULL, NULL));
    g_assert_nonnull (strstr (agent_unit, "ExecStart=/usr/libexec/banger/banger-agent\n"));
    g_assert_true (g_file_get_contents (ab, &copied, &copied_len, NULL));
    g_assert_true (g_file_get_contents (g_getenv ("BANGER_AGENT"), &built, &built_len, NULL));
    g_assert_cmpmem (copied, copied_len, built, built_len);
  }
  {
    g_autofree char *copied = NULL;
    g_autofree char *path = g_build_filename (f->tmp, "setup/usr/libexec/banger/banger-guest-setup", NULL);
    g_assert_true (g_file_get_contents (path, &copied, NULL, NULL));
    g_assert_cmpstr (copied, ==, "\177ELF the applier");
  }
}

static void
test_build_needs_the_applier (Fixture *f, gconstpointer data)
{
  g_autofree char *missing = g_build_filename (f->tmp, "no-such-applier", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(BgImage) image = NULL;
  BgBuildOptions o = { .suite = "bookworm", .size = 1 << 30 };

  g_setenv ("BANGER_GUEST_SETUP", missing, TRUE);
  image = bg_image_build (f->tmp, "img", &o, NULL, &error);
  g_unsetenv ("BANGER_GUEST_SETUP");
  g_assert_null (image);
  g_assert_error (error, BG_ERROR, BG_ERROR_NOT_SUPPORTED);
  if (getuid () != 0 && strstr (error->message, "subordinate uid and gid range") != NULL)
    {
      /* The host check before it refuses such a user first. */
      g_test_skip ("needs root or a subordinate uid range: without one, the host check refuses before the applier's");
      return;
    }
  g_assert_nonnull (strstr (error->message, "no-such-applier is missing"));
  g_assert_nonnull (strstr (error->message, "--cloud-init"));
  /* Refused before anything was made. */
  {
    g_autoptr(GDir) d = g_dir_open (f->tmp, 0, NULL);
    g_assert_null (g_dir_read_name (d));
  }
}

/* ---- the boot check ---- */

/* Every option a Firecracker guest needs, built in. */
static GHashTable *
full_config (void)
{
  static const char * const options[] = {
    "CONFIG_VIRTIO_MMIO", "CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES", "CONFIG_VIRTIO_BLK", "CONFIG_VIRTIO_NET",
    "CONFIG_SERIAL_8250", "CONFIG_SERIAL_8250_CONSOLE", "CONFIG_SERIO_I8042", "CONFIG_KVM_GUEST", NULL
  };
  GHashTable *config = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);

  for (guint i = 0; options[i]; i++)
    g_hash_table_insert (config, g_strdup (options[i]), g_strdup ("y"));
  return config;
}

typedef struct {
  const char *option;     /* changed from "y" in the full configuration */
  const char *value;      /* NULL: removed ("# ... is not set") */
  const char *initrd;     /* a module the initrd holds, or NULL for no initrd */
  const char *missing;    /* the one refusal expected, or NULL for none */
} BootRow;

/* Each feature missing, alone: the check names exactly it (its purpose
 * and its option); a module is enough only where it can be loaded in
 * time (the initrd's for what the root needs, any for the rest). */
static const BootRow boot_rows[] = {
  { "CONFIG_VIRTIO_MMIO", NULL, NULL,
    "virtio-mmio devices (CONFIG_VIRTIO_MMIO, built in or a module in the initrd)" },
  { "CONFIG_VIRTIO_MMIO", "m", NULL,
    "virtio-mmio devices (CONFIG_VIRTIO_MMIO, built in or a module in the initrd)" },
  { "CONFIG_VIRTIO_MMIO", "m", "virtio_mmio", NULL },
  { "CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES", NULL, NULL,
    "virtio-mmio devices named on the command line or in ACPI (CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES or CONFIG_ACPI, "
    "built in)" },
  { "CONFIG_VIRTIO_BLK", NULL, NULL,
    "virtio block devices (CONFIG_VIRTIO_BLK, built in or a module in the initrd)" },
  { "CONFIG_VIRTIO_BLK", "m", "virtio_net",
    "virtio block devices (CONFIG_VIRTIO_BLK, built in or a module in the initrd)" },
  { "CONFIG_VIRTIO_BLK", "m", "virtio_blk", NULL },
  { "CONFIG_VIRTIO_NET", NULL, NULL,
    "virtio network devices (CONFIG_VIRTIO_NET, built in or a module in the initrd)" },
  { "CONFIG_VIRTIO_NET", "m", "virtio_net", NULL },
  { "CONFIG_SERIAL_8250", NULL, NULL, "the 8250 serial port (CONFIG_SERIAL_8250, built in)" },
  { "CONFIG_SERIAL_8250", "m", "8250", "the 8250 serial port (CONFIG_SERIAL_8250, built in)" },
  { "CONFIG_SERIAL_8250_CONSOLE", NULL, NULL, "the serial console (CONFIG_SERIAL_8250_CONSOLE, built in)" },
  { "CONFIG_SERIO_I8042", NULL, NULL,
    "the i8042 keyboard controller (Ctrl-Alt-Del) (CONFIG_SERIO_I8042, built in or a module)" },
  { "CONFIG_SERIO_I8042", "m", NULL, NULL },
  { "CONFIG_KVM_GUEST", NULL, NULL, "KVM guest support (CONFIG_KVM_GUEST, built in)" },
  { "CONFIG_KVM_GUEST", "m", "kvm_guest", "KVM guest support (CONFIG_KVM_GUEST, built in)" },
};

static void
test_boot_check_names_each_missing_feature (void)
{
  g_autoptr(GHashTable) full = full_config ();
  g_auto(GStrv) none = bg_boot_check_missing (full, NULL);

  g_assert_cmpuint (g_strv_length (none), ==, 0);
  for (guint i = 0; i < G_N_ELEMENTS (boot_rows); i++)
    {
      const BootRow *row = &boot_rows[i];
      g_autoptr(GHashTable) config = full_config ();
      g_autoptr(GHashTable) initrd = NULL;
      g_auto(GStrv) missing = NULL;

      if (row->value)
        g_hash_table_replace (config, g_strdup (row->option), g_strdup (row->value));
      else
        g_hash_table_remove (config, row->option);
      if (row->initrd)
        {
          initrd = g_hash_table_new (g_str_hash, g_str_equal);
          g_hash_table_add (initrd, (char *) row->initrd);
        }
      missing = bg_boot_check_missing (config, initrd);
      g_test_message ("%s=%s, initrd %s: %s", row->option, row->value ? row->value : "(unset)",
                      row->initrd ? row->initrd : "(none)", missing[0] ? missing[0] : "nothing missing");
      if (row->missing == NULL)
        g_assert_cmpuint (g_strv_length (missing), ==, 0);
      else
        {
          g_assert_cmpuint (g_strv_length (missing), ==, 1);
          g_assert_cmpstr (missing[0], ==, row->missing);
        }
    }

  /* ACPI describes the devices as well as the command line does. */
  {
    g_autoptr(GHashTable) config = full_config ();
    g_auto(GStrv) missing = NULL;

    g_hash_table_remove (config, "CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES");
    g_hash_table_insert (config, g_strdup ("CONFIG_ACPI"), g_strdup ("y"));
    missing = bg_boot_check_missing (config, NULL);
    g_assert_cmpuint (g_strv_length (missing), ==, 0);
  }
  /* All of them at once: each named, in order. */
  {
    g_autoptr(GHashTable) empty = g_hash_table_new (g_str_hash, g_str_equal);
    g_auto(GStrv) missing = bg_boot_check_missing (empty, NULL);

    g_assert_cmpuint (g_strv_length (missing), ==, 8);
    g_assert_true (g_str_has_prefix (missing[0], "virtio-mmio devices (CONFIG_VIRTIO_MMIO,"));
    g_assert_true (g_str_has_prefix (missing[7], "KVM guest support"));
  }
  /* Layered VMs: overlayfs built in or a module (loaded from the root). */
  {
    g_autoptr(GHashTable) config = full_config ();

    g_assert_false (bg_boot_check_overlay (config));
    g_hash_table_insert (config, g_strdup ("CONFIG_OVERLAY_FS"), g_strdup ("m"));
    g_assert_true (bg_boot_check_overlay (config));
    g_hash_table_replace (config, g_strdup ("CONFIG_OVERLAY_FS"), g_strdup ("y"));
    g_assert_true (bg_boot_check_overlay (config));
  }
}

/* A kernel configuration as a kernel's .config has it. */
static void
test_boot_check_parses_a_kernel_config (void)
{
  g_autoptr(GHashTable) config = bg_kernel_parse_config ("#\n# Automatically generated file; DO NOT EDIT.\n"
                                                   "CONFIG_VIRTIO_BLK=y\n"
                                                   "# CONFIG_KVM_GUEST is not set\n"
                                                   "CONFIG_VIRTIO_NET=m\n"
                                                   "CONFIG_CMDLINE=\"console=ttyS0\"\n"
                                                   "NOT_CONFIG_X=y\n");

  g_assert_cmpuint (g_hash_table_size (config), ==, 3);
  g_assert_cmpstr (g_hash_table_lookup (config, "CONFIG_VIRTIO_BLK"), ==, "y");
  g_assert_cmpstr (g_hash_table_lookup (config, "CONFIG_VIRTIO_NET"), ==, "m");
  g_assert_cmpstr (g_hash_table_lookup (config, "CONFIG_CMDLINE"), ==, "\"console=ttyS0\"");
  g_assert_false (g_hash_table_contains (config, "CONFIG_KVM_GUEST"));
}

/* The release and the IKCONFIG a vmlinux carries. */
static void
test_boot_check_reads_the_kernels_own_config (void)
{
  static const char text[] = "CONFIG_VIRTIO_BLK=y\nCONFIG_KVM_GUEST=y\n";
  g_autoptr(GBytes) plain = g_bytes_new_static (text, sizeof text - 1);
  g_autoptr(GBytes) gz = bg_test_compress (plain, "gzip");
  g_autoptr(GByteArray) kernel = g_byte_array_new ();
  g_autofree char *release = NULL, *config = NULL;

  g_byte_array_append (kernel, (const guint8 *) "\x7f" "ELF....Linux version 6.1.0-13-cloud-amd64 (debian) #1",
                       53);
  g_byte_array_append (kernel, (const guint8 *) "IKCFG_ST", 8);
  g_byte_array_append (kernel, g_bytes_get_data (gz, NULL), g_bytes_get_size (gz));
  g_byte_array_append (kernel, (const guint8 *) "IKCFG_ED", 8);

  release = bg_kernel_release (kernel->data, kernel->len);
  g_assert_cmpstr (release, ==, "6.1.0-13-cloud-amd64");
  config = bg_kernel_embedded_config (kernel->data, kernel->len);
  g_assert_cmpstr (config, ==, text);
  /* Without the markers there is nothing to read. */
  g_assert_null (bg_kernel_embedded_config (kernel->data, kernel->len - 8));
  g_assert_null (bg_kernel_release ((const guint8 *) "no version here", 15));
}

/* One newc cpio entry (a file of @len bytes). */
static void
cpio_add (GByteArray *a,
          const char *name,
          const char *data,
          gsize       len)
{
  g_autofree char *head = g_strdup_printf ("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x", 1u,
                                           0100644u, 0u, 0u, 1u, 0u, (guint) len, 0u, 0u, 0u, 0u,
                                           (guint) strlen (name) + 1, 0u);
  static const guint8 zeros[4] = { 0 };

  g_byte_array_append (a, (const guint8 *) head, 110);
  g_byte_array_append (a, (const guint8 *) name, strlen (name) + 1);
  g_byte_array_append (a, zeros, (4 - a->len % 4) % 4);
  g_byte_array_append (a, (const guint8 *) data, len);
  g_byte_array_append (a, zeros, (4 - a->len % 4) % 4);
}

/* An initrd as Debian makes one: a plain archive (microcode), then a
 * compressed one with the modules, .ko, .ko.xz and dashes in names. */
static void
test_boot_check_reads_an_initrds_modules (void)
{
  g_autoptr(GByteArray) early = g_byte_array_new ();
  g_autoptr(GByteArray) main_archive = g_byte_array_new ();
  g_autoptr(GBytes) main_bytes = NULL, main_gz = NULL;
  g_autoptr(GByteArray) initrd = g_byte_array_new ();
  g_autoptr(GHashTable) modules = NULL;
  g_autoptr(GError) error = NULL;

  cpio_add (early, "kernel/x86/microcode/GenuineIntel.bin", "ucode", 5);
  cpio_add (early, "TRAILER!!!", "", 0);
  cpio_add (main_archive, "usr/lib/modules/6.1.0/kernel/drivers/block/virtio_blk.ko", "blk", 3);
  cpio_add (main_archive, "usr/lib/modules/6.1.0/kernel/drivers/net/virtio-net.ko.xz", "net", 3);
  cpio_add (main_archive, "usr/lib/modules/6.1.0/kernel/drivers/virtio/virtio_mmio.kobj", "no", 2);
  cpio_add (main_archive, "etc/modules", "virtio_mmio\n", 12);
  cpio_add (main_archive, "TRAILER!!!", "", 0);
  main_bytes = g_byte_array_free_to_bytes (g_steal_pointer (&main_archive));
  main_gz = bg_test_compress (main_bytes, "gzip");
  g_byte_array_append (initrd, early->data, early->len);
  g_byte_array_append (initrd, (const guint8 *) "\0\0\0\0\0\0\0\0", 8);
  g_byte_array_append (initrd, g_bytes_get_data (main_gz, NULL), g_bytes_get_size (main_gz));

  modules = bg_initrd_modules (initrd->data, initrd->len, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_hash_table_size (modules), ==, 2);
  g_assert_true (g_hash_table_contains (modules, "virtio_blk"));
  g_assert_true (g_hash_table_contains (modules, "virtio_net"));
  g_assert_false (g_hash_table_contains (modules, "virtio_mmio"));
}

static char *
sha256_of_path (const char *path)
{
  g_autofree char *data = NULL;
  gsize len;

  g_assert_true (g_file_get_contents (path, &data, &len, NULL));
  return g_compute_checksum_for_data (G_CHECKSUM_SHA256, (guint8 *) data, len);
}

/* debugfs -R @request @rootfs's stdout (the test's own, constant
 * requests). */
static char *
debugfs_out (const char *rootfs, const char *request)
{
  g_autofree char *debugfs = bg_program_find ("debugfs");
  const char *argv[] = { debugfs, "-R", request, rootfs, NULL };
  g_autoptr(GError) error = NULL;
  char *out = NULL;
  int status;

  g_assert_nonnull (debugfs);
  bg_test_spawn_sync (NULL, argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL, &out, NULL, &status, &error);
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  return out;
}

static void
assert_fsck_clean (const char *rootfs)
{
  g_autofree char *e2fsck = bg_program_find ("e2fsck");
  const char *argv[] = { e2fsck, "-f", "-n", rootfs, NULL };
  g_autoptr(GError) error = NULL;
  int status;

  bg_test_spawn_sync (NULL, argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL,
                      &status, &error);
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
}

/* The guest program @name in @rootfs: root's, 0755, @host's bytes. */
static void
assert_guest_program (Fixture *f, const char *rootfs, const char *name, const char *host)
{
  g_autofree char *request = g_strdup_printf ("stat /usr/libexec/banger/%s", name);
  g_autofree char *out = debugfs_out (rootfs, request);
  g_autofree char *dumped = g_build_filename (f->tmp, "dumped", NULL);
  g_autofree char *dump = g_strdup_printf ("dump /usr/libexec/banger/%s %s", name, dumped);
  g_autofree char *ignored = NULL, *want = sha256_of_path (host), *got = NULL;
  BgDebugfsStat st;

  g_assert_true (bg_debugfs_parse_stat (out, &st));
  g_assert_cmpstr (st.type, ==, "regular");
  g_assert_cmpuint (st.mode, ==, 0755);
  g_assert_cmpuint (st.uid, ==, 0);
  g_assert_cmpuint (st.gid, ==, 0);
  ignored = debugfs_out (rootfs, dump);
  got = sha256_of_path (dumped);
  g_assert_cmpstr (got, ==, want);
  g_unlink (dumped);
}

/* A plain ext4 (no banger-init, no mke2fs) imports layered: banger's
 * guest programs written into banger's copy, which stays a sound
 * filesystem, and the user's file unchanged, byte for byte. */
static void
test_plain_ext4_imports_layered (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) elf = fake_vmlinux (EM_X86_64);
  g_autofree char *kernel = write_file (f, "vmlinux", g_bytes_get_data (elf, NULL), g_bytes_get_size (elf));
  g_autofree char *rootfs = make_ext4 (f, "byo.ext4", "16M");
  g_autofree char *images = g_build_filename (f->tmp, "images", NULL);
  g_autofree char *before = sha256_of_path (rootfs), *after = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(BgImage) image = NULL, back = NULL;
  struct stat st0, st1;

  g_assert_no_errno (stat (rootfs, &st0));
  image = bg_image_import (images, "byo", &(BgImageFiles) { kernel, rootfs, NULL, NULL, NULL }, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (image->layered);
  g_assert_null (image->copy_reason);
  g_assert_true (image->format_upper);
  g_assert_true (image->sshd_known);
  g_assert_false (image->has_sshd);
  /* What image show prints is the checksum of the file the user gave. */
  g_assert_cmpstr (image->rootfs_sha256, ==, before);
  assert_guest_program (f, image->rootfs, "banger-init", g_getenv ("BANGER_INIT"));
  assert_guest_program (f, image->rootfs, "banger-agent", g_getenv ("BANGER_AGENT"));
  assert_fsck_clean (image->rootfs);
  /* No init, no workload, no cloud-init: nothing applies the drive. */
  g_assert_cmpstr (image->guest_setup, ==, "none");

  after = sha256_of_path (rootfs);
  g_assert_cmpstr (after, ==, before);
  g_assert_no_errno (stat (rootfs, &st1));
  g_assert_cmpint (st1.st_mtim.tv_sec, ==, st0.st_mtim.tv_sec);
  g_assert_cmpint (st1.st_mtim.tv_nsec, ==, st0.st_mtim.tv_nsec);
  back = bg_image_load (images, "byo", &error);
  g_assert_no_error (error);
  g_assert_true (back->layered);
  g_assert_true (back->format_upper);
  g_assert_true (back->sshd_known);
  g_assert_false (back->has_sshd);
}

/* A Debian-shaped root (merged /usr, /sbin/init the absolute link to
 * systemd), with cloud-init's program too when @cloud_init. */
static char *
make_systemd_ext4 (Fixture *f, const char *name, gboolean cloud_init)
{
  g_autofree char *src = g_build_filename (f->tmp, name, NULL);
  g_autofree char *image = g_strconcat (name, ".ext4", NULL);
  char *path = g_build_filename (f->tmp, image, NULL);
  const char *argv[] = { "mke2fs", "-q", "-F", "-t", "ext4", "-d", src, path, "16M", NULL };
  g_autoptr(GError) error = NULL;
  int status;
  static const struct { const char *path; const char *link; } entries[] = {
    { "usr/lib/systemd/systemd", NULL },
    { "usr/bin/cloud-init", NULL },
    { "usr/sbin/init", "/lib/systemd/systemd" },
    { "lib", "usr/lib" },
    { "sbin", "usr/sbin" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (entries); i++)
    {
      g_autofree char *p = g_build_filename (src, entries[i].path, NULL);
      g_autofree char *dir = g_path_get_dirname (p);

      if (!cloud_init && strstr (entries[i].path, "cloud-init"))
        continue;
      g_assert_no_errno (g_mkdir_with_parents (dir, 0755));
      if (entries[i].link)
        g_assert_no_errno (symlink (entries[i].link, p));
      else
        {
          g_assert_true (g_file_set_contents (p, "#!/bin/sh\n", -1, NULL));
          g_assert_no_errno (chmod (p, 0755));
        }
    }
  bg_test_spawn_sync (NULL, argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, &status, &error);
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  return path;
}

/* A plain ext4 that boots systemd gets banger-guest-setup and its unit,
 * enabled, in banger's copy: nothing else there would apply the config
 * drive. One with cloud-init is left to cloud-init. */
static void
test_systemd_ext4_gets_guest_setup (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) elf = fake_vmlinux (EM_X86_64);
  g_autofree char *kernel = write_file (f, "vmlinux", g_bytes_get_data (elf, NULL), g_bytes_get_size (elf));
  g_autofree char *rootfs = make_systemd_ext4 (f, "sd", FALSE);
  g_autofree char *cloud = make_systemd_ext4 (f, "ci", TRUE);
  g_autofree char *images = g_build_filename (f->tmp, "images", NULL);
  g_autofree char *before = sha256_of_path (rootfs), *after = NULL, *unit = NULL, *wants = NULL;
  g_autofree char *ci_setup = NULL, *ci_unit = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(BgImage) image = NULL, ci = NULL;
  BgDebugfsStat st;

  image = bg_image_import (images, "sd", &(BgImageFiles) { kernel, rootfs, NULL, NULL, NULL }, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (image->layered);
  assert_guest_program (f, image->rootfs, "banger-init", g_getenv ("BANGER_INIT"));
  assert_guest_program (f, image->rootfs, "banger-guest-setup", g_getenv ("BANGER_GUEST_SETUP"));
  g_assert_cmpstr (image->guest_setup, ==, "banger-guest-setup");
  unit = debugfs_out (image->rootfs, "cat " BG_GUEST_SETUP_UNIT);
  g_assert_cmpstr (unit, ==, bg_guest_programs_setup_unit);
  g_clear_pointer (&unit, g_free);
  unit = debugfs_out (image->rootfs, "stat " BG_GUEST_SETUP_UNIT);
  g_assert_true (bg_debugfs_parse_stat (unit, &st));
  g_assert_cmpuint (st.mode, ==, 0644);
  g_assert_cmpuint (st.uid, ==, 0);
  wants = debugfs_out (image->rootfs, "stat " BG_GUEST_SETUP_WANTS);
  g_assert_true (bg_debugfs_parse_stat (wants, &st));
  g_assert_cmpstr (st.type, ==, "symlink");
  g_assert_nonnull (strstr (wants, "\"" BG_GUEST_SETUP_UNIT "\""));
  assert_fsck_clean (image->rootfs);
  after = sha256_of_path (rootfs);
  g_assert_cmpstr (after, ==, before);

  ci = bg_image_import (images, "ci", &(BgImageFiles) { kernel, cloud, NULL, NULL, NULL }, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (ci->layered);
  assert_guest_program (f, ci->rootfs, "banger-init", g_getenv ("BANGER_INIT"));
  g_assert_cmpstr (ci->guest_setup, ==, "cloud-init");
  ci_setup = debugfs_out (ci->rootfs, "stat /usr/libexec/banger/banger-guest-setup");
  ci_unit = debugfs_out (ci->rootfs, "stat " BG_GUEST_SETUP_UNIT);
  g_assert_false (bg_debugfs_parse_stat (ci_setup, &st));
  g_assert_false (bg_debugfs_parse_stat (ci_unit, &st));
}

/* debugfs parses its commands, so host paths never go into them: a
 * banger-init at a path with spaces, quotes and a newline carrying a
 * command is added all the same, and the command never runs. */
static void
test_odd_program_paths_inject_nothing (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) elf = fake_vmlinux (EM_X86_64);
  g_autofree char *kernel = write_file (f, "vmlinux", g_bytes_get_data (elf, NULL), g_bytes_get_size (elf));
  g_autofree char *rootfs = make_ext4 (f, "byo.ext4", "16M");
  g_autofree char *images = g_build_filename (f->tmp, "images", NULL);
  g_autofree char *odd_dir = g_build_filename (f->tmp, "sp ace\" q\nmkdir /injected\n#", NULL);
  g_autofree char *odd = g_build_filename (odd_dir, "banger init\"", NULL);
  g_autofree char *saved = g_strdup (g_getenv ("BANGER_INIT"));
  g_autofree char *bin = NULL, *out = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(BgImage) image = NULL;
  gsize len;

  g_assert_true (g_file_get_contents (saved, &bin, &len, NULL));
  g_assert_no_errno (g_mkdir_with_parents (odd_dir, 0700));
  g_assert_true (g_file_set_contents_full (odd, bin, len, G_FILE_SET_CONTENTS_NONE, 0755, NULL));
  g_setenv ("BANGER_INIT", odd, TRUE);
  image = bg_image_import (images, "odd", &(BgImageFiles) { kernel, rootfs, NULL, NULL, NULL }, NULL, &error);
  g_setenv ("BANGER_INIT", saved, TRUE);
  g_assert_no_error (error);
  g_assert_true (image->layered);
  assert_guest_program (f, image->rootfs, "banger-init", saved);
  out = debugfs_out (image->rootfs, "stat /injected");
  g_assert_cmpstr (out, ==, "");
}

/* Where banger-init cannot be added, the image is copy, says why (and
 * keeps saying it), and banger's copy holds nothing half-written. */
static void
test_copy_when_programs_cannot_be_added (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) elf = fake_vmlinux (EM_X86_64);
  g_autofree char *kernel = write_file (f, "vmlinux", g_bytes_get_data (elf, NULL), g_bytes_get_size (elf));
  g_autofree char *rootfs = make_ext4 (f, "byo.ext4", "16M");
  g_autofree char *full = g_build_filename (f->tmp, "full.ext4", NULL);
  g_autofree char *filler = g_build_filename (f->tmp, "filler", NULL);
  g_autofree char *images = g_build_filename (f->tmp, "images", NULL);
  g_autofree char *saved = g_strdup (g_getenv ("BANGER_INIT"));
  g_autofree char *mke2fs = bg_program_find ("mke2fs");
  g_autofree char *header = NULL, *write = NULL, *out = NULL, *before = NULL, *after = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(BgImage) plain = NULL, tight = NULL;
  const char *free_line;
  guint64 free_blocks;
  int status;

  /* banger-init not installed. */
  g_setenv ("BANGER_INIT", "/nonexistent/banger-init", TRUE);
  plain = bg_image_import (images, "plain", &(BgImageFiles) { kernel, rootfs, NULL, NULL, NULL }, NULL, &error);
  g_setenv ("BANGER_INIT", saved, TRUE);
  g_assert_no_error (error);
  g_assert_false (plain->layered);
  g_assert_nonnull (strstr (plain->copy_reason, "is not installed"));
  g_clear_pointer (&plain, bg_image_free);
  plain = bg_image_load (images, "plain", &error);
  g_assert_no_error (error);
  g_assert_false (plain->layered);
  g_assert_nonnull (strstr (plain->copy_reason, "is not installed"));

  /* A filesystem with no room left: a filler file takes all but four
   * blocks (non-zero bytes, which debugfs cannot leave as holes). */
  {
    const char *argv[] = { mke2fs, "-q", "-F", "-t", "ext4", "-O", "^has_journal", "-b", "4096", full, "8M", NULL };
    bg_test_spawn_sync (NULL, argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, &status, &error);
    g_assert_no_error (error);
    g_assert_true (g_spawn_check_wait_status (status, NULL));
  }
  header = debugfs_out (full, "stats");
  free_line = strstr (header, "Free blocks:");
  g_assert_nonnull (free_line);
  free_blocks = g_ascii_strtoull (free_line + strlen ("Free blocks:"), NULL, 10);
  g_assert_cmpuint (free_blocks, >, 8);
  {
    gsize n = (free_blocks - 4) * 4096;
    g_autofree char *bytes = g_malloc (n);

    memset (bytes, 'x', n);
    g_assert_true (g_file_set_contents (filler, bytes, n, NULL));
  }
  {
    g_autofree char *debugfs = bg_program_find ("debugfs");
    g_autofree char *request = g_strdup_printf ("write %s filler", filler);
    const char *argv[] = { debugfs, "-w", "-R", request, full, NULL };
    bg_test_spawn_sync (NULL, argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL,
                        &status, &error);
    g_assert_no_error (error);
    g_assert_true (g_spawn_check_wait_status (status, NULL));
  }
  out = debugfs_out (full, "stat /filler");
  g_assert_nonnull (strstr (out, "Type: regular"));
  g_clear_pointer (&out, g_free);
  before = sha256_of_path (full);
  tight = bg_image_import (images, "tight", &(BgImageFiles) { kernel, full, NULL, NULL, NULL }, NULL, &error);
  g_assert_no_error (error);
  g_assert_false (tight->layered);
  g_assert_nonnull (strstr (tight->copy_reason, "could not be written into banger's copy"));
  out = debugfs_out (tight->rootfs, "stat /usr/libexec/banger/banger-init");
  g_assert_cmpstr (out, ==, "");
  g_clear_pointer (&out, g_free);
  out = debugfs_out (tight->rootfs, "stat /usr/libexec/banger/banger-agent");
  g_assert_cmpstr (out, ==, "");
  assert_fsck_clean (tight->rootfs);
  after = sha256_of_path (full);
  g_assert_cmpstr (after, ==, before);
}

/* The one parser of debugfs's output, and the commands, which take
 * nothing but plain names. */
static void
test_debugfs_stat_and_script (void)
{
  static const char with_project[] =
    "Inode: 16   Type: regular    Mode:  0755   Flags: 0x80000\n"
    "Generation: 0    Version: 0x00000000:00000000\n"
    "User:     0   Group:     0   Project:     0   Size: 35664\n"
    "File ACL: 0\n"
    "Fragment:  Address: 0    Number: 0    Size: 0\n";
  static const char without_project[] =
    "Inode: 2   Type: directory    Mode:  1777   Flags: 0x0\n"
    "User:  1000   Group:   100   Size: 4096\n";
  static const char * const bad[] = {
    "", "File not found by ext2_lookup", "Inode: 16   Type: regular\nUser: 0 Group: 0 Size: 1\n",
    "Inode: 16   Type: regular    Mode:  0755\n", "Inode: 16   Type: regular    Mode:  170755\nUser: 0 Group: 0 Size: 1\n",
  };
  static const char * const bad_names[] = { "", ".hidden", "-f", "a b", "a\"b", "a/b", "#c", "a\nb", "a;b", "é" };
  BgDebugfsStat st;
  g_autofree char *script = NULL;

  g_assert_true (bg_debugfs_parse_stat (with_project, &st));
  g_assert_cmpstr (st.type, ==, "regular");
  g_assert_cmpuint (st.mode, ==, 0755);
  g_assert_cmpuint (st.uid, ==, 0);
  g_assert_cmpuint (st.gid, ==, 0);
  g_assert_cmpuint (st.size, ==, 35664);
  g_assert_true (bg_debugfs_parse_stat (without_project, &st));
  g_assert_cmpstr (st.type, ==, "directory");
  g_assert_cmpuint (st.mode, ==, 01777);
  g_assert_cmpuint (st.uid, ==, 1000);
  g_assert_cmpuint (st.gid, ==, 100);
  g_assert_cmpuint (st.size, ==, 4096);
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    g_assert_false (bg_debugfs_parse_stat (bad[i], &st));
  g_assert_false (bg_debugfs_parse_stat (NULL, &st));

  script = bg_guest_insert_script ((const char * const[]) { "banger-init", "banger-agent", NULL });
  g_assert_cmpstr (script, ==,
                   "cd /usr/libexec/banger\n"
                   "write /proc/self/fd/3 banger-init\n"
                   "sif banger-init mode 0100755\nsif banger-init uid 0\nsif banger-init gid 0\n"
                   "write /proc/self/fd/4 banger-agent\n"
                   "sif banger-agent mode 0100755\nsif banger-agent uid 0\nsif banger-agent gid 0\n");
  for (guint i = 0; i < G_N_ELEMENTS (bad_names); i++)
    g_assert_null (bg_guest_insert_script ((const char * const[]) { "banger-init", bad_names[i], NULL }));
}

/* Runs @argv (argv[0] found as banger does) and returns its stdout;
 * fails the test unless it exits 0. */
static char *
run_tool (const char * const *argv)
{
  g_autofree char *program = bg_program_find (argv[0]);
  g_autofree const char **resolved = g_memdup2 (argv, (g_strv_length ((char **) argv) + 1) * sizeof (char *));
  g_autofree char *err = NULL;
  char *out = NULL;
  int status;

  g_assert_nonnull (program);
  resolved[0] = program;
  g_assert_true (g_spawn_sync (NULL, (char **) resolved, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status,
                               NULL));
  if (!g_spawn_check_wait_status (status, NULL))
    g_error ("%s failed: %s%s", argv[0], out, err);
  return out;
}

/* The templates in the fixture's cache. */
static GPtrArray *
upper_templates (Fixture *f)
{
  g_autofree char *dir = g_build_filename (f->tmp, "cache", "banger", "upper", NULL);
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  const char *name;

  while (d && (name = g_dir_read_name (d)) != NULL)
    g_ptr_array_add (names, g_strdup (name));
  return names;
}

/* @dir's upper.img, made for an image with no mke2fs, of @size: a whole
 * ext4 (e2fsck finds nothing), banger-upper, of that size, and sparse. */
static void
assert_upper_made (Fixture *f, const char *name, guint64 size)
{
  BgImage oci = { .name = (char *) "oci", .rootfs = (char *) "/nonexistent", .layered = TRUE,
                  .format_upper = TRUE };
  g_autofree char *vm = g_build_filename (f->tmp, name, NULL);
  g_autofree char *upper = g_build_filename (vm, "upper.img", NULL);
  g_autofree char *reason = NULL, *fsck = NULL, *header = NULL;
  g_autofree char *label = NULL, *blocks = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) lines = NULL;
  guint64 count = 0, block_size = 0;
  BgDiskMode used;
  struct stat st;

  g_assert_no_errno (g_mkdir (vm, 0700));
  g_assert_true (bg_disk_vm_make (&oci, vm, BG_DISK_MODE_LAYERED, size, &used, &reason, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (used, ==, BG_DISK_MODE_LAYERED);
  fsck = run_tool ((const char * const[]) { "e2fsck", "-fn", upper, NULL });
  header = run_tool ((const char * const[]) { "dumpe2fs", "-h", upper, NULL });
  lines = g_strsplit (header, "\n", -1);
  for (guint i = 0; lines[i]; i++)
    if (g_str_has_prefix (lines[i], "Filesystem volume name:"))
      label = g_strstrip (g_strdup (lines[i] + strlen ("Filesystem volume name:")));
    else if (g_str_has_prefix (lines[i], "Block count:"))
      count = g_ascii_strtoull (lines[i] + strlen ("Block count:"), NULL, 10);
    else if (g_str_has_prefix (lines[i], "Block size:"))
      block_size = g_ascii_strtoull (lines[i] + strlen ("Block size:"), NULL, 10);
  g_assert_cmpstr (label, ==, "banger-upper");
  g_assert_cmpuint (count * block_size, ==, size);
  g_assert_no_errno (stat (upper, &st));
  g_assert_cmpuint (st.st_size, ==, size);
  g_assert_cmpint (st.st_mode & 0777, ==, 0600);
  /* Only the template's data was copied: at most 1 MiB of the host's
   * disk, whatever the size. */
  g_assert_cmpint (st.st_blocks * 512, <=, 1 << 20);
}

/* An image with no mke2fs: each layered VM's disk is a copy of a
 * template made once per size; a half-made or wrong template is not
 * copied, and a full disk leaves nothing behind. */
static void
test_upper_from_template (Fixture *f, gconstpointer data)
{
  const guint64 gib = G_GUINT64_CONSTANT (1) << 30;
  g_autofree char *dir = g_build_filename (f->tmp, "cache", "banger", "upper", NULL);
  g_autofree char *first = NULL, *digest = NULL, *leftover = NULL, *wrong = NULL;
  g_autoptr(GPtrArray) names = NULL;
  struct stat before, after;

  assert_upper_made (f, "vm1", 8 * gib);
  names = upper_templates (f);
  g_assert_cmpuint (names->len, ==, 1);
  first = g_build_filename (dir, names->pdata[0], NULL);
  g_assert_no_errno (stat (first, &before));
  /* The same size again: the same template, not made anew. */
  assert_upper_made (f, "vm2", 8 * gib);
  g_clear_pointer (&names, g_ptr_array_unref);
  names = upper_templates (f);
  g_assert_cmpuint (names->len, ==, 1);
  g_assert_no_errno (stat (first, &after));
  g_assert_cmpuint (before.st_ino, ==, after.st_ino);
  g_assert_cmpint (before.st_mtim.tv_sec, ==, after.st_mtim.tv_sec);
  g_assert_cmpint (before.st_mtim.tv_nsec, ==, after.st_mtim.tv_nsec);
  /* Another size: a template of its own. */
  assert_upper_made (f, "vm3", gib);
  g_clear_pointer (&names, g_ptr_array_unref);
  names = upper_templates (f);
  g_assert_cmpuint (names->len, ==, 2);

  /* A crash mid-way leaves a temporary file (here a blank one): it is
   * not taken for the 2 GiB template, and it is left alone. */
  g_assert_nonnull (strrchr (first, '-'));
  digest = g_strdup (strrchr (first, '-') + 1);
  g_assert_true (g_str_has_suffix (digest, ".ext4"));
  leftover = g_strdup_printf ("%s/%" G_GUINT64_FORMAT "-%s.tmp-abc123", dir, 2 * gib, digest);
  g_assert_true (g_file_set_contents (leftover, "", 0, NULL));
  g_assert_no_errno (truncate (leftover, 2 * gib));
  assert_upper_made (f, "vm4", 2 * gib);
  g_assert_true (g_file_test (leftover, G_FILE_TEST_EXISTS));
  /* Something of the template's name but not its size (cut short):
   * made anew. */
  wrong = g_strdup_printf ("%s/%" G_GUINT64_FORMAT "-%s", dir, 3 * gib, digest);
  g_assert_true (g_file_set_contents (wrong, "short", 5, NULL));
  assert_upper_made (f, "vm5", 3 * gib);
  g_assert_no_errno (stat (wrong, &after));
  g_assert_cmpuint (after.st_size, ==, 3 * gib);

  /* No room for the template (a cache on a 64 KiB tmpfs): mke2fs's
   * error with the layered disk's advice, and neither a template nor a
   * temporary file nor a VM disk left. The tmpfs is unmounted before
   * anything is asserted, so a failure leaves no mount behind. */
  if (geteuid () != 0)
    {
      g_test_message ("skipping the full-cache case: mounting a small tmpfs needs root");
      return;
    }
  {
    g_autofree char *full = g_build_filename (f->tmp, "full-cache", NULL);
    g_autofree char *vm = g_build_filename (f->tmp, "vm6", NULL);
    g_autofree char *upper = g_build_filename (vm, "upper.img", NULL);
    g_autofree char *full_upper = g_build_filename (full, "banger", "upper", NULL);
    g_autofree char *reason = NULL;
    g_autoptr(GError) local = NULL;
    g_autoptr(GDir) d = NULL;
    BgImage oci = { .name = (char *) "oci", .rootfs = (char *) "/nonexistent", .layered = TRUE,
                    .format_upper = TRUE };
    gboolean made, left;
    guint entries = 0;
    BgDiskMode used;

    g_assert_no_errno (g_mkdir (full, 0700));
    g_assert_no_errno (g_mkdir (vm, 0700));
    g_setenv ("XDG_CACHE_HOME", full, TRUE);
    g_assert_no_errno (mount ("tmpfs", full, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0700"));
    made = bg_disk_vm_make (&oci, vm, BG_DISK_MODE_LAYERED, 8 * gib, &used, &reason, NULL, &local);
    left = g_file_test (upper, G_FILE_TEST_EXISTS);
    d = g_dir_open (full_upper, 0, NULL);
    while (d && g_dir_read_name (d) != NULL)
      entries++;
    g_clear_pointer (&d, g_dir_close);
    g_assert_no_errno (umount2 (full, MNT_DETACH));
    assert_no_room (made, local, left);
    g_assert_cmpuint (entries, ==, 0);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, fn) g_test_add (path, Fixture, NULL, setup, fn, teardown)
  ADD ("/image/layering-and-copy-reasons", test_layering_and_copy_reasons);
  ADD ("/image/plain-ext4-imports-layered", test_plain_ext4_imports_layered);
  ADD ("/image/upper-from-template", test_upper_from_template);
  ADD ("/image/systemd-ext4-gets-guest-setup", test_systemd_ext4_gets_guest_setup);
  ADD ("/image/odd-program-paths-inject-nothing", test_odd_program_paths_inject_nothing);
  ADD ("/image/copy-when-programs-cannot-be-added", test_copy_when_programs_cannot_be_added);
  g_test_add_func ("/image/debugfs-stat-and-script", test_debugfs_stat_and_script);
  ADD ("/image/build-overlay", test_build_overlay);
  ADD ("/image/build-needs-the-applier", test_build_needs_the_applier);
  ADD ("/image/kernel-format-detection", test_kernel_format_detection);
  ADD ("/image/bzimage-payloads-decompress-to-vmlinux", test_bzimage_payloads_decompress_to_vmlinux);
  ADD ("/image/rootfs-must-be-ext4", test_rootfs_must_be_ext4);
  ADD ("/image/import-round-trip", test_import_round_trip);
  g_test_add ("/image/import-progress-in-a-log", Fixture, &progress_in_a_log, setup, test_import_progress, teardown);
  g_test_add ("/image/import-progress-on-a-terminal", Fixture, &progress_on_a_terminal, setup, test_import_progress,
              teardown);
  ADD ("/image/interrupted-import-leaves-nothing", test_interrupted_import_leaves_nothing);
  ADD ("/image/bad-inputs-name-the-field", test_bad_inputs_name_the_field);
  ADD ("/disk/sparse-copy-keeps-holes", test_sparse_copy_keeps_holes);
  ADD ("/disk/sparse-copy-stops-when-cancelled", test_sparse_copy_stops_when_cancelled);
  ADD ("/disk/strategy-selection", test_strategy_selection);
  g_test_add_func ("/boot-check/names-each-missing-feature", test_boot_check_names_each_missing_feature);
  g_test_add_func ("/boot-check/parses-a-kernel-config", test_boot_check_parses_a_kernel_config);
  g_test_add_func ("/boot-check/reads-the-kernels-own-config", test_boot_check_reads_the_kernels_own_config);
  g_test_add_func ("/boot-check/reads-an-initrds-modules", test_boot_check_reads_an_initrds_modules);
  return g_test_run ();
}
