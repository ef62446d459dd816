/* bench-pull: `banger image pull` of a realistic image against the
 * usual tools doing the same, from the same local registry, in one run.
 *
 * The registry: the tests' own (tests/registry/registry-fixture.c):
 * Debian's docker-registry on 127.0.0.1 with TLS from a CA this run makes
 * and token auth through bg-test-registry.py's token server, as Docker
 * Hub's flow works: both sides fetch an anonymous pull token first. The image: six layers
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <gio/gio.h>
#include <glib/gstdio.h>

#include "bench-common.h"
#include "registry-fixture.h"

#define REPS    5
#define MiB     (G_GINT64_CONSTANT (1) << 20)

static const char * const layer_dirs[] = {
  "/usr/sbin", "/usr/libexec", "/usr/lib/python3.11", "/usr/share/perl", "/usr/share/locale", "/usr/share/doc",
};

typedef struct {
  char          *tmp, *layout, *kernel;
  BgTestRegistry r;
} Fixture;

static Fixture F;

static char *
path (const char *name)
{
  return g_build_filename (F.tmp, name, NULL);
}

/* @argv to completion, @envp its environment (NULL: ours); its stdout,
 * or the run stops with its stderr. */
static char *
run_env (const char * const *argv, char **envp, char **err_out)
{
  g_autofree char *out = NULL, *err = NULL;

  if (bg_test_run (argv, &out, &err, envp) != 0)
    {
      g_autofree char *line = g_strjoinv (" ", (char **) argv);
      g_error ("%s failed:\n%s%s", line, out, err);
    }
  if (err_out)
    *err_out = g_steal_pointer (&err);
  return g_steal_pointer (&out);
}
#define RUN(...) g_free (run_env ((const char * const[]) { __VA_ARGS__, NULL }, NULL, NULL))

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
  double t0 = bg_bench_now_ms ();

  F.layout = path ("layout");
  image = g_strdup_printf ("%s:bench", F.layout);
  RUN ("umoci", "init", "--layout", F.layout);
  RUN ("umoci", "new", "--image", image);
  for (guint i = 0; i < G_N_ELEMENTS (layer_dirs); i++)
    {
      nftw (layer_dirs[i], count_entry, 64, FTW_PHYS);
      RUN ("umoci", "insert", "--image", image, layer_dirs[i], layer_dirs[i]);
    }
  bg_test_registry_push (&F.r, F.layout, "bench", "bench:1", FALSE);
  g_print ("image: %u layers from this host's /usr, %" G_GUINT64_FORMAT " MiB in %" G_GUINT64_FORMAT
           " entries uncompressed (built and pushed in %.0f s)\n", (guint) G_N_ELEMENTS (layer_dirs),
           tree_bytes / MiB, tree_entries, (bg_bench_now_ms () - t0) / 1000);
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

  g_assert_cmpint (g_mkdir_with_parents (runtime, 0700), ==, 0);
  bg_test_registry_trust (&F.r, home, F.r.reg);
  bg_test_registry_trust (&F.r, home, F.r.tok);
  return home;
}

typedef struct {
  GHashTable *steps;   /* name -> GArray of ms */
  GPtrArray  *order;
} Steps;

static GArray *
step_row (Steps      *s,
          const char *key)
{
  GArray *a = g_hash_table_lookup (s->steps, key);

  if (a == NULL)
    {
      a = g_array_new (FALSE, FALSE, sizeof (double));
      g_hash_table_insert (s->steps, g_strdup (key), a);
      g_ptr_array_add (s->order, g_strdup (key));
    }
  return a;
}

/* "banger: timings: step=ms step=ms ..."; the layers' steps
 * ("applying-layer-3-of-6-(sha256:…)") summed into one row per run, and
 * the waits for a blob still arriving ("waiting-for-blob-sha256:…",
 * between them: layers are applied while later blobs are fetched) into
 * another. */
static void
add_timings (Steps *s, const char *err)
{
  const char *line = err ? strstr (err, "banger: timings:") : NULL;
  g_autofree char *copy = NULL;
  g_auto(GStrv) pairs = NULL;
  const char *sums[] = { "applying-layer-", "waiting-for-blob-" };
  const char *rows[] = { "applying-the-layers", "waiting-for-blobs" };
  double total[G_N_ELEMENTS (sums)] = { 0 };
  gboolean seen[G_N_ELEMENTS (sums)] = { FALSE };

  if (line == NULL)
    return;
  copy = g_strndup (line + 16, strcspn (line + 16, "\n"));
  pairs = g_strsplit (g_strstrip (copy), " ", -1);
  for (guint i = 0; pairs[i]; i++)
    {
      char *eq = strchr (pairs[i], '=');
      gboolean summed = FALSE;
      double ms;

      if (eq == NULL)
        continue;
      *eq = '\0';
      ms = g_ascii_strtod (eq + 1, NULL);
      for (guint j = 0; j < G_N_ELEMENTS (sums) && !summed; j++)
        if (g_str_has_prefix (pairs[i], sums[j]))
          {
            if (!seen[j])
              step_row (s, rows[j]);
            seen[j] = summed = TRUE;
            total[j] += ms;
          }
      if (!summed)
        g_array_append_val (step_row (s, pairs[i]), ms);
    }
  for (guint j = 0; j < G_N_ELEMENTS (sums); j++)
    if (seen[j])
      g_array_append_val (step_row (s, rows[j]), total[j]);
}

