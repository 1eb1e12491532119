#!/usr/bin/env node
// CoAP over TCP, TLS and WebSockets (RFC 8323): servers and clients side by side on this
// machine, one run, each server in its own child process, one process per transport:
//   libcoap 4.3.1: coap-server-notls (TCP), coap-server-openssl -k KEY (TLS PSK, on PORT+1)
//   turbocoap native and WASM (TURBOCOAP_BACKEND), server.listen({ transport }) with a JS handler
//     (bench/lib/server-turbocoap-stream.mjs); WebSocket for turbocoap only (libcoap 4.3.1 has none)
// Per server and transport, on a fresh process:
//   1. memory per idle connection: RSS before, coap-bench --idle N (CSMs exchanged), RSS after;
//      (after - before) / connections up
//   2. throughput: coap-bench, GET /time, 64 pipelined over 4 connections, BENCH_SECONDS after
//      BENCH_WARMUP; the server's CPU per request from /proc/PID/stat (utime + stime) over the
//      measured window
// Then client throughput: turbocoap's client (native, WASM; one connection per origin) with 64
// requests in flight against libcoap's TCP / TLS server and against turbocoap's (native), next to
// coap-bench with 64 pipelined on one connection as the yardstick.
// Prints markdown tables with ratios vs libcoap and the issue's targets as met / NOT met.
//
//   npm run bench:tcp
//   BENCH_SECONDS=10           measured seconds per throughput run (default 10)
//   BENCH_WARMUP=1             warm-up seconds per run (default 1)
//   BENCH_REPEAT=1             throughput runs per server and transport, the best counts (default 1;
//                              on a shared machine 2-3 damp the other processes' interference)
//   BENCH_IDLE_CONNS=10000     idle connections (default 10000; 0 skips the memory runs)
//   BENCH_ONLY=native,wasm,libcoap,clients   servers / parts to run (default all)
//   BENCH_TRANSPORTS=tcp,tls,ws               transports to run (default all)
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer as createTcpServer, connect as tcpConnect } from 'node:net';
import { resolve } from 'node:path';
import { HOST, coapBenchPath, commandLine, die, f0, f1, log, num, printReport, ratio, root, targetLine, wanted } from './lib/bench-env.mjs';
import { freePort, installCleanup, rssKiB, runToEnd, sleep, start, which } from './lib/proc.mjs';

installCleanup();

const SECONDS = num('BENCH_SECONDS', 10) || 10;
const WARMUP = num('BENCH_WARMUP', 1);
const IDLE = num('BENCH_IDLE_CONNS', 10000, 0, 60000);
const want = wanted();
const transports = (process.env.BENCH_TRANSPORTS ?? 'tcp,tls,ws').split(',').map((s) => s.trim());
const wantT = (t) => transports.includes(t);
const PSK_ID = 'bench';
const PSK_KEY = 'bench-secret-key';
const PATH = 'time';
const PIPELINE = 64;
const CONNS = 4;
// clients: one connection (the Agent pools one per origin) with 16 requests in flight: turbocoap's
// server gives each connection 16 exchange slots (more get 5.03), libcoap takes any number
const CLIENT_INFLIGHT = 16;
const REPEAT = num('BENCH_REPEAT', 1, 1, 10);

const bin = coapBenchPath('tcp');
const libcoapTcp = which('coap-server-notls');
const libcoapTls = which('coap-server-openssl');
const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** Why turbocoap cannot serve `transport` yet, or undefined. */
async function turbocoapStreamMissing() {
  const entry = resolve(root, 'dist', 'index.js');
  if (!existsSync(entry)) return 'dist/ is missing: run npm run build';
  const m = await import(entry);
  const tc = m.default ?? m;
  if (typeof tc.createServer !== 'function') return 'dist/index.js has no createServer';
  return undefined;
}
const tcMissing = await turbocoapStreamMissing();

// ------------------------------------------------------------------------- helpers

/** utime + stime of a live process in seconds, or undefined. */
function cpuSeconds(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' '); // fields from 3 (state) on
    return (Number(f[11]) + Number(f[12])) / CLK_TCK; // 14 utime, 15 stime
  } catch {
    return undefined;
  }
}

