/*
 * dgram.h — the datagram driver: what both hosts (the native addon over libuv, the
 * WebAssembly module under node:dgram) run between a UDP socket and JavaScript, once.
 *
 * One object holds the messaging state (tc_ep), the server pipeline (tc_srv), the tx queue
 * and the receive batch (ep_batch.h records), and owns two policies:
 *
 *  - DRAIN (when a batch is handed to JavaScript): once per event-loop turn, after the
 *    host's poll phase (its end-of-turn hook runs when tcd_pending() said so); earlier only
 *    when the batch has no room for the next datagram (tcd_recv asks TCD_DELIVER) or for
 *    TCD_TIMER_ROOM more records before a timer round (tcd_timer asks TCD_DELIVER); and right
 *    after a timer run. Whatever the core queued leaves after the batch is handed over.
 *  - RETRY (a datagram that finds the tx queue full): the host sends the queue and calls
 *    tcd_recv again with the same datagram. An emptied queue always has room for the two
 *    datagrams tc_srv_recv may queue (checked at creation), so no datagram is dropped for a
 *    full queue and no datagram is retried more than once.
 *
 * Calls answer with an action for the host instead of calling it back (no re-entry, the
 * same on both hosts): TCD_SEND (send the tx queue, tcd_tx_sent, call again), TCD_DELIVER
 * (hand the batch to JS, tcd_delivered, call again), TCD_DONE, or a negative TC_E_*. A host
 * loop is `while ((a = call()) > 0) act(a);` — bounded: every action makes room, and timer
 * runs stop after TCD_TIMER_ROUNDS rounds.
 *
 * Time is the host's clock in ms (`now`); nothing here reads a clock or a socket.
 */
#ifndef TURBOCOAP_DRIVER_DGRAM_H
#define TURBOCOAP_DRIVER_DGRAM_H

#include <stddef.h>
#include <stdint.h>

#include "abi.h"
#include "ep_batch.h"
#include "turbocoap.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Actions a call asks of the host. */
#define TCD_DONE 0
#define TCD_SEND 1    /**< send the tx queue, call tcd_tx_sent, call again */
#define TCD_DELIVER 2 /**< hand the batch to JS, call tcd_delivered, call again */

/** Timer events taken per round, and the record room a round wants. */
#define TCD_TIMER_EVENTS 64u
#define TCD_TIMER_ROOM 4u
/** Rounds of one timer run; a deadline still due after them is the host's to retry soon. */
#define TCD_TIMER_ROUNDS 16u

/** The host's buffer sizes. */
typedef struct tcd_limits {
  uint32_t rx_words;  /**< batch record table, >= TCB_RX_MAX_WORDS */
  uint32_t rx_bytes;  /**< batch byte area, >= 65535 + 3 (any datagram fits an empty batch) */
  uint32_t txq_items; /**< tx queue datagrams, >= 2 */
  uint32_t txq_bytes; /**< tx queue bytes, >= 2 * (TC_ADDR_MAX + max_message_size) */
} tcd_limits;

/** A datagram driver. Hosts read rx, txq and stats directly; everything else through calls. */
typedef struct tcd_dgram {
  tc_ep *ep;
  tc_srv *srv;
  tc_txq txq;          /**< datagrams to send (tc_tx items) */
  tcb_rx rx;           /**< the batch for JS */
  tc_messaging ms;     /**< the pipeline's seam to ep (tc_ep_messaging(ep, &txq)) */
  tcd_stats stats;     /**< drv counted live (hosts add their socket's); ep, srv by tcd_get_stats */
  uint32_t max_body;   /**< the largest Block1 body (tcd_read_body needs no more room) */
  uint32_t tx_pos;     /**< tcd_flush: where the next call resumes */
  uint32_t tx_failed;  /**< tcd_flush: records whose RC is not 0 */
  uint32_t rounds;     /**< tcd_timer: rounds of the current run */
  size_t memory;       /**< bytes allocated */
  tc_msg msg;
  tc_opt opts[TCB_OPT_CAP];
  tc_srv_req req;
  tc_ep_event evs[TCD_TIMER_EVENTS];
} tcd_dgram;

