/* The guest agent's pieces that need no guest: the protocol codec against
 * broken frames and a mutation fuzzer, the passwd reader, and that the
 * agent is a static program. */
#include <elf.h>
#include <string.h>
#include <sys/resource.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "bg-agent-proto.h"
#include "bg-passwd.h"

/* Builds a frame by hand, so that broken ones can be made. */
static GByteArray *
raw_frame (guint32 len, guint16 type, guint16 reserved, guint32 session)
{
  GByteArray *b = g_byte_array_new ();
  guint8 h[12] = {
    len >> 24, len >> 16, len >> 8, len, type >> 8, type, reserved >> 8, reserved,
    session >> 24, session >> 16, session >> 8, session,
  };

  g_byte_array_append (b, h, sizeof h);
  return b;
}

static void
raw_field (GByteArray *b, guint16 tag, guint32 len, const void *value, gsize have)
{
  guint8 f[6] = { tag >> 8, tag, len >> 24, len >> 16, len >> 8, len };

  g_byte_array_append (b, f, sizeof f);
  if (have)
    g_byte_array_append (b, value, have);
}

static void
raw_u32 (GByteArray *b, guint16 tag, guint32 v)
{
  guint8 x[4] = { v >> 24, v >> 16, v >> 8, v };

  raw_field (b, tag, 4, x, 4);
}

static void
fix_length (GByteArray *b)
{
  guint32 len = b->len - 12;

  b->data[0] = len >> 24;
  b->data[1] = len >> 16;
  b->data[2] = len >> 8;
  b->data[3] = len;
}

/* Parses and decodes @b as one frame; returns the decoder's verdict. */
static int
decode (const guint8 *data, gsize len)
{
  BgAgentFrame frame;
  BgAgentMsg msg;
  gsize used = 0;
  int r = bg_agent_frame_parse (data, len, &frame, &used);

  if (r <= 0)
    return r;
  g_assert_cmpuint (used, <=, len);
  r = bg_agent_msg_decode (&frame, &msg);
  if (r > 0)
    {
      /* Whatever decodes stays within the documented limits. */
      g_assert_cmpuint (msg.argc, <=, BG_AGENT_MAX_ARGS);
      g_assert_cmpuint (msg.envc, <=, BG_AGENT_MAX_ARGS);
      g_assert_cmpuint (msg.nbytes, <=, BG_AGENT_MAX_DATA);
      g_assert_true (msg.cwd == NULL || (msg.cwd[0] == '/' && strlen (msg.cwd) <= BG_AGENT_MAX_PATH));
      g_assert_true (msg.user == NULL || strlen (msg.user) <= BG_AGENT_MAX_NAME);
      g_assert_true (msg.path == NULL || strlen (msg.path) <= BG_AGENT_MAX_PATH);
      /* A NAME that decodes is one component: never a way out. */
      g_assert_true (msg.name == NULL || (bg_agent_name_is_safe (msg.name) && strlen (msg.name) < BG_AGENT_MAX_NAME));
      g_assert_cmpuint (msg.mode, <=, 07777);
      if (msg.argv)
        g_assert_null (msg.argv[msg.argc]);
      bg_agent_msg_clear (&msg);
    }
  return r;
}

static void
test_round_trip_exec (void)
{
  BgAgentBuf buf;
  BgAgentFrame frame;
  BgAgentMsg msg;
  gsize used;

  bg_agent_buf_init (&buf);
  bg_agent_buf_begin (&buf, BG_AGENT_EXEC, 9);
  bg_agent_put_str (&buf, BG_AGENT_F_ARG, "ls");
  bg_agent_put_str (&buf, BG_AGENT_F_ARG, "");
  bg_agent_put_str (&buf, BG_AGENT_F_ARG, "-l");
  bg_agent_put_str (&buf, BG_AGENT_F_ENV, "A=b=c");
  bg_agent_put_str (&buf, BG_AGENT_F_CWD, "/tmp");
  bg_agent_put_str (&buf, BG_AGENT_F_USER, "dev");
  bg_agent_put_u32 (&buf, BG_AGENT_F_PTY, 1);
  bg_agent_put_u32 (&buf, BG_AGENT_F_ROWS, 50);
  bg_agent_put_u32 (&buf, BG_AGENT_F_COLS, 132);
  g_assert_cmpint (bg_agent_buf_end (&buf), ==, 0);

  g_assert_cmpint (bg_agent_frame_parse (buf.data, buf.len - 1, &frame, &used), ==, 0);
  g_assert_cmpint (bg_agent_frame_parse (buf.data, buf.len, &frame, &used), ==, 1);
  g_assert_cmpuint (used, ==, buf.len);
  g_assert_cmpint (bg_agent_msg_decode (&frame, &msg), ==, 1);
  g_assert_cmpuint (msg.session, ==, 9);
  g_assert_cmpuint (msg.argc, ==, 3);
  g_assert_cmpstr (msg.argv[0], ==, "ls");
  g_assert_cmpstr (msg.argv[1], ==, "");
  g_assert_cmpstr (msg.argv[2], ==, "-l");
  g_assert_null (msg.argv[3]);
  g_assert_cmpuint (msg.envc, ==, 1);
  g_assert_cmpstr (msg.env[0], ==, "A=b=c");
  g_assert_cmpstr (msg.cwd, ==, "/tmp");
  g_assert_cmpstr (msg.user, ==, "dev");
  g_assert_cmpuint (msg.pty, ==, 1);
  g_assert_cmpuint (msg.rows, ==, 50);
  g_assert_cmpuint (msg.cols, ==, 132);
  g_assert_true (BG_AGENT_HAS (&msg, BG_AGENT_F_PTY));
  g_assert_false (BG_AGENT_HAS (&msg, BG_AGENT_F_STDIN));
  bg_agent_msg_clear (&msg);
  bg_agent_buf_free (&buf);
}

