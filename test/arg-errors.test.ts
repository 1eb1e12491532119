/**
 * Argument mistakes (a new user's trial): every one is a TypeError or RangeError (Node's
 * convention, so `instanceof` keeps working) with a Node-style `code` and a message naming
 * the argument; endpoint options are checked at createServer / new Agent, not at listen /
 * the first request; boolean options are booleans (no truthy strings).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { Deframer, codeToString, decode, encode, methodToCode, parseCode } from '../ts/index';
import { Agent, request, type AgentOptions, type RequestOptions } from '../ts/client';
import { CoapArgRangeError, CoapArgTypeError, CoapResponseError } from '../ts/errors';
import { observe } from '../ts/observe';
import { createServer, type ServerOptions } from '../ts/server';
import { udpBackends } from './support/udp';

type Cls = typeof TypeError | typeof RangeError;
const T = TypeError;
const R = RangeError;
const TYPE = 'ERR_INVALID_ARG_TYPE';
const VALUE = 'ERR_INVALID_ARG_VALUE';
const RANGE = 'ERR_OUT_OF_RANGE';

function expectArgError(e: unknown, cls: Cls, code: string, names: string): void {
  expect(e).toBeInstanceOf(cls);
  expect(e).toBeInstanceOf(cls === TypeError ? CoapArgTypeError : CoapArgRangeError);
  expect((e as { code: string }).code).toBe(code);
  expect((e as Error).message).toContain(names);
}

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error('did not throw');
}

const handler = () => ({ code: '2.05' as const });

describe('synchronous argument errors', () => {
  const cases: [string, () => unknown, Cls, string, string][] = [
    ['createServer without a handler', () => createServer(undefined as never), T, TYPE, 'handler'],
    ['createServer with options null', () => createServer(handler, null as never), T, TYPE, 'options'],
    ['server ackTimeout 0', () => createServer(handler, { ackTimeout: 0 }), R, RANGE, 'ackTimeout'],
    ['server ackTimeout a string', () => createServer(handler, { ackTimeout: '2000' } as unknown as ServerOptions), T, TYPE, 'ackTimeout'],
    ['server nstart 0', () => createServer(handler, { nstart: 0 }), R, RANGE, 'nstart'],
    ['server nstart 1.5', () => createServer(handler, { nstart: 1.5 }), R, RANGE, 'nstart'],
    ['server ackRandomFactor 20', () => createServer(handler, { ackRandomFactor: 20 }), R, RANGE, 'ackRandomFactor'],
    ['server maxMessageSize 10', () => createServer(handler, { maxMessageSize: 10 }), R, RANGE, 'maxMessageSize'],
    ['server blockwise not an object', () => createServer(handler, { blockwise: 5 } as unknown as ServerOptions), T, TYPE, 'blockwise'],
    ['server preferredBlockSize 100', () => createServer(handler, { blockwise: { preferredBlockSize: 100 } }), R, RANGE, 'preferredBlockSize'],
    ['server backend gpu', () => createServer(handler, { backend: 'gpu' } as unknown as ServerOptions), T, VALUE, 'backend'],
    ['server wellKnownCore "yes"', () => createServer(handler, { wellKnownCore: 'yes' } as unknown as ServerOptions), T, TYPE, 'wellKnownCore'],
    ['server exposeErrors 1', () => createServer(handler, { exposeErrors: 1 } as unknown as ServerOptions), T, TYPE, 'exposeErrors'],
    ['server ipv6Only "no"', () => createServer(handler, { ipv6Only: 'no' } as unknown as ServerOptions), T, TYPE, 'ipv6Only'],
    ['server closeTimeout -1', () => createServer(handler, { closeTimeout: -1 }), R, RANGE, 'closeTimeout'],
    ['agent tokenLength 9', () => new Agent({ tokenLength: 9 }), R, RANGE, 'tokenLength'],
    ['agent nstart 0', () => new Agent({ nstart: 0 }), R, RANGE, 'nstart'],
    ['agent ackTimeout -1', () => new Agent({ ackTimeout: -1 }), R, RANGE, 'ackTimeout'],
    ['agent maxRetransmit 21', () => new Agent({ maxRetransmit: 21 }), R, RANGE, 'maxRetransmit'],
    ['agent backend gpu', () => new Agent({ backend: 'gpu' } as unknown as AgentOptions), T, VALUE, 'backend'],
    ['codeToString(300)', () => codeToString(300), R, RANGE, 'code'],
    ["parseCode('9')", () => parseCode('9'), R, VALUE, 'code'],
    ["methodToCode('FOO')", () => methodToCode('FOO' as never), R, VALUE, 'method'],
    ['decode a string', () => decode('x' as never), T, TYPE, 'input'],
    ['decode with an unknown transport', () => decode(new Uint8Array([0x40, 1, 0, 0]), { transport: 'carrier-pigeon' as never }), T, VALUE, 'transport'],
    ['encode with an unknown transport', () => encode({ type: 'CON', code: '0.01', messageId: 1 } as never, { transport: 'carrier-pigeon' as never }), T, VALUE, 'transport'],
    ['Deframer maxMessageSize -1', () => new Deframer({ maxMessageSize: -1 }), R, RANGE, 'maxMessageSize'],
    ['Deframer.push a string', () => new Deframer().push('x' as never), T, TYPE, 'chunk'],
  ];
  it.each(cases)('%s', (_name, f, cls, code, names) => {
    expectArgError(thrown(f), cls, code, names);
  });

  it('valid options still construct (the early check refuses only mistakes)', () => {
    expect(() => createServer(handler, { ackTimeout: 1000, nstart: 2, wellKnownCore: false, blockwise: { preferredBlockSize: 64 } })).not.toThrow();
    const a = new Agent({ nstart: 4, tokenLength: 0 });
    return a.close();
  });
});

describe.each(udpBackends)('asynchronous argument errors (%s)', (backend) => {
  const agent = new Agent({ backend });
  afterAll(() => agent.close());
  // Port 9 (discard): nothing is sent, the arguments are refused first.
  const url = 'coap://127.0.0.1:9/x';
  const cases: [string, RequestOptions, Cls, string, string][] = [
    ['timeout -1', { timeout: -1 }, R, RANGE, 'timeout'],
    ['timeout 2^31', { timeout: 2 ** 31 }, R, RANGE, 'timeout'],
    ['blockSize 100', { blockSize: 100 }, R, RANGE, 'blockSize'],
    ['maxBodySize 0', { maxBodySize: 0 }, R, RANGE, 'maxBodySize'],
    ['method FOO', { method: 'FOO' as never }, T, VALUE, 'method'],
    ["confirmable 'yes'", { confirmable: 'yes' as never }, T, TYPE, 'confirmable'],
    ['confirmable 0', { confirmable: 0 as never }, T, TYPE, 'confirmable'],
  ];
  it.each(cases)('request %s', async (_name, o, cls, code, names) => {
    const e = await request(url, { ...o, agent }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expectArgError(e, cls, code, names);
  });

  it('listen on port 70000', async () => {
    const s = createServer(handler, { backend });
    const e = await s.listen(70000).then(
      () => undefined,
      (err: unknown) => err,
    );
    expectArgError(e, R, RANGE, 'port');
    await s.close();
  });

  it.each([
    ['maxBuffered 0', { maxBuffered: 0 }, R, RANGE, 'maxBuffered'],
    ["method 'POST'", { method: 'POST' as never }, T, VALUE, 'method'],
    ['timeout -5', { timeout: -5 }, R, RANGE, 'timeout'],
  ] as const)('observe %s', async (_name, o, cls, code, names) => {
    const obs = observe(url, { ...o, agent });
    let err: unknown;
    try {
      for await (const _ of obs) break;
    } catch (e) {
      err = e;
    }
    expectArgError(err, cls, code, names);
  });
});

describe.each(udpBackends)('strict booleans in server responses (%s)', (backend) => {
  it("notify({ confirmable: 'yes' }) throws TypeError ERR_INVALID_ARG_TYPE", async () => {
    const s = createServer(handler, { backend });
    await s.listen({ port: 0, host: '127.0.0.1' });
    try {
      expectArgError(
        thrown(() => s.resource('/x').notify({ code: '2.05', payload: 'x', confirmable: 'yes' as never })),
        T,
        TYPE,
        'confirmable',
      );
    } finally {
      await s.close();
    }
  });

  it("a response with observe: 'yes' is not sent: 5.00, CoapResponseError INVALID_OPTION to onError", async () => {
    const errors: unknown[] = [];
    const s = createServer(() => ({ code: '2.05', payload: 'x', observe: 'yes' as never }), { backend, onError: (e) => void errors.push(e) });
    await s.listen({ port: 0, host: '127.0.0.1' });
    const agent = new Agent({ backend });
    try {
      const res = await request(`coap://127.0.0.1:${s.address().port}/x`, { agent, options: [{ number: 6, value: 0 }] });
      expect(res.code).toBe('5.00');
      expect(errors).toHaveLength(1);
      expect(errors[0]).toBeInstanceOf(CoapResponseError);
      expect((errors[0] as CoapResponseError).code).toBe('INVALID_OPTION');
      expect((errors[0] as Error).message).toContain('observe');
    } finally {
      await agent.close();
      await s.close();
    }
  });
});
