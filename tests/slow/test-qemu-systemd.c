/* banger as a desktop runs it: the Debian package installed in a Debian
 * guest booted by QEMU with systemd as PID 1, its bus and polkitd, the
 * mechanism activated by D-Bus through SystemdService= into the unit's
 * sandbox. As a user of the guest (in the banger group): system status,
 * an image imported and `vm up --no-wait` with the test VMM as the
 * configured VMM, vm ls, vm rm; the mechanism's capabilities exactly the
 * unit's; a user outside the group refused without a prompt (no session,
 * no agent), and asked for an administrator's password by pkttyagent in
 * an active local session (autologin on tty1), after which the call goes
 * through; the mechanism gone when idle and activated again; the unit's
 * `systemd-analyze security` exposure; and in a graphical session (Xvfb
 * on tty1's active session, polkit-gnome's agent registered for it) the
 * desktop's agent asks in a window, banger starts no pkttyagent, the
 * window's screenshot is kept in meson-logs, a cancelled prompt is a
 * clear refusal leaving nothing, a typed password lets vm up through. */
#include <unistd.h>
#include <glib/gstdio.h>

#include "harness.h"
#include "qemu-vm.h"

static char *prep_home;
static char *prep_debs;     /* this version's packages */
static char *prep_old;      /* the same source as 0.0.9, to upgrade from */

/* What the guest needs that a banger image does not have: the package's
 * dependencies (no mirror is reachable from the guest), and the
 * sanitizer runtimes the test VMM of this build links. */
#define GUEST_PACKAGES "dbus,polkitd,pkexec,libglib2.0-0,libjson-glib-1.0-0,libsoup-3.0-0,libnl-3-200," \
                       "libnl-route-3-200,libnl-nf-3-200,libnftables1,libhogweed6,libpolkit-gobject-1-0,liblz4-1,libzstd1,liblzma5," \
                       "e2fsprogs,openssh-client,libasan8,libubsan1," \
                       "xvfb,policykit-1-gnome,xdotool,x11-apps,netpbm,fonts-dejavu-core,libglib2.0-bin"

static const char *
prepare (void)
{
  g_autofree char *script = NULL, *dpkg_buildpackage = g_find_program_in_path ("dpkg-buildpackage");
  const char *src = g_getenv ("BANGER_SOURCE_ROOT");
  int status;

  if (!g_file_test ("/usr/bin/qemu-system-x86_64", G_FILE_TEST_IS_EXECUTABLE))
    return "needs qemu-system-x86_64 (the boot instrument)";
  if (dpkg_buildpackage == NULL)
    return "needs dpkg-buildpackage (tools/install-packages installs it)";
  if (!bg_harness_mirror_reachable ())
    return "the Debian mirror (deb.debian.org) is not reachable: cannot build an image";
  prep_debs = g_dir_make_tmp ("banger-debs-XXXXXX", NULL);
  prep_old = g_dir_make_tmp ("banger-debs-old-XXXXXX", NULL);
  script = g_build_filename (src, "tests", "package", "build-debs", NULL);
  for (guint i = 0; i < 2; i++)
    {
      const char *argv[] = { "bash", script, src, i ? prep_old : prep_debs, i ? "0.0.9" : NULL, NULL };
      bg_harness_run_argv (argv, NULL, &status);
      if (status != 0)
        g_error ("building the package failed (%s)", i ? prep_old : prep_debs);
      g_chmod (i ? prep_old : prep_debs, 0755);
    }
  prep_home = bg_harness_build_image_full (NULL, "sysguest", FALSE, GUEST_PACKAGES);
  return NULL;
}

/* The package named @prefix… in @dir, readable by test user A. */
static char *
prepared (const char *dir,
          const char *prefix)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *e;

  while ((e = g_dir_read_name (d)) != NULL)
    if (g_str_has_prefix (e, prefix) && g_str_has_suffix (e, "_amd64.deb"))
      {
        char *path = g_build_filename (dir, e, NULL);
        g_chmod (path, 0644);
        return path;
      }
  g_error ("no %s*.deb in %s", prefix, dir);
}

