/**
 * The glues' JS boundary: whatever JS writes into the native UDP driver's tx record table
 * and byte area (native/binding/udp.c, ep_batch.h), or does to their buffers, flush()
 * answers with a count, a negative TC_E_* code or a typed exception, never a crash or a
 * stray write; encode tables whose source spans leave the byte area get TC_E_INVALID from
 * both the addon (addon.cc) and the WASM glue (wasm/glue.c) instead of an over-read.
 */
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadNativeAddon } from '../ts/backend/native';
import { loadWasmBackend, wasmRaw } from '../ts/backend/wasm';
import { nativeUdpFactory, type UdpAddon } from '../ts/transport/udp-native';
import {
  E_INVALID,
  E_STALE,
  TX_AREA_BYTES,
  TX_PING,
  TX_RESPOND,
  TX_TABLE_WORDS,
  endpointConfig,
  type UdpDriver,
} from '../ts/transport/udp-records';

const addon = loadNativeAddon(join(resolve(__dirname, '..'), 'build', 'Release', 'turbocoap.node')) as UdpAddon;
const create = nativeUdpFactory(addon);

async function driver(): Promise<UdpDriver> {
  const d = create(4, endpointConfig({ maxClientRequests: 8, conSlots: 4 }), new Uint8Array(32).fill(7), () => {});
  await d.bind('127.0.0.1', 0, 0);
  return d;
}

