/**
 * Option registry (read from the core on both backends), option helpers,
 * codes and content formats.
 */
import { describe, expect, it } from 'vitest';
import { buildRegistry, findIndex, OptionNumber, SignalingOptionNumber, encodeUint, decodeUint, optionInfo, optionNumber, optionRegistry } from '../ts/options';
import { codeToString, parseCode } from '../ts/codes';
import { ContentFormat, contentFormatName, contentFormatNumber } from '../ts/content-format';
import { setBackendProvider } from '../ts/state';
import { anyCodec, hasNative, native, wasm, prng } from './support/backends';

// The module-level helpers (optionInfo, optionNumber) use the default backend.
setBackendProvider(() => anyCodec.backend);

const key = (name: string) => name.replace(/-/g, '');

describe('option registry', () => {
  const raw = anyCodec.backend.optionRegistry();

  it.skipIf(!hasNative)('is the same on both backends', () => {
    expect(raw.length).toBeGreaterThan(25);
    expect(wasm.backend.optionRegistry()).toEqual(native.backend.optionRegistry());
  });

  it('OptionNumber lists exactly the ordinary options, under their names', () => {
    const ordinary = raw.filter((r) => r.signalCode === 0);
    expect(Object.keys(OptionNumber).sort()).toEqual(ordinary.map((r) => key(r.name)).sort());
    for (const r of ordinary) expect((OptionNumber as Record<string, number>)[key(r.name)]).toBe(r.number);
    const signaling = raw.filter((r) => r.signalCode !== 0);
    for (const [k, n] of Object.entries(SignalingOptionNumber)) {
      expect(signaling.some((r) => key(r.name) === k && r.number === n), k).toBe(true);
    }
  });

  it('optionInfo matches tc_option_find for every code and number (both backends)', () => {
    const reg = buildRegistry(raw);
    const numbers = [...Array.from({ length: 300 }, (_, i) => i), 65535, 65536, 2 ** 32 - 1];
    let found = 0;
    for (let code = 0; code < 256; code++) {
      for (const n of numbers) {
        const want = anyCodec.backend.optionFind(code, n);
        expect(wasm.backend.optionFind(code, n)).toBe(want);
        const got = findIndex(reg, code, n);
        if (got !== want) throw new Error(`code ${code} number ${n}: ts ${got} core ${want}`);
        if (want >= 0) found++;
      }
    }
    expect(found).toBeGreaterThan(256 * 20);
  });

  it('describes options', () => {
    expect(optionInfo(11)).toEqual({
      number: 11,
      name: 'Uri-Path',
      format: 'string',
      minLength: 0,
      maxLength: 255,
      repeatable: true,
      critical: true,
      unsafe: true,
      noCacheKey: false,
      signalCode: undefined,
    });
    expect(optionInfo(4)).toMatchObject({ name: 'ETag', format: 'opaque', critical: false, unsafe: false, repeatable: true });
    expect(optionInfo(14)).toMatchObject({ name: 'Max-Age', format: 'uint', critical: false, unsafe: true });
    expect(optionInfo(60)).toMatchObject({ name: 'Size1', noCacheKey: true });
    expect(optionInfo(5)).toMatchObject({ format: 'empty' });
    expect(optionInfo(2)).toBeUndefined();
    expect(optionInfo(9999)).toBeUndefined();
    expect(optionInfo(2, '7.01')).toMatchObject({ name: 'Max-Message-Size', signalCode: '7.01' });
    expect(optionInfo(2, 0xe1)).toMatchObject({ name: 'Max-Message-Size' });
    expect(optionInfo(4, '7.04')).toMatchObject({ name: 'Hold-Off' });
    expect(optionInfo(11, '7.01')).toBeUndefined();
    expect(optionInfo(11, '2.05')).toMatchObject({ name: 'Uri-Path' });
    expect(Object.isFrozen(optionInfo(11))).toBe(true);
    expect(optionRegistry().length).toBe(raw.length);
  });

  it('finds option numbers by name', () => {
    expect(optionNumber('Uri-Path')).toBe(11);
    expect(optionNumber('uri-path')).toBe(11);
    expect(optionNumber('CONTENT-FORMAT')).toBe(12);
    expect(optionNumber('Max-Message-Size')).toBe(2);
    expect(optionNumber('Nope')).toBeUndefined();
    for (const r of raw.filter((x) => x.signalCode === 0)) expect(optionNumber(r.name)).toBe(r.number);
  });
});

