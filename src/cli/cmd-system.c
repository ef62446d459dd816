/* cmd-system.c: banger system … — the host side of banger. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "bg-cli.h"
#include "bg-client.h"
#include "bg-config.h"
#include "bg-build.h"
#include "bg-error.h"
#include "bg-file.h"
#include "bg-guest.h"
#include "bg-paths.h"
#include "bg-state.h"
#include "bg-vm.h"

typedef struct {
  const char *name;
  gboolean    ok;
  char       *detail;
  char       *hint;
} Check;

static void
check_clear (Check *c)
{
  g_free (c->detail);
  g_free (c->hint);
}

static void
check_mechanism (Check *c)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  const char *version;
  guint32 uid;

  c->name = "mechanism";
  reply = bg_client_call ("Ping", NULL, G_VARIANT_TYPE ("(su)"), NULL, NULL, &error);
  if (reply == NULL)
    {
      c->detail = g_strdup (error->message);
      if (strstr (error->message, "system D-Bus"))
        c->hint = g_strdup ("start the system bus (systemctl start dbus) or log in to a normal session");
      else
        c->hint = g_strdup ("install banger with tools/bootstrap so D-Bus can start banger-mechanism");
      return;
    }
  g_variant_get (reply, "(&su)", &version, &uid);
  c->ok = TRUE;
  c->detail = g_strdup_printf ("banger-mechanism %s answers (it sees you as uid %u)", version, uid);
}

static void
check_polkit (Check *c)
{
  static const char * const actions[] = {
    "org.banger.network", "org.banger.storage", "org.banger.vm", "org.banger.admin",
  };
  g_autofree char *path = g_build_filename (BG_POLKIT_ACTIONS_DIR, "org.banger.policy", NULL);
  g_autofree char *text = NULL;
  g_autoptr(GString) missing = g_string_new (NULL);

  c->name = "polkit actions";
  if (!g_file_get_contents (path, &text, NULL, NULL))
    {
      c->detail = g_strdup_printf ("%s is not installed", path);
      c->hint = g_strdup ("install banger with tools/bootstrap; polkitd reads actions only from "
                          BG_POLKIT_ACTIONS_DIR);
      return;
    }
  for (guint i = 0; i < G_N_ELEMENTS (actions); i++)
    {
      g_autofree char *needle = g_strdup_printf ("id=\"%s\"", actions[i]);
      if (strstr (text, needle) == NULL)
        g_string_append_printf (missing, "%s%s", missing->len ? ", " : "", actions[i]);
    }
  if (missing->len > 0)
    {
      c->detail = g_strdup_printf ("%s lacks %s", path, missing->str);
      c->hint = g_strdup ("reinstall banger: the installed policy is from another version");
      return;
    }
  c->ok = TRUE;
  c->detail = g_strdup_printf ("%s defines all %u actions", path, (guint) G_N_ELEMENTS (actions));
}

static void
check_kvm (Check *c)
{
  int fd, version;

  c->name = "kvm";
  fd = open ("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd < 0)
    {
      int errsv = errno;
      c->detail = g_strdup_printf ("cannot open /dev/kvm: %s", g_strerror (errsv));
      if (errsv == ENOENT)
        c->hint = g_strdup ("enable virtualization in the firmware and load kvm_intel or kvm_amd");
      else if (errsv == EACCES || errsv == EPERM)
        c->hint = g_strdup ("add yourself to the group that owns /dev/kvm (usually 'kvm') and log in again");
      else
        c->hint = g_strdup ("check that KVM works on this host");
      return;
    }
  version = ioctl (fd, KVM_GET_API_VERSION, 0);
  close (fd);
  if (version != KVM_API_VERSION)
    {
      c->detail = g_strdup_printf ("/dev/kvm reports API version %d, expected %d", version, KVM_API_VERSION);
      c->hint = g_strdup ("this kernel's KVM is not usable by Firecracker");
      return;
    }
  c->ok = TRUE;
  c->detail = g_strdup_printf ("/dev/kvm is usable (API version %d)", version);
}

/* The mechanism resolves the VMM from its own root-owned config; show the
 * same choice here. */
