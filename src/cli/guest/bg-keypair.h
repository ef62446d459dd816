/* bg-keypair.h: new ed25519 SSH key pairs, made in-process, in the files
 * ssh-keygen writes. */
#pragma once

#include <glib.h>

#include "bg-file.h"

G_BEGIN_DECLS

gboolean bg_keypair_generate (const char  *comment,
                              char       **private_key,
                              char       **public_key,
                              GError     **error);
gboolean bg_keypair_write    (const char  *path,
                              const char  *comment,
                              BgFileFlags  flags,
                              char       **private_key,
                              char       **public_key,
                              GError     **error);

G_END_DECLS
