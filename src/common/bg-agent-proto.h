/* bg-agent-proto.h: the guest agent's wire protocol (doc/agent-protocol.md),
 * one codec for both ends. Plain C, libc only: it is compiled into the
 * static banger-agent as well as into the CLI. Nothing here allocates
 * more than a frame's declared (and bounded) length. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BG_AGENT_VERSION        2u      /* the newest this code speaks */
#define BG_AGENT_VERSION_FILES  2u      /* PUT, GET and ENTRY (file transfer) came with 2 */
#define BG_AGENT_VSOCK_PORT     52u     /* the agent's port on the guest's vsock */
#define BG_AGENT_SERIAL_NAME    "org.banger.agent"  /* virtio-serial port name */

#define BG_AGENT_HEADER_SIZE    12u
#define BG_AGENT_MAX_PAYLOAD    (256u * 1024u)  /* one frame's payload, at most */
#define BG_AGENT_MAX_DATA       (32u * 1024u)   /* bytes in one DATA frame */
#define BG_AGENT_MAX_STRING     (64u * 1024u)   /* one argument or variable */
#define BG_AGENT_MAX_PATH       4096u
#define BG_AGENT_MAX_NAME       256u            /* user names, messages' short fields */
#define BG_AGENT_MAX_MESSAGE    1024u
#define BG_AGENT_MAX_ARGS       4096u           /* argv or env entries */
#define BG_AGENT_WINDOW         (256u * 1024u)  /* each stream's initial credit */
#define BG_AGENT_MAX_SESSIONS   64u             /* open sessions per connection */
#define BG_AGENT_MAX_DEPTH      128u            /* directory levels in one transfer */

typedef enum {
  BG_AGENT_HELLO  = 1,   /* both ways: version */
  BG_AGENT_READY  = 2,   /* host asks (wait mask, timeout); agent answers (up mask) */
  BG_AGENT_EXEC   = 3,   /* host: start a session */
  BG_AGENT_STARTED = 4,  /* agent: the session's process runs (pid) */
  BG_AGENT_DATA   = 5,   /* both ways: bytes of one stream */
  BG_AGENT_EOF    = 6,   /* both ways: a stream ended */
  BG_AGENT_CREDIT = 7,   /* both ways: the receiver grants more bytes of a stream */
  BG_AGENT_RESIZE = 8,   /* host: a PTY's window size */
  BG_AGENT_SIGNAL = 9,   /* host: deliver a signal to the session's process */
  BG_AGENT_EXIT   = 10,  /* agent: the process ended (code or signal) */
  BG_AGENT_ERROR  = 11,  /* both ways: a refusal; session 0 ends the connection */
  /* version 2: file transfer */
  BG_AGENT_PUT    = 12,  /* host: files into the guest follow as ENTRY frames */
  BG_AGENT_GET    = 13,  /* host: asks for a guest path; ENTRY frames answer */
  BG_AGENT_ENTRY  = 14,  /* both ways: a file, a directory or a directory's end */
} BgAgentType;
#define BG_AGENT_TYPE_MAX 14

/* ENTRY's KIND. */
typedef enum {
  BG_AGENT_KIND_FILE  = 1,   /* DATA and an EOF follow */
  BG_AGENT_KIND_DIR   = 2,   /* the entries inside follow, then END */
  BG_AGENT_KIND_END   = 3,   /* the directory opened last is complete */
  BG_AGENT_KIND_OTHER = 4,   /* neither (a device, a socket, a link to a directory): skipped */
} BgAgentKind;

typedef enum {
  BG_AGENT_STDIN  = 0,
  BG_AGENT_STDOUT = 1,
  BG_AGENT_STDERR = 2,
} BgAgentStream;

/* What READY reports as up (and what the host may ask to wait for). */
#define BG_AGENT_UP_AGENT    0x1u
#define BG_AGENT_UP_NETWORK  0x2u
#define BG_AGENT_UP_SSHD     0x4u   /* sshd listens on port 22 */
#define BG_AGENT_HAS_SSHD    0x8u   /* the guest has an sshd at all */
#define BG_AGENT_UP_KNOWN    0xfu

/* Whether @name may name an entry inside a directory: one component,
 * not empty, no '/', not "." or "..". Both ends check every NAME with
 * it; the host also opens it beneath its directory (RESOLVE_BENEATH). */
int bg_agent_name_is_safe (const char *name);

