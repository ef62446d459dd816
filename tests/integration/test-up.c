/* `banger vm up` end to end, as an unprivileged user, with the test VMM
 * standing in for Firecracker: the real CLI, the real mechanism on the
 * test bus with the real polkitd, a real bridge, taps, loop devices and
 * jails, in a fresh network namespace. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <time.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "harness.h"

typedef struct {
  BgHarness *h;
  char      *home;
} Fixture;

static char *
home_of (Fixture *f)
{
  return g_strdup_printf ("%s/home-%s", f->h->tmp, BG_TEST_USER_A);
}

static void
setup (Fixture *f, gconstpointer data)
{
  f->h = bg_harness_start (60);
  bg_harness_set_group_rule (f->h, TRUE);
  bg_harness_use_vmm (f->h, g_getenv ("BANGER_TEST_VMM"));
  bg_harness_import_test_image (f->h, BG_TEST_USER_A);
  f->home = home_of (f);
}

static void
teardown (Fixture *f, gconstpointer data)
{
  bg_harness_stop (f->h);
  g_free (f->home);
}

static JsonNode *
json (const char *text)
{
  g_autoptr(JsonParser) p = json_parser_new ();
  g_autoptr(GError) error = NULL;

  if (!json_parser_load_from_data (p, text, -1, &error))
    g_error ("not JSON (%s): %s", error->message, text);
  return json_node_copy (json_parser_get_root (p));
}

/* Everything banger could leave behind, as one string to compare. */
static char *
snapshot (Fixture *f)
{
  g_autoptr(GString) s = g_string_new (NULL);
  g_autofree char *links = NULL, *jails = NULL, *vms = NULL, *kh = NULL;
  g_autoptr(BgCallResult) reg = bg_harness_call (f->h, NULL, "ListResources",
                                                 "({'all-users': <true>, 'kind': <'tap'>},)", NULL);
  g_autoptr(BgCallResult) reg_vm = bg_harness_call (f->h, NULL, "ListResources",
                                                    "({'all-users': <true>, 'kind': <'vm'>},)", NULL);
  g_autoptr(BgCallResult) reg_loop = bg_harness_call (f->h, NULL, "ListResources",
                                                      "({'all-users': <true>, 'kind': <'loop'>},)", NULL);
  g_autoptr(BgCallResult) reg_base = bg_harness_call (f->h, NULL, "ListResources",
                                                      "({'all-users': <true>, 'kind': <'base'>},)", NULL);
  g_autoptr(GDir) blocks = g_dir_open ("/sys/block", 0, NULL);
  const char *e;
  const char *ls[] = { "ip", "-o", "link", "show", NULL };

  bg_harness_run_argv (ls, &links, NULL);
  g_string_append_printf (s, "links:\n");
  {
    g_auto(GStrv) lines = g_strsplit (links, "\n", -1);
    /* A link's name and bridge, not its flags: a tap's carrier comes
     * and goes with the VMM holding it, which is not a change banger
     * made. */
    for (guint i = 0; lines[i]; i++)
      if (strstr (lines[i], ": bg-"))
        {
          const char *name = strstr (lines[i], "bg-"), *master = strstr (lines[i], " master ");
          g_string_append_printf (s, "  %.*s", (int) strcspn (name, ":"), name);
          if (master != NULL)
            g_string_append_printf (s, " master %.*s", (int) strcspn (master + 8, " "), master + 8);
          g_string_append_c (s, '\n');
        }
  }
  g_string_append_printf (s, "registry: %s %s %s %s\n", reg->reply, reg_vm->reply, reg_loop->reply,
                          reg_base->reply);
  while (blocks && (e = g_dir_read_name (blocks)))
    {
      g_autofree char *bf = g_strdup_printf ("/sys/block/%s/loop/backing_file", e);
      g_autofree char *backing = NULL;
      if (g_file_get_contents (bf, &backing, NULL, NULL) && strstr (backing, f->h->tmp))
        g_string_append_printf (s, "loop %s -> %s", e, backing);
    }
  for (guint j = 0; j < 2; j++)
    {
      g_autofree char *jdir = g_build_filename (j ? f->h->tmp : f->h->run_dir, j ? "state" : "jail",
                                                j ? "jail" : NULL, NULL);
      g_autoptr(GDir) d = g_dir_open (jdir, 0, NULL);
      while (d && (e = g_dir_read_name (d)))
        g_string_append_printf (s, "jail %s/%s\n", jdir, e);
    }
  {
    g_autofree char *vdir = g_build_filename (f->home, ".local", "state", "banger", "vms", NULL);
    g_autoptr(GDir) d = g_dir_open (vdir, 0, NULL);
    while (d && (e = g_dir_read_name (d)))
      if (*e != '.')
        g_string_append_printf (s, "vm dir %s\n", e);
  }
  {
    g_autofree char *path = g_build_filename (f->home, ".local", "state", "banger", "known_hosts", NULL);
    if (g_file_get_contents (path, &kh, NULL, NULL) && *kh)
      g_string_append_printf (s, "known_hosts: %s", kh);
  }
  {
    g_autofree char *hosts = g_build_filename (f->h->run_dir, "hosts", NULL);
    g_autofree char *text = NULL;
    if (g_file_get_contents (hosts, &text, NULL, NULL))
      {
        g_auto(GStrv) lines = g_strsplit (text, "\n", -1);
        for (guint i = 0; lines[i]; i++)
          if (*lines[i] && *lines[i] != '#')
            g_string_append_printf (s, "name %s\n", lines[i]);
      }
  }
  return g_string_free (g_steal_pointer (&s), FALSE);
}

static char *
fc (const char *socket, const char *cmd)
{
  const char *argv[] = { g_getenv ("BANGER_TEST_FC"), "--user=" BG_TEST_USER_A, socket, cmd, NULL };
  char *out = NULL;
  bg_harness_run_argv (argv, &out, NULL);
  return out;
}

static void
test_up_configures_the_vmm_and_rm_leaves_nothing (Fixture *f, gconstpointer data)
{
  g_autofree char *before = snapshot (f);
  g_autofree char *out = NULL, *err = NULL, *ls = NULL, *ls_err = NULL, *show = NULL, *show_err = NULL;
  g_autofree char *config = NULL, *hosts = NULL, *stop_out = NULL, *stop_err = NULL;
  g_autofree char *ls2 = NULL, *ls2_err = NULL, *rm_out = NULL, *rm_err = NULL, *after = NULL;
  g_autoptr(JsonNode) vm = NULL, list = NULL, list2 = NULL;
  JsonObject *o;
  const char *api, *tap, *mac, *address;

  if (bg_harness_cli (f->h, &out, &err, "vm", "up", "dev", "--no-wait", "--cpus", "2", "--memory", "512", "--json", NULL) != 0)
    g_error ("vm up failed: %s", err);
  vm = json (out);
  o = json_node_get_object (vm);
  g_assert_cmpstr (json_object_get_string_member (o, "state"), ==, "running");
  api = json_object_get_string_member (o, "api_socket");
  tap = json_object_get_string_member (o, "tap");
  mac = json_object_get_string_member (o, "mac");
  address = json_object_get_string_member (o, "address");

  /* The VMM received exactly what was asked. */
  config = fc (api, "config");
  g_assert_nonnull (strstr (config, "\"vcpu_count\":2"));
  g_assert_nonnull (strstr (config, "\"mem_size_mib\":512"));
  g_assert_nonnull (strstr (config, "\"kernel_image_path\":\"/vmlinux\""));
  g_assert_nonnull (strstr (config, "\"path_on_host\":\"/rootfs\""));
  g_assert_nonnull (strstr (config, "\"path_on_host\":\"/cidata\""));
  g_assert_nonnull (strstr (config, tap));
  g_assert_nonnull (strstr (config, mac));
  g_assert_nonnull (strstr (config, "\"uds_path\":\"/run/vsock.sock\""));
  g_assert_nonnull (strstr (fc (api, "get"), "Running"));

  /* State file, tap, disk, name. */
  {
    g_autofree char *dir = g_build_filename (f->home, ".local/state/banger/vms/dev", NULL);
    /* The test image is a plain ext4, imported layered. */
    g_autofree char *disk = g_build_filename (dir, "upper.img", NULL);
    g_autofree char *record = g_build_filename (dir, "vm.json", NULL);
    g_autofree char *link = g_strdup_printf ("/sys/class/net/%s", tap);
    g_autofree char *hosts_path = g_build_filename (f->h->run_dir, "hosts", NULL);
    g_autofree char *line = g_strdup_printf ("%s dev.banger", address);

    g_assert_true (g_file_test (disk, G_FILE_TEST_EXISTS));
    g_assert_true (g_file_test (record, G_FILE_TEST_EXISTS));
    g_assert_true (g_file_test (link, G_FILE_TEST_EXISTS));
    g_assert_true (g_file_get_contents (hosts_path, &hosts, NULL, NULL));
    g_assert_nonnull (strstr (hosts, line));
  }

  g_assert_cmpint (bg_harness_cli (f->h, &ls, &ls_err, "vm", "ls", "--json", NULL), ==, 0);
  list = json (ls);
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (json_node_get_array (list), 0),
                                                  "state"), ==, "running");

  /* Stop is Ctrl-Alt-Del through the API; the VMM exits on its own. */
  if (bg_harness_cli (f->h, &stop_out, &stop_err, "vm", "stop", "dev", "--verbose", NULL) != 0)
    g_error ("vm stop failed: %s", stop_err);
  g_assert_nonnull (strstr (stop_err, "dev shut down"));
  g_assert_cmpint (bg_harness_cli (f->h, &ls2, &ls2_err, "vm", "ls", "--json", NULL), ==, 0);
  list2 = json (ls2);
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (json_node_get_array (list2), 0),
                                                  "state"), ==, "stopped");

  if (bg_harness_cli (f->h, &rm_out, &rm_err, "vm", "rm", "dev", NULL) != 0)
    g_error ("vm rm failed: %s", rm_err);
  after = snapshot (f);
  g_assert_cmpstr (after, ==, before);
}

/* `vm up` makes its calls (CreateTap, LaunchVm) on one connection: the
 * mechanism asks the bus who that is once, not once a call. Counted by
 * the test hook in bg_call_start. */
static void
test_up_asks_the_bus_who_it_is_once (Fixture *f, gconstpointer data)
{
  g_autofree char *out = NULL, *err = NULL, *rm_out = NULL, *rm_err = NULL;

  bg_harness_count_start (f->h, "caller-asked");
  if (bg_harness_cli (f->h, &out, &err, "vm", "up", "once", "--no-wait", NULL) != 0)
    g_error ("vm up failed: %s", err);
  g_assert_cmpuint (bg_harness_count (f->h, "caller-asked"), ==, 1);
  if (bg_harness_cli (f->h, &rm_out, &rm_err, "vm", "rm", "once", "--force", NULL) != 0)
    g_error ("vm rm failed: %s", rm_err);
}

