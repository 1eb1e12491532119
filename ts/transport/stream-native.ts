/**
 * The native stream host: a thin wrapper over the addon's stream* functions
 * (native/binding/stream.c). Listeners and connections (TCP, TLS) live on Node's libuv loop;
 * the connection driver (native/driver/stream.c: RFC 8323 per connection, one server pipeline)
 * and TLS (OpenSSL through native/driver/tls.c) run in C; batches arrive through one callback
 * per event-loop turn. Framing 'tcp' only (WebSockets: the JS-socket host, stream-js.ts).
 *
 * @internal
 */
import { loadNativeAddon } from '../backend/native';
import { checkAbi } from '../driver/abi-check';
import { STREAM_STATS_BYTES } from '../driver/abi';
import type { SocketAddress } from '../driver/driver';
import { TX_AREA_BYTES, TX_TABLE_WORDS } from './udp-records';
import { streamStatsFromView } from './stream-stats';
import { nativeAddress, nativeBatchCallback, sysError } from './native-host';
import type {
  StreamBatchHandler,
  StreamConnectOptions,
  StreamCore,
  StreamCoreFactory,
  StreamFraming,
  StreamListenOptions,
  StreamStats,
  TlsSettings,
} from './stream-core';

/** What tlsContext() takes (native/binding/stream.c). */
interface NativeTlsOptions {
  role: 'server' | 'client';
  certPem?: string;
  keyPem?: string;
  caPem?: string;
  requestCert?: boolean;
  rejectUnauthorized?: boolean;
  pskTable?: [string, Uint8Array][];
  pskCallback?: (identity: string) => Uint8Array | undefined;
  pskIdentity?: string;
  pskKey?: Uint8Array;
  /** ALPN "coap": 0 optional (default), 1 required, 2 off */
  alpn?: number;
}

/** The addon's stream host exports. */
export interface StreamAddon {
  abiHash: number;
  abiLayout: Uint32Array;
  streamCreate(
    config: Uint32Array,
    seed: Uint8Array,
    self: object,
    onBatch: (ab: ArrayBuffer, count: number, base: number) => void,
    txWords: Uint32Array,
    txBytes: Uint8Array,
  ): unknown;
  /** The listener's index, or a negative errno. */
  streamListen(h: unknown, host: string, port: number, flags: number, tls: unknown): number;
  streamAddress(h: unknown, index: number): [number, number, string] | number;
  /** The connection's id (OPEN or CLOSED records follow). */
  streamConnect(h: unknown, host: string, port: number, tls: unknown, servername: string | null): number;
  streamCloseConn(h: unknown, id: number, abort: boolean, diagnostic: string | null): number;
  streamFlush(h: unknown, nwords: number, nbytes: number): number;
  streamReadBody(h: unknown, id: number, length: number): Uint8Array | number;
  streamRef(h: unknown, on: boolean): void;
  streamStats(h: unknown, out: Uint8Array): void;
  streamClose(h: unknown, done: () => void): void;
  /** Throws an Error whose `code` is the TLS error name ('CONFIG', ...). */
  tlsContext(o: NativeTlsOptions): unknown;
  tlsContextFree(ctx: unknown): void;
}

/** Stats from a tcs_host_stats view: every SST_* counter (the shared reader of ./stream-stats). */
export { streamStatsFromView };

function tlsOptions(t: TlsSettings, role: 'server' | 'client'): NativeTlsOptions {
  const o: NativeTlsOptions = { role };
  if (t.certPem !== undefined) o.certPem = t.certPem;
  if (t.keyPem !== undefined) o.keyPem = t.keyPem;
  if (t.caPem !== undefined) o.caPem = t.caPem;
  if (t.requestCert !== undefined) o.requestCert = t.requestCert;
  if (t.rejectUnauthorized !== undefined) o.rejectUnauthorized = t.rejectUnauthorized;
  if (t.pskTable !== undefined) o.pskTable = [...t.pskTable];
  if (t.pskCallback !== undefined) {
    const cb = t.pskCallback;
    o.pskCallback = (identity) => {
      try {
        return cb(identity);
      } catch {
        return undefined; /* an unknown identity */
      }
    };
  }
  if (t.pskIdentity !== undefined) o.pskIdentity = t.pskIdentity;
  if (t.pskKey !== undefined) o.pskKey = t.pskKey;
  return o;
}

/** A TLS settings error (bad PEM, bad PSK): code 'TLS_CONFIG'. */
export class StreamTlsConfigError extends Error {
  readonly code = 'TLS_CONFIG';
}

