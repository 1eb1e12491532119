#!/usr/bin/env node
// CoAP/UDP server and client benchmark, side by side on this machine, under the same load,
// one server after another, each in its own child process:
//   (a) turbocoap, native addon, trivial JS handler
//   (b) turbocoap, WebAssembly (TURBOCOAP_BACKEND=wasm), same handler
//   (c) libcoap coap-server-notls, resource /time (a ~15-byte text payload, like our handler)
//   (d) npm coap, same handler
// Load: build/Release/coap-bench --json, CON GETs, 64 outstanding over 4 sockets, then 1
// outstanding over 1 socket; then a full-load run (64/4) of BENCH_RSS_SECONDS for the peak
// RSS figure (VmHWM of the server process, which covers every run).
// Then client throughput: turbocoap's client (native, WASM) and npm coap's client, each
// keeping 64 CON GETs outstanding against libcoap's server for the same duration.
// Prints markdown tables and the targets as met / NOT met.
//
//   npm run bench:udp
//   BENCH_SECONDS=10        measured seconds per run (default 10)
//   BENCH_RSS_SECONDS=20    full-load seconds for the RSS run (default 20; 0 skips it)
//   BENCH_WARMUP=1          warm-up seconds per run (default 1)
//   BENCH_ONLY=native,wasm,libcoap,npm-coap,clients   run a subset
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { HOST, coapBench, coapBenchPath, die, eachServer, f0, f1, log, measured, num, printReport, ratio, root, tableRows, targetLine, wanted } from './lib/bench-env.mjs';
import { freePort, installCleanup, runToEnd, start, waitReady, which } from './lib/proc.mjs';

installCleanup();

const SECONDS = num('BENCH_SECONDS', 10) || 10;
const RSS_SECONDS = num('BENCH_RSS_SECONDS', 20);
const WARMUP = num('BENCH_WARMUP', 1);
const want = wanted();

const bin = coapBenchPath('udp');
const libcoapServer = which('coap-server-notls');
const PATH = 'time';

if (!existsSync(resolve(root, 'dist', 'index.js'))) die('udp', 'dist/ is missing: run npm run build');
{
  const tc = await import(resolve(root, 'dist', 'index.js'));
  if (typeof (tc.default ?? tc).createServer !== 'function' && (want('native') || want('wasm') || want('clients'))) {
    die('udp', 'dist/index.js has no createServer: the server API is not built yet');
  }
}

/** Runs coap-bench with CON GETs of PATH; returns its parsed --json result (throws with its output on failure). */
async function coapBenchRun(port, concurrency, sockets, seconds) {
  const args = ['-c', String(concurrency), '-k', String(sockets), '-d', String(seconds), '-w', String(WARMUP), `coap://${HOST}:${port}/${PATH}`];
  return (await coapBench(bin, args, (seconds + WARMUP + 40) * 1000)).result;
}

const servers = [
  {
    key: 'native',
    label: 'turbocoap (native)',
    cmd: (port) => [process.execPath, [resolve(root, 'bench', 'lib', 'server-turbocoap.mjs'), String(port)], { env: { ...process.env, TURBOCOAP_BACKEND: 'native' } }],
  },
  {
    key: 'wasm',
    label: 'turbocoap (WASM)',
    cmd: (port) => [process.execPath, [resolve(root, 'bench', 'lib', 'server-turbocoap.mjs'), String(port)], { env: { ...process.env, TURBOCOAP_BACKEND: 'wasm' } }],
  },
  {
    key: 'libcoap',
    label: 'libcoap 4.3 (coap-server-notls)',
    cmd: (port) => [libcoapServer, ['-A', HOST, '-p', String(port), '-v', '0'], {}],
    missing: libcoapServer === undefined ? 'coap-server-notls not on PATH (apt-get install libcoap3-bin)' : undefined,
  },
  {
    key: 'npm-coap',
    label: 'npm coap',
    cmd: (port) => [process.execPath, [resolve(root, 'bench', 'lib', 'server-npm-coap.mjs'), String(port)], {}],
  },
];

