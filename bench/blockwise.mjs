#!/usr/bin/env node
// Block-wise transfer benchmark (RFC 7959 Block2): the time to deliver a 1 MiB body
// (byte i = i % 251) to 100 concurrent clients, each on its own UDP socket, every block
// checked (offset, size, ETag, Size2, content). One server after another, each in its own
// child process:
//   (a) turbocoap, native addon   (bench/lib/server-turbocoap-bw.mjs, GET /large)
//   (b) turbocoap, WebAssembly    (same, TURBOCOAP_BACKEND=wasm)
//   (c) libcoap coap-server-notls -d 10, the body PUT to /large with coap-client-notls first
//   (d) npm coap                  (bench/lib/server-npm-coap-bw.mjs; its server cuts large
//                                  payloads into Block2 blocks on its own)
// Load: coap-bench --block2: first one round (every client downloads the body once; bounded
// by BENCH_ROUND_SECONDS, after which the figure is extrapolated from the body bytes
// received), then, if that round completed, a sustained run of BENCH_SECONDS after
// BENCH_WARMUP. Peak RSS is the server process's VmHWM after both runs.
//
//   npm run bench:blockwise
//   BENCH_CLIENTS=100          concurrent clients (default 100)
//   BENCH_BLOCK=1024           Block2 size asked for (16..1024, default 1024)
//   BENCH_ROUND_SECONDS=60     bound on the first round (default 60)
//   BENCH_SECONDS=10           sustained run (default 10; 0 skips it)
//   BENCH_WARMUP=1             warm-up of the sustained run (default 1)
//   BENCH_ONLY=native,wasm,libcoap,npm-coap   run a subset
//   BENCH_COAP_BENCH=path      another coap-bench binary
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { BODY_SIZE, makeBody } from './lib/bw-body.mjs';
import { HOST, coapBench, coapBenchPath, commandsSection, eachServer, f0, f1, f2, log, measured, num, printReport, ratio, root, tableRows, targetLine, turbocoapMissing, wanted } from './lib/bench-env.mjs';
import { installCleanup, runToEnd, which } from './lib/proc.mjs';

installCleanup();

const CLIENTS = num('BENCH_CLIENTS', 100, 1, 4096);
const BLOCK = num('BENCH_BLOCK', 1024, 16, 1024);
if ((BLOCK & (BLOCK - 1)) !== 0) throw new Error(`BENCH_BLOCK=${BLOCK}: expected a power of two in 16..1024`);
const ROUND_SECONDS = num('BENCH_ROUND_SECONDS', 60, 1);
const SECONDS = num('BENCH_SECONDS', 10);
const WARMUP = num('BENCH_WARMUP', 1);
const want = wanted();
const PATH = 'large';

const bin = coapBenchPath('blockwise');
const libcoapServer = which('coap-server-notls');
const libcoapClient = which('coap-client-notls');
const tcMissing = want('native') || want('wasm') ? await turbocoapMissing() : undefined;

