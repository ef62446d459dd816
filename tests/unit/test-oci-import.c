/* test-oci-import: `banger image import --oci` of OCI image layouts and
 * of docker-save and OCI archives, all written by the test: the tree,
 * banger's additions (guest programs, the default image's modules, the
 * workload for banger-init) and the record (source, manifest digest,
 * layers) are read back from the ext4 made, with debugfs, never mounted.
 * A corrupt or hostile image is refused and leaves nothing behind. */
#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "bg-error.h"
#include "bg-image.h"
#include "layer-tar.h"
#include "oci-layout.h"

typedef struct {
  char  *tmp;
  char  *images;
  char **envp;
} Fixture;


static char *
run_ok (const char * const *argv, char **envp, const char *cwd)
{
  g_autoptr(GError) error = NULL;
  char *out = NULL, *err = NULL;
  int status;

  g_assert_true (g_spawn_sync (cwd, (char **) argv, envp, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err, &status, &error));
  if (!g_spawn_check_wait_status (status, NULL))
    g_error ("%s failed: %s%s", argv[0], out, err);
  g_free (err);
  return out;
}

/* banger itself, as a user runs it; its exit status, stdout and stderr. */
static int
banger (Fixture *f, char **out, char **err, ...)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autofree char *o = NULL, *e = NULL;
  const char *arg;
  va_list ap;
  int status;

  g_ptr_array_add (argv, (char *) g_getenv ("BANGER_CLI"));
  va_start (ap, err);
  while ((arg = va_arg (ap, const char *)))
    g_ptr_array_add (argv, (char *) arg);
  va_end (ap);
  g_ptr_array_add (argv, NULL);
  g_assert_true (g_spawn_sync (NULL, (char **) argv->pdata, f->envp, 0, NULL, NULL, &o, &e, &status, NULL));
  if (out)
    *out = g_steal_pointer (&o);
  if (err)
    *err = g_steal_pointer (&e);
  return g_spawn_check_wait_status (status, NULL) ? 0 : WEXITSTATUS (status);
}

/* debugfs -R REQUEST on the image's rootfs: the ext4 read, not mounted. */
static char *
debugfs (Fixture *f, const char *image, const char *request)
{
  g_autofree char *rootfs = g_build_filename (f->images, image, "rootfs.ext4", NULL);
  const char *argv[] = { "debugfs", "-R", request, rootfs, NULL };
  return run_ok (argv, NULL, NULL);
}

/* The default image, whose kernel and modules an OCI image borrows: a
 * stand-in vmlinux, and an ext4 holding /usr/lib/modules (with /lib a
 * symlink to usr/lib, as Debian has it). */
