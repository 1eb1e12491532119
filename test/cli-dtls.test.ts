/**
 * The CLI over DTLS (`coaps://`, native backend): `turbocoap serve --listen coaps://HOST:PORT`
 * with `--psk ID:KEY` or `--cert F --key F [--ca F]`, `turbocoap get coaps://… --psk ID:KEY |
 * --ca F` against it and against libcoap's coap-server-openssl, libcoap's coap-client-openssl
 * against it; a handshake or verification failure exits 3.
 * Outside CI, a missing libcoap DTLS build skips its tests with one line; with CI=true they fail.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliPath, findBinary, inCI, killAll, run, runCli, spawnPeer, waitForOutput, type Peer } from './support/peers';

const client = findBinary('coap-client-openssl');
const lserver = findBinary('coap-server-openssl');
for (const [name, bin] of [['coap-client-openssl', client], ['coap-server-openssl', lserver]] as const) {
  if (bin !== undefined) continue;
  if (inCI) throw new Error(`CI: ${name} missing`);
  console.warn(`cli-dtls: ${name} tests SKIPPED (not on PATH; apt-get install libcoap3-bin)`);
}

describe('CLI over DTLS', () => {
  let dir: string;
  let pskServe: Peer;
  let pkiServe: Peer;
  let pskUrl = '';
  let pkiUrl = '';
  const f = (n: string): string => join(dir, n);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tc-cli-dtls-'));
    const ossl = (...args: string[]): void => {
      execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
    };
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    for (const ca of ['ca', 'other']) {
      ossl('req', '-x509', ...ec, '-keyout', `${ca}.key`, '-out', `${ca}.crt`, '-days', '2', '-subj', `/CN=${ca}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
    }
    ossl('req', '-new', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
    writeFileSync(f('server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
    ossl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'server.ext');
    pskServe = spawnPeer('serve-psk', process.execPath, [cliPath, 'serve', '--listen', 'coaps://127.0.0.1:0', '--psk', 'cli:sesame']);
    pkiServe = spawnPeer('serve-pki', process.execPath, [cliPath, 'serve', '--listen', 'coaps://127.0.0.1:0', '--cert', f('server.crt'), '--key', f('server.key')]);
    const re = /listening on (coaps:\/\/127\.0\.0\.1:\d+)\//;
    pskUrl = (await waitForOutput(pskServe, re))[1] as string;
    pkiUrl = (await waitForOutput(pkiServe, re))[1] as string;
  });
  afterAll(async () => {
    await killAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('get --psk and get --ca (by IP and by name) against serve --listen coaps://', async () => {
    const a = await runCli(['get', `${pskUrl}/hello`, '--psk', 'cli:sesame']);
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout.length).toBeGreaterThan(0);
    const b = await runCli(['get', `${pkiUrl}/hello`, '--ca', f('ca.crt')]);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stdout).toBe(a.stdout);
    const c = await runCli(['get', `${pkiUrl.replace('127.0.0.1', 'localhost')}/hello`, '--ca', f('ca.crt')]);
    expect(c.code, c.stderr).toBe(0);
  });

  it('a wrong PSK and an untrusted certificate exit 3', async () => {
    const psk = await runCli(['get', `${pskUrl}/hello`, '--psk', 'cli:wrong'], { timeoutMs: 40_000 });
    expect(psk.code, psk.stderr).toBe(3);
    expect(psk.stderr).toMatch(/PSK|HANDSHAKE/);
    const verify = await runCli(['get', `${pkiUrl}/hello`, '--ca', f('other.crt')]);
    expect(verify.code, verify.stderr).toBe(3);
    expect(verify.stderr).toMatch(/VERIFY/);
  }, 60_000);

  it('serve --cert --key --ca asks for a client certificate: with one 0, without one 3', async () => {
    const mtls = spawnPeer('serve-mtls', process.execPath, [cliPath, 'serve', '--listen', 'coaps://127.0.0.1:0', '--cert', f('server.crt'), '--key', f('server.key'), '--ca', f('ca.crt')]);
    const url = (await waitForOutput(mtls, /listening on (coaps:\/\/127\.0\.0\.1:\d+)\//))[1] as string;
    const ok = await runCli(['get', `${url}/hello`, '--ca', f('ca.crt'), '--cert', f('server.crt'), '--key', f('server.key')]);
    expect(ok.code, ok.stderr).toBe(0);
    const none = await runCli(['get', `${url}/hello`, '--ca', f('ca.crt')], { timeoutMs: 40_000 });
    expect(none.code, none.stderr).toBe(3);
  }, 60_000);

  it.skipIf(client === undefined)('coap-client-openssl against serve --listen coaps:// (PSK and certificates)', async () => {
    const a = await run(client!, ['-B', '5', '-u', 'cli', '-k', 'sesame', `${pskUrl}/hello`], { timeoutMs: 15_000 });
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout.length).toBeGreaterThan(0);
    const b = await run(client!, ['-B', '5', '-R', f('ca.crt'), `${pkiUrl}/hello`], { timeoutMs: 15_000 });
    expect(b.code, b.stderr).toBe(0);
    expect(b.stdout).toBe(a.stdout);
  });

  it.skipIf(lserver === undefined)('get coaps:// against coap-server-openssl (--psk; --ca with --cert/--key) and exit 3 on an untrusted one', async () => {
    const base = 20000 + Math.floor(Math.random() * 20000) * 2; // DTLS on base+1
    spawnPeer('coap-server-openssl', lserver!, ['-A', '127.0.0.1', '-p', String(base), '-v', '0', '-k', 'sesame', '-c', f('server.crt'), '-j', f('server.key'), '-C', f('ca.crt')]);
    const url = `coaps://127.0.0.1:${base + 1}/`;
    let a = await runCli(['get', url, '--psk', 'cli:sesame']);
    for (let i = 0; i < 20 && a.code !== 0; i++) a = await runCli(['get', url, '--psk', 'cli:sesame']); // until it listens
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout).toContain('libcoap');
    // -C makes libcoap ask for a client certificate: --cert/--key besides --ca
    const mine = ['--cert', f('server.crt'), '--key', f('server.key')];
    const b = await runCli(['get', url, '--ca', f('ca.crt'), ...mine]);
    expect(b.code, b.stderr).toBe(0);
    const c = await runCli(['get', url, '--ca', f('other.crt'), ...mine]);
    expect(c.code, c.stderr).toBe(3);
  }, 60_000);
});
