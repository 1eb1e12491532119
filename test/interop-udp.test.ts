/**
 * CoAP/UDP interop with libcoap 4.3 (Debian libcoap3-bin), loopback only, on
 * both backends:
 *  - libcoap's coap-client-notls against our demo server (`turbocoap serve`);
 *  - our client (`request()` through an Agent on each backend) against
 *    coap-server-notls;
 *  - our CLI against coap-server-notls.
 *
 * In CI (CI=true) missing libcoap binaries fail the suite; locally the suite
 * is skipped with the reason printed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseLinks } from '../ts/linkformat';
import { Agent, request, type RequestOptions } from '../ts/client';
import { udpBackends } from './support/udp';
import { killAll, libcoap, runCli, runCoapClient, startDemoServerOn, startLibcoapServer, type Peer } from './support/peers';

const peers = libcoap();
const tools = 'missing' in peers ? undefined : peers;
if (tools === undefined) {
  // Visible, not quiet: the reason shows in the test output.
  console.warn(`interop-udp: SKIPPED (CI is not set): ${(peers as { missing: string }).missing}`);
}

const BACKENDS = udpBackends;

afterAll(async () => {
  await killAll();
});

/** coap-client-notls, waiting 5 s for a response (-B), 15 s in all. */
const coapClient = (args: readonly string[]) => runCoapClient((tools as { client: string }).client, args, 5, 15_000);

describe.skipIf(tools === undefined).each(BACKENDS)('libcoap coap-client → turbocoap server (%s)', (backend) => {
  let server: Peer;
  let base: string;

  beforeAll(async () => {
    ({ peer: server, base } = await startDemoServerOn(backend));
  });

  afterAll(async () => {
    await server?.kill();
  });

  it('GET', async () => {
    const r = await coapClient([`${base}/hello`]);
    expect(r.code).toBe(0);
    expect(r.body).toBe('Hello, CoAP!');
  });

  it('PUT, GET, POST, DELETE and the 4.04 after it', async () => {
    const key = `${base}/store/interop`;
    let r = await coapClient(['-m', 'put', '-e', 'one', '-t', '0', key]);
    expect([r.code, r.stderr]).toEqual([0, '']);
    r = await coapClient([key]);
    expect(r.body).toBe('one');
    r = await coapClient(['-m', 'post', '-e', '+two', key]);
    expect([r.code, r.stderr]).toEqual([0, '']);
    r = await coapClient([key]);
    expect(r.body).toBe('one+two');
    r = await coapClient(['-m', 'delete', key]);
    expect([r.code, r.stderr]).toEqual([0, '']);
    r = await coapClient([key]);
    expect(r.body).toBe('');
    // coap-client prints the code and the diagnostic payload, if any (ours sends none).
    expect(r.stderr.trim()).toBe('4.04');
  });

  it('4.04 for an unknown path, 4.05 for a wrong method', async () => {
    let r = await coapClient([`${base}/no/such/thing`]);
    expect(r.body).toBe('');
    expect(r.stderr.trim()).toBe('4.04');
    r = await coapClient(['-m', 'delete', '-v', '7', `${base}/hello`]);
    expect(r.dump).toMatch(/t:ACK c:4\.05 /);
  });

  it('NON request (-N)', async () => {
    const r = await coapClient(['-N', `${base}/time`]);
    expect(r.code).toBe(0);
    expect(new Date(r.body).toISOString()).toBe(r.body);
    expect(Math.abs(Date.parse(r.body) - Date.now())).toBeLessThan(10_000);
    // libcoap's dump shows our response came back as NON with Max-Age 1.
    const v = await coapClient(['-N', '-v', '7', `${base}/time`]);
    expect(v.dump).toMatch(/t:NON c:GET /);
    expect(v.dump).toMatch(/t:NON c:2\.05 .*Max-Age:1/);
  });

  it('content formats: -t on PUT, -A on GET (4.06 when it does not match)', async () => {
    const key = `${base}/store/json`;
    let r = await coapClient(['-m', 'put', '-t', '50', '-e', '{"t":21.5}', key]);
    expect(r.code).toBe(0);
    r = await coapClient(['-A', '50', key]);
    expect(r.body).toBe('{"t":21.5}');
    r = await coapClient(['-A', '50', '-v', '7', key]);
    expect(r.dump).toMatch(/c:2\.05 .*Content-Format:application\/json/);
    r = await coapClient(['-A', '0', key]);
    expect(r.body).toBe('');
    expect(r.stderr.trim()).toBe('4.06');
    r = await coapClient(['-A', '50', `${base}/hello`]);
    expect(JSON.parse(r.body)).toEqual({ hello: 'world' });
    r = await coapClient(['-A', 'text/plain', '-v', '7', `${base}/hello`]);
    expect(r.dump).toMatch(/c:2\.05 .*Content-Format:text\/plain/);
  });

  it('query options reach the server (/.well-known/core?rt=...)', async () => {
    const r = await coapClient([`${base}/.well-known/core?rt=demo.time`]);
    const links = parseLinks(r.body);
    expect(links.map((l) => l.href)).toEqual(['/time']);
    const none = await coapClient([`${base}/.well-known/core?rt=nothing`]);
    expect(none.body).toBe('');
  });

  it('/.well-known/core discovery with rt, if and ct', async () => {
    const v = await coapClient(['-v', '7', `${base}/.well-known/core`]);
    expect(v.dump).toMatch(/c:2\.05 .*Content-Format:application\/link-format/);
    const r = await coapClient([`${base}/.well-known/core`]);
    const links = parseLinks(r.body);
    const byHref = new Map(links.map((l) => [l.href, l.attributes ?? {}]));
    expect([...byHref.keys()].sort()).toEqual(['/hello', '/large', '/store', '/time']);
    expect(byHref.get('/time')).toMatchObject({ rt: 'demo.time', if: 'core.s', ct: 0, obs: true });
    expect(byHref.get('/hello')).toMatchObject({ rt: 'demo.hello', if: 'core.rp', ct: [0, 50] });
    expect(byHref.get('/store')).toMatchObject({ rt: 'demo.store', if: 'core.ll', ct: 40 });
  });
});

