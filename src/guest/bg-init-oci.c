/* bg-init-oci.c: banger-init for images with no init (see bg-init-oci.h).
 *
 * An OCI image is a root filesystem and a command: no init, no network
 * configuration, no modprobe. banger-init stays PID 1 and does what a
 * container runtime and a minimal init would: mounts, the host name and
 * address the config drive gives (read here with libc, no GLib, no
 * cloud-init), the image's Entrypoint + Cmd as the image's User with its
 * Env in its WorkingDir, its output on the console, every orphan reaped,
 * and a power-off when the workload ends or the host asks (Ctrl-Alt-Del).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <net/route.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/virtio_ids.h>

#include "bg-init-oci.h"
#include "bg-passwd.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define SEED_MNT     "/run/banger-seed"
#define VIRTIO_DEVICES "/sys/bus/virtio/devices"

/* -- the workload record -------------------------------------------------- */

int
bg_init_workload_parse (char           *buf,
                        size_t          len,
                        BgInitWorkload *w,
                        char           *why,
                        size_t          why_size)
{
  size_t pos = 0;

  memset (w, 0, sizeof *w);
  w->buf = buf;
  while (pos < len)
    {
      char *rec = buf + pos;
      char *end = memchr (rec, '\0', len - pos);

      if (end == NULL)
        {
          snprintf (why, why_size, "workload: a record without its NUL at byte %zu", pos);
          return -1;
        }
      pos = end - buf + 1;
      if (strncmp (rec, "argv=", 5) == 0 && w->nargv < BG_INIT_ARGS_MAX)
        w->argv[w->nargv++] = rec + 5;
      else if (strncmp (rec, "env=", 4) == 0 && w->nenv < BG_INIT_ARGS_MAX && strchr (rec + 4, '='))
        w->env[w->nenv++] = rec + 4;
      else if (strncmp (rec, "cwd=", 4) == 0 && rec[4] == '/')
        w->cwd = rec + 4;
      else if (strncmp (rec, "user=", 5) == 0 && rec[5])
        w->user = rec + 5;
      else
        {
          snprintf (why, why_size, "workload: \"%.60s\" is not a record banger-init knows", rec);
          return -1;
        }
    }
  if (w->nargv == 0)
    {
      snprintf (why, why_size, "workload: the image has neither Entrypoint nor Cmd");
      return -1;
    }
  return 0;
}

static int
env_has (const BgInitWorkload *w,
         const char           *name)
{
  size_t n = strlen (name);

  for (size_t i = 0; i < w->nenv; i++)
    if (strncmp (w->env[i], name, n) == 0 && w->env[i][n] == '=')
      return 1;
  return 0;
}

static const char *
env_get (const BgInitWorkload *w,
         const char           *name)
{
  size_t n = strlen (name);

  for (size_t i = 0; i < w->nenv; i++)
    if (strncmp (w->env[i], name, n) == 0 && w->env[i][n] == '=')
      return w->env[i] + n + 1;
  return NULL;
}

void
bg_init_workload_defaults (BgInitWorkload *w,
                           const char     *home,
                           const char     *hostname,
                           char           *storage,
                           size_t          storage_size)
{
  size_t used = 0;
  struct { const char *name, *value; } defaults[] = {
    { "PATH", DEFAULT_PATH }, { "HOME", home }, { "HOSTNAME", hostname }, { "TERM", "linux" },
  };

  for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
    {
      int n;

      if (defaults[i].value == NULL || env_has (w, defaults[i].name))
        continue;
      n = snprintf (storage + used, storage_size - used, "%s=%s", defaults[i].name, defaults[i].value);
      if (n < 0 || (size_t) n >= storage_size - used)
        break;
      w->env[w->nenv++] = storage + used;
      used += n + 1;
    }
  w->env[w->nenv] = NULL;
  w->argv[w->nargv] = NULL;
}