static void
make_default_image (Fixture *f)
{
  g_autofree char *src = g_build_filename (f->tmp, "default-src", NULL);
  g_autofree char *ko = g_build_filename (src, "usr/lib/modules/6.1.0-test/kernel/fs/overlayfs/overlay.ko", NULL);
  g_autofree char *lib = g_build_filename (src, "lib", NULL);
  g_autofree char *rootfs = g_build_filename (f->tmp, "default.ext4", NULL);
  g_autofree char *vmlinux = g_build_filename (f->tmp, "vmlinux", NULL);
  g_autofree guint8 *elf = g_malloc0 (65536);
  g_autoptr(GError) error = NULL;
  g_autoptr(BgImage) image = NULL;
  Elf64_Ehdr *eh = (Elf64_Ehdr *) elf;
  const char *mke2fs[] = { "mke2fs", "-q", "-t", "ext4", "-d", src, rootfs, "16M", NULL };

  oci_layout_write_file (ko, "a module\n", 9);
  g_assert_cmpint (symlink ("usr/lib", lib), ==, 0);
  g_free (run_ok (mke2fs, NULL, NULL));
  memcpy (eh->e_ident, ELFMAG, SELFMAG);
  eh->e_ident[EI_CLASS] = ELFCLASS64;
  eh->e_ident[EI_DATA] = ELFDATA2LSB;
  eh->e_ident[EI_VERSION] = EV_CURRENT;
  eh->e_type = ET_EXEC;
  eh->e_machine = EM_X86_64;
  oci_layout_write_file (vmlinux, elf, 65536);
  image = bg_image_import (f->images, "default",
                           &(BgImageFiles) { vmlinux, rootfs, NULL, NULL, "test: default", NULL, NULL }, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (image);
}

static void
setup (Fixture *f, gconstpointer data)
{
  const char *dirs[] = { "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_RUNTIME_DIR", "XDG_CACHE_HOME" };

  f->tmp = g_dir_make_tmp ("banger-oci-XXXXXX", NULL);
  f->envp = g_get_environ ();
  for (guint i = 0; i < G_N_ELEMENTS (dirs); i++)
    {
      g_autofree char *d = g_build_filename (f->tmp, dirs[i], NULL);
      g_assert_cmpint (g_mkdir (d, 0700), ==, 0);
      f->envp = g_environ_setenv (f->envp, dirs[i], d, TRUE);
      g_setenv (dirs[i], d, TRUE);
    }
  f->images = g_build_filename (f->tmp, "XDG_DATA_HOME", "banger", "images", NULL);
  make_default_image (f);
}

static void
teardown (Fixture *f, gconstpointer data)
{
  const char *argv[] = { "rm", "-rf", "--", f->tmp, NULL };
  g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
  g_free (f->tmp);
  g_free (f->images);
  g_strfreev (f->envp);
}

/* A guest program as the image has it: a static executable (no
 * PT_INTERP), since it runs in a root of any libc. */
static void
assert_static (Fixture *f, const char *image, const char *program)
{
  g_autofree char *out = g_build_filename (f->tmp, "program-copy", NULL);
  g_autofree char *request = g_strdup_printf ("dump /usr/libexec/banger/%s %s", program, out);
  g_autofree char *said = debugfs (f, image, request);
  g_autofree char *data = NULL;
  gsize len;
  const Elf64_Ehdr *eh;

  g_assert_true (g_file_get_contents (out, &data, &len, NULL));
  g_assert_cmpuint (len, >, sizeof *eh);
  eh = (const Elf64_Ehdr *) data;
  g_assert_cmpmem (eh->e_ident, SELFMAG, ELFMAG, SELFMAG);
  g_assert_cmpuint (eh->e_phoff + (gsize) eh->e_phnum * sizeof (Elf64_Phdr), <=, len);
  for (guint i = 0; i < eh->e_phnum; i++)
    {
      const Elf64_Phdr *ph = (const Elf64_Phdr *) (data + eh->e_phoff + i * sizeof (Elf64_Phdr));
      g_assert_cmpuint (ph->p_type, !=, PT_INTERP);
      g_assert_cmpuint (ph->p_type, !=, PT_DYNAMIC);
    }
  g_unlink (out);
}

/* What the image's tree must hold after both layers and banger's own. */
static void
assert_tree (Fixture *f, const char *image)
{
  g_autofree char *hello = debugfs (f, image, "cat /usr/bin/hello");
  g_autofree char *su = debugfs (f, image, "stat /usr/bin/su");
  g_autofree char *shadow = debugfs (f, image, "stat /etc/shadow");
  g_autofree char *etc = debugfs (f, image, "ls /etc");
  g_autofree char *cache = debugfs (f, image, "ls /var/cache");
  g_autofree char *app = debugfs (f, image, "stat /srv/app");
  g_autofree char *init = debugfs (f, image, "stat /usr/libexec/banger/banger-init");
  g_autofree char *modules = debugfs (f, image, "cat /usr/lib/modules/6.1.0-test/kernel/fs/overlayfs/overlay.ko");
  g_autofree char *workload = debugfs (f, image, "cat /usr/libexec/banger/workload");
  g_autofree char *root = debugfs (f, image, "ls /");
  static const char want[] = "argv=/usr/bin/hello\0argv=--loud\0env=PATH=/usr/bin:/bin\0env=GREETING=hi there\0"
                             "cwd=/srv\0user=1000:1000";

  g_assert_cmpstr (hello, ==, "#!/bin/sh\necho hello\n");
  g_assert_nonnull (strstr (su, "Mode:  04755"));
  g_assert_nonnull (strstr (shadow, "Mode:  0640"));
  g_assert_nonnull (strstr (shadow, "Group:    42"));
  g_assert_null (strstr (etc, "os-release"));          /* whited out */
  g_assert_nonnull (strstr (etc, "shadow"));
  g_assert_null (strstr (cache, "old"));               /* opaque */
  g_assert_nonnull (strstr (cache, "new"));
  g_assert_nonnull (strstr (app, "User:  1000"));
  g_assert_nonnull (strstr (init, "Mode:  0755"));
  g_assert_cmpstr (modules, ==, "a module\n");          /* through the image's lib -> usr/lib */
  assert_static (f, image, "banger-init");
  assert_static (f, image, "banger-guest-setup");
  g_assert_null (strstr (root, "dev-null"));            /* device nodes skipped */
  g_assert_cmpmem (workload, strlen (workload) ? sizeof want - 1 : 0, want, sizeof want - 1);
}

static JsonObject *
show_json (Fixture *f, const char *name, JsonParser *parser)
{
  g_autofree char *out = NULL, *err = NULL;

  g_assert_cmpint (banger (f, &out, &err, "image", "show", "--json", name, NULL), ==, 0);
  g_assert_true (json_parser_load_from_data (parser, out, -1, NULL));
  return json_node_get_object (json_parser_get_root (parser));
}

static void
assert_nothing_left (Fixture *f, const char *name)
{
  g_autoptr(GDir) d = g_dir_open (f->images, 0, NULL);
  const char *n;

  /* No work directory, nor (when @name failed) the image. */
  while (d && (n = g_dir_read_name (d)))
    if (n[0] == '.' || g_strcmp0 (n, name) == 0)
      g_error ("left behind in the image store: %s", n);
}

static void
test_layout (Fixture *f, gconstpointer data)
{
  g_autofree char *mdigest = NULL, *out = NULL, *err = NULL, *source = NULL;
  g_autofree char *layout = oci_layout_make (f->tmp, "layout", FALSE, FALSE, &mdigest);
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonObject *o, *oci;

  g_assert_cmpint (banger (f, &out, &err, "image", "import", "--oci", layout, "--name", "web", NULL), ==, 0);
  g_test_message ("%s%s", out, err);
  assert_tree (f, "web");
  o = show_json (f, "web", parser);
  source = g_strdup_printf ("oci-layout:%s", layout);
  g_assert_cmpstr (json_object_get_string_member (o, "source"), ==, source);
  g_assert_true (json_object_get_boolean_member (o, "layered"));
  /* No init in the image: banger-init stays PID 1. */
  g_assert_cmpstr (json_object_get_string_member (o, "guest_setup"), ==, "banger-init");
  /* No mke2fs in the image: its VMs' disks are made on the host. */
  g_assert_true (json_object_get_boolean_member (o, "format_upper"));
  oci = json_object_get_object_member (o, "oci");
  g_assert_cmpstr (json_object_get_string_member (oci, "manifest_digest"), ==, mdigest);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (oci, "layers")), ==, 2);
  /* The ext4 banger made is moved in, not read whole for a checksum:
   * the manifest digest says what it is. */
  g_assert_false (json_object_has_member (o, "rootfs_sha256"));
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (banger (f, &out, NULL, "image", "show", "web", NULL), ==, 0);
  g_assert_nonnull (strstr (out, mdigest));
  {
    const char *rootfs_line = strstr (out, "\nRootfs:");
    g_autofree char *line = rootfs_line ? g_strndup (rootfs_line + 1, strcspn (rootfs_line + 1, "\n")) : NULL;

    g_assert_nonnull (line);
    g_assert_null (strstr (line, "sha256"));
  }
  g_assert_nonnull (strstr (out, "Layers:    2"));
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (banger (f, &out, NULL, "image", "ls", NULL), ==, 0);
  g_assert_nonnull (strstr (out, "SOURCE"));
  g_assert_nonnull (strstr (out, "oci-layout:"));
}

