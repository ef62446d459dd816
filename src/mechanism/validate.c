/* validate.c: the a{sv} options every growing method takes.
 *
 * Unknown keys are errors, not ignored: a caller that asks for something
 * this mechanism does not know must hear so, not get a silent default.
 */
#include "bg-error.h"
#include "validate.h"

gboolean
bg_validate_options (GVariant            *options,
                     const BgOptionSpec  *specs,
                     GError             **error)
{
  GVariantIter iter;
  const char *key;
  GVariant *value;

  g_variant_iter_init (&iter, options);
  while (g_variant_iter_next (&iter, "{&sv}", &key, &value))
    {
      const BgOptionSpec *spec = NULL;
      g_autoptr(GVariant) owned = value;

      for (const BgOptionSpec *s = specs; s != NULL && s->key != NULL; s++)
        if (g_str_equal (s->key, key))
          spec = s;

      if (spec == NULL)
        {
          g_autofree char *shown = g_strescape (key, NULL);
          g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                       "options: unknown key \"%.64s\"", shown);
          return FALSE;
        }
      if (!g_variant_is_of_type (value, G_VARIANT_TYPE (spec->type)))
        {
          g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                       "options: key \"%s\" must have type '%s', not '%s'",
                       key, spec->type, g_variant_get_type_string (value));
          return FALSE;
        }
    }
  return TRUE;
}
