/* bg-error.c: the error domain and its D-Bus names.
 *
 * The static banger-guest-setup builds this file with BG_ERROR_NO_DBUS:
 * its errors never cross the bus, and registering the names would pull
 * all of gio (and libmount, libselinux...) into a program that must stay
 * small and need nothing from the image. */
#ifdef BG_ERROR_NO_DBUS
#include <glib.h>
#else
#include <gio/gio.h>
#endif

#include "bg-error.h"

#ifdef BG_ERROR_NO_DBUS
typedef struct {
  gint        error_code;
  const char *dbus_error_name;
} GDBusErrorEntry;
#endif

static const GDBusErrorEntry bg_error_entries[] = {
  { BG_ERROR_FAILED,           "org.banger.Mechanism1.Error.Failed" },
  { BG_ERROR_INVALID_ARGUMENT, "org.banger.Mechanism1.Error.InvalidArgument" },
  { BG_ERROR_NOT_AUTHORIZED,   "org.banger.Mechanism1.Error.NotAuthorized" },
  { BG_ERROR_NOT_OWNER,        "org.banger.Mechanism1.Error.NotOwner" },
  { BG_ERROR_NOT_FOUND,        "org.banger.Mechanism1.Error.NotFound" },
  { BG_ERROR_BUSY,             "org.banger.Mechanism1.Error.Busy" },
  { BG_ERROR_TIMEOUT,          "org.banger.Mechanism1.Error.Timeout" },
  { BG_ERROR_EXISTS,           "org.banger.Mechanism1.Error.Exists" },
  { BG_ERROR_UNSAFE,           "org.banger.Mechanism1.Error.Unsafe" },
  { BG_ERROR_CORRUPT,          "org.banger.Mechanism1.Error.Corrupt" },
  { BG_ERROR_NOT_SUPPORTED,    "org.banger.Mechanism1.Error.NotSupported" },
  /* The standard name, so any D-Bus client knows what to do. */
  { BG_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
    "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired" },
  { BG_ERROR_LIMIT_EXCEEDED,   "org.banger.Mechanism1.Error.LimitExceeded" },
};

G_STATIC_ASSERT (G_N_ELEMENTS (bg_error_entries) == BG_ERROR_N_ERRORS);

GQuark
bg_error_quark (void)
{
#ifdef BG_ERROR_NO_DBUS
  return g_quark_from_static_string ("bg-error-quark");
#else
  static gsize quark = 0;

  g_dbus_error_register_error_domain ("bg-error-quark", &quark,
                                      bg_error_entries,
                                      G_N_ELEMENTS (bg_error_entries));
  return (GQuark) quark;
#endif
}

/* The short name of a code ("NotOwner"), for messages and --json output. */
const char *
bg_error_code_nick (gint code)
{
  if (code < 0 || code >= BG_ERROR_N_ERRORS)
    return "Failed";
  return strrchr (bg_error_entries[code].dbus_error_name, '.') + 1;
}

gboolean
bg_error_errno (GError     **error,
                int          errsv,
                const char  *what,
                const char  *path)
{
  g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "%s %s: %s", what, path, g_strerror (errsv));
  return FALSE;
}
