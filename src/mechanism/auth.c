/* auth.c: the one place that decides who may do what.
 *
 * Every method (but Ping) goes through bg_call_authorize(): the caller's
 * uid is asked of the bus (GetConnectionUnixUser), never taken from an
 * argument; then polkit is asked, asynchronously so a password prompt in
 * one session never blocks other callers, with the calling bus name as the
 * subject. User interaction is allowed only if the message carries
 * ALLOW_INTERACTIVE_AUTHORIZATION. Only then does the method's work run.
 *
 * Acting on a resource another user owns additionally needs
 * org.banger.admin (bg_call_check_owner); refused, that is NotOwner.
 */
#include "bg-error.h"
#include "auth.h"
#include "daemon.h"

#define ADMIN_ACTION "org.banger.admin"

BgCall *
bg_call_new (BgDaemon              *daemon,
             GDBusMethodInvocation *invocation)
{
  BgCall *call = g_new0 (BgCall, 1);

  call->daemon = daemon;
  call->invocation = g_object_ref (invocation);
  call->caller_uid = (uid_t) -1;
  bg_daemon_hold (daemon);
  return call;
}

void
bg_call_set_data (BgCall         *call,
                  gpointer        data,
                  GDestroyNotify  data_free)
{
  call->data = data;
  call->data_free = data_free;
}

static void
call_free (BgCall *call)
{
  BgDaemon *daemon = call->daemon;

  if (call->data_free)
    call->data_free (call->data);
  g_clear_object (&call->invocation);
  g_clear_object (&call->details);
  g_free (call->action);
  g_free (call->target_kind);
  g_free (call->target_name);
  g_free (call);
  bg_daemon_release (daemon);
}

void
bg_call_return_value (BgCall   *call,
                      GVariant *value)
{
  g_dbus_method_invocation_return_value (call->invocation, value);
  call_free (call);
}

/* Takes @error. */
void
bg_call_return_error (BgCall *call,
                      GError *error)
{
  g_debug ("%s from uid %d failed: %s",
           g_dbus_method_invocation_get_method_name (call->invocation),
           (int) call->caller_uid, error->message);
  g_dbus_method_invocation_return_gerror (call->invocation, error);
  g_error_free (error);
  call_free (call);
}

void
bg_call_return_gerror (BgCall     *call,
                       GQuark      domain,
                       gint        code,
                       const char *format,
                       ...)
{
  va_list args;
  GError *error;

  va_start (args, format);
  error = g_error_new_valist (domain, code, format, args);
  va_end (args);
  bg_call_return_error (call, error);
}

PolkitDetails *
bg_details_new (const char *key,
                const char *value)
{
  PolkitDetails *details = polkit_details_new ();

  if (key != NULL && value != NULL)
    polkit_details_insert (details, key, value);
  return details;
}

static gboolean
allows_interaction (BgCall *call)
{
  GDBusMessage *message = g_dbus_method_invocation_get_message (call->invocation);

  return (g_dbus_message_get_flags (message) &
          G_DBUS_MESSAGE_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION) != 0;
}

typedef struct {
  BgCall     *call;
  BgCallFunc  on_yes;
  gboolean    owner_check;
} CheckData;

static void
check_done (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  CheckData *cd = user_data;
  BgCall *call = cd->call;
  BgCallFunc on_yes = cd->on_yes;
  gboolean owner_check = cd->owner_check;
  g_autoptr(GError) error = NULL;
  g_autoptr(PolkitAuthorizationResult) result_obj = NULL;
  const char *action = owner_check ? ADMIN_ACTION : call->action;

  g_free (cd);
  result_obj = polkit_authority_check_authorization_finish (POLKIT_AUTHORITY (source), result, &error);
  if (result_obj == NULL)
    {
      bg_call_return_gerror (call, BG_ERROR, BG_ERROR_NOT_AUTHORIZED,
                             "not authorized: polkit could not check %s (%s)",
                             action, error->message);
      return;
    }

  if (!polkit_authorization_result_get_is_authorized (result_obj))
    {
      if (owner_check)
        bg_call_return_gerror (call, BG_ERROR, BG_ERROR_NOT_OWNER,
                               "not yours: the resource belongs to another user, "
                               "and polkit refused %s", ADMIN_ACTION);
      else if (polkit_authorization_result_get_is_challenge (result_obj))
        bg_call_return_gerror (call, BG_ERROR, BG_ERROR_NOT_AUTHORIZED,
                               "not authorized: %s needs authentication and no polkit agent "
                               "answered; run banger from a terminal or a desktop session",
                               action);
      else
        bg_call_return_gerror (call, BG_ERROR, BG_ERROR_NOT_AUTHORIZED,
                               "not authorized: polkit refused %s", action);
      return;
    }

  on_yes (call);
}

