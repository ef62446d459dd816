/* cmd-image.c: banger image … — the images VMs are made from. */
#include <signal.h>
#include <unistd.h>

#include "bg-cli.h"
#include "bg-config.h"
#include "bg-error.h"
#include "bg-build.h"
#include "bg-blob-cache.h"
#include "bg-image.h"
#include "bg-image-ref.h"
#include "bg-names.h"
#include "bg-oci-import.h"
#include "bg-paths.h"
#include "bg-pull.h"
#include "bg-spawn.h"
#include "bg-state.h"

static gint
compare_names (gconstpointer a,
               gconstpointer b)
{
  return g_strcmp0 (*(char **) a, *(char **) b);
}

/* Where an image came from, in a column: an OCI image's reference or
 * layout, else how it was made ("import", "build"). */
static char *
short_source (const BgImage *image)
{
  const char *colon;

  if (image->source == NULL)
    return g_strdup ("-");
  if (image->manifest_digest == NULL && (colon = strchr (image->source, ':')) != NULL)
    return g_strndup (image->source, colon - image->source);
  if (g_utf8_strlen (image->source, -1) > 48)
    {
      g_autofree char *tail = g_utf8_substring (image->source, g_utf8_strlen (image->source, -1) - 47,
                                                g_utf8_strlen (image->source, -1));
      return g_strconcat ("…", tail, NULL);
    }
  return g_strdup (image->source);
}

static gboolean
cmd_ls (BgCli *cli, int argc, char **argv, GError **error)
{
  g_autofree char *dir_path = bg_paths_images_dir ();
  g_autoptr(GDir) dir = NULL;
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(JsonArray) array = json_array_new ();
  g_autoptr(BgTable) table = bg_table_new ("NAME", "KERNEL", "ROOTFS", "INITRD", "CREATED", "SOURCE", NULL);
  guint shown = 0;
  const char *entry;

  if (!bg_cli_parse (cli, &(BgUsage) { NULL, 0, 0, "List your images.", NULL }, &argc, &argv, error))
    return FALSE;

  dir = g_dir_open (dir_path, 0, NULL);
  while (dir != NULL && (entry = g_dir_read_name (dir)) != NULL)
    if (bg_name_is_valid (entry))
      g_ptr_array_add (names, g_strdup (entry));
  g_ptr_array_sort (names, compare_names);

  for (guint i = 0; i < names->len; i++)
    {
      g_autoptr(GError) e = NULL;
      g_autoptr(BgImage) image = bg_image_load (dir_path, names->pdata[i], &e);

      if (image == NULL)
        {
          if (!g_error_matches (e, BG_ERROR, BG_ERROR_NOT_FOUND))
            bg_cli_warn ("%s", e->message);
          continue;
        }
      shown++;
      if (cli->json)
        json_array_add_element (array, bg_image_to_json (image));
      else
        {
          g_autofree char *k = bg_format_size_human (image->kernel_bytes);
          g_autofree char *r = bg_format_size_human (image->rootfs_bytes);
          g_autoptr(GDateTime) dt = g_date_time_new_from_unix_local (image->created_at);
          g_autofree char *created = dt ? g_date_time_format (dt, "%Y-%m-%d %H:%M") : g_strdup ("-");

          g_autofree char *source = short_source (image);

          bg_table_add_row (table, image->name, k, r, image->initrd ? "yes" : "no", created, source, NULL);
        }
    }

  if (cli->json)
    {
      g_autoptr(JsonNode) root = json_node_new (JSON_NODE_ARRAY);
      json_node_set_array (root, array);
      bg_cli_print_json (root);
    }
  else if (shown > 0)
    bg_table_print (table);
  else if (cli->is_tty)
    g_print ("No images yet. 'banger image import' makes one.\n");
  return TRUE;
}

