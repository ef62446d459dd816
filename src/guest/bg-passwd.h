/* bg-passwd.h: users and groups from a root's /etc/passwd and /etc/group,
 * read by banger's own code: getpwnam() in a static glibc needs the
 * image's NSS modules of the same glibc version, which a guest of another
 * libc does not have. libc only. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#define BG_PASSWD_MAX_GROUPS 256

typedef struct {
  uid_t  uid;
  gid_t  gid;
  char   name[256];
  char   home[4096];
  char   shell[4096];
  gid_t  groups[BG_PASSWD_MAX_GROUPS];   /* supplementary, with gid first */
  size_t ngroups;
} BgPasswdUser;

/* Looks @user up (a name, or a decimal uid) in @root/etc/passwd and
 * collects its groups from @root/etc/group. A uid without an entry is
 * allowed (home "/", group = uid) as `docker exec -u 1234` allows it.
 * Returns 0, or -1 with errno set (ENOENT: no such user). */
int bg_passwd_lookup (const char   *root,
                      const char   *user,
                      BgPasswdUser *out);
