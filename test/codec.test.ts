/**
 * decode / encode against the shared vectors (test/vectors/codec.json) and
 * edge cases, on BOTH backends explicitly (native from build/Release, WASM
 * through its loader).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Codec, CoapMessage } from '../ts/codec';
import { CoapEncodeError, CoapError, CoapParseError } from '../ts/errors';
import type { Transport } from '../ts/codes';
import { codecs, hex, prng, root, unhex } from './support/backends';

interface Vector {
  name: string;
  transport: Transport;
  hex: string;
  message?: {
    type?: CoapMessage['type'];
    messageId?: number;
    code: string;
    token: string;
    options: [number, string][];
    payload: string;
  };
  error?: string;
}

const vectors: Vector[] = JSON.parse(readFileSync(join(root, 'test', 'vectors', 'codec.json'), 'utf8')).vectors;

/** A decoded message in the vectors' JSON shape. */
function plain(m: CoapMessage): NonNullable<Vector['message']> {
  const out: NonNullable<Vector['message']> = {
    code: m.code,
    token: hex(m.token),
    options: m.options.map((o) => [o.number, hex(o.value)] as [number, string]),
    payload: hex(m.payload),
  };
  if ('type' in m) out.type = m.type;
  if ('messageId' in m) out.messageId = m.messageId;
  return out;
}

function fromPlain(p: NonNullable<Vector['message']>): CoapMessage {
  const m: CoapMessage = {
    code: p.code,
    token: unhex(p.token),
    options: p.options.map(([number, v]) => ({ number, value: unhex(v) })),
    payload: unhex(p.payload),
  };
  if (p.type !== undefined) m.type = p.type;
  if (p.messageId !== undefined) m.messageId = p.messageId;
  return m;
}

function parseErrorCode(c: Codec, bytes: Uint8Array, transport: Transport): string | undefined {
  try {
    c.decode(bytes, { transport });
    return undefined;
  } catch (e) {
    if (!(e instanceof CoapParseError)) throw e;
    return e.code;
  }
}

function encodeErrorCode(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(CoapEncodeError);
    expect(e).toBeInstanceOf(CoapError);
    return (e as CoapEncodeError).code;
  }
  throw new Error('expected a CoapEncodeError');
}

it('has vectors of every kind', () => {
  expect(vectors.length).toBeGreaterThan(100);
  for (const t of ['udp', 'tcp', 'ws']) {
    expect(vectors.some((v) => v.transport === t && v.message)).toBe(true);
    expect(vectors.some((v) => v.transport === t && v.error)).toBe(true);
  }
});