/* `docker save`'s format: manifest.json, the config, one tar per layer
 * (plain, as docker writes them), under names that are not digests. */
static void
test_docker_save (Fixture *f, gconstpointer data)
{
  g_autoptr(LayerTar) archive = layer_tar_new ();
  g_autofree char *config = NULL, *manifest = NULL, *path = g_build_filename (f->tmp, "My_App.tar", NULL);
  g_autofree char *out = NULL, *err = NULL, *source = NULL;
  g_autoptr(GBytes) blob = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  OciLayer layers[2] = { { 0 } };
  JsonObject *o;

  {
    g_autoptr(LayerTar) a = layer_tar_new ();
    g_autoptr(LayerTar) b = layer_tar_new ();
    layer_tar_dir (a, "usr");
    layer_tar_dir (a, "usr/bin");
    layer_tar_file (a, "usr/bin/hello", "#!/bin/sh\necho hello\n", 0755);
    layer_tar_file (a, "usr/bin/gone", "x\n", 0755);
    layers[0].blob = layer_tar_finish (a, BG_OCI_COMPRESSION_NONE, &layers[0].digest, &layers[0].diff);
    layer_tar_file (b, "usr/bin/.wh.gone", "", 0644);
    layer_tar_file (b, "usr/bin/extra", "extra\n", 0755);
    layers[1].blob = layer_tar_finish (b, BG_OCI_COMPRESSION_NONE, &layers[1].digest, &layers[1].diff);
  }
  config = g_strdup_printf ("{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Cmd\":[\"/usr/bin/hello\"]},"
                            "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"%s\",\"%s\"]}}",
                            layers[0].diff, layers[1].diff);
  manifest = g_strdup ("[{\"Config\":\"0123abcd.json\",\"RepoTags\":[\"my/app:1\"],"
                       "\"Layers\":[\"aaaa/layer.tar\",\"./bbbb/layer.tar\"]}]");
  layer_tar_file (archive, "manifest.json", manifest, 0644);
  layer_tar_file (archive, "0123abcd.json", config, 0644);
  layer_tar_dir (archive, "aaaa");
  layer_tar_add_full (archive, '0', "aaaa/layer.tar", NULL, 0644, 0, 0, g_bytes_get_data (layers[0].blob, NULL),
                      g_bytes_get_size (layers[0].blob), 0, FALSE);
  layer_tar_add_full (archive, '0', "bbbb/layer.tar", NULL, 0644, 0, 0, g_bytes_get_data (layers[1].blob, NULL),
                      g_bytes_get_size (layers[1].blob), 0, FALSE);
  layer_tar_file (archive, "repositories", "{}", 0644);
  blob = layer_tar_finish (archive, BG_OCI_COMPRESSION_NONE, NULL, NULL);
  oci_layout_write_file (path, g_bytes_get_data (blob, NULL), g_bytes_get_size (blob));

  g_assert_cmpint (banger (f, &out, &err, "image", "import", "--oci", path, NULL), ==, 0);
  {
    g_autofree char *hello = debugfs (f, "my-app", "cat /usr/bin/hello");
    g_autofree char *bin = debugfs (f, "my-app", "ls /usr/bin");
    g_autofree char *workload = debugfs (f, "my-app", "cat /usr/libexec/banger/workload");
    g_assert_cmpstr (hello, ==, "#!/bin/sh\necho hello\n");
    g_assert_null (strstr (bin, "gone"));
    g_assert_nonnull (strstr (bin, "extra"));
    g_assert_cmpstr (workload, ==, "argv=/usr/bin/hello");
  }
  o = show_json (f, "my-app", parser);
  source = g_strdup_printf ("docker-archive:%s", path);
  g_assert_cmpstr (json_object_get_string_member (o, "source"), ==, source);
  for (int i = 0; i < 2; i++)
    oci_layout_layer_clear (&layers[i]);
  assert_nothing_left (f, NULL);
}

