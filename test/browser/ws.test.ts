/**
 * CoAP over WebSockets from headless Chromium with the browser bundle (dist/turbocoap.browser.mjs):
 * the example page (examples/browser: index.html, demo.mjs, worker.mjs, served with a turbocoap
 * server by server.mjs) does, on the main thread and in a module Worker, a GET, a 1 MiB download
 * (Block2), a 300 kB upload (Block1), an observation (notifications, then cancel), coaps+ws
 * against a wss listener with a certificate made here by openssl, and serves GET /whoami that
 * the Node server sends down the connection the page opened with connect(). Needs Chromium
 * (CHROMIUM_PATH, else `chromium` / `chromium-browser` on PATH, else /usr/bin/chromium) and
 * openssl: outside CI a missing one skips the suite with a one-line reason; with CI set it fails.
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { which } from '../../scripts/lib/proc.mjs';
import { root } from '../support/backends';
import { inCI } from '../support/ci';

const executablePath = process.env.CHROMIUM_PATH || (which('chromium') ?? which('chromium-browser') ?? '/usr/bin/chromium');
const missing = !existsSync(executablePath)
  ? `Chromium not found at ${executablePath} (apt-get install chromium, or set CHROMIUM_PATH)`
  : which('openssl') === undefined
    ? 'openssl not found (it makes the wss certificate)'
    : undefined;
if (missing !== undefined) {
  if (inCI) throw new Error(`CI: ${missing}`);
  console.warn(`browser ws: SKIPPED (CI is not set): ${missing}`);
}

interface Example {
  http: string;
  ws: string;
  wss: string;
}

/** A self-signed certificate for 127.0.0.1 made by openssl. */
function makeCert(dir: string): { cert: string; key: string } {
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert,
  ], { stdio: 'pipe' });
  return { cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8') };
}