describe.each(codecs)('%s backend', (_name, c) => {
  describe('vectors', () => {
    for (const v of vectors) {
      if (v.message) {
        const expected = v.message;
        it(`decode ${v.transport}: ${v.name}`, () => {
          expect(plain(c.decode(unhex(v.hex), { transport: v.transport }))).toStrictEqual(expected);
        });
        it(`encode ${v.transport}: ${v.name}`, () => {
          expect(hex(c.encode(fromPlain(expected), { transport: v.transport }))).toBe(v.hex);
        });
      } else {
        it(`reject ${v.transport}: ${v.name} → ${v.error}`, () => {
          expect(parseErrorCode(c, unhex(v.hex), v.transport)).toBe(v.error);
        });
      }
    }
  });

  it('returns zero-copy views of the input', () => {
    const v = vectors.find((x) => x.name.startsWith('Observe, Content-Format'))!;
    const pool = Buffer.alloc(200);
    const bytes = unhex(v.hex);
    pool.set(bytes, 37);
    const input = pool.subarray(37, 37 + bytes.length);
    const m = c.decode(input);
    expect(m.payload.length).toBeGreaterThan(0);
    expect(m.payload.buffer).toBe(pool.buffer);
    expect(m.options[0].value.buffer).toBe(pool.buffer);
    expect(m.payload.byteOffset + m.payload.length).toBe(input.byteOffset + input.length);
    const before = m.payload[0];
    input[input.length - m.payload.length] ^= 0xff;
    expect(m.payload[0]).toBe(before ^ 0xff);
  });

  it('decodes UDP with type and messageId, TCP/WS without', () => {
    const udp = c.decode(unhex('50457d34'));
    expect(udp).toMatchObject({ type: 'NON', messageId: 0x7d34, code: '2.05' });
    const tcp = c.decode(unhex('0045'), { transport: 'tcp' });
    expect('type' in tcp || 'messageId' in tcp).toBe(false);
    expect(tcp.code).toBe('2.05');
  });

  it('encodes defaults: type CON, messageId 0, empty token/options/payload', () => {
    expect(hex(c.encode({ code: '0.01' } as CoapMessage))).toBe('40010000');
    expect(hex(c.encode({ code: '0.00', token: new Uint8Array(), options: [], payload: new Uint8Array() }, { transport: 'tcp' }))).toBe('0000');
  });

  it('sorts options stably by number and leaves the message untouched', () => {
    const v = (s: string) => new TextEncoder().encode(s);
    const options = [
      { number: 15, value: v('q1') },
      { number: 11, value: v('a') },
      { number: 3, value: v('host') },
      { number: 11, value: v('b') },
      { number: 15, value: v('q2') },
      { number: 11, value: v('c') },
    ];
    const copy = options.slice();
    const msg: CoapMessage = { type: 'CON', messageId: 1, code: '0.01', token: v('tk'), options, payload: v('p') };
    const m = c.decode(c.encode(msg));
    expect(m.options.map((o) => [o.number, new TextDecoder().decode(o.value)])).toEqual([
      [3, 'host'],
      [11, 'a'],
      [11, 'b'],
      [11, 'c'],
      [15, 'q1'],
      [15, 'q2'],
    ]);
    expect(options).toEqual(copy);
    expect(options.every((o, i) => o === copy[i])).toBe(true);
  });

  it('rejects invalid messages with CoapEncodeError INVALID', () => {
    const base = (): CoapMessage => ({
      type: 'CON',
      messageId: 1,
      code: '0.01',
      token: new Uint8Array(),
      options: [],
      payload: new Uint8Array(),
    });
    const bad: Array<[string, (m: CoapMessage) => unknown]> = [
      ['code x', (m) => (m.code = 'x')],
      ['code 8.00', (m) => (m.code = '8.00')],
      ['code 2.32', (m) => (m.code = '2.32')],
      ['type', (m) => (m.type = 'FOO' as CoapMessage['type'])],
      ['messageId 65536', (m) => (m.messageId = 65536)],
      ['messageId -1', (m) => (m.messageId = -1)],
      ['messageId 1.5', (m) => (m.messageId = 1.5)],
      ['option 65536', (m) => (m.options = [{ number: 65536, value: new Uint8Array() }])],
      ['option -1', (m) => (m.options = [{ number: -1, value: new Uint8Array() }])],
      ['option NaN', (m) => (m.options = [{ number: NaN, value: new Uint8Array() }])],
      ['option value string', (m) => (m.options = [{ number: 11, value: 'x' as unknown as Uint8Array }])],
      ['option value too long', (m) => (m.options = [{ number: 11, value: new Uint8Array(65805) }])],
      ['token too long', (m) => (m.token = new Uint8Array(65805))],
      ['token not bytes', (m) => (m.token = [1, 2] as unknown as Uint8Array)],
      ['payload not bytes', (m) => (m.payload = 'x' as unknown as Uint8Array)],
      ['empty message with payload', (m) => ((m.code = '0.00'), (m.payload = new Uint8Array(1)))],
      ['empty message with token', (m) => ((m.code = '0.00'), (m.token = new Uint8Array(1)))],
    ];
    for (const [what, mutate] of bad) {
      const m = base();
      mutate(m);
      expect(encodeErrorCode(() => c.encode(m)), what).toBe('INVALID');
    }
    // Largest valid token and option value still encode.
    const m = base();
    m.token = new Uint8Array(65804).fill(1);
    m.options = [{ number: 11, value: new Uint8Array(65804).fill(2) }];
    const back = c.decode(c.encode(m));
    expect(back.token.length).toBe(65804);
    expect(back.options[0].value.length).toBe(65804);
  });

  it('returns independent results of every size (pooled or not)', () => {
    const sizes = [0, 10, 60, 61, 62, 100, 500, 1000, 4000, 4100, 9000];
    const kept: [number, Uint8Array][] = [];
    for (let k = 0; k < 300; k++) {
      const payload = new Uint8Array(sizes[k % sizes.length]).fill(k & 0xff);
      kept.push([k, c.encode({ type: 'NON', messageId: k, code: '2.05', token: new Uint8Array(), options: [], payload })]);
    }
    for (const [k, wire] of kept) {
      const m = c.decode(wire);
      expect(m.messageId).toBe(k);
      expect(m.payload.length).toBe(sizes[k % sizes.length]);
      expect(m.payload.every((x) => x === (k & 0xff))).toBe(true);
    }
  });

  it('accepts a Uint8Array from another realm', async () => {
    const vm = await import('node:vm');
    const foreign = vm.runInNewContext('new Uint8Array([0x40, 1, 0, 7, 0xb1, 0x61])') as Uint8Array;
    expect(foreign instanceof Uint8Array).toBe(false);
    const m = c.decode(foreign);
    expect(m.messageId).toBe(7);
    expect(c.encode({ ...m, options: [{ number: 11, value: foreign.subarray(5) }] })).toEqual(Uint8Array.from([0x40, 1, 0, 7, 0xb1, 0x61]));
    expect(c.createDeframer().push(vm.runInNewContext('new Uint8Array([0, 0x45])') as Uint8Array)).toHaveLength(1);
  });

  it('rejects wrong argument types with TypeError', () => {
    expect(() => c.decode([0x40, 1, 0, 0] as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => c.decode(new Uint8Array(4), { transport: 'sctp' as Transport })).toThrow(TypeError);
    expect(() => c.encode({ code: '0.01' } as CoapMessage, { transport: 'x' as Transport })).toThrow(TypeError);
  });

  for (const transport of ['udp', 'tcp', 'ws'] as Transport[]) {
    it(`round-trips a 1 MB payload over ${transport}`, () => {
      const payload = new Uint8Array(1 << 20);
      for (let i = 0; i < payload.length; i++) payload[i] = (i * 7) & 0xff;
      const msg: CoapMessage = {
        code: '2.05',
        token: unhex('0102030405060708'),
        options: [{ number: 12, value: unhex('32') }],
        payload,
      };
      if (transport === 'udp') Object.assign(msg, { type: 'ACK', messageId: 77 });
      const wire = c.encode(msg, { transport });
      expect(wire.length).toBeGreaterThan(1 << 20);
      const back = c.decode(wire, { transport });
      expect(back.payload.length).toBe(payload.length);
      expect(Buffer.compare(back.payload, payload)).toBe(0);
      expect(back.options).toHaveLength(1);
    });
  }

  it('handles more options than the scratch table holds (decode and encode)', () => {
    const n = c.backend.optCap + 500;
    const options = Array.from({ length: n }, (_, i) => ({ number: 11 + (i % 3) * 4, value: new Uint8Array([i & 0xff]) }));
    const wire = c.encode({ type: 'CON', messageId: 9, code: '0.02', token: new Uint8Array(), options, payload: unhex('aa') });
    const back = c.decode(wire);
    expect(back.options).toHaveLength(n);
    expect(back.payload).toEqual(unhex('aa'));
    // Sorted stably: every number-11 entry keeps its relative order.
    const elevens = back.options.filter((o) => o.number === 11).map((o) => o.value[0]);
    const expected = options.filter((o) => o.number === 11).map((o) => o.value[0]);
    expect(elevens).toEqual(expected);
    // A message of many empty options.
    const empties = new Uint8Array(4 + 3000);
    empties.set([0x40, 0x01, 0, 1]);
    const d = c.decode(empties);
    expect(d.options).toHaveLength(3000);
    expect(d.options.every((o) => o.number === 0 && o.value.length === 0)).toBe(true);
  });

  it('handles option values totalling more than the scratch bytes', () => {
    const options = Array.from({ length: 40 }, (_, i) => ({ number: 60 + i, value: new Uint8Array(3000).fill(i) }));
    const wire = c.encode({ code: '0.03', token: new Uint8Array(), options, payload: new Uint8Array(9000).fill(9) }, { transport: 'tcp' });
    const back = c.decode(wire, { transport: 'tcp' });
    expect(back.options.map((o) => o.value[2999])).toEqual(options.map((_, i) => i));
    expect(back.payload.length).toBe(9000);
  });

  it('round-trips random valid messages on every transport', () => {
    const rnd = prng(1234);
    const bytes = (n: number) => Uint8Array.from({ length: n }, () => (rnd() * 256) | 0);
    const len = () => {
      const r = rnd();
      return r < 0.6 ? (rnd() * 13) | 0 : r < 0.9 ? 13 + ((rnd() * 256) | 0) : 269 + ((rnd() * 800) | 0);
    };
    for (let k = 0; k < 600; k++) {
      const transport = (['udp', 'tcp', 'ws'] as Transport[])[k % 3];
      const count = (rnd() * 8) | 0;
      let num = 0;
      const options = [];
      for (let i = 0; i < count; i++) {
        num += rnd() < 0.3 ? 0 : rnd() < 0.8 ? (rnd() * 20) | 0 : (rnd() * 1000) | 0;
        if (num > 65535) break;
        options.push({ number: num, value: bytes(len()) });
      }
      const code = 1 + ((rnd() * 255) | 0);
      const msg: CoapMessage = {
        code: `${code >> 5}.${String(code & 31).padStart(2, '0')}`,
        token: bytes(rnd() < 0.9 ? (rnd() * 9) | 0 : len()),
        options,
        payload: rnd() < 0.5 ? new Uint8Array() : bytes(len() + 1),
      };
      if (transport === 'udp') Object.assign(msg, { type: (['CON', 'NON', 'ACK', 'RST'] as const)[k & 3], messageId: (rnd() * 65536) | 0 });
      const wire = c.encode(msg, { transport });
      expect(plain(c.decode(wire, { transport }))).toStrictEqual(plain(msg));
    }
  });

  it('random and mutated input only ever throws CoapParseError', () => {
    const rnd = prng(99);
    const seeds = vectors.filter((v) => v.message).map((v) => [unhex(v.hex), v.transport] as const);
    let ok = 0;
    let bad = 0;
    for (let k = 0; k < 6000; k++) {
      let input: Uint8Array;
      let transport: Transport;
      if (k % 2 === 0) {
        input = Uint8Array.from({ length: (rnd() * 40) | 0 }, () => (rnd() * 256) | 0);
        if (rnd() < 0.5 && input.length > 0) input[0] = 0x40 | (input[0] & 0x3f);
        transport = (['udp', 'tcp', 'ws'] as Transport[])[k % 3];
      } else {
        const [seed, t] = seeds[(rnd() * seeds.length) | 0];
        input = seed.slice();
        transport = t;
        for (let m = 1 + ((rnd() * 3) | 0); m > 0 && input.length > 0; m--) {
          input[(rnd() * input.length) | 0] = (rnd() * 256) | 0;
        }
        if (rnd() < 0.3) input = input.subarray(0, (rnd() * input.length) | 0);
      }
      try {
        c.decode(input, { transport });
        ok++;
      } catch (e) {
        if (!(e instanceof CoapParseError)) throw e;
        bad++;
      }
    }
    // Both outcomes occur: the test exercises accept and reject paths.
    expect(ok).toBeGreaterThan(100);
    expect(bad).toBeGreaterThan(100);
  });
});
