/*
 * turbocoap.h — the public C API of the turbocoap core.
 *
 * The core is sans-IO: no sockets, no clocks, no mutable globals, no allocation.
 * Every function takes borrowed input spans and writes into caller-owned output.
 *
 * Conventions, for every function below unless it says otherwise:
 *  - Pointers passed in are BORROWED for the duration of the call only; the core
 *    keeps none of them.
 *  - Output goes into CALLER-OWNED memory, whose size the caller states.
 *  - The return value is a count (>= 0) or a negative TC_E_* error code.
 *  - Offsets written by a decoder are byte offsets into the caller's input buffer,
 *    so decoded values are zero-copy views of that buffer.
 */
#ifndef TURBOCOAP_H
#define TURBOCOAP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- transports */

/** Wire framings. */
enum tc_transport {
  TC_UDP = 0, /**< RFC 7252 §3 datagram header (also DTLS). */
  TC_TCP = 1, /**< RFC 8323 §3.2 Len/TKL framing (TCP, TLS). */
  TC_WS = 2   /**< RFC 8323 §4.2: like TCP with Len = 0, the WebSocket frame gives the length. */
};

/** UDP message types (RFC 7252 §3). Reliable transports have no type; decoders write 0. */
enum tc_type { TC_CON = 0, TC_NON = 1, TC_ACK = 2, TC_RST = 3 };

/* -------------------------------------------------------------------- errors */

/**
 * Negative return codes, declared once: X(NAME, value, description). The enum tc_error, the
 * names of tc_error_name() and the TypeScript constants (scripts/gen-abi.mjs ->
 * ts/driver/abi.ts) all come from this list. -17 .. -21 are the messaging layer's
 * (turbocoap_ep.h).
 */
#define TC_ERRORS(X) \
  X(TRUNCATED_HEADER, -1, "fewer bytes than the fixed header needs") \
  X(BAD_VERSION, -2, "UDP version field is not 1") \
  X(RESERVED_TKL, -3, "token length nibble 15 (reserved by RFC 8974)") \
  X(TOKEN_PAST_END, -4, "token (or its extended length) runs past the end") \
  X(RESERVED_NIBBLE, -5, "option delta or length nibble 15 that is not the payload marker") \
  X(OPTION_PAST_END, -6, "option extension bytes or value run past the end") \
  X(OPTION_NUMBER_OVERFLOW, -7, "option number above 65535") \
  X(EMPTY_PAYLOAD, -8, "payload marker 0xFF followed by nothing") \
  X(EMPTY_WITH_CONTENT, -9, "UDP code 0.00 with a token, options or payload") \
  X(LENGTH_PAST_END, -10, "TCP/WS: framed length (or ext length bytes) past the end") \
  X(TRAILING_BYTES, -11, "TCP: bytes left after the framed message") \
  X(TOO_MANY_OPTIONS, -12, "more options than the caller's table holds") \
  X(MESSAGE_TOO_LARGE, -13, "message larger than the configured maximum") \
  X(WS_LENGTH, -14, "WebSocket framing with a non-zero Len nibble") \
  X(BUFFER_TOO_SMALL, -15, "encoder: output buffer too small") \
  X(INVALID, -16, "an argument out of range (type, code, lengths, sizes)") \
  X(STALE, -17, "unknown, finished or evicted exchange id") \
  X(FULL, -18, "a bounded table or the caller's tx queue is full") \
  X(TIMEOUT, -19, "(event status) no ACK/response in time") \
  X(RESET, -20, "(event status) the peer answered with RST") \
  X(BAD_OPTION, -21, "(event status) response with an unrecognized critical option") \
  X(UNREACHABLE, -22, "(event status) the peer refused a datagram (ICMP port unreachable)")

#define TC_ERROR_ENUM_(name, value, doc) TC_E_##name = (value),
/** Negative return codes. tc_error_name() gives each a stable upper-case name. */
enum tc_error { TC_ERRORS(TC_ERROR_ENUM_) };
#undef TC_ERROR_ENUM_

/** Number of error codes: errors are -1 .. -TC_ERROR_COUNT (checked against TC_ERRORS). */
#define TC_ERROR_COUNT 22

/** Name of an error code, e.g. "RESERVED_TKL"; "UNKNOWN" for anything else.
 *  Returns a static string (never freed). */
const char *tc_error_name(int err);

/* ---------------------------------------------------------- message and table */

/** A decoded (or to-be-encoded) message. All fields are uint32_t so that FFI
 *  bindings can address it as a flat uint32 table (see TC_MSG_WORDS). */
typedef struct tc_msg {
  uint32_t type;           /**< tc_type (UDP); 0 on TCP/WS */
  uint32_t code;           /**< class << 5 | detail, 0..255 */
  uint32_t message_id;     /**< 0..65535 (UDP); 0 on TCP/WS */
  uint32_t token_offset;   /**< token: [token_offset, +token_length) */
  uint32_t token_length;   /**< 0..65804 (RFC 8974 extended tokens) */
  uint32_t option_count;   /**< number of entries in the option table */
  uint32_t payload_offset; /**< payload: [payload_offset, +payload_length) */
  uint32_t payload_length;
  uint32_t length;         /**< total bytes of the message on the wire */
} tc_msg;

