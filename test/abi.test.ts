/**
 * The driver ABI is declared once in C (native/driver/abi.h, TC_ERRORS in turbocoap.h) and
 * ts/driver/abi.ts is generated from it (scripts/gen-abi.mjs). These tests fail when the two
 * drift: the generated file must be current, and both backends must report, from their own
 * compilation (enum values, offsetof, sizeof), the layout the TypeScript side was generated
 * with.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadNativeAddon } from '../ts/backend/native';
import { loadWasmBackend, wasmRaw } from '../ts/backend/wasm';
import * as abi from '../ts/driver/abi';
import { abiMismatch } from '../ts/driver/abi-check';
import { codecs, hasNative } from './support/backends';

const root = resolve(__dirname, '..');
/** The native addon's ABI exports, where the addon loads (the native check skips otherwise). */
const addon = (hasNative ? loadNativeAddon(join(root, 'build', 'Release', 'turbocoap.node')) : undefined) as unknown as {
  abiHash: number;
  abiLayout: Uint32Array;
};
const raw = wasmRaw(loadWasmBackend())!;

function wasmLayout(): { hash: number; layout: Uint32Array } {
  const ex = raw.exports as unknown as { tcw_abi_hash(): number; tcw_abi_layout(): number; tcw_abi_layout_words(): number };
  const layout = new Uint32Array(raw.memory.buffer, ex.tcw_abi_layout(), ex.tcw_abi_layout_words()).slice();
  return { hash: ex.tcw_abi_hash(), layout };
}

describe('gen-abi', () => {
  it('ts/driver/abi.ts is what scripts/gen-abi.mjs generates from the C lists (--check)', () => {
    const r = spawnSync(process.execPath, [join(root, 'scripts', 'gen-abi.mjs'), '--check'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('--check fails when a C list changes and the TypeScript does not', () => {
    const dir = mkdtempSync(join(tmpdir(), 'turbocoap-abi-'));
    try {
      for (const d of ['scripts', 'native/driver', 'native/include', 'ts/driver']) cpSync(join(root, d), join(dir, d), { recursive: true });
      const h = join(dir, 'native/driver/abi.h');
      // a new RX word in the middle of the record moves every field after it
      writeFileSync(h, readFileSync(h, 'utf8').replace('  X(SCOPE, 1)        /* IPv6 scope id */ \\', '  X(SCOPE, 1) \\\n  X(EXTRA, 1) \\'));
      const r = spawnSync(process.execPath, [join(dir, 'scripts', 'gen-abi.mjs'), '--check'], { encoding: 'utf8' });
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/out of date/);
      // regenerated, it moves the fields after the new word
      execFileSync(process.execPath, [join(dir, 'scripts', 'gen-abi.mjs')]);
      const ts = readFileSync(join(dir, 'ts/driver/abi.ts'), 'utf8');
      expect(ts).toMatch(new RegExp(`export const RX_DATA = ${abi.RX_DATA + 1};`));
      expect(ts).toMatch(new RegExp(`export const RX_WORDS = ${abi.RX_WORDS + 1};`));
      expect(ts).not.toMatch(new RegExp(`ABI_HASH = 0x${abi.ABI_HASH.toString(16).padStart(8, '0')};`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('both backends report the generated layout', () => {
  it.skipIf(!hasNative)('native addon: tca_layout and tca_hash', () => {
    expect(Array.from(addon.abiLayout)).toEqual(abi.ABI_LAYOUT);
    expect(addon.abiHash >>> 0).toBe(abi.ABI_HASH);
    expect(abiMismatch(addon.abiHash, addon.abiLayout)).toBe(-1);
  });

  it('WebAssembly module: tca_layout and tca_hash', () => {
    const w = wasmLayout();
    expect(Array.from(w.layout)).toEqual(abi.ABI_LAYOUT);
    expect(w.hash >>> 0).toBe(abi.ABI_HASH);
  });

  it('a layout that differs anywhere (or a different hash) is reported where it differs', () => {
    const l = Array.from(abi.ABI_LAYOUT);
    l[abi.ABI_LAYOUT.length - 2] = (l[abi.ABI_LAYOUT.length - 2] as number) + 8; // STATS_BYTES
    expect(abiMismatch(abi.ABI_HASH, l)).toBe(abi.ABI_LAYOUT.length - 2);
    expect(abiMismatch(abi.ABI_HASH, l.slice(0, 10))).toBe(10);
    expect(abiMismatch(abi.ABI_HASH ^ 1, abi.ABI_LAYOUT)).toBe(abi.ABI_LAYOUT.length);
    expect(abiMismatch(abi.ABI_HASH, undefined)).toBe(0);
  });

  it('error codes: one enum, the same names from C on both backends and in TypeScript', () => {
    expect(abi.ERROR_NAMES.length).toBe(abi.ERROR_COUNT);
    for (const [, be] of codecs) {
      for (let i = 1; i <= abi.ERROR_COUNT; i++) expect(be.errorName(-i)).toBe(abi.ERROR_NAMES[i - 1]);
    }
    expect(abi.E_STALE).toBe(-17);
    expect(abi.ERROR_NAMES[-abi.E_BAD_OPTION - 1]).toBe('BAD_OPTION');
  });
});
