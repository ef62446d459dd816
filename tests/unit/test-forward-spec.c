/* vm forward's SPEC: [HOSTADDR:]HOSTPORT[:GUESTPORT][/tcp|/udp]. */
#include <gio/gio.h>

#include "bg-error.h"
#include "bg-forward.h"

static void
test_good_specs_are_made_canonical (void)
{
  static const struct { const char *in, *text, *address; guint hp, gp; gboolean udp; } cases[] = {
    { "8080", "8080:8080/tcp", NULL, 8080, 8080, FALSE },
    { "8080:80", "8080:80/tcp", NULL, 8080, 80, FALSE },
    { "5353/udp", "5353:5353/udp", NULL, 5353, 5353, TRUE },
    { "127.0.0.1:8080", "127.0.0.1:8080:8080/tcp", "127.0.0.1", 8080, 8080, FALSE },
    { "0.0.0.0:8080:80/tcp", "0.0.0.0:8080:80/tcp", "0.0.0.0", 8080, 80, FALSE },
    { "[::1]:8080:80/udp", "[::1]:8080:80/udp", "::1", 8080, 80, TRUE },
    { "[fe80::1]:9000", "[fe80::1]:9000:9000/tcp", "fe80::1", 9000, 9000, FALSE },
    { "[0::0]:8080:80", "[::]:8080:80/tcp", "::", 8080, 80, FALSE },
    { "[FE80:0::1]:9000", "[fe80::1]:9000:9000/tcp", "fe80::1", 9000, 9000, FALSE },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(BgForwardSpec) s = bg_forward_spec_parse (cases[i].in, &error);

      g_assert_no_error (error);
      g_assert_cmpstr (s->text, ==, cases[i].text);
      g_assert_cmpstr (s->host_address, ==, cases[i].address);
      g_assert_cmpuint (s->host_port, ==, cases[i].hp);
      g_assert_cmpuint (s->guest_port, ==, cases[i].gp);
      g_assert_cmpint (s->udp, ==, cases[i].udp);
      /* The canonical form reads back as itself. */
      {
        g_autoptr(BgForwardSpec) again = bg_forward_spec_parse (s->text, &error);
        g_assert_no_error (error);
        g_assert_cmpstr (again->text, ==, s->text);
      }
    }
}

/* Every interface is an address, however it is written: the warning
 * about it must not depend on the spelling. */
static void
test_every_interface_is_recognised_as_an_address (void)
{
  static const struct { const char *in; gboolean exposed; } cases[] = {
    { "0.0.0.0:8080", TRUE },
    { "[::]:8080", TRUE },
    { "[0::0]:8080", TRUE },
    { "[0:0:0:0:0:0:0:0]:8080:80/udp", TRUE },
    { "8080", FALSE },
    { "127.0.0.1:8080", FALSE },
    { "[::1]:8080", FALSE },
    { "192.168.1.2:8080", FALSE },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(BgForwardSpec) s = bg_forward_spec_parse (cases[i].in, &error);

      g_assert_no_error (error);
      if (s->exposed != cases[i].exposed)
        g_error ("\"%s\": exposed %d, expected %d", cases[i].in, s->exposed, cases[i].exposed);
    }
}

static void
test_bad_specs_name_what_is_wrong (void)
{
  static const struct { const char *in, *says; } cases[] = {
    { "", "write [HOSTADDR:]HOSTPORT" },
    { "http", "host port \"http\" is not a port number" },
    { "0", "host port \"0\" is not a port number" },
    { "8080:65536", "guest port \"65536\" is not a port number" },
    { "8080/sctp", "the protocol is tcp or udp, not \"sctp\"" },
    { "[::1]8080", "an IPv6 address is written [ADDRESS]:PORT" },
    { "1.2.3:80", "\"1.2.3\" is not an IP address" },
    { "localhost:80", "\"localhost\" is not an IP address" },
    { "1.2.3.4:80:81:82", "write [HOSTADDR:]HOSTPORT" },
    { "80:-1", "guest port \"-1\"" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(BgForwardSpec) s = bg_forward_spec_parse (cases[i].in, &error);

      g_assert_null (s);
      g_assert_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT);
      if (strstr (error->message, cases[i].says) == NULL || !g_str_has_prefix (error->message, "SPEC \""))
        g_error ("\"%s\": %s (expected \"%s\")", cases[i].in, error->message, cases[i].says);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/forward-spec/good-specs-are-made-canonical", test_good_specs_are_made_canonical);
  g_test_add_func ("/forward-spec/bad-specs-name-what-is-wrong", test_bad_specs_name_what_is_wrong);
  g_test_add_func ("/forward-spec/every-interface-is-recognised-as-an-address",
                   test_every_interface_is_recognised_as_an_address);
  return g_test_run ();
}
