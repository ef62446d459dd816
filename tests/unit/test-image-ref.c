/* test-image-ref: image references as docker and podman write them,
 * credentials found in podman's and docker's files, registry challenges,
 * and banger.conf's [registry] insecure list. */
#include <string.h>
#include <glib/gstdio.h>

#include "bg-config.h"
#include "bg-error.h"
#include "bg-image-ref.h"
#include "bg-registry-auth.h"

static void
test_parse (void)
{
  static const struct {
    const char *text, *registry, *repository, *tag, *digest, *name;
  } cases[] = {
    { "debian", "docker.io", "library/debian", "latest", NULL, "debian" },
    { "debian:bookworm", "docker.io", "library/debian", "bookworm", NULL, "debian-bookworm" },
    { "ubuntu:24.04", "docker.io", "library/ubuntu", "24.04", NULL, "ubuntu-24-04" },
    { "bitnami/redis:7", "docker.io", "bitnami/redis", "7", NULL, "redis-7" },
    { "docker.io/library/python:3.12", "docker.io", "library/python", "3.12", NULL, "python-3-12" },
    { "index.docker.io/node:22", "docker.io", "library/node", "22", NULL, "node-22" },
    { "ghcr.io/org/img:V1_x", "ghcr.io", "org/img", "V1_x", NULL, "img-v1-x" },
    { "localhost/app", "localhost", "app", "latest", NULL, "app" },
    { "127.0.0.1:5000/team/app:1", "127.0.0.1:5000", "team/app", "1", NULL, "app-1" },
    { "Quay.IO/a/b", "quay.io", "a/b", "latest", NULL, "b" },
    { "ghcr.io/org/img@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
      "ghcr.io", "org/img", NULL, "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "img" },
    { "host:5000/a:t@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
      "host:5000", "a", "t", "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "a-t" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(BgImageRef) ref = bg_image_ref_parse (cases[i].text, &error);
      g_autofree char *name = NULL;

      g_assert_no_error (error);
      g_assert_cmpstr (ref->registry, ==, cases[i].registry);
      g_assert_cmpstr (ref->repository, ==, cases[i].repository);
      g_assert_cmpstr (ref->tag, ==, cases[i].tag);
      g_assert_cmpstr (ref->digest, ==, cases[i].digest);
      name = bg_image_ref_default_name (ref);
      g_assert_cmpstr (name, ==, cases[i].name);
      g_assert_cmpstr (bg_image_ref_reference (ref), ==, cases[i].digest ? cases[i].digest : cases[i].tag);
    }
}

static void
test_refused (void)
{
  static const char * const bad[] = {
    "", "Debian", "debian:", "debian:-x", "a//b", "a/-b", "a/b-", "debian@sha256:abc",
    "debian@md5:0123456789abcdef0123456789abcdef", "host:99999/a", "ho_st:5000/a",
    "a/b:c:d", "debian:bookworm\n", "../x", "a/./b", "a b",
    "x@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
  };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(BgImageRef) ref = bg_image_ref_parse (bad[i], &error);

      if (ref != NULL)
        g_error ("\"%s\" was accepted", bad[i]);
      g_assert_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT);
      g_assert_true (g_str_has_prefix (error->message, "REF: "));
    }
  {
    g_autofree char *long_ref = g_strnfill (600, 'a');
    g_autoptr(GError) error = NULL;
    g_assert_null (bg_image_ref_parse (long_ref, &error));
    g_assert_nonnull (strstr (error->message, "too long"));
  }
}

static void
write_text (const char *file,
            const char *text)
{
  g_autofree char *dir = g_path_get_dirname (file);
  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  g_assert_true (g_file_set_contents (file, text, -1, NULL));
}

/* user:pw in base64 */
#define AUTH_A "dXNlcmE6cHctYQ=="    /* usera:pw-a */
#define AUTH_B "dXNlcmI6cHctYg=="    /* userb:pw-b */
#define AUTH_C "dXNlcmM6cHc6Yw=="    /* userc:pw:c */