/** A small deterministic PRNG (xorshift32), so a failure can be replayed. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

describe('native UDP driver: tx records from JS', () => {
  it('rejects a flush past the tx areas with a RangeError', async () => {
    const d = await driver();
    try {
      expect(() => d.flush(TX_TABLE_WORDS + 1, 0)).toThrow(RangeError);
      expect(() => d.flush(1, TX_AREA_BYTES + 1)).toThrow(RangeError);
    } finally {
      await d.close();
    }
  });

  it('reports malformed tables and bad spans as TC_E_INVALID and keeps working', async () => {
    const d = await driver();
    try {
      const w = d.txWords;
      // unknown record kind
      w[0] = 99;
      expect(d.flush(1, 0)).toBe(E_INVALID);
      // RESPOND whose option count runs past the table
      w.set([TX_RESPOND, 1, 0, 69, 0, 0, 1000]);
      expect(d.flush(7, 0)).toBe(E_INVALID);
      // RESPOND whose payload span runs past the byte area: the record fails with rc INVALID
      w.set([TX_RESPOND, 1, 0, 69, 10, 0xffffffff, 0]);
      expect(d.flush(7, 16)).toBe(1);
      expect(w[2] | 0).toBe(E_INVALID);
      // PING to a bad family fails; to a good address it gets an id
      w.set([TX_PING, 0, 0, 5, 5683, 0, 0, 0, 0, 0]);
      expect(d.flush(10, 0)).toBe(1);
      expect(w[2] | 0).toBe(E_INVALID);
      w.set([TX_PING, 0, 0, 4, 9, 0x0100007f, 0, 0, 0, 0]);
      expect(d.flush(10, 0)).toBe(0);
      expect(w[1]).toBeGreaterThan(0);
    } finally {
      await d.close();
    }
  });

  it('survives 2000 random tables (counts, offsets and lengths at their extremes)', async () => {
    const d = await driver();
    const next = rng(0x5eed);
    const extremes = [0, 1, 2, 3, 4, 5, 6, 7, 16, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, TX_AREA_BYTES, TX_AREA_BYTES - 1];
    let invalid = 0;
    let ran = 0;
    try {
      for (let round = 0; round < 2000; round++) {
        const nwords = 1 + (next() % 64);
        for (let i = 0; i < nwords; i++) {
          const r = next();
          d.txWords[i] = r % 3 === 0 ? (extremes[r % extremes.length] as number) : r % 4 === 1 ? 1 + (r % 5) : next();
        }
        const nbytes = next() % 256;
        const rc = d.flush(nwords, nbytes);
        expect(Number.isInteger(rc)).toBe(true);
        if (rc < 0) {
          expect(rc).toBe(E_INVALID);
          invalid++;
        } else {
          expect(rc).toBeLessThanOrEqual(nwords);
          ran++;
        }
      }
      // both outcomes were exercised
      expect(invalid).toBeGreaterThan(0);
      expect(ran).toBeGreaterThan(0);
    } finally {
      await d.close();
    }
    expect(d.flush(1, 0)).toBe(E_STALE);
  });

  it('throws a TypeError (no stray write) when JS detached the tx areas', async () => {
    const d = await driver();
    try {
      d.txWords.set([TX_PING, 0, 0, 4, 9, 0x0100007f, 0, 0, 0, 0]);
      // move the record table's memory elsewhere: the driver must not keep writing to it
      const moved = new Uint32Array(structuredClone(d.txWords.buffer, { transfer: [d.txWords.buffer] }));
      expect(d.txWords.length).toBe(0);
      expect(() => d.flush(10, 0)).toThrow(TypeError);
      expect(moved[1]).toBe(0); // the id was not written into the moved table
      expect(d.flush(0, 0)).toBe(0); // an empty flush needs no table
      const movedBytes = structuredClone(d.txBytes.buffer, { transfer: [d.txBytes.buffer] });
      expect(movedBytes.byteLength).toBe(TX_AREA_BYTES);
      expect(() => d.flush(10, 0)).toThrow(TypeError);
    } finally {
      await d.close();
    }
  });
});

describe('WASM glue: encode sources from JS', () => {
  it('refuses a payload span past the byte area with TC_E_INVALID (tcw_encode_with)', () => {
    const raw = wasmRaw(loadWasmBackend());
    expect(raw).toBeDefined();
    const { exports: ex, memory, tablePtr, bytesPtr } = raw!;
    const encodeWith = ex.tcw_encode_with as (tr: number, t: number, w: number, b: number, len: number, out: number) => number;
    const table = new Uint32Array(memory.buffer, tablePtr, 9 + 3 * 4);
    table.fill(0);
    table[1] = 69;
    table[2] = 1;
    table[6] = 16;
    table[7] = 4;
    expect(encodeWith(0, tablePtr, table.length, bytesPtr, 256, 128)).toBeGreaterThan(4);
    table[6] = 4096; // [4096, +64) of a 256-byte area: other memory, before the check
    table[7] = 64;
    expect(encodeWith(0, tablePtr, table.length, bytesPtr, 256, 128)).toBe(E_INVALID);
    table[6] = 0;
    table[7] = 0;
    table[5] = 1;
    table.set([11, 250, 10], 9);
    expect(encodeWith(0, tablePtr, table.length, bytesPtr, 256, 128)).toBe(E_INVALID);
  });
});

describe('native addon: encode sources from JS', () => {
  const enc = addon as unknown as { encodeWith(t: number, table: Uint32Array, buf: Uint8Array, out: number): number };
  it('refuses token / payload / option spans past the byte area with TC_E_INVALID', () => {
    const buf = new Uint8Array(256);
    const table = new Uint32Array(9 + 3 * 4);
    const base = () => {
      table.fill(0);
      table[0] = 0; // CON
      table[1] = 69; // 2.05
      table[2] = 1; // message id
    };
    base();
    table[6] = 16; // payload [16, +4): inside
    table[7] = 4;
    expect(enc.encodeWith(0, table, buf, 128)).toBeGreaterThan(4);
    base();
    table[6] = 4096; // payload [4096, +64): past the end (was a heap over-read)
    table[7] = 64;
    expect(enc.encodeWith(0, table, buf, 128)).toBe(E_INVALID);
    base();
    table[6] = 250; // payload [250, +0xffffffff): the sum wraps
    table[7] = 0xffffffff;
    expect(enc.encodeWith(0, table, buf, 128)).toBe(E_INVALID);
    base();
    table[3] = 255; // token [255, +2)
    table[4] = 2;
    expect(enc.encodeWith(0, table, buf, 128)).toBe(E_INVALID);
    base();
    table[5] = 1; // one option, Uri-Path value [200, +100)
    table.set([11, 200, 100], 9);
    expect(enc.encodeWith(0, table, buf, 128)).toBe(E_INVALID);
    table.set([11, 200, 5], 9); // the same option inside the area
    expect(enc.encodeWith(0, table, buf, 128)).toBeGreaterThan(5);
  });
});