/**
 * A driver for cfg (TypeScript CONFIG_WORDS words: tc_ep_config then tc_srv_config, whose
 * max_in_progress and max_message_size must equal the ep's) and seed (TCA_SEED_BYTES bytes of
 * entropy, borrowed) with the host's buffer sizes. Returns it, or NULL with *err set:
 * TC_E_INVALID for a bad config or limits, TC_E_FULL when out of memory.
 */
tcd_dgram *tcd_create(const uint32_t *cfg, uint32_t cfg_words, const uint8_t *seed,
                      uint32_t seed_len, const tcd_limits *lim, int *err);

/** Frees d and everything it holds (NULL: nothing). */
void tcd_destroy(tcd_dgram *d);

/**
 * One received datagram data[0..len) from the canonical address addr[0..alen) (addr.h).
 * TCD_DONE (looked at; maybe a record, maybe datagrams queued), TCD_DELIVER / TCD_SEND
 * (nothing done yet: act, call again with the same datagram), or a negative TC_E_* (the
 * datagram was not taken: bad arguments, or larger than the batch can ever hold).
 */
int tcd_recv(tcd_dgram *d, uint64_t now, const uint8_t *addr, uint32_t alen, const uint8_t *data,
             uint32_t len);

/** The host learned that addr[0..alen) refused a datagram (ICMP port unreachable): the client
 *  requests outstanding to it fail now (tc_ep_unreachable), one EV_FAILED record each (status
 *  TC_E_UNREACHABLE). TCD_DONE, TCD_DELIVER (no room: act, call again) or TC_E_INVALID. */
int tcd_unreachable(tcd_dgram *d, uint64_t now, const uint8_t *addr, uint32_t alen);

/** Runs what is due at now (tc_srv_timer, tc_ep_timer). TCD_DONE, or TCD_SEND / TCD_DELIVER:
 *  work is left (act, call again). Gives TCD_DONE after TCD_TIMER_ROUNDS rounds. */
int tcd_timer(tcd_dgram *d, uint64_t now);

/**
 * Runs the tx records w[.. nwords) with their bytes b[0..nbytes) (ep_batch.h), from where the
 * last call stopped (the start, after a TCD_DONE or an error). TCD_SEND: the tx queue is full
 * (send it, call again); TCD_DONE: every record ran, d->tx_failed of them failed; or a
 * negative TC_E_* for a malformed table (records before it ran).
 */
int tcd_flush(tcd_dgram *d, uint64_t now, uint32_t *w, uint32_t nwords, const uint8_t *b,
              uint32_t nbytes);

/** The host sent the tx queue (sent of its datagrams left, in send_calls calls): empties it. */
void tcd_tx_sent(tcd_dgram *d, uint32_t sent, uint32_t send_calls);

/** The host handed the batch to JS (or dropped it): empties it. */
void tcd_delivered(tcd_dgram *d);

/** Whether the host's end-of-turn hook has work: records to hand over or datagrams to send. */
int tcd_pending(const tcd_dgram *d);

/** When tcd_timer is next needed (host clock, ms); UINT64_MAX: never. */
uint64_t tcd_deadline(const tcd_dgram *d);

/** The Block1 body id of a delivered request (TC_SRVF_BODY) into out (cap bytes; d->max_body
 *  always suffices), released: its length, or TC_E_STALE / TC_E_BUFFER_TOO_SMALL. */
int tcd_read_body(tcd_dgram *d, uint32_t id, uint8_t *out, uint32_t cap);

/** Refreshes d->stats (the core's counters) and returns it. */
const tcd_stats *tcd_get_stats(tcd_dgram *d);

#ifdef __cplusplus
}
#endif

#endif /* TURBOCOAP_DRIVER_DGRAM_H */
