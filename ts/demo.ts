/**
 * The demo server behind `turbocoap serve` and `npm start`: a few resources
 * that show the server API, the router and discovery.
 *
 * - `GET /hello` — a greeting (text/plain; `Accept: application/json` gets JSON).
 * - `GET /time` — the current time, ISO 8601, Max-Age 1; observable (RFC 7641): the
 *   server notifies its observers every second.
 * - `GET /large` — 1,048,576 bytes where byte i is `i % 251`, served block-wise (RFC 7959)
 *   from the C core's Block2 cache.
 * - `GET /store` — the stored keys, as link-format.
 * - `GET|PUT|POST|DELETE /store/:key` — an in-memory key/value store with
 *   ETags (If-Match, If-None-Match and ETag validation are honoured). PUT
 *   replaces, POST appends; bodies of any size up to the bound arrive block-wise
 *   (Block1, reassembled by the core). Bounded: a value above `maxValueBytes` gets 4.13
 *   (with Size1); a store at `maxEntries` or `maxBytes` gets 5.03 (Max-Age).
 * - `GET /.well-known/core` — discovery: the server generates it from the
 *   routes' link attributes (rt, if, ct, title).
 */
import { ContentFormat } from './content-format';
import { OptionNumber, encodeUint } from './options';
import { Router } from './router';
import { createServer, type CoapServer, type ResponseInit, type ServerOptions, type ServerRouter } from './server';
import type { IncomingRequest } from './incoming';

/** Bounds and knobs of {@link createDemoServer}. */
export interface DemoServerOptions {
  /** Most keys in the store (default 1024). */
  readonly maxEntries?: number;
  /** Most bytes in the store, keys plus values (default 8 MiB). */
  readonly maxBytes?: number;
  /** Largest single value in bytes (default 1 MiB, the block-wise upload bound of the server). */
  readonly maxValueBytes?: number;
  /** Period of the `/time` notifications in ms (default 1000). */
  readonly timeInterval?: number;
  /** Longest key in bytes (default 64). */
  readonly maxKeyBytes?: number;
  /** Max-Age (s) sent with 5.03 when the store is full (default 30). */
  readonly fullMaxAge?: number;
  /** Options for `createServer` (backend, messaging-layer settings). */
  readonly server?: ServerOptions;
}

type Res = ResponseInit | Promise<ResponseInit>;

interface Entry {
  value: Uint8Array;
  contentFormat: number | undefined;
  etag: Uint8Array;
}

const utf8 = new TextEncoder();

/** A 4-byte ETag from the content and its format (FNV-1a). */
function etagOf(value: Uint8Array, contentFormat: number | undefined): Uint8Array {
  let h = 0x811c9dc5 | 0;
  for (let i = 0; i < value.length; i++) h = Math.imul(h ^ (value[i] as number), 0x01000193);
  h = Math.imul(h ^ ((contentFormat ?? 0xffff) & 0xff), 0x01000193);
  h = Math.imul(h ^ ((contentFormat ?? 0xffff) >>> 8), 0x01000193);
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, h >>> 0);
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function optionValues(req: IncomingRequest, number: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const o of req.options) if (o.number === number) out.push(o.value);
  return out;
}

/**
 * The demo store: bounded in entries and bytes. Exposed for tests.
 */
export class DemoStore {
  readonly maxEntries: number;
  readonly maxBytes: number;
  readonly maxValueBytes: number;
  readonly maxKeyBytes: number;
  private readonly entries = new Map<string, Entry>();
  private used = 0;

  constructor(opts: DemoServerOptions = {}) {
    this.maxEntries = opts.maxEntries ?? 1024;
    this.maxBytes = opts.maxBytes ?? 8 * 1024 * 1024;
    this.maxValueBytes = opts.maxValueBytes ?? 1024 * 1024;
    this.maxKeyBytes = opts.maxKeyBytes ?? 64;
  }