/* Whether @name's config drive holds @text (the drive is FAT, and a
 * small file's bytes lie in it as they are). */
static gboolean
drive_holds (Fixture *f, const char *name, const char *text)
{
  g_autofree char *path = g_build_filename (f->home, ".local/state/banger/vms", name, "cidata.img", NULL);
  g_autofree char *bytes = NULL;
  gsize len;

  g_assert_true (g_file_get_contents (path, &bytes, &len, NULL));
  return memmem (bytes, len, text, strlen (text)) != NULL;
}

static char *
up_address (Fixture *f, const char *user, const char *name, char **err)
{
  g_autofree char *out = NULL;
  g_autoptr(JsonNode) vm = NULL;

  if (bg_harness_run_cli (f->h, user, &out, err, "vm", "up", name, "--no-wait", "--json", NULL) != 0)
    g_error ("vm up %s failed: %s", name, *err);
  vm = json (out);
  return g_strdup (json_object_get_string_member (json_node_get_object (vm), "address"));
}

/* A VM after the first is launched in one privileged call: the CLI
 * guesses its network (the one it last learned, the lowest address no
 * VM of the user's holds) and LaunchVm makes the tap; the first VM
 * asks CreateTap. The guess is the address the VM gets, and its config
 * drive and pinned key say it. */
static void
test_up_second_vm_in_one_privileged_call (Fixture *f, gconstpointer data)
{
  g_autofree char *e1 = NULL, *e2 = NULL, *first = NULL, *second = NULL, *kh = NULL, *cidr = NULL;
  g_autofree char *kh_path = g_build_filename (f->home, ".local/state/banger/known_hosts", NULL);

  bg_harness_count_start (f->h, "polkit-asked");
  first = up_address (f, BG_TEST_USER_A, "first", &e1);
  g_assert_cmpuint (bg_harness_count (f->h, "polkit-asked"), ==, 2);
  g_assert_cmpint (bg_harness_cli (f->h, NULL, NULL, "vm", "rm", "first", "--force", NULL), ==, 0);

  bg_harness_count_start (f->h, "polkit-asked");
  second = up_address (f, BG_TEST_USER_A, "second", &e2);
  g_assert_cmpuint (bg_harness_count (f->h, "polkit-asked"), ==, 1);
  /* The lowest free address again, as the mechanism gives it. */
  g_assert_cmpstr (second, ==, first);
  cidr = g_strdup_printf ("%s/", second);
  g_assert_true (drive_holds (f, "second", cidr));
  g_assert_true (g_file_get_contents (kh_path, &kh, NULL, NULL));
  g_assert_nonnull (strstr (kh, second));
  g_assert_cmpint (bg_harness_cli (f->h, NULL, NULL, "vm", "rm", "second", "--force", NULL), ==, 0);
}

/* A wrong guess (another user's VM holds the address the CLI guessed)
 * costs a second launch, never a VM that believes the wrong address: the
 * config drive and the pinned key follow the address the mechanism gave,
 * and nothing warns about a change the user never saw. */
static void
test_up_wrong_guess_follows_the_real_network (Fixture *f, gconstpointer data)
{
  g_autofree char *e1 = NULL, *e2 = NULL, *e3 = NULL, *first = NULL, *theirs = NULL, *mine = NULL;
  g_autofree char *kh = NULL, *guessed = NULL, *got = NULL;
  g_autofree char *kh_path = g_build_filename (f->home, ".local/state/banger/known_hosts", NULL);

  bg_harness_import_test_image (f->h, BG_TEST_USER_B);
  first = up_address (f, BG_TEST_USER_A, "first", &e1);
  g_assert_cmpint (bg_harness_cli (f->h, NULL, NULL, "vm", "rm", "first", "--force", NULL), ==, 0);
  theirs = up_address (f, BG_TEST_USER_B, "theirs", &e2);
  g_assert_cmpstr (theirs, ==, first);

  mine = up_address (f, BG_TEST_USER_A, "mine", &e3);
  g_assert_cmpstr (mine, !=, theirs);
  g_assert_null (strstr (e3, "changed"));
  guessed = g_strdup_printf ("%s/", theirs);
  got = g_strdup_printf ("%s/", mine);
  g_assert_true (drive_holds (f, "mine", got));
  g_assert_false (drive_holds (f, "mine", guessed));
  g_assert_true (g_file_get_contents (kh_path, &kh, NULL, NULL));
  g_assert_nonnull (strstr (kh, mine));
  g_assert_null (strstr (kh, theirs));

  g_assert_cmpint (bg_harness_cli (f->h, NULL, NULL, "vm", "rm", "mine", "--force", NULL), ==, 0);
  g_assert_cmpint (bg_harness_run_cli (f->h, BG_TEST_USER_B, NULL, NULL, "vm", "rm", "theirs", "--force", NULL), ==, 0);
}

/* An image with an initrd: the VMM is told the jail's /initrd, which
 * the mechanism reports from the launch itself (the jail's root exists
 * only in the VMM's own mount namespace, so it cannot be looked up). */
static void
test_up_with_an_initrd (Fixture *f, gconstpointer data)
{
  struct passwd *pw = getpwnam (BG_TEST_USER_A);
  g_autofree char *initrd = g_build_filename (f->home, "initrd.img", NULL);
  g_autofree char *o = NULL, *e = NULL, *out = NULL, *err = NULL, *config = NULL;
  g_autoptr(JsonNode) vm = NULL;

  g_assert_true (g_file_set_contents (initrd, "an initrd the test VMM never unpacks", -1, NULL));
  g_assert_no_errno (chown (initrd, pw->pw_uid, pw->pw_gid));
  if (bg_harness_cli (f->h, &o, &e, "image", "import", "withinitrd", "--kernel", "vmlinux", "--rootfs", "rootfs.ext4",
           "--initrd", "initrd.img", NULL) != 0)
    g_error ("image import: %s", e);
  if (bg_harness_cli (f->h, &out, &err, "vm", "up", "ird", "--image", "withinitrd", "--no-wait", "--json", NULL) != 0)
    g_error ("vm up with an initrd: %s", err);
  vm = json (out);
  config = fc (json_object_get_string_member (json_node_get_object (vm), "api_socket"), "config");
  g_assert_nonnull (strstr (config, "\"initrd_path\":\"/initrd\""));
  g_assert_cmpint (bg_harness_cli (f->h, NULL, NULL, "vm", "rm", "-f", "ird", NULL), ==, 0);
}

static void
test_up_again_restarts_with_same_address (Fixture *f, gconstpointer data)
{
  g_autofree char *o1 = NULL, *e1 = NULL, *o2 = NULL, *e2 = NULL, *o3 = NULL, *e3 = NULL;
  g_autofree char *o4 = NULL, *e4 = NULL, *o5 = NULL, *e5 = NULL;
  g_autoptr(JsonNode) a = NULL, b = NULL;

  g_assert_cmpint (bg_harness_cli (f->h, &o1, &e1, "vm", "up", "again", "--no-wait", "--json", NULL), ==, 0);
  a = json (o1);
  /* On a running VM: the summary, exit 0. */
  g_assert_cmpint (bg_harness_cli (f->h, &o2, &e2, "vm", "up", "again", "--no-wait", NULL), ==, 0);
  g_assert_nonnull (strstr (o2, "VM again is"));
  g_assert_cmpint (bg_harness_cli (f->h, &o3, &e3, "vm", "stop", "again", NULL), ==, 0);
  g_assert_cmpint (bg_harness_cli (f->h, &o4, &e4, "vm", "up", "again", "--no-wait", "--json", NULL), ==, 0);
  b = json (o4);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (a), "address"), ==,
                   json_object_get_string_member (json_node_get_object (b), "address"));
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (a), "mac"), ==,
                   json_object_get_string_member (json_node_get_object (b), "mac"));
  g_assert_cmpint (bg_harness_cli (f->h, &o5, &e5, "vm", "rm", "again", "--force", NULL), ==, 0);
}

static void
test_parallel_ups_get_distinct_resources (Fixture *f, gconstpointer data)
{
  GPid pids[16];
  int errs[16];
  g_autofree char *ls = NULL, *err = NULL;
  g_autoptr(JsonNode) list = NULL;
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autofree char *kh_path = g_build_filename (f->home, ".local/state/banger/known_hosts", NULL);
  g_autofree char *kh = NULL;
  JsonArray *a;

  /* A VM first, so that all 16 guess their network, and the same one:
   * all but one guess wrong, and none may lose its pin to another's. */
  g_assert_cmpint (bg_harness_cli (f->h, NULL, NULL, "vm", "up", "seed", "--no-wait", NULL), ==, 0);
  g_assert_cmpint (bg_harness_cli (f->h, NULL, NULL, "vm", "rm", "seed", "--force", NULL), ==, 0);
  for (int i = 0; i < 16; i++)
    {
      g_autofree char *name = g_strdup_printf ("p%d", i);
      const char *args[] = { "vm", "up", name, "--no-wait", NULL };
      g_auto(GStrv) argv = bg_harness_cli_argv (BG_TEST_USER_A, args);
      g_auto(GStrv) envp = bg_harness_cli_envp (f->h, f->home, f->home);
      g_autoptr(GError) error = NULL;

      g_assert_true (g_spawn_async_with_pipes (f->home, argv, envp,
                                               G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD |
                                               G_SPAWN_STDOUT_TO_DEV_NULL,
                                               NULL, NULL, &pids[i], NULL, NULL, &errs[i], &error));
    }
  for (int i = 0; i < 16; i++)
    {
      char msg[8192] = { 0 };
      gsize used = 0;
      ssize_t n;
      int status;

      /* Drain stderr before reaping, so a full pipe cannot block it. */
      while (used < sizeof msg - 1 && (n = read (errs[i], msg + used, sizeof msg - 1 - used)) > 0)
        used += n;
      close (errs[i]);
      g_assert_cmpint (waitpid (pids[i], &status, 0), ==, pids[i]);
      if (bg_test_exit_code (status) != 0)
        g_error ("vm up p%d failed (%d): %s [%zu bytes]", i, status, msg, used);
    }

  g_assert_cmpint (bg_harness_cli (f->h, &ls, &err, "vm", "ls", "--json", NULL), ==, 0);
  list = json (ls);
  a = json_node_get_array (list);
  g_assert_cmpuint (json_array_get_length (a), ==, 16);
  g_assert_true (g_file_get_contents (kh_path, &kh, NULL, NULL));
  for (guint i = 0; i < 16; i++)
    {
      JsonObject *o = json_array_get_object_element (a, i);
      const char *keys[] = { "address", "tap", "mac", "name" };
      g_autofree char *pin = g_strdup_printf ("%s.%s,%s ", json_object_get_string_member (o, "name"),
                                              json_object_get_string_member (o, "domain"),
                                              json_object_get_string_member (o, "address"));

      /* Every VM keeps its pin, at its own address. */
      if (strstr (kh, pin) == NULL)
        g_error ("no pin \"%s\" in known_hosts:\n%s", pin, kh);

      g_assert_cmpstr (json_object_get_string_member (o, "state"), ==, "running");
      for (guint k = 0; k < G_N_ELEMENTS (keys); k++)
        {
          g_autofree char *key = g_strdup_printf ("%s=%s", keys[k], json_object_get_string_member (o, keys[k]));
          g_assert_false (g_hash_table_contains (seen, key));
          g_hash_table_add (seen, g_steal_pointer (&key));
        }
      {
        g_autofree char *cid = g_strdup_printf ("cid=%" G_GINT64_FORMAT, json_object_get_int_member (o, "cid"));
        g_assert_false (g_hash_table_contains (seen, cid));
        g_hash_table_add (seen, g_steal_pointer (&cid));
      }
    }
  for (int i = 0; i < 16; i++)
    {
      g_autofree char *name = g_strdup_printf ("p%d", i);
      g_autofree char *o = NULL, *e = NULL;
      g_assert_cmpint (bg_harness_cli (f->h, &o, &e, "vm", "rm", name, "--force", NULL), ==, 0);
    }
}