/** Resolves once a TCP connection to host:port succeeds; throws after timeoutMs or if the child died. */
async function waitTcp(child, port, timeoutMs = 15000, readyLine) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exited) throw new Error(`${child.name} exited (code ${child.exitCode}, signal ${child.signal})\n${child.output()}`);
    if (readyLine === undefined || child.stdout.includes(readyLine)) {
      const ok = await new Promise((res) => {
        const s = tcpConnect(port, HOST);
        const t = setTimeout(() => (s.destroy(), res(false)), 500);
        s.once('connect', () => (clearTimeout(t), s.destroy(), res(true)));
        s.once('error', () => (clearTimeout(t), res(false)));
      });
      if (ok) return;
    }
    await sleep(50);
  }
  throw new Error(`${child.name} did not listen on ${HOST}:${port} within ${timeoutMs} ms\n${child.output()}`);
}

/** A port p with p and p + 1 free for UDP and TCP (libcoap binds both, TLS on p + 1). */
async function freePortPair() {
  for (let i = 0; i < 20; i++) {
    const p = await freePort();
    if (p >= 65535) continue;
    const q = await new Promise((res) => {
      const t = createTcpServer();
      t.once('error', () => res(false));
      t.listen(p + 1, HOST, () => t.close(() => res(true)));
    });
    if (q) return p;
  }
  throw new Error('no pair of free ports');
}

const secArgs = (t) => (t === 'tls' ? ['--psk-id', PSK_ID, '--psk-key', PSK_KEY] : []);

/** coap-bench's throughput run against url with the server's CPU per request over the window. */
async function throughput(server, url, t) {
  const args = ['-c', String(PIPELINE), '-k', String(CONNS), '-d', String(SECONDS), '-w', String(WARMUP), '--json', ...secArgs(t), url];
  const c = start('coap-bench', bin, args);
  let cpuA;
  let tA;
  const mark = setTimeout(() => {
    cpuA = cpuSeconds(server.pid);
    tA = performance.now();
  }, WARMUP * 1000 + 150);
  const kill = setTimeout(() => c.proc.kill('SIGKILL'), (SECONDS + WARMUP + 45) * 1000);
  await c.done;
  const cpuB = cpuSeconds(server.pid);
  const tB = performance.now();
  clearTimeout(mark);
  clearTimeout(kill);
  let r;
  try {
    r = JSON.parse(c.stdout.trim().split('\n').pop() ?? '');
  } catch {
    throw new Error(`coap-bench ${args.join(' ')} printed no JSON (exit ${c.exitCode})\n${c.output()}`);
  }
  r.cmd = `coap-bench ${args.join(' ')}`;
  r.okRps = r.elapsed_s > 0 ? r.status['2xx'] / r.elapsed_s : 0; // 5.03s (overload) do not count
  if (cpuA !== undefined && cpuB !== undefined && r.rps > 0 && tB > tA) {
    r.serverCpuUs = ((cpuB - cpuA) * 1e6) / (r.rps * ((tB - tA) / 1000)); // per response, any code
    r.serverCores = (cpuB - cpuA) / ((tB - tA) / 1000);
  }
  return r;
}

/** coap-bench --idle n against url: the server's RSS before and with the connections up. */
async function idleMemory(server, url, t, n) {
  const rss0 = rssKiB(server.pid);
  const args = ['--idle', String(n), '-d', '120', ...secArgs(t), url];
  const c = start('coap-bench --idle', bin, args);
  const deadline = Date.now() + 150_000;
  while (!c.exited && !c.stdout.includes('"phase":"ready"') && Date.now() < deadline) await sleep(100);
  if (!c.stdout.includes('"phase":"ready"')) {
    await c.kill();
    throw new Error(`coap-bench ${args.join(' ')}: no ready line\n${c.output()}`);
  }
  await sleep(1000); // let the server settle (late allocations, GC)
  const rss1 = rssKiB(server.pid);
  const alive = !server.exited;
  await c.kill();
  const ready = JSON.parse(c.stdout.split('\n').find((l) => l.includes('"phase":"ready"')));
  if (!alive) throw new Error(`the server died with ${n} idle connections\n${server.output()}`);
  return { up: ready.up, setup_s: ready.setup_s, rss0, rss1, kibPerConn: ready.up > 0 ? (rss1 - rss0) / ready.up : undefined, cmd: `coap-bench ${args.join(' ')}` };
}

