/* bench-pull: `banger image pull` of a realistic image against the
 * usual tools doing the same, from the same local registry, in one run.
 *
 * The registry: Debian's docker-registry on 127.0.0.1 with TLS from a CA
 * this run makes and token auth through the tests' own token server
 * (tests/registry/bg-test-registry.py token), as Docker Hub's flow works:
 * both sides fetch an anonymous pull token first. The image: six layers
 * made by `umoci insert` from this host's /usr (sbin, libexec, a Python,
 * perl, locale, doc), a few hundred MiB uncompressed and tens of
 * thousands of files, pushed with skopeo.
 *
 * Each repetition, alternating so the machine's noise falls on both:
 *
 *   banger   `banger image pull REF --kernel K` into a fresh home (cold
 *            blob cache): fetch, layers applied, banger's additions,
 *            mke2fs -d, the image stored;
 *   usual    `skopeo copy docker://REF oci:DIR` + `umoci unpack
 *            --rootless` + `mke2fs -t ext4 -d` of the unpacked tree.
 *
 * Then REF pulled again into a home that holds it: the registry's log
 * counts the requests. Medians; banger's own steps from BANGER_TIMINGS.
 * Runs as root (both sides alike); needs docker-registry, skopeo, umoci,
 * openssl, python3, which the registry suite needs too. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <gio/gio.h>
#include <glib/gstdio.h>

#define REPS    5
#define SERVICE "banger-bench-registry"
#define ISSUER  "banger-bench-issuer"
#define MiB     (G_GINT64_CONSTANT (1) << 20)

static const char * const layer_dirs[] = {
  "/usr/sbin", "/usr/libexec", "/usr/lib/python3.11", "/usr/share/perl", "/usr/share/locale", "/usr/share/doc",
};

typedef struct {
  char   *tmp, *ca, *cert, *key, *sign_cert, *sign_key, *certs_dir;
  char   *reg, *reg_log, *tok_log, *layout, *kernel;
  guint16 reg_port, tok_port;
  GPid    reg_pid, tok_pid;
} Fixture;

static Fixture F;

static double
now_ms (void)
{
  return g_get_monotonic_time () / 1000.0;
}

static int
cmp (gconstpointer a, gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

static double
median (GArray *a)
{
  if (a == NULL || a->len == 0)
    return 0;
  g_array_sort (a, cmp);
  return g_array_index (a, double, a->len / 2);
}

static char *
path (const char *name)
{
  return g_build_filename (F.tmp, name, NULL);
}

static void
die_with_parent (gpointer data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

/* @argv to completion, @envp its environment (NULL: ours); its stdout,
 * or the run stops with its stderr. */
static char *
run_env (const char * const *argv, char **envp, char **err_out)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL, *err = NULL;
  int status;

  if (!g_spawn_sync (NULL, (char **) argv, envp, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err, &status, &error))
    g_error ("cannot run %s: %s", argv[0], error->message);
  if (!g_spawn_check_wait_status (status, NULL))
    {
      g_autofree char *line = g_strjoinv (" ", (char **) argv);
      g_error ("%s failed:\n%s%s", line, out, err);
    }
  if (err_out)
    *err_out = g_steal_pointer (&err);
  return g_steal_pointer (&out);
}
#define RUN(...) g_free (run_env ((const char * const[]) { __VA_ARGS__, NULL }, NULL, NULL))