/** One option: its number and where its value lies. */
typedef struct tc_opt {
  uint32_t number;  /**< absolute option number, 0..65535 */
  uint32_t offset;  /**< value: [offset, +length) */
  uint32_t length;  /**< 0..65804 */
} tc_opt;

#define TC_MSG_WORDS 9 /**< sizeof(tc_msg) / 4 */
#define TC_OPT_WORDS 3 /**< sizeof(tc_opt) / 4 */

/** Largest token length representable (RFC 8974: 65535 + 269). */
#define TC_MAX_TOKEN_LENGTH 65804u
/** Largest option value length representable (65535 + 269). */
#define TC_MAX_OPTION_LENGTH 65804u

/* -------------------------------------------------------------------- decode */

/**
 * Decode exactly one message occupying buf[0..len).
 *
 * buf:      borrowed; the message bytes.
 * transport: TC_UDP, TC_TCP or TC_WS. For TC_TCP, len must equal the framed
 *           length (shorter: TC_E_LENGTH_PAST_END, or TC_E_TOKEN_PAST_END when
 *           the cut falls inside the token; longer: TC_E_TRAILING_BYTES).
 * msg:      caller-owned, written on success (undefined on error).
 * opts:     caller-owned table of opt_cap entries; options are written in wire
 *           order (hence ascending numbers).
 * Returns the number of options (>= 0) or a negative TC_E_* code:
 *           a format error (enum tc_error), TC_E_TOO_MANY_OPTIONS when opt_cap is too
 *           small, TC_E_MESSAGE_TOO_LARGE when len > UINT32_MAX (offsets are
 *           32-bit), TC_E_INVALID for msg == NULL, opts == NULL with opt_cap > 0,
 *           buf == NULL with len > 0, or an unknown transport.
 *           Checks run in wire order, so the first problem met is reported
 *           (TKL 15 is decided by byte 0 on every transport, as in the
 *           deframer); on UDP a 0.00 message is checked (TC_E_EMPTY_WITH_CONTENT)
 *           right after the version and TKL checks, before its token is read.
 * Never reads outside buf[0..len), never allocates.
 */
int tc_decode(const uint8_t *buf, size_t len, int transport, tc_msg *msg, tc_opt *opts,
              uint32_t opt_cap);

/* -------------------------------------------------------------------- encode */

/**
 * Encode a message.
 *
 * out, out_cap: caller-owned output. With out == NULL nothing is written and the
 *           return value is the size the message needs.
 * transport: TC_UDP, TC_TCP or TC_WS.
 * msg:      borrowed; token_offset/payload_offset index into src; option_count
 *           gives the number of entries in opts. message_id/type ignored on TCP/WS.
 *           msg->length is not read.
 * opts:     borrowed and SORTED IN PLACE by number (stable: repeated options keep
 *           their relative order); offsets index into src.
 * src:      borrowed; holds token, option values and payload.
 * Returns the number of bytes written (or needed), or TC_E_INVALID (type > 3,
 * code > 255, message id > 65535, token or option too long, option number > 65535,
 * UDP empty message 0.00 with content, unknown transport, msg == NULL, opts == NULL
 * with option_count > 0, src == NULL with a non-empty token, option or payload, or
 * a message larger than INT_MAX bytes) or TC_E_BUFFER_TOO_SMALL (then nothing
 * is written). Encodings are always minimal. opts may already have been
 * sorted when an error is returned.
 */
int tc_encode(uint8_t *out, size_t out_cap, int transport, const tc_msg *msg, tc_opt *opts,
              const uint8_t *src);

/* ------------------------------------------------------------ TCP deframing */

/**
 * A streaming deframer for RFC 8323 over TCP/TLS. It lives in ONE caller-owned
 * block of tc_deframer_size(max) bytes: this header followed by its buffer, so it
 * holds no pointers and may be placed in any memory (a JS ArrayBuffer, WASM
 * memory). Fields are private; read them only through the functions below.
 */
typedef struct tc_deframer {
  uint32_t max_message_size; /**< largest accepted message, in bytes */
  uint32_t have;             /**< bytes buffered */
  uint32_t need;             /**< bytes buffered once the current step is complete */
  uint32_t total;            /**< total size of the buffered message once known, else 0 */
  uint32_t ready;            /**< 1 when the buffer holds a message already returned */
  uint32_t failed;           /**< the negative error that stopped the stream, or 0 */
} tc_deframer;

/** Where a frame lies. */
enum tc_frame_where {
  TC_FRAME_CHUNK = 0,  /**< inside the chunk passed to tc_deframer_feed (zero-copy) */
  TC_FRAME_BUFFER = 1  /**< inside the deframer's own buffer (tc_deframer_buffer) */
};