// ------------------------------------------------------------------------- servers

const ours = (backend) => (t) => ({
  port: undefined,
  cmd: (port, idle) => [
    process.execPath,
    [resolve(root, 'bench', 'lib', 'server-turbocoap-stream.mjs'), t, String(port), ...(t === 'tls' ? [PSK_ID, PSK_KEY] : [])],
    { env: { ...process.env, TURBOCOAP_BACKEND: backend, ...(idle ? { BENCH_MAX_CONNS: String(IDLE + 64) } : {}) } },
  ],
  readyLine: 'ready',
  url: (port) => `${t === 'tls' ? 'coaps+tcp' : t === 'ws' ? 'coap+ws' : 'coap+tcp'}://${HOST}:${port}/${PATH}`,
  listenPort: (port) => port,
  missing: tcMissing,
});

const ceilingBin = resolve(root, 'native', 'out', 'stream-server');
const servers = [
  {
    key: 'libcoap',
    label: 'libcoap 4.3.1',
    transports: {
      tcp: {
        cmd: (port) => [libcoapTcp, ['-A', HOST, '-p', String(port), '-v', '0'], {}],
        url: (port) => `coap+tcp://${HOST}:${port}/${PATH}`,
        listenPort: (port) => port,
        missing: libcoapTcp === undefined ? 'coap-server-notls not on PATH (apt-get install libcoap3-bin)' : undefined,
      },
      tls: {
        cmd: (port) => [libcoapTls, ['-A', HOST, '-p', String(port), '-v', '0', '-k', PSK_KEY], {}],
        url: (port) => `coaps+tcp://${HOST}:${port + 1}/${PATH}`,
        listenPort: (port) => port + 1,
        pair: true,
        missing: libcoapTls === undefined ? 'coap-server-openssl not on PATH (apt-get install libcoap3-bin)' : undefined,
      },
    },
  },
  {
    key: 'ceiling',
    label: 'turbocoap C ceiling (no JS, no libuv)',
    transports: {
      tcp: {
        // the core's connection driver answering in C (native/tools/stream_server.c): what the host and JS add is the rest
        cmd: (port, idle) => [ceilingBin, [String(port), String(idle ? IDLE + 64 : 4000)], {}],
        url: (port) => `coap+tcp://${HOST}:${port}/${PATH}`,
        listenPort: (port) => port,
        readyLine: 'ready',
        missing: existsSync(ceilingBin) ? undefined : 'native/out/stream-server missing (make -C native bench-stream)',
      },
    },
  },
  { key: 'native', label: 'turbocoap (native)', transports: { tcp: ours('native')('tcp'), tls: ours('native')('tls'), ws: ours('native')('ws') } },
  { key: 'wasm', label: 'turbocoap (WASM)', transports: { tcp: ours('wasm')('tcp'), tls: ours('wasm')('tls'), ws: ours('wasm')('ws') } },
];