/* Field tags inside a frame's payload. */
typedef enum {
  BG_AGENT_F_VERSION = 1,  /* u32 */
  BG_AGENT_F_ARG     = 2,  /* string, repeated: argv */
  BG_AGENT_F_ENV     = 3,  /* string "K=V", repeated */
  BG_AGENT_F_CWD     = 4,  /* string, absolute path */
  BG_AGENT_F_USER    = 5,  /* string: name or decimal uid */
  BG_AGENT_F_PTY     = 6,  /* u32 0/1 */
  BG_AGENT_F_ROWS    = 7,  /* u32 */
  BG_AGENT_F_COLS    = 8,  /* u32 */
  BG_AGENT_F_STREAM  = 9,  /* u32 BgAgentStream */
  BG_AGENT_F_BYTES   = 10, /* bytes */
  BG_AGENT_F_CREDIT  = 11, /* u32 */
  BG_AGENT_F_SIGNAL  = 12, /* u32 */
  BG_AGENT_F_CODE    = 13, /* u32 exit code */
  BG_AGENT_F_PID     = 14, /* u32 */
  BG_AGENT_F_MESSAGE = 15, /* string */
  BG_AGENT_F_MASK    = 16, /* u32 BG_AGENT_UP_* */
  BG_AGENT_F_TIMEOUT = 17, /* u32 milliseconds */
  BG_AGENT_F_STDIN   = 18, /* u32 0/1: the host will send stdin */
  /* version 2 */
  BG_AGENT_F_PATH    = 19, /* string: a guest path */
  BG_AGENT_F_NAME    = 20, /* string: one path component, not "." or ".." */
  BG_AGENT_F_KIND    = 21, /* u32 BgAgentKind */
  BG_AGENT_F_MODE    = 22, /* u32 <= 07777 */
  BG_AGENT_F_MTIME   = 23, /* u64 seconds since the epoch */
  BG_AGENT_F_SIZE    = 24, /* u64 bytes (for progress only: EOF ends a file) */
  BG_AGENT_F_RECURSIVE = 25, /* u32 0/1 */
} BgAgentField;
#define BG_AGENT_FIELD_MAX 25

/* Decoding results: > 0 done, 0 needs more bytes, < 0 one of these. */
typedef enum {
  BG_AGENT_E_LENGTH   = -1,  /* payload length above BG_AGENT_MAX_PAYLOAD */
  BG_AGENT_E_TYPE     = -2,  /* unknown frame type */
  BG_AGENT_E_RESERVED = -3,  /* reserved header bits set */
  BG_AGENT_E_FIELD    = -4,  /* a field runs past the payload, or an unknown tag */
  BG_AGENT_E_VALUE    = -5,  /* a field's value is malformed (size, NUL, range) */
  BG_AGENT_E_MISSING  = -6,  /* a field the type needs is absent */
  BG_AGENT_E_REPEATED = -7,  /* a single field given twice */
  BG_AGENT_E_SESSION  = -8,  /* session 0 where one is needed, or the reverse */
  BG_AGENT_E_NOMEM    = -9,
} BgAgentErr;

const char *bg_agent_strerror (int err);

/* A frame as it is on the wire: the header plus its payload (pointing
 * into the caller's buffer). */
typedef struct {
  uint16_t       type;
  uint32_t       session;
  const uint8_t *payload;
  uint32_t       len;
} BgAgentFrame;

/* Splits the next frame from @buf: 1 with @frame and *@consumed set, 0
 * when @buf holds only part of a frame, < 0 when the header is invalid
 * (the connection cannot be resynchronised: close it). */
int bg_agent_frame_parse (const uint8_t *buf,
                          size_t         len,
                          BgAgentFrame  *frame,
                          size_t        *consumed);

/* A decoded message: every field checked against its type's rules.
 * Strings are copies, NUL-terminated; bytes point into the frame. */
typedef struct {
  uint16_t       type;
  uint32_t       session;
  uint32_t       version;
  char         **argv;       /* NULL-terminated; NULL when absent */
  uint32_t       argc;
  char         **env;
  uint32_t       envc;
  char          *cwd;
  char          *user;
  char          *message;
  char          *path;
  char          *name;
  uint64_t       mtime, size;
  uint32_t       kind, mode, recursive;
  uint32_t       pty, rows, cols, stream, credit, signo, code, pid, mask, timeout_ms, stdin_open;
  uint32_t       have;       /* bit (1 << field) for each field present */
  const uint8_t *bytes;
  uint32_t       nbytes;
} BgAgentMsg;

int  bg_agent_msg_decode (const BgAgentFrame *frame,
                          BgAgentMsg         *msg);
void bg_agent_msg_clear  (BgAgentMsg         *msg);
#define BG_AGENT_HAS(msg, field) (((msg)->have >> (field)) & 1u)

/* Encoding into a growing buffer: begin a frame, put its fields, end it.
 * Functions return 0 or a negative BgAgentErr (and leave the buffer as
 * it was before the frame began). */
typedef struct {
  uint8_t *data;
  size_t   len;
  size_t   cap;
  size_t   frame_start;
  int      failed;
} BgAgentBuf;

void bg_agent_buf_init    (BgAgentBuf *buf);
void bg_agent_buf_free    (BgAgentBuf *buf);
/* Drops the first @n bytes (after they were written out). */
void bg_agent_buf_consume (BgAgentBuf *buf,
                           size_t      n);
void bg_agent_buf_begin   (BgAgentBuf *buf,
                           BgAgentType type,
                           uint32_t    session);
void bg_agent_put_u32     (BgAgentBuf *buf,
                           BgAgentField tag,
                           uint32_t    value);
void bg_agent_put_u64     (BgAgentBuf *buf,
                           BgAgentField tag,
                           uint64_t    value);
void bg_agent_put_str     (BgAgentBuf *buf,
                           BgAgentField tag,
                           const char *value);
void bg_agent_put_bytes   (BgAgentBuf *buf,
                           BgAgentField tag,
                           const void *data,
                           size_t      len);
int  bg_agent_buf_end     (BgAgentBuf *buf);

#ifdef __cplusplus
}
#endif