/** A complete framed message found by the deframer. */
typedef struct tc_frame {
  uint32_t where;  /**< tc_frame_where */
  uint32_t offset; /**< byte offset into the chunk or the deframer buffer */
  uint32_t length; /**< message length, header included */
} tc_frame;

#define TC_FRAME_WORDS 3

/** Bytes a deframer accepting messages up to max_message_size needs: the header
 *  plus a buffer of max(max_message_size, 8) bytes (8 = the largest TCP header).
 *  Returns 0 if that does not fit in size_t (32-bit hosts, sizes near 4 GiB). */
size_t tc_deframer_size(uint32_t max_message_size);

/** Initialise a deframer in mem (mem_len >= tc_deframer_size(max_message_size)).
 *  Returns 0, or TC_E_INVALID if mem_len is too small or max_message_size < 2. */
int tc_deframer_init(tc_deframer *d, size_t mem_len, uint32_t max_message_size);

/** The deframer's buffer (valid until the next feed). */
uint8_t *tc_deframer_buffer(tc_deframer *d);

/**
 * Feed a chunk of the byte stream and collect complete frames.
 *
 * chunk:    borrowed. Frames with where == TC_FRAME_CHUNK point into it.
 * consumed: out; how many bytes of chunk were used. Feed the rest in a later call.
 * frames:   caller-owned table of cap entries.
 * Frames are returned in stream order. The call stops early after a frame with
 * where == TC_FRAME_BUFFER (that frame stays valid until the next call), when the
 * table is full, or when the chunk is used up (partial messages are buffered).
 * Returns the number of frames (>= 0), or TC_E_MESSAGE_TOO_LARGE / TC_E_RESERVED_TKL;
 * after an error the stream is unusable and every later call returns that error.
 * A message is rejected as too large as soon as its header is complete, before
 * its body is buffered. If frames were already found in the call that meets the
 * error, they are returned (and stay valid) and the error comes from the next
 * call. TC_E_INVALID for consumed == NULL, frames == NULL with cap > 0, or
 * chunk == NULL with len > 0. chunk may be NULL when len == 0 (such a call
 * just releases the previous TC_FRAME_BUFFER frame).
 */
int tc_deframer_feed(tc_deframer *d, const uint8_t *chunk, size_t len, size_t *consumed,
                     tc_frame *frames, uint32_t cap);

/** Bytes buffered for an incomplete message (0 at a message boundary). */
uint32_t tc_deframer_pending(const tc_deframer *d);

/* --------------------------------------------------------- option registry */

/** Option value formats (RFC 7252 §3.2). */
enum tc_format { TC_FMT_EMPTY = 0, TC_FMT_OPAQUE = 1, TC_FMT_UINT = 2, TC_FMT_STRING = 3 };

/** A registered option. signal_code is 0 for ordinary options; for an RFC 8323
 *  signaling option it is the signal code it belongs to (0xE1 CSM .. 0xE5 Abort). */
typedef struct tc_option_def {
  uint16_t number;
  uint8_t format;     /**< tc_format */
  uint8_t repeatable; /**< 1 if the option may occur more than once */
  uint16_t min_length;
  uint16_t max_length;
  uint8_t signal_code;
  const char *name;   /**< static, e.g. "Uri-Path" */
} tc_option_def;

/** Number of entries in the registry. */
uint32_t tc_option_registry_count(void);

/** Entry i (0 <= i < count), or NULL. Static data: never freed. */
const tc_option_def *tc_option_registry_at(uint32_t i);

/** The definition of option number in a message with this code, or NULL if
 *  unknown. Codes 0xE1..0xE5 (7.01 CSM .. 7.05 Abort) search only that signal's
 *  options; every other code (including undefined 7.xx) only ordinary options. */
const tc_option_def *tc_option_find(uint32_t code, uint32_t number);

/** RFC 7252 §5.4.6 properties derived from an option number. */
static inline int tc_option_is_critical(uint32_t number) { return (int)(number & 1u); }
static inline int tc_option_is_unsafe(uint32_t number) { return (int)((number & 2u) >> 1); }
static inline int tc_option_is_no_cache_key(uint32_t number) { return (number & 0x1eu) == 0x1cu; }

/* ------------------------------- the messaging seam and the messaging calls' arguments */

#include "turbocoap_messaging.h"

/* -------------------------------------------------- UDP messaging layer */

#include "turbocoap_ep.h"

/* ------------------------------------ block-wise transfer and Observe (server) */

#include "turbocoap_bw.h"

/* The server pipeline: ep + block-wise stores + Observe registry (srv.c). */
#include "turbocoap_srv.h"

/* One RFC 8323 connection (TCP, TLS, WebSockets): CSM, Ping/Pong, Release, Abort, token
 * matching, the messaging seam over a reliable transport (conn.c). */
#include "turbocoap_conn.h"

#ifdef __cplusplus
}
#endif

#endif /* TURBOCOAP_H */
