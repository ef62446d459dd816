/* The network's pure parts: names, addresses, network.conf, and the
 * choice of a subnet over a plain list of routes. */
#include <glib/gstdio.h>

#include "bg-error.h"
#include "bg-netconf.h"
#include "netlink.h"

static void
test_tap_names_and_macs_are_stable (void)
{
  g_autofree char *a = bg_net_tap_name (1000, "dev");
  g_autofree char *b = bg_net_tap_name (1000, "dev");
  g_autofree char *c = bg_net_tap_name (1001, "dev");
  g_autofree char *m = bg_net_guest_mac (1000, "dev");

  g_assert_cmpstr (a, ==, b);
  g_assert_cmpstr (a, !=, c);
  g_assert_cmpuint (strlen (a), <=, 15);
  g_assert_true (bg_net_validate_tap_name ("tap", a, NULL));
  g_assert_true (g_str_has_prefix (m, "02:"));
  g_assert_cmpuint (strlen (m), ==, 17);
}

static void
test_subnet_parsing (void)
{
  guint32 net;
  guint prefix;
  g_autoptr(GError) error = NULL;

  g_assert_true (bg_net_parse_subnet ("172.30.0.0/24", &net, &prefix, NULL));
  g_assert_cmpuint (net, ==, 0xac1e0000);
  g_assert_cmpuint (prefix, ==, 24);
  g_assert_false (bg_net_parse_subnet ("172.30.0.1/24", &net, &prefix, &error));
  g_assert_nonnull (strstr (error->message, "host bits"));
  g_clear_error (&error);
  g_assert_false (bg_net_parse_subnet ("172.30.0.0/8", &net, &prefix, NULL));
  g_assert_false (bg_net_parse_subnet ("172.30.0.0", &net, &prefix, NULL));
  g_assert_false (bg_net_parse_subnet ("banana/24", &net, &prefix, NULL));
}

static void
test_ipv6_prefix_and_addresses (void)
{
  guint8 net[16], other[16];
  g_autoptr(GError) error = NULL;
  g_autofree char *vm = NULL, *gw = NULL, *ll = NULL, *text = NULL, *base = NULL;

  g_assert_true (bg_net_parse_subnet6 ("fd12:3456:789a::/64", net, NULL));
  vm = bg_net_ip6_host (net, 7);
  gw = bg_net_ip6_host (net, 1);
  g_assert_cmpstr (vm, ==, "fd12:3456:789a::7");
  g_assert_cmpstr (gw, ==, "fd12:3456:789a::1");
  g_assert_false (bg_net_parse_subnet6 ("fd12:3456:789a::1/64", net, &error));
  g_assert_nonnull (strstr (error->message, "host bits"));
  g_clear_error (&error);
  g_assert_false (bg_net_parse_subnet6 ("fd12:3456:789a::/48", net, &error));
  g_assert_nonnull (strstr (error->message, "subnet6: "));
  g_assert_false (bg_net_parse_subnet6 ("172.30.0.0/24", net, NULL));

  /* RFC 4193: fd00::/8 with a random global ID, subnet 0, a /64. */
  bg_net_ula_random (net);
  bg_net_ula_random (other);
  g_assert_cmphex (net[0], ==, 0xfd);
  g_assert_cmpint (memcmp (net + 1, other + 1, 5), !=, 0);
  base = bg_net_ip6_host (net, 0);
  text = g_strdup_printf ("%s/64", base);
  g_assert_true (bg_net_parse_subnet6 (text, other, NULL));
  g_assert_cmpint (memcmp (net, other, 16), ==, 0);

  /* Modified EUI-64: the universal/local bit flipped, ff:fe between. */
  ll = bg_net_link_local ("02:aa:bb:cc:dd:ee");
  g_assert_cmpstr (ll, ==, "fe80::aa:bbff:fecc:ddee");
  g_assert_null (bg_net_link_local ("nope"));
}

static GArray *
routes (const char *first, ...) G_GNUC_NULL_TERMINATED;

/* "NET/PREFIX@OIF" entries; "default@OIF" for a default route. */
static GArray *
routes (const char *first, ...)
{
  GArray *out = g_array_new (FALSE, FALSE, sizeof (BgRoute));
  va_list ap;

  va_start (ap, first);
  for (const char *r = first; r != NULL; r = va_arg (ap, const char *))
    {
      g_auto(GStrv) at = g_strsplit (r, "@", 2);
      BgRoute route = { 0 };

      route.oif = atoi (at[1]);
      if (!g_str_equal (at[0], "default"))
        {
          g_auto(GStrv) slash = g_strsplit (at[0], "/", 2);
          g_assert_true (bg_ip_parse (slash[0], &route.net));
          route.prefix = atoi (slash[1]);
        }
      g_array_append_val (out, route);
    }
  va_end (ap);
  return out;
}

static char *
pick (GArray *r)
{
  guint32 net = 0;
  g_autoptr(GError) error = NULL;

  if (!bg_routes_pick_subnet (r, &net, &error))
    return g_strdup (error->message);
  return bg_ip_format (net);
}

static void
test_pick_subnet_over_routes (void)
{
  g_autoptr(GArray) none = routes ("default@2", NULL);
  g_autoptr(GArray) taken = routes ("default@2", "172.30.0.0/24@3", "172.30.1.0/24@4", NULL);
  g_autoptr(GArray) wide = routes ("172.30.0.0/16@5", NULL);
  g_autoptr(GArray) host = routes ("10.0.0.0/8@2", "192.168.1.0/24@2", NULL);
  g_autofree char *a = pick (none), *b = pick (taken), *c = pick (wide), *d = pick (host);

  /* From 172.30.0.0 up; default routes never clash. */
  g_assert_cmpstr (a, ==, "172.30.0.0");
  g_assert_cmpstr (b, ==, "172.30.2.0");
  /* A wider route covers all its /24s. */
  g_assert_cmpstr (c, ==, "172.31.0.0");
  g_assert_cmpstr (d, ==, "172.30.0.0");
}

