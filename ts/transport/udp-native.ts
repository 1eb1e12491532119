/**
 * The native UDP driver: a thin wrapper over the addon's udp* functions
 * (native/binding/udp.c). The socket lives on Node's libuv loop; the server pipeline
 * (tc_srv: tc_ep, block-wise, Observe) runs in C; batches arrive through one callback per
 * event-loop turn.
 *
 * @internal
 */
import { getSystemErrorName } from 'node:util';
import { CoapNetworkError } from '../errors';
import {
  BATCH_ABI,
  SRV_STATS_WORDS,
  TX_AREA_BYTES,
  TX_TABLE_WORDS,
  statsFrom,
  type BatchHandler,
  type EndpointStats,
  type SocketAddress,
  type UdpDriver,
} from './udp-records';

/** The addon's driver exports. */
export interface UdpAddon {
  udpAbi: number;
  udpCreate(
    family: number,
    config: Uint32Array,
    seed: Uint8Array,
    self: object,
    onBatch: (ab: ArrayBuffer, count: number, base: number) => void,
    txWords: Uint32Array,
    txBytes: Uint8Array,
  ): unknown;
  udpBind(h: unknown, host: string, port: number, flags: number): number;
  udpAddress(h: unknown): [number, number, string] | number;
  udpFlush(h: unknown, nwords: number, nbytes: number): number;
  udpRef(h: unknown, on: boolean): void;
  udpClose(h: unknown, done: () => void): void;
  udpStats(h: unknown, out: Float64Array): void;
  udpReadBody(h: unknown, id: number, length: number): Uint8Array | number;
}

/** udpStats layout: tc_ep_stats [0, 17), driver counters [17, 27), tc_srv_stats from 27, then
 *  five more tc_ep_stats counters (echo challenges, responses NON, dropped, NON duplicates,
 *  verified endpoints). */
const STATS_SRV = 27;
const STATS_EP2 = STATS_SRV + SRV_STATS_WORDS;

/** An Error for a negative libuv / errno code. */
export function sysError(rc: number, what: string): CoapNetworkError {
  let name = 'EIO';
  try {
    name = getSystemErrorName(rc);
  } catch {
    /* not a known errno */
  }
  return new CoapNetworkError(name, `${what}: ${name}`);
}

class NativeUdpDriver implements UdpDriver {
  readonly kind = 'native' as const;
  readonly txWords = new Uint32Array(TX_TABLE_WORDS);
  readonly txBytes = new Uint8Array(TX_AREA_BYTES);
  private readonly h: unknown;
  private closed: Promise<void> | undefined;
  private readonly statsBuf = new Float64Array(STATS_EP2 + 5);
  private readonly onNative: (ab: ArrayBuffer, count: number, base: number) => void;

  constructor(
    private readonly addon: UdpAddon,
    readonly family: 4 | 6,
    config: Uint32Array,
    seed: Uint8Array,
    onBatch: BatchHandler,
  ) {
    // The addon holds the callback weakly while the socket is unref'd: keep it reachable
    // from this object (which the endpoint keeps) so it lives as long as the driver.
    this.onNative = (ab, count, base) => onBatch(new Uint32Array(ab, 0, base >>> 2), new Uint8Array(ab), count, base);
    this.h = addon.udpCreate(family, config, seed, this, this.onNative, this.txWords, this.txBytes);
  }

  bind(host: string, port: number, flags: number): Promise<void> {
    const rc = this.addon.udpBind(this.h, host, port, flags);
    if (rc < 0) return Promise.reject(sysError(rc, `bind ${host}:${port}`));
    return Promise.resolve();
  }

  address(): SocketAddress {
    const a = this.addon.udpAddress(this.h);
    if (typeof a === 'number') throw sysError(a, 'address');
    return { address: a[2], family: a[0] === 4 ? 'IPv4' : 'IPv6', port: a[1] };
  }

  flush(nwords: number, nbytes: number): number {
    return this.addon.udpFlush(this.h, nwords, nbytes);
  }

  readBody(id: number, length: number): Uint8Array | number {
    return this.addon.udpReadBody(this.h, id, length);
  }

  setRef(on: boolean): void {
    this.addon.udpRef(this.h, on);
  }

  close(): Promise<void> {
    return (this.closed ??= new Promise<void>((resolve) => this.addon.udpClose(this.h, resolve)));
  }

  stats(): EndpointStats {
    const s = this.statsBuf;
    this.addon.udpStats(this.h, s);
    // driver counters from index 17: dispatches, dispatched, sendmmsg calls, sent,
    // send errors, fallback sends, dropped, recv errors, timer runs, GSO messages
    return statsFrom(
      s,
      s,
      STATS_SRV,
      s[17] as number,
      s[18] as number,
      (s[20] as number) + (s[22] as number),
      s[19] as number,
      (s[21] as number) + (s[23] as number),
      s[26] as number,
      s,
      STATS_EP2,
    );
  }
}

/** Creates native drivers over an addon (checks the record layout version). */
export function nativeUdpFactory(addon: UdpAddon) {
  if (addon.udpAbi !== BATCH_ABI) throw new Error('turbocoap: native addon UDP ABI mismatch (rebuild it: npx node-gyp rebuild)');
  return (family: 4 | 6, config: Uint32Array, seed: Uint8Array, onBatch: BatchHandler): UdpDriver =>
    new NativeUdpDriver(addon, family, config, seed, onBatch);
}