/* The encoder refuses what the decoder would refuse, and leaves the
 * buffer as it was: a caller never sends a frame the peer must reject. */
static void
test_encoder_refuses_bad_frames (void)
{
  BgAgentBuf buf;
  g_autofree char *huge = g_malloc (BG_AGENT_MAX_STRING + 2);
  guint8 data[BG_AGENT_MAX_DATA + 1] = { 0 };

  memset (huge, 'x', BG_AGENT_MAX_STRING + 1);
  huge[BG_AGENT_MAX_STRING + 1] = '\0';
  bg_agent_buf_init (&buf);
  bg_agent_buf_begin (&buf, BG_AGENT_HELLO, 0);
  bg_agent_put_u32 (&buf, BG_AGENT_F_VERSION, 1);
  g_assert_cmpint (bg_agent_buf_end (&buf), ==, 0);
  g_assert_cmpuint (buf.len, ==, 22);

  bg_agent_buf_begin (&buf, BG_AGENT_EXEC, 1);
  bg_agent_put_str (&buf, BG_AGENT_F_ARG, huge);
  g_assert_cmpint (bg_agent_buf_end (&buf), ==, BG_AGENT_E_VALUE);
  g_assert_cmpuint (buf.len, ==, 22);

  bg_agent_buf_begin (&buf, BG_AGENT_EXEC, 1);
  bg_agent_put_str (&buf, BG_AGENT_F_ARG, "true");
  bg_agent_put_str (&buf, BG_AGENT_F_CWD, "relative");
  g_assert_cmpint (bg_agent_buf_end (&buf), ==, BG_AGENT_E_VALUE);

  bg_agent_buf_begin (&buf, BG_AGENT_DATA, 1);
  bg_agent_put_u32 (&buf, BG_AGENT_F_STREAM, 1);
  bg_agent_put_bytes (&buf, BG_AGENT_F_BYTES, data, sizeof data);
  g_assert_cmpint (bg_agent_buf_end (&buf), ==, BG_AGENT_E_VALUE);

  bg_agent_buf_begin (&buf, BG_AGENT_EXEC, 0);
  bg_agent_put_str (&buf, BG_AGENT_F_ARG, "true");
  g_assert_cmpint (bg_agent_buf_end (&buf), ==, BG_AGENT_E_SESSION);

  /* Past the frame limit: many fields that are each fine. */
  bg_agent_buf_begin (&buf, BG_AGENT_EXEC, 1);
  for (int i = 0; i < 8; i++)
    bg_agent_put_str (&buf, BG_AGENT_F_ARG, huge + 2);
  g_assert_cmpint (bg_agent_buf_end (&buf), ==, BG_AGENT_E_LENGTH);
  g_assert_cmpuint (buf.len, ==, 22);
  bg_agent_buf_free (&buf);
}

typedef struct {
  const char *what;
  int         want;
  GByteArray *(*make) (void);
} BrokenCase;

