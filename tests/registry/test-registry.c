/* test-registry: `image pull`'s registry client against a real registry.
 *
 * The fixture, made once for the program: a CA of the test's own (openssl
 * argv), a server certificate for 127.0.0.1 and 127.0.0.2 signed by it,
 * Debian's docker-registry serving TLS on 127.0.0.1 with token auth, a
 * token server of the test's own (bg-test-registry.py token) holding the
 * signing key whose certificate the registry trusts, a redirecting front
 * (bg-test-registry.py front, another port) that sends every blob GET to
 * a "CDN" on 127.0.0.2 (bg-test-registry.py cdn) which refuses any
 * request carrying an Authorization header. Images are built from small
 * trees with umoci into an OCI layout and pushed with skopeo. banger
 * trusts the CA only for those host:ports, through
 * $XDG_CONFIG_HOME/banger/certs.d/HOST:PORT/ca.crt in the test's home:
 * the host's trust store is never touched.
 *
 * Everything listens on 127.0.0.0/8 only; every wait is bounded. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <zstd.h>

#include "bg-image.h"
#include "registry-fixture.h"

#define PASSWORD  BG_TEST_REGISTRY_READER_PW
#define WRONG_PW  "Wr0ng-guess-pw"

typedef struct {
  BgTestRegistry r;            /* the registry and its token server */
  char   *tmp;
  char   *front_log, *cdn_log;
  char   *layout;
  guint16 front_port, cdn_port;
  GPid    front_pid, cdn_pid;
  char   *front;               /* "127.0.0.1:PORT" */
  char   *big_layer;           /* digests, as pushed */
  char   *corrupt_layer;
  char   *c_layer;
  char   *a_layer, *b_layer;
  char   *base_manifest;
  guint   homes;
} Fixture;

static Fixture F;

/* ---- the fixture ---- */

static char *
path (const char *name)
{
  return g_build_filename (F.tmp, name, NULL);
}

static void
start_front_and_cdn (void)
{
  g_autofree char *cdn_port_file = path ("cdn.port");
  g_autofree char *front_port_file = path ("front.port");
  g_autofree char *upstream = g_strdup_printf ("https://%s", F.r.reg);
  g_autofree char *cdn = NULL;
  const char *py = BG_TEST_REGISTRY_PY;

  F.cdn_log = path ("cdn.log");
  F.front_log = path ("front.log");
  F.cdn_pid = bg_test_spawn_server ((const char *[]) { "/usr/bin/python3", py, "cdn", "--listen", "127.0.0.2",
                                               "--cert", F.r.cert, "--key", F.r.key, "--port-file", cdn_port_file,
                                               "--log", F.cdn_log, "--storage", F.r.storage, NULL }, F.cdn_log);
  F.cdn_port = bg_test_wait_port_file (cdn_port_file, F.cdn_pid);
  cdn = g_strdup_printf ("https://127.0.0.2:%u", F.cdn_port);
  F.front_pid = bg_test_spawn_server ((const char *[]) { "/usr/bin/python3", py, "front", "--listen", "127.0.0.1",
                                                 "--cert", F.r.cert, "--key", F.r.key, "--port-file", front_port_file,
                                                 "--log", F.front_log, "--upstream", upstream, "--cdn", cdn,
                                                 "--ca", F.r.ca, NULL }, F.front_log);
  F.front_port = bg_test_wait_port_file (front_port_file, F.front_pid);
  F.front = g_strdup_printf ("127.0.0.1:%u", F.front_port);
}

/* ---- images ---- */

static char *
image_arg (const char *tag)
{
  return g_strdup_printf ("%s:%s", F.layout, tag);
}

/* A new layer on @tag: one file of @len bytes of @seed's pseudo-random
 * data (incompressible, so the layer is as big as the file), made by
 * unpacking the image and repacking it (umoci insert writes layers
 * without the tar's padding and end blocks). */
static void
add_layer (const char *tag,
           const char *file,
           gsize       len,
           guint32     seed)
{
  g_autofree char *image = image_arg (tag);
  g_autofree char *bundle = path ("bundle");
  g_autofree char *rootfs = g_build_filename (bundle, "rootfs", NULL);
  g_autofree guint8 *data = g_malloc (len);
  g_autoptr(GRand) rand = g_rand_new_with_seed (seed);

  for (gsize i = 0; i < len; i += 4)
    {
      guint32 v = g_rand_int (rand);
      memcpy (data + i, &v, MIN (4, len - i));
    }
  g_free (bg_test_run_ok ((const char *[]) { "umoci", "unpack", "--rootless", "--image", image, bundle, NULL }));
  bg_test_write_file (rootfs, file, data, len);
  g_free (bg_test_run_ok ((const char *[]) { "umoci", "repack", "--image", image, bundle, NULL }));
  g_free (bg_test_run_ok ((const char *[]) { "rm", "-rf", "--", bundle, NULL }));
}

/* The layout's JSON index.json, and the descriptor it tags @tag. */
static JsonNode *
read_json_file (const char *file)
{
  g_autoptr(JsonParser) p = json_parser_new ();
  g_autoptr(GError) error = NULL;

  if (!json_parser_load_from_file (p, file, &error))
    g_error ("%s: %s", file, error->message);
  return json_node_copy (json_parser_get_root (p));
}

static JsonObject *
tagged (JsonNode   *index,
        const char *tag)
{
  JsonArray *m = json_object_get_array_member (json_node_get_object (index), "manifests");

  for (guint i = 0; i < json_array_get_length (m); i++)
    {
      JsonObject *d = json_array_get_object_element (m, i);
      JsonObject *ann = json_object_get_object_member (d, "annotations");
      if (ann && g_strcmp0 (json_object_get_string_member (ann, "org.opencontainers.image.ref.name"), tag) == 0)
        return d;
    }
  g_error ("no tag %s in the layout", tag);
}

