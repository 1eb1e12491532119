// A turbocoap server over one RFC 8323 transport with a trivial JS handler, for bench/tcp.mjs
// (one per child process).
//   TURBOCOAP_BACKEND=native|wasm node bench/lib/server-turbocoap-stream.mjs tcp|tls|ws PORT [PSK_ID PSK_KEY]
// tls uses the PSK (identity -> key). BENCH_MAX_CONNS=N raises the connection limits (total and
// per host) to N. Prints "ready <backend> <transport>" once listening;
// closes on SIGTERM/SIGINT.
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PAYLOAD } from './payload.mjs';

const require = createRequire(import.meta.url);
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const tc = require(resolve(root, 'dist', 'index.js'));

const [transport, portArg, pskId, pskKey] = process.argv.slice(2);
const port = Number(portArg);
if (!['tcp', 'tls', 'ws'].includes(transport) || !(port > 0) || (transport === 'tls' && !(pskId && pskKey))) {
  process.stderr.write('usage: server-turbocoap-stream.mjs tcp|tls|ws PORT [PSK_ID PSK_KEY]\n');
  process.exit(2);
}
// the idle-connection run opens BENCH_MAX_CONNS connections from one host (127.0.0.1); the
// stream drivers take their limits from the server options (ts/transport/stream-endpoint.ts)
const maxConns = Number(process.env.BENCH_MAX_CONNS) || undefined;
const server = tc.createServer(() => ({ code: '2.05', payload: PAYLOAD, contentFormat: 0 }), maxConns ? { maxConnections: maxConns, maxConnectionsPerHost: maxConns } : undefined);
const options = { transport, port, host: '127.0.0.1' };
if (transport === 'tls') options.psk = { [pskId]: pskKey };
await server.listen(options);
process.stdout.write(`ready ${tc.backend.kind} ${transport}\n`);
const stop = () => {
  Promise.resolve(server.close()).finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
