/**
 * The CLI over the reliable transports: `turbocoap serve --listen URI` (several listeners,
 * PSK and certificates) and request commands over coap+tcp / coaps+tcp / coap+ws with
 * --psk / --ca, -f, -o, -s; a handshake or verification failure exits 3.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliPath, killAll, runCli, spawnPeer, waitForOutput, type Peer } from './support/peers';

describe('CLI over TCP, TLS and WebSockets', () => {
  let dir: string;
  let serve: Peer;
  const urls: Record<string, string> = {};

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tc-cli-'));
    const run = (...args: string[]): void => {
      execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
    };
    for (const ca of ['ca', 'other']) {
      run('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${ca}.key`, '-out', `${ca}.crt`, '-days', '2', '-subj', `/CN=${ca}`);
    }
    run('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
    writeFileSync(join(dir, 'server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
    run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'server.ext');
    writeFileSync(join(dir, 'upload.bin'), new Uint8Array(200000).map((_, i) => i % 253));
    serve = spawnPeer('serve', process.execPath, [
      cliPath, 'serve',
      '--listen', 'coap+tcp://127.0.0.1:0',
      '--listen', 'coaps+tcp://127.0.0.1:0',
      '--listen', 'coap+ws://127.0.0.1:0',
      '--listen', 'coap://127.0.0.1:0',
      '--psk', 'cli:sesame',
      '--cert', join(dir, 'server.crt'), '--key', join(dir, 'server.key'),
    ]);
    for (const scheme of ['coap+tcp', 'coaps+tcp', 'coap+ws', 'coap']) {
      const re = new RegExp(`listening on (${scheme.replace('+', '\\+')}://127\\.0\\.0\\.1:\\d+)/`);
      urls[scheme] = (await waitForOutput(serve, re))[1] as string;
    }
  });
  afterAll(async () => {
    await killAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the demo resources answer on every listener', async () => {
    for (const [scheme, url] of Object.entries(urls)) {
      const args = scheme === 'coaps+tcp' ? ['--psk', 'cli:sesame'] : [];
      const r = await runCli(['get', `${url}/hello`, ...args]);
      expect(r.code, `${scheme}: ${r.stderr}`).toBe(0);
      expect(r.stdout.length).toBeGreaterThan(0);
    }
  });

  it('PUT -f and GET -o of a block-wise body over TLS with certificates', async () => {
    const url = urls['coaps+tcp'] as string;
    const ca = ['--ca', join(dir, 'ca.crt')];
    const put = await runCli(['put', `${url}/store/blob`, '-f', join(dir, 'upload.bin'), ...ca]);
    expect(put.code, put.stderr).toBe(0);
    const out = join(dir, 'got.bin');
    const get = await runCli(['get', `${url}/store/blob`, '-o', out, ...ca]);
    expect(get.code, get.stderr).toBe(0);
    expect(Buffer.compare(readFileSync(out), readFileSync(join(dir, 'upload.bin')))).toBe(0);
  });

  it('get -s observes /time over coap+tcp', async () => {
    const r = await runCli(['get', `${urls['coap+tcp']}/time`, '-s', '3'], { timeoutMs: 15000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n').length).toBeGreaterThanOrEqual(2);
  });

  it('a wrong PSK and an untrusted certificate exit 3', async () => {
    const url = urls['coaps+tcp'] as string;
    const psk = await runCli(['get', `${url}/hello`, '--psk', 'cli:wrong']);
    expect(psk.code).toBe(3);
    expect(psk.stderr).toMatch(/PSK|HANDSHAKE/);
    const verify = await runCli(['get', `${url}/hello`, '--ca', join(dir, 'other.crt')]);
    expect(verify.code).toBe(3);
    expect(verify.stderr).toContain('VERIFY');
  });

  it('usage errors: a secured listener without credentials, a transport twice', async () => {
    const a = await runCli(['serve', '--listen', 'coaps+tcp://127.0.0.1:0']);
    expect(a.code).toBe(2);
    expect(a.stderr).toContain('--psk or --cert');
    const b = await runCli(['serve', '--listen', 'coap+tcp://127.0.0.1:0', '--listen', 'coap+tcp://127.0.0.1:0']);
    expect(b.code).toBe(2);
    expect(b.stderr).toContain('given twice');
    const c = await runCli(['get', 'coaps+tcp://127.0.0.1:1/x', '--psk', 'nocolon']);
    expect(c.code).toBe(2);
  });
});
