// Client throughput for bench/udp.mjs and bench/tcp.mjs: keeps CONCURRENCY CON GETs outstanding against URL
// for SECONDS (after WARMUP seconds not counted) and prints one JSON line.
//   [TURBOCOAP_BACKEND=native|wasm] node bench/lib/client.mjs turbocoap|npm-coap URL CONCURRENCY SECONDS [WARMUP]
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

const [impl, url, concArg, secArg, warmArg] = process.argv.slice(2);
const concurrency = Number(concArg ?? 64);
const seconds = Number(secArg ?? 10);
const warmup = Number(warmArg ?? 1);
if (!url || !(concurrency > 0) || !(seconds > 0)) {
  process.stderr.write('usage: client.mjs turbocoap|npm-coap URL CONCURRENCY SECONDS [WARMUP]\n');
  process.exit(2);
}

let one;
let label;
if (impl === 'turbocoap') {
  const tc = require(resolve(root, 'dist', 'index.js'));
  label = `turbocoap (${tc.backend.kind})`;
  // NSTART (RFC 7252 §4.7) defaults to 1 outstanding request per peer; the benchmark keeps
  // `concurrency` in flight, as coap-bench and npm coap do, so the agent allows that many.
  const agent = new tc.Agent({ nstart: concurrency });
  // coaps+tcp / coaps+ws (bench/tcp.mjs): BENCH_PSK=IDENTITY:KEY
  const psk = process.env.BENCH_PSK ? { identity: process.env.BENCH_PSK.split(':')[0], key: process.env.BENCH_PSK.split(':').slice(1).join(':') } : undefined;
  one = async () => {
    const res = await tc.request(url, { agent, timeout: 10000, ...(psk ? { psk } : {}) });
    return res.code;
  };
} else if (impl === 'npm-coap') {
  const coap = require('coap');
  label = 'npm coap';
  const u = new URL(url);
  const agent = new coap.Agent({ type: 'udp4' });
  one = () =>
    new Promise((res, rej) => {
      const req = coap.request({ hostname: u.hostname, port: Number(u.port), pathname: u.pathname, agent, confirmable: true });
      req.on('response', (r) => {
        r.resume?.();
        res(r.code);
      });
      req.on('error', rej);
      req.on('timeout', rej);
      req.end();
    });
} else {
  process.stderr.write(`unknown client ${impl}\n`);
  process.exit(2);
}

const t0 = performance.now();
const measureFrom = t0 + warmup * 1000;
const measureTo = measureFrom + seconds * 1000;
let completed = 0;
let ok = 0;
let errors = 0;
let firstError;
let stopping = false;

async function worker() {
  while (!stopping) {
    const start = performance.now();
    if (start >= measureTo) break;
    try {
      const code = await one();
      const end = performance.now();
      if (start >= measureFrom && end <= measureTo) {
        completed++;
        if (typeof code === 'string' && code.startsWith('2.')) ok++;
      }
    } catch (e) {
      errors++;
      firstError ??= String(e?.message ?? e);
    }
  }
}

const hard = setTimeout(() => {
  stopping = true;
  report(true);
}, (warmup + seconds + 15) * 1000);

function report(aborted) {
  clearTimeout(hard);
  const out = {
    impl: label,
    url,
    concurrency,
    seconds,
    requests: completed,
    ok,
    errors,
    rps: completed / seconds,
    ...(firstError ? { firstError } : {}),
    ...(aborted ? { aborted: true } : {}),
  };
  process.stdout.write(`${JSON.stringify(out)}\n`, () => process.exit(0));
}

await Promise.all(Array.from({ length: concurrency }, worker));
report(false);