/* A guessed VM's key is pinned by a thread while the VMM is configured
 * and started. When the pin fails (here known_hosts is a directory, which
 * no rename can replace), vm up fails with the pin's error: the VM is
 * never recorded running, and the rollback leaves nothing. */
static void
test_up_guessed_pin_failure_leaves_nothing (Fixture *f, gconstpointer data)
{
  struct passwd *pw = getpwnam (BG_TEST_USER_A);
  g_autofree char *kh_path = g_build_filename (f->home, ".local/state/banger/known_hosts", NULL);
  g_autofree char *before = NULL, *after = NULL, *o = NULL, *e = NULL, *ls = NULL, *ls_err = NULL;

  /* A VM first, so that the next one guesses its network. */
  g_assert_cmpint (bg_harness_cli (f->h, NULL, NULL, "vm", "up", "once", "--no-wait", NULL), ==, 0);
  g_assert_cmpint (bg_harness_cli (f->h, NULL, NULL, "vm", "rm", "once", "--force", NULL), ==, 0);
  if (g_unlink (kh_path) < 0)
    g_assert_cmpint (errno, ==, ENOENT);
  g_assert_no_errno (g_mkdir (kh_path, 0700));
  g_assert_no_errno (chown (kh_path, pw->pw_uid, pw->pw_gid));
  before = snapshot (f);

  g_assert_cmpint (bg_harness_cli (f->h, &o, &e, "vm", "up", "unpinned", "--no-wait", NULL), ==, 1);
  g_test_message ("vm up, its pin failing: %s", e);
  g_assert_nonnull (strstr (e, "everything this run created was removed"));
  g_assert_nonnull (strstr (e, "known_hosts"));
  g_assert_cmpint (bg_harness_cli (f->h, &ls, &ls_err, "vm", "ls", "--json", NULL), ==, 0);
  g_assert_cmpstr (g_strstrip (ls), ==, "[]");
  after = snapshot (f);
  g_assert_cmpstr (after, ==, before);
}

/* vm up opens the crypto module ahead, in a thread; the key it then
 * makes waits for that and reports its failure. Without the module, vm
 * up names the file, and the rollback leaves nothing; with it, the next
 * vm up works. */
static void
test_up_without_the_crypto_module_leaves_nothing (Fixture *f, gconstpointer data)
{
  const char *args[] = { "vm", "up", "nocrypto", "--no-wait", NULL };
  g_auto(GStrv) argv = bg_harness_cli_argv (BG_TEST_USER_A, args);
  g_auto(GStrv) envp = NULL;
  g_autofree char *empty = g_build_filename (f->h->tmp, "no-modules", NULL);
  g_autofree char *before = NULL, *after = NULL, *o = NULL, *e = NULL, *ls = NULL, *ls_err = NULL;
  g_autofree char *expected = NULL;
  g_autoptr(GError) error = NULL;
  int status;

  /* The home exists, as bg_harness_cli makes it. */
  g_assert_cmpint (bg_harness_cli (f->h, &ls, &ls_err, "vm", "ls", NULL), ==, 0);
  g_assert_no_errno (g_mkdir (empty, 0755));
  before = snapshot (f);

  envp = bg_harness_cli_envp (f->h, f->home, f->home);
  envp = g_environ_setenv (envp, "BANGER_MODULE_DIR", empty, TRUE);
  g_assert_true (g_spawn_sync (f->home, argv, envp, G_SPAWN_SEARCH_PATH, NULL, NULL, &o, &e, &status, &error));
  g_assert_no_error (error);
  g_test_message ("vm up without the crypto module: %s", e);
  g_assert_true (WIFEXITED (status));
  g_assert_cmpint (WEXITSTATUS (status), ==, 1);
  expected = g_strdup_printf ("banger's crypto module is missing: %s/banger-crypto.so (reinstall banger", empty);
  g_assert_nonnull (strstr (e, expected));
  g_clear_pointer (&ls, g_free);
  g_clear_pointer (&ls_err, g_free);
  g_assert_cmpint (bg_harness_cli (f->h, &ls, &ls_err, "vm", "ls", "--json", NULL), ==, 0);
  g_assert_cmpstr (g_strstrip (ls), ==, "[]");
  after = snapshot (f);
  g_assert_cmpstr (after, ==, before);

  g_assert_cmpint (bg_harness_cli (f->h, NULL, NULL, "vm", "up", "nocrypto", "--no-wait", NULL), ==, 0);
  g_assert_cmpint (bg_harness_cli (f->h, NULL, NULL, "vm", "rm", "nocrypto", "--force", NULL), ==, 0);
}

/* `vm up NAME --no-wait` as user A, stopped by the test hook at @step
 * and SIGKILLed there, as a crash would end it. */
static void
kill_up_at (Fixture *f, const char *name, const char *step)
{
  const char *args[] = { "vm", "up", name, "--no-wait", NULL };
  g_auto(GStrv) argv = bg_harness_cli_argv (BG_TEST_USER_A, args);
  g_auto(GStrv) envp = bg_harness_cli_envp (f->h, f->home, f->home);
  g_autoptr(GError) error = NULL;
  GPid pid;
  int status;

  envp = g_environ_setenv (envp, "BANGER_TEST_PAUSE_AT", step, TRUE);
  g_assert_true (g_spawn_async (f->home, argv, envp,
                                G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL |
                                G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &pid, &error));
  /* Wait until it stops itself at the step, then kill it there. */
  g_assert_cmpint (waitpid (pid, &status, WUNTRACED), ==, pid);
  if (!WIFSTOPPED (status))
    g_error ("vm up did not reach step %s (status %d)", step, status);
  kill (pid, SIGKILL);
  waitpid (pid, &status, 0);
}

static void
test_killed_at_any_step_cleanup_leaves_nothing (Fixture *f, gconstpointer data)
{
  /* "pinned": the host key just pinned; for a guessed network, by the
   * thread that pins it while the main one configures the VMM. */
  const char *steps[] = { "tap", "disk", "keys", "launch", "launched", "pinned",
                          "configure", "start", "saved" };
  g_autofree char *before = snapshot (f);

  if (g_getenv ("BANGER_TEST_HOOKS") == NULL)
    {
      g_test_skip ("built without -Dtest_hooks=true: the CLI cannot be paused at a step");
      return;
    }
  /* Twice: the first VM (CreateTap, then LaunchVm), then, once a VM has
   * run, with the network guessed (LaunchVm alone: no "tap" step). */
  for (guint i = 0; i < 2 * G_N_ELEMENTS (steps); i++)
    {
      g_autofree char *name = g_strdup_printf ("k%u", i);
      g_autofree char *o = NULL, *e = NULL, *after = NULL;

      const char *step = steps[i % G_N_ELEMENTS (steps)];
      gboolean guessed = i >= G_N_ELEMENTS (steps);

      if (i == G_N_ELEMENTS (steps))
        {
          g_assert_cmpint (bg_harness_cli (f->h, NULL, NULL, "vm", "up", "once", "--no-wait", NULL), ==, 0);
          g_assert_cmpint (bg_harness_cli (f->h, NULL, NULL, "vm", "rm", "once", "--force", NULL), ==, 0);
        }
      if (guessed && g_str_equal (step, "tap"))
        continue;
      kill_up_at (f, name, step);
      if (bg_harness_cli (f->h, &o, &e, "system", "cleanup", NULL) != 0)
        g_error ("cleanup after a kill at %s failed: %s", step, e);
      /* A VM killed after it was saved is a VM, not a leftover: rm it. */
      if (g_str_equal (step, "saved"))
        {
          g_autofree char *o2 = NULL, *e2 = NULL;
          g_assert_cmpint (bg_harness_cli (f->h, &o2, &e2, "vm", "rm", name, "--force", NULL), ==, 0);
        }
      after = snapshot (f);
      if (g_strcmp0 (after, before) != 0)
        g_error ("killed at %s%s, cleanup left:\n%s\nexpected:\n%s", step, guessed ? " (guessed)" : "",
                 after, before);
    }
}

/* The kinds in `system cleanup --json`'s array, as "kind name" lines,
 * each entry's "removed" checked to be @removed. */
static char *
cleanup_kinds (const char *out, gboolean removed)
{
  g_autoptr(JsonNode) root = json (out);
  g_autoptr(GString) s = g_string_new (NULL);
  JsonArray *a;

  g_assert_true (JSON_NODE_HOLDS_ARRAY (root));
  a = json_node_get_array (root);
  for (guint i = 0; i < json_array_get_length (a); i++)
    {
      JsonObject *o = json_array_get_object_element (a, i);
      g_assert_cmpint (json_object_get_boolean_member (o, "removed"), ==, removed);
      g_assert_cmpstr (json_object_get_string_member (o, "why"), !=, "");
      g_string_append_printf (s, "%s %s uid %" G_GINT64_FORMAT "\n", json_object_get_string_member (o, "kind"),
                              json_object_get_string_member (o, "name"), json_object_get_int_member (o, "owner"));
    }
  return g_string_free (g_steal_pointer (&s), FALSE);
}

/* A power loss during `vm up`, before the record that says the VM runs:
 * the first record, written unsynced, may be left empty or as NUL bytes
 * (the file's length, its data never written), from before the boot.
 * Simulated on a `vm up` killed while configuring (the mechanism's side,
 * which a reboot would have taken, is still there: cleanup takes it as
 * well). `system cleanup` finds the directory by its record and leaves
 * nothing; an empty record of this boot (someone's doing, not a power
 * loss) it leaves alone, and a VM that runs keeps its directory. */