static GByteArray *b_too_long (void) { return raw_frame (BG_AGENT_MAX_PAYLOAD + 1, BG_AGENT_DATA, 0, 1); }
static GByteArray *b_huge_len (void) { return raw_frame (0xffffffffu, BG_AGENT_HELLO, 0, 0); }
static GByteArray *b_type0 (void) { return raw_frame (0, 0, 0, 0); }
static GByteArray *b_type_big (void) { return raw_frame (0, BG_AGENT_TYPE_MAX + 1, 0, 0); }
static GByteArray *b_reserved (void) { return raw_frame (0, BG_AGENT_READY, 1, 0); }
static GByteArray *
b_field_past_end (void)
{
  GByteArray *b = raw_frame (0, BG_AGENT_HELLO, 0, 0);
  raw_field (b, BG_AGENT_F_VERSION, 100, "\0\0\0\1", 4);
  fix_length (b);
  return b;
}
static GByteArray *
b_field_header_cut (void)
{
  GByteArray *b = raw_frame (0, BG_AGENT_HELLO, 0, 0);
  raw_u32 (b, BG_AGENT_F_VERSION, 1);
  g_byte_array_append (b, (guint8 *) "\0\1\0", 3);
  fix_length (b);
  return b;
}
static GByteArray *
b_unknown_tag (void)
{
  GByteArray *b = raw_frame (0, BG_AGENT_HELLO, 0, 0);
  raw_u32 (b, BG_AGENT_F_VERSION, 1);
  raw_u32 (b, BG_AGENT_FIELD_MAX + 1, 1);
  fix_length (b);
  return b;
}
static GByteArray *
b_tag_not_allowed (void)
{
  GByteArray *b = raw_frame (0, BG_AGENT_HELLO, 0, 0);
  raw_u32 (b, BG_AGENT_F_VERSION, 1);
  raw_u32 (b, BG_AGENT_F_PID, 1);
  fix_length (b);
  return b;
}
static GByteArray *
b_u32_wrong_size (void)
{
  GByteArray *b = raw_frame (0, BG_AGENT_HELLO, 0, 0);
  raw_field (b, BG_AGENT_F_VERSION, 2, "\0\1", 2);
  fix_length (b);
  return b;
}
static GByteArray *
b_version_zero (void)
{
  GByteArray *b = raw_frame (0, BG_AGENT_HELLO, 0, 0);
  raw_u32 (b, BG_AGENT_F_VERSION, 0);
  fix_length (b);
  return b;
}
static GByteArray *
b_missing (void)
{
  GByteArray *b = raw_frame (0, BG_AGENT_HELLO, 0, 0);
  return b;
}
static GByteArray *
b_repeated (void)
{
  GByteArray *b = raw_frame (0, BG_AGENT_HELLO, 0, 0);
  raw_u32 (b, BG_AGENT_F_VERSION, 1);
  raw_u32 (b, BG_AGENT_F_VERSION, 1);
  fix_length (b);
  return b;
}
static GByteArray *
b_hello_with_session (void)
{
  GByteArray *b = raw_frame (0, BG_AGENT_HELLO, 0, 5);
  raw_u32 (b, BG_AGENT_F_VERSION, 1);
  fix_length (b);
  return b;
}
static GByteArray *
b_data_session0 (void)
{
  GByteArray *b = raw_frame (0, BG_AGENT_DATA, 0, 0);
  raw_u32 (b, BG_AGENT_F_STREAM, 1);
  raw_field (b, BG_AGENT_F_BYTES, 1, "x", 1);
  fix_length (b);
  return b;
}
static GByteArray *
b_nul_in_arg (void)
{
  GByteArray *b = raw_frame (0, BG_AGENT_EXEC, 0, 1);
  raw_field (b, BG_AGENT_F_ARG, 5, "ab\0cd", 5);
  fix_length (b);
  return b;
}
static GByteArray *
b_env_no_equals (void)
{
  GByteArray *b = raw_frame (0, BG_AGENT_EXEC, 0, 1);
  raw_field (b, BG_AGENT_F_ARG, 4, "true", 4);
  raw_field (b, BG_AGENT_F_ENV, 4, "PATH", 4);
  fix_length (b);
  return b;
}
static GByteArray *
b_env_empty_name (void)
{
  GByteArray *b = raw_frame (0, BG_AGENT_EXEC, 0, 1);
  raw_field (b, BG_AGENT_F_ARG, 4, "true", 4);
  raw_field (b, BG_AGENT_F_ENV, 3, "=ab", 3);
  fix_length (b);
  return b;
}
static GByteArray *
b_user_too_long (void)
{
  GByteArray *b = raw_frame (0, BG_AGENT_EXEC, 0, 1);
  g_autofree char *u = g_strnfill (BG_AGENT_MAX_NAME + 1, 'u');
  raw_field (b, BG_AGENT_F_ARG, 4, "true", 4);
  raw_field (b, BG_AGENT_F_USER, BG_AGENT_MAX_NAME + 1, u, BG_AGENT_MAX_NAME + 1);
  fix_length (b);
  return b;
}
static GByteArray *
b_exec_no_arg (void)
{
  GByteArray *b = raw_frame (0, BG_AGENT_EXEC, 0, 1);
  raw_field (b, BG_AGENT_F_CWD, 1, "/", 1);
  fix_length (b);
  return b;
}
static GByteArray *
b_stream_big (void)
{
  GByteArray *b = raw_frame (0, BG_AGENT_EOF, 0, 1);
  raw_u32 (b, BG_AGENT_F_STREAM, 3);
  fix_length (b);
  return b;
}
static GByteArray *
b_data_empty (void)
{
  GByteArray *b = raw_frame (0, BG_AGENT_DATA, 0, 1);
  raw_u32 (b, BG_AGENT_F_STREAM, 0);
  raw_field (b, BG_AGENT_F_BYTES, 0, NULL, 0);
  fix_length (b);
  return b;
}
static GByteArray *
b_signal_zero (void)
{
  GByteArray *b = raw_frame (0, BG_AGENT_SIGNAL, 0, 1);
  raw_u32 (b, BG_AGENT_F_SIGNAL, 0);
  fix_length (b);
  return b;
}
static GByteArray *
b_exit_both (void)
{
  GByteArray *b = raw_frame (0, BG_AGENT_EXIT, 0, 1);
  raw_u32 (b, BG_AGENT_F_CODE, 1);
  raw_u32 (b, BG_AGENT_F_SIGNAL, 9);
  fix_length (b);
  return b;
}
static GByteArray *
b_exit_neither (void)
{
  GByteArray *b = raw_frame (0, BG_AGENT_EXIT, 0, 1);
  return b;
}
static GByteArray *
b_code_big (void)
{
  GByteArray *b = raw_frame (0, BG_AGENT_EXIT, 0, 1);
  raw_u32 (b, BG_AGENT_F_CODE, 256);
  fix_length (b);
  return b;
}
static GByteArray *
b_mask_unknown (void)
{
  GByteArray *b = raw_frame (0, BG_AGENT_READY, 0, 0);
  raw_u32 (b, BG_AGENT_F_MASK, 0x10);
  fix_length (b);
  return b;
}
static GByteArray *
b_credit_zero (void)
{
  GByteArray *b = raw_frame (0, BG_AGENT_CREDIT, 0, 1);
  raw_u32 (b, BG_AGENT_F_STREAM, 1);
  raw_u32 (b, BG_AGENT_F_CREDIT, 0);
  fix_length (b);
  return b;
}

