/* calls.h — for the C unit tests: the messaging calls with flat arguments. */
#ifndef TC_TEST_CALLS_H
#define TC_TEST_CALLS_H
#include <stdint.h>
#include <string.h>

#include "turbocoap.h"

/* The messaging calls in the argument order the older tests were written in, each building
 * the argument structs (tc_rx, tc_outmsg, tc_req_args, tc_notify_args) and, for the pipeline
 * and Observe, the tc_ep seam (tc_ep_messaging(ep, tx)) before calling the real API. */
static inline int t_ep_recv(tc_ep *ep, uint64_t now, const uint8_t *addr, uint32_t alen,
                            const uint8_t *data, size_t len, tc_txq *tx, tc_msg *msg,
                            tc_opt *opts, uint32_t opt_cap, tc_ep_event *ev) {
  tc_rx rx;
  rx.addr = addr;
  rx.addr_len = alen;
  rx.data = data;
  rx.len = len;
  rx.msg = msg;
  rx.opts = opts;
  rx.opt_cap = opt_cap;
  return tc_ep_recv(ep, now, &rx, tx, ev);
}

static inline tc_outmsg t_out(const tc_msg *m, const tc_opt *opts, const uint8_t *src) {
  tc_outmsg o;
  o.msg = m;
  o.opts = (tc_opt *)(uintptr_t)opts;
  o.src = src;
  return o;
}

static inline int t_ep_respond(tc_ep *ep, uint64_t now, uint32_t id, const tc_msg *resp,
                               tc_opt *opts, const uint8_t *src, tc_txq *tx) {
  tc_outmsg o = t_out(resp, opts, src);
  return tc_ep_respond(ep, now, id, resp == NULL ? NULL : &o, tx);
}

static inline int t_ep_request(tc_ep *ep, uint64_t now, const uint8_t *addr, uint32_t alen,
                               uint32_t flags, const tc_msg *req, tc_opt *opts,
                               const uint8_t *src, int gen_token_length, tc_txq *tx,
                               uint32_t *id, uint8_t *token_out, uint32_t *token_len) {
  tc_req_args a;
  tc_req_result r;
  int rc;
  memset(&a, 0, sizeof a);
  a.addr = addr;
  a.addr_len = alen;
  a.flags = flags;
  a.gen_token_length = gen_token_length;
  a.req = t_out(req, opts, src);
  memset(&r, 0, sizeof r);
  rc = tc_ep_request(ep, now, &a, tx, &r);
  if (id) *id = r.id;
  if (token_out) memcpy(token_out, r.token, r.token_length);
  if (token_len) *token_len = r.token_length;
  return rc;
}

static inline int t_ep_notify(tc_ep *ep, uint64_t now, const uint8_t *addr, uint32_t alen,
                              uint32_t flags, const uint8_t *token, uint32_t token_len,
                              const tc_msg *resp, tc_opt *opts, const uint8_t *src, tc_txq *tx,
                              uint32_t *id) {
  tc_notify_args a;
  tc_notify_result r;
  int rc;
  memset(&a, 0, sizeof a);
  a.addr = addr;
  a.addr_len = alen;
  a.flags = flags;
  a.token = token;
  a.token_len = token_len;
  a.resp = t_out(resp, opts, src);
  memset(&r, 0, sizeof r);
  rc = tc_ep_notify(ep, now, &a, tx, &r);
  if (id) *id = r.id;
  return rc;
}

/* The tc_ep seam over (ep, tx); zeroed (and so refused by every call) if ep or tx is bad. */
static inline tc_messaging t_seam(tc_ep *ep, tc_txq *tx) {
  tc_messaging m;
  (void)tc_ep_messaging(ep, tx, &m);
  return m;
}

static inline int t_srv_recv(tc_srv *s, tc_ep *ep, uint64_t now, const uint8_t *addr,
                             uint32_t alen, const uint8_t *data, size_t len, tc_txq *tx,
                             tc_msg *msg, tc_opt *opts, uint32_t opt_cap, tc_ep_event *ev,
                             tc_srv_req *req) {
  tc_messaging m = t_seam(ep, tx);
  tc_rx rx;
  rx.addr = addr;
  rx.addr_len = alen;
  rx.data = data;
  rx.len = len;
  rx.msg = msg;
  rx.opts = opts;
  rx.opt_cap = opt_cap;
  return tc_srv_recv(s, &m, now, &rx, ev, req);
}

