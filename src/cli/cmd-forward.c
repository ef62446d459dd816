/* cmd-forward.c: banger vm forward — a VM's ports on the host's
 * loopback. It runs as the user: nothing here asks the mechanism for
 * anything. */
#include <signal.h>
#include <unistd.h>
#include <glib-unix.h>

#include "bg-cli.h"
#include "bg-error.h"
#include "bg-fd.h"
#include "bg-forward.h"
#include "bg-names.h"
#include "bg-state.h"
#include "bg-vm.h"
#include "bg-vm-control.h"

#define UDP_IDLE_DEFAULT_S 60

typedef struct {
  GMainLoop *loop;
  BgForward *forward;
  gboolean   background;
  guint      interrupts;
} Serving;

static gboolean
on_drained (gpointer data)
{
  g_main_loop_quit (((Serving *) data)->loop);
  return G_SOURCE_REMOVE;
}

static gboolean
on_stop_signal (gpointer data)
{
  Serving *s = data;
  guint open = bg_forward_n_open (s->forward);

  /* In the background (stopped by vm forward --stop, vm stop, vm rm)
   * the end is now; in a terminal the first Ctrl-C lets open
   * connections finish, the second cuts them. */
  if (s->background || s->interrupts++ > 0 || open == 0)
    {
      g_main_loop_quit (s->loop);
      return G_SOURCE_CONTINUE;
    }
  g_printerr ("Waiting for %u connection%s to end; press Ctrl-C again to cut %s.\n", open, open == 1 ? "" : "s",
              open == 1 ? "it" : "them");
  bg_forward_drain (s->forward, on_drained, s);
  return G_SOURCE_CONTINUE;
}

static void
serve (Serving *s)
{
  guint sigint = g_unix_signal_add (SIGINT, on_stop_signal, s);
  guint sigterm = g_unix_signal_add (SIGTERM, on_stop_signal, s);
  guint sighup = g_unix_signal_add (SIGHUP, on_stop_signal, s);

  s->loop = g_main_loop_new (NULL, FALSE);
  g_main_loop_run (s->loop);
  g_source_remove (sigint);
  g_source_remove (sigterm);
  g_source_remove (sighup);
  g_main_loop_unref (s->loop);
}

/* Takes @ready_fd: the parent reads the text until it is closed. */
static void
tell_ready (int         ready_fd,
            const char *text)
{
  g_auto(BgFd) fd = ready_fd;

  if (fd < 0)
    return;
  if (write (fd, text, strlen (text)) < 0)
    { /* the parent is gone; nothing to tell */ }
}

static gboolean
list_forwards (BgCli      *cli,
               const char *name)
{
  g_autoptr(GPtrArray) list = bg_forward_list_processes (name);

  if (cli->json)
    {
      GVariantBuilder b = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE ("aa{sv}"));

      for (guint i = 0; i < list->len; i++)
        {
          BgForwardProcess *p = list->pdata[i];
          g_variant_builder_add_parsed (&b, "{'pid': <%x>, 'persistent': <%b>, 'specs': <%^as>}",
                                        p->pid, p->persistent, p->specs);
        }
      bg_cli_print_variant (g_variant_builder_end (&b));
      return TRUE;
    }
  if (list->len == 0)
    {
      g_print ("No background forwards for %s.\n", name);
      return TRUE;
    }
  {
    g_autoptr(BgTable) table = bg_table_new ("PID", "FORWARDS", "STARTED BY", NULL);
    for (guint i = 0; i < list->len; i++)
      {
        BgForwardProcess *p = list->pdata[i];
        g_autofree char *pid = g_strdup_printf ("%" G_GINT64_FORMAT, p->pid);
        g_autofree char *specs = g_strjoinv (" ", p->specs);
        bg_table_add_row (table, pid, specs, p->persistent ? "vm up --forward" : "vm forward --background", NULL);
      }
    bg_table_print (table);
  }
  return TRUE;
}