/* A docker-save archive of the one layer @layer, imported as @name. */
static void
import_one_layer (Fixture *f, const char *name, LayerTar *layer)
{
  g_autoptr(LayerTar) archive = layer_tar_new ();
  g_autofree char *config = NULL, *digest = NULL, *diff = NULL, *out = NULL, *err = NULL;
  g_autofree char *path = g_strdup_printf ("%s/%s.tar", f->tmp, name);
  g_autoptr(GBytes) blob = layer_tar_finish (layer, BG_OCI_COMPRESSION_NONE, &digest, &diff);
  g_autoptr(GBytes) saved = NULL;

  config = g_strdup_printf ("{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{},"
                            "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"%s\"]}}", diff);
  layer_tar_file (archive, "manifest.json", "[{\"Config\":\"c.json\",\"Layers\":[\"l/layer.tar\"]}]", 0644);
  layer_tar_file (archive, "c.json", config, 0644);
  layer_tar_add_full (archive, '0', "l/layer.tar", NULL, 0644, 0, 0, g_bytes_get_data (blob, NULL),
                      g_bytes_get_size (blob), 0, FALSE);
  saved = layer_tar_finish (archive, BG_OCI_COMPRESSION_NONE, NULL, NULL);
  oci_layout_write_file (path, g_bytes_get_data (saved, NULL), g_bytes_get_size (saved));
  if (banger (f, &out, &err, "image", "import", "--oci", path, "--name", name, NULL) != 0)
    g_error ("image import --oci %s: %s%s", path, out, err);
}