describe.skipIf(missing !== undefined)('browser bundle over CoAP over WebSockets in Chromium', () => {
  let dir: string;
  let host: ChildProcess | undefined;
  let ex: Example;
  let ready: ((e: Example) => void) | undefined;
  let observersReply: ((n: number) => void) | undefined;
  let browser: Browser | undefined;
  let context: BrowserContext;
  let page: Page;
  const whoami: string[] = [];
  let whoamiWaiter: (() => void) | undefined;
  const pageErrors: string[] = [];

  // (Page scripts are strings: vitest would rewrite an import() inside a function.)
  /** Calls demo.mjs's fn(...args) on the page's main thread. */
  const onPage = (fn: string, ...args: unknown[]): Promise<any> =>
    page.evaluate(`import('/demo.mjs').then((d) => d[${JSON.stringify(fn)}](...${JSON.stringify(args)}))`);
  /** Calls demo.mjs's fn(...args) in a module Worker of the page (examples/browser/worker.mjs). */
  const inWorker = (fn: string, ...args: unknown[]): Promise<any> =>
    page.evaluate(
      ([f, a]) =>
        new Promise((resolve, reject) => {
          const g = globalThis as unknown as { __w?: Worker; __n?: number };
          g.__w ??= new Worker('/worker.mjs', { type: 'module' });
          const id = (g.__n = (g.__n ?? 0) + 1);
          const w = g.__w;
          const on = ({ data }: MessageEvent): void => {
            if (data.id !== id) return;
            w.removeEventListener('message', on);
            if ('error' in data) reject(new Error(data.error));
            else resolve(data.result);
          };
          w.addEventListener('message', on);
          w.onerror = (e) => reject(new Error(`worker: ${e.message}`));
          w.postMessage({ id, fn: f, args: a });
        }),
      [fn, args] as const,
    );
  const nextWhoami = (): Promise<void> => new Promise((resolve) => (whoamiWaiter = resolve));
  /** The example server's observer count (server.stats().observers), once it is 0 or after 5 s. */
  const observersGone = async (): Promise<number> => {
    let n = -1;
    for (let i = 0; i < 100 && n !== 0; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 50));
      n = await new Promise<number>((resolve) => {
        observersReply = resolve;
        host?.send('observers');
      });
    }
    return n;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'turbocoap-browser-ws-'));
    const { cert, key } = makeCert(dir);
    // The example's server in a Node process of its own: 'turbocoap' is the package (dist/).
    host = fork(join(root, 'test', 'browser', 'example-host.mjs'), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    host.on('message', (m: { ready?: Example; whoami?: string; observers?: number }) => {
      if (m.ready !== undefined) ready?.(m.ready);
      if (m.whoami !== undefined) {
        whoami.push(m.whoami);
        whoamiWaiter?.();
      }
      if (m.observers !== undefined) observersReply?.(m.observers);
    });
    ex = await new Promise<Example>((resolve, reject) => {
      ready = resolve;
      host?.once('exit', (code) => reject(new Error(`the example server exited (${code})`)));
      host?.send({ cert, key, tick: 50 });
    });
    browser = await chromium.launch({
      executablePath,
      headless: true,
      timeout: 60_000,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--ignore-certificate-errors'],
    });
    context = await browser.newContext({ ignoreHTTPSErrors: true });
    page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    await page.goto(ex.http);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    if (host !== undefined && host.exitCode === null) {
      const exited = new Promise((resolve) => host?.once('exit', resolve));
      host.send('close');
      await exited;
    }
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('the page offers coap+ws://host:port (the WebSocket at /.well-known/coap of the page origin)', async () => {
    expect(await page.inputValue('#base')).toBe(ex.ws);
  });

  it("the page's buttons work (GET /hello, printed)", async () => {
    await page.click('button[data-fn=hello]');
    await page.waitForFunction(() => document.getElementById('out')?.textContent?.includes('Hello from turbocoap over a WebSocket'), undefined, { timeout: 30_000 });
    expect(await page.textContent('#out')).toContain('"code":"2.05"');
  }, 60_000);

  for (const where of ['main thread', 'worker'] as const) {
    const call = (fn: string, ...args: unknown[]): Promise<any> => (where === 'worker' ? inWorker(fn, ...args) : onPage(fn, ...args));

    it(`${where}: GET over coap+ws`, async () => {
      expect(await call('hello', ex.ws)).toEqual({ code: '2.05', text: 'Hello from turbocoap over a WebSocket' });
    }, 60_000);

    it(`${where}: a 1 MiB download (Block2) arrives intact`, async () => {
      const r = await call('download', ex.ws);
      expect(r).toMatchObject({ code: '2.05', bytes: 1 << 20, intact: true });
      expect(r.blocks).toBeGreaterThan(1);
    }, 120_000);

    it(`${where}: a 300 kB upload (Block1) reaches the handler whole`, async () => {
      const r = await call('upload', ex.ws, 300_000);
      expect(r).toMatchObject({ code: '2.04', bytes: 300_000, checksumOk: true });
      expect(r.blocks).toBeGreaterThan(1);
    }, 120_000);

    it(`${where}: observe yields fresh notifications, then cancel deregisters`, async () => {
      const seen = (await call('watch', ex.ws, 4)) as { observe: number; tick: number }[];
      expect(seen).toHaveLength(4);
      for (let i = 1; i < seen.length; i++) {
        expect(seen[i]!.observe).toBeGreaterThan(seen[i - 1]!.observe);
        expect(seen[i]!.tick).toBeGreaterThan(seen[i - 1]!.tick);
      }
      expect(await observersGone()).toBe(0);
    }, 60_000);

    it(`${where}: the page serves GET /whoami that Node sends down the connection it opened`, async () => {
      const answered = nextWhoami();
      const r = await call('serve', ex.ws);
      expect(r).toMatchObject({ path: '/whoami', transport: 'ws' });
      await answered;
      expect(whoami.at(-1)).toBe(r.answered);
      expect(r.answered).toBe(where === 'worker' ? 'a page (worker)' : 'a page (main thread)');
    }, 60_000);

    it(`${where}: coaps+ws against a wss listener (certificate made by openssl)`, async () => {
      expect(ex.wss).toMatch(/^coaps\+ws:\/\/127\.0\.0\.1:\d+$/);
      expect(await call('hello', ex.wss)).toEqual({ code: '2.05', text: 'Hello from turbocoap over a WebSocket' });
      expect(await call('upload', ex.wss, 300_000)).toMatchObject({ code: '2.04', bytes: 300_000, checksumOk: true });
      const seen = (await call('watch', ex.wss, 3)) as unknown[];
      expect(seen).toHaveLength(3);
      expect(await observersGone()).toBe(0);
    }, 120_000);
  }

  it('other schemes reject with CoapSchemeError saying why', async () => {
    const errs = (await page.evaluate(`(async () => {
      const t = await import('/turbocoap.browser.mjs');
      const out = {};
      for (const uri of ['coap://127.0.0.1/x', 'coaps+tcp://127.0.0.1/x']) {
        try {
          await t.request(uri);
          out[uri] = 'resolved';
        } catch (e) {
          out[uri] = { isSchemeError: e instanceof t.CoapSchemeError, code: e.code, message: e.message };
        }
      }
      return out;
    })()`)) as Record<string, unknown>;
    expect(errs['coap://127.0.0.1/x']).toMatchObject({ isSchemeError: true, code: 'UNSUPPORTED_SCHEME' });
    expect((errs['coap://127.0.0.1/x'] as { message: string }).message).toMatch(/browsers cannot send UDP/);
    expect((errs['coaps+tcp://127.0.0.1/x'] as { message: string }).message).toMatch(/browsers cannot open TCP connections/);
  }, 60_000);

  it("Node's TLS options reject with ERR_INVALID_ARG_VALUE (the browser's TLS is its own)", async () => {
    const r = await page.evaluate(`(async () => {
      const t = await import('/turbocoap.browser.mjs');
      const out = [];
      for (const [uri, opts] of [['coaps+ws://127.0.0.1:1/x', { ca: 'PEM' }], ['coaps+ws://localhost:1/x', { psk: { identity: 'a', key: 'b' } }], ['coaps+ws://localhost:1/x', { rejectUnauthorized: false }]]) {
        try {
          await t.request(uri, opts);
          out.push('resolved');
        } catch (e) {
          out.push(e.code + ' ' + e.message);
        }
      }
      return out;
    })()`);
    expect(r).toEqual([
      expect.stringMatching(/^ERR_INVALID_ARG_VALUE ca must be undefined in browsers/),
      expect.stringMatching(/^ERR_INVALID_ARG_VALUE psk must be undefined in browsers/),
      expect.stringMatching(/^ERR_INVALID_ARG_VALUE rejectUnauthorized must be true or undefined in browsers/),
    ]);
  }, 60_000);

  it('a refused connection rejects with CoapConnectionError', async () => {
    const r = await page.evaluate(`(async () => {
      const t = await import('/turbocoap.browser.mjs');
      try {
        await t.request('coap+ws://127.0.0.1:9/x'); // discard port: nothing listens
        return 'resolved';
      } catch (e) {
        return { isConnErr: e instanceof t.CoapConnectionError, code: e.code, message: e.message };
      }
    })()`);
    expect(r).toMatchObject({ isConnErr: true, code: 'ECONNREFUSED' });
  }, 60_000);

  it('no page errors', () => {
    expect(pageErrors).toEqual([]);
  });
});