static void
check_polkit (BgCall        *call,
              const char    *action,
              PolkitDetails *details,
              gboolean       owner_check,
              BgCallFunc     on_yes)
{
  PolkitAuthority *authority = bg_daemon_get_authority (call->daemon);
  g_autoptr(PolkitSubject) subject = NULL;
  CheckData *cd;

  if (authority == NULL)
    {
      bg_call_return_gerror (call, BG_ERROR, BG_ERROR_NOT_AUTHORIZED,
                             "not authorized: polkit is not available to check %s", action);
      return;
    }

  subject = polkit_system_bus_name_new (g_dbus_method_invocation_get_sender (call->invocation));
  cd = g_new0 (CheckData, 1);
  cd->call = call;
  cd->on_yes = on_yes;
  cd->owner_check = owner_check;
  polkit_authority_check_authorization (authority, subject, action, details,
                                        allows_interaction (call)
                                          ? POLKIT_CHECK_AUTHORIZATION_FLAGS_ALLOW_USER_INTERACTION
                                          : POLKIT_CHECK_AUTHORIZATION_FLAGS_NONE,
                                        NULL, check_done, cd);
}

static void
caller_uid_done (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  BgCall *call = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  guint32 uid;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  if (reply == NULL)
    {
      bg_call_return_gerror (call, BG_ERROR, BG_ERROR_NOT_AUTHORIZED,
                             "not authorized: the bus did not say who you are (%s)",
                             error->message);
      return;
    }
  g_variant_get (reply, "(u)", &uid);
  call->caller_uid = uid;

  if (call->action == NULL)
    call->func (call);
  else
    check_polkit (call, call->action, call->details, FALSE, call->func);
}

/* Resolves the caller, checks @action (NULL: none, as for Ping) with
 * @details (taken), then runs @func. On refusal the call is answered with
 * NotAuthorized and @func never runs. */
void
bg_call_authorize (BgCall        *call,
                   const char    *action,
                   PolkitDetails *details,
                   BgCallFunc     func)
{
  GDBusConnection *bus = g_dbus_method_invocation_get_connection (call->invocation);

  call->action = g_strdup (action);
  call->details = details;
  call->func = func;
  g_dbus_connection_call (bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                          "org.freedesktop.DBus", "GetConnectionUnixUser",
                          g_variant_new ("(s)", g_dbus_method_invocation_get_sender (call->invocation)),
                          G_VARIANT_TYPE ("(u)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL,
                          caller_uid_done, call);
}

/* Runs @func if the caller owns @resource, or if polkit grants
 * org.banger.admin; otherwise answers NotOwner. */
void
bg_call_check_owner (BgCall     *call,
                     BgResource *resource,
                     BgCallFunc  func)
{
  PolkitDetails *details;

  if (resource->owner == call->caller_uid)
    {
      func (call);
      return;
    }
  details = bg_details_new ("banger.device", resource->name);
  polkit_details_insert (details, "banger.kind", resource->kind);
  check_polkit (call, ADMIN_ACTION, details, TRUE, func);
  g_object_unref (details);
}

static BgResource *
lookup_target (BgCall *call)
{
  BgResource *r = bg_registry_lookup (bg_daemon_get_registry (call->daemon), call->target_kind,
                                      call->target_name);

  if (r == NULL)
    bg_call_return_gerror (call, BG_ERROR, BG_ERROR_NOT_FOUND, "%s: no %s named %s",
                           call->target_field, call->target_kind, call->target_name);
  return r;
}

static void
act_on_target (BgCall *call)
{
  /* Looked up again: another call may have removed it while polkit was
   * asked about this one. */
  BgResource *r = lookup_target (call);
  GError *error = NULL;

  if (r == NULL)
    return;
  if (!call->target_func (call, r, &error))
    {
      bg_call_return_error (call, error);
      return;
    }
  bg_call_return_value (call, NULL);
}

/* The shape of every method that acts on one recorded resource: the
 * resource @kind/@name must exist (NotFound, naming @field), be the
 * caller's or polkit must grant org.banger.admin (NotOwner); then @func
 * runs and the call is answered, empty on success. */
void
bg_call_act_on_owned (BgCall         *call,
                      const char     *field,
                      const char     *kind,
                      const char     *name,
                      BgResourceFunc  func)
{
  BgResource *r;

  call->target_field = field;
  call->target_kind = g_strdup (kind);
  call->target_name = g_strdup (name);
  call->target_func = func;
  r = lookup_target (call);
  if (r != NULL)
    bg_call_check_owner (call, r, act_on_target);
}