const results = await eachServer(servers, { want, path: PATH, recordSkipped: false, withCommand: false }, async (r, { port }) => {
  log(`   64 outstanding / 4 sockets, ${SECONDS} s`);
  r.c64 = await coapBenchRun(port, 64, 4, SECONDS);
  log(`     ${r.c64.rps.toFixed(0)} req/s, p50 ${r.c64.latency_us.p50} us, p99 ${r.c64.latency_us.p99} us, timeouts ${r.c64.timeouts}`);
  log(`   1 outstanding / 1 socket, ${SECONDS} s`);
  r.c1 = await coapBenchRun(port, 1, 1, SECONDS);
  log(`     ${r.c1.rps.toFixed(0)} req/s, p50 ${r.c1.latency_us.p50} us, p99 ${r.c1.latency_us.p99} us`);
  if (RSS_SECONDS > 0) {
    log(`   RSS run: 64 outstanding / 4 sockets, ${RSS_SECONDS} s`);
    r.rssRun = await coapBenchRun(port, 64, 4, RSS_SECONDS);
    log(`     ${r.rssRun.rps.toFixed(0)} req/s`);
  }
});

// ---------------------------------------------------------------------------------- clients

const clientResults = [];
if (want('clients')) {
  if (libcoapServer === undefined) {
    log('skip client benchmark: coap-server-notls not on PATH');
  } else {
    const port = await freePort();
    log(`== client throughput against libcoap on ${HOST}:${port}, 64 outstanding, ${SECONDS} s`);
    const srv = start('coap-server-notls', libcoapServer, ['-A', HOST, '-p', String(port), '-v', '0']);
    try {
      await waitReady(srv, HOST, port, PATH);
      const url = `coap://${HOST}:${port}/${PATH}`;
      const clients = [
        ['turbocoap (native)', 'turbocoap', { TURBOCOAP_BACKEND: 'native' }],
        ['turbocoap (WASM)', 'turbocoap', { TURBOCOAP_BACKEND: 'wasm' }],
        ['npm coap', 'npm-coap', {}],
      ];
      for (const [label, impl, env] of clients) {
        const c = await runToEnd(label, process.execPath, [resolve(root, 'bench', 'lib', 'client.mjs'), impl, url, '64', String(SECONDS), String(WARMUP)], (SECONDS + WARMUP + 30) * 1000, {
          env: { ...process.env, ...env },
        });
        let r;
        try {
          r = JSON.parse(c.stdout.trim().split('\n').pop() ?? '');
        } catch {
          r = { error: `no result (exit ${c.exitCode}${c.timedOut ? ', timed out' : ''}): ${c.stderr.trim().split('\n').slice(-3).join(' | ')}` };
        }
        r.label = label;
        clientResults.push(r);
        log(`   ${label}: ${r.error ?? `${r.rps.toFixed(0)} req/s (${r.errors} errors${r.firstError ? `, first: ${r.firstError}` : ''})`}`);
      }
    } finally {
      await srv.kill();
    }
  }
}

// ---------------------------------------------------------------------------------- report

/** A server's record if it was measured (a failed one counts in no comparison). */
const ok = (k) => (results.get(k)?.error ? undefined : results.get(k));
const lib = ok('libcoap');
const npm = ok('npm-coap');

