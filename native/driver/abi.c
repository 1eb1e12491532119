/*
 * abi.c — compile-time checks of the lists in abi.h against the core's structs, and the
 * layout table both hosts export (compared word by word with ts/driver/abi.ts at load time).
 */
#include "abi.h"
#include "stream.h"
#include "tls.h" /* the TC_TLS_E_* codes only (no OpenSSL in the header) */

/* --------------------------------------------------------------- compile-time checks */

#define TCA_CORE_CHECK_(name, value, expr) \
  _Static_assert((value) == (expr), "abi.h: " #name " differs from the core's " #expr);
TCA_CORE_CONSTANTS(TCA_CORE_CHECK_)
#undef TCA_CORE_CHECK_

/* the TC_TLS_E_* codes JavaScript TLS hosts report (abi.h TLS_E_*) */
_Static_assert((int)TCB_TLS_E_HANDSHAKE == (int)TC_TLS_E_HANDSHAKE && (int)TCB_TLS_E_VERIFY == (int)TC_TLS_E_VERIFY &&
                   (int)TCB_TLS_E_PEER_CERT_REQUIRED == (int)TC_TLS_E_PEER_CERT_REQUIRED &&
                   (int)TCB_TLS_E_PSK == (int)TC_TLS_E_PSK && (int)TCB_TLS_E_ALPN == (int)TC_TLS_E_ALPN &&
                   (int)TCB_TLS_E_ALERT == (int)TC_TLS_E_ALERT && (int)TCB_TLS_E_PROTOCOL == (int)TC_TLS_E_PROTOCOL,
               "abi.h: TLS_E_* differ from tls.h");

/* configs: the lists name every word of the structs, in order */
#define TCA_ONE_(f) +1
#define TCA_WORD_CHECK_(T, list, f) \
  _Static_assert(offsetof(T, f) % 4u == 0 && sizeof(((T *)0)->f) == 4u, "abi.h: " #list " " #f);
#define TCA_CONNC_CHECK_(f) TCA_WORD_CHECK_(tc_conn_config, TCA_CONN_CONFIG, f)
#define TCA_SLIM_CHECK_(f) TCA_WORD_CHECK_(tcs_limits, TCA_STREAM_LIMITS, f)
TCA_CONN_CONFIG(TCA_CONNC_CHECK_)
TCA_STREAM_LIMITS(TCA_SLIM_CHECK_)
#undef TCA_CONNC_CHECK_
#undef TCA_SLIM_CHECK_
#undef TCA_WORD_CHECK_
_Static_assert(sizeof(tc_ep_config) == 4u * (0 TCA_EP_CONFIG(TCA_ONE_)), "abi.h: TCA_EP_CONFIG");
_Static_assert(sizeof(tc_srv_config) == 4u * (0 TCA_SRV_CONFIG(TCA_ONE_)), "abi.h: TCA_SRV_CONFIG");
_Static_assert(sizeof(tc_srv_config) == 4u * TC_SRV_CONFIG_WORDS, "tc_srv_config words");
_Static_assert(sizeof(tc_conn_config) == 4u * (0 TCA_CONN_CONFIG(TCA_ONE_)), "abi.h: TCA_CONN_CONFIG");
_Static_assert(sizeof(tc_conn_config) == 4u * TC_CONN_CONFIG_WORDS, "tc_conn_config words");
_Static_assert(sizeof(tcs_limits) == 4u * (0 TCA_STREAM_LIMITS(TCA_ONE_)), "abi.h: TCA_STREAM_LIMITS");
#undef TCA_ONE_

/* stats: structs built from the lists have the core's layout, field by field */
#define TCA_MEMBER_(type, name) TCA_##type name;
typedef struct tca_ep_stats_mirror {
  TCA_EP_STATS(TCA_MEMBER_)
} tca_ep_stats_mirror;
typedef struct tca_srv_stats_mirror {
  TCA_SRV_STATS(TCA_MEMBER_)
} tca_srv_stats_mirror;
#undef TCA_MEMBER_
#define TCA_EP_STAT_CHECK_(type, name) \
  _Static_assert(offsetof(tc_ep_stats, name) == offsetof(tca_ep_stats_mirror, name) && \
                     sizeof(((tc_ep_stats *)0)->name) == sizeof(TCA_##type), \
                 "abi.h: TCA_EP_STATS " #name);
#define TCA_SRV_STAT_CHECK_(type, name) \
  _Static_assert(offsetof(tc_srv_stats, name) == offsetof(tca_srv_stats_mirror, name) && \
                     sizeof(((tc_srv_stats *)0)->name) == sizeof(TCA_##type), \
                 "abi.h: TCA_SRV_STATS " #name);
TCA_EP_STATS(TCA_EP_STAT_CHECK_)
TCA_SRV_STATS(TCA_SRV_STAT_CHECK_)
#undef TCA_EP_STAT_CHECK_
#undef TCA_SRV_STAT_CHECK_
_Static_assert(sizeof(tc_ep_stats) == sizeof(tca_ep_stats_mirror), "abi.h: TCA_EP_STATS size");
_Static_assert(sizeof(tc_srv_stats) == sizeof(tca_srv_stats_mirror), "abi.h: TCA_SRV_STATS size");

/* ----------------------------------------------------------------------- layout table */

/* The order is scripts/gen-abi.mjs's (ABI_LAYOUT): every list in turn, each entry's value or
 * offset, then the list's size. */
#define TCA_L_CORE_(name, value, expr) (uint32_t)(expr),
#define TCA_L_CONST_(name, value) (uint32_t)TCB_##name,
#define TCA_L_ERR_(name, value, doc) (uint32_t)TC_E_##name,
#define TCA_L_RX_(n, w) (uint32_t)TCB_RX_##n,
#define TCA_L_TXR_(n, w) (uint32_t)TCB_TX_RESPOND_##n,
#define TCA_L_TXQ_(n, w) (uint32_t)TCB_TX_REQUEST_##n,
#define TCA_L_TXS_(n, w) (uint32_t)TCB_TX_SMALL_##n,
#define TCA_L_TXP_(n, w) (uint32_t)TCB_TX_PING_##n,
#define TCA_L_TXN_(n, w) (uint32_t)TCB_TX_NOTIFY_##n,
#define TCA_L_WI_(n, w) (uint32_t)TCB_WASM_INFO_##n,
#define TCA_L_WS_(n, w) (uint32_t)TCB_WASM_SEND_##n,
#define TCA_L_WST_(n, w) (uint32_t)TCB_WASM_STREAM_##n,
#define TCA_L_WO_(n, w) (uint32_t)TCB_WASM_OUT_##n,
#define TCA_L_EPC_(f) (uint32_t)(offsetof(tc_ep_config, f) / 4u),
#define TCA_L_SRVC_(f) (uint32_t)(offsetof(tc_srv_config, f) / 4u),
#define TCA_L_CONNC_(f) (uint32_t)(offsetof(tc_conn_config, f) / 4u),
#define TCA_L_SLIM_(f) (uint32_t)(offsetof(tcs_limits, f) / 4u),
#define TCA_L_SSTS_(type, f) (uint32_t)offsetof(tcs_host_stats, st.f), (uint32_t)sizeof(TCA_##type),
#define TCA_L_SSRV_(type, f) (uint32_t)offsetof(tcs_host_stats, srv.f), (uint32_t)sizeof(TCA_##type),
#define TCA_L_SHOST_(type, f) (uint32_t)offsetof(tcs_host_stats, host.f), (uint32_t)sizeof(TCA_##type),
#define TCA_L_EPS_(type, f) (uint32_t)offsetof(tcd_stats, ep.f), (uint32_t)sizeof(TCA_##type),
#define TCA_L_SRVS_(type, f) (uint32_t)offsetof(tcd_stats, srv.f), (uint32_t)sizeof(TCA_##type),
#define TCA_L_DRVS_(type, f) (uint32_t)offsetof(tcd_stats, drv.f), (uint32_t)sizeof(TCA_##type),

static const uint32_t tca_layout_[] = {
    TCA_CORE_CONSTANTS(TCA_L_CORE_)
    TCA_CONSTANTS(TCA_L_CONST_)
    TC_ERRORS(TCA_L_ERR_)
    TCA_RX(TCA_L_RX_) TCB_RX_WORDS,
    TCA_TX_RESPOND(TCA_L_TXR_) TCB_TX_RESPOND_WORDS,
    TCA_TX_REQUEST(TCA_L_TXQ_) TCB_TX_REQUEST_WORDS,
    TCA_TX_SMALL(TCA_L_TXS_) TCB_TX_SMALL_WORDS,
    TCA_TX_PING(TCA_L_TXP_) TCB_TX_PING_WORDS,
    TCA_TX_NOTIFY(TCA_L_TXN_) TCB_TX_NOTIFY_WORDS,
    TCA_WASM_INFO(TCA_L_WI_) TCB_WASM_INFO_WORDS,
    TCA_WASM_SEND(TCA_L_WS_) TCB_WASM_SEND_WORDS,
    TCA_WASM_STREAM(TCA_L_WST_) TCB_WASM_STREAM_WORDS,
    TCA_WASM_OUT(TCA_L_WO_) TCB_WASM_OUT_WORDS,
    TCA_EP_CONFIG(TCA_L_EPC_) (uint32_t)(sizeof(tc_ep_config) / 4u),
    TCA_SRV_CONFIG(TCA_L_SRVC_) (uint32_t)(sizeof(tc_srv_config) / 4u),
    TCA_CONN_CONFIG(TCA_L_CONNC_) (uint32_t)(sizeof(tc_conn_config) / 4u),
    TCA_STREAM_LIMITS(TCA_L_SLIM_) (uint32_t)(sizeof(tcs_limits) / 4u),
    TCA_STREAM_STATS(TCA_L_SSTS_)
    TCA_SRV_STATS(TCA_L_SSRV_)
    TCA_STREAM_HOST_STATS(TCA_L_SHOST_) (uint32_t)sizeof(tcs_host_stats),
    TCA_EP_STATS(TCA_L_EPS_)
    TCA_SRV_STATS(TCA_L_SRVS_)
    TCA_DRIVER_STATS(TCA_L_DRVS_) (uint32_t)sizeof(tcd_stats),
    TCA_SEED_BYTES,
};

const uint32_t *tca_layout(void) { return tca_layout_; }

uint32_t tca_layout_words(void) { return (uint32_t)(sizeof tca_layout_ / sizeof tca_layout_[0]); }

uint32_t tca_hash(void) {
  uint32_t h = 2166136261u, i, k;
  for (i = 0; i < tca_layout_words(); i++)
    for (k = 0; k < 4; k++) {
      h ^= (tca_layout_[i] >> (8u * k)) & 0xffu;
      h *= 16777619u;
    }
  return h;
}

/* every TX record has KIND at 0 and RC at 2 (ep_batch.h writes RC without looking) */
_Static_assert(TCB_TX_RESPOND_RC == 2 && TCB_TX_REQUEST_RC == 2 && TCB_TX_SMALL_RC == 2 &&
                   TCB_TX_PING_RC == 2 && TCB_TX_NOTIFY_RC == 2,
               "RC is word 2 of every TX record");
_Static_assert(TCB_TX_RESPOND_KIND == 0 && TCB_TX_REQUEST_KIND == 0 && TCB_TX_SMALL_KIND == 0 &&
                   TCB_TX_PING_KIND == 0 && TCB_TX_NOTIFY_KIND == 0,
               "KIND is word 0 of every TX record");

/* host records: OPEN follows the connection's own events, its flags are free bits */
_Static_assert((int)TCB_CONN_EV_OPEN > (int)TC_CONN_EV_CLOSED, "CONN_EV_OPEN after the tc_conn kinds");
_Static_assert((((int)TCB_CONN_EVF_TLS | (int)TCB_CONN_EVF_SYSERR | (int)TCB_CONN_EVF_TLSERR) &
                (TC_EVF_CONFIRMABLE | TC_EVF_LAST | TC_CONN_EVF_BERT | TC_CONN_EVF_CUSTODY)) == 0,
               "CONN_EVF_* bits are free");