static gboolean
cmd_show (BgCli *cli, int argc, char **argv, GError **error)
{
  g_autofree char *dir = bg_paths_images_dir ();
  g_autoptr(BgImage) image = NULL;
  g_autoptr(JsonNode) node = NULL;

  if (!bg_cli_parse (cli, &(BgUsage) { "NAME", 1, 1, "Show an image's details.", NULL }, &argc, &argv, error) ||
      !bg_name_validate ("NAME", argv[1], error))
    return FALSE;

  image = bg_image_load (dir, argv[1], error);
  if (image == NULL)
    return FALSE;
  node = bg_image_to_json (image);
  if (cli->json)
    {
      bg_cli_print_json (node);
      return TRUE;
    }
  {
    g_autofree char *k = bg_format_size_human (image->kernel_bytes);
    g_autofree char *r = bg_format_size_human (image->rootfs_bytes);

    g_print ("Name:      %s\n", image->name);
    g_print ("Kernel:    %s (%s), sha256 %s\n", image->kernel, k, image->kernel_sha256);
    /* An OCI image's has none: its manifest digest below says what it is. */
    if (image->rootfs_sha256)
      g_print ("Rootfs:    %s (%s), sha256 %s\n", image->rootfs, r, image->rootfs_sha256);
    else
      g_print ("Rootfs:    %s (%s)\n", image->rootfs, r);
    g_print ("Initrd:    %s\n", image->initrd ? image->initrd : "none");
    g_print ("Cmdline:   %s\n", image->cmdline ? image->cmdline : "(banger's default)");
    g_print ("Source:    %s\n", image->source ? image->source : "-");
    if (image->manifest_digest)
      {
        g_print ("Manifest:  %s\n", image->manifest_digest);
        g_print ("Layers:    %u\n", image->layers ? g_strv_length (image->layers) : 0);
        for (guint i = 0; image->layers && image->layers[i]; i++)
          g_print ("           %s\n", image->layers[i]);
      }
    if (image->boot_source == NULL)
      g_print ("Boots on Firecracker: unknown (no kernel configuration in the image's /boot, nor embedded in "
               "the kernel)\n");
    else if (image->boot_missing == NULL || image->boot_missing[0] == NULL)
      g_print ("Boots on Firecracker: yes, by %s\n", image->boot_source);
    else
      {
        g_autofree char *missing = g_strjoinv ("; ", image->boot_missing);
        g_print ("Boots on Firecracker: no, by %s, which lacks: %s\n", image->boot_source, missing);
      }
    if (image->sshd_known)
      g_print ("SSH:       %s\n", image->has_sshd ? "yes (the image has sshd: 'banger vm ssh VM')"
                                                  : "no (the image has no sshd: use 'banger vm exec -it VM -- COMMAND')");
    if (image->guest_setup)
      {
        const char *how =
          g_str_equal (image->guest_setup, "banger-guest-setup")
          ? "banger-guest-setup, started by the image's systemd (network, host name, user, SSH keys, host key)"
          : g_str_equal (image->guest_setup, "cloud-init")
          ? "cloud-init, reading the VM's NoCloud config drive"
          : g_str_equal (image->guest_setup, "banger-init")
          ? "banger-init as PID 1 (no init in the image): network and host name, then the image's command; "
            "no user or SSH keys"
          : "nothing (the image's init is not systemd and it has no cloud-init): no network, user or SSH keys "
            "are set up";
        g_print ("Guest setup: %s\n", how);
      }
    if (image->layered)
      g_print ("Layered VMs: yes (the image has banger-init: its VMs share it read-only and write to disks of "
               "their own)\n");
    else
      g_print ("Layered VMs: no, because %s; where the filesystem cannot reflink, each VM copies it\n",
               image->copy_reason ? image->copy_reason : "the image has no banger-init");
  }
  return TRUE;
}

static void
on_interrupt (int sig)
{
  bg_interrupted = 1;
}

/* import and build: each step shown as it starts (bytes too, on a
 * terminal); Ctrl-C stops the work (the job removes what it made); the
 * result is printed. */
