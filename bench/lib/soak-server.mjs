// The server under soak (bench/soak.mjs), alone in its own process so that its memory is
// measured without the attackers' and the client's.
//   TURBOCOAP_BACKEND=native|wasm node bench/lib/soak-server.mjs PORT
// Serves /ok, /slow (answers after 2 s), /large (1 MiB, Max-Age 30), /obs (observable,
// notified every 100 ms), /s/:id (observable, one resource per path), PUT /up and POST /p on 127.0.0.1:PORT. Prints "ready <backend>" once
// listening. Over IPC, a { stats: id } message is answered with { id, mem: process.memoryUsage(),
// stats: server.stats(), resources } (resources: the
// server's JS-side table of observable paths, read from a private field). Closes on SIGTERM/SIGINT or when the parent goes away.
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const tc = require(resolve(root, 'dist', 'index.js'));

const port = Number(process.argv[2]);
const large = new Uint8Array(1 << 20).map((_, i) => i % 251);
const router = new tc.Router();
router.get('/ok', () => ({ code: '2.05', payload: 'ok' }));
router.get('/slow', () => new Promise((r) => setTimeout(() => r({ code: '2.05', payload: 'late' }), 2000)));
router.get('/large', () => ({ code: '2.05', payload: large, maxAge: 30 }));
router.get('/obs', () => ({ code: '2.05', payload: String(Date.now()) }), { obs: true });
router.get('/s/:id', (req) => ({ code: '2.05', payload: req.params.id }), { obs: true });
router.put('/up', (req) => ({ code: '2.04', payload: String(req.payload.length) }));
router.post('/p', () => ({ code: '2.04' }));
const server = tc.createServer(router);
await server.listen({ port, host: '127.0.0.1' });
const notifier = setInterval(() => server.resource('/obs').notify(), 100);

process.on('message', (m) => {
  if (m && m.stats !== undefined) process.send?.({ id: m.stats, mem: process.memoryUsage(), stats: server.stats() ?? {}, resources: server.stats()?.observableResources });
});
process.stdout.write(`ready ${tc.backend.kind}\n`);
const stop = () => {
  clearInterval(notifier);
  Promise.resolve(server.close()).finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
process.once('disconnect', stop);
