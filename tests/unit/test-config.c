#include <gio/gio.h>
#include <glib/gstdio.h>

#include "bg-config.h"
#include "bg-error.h"

static char *
write_conf (const char *text)
{
  g_autoptr(GError) error = NULL;
  char *path = NULL;
  int fd = g_file_open_tmp ("banger-conf-XXXXXX.conf", &path, &error);

  g_assert_no_error (error);
  close (fd);
  g_assert_true (g_file_set_contents (path, text, -1, NULL));
  return path;
}

static BgConfig *
load_text (const char *text, GError **error)
{
  g_autofree char *path = write_conf (text);
  BgConfig *config = bg_config_load (path, error);

  g_unlink (path);
  return config;
}

static void
test_config_missing_file_gives_defaults (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BgConfig) config = bg_config_load ("/nonexistent/banger.conf", &error);

  g_assert_no_error (error);
  g_assert_cmpuint (config->cpus, ==, BG_DEFAULT_CPUS);
  g_assert_cmpuint (config->memory_mib, ==, BG_DEFAULT_MEMORY_MIB);
  g_assert_cmpuint (config->disk_bytes, ==, BG_DEFAULT_DISK_BYTES);
  g_assert_cmpstr (config->image, ==, "default");
  g_assert_cmpint (config->disk_mode, ==, BG_DISK_MODE_AUTO);
  g_assert_true (g_str_has_suffix (config->ssh_key, "/banger/ssh/id_ed25519"));
  g_assert_cmpuint (g_strv_length (config->sync_paths), ==, 0);
  g_assert_cmpuint (config->warnings->len, ==, 0);
}

static void
test_config_good_values (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BgConfig) config = load_text (
      "# banger.conf\n"
      "[vm]\n"
      "cpus = 4\n"
      "memory = 2048\n"
      "disk-size = 20G\n"
      "image = bookworm-dev\n"
      "disk-mode = copy\n"
      "\n[guest]\nuser = alice\n"
      "[ssh]\nkey = /keys/id\nauthorized-keys = ~/.ssh/id_ed25519.pub;/etc/extra.pub\n"
      "[sync]\npaths = ~/.gitconfig; ~/.config/nvim\nmax-size = 1M\n", &error);

  g_assert_no_error (error);
  g_assert_cmpuint (config->cpus, ==, 4);
  g_assert_cmpuint (config->memory_mib, ==, 2048);
  g_assert_cmpuint (config->disk_bytes, ==, G_GUINT64_CONSTANT (20) << 30);
  g_assert_cmpstr (config->image, ==, "bookworm-dev");
  g_assert_cmpint (config->disk_mode, ==, BG_DISK_MODE_COPY);
  g_assert_cmpstr (config->guest_user, ==, "alice");
  g_assert_cmpstr (config->ssh_key, ==, "/keys/id");
  g_assert_cmpuint (g_strv_length (config->authorized_keys), ==, 2);
  g_assert_true (g_path_is_absolute (config->authorized_keys[0]));
  g_assert_true (g_str_has_suffix (config->authorized_keys[0], "/.ssh/id_ed25519.pub"));
  g_assert_cmpuint (g_strv_length (config->sync_paths), ==, 2);
  g_assert_true (g_str_has_suffix (config->sync_paths[1], "/.config/nvim"));
  g_assert_cmpuint (config->sync_limit, ==, 1 << 20);
  g_assert_cmpuint (config->warnings->len, ==, 0);
}

static void
test_config_unknown_keys_warn (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BgConfig) config = load_text ("[vm]\ncpus = 2\ncolour = blue\n\n[future]\nx = 1\n", &error);

  g_assert_no_error (error);
  g_assert_cmpuint (config->warnings->len, ==, 2);
  g_assert_nonnull (strstr (config->warnings->pdata[0], ":3: unknown key 'colour' in [vm]"));
  g_assert_nonnull (strstr (config->warnings->pdata[1], ":5: unknown group [future]"));
}

