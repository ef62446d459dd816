/* libnss_banger: resolves NAME.<domain> to a banger VM's address.
 *
 * Reads the hosts file banger-mechanism writes (root-owned, rewritten
 * atomically) under its run directory: one "ADDRESS NAME.DOMAIN OWNER-UID"
 * per line, ADDRESS IPv4 or IPv6. A name is answered (A or AAAA) only to
 * the process of its owner (its effective uid) or root, and only in the
 * host's user namespace (in another, a uid is not the host's, and no
 * name is answered): NAME.<domain> is
 * each user's own, so when one user's VM goes and another user's takes
 * its name, the first user's scripts do not reach the other's VM. A line
 * without an owner (an older mechanism's) answers only root. Enable it
 * with "hosts: files banger dns" in /etc/nsswitch.conf.
 *
 * This code runs inside every process that resolves a name, so it is
 * plain C with no dependencies, allocates nothing, and is strict about
 * buffer sizes. A VM has an IPv4 address and, where the host has IPv6,
 * an IPv6 one: A and AAAA answers both.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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

/* Whether the process runs in the initial user namespace, where its
 * uids are the host's: /proc/self/uid_map is the identity map there.
 * In any other (a user's own `unshare -r`, a rootless container) its
 * effective uid says nothing about who it is: 0 there is the user who
 * made the namespace, and other uids can be mapped to the user's own. */
static int
in_initial_user_namespace (void)
{
  char map[128];
  unsigned long inside, outside, count;
  char rest;
  ssize_t n;
  int fd = open ("/proc/self/uid_map", O_RDONLY | O_CLOEXEC);

  if (fd < 0)
    return 0;
  n = read (fd, map, sizeof map - 1);
  close (fd);
  if (n <= 0)
    return 0;
  map[n] = '\0';
  return sscanf (map, " %lu %lu %lu %c", &inside, &outside, &count, &rest) == 3 && inside == 0 &&
         outside == 0 && count == 4294967295UL;
}

/* Whether the owner column @owner admits the process resolving: its
 * owner's process or root's, in the host's user namespace only (an
 * unreadable map counts as another namespace: no answer). */
static int
may_resolve (const char *owner)
{
  uid_t me = geteuid ();
  char *end = NULL;
  unsigned long uid;

  if (!in_initial_user_namespace ())
    return 0;
  if (me == 0)
    return 1;
  if (owner == NULL || *owner < '0' || *owner > '9')
    return 0;
  errno = 0;
  uid = strtoul (owner, &end, 10);
  return errno == 0 && *end == '\0' && uid == (unsigned long) me;
}

/* Finds @name's address of family @af (AF_INET or AF_INET6) into @addr
 * (16 bytes), among the names the resolving process may see; returns 1
 * when found, 0 when absent, -1 on error. */
static int
lookup (const char *name,
        int         af,
        void       *addr)
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
      if (strcasecmp (host, name) == 0 && may_resolve (owner) && inet_pton (af, ip, addr) == 1)
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

static enum nss_status
not_found (int *errnop,
           int *h_errnop)
{
  *errnop = ENOENT;
  *h_errnop = HOST_NOT_FOUND;
  return NSS_STATUS_NOTFOUND;
}

static enum nss_status
unavailable (int *errnop,
             int *h_errnop)
{
  *errnop = errno;
  *h_errnop = NO_RECOVERY;
  return NSS_STATUS_UNAVAIL;
}

static enum nss_status
no_room (int *errnop,
         int *h_errnop)
{
  *errnop = ERANGE;
  *h_errnop = NETDB_INTERNAL;
  return NSS_STATUS_TRYAGAIN;
}

/* Every address of @name, IPv4 first: a VM has one of each family at
 * most. */
enum nss_status
_nss_banger_gethostbyname4_r (const char             *name,
                              struct gaih_addrtuple **pat,
                              char                   *buffer,
                              size_t                  buflen,
                              int                    *errnop,
                              int                    *h_errnop,
                              int32_t                *ttlp)
{
  static const int families[] = { AF_INET, AF_INET6 };
  unsigned char addr[2][16];
  int found[2], n = 0;
  struct gaih_addrtuple *tuples;
  size_t name_len = name ? strlen (name) + 1 : 0;

  if (!is_candidate (name))
    return not_found (errnop, h_errnop);
  for (int i = 0; i < 2; i++)
    {
      found[i] = lookup (name, families[i], addr[n]);
      if (found[i] < 0)
        return unavailable (errnop, h_errnop);
      n += found[i];
    }
  if (n == 0)
    return not_found (errnop, h_errnop);
  if (buflen < ALIGN_PTR (name_len) + n * sizeof (struct gaih_addrtuple))
    return no_room (errnop, h_errnop);
  memcpy (buffer, name, name_len);
  tuples = (struct gaih_addrtuple *) (buffer + ALIGN_PTR (name_len));
  memset (tuples, 0, n * sizeof *tuples);
  for (int i = 0, k = 0; i < 2; i++)
    {
      if (!found[i])
        continue;
      tuples[k].name = buffer;
      tuples[k].family = families[i];
      memcpy (tuples[k].addr, addr[k], families[i] == AF_INET ? 4 : 16);
      tuples[k].next = k + 1 < n ? &tuples[k + 1] : NULL;
      k++;
    }
  if (*pat != NULL)
    **pat = tuples[0];
  else
    *pat = tuples;
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
  unsigned char addr[16];
  size_t name_len = name ? strlen (name) + 1 : 0, offset = ALIGN_PTR (name_len);
  size_t addr_len;
  char **aliases, **addr_list;
  int r;

  if (af == AF_UNSPEC)
    af = AF_INET;
  if ((af != AF_INET && af != AF_INET6) || !is_candidate (name))
    return not_found (errnop, h_errnop);
  addr_len = af == AF_INET ? 4 : 16;
  r = lookup (name, af, addr);
  if (r < 0)
    return unavailable (errnop, h_errnop);
  if (r == 0)
    return not_found (errnop, h_errnop);
  /* Layout: name, aliases (NULL), address, address list (addr, NULL). */
  if (buflen < offset + sizeof (char *) + ALIGN_PTR (addr_len) + 2 * sizeof (char *))
    return no_room (errnop, h_errnop);
  memcpy (buffer, name, name_len);
  aliases = (char **) (buffer + offset);
  aliases[0] = NULL;
  offset += sizeof (char *);
  memcpy (buffer + offset, addr, addr_len);
  addr_list = (char **) (buffer + offset + ALIGN_PTR (addr_len));
  addr_list[0] = buffer + offset;
  addr_list[1] = NULL;

  host->h_name = buffer;
  host->h_aliases = aliases;
  host->h_addrtype = af;
  host->h_length = addr_len;
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
