/* The resource kinds' table, and the registry keeping its on-disk format
 * (the kind as its name) while the mechanism holds kinds as an enum. */
#include <json-glib/json-glib.h>
#include <glib/gstdio.h>

#include "bg-error.h"
#include "kind.h"
#include "registry.h"

static GPtrArray *warnings;

/* The registry skips a record it cannot read with a warning, as the
 * mechanism must start whatever /run holds: the warning is the error. */
static GLogWriterOutput
keep_warnings (GLogLevelFlags   level,
               const GLogField *fields,
               gsize            n_fields,
               gpointer         data)
{
  for (gsize i = 0; i < n_fields; i++)
    if (g_str_equal (fields[i].key, "MESSAGE") && (level & G_LOG_LEVEL_WARNING))
      g_ptr_array_add (warnings, g_strdup (fields[i].value));
  return G_LOG_WRITER_HANDLED;
}

static void
test_every_kind_round_trips_through_its_name (void)
{
  for (BgKind k = 0; k < BG_KIND_COUNT; k++)
    {
      const BgKindInfo *info = bg_kind_get_info (k);
      BgKind back = BG_KIND_COUNT;

      g_assert_nonnull (info->name);
      g_assert_nonnull (info->plural);
      g_assert_nonnull (info->noun);
      g_assert_nonnull (info->nouns);
      g_assert_true (bg_kind_from_string (info->name, &back));
      g_assert_cmpint (back, ==, k);
      for (BgKind o = 0; o < k; o++)
        {
          g_assert_cmpstr (bg_kind_to_string (o), !=, info->name);
          g_assert_cmpstr (bg_kind_get_info (o)->plural, !=, info->plural);
        }
    }
}

/* The names are the on-disk format and the D-Bus interface's words. */
static void
test_kind_names_are_the_registry_words (void)
{
  static const struct { BgKind kind; const char *name, *plural; gboolean per_user, held; } want[] = {
    { BG_KIND_VM, "vm", "vms", TRUE, FALSE },
    { BG_KIND_TAP, "tap", "taps", TRUE, FALSE },
    { BG_KIND_BRIDGE, "bridge", "bridges", FALSE, FALSE },
    { BG_KIND_LOOP, "loop", "loops", TRUE, TRUE },
    { BG_KIND_BASE, "base", "bases", FALSE, FALSE },
  };

  G_STATIC_ASSERT (G_N_ELEMENTS (want) == BG_KIND_COUNT);
  for (guint i = 0; i < G_N_ELEMENTS (want); i++)
    {
      const BgKindInfo *info = bg_kind_get_info (want[i].kind);
      g_assert_cmpstr (info->name, ==, want[i].name);
      g_assert_cmpstr (info->plural, ==, want[i].plural);
      g_assert_cmpint (info->per_user, ==, want[i].per_user);
      g_assert_cmpint (info->held_by_mechanism, ==, want[i].held);
    }
}

static void
test_unknown_kind_names_are_refused (void)
{
  static const char * const bad[] = { "", "taps", "VM", "tap ", "loop/..", "disk" };
  BgKind k = BG_KIND_TAP;

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    g_assert_false (bg_kind_from_string (bad[i], &k));
  g_assert_false (bg_kind_from_string (NULL, &k));
  g_assert_cmpint (k, ==, BG_KIND_TAP);
}

static char *
read_kind_member (const char *path)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonObject *o;

  g_assert_true (json_parser_load_from_file (parser, path, NULL));
  o = json_node_get_object (json_parser_get_root (parser));
  return g_strdup (json_object_get_string_member (o, "kind"));
}