typedef struct {
  const char           *verb;      /* "import" */
  const char           *done;      /* "Imported" */
  const char           *dir;
  const char           *name;
  const BgImageFiles   *files;     /* an import's */
  const BgBuildOptions *options;   /* a build's */
  const char           *oci;       /* an OCI layout or archive's path */
  const char           *kernel;    /* its kernel (--kernel); NULL: the default image's */
} ImageJob;

static gboolean
run_image_job (BgCli           *cli,
               const ImageJob  *job,
               GError         **error)
{
  struct sigaction sa = { .sa_handler = on_interrupt }, old_int, old_term;
  g_autoptr(BgImage) image = NULL;
  BgProgress progress;

  sigemptyset (&sa.sa_mask);
  sigaction (SIGINT, &sa, &old_int);
  sigaction (SIGTERM, &sa, &old_term);
  bg_progress_init (&progress, cli, job->name);
  if (job->oci)
    image = bg_oci_import_path (job->name, job->oci, job->kernel, &progress, error)
              ? bg_image_load (job->dir, job->name, error) : NULL;
  else
    image = job->files ? bg_image_import (job->dir, job->name, job->files, &progress, error)
                       : bg_image_build (job->dir, job->name, job->options, &progress, error);
  bg_progress_done (&progress);
  bg_progress_clear (&progress);
  sigaction (SIGINT, &old_int, NULL);
  sigaction (SIGTERM, &old_term, NULL);
  if (image == NULL)
    {
      if (bg_interrupted)
        g_prefix_error (error, "%s of %s stopped, nothing was kept: ", job->verb, job->name);
      return FALSE;
    }
  if (cli->json)
    {
      g_autoptr(JsonNode) node = bg_image_to_json (image);
      bg_cli_print_json (node);
    }
  else
    g_print ("%s image %s. Start a VM with 'banger vm up --image %s'.\n", job->done, image->name, image->name);
  return TRUE;
}

/* An image name from an OCI layout's or archive's file name:
 * "./My_App.tar" -> "my-app". */
static char *
name_from_path (const char *path)
{
  g_autofree char *canon = g_canonicalize_filename (path, NULL);
  g_autofree char *base = g_path_get_basename (canon);
  g_autoptr(GString) name = g_string_new (NULL);
  char *dot = strstr (base, ".tar");

  if (dot)
    *dot = '\0';
  for (const char *c = base; *c && name->len < 32; c++)
    {
      char l = g_ascii_tolower (*c);
      if (g_ascii_isalnum (l))
        g_string_append_c (name, l);
      else if (name->len > 0 && name->str[name->len - 1] != '-')
        g_string_append_c (name, '-');
    }
  while (name->len > 0 && name->str[name->len - 1] == '-')
    g_string_truncate (name, name->len - 1);
  return g_string_free (g_steal_pointer (&name), FALSE);
}

