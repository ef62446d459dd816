/* test-oci-manifest: OCI indexes, manifests and configs, good and broken,
 * as a table: each broken document must be refused with an error that
 * names the field at fault. */
#include "bg-error.h"
#include "bg-oci-manifest.h"

#define A64 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define B64 "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define C64 "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
#define DA "\"sha256:" A64 "\""
#define DB "\"sha256:" B64 "\""
#define DC "\"sha256:" C64 "\""

typedef enum { INDEX, MANIFEST, CONFIG } Kind;

typedef struct {
  const char *name;
  Kind        kind;
  const char *doc;
  const char *error;   /* NULL: accepted; else a part of the message */
  const char *expect;  /* accepted: the selected digest / first layer's / Cmd[0] */
} Case;

#define OCI_MANIFEST(layers) \
  "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\"," \
  "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":" DA ",\"size\":100}," \
  "\"layers\":[" layers "]}"
#define GZ_LAYER(d) "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":" d ",\"size\":5}"
#define CONFIG_DOC(os, arch, config) \
  "{\"os\":\"" os "\",\"architecture\":\"" arch "\",\"config\":" config "," \
  "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[" DB "]}}"

static const Case cases[] = {
  /* indexes */
  { "index-multiarch", INDEX,
    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":["
    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":" DA ",\"size\":10,"
    "\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\",\"variant\":\"v8\"}},"
    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":" DB ",\"size\":10,"
    "\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}},"
    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":" DC ",\"size\":10,"
    "\"platform\":{\"os\":\"unknown\",\"architecture\":\"unknown\"}}]}", NULL, "sha256:" B64 },
  { "index-docker-list", INDEX,
    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.list.v2+json\","
    "\"manifests\":[{\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\",\"digest\":" DC
    ",\"size\":10,\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}}]}", NULL, "sha256:" C64 },
  { "index-layout-no-platform", INDEX,
    "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
    "\"digest\":" DA ",\"size\":10,\"annotations\":{\"org.opencontainers.image.ref.name\":\"latest\"}}]}",
    NULL, "sha256:" A64 },
  { "index-no-amd64", INDEX,
    "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
    "\"digest\":" DA ",\"size\":10,\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\"}}]}",
    "no linux/amd64 image (it has: linux/arm64)", NULL },
  { "index-schema1", INDEX, "{\"schemaVersion\":1,\"manifests\":[]}", "index.schemaVersion", NULL },
  { "index-wrong-type", INDEX,
    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"manifests\":[]}",
    "index.mediaType", NULL },
  { "index-bad-digest", INDEX,
    "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
    "\"digest\":\"sha256:../../etc/passwd\",\"size\":10,\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}}]}",
    "index.manifests[0].digest", NULL },
  { "index-sha512", INDEX,
    "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
    "\"digest\":\"sha512:" A64 A64 "\",\"size\":10,\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}}]}",
    "index.manifests[0].digest", NULL },
  { "index-entry-not-manifest", INDEX,
    "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/x-tar\","
    "\"digest\":" DA ",\"size\":10,\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}}]}",
    "index.manifests[0].mediaType", NULL },
  { "index-not-json", INDEX, "{\"schemaVersion\":2,", "not valid JSON", NULL },
  { "index-array", INDEX, "[1,2]", "not a JSON object", NULL },
  /* manifests */
  { "manifest-oci", MANIFEST, OCI_MANIFEST (GZ_LAYER (DB) "," GZ_LAYER (DC)), NULL, "sha256:" B64 },
  { "manifest-docker", MANIFEST,
    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\","
    "\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\",\"digest\":" DA ",\"size\":100},"
    "\"layers\":[{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\",\"digest\":" DC ",\"size\":7}]}",
    NULL, "sha256:" C64 },
  { "manifest-zstd", MANIFEST,
    OCI_MANIFEST ("{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+zstd\",\"digest\":" DB ",\"size\":5}"),
    NULL, "sha256:" B64 },
  { "manifest-no-layers", MANIFEST, OCI_MANIFEST (""), "manifest.layers: empty", NULL },
  { "manifest-layer-type", MANIFEST,
    OCI_MANIFEST ("{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+bzip2\",\"digest\":" DB ",\"size\":5}"),
    "manifest.layers[0].mediaType", NULL },
  { "manifest-negative-size", MANIFEST,
    OCI_MANIFEST ("{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":" DB ",\"size\":-1}"),
    "manifest.layers[0].size", NULL },
  { "manifest-huge-size", MANIFEST,
    OCI_MANIFEST ("{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":" DB ",\"size\":1e30}"),
    "manifest.layers[0].size", NULL },
  { "manifest-string-size", MANIFEST,
    OCI_MANIFEST ("{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":" DB ",\"size\":\"5\"}"),
    "manifest.layers[0].size", NULL },
  { "manifest-upper-hex", MANIFEST,
    OCI_MANIFEST ("{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"sha256:"
                  "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\",\"size\":5}"),
    "manifest.layers[0].digest", NULL },
  { "manifest-artifact", MANIFEST,
    "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/vnd.cncf.helm.config.v1+json\","
    "\"digest\":" DA ",\"size\":10},\"layers\":[" GZ_LAYER (DB) "]}", "manifest.config.mediaType", NULL },
  { "manifest-is-index", MANIFEST,
    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[]}",
    "manifest.mediaType", NULL },
  { "manifest-no-config", MANIFEST, "{\"schemaVersion\":2,\"layers\":[" GZ_LAYER (DB) "]}",
    "manifest.config: missing", NULL },
  /* configs */
  { "config-full", CONFIG,
    CONFIG_DOC ("linux", "amd64", "{\"Entrypoint\":null,\"Cmd\":[\"/bin/sh\",\"-c\",\"echo hi\"],"
                "\"Env\":[\"PATH=/usr/bin:/bin\"],\"WorkingDir\":\"/srv\",\"User\":\"1000:1000\"}"),
    NULL, "/bin/sh" },
  { "config-arm64", CONFIG, CONFIG_DOC ("linux", "arm64", "{}"), "linux/arm64", NULL },
  { "config-windows", CONFIG, CONFIG_DOC ("windows", "amd64", "{}"), "windows/amd64", NULL },
  { "config-env-no-equals", CONFIG, CONFIG_DOC ("linux", "amd64", "{\"Env\":[\"PATH\"]}"),
    "config.config.Env[0]", NULL },
  { "config-cmd-number", CONFIG, CONFIG_DOC ("linux", "amd64", "{\"Cmd\":[\"ls\",3]}"),
    "config.config.Cmd[1]", NULL },
  { "config-relative-workdir", CONFIG, CONFIG_DOC ("linux", "amd64", "{\"WorkingDir\":\"srv\"}"),
    "config.config.WorkingDir", NULL },
  { "config-no-diff-ids", CONFIG,
    "{\"os\":\"linux\",\"architecture\":\"amd64\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}",
    "config.rootfs", NULL },
  { "config-bad-diff-id", CONFIG,
    "{\"os\":\"linux\",\"architecture\":\"amd64\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"md5:x\"]}}",
    "config.rootfs.diff_ids[0]", NULL },
};