describe.skipIf(tools === undefined).each(BACKENDS)('turbocoap client → libcoap coap-server (%s)', (backend) => {
  let server: Peer;
  let base: string;
  let agent: Agent;

  beforeAll(async () => {
    const s = await startLibcoapServer((tools as { server: string }).server);
    server = s.peer;
    base = `coap://127.0.0.1:${s.port}`;
    agent = new Agent({ backend });
  });

  afterAll(async () => {
    await agent?.close();
    await server?.kill();
  });

  const get = (path: string, o: RequestOptions = {}) => request(`${base}${path}`, { agent, timeout: 5000, ...o });

  it('GET / (the banner)', async () => {
    const r = await get('/');
    expect(agent.backend).toBe(backend);
    expect(r.code).toBe('2.05');
    expect(r.type).toBe('ACK'); // piggybacked
    expect(r.text()).toContain('This is a test server made with libcoap');
  });

  it('GET /time', async () => {
    const r = await get('/time');
    expect(r.code).toBe('2.05');
    expect(r.text()).toMatch(/^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d$/);
    expect(r.maxAge).toBe(1);
  });

  it('PUT /example_data, then GET it back', async () => {
    const value = `turbocoap-${backend}-${Date.now()}`;
    const put = await get('/example_data', { method: 'PUT', payload: value, contentFormat: 'text/plain' });
    expect(put.code).toMatch(/^2\.0[14]$/);
    const r = await get('/example_data');
    expect(r.code).toBe('2.05');
    expect(r.text()).toBe(value);
  });

  it('/async?1: an empty ACK, then the separate response about 1 s later', async () => {
    const t0 = Date.now();
    const r = await get('/async?1', { timeout: 8000 });
    const elapsed = Date.now() - t0;
    expect(r.code).toBe('2.05');
    expect(r.text()).toBe('done');
    expect(r.type).toBe('CON'); // a separate response, acknowledged by our client
    expect(r.confirmable).toBe(true);
    expect(elapsed).toBeGreaterThanOrEqual(900);
    expect(elapsed).toBeLessThan(5000);
  });

  it('NON requests get NON responses', async () => {
    const r = await get('/', { confirmable: false });
    expect(r.code).toBe('2.05');
    expect(r.type).toBe('NON');
    expect(r.text()).toContain('libcoap');
    const t = await get('/time', { confirmable: false });
    expect(t.code).toBe('2.05');
  });

  it('4.04 for an unknown resource', async () => {
    const r = await get('/no-such-resource');
    expect(r.code).toBe('4.04');
    expect(r.ok).toBe(false);
  });

  it('concurrent requests all complete', async () => {
    const rs = await Promise.allSettled(Array.from({ length: 32 }, (_, i) => get(i % 2 === 0 ? '/time' : '/', { timeout: 10_000 })));
    const bad = rs
      .map((r, i) => ({ i, status: r.status, code: r.status === 'fulfilled' ? r.value.code : undefined, error: r.status === 'rejected' ? String(r.reason) : undefined }))
      .filter((r) => r.code !== '2.05');
    expect(bad, JSON.stringify(agent.stats())).toEqual([]);
  });

  it('requests issued across event-loop turns, while responses arrive, all complete', async () => {
    // NSTART 1 holds most of them in the core; responses to earlier ones arrive between
    // the turns in which later ones are issued.
    for (let round = 0; round < 5; round++) {
      const ps: Promise<string>[] = [];
      for (let i = 0; i < 32; i++) {
        ps.push(get(i % 2 === 0 ? '/time' : '/', { timeout: 5000 }).then((r) => r.code, (e: unknown) => String(e)));
        if (i % 3 === 0) await new Promise((r) => setImmediate(r));
      }
      const codes = await Promise.all(ps);
      expect(codes.filter((c) => c !== '2.05'), `round ${round}: ${JSON.stringify(agent.stats())}`).toEqual([]);
    }
  });
});

