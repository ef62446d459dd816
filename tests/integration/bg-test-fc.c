/* bg-test-fc: drives a VMM through banger's API client as a given user.
 *
 *   bg-test-fc [--user NAME] SOCKET get
 *   bg-test-fc [--user NAME] SOCKET boot TAP MAC   configure, start, pause, resume
 *   bg-test-fc [--user NAME] SOCKET bad            a body Firecracker rejects
 *   bg-test-fc [--user NAME] SOCKET config         GET /vm/config
 *   bg-test-fc [--user NAME] SOCKET ctrl-alt-del
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include "bg-fc-client.h"

static int
fail (GError *error)
{
  g_print ("ERROR %s\n", error->message);
  return 1;
}

int
main (int argc, char **argv)
{
  g_autofree char *user = NULL;
  GOptionEntry entries[] = {
    { "user", 0, 0, G_OPTION_ARG_STRING, &user, "Run as this user", "NAME" },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("SOCKET COMMAND");
  g_autoptr(GError) error = NULL;
  g_autoptr(BgFcClient) fc = NULL;
  const BgFcDrive rootfs_only[] = { { "rootfs", "/rootfs", TRUE, FALSE }, { NULL } };
  const char *cmd;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error) || argc < 3)
    return 2;
  if (user != NULL)
    {
      struct passwd *pw = getpwnam (user);
      if (pw == NULL || initgroups (user, pw->pw_gid) < 0 ||
          setresgid (pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
          setresuid (pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0)
        return 2;
    }
  fc = bg_fc_client_new (argv[1]);
  cmd = argv[2];

  if (g_str_equal (cmd, "get"))
    {
      g_autofree char *state = bg_fc_get_state (fc, &error);
      if (state == NULL)
        return fail (error);
      g_print ("%s\n", state);
    }
  else if (g_str_equal (cmd, "boot") && argc >= 5)
    {
      g_autofree char *s1 = NULL, *s2 = NULL, *s3 = NULL, *s0 = NULL;

      if ((s0 = bg_fc_get_state (fc, &error)) == NULL ||
          !bg_fc_configure (fc, &(BgFcMachine) { 2, 256, "/vmlinux", NULL, "console=ttyS0 reboot=k panic=1",
                                                 rootfs_only, argv[3], argv[4], 3, "/run/vsock.sock" }, &error) ||
          !bg_fc_action (fc, "InstanceStart", &error) ||
          (s1 = bg_fc_get_state (fc, &error)) == NULL ||
          !bg_fc_set_state (fc, "Paused", &error) ||
          (s2 = bg_fc_get_state (fc, &error)) == NULL ||
          !bg_fc_set_state (fc, "Resumed", &error) ||
          (s3 = bg_fc_get_state (fc, &error)) == NULL)
        return fail (error);
      g_print ("%s|%s|%s|%s\n", s0, s1, s2, s3);
    }
  else if (g_str_equal (cmd, "bad"))
    {
      /* Three vCPUs: Firecracker takes 1 or an even count. */
      if (bg_fc_configure (fc, &(BgFcMachine) { 3, 256, "/vmlinux", NULL, NULL, rootfs_only, "tap0", NULL,
                                                3, "/run/vsock.sock" }, &error))
        g_print ("ACCEPTED\n");
      else
        return fail (error);
    }
  else if (g_str_equal (cmd, "config"))
    {
      g_autoptr(JsonNode) n = bg_fc_client_request (fc, "GET", "/vm/config", NULL, &error);
      g_autofree char *text = NULL;
      if (n == NULL)
        return fail (error);
      text = json_to_string (n, FALSE);
      g_print ("%s\n", text);
    }
  else if (g_str_equal (cmd, "ctrl-alt-del"))
    {
      if (!bg_fc_action (fc, "SendCtrlAltDel", &error))
        return fail (error);
      g_print ("OK\n");
    }
  else
    return 2;
  return 0;
}