static void
test_case (gconstpointer data)
{
  const Case *c = data;
  g_autoptr(GBytes) doc = g_bytes_new_static (c->doc, strlen (c->doc));
  g_autoptr(GError) error = NULL;
  const char *got = NULL;
  g_autoptr(BgOciDescriptor) d = NULL;
  g_autoptr(BgOciManifest) m = NULL;
  g_autoptr(BgOciConfig) cfg = NULL;

  switch (c->kind)
    {
    case INDEX:
      if ((d = bg_oci_index_select (doc, &error)))
        got = d->digest;
      break;
    case MANIFEST:
      if ((m = bg_oci_manifest_parse (doc, &error)))
        got = ((BgOciDescriptor *) m->layers->pdata[0])->digest;
      break;
    case CONFIG:
      if ((cfg = bg_oci_config_parse (doc, &error)))
        got = cfg->cmd[0];
      break;
    }
  if (c->error == NULL)
    {
      g_assert_no_error (error);
      g_assert_cmpstr (got, ==, c->expect);
    }
  else
    {
      g_assert_nonnull (error);
      g_assert_null (got);
      if (strstr (error->message, c->error) == NULL)
        g_error ("%s: \"%s\" does not say \"%s\"", c->name, error->message, c->error);
    }
}

static void
test_manifest_fields (void)
{
  static const char doc[] = OCI_MANIFEST (GZ_LAYER (DB) ","
    "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":" DC ",\"size\":9}");
  g_autoptr(GBytes) b = g_bytes_new_static (doc, sizeof doc - 1);
  g_autoptr(BgOciManifest) m = bg_oci_manifest_parse (b, NULL);
  BgOciDescriptor *l1;

  g_assert_nonnull (m);
  g_assert_cmpstr (m->config->digest, ==, "sha256:" A64);
  g_assert_cmpuint (m->config->size, ==, 100);
  g_assert_cmpuint (m->layers->len, ==, 2);
  g_assert_cmpint (((BgOciDescriptor *) m->layers->pdata[0])->compression, ==, BG_OCI_COMPRESSION_GZIP);
  l1 = m->layers->pdata[1];
  g_assert_cmpint (l1->compression, ==, BG_OCI_COMPRESSION_NONE);
  g_assert_cmpuint (l1->size, ==, 9);
}

