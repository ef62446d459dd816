/* libnss_banger: resolves NAME.<domain> to a banger VM's address.
 *
 * Reads the hosts file banger-mechanism writes (root-owned, rewritten
 * atomically) under its run directory: one "ADDRESS NAME.DOMAIN OWNER-UID"
 * per line. A name is answered only to the process of its owner (its
 * effective uid) or root: NAME.<domain> is each user's own, so when one
 * user's VM goes and another user's takes its name, the first user's
 * scripts do not reach the other's VM. A line without an owner (an older
 * mechanism's) answers only root. Enable it with "hosts: files banger
 * dns" in /etc/nsswitch.conf.
 *
 * This code runs inside every process that resolves a name, so it is
 * plain C with no dependencies, allocates nothing, and is strict about
 * buffer sizes. IPv4 only, like banger's network.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <nss.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#ifndef BG_NSS_HOSTS
#define BG_NSS_HOSTS "/run/banger/hosts"
#endif

#define ALIGN_PTR(n) (((n) + sizeof (void *) - 1) & ~(sizeof (void *) - 1))

enum nss_status _nss_banger_gethostbyname4_r (const char *name, struct gaih_addrtuple **pat,
                                              char *buffer, size_t buflen, int *errnop,
                                              int *h_errnop, int32_t *ttlp);
enum nss_status _nss_banger_gethostbyname3_r (const char *name, int af, struct hostent *host,
                                              char *buffer, size_t buflen, int *errnop,
                                              int *h_errnop, int32_t *ttlp, char **canonp);
enum nss_status _nss_banger_gethostbyname2_r (const char *name, int af, struct hostent *host,
                                              char *buffer, size_t buflen, int *errnop,
                                              int *h_errnop);
enum nss_status _nss_banger_gethostbyname_r (const char *name, struct hostent *host,
                                             char *buffer, size_t buflen, int *errnop,
                                             int *h_errnop);

/* The test suite points this at its own file; secure_getenv() ignores the
 * variable in setuid programs, so it cannot redirect a privileged lookup. */
static const char *
hosts_path (void)
{
  const char *p = secure_getenv ("BANGER_NSS_HOSTS");
  return p && *p ? p : BG_NSS_HOSTS;
}

/* Whether the owner column @owner admits the process resolving. */
static int
may_resolve (const char *owner)
{
  uid_t me = geteuid ();
  char *end = NULL;
  unsigned long uid;

  if (me == 0)
    return 1;
  if (owner == NULL || *owner < '0' || *owner > '9')
    return 0;
  errno = 0;
  uid = strtoul (owner, &end, 10);
  return errno == 0 && *end == '\0' && uid == (unsigned long) me;
}

/* Finds @name, among the names the resolving process may see; returns 1
 * and the address, 0 when absent, -1 on error. */
static int
lookup (const char     *name,
        struct in_addr *addr)
{
  char line[512];
  FILE *f;
  int found = 0;

  f = fopen (hosts_path (), "re");
  if (f == NULL)
    return errno == ENOENT ? 0 : -1;

  while (!found && fgets (line, sizeof line, f) != NULL)
    {
      char *save = NULL;
      char *ip = strtok_r (line, " \t\n", &save);
      char *host = strtok_r (NULL, " \t\n", &save);
      char *owner = strtok_r (NULL, " \t\n", &save);

      if (ip == NULL || host == NULL || ip[0] == '#')
        continue;
      if (strcasecmp (host, name) == 0 && may_resolve (owner) && inet_pton (AF_INET, ip, addr) == 1)
        found = 1;
    }
  fclose (f);
  return found;
}

static int
is_candidate (const char *name)
{
  /* Only dotted names can be ours; a bare name never is. */
  return name != NULL && strchr (name, '.') != NULL && strlen (name) < 256;
}

/* @name's address, with the status and errnos NSS wants when there is
 * none (not ours, not listed, the file unreadable) or no room for it. */
