/* bg-auth.h: knowing, before long work, whether polkit will let this
 * user make the privileged calls that follow it. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef enum {
  BG_AUTH_NO,    /* refused, and polkit would not ask */
  BG_AUTH_ASK,   /* polkit would ask for a password */
  BG_AUTH_YES,
} BgAuthAnswer;

gboolean bg_auth_query    (const char         *action,
                           BgAuthAnswer       *answer,
                           GError            **error);
gboolean bg_auth_precheck (const char * const *actions,
                           GError            **error);
char    *bg_auth_refusal_hint (void);

G_END_DECLS
