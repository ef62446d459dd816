/* bg-auth.c: polkit asked in advance, without interaction.
 *
 * Building the default image takes minutes; a user polkit will refuse
 * should hear so before, not after. polkit lets a process ask about
 * itself, so this needs neither the mechanism nor any privilege. "Would
 * ask for a password" passes: the prompt comes with the real call.
 */
#include <polkit/polkit.h>
#include <unistd.h>

#include "bg-auth.h"
#include "bg-error.h"

gboolean
bg_auth_precheck (const char * const  *actions,
                  GError             **error)
{
  g_autoptr(PolkitAuthority) authority = NULL;
  g_autoptr(PolkitSubject) subject = NULL;
  g_autoptr(GError) local = NULL;

  authority = polkit_authority_get_sync (NULL, &local);
  if (authority == NULL)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_NOT_SUPPORTED,
                   "polkit is not available (%s); banger needs polkitd running", local->message);
      return FALSE;
    }
  subject = polkit_unix_process_new_for_owner (getpid (), 0, getuid ());
  for (guint i = 0; actions[i]; i++)
    {
      g_autoptr(PolkitAuthorizationResult) result = NULL;

      result = polkit_authority_check_authorization_sync (authority, subject, actions[i], NULL,
                                                          POLKIT_CHECK_AUTHORIZATION_FLAGS_NONE,
                                                          NULL, &local);
      if (result == NULL)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_NOT_AUTHORIZED, "polkit could not check %s: %s",
                       actions[i], local->message);
          return FALSE;
        }
      if (!polkit_authorization_result_get_is_authorized (result) &&
          !polkit_authorization_result_get_is_challenge (result))
        {
          g_set_error (error, BG_ERROR, BG_ERROR_NOT_AUTHORIZED,
                       "not authorized: polkit refuses %s to you. Outside an active desktop session polkit "
                       "cannot ask for a password: ask an administrator to add you to the banger group "
                       "(usermod -aG banger %s, then log in again), or run banger from your desktop session",
                       actions[i], g_get_user_name ());
          return FALSE;
        }
    }
  return TRUE;
}