static void
test_config_bad_values_name_key_and_line (void)
{
  static const struct { const char *text; const char *expect; } cases[] = {
    { "[vm]\n\ncpus = three\n", ":3: [vm] cpus: \"three\" is not a whole number" },
    { "[vm]\ncpus = 3\n", ":2: [vm] cpus: " },
    { "[vm]\ncpus = 0\n", ":2: [vm] cpus: " },
    { "[vm]\ncpus = 64\n", ":2: [vm] cpus: " },
    { "[vm]\nmemory = 64\n", ":2: [vm] memory: " },
    { "[vm]\nmemory = 99999999999999999999\n", ":2: [vm] memory: " },
    { "[vm]\ndisk-size = 1Q\n", ":2: [vm] disk-size: invalid size \"1Q\"" },
    { "[vm]\ndisk-size = 1K\n", ":2: [vm] disk-size: size is out of range" },
    { "[vm]\nimage = ../etc\n", ":2: [vm] image: " },
    { "[vm]\ndisk-mode = magic\n", ":2: [vm] disk-mode: \"magic\" is not one of" },
    { "[guest]\nuser = Root\n", ":2: [guest] user: " },
    { "[ssh]\nkey = relative/key\n", ":2: [ssh] key: " },
    { "[sync]\npaths = .gitconfig\n", ":2: [sync] paths: " },
    { "[sync]\nmax-size = lots\n", ":2: [sync] max-size: " },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(BgConfig) config = load_text (cases[i].text, &error);

      g_assert_null (config);
      g_assert_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT);
      if (strstr (error->message, cases[i].expect) == NULL)
        g_error ("case %u: \"%s\" does not contain \"%s\"", i, error->message, cases[i].expect);
      g_assert_nonnull (strstr (error->message, ".conf:"));
    }
}

static void
test_config_syntax_error_names_file (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BgConfig) config = load_text ("[vm\ncpus 2\n", &error);

  g_assert_null (config);
  g_assert_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, ".conf: "));
}

static void
test_size_parsing (void)
{
  static const struct { const char *in; guint64 out; gboolean ok; } cases[] = {
    { "0", 0, TRUE },
    { "512", 512, TRUE },
    { "512B", 512, TRUE },
    { "4K", 4096, TRUE },
    { "8G", G_GUINT64_CONSTANT (8) << 30, TRUE },
    { "8GiB", G_GUINT64_CONSTANT (8) << 30, TRUE },
    { "8gb", G_GUINT64_CONSTANT (8) << 30, TRUE },
    { "2T", G_GUINT64_CONSTANT (2) << 40, TRUE },
    { "1Q", 0, FALSE },
    { "", 0, FALSE },
    { "G", 0, FALSE },
    { "-1G", 0, FALSE },
    { " 1G", 0, FALSE },
    { "1.5G", 0, FALSE },
    { "1GG", 0, FALSE },
    { "99999999999999999999", 0, FALSE },
    { "99999999999T", 0, FALSE },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      guint64 v = 0;
      gboolean ok = bg_parse_size (cases[i].in, &v, &error);

      if (ok != cases[i].ok)
        g_error ("size \"%s\": expected %s", cases[i].in, cases[i].ok ? "ok" : "error");
      if (ok)
        g_assert_cmpuint (v, ==, cases[i].out);
      else
        g_assert_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT);
    }
}

static void
test_size_formatting (void)
{
  g_autofree char *a = bg_format_size (G_GUINT64_CONSTANT (8) << 30);
  g_autofree char *b = bg_format_size (1536 << 20);
  g_autofree char *c = bg_format_size (1000);

  g_assert_cmpstr (a, ==, "8G");
  g_assert_cmpstr (b, ==, "1536M");
  g_assert_cmpstr (c, ==, "1000");
}

static void
test_cpus_rule (void)
{
  g_assert_true (bg_config_validate_cpus ("cpus", 1, NULL));
  g_assert_true (bg_config_validate_cpus ("cpus", 2, NULL));
  g_assert_true (bg_config_validate_cpus ("cpus", 32, NULL));
  g_assert_false (bg_config_validate_cpus ("cpus", 3, NULL));
  g_assert_false (bg_config_validate_cpus ("cpus", 0, NULL));
  g_assert_false (bg_config_validate_cpus ("cpus", 34, NULL));
  g_assert_false (bg_config_validate_cpus ("cpus", 1000, NULL));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/config/missing-file-gives-defaults", test_config_missing_file_gives_defaults);
  g_test_add_func ("/config/good-values", test_config_good_values);
  g_test_add_func ("/config/unknown-keys-warn", test_config_unknown_keys_warn);
  g_test_add_func ("/config/bad-values-name-key-and-line", test_config_bad_values_name_key_and_line);
  g_test_add_func ("/config/syntax-error-names-file", test_config_syntax_error_names_file);
  g_test_add_func ("/config/size-parsing", test_size_parsing);
  g_test_add_func ("/config/size-formatting", test_size_formatting);
  g_test_add_func ("/config/cpus-rule", test_cpus_rule);
  return g_test_run ();
}