static char *
in_guest_status (BgHarness  *h,
                 Vm         *vm,
                 const char *script,
                 int        *status)
{
  g_autofree char *out = NULL, *err = NULL;

  *status = cli (h, &out, &err, "vm", "ssh", vm->name, "--", script, NULL);
  return g_strconcat (out ? out : "", err ? err : "", NULL);
}

/* For the agent step: tty1 logs the outsider in (an active session on
 * seat0), whose login shell (sh: ~/.profile) runs banger once under
 * script(1), so the test reads the terminal (agent.log) and types into
 * it (agent.in). */
#define AUTOLOGIN_CONF "[Service]\nExecStart=\nExecStart=-/sbin/agetty --autologin outsider --noclear %I linux\n"
#define AGENT_PROFILE \
  "[ -e \"$HOME/agent.done\" ] && exec sleep infinity\n" \
  "touch \"$HOME/agent.done\"\n" \
  "exec 3<>\"$HOME/agent.in\"\n" \
  "exec script -qfec \"$HOME/agent-run\" \"$HOME/agent.log\" <&3\n"
#define AGENT_RUN \
  "#!/bin/bash\n" \
  "loginctl --no-pager show-session \"$XDG_SESSION_ID\" -p Active -p Remote -p Seat\n" \
  "banger image import tiny --kernel vmlinux-tiny --rootfs rootfs.ext4 >/dev/null; echo \"import-rc=$?\"\n" \
  "banger vm up t3 --image tiny --no-wait >/dev/null; echo \"up-rc=$?\"\n" \
  "banger vm rm t3; echo \"rm-rc=$?\"\n"

/* Runs the outsider's tty1 session and answers each password prompt
 * pkttyagent shows there; returns what the terminal showed. */
static char *
agent_session (BgHarness *h,
               Vm        *vm)
{
  /* Bounds in seconds, scaled (bg-test.h). */
  g_autofree char *script = g_strdup_printf (
    "set -e; echo 'root:bg-test-pw' | sudo chpasswd; "
    "sudo install -d -m 0755 -o outsider ~outsider; "
    "sudo install -m 0644 -o outsider vmlinux-tiny rootfs.ext4 ~outsider/; "
    "sudo install -m 0755 -o outsider agent-run ~outsider/agent-run; "
    "sudo install -m 0644 -o outsider agent-profile ~outsider/.profile; "
    "sudo -u outsider mkfifo -m 0600 ~outsider/agent.in; "
    "sudo install -D -m 0644 autologin.conf /etc/systemd/system/getty@tty1.service.d/autologin.conf; "
    "sudo systemctl daemon-reload; sudo systemctl restart getty@tty1.service; "
    "for i in $(seq %u); do sudo test -e ~outsider/agent.log && break; sleep 1; done; "
    "if ! sudo test -e ~outsider/agent.log; then echo 'no session ran on tty1:'; ls -l /dev/tty1 || true; "
    "  systemctl status getty@tty1.service --no-pager 2>&1 | tail -n 15; loginctl list-sessions --no-pager; exit 0; fi; "
    "fed=0; for i in $(seq %u); do "
    "  log=$(sudo cat ~outsider/agent.log 2>/dev/null || true); "
    "  case $log in *rm-rc=*) break;; esac; "
    "  n=$(printf '%%s' \"$log\" | grep -o 'Password:' | wc -l); "
    "  if [ \"$n\" -gt \"$fed\" ]; then sudo -u outsider sh -c 'echo bg-test-pw > ~/agent.in'; fed=$n; fi; "
    "  sleep 1; done; "
    "sudo cat ~outsider/agent.log | tr -d '\\r'", bg_test_timeout (180), bg_test_timeout (600));

  return in_guest (h, vm, script);
}

/* The desktop step: tty1 logs "desk" in (the active session on seat0);
 * its login shell starts Xvfb and polkit-gnome's agent on it, and, once
 * the agent registered, runs banger from that terminal (stdin a tty,
 * DISPLAY set) twice: first the prompt is cancelled, then answered. The
 * driver (root, over SSH) watches polkit's calls to agents, finds each
 * prompt's window, keeps a screenshot of it, and cancels or types. */
