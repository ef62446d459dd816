/* registry-fixture.h: a real registry for tests, shared by the registry
 * suite (test-registry) and the slow suite (test-qemu-oci): Debian's
 * docker-registry on 127.0.0.1 serving TLS from a CA the test makes, with
 * token auth through bg-test-registry.py's token server; images pushed
 * to it with skopeo. Test instruments only. */
#pragma once

#include <glib.h>

/* The token service and issuer the registry and token server agree on. */
#define BG_TEST_REGISTRY_SERVICE "banger-test-registry"
#define BG_TEST_REGISTRY_ISSUER  "banger-test-issuer"
/* "reader" may pull everything (private/ too); "pusher" may push. */
#define BG_TEST_REGISTRY_READER_PW "s3cret-Reader-pw"

typedef struct {
  char   *tmp;                 /* every file of the fixture is in here */
  char   *ca, *ca_key, *cert, *key, *sign_cert, *sign_key, *skopeo_certs;
  char   *storage, *config, *reg_log, *tok_log;
  guint16 reg_port, tok_port;
  GPid    reg_pid, tok_pid;
  char   *reg;                 /* "127.0.0.1:PORT" */
  char   *tok;                 /* "127.0.0.1:PORT" */
} BgTestRegistry;

/* The first tool the fixture needs that is not installed, or NULL. */
const char *bg_test_registry_missing_tool (void);
/* Certificates, the token server and the registry, in @tmp (made by the
 * caller, removed by it). */
void        bg_test_registry_start   (BgTestRegistry     *r,
                                      const char         *tmp);
/* Stops the servers (killed with the test process anyway). */
void        bg_test_registry_stop    (BgTestRegistry     *r);
/* The registry alone, stopped and started again (same port, storage). */
void        bg_test_registry_restart (BgTestRegistry     *r);
/* skopeo copy of the OCI layout @layout's @tag to the registry as
 * DEST (repo:tag), as the pusher; @all copies every image of an index. */
void        bg_test_registry_push    (BgTestRegistry     *r,
                                      const char         *layout,
                                      const char         *tag,
                                      const char         *dest,
                                      gboolean            all);
/* banger in @home trusts the test CA for @authority (host:port), through
 * ~/.config/banger/certs.d/AUTHORITY/ca.crt. */
void        bg_test_registry_trust   (BgTestRegistry     *r,
                                      const char         *home,
                                      const char         *authority);

/* Processes: run to completion (status returned, stdout in @out, stderr
 * in @err), or must succeed (stdout returned); servers logging to @log,
 * killed with the test process. */
int         bg_test_run              (const char * const *argv,
                                      char              **out,
                                      char              **err,
                                      char              **envp);
char       *bg_test_run_ok           (const char * const *argv);
GPid        bg_test_spawn_server     (const char * const *argv,
                                      const char         *log);
void        bg_test_stop_server      (GPid               *pid);
guint16     bg_test_free_port        (void);
/* A child setup function: the child is killed when the test dies. */
void        bg_test_die_with_parent  (gpointer            data);
void        bg_test_wait_listening   (const char         *host,
                                      guint16             port,
                                      GPid                pid);
guint16     bg_test_wait_port_file   (const char         *file,
                                      GPid                pid);
void        bg_test_write_file       (const char         *dir,
                                      const char         *name,
                                      const void         *data,
                                      gsize               len);