static void
test_record_cut_short_is_cleaned_up (Fixture *f, gconstpointer data)
{
  g_autofree char *before = snapshot (f);
  g_autofree char *keep_dir = g_build_filename (f->home, ".local/state/banger/vms", "keep", NULL);
  g_autofree char *ko = NULL, *ke = NULL;

  if (g_getenv ("BANGER_TEST_HOOKS") == NULL)
    {
      g_test_skip ("built without -Dtest_hooks=true: the CLI cannot be paused at a step");
      return;
    }
  g_assert_cmpint (bg_harness_cli (f->h, &ko, &ke, "vm", "up", "keep", "--no-wait", NULL), ==, 0);
  for (guint zeros = 0; zeros <= 339; zeros += 339)
    {
      g_autofree char *name = g_strdup_printf ("cut%u", zeros);
      g_autofree char *dir = g_build_filename (f->home, ".local/state/banger/vms", name, NULL);
      g_autofree char *record = g_build_filename (dir, "vm.json", NULL);
      g_autofree char *o = NULL, *e = NULL, *o1 = NULL, *e1 = NULL, *o2 = NULL, *e2 = NULL;
      g_autofree char *kinds = NULL, *listed = NULL;
      int fd;

      kill_up_at (f, name, "configure");
      /* In place, so the file stays the user's, as the kernel would
       * leave it: truncated, then @zeros NUL bytes. */
      fd = open (record, O_WRONLY | O_TRUNC | O_CLOEXEC);
      g_assert_cmpint (fd, >=, 0);
      g_assert_cmpint (ftruncate (fd, zeros), ==, 0);
      close (fd);

      /* Said as what it is to whoever reads it. */
      g_assert_cmpint (bg_harness_cli (f->h, &o2, &e2, "vm", "up", name, "--no-wait", NULL), !=, 0);
      g_assert_nonnull (strstr (e2, "never reached the disk whole"));

      /* Of this boot: not a power loss's, so not cleanup's to take. */
      listed = g_strdup_printf ("directory %s ", name);
      if (bg_harness_cli (f->h, &o1, &e1, "system", "cleanup", "--dry-run", NULL) != 0)
        g_error ("cleanup --dry-run: %s", e1);
      if (strstr (o1, listed) != NULL)
        g_error ("cleanup would take the directory of %s, whose record is of this boot:\n%s", name, o1);
      g_assert_true (g_file_test (dir, G_FILE_TEST_IS_DIR));

      bg_test_written_before_boot (record);
      if (bg_harness_cli (f->h, &o, &e, "system", "cleanup", "--json", NULL) != 0)
        g_error ("cleanup after a record cut short failed: %s", e);
      kinds = cleanup_kinds (o, TRUE);
      if (strstr (kinds, listed) == NULL)
        g_error ("cleanup did not take the directory of %s:\n%s", name, kinds);
      g_assert_false (g_file_test (dir, G_FILE_TEST_EXISTS));
      g_assert_true (g_file_test (keep_dir, G_FILE_TEST_IS_DIR));
    }
  {
    g_autofree char *o = NULL, *e = NULL, *after = NULL;

    g_assert_cmpint (bg_harness_cli (f->h, &o, &e, "vm", "rm", "keep", "--force", NULL), ==, 0);
    after = snapshot (f);
    if (g_strcmp0 (after, before) != 0)
      g_error ("records cut short; cleanup left:\n%s\nexpected:\n%s", after, before);
  }
}

/* What a `vm up` killed with its VMM running leaves: `system cleanup
 * --dry-run` lists all of it (the half-made VM and what the mechanism
 * holds for it), as text and as JSON, and changes nothing; the real
 * cleanup then removes exactly that. */
static void
test_cleanup_dry_run_lists_and_changes_nothing (Fixture *f, gconstpointer data)
{
  g_autofree char *before = snapshot (f);
  g_autofree char *crashed = NULL, *after = NULL;
  g_autofree char *o1 = NULL, *e1 = NULL, *o2 = NULL, *e2 = NULL, *o3 = NULL, *e3 = NULL, *o4 = NULL, *e4 = NULL;
  g_autofree char *dry_kinds = NULL, *done_kinds = NULL, *half_made = NULL;
  guint32 uid = bg_harness_uid (BG_TEST_USER_A);

  if (g_getenv ("BANGER_TEST_HOOKS") == NULL)
    {
      g_test_skip ("built without -Dtest_hooks=true: the CLI cannot be paused at a step");
      return;
    }
  kill_up_at (f, "dry", "configure");
  crashed = snapshot (f);
  g_assert_cmpstr (crashed, !=, before);

  if (bg_harness_cli (f->h, &o1, &e1, "system", "cleanup", "--dry-run", NULL) != 0)
    g_error ("cleanup --dry-run: %s", e1);
  g_test_message ("cleanup --dry-run:\n%s", o1);
  half_made = g_strdup_printf ("would remove half-made vm dry of uid %u (left by an interrupted 'vm up')\n", uid);
  g_assert_nonnull (strstr (o1, half_made));
  g_assert_nonnull (strstr (o1, "would remove tap "));
  g_assert_nonnull (strstr (o1, "would remove vm "));
  g_assert_false (g_str_has_prefix (o1, "removed") || strstr (o1, "\nremoved"));
  after = snapshot (f);
  g_assert_cmpstr (after, ==, crashed);
  g_clear_pointer (&after, g_free);

  if (bg_harness_cli (f->h, &o2, &e2, "system", "cleanup", "--dry-run", "--json", NULL) != 0)
    g_error ("cleanup --dry-run --json: %s", e2);
  dry_kinds = cleanup_kinds (o2, FALSE);
  g_test_message ("cleanup --dry-run --json:\n%s", dry_kinds);
  after = snapshot (f);
  g_assert_cmpstr (after, ==, crashed);
  g_clear_pointer (&after, g_free);

  /* The real one: the half-made VM first, whose removal takes its tap;
   * then what the mechanism still holds (its VMM). Everything it reports
   * the dry run listed, and nothing is left. */
  if (bg_harness_cli (f->h, &o3, &e3, "system", "cleanup", "--json", NULL) != 0)
    g_error ("cleanup --json: %s", e3);
  done_kinds = cleanup_kinds (o3, TRUE);
  g_test_message ("cleanup --json:\n%s", done_kinds);
  g_assert_true (g_str_has_prefix (done_kinds, "half-made vm dry "));
  {
    g_auto(GStrv) lines = g_strsplit (done_kinds, "\n", -1);
    for (guint i = 0; lines[i]; i++)
      if (*lines[i] && strstr (dry_kinds, lines[i]) == NULL)
        g_error ("cleanup removed \"%s\", which the dry run did not list:\n%s", lines[i], dry_kinds);
  }
  after = snapshot (f);
  g_assert_cmpstr (after, ==, before);

  g_assert_cmpint (bg_harness_cli (f->h, &o4, &e4, "system", "cleanup", NULL), ==, 0);
  g_assert_cmpstr (o4, ==, "Nothing to clean up.\n");
}

/* Another user's leftovers: A's `vm up` killed with its VMM running, and
 * a loop device A attached and never detached (its client died). User
 * B's `--all-users` is refused by polkit (org.banger.admin: the group
 * rule grants only users' own actions), saying what to do, and B's own
 * cleanup touches nothing of A's. Root's takes A's loop device and
 * leaves A's VMM and tap, which only A's records can judge; A's own
 * cleanup then removes the rest. */
static void
test_cleanup_all_users_needs_an_administrator (Fixture *f, gconstpointer data)
{
  /* Not a struct passwd: the next getpwnam() (B's, in the harness)
   * would overwrite it. */
  guint32 uid = bg_harness_uid (BG_TEST_USER_A);
  g_autofree char *before = snapshot (f);
  g_autofree char *backing = g_build_filename (f->home, "leaked.img", NULL);
  g_autofree char *fd_arg = g_strdup_printf ("--fd=%s:rw", backing);
  g_autofree char *crashed = NULL, *after = NULL, *loop = NULL, *kinds = NULL, *want = NULL;
  g_autofree char *o1 = NULL, *e1 = NULL, *o2 = NULL, *e2 = NULL, *o3 = NULL, *e3 = NULL, *o4 = NULL, *e4 = NULL;
  g_autofree char *o5 = NULL, *e5 = NULL;
  g_autoptr(BgCallResult) attached = NULL;
  g_auto(GStrv) parts = NULL;

  if (g_getenv ("BANGER_TEST_HOOKS") == NULL)
    {
      g_test_skip ("built without -Dtest_hooks=true: the CLI cannot be paused at a step");
      return;
    }
  g_assert_true (g_file_set_contents (backing, "", 0, NULL));
  g_assert_no_errno (truncate (backing, 1 << 20));
  g_assert_no_errno (chown (backing, uid, getpwnam (BG_TEST_USER_A)->pw_gid));
  attached = bg_harness_call (f->h, BG_TEST_USER_A, "AttachLoop", "(@h 0, false)", fd_arg, NULL);
  bg_assert_call_ok (attached);
  parts = g_strsplit (attached->reply, "'", -1);
  loop = g_path_get_basename (parts[1]);
  kill_up_at (f, "theirs", "configure");
  crashed = snapshot (f);
  g_assert_nonnull (strstr (crashed, loop));

  g_assert_cmpint (bg_harness_run_cli (f->h, BG_TEST_USER_B, &o1, &e1, "system", "cleanup", "--all-users", NULL),
                   ==, 1);
  g_test_message ("B's --all-users: %s", e1);
  g_assert_nonnull (strstr (e1, "not authorized: polkit refused org.banger.admin"));
  g_assert_nonnull (strstr (e1, "run the command as root or ask an administrator to"));
  g_assert_cmpint (bg_harness_run_cli (f->h, BG_TEST_USER_B, &o2, &e2, "system", "cleanup", NULL), ==, 0);
  g_assert_cmpstr (o2, ==, "Nothing to clean up.\n");
  after = snapshot (f);
  g_assert_cmpstr (after, ==, crashed);
  g_clear_pointer (&after, g_free);

  g_assert_cmpint (bg_harness_run_cli (f->h, NULL, &o3, &e3, "--json", "system", "cleanup", "--all-users",
                                       "--dry-run", NULL), ==, 0);
  kinds = cleanup_kinds (o3, FALSE);
  g_test_message ("root's --all-users --dry-run:\n%s", kinds);
  want = g_strdup_printf ("loop %s uid %u\n", loop, uid);
  g_assert_cmpstr (kinds, ==, want);
  after = snapshot (f);
  g_assert_cmpstr (after, ==, crashed);
  g_clear_pointer (&after, g_free);

  if (bg_harness_run_cli (f->h, NULL, &o4, &e4, "system", "cleanup", "--all-users", NULL) != 0)
    g_error ("root's cleanup --all-users: %s", e4);
  g_assert_nonnull (strstr (o4, "removed loop "));
  after = snapshot (f);
  g_assert_null (strstr (after, loop));
  {
    g_autofree char *vmm = g_strdup_printf ("'u%u-theirs'", uid);
    g_assert_nonnull (strstr (after, vmm));
    g_assert_nonnull (strstr (after, "vm dir theirs\n"));
  }
  g_clear_pointer (&after, g_free);

  if (bg_harness_cli (f->h, &o5, &e5, "system", "cleanup", NULL) != 0)
    g_error ("A's cleanup: %s", e5);
  after = snapshot (f);
  g_assert_cmpstr (after, ==, before);
}