/* Version 2: file transfer. */
static GByteArray *
entry_with_name (const char *name, gsize len)
{
  GByteArray *b = raw_frame (0, BG_AGENT_ENTRY, 0, 1);
  raw_u32 (b, BG_AGENT_F_KIND, BG_AGENT_KIND_FILE);
  raw_field (b, BG_AGENT_F_NAME, (guint32) len, name, len);
  raw_u32 (b, BG_AGENT_F_MODE, 0644);
  fix_length (b);
  return b;
}
static GByteArray *b_name_climbs (void) { return entry_with_name ("../x", 4); }
static GByteArray *b_name_dotdot (void) { return entry_with_name ("..", 2); }
static GByteArray *b_name_dot (void) { return entry_with_name (".", 1); }
static GByteArray *b_name_slash (void) { return entry_with_name ("a/b", 3); }
static GByteArray *b_name_absolute (void) { return entry_with_name ("/etc", 4); }
static GByteArray *b_name_empty (void) { return entry_with_name ("", 0); }
static GByteArray *b_name_nul (void) { return entry_with_name ("a\0b", 3); }
static GByteArray *
b_name_too_long (void)
{
  g_autofree char *n = g_strnfill (BG_AGENT_MAX_NAME, 'n');
  return entry_with_name (n, BG_AGENT_MAX_NAME);
}
static GByteArray *
b_mode_big (void)
{
  GByteArray *b = raw_frame (0, BG_AGENT_ENTRY, 0, 1);
  raw_u32 (b, BG_AGENT_F_KIND, BG_AGENT_KIND_DIR);
  raw_u32 (b, BG_AGENT_F_MODE, 010000);
  fix_length (b);
  return b;
}
static GByteArray *
b_kind_big (void)
{
  GByteArray *b = raw_frame (0, BG_AGENT_ENTRY, 0, 1);
  raw_u32 (b, BG_AGENT_F_KIND, BG_AGENT_KIND_OTHER + 1);
  fix_length (b);
  return b;
}
static GByteArray *
b_mtime_short (void)
{
  GByteArray *b = raw_frame (0, BG_AGENT_ENTRY, 0, 1);
  raw_u32 (b, BG_AGENT_F_KIND, BG_AGENT_KIND_FILE);
  raw_u32 (b, BG_AGENT_F_MODE, 0644);
  raw_u32 (b, BG_AGENT_F_MTIME, 1);
  fix_length (b);
  return b;
}
static GByteArray *
b_file_no_mode (void)
{
  GByteArray *b = raw_frame (0, BG_AGENT_ENTRY, 0, 1);
  raw_u32 (b, BG_AGENT_F_KIND, BG_AGENT_KIND_FILE);
  fix_length (b);
  return b;
}
static GByteArray *
b_end_with_name (void)
{
  GByteArray *b = raw_frame (0, BG_AGENT_ENTRY, 0, 1);
  raw_u32 (b, BG_AGENT_F_KIND, BG_AGENT_KIND_END);
  raw_field (b, BG_AGENT_F_NAME, 1, "a", 1);
  fix_length (b);
  return b;
}
static GByteArray *
b_other_no_name (void)
{
  GByteArray *b = raw_frame (0, BG_AGENT_ENTRY, 0, 1);
  raw_u32 (b, BG_AGENT_F_KIND, BG_AGENT_KIND_OTHER);
  fix_length (b);
  return b;
}
static GByteArray *
b_put_no_path (void)
{
  GByteArray *b = raw_frame (0, BG_AGENT_PUT, 0, 1);
  raw_field (b, BG_AGENT_F_NAME, 1, "a", 1);
  fix_length (b);
  return b;
}
static GByteArray *
b_get_session0 (void)
{
  GByteArray *b = raw_frame (0, BG_AGENT_GET, 0, 0);
  raw_field (b, BG_AGENT_F_PATH, 1, "/", 1);
  fix_length (b);
  return b;
}
static GByteArray *
b_path_too_long (void)
{
  g_autofree char *p = g_strnfill (BG_AGENT_MAX_PATH + 1, 'p');
  GByteArray *b = raw_frame (0, BG_AGENT_GET, 0, 1);
  raw_field (b, BG_AGENT_F_PATH, BG_AGENT_MAX_PATH + 1, p, BG_AGENT_MAX_PATH + 1);
  fix_length (b);
  return b;
}
static GByteArray *
b_recursive_two (void)
{
  GByteArray *b = raw_frame (0, BG_AGENT_GET, 0, 1);
  raw_field (b, BG_AGENT_F_PATH, 1, "/", 1);
  raw_u32 (b, BG_AGENT_F_RECURSIVE, 2);
  fix_length (b);
  return b;
}

