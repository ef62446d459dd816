/* bg-status.c: what 'banger system status' checks — what banger really
 * needs on this host, each with what to do when it is missing.
 *
 * Devices are tried by the mechanism, which is what opens them: a user
 * needs no access to /dev/kvm (the jail gets a node of its own).
 */
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "bg-auth.h"
#include "bg-build.h"
#include "bg-client.h"
#include "bg-config.h"
#include "bg-error.h"
#include "bg-paths.h"
#include "bg-spawn.h"
#include "bg-state.h"
#include "bg-status.h"
#include "bg-vm-control.h"

static const char * const actions[] = {
  "org.banger.network", "org.banger.storage", "org.banger.vm", "org.banger.admin",
};

static void
set (BgCheck    *c,
     gboolean    ok,
     char       *detail,
     const char *hint)
{
  c->ok = ok;
  c->detail = detail;
  c->hint = g_strdup (hint);
}

static void
check_mechanism (BgCheck *c)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = bg_client_call ("Ping", NULL, NULL, &error);
  const char *version;
  guint32 uid;

  if (reply == NULL)
    return set (c, FALSE, g_strdup (error->message),
                strstr (error->message, "system D-Bus")
                  ? "start the system bus (systemctl start dbus) or log in to a normal session"
                  : "install banger (tools/bootstrap, or its package) so D-Bus can start banger-mechanism");
  g_variant_get (reply, "(&su)", &version, &uid);
  set (c, TRUE, g_strdup_printf ("banger-mechanism %s answers (it sees you as uid %u)", version, uid), NULL);
}

static void
check_policy (BgCheck *c)
{
  g_autofree char *path = g_build_filename (BG_POLKIT_ACTIONS_DIR, "org.banger.policy", NULL);
  g_autofree char *text = NULL;
  g_autoptr(GString) missing = g_string_new (NULL);

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return set (c, FALSE, g_strdup_printf ("%s is not installed", path),
                "install banger; polkitd reads actions only from " BG_POLKIT_ACTIONS_DIR);
  for (guint i = 0; i < G_N_ELEMENTS (actions); i++)
    {
      g_autofree char *needle = g_strdup_printf ("id=\"%s\"", actions[i]);
      if (strstr (text, needle) == NULL)
        g_string_append_printf (missing, "%s%s", missing->len ? ", " : "", actions[i]);
    }
  if (missing->len > 0)
    return set (c, FALSE, g_strdup_printf ("%s lacks %s", path, missing->str),
                "reinstall banger: the installed policy is from another version");
  set (c, TRUE, g_strdup_printf ("%s defines all %u actions", path, (guint) G_N_ELEMENTS (actions)), NULL);
}

/* What polkit would answer this user, without asking anything. */
static void
check_authorization (BgCheck *c)
{
  guint yes = 0, ask = 0;

  /* The three a user needs for VMs of their own; admin is for others'. */
  for (guint i = 0; i < 3; i++)
    {
      g_autoptr(GError) error = NULL;
      BgAuthAnswer answer;

      if (!bg_auth_query (actions[i], &answer, &error))
        return set (c, FALSE, g_strdup (error->message), "install and start polkitd");
      yes += answer == BG_AUTH_YES;
      ask += answer == BG_AUTH_ASK;
    }
  if (yes == 3)
    return set (c, TRUE, g_strdup ("you may run VMs without a password"), NULL);
  if (yes + ask == 3)
    return set (c, TRUE, g_strdup ("polkit will ask for an administrator's password (once per session)"),
                NULL);
  {
    g_autofree char *hint = bg_auth_refusal_hint ();

    set (c, FALSE, g_strdup ("polkit refuses you the banger actions (no group rule lets you, "
                             "and you are not in an active local session)"), hint);
  }
}