static char *
resolve_firecracker (const char **source)
{
  g_autoptr(GKeyFile) kf = g_key_file_new ();
  g_autofree char *conf = g_build_filename (BG_SYSCONFDIR, "mechanism.conf", NULL);
  char *path;

  if (g_key_file_load_from_file (kf, conf, G_KEY_FILE_NONE, NULL) &&
      (path = g_key_file_get_string (kf, "vmm", "firecracker", NULL)) != NULL)
    {
      *source = "from " BG_SYSCONFDIR "/mechanism.conf";
      return path;
    }
  if (g_file_test (BG_DEFAULT_FIRECRACKER, G_FILE_TEST_IS_EXECUTABLE))
    {
      *source = "compiled-in default";
      return g_strdup (BG_DEFAULT_FIRECRACKER);
    }
  *source = "from PATH";
  return g_find_program_in_path ("firecracker");
}

static void
check_firecracker (Check *c)
{
  g_autofree char *path = NULL;
  g_autofree char *out = NULL;
  g_autoptr(GError) error = NULL;
  const char *source = NULL;
  int status = 0;

  c->name = "firecracker";
  path = resolve_firecracker (&source);
  if (path == NULL)
    {
      c->detail = g_strdup ("no firecracker binary in " BG_SYSCONFDIR "/mechanism.conf, at "
                            BG_DEFAULT_FIRECRACKER " or on PATH");
      c->hint = g_strdup ("download a release from github.com/firecracker-microvm/firecracker/releases "
                          "and install it as " BG_DEFAULT_FIRECRACKER);
      return;
    }

  {
    const char *argv[] = { path, "--version", NULL };
    if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL,
                       &out, NULL, &status, &error) ||
        !g_spawn_check_wait_status (status, &error))
      {
        c->detail = g_strdup_printf ("%s (%s) does not run: %s", path, source, error->message);
        c->hint = g_strdup ("install a working Firecracker binary for this architecture");
        return;
      }
  }
  c->ok = TRUE;
  g_strstrip (out);
  if (strchr (out, '\n'))
    *strchr (out, '\n') = '\0';
  c->detail = g_strdup_printf ("%s (%s): %s", path, source, out);
}

/* Copied into every image `image build` makes (without --cloud-init). */
static void
check_guest_setup (Check *c)
{
  g_autofree char *path = bg_build_guest_setup_path ();

  c->name = "guest setup";
  if (!g_file_test (path, G_FILE_TEST_IS_EXECUTABLE) || g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      c->detail = g_strdup_printf ("%s is missing: 'banger image build' cannot put it into images", path);
      c->hint = g_strdup ("reinstall banger (tools/bootstrap), set BANGER_GUEST_SETUP to a built "
                          "banger-guest-setup, or build images with --cloud-init");
      return;
    }
  c->ok = TRUE;
  c->detail = g_strdup_printf ("%s (copied into built images)", path);
}

static void
check_runtime_dir (Check *c)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = NULL;

  c->name = "runtime dir";
  dir = bg_paths_ensure_runtime_dir (&error);
  if (dir == NULL)
    {
      c->detail = g_strdup (error->message);
      c->hint = g_strdup ("set XDG_RUNTIME_DIR to a private directory, or remove the one named");
      return;
    }
  c->ok = TRUE;
  c->detail = g_strdup_printf ("%s (private, 0700)", dir);
}

static void
check_config (Check *c)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BgConfig) config = NULL;

  c->name = "config";
  config = bg_config_load_default (&error);
  if (config == NULL)
    {
      c->detail = g_strdup (error->message);
      c->hint = g_strdup ("fix the value named, or move the file away to use the defaults");
      return;
    }
  c->ok = TRUE;
  if (!g_file_test (config->path, G_FILE_TEST_EXISTS))
    c->detail = g_strdup_printf ("%s absent, using defaults", config->path);
  else if (config->warnings->len > 0)
    c->detail = g_strdup_printf ("%s (%u warning%s: %s)", config->path, config->warnings->len,
                                 config->warnings->len == 1 ? "" : "s",
                                 (char *) config->warnings->pdata[0]);
  else
    c->detail = g_strdup_printf ("%s", config->path);
}

/* One line per VM that needs attention: its VMM died, or a 'vm up' was
 * killed halfway. */