int
bg_init_find_program (const char *root,
                      const char *path,
                      const char *name,
                      char       *out,
                      size_t      size)
{
  const char *p = path;

  if (strchr (name, '/'))
    {
      snprintf (out, size, "%s", name);
      return 0;
    }
  while (p && *p)
    {
      size_t len = strcspn (p, ":");
      char full[4096];

      if (snprintf (full, sizeof full, "%s%.*s/%s", root, (int) len, p, name) < (int) sizeof full &&
          access (full, X_OK) == 0)
        {
          snprintf (out, size, "%.*s/%s", (int) len, p, name);
          return 0;
        }
      p += len;
      if (*p == ':')
        p++;
    }
  return -1;
}

/* -- JSON, just enough for the config drive ------------------------------ */

typedef struct {
  const char     *p;
  BgInitJsonLeaf  leaf;
  void           *data;
} Json;

static void
skip_ws (Json *j)
{
  while (*j->p && isspace ((unsigned char) *j->p))
    j->p++;
}

/* A JSON string at j->p into @out (escapes decoded; \u kept as '?'). */
static int
json_string (Json   *j,
             char   *out,
             size_t  size)
{
  size_t n = 0;

  if (*j->p != '"')
    return -1;
  j->p++;
  while (*j->p && *j->p != '"')
    {
      char c = *j->p++;

      if (c == '\\')
        {
          c = *j->p++;
          switch (c)
            {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'u':
              for (int i = 0; i < 4; i++)
                if (!isxdigit ((unsigned char) *j->p++))
                  return -1;
              c = '?';
              break;
            case '"': case '\\': case '/': break;
            default: return -1;
            }
        }
      if (n + 1 < size)
        out[n++] = c;
    }
  if (*j->p != '"')
    return -1;
  j->p++;
  out[n] = '\0';
  return 0;
}

static int
json_value (Json       *j,
            const char *path,
            int         depth)
{
  char sub[512], text[4096];

  if (depth > 16)
    return -1;
  skip_ws (j);
  if (*j->p == '{' || *j->p == '[')
    {
      char close = *j->p == '{' ? '}' : ']';
      int object = *j->p == '{';

      j->p++;
      skip_ws (j);
      if (*j->p == close)
        {
          j->p++;
          return 0;
        }
      for (size_t i = 0;; i++)
        {
          skip_ws (j);
          if (object)
            {
              if (json_string (j, text, sizeof text) < 0)
                return -1;
              skip_ws (j);
              if (*j->p++ != ':')
                return -1;
              if (snprintf (sub, sizeof sub, "%s%s%s", path, *path ? "." : "", text) >= (int) sizeof sub)
                return -1;
            }
          else if (snprintf (sub, sizeof sub, "%s[%zu]", path, i) >= (int) sizeof sub)
            return -1;
          if (json_value (j, sub, depth + 1) < 0)
            return -1;
          skip_ws (j);
          if (*j->p == ',')
            {
              j->p++;
              continue;
            }
          if (*j->p++ != close)
            return -1;
          return 0;
        }
    }
  if (*j->p == '"')
    {
      if (json_string (j, text, sizeof text) < 0)
        return -1;
      j->leaf (path, text, j->data);
      return 0;
    }
  {
    size_t n = strspn (j->p, "0123456789+-.eEtruefalsn");
    if (n == 0 || n >= sizeof text)
      return -1;
    memcpy (text, j->p, n);
    text[n] = '\0';
    j->p += n;
    j->leaf (path, text, j->data);
    return 0;
  }
}

int
bg_init_json_walk (const char     *text,
                   BgInitJsonLeaf  leaf,
                   void           *data)
{
  Json j = { text, leaf, data };

  /* user-data starts with "#cloud-config"; JSON has no comments. */
  while (*j.p == '#')
    j.p += strcspn (j.p, "\n") + (j.p[strcspn (j.p, "\n")] != '\0');
  if (json_value (&j, "", 0) < 0)
    return -1;
  skip_ws (&j);
  return *j.p == '\0' ? 0 : -1;
}