/* The mechanism's own view of the host's devices and VMM. */
static void
check_host (BgCheck     *kvm,
            BgCheck     *devices,
            BgCheck     *vmm,
            BgCheck     *ipv6,
            char       **abstract_unix)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = bg_client_call ("HostInfo", NULL, NULL, &error);
  g_autoptr(GVariant) info = NULL;
  const char *kvm_err = "", *tun = "", *loop = "", *vmm_path = "", *vmm_err = "", *ipv6_off = "";

  if (reply == NULL)
    {
      set (kvm, FALSE, g_strdup_printf ("cannot ask the mechanism: %s", error->message),
           "see the mechanism and authorization lines");
      set (devices, FALSE, g_strdup ("cannot ask the mechanism"), NULL);
      set (vmm, FALSE, g_strdup ("cannot ask the mechanism"), NULL);
      set (ipv6, FALSE, g_strdup ("cannot ask the mechanism"), NULL);
      return;
    }
  info = g_variant_get_child_value (reply, 0);
  g_variant_lookup (info, "kvm", "&s", &kvm_err);
  g_variant_lookup (info, "tun", "&s", &tun);
  g_variant_lookup (info, "loop", "&s", &loop);
  g_variant_lookup (info, "vmm", "&s", &vmm_path);
  g_variant_lookup (info, "vmm-error", "&s", &vmm_err);
  g_variant_lookup (info, "ipv6", "&s", &ipv6_off);
  g_variant_lookup (info, "abstract-unix", "s", abstract_unix);
  /* IPv4 VMs run either way: this only says whether they get IPv6. */
  if (*ipv6_off)
    set (ipv6, FALSE, g_strdup_printf ("IPv6 is off: %s; VMs get IPv4 only", ipv6_off),
         "enable IPv6 on the host (net.ipv6.conf.all.disable_ipv6=0) and set subnet6=auto in "
         BG_SYSCONFDIR "/network.conf");
  else
    set (ipv6, TRUE, g_strdup ("on: VMs get an IPv6 address, NATed to the uplink's"), NULL);
  if (*kvm_err)
    set (kvm, FALSE, g_strdup (kvm_err),
         "enable virtualization in the firmware and load kvm_intel or kvm_amd");
  else
    set (kvm, TRUE, g_strdup ("the mechanism can use /dev/kvm"), NULL);
  if (*tun || *loop)
    set (devices, FALSE, g_strdup_printf ("%s%s%s", tun, *tun && *loop ? "; " : "", loop),
         "load the tun and loop kernel modules");
  else
    set (devices, TRUE, g_strdup ("/dev/net/tun and /dev/loop-control are usable"), NULL);
  if (*vmm_err)
    set (vmm, FALSE, g_strdup (vmm_err),
         "install a Firecracker release (github.com/firecracker-microvm/firecracker/releases) as "
         BG_DEFAULT_FIRECRACKER ", root's and not writable by others, or name it in "
         BG_SYSCONFDIR "/mechanism.conf");
  else
    set (vmm, TRUE, g_strdup_printf ("%s (from " BG_SYSCONFDIR "/mechanism.conf or the default)", vmm_path),
         NULL);
}

static void
check_programs (BgCheck *c)
{
  static const char * const needed[] = { "resize2fs", "e2fsck", "ssh", NULL };
  g_autoptr(GError) error = NULL;

  if (!bg_programs_require (needed, "running VMs", &error))
    return set (c, FALSE, g_strdup (error->message), "install the packages named");
  set (c, TRUE, g_strdup ("e2fsprogs and the OpenSSH client are there"), NULL);
}

static void
check_build (BgCheck *c)
{
  BgBuildOptions o = { "bookworm" };
  g_autoptr(GError) error = NULL;

  if (!bg_build_check_host (&o, &error))
    return set (c, FALSE, g_strdup (error->message),
                "only 'banger image build' (and a first 'vm up' without images) needs this");
  set (c, TRUE, g_strdup ("mmdebstrap, a subordinate id range and banger-guest-setup are there"), NULL);
}

/* NAME.banger resolves on the host through libnss_banger. */
static void
check_names (BgCheck *c)
{
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;

  if (g_file_get_contents ("/etc/nsswitch.conf", &text, NULL, NULL))
    {
      lines = g_strsplit (text, "\n", -1);
      for (guint i = 0; lines[i]; i++)
        {
          g_auto(GStrv) words = g_strsplit_set (g_strstrip (lines[i]), " \t", -1);

          if (words[0] == NULL || !g_str_equal (words[0], "hosts:"))
            continue;
          for (guint w = 1; words[w]; w++)
            if (g_str_equal (words[w], "banger"))
              return set (c, TRUE, g_strdup ("/etc/nsswitch.conf has banger on its hosts line"), NULL);
        }
    }
  set (c, FALSE, g_strdup ("/etc/nsswitch.conf has no banger on its hosts line: NAME.banger will not resolve"),
       "add banger to the hosts line, e.g. 'hosts: files banger dns'");
}

static void
check_runtime_dir (BgCheck *c)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = bg_paths_ensure_runtime_dir (&error);

  if (dir == NULL)
    return set (c, FALSE, g_strdup (error->message),
                "set XDG_RUNTIME_DIR to a private directory, or remove the one named");
  set (c, TRUE, g_strdup_printf ("%s (private, 0700)", dir), NULL);
}

static void
check_config (BgCheck *c)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BgConfig) config = bg_config_load_default (&error);

  if (config == NULL)
    return set (c, FALSE, g_strdup (error->message), "fix the value named, or move the file away to use the defaults");
  if (!g_file_test (config->path, G_FILE_TEST_EXISTS))
    set (c, TRUE, g_strdup_printf ("%s absent, using defaults", config->path), NULL);
  else if (config->warnings->len > 0)
    set (c, TRUE, g_strdup_printf ("%s (%u warning%s: %s)", config->path, config->warnings->len,
                                   config->warnings->len == 1 ? "" : "s", (char *) config->warnings->pdata[0]),
         NULL);
  else
    set (c, TRUE, g_strdup (config->path), NULL);
}

/* One line per VM that needs attention: its VMM died, or a 'vm up' was
 * killed halfway. */
