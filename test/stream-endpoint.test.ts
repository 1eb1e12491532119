/**
 * Pure parts of the stream driver (ts/transport/stream-endpoint.ts): the datagram form of a
 * framed message (what the client-transfer calls decode), why a connection closed, and the
 * stream host config.
 */
import { describe, expect, it } from 'vitest';
import { decode, encode } from '../ts/index';
import {
  CONN_EVF_SYSERR,
  CONN_EVF_TLSERR,
  CONNC_MAX_EXCHANGES,
  CONNC_MAX_MESSAGE_SIZE,
  CONNC_TRANSPORT,
  E_TIMEOUT,
  SLIM_MAX_CONNS,
  STREAM_CONFIG_CONN,
  STREAM_CONFIG_LIMITS,
  STREAM_CONFIG_WORDS,
} from '../ts/driver/abi';
import { closeReason, streamConfig, toDatagram } from '../ts/transport/stream-endpoint';

describe('stream driver', () => {
  it('toDatagram rewrites TCP and WebSocket framing as a datagram with the same token, options and payload', () => {
    for (const payloadLength of [0, 5, 300, 70000]) {
      const msg = {
        code: '2.05',
        token: new Uint8Array([1, 2, 3, 4]),
        options: [
          { number: 12, value: new Uint8Array([0]) },
          { number: 23, value: new Uint8Array([0x16]) },
        ],
        payload: new Uint8Array(payloadLength).fill(7),
      };
      for (const transport of ['tcp', 'ws'] as const) {
        const d = decode(toDatagram(encode(msg, { transport })));
        expect(d.code).toBe('2.05');
        expect(d.type).toBe('ACK');
        expect([...d.token]).toEqual([1, 2, 3, 4]);
        expect(d.options.map((o) => o.number)).toEqual([12, 23]);
        expect(d.payload.length).toBe(payloadLength);
      }
    }
  });

  it('closeReason: errno names, TLS codes, Abort, Release, dead peers, normal closes', () => {
    expect(closeReason(-111, CONN_EVF_SYSERR, false, false, false).code).toBe('ECONNREFUSED');
    expect(closeReason(-104, CONN_EVF_SYSERR, true, false, false).code).toBe('ECONNRESET');
    expect(closeReason(-105, CONN_EVF_TLSERR, false, false, false).code).toBe('VERIFY');
    expect(closeReason(-107, CONN_EVF_TLSERR, false, false, false).code).toBe('PSK');
    expect(closeReason(-104, CONN_EVF_TLSERR, false, false, false).code).toBe('HANDSHAKE');
    expect(closeReason(0, 0, true, true, false).code).toBe('ABORTED');
    expect(closeReason(0, 0, true, false, true).code).toBe('RELEASED');
    expect(closeReason(E_TIMEOUT, 0, true, false, false).code).toBe('TIMEOUT');
    expect(closeReason(-16, 0, true, false, false).code).toBe('PROTOCOL');
    expect(closeReason(0, 0, true, false, false).code).toBeUndefined();
  });

  it('streamConfig: framing, Max-Message-Size and the exchange slots within 65535', () => {
    const tcp = streamConfig('tcp', {}, 'server');
    expect(tcp.length).toBe(STREAM_CONFIG_WORDS);
    expect(tcp[STREAM_CONFIG_CONN + CONNC_TRANSPORT]).toBe(1);
    expect(tcp[STREAM_CONFIG_CONN + CONNC_MAX_MESSAGE_SIZE]).toBe(4224);
    expect((tcp[STREAM_CONFIG_LIMITS + SLIM_MAX_CONNS] as number) * (tcp[STREAM_CONFIG_CONN + CONNC_MAX_EXCHANGES] as number)).toBeLessThanOrEqual(65535);
    const ws = streamConfig('ws', { maxMessageSize: 8192, maxConnections: 60000 }, 'client');
    expect(ws[STREAM_CONFIG_CONN + CONNC_TRANSPORT]).toBe(2);
    expect(ws[STREAM_CONFIG_CONN + CONNC_MAX_MESSAGE_SIZE]).toBe(8192);
    expect((ws[STREAM_CONFIG_LIMITS + SLIM_MAX_CONNS] as number) * (ws[STREAM_CONFIG_CONN + CONNC_MAX_EXCHANGES] as number)).toBeLessThanOrEqual(65535);
  });
});