static void
test_registry_writes_and_reads_kinds_as_names (void)
{
  g_autofree char *dir = g_dir_make_tmp ("bg-kind-XXXXXX", NULL);
  g_autofree char *reg = g_build_filename (dir, "registry", NULL);
  g_autofree char *tap_file = g_build_filename (reg, "tap", "bg-t1.json", NULL);
  g_autofree char *loop_file = g_build_filename (reg, "loop", "loop7.json", NULL);
  g_autofree char *tap_dir = g_build_filename (reg, "tap", NULL);
  g_autofree char *loop_dir = g_build_filename (reg, "loop", NULL);
  g_autoptr(BgRegistry) registry = NULL;
  g_autoptr(GPtrArray) taps = NULL;
  g_autoptr(GPtrArray) all = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *kind = NULL;
  BgResource *r;

  registry = bg_registry_open (reg, &error);
  g_assert_no_error (error);
  r = bg_registry_add (registry, BG_KIND_TAP, "bg-t1", 1000, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (bg_registry_set_state (registry, r, BG_RESOURCE_READY, &error));
  g_assert_nonnull (bg_registry_add (registry, BG_KIND_LOOP, "loop7", 1000, NULL, &error));
  g_assert_null (bg_registry_add (registry, BG_KIND_TAP, "bg-t1", 1000, NULL, &error));
  g_assert_error (error, BG_ERROR, BG_ERROR_EXISTS);
  g_assert_nonnull (strstr (error->message, "tap bg-t1"));
  g_clear_error (&error);

  kind = read_kind_member (tap_file);
  g_assert_cmpstr (kind, ==, "tap");
  g_clear_pointer (&kind, g_free);
  kind = read_kind_member (loop_file);
  g_assert_cmpstr (kind, ==, "loop");
  g_clear_pointer (&registry, bg_registry_free);

  registry = bg_registry_open (reg, &error);
  g_assert_no_error (error);
  r = bg_registry_lookup (registry, BG_KIND_TAP, "bg-t1");
  g_assert_nonnull (r);
  g_assert_cmpint (r->kind, ==, BG_KIND_TAP);
  g_assert_cmpint (r->state, ==, BG_RESOURCE_READY);
  g_assert_null (bg_registry_lookup (registry, BG_KIND_VM, "bg-t1"));
  taps = bg_registry_list (registry, BG_KIND_TAP);
  g_assert_cmpuint (taps->len, ==, 1);
  /* Sorted by the kind's name, as ListResources always listed them. */
  all = bg_registry_list_all (registry);
  g_assert_cmpuint (all->len, ==, 2);
  g_assert_cmpint (((BgResource *) all->pdata[0])->kind, ==, BG_KIND_LOOP);
  g_assert_cmpint (((BgResource *) all->pdata[1])->kind, ==, BG_KIND_TAP);

  g_assert_true (bg_registry_remove (registry, bg_registry_lookup (registry, BG_KIND_LOOP, "loop7"), NULL));
  g_assert_true (bg_registry_remove (registry, bg_registry_lookup (registry, BG_KIND_TAP, "bg-t1"), NULL));
  g_assert_cmpint (g_rmdir (tap_dir), ==, 0);
  g_assert_cmpint (g_rmdir (loop_dir), ==, 0);
  g_assert_cmpint (g_rmdir (reg), ==, 0);
  g_assert_cmpint (g_rmdir (dir), ==, 0);
}

static void
test_registry_refuses_a_record_of_an_unknown_kind (void)
{
  g_autofree char *dir = g_dir_make_tmp ("bg-kind-XXXXXX", NULL);
  g_autofree char *sub = g_build_filename (dir, "disk", NULL);
  g_autofree char *forged = g_build_filename (sub, "d0.json", NULL);
  g_autoptr(BgRegistry) registry = NULL;
  g_autoptr(GPtrArray) all = NULL;
  g_autoptr(GError) error = NULL;
  const char *text = "{ \"kind\": \"disk\", \"name\": \"d0\", \"owner\": 1000, \"created\": 0,"
                     "  \"state\": \"ready\", \"details\": \"@a{sv} {}\" }";
  gboolean named = FALSE;

  g_assert_cmpint (g_mkdir (sub, 0700), ==, 0);
  g_assert_true (g_file_set_contents (forged, text, -1, NULL));
  g_ptr_array_set_size (warnings, 0);
  registry = bg_registry_open (dir, &error);
  g_assert_no_error (error);
  all = bg_registry_list_all (registry);
  g_assert_cmpuint (all->len, ==, 0);
  for (guint i = 0; i < warnings->len; i++)
    named |= strstr (warnings->pdata[i], "d0.json: unknown resource kind \"disk\" (known: vm, tap, bridge, loop, base)")
             != NULL;
  g_assert_true (named);

  g_assert_cmpint (g_unlink (forged), ==, 0);
  g_assert_cmpint (g_rmdir (sub), ==, 0);
  g_assert_cmpint (g_rmdir (dir), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  warnings = g_ptr_array_new_with_free_func (g_free);
  g_log_set_writer_func (keep_warnings, NULL, NULL);
  g_test_add_func ("/kind/round-trips-through-its-name", test_every_kind_round_trips_through_its_name);
  g_test_add_func ("/kind/names-are-the-registry-words", test_kind_names_are_the_registry_words);
  g_test_add_func ("/kind/unknown-names-refused", test_unknown_kind_names_are_refused);
  g_test_add_func ("/kind/registry-keeps-kinds-as-names", test_registry_writes_and_reads_kinds_as_names);
  g_test_add_func ("/kind/registry-refuses-unknown-kind", test_registry_refuses_a_record_of_an_unknown_kind);
  return g_test_run ();
}
