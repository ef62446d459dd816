/* bg-error.h: banger's one error domain, shared by the CLI and the mechanism.
 *
 * Registered with D-Bus so a GError raised in the mechanism reaches the CLI
 * as the same domain and code ("org.banger.Mechanism1.Error.<Name>").
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define BG_ERROR (bg_error_quark ())

typedef enum {
  BG_ERROR_FAILED,            /* the step failed; the message says why */
  BG_ERROR_INVALID_ARGUMENT,  /* bad input; the message names the field */
  BG_ERROR_NOT_AUTHORIZED,    /* polkit refused the action */
  BG_ERROR_NOT_OWNER,         /* the resource belongs to another user */
  BG_ERROR_NOT_FOUND,         /* no such resource */
  BG_ERROR_BUSY,              /* the resource is in use */
  BG_ERROR_TIMEOUT,           /* something did not happen in time */
  BG_ERROR_EXISTS,            /* the resource already exists */
  BG_ERROR_UNSAFE,            /* a path or file failed a security check */
  BG_ERROR_CORRUPT,           /* a stored file could not be parsed */
  BG_ERROR_NOT_SUPPORTED,     /* this host cannot do that */
  BG_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED, /* polkit would ask; the call did not allow it */
  BG_ERROR_LIMIT_EXCEEDED,    /* a per-user limit of mechanism.conf */
} BgError;

#define BG_ERROR_N_ERRORS (BG_ERROR_LIMIT_EXCEEDED + 1)

GQuark       bg_error_quark       (void);
const char  *bg_error_code_nick   (gint code);
/* Sets "WHAT PATH: strerror(ERRSV)" (BG_ERROR_FAILED); returns FALSE. */
gboolean     bg_error_errno       (GError     **error,
                                   int          errsv,
                                   const char  *what,
                                   const char  *path);

G_END_DECLS