static gboolean
cmd_import (BgCli *cli, int argc, char **argv, GError **error)
{
  g_autofree char *kernel = NULL, *rootfs = NULL, *initrd = NULL, *cmdline = NULL;
  g_autofree char *oci = NULL, *name = NULL;
  g_autofree char *dir = bg_paths_images_dir ();
  GOptionEntry entries[] = {
    { "oci", 0, 0, G_OPTION_ARG_FILENAME, &oci, "An OCI image: an OCI image layout directory, or a 'docker save' / 'podman save' archive (offline)", "PATH" },
    { "name", 0, 0, G_OPTION_ARG_STRING, &name, "The image's name (with --oci; default: from PATH)", "NAME" },
    { "kernel", 0, 0, G_OPTION_ARG_FILENAME, &kernel, "The kernel: an x86-64 vmlinux, or a bzImage (gzip, xz or zstd) to extract one from", "FILE" },
    { "rootfs", 0, 0, G_OPTION_ARG_FILENAME, &rootfs, "The root filesystem: an ext4 image", "FILE" },
    { "initrd", 0, 0, G_OPTION_ARG_FILENAME, &initrd, "An initrd to boot with", "FILE" },
    { "cmdline", 0, 0, G_OPTION_ARG_STRING, &cmdline, "Extra kernel command line arguments", "ARGS" },
    { NULL }
  };

  if (!bg_cli_parse (cli, &(BgUsage) { "NAME", 0, 1,
                     "Import a kernel and a root filesystem as an image, or an OCI image.\n\n"
                     "The files are copied (shared with reflink where the filesystem can);\n"
                     "an interrupted import leaves nothing behind.\n\n"
                     "With --oci PATH (an OCI image layout, or a docker/podman save archive), the\n"
                     "image's layers are applied without root (in your subordinate id range, as\n"
                     "'image build' does), banger's guest programs and the default image's kernel\n"
                     "and modules (or --kernel) are added, and the image's Entrypoint/Cmd run as\n"
                     "the VM's workload where it has no init of its own.",
                     entries }, &argc, &argv, error))
    return FALSE;
  if (oci != NULL)
    {
      if (rootfs || initrd || cmdline)
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                       "--oci takes no --rootfs, --initrd or --cmdline (the image is the root filesystem)");
          return FALSE;
        }
      if (name && argc > 1)
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED, "give the name once: NAME or --name NAME");
          return FALSE;
        }
      if (name == NULL)
        name = argc > 1 ? g_strdup (argv[1]) : name_from_path (oci);
      if (!bg_name_validate ("NAME", name, error))
        {
          if (argc <= 1)
            g_prefix_error (error, "--name: none given, and \"%s\" made from the path is not a name: ", name);
          return FALSE;
        }
      return run_image_job (cli, &(ImageJob) { "import", "Imported", dir, name, NULL, NULL, oci, kernel }, error);
    }
  if (name != NULL)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED, "--name goes with --oci; otherwise give NAME");
      return FALSE;
    }
  if (argc < 2)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED, "NAME is required (or --oci PATH)");
      return FALSE;
    }
  if (!bg_name_validate ("NAME", argv[1], error))
    return FALSE;
  if (kernel == NULL || rootfs == NULL)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED, "--kernel and --rootfs are required");
      return FALSE;
    }
  /* Checked before copying gigabytes, not after. */
  if (!bg_programs_require ((const char * const[]) { "e2fsck", "debugfs", NULL }, "image import", error))
    return FALSE;

  return run_image_job (cli, &(ImageJob) { "import", "Imported", dir, argv[1],
                                           &(BgImageFiles) { kernel, rootfs, initrd, cmdline, NULL } },
                        error);
}

/* Package names go to mmdebstrap's --include: Debian's rule, so nothing
 * can pass as an option. */
static gboolean
valid_package (const char *p)
{
  if (p == NULL || !g_ascii_isalnum (p[0]) || g_ascii_isupper (p[0]) || strlen (p) > 100)
    return FALSE;
  for (const char *c = p; *c; c++)
    if (!(g_ascii_islower (*c) || g_ascii_isdigit (*c) || *c == '+' || *c == '-' || *c == '.'))
      return FALSE;
  return TRUE;
}