static void
test_mechanism_killed_mid_launch_leaves_nothing (Fixture *f, gconstpointer data)
{
  g_autofree char *before = snapshot (f);
  g_autofree char *o = NULL, *e = NULL, *o2 = NULL, *e2 = NULL, *after = NULL;
  g_autofree char *crash = g_build_filename (f->h->run_dir, "crash-at", NULL);

  if (g_getenv ("BANGER_TEST_HOOKS") == NULL)
    {
      g_test_skip ("built without -Dtest_hooks=true: the mechanism cannot be told where to crash");
      return;
    }
  g_assert_true (g_file_set_contents (crash, "launch-spawned", -1, NULL));
  g_assert_cmpint (bg_harness_cli (f->h, &o, &e, "vm", "up", "victim", "--no-wait", NULL), ==, 1);
  g_assert_nonnull (strstr (e, "everything this run created was removed"));
  g_assert_cmpint (bg_harness_cli (f->h, &o2, &e2, "system", "cleanup", NULL), ==, 0);
  after = snapshot (f);
  g_assert_cmpstr (after, ==, before);
}

static void
test_mechanism_gone_between_calls_is_activated_again (Fixture *f, gconstpointer data)
{
  const char *args[] = { "vm", "up", "between", "--no-wait", NULL };
  g_auto(GStrv) argv = bg_harness_cli_argv (BG_TEST_USER_A, args);
  g_auto(GStrv) envp = bg_harness_cli_envp (f->h, f->home, f->home);
  g_autoptr(GError) error = NULL;
  g_autofree char *before = snapshot (f);
  g_autofree char *o = NULL, *e = NULL, *after = NULL;
  GPid pid, mech;
  int status;

  if (g_getenv ("BANGER_TEST_HOOKS") == NULL)
    {
      g_test_skip ("built without -Dtest_hooks=true: the CLI cannot be paused at a step");
      return;
    }
  /* The instance that answered CreateTap exits (as it does when idle
   * through a long disk copy) before LaunchVm: the CLI's proxy still
   * names it, and the call must reach a fresh one instead of failing. */
  envp = g_environ_setenv (envp, "BANGER_TEST_PAUSE_AT", "launch", TRUE);
  g_assert_true (g_spawn_async (f->home, argv, envp, G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD |
                                G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, &pid, &error));
  g_assert_cmpint (waitpid (pid, &status, WUNTRACED), ==, pid);
  g_assert_true (WIFSTOPPED (status));
  mech = bg_harness_mechanism_pid (f->h);
  g_assert_cmpint (mech, >, 0);
  kill (mech, SIGTERM);
  g_assert_true (bg_harness_wait_name_gone (f->h, 20));
  kill (pid, SIGCONT);
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  bg_assert_exited (status, 0);

  g_assert_cmpint (bg_harness_cli (f->h, &o, &e, "vm", "rm", "between", "--force", NULL), ==, 0);
  after = snapshot (f);
  g_assert_cmpstr (after, ==, before);
}

/* `vm restart`: a new VMM (another process), the same VM (its disk,
 * not remade, its address, MAC, name and tap), running; refused, saying
 * what to run, for a stopped VM and an unknown one. */
static void
test_restart_makes_a_new_vmm_for_the_same_vm (Fixture *f, gconstpointer data)
{
  static const char marker[] = "written by the test before the restart";
  g_autofree char *o1 = NULL, *e1 = NULL, *o2 = NULL, *e2 = NULL, *o3 = NULL, *e3 = NULL, *o4 = NULL, *e4 = NULL;
  g_autofree char *o5 = NULL, *e5 = NULL, *o6 = NULL, *e6 = NULL, *o7 = NULL, *e7 = NULL;
  /* The test image is a plain ext4, imported layered: the VM's own disk
   * is its upper disk (sparse, so read back only where written). */
  g_autofree char *disk = g_build_filename (f->home, ".local/state/banger/vms/rs/upper.img", NULL);
  g_autofree char *hosts_path = g_build_filename (f->h->run_dir, "hosts", NULL);
  g_autofree char *old_proc = NULL, *new_proc = NULL, *hosts = NULL, *line = NULL;
  char read_back[sizeof marker];
  g_autoptr(JsonNode) a = NULL, b = NULL, shown = NULL;
  JsonObject *oa, *ob;
  struct stat before, after;
  gint64 pid_a, pid_b;
  int fd;

  if (bg_harness_cli (f->h, &o1, &e1, "vm", "up", "rs", "--no-wait", "--json", NULL) != 0)
    g_error ("vm up: %s", e1);
  a = json (o1);
  oa = json_node_get_object (a);
  pid_a = json_object_get_int_member (oa, "pid");
  g_assert_cmpint (pid_a, >, 1);
  old_proc = g_strdup_printf ("/proc/%" G_GINT64_FORMAT, pid_a);
  g_assert_true (g_file_test (old_proc, G_FILE_TEST_EXISTS));

  /* The disk: its inode, and bytes in ext4's unused boot block. */
  g_assert_no_errno (stat (disk, &before));
  fd = open (disk, O_WRONLY);
  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (pwrite (fd, marker, sizeof marker, 0), ==, sizeof marker);
  close (fd);

  if (bg_harness_cli (f->h, &o2, &e2, "vm", "restart", "rs", "--no-wait", "--json", NULL) != 0)
    g_error ("vm restart: %s", e2);
  b = json (o2);
  ob = json_node_get_object (b);
  pid_b = json_object_get_int_member (ob, "pid");
  g_assert_cmpint (pid_b, >, 1);
  g_assert_cmpint (pid_b, !=, pid_a);
  /* The old VMM is gone (shut down, then reaped by the mechanism), the
   * new one runs. */
  g_assert_false (g_file_test (old_proc, G_FILE_TEST_EXISTS));
  new_proc = g_strdup_printf ("/proc/%" G_GINT64_FORMAT, pid_b);
  g_assert_true (g_file_test (new_proc, G_FILE_TEST_EXISTS));
  g_assert_cmpstr (json_object_get_string_member (ob, "state"), ==, "running");
  g_assert_cmpstr (json_object_get_string_member (ob, "name"), ==, "rs");
  {
    const char *same[] = { "address", "mac", "tap", "image" };
    for (guint i = 0; i < G_N_ELEMENTS (same); i++)
      g_assert_cmpstr (json_object_get_string_member (ob, same[i]), ==, json_object_get_string_member (oa, same[i]));
  }
  g_assert_cmpint (json_object_get_int_member (ob, "cid"), ==, json_object_get_int_member (oa, "cid"));
  g_assert_nonnull (strstr (fc (json_object_get_string_member (ob, "api_socket"), "get"), "Running"));

  g_assert_no_errno (stat (disk, &after));
  g_assert_cmpuint (after.st_ino, ==, before.st_ino);
  g_assert_cmpuint (after.st_dev, ==, before.st_dev);
  fd = open (disk, O_RDONLY | O_CLOEXEC);
  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (pread (fd, read_back, sizeof read_back, 0), ==, sizeof read_back);
  close (fd);
  g_assert_cmpmem (read_back, sizeof read_back, marker, sizeof marker);

  /* The name still resolves to the same address, and vm show agrees. */
  g_assert_true (g_file_get_contents (hosts_path, &hosts, NULL, NULL));
  line = g_strdup_printf ("%s rs.banger", json_object_get_string_member (oa, "address"));
  g_assert_nonnull (strstr (hosts, line));
  g_assert_cmpint (bg_harness_cli (f->h, &o3, &e3, "vm", "show", "rs", "--json", NULL), ==, 0);
  shown = json (o3);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (shown), "state"), ==, "running");
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (shown), "pid"), ==, pid_b);

  /* Stopped: refused, pointing at vm start; nothing started. */
  g_assert_cmpint (bg_harness_cli (f->h, &o4, &e4, "vm", "stop", "rs", NULL), ==, 0);
  g_assert_cmpint (bg_harness_cli (f->h, &o5, &e5, "vm", "restart", "rs", "--no-wait", NULL), ==, 1);
  g_assert_nonnull (strstr (e5, "VM rs is stopped; start it with 'banger vm start rs'"));
  g_assert_false (g_file_test (new_proc, G_FILE_TEST_EXISTS));
  g_assert_cmpint (bg_harness_cli (f->h, &o6, &e6, "vm", "restart", "nosuch", "--no-wait", NULL), ==, 1);
  g_assert_nonnull (strstr (e6, "No VM named \"nosuch\""));
  g_assert_cmpint (bg_harness_cli (f->h, &o7, &e7, "vm", "rm", "rs", NULL), ==, 0);
}

