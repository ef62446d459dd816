/* bg-auth.h: knowing, before long work, whether polkit will let this
 * user make the privileged calls that follow it. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

gboolean bg_auth_precheck (const char * const *actions,
                           GError            **error);

G_END_DECLS