static void
seed_leaf (const char *path,
           const char *value,
           void       *data)
{
  BgInitSeed *s = data;
  const char *dot;

  if (strcmp (path, "local-hostname") == 0)
    snprintf (s->hostname, sizeof s->hostname, "%s", value);
  /* network-config: version 2, one ethernet (whatever its key). */
  if (strncmp (path, "ethernets.", 10) != 0 || (dot = strchr (path + 10, '.')) == NULL)
    return;
  if (strcmp (dot, ".match.macaddress") == 0)
    snprintf (s->mac, sizeof s->mac, "%s", value);
  else if (strcmp (dot, ".addresses[0]") == 0)
    {
      const char *slash = strchr (value, '/');
      snprintf (s->address, sizeof s->address, "%.*s", slash ? (int) (slash - value) : 15, value);
      s->prefix = slash ? (unsigned) atoi (slash + 1) : 32;
    }
  else if (strcmp (dot, ".routes[0].via") == 0)
    snprintf (s->gateway, sizeof s->gateway, "%s", value);
  else if (strncmp (dot, ".nameservers.addresses[", 23) == 0 && s->ndns < BG_INIT_DNS_MAX)
    snprintf (s->dns[s->ndns++], sizeof s->dns[0], "%s", value);
  else if (strcmp (dot, ".nameservers.search[0]") == 0)
    snprintf (s->search, sizeof s->search, "%s", value);
}

static int
valid_hostname (const char *h)
{
  if (!*h)
    return 0;
  for (const char *c = h; *c; c++)
    if (!isalnum ((unsigned char) *c) && *c != '-')
      return 0;
  return h[0] != '-';
}

int
bg_init_seed_parse (const char *meta_data,
                    const char *network_config,
                    BgInitSeed *seed,
                    char       *why,
                    size_t      why_size)
{
  struct in_addr a;

  memset (seed, 0, sizeof *seed);
  if (bg_init_json_walk (meta_data, seed_leaf, seed) < 0)
    return snprintf (why, why_size, "meta-data: not JSON"), -1;
  if (bg_init_json_walk (network_config, seed_leaf, seed) < 0)
    return snprintf (why, why_size, "network-config: not JSON"), -1;
  if (!valid_hostname (seed->hostname))
    return snprintf (why, why_size, "meta-data: local-hostname: not a host name"), -1;
  if (inet_pton (AF_INET, seed->address, &a) != 1 || seed->prefix > 32)
    return snprintf (why, why_size, "network-config: addresses[0]: not an IPv4 address/prefix"), -1;
  if (seed->gateway[0] && inet_pton (AF_INET, seed->gateway, &a) != 1)
    return snprintf (why, why_size, "network-config: routes[0].via: not an IPv4 address"), -1;
  if (strlen (seed->mac) != 17)
    return snprintf (why, why_size, "network-config: match.macaddress: not a MAC address"), -1;
  return 0;
}

/* The FAT boot sector carries the volume label: at byte 43 for FAT12/16,
 * 71 for FAT32, after a 0x29 extended boot signature (as bg-seed.c). */
int
bg_init_is_cidata (int fd)
{
  unsigned char bs[512];
  size_t at;

  if (pread (fd, bs, sizeof bs, 0) != (ssize_t) sizeof bs || bs[510] != 0x55 || bs[511] != 0xAA)
    return 0;
  if (bs[22] == 0 && bs[23] == 0)
    at = bs[66] == 0x29 ? 71 : 0;
  else
    at = bs[38] == 0x29 ? 43 : 0;
  return at != 0 && strncasecmp ((const char *) bs + at, "CIDATA     ", 11) == 0;
}

/* -- kernel modules, without modprobe ------------------------------------ */

