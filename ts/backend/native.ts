/**
 * The Node native addon backend (build/Release/turbocoap.node or a prebuild).
 *
 * @internal
 */
import * as path from 'path';
import { checkAbi } from '../driver/abi-check';
import {
  BWC_RES_WORDS,
  MSG_WORDS,
  OPT_WORDS,
  ascii,
  bodyTarget,
  readOptionRegistry,
  type Backend,
  type BwcHandle,
  type ClientTransfers,
  type DeframerHandle,
  type RawOptionDef,
} from './types';

/** The raw exports of native/binding/addon.cc. */
interface Addon {
  setScratch(table: Uint32Array, bytes: Uint8Array): void;
  decode(input: Uint8Array, transport: number): number;
  decodeWith(input: Uint8Array, transport: number, table: Uint32Array): number;
  encode(transport: number, outOffset: number): number;
  encodeWith(transport: number, table: Uint32Array, buf: Uint8Array, outOffset: number): number;
  deframerSize(max: number): number;
  deframerInit(mem: Uint8Array, max: number): number;
  deframerFeed(mem: Uint8Array, chunk: Uint8Array, start: number): number;
  deframerBufferOffset(mem: Uint8Array): number;
  deframerPending(mem: Uint8Array): number;
  optionCount(): number;
  optionAt(i: number): number;
  optionFind(code: number, number: number): number;
  errorName(err: number): number;
  bwcSize(config: Uint32Array): number;
  bwcInit(state: Uint8Array, config: Uint32Array): number;
  bwcGetBegin(state: Uint8Array, res: Uint32Array): number;
  bwcGetResponse(state: Uint8Array, datagram: Uint8Array, body: Uint8Array, res: Uint32Array): number;
  bwcPutBegin(state: Uint8Array, bodyLength: number, tag: Uint8Array, res: Uint32Array): number;
  bwcPutResponse(state: Uint8Array, datagram: Uint8Array, res: Uint32Array): number;
  bwcRequestTag(state: Uint8Array, out: Uint8Array): number;
  obsFresh(v1: number, t1: number, v2: number, t2: number): number;
  obsReregisterAt(arrival: number, maxAge: number, lead: number): number;
  bwcResWords: number;
  /** The driver ABI the addon was compiled with (native/driver/abi.h). */
  abiHash: number;
  abiLayout: Uint32Array;
}

/** Scratch sizes: 1024 options, 64 KiB of bytes. */
const OPT_CAP = 1024;
const SCRATCH_BYTES = 65536;

/** A transfer: its tc_bwc state and download body in JS memory. */
interface NativeBwc extends BwcHandle {
  readonly state: Uint8Array;
  readonly maxBody: number;
  body: Uint8Array;
}

const NO_BYTES = new Uint8Array(0);

interface NativeDeframer extends DeframerHandle {
  mem: Uint8Array;
  bufferOffset: number;
}

/** The package root: this file is ts/backend/native.ts or dist/backend/native.js. */
export function packageRoot(): string {
  return path.resolve(__dirname, '..', '..');
}

/**
 * The client transfers of the addon (they use no scratch area: state, body and results are
 * JS memory passed on each call).
 */
class NativeTransfers implements ClientTransfers {
  readonly kind = 'native' as const;
  /** @internal */
  readonly addon: Addon;

  constructor(addon: Addon) {
    if (addon.bwcResWords !== BWC_RES_WORDS) {
      throw new Error('turbocoap: native addon ABI mismatch (rebuild it: npx node-gyp rebuild)');
    }
    this.addon = addon;
  }

  bwcCreate(config: Uint32Array): NativeBwc | number {
    const size = this.addon.bwcSize(config);
    if (size === 0) return -16; // TC_E_INVALID
    // A fresh ArrayBuffer is 8-byte aligned, as tc_bwc needs.
    const state = new Uint8Array(size);
    const rc = this.addon.bwcInit(state, config);
    if (rc < 0) return rc;
    return { state, maxBody: config[0] as number, body: NO_BYTES, res: new Uint32Array(BWC_RES_WORDS) };
  }

  bwcGetBegin(h: BwcHandle): number {
    return this.addon.bwcGetBegin((h as NativeBwc).state, h.res);
  }

  bwcGetResponse(h: BwcHandle, datagram: Uint8Array, size2: number): number {
    const n = h as NativeBwc;
    const cap = bodyTarget(n.body.length, h.res[8] as number, datagram.length, size2, n.maxBody);
    if (cap > n.body.length) {
      const body = new Uint8Array(cap);
      body.set(n.body.subarray(0, h.res[8] as number));
      n.body = body;
    }
    return this.addon.bwcGetResponse(n.state, datagram, n.body, h.res);
  }

  bwcPutBegin(h: BwcHandle, bodyLength: number, tag: Uint8Array): number {
    return this.addon.bwcPutBegin((h as NativeBwc).state, bodyLength, tag, h.res);
  }

  bwcPutResponse(h: BwcHandle, datagram: Uint8Array): number {
    return this.addon.bwcPutResponse((h as NativeBwc).state, datagram, h.res);
  }

  bwcRequestTag(h: BwcHandle): Uint8Array {
    const out = new Uint8Array(8);
    const n = this.addon.bwcRequestTag((h as NativeBwc).state, out);
    return out.subarray(0, Math.max(0, n));
  }

