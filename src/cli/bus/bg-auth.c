/* bg-auth.c: polkit asked in advance, without interaction.
 *
 * Building the default image takes minutes; a user polkit will refuse
 * should hear so before, not after. polkit lets a process ask about
 * itself, so this needs neither the mechanism nor any privilege. "Would
 * ask for a password" passes: the prompt comes with the real call.
 *
 * One D-Bus call to polkitd's Authority, with this connection's own bus
 * name as the subject (race-free, unlike a PID), rather than linking
 * polkit-gobject into every run of the CLI for this one question.
 */
#include "bg-auth.h"
#include "bg-client.h"
#include "bg-error.h"
#include "bg-group-rule.h"

#define POLKIT_BUS_NAME   "org.freedesktop.PolicyKit1"
#define POLKIT_PATH       "/org/freedesktop/PolicyKit1/Authority"
#define POLKIT_INTERFACE  "org.freedesktop.PolicyKit1.Authority"

/* What polkit would answer this process for @action, asking nobody. */
gboolean
bg_auth_query (const char    *action,
               BgAuthAnswer  *answer,
               GError       **error)
{
  g_autoptr(GDBusConnection) bus = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) local = NULL;
  gboolean authorized, challenge;

  bus = g_bus_get_sync (G_BUS_TYPE_SYSTEM, NULL, &local);
  if (bus == NULL)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_NOT_SUPPORTED,
                   "polkit is not available (%s); banger needs the system bus and polkitd running",
                   local->message);
      return FALSE;
    }
  /* CheckAuthorization (subject, action_id, details, flags, cancellation_id) */
  reply = g_dbus_connection_call_sync (bus, POLKIT_BUS_NAME, POLKIT_PATH, POLKIT_INTERFACE,
                                       "CheckAuthorization",
                                       g_variant_new_parsed ("(('system-bus-name', {'name': <%s>}), "
                                                             "%s, @a{ss} {}, uint32 0, '')",
                                                             g_dbus_connection_get_unique_name (bus), action),
                                       G_VARIANT_TYPE ("((bba{ss}))"), G_DBUS_CALL_FLAGS_NONE,
                                       -1, NULL, &local);
  if (reply == NULL)
    {
      g_dbus_error_strip_remote_error (local);
      g_set_error (error, BG_ERROR, BG_ERROR_NOT_SUPPORTED, "polkit could not check %s: %s",
                   action, local->message);
      return FALSE;
    }
  g_variant_get (reply, "((bb@a{ss}))", &authorized, &challenge, NULL);
  *answer = authorized ? BG_AUTH_YES : challenge ? BG_AUTH_ASK : BG_AUTH_NO;
  return TRUE;
}

/* What a refused user can do. Only root can read polkit's rules, so the
 * mechanism says which group banger's rule grants, if any (GroupRule,
 * which needs no authorization); the hint never names a group that does
 * not exist. */
char *
bg_auth_refusal_hint (void)
{
  g_autoptr(GVariant) reply = bg_client_call ("GroupRule", NULL, NULL, NULL);
  g_autoptr(GVariant) info = NULL;
  const char *group = "";
  gboolean exists = FALSE;

  if (reply == NULL)
    return g_strdup ("ask an administrator to grant you banger's polkit actions");
  g_variant_get (reply, "(@a{sv})", &info);
  g_variant_lookup (info, "group", "&s", &group);
  g_variant_lookup (info, "group-exists", "b", &exists);
  return bg_group_rule_hint (*group ? group : NULL, exists, g_get_user_name ());
}

gboolean
bg_auth_precheck (const char * const  *actions,
                  GError             **error)
{
  for (guint i = 0; actions[i]; i++)
    {
      BgAuthAnswer answer;

      if (!bg_auth_query (actions[i], &answer, error))
        return FALSE;
      if (answer == BG_AUTH_NO)
        {
          g_autofree char *hint = bg_auth_refusal_hint ();

          g_set_error (error, BG_ERROR, BG_ERROR_NOT_AUTHORIZED,
                       "not authorized: polkit refuses %s to you. Outside an active desktop session polkit "
                       "cannot ask for a password: %s; or run banger from your desktop session",
                       actions[i], hint);
          return FALSE;
        }
    }
  return TRUE;
}