/* "kernel/fs/overlayfs/overlay.ko.xz" names module "overlay". */
static int
path_is_module (const char *path,
                const char *module)
{
  const char *base = strrchr (path, '/') ? strrchr (path, '/') + 1 : path;
  size_t n = strcspn (base, ".");

  if (n != strlen (module))
    return 0;
  for (size_t i = 0; i < n; i++)
    {
      char a = base[i] == '-' ? '_' : base[i], b = module[i] == '-' ? '_' : module[i];
      if (a != b)
        return 0;
    }
  return 1;
}

int
bg_init_module_paths (const char *modules_dir,
                      const char *module,
                      char        paths[][512],
                      int         max)
{
  char file[4096], line[8192];
  FILE *f;
  int n = -1, found = 0;

  snprintf (file, sizeof file, "%s/modules.dep", modules_dir);
  if ((f = fopen (file, "re")) == NULL)
    return -1;
  while (!found && fgets (line, sizeof line, f))
    {
      char *colon = strchr (line, ':'), *dep, *save = NULL;
      char *deps[64];
      int ndeps = 0;

      if (colon == NULL)
        continue;
      *colon = '\0';
      if (!path_is_module (line, module))
        continue;
      found = 1;
      for (dep = strtok_r (colon + 1, " \t\n", &save); dep && ndeps < 64; dep = strtok_r (NULL, " \t\n", &save))
        deps[ndeps++] = dep;
      /* modules.dep lists what a module needs, nearest first: load the
       * farthest first, the module itself last. */
      n = 0;
      for (int i = ndeps - 1; i >= 0 && n >= 0 && n < max - 1; i--)
        n = snprintf (paths[n], 512, "%s/%s", modules_dir, deps[i]) < 512 ? n + 1 : -1;
      if (n >= 0)
        n = snprintf (paths[n], 512, "%s/%s", modules_dir, line) < 512 ? n + 1 : -1;
    }
  fclose (f);
  return n;
}

#ifndef MODULE_INIT_COMPRESSED_FILE
#define MODULE_INIT_COMPRESSED_FILE 4
#endif

int
bg_init_load_module (const char *modules_dir,
                     const char *module)
{
  char paths[32][512];
  int n = bg_init_module_paths (modules_dir, module, paths, 32);

  if (n < 0)
    {
      errno = ENOENT;
      return -1;
    }
  for (int i = 0; i < n; i++)
    {
      int fd = open (paths[i], O_RDONLY | O_CLOEXEC);
      int compressed = strstr (paths[i], ".ko.") != NULL;
      long rc;

      if (fd < 0)
        return -1;
      rc = syscall (SYS_finit_module, fd, "", compressed ? MODULE_INIT_COMPRESSED_FILE : 0);
      close (fd);
      if (rc < 0 && errno != EEXIST)
        return -1;
    }
  return 0;
}

/* Whether /proc/filesystems lists @fs. */
static int
have_filesystem (const char *fs)
{
  char line[256], want[64];
  FILE *f = fopen ("/proc/filesystems", "re");
  int found = 0;

  snprintf (want, sizeof want, "\t%s\n", fs);
  while (f && fgets (line, sizeof line, f))
    found |= strstr (line, want) != NULL;
  if (f)
    fclose (f);
  return found;
}

int
bg_init_ensure_module (const char *module,
                       const char *filesystem)
{
  struct utsname un;
  char dir[512];

  if (filesystem && have_filesystem (filesystem))
    return 0;
  if (access ("/sbin/modprobe", X_OK) == 0)
    {
      pid_t pid = fork ();
      int status;

      if (pid == 0)
        {
          execl ("/sbin/modprobe", "/sbin/modprobe", "-q", module, (char *) NULL);
          _exit (127);
        }
      if (pid > 0 && waitpid (pid, &status, 0) == pid && WIFEXITED (status) && WEXITSTATUS (status) == 0)
        return 0;
    }
  /* No modprobe in the image (an OCI image): banger put the kernel's
   * modules into it; load them as modprobe would. */
  if (uname (&un) < 0)
    return -1;
  snprintf (dir, sizeof dir, "/lib/modules/%s", un.release);
  return bg_init_load_module (dir, module);
}

