/**
 * Block-wise transfer and Observe interop: libcoap 4.3's coap-client-notls against our demo
 * server (`turbocoap serve`), on both backends, loopback only.
 *  - GET /large (1,048,576 bytes, byte i = i % 251) at every block size 16..1024 (`-b`);
 *  - PUT a 1 MiB body at every block size (`-f`, Block1) and GET it back byte for byte;
 *  - 4.13 for a body over the server's bound;
 *  - observe /time (`-s`): a notification every second.
 * In CI (CI=true) missing libcoap binaries fail the suite; locally it is skipped with the reason.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { largeBody } from '../ts/demo';
import { udpBackends } from './support/udp';
import { killAll, libcoap, runCoapClient, startDemoServerOn, type Peer } from './support/peers';

const peers = libcoap();
const tools = 'missing' in peers ? undefined : peers;
if (tools === undefined) console.warn(`interop-blockwise-server: SKIPPED (CI is not set): ${(peers as { missing: string }).missing}`);

const BACKENDS = udpBackends;
const SIZES = [16, 32, 64, 128, 256, 512, 1024] as const;
const dir = mkdtempSync(join(tmpdir(), 'turbocoap-bw-'));

afterAll(async () => {
  await killAll();
  rmSync(dir, { recursive: true, force: true });
});

/** coap-client-notls, waiting 30 s for a response (-B), 60 s in all unless timeoutMs says otherwise. */
const coapClient = (args: readonly string[], timeoutMs = 60_000) => runCoapClient((tools as { client: string }).client, args, 30, timeoutMs);

/** 1 MiB that differs per block size, so every PUT must really replace the stored value. */
function bodyFor(size: number): Buffer {
  const b = Buffer.alloc(1 << 20);
  for (let i = 0; i < b.length; i++) b[i] = (i * 7 + size) % 253;
  return b;
}

describe.skipIf(tools === undefined).each(BACKENDS)('libcoap coap-client → turbocoap server, block-wise and Observe (%s)', (backend) => {
  let server: Peer;
  let base: string;

  beforeAll(async () => {
    ({ peer: server, base } = await startDemoServerOn(backend));
  });
  afterAll(async () => {
    await server?.kill();
  });

  it.each(SIZES)('GET /large with -b %i: 1 MiB byte for byte', async (size) => {
    const out = join(dir, `large-${backend}-${size}.bin`);
    const r = await coapClient(['-b', String(size), '-o', out, `${base}/large`]);
    expect([r.code, r.stderr]).toEqual([0, '']);
    const got = readFileSync(out);
    expect(got.length).toBe(1 << 20);
    expect(got.equals(Buffer.from(largeBody()))).toBe(true);
  });

  it.each(SIZES)('PUT 1 MiB with -f -b %i (Block1), GET it back byte for byte', async (size) => {
    const file = join(dir, `put-${backend}-${size}.bin`);
    const body = bodyFor(size);
    writeFileSync(file, body);
    const url = `${base}/store/b${size}`;
    let r = await coapClient(['-m', 'put', '-b', String(size), '-f', file, url]);
    expect([r.code, r.stderr]).toEqual([0, '']);
    const out = join(dir, `back-${backend}-${size}.bin`);
    r = await coapClient(['-b', String(size), '-o', out, url]);
    expect([r.code, r.stderr]).toEqual([0, '']);
    const got = readFileSync(out);
    expect(got.length).toBe(body.length);
    expect(got.equals(body)).toBe(true);
  });

  it('a body over the bound gets 4.13', async () => {
    const file = join(dir, `too-large-${backend}.bin`);
    writeFileSync(file, Buffer.alloc((1 << 20) + 1, 1));
    const r = await coapClient(['-m', 'put', '-b', '1024', '-f', file, `${base}/store/too-large`]);
    expect(r.stderr).toMatch(/4\.13/);
  });

  it('observe /time with -s: one notification per second, in order', async () => {
    const r = await coapClient(['-s', '4', '-w', `${base}/time`], 20_000);
    expect(r.code).toBe(0);
    const times = r.stdout
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => Date.parse(l));
    // the registration response plus a notification per second
    expect(times.length).toBeGreaterThanOrEqual(3);
    for (const t of times) expect(Number.isNaN(t)).toBe(false);
    for (let i = 1; i < times.length; i++) expect(times[i] as number).toBeGreaterThan(times[i - 1] as number);
  });
});
