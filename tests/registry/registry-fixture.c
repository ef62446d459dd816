/* registry-fixture.c: a real registry for tests (see registry-fixture.h).
 *
 * A CA of the test's own (openssl argv), a server certificate for
 * 127.0.0.1 and 127.0.0.2 signed by it, Debian's docker-registry serving
 * TLS on 127.0.0.1 with token auth, and the token server of
 * bg-test-registry.py holding the signing key whose certificate the
 * registry trusts. Everything listens on 127.0.0.0/8 only; every wait is
 * bounded. */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <gio/gio.h>
#include <glib/gstdio.h>

#include "registry-fixture.h"

/* ---- processes ---- */

void
bg_test_die_with_parent (gpointer data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

int
bg_test_run (const char * const *argv,
             char              **out,
             char              **err,
             char              **envp)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *o = NULL, *e = NULL;
  int status = -1;

  if (!g_spawn_sync (NULL, (char **) argv, envp, G_SPAWN_SEARCH_PATH, NULL, NULL, &o, &e, &status, &error))
    g_error ("cannot run %s: %s", argv[0], error->message);
  if (out)
    *out = g_steal_pointer (&o);
  if (err)
    *err = g_steal_pointer (&e);
  return WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
}

char *
bg_test_run_ok (const char * const *argv)
{
  g_autofree char *out = NULL, *err = NULL;
  g_autofree char *line = g_strjoinv (" ", (char **) argv);

  if (bg_test_run (argv, &out, &err, NULL) != 0)
    g_error ("%s failed:\n%s%s", line, out, err);
  return g_steal_pointer (&out);
}