describe.skipIf(tools === undefined).each(BACKENDS)('turbocoap CLI → libcoap coap-server (%s)', (backend) => {
  let server: Peer;
  let base: string;
  const env = { ...process.env, TURBOCOAP_BACKEND: backend };

  beforeAll(async () => {
    const s = await startLibcoapServer((tools as { server: string }).server);
    server = s.peer;
    base = `coap://127.0.0.1:${s.port}`;
  });

  afterAll(async () => {
    await server?.kill();
  });

  it('get / prints the banner', async () => {
    const r = await runCli(['get', `${base}/`], { env });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('This is a test server made with libcoap');
  });

  it('put then get /example_data', async () => {
    const v = `cli-${backend}`;
    const put = await runCli(['put', `${base}/example_data`, '-p', v, '-t', 'text/plain'], { env });
    expect(put.code).toBe(0);
    const get = await runCli(['get', `${base}/example_data`], { env });
    expect([get.code, get.stdout]).toEqual([0, `${v}\n`]);
  });

  it('get -N /time (NON) with a verbose dump', async () => {
    const r = await runCli(['get', '-N', '-v', `${base}/time`], { env });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\d\d:\d\d:\d\d/);
    expect(r.stderr).toMatch(/^< NON 2\.05 Content/m);
    expect(r.stderr).toContain('<   Max-Age (14): 1');
  });

  it('a separate response (/async?1)', async () => {
    const r = await runCli(['get', `${base}/async?1`, '-v'], { env });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('done\n');
  });

  it('4.04 exits 1', async () => {
    const r = await runCli(['get', `${base}/nope`], { env });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    // libcoap sends the reason as a diagnostic payload: not repeated after the name.
    expect(r.stderr.trim()).toBe('4.04 Not Found');
  });
});