static enum nss_status
find (const char     *name,
      struct in_addr *addr,
      size_t          buflen,
      size_t          need,
      int            *errnop,
      int            *h_errnop)
{
  int r = is_candidate (name) ? lookup (name, addr) : 0;

  if (r < 0)
    {
      *errnop = errno;
      *h_errnop = NO_RECOVERY;
      return NSS_STATUS_UNAVAIL;
    }
  if (r == 0)
    {
      *errnop = ENOENT;
      *h_errnop = HOST_NOT_FOUND;
      return NSS_STATUS_NOTFOUND;
    }
  if (buflen < need)
    {
      *errnop = ERANGE;
      *h_errnop = NETDB_INTERNAL;
      return NSS_STATUS_TRYAGAIN;
    }
  return NSS_STATUS_SUCCESS;
}

enum nss_status
_nss_banger_gethostbyname4_r (const char             *name,
                              struct gaih_addrtuple **pat,
                              char                   *buffer,
                              size_t                  buflen,
                              int                    *errnop,
                              int                    *h_errnop,
                              int32_t                *ttlp)
{
  struct in_addr addr;
  struct gaih_addrtuple *tuple;
  size_t name_len = name ? strlen (name) + 1 : 0;
  enum nss_status status = find (name, &addr, buflen, ALIGN_PTR (name_len) + sizeof (struct gaih_addrtuple),
                                 errnop, h_errnop);

  if (status != NSS_STATUS_SUCCESS)
    return status;
  memcpy (buffer, name, name_len);
  tuple = (struct gaih_addrtuple *) (buffer + ALIGN_PTR (name_len));
  memset (tuple, 0, sizeof *tuple);
  tuple->name = buffer;
  tuple->family = AF_INET;
  memcpy (tuple->addr, &addr, sizeof addr);
  if (*pat != NULL)
    **pat = *tuple;
  else
    *pat = tuple;
  if (ttlp)
    *ttlp = 0;
  return NSS_STATUS_SUCCESS;
}

enum nss_status
_nss_banger_gethostbyname3_r (const char     *name,
                              int             af,
                              struct hostent *host,
                              char           *buffer,
                              size_t          buflen,
                              int            *errnop,
                              int            *h_errnop,
                              int32_t        *ttlp,
                              char          **canonp)
{
  struct in_addr addr;
  size_t name_len = name ? strlen (name) + 1 : 0, offset = ALIGN_PTR (name_len);
  char **aliases, **addr_list;
  enum nss_status status;

  if (af != AF_UNSPEC && af != AF_INET)
    {
      *errnop = ENOENT;
      *h_errnop = HOST_NOT_FOUND;
      return NSS_STATUS_NOTFOUND;
    }
  /* Layout: name, aliases (NULL), address, address list (addr, NULL). */
  status = find (name, &addr, buflen, offset + sizeof (char *) + ALIGN_PTR (sizeof addr) + 2 * sizeof (char *),
                 errnop, h_errnop);
  if (status != NSS_STATUS_SUCCESS)
    return status;
  memcpy (buffer, name, name_len);
  aliases = (char **) (buffer + offset);
  aliases[0] = NULL;
  offset += sizeof (char *);
  memcpy (buffer + offset, &addr, sizeof addr);
  addr_list = (char **) (buffer + offset + ALIGN_PTR (sizeof addr));
  addr_list[0] = buffer + offset;
  addr_list[1] = NULL;

  host->h_name = buffer;
  host->h_aliases = aliases;
  host->h_addrtype = AF_INET;
  host->h_length = sizeof addr;
  host->h_addr_list = addr_list;
  if (ttlp)
    *ttlp = 0;
  if (canonp)
    *canonp = buffer;
  return NSS_STATUS_SUCCESS;
}

enum nss_status
_nss_banger_gethostbyname2_r (const char     *name,
                              int             af,
                              struct hostent *host,
                              char           *buffer,
                              size_t          buflen,
                              int            *errnop,
                              int            *h_errnop)
{
  return _nss_banger_gethostbyname3_r (name, af, host, buffer, buflen, errnop, h_errnop, NULL, NULL);
}

enum nss_status
_nss_banger_gethostbyname_r (const char     *name,
                             struct hostent *host,
                             char           *buffer,
                             size_t          buflen,
                             int            *errnop,
                             int            *h_errnop)
{
  return _nss_banger_gethostbyname3_r (name, AF_INET, host, buffer, buflen, errnop, h_errnop, NULL, NULL);
}
