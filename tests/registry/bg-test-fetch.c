/* bg-test-fetch: the network half of `banger image pull` alone
 * (bg_oci_pull_fetch), for the registry tests to run while the OCI
 * importer is not in this build: it resolves REF and fills the blob
 * cache, and prints what it did as one line of key=value pairs. A test
 * instrument, never installed. Exits 1 with the error on stderr. */
#include <locale.h>

#include "bg-config.h"
#include "bg-pull.h"

int
main (int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BgConfig) config = NULL;
  g_autoptr(BgOciPullResult) result = NULL;
  BgCli cli = { FALSE, FALSE, FALSE };
  BgProgress progress;

  setlocale (LC_ALL, "");
  if (argc != 2)
    {
      g_printerr ("usage: bg-test-fetch REF\n");
      return 2;
    }
  config = bg_config_load_default (&error);
  if (config == NULL)
    {
      g_printerr ("bg-test-fetch: %s\n", error->message);
      return 1;
    }
  bg_progress_init (&progress, &cli, argv[1]);
  result = bg_oci_pull_fetch (&(BgOciPullOptions) { argv[1], NULL, NULL,
                                                    (const char * const *) config->insecure_registries },
                              &progress, &error);
  bg_progress_done (&progress);
  bg_progress_clear (&progress);
  if (result == NULL)
    {
      g_printerr ("bg-test-fetch: %s\n", error->message);
      return 1;
    }
  g_print ("name=%s source=%s manifest=%s layers=%u fetched=%u up-to-date=%d\n", result->name, result->source,
           result->manifest_digest, result->layers, result->fetched, result->up_to_date);
  for (guint i = 0; result->blobs[i]; i++)
    g_print ("blob=%s\n", result->blobs[i]);
  return 0;
}