GPid
bg_test_spawn_server (const char * const *argv,
                      const char         *log)
{
  g_autoptr(GError) error = NULL;
  int fd = open (log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  GPid pid;

  g_assert_cmpint (fd, >=, 0);
  if (!g_spawn_async_with_pipes_and_fds (NULL, argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD,
                                         bg_test_die_with_parent, NULL, -1, fd, fd, NULL, NULL, 0, &pid,
                                         NULL, NULL, NULL, &error))
    g_error ("cannot start %s: %s", argv[0], error->message);
  close (fd);
  return pid;
}

void
bg_test_stop_server (GPid *pid)
{
  if (*pid <= 0)
    return;
  kill (*pid, SIGKILL);
  waitpid (*pid, NULL, 0);
  *pid = 0;
}

guint16
bg_test_free_port (void)
{
  g_autoptr(GSocket) s = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, 0, NULL);
  g_autoptr(GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) addr = g_inet_socket_address_new (lo, 0);
  g_autoptr(GSocketAddress) bound = NULL;

  g_assert_true (g_socket_bind (s, addr, FALSE, NULL));
  bound = g_socket_get_local_address (s, NULL);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

/* Waits (10 s at most) until something accepts on @host:@port. */
void
bg_test_wait_listening (const char *host,
                        guint16     port,
                        GPid        pid)
{
  for (guint i = 0; i < 200; i++)
    {
      g_autoptr(GSocketClient) c = g_socket_client_new ();
      g_autoptr(GSocketConnection) conn = g_socket_client_connect_to_host (c, host, port, NULL, NULL);
      int status;

      if (conn != NULL)
        return;
      if (waitpid (pid, &status, WNOHANG) == pid)
        g_error ("the server for %s:%u exited (status %d)", host, port, status);
      g_usleep (50 * 1000);
    }
  g_error ("nothing listens on %s:%u after 10 s", host, port);
}

guint16
bg_test_wait_port_file (const char *file,
                        GPid        pid)
{
  for (guint i = 0; i < 200; i++)
    {
      g_autofree char *text = NULL;
      int status;

      if (g_file_get_contents (file, &text, NULL, NULL))
        return (guint16) atoi (text);
      if (waitpid (pid, &status, WNOHANG) == pid)
        g_error ("the server writing %s exited (status %d)", file, status);
      g_usleep (50 * 1000);
    }
  g_error ("no port in %s after 10 s", file);
}

void
bg_test_write_file (const char *dir,
                    const char *name,
                    const void *data,
                    gsize       len)
{
  g_autofree char *file = g_build_filename (dir, name, NULL);
  g_autofree char *parent = g_path_get_dirname (file);

  g_assert_cmpint (g_mkdir_with_parents (parent, 0755), ==, 0);
  g_assert_true (g_file_set_contents (file, data, len, NULL));
}

/* ---- the registry ---- */

const char *
bg_test_registry_missing_tool (void)
{
  const char *tools[] = { "docker-registry", "skopeo", "umoci", "openssl" };

  for (guint i = 0; i < G_N_ELEMENTS (tools); i++)
    {
      g_autofree char *p = g_find_program_in_path (tools[i]);
      if (p == NULL)
        return tools[i];
    }
  if (!g_file_test ("/usr/bin/python3", G_FILE_TEST_IS_EXECUTABLE))
    return "/usr/bin/python3";
  return NULL;
}

static void
make_certs (BgTestRegistry *r)
{
  g_autofree char *csr = g_build_filename (r->tmp, "server.csr", NULL);
  g_autofree char *ext = g_build_filename (r->tmp, "server.ext", NULL);
  g_autofree char *serial = g_build_filename (r->tmp, "ca.srl", NULL);

  r->ca = g_build_filename (r->tmp, "ca.pem", NULL);
  r->ca_key = g_build_filename (r->tmp, "ca.key", NULL);
  r->cert = g_build_filename (r->tmp, "server.pem", NULL);
  r->key = g_build_filename (r->tmp, "server.key", NULL);
  r->sign_cert = g_build_filename (r->tmp, "token-signer.pem", NULL);
  r->sign_key = g_build_filename (r->tmp, "token-signer.key", NULL);
  g_free (bg_test_run_ok ((const char *[]) { "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                                             "-keyout", r->ca_key, "-out", r->ca, "-days", "2",
                                             "-subj", "/CN=banger test CA",
                                             "-addext", "basicConstraints=critical,CA:TRUE",
                                             "-addext", "keyUsage=critical,keyCertSign,cRLSign", NULL }));
  g_free (bg_test_run_ok ((const char *[]) { "openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", r->key,
                                             "-out", csr, "-subj", "/CN=127.0.0.1", NULL }));
  g_assert_true (g_file_set_contents (ext, "subjectAltName=IP:127.0.0.1,IP:127.0.0.2\n"
                                      "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n", -1, NULL));
  g_free (bg_test_run_ok ((const char *[]) { "openssl", "x509", "-req", "-in", csr, "-CA", r->ca,
                                             "-CAkey", r->ca_key, "-CAserial", serial, "-CAcreateserial",
                                             "-days", "2", "-extfile", ext, "-out", r->cert, NULL }));
  /* The token signer: its own self-signed certificate, the registry's
   * rootcertbundle, carried in each token's x5c header. */
  g_free (bg_test_run_ok ((const char *[]) { "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                                             "-keyout", r->sign_key, "-out", r->sign_cert, "-days", "2",
                                             "-subj", "/CN=banger test token signer", NULL }));
  /* skopeo's --dest-cert-dir: the CA, for the registry and the token server. */
  r->skopeo_certs = g_build_filename (r->tmp, "skopeo-certs", NULL);
  g_assert_cmpint (g_mkdir (r->skopeo_certs, 0700), ==, 0);
  {
    g_autofree char *pem = NULL;
    g_assert_true (g_file_get_contents (r->ca, &pem, NULL, NULL));
    bg_test_write_file (r->skopeo_certs, "ca.crt", pem, strlen (pem));
  }
}

static void
start_token_server (BgTestRegistry *r)
{
  g_autofree char *port_file = g_build_filename (r->tmp, "token.port", NULL);

  r->tok_log = g_build_filename (r->tmp, "token.log", NULL);
  r->tok_pid = bg_test_spawn_server ((const char *[]) { "/usr/bin/python3", BG_TEST_REGISTRY_PY, "token",
                                                        "--listen", "127.0.0.1", "--cert", r->cert, "--key", r->key,
                                                        "--port-file", port_file, "--log", r->tok_log,
                                                        "--issuer", BG_TEST_REGISTRY_ISSUER,
                                                        "--sign-key", r->sign_key, "--sign-cert", r->sign_cert,
                                                        "--user", "pusher:pusher-pw:pull+push",
                                                        "--user", "reader:" BG_TEST_REGISTRY_READER_PW ":pull",
                                                        NULL }, r->tok_log);
  r->tok_port = bg_test_wait_port_file (port_file, r->tok_pid);
  r->tok = g_strdup_printf ("127.0.0.1:%u", r->tok_port);
}

static void
write_registry_config (BgTestRegistry *r)
{
  g_autofree char *yml = NULL;

  r->storage = g_build_filename (r->tmp, "storage", NULL);
  r->config = g_build_filename (r->tmp, "registry.yml", NULL);
  r->reg_log = g_build_filename (r->tmp, "registry.log", NULL);
  r->reg_port = bg_test_free_port ();
  r->reg = g_strdup_printf ("127.0.0.1:%u", r->reg_port);
  yml = g_strdup_printf ("version: 0.1\n"
                         "log:\n  level: info\n  formatter: text\n"
                         "storage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\n"
                         "  cache:\n    blobdescriptor: ''\n"
                         "http:\n  addr: 127.0.0.1:%u\n  tls:\n    certificate: %s\n    key: %s\n"
                         "auth:\n  token:\n    realm: https://127.0.0.1:%u/token\n"
                         "    service: " BG_TEST_REGISTRY_SERVICE "\n"
                         "    issuer: " BG_TEST_REGISTRY_ISSUER "\n    rootcertbundle: %s\n",
                         r->storage, r->reg_port, r->cert, r->key, r->tok_port, r->sign_cert);
  g_assert_true (g_file_set_contents (r->config, yml, -1, NULL));
}

void
bg_test_registry_restart (BgTestRegistry *r)
{
  bg_test_stop_server (&r->reg_pid);
  r->reg_pid = bg_test_spawn_server ((const char *[]) { "docker-registry", "serve", r->config, NULL }, r->reg_log);
  bg_test_wait_listening ("127.0.0.1", r->reg_port, r->reg_pid);
}

void
bg_test_registry_start (BgTestRegistry *r,
                        const char     *tmp)
{
  r->tmp = g_strdup (tmp);
  make_certs (r);
  start_token_server (r);
  write_registry_config (r);
  bg_test_registry_restart (r);
}

void
bg_test_registry_stop (BgTestRegistry *r)
{
  bg_test_stop_server (&r->reg_pid);
  bg_test_stop_server (&r->tok_pid);
}

void
bg_test_registry_push (BgTestRegistry *r,
                       const char     *layout,
                       const char     *tag,
                       const char     *dest,
                       gboolean        all)
{
  g_autofree char *src = g_strdup_printf ("oci:%s:%s", layout, tag);
  g_autofree char *dst = g_strdup_printf ("docker://%s/%s", r->reg, dest);

  g_free (bg_test_run_ok ((const char *[]) { "skopeo", "copy", "--insecure-policy", "--quiet",
                                             "--dest-cert-dir", r->skopeo_certs, "--dest-creds", "pusher:pusher-pw",
                                             all ? "--all" : "--quiet", src, dst, NULL }));
}

void
bg_test_registry_trust (BgTestRegistry *r,
                        const char     *home,
                        const char     *authority)
{
  g_autofree char *pem = NULL;
  g_autofree char *dir = g_build_filename (home, ".config", "banger", "certs.d", authority, NULL);

  g_assert_true (g_file_get_contents (r->ca, &pem, NULL, NULL));
  bg_test_write_file (dir, "ca.crt", pem, strlen (pem));
}