/* The kernel loads a vfat mount's code page (437) and I/O character set
 * (its default: "ascii" in Debian's and Fedora's kernels, "iso8859-1"
 * upstream; "utf8" with the utf8 option) by asking /sbin/modprobe, so in
 * an image without modprobe (most OCI images) the config drive's mount
 * fails ("codepage cp437 not found") unless they are loaded first. A
 * table built into the kernel is not in modules.dep and is skipped. */
int
bg_init_ensure_vfat (void)
{
  static const char * const tables[] = { "nls_cp437", "nls_ascii", "nls_iso8859-1", "nls_utf8" };
  int rc = bg_init_ensure_module ("vfat", "vfat");

  if (access ("/sbin/modprobe", X_OK) == 0)
    return rc;
  for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++)
    bg_init_ensure_module (tables[i], NULL);
  return rc;
}

int
bg_init_virtio_present (const char *devices,
                        unsigned    id)
{
  DIR *d = opendir (devices);
  struct dirent *e;
  char want[16];
  int found = 0;

  if (d == NULL)
    return 0;
  snprintf (want, sizeof want, "0x%04x\n", id);
  while (!found && (e = readdir (d)) != NULL)
    {
      char file[512], got[32] = "";
      FILE *f;

      if (e->d_name[0] == '.' || snprintf (file, sizeof file, "%s/%s/device", devices, e->d_name) >= (int) sizeof file ||
          (f = fopen (file, "re")) == NULL)
        continue;
      found = fgets (got, sizeof got, f) != NULL && strcmp (got, want) == 0;
      fclose (f);
    }
  closedir (d);
  return found;
}

/* -- PID 1 ----------------------------------------------------------------- */

int
bg_init_supervise (pid_t workload)
{
  sigset_t set;

  sigemptyset (&set);
  sigaddset (&set, SIGCHLD);
  sigaddset (&set, SIGINT);
  sigaddset (&set, SIGTERM);
  sigaddset (&set, SIGPWR);
  for (;;)
    {
      siginfo_t info;
      int status;
      pid_t pid;

      /* Reap first: a child may have ended before we waited. */
      while ((pid = waitpid (-1, &status, WNOHANG)) > 0)
        if (pid == workload)
          return status;
      if (sigwaitinfo (&set, &info) < 0)
        continue;
      if (info.si_signo != SIGCHLD)
        return -1;
    }
}

static void
say (const char *format,
     ...) __attribute__ ((format (printf, 1, 2)));

static void
say (const char *format,
     ...)
{
  va_list ap;

  fprintf (stderr, "banger-init: ");
  va_start (ap, format);
  vfprintf (stderr, format, ap);
  va_end (ap);
  fputc ('\n', stderr);
}

static void __attribute__ ((noreturn))
power_off (void)
{
  struct timespec t = { 0, 100 * 1000 * 1000 };
  sigset_t set;

  /* Everything gets SIGTERM and a few seconds, then SIGKILL. */
  kill (-1, SIGTERM);
  sigemptyset (&set);
  sigaddset (&set, SIGCHLD);
  for (int i = 0; i < 50; i++)
    {
      while (waitpid (-1, NULL, WNOHANG) > 0)
        ;
      if (kill (-1, 0) < 0 && errno == ESRCH)
        break;
      sigtimedwait (&set, NULL, &t);
    }
  kill (-1, SIGKILL);
  while (waitpid (-1, NULL, WNOHANG) > 0)
    ;
  sync ();
  say ("powering off");
  reboot (RB_POWER_OFF);
  _exit (0);
}

static void
mount_quiet (const char   *source,
             const char   *target,
             const char   *type,
             unsigned long flags,
             const char   *options)
{
  mkdir (target, 0755);
  if (mount (source, target, type, flags, options) < 0 && errno != EBUSY)
    say ("cannot mount %s at %s: %s", type, target, strerror (errno));
}

