/* harness-call.c: calling the mechanism as a given user, through
 * bg-test-call, and reading what it answered.
 * See harness.h. */
#include <sys/wait.h>

#include "harness-private.h"

void
bg_call_result_free (BgCallResult *r)
{
  if (r == NULL)
    return;
  g_free (r->error_name);
  g_free (r->message);
  g_free (r->reply);
  g_free (r);
}

/* A member of the a{sv} a call answered with (CreateTap's, say), as text:
 * strings as they are, other values printed. */
char *
bg_call_result_lookup (BgCallResult *r,
                       const char   *key)
{
  g_autoptr(GVariant) reply = NULL, dict = NULL, value = NULL;

  g_assert_true (r->ok);
  reply = g_variant_parse (NULL, r->reply, NULL, NULL, NULL);
  g_assert_nonnull (reply);
  dict = g_variant_get_child_value (reply, 0);
  value = g_variant_lookup_value (dict, key, NULL);
  if (value == NULL)
    return NULL;
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_STRING))
    return g_variant_dup_string (value, NULL);
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT32))
    return g_strdup_printf ("%u", g_variant_get_uint32 (value));
  return g_variant_print (value, FALSE);
}

BgCallResult *
bg_harness_call (BgHarness  *h,
                 const char *user,
                 const char *method,
                 const char *args,
                 ...)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *out = NULL;
  g_auto(GStrv) envp = g_environ_setenv (g_get_environ (), "DBUS_SYSTEM_BUS_ADDRESS", h->bus_address, TRUE);
  g_autoptr(GError) error = NULL;
  BgCallResult *r = g_new0 (BgCallResult, 1);
  const char *extra;
  char *nl;
  int status;
  va_list ap;

  g_ptr_array_add (argv, g_strdup (g_getenv ("BANGER_TEST_CALL")));
  if (user)
    g_ptr_array_add (argv, g_strdup_printf ("--user=%s", user));
  va_start (ap, args);
  while ((extra = va_arg (ap, const char *)) != NULL)
    g_ptr_array_add (argv, g_strdup (extra));
  va_end (ap);
  g_ptr_array_add (argv, g_strdup (method));
  if (args)
    g_ptr_array_add (argv, g_strdup (args));
  g_ptr_array_add (argv, NULL);

  if (!g_spawn_sync (NULL, (char **) argv->pdata, envp, G_SPAWN_DEFAULT, NULL, NULL, &out, NULL, &status, &error))
    g_error ("%s", error->message);
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    g_error ("bg-test-call %s failed (status %d)", method, status);

  nl = strchr (out, '\n');
  if (g_str_has_prefix (out, "OK\n"))
    {
      r->ok = TRUE;
      r->reply = g_strstrip (g_strdup (nl + 1));
    }
  else if (g_str_has_prefix (out, "ERROR "))
    {
      r->error_name = g_strndup (out + 6, nl - out - 6);
      r->message = g_strstrip (g_strdup (nl + 1));
    }
  else if (g_str_has_prefix (out, "OPEN-FAILED"))
    r->open_failed = TRUE;
  else
    g_error ("unexpected output from bg-test-call: %s", out);
  return r;
}
