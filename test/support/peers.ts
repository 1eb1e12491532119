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
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { accessSync, constants } from 'node:fs';
import { createServer as createTcpServer } from 'node:net';
import { delimiter, join, resolve } from 'node:path';

export const root = resolve(__dirname, '..', '..');
/** The built CLI. */
export const cliPath = join(root, 'dist', 'cli.js');
/** The built load generator. */
export const benchPath = join(root, 'build', 'Release', 'coap-bench');

/** A binary on PATH, or undefined. */
export function findBinary(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** Whether tests run in CI (env CI set to something other than '', '0' or 'false'). */
export const inCI = ((): boolean => {
  const v = process.env.CI;
  return v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
})();

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
 * A UDP port that is free on `host` right now (and, with `tcp`, free for TCP
 * as well, as libcoap's server binds both). Picked by the kernel, so
 * parallel test files do not collide.
 */
export async function freePort(host = '127.0.0.1', tcp = false): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await new Promise<number>((res, rej) => {
      const s = createSocket(host.includes(':') ? 'udp6' : 'udp4');
      s.once('error', rej);
      s.bind(0, host, () => {
        const p = s.address().port;
        s.close(() => res(p));
      });
    });
    if (!tcp) return port;
    const ok = await new Promise<boolean>((res) => {
      const t = createTcpServer();
      t.once('error', () => res(false));
      t.listen(port, host, () => t.close(() => res(true)));
    });
    if (ok) return port;
  }
  throw new Error('freePort: no port free for both UDP and TCP after 20 attempts');
}

/**
 * Sends an Empty CON (a CoAP ping) and resolves true if anything comes back
 * (an RST, or an ACK from a lenient server) within `timeoutMs`.
 */
export function coapPing(host: string, port: number, timeoutMs = 300): Promise<boolean> {
  return new Promise((res) => {
    const s = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const mid = (Math.random() * 0xffff) | 0;
    let done = false;
    const finish = (v: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      try {
        s.close();
      } catch {
        /* already closed */
      }
      res(v);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    s.on('error', () => finish(false)); // ICMP port unreachable surfaces here on a connected socket
    s.on('message', (m) => finish(m.length >= 4 && m[2] === mid >> 8 && m[3] === (mid & 0xff)));
    s.connect(port, host, () => {
      s.send(Uint8Array.of(0x40, 0x00, mid >> 8, mid & 0xff));
    });
  });
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

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A spawned long-running process. */
export interface Peer {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly exited: boolean;
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout + stderr for error messages (bounded). */
  output(): string;
  /** Resolves once the process has exited. */
  readonly done: Promise<void>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited. */
  kill(graceMs?: number): Promise<void>;
}

const live = new Set<Peer>();
const OUTPUT_CAP = 4 * 1024 * 1024;

process.once('exit', () => {
  for (const p of live) {
    try {
      p.proc.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
});

/** Spawns a long-running process and tracks it for {@link killAll}. */
export function spawnPeer(name: string, cmd: string, args: readonly string[], opts: SpawnOptions = {}): Peer {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  let exited = false;
  let exitCode: number | null = null;
  let signal: NodeJS.Signals | null = null;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  const peer: Peer = {
    name,
    proc,
    get exited() {
      return exited;
    },
    get exitCode() {
      return exitCode;
    },
    get signal() {
      return signal;
    },
    stdout: '',
    stderr: '',
    output() {
      return `--- ${name} stdout ---\n${peer.stdout.slice(-4000)}\n--- ${name} stderr ---\n${peer.stderr.slice(-4000)}`;
    },
    done,
    async kill(graceMs = 3000) {
      if (exited) return;
      proc.kill('SIGTERM');
      const t = setTimeout(() => {
        if (!exited) proc.kill('SIGKILL');
      }, graceMs);
      await done;
      clearTimeout(t);
    },
  };
  proc.stdout?.setEncoding('utf8').on('data', (d: string) => {
    if (peer.stdout.length < OUTPUT_CAP) peer.stdout += d;
  });
  proc.stderr?.setEncoding('utf8').on('data', (d: string) => {
    if (peer.stderr.length < OUTPUT_CAP) peer.stderr += d;
  });
  const onExit = (code: number | null, sig: NodeJS.Signals | null): void => {
    if (exited) return;
    exited = true;
    exitCode = code;
    signal = sig;
    live.delete(peer);
    resolveDone();
  };
  proc.on('exit', onExit);
  proc.on('error', (e) => {
    peer.stderr += `spawn error: ${e.message}\n`;
    onExit(null, null);
  });
  live.add(peer);
  return peer;
}

/** Kills every process started by this module that is still running. */
export async function killAll(): Promise<void> {
  await Promise.all([...live].map((p) => p.kill()));
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

/** Runs `node dist/cli.js ARGS`. */
export function runCli(args: readonly string[], opts: SpawnOptions & { timeoutMs?: number } = {}): Promise<RunResult> {
  return run(process.execPath, [cliPath, ...args], opts);
}

