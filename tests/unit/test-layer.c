/* test-layer: the layer applier against layers the test writes itself.
 * Hostile layers are each refused with the layer's digest and the entry
 * named, and the host outside the tree is checked unchanged. */
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zlib.h>
#include <glib/gstdio.h>

#include "bg-error.h"
#include "bg-layer.h"
#include "layer-tar.h"

typedef struct {
  char *tmp;
  char *tree;
  char *outside;
  int   tree_fd;
  char *before;       /* what lies outside the tree, before the layer */
} Fixture;

static gint
by_name (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

/* Everything outside the tree: the tmp dir's names, and outside/ with
 * the contents and modes of its files. */
static char *
snapshot (Fixture *f)
{
  g_autoptr(GString) s = g_string_new (NULL);
  const char *dirs[] = { f->tmp, f->outside };

  for (guint i = 0; i < G_N_ELEMENTS (dirs); i++)
    {
      g_autoptr(GDir) d = g_dir_open (dirs[i], 0, NULL);
      g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
      const char *n;

      while (d && (n = g_dir_read_name (d)))
        g_ptr_array_add (names, g_strdup (n));
      g_ptr_array_sort (names, by_name);
      for (guint j = 0; j < names->len; j++)
        {
          g_autofree char *p = g_build_filename (dirs[i], names->pdata[j], NULL);
          g_autofree char *text = NULL;
          struct stat st;

          lstat (p, &st);
          g_file_get_contents (p, &text, NULL, NULL);
          g_string_append_printf (s, "%s %o %s\n", p, st.st_mode, S_ISREG (st.st_mode) ? text : "");
        }
    }
  return g_string_free (g_steal_pointer (&s), FALSE);
}

static void
setup (Fixture *f, gconstpointer data)
{
  g_autofree char *secret = NULL;

  f->tmp = g_dir_make_tmp ("banger-layer-XXXXXX", NULL);
  f->tree = g_build_filename (f->tmp, "tree", NULL);
  f->outside = g_build_filename (f->tmp, "outside", NULL);
  g_assert_cmpint (g_mkdir (f->tree, 0755), ==, 0);
  g_assert_cmpint (g_mkdir (f->outside, 0755), ==, 0);
  secret = g_build_filename (f->outside, "secret", NULL);
  g_assert_true (g_file_set_contents (secret, "the host's own file\n", -1, NULL));
  f->tree_fd = open (f->tree, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  g_assert_cmpint (f->tree_fd, >=, 0);
  f->before = snapshot (f);
}

static void
teardown (Fixture *f, gconstpointer data)
{
  const char *argv[] = { "rm", "-rf", "--", f->tmp, NULL };
  g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
  close (f->tree_fd);
  g_free (f->tmp);
  g_free (f->tree);
  g_free (f->outside);
  g_free (f->before);
}

static int
blob_fd (Fixture *f, GBytes *blob)
{
  g_autofree char *path = g_build_filename (f->tmp, "blob", NULL);
  int fd;

  g_assert_true (g_file_set_contents (path, g_bytes_get_data (blob, NULL), g_bytes_get_size (blob), NULL));
  fd = open (path, O_RDONLY | O_CLOEXEC);
  g_unlink (path);
  return fd;
}

/* Applies @t as a layer (@c); returns the error, NULL when it applied. */
static GError *
apply (Fixture *f, LayerTar *t, BgOciCompression c, BgLayerStats *stats, char **digest_out)
{
  g_autofree char *digest = NULL, *diff = NULL;
  g_autoptr(GBytes) blob = layer_tar_finish (t, c, &digest, &diff);
  BgLayerSpec spec = { digest, diff, g_bytes_get_size (blob), c };
  BgLayerStats local = { 0 };
  GError *error = NULL;
  int fd = blob_fd (f, blob);

  bg_layer_apply (f->tree_fd, fd, &spec, stats ? stats : &local, &error);
  close (fd);
  if (digest_out)
    *digest_out = g_steal_pointer (&digest);
  return error;
}

static void
apply_ok (Fixture *f, LayerTar *t, BgOciCompression c, BgLayerStats *stats)
{
  g_autoptr(GError) error = apply (f, t, c, stats, NULL);
  g_assert_no_error (error);
}

/* Refused, naming the layer and @entry, the host outside unchanged. */
static void
assert_refused (Fixture *f, LayerTar *t, const char *entry)
{
  g_autofree char *digest = NULL, *after = NULL, *quoted = g_strdup_printf ("\"%s\"", entry);
  g_autoptr(GError) error = apply (f, t, BG_OCI_COMPRESSION_GZIP, NULL, &digest);

  g_assert_nonnull (error);
  g_test_message ("refused: %s", error->message);
  g_assert_nonnull (strstr (error->message, digest));
  if (entry)
    g_assert_nonnull (strstr (error->message, quoted));
  after = snapshot (f);
  g_assert_cmpstr (after, ==, f->before);
}

static char *
tree_read (Fixture *f, const char *rel)
{
  g_autofree char *p = g_build_filename (f->tree, rel, NULL);
  char *text = NULL;
  g_file_get_contents (p, &text, NULL, NULL);
  return text;
}

static struct stat
tree_stat (Fixture *f, const char *rel)
{
  g_autofree char *p = g_build_filename (f->tree, rel, NULL);
  struct stat st = { 0 };
  if (lstat (p, &st) < 0)
    st.st_mode = 0;
  return st;
}

static void
test_dotdot_refused (Fixture *f, gconstpointer data)
{
  g_autoptr(LayerTar) t = layer_tar_new ();
  layer_tar_file (t, "ok", "fine\n", 0644);
  layer_tar_file (t, "etc/../../escape", "pwned\n", 0644);
  assert_refused (f, t, "etc/../../escape");
}

static void
test_absolute_refused (Fixture *f, gconstpointer data)
{
  g_autoptr(LayerTar) t = layer_tar_new ();
  g_autofree char *abs = g_build_filename (f->outside, "planted", NULL);
  layer_tar_file (t, abs, "pwned\n", 0644);
  assert_refused (f, t, abs);
}

/* The root itself, as umoci's insert writes it ("/") or tar does ("./"):
 * the tree's root, which containerd resolves such names to and ignores;
 * so is this applier. The tree's root keeps its mode and nothing outside
 * changes; a hard link to the root is still refused. */
static void
test_root_entry_is_the_root (Fixture *f, gconstpointer data)
{
  g_autoptr(LayerTar) t = layer_tar_new ();
  g_autoptr(LayerTar) link = layer_tar_new ();
  g_autofree char *hostname = NULL, *after = NULL;
  struct stat before_root, after_root;

  g_assert_no_errno (stat (f->tree, &before_root));
  layer_tar_add_full (t, '5', "/", NULL, 0777, 0, 0, NULL, 0, 0, FALSE);
  layer_tar_add_full (t, '5', "./", NULL, 0777, 0, 0, NULL, 0, 0, FALSE);
  layer_tar_add_full (t, '5', "/.", NULL, 0777, 0, 0, NULL, 0, 0, FALSE);
  layer_tar_dir (t, "etc");
  layer_tar_file (t, "etc/hostname", "root-entry\n", 0644);
  apply_ok (f, t, BG_OCI_COMPRESSION_GZIP, NULL);
  hostname = tree_read (f, "etc/hostname");
  g_assert_cmpstr (hostname, ==, "root-entry\n");
  g_assert_no_errno (stat (f->tree, &after_root));
  g_assert_cmpuint (after_root.st_mode, ==, before_root.st_mode);
  after = snapshot (f);
  g_assert_cmpstr (after, ==, f->before);

  layer_tar_link (link, '1', "rootlink", "/");
  assert_refused (f, link, "rootlink");
}

static void
test_symlink_then_file_refused (Fixture *f, gconstpointer data)
{
  const char *targets[] = { f->outside, "../outside", "../tree/../outside" };

  for (guint i = 0; i < G_N_ELEMENTS (targets); i++)
    {
      g_autoptr(LayerTar) t = layer_tar_new ();
      layer_tar_link (t, '2', "evil", targets[i]);
      layer_tar_file (t, "evil/secret", "overwritten\n", 0644);
      assert_refused (f, t, "evil/secret");
    }
}

static void
test_hardlink_outside_refused (Fixture *f, gconstpointer data)
{
  g_autofree char *abs = g_build_filename (f->outside, "secret", NULL);
  const char *targets[] = { "../outside/secret", abs };

  for (guint i = 0; i < G_N_ELEMENTS (targets); i++)
    {
      g_autoptr(LayerTar) t = layer_tar_new ();
      layer_tar_link (t, '1', "hl", targets[i]);
      assert_refused (f, t, "hl");
      g_assert_cmpint (tree_stat (f, "hl").st_mode, ==, 0);
    }
}

/* Layer 1 plants a symlink out of the tree (harmless by itself: it is
 * only a name); layer 2 writes through it, and hard-links through it. */
static void
test_link_chain_across_layers_refused (Fixture *f, gconstpointer data)
{
  g_autoptr(LayerTar) l1 = layer_tar_new ();
  g_autoptr(LayerTar) l2 = layer_tar_new ();
  g_autoptr(LayerTar) l3 = layer_tar_new ();
  g_autoptr(LayerTar) l4 = layer_tar_new ();

  layer_tar_dir (l1, "usr");
  layer_tar_link (l1, '2', "usr/up", "../..");
  layer_tar_link (l1, '2', "abs", "/");
  apply_ok (f, l1, BG_OCI_COMPRESSION_GZIP, NULL);
  g_free (f->before);
  f->before = snapshot (f);

  layer_tar_file (l2, "usr/up/outside/secret", "overwritten\n", 0644);
  assert_refused (f, l2, "usr/up/outside/secret");
  layer_tar_link (l3, '1', "stolen", "usr/up/outside/secret");
  assert_refused (f, l3, "stolen");
  layer_tar_file (l4, "abs/tmp/planted", "pwned\n", 0644);
  assert_refused (f, l4, "abs/tmp/planted");
  g_assert_false (g_file_test ("/tmp/planted", G_FILE_TEST_EXISTS));
}

/* A whiteout or an opaque marker through a planted symlink would delete
 * the host's files: refused, the file outside still there. */
static void
test_whiteout_through_symlink_refused (Fixture *f, gconstpointer data)
{
  g_autoptr(LayerTar) l1 = layer_tar_new ();
  g_autoptr(LayerTar) l2 = layer_tar_new ();
  g_autoptr(LayerTar) l3 = layer_tar_new ();

  layer_tar_link (l1, '2', "d", "../outside");
  apply_ok (f, l1, BG_OCI_COMPRESSION_GZIP, NULL);
  g_free (f->before);
  f->before = snapshot (f);
  layer_tar_file (l2, "d/.wh.secret", "", 0644);
  assert_refused (f, l2, "d/.wh.secret");
  layer_tar_file (l3, "d/.wh..wh..opq", "", 0644);
  assert_refused (f, l3, "d/.wh..wh..opq");
}

/* A file of the tree hard-linked by one layer and replaced by the next
 * is replaced, never written through (the other name keeps its data). */
static void
test_replace_never_writes_through (Fixture *f, gconstpointer data)
{
  g_autoptr(LayerTar) l1 = layer_tar_new ();
  g_autoptr(LayerTar) l2 = layer_tar_new ();
  g_autofree char *orig = NULL, *repl = NULL;

  layer_tar_file (l1, "orig", "original\n", 0644);
  layer_tar_link (l1, '1', "alias", "orig");
  apply_ok (f, l1, BG_OCI_COMPRESSION_NONE, NULL);
  g_assert_cmpuint (tree_stat (f, "orig").st_ino, ==, tree_stat (f, "alias").st_ino);
  g_assert_cmpuint (tree_stat (f, "orig").st_nlink, ==, 2);

  layer_tar_file (l2, "alias", "replaced\n", 0644);
  apply_ok (f, l2, BG_OCI_COMPRESSION_NONE, NULL);
  orig = tree_read (f, "orig");
  repl = tree_read (f, "alias");
  g_assert_cmpstr (orig, ==, "original\n");
  g_assert_cmpstr (repl, ==, "replaced\n");
}

static void
test_huge_header_refused (Fixture *f, gconstpointer data)
{
  g_autoptr(LayerTar) t = layer_tar_new ();

  /* 10 GiB claimed (base-256, as GNU tar writes it), no data behind it. */
  layer_tar_add_full (t, '0', "sparse.img", NULL, 0644, 0, 0, NULL, 0, G_GUINT64_CONSTANT (10) << 30, FALSE);
  assert_refused (f, t, "sparse.img");
  g_assert_cmpint (tree_stat (f, "sparse.img").st_mode, ==, 0);
}

/* A gzip stream of a tiny tar followed by a gigabyte and a half of
 * zeros: deflate blocks repeated (each a full flush of 1 MiB of zeros),
 * so the test does not compress 1.5 GiB to build it. The applier must
 * stop at its expansion bound, having written nothing big. */
static void
test_gzip_bomb_refused (Fixture *f, gconstpointer data)
{
  g_autoptr(LayerTar) t = layer_tar_new ();
  g_autoptr(GByteArray) blob = g_byte_array_new ();
  g_autofree guint8 *zeros = g_malloc0 (1 << 20);
  g_autofree guint8 *out = g_malloc (1 << 20);
  g_autofree char *digest = NULL, *after = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = NULL;
  BgLayerStats stats = { 0 };
  BgLayerSpec spec = { 0 };
  z_stream z = { 0 };
  gsize chunk_start, chunk_len;
  int fd;

  layer_tar_file (t, "small", "x\n", 0644);
  g_byte_array_set_size (t->data, t->data->len);
  g_assert_cmpint (deflateInit2 (&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY), ==, Z_OK);
  z.next_in = t->data->data;
  z.avail_in = t->data->len;
  z.next_out = out;
  z.avail_out = 1 << 20;
  g_assert_cmpint (deflate (&z, Z_FULL_FLUSH), ==, Z_OK);
  g_byte_array_append (blob, out, (1 << 20) - z.avail_out);
  z.next_in = zeros;
  z.avail_in = 1 << 20;
  z.next_out = out;
  z.avail_out = 1 << 20;
  g_assert_cmpint (deflate (&z, Z_FULL_FLUSH), ==, Z_OK);
  chunk_start = blob->len;
  chunk_len = (1 << 20) - z.avail_out;
  deflateEnd (&z);
  for (guint i = 0; i < 1536; i++)
    g_byte_array_append (blob, out, chunk_len);
  g_assert_cmpuint (chunk_start, >, 0);

  bytes = g_byte_array_free_to_bytes (g_steal_pointer (&blob));
  digest = layer_sha256 (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
  spec.digest = digest;
  spec.size = g_bytes_get_size (bytes);
  spec.compression = BG_OCI_COMPRESSION_GZIP;
  g_assert_cmpuint (bg_layer_expand_limit (&spec), <, G_GUINT64_CONSTANT (1536) << 20);
  fd = blob_fd (f, bytes);
  g_assert_false (bg_layer_apply (f->tree_fd, fd, &spec, &stats, &error));
  close (fd);
  g_assert_nonnull (error);
  g_test_message ("refused: %s", error->message);
  g_assert_nonnull (strstr (error->message, digest));
  g_assert_nonnull (strstr (error->message, "decompression bomb"));
  after = snapshot (f);
  g_assert_cmpstr (after, ==, f->before);
}

static void
test_digest_and_size_checked (Fixture *f, gconstpointer data)
{
  g_autoptr(LayerTar) t = layer_tar_new ();
  g_autofree char *digest = NULL, *diff = NULL;
  g_autoptr(GBytes) blob = NULL;
  const char *other = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
  struct { const char *digest, *diff; gint64 size_delta; const char *says; } cases[] = {
    { other, NULL, 0, "the blob's digest" },
    { NULL, other, 0, "diff_id" },
    { NULL, NULL, -1, "larger than" },
    { NULL, NULL, +1, "not the" },
  };

  layer_tar_file (t, "f", "data\n", 0644);
  blob = layer_tar_finish (t, BG_OCI_COMPRESSION_GZIP, &digest, &diff);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      BgLayerSpec spec = { cases[i].digest ? cases[i].digest : digest, cases[i].diff ? cases[i].diff : diff,
                           g_bytes_get_size (blob) + cases[i].size_delta, BG_OCI_COMPRESSION_GZIP };
      g_autoptr(GError) error = NULL;
      BgLayerStats stats = { 0 };
      int fd = blob_fd (f, blob);

      g_assert_false (bg_layer_apply (f->tree_fd, fd, &spec, &stats, &error));
      close (fd);
      g_assert_nonnull (error);
      g_test_message ("refused: %s", error->message);
      g_assert_nonnull (strstr (error->message, cases[i].says));
      g_assert_nonnull (strstr (error->message, spec.digest));
    }
}

static void
test_devices_skipped_and_counted (Fixture *f, gconstpointer data)
{
  g_autoptr(LayerTar) t = layer_tar_new ();
  BgLayerStats stats = { 0 };

  layer_tar_dir (t, "dev");
  layer_tar_add_full (t, '3', "dev/null", NULL, 0666, 0, 0, NULL, 0, 0, FALSE);
  layer_tar_add_full (t, '4', "dev/sda", NULL, 0660, 0, 6, NULL, 0, 0, FALSE);
  layer_tar_add_full (t, '6', "dev/fifo", NULL, 0620, 0, 0, NULL, 0, 0, FALSE);
  apply_ok (f, t, BG_OCI_COMPRESSION_ZSTD, &stats);
  g_assert_cmpuint (stats.devices_skipped, ==, 2);
  g_assert_cmpint (tree_stat (f, "dev/null").st_mode, ==, 0);
  g_assert_true (S_ISFIFO (tree_stat (f, "dev/fifo").st_mode));
  g_assert_cmpint (tree_stat (f, "dev/fifo").st_mode & 07777, ==, 0620);
}

static void
test_whiteouts_and_opaque (Fixture *f, gconstpointer data)
{
  g_autoptr(LayerTar) l1 = layer_tar_new ();
  g_autoptr(LayerTar) l2 = layer_tar_new ();
  g_autofree char *kept = NULL;

  layer_tar_dir (l1, "a");
  layer_tar_file (l1, "a/gone", "1\n", 0644);
  layer_tar_file (l1, "a/kept", "2\n", 0644);
  layer_tar_dir (l1, "a/subdir");
  layer_tar_file (l1, "a/subdir/deep", "3\n", 0644);
  layer_tar_dir (l1, "b");
  layer_tar_file (l1, "b/old", "4\n", 0644);
  layer_tar_dir (l1, "b/olddir");
  layer_tar_link (l1, '2', "b/oldlink", "/etc/passwd");
  apply_ok (f, l1, BG_OCI_COMPRESSION_GZIP, NULL);

  layer_tar_file (l2, "a/.wh.gone", "", 0644);
  layer_tar_file (l2, "a/.wh.subdir", "", 0644);
  layer_tar_dir (l2, "b");
  layer_tar_file (l2, "b/new", "5\n", 0644);
  layer_tar_file (l2, "b/.wh..wh..opq", "", 0644);
  layer_tar_file (l2, "c/.wh.nothing", "", 0644);   /* a whiteout of what never was */
  apply_ok (f, l2, BG_OCI_COMPRESSION_GZIP, NULL);

  g_assert_cmpint (tree_stat (f, "a/gone").st_mode, ==, 0);
  g_assert_cmpint (tree_stat (f, "a/subdir").st_mode, ==, 0);
  kept = tree_read (f, "a/kept");
  g_assert_cmpstr (kept, ==, "2\n");
  g_assert_cmpint (tree_stat (f, "b/old").st_mode, ==, 0);
  g_assert_cmpint (tree_stat (f, "b/olddir").st_mode, ==, 0);
  g_assert_cmpint (tree_stat (f, "b/oldlink").st_mode, ==, 0);
  g_assert_true (S_ISREG (tree_stat (f, "b/new").st_mode));
  g_assert_cmpint (tree_stat (f, "a/.wh.gone").st_mode, ==, 0);
  g_assert_cmpint (tree_stat (f, "b/.wh..wh..opq").st_mode, ==, 0);
  g_assert_true (g_file_test ("/etc/passwd", G_FILE_TEST_EXISTS));
}

static void
test_modes_setuid_owners (Fixture *f, gconstpointer data)
{
  g_autoptr(LayerTar) t = layer_tar_new ();
  struct stat st;

  if (getuid () != 0)
    {
      g_test_skip ("giving files other owners needs root (banger applies layers as root of a user namespace)");
      return;
    }
  layer_tar_add_full (t, '5', "usr", NULL, 0755, 0, 0, NULL, 0, 0, FALSE);
  layer_tar_add_full (t, '0', "usr/su", NULL, 04755, 0, 0, "elf", 3, 0, FALSE);
  layer_tar_add_full (t, '0', "usr/wall", NULL, 02755, 0, 5, "elf", 3, 0, FALSE);
  layer_tar_add_full (t, '0', "usr/mine", NULL, 0640, 1000, 1001, "x", 1, 0, FALSE);
  layer_tar_add_full (t, '5', "tmp", NULL, 01777, 0, 0, NULL, 0, 0, FALSE);
  layer_tar_add_full (t, '2', "usr/link", "mine", 0777, 7, 8, NULL, 0, 0, FALSE);
  apply_ok (f, t, BG_OCI_COMPRESSION_GZIP, NULL);

  st = tree_stat (f, "usr/su");
  g_assert_cmpint (st.st_mode & 07777, ==, 04755);
  g_assert_cmpint (st.st_uid, ==, 0);
  st = tree_stat (f, "usr/wall");
  g_assert_cmpint (st.st_mode & 07777, ==, 02755);
  g_assert_cmpint (st.st_gid, ==, 5);
  st = tree_stat (f, "usr/mine");
  g_assert_cmpint (st.st_mode & 07777, ==, 0640);
  g_assert_cmpint (st.st_uid, ==, 1000);
  g_assert_cmpint (st.st_gid, ==, 1001);
  g_assert_cmpint (tree_stat (f, "tmp").st_mode & 07777, ==, 01777);
  st = tree_stat (f, "usr/link");
  g_assert_true (S_ISLNK (st.st_mode));
  g_assert_cmpint (st.st_uid, ==, 7);
  g_assert_cmpint (st.st_gid, ==, 8);
}

static void
test_long_names (Fixture *f, gconstpointer data)
{
  g_autoptr(LayerTar) t = layer_tar_new ();
  g_autoptr(GString) deep = g_string_new ("d");
  g_autofree char *pax_name = NULL, *gnu_name = NULL, *text = NULL, *link_target = NULL;
  g_autofree char *ltxt = NULL;

  for (int i = 0; i < 30; i++)
    g_string_append (deep, "/directory");
  pax_name = g_strdup_printf ("%s/pax-file", deep->str);
  gnu_name = g_strdup_printf ("%s/gnu-file", deep->str);
  link_target = g_strdup (pax_name);
  layer_tar_add_full (t, '0', pax_name, NULL, 0644, 0, 0, "pax\n", 4, 0, FALSE);
  layer_tar_add_full (t, '0', gnu_name, NULL, 0644, 0, 0, "gnu\n", 4, 0, TRUE);
  layer_tar_add_full (t, '1', "hardlink-to-long", link_target, 0644, 0, 0, NULL, 0, 0, FALSE);
  apply_ok (f, t, BG_OCI_COMPRESSION_NONE, NULL);
  text = tree_read (f, pax_name);
  g_assert_cmpstr (text, ==, "pax\n");
  g_free (text);
  text = tree_read (f, gnu_name);
  g_assert_cmpstr (text, ==, "gnu\n");
  ltxt = tree_read (f, "hardlink-to-long");
  g_assert_cmpstr (ltxt, ==, "pax\n");
}

static void
test_formats (Fixture *f, gconstpointer data)
{
  BgOciCompression cs[] = { BG_OCI_COMPRESSION_NONE, BG_OCI_COMPRESSION_GZIP, BG_OCI_COMPRESSION_ZSTD };
  g_autofree guint8 *big = g_malloc (300000);

  /* Bytes that do not compress to nothing, and a hole-sized run of zeros. */
  for (gsize i = 0; i < 300000; i++)
    big[i] = i < 100000 ? (guint8) g_random_int () : 0;
  for (guint i = 0; i < G_N_ELEMENTS (cs); i++)
    {
      g_autoptr(LayerTar) t = layer_tar_new ();
      g_autofree char *name = g_strdup_printf ("file-%u", i);
      g_autofree char *p = g_build_filename (f->tree, name, NULL);
      g_autofree char *text = NULL;
      gsize len;
      BgLayerStats stats = { 0 };

      layer_tar_add_full (t, '0', name, NULL, 0644, 0, 0, big, 300000, 0, FALSE);
      apply_ok (f, t, cs[i], &stats);
      g_assert_cmpuint (stats.entries, ==, 1);
      g_assert_true (g_file_get_contents (p, &text, &len, NULL));
      g_assert_cmpuint (len, ==, 300000);
      g_assert_true (memcmp (text, big, len) == 0);
    }
}

/* A layer that ends where its last file's data ends, with no padding and
 * no end blocks, as Go's tar writer leaves it unless closed (umoci insert
 * writes such layers): applied, as tar and containerd apply it; one cut
 * a byte earlier, inside the data, is still refused. */
static void
test_unpadded_end_accepted (Fixture *f, gconstpointer data)
{
  g_autoptr(LayerTar) t = layer_tar_new ();
  g_autofree char *p = g_build_filename (f->tree, "dir/last", NULL);
  g_autofree char *text = NULL;
  const char *body = "the last file, not a multiple of 512 bytes\n";
  gsize end;

  layer_tar_dir (t, "dir");
  layer_tar_file (t, "dir/last", body, 0644);
  /* The archive so far holds no end blocks: cut the last padding off. */
  end = t->data->len - (512 - strlen (body) % 512) % 512;
  for (guint cut = 0; cut < 2; cut++)
    {
      gsize len = end - cut;
      g_autofree char *digest = layer_sha256 (t->data->data, len);
      g_autoptr(GBytes) blob = g_bytes_new (t->data->data, len);
      BgLayerSpec spec = { digest, digest, len, BG_OCI_COMPRESSION_NONE };
      BgLayerStats stats = { 0 };
      g_autoptr(GError) error = NULL;
      int fd = blob_fd (f, blob);
      gboolean ok = bg_layer_apply (f->tree_fd, fd, &spec, &stats, &error);

      close (fd);
      if (cut == 0)
        {
          g_assert_no_error (error);
          g_assert_true (ok);
          g_assert_true (g_file_get_contents (p, &text, NULL, NULL));
          g_assert_cmpstr (text, ==, body);
          g_assert_no_errno (g_unlink (p));
        }
      else
        {
          g_assert_false (ok);
          g_assert_nonnull (strstr (error->message, "\"dir/last\""));
        }
    }
}

/* Nothing escapes, whatever the bytes: a truncated or bit-flipped layer
 * is refused, never applied outside the tree. */
static void
test_corrupt_layers_refused (Fixture *f, gconstpointer data)
{
  g_autoptr(LayerTar) t = layer_tar_new ();
  g_autofree char *digest = NULL, *diff = NULL, *after = NULL;
  g_autoptr(GBytes) blob = NULL;
  gsize len;
  const guint8 *bytes;

  layer_tar_file (t, "a", "some data in a file\n", 0644);
  layer_tar_dir (t, "dir");
  layer_tar_file (t, "dir/b", "more\n", 0644);
  blob = layer_tar_finish (t, BG_OCI_COMPRESSION_NONE, &digest, &diff);
  bytes = g_bytes_get_data (blob, &len);
  for (gsize cut = 0; cut < len; cut += 97)
    {
      g_autoptr(GBytes) part = g_bytes_new (bytes, cut);
      g_autofree char *d = layer_sha256 (bytes, cut);
      BgLayerSpec spec = { d, diff, cut, BG_OCI_COMPRESSION_NONE };
      BgLayerStats stats = { 0 };
      g_autoptr(GError) error = NULL;
      int fd = blob_fd (f, part);

      g_assert_false (bg_layer_apply (f->tree_fd, fd, &spec, &stats, &error));
      close (fd);
      g_assert_nonnull (error);
    }
  after = snapshot (f);
  g_assert_cmpstr (after, ==, f->before);
}

/* Through banger-layer-apply, as banger runs it: as root of the user's
 * namespace (or as root), the result and a refusal both reported. */
static void
test_helper (Fixture *f, gconstpointer data)
{
  g_autoptr(LayerTar) good = layer_tar_new ();
  g_autoptr(LayerTar) bad = layer_tar_new ();
  g_autofree char *digest = NULL, *diff = NULL, *bad_digest = NULL, *after = NULL;
  g_autoptr(GBytes) blob = NULL, bad_blob = NULL;
  g_autoptr(GError) error = NULL;
  BgLayerStats stats = { 0 };
  BgLayerSpec spec = { 0 };
  struct stat st;
  int fd;

  if (getuid () != 0)
    {
      g_test_skip ("needs root, or a subordinate id range for unshare --map-auto (as image build)");
      return;
    }
  {
    g_autoptr(GBytes) v = g_bytes_new_static ("x", 1);
    layer_tar_pax (good, (const char *[]) { "SCHILY.xattr.user.note", "SCHILY.xattr.trusted.no", NULL },
                   (const GBytes *[]) { v, v });
  }
  layer_tar_add_full (good, '0', "etc/shadow", NULL, 0640, 0, 42, "root:*:1::::::\n", 15, 0, FALSE);
  layer_tar_add_full (good, '3', "dev/null", NULL, 0666, 0, 0, NULL, 0, 0, FALSE);
  blob = layer_tar_finish (good, BG_OCI_COMPRESSION_ZSTD, &digest, &diff);
  spec = (BgLayerSpec) { digest, diff, g_bytes_get_size (blob), BG_OCI_COMPRESSION_ZSTD };
  fd = blob_fd (f, blob);
  g_assert_true (bg_layer_apply_mapped (f->tree_fd, fd, &spec, &stats, &error));
  g_assert_no_error (error);
  close (fd);
  g_assert_cmpuint (stats.entries, ==, 2);
  g_assert_cmpuint (stats.devices_skipped, ==, 1);
  /* The attributes' counts come back from the helper too. */
  g_assert_cmpuint (stats.xattrs + stats.xattrs_skipped, ==, 2);
  g_assert_cmpuint (stats.xattrs_skipped, >=, 1);   /* trusted.* */
  st = tree_stat (f, "etc/shadow");
  g_assert_cmpint (st.st_mode & 07777, ==, 0640);
  g_assert_cmpint (st.st_gid, ==, 42);

  layer_tar_file (bad, "../escape", "x", 0644);
  bad_blob = layer_tar_finish (bad, BG_OCI_COMPRESSION_GZIP, &bad_digest, NULL);
  spec = (BgLayerSpec) { bad_digest, NULL, g_bytes_get_size (bad_blob), BG_OCI_COMPRESSION_GZIP };
  fd = blob_fd (f, bad_blob);
  g_assert_false (bg_layer_apply_mapped (f->tree_fd, fd, &spec, &stats, &error));
  close (fd);
  g_assert_nonnull (strstr (error->message, bad_digest));
  g_assert_nonnull (strstr (error->message, "\"../escape\""));
  after = snapshot (f);
  g_assert_cmpstr (after, ==, f->before);
}

/* pax SCHILY.xattr.* records: user.* and security.capability (ping's
 * cap_net_raw, binary) are applied after the owner is set (chown drops
 * capabilities); trusted.*, security.selinux and any on a symlink are
 * skipped and counted; mke2fs -d carries them into the ext4. */
static void
test_xattrs (Fixture *f, gconstpointer data)
{
  /* struct vfs_cap_data, revision 2, effective: permitted CAP_NET_RAW. */
  static const guint8 cap[20] = { 0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00 };
  static const char note[] = "binary\0value";
  g_autoptr(LayerTar) t = layer_tar_new ();
  g_autoptr(GBytes) capv = g_bytes_new_static (cap, sizeof cap);
  g_autoptr(GBytes) notev = g_bytes_new_static (note, sizeof note - 1);
  g_autoptr(GBytes) dirv = g_bytes_new_static ("d", 1);
  g_autoptr(GBytes) trustedv = g_bytes_new_static ("t", 1);
  g_autoptr(GBytes) selinuxv = g_bytes_new_static ("system_u:object_r:bin_t:s0", 26);
  g_autofree char *probe = g_build_filename (f->tree, "probe", NULL);
  gboolean root = geteuid () == 0;
  BgLayerStats stats = { 0 };
  char buf[64];
  int fd;

  g_assert_true (g_file_set_contents (probe, "", 0, NULL));
  if (setxattr (probe, "user.probe", "1", 1, 0) < 0)
    {
      g_test_skip_printf ("the test directory's filesystem has no user.* extended attributes (%s)",
                          g_strerror (errno));
      return;
    }
  g_unlink (probe);

  layer_tar_dir (t, "usr");
  layer_tar_dir (t, "usr/bin");
  if (root)
    layer_tar_pax (t, (const char *[]) { "SCHILY.xattr.security.capability", "SCHILY.xattr.user.note",
                                         "SCHILY.xattr.trusted.secret", NULL },
                   (const GBytes *[]) { capv, notev, trustedv });
  else
    layer_tar_pax (t, (const char *[]) { "SCHILY.xattr.user.note", "SCHILY.xattr.trusted.secret", NULL },
                   (const GBytes *[]) { notev, trustedv });
  layer_tar_add_full (t, '0', "usr/bin/ping", NULL, 0755, 0, 0, "ELF", 3, 0, FALSE);
  layer_tar_pax (t, (const char *[]) { "SCHILY.xattr.user.dir", "SCHILY.xattr.security.selinux", NULL },
                 (const GBytes *[]) { dirv, selinuxv });
  layer_tar_dir (t, "etc");
  layer_tar_pax (t, (const char *[]) { "SCHILY.xattr.user.link", NULL }, (const GBytes *[]) { dirv });
  layer_tar_link (t, '2', "etc/link", "../usr/bin/ping");
  apply_ok (f, t, BG_OCI_COMPRESSION_NONE, &stats);

  g_assert_cmpuint (stats.xattrs, ==, root ? 3 : 2);
  g_assert_cmpuint (stats.xattrs_skipped, ==, 3);
  fd = openat (f->tree_fd, "usr/bin/ping", O_RDONLY | O_CLOEXEC);
  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (fgetxattr (fd, "user.note", buf, sizeof buf), ==, sizeof note - 1);
  g_assert_cmpmem (buf, sizeof note - 1, note, sizeof note - 1);
  g_assert_cmpint (fgetxattr (fd, "trusted.secret", buf, sizeof buf), ==, -1);
  if (root)
    {
      g_assert_cmpint (fgetxattr (fd, "security.capability", buf, sizeof buf), ==, sizeof cap);
      g_assert_cmpmem (buf, sizeof cap, cap, sizeof cap);
    }
  close (fd);
  fd = openat (f->tree_fd, "etc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  g_assert_cmpint (fgetxattr (fd, "user.dir", buf, sizeof buf), ==, 1);
  g_assert_cmpint (fgetxattr (fd, "security.selinux", buf, sizeof buf), ==, -1);
  close (fd);

  /* mke2fs -d copies them into the image's ext4. */
  {
    g_autofree char *img = g_build_filename (f->tmp, "x.ext4", NULL);
    g_autofree char *out = NULL;
    const char *mkfs[] = { "mke2fs", "-q", "-F", "-t", "ext4", "-d", f->tree, img, "8M", NULL };
    const char *ea[] = { "debugfs", "-R", "ea_list /usr/bin/ping", img, NULL };
    int status;

    g_assert_true (g_spawn_sync (NULL, (char **) mkfs, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL, NULL,
                                 NULL, NULL, NULL, &status, NULL));
    g_assert_true (g_spawn_check_wait_status (status, NULL));
    g_assert_true (g_spawn_sync (NULL, (char **) ea, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDERR_TO_DEV_NULL, NULL,
                                 NULL, &out, NULL, &status, NULL));
    g_test_message ("ea_list: %s", out);
    g_assert_nonnull (strstr (out, "user.note"));
    if (root)
      g_assert_nonnull (strstr (out, "security.capability"));
    g_unlink (img);
  }
}

/* A pax record whose attribute value is beyond XATTR_SIZE_MAX is refused. */
static void
test_xattr_bounds (Fixture *f, gconstpointer data)
{
  g_autoptr(LayerTar) t = layer_tar_new ();
  g_autofree char *big = g_malloc0 (65 * 1024);
  g_autoptr(GBytes) bigv = g_bytes_new_take (g_steal_pointer (&big), 65 * 1024);
  g_autoptr(GError) error = NULL;

  layer_tar_pax (t, (const char *[]) { "SCHILY.xattr.user.big", NULL }, (const GBytes *[]) { bigv });
  layer_tar_file (t, "f", "x", 0644);
  error = apply (f, t, BG_OCI_COMPRESSION_NONE, NULL, NULL);
  g_assert_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "extended attribute beyond the bounds"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, fn) g_test_add ("/layer/" path, Fixture, NULL, setup, fn, teardown)
  ADD ("hostile/dotdot", test_dotdot_refused);
  ADD ("hostile/absolute", test_absolute_refused);
  ADD ("hostile/root-entry-is-the-root", test_root_entry_is_the_root);
  ADD ("hostile/symlink-then-file", test_symlink_then_file_refused);
  ADD ("hostile/hardlink-outside", test_hardlink_outside_refused);
  ADD ("hostile/link-chain-across-layers", test_link_chain_across_layers_refused);
  ADD ("hostile/huge-header", test_huge_header_refused);
  ADD ("hostile/whiteout-through-symlink", test_whiteout_through_symlink_refused);
  ADD ("hostile/gzip-bomb", test_gzip_bomb_refused);
  ADD ("hostile/digest-and-size", test_digest_and_size_checked);
  ADD ("hostile/corrupt", test_corrupt_layers_refused);
  ADD ("replace-never-writes-through", test_replace_never_writes_through);
  ADD ("devices-skipped-and-counted", test_devices_skipped_and_counted);
  ADD ("whiteouts-and-opaque", test_whiteouts_and_opaque);
  ADD ("modes-setuid-owners", test_modes_setuid_owners);
  ADD ("long-names", test_long_names);
  ADD ("formats", test_formats);
  ADD ("xattrs", test_xattrs);
  ADD ("xattr-bounds", test_xattr_bounds);
  ADD ("unpadded-end-accepted", test_unpadded_end_accepted);
  ADD ("helper", test_helper);
  return g_test_run ();
}
