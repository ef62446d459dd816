/* tap.h: persistent taps, made for a uid and re-owned. */
#pragma once

#include <sys/types.h>
#include <glib.h>

G_BEGIN_DECLS

gboolean  bg_tap_create     (const char  *name,
                             uid_t        owner,
                             GError     **error);
gboolean  bg_tap_set_owner  (const char  *name,
                             uid_t        owner,
                             GError     **error);

G_END_DECLS
