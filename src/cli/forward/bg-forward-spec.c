/* bg-forward-spec.c: vm forward's SPEC,
 * [HOSTADDR:]HOSTPORT[:GUESTPORT][/tcp|/udp], parsed into its canonical
 * form; errors name the SPEC and the part that is wrong. */
#include <string.h>

#include "bg-cli.h"
#include "bg-error.h"
#include "bg-forward.h"

void
bg_forward_spec_free (BgForwardSpec *spec)
{
  if (spec == NULL)
    return;
  g_free (spec->host_address);
  g_free (spec->text);
  g_free (spec);
}

static gboolean
parse_port (const char  *text,
            const char  *spec,
            const char  *which,
            guint16     *port,
            GError     **error)
{
  guint64 v;

  if (!g_ascii_string_to_unsigned (text, 10, 1, 65535, &v, NULL))
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                   "SPEC \"%s\": %s \"%s\" is not a port number (1-65535)", spec, which, text);
      return FALSE;
    }
  *port = (guint16) v;
  return TRUE;
}

BgForwardSpec *
bg_forward_spec_parse (const char  *text,
                       GError     **error)
{
  g_autoptr(BgForwardSpec) s = g_new0 (BgForwardSpec, 1);
  g_autofree char *body = g_strdup (text);
  g_auto(GStrv) parts = NULL;
  char *slash = strrchr (body, '/');
  const char *rest = body;
  guint n;

  if (slash != NULL)
    {
      *slash = '\0';
      if (g_str_equal (slash + 1, "udp"))
        s->udp = TRUE;
      else if (!g_str_equal (slash + 1, "tcp"))
        {
          g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                       "SPEC \"%s\": the protocol is tcp or udp, not \"%s\"", text, slash + 1);
          return NULL;
        }
    }
  if (body[0] == '[')
    {
      char *close = strchr (body, ']');
      if (close == NULL || close[1] != ':')
        {
          g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                       "SPEC \"%s\": an IPv6 address is written [ADDRESS]:PORT", text);
          return NULL;
        }
      *close = '\0';
      s->host_address = g_strdup (body + 1);
      rest = close + 2;
    }
  parts = g_strsplit (rest, ":", -1);
  n = g_strv_length (parts);
  if (s->host_address == NULL && n >= 2 &&
      (n == 3 || !g_ascii_string_to_unsigned (parts[0], 10, 0, G_MAXUINT64, NULL, NULL)))
    {
      /* ADDRESS:PORT[:PORT]; two numbers alone are HOSTPORT:GUESTPORT. */
      s->host_address = g_strdup (parts[0]);
      rest = parts[1];
      parts = (g_free (parts[0]), memmove (parts, parts + 1, n * sizeof (char *)), parts);
      n--;
    }
  if (n < 1 || n > 2 || parts[0][0] == '\0')
    {
      g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                   "SPEC \"%s\": write [HOSTADDR:]HOSTPORT[:GUESTPORT][/tcp|/udp], e.g. 8080:80", text);
      return NULL;
    }
  if (!parse_port (parts[0], text, "host port", &s->host_port, error) ||
      !parse_port (n == 2 ? parts[1] : parts[0], text, "guest port", &s->guest_port, error))
    return NULL;
  if (s->host_address != NULL)
    {
      g_autoptr(GInetAddress) a = g_inet_address_new_from_string (s->host_address);
      if (a == NULL)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT,
                       "SPEC \"%s\": \"%s\" is not an IP address", text, s->host_address);
          return NULL;
        }
      /* One spelling per address: [0::0] is [::]. */
      g_free (s->host_address);
      s->host_address = g_inet_address_to_string (a);
      s->exposed = g_inet_address_get_is_any (a);
    }
  s->text = g_strdup_printf ("%s%s%s%s%u:%u/%s", s->host_address && strchr (s->host_address, ':') ? "[" : "",
                             s->host_address ? s->host_address : "",
                             s->host_address && strchr (s->host_address, ':') ? "]" : "",
                             s->host_address ? ":" : "", s->host_port, s->guest_port, s->udp ? "udp" : "tcp");
  return g_steal_pointer (&s);
}

/* Says, on the terminal of the command that starts them, which of the
 * forwards @texts (canonical SPECs) of @vm_name listen on every
 * interface (0.0.0.0, [::], however written). */
void
bg_forward_spec_warn_exposed (const char * const *texts,
                              const char         *vm_name)
{
  for (guint i = 0; texts != NULL && texts[i] != NULL; i++)
    {
      g_autoptr(BgForwardSpec) spec = bg_forward_spec_parse (texts[i], NULL);

      if (spec != NULL && spec->exposed)
        bg_cli_warn ("%s listens on every interface: whoever can reach this host on port %u reaches %s",
                     spec->text, spec->host_port, vm_name);
    }
}
