// The JavaScript-socket stream host (ts/transport/stream-js.ts) over the WASM connection driver
// (wasm/glue_stream.c): TCP and TLS (node:net / node:tls), WebSockets (ws), at the StreamCore
// record level, and libcoap's coap-client over coap+tcp.
import { afterAll, describe, expect, it } from 'vitest';
import { loadWasmBackend, wasmRaw } from '../ts/backend/wasm';
import { CONN_EVF_SYSERR, CONN_EVF_TLS, CONN_EVF_TLSERR, CONN_EV_CLOSED, CONN_EV_OPEN, TLS_E_PSK, TLS_E_VERIFY } from '../ts/driver/abi';
import { jsStreamCore } from '../ts/transport/stream-js';
import { tcpSocketHost } from '../ts/transport/stream-node';
import { wasmStreamFeed } from '../ts/transport/stream-wasm';
import { Harness } from './support/stream-harness';

const raw = wasmRaw(loadWasmBackend())!;
const tcp = jsStreamCore(wasmStreamFeed(raw), tcpSocketHost);
const cores: Harness[] = [];
function harness(...a: ConstructorParameters<typeof Harness> extends [unknown, ...infer R] ? R : never): Harness {
  const h = new Harness(tcp, ...a);
  cores.push(h);
  return h;
}
afterAll(async () => {
  await Promise.all(cores.map((h) => h.core.close()));
});

describe('JS stream host: CoAP over TCP (WASM driver)', () => {
  it('request -> response, OPEN / READY / CLOSED', async () => {
    const srv = harness('tcp', 'server');
    srv.autoRespond = (path) => `hello ${path}`;
    const { index, address } = await srv.core.listen({ host: '127.0.0.1', port: 0 });
    expect(index).toBe(0);
    const cli = harness('tcp', 'client');
    const id = cli.core.connect({ host: '127.0.0.1', port: address.port });
    const open = await cli.opened(id);
    expect(open.flags & CONN_EVF_TLS).toBe(0);
    await cli.ready(id);
    const rq = cli.request(id, '/a/b');
    const res = await cli.response(rq);
    expect(res.code).toBe(0x45);
    expect(Buffer.from(res.payload).toString()).toBe('hello a/b');
    const sopen = srv.recs.find((r) => r.kind === CONN_EV_OPEN)!;
    expect(sopen.status).toBe(0); // listener index
    cli.core.closeConn(id, false);
    const c = await cli.closed(id);
    expect(c.status).toBe(0);
    await srv.closed(sopen.conn);
    expect(srv.core.stats().conns).toBe(0);
  });

  it('a refused connect is CLOSED with SYSERR -ECONNREFUSED', async () => {
    const cli = harness('tcp', 'client');
    const id = cli.core.connect({ host: '127.0.0.1', port: 1 });
    const c = await cli.closed(id);
    expect(c.flags).toBe(CONN_EVF_SYSERR);
    expect(c.status).toBe(-111);
    expect(cli.recs.some((r) => r.kind === CONN_EV_OPEN)).toBe(false);
  });
});