static gboolean
cmd_build (BgCli *cli, int argc, char **argv, GError **error)
{
  /* GOption replaces a string without freeing it: defaults come after. */
  g_autofree char *suite = NULL, *mirror = NULL, *packages = NULL, *size = NULL;
  g_autofree char *dir = bg_paths_images_dir ();
  g_auto(GStrv) pkgs = NULL;
  BgBuildOptions o = { 0 };
  gboolean cloud_init = FALSE;
  GOptionEntry entries[] = {
    { "suite", 0, 0, G_OPTION_ARG_STRING, &suite, "Debian suite (default bookworm)", "SUITE" },
    { "mirror", 0, 0, G_OPTION_ARG_STRING, &mirror, "Debian mirror URL (default: Debian's)", "URL" },
    { "packages", 0, 0, G_OPTION_ARG_STRING, &packages, "More packages, comma-separated", "A,B" },
    { "size", 0, 0, G_OPTION_ARG_STRING, &size, "Root filesystem size (default 2G)", "SIZE" },
    { "cloud-init", 0, 0, G_OPTION_ARG_NONE, &cloud_init,
      "Configure guests with cloud-init instead of banger-guest-setup (slower boots)", NULL },
    { NULL }
  };

  if (!bg_cli_parse (cli, &(BgUsage) { "NAME", 1, 1,
                     "Build a Debian image without root: mmdebstrap in a user namespace, an ext4\n"
                     "made with mke2fs -d, the kernel's vmlinux and initrd. Needs a subordinate\n"
                     "uid range for you in /etc/subuid (usermod --add-subuids). Guests are\n"
                     "configured at boot by banger-guest-setup, which reads the VM's config drive;\n"
                     "--cloud-init uses cloud-init for that instead.",
                     entries }, &argc, &argv, error) ||
      !bg_name_validate ("NAME", argv[1], error))
    return FALSE;
  if (suite == NULL)
    suite = g_strdup ("bookworm");
  /* A Debian suite or codename: lower-case letters and dashes, not empty. */
  if (*suite == '\0' || strspn (suite, "abcdefghijklmnopqrstuvwxyz-") != strlen (suite))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "--suite: \"%s\" is not a suite name", suite);
      return FALSE;
    }
  if (mirror && !(g_str_has_prefix (mirror, "http://") || g_str_has_prefix (mirror, "https://") ||
                  g_str_has_prefix (mirror, "file://")) )
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "--mirror: use an http://, https:// or file:// URL");
      return FALSE;
    }
  if (mirror && strpbrk (mirror, " \t\n"))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "--mirror: a URL has no spaces");
      return FALSE;
    }
  if (packages)
    {
      pkgs = g_strsplit (packages, ",", -1);
      for (guint i = 0; pkgs[i]; i++)
        if (!valid_package (pkgs[i]))
          {
            g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT, "--packages: \"%s\" is not a package name",
                         pkgs[i]);
            return FALSE;
          }
    }
  o.size = G_GUINT64_CONSTANT (2) << 30;
  if (size && (!bg_parse_size (size, &o.size, error) || !bg_config_validate_disk_size ("--size", o.size, error)))
    return FALSE;
  o.suite = suite;
  o.mirror = mirror;
  o.packages = pkgs;
  o.cloud_init = cloud_init;

  return run_image_job (cli, &(ImageJob) { "build", "Built", dir, argv[1], NULL, &o }, error);
}