static void
test_bad_input_creates_nothing (Fixture *f, gconstpointer data)
{
  g_autofree char *before = snapshot (f);
  g_autofree char *after = NULL;
  struct { const char *args[4]; int code; const char *msg; } cases[] = {
    { { "--memory", "0", NULL }, 2, "--memory: 0 MiB is out of range" },
    { { "--cpus", "1000", NULL }, 2, "--cpus: 1000 vCPUs is not allowed" },
    { { "--disk", "1Q", NULL }, 2, "--disk: invalid size \"1Q\"" },
    { { "--image", "nothere", NULL }, 1, "No image named \"nothere\"" },
    { { "Bad_Name", NULL }, 2, "NAME: invalid name" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *o = NULL, *e = NULL;
      int rc = bg_harness_cli (f->h, &o, &e, "vm", "up", cases[i].args[0], cases[i].args[1], cases[i].args[2], NULL);

      g_assert_cmpint (rc, ==, cases[i].code);
      if (strstr (e, cases[i].msg) == NULL)
        g_error ("\"%s\" lacks \"%s\"", e, cases[i].msg);
    }
  after = snapshot (f);
  g_assert_cmpstr (after, ==, before);
}

static void
test_vm_ssh_uses_the_pinned_key (Fixture *f, gconstpointer data)
{
  g_autofree char *o = NULL, *e = NULL, *o2 = NULL, *e2 = NULL, *o3 = NULL, *e3 = NULL, *o4 = NULL, *e4 = NULL;
  g_autofree char *bin = g_build_filename (f->home, "bin", NULL);
  g_autofree char *fake = g_build_filename (bin, "ssh", NULL);
  g_autofree char *argv_log = g_build_filename (f->home, "ssh-argv", NULL);
  g_autofree char *recorded = NULL, *script = NULL, *kh = NULL, *key = NULL, *expect = NULL;
  g_autoptr(JsonNode) vm = NULL;
  struct passwd *pw = getpwnam (BG_TEST_USER_A);
  const char *address;

  g_assert_cmpint (bg_harness_cli (f->h, &o, &e, "vm", "up", "sshme", "--no-wait", "--json", NULL), ==, 0);
  vm = json (o);
  address = json_object_get_string_member (json_node_get_object (vm), "address");

  /* A fake ssh first on PATH: records its argv, exits as a remote
   * `exit 7` would. (This test tool is a script; banger runs no shell.) */
  g_assert_no_errno (g_mkdir (bin, 0755));
  script = g_strdup_printf ("#!/bin/sh\nprintf '%%s\\n' \"$@\" > %s\nexit 7\n", argv_log);
  g_assert_true (g_file_set_contents (fake, script, -1, NULL));
  g_assert_no_errno (chmod (fake, 0755));
  g_assert_no_errno (chown (bin, pw->pw_uid, pw->pw_gid));
  f->h->cli_path_prefix = g_strdup (bin);
  g_assert_cmpint (bg_harness_cli (f->h, &o2, &e2, "vm", "ssh", "sshme", "--", "cat", "/etc/hostname", NULL), ==, 7);
  g_clear_pointer (&f->h->cli_path_prefix, g_free);

  g_assert_true (g_file_get_contents (argv_log, &recorded, NULL, NULL));
  kh = g_build_filename (f->home, ".local/state/banger/known_hosts", NULL);
  key = g_build_filename (f->home, ".local/share/banger/ssh/id_ed25519", NULL);
  expect = g_strdup_printf ("-i\n%s\n-o\nIdentitiesOnly=yes\n-o\nUserKnownHostsFile=%s\n-o\n"
                            "GlobalKnownHostsFile=/dev/null\n-o\nStrictHostKeyChecking=yes\n-o\n"
                            "HostKeyAlias=sshme.banger\n-l\ndev\n%s\ncat\n/etc/hostname\n", key, kh, address);
  g_assert_cmpstr (recorded, ==, expect);

  /* The key it will check is the one pinned for this VM. */
  {
    g_autofree char *text = NULL;
    g_autofree char *pub = NULL;
    g_autofree char *hostkey = g_build_filename (f->home, ".local/state/banger/vms/sshme/ssh_host_ed25519_key.pub",
                                                 NULL);
    g_auto(GStrv) fields = NULL;

    g_assert_true (g_file_get_contents (kh, &text, NULL, NULL));
    g_assert_true (g_file_get_contents (hostkey, &pub, NULL, NULL));
    fields = g_strsplit (pub, " ", 3);
    g_assert_nonnull (strstr (text, fields[1]));
    g_assert_nonnull (strstr (text, "sshme.banger,"));
  }

  g_assert_cmpint (bg_harness_cli (f->h, &o3, &e3, "vm", "ssh-config", "sshme", NULL), ==, 0);
  g_assert_nonnull (strstr (o3, "Host sshme sshme.banger\n"));
  g_assert_nonnull (strstr (o3, "StrictHostKeyChecking yes"));
  g_assert_cmpint (bg_harness_cli (f->h, &o4, &e4, "vm", "rm", "sshme", "--force", NULL), ==, 0);
  /* rm forgets the pinned key. */
  {
    g_autofree char *text = NULL;
    g_file_get_contents (kh, &text, NULL, NULL);
    g_assert_null (strstr (text ? text : "", "sshme.banger"));
  }
}

/* The loop devices attached to @file. */
static GPtrArray *
loops_of (const char *file)
{
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GDir) blocks = g_dir_open ("/sys/block", 0, NULL);
  const char *e;

  while (blocks && (e = g_dir_read_name (blocks)))
    {
      g_autofree char *bf = g_strdup_printf ("/sys/block/%s/loop/backing_file", e);
      g_autofree char *backing = NULL;
      if (g_file_get_contents (bf, &backing, NULL, NULL) && g_str_equal (g_strstrip (backing), file))
        g_ptr_array_add (out, g_strdup (e));
    }
  return out;
}

/* An image with banger-init: its VMs are layered where the filesystem
 * cannot reflink (the tests' home is on ext4). Both VMs share one
 * read-only loop device of the image; each has only a sparse disk of its
 * own; the image cannot be removed while they exist; the base goes with
 * the last of them. */
static void
test_layered_vms_share_one_base (Fixture *f, gconstpointer data)
{
  struct passwd *pw = getpwnam (BG_TEST_USER_A);
  g_autofree char *before = snapshot (f);
  g_autofree char *tree = g_build_filename (f->home, "laytree", NULL);
  g_autofree char *libexec = g_build_filename (tree, "usr/libexec/banger", NULL);
  g_autofree char *init = g_build_filename (libexec, "banger-init", NULL);
  g_autofree char *rootfs = g_build_filename (f->home, "lay.ext4", NULL);
  g_autofree char *image_rootfs = g_build_filename (f->home, ".local/share/banger/images/lay/rootfs.ext4", NULL);
  g_autofree char *init_bin = NULL;
  g_autofree char *o = NULL, *e = NULL, *after = NULL;
  g_autoptr(GPtrArray) loops = NULL;
  JsonObject *obj;
  gsize len;
  int status;

  /* An image like 'image build' makes, with banger-init in it. */
  g_assert_no_errno (g_mkdir_with_parents (libexec, 0755));
  g_assert_true (g_file_get_contents (g_getenv ("BANGER_INIT"), &init_bin, &len, NULL));
  g_assert_true (g_file_set_contents_full (init, init_bin, len, G_FILE_SET_CONTENTS_NONE, 0755, NULL));
  {
    const char *argv[] = { "mke2fs", "-q", "-F", "-t", "ext4", "-d", tree, rootfs, "64M", NULL };
    bg_harness_run_argv (argv, NULL, &status);
    g_assert_cmpint (status, ==, 0);
  }
  g_assert_no_errno (chown (rootfs, pw->pw_uid, pw->pw_gid));
  g_assert_cmpint (bg_harness_cli (f->h, &o, &e, "image", "import", "lay", "--kernel", "vmlinux", "--rootfs", "lay.ext4", NULL),
                   ==, 0);
  g_clear_pointer (&o, g_free);
  g_assert_cmpint (bg_harness_cli (f->h, &o, &e, "image", "show", "lay", NULL), ==, 0);
  g_assert_nonnull (strstr (o, "Layered VMs: yes"));

  for (const char *name = "l1"; name; name = g_str_equal (name, "l1") ? "l2" : NULL)
    {
      g_autofree char *out = NULL, *err = NULL, *cfg = NULL;
      g_autofree char *upper = g_strdup_printf ("%s/.local/state/banger/vms/%s/upper.img", f->home, name);
      g_autofree char *whole = g_strdup_printf ("%s/.local/state/banger/vms/%s/disk.ext4", f->home, name);
      g_autoptr(JsonNode) n = NULL;
      struct stat st;

      if (bg_harness_cli (f->h, &out, &err, "vm", "up", name, "--image", "lay", "--no-wait", "--disk", "8G", "--json", NULL) != 0)
        g_error ("vm up %s: %s", name, err);
      n = json (out);
      obj = json_node_get_object (n);
      g_assert_cmpstr (json_object_get_string_member (obj, "disk_mode"), ==, "layered");
      g_assert_nonnull (strstr (json_object_get_string_member (obj, "disk_reason"), "cannot reflink"));
      /* Its own disk: sparse, of the size asked, nothing of the image. */
      g_assert_no_errno (stat (upper, &st));
      g_assert_cmpint (st.st_size, ==, G_GINT64_CONSTANT (8) << 30);
      g_assert_cmpint (st.st_blocks * 512, <=, 1 << 20);
      g_assert_false (g_file_test (whole, G_FILE_TEST_EXISTS));
      /* The VMM got the image as a read-only root, the VM's disk third,
       * and banger-init. */
      cfg = fc (json_object_get_string_member (obj, "api_socket"), "config");
      g_assert_nonnull (strstr (cfg, "\"drive_id\":\"rootfs\",\"path_on_host\":\"/rootfs\",\"is_root_device\":true,"
                                "\"is_read_only\":true"));
      g_assert_nonnull (strstr (cfg, "\"path_on_host\":\"/upper\",\"is_root_device\":false,\"is_read_only\":false"));
      g_assert_nonnull (strstr (cfg, "root=/dev/vda ro init=/usr/libexec/banger/banger-init banger.upper=/dev/vdc"));
    }

  /* One loop device for the image, read-only, recorded with both VMs. */
  loops = loops_of (image_rootfs);
  g_assert_cmpuint (loops->len, ==, 1);
  {
    g_autofree char *ro_path = g_strdup_printf ("/sys/block/%s/ro", (char *) loops->pdata[0]);
    g_autofree char *ro = NULL;
    g_autoptr(BgCallResult) list = bg_harness_call (f->h, NULL, "ListResources",
                                                    "({'all-users': <true>, 'kind': <'base'>},)", NULL);
    g_autofree char *users = g_strdup_printf ("['u%u-l1', 'u%u-l2']", pw->pw_uid, pw->pw_uid);

    g_assert_true (g_file_get_contents (ro_path, &ro, NULL, NULL));
    g_assert_cmpstr (g_strstrip (ro), ==, "1");
    bg_assert_call_ok (list);
    g_assert_nonnull (strstr (list->reply, users));
  }

  /* The image is their root: it stays while they do, --force or not. */
  g_clear_pointer (&e, g_free);
  g_assert_cmpint (bg_harness_cli (f->h, NULL, &e, "image", "rm", "lay", "--force", NULL), ==, 1);
  g_assert_nonnull (strstr (e, "is the root of VMs l1, l2"));
  g_clear_pointer (&o, g_free);
  g_assert_cmpint (bg_harness_cli (f->h, &o, NULL, "vm", "show", "l1", NULL), ==, 0);
  g_assert_nonnull (strstr (o, "layered: this filesystem cannot reflink"));

  /* The base stays for the VM still running, and goes with the last. */
  g_assert_cmpint (bg_harness_cli (f->h, NULL, NULL, "vm", "rm", "l1", "--force", NULL), ==, 0);
  g_clear_pointer (&loops, g_ptr_array_unref);
  loops = loops_of (image_rootfs);
  g_assert_cmpuint (loops->len, ==, 1);
  g_assert_cmpint (bg_harness_cli (f->h, NULL, NULL, "vm", "rm", "l2", "--force", NULL), ==, 0);
  g_clear_pointer (&loops, g_ptr_array_unref);
  loops = loops_of (image_rootfs);
  g_assert_cmpuint (loops->len, ==, 0);
  g_assert_cmpint (bg_harness_cli (f->h, NULL, NULL, "image", "rm", "lay", NULL), ==, 0);
  after = snapshot (f);
  g_assert_cmpstr (after, ==, before);
}

