/* bg-agent-proto.c: the guest agent's codec (doc/agent-protocol.md).
 *
 * A frame is a 12-byte header (payload length u32, type u16, reserved
 * u16 = 0, session u32; all big-endian) and a payload of fields, each a
 * tag u16, a length u32 and the value. Every length is checked against
 * the bytes that are really there and against the limit of its field
 * before anything is copied; the decoder's allocations are bounded by
 * the frame's length, which is bounded by BG_AGENT_MAX_PAYLOAD. */
#include <stdlib.h>
#include <string.h>

#include "bg-agent-proto.h"

static uint32_t
get_u32 (const uint8_t *p)
{
  return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

static uint16_t
get_u16 (const uint8_t *p)
{
  return (uint16_t) (p[0] << 8 | p[1]);
}

static uint64_t
get_u64 (const uint8_t *p)
{
  return (uint64_t) get_u32 (p) << 32 | get_u32 (p + 4);
}

static void
set_u32 (uint8_t *p, uint32_t v)
{
  p[0] = v >> 24;
  p[1] = v >> 16;
  p[2] = v >> 8;
  p[3] = v;
}

static void
set_u16 (uint8_t *p, uint16_t v)
{
  p[0] = v >> 8;
  p[1] = v;
}

const char *
bg_agent_strerror (int err)
{
  switch (err)
    {
    case BG_AGENT_E_LENGTH: return "frame longer than the protocol allows";
    case BG_AGENT_E_TYPE: return "unknown frame type";
    case BG_AGENT_E_RESERVED: return "reserved header bits set";
    case BG_AGENT_E_FIELD: return "field runs past the frame or has an unknown tag";
    case BG_AGENT_E_VALUE: return "field value out of range or malformed";
    case BG_AGENT_E_MISSING: return "a required field is missing";
    case BG_AGENT_E_REPEATED: return "a single-valued field is repeated";
    case BG_AGENT_E_SESSION: return "wrong session for this frame type";
    case BG_AGENT_E_NOMEM: return "out of memory";
    default: return "no error";
    }
}

int
bg_agent_frame_parse (const uint8_t *buf,
                      size_t         len,
                      BgAgentFrame  *frame,
                      size_t        *consumed)
{
  uint32_t plen;
  uint16_t type;

  if (len < BG_AGENT_HEADER_SIZE)
    return 0;
  plen = get_u32 (buf);
  type = get_u16 (buf + 4);
  /* Checked before waiting for the payload: a peer cannot make us buffer
   * more than one maximal frame. */
  if (plen > BG_AGENT_MAX_PAYLOAD)
    return BG_AGENT_E_LENGTH;
  if (type == 0 || type > BG_AGENT_TYPE_MAX)
    return BG_AGENT_E_TYPE;
  if (get_u16 (buf + 6) != 0)
    return BG_AGENT_E_RESERVED;
  if (len - BG_AGENT_HEADER_SIZE < plen)
    return 0;
  frame->type = type;
  frame->session = get_u32 (buf + 8);
  frame->payload = buf + BG_AGENT_HEADER_SIZE;
  frame->len = plen;
  *consumed = BG_AGENT_HEADER_SIZE + (size_t) plen;
  return 1;
}

/* What each field is: its kind and, for numbers, the largest value. */
typedef enum { K_U32, K_STR, K_BYTES, K_U64 } Kind;
static const struct {
  Kind     kind;
  uint32_t max;      /* u32: largest value; str/bytes: longest */
  uint32_t min;      /* u32: smallest value; str/bytes: shortest */
} fields[BG_AGENT_FIELD_MAX + 1] = {
  [BG_AGENT_F_VERSION] = { K_U32, UINT32_MAX, 1 },
  [BG_AGENT_F_ARG]     = { K_STR, BG_AGENT_MAX_STRING, 0 },
  [BG_AGENT_F_ENV]     = { K_STR, BG_AGENT_MAX_STRING, 2 },
  [BG_AGENT_F_CWD]     = { K_STR, BG_AGENT_MAX_PATH, 1 },
  [BG_AGENT_F_USER]    = { K_STR, BG_AGENT_MAX_NAME, 1 },
  [BG_AGENT_F_PTY]     = { K_U32, 1, 0 },
  [BG_AGENT_F_ROWS]    = { K_U32, 65535, 0 },
  [BG_AGENT_F_COLS]    = { K_U32, 65535, 0 },
  [BG_AGENT_F_STREAM]  = { K_U32, BG_AGENT_STDERR, 0 },
  [BG_AGENT_F_BYTES]   = { K_BYTES, BG_AGENT_MAX_DATA, 1 },
  [BG_AGENT_F_CREDIT]  = { K_U32, 64u * BG_AGENT_WINDOW, 1 },
  [BG_AGENT_F_SIGNAL]  = { K_U32, 64, 1 },
  [BG_AGENT_F_CODE]    = { K_U32, 255, 0 },
  [BG_AGENT_F_PID]     = { K_U32, UINT32_MAX, 1 },
  [BG_AGENT_F_MESSAGE] = { K_STR, BG_AGENT_MAX_MESSAGE, 0 },
  [BG_AGENT_F_MASK]    = { K_U32, BG_AGENT_UP_KNOWN, 0 },
  [BG_AGENT_F_TIMEOUT] = { K_U32, 600000, 0 },
  [BG_AGENT_F_STDIN]   = { K_U32, 1, 0 },
  [BG_AGENT_F_PATH]    = { K_STR, BG_AGENT_MAX_PATH, 1 },
  [BG_AGENT_F_NAME]    = { K_STR, BG_AGENT_MAX_NAME - 1, 1 },
  [BG_AGENT_F_KIND]    = { K_U32, BG_AGENT_KIND_OTHER, BG_AGENT_KIND_FILE },
  [BG_AGENT_F_MODE]    = { K_U32, 07777, 0 },
  [BG_AGENT_F_MTIME]   = { K_U64, 0, 0 },
  [BG_AGENT_F_SIZE]    = { K_U64, 0, 0 },
  [BG_AGENT_F_RECURSIVE] = { K_U32, 1, 0 },
};

#define F(x) (1u << BG_AGENT_F_##x)
/* What each frame type may carry and must carry; the repeatable fields
 * (ARG, ENV) are the only ones allowed more than once. */
static const struct {
  uint32_t allowed;
  uint32_t required;
  int      session;   /* 0: must be 0; 1: must not be 0; -1: either */
} types[BG_AGENT_TYPE_MAX + 1] = {
  [BG_AGENT_HELLO]   = { F (VERSION), F (VERSION), 0 },
  [BG_AGENT_READY]   = { F (MASK) | F (TIMEOUT), 0, 0 },
  [BG_AGENT_EXEC]    = { F (ARG) | F (ENV) | F (CWD) | F (USER) | F (PTY) | F (ROWS) | F (COLS) | F (STDIN),
                         F (ARG), 1 },
  [BG_AGENT_STARTED] = { F (PID), F (PID), 1 },
  [BG_AGENT_DATA]    = { F (STREAM) | F (BYTES), F (STREAM) | F (BYTES), 1 },
  [BG_AGENT_EOF]     = { F (STREAM), F (STREAM), 1 },
  [BG_AGENT_CREDIT]  = { F (STREAM) | F (CREDIT), F (STREAM) | F (CREDIT), 1 },
  [BG_AGENT_RESIZE]  = { F (ROWS) | F (COLS), F (ROWS) | F (COLS), 1 },
  [BG_AGENT_SIGNAL]  = { F (SIGNAL), F (SIGNAL), 1 },
  [BG_AGENT_EXIT]    = { F (CODE) | F (SIGNAL), 0, 1 },
  [BG_AGENT_ERROR]   = { F (MESSAGE), F (MESSAGE), -1 },
  [BG_AGENT_PUT]     = { F (PATH) | F (NAME) | F (USER), F (PATH), 1 },
  [BG_AGENT_GET]     = { F (PATH) | F (USER) | F (RECURSIVE), F (PATH), 1 },
  [BG_AGENT_ENTRY]   = { F (KIND) | F (NAME) | F (MODE) | F (MTIME) | F (SIZE), F (KIND), 1 },
};
#define REPEATABLE (F (ARG) | F (ENV))

int
bg_agent_name_is_safe (const char *name)
{
  return name[0] != '\0' && strchr (name, '/') == NULL && strcmp (name, ".") != 0 && strcmp (name, "..") != 0;
}

static char *
copy_string (const uint8_t *p, uint32_t n)
{
  char *s;

  /* A NUL inside would silently cut an argument short. */
  if (memchr (p, '\0', n) != NULL)
    return NULL;
  s = malloc ((size_t) n + 1);
  if (s == NULL)
    return NULL;
  memcpy (s, p, n);
  s[n] = '\0';
  return s;
}

static int
append (char ***list, uint32_t *count, char *s)
{
  char **grown;

  if (*count >= BG_AGENT_MAX_ARGS)
    {
      free (s);
      return BG_AGENT_E_VALUE;
    }
  grown = realloc (*list, ((size_t) *count + 2) * sizeof (char *));
  if (grown == NULL)
    {
      free (s);
      return BG_AGENT_E_NOMEM;
    }
  grown[(*count)++] = s;
  grown[*count] = NULL;
  *list = grown;
  return 0;
}

static int
take_field (BgAgentMsg *msg, uint16_t tag, const uint8_t *v, uint32_t n)
{
  char *s = NULL;

  if (fields[tag].kind == K_U32)
    {
      uint32_t x;

      if (n != 4)
        return BG_AGENT_E_VALUE;
      x = get_u32 (v);
      if (x < fields[tag].min || x > fields[tag].max)
        return BG_AGENT_E_VALUE;
      switch (tag)
        {
        case BG_AGENT_F_VERSION: msg->version = x; break;
        case BG_AGENT_F_PTY: msg->pty = x; break;
        case BG_AGENT_F_ROWS: msg->rows = x; break;
        case BG_AGENT_F_COLS: msg->cols = x; break;
        case BG_AGENT_F_STREAM: msg->stream = x; break;
        case BG_AGENT_F_CREDIT: msg->credit = x; break;
        case BG_AGENT_F_SIGNAL: msg->signo = x; break;
        case BG_AGENT_F_CODE: msg->code = x; break;
        case BG_AGENT_F_PID: msg->pid = x; break;
        case BG_AGENT_F_MASK: msg->mask = x; break;
        case BG_AGENT_F_TIMEOUT: msg->timeout_ms = x; break;
        case BG_AGENT_F_STDIN: msg->stdin_open = x; break;
        case BG_AGENT_F_KIND: msg->kind = x; break;
        case BG_AGENT_F_MODE: msg->mode = x; break;
        case BG_AGENT_F_RECURSIVE: msg->recursive = x; break;
        default: return BG_AGENT_E_FIELD;
        }
      return 0;
    }
  if (fields[tag].kind == K_U64)
    {
      if (n != 8)
        return BG_AGENT_E_VALUE;
      if (tag == BG_AGENT_F_MTIME)
        msg->mtime = get_u64 (v);
      else
        msg->size = get_u64 (v);
      return 0;
    }
  if (n < fields[tag].min || n > fields[tag].max)
    return BG_AGENT_E_VALUE;
  if (fields[tag].kind == K_BYTES)
    {
      msg->bytes = v;
      msg->nbytes = n;
      return 0;
    }
  if ((s = copy_string (v, n)) == NULL)
    return memchr (v, '\0', n) ? BG_AGENT_E_VALUE : BG_AGENT_E_NOMEM;
  switch (tag)
    {
    case BG_AGENT_F_ARG:
      return append (&msg->argv, &msg->argc, s);
    case BG_AGENT_F_ENV:
      /* NAME=VALUE with a non-empty name. */
      if (s[0] == '=' || strchr (s, '=') == NULL)
        {
          free (s);
          return BG_AGENT_E_VALUE;
        }
      return append (&msg->env, &msg->envc, s);
    case BG_AGENT_F_CWD:
      if (s[0] != '/')
        {
          free (s);
          return BG_AGENT_E_VALUE;
        }
      msg->cwd = s;
      return 0;
    case BG_AGENT_F_USER: msg->user = s; return 0;
    case BG_AGENT_F_MESSAGE: msg->message = s; return 0;
    case BG_AGENT_F_PATH: msg->path = s; return 0;
    case BG_AGENT_F_NAME:
      /* A name is one component: never a way out of the directory it
       * is written in. */
      if (!bg_agent_name_is_safe (s))
        {
          free (s);
          return BG_AGENT_E_VALUE;
        }
      msg->name = s;
      return 0;
    default:
      free (s);
      return BG_AGENT_E_FIELD;
    }
}

int
bg_agent_msg_decode (const BgAgentFrame *frame,
                     BgAgentMsg         *msg)
{
  const uint8_t *p = frame->payload;
  uint32_t left = frame->len;
  int r;

  memset (msg, 0, sizeof *msg);
  if (frame->type == 0 || frame->type > BG_AGENT_TYPE_MAX)
    return BG_AGENT_E_TYPE;
  msg->type = frame->type;
  msg->session = frame->session;
  if ((types[frame->type].session == 0 && frame->session != 0) ||
      (types[frame->type].session == 1 && frame->session == 0))
    return BG_AGENT_E_SESSION;

  while (left > 0)
    {
      uint16_t tag;
      uint32_t n;

      if (left < 6)
        { r = BG_AGENT_E_FIELD; goto fail; }
      tag = get_u16 (p);
      n = get_u32 (p + 2);
      p += 6;
      left -= 6;
      if (n > left)
        { r = BG_AGENT_E_FIELD; goto fail; }
      if (tag == 0 || tag > BG_AGENT_FIELD_MAX || !(types[frame->type].allowed & (1u << tag)))
        { r = BG_AGENT_E_FIELD; goto fail; }
      if ((msg->have & (1u << tag)) && !(REPEATABLE & (1u << tag)))
        { r = BG_AGENT_E_REPEATED; goto fail; }
      if ((r = take_field (msg, tag, p, n)) < 0)
        goto fail;
      msg->have |= 1u << tag;
      p += n;
      left -= n;
    }
  if ((msg->have & types[frame->type].required) != types[frame->type].required)
    { r = BG_AGENT_E_MISSING; goto fail; }
  /* An exit is either a code or a signal, never both or neither. */
  if (frame->type == BG_AGENT_EXIT &&
      BG_AGENT_HAS (msg, BG_AGENT_F_CODE) == BG_AGENT_HAS (msg, BG_AGENT_F_SIGNAL))
    { r = BG_AGENT_E_MISSING; goto fail; }
  /* A file or a directory carries its mode; a directory's end carries
   * nothing else. */
  if (frame->type == BG_AGENT_ENTRY &&
      (((msg->kind == BG_AGENT_KIND_FILE || msg->kind == BG_AGENT_KIND_DIR) && !BG_AGENT_HAS (msg, BG_AGENT_F_MODE)) ||
       (msg->kind == BG_AGENT_KIND_END && msg->have != (1u << BG_AGENT_F_KIND)) ||
       (msg->kind == BG_AGENT_KIND_OTHER && !BG_AGENT_HAS (msg, BG_AGENT_F_NAME))))
    { r = BG_AGENT_E_MISSING; goto fail; }
  /* The host only ever writes stdin; the agent only stdout and stderr:
   * checked by each end, which knows its side. */
  return 1;

fail:
  bg_agent_msg_clear (msg);
  return r;
}

static void
free_list (char **list)
{
  if (list == NULL)
    return;
  for (char **p = list; *p; p++)
    free (*p);
  free (list);
}

void
bg_agent_msg_clear (BgAgentMsg *msg)
{
  free_list (msg->argv);
  free_list (msg->env);
  free (msg->cwd);
  free (msg->user);
  free (msg->message);
  free (msg->path);
  free (msg->name);
  memset (msg, 0, sizeof *msg);
}

void
bg_agent_buf_init (BgAgentBuf *buf)
{
  memset (buf, 0, sizeof *buf);
}

void
bg_agent_buf_free (BgAgentBuf *buf)
{
  free (buf->data);
  memset (buf, 0, sizeof *buf);
}

void
bg_agent_buf_consume (BgAgentBuf *buf,
                      size_t      n)
{
  if (n >= buf->len)
    {
      buf->len = 0;
      return;
    }
  memmove (buf->data, buf->data + n, buf->len - n);
  buf->len -= n;
}

static uint8_t *
reserve (BgAgentBuf *buf, size_t n)
{
  if (buf->failed)
    return NULL;
  if (buf->len - buf->frame_start + n > BG_AGENT_HEADER_SIZE + (size_t) BG_AGENT_MAX_PAYLOAD)
    {
      buf->failed = BG_AGENT_E_LENGTH;
      return NULL;
    }
  if (buf->len + n > buf->cap)
    {
      size_t cap = buf->cap ? buf->cap : 4096;
      uint8_t *grown;

      while (cap < buf->len + n)
        cap *= 2;
      if ((grown = realloc (buf->data, cap)) == NULL)
        {
          buf->failed = BG_AGENT_E_NOMEM;
          return NULL;
        }
      buf->data = grown;
      buf->cap = cap;
    }
  buf->len += n;
  return buf->data + buf->len - n;
}

void
bg_agent_buf_begin (BgAgentBuf *buf,
                    BgAgentType type,
                    uint32_t    session)
{
  uint8_t *h;

  buf->failed = 0;
  buf->frame_start = buf->len;
  if ((h = reserve (buf, BG_AGENT_HEADER_SIZE)) == NULL)
    return;
  set_u32 (h, 0);
  set_u16 (h + 4, type);
  set_u16 (h + 6, 0);
  set_u32 (h + 8, session);
}

static void
put_field (BgAgentBuf *buf, BgAgentField tag, const void *data, size_t len)
{
  uint8_t *p;

  if (len > BG_AGENT_MAX_PAYLOAD)
    {
      buf->failed = BG_AGENT_E_LENGTH;
      return;
    }
  if ((p = reserve (buf, 6 + len)) == NULL)
    return;
  set_u16 (p, tag);
  set_u32 (p + 2, (uint32_t) len);
  if (len)
    memcpy (p + 6, data, len);
}

void
bg_agent_put_u32 (BgAgentBuf  *buf,
                  BgAgentField tag,
                  uint32_t     value)
{
  uint8_t v[4];

  set_u32 (v, value);
  put_field (buf, tag, v, 4);
}

void
bg_agent_put_u64 (BgAgentBuf  *buf,
                  BgAgentField tag,
                  uint64_t     value)
{
  uint8_t v[8];

  set_u32 (v, (uint32_t) (value >> 32));
  set_u32 (v + 4, (uint32_t) value);
  put_field (buf, tag, v, 8);
}

void
bg_agent_put_str (BgAgentBuf  *buf,
                  BgAgentField tag,
                  const char  *value)
{
  put_field (buf, tag, value, strlen (value));
}

void
bg_agent_put_bytes (BgAgentBuf  *buf,
                    BgAgentField tag,
                    const void  *data,
                    size_t       len)
{
  put_field (buf, tag, data, len);
}

/* Closes the frame begun last: fills in its length, and checks it by
 * decoding it, so that neither end ever sends what the other must
 * refuse (an over-long argument, a NUL in a string). */
int
bg_agent_buf_end (BgAgentBuf *buf)
{
  BgAgentFrame frame;
  BgAgentMsg msg;
  size_t consumed;
  int r;

  if (buf->failed)
    {
      r = buf->failed;
      buf->len = buf->frame_start;
      buf->failed = 0;
      return r;
    }
  set_u32 (buf->data + buf->frame_start, (uint32_t) (buf->len - buf->frame_start - BG_AGENT_HEADER_SIZE));
  r = bg_agent_frame_parse (buf->data + buf->frame_start, buf->len - buf->frame_start, &frame, &consumed);
  if (r > 0)
    r = bg_agent_msg_decode (&frame, &msg);
  if (r <= 0)
    {
      buf->len = buf->frame_start;
      return r < 0 ? r : BG_AGENT_E_LENGTH;
    }
  bg_agent_msg_clear (&msg);
  return 0;
}