static inline int t_srv_respond(tc_srv *s, tc_ep *ep, uint64_t now, uint32_t id,
                                const tc_msg *resp, const tc_opt *opts, const uint8_t *src,
                                uint32_t resource, tc_txq *tx) {
  tc_messaging m = t_seam(ep, tx);
  tc_outmsg o = t_out(resp, opts, src);
  return tc_srv_respond(s, &m, now, id, resp == NULL ? NULL : &o, resource);
}

static inline int t_srv_drop(tc_srv *s, tc_ep *ep, uint32_t id) {
  tc_txq none;
  tc_messaging m;
  memset(&none, 0, sizeof none);
  m = t_seam(ep, &none);
  return tc_srv_drop(s, &m, id);
}

static inline int t_srv_notify(tc_srv *s, tc_ep *ep, uint64_t now, uint32_t resource,
                               uint32_t flags, const tc_msg *resp, const tc_opt *opts,
                               const uint8_t *src, tc_txq *tx) {
  tc_messaging m = t_seam(ep, tx);
  tc_outmsg o = t_out(resp, opts, src);
  return tc_srv_notify(s, &m, now, resource, flags, resp == NULL ? NULL : &o);
}

static inline int t_srv_resume(tc_srv *s, tc_ep *ep, uint64_t now, tc_txq *tx) {
  tc_messaging m = t_seam(ep, tx);
  return tc_srv_resume(s, &m, now);
}

static inline int t_obs_notify(tc_obs *o, tc_ep *ep, uint64_t now, uint32_t resource,
                               uint32_t flags, const tc_msg *resp, const tc_opt *opts,
                               const uint8_t *src, tc_txq *tx) {
  tc_messaging m = t_seam(ep, tx);
  tc_outmsg out = t_out(resp, opts, src);
  return tc_obs_notify(o, &m, now, resource, flags, resp == NULL ? NULL : &out);
}

static inline int t_obs_resume(tc_obs *o, tc_ep *ep, uint64_t now, tc_txq *tx) {
  tc_messaging m = t_seam(ep, tx);
  return tc_obs_resume(o, &m, now);
}

/* The block-wise and Observe store calls with flat arguments. */
static inline int t_bw1_feed(tc_bw1 *s, uint64_t now, const uint8_t *peer, uint32_t peer_len,
                             const uint8_t *key, uint32_t key_len, uint32_t block1,
                             uint32_t flags, uint32_t size1, const uint8_t *payload,
                             uint32_t payload_len, tc_bw1_result *res) {
  tc_bw1_block b;
  b.peer = peer;
  b.peer_len = peer_len;
  b.key = key;
  b.key_len = key_len;
  b.block1 = block1;
  b.flags = flags;
  b.size1 = size1;
  b.payload = payload;
  b.payload_len = payload_len;
  return tc_bw1_feed(s, now, &b, res);
}

static inline int t_bw2_put(tc_bw2 *s, uint64_t now, const uint8_t *peer, uint32_t peer_len,
                            const uint8_t *key, uint32_t key_len, const tc_msg *resp,
                            const tc_opt *opts, const uint8_t *src, uint32_t lifetime_ms,
                            uint32_t *id) {
  tc_bw2_rep r;
  r.peer = peer;
  r.peer_len = peer_len;
  r.key = key;
  r.key_len = key_len;
  r.lifetime_ms = lifetime_ms;
  r.reserved = 0;
  r.resp = t_out(resp, opts, src);
  return tc_bw2_put(s, now, &r, id);
}

static inline int t_bw2_serve(tc_bw2 *s, uint64_t now, uint32_t id, uint32_t block2,
                              uint32_t flags, uint32_t block1_echo, uint32_t msg_limit,
                              tc_msg *msg, tc_opt *opts, uint32_t opt_cap, uint8_t *buf,
                              uint32_t cap) {
  tc_bw2_ask a;
  tc_msgbuf b;
  a.block2 = block2;
  a.flags = flags;
  a.block1_echo = block1_echo;
  a.msg_limit = msg_limit;
  b.msg = msg;
  b.opts = opts;
  b.opt_cap = opt_cap;
  b.buf = buf;
  b.cap = cap;
  return tc_bw2_serve(s, now, id, &a, &b);
}

static inline int t_obs_register(tc_obs *o, uint64_t now, const uint8_t *peer,
                                 uint32_t peer_len, const uint8_t *token, uint32_t token_len,
                                 uint32_t resource, uint32_t *seq) {
  tc_observer w;
  w.peer = peer;
  w.peer_len = peer_len;
  w.token = token;
  w.token_len = token_len;
  return tc_obs_register(o, now, &w, resource, seq);
}

#endif /* TC_TEST_CALLS_H */