static void
test_broken_frames (void)
{
  static const BrokenCase cases[] = {
    { "payload longer than the limit", BG_AGENT_E_LENGTH, b_too_long },
    { "length 2^32-1", BG_AGENT_E_LENGTH, b_huge_len },
    { "type 0", BG_AGENT_E_TYPE, b_type0 },
    { "type past the last", BG_AGENT_E_TYPE, b_type_big },
    { "reserved bits", BG_AGENT_E_RESERVED, b_reserved },
    { "field longer than the payload", BG_AGENT_E_FIELD, b_field_past_end },
    { "field header cut", BG_AGENT_E_FIELD, b_field_header_cut },
    { "unknown tag", BG_AGENT_E_FIELD, b_unknown_tag },
    { "tag the type does not take", BG_AGENT_E_FIELD, b_tag_not_allowed },
    { "u32 of 2 bytes", BG_AGENT_E_VALUE, b_u32_wrong_size },
    { "version 0", BG_AGENT_E_VALUE, b_version_zero },
    { "hello without version", BG_AGENT_E_MISSING, b_missing },
    { "version twice", BG_AGENT_E_REPEATED, b_repeated },
    { "hello on a session", BG_AGENT_E_SESSION, b_hello_with_session },
    { "data on session 0", BG_AGENT_E_SESSION, b_data_session0 },
    { "NUL inside an argument", BG_AGENT_E_VALUE, b_nul_in_arg },
    { "env without =", BG_AGENT_E_VALUE, b_env_no_equals },
    { "env with an empty name", BG_AGENT_E_VALUE, b_env_empty_name },
    { "user over its limit", BG_AGENT_E_VALUE, b_user_too_long },
    { "exec without argv", BG_AGENT_E_MISSING, b_exec_no_arg },
    { "stream 3", BG_AGENT_E_VALUE, b_stream_big },
    { "empty data", BG_AGENT_E_VALUE, b_data_empty },
    { "signal 0", BG_AGENT_E_VALUE, b_signal_zero },
    { "exit with code and signal", BG_AGENT_E_MISSING, b_exit_both },
    { "exit with neither", BG_AGENT_E_MISSING, b_exit_neither },
    { "exit code 256", BG_AGENT_E_VALUE, b_code_big },
    { "unknown ready bit", BG_AGENT_E_VALUE, b_mask_unknown },
    { "credit 0", BG_AGENT_E_VALUE, b_credit_zero },
    { "name ../x", BG_AGENT_E_VALUE, b_name_climbs },
    { "name ..", BG_AGENT_E_VALUE, b_name_dotdot },
    { "name .", BG_AGENT_E_VALUE, b_name_dot },
    { "name with a slash", BG_AGENT_E_VALUE, b_name_slash },
    { "absolute name", BG_AGENT_E_VALUE, b_name_absolute },
    { "empty name", BG_AGENT_E_VALUE, b_name_empty },
    { "NUL inside a name", BG_AGENT_E_VALUE, b_name_nul },
    { "name over its limit", BG_AGENT_E_VALUE, b_name_too_long },
    { "mode with bits past 07777", BG_AGENT_E_VALUE, b_mode_big },
    { "kind past the last", BG_AGENT_E_VALUE, b_kind_big },
    { "mtime of 4 bytes", BG_AGENT_E_VALUE, b_mtime_short },
    { "file entry without a mode", BG_AGENT_E_MISSING, b_file_no_mode },
    { "directory end with a name", BG_AGENT_E_MISSING, b_end_with_name },
    { "skipped entry without a name", BG_AGENT_E_MISSING, b_other_no_name },
    { "put without a path", BG_AGENT_E_MISSING, b_put_no_path },
    { "get on session 0", BG_AGENT_E_SESSION, b_get_session0 },
    { "path over its limit", BG_AGENT_E_VALUE, b_path_too_long },
    { "recursive 2", BG_AGENT_E_VALUE, b_recursive_two },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GByteArray) b = cases[i].make ();
      int got;

      /* A header that is already invalid is refused before its payload
       * arrives: the decoder never waits to buffer an oversized frame. */
      if (cases[i].want == BG_AGENT_E_LENGTH)
        b->len = 12;
      got = decode (b->data, b->len);
      if (got != cases[i].want)
        g_error ("%s: got %d (%s), want %d (%s)", cases[i].what, got, bg_agent_strerror (got), cases[i].want,
                 bg_agent_strerror (cases[i].want));
    }
}

