/* bg-registry-auth.h: credentials for a registry, read from podman's
 * and docker's files, and the parsing of a registry's challenge. A
 * password lives only in a BgRegistryCredentials, which wipes it when
 * freed; nothing here prints or logs one. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
  char *username;
  char *password;
  char *file;       /* where they were read (a path is no secret) */
} BgRegistryCredentials;

typedef struct {
  char *scheme;     /* "bearer" or "basic", lowercase */
  char *realm;
  char *service;    /* NULL when the challenge has none */
  char *scope;
} BgRegistryChallenge;

BgRegistryCredentials *bg_registry_credentials_find (const char  *registry,
                                                     const char  *repository,
                                                     GError     **error);
char                  *bg_registry_credentials_basic (const BgRegistryCredentials *creds);
void                   bg_registry_credentials_free (BgRegistryCredentials *creds);

BgRegistryChallenge   *bg_registry_challenge_parse  (const char  *header);
void                   bg_registry_challenge_free   (BgRegistryChallenge *c);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgRegistryCredentials, bg_registry_credentials_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgRegistryChallenge, bg_registry_challenge_free)

G_END_DECLS