static int
read_small (const char *path,
            char       *buf,
            size_t      size)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  ssize_t n;

  if (fd < 0)
    return -1;
  n = read (fd, buf, size - 1);
  close (fd);
  if (n < 0)
    return -1;
  buf[n] = '\0';
  return 0;
}

/* The CIDATA drive, found by label, mounted read-only while read. */
static int
load_seed (BgInitSeed *seed)
{
  static char meta[65536], net[65536];
  char why[512], dev[300];
  DIR *d = opendir ("/sys/class/block");
  struct dirent *de;
  int found = 0;

  while (d && !found && (de = readdir (d)))
    {
      int fd;

      if (de->d_name[0] == '.')
        continue;
      snprintf (dev, sizeof dev, "/dev/%s", de->d_name);
      if ((fd = open (dev, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW)) < 0)
        continue;
      found = bg_init_is_cidata (fd);
      close (fd);
    }
  if (d)
    closedir (d);
  if (!found)
    return say ("no config drive (CIDATA): no host name or network"), -1;
  mkdir (SEED_MNT, 0700);
  if (mount (dev, SEED_MNT, "vfat", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "") < 0)
    return say ("cannot mount the config drive %s: %s", dev, strerror (errno)), -1;
  found = read_small (SEED_MNT "/meta-data", meta, sizeof meta) == 0 &&
          read_small (SEED_MNT "/network-config", net, sizeof net) == 0;
  umount2 (SEED_MNT, MNT_DETACH);
  rmdir (SEED_MNT);
  if (!found)
    return say ("the config drive lacks meta-data or network-config"), -1;
  if (bg_init_seed_parse (meta, net, seed, why, sizeof why) < 0)
    return say ("config drive: %s", why), -1;
  return 0;
}

static int
iface_by_mac (const char *mac,
              char       *name,
              size_t      size)
{
  DIR *d = opendir ("/sys/class/net");
  struct dirent *de;
  int found = 0;

  while (d && !found && (de = readdir (d)))
    {
      char path[512], addr[64];

      if (de->d_name[0] == '.')
        continue;
      snprintf (path, sizeof path, "/sys/class/net/%s/address", de->d_name);
      if (read_small (path, addr, sizeof addr) == 0 && strncasecmp (addr, mac, 17) == 0)
        {
          found = snprintf (name, size, "%s", de->d_name) < (int) size;
        }
    }
  if (d)
    closedir (d);
  return found ? 0 : -1;
}

static int
set_up (int         sock,
        const char *ifname)
{
  struct ifreq ifr = { 0 };

  snprintf (ifr.ifr_name, IFNAMSIZ, "%s", ifname);
  if (ioctl (sock, SIOCGIFFLAGS, &ifr) < 0)
    return -1;
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  return ioctl (sock, SIOCSIFFLAGS, &ifr);
}

/* Address, netmask and default route with the classic ioctls: libc
 * only, no netlink library, no `ip` in the image. */
