/**
 * The `turbocoap` CLI (dist/cli.js), run as a child process against the demo
 * server (`turbocoap serve`) on a random loopback port.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../ts/cli';
import { Agent, request, type RequestOptions } from '../ts/client';
import { createDemoServer, DemoStore } from '../ts/demo';
import type { CoapServer } from '../ts/server';
import { hasNative } from './support/backends';
import { benchPath, cliPath, coapPing, freePort, killAll, runCli, spawnPeer, startDemoServer, waitForOutput } from './support/peers';
import { udpBackends } from './support/udp';

/** An in-memory stdout / stderr for main(), a terminal or not. */
class Collect extends Writable {
  private readonly chunks: Buffer[] = [];
  constructor(readonly isTTY: boolean) {
    super();
  }
  override _write(chunk: Buffer | string, _enc: BufferEncoding, cb: () => void): void {
    this.chunks.push(Buffer.from(chunk));
    cb();
  }
  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

let port: number;
let base: string;
let tmp: string;

beforeAll(async () => {
  ({ port } = await startDemoServer());
  base = `coap://127.0.0.1:${port}`;
  tmp = mkdtempSync(join(tmpdir(), 'turbocoap-cli-'));
});

afterAll(async () => {
  await killAll();
  rmSync(tmp, { recursive: true, force: true });
});

describe('help and usage', () => {
  it('dist/cli.js runs on its own as the package bin (shebang, executable bit)', () => {
    const out = execFileSync(cliPath, ['--help'], { encoding: 'utf8' });
    expect(out).toContain('usage: turbocoap');
  });

  it('--help lists the commands and exits 0', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    for (const w of ['get|post|put|delete|fetch|patch|ipatch', 'serve', 'bench']) expect(r.stdout).toContain(w);
  });

  it('each command has --help', async () => {
    const get = await runCli(['get', '--help']);
    expect(get.code).toBe(0);
    for (const w of ['--payload', '--content-format', '--accept', '--non', '--option', '--timeout', '--verbose', '--output']) expect(get.stdout).toContain(w);
    const serve = await runCli(['serve', '--help']);
    expect(serve.code).toBe(0);
    expect(serve.stdout).toContain('--port');
    expect(serve.stdout).toContain('/.well-known/core');
    const bench = await runCli(['bench', '--help']);
    expect(bench.stdout).toContain('usage: turbocoap bench');
    if (hasNative) {
      expect(bench.code).toBe(0);
      expect(bench.stdout).toContain('usage: coap-bench'); // coap-bench's own help, passed through
    } else {
      // coap-bench is built with the addon: without it, the help says so.
      expect(bench.code).toBe(2);
      expect(bench.stderr).toContain('coap-bench is not built');
    }
  });

  it.each([
    [[], 'usage: turbocoap'],
    [['frobnicate'], 'unknown command'],
    [['get'], 'missing <uri>'],
    [['get', 'http://example.com/'], 'only coap://'],
    [['get', 'coap://127.0.0.1/', '--bogus'], 'unknown option'],
    [['get', 'coap://127.0.0.1/', '-t', 'image/x-nope'], 'unknown content format'],
    [['get', 'coap://127.0.0.1/', '-O', 'Not-An-Option,1'], 'unknown option name'],
    [['get', 'coap://127.0.0.1/', '-O', 'Max-Age,abc'], 'unsigned integer'],
    [['get', 'coap://127.0.0.1/', '--timeout', '0'], '--timeout'],
    [['put', 'coap://127.0.0.1/', '-p', 'x', '-f', 'y'], 'not both'],
    [['serve', '--port', '70000'], '--port'],
    [['serve', '--bogus'], "unknown option '--bogus'"],
    [['serve', '-x'], "unknown option '-x'"],
    [['get', 'coap://127.0.0.1/', '-p'], 'argument missing'],
    [['get', 'coap://127.0.0.1/', '--non=yes'], 'does not take an argument'],
    [['get', 'coap://127.0.0.1/', '-p', 'a', '--payload', 'b'], 'option --payload given twice'],
    [['get', 'coap://127.0.0.1/', 'coap://127.0.0.1/x'], 'unexpected argument'],
    [['backend', 'extra'], 'unexpected argument'],
  ])('usage error %j exits 2', async (args, message) => {
    const r = await runCli(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
  });
});

describe('requests against the demo server', () => {
  it('GET prints the payload and exits 0', async () => {
    const r = await runCli(['get', `${base}/hello`]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('Hello, CoAP!\n'); // text ends in a newline, added when missing
  });

  it('PUT / GET / POST / DELETE round trip with exit codes', async () => {
    const key = `k${process.pid}`;
    const put = await runCli(['put', `${base}/store/${key}`, '-p', 'first', '-t', 'text/plain']);
    expect(put.code).toBe(0);
    const get1 = await runCli(['get', `${base}/store/${key}`]);
    expect([get1.code, get1.stdout]).toEqual([0, 'first\n']);
    const post = await runCli(['post', `${base}/store/${key}`, '-p', '+second']);
    expect(post.code).toBe(0);
    const get2 = await runCli(['get', `${base}/store/${key}`]);
    expect([get2.code, get2.stdout]).toEqual([0, 'first+second\n']);
    const del = await runCli(['delete', `${base}/store/${key}`]);
    expect(del.code).toBe(0);
    const get3 = await runCli(['get', `${base}/store/${key}`]);
    expect(get3.code).toBe(1);
    expect(get3.stdout).toBe('');
    expect(get3.stderr.trim()).toBe('4.04 Not Found');
  });

  it('4.xx responses exit 1 with the code and its name', async () => {
    const r = await runCli(['post', `${base}/hello`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^4\.05 Method Not Allowed/);
    // Over the demo store's 1 MiB bound: the block-wise upload is refused with 4.13.
    const file = join(tmp, 'too-big.bin');
    writeFileSync(file, Buffer.alloc((1 << 20) + 1, 0x78));
    const big = await runCli(['put', `${base}/store/big`, '-f', file]);
    expect(big.code).toBe(1);
    expect(big.stderr).toMatch(/4\.13: it accepts at most 1048576 bytes/);
  });

  it('-f sends a file, -o saves the body', async () => {
    const src = join(tmp, 'in.json');
    const dst = join(tmp, 'out.json');
    writeFileSync(src, '{"a":[1,2,3]}');
    const put = await runCli(['put', `${base}/store/file`, '-f', src, '-t', 'application/json']);
    expect(put.code).toBe(0);
    const get = await runCli(['get', `${base}/store/file`, '-A', '50', '-o', dst]);
    expect(get.code).toBe(0);
    expect(get.stdout).toBe('');
    expect(readFileSync(dst, 'utf8')).toBe('{"a":[1,2,3]}');
    const wrong = await runCli(['get', `${base}/store/file`, '-A', 'text/plain']);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/^4\.06 Not Acceptable/);
  });

  it('-O adds options: If-None-Match makes a PUT on an existing key fail with 4.12', async () => {
    expect((await runCli(['put', `${base}/store/inm`, '-p', 'v1'])).code).toBe(0);
    const r = await runCli(['put', `${base}/store/inm`, '-p', 'v2', '-O', 'If-None-Match']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^4\.12 Precondition Failed/);
    const fresh = await runCli(['put', `${base}/store/inm-new`, '-p', 'v', '-O', '5']);
    expect(fresh.code).toBe(0);
  });

  it('fetch, patch and ipatch send their methods', async () => {
    for (const [cmd, code] of [['fetch', '0.05 FETCH'], ['patch', '0.06 PATCH'], ['ipatch', '0.07 iPATCH']] as const) {
      const r = await runCli([cmd, `${base}/hello`, '-p', '{}', '-t', '50', '-v']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`^> CON ${code.replace('.', '\\.')} `, 'm'));
      expect(r.stderr).toContain('>   Content-Format (12): 50 (application/json)');
      expect(r.stderr).toMatch(/^4\.05 Method Not Allowed$/m);
    }
  });

  it('-N sends a NON request', async () => {
    const r = await runCli(['get', `${base}/time`, '-N', '-v']);
    expect(r.code).toBe(0);
    expect(r.stdout.endsWith('\n')).toBe(true);
    expect(new Date(r.stdout.trim()).toISOString()).toBe(r.stdout.trim());
    expect(r.stderr).toMatch(/^> NON 0\.01 GET/m);
    expect(r.stderr).toMatch(/^< NON 2\.05 Content/m);
  });

  it('-v dumps type, MID, code, token, options by name and payload of both messages', async () => {
    const r = await runCli(['get', `${base}/store/nothing-here?x=1`, '-v', '-A', 'json', '-O', '2048,0xabcd']);
    expect(r.code).toBe(1);
    const req = r.stderr.split('\n').filter((l) => l.startsWith('>'));
    const res = r.stderr.split('\n').filter((l) => l.startsWith('<'));
    expect(req[0]).toMatch(/^> CON 0\.01 GET {2}MID (\d+) \(0x[0-9a-f]{4}\) {2}token 0x[0-9a-f]+ {2}\d+ bytes {2}to 127\.0\.0\.1:\d+$/);
    expect(req).toContain('>   Uri-Path (11): "store"');
    expect(req).toContain('>   Uri-Path (11): "nothing-here"');
    expect(req).toContain('>   Uri-Query (15): "x=1"');
    expect(req).toContain('>   Accept (17): 50 (application/json)');
    expect(req).toContain('>   Unknown (2048): 0xabcd');
    const mid = /MID (\d+)/.exec(req[0] as string)?.[1];
    const token = /token (0x[0-9a-f]+)/.exec(req[0] as string)?.[1];
    expect(res[0]).toContain(`ACK 4.04 Not Found  MID ${mid} `);
    expect(res[0]).toContain(`token ${token}`);

    const ok = await runCli(['get', `${base}/hello`, '-v']);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toBe('Hello, CoAP!\n');
    expect(ok.stderr).toContain('<   Content-Format (12): 0 (text/plain;charset=utf-8)');
    expect(ok.stderr).toContain('<   payload (12 bytes): "Hello, CoAP!"');
  });

  it('exits 3 on timeout and on an unreachable port', async () => {
    // A socket that never answers.
    const sink: Socket = createSocket('udp4');
    await new Promise<void>((r) => sink.bind(0, '127.0.0.1', () => r()));
    try {
      const t0 = Date.now();
      const r = await runCli(['get', `coap://127.0.0.1:${sink.address().port}/x`, '--timeout', '500']);
      expect(r.code).toBe(3);
      expect(r.stderr).toContain('timeout');
      expect(Date.now() - t0).toBeLessThan(10_000);
    } finally {
      sink.close();
    }
    const dead = await freePort();
    const r = await runCli(['get', `coap://127.0.0.1:${dead}/x`, '--timeout', '3000']);
    expect(r.code).toBe(3);
  });

  // IP_RECVERR is Linux's; the WebAssembly backend is not told of ICMP errors (README)
  it.runIf(hasNative && process.platform === 'linux')('a closed port fails at once with ECONNREFUSED on the native backend (no --timeout)', async () => {
    const dead = await freePort();
    const r = await runCli(['get', `coap://127.0.0.1:${dead}/x`], { env: { ...process.env, TURBOCOAP_BACKEND: 'native' } });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('ECONNREFUSED');
  }, 30_000);
});

describe('arguments, output and progress', () => {
  it('takes values inline (-pTEXT, --payload=TEXT), repeats -O and ends options at --', async () => {
    expect((await runCli(['put', `${base}/store/inline`, '-pabc'])).code).toBe(0);
    expect((await runCli(['get', `${base}/store/inline`])).stdout).toBe('abc\n');
    expect((await runCli(['put', `${base}/store/inline`, '--payload=-dash', '-O', '2048,0x01', '-O', 'If-None-Match'])).code).toBe(1); // the key exists: 4.12
    expect((await runCli(['post', `${base}/store/inline`, '--payload=-dash'])).code).toBe(0);
    expect((await runCli(['get', '--', `${base}/store/inline`])).stdout).toBe('abc-dash\n');
  });

  it('`backend` and --version name the backend in use', async () => {
    const env = { ...process.env };
    delete env.TURBOCOAP_BACKEND;
    const b = await runCli(['backend'], { env });
    expect([b.code, b.stdout]).toEqual([0, hasNative ? 'native\n' : 'wasm\n']);
    const v = await runCli(['--version'], { env });
    expect(v.stdout).toMatch(new RegExp(`^turbocoap \\d+\\.\\d+\\.\\d+\\S* \\(${hasNative ? 'native' : 'wasm'} backend\\)\\n$`));
    const w = await runCli(['backend'], { env: { ...env, TURBOCOAP_BACKEND: 'wasm' } });
    expect([w.code, w.stdout, w.stderr]).toEqual([0, 'wasm\n', 'turbocoap: forced by TURBOCOAP_BACKEND=wasm\n']);
  });

  it('binary bodies are byte-exact on a pipe and with -o; --progress off a terminal prints one final line', async () => {
    const want = Buffer.alloc(1 << 20);
    for (let i = 0; i < want.length; i++) want[i] = i % 251;
    const piped = spawnSync(process.execPath, [cliPath, 'get', `${base}/large`], { maxBuffer: 4 << 20 });
    expect(piped.status, String(piped.stderr)).toBe(0);
    expect(Buffer.compare(piped.stdout, want)).toBe(0); // no newline added to binary on a pipe
    // A reader that lags: the CLI must wait for the pipe to drain before it exits.
    const slow = spawn(process.execPath, [cliPath, 'get', `${base}/large`], { stdio: ['ignore', 'pipe', 'pipe'] });
    const closed = new Promise<number | null>((res) => slow.on('close', (code) => res(code)));
    slow.stdout.pause();
    await new Promise((r) => setTimeout(r, 1000));
    const chunks: Buffer[] = [];
    slow.stdout.on('data', (c: Buffer) => chunks.push(c));
    slow.stdout.resume();
    expect(await closed).toBe(0);
    expect(Buffer.concat(chunks).length).toBe(want.length);
    expect(Buffer.compare(Buffer.concat(chunks), want)).toBe(0);
    const file = join(tmp, 'large.bin');
    const r = await runCli(['get', `${base}/large`, '-b', '1024', '--progress', '-o', file]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    expect(Buffer.compare(readFileSync(file), want)).toBe(0);
    expect(r.stderr).toBe('download 1048576/1048576 bytes (100%)\n');
  });

  it('--progress on a terminal rewrites one line per direction in place', async () => {
    const out = new Collect(false);
    const err = new Collect(true);
    const code = await main(['put', `${base}/store/progress`, '-p', 'x'.repeat(5000), '-b', '512', '--progress'], { stdout: out, stderr: err });
    expect(code).toBe(0);
    const text = err.text();
    expect(text.split('\r').length - 1).toBeGreaterThan(5); // one rewrite per block
    expect(text.match(/\n/g)).toHaveLength(1); // one line, ended once
    expect(text.endsWith('upload 5000/5000 bytes (100%)\x1b[K\n')).toBe(true);
    // A text body on a terminal ends in a newline too.
    const got = new Collect(true);
    expect(await main(['get', `${base}/store/progress`], { stdout: got, stderr: new Collect(true) })).toBe(0);
    expect(got.text()).toBe(`${'x'.repeat(5000)}\n`);
  });
});

describe('serve', () => {
  it('logs its address and exits 0 on SIGTERM and SIGINT', async () => {
    for (const sig of ['SIGTERM', 'SIGINT'] as const) {
      const p = await freePort();
      const s = spawnPeer('serve', process.execPath, [cliPath, 'serve', '--port', String(p), '--host', '127.0.0.1']);
      await waitForOutput(s, /listening on coap:\/\/127\.0\.0\.1:(\d+)\//);
      expect(s.stdout).toContain(`coap://127.0.0.1:${p}/`);
      expect(await coapPing('127.0.0.1', p, 1000)).toBe(true);
      s.proc.kill(sig);
      await Promise.race([s.done, new Promise((r) => setTimeout(r, 5000))]);
      expect(s.exited).toBe(true);
      expect(s.exitCode).toBe(0);
      expect(await coapPing('127.0.0.1', p, 300)).toBe(false);
    }
  });
});

describe('serve --amplification-limit', () => {
  /** The response code byte a raw GET /large (one 11-byte datagram, no Echo answered) gets. */
  const rawGetLarge = (port: number): Promise<number> =>
    new Promise<number>((resolve, reject) => {
      const sock = createSocket('udp4');
      const timer = setTimeout(() => (sock.close(), reject(new Error('no response'))), 5000);
      sock.on('message', (m) => {
        clearTimeout(timer);
        sock.close();
        resolve(m[1] as number);
      });
      sock.send(Buffer.from([0x40, 0x01, 0x12, 0x34, 0xb5, ...Buffer.from('large')]), port, '127.0.0.1');
    });

  it('0 turns the RFC 9175 defence off for clients that do not answer Echo; the default challenges them', async () => {
    for (const [args, code] of [[['--amplification-limit', '0'], 0x45], [[], 0x81]] as const) {
      const p = await freePort();
      const s = spawnPeer('serve', process.execPath, [cliPath, 'serve', '--port', String(p), '--host', '127.0.0.1', ...args]);
      await waitForOutput(s, /listening on coap:/);
      expect(await rawGetLarge(p)).toBe(code); // 2.05 (block 0) with 0; 4.01 + Echo by default
      s.proc.kill('SIGTERM');
      await Promise.race([s.done, new Promise((r) => setTimeout(r, 5000))]);
    }
    const bad = await runCli(['serve', '--amplification-limit', 'x']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--amplification-limit');
  });
});

describe('bench', () => {
  it.runIf(process.platform === 'linux' && hasNative)('passes its arguments to coap-bench (1-second run)', async () => {
    expect(benchPath).toBeTruthy();
    const r = await runCli(['bench', `${base}/hello`, '-c', '4', '-k', '2', '-d', '1', '-w', '0', '--json'], { timeoutMs: 30_000 });
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout.trim()) as { concurrency: number; sockets: number; url: string; requests: number; status: Record<string, number> };
    expect(j.concurrency).toBe(4);
    expect(j.sockets).toBe(2);
    expect(j.url).toBe(`${base}/hello`);
    expect(j.requests).toBeGreaterThan(0);
    expect(j.status['2xx']).toBe(j.requests);
    const bad = await runCli(['bench', `${base}/hello`, '-c', 'zero']);
    expect(bad.code).toBe(2); // coap-bench's own usage status, passed through
  });
});

describe.each(udpBackends)('demo server resources and bounds (%s)', (backend) => {
  let server: CoapServer;
  let agent: Agent;
  let url: string;
  const req = (path: string, o: RequestOptions = {}) => request(`${url}${path}`, { agent, timeout: 5000, ...o });

  beforeAll(async () => {
    server = createDemoServer({ maxEntries: 3, maxBytes: 40, maxValueBytes: 16, server: { backend } });
    await server.listen({ port: 0, host: '127.0.0.1' });
    url = `coap://127.0.0.1:${server.address().port}`;
    agent = new Agent({ backend });
  });

  afterAll(async () => {
    await agent?.close();
    await server?.close();
  });

  it('/hello in text and JSON, 4.06 otherwise; /time with Max-Age 1', async () => {
    expect(server.backend).toBe(backend);
    const t = await req('/hello');
    expect([t.code, t.text(), t.contentFormat]).toEqual(['2.05', 'Hello, CoAP!', 0]);
    const j = await req('/hello', { accept: 'application/json' });
    expect([j.code, j.json(), j.contentFormat]).toEqual(['2.05', { hello: 'world' }, 50]);
    expect((await req('/hello', { accept: 60 })).code).toBe('4.06');
    const time = await req('/time');
    expect(time.maxAge).toBe(1);
    expect(Math.abs(Date.parse(time.text()) - Date.now())).toBeLessThan(10_000);
  });

  it('ETags: 2.03 Valid for a matching ETag, If-Match / If-None-Match give 4.12', async () => {
    const put = await req('/store/e', { method: 'PUT', payload: 'v1', contentFormat: 0 });
    expect(put.code).toBe('2.01');
    const etag = put.etag as Uint8Array;
    expect(etag.length).toBe(4);
    const get = await req('/store/e');
    expect([get.code, get.text(), Buffer.from(get.etag as Uint8Array).toString('hex')]).toEqual(['2.05', 'v1', Buffer.from(etag).toString('hex')]);
    const valid = await req('/store/e', { options: [{ number: 4, value: etag }] });
    expect([valid.code, valid.payload.length]).toEqual(['2.03', 0]);
    expect((await req('/store/e', { method: 'PUT', payload: 'v2', options: [{ number: 1, value: Uint8Array.of(1, 2, 3, 4) }] })).code).toBe('4.12');
    expect((await req('/store/e', { method: 'PUT', payload: 'v2', options: [{ number: 1, value: etag }] })).code).toBe('2.04');
    expect((await req('/store/e', { method: 'PUT', payload: 'v3', options: [{ number: 5, value: new Uint8Array(0) }] })).code).toBe('4.12');
    expect((await req('/store/e', { method: 'DELETE' })).code).toBe('2.02');
  });

  it('4.13 with Size1 for a value over maxValueBytes', async () => {
    const r = await req('/store/big', { method: 'PUT', payload: 'x'.repeat(17) });
    expect(r.code).toBe('4.13');
    expect(r.option(60)).toEqual(Uint8Array.of(16));
    expect((await req('/store/big')).code).toBe('4.04');
    // POST appends: growing past the value bound is refused the same way.
    expect((await req('/store/grow', { method: 'POST', payload: 'x'.repeat(10) })).code).toBe('2.01');
    expect((await req('/store/grow', { method: 'POST', payload: 'x'.repeat(7) })).code).toBe('4.13');
    expect((await req('/store/grow', { method: 'DELETE' })).code).toBe('2.02');
  });

  it('5.03 with Max-Age when the store is full in entries, then in bytes', async () => {
    for (const k of ['a', 'b', 'c']) expect((await req(`/store/${k}`, { method: 'PUT', payload: '1' })).code).toBe('2.01');
    const full = await req('/store/d', { method: 'PUT', payload: '1' });
    expect(full.code).toBe('5.03');
    expect(full.maxAge).toBe(30);
    // Replacing an existing key still works at the entry bound.
    expect((await req('/store/a', { method: 'PUT', payload: '2' })).code).toBe('2.04');
    const list = await req('/store');
    expect([list.code, list.contentFormat]).toEqual(['2.05', 40]);
    expect(list.text()).toBe('</store/a>;sz=1,</store/b>;sz=1,</store/c>;sz=1');
    // Bytes: keys + values may not exceed 40.
    expect((await req('/store/b', { method: 'DELETE' })).code).toBe('2.02');
    expect((await req('/store/c', { method: 'DELETE' })).code).toBe('2.02');
    expect((await req('/store/b', { method: 'PUT', payload: 'y'.repeat(16) })).code).toBe('2.01'); // a: 2 bytes, b: 17
    expect((await req('/store/c', { method: 'PUT', payload: 'z'.repeat(16) })).code).toBe('2.01'); // c: 17, 36 in all
    const bytesFull = await req('/store/a', { method: 'PUT', payload: 'w'.repeat(16) }); // 36 + 15 > 40
    expect(bytesFull.code).toBe('5.03');
    expect((await req('/store/a')).text()).toBe('2');
  });

  it('4.00 for a key over maxKeyBytes', async () => {
    expect((await req(`/store/${'k'.repeat(65)}`, { method: 'PUT', payload: '1' })).code).toBe('4.00');
  });
});

describe('DemoStore accounting', () => {
  it('counts keys and values and refuses what does not fit', () => {
    const s = new DemoStore({ maxEntries: 2, maxBytes: 10, maxValueBytes: 8 });
    expect(s.set('ab', Uint8Array.of(1, 2, 3), 0)).toBe('created');
    expect([s.size, s.bytes]).toEqual([1, 5]);
    expect(s.set('ab', Uint8Array.of(1), 0)).toBe('changed');
    expect(s.bytes).toBe(3);
    expect(s.set('c', new Uint8Array(9), undefined)).toBe('too-large');
    expect(s.set('c', new Uint8Array(7), undefined)).toBe('full'); // 3 + 1 + 7 > 10
    expect(s.set('c', new Uint8Array(6), undefined)).toBe('created');
    expect(s.set('d', new Uint8Array(0), undefined)).toBe('full'); // entries
    expect(s.delete('ab')).toBe(true);
    expect(s.delete('ab')).toBe(false);
    expect([s.size, s.bytes]).toEqual([1, 7]);
  });
});
