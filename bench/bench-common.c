/* bench-common.c: see bench-common.h. */
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include "bench-common.h"

double
bg_bench_now_ms (void)
{
  return g_get_monotonic_time () / 1000.0;
}

GArray *
bg_bench_samples (void)
{
  return g_array_new (FALSE, FALSE, sizeof (double));
}

static int
cmp (gconstpointer a, gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

double
bg_bench_median (GArray *a)
{
  if (a == NULL || a->len == 0)
    return 0;
  g_array_sort (a, cmp);
  return g_array_index (a, double, a->len / 2);
}

void
bg_bench_ids_of (BgBenchIds *ids,
                 const char *user)
{
  struct passwd *pw = getpwnam (user);

  g_assert_nonnull (pw);
  ids->uid = pw->pw_uid;
  ids->gid = pw->pw_gid;
  ids->n_groups = G_N_ELEMENTS (ids->groups);
  g_assert_cmpint (getgrouplist (pw->pw_name, pw->pw_gid, ids->groups, &ids->n_groups), >=, 0);
}

void
bg_bench_become (gpointer data)
{
  const BgBenchIds *ids = data;

  if (setgroups (ids->n_groups, ids->groups) < 0 || setgid (ids->gid) < 0 || setuid (ids->uid) < 0)
    _exit (127);
}
