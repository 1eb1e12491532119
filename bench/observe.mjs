#!/usr/bin/env node
// Observe benchmark (RFC 7641): notifications per second delivered to 10,000 observers.
// One server after another, each in its own child process, serving GET /obs (observable):
//   (a) turbocoap, native addon   (bench/lib/server-turbocoap-bw.mjs PORT notify N:
//                                  ObservableResource.notify() once per event-loop turn, the
//                                  fan-out to every observer in C)
//   (b) turbocoap, WebAssembly    (same, TURBOCOAP_BACKEND=wasm)
//   (c) npm coap                  (bench/lib/server-npm-coap-bw.mjs PORT notify N: write() to
//                                  every ObserveWriteStream once per event-loop turn, paced by
//                                  the socket's send queue)
// Each server starts notifying once it has seen the N registrations. Load: coap-bench
// --observe N registers N observers (CON GET Observe 0, distinct tokens) over
// BENCH_OBS_SOCKETS sockets, ACKs every CON notification, and counts the fresh
// notifications received over BENCH_SECONDS after BENCH_WARMUP. Peak RSS is the server's
// VmHWM at the end. (libcoap is not in this race: its /time notifies once a second, and it
// keeps one observation per client endpoint and resource, not one per token.)
//
//   npm run bench:observe
//   BENCH_OBSERVERS=10000      observers (default 10000)
//   BENCH_OBS_SOCKETS=100      client sockets the observers are spread over (default 100)
//   BENCH_CONFIRM_FIRST=0      turbocoap servers: observe.confirmFirst off (default on, as shipped)
//   BENCH_SECONDS=10           measured seconds (default 10)
//   BENCH_WARMUP=2             warm-up seconds after the registrations (default 2)
//   BENCH_REG_SECONDS=60       bound on the registration phase (default 60)
//   BENCH_ONLY=native,wasm,npm-coap   run a subset
//   BENCH_COAP_BENCH=path      another coap-bench binary
import { resolve } from 'node:path';
import { coapBench, coapBenchPath, commandsSection, eachServer, f0, f1, f2, log, measured, num, printReport, ratio, root, tableRows, targetLine, turbocoapMissing, wanted } from './lib/bench-env.mjs';
import { installCleanup } from './lib/proc.mjs';

installCleanup();

const OBSERVERS = num('BENCH_OBSERVERS', 10000, 1, 1000000);
const SOCKETS = num('BENCH_OBS_SOCKETS', 100, 1, 1024);
const SECONDS = num('BENCH_SECONDS', 10, 1) || 10;
const WARMUP = num('BENCH_WARMUP', 2);
const REG_SECONDS = num('BENCH_REG_SECONDS', 60, 1);
const want = wanted();
const PATH = 'obs';

const bin = coapBenchPath('observe');
const tcMissing = want('native') || want('wasm') ? await turbocoapMissing() : undefined;

const tcServer = (backend) => (port) => [
  process.execPath,
  [resolve(root, 'bench', 'lib', 'server-turbocoap-bw.mjs'), String(port), 'notify', String(OBSERVERS)],
  { env: { ...process.env, TURBOCOAP_BACKEND: backend } },
];
const servers = [
  { key: 'native', label: 'turbocoap (native)', cmd: tcServer('native'), missing: tcMissing },
  { key: 'wasm', label: 'turbocoap (WASM)', cmd: tcServer('wasm'), missing: tcMissing },
  {
    key: 'npm-coap',
    label: 'npm coap',
    cmd: (port) => [process.execPath, [resolve(root, 'bench', 'lib', 'server-npm-coap-bw.mjs'), String(port), 'notify', String(OBSERVERS)], {}],
  },
];

/** The server's own counters: the last JSON line it printed on stderr when stopped. */
function serverCounters(child) {
  const line = child.stderr.trim().split('\n').reverse().find((l) => l.startsWith('{'));
  try {
    return line ? JSON.parse(line) : undefined;
  } catch {
    return undefined;
  }
}

const finished = (r, child) => {
  const counters = serverCounters(child);
  if (counters) r.counters = counters;
};
const results = await eachServer(servers, { want, path: PATH, finished }, async (r, { url }) => {
  log(`   ${OBSERVERS} observers over ${SOCKETS} sockets, ${SECONDS} s after ${WARMUP} s warm-up`);
  const run = await coapBench(
    bin,
    ['--observe', String(OBSERVERS), '-k', String(SOCKETS), '-c', '64', '--reg-time', String(REG_SECONDS), '-w', String(WARMUP), '-d', String(SECONDS), url],
    (REG_SECONDS + WARMUP + SECONDS + 60) * 1000,
  );
  r.run = run.result;
  r.cmd = run.cmd;
  const x = r.run;
  log(`     registered ${x.registered} in ${f2(x.registration_s)} s, ${f0(x.notifications_per_s)} notifications/s, stale ${x.stale}, duplicates ${x.duplicates}`);
});

// ---------------------------------------------------------------------------------- report

const rate = (r) => (r === undefined || r.error ? undefined : r.run.notifications_per_s);
const npm = results.get('npm-coap');
const out = [];
out.push('');
out.push(`## Observe: notifications per second to ${OBSERVERS.toLocaleString('en-US')} observers (coap-bench --observe, ${SOCKETS} client sockets, ${SECONDS} s after ${WARMUP} s warm-up)`);
out.push('');
out.push('| server | registered | reg. failures | registration s | notifications/s | per observer /s | CON ACKed | stale | duplicates | ended | peak RSS MB | vs npm coap |');
out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
out.push(
  ...tableRows(servers, results, 12, (r) => {
    const x = r.run;
    return (
      `| ${r.label} | ${f0(x.registered)} | ${f0(x.registration_failures)} | ${f2(x.registration_s)} | ${f0(x.notifications_per_s)} | ` +
      `${f1(x.registered ? x.notifications_per_s / x.registered : undefined)} | ${f0(x.con_notifications)} | ${f0(x.stale)} | ${f0(x.duplicates)} | ${f0(x.ended)} | ${f1(r.rss)} | ${ratio(x.notifications_per_s, rate(npm))} |`
    );
  }),
);
out.push('');
out.push(
  'notifications/s: fresh notifications (a newer Observe value than the last one that observer got) received in the window. ' +
    'stale: older values (e.g. retransmitted CON notifications); duplicates: the same value again. CON ACKed: CON notifications in the window, each answered with an empty ACK.',
);
const notes = measured(servers, results).map((r) => {
  const x = r.run;
  return (
    `- ${r.label}: ${x.observers_notified} of ${x.registered} observers notified (per observer min ${x.per_observer.min}, max ${x.per_observer.max}); ` +
    `generator ${f2(x.cpu_us_per_notification)} µs CPU per notification, receive drops ${x.rx_dropped_window} in the window` +
    (r.counters ? `; server: ${Object.entries(r.counters).map(([k, v]) => `${k} ${v}`).join(', ')}` : '')
  );
});
if (notes.length) out.push('', ...notes);
out.push(...commandsSection(servers, results, (r) => [r.cmd]));

const targets = ['native', 'wasm'].map((k) => {
  const r = results.get(k);
  const a = rate(r);
  const b = rate(npm);
  return targetLine(`${r?.label ?? k} ≥ 10× npm coap notifications/s to ${OBSERVERS} observers`, a !== undefined && b !== undefined ? a >= 10 * b : undefined, `${f0(a)} vs ${f0(b)} /s = ${ratio(a, b)}`);
});
await printReport(out, targets);
process.exit(0);
