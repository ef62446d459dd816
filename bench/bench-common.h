/* bench-common.h: what every benchmark measures with: a clock, a sample
 * array and its median, and the ids a child takes to run as a user. */
#pragma once

#include <sys/types.h>
#include <glib.h>

/* Now, in milliseconds of the monotonic clock. */
double  bg_bench_now_ms  (void);
/* An array of double samples. */
GArray *bg_bench_samples (void);
/* The median of @a (sorting it; 0 for none). */
double  bg_bench_median  (GArray *a);

/* A user's ids, for a child to take before exec: the CLI starts as a
 * user's shell starts it, with no setpriv exec in between (the tests'
 * way, which would count a second exec). */
typedef struct {
  uid_t uid;
  gid_t gid;
  gid_t groups[64];
  int   n_groups;
} BgBenchIds;

void    bg_bench_ids_of  (BgBenchIds *ids,
                          const char *user);
/* A child setup function: takes the BgBenchIds @data, or exits 127. */
void    bg_bench_become  (gpointer    data);