static void
test_config_fields (void)
{
  static const char doc[] = CONFIG_DOC ("linux", "amd64",
    "{\"Entrypoint\":[\"/entry\"],\"Env\":[\"A=1\",\"B=x=y\"],\"WorkingDir\":\"\",\"User\":\"nobody\"}");
  g_autoptr(GBytes) b = g_bytes_new_static (doc, sizeof doc - 1);
  g_autoptr(BgOciConfig) c = bg_oci_config_parse (b, NULL);

  g_assert_nonnull (c);
  g_assert_cmpstr (c->entrypoint[0], ==, "/entry");
  g_assert_null (c->cmd);
  g_assert_cmpuint (g_strv_length (c->env), ==, 2);
  g_assert_cmpstr (c->env[1], ==, "B=x=y");
  g_assert_null (c->working_dir);   /* "" is no working directory */
  g_assert_cmpstr (c->user, ==, "nobody");
  g_assert_cmpstr (c->diff_ids[0], ==, "sha256:" B64);
}

static void
test_oversized_refused_before_parse (void)
{
  gsize len = BG_OCI_MANIFEST_MAX + 1;
  char *big = g_malloc (len);
  g_autoptr(GBytes) b = NULL;
  g_autoptr(GError) error = NULL;

  memset (big, ' ', len);
  big[0] = '{';
  big[len - 1] = '}';
  b = g_bytes_new_take (big, len);
  g_assert_null (bg_oci_manifest_parse (b, &error));
  g_assert_nonnull (strstr (error->message, "more than"));
}

static void
test_doc_detect (void)
{
  static const char idx[] = "{\"schemaVersion\":2,\"manifests\":[]}";
  static const char man[] = OCI_MANIFEST (GZ_LAYER (DB));
  static const char odd[] = "{\"schemaVersion\":2,\"mediaType\":\"text/html\"}";
  g_autoptr(GBytes) a = g_bytes_new_static (idx, sizeof idx - 1);
  g_autoptr(GBytes) b = g_bytes_new_static (man, sizeof man - 1);
  g_autoptr(GBytes) c = g_bytes_new_static (odd, sizeof odd - 1);
  g_autoptr(GError) error = NULL;

  g_assert_cmpint (bg_oci_doc_detect (a, NULL), ==, BG_OCI_DOC_INDEX);
  g_assert_cmpint (bg_oci_doc_detect (b, NULL), ==, BG_OCI_DOC_MANIFEST);
  g_assert_cmpint (bg_oci_doc_detect (c, &error), ==, BG_OCI_DOC_UNKNOWN);
  g_assert_nonnull (strstr (error->message, "text/html"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/oci-manifest/table/%s", cases[i].name);
      g_test_add_data_func (path, &cases[i], test_case);
    }
  g_test_add_func ("/oci-manifest/manifest-fields", test_manifest_fields);
  g_test_add_func ("/oci-manifest/config-fields", test_config_fields);
  g_test_add_func ("/oci-manifest/oversized-refused-before-parse", test_oversized_refused_before_parse);
  g_test_add_func ("/oci-manifest/doc-detect", test_doc_detect);
  return g_test_run ();
}
