// The legitimate client of bench/soak.mjs, in its own process: 16 workers each asking
// GET /ok in turn with this library's Agent; a request without an answer within 5 s is lost.
//   TURBOCOAP_BACKEND=native|wasm node bench/lib/soak-client.mjs PORT
// Over IPC, { stats: id } is answered with { id, answered, lost, other, rss } (other: answered
// with a code other than 2.05); { stop: true } lets the requests in flight finish and exits.
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const tc = require(resolve(root, 'dist', 'index.js'));

const HOST = '127.0.0.1';
const port = Number(process.argv[2]);
const agent = new tc.Agent({ nstart: 16 });
let answered = 0;
let lost = 0;
let other = 0;
let stopping = false;

async function worker() {
  while (!stopping) {
    let timer;
    try {
      const r = await Promise.race([
        agent.request(`coap://${HOST}:${port}/ok`),
        new Promise((_, rej) => (timer = setTimeout(() => rej(new Error('lost')), 5000))),
      ]);
      if (r.code === '2.05') answered++;
      else other++;
    } catch {
      lost++;
    } finally {
      clearTimeout(timer);
    }
  }
}
const workers = Array.from({ length: 16 }, worker);

async function stop() {
  stopping = true;
  await Promise.allSettled(workers);
  process.send?.({ id: 'final', answered, lost, other });
  await agent.close();
  process.exit(0);
}
process.on('message', (m) => {
  if (m?.stop) return void stop();
  if (m?.stats !== undefined) process.send?.({ id: m.stats, answered, lost, other, rss: process.memoryUsage.rss() });
});
process.once('SIGTERM', () => process.exit(0));
process.once('disconnect', () => process.exit(0));
process.stdout.write('ready\n');