/* Valid frames of every type, as seeds for the mutations. */
static GPtrArray *
seeds (void)
{
  GPtrArray *all = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  BgAgentBuf buf;
  guint8 data[300];

  for (gsize i = 0; i < sizeof data; i++)
    data[i] = (guint8) i;
#define SEED(code) \
  G_STMT_START { bg_agent_buf_init (&buf); code; g_assert_cmpint (bg_agent_buf_end (&buf), ==, 0); \
                 g_ptr_array_add (all, g_bytes_new (buf.data, buf.len)); bg_agent_buf_free (&buf); } G_STMT_END
  SEED ((bg_agent_buf_begin (&buf, BG_AGENT_HELLO, 0), bg_agent_put_u32 (&buf, BG_AGENT_F_VERSION, 1)));
  SEED ((bg_agent_buf_begin (&buf, BG_AGENT_READY, 0), bg_agent_put_u32 (&buf, BG_AGENT_F_MASK, 7),
         bg_agent_put_u32 (&buf, BG_AGENT_F_TIMEOUT, 1000)));
  SEED ((bg_agent_buf_begin (&buf, BG_AGENT_EXEC, 3), bg_agent_put_str (&buf, BG_AGENT_F_ARG, "sh"),
         bg_agent_put_str (&buf, BG_AGENT_F_ARG, "-c"), bg_agent_put_str (&buf, BG_AGENT_F_ENV, "A=1"),
         bg_agent_put_str (&buf, BG_AGENT_F_CWD, "/root"), bg_agent_put_str (&buf, BG_AGENT_F_USER, "root"),
         bg_agent_put_u32 (&buf, BG_AGENT_F_PTY, 1), bg_agent_put_u32 (&buf, BG_AGENT_F_STDIN, 1)));
  SEED ((bg_agent_buf_begin (&buf, BG_AGENT_DATA, 3), bg_agent_put_u32 (&buf, BG_AGENT_F_STREAM, 1),
         bg_agent_put_bytes (&buf, BG_AGENT_F_BYTES, data, sizeof data)));
  SEED ((bg_agent_buf_begin (&buf, BG_AGENT_CREDIT, 3), bg_agent_put_u32 (&buf, BG_AGENT_F_STREAM, 1),
         bg_agent_put_u32 (&buf, BG_AGENT_F_CREDIT, 4096)));
  SEED ((bg_agent_buf_begin (&buf, BG_AGENT_RESIZE, 3), bg_agent_put_u32 (&buf, BG_AGENT_F_ROWS, 40),
         bg_agent_put_u32 (&buf, BG_AGENT_F_COLS, 100)));
  SEED ((bg_agent_buf_begin (&buf, BG_AGENT_EXIT, 3), bg_agent_put_u32 (&buf, BG_AGENT_F_SIGNAL, 9)));
  SEED ((bg_agent_buf_begin (&buf, BG_AGENT_ERROR, 0), bg_agent_put_str (&buf, BG_AGENT_F_MESSAGE, "no")));
  SEED ((bg_agent_buf_begin (&buf, BG_AGENT_PUT, 4), bg_agent_put_str (&buf, BG_AGENT_F_PATH, "/srv/x"),
         bg_agent_put_str (&buf, BG_AGENT_F_NAME, "x"), bg_agent_put_str (&buf, BG_AGENT_F_USER, "dev")));
  SEED ((bg_agent_buf_begin (&buf, BG_AGENT_GET, 5), bg_agent_put_str (&buf, BG_AGENT_F_PATH, "notes"),
         bg_agent_put_u32 (&buf, BG_AGENT_F_RECURSIVE, 1)));
  SEED ((bg_agent_buf_begin (&buf, BG_AGENT_ENTRY, 5), bg_agent_put_u32 (&buf, BG_AGENT_F_KIND, BG_AGENT_KIND_FILE),
         bg_agent_put_str (&buf, BG_AGENT_F_NAME, "a.txt"), bg_agent_put_u32 (&buf, BG_AGENT_F_MODE, 0644),
         bg_agent_put_u64 (&buf, BG_AGENT_F_MTIME, 1700000000), bg_agent_put_u64 (&buf, BG_AGENT_F_SIZE, 1ull << 33)));
  SEED ((bg_agent_buf_begin (&buf, BG_AGENT_ENTRY, 5), bg_agent_put_u32 (&buf, BG_AGENT_F_KIND, BG_AGENT_KIND_END)));
#undef SEED
  return all;
}

/* A deterministic mutation fuzzer over the decoder: flips, overwrites
 * (biased to the length fields), truncations, splices and duplicated
 * fields of valid frames, fed whole and as a stream of frames. Under
 * ASan/UBSan any out-of-bounds read or overflow aborts; the checks in
 * decode() pin the limits; the peak RSS bounds memory. */
