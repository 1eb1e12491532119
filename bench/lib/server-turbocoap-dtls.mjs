// A turbocoap server over DTLS (coaps) with a trivial JS handler, for bench/dtls.mjs.
//   node bench/lib/server-turbocoap-dtls.mjs PORT PSK_ID PSK_KEY
// Prints "ready native" once listening; closes on SIGTERM/SIGINT.
// Until server.listen({ transport: 'dtls' }) is wired (ts/server.ts), the server's `coap`
// driver factory is routed to the `coaps` one (dist/transports.js, CommonJS) with the PSK.
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PAYLOAD } from './payload.mjs';

const require = createRequire(import.meta.url);
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const tc = require(resolve(root, 'dist', 'index.js'));
const transports = require(resolve(root, 'dist', 'transports.js'));
const { dtlsDriverFactory, dtlsStats } = require(resolve(root, 'dist', 'transport', 'dtls.js'));

const [port, pskId, pskKey] = [Number(process.argv[2]), process.argv[3], process.argv[4]];
const security = { pskTable: new Map([[pskId, new TextEncoder().encode(pskKey)]]) };
const dtls = dtlsDriverFactory({ maxSessions: 20000, maxPerHost: 20000, maxHalfOpen: 1024 });
let driver;
const plain = transports.driverFactory;
transports.driverFactory = (scheme) =>
  scheme === 'coap'
    ? (family, backend, options, listener, role) => (driver = dtls(family, backend, { ...options, security }, listener, role))
    : plain(scheme);
const server = tc.createServer(() => ({ code: '2.05', payload: PAYLOAD, contentFormat: 0 }), { backend: 'native' });
await server.listen({ port, host: '127.0.0.1' });
process.stdout.write(`ready ${server.backend}\n`);
process.on('SIGUSR2', () => process.stdout.write(`stats ${JSON.stringify(dtlsStats(driver))}\n`));
const stop = () => {
  Promise.resolve(server.close()).finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
