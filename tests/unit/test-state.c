#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <gio/gio.h>
#include <glib/gstdio.h>

#include "bg-error.h"
#include "bg-file.h"
#include "bg-fsync.h"
#include "bg-state.h"

#include "../bg-test.h"

typedef struct {
  char         *tmp;
  BgStateStore *store;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  f->tmp = g_dir_make_tmp ("banger-state-XXXXXX", NULL);
  f->store = bg_state_store_new (f->tmp);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  const char *argv[] = { "rm", "-rf", "--", f->tmp, NULL };
  g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
  bg_state_store_free (f->store);
  g_free (f->tmp);
}

static void
test_state_round_trip (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BgVmRecord) r = bg_vm_record_new ("dev");
  g_autoptr(BgVmRecord) back = NULL;
  g_autofree char *path = g_build_filename (f->tmp, "dev", "vm.json", NULL);
  struct stat st;

  r->image = g_strdup ("default");
  r->cpus = 2;
  r->memory_mib = 1024;
  r->disk_bytes = G_GUINT64_CONSTANT (8) << 30;
  r->address = g_strdup ("172.30.0.2");
  r->cid = 3;
  g_assert_true (bg_state_store_save (f->store, r, &error));
  g_assert_no_error (error);

  g_assert_no_errno (stat (path, &st));
  g_assert_cmpuint (st.st_mode & 0777, ==, 0600);

  back = bg_state_store_load (f->store, "dev", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (back->name, ==, "dev");
  g_assert_cmpstr (back->image, ==, "default");
  g_assert_cmpstr (back->address, ==, "172.30.0.2");
  g_assert_cmpuint (back->disk_bytes, ==, r->disk_bytes);
  g_assert_cmpuint (back->cid, ==, 3);
  g_assert_cmpint (back->created_at, ==, r->created_at);
}

static void
test_state_missing_is_not_found (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BgVmRecord) r = bg_state_store_load (f->store, "nothere", &error);

  g_assert_null (r);
  g_assert_error (error, BG_ERROR, BG_ERROR_NOT_FOUND);
}

static void
write_raw (Fixture *f, const char *name, const char *text)
{
  g_autofree char *dir = g_build_filename (f->tmp, name, NULL);
  g_autofree char *path = g_build_filename (dir, "vm.json", NULL);

  g_mkdir_with_parents (dir, 0700);
  g_assert_true (g_file_set_contents (path, text, -1, NULL));
}

