/* banger-guest-setup: the guest side of banger's config drive.
 *
 * Runs once per boot inside banger-built images (a oneshot unit ordered
 * before sysinit.target, network-pre.target and ssh.service), finds the
 * drive labelled CIDATA, and applies it without cloud-init: host name,
 * static network, resolver, the pinned SSH host key, the user with its
 * authorized keys and sudo rule, and the files synced from the owner's
 * home. Stock cloud images read the same drive with cloud-init instead.
 */
#include <locale.h>
#include <stdio.h>
#include <unistd.h>
#include <glib.h>

#include "bg-apply.h"
#include "bg-init-oci.h"
#include "bg-seed.h"

static char *opt_root = NULL;
static char *opt_seed = NULL;
static char *opt_device = NULL;
static gboolean opt_skip_network = FALSE;
static gboolean opt_check = FALSE;
static int opt_wait_ms = 10000;

static const GOptionEntry entries[] = {
  { "seed", 0, 0, G_OPTION_ARG_FILENAME, &opt_seed,
    "Read meta-data, user-data and network-config from DIR instead of the CIDATA drive", "DIR" },
  { "device", 0, 0, G_OPTION_ARG_FILENAME, &opt_device,
    "Use this block device instead of looking for the drive labelled CIDATA", "DEV" },
  { "root", 0, 0, G_OPTION_ARG_FILENAME, &opt_root,
    "Apply to the system tree below DIR (default /); the host name is then only written, not set", "DIR" },
  { "skip-network", 0, 0, G_OPTION_ARG_NONE, &opt_skip_network,
    "Do not configure the interface (the resolver file is still written)", NULL },
  { "check", 0, 0, G_OPTION_ARG_NONE, &opt_check,
    "Only read and check the documents; change nothing", NULL },
  { "wait-ms", 0, 0, G_OPTION_ARG_INT, &opt_wait_ms,
    "How long to wait for the drive to appear (default 10000)", "MS" },
  { NULL }
};

int
main (int    argc,
      char **argv)
{
  g_autoptr(GOptionContext) ctx = g_option_context_new ("- apply banger's config drive inside the guest");
  g_autoptr(GError) error = NULL;
  g_autoptr(BgSeed) seed = NULL;
  g_autofree char *device = NULL;
  gint64 start = g_get_monotonic_time ();
  BgApplyOptions o = { 0, };

  setlocale (LC_ALL, "");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_set_description (ctx,
    "Runs at boot from banger-guest-setup.service. Documents are the JSON banger writes\n"
    "(cloud-init NoCloud layout). Exit status: 0 applied, 1 failed, 2 usage.");
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      g_printerr ("banger-guest-setup: %s\nTry 'banger-guest-setup --help'.\n", error->message);
      return 2;
    }
  if (argc > 1 || opt_wait_ms < 0 || (opt_seed && opt_device))
    {
      g_printerr ("banger-guest-setup: %s\n", argc > 1 ? "no arguments expected"
                  : opt_wait_ms < 0 ? "--wait-ms: must not be negative"
                  : "--seed and --device exclude each other");
      return 2;
    }

  if (opt_seed)
    seed = bg_seed_load_dir (opt_seed, &error);
  else
    {
      /* In an image banger did not build (a pulled one with systemd)
       * there may be no modprobe and no udev to load what the drive and
       * the interface need: load them as banger-init does, from the
       * modules banger put into the image. A failure shows below, as a
       * mount or interface error. */
      bg_init_ensure_vfat ();
      if (!opt_skip_network && opt_root == NULL && access ("/sys/module/virtio_net", F_OK) != 0)
        bg_init_ensure_module ("virtio_net", NULL);
      device = opt_device ? g_strdup (opt_device) : bg_seed_find_device (opt_wait_ms, &error);
      if (device)
        seed = bg_seed_load_device (device, &error);
    }
  if (seed == NULL)
    {
      g_printerr ("banger-guest-setup: %s\n", error->message);
      return 1;
    }
  g_print ("banger-guest-setup: instance %s from %s\n", seed->instance_id, device ? device : opt_seed);
  if (opt_check)
    return 0;

  o.root = opt_root ? opt_root : "/";
  o.network = !opt_skip_network;
  if (getuid () != 0)
    g_printerr ("banger-guest-setup: warning: not running as root; expect permission errors\n");
  if (!bg_apply_seed (seed, &o, &error))
    {
      g_printerr ("banger-guest-setup: %s\n", error->message);
      return 1;
    }
  g_print ("banger-guest-setup: %s configured in %" G_GINT64_FORMAT " ms\n", seed->hostname,
           (g_get_monotonic_time () - start) / 1000);
  return 0;
}
