/**
 * The native UDP driver: a thin wrapper over the addon's udp* functions
 * (native/binding/udp.c). The socket lives on Node's libuv loop; the datagram driver
 * (native/driver/dgram.c: tc_ep, block-wise, Observe) runs in C; batches arrive through one
 * callback per event-loop turn.
 *
 * @internal
 */
import { checkAbi } from '../driver/abi-check';
import {
  STATS_BYTES,
} from '../driver/abi';
import {
  TX_AREA_BYTES,
  TX_TABLE_WORDS,
  statsFromView,
  type BatchHandler,
  type EndpointStats,
  type SocketAddress,
  type UdpDriver,
} from './udp-records';
import { nativeAddress, nativeBatchCallback, sysError } from './native-host';

/** The addon's driver exports. */
export interface UdpAddon {
  /** The driver ABI the addon was compiled with (native/driver/abi.h). */
  abiHash: number;
  abiLayout: Uint32Array;
  udpCreate(
    family: number,
    config: Uint32Array,
    seed: Uint8Array,
    self: object,
    onBatch: (ab: ArrayBuffer, count: number, base: number) => void,
    txWords: Uint32Array,
    txBytes: Uint8Array,
    server?: boolean,
    security?: object,
  ): unknown;
  udpBind(h: unknown, host: string, port: number, flags: number): number;
  udpAddress(h: unknown): [number, number, string] | number;
  udpFlush(h: unknown, nwords: number, nbytes: number): number;
  udpRef(h: unknown, on: boolean): void;
  udpClose(h: unknown, done: () => void): void;
  udpStats(h: unknown, out: Uint8Array): void;
  udpReadBody(h: unknown, id: number, length: number): Uint8Array | number;
  /** DTLS mode only (ts/transport/dtls.ts): the DTLS layer's counters. */
  dtlsStats?(h: unknown): Record<string, number> | undefined;
}

export class NativeUdpDriver implements UdpDriver {
  readonly kind = 'native' as const;
  readonly txWords = new Uint32Array(TX_TABLE_WORDS);
  readonly txBytes = new Uint8Array(TX_AREA_BYTES);
  private readonly h: unknown;
  private closed: Promise<void> | undefined;
  /** The driver's stats struct, copied in by udpStats and read at the generated offsets. */
  private readonly statsBuf = new Uint8Array(STATS_BYTES);
  private readonly statsView = new DataView(this.statsBuf.buffer);
  private readonly onNative: (ab: ArrayBuffer, count: number, base: number) => void;

  constructor(
    private readonly addon: UdpAddon,
    readonly family: 4 | 6,
    config: Uint32Array,
    seed: Uint8Array,
    onBatch: BatchHandler,
    /** DTLS mode (ts/transport/dtls.ts): the role and the addon's security object. */
    dtls?: { server: boolean; security: object },
  ) {
    // kept reachable from this object (which the endpoint keeps): see nativeBatchCallback
    this.onNative = nativeBatchCallback(onBatch);
    this.h =
      dtls === undefined
        ? addon.udpCreate(family, config, seed, this, this.onNative, this.txWords, this.txBytes)
        : addon.udpCreate(family, config, seed, this, this.onNative, this.txWords, this.txBytes, dtls.server, dtls.security);
  }

  bind(host: string, port: number, flags: number): Promise<void> {
    const rc = this.addon.udpBind(this.h, host, port, flags);
    if (rc < 0) return Promise.reject(sysError(rc, `bind ${host}:${port}`));
    return Promise.resolve();
  }

  address(): SocketAddress {
    return nativeAddress(this.addon.udpAddress(this.h));
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

  /** DTLS mode: the DTLS layer's counters (sessions, handshakes, bytes...). */
  dtlsStats(): Record<string, number> | undefined {
    return this.addon.dtlsStats?.(this.h);
  }

  stats(): EndpointStats {
    this.addon.udpStats(this.h, this.statsBuf);
    return statsFromView(this.statsView);
  }
}

/** Creates native drivers over an addon (checks its driver ABI against ts/driver/abi.ts). */
export function nativeUdpFactory(addon: UdpAddon) {
  checkAbi('native addon', addon.abiHash, addon.abiLayout, 'npx node-gyp rebuild');
  return (family: 4 | 6, config: Uint32Array, seed: Uint8Array, onBatch: BatchHandler): UdpDriver =>
    new NativeUdpDriver(addon, family, config, seed, onBatch);
}