static void
check_vms (Check *c)
{
  g_autoptr(BgStateStore) store = bg_state_store_new_default ();
  g_autoptr(GPtrArray) problems = NULL;
  g_autoptr(GPtrArray) records = NULL;
  g_autoptr(GString) bad = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  guint running = 0;

  c->name = "vms";
  records = bg_state_store_list (store, &problems, &error);
  if (records == NULL)
    {
      c->detail = g_strdup (error->message);
      c->hint = g_strdup ("fix or move away the file named");
      return;
    }
  for (guint i = 0; i < records->len; i++)
    {
      BgVmRecord *r = records->pdata[i];
      g_autofree char *state = bg_vm_probe_state (r);

      if (g_str_equal (state, "crashed"))
        g_string_append_printf (bad, "%s%s crashed (its VMM is gone)", bad->len ? "; " : "", r->name);
      else if (g_str_equal (state, "creating"))
        g_string_append_printf (bad, "%s%s is half-made (a 'vm up' was interrupted)", bad->len ? "; " : "", r->name);
      else if (g_str_equal (state, "running") || g_str_equal (state, "paused"))
        running++;
    }
  for (guint i = 0; i < problems->len; i++)
    g_string_append_printf (bad, "%s%s", bad->len ? "; " : "", (char *) problems->pdata[i]);
  if (bad->len > 0)
    {
      c->detail = g_strdup (bad->str);
      c->hint = g_strdup ("'banger system cleanup' removes half-made VMs; 'banger vm start NAME' restarts a "
                          "crashed one, 'banger vm rm NAME' removes it");
      return;
    }
  c->ok = TRUE;
  c->detail = g_strdup_printf ("%u VM%s, %u running, none needs attention", records->len,
                               records->len == 1 ? "" : "s", running);
}

static gboolean
cmd_status (BgCli    *cli,
            int       argc,
            char    **argv,
            GError  **error)
{
  Check checks[8] = { { 0 } };
  void (*run[]) (Check *) = {
    check_mechanism, check_polkit, check_kvm, check_firecracker, check_guest_setup, check_runtime_dir,
    check_config, check_vms,
  };
  gboolean all_ok = TRUE;

  if (!bg_cli_parse (cli, argv[0], NULL,
                     "Check that this host can run banger VMs.\n\n"
                     "Exits 0 when every check passes and 1 otherwise.",
                     NULL, &argc, &argv, error) ||
      !bg_cli_expect_args (argv[0], argc, 0, 0, error))
    return FALSE;

  for (guint i = 0; i < G_N_ELEMENTS (run); i++)
    {
      run[i] (&checks[i]);
      all_ok &= checks[i].ok;
    }

  if (cli->json)
    {
      g_autoptr(JsonBuilder) b = json_builder_new ();
      g_autoptr(JsonNode) root = NULL;

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "ok");
      json_builder_add_boolean_value (b, all_ok);
      json_builder_set_member_name (b, "checks");
      json_builder_begin_array (b);
      for (guint i = 0; i < G_N_ELEMENTS (checks); i++)
        {
          json_builder_begin_object (b);
          json_builder_set_member_name (b, "name");
          json_builder_add_string_value (b, checks[i].name);
          json_builder_set_member_name (b, "status");
          json_builder_add_string_value (b, checks[i].ok ? "ok" : "missing");
          json_builder_set_member_name (b, "detail");
          json_builder_add_string_value (b, checks[i].detail);
          json_builder_set_member_name (b, "hint");
          if (checks[i].hint)
            json_builder_add_string_value (b, checks[i].hint);
          else
            json_builder_add_null_value (b);
          json_builder_end_object (b);
        }
      json_builder_end_array (b);
      json_builder_end_object (b);
      root = json_builder_get_root (b);
      bg_cli_print_json (root);
    }
  else
    {
      for (guint i = 0; i < G_N_ELEMENTS (checks); i++)
        {
          g_print ("%-15s %-8s %s\n", checks[i].name, checks[i].ok ? "ok" : "missing",
                   checks[i].detail);
          if (checks[i].hint)
            g_print ("%-15s %-8s hint: %s\n", "", "", checks[i].hint);
        }
    }

  for (guint i = 0; i < G_N_ELEMENTS (checks); i++)
    check_clear (&checks[i]);
  bg_client_shutdown ();

  if (!all_ok)
    {
      /* The report is the output; the exit code tells scripts. */
      g_set_error_literal (error, BG_ERROR, BG_ERROR_NOT_SUPPORTED,
                           "this host is not ready to run banger VMs (see above)");
      return FALSE;
    }
  return TRUE;
}