static void
test_fuzz_decoder (void)
{
  g_autoptr(GPtrArray) corpus = seeds ();
  g_autoptr(GRand) rand = g_rand_new_with_seed (0xba9e5);
  struct rusage before, after;
  guint accepted = 0, refused = 0;
  int iterations = g_test_slow () ? 2000000 : 200000;

  getrusage (RUSAGE_SELF, &before);
  for (int i = 0; i < iterations; i++)
    {
      GBytes *seed = corpus->pdata[g_rand_int_range (rand, 0, corpus->len)];
      gsize len;
      const guint8 *orig = g_bytes_get_data (seed, &len);
      g_autoptr(GByteArray) b = g_byte_array_sized_new (len + 64);
      int mutations = g_rand_int_range (rand, 1, 5);

      g_byte_array_append (b, orig, len);
      for (int m = 0; m < mutations; m++)
        {
          guint pos = b->len ? g_rand_int_range (rand, 0, b->len) : 0;

          switch (g_rand_int_range (rand, 0, 7))
            {
            case 0:
              if (b->len)
                b->data[pos] ^= 1u << g_rand_int_range (rand, 0, 8);
              break;
            case 1:
              if (b->len)
                b->data[pos] = (guint8) g_rand_int (rand);
              break;
            case 2:   /* a length: the frame's, or the first field's */
              {
                guint at = g_rand_boolean (rand) ? 0 : 14;
                guint32 v = g_rand_boolean (rand) ? g_rand_int (rand) : (guint32) g_rand_int_range (rand, 0, 600);

                if (b->len >= at + 4)
                  {
                    b->data[at] = v >> 24;
                    b->data[at + 1] = v >> 16;
                    b->data[at + 2] = v >> 8;
                    b->data[at + 3] = v;
                  }
              }
              break;
            case 3:
              g_byte_array_set_size (b, pos);
              break;
            case 4:   /* repeat a stretch (a field given twice) */
              if (b->len > 12 && b->len < 4096)
                {
                  guint from = g_rand_int_range (rand, 12, b->len);
                  guint n = MIN (b->len - from, (guint) g_rand_int_range (rand, 1, 40));
                  g_autofree guint8 *copy = g_memdup2 (b->data + from, n);

                  g_byte_array_append (b, copy, n);
                  fix_length (b);
                }
              break;
            case 5:
              if (b->len >= 6)
                b->data[4] = 0, b->data[5] = (guint8) g_rand_int_range (rand, 0, BG_AGENT_TYPE_MAX + 2);
              break;
            default:
              fix_length (b);
              break;
            }
        }
      if (decode (b->data, b->len) > 0)
        accepted++;
      else
        refused++;

      /* As a stream: split the buffer into as many frames as parse. */
      {
        gsize off = 0;
        BgAgentFrame frame;
        gsize used;

        while (off < b->len && bg_agent_frame_parse (b->data + off, b->len - off, &frame, &used) > 0)
          {
            g_assert_cmpuint (used, >=, BG_AGENT_HEADER_SIZE);
            decode (b->data + off, used);
            off += used;
          }
      }
    }
  getrusage (RUSAGE_SELF, &after);
  g_test_message ("%u mutated frames accepted, %u refused; peak RSS %ld KiB then %ld KiB", accepted, refused,
                  before.ru_maxrss, after.ru_maxrss);
  /* Both outcomes happen, or the fuzzer exercised nothing. */
  g_assert_cmpuint (accepted, >, 0);
  g_assert_cmpuint (refused, >, 0);
  /* No frame makes the decoder hold more than its own length, and
   * LeakSanitizer checks nothing stays at exit. The bound leaves room
   * for ASan's quarantine (256 MiB of freed blocks by default); a decoder
   * that kept or over-allocated per frame would pass it by far. */
  g_assert_cmpint (after.ru_maxrss - before.ru_maxrss, <, 384 * 1024);
}

static char *
write_root (const char *passwd, const char *group)
{
  g_autofree char *root = g_dir_make_tmp ("bg-passwd-XXXXXX", NULL);
  g_autofree char *etc = g_build_filename (root, "etc", NULL);
  g_autofree char *p = g_build_filename (etc, "passwd", NULL);
  g_autofree char *g = g_build_filename (etc, "group", NULL);

  g_assert_cmpint (g_mkdir (etc, 0755), ==, 0);
  g_assert_true (g_file_set_contents (p, passwd, -1, NULL));
  g_assert_true (g_file_set_contents (g, group, -1, NULL));
  return g_steal_pointer (&root);
}

static void
remove_root (const char *root)
{
  g_autofree char *etc = g_build_filename (root, "etc", NULL);
  g_autofree char *p = g_build_filename (etc, "passwd", NULL);
  g_autofree char *g = g_build_filename (etc, "group", NULL);

  g_unlink (p);
  g_unlink (g);
  g_rmdir (etc);
  g_rmdir (root);
}

static void
test_passwd_reader (void)
{
  g_autofree char *long_line = g_strnfill (10000, 'a');
  g_autofree char *passwd = g_strdup_printf (
    "root:x:0:0:root:/root:/bin/bash\n"
    "%s:x:5:5::/:/bin/sh\n"
    "broken:x:notanumber:1::/home/broken:/bin/sh\n"
    "short:x:7\n"
    "dev:x:1000:1000:Dev,,,:/home/dev:/bin/zsh\n"
    "nohome:x:1001:1001:::\n", long_line);
  g_autofree char *root = write_root (passwd,
                                      "root:x:0:\n"
                                      "wheel:x:10:root,dev\n"
                                      "docker:x:999:dev\n"
                                      "devs:x:1000:\n"
                                      "other:x:50:devx,xdev\n");
  BgPasswdUser u;

  g_assert_cmpint (bg_passwd_lookup (root, "dev", &u), ==, 0);
  g_assert_cmpuint (u.uid, ==, 1000);
  g_assert_cmpuint (u.gid, ==, 1000);
  g_assert_cmpstr (u.home, ==, "/home/dev");
  g_assert_cmpstr (u.shell, ==, "/bin/zsh");
  g_assert_cmpuint (u.ngroups, ==, 3);
  g_assert_cmpuint (u.groups[0], ==, 1000);
  g_assert_cmpuint (u.groups[1], ==, 10);
  g_assert_cmpuint (u.groups[2], ==, 999);

  g_assert_cmpint (bg_passwd_lookup (root, "1000", &u), ==, 0);
  g_assert_cmpstr (u.name, ==, "dev");

  g_assert_cmpint (bg_passwd_lookup (root, "nohome", &u), ==, 0);
  g_assert_cmpstr (u.home, ==, "/");
  g_assert_cmpstr (u.shell, ==, "/bin/sh");

  /* Malformed and over-long lines are skipped, never half-read. */
  g_assert_cmpint (bg_passwd_lookup (root, "broken", &u), ==, -1);
  g_assert_cmpint (bg_passwd_lookup (root, "short", &u), ==, -1);
  g_assert_cmpint (bg_passwd_lookup (root, "nobody-here", &u), ==, -1);

  /* A bare uid without an entry runs with that uid and group. */
  g_assert_cmpint (bg_passwd_lookup (root, "4242", &u), ==, 0);
  g_assert_cmpuint (u.uid, ==, 4242);
  g_assert_cmpuint (u.gid, ==, 4242);
  g_assert_cmpuint (u.ngroups, ==, 1);
  remove_root (root);
}