/* An image whose /sbin/init is systemd boots it (banger-init execs it):
 * banger-guest-setup's unit is added and enabled, so the config drive
 * is applied there too. An image that has systemd but another init gets
 * no unit that would never run. */
static void
test_systemd_gets_guest_setup (Fixture *f, gconstpointer data)
{
  g_autoptr(LayerTar) sd = layer_tar_new ();
  g_autoptr(LayerTar) other = layer_tar_new ();
  g_autofree char *unit = NULL, *wants = NULL, *none = NULL, *none_wants = NULL;

  /* Debian's shape: /lib and /sbin link into /usr, and /sbin/init is an
   * absolute link that means the image's own root. */
  layer_tar_dir (sd, "usr");
  layer_tar_dir (sd, "usr/lib");
  layer_tar_dir (sd, "usr/lib/systemd");
  layer_tar_dir (sd, "usr/sbin");
  layer_tar_file (sd, "usr/lib/systemd/systemd", "not really systemd\n", 0755);
  layer_tar_link (sd, '2', "lib", "usr/lib");
  layer_tar_link (sd, '2', "sbin", "usr/sbin");
  layer_tar_link (sd, '2', "usr/sbin/init", "/lib/systemd/systemd");
  import_one_layer (f, "sd", sd);

  unit = debugfs (f, "sd", "cat /usr/lib/systemd/system/banger-guest-setup.service");
  g_assert_nonnull (strstr (unit, "\nExecStart=/usr/libexec/banger/banger-guest-setup\n"));
  g_assert_nonnull (strstr (unit, "\nWantedBy=sysinit.target\n"));
  wants = debugfs (f, "sd", "stat /etc/systemd/system/sysinit.target.wants/banger-guest-setup.service");
  g_assert_nonnull (strstr (wants, "Type: symlink"));
  g_assert_nonnull (strstr (wants, "\"/usr/lib/systemd/system/banger-guest-setup.service\""));
  assert_static (f, "sd", "banger-guest-setup");
  {
    g_autoptr(JsonParser) parser = json_parser_new ();
    g_autofree char *out = NULL;

    g_assert_cmpstr (json_object_get_string_member (show_json (f, "sd", parser), "guest_setup"), ==,
                     "banger-guest-setup");
    g_assert_cmpint (banger (f, &out, NULL, "image", "show", "sd", NULL), ==, 0);
    g_assert_nonnull (strstr (out, "\nGuest setup: banger-guest-setup, started by the image's systemd"));
  }

  layer_tar_dir (other, "usr");
  layer_tar_dir (other, "usr/lib");
  layer_tar_dir (other, "usr/lib/systemd");
  layer_tar_dir (other, "sbin");
  layer_tar_file (other, "usr/lib/systemd/systemd", "not really systemd\n", 0755);
  layer_tar_file (other, "sbin/init", "another init\n", 0755);
  import_one_layer (f, "other", other);
  none = debugfs (f, "other", "stat /usr/lib/systemd/system/banger-guest-setup.service");
  none_wants = debugfs (f, "other", "stat /etc/systemd/system/sysinit.target.wants/banger-guest-setup.service");
  g_assert_null (strstr (none, "Type:"));
  g_assert_null (strstr (none_wants, "Type:"));
  assert_static (f, "other", "banger-guest-setup");
  {
    g_autoptr(JsonParser) parser = json_parser_new ();
    g_assert_cmpstr (json_object_get_string_member (show_json (f, "other", parser), "guest_setup"), ==, "none");
  }
  assert_nothing_left (f, NULL);
}