static double
banger_pull (const char *home, const char *name, char **err)
{
  g_auto(GStrv) envp = home_envp (home);
  g_autofree char *ref = g_strdup_printf ("%s/bench:1", F.r.reg);
  const char *argv[] = { g_getenv ("BANGER_CLI"), "image", "pull", ref, "--name", name, "--kernel", F.kernel, NULL };
  double t0 = bg_bench_now_ms ();

  g_free (run_env (argv, envp, err));
  return bg_bench_now_ms () - t0;
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
  g_autofree char *src = g_strdup_printf ("docker://%s/bench:1", F.r.reg);
  g_autofree char *dst = g_strdup_printf ("oci:%s:bench", oci);
  g_autofree char *image = g_strdup_printf ("%s:bench", oci);
  /* The size banger gives its own mke2fs for the same tree. */
  guint64 bytes = tree_bytes + tree_bytes / 4 + tree_entries * 4096 + 128 * MiB;
  g_autofree char *size = g_strdup_printf ("%" G_GUINT64_FORMAT "k", (bytes >> 20) << 10);
  double t0;

  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  t0 = bg_bench_now_ms ();
  RUN ("skopeo", "copy", "--insecure-policy", "--quiet", "--src-cert-dir", F.r.skopeo_certs, src, dst);
  *copy_ms = bg_bench_now_ms () - t0;
  t0 = bg_bench_now_ms ();
  RUN ("umoci", "unpack", "--rootless", "--image", image, bundle);
  *unpack_ms = bg_bench_now_ms () - t0;
  t0 = bg_bench_now_ms ();
  RUN ("mke2fs", "-q", "-F", "-t", "ext4", "-L", "rootfs", "-d", rootfs, ext4, size);
  *mkfs_ms = bg_bench_now_ms () - t0;
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
  bg_test_registry_start (&F.r, F.tmp);
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
      gsize reg_from = log_size (F.r.reg_log), tok_from = log_size (F.r.tok_log);
      g_autofree char *err = NULL;
      double t = banger_pull (last_home, "bench", &err);

      g_array_append_val (again, t);
      again_requests = log_count (F.r.reg_log, reg_from, "response completed", FALSE);
      again_manifests = log_count (F.r.reg_log, reg_from, "/manifests/", TRUE);
      again_blobs = log_count (F.r.reg_log, reg_from, "/blobs/", TRUE);
      again_tokens = log_count (F.r.tok_log, tok_from, "GET /token", FALSE);
    }
  remove_tree (last_home);

  g_print ("\nimage pull, cold blob cache, median of %d (alternating)\n", REPS);
  g_print ("  banger image pull                 %9.0f ms\n", bg_bench_median (banger));
  for (guint j = 0; j < steps.order->len; j++)
    g_print ("      %-56.56s %8.0f ms\n", (char *) steps.order->pdata[j],
             bg_bench_median (g_hash_table_lookup (steps.steps, steps.order->pdata[j])));
  g_print ("  skopeo copy + umoci unpack + mke2fs %7.0f ms\n", bg_bench_median (usual));
  g_print ("      skopeo copy docker:// oci:     %8.0f ms\n", bg_bench_median (copy));
  g_print ("      umoci unpack --rootless        %8.0f ms\n", bg_bench_median (unpack));
  g_print ("      mke2fs -t ext4 -d              %8.0f ms\n", bg_bench_median (mkfs));
  g_print ("  banger / usual: %.2fx (goal <= 1.0x)\n", bg_bench_median (banger) / bg_bench_median (usual));
  g_print ("\nthe same REF pulled again (the image there), median of %d: %.0f ms; the last one made %u registry "
           "request(s) (%u manifest, %u blob) and %u token request(s)\n", REPS, bg_bench_median (again), again_requests,
           again_manifests, again_blobs, again_tokens);

  bg_test_registry_stop (&F.r);
  remove_tree (F.tmp);
  g_hash_table_unref (steps.steps);
  g_ptr_array_unref (steps.order);
}

int
main (int argc, char **argv)
{
  const char *missing = bg_test_registry_missing_tool ();

  g_test_init (&argc, &argv, NULL);
  if (getuid () != 0)
    {
      g_print ("bench-pull: skipped: run it as root (both sides run as root alike)\n");
      return 0;
    }
  if (missing == NULL)
    {
      g_autofree char *mke2fs = g_find_program_in_path ("mke2fs");
      if (mke2fs == NULL)
        missing = "mke2fs";
    }
  if (missing != NULL)
    {
      g_print ("bench-pull: skipped: %s is not installed\n", missing);
      return 0;
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
