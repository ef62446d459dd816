#include <gio/gio.h>
#include "bg-error.h"
#include "bg-names.h"

static void
test_name_table (void)
{
  static const struct { const char *name; gboolean ok; } cases[] = {
    { "a", TRUE },
    { "0", TRUE },
    { "dev", TRUE },
    { "dev-box-2", TRUE },
    { "9lives", TRUE },
    { "a-", TRUE },
    { "abcdefghijklmnopqrstuvwxyz01234", TRUE },   /* 31 */
    { "abcdefghijklmnopqrstuvwxyz012345", FALSE }, /* 32 */
    { "", FALSE },
    { "-dev", FALSE },
    { "Dev", FALSE },
    { "dev.box", FALSE },
    { "dev/box", FALSE },
    { "../x", FALSE },
    { ".", FALSE },
    { "..", FALSE },
    { "dev box", FALSE },
    { "dev_box", FALSE },
    { "dev\n", FALSE },
    { "d\xc3\xa9v", FALSE },
    { "dev\t", FALSE },
    { "--help", FALSE },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      gboolean ok = bg_name_validate ("name", cases[i].name, &error);

      if (ok != cases[i].ok)
        g_error ("name \"%s\": expected %s", cases[i].name, cases[i].ok ? "valid" : "invalid");
      if (!ok)
        {
          g_assert_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT);
          /* The message names the field and shows the rule. */
          g_assert_true (g_str_has_prefix (error->message, "name: "));
          g_assert_nonnull (strstr (error->message, BG_NAME_RULE));
        }
    }
  g_assert_false (bg_name_is_valid (NULL));
}

static void
test_name_error_escapes_control_characters (void)
{
  g_autoptr(GError) error = NULL;

  g_assert_false (bg_name_validate ("vm_name", "x\n\x1b[31mevil", &error));
  g_assert_null (strchr (error->message, '\n'));
  g_assert_null (strchr (error->message, '\x1b'));
  g_assert_true (g_str_has_prefix (error->message, "vm_name: "));
}

static void
test_error_domain_maps_to_dbus_names (void)
{
  g_autoptr(GError) error = g_error_new (BG_ERROR, BG_ERROR_NOT_OWNER, "nope");
  g_autofree char *name = g_dbus_error_encode_gerror (error);

  g_assert_cmpstr (name, ==, "org.banger.Mechanism1.Error.NotOwner");
  g_assert_cmpstr (bg_error_code_nick (BG_ERROR_INVALID_ARGUMENT), ==, "InvalidArgument");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/names/table", test_name_table);
  g_test_add_func ("/names/error-escapes-control-characters", test_name_error_escapes_control_characters);
  g_test_add_func ("/errors/dbus-names", test_error_domain_maps_to_dbus_names);
  return g_test_run ();
}
