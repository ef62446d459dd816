/* validate.h: one validator per kind of argument the methods take. */
#pragma once

#include <gio/gio.h>
#include <gio/gunixfdlist.h>

G_BEGIN_DECLS

typedef struct {
  const char *key;
  const char *type;   /* GVariant type string of the value */
} BgOptionSpec;

gboolean bg_validate_options (GVariant            *options,
                              const BgOptionSpec  *specs,
                              GError             **error);

/* How a file the caller passed must have been opened. */
typedef enum {
  BG_FD_READ,        /* read: O_RDONLY or O_RDWR */
  BG_FD_WRITE,       /* a sink the mechanism only writes: O_WRONLY or O_RDWR */
  BG_FD_READ_WRITE,  /* a disk a VM both reads and writes: O_RDWR */
} BgFdAccess;

gboolean bg_validate_fd (GUnixFDList  *list,
                         gint32        index,
                         const char   *field,
                         BgFdAccess    access,
                         GError      **error);
int      bg_take_fd     (GUnixFDList  *list,
                         gint32        index,
                         const char   *field,
                         BgFdAccess    access,
                         GError      **error);

G_END_DECLS