/* Host disk a VM's directory takes: every file's allocated blocks. */
static gint64
allocated_bytes (const char *dir)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *e;
  gint64 total = 0;

  g_assert_nonnull (d);
  while ((e = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, e, NULL);
      struct stat st;

      g_assert_no_errno (lstat (path, &st));
      total += S_ISDIR (st.st_mode) ? allocated_bytes (path) : (gint64) st.st_blocks * 512;
    }
  return total;
}

static char *
sha256_of_path (const char *path)
{
  g_autoptr(GMappedFile) map = g_mapped_file_new (path, FALSE, NULL);

  g_assert_nonnull (map);
  return g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guint8 *) g_mapped_file_get_contents (map),
                                      g_mapped_file_get_length (map));
}

/* Bring your own ext4: a plain one (no banger-init, as mke2fs -d makes
 * it from a tree holding 32 MiB of data) imports layered, because banger
 * writes its guest programs into its own copy; each VM of it then costs
 * a sparse disk of its own (at most 1 MiB of host disk), not a copy of
 * the image; and the file the user gave never changes. */
static void
test_plain_ext4_imports_layered (Fixture *f, gconstpointer data)
{
  struct passwd *pw = getpwnam (BG_TEST_USER_A);
  g_autofree char *before = snapshot (f);
  g_autofree char *tree = g_build_filename (f->home, "byotree", NULL);
  g_autofree char *etc = g_build_filename (tree, "etc", NULL);
  g_autofree char *sbin = g_build_filename (tree, "sbin", NULL);
  g_autofree char *rootfs = g_build_filename (f->home, "byo.ext4", NULL);
  g_autofree char *image_rootfs = g_build_filename (f->home, ".local/share/banger/images/byo/rootfs.ext4", NULL);
  g_autofree char *o = NULL, *e = NULL, *after = NULL, *sum_before = NULL, *sum_after = NULL;
  g_autoptr(JsonNode) shown = NULL;
  struct stat st_before, st_after;

  /* A root of the user's own: an init, a file, 32 MiB of data. */
  g_assert_no_errno (g_mkdir_with_parents (etc, 0755));
  g_assert_no_errno (g_mkdir_with_parents (sbin, 0755));
  {
    g_autofree char *hostname = g_build_filename (etc, "hostname", NULL);
    g_autofree char *init = g_build_filename (sbin, "init", NULL);
    g_autofree char *data_bin = g_build_filename (tree, "data.bin", NULL);
    gsize n = 32 << 20;
    g_autofree char *bytes = g_malloc (n);

    g_assert_true (g_file_set_contents (hostname, "byo\n", -1, NULL));
    g_assert_true (g_file_set_contents_full (init, "#!/bin/sh\n", -1, G_FILE_SET_CONTENTS_NONE, 0755, NULL));
    for (gsize i = 0; i < n; i++)
      bytes[i] = (char) (i * 131 + (i >> 12));
    g_assert_true (g_file_set_contents (data_bin, bytes, n, NULL));
  }
  {
    const char *argv[] = { "mke2fs", "-q", "-F", "-t", "ext4", "-d", tree, rootfs, "128M", NULL };
    int status;

    bg_harness_run_argv (argv, NULL, &status);
    g_assert_cmpint (status, ==, 0);
  }
  g_assert_no_errno (chown (rootfs, pw->pw_uid, pw->pw_gid));
  g_assert_no_errno (chmod (rootfs, 0444));
  sum_before = sha256_of_path (rootfs);
  g_assert_no_errno (stat (rootfs, &st_before));

  if (bg_harness_cli (f->h, &o, &e, "image", "import", "byo", "--kernel", "vmlinux", "--rootfs", "byo.ext4", NULL) != 0)
    g_error ("image import: %s", e);
  g_clear_pointer (&o, g_free);
  g_assert_cmpint (bg_harness_cli (f->h, &o, &e, "image", "show", "byo", NULL), ==, 0);
  g_assert_nonnull (strstr (o, "Layered VMs: yes"));
  g_assert_nonnull (strstr (o, sum_before));
  g_assert_nonnull (strstr (o, "SSH:       no (the image has no sshd"));
  g_clear_pointer (&o, g_free);
  g_assert_cmpint (bg_harness_cli (f->h, &o, &e, "image", "show", "byo", "--json", NULL), ==, 0);
  shown = json (o);
  g_assert_true (json_object_get_boolean_member (json_node_get_object (shown), "layered"));

  for (const char *name = "b1"; name; name = g_str_equal (name, "b1") ? "b2" : NULL)
    {
      g_autofree char *out = NULL, *err = NULL, *cfg = NULL;
      g_autofree char *dir = g_strdup_printf ("%s/.local/state/banger/vms/%s", f->home, name);
      g_autofree char *whole = g_build_filename (dir, "disk.ext4", NULL);
      g_autoptr(JsonNode) n = NULL;
      JsonObject *obj;
      gint64 t0 = g_get_monotonic_time (), used;

      if (bg_harness_cli (f->h, &out, &err, "vm", "up", name, "--image", "byo", "--no-wait", "--disk", "8G", "--json", NULL) != 0)
        g_error ("vm up %s: %s", name, err);
      used = allocated_bytes (dir);
      /* For the report only, never asserted: timing is for bench/. */
      g_test_message ("vm up --no-wait %s: %.0f ms, %" G_GINT64_FORMAT " KiB of host disk in its directory", name,
                      (g_get_monotonic_time () - t0) / 1000.0, used / 1024);
      n = json (out);
      obj = json_node_get_object (n);
      g_assert_cmpstr (json_object_get_string_member (obj, "disk_mode"), ==, "layered");
      g_assert_false (g_file_test (whole, G_FILE_TEST_EXISTS));
      g_assert_cmpint (used, <=, 1 << 20);
      cfg = fc (json_object_get_string_member (obj, "api_socket"), "config");
      g_assert_nonnull (strstr (cfg, "root=/dev/vda ro init=/usr/libexec/banger/banger-init banger.upper=/dev/vdc"));
    }
  /* No sshd in it, and no agent answering here: vm ssh says so at once
   * and names the other way in, without trying ssh. */
  g_clear_pointer (&e, g_free);
  g_assert_cmpint (bg_harness_cli (f->h, NULL, &e, "vm", "ssh", "b1", "--", "true", NULL), ==, 1);
  g_assert_nonnull (strstr (e, "VM b1's image byo has no sshd; use 'banger vm exec -it b1 -- COMMAND'"));
  g_assert_cmpint (bg_harness_cli (f->h, NULL, NULL, "vm", "rm", "b1", "--force", NULL), ==, 0);
  g_assert_cmpint (bg_harness_cli (f->h, NULL, NULL, "vm", "rm", "b2", "--force", NULL), ==, 0);

  /* The user's file: the same bytes, never written. */
  sum_after = sha256_of_path (rootfs);
  g_assert_cmpstr (sum_after, ==, sum_before);
  g_assert_no_errno (stat (rootfs, &st_after));
  g_assert_cmpint (st_after.st_mtim.tv_sec, ==, st_before.st_mtim.tv_sec);
  g_assert_cmpint (st_after.st_mtim.tv_nsec, ==, st_before.st_mtim.tv_nsec);
  /* banger's copy differs: it holds banger-init. */
  {
    g_autofree char *ours = sha256_of_path (image_rootfs);
    g_assert_cmpstr (ours, !=, sum_before);
  }
  g_assert_cmpint (bg_harness_cli (f->h, NULL, NULL, "image", "rm", "byo", NULL), ==, 0);
  after = snapshot (f);
  g_assert_cmpstr (after, ==, before);
}

/* `vm pause` and `vm resume` reach the VMM (its own state says so), are
 * recorded, and are refused, naming what to do, on a stopped VM. */
static void
test_pause_and_resume (Fixture *f, gconstpointer data)
{
  g_autofree char *o1 = NULL, *e1 = NULL, *o2 = NULL, *e2 = NULL, *o3 = NULL, *e3 = NULL, *o4 = NULL, *e4 = NULL;
  g_autofree char *o5 = NULL, *e5 = NULL, *o6 = NULL, *e6 = NULL, *o7 = NULL, *e7 = NULL;
  g_autofree char *paused = NULL, *running = NULL;
  g_autoptr(JsonNode) vm = NULL, shown = NULL;
  const char *api;

  if (bg_harness_cli (f->h, &o1, &e1, "vm", "up", "pz", "--no-wait", "--json", NULL) != 0)
    g_error ("vm up: %s", e1);
  vm = json (o1);
  api = json_object_get_string_member (json_node_get_object (vm), "api_socket");

  if (bg_harness_cli (f->h, &o2, &e2, "vm", "pause", "pz", NULL) != 0)
    g_error ("vm pause: %s", e2);
  paused = fc (api, "get");
  g_assert_nonnull (strstr (paused, "Paused"));
  g_assert_cmpint (bg_harness_cli (f->h, &o3, &e3, "vm", "show", "pz", "--json", NULL), ==, 0);
  shown = json (o3);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (shown), "state"), ==, "paused");

  if (bg_harness_cli (f->h, &o4, &e4, "vm", "resume", "pz", NULL) != 0)
    g_error ("vm resume: %s", e4);
  running = fc (api, "get");
  g_assert_nonnull (strstr (running, "Running"));

  g_assert_cmpint (bg_harness_cli (f->h, &o5, &e5, "vm", "stop", "pz", NULL), ==, 0);
  g_assert_cmpint (bg_harness_cli (f->h, &o6, &e6, "vm", "pause", "pz", NULL), ==, 1);
  g_assert_nonnull (strstr (e6, "VM pz is stopped; start it with 'banger vm start pz'"));
  g_assert_cmpint (bg_harness_cli (f->h, &o7, &e7, "vm", "rm", "pz", NULL), ==, 0);
}

/* `vm logs` prints the console (what the VMM wrote); `vm logs -f` keeps
 * printing what comes after, here the guest's answer to `vm stop`. */
