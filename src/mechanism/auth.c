/* auth.c: the one place that decides who may do what.
 *
 * Every method goes through bg_call_start(): the caller's uid is asked of
 * the bus (GetConnectionUnixUser), never taken from an argument; then
 * polkit is asked, asynchronously so a password prompt in one session
 * never blocks other callers, with the calling bus name as the subject.
 * User interaction is allowed only if the message carries
 * ALLOW_INTERACTIVE_AUTHORIZATION. Only then does the method's work run,
 * reading its arguments back from the invocation.
 *
 * Acting on a resource another user owns additionally needs
 * org.banger.admin (bg_call_act_on_owned); refused, that is NotOwner.
 */
#include <grp.h>
#include <pwd.h>

#include "bg-error.h"
#include "bg-group-rule.h"
#include "auth.h"
#include "daemon.h"
#include "registry.h"

#define ADMIN_ACTION "org.banger.admin"

/* The private part of a call. The invocation holds two references: the
 * skeleton's, which answering it consumes, and the call's own, dropped
 * when the call is freed. */
typedef struct {
  BgCall          pub;
  char           *action;
  PolkitDetails  *details;
  BgCallFunc      func;
  /* For bg_call_act_on_owned (). */
  const char     *target_field;
  BgKind          target_kind;
  char           *target_name;
  BgResourceFunc  target_func;
  /* Monotonic µs: received, caller known, polkit's verdict. */
  gint64          received;
  gint64          resolved;
  gint64          authorized;
} Call;

static void
call_free (Call *c)
{
  BgDaemon *daemon = c->pub.daemon;
  gint64 now = g_get_monotonic_time ();

  g_debug ("%s from uid %d answered in %.1f ms (caller %.1f ms, polkit %.1f ms, work %.1f ms)",
           g_dbus_method_invocation_get_method_name (c->pub.invocation), (int) c->pub.caller_uid,
           (now - c->received) / 1000.0, c->resolved ? (c->resolved - c->received) / 1000.0 : 0.0,
           c->authorized ? (c->authorized - c->resolved) / 1000.0 : 0.0,
           (now - (c->authorized ? c->authorized : c->resolved ? c->resolved : c->received)) / 1000.0);
  g_clear_object (&c->pub.invocation);
  g_clear_object (&c->details);
  g_free (c->action);
  g_free (c->target_name);
  g_free (c);
  bg_daemon_release (daemon);
}

/* A method without arguments has nothing to check before polkit, so it
 * needs no handler of its own: its signal starts the call. */
typedef struct {
  BgDaemon   *daemon;
  const char *action;
  BgCallFunc  func;
  gpointer    self;
} PlainMethod;