static void
add_variant_member (JsonBuilder *b,
                    const char  *key,
                    GVariant    *value)
{
  json_builder_set_member_name (b, key);
  json_builder_add_value (b, json_gvariant_serialize (value));
}

static gboolean
cmd_network (BgCli    *cli,
             int       argc,
             char    **argv,
             GError  **error)
{
  g_autoptr(GVariant) info_reply = NULL;
  g_autoptr(GVariant) list_reply = NULL;
  g_autoptr(GVariant) info = NULL;
  g_autoptr(GVariant) taps = NULL;
  GVariantDict options;

  if (!bg_cli_parse (cli, argv[0], NULL,
                     "Show the VM network: bridge, subnet, NAT, DNS and your taps.",
                     NULL, &argc, &argv, error) ||
      !bg_cli_expect_args (argv[0], argc, 0, 0, error))
    return FALSE;

  info_reply = bg_client_call ("NetworkInfo", NULL, G_VARIANT_TYPE ("(a{sv})"), NULL, NULL, error);
  if (info_reply == NULL)
    return FALSE;
  g_variant_dict_init (&options, NULL);
  g_variant_dict_insert (&options, "kind", "s", "tap");
  list_reply = bg_client_call ("ListResources", g_variant_new ("(@a{sv})", g_variant_dict_end (&options)),
                               G_VARIANT_TYPE ("(a(ssutsa{sv}))"), NULL, NULL, error);
  bg_client_shutdown ();
  if (list_reply == NULL)
    return FALSE;
  info = g_variant_get_child_value (info_reply, 0);
  taps = g_variant_get_child_value (list_reply, 0);

  if (cli->json)
    {
      g_autoptr(JsonBuilder) b = json_builder_new ();
      g_autoptr(JsonNode) root = NULL;
      GVariantIter iter;
      const char *key;
      GVariant *value;

      json_builder_begin_object (b);
      g_variant_iter_init (&iter, info);
      while (g_variant_iter_next (&iter, "{&sv}", &key, &value))
        {
          add_variant_member (b, key, value);
          g_variant_unref (value);
        }
      json_builder_set_member_name (b, "taps");
      json_builder_begin_array (b);
      for (gsize i = 0; i < g_variant_n_children (taps); i++)
        {
          g_autoptr(GVariant) t = g_variant_get_child_value (taps, i);
          g_autoptr(GVariant) details = g_variant_get_child_value (t, 5);
          const char *name, *state;

          g_variant_get_child (t, 1, "&s", &name);
          g_variant_get_child (t, 4, "&s", &state);
          json_builder_begin_object (b);
          json_builder_set_member_name (b, "tap");
          json_builder_add_string_value (b, name);
          json_builder_set_member_name (b, "state");
          json_builder_add_string_value (b, state);
          g_variant_iter_init (&iter, details);
          while (g_variant_iter_next (&iter, "{&sv}", &key, &value))
            {
              add_variant_member (b, key, value);
              g_variant_unref (value);
            }
          json_builder_end_object (b);
        }
      json_builder_end_array (b);
      json_builder_end_object (b);
      root = json_builder_get_root (b);
      bg_cli_print_json (root);
      return TRUE;
    }

  {
    const char *bridge = "", *subnet = "", *gateway = "", *uplink = "", *domain = "";
    g_autofree const char **dns = NULL;
    gboolean nat = FALSE;
    g_autofree char *dns_text = NULL;

    g_variant_lookup (info, "bridge", "&s", &bridge);
    g_variant_lookup (info, "subnet", "&s", &subnet);
    g_variant_lookup (info, "gateway", "&s", &gateway);
    g_variant_lookup (info, "uplink", "&s", &uplink);
    g_variant_lookup (info, "domain", "&s", &domain);
    g_variant_lookup (info, "nat", "b", &nat);
    g_variant_lookup (info, "dns", "^a&s", &dns);
    dns_text = dns && dns[0] ? g_strjoinv (", ", (char **) dns) : g_strdup ("none found (guests get no DNS)");

    g_print ("Bridge:   %s\n", bridge);
    g_print ("Subnet:   %s\n", *subnet ? subnet : "not set up yet ('banger vm up' sets it up)");
    g_print ("Gateway:  %s\n", *gateway ? gateway : "-");
    g_print ("Uplink:   %s\n", *uplink ? uplink : "-");
    g_print ("NAT:      %s\n", nat ? "on (nftables table ip banger)" : "off");
    g_print ("Names:    NAME.%s\n", domain);
    g_print ("DNS:      %s\n", dns_text);
    if (g_variant_n_children (taps) > 0)
      {
        g_autoptr(BgTable) table = bg_table_new ("TAP", "VM", "ADDRESS", "MAC", "STATE", NULL);

        g_print ("\n");
        for (gsize i = 0; i < g_variant_n_children (taps); i++)
          {
            g_autoptr(GVariant) t = g_variant_get_child_value (taps, i);
            g_autoptr(GVariant) details = g_variant_get_child_value (t, 5);
            const char *name, *state, *vm = "-", *address = "-", *mac = "-";

            g_variant_get_child (t, 1, "&s", &name);
            g_variant_get_child (t, 4, "&s", &state);
            g_variant_lookup (details, "vm", "&s", &vm);
            g_variant_lookup (details, "address", "&s", &address);
            g_variant_lookup (details, "mac", "&s", &mac);
            bg_table_add_row (table, name, vm, address, mac, state, NULL);
          }
        bg_table_print (table);
      }
  }
  return TRUE;
}