static void
check_vms (BgCheck *c)
{
  g_autoptr(BgStateStore) store = bg_state_store_new_default ();
  g_autoptr(GPtrArray) problems = NULL;
  g_autoptr(GString) bad = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) records = bg_state_store_list (store, &problems, &error);
  guint running = 0;

  if (records == NULL)
    return set (c, FALSE, g_strdup (error->message), "fix or move away the file named");
  for (guint i = 0; i < records->len; i++)
    {
      BgVmRecord *r = records->pdata[i];
      BgVmState state = bg_vm_probe_state (r);

      if (state == BG_VM_CRASHED)
        g_string_append_printf (bad, "%s%s is not running any more (a crash or a reboot)", bad->len ? "; " : "",
                                r->name);
      else if (state == BG_VM_CREATING)
        g_string_append_printf (bad, "%s%s is half-made (a 'vm up' was interrupted)", bad->len ? "; " : "", r->name);
      else if (state == BG_VM_RUNNING || state == BG_VM_PAUSED)
        running++;
    }
  for (guint i = 0; i < problems->len; i++)
    g_string_append_printf (bad, "%s%s", bad->len ? "; " : "", (char *) problems->pdata[i]);
  if (bad->len > 0)
    return set (c, FALSE, g_strdup (bad->str),
                "'banger vm start NAME' starts a stopped or crashed VM again; 'banger system cleanup' removes "
                "half-made ones; 'banger vm rm NAME' removes any");
  set (c, TRUE, g_strdup_printf ("%u VM%s, %u running, none needs attention", records->len,
                                 records->len == 1 ? "" : "s", running), NULL);
}

/* What keeps a jailed VMM from the host's abstract unix sockets, as
 * the mechanism applies it ("abstract-unix" of HostInfo, or NULL when it
 * cannot be asked): Landlock scopes (ABI 6, Linux 6.12) where this
 * kernel has them, a network namespace of the VMM's own where it does
 * not ([vmm] netns in mechanism.conf may add it everywhere). */
static void
check_confinement (BgCheck    *c,
                   const char *guard)
{
  long abi = syscall (SYS_landlock_create_ruleset, NULL, 0, 1U /* LANDLOCK_CREATE_RULESET_VERSION */);
  g_autofree char *kernel = NULL;
  struct utsname u;

  uname (&u);
  kernel = g_strdup_printf ("Linux %s, Landlock ABI %ld%s", u.release, abi > 0 ? abi : 0,
                            abi >= 6 ? "" : " (no scopes before 6.12)");
  if (guard == NULL)
    return set (c, FALSE, g_strdup_printf ("%s; cannot ask the mechanism which protection it applies", kernel),
                "see the mechanism line");
  c->value = g_strdup (guard);
  if (g_str_equal (guard, "landlock+netns"))
    return set (c, TRUE,
                g_strdup_printf ("landlock+netns: jailed VMMs cannot reach the host's abstract unix sockets "
                                 "(Landlock scopes, and a network namespace of their own); %s", kernel), NULL);
  if (g_str_equal (guard, "landlock"))
    return set (c, TRUE,
                g_strdup_printf ("landlock: jailed VMMs cannot reach the host's abstract unix sockets or "
                                 "signal outside their jail (Landlock scopes); %s", kernel), NULL);
  if (g_str_equal (guard, "netns"))
    return set (c, TRUE,
                g_strdup_printf ("netns: jailed VMMs cannot reach the host's abstract unix sockets (each has a "
                                 "network namespace of its own, its tap in it); %s", kernel), NULL);
  set (c, FALSE,
       g_strdup_printf ("%s: a compromised VMM could reach the host's abstract unix sockets; %s", guard, kernel),
       "this is a test build's setting; remove netns=never and landlock-scopes=false from mechanism.conf");
}

GArray *
bg_status_run (void)
{
  GArray *checks = g_array_new (FALSE, TRUE, sizeof (BgCheck));
  g_autofree char *guard = NULL;
  static const char * const names[] = {
    "mechanism", "polkit actions", "authorization", "kvm", "devices", "firecracker", "programs", "image build",
    "names", "runtime dir", "config", "vms", "confinement", "ipv6",
  };
  BgCheck *c;

  g_array_set_clear_func (checks, (GDestroyNotify) bg_check_clear);
  g_array_set_size (checks, G_N_ELEMENTS (names));
  c = (BgCheck *) checks->data;
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    c[i].name = names[i];
  check_mechanism (&c[0]);
  check_policy (&c[1]);
  check_authorization (&c[2]);
  check_host (&c[3], &c[4], &c[5], &c[13], &guard);
  check_programs (&c[6]);
  check_build (&c[7]);
  check_names (&c[8]);
  /* VMs run without these: only builds, and NAME.banger, need them. */
  c[7].optional = c[8].optional = c[13].optional = TRUE;
  check_runtime_dir (&c[9]);
  check_config (&c[10]);
  check_vms (&c[11]);
  check_confinement (&c[12], guard);
  /* VMs run without it (only a test build can turn both protections
   * off), and its failure otherwise repeats the mechanism line's. */
  c[12].optional = TRUE;
  return checks;
}

void
bg_check_clear (BgCheck *c)
{
  g_free (c->detail);
  g_free (c->hint);
  g_free (c->value);
}
