// Shared by bench/udp.mjs, bench/blockwise.mjs and bench/observe.mjs: environment knobs, the
// coap-bench binary, one bounded coap-bench run that returns its --json result, the loop that
// runs each server in its own child process, and the pieces of the markdown report.
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, peakRssMB, runToEnd, sleep, start, waitReady } from './proc.mjs';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const HOST = '127.0.0.1';

/** A number from the environment, `dflt` when unset, checked against [min, max]. */
export function num(name, dflt, min = 0, max = 3600) {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max) throw new Error(`${name}=${v}: expected a number in ${min}..${max}`);
  return n;
}

/** BENCH_ONLY=a,b,...: run a subset. */
export function wanted() {
  const only = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',').map((s) => s.trim())) : undefined;
  return (k) => only === undefined || only.has(k);
}

export const log = (s) => process.stderr.write(`${s}\n`);

export function die(tag, msg) {
  process.stderr.write(`bench/${tag}: ${msg}\n`);
  process.exit(1);
}

/** The load generator: BENCH_COAP_BENCH, else build/Release/coap-bench. */
export function coapBenchPath(tag) {
  const p = process.env.BENCH_COAP_BENCH || resolve(root, 'build', 'Release', 'coap-bench');
  if (!existsSync(p)) die(tag, `${p} is missing: run npx node-gyp rebuild (it builds coap-bench on Linux)`);
  return p;
}

/**
 * Why the turbocoap servers cannot run yet (dist/ missing, or without the Router /
 * server.resource() API), or undefined when they can.
 */
export async function turbocoapMissing() {
  const entry = resolve(root, 'dist', 'index.js');
  if (!existsSync(entry)) return 'dist/ is missing: run npm run build';
  const m = await import(entry);
  const tc = m.default ?? m;
  if (typeof tc.createServer !== 'function' || typeof tc.Router !== 'function') return 'dist/index.js has no createServer/Router';
  try {
    const server = tc.createServer(new tc.Router());
    if (typeof server.resource !== 'function') return 'the server has no resource() (Observe) API yet';
  } catch (e) {
    return `createServer(new Router()) failed: ${e?.message ?? e}`;
  }
  return undefined;
}

/** Runs `coap-bench ...args --json` within timeoutMs; returns { cmd, result } or throws. */
export async function coapBench(bin, args, timeoutMs) {
  const full = [...args, '--json'];
  const cmd = `coap-bench ${full.join(' ')}`;
  const c = await runToEnd('coap-bench', bin, full, timeoutMs);
  if (c.timedOut) throw new Error(`${cmd} did not finish in ${Math.round(timeoutMs / 1000)} s\n${c.output()}`);
  const line = c.stdout.trim().split('\n').pop() ?? '';
  let result;
  try {
    result = JSON.parse(line);
  } catch {
    throw new Error(`${cmd} printed no JSON (exit ${c.exitCode})\n${c.output()}`);
  }
  return { cmd, result };
}