static void
test_credentials (void)
{
  g_autofree char *home = g_dir_make_tmp ("banger-auth-XXXXXX", NULL);
  g_autofree char *runtime = g_build_filename (home, "run", NULL);
  g_autofree char *podman_run = g_build_filename (runtime, "containers", "auth.json", NULL);
  g_autofree char *podman_cfg = g_build_filename (home, ".config", "containers", "auth.json", NULL);
  g_autofree char *docker = g_build_filename (home, ".docker", "config.json", NULL);
  g_autoptr(GError) error = NULL;
  BgRegistryCredentials *c;

  g_setenv ("HOME", home, TRUE);
  g_setenv ("XDG_RUNTIME_DIR", runtime, TRUE);
  g_unsetenv ("XDG_CONFIG_HOME");

  /* None anywhere: anonymous, no error. */
  g_assert_null (bg_registry_credentials_find ("ghcr.io", "org/img", &error));
  g_assert_no_error (error);

  write_text (docker, "{\"auths\": {\"https://index.docker.io/v1/\": {\"auth\": \"" AUTH_A "\"},"
                      " \"ghcr.io\": {\"auth\": \"" AUTH_C "\"}}}");
  c = bg_registry_credentials_find ("docker.io", "library/debian", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (c->username, ==, "usera");
  g_assert_cmpstr (c->password, ==, "pw-a");
  g_assert_cmpstr (c->file, ==, docker);
  bg_registry_credentials_free (c);
  /* A password may hold a colon; the user name may not. */
  c = bg_registry_credentials_find ("ghcr.io", "org/img", &error);
  g_assert_cmpstr (c->username, ==, "userc");
  g_assert_cmpstr (c->password, ==, "pw:c");
  bg_registry_credentials_free (c);

  /* podman's file comes first; a namespace-scoped key beats the host's. */
  write_text (podman_cfg, "{\"auths\": {\"ghcr.io\": {\"auth\": \"" AUTH_A "\"},"
                          " \"ghcr.io/org\": {\"auth\": \"" AUTH_B "\"}}}");
  c = bg_registry_credentials_find ("ghcr.io", "org/img", &error);
  g_assert_cmpstr (c->username, ==, "userb");
  bg_registry_credentials_free (c);
  c = bg_registry_credentials_find ("ghcr.io", "orgx/img", &error);
  g_assert_cmpstr (c->username, ==, "usera");
  bg_registry_credentials_free (c);
  write_text (podman_run, "{\"auths\": {\"ghcr.io\": {\"auth\": \"" AUTH_C "\"}}}");
  c = bg_registry_credentials_find ("ghcr.io", "org/img", &error);
  g_assert_cmpstr (c->username, ==, "userc");
  g_assert_cmpstr (c->file, ==, podman_run);
  bg_registry_credentials_free (c);

  /* Broken entries and files: an error naming the file, never its text. */
  write_text (podman_run, "{\"auths\": {\"ghcr.io\": {\"auth\": \"bm9jb2xvbg==\"}}}");  /* "nocolon" */
  g_assert_null (bg_registry_credentials_find ("ghcr.io", "org/img", &error));
  g_assert_nonnull (strstr (error->message, podman_run));
  g_assert_null (strstr (error->message, "bm9jb2xvbg"));
  g_clear_error (&error);
  write_text (podman_run, "{\"auths\": {\"ghcr.io\": {\"auth\": \"" AUTH_C "\"");
  g_assert_null (bg_registry_credentials_find ("ghcr.io", "org/img", &error));
  g_assert_nonnull (strstr (error->message, "not a JSON object"));
  g_assert_null (strstr (error->message, AUTH_C));
  g_clear_error (&error);

  {
    const char *argv[] = { "rm", "-rf", home, NULL };
    g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL));
  }
}

static void
test_challenge (void)
{
  g_autoptr(BgRegistryChallenge) b = bg_registry_challenge_parse (
    "Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\",scope=\"repository:library/debian:pull\"");
  g_autoptr(BgRegistryChallenge) basic = bg_registry_challenge_parse ("Basic realm=\"Registry Realm\"");

  g_assert_cmpstr (b->scheme, ==, "bearer");
  g_assert_cmpstr (b->realm, ==, "https://auth.docker.io/token");
  g_assert_cmpstr (b->service, ==, "registry.docker.io");
  g_assert_cmpstr (b->scope, ==, "repository:library/debian:pull");
  g_assert_cmpstr (basic->scheme, ==, "basic");
  g_assert_null (bg_registry_challenge_parse ("Negotiate abc"));
  g_assert_null (bg_registry_challenge_parse ("Bearer service=\"x\""));   /* no realm */
  g_assert_null (bg_registry_challenge_parse (NULL));
}

static void
test_config_insecure (void)
{
  g_autofree char *dir = g_dir_make_tmp ("banger-conf-XXXXXX", NULL);
  g_autofree char *file = g_build_filename (dir, "banger.conf", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(BgConfig) config = NULL;

  write_text (file, "[registry]\ninsecure = registry.lan:5000; Mirror.LAN ;\n");
  config = bg_config_load (file, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_strv_length (config->insecure_registries), ==, 2);
  g_assert_cmpstr (config->insecure_registries[0], ==, "registry.lan:5000");
  g_assert_cmpstr (config->insecure_registries[1], ==, "mirror.lan");
  g_assert_cmpuint (config->warnings->len, ==, 0);
  g_clear_pointer (&config, bg_config_free);

  write_text (file, "[registry]\ninsecure = http://x\n");
  g_assert_null (bg_config_load (file, &error));
  g_assert_nonnull (strstr (error->message, "insecure"));
  g_assert_nonnull (strstr (error->message, "host:port"));
  g_clear_error (&error);
  write_text (file, "[registry]\ninsecure = x:0\n");
  g_assert_null (bg_config_load (file, &error));
  g_clear_error (&error);

  g_unlink (file);
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/image-ref/parse", test_parse);
  g_test_add_func ("/image-ref/refused", test_refused);
  g_test_add_func ("/image-ref/credentials", test_credentials);
  g_test_add_func ("/image-ref/challenge", test_challenge);
  g_test_add_func ("/image-ref/config-insecure", test_config_insecure);
  return g_test_run ();
}
