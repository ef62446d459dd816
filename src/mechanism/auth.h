#pragma once

#include <gio/gio.h>
#include <polkit/polkit.h>
#include <sys/types.h>

#include "registry.h"

G_BEGIN_DECLS

typedef struct _BgDaemon BgDaemon;
typedef struct _BgCall   BgCall;

typedef void (*BgCallFunc) (BgCall *call);
typedef gboolean (*BgResourceFunc) (BgCall      *call,
                                    BgResource  *resource,
                                    GError     **error);

/* One method call in flight: who made it, what it may do, and the work to
 * run once authorized. The daemon is held (no idle exit) until the call
 * returns. */
struct _BgCall {
  BgDaemon              *daemon;
  GDBusMethodInvocation *invocation;
  uid_t                  caller_uid;
  char                  *action;
  PolkitDetails         *details;
  BgCallFunc             func;
  gpointer               data;
  GDestroyNotify         data_free;
  /* For bg_call_act_on_owned (). */
  const char            *target_field;
  char                  *target_kind;
  char                  *target_name;
  BgResourceFunc         target_func;
};

BgCall  *bg_call_new            (BgDaemon               *daemon,
                                 GDBusMethodInvocation  *invocation);
void     bg_call_set_data       (BgCall                 *call,
                                 gpointer                data,
                                 GDestroyNotify          data_free);
void     bg_call_authorize      (BgCall                 *call,
                                 const char             *action,
                                 PolkitDetails          *details,
                                 BgCallFunc              func);
void     bg_call_check_owner    (BgCall                 *call,
                                 BgResource             *resource,
                                 BgCallFunc              func);
void     bg_call_act_on_owned   (BgCall                 *call,
                                 const char             *field,
                                 const char             *kind,
                                 const char             *name,
                                 BgResourceFunc          func);
void     bg_call_return_value   (BgCall                 *call,
                                 GVariant               *value);
void     bg_call_return_error   (BgCall                 *call,
                                 GError                 *error);
void     bg_call_return_gerror  (BgCall                 *call,
                                 GQuark                  domain,
                                 gint                    code,
                                 const char             *format,
                                 ...) G_GNUC_PRINTF (4, 5);

PolkitDetails *bg_details_new   (const char             *key,
                                 const char             *value);

G_END_DECLS
