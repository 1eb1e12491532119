/**
 * Spawning and killing interop peers (libcoap's tools, our CLI, our demo
 * server) for the loopback tests. Every wait is bounded; every process
 * started here is tracked and killed by {@link killAll} (call it from
 * afterAll) and, as a last resort, when the test process exits.
 *
 * Readiness of a UDP CoAP server is checked with a raw CON ping (an Empty
 * CON, which RFC 7252 §4.3 answers with RST) sent from a plain dgram socket,
 * so the probe depends on nothing under test.
 */
import type { SpawnOptions } from 'node:child_process';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { coapExchange, freePort, sleep, spawnTracked, which, type Peer } from '../../scripts/lib/proc.mjs';
import { inCI } from './ci';

// Shared with the benchmarks (bench/lib/proc.mjs).
export { freePort, killAll, sleep, type Peer } from '../../scripts/lib/proc.mjs';

export const root = resolve(__dirname, '..', '..');
/** The built CLI. */
export const cliPath = join(root, 'dist', 'cli.js');
/** The built load generator. */
export const benchPath = join(root, 'build', 'Release', 'coap-bench');

/** A binary on PATH, or undefined. */
export const findBinary = which;

export { inCI } from './ci';

/**
 * Looks for the libcoap binaries. In CI a missing one is an error (thrown,
 * so the suite fails); locally the result says why the suite is skipped.
 */
export function libcoap(): { client: string; server: string } | { missing: string } {
  const client = findBinary('coap-client-notls');
  const server = findBinary('coap-server-notls');
  if (client !== undefined && server !== undefined) return { client, server };
  const missing = [client === undefined ? 'coap-client-notls' : '', server === undefined ? 'coap-server-notls' : '']
    .filter((s) => s !== '')
    .join(' and ');
  const why = `libcoap's ${missing} not found on PATH (apt-get install libcoap3-bin)`;
  if (inCI) throw new Error(`CI: ${why}`);
  return { missing: why };
}

/**
 * An optional peer module (e.g. npm `coap`): loaded, or outside CI the reason it is not. In
 * CI a missing one is an error (thrown, so the suite fails).
 */
export function optionalModule<T>(name: string, what: string): { module: T; missing?: undefined } | { module?: undefined; missing: string } {
  try {
    return { module: createRequire(join(root, 'package.json'))(name) as T };
  } catch (e) {
    const why = `${what} cannot be loaded: ${String((e as Error)?.message ?? e).split('\n')[0]}`;
    if (inCI) throw new Error(`CI: ${why}`, { cause: e });
    return { missing: why };
  }
}

/**
 * Sends an Empty CON (a CoAP ping) and resolves true if anything comes back
 * (an RST, or an ACK from a lenient server) within `timeoutMs`.
 */
export function coapPing(host: string, port: number, timeoutMs = 300): Promise<boolean> {
  return coapExchange(host, port, (mid) => Uint8Array.of(0x40, 0x00, mid >> 8, mid & 0xff), timeoutMs);
}

/** Polls {@link coapPing} until it succeeds or `timeoutMs` passes. */
export async function waitForCoap(host: string, port: number, timeoutMs = 10_000, proc?: Peer): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc !== undefined && proc.exited) {
      throw new Error(`${proc.name} exited (code ${proc.exitCode}, signal ${proc.signal}) before answering on ${host}:${port}\n${proc.output()}`);
    }
    if (await coapPing(host, port, 250)) return;
    await sleep(50);
  }
  throw new Error(`no CoAP server answered on ${host}:${port} within ${timeoutMs} ms${proc ? `\n${proc.output()}` : ''}`);
}

/** Spawns a long-running process and tracks it for {@link killAll}. */
export function spawnPeer(name: string, cmd: string, args: readonly string[], opts: SpawnOptions = {}): Peer {
  return spawnTracked(name, cmd, args, opts);
}

/** Waits until `peer.stdout` matches `re`, bounded. */
export async function waitForOutput(peer: Peer, re: RegExp, timeoutMs = 10_000): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = peer.stdout.match(re);
    if (m !== null) return m;
    if (peer.exited) throw new Error(`${peer.name} exited before printing ${re}\n${peer.output()}`);
    if (Date.now() > deadline) throw new Error(`${peer.name} did not print ${re} within ${timeoutMs} ms\n${peer.output()}`);
    await sleep(25);
  }
}

