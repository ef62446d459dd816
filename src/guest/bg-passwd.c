/* bg-passwd.c: banger's own reader of /etc/passwd and /etc/group (see
 * bg-passwd.h). Lines are bounded (longer ones are skipped, not cut), and
 * every numeric field is parsed strictly. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bg-passwd.h"

#define MAX_LINE 8192

static int
parse_id (const char *s, unsigned long *out)
{
  char *end;

  if (*s < '0' || *s > '9')
    return -1;
  errno = 0;
  *out = strtoul (s, &end, 10);
  return (errno || *end || *out >= 0xffffffffUL) ? -1 : 0;
}

/* Splits @line at ':' into at most @max fields; returns how many. */
static size_t
split (char *line, char **fields, size_t max)
{
  size_t n = 0;

  line[strcspn (line, "\n")] = '\0';
  while (n < max)
    {
      fields[n++] = line;
      if ((line = strchr (line, ':')) == NULL)
        break;
      *line++ = '\0';
    }
  return n;
}

static FILE *
open_in (const char *root, const char *file)
{
  char path[4200];

  if (snprintf (path, sizeof path, "%s%s", root && strcmp (root, "/") ? root : "", file) >= (int) sizeof path)
    {
      errno = ENAMETOOLONG;
      return NULL;
    }
  return fopen (path, "re");
}

/* Reads one line into @line; a line longer than the buffer is skipped
 * whole. Returns 0 at the end. */
static int
next_line (FILE *f, char *line, size_t size)
{
  while (fgets (line, (int) size, f) != NULL)
    {
      size_t n = strlen (line);

      if (n == size - 1 && line[n - 1] != '\n')
        {
          int c;

          while ((c = getc (f)) != EOF && c != '\n')
            ;
          continue;
        }
      return 1;
    }
  return 0;
}

static void
add_group (BgPasswdUser *u, gid_t gid)
{
  for (size_t i = 0; i < u->ngroups; i++)
    if (u->groups[i] == gid)
      return;
  if (u->ngroups < BG_PASSWD_MAX_GROUPS)
    u->groups[u->ngroups++] = gid;
}

static void
copy (char *dst, size_t size, const char *src)
{
  snprintf (dst, size, "%s", src);
}

int
bg_passwd_lookup (const char   *root,
                  const char   *user,
                  BgPasswdUser *out)
{
  char line[MAX_LINE];
  unsigned long want_uid = 0;
  int by_uid = parse_id (user, &want_uid) == 0;
  int found = 0;
  FILE *f;

  memset (out, 0, sizeof *out);
  if ((f = open_in (root, "/etc/passwd")) != NULL)
    {
      while (!found && next_line (f, line, sizeof line))
        {
          char *fld[7];
          unsigned long uid, gid;

          if (split (line, fld, 7) != 7 || parse_id (fld[2], &uid) < 0 || parse_id (fld[3], &gid) < 0)
            continue;
          if (by_uid ? uid != want_uid : strcmp (fld[0], user) != 0)
            continue;
          out->uid = uid;
          out->gid = gid;
          copy (out->name, sizeof out->name, fld[0]);
          copy (out->home, sizeof out->home, *fld[5] ? fld[5] : "/");
          copy (out->shell, sizeof out->shell, *fld[6] ? fld[6] : "/bin/sh");
          found = 1;
        }
      fclose (f);
    }
  if (!found)
    {
      if (!by_uid)
        {
          errno = ENOENT;
          return -1;
        }
      out->uid = want_uid;
      out->gid = want_uid;
      copy (out->name, sizeof out->name, user);
      copy (out->home, sizeof out->home, "/");
      copy (out->shell, sizeof out->shell, "/bin/sh");
    }
  add_group (out, out->gid);
  if (found && (f = open_in (root, "/etc/group")) != NULL)
    {
      while (next_line (f, line, sizeof line))
        {
          char *fld[4];
          unsigned long gid;

          if (split (line, fld, 4) != 4 || parse_id (fld[2], &gid) < 0)
            continue;
          for (char *m = strtok (fld[3], ","); m; m = strtok (NULL, ","))
            if (strcmp (m, out->name) == 0)
              add_group (out, gid);
        }
      fclose (f);
    }
  return 0;
}