static gboolean
cmd_pull (BgCli *cli, int argc, char **argv, GError **error)
{
  g_autofree char *name = NULL, *kernel = NULL;
  g_autoptr(BgConfig) config = NULL;
  g_autoptr(BgImageRef) ref = NULL;
  g_autoptr(BgOciPullResult) result = NULL;
  g_autoptr(GVariantBuilder) b = NULL;
  struct sigaction sa = { .sa_handler = on_interrupt }, old_int, old_term;
  BgProgress progress;
  GOptionEntry entries[] = {
    { "name", 0, 0, G_OPTION_ARG_STRING, &name,
      "The image's name (default: the repository's last part and the tag, like debian-bookworm)", "NAME" },
    { "kernel", 0, 0, G_OPTION_ARG_FILENAME, &kernel,
      "Boot it with this kernel (an x86-64 vmlinux) instead of the default image's", "FILE" },
    { NULL }
  };

  if (!bg_cli_parse (cli, &(BgUsage) { "REF", 1, 1,
                     "Pull an image from an OCI registry and make it a banger image.\n\n"
                     "REF is written as docker and podman write it: debian:bookworm (short names\n"
                     "are Docker Hub's), ghcr.io/org/app:1.2, host:5000/team/app@sha256:<digest>.\n"
                     "Indexes resolve to linux/amd64. Credentials come from podman's auth.json\n"
                     "($XDG_RUNTIME_DIR/containers/auth.json, ~/.config/containers/auth.json) or\n"
                     "~/.docker/config.json. Blobs are kept in ~/.cache/banger/blobs, so an image\n"
                     "sharing layers with one pulled before fetches only what is new, and pulling\n"
                     "an unchanged REF again asks the registry for its manifest and nothing more.\n"
                     "A registry with a CA of its own: ~/.config/banger/certs.d/HOST:PORT/ca.crt.\n"
                     "A failed or interrupted pull makes no image and keeps no partial blob.",
                     entries }, &argc, &argv, error))
    return FALSE;
  if (name != NULL && !bg_name_validate ("--name", name, error))
    return FALSE;
  ref = bg_image_ref_parse (argv[1], error);
  config = ref ? bg_config_load_default (error) : NULL;
  if (config == NULL)
    return FALSE;
  for (guint i = 0; config->insecure_registries[i] != NULL; i++)
    if (g_str_equal (config->insecure_registries[i], ref->registry))
      bg_cli_warn ("%s is named insecure in %s: pulling over plain HTTP, which anyone on the way can read "
                   "(every blob's digest is still checked)", ref->registry,
                   config->path ? config->path : "banger.conf");

  /* Ctrl-C stops the fetch or the import, which then keep nothing. */
  sigemptyset (&sa.sa_mask);
  sigaction (SIGINT, &sa, &old_int);
  sigaction (SIGTERM, &sa, &old_term);
  bg_progress_init (&progress, cli, argv[1]);
  result = bg_oci_pull (&(BgOciPullOptions) { argv[1], name, kernel,
                                              (const char * const *) config->insecure_registries },
                        &progress, error);
  bg_progress_done (&progress);
  bg_progress_clear (&progress);
  sigaction (SIGINT, &old_int, NULL);
  sigaction (SIGTERM, &old_term, NULL);
  if (result == NULL)
    {
      g_prefix_error (error, "pull of %s failed (no image made, no partial blob kept): ", argv[1]);
      return FALSE;
    }
  b = g_variant_builder_new (G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (b, "{sv}", "name", g_variant_new_string (result->name));
  g_variant_builder_add (b, "{sv}", "source", g_variant_new_string (result->source));
  g_variant_builder_add (b, "{sv}", "manifest-digest", g_variant_new_string (result->manifest_digest));
  g_variant_builder_add (b, "{sv}", "layers", g_variant_new_uint32 (result->layers));
  g_variant_builder_add (b, "{sv}", "size", g_variant_new_uint64 (result->size));
  g_variant_builder_add (b, "{sv}", "blobs-fetched", g_variant_new_uint32 (result->fetched));
  g_variant_builder_add (b, "{sv}", "bytes-fetched", g_variant_new_uint64 (result->fetched_bytes));
  g_variant_builder_add (b, "{sv}", "up-to-date", g_variant_new_boolean (result->up_to_date));
  if (result->up_to_date)
    return bg_cli_done (cli, g_variant_builder_end (b), "Image %s is up to date: %s is still %s.",
                        result->name, result->source, result->manifest_digest);
  {
    g_autofree char *fetched = bg_format_size_human (result->fetched_bytes);

    return bg_cli_done (cli, g_variant_builder_end (b),
                        "Pulled %s as image %s (%u layer%s; %u blob%s fetched, %s; the rest from the cache). "
                        "Start a VM with 'banger vm up --image %s'.",
                        result->source, result->name, result->layers, result->layers == 1 ? "" : "s",
                        result->fetched, result->fetched == 1 ? "" : "s", fetched, result->name);
  }
}

/* After an image is removed: the cached blobs no pulled image uses any
 * more, freed. A failure here is only reported: the image is gone. */
static char *
free_unused_blobs (const char *images_dir)
{
  g_autofree char *cache_dir = g_build_filename (g_get_user_cache_dir (), "banger", "blobs", NULL);
  g_autoptr(BgBlobCache) cache = NULL;
  g_autoptr(GError) local = NULL;
  g_autofree char *size = NULL;
  guint count = 0;
  guint64 bytes = 0;

  if (!g_file_test (cache_dir, G_FILE_TEST_IS_DIR))
    return g_strdup ("");
  cache = bg_blob_cache_open (TRUE, &local);
  if (cache == NULL || !bg_blob_cache_prune (cache, images_dir, &count, &bytes, &local))
    {
      bg_cli_warn ("cached blobs not freed (the next 'image rm' frees them): %s", local->message);
      return g_strdup ("");
    }
  if (count == 0)
    return g_strdup ("");
  size = bg_format_size_human (bytes);
  return g_strdup_printf (" Freed %u cached blob%s (%s) no image uses.", count, count == 1 ? "" : "s", size);
}

static gboolean
cmd_rm (BgCli *cli, int argc, char **argv, GError **error)
{
  g_autofree char *dir = bg_paths_images_dir ();
  g_autoptr(BgStateStore) store = bg_state_store_new_default ();
  g_autoptr(GPtrArray) records = NULL;
  g_autoptr(GString) users = g_string_new (NULL);
  g_autoptr(GString) layered = g_string_new (NULL);
  g_autofree char *freed = NULL;
  gboolean force = FALSE;
  GOptionEntry entries[] = {
    { "force", 'f', 0, G_OPTION_ARG_NONE, &force,
      "Remove it even though VMs use it: they keep their disks but cannot be recreated from it", NULL },
    { NULL }
  };

  if (!bg_cli_parse (cli, &(BgUsage) { "NAME", 1, 1, "Remove an image.", entries }, &argc, &argv, error) ||
      !bg_name_validate ("NAME", argv[1], error))
    return FALSE;

  records = bg_state_store_list (store, NULL, error);
  if (records == NULL)
    return FALSE;
  for (guint i = 0; i < records->len; i++)
    {
      BgVmRecord *r = records->pdata[i];
      if (g_strcmp0 (r->image, argv[1]) != 0)
        continue;
      g_string_append_printf (users, "%s%s", users->len ? ", " : "", r->name);
      if (g_strcmp0 (r->disk_mode, "layered") == 0)
        g_string_append_printf (layered, "%s%s", layered->len ? ", " : "", r->name);
    }
  /* A layered VM's root is the image itself: it cannot outlive it. */
  if (layered->len > 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_BUSY,
                   "image %s is the root of VM%s %s (layered VMs share it); remove %s first",
                   argv[1], strchr (layered->str, ',') ? "s" : "", layered->str,
                   strchr (layered->str, ',') ? "them" : "it");
      return FALSE;
    }
  if (users->len > 0 && !force)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_BUSY,
                   "image %s is used by VM%s %s; remove %s first, or use --force "
                   "(the VMs keep their own disks, but 'banger vm up' cannot make them anew)",
                   argv[1], strchr (users->str, ',') ? "s" : "", users->str,
                   strchr (users->str, ',') ? "them" : "it");
      return FALSE;
    }
  if (!bg_image_remove (dir, argv[1], error))
    return FALSE;
  freed = free_unused_blobs (dir);
  return bg_cli_done (cli, NULL, "Removed image %s%s%s.%s", argv[1], users->len ? "; it was used by " : "",
                      users->str, freed);
}

const BgCommand bg_image_commands[] = {
  { "ls", "List your images", cmd_ls },
  { "show", "Show an image's details", cmd_show },
  { "import", "Import a kernel and root filesystem, or an OCI image, as an image", cmd_import },
  { "pull", "Pull an image from an OCI registry (docker.io, ghcr.io, your own)", cmd_pull },
  { "build", "Build a Debian image without root", cmd_build },
  { "rm", "Remove an image", cmd_rm },
  { NULL }
};