#define DESK_PROFILE \
  "[ -e \"$HOME/desk.done\" ] && exec sleep infinity\n" \
  "touch \"$HOME/desk.done\"\n" \
  "exec \"$HOME/desk-run\" >\"$HOME/desk.log\" 2>&1\n"
#define DESK_RUN \
  "#!/bin/bash\n" \
  "loginctl --no-pager show-session \"$XDG_SESSION_ID\" -p Active -p Remote -p Seat -p Type\n" \
  "Xvfb :1 -screen 0 1024x768x24 -nolisten tcp -ac >/dev/null 2>&1 &\n" \
  "for i in $(seq 120); do [ -e /tmp/.X11-unix/X1 ] && break; sleep 1; done\n" \
  "export DISPLAY=:1\n" \
  "NO_AT_BRIDGE=1 /usr/lib/policykit-1-gnome/polkit-gnome-authentication-agent-1 >/dev/null 2>&1 &\n" \
  "for i in $(seq 300); do [ -e \"$HOME/agent-registered\" ] && break; sleep 1; done\n" \
  "[ -t 0 ] && echo stdin-is-a-tty\n" \
  "rc=1; for i in 1 2 3 4 5; do banger system status >/dev/null 2>&1; " \
  "  if gdbus introspect --system --dest org.banger.Mechanism1 --object-path /org/banger/Mechanism1 " \
  "    >\"$HOME/introspect.txt\" 2>&1; then rc=0; break; fi; done; echo \"introspect-rc=$rc\"\n" \
  "banger image import tiny --kernel vmlinux-tiny --rootfs rootfs.ext4 >/dev/null; echo \"import-rc=$?\"\n" \
  "banger vm up d1 --image tiny --no-wait; echo \"cancel-rc=$?\"\n" \
  "echo \"left-vms=$(ls \"$HOME/.local/state/banger/vms\" 2>/dev/null | wc -l)\"\n" \
  "echo \"left-taps=$(ip -o link show | grep -c ': bg-')\"\n" \
  "touch \"$HOME/run2\"\n" \
  "banger vm up d1 --image tiny --no-wait >/dev/null; echo \"up-rc=$?\"\n" \
  "banger vm rm d1; echo \"rm-rc=$?\"\n" \
  "echo desk-done\n"