static void
test_state_corrupt_files_name_the_file (Fixture *f, gconstpointer data)
{
  static const struct { const char *text; const char *expect; } cases[] = {
    { "", "never reached the disk whole" },
    { "{\"name\": \"bad\", ", "is not valid JSON" },
    { "\x89PNG\r\n\x1a\n\0\0", "is not valid JSON" },
    { "[1, 2, 3]", "not a JSON object" },
    { "{\"state\": \"running\"}", "member \"name\" is missing" },
    { "{\"name\": 7, \"state\": \"running\"}", "member \"name\" must be a string" },
    { "{\"name\": \"bad\", \"state\": \"stopped\", \"cpus\": \"two\"}", "member \"cpus\" must be an integer" },
    { "{\"name\": \"bad\", \"state\": \"stopped\", \"cpus\": -5}", "member \"cpus\" is out of range" },
    { "{\"name\": \"other\", \"state\": \"stopped\"}", "records VM \"other\"" },
    { "{\"name\": \"../x\", \"state\": \"stopped\"}", "not a valid VM name" },
    { "{\"name\": \"bad\", \"state\": \"x\"}", "member \"state\" is not a VM state" },
    { "{\"name\": \"bad\", \"state\": \"crashed\"}", "member \"state\" is not a VM state" },
    { "{\"name\": \"bad\", \"state\": \"stopped\", \"dns\": [1]}", "member \"dns\" must be a list of strings" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(BgVmRecord) r = NULL;

      write_raw (f, "bad", cases[i].text);
      r = bg_state_store_load (f->store, "bad", &error);
      g_assert_null (r);
      g_assert_error (error, BG_ERROR, BG_ERROR_CORRUPT);
      if (strstr (error->message, "/bad/vm.json") == NULL || strstr (error->message, cases[i].expect) == NULL)
        g_error ("case %u: \"%s\" lacks the file or \"%s\"", i, error->message, cases[i].expect);
    }
}

/* What a power loss can leave of a first record written unsynced:
 * nothing, or its length in NUL bytes, from before this boot. Told
 * apart from a record that was whole once, and from an empty one of
 * this boot (someone's doing), which cleanup must never take for a
 * leftover. */
static void
test_state_never_written (Fixture *f, gconstpointer data)
{
  g_autofree char *path = g_build_filename (f->tmp, "cut", "vm.json", NULL);
  g_autofree char *bad = g_build_filename (f->tmp, "Bad Name", "vm.json", NULL);
  g_autofree char *half = g_build_filename (f->tmp, "bad", "vm.json", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(BgVmRecord) r = NULL;
  static const char zeros[339] = { 0 };

  g_assert_false (bg_state_store_never_written (f->store, "cut"));
  write_raw (f, "cut", "");
  g_assert_false (bg_state_store_never_written (f->store, "cut"));
  bg_test_written_before_boot (path);
  g_assert_true (bg_state_store_never_written (f->store, "cut"));
  g_assert_true (g_file_set_contents (path, zeros, sizeof zeros, NULL));
  bg_test_written_before_boot (path);
  g_assert_true (bg_state_store_never_written (f->store, "cut"));
  r = bg_state_store_load (f->store, "cut", &error);
  g_assert_null (r);
  g_assert_error (error, BG_ERROR, BG_ERROR_CORRUPT);
  g_assert_nonnull (strstr (error->message, "system cleanup"));

  /* Whole once, or not a VM's name: never, whatever its age. */
  write_raw (f, "bad", "{\"name\": \"bad\", ");
  bg_test_written_before_boot (half);
  g_assert_false (bg_state_store_never_written (f->store, "bad"));
  write_raw (f, "Bad Name", "");
  bg_test_written_before_boot (bad);
  g_assert_false (bg_state_store_never_written (f->store, "Bad Name"));
}

/* A record that is a FIFO, a link to a device without end, or huge is
 * refused, naming the file, without waiting on it or reading it. */
static void
test_state_odd_files_are_refused (Fixture *f, gconstpointer data)
{
  static const struct { const char *name; const char *expect; } cases[] = {
    { "fifo", "is not a regular file" },
    { "link", "is a symbolic link" },
    { "huge", "larger than 1 MiB" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *dir = g_build_filename (f->tmp, cases[i].name, NULL);
      g_autofree char *path = g_build_filename (dir, "vm.json", NULL);
      g_autoptr(GError) error = NULL;
      g_autoptr(BgVmRecord) r = NULL;

      g_assert_no_errno (g_mkdir (dir, 0700));
      if (i == 0)
        g_assert_no_errno (mkfifo (path, 0600));
      else if (i == 1)
        g_assert_no_errno (symlink ("/dev/zero", path));
      else
        {
          int fd = open (path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
          g_assert_cmpint (fd, >=, 0);
          g_assert_no_errno (ftruncate (fd, 2 << 20));
          close (fd);
        }
      bg_test_written_before_boot (path);
      r = bg_state_store_load (f->store, cases[i].name, &error);
      g_assert_null (r);
      g_assert_error (error, BG_ERROR, BG_ERROR_CORRUPT);
      if (strstr (error->message, path) == NULL || strstr (error->message, cases[i].expect) == NULL)
        g_error ("%s: \"%s\" lacks the file or \"%s\"", cases[i].name, error->message, cases[i].expect);
      g_assert_false (bg_state_store_never_written (f->store, cases[i].name));
    }
}

static void
test_state_list_skips_corrupt_and_reports (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) problems = NULL;
  g_autoptr(GPtrArray) records = NULL;
  const char *names[] = { "zeta", "alpha", "mid" };

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autoptr(BgVmRecord) r = bg_vm_record_new (names[i]);
      g_assert_true (bg_state_store_save (f->store, r, NULL));
    }
  write_raw (f, "broken", "{{{");

  records = bg_state_store_list (f->store, &problems, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (records->len, ==, 3);
  g_assert_cmpstr (((BgVmRecord *) records->pdata[0])->name, ==, "alpha");
  g_assert_cmpstr (((BgVmRecord *) records->pdata[2])->name, ==, "zeta");
  g_assert_cmpuint (problems->len, ==, 1);
  g_assert_nonnull (strstr (problems->pdata[0], "broken/vm.json"));
}

static void
test_state_delete (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BgVmRecord) r = bg_vm_record_new ("gone");
  g_autofree char *dir = g_build_filename (f->tmp, "gone", NULL);

  g_assert_true (bg_state_store_save (f->store, r, &error));
  g_assert_true (bg_state_store_delete (f->store, "gone", &error));
  g_assert_no_error (error);
  g_assert_false (g_file_test (dir, G_FILE_TEST_EXISTS));
  /* Deleting twice is fine. */
  g_assert_true (bg_state_store_delete (f->store, "gone", &error));
  g_assert_false (bg_state_store_delete (f->store, "../etc", &error));
  g_assert_error (error, BG_ERROR, BG_ERROR_INVALID_ARGUMENT);
}

static BgVmRecord *
touch_record (BgVmRecord *r, gpointer data, GError **error)
{
  if (r == NULL)
    {
      r = bg_vm_record_new ("shared");
      r->state = BG_VM_RUNNING;
    }
  return r;
}

#define N_WRITERS 8
#define N_UPDATES 40

static void
test_state_parallel_writers_lose_nothing (Fixture *f, gconstpointer data)
{
  pid_t pids[N_WRITERS + 2];
  g_autoptr(GError) error = NULL;
  g_autoptr(BgVmRecord) final = NULL;
  g_autoptr(GDir) dir = NULL;
  g_autofree char *vm_dir = g_build_filename (f->tmp, "shared", NULL);
  const char *entry;

  /* Writers: read-modify-write under the lock, half of them durable and
   * half only consistent (as vm up saves the record it had just made),
   * both atomic. Readers: load without the lock while the writers run,
   * and must never see a torn file. */
  for (guint i = 0; i < G_N_ELEMENTS (pids); i++)
    {
      pids[i] = fork ();
      g_assert_cmpint (pids[i], >=, 0);
      if (pids[i] == 0)
        {
          BgStateStore *store = bg_state_store_new (f->tmp);
          int status = 0;

          if (i < N_WRITERS)
            {
              for (int n = 0; n < N_UPDATES; n++)
                if (!bg_state_store_update_full (store, "shared", touch_record, NULL,
                                                 i % 2 ? BG_STATE_WRITE_CONSISTENT : BG_STATE_WRITE_DURABLE, NULL))
                  status = 1;
            }
          else
            {
              for (int n = 0; n < N_UPDATES * 4; n++)
                {
                  GError *e = NULL;
                  BgVmRecord *r = bg_state_store_load (store, "shared", &e);
                  if (r == NULL && !g_error_matches (e, BG_ERROR, BG_ERROR_NOT_FOUND))
                    status = 2;
                  g_clear_error (&e);
                  bg_vm_record_free (r);
                }
            }
          _exit (status);
        }
    }

  for (guint i = 0; i < G_N_ELEMENTS (pids); i++)
    {
      int status;
      g_assert_cmpint (waitpid (pids[i], &status, 0), ==, pids[i]);
      bg_assert_exited (status, 0);
    }

  final = bg_state_store_load (f->store, "shared", &error);
  g_assert_no_error (error);
  /* Every locked update counted once: none was lost. */
  g_assert_cmpint (final->generation, ==, N_WRITERS * N_UPDATES);

  /* No temp files left behind by the atomic writes. */
  dir = g_dir_open (vm_dir, 0, NULL);
  while ((entry = g_dir_read_name (dir)) != NULL)
    g_assert_cmpstr (entry, ==, "vm.json");
}

static BgVmRecord *
refuse_update (BgVmRecord *r, gpointer data, GError **error)
{
  g_set_error_literal (error, BG_ERROR, BG_ERROR_BUSY, "not now");
  return NULL;
}

static void
test_state_update_abort_keeps_record (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BgVmRecord) r = bg_vm_record_new ("keep");
  g_autoptr(BgVmRecord) back = NULL;

  r->generation = 41;
  g_assert_true (bg_state_store_save (f->store, r, NULL));
  g_assert_false (bg_state_store_update (f->store, "keep", refuse_update, NULL, &error));
  g_assert_error (error, BG_ERROR, BG_ERROR_BUSY);
  back = bg_state_store_load (f->store, "keep", NULL);
  g_assert_cmpint (back->generation, ==, 41);
}

/* A batch syncs what it names, in its thread or in place, and says which
 * path it could not: gone, or a link (never followed). */
static void
test_state_fsync_batch (Fixture *f, gconstpointer data)
{
  g_autofree char *file = g_build_filename (f->tmp, "drive.img", NULL);
  g_autofree char *gone = g_build_filename (f->tmp, "gone", NULL);
  g_autofree char *link = g_build_filename (f->tmp, "link", NULL);
  g_autoptr(GError) error = NULL;

  g_assert_true (bg_file_replace_full (file, "bytes", -1, 0600, BG_FILE_NO_SYNC, &error));
  g_assert_no_error (error);
  {
    g_autoptr(BgFsyncBatch) batch = bg_fsync_batch_new ();
    bg_fsync_batch_add (batch, file);
    bg_fsync_batch_add (batch, f->tmp);
    bg_fsync_batch_add (batch, file);
    bg_fsync_batch_start (batch);
    g_assert_true (bg_fsync_batch_finish (batch, &error));
    g_assert_no_error (error);
    /* Once: asking again answers the same. */
    g_assert_true (bg_fsync_batch_finish (batch, NULL));
  }
  {
    g_autoptr(BgFsyncBatch) batch = bg_fsync_batch_new ();
    bg_fsync_batch_add (batch, file);
    g_assert_true (bg_fsync_batch_finish (batch, &error));
  }
  {
    g_autoptr(BgFsyncBatch) batch = bg_fsync_batch_new ();
    bg_fsync_batch_add (batch, gone);
    bg_fsync_batch_start (batch);
    g_assert_false (bg_fsync_batch_finish (batch, &error));
    g_assert_error (error, BG_ERROR, BG_ERROR_FAILED);
    g_assert_nonnull (strstr (error->message, gone));
    g_clear_error (&error);
    g_assert_false (bg_fsync_batch_finish (batch, NULL));
  }
  g_assert_no_errno (symlink (file, link));
  {
    g_autoptr(BgFsyncBatch) batch = bg_fsync_batch_new ();
    bg_fsync_batch_add (batch, link);
    g_assert_false (bg_fsync_batch_finish (batch, &error));
    g_assert_nonnull (strstr (error->message, link));
  }
  /* Freed while running: joined, not left behind. */
  {
    BgFsyncBatch *batch = bg_fsync_batch_new ();
    bg_fsync_batch_add (batch, file);
    bg_fsync_batch_start (batch);
    bg_fsync_batch_free (batch);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("/state/round-trip", test_state_round_trip);
  ADD ("/state/missing-is-not-found", test_state_missing_is_not_found);
  ADD ("/state/corrupt-files-name-the-file", test_state_corrupt_files_name_the_file);
  ADD ("/state/never-written", test_state_never_written);
  ADD ("/state/odd-files-are-refused", test_state_odd_files_are_refused);
  ADD ("/state/list-skips-corrupt-and-reports", test_state_list_skips_corrupt_and_reports);
  ADD ("/state/delete", test_state_delete);
  ADD ("/state/parallel-writers-lose-nothing", test_state_parallel_writers_lose_nothing);
  ADD ("/state/update-abort-keeps-record", test_state_update_abort_keeps_record);
  ADD ("/state/fsync-batch", test_state_fsync_batch);
  return g_test_run ();
}