static char *
blob_path (const char *digest)
{
  return g_build_filename (F.layout, "blobs", "sha256", digest + 7, NULL);
}

static JsonNode *
read_blob_json (const char *digest)
{
  g_autofree char *file = blob_path (digest);
  return read_json_file (file);
}

/* Writes @data as a blob of the layout; its digest. */
static char *
add_blob (const void *data,
          gsize       len)
{
  g_autofree char *hex = g_compute_checksum_for_data (G_CHECKSUM_SHA256, data, len);
  g_autofree char *digest = g_strconcat ("sha256:", hex, NULL);
  g_autofree char *file = blob_path (digest);

  g_assert_true (g_file_set_contents (file, data, len, NULL));
  return g_steal_pointer (&digest);
}

static char *
to_text (JsonNode *node,
         gsize    *len)
{
  g_autoptr(JsonGenerator) gen = json_generator_new ();

  json_generator_set_root (gen, node);
  return json_generator_to_data (gen, len);
}

/* Tags @tag in index.json as a descriptor of @media_type for @data. */
static char *
add_tagged (const char *tag,
            const char *media_type,
            const char *data,
            gsize       len)
{
  g_autofree char *index_file = g_build_filename (F.layout, "index.json", NULL);
  g_autoptr(JsonNode) index = read_json_file (index_file);
  JsonArray *m = json_object_get_array_member (json_node_get_object (index), "manifests");
  JsonObject *d = json_object_new ();
  JsonObject *ann = json_object_new ();
  g_autofree char *digest = add_blob (data, len);
  g_autofree char *text = NULL;

  json_object_set_string_member (d, "mediaType", media_type);
  json_object_set_string_member (d, "digest", digest);
  json_object_set_int_member (d, "size", len);
  json_object_set_string_member (ann, "org.opencontainers.image.ref.name", tag);
  json_object_set_object_member (d, "annotations", ann);
  json_array_add_object_element (m, d);
  text = to_text (index, NULL);
  g_assert_true (g_file_set_contents (index_file, text, -1, NULL));
  return g_steal_pointer (&digest);
}

static char *
layer_digest (const char *tag,
              guint       i)
{
  g_autofree char *index_file = g_build_filename (F.layout, "index.json", NULL);
  g_autoptr(JsonNode) index = read_json_file (index_file);
  g_autoptr(JsonNode) manifest = read_blob_json (json_object_get_string_member (tagged (index, tag), "digest"));
  JsonArray *layers = json_object_get_array_member (json_node_get_object (manifest), "layers");

  return g_strdup (json_object_get_string_member (json_array_get_object_element (layers, i), "digest"));
}

/* The zstd image: the base's manifest with its first layer recompressed
 * with zstd (same diff_id, so the same config), its second still gzip. */
static void
make_zstd_image (void)
{
  g_autofree char *index_file = g_build_filename (F.layout, "index.json", NULL);
  g_autoptr(JsonNode) index = read_json_file (index_file);
  g_autoptr(JsonNode) manifest = read_blob_json (json_object_get_string_member (tagged (index, "base"), "digest"));
  JsonObject *layer = json_array_get_object_element (
    json_object_get_array_member (json_node_get_object (manifest), "layers"), 0);
  g_autofree char *gz_path = blob_path (json_object_get_string_member (layer, "digest"));
  g_autoptr(GFile) gz = g_file_new_for_path (gz_path);
  g_autoptr(GInputStream) raw = G_INPUT_STREAM (g_file_read (gz, NULL, NULL));
  g_autoptr(GConverter) inflate = G_CONVERTER (g_zlib_decompressor_new (G_ZLIB_COMPRESSOR_FORMAT_GZIP));
  g_autoptr(GInputStream) tar_in = g_converter_input_stream_new (raw, inflate);
  g_autoptr(GOutputStream) tar = g_memory_output_stream_new_resizable ();
  g_autofree char *zst = NULL;
  g_autofree char *zst_digest = NULL;
  g_autofree char *text = NULL;
  gsize tar_len, zst_len, text_len;
  const void *tar_data;

  g_assert_cmpint (g_output_stream_splice (tar, tar_in, G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET, NULL, NULL), >, 0);
  tar_data = g_memory_output_stream_get_data (G_MEMORY_OUTPUT_STREAM (tar));
  tar_len = g_memory_output_stream_get_data_size (G_MEMORY_OUTPUT_STREAM (tar));
  zst = g_malloc (ZSTD_compressBound (tar_len));
  zst_len = ZSTD_compress (zst, ZSTD_compressBound (tar_len), tar_data, tar_len, 3);
  g_assert_false (ZSTD_isError (zst_len));
  zst_digest = add_blob (zst, zst_len);
  json_object_set_string_member (layer, "mediaType", "application/vnd.oci.image.layer.v1.tar+zstd");
  json_object_set_string_member (layer, "digest", zst_digest);
  json_object_set_int_member (layer, "size", zst_len);
  text = to_text (manifest, &text_len);
  g_free (add_tagged ("zstd", "application/vnd.oci.image.manifest.v1+json", text, text_len));
}

/* The multi-arch image: an index naming an arm64 manifest first, then
 * the base (amd64). */
