/* bg-guest-programs.c: where banger finds the programs it puts into
 * images (banger-guest-setup, banger-init, banger-agent): installed
 * beside it, or, for an uninstalled build and the tests, where an
 * environment variable says. Kept apart from image build, because
 * importing an image puts them in too. */
#include "bg-guest-programs.h"

/* The applier banger copies into images: the installed one, or (for an
 * uninstalled build) the one $BANGER_GUEST_SETUP names. */
char *
bg_guest_programs_setup_path (void)
{
  const char *env = g_getenv ("BANGER_GUEST_SETUP");

  return g_strdup (env && *env ? env : BG_LIBEXECDIR "/banger/banger-guest-setup");
}

/* banger-init, the early init of layered VMs, likewise ($BANGER_INIT). */
char *
bg_guest_programs_init_path (void)
{
  const char *env = g_getenv ("BANGER_INIT");

  return g_strdup (env && *env ? env : BG_LIBEXECDIR "/banger/banger-init");
}

/* banger-agent, the guest's end of `vm exec`, likewise ($BANGER_AGENT). */
char *
bg_guest_programs_agent_path (void)
{
  const char *env = g_getenv ("BANGER_AGENT");

  return g_strdup (env && *env ? env : BG_LIBEXECDIR "/banger/banger-agent");
}

/* Early, so that sshd and anything networked start configured; after
 * local-fs.target, because it writes /etc and the user's home. */
const char bg_guest_programs_setup_unit[] =
  "[Unit]\n"
  "Description=banger guest configuration from the CIDATA drive\n"
  "Documentation=man:banger(1)\n"
  "DefaultDependencies=no\n"
  "After=local-fs.target systemd-remount-fs.service\n"
  "Before=sysinit.target network-pre.target ssh.service sshd.service systemd-user-sessions.service\n"
  "Wants=network-pre.target\n"
  "\n"
  "[Service]\n"
  "Type=oneshot\n"
  "RemainAfterExit=yes\n"
  "ExecStart=" BG_GUEST_SETUP_IN_IMAGE "\n"
  "StandardOutput=journal+console\n"
  "StandardError=journal+console\n"
  "\n"
  "[Install]\n"
  "WantedBy=sysinit.target\n";