static void
apply_network (const BgInitSeed *seed)
{
  struct ifreq ifr = { 0 };
  struct rtentry rt = { 0 };
  struct sockaddr_in *sin;
  char ifname[IFNAMSIZ];
  int sock = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  FILE *f;

  if (sock < 0)
    return;
  set_up (sock, "lo");
  for (int i = 0; i < 50 && iface_by_mac (seed->mac, ifname, sizeof ifname) < 0; i++)
    {
      struct timespec t = { 0, 100 * 1000 * 1000 };
      nanosleep (&t, NULL);
    }
  if (iface_by_mac (seed->mac, ifname, sizeof ifname) < 0)
    {
      say ("no network interface with MAC %s", seed->mac);
      close (sock);
      return;
    }
  snprintf (ifr.ifr_name, IFNAMSIZ, "%s", ifname);
  sin = (struct sockaddr_in *) &ifr.ifr_addr;
  sin->sin_family = AF_INET;
  inet_pton (AF_INET, seed->address, &sin->sin_addr);
  if (ioctl (sock, SIOCSIFADDR, &ifr) < 0)
    say ("cannot set %s's address: %s", ifname, strerror (errno));
  sin->sin_addr.s_addr = seed->prefix ? htonl (0xffffffffu << (32 - seed->prefix)) : 0;
  if (ioctl (sock, SIOCSIFNETMASK, &ifr) < 0)
    say ("cannot set %s's netmask: %s", ifname, strerror (errno));
  if (set_up (sock, ifname) < 0)
    say ("cannot bring %s up: %s", ifname, strerror (errno));
  if (seed->gateway[0])
    {
      sin = (struct sockaddr_in *) &rt.rt_gateway;
      sin->sin_family = AF_INET;
      inet_pton (AF_INET, seed->gateway, &sin->sin_addr);
      ((struct sockaddr_in *) &rt.rt_dst)->sin_family = AF_INET;
      ((struct sockaddr_in *) &rt.rt_genmask)->sin_family = AF_INET;
      rt.rt_flags = RTF_UP | RTF_GATEWAY;
      if (ioctl (sock, SIOCADDRT, &rt) < 0 && errno != EEXIST)
        say ("cannot add the default route: %s", strerror (errno));
    }
  close (sock);

  /* The image's resolv.conf may be a symlink into a /run it never had. */
  unlink ("/etc/resolv.conf");
  if ((f = fopen ("/etc/resolv.conf", "we")) != NULL)
    {
      for (size_t i = 0; i < seed->ndns; i++)
        fprintf (f, "nameserver %s\n", seed->dns[i]);
      if (seed->search[0])
        fprintf (f, "search %s\n", seed->search);
      fclose (f);
    }
  say ("%s: %s/%u via %s", ifname, seed->address, seed->prefix, seed->gateway[0] ? seed->gateway : "-");
}