static char *
desktop_session (BgHarness *h,
                 Vm        *vm)
{
  int rc;
  char *out = in_guest_status (h, vm,
    "set -e; sudo useradd -m desk; "
    "sudo install -m 0644 -o desk vmlinux-tiny rootfs.ext4 ~desk/; "
    "sudo install -m 0755 -o desk desk-run ~desk/desk-run; "
    "sudo install -m 0644 -o desk desk-profile ~desk/.profile; "
    "sudo rm -f /tmp/agents.log /tmp/pkttyagents.log; "
    "sudo sh -c 'dbus-monitor --system \"type=method_call,member=RegisterAuthenticationAgent\" "
    "  \"type=method_call,interface=org.freedesktop.PolicyKit1.AuthenticationAgent\" >/tmp/agents.log 2>&1 &'; "
    "sudo sh -c 'while :; do ps -eo pid=,ppid=,comm= | awk \"\\$3 == \\\"pkttyagent\\\"\" >>/tmp/pkttyagents.log; "
    "  sleep 0.2; done >/dev/null 2>&1 & echo $! >/tmp/pkttyagents.pid'; "
    "sed 's/outsider/desk/' autologin.conf | sudo install -D -m 0644 /dev/stdin "
    "  /etc/systemd/system/getty@tty1.service.d/autologin.conf; "
    "sudo systemctl daemon-reload; sudo systemctl restart getty@tty1.service; "
    "for i in $(seq 600); do grep -q RegisterAuthenticationAgent /tmp/agents.log && break; sleep 1; done; "
    "sudo -u desk touch ~desk/agent-registered; set +e; "
    "x() { sudo -u desk env DISPLAY=:1 \"$@\"; }; "
    "done_ids=' '; "
    "for i in $(seq 1800); do "
    "  log=$(sudo cat ~desk/desk.log 2>/dev/null || true); "
    "  case $log in *desk-done*) break;; esac; "
    "  agent=$(pgrep -u desk -f polkit-gnome-authentication-agent-1 | head -n 1 || true); "
    "  for w in $([ -n \"$agent\" ] && x xdotool search --onlyvisible --pid \"$agent\" 2>/dev/null || true); do "
    "    case $done_ids in *\" $w \"*) continue;; esac; "
    "    sleep 2; "
    "    if sudo test -e ~desk/run2; then shot=prompt-answered.png; else shot=prompt-cancelled.png; fi; "
    "    [ -e ~/$shot ] || x sh -c 'xwd -root -silent | xwdtopnm 2>/dev/null | pnmtopng' >~/$shot; "
    "    echo \"window $w: $(x xdotool getwindowname $w)\" >>~/windows.log; "
    "    x xdotool windowfocus $w >>~/windows.log 2>&1; "
    "    if sudo test -e ~desk/run2; then x xdotool key ctrl+a; x xdotool type --delay 50 bg-test-pw; x xdotool key Return; "
    "    else x xdotool key Escape; fi >>~/windows.log 2>&1; "
    "    for j in $(seq 30); do x xdotool search --onlyvisible --pid \"$agent\" 2>/dev/null | grep -qx \"$w\" || break; sleep 0.5; done; "
    "    x xdotool search --onlyvisible --pid \"$agent\" 2>/dev/null | grep -qx \"$w\" || done_ids=\"$done_ids$w \"; "
    "  done; "
    "  sleep 0.5; done; "
    "sudo pkill -x dbus-monitor || true; sudo kill $(cat /tmp/pkttyagents.pid) || true; "
    "echo \"--- desk.log\"; sudo cat ~desk/desk.log | tr -d '\\r'; "
    "echo \"--- windows\"; cat ~/windows.log 2>/dev/null || true; "
    "echo \"--- introspect\"; sudo cat ~desk/introspect.txt; "
    "echo \"--- agent calls\"; grep -A3 -E 'BeginAuthentication|RegisterAuthenticationAgent' /tmp/agents.log || true; "
    "echo \"--- pkttyagents\"; sort -u /tmp/pkttyagents.log; echo \"--- end\"", &rc);

  if (rc != 0)
    g_error ("the desktop step failed (%d):\n%s", rc, out);
  return out;
}

/* Copies @name from the guest user's home into meson-logs, for people to
 * look at; returns whether the guest had it. */
static gboolean
keep_screenshot (BgHarness  *h,
                 Vm         *vm,
                 const char *name)
{
  g_autofree char *home = g_strdup_printf ("%s/home-%s", h->tmp, BG_TEST_USER_A);
  g_autofree char *from = g_strdup_printf ("%s:%s", vm->name, name);
  g_autofree char *local = g_build_filename (home, name, NULL);
  g_autofree char *kept = g_build_filename (g_getenv ("BANGER_TEST_LOGS"), name, NULL);
  g_autofree char *data = NULL;
  gsize len;

  if (cli (h, NULL, NULL, "vm", "cp", from, local, NULL) != 0 ||
      !g_file_get_contents (local, &data, &len, NULL))
    return FALSE;
  g_assert_true (len > 8 && memcmp (data, "\x89PNG\r\n\x1a\n", 8) == 0);
  g_assert_true (g_file_set_contents (kept, data, len, NULL));
  g_test_message ("the prompt's screenshot: %s", kept);
  return TRUE;
}