static GPid
spawn_server (const char * const *argv, const char *log)
{
  g_autoptr(GError) error = NULL;
  int fd = open (log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  GPid pid;

  g_assert_cmpint (fd, >=, 0);
  if (!g_spawn_async_with_pipes_and_fds (NULL, argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD,
                                         die_with_parent, NULL, -1, fd, fd, NULL, NULL, 0, &pid,
                                         NULL, NULL, NULL, &error))
    g_error ("cannot start %s: %s", argv[0], error->message);
  close (fd);
  return pid;
}

static void
stop_server (GPid *pid)
{
  if (*pid > 0)
    {
      kill (*pid, SIGKILL);
      waitpid (*pid, NULL, 0);
      *pid = 0;
    }
}

static guint16
free_port (void)
{
  g_autoptr(GSocket) s = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, 0, NULL);
  g_autoptr(GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) addr = g_inet_socket_address_new (lo, 0);
  g_autoptr(GSocketAddress) bound = NULL;

  g_assert_true (g_socket_bind (s, addr, FALSE, NULL));
  bound = g_socket_get_local_address (s, NULL);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

static void
wait_listening (guint16 port, GPid pid)
{
  for (guint i = 0; i < 300; i++)
    {
      g_autoptr(GSocketClient) c = g_socket_client_new ();
      g_autoptr(GSocketConnection) conn = g_socket_client_connect_to_host (c, "127.0.0.1", port, NULL, NULL);

      if (conn != NULL)
        return;
      if (waitpid (pid, NULL, WNOHANG) == pid)
        g_error ("the server for port %u exited", port);
      g_usleep (50 * 1000);
    }
  g_error ("nothing listens on 127.0.0.1:%u after 15 s", port);
}

static guint16
wait_port_file (const char *file, GPid pid)
{
  for (guint i = 0; i < 300; i++)
    {
      g_autofree char *text = NULL;

      if (g_file_get_contents (file, &text, NULL, NULL))
        return (guint16) atoi (text);
      if (waitpid (pid, NULL, WNOHANG) == pid)
        g_error ("the server writing %s exited", file);
      g_usleep (50 * 1000);
    }
  g_error ("no port in %s after 15 s", file);
}

/* ---- the registry ---- */

static void
make_certs (void)
{
  g_autofree char *csr = path ("server.csr"), *ext = path ("server.ext"), *serial = path ("ca.srl");
  g_autofree char *ca_key = path ("ca.key"), *copy = NULL, *pem = NULL;

  F.ca = path ("ca.pem");
  F.cert = path ("server.pem");
  F.key = path ("server.key");
  F.sign_cert = path ("signer.pem");
  F.sign_key = path ("signer.key");
  RUN ("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", F.ca, "-days", "2",
       "-subj", "/CN=banger bench CA", "-addext", "basicConstraints=critical,CA:TRUE",
       "-addext", "keyUsage=critical,keyCertSign,cRLSign");
  RUN ("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", F.key, "-out", csr, "-subj", "/CN=127.0.0.1");
  g_assert_true (g_file_set_contents (ext, "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                                      "extendedKeyUsage=serverAuth\n", -1, NULL));
  RUN ("openssl", "x509", "-req", "-in", csr, "-CA", F.ca, "-CAkey", ca_key, "-CAserial", serial,
       "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", F.cert);
  RUN ("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", F.sign_key, "-out", F.sign_cert,
       "-days", "2", "-subj", "/CN=banger bench token signer");
  /* skopeo's cert dir: the CA, for the registry and the token server. */
  F.certs_dir = path ("skopeo-certs");
  g_assert_cmpint (g_mkdir (F.certs_dir, 0700), ==, 0);
  copy = g_build_filename (F.certs_dir, "ca.crt", NULL);
  g_assert_true (g_file_get_contents (F.ca, &pem, NULL, NULL));
  g_assert_true (g_file_set_contents (copy, pem, -1, NULL));
}

static void
start_registry (void)
{
  g_autofree char *port_file = path ("token.port"), *config = path ("registry.yml");
  g_autofree char *storage = path ("storage"), *yml = NULL;

  F.tok_log = path ("token.log");
  F.tok_pid = spawn_server ((const char *[]) { "/usr/bin/python3", g_getenv ("BANGER_TEST_REGISTRY_PY"), "token",
                                               "--listen", "127.0.0.1", "--cert", F.cert, "--key", F.key,
                                               "--port-file", port_file, "--log", F.tok_log, "--issuer", ISSUER,
                                               "--sign-key", F.sign_key, "--sign-cert", F.sign_cert,
                                               "--user", "pusher:pusher-pw:pull+push", NULL }, F.tok_log);
  F.tok_port = wait_port_file (port_file, F.tok_pid);

  F.reg_port = free_port ();
  F.reg = g_strdup_printf ("127.0.0.1:%u", F.reg_port);
  F.reg_log = path ("registry.log");
  yml = g_strdup_printf ("version: 0.1\n"
                         "log:\n  level: info\n  formatter: text\n"
                         "storage:\n  filesystem:\n    rootdirectory: %s\n"
                         "http:\n  addr: %s\n  tls:\n    certificate: %s\n    key: %s\n"
                         "auth:\n  token:\n    realm: https://127.0.0.1:%u/token\n    service: " SERVICE "\n"
                         "    issuer: " ISSUER "\n    rootcertbundle: %s\n",
                         storage, F.reg, F.cert, F.key, F.tok_port, F.sign_cert);
  g_assert_true (g_file_set_contents (config, yml, -1, NULL));
  F.reg_pid = spawn_server ((const char *[]) { "docker-registry", "serve", config, NULL }, F.reg_log);
  wait_listening (F.reg_port, F.reg_pid);
}

/* ---- the image ---- */

static guint64 tree_bytes, tree_entries;

static int
count_entry (const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
  tree_entries++;
  if (S_ISREG (st->st_mode))
    tree_bytes += st->st_size;
  return 0;
}

/* A fake x86-64 vmlinux: banger borrows a kernel for an OCI image, and
 * this one is read as such; nothing boots in this benchmark. */
static void
make_kernel (void)
{
  g_autofree guint8 *k = g_malloc0 (4096);

  k[0] = 0x7f, k[1] = 'E', k[2] = 'L', k[3] = 'F', k[4] = 2, k[16] = 2, k[18] = 62;
  F.kernel = path ("vmlinux");
  g_assert_true (g_file_set_contents (F.kernel, (char *) k, 4096, NULL));
}

static void
build_and_push (void)
{
  g_autofree char *image = NULL, *src = NULL, *dst = NULL;
  double t0 = now_ms ();

  F.layout = path ("layout");
  image = g_strdup_printf ("%s:bench", F.layout);
  RUN ("umoci", "init", "--layout", F.layout);
  RUN ("umoci", "new", "--image", image);
  for (guint i = 0; i < G_N_ELEMENTS (layer_dirs); i++)
    {
      nftw (layer_dirs[i], count_entry, 64, FTW_PHYS);
      RUN ("umoci", "insert", "--image", image, layer_dirs[i], layer_dirs[i]);
    }
  src = g_strdup_printf ("oci:%s:bench", F.layout);
  dst = g_strdup_printf ("docker://%s/bench:1", F.reg);
  RUN ("skopeo", "copy", "--insecure-policy", "--quiet", "--dest-cert-dir", F.certs_dir,
       "--dest-creds", "pusher:pusher-pw", src, dst);
  g_print ("image: %u layers from this host's /usr, %" G_GUINT64_FORMAT " MiB in %" G_GUINT64_FORMAT
           " entries uncompressed (built and pushed in %.0f s)\n", (guint) G_N_ELEMENTS (layer_dirs),
           tree_bytes / MiB, tree_entries, (now_ms () - t0) / 1000);
  g_assert_cmpuint (tree_bytes, >=, 300 * MiB);
}

/* ---- banger ---- */

static char **
home_envp (const char *home)
{
  char **envp = g_get_environ ();
  g_autofree char *runtime = g_build_filename (home, "run", NULL);

  envp = g_environ_setenv (envp, "HOME", home, TRUE);
  envp = g_environ_setenv (envp, "XDG_RUNTIME_DIR", runtime, TRUE);
  envp = g_environ_setenv (envp, "BANGER_TIMINGS", "1", TRUE);
  envp = g_environ_unsetenv (envp, "XDG_CONFIG_HOME");
  envp = g_environ_unsetenv (envp, "XDG_CACHE_HOME");
  envp = g_environ_unsetenv (envp, "XDG_DATA_HOME");
  return envp;
}

/* A fresh home whose banger trusts the run's CA for its two servers. */
static char *
new_home (guint n)
{
  g_autofree char *name = g_strdup_printf ("home-%u", n);
  char *home = path (name);
  g_autofree char *runtime = g_build_filename (home, "run", NULL);
  g_autofree char *pem = NULL;
  g_autofree char *tok = g_strdup_printf ("127.0.0.1:%u", F.tok_port);
  const char *authorities[] = { F.reg, tok };

  g_assert_cmpint (g_mkdir_with_parents (runtime, 0700), ==, 0);
  g_assert_true (g_file_get_contents (F.ca, &pem, NULL, NULL));
  for (guint i = 0; i < G_N_ELEMENTS (authorities); i++)
    {
      g_autofree char *dir = g_build_filename (home, ".config", "banger", "certs.d", authorities[i], NULL);
      g_autofree char *file = g_build_filename (dir, "ca.crt", NULL);
      g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
      g_assert_true (g_file_set_contents (file, pem, -1, NULL));
    }
  return home;
}

typedef struct {
  GHashTable *steps;   /* name -> GArray of ms */
  GPtrArray  *order;
} Steps;

/* "banger: timings: step=ms step=ms ..."; the layers' steps
 * ("applying-layer-3-of-6-(sha256:…)") summed into one row per run. */
static void
add_timings (Steps *s, const char *err)
{
  const char *line = err ? strstr (err, "banger: timings:") : NULL;
  g_autofree char *copy = NULL;
  g_auto(GStrv) pairs = NULL;
  double layers = 0;

  if (line == NULL)
    return;
  copy = g_strndup (line + 16, strcspn (line + 16, "\n"));
  pairs = g_strsplit (g_strstrip (copy), " ", -1);
  for (guint i = 0; pairs[i]; i++)
    {
      char *eq = strchr (pairs[i], '=');
      const char *key = pairs[i];
      GArray *a;
      double ms;

      if (eq == NULL)
        continue;
      *eq = '\0';
      ms = g_ascii_strtod (eq + 1, NULL);
      if (g_str_has_prefix (key, "applying-layer-"))
        {
          layers += ms;
          if (pairs[i + 1] != NULL && g_str_has_prefix (pairs[i + 1], "applying-layer-"))
            continue;
          key = "applying-the-layers", ms = layers;
        }
      a = g_hash_table_lookup (s->steps, key);
      if (a == NULL)
        {
          a = g_array_new (FALSE, FALSE, sizeof (double));
          g_hash_table_insert (s->steps, g_strdup (key), a);
          g_ptr_array_add (s->order, g_strdup (key));
        }
      g_array_append_val (a, ms);
    }
}

static double
banger_pull (const char *home, const char *name, char **err)
{
  g_auto(GStrv) envp = home_envp (home);
  g_autofree char *ref = g_strdup_printf ("%s/bench:1", F.reg);
  const char *argv[] = { g_getenv ("BANGER_CLI"), "image", "pull", ref, "--name", name, "--kernel", F.kernel, NULL };
  double t0 = now_ms ();

  g_free (run_env (argv, envp, err));
  return now_ms () - t0;
}

static void
remove_tree (const char *p)
{
  RUN ("rm", "-rf", "--one-file-system", "--", p);
}

/* ---- the usual tools ---- */

static void
usual_pull (guint n, double *copy_ms, double *unpack_ms, double *mkfs_ms)
{
  g_autofree char *name = g_strdup_printf ("usual-%u", n);
  g_autofree char *dir = path (name);
  g_autofree char *oci = g_build_filename (dir, "oci", NULL);
  g_autofree char *bundle = g_build_filename (dir, "bundle", NULL);
  g_autofree char *rootfs = g_build_filename (bundle, "rootfs", NULL);
  g_autofree char *ext4 = g_build_filename (dir, "rootfs.ext4", NULL);
  g_autofree char *src = g_strdup_printf ("docker://%s/bench:1", F.reg);
  g_autofree char *dst = g_strdup_printf ("oci:%s:bench", oci);
  g_autofree char *image = g_strdup_printf ("%s:bench", oci);
  /* The size banger gives its own mke2fs for the same tree. */
  guint64 bytes = tree_bytes + tree_bytes / 4 + tree_entries * 4096 + 128 * MiB;
  g_autofree char *size = g_strdup_printf ("%" G_GUINT64_FORMAT "k", (bytes >> 20) << 10);
  double t0;

  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  t0 = now_ms ();
  RUN ("skopeo", "copy", "--insecure-policy", "--quiet", "--src-cert-dir", F.certs_dir, src, dst);
  *copy_ms = now_ms () - t0;
  t0 = now_ms ();
  RUN ("umoci", "unpack", "--rootless", "--image", image, bundle);
  *unpack_ms = now_ms () - t0;
  t0 = now_ms ();
  RUN ("mke2fs", "-q", "-F", "-t", "ext4", "-L", "rootfs", "-d", rootfs, ext4, size);
  *mkfs_ms = now_ms () - t0;
  remove_tree (dir);
}

/* Lines of @log after @from holding @word (and "response completed"
 * where @completed). */
static guint
log_count (const char *log, gsize from, const char *word, gboolean completed)
{
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;
  guint n = 0;

  g_assert_true (g_file_get_contents (log, &text, NULL, NULL));
  lines = g_strsplit (text + MIN (from, strlen (text)), "\n", -1);
  for (guint i = 0; lines[i]; i++)
    n += strstr (lines[i], word) != NULL && (!completed || strstr (lines[i], "response completed") != NULL);
  return n;
}

static gsize
log_size (const char *log)
{
  GStatBuf st;
  return g_stat (log, &st) == 0 ? (gsize) st.st_size : 0;
}

static void
bench (void)
{
  g_autoptr(GArray) banger = g_array_new (FALSE, FALSE, sizeof (double));
  g_autoptr(GArray) usual = g_array_new (FALSE, FALSE, sizeof (double));
  g_autoptr(GArray) copy = g_array_new (FALSE, FALSE, sizeof (double));
  g_autoptr(GArray) unpack = g_array_new (FALSE, FALSE, sizeof (double));
  g_autoptr(GArray) mkfs = g_array_new (FALSE, FALSE, sizeof (double));
  g_autoptr(GArray) again = g_array_new (FALSE, FALSE, sizeof (double));
  Steps steps = { g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_array_unref),
                  g_ptr_array_new_with_free_func (g_free) };
  g_autofree char *last_home = NULL;
  guint again_manifests = 0, again_blobs = 0, again_requests = 0, again_tokens = 0;

  F.tmp = g_dir_make_tmp ("banger-bench-pull-XXXXXX", NULL);
  g_assert_nonnull (F.tmp);
  make_certs ();
  start_registry ();
  make_kernel ();
  build_and_push ();

  for (guint i = 0; i < REPS; i++)
    {
      g_autofree char *home = new_home (i);
      g_autofree char *err = NULL;
      double b, c, u, m;

      b = banger_pull (home, "bench", &err);
      g_array_append_val (banger, b);
      add_timings (&steps, err);
      usual_pull (i, &c, &u, &m);
      g_array_append_val (copy, c);
      g_array_append_val (unpack, u);
      g_array_append_val (mkfs, m);
      c += u + m;
      g_array_append_val (usual, c);
      g_print ("  run %u: banger %.0f ms, skopeo + umoci + mke2fs %.0f ms\n", i + 1, b, c);
      if (i + 1 < REPS)
        remove_tree (home);
      else
        last_home = g_steal_pointer (&home);
    }

  /* The same REF again, where the image is: a manifest request. */
  for (guint i = 0; i < REPS; i++)
    {
      gsize reg_from = log_size (F.reg_log), tok_from = log_size (F.tok_log);
      g_autofree char *err = NULL;
      double t = banger_pull (last_home, "bench", &err);

      g_array_append_val (again, t);
      again_requests = log_count (F.reg_log, reg_from, "response completed", FALSE);
      again_manifests = log_count (F.reg_log, reg_from, "/manifests/", TRUE);
      again_blobs = log_count (F.reg_log, reg_from, "/blobs/", TRUE);
      again_tokens = log_count (F.tok_log, tok_from, "GET /token", FALSE);
    }
  remove_tree (last_home);

  g_print ("\nimage pull, cold blob cache, median of %d (alternating)\n", REPS);
  g_print ("  banger image pull                 %9.0f ms\n", median (banger));
  for (guint j = 0; j < steps.order->len; j++)
    g_print ("      %-56.56s %8.0f ms\n", (char *) steps.order->pdata[j],
             median (g_hash_table_lookup (steps.steps, steps.order->pdata[j])));
  g_print ("  skopeo copy + umoci unpack + mke2fs %7.0f ms\n", median (usual));
  g_print ("      skopeo copy docker:// oci:     %8.0f ms\n", median (copy));
  g_print ("      umoci unpack --rootless        %8.0f ms\n", median (unpack));
  g_print ("      mke2fs -t ext4 -d              %8.0f ms\n", median (mkfs));
  g_print ("  banger / usual: %.2fx (goal <= 1.0x)\n", median (banger) / median (usual));
  g_print ("\nthe same REF pulled again (the image there), median of %d: %.0f ms; the last one made %u registry "
           "request(s) (%u manifest, %u blob) and %u token request(s)\n", REPS, median (again), again_requests,
           again_manifests, again_blobs, again_tokens);

  stop_server (&F.reg_pid);
  stop_server (&F.tok_pid);
  remove_tree (F.tmp);
  g_hash_table_unref (steps.steps);
  g_ptr_array_unref (steps.order);
}

int
main (int argc, char **argv)
{
  const char *tools[] = { "docker-registry", "skopeo", "umoci", "openssl", "mke2fs" };

  g_test_init (&argc, &argv, NULL);
  if (getuid () != 0)
    {
      g_print ("bench-pull: skipped: run it as root (both sides run as root alike)\n");
      return 0;
    }
  for (guint i = 0; i < G_N_ELEMENTS (tools); i++)
    {
      g_autofree char *p = g_find_program_in_path (tools[i]);
      if (p == NULL)
        {
          g_print ("bench-pull: skipped: %s is not installed\n", tools[i]);
          return 0;
        }
    }
  for (guint i = 0; i < G_N_ELEMENTS (layer_dirs); i++)
    if (!g_file_test (layer_dirs[i], G_FILE_TEST_IS_DIR))
      {
        g_print ("bench-pull: skipped: %s (a layer of the benchmark's image) is not on this host\n", layer_dirs[i]);
        return 0;
      }
  g_test_add_func ("/bench/pull", bench);
  return g_test_run ();
}