  /** Number of keys. */
  get size(): number {
    return this.entries.size;
  }
  /** Bytes used (keys plus values). */
  get bytes(): number {
    return this.used;
  }
  get(key: string): Entry | undefined {
    return this.entries.get(key);
  }
  keys(): IterableIterator<string> {
    return this.entries.keys();
  }

  /**
   * Stores `value` under `key`: `'created'` / `'changed'`, or why not:
   * `'too-large'` (the value alone exceeds maxValueBytes) or `'full'`.
   */
  set(key: string, value: Uint8Array, contentFormat: number | undefined): 'created' | 'changed' | 'too-large' | 'full' {
    if (value.length > this.maxValueBytes) return 'too-large';
    const keyBytes = utf8.encode(key).length;
    const old = this.entries.get(key);
    const delta = value.length - (old === undefined ? -keyBytes : old.value.length);
    if (old === undefined && this.entries.size >= this.maxEntries) return 'full';
    if (this.used + delta > this.maxBytes) return 'full';
    this.used += delta;
    this.entries.set(key, { value, contentFormat, etag: etagOf(value, contentFormat) });
    return old === undefined ? 'created' : 'changed';
  }

  delete(key: string): boolean {
    const old = this.entries.get(key);
    if (old === undefined) return false;
    this.used -= utf8.encode(key).length + old.value.length;
    this.entries.delete(key);
    return true;
  }
}

/** Size of `/large`. */
export const LARGE_SIZE = 1024 * 1024;
let large: Uint8Array | undefined;

/** The body of `/large`: LARGE_SIZE bytes, byte i = i % 251 (built once). */
export function largeBody(): Uint8Array {
  if (large === undefined) {
    large = new Uint8Array(LARGE_SIZE);
    for (let i = 0; i < LARGE_SIZE; i++) large[i] = i % 251;
  }
  return large;
}