/** results[key][transport] = { server, idle?, load?, error? } */
const results = {};
for (const s of servers) {
  if (!want(s.key)) continue;
  results[s.key] = {};
  for (const t of ['tcp', 'tls', 'ws']) {
    const d = s.transports[t];
    if (!d || !wantT(t)) continue;
    const rec = (results[s.key][t] = {});
    if (d.missing) {
      rec.error = `not run: ${d.missing}`;
      log(`skip ${s.label} ${t}: ${d.missing}`);
      continue;
    }
    // throughput on a server with its default limits; the idle run on another with the
    // connection limits raised (turbocoap shares 65535 exchange slots among maxConnections: with
    // 10,000 connections each gets 6, fewer than the 16 pipelined per connection here)
    for (const phase of IDLE > 0 && t !== 'ws' ? ['load', 'idle'] : ['load']) {
      const port = d.pair ? await freePortPair() : await freePort();
      const [cmd, args, opts] = d.cmd(port, phase === 'idle');
      if (phase === 'load') rec.server = commandLine(cmd, args);
      else rec.idleServer = commandLine(cmd, args);
      const url = d.url(port);
      log(`== ${s.label} over ${t} on ${HOST}:${d.listenPort(port)} (${phase})`);
      const child = start(`${s.label} ${t}`, cmd, args, opts);
      try {
        await waitTcp(child, d.listenPort(port), 20000, d.readyLine);
        await sleep(300);
        if (phase === 'idle') {
          log(`   ${IDLE} idle connections`);
          rec.idle = await idleMemory(child, url, t, IDLE);
          log(`     ${rec.idle.up} up in ${rec.idle.setup_s} s, RSS ${f0(rec.idle.rss0)} -> ${f0(rec.idle.rss1)} KiB = ${f1(rec.idle.kibPerConn)} KiB per connection`);
        } else {
          for (let k = 0; k < REPEAT; k++) {
            log(`   ${PIPELINE} pipelined over ${CONNS} connections, ${SECONDS} s${REPEAT > 1 ? ` (run ${k + 1} of ${REPEAT}, the best counts)` : ''}`);
            const L = await throughput(child, url, t);
            if (rec.load === undefined || L.okRps > rec.load.okRps) rec.load = L;
          }
          const L = rec.load;
          log(`     ${f0(L.rps)} req/s (${f0(L.okRps)} 2.xx), p50 ${L.latency_us.p50} us, p99 ${L.latency_us.p99} us, server ${f1(L.serverCpuUs)} us CPU/req, generator ${f1(L.cpu_us_per_req)} us/req${L.timeouts || L.conn_closed || L.lost ? `, ${L.timeouts} timeouts, ${L.conn_closed} closed, ${L.lost} lost` : ''}`);
        }
        if (child.exited) throw new Error(`the server died during the runs\n${child.output()}`);
      } catch (e) {
        log(`!! ${s.label} ${t} (${phase}): ${e?.message ?? e}`);
        if (phase === 'load') rec.error = String(e?.message ?? e).split('\n')[0];
        else rec.idleError = String(e?.message ?? e).split('\n')[0];
      } finally {
        await child.kill();
      }
    }
  }
}

// ------------------------------------------------------------------------- clients