/** A child's command line for the report: `node` for this node, paths relative to the repo. */
export function commandLine(cmd, args) {
  return [cmd === process.execPath ? 'node' : cmd.replace(/^.*\//, ''), ...args.map((a) => a.replace(root + '/', ''))].join(' ');
}

/**
 * Benchmarks each wanted server in turn, each in its own child process on a free port of HOST.
 * A server is { key, label, cmd(port) -> [command, args, spawn options], missing?, prepare? }.
 * One with `missing` is skipped: logged, and recorded as { label, error: 'not run: …' } when
 * `recordSkipped`. The others get a record r = { label } (plus `server`, the command line, when
 * `withCommand`); once the server answers GET `path`, r.prepare = await prepare(port) if given,
 * and 200 ms later measure(r, { child, port, url }) fills r in; then r.rss is the server's peak
 * RSS. A failure records r (as far as it got, without rss) with r.error, the error's first line. The child is killed in every
 * case, then finished?.(r, child) runs. Returns Map key -> record.
 */
export async function eachServer(servers, { want, path, recordSkipped = true, withCommand = true, finished }, measure) {
  const results = new Map();
  for (const s of servers) {
    if (!want(s.key)) continue;
    if (s.missing) {
      log(`skip ${s.label}: ${s.missing}`);
      if (recordSkipped) results.set(s.key, { label: s.label, error: `not run: ${s.missing}` });
      continue;
    }
    const port = await freePort();
    const [cmd, args, opts] = s.cmd(port);
    log(`== ${s.label} on ${HOST}:${port}`);
    const child = start(s.label, cmd, args, opts);
    const url = `coap://${HOST}:${port}/${path}`;
    const r = withCommand ? { label: s.label, server: commandLine(cmd, args) } : { label: s.label };
    try {
      await waitReady(child, HOST, port, path);
      if (s.prepare) r.prepare = await s.prepare(port);
      await sleep(200);
      await measure(r, { child, port, url });
      const rss = peakRssMB(child.pid);
      if (child.exited) throw new Error(`${s.label} died during the runs\n${child.output()}`);
      r.rss = rss;
      results.set(s.key, r);
    } catch (e) {
      log(`!! ${s.label}: ${e?.message ?? e}`);
      results.set(s.key, { ...r, error: String(e?.message ?? e).split('\n')[0] });
    } finally {
      await child.kill();
    }
    finished?.(results.get(s.key), child);
  }
  return results;
}

/** The records of `servers` that were measured (no error), in order. */
export function measured(servers, results) {
  return servers.map((s) => results.get(s.key)).filter((r) => r !== undefined && !r.error);
}

/** Table rows in server order: row(r) for a measured server, a "failed" row of `columns` for one with an error. */
export function tableRows(servers, results, columns, row) {
  const out = [];
  for (const s of servers) {
    const r = results.get(s.key);
    if (r === undefined) continue;
    out.push(r.error ? `| ${r.label} | failed: ${r.error.replace(/\|/g, '/')} ${'|'.repeat(columns - 1)}` : row(r));
  }
  return out;
}

/**
 * The "Commands" section: for each server that ran, its command line (TURBOCOAP_BACKEND for the
 * turbocoap ones) and the lines loadLines(r) gives (falsy ones left out), each port as PORT.
 */
export function commandsSection(servers, results, loadLines) {
  const out = ['', 'Commands (PORT picked free on 127.0.0.1):', '', '```sh'];
  for (const s of servers) {
    const r = results.get(s.key);
    if (!r?.server) continue;
    out.push(`# ${r.label}`);
    const env = s.key === 'native' || s.key === 'wasm' ? `TURBOCOAP_BACKEND=${s.key} ` : '';
    out.push(env + r.server.replace(/-p \d+|\.mjs \d+/, (m) => m.replace(/\d+$/, 'PORT')));
    for (const line of loadLines(r)) if (line) out.push(line.replace(/:\d+\//, ':PORT/'));
  }
  out.push('```');
  return out;
}

/** One line of "## Targets": met, NOT met, or NOT measured when ok is undefined. */
export const targetLine = (name, ok, detail) => `- ${ok === undefined ? 'NOT measured' : ok ? 'met' : 'NOT met'}: ${name} — ${detail}`;

/** Writes the report to stdout: the lines of `out`, the "## Targets" lines and the machine. */
export async function printReport(out, targets) {
  const lines = [...out, '', '## Targets', '', ...targets, '', await machine()];
  process.stdout.write(lines.join('\n') + '\n');
}

export const f0 = (n) => (n === undefined || n === null || Number.isNaN(n) ? '–' : Math.round(n).toLocaleString('en-US'));
export const f1 = (n) => (n === undefined || n === null || Number.isNaN(n) ? '–' : n.toFixed(1));
export const f2 = (n) => (n === undefined || n === null || Number.isNaN(n) ? '–' : n.toFixed(2));
/** a / b as "1.23×". */
export const ratio = (a, b) => (a === undefined || b === undefined || a === null || b === null || !(b > 0) ? '–' : `${(a / b).toFixed(2)}×`);

export async function machine() {
  const os = await import('node:os');
  return `machine: ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), node ${process.version}`;
}
