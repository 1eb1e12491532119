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
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, installCleanup, peakRssMB, runToEnd, sleep, start, waitReady, which } from './lib/proc.mjs';

installCleanup();

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const num = (name, dflt) => {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || n > 3600) throw new Error(`${name}=${v}: expected seconds in 0..3600`);
  return n;
};
const SECONDS = num('BENCH_SECONDS', 10) || 10;
const RSS_SECONDS = num('BENCH_RSS_SECONDS', 20);
const WARMUP = num('BENCH_WARMUP', 1);
const ONLY = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',').map((s) => s.trim())) : undefined;
const want = (k) => ONLY === undefined || ONLY.has(k);

const coapBench = resolve(root, 'build', 'Release', 'coap-bench');
const libcoapServer = which('coap-server-notls');
const HOST = '127.0.0.1';
const PATH = 'time';

function die(msg) {
  process.stderr.write(`bench/udp: ${msg}\n`);
  process.exit(1);
}
if (!existsSync(coapBench)) die(`${coapBench} is missing: run npm install (it builds coap-bench on Linux)`);
if (!existsSync(resolve(root, 'dist', 'index.js'))) die('dist/ is missing: run npm run build');
{
  const tc = await import(resolve(root, 'dist', 'index.js'));
  if (typeof (tc.default ?? tc).createServer !== 'function' && (want('native') || want('wasm') || want('clients'))) {
    die('dist/index.js has no createServer: the server API is not built yet');
  }
}

const log = (s) => process.stderr.write(`${s}\n`);

/** Runs coap-bench --json; returns its parsed result (throws with its output on failure). */
async function coapBenchRun(port, concurrency, sockets, seconds) {
  const args = ['--json', '-c', String(concurrency), '-k', String(sockets), '-d', String(seconds), '-w', String(WARMUP), `coap://${HOST}:${port}/${PATH}`];
  const c = await runToEnd('coap-bench', coapBench, args, (seconds + WARMUP + 40) * 1000);
  if (c.timedOut) throw new Error(`coap-bench ${args.join(' ')} did not finish in time\n${c.output()}`);
  const line = c.stdout.trim().split('\n').pop() ?? '';
  let r;
  try {
    r = JSON.parse(line);
  } catch {
    throw new Error(`coap-bench ${args.join(' ')} printed no JSON (exit ${c.exitCode})\n${c.output()}`);
  }
  return r;
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

const results = new Map();

for (const s of servers) {
  if (!want(s.key)) continue;
  if (s.missing) {
    log(`skip ${s.label}: ${s.missing}`);
    continue;
  }
  const port = await freePort();
  const [cmd, args, opts] = s.cmd(port);
  log(`== ${s.label} on ${HOST}:${port}`);
  const child = start(s.label, cmd, args, opts);
  try {
    await waitReady(child, HOST, port, PATH);
    await sleep(200);
    const r = { label: s.label };
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
    r.rss = peakRssMB(child.pid);
    if (child.exited) throw new Error(`${s.label} died during the runs\n${child.output()}`);
    results.set(s.key, r);
  } catch (e) {
    log(`!! ${s.label}: ${e?.message ?? e}`);
    results.set(s.key, { label: s.label, error: String(e?.message ?? e).split('\n')[0] });
  } finally {
    await child.kill();
  }
}

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

const f0 = (n) => (n === undefined || Number.isNaN(n) ? '–' : Math.round(n).toLocaleString('en-US'));
const f1 = (n) => (n === undefined || Number.isNaN(n) ? '–' : n.toFixed(1));
const ratio = (a, b) => (a === undefined || b === undefined || !(b > 0) ? '–' : `${(a / b).toFixed(2)}×`);

const lib = results.get('libcoap');
const npm = results.get('npm-coap');

const out = [];
out.push('');
out.push(`## CoAP/UDP servers (coap-bench, CON GET /${PATH}, ${SECONDS} s per run, ${WARMUP} s warm-up; RSS after a further ${RSS_SECONDS} s at 64 outstanding)`);
out.push('');
out.push('| server | 64 outst. req/s | p50 µs | p99 µs | 1 outst. req/s | p50 µs | p99 µs | peak RSS MB | vs libcoap (64) | vs npm coap (64) | vs libcoap (1) | vs npm coap (1) |');
out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const s of servers) {
  const r = results.get(s.key);
  if (r === undefined) continue;
  if (r.error) {
    out.push(`| ${r.label} | failed: ${r.error.replace(/\|/g, '/')} |||||||||||`);
    continue;
  }
  out.push(
    `| ${r.label} | ${f0(r.c64.rps)} | ${f0(r.c64.latency_us.p50)} | ${f0(r.c64.latency_us.p99)} | ${f0(r.c1.rps)} | ${f0(r.c1.latency_us.p50)} | ${f0(r.c1.latency_us.p99)} | ${f1(r.rss)} | ` +
      `${ratio(r.c64.rps, lib?.c64?.rps)} | ${ratio(r.c64.rps, npm?.c64?.rps)} | ${ratio(r.c1.rps, lib?.c1?.rps)} | ${ratio(r.c1.rps, npm?.c1?.rps)} |`,
  );
}
const notes = [];
for (const s of servers) {
  const r = results.get(s.key);
  if (!r || r.error) continue;
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

const target = (name, ok, detail) => out.push(`- ${ok === undefined ? 'NOT measured' : ok ? 'met' : 'NOT met'}: ${name} — ${detail}`);
out.push('');
out.push('## Targets');
out.push('');
{
  const nat = results.get('native');
  const a = nat?.c64?.rps;
  const b = lib?.c64?.rps;
  target('native server ≥ 2× libcoap (64 outstanding)', a && b ? a >= 2 * b : undefined, `${f0(a)} vs ${f0(b)} req/s = ${ratio(a, b)}`);
}
{
  const w = results.get('wasm');
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
out.push('');
out.push(`machine: ${(await import('node:os')).cpus().length} CPUs (${(await import('node:os')).cpus()[0]?.model ?? '?'}), node ${process.version}`);
process.stdout.write(out.join('\n') + '\n');
process.exit(0);