const tmp = mkdtempSync(join(tmpdir(), 'tc-bench-bw-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
const bodyFile = join(tmp, 'body.bin');
writeFileSync(bodyFile, makeBody());

/** libcoap: create /large with a block-wise PUT of the body (coap-server-notls -d). */
async function putBody(port) {
  const args = ['-m', 'put', '-f', bodyFile, '-b', '1024', '-B', '30', `coap://${HOST}:${port}/${PATH}`];
  const c = await runToEnd('coap-client-notls', libcoapClient, args, 45000);
  if (c.timedOut || c.exitCode !== 0) throw new Error(`coap-client-notls ${args.join(' ')} failed (exit ${c.exitCode})\n${c.output()}`);
  return `coap-client-notls ${args.join(' ')}`.replace(bodyFile, 'BODY_FILE');
}

const tcServer = (backend) => (port) => [process.execPath, [resolve(root, 'bench', 'lib', 'server-turbocoap-bw.mjs'), String(port)], { env: { ...process.env, TURBOCOAP_BACKEND: backend } }];
const servers = [
  { key: 'native', label: 'turbocoap (native)', cmd: tcServer('native'), missing: tcMissing },
  { key: 'wasm', label: 'turbocoap (WASM)', cmd: tcServer('wasm'), missing: tcMissing },
  {
    key: 'libcoap',
    label: 'libcoap 4.3 (coap-server-notls)',
    cmd: (port) => [libcoapServer, ['-A', HOST, '-p', String(port), '-v', '0', '-d', '10'], {}],
    prepare: putBody,
    missing: libcoapServer === undefined || libcoapClient === undefined ? 'coap-server-notls / coap-client-notls not on PATH (apt-get install libcoap3-bin)' : undefined,
  },
  { key: 'npm-coap', label: 'npm coap', cmd: (port) => [process.execPath, [resolve(root, 'bench', 'lib', 'server-npm-coap-bw.mjs'), String(port)], {}] },
];

const results = await eachServer(servers, { want, path: PATH }, async (r, { url }) => {
  log(`   first round: ${CLIENTS} clients x ${BODY_SIZE} bytes, Block2 ${BLOCK}, at most ${ROUND_SECONDS} s`);
  const round = await coapBench(bin, ['--block2', String(BLOCK), '--verify', '-c', String(CLIENTS), '-n', String(CLIENTS), '-w', '0', '-d', String(ROUND_SECONDS), url], (ROUND_SECONDS + 60) * 1000);
  r.round = round.result;
  r.roundCmd = round.cmd;
  const rr = r.round;
  r.time = rr.first_round_s ?? undefined;
  r.estimate = r.time === undefined && rr.bytes_per_s > 0 ? (CLIENTS * BODY_SIZE) / rr.bytes_per_s : undefined;
  log(`     ${r.time !== undefined ? `${r.time.toFixed(3)} s` : `not complete (${rr.first_round_done}/${CLIENTS}), ≈ ${f1(r.estimate)} s`}, ${f1(rr.bytes_per_s / 1e6)} MB/s, errors ${rr.errors}`);
  if (SECONDS > 0 && r.time !== undefined) {
    log(`   sustained: ${CLIENTS} clients, ${SECONDS} s after ${WARMUP} s warm-up`);
    const sus = await coapBench(bin, ['--block2', String(BLOCK), '-c', String(CLIENTS), '-w', String(WARMUP), '-d', String(SECONDS), url], (SECONDS + WARMUP + 60) * 1000);
    r.sustained = sus.result;
    r.sustainedCmd = sus.cmd;
    log(`     ${f2(r.sustained.downloads_per_s)} downloads/s, ${f1(r.sustained.bytes_per_s / 1e6)} MB/s, errors ${r.sustained.errors}`);
  }
});

// ---------------------------------------------------------------------------------- report

const timeOf = (r) => (r === undefined || r.error ? undefined : (r.time ?? r.estimate));
const lib = results.get('libcoap');
const npm = results.get('npm-coap');
const out = [];
out.push('');
out.push(`## Block2: ${BODY_SIZE.toLocaleString('en-US')}-byte body to ${CLIENTS} concurrent clients (coap-bench --block2 ${BLOCK}, one socket per client, CON, every block checked)`);
out.push('');
out.push('| server | Block2 | time, s | body MB/s | sustained downloads/s | sustained MB/s | block size | errors | peak RSS MB | speed vs libcoap | speed vs npm coap |');
out.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
out.push(
  ...tableRows(servers, results, 11, (r) => {
    const rr = r.round;
    const block2 = rr.no_block2 > 0 ? `no (${rr.no_block2} bodies in one response)` : rr.block_size_used > 0 ? 'yes' : '–';
    const time = r.time !== undefined ? f2(r.time) : `> ${ROUND_SECONDS} (${rr.first_round_done}/${CLIENTS} done; ≈ ${f0(r.estimate)})`;
    const errors = rr.errors + (r.sustained?.errors ?? 0);
    const t = timeOf(r);
    return (
      `| ${r.label} | ${block2} | ${time} | ${f1(rr.bytes_per_s / 1e6)} | ${f2(r.sustained?.downloads_per_s)} | ${f1(r.sustained ? r.sustained.bytes_per_s / 1e6 : undefined)} | ` +
      `${rr.block_size_used || '–'} | ${errors} | ${f1(r.rss)} | ${ratio(timeOf(lib), t)} | ${ratio(timeOf(npm), t)} |`
    );
  }),
);
out.push('');
out.push('time: until every client had its first complete, verified body (≈: extrapolated from the body bytes/s when the round did not finish in time). Speed ratios: the other server\'s time / this one\'s (higher is faster).');
const notes = [];
for (const r of measured(servers, results)) {
  for (const [k, x] of [['round', r.round], ['sustained', r.sustained]]) {
    if (!x) continue;
    const kinds = Object.entries(x.error_kinds).filter(([, v]) => v > 0).map(([n, v]) => `${n} ${v}`);
    if (kinds.length || x.retransmissions) notes.push(`- ${r.label}, ${k}: ${kinds.join(', ') || 'no errors'}; ${x.retransmissions} retransmissions; ETag ${x.etag ? 'yes' : 'no'}`);
  }
}
if (notes.length) out.push('', ...notes);
out.push(...commandsSection(servers, results, (r) => [r.prepare, r.roundCmd, r.sustainedCmd]));

const targets = ['native', 'wasm'].map((k) => {
  const r = results.get(k);
  const a = timeOf(r);
  const b = timeOf(lib);
  return targetLine(`${r?.label ?? k} delivers 1 MiB to ${CLIENTS} clients at least as fast as libcoap`, a !== undefined && b !== undefined && r.time !== undefined ? a <= b : undefined, `${f2(a)} s vs ${f2(b)} s (${ratio(b, a)} the speed)`);
});
await printReport(out, targets);
process.exit(0);
