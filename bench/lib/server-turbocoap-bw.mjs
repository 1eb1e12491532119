// A turbocoap server for bench/blockwise.mjs and bench/observe.mjs (one per child process):
//   GET /large  the 1 MiB body of bw-body.mjs (served block-wise by the core, RFC 7959)
//   GET /obs    the notification counter as text; observable (RFC 7641)
// With "notify N", notifications start once N observers registered (or 1 s after the last
// registration, if fewer come); then ObservableResource.notify() runs once per event-loop
// turn (setImmediate), so the loop still reads ACKs between fan-outs (each fan-out runs in C).
//   TURBOCOAP_BACKEND=native|wasm node bench/lib/server-turbocoap-bw.mjs PORT [notify [N]]
// Prints "ready <backend>" once listening; on SIGTERM/SIGINT prints one JSON line of its own
// counters ({"registrations", "notifyCalls", "notifyErrors", "firstError"}) on stderr and exits.
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeBody } from './bw-body.mjs';
import { notifyLoop, notifying, port, registered, stopOnSignal } from './bw-server.mjs';

const require = createRequire(import.meta.url);
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const tc = require(resolve(root, 'dist', 'index.js'));

const BODY = makeBody();
let n = 0;
let notifyCalls = 0;
let notifyErrors = 0;
let firstError;

const router = new tc.Router();
router.get('/large', () => ({ code: '2.05', payload: BODY }));
router.get(
  '/obs',
  (req) => {
    if (req.observe === 0) registered();
    return { code: '2.05', payload: String(n) };
  },
  { obs: true },
);
const server = tc.createServer(router, {
  // every observer comes from 127.0.0.1: lift the per-host cap (default 64) too;
  // BENCH_CONFIRM_FIRST=0 turns off observe.confirmFirst (CON-only until an observer ACKs once)
  observe: { maxObservers: 1 << 16, maxObserversPerResource: 1 << 16, maxObserversPerHost: 1 << 16, confirmFirst: process.env.BENCH_CONFIRM_FIRST !== '0' },
  onError: (err) => {
    notifyErrors++;
    firstError ??= String(err?.message ?? err);
  },
});
await server.listen({ port, host: '127.0.0.1' });

if (notifying) {
  const obs = server.resource('/obs');
  notifyLoop(() => {
    notifyCalls++;
    obs.notify({ code: '2.05', payload: String(++n) });
  });
}
process.stdout.write(`ready ${tc.backend.kind}\n`);

stopOnSignal(
  () => ({ notifyCalls, notifyErrors, ...(firstError ? { firstError } : {}) }),
  () => server.close(),
);