class NativeStreamCore implements StreamCore {
  readonly kind = 'native' as const;
  readonly framing = 'tcp' as const;
  readonly txWords = new Uint32Array(TX_TABLE_WORDS);
  readonly txBytes = new Uint8Array(TX_AREA_BYTES);
  private readonly h: unknown;
  private closed: Promise<void> | undefined;
  private readonly statsBuf = new Uint8Array(STREAM_STATS_BYTES);
  private readonly statsView = new DataView(this.statsBuf.buffer);
  private readonly onNative: (ab: ArrayBuffer, count: number, base: number) => void;
  /** Client TLS contexts by settings object (a context is freed by its finalizer once unused;
   *  connections hold their own reference). */
  private readonly clientCtx = new WeakMap<TlsSettings, unknown>();

  constructor(
    private readonly addon: StreamAddon,
    config: Uint32Array,
    seed: Uint8Array,
    onBatch: StreamBatchHandler,
  ) {
    this.onNative = nativeBatchCallback(onBatch);
    this.h = addon.streamCreate(config, seed, this, this.onNative, this.txWords, this.txBytes);
  }

  private tlsContext(t: TlsSettings, role: 'server' | 'client'): unknown {
    try {
      return this.addon.tlsContext(tlsOptions(t, role));
    } catch (e) {
      throw new StreamTlsConfigError(`turbocoap: TLS settings: ${(e as Error).message}`, { cause: e });
    }
  }

  listen(o: StreamListenOptions): Promise<{ index: number; address: SocketAddress }> {
    let ctx: unknown = null;
    try {
      if (o.tls !== undefined) ctx = this.tlsContext(o.tls, 'server');
    } catch (e) {
      return Promise.reject(e);
    }
    const index = this.addon.streamListen(this.h, o.host, o.port, o.ipv6Only === true ? 1 : 0, ctx);
    if (ctx !== null) this.addon.tlsContextFree(ctx); /* the listener keeps its own reference */
    if (index < 0) return Promise.reject(sysError(index, `listen ${o.host}:${o.port}`));
    return Promise.resolve({ index, address: this.address(index) });
  }

  private address(index: number): SocketAddress {
    return nativeAddress(this.addon.streamAddress(this.h, index));
  }

  connect(o: StreamConnectOptions): number {
    let ctx: unknown = null;
    if (o.tls !== undefined) {
      ctx = this.clientCtx.get(o.tls);
      if (ctx === undefined) {
        ctx = this.tlsContext(o.tls, 'client');
        this.clientCtx.set(o.tls, ctx);
      }
    }
    return this.addon.streamConnect(this.h, o.host, o.port, ctx, o.tls?.servername ?? null);
  }

  closeConn(id: number, abort: boolean, diagnostic?: string): void {
    this.addon.streamCloseConn(this.h, id, abort, diagnostic ?? null);
  }

  flush(nwords: number, nbytes: number): number {
    return this.addon.streamFlush(this.h, nwords, nbytes);
  }

  readBody(id: number, length: number): Uint8Array | number {
    return this.addon.streamReadBody(this.h, id, length);
  }

  setRef(on: boolean): void {
    this.addon.streamRef(this.h, on);
  }

  stats(): StreamStats {
    this.addon.streamStats(this.h, this.statsBuf);
    return streamStatsFromView(this.statsView);
  }

  close(): Promise<void> {
    return (this.closed ??= new Promise<void>((resolve) => {
      this.addon.streamClose(this.h, () => resolve());
    }));
  }
}

/** Creates native stream hosts over an addon (checks its driver ABI against ts/driver/abi.ts). */
export function nativeStreamFactory(addon: StreamAddon): StreamCoreFactory {
  checkAbi('native addon', addon.abiHash, addon.abiLayout, 'npx node-gyp rebuild');
  return (framing: StreamFraming, config: Uint32Array, seed: Uint8Array, onBatch: StreamBatchHandler): StreamCore => {
    if (framing !== 'tcp') throw new TypeError(`turbocoap: the native stream host frames 'tcp' only, not '${framing}'`);
    return new NativeStreamCore(addon, config, seed, onBatch);
  };
}

let factory: StreamCoreFactory | undefined;

/** The native stream host (StreamCoreFactory), over the addon the codec uses. Throws when the
 *  addon cannot be loaded. */
export const nativeStreamCore: StreamCoreFactory = (framing, config, seed, onBatch, role) => {
  if (factory === undefined) {
    factory = nativeStreamFactory(loadNativeAddon() as StreamAddon);
  }
  return factory(framing, config, seed, onBatch, role);
};