/** The demo server's router (exposed for tests and embedding). */
export function createDemoRouter(opts: DemoServerOptions = {}, store = new DemoStore(opts)): ServerRouter {
  const fullMaxAge = opts.fullMaxAge ?? 30;
  const router: ServerRouter = new Router<IncomingRequest, Res>();

  router.get(
    '/hello',
    (req) => {
      if (req.accept === ContentFormat.Json) {
        return { code: '2.05', payload: JSON.stringify({ hello: 'world' }), contentFormat: ContentFormat.Json };
      }
      if (req.accept !== undefined && req.accept !== ContentFormat.TextPlain) {
        return { code: '4.06', payload: 'text/plain or application/json only' };
      }
      return { code: '2.05', payload: 'Hello, CoAP!', contentFormat: ContentFormat.TextPlain };
    },
    { rt: 'demo.hello', if: 'core.rp', ct: [0, 50], title: 'Hello world' },
  );

  router.get(
    '/time',
    () => ({ code: '2.05', payload: new Date().toISOString(), contentFormat: ContentFormat.TextPlain, maxAge: 1 }),
    { rt: 'demo.time', if: 'core.s', ct: 0, obs: true, title: 'Current time (ISO 8601)' },
  );

  router.get('/large', () => ({ code: '2.05', payload: largeBody(), contentFormat: ContentFormat.OctetStream }), {
    rt: 'demo.large',
    ct: 42,
    sz: LARGE_SIZE,
    title: 'A 1 MiB body, byte i = i % 251',
  });

  router.get(
    '/store',
    () => {
      const links: string[] = [];
      for (const k of store.keys()) {
        const e = store.get(k) as Entry;
        links.push(`</store/${encodeURIComponent(k)}>${e.contentFormat === undefined ? '' : `;ct=${e.contentFormat}`};sz=${e.value.length}`);
      }
      return { code: '2.05', payload: links.join(','), contentFormat: ContentFormat.LinkFormat };
    },
    { rt: 'demo.store', if: 'core.ll', ct: 40, title: 'Key/value store' },
  );

  const badKey = (key: string): ResponseInit | undefined => {
    if (key === '') return { code: '4.00', payload: 'empty key' };
    if (utf8.encode(key).length > store.maxKeyBytes) return { code: '4.00', payload: `key longer than ${store.maxKeyBytes} bytes` };
    return undefined;
  };

  /** If-Match / If-None-Match (RFC 7252 §5.10.8): undefined if the request may go on, else 4.12. */
  const preconditions = (req: IncomingRequest, current: Entry | undefined): ResponseInit | undefined => {
    const ifMatch = optionValues(req, OptionNumber.IfMatch);
    if (ifMatch.length > 0) {
      const ok = current !== undefined && ifMatch.some((v) => v.length === 0 || sameBytes(v, current.etag));
      if (!ok) return { code: '4.12' };
    }
    if (optionValues(req, OptionNumber.IfNoneMatch).length > 0 && current !== undefined) return { code: '4.12' };
    return undefined;
  };

  const write = (req: IncomingRequest, key: string, append: boolean): ResponseInit => {
    const bad = badKey(key);
    if (bad !== undefined) return bad;
    const current = store.get(key);
    const pre = preconditions(req, current);
    if (pre !== undefined) return pre;
    let value = new Uint8Array(req.payload);
    if (append && current !== undefined) {
      value = new Uint8Array(current.value.length + req.payload.length);
      value.set(current.value, 0);
      value.set(req.payload, current.value.length);
    }
    const cf = req.contentFormat ?? (append ? current?.contentFormat : undefined);
    const r = store.set(key, value, cf);
    if (r === 'too-large') {
      return {
        code: '4.13',
        payload: `values are limited to ${store.maxValueBytes} bytes`,
        options: [{ number: OptionNumber.Size1, value: encodeUint(store.maxValueBytes) }],
      };
    }
    if (r === 'full') return { code: '5.03', payload: 'store full', maxAge: fullMaxAge };
    const e = store.get(key) as Entry;
    return { code: r === 'created' ? '2.01' : '2.04', etag: e.etag };
  };

  router.get('/store/:key', (req, params) => {
    const key = params.key as string;
    const bad = badKey(key);
    if (bad !== undefined) return bad;
    const e = store.get(key);
    if (e === undefined) return { code: '4.04' };
    // ETag validation (RFC 7252 §5.10.6.2): a matching ETag gets 2.03 Valid, no payload.
    if (optionValues(req, OptionNumber.ETag).some((v) => sameBytes(v, e.etag))) return { code: '2.03', etag: e.etag };
    if (req.accept !== undefined && e.contentFormat !== undefined && req.accept !== e.contentFormat) return { code: '4.06' };
    return {
      code: '2.05',
      payload: e.value,
      etag: e.etag,
      ...(e.contentFormat === undefined ? {} : { contentFormat: e.contentFormat }),
    };
  });
  router.put('/store/:key', (req, params) => write(req, params.key as string, false));
  router.post('/store/:key', (req, params) => write(req, params.key as string, true));
  router.delete('/store/:key', (req, params) => {
    const key = params.key as string;
    const bad = badKey(key);
    if (bad !== undefined) return bad;
    const pre = preconditions(req, store.get(key));
    if (pre !== undefined) return pre;
    store.delete(key);
    return { code: '2.02' };
  });

  // GET /.well-known/core is served by the server from these routes' attributes.
  return router;
}

/**
 * Creates (does not start) the demo server. Start it with
 * `await server.listen({ port, host })`.
 */
export function createDemoServer(opts: DemoServerOptions = {}): CoapServer {
  const server = createServer(createDemoRouter(opts), opts.server);
  const time = server.resource('/time');
  let started = false;
  // Notify /time's observers every period while the server listens (the timer does not keep
  // the process alive; the socket does).
  const timer = setInterval(() => {
    if (server.listening) {
      started = true;
      time.notify();
    } else if (started) clearInterval(timer);
  }, opts.timeInterval ?? 1000);
  timer.unref();
  return server;
}