static void
make_index_image (void)
{
  g_autofree char *index_file = g_build_filename (F.layout, "index.json", NULL);
  g_autofree char *base = image_arg ("base");
  g_autoptr(JsonNode) index = NULL;
  g_autoptr(JsonNode) doc = json_node_new (JSON_NODE_OBJECT);
  JsonObject *o = json_object_new ();
  JsonArray *list = json_array_new ();
  g_autofree char *text = NULL;
  gsize len;
  const char *arches[] = { "arm64", "base-arm64", "amd64", "base" };

  g_free (bg_test_run_ok ((const char *[]) { "umoci", "config", "--image", base, "--tag", "base-arm64",
                                     "--architecture", "arm64", NULL }));
  index = read_json_file (index_file);
  for (guint i = 0; i < 4; i += 2)
    {
      JsonObject *d = json_object_new ();
      JsonObject *src = tagged (index, arches[i + 1]);
      JsonObject *platform = json_object_new ();

      json_object_set_string_member (d, "mediaType", json_object_get_string_member (src, "mediaType"));
      json_object_set_string_member (d, "digest", json_object_get_string_member (src, "digest"));
      json_object_set_int_member (d, "size", json_object_get_int_member (src, "size"));
      json_object_set_string_member (platform, "architecture", arches[i]);
      json_object_set_string_member (platform, "os", "linux");
      json_object_set_object_member (d, "platform", platform);
      json_array_add_object_element (list, d);
    }
  json_object_set_int_member (o, "schemaVersion", 2);
  json_object_set_string_member (o, "mediaType", "application/vnd.oci.image.index.v1+json");
  json_object_set_array_member (o, "manifests", list);
  json_node_take_object (doc, o);
  text = to_text (doc, &len);
  g_free (add_tagged ("multi", "application/vnd.oci.image.index.v1+json", text, len));
}

static void
build_and_push_images (void)
{
  g_autofree char *base = NULL;

  F.layout = path ("layout");
  g_free (bg_test_run_ok ((const char *[]) { "umoci", "init", "--layout", F.layout, NULL }));
  base = image_arg ("base");
  g_free (bg_test_run_ok ((const char *[]) { "umoci", "new", "--image", base, NULL }));
  add_layer ("base", "etc/banger-test/a", 4096, 1);
  add_layer ("base", "usr/share/banger-test/b", 8192, 2);
  {
    g_autofree char *more = image_arg ("more");
    g_autofree char *big = image_arg ("big");
    g_autofree char *bad = image_arg ("bad");
    g_free (bg_test_run_ok ((const char *[]) { "umoci", "tag", "--image", base, "more", NULL }));
    add_layer ("more", "opt/banger-test/c", 4096, 3);
    g_free (bg_test_run_ok ((const char *[]) { "umoci", "tag", "--image", base, "big", NULL }));
    add_layer ("big", "opt/banger-test/big", 24u << 20, 4);
    g_free (bg_test_run_ok ((const char *[]) { "umoci", "tag", "--image", base, "bad", NULL }));
    add_layer ("bad", "opt/banger-test/bad", 65536, 5);
  }
  make_zstd_image ();
  make_index_image ();
  F.a_layer = layer_digest ("base", 0);
  F.b_layer = layer_digest ("base", 1);
  F.c_layer = layer_digest ("more", 2);
  F.big_layer = layer_digest ("big", 2);
  F.corrupt_layer = layer_digest ("bad", 2);

  bg_test_registry_push (&F.r, F.layout, "base", "base:1", FALSE);
  bg_test_registry_push (&F.r, F.layout, "base", "private/secret:1", FALSE);
  bg_test_registry_push (&F.r, F.layout, "more", "more:1", FALSE);
  bg_test_registry_push (&F.r, F.layout, "big", "big:1", FALSE);
  bg_test_registry_push (&F.r, F.layout, "bad", "bad:1", FALSE);
  bg_test_registry_push (&F.r, F.layout, "zstd", "zstd:1", FALSE);
  bg_test_registry_push (&F.r, F.layout, "multi", "multi:1", TRUE);
}

static void
fixture_start (void)
{
  F.tmp = g_dir_make_tmp ("banger-registry-XXXXXX", NULL);
  g_assert_nonnull (F.tmp);
  bg_test_registry_start (&F.r, F.tmp);
  start_front_and_cdn ();
  build_and_push_images ();
}

static void
fixture_stop (void)
{
  bg_test_stop_server (&F.front_pid);
  bg_test_stop_server (&F.cdn_pid);
  bg_test_registry_stop (&F.r);
  if (F.tmp && g_getenv ("BANGER_TEST_KEEP") == NULL)
    {
      const char *argv[] = { "rm", "-rf", "--one-file-system", F.tmp, NULL };
      g_free (bg_test_run_ok (argv));
    }
}

/* ---- banger's side ---- */

typedef struct {
  char *dir;         /* HOME */
  char *runtime;     /* XDG_RUNTIME_DIR */
  char *cache;       /* $HOME/.cache/banger/blobs/sha256 */
} Home;

static void
home_free (Home *h)
{
  g_free (h->dir);
  g_free (h->runtime);
  g_free (h->cache);
  g_free (h);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Home, home_free)

/* A fresh home whose banger trusts the test CA for the test's servers. */
static Home *
new_home (void)
{
  Home *h = g_new0 (Home, 1);
  g_autofree char *name = g_strdup_printf ("home-%u", ++F.homes);
  g_autofree char *tok = g_strdup_printf ("127.0.0.1:%u", F.r.tok_port);
  g_autofree char *cdn = g_strdup_printf ("127.0.0.2:%u", F.cdn_port);

  h->dir = path (name);
  h->runtime = g_build_filename (h->dir, "run", NULL);
  h->cache = g_build_filename (h->dir, ".cache", "banger", "blobs", "sha256", NULL);
  g_assert_cmpint (g_mkdir_with_parents (h->runtime, 0700), ==, 0);
  bg_test_registry_trust (&F.r, h->dir, F.r.reg);
  bg_test_registry_trust (&F.r, h->dir, tok);
  bg_test_registry_trust (&F.r, h->dir, F.front);
  bg_test_registry_trust (&F.r, h->dir, cdn);
  return h;
}