/* The workload's child side: the image's user, directory, environment. */
static void __attribute__ ((noreturn))
exec_workload (BgInitWorkload *w,
               const char     *program)
{
  BgPasswdUser u;
  char user[512];
  const char *group = NULL;
  int fd;

  setsid ();
  if ((fd = open ("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
    {
      dup2 (fd, 0);
      close (fd);
    }
  snprintf (user, sizeof user, "%s", w->user ? w->user : "0");
  if (strchr (user, ':'))
    {
      *strchr (user, ':') = '\0';
      group = user + strlen (user) + 1;
    }
  if (bg_passwd_lookup ("/", user, &u) < 0)
    {
      say ("the image's User \"%s\" is not in its /etc/passwd", user);
      _exit (126);
    }
  if (group != NULL)
    {
      /* "user:group": a gid, or a name in /etc/group. */
      char line[4096];
      FILE *f = fopen ("/etc/group", "re");
      char *end;
      unsigned long gid = strtoul (group, &end, 10);
      int ok = *group && *end == '\0';

      while (!ok && f && fgets (line, sizeof line, f))
        {
          char *c1 = strchr (line, ':'), *c2 = c1 ? strchr (c1 + 1, ':') : NULL;
          if (c1 && c2 && (size_t) (c1 - line) == strlen (group) && strncmp (line, group, c1 - line) == 0)
            gid = strtoul (c2 + 1, NULL, 10), ok = 1;
        }
      if (f)
        fclose (f);
      if (!ok)
        {
          say ("the image's User group \"%s\" is not in its /etc/group", group);
          _exit (126);
        }
      u.gid = gid;
      u.groups[0] = gid;
      u.ngroups = 1;
    }
  if (w->cwd && chdir (w->cwd) < 0)
    {
      say ("cannot enter the image's WorkingDir %s: %s", w->cwd, strerror (errno));
      _exit (126);
    }
  if (setgroups (u.ngroups, u.groups) < 0 || setgid (u.gid) < 0 || setuid (u.uid) < 0)
    {
      say ("cannot become %s (%u:%u): %s", user, (unsigned) u.uid, (unsigned) u.gid, strerror (errno));
      _exit (126);
    }
  execve (program, (char * const *) w->argv, (char * const *) w->env);
  say ("cannot run %s: %s", program, strerror (errno));
  _exit (127);
}

void
bg_init_oci_run (void)
{
  static char buf[BG_INIT_WORKLOAD_MAX + 1], defaults[8192];
  char why[512], program[4096], home[4096] = "/";
  BgInitWorkload w;
  BgInitSeed seed;
  BgPasswdUser u;
  sigset_t set;
  ssize_t n;
  pid_t pid;
  int fd, status, have_seed;

  /* Ctrl-Alt-Del becomes SIGINT to PID 1: a clean power-off. */
  reboot (RB_DISABLE_CAD);
  sigemptyset (&set);
  sigaddset (&set, SIGCHLD);
  sigaddset (&set, SIGINT);
  sigaddset (&set, SIGTERM);
  sigaddset (&set, SIGPWR);
  sigprocmask (SIG_BLOCK, &set, NULL);

  mount_quiet ("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  mount_quiet ("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  mount_quiet ("cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  mount_quiet ("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
  mount_quiet ("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "gid=5,mode=0620,ptmxmode=0666");
  mount_quiet ("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");

  if ((fd = open (BG_INIT_WORKLOAD, O_RDONLY | O_CLOEXEC)) < 0 || (n = read (fd, buf, BG_INIT_WORKLOAD_MAX)) < 0)
    {
      say ("cannot read the image's workload %s: %s", BG_INIT_WORKLOAD, strerror (errno));
      power_off ();
    }
  close (fd);
  if (bg_init_workload_parse (buf, n, &w, why, sizeof why) < 0)
    {
      say ("%s", why);
      power_off ();
    }

  bg_init_ensure_vfat ();
  bg_init_ensure_module ("virtio_net", NULL);
  /* The guest agent's ways in (banger-init started it; it looks for
   * them for a while): nothing here loads a driver for a device as udev
   * would, so the vsock's (Firecracker) and the virtio console's (the
   * agent's virtio-serial port, where a VMM gives one) are loaded when
   * the device is there. */
  if (bg_init_virtio_present (VIRTIO_DEVICES, VIRTIO_ID_VSOCK))
    bg_init_ensure_module ("vmw_vsock_virtio_transport", NULL);
  if (bg_init_virtio_present (VIRTIO_DEVICES, VIRTIO_ID_CONSOLE))
    bg_init_ensure_module ("virtio_console", NULL);
  have_seed = load_seed (&seed) == 0;
  if (have_seed)
    {
      if (sethostname (seed.hostname, strlen (seed.hostname)) < 0)
        say ("cannot set the host name: %s", strerror (errno));
      apply_network (&seed);
    }
  if (bg_passwd_lookup ("/", w.user ? w.user : "0", &u) == 0)
    snprintf (home, sizeof home, "%s", u.home);
  bg_init_workload_defaults (&w, home, have_seed ? seed.hostname : NULL, defaults, sizeof defaults);
  if (bg_init_find_program ("", env_get (&w, "PATH"), w.argv[0], program, sizeof program) < 0)
    {
      say ("the image's command %s is not in its PATH (%s)", w.argv[0], env_get (&w, "PATH"));
      power_off ();
    }

  say ("starting the image's workload: %s", program);
  if ((pid = fork ()) == 0)
    {
      sigprocmask (SIG_UNBLOCK, &set, NULL);
      exec_workload (&w, program);
    }
  if (pid < 0)
    {
      say ("cannot start the workload: %s", strerror (errno));
      power_off ();
    }
  status = bg_init_supervise (pid);
  if (status < 0)
    say ("asked to stop (Ctrl-Alt-Del or a signal)");
  else if (WIFEXITED (status))
    say ("the workload exited with status %d", WEXITSTATUS (status));
  else
    say ("the workload was killed by signal %d", WTERMSIG (status));
  power_off ();
}
