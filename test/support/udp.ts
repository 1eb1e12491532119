/**
 * Helpers for the UDP suites: raw dgram peers that speak CoAP through the codec (so the
 * test side depends on nothing under test but the codec), bounded waits, and the list of
 * UDP backends to run every suite on.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import type { CoapMessage } from '../../ts/codec';
import { anyCodec as codec, hasNative } from './backends';

/**
 * Every suite runs on both drivers; on WASM alone where the native addon was not built
 * (outside CI only: the global setup printed why).
 */
export const udpBackends: readonly ('native' | 'wasm')[] = hasNative ? ['native', 'wasm'] : ['wasm'];

export const utf8 = new TextEncoder();
export const fromUtf8 = (b: Uint8Array): string => new TextDecoder().decode(b);

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Rejects after ms unless p settles first. */
export function within<T>(p: Promise<T>, ms: number, what = 'operation'): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
    }),
  ]);
}

export interface RawMessage {
  bytes: Uint8Array;
  msg: CoapMessage | undefined;
  rinfo: RemoteInfo;
}

/** A raw UDP peer: sends bytes or messages, queues what it receives. */
export class RawPeer {
  readonly sock: Socket;
  private readonly queue: RawMessage[] = [];
  private waiters: ((m: RawMessage) => void)[] = [];
  /** Called for every datagram before it is queued; return true to swallow it. */
  onMessage: ((m: RawMessage, peer: RawPeer) => boolean | void) | undefined;

  private constructor(type: 'udp4' | 'udp6') {
    this.sock = createSocket(type);
    this.sock.on('message', (b: Buffer, rinfo) => {
      const bytes = new Uint8Array(b);
      let msg: CoapMessage | undefined;
      try {
        msg = codec.decode(bytes);
      } catch {
        msg = undefined;
      }
      const m: RawMessage = { bytes, msg, rinfo };
      if (this.onMessage?.(m, this) === true) return;
      const w = this.waiters.shift();
      if (w !== undefined) w(m);
      else this.queue.push(m);
    });
  }

  static async open(host = '127.0.0.1', port = 0): Promise<RawPeer> {
    const p = new RawPeer(host.includes(':') ? 'udp6' : 'udp4');
    await new Promise<void>((resolve) => p.sock.bind(port, host, resolve));
    return p;
  }

  get port(): number {
    return this.sock.address().port;
  }

  sendBytes(bytes: Uint8Array, port: number, host = '127.0.0.1'): Promise<void> {
    return new Promise((resolve, reject) => this.sock.send(bytes, port, host, (e) => (e ? reject(e) : resolve())));
  }

  send(msg: CoapMessage, port: number, host = '127.0.0.1'): Promise<void> {
    return this.sendBytes(codec.encode(msg), port, host);
  }

  /** The next datagram, or an error after ms. */
  next(ms = 2000): Promise<RawMessage> {
    const m = this.queue.shift();
    if (m !== undefined) return Promise.resolve(m);
    return within(
      new Promise<RawMessage>((resolve) => this.waiters.push(resolve)),
      ms,
      'waiting for a datagram',
    ).catch((e) => {
      this.waiters = [];
      throw e;
    });
  }

  /** Waits ms and returns everything that arrived. */
  async drain(ms: number): Promise<RawMessage[]> {
    await sleep(ms);
    return this.queue.splice(0);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.sock.close(() => resolve()));
  }
}

/** A CoAP message for the codec. */
export function msg(
  type: 'CON' | 'NON' | 'ACK' | 'RST',
  code: string,
  messageId: number,
  token: number[] = [],
  options: { number: number; value: Uint8Array | string }[] = [],
  payload: Uint8Array | string = new Uint8Array(0),
): CoapMessage {
  return {
    type,
    code,
    messageId,
    token: Uint8Array.from(token),
    options: options.map((o) => ({ number: o.number, value: typeof o.value === 'string' ? utf8.encode(o.value) : o.value })),
    payload: typeof payload === 'string' ? utf8.encode(payload) : payload,
  };
}

/** Uri-Path options for a path. */
export function pathOpts(path: string): { number: number; value: string }[] {
  return path
    .split('/')
    .filter((s) => s !== '')
    .map((s) => ({ number: 11, value: s }));
}

export function opt(m: CoapMessage | undefined, number: number): Uint8Array | undefined {
  return m?.options.find((o) => o.number === number)?.value;
}

export function uintOf(b: Uint8Array | undefined): number | undefined {
  if (b === undefined) return undefined;
  let v = 0;
  for (const x of b) v = v * 256 + x;
  return v;
}

/** Minimal big-endian bytes of an unsigned option value (empty for 0; RFC 7252 §3.2). */
export function uintBytes(v: number): Uint8Array {
  const out: number[] = [];
  while (v > 0) {
    out.unshift(v & 0xff);
    v = Math.floor(v / 256);
  }
  return Uint8Array.from(out);
}

/** A Block1/Block2 option value (RFC 7959 §2.2): block number, more flag, block size 16..1024. */
export function blockValue(num: number, more: boolean, size: number): Uint8Array {
  return uintBytes((num << 4) | (more ? 8 : 0) | (Math.log2(size) - 4));
}

/** The Block1/Block2 option `number` of a received message, decoded, or undefined if absent. */
export function blockOf(m: RawMessage, number: number): { num: number; more: boolean; size: number } | undefined {
  const v = uintOf(opt(m.msg, number));
  return v === undefined ? undefined : { num: v >> 4, more: (v & 8) !== 0, size: 16 << (v & 7) };
}

/** What the tests of a suite open (agents, servers, raw peers), closed together after each test. */
export class Tracked<T extends { close(): unknown }> {
  private readonly items: T[] = [];

  /** Keeps x for {@link closeAll}; returns it. */
  add(x: T): T {
    this.items.push(x);
    return x;
  }

  /** Closes every item kept (in parallel) and forgets them. */
  async closeAll(): Promise<void> {
    await Promise.all(this.items.splice(0).map((x) => x.close()));
  }
}