static char **
home_envp (Home *h)
{
  char **envp = g_get_environ ();

  envp = g_environ_setenv (envp, "HOME", h->dir, TRUE);
  envp = g_environ_setenv (envp, "XDG_RUNTIME_DIR", h->runtime, TRUE);
  envp = g_environ_unsetenv (envp, "XDG_CONFIG_HOME");
  envp = g_environ_unsetenv (envp, "XDG_CACHE_HOME");
  envp = g_environ_unsetenv (envp, "XDG_DATA_HOME");
  envp = g_environ_unsetenv (envp, "BANGER_TEST_PAUSE_AT");
  return envp;
}

/* Pulls @ref into @h's cache; the exit status, its output in @out/@err. */
static int
pull (Home       *h,
      const char *ref,
      char      **out,
      char      **err)
{
  g_auto(GStrv) envp = home_envp (h);
  const char *argv[] = { g_getenv ("BANGER_TEST_FETCH"), ref, NULL };
  g_autofree char *o = NULL, *e = NULL;
  int status = bg_test_run (argv, &o, &e, envp);

  g_test_message ("pull %s: exit %d\n%s%s", ref, status, o, e);
  if (out)
    *out = g_steal_pointer (&o);
  if (err)
    *err = g_steal_pointer (&e);
  return status;
}

static void
pull_ok (Home       *h,
         const char *ref,
         char      **out)
{
  g_autofree char *err = NULL;

  if (pull (h, ref, out, &err) != 0)
    g_error ("pull of %s failed: %s", ref, err);
}

static gboolean
cached (Home       *h,
        const char *digest)
{
  g_autofree char *file = g_build_filename (h->cache, digest + 7, NULL);
  g_autofree char *data = NULL;
  g_autofree char *sum = NULL;
  gsize len;

  if (!g_file_get_contents (file, &data, &len, NULL))
    return FALSE;
  sum = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) data, len);
  g_assert_cmpstr (sum, ==, digest + 7);
  return TRUE;
}

/* Every file in the cache is a whole blob named by its digest: no
 * temporary or partial file is ever left. */