describe('uint option values', () => {
  it('encodes shortest big-endian', () => {
    expect([...encodeUint(0)]).toEqual([]);
    expect([...encodeUint(1)]).toEqual([1]);
    expect([...encodeUint(255)]).toEqual([255]);
    expect([...encodeUint(256)]).toEqual([1, 0]);
    expect([...encodeUint(0x123456)]).toEqual([0x12, 0x34, 0x56]);
    expect([...encodeUint(2 ** 32 - 1)]).toEqual([255, 255, 255, 255]);
    expect(encodeUint(Number.MAX_SAFE_INTEGER)).toHaveLength(7);
    for (const bad of [-1, 1.5, NaN, Infinity, 2 ** 53]) expect(() => encodeUint(bad)).toThrow(RangeError);
  });

  it('decodes, with leading zeros and empty', () => {
    expect(decodeUint(new Uint8Array())).toBe(0);
    expect(decodeUint(Uint8Array.from([0, 0, 1, 0]))).toBe(256);
    expect(decodeUint(new Uint8Array(7).fill(0xff).fill(0x1f, 0, 1))).toBe(Number.MAX_SAFE_INTEGER);
    expect(() => decodeUint(new Uint8Array(7).fill(0xff))).toThrow(RangeError);
    const rnd = prng(5);
    for (let i = 0; i < 2000; i++) {
      const n = Math.floor(rnd() * 2 ** (1 + ((rnd() * 52) | 0)));
      expect(decodeUint(encodeUint(n))).toBe(n);
    }
  });
});

describe('codes', () => {
  it('formats and parses every code', () => {
    for (let n = 0; n < 256; n++) {
      const s = codeToString(n);
      expect(s).toMatch(/^[0-7]\.[0-3]\d$/);
      expect(parseCode(s)).toBe(n);
    }
    expect(codeToString(69)).toBe('2.05');
    expect(codeToString(0xe1)).toBe('7.01');
    expect(parseCode('4.04')).toBe(132);
    for (const bad of ['2.5', '2.32', '8.00', '', 'GET', ' 2.05']) expect(() => parseCode(bad)).toThrow(RangeError);
    for (const bad of [-1, 256, 1.5, NaN]) expect(() => codeToString(bad)).toThrow(RangeError);
  });
});

describe('content formats', () => {
  it('maps numbers and media types both ways', () => {
    expect(ContentFormat.TextPlain).toBe(0);
    expect(ContentFormat.LinkFormat).toBe(40);
    expect(ContentFormat.Json).toBe(50);
    expect(ContentFormat.Cbor).toBe(60);
    expect(contentFormatName(50)).toBe('application/json');
    expect(contentFormatName(40)).toBe('application/link-format');
    expect(contentFormatName(9999)).toBeUndefined();
    expect(contentFormatNumber('Application/JSON')).toBe(50);
    expect(contentFormatNumber('text/plain; charset=utf-8')).toBe(0);
    expect(contentFormatNumber('text/plain')).toBe(0);
    expect(contentFormatNumber('application/cose; cose-type="cose-sign1"')).toBe(18);
    expect(contentFormatNumber('application/nope')).toBeUndefined();
    for (const n of Object.values(ContentFormat)) {
      const name = contentFormatName(n);
      expect(name, String(n)).toBeTypeOf('string');
      expect(contentFormatNumber(name!)).toBe(n);
    }
  });
});