  bwcBody(h: BwcHandle, length: number): Uint8Array {
    // The caller keeps it: the transfer is done and its body is not written again.
    return (h as NativeBwc).body.subarray(0, length);
  }

  bwcFree(h: BwcHandle): void {
    (h as NativeBwc).body = NO_BYTES;
  }

  obsFresh(v1: number, t1: number, v2: number, t2: number): boolean {
    return this.addon.obsFresh(v1 >>> 0, t1, v2 >>> 0, t2) === 1;
  }

  obsReregisterAt(arrival: number, maxAge: number, lead: number): number {
    return this.addon.obsReregisterAt(arrival, maxAge >>> 0, lead >>> 0);
  }
}

class NativeBackend extends NativeTransfers implements Backend {
  readonly table: Uint32Array;
  readonly bytes: Uint8Array;
  readonly optCap = OPT_CAP;
  private staged: Uint8Array | undefined;

  constructor(addon: Addon) {
    super(addon);
    checkAbi('native addon', addon.abiHash, addon.abiLayout, 'npx node-gyp rebuild');
    this.table = new Uint32Array(MSG_WORDS + OPT_WORDS * OPT_CAP);
    this.bytes = new Uint8Array(SCRATCH_BYTES);
    addon.setScratch(this.table, this.bytes);
  }

  sync(): void {
    // JS-owned memory: views never go stale.
  }

  decode(input: Uint8Array, transport: number): number {
    return this.addon.decode(input, transport);
  }

  decodeLarge(input: Uint8Array, transport: number, cap: number): { rc: number; table: Uint32Array } {
    const table = new Uint32Array(MSG_WORDS + OPT_WORDS * cap);
    return { rc: this.addon.decodeWith(input, transport, table), table };
  }

  encode(transport: number, outOffset: number): number {
    return this.addon.encode(transport, outOffset);
  }

  encodeLarge(
    transport: number,
    tableWords: number,
    byteLength: number,
    outOffset: number,
    fill: (table: Uint32Array, bytes: Uint8Array) => void,
  ): Uint8Array | number {
    const table = new Uint32Array(tableWords);
    const buf = new Uint8Array(byteLength);
    fill(table, buf);
    const rc = this.addon.encodeWith(transport, table, buf, outOffset);
    return rc < 0 ? rc : buf.slice(outOffset, outOffset + rc);
  }

  deframerCreate(maxMessageSize: number): NativeDeframer | number {
    const size = this.addon.deframerSize(maxMessageSize);
    if (size === 0) return -16; // TC_E_INVALID: not representable
    const mem = new Uint8Array(size);
    const rc = this.addon.deframerInit(mem, maxMessageSize);
    if (rc < 0) return rc;
    return { mem, bufferOffset: this.addon.deframerBufferOffset(mem) };
  }

  deframerFeed(h: DeframerHandle, chunk: Uint8Array, start: number, restage: boolean): number {
    if (restage) this.staged = chunk;
    return this.addon.deframerFeed((h as NativeDeframer).mem, this.staged as Uint8Array, start);
  }

  deframerUnstage(): void {
    this.staged = undefined;
  }

  deframerCopy(h: DeframerHandle, offset: number, length: number): Uint8Array {
    const d = h as NativeDeframer;
    const at = d.bufferOffset + offset;
    return d.mem.slice(at, at + length);
  }

  deframerPending(h: DeframerHandle): number {
    return this.addon.deframerPending((h as NativeDeframer).mem);
  }

  deframerFree(): void {
    // Garbage-collected.
  }

  optionRegistry(): RawOptionDef[] {
    return readOptionRegistry(this, this.addon.optionCount(), (i) => this.addon.optionAt(i));
  }

  optionFind(code: number, number: number): number {
    return this.addon.optionFind(code, number);
  }

  errorName(err: number): string {
    return ascii(this.bytes, this.addon.errorName(err));
  }
}

/** The raw addon of a backend made by {@link loadNativeBackend} (for the UDP driver). */
export function nativeAddon(backend: Backend): unknown {
  return backend instanceof NativeBackend ? backend.addon : undefined;
}

/**
 * Requires the raw addon module (no scratch set up): exactly `file` when given, else what
 * node-gyp-build finds under the package root. Node caches the module, so every caller gets
 * the same instance. Throws if it cannot load.
 */
export function loadNativeAddon(file?: string): unknown {
  if (file !== undefined) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(path.resolve(file));
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const load = require('node-gyp-build') as (dir: string) => unknown;
  return load(packageRoot());
}

let transfers: NativeTransfers | undefined;

/**
 * The addon's client transfers without a codec backend (so without taking over the scratch
 * area of a backend made by {@link loadNativeBackend}). Throws if the addon cannot load.
 */
export function loadNativeTransfers(): ClientTransfers {
  return (transfers ??= new NativeTransfers(loadNativeAddon() as Addon));
}

/**
 * Loads the native addon. With `file`, loads exactly that .node file (tests
 * use build/Release/turbocoap.node so that a broken build cannot hide behind
 * the WASM fallback); otherwise node-gyp-build finds a prebuild or the local
 * build under the package root. Throws if it cannot load.
 *
 * The addon has one scratch area per Node environment: a second backend made here
 * takes it over from the first, so make one per process (the UDP driver uses
 * {@link loadNativeAddon}, which leaves the scratch alone).
 */
export function loadNativeBackend(file?: string): Backend {
  return new NativeBackend(loadNativeAddon(file) as Addon);
}