typedef struct {
  char *kind;
  char *name;
  char *why;
  guint32 owner;
} Leftover;

static void
leftover_free (Leftover *l)
{
  g_free (l->kind);
  g_free (l->name);
  g_free (l->why);
  g_free (l);
}

/* What a crash can leave: records stuck in "creating" (a `vm up` killed
 * midway, with their files, tap and pinned key), and mechanism resources
 * no live VM of ours explains: a VMM whose record is not running, a tap
 * no record names, a loop device (only a running step holds one). */
static GPtrArray *
find_leftovers (gboolean    all_users,
                GPtrArray **stale_records,
                GError    **error)
{
  g_autoptr(BgStateStore) store = bg_state_store_new_default ();
  g_autoptr(GPtrArray) records = bg_state_store_list (store, NULL, error);
  g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify) leftover_free);
  g_autoptr(GHashTable) taps = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GHashTable) running = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) list = NULL;
  GVariantDict opts;
  guint32 me = getuid ();

  if (records == NULL)
    return NULL;
  *stale_records = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < records->len; i++)
    {
      BgVmRecord *r = records->pdata[i];
      g_autofree char *state = bg_vm_probe_state (r);

      if (g_str_equal (r->state, "creating"))
        {
          g_ptr_array_add (*stale_records, g_strdup (r->name));
          continue;
        }
      if (r->tap)
        g_hash_table_add (taps, r->tap);
      if (g_str_equal (state, "running") || g_str_equal (state, "paused") || g_str_equal (state, "starting"))
        g_hash_table_add (running, r->name);
    }

  g_variant_dict_init (&opts, NULL);
  if (all_users)
    g_variant_dict_insert (&opts, "all-users", "b", TRUE);
  reply = bg_client_call ("ListResources", g_variant_new ("(@a{sv})", g_variant_dict_end (&opts)),
                          G_VARIANT_TYPE ("(a(ssutsa{sv}))"), NULL, NULL, error);
  if (reply == NULL)
    return NULL;
  list = g_variant_get_child_value (reply, 0);
  for (gsize i = 0; i < g_variant_n_children (list); i++)
    {
      g_autoptr(GVariant) details = NULL;
      const char *kind, *name, *state, *vm = NULL;
      guint32 owner;
      guint64 created;
      const char *why = NULL;

      g_variant_get_child (list, i, "(&s&sut&s@a{sv})", &kind, &name, &owner, &created, &state, &details);
      g_variant_lookup (details, "vm", "&s", &vm);
      if (owner != me)
        {
          /* Other users' VMs and taps are theirs to judge; a VMM without
           * a live process the mechanism already reconciled. Loops and
           * half-made entries are leftovers for anyone. */
          if (g_str_equal (kind, "loop") || !g_str_equal (state, "ready"))
            why = "left half-made or unheld";
        }
      else if (g_str_equal (kind, "vm") && !(vm && g_hash_table_contains (running, vm)))
        why = "a VMM no running VM of yours explains";
      else if (g_str_equal (kind, "tap") && !g_hash_table_contains (taps, name))
        why = "a tap no VM of yours uses";
      else if (g_str_equal (kind, "loop"))
        why = "a loop device nothing holds";
      else if (!g_str_equal (state, "ready"))
        why = "left half-made";
      if (why == NULL)
        continue;
      {
        Leftover *l = g_new0 (Leftover, 1);
        l->kind = g_strdup (kind);
        l->name = g_strdup (name);
        l->why = g_strdup (why);
        l->owner = owner;
        g_ptr_array_add (out, l);
      }
    }
  return g_steal_pointer (&out);
}