const clientResults = [];
/** 2.xx responses per second of a client result (client.mjs: ok over seconds). */
const okRate = (r) => (r.seconds > 0 ? r.ok / r.seconds : undefined);
if (want('clients')) {
  // [against, transport, server definition]
  const targetsC = [];
  for (const t of ['tcp', 'tls']) {
    if (!wantT(t)) continue;
    targetsC.push(['libcoap', t, servers[0].transports[t]]);
    targetsC.push(['turbocoap (native)', t, ours('native')(t)]);
  }
  for (const [against, t, d] of targetsC) {
    const tag = `${against} ${t}`;
    if (d.missing) {
      clientResults.push({ label: 'all clients', against: tag, error: `not run: ${d.missing}` });
      continue;
    }
    const port = d.pair ? await freePortPair() : await freePort();
    const [cmd, args, opts] = d.cmd(port);
    const url = d.url(port);
    log(`== client throughput against ${tag} on ${HOST}:${d.listenPort(port)}, ${CLIENT_INFLIGHT} in flight, ${SECONDS} s`);
    const srv = start(tag, cmd, args, opts);
    try {
      await waitTcp(srv, d.listenPort(port), 20000, d.readyLine);
      for (const backend of ['native', 'wasm']) {
        const label = `turbocoap (${backend === 'wasm' ? 'WASM' : backend})`;
        let r;
        if (tcMissing) r = { error: `not run: ${tcMissing}` };
        else {
          const env = { ...process.env, TURBOCOAP_BACKEND: backend, ...(t === 'tls' ? { BENCH_PSK: `${PSK_ID}:${PSK_KEY}` } : {}) };
          const c = await runToEnd(label, process.execPath, [resolve(root, 'bench', 'lib', 'client.mjs'), 'turbocoap', url, String(CLIENT_INFLIGHT), String(SECONDS), String(WARMUP)], (SECONDS + WARMUP + 30) * 1000, { env });
          try {
            r = JSON.parse(c.stdout.trim().split('\n').pop() ?? '');
          } catch {
            r = { error: `no result (exit ${c.exitCode}${c.timedOut ? ', timed out' : ''}): ${c.stderr.trim().split('\n').slice(-2).join(' / ')}` };
          }
        }
        Object.assign(r, { label, against: tag });
        clientResults.push(r);
        log(`   ${label}: ${r.error ?? `${f0(r.rps)} req/s (${r.errors} errors${r.firstError ? `, first: ${r.firstError}` : ''})`}`);
      }
      // the yardstick: coap-bench (C) with the same requests in flight on one connection
      const cbArgs = ['-c', String(CLIENT_INFLIGHT), '-k', '1', '-d', String(SECONDS), '-w', String(WARMUP), '--json', ...secArgs(t), url];
      const cb = await runToEnd('coap-bench', bin, cbArgs, (SECONDS + WARMUP + 30) * 1000);
      try {
        const j = JSON.parse(cb.stdout.trim().split('\n').pop());
        clientResults.push({ label: 'coap-bench (C, 1 connection)', against: tag, rps: j.rps, requests: j.requests, ok: j.status['2xx'], seconds: j.elapsed_s, errors: j.timeouts + j.lost });
      } catch {
        clientResults.push({ label: 'coap-bench (C, 1 connection)', against: tag, error: `no result (exit ${cb.exitCode})` });
      }
    } catch (e) {
      log(`!! clients against ${tag}: ${e?.message ?? e}`);
      clientResults.push({ label: 'all clients', against: tag, error: String(e?.message ?? e).split('\n')[0] });
    } finally {
      await srv.kill();
    }
  }
}

// ------------------------------------------------------------------------- report

