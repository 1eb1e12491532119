/**
 * Deframer (RFC 8323 TCP stream splitting) on both backends: byte at a time,
 * random splits, many in one chunk, past the frame-table bound, large chunks,
 * and the error paths.
 */
import { describe, expect, it } from 'vitest';
import type { CoapMessage } from '../ts/codec';
import { CoapFrameError, CoapParseError } from '../ts/errors';
import { codecs, hex, prng } from './support/backends';

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

describe.each(codecs)('%s backend', (_name, c) => {
  // A stream of TCP messages of varied sizes (all header length forms).
  const rnd = prng(4242);
  const sizes = [0, 1, 5, 12, 13, 40, 268, 269, 300, 1000, 3000, 0, 2];
  const messages: Uint8Array[] = [];
  for (let i = 0; i < 60; i++) {
    const msg: CoapMessage = {
      code: i % 7 === 0 ? '7.01' : '2.05',
      token: new Uint8Array(i % 9).fill(i),
      options: i % 3 === 0 ? [{ number: 11, value: new Uint8Array(i % 20).fill(1) }] : [],
      payload: Uint8Array.from({ length: sizes[i % sizes.length] }, () => (rnd() * 256) | 0),
    };
    messages.push(c.encode(msg, { transport: 'tcp' }));
  }
  const stream = concat(messages);
  const expected = messages.map(hex);
  const max = 4096;

  it('byte at a time', () => {
    const d = c.createDeframer({ maxMessageSize: max });
    const got: string[] = [];
    let ends = 0;
    for (let i = 0; i < stream.length; i++) {
      const frames = d.push(stream.subarray(i, i + 1));
      for (const f of frames) {
        got.push(hex(f));
        c.decode(f, { transport: 'tcp' });
      }
      if (frames.length > 0) {
        ends++;
        expect(d.pending).toBe(0);
      } else {
        expect(d.pending).toBeGreaterThan(0);
      }
    }
    expect(ends).toBe(messages.length);
    expect(got).toEqual(expected);
  });

  it('random splits', () => {
    for (let round = 0; round < 30; round++) {
      const d = c.createDeframer({ maxMessageSize: max });
      const got: string[] = [];
      let at = 0;
      while (at < stream.length) {
        const n = 1 + ((rnd() * (rnd() < 0.5 ? 20 : 5000)) | 0);
        for (const f of d.push(stream.subarray(at, at + n))) got.push(hex(f));
        at += n;
      }
      expect(got).toEqual(expected);
      expect(d.pending).toBe(0);
    }
  });

  it('many in one chunk, zero copy', () => {
    const d = c.createDeframer({ maxMessageSize: max });
    const frames = d.push(stream);
    expect(frames.map(hex)).toEqual(expected);
    for (const f of frames) expect(f.buffer).toBe(stream.buffer);
    expect(d.pending).toBe(0);
    // A frame that spans chunks is a copy.
    const d2 = c.createDeframer({ maxMessageSize: max });
    expect(messages[0].length).toBeGreaterThan(1);
    expect(d2.push(stream.subarray(0, 1))).toEqual([]);
    const rest = d2.push(stream.subarray(1));
    expect(rest.map(hex)).toEqual(expected);
    expect(rest[0].buffer).not.toBe(stream.buffer);
    expect(rest[1].buffer).toBe(stream.buffer);
  });

  it('more frames in one chunk than the frame table holds', () => {
    const n = c.backend.optCap * 3 + 17;
    const tiny = new Uint8Array(2 * n);
    for (let i = 0; i < n; i++) tiny[2 * i + 1] = 0x45; // Len 0, TKL 0, 2.05
    const frames = c.createDeframer().push(tiny);
    expect(frames).toHaveLength(n);
    expect(frames.every((f) => f.length === 2 && f[1] === 0x45)).toBe(true);
  });

  it('chunks larger than the scratch area', () => {
    const big = concat(Array.from({ length: 40 }, () => stream));
    expect(big.length).toBeGreaterThan(3 * 65536);
    const d = c.createDeframer({ maxMessageSize: max });
    const got: string[] = [];
    for (let at = 0; at < big.length; at += 150_000) for (const f of d.push(big.subarray(at, at + 150_000))) got.push(hex(f));
    expect(got).toHaveLength(40 * messages.length);
    expect(got.slice(0, messages.length)).toEqual(expected);
    expect(got.slice(-messages.length)).toEqual(expected);
  });

  it('a 1 MB message split across chunks', () => {
    const payload = new Uint8Array(1 << 20).fill(3);
    const wire = c.encode({ code: '2.05', token: new Uint8Array(2), options: [], payload }, { transport: 'tcp' });
    const d = c.createDeframer({ maxMessageSize: 2 << 20 });
    const frames: Uint8Array[] = [];
    for (let at = 0; at < wire.length; at += 65536) frames.push(...d.push(wire.subarray(at, at + 65536)));
    expect(frames).toHaveLength(1);
    expect(c.decode(frames[0], { transport: 'tcp' }).payload.length).toBe(1 << 20);
  });

  it('too large: throws MESSAGE_TOO_LARGE with the frames before it, then stays broken', () => {
    const small = c.encode({ code: '2.05', token: new Uint8Array(), options: [], payload: new Uint8Array(10) }, { transport: 'tcp' });
    const large = c.encode({ code: '2.05', token: new Uint8Array(), options: [], payload: new Uint8Array(100) }, { transport: 'tcp' });
    const d = c.createDeframer({ maxMessageSize: 64 });
    let err: unknown;
    try {
      d.push(concat([small, small, large]));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CoapFrameError);
    expect(err).toBeInstanceOf(CoapParseError);
    expect((err as CoapFrameError).code).toBe('MESSAGE_TOO_LARGE');
    expect((err as CoapFrameError).frames.map(hex)).toEqual([hex(small), hex(small)]);
    expect(() => d.push(small)).toThrow(/MESSAGE_TOO_LARGE/);
    // The limit counts the whole message: exactly max is accepted.
    const exact = c.encode({ code: '2.05', token: new Uint8Array(), options: [], payload: new Uint8Array(60) }, { transport: 'tcp' });
    expect(exact.length).toBe(64);
    expect(c.createDeframer({ maxMessageSize: 64 }).push(exact)).toHaveLength(1);
    expect(() => c.createDeframer({ maxMessageSize: 63 }).push(exact)).toThrow(CoapFrameError);
  });

  it('too large detected from a header split across chunks', () => {
    const large = c.encode({ code: '2.05', token: new Uint8Array(), options: [], payload: new Uint8Array(70000) }, { transport: 'tcp' });
    const d = c.createDeframer({ maxMessageSize: 1000 });
    expect(d.push(large.subarray(0, 1))).toEqual([]);
    expect(() => d.push(large.subarray(1, 10))).toThrow(/MESSAGE_TOO_LARGE/);
  });

  it('reserved TKL 15 breaks the stream', () => {
    const d = c.createDeframer();
    try {
      d.push(Uint8Array.from([0x00, 0x45, 0x0f, 0x45]));
      expect.unreachable();
    } catch (e) {
      expect((e as CoapFrameError).code).toBe('RESERVED_TKL');
      expect((e as CoapFrameError).frames).toHaveLength(1);
    }
  });

  it('validates maxMessageSize and close()', () => {
    for (const bad of [0, 1, -1, 1.5, NaN, 2 ** 32]) {
      expect(() => c.createDeframer({ maxMessageSize: bad })).toThrow(RangeError);
    }
    expect(c.createDeframer().maxMessageSize).toBe(1152);
    const d = c.createDeframer({ maxMessageSize: 2 });
    expect(d.push(Uint8Array.from([0x00, 0x45]))).toHaveLength(1);
    d.close();
    expect(() => d.push(Uint8Array.from([0x00, 0x45]))).toThrow(/closed/);
    expect(d.pending).toBe(0);
  });

  it('an empty chunk yields nothing', () => {
    const d = c.createDeframer();
    expect(d.push(new Uint8Array(0))).toEqual([]);
    expect(d.pending).toBe(0);
  });
});