/** Starts `coap-server-notls -A 127.0.0.1 -p PORT -v 0` (plus `extra`) and waits until it answers. */
export async function startLibcoapServer(serverBin: string, extra: readonly string[] = []): Promise<{ peer: Peer; port: number }> {
  let lastErr: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort('127.0.0.1', true);
    const peer = spawnPeer('coap-server-notls', serverBin, ['-A', '127.0.0.1', '-p', String(port), '-v', '0', ...extra]);
    try {
      await waitForCoap('127.0.0.1', port, 10_000, peer);
      return { peer, port };
    } catch (e) {
      lastErr = e;
      await peer.kill();
    }
  }
  throw lastErr;
}

/**
 * Starts our demo server (`node dist/cli.js serve`) on a free port with the
 * given backend and waits until it answers.
 */
export async function startDemoServer(backend?: 'native' | 'wasm', host = '127.0.0.1'): Promise<{ peer: Peer; port: number }> {
  let lastErr: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort(host);
    const env = { ...process.env };
    if (backend === undefined) delete env.TURBOCOAP_BACKEND;
    else env.TURBOCOAP_BACKEND = backend;
    const peer = spawnPeer(`turbocoap serve (${backend ?? 'default'})`, process.execPath, [cliPath, 'serve', '--port', String(port), '--host', host], { env });
    try {
      await waitForCoap(host, port, 15_000, peer);
      return { peer, port };
    } catch (e) {
      lastErr = e;
      await peer.kill();
    }
  }
  throw lastErr;
}

/**
 * {@link startDemoServer} on `backend`, once it printed that it runs on it; `base` is its
 * coap:// URL. (Killed again if it does not say so.)
 */
export async function startDemoServerOn(backend: 'native' | 'wasm'): Promise<{ peer: Peer; base: string }> {
  const { peer, port } = await startDemoServer(backend);
  try {
    await waitForOutput(peer, new RegExp(`\\(${backend} backend\\)`));
  } catch (e) {
    await peer.kill();
    throw e;
  }
  return { peer, base: `coap://127.0.0.1:${port}` };
}

/** What {@link run} returns. */
export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/**
 * Runs a command to completion, bounded by `timeoutMs` (then SIGKILL,
 * `timedOut` set). Output is captured (up to 1 MiB each).
 */
export function run(cmd: string, args: readonly string[], opts: SpawnOptions & { timeoutMs?: number } = {}): Promise<RunResult> {
  const { timeoutMs = 20_000, ...spawnOpts } = opts;
  return new Promise((res) => {
    const p = spawnPeer(`${cmd} ${args.join(' ')}`.slice(0, 120), cmd, args, spawnOpts);
    let timedOut = false;
    const t = setTimeout(() => {
      timedOut = true;
      p.proc.kill('SIGKILL');
    }, timeoutMs);
    void p.done.then(() => {
      clearTimeout(t);
      res({ code: p.exitCode, signal: p.signal, stdout: p.stdout, stderr: p.stderr, timedOut });
    });
  });
}

/** What {@link runCoapClient} returns. */
export interface CoapClientResult extends RunResult {
  /** stdout without the newline coap-client adds after a body. */
  body: string;
  /** stdout and stderr (with `-v 7` the exchange dump goes to stdout too). */
  dump: string;
}

/**
 * Runs libcoap's coap-client (the binary `client`) with a bounded wait for
 * the response (`-B waitSeconds`) and a process timeout.
 */
export async function runCoapClient(client: string, args: readonly string[], waitSeconds: number, timeoutMs: number): Promise<CoapClientResult> {
  const r = await run(client, ['-B', String(waitSeconds), ...args], { timeoutMs });
  return { ...r, body: r.stdout.replace(/\n$/, ''), dump: r.stdout + r.stderr };
}

/** Runs `node dist/cli.js ARGS`. */
export function runCli(args: readonly string[], opts: SpawnOptions & { timeoutMs?: number } = {}): Promise<RunResult> {
  return run(process.execPath, [cliPath, ...args], opts);
}

