/* bg-init-steps.c: what banger-init does, as functions a test can run
 * against a scratch tree (tests/unit/test-init.c).
 *
 * A layered VM's root: the image's root filesystem (a read-only drive
 * shared by every VM of the image) as the lower layer of an overlayfs
 * whose upper layer is on the VM's own ext4 disk. Container engines'
 * data directories are binds of directories on that ext4: overlayfs is
 * not a supported upper layer for their own overlay storage.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bg-init.h"

const char * const bg_init_data_dirs[] = { "var/lib/docker", "var/lib/containers", NULL };

/* The value of "key=value" in a kernel command line; 0 if found. */
int
bg_init_cmdline_value (const char *cmdline,
                       const char *key,
                       char       *out,
                       size_t      size)
{
  size_t klen = strlen (key);

  for (const char *p = cmdline; p && *p;)
    {
      size_t len;

      while (*p == ' ' || *p == '\n')
        p++;
      len = strcspn (p, " \n");
      if (len > klen && strncmp (p, key, klen) == 0 && p[klen] == '=')
        {
          size_t vlen = len - klen - 1;
          if (vlen + 1 > size)
            return -1;
          memcpy (out, p + klen + 1, vlen);
          out[vlen] = '\0';
          return 0;
        }
      p += len;
    }
  return -1;
}

/* 1 if @device holds an ext2/3/4 filesystem (its superblock magic), 0 if
 * it is blank (a new VM's first boot), -1 if it cannot be read. */
int
bg_init_has_filesystem (const char *device)
{
  unsigned char magic[2];
  int fd = open (device, O_RDONLY | O_CLOEXEC);
  ssize_t n;

  if (fd < 0)
    return -1;
  n = pread (fd, magic, sizeof magic, 1024 + 0x38);
  close (fd);
  if (n != sizeof magic)
    return -1;
  return magic[0] == 0x53 && magic[1] == 0xef;
}

static int
mkdir_p (const char *path,
         mode_t      mode)
{
  char buf[4096];

  if (strlen (path) >= sizeof buf)
    return -1;
  strcpy (buf, path);
  for (char *p = buf + 1; *p; p++)
    if (*p == '/')
      {
        *p = '\0';
        if (mkdir (buf, 0755) < 0 && errno != EEXIST)
          return -1;
        *p = '/';
      }
  return mkdir (buf, mode) < 0 && errno != EEXIST ? -1 : 0;
}

static int
fail (char       *why,
      size_t      why_size,
      const char *what,
      const char *path)
{
  snprintf (why, why_size, "%s %s: %s", what, path, strerror (errno));
  return -1;
}

/* The VM's root at @newroot: an overlayfs of @base (read-only, lower)
 * and @upper (a mounted ext4: its root/ and work/), with every container
 * data dir bound from @upper's data/. 0, or -1 with @why. */
int
bg_init_assemble (const char *base,
                  const char *upper,
                  const char *newroot,
                  char       *why,
                  size_t      why_size)
{
  char a[4096], b[4096], opts[12288];

  snprintf (a, sizeof a, "%s/" BG_INIT_UPPER_ROOT, upper);
  snprintf (b, sizeof b, "%s/" BG_INIT_UPPER_WORK, upper);
  if (mkdir_p (a, 0755) < 0)
    return fail (why, why_size, "cannot create", a);
  if (mkdir_p (b, 0700) < 0)
    return fail (why, why_size, "cannot create", b);
  if (mkdir_p (newroot, 0755) < 0)
    return fail (why, why_size, "cannot create", newroot);
  snprintf (opts, sizeof opts, "lowerdir=%s,upperdir=%s,workdir=%s", base, a, b);
  if (mount ("overlay", newroot, "overlay", 0, opts) < 0)
    return fail (why, why_size, "cannot mount the overlay at", newroot);

  for (int i = 0; bg_init_data_dirs[i]; i++)
    {
      snprintf (a, sizeof a, "%s/" BG_INIT_UPPER_DATA "/%s", upper, bg_init_data_dirs[i]);
      snprintf (b, sizeof b, "%s/%s", newroot, bg_init_data_dirs[i]);
      if (mkdir_p (a, 0711) < 0)
        return fail (why, why_size, "cannot create", a);
      if (mkdir_p (b, 0711) < 0)
        return fail (why, why_size, "cannot create", b);
      if (mount (a, b, NULL, MS_BIND, NULL) < 0)
        return fail (why, why_size, "cannot bind", b);
    }
  return 0;
}