static guint
assert_cache_clean (Home *h)
{
  g_autoptr(GDir) d = g_dir_open (h->cache, 0, NULL);
  const char *e;
  guint n = 0;

  while (d && (e = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *digest = g_strconcat ("sha256:", e, NULL);
      g_assert_cmpuint (strlen (e), ==, 64);
      g_assert_true (cached (h, digest));
      n++;
    }
  return n;
}

static gsize
log_size (const char *log)
{
  GStatBuf st;
  return g_stat (log, &st) == 0 ? (gsize) st.st_size : 0;
}

/* Lines of @log after @from holding every one of the NULL-ended words. */
static guint
log_count (const char *log,
           gsize       from,
           ...)
{
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;
  guint n = 0;

  g_assert_true (g_file_get_contents (log, &text, NULL, NULL));
  lines = g_strsplit (text + MIN (from, strlen (text)), "\n", -1);
  for (guint i = 0; lines[i]; i++)
    {
      va_list ap;
      const char *w;
      gboolean all = TRUE;

      va_start (ap, from);
      while ((w = va_arg (ap, const char *)) != NULL)
        all = all && strstr (lines[i], w) != NULL;
      va_end (ap);
      n += all;
    }
  return n;
}

/* Requests the registry completed with 200 for a URI starting with
 * @uri_part since @from (logfmt quotes a URI that holds a colon). */
static guint
registry_gets (gsize       from,
               const char *uri_part)
{
  g_autofree char *plain = g_strdup_printf ("http.request.uri=%s", uri_part);
  g_autofree char *quoted = g_strdup_printf ("http.request.uri=\"%s", uri_part);

  return log_count (F.r.reg_log, from, "response completed", plain, "http.response.status=200", NULL) +
         log_count (F.r.reg_log, from, "response completed", quoted, "http.response.status=200", NULL);
}

static char *
ref_of (const char *repo_tag)
{
  return g_strdup_printf ("%s/%s", F.r.reg, repo_tag);
}

static char *
field (const char *out,
       const char *key)
{
  g_autofree char *k = g_strconcat (key, "=", NULL);
  const char *p = strstr (out, k);
  const char *end;

  g_assert_nonnull (p);
  p += strlen (k);
  end = p + strcspn (p, " \n");
  return g_strndup (p, end - p);
}

/* ---- tests ---- */

/* Anonymous: the registry's 401, a token from the token server without
 * credentials, the retry; every blob in the cache and verified. */
static void
test_anonymous (void)
{
  g_autoptr(Home) h = new_home ();
  g_autofree char *ref = ref_of ("base:1");
  g_autofree char *out = NULL;
  gsize tok_from = log_size (F.r.tok_log);

  pull_ok (h, ref, &out);
  g_assert_nonnull (strstr (out, "layers=2 "));
  g_assert_true (cached (h, F.a_layer));
  g_assert_true (cached (h, F.b_layer));
  g_assert_cmpuint (assert_cache_clean (h), ==, 4);  /* manifest, config, 2 layers */
  g_assert_cmpuint (log_count (F.r.tok_log, tok_from, "auth=anonymous", "repository:base:pull", NULL), >=, 1);
  g_assert_cmpuint (log_count (F.r.tok_log, tok_from, "auth=basic", NULL), ==, 0);
}

/* The same reference again: one manifest request, no blob. */
static void
test_unchanged (void)
{
  g_autoptr(Home) h = new_home ();
  g_autofree char *ref = ref_of ("base:1");
  g_autofree char *first = NULL, *second = NULL;
  gsize from;

  pull_ok (h, ref, &first);
  from = log_size (F.r.reg_log);
  pull_ok (h, ref, &second);
  g_assert_nonnull (strstr (second, "fetched=0 "));
  g_assert_cmpuint (registry_gets (from, "/v2/base/manifests/"), ==, 1);
  g_assert_cmpuint (registry_gets (from, "/v2/base/blobs/"), ==, 0);
}

/* A second image on the same two layers plus one: only its new layer
 * and its config are fetched, as the registry's log counts. */
static void
test_shared_layers (void)
{
  g_autoptr(Home) h = new_home ();
  g_autofree char *base = ref_of ("base:1");
  g_autofree char *more = ref_of ("more:1");
  g_autofree char *out = NULL;
  g_autofree char *a = NULL, *b = NULL, *c = NULL;
  gsize from;

  pull_ok (h, base, NULL);
  from = log_size (F.r.reg_log);
  pull_ok (h, more, &out);
  a = g_strconcat ("/v2/more/blobs/", F.a_layer, NULL);
  b = g_strconcat ("/v2/more/blobs/", F.b_layer, NULL);
  c = g_strconcat ("/v2/more/blobs/", F.c_layer, NULL);
  g_assert_nonnull (strstr (out, "layers=3 fetched=2 "));
  g_assert_cmpuint (registry_gets (from, a), ==, 0);
  g_assert_cmpuint (registry_gets (from, b), ==, 0);
  g_assert_cmpuint (registry_gets (from, c), ==, 1);
  g_assert_cmpuint (registry_gets (from, "/v2/more/blobs/"), ==, 2);
  g_assert_true (cached (h, F.c_layer));
  assert_cache_clean (h);
}

/* An index naming arm64 first and amd64 second resolves to amd64's
 * manifest, the very one base:1 is. */
static void
test_index (void)
{
  g_autoptr(Home) h = new_home ();
  g_autofree char *base = ref_of ("base:1");
  g_autofree char *multi = ref_of ("multi:1");
  g_autofree char *out_base = NULL, *out_multi = NULL;
  g_autofree char *d_base = NULL, *d_multi = NULL;

  pull_ok (h, multi, &out_multi);
  pull_ok (h, base, &out_base);
  d_base = field (out_base, "manifest");
  d_multi = field (out_multi, "manifest");
  g_assert_cmpstr (d_multi, ==, d_base);
  g_assert_nonnull (strstr (out_multi, "layers=2 "));
  g_assert_cmpuint (assert_cache_clean (h), ==, 5);   /* + the index */
}

/* A zstd layer beside a gzip one, both fetched and verified. */
static void
test_zstd (void)
{
  g_autoptr(Home) h = new_home ();
  g_autofree char *ref = ref_of ("zstd:1");
  g_autofree char *out = NULL;
  g_autofree char *mdigest = NULL;
  g_autofree char *mfile = NULL;
  g_autofree char *mtext = NULL;

  pull_ok (h, ref, &out);
  mdigest = field (out, "manifest");
  mfile = g_build_filename (h->cache, mdigest + 7, NULL);
  g_assert_true (g_file_get_contents (mfile, &mtext, NULL, NULL));
  g_assert_nonnull (strstr (mtext, "application/vnd.oci.image.layer.v1.tar+zstd"));
  g_assert_nonnull (strstr (mtext, "application/vnd.oci.image.layer.v1.tar+gzip"));
  g_assert_true (cached (h, F.b_layer));
  g_assert_false (cached (h, F.a_layer));   /* the zstd one replaced it */
  g_assert_cmpuint (assert_cache_clean (h), ==, 4);
}

static void
write_auth (const char *file,
            const char *user,
            const char *password)
{
  g_autofree char *plain = g_strconcat (user, ":", password, NULL);
  g_autofree char *b64 = g_base64_encode ((const guchar *) plain, strlen (plain));
  g_autofree char *text = g_strdup_printf ("{\"auths\": {\"docker.io\": {\"auth\": \"eDp5\"}, "
                                           "\"%s\": {\"auth\": \"%s\"}}}", F.r.reg, b64);
  g_autofree char *dir = g_path_get_dirname (file);

  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  g_assert_true (g_file_set_contents (file, text, -1, NULL));
}

/* Neither the password nor its base64 (nor the token server's Basic
 * header) anywhere in what banger printed. */
static void
assert_no_secret (const char *text,
                  const char *password)
{
  g_autofree char *plain = g_strconcat ("reader:", password, NULL);
  g_autofree char *b64 = g_base64_encode ((const guchar *) plain, strlen (plain));

  g_assert_null (strstr (text, password));
  g_assert_null (strstr (text, b64));
  g_assert_null (strstr (text, "Bearer "));
}

/* A private repository: refused without credentials (saying how to log
 * in), pulled with podman's auth.json and with docker's config.json. */
static void
test_basic_auth (void)
{
  g_autoptr(Home) h = new_home ();
  g_autoptr(Home) h2 = new_home ();
  g_autofree char *ref = ref_of ("private/secret:1");
  g_autofree char *out = NULL, *err = NULL, *all = NULL;
  g_autofree char *podman = g_build_filename (h->runtime, "containers", "auth.json", NULL);
  g_autofree char *docker = g_build_filename (h2->dir, ".docker", "config.json", NULL);
  gsize tok_from;

  g_assert_cmpint (pull (h, ref, &out, &err), ==, 1);
  g_assert_nonnull (strstr (err, "without credentials"));
  g_assert_nonnull (strstr (err, "podman login"));
  g_assert_cmpuint (assert_cache_clean (h), ==, 0);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  write_auth (podman, "reader", PASSWORD);
  tok_from = log_size (F.r.tok_log);
  g_assert_cmpint (pull (h, ref, &out, &err), ==, 0);
  g_assert_cmpuint (log_count (F.r.tok_log, tok_from, "auth=basic user=reader", "-> 200", NULL), >=, 1);
  all = g_strconcat (out, err, NULL);
  assert_no_secret (all, PASSWORD);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  write_auth (docker, "reader", PASSWORD);
  g_assert_cmpint (pull (h2, ref, &out, &err), ==, 0);
  g_assert_true (cached (h2, F.a_layer));
}

/* Wrong credentials: a clear error naming the file they came from, and
 * no credential in it. */
static void
test_wrong_credentials (void)
{
  g_autoptr(Home) h = new_home ();
  g_autofree char *ref = ref_of ("private/secret:1");
  g_autofree char *out = NULL, *err = NULL, *all = NULL;
  g_autofree char *file = g_build_filename (h->dir, ".config", "containers", "auth.json", NULL);

  write_auth (file, "reader", WRONG_PW);
  g_assert_cmpint (pull (h, ref, &out, &err), ==, 1);
  g_assert_nonnull (strstr (err, "refused the credentials"));
  g_assert_nonnull (strstr (err, file));
  all = g_strconcat (out, err, NULL);
  assert_no_secret (all, WRONG_PW);
  g_assert_cmpuint (assert_cache_clean (h), ==, 0);
}

/* A blob changed in the registry's storage (same size): refused by its
 * digest, not kept. */
/* bad:1's last layer, as the registry stores it, one byte changed (once
 * a run: the tests that want it corrupt share it). */
static void
corrupt_bad_layer (void)
{
  static gboolean done;
  g_autofree char *data_path = g_build_filename (F.r.storage, "docker", "registry", "v2", "blobs", "sha256",
                                                 (char[3]) { F.corrupt_layer[7], F.corrupt_layer[8], 0 },
                                                 F.corrupt_layer + 7, "data", NULL);
  g_autofree char *data = NULL;
  gsize len;

  if (done)
    return;
  g_assert_true (g_file_get_contents (data_path, &data, &len, NULL));
  data[len / 2] ^= 0x5a;
  g_assert_true (g_file_set_contents (data_path, data, len, NULL));
  done = TRUE;
}

static void
test_corrupt_blob (void)
{
  g_autoptr(Home) h = new_home ();
  g_autofree char *ref = ref_of ("bad:1");
  g_autofree char *err = NULL;

  corrupt_bad_layer ();
  g_assert_cmpint (pull (h, ref, NULL, &err), ==, 1);
  g_assert_nonnull (strstr (err, "does not match its digest"));
  g_assert_nonnull (strstr (err, F.corrupt_layer));
  g_assert_false (cached (h, F.corrupt_layer));
  assert_cache_clean (h);
}

/* A blob a crash left short in the cache (its data never written
 * back: blobs are not fsynced) is fetched again and replaces it. */
static void
test_short_blob_replaced (void)
{
  g_autoptr(Home) h = new_home ();
  g_autofree char *ref = ref_of ("base:1");
  g_autofree char *file = NULL, *out = NULL;
  GStatBuf st;

  pull_ok (h, ref, NULL);
  file = g_build_filename (h->cache, F.b_layer + 7, NULL);
  g_assert_cmpint (truncate (file, 100), ==, 0);
  pull_ok (h, ref, &out);
  g_assert_nonnull (strstr (out, "fetched=1 "));
  g_assert_true (cached (h, F.b_layer));
  g_assert_cmpint (g_stat (file, &st), ==, 0);
  g_assert_cmpint (st.st_size, >, 100);
  assert_cache_clean (h);
}

/* The registry killed while a 24 MiB layer streams: a clear error,
 * nothing partial kept; the registry back, the next pull completes. */
static void
test_registry_killed (void)
{
  g_autoptr(Home) h = new_home ();
  g_autofree char *ref = ref_of ("big:1");
  g_autofree char *err_file = path ("killed.err");
  g_autofree char *err = NULL;
  g_auto(GStrv) envp = home_envp (h);
  const char *argv[] = { g_getenv ("BANGER_TEST_FETCH"), ref, NULL };
  g_autoptr(GError) error = NULL;
  int fd, status;
  GPid pid;

  if (g_getenv ("BANGER_TEST_HOOKS") == NULL)
    {
      g_test_skip ("needs a build with -Dtest_hooks=true (to pause the pull in the middle of a blob)");
      return;
    }
  envp = g_environ_setenv (envp, "BANGER_TEST_PAUSE_AT", "pull-blob", TRUE);
  fd = open (err_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  g_assert_cmpint (fd, >=, 0);
  g_assert_true (g_spawn_async_with_pipes_and_fds (NULL, argv, (const char * const *) envp,
                                                   G_SPAWN_DO_NOT_REAP_CHILD, bg_test_die_with_parent, NULL,
                                                   -1, -1, fd, NULL, NULL, 0, &pid, NULL, NULL, NULL, &error));
  close (fd);
  g_assert_cmpint (waitpid (pid, &status, WUNTRACED), ==, pid);
  g_assert_true (WIFSTOPPED (status));
  bg_test_stop_server (&F.r.reg_pid);
  kill (pid, SIGCONT);
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  g_assert_true (WIFEXITED (status));
  g_assert_cmpint (WEXITSTATUS (status), ==, 1);
  g_assert_true (g_file_get_contents (err_file, &err, NULL, NULL));
  g_test_message ("killed: %s", err);
  g_assert_true (strstr (err, "broke off") != NULL || strstr (err, "Cannot reach") != NULL);
  g_assert_false (cached (h, F.big_layer));
  assert_cache_clean (h);

  bg_test_registry_restart (&F.r);
  pull_ok (h, ref, NULL);
  g_assert_true (cached (h, F.big_layer));
  assert_cache_clean (h);
}

/* Blobs redirected to another host: fetched from there without the
 * Authorization header the registry got (the CDN refuses any). */
static void
test_redirect (void)
{
  g_autoptr(Home) h = new_home ();
  g_autofree char *ref = g_strdup_printf ("%s/base:1", F.front);
  gsize cdn_from = log_size (F.cdn_log);
  gsize front_from = log_size (F.front_log);

  pull_ok (h, ref, NULL);
  g_assert_cmpuint (log_count (F.front_log, front_from, "/blobs/sha256:", "authorization=present", "-> 307", NULL), ==, 3);
  g_assert_cmpuint (log_count (F.cdn_log, cdn_from, "authorization=absent -> 200", NULL), ==, 3);
  g_assert_cmpuint (log_count (F.cdn_log, cdn_from, "authorization=present", NULL), ==, 0);
  g_assert_true (cached (h, F.a_layer));
  g_assert_true (cached (h, F.b_layer));
}

/* A registry over plain HTTP (a second docker-registry on the same
 * storage, without TLS or auth): used only once banger.conf names it
 * insecure; before that, banger speaks TLS to it and fails. */
static void
test_insecure (void)
{
  g_autoptr(Home) h = new_home ();
  g_autofree char *conf_dir = g_build_filename (h->dir, ".config", "banger", NULL);
  g_autofree char *config = path ("registry-plain.yml");
  g_autofree char *log = path ("registry-plain.log");
  g_autofree char *yml = NULL, *conf = NULL, *ref = NULL, *err = NULL, *out = NULL;
  guint16 port = bg_test_free_port ();
  GPid pid;

  yml = g_strdup_printf ("version: 0.1\nlog:\n  level: info\n  formatter: text\n"
                         "storage:\n  filesystem:\n    rootdirectory: %s\n"
                         "http:\n  addr: 127.0.0.1:%u\n", F.r.storage, port);
  g_assert_true (g_file_set_contents (config, yml, -1, NULL));
  pid = bg_test_spawn_server ((const char *[]) { "docker-registry", "serve", config, NULL }, log);
  bg_test_wait_listening ("127.0.0.1", port, pid);
  ref = g_strdup_printf ("127.0.0.1:%u/base:1", port);

  g_assert_cmpint (pull (h, ref, NULL, &err), ==, 1);
  g_assert_nonnull (strstr (err, "Cannot reach 127.0.0.1:"));
  g_assert_cmpuint (assert_cache_clean (h), ==, 0);

  conf = g_strdup_printf ("[registry]\ninsecure=registry.lan; 127.0.0.1:%u\n", port);
  bg_test_write_file (conf_dir, "banger.conf", conf, strlen (conf));
  pull_ok (h, ref, &out);
  g_assert_true (cached (h, F.a_layer));
  g_assert_true (cached (h, F.b_layer));
  bg_test_stop_server (&pid);
}

/* ---- banger image pull, end to end ---- */

/* The default image of @h, whose kernel and modules a pulled image
 * borrows: a stand-in x86-64 vmlinux and an ext4 with /usr/lib/modules. */
static void
make_default_image (Home *h)
{
  g_autofree char *src = g_build_filename (h->dir, "default-src", NULL);
  g_autofree char *rootfs = g_build_filename (h->dir, "default.ext4", NULL);
  g_autofree char *vmlinux = g_build_filename (h->dir, "vmlinux", NULL);
  g_autofree char *images = g_build_filename (h->dir, ".local", "share", "banger", "images", NULL);
  g_autofree guint8 *elf = g_malloc0 (65536);
  g_autoptr(GError) error = NULL;
  g_autoptr(BgImage) image = NULL;
  Elf64_Ehdr *eh = (Elf64_Ehdr *) elf;

  bg_test_write_file (src, "usr/lib/modules/6.1.0-test/kernel/fs/overlayfs/overlay.ko", "a module\n", 9);
  g_free (bg_test_run_ok ((const char *[]) { "mke2fs", "-q", "-t", "ext4", "-d", src, rootfs, "16M", NULL }));
  memcpy (eh->e_ident, ELFMAG, SELFMAG);
  eh->e_ident[EI_CLASS] = ELFCLASS64;
  eh->e_ident[EI_DATA] = ELFDATA2LSB;
  eh->e_ident[EI_VERSION] = EV_CURRENT;
  eh->e_type = ET_EXEC;
  eh->e_machine = EM_X86_64;
  bg_test_write_file (h->dir, "vmlinux", elf, 65536);
  g_assert_cmpint (g_mkdir_with_parents (images, 0700), ==, 0);
  image = bg_image_import (images, "default",
                           &(BgImageFiles) { vmlinux, rootfs, NULL, NULL, "test: default", NULL, NULL }, NULL, &error);
  g_assert_no_error (error);
}

static int
banger (Home *h,
        char **out,
        char **err,
        ...)
{
  g_auto(GStrv) envp = home_envp (h);
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
  status = bg_test_run ((const char * const *) argv->pdata, &o, &e, envp);
  g_test_message ("banger %s: exit %d\n%s%s", (char *) argv->pdata[1], status, o, e);
  if (out)
    *out = g_steal_pointer (&o);
  if (err)
    *err = g_steal_pointer (&e);
  return status;
}

static JsonObject *
parse_object (const char *text)
{
  g_autoptr(JsonParser) p = json_parser_new ();

  g_assert_true (json_parser_load_from_data (p, text, -1, NULL));
  return json_object_ref (json_node_get_object (json_parser_get_root (p)));
}

/* `image pull` makes an image `image show` says came from REF at its
 * manifest digest; again it costs one manifest request; a second image
 * shares the cached layers; `image rm` frees only the blobs no image
 * uses any more. */
static void
test_cli_pull (void)
{
  g_autoptr(Home) h = new_home ();
  g_autofree char *base = ref_of ("base:1");
  g_autofree char *more = ref_of ("more:1");
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr(JsonObject) r = NULL;
  g_autofree char *digest = NULL;
  g_autofree char *source_line = NULL, *manifest_line = NULL;
  gsize from;

  make_default_image (h);
  g_assert_cmpint (banger (h, &out, &err, "image", "pull", base, "--json", NULL), ==, 0);
  r = parse_object (out);
  g_assert_cmpstr (json_object_get_string_member (r, "name"), ==, "base-1");
  g_assert_cmpstr (json_object_get_string_member (r, "source"), ==, base);
  g_assert_cmpint (json_object_get_int_member (r, "layers"), ==, 2);
  g_assert_cmpint (json_object_get_int_member (r, "blobs-fetched"), ==, 3);
  g_assert_false (json_object_get_boolean_member (r, "up-to-date"));
  digest = g_strdup (json_object_get_string_member (r, "manifest-digest"));
  g_assert_null (strstr (err, "resolving the manifest"));   /* --json: no progress */
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  g_assert_cmpint (banger (h, &out, NULL, "image", "show", "base-1", NULL), ==, 0);
  source_line = g_strdup_printf ("Source:    %s\n", base);
  manifest_line = g_strdup_printf ("Manifest:  %s\n", digest);
  g_assert_nonnull (strstr (out, source_line));
  g_assert_nonnull (strstr (out, manifest_line));
  g_clear_pointer (&out, g_free);

  from = log_size (F.r.reg_log);
  g_assert_cmpint (banger (h, &out, NULL, "image", "pull", base, NULL), ==, 0);
  g_assert_nonnull (strstr (out, "up to date"));
  g_assert_cmpuint (registry_gets (from, "/v2/base/manifests/"), ==, 1);
  g_assert_cmpuint (registry_gets (from, "/v2/base/blobs/"), ==, 0);
  g_clear_pointer (&out, g_free);

  from = log_size (F.r.reg_log);
  g_assert_cmpint (banger (h, &out, &err, "image", "pull", more, "--name", "more", NULL), ==, 0);
  g_assert_cmpuint (registry_gets (from, "/v2/more/blobs/"), ==, 2);
  /* In a pipe: one line per step, no byte counts. */
  g_assert_nonnull (strstr (err, "resolving the manifest\n"));
  g_assert_nonnull (strstr (err, "fetching 2 of 4 blobs"));
  g_assert_null (strstr (err, "\r"));
  g_assert_nonnull (strstr (out, "Pulled "));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  /* The name is taken by another reference: refused before any request. */
  from = log_size (F.r.reg_log);
  g_assert_cmpint (banger (h, NULL, &err, "image", "pull", base, "--name", "more", NULL), ==, 1);
  g_assert_nonnull (strstr (err, "choose another name with --name"));
  g_assert_cmpuint (log_count (F.r.reg_log, from, "response completed", NULL), ==, 0);
  g_clear_pointer (&err, g_free);

  /* base-1's manifest and config go; its layers stay, more uses them. */
  g_assert_cmpint (banger (h, &out, NULL, "image", "rm", "base-1", NULL), ==, 0);
  g_assert_nonnull (strstr (out, "Freed 2 cached blobs"));
  g_assert_true (cached (h, F.a_layer));
  g_assert_true (cached (h, F.b_layer));
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (banger (h, &out, NULL, "image", "rm", "more", NULL), ==, 0);
  g_assert_nonnull (strstr (out, "Freed 5 cached blobs"));
  g_assert_cmpuint (assert_cache_clean (h), ==, 0);
}

/* A pull whose last layer arrives corrupt while the first ones are
 * applied (layers are applied as their blobs arrive): refused, naming
 * the blob, and no image, no half-made tree, no bad blob left. */
static void
test_cli_pull_fails_midway (void)
{
  g_autoptr(Home) h = new_home ();
  g_autofree char *ref = ref_of ("bad:1");
  g_autofree char *images = g_build_filename (h->dir, ".local", "share", "banger", "images", NULL);
  g_autofree char *err = NULL;
  g_autoptr(GDir) d = NULL;
  const char *e;

  corrupt_bad_layer ();
  make_default_image (h);
  g_assert_cmpint (banger (h, NULL, &err, "image", "pull", ref, "--name", "bad", NULL), ==, 1);
  g_assert_nonnull (strstr (err, "does not match its digest"));
  g_assert_nonnull (strstr (err, F.corrupt_layer));
  d = g_dir_open (images, 0, NULL);
  g_assert_nonnull (d);
  while ((e = g_dir_read_name (d)) != NULL)
    g_assert_cmpstr (e, ==, "default");
  g_assert_false (cached (h, F.corrupt_layer));
  assert_cache_clean (h);
}

int
main (int argc, char **argv)
{
  const char *missing;
  int rc;

  g_test_init (&argc, &argv, NULL);
  missing = bg_test_registry_missing_tool ();
  if (missing != NULL)
    {
      g_print ("1..0 # SKIP %s is not installed (apt-get install docker-registry skopeo umoci openssl python3)\n",
               missing);
      return 0;
    }
  if (g_getenv ("BANGER_TEST_FETCH") == NULL)
    {
      g_print ("1..0 # SKIP run it with meson test (BANGER_TEST_FETCH is unset)\n");
      return 0;
    }
  fixture_start ();
  g_test_add_func ("/registry/anonymous", test_anonymous);
  g_test_add_func ("/registry/unchanged", test_unchanged);
  g_test_add_func ("/registry/shared-layers", test_shared_layers);
  g_test_add_func ("/registry/index", test_index);
  g_test_add_func ("/registry/zstd", test_zstd);
  g_test_add_func ("/registry/basic-auth", test_basic_auth);
  g_test_add_func ("/registry/wrong-credentials", test_wrong_credentials);
  g_test_add_func ("/registry/corrupt-blob", test_corrupt_blob);
  g_test_add_func ("/registry/short-blob-replaced", test_short_blob_replaced);
  g_test_add_func ("/registry/killed", test_registry_killed);
  g_test_add_func ("/registry/redirect", test_redirect);
  g_test_add_func ("/registry/insecure", test_insecure);
  g_test_add_func ("/registry/cli-pull", test_cli_pull);
  g_test_add_func ("/registry/cli-pull-fails-midway", test_cli_pull_fails_midway);
  rc = g_test_run ();
  fixture_stop ();
  return rc;
}