const get = (k, t) => {
  const r = results[k]?.[t];
  return r && !r.error ? r : undefined;
};
const lib = (t) => get('libcoap', t)?.load?.okRps;
const out = [];
const cell = (r, f) => (r?.error ? `failed: ${r.error.replace(/\|/g, '/')}` : r?.load ? f(r.load) : '–');
const anyServer = Object.keys(results).length > 0;
if (anyServer) out.push('');
if (anyServer) out.push(`## CoAP over TCP / TLS servers (coap-bench, GET /${PATH}, ${PIPELINE} pipelined over ${CONNS} connections, ${SECONDS} s after ${WARMUP} s warm-up${REPEAT > 1 ? `, best of ${REPEAT}` : ''}; JS handler on turbocoap)`);
if (anyServer) out.push('');
if (anyServer) out.push('| server | transport | 2.xx/s | p50 µs | p99 µs | server CPU µs/req | server cores | vs libcoap | errors |');
if (anyServer) out.push('|---|---|---:|---:|---:|---:|---:|---:|---|');
for (const s of servers) {
  for (const t of ['tcp', 'tls', 'ws']) {
    const r = results[s.key]?.[t];
    if (!r) continue;
    if (r.error || !r.load) {
      out.push(`| ${s.label} | ${t} | ${cell(r, () => '–')} | | | | | | |`);
      continue;
    }
    const L = r.load;
    const errs = [L.timeouts && `${L.timeouts} timeouts`, L.lost && `${L.lost} lost`, L.conn_closed && `${L.conn_closed} closed`, L.status['2xx'] !== L.requests && `${L.requests - L.status['2xx']} non-2.xx`].filter(Boolean).join(', ') || '0';
    const vs = t === 'ws' ? (get(s.key, 'tcp') ? `${ratio(L.okRps, get(s.key, 'tcp').load.okRps)} of own TCP` : '–') : ratio(L.okRps, lib(t));
    out.push(`| ${s.label} | ${t} | ${f0(L.okRps)} | ${f0(L.latency_us.p50)} | ${f0(L.latency_us.p99)} | ${f1(L.serverCpuUs)} | ${L.serverCores?.toFixed(2) ?? '–'} | ${vs} | ${errs} |`);
  }
}
if (IDLE > 0 && anyServer) {
  out.push('');
  out.push(`## Memory per idle connection (${IDLE} connections, CSMs exchanged; server RSS after − before, over connections up)`);
  out.push('');
  out.push('| server | transport | up | setup s | RSS before MiB | RSS with conns MiB | KiB per connection | vs libcoap |');
  out.push('|---|---|---:|---:|---:|---:|---:|---:|');
  for (const s of servers) {
    for (const t of ['tcp', 'tls']) {
      const r = results[s.key]?.[t];
      if (!r) continue;
      if (!r.idle) {
        const e = r.idleError ?? r.error;
        out.push(`| ${s.label} | ${t} | ${e ? `failed: ${e.replace(/\|/g, '/')}` : '–'} | | | | | |`);
        continue;
      }
      const I = r.idle;
      out.push(`| ${s.label} | ${t} | ${I.up} | ${f1(I.setup_s)} | ${f1(I.rss0 / 1024)} | ${f1(I.rss1 / 1024)} | ${f1(I.kibPerConn)} | ${ratio(I.kibPerConn, get('libcoap', t)?.idle?.kibPerConn)} |`);
    }
  }
}
if (clientResults.length) {
  out.push('');
  out.push(`## Clients over TCP / TLS (${CLIENT_INFLIGHT} GETs /${PATH} in flight on one connection, ${SECONDS} s; coap-bench the same as the yardstick)`);
  out.push('');
  out.push('| client | against | 2.xx/s | non-2.xx | errors | vs coap-bench (C) |');
  out.push('|---|---|---:|---:|---:|---:|');
  for (const r of clientResults) {
    const y = clientResults.find((x) => x.against === r.against && x.label.startsWith('coap-bench') && !x.error);
    const yard = y ? okRate(y) : undefined;
    if (r.error) out.push(`| ${r.label} | ${r.against} | failed: ${r.error.replace(/\|/g, '/')} | | | |`);
    else out.push(`| ${r.label} | ${r.against} | ${f0(okRate(r))} | ${r.requests - r.ok} | ${r.errors} | ${ratio(okRate(r), yard)} |`);
  }
}
out.push('', 'Commands (PORT picked free on 127.0.0.1; libcoap TLS listens on PORT+1):', '', '```sh');
for (const s of servers)
  for (const t of ['tcp', 'tls', 'ws']) {
    const r = results[s.key]?.[t];
    if (!r?.server) continue;
    out.push(`# ${s.label} ${t}`);
    const env = s.key === 'native' || s.key === 'wasm' ? `TURBOCOAP_BACKEND=${s.key} ` : '';
    const port = (x) => x.replace(/(-p |\.mjs (tcp|tls|ws) |stream-server )\d+/, '$1PORT');
    out.push(env + port(r.server));
    if (r.load?.cmd) out.push(r.load.cmd.replace(/:\d+\//, ':PORT/'));
    if (r.idleServer) out.push(`${s.key === 'native' || s.key === 'wasm' ? `BENCH_MAX_CONNS=${IDLE + 64} ${env}` : ''}${port(r.idleServer)}`);
    if (r.idle?.cmd) out.push(r.idle.cmd.replace(/:\d+\//, ':PORT/'));
  }
out.push('```');

const targets = [];
for (const [t, goal] of [
  ['tcp', 1.5],
  ['tls', 1.2],
]) {
  for (const k of ['native', 'wasm']) {
    const a = get(k, t)?.load?.okRps;
    const b = lib(t);
    const label = servers.find((s) => s.key === k).label;
    const ok = a && b ? a >= goal * b : undefined;
    targets.push(targetLine(`${label} ${t.toUpperCase()} server ≥ ${goal}× libcoap (JS handler, ${PIPELINE} pipelined / ${CONNS} conns)${k === 'wasm' ? ' [not an issue goal: for reference]' : ''}`, ok, `${f0(a)} vs ${f0(b)} req/s = ${ratio(a, b)}`));
  }
}
await printReport(out, targets);
process.exit(0);