gboolean
bg_vm_cmd_forward (BgCli *cli, int argc, char **argv, GError **error)
{
  gboolean background = FALSE, list = FALSE, stop = FALSE, persistent = FALSE, ipv6 = FALSE;
  const char *guest_address;
  int serve_fd = -1, udp_idle = UDP_IDLE_DEFAULT_S;
  GOptionEntry entries[] = {
    { "background", 'b', 0, G_OPTION_ARG_NONE, &background, "Run in the background; stop with --stop", NULL },
    { "list", 'l', 0, G_OPTION_ARG_NONE, &list, "List the VM's background forwards", NULL },
    { "stop", 's', 0, G_OPTION_ARG_NONE, &stop, "Stop the VM's background forwards (those with SPEC, if given)", NULL },
    { "ipv6", '6', 0, G_OPTION_ARG_NONE, &ipv6, "Relay to the VM's IPv6 address (default: its IPv4 address)", NULL },
    { "udp-idle", 0, 0, G_OPTION_ARG_INT, &udp_idle, "Seconds before an idle UDP flow is closed (default 60)", "SECONDS" },
    { "serve-background", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_INT, &serve_fd, NULL, NULL },
    { "persistent", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_NONE, &persistent, NULL, NULL },
    { NULL }
  };
  g_autoptr(BgStateStore) store = NULL;
  g_autoptr(BgVmRecord) r = NULL;
  g_autoptr(GPtrArray) specs = g_ptr_array_new_with_free_func ((GDestroyNotify) bg_forward_spec_free);
  g_autoptr(GStrvBuilder) texts = g_strv_builder_new ();
  g_auto(GStrv) spec_texts = NULL;
  g_autoptr(BgForward) forward = NULL;
  g_autoptr(GPtrArray) shown = NULL;
  g_autofree char *joined = NULL;
  BgVmState state;
  Serving s = { 0 };

  if (!bg_cli_parse (cli, &(BgUsage) { "NAME [SPEC…]", 1, -1,
                     "Relay ports of the host to a VM: SPEC is [HOSTADDR:]HOSTPORT[:GUESTPORT][/tcp|/udp].\n\n"
                     "Without HOSTADDR it listens on 127.0.0.1 and ::1, so http://localhost:PORT reaches the\n"
                     "VM's service (a secure context for browsers). It runs as you; ports below the host's\n"
                     "net.ipv4.ip_unprivileged_port_start are refused.\n\n"
                     "  banger vm forward dev 8080:80          until Ctrl-C\n"
                     "  banger vm forward dev 5353/udp -b      in the background\n"
                     "  banger vm forward dev 8080:80 --ipv6   to the VM's IPv6 address\n"
                     "  banger vm forward dev --list | --stop [SPEC]",
                     entries }, &argc, &argv, error) ||
      !bg_name_validate ("NAME", argv[1], error))
    {
      tell_ready (serve_fd, error && *error ? (*error)->message : "bad arguments\n");
      return FALSE;
    }
  if (list + stop + background > 1 || ((list || stop) && serve_fd >= 0))
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "%s: --background, --list and --stop exclude "
                   "each other", argv[0]);
      return FALSE;
    }
  if (udp_idle < 1)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "%s: --udp-idle must be at least 1", argv[0]);
      return FALSE;
    }
  for (int i = 2; i < argc; i++)
    {
      BgForwardSpec *spec = bg_forward_spec_parse (argv[i], error);
      if (spec == NULL)
        {
          tell_ready (serve_fd, (*error)->message);
          return FALSE;
        }
      g_strv_builder_add (texts, spec->text);
      g_ptr_array_add (specs, spec);
    }
  spec_texts = g_strv_builder_end (texts);

  store = bg_state_store_new_default ();
  if ((r = bg_state_store_load (store, argv[1], error)) == NULL)
    {
      tell_ready (serve_fd, (*error)->message);
      return FALSE;
    }
  if (list)
    return bg_cli_expect_args (argv[0], argc, 1, 1, error) && list_forwards (cli, r->name);
  if (stop)
    {
      guint ended;
      if (!bg_cli_expect_args (argv[0], argc, 1, 2, error))
        return FALSE;
      ended = bg_forward_stop_processes (r->name, argc == 3 ? spec_texts[0] : NULL, error);
      if (error && *error)
        return FALSE;
      if (ended == 0 && argc == 3)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_NOT_FOUND, "no background forward of %s has %s; "
                       "see 'banger vm forward %s --list'", r->name, spec_texts[0], r->name);
          return FALSE;
        }
      return bg_cli_done (cli, g_variant_new_parsed ("{'vm': <%s>, 'stopped': <%u>}", r->name, ended),
                          "Stopped %u forward%s of %s.", ended, ended == 1 ? "" : "s", r->name);
    }
  if (specs->len == 0)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "%s: name at least one SPEC, e.g. 'banger vm forward %s 8080:80'", argv[0], r->name);
      return FALSE;
    }
  state = bg_vm_probe_state (r);
  if (!bg_vm_may_answer (r, state))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_BUSY, "VM %s is %s; start it with 'banger vm start %s'", r->name,
                   bg_vm_state_to_string (state), r->name);
      tell_ready (serve_fd, (*error)->message);
      return FALSE;
    }
  guest_address = ipv6 ? r->address6 : r->address;
  if (guest_address == NULL)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_NOT_SUPPORTED, "--ipv6: VM %s has no IPv6 address (IPv6 is off on "
                   "this host; see 'banger system status'); forward without --ipv6", r->name);
      tell_ready (serve_fd, (*error)->message);
      return FALSE;
    }
  if (background)
    {
      GPid pid = 0;
      bg_forward_spec_warn_exposed ((const char * const *) spec_texts, r->name);
      joined = g_strjoinv (", ", spec_texts);
      if (!bg_forward_spawn_background (r->name, spec_texts, FALSE, ipv6, &pid, error))
        return FALSE;
      return bg_cli_done (cli, g_variant_new_parsed ("{'vm': <%s>, 'pid': <%i>, 'specs': <%^as>}", r->name,
                                                     (gint32) pid, spec_texts),
                          "Forwarding %s to %s in the background (pid %d).\n"
                          "Stop it with 'banger vm forward %s --stop'.", joined, r->name, pid, r->name);
    }

  /* Said here, where the user sees it: a background child's stderr is
   * its log. */
  if (serve_fd < 0)
    bg_forward_spec_warn_exposed ((const char * const *) spec_texts, r->name);
  if ((forward = bg_forward_new (r->name, guest_address, specs, udp_idle, error)) == NULL)
    {
      tell_ready (serve_fd, (*error)->message);
      return FALSE;
    }
  s.forward = forward;
  s.background = serve_fd >= 0;
  if (s.background)
    {
      if (!bg_forward_record_self (r->name, spec_texts, persistent, error))
        {
          tell_ready (serve_fd, (*error)->message);
          return FALSE;
        }
      tell_ready (serve_fd, "ok\n");
    }
  else
    {
      shown = bg_forward_listening (forward);
      g_ptr_array_add (shown, NULL);
      joined = g_strjoinv (", ", (char **) shown->pdata);
      bg_cli_done (cli, g_variant_new_parsed ("{'vm': <%s>, 'address': <%s>, 'listening': <%^as>}",
                                              r->name, guest_address, (char **) shown->pdata),
                   "Forwarding %s to %s (%s). Press Ctrl-C to stop.", joined, r->name, guest_address);
    }
  serve (&s);
  if (s.background)
    bg_forward_unrecord_self (r->name);
  return TRUE;
}
