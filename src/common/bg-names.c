/* bg-names.c: the one rule for VM and image names, shared by both binaries.
 *
 * Names end up in file names, interface names, DNS labels and polkit
 * details, so the rule is the intersection of what all of those accept:
 * [a-z0-9][a-z0-9-]{0,30}. No dots or slashes (paths), no uppercase (DNS is
 * case-insensitive, files are not), no leading dash (argv options).
 */
#include "bg-error.h"
#include "bg-names.h"

gboolean
bg_name_is_valid (const char *name)
{
  gsize len;

  if (name == NULL)
    return FALSE;

  len = strlen (name);
  if (len == 0 || len > BG_NAME_MAX_LEN)
    return FALSE;

  for (gsize i = 0; i < len; i++)
    {
      char c = name[i];
      gboolean alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');

      if (alnum)
        continue;
      if (c == '-' && i > 0)
        continue;
      return FALSE;
    }

  return TRUE;
}

/* Validates @name and, on failure, says which @field was wrong, what it
 * was (escaped, so control characters cannot forge output) and the rule. */
gboolean
bg_name_validate (const char  *field,
                  const char  *name,
                  GError     **error)
{
  g_autofree char *shown = NULL;

  if (bg_name_is_valid (name))
    return TRUE;

  if (name == NULL || *name == '\0')
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                   "%s: must not be empty; use " BG_NAME_RULE, field);
      return FALSE;
    }

  shown = g_strescape (name, NULL);
  if (strlen (shown) > 64)
    strcpy (shown + 61, "...");
  g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
               "%s: invalid name \"%s\"; use " BG_NAME_RULE, field, shown);
  return FALSE;
}