/* The agent runs in any root: no interpreter, no shared libraries. */
static void
test_agent_is_static (void)
{
  const char *path = g_getenv ("BANGER_AGENT");
  g_autofree char *data = NULL;
  gsize len;
  const Elf64_Ehdr *eh;

  g_assert_nonnull (path);
  g_assert_true (g_file_get_contents (path, &data, &len, NULL));
  g_assert_cmpuint (len, >=, sizeof *eh);
  eh = (const Elf64_Ehdr *) data;
  g_assert_cmpmem (eh->e_ident, SELFMAG, ELFMAG, SELFMAG);
  g_assert_cmpint (eh->e_ident[EI_CLASS], ==, ELFCLASS64);
  g_assert_cmpuint (eh->e_phoff + (guint64) eh->e_phnum * sizeof (Elf64_Phdr), <=, len);
  for (int i = 0; i < eh->e_phnum; i++)
    {
      const Elf64_Phdr *ph = (const Elf64_Phdr *) (data + eh->e_phoff) + i;

      g_assert_cmpuint (ph->p_type, !=, PT_INTERP);
      if (ph->p_type == PT_DYNAMIC)
        {
          g_assert_cmpuint (ph->p_offset + ph->p_filesz, <=, len);
          for (const Elf64_Dyn *d = (const Elf64_Dyn *) (data + ph->p_offset);
               (const char *) (d + 1) <= data + ph->p_offset + ph->p_filesz && d->d_tag != DT_NULL; d++)
            g_assert_cmpint (d->d_tag, !=, DT_NEEDED);
        }
    }
}

/* Version 2's frames survive a round trip, 64-bit sizes included; the
 * encoder refuses a NAME that is not one component, so neither end can
 * send what the other must refuse. */
static void
test_round_trip_entry (void)
{
  BgAgentBuf buf;
  BgAgentFrame frame;
  BgAgentMsg msg;
  gsize used;

  bg_agent_buf_init (&buf);
  bg_agent_buf_begin (&buf, BG_AGENT_ENTRY, 9);
  bg_agent_put_u32 (&buf, BG_AGENT_F_KIND, BG_AGENT_KIND_FILE);
  bg_agent_put_str (&buf, BG_AGENT_F_NAME, "big.img");
  bg_agent_put_u32 (&buf, BG_AGENT_F_MODE, 0640);
  bg_agent_put_u64 (&buf, BG_AGENT_F_MTIME, 1700000000);
  bg_agent_put_u64 (&buf, BG_AGENT_F_SIZE, (5ull << 32) + 7);
  g_assert_cmpint (bg_agent_buf_end (&buf), ==, 0);
  g_assert_cmpint (bg_agent_frame_parse (buf.data, buf.len, &frame, &used), ==, 1);
  g_assert_cmpint (bg_agent_msg_decode (&frame, &msg), ==, 1);
  g_assert_cmpuint (msg.kind, ==, BG_AGENT_KIND_FILE);
  g_assert_cmpstr (msg.name, ==, "big.img");
  g_assert_cmpuint (msg.mode, ==, 0640);
  g_assert_cmpuint (msg.mtime, ==, 1700000000);
  g_assert_cmpuint (msg.size, ==, (5ull << 32) + 7);
  bg_agent_msg_clear (&msg);

  bg_agent_buf_begin (&buf, BG_AGENT_ENTRY, 9);
  bg_agent_put_u32 (&buf, BG_AGENT_F_KIND, BG_AGENT_KIND_DIR);
  bg_agent_put_str (&buf, BG_AGENT_F_NAME, "../etc");
  bg_agent_put_u32 (&buf, BG_AGENT_F_MODE, 0755);
  g_assert_cmpint (bg_agent_buf_end (&buf), ==, BG_AGENT_E_VALUE);
  bg_agent_buf_free (&buf);

  g_assert_true (bg_agent_name_is_safe ("a..b"));
  g_assert_true (bg_agent_name_is_safe (".hidden"));
  g_assert_false (bg_agent_name_is_safe (""));
  g_assert_false (bg_agent_name_is_safe ("."));
  g_assert_false (bg_agent_name_is_safe (".."));
  g_assert_false (bg_agent_name_is_safe ("a/"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/agent/proto/round-trip-entry", test_round_trip_entry);
  g_test_add_func ("/agent/proto/round-trip-exec", test_round_trip_exec);
  g_test_add_func ("/agent/proto/encoder-refuses-bad-frames", test_encoder_refuses_bad_frames);
  g_test_add_func ("/agent/proto/broken-frames", test_broken_frames);
  g_test_add_func ("/agent/proto/fuzz-decoder", test_fuzz_decoder);
  g_test_add_func ("/agent/passwd-reader", test_passwd_reader);
  g_test_add_func ("/agent/is-static", test_agent_is_static);
  return g_test_run ();
}