static void
test_package_under_systemd (void)
{
  BgHarness *h = bg_harness_start (900);
  g_autofree char *banger_deb = prepared (prep_debs, "banger_"), *nss_deb = prepared (prep_debs, "libnss-banger_");
  g_autofree char *old_deb = prepared (prep_old, "banger_"), *old_nss = prepared (prep_old, "libnss-banger_");
  g_autofree char *new_name = g_path_get_basename (banger_deb), *new_nss_name = g_path_get_basename (nss_deb);
  g_autofree char *old_name = g_path_get_basename (old_deb), *old_nss_name = g_path_get_basename (old_nss);
  g_autofree char *install = NULL, *upgrade = NULL, *upgraded = NULL, *ls_after = NULL;
  g_autofree char *home = g_strdup_printf ("%s/home-%s", h->tmp, BG_TEST_USER_A);
  g_autofree char *elf_path = g_build_filename (home, "vmlinux-tiny", NULL);
  g_autofree char *e = NULL, *ssh = NULL, *status = NULL, *caps = NULL, *up = NULL, *ls = NULL;
  g_autofree char *refused = NULL, *again = NULL, *exposure = NULL, *to = NULL, *agent = NULL;
  g_autofree char *autologin = g_build_filename (home, "autologin.conf", NULL);
  g_autofree char *profile = g_build_filename (home, "agent-profile", NULL);
  g_autofree char *agent_run = g_build_filename (home, "agent-run", NULL);
  g_autofree char *desk_profile = g_build_filename (home, "desk-profile", NULL);
  g_autofree char *desk_run = g_build_filename (home, "desk-run", NULL);
  g_autofree char *desk = NULL;
  g_autoptr(Vm) vm = NULL;
  int rc;

  import_image (h, prep_home, "sysguest");
  vm = make_vm (h, "qsys", "sysguest");
  /* With dbus in the image, logind starts a user manager for every SSH
   * login, which under software emulation takes minutes; no part of the
   * test needs it (polkit's group rule does not look at sessions). */
  {
    char *args = g_strconcat (vm->boot_args, " systemd.mask=user@.service", NULL);
    g_free (vm->boot_args);
    vm->boot_args = args;
  }
  boot (vm);
  ssh = wait_ssh (h, vm, "banger-guest-setup: qsys configured in", NULL);

  /* Into the guest: the packages, the test VMM, a 4 KiB ELF "kernel". */
  bg_harness_write_tiny_kernel (elf_path, BG_TEST_USER_A);
  g_assert_true (g_file_set_contents (autologin, AUTOLOGIN_CONF, -1, NULL));
  g_assert_true (g_file_set_contents (profile, AGENT_PROFILE, -1, NULL));
  g_assert_true (g_file_set_contents (agent_run, AGENT_RUN, -1, NULL));
  g_assert_true (g_file_set_contents (desk_profile, DESK_PROFILE, -1, NULL));
  g_assert_true (g_file_set_contents (desk_run, DESK_RUN, -1, NULL));
  for (const char * const *f = (const char * const[]) { autologin, profile, agent_run, desk_profile, desk_run, NULL };
       *f; f++)
    g_chmod (*f, 0644);
  to = g_strdup_printf ("%s:", vm->name);
  g_clear_pointer (&e, g_free);
  if (cli (h, NULL, &e, "vm", "cp", banger_deb, nss_deb, old_deb, old_nss, g_getenv ("BANGER_TEST_VMM"), elf_path,
           to, NULL) != 0)
    g_error ("vm cp: %s", e);
  g_clear_pointer (&e, g_free);
  if (cli (h, NULL, &e, "vm", "cp", autologin, profile, agent_run, desk_profile, desk_run, to, NULL) != 0)
    g_error ("vm cp: %s", e);

  /* The older build installed the Debian way (the upgrade comes with a
   * VM running); the VMM is the test VMM, root's alone; the user joins
   * the banger group (the next SSH login has it). */
  install = g_strdup_printf ("sudo dpkg -i %s %s >/dev/null && "
                             "sudo install -m 0755 -o root -g root bg-test-vmm /usr/local/bin/firecracker && "
                             "printf '[mechanism]\\nidle-timeout=5\\n' | sudo tee -a /etc/banger/mechanism.conf >/dev/null && "
                             "sudo usermod -aG banger \"$USER\"", old_name, old_nss_name);
  g_free (in_guest (h, vm, install));

  /* system status: all ok but what a TCG guest cannot have. */
  status = in_guest_status (h, vm, "banger system status", &rc);
  for (const char * const *line = (const char * const[]) { "mechanism       ok", "polkit actions  ok",
                                                           "authorization   ok", "firecracker     ok", NULL };
       *line; line++)
    if (strstr (status, *line) == NULL)
      g_error ("system status lacks \"%s\":\n%s", *line, status);

  /* vm up --no-wait through the unit, with a real polkitd deciding. */
  up = in_guest (h, vm, "truncate -s 64M rootfs.ext4 && /sbin/mke2fs -q -t ext4 rootfs.ext4 && "
                        "banger image import tiny --kernel vmlinux-tiny --rootfs rootfs.ext4 >/dev/null && "
                        "banger vm up t1 --image tiny --no-wait >/dev/null && echo up");
  g_assert_cmpstr (up, ==, "up");
  ls = in_guest (h, vm, "banger vm ls --json");
  g_assert_nonnull (strstr (ls, "\"name\" : \"t1\""));
  g_assert_nonnull (strstr (ls, "\"state\" : \"running\""));

  /* The upgrade, with t1 running: the VM is still there, and the new
   * mechanism (activated by the next call) manages it. */
  upgrade = g_strdup_printf ("sudo dpkg -i --force-confold %s %s >/dev/null && dpkg-query -W -f '${Version}' banger",
                             new_name, new_nss_name);
  upgraded = in_guest (h, vm, upgrade);
  g_assert_true (g_str_has_prefix (new_name, "banger_"));
  g_assert_true (g_str_has_prefix (new_name + strlen ("banger_"), upgraded));
  g_assert_cmpstr (upgraded, !=, "0.0.9");
  ls_after = in_guest (h, vm, "banger vm ls --json");
  g_assert_nonnull (strstr (ls_after, "\"name\" : \"t1\""));
  g_assert_nonnull (strstr (ls_after, "\"state\" : \"running\""));

  /* Exactly the unit's capabilities: CHOWN SETGID SETUID NET_ADMIN
   * SYS_ADMIN MKNOD, bounding set and effective, no_new_privs. */
  caps = in_guest (h, vm, "banger system status >/dev/null; "
                          "grep -E '^(CapEff|CapBnd|NoNewPrivs):' /proc/$(pgrep -x banger-mechanis)/status");
  g_assert_nonnull (strstr (caps, "CapEff:\t00000000082010c1"));
  g_assert_nonnull (strstr (caps, "CapBnd:\t00000000082010c1"));
  g_assert_nonnull (strstr (caps, "NoNewPrivs:\t1"));

  g_free (in_guest (h, vm, "banger vm rm t1"));

  /* Outside the group, with no session and no agent: refused, no prompt. */
  refused = in_guest_status (h, vm, "sudo useradd -m outsider && cd /tmp && "
                                    "sudo -u outsider -H banger vm up t2 --no-wait", &rc);
  g_assert_cmpint (rc, !=, 0);
  if (strstr (refused, "not authorized") == NULL)
    g_error ("the outsider was not refused by polkit:\n%s", refused);

  /* The same user in an active local session: pkttyagent asks for the
   * administrator's password (root's: the guest's sudo group is empty),
   * and with it the calls go through. */
  agent = agent_session (h, vm);
  g_test_message ("the outsider's terminal:\n%s", agent);
  if (strstr (agent, "Active=yes") == NULL || strstr (agent, "Remote=no") == NULL ||
      strstr (agent, "Seat=seat0") == NULL || strstr (agent, "==== AUTHENTICATING FOR org.banger.") == NULL ||
      strstr (agent, "Password:") == NULL || strstr (agent, "==== AUTHENTICATION COMPLETE ====") == NULL ||
      strstr (agent, "up-rc=0") == NULL || strstr (agent, "rm-rc=0") == NULL)
    g_error ("no password prompt, or the calls failed, in the outsider's active session:\n%s", agent);

  /* A graphical session: the desktop's agent asks, in a window. */
  desk = desktop_session (h, vm);
  g_test_message ("the desktop session:\n%s", desk);
  {
    g_autofree char *kept = g_build_filename (g_getenv ("BANGER_TEST_LOGS"), "desktop-session.txt", NULL);
    g_assert_true (g_file_set_contents (kept, desk, -1, NULL));
  }
  {
    const char *log = strstr (desk, "--- desk.log"), *intro = strstr (desk, "--- introspect");
    const char *calls = strstr (desk, "--- agent calls"), *pkt = strstr (desk, "--- pkttyagents");
    g_autofree char *session = NULL, *introspect = NULL, *agent_calls = NULL, *pkttyagents = NULL;

    if (log == NULL || intro == NULL || calls == NULL || pkt == NULL)
      g_error ("the desktop step did not finish:\n%s", desk);
    session = g_strndup (log, intro - log);
    introspect = g_strndup (intro, calls - intro);
    agent_calls = g_strndup (calls, pkt - calls);
    pkttyagents = g_strndup (pkt, strstr (pkt, "--- end") - pkt);
    /* The session is local and active; banger ran on its terminal. */
    g_assert_nonnull (strstr (session, "Active=yes"));
    g_assert_nonnull (strstr (session, "Remote=no"));
    g_assert_nonnull (strstr (session, "stdin-is-a-tty"));
    g_assert_nonnull (strstr (session, "import-rc=0"));
    /* polkit asked the desktop's agent, with the policy's message, and
     * the agent showed it in a window. */
    g_assert_nonnull (strstr (strstr (desk, "--- windows"), "window "));
    g_assert_nonnull (strstr (agent_calls, "BeginAuthentication"));
    g_assert_nonnull (strstr (agent_calls,
                              "Authentication is required to create a virtual network device for a banger VM"));
    /* Cancelled: banger's clear refusal, exit 1, nothing left. */
    g_assert_nonnull (strstr (session, "not authorized"));
    g_assert_nonnull (strstr (session, "cancel-rc=1"));
    g_assert_nonnull (strstr (session, "left-vms=0"));
    g_assert_nonnull (strstr (session, "left-taps=0"));
    /* Answered: vm up completes. */
    g_assert_nonnull (strstr (session, "up-rc=0"));
    g_assert_nonnull (strstr (session, "rm-rc=0"));
    /* banger started no pkttyagent of its own meanwhile. */
    g_assert_cmpstr (g_strstrip (pkttyagents + strlen ("--- pkttyagents")), ==, "");
    /* The documented interface, seen from the session. */
    g_assert_nonnull (strstr (session, "introspect-rc=0"));
    g_assert_nonnull (strstr (introspect, "interface org.banger.Mechanism1"));
    g_assert_nonnull (strstr (introspect, "GroupRule("));
    g_assert_nonnull (strstr (introspect, "org.freedesktop.DBus.Description"));
  }
  g_assert_true (keep_screenshot (h, vm, "prompt-cancelled.png"));
  g_assert_true (keep_screenshot (h, vm, "prompt-answered.png"));

  /* Idle: the mechanism exits; the next call activates it again. */
  {
    g_autofree char *script = g_strdup_printf ("for i in $(seq %u); do pgrep -x banger-mechanis >/dev/null || break; "
                                               "sleep 1; done; "
                                               "pgrep -x banger-mechanis >/dev/null && echo still-running; "
                                               "banger system status | grep -c '^mechanism       ok'",
                                               bg_test_timeout (120));
    again = in_guest (h, vm, script);
  }
  g_assert_cmpstr (again, ==, "1");

  /* The unit as installed: the exposure the README states, or better. */
  exposure = in_guest (h, vm, "systemd-analyze security banger-mechanism.service --no-pager | tail -1");
  g_test_message ("systemd-analyze security: %s", exposure);
  {
    const char *at = strstr (exposure, "exposure level for banger-mechanism.service: ");
    double level;
    g_assert_nonnull (at);
    level = g_ascii_strtod (at + strlen ("exposure level for banger-mechanism.service: "), NULL);
    /* 3.0 before each VMM could get a network namespace of its own
     * (RestrictNamespaces= now allows net: +0.1). */
    g_assert_cmpfloat (level, <=, 3.1);
  }

  power_off (vm);
  g_assert_cmpint (cli (h, NULL, NULL, "vm", "rm", "qsys", NULL), ==, 0);
  bg_harness_stop (h);
}

static void
add_tests (void)
{
  g_test_add_func ("/qemu/package-under-systemd", test_package_under_systemd);
}

int
main (int argc, char **argv)
{
  int rc = bg_harness_main_full (&argc, &argv, prepare, add_tests);

  for (char **dir = (char *[]) { prep_home, prep_debs, prep_old, NULL }; *dir; dir++)
    {
      const char *rm[] = { "rm", "-rf", "--", *dir, NULL };
      g_spawn_sync (NULL, (char **) rm, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
    }
  return rc;
}