/* The layout as a tar (oci-archive), as `podman save --format oci-archive` writes. */
static void
test_oci_archive (Fixture *f, gconstpointer data)
{
  g_autofree char *layout = oci_layout_make (f->tmp, "layout", FALSE, FALSE, NULL);
  g_autofree char *path = g_build_filename (f->tmp, "img.tar", NULL);
  g_autofree char *out = NULL, *err = NULL;
  const char *tar[] = { "tar", "-C", layout, "-cf", path, ".", NULL };
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonObject *o;

  g_free (run_ok (tar, NULL, NULL));
  g_assert_cmpint (banger (f, &out, &err, "image", "import", "--oci", path, "--name", "arch", NULL), ==, 0);
  assert_tree (f, "arch");
  o = show_json (f, "arch", parser);
  g_assert_true (g_str_has_prefix (json_object_get_string_member (o, "source"), "oci-archive:"));
  assert_nothing_left (f, NULL);
}

static void
test_corrupt_blob_refused (Fixture *f, gconstpointer data)
{
  g_autofree char *layout = oci_layout_make (f->tmp, "layout", FALSE, TRUE, NULL);
  g_autofree char *out = NULL, *err = NULL;

  g_assert_cmpint (banger (f, &out, &err, "image", "import", "--oci", layout, "--name", "bad", NULL), !=, 0);
  g_test_message ("%s", err);
  /* What the corruption breaks first (the zstd frame, a tar header, the
   * digest) varies; the layer is named whatever it is. */
  g_assert_nonnull (strstr (err, "layer sha256:"));
  assert_nothing_left (f, "bad");
}

static void
test_hostile_layer_refused (Fixture *f, gconstpointer data)
{
  g_autofree char *layout = oci_layout_make (f->tmp, "layout", TRUE, FALSE, NULL);
  g_autofree char *out = NULL, *err = NULL;

  g_assert_cmpint (banger (f, &out, &err, "image", "import", "--oci", layout, "--name", "evil", NULL), !=, 0);
  g_test_message ("%s", err);
  g_assert_nonnull (strstr (err, "\"usr/bin/out/planted\""));
  g_assert_false (g_file_test ("/planted", G_FILE_TEST_EXISTS));
  assert_nothing_left (f, "evil");
}

static void
test_needs_a_kernel (Fixture *f, gconstpointer data)
{
  g_autofree char *layout = oci_layout_make (f->tmp, "layout", FALSE, FALSE, NULL);
  g_autofree char *out = NULL, *err = NULL;

  g_assert_cmpint (banger (f, NULL, NULL, "image", "rm", "default", NULL), ==, 0);
  g_assert_cmpint (banger (f, &out, &err, "image", "import", "--oci", layout, "--name", "nokernel", NULL), !=, 0);
  g_assert_nonnull (strstr (err, "--kernel"));
  assert_nothing_left (f, "nokernel");
}

static void
test_arguments (Fixture *f, gconstpointer data)
{
  g_autofree char *err = NULL, *err2 = NULL, *err3 = NULL;

  g_assert_cmpint (banger (f, NULL, &err, "image", "import", "--oci", "/nonexistent", "--rootfs", "x", NULL), ==, 2);
  g_assert_nonnull (strstr (err, "--rootfs"));
  g_assert_cmpint (banger (f, NULL, &err2, "image", "import", "--oci", f->tmp, "--name", "Bad_Name", NULL), !=, 0);
  g_assert_nonnull (strstr (err2, "NAME"));
  g_assert_cmpint (banger (f, NULL, &err3, "image", "import", "--oci", f->tmp, "--name", "plain", NULL), !=, 0);
  g_assert_nonnull (strstr (err3, "not an OCI image layout"));
  assert_nothing_left (f, "plain");
}