const out = [];
out.push('');
out.push(`## CoAP/UDP servers (coap-bench, CON GET /${PATH}, ${SECONDS} s per run, ${WARMUP} s warm-up; RSS after a further ${RSS_SECONDS} s at 64 outstanding)`);
out.push('');
out.push('| server | 64 outst. req/s | p50 µs | p99 µs | 1 outst. req/s | p50 µs | p99 µs | peak RSS MB | vs libcoap (64) | vs npm coap (64) | vs libcoap (1) | vs npm coap (1) |');
out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
out.push(
  ...tableRows(
    servers,
    results,
    12,
    (r) =>
      `| ${r.label} | ${f0(r.c64.rps)} | ${f0(r.c64.latency_us.p50)} | ${f0(r.c64.latency_us.p99)} | ${f0(r.c1.rps)} | ${f0(r.c1.latency_us.p50)} | ${f0(r.c1.latency_us.p99)} | ${f1(r.rss)} | ` +
      `${ratio(r.c64.rps, lib?.c64?.rps)} | ${ratio(r.c64.rps, npm?.c64?.rps)} | ${ratio(r.c1.rps, lib?.c1?.rps)} | ${ratio(r.c1.rps, npm?.c1?.rps)} |`,
  ),
);
const notes = [];
for (const r of measured(servers, results)) {
  const bad = ['c64', 'c1', 'rssRun'].filter((k) => r[k] && (r[k].timeouts > 0 || r[k].rst > 0 || r[k].status['2xx'] !== r[k].requests));
  if (bad.length) notes.push(`- ${r.label}: ${bad.map((k) => `${k}: ${r[k].timeouts} timeouts, ${r[k].rst} RST, ${r[k].requests - r[k].status['2xx']} non-2.xx`).join('; ')}`);
  notes.push(`- ${r.label}: generator ${r.c64.cpu_us_per_req?.toFixed(1) ?? '–'} µs CPU per request at 64; retransmissions ${r.c64.retransmissions}${r.rssRun ? `; RSS run ${f0(r.rssRun.rps)} req/s` : ''}`);
}
if (notes.length) out.push('', ...notes);

if (clientResults.length) {
  const npmc = clientResults.find((r) => r.label === 'npm coap');
  out.push('');
  out.push(`## CoAP/UDP clients (64 CON GETs outstanding against libcoap coap-server-notls /${PATH}, ${SECONDS} s)`);
  out.push('');
  out.push('| client | req/s | errors | vs npm coap |');
  out.push('|---|---:|---:|---:|');
  for (const r of clientResults) {
    if (r.error) out.push(`| ${r.label} | failed: ${r.error.replace(/\|/g, '/')} | | |`);
    else out.push(`| ${r.label} | ${f0(r.rps)} | ${r.errors} | ${ratio(r.rps, npmc?.rps)} |`);
  }
}

const targets = [];
const target = (...a) => targets.push(targetLine(...a));
{
  const nat = ok('native');
  const a = nat?.c64?.rps;
  const b = lib?.c64?.rps;
  target('native server ≥ 2× libcoap (64 outstanding)', a && b ? a >= 2 * b : undefined, `${f0(a)} vs ${f0(b)} req/s = ${ratio(a, b)}`);
}
{
  const w = ok('wasm');
  const a = w?.c64?.rps;
  const b = npm?.c64?.rps;
  target('WASM server ≥ 2× npm coap (64 outstanding)', a && b ? a >= 2 * b : undefined, `${f0(a)} vs ${f0(b)} req/s = ${ratio(a, b)}`);
}
{
  const npmc = clientResults.find((r) => r.label === 'npm coap' && !r.error);
  for (const r of clientResults.filter((x) => x.label.startsWith('turbocoap'))) {
    const a = r.error ? undefined : r.rps;
    const b = npmc?.rps;
    target(`${r.label} client ≥ 4× npm coap client`, a && b ? a >= 4 * b : undefined, `${f0(a)} vs ${f0(b)} req/s = ${ratio(a, b)}`);
  }
  if (!clientResults.length) target('turbocoap client ≥ 4× npm coap client', undefined, 'client benchmark not run');
}
for (const k of ['native', 'wasm']) {
  const r = results.get(k);
  target(`${r?.label ?? k} server peak RSS < 100 MB`, r?.rss === undefined ? undefined : r.rss < 100, `${f1(r?.rss)} MB`);
}
await printReport(out, targets);
process.exit(0);