static gboolean
cmd_cleanup (BgCli    *cli,
             int       argc,
             char    **argv,
             GError  **error)
{
  gboolean dry_run = FALSE, all_users = FALSE;
  GOptionEntry entries[] = {
    { "dry-run", 'n', 0, G_OPTION_ARG_NONE, &dry_run, "Only say what would be removed", NULL },
    { "all-users", 0, 0, G_OPTION_ARG_NONE, &all_users, "Also other users' leftovers (needs an administrator)", NULL },
    { NULL }
  };
  g_autoptr(GPtrArray) leftovers = NULL;
  g_autoptr(GPtrArray) stale = NULL;
  g_autoptr(BgStateStore) store = bg_state_store_new_default ();
  guint failed = 0;

  if (!bg_cli_parse (cli, argv[0], NULL,
                     "Find and remove what a crash left behind: half-made VMs, and taps, VMMs,\n"
                     "loop devices and jails no VM of yours explains.",
                     entries, &argc, &argv, error) ||
      !bg_cli_expect_args (argv[0], argc, 0, 0, error))
    return FALSE;

  /* Half-made VMs first: their own undo removes their resources. */
  leftovers = find_leftovers (all_users, &stale, error);
  if (leftovers == NULL)
    return FALSE;
  for (guint i = 0; i < stale->len; i++)
    {
      const char *name = stale->pdata[i];
      g_autoptr(GError) e = NULL;

      g_print ("%s VM %s (left half-made by an interrupted 'vm up')\n", dry_run ? "would remove" : "removing", name);
      if (!dry_run && !bg_vm_remove (cli, name, TRUE, &e))
        {
          /* Its record is unusable as a VM; remove what we can by hand. */
          g_autoptr(BgVmRecord) r = bg_state_store_load (store, name, NULL);
          g_autofree char *dir = bg_vm_dir (name);
          g_autofree char *kh = bg_known_hosts_path ();

          if (r && r->domain)
            {
              g_autofree char *alias = g_strdup_printf ("%s.%s", name, r->domain);
              bg_known_hosts_remove (kh, alias, r->address, NULL);
            }
          bg_file_remove_tree (dir, NULL);
          bg_state_store_delete (store, name, NULL);
        }
    }
  if (stale->len > 0 && !dry_run)
    {
      g_clear_pointer (&leftovers, g_ptr_array_unref);
      g_clear_pointer (&stale, g_ptr_array_unref);
      leftovers = find_leftovers (all_users, &stale, error);
      if (leftovers == NULL)
        return FALSE;
    }

  for (guint i = 0; i < leftovers->len; i++)
    {
      Leftover *l = leftovers->pdata[i];
      g_autoptr(GError) e = NULL;
      g_autoptr(GVariant) r = NULL;

      g_print ("%s %s %s of uid %u (%s)\n", dry_run ? "would remove" : "removing", l->kind, l->name, l->owner, l->why);
      if (dry_run)
        continue;
      r = bg_client_call ("ReleaseResource", g_variant_new ("(ss@a{sv})", l->kind, l->name,
                                                           g_variant_new_array (G_VARIANT_TYPE ("{sv}"), NULL, 0)),
                          NULL, NULL, NULL, &e);
      if (r == NULL && !g_error_matches (e, BG_ERROR, BG_ERROR_NOT_FOUND))
        {
          bg_cli_warn ("could not remove %s %s: %s", l->kind, l->name, e->message);
          failed++;
        }
    }
  bg_client_shutdown ();
  if (leftovers->len == 0 && stale->len == 0)
    g_print ("Nothing to clean up.\n");
  if (failed > 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "%u leftover%s could not be removed (see above)",
                   failed, failed == 1 ? "" : "s");
      return FALSE;
    }
  return TRUE;
}

const BgCommand bg_system_commands[] = {
  { "cleanup", NULL, "Remove what a crash left behind", cmd_cleanup },
  { "status", NULL, "Check that this host can run banger VMs", cmd_status },
  { "network", NULL, "Show the VM network and your taps", cmd_network },
  { NULL }
};