/* A layout as umoci writes it (a whiteout from a repack after a delete,
 * the config set by `umoci config`), when umoci is installed. */
static void
test_umoci (Fixture *f, gconstpointer data)
{
  g_autofree char *umoci = g_find_program_in_path ("umoci");
  g_autofree char *layout = g_build_filename (f->tmp, "umoci-layout", NULL);
  g_autofree char *bundle = g_build_filename (f->tmp, "bundle", NULL);
  g_autofree char *image = g_strdup_printf ("%s:latest", layout);
  g_autofree char *greeting = g_build_filename (bundle, "rootfs/etc/greeting", NULL);
  g_autofree char *other = g_build_filename (bundle, "rootfs/etc/other", NULL);
  g_autofree char *tool = g_build_filename (bundle, "rootfs/bin/tool", NULL);
  g_autofree char *out = NULL, *err = NULL;

  if (umoci == NULL)
    {
      g_test_skip ("umoci is not installed (tools/packages-debian.txt lists it)");
      return;
    }
  {
    const char *init[] = { "umoci", "init", "--layout", layout, NULL };
    const char *new_[] = { "umoci", "new", "--image", image, NULL };
    const char *unpack[] = { "umoci", "unpack", "--rootless", "--image", image, bundle, NULL };
    g_free (run_ok (init, NULL, NULL));
    g_free (run_ok (new_, NULL, NULL));
    g_free (run_ok (unpack, NULL, NULL));
  }
  oci_layout_write_file (greeting, "hello\n", 6);
  oci_layout_write_file (tool, "#!/bin/sh\n", 10);
  g_assert_cmpint (g_chmod (tool, 0755), ==, 0);
  {
    const char *repack[] = { "umoci", "repack", "--image", image, bundle, NULL };
    g_free (run_ok (repack, NULL, NULL));
    g_assert_cmpint (g_unlink (greeting), ==, 0);
    oci_layout_write_file (other, "other\n", 6);
    g_free (run_ok (repack, NULL, NULL));
  }
  {
    const char *config[] = { "umoci", "config", "--image", image, "--config.cmd", "/bin/tool", "--config.env", "A=1",
                             NULL };
    g_free (run_ok (config, NULL, NULL));
  }
  g_assert_cmpint (banger (f, &out, &err, "image", "import", "--oci", layout, "--name", "umoci", NULL), ==, 0);
  {
    g_autofree char *etc = debugfs (f, "umoci", "ls /etc");
    g_autofree char *t = debugfs (f, "umoci", "stat /bin/tool");
    g_autofree char *workload = debugfs (f, "umoci", "cat /usr/libexec/banger/workload");
    static const char want[] = "argv=/bin/tool\0env=A=1";

    g_assert_null (strstr (etc, "greeting"));
    g_assert_nonnull (strstr (etc, "other"));
    g_assert_nonnull (strstr (t, "Mode:  0755"));
    g_assert_cmpmem (workload, sizeof want - 1, want, sizeof want - 1);
  }
}

static void
skip_unprivileged (void)
{
  g_test_skip ("needs root: as a user, layers are applied in a user namespace, which needs a subordinate "
               "id range for the user in /etc/subuid");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  if (getuid () != 0)
    {
      /* As a user, layers are applied in a user namespace, which needs a
       * subordinate id range this test cannot give itself. */
      g_test_add_func ("/oci-import/skipped", skip_unprivileged);
      return g_test_run ();
    }
#define ADD(path, fn) g_test_add ("/oci-import/" path, Fixture, NULL, setup, fn, teardown)
  ADD ("layout", test_layout);
  ADD ("docker-save", test_docker_save);
  ADD ("oci-archive", test_oci_archive);
  ADD ("systemd-gets-guest-setup", test_systemd_gets_guest_setup);
  ADD ("corrupt-blob-refused", test_corrupt_blob_refused);
  ADD ("hostile-layer-refused", test_hostile_layer_refused);
  ADD ("needs-a-kernel", test_needs_a_kernel);
  ADD ("arguments", test_arguments);
  ADD ("umoci", test_umoci);
  return g_test_run ();
}