static gboolean
on_plain_method (BgMechanism1          *skeleton,
                 GDBusMethodInvocation *invocation,
                 PlainMethod           *m)
{
  bg_call_start (m->daemon, invocation, m->action, NULL, m->func, m->self);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

void
bg_call_connect_methods (BgDaemon        *daemon,
                         const BgMethod  *methods,
                         gpointer         self)
{
  BgMechanism1 *skeleton = bg_daemon_get_skeleton (daemon);

  for (const BgMethod *m = methods; m->signal != NULL; m++)
    {
      PlainMethod *plain;

      if (m->handler != NULL)
        {
          g_signal_connect (skeleton, m->signal, m->handler, self);
          continue;
        }
      plain = g_new (PlainMethod, 1);
      *plain = (PlainMethod) { daemon, m->action, m->authorized, self };
      g_signal_connect_data (skeleton, m->signal, G_CALLBACK (on_plain_method), plain,
                             (GClosureNotify) (void (*) (void)) g_free, 0);
    }
}

GVariant *
bg_call_get_parameters (BgCall *call)
{
  return g_dbus_method_invocation_get_parameters (call->invocation);
}

GUnixFDList *
bg_call_get_fd_list (BgCall *call)
{
  return g_dbus_message_get_unix_fd_list (g_dbus_method_invocation_get_message (call->invocation));
}

void
bg_call_return_value (BgCall   *call,
                      GVariant *value)
{
  g_dbus_method_invocation_return_value (call->invocation, value);
  call_free ((Call *) call);
}

void
bg_call_take_error (BgCall *call,
                    GError *error)
{
  g_debug ("%s from uid %d failed: %s",
           g_dbus_method_invocation_get_method_name (call->invocation),
           (int) call->caller_uid, error->message);
  g_dbus_method_invocation_take_error (call->invocation, error);
  call_free ((Call *) call);
}

static void G_GNUC_PRINTF (4, 5)
call_return_error (BgCall     *call,
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
  bg_call_take_error (call, error);
}

gboolean
bg_invocation_take_error (GDBusMethodInvocation *invocation,
                          GError                *error)
{
  g_dbus_method_invocation_take_error (invocation, error);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
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
  Call         *call;
  BgCallFunc    on_yes;
  gboolean      owner_check;
  gboolean      counted;       /* in the caller's pending calls */
  GCancellable *cancellable;   /* an agent that never answers is cut off */
  guint         timeout_id;
} CheckData;

static gboolean
on_auth_timeout (gpointer data)
{
  CheckData *cd = data;

  cd->timeout_id = 0;
  g_cancellable_cancel (cd->cancellable);
  return G_SOURCE_REMOVE;
}

/* What the refused caller can do, from what this host has installed
 * (bg-group-rule.c): never a group that does not exist. The group rule
 * grants users their own VMs, never the administrator's action, so
 * joining a group is no answer to that refusal. */
static char *
refusal_hint (BgCall     *call,
              const char *action)
{
  const char * const dirs[] = BG_POLKIT_RULES_DIRS;
  g_autofree char *group = NULL;
  struct passwd *pw = getpwuid (call->caller_uid);

  if (g_str_equal (action, ADMIN_ACTION))
    return g_strdup ("run the command as root or ask an administrator to (" ADMIN_ACTION " is an "
                     "administrator's action; banger's group rule does not grant it)");
  group = bg_group_rule_find (dirs);
  return bg_group_rule_hint (group, group != NULL && getgrnam (group) != NULL, pw ? pw->pw_name : "USER");
}

static void
check_done (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  CheckData *cd = user_data;
  BgCall *call = &cd->call->pub;
  BgCallFunc on_yes = cd->on_yes;
  gboolean owner_check = cd->owner_check;
  g_autoptr(GError) error = NULL;
  g_autoptr(PolkitAuthorizationResult) verdict = NULL;
  const char *action = owner_check ? ADMIN_ACTION : cd->call->action;
  guint timeout_s = bg_daemon_get_limits (call->daemon)->auth_timeout_s;

  if (cd->counted)
    bg_daemon_count_pending (call->daemon, call->caller_uid, -1);
  g_clear_handle_id (&cd->timeout_id, g_source_remove);
  g_clear_object (&cd->cancellable);
  g_free (cd);
  if (!owner_check)
    ((Call *) call)->authorized = g_get_monotonic_time ();
  verdict = polkit_authority_check_authorization_finish (POLKIT_AUTHORITY (source), result, &error);
  if (verdict == NULL && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return call_return_error (call, BG_ERROR, BG_ERROR_NOT_AUTHORIZED,
                              "not authorized: no answer from your polkit agent within %u s for %s "
                              "(auth-timeout in [limits] of mechanism.conf)", timeout_s, action);
  if (verdict == NULL)
    return call_return_error (call, BG_ERROR, BG_ERROR_NOT_AUTHORIZED,
                              "not authorized: polkit could not check %s (%s)", action, error->message);

  if (!polkit_authorization_result_get_is_authorized (verdict))
    {
      g_autofree char *hint = NULL;

      if (owner_check)
        call_return_error (call, BG_ERROR, BG_ERROR_NOT_OWNER,
                           "not yours: the resource belongs to another user, "
                           "and polkit refused %s", ADMIN_ACTION);
      else if (polkit_authorization_result_get_is_challenge (verdict) && !allows_interaction (call))
        call_return_error (call, BG_ERROR, BG_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
                           "%s needs authentication; call again allowing interactive authorization",
                           action);
      else if ((hint = refusal_hint (call, action)) != NULL &&
               polkit_authorization_result_get_is_challenge (verdict))
        call_return_error (call, BG_ERROR, BG_ERROR_NOT_AUTHORIZED,
                           "not authorized: %s needs authentication and no polkit agent answered; "
                           "run banger from a terminal or a desktop session, or %s", action, hint);
      else if (allows_interaction (call))
        /* An agent may have asked: then a wrong or dismissed password
         * ends here as well as a plain "no". */
        call_return_error (call, BG_ERROR, BG_ERROR_NOT_AUTHORIZED,
                           "not authorized: polkit refused %s (authentication failed or was dismissed, "
                           "or it is not allowed to you at all); try again, or %s", action, hint);
      else
        call_return_error (call, BG_ERROR, BG_ERROR_NOT_AUTHORIZED,
                           "not authorized: polkit refused %s. Outside an active desktop session "
                           "polkit cannot ask for a password: %s; or run banger from your desktop "
                           "session", action, hint);
      return;
    }

  on_yes (call, call->self);
}

static void
check_polkit (Call          *c,
              const char    *action,
              PolkitDetails *details,
              gboolean       owner_check,
              BgCallFunc     on_yes)
{
  PolkitAuthority *authority = bg_daemon_get_authority (c->pub.daemon);
  const BgLimits *limits = bg_daemon_get_limits (c->pub.daemon);
  g_autoptr(PolkitSubject) subject = NULL;
  gboolean counted;
  CheckData *cd;

  if (authority == NULL)
    return call_return_error (&c->pub, BG_ERROR, BG_ERROR_NOT_AUTHORIZED,
                              "not authorized: polkit is not available to check %s", action);
  /* One user's unanswered prompts (an agent that never replies) must not
   * use up what every caller shares: the connection to polkitd, the fd
   * table. Only checks that may wait on an agent count; the others are
   * answered at once. Root is not limited. */
  counted = c->pub.caller_uid != 0 && allows_interaction (&c->pub);
  if (counted && bg_daemon_count_pending (c->pub.daemon, c->pub.caller_uid, 1) >= limits->pending_calls)
    {
      bg_daemon_count_pending (c->pub.daemon, c->pub.caller_uid, -1);
      return call_return_error (&c->pub, BG_ERROR, BG_ERROR_LIMIT_EXCEEDED,
                                "%u calls of yours already wait for polkit's answer, the most one user may "
                                "have (pending-calls=%u in [limits] of mechanism.conf); answer or close "
                                "your authentication prompts first", limits->pending_calls,
                                limits->pending_calls);
    }

  bg_daemon_test_count (c->pub.daemon, "polkit-asked");
  subject = polkit_system_bus_name_new (g_dbus_method_invocation_get_sender (c->pub.invocation));
  cd = g_new0 (CheckData, 1);
  cd->call = c;
  cd->on_yes = on_yes;
  cd->owner_check = owner_check;
  cd->counted = counted;
  cd->cancellable = g_cancellable_new ();
  if (allows_interaction (&c->pub))
    cd->timeout_id = g_timeout_add_seconds (MAX (limits->auth_timeout_s, 1), on_auth_timeout, cd);
  polkit_authority_check_authorization (authority, subject, action, details,
                                        allows_interaction (&c->pub)
                                          ? POLKIT_CHECK_AUTHORIZATION_FLAGS_ALLOW_USER_INTERACTION
                                          : POLKIT_CHECK_AUTHORIZATION_FLAGS_NONE,
                                        cd->cancellable, check_done, cd);
}

static void
caller_known (Call  *c,
              uid_t  uid)
{
  c->pub.caller_uid = uid;
  c->resolved = g_get_monotonic_time ();

  if (c->action == NULL)
    c->func (&c->pub, c->pub.self);
  else
    check_polkit (c, c->action, c->details, FALSE, c->func);
}

static void
caller_uid_done (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  Call *c = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  guint32 uid;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  if (reply == NULL)
    return call_return_error (&c->pub, BG_ERROR, BG_ERROR_NOT_AUTHORIZED,
                              "not authorized: the bus did not say who you are (%s)", error->message);
  g_variant_get (reply, "(u)", &uid);
  bg_daemon_remember_caller (c->pub.daemon, g_dbus_method_invocation_get_sender (c->pub.invocation), uid);
  caller_known (c, uid);
}

/* Resolves the caller, checks @action (NULL: none, as for Ping) with
 * @details (taken), then runs @func with @self. On refusal the call is
 * answered with NotAuthorized and @func never runs. The daemon is held
 * (no idle exit) until the call is answered. */
void
bg_call_start (BgDaemon              *daemon,
               GDBusMethodInvocation *invocation,
               const char            *action,
               PolkitDetails         *details,
               BgCallFunc             func,
               gpointer               self)
{
  GDBusConnection *bus = g_dbus_method_invocation_get_connection (invocation);
  const char *sender = g_dbus_method_invocation_get_sender (invocation);
  Call *c = g_new0 (Call, 1);
  uid_t uid;

  c->received = g_get_monotonic_time ();
  c->pub.daemon = daemon;
  c->pub.invocation = g_object_ref (invocation);
  c->pub.caller_uid = (uid_t) -1;
  c->pub.self = self;
  c->action = g_strdup (action);
  c->details = details;
  c->func = func;
  bg_daemon_hold (daemon);
  /* Cheap, and every call may rely on the registry's files. */
  if (bg_registry_heal (bg_daemon_get_registry (daemon)) > 0)
    g_message ("The registry's files were deleted under it; written again from memory");
  /* The bus answers once per connection (see bg_daemon_remember_caller). */
  if (bg_daemon_lookup_caller (daemon, sender, &uid))
    return caller_known (c, uid);
  bg_daemon_test_count (daemon, "caller-asked");
  g_dbus_connection_call (bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                          "org.freedesktop.DBus", "GetConnectionUnixUser",
                          g_variant_new ("(s)", sender),
                          G_VARIANT_TYPE ("(u)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL,
                          caller_uid_done, c);
}

static BgResource *
lookup_target (Call *c)
{
  BgResource *r = bg_registry_lookup (bg_daemon_get_registry (c->pub.daemon), c->target_kind, c->target_name);

  if (r == NULL)
    call_return_error (&c->pub, BG_ERROR, BG_ERROR_NOT_FOUND, "%s: no %s named %s",
                       c->target_field, bg_kind_to_string (c->target_kind), c->target_name);
  return r;
}

static void
act_on_target (BgCall   *call,
               gpointer  self)
{
  Call *c = (Call *) call;
  GError *error = NULL;
  /* Looked up again: another call may have removed it while polkit was
   * asked about this one. */
  BgResource *r = lookup_target (c);

  if (r == NULL)
    return;
  if (!c->target_func (self, call, r, &error))
    return bg_call_take_error (call, error);
  bg_call_return_value (call, NULL);
}

/* The shape of every method that acts on one recorded resource: the
 * resource @kind/@name must exist (NotFound, naming @field), be the
 * caller's or polkit must grant org.banger.admin (NotOwner); then @func
 * runs and the call is answered, empty on success. */
void
bg_call_act_on_owned (BgCall         *call,
                      const char     *field,
                      BgKind          kind,
                      const char     *name,
                      BgResourceFunc  func)
{
  Call *c = (Call *) call;
  PolkitDetails *details;
  BgResource *r;

  c->target_field = field;
  c->target_kind = kind;
  c->target_name = g_strdup (name);
  c->target_func = func;
  r = lookup_target (c);
  if (r == NULL)
    return;
  if (r->owner == call->caller_uid)
    return act_on_target (call, call->self);
  details = bg_details_new ("banger.device", r->name);
  polkit_details_insert (details, "banger.kind", bg_kind_to_string (r->kind));
  check_polkit (c, ADMIN_ACTION, details, TRUE, act_on_target);
  g_object_unref (details);
}
