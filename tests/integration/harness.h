/* The integration harness: a private system bus, the real polkitd with
 * banger's real policy, and the mechanism from the build directory,
 * activated by that bus, all inside a fresh network namespace. */
#pragma once

#include <gio/gio.h>

#include "../bg-test.h"

G_BEGIN_DECLS

#define BG_TEST_USER_A "bg-test-a"
#define BG_TEST_USER_B "bg-test-b"
#define BG_TEST_GROUP  "bg-test"

typedef struct {
  char            *tmp;
  char            *bus_address;
  char            *run_dir;
  char            *config_dir;
  char            *rules_dir;
  GPid             dbus_pid;
  GPid             polkit_pid;
  GDBusConnection *bus;        /* the harness's own (root) connection */
  char            *cli_path_prefix; /* prepended to PATH for CLI runs */
  gboolean         run_mounted;     /* run_dir is a tmpfs of the harness's own */
  gboolean         rules_mounted;   /* rules_dir is bound over polkit's rules dirs */
} BgHarness;

typedef struct {
  gboolean  ok;
  char     *error_name;        /* e.g. "org.banger.Mechanism1.Error.NotOwner" */
  char     *message;
  char     *reply;             /* the reply, printed as a GVariant */
  gboolean  open_failed;       /* the user could not open a --fd file */
} BgCallResult;

int           bg_harness_main          (int          *argc,
                                        char       ***argv,
                                        void        (*add_tests) (void));
/* As bg_harness_main, with @prepare run once the test users exist but
 * before the process leaves the host's network (e.g. to fetch packages).
 * Returning a string skips every test with it as the reason. */
int           bg_harness_main_full     (int          *argc,
                                        char       ***argv,
                                        const char *(*prepare) (void),
                                        void        (*add_tests) (void));
/* A suite that cannot run here: skips saying @reason, or under CI=true
 * fails with it. Returns main()'s exit code. */
int           bg_harness_cannot_run    (const char   *reason);
/* This run's id (the supervisor's pid, outside the tests' PID
 * namespace): names of host-visible things (netns, /tmp dirs) carry it
 * so the supervisor can remove what a killed test left. */
int           bg_harness_run_id        (void);
BgHarness    *bg_harness_start         (guint         idle_timeout);
BgHarness    *bg_harness_start_installed (void);
void          bg_harness_stop          (BgHarness    *h);
BgCallResult *bg_harness_call          (BgHarness    *h,
                                        const char   *user,
                                        const char   *method,
                                        const char   *args,
                                        ...) G_GNUC_NULL_TERMINATED;
void          bg_call_result_free      (BgCallResult *r);
char         *bg_call_result_lookup    (BgCallResult *r,
                                        const char   *key);
void          bg_harness_set_group_rule (BgHarness   *h,
                                        gboolean      enabled);
guint32       bg_harness_uid           (const char   *user);
GPid          bg_harness_spawn_user_process (const char *user,
                                             guint64    *start_time);
GPid          bg_harness_mechanism_pid (BgHarness    *h);
void          bg_harness_count_start   (BgHarness    *h,
                                        const char   *step);
guint         bg_harness_count         (BgHarness    *h,
                                        const char   *step);
gboolean      bg_harness_wait_name_gone (BgHarness   *h,
                                        guint         timeout_s);
void          bg_harness_run_argv      (const char * const *argv,
                                        char        **out,
                                        int          *status);
char        **bg_harness_cli_argv      (const char   *user,
                                        const char * const *args);
char        **bg_harness_cli_envp      (BgHarness    *h,
                                        const char   *home,
                                        const char   *runtime);
int           bg_harness_run_cli       (BgHarness    *h,
                                        const char   *user,
                                        char        **out,
                                        char        **err,
                                        const char   *first_arg,
                                        ...) G_GNUC_NULL_TERMINATED;
/* The CLI as test user A, whom most tests are: bg_harness_run_cli's
 * arguments, NULL-terminated, after @err. */
#define bg_harness_cli(h, out, err, ...) bg_harness_run_cli ((h), BG_TEST_USER_A, (out), (err), __VA_ARGS__)
gboolean      bg_harness_mirror_reachable (void);
char         *bg_harness_build_image   (const char   *home,
                                        const char   *name,
                                        gboolean      cloud_init);
char         *bg_harness_build_image_full (const char *home,
                                        const char   *name,
                                        gboolean      cloud_init,
                                        const char   *packages);
char         *bg_harness_vmm_section   (const char   *vmm_path);
void          bg_harness_use_vmm       (BgHarness    *h,
                                        const char   *vmm_path);
void          bg_harness_write_tiny_kernel (const char *path,
                                        const char   *user);
void          bg_harness_import_test_image (BgHarness *h,
                                        const char   *user);
void          bg_harness_write_config  (BgHarness    *h,
                                        const char   *name,
                                        const char   *text);

#define bg_assert_call_ok(r) \
  G_STMT_START { if (!(r)->ok) g_error ("call failed: %s: %s", (r)->error_name, (r)->message); } G_STMT_END
#define bg_assert_call_error(r, name, substr) \
  G_STMT_START { \
    if ((r)->ok) g_error ("call succeeded, expected %s", name); \
    if (g_strcmp0 ((r)->error_name, name) != 0) \
      g_error ("expected %s, got %s: %s", name, (r)->error_name, (r)->message); \
    { const char *_want = (substr); \
      if (_want != NULL && strstr ((r)->message, _want) == NULL) \
        g_error ("error message \"%s\" lacks \"%s\"", (r)->message, _want); } \
  } G_STMT_END

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BgCallResult, bg_call_result_free)

G_END_DECLS
