/* bg-registry-module.h: the registry client (bg-registry.h), loaded when
 * `image pull` needs it. It is a module of its own because it links
 * libsoup (TLS, HTTP/2, Kerberos, ...), fifteen libraries every other
 * command of banger would otherwise load at its start. The module calls
 * back into banger (the blob cache, progress, sha256): the executable
 * exports its symbols, so there is one copy of each. */
#pragma once

#include "bg-registry.h"

G_BEGIN_DECLS

/* The module's functions, bg_registry_<field>. */
typedef struct {
  __typeof__ (bg_registry_new)          *new;
  __typeof__ (bg_registry_is_insecure)  *is_insecure;
  __typeof__ (bg_registry_get_manifest) *get_manifest;
  __typeof__ (bg_registry_fetch_start)  *fetch_start;
  __typeof__ (bg_registry_fetch_wait)   *fetch_wait;
  __typeof__ (bg_registry_fetch_has)    *fetch_has;
  __typeof__ (bg_registry_fetch_free)   *fetch_free;
  __typeof__ (bg_registry_free)         *free;
} BgRegistryModule;

const BgRegistryModule *bg_registry_module_load (GError **error);

G_END_DECLS
