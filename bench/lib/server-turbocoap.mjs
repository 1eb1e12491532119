// A turbocoap server with a trivial JS handler, for bench/udp.mjs (one per child process).
//   TURBOCOAP_BACKEND=native|wasm node bench/lib/server-turbocoap.mjs PORT
// Prints "ready <backend>" once listening; closes on SIGTERM/SIGINT.
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PAYLOAD } from './payload.mjs';

const require = createRequire(import.meta.url);
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const tc = require(resolve(root, 'dist', 'index.js'));

const port = Number(process.argv[2]);
const server = tc.createServer(() => ({ code: '2.05', payload: PAYLOAD, contentFormat: 0 }));
await server.listen({ port, host: '127.0.0.1' });
process.stdout.write(`ready ${tc.backend.kind}\n`);
const stop = () => {
  Promise.resolve(server.close()).finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