static void
test_logs_and_follow (Fixture *f, gconstpointer data)
{
  g_autofree char *o1 = NULL, *e1 = NULL, *o2 = NULL, *e2 = NULL, *o3 = NULL, *e3 = NULL, *o4 = NULL, *e4 = NULL;
  const char *args[] = { "vm", "logs", "lg", "--follow", NULL };
  g_auto(GStrv) argv = bg_harness_cli_argv (BG_TEST_USER_A, args);
  g_auto(GStrv) envp = bg_harness_cli_envp (f->h, f->home, f->home);
  g_autoptr(GString) seen = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  GPid pid;
  int out, status;

  if (bg_harness_cli (f->h, &o1, &e1, "vm", "up", "lg", "--no-wait", NULL) != 0)
    g_error ("vm up: %s", e1);
  g_assert_cmpint (bg_harness_cli (f->h, &o2, &e2, "vm", "logs", "lg", NULL), ==, 0);
  g_assert_nonnull (strstr (o2, "[test-vmm] InstanceStart: guest \"booted\"\n"));

  g_assert_true (g_spawn_async_with_pipes (f->home, argv, envp, G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD,
                                           NULL, NULL, &pid, NULL, &out, NULL, &error));
  g_assert_no_error (error);
  g_assert_no_errno (fcntl (out, F_SETFL, O_NONBLOCK));
  for (gint64 end = bg_test_deadline (20); !strstr (seen->str, "guest \"booted\"");)
    {
      char buf[4096];
      ssize_t n = read (out, buf, sizeof buf);
      if (n > 0)
        g_string_append_len (seen, buf, n);
      else if (g_get_monotonic_time () > end)
        g_error ("vm logs -f printed only: %s", seen->str);
      else
        g_usleep (20000);
    }
  /* Written after logs -f started: it must still come. */
  g_assert_null (strstr (seen->str, "SendCtrlAltDel"));
  g_assert_cmpint (bg_harness_cli (f->h, &o3, &e3, "vm", "stop", "lg", NULL), ==, 0);
  for (gint64 end = bg_test_deadline (20); !strstr (seen->str, "[test-vmm] SendCtrlAltDel: guest shutting down\n");)
    {
      char buf[4096];
      ssize_t n = read (out, buf, sizeof buf);
      if (n > 0)
        g_string_append_len (seen, buf, n);
      else if (g_get_monotonic_time () > end)
        g_error ("vm logs -f did not follow the console: %s", seen->str);
      else
        g_usleep (20000);
    }
  /* Ctrl-C ends it. */
  g_assert_no_errno (kill (pid, SIGINT));
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  g_assert_true (WIFSIGNALED (status) || WIFEXITED (status));
  close (out);
  g_assert_cmpint (bg_harness_cli (f->h, &o4, &e4, "vm", "rm", "lg", NULL), ==, 0);
}

/* A guest deaf to Ctrl-Alt-Del: `vm stop --timeout 1` waits that long,
 * then kills the VMM, and says so; the VM is stopped, its VMM gone. */
static void
test_stop_timeout_kills (Fixture *f, gconstpointer data)
{
  g_autofree char *o1 = NULL, *e1 = NULL, *o2 = NULL, *e2 = NULL, *o3 = NULL, *e3 = NULL, *o4 = NULL, *e4 = NULL;
  g_autofree char *logs = NULL, *logs_err = NULL;
  g_autoptr(JsonNode) vm = NULL, shown = NULL;
  g_autofree char *proc = NULL;
  gint64 pid;

  bg_harness_use_vmm (f->h, g_getenv ("BANGER_VMM_DEAF"));
  if (bg_harness_cli (f->h, &o1, &e1, "vm", "up", "deaf", "--no-wait", "--json", NULL) != 0)
    g_error ("vm up: %s", e1);
  vm = json (o1);
  pid = json_object_get_int_member (json_node_get_object (vm), "pid");
  g_assert_cmpint (pid, >, 1);
  proc = g_strdup_printf ("/proc/%" G_GINT64_FORMAT, pid);
  g_assert_true (g_file_test (proc, G_FILE_TEST_EXISTS));

  if (bg_harness_cli (f->h, &o2, &e2, "vm", "stop", "deaf", "--timeout", "1", "--verbose", NULL) != 0)
    g_error ("vm stop --timeout 1: %s", e2);
  g_assert_nonnull (strstr (e2, "deaf killed"));
  g_assert_cmpint (bg_harness_cli (f->h, &logs, &logs_err, "vm", "logs", "deaf", NULL), ==, 0);
  g_assert_nonnull (strstr (logs, "[test-vmm] SendCtrlAltDel: ignored\n"));
  g_assert_cmpint (bg_harness_cli (f->h, &o3, &e3, "vm", "show", "deaf", "--json", NULL), ==, 0);
  shown = json (o3);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (shown), "state"), ==, "stopped");
  g_assert_false (g_file_test (proc, G_FILE_TEST_EXISTS));
  g_assert_cmpint (bg_harness_cli (f->h, &o4, &e4, "vm", "rm", "deaf", NULL), ==, 0);
}

/* Ctrl-C (SIGINT) during `vm up`, at a step where the VMM already runs:
 * the CLI stops, says it was interrupted, and undoes everything itself,
 * no `system cleanup` needed. With @data, the network is guessed: the
 * host key is being pinned by a thread meanwhile, and the rollback must
 * wait for it before it removes the pin. */
static void
test_ctrl_c_during_up_leaves_nothing (Fixture *f, gconstpointer data)
{
  g_autofree char *before = NULL;
  g_autofree char *after = NULL, *ls = NULL, *ls_err = NULL;
  const char *args[] = { "vm", "up", "intr", "--no-wait", NULL };
  g_auto(GStrv) argv = bg_harness_cli_argv (BG_TEST_USER_A, args);
  g_auto(GStrv) envp = bg_harness_cli_envp (f->h, f->home, f->home);
  g_autoptr(GError) error = NULL;
  g_autoptr(GString) err = g_string_new (NULL);
  char buf[4096];
  ssize_t n;
  GPid pid;
  int err_fd, status;

  if (g_getenv ("BANGER_TEST_HOOKS") == NULL)
    {
      g_test_skip ("built without -Dtest_hooks=true: the CLI cannot be paused at a step");
      return;
    }
  if (data != NULL)
    {
      g_assert_cmpint (bg_harness_cli (f->h, NULL, NULL, "vm", "up", "once", "--no-wait", NULL), ==, 0);
      g_assert_cmpint (bg_harness_cli (f->h, NULL, NULL, "vm", "rm", "once", "--force", NULL), ==, 0);
    }
  before = snapshot (f);
  envp = g_environ_setenv (envp, "BANGER_TEST_PAUSE_AT", "configure", TRUE);
  g_assert_true (g_spawn_async_with_pipes (f->home, argv, envp, G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD |
                                           G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, &pid, NULL, NULL, &err_fd,
                                           &error));
  g_assert_no_error (error);
  g_assert_cmpint (waitpid (pid, &status, WUNTRACED), ==, pid);
  g_assert_true (WIFSTOPPED (status));
  /* Ctrl-C as a terminal sends it, while the VMM runs; then on. */
  g_assert_no_errno (kill (pid, SIGINT));
  g_assert_no_errno (kill (pid, SIGCONT));
  while ((n = read (err_fd, buf, sizeof buf)) > 0)
    g_string_append_len (err, buf, n);
  close (err_fd);
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  g_test_message ("vm up, interrupted: %s", err->str);
  bg_assert_exited (status, 1);
  g_assert_nonnull (strstr (err->str, "vm up interrupted at step"));
  g_assert_nonnull (strstr (err->str, "everything this run created was removed"));

  g_assert_cmpint (bg_harness_cli (f->h, &ls, &ls_err, "vm", "ls", "--json", NULL), ==, 0);
  g_assert_cmpstr (g_strstrip (ls), ==, "[]");
  after = snapshot (f);
  g_assert_cmpstr (after, ==, before);
}

static void
add_tests (void)
{
#define ADD(path, fn) g_test_add (path, Fixture, NULL, setup, fn, teardown)
  ADD ("/up/configures-the-vmm-and-rm-leaves-nothing", test_up_configures_the_vmm_and_rm_leaves_nothing);
  ADD ("/up/with-an-initrd", test_up_with_an_initrd);
  ADD ("/up/asks-the-bus-who-it-is-once", test_up_asks_the_bus_who_it_is_once);
  ADD ("/up/second-vm-in-one-privileged-call", test_up_second_vm_in_one_privileged_call);
  ADD ("/up/wrong-guess-follows-the-real-network", test_up_wrong_guess_follows_the_real_network);
  ADD ("/up/again-restarts-with-same-address", test_up_again_restarts_with_same_address);
  ADD ("/up/parallel-ups-get-distinct-resources", test_parallel_ups_get_distinct_resources);
  ADD ("/up/guessed-pin-failure-leaves-nothing", test_up_guessed_pin_failure_leaves_nothing);
  ADD ("/up/without-the-crypto-module-leaves-nothing", test_up_without_the_crypto_module_leaves_nothing);
  ADD ("/up/killed-at-any-step-cleanup-leaves-nothing", test_killed_at_any_step_cleanup_leaves_nothing);
  ADD ("/up/mechanism-killed-mid-launch-leaves-nothing", test_mechanism_killed_mid_launch_leaves_nothing);
  ADD ("/up/cleanup-dry-run-lists-and-changes-nothing", test_cleanup_dry_run_lists_and_changes_nothing);
  ADD ("/up/record-cut-short-is-cleaned-up", test_record_cut_short_is_cleaned_up);
  ADD ("/up/cleanup-all-users-needs-an-administrator", test_cleanup_all_users_needs_an_administrator);
  ADD ("/up/mechanism-gone-between-calls-is-activated-again", test_mechanism_gone_between_calls_is_activated_again);
  ADD ("/up/restart-makes-a-new-vmm-for-the-same-vm", test_restart_makes_a_new_vmm_for_the_same_vm);
  ADD ("/up/bad-input-creates-nothing", test_bad_input_creates_nothing);
  ADD ("/up/vm-ssh-uses-the-pinned-key", test_vm_ssh_uses_the_pinned_key);
  ADD ("/up/layered-vms-share-one-base", test_layered_vms_share_one_base);
  ADD ("/up/plain-ext4-imports-layered", test_plain_ext4_imports_layered);
  ADD ("/up/pause-and-resume", test_pause_and_resume);
  ADD ("/up/logs-and-follow", test_logs_and_follow);
  ADD ("/up/stop-timeout-kills", test_stop_timeout_kills);
  ADD ("/up/ctrl-c-during-up-leaves-nothing", test_ctrl_c_during_up_leaves_nothing);
  g_test_add ("/up/ctrl-c-during-guessed-up-leaves-nothing", Fixture, GINT_TO_POINTER (1), setup,
              test_ctrl_c_during_up_leaves_nothing, teardown);
}

int
main (int argc, char **argv)
{
  return bg_harness_main (&argc, &argv, add_tests);
}