static void
test_pick_subnet_wraps_and_gives_up (void)
{
  g_autoptr(GArray) high = routes ("172.30.0.0/15@3", NULL);
  g_autoptr(GArray) all = routes ("172.16.0.0/12@3", NULL);
  g_autofree char *a = pick (high), *b = pick (all);

  /* Past 172.31.255.0 it wraps to 172.16.0.0. */
  g_assert_cmpstr (a, ==, "172.16.0.0");
  g_assert_nonnull (strstr (b, "every /24 in 172.16.0.0/12 is routed"));
}

static void
test_clash_skips_our_own_bridge (void)
{
  g_autoptr(GArray) r = routes ("172.30.0.0/24@7", "default@2", NULL);

  g_assert_nonnull (bg_routes_find_clash (r, 0xac1e0000, 24, -1));
  g_assert_null (bg_routes_find_clash (r, 0xac1e0000, 24, 7));
  g_assert_null (bg_routes_find_clash (r, 0xac1e0100, 24, -1));
  g_assert_cmpint (bg_routes_default_oif (r), ==, 2);
}

static char *
write_conf (const char *text)
{
  g_autofree char *dir = g_dir_make_tmp ("banger-netconf-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "network.conf", NULL);

  g_assert_true (g_file_set_contents (path, text, -1, NULL));
  return g_steal_pointer (&dir);
}

static void
remove_conf (const char *dir)
{
  g_autofree char *path = g_build_filename (dir, "network.conf", NULL);
  g_unlink (path);
  g_rmdir (dir);
}

static void
test_config_defaults_and_errors (void)
{
  static const struct { const char *text; const char *error; } bad[] = {
    { "[network]\nbridge=bg-x\n", "bridge must not start with bg-" },
    { "[network]\nbridge=a b\n", "bridge: \"a b\" is not a valid interface name" },
    { "[network]\nsubnet=10.0.0.0/8\n", "subnet: \"10.0.0.0/8\" is not an IPv4 subnet" },
    { "[network]\ndomain=Not.One\n", "domain: \"Not.One\" must be one DNS label" },
    { "[network]\ndns=1.1.1.1,nope\n", "dns: \"nope\" is not an IPv4 address" },
    { "[network]\nsubnet6=fd00::/56\n", "subnet6: \"fd00::/56\" is not an IPv6 /64" },
  };
  g_autofree char *dir = write_conf ("[network]\n");
  g_autoptr(BgNetConfig) c = bg_net_config_load (dir, NULL);

  g_assert_nonnull (c);
  g_assert_cmpstr (c->bridge, ==, "banger0");
  g_assert_true (c->subnet_auto);
  g_assert_cmpstr (c->domain, ==, "banger");
  g_assert_null (c->uplink);
  remove_conf (dir);

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree char *d = write_conf (bad[i].text);
      g_autoptr(GError) error = NULL;
      g_autoptr(BgNetConfig) b = bg_net_config_load (d, &error);

      g_assert_null (b);
      if (strstr (error->message, bad[i].error) == NULL || strstr (error->message, "network.conf") == NULL)
        g_error ("%s: got \"%s\"", bad[i].text, error->message);
      remove_conf (d);
    }
}

static void
test_guest_dns_skips_loopback (void)
{
  g_autofree char *dir = write_conf ("[network]\n");
  g_autofree char *resolv = g_build_filename (dir, "resolv.conf", NULL);
  g_autofree char *stub = g_build_filename (dir, "stub.conf", NULL);
  const char *files[] = { stub, resolv, NULL };
  g_autoptr(BgNetConfig) c = bg_net_config_load (dir, NULL);
  g_auto(GStrv) dns = NULL;

  g_assert_true (g_file_set_contents (stub, "nameserver 127.0.0.53\n", -1, NULL));
  g_assert_true (g_file_set_contents (resolv, "# x\nnameserver 192.0.2.1\nnameserver 127.0.0.1\n"
                                      "nameserver 192.0.2.2\n", -1, NULL));
  dns = bg_net_config_guest_dns (c, files);
  g_assert_cmpuint (g_strv_length (dns), ==, 2);
  g_assert_cmpstr (dns[0], ==, "192.0.2.1");
  g_assert_cmpstr (dns[1], ==, "192.0.2.2");
  g_unlink (resolv);
  g_unlink (stub);
  remove_conf (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/netconf/tap-names-and-macs-are-stable", test_tap_names_and_macs_are_stable);
  g_test_add_func ("/netconf/subnet-parsing", test_subnet_parsing);
  g_test_add_func ("/netconf/ipv6-prefix-and-addresses", test_ipv6_prefix_and_addresses);
  g_test_add_func ("/netconf/pick-subnet-over-routes", test_pick_subnet_over_routes);
  g_test_add_func ("/netconf/pick-subnet-wraps-and-gives-up", test_pick_subnet_wraps_and_gives_up);
  g_test_add_func ("/netconf/clash-skips-our-own-bridge", test_clash_skips_our_own_bridge);
  g_test_add_func ("/netconf/config-defaults-and-errors", test_config_defaults_and_errors);
  g_test_add_func ("/netconf/guest-dns-skips-loopback", test_guest_dns_skips_loopback);
  return g_test_run ();
}
