// A turbocoap server over DTLS (coaps) with a trivial JS handler, for bench/dtls.mjs.
//   node bench/lib/server-turbocoap-dtls.mjs PORT PSK_ID PSK_KEY
// Prints "ready native" once listening; closes on SIGTERM/SIGINT.
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PAYLOAD } from './payload.mjs';

const require = createRequire(import.meta.url);
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const tc = require(resolve(root, 'dist', 'index.js'));

const [port, pskId, pskKey] = [Number(process.argv[2]), process.argv[3], process.argv[4]];
const server = tc.createServer(() => ({ code: '2.05', payload: PAYLOAD, contentFormat: 0 }), { backend: 'native' });
await server.listen({ transport: 'dtls', port, host: '127.0.0.1', psk: { [pskId]: pskKey } });
process.stdout.write(`ready ${server.backend}\n`);
const stop = () => {
  Promise.resolve(server.close()).finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
