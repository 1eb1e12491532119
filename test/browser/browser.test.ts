/**
 * The browser bundle (dist/turbocoap.browser.mjs) in headless Chromium, on
 * the main thread and in a module Worker, served from a loopback HTTP server.
 * Needs Chromium: CHROMIUM_PATH, else `chromium` / `chromium-browser` on PATH, else
 * /usr/bin/chromium. Outside CI a missing one skips the suite with a one-line reason;
 * with CI set it fails the suite.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { which } from '../../scripts/lib/proc.mjs';
import { root } from '../support/backends';
import { inCI } from '../support/ci';

const executablePath = process.env.CHROMIUM_PATH || (which('chromium') ?? which('chromium-browser') ?? '/usr/bin/chromium');
const missing = existsSync(executablePath)
  ? undefined
  : `Chromium not found at ${executablePath} (apt-get install chromium, or set CHROMIUM_PATH)`;
if (missing !== undefined) {
  if (inCI) throw new Error(`CI: ${missing}`);
  // Visible, not quiet: the reason shows in the test output.
  console.warn(`browser: SKIPPED (CI is not set): ${missing}`);
}
const vectors: { name: string; transport: string; hex: string; message?: unknown; error?: string }[] = JSON.parse(
  readFileSync(join(root, 'test', 'vectors', 'codec.json'), 'utf8'),
).vectors;

// Runs in the page and in the worker: every vector through decode/encode,
// plus a deframer pass. Returns a summary.
const probe = `
import * as t from './turbocoap.browser.mjs';
const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
const unhex = (s) => new Uint8Array(s.match(/../g)?.map((h) => parseInt(h, 16)) ?? []);
export async function run() {
  const vectors = await (await fetch('/vectors.json')).json();
  let decoded = 0, encoded = 0, rejected = 0;
  const failures = [];
  for (const v of vectors.vectors) {
    const bytes = unhex(v.hex);
    try {
      const m = t.decode(bytes, { transport: v.transport });
      if (v.error) { failures.push(v.name + ': decoded, expected ' + v.error); continue; }
      const e = v.message;
      const got = { code: m.code, token: hex(m.token), options: m.options.map((o) => [o.number, hex(o.value)]), payload: hex(m.payload) };
      if (m.type !== undefined) { got.type = m.type; got.messageId = m.messageId; }
      const want = { code: e.code, token: e.token, options: e.options, payload: e.payload };
      if (e.type !== undefined) { want.type = e.type; want.messageId = e.messageId; }
      if (JSON.stringify(got, Object.keys(want).sort()) !== JSON.stringify(want, Object.keys(want).sort())) failures.push(v.name + ': decode mismatch');
      else decoded++;
      const msg = { ...e, token: unhex(e.token), payload: unhex(e.payload), options: e.options.map(([n, x]) => ({ number: n, value: unhex(x) })) };
      if (hex(t.encode(msg, { transport: v.transport })) === v.hex) encoded++;
      else failures.push(v.name + ': encode mismatch');
    } catch (err) {
      if (!(err instanceof t.CoapParseError)) failures.push(v.name + ': threw ' + err);
      else if (err.code !== v.error) failures.push(v.name + ': ' + err.code + ' != ' + v.error);
      else rejected++;
    }
  }
  const stream = new Uint8Array(3000);
  for (let i = 0; i < 1500; i++) stream[2 * i + 1] = 0x45;
  const d = new t.Deframer();
  let frames = 0;
  for (let i = 0; i < stream.length; i += 7) frames += d.push(stream.subarray(i, i + 7)).length;
  return { kind: t.backend.kind, decoded, encoded, rejected, frames, failures };
}
`;

const page = `<!doctype html><meta charset="utf-8"><title>turbocoap</title>
<script type="module">
import { run } from './probe.mjs';
window.__main = run().catch((e) => ({ error: String(e && e.stack || e) }));
window.__worker = new Promise((resolve) => {
  const w = new Worker('./worker.mjs', { type: 'module' });
  w.onmessage = (ev) => resolve(ev.data);
  w.onerror = (ev) => resolve({ error: 'worker error: ' + ev.message });
});
</script>`;

const worker = `import { run } from './probe.mjs';
run().then((r) => postMessage(r), (e) => postMessage({ error: String(e && e.stack || e) }));`;

describe.skipIf(missing !== undefined)('browser bundle in Chromium', () => {
  let server: Server | undefined;
  let browser: Browser | undefined;
  let base: string;

  beforeAll(async () => {
    const files: Record<string, [string, string | Buffer]> = {
      '/index.html': ['text/html', page],
      '/probe.mjs': ['text/javascript', probe],
      '/worker.mjs': ['text/javascript', worker],
      '/turbocoap.browser.mjs': ['text/javascript', readFileSync(join(root, 'dist', 'turbocoap.browser.mjs'))],
      '/vectors.json': ['application/json', JSON.stringify({ vectors })],
    };
    const srv = createServer((req, res) => {
      const f = files[req.url ?? ''];
      if (!f) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': f[0] }).end(f[1]);
    });
    server = srv;
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
    browser = await chromium.launch({
      executablePath,
      headless: true,
      timeout: 60_000,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    // (A server that never started must not leave this hook waiting.)
    if (server !== undefined) await new Promise((resolve) => server?.close(resolve));
  });

  it('decodes, encodes and deframes on the main thread and in a Worker', async () => {
    if (browser === undefined) throw new Error('Chromium did not start');
    const p = await browser.newPage();
    const errors: string[] = [];
    p.on('pageerror', (e) => errors.push(String(e)));
    await p.goto(`${base}/index.html`);
    const main = await p.evaluate(() => (window as unknown as { __main: Promise<unknown> }).__main);
    const inWorker = await p.evaluate(() => (window as unknown as { __worker: Promise<unknown> }).__worker);
    await p.close();
    expect(errors).toEqual([]);
    const ok = vectors.filter((v) => v.message).length;
    const bad = vectors.length - ok;
    for (const r of [main, inWorker]) {
      expect(r).toEqual({ kind: 'wasm', decoded: ok, encoded: ok, rejected: bad, frames: 1500, failures: [] });
    }
  }, 120_000);
});
